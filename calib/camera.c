/* The camera model: OpenCV's pinhole + Brown–Conrady (k1 k2 p1 p2 k3), world -> camera
 * x_cam = R X + t, pixel (0,0) = centre of the top-left pixel (formats.md). The formulas are
 * those of cv::projectPoints and cv::undistortPoints so that a rig calibrated with OpenCV
 * means the same thing here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kinema/calib.h"

km_vec3 km_camera_center(const km_camera *cam)
{
    /* C = -R^T t */
    km_vec3 c = km_mat3_apply(km_mat3_transpose(cam->R), cam->t);
    return km_vec3_scale(c, -1.0);
}

km_vec3 km_camera_to_camera_frame(const km_camera *cam, km_vec3 X_world)
{
    return km_vec3_add(km_mat3_apply(cam->R, X_world), cam->t);
}

void km_camera_distort_normalized(const km_camera *cam, double x, double y, double *xd,
                                  double *yd)
{
    const double k1 = cam->dist[0], k2 = cam->dist[1], p1 = cam->dist[2], p2 = cam->dist[3],
                 k3 = cam->dist[4];
    double r2 = x * x + y * y;
    double radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
    *xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x);
    *yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y;
}

bool km_camera_project(const km_camera *cam, km_vec3 X_world, double *u, double *v)
{
    km_vec3 p = km_camera_to_camera_frame(cam, X_world);
    if (p.z <= 1e-3) return false;
    double xd, yd;
    km_camera_distort_normalized(cam, p.x / p.z, p.y / p.z, &xd, &yd);
    *u = cam->K[0] * xd + cam->K[1] * yd + cam->K[2];
    *v = cam->K[4] * yd + cam->K[5];
    return true;
}

void km_camera_undistort_point(const km_camera *cam, double u, double v, double *x, double *y)
{
    const double fx = cam->K[0], fy = cam->K[4], cx = cam->K[2], cy = cam->K[5],
                 skew = cam->K[1];
    double yd = (v - cy) / fy;
    double xd = (u - cx - skew * yd) / fx;
    const double k1 = cam->dist[0], k2 = cam->dist[1], p1 = cam->dist[2], p2 = cam->dist[3],
                 k3 = cam->dist[4];
    double xu = xd, yu = yd;
    if (k1 != 0.0 || k2 != 0.0 || p1 != 0.0 || p2 != 0.0 || k3 != 0.0) {
        /* Fixed-point iteration as cv::undistortPoints, then Newton polish: the fixed point
         * alone stalls at ~1e-4 px for strong barrel distortion at the image corners. */
        for (int i = 0; i < 20; i++) {
            double r2 = xu * xu + yu * yu;
            double icdist = 1.0 / (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)));
            double dx = 2.0 * p1 * xu * yu + p2 * (r2 + 2.0 * xu * xu);
            double dy = p1 * (r2 + 2.0 * yu * yu) + 2.0 * p2 * xu * yu;
            xu = (xd - dx) * icdist;
            yu = (yd - dy) * icdist;
        }
        for (int i = 0; i < 5; i++) {
            double fxd, fyd;
            km_camera_distort_normalized(cam, xu, yu, &fxd, &fyd);
            double ex = fxd - xd, ey = fyd - yd;
            if (fabs(ex) < 1e-15 && fabs(ey) < 1e-15) break;
            /* Numeric Jacobian of the distortion: cheap and exact enough at h = 1e-7. */
            const double h = 1e-7;
            double ax, ay, bx, by;
            km_camera_distort_normalized(cam, xu + h, yu, &ax, &ay);
            km_camera_distort_normalized(cam, xu, yu + h, &bx, &by);
            double j00 = (ax - fxd) / h, j10 = (ay - fyd) / h;
            double j01 = (bx - fxd) / h, j11 = (by - fyd) / h;
            double det = j00 * j11 - j01 * j10;
            if (fabs(det) < 1e-12) break;
            xu -= (j11 * ex - j01 * ey) / det;
            yu -= (-j10 * ex + j00 * ey) / det;
        }
    }
    *x = xu;
    *y = yu;
}

km_vec3 km_camera_pixel_ray(const km_camera *cam, double u, double v)
{
    double x, y;
    km_camera_undistort_point(cam, u, v, &x, &y);
    km_vec3 d_cam = km_vec3_make(x, y, 1.0);
    return km_vec3_normalize(km_mat3_apply(km_mat3_transpose(cam->R), d_cam));
}

void km_camera_look_at(km_camera *cam, const char *name, int width, int height,
                       double hfov_rad, km_vec3 eye, km_vec3 target)
{
    memset(cam, 0, sizeof *cam);
    snprintf(cam->name, sizeof cam->name, "%s", name ? name : "");
    cam->width = width;
    cam->height = height;
    double fx = ((double)width / 2.0) / tan(hfov_rad / 2.0);
    cam->K[0] = fx;
    cam->K[2] = ((double)width - 1.0) / 2.0;
    cam->K[4] = fx;
    cam->K[5] = ((double)height - 1.0) / 2.0;
    cam->K[8] = 1.0;
    /* Camera axes in world coordinates: z forward, x right, y down (OpenCV), world Y up. */
    km_vec3 z = km_vec3_normalize(km_vec3_sub(target, eye));
    km_vec3 up = km_vec3_make(0.0, 1.0, 0.0);
    if (fabs(km_vec3_dot(z, up)) > 0.999) up = km_vec3_make(0.0, 0.0, 1.0);
    km_vec3 x = km_vec3_normalize(km_vec3_cross(z, up));
    km_vec3 y = km_vec3_cross(z, x);
    /* Rows of R are the camera axes expressed in the world frame. */
    cam->R.m[0] = x.x; cam->R.m[1] = x.y; cam->R.m[2] = x.z;
    cam->R.m[3] = y.x; cam->R.m[4] = y.y; cam->R.m[5] = y.z;
    cam->R.m[6] = z.x; cam->R.m[7] = z.y; cam->R.m[8] = z.z;
    cam->t = km_vec3_scale(km_mat3_apply(cam->R, eye), -1.0);
    cam->has_pose = true;
}
