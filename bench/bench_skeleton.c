/* bench_skeleton: skeleton solve time per person per frame, printed beside the
 * reconstruction (+ marker tracking) time of the same frames.
 *
 * Real motion (CMU 01_01 BVH from KINEMA_DATA, markers placed as in tests/skeleton) for 1, 2
 * and 4 people, an 8-camera synthetic ring, 0.15 px noise. Per frame: 2D observations ->
 * km_reconstructor_run + km_tracker_update (the peer figure) -> km_skeleton_solver_run
 * (labeling + IK of every person). Boot frames (until everyone is tracked, and 10 more) are left out of
 * the medians.
 * Also the IK alone (labels known) per person per frame, and, boots included, the worst single
 * km_skeleton_solver_run call and the frame from which every person is tracked.
 * Usage: bench_skeleton [frames] [boot_budget_us]   (default 600 frames, the solver's default
 * budget; a budget of 0 boots each person within one call, as before the boot was spread) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bvh_actor.h"
#include "thread_time.h"
#include "kinema/tracking.h"
#include "bench_help.h"

static double gauss(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    double u1 = ((*seed >> 8) & 0xffffff) / (double)0x1000000 + 1e-9;
    *seed = *seed * 1103515245u + 12345u;
    double u2 = ((*seed >> 8) & 0xffffff) / (double)0x1000000;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

int main(int argc, char **argv)
{
    bench_help(argc, argv,
               "usage: bench_skeleton [frames] [boot_budget_us]   (default 600, the solver's budget)\n\nSkeleton solve time per person per frame (CMU 01_01 from KINEMA_DATA, 1, 2 and 4 people)\nbeside the reconstruction + tracking time of the same frames; the worst boot call.\n");
    int frames = argc > 1 ? atoi(argv[1]) : 600;
    km_skeleton_solver_config scfg = km_skeleton_solver_config_default();
    if (argc > 2)
        scfg.boot_budget_us = atoi(argv[2]);
    if (frames < 20)
        frames = 20;
    const char *root = getenv("KINEMA_DATA");
    if (!root || !*root)
        root = getenv("KINEMA_DATA_DEFAULT");
    char path[1024];
    snprintf(path, sizeof path, "%s/mocap_bvh/cmu_fairmotion/01_01.bvh", root ? root : ".");
    static bvh_actor actor;
    if (!bvh_actor_init(&actor, path)) {
        printf("bench_skeleton: %s not found (set KINEMA_DATA): skipped\n", path);
        return 0;
    }
    km_log_set_level(KM_LOG_ERROR);
    const int M = actor.set.count;
    if (km_bvh_frame_count(actor.bvh) < frames + 1 + 900)
        frames = km_bvh_frame_count(actor.bvh) - 1 - 900;

    /* one calibration (the same actor plays every person) */
    km_body_frame *cal = malloc(sizeof *cal * 360);
    for (int k = 0; k < 360; k++) {
        km_vec3 mk[KM_SKELETON_MAX_MARKERS];
        bvh_actor_frame(&actor, 1 + k, km_vec3_make(0, 0, 0), 0, mk, NULL);
        cal[k].count = M;
        for (int i = 0; i < M; i++) {
            cal[k].pos_m[i] = mk[i];
            cal[k].valid[i] = true;
        }
    }
    km_subject subject;
    if (km_subject_calibrate(&actor.set, cal, 360, NULL, "actor", &subject, NULL) != KM_OK) {
        printf("bench_skeleton: calibration failed: %s\n", km_last_error());
        return 1;
    }
    free(cal);
    km_subject subjects[KM_SKELETON_MAX_PEOPLE] = {subject, subject, subject, subject};

    printf("bench_skeleton: CMU 01_01 with %d Plug-in Gait markers per person, 8 cameras "
           "1280x1024, %d frames (median ms per frame), boot budget %d us per call\n", M, frames,
           scfg.boot_budget_us);
    printf("%7s %9s %16s %14s %18s %12s %14s %12s %10s %11s\n", "people", "markers",
           "reconstruct+trk", "skeleton", "skeleton/person", "ratio", "IK/person", "worst call",
           "(CPU)", "all from");
    static const int PEOPLE[] = {1, 2, 4};
    for (size_t t = 0; t < sizeof PEOPLE / sizeof PEOPLE[0]; t++) {
        const int people = PEOPLE[t];
        km_vec3 hips0;
        bvh_actor_frame(&actor, 1, km_vec3_make(0, 0, 0), 0, NULL, NULL);
        hips0 = actor.pos[actor.joint_bvh[KM_JOINT_HIPS]];
        km_vec3 offset[KM_SKELETON_MAX_PEOPLE];
        int start[KM_SKELETON_MAX_PEOPLE];
        for (int p = 0; p < people; p++) {
            start[p] = 1 + 300 * p;
            offset[p] = km_vec3_make(-hips0.x + 2.2 * (p % 2 ? 1 : -1) * (p > 0),
                                     0, -hips0.z + 2.2 * (p / 2) - (p == 1 ? 1.0 : 0));
        }
        km_rig *rig = malloc(sizeof *rig);
        bvh_actor_rig(rig, 8, km_vec3_make(0, 0, 1.0), 6.5);
        km_status st;
        km_reconstruct_config rcfg = km_reconstruct_config_default();
        km_reconstructor *rec = km_reconstructor_create(&rcfg, rig, &st);
        km_tracker_config tcfg = km_tracker_config_default();
        tcfg.frame_period_s = km_bvh_frame_time_s(actor.bvh);
        km_tracker *tracker = km_tracker_create(&tcfg, &st);
        km_skeleton_solver *solver = km_skeleton_solver_create(&scfg, subjects, people, &st);
        km_ik *ik = km_ik_create(&subject, NULL, &st);
        if (!rec || !tracker || !solver || !ik) {
            printf("bench_skeleton: %s\n", km_last_error());
            return 1;
        }
        km_observation *oi = malloc(sizeof *oi * 16384);
        km_marker *mi = malloc(sizeof *mi * 512), *ti = malloc(sizeof *ti * 512);
        km_observation_set obs = {0, 0, 0, 16384, oi};
        km_marker_set markers = {0, 0, 0, 512, mi}, tracked = {0, 0, 0, 512, ti};
        double *rec_ms = malloc(sizeof(double) * (size_t)frames);
        double *sol_ms = malloc(sizeof(double) * (size_t)frames);
        double *ik_ms = malloc(sizeof(double) * (size_t)frames);
        unsigned seed = 77;
        int n = 0, all_tracked = 0, first_all = -1;
        uint64_t worst_ns = 0, worst_cpu_ns = 0;
        double marker_count = 0;
        for (int k = 0; k < frames; k++) {
            obs.count = 0;
            obs.frame = (uint64_t)k;
            obs.time_ns = (uint64_t)llround(k * km_bvh_frame_time_s(actor.bvh) * 1e9);
            km_vec3 mk0[KM_SKELETON_MAX_MARKERS];
            for (int p = 0; p < people; p++) {
                km_vec3 mk[KM_SKELETON_MAX_MARKERS];
                bvh_actor_frame(&actor, start[p] + k, offset[p], 1.3 * p, mk, NULL);
                if (p == 0)
                    memcpy(mk0, mk, sizeof mk0);
                for (int c = 0; c < rig->camera_count; c++)
                    for (int i = 0; i < M; i++) {
                        double u, v;
                        if (!km_camera_project(&rig->cameras[c], mk[i], &u, &v))
                            continue;
                        u += 0.15 * gauss(&seed);
                        v += 0.15 * gauss(&seed);
                        if (u < 0 || v < 0 || u > 1279 || v > 1023 || obs.count >= 16384)
                            continue;
                        oi[obs.count++] = (km_observation){u, v, 12.0, c};
                    }
            }
            uint64_t t0 = km_time_now_ns();
            km_reconstructor_run(rec, &obs, &markers);
            km_tracker_update(tracker, &markers, &tracked);
            uint64_t t1 = km_time_now_ns();
            km_skeleton_pose poses[KM_SKELETON_MAX_PEOPLE];
            uint64_t c1 = thread_time_ns();
            km_skeleton_solver_run(solver, &tracked, poses, KM_SKELETON_MAX_PEOPLE);
            uint64_t t2 = km_time_now_ns();
            if (thread_time_ns() - c1 > worst_cpu_ns)
                worst_cpu_ns = thread_time_ns() - c1;
            /* IK alone on person 0's true markers */
            km_body_frame f;
            f.count = M;
            for (int i = 0; i < M; i++) {
                f.pos_m[i] = mk0[i];
                f.valid[i] = true;
            }
            km_skeleton_pose pose;
            uint64_t t3 = km_time_now_ns();
            km_ik_solve(ik, &f, &pose);
            uint64_t t4 = km_time_now_ns();
            bool ok = true;
            for (int p = 0; p < people; p++)
                ok &= poses[p].tracked;
            all_tracked += ok;
            if (ok && first_all < 0)
                first_all = k;
            if (t2 - t1 > worst_ns)
                worst_ns = t2 - t1;
            if (first_all < 0 || k < first_all + 10)
                continue;
            rec_ms[n] = (double)(t1 - t0) * 1e-6;
            sol_ms[n] = (double)(t2 - t1) * 1e-6;
            ik_ms[n] = (double)(t4 - t3) * 1e-6;
            marker_count += tracked.count;
            n++;
        }
        double r = median(rec_ms, n), s = median(sol_ms, n), ikm = median(ik_ms, n);
        printf("%7d %9.0f %13.3f ms %11.3f ms %15.3f ms %11.2fx %11.3f ms %9.2f ms %7.2f ms "
               "%5d frame\n", people, marker_count / n, r, s, s / people, s / r, ikm,
               worst_ns * 1e-6, worst_cpu_ns * 1e-6, first_all);
        km_skeleton_solver_stats sst = km_skeleton_solver_get_stats(solver);
        if (first_all < 0 || all_tracked < (frames - first_all) * 9 / 10)
            printf("        (warning: all people tracked in only %d of %d frames)\n",
                   all_tracked, frames);
        printf("        boots %llu (failed %llu, %llu steps), lost %llu, recovered %llu, dropped "
               "%llu\n", (unsigned long long)sst.boots, (unsigned long long)sst.boot_failed,
               (unsigned long long)sst.boot_steps, (unsigned long long)sst.lost,
               (unsigned long long)sst.recovered, (unsigned long long)sst.dropped);
        free(rec_ms);
        free(sol_ms);
        free(ik_ms);
        free(oi);
        free(mi);
        free(ti);
        free(rig);
        km_ik_destroy(ik);
        km_skeleton_solver_destroy(solver);
        km_tracker_destroy(tracker);
        km_reconstructor_destroy(rec);
    }
    printf("ratio = skeleton solve (all people) / reconstruct+track of the same frame; target "
           "under 0.5 ms per person per frame\n");
    printf("worst call = longest km_skeleton_solver_run, boots included (wall; CPU = the "
           "thread's own time); all from = first frame with every person tracked\n");
    bvh_actor_free(&actor);
    return 0;
}
