/* Marker sets and subjects: the default Plug-in Gait set, marker set and subject files (round
 * trips, malformed input with file:line), C3D label matching, and calibration: bones and
 * marker offsets of a known synthetic person recovered from a range-of-motion take. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include "skeleton_fixture.h"

static void test_default_set(void **state)
{
    (void)state;
    km_body_markerset set;
    km_body_markerset_default(&set);
    assert_int_equal(set.count, 39);
    assert_int_equal(km_body_markerset_validate(&set), KM_OK);
    static const char *const PIG[] = {
        "LFHD", "RFHD", "LBHD", "RBHD", "C7",   "T10",  "CLAV", "STRN", "RBAK", "LSHO",
        "LUPA", "LELB", "LFRM", "LWRA", "LWRB", "LFIN", "RSHO", "RUPA", "RELB", "RFRM",
        "RWRA", "RWRB", "RFIN", "LASI", "RASI", "LPSI", "RPSI", "LTHI", "LKNE", "LTIB",
        "LANK", "LHEE", "LTOE", "RTHI", "RKNE", "RTIB", "RANK", "RHEE", "RTOE"};
    for (size_t i = 0; i < sizeof PIG / sizeof PIG[0]; i++)
        assert_true(km_body_markerset_find(&set, PIG[i]) >= 0);
    int l = km_body_markerset_find(&set, "LKNE"), r = km_body_markerset_find(&set, "RKNE");
    assert_int_equal(set.markers[l].segment, KM_JOINT_LEFT_UPPER_LEG);
    assert_int_equal(set.markers[r].segment, KM_JOINT_RIGHT_UPPER_LEG);
    assert_true(set.markers[l].offset_m.x == -set.markers[r].offset_m.x);
    assert_int_equal(km_body_markerset_find(&set, "XXXX"), -1);
}

static void test_markerset_file(void **state)
{
    (void)state;
    km_body_markerset set, back;
    km_body_markerset_default(&set);
    char path[] = "/tmp/kinema_test_markerset_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(km_body_markerset_save(path, &set), KM_OK);
    assert_int_equal(km_body_markerset_load(path, &back), KM_OK);
    remove(path);
    assert_string_equal(back.name, set.name);
    assert_int_equal(back.count, set.count);
    for (int i = 0; i < set.count; i++) {
        assert_string_equal(back.markers[i].label, set.markers[i].label);
        assert_int_equal(back.markers[i].segment, set.markers[i].segment);
        assert_true(km_vec3_dist(back.markers[i].offset_m, set.markers[i].offset_m) == 0.0);
    }
    static const char TEXT[] = "marker_set: small\n"
                               "markers:\n"
                               "  - {label: A, segment: Hips, offset: [0.1, 0, 0]}\n"
                               "  - {label: B, segment: Hips, offset: [0, 0.1, 0], weight: 2}\n"
                               "  - {label: LMT5, segment: LeftFoot}\n";
    assert_int_equal(km_body_markerset_parse(TEXT, strlen(TEXT), "s.yaml", &back), KM_OK);
    assert_int_equal(back.count, 3);
    assert_true(back.markers[1].weight == 2.0);
    assert_int_equal(back.markers[2].segment, KM_JOINT_LEFT_FOOT);
    assert_true(km_vec3_norm(back.markers[2].offset_m) == 0.0);
}

static void expect_parse_error(const char *text, const char *needle)
{
    km_body_markerset s;
    km_status st = km_body_markerset_parse(text, strlen(text), "bad.yaml", &s);
    assert_int_equal(st, KM_ERR_PARSE);
    if (!strstr(km_last_error(), "bad.yaml:") || !strstr(km_last_error(), needle)) {
        print_message("message: %s (wanted %s)\n", km_last_error(), needle);
        fail();
    }
}

static void test_markerset_malformed(void **state)
{
    (void)state;
    expect_parse_error("markers: 3\n", "list of markers");
    expect_parse_error("marker_set: x\n", "missing 'markers'");
    expect_parse_error("markers:\n  - {label: A, segment: Hips}\n", "at least 3");
    expect_parse_error("markers:\n  - {label: A, segment: Pelvis}\n", "unknown segment");
    expect_parse_error("markers:\n  - {segment: Hips}\n", "missing 'label'");
    expect_parse_error("markers:\n  - {label: A}\n", "missing 'segment'");
    expect_parse_error("markers:\n  - {label: A, segment: Hips, offset: [1, 2]}\n", "[x, y, z]");
    expect_parse_error("markers:\n  - {label: A, segment: Hips, colour: red}\n", "unknown key");
    expect_parse_error("markers:\n  - {label: A, segment: Hips}\n  - {label: A, segment: Hips}\n",
                       "duplicate");
    expect_parse_error("markers:\n  - {label: 'A B', segment: Hips}\n", "space");
    expect_parse_error("markers:\n  - {label: A, segment: Hips, weight: -1}\n", "weight");
    expect_parse_error("markers:\n  - {label: A, segment: Hips, offset: [5, 0, 0]}\n", "2 m");
    expect_parse_error("markers: [\n", "");
}

static void test_subject_file(void **state)
{
    (void)state;
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject s, back;
    assert_int_equal(km_subject_default(&set, 1.6, "alice", &s), KM_OK);
    /* scaled template */
    assert_true(fabs(km_vec3_norm(s.bone_m[KM_JOINT_LEFT_LOWER_LEG]) -
                     0.42 * 1.6 / 1.75) < 1e-12);
    assert_int_equal(km_subject_default(&set, 3.0, "giant", &back), KM_ERR_INVALID_ARGUMENT);
    char path[] = "/tmp/kinema_test_subject_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(km_subject_save(path, &s), KM_OK);
    assert_int_equal(km_subject_load(path, &back), KM_OK);
    remove(path);
    assert_string_equal(back.name, "alice");
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        assert_true(km_vec3_dist(back.bone_m[j], s.bone_m[j]) == 0.0);
    assert_int_equal(back.markers.count, 39);
    /* malformed */
    static const char *const BAD[][2] = {
        {"subject: x\nbones: 3\nmarkers: []\n", "bones: expected a mapping"},
        {"subject: x\nbones:\n  Pelvis: [0, 0, 0]\n", "not a joint"},
        {"subject: x\nbones:\n  Spine: [0, 0]\n", "[x, y, z]"},
        {"subject: x\nbones:\n  Spine: [0, 0.1, 0]\nmarkers: []\n", "missing Chest"},
        {"subject: x\nheight: 2\n", "unknown key"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        assert_int_equal(km_subject_parse(BAD[i][0], strlen(BAD[i][0]), "bad.yaml", &back),
                         KM_ERR_PARSE);
        if (!strstr(km_last_error(), BAD[i][1])) {
            print_message("message: %s (wanted %s)\n", km_last_error(), BAD[i][1]);
            fail();
        }
    }
    assert_int_equal(km_subject_load("/nonexistent/s.yaml", &back), KM_ERR_IO);
}

