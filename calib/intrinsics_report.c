/* The one-page PNG report of an intrinsics calibration: coverage map (heat map of the grid
 * cells with every corner of the used views, coloured by its reprojection error), per-view
 * error bars against the RMS and the outlier limit, and the numbers as text. Drawn with the
 * cv/ primitives on a BGR buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"
#include "kinema/cv.h"

#define PAGE_W 1280
#define PAGE_H 820
#define BLACK 0x000000u
#define GREY 0x909090u
#define LIGHT 0xd8d8d8u
#define BLUE 0x2f6fd0u
#define RED 0xd03030u
#define GREEN 0x20a040u
#define ORANGE 0xf09020u

/* Corner colour by its error: green below 0.5 px, orange below 1 px, red above. */
static uint32_t error_colour(double e)
{
    return e < 0.5 ? GREEN : e < 1.0 ? ORANGE : RED;
}

/* White (0 corners) to a saturated warm colour (the busiest cell). */
static uint32_t heat_colour(int count, int max_count)
{
    if (count <= 0 || max_count <= 0)
        return 0xffffffu;
    double t = 0.15 + 0.85 * (double)count / max_count;
    unsigned r = 255, g = (unsigned)lround(255 - 150 * t), b = (unsigned)lround(255 - 235 * t);
    return (r << 16) | (g << 8) | b;
}

static void text(km_cv_canvas *c, double x, double y, double scale, uint32_t rgb,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void text(km_cv_canvas *c, double x, double y, double scale, uint32_t rgb,
                 const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    km_cv_draw_text(c, x, y, buf, scale, rgb, 1);
}

static void draw_coverage(km_cv_canvas *c, const km_intrinsics_result *r, double x0, double y0,
                          double box_w, double box_h)
{
    const double s = fmin(box_w / r->camera.width, box_h / r->camera.height);
    const double fw = r->camera.width * s, fh = r->camera.height * s;
    int max_count = 0;
    for (int i = 0; i < r->grid_columns * r->grid_rows; i++)
        if (r->grid_counts[i] > max_count)
            max_count = r->grid_counts[i];
    const double cw = fw / r->grid_columns, ch = fh / r->grid_rows;
    for (int gy = 0; gy < r->grid_rows; gy++)
        for (int gx = 0; gx < r->grid_columns; gx++) {
            int n = r->grid_counts[gy * r->grid_columns + gx];
            km_cv_draw_rect(c, x0 + gx * cw, y0 + gy * ch, cw, ch, heat_colour(n, max_count), -1);
            km_cv_draw_rect(c, x0 + gx * cw, y0 + gy * ch, cw, ch, LIGHT, 1);
            if (n == 0)
                text(c, x0 + gx * cw + cw / 2 - 4, y0 + gy * ch + ch / 2 + 4, 0.4, GREY, "0");
        }
    /* Rejected views first (hollow grey), used views on top (filled, error colour). */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < r->view_count; i++) {
            const km_intrinsics_view *v = &r->views[i];
            bool used = v->status == KM_VIEW_USED;
            if (v->corners == NULL || used != (pass == 1))
                continue;
            for (int k = 0; k < v->corner_count; k++) {
                double x = x0 + (v->corners[k].u_px + 0.5) * s;
                double y = y0 + (v->corners[k].v_px + 0.5) * s;
                if (used)
                    km_cv_draw_circle(c, x, y, 2.2, error_colour(v->residual_px[k]), -1);
                else
                    km_cv_draw_circle(c, x, y, 2.2, GREY, 1);
            }
        }
    km_cv_draw_rect(c, x0, y0, fw, fh, BLACK, 2);
    text(c, x0, y0 + fh + 22, 0.5, BLACK,
         "Coverage: %.0f%% of %dx%d cells hold a corner (cell colour: corner count)",
         r->coverage_percent, r->grid_columns, r->grid_rows);
    text(c, x0, y0 + fh + 42, 0.5, BLACK, "Dots: corners of used views, reprojection error");
    double lx = x0 + km_cv_text_width("Dots: corners of used views, reprojection error", 0.5, 1)
                + 12;
    const struct { uint32_t colour; const char *label; } legend[] = {
        {GREEN, "< 0.5 px"}, {ORANGE, "< 1 px"}, {RED, ">= 1 px"}, {GREY, "rejected view"}};
    for (int k = 0; k < 4; k++) {
        km_cv_draw_circle(c, lx + 4, y0 + fh + 37, 4, legend[k].colour, k == 3 ? 1 : -1);
        text(c, lx + 12, y0 + fh + 42, 0.45, BLACK, "%s", legend[k].label);
        lx += 24 + km_cv_text_width(legend[k].label, 0.45, 1);
    }
}

