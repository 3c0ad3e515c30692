/* Labeling (label.c) on real data: the Plug-in Gait take test1.c3d given as unlabeled markers
 * (shuffled every frame, ids stripped, the file's two extra foot markers left in as
 * distractors), labels checked against the file's; the same with persistent ids (track
 * continuity); occlusion of a whole forearm for 40 frames and its recovery; a synthetic
 * motion where the person is lost and found again. No allocation per frame. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "skeleton_fixture.h"

#include "../common/alloc_count.h"

typedef struct take {
    km_c3d c3d;
    km_body_markerset set;
    km_subject subject;
    km_body_frame *frames;
    int truth[KM_SKELETON_MAX_MARKERS]; /* c3d point of each label */
} take;

static take *TAKE;

static int setup_take(void **state)
{
    (void)state;
    char path[512];
    if (!fixture_data_path(path, sizeof path,
                           "c3d/c3d_org/sample00_nexgen_ergonomics/test1.c3d"))
        return 0;
    TAKE = calloc(1, sizeof *TAKE);
    if (km_c3d_read(path, &TAKE->c3d) != KM_OK)
        return -1;
    km_body_markerset def;
    km_body_markerset_default(&def);
    if (km_body_markerset_match_c3d(&def, &TAKE->c3d, &TAKE->set) != KM_OK)
        return -1;
    TAKE->frames = malloc(sizeof *TAKE->frames * (size_t)TAKE->c3d.frame_count);
    for (int f = 0; f < TAKE->c3d.frame_count; f++)
        km_body_frame_from_c3d(&TAKE->c3d, f, &TAKE->set, NULL, &TAKE->frames[f]);
    /* the subject is calibrated on the first 300 frames only */
    if (km_subject_calibrate(&TAKE->set, TAKE->frames, 300, NULL, "test1", &TAKE->subject,
                             NULL) != KM_OK)
        return -1;
    for (int l = 0; l < TAKE->set.count; l++)
        TAKE->truth[l] = km_c3d_find_label(&TAKE->c3d, TAKE->set.markers[l].label);
    return 0;
}

static int teardown_take(void **state)
{
    (void)state;
    if (TAKE) {
        km_c3d_free(&TAKE->c3d);
        free(TAKE->frames);
        free(TAKE);
    }
    return 0;
}

#define NEED_TAKE()                                                                       \
    do {                                                                                  \
        if (!TAKE) {                                                                      \
            print_message("real data c3d/.../test1.c3d absent (set KINEMA_DATA): skipped\n"); \
            skip();                                                                       \
        }                                                                                 \
    } while (0)

typedef struct score {
    long right, wrong, missing, total;
    long back_right, back_total; /* hidden labels in the 10 frames after they come back */
} score;

/* Run the take through a solver. ids: 0 = random every frame, 1 = persistent (point index);
 * hide_from..hide_to: frames where the left forearm and hand markers are removed. */
static score run_take_cfg(const km_skeleton_solver_config *cfg, int ids, int hide_from,
                          int hide_to, long *allocs, km_skeleton_solver_stats *stats,
                          int *first_tracked)
{
    km_status st;
    km_skeleton_solver *sv = km_skeleton_solver_create(cfg, &TAKE->subject, 1, &st);
    assert_non_null(sv);
    km_marker items[128];
    km_marker_set ms = {0, 0, 0, 128, items};
    int orig[128];
    unsigned seed = 99;
    score sc = {0, 0, 0, 0, 0, 0};
    static const char *const HIDDEN[] = {"LFRA", "LWRA", "LWRB", "LFIN"};
    long a0 = 0;
    *first_tracked = -1;
    for (int f = 0; f < TAKE->c3d.frame_count; f++) {
        assert_int_equal(km_c3d_frame_markers(&TAKE->c3d, f, NULL, &ms), KM_OK);
        if (f >= hide_from && f < hide_to) {
            int k = 0;
            for (int i = 0; i < ms.count; i++) {
                bool hide = false;
                for (int h = 0; h < 4; h++)
                    hide |= (int)items[i].id == km_c3d_find_label(&TAKE->c3d, HIDDEN[h]);
                if (!hide)
                    items[k++] = items[i];
            }
            ms.count = k;
        }
        for (int i = ms.count - 1; i > 0; i--) {
            int j = (int)fixture_uniform(&seed, 0, i + 0.999);
            km_marker t = items[i];
            items[i] = items[j];
            items[j] = t;
        }
        for (int i = 0; i < ms.count; i++) {
            orig[i] = (int)items[i].id;
            items[i].id = ids ? items[i].id + 1000 : (uint32_t)(fixture_uniform(&seed, 0, 1e9));
        }
        if (f == 1)
            a0 = alloc_count_get(); /* after the first frame's boot */
        km_skeleton_pose pose;
        assert_int_equal(km_skeleton_solver_run(sv, &ms, &pose, 1), KM_OK);
        if (*first_tracked < 0) {
            if (!pose.tracked)
                continue; /* booting: spread over frames; scored from the first pose on */
            *first_tracked = f;
        }
        int lab[KM_SKELETON_MAX_MARKERS];
        assert_int_equal(km_skeleton_solver_labels(sv, 0, lab, KM_SKELETON_MAX_MARKERS), KM_OK);
        for (int l = 0; l < TAKE->set.count; l++) {
            bool visible = TAKE->frames[f].valid[l];
            for (int h = 0; h < 4 && f >= hide_from && f < hide_to; h++)
                if (!strcmp(TAKE->set.markers[l].label, HIDDEN[h]))
                    visible = false;
            if (!visible) {
                if (lab[l] >= 0)
                    sc.wrong++; /* a label on a marker that is not there */
                continue;
            }
            sc.total++;
            if (f >= hide_to && f < hide_to + 10)
                for (int h = 0; h < 4; h++)
                    if (!strcmp(TAKE->set.markers[l].label, HIDDEN[h])) {
                        sc.back_total++;
                        sc.back_right += lab[l] >= 0 && orig[lab[l]] == TAKE->truth[l];
                    }
            if (lab[l] < 0)
                sc.missing++;
            else if (orig[lab[l]] == TAKE->truth[l])
                sc.right++;
            else
                sc.wrong++;
        }
    }
    if (allocs)
        *allocs = alloc_count_get() - a0;
    if (stats)
        *stats = km_skeleton_solver_get_stats(sv);
    km_skeleton_solver_destroy(sv);
    return sc;
}

