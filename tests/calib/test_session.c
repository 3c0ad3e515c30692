/* Tests of calib/session.c, the live calibration session, on the synthetic wand wave
 * (capture/synthetic_wand.c: 0.15 px noise, ghosts, dropouts) fed frame by frame as the
 * pipeline would:
 * - a long wave decimated into a bounded store (every other frame dropped when full), the
 *   L-frame, a solve in the worker thread polled for progress from this thread: the rig
 *   meets the acceptance figures (centres 1 mm, rotations 0.05 deg, world origin 1 mm);
 * - no allocation while frames are fed (malloc/calloc/realloc counted through --wrap);
 * - cancel stops a solve within an iteration, and the session starts again afterwards;
 * - frames fed while solving are refused; errors for no frames, no L-frame, bad cameras,
 *   too many blobs; destroy while solving. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "kinema/tracking.h"
#include "wand_fixture.h"

/* Allocation counter (all threads; read before and after each frame this thread feeds). */
#include "../common/alloc_count.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The pipeline's view of a frame: an observation set with a fixed capacity. */
typedef struct feeder {
    km_synthetic_blob *blobs;
    km_observation_set obs;
} feeder;

static void feeder_init(feeder *f, int cameras)
{
    int cap = 64 * cameras;
    f->blobs = malloc((size_t)cap * sizeof *f->blobs);
    f->obs.items = malloc((size_t)cap * sizeof *f->obs.items);
    f->obs.capacity = cap;
    assert_non_null(f->blobs);
    assert_non_null(f->obs.items);
}

static void feeder_free(feeder *f)
{
    free(f->blobs);
    free(f->obs.items);
}

/* Frame `frame` of the wave (or of the L-frame) into the observation set. */
static void feeder_fill(feeder *f, const km_synthetic_wand *w, int frame, bool ground)
{
    int n = ground ? km_synthetic_wand_observe_ground(w, frame, f->blobs, f->obs.capacity)
                   : km_synthetic_wand_observe(w, frame, f->blobs, f->obs.capacity);
    f->obs.frame = (uint64_t)frame;
    f->obs.time_ns = (uint64_t)frame * 8333333u;
    f->obs.count = n;
    for (int i = 0; i < n; i++)
        f->obs.items[i] = (km_observation){f->blobs[i].x, f->blobs[i].y, 4.0, f->blobs[i].camera};
}

/* Feed the whole wave and the L-frame; returns the allocations made by the session. */
static long feed_all(km_calib_session *s, const km_synthetic_wand *w, feeder *f)
{
    const km_synthetic_wand_config *cfg = km_synthetic_wand_get_config(w);
    long allocs = 0;
    for (int i = 0; i < cfg->frame_count; i++) {
        feeder_fill(f, w, i, false);
        long before = alloc_count_get();
        assert_int_equal(km_calib_session_add_observations(s, &f->obs), KM_OK);
        allocs += alloc_count_get() - before;
    }
    assert_int_equal(km_calib_session_set_phase(s, KM_CALIB_SESSION_GROUND), KM_OK);
    for (int i = 0; i < cfg->ground_frame_count; i++) {
        feeder_fill(f, w, i, true);
        long before = alloc_count_get();
        assert_int_equal(km_calib_session_add_observations(s, &f->obs), KM_OK);
        allocs += alloc_count_get() - before;
    }
    return allocs;
}

static km_synthetic_wand *make_wave(int cameras, int frames, uint64_t seed)
{
    km_synthetic_wand_config scfg = km_synthetic_wand_config_default();
    scfg.camera_count = cameras;
    scfg.frame_count = frames;
    scfg.seed = seed;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&scfg, &st);
    assert_non_null(w);
    return w;
}

