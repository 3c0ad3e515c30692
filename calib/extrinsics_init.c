/* Initial extrinsics of the wand calibration: relative poses of camera pairs from essential
 * matrices (five-point RANSAC through cv/), a maximum spanning tree over the pairs weighted
 * by the frames they share, poses chained from the root along the tree with each pair's
 * scale taken from the wand length, and initial wand poses triangulated with the chained
 * rig. The bundle adjustment (bundle.c) then refines everything. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/cv.h"
#include "wand_internal.h"

/* A pair needs this many shared frames to be an edge of the tree (3 points each). */
#define MIN_PAIR_FRAMES 8
#define RANSAC_THRESHOLD_PX 1.5

km_status wand_triangulate(const km_rig *rig, const int *cameras, const double *xn,
                           const double *yn, int n, km_vec3 *out)
{
    if (n < 2)
        return KM_ERR_INVALID_ARGUMENT;
    double w[KM_MAX_CAMERAS];
    for (int i = 0; i < n; i++)
        w[i] = 1.0;
    km_vec3 X = {0, 0, 0};
    /* Linear triangulation, rows weighted by 1/depth of the previous estimate so the
     * algebraic error approaches the image error. */
    for (int iter = 0; iter < 3; iter++) {
        double A[2 * KM_MAX_CAMERAS * 3], b[2 * KM_MAX_CAMERAS];
        for (int i = 0; i < n; i++) {
            const km_camera *c = &rig->cameras[cameras[i]];
            const double *R = c->R.m;
            double t[3] = {c->t.x, c->t.y, c->t.z};
            for (int k = 0; k < 3; k++) {
                A[(2 * i) * 3 + k] = w[i] * (xn[i] * R[6 + k] - R[k]);
                A[(2 * i + 1) * 3 + k] = w[i] * (yn[i] * R[6 + k] - R[3 + k]);
            }
            b[2 * i] = w[i] * (t[0] - xn[i] * t[2]);
            b[2 * i + 1] = w[i] * (t[1] - yn[i] * t[2]);
        }
        double x[3];
        if (km_least_squares(A, b, 2 * n, 3, x) != KM_OK)
            return KM_ERR_NUMERIC;
        X = km_vec3_make(x[0], x[1], x[2]);
        for (int i = 0; i < n; i++) {
            double z = km_camera_to_camera_frame(&rig->cameras[cameras[i]], X).z;
            if (!(z > 1e-6))
                return KM_ERR_NUMERIC;
            w[i] = 1.0 / z;
        }
    }
    if (!isfinite(X.x) || !isfinite(X.y) || !isfinite(X.z))
        return KM_ERR_NUMERIC;
    *out = X;
    return KM_OK;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The view of camera c in frame f, or NULL. */
static const wand_view *view_of(const km_wand_calibration *wc, const wand_frame *f, int c)
{
    for (int v = 0; v < f->view_count; v++)
        if (wc->views[f->first_view + v].camera == c)
            return &wc->views[f->first_view + v];
    return NULL;
}

/* Relative pose of camera j w.r.t. camera i, metric (scale from the wand). */
static km_status pair_pose(const km_wand_calibration *wc, int i, int j, km_mat3 *R, km_vec3 *t,
                           int *inlier_count)
{
    int cap = 3 * wc->frame_count;
    double *buf = malloc((size_t)cap * 4 * sizeof *buf + (size_t)cap);
    if (buf == NULL)
        return km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
    double *x0 = buf, *y0 = buf + cap, *x1 = buf + 2 * cap, *y1 = buf + 3 * cap;
    uint8_t *mask = (uint8_t *)(buf + 4 * cap);
    int n = 0;
    for (int f = 0; f < wc->frame_count; f++) {
        const wand_view *a = view_of(wc, &wc->frames[f], i), *b = view_of(wc, &wc->frames[f], j);
        if (a == NULL || b == NULL)
            continue;
        for (int k = 0; k < 3; k++) {
            x0[n] = a->xn[k], y0[n] = a->yn[k], x1[n] = b->xn[k], y1[n] = b->yn[k];
            n++;
        }
    }
    const km_camera *ci = &wc->input.cameras[i], *cj = &wc->input.cameras[j];
    double focal = 0.25 * (ci->K[0] + ci->K[4] + cj->K[0] + cj->K[4]);
    km_status st = km_cv_relative_pose(x0, y0, x1, y1, n, RANSAC_THRESHOLD_PX / focal, R, t,
                                       mask, inlier_count);
    if (st != KM_OK) {
        free(buf);
        return st;
    }
    /* Scale: the wand's end-to-end length triangulated in the pair's unit-baseline frame. */
    km_rig pair;
    memset(&pair, 0, sizeof pair);
    pair.camera_count = 2;
    pair.cameras[0] = *ci;
    pair.cameras[0].R = km_mat3_identity();
    pair.cameras[0].t = km_vec3_make(0, 0, 0);
    pair.cameras[1] = *cj;
    pair.cameras[1].R = *R;
    pair.cameras[1].t = *t;
    const int cams[2] = {0, 1};
    double *lengths = x0; /* reuse: n/3 values, read before overwritten */
    int m = 0;
    for (int p = 0; p + 2 < n; p += 3) {
        if (!mask[p] || !mask[p + 2])
            continue;
        double xa[2] = {x0[p], x1[p]}, ya[2] = {y0[p], y1[p]};
        double xc[2] = {x0[p + 2], x1[p + 2]}, yc[2] = {y0[p + 2], y1[p + 2]};
        km_vec3 A, C;
        if (wand_triangulate(&pair, cams, xa, ya, 2, &A) != KM_OK ||
            wand_triangulate(&pair, cams, xc, yc, 2, &C) != KM_OK)
            continue;
        lengths[m++] = km_vec3_dist(A, C);
    }
    if (m < 3) {
        free(buf);
        return km_error(KM_ERR_NUMERIC, "wand: cameras %d and %d: too few wand frames to set the"
                        " scale", i, j);
    }
    qsort(lengths, (size_t)m, sizeof *lengths, compare_double);
    double median = lengths[m / 2];
    free(buf);
    if (!(median > 1e-9))
        return km_error(KM_ERR_NUMERIC, "wand: cameras %d and %d: degenerate geometry", i, j);
    *t = km_vec3_scale(*t, wc->offset_m[2] / median);
    return KM_OK;
}

km_status wand_initialise(km_wand_calibration *wc, int *root_out)
{
    const int ncam = wc->rig.camera_count;
    int *shared = calloc((size_t)ncam * (size_t)ncam, sizeof *shared);
    if (shared == NULL)
        return km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
    for (int f = 0; f < wc->frame_count; f++) {
        const wand_frame *fr = &wc->frames[f];
        for (int a = 0; a < fr->view_count; a++)
            for (int b = a + 1; b < fr->view_count; b++) {
                int i = wc->views[fr->first_view + a].camera;
                int j = wc->views[fr->first_view + b].camera;
                shared[i * ncam + j]++;
                shared[j * ncam + i]++;
            }
    }
    /* Root: the camera sharing the most frames with the others. */
    int root = 0;
    long best_total = -1;
    for (int i = 0; i < ncam; i++) {
        long total = 0;
        for (int j = 0; j < ncam; j++)
            total += shared[i * ncam + j];
        if (total > best_total)
            best_total = total, root = i;
    }
    bool in_tree[KM_MAX_CAMERAS] = {false};
    bool *failed = calloc((size_t)ncam * (size_t)ncam, sizeof *failed);
    if (failed == NULL) {
        free(shared);
        return km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
    }
    km_camera *cams = wc->rig.cameras;
    cams[root].R = km_mat3_identity();
    cams[root].t = km_vec3_make(0, 0, 0);
    cams[root].has_pose = true;
    in_tree[root] = true;
    km_status st = KM_OK;
    for (int added = 1; added < ncam && st == KM_OK;) {
        /* Prim: the pair (tree camera, new camera) with the most shared frames. */
        int bi = -1, bj = -1, bn = MIN_PAIR_FRAMES - 1;
        for (int i = 0; i < ncam; i++)
            for (int j = 0; j < ncam; j++)
                if (in_tree[i] && !in_tree[j] && !failed[i * ncam + j] &&
                    shared[i * ncam + j] > bn)
                    bn = shared[i * ncam + j], bi = i, bj = j;
        if (bi < 0) {
            for (int j = 0; j < ncam; j++)
                if (!in_tree[j]) {
                    st = km_error(KM_ERR_NOT_FOUND,
                                  "wand: camera %d (%s) shares too few wand frames with the "
                                  "calibrated cameras (needs %d with one of them): wave the "
                                  "wand where it and its neighbours overlap", j, cams[j].name,
                                  MIN_PAIR_FRAMES);
                    break;
                }
            break;
        }
        km_mat3 R;
        km_vec3 t;
        int inliers = 0;
        km_status pst = pair_pose(wc, bi, bj, &R, &t, &inliers);
        if (pst != KM_OK || inliers < 3 * MIN_PAIR_FRAMES / 2) {
            km_log(KM_LOG_WARN, "wand", "pair %d-%d (%d frames): no relative pose (%s)", bi, bj,
                   bn, pst != KM_OK ? km_last_error() : "too few inliers");
            failed[bi * ncam + bj] = failed[bj * ncam + bi] = true;
            if (pst == KM_ERR_NO_MEMORY)
                st = pst;
            continue;
        }
        /* x_j = R x_i + t and x_i = R_i X + t_i. */
        cams[bj].R = km_mat3_mul(R, cams[bi].R);
        cams[bj].t = km_vec3_add(km_mat3_apply(R, cams[bi].t), t);
        cams[bj].has_pose = true;
        in_tree[bj] = true;
        added++;
        km_log(KM_LOG_INFO, "wand", "camera %d from camera %d: %d shared frames, %d inlier "
               "points, baseline %.3f m", bj, bi, bn, inliers, km_vec3_norm(t));
    }
    free(failed);
    free(shared);
    if (st != KM_OK)
        return st;

    /* Initial wand poses: markers triangulated with all views, direction from marker 0 to
     * marker 2, position as the least-squares fit of the three markers on that line. */
    int usable = 0;
    for (int f = 0; f < wc->frame_count; f++) {
        wand_frame *fr = &wc->frames[f];
        fr->used = false;
        int cam_index[KM_MAX_CAMERAS], m = 0;
        double xs[3][KM_MAX_CAMERAS], ys[3][KM_MAX_CAMERAS];
        for (int v = 0; v < fr->view_count; v++) {
            const wand_view *w = &wc->views[fr->first_view + v];
            if (!w->used)
                continue;
            cam_index[m] = w->camera;
            for (int k = 0; k < 3; k++)
                xs[k][m] = w->xn[k], ys[k][m] = w->yn[k];
            m++;
        }
        if (m < 2)
            continue;
        km_vec3 X[3];
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++)
            ok = wand_triangulate(&wc->rig, cam_index, xs[k], ys[k], m, &X[k]) == KM_OK;
        if (!ok)
            continue;
        km_vec3 d = km_vec3_normalize(km_vec3_sub(X[2], X[0]));
        if (km_vec3_norm(d) < 0.5)
            continue;
        km_vec3 a = {0, 0, 0};
        for (int k = 0; k < 3; k++)
            a = km_vec3_add(a, km_vec3_sub(X[k], km_vec3_scale(d, wc->offset_m[k])));
        fr->a = km_vec3_scale(a, 1.0 / 3.0);
        fr->d = d;
        fr->used = true;
        usable++;
    }
    if (usable < wc->cfg.min_frames)
        return km_error(KM_ERR_NUMERIC, "wand: only %d frames could be triangulated after the "
                        "initialisation (needs %d)", usable, wc->cfg.min_frames);
    *root_out = root;
    return KM_OK;
}
