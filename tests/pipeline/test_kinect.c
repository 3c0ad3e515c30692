/* The pipeline's `source: devices` on two simulated Kinects: the wrapped libfreenect of
 * tests/capture/fake_freenect.h (freenect_wrap_args of tests/capture/meson.build), each Kinect's
 * IR stream (`stream: ir8`, 640x488 GRAY8 at 30 Hz, as libfreenect's medium IR mode) showing
 * three bright disks, the projections of three markers through its rig camera. kinemad's
 * config text (`source: devices`, `sources:` by serial, `rig:`) goes through
 * km_pipeline_config_read and km_pipeline_create as in the daemon.
 *
 * Checked, on every solved frame (km_pipeline_set_frame_callback): both cameras OK, three
 * observations each, the three markers triangulated where they are. Then libfreenect's event
 * loop fails (a Kinect unplugged: libfreenect marks the device dead and every
 * freenect_process_events_timeout of the context returns < 0): both Kinects of the context turn
 * DISCONNECTED, not MISSING. With every camera gone no frame set comes, so no solved frame
 * can say it: km_pipeline_step returns KM_ERR_AGAIN within its timeout (never blocks, never
 * ends the stream) and km_pipeline_camera_status reports the state; the capture runner's error
 * count stays small (the backend reports the failure once, then every 5 s, not on every poll);
 * the pipeline shuts down cleanly and closes both Kinects. Count-based conditions with
 * generous time limits (a loaded 2-core machine): the times measured are printed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <unistd.h>

#include "kinema/pipeline.h"
#include "marker_images.h"
#include "fake_freenect.h"

#define CAMERAS 2
#define MARKERS 3
#define IR_W 640
#define IR_H 488 /* libfreenect's IR 8-bit medium mode (capture/freenect.c reports its size) */
#define PHASE_FRAMES 45 /* solved frames the first phase must deliver (1.5 s at 30 Hz) */
#define PHASE_LIMIT_NS 20000000000ull
/* Triangulation tolerance. The Kinects are 1 m apart, 2 m from the markers, with the IR
 * camera's 58.5 deg horizontal field over 640 px: f = 320 / tan(29.25 deg) = 572 px, so one
 * pixel is 3.5 mm across the view at 2 m and one pixel of disparity is Z^2 / (f b) = 7 mm
 * in depth. The disks' centroids are subpixel (anti-aliased edges), good to about a tenth of
 * a pixel, i.e. < 1 mm; 2 mm (0.3 px of disparity) is the bound, the worst error measured is
 * printed. */
#define TOLERANCE_M 0.002

static const char *const serials[CAMERAS] = {"A00362A04123045A", "B00367707417045B"};

static const km_vec3 truth[MARKERS] = {{-0.25, -0.20, 0.0}, {0.0, 0.05, 0.15}, {0.20, 0.25, -0.1}};

/* What the frame callback saw (it runs on the thread that calls km_pipeline_step: this
 * test's, so no locking). */
typedef struct seen {
    uint64_t frames;             /* solved frames */
    uint64_t state[CAMERAS][4];  /* frames by camera state */
    uint64_t both_ok;            /* frames with both cameras OK */
    uint64_t markers_ok;         /* of those, the 3 markers within TOLERANCE_M of the truth */
    double worst_error_m;        /* largest marker error in those frames */
} seen;

static seen phase;

static double distance(km_vec3 a, km_vec3 b)
{
    return sqrt((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y) +
                (a.z - b.z) * (a.z - b.z));
}

static void on_frame(void *user, const km_solved_frame *f)
{
    (void)user;
    seen *s = &phase;
    s->frames++;
    assert_int_equal(f->camera_count, CAMERAS);
    assert_non_null(f->camera_status);
    bool both = true;
    for (int c = 0; c < CAMERAS; c++) {
        km_camera_state st = f->camera_status[c].state;
        assert_true(st <= KM_CAMERA_STATE_INACTIVE);
        s->state[c][st]++;
        if (st == KM_CAMERA_STATE_OK)
            assert_int_equal(f->observation_count[c], MARKERS); /* exactly the 3 disks */
        else
            assert_int_equal(f->observation_count[c], 0);
        both = both && st == KM_CAMERA_STATE_OK;
    }
    if (!both)
        return;
    s->both_ok++;
    /* two views of three disks: the three markers, each where it is */
    assert_non_null(f->markers);
    assert_int_equal(f->markers->count, MARKERS);
    int near = 0;
    for (int m = 0; m < MARKERS; m++) {
        double best = INFINITY;
        for (int i = 0; i < MARKERS; i++) {
            double d = distance(f->markers->items[i].pos_m, truth[m]);
            if (d < best)
                best = d;
        }
        if (best > s->worst_error_m)
            s->worst_error_m = best;
        near += best < TOLERANCE_M;
    }
    if (near == MARKERS)
        s->markers_ok++;
}