/* With the default configuration (the boot spread over calls). */
static score run_take(int ids, int hide_from, int hide_to, long *allocs,
                      km_skeleton_solver_stats *stats, int *first_tracked)
{
    return run_take_cfg(NULL, ids, hide_from, hide_to, allocs, stats, first_tracked);
}

static void test_real_unlabeled_shuffled(void **state)
{
    (void)state;
    NEED_TAKE();
    long allocs;
    km_skeleton_solver_stats st;
    int first;
    score sc = run_take(0, -1, -1, &allocs, &st, &first);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, shuffled, ids stripped: %.3f%% of %ld labels right, %ld wrong, "
                  "%ld missing from the first pose (frame %d) on; boots %llu, %llu steps; %ld "
                  "allocations after frame 1\n", right, sc.total, sc.wrong, sc.missing, first,
                  (unsigned long long)st.boots, (unsigned long long)st.boot_steps, allocs);
    assert_true(right >= 98.0);
    assert_true(sc.wrong <= sc.total / 1000);
    assert_int_equal(allocs, 0);
}

static void test_real_with_track_ids(void **state)
{
    (void)state;
    NEED_TAKE();
    int first;
    score sc = run_take(1, -1, -1, NULL, NULL, &first);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, persistent ids: %.3f%% right, %ld wrong (first pose at frame %d)\n",
                  right, sc.wrong, first);
    assert_true(right >= 98.0);
}

static void test_real_occlusion_recovery(void **state)
{
    (void)state;
    NEED_TAKE();
    km_skeleton_solver_stats st;
    int first;
    score sc = run_take(0, 200, 240, NULL, &st, &first);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, left forearm + hand hidden frames 200-239: %.3f%% right, %ld "
                  "wrong, %ld missing; after they return %ld/%ld right\n",
                  right, sc.wrong, sc.missing, sc.back_right, sc.back_total);
    assert_true(right >= 98.0);
    assert_int_equal(sc.back_total, 40);
    assert_true(sc.back_right >= 38);
}

/* Synthetic: a person walks, disappears for 10 frames (all markers gone), reappears: the
 * solver loses them and boots again with correct labels. The boot is spread over calls by a
 * step count (boot_steps, no time budget: the same frames on any machine). */
/* The whole boot in the call that starts it (boot_budget_us = boot_steps = 0): the first
 * frame is labeled, as before the boot was spread. */
static void test_real_boot_in_one_call(void **state)
{
    (void)state;
    NEED_TAKE();
    km_skeleton_solver_config cfg = km_skeleton_solver_config_default();
    cfg.boot_budget_us = 0;
    cfg.boot_steps = 0;
    int first;
    score sc = run_take_cfg(&cfg, 0, -1, -1, NULL, NULL, &first);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, boot in one call: %.3f%% right, %ld wrong, %ld missing, first pose "
                  "at frame %d\n", right, sc.wrong, sc.missing, first);
    assert_int_equal(first, 0);
    assert_true(right >= 98.0);
}

