/* bench_detect: km_detector_run beside the OpenCV reference (threshold + findContours +
 * moments, cv/reference_detect.cpp) and the memory-read floor (one pass summing every byte)
 * on the same 1280x1024 IR-style frames, rendered here: dark noisy background and 80
 * anti-aliased disks of radius 2-6 px at known subpixel centres.
 *
 * Each method runs in its own loop over the same frames (cycling over up to 16 distinct
 * frames, ~21 MB, so each call starts from memory, not from a cache the previous method
 * warmed). Printed: median time per frame, the ratios, and the centroid error of both
 * detectors against the known centres. Exit status 1 when a target (>= 4x faster than
 * OpenCV, centroid error < 0.05 px RMS) is missed.
 *
 * Usage: bench_detect [--frames N]   (N timed frames per method, default 1000) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kinema/core.h"
#include "kinema/cv.h"
#include "kinema/tracking.h"

enum { WIDTH = 1280, HEIGHT = 1024, DISKS = 80, MAX_DISTINCT = 16, BLOB_CAPACITY = 1024 };
static const int THRESHOLD = 64;
static const double BACKGROUND = 12.0, NOISE_SIGMA = 3.0;

typedef struct frame {
    uint8_t *pixels;
    double cx[DISKS], cy[DISKS], r[DISKS];
} frame;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static double uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

static double gaussian(void)
{
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Anti-aliased disk: amplitude * covered area fraction (16x16 subsamples per pixel).
 * Pixel (0,0) is the centre of the top-left pixel. */
static void add_disk(float *acc, double cx, double cy, double r, double amplitude)
{
    const int n = 16;
    for (int y = (int)floor(cy - r - 1); y <= (int)ceil(cy + r + 1); y++)
        for (int x = (int)floor(cx - r - 1); x <= (int)ceil(cx + r + 1); x++) {
            int inside = 0;
            for (int sy = 0; sy < n; sy++) {
                const double py = y - 0.5 + (sy + 0.5) / n - cy;
                for (int sx = 0; sx < n; sx++) {
                    const double px = x - 0.5 + (sx + 0.5) / n - cx;
                    inside += px * px + py * py <= r * r;
                }
            }
            acc[(size_t)y * WIDTH + (size_t)x] += (float)(amplitude * inside / (n * n));
        }
}

static void render(frame *f, float *acc)
{
    memset(acc, 0, sizeof(float) * WIDTH * HEIGHT);
    int placed = 0;
    while (placed < DISKS) {
        const double r = 2.0 + 4.0 * uniform();
        const double x = 12 + (WIDTH - 24) * uniform(), y = 12 + (HEIGHT - 24) * uniform();
        int ok = 1;
        for (int i = 0; i < placed && ok; i++)
            ok = hypot(x - f->cx[i], y - f->cy[i]) > r + f->r[i] + 6;
        if (!ok)
            continue;
        f->cx[placed] = x;
        f->cy[placed] = y;
        f->r[placed] = r;
        add_disk(acc, x, y, r, 160.0 + 80.0 * uniform());
        placed++;
    }
    for (size_t i = 0; i < (size_t)WIDTH * HEIGHT; i++) {
        double v = floor(BACKGROUND + acc[i] + NOISE_SIGMA * gaussian() + 0.5);
        f->pixels[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* The floor: read every byte once and sum (SSE2 psadbw when available). */
static uint64_t sum_bytes(const uint8_t *p, size_t n)
{
    uint64_t total = 0;
    size_t i = 0;
#if defined(__SSE2__)
    __m128i acc = _mm_setzero_si128();
    const __m128i zero = _mm_setzero_si128();
    for (; i + 64 <= n; i += 64) {
        const __m128i a = _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(p + i)), zero);
        const __m128i b = _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(p + i + 16)), zero);
        const __m128i c = _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(p + i + 32)), zero);
        const __m128i d = _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(p + i + 48)), zero);
        acc = _mm_add_epi64(acc, _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d)));
    }
    uint64_t lanes[2];
    _mm_storeu_si128((__m128i *)lanes, acc);
    total = lanes[0] + lanes[1];
#endif
    for (; i < n; i++)
        total += p[i];
    return total;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct accuracy {
    double sum2, worst;
    long found, truth, extra;
} accuracy;

/* Match every known centre to the nearest blob within 1.5 px. */
static void score(const frame *f, const km_blob *blobs, int count, accuracy *a)
{
    int used[BLOB_CAPACITY] = {0};
    for (int i = 0; i < DISKS; i++) {
        int best = -1;
        double best_d = 1.5;
        for (int j = 0; j < count; j++) {
            const double d = hypot(blobs[j].x - f->cx[i], blobs[j].y - f->cy[i]);
            if (d < best_d) {
                best_d = d;
                best = j;
            }
        }
        a->truth++;
        if (best < 0)
            continue;
        used[best] = 1;
        a->found++;
        a->sum2 += best_d * best_d;
        if (best_d > a->worst)
            a->worst = best_d;
    }
    for (int j = 0; j < count; j++)
        a->extra += !used[j];
}

typedef enum method { OURS, OPENCV, FLOOR } method;

static volatile uint64_t sink;

