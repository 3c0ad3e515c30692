/* The $1 baseline: its documented invariances and limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "kinema/gesture.h"

#define N 40

static void shape(int which, km_vec3 *p, double rot, double scale)
{
    for (int i = 0; i < N; i++) {
        double u = (double)i / (N - 1), x, y;
        if (which == 0) { /* triangle-ish "v" */
            x = u;
            y = fabs(u - 0.5);
        } else if (which == 1) { /* circle */
            x = cos(2 * M_PI * u);
            y = sin(2 * M_PI * u);
        } else { /* a "check" */
            x = u;
            y = u < 0.3 ? -u : 2 * (u - 0.3) - 0.3;
        }
        p[i] = km_vec3_make(scale * (x * cos(rot) - y * sin(rot)) + 100,
                            scale * (x * sin(rot) + y * cos(rot)) + 50, 7.0 /* ignored */);
    }
}

static void test_rotation_scale_invariance(void **state)
{
    (void)state;
    km_status st;
    km_dollar1 *d = km_dollar1_create(8, &st);
    assert_non_null(d);
    const char *names[3] = {"v", "circle", "check"};
    km_vec3 p[N];
    for (int s = 0; s < 3; s++) {
        shape(s, p, 0.0, 1.0);
        assert_int_equal(km_dollar1_add(d, names[s], p, N), KM_OK);
    }
    assert_int_equal(km_dollar1_template_count(d), 3);
    for (int s = 0; s < 3; s++) {
        shape(s, p, 2.0 /* rad: $1 is rotation invariant */, 37.0);
        km_gesture_result r;
        assert_int_equal(km_dollar1_classify(d, p, N, &r), KM_OK);
        assert_int_equal(r.label, s);
        assert_true(r.score > 0.9);
    }
    /* a straight line: the 1D limit of $1 must not produce NaN */
    for (int i = 0; i < N; i++)
        p[i] = km_vec3_make(i, 0, 0);
    km_gesture_result r;
    assert_int_equal(km_dollar1_classify(d, p, N, &r), KM_OK);
    assert_false(isnan(r.score));
    assert_int_equal(km_dollar1_add(d, "bad label", p, N), KM_ERR_INVALID_ARGUMENT);
    km_dollar1_destroy(d);
    km_dollar1_destroy(NULL);
    assert_null(km_dollar1_create(0, &st));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_scale_invariance),
    };
    return cmocka_run_group_tests_name("gesture_dollar1", tests, NULL, NULL);
}
