/* pipeline/node.c: the solver side of multi-host. Real ZeroMQ on 127.0.0.1: the test plays
 * two camera nodes (XPUB sockets sending obs2d messages the way a node does) and checks
 * how the solver merges them by time, orders observations by camera, refuses a message
 * from the wrong node, reports a silent node and goes on without it; and the config keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include <cmocka.h>

#include "kinema/pipeline.h"
#include "../../pipeline/node.h"

#define CAMERAS 3
#define PERIOD_NS 8333333ull

typedef struct fixture {
    void *context;
    void *pub[2];
    char endpoint[2][128];
    km_node_solver *solver;
    km_observation items[CAMERAS * 8];
    km_observation_set obs;
} fixture;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One node's message for `camera`: its blobs at x = 100 * camera + i. */
static void send_frame(fixture *f, int node, int camera, uint64_t frame, uint64_t time_ns,
                       int blobs)
{
    km_observation o[4];
    km_observation_set set = {0};
    set.items = o;
    set.capacity = 4;
    for (int i = 0; i < blobs; i++) {
        o[i].x = 100.0 * camera + i;
        o[i].y = 7.0;
        o[i].area_px = 12.0;
        o[i].camera = camera;
    }
    set.count = blobs;
    km_solved_frame sf;
    memset(&sf, 0, sizeof sf);
    sf.frame = frame;
    sf.capture_time_ns = time_ns;
    sf.camera_count = camera + 1;
    sf.observation_count[camera] = (uint16_t)blobs;
    sf.observations = &set;
    uint8_t buf[1024];
    size_t len = 0;
    assert_int_equal(km_wire_encode(&sf, KM_WIRE_WITH_OBS2D, buf, sizeof buf, &len), KM_OK);
    assert_true(zmq_send(f->pub[node], "obs2d", 5, ZMQ_SNDMORE) == 5);
    assert_true(zmq_send(f->pub[node], buf, len, 0) == (int)len);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->context = zmq_ctx_new();
    km_pipeline_config cfg = km_pipeline_config_default();
    cfg.role = KM_PIPELINE_ROLE_SOLVER;
    cfg.solver_node_count = 2;
    cfg.solver_timeout_ns = 300000000ull;
    cfg.solver_node_cameras[0] = 0x3; /* cameras 0, 1 */
    cfg.solver_node_cameras[1] = 0x4; /* camera 2 */
    for (int n = 0; n < 2; n++) {
        f->pub[n] = zmq_socket(f->context, ZMQ_XPUB);
        int linger = 0;
        zmq_setsockopt(f->pub[n], ZMQ_LINGER, &linger, sizeof linger);
        assert_int_equal(zmq_bind(f->pub[n], "tcp://127.0.0.1:*"), 0);
        size_t size = sizeof f->endpoint[n];
        zmq_getsockopt(f->pub[n], ZMQ_LAST_ENDPOINT, f->endpoint[n], &size);
        snprintf(cfg.solver_nodes[n], sizeof cfg.solver_nodes[n], "%s", f->endpoint[n]);
    }
    km_status st;
    f->solver = km_node_solver_create(&cfg, CAMERAS, 8, 120.0, &st);
    assert_non_null(f->solver);
    /* Wait until both subscriptions arrived (XPUB hands them over): nothing is lost. */
    for (int n = 0; n < 2; n++) {
        zmq_pollitem_t item = {f->pub[n], 0, ZMQ_POLLIN, 0};
        assert_int_equal(zmq_poll(&item, 1, 5000), 1);
        char sub[32];
        assert_true(zmq_recv(f->pub[n], sub, sizeof sub, 0) >= 1);
        assert_int_equal(sub[0], 1);
    }
    f->obs.items = f->items;
    f->obs.capacity = CAMERAS * 8;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    km_node_solver_destroy(f->solver);
    for (int n = 0; n < 2; n++) zmq_close(f->pub[n]);
    zmq_ctx_term(f->context);
    free(f);
    return 0;
}

