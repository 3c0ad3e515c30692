/* bench_detect: km_detector_run beside the OpenCV reference (threshold + findContours +
 * moments, cv/reference_detect.cpp) and the memory-read floor (one pass summing every byte)
 * on the same 1280x1024 IR-style frames, rendered here: dark noisy background and 80
 * anti-aliased disks of radius 2-6 px at known subpixel centres.
 *
 * Default (warm): each frame is copied into a work buffer just before each call, as a
 * capture thread writes a pool slot just before detection; --cold reads the frames in place
 * in blocks that do not stay in cache (see main). Methods take turns, so the load of a
 * shared machine falls on all of them alike. Printed: median time per frame, the ratios, and the centroid error of both
 * detectors against the known centres. Exit status 1 when a target (>= 4x faster than
 * OpenCV, centroid error < 0.05 px RMS) is missed.
 *
 * Usage: bench_detect [--frames N] [--cold]   (N timed frames per method, default 1000) */
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
#include "bench_help.h"

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

/* Time `n` calls starting at frame index `first` (cycling over the frames); ns per call
 * appended to times[]. */
static void time_block(method m, km_detector *det, frame *frames, int distinct, int first,
                       int n, km_blob *blobs, double *times, uint8_t *work)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *px = frames[(first + i) % distinct].pixels;
        if (work) {
            /* Warm: the frame was just written, as a capture thread writes its pool slot. */
            memcpy(work, px, (size_t)WIDTH * HEIGHT);
            px = work;
        }
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
}

static void print_accuracy(const char *name, const accuracy *a)
{
    printf("  centroid error %-7s rms %.4f px, max %.4f px; found %ld/%ld, extra blobs %ld\n",
           name, a->found ? sqrt(a->sum2 / (double)a->found) : 0.0, a->worst, a->found,
           a->truth, a->extra);
}

int main(int argc, char **argv)
{
    bench_help(argc, argv,
               "usage: bench_detect [--frames N] [--cold]\n\n2D marker detection on rendered 1280x1024 IR frames beside OpenCV (threshold + findContours +\nmoments) and the memory-read floor: median time per frame, ratios, centroid errors.\nExit status 1 when a target (>= 4x faster than OpenCV, < 0.05 px RMS) is missed.\n");
    int runs = 1000;
    int cold = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--cold") == 0) {
            cold = 1;
        } else {
            fprintf(stderr, "usage: %s [--frames N] [--cold]\n", argv[0]);
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

    /* Warm-up (page faults, OpenCV's lazy init). OpenCV runs once with one thread (our
     * detector uses one core) and once with its default thread count.
     * Warm (default): before each call the frame is copied into one work buffer, as a
     * capture thread fills its pool slot just before detection; the methods take turns frame
     * by frame, so the load of a shared machine falls on all of them alike.
     * Cold (--cold): the methods take turns in blocks of `distinct` frames read in place
     * (~21 MB per block); OpenCV's own buffers push the frames out of cache, so every method
     * mostly reads from DRAM. */
    double *t_ours = malloc((size_t)runs * sizeof(double));
    double *t_cv1 = malloc((size_t)runs * sizeof(double));
    double *t_cvn = malloc((size_t)runs * sizeof(double));
    double *t_floor = malloc((size_t)runs * sizeof(double));
    uint8_t *work = cold ? NULL : aligned_alloc(64, (size_t)WIDTH * HEIGHT);
    if (!t_ours || !t_cv1 || !t_cvn || !t_floor || (!cold && !work))
        return 2;
    time_block(OURS, det, frames, distinct, 0, distinct, blobs, times, work);
    time_block(OPENCV, det, frames, distinct, 0, distinct, blobs, times, work);
    time_block(FLOOR, det, frames, distinct, 0, distinct, blobs, times, work);
    const int block = cold ? distinct : 1;
    for (int done = 0; done < runs; done += block) {
        const int n = runs - done < block ? runs - done : block;
        time_block(OURS, det, frames, distinct, done, n, blobs, t_ours + done, work);
        km_cv_set_num_threads(1);
        time_block(OPENCV, det, frames, distinct, done, n, blobs, t_cv1 + done, work);
        km_cv_set_num_threads(-1);
        time_block(OPENCV, det, frames, distinct, done, n, blobs, t_cvn + done, work);
        time_block(FLOOR, det, frames, distinct, done, n, blobs, t_floor + done, work);
    }
    free(work);
    const double ours_ns = median(t_ours, runs);
    const double cv1_ns = median(t_cv1, runs);
    const double cvn_ns = median(t_cvn, runs);
    const double floor_ns = median(t_floor, runs);
    free(t_ours);
    free(t_cv1);
    free(t_cvn);
    free(t_floor);

    printf("detect benchmark: %dx%d frames, %d anti-aliased disks (radius 2-6 px), background "
           "%.0f + noise sigma %.0f, threshold %d\n",
           WIDTH, HEIGHT, DISKS, BACKGROUND, NOISE_SIGMA, THRESHOLD);
    printf("  %s: %d timed frames per method (in turns, over %d distinct frames), median per "
           "frame\n",
           cold ? "cold (frames mostly from DRAM)" : "warm (frame just written, in cache)", runs,
           distinct);
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
