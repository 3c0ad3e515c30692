/* Triangulation of one 3D point from n calibrated views: linear DLT on undistorted
 * normalised rays (a good start, but it minimises an algebraic error), then Gauss–Newton on
 * the reprojection error in raw distorted pixels, which is the error the detector makes, so
 * the result is the maximum-likelihood point under isotropic pixel noise. */
#include <math.h>
#include <string.h>

#include "kinema/tracking.h"
#include "triangulate.h"

#define MODULE "triangulate"

/* Rays whose DLT system has a second-smallest eigenvalue below this fraction of the largest
 * do not constrain depth (coincident centres, parallel rays). */
#define DLT_DEGENERATE_RATIO 1e-12
#define GN_MAX_ITERATIONS 20
#define GN_STEP_TOLERANCE_M 1e-7

bool km_tri_project(const km_camera *cam, km_vec3 X_world, double *u, double *v, double *J)
{
    const double *R = cam->R.m;
    const double Xc = R[0] * X_world.x + R[1] * X_world.y + R[2] * X_world.z + cam->t.x;
    const double Yc = R[3] * X_world.x + R[4] * X_world.y + R[5] * X_world.z + cam->t.y;
    const double Zc = R[6] * X_world.x + R[7] * X_world.y + R[8] * X_world.z + cam->t.z;
    if (!(Zc > KM_TRI_MIN_DEPTH_M))
        return false;
    const double iz = 1.0 / Zc;
    const double x = Xc * iz, y = Yc * iz;
    const double k1 = cam->dist[0], k2 = cam->dist[1], p1 = cam->dist[2], p2 = cam->dist[3],
                 k3 = cam->dist[4];
    const double r2 = x * x + y * y;
    const double radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
    const double xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x);
    const double yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y;
    const double *K = cam->K;
    *u = K[0] * xd + K[1] * yd + K[2];
    *v = K[4] * yd + K[5];
    if (J) {
        /* Chain rule: pixel <- distorted <- normalised <- camera frame <- world. */
        const double drad_dr2 = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2);
        const double drad_dx = 2.0 * x * drad_dr2, drad_dy = 2.0 * y * drad_dr2;
        const double dxd_dx = radial + x * drad_dx + 2.0 * p1 * y + 6.0 * p2 * x;
        const double dxd_dy = x * drad_dy + 2.0 * p1 * x + 2.0 * p2 * y;
        const double dyd_dx = y * drad_dx + 2.0 * p1 * x + 2.0 * p2 * y;
        const double dyd_dy = radial + y * drad_dy + 6.0 * p1 * y + 2.0 * p2 * x;
        const double du_dx = K[0] * dxd_dx + K[1] * dyd_dx, du_dy = K[0] * dxd_dy + K[1] * dyd_dy;
        const double dv_dx = K[4] * dyd_dx, dv_dy = K[4] * dyd_dy;
        /* d(x,y)/d(Xc,Yc,Zc) = [iz 0 -x*iz; 0 iz -y*iz] */
        const double du_c[3] = {du_dx * iz, du_dy * iz, -(du_dx * x + du_dy * y) * iz};
        const double dv_c[3] = {dv_dx * iz, dv_dy * iz, -(dv_dx * x + dv_dy * y) * iz};
        for (int c = 0; c < 3; c++) {
            J[c] = du_c[0] * R[c] + du_c[1] * R[3 + c] + du_c[2] * R[6 + c];
            J[3 + c] = dv_c[0] * R[c] + dv_c[1] * R[3 + c] + dv_c[2] * R[6 + c];
        }
    }
    return true;
}

static double camera_depth(const km_camera *cam, km_vec3 X)
{
    const double *R = cam->R.m;
    return R[6] * X.x + R[7] * X.y + R[8] * X.z + cam->t.z;
}

km_status km_tri_linear(const km_camera *const *cams, const double *xn, const double *yn,
                        int n, km_vec3 *X)
{
    /* Each view gives two rows of A X_h = 0 (A: 2n x 4); accumulate A^T A (4x4) so that
     * any n costs the same memory. Rows are normalised so every view weighs the same. */
    double AtA[16] = {0};
    for (int k = 0; k < n; k++) {
        const double *R = cams[k]->R.m;
        const double P[12] = {R[0], R[1], R[2], cams[k]->t.x, R[3], R[4], R[5], cams[k]->t.y,
                              R[6], R[7], R[8], cams[k]->t.z};
        double rows[2][4];
        for (int c = 0; c < 4; c++) {
            rows[0][c] = xn[k] * P[8 + c] - P[c];
            rows[1][c] = yn[k] * P[8 + c] - P[4 + c];
        }
        for (int r = 0; r < 2; r++) {
            double nn = 0.0;
            for (int c = 0; c < 4; c++)
                nn += rows[r][c] * rows[r][c];
            if (!(nn > 0.0) || !isfinite(nn))
                return km_error(KM_ERR_NUMERIC, "triangulate: view %d gives a degenerate ray", k);
            const double s = 1.0 / sqrt(nn);
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++)
                    AtA[a * 4 + b] += rows[r][a] * rows[r][b] * s * s;
        }
    }
    double values[4], vectors[16];
    km_status st = km_symmetric_eigen(AtA, 4, values, vectors);
    if (st != KM_OK)
        return st;
    if (!(values[1] > DLT_DEGENERATE_RATIO * values[3]))
        return km_error(KM_ERR_NUMERIC,
                        "triangulate: rays are parallel or share a centre (no depth)");
    const double w = vectors[3 * 4 + 0];
    const double hx = vectors[0 * 4 + 0], hy = vectors[1 * 4 + 0], hz = vectors[2 * 4 + 0];
    const double hn = sqrt(hx * hx + hy * hy + hz * hz + w * w);
    if (!(fabs(w) > 1e-12 * hn))
        return km_error(KM_ERR_NUMERIC, "triangulate: point at infinity");
    *X = km_vec3_make(hx / w, hy / w, hz / w);
    for (int k = 0; k < n; k++)
        if (!(camera_depth(cams[k], *X) > KM_TRI_MIN_DEPTH_M))
            return km_error(KM_ERR_NUMERIC, "triangulate: point behind camera of view %d", k);
    return KM_OK;
}

