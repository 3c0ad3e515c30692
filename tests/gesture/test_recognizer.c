/* The template recognizer on synthetic gestures: invariances, rejection, capacity, and no
 * allocation while classifying (malloc wrapped with -Wl,--wrap). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/gesture.h"

#include "../common/alloc_count.h"

#define MAXP 200

typedef enum shape { CIRCLE_CCW, CIRCLE_CW, SWIPE_RIGHT, SWIPE_LEFT, PUSH, ZIGZAG, SHAPES } shape;
static const char *const names[SHAPES] = {"circle_ccw", "circle_cw", "swipe_right",
                                          "swipe_left", "push", "zigzag"};

static uint32_t rng = 1;
static double noise(double amp)
{
    rng = rng * 1664525u + 1013904223u;
    return amp * ((double)(rng >> 8) / (double)(1u << 24) - 0.5);
}

/* A gesture of `count` points in metres, scaled, shifted and noisy. */
static size_t make(shape s, km_vec3 *p, size_t count, double scale, km_vec3 at, double amp)
{
    for (size_t i = 0; i < count; i++) {
        double u = (double)i / (double)(count - 1);
        km_vec3 q;
        switch (s) {
        case CIRCLE_CCW: q = km_vec3_make(cos(2 * M_PI * u), sin(2 * M_PI * u), 0); break;
        case CIRCLE_CW: q = km_vec3_make(cos(2 * M_PI * u), -sin(2 * M_PI * u), 0); break;
        case SWIPE_RIGHT: q = km_vec3_make(2 * u - 1, 0.1 * sin(M_PI * u), 0); break;
        case SWIPE_LEFT: q = km_vec3_make(1 - 2 * u, 0.1 * sin(M_PI * u), 0); break;
        case PUSH: q = km_vec3_make(0, 0.1 * sin(M_PI * u), -2 * u); break;
        default: q = km_vec3_make(2 * u - 1, (fmod(4 * u, 1.0) < 0.5 ? 1 : -1) * 0.5 * fmod(8 * u, 2.0), 0); break;
        }
        p[i] = km_vec3_make(at.x + scale * q.x + noise(amp), at.y + scale * q.y + noise(amp),
                            at.z + scale * q.z + noise(amp));
    }
    return count;
}

static km_gesture_recognizer *trained(km_gesture_config cfg)
{
    km_status st;
    km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, &st);
    assert_non_null(rec);
    km_vec3 p[MAXP];
    for (int s = 0; s < SHAPES; s++)
        assert_int_equal(km_gesture_recognizer_add(rec, names[s], p,
                             make((shape)s, p, 50, 0.2, km_vec3_make(0, 1.2, 0.5), 0.0)), KM_OK);
    assert_int_equal(km_gesture_recognizer_template_count(rec), SHAPES);
    assert_int_equal(km_gesture_recognizer_label_count(rec), SHAPES);
    return rec;
}

static void check_matchers(km_gesture_matcher m)
{
    km_gesture_config cfg = km_gesture_config_default();
    cfg.matcher = m;
    km_gesture_recognizer *rec = trained(cfg);
    km_vec3 p[MAXP];
    for (int s = 0; s < SHAPES; s++) {
        /* other size, place, sampling rate, noise */
        size_t n = make((shape)s, p, 37 + 20 * (size_t)s, 0.35, km_vec3_make(-0.5, 1.0, 1.0), 0.01);
        km_gesture_result r;
        assert_int_equal(km_gesture_classify(rec, p, n, &r), KM_OK);
        if (m == KM_GESTURE_MATCH_CLOUD && s <= SWIPE_LEFT) {
            /* a point cloud cannot tell direction (documented): either of the pair */
            assert_int_equal(r.label / 2, s / 2);
            continue;
        }
        assert_int_equal(r.label, s);
        assert_string_equal(r.name, names[s]);
        assert_true(r.score > 0.8 && r.score <= 1.0);
        assert_true(r.second_score < r.score);
    }
    km_gesture_recognizer_destroy(rec);
}

static void test_classify_path(void **state) { (void)state; check_matchers(KM_GESTURE_MATCH_PATH); }
static void test_classify_dtw(void **state) { (void)state; check_matchers(KM_GESTURE_MATCH_DTW); }
static void test_classify_cloud(void **state) { (void)state; check_matchers(KM_GESTURE_MATCH_CLOUD); }