/* A disk of radius 3 px at (u, v), its edge anti-aliased (4x4 samples a pixel) as a lens
 * blurs it, so that the centroid is subpixel-true (pixel (0,0) is the centre of the top-left
 * pixel). Only the pixels around it are visited. */
static uint8_t images[CAMERAS][IR_W * IR_H];

static void test_two_kinects_ir_unplug(void **state)
{
    (void)state;
    fake_kinect_reset();
    /* The rig: two Kinect IR cameras 640x488, 1 m apart, 2 m from the markers. */
    km_rig rig;
    memset(&rig, 0, sizeof rig);
    snprintf(rig.name, sizeof rig.name, "fake-kinect-rig");
    rig.camera_count = CAMERAS;
    km_camera_look_at(&rig.cameras[0], "kinect-left", IR_W, IR_H, 58.5 * M_PI / 180.0,
                      km_vec3_make(-0.5, 0.3, 2.0), km_vec3_make(0, 0, 0));
    km_camera_look_at(&rig.cameras[1], "kinect-right", IR_W, IR_H, 58.5 * M_PI / 180.0,
                      km_vec3_make(0.5, 0.1, 2.0), km_vec3_make(0, 0, 0));
    for (int c = 0; c < CAMERAS; c++) /* whole disks, away from the border */
        marker_images_render(&rig.cameras[c], truth, MARKERS, 3.0, 10, images[c]);
    char rig_path[] = "/tmp/kinema-test-kinect-rig-XXXXXX";
    marker_images_save_rig(&rig, rig_path);

    /* Two Kinects, plugged in the order opposite to the rig's, found by serial. */
    fake_kinect *kinect[CAMERAS];
    kinect[1] = fake_kinect_add(serials[1]);
    kinect[0] = fake_kinect_add(serials[0]);
    for (int c = 0; c < CAMERAS; c++)
        fake_kinect_set_video_image(kinect[c], images[c], sizeof images[c]);

    char text[2048];
    snprintf(text, sizeof text,
             "source: devices\n"
             "rig: %s\n"
             "sources:\n"
             "  - {type: freenect, camera: 0, serial: %s, stream: ir8}\n"
             "  - {type: freenect, camera: 1, serial: %s, stream: ir8}\n",
             rig_path, serials[0], serials[1]);
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "kinect.yaml", &st);
    assert_non_null(cfg);
    km_pipeline_config pc = km_pipeline_config_default();
    if (km_pipeline_config_read(cfg, &pc))
        fail_msg("config: %s", km_last_error());
    km_config_destroy(cfg);
    pc.publish_enabled = false;
    km_pipeline *p = km_pipeline_create(&pc, &st);
    if (!p)
        fail_msg("create: %s", km_last_error());
    unlink(rig_path);
    pthread_mutex_lock(&fkn.lock);
    for (int c = 0; c < CAMERAS; c++) {
        assert_int_equal(kinect[c]->opens, 1);
        assert_int_equal(kinect[c]->video_mode.video_format, FREENECT_VIDEO_IR_8BIT);
        assert_int_equal(kinect[c]->led, LED_OFF);
    }
    pthread_mutex_unlock(&fkn.lock);
    km_pipeline_set_frame_callback(p, on_frame, NULL);
    assert_int_equal(km_pipeline_start(p), KM_OK);
    uint64_t t_start = fake_kinect_now_ns();

    /* 1. both Kinects: every frame set complete, 3 disks each, 3 markers */
    memset(&phase, 0, sizeof phase);
    uint64_t end = t_start + PHASE_LIMIT_NS;
    while (phase.markers_ok < PHASE_FRAMES && fake_kinect_now_ns() < end) {
        int solved = 0;
        st = km_pipeline_step(p, 100000000ull, &solved);
        if (st != KM_OK && st != KM_ERR_AGAIN)
            fail_msg("both: km_pipeline_step: %s: %s", km_status_name(st), km_last_error());
    }
    seen both = phase;
    double both_s = (double)(fake_kinect_now_ns() - t_start) / 1e9;
    print_message("both         %llu frames in %.2f s; camera 0 ok/missing %llu/%llu, camera 1 "
                  "%llu/%llu; markers right %llu; worst marker error %.3f mm\n",
                  (unsigned long long)both.frames, both_s,
                  (unsigned long long)both.state[0][KM_CAMERA_STATE_OK],
                  (unsigned long long)both.state[0][KM_CAMERA_STATE_MISSING],
                  (unsigned long long)both.state[1][KM_CAMERA_STATE_OK],
                  (unsigned long long)both.state[1][KM_CAMERA_STATE_MISSING],
                  (unsigned long long)both.markers_ok, both.worst_error_m * 1e3);
    assert_true(both.markers_ok >= PHASE_FRAMES);
    /* every frame with both views put the markers where they are */
    assert_int_equal(both.markers_ok, both.both_ok);
    /* a healthy run: sets complete (allow a few split by a descheduled capture thread) */
    assert_true(both.both_ok * 10 >= both.frames * 9);
    assert_int_equal(both.state[0][KM_CAMERA_STATE_DISCONNECTED], 0);
    assert_int_equal(both.state[1][KM_CAMERA_STATE_DISCONNECTED], 0);

    /* 2. a Kinect unplugged: libfreenect's event loop fails for the whole context */
    memset(&phase, 0, sizeof phase);
    uint64_t t_unplug = fake_kinect_now_ns();
    fake_kinect_fail_events(true);
    uint64_t disconnected_ns = 0, longest_step_ns = 0, steps_after = 0;
    uint64_t frames_at_disconnect = 0;
    km_camera_status cs[KM_MAX_CAMERAS];
    end = t_unplug + PHASE_LIMIT_NS;
    /* step until both are DISCONNECTED, then 1.5 s more */
    while (fake_kinect_now_ns() < end &&
           (!disconnected_ns || fake_kinect_now_ns() - disconnected_ns < 1500000000ull)) {
        int solved = 0;
        uint64_t t0 = fake_kinect_now_ns();
        st = km_pipeline_step(p, 100000000ull, &solved);
        uint64_t took = fake_kinect_now_ns() - t0;
        if (took > longest_step_ns)
            longest_step_ns = took;
        if (st != KM_OK && st != KM_ERR_AGAIN)
            fail_msg("unplugged: km_pipeline_step: %s: %s", km_status_name(st),
                     km_last_error());
        assert_int_equal(km_pipeline_camera_status(p, cs, KM_MAX_CAMERAS), CAMERAS);
        bool all_gone = true;
        for (int c = 0; c < CAMERAS; c++)
            all_gone = all_gone && cs[c].state == KM_CAMERA_STATE_DISCONNECTED;
        if (disconnected_ns) {
            /* once DISCONNECTED, they stay so (no flapping to MISSING or OK) and nothing is
             * solved: no frame comes from a dead context */
            assert_true(all_gone);
            assert_int_equal(st, KM_ERR_AGAIN);
            assert_int_equal(solved, 0);
            steps_after++;
        } else if (all_gone) {
            disconnected_ns = fake_kinect_now_ns();
            frames_at_disconnect = phase.frames;
        }
    }
    assert_true(disconnected_ns != 0);
    double detect_ms = (double)(disconnected_ns - t_unplug) / 1e6;
    pthread_mutex_lock(&fkn.lock);
    uint64_t failed_events = fkn.failed_events;
    pthread_mutex_unlock(&fkn.lock);
    print_message("unplugged    DISCONNECTED after %.1f ms (%llu frames solved before, %llu "
                  "steps after), longest step %.1f ms, errors counted %llu/%llu, event loop "
                  "failures %llu\n", detect_ms, (unsigned long long)frames_at_disconnect,
                  (unsigned long long)steps_after, (double)longest_step_ns / 1e6,
                  (unsigned long long)cs[0].errors, (unsigned long long)cs[1].errors,
                  (unsigned long long)failed_events);
    assert_true(failed_events > 0);
    /* km_pipeline_step keeps its timeout (100 ms) when nothing comes: it never blocks */
    assert_true(longest_step_ns < 1000000000ull);
    assert_true(steps_after >= 5);
    /* a frame solved in the moment before the failure was seen may lack a camera; none
     * after: the frames of the phase are those before the state changed */
    assert_int_equal(phase.frames, frames_at_disconnect);
    for (int c = 0; c < CAMERAS; c++) {
        /* the capture runner counted the failure, once (the backend repeats it every 5 s,
         * not on every poll: no log flood) */
        assert_true(cs[c].errors >= 1);
        assert_true(cs[c].errors <= 2);
    }

    /* 3. clean shutdown: threads joined, both Kinects closed once */
    uint64_t t_destroy = fake_kinect_now_ns();
    km_pipeline_destroy(p);
    double destroy_ms = (double)(fake_kinect_now_ns() - t_destroy) / 1e6;
    print_message("kinect: %.2f s both (%llu frames), disconnect seen after %.1f ms, destroy "
                  "%.1f ms\n", both_s, (unsigned long long)both.frames, detect_ms, destroy_ms);
    assert_true(destroy_ms < 5000);
    for (int c = 0; c < CAMERAS; c++) {
        assert_int_equal(kinect[c]->closes, 1);
        assert_false(kinect[c]->open);
    }
    fake_kinect_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_kinects_ir_unplug),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