/* Median ns per frame of `runs` calls cycling over the frames. */
static double time_method(method m, km_detector *det, frame *frames, int distinct, int runs,
                          km_blob *blobs, double *times)
{
    for (int i = 0; i < runs; i++) {
        const uint8_t *px = frames[i % distinct].pixels;
        int count = 0;
        const uint64_t t0 = km_time_now_ns();
        km_status st = KM_OK;
        if (m == OURS)
            st = km_detector_run(det, px, WIDTH, HEIGHT, WIDTH, blobs, BLOB_CAPACITY, &count);
        else if (m == OPENCV)
            st = km_cv_reference_detect(px, WIDTH, HEIGHT, WIDTH, THRESHOLD, blobs,
                                        BLOB_CAPACITY, &count);
        else
            sink += sum_bytes(px, (size_t)WIDTH * HEIGHT);
        const uint64_t t1 = km_time_now_ns();
        if (st != KM_OK) {
            fprintf(stderr, "bench_detect: %s: %s\n", km_status_name(st), km_last_error());
            exit(2);
        }
        sink += (uint64_t)count;
        times[i] = (double)(t1 - t0);
    }
    return median(times, runs);
}

static void print_accuracy(const char *name, const accuracy *a)
{
    printf("  centroid error %-7s rms %.4f px, max %.4f px; found %ld/%ld, extra blobs %ld\n",
           name, a->found ? sqrt(a->sum2 / (double)a->found) : 0.0, a->worst, a->found,
           a->truth, a->extra);
}

int main(int argc, char **argv)
{
    int runs = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--frames N]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1) {
        fprintf(stderr, "bench_detect: --frames must be >= 1\n");
        return 2;
    }
    const int distinct = runs < MAX_DISTINCT ? runs : MAX_DISTINCT;

    frame *frames = calloc((size_t)distinct, sizeof *frames);
    float *acc = malloc(sizeof(float) * WIDTH * HEIGHT);
    km_blob *blobs = malloc(BLOB_CAPACITY * sizeof *blobs);
    double *times = malloc((size_t)runs * sizeof *times);
    if (!frames || !acc || !blobs || !times)
        return 2;
    for (int f = 0; f < distinct; f++) {
        frames[f].pixels = malloc((size_t)WIDTH * HEIGHT);
        if (!frames[f].pixels)
            return 2;
        render(&frames[f], acc);
    }
    free(acc);

    km_detect_config cfg = km_detect_config_default();
    cfg.threshold = THRESHOLD;
    km_status st = KM_OK;
    km_detector *det = km_detector_create(&cfg, WIDTH, HEIGHT, &st);
    if (!det) {
        fprintf(stderr, "bench_detect: %s\n", km_last_error());
        return 2;
    }

    /* Accuracy, untimed: every distinct frame through both detectors. */
    accuracy ours_acc = {0}, cv_acc = {0};
    for (int f = 0; f < distinct; f++) {
        int count = 0;
        st = km_detector_run(det, frames[f].pixels, WIDTH, HEIGHT, WIDTH, blobs, BLOB_CAPACITY,
                             &count);
        if (st != KM_OK)
            return 2;
        score(&frames[f], blobs, count, &ours_acc);
        st = km_cv_reference_detect(frames[f].pixels, WIDTH, HEIGHT, WIDTH, THRESHOLD, blobs,
                                    BLOB_CAPACITY, &count);
        if (st != KM_OK)
            return 2;
        score(&frames[f], blobs, count, &cv_acc);
    }

    /* Warm-up (page faults, OpenCV's lazy init), then the timed loops. One thread for
     * OpenCV in the main comparison: our detector uses one core. */
    time_method(OURS, det, frames, distinct, distinct, blobs, times);
    km_cv_set_num_threads(1);
    time_method(OPENCV, det, frames, distinct, distinct, blobs, times);
    const double ours_ns = time_method(OURS, det, frames, distinct, runs, blobs, times);
    const double cv1_ns = time_method(OPENCV, det, frames, distinct, runs, blobs, times);
    km_cv_set_num_threads(-1);
    time_method(OPENCV, det, frames, distinct, distinct, blobs, times);
    const double cvn_ns = time_method(OPENCV, det, frames, distinct, runs, blobs, times);
    const double floor_ns = time_method(FLOOR, det, frames, distinct, runs, blobs, times);

    printf("detect benchmark: %dx%d frames, %d anti-aliased disks (radius 2-6 px), background "
           "%.0f + noise sigma %.0f, threshold %d\n",
           WIDTH, HEIGHT, DISKS, BACKGROUND, NOISE_SIGMA, THRESHOLD);
    printf("  %d timed frames per method (cycling over %d distinct frames), median per frame\n",
           runs, distinct);
    printf("  ours (km_detector_run)         %8.3f ms\n", ours_ns * 1e-6);
    printf("  opencv, 1 thread               %8.3f ms\n", cv1_ns * 1e-6);
    printf("  opencv, default threads        %8.3f ms\n", cvn_ns * 1e-6);
    printf("  memory-read floor (sum bytes)  %8.3f ms\n", floor_ns * 1e-6);
    const double ratio = cv1_ns / ours_ns;
    printf("  ours vs opencv: %.1fx faster (1 thread); %.1fx faster (opencv default threads)\n",
           ratio, cvn_ns / ours_ns);
    printf("  ours / floor: %.2fx\n", ours_ns / floor_ns);
    print_accuracy("ours", &ours_acc);
    print_accuracy("opencv", &cv_acc);

    const double ours_rms = ours_acc.found ? sqrt(ours_acc.sum2 / (double)ours_acc.found) : 1e9;
    const int speed_ok = ratio >= 4.0;
    const int accuracy_ok = ours_rms < 0.05 && ours_acc.found == ours_acc.truth;
    printf("  target >= 4x faster than opencv: %s; centroid error < 0.05 px rms: %s\n",
           speed_ok ? "met" : "MISSED", accuracy_ok ? "met" : "MISSED");

    km_detector_destroy(det);
    for (int f = 0; f < distinct; f++)
        free(frames[f].pixels);
    free(frames);
    free(blobs);
    free(times);
    return speed_ok && accuracy_ok ? 0 : 1;
}
