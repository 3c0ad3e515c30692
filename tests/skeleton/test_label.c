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

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
static long allocations;
void *__wrap_malloc(size_t n)
{
    allocations++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b)
{
    allocations++;
    return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n)
{
    allocations++;
    return __real_realloc(p, n);
}

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
static score run_take(int ids, int hide_from, int hide_to, long *allocs,
                      km_skeleton_solver_stats *stats)
{
    km_status st;
    km_skeleton_solver *sv = km_skeleton_solver_create(NULL, &TAKE->subject, 1, &st);
    assert_non_null(sv);
    km_marker items[128];
    km_marker_set ms = {0, 0, 0, 128, items};
    int orig[128];
    unsigned seed = 99;
    score sc = {0, 0, 0, 0, 0, 0};
    static const char *const HIDDEN[] = {"LFRA", "LWRA", "LWRB", "LFIN"};
    long a0 = 0;
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
            a0 = allocations; /* after the first frame's boot */
        km_skeleton_pose pose;
        assert_int_equal(km_skeleton_solver_run(sv, &ms, &pose, 1), KM_OK);
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
        *allocs = allocations - a0;
    if (stats)
        *stats = km_skeleton_solver_get_stats(sv);
    km_skeleton_solver_destroy(sv);
    return sc;
}

static void test_real_unlabeled_shuffled(void **state)
{
    (void)state;
    NEED_TAKE();
    long allocs;
    km_skeleton_solver_stats st;
    score sc = run_take(0, -1, -1, &allocs, &st);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, shuffled, ids stripped: %.3f%% of %ld labels right, %ld wrong, "
                  "%ld missing; boots %llu; %ld allocations after frame 1\n",
                  right, sc.total, sc.wrong, sc.missing, (unsigned long long)st.boots, allocs);
    assert_true(right >= 98.0);
    assert_true(sc.wrong <= sc.total / 1000);
    assert_int_equal(allocs, 0);
}

static void test_real_with_track_ids(void **state)
{
    (void)state;
    NEED_TAKE();
    score sc = run_take(1, -1, -1, NULL, NULL);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, persistent ids: %.3f%% right, %ld wrong\n", right, sc.wrong);
    assert_true(right >= 98.0);
}

static void test_real_occlusion_recovery(void **state)
{
    (void)state;
    NEED_TAKE();
    km_skeleton_solver_stats st;
    score sc = run_take(0, 200, 240, NULL, &st);
    double right = 100.0 * (double)sc.right / (double)sc.total;
    print_message("test1.c3d, left forearm + hand hidden frames 200-239: %.3f%% right, %ld "
                  "wrong, %ld missing; after they return %ld/%ld right\n",
                  right, sc.wrong, sc.missing, sc.back_right, sc.back_total);
    assert_true(right >= 98.0);
    assert_int_equal(sc.back_total, 40);
    assert_true(sc.back_right >= 38);
}

/* Synthetic: a person walks, disappears for 10 frames (all markers gone), reappears: the
 * solver loses them and boots again with correct labels. */
static void test_lost_and_found(void **state)
{
    (void)state;
    km_body_markerset set;
    km_body_markerset_default(&set);
    km_subject s;
    assert_int_equal(km_subject_default(&set, 1.7, "walker", &s), KM_OK);
    km_skeleton_solver *sv = km_skeleton_solver_create(NULL, &s, 1, NULL);
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
    int right = 0, total = 0;
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
        assert_true(pose.tracked);
        int lab[KM_SKELETON_MAX_MARKERS];
        km_skeleton_solver_labels(sv, 0, lab, KM_SKELETON_MAX_MARKERS);
        for (int l = 0; l < set.count; l++) {
            total++;
            right += lab[l] >= 0 && (int)items[lab[l]].id == l;
        }
    }
    km_skeleton_solver_stats st = km_skeleton_solver_get_stats(sv);
    print_message("lost and found: %d/%d labels right, boots %llu, lost %llu\n", right, total,
                  (unsigned long long)st.boots, (unsigned long long)st.lost);
    assert_int_equal(st.boots, 2);
    assert_int_equal(st.lost, 1);
    assert_true(right >= total * 99 / 100);
    km_skeleton_solver_destroy(sv);
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
        cmocka_unit_test(test_lost_and_found),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup_take, teardown_take);
}
