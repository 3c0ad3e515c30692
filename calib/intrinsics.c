/* Intrinsics calibration of one camera from board images: the workflow around OpenCV's
 * detectors and solver (cv/board.cpp, cv/calibrate.cpp).
 *
 * add_image detects the board and measures the view's sharpness; the images are not kept.
 * solve selects views (blurry ones relative to the median sharpness, near-duplicates keeping
 * the sharper), calibrates, and drops outlier views one at a time: the worst view whose error
 * is far above the others (above max(threshold, factor x median, median + k x robust sigma))
 * is a candidate; it is dropped only when dropping it moves fx, fy, cx or cy by more than
 * outlier_min_shift_sigma of their standard deviations, otherwise kept (it fits worse but does
 * not bias the solution, and it is data). Why one at a time: a single bad view (a moved
 * board, a wrong corner order) raises the error of every view through the shared intrinsics;
 * removing the worst first avoids dropping good views it dragged above the limit.
 * Chessboard corners are refined with a cornerSubPix window adapted to the view (cv/board.cpp
 * KM_CV_CORNERS_ADAPTIVE); OpenCV's sample's fixed 11 px window biases the border corners of
 * small boards, which was the cause of "outlier" views in OpenCV's own sample set. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"
#include "kinema/cv.h"

#define MODULE "calib"
/* Images whose detection failed before any board was found that are re-tried with other
 * board sizes to explain an all-fail run; a few are enough and bound the extra time. */
#define HINT_TRIES 3

struct km_intrinsics {
    km_intrinsics_config cfg;
    int width, height; /* of the first readable image; 0 before */
    km_intrinsics_view *views;
    int view_count, view_capacity;
    km_board_corner *scratch; /* detection output, km_board_max_corners entries */
    int scratch_capacity;
    int *grid_counts;
    int detected_count;
    char mismatch[800]; /* first board-mismatch message, for the no-board error */
    char hint[600];     /* "a 9x6 chessboard was found in x.png" when another size fits */
    int hint_tries;
};

const char *km_view_status_name(km_view_status status)
{
    switch (status) {
    case KM_VIEW_USED: return "used";
    case KM_VIEW_DETECTED: return "detected";
    case KM_VIEW_UNREADABLE: return "unreadable";
    case KM_VIEW_WRONG_SIZE: return "wrong-image-size";
    case KM_VIEW_NO_BOARD: return "no-board";
    case KM_VIEW_TOO_FEW_CORNERS: return "too-few-corners";
    case KM_VIEW_BOARD_MISMATCH: return "board-mismatch";
    case KM_VIEW_BLURRY: return "blurry";
    case KM_VIEW_DUPLICATE: return "duplicate";
    case KM_VIEW_OUTLIER: return "outlier";
    }
    return "unknown";
}

km_intrinsics_config km_intrinsics_config_default(void)
{
    km_intrinsics_config c;
    memset(&c, 0, sizeof c);
    c.board.type = KM_BOARD_CHESSBOARD;
    c.board.columns = 9;
    c.board.rows = 6;
    c.board.square_m = 0.025;
    c.flags = 0;
    c.blur_ratio = 0.35;
    c.duplicate_px = 3.0;
    c.outlier_threshold_px = 1.0;
    c.outlier_median_factor = 2.0;
    c.outlier_spread_factor = 5.0;
    c.outlier_min_shift_sigma = 1.0;
    c.min_views = 3;
    c.min_corners = 8;
    c.grid_columns = 8;
    c.grid_rows = 6;
    return c;
}

static km_cv_corner_method corner_method(const km_intrinsics_config *c)
{
    if (c->chessboard_sb)
        return KM_CV_CORNERS_SB;
    return c->sample_corner_window ? KM_CV_CORNERS_CLASSIC : KM_CV_CORNERS_ADAPTIVE;
}

static bool board_is_valid(const km_board *b)
{
    if (!(b->square_m > 0.0) || !isfinite(b->square_m))
        return false;
    if (b->type == KM_BOARD_CHESSBOARD)
        return b->columns >= 2 && b->rows >= 2 && b->columns <= 64 && b->rows <= 64;
    if (b->type == KM_BOARD_CHARUCO)
        return b->columns >= 3 && b->rows >= 3 && b->columns <= 64 && b->rows <= 64 &&
               b->marker_m > 0.0 && b->marker_m < b->square_m && b->dictionary >= 0;
    return false;
}

