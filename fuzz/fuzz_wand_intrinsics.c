/* Fuzz target: the wand calibration's inputs from outside: km_wand_parse_intrinsics (the
 * multi-camera intrinsics file, poses optional) and km_wand_parse_geometry (the --wand
 * "A,B,C" option) on arbitrary bytes. Any input gives KM_OK with valid cameras or an error
 * with a message; never a crash, leak or hang. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_rig *rig = malloc(sizeof *rig);
    if (rig == NULL)
        return 0;
    if (km_wand_parse_intrinsics((const char *)data, size, "fuzz.yaml", rig) == KM_OK) {
        if (rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS)
            abort();
        for (int c = 0; c < rig->camera_count; c++) {
            const km_camera *cam = &rig->cameras[c];
            if (!(cam->K[0] > 0.0) || !(cam->K[4] > 0.0) || cam->width < 1 || cam->height < 1 ||
                memchr(cam->name, '\0', KM_NAME_MAX) == NULL)
                abort();
            double x, y;
            km_camera_undistort_point(cam, 1.0, 2.0, &x, &y);
        }
    } else if (km_last_error()[0] == '\0') {
        abort();
    }
    free(rig);
    /* The geometry parser wants a C string. */
    char text[64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    double m[3];
    if (km_wand_parse_geometry(text, m) == KM_OK && !(m[0] < m[1] && m[1] < m[2]))
        abort();
    return 0;
}