static void test_session_live_wave(void **state)
{
    (void)state;
    km_synthetic_wand *w = make_wave(8, 3000, 3);
    km_calib_session_config cfg = km_calib_session_config_default();
    cfg.max_frames = 1000; /* 3000 frames fed: decimated twice */
    km_status st;
    km_calib_session *s = km_calib_session_create(&cfg, km_synthetic_wand_rig(w), &st);
    assert_non_null(s);
    km_calib_session_progress p;
    km_rig rig;
    km_wand_result r;
    assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_ERR_AGAIN);
    feeder f;
    feeder_init(&f, 8);
    long allocs = feed_all(s, w, &f);
    km_calib_session_get_progress(s, &p);
    print_message("fed %d wand frames: %d kept (frames %llu..%llu), every %d-th; %d L-frame "
                  "frames, %d blobs; views per camera %d %d %d ...; %ld allocations while "
                  "feeding\n", p.frames_fed, p.frames_kept, (unsigned long long)p.first_frame,
                  (unsigned long long)p.last_frame, p.decimation, p.ground_frames,
                  p.ground_blobs, p.camera_views[0], p.camera_views[1], p.camera_views[2],
                  allocs);
    assert_int_equal(allocs, 0);
    assert_int_equal(p.state, KM_CALIB_SESSION_COLLECTING);
    assert_int_equal(p.frames_fed, 3000);
    assert_int_equal(p.decimation, 4);
    assert_true(p.frames_kept <= 1000 && p.frames_kept > 600);
    assert_true(p.first_frame < 8 && p.last_frame > 2990); /* the whole wave, evenly */
    assert_int_equal(p.ground_frames, km_synthetic_wand_get_config(w)->ground_frame_count);
    for (int c = 0; c < 8; c++)
        assert_true(p.camera_views[c] > 100);

    assert_int_equal(km_calib_session_start(s), KM_OK);
    assert_int_equal(km_calib_session_start(s), KM_ERR_AGAIN);
    /* Poll from this thread as a control command would; frames are refused meanwhile. */
    double last = 0.0;
    int polls = 0, stages = 0;
    char stage[160] = "";
    for (;;) {
        km_calib_session_get_progress(s, &p);
        if (p.state != KM_CALIB_SESSION_SOLVING)
            break;
        assert_true(p.fraction >= last && p.fraction <= 1.0);
        last = p.fraction;
        if (strcmp(stage, p.stage) != 0) {
            snprintf(stage, sizeof stage, "%s", p.stage);
            print_message("  %5.1f%% %s\n", 100.0 * p.fraction, p.stage);
            stages++;
        }
        if (polls++ == 0) {
            feeder_fill(&f, w, 0, false);
            assert_int_equal(km_calib_session_add_observations(s, &f.obs), KM_ERR_AGAIN);
            assert_int_equal(km_calib_session_reset(s), KM_ERR_AGAIN);
            assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_ERR_AGAIN);
        }
        sleep_ms(5);
    }
    assert_int_equal(km_calib_session_wait(s), KM_OK);
    km_calib_session_get_progress(s, &p);
    print_message("%s after %d polls: %s\n", km_calib_session_state_name(p.state), polls,
                  p.stage);
    assert_int_equal(p.state, KM_CALIB_SESSION_DONE);
    assert_true(p.fraction == 1.0);
    assert_true(stages >= 2);
    assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_OK);
    wand_accuracy a = wand_fixture_compare(&rig, km_synthetic_wand_rig(w));
    print_message("session result: %d frames used, RMS %.3f px, %d iterations, %.2f s; centres "
                  "max %.3f mm, rotations max %.4f deg, world origin %.3f mm, wand length RMS "
                  "%.3f mm\n", r.frames_used, r.rms_px, r.iterations, r.solve_seconds,
                  a.centre_max_mm, a.rotation_max_deg, a.origin_mm, r.length_error_rms_mm);
    assert_true(r.has_ground);
    assert_true(a.centre_max_mm < 1.0);
    assert_true(a.rotation_max_deg < 0.05);
    assert_true(a.origin_mm < 1.0);
    assert_true(r.rms_px < 0.3);
    assert_true(r.frames_used > 500);

    /* Reset: an empty collection again. */
    assert_int_equal(km_calib_session_reset(s), KM_OK);
    km_calib_session_get_progress(s, &p);
    assert_int_equal(p.state, KM_CALIB_SESSION_COLLECTING);
    assert_int_equal(p.frames_kept, 0);
    assert_int_equal(p.decimation, 1);
    assert_int_equal(km_calib_session_start(s), KM_ERR_INVALID_ARGUMENT);
    feeder_free(&f);
    km_calib_session_destroy(s);
    km_synthetic_wand_destroy(w);
}

static void test_session_cancel_and_restart(void **state)
{
    (void)state;
    km_synthetic_wand *w = make_wave(6, 1500, 5);
    km_calib_session_config cfg = km_calib_session_config_default();
    cfg.with_ground = false;
    km_status st;
    km_calib_session *s = km_calib_session_create(&cfg, km_synthetic_wand_rig(w), &st);
    assert_non_null(s);
    feeder f;
    feeder_init(&f, 6);
    for (int i = 0; i < 1500; i++) {
        feeder_fill(&f, w, i, false);
        assert_int_equal(km_calib_session_add_observations(s, &f.obs), KM_OK);
    }
    assert_int_equal(km_calib_session_start(s), KM_OK);
    km_calib_session_cancel(s);
    st = km_calib_session_wait(s);
    km_calib_session_progress p;
    km_calib_session_get_progress(s, &p);
    print_message("cancelled: %s, state %s, stage '%s', %.0f%%\n", km_status_name(st),
                  km_calib_session_state_name(p.state), p.stage, 100.0 * p.fraction);
    assert_int_equal(st, KM_ERR_AGAIN);
    assert_int_equal(p.state, KM_CALIB_SESSION_CANCELLED);
    km_rig rig;
    km_wand_result r;
    assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_ERR_AGAIN);
    assert_non_null(strstr(km_last_error(), "cancelled"));
    /* The same frames solve when started again (without the ground: the root's gauge). */
    assert_int_equal(km_calib_session_start(s), KM_OK);
    assert_int_equal(km_calib_session_wait(s), KM_OK);
    assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_OK);
    print_message("restarted: RMS %.3f px, %d frames used, ground %d\n", r.rms_px,
                  r.frames_used, r.has_ground);
    assert_false(r.has_ground);
    assert_true(r.rms_px < 0.3);
    assert_int_equal(rig.camera_count, 6);
    /* More frames after a solve: collecting again; the old result is gone. */
    feeder_fill(&f, w, 0, false);
    assert_int_equal(km_calib_session_add_observations(s, &f.obs), KM_OK);
    assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_ERR_AGAIN);
    /* Destroy while a solve runs: cancelled and joined (ASan checks the rest). */
    assert_int_equal(km_calib_session_start(s), KM_OK);
    feeder_free(&f);
    km_calib_session_destroy(s);
    km_synthetic_wand_destroy(w);
}