km_intrinsics *km_intrinsics_create(const km_intrinsics_config *cfg, km_status *err)
{
    km_status dummy;
    if (err == NULL)
        err = &dummy;
    if (cfg == NULL) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics: NULL config");
        return NULL;
    }
    if (!board_is_valid(&cfg->board)) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics: invalid board (%dx%d, square %g m)",
                        cfg->board.columns, cfg->board.rows, cfg->board.square_m);
        return NULL;
    }
    if (cfg->min_views < 3 || cfg->min_corners < 4 || cfg->grid_columns < 1 ||
        cfg->grid_rows < 1 || cfg->grid_columns > 256 || cfg->grid_rows > 256 ||
        !(cfg->blur_ratio >= 0.0 && cfg->blur_ratio < 1.0) || !(cfg->duplicate_px >= 0.0) ||
        !(cfg->outlier_threshold_px > 0.0) || !(cfg->outlier_median_factor >= 0.0) ||
        !(cfg->outlier_spread_factor >= 0.0) || !(cfg->outlier_min_shift_sigma >= 0.0) ||
        (cfg->flags & ~(unsigned)(KM_CALIB_FIX_ASPECT_RATIO | KM_CALIB_ZERO_TANGENT_DIST |
                                  KM_CALIB_FIX_PRINCIPAL_POINT | KM_CALIB_FIX_K3)) != 0) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "intrinsics: bad config (min_views >= 3, min_corners >= 4, grid 1..256, "
                        "0 <= blur_ratio < 1, thresholds >= 0, known flags)");
        return NULL;
    }
    km_intrinsics *ki = calloc(1, sizeof *ki);
    if (ki == NULL) {
        *err = km_error(KM_ERR_NO_MEMORY, "intrinsics: out of memory");
        return NULL;
    }
    ki->cfg = *cfg;
    ki->scratch_capacity = km_board_max_corners(&cfg->board);
    ki->scratch = calloc((size_t)ki->scratch_capacity, sizeof *ki->scratch);
    ki->grid_counts = calloc((size_t)cfg->grid_columns * (size_t)cfg->grid_rows, sizeof(int));
    if (ki->scratch == NULL || ki->grid_counts == NULL) {
        km_intrinsics_destroy(ki);
        *err = km_error(KM_ERR_NO_MEMORY, "intrinsics: out of memory");
        return NULL;
    }
    *err = KM_OK;
    return ki;
}

void km_intrinsics_destroy(km_intrinsics *ki)
{
    if (ki == NULL)
        return;
    for (int i = 0; i < ki->view_count; i++) {
        free(ki->views[i].corners);
        free(ki->views[i].residual_px);
    }
    free(ki->views);
    free(ki->scratch);
    free(ki->grid_counts);
    free(ki);
}

/* Contrast-normalised sharpness over the board's bounding box: variance of the 4-neighbour
 * Laplacian divided by the variance of the intensity. Blur lowers the first much more than
 * the second, while lighting and print contrast scale both alike. */
static double board_sharpness(const uint8_t *gray, int width, int height, int stride,
                              const km_board_corner *c, int count)
{
    double x0 = c[0].u_px, x1 = x0, y0 = c[0].v_px, y1 = y0;
    for (int i = 1; i < count; i++) {
        x0 = fmin(x0, c[i].u_px);
        x1 = fmax(x1, c[i].u_px);
        y0 = fmin(y0, c[i].v_px);
        y1 = fmax(y1, c[i].v_px);
    }
    int ix0 = (int)fmax(1.0, floor(x0)), ix1 = (int)fmin(width - 2.0, ceil(x1));
    int iy0 = (int)fmax(1.0, floor(y0)), iy1 = (int)fmin(height - 2.0, ceil(y1));
    double sum_i = 0, sum_i2 = 0, sum_l = 0, sum_l2 = 0;
    long n = 0;
    for (int y = iy0; y <= iy1; y++) {
        const uint8_t *row = gray + (size_t)y * (size_t)stride;
        for (int x = ix0; x <= ix1; x++) {
            double p = row[x];
            double lap = 4.0 * p - row[x - 1] - row[x + 1] - row[x - stride] - row[x + stride];
            sum_i += p;
            sum_i2 += p * p;
            sum_l += lap;
            sum_l2 += lap * lap;
            n++;
        }
    }
    if (n < 4)
        return 0.0;
    double var_i = sum_i2 / n - (sum_i / n) * (sum_i / n);
    double var_l = sum_l2 / n - (sum_l / n) * (sum_l / n);
    return var_i > 1e-9 ? var_l / var_i : 0.0;
}

