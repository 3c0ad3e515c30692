/* Fuzz target: km_rig_parse_anipose on arbitrary bytes. Any input must give a valid rig or
 * KM_ERR_PARSE / KM_ERR_UNSUPPORTED (fisheye) with a message, never a crash, leak or hang;
 * a rig that loads must satisfy what the reader promises (sizes, K, rotations) and must be
 * usable by the camera model. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"
#include "rig_invariants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_rig *rig = malloc(sizeof *rig);
    if (rig == NULL)
        return 0;
    km_status st = km_rig_parse_anipose((const char *)data, size, "fuzz.toml", rig);
    if (st == KM_OK) {
        if (rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS)
            abort();
        for (int i = 0; i < rig->camera_count; i++)
            fuzz_check_camera(&rig->cameras[i], true);
    } else if ((st != KM_ERR_PARSE && st != KM_ERR_UNSUPPORTED) ||
               strncmp(km_last_error(), "fuzz.toml", 9) != 0 || rig->camera_count != 0) {
        abort(); /* bad text is a parse error naming the file, and the rig is cleared */
    }
    free(rig);
    return 0;
}
