/* gesture_debug_view: draws a trajectory, its best template and the score to a PNG, to see
 * why a gesture was (not) recognised.
 *
 *   gesture_debug_view --model model --traj test.csv --sample ID --out view.png
 *
 * Three panels, the normalised trajectory (blue, from light to dark along time) over the
 * closest template (red), projected on the person's x-y (front view), x-z (top view) and
 * z-y (side view) planes; a bar at the bottom shows the score (green above the model's
 * min_score, red below), the thin mark the second-best label's score. Label and score are
 * printed on stdout. Our own line drawing into an RGB buffer, written with km_cv_write_png. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/cv.h"
#include "kinema/gesture.h"

#define PANEL 300
#define BAR 40
#define W (3 * PANEL)
#define H (PANEL + BAR)

static uint8_t image[H][W][3];

static void plot(int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= W || y >= H)
        return;
    /* km_cv_write_png takes BGR */
    image[y][x][0] = rgb & 0xff;
    image[y][x][1] = (rgb >> 8) & 0xff;
    image[y][x][2] = (rgb >> 16) & 0xff;
}

/* Bresenham, 2 px wide. */
static void line(int x0, int y0, int x1, int y1, uint32_t rgb)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        plot(x0, y0, rgb);
        plot(x0 + 1, y0, rgb);
        plot(x0, y0 + 1, rgb);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static void rect(int x0, int y0, int x1, int y1, uint32_t rgb)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            plot(x, y, rgb);
}

/* Component k of a point: 0 x, 1 y, 2 z. */
static double comp(km_vec3 p, int k)
{
    return k == 0 ? p.x : k == 1 ? p.y : p.z;
}

static void draw_path(const km_vec3 *p, size_t n, int panel, int ax, int ay, double scale,
                      bool shade, uint32_t rgb)
{
    int cx = panel * PANEL + PANEL / 2, cy = PANEL / 2;
    for (size_t i = 1; i < n; i++) {
        uint32_t c = rgb;
        if (shade) { /* light blue to dark blue along time */
            int v = 200 - (int)(180.0 * i / n);
            c = (uint32_t)(v << 16 | v << 8 | 0xff);
        }
        line(cx + (int)(comp(p[i - 1], ax) * scale), cy - (int)(comp(p[i - 1], ay) * scale),
             cx + (int)(comp(p[i], ax) * scale), cy - (int)(comp(p[i], ay) * scale), c);
    }
}

int main(int argc, char **argv)
{
    const char *model = NULL, *traj = NULL, *sample = NULL, *out = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: gesture_debug_view --model M --traj T.csv --sample ID --out V.png\n\n"
                   "Draws a trajectory of traj.csv over its best template of the model, in three "
                   "views,\nwith the score, as a PNG (why a gesture was or was not "
                   "recognised).\n");
            return 0;
        }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--traj"))
            traj = argv[i + 1];
        else if (!strcmp(argv[i], "--sample"))
            sample = argv[i + 1];
        else if (!strcmp(argv[i], "--out"))
            out = argv[i + 1];
    }
    if (!model || !traj || !sample || !out) {
        fprintf(stderr, "usage: gesture_debug_view --model M --traj T.csv --sample ID --out V.png\n");
        return 2;
    }
    km_status st;
    km_gesture_recognizer *rec = km_gesture_model_load(model, 0, &st);
    km_gesture_set *set = km_gesture_set_create();
    if (!rec || !set || km_gesture_load_traj_csv(set, traj)) {
        fprintf(stderr, "gesture_debug_view: %s\n", km_last_error());
        return 1;
    }
    const km_gesture_sample *s = NULL;
    for (size_t k = 0; k < set->count; k++)
        if (!strcmp(set->samples[k].id, sample))
            s = &set->samples[k];
    if (!s) {
        fprintf(stderr, "gesture_debug_view: no sample '%s' in %s\n", sample, traj);
        return 1;
    }
    km_gesture_result r;
    if (km_gesture_classify(rec, s->traj.pos, s->traj.count, &r) || r.best_template < 0) {
        fprintf(stderr, "gesture_debug_view: %s\n", km_last_error());
        return 1;
    }
    const km_gesture_config *cfg = km_gesture_recognizer_config(rec);
    size_t n = cfg->resample_count;
    km_vec3 *q = malloc(n * sizeof *q);
    km_gesture_resample(s->traj.pos, s->traj.count, q, n);
    km_gesture_normalize(q, n, cfg->scale, cfg->rotation);
    const km_vec3 *tmpl = km_gesture_recognizer_template(rec, (size_t)r.best_template, NULL);

    memset(image, 0xff, sizeof image);
    static const int axes[3][2] = {{0, 1}, {0, 2}, {2, 1}}; /* front, top, side */
    double scale = PANEL / 6.0; /* normalised units: RMS radius 1 -> +-3 fits */
    for (int panel = 0; panel < 3; panel++) {
        line(panel * PANEL, 0, panel * PANEL, PANEL, 0xcccccc);
        line(panel * PANEL + PANEL / 2, PANEL / 2 - 5, panel * PANEL + PANEL / 2, PANEL / 2 + 5, 0xcccccc);
        line(panel * PANEL + PANEL / 2 - 5, PANEL / 2, panel * PANEL + PANEL / 2 + 5, PANEL / 2, 0xcccccc);
        draw_path(tmpl, n, panel, axes[panel][0], axes[panel][1], scale, false, 0xe03030);
        draw_path(q, n, panel, axes[panel][0], axes[panel][1], scale, true, 0);
    }
    int bar = (int)(r.score * (W - 20));
    rect(10, PANEL + 10, 10 + bar, PANEL + BAR - 10, r.score >= cfg->min_score ? 0x30b030 : 0xd03030);
    int second = 10 + (int)(r.second_score * (W - 20));
    rect(second - 1, PANEL + 5, second + 2, PANEL + BAR - 5, 0x404040);
    int thr = 10 + (int)(cfg->min_score * (W - 20));
    rect(thr, PANEL + 5, thr + 1, PANEL + BAR - 5, 0x808080);
    if (km_cv_write_png(out, &image[0][0][0], W, H, 3 * W, 3)) {
        fprintf(stderr, "gesture_debug_view: %s\n", km_last_error());
        return 1;
    }
    printf("%s: best %s (template %d) score %.3f, second label score %.3f, %s -> %s\n", s->id,
           km_gesture_recognizer_label_name(rec, (size_t)r.best_label), r.best_template, r.score,
           r.second_score, r.label >= 0 ? "accepted" : "rejected", out);
    free(q);
    km_gesture_set_destroy(set);
    km_gesture_recognizer_destroy(rec);
    return 0;
}
