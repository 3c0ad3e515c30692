/* The control socket's commands that act on the running pipeline, over a real ZeroMQ REQ
 * socket on 127.0.0.1 while the pipeline runs the embedded default in process:
 *   start_recording / stop_recording: the recording holds the rig, one observation record and
 *     one solved frame (wire bytes, decodable) per frame set, and the pipeline keeps going;
 *   define_rigid: a body made of tracked markers is tracked from the next frame on;
 *   bad requests (no such marker, recording twice, stop when idle) get an error reply and
 *   change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

#include "kinema/pipeline.h"

typedef struct fixture {
    km_pipeline *p;
    void *ctx, *req;
    km_solved_frame last;          /* copied scalars of the last frame */
    km_marker last_markers[512];
    int last_marker_count;
    int rigid_count_seen;
    int new_body_tracked;          /* frames in which the defined body was tracked */
    uint32_t new_body_id;
} fixture;

static void on_frame(void *user, const km_solved_frame *frame)
{
    fixture *fx = user;
    fx->last = *frame;
    fx->last_marker_count = frame->markers ? frame->markers->count : 0;
    if (fx->last_marker_count > 512) fx->last_marker_count = 512;
    memcpy(fx->last_markers, frame->markers->items,
           (size_t)fx->last_marker_count * sizeof *fx->last_markers);
    fx->rigid_count_seen = frame->rigid_body_count;
    for (int b = 0; b < frame->rigid_body_count; b++)
        if (fx->new_body_id && frame->rigid_definitions[b].id == fx->new_body_id &&
            frame->rigid_bodies[b].tracked)
            fx->new_body_tracked++;
}

static void step(fixture *fx, int sets)
{
    km_pipeline_stats s0, s;
    km_pipeline_stats_get(fx->p, &s0);
    uint64_t give_up = km_time_now_ns() + 120000000000ull;
    do {
        int solved;
        km_status st = km_pipeline_step(fx->p, 50000000ull, &solved);
        assert_true(st == KM_OK || st == KM_ERR_AGAIN);
        km_pipeline_stats_get(fx->p, &s);
        assert_true(km_time_now_ns() < give_up);
    } while (s.framesets < s0.framesets + (uint64_t)sets);
}

/* Send a request and run the pipeline (which answers it from km_pipeline_step) until the
 * reply is there. */
static void request(fixture *fx, const char *text, char *reply, size_t size)
{
    assert_int_equal(zmq_send(fx->req, text, strlen(text), 0), (int)strlen(text));
    uint64_t give_up = km_time_now_ns() + 30000000000ull;
    for (;;) {
        int solved;
        km_pipeline_step(fx->p, 10000000ull, &solved);
        int n = zmq_recv(fx->req, reply, size - 1, ZMQ_DONTWAIT);
        if (n >= 0) {
            reply[n < (int)size - 1 ? n : (int)size - 1] = '\0';
            printf("  %s -> %s\n", text, reply);
            return;
        }
        assert_true(km_time_now_ns() < give_up);
    }
}

static void setup_fixture(fixture *fx, int port)
{
    km_pipeline_config cfg = km_pipeline_config_default();
    cfg.realtime = false;
    cfg.pool_frames = 8;
    cfg.publish_enabled = true;
    cfg.publish.osc_enabled = false;
    snprintf(cfg.publish.zmq_endpoint, sizeof cfg.publish.zmq_endpoint, "tcp://127.0.0.1:%d",
             port);
    cfg.control.enabled = true;
    snprintf(cfg.control.endpoint, sizeof cfg.control.endpoint, "tcp://127.0.0.1:%d",
             port + 1);
    km_status st;
    fx->p = km_pipeline_create(&cfg, &st);
    if (!fx->p) fail_msg("km_pipeline_create: %s", km_last_error());
    km_pipeline_set_frame_callback(fx->p, on_frame, fx);
    assert_int_equal(km_pipeline_start(fx->p), KM_OK);
    fx->ctx = zmq_ctx_new();
    fx->req = zmq_socket(fx->ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(fx->req, ZMQ_LINGER, &linger, sizeof linger);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port + 1);
    assert_int_equal(zmq_connect(fx->req, ep), 0);
}

