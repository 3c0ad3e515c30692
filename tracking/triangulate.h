/* Private to tracking/: the pieces of km_triangulate (projection with its Jacobian, linear
 * DLT, Gauss–Newton refinement) for tests and other files of the stage. reconstruct.c
 * uses only KM_TRI_MIN_DEPTH_M and km_tri_solve3_spd: it works in normalised coordinates
 * (see its header).
 *
 * Conventions as calib.h: x_cam = R * X_world + t, OpenCV pinhole + k1 k2 p1 p2 k3. */
#ifndef KINEMA_TRACKING_TRIANGULATE_H
#define KINEMA_TRACKING_TRIANGULATE_H

#include <math.h>
#include <stdbool.h>

#include "kinema/calib.h"

/* Nearer than this (camera-frame z, metres) counts as behind the camera; the same bound
 * as km_camera_project. */
#define KM_TRI_MIN_DEPTH_M 1e-3

/* Project a world point into distorted pixels, and when J is not NULL the 2x3 Jacobian
 * d(u,v)/d(X_world), row-major. False when the point is behind the camera. Matches
 * km_camera_project (checked in tests/tracking/test_triangulate.c). */
bool km_tri_project(const km_camera *cam, km_vec3 X_world, double *u, double *v, double *J);

/* Linear (DLT) triangulation from n >= 2 views given as undistorted normalised image
 * coordinates. KM_ERR_NUMERIC when the rays are (nearly) parallel or the point is at
 * infinity or behind a camera. */
km_status km_tri_linear(const km_camera *const *cams, const double *xn, const double *yn,
                        int n, km_vec3 *X);

/* Gauss–Newton on the reprojection error in distorted pixels, starting at *X. On success
 * *X is refined, *residual_px (may be NULL) is the mean per-view reprojection error and
 * view_error_px (may be NULL, n entries) each view's error. KM_ERR_NUMERIC when the
 * normal equations are singular or the point goes behind a camera. No allocation. */
km_status km_tri_refine(const km_camera *const *cams, const double *u, const double *v, int n,
                        km_vec3 *X, double *residual_px, double *view_error_px);

/* Solve the 3x3 SPD system H d = g (row-major) by Cholesky; false when not positive
 * definite. The Gauss-Newton step of every point refinement: inline, it is on the hot path. */
static inline bool km_tri_solve3_spd(const double *H, const double *g, double *d)
{
    const double l00sq = H[0];
    if (!(l00sq > 0.0))
        return false;
    const double l00 = sqrt(l00sq);
    const double l10 = H[3] / l00, l20 = H[6] / l00;
    const double l11sq = H[4] - l10 * l10;
    if (!(l11sq > 1e-12 * H[4]))
        return false;
    const double l11 = sqrt(l11sq);
    const double l21 = (H[7] - l20 * l10) / l11;
    const double l22sq = H[8] - l20 * l20 - l21 * l21;
    if (!(l22sq > 1e-12 * H[8]))
        return false;
    const double l22 = sqrt(l22sq);
    const double y0 = g[0] / l00;
    const double y1 = (g[1] - l10 * y0) / l11;
    const double y2 = (g[2] - l20 * y0 - l21 * y1) / l22;
    d[2] = y2 / l22;
    d[1] = (y1 - l21 * d[2]) / l11;
    d[0] = (y0 - l10 * d[1] - l20 * d[2]) / l00;
    return true;
}

#endif /* KINEMA_TRACKING_TRIANGULATE_H */