/* A person whose proportions and marker placement differ from the template (bones scaled
 * 0.9-1.1 per bone, markers moved by up to 15 mm) performs a range-of-motion take; the
 * calibration recovers joint centres within a few millimetres. */
static void test_calibration_synthetic(void **state)
{
    (void)state;
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject truth;
    assert_int_equal(km_subject_default(&set, 1.68, "truth", &truth), KM_OK);
    unsigned seed = 42;
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        truth.bone_m[j] = km_vec3_scale(truth.bone_m[j], fixture_uniform(&seed, 0.9, 1.1));
    /* keep left/right symmetric bones (the template is) */
    for (int i = 0; i < truth.markers.count; i++)
        truth.markers.markers[i].offset_m = km_vec3_add(
            truth.markers.markers[i].offset_m,
            km_vec3_make(fixture_uniform(&seed, -0.015, 0.015), fixture_uniform(&seed, -0.015, 0.015),
                         fixture_uniform(&seed, -0.015, 0.015)));
    enum { N = 240 };
    km_body_frame *frames = malloc(sizeof *frames * N);
    fixture_pose a, b, p;
    fixture_random_pose(&seed, 0.35, &a);
    a.q[0] = km_quat_identity();
    for (int k = 0; k < N; k++) {
        if (k % 40 == 0) {
            fixture_random_pose(&seed, 0.35, &b);
            b.q[0] = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 0.3 * (k / 40));
            b.root_pos = a.root_pos;
        }
        fixture_blend(&a, &b, (k % 40) / 40.0, &p);
        if (k % 40 == 39)
            a = b;
        km_vec3 mk[KM_SKELETON_MAX_MARKERS];
        fixture_fk(&truth, &p, NULL, NULL, mk);
        frames[k].count = set.count;
        for (int i = 0; i < set.count; i++) {
            frames[k].pos_m[i] = km_vec3_add(mk[i], km_vec3_make(fixture_uniform(&seed, -3e-4, 3e-4),
                                                               fixture_uniform(&seed, -3e-4, 3e-4),
                                                               fixture_uniform(&seed, -3e-4, 3e-4)));
            frames[k].valid[i] = fixture_uniform(&seed, 0, 1) > 0.05;
        }
    }
    km_subject fitted;
    km_subject_calibration_report rep;
    assert_int_equal(km_subject_calibrate(&set, frames, N, NULL, "fitted", &fitted, &rep), KM_OK);
    /* the fitted subject tracks the take */
    km_ik *ik = km_ik_create(&fitted, NULL, NULL);
    int n = 0;
    for (int k = 0; k < N; k++) {
        km_skeleton_pose pose;
        assert_int_equal(km_ik_solve(ik, &frames[k], &pose), KM_OK);
        assert_true(pose.residual_m < 0.003);
    }
    /* bone lengths against the truth and against the scaled template */
    km_subject tmpl;
    km_subject_default(&set, rep.height_m, "t", &tmpl);
    double bone_err = 0, tmpl_err = 0;
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        if (j == KM_JOINT_LEFT_TOES || j == KM_JOINT_RIGHT_TOES)
            continue; /* no marker beyond them: the template decides */
        bone_err += fabs(km_vec3_norm(fitted.bone_m[j]) - km_vec3_norm(truth.bone_m[j]));
        tmpl_err += fabs(km_vec3_norm(tmpl.bone_m[j]) - km_vec3_norm(truth.bone_m[j]));
        n++;
    }
    print_message("calibration: height %.3f m, marker RMS %.2f -> %.2f mm; mean bone-length "
                  "error %.2f mm (scaled template %.2f mm)\n",
                  rep.height_m, rep.rms_before_m * 1e3, rep.rms_after_m * 1e3,
                  bone_err / n * 1e3, tmpl_err / n * 1e3);
    assert_true(rep.rms_after_m < 0.001);
    assert_true(bone_err / n < 0.006);
    assert_true(bone_err < tmpl_err * 0.7);
    km_ik_destroy(ik);
    free(frames);
}

