/* What a rig reader (km_rig_parse, km_rig_parse_anipose) promises of every camera it loads:
 * shared by their fuzz targets. abort() on a broken promise, so the fuzzer reports it. */
#ifndef KINEMA_FUZZ_RIG_INVARIANTS_H
#define KINEMA_FUZZ_RIG_INVARIANTS_H

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

/* `pose_required`: the reader always gives a pose (anipose files have one per camera). */
static inline void fuzz_check_camera(const km_camera *c, bool pose_required)
{
    if (c->width < 1 || c->height < 1 || memchr(c->name, '\0', KM_NAME_MAX) == NULL)
        abort();
    if (pose_required && (c->name[0] == '\0' || !c->has_pose))
        abort();
    if (!(c->K[0] > 0.0) || !(c->K[4] > 0.0) || c->K[8] != 1.0 || !isfinite(c->K[2]) ||
        !isfinite(c->K[5]))
        abort();
    for (int i = 0; i < 5; i++)
        if (!isfinite(c->dist[i]))
            abort();
    if (c->has_pose) {
        if (!isfinite(c->t.x) || !isfinite(c->t.y) || !isfinite(c->t.z))
            abort();
        km_mat3 RRt = km_mat3_mul(c->R, km_mat3_transpose(c->R));
        for (int i = 0; i < 9; i++)
            if (!(fabs(RRt.m[i] - (i % 4 == 0 ? 1.0 : 0.0)) < 1e-9))
                abort();
    }
    /* The camera model must not crash on whatever coefficients loaded. */
    double u, v, x, y;
    km_camera_undistort_point(c, 0.0, 0.0, &x, &y);
    km_camera_project(c, km_vec3_make(0.1, 0.2, 3.0), &u, &v);
}

#endif /* KINEMA_FUZZ_RIG_INVARIANTS_H */
