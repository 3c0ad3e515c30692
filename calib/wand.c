/* Wand calibration: collecting the blobs of a wand wave, identifying the wand in each view,
 * running the initialisation (extrinsics_init.c) and bundle adjustment (bundle.c) with
 * outlier rounds, and the statistics of the result. Also the intrinsics file of N cameras
 * the calibration starts from. See calib.h, "wand calibration". */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wand_internal.h"

#define MAX_ROUNDS 4

km_wand_config km_wand_config_default(void)
{
    km_wand_config c;
    memset(&c, 0, sizeof c);
    c.marker_m[0] = 0.0;
    c.marker_m[1] = 0.15;
    c.marker_m[2] = 0.5;
    c.collinear_px = 1.5;
    c.ratio_tolerance = 0.25;
    c.min_length_px = 15.0;
    c.max_blobs_per_view = 32;
    c.min_frames = 30;
    c.min_camera_frames = 15;
    c.max_iterations = 60;
    c.huber_px = 1.0;
    c.outlier_px = 2.0;
    c.refine_intrinsics = false;
    c.grid_columns = 16;
    c.grid_rows = 12;
    return c;
}

km_status km_wand_parse_geometry(const char *text, double marker_m[3])
{
    if (text == NULL || marker_m == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand geometry: NULL argument");
    double v[3];
    const char *p = text;
    for (int k = 0; k < 3; k++) {
        char *end;
        errno = 0;
        v[k] = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(v[k]))
            return km_error(KM_ERR_PARSE,
                            "wand geometry '%s': expected three numbers in metres like "
                            "0,0.15,0.5", text);
        p = end;
        if (k < 2) {
            if (*p != ',')
                return km_error(KM_ERR_PARSE, "wand geometry '%s': expected ',' after the "
                                "%s number", text, k == 0 ? "first" : "second");
            p++;
        }
    }
    if (*p != '\0')
        return km_error(KM_ERR_PARSE, "wand geometry '%s': unexpected text after the third "
                        "number", text);
    if (!(v[0] < v[1] && v[1] < v[2]))
        return km_error(KM_ERR_PARSE, "wand geometry '%s': positions must increase", text);
    memcpy(marker_m, v, sizeof v);
    return KM_OK;
}

static km_status check_config(const km_wand_config *c)
{
    const double *m = c->marker_m;
    if (!(isfinite(m[0]) && isfinite(m[2]) && m[0] < m[1] && m[1] < m[2]) ||
        !(m[2] - m[0] >= 0.05 && m[2] - m[0] <= 5.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand: marker positions %g %g %g must "
                        "increase and span 0.05..5 m", m[0], m[1], m[2]);
    double r0 = (m[1] - m[0]) / (m[2] - m[0]);
    double near = fmin(r0, 1.0 - r0), far = fmax(r0, 1.0 - r0);
    if (!(c->ratio_tolerance > 0.0 && c->ratio_tolerance < 0.9))
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand: ratio_tolerance %g not in (0, 0.9)",
                        c->ratio_tolerance);
    if (near * (1.0 + c->ratio_tolerance) >= far * (1.0 - c->ratio_tolerance))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "wand: the middle marker (%g m) is too close to the centre to tell the "
                        "wand's ends apart", m[1]);
    if (!(c->collinear_px > 0.0) || !(c->min_length_px >= 0.0) || c->max_blobs_per_view < 3 ||
        c->max_blobs_per_view > 256 || c->min_frames < 5 || c->min_camera_frames < 3 ||
        c->max_iterations < 1 || !(c->huber_px > 0.0) || !(c->outlier_px > 0.0) ||
        c->grid_columns < 1 || c->grid_rows < 1 || c->grid_columns > 256 || c->grid_rows > 256)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand: config out of range (collinear_px > 0, "
                        "max_blobs_per_view 3..256, min_frames >= 5, min_camera_frames >= 3, "
                        "max_iterations >= 1, huber_px > 0, outlier_px > 0, grid 1..256)");
    return KM_OK;
}

km_wand_calibration *km_wand_calibration_create(const km_wand_config *cfg,
                                                const km_rig *intrinsics, km_status *err)
{
    km_status st = KM_OK;
    if (cfg == NULL || intrinsics == NULL)
        st = km_error(KM_ERR_INVALID_ARGUMENT, "wand: NULL argument");
    else if ((st = check_config(cfg)) == KM_OK &&
             (intrinsics->camera_count < 2 || intrinsics->camera_count > KM_MAX_CAMERAS))
        st = km_error(KM_ERR_INVALID_ARGUMENT, "wand: %d cameras (need 2..%d)",
                      intrinsics->camera_count, KM_MAX_CAMERAS);
    if (st == KM_OK)
        for (int i = 0; i < intrinsics->camera_count; i++) {
            const km_camera *c = &intrinsics->cameras[i];
            if (!(c->K[0] > 0.0 && c->K[4] > 0.0 && c->width > 0 && c->height > 0)) {
                st = km_error(KM_ERR_INVALID_ARGUMENT,
                              "wand: camera %d (%s): invalid intrinsics (focal length or "
                              "image size)", i, c->name);
                break;
            }
        }
    km_wand_calibration *wc = NULL;
    if (st == KM_OK && (wc = calloc(1, sizeof *wc)) == NULL)
        st = km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
    if (st != KM_OK) {
        if (err)
            *err = st;
        return NULL;
    }
    wc->cfg = *cfg;
    wc->rig = *intrinsics;
    wc->input = *intrinsics;
    for (int i = 0; i < wc->rig.camera_count; i++) {
        wc->rig.cameras[i].R = km_mat3_identity();
        wc->rig.cameras[i].t = km_vec3_make(0, 0, 0);
        wc->rig.cameras[i].has_pose = false;
    }
    for (int k = 0; k < 3; k++)
        wc->offset_m[k] = cfg->marker_m[k] - cfg->marker_m[0];
    if (err)
        *err = KM_OK;
    return wc;
}