static void teardown_fixture(fixture *fx)
{
    zmq_close(fx->req);
    zmq_ctx_term(fx->ctx);
    km_pipeline_destroy(fx->p);
}

static void test_recording_on_request(void **state)
{
    (void)state;
    fixture fx;
    memset(&fx, 0, sizeof fx);
    int port = 21000 + (int)(km_time_now_ns() % 8000) * 2;
    setup_fixture(&fx, port);
    step(&fx, 30);

    char path[] = "/tmp/kinema-test-control-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char text[700], reply[4096];
    request(&fx, "{\"cmd\":\"stop_recording\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    assert_non_null(strstr(reply, "not recording"));

    snprintf(text, sizeof text, "{\"cmd\":\"start_recording\",\"path\":\"%s\"}", path);
    request(&fx, text, reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":true"));
    request(&fx, text, reply, sizeof reply); /* twice: refused, the first goes on */
    assert_non_null(strstr(reply, "already recording"));
    step(&fx, 120);
    request(&fx, "{\"cmd\":\"stop_recording\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":true"));
    char *fr = strstr(reply, "\"frames\":");
    assert_non_null(fr);
    long frames = strtol(fr + 9, NULL, 10);
    assert_true(frames >= 120);

    /* What was written: the rig, and per frame set one observation record and one solved
     * frame that decodes to the same frame number. */
    km_status st;
    km_recording *rec = km_recording_open(path, &st);
    if (!rec) fail_msg("%s", km_last_error());
    assert_non_null(km_recording_rig(rec));
    assert_int_equal(km_recording_rig(rec)->camera_count, 8);
    assert_int_equal(km_recording_stream_count(rec), 2);
    const km_recording_stream *obs = km_recording_stream_get(rec, 0);
    const km_recording_stream *solved = km_recording_stream_get(rec, 1);
    assert_int_equal(obs->kind, KM_RECORDING_STREAM_OBSERVATIONS);
    assert_int_equal(solved->kind, KM_RECORDING_STREAM_SOLVED);
    assert_int_equal((long)obs->records, frames);
    assert_int_equal((long)solved->records, frames);
    km_record r;
    km_marker markers[512];
    long decoded = 0, with_markers = 0;
    while (km_recording_next(rec, 1, &r) == KM_OK) {
        km_wire_frame wf;
        assert_int_equal(km_wire_decode_frame(r.payload, r.payload_bytes, markers, 512, &wf),
                         KM_OK);
        assert_int_equal(wf.frame, r.sequence);
        decoded++;
        with_markers += wf.marker_count > 30;
    }
    printf("recording on request: %ld frame sets, %ld solved frames decoded, %ld with > 30 "
           "markers, %llu observation records\n", frames, decoded, with_markers,
           (unsigned long long)obs->records);
    assert_int_equal(decoded, frames);
    assert_int_equal(with_markers, frames);
    km_recording_close(rec);
    unlink(path);

    /* A path that cannot be written: error reply, nothing changes. */
    request(&fx, "{\"cmd\":\"start_recording\",\"path\":\"/nonexistent-dir/x.kmr\"}", reply,
            sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    step(&fx, 10);
    teardown_fixture(&fx);
}

static void test_define_rigid(void **state)
{
    (void)state;
    fixture fx;
    memset(&fx, 0, sizeof fx);
    int port = 21000 + (int)(km_time_now_ns() % 8000) * 2;
    setup_fixture(&fx, port);
    step(&fx, 60);
    int before = fx.rigid_count_seen;
    assert_true(before >= 2); /* the synthetic head and prop */

    char reply[4096], text[512];
    request(&fx, "{\"cmd\":\"define_rigid\",\"name\":\"ghost\",\"markers\":[900001,900002,"
                 "900003]}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    assert_non_null(strstr(reply, "not tracked"));
    assert_int_equal(fx.rigid_count_seen, before);

    /* The actor's four pelvis markers (LASI RASI LPSI RPSI ride one rigid segment): the
     * tracked markers nearest to their true positions in the last frame. */
    static const char *const pelvis[4] = {"LASI", "RASI", "LPSI", "RPSI"};
    const km_synthetic_scene *scene = km_pipeline_scene(fx.p);
    km_synthetic_marker truth[KM_SYNTHETIC_MAX_MARKERS];
    int nt = km_synthetic_scene_markers(scene, km_synthetic_scene_frame_time(scene, fx.last.frame),
                                        truth, KM_SYNTHETIC_MAX_MARKERS);
    uint32_t ids[4];
    int n = 0;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < nt; i++) {
            if (strcmp(truth[i].label, pelvis[k]) != 0) continue;
            for (int j = 0; j < fx.last_marker_count; j++)
                if (km_vec3_dist(fx.last_markers[j].pos_m, truth[i].pos_m) < 0.005)
                    ids[n++] = fx.last_markers[j].id;
            break;
        }
    assert_true(n >= 3);
    int len = snprintf(text, sizeof text, "{\"cmd\":\"define_rigid\",\"name\":\"pelvis\","
                                          "\"markers\":[");
    for (int k = 0; k < n; k++) len += snprintf(text + len, sizeof text - (size_t)len, "%s%u",
                                                k ? "," : "", ids[k]);
    snprintf(text + len, sizeof text - (size_t)len, "]}");
    request(&fx, text, reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":true"));
    char *id = strstr(reply, "\"id\":");
    assert_non_null(id);
    fx.new_body_id = (uint32_t)strtoul(id + 5, NULL, 10);
    step(&fx, 5);
    assert_int_equal(fx.rigid_count_seen, before + 1);
    /* Same name again: refused. */
    request(&fx, text, reply, sizeof reply);
    assert_non_null(strstr(reply, "exists"));
    step(&fx, 60);
    printf("define_rigid: body %u from %d markers tracked in %d frames since (>= 65 solved)\n",
           fx.new_body_id, n, fx.new_body_tracked);
    assert_true(fx.new_body_tracked >= 55);
    teardown_fixture(&fx);
}

/* calibrate: the flow of actions against the running pipeline. The embedded default shows an
 * actor, not a wand: the session collects, the solve finds too few wand views and says so,
 * apply is refused, the running rig is untouched (the successful solve from a wand wave is
 * tested in tests/calib/test_session.c and, live, in tests/integration). */
static void test_calibrate_actions(void **state)
{
    (void)state;
    fixture fx;
    memset(&fx, 0, sizeof fx);
    int port = 21000 + (int)(km_time_now_ns() % 8000) * 2;
    setup_fixture(&fx, port);
    step(&fx, 10);
    char reply[8192];
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"status\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "no calibration running"));
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"wave\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"start\",\"path\":\"/nonexistent.yaml\"}",
            reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"start\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"state\":\"collecting\""));
    step(&fx, 120);
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"apply\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false")); /* nothing solved yet */
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"solve\"}", reply, sizeof reply);
    /* either refused at once (no wand view kept) or solving, then failed */
    uint64_t give_up = km_time_now_ns() + 60000000000ull;
    while (strstr(reply, "\"state\":\"solving\"")) {
        step(&fx, 5);
        request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"status\"}", reply, sizeof reply);
        assert_true(km_time_now_ns() < give_up);
    }
    assert_null(strstr(reply, "\"state\":\"done\""));
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"apply\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    request(&fx, "{\"cmd\":\"calibrate\",\"action\":\"cancel\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":true"));
    /* the pipeline still solves with its own rig */
    step(&fx, 30);
    assert_true(fx.last_marker_count > 30);
    teardown_fixture(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recording_on_request),
        cmocka_unit_test(test_define_rigid),
        cmocka_unit_test(test_calibrate_actions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
