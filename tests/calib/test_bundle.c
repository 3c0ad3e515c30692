/* Tests of the bundle adjustment of the wand calibration (calib/bundle.c, through
 * km_wand_calibration_solve): exact recovery on noise-free data (to 1e-11 mm), intrinsics
 * refinement from wrong starting intrinsics, and robustness to many ghosts (misidentified
 * views dropped). The noisy runs of test_wand show the descent from the initialisation. */
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

/* Move the solved rig so its root camera coincides with the truth's (no ground plane). */
static void align_on_root(km_rig *rig, const km_rig *truth, int root)
{
    km_mat3 R = km_mat3_mul(km_mat3_transpose(truth->cameras[root].R), rig->cameras[root].R);
    km_vec3 t = km_vec3_sub(km_camera_center(&truth->cameras[root]),
                            km_mat3_apply(R, km_camera_center(&rig->cameras[root])));
    km_rig_transform(rig, R, t);
}

static km_wand_calibration *feed(const km_synthetic_wand *w, const km_wand_config *cfg,
                                 const km_rig *intrinsics)
{
    km_status st;
    km_wand_calibration *wc = km_wand_calibration_create(cfg, intrinsics, &st);
    assert_non_null(wc);
    assert_int_equal(wand_fixture_feed(wc, w, -1), KM_OK);
    return wc;
}

static void test_noise_free_exact(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.frame_count = 800;
    scfg.noise_px = 0.0;
    scfg.ghost_rate = 0.0;
    scfg.dropout_rate = 0.0;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    const km_rig *truth = km_synthetic_wand_rig(w);
    km_wand_config cfg = km_wand_config_default();
    km_wand_calibration *wc = feed(w, &cfg, truth);
    km_rig rig;
    km_wand_result r;
    assert_int_equal(km_wand_calibration_solve(wc, &rig, &r), KM_OK);
    align_on_root(&rig, truth, r.root_camera);
    wand_accuracy a = wand_fixture_compare(&rig, truth);
    printf("  noise-free: RMS %.2e px (initial %.3f px), centres max %.2e mm, rotations max "
           "%.2e deg, wand length error max %.2e mm, %d iterations\n", r.rms_px,
           r.initial_rms_px, a.centre_max_mm, a.rotation_max_deg, r.length_error_max_mm,
           r.iterations);
    assert_true(r.rms_px < 1e-4);
    assert_true(a.centre_max_mm < 1e-3);
    assert_true(a.rotation_max_deg < 1e-5);
    assert_true(r.length_error_max_mm < 1e-3);
    km_wand_calibration_destroy(wc);
    km_synthetic_wand_destroy(w);
}

static void test_refine_intrinsics(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.frame_count = 3000;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    const km_rig *truth = km_synthetic_wand_rig(w);
    /* Intrinsics as a careless board calibration might give them. */
    km_rig wrong = *truth;
    for (int c = 0; c < wrong.camera_count; c++) {
        km_camera *cam = &wrong.cameras[c];
        cam->K[0] *= 1.0 + 0.004 * ((c % 3) - 1);
        cam->K[4] *= 1.0 - 0.003 * ((c % 2) ? 1 : -1);
        cam->K[2] += (c % 2) ? 3.0 : -2.0;
        cam->K[5] += (c % 3) - 1.0;
        cam->dist[0] += 0.01;
    }
    km_wand_config cfg = km_wand_config_default();
    km_rig plain, refined;
    km_wand_result rp, rr;
    km_wand_calibration *wc = feed(w, &cfg, &wrong);
    assert_int_equal(km_wand_calibration_solve(wc, &plain, &rp), KM_OK);
    km_wand_calibration_destroy(wc);
    cfg.refine_intrinsics = true;
    wc = feed(w, &cfg, &wrong);
    assert_int_equal(km_wand_calibration_solve(wc, &refined, &rr), KM_OK);
    km_wand_calibration_destroy(wc);
    double fx_err = 0.0, c_err = 0.0, k1_err = 0.0;
    for (int c = 0; c < truth->camera_count; c++) {
        const km_camera *a = &refined.cameras[c], *b = &truth->cameras[c];
        fx_err = fmax(fx_err, fmax(fabs(a->K[0] / b->K[0] - 1.0), fabs(a->K[4] / b->K[4] - 1.0)));
        c_err = fmax(c_err, fmax(fabs(a->K[2] - b->K[2]), fabs(a->K[5] - b->K[5])));
        k1_err = fmax(k1_err, fabs(a->dist[0] - b->dist[0]));
    }
    align_on_root(&refined, truth, rr.root_camera);
    wand_accuracy a = wand_fixture_compare(&refined, truth);
    printf("  wrong intrinsics: RMS %.3f px without refinement, %.3f px with (%.2f s); refined "
           "fx/fy within %.3f%%, cx/cy within %.2f px, k1 within %.4f; centres max %.3f mm\n",
           rp.rms_px, rr.rms_px, rr.solve_seconds, 100.0 * fx_err, c_err, k1_err,
           a.centre_max_mm);
    assert_true(rp.rms_px > 0.3);
    assert_true(rr.rms_px < 0.21);
    assert_true(fx_err < 0.001);
    assert_true(c_err < 1.0);
    assert_true(k1_err < 0.003);
    /* Focal length and distance trade off (0.03% of 4.8 m is 1.4 mm): looser than with
     * known intrinsics. */
    assert_true(a.centre_max_mm < 3.0);
    km_synthetic_wand_destroy(w);
}

static void test_many_ghosts(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.frame_count = 1500;
    scfg.ghost_rate = 4.0;
    scfg.dropout_rate = 0.1;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    const km_rig *truth = km_synthetic_wand_rig(w);
    km_wand_config cfg = km_wand_config_default();
    km_wand_calibration *wc = feed(w, &cfg, truth);
    km_rig rig;
    km_wand_result r;
    assert_int_equal(km_wand_calibration_solve(wc, &rig, &r), KM_OK);
    align_on_root(&rig, truth, r.root_camera);
    wand_accuracy a = wand_fixture_compare(&rig, truth);
    int views = 0, used = 0, ambiguous = 0;
    for (int c = 0; c < r.camera_count; c++)
        views += r.cameras[c].view_count, used += r.cameras[c].used_count,
            ambiguous += r.cameras[c].ambiguous_count;
    printf("  4 ghosts/view, 10%% dropouts: %d views identified, %d used, %d ambiguous; RMS "
           "%.3f px, centres max %.3f mm (root-aligned)\n", views, used, ambiguous, r.rms_px,
           a.centre_max_mm);
    assert_true(r.rms_px < 0.25);
    assert_true(a.centre_max_mm < 1.0);
    assert_true(ambiguous > 0);
    km_wand_calibration_destroy(wc);
    km_synthetic_wand_destroy(w);
}

int main(void)
{
    km_log_set_level(KM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_free_exact),
        cmocka_unit_test(test_refine_intrinsics),
        cmocka_unit_test(test_many_ghosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