void km_wand_calibration_destroy(km_wand_calibration *wc)
{
    if (wc == NULL)
        return;
    free(wc->views);
    free(wc->frames);
    free(wc->blobs);
    free(wc->length_error_mm);
    free(wc->coverage);
    free(wc);
}

/* ------------------------------------------------------------ identification */

/* Number of wand candidates among the blobs; the best one in index[]. */
static int identify(const km_wand_calibration *wc, int camera, const km_calib_blob *blobs,
                    int count, int index[3])
{
    if (wc == NULL || blobs == NULL || camera < 0 || camera >= wc->rig.camera_count ||
        count < 3 || count > wc->cfg.max_blobs_per_view)
        return 0;
    const km_camera *cam = &wc->input.cameras[camera];
    /* Undistorted "ideal pixel" coordinates: straight lines stay straight and tolerances
     * stay in pixels. */
    double px[256], py[256];
    for (int i = 0; i < count; i++) {
        double xn, yn;
        km_camera_undistort_point(cam, blobs[i].x_px, blobs[i].y_px, &xn, &yn);
        px[i] = cam->K[0] * xn;
        py[i] = cam->K[4] * yn;
    }
    const double *m = wc->cfg.marker_m;
    const double r0 = (m[1] - m[0]) / (m[2] - m[0]);
    const double tol = wc->cfg.ratio_tolerance;
    int found = 0;
    double best_score = INFINITY;
    for (int i = 0; i < count; i++)
        for (int k = i + 1; k < count; k++) {
            double dx = px[k] - px[i], dy = py[k] - py[i];
            double len2 = dx * dx + dy * dy, len = sqrt(len2);
            if (len < wc->cfg.min_length_px || len < 1e-9)
                continue;
            for (int j = 0; j < count; j++) {
                if (j == i || j == k)
                    continue;
                double ex = px[j] - px[i], ey = py[j] - py[i];
                double t = (ex * dx + ey * dy) / len2;
                if (t <= 0.0 || t >= 1.0)
                    continue;
                double off = fabs(ex * dy - ey * dx) / len;
                double off_tol = wc->cfg.collinear_px + 0.01 * len;
                if (off > off_tol)
                    continue;
                /* Perspective moves the middle marker along the line by the ratio of the
                 * depths of the far end and the middle (|t/r0 - 1| small), never across
                 * the centre: the end nearer the middle marker is marker 0. */
                int first, last;
                double rel;
                if (fabs(t / r0 - 1.0) <= tol) {
                    first = i, last = k, rel = fabs(t / r0 - 1.0);
                } else if (fabs((1.0 - t) / r0 - 1.0) <= tol) {
                    first = k, last = i, rel = fabs((1.0 - t) / r0 - 1.0);
                } else {
                    continue;
                }
                double score = off / off_tol + rel / tol;
                found++;
                if (score < best_score) {
                    best_score = score;
                    index[0] = first;
                    index[1] = j;
                    index[2] = last;
                }
            }
        }
    return found;
}

bool km_wand_identify(const km_wand_calibration *wc, int camera, const km_calib_blob *blobs,
                      int count, int index[3])
{
    /* Several candidates (a ghost on the wand's line, two wands): no way to tell which is
     * right from this view alone; the view is skipped. */
    return identify(wc, camera, blobs, count, index) == 1;
}

static km_status grow(void **items, int *capacity, int need, size_t size)
{
    if (need <= *capacity)
        return KM_OK;
    int cap = *capacity ? *capacity : 256;
    while (cap < need)
        cap *= 2;
    void *p = realloc(*items, (size_t)cap * size);
    if (p == NULL)
        return km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
    *items = p;
    *capacity = cap;
    return KM_OK;
}

km_status wand_reserve(km_wand_calibration *wc, int frames, int views)
{
    if (frames < 1 || views < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand reserve: %d frames, %d views", frames,
                        views);
    km_status st = grow((void **)&wc->views, &wc->view_capacity, views, sizeof *wc->views);
    if (st == KM_OK)
        st = grow((void **)&wc->frames, &wc->frame_capacity, frames, sizeof *wc->frames);
    if (st == KM_OK)
        st = grow((void **)&wc->blobs, &wc->blob_capacity, views, sizeof *wc->blobs);
    if (st == KM_OK)
        wc->bounded = true;
    return st;
}

void wand_thin(km_wand_calibration *wc)
{
    int frames = 0, views = 0, blobs = 0;
    for (int c = 0; c < wc->rig.camera_count; c++)
        wc->stats[c].view_count = 0;
    for (int f = 0; f < wc->frame_count; f += 2) {
        wand_frame fr = wc->frames[f];
        /* Views and blobs move only towards the front: the destination never overtakes the
         * source. */
        memmove(wc->views + views, wc->views + fr.first_view,
                (size_t)fr.view_count * sizeof *wc->views);
        for (int v = 0; v < fr.view_count; v++) {
            wc->views[views + v].frame = frames;
            wc->stats[wc->views[views + v].camera].view_count++;
        }
        fr.first_view = views;
        views += fr.view_count;
        if (fr.blob_count > 0)
            memmove(wc->blobs + blobs, wc->blobs + fr.first_blob,
                    (size_t)fr.blob_count * sizeof *wc->blobs);
        fr.first_blob = blobs;
        blobs += fr.blob_count;
        wc->frames[frames++] = fr;
    }
    wc->frame_count = frames;
    wc->view_count = views;
    wc->blob_count = blobs;
}

