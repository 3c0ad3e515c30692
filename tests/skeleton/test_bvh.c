/* BVH reader, writer and forward kinematics: a hand-made file with known poses, channel
 * order, position channels, a write/read round trip, malformed inputs (each a KM_ERR_PARSE
 * naming file:line), and the real files of KINEMA_DATA (skipped when absent). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/skeleton.h"

static const char *const small_bvh =
    "HIERARCHY\n"
    "ROOT Hips\n"
    "{\n"
    "\tOFFSET 0 0 0\n"
    "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n"
    "\tJOINT Arm\n"
    "\t{\n"
    "\t\tOFFSET 1 0 0\n"
    "\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
    "\t\tEnd Site\n"
    "\t\t{\n"
    "\t\t\tOFFSET 0 1 0\n"
    "\t\t}\n"
    "\t}\n"
    "}\n"
    "MOTION\n"
    "Frames: 3\n"
    "Frame Time: 0.5\n"
    "1 2 3 0 0 0 0 0 0\n"
    "1 2 3 90 0 0 0 90 0\r\n"
    "\n"
    "0 0 0 0 90 0 90 90 0\n";

static km_bvh *parse(const char *text)
{
    km_status err;
    km_bvh *bvh = km_bvh_parse(text, strlen(text), "small.bvh", &err);
    if (!bvh)
        fprintf(stderr, "%s\n", km_last_error());
    assert_non_null(bvh);
    assert_int_equal(err, KM_OK);
    return bvh;
}

static void assert_vec(km_vec3 v, double x, double y, double z)
{
    if (fabs(v.x - x) > 1e-9 || fabs(v.y - y) > 1e-9 || fabs(v.z - z) > 1e-9)
        fail_msg("(%g %g %g) != (%g %g %g)", v.x, v.y, v.z, x, y, z);
}

static void test_structure(void **state)
{
    (void)state;
    km_bvh *bvh = parse(small_bvh);
    assert_int_equal(km_bvh_joint_count(bvh), 3);
    assert_int_equal(km_bvh_channel_count(bvh), 9);
    assert_int_equal(km_bvh_frame_count(bvh), 3);
    assert_true(km_bvh_frame_time_s(bvh) == 0.5);
    const km_bvh_joint *root = km_bvh_joint_at(bvh, 0), *arm = km_bvh_joint_at(bvh, 1),
                       *end = km_bvh_joint_at(bvh, 2);
    assert_string_equal(root->name, "Hips");
    assert_int_equal(root->parent, -1);
    assert_int_equal(root->channel_count, 6);
    assert_int_equal(root->channels[3], KM_BVH_ZROTATION);
    assert_string_equal(arm->name, "Arm");
    assert_int_equal(arm->parent, 0);
    assert_int_equal(arm->first_channel, 6);
    assert_int_equal(arm->channels[0], KM_BVH_ZROTATION);
    assert_true(end->end_site);
    assert_string_equal(end->name, "Arm_End");
    assert_int_equal(end->parent, 1);
    assert_int_equal(end->channel_count, 0);
    assert_int_equal(km_bvh_find_joint(bvh, "Arm"), 1);
    assert_int_equal(km_bvh_find_joint(bvh, "Leg"), -1);
    assert_null(km_bvh_joint_at(bvh, 3));
    assert_null(km_bvh_frame(bvh, 3));
    const double *row = km_bvh_frame(bvh, 1);
    assert_true(row[3] == 90.0 && row[7] == 90.0);
    km_bvh_destroy(bvh);
    km_bvh_destroy(NULL);
}

static void test_forward_kinematics(void **state)
{
    (void)state;
    km_bvh *bvh = parse(small_bvh);
    km_vec3 pos[3];
    km_mat3 rot[3];
    /* Frame 0: rest pose at (1,2,3). */
    assert_int_equal(km_bvh_pose(bvh, 0, 1.0, pos, rot), KM_OK);
    assert_vec(pos[0], 1, 2, 3);
    assert_vec(pos[1], 2, 2, 3);
    assert_vec(pos[2], 2, 3, 3);
    /* Frame 1: root Rz 90 (x -> y), arm Rx 90 (y -> z): arm at root + (0,1,0), its end site
     * at arm + Rz Rx (0,1,0) = arm + (0,0,1). */
    assert_int_equal(km_bvh_pose(bvh, 1, 1.0, pos, rot), KM_OK);
    assert_vec(pos[1], 1, 3, 3);
    assert_vec(pos[2], 1, 3, 4);
    /* The End Site takes its parent's orientation. */
    for (int k = 0; k < 9; k++)
        assert_true(fabs(rot[2].m[k] - rot[1].m[k]) < 1e-12);
    /* Scale: every length in metres scales. */
    assert_int_equal(km_bvh_pose(bvh, 1, 0.5, pos, NULL), KM_OK);
    assert_vec(pos[2], 0.5, 1.5, 2.0);
    /* Frame 2: root Xrotation 90; arm Z 90 then X 90 in the file order Z X Y, so
     * R_arm = Rz(90) Rx(90) takes the end site's (0,1,0) to (0,0,1) (in the order X Z it would
     * be Rx Rz (0,1,0) = (-1,0,0)), and the root's Rx(90) takes that to (0,-1,0). */
    assert_int_equal(km_bvh_pose(bvh, 2, 1.0, pos, NULL), KM_OK);
    assert_vec(pos[0], 0, 0, 0);
    assert_vec(pos[1], 1, 0, 0);           /* Rx does not move the x offset */
    /* end = arm + Rroot Rarm (0,1,0) = Rx(90) (0,0,1) = (0,-1,0) */
    assert_vec(pos[2], 1, -1, 0);
    /* Errors. */
    assert_int_equal(km_bvh_pose(bvh, 3, 1.0, pos, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_bvh_pose(bvh, 0, 0.0, pos, NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_bvh_pose(NULL, 0, 1.0, pos, NULL), KM_ERR_INVALID_ARGUMENT);
    km_bvh_destroy(bvh);
}

/* Position channels on a non-root joint replace its offset axis by axis. */
static void test_position_channels(void **state)
{
    (void)state;
    km_bvh *bvh = parse("HIERARCHY\nROOT R\n{\n OFFSET 5 5 5\n CHANNELS 0\n JOINT J\n {\n"
                        "  OFFSET 1 2 3\n  CHANNELS 2 Yposition Zrotation\n"
                        "  End Site\n  {\n   OFFSET 0 0 0\n  }\n }\n}\nMOTION\nFrames: 1\n"
                        "Frame Time: 0.01\n7 0\n");
    km_vec3 pos[3];
    assert_int_equal(km_bvh_pose(bvh, 0, 1.0, pos, NULL), KM_OK);
    assert_vec(pos[0], 5, 5, 5);  /* no channels: the offset */
    assert_vec(pos[1], 6, 12, 8); /* x and z from the offset, y = 7 from the channel */
    km_bvh_destroy(bvh);
}

static void test_round_trip(void **state)
{
    (void)state;
    km_bvh *a = parse(small_bvh);
    char path[] = "/tmp/kinema_test_bvh_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(km_bvh_write(a, f), KM_OK);
    fclose(f);
    km_status err;
    km_bvh *b = km_bvh_load(path, &err);
    if (!b)
        fprintf(stderr, "%s\n", km_last_error());
    assert_non_null(b);
    assert_int_equal(km_bvh_joint_count(b), km_bvh_joint_count(a));
    assert_int_equal(km_bvh_channel_count(b), km_bvh_channel_count(a));
    assert_int_equal(km_bvh_frame_count(b), km_bvh_frame_count(a));
    for (int j = 0; j < km_bvh_joint_count(a); j++) {
        const km_bvh_joint *ja = km_bvh_joint_at(a, j), *jb = km_bvh_joint_at(b, j);
        assert_string_equal(ja->name, jb->name);
        assert_int_equal(ja->parent, jb->parent);
        assert_int_equal(ja->channel_count, jb->channel_count);
        assert_memory_equal(ja->channels, jb->channels, sizeof ja->channels);
        assert_true(ja->offset.x == jb->offset.x && ja->offset.z == jb->offset.z);
    }
    for (int fr = 0; fr < km_bvh_frame_count(a); fr++)
        assert_memory_equal(km_bvh_frame(a, fr), km_bvh_frame(b, fr),
                            (size_t)km_bvh_channel_count(a) * sizeof(double));
    assert_int_equal(km_bvh_save(b, path), KM_OK);
    km_bvh_destroy(b);
    b = km_bvh_load(path, &err);
    assert_non_null(b);
    km_bvh_destroy(b);
    remove(path);
    assert_null(km_bvh_load("/nonexistent/x.bvh", &err));
    assert_int_equal(err, KM_ERR_IO);
    km_bvh_destroy(a);
}

/* Each malformed file fails with KM_ERR_PARSE and names the line. */
static void test_malformed(void **state)
{
    (void)state;
    static const char *const head = "HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n";
    static const char *const motion = "}\nMOTION\nFrames: 2\nFrame Time: 0.1\n1\n2\n";
    struct {
        const char *text;
        int line;
    } cases[] = {
        {"", 1},
        {"HIERARCH\n", 1},
        {"HIERARCHY\nJOINT A\n", 2},
        {"HIERARCHY\nROOT\n{\n", 2},
        {"HIERARCHY\nROOT A\nOFFSET 0 0 0\n", 3},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0\nCHANNELS 0\n}\n", 5},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 x 0\n", 4},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 nan\n", 4},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 7\n", 5},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 2 Xrotation Xrotation\n", 5},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Wrotation\n", 5},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\nBONE B\n", 6},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\nEnd Sit\n", 6},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\nEnd Site\n{\nOFFSET 0 0 0\n"
         "CHANNELS 0\n", 9},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\nJOINT B\n{\nOFFSET 0 0 0\n"
         "CHANNELS 0\n}\n", 11},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nROOT B\n", 7},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nMOTION\nFrames: -1\n", 8},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nMOTION\nFrames: 1.5\n", 8},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nMOTION\nFrames: 1\nFrame Time: 0\n",
         9},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nMOTION\nFrames: 1\nFrametime: 1\n",
         9},
        /* rows: too few values, too many, not a number, missing row, extra row */
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 2 Xrotation Yrotation\n}\nMOTION\n"
         "Frames: 1\nFrame Time: 0.1\n1\n", 10},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 2 Xrotation Yrotation\n}\nMOTION\n"
         "Frames: 1\nFrame Time: 0.1\n1 2 3\n", 10},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 2 Xrotation Yrotation\n}\nMOTION\n"
         "Frames: 1\nFrame Time: 0.1\n1 inf\n", 10},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n}\nMOTION\n"
         "Frames: 2\nFrame Time: 0.1\n1\n", 11},
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n}\nMOTION\n"
         "Frames: 1\nFrame Time: 0.1\n1\n2\n", 11},
        /* more frames than the file could hold: refused before allocating */
        {"HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n}\nMOTION\n"
         "Frames: 900000000\nFrame Time: 0.1\n1\n", 9},
    };
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", head, motion);
    km_bvh *ok = parse(buf); /* the frame around the cases is itself valid */
    km_bvh_destroy(ok);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        km_status err;
        km_bvh *bvh = km_bvh_parse(cases[c].text, strlen(cases[c].text), "bad.bvh", &err);
        char want[32];
        snprintf(want, sizeof want, "bad.bvh:%d:", cases[c].line);
        if (bvh || err != KM_ERR_PARSE || !strstr(km_last_error(), want))
            fail_msg("case %zu: status %d, message '%s', wanted '%s'", c, (int)err,
                     km_last_error(), want);
        printf("  case %2zu: %s\n", c, km_last_error());
    }
    /* A NUL byte inside the text. */
    static const char with_nul[] = "HIERARCHY\nROOT A\0{\n";
    km_status err;
    assert_null(km_bvh_parse(with_nul, sizeof with_nul - 1, "nul.bvh", &err));
    assert_int_equal(err, KM_ERR_PARSE);
}

