#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "kinema/core.h"

#define PI 3.14159265358979323846

static void assert_near(double a, double b, double tol)
{
    if (!(fabs(a - b) <= tol))
        fail_msg("%.17g != %.17g (tol %g)", a, b, tol);
}

static void assert_vec_near(km_vec3 a, km_vec3 b, double tol)
{
    assert_near(a.x, b.x, tol);
    assert_near(a.y, b.y, tol);
    assert_near(a.z, b.z, tol);
}

static void assert_mat3_near(km_mat3 a, km_mat3 b, double tol)
{
    for (int i = 0; i < 9; i++)
        assert_near(a.m[i], b.m[i], tol);
}

/* Same rotation: q and -q are equal. */
static void assert_quat_same_rotation(km_quat a, km_quat b, double tol)
{
    double dot = a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
    assert_near(fabs(dot), 1.0, tol);
}

/* Deterministic pseudo-random numbers in [-1, 1). */
static uint64_t rng = 0x12345678ABCDEFull;
static double rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}

static km_quat random_quat(void)
{
    return km_quat_normalize((km_quat){rnd(), rnd(), rnd(), rnd()});
}

static void test_vec3(void **state)
{
    (void)state;
    km_vec3 a = km_vec3_make(1, 2, 3), b = km_vec3_make(-2, 0.5, 4);
    assert_vec_near(km_vec3_add(a, b), km_vec3_make(-1, 2.5, 7), 0);
    assert_vec_near(km_vec3_sub(a, b), km_vec3_make(3, 1.5, -1), 0);
    assert_vec_near(km_vec3_scale(a, 2), km_vec3_make(2, 4, 6), 0);
    assert_near(km_vec3_dot(a, b), -2 + 1 + 12, 0);
    km_vec3 c = km_vec3_cross(a, b);
    assert_vec_near(c, km_vec3_make(2 * 4 - 3 * 0.5, 3 * -2 - 1 * 4, 1 * 0.5 - 2 * -2), 1e-15);
    assert_near(km_vec3_dot(c, a), 0, 1e-12);
    assert_near(km_vec3_norm(km_vec3_make(3, 4, 12)), 13, 1e-15);
    assert_near(km_vec3_dist(a, b), sqrt(9 + 2.25 + 1), 1e-15);
    assert_near(km_vec3_norm(km_vec3_normalize(b)), 1, 1e-15);
    assert_vec_near(km_vec3_normalize(km_vec3_make(0, 0, 0)), km_vec3_make(0, 0, 0), 0);
}

static void test_mat3_basics_and_inverse(void **state)
{
    (void)state;
    km_mat3 a = {{2, -1, 0, 1, 3, 2, 0, 1, 4}};
    km_mat3 b = {{1, 2, 3, 4, 5, 6, 7, 8, 10}};
    km_mat3 ab = km_mat3_mul(a, b);
    assert_near(ab.m[0], 2 * 1 + -1 * 4 + 0 * 7, 0);
    assert_near(ab.m[5], 1 * 3 + 3 * 6 + 2 * 10, 0);
    km_mat3 at = km_mat3_transpose(a);
    assert_near(at.m[1], a.m[3], 0);
    assert_near(at.m[5], a.m[7], 0);
    assert_near(km_mat3_det(a), 2 * (12 - 2) + 1 * (4 - 0), 1e-12);
    km_mat3 inv;
    assert_int_equal(km_mat3_inverse(a, &inv), KM_OK);
    assert_mat3_near(km_mat3_mul(a, inv), km_mat3_identity(), 1e-14);
    assert_mat3_near(km_mat3_mul(inv, a), km_mat3_identity(), 1e-14);
    assert_vec_near(km_mat3_apply(a, km_vec3_make(1, 1, 1)), km_vec3_make(1, 6, 5), 0);
    /* Singular and tiny-but-regular matrices. */
    km_mat3 singular = {{1, 2, 3, 2, 4, 6, 1, 0, 1}};
    assert_int_equal(km_mat3_inverse(singular, &inv), KM_ERR_NUMERIC);
    km_mat3 zero = {{0}};
    assert_int_equal(km_mat3_inverse(zero, &inv), KM_ERR_NUMERIC);
    km_mat3 tiny = {{1e-6, 0, 0, 0, 2e-6, 0, 0, 0, 4e-6}};
    assert_int_equal(km_mat3_inverse(tiny, &inv), KM_OK);
    assert_near(inv.m[8], 2.5e5, 1e-6);
}

