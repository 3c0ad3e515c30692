/* Triangulation: exact on noiseless views (with and without lens distortion), close under
 * pixel noise, the private projection/Jacobian agree with calib's km_camera_project, and
 * degenerate input gives a status, not a wrong point. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kinema/tracking.h"
#include "../../tracking/triangulate.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static double gaussian(void)
{
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Four cameras on a 4 m circle, 2.2 m high, looking at the volume centre. */
static void make_rig(km_rig *rig, bool distortion)
{
    memset(rig, 0, sizeof *rig);
    rig->camera_count = 4;
    for (int c = 0; c < 4; c++) {
        double a = c * M_PI / 2.0 + 0.3;
        char name[16];
        snprintf(name, sizeof name, "cam%d", c);
        km_camera_look_at(&rig->cameras[c], name, 1280, 1024, 70.0 * M_PI / 180.0,
                          km_vec3_make(4.0 * cos(a), 2.2, 4.0 * sin(a)), km_vec3_make(0, 1, 0));
        if (distortion) {
            const double d[5] = {-0.12 + 0.02 * c, 0.06, 0.0008, -0.0005, -0.01};
            memcpy(rig->cameras[c].dist, d, sizeof d);
        }
    }
}

static km_vec3 random_point(void)
{
    return km_vec3_make(-1.0 + 2.0 * uniform(), 0.1 + 1.8 * uniform(), -1.0 + 2.0 * uniform());
}

static void test_projection_and_jacobian(void **state)
{
    (void)state;
    km_rig rig;
    make_rig(&rig, true);
    for (int trial = 0; trial < 200; trial++) {
        const km_camera *cam = &rig.cameras[trial % 4];
        km_vec3 X = random_point();
        double u, v, uc, vc, J[6];
        assert_true(km_tri_project(cam, X, &u, &v, J));
        assert_true(km_camera_project(cam, X, &uc, &vc));
        assert_true(fabs(u - uc) < 1e-9 && fabs(v - vc) < 1e-9);
        /* Central differences. */
        const double h = 1e-6;
        for (int c = 0; c < 3; c++) {
            km_vec3 Xp = X, Xm = X;
            double *pp = c == 0 ? &Xp.x : c == 1 ? &Xp.y : &Xp.z;
            double *pm = c == 0 ? &Xm.x : c == 1 ? &Xm.y : &Xm.z;
            *pp += h;
            *pm -= h;
            double up, vp, um, vm;
            assert_true(km_tri_project(cam, Xp, &up, &vp, NULL));
            assert_true(km_tri_project(cam, Xm, &um, &vm, NULL));
            const double du = (up - um) / (2 * h), dv = (vp - vm) / (2 * h);
            assert_true(fabs(du - J[c]) < 1e-4 * (1.0 + fabs(du)));
            assert_true(fabs(dv - J[3 + c]) < 1e-4 * (1.0 + fabs(dv)));
        }
    }
    /* Behind the camera. */
    km_vec3 behind = km_vec3_scale(km_camera_center(&rig.cameras[0]), 2.0);
    double u, v;
    assert_false(km_tri_project(&rig.cameras[0], behind, &u, &v, NULL));
}

static void check_exact(bool distortion)
{
    km_rig rig;
    make_rig(&rig, distortion);
    double worst_m = 0.0, worst_px = 0.0;
    for (int trial = 0; trial < 100; trial++) {
        km_vec3 X = random_point();
        int cams[4];
        double u[4], v[4];
        const int n = 2 + trial % 3;
        for (int k = 0; k < n; k++) {
            cams[k] = (trial + k) % 4;
            assert_true(km_camera_project(&rig.cameras[cams[k]], X, &u[k], &v[k]));
        }
        km_vec3 got;
        double residual = -1.0;
        assert_int_equal(km_triangulate(&rig, cams, u, v, n, &got, &residual), KM_OK);
        worst_m = fmax(worst_m, km_vec3_dist(got, X));
        worst_px = fmax(worst_px, residual);
    }
    printf("triangulate %s distortion: worst error %.3g m, worst residual %.3g px\n",
           distortion ? "with" : "without", worst_m, worst_px);
    assert_true(worst_m < 1e-8);
    assert_true(worst_px < 1e-6);
}

static void test_exact_noiseless(void **state)
{
    (void)state;
    check_exact(false);
}

static void test_exact_with_distortion(void **state)
{
    (void)state;
    check_exact(true);
}

