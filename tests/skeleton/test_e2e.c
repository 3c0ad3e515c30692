/* End to end from 2D observations: real motion (CMU 01_01 BVH, jumps and a turn) wearing
 * Plug-in Gait markers placed by bvh_actor.h, seen by a synthetic ring of 8 cameras (0.15 px
 * noise, 5% of the observations lost), reconstructed (km_reconstructor), tracked (km_tracker),
 * labeled and solved (km_skeleton_solver); the solved joint centres against the BVH's, with
 * one and with three people. Each person's subject is calibrated beforehand from 3 s of
 * their labeled markers (the T-pose/ROM step of a session). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bvh_actor.h"
#include "kinema/tracking.h"
#include "skeleton_fixture.h"
#include "thread_time.h"

#define MAX_PEOPLE 3
#define FIRST_FRAME 1 /* frame 0 is the T-pose */
#define FRAMES 600    /* 5 s at 120 Hz */

static double gauss(unsigned *seed)
{
    double u1 = fixture_uniform(seed, 1e-12, 1), u2 = fixture_uniform(seed, 0, 1);
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

typedef struct result {
    double limb_mean_m;   /* mean error over the 12 limb joints, frames and people */
    double all_mean_m;    /* all 21 joints */
    double labels_right;  /* fraction of labels on the right marker (visible ones) */
    int tracked_frames, frames;
    double worst_call_ms; /* longest single km_skeleton_solver_run (boots included), wall */
    double worst_cpu_ms;  /* the same in the thread's CPU time (without preemption) */
    int first_tracked;    /* first frame where every person is tracked (-1: never) */
    int first_any;        /* first frame where someone is tracked */
} result;

static void run(int people, result *res)
{
    char path[512];
    if (!fixture_data_path(path, sizeof path, "mocap_bvh/cmu_fairmotion/01_01.bvh")) {
        print_message("real data mocap_bvh/cmu_fairmotion/01_01.bvh absent: skipped\n");
        skip();
    }
    static bvh_actor actor;
    assert_true(bvh_actor_init(&actor, path));
    const int M = actor.set.count;
    /* people 2 m apart, each with its own time offset and heading */
    km_vec3 offset[MAX_PEOPLE];
    double yaw[MAX_PEOPLE];
    int start[MAX_PEOPLE];
    km_vec3 hips0;
    bvh_actor_frame(&actor, FIRST_FRAME, km_vec3_make(0, 0, 0), 0, NULL, NULL);
    hips0 = actor.pos[actor.joint_bvh[KM_JOINT_HIPS]];
    for (int p = 0; p < people; p++) {
        yaw[p] = 2.1 * p;
        start[p] = FIRST_FRAME + 300 * p;
        offset[p] = km_vec3_make(-hips0.x + 2.2 * (p - (people - 1) / 2.0), 0,
                                 -hips0.z + (p == 1 ? 1.5 : 0));
    }
    km_rig *rig = malloc(sizeof *rig);
    bvh_actor_rig(rig, 8, km_vec3_make(0, 0, 0), people > 1 ? 6.0 : 4.5);

    /* calibration: 3 s of labeled markers, 0.5 mm noise (the same actor plays every
     * person, so one calibration serves all) */
    unsigned seed = 1234;
    km_subject subjects[MAX_PEOPLE];
    km_body_frame *cal = malloc(sizeof *cal * 360);
    for (int k = 0; k < 360; k++) {
        km_vec3 mk[KM_SKELETON_MAX_MARKERS];
        bvh_actor_frame(&actor, start[0] + k, offset[0], yaw[0], mk, NULL);
        cal[k].count = M;
        for (int i = 0; i < M; i++) {
            cal[k].pos_m[i] = km_vec3_add(mk[i], km_vec3_make(5e-4 * gauss(&seed),
                                                            5e-4 * gauss(&seed),
                                                            5e-4 * gauss(&seed)));
            cal[k].valid[i] = true;
        }
    }
    km_subject_calibration_report rep;
    assert_int_equal(km_subject_calibrate(&actor.set, cal, 360, NULL, "actor", &subjects[0],
                                          &rep), KM_OK);
    print_message("calibration: height %.2f m, marker RMS %.1f -> %.2f mm\n", rep.height_m,
                  rep.rms_before_m * 1e3, rep.rms_after_m * 1e3);
    for (int p = 1; p < people; p++)
        subjects[p] = subjects[0];
    free(cal);

    km_status st;
    km_reconstruct_config rcfg = km_reconstruct_config_default();
    km_reconstructor *rec = km_reconstructor_create(&rcfg, rig, &st);
    assert_non_null(rec);
    km_tracker_config tcfg = km_tracker_config_default();
    tcfg.frame_period_s = km_bvh_frame_time_s(actor.bvh);
    km_tracker *tracker = km_tracker_create(&tcfg, &st);
    assert_non_null(tracker);
    /* The boot spread by step count, not by time (boot_budget_us): the same frames in any
     * build and on any load, as test_label and kinemad's sanitizer runs do. A time budget
     * under ASan on a loaded machine split the three boots over ~500 frames. */
    km_skeleton_solver_config scfg = km_skeleton_solver_config_default();
    scfg.boot_budget_us = 0;
    scfg.boot_steps = 4;
    km_skeleton_solver *solver = km_skeleton_solver_create(&scfg, subjects, people, &st);
    assert_non_null(solver);

    enum { OBS_CAP = 8192, MK_CAP = 512 };
    km_observation *obs_items = malloc(sizeof *obs_items * OBS_CAP);
    km_marker *mk_items = malloc(sizeof *mk_items * MK_CAP);
    km_marker *tr_items = malloc(sizeof *tr_items * MK_CAP);
    km_observation_set obs = {0, 0, 0, OBS_CAP, obs_items};
    km_marker_set markers = {0, 0, 0, MK_CAP, mk_items};
    km_marker_set tracked = {0, 0, 0, MK_CAP, tr_items};
    double limb_sum = 0, all_sum = 0;
    long limb_n = 0, all_n = 0, label_right = 0, label_total = 0;
    int tracked_frames = 0;
    double per_joint[KM_JOINT_COUNT] = {0};
    long per_joint_n = 0;
    uint64_t rec_ns = 0, solve_ns = 0, worst_ns = 0, worst_cpu_ns = 0;
    int first_tracked = -1, first_any = -1;
    int first_seen[MAX_PEOPLE] = {-1, -1, -1};
    for (int k = 0; k < FRAMES; k++) {
        km_vec3 truth_mk[MAX_PEOPLE][KM_SKELETON_MAX_MARKERS];
        km_vec3 truth_j[MAX_PEOPLE][KM_JOINT_COUNT];
        obs.count = 0;
        obs.frame = (uint64_t)k;
        obs.time_ns = (uint64_t)llround(k * km_bvh_frame_time_s(actor.bvh) * 1e9);
        for (int p = 0; p < people; p++) {
            bvh_actor_frame(&actor, start[p] + k, offset[p], yaw[p], truth_mk[p], truth_j[p]);
            for (int c = 0; c < rig->camera_count; c++)
                for (int i = 0; i < M; i++) {
                    double u, v;
                    if (!km_camera_project(&rig->cameras[c], truth_mk[p][i], &u, &v))
                        continue;
                    u += 0.15 * gauss(&seed);
                    v += 0.15 * gauss(&seed);
                    if (u < 0 || v < 0 || u > 1279 || v > 1023 ||
                        fixture_uniform(&seed, 0, 1) < 0.05)
                        continue;
                    obs_items[obs.count++] = (km_observation){u, v, 12.0, c};
                }
        }
        uint64_t t0 = km_time_now_ns();
        assert_int_equal(km_reconstructor_run(rec, &obs, &markers), KM_OK);
        assert_int_equal(km_tracker_update(tracker, &markers, &tracked), KM_OK);
        uint64_t t1 = km_time_now_ns();
        km_skeleton_pose poses[KM_SKELETON_MAX_PEOPLE];
        uint64_t c1 = thread_time_ns();
        assert_int_equal(km_skeleton_solver_run(solver, &tracked, poses, KM_SKELETON_MAX_PEOPLE),
                         KM_OK);
        uint64_t t2 = km_time_now_ns();
        if (thread_time_ns() - c1 > worst_cpu_ns)
            worst_cpu_ns = thread_time_ns() - c1;
        rec_ns += t1 - t0;
        solve_ns += t2 - t1;
        if (t2 - t1 > worst_ns)
            worst_ns = t2 - t1;
        bool all_tracked = true;
        for (int q = 0; q < people; q++) {
            if (!poses[q].tracked) {
                all_tracked = false;
                continue;
            }
            /* which actor is solver person q? the nearest hips */
            int p = 0;
            for (int r = 1; r < people; r++)
                if (km_vec3_dist(poses[q].joint_pos_m[0], truth_j[r][0]) <
                    km_vec3_dist(poses[q].joint_pos_m[0], truth_j[p][0]))
                    p = r;
            if (first_seen[q] < 0)
                first_seen[q] = k;
            if (k < first_seen[q] + 10)
                continue; /* the boot and the first frames after it */
            for (int j = 0; j < KM_JOINT_COUNT; j++) {
                all_sum += km_vec3_dist(poses[q].joint_pos_m[j], truth_j[p][j]);
                per_joint[j] += km_vec3_dist(poses[q].joint_pos_m[j], truth_j[p][j]);
                all_n++;
            }
            per_joint_n++;
            for (int l = 0; l < 12; l++) {
                int j = BVH_ACTOR_LIMB_JOINTS[l];
                limb_sum += km_vec3_dist(poses[q].joint_pos_m[j], truth_j[p][j]);
                limb_n++;
            }
            /* labels: the labeled marker must be the reconstruction of the right one */
            int lab[KM_SKELETON_MAX_MARKERS];
            km_skeleton_solver_labels(solver, q, lab, KM_SKELETON_MAX_MARKERS);
            for (int i = 0; i < M; i++) {
                if (lab[i] < 0)
                    continue;
                label_total++;
                label_right += km_vec3_dist(tr_items[lab[i]].pos_m, truth_mk[p][i]) < 0.01;
            }
        }
        tracked_frames += all_tracked;
        if (all_tracked && first_tracked < 0)
            first_tracked = k;
        for (int q = 0; q < people && first_any < 0; q++)
            if (poses[q].tracked)
                first_any = k;
    }
    res->limb_mean_m = limb_n ? limb_sum / limb_n : 1;
    res->all_mean_m = all_n ? all_sum / all_n : 1;
    res->labels_right = label_total ? (double)label_right / label_total : 0;
    res->tracked_frames = tracked_frames;
    res->frames = FRAMES;
    res->worst_call_ms = worst_ns * 1e-6;
    res->worst_cpu_ms = worst_cpu_ns * 1e-6;
    res->first_tracked = first_tracked;
    res->first_any = first_any;
    print_message("%d people, %d frames: limb joints mean error %.2f mm, all 21 joints %.2f mm, "
                  "labels on the right marker %.2f%%, all tracked in %d frames; per frame: "
                  "reconstruct+track %.3f ms, skeleton solve %.3f ms (%.3f ms per person)\n",
                  people, FRAMES, res->limb_mean_m * 1e3, res->all_mean_m * 1e3,
                  res->labels_right * 100, tracked_frames, rec_ns / 1e6 / FRAMES,
                  solve_ns / 1e6 / FRAMES, solve_ns / 1e6 / FRAMES / people);
    km_skeleton_solver_stats sst = km_skeleton_solver_get_stats(solver);
    print_message("%d people: worst single solver call %.2f ms (%.2f ms of CPU), boot work at "
                  "most %.2f ms a call; first tracked pose at frame %d, everyone tracked from "
                  "frame %d; boots %llu, failed %llu, %llu steps\n", people, res->worst_call_ms,
                  res->worst_cpu_ms, sst.boot_longest_ns * 1e-6, first_any, first_tracked,
                  (unsigned long long)sst.boots, (unsigned long long)sst.boot_failed,
                  (unsigned long long)sst.boot_steps);
    if (getenv("KM_TEST_VERBOSE"))
        for (int j = 0; j < KM_JOINT_COUNT; j++)
            print_message("  %-14s %.1f mm\n", km_joint_name(j), per_joint[j] / per_joint_n * 1e3);
    km_skeleton_solver_destroy(solver);
    km_tracker_destroy(tracker);
    km_reconstructor_destroy(rec);
    free(obs_items);
    free(mk_items);
    free(tr_items);
    free(rig);
    bvh_actor_free(&actor);
}

static void test_one_person(void **state)
{
    (void)state;
    result r;
    run(1, &r);
    assert_true(r.limb_mean_m < 0.015);
    assert_true(r.labels_right > 0.98);
    /* the boot is spread over frames (4 steps a call: tracked from frame 29 in any build),
     * then tracked in every frame */
    assert_true(r.first_tracked >= 0 && r.first_tracked <= r.frames / 2);
    assert_int_equal(r.tracked_frames, r.frames - r.first_tracked);
}

static void test_three_people(void **state)
{
    (void)state;
    result r;
    run(3, &r);
    assert_true(r.limb_mean_m < 0.015);
    assert_true(r.labels_right > 0.98);
    /* three boots one after the other (everyone tracked from frame 87 in any build), then
     * everyone in every frame */
    assert_true(r.first_tracked >= 0 && r.first_tracked <= r.frames * 3 / 4);
    assert_true(r.tracked_frames >= (r.frames - r.first_tracked) * 99 / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_person),
        cmocka_unit_test(test_three_people),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