static void test_reject_and_degenerate(void **state)
{
    (void)state;
    km_gesture_config cfg = km_gesture_config_default();
    cfg.min_score = 0.75;
    km_gesture_recognizer *rec = trained(cfg);
    km_vec3 p[MAXP];
    km_gesture_result r;
    /* random jitter around a point: not a gesture */
    for (int i = 0; i < 60; i++)
        p[i] = km_vec3_make(noise(0.3), 1 + noise(0.3), noise(0.3));
    assert_int_equal(km_gesture_classify(rec, p, 60, &r), KM_OK);
    assert_int_equal(r.label, -1);
    assert_string_equal(r.name, "");
    assert_true(r.best_label >= 0 && r.score < 0.75);
    /* motionless: no gesture, score 0 */
    for (int i = 0; i < 10; i++)
        p[i] = km_vec3_make(0.1, 0.2, 0.3);
    assert_int_equal(km_gesture_classify(rec, p, 10, &r), KM_OK);
    assert_int_equal(r.label, -1);
    assert_float_equal(r.score, 0.0, 0.0);
    assert_int_equal(km_gesture_classify(rec, p, 1, &r), KM_ERR_INVALID_ARGUMENT);
    km_gesture_recognizer_clear(rec);
    assert_int_equal(km_gesture_classify(rec, p, 10, &r), KM_ERR_NOT_FOUND);
    km_gesture_recognizer_destroy(rec);
}

static void test_capacity_and_labels(void **state)
{
    (void)state;
    km_gesture_config cfg = km_gesture_config_default();
    cfg.max_templates = 2;
    km_status st;
    km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, &st);
    assert_non_null(rec);
    km_vec3 p[MAXP];
    size_t n = make(CIRCLE_CCW, p, 30, 1, km_vec3_make(0, 0, 0), 0);
    assert_int_equal(km_gesture_recognizer_add(rec, "a", p, n), KM_OK);
    assert_int_equal(km_gesture_recognizer_add(rec, "bad label", p, n), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_gesture_recognizer_add(rec, "a", p, n), KM_OK);
    assert_int_equal(km_gesture_recognizer_add(rec, "b", p, n), KM_ERR_CAPACITY);
    assert_int_equal(km_gesture_recognizer_label_count(rec), 1);
    assert_null(km_gesture_recognizer_label_name(rec, 1));
    int label = 7;
    assert_non_null(km_gesture_recognizer_template(rec, 1, &label));
    assert_int_equal(label, 0);
    km_gesture_recognizer_destroy(rec);
    km_gesture_recognizer_destroy(NULL);
    cfg.resample_count = 4;
    assert_null(km_gesture_recognizer_create(&cfg, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    cfg = km_gesture_config_default();
    cfg.min_score = 1.5;
    assert_int_equal(km_gesture_config_check(&cfg), KM_ERR_INVALID_ARGUMENT);
}

static void test_classify_allocates_nothing(void **state)
{
    (void)state;
    for (int m = 0; m < KM_GESTURE_MATCHER_COUNT; m++) {
        km_gesture_config cfg = km_gesture_config_default();
        cfg.matcher = (km_gesture_matcher)m;
        km_gesture_recognizer *rec = trained(cfg);
        km_vec3 p[MAXP];
        size_t n = make(ZIGZAG, p, 80, 0.3, km_vec3_make(0, 0, 0), 0.01);
        km_gesture_result r;
        alloc_count_reset();
        for (int k = 0; k < 10; k++)
            assert_int_equal(km_gesture_classify(rec, p, n, &r), KM_OK);
        assert_int_equal(alloc_count_get(), 0);
        assert_int_equal(r.label, ZIGZAG);
        km_gesture_recognizer_destroy(rec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_path),
        cmocka_unit_test(test_classify_dtw),
        cmocka_unit_test(test_classify_cloud),
        cmocka_unit_test(test_reject_and_degenerate),
        cmocka_unit_test(test_capacity_and_labels),
        cmocka_unit_test(test_classify_allocates_nothing),
    };
    return cmocka_run_group_tests_name("gesture_recognizer", tests, NULL, NULL);
}