static void test_match_c3d(void **state)
{
    (void)state;
    km_c3d c;
    assert_int_equal(km_c3d_alloc(&c, 5, 1), KM_OK);
    snprintf(c.labels[0], KM_C3D_LABEL_MAX, "Bob:LASI");
    snprintf(c.labels[1], KM_C3D_LABEL_MAX, "RASI");
    snprintf(c.labels[2], KM_C3D_LABEL_MAX, "LFRA");
    snprintf(c.labels[3], KM_C3D_LABEL_MAX, "LPSI");
    snprintf(c.labels[4], KM_C3D_LABEL_MAX, "EXTRA");
    for (int p = 0; p < 5; p++) {
        c.pos[p * 3 + 1] = 1000.0 * (p + 1);
        c.residual[p] = 0.0f;
    }
    snprintf(c.units, sizeof c.units, "mm");
    c.units_to_m = 0.001;
    km_body_markerset def, set;
    km_body_markerset_default(&def);
    assert_int_equal(km_body_markerset_match_c3d(&def, &c, &set), KM_OK);
    assert_int_equal(set.count, 4);
    assert_int_equal(km_body_markerset_find(&set, "LFRA"), km_body_markerset_find(&set, "LFRA"));
    assert_true(km_body_markerset_find(&set, "LFRA") >= 0);
    assert_true(km_body_markerset_find(&set, "LFRM") < 0);
    km_body_frame f;
    assert_int_equal(km_body_frame_from_c3d(&c, 0, &set, NULL, &f), KM_OK);
    int lasi = km_body_markerset_find(&set, "LASI");
    assert_true(f.valid[lasi] && fabs(f.pos_m[lasi].y - 1.0) < 1e-12);
    km_mat3 zy = km_c3d_z_up_to_y_up();
    assert_int_equal(km_body_frame_from_c3d(&c, 0, &set, &zy, &f), KM_OK);
    assert_true(fabs(f.pos_m[lasi].z + 1.0) < 1e-12);
    /* too few */
    snprintf(c.labels[1], KM_C3D_LABEL_MAX, "X");
    snprintf(c.labels[2], KM_C3D_LABEL_MAX, "Y");
    assert_int_equal(km_body_markerset_match_c3d(&def, &c, &set), KM_ERR_NOT_FOUND);
    km_c3d_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_set),
        cmocka_unit_test(test_markerset_file),
        cmocka_unit_test(test_markerset_malformed),
        cmocka_unit_test(test_subject_file),
        cmocka_unit_test(test_calibration_synthetic),
        cmocka_unit_test(test_match_c3d),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
