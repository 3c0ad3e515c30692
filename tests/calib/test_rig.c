/* Tests of calib/rig.c: save -> load round trip bit for bit, our files read by OpenCV's
 * cv::FileStorage (km_cv_rig_read) with the same numbers, a file as OpenCV writes it, and
 * malformed files rejected with KM_ERR_PARSE naming file and line. */
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
#include "kinema/cv.h"

static void temp_path(char *out, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/kinema_test_rig_%ld_%s.yaml", dir != NULL ? dir : "/tmp",
             (long)getpid(), tag);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Three cameras with awkward doubles (thirds, pi, tiny and huge magnitudes) so that any
 * precision loss in writing shows. */
static void make_rig(km_rig *rig)
{
    memset(rig, 0, sizeof *rig);
    snprintf(rig->name, sizeof rig->name, "stage-a");
    rig->camera_count = 3;
    km_camera_look_at(&rig->cameras[0], "cam0", 1280, 1024, 1.1, km_vec3_make(3, 2.5, 4),
                      km_vec3_make(0, 1, 0));
    km_camera_look_at(&rig->cameras[1], "cam 1", 640, 480, 0.9, km_vec3_make(-3.3, 2.2, 1.0 / 3),
                      km_vec3_make(0.1, 0.9, -0.2));
    km_camera_look_at(&rig->cameras[2], "", 1920, 1080, 1.4, km_vec3_make(0.01, 4, -4),
                      km_vec3_make(0, 0, 0));
    const double dist[3][5] = {{-0.26637260909660682, -0.038588898922304653,
                                0.0017831947042852964, -0.00028122100441115472,
                                0.23839153080878486},
                               {1.0 / 3.0, -M_PI, 1e-300, -2.5e-17, 123456789.123},
                               {0, -0.0, 0, 0, 0}};
    for (int i = 0; i < 3; i++)
        memcpy(rig->cameras[i].dist, dist[i], sizeof dist[i]);
    rig->cameras[1].K[0] = 1000.0 / 3.0;
    rig->cameras[1].K[4] = 1000.0 / 7.0;
}

/* bits: identical bit patterns; otherwise identical values (== exact, but -0 == 0: OpenCV
 * reads "-0" as the integer 0). */
static void assert_same_doubles(const double *a, const double *b, size_t n, bool bits)
{
    for (size_t i = 0; i < n; i++) {
        bool same = bits ? memcmp(&a[i], &b[i], sizeof(double)) == 0 : a[i] == b[i];
        if (!same)
            fail_msg("element %zu: %.17g != %.17g", i, a[i], b[i]);
    }
}

static void assert_same_rig(const km_rig *a, const km_rig *b, bool bits)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->camera_count, b->camera_count);
    for (int i = 0; i < a->camera_count; i++) {
        const km_camera *x = &a->cameras[i], *y = &b->cameras[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->width, y->width);
        assert_int_equal(x->height, y->height);
        assert_int_equal(x->has_pose, y->has_pose);
        const double tx[3] = {x->t.x, x->t.y, x->t.z}, ty[3] = {y->t.x, y->t.y, y->t.z};
        assert_same_doubles(x->K, y->K, 9, bits);
        assert_same_doubles(x->R.m, y->R.m, 9, bits);
        assert_same_doubles(tx, ty, 3, bits);
        assert_same_doubles(x->dist, y->dist, 5, bits);
    }
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    km_rig rig, back;
    make_rig(&rig);
    char path[256];
    temp_path(path, sizeof path, "roundtrip");
    assert_int_equal(km_rig_save(path, &rig, "rms_reprojection_error_px: 0.31\n"), KM_OK);
    assert_int_equal(km_rig_load(path, &back), KM_OK);
    assert_same_rig(&rig, &back, true);

    /* The layout is the one of formats.md. */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "%YAML:1.0\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "---\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "rig_name: \"stage-a\"\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "camera_count: 3\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "camera_0:\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "   name: \"cam0\"\n");
    fclose(f);

    /* OpenCV's own reader sees the same numbers (by value: it reads "-0" as the integer 0). */
    km_rig cv_rig;
    assert_int_equal(km_cv_rig_read(path, &cv_rig), KM_OK);
    assert_same_rig(&rig, &cv_rig, false);
    unlink(path);
}

