/* Tests of the ground plane (calib/ground.c): the world frame recovered from the synthetic
 * L-frame with a rig given in an arbitrary frame (world origin and axes within the noise),
 * the L-frame markers found among ghosts, km_rig_transform, and clear errors for a missing
 * or incomplete L-frame and for a mirrored one (cameras would be under the floor). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "wand_fixture.h"

/* An arbitrary rigid motion (what a wand calibration's root-camera gauge looks like). */
static void arbitrary_frame(km_mat3 *R, km_vec3 *t)
{
    *R = km_mat3_from_axis_angle(km_vec3_normalize(km_vec3_make(0.3, -1.0, 0.6)), 2.1);
    *t = km_vec3_make(1.7, -0.4, 3.2);
}

static void test_world_frame(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.ground_frame_count = 600;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    const km_rig *truth = km_synthetic_wand_rig(w);
    km_rig moved = *truth;
    km_mat3 R;
    km_vec3 t;
    arbitrary_frame(&R, &t);
    km_rig_transform(&moved, R, t);
    km_lframe lf = km_lframe_default();
    km_ground *g = km_ground_create(&moved, &lf, &st);
    assert_non_null(g);
    assert_int_equal(wand_fixture_ground(g, w), KM_OK);
    km_mat3 Rg;
    km_vec3 tg, markers[4], truth_markers[4];
    double rms = -1.0;
    assert_int_equal(km_ground_solve(g, &Rg, &tg, markers, &rms), KM_OK);
    km_synthetic_lframe_markers(w, truth_markers);
    double marker_err = 0.0;
    for (int k = 0; k < 4; k++) {
        /* markers are in the moved frame: bring the truth there */
        km_vec3 m = km_vec3_add(km_mat3_apply(R, truth_markers[k]), t);
        marker_err = fmax(marker_err, 1000.0 * km_vec3_dist(m, markers[k]));
    }
    km_rig_transform(&moved, Rg, tg);
    wand_accuracy a = wand_fixture_compare(&moved, truth);
    printf("  L-frame markers within %.4f mm, fit %.4f mm RMS; world frame: camera centres "
           "max %.3f mm, axes %.4f deg, origin %.3f mm\n", marker_err, rms, a.centre_max_mm,
           a.rotation_max_deg, a.origin_mm);
    assert_true(marker_err < 0.1);
    assert_true(rms >= 0.0 && rms < 0.1);
    assert_true(a.centre_max_mm < 1.5);
    assert_true(a.rotation_max_deg < 0.02);
    assert_true(a.origin_mm < 0.2);
    km_ground_destroy(g);
    km_synthetic_wand_destroy(w);
}

static void test_rig_transform(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    km_rig rig = *km_synthetic_wand_rig(w);
    km_mat3 R;
    km_vec3 t;
    arbitrary_frame(&R, &t);
    km_vec3 X = km_vec3_make(0.2, 1.1, -0.3);
    double u0, v0, u1, v1;
    assert_true(km_camera_project(&rig.cameras[2], X, &u0, &v0));
    km_rig_transform(&rig, R, t);
    /* The same physical point has new coordinates R X + t and projects to the same pixel. */
    assert_true(km_camera_project(&rig.cameras[2], km_vec3_add(km_mat3_apply(R, X), t), &u1,
                                  &v1));
    assert_true(fabs(u0 - u1) < 1e-9 && fabs(v0 - v1) < 1e-9);
    km_synthetic_wand_destroy(w);
}

/* Noise-free blobs of given points in every camera, plus a few ghosts. */
static int project_points(const km_rig *rig, const km_vec3 *pts, int n, int frame,
                          km_calib_blob *out)
{
    int m = 0;
    for (int c = 0; c < rig->camera_count; c++) {
        for (int k = 0; k < n; k++) {
            double u, v;
            if (km_camera_project(&rig->cameras[c], pts[k], &u, &v) && u >= 0 && v >= 0 &&
                u < rig->cameras[c].width && v < rig->cameras[c].height)
                out[m++] = (km_calib_blob){c, u, v};
        }
        out[m++] = (km_calib_blob){c, 37.0 * ((frame * 7 + c * 3) % 31), 29.0 * ((frame + c) % 29)};
    }
    return m;
}

static km_status solve_points(const km_vec3 *pts, int n)
{
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    const km_rig *rig = km_synthetic_wand_rig(w);
    km_lframe lf = km_lframe_default();
    km_ground *g = km_ground_create(rig, &lf, &st);
    assert_non_null(g);
    km_calib_blob blobs[8 * 8];
    for (int f = 0; f < 10; f++) {
        int m = project_points(rig, pts, n, f, blobs);
        assert_int_equal(km_ground_add_frame(g, blobs, m), KM_OK);
    }
    km_mat3 R;
    km_vec3 t;
    st = km_ground_solve(g, &R, &t, NULL, NULL);
    printf("  -> %s: %s\n", km_status_name(st), st ? km_last_error() : "ok");
    km_ground_destroy(g);
    km_synthetic_wand_destroy(w);
    return st;
}

static void test_errors(void **state)
{
    (void)state;
    const double h = 0.007;
    const km_vec3 good[4] = {{0, h, 0}, {0.3, h, 0}, {0.5, h, 0}, {0, h, 0.2}};
    assert_int_equal(solve_points(good, 4), KM_OK);
    /* Only three markers (one covered): named as missing. */
    assert_int_equal(solve_points(good, 3), KM_ERR_NOT_FOUND);
    assert_non_null(strstr(km_last_error(), "3 of the L-frame's 4 markers"));
    /* No L-frame at all: only ghosts, which move. */
    assert_int_equal(solve_points(good, 0), KM_ERR_NOT_FOUND);
    /* Mirrored L: short arm along -Z. */
    const km_vec3 mirrored[4] = {{0, h, 0}, {0.3, h, 0}, {0.5, h, 0}, {0, h, -0.2}};
    assert_int_equal(solve_points(mirrored, 4), KM_ERR_NUMERIC);
    assert_non_null(strstr(km_last_error(), "mirrored"));
    /* Wrong geometry: short arm 0.3 m. */
    const km_vec3 wrong[4] = {{0, h, 0}, {0.3, h, 0}, {0.5, h, 0}, {0, h, 0.3}};
    assert_int_equal(solve_points(wrong, 4), KM_ERR_NOT_FOUND);
    assert_non_null(strstr(km_last_error(), "geometry"));
    /* Bad arguments. */
    km_status st;
    km_lframe bad = km_lframe_default();
    bad.long_arm_m[1] = 0.2;
    km_rig rig;
    memset(&rig, 0, sizeof rig);
    rig.camera_count = 2;
    assert_null(km_ground_create(&rig, &bad, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    km_ground_destroy(NULL);
}

int main(void)
{
    km_log_set_level(KM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_world_frame),
        cmocka_unit_test(test_rig_transform),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