/* Poll up to ~2 s for the next set. */
static bool next_set(fixture *f, km_solved_frame *out, bool *complete, int *present)
{
    for (int i = 0; i < 2000; i++) {
        uint64_t now = km_time_now_ns();
        km_node_solver_poll(f->solver, now);
        memset(out, 0, sizeof *out);
        if (km_node_solver_pop(f->solver, now, &f->obs, out, complete, present)) return true;
        sleep_ms(1);
    }
    return false;
}

static void test_merges_by_time_in_camera_order(void **state)
{
    fixture *f = *state;
    uint64_t t0 = km_time_now_ns();
    /* Node 1 (camera 2) runs ahead; node 0 sends camera 1 before camera 0; times jitter
     * by up to a tenth of a period. */
    for (uint64_t k = 0; k < 4; k++) send_frame(f, 1, 2, k, t0 + k * PERIOD_NS + 300000, 1);
    for (uint64_t k = 0; k < 4; k++) {
        send_frame(f, 0, 1, k, t0 + k * PERIOD_NS - 200000, 2);
        send_frame(f, 0, 0, k, t0 + k * PERIOD_NS, (int)k % 3); /* 0 blobs at k = 0, 3 */
    }
    for (uint64_t k = 0; k < 4; k++) {
        km_solved_frame out;
        bool complete = false;
        int present = 0;
        assert_true(next_set(f, &out, &complete, &present));
        assert_true(complete);
        assert_int_equal(present, 3);
        assert_int_equal(f->obs.frame, k);
        /* The set's time is its lowest camera's. */
        assert_int_equal(out.capture_time_ns, t0 + k * PERIOD_NS);
        int n0 = (int)k % 3;
        assert_int_equal(out.observation_count[0], n0);
        assert_int_equal(out.observation_count[1], 2);
        assert_int_equal(out.observation_count[2], 1);
        assert_int_equal(f->obs.count, n0 + 3);
        for (int i = 1; i < f->obs.count; i++)
            assert_true(f->obs.items[i - 1].camera <= f->obs.items[i].camera);
        assert_float_equal(f->obs.items[f->obs.count - 1].x, 200.0, 1e-9);
    }
    uint64_t messages;
    int missing;
    km_node_solver_counts(f->solver, &messages, &missing);
    assert_int_equal(messages, 12);
    assert_int_equal(missing, 0);
}

static void test_refuses_foreign_camera(void **state)
{
    fixture *f = *state;
    uint64_t t0 = km_time_now_ns();
    send_frame(f, 0, 2, 0, t0, 1); /* camera 2 belongs to node 1 */
    send_frame(f, 0, 0, 1, t0 + PERIOD_NS, 1);
    send_frame(f, 0, 1, 1, t0 + PERIOD_NS, 1);
    send_frame(f, 1, 2, 1, t0 + PERIOD_NS, 1);
    km_solved_frame out;
    bool complete;
    int present;
    assert_true(next_set(f, &out, &complete, &present));
    assert_int_equal(f->obs.frame, 1); /* the refused message made no set */
    assert_true(complete);
    char json[2048];
    assert_true(km_node_solver_status_json(f->solver, json, sizeof json) > 0);
    assert_non_null(strstr(json, "\"rejected\":1"));
}

