/* Matching costs (gesture/template.c, private functions). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../gesture/gesture_internal.h"

#define N 32

static void circle(km_vec3 *p, double phase)
{
    for (int i = 0; i < N; i++) {
        double a = 2 * M_PI * i / (N - 1) + phase;
        p[i] = km_vec3_make(cos(a), sin(a), 0);
    }
}

static void test_path_cost_and_search(void **state)
{
    (void)state;
    km_vec3 a[N], b[N];
    circle(a, 0.0);
    circle(b, 0.0);
    assert_float_equal(km_gesture_path_cost(a, b, N), 0.0, 0.0);
    /* b rotated by 0.15 rad about z: plain cost ~ 2 sin(0.075), search finds it */
    km_gesture_rotate_z(a, b, N, 0.15);
    double plain = km_gesture_path_cost(a, b, N);
    assert_float_equal(plain, 2 * sin(0.075), 1e-9);
    double searched = km_gesture_path_cost_search(a, b, N, 0.3, 0.5 * M_PI / 180);
    assert_true(searched < 0.01);
    /* no search beyond the range: a rotation of 1 rad is not undone within +-0.3 */
    km_gesture_rotate_z(a, b, N, 1.0);
    assert_true(km_gesture_path_cost_search(a, b, N, 0.3, 0.01) > 0.5);
    assert_float_equal(km_gesture_path_cost_search(a, b, N, 0.0, 0.01), km_gesture_path_cost(a, b, N), 0.0);
}

static void test_dtw(void **state)
{
    (void)state;
    km_vec3 a[N], b[N];
    double rows[2 * N];
    bool matched[N];
    /* same shape, b sampled with a time warp (slow start) */
    for (int i = 0; i < N; i++) {
        double u = (double)i / (N - 1);
        a[i] = km_vec3_make(u, sin(3 * u), 0);
        double w = u * u;
        b[i] = km_vec3_make(w, sin(3 * w), 0);
    }
    double path = km_gesture_path_cost(a, b, N);
    double dtw = km_gesture_dtw_cost(a, b, N, N / 4, rows, DBL_MAX);
    assert_true(dtw < 0.5 * path);
    assert_float_equal(km_gesture_dtw_cost(a, a, N, 3, rows, DBL_MAX), 0.0, 0.0);
    /* band 0 is the identity alignment = path cost */
    assert_float_equal(km_gesture_dtw_cost(a, b, N, 0, rows, DBL_MAX), path, 1e-12);
    /* early abandon: a bound below the true cost returns DBL_MAX, above it the cost */
    assert_true(km_gesture_dtw_cost(a, b, N, N / 4, rows, dtw * 0.5) == DBL_MAX);
    assert_float_equal(km_gesture_dtw_cost(a, b, N, N / 4, rows, dtw * 2), dtw, 1e-12);

    /* cloud: order does not matter */
    for (int i = 0; i < N; i++)
        b[i] = a[N - 1 - i];
    assert_true(km_gesture_cloud_cost(a, b, N, matched) < 1e-12);
    assert_true(km_gesture_path_cost(a, b, N) > 0.1);
}

/* Full-matrix DTW (no band shortcuts) as the reference for the banded, bounded one. */
static double dtw_reference(const km_vec3 *a, const km_vec3 *b, int n, int band)
{
    static double D[N][N];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            D[i][j] = DBL_MAX;
            if (abs(i - j) > band)
                continue;
            double best = i == 0 && j == 0 ? 0.0 : DBL_MAX;
            if (i > 0)
                best = fmin(best, D[i - 1][j]);
            if (j > 0)
                best = fmin(best, D[i][j - 1]);
            if (i > 0 && j > 0)
                best = fmin(best, D[i - 1][j - 1]);
            if (best < DBL_MAX)
                D[i][j] = best + km_vec3_dist(a[i], b[j]);
        }
    return D[n - 1][n - 1] / n;
}

/* LB_Keogh never exceeds DTW; the banded DTW equals the full-matrix reference; the bounded
 * DTW returns the exact cost below the abandon threshold and DBL_MAX (or the cost) above. */
static void test_lb_keogh(void **state)
{
    (void)state;
    km_vec3 a[N], b[N], lo[N], hi[N];
    double rows[2 * N], tail[N + 1];
    uint32_t seed = 1;
    for (int trial = 0; trial < 300; trial++) {
        for (int i = 0; i < N; i++) {
            double u = (double)i / (N - 1);
            seed = seed * 1664525u + 1013904223u;
            double r1 = (double)(seed >> 8) / 16777216.0;
            seed = seed * 1664525u + 1013904223u;
            double r2 = (double)(seed >> 8) / 16777216.0;
            a[i] = km_vec3_make(sin(3 * u + trial), cos(2 * u) + 0.3 * r1, 0.2 * r2);
            b[i] = km_vec3_make(sin(3 * u * u + trial * 0.9), cos(2 * u + 0.1 * trial), 0.2 * r1);
        }
        int band = 1 + trial % 8;
        km_gesture_envelope(b, N, (size_t)band, lo, hi);
        double lb = km_gesture_lb_keogh(a, lo, hi, N, tail);
        double full = dtw_reference(a, b, N, band);
        double dtw = km_gesture_dtw_cost(a, b, N, (size_t)band, rows, DBL_MAX);
        assert_float_equal(dtw, full, 1e-12);
        assert_true(lb <= dtw + 1e-12);
        assert_float_equal(tail[0] / N, lb, 1e-12);
        assert_float_equal(km_gesture_dtw_cost_bounded(a, b, N, (size_t)band, rows, DBL_MAX, tail), dtw,
                           1e-12);
        double above = km_gesture_dtw_cost_bounded(a, b, N, (size_t)band, rows, dtw * 1.001, tail);
        assert_float_equal(above, dtw, 1e-12);
        double below = km_gesture_dtw_cost_bounded(a, b, N, (size_t)band, rows, dtw * 0.9, tail);
        assert_true(below == DBL_MAX || fabs(below - dtw) < 1e-12);
    }
}

static void test_label_valid(void **state)
{
    (void)state;
    assert_true(km_gesture_label_valid("swipe_left"));
    assert_true(km_gesture_label_valid("a.b-c9"));
    assert_false(km_gesture_label_valid(""));
    assert_false(km_gesture_label_valid("two words"));
    assert_false(km_gesture_label_valid("comma,"));
    assert_false(km_gesture_label_valid(NULL));
    char longer[80];
    memset(longer, 'a', sizeof longer);
    longer[64] = '\0';
    assert_false(km_gesture_label_valid(longer));
    longer[63] = '\0';
    assert_true(km_gesture_label_valid(longer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_cost_and_search),
        cmocka_unit_test(test_dtw),
        cmocka_unit_test(test_lb_keogh),
        cmocka_unit_test(test_label_valid),
    };
    return cmocka_run_group_tests_name("gesture_template", tests, NULL, NULL);
}
