/* IK: joint centres and rotations recovered from markers of an independent forward
 * kinematics (random poses, a smooth motion with noise and missing markers), joint limits
 * respected, no allocation per frame, and the real Plug-in Gait take (test1.c3d): marker
 * residuals and the consistency of the solved joint centres (bone-length spread). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "skeleton_fixture.h"

/* allocation counter (-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc) */
#include "../common/alloc_count.h"

static km_subject default_subject(void)
{
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject s;
    assert_int_equal(km_subject_default(&set, 1.80, "test", &s), KM_OK);
    return s;
}

static void frame_from(const km_subject *s, const km_vec3 *markers, km_body_frame *f)
{
    f->count = s->markers.count;
    for (int i = 0; i < f->count; i++) {
        f->pos_m[i] = markers[i];
        f->valid[i] = true;
    }
}

static double max_joint_error(const km_skeleton_pose *pose, const km_vec3 *joints)
{
    double e = 0;
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        double d = km_vec3_dist(pose->joint_pos_m[j], joints[j]);
        if (d > e)
            e = d;
    }
    return e;
}

static void test_model(void **state)
{
    (void)state;
    assert_string_equal(km_joint_name(KM_JOINT_HIPS), "Hips");
    assert_string_equal(km_joint_name(KM_JOINT_LEFT_UPPER_ARM), "LeftUpperArm");
    assert_string_equal(km_joint_name(KM_JOINT_RIGHT_TOES), "RightToes");
    assert_string_equal(km_joint_name(KM_JOINT_COUNT), "");
    assert_int_equal(km_joint_from_name("LeftLowerLeg"), KM_JOINT_LEFT_LOWER_LEG);
    assert_int_equal(km_joint_from_name("Pelvis"), -1);
    assert_int_equal(km_joint_parent(KM_JOINT_HIPS), -1);
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        assert_true(km_joint_parent(j) >= 0 && km_joint_parent(j) < j);
    /* mirrored bones */
    km_vec3 l = km_joint_default_offset(KM_JOINT_LEFT_LOWER_ARM);
    km_vec3 r = km_joint_default_offset(KM_JOINT_RIGHT_LOWER_ARM);
    assert_true(fabs(l.x + r.x) < 1e-12 && l.y == r.y && l.z == r.z);
}

/* Single frames from a cold start (T-pose, root from the pelvis markers, arm restarts):
 * random poses within half of every range, any heading. */
static void test_random_poses_cold(void **state)
{
    (void)state;
    km_subject s = default_subject();
    km_ik *ik = km_ik_create(&s, NULL, NULL);
    assert_non_null(ik);
    unsigned seed = 11;
    int good = 0, n = 30;
    double worst = 0;
    for (int t = 0; t < n; t++) {
        fixture_pose p;
        fixture_random_pose(&seed, 0.5, &p);
        km_vec3 joints[KM_JOINT_COUNT], markers[KM_SKELETON_MAX_MARKERS];
        fixture_fk(&s, &p, joints, NULL, markers);
        km_body_frame f;
        frame_from(&s, markers, &f);
        km_ik_reset(ik);
        km_skeleton_pose pose;
        assert_int_equal(km_ik_solve(ik, &f, &pose), KM_OK);
        /* a second pass warm (what the tracker does on the next frame) */
        assert_int_equal(km_ik_solve(ik, &f, &pose), KM_OK);
        double e = max_joint_error(&pose, joints);
        if (e < 0.002)
            good++;
        if (e > worst)
            worst = e;
    }
    print_message("cold start on %d random poses: %d with every joint within 2 mm (worst %.1f mm)\n",
                  n, good, worst * 1e3);
    assert_true(good >= n * 9 / 10);
    km_ik_destroy(ik);
}

/* A smooth motion (poses blended over 40 frames each), 0.5 mm noise, 4 markers missing per
 * frame: warm-started IK follows it. */
