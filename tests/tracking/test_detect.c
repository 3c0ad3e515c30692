/* Tests of tracking/detect.c: exact and subpixel centroids, filters, 8-connectivity, capacity,
 * borders, stride, agreement with a brute-force flood-fill labelling, and no allocation per
 * frame (malloc/calloc/realloc are wrapped with -Wl,--wrap in this executable). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"

/* ------------------------------------------------------ allocation counter */

#include "../common/alloc_count.h"

/* ------------------------------------------------------------- fixtures */

typedef struct image {
    int width, height, stride;
    uint8_t *pixels;
} image;

static image image_make(int width, int height, int stride, uint8_t fill)
{
    image im = {width, height, stride, malloc((size_t)stride * (size_t)height)};
    assert_non_null(im.pixels);
    memset(im.pixels, fill, (size_t)stride * (size_t)height);
    return im;
}

static void set_px(image *im, int x, int y, int v)
{
    im->pixels[(size_t)y * (size_t)im->stride + (size_t)x] = (uint8_t)v;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static double uniform(void)
{
    /* xorshift64*: reproducible across platforms. */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

static double gaussian(void)
{
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Add an anti-aliased disk: each pixel gains amplitude * (area fraction covered), the
 * area estimated with 16x16 subsamples. Pixel (0,0) is the centre of the top-left pixel. */
static void add_disk(double *acc, int width, int height, double cx, double cy, double r,
                     double amplitude)
{
    const int n = 16;
    for (int y = (int)floor(cy - r - 1); y <= (int)ceil(cy + r + 1); y++) {
        if (y < 0 || y >= height)
            continue;
        for (int x = (int)floor(cx - r - 1); x <= (int)ceil(cx + r + 1); x++) {
            if (x < 0 || x >= width)
                continue;
            int inside = 0;
            for (int sy = 0; sy < n; sy++) {
                const double py = y - 0.5 + (sy + 0.5) / n - cy;
                for (int sx = 0; sx < n; sx++) {
                    const double px = x - 0.5 + (sx + 0.5) / n - cx;
                    inside += px * px + py * py <= r * r;
                }
            }
            acc[(size_t)y * (size_t)width + (size_t)x] += amplitude * inside / (n * n);
        }
    }
}

static void quantize(const double *acc, image *im, double background, double noise_sigma)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            double v = background + acc[(size_t)y * (size_t)im->width + (size_t)x];
            if (noise_sigma > 0)
                v += noise_sigma * gaussian();
            v = floor(v + 0.5);
            set_px(im, x, y, v < 0 ? 0 : v > 255 ? 255 : (int)v);
        }
}

static km_detector *make_detector(int threshold, int min_area, int max_area, double roundness,
                                  int w, int h)
{
    km_detect_config cfg = km_detect_config_default();
    cfg.threshold = threshold;
    cfg.min_area_px = min_area;
    cfg.max_area_px = max_area;
    cfg.min_roundness = roundness;
    km_status st = KM_ERR_INTERNAL;
    km_detector *d = km_detector_create(&cfg, w, h, &st);
    assert_non_null(d);
    assert_int_equal(st, KM_OK);
    return d;
}

/* ---------------------------------------------------------------- tests */

static void test_config_and_arguments(void **state)
{
    (void)state;
    km_detect_config cfg = km_detect_config_default();
    assert_int_equal(cfg.threshold, 64);
    km_status st = KM_OK;
    cfg.min_roundness = 1.5;
    assert_null(km_detector_create(&cfg, 64, 64, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    cfg = km_detect_config_default();
    cfg.max_area_px = 1;
    assert_null(km_detector_create(&cfg, 64, 64, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    cfg = km_detect_config_default();
    assert_null(km_detector_create(&cfg, 0, 64, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);

    km_detector *d = km_detector_create(NULL, 64, 32, &st);
    assert_non_null(d);
    image im = image_make(64, 32, 64, 0);
    km_blob out[4];
    int count = -1;
    assert_int_equal(km_detector_run(d, im.pixels, 65, 32, 65, out, 4, &count),
                     KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_detector_run(d, im.pixels, 64, 33, 64, out, 4, &count),
                     KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_detector_run(d, im.pixels, 64, 32, 63, out, 4, &count),
                     KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_detector_run(d, NULL, 64, 32, 64, out, 4, &count),
                     KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_detector_run(d, im.pixels, 64, 32, 64, out, 4, &count), KM_OK);
    assert_int_equal(count, 0);
    free(im.pixels);
    km_detector_destroy(d);
    km_detector_destroy(NULL);
}

/* Symmetric weights give the centre exactly; a two-pixel run gives the weighted mean. */
static void test_exact_centroids(void **state)
{
    (void)state;
    const int t = 50;
    image im = image_make(100, 60, 100, 10);
    /* 3x3 with a symmetric profile around (20, 30). */
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            set_px(&im, 20 + dx, 30 + dy, t + 40 - 15 * (abs(dx) + abs(dy)));
    /* 2x2 uniform at (70..71, 10..11): centre (70.5, 10.5). */
    for (int dy = 0; dy <= 1; dy++)
        for (int dx = 0; dx <= 1; dx++)
            set_px(&im, 70 + dx, 10 + dy, 200);
    /* 1x3 with weights 1, 3, 6 along x at y = 50, x = 40..42, plus one row above and below
     * with weight 2 at x = 41 so it passes the roundness filter. */
    set_px(&im, 40, 50, t + 1);
    set_px(&im, 41, 50, t + 3);
    set_px(&im, 42, 50, t + 6);
    set_px(&im, 41, 49, t + 2);
    set_px(&im, 41, 51, t + 2);

    km_detector *d = make_detector(t, 1, 100, 0.0, 100, 60);
    km_blob out[8];
    int count = 0;
    assert_int_equal(km_detector_run(d, im.pixels, 100, 60, 100, out, 8, &count), KM_OK);
    assert_int_equal(count, 3);
    /* Sorted by y: the 2x2 (y 10.5), the 3x3 (y 30), the cross (y 50). */
    assert_true(out[0].x == 70.5 && out[0].y == 10.5);
    assert_true(out[0].area_px == 4.0);
    assert_true(out[0].intensity == 4.0 * (200 - t));
    assert_true(fabs(out[0].roundness - 1.0) < 1e-12);
    assert_true(out[1].x == 20.0 && out[1].y == 30.0);
    assert_true(out[1].area_px == 9.0);
    assert_int_equal(out[1].min_x, 19);
    assert_int_equal(out[1].max_x, 21);
    assert_int_equal(out[1].min_y, 29);
    assert_int_equal(out[1].max_y, 31);
    assert_int_equal(out[1].flags, 0);
    const double wx = (1.0 * 40 + 3.0 * 41 + 6.0 * 42 + 2.0 * 41 + 2.0 * 41) / 14.0;
    assert_true(fabs(out[2].x - wx) < 1e-12);
    assert_true(out[2].y == 50.0);
    assert_true(out[2].area_px == 5.0);
    free(im.pixels);
    km_detector_destroy(d);
}

/* Anti-aliased disks of radius 2..6 at random subpixel centres, sensor noise sigma 2 grey
 * levels: centroid error below 0.05 px RMS (and 0.1 px for the worst disk). */
static void test_subpixel_disks_with_noise(void **state)
{
    (void)state;
    const int w = 640, h = 480;
    enum { N = 60 };
    double cx[N], cy[N], r[N];
    int placed = 0;
    while (placed < N) {
        const double rr = 2.0 + 4.0 * uniform();
        const double x = 20 + (w - 40) * uniform(), y = 20 + (h - 40) * uniform();
        int ok = 1;
        for (int i = 0; i < placed; i++)
            if (hypot(x - cx[i], y - cy[i]) < rr + r[i] + 6)
                ok = 0;
        if (!ok)
            continue;
        cx[placed] = x;
        cy[placed] = y;
        r[placed] = rr;
        placed++;
    }
    double *acc = calloc((size_t)w * h, sizeof *acc);
    for (int i = 0; i < N; i++)
        add_disk(acc, w, h, cx[i], cy[i], r[i], 200.0);
    image im = image_make(w, h, w, 0);
    quantize(acc, &im, 12.0, 2.0);

    km_detector *d = make_detector(64, 3, 4000, 0.4, w, h);
    km_blob out[128];
    int count = 0;
    assert_int_equal(km_detector_run(d, im.pixels, w, h, w, out, 128, &count), KM_OK);
    assert_int_equal(count, N);
    double sum2 = 0, worst = 0;
    for (int i = 0; i < N; i++) {
        double best = 1e9;
        int best_j = -1;
        for (int j = 0; j < count; j++) {
            const double e = hypot(out[j].x - cx[i], out[j].y - cy[i]);
            if (e < best) {
                best = e;
                best_j = j;
            }
        }
        assert_true(best_j >= 0);
        assert_true(out[best_j].roundness > 0.8);
        /* Area close to pi r^2 (the threshold cuts the faint edge). */
        assert_true(out[best_j].area_px > 0.5 * M_PI * r[i] * r[i]);
        assert_true(out[best_j].area_px < 1.3 * M_PI * r[i] * r[i] + 4);
        sum2 += best * best;
        if (best > worst)
            worst = best;
    }
    const double rms = sqrt(sum2 / N);
    print_message("subpixel: rms %.4f px, max %.4f px over %d disks\n", rms, worst, N);
    /* The weights value - threshold cut the faint anti-aliased rim: a systematic error of
     * up to ~0.08 px on the smallest disks (radius 2-3), 0.02-0.03 px RMS. */
    assert_true(rms < 0.05);
    assert_true(worst < 0.1);
    /* Sorted by y then x. */
    for (int j = 1; j < count; j++)
        assert_true(out[j - 1].y < out[j].y ||
                    (out[j - 1].y == out[j].y && out[j - 1].x <= out[j].x));
    free(acc);
    free(im.pixels);
    km_detector_destroy(d);
}

static void fill_rect(image *im, int x0, int y0, int x1, int y1, int v)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            set_px(im, x, y, v);
}

static void test_area_and_roundness_filters(void **state)
{
    (void)state;
    image im = image_make(200, 100, 200, 0);
    fill_rect(&im, 10, 10, 29, 10, 200);   /* 1x20 line: roundness ~0.05 */
    fill_rect(&im, 40, 10, 42, 24, 200);   /* 3x15 bar: roundness 0.2 */
    fill_rect(&im, 60, 10, 61, 10, 200);   /* 2 pixels: below min area 3 */
    fill_rect(&im, 80, 10, 99, 29, 200);   /* 20x20 = 400 px: above max area 300 */
    fill_rect(&im, 120, 10, 124, 14, 200); /* 5x5 square: kept */
    fill_rect(&im, 140, 10, 146, 13, 200); /* 7x4 rectangle: roundness ~0.57, kept */

    km_detector *d = make_detector(64, 3, 300, 0.4, 200, 100);
    km_blob out[16];
    int count = 0;
    assert_int_equal(km_detector_run(d, im.pixels, 200, 100, 200, out, 16, &count), KM_OK);
    assert_int_equal(count, 2);
    assert_true(out[0].x == 143.0 && out[0].y == 11.5);
    /* Second moments of a uniform a x b rectangle: a^2/12 and b^2/12. */
    assert_true(fabs(out[0].roundness - 4.0 / 7.0) < 1e-12);
    assert_true(out[1].x == 122.0 && out[1].y == 12.0);
    assert_true(fabs(out[1].roundness - 1.0) < 1e-12);
    km_detector_destroy(d);

    /* With filters off every region is there, and the measures are as documented. */
    d = make_detector(64, 1, 100000, 0.0, 200, 100);
    assert_int_equal(km_detector_run(d, im.pixels, 200, 100, 200, out, 16, &count), KM_OK);
    assert_int_equal(count, 6);
    int seen = 0;
    for (int i = 0; i < count; i++) {
        if (out[i].area_px == 20 && out[i].max_y == 10) {
            assert_true(fabs(out[i].roundness - 1.0 / 20.0) < 1e-12);
            seen |= 1;
        }
        if (out[i].area_px == 45) {
            assert_true(fabs(out[i].roundness - 3.0 / 15.0) < 1e-12);
            seen |= 2;
        }
        if (out[i].area_px == 2)
            seen |= 4;
        if (out[i].area_px == 400)
            seen |= 8;
    }
    assert_int_equal(seen, 15);
    free(im.pixels);
    km_detector_destroy(d);
}

/* Shapes whose parts meet only lower down (U, comb) or only diagonally are one region;
 * a one-pixel gap keeps two regions apart. */
static void test_eight_connectivity(void **state)
{
    (void)state;
    image im = image_make(120, 60, 120, 0);
    /* U: two arms x=5 and x=9 over y=5..14, joined by the bottom row y=14. */
    fill_rect(&im, 5, 5, 5, 14, 150);
    fill_rect(&im, 9, 5, 9, 14, 150);
    fill_rect(&im, 5, 14, 9, 14, 150);
    /* Comb: five teeth joined at the bottom, the joints meeting only diagonally. */
    for (int k = 0; k < 5; k++)
        fill_rect(&im, 20 + 3 * k, 5, 20 + 3 * k, 12, 150);
    fill_rect(&im, 21, 13, 31, 13, 150);
    /* Diagonal staircase of single pixels. */
    for (int k = 0; k < 8; k++)
        set_px(&im, 50 + k, 5 + k, 150);
    /* Anti-diagonal: merge through the previous row's left neighbour. */
    for (int k = 0; k < 8; k++)
        set_px(&im, 80 - k, 5 + k, 150);
    /* Two squares one pixel apart: separate. */
    fill_rect(&im, 90, 30, 92, 32, 150);
    fill_rect(&im, 94, 30, 96, 32, 150);
    /* Inverted U (one region that splits into two runs and never rejoins). */
    fill_rect(&im, 10, 40, 16, 40, 150);
    fill_rect(&im, 10, 40, 10, 50, 150);
    fill_rect(&im, 16, 40, 16, 50, 150);

    km_detector *d = make_detector(64, 1, 100000, 0.0, 120, 60);
    km_blob out[16];
    int count = 0;
    assert_int_equal(km_detector_run(d, im.pixels, 120, 60, 120, out, 16, &count), KM_OK);
    assert_int_equal(count, 7);
    int found = 0;
    for (int i = 0; i < count; i++) {
        const km_blob *b = &out[i];
        if (b->min_x == 5 && b->max_x == 9) {
            assert_true(b->area_px == 10 + 10 + 3);
            assert_true(b->x == 7.0);
            found |= 1;
        } else if (b->min_x == 20) {
            assert_int_equal(b->max_x, 32);
            assert_true(b->area_px == 5 * 8 + 11);
            found |= 2;
        } else if (b->min_x == 50) {
            assert_true(b->area_px == 8 && b->x == 53.5 && b->y == 8.5);
            found |= 4;
        } else if (b->max_x == 80) {
            assert_true(b->area_px == 8 && b->x == 76.5 && b->y == 8.5);
            found |= 8;
        } else if (b->min_x == 90 || b->min_x == 94) {
            assert_true(b->area_px == 9);
            found |= b->min_x == 90 ? 16 : 32;
        } else if (b->min_x == 10) {
            assert_true(b->area_px == 7 + 10 + 10);
            assert_true(b->x == 13.0);
            found |= 64;
        }
    }
    assert_int_equal(found, 127);
    free(im.pixels);
    km_detector_destroy(d);
}

static void test_capacity_keeps_first(void **state)
{
    (void)state;
    image im = image_make(100, 100, 100, 0);
    for (int gy = 0; gy < 4; gy++)
        for (int gx = 0; gx < 5; gx++)
            fill_rect(&im, 10 + 15 * gx + gy, 10 + 20 * gy, 12 + 15 * gx + gy, 12 + 20 * gy, 200);
    km_detector *d = make_detector(64, 3, 100, 0.4, 100, 100);
    km_blob all[32], few[7];
    int count = 0;
    assert_int_equal(km_detector_run(d, im.pixels, 100, 100, 100, all, 32, &count), KM_OK);
    assert_int_equal(count, 20);
    assert_int_equal(km_detector_run(d, im.pixels, 100, 100, 100, few, 7, &count),
                     KM_ERR_CAPACITY);
    assert_int_equal(count, 7);
    for (int i = 0; i < 7; i++) {
        assert_true(few[i].x == all[i].x);
        assert_true(few[i].y == all[i].y);
    }
    /* Capacity 0: nothing written, still reported. */
    assert_int_equal(km_detector_run(d, im.pixels, 100, 100, 100, NULL, 0, &count),
                     KM_ERR_CAPACITY);
    assert_int_equal(count, 0);
    free(im.pixels);
    km_detector_destroy(d);
}

static void test_border_blobs(void **state)
{
    (void)state;
    const int w = 50, h = 40;
    image im = image_make(w, h, w, 0);
    fill_rect(&im, 0, 0, 2, 2, 200);         /* top-left corner */
    fill_rect(&im, w - 3, h - 3, w - 1, h - 1, 200); /* bottom-right corner */
    fill_rect(&im, 20, 0, 22, 1, 200);       /* top edge */
    fill_rect(&im, 0, 20, 1, 22, 200);       /* left edge */
    fill_rect(&im, 20, 20, 22, 22, 200);     /* interior */
    km_detector *d = make_detector(64, 3, 100, 0.4, w, h);
    km_blob out[8];
    int count = 0;
    assert_int_equal(km_detector_run(d, im.pixels, w, h, w, out, 8, &count), KM_OK);
    assert_int_equal(count, 5);
    assert_true(out[0].x == 21.0 && out[0].y == 0.5);
    assert_int_equal(out[0].flags, KM_BLOB_FLAG_BORDER);
    assert_true(out[1].x == 1.0 && out[1].y == 1.0);
    assert_int_equal(out[1].flags, KM_BLOB_FLAG_BORDER);
    assert_true(out[2].x == 0.5 && out[2].y == 21.0);
    assert_int_equal(out[2].flags, KM_BLOB_FLAG_BORDER);
    assert_true(out[3].x == 21.0 && out[3].y == 21.0);
    assert_int_equal(out[3].flags, 0);
    assert_true(out[4].x == w - 2 && out[4].y == h - 2);
    assert_int_equal(out[4].flags, KM_BLOB_FLAG_BORDER);
    free(im.pixels);
    km_detector_destroy(d);
}

/* Brute-force reference: 8-connected flood fill with an explicit stack. */
typedef struct ref_blob {
    long count;
    double sw, swx, swy;
} ref_blob;

static int reference_label(const image *im, int t, ref_blob *blobs, int cap)
{
    const int w = im->width, h = im->height;
    int *label = calloc((size_t)w * h, sizeof *label);
    int *stack = malloc((size_t)w * h * sizeof *stack);
    int n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (label[y * w + x] || im->pixels[(size_t)y * im->stride + x] <= t)
                continue;
            assert_true(n < cap);
            ref_blob b = {0, 0, 0, 0};
            int sp = 0;
            stack[sp++] = y * w + x;
            label[y * w + x] = n + 1;
            while (sp) {
                const int p = stack[--sp], px = p % w, py = p / w;
                const double v = im->pixels[(size_t)py * im->stride + px] - t;
                b.count++;
                b.sw += v;
                b.swx += v * px;
                b.swy += v * py;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        const int qx = px + dx, qy = py + dy;
                        if (qx < 0 || qy < 0 || qx >= w || qy >= h || label[qy * w + qx] ||
                            im->pixels[(size_t)qy * im->stride + qx] <= t)
                            continue;
                        label[qy * w + qx] = n + 1;
                        stack[sp++] = qy * w + qx;
                    }
            }
            blobs[n++] = b;
        }
    free(label);
    free(stack);
    return n;
}

/* Random images full of merges and splits, odd width and a stride with bright padding:
 * the same regions, areas and centroids as the flood fill. */
static void test_matches_flood_fill(void **state)
{
    (void)state;
    const int w = 203, h = 77, stride = 224;
    km_detector *d = make_detector(100, 1, 1000000, 0.0, 256, 128);
    enum { CAP = 8000 };
    km_blob *out = malloc(CAP * sizeof *out);
    ref_blob *ref = malloc(CAP * sizeof *ref);
    for (int trial = 0; trial < 30; trial++) {
        image im = image_make(w, h, stride, 255); /* padding bright: must never be read */
        const double density = 0.1 + 0.05 * (trial % 10);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                set_px(&im, x, y, uniform() < density ? 101 + (int)(154 * uniform()) :
                                                        (int)(100 * uniform()));
        const int n_ref = reference_label(&im, 100, ref, CAP);
        int count = 0;
        assert_int_equal(km_detector_run(d, im.pixels, w, h, stride, out, CAP, &count), KM_OK);
        assert_int_equal(count, n_ref);
        /* Match by centroid: each reference region has exactly one equal blob. */
        long total_ref = 0, total_out = 0;
        for (int i = 0; i < n_ref; i++) {
            const double rx = ref[i].swx / ref[i].sw, ry = ref[i].swy / ref[i].sw;
            int matches = 0;
            for (int j = 0; j < count; j++)
                if (fabs(out[j].x - rx) < 1e-9 && fabs(out[j].y - ry) < 1e-9 &&
                    out[j].area_px == (double)ref[i].count && out[j].intensity == ref[i].sw)
                    matches++;
            assert_true(matches >= 1);
            total_ref += ref[i].count;
        }
        for (int j = 0; j < count; j++) {
            total_out += (long)out[j].area_px;
            assert_true(out[j].min_x >= 0 && out[j].max_x < w);
        }
        assert_true(total_out == total_ref);
        free(im.pixels);
    }
    free(out);
    free(ref);
    km_detector_destroy(d);
}

/* Compare the detector with the flood fill on one image (filters off). */
static void expect_same_as_flood_fill(km_detector *d, const image *im, int t)
{
    enum { CAP = 4096 };
    km_blob *out = malloc(CAP * sizeof *out);
    ref_blob *ref = malloc(CAP * sizeof *ref);
    const int n_ref = reference_label(im, t, ref, CAP);
    int count = 0;
    assert_int_equal(km_detector_run(d, im->pixels, im->width, im->height, im->stride, out, CAP,
                                     &count),
                     KM_OK);
    assert_int_equal(count, n_ref);
    for (int i = 0; i < n_ref; i++) {
        const double rx = ref[i].swx / ref[i].sw, ry = ref[i].swy / ref[i].sw;
        int matches = 0;
        for (int j = 0; j < count; j++)
            matches += fabs(out[j].x - rx) < 1e-9 && fabs(out[j].y - ry) < 1e-9 &&
                       out[j].area_px == (double)ref[i].count;
        assert_int_equal(matches, 1);
    }
    free(out);
    free(ref);
}

/* Runs that fill whole 64-pixel chunks, end exactly on a chunk edge, cross chunk edges,
 * reach the unaligned tail, and images wider than 64 chunks (4160 px). */
static void test_chunk_boundaries(void **state)
{
    (void)state;
    const int widths[] = {64, 127, 128, 203, 4160, 4200};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const int w = widths[wi], h = 24;
        image im = image_make(w, h, w, 0);
        fill_rect(&im, 0, 1, w - 1, 1, 200);          /* whole row */
        if (w >= 128) {
            fill_rect(&im, 64, 4, 127, 5, 200);       /* exactly chunk 1 */
            fill_rect(&im, 0, 8, 63, 8, 200);         /* exactly chunk 0 ... */
            fill_rect(&im, 128, 8, w - 1, 8, 200);    /* ... and from chunk 2 on, gap at 64-127 */
            fill_rect(&im, 60, 11, 70, 13, 200);      /* across an edge */
            fill_rect(&im, 63, 16, 63, 16, 200);      /* diagonal pair across an edge */
            fill_rect(&im, 64, 17, 64, 17, 200);
        }
        fill_rect(&im, w - 1, 20, w - 1, 22, 200);    /* last column */
        fill_rect(&im, w - 3, 10, w - 2, 10, 200);
        if (w >= 4160) {
            fill_rect(&im, 4030, 14, 4100, 14, 200);  /* across chunk 63 -> 64 (bitmap word) */
            fill_rect(&im, 4096, 15, 4159, 15, 200);  /* exactly chunk 64 */
        }
        km_detector *d = make_detector(64, 1, 1000000, 0.0, w, h);
        expect_same_as_flood_fill(d, &im, 64);
        km_detector_destroy(d);
        free(im.pixels);
    }
}

/* stride != width: a frame inside a wider buffer gives the same blobs as a tight copy. */
static void test_stride(void **state)
{
    (void)state;
    const int w = 333, h = 200, stride = 400;
    double *acc = calloc((size_t)w * h, sizeof *acc);
    for (int i = 0; i < 12; i++)
        add_disk(acc, w, h, 15 + 27.3 * i, 20 + 13.7 * i, 2.5 + 0.3 * i, 180.0);
    add_disk(acc, w, h, w - 2.2, 100.4, 3.0, 180.0); /* in the unaligned tail, at the border */
    image tight = image_make(w, h, w, 0);
    quantize(acc, &tight, 10.0, 1.5);
    image wide = image_make(w, h, stride, 250);
    for (int y = 0; y < h; y++)
        memcpy(wide.pixels + (size_t)y * stride, tight.pixels + (size_t)y * w, (size_t)w);
    km_detector *d = make_detector(64, 3, 4000, 0.4, 400, 400);
    km_blob a[32], b[32];
    int na = 0, nb = 0;
    assert_int_equal(km_detector_run(d, tight.pixels, w, h, w, a, 32, &na), KM_OK);
    assert_int_equal(km_detector_run(d, wide.pixels, w, h, stride, b, 32, &nb), KM_OK);
    assert_int_equal(na, 13);
    assert_int_equal(nb, na);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    int border = 0;
    for (int i = 0; i < na; i++)
        if (a[i].flags & KM_BLOB_FLAG_BORDER) {
            border++;
            assert_true(fabs(a[i].y - 100.4) < 0.1);
            assert_int_equal(a[i].max_x, w - 1);
        }
    assert_int_equal(border, 1);
    free(acc);
    free(tight.pixels);
    free(wide.pixels);
    km_detector_destroy(d);
}

/* 1000 frames of 1280x1024 with 80 markers: no malloc, calloc or realloc inside run. */
static void test_no_allocation_per_frame(void **state)
{
    (void)state;
    const int w = 1280, h = 1024;
    enum { FRAMES = 4 };
    image frames[FRAMES];
    double *acc = calloc((size_t)w * h, sizeof *acc);
    for (int f = 0; f < FRAMES; f++) {
        memset(acc, 0, (size_t)w * h * sizeof *acc);
        for (int i = 0; i < 80; i++)
            add_disk(acc, w, h, 10 + (w - 20) * uniform(), 10 + (h - 20) * uniform(),
                     2 + 4 * uniform(), 200.0);
        frames[f] = image_make(w, h, w, 0);
        quantize(acc, &frames[f], 12.0, 3.0);
    }
    free(acc);
    km_detector *d = make_detector(64, 3, 4000, 0.4, w, h);
    km_blob out[64]; /* small on purpose: the overflow path must not allocate either */
    long blobs = 0;
    int overflowed = 0;
    const long before = alloc_count_get();
    for (int i = 0; i < 1000; i++) {
        int count = 0;
        const km_status st = km_detector_run(d, frames[i % FRAMES].pixels, w, h, w, out, 64,
                                             &count);
        assert_true(st == KM_OK || st == KM_ERR_CAPACITY);
        overflowed += st == KM_ERR_CAPACITY;
        blobs += count;
    }
    const long during = alloc_count_get() - before;
    assert_int_equal(during, 0);
    assert_true(overflowed > 0);
    assert_true(blobs > 1000L * 50);
    for (int f = 0; f < FRAMES; f++)
        free(frames[f].pixels);
    km_detector_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_and_arguments),
        cmocka_unit_test(test_exact_centroids),
        cmocka_unit_test(test_subpixel_disks_with_noise),
        cmocka_unit_test(test_area_and_roundness_filters),
        cmocka_unit_test(test_eight_connectivity),
        cmocka_unit_test(test_capacity_keeps_first),
        cmocka_unit_test(test_border_blobs),
        cmocka_unit_test(test_matches_flood_fill),
        cmocka_unit_test(test_chunk_boundaries),
        cmocka_unit_test(test_stride),
        cmocka_unit_test(test_no_allocation_per_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