static void test_silent_node_is_missing_and_solver_goes_on(void **state)
{
    fixture *f = *state;
    uint64_t t0 = km_time_now_ns();
    send_frame(f, 0, 0, 0, t0, 1);
    send_frame(f, 0, 1, 0, t0, 1);
    send_frame(f, 1, 2, 0, t0, 1);
    km_solved_frame out;
    bool complete;
    int present;
    assert_true(next_set(f, &out, &complete, &present));
    assert_true(complete);
    /* Node 1 goes silent; node 0 keeps sending. The first set waits for the timeout... */
    uint64_t start = km_time_now_ns();
    for (uint64_t k = 1; k <= 40; k++) {
        send_frame(f, 0, 0, k, t0 + k * PERIOD_NS, 1);
        send_frame(f, 0, 1, k, t0 + k * PERIOD_NS, 1);
        sleep_ms(10);
        km_node_solver_poll(f->solver, km_time_now_ns());
    }
    int solved = 0;
    while (next_set(f, &out, &complete, &present)) {
        assert_false(complete);
        assert_int_equal(present, 2);
        assert_int_equal(out.observation_count[2], 0);
        solved++;
        if (solved == 40) break;
    }
    assert_int_equal(solved, 40);
    assert_true(km_time_now_ns() - start >= 300000000ull);
    uint64_t messages;
    int missing;
    km_node_solver_counts(f->solver, &messages, &missing);
    assert_int_equal(missing, 1);
    char json[2048];
    assert_true(km_node_solver_status_json(f->solver, json, sizeof json) > 0);
    assert_non_null(strstr(json, "\"alive\":false"));
    assert_false(km_node_solver_ended(f->solver, km_time_now_ns()));
    /* Node 0 falls silent too: once both are missing and nothing is pending, it ended. */
    sleep_ms(400);
    km_node_solver_poll(f->solver, km_time_now_ns());
    assert_true(km_node_solver_ended(f->solver, km_time_now_ns()));
}

static km_status read_text(const char *text, km_pipeline_config *out)
{
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "test.yaml", &st);
    if (!cfg) return st;
    *out = km_pipeline_config_default();
    st = km_pipeline_config_read(cfg, out);
    km_config_destroy(cfg);
    return st;
}

static void test_config_keys(void **state)
{
    (void)state;
    km_pipeline_config c;
    assert_int_equal(read_text("role: node\nnode: {cameras: [4, 5], publish: "
                               "\"tcp://127.0.0.1:7000\", wait_ms: 50}\n", &c), KM_OK);
    assert_int_equal(c.role, KM_PIPELINE_ROLE_NODE);
    assert_int_equal(c.node_camera_count, 2);
    assert_int_equal(c.node_cameras[1], 5);
    assert_string_equal(c.node_publish, "tcp://127.0.0.1:7000");
    assert_int_equal(c.node_wait_ns, 50000000ull);
    assert_int_equal(read_text("role: solver\nsolver:\n  timeout_ms: 250\n  nodes:\n"
                               "    - {data: \"tcp://a:1\", control: \"tcp://a:2\", "
                               "cameras: [0, 2]}\n    - {data: \"tcp://b:1\", cameras: [1]}\n",
                               &c), KM_OK);
    assert_int_equal(c.role, KM_PIPELINE_ROLE_SOLVER);
    assert_int_equal(c.solver_node_count, 2);
    assert_int_equal(c.solver_node_cameras[0], 0x5);
    assert_int_equal(c.solver_node_cameras[1], 0x2);
    assert_string_equal(c.solver_controls[0], "tcp://a:2");
    assert_string_equal(c.solver_controls[1], "");
    assert_int_equal(c.solver_timeout_ns, 250000000ull);
    /* Errors: unknown role, node keys without role node, a missing camera list, a camera
     * listed twice, a typo. */
    assert_int_equal(read_text("role: camera\n", &c), KM_ERR_PARSE);
    assert_int_equal(read_text("node: {cameras: [0]}\n", &c), KM_ERR_PARSE);
    assert_int_equal(read_text("role: node\nnode: {publish: \"tcp://x:1\"}\n", &c),
                     KM_ERR_PARSE);
    assert_int_equal(read_text("role: node\nnode: {cameras: [1, 1]}\n", &c), KM_ERR_PARSE);
    assert_int_equal(read_text("role: solver\nsolver: {nodes: [{data: x, camras: [0]}]}\n", &c),
                     KM_ERR_PARSE);
    assert_int_equal(read_text("role: solver\nsolver: {timeout_ms: 100}\n", &c), KM_ERR_PARSE);
}

int main(void)
{
    km_log_set_level(KM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merges_by_time_in_camera_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_camera, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_node_is_missing_and_solver_goes_on, setup,
                                        teardown),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
