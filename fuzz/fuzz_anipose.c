/* Fuzz target: km_rig_parse_anipose on arbitrary bytes. Any input must give a valid rig or
 * KM_ERR_PARSE / KM_ERR_UNSUPPORTED (fisheye) with a message, never a crash, leak or hang;
 * a rig that loads must satisfy what the reader promises (sizes, K, rotations) and must be
 * usable by the camera model. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_camera(const km_camera *c)
{
    if (c->width < 1 || c->height < 1 || memchr(c->name, '\0', KM_NAME_MAX) == NULL ||
        c->name[0] == '\0' || !c->has_pose)
        abort();
    if (!(c->K[0] > 0.0) || !(c->K[4] > 0.0) || c->K[8] != 1.0 || !isfinite(c->K[2]) ||
        !isfinite(c->K[5]))
        abort();
    for (int i = 0; i < 5; i++)
        if (!isfinite(c->dist[i]))
            abort();
    if (!isfinite(c->t.x) || !isfinite(c->t.y) || !isfinite(c->t.z))
        abort();
    /* Rodrigues vectors of any finite size give a rotation. */
    km_mat3 RRt = km_mat3_mul(c->R, km_mat3_transpose(c->R));
    for (int i = 0; i < 9; i++)
        if (!(fabs(RRt.m[i] - (i % 4 == 0 ? 1.0 : 0.0)) < 1e-9))
            abort();
    double u, v, x, y;
    km_camera_undistort_point(c, 0.0, 0.0, &x, &y);
    km_camera_project(c, km_vec3_make(0.1, 0.2, 3.0), &u, &v);
}

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
            check_camera(&rig->cameras[i]);
    } else if ((st != KM_ERR_PARSE && st != KM_ERR_UNSUPPORTED) ||
               strncmp(km_last_error(), "fuzz.toml", 9) != 0 || rig->camera_count != 0) {
        abort(); /* bad text is a parse error naming the file, and the rig is cleared */
    }
    free(rig);
    return 0;
}
