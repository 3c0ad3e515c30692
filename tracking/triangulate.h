/* Private to tracking/: the pieces of km_triangulate (projection with its Jacobian, linear
 * DLT, Gauss–Newton refinement) for tests and other files of the stage. reconstruct.c
 * uses only KM_TRI_MIN_DEPTH_M: it works in normalised coordinates (see its header).
 *
 * Conventions as calib.h: x_cam = R * X_world + t, OpenCV pinhole + k1 k2 p1 p2 k3. */
#ifndef KINEMA_TRACKING_TRIANGULATE_H
#define KINEMA_TRACKING_TRIANGULATE_H

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

#endif /* KINEMA_TRACKING_TRIANGULATE_H */