/* Sum of squared pixel errors; false when behind a camera. */
static bool reprojection_cost(const km_camera *const *cams, const double *u, const double *v,
                              int n, km_vec3 X, double *cost)
{
    double sum = 0.0;
    for (int k = 0; k < n; k++) {
        double pu, pv;
        if (!km_tri_project(cams[k], X, &pu, &pv, NULL))
            return false;
        sum += (pu - u[k]) * (pu - u[k]) + (pv - v[k]) * (pv - v[k]);
    }
    *cost = sum;
    return true;
}

km_status km_tri_refine(const km_camera *const *cams, const double *u, const double *v, int n,
                        km_vec3 *X, double *residual_px, double *view_error_px)
{
    km_vec3 P = *X;
    double cost;
    if (!reprojection_cost(cams, u, v, n, P, &cost))
        return km_error(KM_ERR_NUMERIC, "triangulate: start point behind a camera");
    for (int iter = 0; iter < GN_MAX_ITERATIONS; iter++) {
        double H[9] = {0}, g[3] = {0};
        for (int k = 0; k < n; k++) {
            double pu, pv, J[6];
            if (!km_tri_project(cams[k], P, &pu, &pv, J))
                return km_error(KM_ERR_NUMERIC, "triangulate: point behind camera of view %d", k);
            const double ru = pu - u[k], rv = pv - v[k];
            for (int a = 0; a < 3; a++) {
                g[a] -= J[a] * ru + J[3 + a] * rv;
                for (int b = 0; b < 3; b++)
                    H[a * 3 + b] += J[a] * J[b] + J[3 + a] * J[3 + b];
            }
        }
        double d[3];
        if (!km_tri_solve3_spd(H, g, d))
            return km_error(KM_ERR_NUMERIC, "triangulate: singular normal equations");
        /* Halve the step until the cost does not grow: plain Gauss–Newton can overshoot where
         * the distortion is strong. */
        double scale = 1.0, new_cost = 0.0;
        km_vec3 Q = P;
        bool improved = false;
        for (int halve = 0; halve < 8; halve++) {
            Q = km_vec3_make(P.x + scale * d[0], P.y + scale * d[1], P.z + scale * d[2]);
            if (reprojection_cost(cams, u, v, n, Q, &new_cost) && new_cost <= cost) {
                improved = true;
                break;
            }
            scale *= 0.5;
        }
        if (!improved)
            break;
        const double step = scale * sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        P = Q;
        cost = new_cost;
        if (step < GN_STEP_TOLERANCE_M)
            break;
    }
    double sum = 0.0;
    for (int k = 0; k < n; k++) {
        double pu, pv;
        if (!km_tri_project(cams[k], P, &pu, &pv, NULL))
            return km_error(KM_ERR_NUMERIC, "triangulate: point behind camera of view %d", k);
        const double e = hypot(pu - u[k], pv - v[k]);
        if (view_error_px)
            view_error_px[k] = e;
        sum += e;
    }
    *X = P;
    if (residual_px)
        *residual_px = sum / n;
    return KM_OK;
}

km_status km_triangulate(const km_rig *rig, const int *cameras, const double *u,
                         const double *v, int n, km_vec3 *out, double *residual_px)
{
    if (!rig || !cameras || !u || !v || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "triangulate: NULL argument");
    if (n < 2)
        return km_error(KM_ERR_INVALID_ARGUMENT, "triangulate: need at least 2 views, got %d", n);
    if (n > KM_MAX_CAMERAS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "triangulate: at most %d views, got %d",
                        KM_MAX_CAMERAS, n);
    const km_camera *cams[KM_MAX_CAMERAS];
    double xn[KM_MAX_CAMERAS], yn[KM_MAX_CAMERAS];
    for (int k = 0; k < n; k++) {
        if (cameras[k] < 0 || cameras[k] >= rig->camera_count)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "triangulate: view %d: camera %d not in the rig (%d cameras)", k,
                            cameras[k], rig->camera_count);
        cams[k] = &rig->cameras[cameras[k]];
        if (!cams[k]->has_pose)
            return km_error(KM_ERR_INVALID_ARGUMENT, "triangulate: camera %d has no pose",
                            cameras[k]);
        if (!isfinite(u[k]) || !isfinite(v[k]))
            return km_error(KM_ERR_INVALID_ARGUMENT, "triangulate: view %d: non-finite pixel", k);
        km_camera_undistort_point(cams[k], u[k], v[k], &xn[k], &yn[k]);
    }
    km_vec3 X;
    km_status st = km_tri_linear(cams, xn, yn, n, &X);
    if (st != KM_OK)
        return st;
    st = km_tri_refine(cams, u, v, n, &X, residual_px, NULL);
    if (st != KM_OK)
        return st;
    *out = X;
    return KM_OK;
}