/* ------------------------------------------------------------ real files */

static const char *data_dir(void)
{
    const char *d = getenv("KINEMA_DATA");
    if (!d || !*d)
        d = getenv("KINEMA_DATA_DEFAULT");
    return d;
}

static km_bvh *load_real(const char *rel)
{
    const char *dir = data_dir();
    if (!dir)
        return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/mocap_bvh/%s", dir, rel);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return NULL;
    fclose(probe);
    km_status err;
    km_bvh *bvh = km_bvh_load(path, &err);
    if (!bvh)
        fail_msg("%s", km_last_error());
    return bvh;
}

/* Bone lengths stay what the offsets say in every frame (FK consistency), and the body is
 * human-sized with the guessed unit. */
static void check_take(km_bvh *bvh, const char *label, int joints, int frames,
                       double frame_time, double scale)
{
    const int n = km_bvh_joint_count(bvh);
    int real_joints = 0;
    for (int j = 0; j < n; j++)
        real_joints += !km_bvh_joint_at(bvh, j)->end_site;
    assert_int_equal(real_joints, joints);
    assert_int_equal(km_bvh_frame_count(bvh), frames);
    assert_true(fabs(km_bvh_frame_time_s(bvh) - frame_time) < 1e-6);
    const double guess = km_bvh_guess_scale_m(bvh);
    assert_true(fabs(guess - scale) < 1e-9 * scale);
    km_vec3 *pos = calloc((size_t)n, sizeof *pos);
    assert_non_null(pos);
    double worst = 0.0, height_max = 0.0;
    for (int fr = 0; fr < frames; fr += 7) {
        assert_int_equal(km_bvh_pose(bvh, fr, guess, pos, NULL), KM_OK);
        double lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < n; j++) {
            const km_bvh_joint *jt = km_bvh_joint_at(bvh, j);
            lo = fmin(lo, pos[j].y);
            hi = fmax(hi, pos[j].y);
            bool has_position = false;
            for (int c = 0; c < jt->channel_count; c++)
                has_position |= jt->channels[c] <= KM_BVH_ZPOSITION;
            if (jt->parent < 0 || has_position)
                continue;
            const double bone = km_vec3_dist(pos[j], pos[jt->parent]);
            const double want = km_vec3_norm(jt->offset) * guess;
            worst = fmax(worst, fabs(bone - want));
        }
        height_max = fmax(height_max, hi - lo);
    }
    printf("%s: %d joints, %d frames, %.4f s, %.6f m/unit, largest height %.2f m, bone length "
           "error %.2e m\n", label, joints, frames, km_bvh_frame_time_s(bvh), guess, height_max,
           worst);
    assert_true(worst < 1e-9);
    assert_true(height_max > 1.2 && height_max < 2.4);
    free(pos);
}

static void test_real_files(void **state)
{
    (void)state;
    km_bvh *cmu = load_real("cmu_fairmotion/01_01.bvh");
    if (!cmu) {
        skip(); /* KINEMA_DATA has no mocap_bvh/ (docs: data/README.md section 3) */
        return;
    }
    check_take(cmu, "cmu 01_01", 31, 2752, 0.0083333, 0.0254 / 0.45);
    km_bvh_destroy(cmu);
    km_bvh *walk = load_real("bandai_namco_dataset1/dataset-1_walk_normal_001.bvh");
    assert_non_null(walk);
    check_take(walk, "bandai walk", 22, 195, 0.0333333, 0.01);
    km_bvh_destroy(walk);
    km_bvh *cc = load_real("cmu_iclone_ccrig/007_12.bvh");
    if (cc) {
        check_take(cc, "iclone 007_12", 100, 132, 0.016667, 0.01);
        km_bvh_destroy(cc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_forward_kinematics),
        cmocka_unit_test(test_position_channels),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_real_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
