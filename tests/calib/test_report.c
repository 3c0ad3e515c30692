/* Tests of the wand calibration's outputs (calib/report.c, the file functions of
 * calib/wand.c): text report and PNG page with the figures, the saved rig (readable by
 * km_rig_load and OpenCV's FileStorage, with the statistics as extra keys), the multi-camera
 * intrinsics file and list, and the rig check flagging a bumped camera. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "kinema/cv.h"
#include "wand_fixture.h"

static void temp_path(char *out, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/kinema_test_wand_%ld_%s", dir != NULL ? dir : "/tmp",
             (long)getpid(), tag);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_report_and_rig_file(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.frame_count = 1000;
    scfg.ground_frame_count = 200;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    km_wand_config cfg = km_wand_config_default();
    km_wand_calibration *wc = km_wand_calibration_create(&cfg, km_synthetic_wand_rig(w), &st);
    assert_non_null(wc);
    assert_int_equal(wand_fixture_feed(wc, w, -1), KM_OK);
    km_rig rig;
    km_wand_result r;
    assert_int_equal(km_wand_calibration_solve(wc, &rig, &r), KM_OK);
    km_lframe lf = km_lframe_default();
    km_ground *g = km_ground_create(&rig, &lf, &st);
    assert_non_null(g);
    assert_int_equal(wand_fixture_ground(g, w), KM_OK);
    assert_int_equal(km_wand_calibration_set_ground(g, &rig, &r), KM_OK);
    km_ground_destroy(g);

    /* Text report. */
    char txt[512], png[512], yaml[512];
    temp_path(txt, sizeof txt, "report.txt");
    temp_path(png, sizeof png, "report.png");
    temp_path(yaml, sizeof yaml, "rig.yaml");
    FILE *f = fopen(txt, "w");
    assert_non_null(f);
    assert_int_equal(km_wand_report_text(&r, &rig, f), KM_OK);
    fclose(f);
    char *text = read_all(txt);
    char rms[32];
    snprintf(rms, sizeof rms, "%.3f px", r.rms_px);
    assert_non_null(strstr(text, rms));
    assert_non_null(strstr(text, "Wand length error"));
    assert_non_null(strstr(text, "synthetic7"));
    assert_non_null(strstr(text, "Ground plane: L-frame fit"));
    fputs(text, stdout);
    free(text);

    /* PNG page: exists, decodes, has drawn content. */
    assert_int_equal(km_wand_report_png(&r, &rig, png), KM_OK);
    uint8_t *pixels = NULL;
    int width = 0, height = 0;
    assert_int_equal(km_cv_read_gray(png, &pixels, &width, &height), KM_OK);
    long dark = 0;
    for (long i = 0; i < (long)width * height; i++)
        dark += pixels[i] < 128;
    printf("  report PNG %dx%d, %.1f%% dark pixels (%s)\n", width, height,
           100.0 * dark / ((double)width * height), png);
    assert_true(width >= 800 && height >= 600);
    assert_true(dark > 0.01 * width * height);
    free(pixels);

    /* Rig file: our reader and OpenCV's read the same cameras; statistics present. */
    assert_int_equal(km_wand_save_rig(yaml, &rig, &r), KM_OK);
    km_rig back, cvback;
    assert_int_equal(km_rig_load(yaml, &back), KM_OK);
    assert_int_equal(km_cv_rig_read(yaml, &cvback), KM_OK);
    assert_int_equal(back.camera_count, rig.camera_count);
    for (int c = 0; c < rig.camera_count; c++) {
        assert_true(back.cameras[c].has_pose);
        assert_true(km_vec3_dist(back.cameras[c].t, rig.cameras[c].t) < 1e-12);
        assert_true(km_vec3_dist(cvback.cameras[c].t, rig.cameras[c].t) < 1e-12);
    }
    text = read_all(yaml);
    assert_non_null(strstr(text, "wand_length_error_rms_mm:"));
    assert_non_null(strstr(text, "camera_rms_reprojection_error_px: ["));
    assert_non_null(strstr(text, "ground_lframe_rms_mm:"));
    free(text);

    remove(txt);
    if (getenv("KINEMA_KEEP_REPORT") == NULL)
        remove(png);
    remove(yaml);
    km_wand_calibration_destroy(wc);
    km_synthetic_wand_destroy(w);
}