static void test_intrinsics_only(void **state)
{
    (void)state;
    km_rig rig, back;
    memset(&rig, 0, sizeof rig);
    rig.camera_count = 1;
    km_camera_look_at(&rig.cameras[0], "solo", 640, 480, 1.0, km_vec3_make(0, 0, 0),
                      km_vec3_make(0, 0, 1));
    rig.cameras[0].has_pose = false;
    rig.cameras[0].R = km_mat3_identity();
    rig.cameras[0].t = km_vec3_make(0, 0, 0);
    rig.cameras[0].dist[0] = -0.1;
    char path[256];
    temp_path(path, sizeof path, "intrinsics");
    assert_int_equal(km_rig_save(path, &rig, NULL), KM_OK);
    assert_int_equal(km_rig_load(path, &back), KM_OK);
    assert_false(back.cameras[0].has_pose);
    assert_same_rig(&rig, &back, true);
    km_rig cv_rig;
    assert_int_equal(km_cv_rig_read(path, &cv_rig), KM_OK);
    assert_same_rig(&rig, &cv_rig, false);
    unlink(path);

    /* A multi-camera rig needs every pose. */
    make_rig(&rig);
    rig.cameras[1].has_pose = false;
    assert_int_equal(km_rig_save(path, &rig, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(access(path, F_OK), -1);
}

/* A file in the block style cv::FileStorage writes (as in OpenCV's calibration sample
 * output): no names, no rig_name, distortion as a 5x1 column, numbers in %.16e. */
static const char opencv_written[] =
    "%YAML:1.0\n"
    "---\n"
    "camera_count: 1\n"
    "camera_0:\n"
    "   image_width: 640\n"
    "   image_height: 480\n"
    "   camera_matrix: !!opencv-matrix\n"
    "      rows: 3\n"
    "      cols: 3\n"
    "      dt: d\n"
    "      data: [ 5.3591573396163199e+02, 0., 3.4228315473308373e+02, 0.,\n"
    "          5.3591573396163199e+02, 2.3557082909788173e+02, 0., 0., 1. ]\n"
    "   distortion_coefficients: !!opencv-matrix\n"
    "      rows: 5\n"
    "      cols: 1\n"
    "      dt: d\n"
    "      data: [ -2.6637260909660682e-01, -3.8588898922304653e-02,\n"
    "          1.7831947042852964e-03, -2.8122100441115472e-04,\n"
    "          2.3839153080878486e-01 ]\n"
    "   rotation: !!opencv-matrix\n"
    "      rows: 3\n"
    "      cols: 3\n"
    "      dt: d\n"
    "      data: [ 1., 0., 0., 0., 1., 0., 0., 0., 1. ]\n"
    "   translation: !!opencv-matrix\n"
    "      rows: 3\n"
    "      cols: 1\n"
    "      dt: d\n"
    "      data: [ 0., 0., 0. ]\n"
    "rms_reprojection_error_px: 3.9259098975581364e-01\n";

static void test_opencv_written_file(void **state)
{
    (void)state;
    km_rig rig, cv_rig;
    assert_int_equal(km_rig_parse(opencv_written, strlen(opencv_written), "cv.yml", &rig), KM_OK);
    assert_int_equal(rig.camera_count, 1);
    assert_string_equal(rig.name, "");
    assert_string_equal(rig.cameras[0].name, "cam0");
    assert_true(rig.cameras[0].K[0] == 5.3591573396163199e+02);
    assert_true(rig.cameras[0].K[5] == 2.3557082909788173e+02);
    assert_true(rig.cameras[0].dist[4] == 2.3839153080878486e-01);
    assert_true(rig.cameras[0].has_pose);

    char path[256];
    temp_path(path, sizeof path, "opencv");
    write_text(path, opencv_written);
    assert_int_equal(km_cv_rig_read(path, &cv_rig), KM_OK);
    assert_same_rig(&rig, &cv_rig, false);
    unlink(path);
}

static void test_distortion_sizes(void **state)
{
    (void)state;
    const char *head = "camera_count: 1\n"
                       "camera_0:\n"
                       "   image_width: 640\n"
                       "   image_height: 480\n"
                       "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [500, "
                       "0, 320, 0, 500, 240, 0, 0, 1]}\n";
    char text[1024];
    km_rig rig;
    /* 1x4: k3 = 0 */
    snprintf(text, sizeof text, "%s   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 4, "
             "dt: d, data: [0.1, 0.2, 0.3, 0.4]}\n", head);
    assert_int_equal(km_rig_parse(text, strlen(text), "d4.yaml", &rig), KM_OK);
    assert_true(rig.cameras[0].dist[3] == 0.4 && rig.cameras[0].dist[4] == 0.0);
    assert_false(rig.cameras[0].has_pose);
    /* 1x8 with zero rational terms: the first five */
    snprintf(text, sizeof text, "%s   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 8, "
             "dt: d, data: [0.1, 0.2, 0.3, 0.4, 0.5, 0, 0, 0]}\n", head);
    assert_int_equal(km_rig_parse(text, strlen(text), "d8.yaml", &rig), KM_OK);
    assert_true(rig.cameras[0].dist[4] == 0.5);
    /* 1x8 with a rational term we do not model: refused */
    snprintf(text, sizeof text, "%s   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 8, "
             "dt: d, data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.01, 0, 0]}\n", head);
    assert_int_equal(km_rig_parse(text, strlen(text), "d8.yaml", &rig), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "d8.yaml:6: camera_0.distortion_coefficients:"));
    /* 1x6: not an OpenCV size */
    snprintf(text, sizeof text, "%s   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 6, "
             "dt: d, data: [0.1, 0.2, 0.3, 0.4, 0.5, 0]}\n", head);
    assert_int_equal(km_rig_parse(text, strlen(text), "d6.yaml", &rig), KM_ERR_PARSE);
}

/* A valid two-camera rig, one line per entry; the malformed cases replace one line. */
static const char *const base_lines[] = {
    /*  1 */ "%YAML:1.0",
    /*  2 */ "---",
    /*  3 */ "rig_name: \"test\"",
    /*  4 */ "camera_count: 2",
    /*  5 */ "camera_0:",
    /*  6 */ "   name: \"a\"",
    /*  7 */ "   image_width: 640",
    /*  8 */ "   image_height: 480",
    /*  9 */ "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]}",
    /* 10 */ "   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, dt: d, data: [-0.2, 0.05, 0.001, -0.001, 0]}",
    /* 11 */ "   rotation: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}",
    /* 12 */ "   translation: !!opencv-matrix {rows: 3, cols: 1, dt: d, data: [0, 0, 3]}",
    /* 13 */ "camera_1:",
    /* 14 */ "   name: \"b\"",
    /* 15 */ "   image_width: 640",
    /* 16 */ "   image_height: 480",
    /* 17 */ "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]}",
    /* 18 */ "   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, dt: d, data: [-0.2, 0.05, 0.001, -0.001, 0]}",
    /* 19 */ "   rotation: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [0, 0, -1, 0, 1, 0, 1, 0, 0]}",
    /* 20 */ "   translation: !!opencv-matrix {rows: 3, cols: 1, dt: d, data: [0, 0, 3]}",
};
#define BASE_LINE_COUNT (sizeof base_lines / sizeof base_lines[0])

/* The base text with line `line` (1-based; 0 = none) replaced by `with` (NULL = deleted,
 * which keeps the later lines' numbers by leaving an empty line). */
static size_t build(char *out, size_t size, int line, const char *with)
{
    size_t used = 0;
    for (size_t i = 0; i < BASE_LINE_COUNT; i++) {
        const char *s = ((int)i + 1 == line) ? (with != NULL ? with : "") : base_lines[i];
        int n = snprintf(out + used, size - used, "%s\n", s);
        assert_true(n > 0 && (size_t)n < size - used);
        used += (size_t)n;
    }
    return used;
}

static void test_base_is_valid(void **state)
{
    (void)state;
    char text[4096];
    size_t n = build(text, sizeof text, 0, NULL);
    km_rig rig;
    assert_int_equal(km_rig_parse(text, n, "ok.yaml", &rig), KM_OK);
    assert_int_equal(rig.camera_count, 2);
    assert_string_equal(rig.name, "test");
    assert_string_equal(rig.cameras[1].name, "b");
    assert_true(rig.cameras[1].R.m[2] == -1.0);
    assert_true(rig.cameras[1].t.z == 3.0);
    assert_true(rig.cameras[0].dist[0] == -0.2);
}

struct bad_case {
    int line;           /* base line replaced */
    const char *with;   /* NULL: deleted */
    int error_line;     /* expected in "bad.yaml:<line>:" */
    const char *says;   /* expected in the message */
};

static void test_malformed(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        /* missing keys: reported at the section that lacks them */
        {16, NULL, 14, "camera_1.image_height: not found"},
        {4, NULL, 3, "camera_count: not found"},
        {17, NULL, 14, "camera_1.camera_matrix: not found"},
        {12, NULL, 6, "translation: not found"},
        /* wrong matrix sizes / contents */
        {9, "   camera_matrix: !!opencv-matrix {rows: 2, cols: 3, dt: d, data: [1, 0, 0, 0, 1, 0]}",
         9, "camera_0.camera_matrix: expected a 3x3 matrix, got 2x3"},
        {9, "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [1, 0, 0, 0, 1, 0, 0, 0]}",
         9, "rows x cols is 3x3 = 9 but data holds 8"},
        {9, "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [500, 0, 319.5, 0, 500, 239.5, 0, 0, 2]}",
         9, "camera_0.camera_matrix: expected [fx 0 cx; 0 fy cy; 0 0 1]"},
        {9, "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [-500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]}",
         9, "focal lengths must be > 0"},
        {9, "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: u, data: [500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]}",
         9, "camera_0.camera_matrix.dt: expected 'd' or 'f'"},
        {9, "   camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [500, 0, x, 0, 500, 239.5, 0, 0, 1]}",
         9, "camera_0.camera_matrix.data.2: expected a number"},
        {9, "   camera_matrix: [500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]",
         9, "expected an !!opencv-matrix mapping"},
        {18, "   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 3, dt: d, data: [1, 2, 3]}",
         18, "camera_1.distortion_coefficients: expected a 1x5 vector"},
        {20, "   translation: !!opencv-matrix {rows: 2, cols: 1, dt: d, data: [0, 3]}",
         20, "camera_1.translation: expected a 3x1 vector, got 2x1"},
        /* rotations */
        {19, "   rotation: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [0, 0, -1, 0, 1.01, 0, 1, 0, 0]}",
         19, "camera_1.rotation: not orthonormal"},
        {19, "   rotation: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [0, 0, 1, 0, 1, 0, 1, 0, 0]}",
         19, "camera_1.rotation: a reflection"},
        /* sizes */
        {7, "   image_width: 0", 7, "camera_0.image_width: expected an integer in [1, "},
        {8, "   image_height: -480", 8, "camera_0.image_height: expected an integer"},
        /* camera_count against the sections */
        {4, "camera_count: 3", 4, "camera_2: not found (camera_count is 3)"},
        {4, "camera_count: 1", 14, "camera_1: beyond camera_count (1)"},
        {4, "camera_count: 0", 4, "camera_count: expected an integer in [1, 64]"},
        {4, "camera_count: 65", 4, "camera_count: expected an integer in [1, 64]"},
        /* typos, names, syntax */
        {11, "   rotaton: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}",
         11, "did you mean 'rotation'"},
        {14, "   name: \"b\\\"q\"", 14, "camera_1.name: names may not contain"},
        {10, "   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, dt: d, data: [-0.2, 0.05",
         11, "bad.yaml:"},
        {15, "  image_width: 640", 15, "bad.yaml:"},
    };
    char text[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *c = &cases[i];
        size_t n = build(text, sizeof text, c->line, c->with);
        km_rig rig;
        memset(&rig, 0x5a, sizeof rig);
        km_status st = km_rig_parse(text, n, "bad.yaml", &rig);
        char want_prefix[64];
        snprintf(want_prefix, sizeof want_prefix, "bad.yaml:%d:", c->error_line);
        const char *msg = km_last_error();
        if (st != KM_ERR_PARSE || strstr(msg, want_prefix) != msg || strstr(msg, c->says) == NULL)
            fail_msg("case %zu (line %d): status %s, message '%s'; wanted '%s ... %s'", i,
                     c->line, km_status_name(st), msg, want_prefix, c->says);
        /* A failed load leaves no half-filled rig behind. */
        assert_int_equal(rig.camera_count, 0);
    }
}