static void test_motion_noise_missing(void **state)
{
    (void)state;
    km_subject s = default_subject();
    km_ik *ik = km_ik_create(&s, NULL, NULL);
    unsigned seed = 5;
    fixture_pose a, b, p;
    fixture_random_pose(&seed, 0.5, &a);
    double sum = 0, worst = 0;
    int frames = 0;
    long allocs_before = alloc_count_get();
    for (int seg = 0; seg < 6; seg++) {
        fixture_random_pose(&seed, 0.5, &b);
        b.root_pos = km_vec3_add(a.root_pos, km_vec3_make(0.2, 0, 0.1));
        b.q[0] = km_quat_mul(km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 0.4), a.q[0]);
        for (int k = 0; k < 40; k++) {
            fixture_blend(&a, &b, k / 40.0, &p);
            km_vec3 joints[KM_JOINT_COUNT], markers[KM_SKELETON_MAX_MARKERS];
            fixture_fk(&s, &p, joints, NULL, markers);
            km_body_frame f;
            frame_from(&s, markers, &f);
            for (int i = 0; i < f.count; i++)
                f.pos_m[i] = km_vec3_add(f.pos_m[i],
                                         km_vec3_make(fixture_uniform(&seed, -5e-4, 5e-4),
                                                      fixture_uniform(&seed, -5e-4, 5e-4),
                                                      fixture_uniform(&seed, -5e-4, 5e-4)));
            for (int m = 0; m < 4; m++)
                f.valid[(int)fixture_uniform(&seed, 0, f.count - 0.01)] = false;
            km_skeleton_pose pose;
            assert_int_equal(km_ik_solve(ik, &f, &pose), KM_OK);
            if (seg == 0 && k < 2)
                continue; /* cold start */
            double e = 0;
            for (int j = 0; j < KM_JOINT_COUNT; j++) {
                if (j == KM_JOINT_LEFT_TOES || j == KM_JOINT_RIGHT_TOES)
                    continue; /* no marker beyond them: fixed joint, follows the foot */
                e += km_vec3_dist(pose.joint_pos_m[j], joints[j]);
            }
            e /= KM_JOINT_COUNT - 2;
            sum += e;
            frames++;
            if (e > worst)
                worst = e;
        }
        a = b;
    }
    long allocs = alloc_count_get() - allocs_before;
    print_message("motion: mean per-joint error %.2f mm, worst frame %.2f mm over %d frames; "
                  "%ld allocations\n", sum / frames * 1e3, worst * 1e3, frames, allocs);
    assert_true(sum / frames < 0.003);
    assert_true(worst < 0.015);
    assert_int_equal(allocs, 0);
    km_ik_destroy(ik);
}

/* Markers of a knee bent backwards beyond its range: the solved knee stops at the limit. */
static void test_limits(void **state)
{
    (void)state;
    km_subject s = default_subject();
    km_ik *ik = km_ik_create(&s, NULL, NULL);
    fixture_pose p;
    memset(&p, 0, sizeof p);
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        p.q[j] = km_quat_identity();
    p.root_pos = km_vec3_make(0, 1, 0);
    p.angle[KM_JOINT_LEFT_LOWER_LEG][0] = -40.0 * M_PI / 180; /* range -10..160 */
    km_vec3 markers[KM_SKELETON_MAX_MARKERS];
    fixture_fk(&s, &p, NULL, NULL, markers);
    km_body_frame f;
    frame_from(&s, markers, &f);
    km_skeleton_pose pose;
    assert_int_equal(km_ik_solve(ik, &f, &pose), KM_OK);
    km_quat q = pose.local_rot[KM_JOINT_LEFT_LOWER_LEG];
    double angle = 2 * atan2(q.x, q.w);
    print_message("knee asked -40 deg, solved %.1f deg (limit -10)\n", angle * 180 / M_PI);
    assert_true(angle > -10.5 * M_PI / 180 && angle < -9 * M_PI / 180);
    assert_true(pose.residual_m > 0.005); /* the markers could not be reached */
    /* without limits it reaches them */
    km_ik_config cfg = km_ik_config_default();
    cfg.limits = false;
    km_ik *free_ik = km_ik_create(&s, &cfg, NULL);
    assert_int_equal(km_ik_solve(free_ik, &f, &pose), KM_OK);
    assert_true(pose.residual_m < 0.001);
    km_ik_destroy(free_ik);
    km_ik_destroy(ik);
}

