/* Fuzz target: km_rig_parse on arbitrary bytes. Any input must give a valid rig or
 * KM_ERR_PARSE with a message, never a crash, leak or hang; a rig that loads must satisfy
 * every invariant the reader promises (so reconstruction can trust it). */
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
    km_status st = km_rig_parse((const char *)data, size, "fuzz.yaml", rig);
    if (st == KM_OK) {
        if (rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS)
            abort();
        for (int i = 0; i < rig->camera_count; i++)
            fuzz_check_camera(&rig->cameras[i], false);
    } else if (st != KM_ERR_PARSE || km_last_error()[0] == '\0') {
        abort(); /* bad text is a parse error, and it must say why */
    }
    free(rig);
    return 0;
}