static void test_rotation_rounding_is_repaired(void **state)
{
    (void)state;
    /* A rotation written with 9 significant digits (error ~1e-9) loads as an exact one. */
    char text[4096];
    size_t n = build(text, sizeof text, 19,
                     "   rotation: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: "
                     "[0.707106781, 0, -0.707106781, 0, 1, 0, 0.707106781, 0, 0.707106781]}");
    km_rig rig;
    assert_int_equal(km_rig_parse(text, n, "round.yaml", &rig), KM_OK);
    const km_mat3 R = rig.cameras[1].R;
    km_mat3 RRt = km_mat3_mul(R, km_mat3_transpose(R));
    for (int i = 0; i < 9; i++)
        assert_true(fabs(RRt.m[i] - (i % 4 == 0 ? 1.0 : 0.0)) < 1e-15);
    assert_true(fabs(R.m[0] - sqrt(0.5)) < 1e-15);
}

static void test_io_errors(void **state)
{
    (void)state;
    km_rig rig;
    assert_int_not_equal(km_rig_load("/nonexistent/dir/rig.yaml", &rig), KM_OK);
    assert_non_null(strstr(km_last_error(), "/nonexistent/dir/rig.yaml"));
    assert_int_not_equal(km_cv_rig_read("/nonexistent/dir/rig.yaml", &rig), KM_OK);
    make_rig(&rig);
    assert_int_equal(km_rig_save("/nonexistent/dir/rig.yaml", &rig, NULL), KM_ERR_IO);
    rig.cameras[0].K[2] = NAN;
    assert_int_equal(km_rig_save("/tmp/never-written.yaml", &rig, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_rig_parse(NULL, 0, "empty.yaml", &rig), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "camera_count: not found"));

    /* cv::FileStorage on a malformed file reports, never throws. */
    char path[256];
    temp_path(path, sizeof path, "broken");
    write_text(path, "%YAML:1.0\n---\ncamera_count: [1, 2\n");
    assert_int_not_equal(km_cv_rig_read(path, &rig), KM_OK);
    write_text(path, "%YAML:1.0\n---\ncamera_count: 2\ncamera_0:\n   image_width: 1\n");
    assert_int_equal(km_cv_rig_read(path, &rig), KM_ERR_PARSE);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_intrinsics_only),
        cmocka_unit_test(test_opencv_written_file),
        cmocka_unit_test(test_distortion_sizes),
        cmocka_unit_test(test_base_is_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_rotation_rounding_is_repaired),
        cmocka_unit_test(test_io_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
