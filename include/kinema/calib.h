/* Kinema calibration: the camera model (OpenCV's pinhole + Brown–Conrady k1 k2 p1 p2 k3),
 * the camera rig (all cameras with their pose in the world frame) and its YAML file
 * (formats.md "Camera rig", readable by OpenCV's cv::FileStorage).
 *
 * Conventions (formats.md): world frame right-handed, Y up, metres. x_cam = R * X_world + t.
 * Pixel (0,0) is the centre of the top-left pixel. */
#ifndef KINEMA_CALIB_H
#define KINEMA_CALIB_H

#include "kinema/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KM_MAX_CAMERAS 64
#define KM_NAME_MAX 64

typedef struct km_camera {
    char name[KM_NAME_MAX];
    int width, height;      /* image size in pixels */
    double K[9];            /* row-major camera matrix [fx 0 cx; 0 fy cy; 0 0 1] */
    double dist[5];         /* k1 k2 p1 p2 k3 */
    km_mat3 R;              /* world -> camera rotation */
    km_vec3 t;              /* world -> camera translation, metres */
    bool has_pose;          /* false for an intrinsics-only file */
} km_camera;

typedef struct km_rig {
    char name[KM_NAME_MAX];
    int camera_count;
    km_camera cameras[KM_MAX_CAMERAS];
} km_rig;

/* Camera centre in world coordinates (-R^T t). */
km_vec3 km_camera_center(const km_camera *cam);
/* World point -> camera frame. */
km_vec3 km_camera_to_camera_frame(const km_camera *cam, km_vec3 X_world);
/* Project a world point to distorted pixel coordinates. Returns false when the point is
 * behind the camera (z <= 1 mm); *u,*v are then unspecified. */
bool km_camera_project(const km_camera *cam, km_vec3 X_world, double *u, double *v);
/* Apply the distortion model to normalised coordinates (x, y) -> (xd, yd). */
void km_camera_distort_normalized(const km_camera *cam, double x, double y, double *xd,
                                  double *yd);
/* Distorted pixel -> undistorted normalised image coordinates (iterative inverse of the
 * distortion, as cv::undistortPoints; converges for the distortion of real lenses). */
void km_camera_undistort_point(const km_camera *cam, double u, double v, double *x, double *y);
/* Unit ray direction in world coordinates through a distorted pixel; origin = centre. */
km_vec3 km_camera_pixel_ray(const km_camera *cam, double u, double v);

/* Fill a camera with a pinhole model looking from `eye` at `target` (world Y up), for
 * synthetic rigs and tests. fov is the horizontal field of view in radians. */
void km_camera_look_at(km_camera *cam, const char *name, int width, int height,
                       double hfov_rad, km_vec3 eye, km_vec3 target);

/* Read a rig YAML file (formats.md). Also accepts the intrinsics-only form
 * (camera_count: 1, no rotation/translation). Errors name file and line. */
km_status km_rig_load(const char *path, km_rig *rig);
/* Same, from text in memory; `name` stands for the file name in messages. */
km_status km_rig_parse(const char *text, size_t length, const char *name, km_rig *rig);
/* Write a rig in the exact layout of formats.md (%YAML:1.0, !!opencv-matrix), full
 * double precision, so cv::FileStorage reads it. `extra` (may be NULL) is appended verbatim
 * at top level (e.g. "rms_reprojection_error_px: 0.31\n"). */
km_status km_rig_save(const char *path, const km_rig *rig, const char *extra);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CALIB_H */