static void test_session_errors(void **state)
{
    (void)state;
    km_synthetic_wand *w = make_wave(4, 400, 9);
    km_calib_session_config cfg = km_calib_session_config_default();
    km_status st;
    cfg.max_frames = 10; /* fewer than the wand's min_frames */
    assert_null(km_calib_session_create(&cfg, km_synthetic_wand_rig(w), &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    cfg = km_calib_session_config_default();
    cfg.decimation = 0;
    assert_null(km_calib_session_create(&cfg, km_synthetic_wand_rig(w), &st));
    assert_null(km_calib_session_create(NULL, km_synthetic_wand_rig(w), &st));
    cfg = km_calib_session_config_default();
    cfg.max_blobs_per_frame = 8;
    km_calib_session *s = km_calib_session_create(&cfg, km_synthetic_wand_rig(w), &st);
    assert_non_null(s);
    assert_int_equal(km_calib_session_start(s), KM_ERR_INVALID_ARGUMENT);
    print_message("no frames: %s\n", km_last_error());
    assert_non_null(strstr(km_last_error(), "no wand frame"));
    km_calib_blob bad = {7, 10.0, 10.0};
    assert_int_equal(km_calib_session_add_frame(s, 0, &bad, 1), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_calib_session_add_frame(s, 0, NULL, 3), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_calib_session_set_phase(s, (km_calib_session_phase)5),
                     KM_ERR_INVALID_ARGUMENT);
    km_calib_blob many[9];
    for (int i = 0; i < 9; i++)
        many[i] = (km_calib_blob){0, 100.0 + 10 * i, 100.0};
    assert_int_equal(km_calib_session_add_frame(s, 1, many, 9), KM_ERR_CAPACITY);
    km_calib_session_progress p;
    km_calib_session_get_progress(s, &p);
    assert_int_equal(p.truncated_frames, 1);
    assert_int_equal(p.frames_fed, 1);
    km_calib_session_destroy(s);

    /* with_ground but no L-frame fed: the wand solves, the session fails naming it. */
    cfg = km_calib_session_config_default();
    s = km_calib_session_create(&cfg, km_synthetic_wand_rig(w), &st);
    assert_non_null(s);
    feeder f;
    feeder_init(&f, 4);
    for (int i = 0; i < 400; i++) {
        feeder_fill(&f, w, i, false);
        assert_int_equal(km_calib_session_add_observations(s, &f.obs), KM_OK);
    }
    assert_int_equal(km_calib_session_start(s), KM_OK);
    st = km_calib_session_wait(s);
    print_message("no L-frame: %s: %s\n", km_status_name(st), km_last_error());
    assert_int_equal(st, KM_ERR_NOT_FOUND);
    assert_non_null(strstr(km_last_error(), "L-frame"));
    km_calib_session_get_progress(s, &p);
    assert_int_equal(p.state, KM_CALIB_SESSION_FAILED);
    assert_non_null(strstr(p.error, "L-frame"));
    km_rig rig;
    km_wand_result r;
    assert_int_equal(km_calib_session_get_result(s, &rig, &r), KM_ERR_NOT_FOUND);
    /* A wand error (a camera never sees the wand) reaches the caller the same way. */
    assert_int_equal(km_calib_session_reset(s), KM_OK);
    for (int i = 0; i < 400; i++) {
        feeder_fill(&f, w, i, false);
        int m = 0;
        for (int k = 0; k < f.obs.count; k++)
            if (f.obs.items[k].camera != 2)
                f.obs.items[m++] = f.obs.items[k];
        f.obs.count = m;
        assert_int_equal(km_calib_session_add_observations(s, &f.obs), KM_OK);
    }
    assert_int_equal(km_calib_session_start(s), KM_OK);
    st = km_calib_session_wait(s);
    print_message("camera 2 hidden: %s: %s\n", km_status_name(st), km_last_error());
    assert_int_equal(st, KM_ERR_NOT_FOUND);
    assert_non_null(strstr(km_last_error(), "camera 2"));
    feeder_free(&f);
    km_calib_session_destroy(s);
    km_calib_session_destroy(NULL);
    assert_string_equal(km_calib_session_state_name(KM_CALIB_SESSION_SOLVING), "solving");
    km_synthetic_wand_destroy(w);
}

int main(void)
{
    km_log_set_level(KM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_live_wave),
        cmocka_unit_test(test_session_cancel_and_restart),
        cmocka_unit_test(test_session_errors),
    };
    return cmocka_run_group_tests_name("calib_session", tests, NULL, NULL);
}