void wand_report(const km_wand_calibration *wc, double fraction, const char *fmt, ...)
{
    if (wc->progress == NULL)
        return;
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    wc->progress(wc->progress_user, fraction, text);
}

/* The blobs of camera `camera` among a frame's, at most cfg.max_blobs_per_view of them, into
 * view; *seen = how many the camera had (more than were kept: a cluttered view). */
static int view_blobs(const km_wand_calibration *wc, const km_calib_blob *blobs, int count,
                      int camera, km_calib_blob *view, int *seen)
{
    int n = 0;
    *seen = 0;
    for (int i = 0; i < count; i++)
        if (blobs[i].camera == camera) {
            (*seen)++;
            if (n < wc->cfg.max_blobs_per_view)
                view[n++] = blobs[i];
        }
    return n;
}

km_status km_wand_calibration_add_frame(km_wand_calibration *wc, uint64_t frame,
                                        const km_calib_blob *blobs, int count)
{
    if (wc == NULL || (blobs == NULL && count > 0) || count < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand add frame: bad arguments");
    const int ncam = wc->rig.camera_count;
    for (int i = 0; i < count; i++)
        if (blobs[i].camera < 0 || blobs[i].camera >= ncam)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "wand add frame %llu: camera %d out of range (rig has %d)",
                            (unsigned long long)frame, blobs[i].camera, ncam);
    wc->frames_given++;
    km_calib_blob view[256];
    wand_view found[KM_MAX_CAMERAS];
    wand_blob spare[KM_MAX_CAMERAS * WAND_SPARE_BLOBS_PER_VIEW];
    int found_count = 0, spare_count = 0;
    for (int c = 0; c < ncam; c++) {
        int seen = 0;
        int n = view_blobs(wc, blobs, count, c, view, &seen);
        wc->stats[c].blob_count += seen;
        if (n < seen) /* cluttered */
            continue;
        int index[3];
        int candidates = n < 3 ? 0 : identify(wc, c, view, n, index);
        if (candidates != 1) {
            wc->stats[c].ambiguous_count += candidates > 1;
            if (n <= WAND_SPARE_BLOBS_PER_VIEW)
                for (int i = 0; i < n; i++)
                    spare[spare_count++] = (wand_blob){c, view[i].x_px, view[i].y_px};
            continue;
        }
        wand_view *w = &found[found_count++];
        memset(w, 0, sizeof *w);
        w->camera = c;
        w->frame = wc->frame_count;
        w->used = true;
        for (int k = 0; k < 3; k++) {
            w->u[k] = view[index[k]].x_px;
            w->v[k] = view[index[k]].y_px;
            km_camera_undistort_point(&wc->input.cameras[c], w->u[k], w->v[k], &w->xn[k],
                                      &w->yn[k]);
        }
        wc->stats[c].view_count++;
    }
    if (found_count == 0)
        return KM_OK;
    km_status st = grow((void **)&wc->views, &wc->view_capacity,
                        wc->view_count + found_count, sizeof *wc->views);
    if (st == KM_OK)
        st = grow((void **)&wc->frames, &wc->frame_capacity, wc->frame_count + 1,
                  sizeof *wc->frames);
    if (st != KM_OK)
        return st;
    wand_frame *f = &wc->frames[wc->frame_count++];
    memset(f, 0, sizeof *f);
    f->frame = frame;
    f->first_view = wc->view_count;
    f->view_count = found_count;
    memcpy(wc->views + wc->view_count, found, (size_t)found_count * sizeof *found);
    wc->view_count += found_count;
    /* The spare blobs only refine the statistics: a bounded collection drops what does not
     * fit instead of allocating. */
    f->first_blob = wc->blob_count;
    if (wc->bounded && wc->blob_count + spare_count > wc->blob_capacity)
        spare_count = 0;
    if (spare_count > 0 && grow((void **)&wc->blobs, &wc->blob_capacity,
                                wc->blob_count + spare_count, sizeof *wc->blobs) != KM_OK)
        spare_count = 0;
    if (spare_count > 0)
        memcpy(wc->blobs + wc->blob_count, spare, (size_t)spare_count * sizeof *spare);
    f->blob_count = spare_count;
    wc->blob_count += spare_count;
    return KM_OK;
}

/* ------------------------------------------------------------------- solve */

/* Every camera must see the wand often enough, and not always on one image line. */
static km_status check_input(const km_wand_calibration *wc)
{
    const int ncam = wc->rig.camera_count;
    int multi = 0;
    for (int f = 0; f < wc->frame_count; f++)
        if (wc->frames[f].view_count >= 2)
            multi++;
    for (int c = 0; c < ncam; c++)
        if (wc->stats[c].view_count < wc->cfg.min_camera_frames)
            return km_error(KM_ERR_NOT_FOUND,
                            "wand: camera %d (%s) saw the wand in %d frames (needs at least %d;"
                            " %d blobs in all): check that it is connected, unobstructed and "
                            "sees the volume", c, wc->rig.cameras[c].name,
                            wc->stats[c].view_count, wc->cfg.min_camera_frames,
                            wc->stats[c].blob_count);
    if (multi < wc->cfg.min_frames)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "wand: only %d of %d frames show the wand in two or more cameras "
                        "(needs at least %d): record a longer wave", multi, wc->frames_given,
                        wc->cfg.min_frames);
    /* Degenerate motion: all of a camera's wand markers on one image line (the wand slid
     * along one line, or never left a plane through the camera). */
    for (int c = 0; c < ncam; c++) {
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        int n = 0;
        for (int v = 0; v < wc->view_count; v++) {
            const wand_view *w = &wc->views[v];
            if (w->camera != c)
                continue;
            for (int k = 0; k < 3; k++) {
                sx += w->xn[k], sy += w->yn[k];
                sxx += w->xn[k] * w->xn[k], syy += w->yn[k] * w->yn[k];
                sxy += w->xn[k] * w->yn[k];
                n++;
            }
        }
        double mx = sx / n, my = sy / n;
        double a = sxx / n - mx * mx, b = sxy / n - mx * my, d = syy / n - my * my;
        double tr = a + d, det = a * d - b * b;
        double disc = sqrt(fmax(tr * tr / 4.0 - det, 0.0));
        double lmax = tr / 2.0 + disc, lmin = tr / 2.0 - disc;
        if (!(lmax > 0.0) || sqrt(fmax(lmin, 0.0) / lmax) < 0.03)
            return km_error(KM_ERR_NUMERIC,
                            "wand: degenerate motion: every wand observation of camera %d (%s)"
                            " lies on one image line; wave the wand through the whole volume "
                            "in varied directions", c, wc->rig.cameras[c].name);
    }
    return KM_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reprojection errors of one view (3 markers) with the current rig and wand pose. */
