/* Classification time per gesture with 50 templates: the Kinema recognizer (each matcher)
 * beside the $1 baseline in the same process, as a ratio. Synthetic 3D gestures (10 classes
 * x 5 templates, 40-160 points each) so the figure needs no data set.
 * Then the per-frame cost of online spotting with the 50 built-in templates on a continuous
 * synthetic hand stream (tests/gesture/synth_stream.h), beside the naive alternative of
 * classifying a 1 s window every frame.
 * Usage: bench_gesture [queries]   (default 2000) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kinema/gesture.h"
#include "synth_stream.h"
#include "bench_help.h"

#define TEMPLATES 50
#define CLASSES 10
#define MAXP 160

static uint32_t rng = 7;
static double noise(double amp)
{
    rng = rng * 1664525u + 1013904223u;
    return amp * ((double)(rng >> 8) / (double)(1u << 24) - 0.5);
}

/* Class c: a Lissajous-like 3D curve; variants differ in sampling, scale and noise. */
static size_t make(int c, km_vec3 *p)
{
    size_t n = 40 + (size_t)(noise(1.0) + 0.5) * 120;
    if (n > MAXP)
        n = MAXP;
    double a = 1 + c % 4, b = 1 + c / 4, s = 0.2 + noise(0.1);
    for (size_t i = 0; i < n; i++) {
        double u = 2 * M_PI * (double)i / (double)(n - 1);
        p[i] = km_vec3_make(s * sin(a * u) + noise(0.01), s * sin(b * u + c) + noise(0.01),
                            s * 0.3 * cos(u) + noise(0.01));
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int bench_spotting(void)
{
    stream_params sp = {60, 0.002, 0.08, true, 4.0};
    synth_stream s;
    synth_stream_make(&s, &sp, 11);
    uint64_t *ns = malloc(s.count * sizeof *ns);
    if (!ns)
        return 1;
    printf("spotting: %zu samples (%.1f min at 60 Hz, %zu gestures), 50 built-in templates\n",
           s.count, s.t_ns[s.count - 1] * 1e-9 / 60.0, s.truth_count);
    double naive_us = 0.0;
    const size_t resamples[2] = {64, 32};
    for (int k = 0; k < 2; k++) {
        km_gesture_config cfg = km_gesture_config_default();
        cfg.max_templates = 64;
        cfg.resample_count = resamples[k];
        km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, NULL);
        km_gesture_add_builtin(rec, 5);
        km_spotter_config sc = km_spotter_config_default();
        km_spotter *spot = km_spotter_create(&sc, rec, NULL);
        km_spotter_use_builtin_limits(spot);
        size_t events = 0;
        for (size_t i = 0; i < s.count; i++) {
            km_gesture_event ev[4];
            size_t n;
            uint64_t t0 = km_time_now_ns();
            km_spotter_push(spot, s.pos[i], s.t_ns[i], ev, 4, &n);
            ns[i] = km_time_now_ns() - t0;
            events += n;
        }
        double sum = 0.0;
        for (size_t i = 0; i < s.count; i++)
            sum += (double)ns[i];
        qsort(ns, s.count, sizeof *ns, cmp_u64);
        km_spotter_stats st = km_spotter_stats_get(spot);
        if (k == 0) {
            /* naive peer: classify the last 60 samples (1 s) every frame, 300 frames */
            km_gesture_result r;
            uint64_t t0 = km_time_now_ns();
            for (size_t i = 60; i < 360; i++)
                km_gesture_classify(rec, s.pos + i - 60, 60, &r);
            naive_us = (double)(km_time_now_ns() - t0) / 1e3 / 300;
            printf("  naive: classify a 1 s window every frame (N=64)   %8.2f us/frame\n", naive_us);
        }
        double mean_us = sum / s.count / 1e3;
        printf("  kinema spotter N=%-3zu  mean %6.2f us/frame  median %5.2f  p99 %6.2f  max %7.1f us"
               "  (%llu segments + %llu windows classified, %zu events)  ratio to naive %.4f\n",
               resamples[k], mean_us, ns[s.count / 2] / 1e3, ns[s.count * 99 / 100] / 1e3,
               ns[s.count - 1] / 1e3, (unsigned long long)st.segments,
               (unsigned long long)st.windows, events, mean_us / naive_us);
        km_spotter_destroy(spot);
        km_gesture_recognizer_destroy(rec);
    }
    free(ns);
    stream_free(&s);
    return 0;
}

int main(int argc, char **argv)
{
    bench_help(argc, argv,
               "usage: bench_gesture [queries]   (default 2000)\n\nGesture classification time with 50 templates beside the $1 recognizer, and the per-frame\ncost of online spotting beside classifying a 1 s window every frame.\n");
    int queries = argc > 1 ? atoi(argv[1]) : 2000;
    if (queries < 1)
        queries = 1;
    static km_vec3 pts[TEMPLATES][MAXP];
    size_t counts[TEMPLATES];
    char labels[CLASSES][16];
    for (int c = 0; c < CLASSES; c++)
        snprintf(labels[c], sizeof labels[c], "class%d", c);
    for (int t = 0; t < TEMPLATES; t++)
        counts[t] = make(t % CLASSES, pts[t]);
    static km_vec3 q[64][MAXP];
    size_t qn[64];
    for (int i = 0; i < 64; i++)
        qn[i] = make(i % CLASSES, q[i]);

    km_status st;
    km_dollar1 *d1 = km_dollar1_create(TEMPLATES, &st);
    if (!d1)
        return 1;
    for (int t = 0; t < TEMPLATES; t++)
        km_dollar1_add(d1, labels[t % CLASSES], pts[t], counts[t]);
    km_gesture_result r;
    int correct = 0;
    uint64_t t0 = km_time_now_ns();
    for (int i = 0; i < queries; i++) {
        km_dollar1_classify(d1, q[i % 64], qn[i % 64], &r);
        correct += r.label == (i % 64) % CLASSES;
    }
    double d1_us = (double)(km_time_now_ns() - t0) / 1e3 / queries;
    printf("bench_gesture: %d templates, %d queries\n", TEMPLATES, queries);
    printf("  dollar1 (64 pts, +-45 deg golden section)   %8.2f us/gesture  accuracy %.3f\n",
           d1_us, (double)correct / queries);
    km_dollar1_destroy(d1);

    for (int m = 0; m < KM_GESTURE_MATCHER_COUNT; m++) {
        km_gesture_config cfg = km_gesture_config_default();
        cfg.matcher = (km_gesture_matcher)m;
        cfg.max_templates = TEMPLATES;
        km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, &st);
        if (!rec)
            return 1;
        for (int t = 0; t < TEMPLATES; t++)
            km_gesture_recognizer_add(rec, labels[t % CLASSES], pts[t], counts[t]);
        int n = m == KM_GESTURE_MATCH_CLOUD ? (queries + 9) / 10 : queries; /* cloud is slow */
        correct = 0;
        t0 = km_time_now_ns();
        for (int i = 0; i < n; i++) {
            km_gesture_classify(rec, q[i % 64], qn[i % 64], &r);
            correct += r.best_label == (i % 64) % CLASSES;
        }
        double us = (double)(km_time_now_ns() - t0) / 1e3 / n;
        printf("  kinema %-5s%s (64 pts)                   %8.2f us/gesture  accuracy %.3f  "
               "ratio to dollar1 %.2f\n",
               km_gesture_matcher_name(cfg.matcher),
               m == KM_GESTURE_MATCH_DTW ? " [default]" : "          ", us,
               (double)correct / n, us / d1_us);
        km_gesture_recognizer_destroy(rec);
    }
    return bench_spotting();
}