static void test_intrinsics_files(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.camera_count = 3;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    const km_rig *truth = km_synthetic_wand_rig(w);
    char all[512], one[3][512], list[2048], bad[512];
    temp_path(all, sizeof all, "cams.yaml");
    assert_int_equal(km_wand_save_intrinsics(all, truth), KM_OK);
    km_rig back;
    assert_int_equal(km_wand_load_intrinsics(all, &back), KM_OK);
    assert_int_equal(back.camera_count, 3);
    for (int c = 0; c < 3; c++) {
        assert_memory_equal(back.cameras[c].K, truth->cameras[c].K, sizeof truth->cameras[c].K);
        assert_memory_equal(back.cameras[c].dist, truth->cameras[c].dist,
                            sizeof truth->cameras[c].dist);
        assert_false(back.cameras[c].has_pose);
    }
    /* A list of single-camera files (as `kinema calibrate intrinsics` writes them). */
    list[0] = '\0';
    for (int c = 0; c < 3; c++) {
        char tag[16];
        snprintf(tag, sizeof tag, "cam%d.yaml", c);
        temp_path(one[c], sizeof one[c], tag);
        km_rig single;
        memset(&single, 0, sizeof single);
        single.camera_count = 1;
        snprintf(single.name, sizeof single.name, "one");
        single.cameras[0] = truth->cameras[c];
        single.cameras[0].has_pose = false;
        assert_int_equal(km_rig_save(one[c], &single, NULL), KM_OK);
        strcat(list, one[c]);
        if (c < 2)
            strcat(list, ",");
    }
    assert_int_equal(km_wand_load_intrinsics(list, &back), KM_OK);
    assert_int_equal(back.camera_count, 3);
    assert_memory_equal(back.cameras[2].K, truth->cameras[2].K, sizeof truth->cameras[2].K);
    /* Malformed: error names the file and line. */
    temp_path(bad, sizeof bad, "bad.yaml");
    {
        FILE *f = fopen(bad, "w");
        assert_non_null(f);
        fputs("%YAML:1.0\n---\ncamera_count: 1\ncamera_0:\n   image_width: 640\n"
              "   image_height: 480\n   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d,"
              " data: [0, 0, 320, 0, 500, 240, 0, 0, 1]}\n"
              "   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, dt: d, data: [0,"
              " 0, 0, 0, 0]}\n", f);
        fclose(f);
    }
    assert_int_equal(km_wand_load_intrinsics(bad, &back), KM_ERR_PARSE);
    printf("  malformed: %s\n", km_last_error());
    assert_non_null(strstr(km_last_error(), ":7:"));
    assert_int_equal(km_wand_load_intrinsics("/nonexistent/cams.yaml", &back), KM_ERR_IO);
    remove(all);
    remove(bad);
    for (int c = 0; c < 3; c++)
        remove(one[c]);
    km_synthetic_wand_destroy(w);
}

static void test_rig_check_bumped(void **state)
{
    (void)state;
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.frame_count = 400;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    km_rig rig = *km_synthetic_wand_rig(w);
    /* Camera 3 was knocked: turned by 0.3 degrees since the calibration. */
    km_mat3 knock = km_mat3_from_axis_angle(km_vec3_make(0, 1, 0), 0.3 * M_PI / 180.0);
    rig.cameras[3].R = km_mat3_mul(knock, rig.cameras[3].R); /* about its own centre */
    rig.cameras[3].t = km_mat3_apply(knock, rig.cameras[3].t);
    km_rig_check *check = km_rig_check_create(&rig, 10.0, &st);
    assert_non_null(check);
    km_synthetic_blob sb[64 * 8];
    km_calib_blob cb[64 * 8];
    for (int f = 0; f < scfg.frame_count; f++) {
        km_vec3 m[3];
        km_synthetic_wand_markers(w, f, m);
        int n = km_synthetic_wand_observe(w, f, sb, 64 * 8);
        int k = wand_fixture_blobs(sb, n, -1, cb);
        assert_int_equal(km_rig_check_add_frame(check, m, 3, cb, k), KM_OK);
    }
    km_rig_check_result r;
    assert_int_equal(km_rig_check_result_get(check, 0.5, 3.0, &r), KM_OK);
    assert_int_equal(km_rig_check_report_text(&r, &rig, stdout), KM_OK);
    assert_int_equal(r.bumped_count, 1);
    assert_true(r.cameras[3].bumped);
    assert_true(r.cameras[3].median_px > 3.0);
    for (int c = 0; c < 8; c++)
        if (c != 3) {
            assert_false(r.cameras[c].bumped);
            assert_true(r.cameras[c].median_px < 0.3);
            assert_true(r.cameras[c].matched > 300);
        }
    km_rig_check_destroy(check);
    assert_null(km_rig_check_create(&rig, 0.0, &st));
    km_synthetic_wand_destroy(w);
}

int main(void)
{
    km_log_set_level(KM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_and_rig_file),
        cmocka_unit_test(test_intrinsics_files),
        cmocka_unit_test(test_rig_check_bumped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