static void test_noise(void **state)
{
    (void)state;
    km_rig rig;
    make_rig(&rig, true);
    double sum2 = 0.0, sum_res = 0.0;
    const int trials = 500;
    for (int trial = 0; trial < trials; trial++) {
        km_vec3 X = random_point();
        int cams[4] = {0, 1, 2, 3};
        double u[4], v[4];
        for (int k = 0; k < 4; k++) {
            assert_true(km_camera_project(&rig.cameras[k], X, &u[k], &v[k]));
            u[k] += 0.1 * gaussian();
            v[k] += 0.1 * gaussian();
        }
        km_vec3 got;
        double residual;
        assert_int_equal(km_triangulate(&rig, cams, u, v, 4, &got, &residual), KM_OK);
        const double e = km_vec3_dist(got, X);
        sum2 += e * e;
        sum_res += residual;
    }
    const double rms_mm = 1000.0 * sqrt(sum2 / trials);
    const double mean_res = sum_res / trials;
    printf("triangulate 4 views, 0.1 px noise: RMS %.4f mm, mean residual %.4f px\n", rms_mm,
           mean_res);
    assert_true(rms_mm < 0.8);
    /* Residual of a least-squares fit to 0.1 px noise: below the noise, not zero. */
    assert_true(mean_res > 0.03 && mean_res < 0.15);
}

static void test_degenerate(void **state)
{
    (void)state;
    km_rig rig;
    make_rig(&rig, false);
    km_vec3 X = km_vec3_make(0.2, 1.0, -0.3), got;
    int cams[3] = {0, 1, 2};
    double u[3], v[3];
    for (int k = 0; k < 3; k++)
        assert_true(km_camera_project(&rig.cameras[k], X, &u[k], &v[k]));

    assert_int_equal(km_triangulate(&rig, cams, u, v, 1, &got, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_triangulate(&rig, cams, u, v, 0, &got, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_triangulate(NULL, cams, u, v, 2, &got, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_triangulate(&rig, cams, u, v, 2, NULL, NULL), KM_ERR_INVALID_ARGUMENT);
    int bad_cams[2] = {0, 7};
    assert_int_equal(km_triangulate(&rig, bad_cams, u, v, 2, &got, NULL),
                     KM_ERR_INVALID_ARGUMENT);
    double nan_u[2] = {NAN, u[1]};
    assert_int_equal(km_triangulate(&rig, cams, nan_u, v, 2, &got, NULL),
                     KM_ERR_INVALID_ARGUMENT);

    /* The same camera twice: one centre, no depth. */
    int same[2] = {1, 1};
    double su[2] = {u[1], u[1]}, sv[2] = {v[1], v[1]};
    assert_int_equal(km_triangulate(&rig, same, su, sv, 2, &got, NULL), KM_ERR_NUMERIC);

    /* A camera without pose (intrinsics only). */
    km_rig norig = rig;
    norig.cameras[2].has_pose = false;
    assert_int_equal(km_triangulate(&norig, cams, u, v, 3, &got, NULL),
                     KM_ERR_INVALID_ARGUMENT);

    /* Two parallel cameras 1 m apart with the observations swapped: the rays diverge and
     * only meet behind the cameras. */
    km_rig pr;
    memset(&pr, 0, sizeof pr);
    pr.camera_count = 2;
    km_camera_look_at(&pr.cameras[0], "l", 1280, 1024, 1.0, km_vec3_make(0, 1, 0),
                      km_vec3_make(0, 1, -5));
    km_camera_look_at(&pr.cameras[1], "r", 1280, 1024, 1.0, km_vec3_make(1, 1, 0),
                      km_vec3_make(1, 1, -5));
    km_vec3 Q = km_vec3_make(0.5, 1.2, -5.0);
    double qu[2], qv[2];
    assert_true(km_camera_project(&pr.cameras[0], Q, &qu[1], &qv[1]));
    assert_true(km_camera_project(&pr.cameras[1], Q, &qu[0], &qv[0]));
    int pc[2] = {0, 1};
    assert_int_equal(km_triangulate(&pr, pc, qu, qv, 2, &got, NULL), KM_ERR_NUMERIC);
    /* ...and in the right order it is exact. */
    double ou[2] = {qu[1], qu[0]}, ov[2] = {qv[1], qv[0]};
    assert_int_equal(km_triangulate(&pr, pc, ou, ov, 2, &got, NULL), KM_OK);
    assert_true(km_vec3_dist(got, Q) < 1e-8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_projection_and_jacobian),
        cmocka_unit_test(test_exact_noiseless),
        cmocka_unit_test(test_exact_with_distortion),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
