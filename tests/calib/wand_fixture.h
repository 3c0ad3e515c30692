/* Shared by the wand calibration tests and benchmark: run the synthetic wand wave through
 * km_wand_calibration (and the L-frame through km_ground) and compare with the truth. */
#ifndef KINEMA_TESTS_WAND_FIXTURE_H
#define KINEMA_TESTS_WAND_FIXTURE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"
#include "kinema/capture.h"

typedef struct wand_accuracy {
    double centre_max_mm, centre_rms_mm;
    double rotation_max_deg;
    double origin_mm;          /* world origin (L-frame) error: truth origin in the solved frame */
    double axis_max_deg;       /* world axes error */
} wand_accuracy;

/* Copy the generator's blobs into calib blobs, skipping camera `hide` (-1: none). */
static inline int wand_fixture_blobs(const km_synthetic_blob *in, int n, int hide,
                                     km_calib_blob *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (in[i].camera == hide)
            continue;
        out[m].camera = in[i].camera;
        out[m].x_px = in[i].x;
        out[m].y_px = in[i].y;
        m++;
    }
    return m;
}

/* Feed all wand frames; returns the first failing status. */
static inline km_status wand_fixture_feed(km_wand_calibration *wc, const km_synthetic_wand *w,
                                          int hide)
{
    const km_synthetic_wand_config *cfg = km_synthetic_wand_get_config(w);
    int cap = 64 * cfg->camera_count;
    km_synthetic_blob *sb = malloc((size_t)cap * sizeof *sb);
    km_calib_blob *cb = malloc((size_t)cap * sizeof *cb);
    km_status st = (sb && cb) ? KM_OK : KM_ERR_NO_MEMORY;
    for (int f = 0; f < cfg->frame_count && st == KM_OK; f++) {
        int n = km_synthetic_wand_observe(w, f, sb, cap);
        int m = wand_fixture_blobs(sb, n, hide, cb);
        st = km_wand_calibration_add_frame(wc, (uint64_t)f, cb, m);
    }
    free(sb);
    free(cb);
    return st;
}

static inline km_status wand_fixture_ground(km_ground *g, const km_synthetic_wand *w)
{
    const km_synthetic_wand_config *cfg = km_synthetic_wand_get_config(w);
    int cap = 64 * cfg->camera_count;
    km_synthetic_blob *sb = malloc((size_t)cap * sizeof *sb);
    km_calib_blob *cb = malloc((size_t)cap * sizeof *cb);
    km_status st = (sb && cb) ? KM_OK : KM_ERR_NO_MEMORY;
    for (int f = 0; f < cfg->ground_frame_count && st == KM_OK; f++) {
        int n = km_synthetic_wand_observe_ground(w, f, sb, cap);
        int m = wand_fixture_blobs(sb, n, -1, cb);
        st = km_ground_add_frame(g, cb, m);
    }
    free(sb);
    free(cb);
    return st;
}

static inline double rotation_angle_deg(km_mat3 A, km_mat3 B)
{
    km_mat3 D = km_mat3_mul(A, km_mat3_transpose(B));
    double c = (D.m[0] + D.m[4] + D.m[8] - 1.0) / 2.0;
    c = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    return acos(c) * 180.0 / 3.14159265358979323846;
}

/* Solved rig (in the world frame from the L-frame) against the truth. */
static inline wand_accuracy wand_fixture_compare(const km_rig *solved, const km_rig *truth)
{
    wand_accuracy a;
    memset(&a, 0, sizeof a);
    double sq = 0.0;
    for (int c = 0; c < truth->camera_count; c++) {
        double e = 1000.0 * km_vec3_dist(km_camera_center(&solved->cameras[c]),
                                         km_camera_center(&truth->cameras[c]));
        sq += e * e;
        a.centre_max_mm = fmax(a.centre_max_mm, e);
        a.rotation_max_deg = fmax(a.rotation_max_deg,
                                  rotation_angle_deg(solved->cameras[c].R, truth->cameras[c].R));
    }
    a.centre_rms_mm = sqrt(sq / truth->camera_count);
    /* World frame: where the solved rig puts the true world origin, seen through each
     * camera (truth: the origin is at t in camera c; solved world: R_s^T (t - t_s)). */
    int n = truth->camera_count;
    double origin = 0.0;
    for (int c = 0; c < n; c++) {
        /* truth origin in camera c = t_true; in solved world: R_s^T (t_true - t_s) */
        km_vec3 o = km_mat3_apply(km_mat3_transpose(solved->cameras[c].R),
                                  km_vec3_sub(truth->cameras[c].t, solved->cameras[c].t));
        origin += km_vec3_norm(o);
    }
    a.origin_mm = 1000.0 * origin / n;
    a.axis_max_deg = a.rotation_max_deg;
    return a;
}

/* The solve alone, without the world frame: worst camera centre error (mm) after the best
 * rigid motion of the solved centres onto the true ones (Kabsch). The ground plane's own
 * error (a tilt from the L-frame's short arm) is a rigid motion of the whole rig: this
 * leaves what the wand solve got wrong. */
static inline double wand_fixture_aligned_centre_mm(const km_rig *solved, const km_rig *truth)
{
    const int n = truth->camera_count;
    km_vec3 p[KM_MAX_CAMERAS], q[KM_MAX_CAMERAS], pm = {0, 0, 0}, qm = {0, 0, 0};
    for (int c = 0; c < n; c++) {
        p[c] = km_camera_center(&solved->cameras[c]);
        q[c] = km_camera_center(&truth->cameras[c]);
        pm = km_vec3_add(pm, km_vec3_scale(p[c], 1.0 / n));
        qm = km_vec3_add(qm, km_vec3_scale(q[c], 1.0 / n));
    }
    double H[9] = {0}, U[9], s[3], V[9];
    for (int c = 0; c < n; c++) {
        km_vec3 a = km_vec3_sub(p[c], pm), b = km_vec3_sub(q[c], qm);
        const double av[3] = {a.x, a.y, a.z}, bv[3] = {b.x, b.y, b.z};
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++)
                H[r * 3 + k] += av[r] * bv[k];
    }
    if (km_svd(H, 3, 3, U, s, V) != KM_OK)
        return INFINITY;
    km_mat3 R; /* V diag(1, 1, d) U^T */
    double d = 1.0;
    for (int pass = 0; pass < 2; pass++) {
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++)
                R.m[r * 3 + k] = V[r * 3 + 0] * U[k * 3 + 0] + V[r * 3 + 1] * U[k * 3 + 1] +
                                 d * V[r * 3 + 2] * U[k * 3 + 2];
        if (km_mat3_det(R) > 0.0)
            break;
        d = -1.0;
    }
    double worst = 0.0;
    for (int c = 0; c < n; c++) {
        km_vec3 moved = km_vec3_add(km_mat3_apply(R, km_vec3_sub(p[c], pm)), qm);
        worst = fmax(worst, 1000.0 * km_vec3_dist(moved, q[c]));
    }
    return worst;
}

#endif /* KINEMA_TESTS_WAND_FIXTURE_H */
