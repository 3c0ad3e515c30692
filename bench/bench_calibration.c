/* bench_calibration: wand calibration of the 8-camera synthetic rig (0.15 px noise, ghosts,
 * dropouts) for growing wave lengths: time to identify the wand in every view (add_frame),
 * time of the solve (initialisation + bundle adjustment) and of the L-frame ground plane, with
 * the accuracy against the truth. The identification pass, which every calibration must make
 * over its input, is the peer the solve is compared with (ratio).
 * Usage: bench_calibration [cameras] [frames...]  (default 8 cameras, 1500 3000 6000) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "wand_fixture.h"
#include "bench_help.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run(int cameras, int frames, bool refine)
{
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.camera_count = cameras;
    scfg.frame_count = frames;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    if (w == NULL)
        return 1;
    km_wand_config cfg = km_wand_config_default();
    cfg.refine_intrinsics = refine;
    km_wand_calibration *wc = km_wand_calibration_create(&cfg, km_synthetic_wand_rig(w), &st);
    double t0 = now_s();
    st = wand_fixture_feed(wc, w, -1);
    double t1 = now_s();
    km_rig rig;
    km_wand_result r;
    if (st == KM_OK)
        st = km_wand_calibration_solve(wc, &rig, &r);
    double t2 = now_s();
    km_ground *g = NULL;
    if (st == KM_OK) {
        km_lframe lf = km_lframe_default();
        g = km_ground_create(&rig, &lf, &st);
        if (g)
            st = wand_fixture_ground(g, w);
    }
    double t3 = now_s();
    if (st == KM_OK)
        st = km_wand_calibration_set_ground(g, &rig, &r);
    double t4 = now_s();
    if (st != KM_OK) {
        fprintf(stderr, "bench_calibration: %s\n", km_last_error());
        return 1;
    }
    wand_accuracy a = wand_fixture_compare(&rig, km_synthetic_wand_rig(w));
    printf("%7d %5s %9.1f %9.3f %6.1fx %3d %8.3f %7.3f %7.3f %7.3f %8.4f %7.3f %7.3f %7.3f "
           "%7.3f %6.3f\n", frames, refine ? "yes" : "no", 1000.0 * (t1 - t0), t2 - t1,
           (t2 - t1) / (t1 - t0), r.iterations, t4 - t3, r.rms_px, a.centre_max_mm,
           wand_fixture_aligned_centre_mm(&rig, km_synthetic_wand_rig(w)), a.rotation_max_deg,
           r.length_error_rms_mm, r.length_error_mean_mm, r.length_error_noise_mm,
           r.length_error_calibration_mm, a.origin_mm);
    km_ground_destroy(g);
    km_wand_calibration_destroy(wc);
    km_synthetic_wand_destroy(w);
    return 0;
}

int main(int argc, char **argv)
{
    bench_help(argc, argv,
               "usage: bench_calibration [cameras] [frames...]   (default 8 cameras, 1500 3000 6000)\n\nWand calibration of the synthetic rig (0.15 px noise, ghosts, dropouts): the solve time beside\nthe identification pass over the input (ratio), the L-frame solve, and the accuracy against\nthe truth (camera centres, rotations, wand length error, world origin).\n");
    km_log_set_level(KM_LOG_WARN);
    int cameras = argc > 1 ? atoi(argv[1]) : 8;
    int defaults[] = {1500, 3000, 6000};
    printf("wand calibration, %d cameras, 0.15 px noise, 0.3 ghosts/view, 2%% dropouts; "
           "L-frame 2400 frames\n", cameras);
    printf("%7s %5s %9s %9s %7s %3s %8s %7s %7s %7s %8s %7s %7s %7s %7s %6s\n", "frames",
           "intr.", "ident_ms", "solve_s", "ratio", "it", "ground_s", "rms_px", "ctr_mm",
           "aln_mm", "rot_deg", "len_rms", "len_avg", "noise", "calib", "org_mm");
    int rc = 0;
    if (argc > 2) {
        for (int i = 2; i < argc; i++)
            rc |= run(cameras, atoi(argv[i]), false);
    } else {
        for (int i = 0; i < 3; i++)
            rc |= run(cameras, defaults[i], false);
        rc |= run(cameras, 3000, true);
    }
    printf("ident_ms: identifying the wand in every view (the pass over the input); solve_s:\n"
           "initialisation + bundle adjustment; ratio = solve / identification; ground_s: the\n"
           "L-frame solve; ctr_mm / rot_deg: worst camera centre / rotation error vs the truth\n"
           "after the ground plane; aln_mm: worst camera centre after the best rigid alignment\n"
           "to the truth (the wand solve without the L-frame's error); len_rms / len_avg: wand\n"
           "length error (mm) of single frames triangulated freely; noise / calib: the part of\n"
           "len_rms the observation noise explains and the rest (km_wand_result, no truth);\n"
           "org_mm: world origin error.\n");
    return rc;
}