static km_status append_view(km_intrinsics *ki, const char *name, km_intrinsics_view **out)
{
    if (ki->view_count == ki->view_capacity) {
        int cap = ki->view_capacity ? 2 * ki->view_capacity : 16;
        km_intrinsics_view *v = realloc(ki->views, (size_t)cap * sizeof *v);
        if (v == NULL)
            return km_error(KM_ERR_NO_MEMORY, "intrinsics: out of memory");
        ki->views = v;
        ki->view_capacity = cap;
    }
    km_intrinsics_view *v = &ki->views[ki->view_count++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name ? name : "");
    v->duplicate_of = -1;
    *out = v;
    return KM_OK;
}

/* No board of the given size: would another size have matched? Explains a --board that
 * counts squares instead of inner corners, or a ChArUco board with columns and rows
 * swapped. Only while no board at all was found, on the first few images. */
static void try_hint(km_intrinsics *ki, const char *name, const uint8_t *gray, int width,
                     int height, int stride)
{
    const km_board *b = &ki->cfg.board;
    km_board alt[6];
    int n = 0;
    if (b->type == KM_BOARD_CHESSBOARD) {
        const int d[6][2] = {{-1, -1}, {1, 1}, {-1, 0}, {0, -1}, {1, 0}, {0, 1}};
        for (int k = 0; k < 6; k++) {
            km_board a = *b;
            a.columns += d[k][0];
            a.rows += d[k][1];
            if (a.columns >= 2 && a.rows >= 2)
                alt[n++] = a;
        }
    } else if (b->columns != b->rows) {
        alt[n] = *b;
        alt[n].columns = b->rows;
        alt[n].rows = b->columns;
        n++;
    }
    for (int k = 0; k < n; k++) {
        int cap = km_board_max_corners(&alt[k]);
        km_board_corner *tmp = malloc((size_t)cap * sizeof *tmp);
        if (tmp == NULL)
            return;
        int count = 0;
        km_status st = km_cv_detect_board(
            &alt[k], corner_method(&ki->cfg), gray,
            width, height, stride, tmp, cap, &count, NULL);
        free(tmp);
        if (st == KM_OK && count >= ki->cfg.min_corners) {
            char desc[160];
            km_board_describe(&alt[k], desc, sizeof desc);
            snprintf(ki->hint, sizeof ki->hint, "a %s was found in %s%s", desc, name,
                     b->type == KM_BOARD_CHESSBOARD
                         ? " (--board counts INNER corners: squares - 1 per side)"
                         : " (columns and rows swapped?)");
            return;
        }
    }
    km_clear_error();
}