static void test_axis_angle_and_rodrigues(void **state)
{
    (void)state;
    /* 90 degrees about z maps x to y (right-handed). */
    km_mat3 Rz = km_mat3_from_axis_angle(km_vec3_make(0, 0, 2), PI / 2);
    assert_vec_near(km_mat3_apply(Rz, km_vec3_make(1, 0, 0)), km_vec3_make(0, 1, 0), 1e-15);
    km_quat qz = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), PI / 2);
    assert_vec_near(km_quat_rotate(qz, km_vec3_make(1, 0, 0)), km_vec3_make(0, 1, 0), 1e-15);
    /* Rodrigues vector [0.1, -0.2, 0.3]: first row of exp([r]x), summed as a power series
     * (independently of the closed form under test). */
    km_mat3 R = km_mat3_from_rodrigues(km_vec3_make(0.1, -0.2, 0.3));
    assert_near(R.m[0], 0.9357548032779188, 1e-14);
    assert_near(R.m[1], -0.30293271340263717, 1e-14);
    assert_near(R.m[2], -0.1805400766943977, 1e-14);
    assert_near(km_mat3_det(R), 1, 1e-14);
    /* Round trips, including near 0 and near pi. */
    double angles[] = {0.0, 1e-9, 1e-4, 0.5, 2.0, PI - 1e-6, PI};
    for (size_t i = 0; i < sizeof angles / sizeof angles[0]; i++) {
        for (int trial = 0; trial < 20; trial++) {
            km_vec3 axis = km_vec3_normalize(km_vec3_make(rnd(), rnd(), rnd()));
            km_vec3 r = km_vec3_scale(axis, angles[i]);
            km_mat3 M = km_mat3_from_rodrigues(r);
            km_vec3 back = km_mat3_to_rodrigues(M);
            if (angles[i] >= PI - 1e-6) {
                /* At pi, r and -r are the same rotation. */
                assert_mat3_near(km_mat3_from_rodrigues(back), M, 1e-9);
                assert_near(km_vec3_norm(back), angles[i], 1e-6);
            } else {
                assert_vec_near(back, r, 1e-9);
            }
        }
    }
    assert_vec_near(km_mat3_to_rodrigues(km_mat3_identity()), km_vec3_make(0, 0, 0), 0);
    assert_mat3_near(km_mat3_from_axis_angle(km_vec3_make(0, 0, 0), 1), km_mat3_identity(), 0);
}

static void test_quat_mat_round_trips(void **state)
{
    (void)state;
    for (int trial = 0; trial < 500; trial++) {
        km_quat q = random_quat();
        km_mat3 R = km_quat_to_mat3(q);
        /* A rotation matrix: R R^T = I, det 1. */
        assert_mat3_near(km_mat3_mul(R, km_mat3_transpose(R)), km_mat3_identity(), 1e-14);
        assert_near(km_mat3_det(R), 1, 1e-14);
        km_quat back = km_quat_from_mat3(R);
        assert_true(back.w >= 0);
        assert_quat_same_rotation(back, q, 1e-13);
        km_vec3 v = km_vec3_make(rnd(), rnd(), rnd());
        assert_vec_near(km_quat_rotate(q, v), km_mat3_apply(R, v), 1e-14);
    }
    /* The four Shepperd branches: rotations by pi about each axis and identity. */
    km_vec3 axes[] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}};
    for (int i = 0; i < 4; i++) {
        km_quat q = km_quat_from_axis_angle(axes[i], PI);
        assert_quat_same_rotation(km_quat_from_mat3(km_quat_to_mat3(q)), q, 1e-14);
    }
    assert_quat_same_rotation(km_quat_from_mat3(km_mat3_identity()), km_quat_identity(), 0);
}