/* One letter for views that were not calibrated (bar chart). */
static char status_letter(km_view_status s)
{
    switch (s) {
    case KM_VIEW_UNREADABLE: return 'U';
    case KM_VIEW_WRONG_SIZE: return 'W';
    case KM_VIEW_NO_BOARD: return 'N';
    case KM_VIEW_TOO_FEW_CORNERS: return 'T';
    case KM_VIEW_BOARD_MISMATCH: return 'M';
    case KM_VIEW_BLURRY: return 'B';
    case KM_VIEW_DUPLICATE: return 'D';
    default: return '?';
    }
}

static void draw_error_bars(km_cv_canvas *c, const km_intrinsics_result *r, double x0,
                            double y0, double w, double h)
{
    /* Scale to the used views and the limit; a far-off outlier is clipped and labelled, so
     * it does not flatten the bars a person needs to compare. */
    double top = fmax(r->rms_px, r->outlier_limit_px), worst = 0.0;
    for (int i = 0; i < r->view_count; i++) {
        if (r->views[i].status == KM_VIEW_USED)
            top = fmax(top, r->views[i].error_px);
        worst = fmax(worst, r->views[i].error_px);
    }
    top = fmin(worst, 1.5 * top) > top ? fmin(worst, 1.5 * top) : top;
    /* A round axis maximum: 1, 2 or 5 times a power of ten. */
    double step = pow(10.0, floor(log10(fmax(top, 1e-3) / 4)));
    while (top / step > 5)
        step *= top / step > 10 ? 5 : 2;
    double axis_max = ceil(top * 1.05 / step) * step;
    text(c, x0, y0 - 10, 0.55, BLACK, "Reprojection error per view (RMS, px)");
    const double plot_x = x0 + 48, plot_w = w - 56, plot_y = y0 + 6, plot_h = h - 60;
    for (double v = 0; v <= axis_max + 1e-9; v += step) {
        double y = plot_y + plot_h - v / axis_max * plot_h;
        km_cv_draw_line(c, plot_x, y, plot_x + plot_w, y, LIGHT, 1);
        text(c, x0, y + 4, 0.4, BLACK, "%.*f", step < 0.1 ? 2 : step < 1 ? 1 : 0, v);
    }
    const int n = r->view_count > 0 ? r->view_count : 1;
    const double slot = plot_w / n, bar = fmax(1.0, slot * 0.7);
    const int label_every = (int)ceil(18.0 / slot);
    for (int i = 0; i < r->view_count; i++) {
        const km_intrinsics_view *v = &r->views[i];
        double x = plot_x + i * slot + (slot - bar) / 2;
        if (v->status == KM_VIEW_USED || (v->status == KM_VIEW_OUTLIER && v->error_px > 0)) {
            double bh = fmin(v->error_px, axis_max) / axis_max * plot_h;
            km_cv_draw_rect(c, x, plot_y + plot_h - bh, bar, bh,
                            v->status == KM_VIEW_USED ? BLUE : RED, -1);
            if (v->error_px > axis_max) /* clipped: say how far it goes */
                text(c, x, plot_y + 12, 0.4, BLACK, "%.1f", v->error_px);
        } else {
            /* Not calibrated: a grey stub with the reason's first letter. */
            km_cv_draw_rect(c, x, plot_y + plot_h - 4, bar, 4, GREY, -1);
            text(c, x + bar / 2 - 4, plot_y + plot_h - 8, 0.35, GREY, "%c",
                 status_letter(v->status));
        }
        if (i % label_every == 0)
            text(c, x + bar / 2 - 5, plot_y + plot_h + 16, 0.35, BLACK, "%d", i);
    }
    km_cv_draw_line(c, plot_x, plot_y + plot_h, plot_x + plot_w, plot_y + plot_h, BLACK, 1);
    double y_rms = plot_y + plot_h - r->rms_px / axis_max * plot_h;
    km_cv_draw_line(c, plot_x, y_rms, plot_x + plot_w, y_rms, GREEN, 2);
    if (r->outlier_limit_px > 0) {
        double y_lim = plot_y + plot_h - r->outlier_limit_px / axis_max * plot_h;
        for (double x = plot_x; x < plot_x + plot_w; x += 12) /* dashed */
            km_cv_draw_line(c, x, y_lim, fmin(x + 6, plot_x + plot_w), y_lim, RED, 2);
    }
    text(c, plot_x, plot_y + plot_h + 36, 0.45, BLACK,
         "view index; blue: used, red: outlier (dropped)");
    text(c, plot_x, plot_y + plot_h + 54, 0.45, BLACK,
         "green line: RMS %.3f px; dashed red: outlier limit %.2f px", r->rms_px,
         r->outlier_limit_px);
    text(c, plot_x, plot_y + plot_h + 72, 0.45, GREY,
         "not calibrated: N no board, B blurry, D duplicate, T few corners,");
    text(c, plot_x, plot_y + plot_h + 90, 0.45, GREY,
         "M board mismatch, U unreadable, W other image size");
}

