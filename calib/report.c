/* Quality report of a wand calibration (text and one PNG page), and the check of a rig
 * against a recording (per-camera reprojection errors, "bumped" cameras). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/cv.h"
#include "wand_internal.h"

/* ------------------------------------------------------------------- text */

km_status km_wand_report_text(const km_wand_result *r, const km_rig *rig, FILE *out)
{
    if (r == NULL || rig == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand report: NULL argument");
    fprintf(out, "Wand calibration: %d cameras, %d frames given, %d used, root camera %d\n",
            r->camera_count, r->frame_count, r->frames_used, r->root_camera);
    fprintf(out, "Reprojection RMS: %.3f px (initial %.3f px, %d LM iterations, %.2f s)\n",
            r->rms_px, r->initial_rms_px, r->iterations, r->solve_seconds);
    fprintf(out, "Wand length error (markers triangulated freely, %d frames): mean %+.3f mm, "
            "RMS %.3f mm, max %.3f mm\n", r->length_error_count, r->length_error_mean_mm,
            r->length_error_rms_mm, r->length_error_max_mm);
    fprintf(out, "  of its RMS, observation noise (%.3f px per axis, from the triangulation "
            "residuals) explains %.3f mm; left for the calibration: %.3f mm\n",
            r->pixel_noise_px, r->length_error_noise_mm, r->length_error_calibration_mm);
    if (r->has_ground)
        fprintf(out, "Ground plane: L-frame fit %.3f mm RMS\n", r->ground_rms_mm);
    else
        fprintf(out, "Ground plane: none (rig in the root camera's frame)\n");
    fprintf(out, "\n%-4s %-16s %8s %8s %8s %8s %9s %10s\n", "cam", "name", "blobs", "views",
            "used", "ambig.", "RMS px", "coverage");
    for (int c = 0; c < r->camera_count; c++) {
        const km_wand_camera_stats *s = &r->cameras[c];
        fprintf(out, "%-4d %-16.16s %8d %8d %8d %8d %9.3f %9.1f%%\n", c,
                c < rig->camera_count ? rig->cameras[c].name : "", s->blob_count,
                s->view_count, s->used_count, s->ambiguous_count, s->rms_px,
                s->coverage_percent);
    }
    return ferror(out) ? km_error(KM_ERR_IO, "wand report: write failed") : KM_OK;
}

/* -------------------------------------------------------------------- PNG */

#define WHITE 0xFFFFFFu
#define BLACK 0x000000u
#define GREY 0x808080u
#define LIGHT 0xD8D8D8u
#define BLUE 0x3060C0u
#define RED 0xC03030u
#define GREEN 0x309040u

static void text(km_cv_canvas *c, double x, double y, double scale, uint32_t rgb,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void text(km_cv_canvas *c, double x, double y, double scale, uint32_t rgb,
                 const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    km_cv_draw_text(c, x, y, buf, scale, rgb, 1);
}

/* White (none) -> light yellow -> orange -> dark red as counts grow (log scale). */
static uint32_t heat(int n, int max)
{
    if (n <= 0)
        return 0xF4F4F4u;
    double s = max > 1 ? log1p((double)n) / log1p((double)max) : 1.0;
    double r = 255.0 - 90.0 * s, g = 235.0 - 200.0 * s, b = 150.0 - 130.0 * s;
    return ((uint32_t)r << 16) | ((uint32_t)g << 8) | (uint32_t)b;
}

static void draw_tile(km_cv_canvas *cv, const km_wand_result *r, const km_rig *rig, int cam,
                      double x0, double y0, double w, double h)
{
    const int cols = r->grid_columns, rows = r->grid_rows;
    const int *grid = r->coverage[cam];
    int max = 0;
    for (int g = 0; g < rows * cols; g++)
        max = grid[g] > max ? grid[g] : max;
    double cw = w / cols, ch = h / rows;
    for (int gy = 0; gy < rows; gy++)
        for (int gx = 0; gx < cols; gx++)
            km_cv_draw_rect(cv, x0 + gx * cw, y0 + gy * ch, cw, ch, heat(grid[gy * cols + gx], max),
                            -1);
    km_cv_draw_rect(cv, x0, y0, w, h, BLACK, 1);
    const km_wand_camera_stats *s = &r->cameras[cam];
    text(cv, x0, y0 - 22, 0.45, BLACK, "%d %s", cam, rig->cameras[cam].name);
    text(cv, x0, y0 - 6, 0.4, s->coverage_percent < 50.0 ? RED : BLACK, "%.0f%% cov, %d views",
         s->coverage_percent, s->used_count);
}

static void draw_bars(km_cv_canvas *cv, const km_wand_result *r, double x0, double y0, double w,
                      double h)
{
    text(cv, x0, y0 - 10, 0.55, BLACK, "Reprojection RMS per camera (px)");
    double max = 0.0;
    for (int c = 0; c < r->camera_count; c++)
        max = fmax(max, r->cameras[c].rms_px);
    double top = max > 0 ? max * 1.25 : 1.0;
    /* Grid lines at round values. */
    double step = pow(10.0, floor(log10(top)));
    if (top / step < 2.5)
        step /= 5.0;
    else if (top / step < 5.0)
        step /= 2.0;
    for (double v = 0.0; v <= top + 1e-12; v += step) {
        double y = y0 + h - h * v / top;
        km_cv_draw_line(cv, x0, y, x0 + w, y, LIGHT, 1);
        text(cv, x0 - 48, y + 4, 0.38, GREY, "%.3g", v);
    }
    double slot = w / r->camera_count, bar = fmin(slot * 0.7, 60.0);
    for (int c = 0; c < r->camera_count; c++) {
        double v = r->cameras[c].rms_px, bh = h * v / top;
        double x = x0 + c * slot + (slot - bar) / 2.0;
        km_cv_draw_rect(cv, x, y0 + h - bh, bar, bh, v > 2.0 * r->rms_px ? RED : BLUE, -1);
        text(cv, x, y0 + h + 16, 0.4, BLACK, "%d", c);
        text(cv, x, y0 + h - bh - 4, 0.35, BLACK, "%.3f", v);
    }
    double ya = y0 + h - h * r->rms_px / top;
    km_cv_draw_line(cv, x0, ya, x0 + w, ya, GREEN, 1);
    km_cv_draw_line(cv, x0, y0 + h, x0 + w, y0 + h, BLACK, 1);
    text(cv, x0 + w - 120, y0 + h + 34, 0.4, GREEN, "all: %.3f px", r->rms_px);
}

static void draw_histogram(km_cv_canvas *cv, const km_wand_result *r, double x0, double y0,
                           double w, double h)
{
    text(cv, x0, y0 - 10, 0.55, BLACK, "Wand length error (mm), %d frames", r->length_error_count);
    enum { BINS = 41 };
    int count[BINS] = {0};
    double range = fmax(0.5, ceil(r->length_error_max_mm * 2.0) / 2.0);
    for (int i = 0; i < r->length_error_count; i++) {
        int b = (int)floor((r->length_error_mm[i] + range) / (2.0 * range) * BINS);
        count[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
    }
    int max = 1;
    for (int b = 0; b < BINS; b++)
        max = count[b] > max ? count[b] : max;
    double bw = w / BINS;
    for (int b = 0; b < BINS; b++) {
        double bh = h * count[b] / max;
        km_cv_draw_rect(cv, x0 + b * bw, y0 + h - bh, bw - 1, bh, BLUE, -1);
    }
    km_cv_draw_line(cv, x0, y0 + h, x0 + w, y0 + h, BLACK, 1);
    km_cv_draw_line(cv, x0 + w / 2, y0, x0 + w / 2, y0 + h, GREY, 1);
    text(cv, x0 - 10, y0 + h + 16, 0.4, BLACK, "%+.1f", -range);
    text(cv, x0 + w / 2 - 6, y0 + h + 16, 0.4, BLACK, "0");
    text(cv, x0 + w - 24, y0 + h + 16, 0.4, BLACK, "%+.1f", range);
    text(cv, x0, y0 + h + 36, 0.45, BLACK, "mean %+.3f  RMS %.3f  max %.3f mm",
         r->length_error_mean_mm, r->length_error_rms_mm, r->length_error_max_mm);
}

km_status km_wand_report_png(const km_wand_result *r, const km_rig *rig, const char *png_path)
{
    if (r == NULL || rig == NULL || png_path == NULL || r->camera_count < 1 ||
        r->grid_columns < 1 || r->grid_rows < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wand report png: bad arguments");
    for (int c = 0; c < r->camera_count; c++)
        if (r->coverage[c] == NULL)
            return km_error(KM_ERR_INVALID_ARGUMENT, "wand report png: no coverage (solve first)");
    const int tiles_per_row = 4, tile_w = 240, tile_h = 192, gap_x = 40, gap_y = 56;
    const int tile_rows = (r->camera_count + tiles_per_row - 1) / tiles_per_row;
    const int W = 1200, H = 200 + tile_rows * (tile_h + gap_y) + 340;
    const int stride = 3 * W;
    uint8_t *pixels = malloc((size_t)stride * H);
    if (pixels == NULL)
        return km_error(KM_ERR_NO_MEMORY, "wand report png: out of memory");
    memset(pixels, 255, (size_t)stride * H);
    km_cv_canvas canvas = {pixels, W, H, stride};
    km_cv_canvas *cv = &canvas;

    text(cv, 30, 40, 0.8, BLACK, "Wand calibration: %s, %d cameras", rig->name, r->camera_count);
    text(cv, 30, 72, 0.55, BLACK,
         "reprojection RMS %.3f px (initial %.2f)   frames %d used of %d   %d iterations, %.1f s",
         r->rms_px, r->initial_rms_px, r->frames_used, r->frame_count, r->iterations,
         r->solve_seconds);
    text(cv, 30, 98, 0.55, BLACK, "wand length error: mean %+.3f mm, RMS %.3f mm, max %.3f mm "
         "(noise %.3f px explains %.3f mm; calibration %.3f mm)", r->length_error_mean_mm,
         r->length_error_rms_mm, r->length_error_max_mm, r->pixel_noise_px,
         r->length_error_noise_mm, r->length_error_calibration_mm);
    if (r->has_ground)
        text(cv, 30, 124, 0.55, BLACK, "ground plane from the L-frame: fit %.3f mm RMS",
             r->ground_rms_mm);
    else
        text(cv, 30, 124, 0.55, RED, "no ground plane: rig in the root camera's frame (camera %d)",
             r->root_camera);
    text(cv, 30, 160, 0.55, BLACK, "Wand coverage per camera (image grid %dx%d; darker = more "
         "markers, grey = none)", r->grid_columns, r->grid_rows);
    for (int c = 0; c < r->camera_count; c++) {
        double x = 50 + (c % tiles_per_row) * (tile_w + gap_x);
        double y = 200 + 30 + (c / tiles_per_row) * (tile_h + gap_y);
        draw_tile(cv, r, rig, c, x, y, tile_w, tile_h);
    }
    double y_plots = 200 + tile_rows * (tile_h + gap_y) + 50;
    draw_bars(cv, r, 90, y_plots, 480, 220);
    draw_histogram(cv, r, 660, y_plots, 480, 220);
    km_status st = km_cv_write_png(png_path, pixels, W, H, stride, 3);
    free(pixels);
    return st;
}

/* -------------------------------------------------------------- rig check */

struct km_rig_check {
    km_rig rig;
    double match_px;
    int frames, points;
    double *err[KM_MAX_CAMERAS];
    int count[KM_MAX_CAMERAS], capacity[KM_MAX_CAMERAS];
};

km_rig_check *km_rig_check_create(const km_rig *rig, double match_px, km_status *err)
{
    km_status st = KM_OK;
    if (rig == NULL || rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS ||
        !(match_px > 0.0))
        st = km_error(KM_ERR_INVALID_ARGUMENT, "rig check: need a rig and match_px > 0");
    km_rig_check *k = NULL;
    if (st == KM_OK && (k = calloc(1, sizeof *k)) == NULL)
        st = km_error(KM_ERR_NO_MEMORY, "rig check: out of memory");
    if (err)
        *err = st;
    if (st != KM_OK)
        return NULL;
    k->rig = *rig;
    k->match_px = match_px;
    return k;
}

void km_rig_check_destroy(km_rig_check *k)
{
    if (k == NULL)
        return;
    for (int c = 0; c < KM_MAX_CAMERAS; c++)
        free(k->err[c]);
    free(k);
}

km_status km_rig_check_add_frame(km_rig_check *k, const km_vec3 *points, int point_count,
                                 const km_calib_blob *blobs, int blob_count)
{
    if (k == NULL || point_count < 0 || blob_count < 0 || (points == NULL && point_count) ||
        (blobs == NULL && blob_count))
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig check add: bad arguments");
    k->frames++;
    k->points += point_count;
    for (int p = 0; p < point_count; p++)
        for (int c = 0; c < k->rig.camera_count; c++) {
            double u, v;
            if (!km_camera_project(&k->rig.cameras[c], points[p], &u, &v))
                continue;
            double best = k->match_px;
            bool found = false;
            for (int b = 0; b < blob_count; b++) {
                if (blobs[b].camera != c)
                    continue;
                double d = hypot(blobs[b].x_px - u, blobs[b].y_px - v);
                if (d < best)
                    best = d, found = true;
            }
            if (!found)
                continue;
            if (k->count[c] == k->capacity[c]) {
                int cap = k->capacity[c] ? 2 * k->capacity[c] : 1024;
                double *e = realloc(k->err[c], (size_t)cap * sizeof *e);
                if (e == NULL)
                    return km_error(KM_ERR_NO_MEMORY, "rig check: out of memory");
                k->err[c] = e;
                k->capacity[c] = cap;
            }
            k->err[c][k->count[c]++] = best;
        }
    return KM_OK;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

km_status km_rig_check_result_get(const km_rig_check *k, double bump_px, double bump_factor,
                                  km_rig_check_result *out)
{
    if (k == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig check result: NULL argument");
    memset(out, 0, sizeof *out);
    const int n = k->rig.camera_count;
    out->camera_count = n;
    out->frame_count = k->frames;
    out->point_count = k->points;
    double medians[KM_MAX_CAMERAS];
    int with_data = 0;
    for (int c = 0; c < n; c++) {
        km_rig_check_camera *cc = &out->cameras[c];
        cc->matched = k->count[c];
        if (k->count[c] == 0)
            continue;
        double *e = k->err[c];
        qsort(e, (size_t)k->count[c], sizeof *e, compare_double);
        double sq = 0.0;
        for (int i = 0; i < k->count[c]; i++)
            sq += e[i] * e[i];
        cc->rms_px = sqrt(sq / k->count[c]);
        cc->median_px = e[k->count[c] / 2];
        medians[with_data++] = cc->median_px;
    }
    if (with_data > 0) {
        double sorted[KM_MAX_CAMERAS];
        memcpy(sorted, medians, (size_t)with_data * sizeof *sorted);
        qsort(sorted, (size_t)with_data, sizeof *sorted, compare_double);
        out->median_px = sorted[with_data / 2];
    }
    /* Each camera against the median of the others' medians. */
    for (int c = 0; c < n; c++) {
        km_rig_check_camera *cc = &out->cameras[c];
        if (cc->matched == 0)
            continue;
        double others[KM_MAX_CAMERAS], matched[KM_MAX_CAMERAS];
        int m = 0;
        for (int o = 0; o < n; o++)
            if (o != c && out->cameras[o].matched > 0) {
                others[m] = out->cameras[o].median_px;
                matched[m++] = out->cameras[o].matched;
            }
        if (m == 0)
            continue;
        qsort(others, (size_t)m, sizeof *others, compare_double);
        qsort(matched, (size_t)m, sizeof *matched, compare_double);
        double ref = others[m / 2];
        /* A camera moved by more than match_px keeps only chance matches: few of them. */
        cc->bumped = cc->median_px > fmax(bump_px, bump_factor * ref) ||
                     cc->matched < 0.5 * matched[m / 2];
        out->bumped_count += cc->bumped;
    }
    return KM_OK;
}

km_status km_rig_check_report_text(const km_rig_check_result *r, const km_rig *rig, FILE *out)
{
    if (r == NULL || rig == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig check report: NULL argument");
    fprintf(out, "Rig check: %d frames, %d reconstructed points, median error %.3f px\n",
            r->frame_count, r->point_count, r->median_px);
    fprintf(out, "%-4s %-16s %9s %10s %10s  %s\n", "cam", "name", "matched", "RMS px",
            "median px", "status");
    for (int c = 0; c < r->camera_count; c++) {
        const km_rig_check_camera *cc = &r->cameras[c];
        fprintf(out, "%-4d %-16.16s %9d %10.3f %10.3f  %s\n", c, rig->cameras[c].name,
                cc->matched, cc->rms_px, cc->median_px,
                cc->matched == 0 ? "NO DATA" : cc->bumped ? "BUMPED? recalibrate" : "ok");
    }
    if (r->bumped_count > 0)
        fprintf(out, "%d camera(s) look moved since the calibration.\n", r->bumped_count);
    return ferror(out) ? km_error(KM_ERR_IO, "rig check report: write failed") : KM_OK;
}