static void view_errors(const km_wand_calibration *wc, const wand_view *w, double err[3])
{
    const wand_frame *f = &wc->frames[w->frame];
    const km_camera *cam = &wc->rig.cameras[w->camera];
    for (int k = 0; k < 3; k++) {
        km_vec3 X = km_vec3_add(f->a, km_vec3_scale(f->d, wc->offset_m[k]));
        double u, v;
        if (!wand_project_camera_frame(cam, km_camera_to_camera_frame(cam, X), &u, &v))
            err[k] = INFINITY;
        else
            err[k] = hypot(u - w->u[k], v - w->v[k]);
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Drop views whose worst marker error exceeds max(outlier_px, 6 robust sigma); frames left
 * with fewer than two views leave the adjustment. Returns the number of views dropped, or
 * -1 when out of memory. */
static int drop_outliers(km_wand_calibration *wc)
{
    double *e = malloc(((size_t)wc->view_count * 3 + 1) * sizeof *e);
    if (e == NULL)
        return -1;
    int n = 0;
    for (int v = 0; v < wc->view_count; v++) {
        const wand_view *w = &wc->views[v];
        if (!w->used || !wc->frames[w->frame].used)
            continue;
        double err[3];
        view_errors(wc, w, err);
        for (int k = 0; k < 3; k++)
            e[n++] = err[k];
    }
    double limit = wc->cfg.outlier_px;
    if (n > 0) {
        qsort(e, (size_t)n, sizeof *e, compare_double);
        /* The median of the error's length is 1.1774 sigma of one axis (Rayleigh). */
        double sigma = e[n / 2] / 1.1774;
        limit = fmax(limit, 6.0 * sigma);
        wc->sigma_px = sigma;
    }
    free(e);
    int dropped = 0;
    for (int v = 0; v < wc->view_count; v++) {
        wand_view *w = &wc->views[v];
        if (!w->used || !wc->frames[w->frame].used)
            continue;
        double err[3];
        view_errors(wc, w, err);
        if (fmax(err[0], fmax(err[1], err[2])) > limit) {
            w->used = false;
            dropped++;
        }
    }
    for (int f = 0; f < wc->frame_count; f++) {
        wand_frame *fr = &wc->frames[f];
        int used = 0;
        for (int v = 0; v < fr->view_count; v++)
            used += wc->views[fr->first_view + v].used;
        if (used < 2)
            fr->used = false;
    }
    if (dropped > 0)
        km_log(KM_LOG_INFO, "wand", "dropped %d outlier views (error above %.2f px)", dropped,
               limit);
    return dropped;
}

/* ------------------------------------------------------- wand length measure */

/* One end marker's observations in one frame. */
typedef struct end_obs {
    int n;
    int cam[KM_MAX_CAMERAS];
    double u[KM_MAX_CAMERAS], v[KM_MAX_CAMERAS]; /* raw (distorted) pixels */
} end_obs;

static bool triangulate_end(const km_rig *rig, const end_obs *e, km_vec3 *X)
{
    if (e->n < 2)
        return false;
    double xn[KM_MAX_CAMERAS], yn[KM_MAX_CAMERAS];
    for (int i = 0; i < e->n; i++)
        km_camera_undistort_point(&rig->cameras[e->cam[i]], e->u[i], e->v[i], &xn[i], &yn[i]);
    return wand_triangulate(rig, e->cam, xn, yn, e->n, X) == KM_OK;
}

/* An end marker triangulated from the views that gave the whole wand, completed with the
 * cameras whose view did not (the middle marker hidden, a ghost in the way): in each, the
 * one spare blob within gate_px of the marker's projection (none when two are), then
 * triangulated again from all. A real system measures each marker from every camera that
 * sees it; the wand only has to be recognised somewhere. false without two views. */
static bool measure_end(const km_rig *rig, end_obs *e, const wand_blob *spare, int spare_count,
                        double gate_px, km_vec3 *X)
{
    if (!triangulate_end(rig, e, X))
        return false;
    int added = 0;
    for (int c = 0; c < rig->camera_count; c++) {
        bool have = false;
        for (int i = 0; i < e->n; i++)
            have = have || e->cam[i] == c;
        double pu, pv;
        if (have || !km_camera_project(&rig->cameras[c], *X, &pu, &pv))
            continue;
        int best = -1, near = 0;
        for (int b = 0; b < spare_count; b++)
            if (spare[b].camera == c && hypot(spare[b].u - pu, spare[b].v - pv) < gate_px) {
                best = b;
                near++;
            }
        if (near != 1)
            continue;
        e->cam[e->n] = c;
        e->u[e->n] = spare[best].u;
        e->v[e->n] = spare[best].v;
        e->n++;
        added++;
    }
    return added == 0 || triangulate_end(rig, e, X);
}

km_status km_wand_measure_frame(const km_wand_calibration *wc, const km_rig *rig,
                                const km_calib_blob *blobs, int count, double gate_px,
                                km_wand_measurement *out)
{
    if (wc == NULL || rig == NULL || (blobs == NULL && count > 0) || count < 0 || out == NULL ||
        rig->camera_count != wc->rig.camera_count || !(gate_px >= 0.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand measure: bad arguments");
    memset(out, 0, sizeof *out);
    end_obs ends[2];
    memset(ends, 0, sizeof ends);
    wand_blob spare[KM_MAX_CAMERAS * WAND_SPARE_BLOBS_PER_VIEW];
    int spare_count = 0;
    km_calib_blob view[256];
    for (int c = 0; c < rig->camera_count; c++) {
        int seen = 0;
        int n = view_blobs(wc, blobs, count, c, view, &seen);
        int index[3];
        if (n < seen) /* cluttered */
            continue;
        if (n >= 3 && identify(wc, c, view, n, index) == 1) {
            for (int k = 0; k < 2; k++) {
                end_obs *e = &ends[k];
                e->cam[e->n] = c;
                e->u[e->n] = view[index[2 * k]].x_px;
                e->v[e->n] = view[index[2 * k]].y_px;
                e->n++;
            }
        } else if (n <= WAND_SPARE_BLOBS_PER_VIEW) {
            for (int i = 0; i < n; i++)
                spare[spare_count++] = (wand_blob){c, view[i].x_px, view[i].y_px};
        }
    }
    if (ends[0].n < 2)
        return km_error(KM_ERR_NOT_FOUND, "wand measure: the wand is identified in %d "
                        "camera(s), needs two", ends[0].n);
    for (int k = 0; k < 2; k++) {
        if (!measure_end(rig, &ends[k], spare, spare_count, gate_px, &out->ends[k]))
            return km_error(KM_ERR_NUMERIC, "wand measure: marker %d cannot be triangulated",
                            2 * k);
        out->views[k] = ends[k].n;
    }
    out->length_m = km_vec3_dist(out->ends[0], out->ends[1]);
    return KM_OK;
}

/* A marker triangulated freely from m views: the sum of its squared reprojection errors
 * (pixels^2) and the information matrix H = sum J^T J of its position (J: 2x3 derivative of
 * the distorted pixel position, by central differences), so that its covariance is
 * sigma^2 H^-1 for pixel noise sigma per axis. false when a projection fails. */
static bool point_noise(const km_rig *rig, const int *cams, const double *u, const double *v,
                        int m, km_vec3 X, double *rss, km_mat3 *H)
{
    const double h = 1e-5; /* metres: far below the noise, far above rounding */
    memset(H, 0, sizeof *H);
    *rss = 0.0;
    for (int i = 0; i < m; i++) {
        const km_camera *cam = &rig->cameras[cams[i]];
        double pu, pv, J[2][3];
        if (!km_camera_project(cam, X, &pu, &pv))
            return false;
        *rss += (pu - u[i]) * (pu - u[i]) + (pv - v[i]) * (pv - v[i]);
        for (int k = 0; k < 3; k++) {
            km_vec3 a = X, b = X;
            double *pa = k == 0 ? &a.x : k == 1 ? &a.y : &a.z;
            double *pb = k == 0 ? &b.x : k == 1 ? &b.y : &b.z;
            *pa += h;
            *pb -= h;
            double ua, va, ub, vb;
            if (!km_camera_project(cam, a, &ua, &va) || !km_camera_project(cam, b, &ub, &vb))
                return false;
            J[0][k] = (ua - ub) / (2.0 * h);
            J[1][k] = (va - vb) / (2.0 * h);
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                H->m[r * 3 + c] += J[0][r] * J[0][c] + J[1][r] * J[1][c];
    }
    return true;
}

/* u^T H^-1 u: the variance along u per unit pixel variance; -1 when H is singular. */
static double variance_along(km_mat3 H, km_vec3 u)
{
    km_mat3 C;
    if (km_mat3_inverse(H, &C) != KM_OK)
        return -1.0;
    return km_vec3_dot(u, km_mat3_apply(C, u));
}

/* Statistics of the solved calibration into the result. */
static km_status fill_result(km_wand_calibration *wc, km_wand_result *r)
{
    const int ncam = wc->rig.camera_count;
    const int cols = wc->cfg.grid_columns, rows = wc->cfg.grid_rows;
    free(wc->coverage);
    free(wc->length_error_mm);
    wc->coverage = calloc((size_t)ncam * (size_t)rows * (size_t)cols, sizeof *wc->coverage);
    wc->length_error_mm = malloc(((size_t)wc->frame_count + 1) * sizeof *wc->length_error_mm);
    if (wc->coverage == NULL || wc->length_error_mm == NULL)
        return km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
    double sq[KM_MAX_CAMERAS] = {0}, sq_all = 0.0;
    int obs[KM_MAX_CAMERAS] = {0}, obs_all = 0;
    for (int c = 0; c < ncam; c++)
        wc->stats[c].used_count = 0;
    for (int v = 0; v < wc->view_count; v++) {
        const wand_view *w = &wc->views[v];
        if (!w->used || !wc->frames[w->frame].used)
            continue;
        double err[3];
        view_errors(wc, w, err);
        const km_camera *cam = &wc->rig.cameras[w->camera];
        int *grid = wc->coverage + (size_t)w->camera * (size_t)rows * (size_t)cols;
        for (int k = 0; k < 3; k++) {
            sq[w->camera] += err[k] * err[k];
            obs[w->camera]++;
            int gx = (int)(w->u[k] * cols / cam->width), gy = (int)(w->v[k] * rows / cam->height);
            if (gx >= 0 && gx < cols && gy >= 0 && gy < rows)
                grid[gy * cols + gx]++;
        }
        wc->stats[w->camera].used_count++;
    }
    r->camera_count = ncam;
    for (int c = 0; c < ncam; c++) {
        r->cameras[c] = wc->stats[c];
        r->cameras[c].rms_px = obs[c] ? sqrt(sq[c] / obs[c]) : 0.0;
        sq_all += sq[c];
        obs_all += obs[c];
        const int *grid = wc->coverage + (size_t)c * (size_t)rows * (size_t)cols;
        int filled = 0;
        for (int g = 0; g < rows * cols; g++)
            filled += grid[g] > 0;
        r->cameras[c].coverage_percent = 100.0 * filled / (rows * cols);
        r->coverage[c] = grid;
    }
    r->rms_px = obs_all ? sqrt(sq_all / obs_all) : 0.0;
    r->grid_columns = cols;
    r->grid_rows = rows;

    /* Wand length from markers 0 and 2 triangulated on their own (no wand constraint), each
     * from every camera that saw it: the figure an operator compares between systems. */
    const double length_m = wc->offset_m[2];
    /* A spare blob is an end marker's when it lies within 4 sigma of the image noise of its
     * projection (0.1% of true ones are further): a blob merged with a ghost or with the
     * middle marker is mostly off by more. */
    const double gate_px = wc->sigma_px > 0.0 ? 4.0 * wc->sigma_px : wc->cfg.outlier_px;
    int n = 0, used_frames = 0, noise_frames = 0;
    double sum = 0.0, sum2 = 0.0, worst = 0.0;
    /* The noise part of the length error, without the truth: the pixel noise from the
     * residuals of the free triangulations (each marker from m views leaves 2m - 3 degrees
     * of freedom), propagated through each frame's geometry to the length. */
    double rss_sum = 0.0, dof_sum = 0.0, var_unit_sum = 0.0;
    for (int f = 0; f < wc->frame_count; f++) {
        const wand_frame *fr = &wc->frames[f];
        if (!fr->used)
            continue;
        used_frames++;
        end_obs ends[2];
        memset(ends, 0, sizeof ends);
        for (int v = 0; v < fr->view_count; v++) {
            const wand_view *w = &wc->views[fr->first_view + v];
            if (!w->used)
                continue;
            for (int k = 0; k < 2; k++) {
                end_obs *eo = &ends[k];
                eo->cam[eo->n] = w->camera;
                eo->u[eo->n] = w->u[2 * k];
                eo->v[eo->n] = w->v[2 * k];
                eo->n++;
            }
        }
        km_vec3 X[2];
        const wand_blob *spare = wc->blobs + fr->first_blob;
        if (!measure_end(&wc->rig, &ends[0], spare, fr->blob_count, gate_px, &X[0]) ||
            !measure_end(&wc->rig, &ends[1], spare, fr->blob_count, gate_px, &X[1]))
            continue;
        double e = 1000.0 * (km_vec3_dist(X[0], X[1]) - length_m);
        /* Two views leave one degree of freedom per marker: too few for the noise. */
        if (ends[0].n >= 3 && ends[1].n >= 3) {
            double rss[2], var[2];
            km_mat3 H[2];
            km_vec3 dir = km_vec3_normalize(km_vec3_sub(X[1], X[0]));
            bool ok = true;
            for (int k = 0; k < 2 && ok; k++) {
                ok = point_noise(&wc->rig, ends[k].cam, ends[k].u, ends[k].v, ends[k].n, X[k],
                                 &rss[k], &H[k]);
                var[k] = ok ? variance_along(H[k], dir) : -1.0;
                ok = ok && var[k] >= 0.0;
            }
            if (ok) {
                rss_sum += rss[0] + rss[1];
                dof_sum += (2.0 * ends[0].n - 3.0) + (2.0 * ends[1].n - 3.0);
                var_unit_sum += var[0] + var[1];
                noise_frames++;
            }
        }
        wc->length_error_mm[n++] = e;
        sum += e;
        sum2 += e * e;
        worst = fmax(worst, fabs(e));
    }
    r->frames_used = used_frames;
    r->length_error_count = n;
    r->length_error_mm = wc->length_error_mm;
    r->length_error_mean_mm = n ? sum / n : 0.0;
    r->length_error_rms_mm = n ? sqrt(sum2 / n) : 0.0;
    r->length_error_max_mm = worst;
    r->pixel_noise_px = dof_sum > 0.0 ? sqrt(rss_sum / dof_sum) : 0.0;
    r->length_error_noise_mm =
        noise_frames ? 1000.0 * r->pixel_noise_px * sqrt(var_unit_sum / noise_frames) : 0.0;
    r->length_error_calibration_mm =
        sqrt(fmax(0.0, r->length_error_rms_mm * r->length_error_rms_mm -
                           r->length_error_noise_mm * r->length_error_noise_mm));
    return KM_OK;
}

km_status km_wand_calibration_solve(km_wand_calibration *wc, km_rig *rig,
                                    km_wand_result *result)
{
    if (wc == NULL || rig == NULL || result == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand solve: NULL argument");
    memset(result, 0, sizeof *result);
    result->frame_count = wc->frames_given;
    double t0 = now_seconds();
    wc->round = 0;
    wc->iterations_done = 0;
    wand_report(wc, 0.0, "checking the input (%d frames with the wand)", wc->frame_count);
    km_status st = check_input(wc);
    if (st != KM_OK)
        return st;
    for (int v = 0; v < wc->view_count; v++)
        wc->views[v].used = true;
    wc->rig = wc->input;
    int root = 0;
    if (wand_cancelled(wc))
        return km_error(KM_ERR_AGAIN, "wand: calibration cancelled");
    wand_report(wc, 0.05, "initial poses (essential matrices of the camera pairs)");
    if ((st = wand_initialise(wc, &root)) != KM_OK)
        return st;
    if (wand_cancelled(wc))
        return km_error(KM_ERR_AGAIN, "wand: calibration cancelled");
    result->root_camera = root;
    double rms = 0.0;
    {
        km_wand_result tmp;
        memset(&tmp, 0, sizeof tmp);
        if ((st = fill_result(wc, &tmp)) != KM_OK)
            return st;
        result->initial_rms_px = tmp.rms_px;
    }
    km_log(KM_LOG_INFO, "wand", "initial poses: RMS %.3f px over %d views",
           result->initial_rms_px, wc->view_count);
    int iterations = 0;
    wand_report(wc, 0.2, "bundle adjustment (initial RMS %.2f px)", result->initial_rms_px);
    for (int round = 0; round < MAX_ROUNDS; round++) {
        wc->round = round;
        if ((st = wand_bundle_adjust(wc, root, &iterations, &rms)) != KM_OK)
            return st;
        if (wand_cancelled(wc))
            return km_error(KM_ERR_AGAIN, "wand: calibration cancelled");
        int dropped = drop_outliers(wc);
        if (dropped < 0)
            return km_error(KM_ERR_NO_MEMORY, "wand: out of memory");
        if (dropped == 0)
            break;
    }
    result->iterations = iterations;
    wand_report(wc, 0.85, "statistics (wand length of every frame)");
    if ((st = fill_result(wc, result)) != KM_OK)
        return st;
    result->root_camera = root;
    result->frame_count = wc->frames_given;
    result->solve_seconds = now_seconds() - t0;
    *rig = wc->rig;
    km_log(KM_LOG_INFO, "wand", "solved %d cameras from %d frames: RMS %.3f px, wand length "
           "error RMS %.3f mm, %.2f s", rig->camera_count, result->frames_used, result->rms_px,
           result->length_error_rms_mm, result->solve_seconds);
    return KM_OK;
}

/* ------------------------------------------------------------- rig files */

km_status km_wand_save_rig(const char *path, const km_rig *rig, const km_wand_result *r)
{
    if (path == NULL || rig == NULL || r == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand save rig: NULL argument");
    size_t size = 1024 + (size_t)rig->camera_count * 256;
    char *extra = malloc(size);
    if (extra == NULL)
        return km_error(KM_ERR_NO_MEMORY, "wand save rig: out of memory");
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(extra + n, n < size ? size - n : 0, __VA_ARGS__)
    ADD("rms_reprojection_error_px: %.6f\n", r->rms_px);
    ADD("calibration_method: \"wand\"\n");
    ADD("wand_frames_used: %d\n", r->frames_used);
    ADD("wand_length_error_mean_mm: %.6f\n", r->length_error_mean_mm);
    ADD("wand_length_error_rms_mm: %.6f\n", r->length_error_rms_mm);
    ADD("wand_length_error_max_mm: %.6f\n", r->length_error_max_mm);
    ADD("wand_length_error_noise_mm: %.6f\n", r->length_error_noise_mm);
    ADD("wand_length_error_calibration_mm: %.6f\n", r->length_error_calibration_mm);
    ADD("pixel_noise_px: %.6f\n", r->pixel_noise_px);
    if (r->has_ground)
        ADD("ground_lframe_rms_mm: %.6f\n", r->ground_rms_mm);
    ADD("camera_rms_reprojection_error_px: [");
    for (int c = 0; c < r->camera_count; c++)
        ADD("%s%.6f", c ? ", " : "", r->cameras[c].rms_px);
    ADD("]\ncamera_wand_observations: [");
    for (int c = 0; c < r->camera_count; c++)
        ADD("%s%d", c ? ", " : "", r->cameras[c].used_count);
    ADD("]\n");
#undef ADD
    km_status st = n < size ? km_rig_save(path, rig, extra)
                            : km_error(KM_ERR_INTERNAL, "wand save rig: statistics too long");
    free(extra);
    return st;
}

static km_status intrinsics_from_config(km_config *cfg, const char *path, km_rig *rig,
                                        bool *multi)
{
    km_status st = KM_OK;
    long count = 0;
    st = km_config_get_int(cfg, "camera_count", 0, 1, KM_MAX_CAMERAS, &count);
    if (st != KM_OK) {
        km_config_destroy(cfg);
        return st == KM_ERR_NOT_FOUND ? km_error(KM_ERR_PARSE, "%s: camera_count: not found",
                                                 path)
                                      : st;
    }
    *multi = count > 1;
    memset(rig, 0, sizeof *rig);
    km_config_get_string(cfg, "rig_name", "wand", rig->name, sizeof rig->name);
    rig->camera_count = (int)count;
    for (int i = 0; i < count && st == KM_OK; i++) {
        km_camera *c = &rig->cameras[i];
        char key[96];
        long v;
        snprintf(key, sizeof key, "camera_%d.name", i);
        if (km_config_get_string(cfg, key, "", c->name, sizeof c->name) != KM_OK ||
            c->name[0] == '\0')
            snprintf(c->name, sizeof c->name, "cam%d", i);
        snprintf(key, sizeof key, "camera_%d.image_width", i);
        if ((st = km_config_get_int(cfg, key, 0, 1, 100000, &v)) != KM_OK)
            break;
        c->width = (int)v;
        snprintf(key, sizeof key, "camera_%d.image_height", i);
        if ((st = km_config_get_int(cfg, key, 0, 1, 100000, &v)) != KM_OK)
            break;
        c->height = (int)v;
        size_t n = 0;
        snprintf(key, sizeof key, "camera_%d.camera_matrix.data", i);
        if ((st = km_config_get_doubles(cfg, key, c->K, 9, &n)) != KM_OK)
            break;
        if (n != 9 || !(c->K[0] > 0.0 && c->K[4] > 0.0) || c->K[3] != 0.0 || c->K[6] != 0.0 ||
            c->K[7] != 0.0 || c->K[8] != 1.0) {
            st = km_error(KM_ERR_PARSE, "%s:%d: camera_%d.camera_matrix: expected 9 numbers "
                          "[fx 0 cx 0 fy cy 0 0 1] with fx, fy > 0", path,
                          km_config_line(cfg, key), i);
            break;
        }
        double d[8] = {0};
        snprintf(key, sizeof key, "camera_%d.distortion_coefficients.data", i);
        if ((st = km_config_get_doubles(cfg, key, d, 8, &n)) != KM_OK)
            break;
        if (n != 4 && n != 5) {
            st = km_error(KM_ERR_PARSE, "%s:%d: camera_%d.distortion_coefficients: expected "
                          "4 or 5 numbers (k1 k2 p1 p2 [k3])", path, km_config_line(cfg, key),
                          i);
            break;
        }
        memcpy(c->dist, d, 5 * sizeof *d);
        c->R = km_mat3_identity();
        c->has_pose = false;
    }
    if (st == KM_ERR_NOT_FOUND)
        st = km_error(KM_ERR_PARSE, "%s", km_last_error());
    km_config_destroy(cfg);
    return st;
}

static km_status load_one_file_intrinsics(const char *path, km_rig *rig, bool *multi)
{
    km_status st = KM_OK;
    km_config *cfg = km_config_load(path, &st);
    if (cfg == NULL)
        return st != KM_OK ? st : KM_ERR_PARSE;
    return intrinsics_from_config(cfg, path, rig, multi);
}

km_status km_wand_parse_intrinsics(const char *text, size_t length, const char *name,
                                   km_rig *rig)
{
    if ((text == NULL && length > 0) || rig == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand intrinsics: NULL argument");
    if (name == NULL)
        name = "(intrinsics)";
    km_status st = KM_OK;
    km_config *cfg = km_config_parse(text != NULL ? text : "", length, name, &st);
    if (cfg == NULL) {
        memset(rig, 0, sizeof *rig);
        return st != KM_OK ? st : KM_ERR_PARSE;
    }
    bool multi = false;
    st = intrinsics_from_config(cfg, name, rig, &multi);
    if (st != KM_OK)
        memset(rig, 0, sizeof *rig);
    return st;
}

km_status km_wand_load_intrinsics(const char *paths, km_rig *rig)
{
    if (paths == NULL || rig == NULL || paths[0] == '\0')
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand intrinsics: no file given");
    memset(rig, 0, sizeof *rig);
    if (strchr(paths, ',') == NULL) {
        bool multi = false;
        return load_one_file_intrinsics(paths, rig, &multi);
    }
    snprintf(rig->name, sizeof rig->name, "wand");
    const char *p = paths;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char path[4096];
        if (len == 0 || len >= sizeof path)
            return km_error(KM_ERR_INVALID_ARGUMENT, "wand intrinsics: empty or too long file "
                            "name in '%s'", paths);
        memcpy(path, p, len);
        path[len] = '\0';
        if (rig->camera_count >= KM_MAX_CAMERAS)
            return km_error(KM_ERR_CAPACITY, "wand intrinsics: more than %d files",
                            KM_MAX_CAMERAS);
        km_rig one;
        bool multi = false;
        km_status st = load_one_file_intrinsics(path, &one, &multi);
        if (st != KM_OK)
            return st;
        if (multi)
            return km_error(KM_ERR_INVALID_ARGUMENT, "%s: has %d cameras; a list of files "
                            "takes single-camera files", path, one.camera_count);
        rig->cameras[rig->camera_count] = one.cameras[0];
        snprintf(rig->cameras[rig->camera_count].name, KM_NAME_MAX, "cam%d", rig->camera_count);
        rig->camera_count++;
        p += len;
        if (*p == ',')
            p++;
    }
    return KM_OK;
}

static void write_matrix(FILE *f, const char *key, int rows, int cols, const double *data)
{
    fprintf(f, "   %s: !!opencv-matrix {rows: %d, cols: %d, dt: d, data: [", key, rows, cols);
    for (int i = 0; i < rows * cols; i++)
        fprintf(f, "%s%.17g", i ? ", " : "", data[i]);
    fprintf(f, "]}\n");
}

km_status km_wand_save_intrinsics(const char *path, const km_rig *rig)
{
    if (path == NULL || rig == NULL || rig->camera_count < 1 ||
        rig->camera_count > KM_MAX_CAMERAS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand save intrinsics: bad arguments");
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return km_error(KM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "%%YAML:1.0\n---\n");
    fprintf(f, "rig_name: \"%s\"\n", rig->name[0] ? rig->name : "intrinsics");
    fprintf(f, "camera_count: %d\n", rig->camera_count);
    for (int i = 0; i < rig->camera_count; i++) {
        const km_camera *c = &rig->cameras[i];
        fprintf(f, "camera_%d:\n   name: \"%s\"\n   image_width: %d\n   image_height: %d\n", i,
                c->name, c->width, c->height);
        write_matrix(f, "camera_matrix", 3, 3, c->K);
        write_matrix(f, "distortion_coefficients", 1, 5, c->dist);
    }
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0)
        failed = true;
    return failed ? km_error(KM_ERR_IO, "%s: write failed", path) : KM_OK;
}