km_status km_intrinsics_write_report(const km_intrinsics_result *r, const char *png_path)
{
    if (r == NULL || png_path == NULL || r->camera.width < 1 || r->camera.height < 1 ||
        r->grid_counts == NULL || (r->view_count > 0 && r->views == NULL))
        return km_error(KM_ERR_INVALID_ARGUMENT, "intrinsics report: no result or path");
    const int stride = PAGE_W * 3;
    uint8_t *pixels = malloc((size_t)stride * PAGE_H);
    if (pixels == NULL)
        return km_error(KM_ERR_NO_MEMORY, "intrinsics report: out of memory");
    memset(pixels, 255, (size_t)stride * PAGE_H);
    km_cv_canvas canvas = {pixels, PAGE_W, PAGE_H, stride};
    km_cv_canvas *c = &canvas;

    char board[160];
    km_board_describe(&r->board, board, sizeof board);
    text(c, 24, 36, 0.8, BLACK, "Kinema intrinsics calibration");
    text(c, 24, 62, 0.5, GREY, "%s; image %d x %d; %d images, %d with the board, %d used", board,
         r->camera.width, r->camera.height, r->image_count, r->detected_count, r->used_count);

    draw_coverage(c, r, 24, 90, 600, 450);
    draw_error_bars(c, r, 660, 110, 600, 400);

    /* The numbers. */
    double y = 640;
    const double *K = r->camera.K, *d = r->camera.dist;
    text(c, 24, y, 0.7, BLACK, "RMS reprojection error %.4f px", r->rms_px);
    y += 32;
    text(c, 24, y, 0.6, BLACK, "fx %.3f   fy %.3f   cx %.3f   cy %.3f   (pixels)", K[0], K[4],
         K[2], K[5]);
    y += 28;
    text(c, 24, y, 0.6, BLACK, "k1 %.6f   k2 %.6f   p1 %.6f   p2 %.6f   k3 %.6f", d[0], d[1],
         d[2], d[3], d[4]);
    y += 28;
    const double *sd = r->std_dev;
    text(c, 24, y, 0.5, BLACK,
         "one-sigma (OpenCV's estimate): fx %.2f  fy %.2f  cx %.2f  cy %.2f px;  k1 %.4f  k2 "
         "%.4f  p1 %.5f  p2 %.5f  k3 %.4f", sd[0], sd[1], sd[2], sd[3], sd[4], sd[5], sd[6],
         sd[7], sd[8]);
    y += 26;
    char flags[128] = "";
    if (r->flags == 0)
        snprintf(flags, sizeof flags, "all of fx fy cx cy k1 k2 p1 p2 k3 free");
    else
        snprintf(flags, sizeof flags, "%s%s%s%s",
                 r->flags & KM_CALIB_FIX_ASPECT_RATIO ? "fx = fy; " : "",
                 r->flags & KM_CALIB_ZERO_TANGENT_DIST ? "p1 = p2 = 0; " : "",
                 r->flags & KM_CALIB_FIX_PRINCIPAL_POINT ? "cx, cy fixed at centre; " : "",
                 r->flags & KM_CALIB_FIX_K3 ? "k3 = 0" : "");
    text(c, 24, y, 0.5, GREY, "Model: pinhole + Brown-Conrady; %s", flags);
    y += 30;
    /* Rejected views, as many lines as fit. */
    char line[200];
    size_t len = (size_t)snprintf(line, sizeof line, "Rejected:");
    int rejected = 0;
    for (int i = 0; i < r->view_count && y < PAGE_H - 10; i++) {
        const km_intrinsics_view *v = &r->views[i];
        if (v->status == KM_VIEW_USED)
            continue;
        rejected++;
        const char *base = strrchr(v->name, '/');
        base = base ? base + 1 : v->name;
        char item[120];
        if (v->status == KM_VIEW_OUTLIER)
            snprintf(item, sizeof item, " [%d] %.40s outlier %.2f px;", i, base, v->error_px);
        else
            snprintf(item, sizeof item, " [%d] %.40s %s;", i, base,
                     km_view_status_name(v->status));
        if (len + strlen(item) >= 150) {
            text(c, 24, y, 0.5, BLACK, "%s", line);
            y += 22;
            len = (size_t)snprintf(line, sizeof line, "         ");
        }
        len += (size_t)snprintf(line + len, sizeof line - len, "%s", item);
    }
    if (rejected == 0)
        snprintf(line, sizeof line, "Rejected: none");
    if (y < PAGE_H - 10)
        text(c, 24, y, 0.5, BLACK, "%s", line);

    km_status st = km_cv_write_png(png_path, pixels, PAGE_W, PAGE_H, stride, 3);
    free(pixels);
    return st;
}