km_status km_intrinsics_add_image(km_intrinsics *ki, const char *name, const uint8_t *gray,
                                  int width, int height, int stride, km_view_status *status)
{
    if (ki == NULL || gray == NULL || width < 8 || height < 8 || stride < width)
        return km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics add image: bad arguments");
    km_intrinsics_view *v;
    km_status st = append_view(ki, name, &v);
    if (st != KM_OK)
        return st;
    const int index = ki->view_count - 1;
    if (ki->width == 0) {
        ki->width = width;
        ki->height = height;
    } else if (width != ki->width || height != ki->height) {
        v->status = KM_VIEW_WRONG_SIZE;
        km_log(KM_LOG_WARN, MODULE, "[%d] %s: %dx%d image, the first was %dx%d: skipped", index,
               v->name, width, height, ki->width, ki->height);
        goto done;
    }
    int count = 0, markers = 0;
    st = km_cv_detect_board(&ki->cfg.board,
                            corner_method(&ki->cfg), gray,
                            width, height, stride, ki->scratch, ki->scratch_capacity, &count,
                            &markers);
    if (st == KM_ERR_NUMERIC) { /* markers that do not fit the board */
        v->status = KM_VIEW_BOARD_MISMATCH;
        if (ki->mismatch[0] == '\0')
            snprintf(ki->mismatch, sizeof ki->mismatch, "%.200s: %.500s", v->name, km_last_error());
        km_log(KM_LOG_WARN, MODULE, "[%d] %s: %s", index, v->name, km_last_error());
        if (ki->detected_count == 0 && ki->hint_tries < HINT_TRIES) {
            ki->hint_tries++;
            try_hint(ki, v->name, gray, width, height, stride);
        }
        goto done;
    }
    if (st != KM_OK) {
        ki->view_count--;
        return st;
    }
    if (count == 0) {
        v->status = KM_VIEW_NO_BOARD;
        if (markers > 0)
            km_log(KM_LOG_INFO, MODULE, "[%d] %s: %d markers but no board corner", index,
                   v->name, markers);
        else
            km_log(KM_LOG_INFO, MODULE, "[%d] %s: no board", index, v->name);
        if (ki->detected_count == 0 && ki->hint_tries < HINT_TRIES && ki->hint[0] == '\0') {
            ki->hint_tries++;
            try_hint(ki, v->name, gray, width, height, stride);
        }
        goto done;
    }
    v->corner_count = count;
    if (count < ki->cfg.min_corners) {
        v->status = KM_VIEW_TOO_FEW_CORNERS;
        km_log(KM_LOG_INFO, MODULE, "[%d] %s: only %d corners (need %d)", index, v->name, count,
               ki->cfg.min_corners);
        goto done;
    }
    v->corners = malloc((size_t)count * sizeof *v->corners);
    v->residual_px = calloc((size_t)count, sizeof *v->residual_px);
    if (v->corners == NULL || v->residual_px == NULL) {
        free(v->corners);
        free(v->residual_px);
        ki->view_count--;
        return km_error(KM_ERR_NO_MEMORY, "intrinsics: out of memory");
    }
    memcpy(v->corners, ki->scratch, (size_t)count * sizeof *v->corners);
    v->sharpness = board_sharpness(gray, width, height, stride, v->corners, count);
    v->status = KM_VIEW_DETECTED;
    ki->detected_count++;
    km_log(KM_LOG_INFO, MODULE, "[%d] %s: %d corners, sharpness %.3f", index, v->name, count,
           v->sharpness);
done:
    if (status != NULL)
        *status = v->status;
    return KM_OK;
}