static void test_quat_algebra(void **state)
{
    (void)state;
    for (int trial = 0; trial < 200; trial++) {
        km_quat a = random_quat(), b = random_quat();
        /* Composition matches matrix product. */
        km_mat3 Rab = km_mat3_mul(km_quat_to_mat3(a), km_quat_to_mat3(b));
        assert_mat3_near(km_quat_to_mat3(km_quat_mul(a, b)), Rab, 1e-14);
        /* Conjugate is the inverse. */
        assert_quat_same_rotation(km_quat_mul(a, km_quat_conjugate(a)), km_quat_identity(), 1e-14);
    }
    km_quat a = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 0.3);
    km_quat b = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 1.0);
    assert_near(km_quat_angle_between(a, b), 0.7, 1e-14);
    km_quat nb = {-b.x, -b.y, -b.z, -b.w};
    assert_near(km_quat_angle_between(a, nb), 0.7, 1e-14);
    assert_near(km_quat_angle_between(a, a), 0, 1e-15);
    km_quat c = km_quat_from_axis_angle(km_vec3_make(1, 0, 0), 1e-7);
    assert_near(km_quat_angle_between(km_quat_identity(), c), 1e-7, 1e-20);
    km_quat d = km_quat_from_axis_angle(km_vec3_make(1, 0, 0), PI);
    assert_near(km_quat_angle_between(km_quat_identity(), d), PI, 1e-14);
    km_quat z = km_quat_normalize((km_quat){0, 0, 0, 0});
    assert_quat_same_rotation(z, km_quat_identity(), 0);
}

static void test_slerp(void **state)
{
    (void)state;
    km_vec3 axis = km_vec3_make(1, 2, -1);
    km_quat a = km_quat_from_axis_angle(axis, 0.2);
    km_quat b = km_quat_from_axis_angle(axis, 1.4);
    assert_quat_same_rotation(km_quat_slerp(a, b, 0), a, 1e-14);
    assert_quat_same_rotation(km_quat_slerp(a, b, 1), b, 1e-14);
    km_quat mid = km_quat_slerp(a, b, 0.25);
    assert_quat_same_rotation(mid, km_quat_from_axis_angle(axis, 0.5), 1e-14);
    /* Constant angular speed. */
    assert_near(km_quat_angle_between(a, mid), 0.3, 1e-12);
    /* Takes the short way when b is given with the opposite sign. */
    km_quat nb = {-b.x, -b.y, -b.z, -b.w};
    assert_quat_same_rotation(km_quat_slerp(a, nb, 0.25), km_quat_from_axis_angle(axis, 0.5),
                              1e-14);
    /* Nearly equal inputs (linear branch) stay unit and between the ends. */
    km_quat c = km_quat_from_axis_angle(axis, 0.2 + 1e-6);
    km_quat m2 = km_quat_slerp(a, c, 0.5);
    assert_near(sqrt(m2.x * m2.x + m2.y * m2.y + m2.z * m2.z + m2.w * m2.w), 1, 1e-15);
    assert_near(km_quat_angle_between(a, m2), 0.5e-6, 1e-12);
}

static void test_mat4(void **state)
{
    (void)state;
    km_mat3 R = km_mat3_from_axis_angle(km_vec3_make(0, 1, 0), 0.7);
    km_vec3 t = km_vec3_make(0.1, -2, 3);
    km_mat4 T = km_mat4_from_rt(R, t);
    km_vec3 p = km_vec3_make(1, 2, 3);
    assert_vec_near(km_mat4_apply_point(T, p), km_vec3_add(km_mat3_apply(R, p), t), 1e-15);
    assert_vec_near(km_mat4_apply_point(km_mat4_identity(), p), p, 0);
    /* Inverse transform composed with T is the identity. */
    km_mat3 Rt = km_mat3_transpose(R);
    km_mat4 Tinv = km_mat4_from_rt(Rt, km_vec3_scale(km_mat3_apply(Rt, t), -1));
    km_mat4 I = km_mat4_mul(Tinv, T);
    km_mat4 expect = km_mat4_identity();
    for (int i = 0; i < 16; i++)
        assert_near(I.m[i], expect.m[i], 1e-15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec3),
        cmocka_unit_test(test_mat3_basics_and_inverse),
        cmocka_unit_test(test_axis_angle_and_rodrigues),
        cmocka_unit_test(test_quat_mat_round_trips),
        cmocka_unit_test(test_quat_algebra),
        cmocka_unit_test(test_slerp),
        cmocka_unit_test(test_mat4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