static void test_errors(void **state)
{
    (void)state;
    km_subject s = default_subject();
    km_status st;
    assert_null(km_ik_create(NULL, NULL, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    km_subject bad = s;
    bad.markers.markers[3].segment = 99;
    assert_null(km_ik_create(&bad, NULL, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    km_ik *ik = km_ik_create(&s, NULL, &st);
    km_body_frame f;
    memset(&f, 0, sizeof f);
    f.count = s.markers.count;
    f.valid[0] = f.valid[1] = true;
    km_skeleton_pose pose;
    assert_int_equal(km_ik_solve(ik, &f, &pose), KM_ERR_NUMERIC);
    assert_false(pose.tracked);
    f.count = 3;
    assert_int_equal(km_ik_solve(ik, &f, &pose), KM_ERR_INVALID_ARGUMENT);
    km_ik_destroy(ik);
    km_ik_destroy(NULL);
}

/* skeleton.csv rows: one per joint of each tracked pose, formats.md columns. */
static void test_csv(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    km_skeleton_pose poses[2];
    memset(poses, 0, sizeof poses);
    poses[0].tracked = true;
    poses[0].person = 0;
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        poses[0].joint_rot[j] = km_quat_identity();
    poses[0].joint_pos_m[KM_JOINT_HEAD] = km_vec3_make(0.1, 1.6, -0.2);
    poses[1].tracked = false;
    km_skeleton_csv_write_header(f);
    km_skeleton_csv_write(f, 7, 123, poses, 2);
    fclose(f);
    assert_true(!strncmp(buf, "frame,time_ns,person,joint,x,y,z,qx,qy,qz,qw\n", 45));
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    assert_int_equal(lines, 1 + KM_JOINT_COUNT);
    assert_non_null(strstr(buf, "7,123,0,Head,0.100000,1.600000,-0.200000,0.0000000,0.0000000,"
                                "0.0000000,1.0000000\n"));
    free(buf);
}

/* BVH export of a solved motion reads back (km_bvh_parse) to the same joint centres. */
static void test_bvh_export(void **state)
{
    (void)state;
    km_subject s = default_subject();
    km_ik *ik = km_ik_create(&s, NULL, NULL);
    unsigned seed = 8;
    fixture_pose a, b, p;
    fixture_random_pose(&seed, 0.5, &a);
    fixture_random_pose(&seed, 0.5, &b);
    enum { N = 20 };
    km_skeleton_pose poses[N];
    for (int k = 0; k < N; k++) {
        fixture_blend(&a, &b, k / (double)N, &p);
        km_vec3 markers[KM_SKELETON_MAX_MARKERS];
        fixture_fk(&s, &p, NULL, NULL, markers);
        km_body_frame f;
        frame_from(&s, markers, &f);
        assert_int_equal(km_ik_solve(ik, &f, &poses[k]), KM_OK);
    }
    poses[5].tracked = false; /* repeats frame 4 */
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    assert_int_equal(km_skeleton_bvh_write(mf, &s, poses, N, 1.0 / 120), KM_OK);
    fclose(mf);
    km_status st;
    km_bvh *bvh = km_bvh_parse(buf, len, "solved.bvh", &st);
    if (!bvh)
        print_message("%s\n", km_last_error());
    assert_non_null(bvh);
    assert_int_equal(km_bvh_frame_count(bvh), N);
    assert_true(fabs(km_bvh_frame_time_s(bvh) - 1.0 / 120) < 1e-9);
    km_vec3 pos[64];
    km_mat3 rot[64];
    double worst = 0, worst_rot = 0;
    for (int k = 0; k < N; k++) {
        assert_int_equal(km_bvh_pose(bvh, k, 1.0, pos, rot), KM_OK);
        const km_skeleton_pose *ref = &poses[k == 5 ? 4 : k];
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            int bj = km_bvh_find_joint(bvh, km_joint_name(j));
            assert_true(bj >= 0);
            double d = km_vec3_dist(pos[bj], ref->joint_pos_m[j]);
            if (d > worst)
                worst = d;
            double ang = km_quat_angle_between(km_quat_from_mat3(rot[bj]), ref->joint_rot[j]);
            if (ang > worst_rot)
                worst_rot = ang;
        }
    }
    print_message("BVH export read back: worst joint %.4f mm, worst rotation %.4f deg\n",
                  worst * 1e3, worst_rot * 180 / M_PI);
    assert_true(worst < 1e-4);
    assert_true(worst_rot < 1e-3);
    km_bvh_destroy(bvh);
    free(buf);
    km_ik_destroy(ik);
}

/* Real data: calibrate on the first 300 frames of the Plug-in Gait take, solve all 721. */
static void test_real_take(void **state)
{
    (void)state;
    char path[512];
    if (!fixture_data_path(path, sizeof path,
                           "c3d/c3d_org/sample00_nexgen_ergonomics/test1.c3d")) {
        print_message("real data c3d/.../test1.c3d absent (set KINEMA_DATA): skipped\n");
        skip();
    }
    km_c3d c;
    assert_int_equal(km_c3d_read(path, &c), KM_OK);
    km_body_markerset def, set;
    km_body_markerset_default(&def);
    assert_int_equal(km_body_markerset_match_c3d(&def, &c, &set), KM_OK);
    assert_int_equal(set.count, 38); /* no RBAK in this file; LFRA/RFRA for LFRM/RFRM */
    km_body_frame *frames = malloc(sizeof *frames * (size_t)c.frame_count);
    for (int f = 0; f < c.frame_count; f++)
        assert_int_equal(km_body_frame_from_c3d(&c, f, &set, NULL, &frames[f]), KM_OK);
    km_subject s;
    km_subject_calibration_report rep;
    assert_int_equal(km_subject_calibrate(&set, frames, 300, NULL, "test1", &s, &rep), KM_OK);
    km_ik *ik = km_ik_create(&s, NULL, NULL);
    /* joint centres over the take: bone lengths, their spread */
    double sum_len[KM_JOINT_COUNT] = {0}, sum_len2[KM_JOINT_COUNT] = {0};
    double res2 = 0, worst = 0;
    int n = 0;
    for (int f = 0; f < c.frame_count; f++) {
        km_skeleton_pose pose;
        assert_int_equal(km_ik_solve(ik, &frames[f], &pose), KM_OK);
        res2 += pose.residual_m * pose.residual_m;
        if (pose.residual_m > worst)
            worst = pose.residual_m;
        for (int j = 1; j < KM_JOINT_COUNT; j++) {
            double l = km_vec3_dist(pose.joint_pos_m[j], pose.joint_pos_m[km_joint_parent(j)]);
            sum_len[j] += l;
            sum_len2[j] += l * l;
        }
        n++;
    }
    double max_sd = 0;
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        double mean = sum_len[j] / n;
        double sd = sqrt(fmax(0, sum_len2[j] / n - mean * mean));
        if (sd > max_sd)
            max_sd = sd;
    }
    print_message("test1.c3d: calibration %.1f -> %.2f mm (height %.2f m); IK over %d frames: "
                  "RMS marker residual %.2f mm, worst frame %.2f mm; bone-length SD max %.4f mm\n",
                  rep.rms_before_m * 1e3, rep.rms_after_m * 1e3, rep.height_m, n,
                  sqrt(res2 / n) * 1e3, worst * 1e3, max_sd * 1e3);
    assert_true(sqrt(res2 / n) < 0.003);
    assert_true(worst < 0.008);
    assert_true(max_sd < 0.005);
    km_ik_destroy(ik);
    free(frames);
    km_c3d_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_random_poses_cold),
        cmocka_unit_test(test_motion_noise_missing),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_bvh_export),
        cmocka_unit_test(test_real_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
