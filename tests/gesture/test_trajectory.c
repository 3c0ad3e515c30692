/* Trajectory storage, resampling along the path, normalisation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "kinema/gesture.h"

static void test_push_capacity(void **state)
{
    (void)state;
    km_trajectory t;
    assert_int_equal(km_trajectory_init(&t, 2), KM_OK);
    assert_int_equal(km_trajectory_push(&t, km_vec3_make(1, 2, 3), 10), KM_OK);
    assert_int_equal(km_trajectory_push(&t, km_vec3_make(4, 5, 6), 20), KM_OK);
    assert_int_equal(km_trajectory_push(&t, km_vec3_make(7, 8, 9), 30), KM_ERR_CAPACITY);
    assert_int_equal(t.count, 2);
    assert_true(t.pos[1].y == 5.0 && t.t_ns[1] == 20);
    km_trajectory_clear(&t);
    assert_int_equal(t.count, 0);
    km_trajectory_release(&t);
    km_trajectory_release(&t); /* zeroed: accepted */
    assert_int_equal(km_trajectory_init(&t, 0), KM_ERR_INVALID_ARGUMENT);
}

static void test_resample_equal_spacing(void **state)
{
    (void)state;
    /* an L: 3 along x then 1 along y, unevenly sampled */
    km_vec3 in[5] = {{0, 0, 0}, {0.5, 0, 0}, {3, 0, 0}, {3, 0.2, 0}, {3, 1, 0}};
    km_vec3 out[9];
    assert_int_equal(km_gesture_resample(in, 5, out, 9), KM_OK);
    assert_float_equal(km_gesture_path_length(in, 5), 4.0, 1e-12);
    for (int k = 0; k < 8; k++)
        assert_float_equal(km_vec3_dist(out[k], out[k + 1]), 0.5, 1e-9);
    assert_float_equal(out[6].x, 3.0, 1e-12); /* arc length 3 is the corner */
    assert_float_equal(out[6].y, 0.0, 1e-12);
    assert_float_equal(out[8].y, 1.0, 0.0);   /* last point exact */
    /* zero-length path: copies; bad arguments */
    km_vec3 still[2] = {{1, 1, 1}, {1, 1, 1}};
    assert_int_equal(km_gesture_resample(still, 2, out, 4), KM_OK);
    assert_float_equal(out[3].z, 1.0, 0.0);
    assert_int_equal(km_gesture_resample(in, 5, out, 1), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_gesture_resample(in, 0, out, 4), KM_ERR_INVALID_ARGUMENT);
}

static void test_normalize_rms_and_bbox(void **state)
{
    (void)state;
    km_vec3 p[4] = {{10, 10, 0}, {12, 10, 0}, {12, 12, 0}, {10, 12, 0}};
    km_vec3 q[4];
    for (int i = 0; i < 4; i++)
        q[i] = p[i];
    assert_int_equal(km_gesture_normalize(p, 4, KM_GESTURE_SCALE_RMS_RADIUS, KM_GESTURE_ROTATE_NONE), KM_OK);
    double ms = 0;
    for (int i = 0; i < 4; i++)
        ms += km_vec3_dot(p[i], p[i]);
    assert_float_equal(ms / 4, 1.0, 1e-12);
    assert_float_equal(p[0].x, -M_SQRT1_2, 1e-12);
    assert_int_equal(km_gesture_normalize(q, 4, KM_GESTURE_SCALE_BBOX_DIAGONAL, KM_GESTURE_ROTATE_NONE), KM_OK);
    assert_float_equal(km_vec3_dist(q[0], q[2]), 1.0, 1e-12);
    km_vec3 still[3] = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
    assert_int_equal(km_gesture_normalize(still, 3, KM_GESTURE_SCALE_RMS_RADIUS, KM_GESTURE_ROTATE_NONE), KM_ERR_NUMERIC);
}

static void test_normalize_axes_thin(void **state)
{
    (void)state;
    /* a swipe: long in x, tiny jitter in y. The thin axis is not blown up. */
    km_vec3 p[3] = {{-1, 0.001, 0}, {0, -0.002, 0}, {1, 0.001, 0}};
    assert_int_equal(km_gesture_normalize(p, 3, KM_GESTURE_SCALE_AXES, KM_GESTURE_ROTATE_NONE), KM_OK);
    assert_true(fabs(p[1].y) < 0.02);
    assert_float_equal(p[2].x, sqrt(1.5), 1e-9);
}

static void test_indicative_angle_and_pca(void **state)
{
    (void)state;
    km_vec3 a[6], b[6];
    for (int i = 0; i < 6; i++) {
        double t = i / 5.0;
        a[i] = km_vec3_make(3 * t, t * t, 0.2 * sin(3 * t)); /* a bent 3D stroke */
    }
    /* rotate b = R a about an arbitrary axis and translate */
    km_mat3 R = km_mat3_from_axis_angle(km_vec3_normalize(km_vec3_make(1, 2, 3)), 1.1);
    for (int i = 0; i < 6; i++)
        b[i] = km_vec3_add(km_mat3_apply(R, a[i]), km_vec3_make(5, -2, 7));
    assert_int_equal(km_gesture_normalize(a, 6, KM_GESTURE_SCALE_RMS_RADIUS, KM_GESTURE_ROTATE_PCA_3D), KM_OK);
    assert_int_equal(km_gesture_normalize(b, 6, KM_GESTURE_SCALE_RMS_RADIUS, KM_GESTURE_ROTATE_PCA_3D), KM_OK);
    for (int i = 0; i < 6; i++)
        assert_true(km_vec3_dist(a[i], b[i]) < 1e-6);
    assert_true(a[0].x < 0 && a[0].y < 0);

    /* indicative angle: the first point ends on +x */
    km_vec3 c[3] = {{0, 5, 0}, {1, 0, 0}, {-1, 0, 0}};
    assert_int_equal(km_gesture_normalize(c, 3, KM_GESTURE_SCALE_RMS_RADIUS, KM_GESTURE_ROTATE_INDICATIVE_2D), KM_OK);
    assert_true(c[0].x > 0);
    assert_float_equal(c[0].y, 0.0, 1e-12);
}

static void test_names(void **state)
{
    (void)state;
    km_gesture_scale s;
    km_gesture_rotation r;
    km_gesture_matcher m;
    for (int i = 0; i < KM_GESTURE_SCALE_COUNT; i++) {
        assert_int_equal(km_gesture_scale_parse(km_gesture_scale_name((km_gesture_scale)i), &s), KM_OK);
        assert_int_equal(s, i);
    }
    for (int i = 0; i < KM_GESTURE_ROTATION_COUNT; i++) {
        assert_int_equal(km_gesture_rotation_parse(km_gesture_rotation_name((km_gesture_rotation)i), &r), KM_OK);
        assert_int_equal(r, i);
    }
    for (int i = 0; i < KM_GESTURE_MATCHER_COUNT; i++) {
        assert_int_equal(km_gesture_matcher_parse(km_gesture_matcher_name((km_gesture_matcher)i), &m), KM_OK);
        assert_int_equal(m, i);
    }
    assert_int_equal(km_gesture_scale_parse("huge", &s), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_gesture_rotation_parse(NULL, &r), KM_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_capacity),
        cmocka_unit_test(test_resample_equal_spacing),
        cmocka_unit_test(test_normalize_rms_and_bbox),
        cmocka_unit_test(test_normalize_axes_thin),
        cmocka_unit_test(test_indicative_angle_and_pca),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("gesture_trajectory", tests, NULL, NULL);
}