static void test_lost_and_found(void **state)
{
    (void)state;
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject s;
    assert_int_equal(km_subject_default(&set, 1.7, "walker", &s), KM_OK);
    km_skeleton_solver_config cfg = km_skeleton_solver_config_default();
    cfg.boot_budget_us = 0;
    cfg.boot_steps = 25;
    km_skeleton_solver *sv = km_skeleton_solver_create(&cfg, &s, 1, NULL);
    /* standing, arms down, then walking forward with bent elbows and knees while turning */
    fixture_pose a, b, p;
    memset(&a, 0, sizeof a);
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        a.q[j] = km_quat_identity();
    a.root_pos = km_vec3_make(0, 0.95, 0);
    a.q[KM_JOINT_LEFT_UPPER_ARM] = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), -1.3);
    a.q[KM_JOINT_RIGHT_UPPER_ARM] = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), 1.3);
    b = a;
    b.root_pos = km_vec3_make(0.5, 0.93, 0.6);
    b.q[0] = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 0.8);
    b.angle[KM_JOINT_LEFT_LOWER_ARM][0] = -0.9;
    b.angle[KM_JOINT_RIGHT_LOWER_ARM][0] = 0.9;
    b.angle[KM_JOINT_LEFT_LOWER_LEG][0] = 0.5;
    b.angle[KM_JOINT_RIGHT_LOWER_LEG][0] = 0.2;
    b.q[KM_JOINT_LEFT_UPPER_LEG] = km_quat_from_axis_angle(km_vec3_make(1, 0, 0), -0.4);
    km_marker items[64];
    km_marker_set ms = {0, 0, 0, 64, items};
    int right = 0, total = 0, booting = 0, first = -1, again = -1;
    for (int f = 0; f < 80; f++) {
        fixture_blend(&a, &b, f / 80.0, &p);
        km_vec3 mk[KM_SKELETON_MAX_MARKERS];
        fixture_fk(&s, &p, NULL, NULL, mk);
        ms.count = 0;
        if (f < 30 || f >= 40)
            for (int i = 0; i < set.count; i++) {
                items[ms.count].id = (uint32_t)(set.count - 1 - i); /* reversed order */
                items[ms.count].pos_m = mk[set.count - 1 - i];
                ms.count++;
            }
        km_skeleton_pose pose;
        assert_int_equal(km_skeleton_solver_run(sv, &ms, &pose, 1), KM_OK);
        if (f >= 30 && f < 40) {
            assert_false(pose.tracked);
            continue;
        }
        if (!pose.tracked) {
            booting++;
            continue;
        }
        if (first < 0)
            first = f;
        if (f >= 40 && again < 0)
            again = f;
        int lab[KM_SKELETON_MAX_MARKERS];
        km_skeleton_solver_labels(sv, 0, lab, KM_SKELETON_MAX_MARKERS);
        for (int l = 0; l < set.count; l++) {
            total++;
            right += lab[l] >= 0 && (int)items[lab[l]].id == l;
        }
    }
    km_skeleton_solver_stats st = km_skeleton_solver_get_stats(sv);
    print_message("lost and found: %d/%d labels right, boots %llu, lost %llu; tracked from "
                  "frame %d, again from frame %d (gone 30-39), %llu boot steps\n", right, total,
                  (unsigned long long)st.boots, (unsigned long long)st.lost, first, again,
                  (unsigned long long)st.boot_steps);
    assert_int_equal(st.boots, 2);
    /* each boot within 10 frames of 25 steps, tracked in every frame after it */
    assert_true(first >= 0 && first < 10);
    assert_true(again >= 40 && again < 50);
    assert_int_equal(booting, first + (again - 40));
    assert_int_equal(st.lost, 1);
    assert_true(right >= total * 99 / 100);
    km_skeleton_solver_destroy(sv);
}

/* Props only (three rigid clusters of 10 markers, nobody), then a person walks in beside
 * them: boots on the props fail and are backed off (not retried every frame), the person still
 * boots. Returns the solver's stats. */