km_status km_intrinsics_add_file(km_intrinsics *ki, const char *path, km_view_status *status)
{
    if (ki == NULL || path == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics add file: NULL argument");
    uint8_t *pixels = NULL;
    int w = 0, h = 0;
    if (km_cv_read_gray(path, &pixels, &w, &h) != KM_OK || w < 8 || h < 8) {
        free(pixels);
        km_log(KM_LOG_WARN, MODULE, "[%d] %s: %s", ki->view_count, path, km_last_error());
        km_intrinsics_view *v;
        km_status st = append_view(ki, path, &v);
        if (st != KM_OK)
            return st;
        v->status = KM_VIEW_UNREADABLE;
        if (status != NULL)
            *status = v->status;
        return KM_OK;
    }
    km_status st = km_intrinsics_add_image(ki, path, pixels, w, h, w, status);
    free(pixels);
    return st;
}

km_status km_intrinsics_add_glob(km_intrinsics *ki, const char *pattern)
{
    if (ki == NULL || pattern == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics add glob: NULL argument");
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0) {
        if (rc != GLOB_NOMATCH)
            globfree(&g);
        return km_error(KM_ERR_NOT_FOUND, "no image file matches '%s'", pattern);
    }
    km_log(KM_LOG_INFO, MODULE, "%zu images match '%s'", g.gl_pathc, pattern);
    km_status st = KM_OK;
    for (size_t i = 0; i < g.gl_pathc && st == KM_OK; i++)
        st = km_intrinsics_add_file(ki, g.gl_pathv[i], NULL);
    globfree(&g);
    return st;
}

/* --------------------------------------------------------------- selection */

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (n >= 1); sorts a copy in `tmp`. */
static double median(const double *values, int n, double *tmp)
{
    memcpy(tmp, values, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, compare_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

/* Mean distance between the corners two views share; `reversed` pairs id with max-1-id (a
 * chessboard seen at the same place but numbered from the other end). -1 when fewer than
 * half of the smaller view's corners are shared. */
static double view_distance(const km_intrinsics_view *a, const km_intrinsics_view *b,
                            int max_corners, bool reversed)
{
    double sum = 0.0;
    int shared = 0;
    for (int i = 0; i < a->corner_count; i++) {
        int want = reversed ? max_corners - 1 - a->corners[i].id : a->corners[i].id;
        /* Chessboards have all corners in id order; ChArUco subsets are sorted by id too,
         * but a linear search keeps this independent of that. */
        for (int j = 0; j < b->corner_count; j++)
            if (b->corners[j].id == want) {
                sum += hypot(a->corners[i].u_px - b->corners[j].u_px,
                             a->corners[i].v_px - b->corners[j].v_px);
                shared++;
                break;
            }
    }
    int smaller = a->corner_count < b->corner_count ? a->corner_count : b->corner_count;
    if (shared == 0 || 2 * shared < smaller)
        return -1.0;
    return sum / shared;
}

static bool is_detected(km_view_status s)
{
    return s == KM_VIEW_USED || s == KM_VIEW_DETECTED || s == KM_VIEW_BLURRY ||
           s == KM_VIEW_DUPLICATE || s == KM_VIEW_OUTLIER;
}

/* "3 no-board, 1 blurry" for the too-few-views error. */
static void status_summary(const km_intrinsics *ki, char *out, size_t size)
{
    int counts[KM_VIEW_OUTLIER + 1] = {0};
    for (int i = 0; i < ki->view_count; i++)
        counts[ki->views[i].status]++;
    size_t len = 0;
    out[0] = '\0';
    for (int s = 0; s <= KM_VIEW_OUTLIER && len < size; s++)
        if (counts[s] > 0)
            len += (size_t)snprintf(out + len, size - len, "%s%d %s", len ? ", " : "",
                                    counts[s], km_view_status_name((km_view_status)s));
}

/* Mark blurry views and duplicates among the detected ones; returns how many remain. */
static int select_views(km_intrinsics *ki, double *tmp)
{
    const km_intrinsics_config *c = &ki->cfg;
    int n = 0;
    for (int i = 0; i < ki->view_count; i++)
        if (is_detected(ki->views[i].status)) {
            ki->views[i].status = KM_VIEW_DETECTED;
            ki->views[i].duplicate_of = -1;
            ki->views[i].error_px = 0.0;
            ki->views[i].drop_shift_sigma = 0.0;
            tmp[n++] = ki->views[i].sharpness;
        }
    if (n == 0)
        return 0;
    double *sorted = tmp + ki->view_count;
    double med = median(tmp, n, sorted);
    int kept = n;
    if (c->blur_ratio > 0.0)
        for (int i = 0; i < ki->view_count; i++) {
            km_intrinsics_view *v = &ki->views[i];
            if (v->status == KM_VIEW_DETECTED && v->sharpness < c->blur_ratio * med) {
                v->status = KM_VIEW_BLURRY;
                kept--;
                km_log(KM_LOG_INFO, MODULE, "%s: blurry (sharpness %.3f < %.2f x median %.3f)",
                       v->name, v->sharpness, c->blur_ratio, med);
            }
        }
    if (c->duplicate_px <= 0.0)
        return kept;
    /* Greedy from the sharpest: a view is a duplicate of a sharper view kept before it. */
    int *order = malloc((size_t)ki->view_count * sizeof *order);
    if (order == NULL)
        return kept; /* selection is an improvement; without memory, skip it */
    int m = 0;
    for (int i = 0; i < ki->view_count; i++)
        if (ki->views[i].status == KM_VIEW_DETECTED)
            order[m++] = i;
    for (int a = 1; a < m; a++) /* insertion sort by sharpness, descending; m is small */
        for (int b = a; b > 0 && ki->views[order[b]].sharpness > ki->views[order[b - 1]].sharpness;
             b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    const int max_corners = km_board_max_corners(&c->board);
    for (int a = 1; a < m; a++) {
        km_intrinsics_view *v = &ki->views[order[a]];
        for (int b = 0; b < a; b++) {
            const km_intrinsics_view *k = &ki->views[order[b]];
            if (k->status != KM_VIEW_DETECTED)
                continue;
            double d = view_distance(v, k, max_corners, false);
            if (c->board.type == KM_BOARD_CHESSBOARD) {
                double r = view_distance(v, k, max_corners, true);
                if (r >= 0.0 && (d < 0.0 || r < d))
                    d = r;
            }
            if (d >= 0.0 && d < c->duplicate_px) {
                v->status = KM_VIEW_DUPLICATE;
                v->duplicate_of = order[b];
                kept--;
                km_log(KM_LOG_INFO, MODULE, "%s: duplicate of %s (corners %.2f px apart)",
                       v->name, k->name, d);
                break;
            }
        }
    }
    free(order);
    return kept;
}

/* ---------------------------------------------------------------- solving */

typedef struct solve_work {
    km_cv_calibration_view *cv_views;
    int *index;        /* cv view -> km view */
    double *view_rms;  /* per cv view */
    double *residuals; /* all points */
    double *tmp;       /* 2 x view_count scratch */
    bool *kept;        /* per km view: over the limit but kept */
} solve_work;

/* The outlier limit of one round: max(threshold, factor x median, median + spread_factor x
 * robust sigma) with sigma = 1.4826 x the median absolute deviation of the view errors (the
 * standard deviation for normally distributed errors, unmoved by the outliers themselves). */
static double outlier_limit(const km_intrinsics_config *c, const double *view_rms, int n,
                            double *tmp, double *med_out, double *sigma_out)
{
    double med = median(view_rms, n, tmp);
    double *dev = tmp + n;
    for (int k = 0; k < n; k++)
        dev[k] = fabs(view_rms[k] - med);
    double sigma = 1.4826 * median(dev, n, tmp);
    *med_out = med;
    *sigma_out = sigma;
    return fmax(c->outlier_threshold_px,
                fmax(c->outlier_median_factor * med, med + c->outlier_spread_factor * sigma));
}

/* Calibrate the USED views; on success copy errors and residuals into them. */
static km_status calibrate_used(km_intrinsics *ki, solve_work *w, int *n_out, double K[9],
                                double dist[5], double *rms, double std_dev[9])
{
    int n = 0;
    for (int i = 0; i < ki->view_count; i++)
        if (ki->views[i].status == KM_VIEW_USED) {
            w->cv_views[n] = (km_cv_calibration_view){ki->views[i].corners,
                                                      ki->views[i].corner_count};
            w->index[n++] = i;
        }
    *n_out = n;
    km_status st = km_cv_calibrate_camera(w->cv_views, n, ki->width, ki->height, ki->cfg.flags,
                                          K, dist, rms, w->view_rms, w->residuals, std_dev);
    if (st != KM_OK)
        return st;
    size_t point = 0;
    for (int k = 0; k < n; k++) {
        km_intrinsics_view *v = &ki->views[w->index[k]];
        v->error_px = w->view_rms[k];
        memcpy(v->residual_px, w->residuals + point, (size_t)v->corner_count * sizeof(double));
        point += (size_t)v->corner_count;
    }
    return KM_OK;
}

km_status km_intrinsics_solve(km_intrinsics *ki, km_intrinsics_result *out)
{
    if (ki == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics solve: NULL argument");
    memset(out, 0, sizeof *out);
    const km_intrinsics_config *c = &ki->cfg;
    char board[160];
    km_board_describe(&c->board, board, sizeof board);
    if (ki->view_count == 0)
        return km_error(KM_ERR_NOT_FOUND, "intrinsics: no images were given");
    if (ki->detected_count == 0) {
        char extra[900] = "";
        if (ki->hint[0] != '\0')
            snprintf(extra, sizeof extra, "; but %s", ki->hint);
        else if (ki->mismatch[0] != '\0')
            snprintf(extra, sizeof extra, "; %s", ki->mismatch);
        return km_error(KM_ERR_NOT_FOUND, "intrinsics: no %s found in any of the %d images%s",
                        board, ki->view_count, extra);
    }

    size_t total_points = 0;
    for (int i = 0; i < ki->view_count; i++)
        total_points += (size_t)ki->views[i].corner_count;
    solve_work w;
    w.cv_views = malloc((size_t)ki->view_count * sizeof *w.cv_views);
    w.index = malloc((size_t)ki->view_count * sizeof *w.index);
    w.view_rms = malloc((size_t)ki->view_count * sizeof *w.view_rms);
    w.residuals = malloc((total_points + 1) * sizeof *w.residuals);
    w.tmp = malloc(3 * (size_t)ki->view_count * sizeof *w.tmp);
    w.kept = malloc((size_t)ki->view_count * sizeof *w.kept);
    km_status st = KM_OK;
    if (!w.cv_views || !w.index || !w.view_rms || !w.residuals || !w.tmp || !w.kept) {
        st = km_error(KM_ERR_NO_MEMORY, "intrinsics: out of memory");
        goto out;
    }

    int kept = select_views(ki, w.tmp);
    if (kept < c->min_views) {
        char summary[300];
        for (int i = 0; i < ki->view_count; i++)
            if (ki->views[i].status == KM_VIEW_DETECTED)
                ki->views[i].status = KM_VIEW_USED; /* for the summary's wording */
        status_summary(ki, summary, sizeof summary);
        st = km_error(KM_ERR_INVALID_ARGUMENT,
                      "intrinsics: only %d usable view%s of the %s (need at least %d): %d "
                      "images: %s",
                      kept, kept == 1 ? "" : "s", board, c->min_views, ki->view_count, summary);
        goto out;
    }
    for (int i = 0; i < ki->view_count; i++)
        if (ki->views[i].status == KM_VIEW_DETECTED)
            ki->views[i].status = KM_VIEW_USED;

    double K[9], dist[5], std_dev[9], rms = 0.0, limit = 0.0;
    int n = 0;
    /* kept[i]: view i was over the limit but dropping it did not move the solution. */
    for (int i = 0; i < ki->view_count; i++)
        w.kept[i] = false;
    for (;;) {
        st = calibrate_used(ki, &w, &n, K, dist, &rms, std_dev);
        if (st != KM_OK)
            goto out;
        km_log(KM_LOG_INFO, MODULE, "calibrated %d views: RMS %.4f px, fx %.2f fy %.2f cx %.2f "
               "cy %.2f", n, rms, K[0], K[4], K[2], K[5]);
        double med = 0.0, sigma = 0.0;
        limit = outlier_limit(c, w.view_rms, n, w.tmp, &med, &sigma);
        if (c->outlier_median_factor <= 0.0 || n - 1 < c->min_views)
            break;
        int worst = -1;
        for (int k = 0; k < n; k++)
            if (!w.kept[w.index[k]] && w.view_rms[k] > limit &&
                (worst < 0 || w.view_rms[k] > w.view_rms[worst]))
                worst = k;
        if (worst < 0)
            break;
        /* Trial without the candidate: does it change the solution beyond its uncertainty? */
        const int vi = w.index[worst];
        km_intrinsics_view *v = &ki->views[vi];
        const double error_px = w.view_rms[worst];
        double K2[9], dist2[5], sd2[9], rms2 = 0.0;
        int n2 = 0;
        v->status = KM_VIEW_OUTLIER;
        st = calibrate_used(ki, &w, &n2, K2, dist2, &rms2, sd2);
        if (st != KM_OK)
            goto out;
        v->error_px = error_px; /* its error in the last round it took part in */
        const int param_k[4] = {0, 4, 2, 5};
        double shift = 0.0;
        for (int p = 0; p < 4; p++)
            if (sd2[p] > 0.0) /* 0: fixed by the flags */
                shift = fmax(shift, fabs(K2[param_k[p]] - K[param_k[p]]) / sd2[p]);
        v->drop_shift_sigma = shift;
        if (shift >= c->outlier_min_shift_sigma) {
            km_log(KM_LOG_INFO, MODULE, "%s: outlier (error %.3f px > limit %.3f px = max(%.2f, "
                   "%.1f x median %.3f, median + %.1f x robust sigma %.3f)), dropping it moves "
                   "the intrinsics by %.1f sigma: dropped",
                   v->name, error_px, limit, c->outlier_threshold_px, c->outlier_median_factor,
                   med, c->outlier_spread_factor, sigma, shift);
            continue;
        }
        km_log(KM_LOG_INFO, MODULE, "%s: error %.3f px over the limit %.3f px, but dropping it "
               "moves the intrinsics by only %.2f sigma (< %.2f): kept", v->name, error_px,
               limit, shift, c->outlier_min_shift_sigma);
        v->status = KM_VIEW_USED;
        w.kept[vi] = true;
    }

    /* Coverage of the image by the corners of the used views. */
    const int gc = c->grid_columns, gr = c->grid_rows;
    memset(ki->grid_counts, 0, (size_t)gc * (size_t)gr * sizeof(int));
    int used = 0;
    for (int i = 0; i < ki->view_count; i++) {
        const km_intrinsics_view *v = &ki->views[i];
        if (v->status != KM_VIEW_USED)
            continue;
        used++;
        for (int k = 0; k < v->corner_count; k++) {
            /* Pixel centres span [-0.5, size - 0.5]. */
            int cx = (int)floor((v->corners[k].u_px + 0.5) * gc / ki->width);
            int cy = (int)floor((v->corners[k].v_px + 0.5) * gr / ki->height);
            if (cx >= 0 && cx < gc && cy >= 0 && cy < gr)
                ki->grid_counts[cy * gc + cx]++;
        }
    }
    int covered = 0;
    for (int i = 0; i < gc * gr; i++)
        covered += ki->grid_counts[i] > 0;

    km_camera *cam = &out->camera;
    snprintf(cam->name, sizeof cam->name, "cam0");
    cam->width = ki->width;
    cam->height = ki->height;
    memcpy(cam->K, K, sizeof cam->K);
    memcpy(cam->dist, dist, sizeof cam->dist);
    cam->R = km_mat3_identity();
    cam->t = km_vec3_make(0, 0, 0);
    cam->has_pose = false;
    out->board = c->board;
    out->flags = c->flags;
    out->rms_px = rms;
    memcpy(out->std_dev, std_dev, sizeof out->std_dev);
    out->outlier_limit_px = c->outlier_median_factor > 0.0 ? limit : 0.0;
    out->image_count = ki->view_count;
    out->detected_count = ki->detected_count;
    out->used_count = used;
    out->coverage_percent = 100.0 * covered / (gc * gr);
    out->grid_columns = gc;
    out->grid_rows = gr;
    out->grid_counts = ki->grid_counts;
    out->view_count = ki->view_count;
    out->views = ki->views;
    km_log(KM_LOG_INFO, MODULE, "%d of %d images used, RMS %.4f px, coverage %.0f%% of %dx%d "
           "cells", used, ki->view_count, rms, out->coverage_percent, gc, gr);
    if (out->coverage_percent < 50.0)
        km_log(KM_LOG_WARN, MODULE, "the board covered only %.0f%% of the image: distortion "
               "near the edges is extrapolated; add views with the board near the borders",
               out->coverage_percent);
out:
    free(w.cv_views);
    free(w.index);
    free(w.view_rms);
    free(w.residuals);
    free(w.tmp);
    free(w.kept);
    return st;
}

km_status km_intrinsics_save(const km_intrinsics_result *r, const char *path)
{
    if (r == NULL || path == NULL || r->camera.width < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics save: no result or path");
    km_rig *rig = calloc(1, sizeof *rig);
    if (rig == NULL)
        return km_error(KM_ERR_NO_MEMORY, "intrinsics save: out of memory");
    snprintf(rig->name, sizeof rig->name, "intrinsics");
    rig->camera_count = 1;
    rig->cameras[0] = r->camera;
    char board[160], extra[600];
    km_board_describe(&r->board, board, sizeof board);
    snprintf(extra, sizeof extra,
             "rms_reprojection_error_px: %.17g\n"
             "calibration_board: \"%s\"\n"
             "calibration_images: %d\n"
             "calibration_views_used: %d\n"
             "calibration_coverage_percent: %.1f\n",
             r->rms_px, board, r->image_count, r->used_count, r->coverage_percent);
    km_status st = km_rig_save(path, rig, extra);
    free(rig);
    return st;
}