static km_skeleton_solver_stats run_props(int retry_frames, int *person_from)
{
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject s;
    assert_int_equal(km_subject_default(&set, 1.7, "walker", &s), KM_OK);
    km_skeleton_solver_config cfg = km_skeleton_solver_config_default();
    cfg.boot_budget_us = 0;
    cfg.boot_steps = 25;
    cfg.boot_retry_frames = retry_frames;
    km_skeleton_solver *sv = km_skeleton_solver_create(&cfg, &s, 1, NULL);
    assert_non_null(sv);
    fixture_pose a;
    memset(&a, 0, sizeof a);
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        a.q[j] = km_quat_identity();
    a.root_pos = km_vec3_make(0, 0.95, 0);
    a.q[KM_JOINT_LEFT_UPPER_ARM] = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), -1.3);
    a.q[KM_JOINT_RIGHT_UPPER_ARM] = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), 1.3);
    km_vec3 person_mk[KM_SKELETON_MAX_MARKERS];
    fixture_fk(&s, &a, NULL, NULL, person_mk);
    km_vec3 props[30];
    unsigned seed = 5;
    for (int i = 0; i < 30; i++) {
        km_vec3 c = km_vec3_make(2.0 + 1.5 * (i / 10), 0.8 + 0.4 * (i / 10), -2.0);
        props[i] = km_vec3_add(c, km_vec3_make(fixture_uniform(&seed, -0.15, 0.15),
                                               fixture_uniform(&seed, -0.15, 0.15),
                                               fixture_uniform(&seed, -0.15, 0.15)));
    }
    km_marker items[128];
    km_marker_set ms = {0, 0, 0, 128, items};
    *person_from = -1;
    for (int f = 0; f < 900; f++) {
        ms.count = 0;
        for (int i = 0; i < 30; i++)
            items[ms.count++] = (km_marker){.id = (uint32_t)(100 + i), .pos_m = props[i]};
        if (f >= 600)
            for (int i = 0; i < set.count; i++)
                items[ms.count++] = (km_marker){.id = (uint32_t)i, .pos_m = person_mk[i]};
        km_skeleton_pose pose;
        assert_int_equal(km_skeleton_solver_run(sv, &ms, &pose, 1), KM_OK);
        if (f < 600)
            assert_false(pose.tracked);
        else if (pose.tracked && *person_from < 0)
            *person_from = f;
    }
    km_skeleton_solver_stats st = km_skeleton_solver_get_stats(sv);
    km_skeleton_solver_destroy(sv);
    return st;
}

static void test_props_backoff(void **state)
{
    (void)state;
    int from, from0;
    km_skeleton_solver_stats st = run_props(60, &from);
    km_skeleton_solver_stats st0 = run_props(0, &from0);
    print_message("props only for 600 frames, then a person: with back-off (60 frames) %llu failed "
                  "boots, %llu steps, %llu cluster-frames skipped, person tracked from frame %d; "
                  "without: %llu failed boots, %llu steps, person from frame %d\n",
                  (unsigned long long)st.boot_failed, (unsigned long long)st.boot_steps,
                  (unsigned long long)st.boot_skipped, from,
                  (unsigned long long)st0.boot_failed, (unsigned long long)st0.boot_steps, from0);
    assert_int_equal(st.boots, 1);
    assert_true(from >= 600 && from < 620);
    assert_true(st.boot_skipped > 0);
    /* each of the 3 props: tried at 0, then after 60, 120, 240, 480 frames at most */
    assert_true(st.boot_failed <= 3 * 5);
    assert_true(st0.boot_failed > 2 * st.boot_failed);
    assert_true(st.boot_steps * 2 < st0.boot_steps);
}

static void test_errors(void **state)
{
    (void)state;
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject s[5];
    for (int i = 0; i < 5; i++)
        km_subject_default(&set, 1.7, "x", &s[i]);
    km_status st;
    assert_null(km_skeleton_solver_create(NULL, s, 5, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_null(km_skeleton_solver_create(NULL, s, 0, &st));
    km_skeleton_solver_config cfg = km_skeleton_solver_config_default();
    cfg.max_markers = 4;
    km_skeleton_solver *sv = km_skeleton_solver_create(&cfg, s, 2, &st);
    assert_non_null(sv);
    assert_int_equal(km_skeleton_solver_count(sv), 2);
    assert_non_null(km_skeleton_solver_subject(sv, 1));
    assert_null(km_skeleton_solver_subject(sv, 2));
    km_marker items[8];
    memset(items, 0, sizeof items);
    km_marker_set ms = {0, 0, 8, 8, items};
    km_skeleton_pose poses[2];
    assert_int_equal(km_skeleton_solver_run(sv, &ms, poses, 2), KM_ERR_CAPACITY);
    ms.count = 2;
    assert_int_equal(km_skeleton_solver_run(sv, &ms, poses, 1), KM_ERR_CAPACITY);
    assert_int_equal(km_skeleton_solver_run(sv, &ms, poses, 2), KM_OK);
    assert_false(poses[0].tracked);
    assert_false(poses[1].tracked);
    int lab[8];
    assert_int_equal(km_skeleton_solver_labels(sv, 0, lab, 8), KM_ERR_CAPACITY);
    km_skeleton_solver_destroy(sv);
    km_skeleton_solver_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_unlabeled_shuffled),
        cmocka_unit_test(test_real_with_track_ids),
        cmocka_unit_test(test_real_occlusion_recovery),
        cmocka_unit_test(test_real_boot_in_one_call),
        cmocka_unit_test(test_lost_and_found),
        cmocka_unit_test(test_props_backoff),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup_take, teardown_take);
}
