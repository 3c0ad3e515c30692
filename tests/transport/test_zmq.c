/* ZeroMQ publisher on real sockets on 127.0.0.1: a SUB in the same process receives and
 * decodes both topics; with no subscriber or a stalled one, 100000 sends finish quickly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "kinema/transport.h"
#include "transport_internal.h"

#define MAX_MARKERS 128

typedef struct frame_data {
    km_marker markers[MAX_MARKERS];
    km_marker_set set;
    km_solved_frame frame;
} frame_data;

static void make_frame(frame_data *d, uint64_t number, int marker_count)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < marker_count; i++) {
        d->markers[i].id = (uint32_t)i + 1;
        d->markers[i].pos_m.x = 0.5 * i;
        d->markers[i].pos_m.y = 1.25;
        d->markers[i].pos_m.z = -0.125 * i;
        d->markers[i].residual_px = 0.25;
        d->markers[i].views = 3;
    }
    d->set.count = marker_count;
    d->set.capacity = MAX_MARKERS;
    d->set.items = d->markers;
    d->frame.frame = number;
    d->frame.capture_time_ns = km_time_now_ns();
    d->frame.solved_time_ns = d->frame.capture_time_ns + 1000;
    d->frame.publish_time_ns = d->frame.capture_time_ns + 2000;
    d->frame.camera_count = 4;
    for (int c = 0; c < 4; c++)
        d->frame.observation_count[c] = (uint16_t)(10 * c + 1);
    d->frame.markers = &d->set;
}

/* Receive one [topic][payload] message within timeout_ms; returns payload length or -1. */
static int receive(void *sub, char *topic, size_t topic_size, uint8_t *payload,
                   size_t payload_size, int timeout_ms)
{
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    int n = zmq_recv(sub, topic, topic_size - 1, 0);
    assert_true(n >= 0);
    topic[n < (int)topic_size - 1 ? n : (int)topic_size - 1] = '\0';
    int more = 0;
    size_t more_size = sizeof more;
    zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_size);
    assert_int_equal(more, 1);
    int length = zmq_recv(sub, payload, payload_size, 0);
    assert_true(length >= 0 && (size_t)length <= payload_size);
    return length;
}

static void test_sub_receives_and_decodes(void **state)
{
    (void)state;
    km_status st;
    km_zmq_pub *zp = km_zmq_pub_create("tcp://127.0.0.1:*", 1000, &st);
    assert_non_null(zp);
    assert_int_equal(st, KM_OK);
    const char *endpoint = km_zmq_pub_endpoint(zp);
    assert_non_null(strstr(endpoint, "tcp://127.0.0.1:"));
    assert_null(strchr(endpoint, '*'));

    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, endpoint), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "frame", 5), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "markers", 7), 0);

    static frame_data d;
    static uint8_t payload[65536];
    char topic[32];
    km_marker out[MAX_MARKERS];
    km_wire_frame w;
    /* The subscription reaches the PUB asynchronously: publish until something arrives. */
    int length = -1;
    uint64_t number = 0;
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    while (length < 0 && km_time_now_ns() < deadline) {
        make_frame(&d, ++number, 7);
        assert_int_equal(km_zmq_pub_send(zp, &d.frame), KM_OK);
        length = receive(sub, topic, sizeof topic, payload, sizeof payload, 20);
    }
    assert_true(length > 0);
    assert_string_equal(topic, "frame");
    assert_int_equal(km_wire_decode_frame(payload, (size_t)length, out, MAX_MARKERS, &w), KM_OK);
    uint64_t first = w.frame;
    assert_true(first >= 1 && first <= number);
    assert_int_equal(w.marker_count, 7);
    assert_int_equal(w.camera_count, 4);
    assert_int_equal(w.observation_count[3], 31);
    assert_int_equal(out[6].id, 7);
    assert_true(out[6].pos_m.x == 3.0);
    assert_true(out[6].pos_m.z == -0.75);
    /* The same frame follows on the "markers" topic. */
    length = receive(sub, topic, sizeof topic, payload, sizeof payload, 1000);
    assert_true(length > 0);
    assert_string_equal(topic, "markers");
    assert_int_equal(km_wire_decode_frame(payload, (size_t)length, out, MAX_MARKERS, &w), KM_OK);
    assert_true(w.frame == first);

    /* Now connected: the next frame arrives intact and in order. */
    make_frame(&d, 1000000, 100);
    assert_int_equal(km_zmq_pub_send(zp, &d.frame), KM_OK);
    bool seen = false;
    while (!seen && (length = receive(sub, topic, sizeof topic, payload, sizeof payload,
                                      1000)) > 0) {
        assert_int_equal(km_wire_decode_frame(payload, (size_t)length, out, MAX_MARKERS, &w),
                         KM_OK);
        seen = w.frame == 1000000;
    }
    assert_true(seen);
    assert_int_equal(w.marker_count, 100);
    assert_true(out[99].pos_m.x == 49.5);

    uint64_t sent, dropped;
    km_zmq_pub_counters(zp, &sent, &dropped);
    /* Frames sent before the subscription arrived were not encoded at all (XPUB). */
    assert_true(sent >= 4 && sent <= 2 * (number + 1));
    assert_true(dropped == 0);

    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_zmq_pub_destroy(zp);
}

static void test_no_subscriber_never_blocks(void **state)
{
    (void)state;
    km_status st;
    km_zmq_pub *zp = km_zmq_pub_create("tcp://127.0.0.1:*", 100, &st);
    assert_non_null(zp);
    static frame_data d;
    make_frame(&d, 1, 20);
    const int n = 100000;
    uint64_t t0 = km_time_now_ns();
    for (int i = 0; i < n; i++) {
        d.frame.frame = (uint64_t)i;
        km_status s = km_zmq_pub_send(zp, &d.frame);
        assert_true(s == KM_OK || s == KM_ERR_AGAIN);
    }
    double seconds = (double)(km_time_now_ns() - t0) * 1e-9;
    uint64_t sent, dropped;
    km_zmq_pub_counters(zp, &sent, &dropped);
    print_message("100000 sends without subscriber: %.3f s (%.2f us/frame)\n", seconds,
                  seconds * 1e6 / n);
    assert_true(seconds < 10.0);
    /* Nobody subscribed: no topic was even encoded. */
    assert_true(sent == 0 && dropped == 0);
    km_zmq_pub_destroy(zp);
}

static void test_stalled_subscriber_never_blocks(void **state)
{
    (void)state;
    km_status st;
    km_zmq_pub *zp = km_zmq_pub_create("tcp://127.0.0.1:*", 50, &st);
    assert_non_null(zp);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int hwm = 10, linger = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_zmq_pub_endpoint(zp)), 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "frame", 5);

    static frame_data d;
    static uint8_t payload[65536];
    char topic[32];
    /* Wait until the subscription is live (one frame arrives), then stop reading. */
    int length = -1;
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    while (length < 0 && km_time_now_ns() < deadline) {
        make_frame(&d, 0, 100);
        km_zmq_pub_send(zp, &d.frame);
        length = receive(sub, topic, sizeof topic, payload, sizeof payload, 20);
    }
    assert_true(length > 0);

    const int n = 100000;
    uint64_t t0 = km_time_now_ns();
    for (int i = 1; i <= n; i++) {
        d.frame.frame = (uint64_t)i;
        km_status s = km_zmq_pub_send(zp, &d.frame);
        assert_true(s == KM_OK || s == KM_ERR_AGAIN);
    }
    double seconds = (double)(km_time_now_ns() - t0) * 1e-9;
    print_message("100000 sends (2.4 KB) to a stalled subscriber: %.3f s\n", seconds);
    assert_true(seconds < 10.0);

    /* The subscriber resumes: it gets what fitted in the queues, the rest was dropped by
     * the PUB (libzmq drops silently per subscriber; see docs/protocol.md). */
    int received = 0;
    uint64_t last = 0;
    km_marker out[MAX_MARKERS];
    km_wire_frame w;
    while ((length = receive(sub, topic, sizeof topic, payload, sizeof payload, 200)) > 0) {
        assert_int_equal(km_wire_decode_frame(payload, (size_t)length, out, MAX_MARKERS, &w),
                         KM_OK);
        assert_true(w.frame >= last); /* in order, never duplicated or torn */
        last = w.frame;
        received++;
    }
    uint64_t sent, dropped;
    km_zmq_pub_counters(zp, &sent, &dropped);
    print_message("stalled subscriber then received %d of %d frames; sent %llu dropped %llu\n",
                  received, n, (unsigned long long)sent, (unsigned long long)dropped);
    assert_true(received < n / 2);
    assert_true(sent + dropped >= (uint64_t)n); /* one topic subscribed */

    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_zmq_pub_destroy(zp);
}


/* A SUB on 127.0.0.1 subscribed to exactly `topic`, live once a message arrived. */
static void *subscribe(void *ctx, km_zmq_pub *zp, const char *topic, frame_data *d)
{
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_zmq_pub_endpoint(zp)), 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    static uint8_t drain[65536];
    char got[32];
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    while (km_time_now_ns() < deadline) {
        km_zmq_pub_send(zp, &d->frame);
        if (receive(sub, got, sizeof got, drain, sizeof drain, 20) > 0)
            return sub;
    }
    fail_msg("subscription to %s never became live", topic);
    return NULL;
}

/* Each topic carries its sections only; a subscriber gets only its topic. */
static void test_topics_per_stream(void **state)
{
    (void)state;
    km_status st;
    km_zmq_pub *zp = km_zmq_pub_create("tcp://127.0.0.1:*", 1000, &st);
    assert_non_null(zp);
    static frame_data d;
    make_frame(&d, 1, 5);
    static km_observation obs[6];
    for (int i = 0; i < 6; i++) {
        obs[i].x = 100.5 + i;
        obs[i].y = 200.25;
        obs[i].area_px = 9;
        obs[i].camera = i % 4;
    }
    km_observation_set obs_set = {0, 0, 6, 6, obs};
    d.frame.observations = &obs_set;

    void *ctx = zmq_ctx_new();
    const char *names[] = {"frame", "markers", "obs2d"};
    void *subs[3];
    for (int i = 0; i < 3; i++)
        subs[i] = subscribe(ctx, zp, names[i], &d);
    /* Drain, then publish one known frame. */
    static uint8_t payload[65536];
    char topic[32];
    for (int i = 0; i < 3; i++)
        while (receive(subs[i], topic, sizeof topic, payload, sizeof payload, 50) > 0) {
        }
    d.frame.frame = 424242;
    assert_int_equal(km_zmq_pub_send(zp, &d.frame), KM_OK);

    km_marker markers[MAX_MARKERS];
    km_observation decoded[16];
    km_wire_storage storage = {markers, MAX_MARKERS, decoded, 16};
    km_wire_frame w;
    for (int i = 0; i < 3; i++) {
        int length = receive(subs[i], topic, sizeof topic, payload, sizeof payload, 2000);
        assert_true(length > 0);
        assert_string_equal(topic, names[i]);
        assert_int_equal(km_wire_decode(payload, (size_t)length, &storage, &w), KM_OK);
        assert_true(w.frame == 424242);
        assert_int_equal(w.has_markers, i != 2);
        assert_int_equal(w.has_observations, i != 1);
        assert_int_equal(w.section_count, i == 0 ? 2 : 1);
        if (w.has_markers)
            assert_int_equal(w.marker_count, 5);
        if (w.has_observations) {
            assert_int_equal(w.observation_total, 6);
            assert_true(decoded[5].x == 105.5 && decoded[5].y == 200.25);
            assert_int_equal(decoded[5].camera, 1);
        }
        /* Exactly one message: no other topic leaks to this subscriber. */
        assert_int_equal(receive(subs[i], topic, sizeof topic, payload, sizeof payload, 100),
                         -1);
    }
    /* Without observations there is no obs2d message, the others still come. */
    d.frame.observations = NULL;
    d.frame.frame = 424243;
    assert_int_equal(km_zmq_pub_send(zp, &d.frame), KM_OK);
    assert_true(receive(subs[0], topic, sizeof topic, payload, sizeof payload, 2000) > 0);
    assert_int_equal(receive(subs[2], topic, sizeof topic, payload, sizeof payload, 100), -1);
    /* Status/gesture text goes only to its subscribers. */
    assert_true(km_zmq_pub_wanted(zp, "frame"));
    assert_false(km_zmq_pub_wanted(zp, "status"));
    for (int i = 0; i < 3; i++)
        zmq_close(subs[i]);
    zmq_ctx_term(ctx);
    /* The unsubscriptions reach the XPUB asynchronously. */
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    while (km_zmq_pub_wanted(zp, "frame") && km_time_now_ns() < deadline)
        zmq_poll(NULL, 0, 10);
    assert_false(km_zmq_pub_wanted(zp, "frame"));
    km_zmq_pub_destroy(zp);
}

/* The latest endpoint (single part) with ZMQ_CONFLATE on the consumer's SUB: a consumer that
 * did not read for a while gets the newest frame, not a backlog. */
static void test_latest_endpoint_conflates(void **state)
{
    (void)state;
    km_status st;
    km_zmq_pub_options o = {"tcp://127.0.0.1:*", 1000, "tcp://127.0.0.1:*", NULL};
    km_zmq_pub *zp = km_zmq_pub_open(&o, &st);
    assert_non_null(zp);
    const char *latest = km_zmq_pub_latest_endpoint(zp);
    assert_non_null(strstr(latest, "tcp://127.0.0.1:"));
    assert_string_not_equal(latest, km_zmq_pub_endpoint(zp));

    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0, conflate = 1;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_CONFLATE, &conflate, sizeof conflate);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    assert_int_equal(zmq_connect(sub, latest), 0);
    static frame_data d;
    static uint8_t payload[65536];
    make_frame(&d, 0, 20);
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    bool live = false;
    for (int i = 0; i < 500 && !live; i++) {
        km_zmq_pub_send(zp, &d.frame);
        live = zmq_poll(&item, 1, 10) == 1;
    }
    assert_true(live);
    /* SUB prefetches the message zmq_poll saw (to match it against the subscriptions):
     * read it, conflation applies to what is still queued. */
    assert_true(zmq_recv(sub, payload, sizeof payload, 0) > 0);
    /* Stop reading; publish 2000 frames at 5 kHz (20 x a tracker's 240 Hz); let them settle. */
    uint64_t t0 = km_time_now_ns();
    for (int i = 1; i <= 2000; i++) {
        km_time_sleep_until_ns(t0 + (uint64_t)i * 200000u);
        d.frame.frame = (uint64_t)i;
        assert_true(km_zmq_pub_send(zp, &d.frame) == KM_OK);
    }
    zmq_poll(NULL, 0, 300);
    /* What the consumer finds now: the newest frame, at most one older one with it (libzmq's
     * conflating SUB may hold one message aside while matching subscriptions). */
    km_marker out[MAX_MARKERS];
    km_wire_frame w;
    int messages = 0, length;
    uint64_t newest = 0;
    while ((length = zmq_recv(sub, payload, sizeof payload, ZMQ_DONTWAIT)) >= 0) {
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_size);
        assert_int_equal(more, 0); /* single part: the wire message itself */
        assert_int_equal(km_wire_decode_frame(payload, (size_t)length, out, MAX_MARKERS, &w),
                         KM_OK);
        assert_true(w.frame > newest);
        newest = w.frame;
        messages++;
    }
    print_message("latest endpoint: after 2000 unread frames the consumer finds %d message(s), "
                  "the newest frame %llu\n", messages, (unsigned long long)newest);
    assert_true(messages >= 1 && messages <= 2);
    assert_true(newest == 2000);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_zmq_pub_destroy(zp);
}

static void test_bind_policy(void **state)
{
    (void)state;
    km_status st;
    assert_true(km_zmq_endpoint_is_local("tcp://127.0.0.1:5555"));
    assert_true(km_zmq_endpoint_is_local("tcp://127.1.2.3:*"));
    assert_true(km_zmq_endpoint_is_local("tcp://localhost:5555"));
    assert_true(km_zmq_endpoint_is_local("tcp://[::1]:5555"));
    assert_true(km_zmq_endpoint_is_local("ipc:///tmp/k.sock"));
    assert_true(km_zmq_endpoint_is_local("inproc://k"));
    assert_false(km_zmq_endpoint_is_local("tcp://*:5555"));
    assert_false(km_zmq_endpoint_is_local("tcp://0.0.0.0:5555"));
    assert_false(km_zmq_endpoint_is_local("tcp://10.0.0.5:5555"));
    assert_false(km_zmq_endpoint_is_local("tcp://eth0:5555"));
    assert_false(km_zmq_endpoint_is_local("tcp://127.0.0.1.evil:5555"));
    assert_false(km_zmq_endpoint_is_local("tcp://127.0.0.1;10.0.0.5:5555"));
    assert_null(km_zmq_pub_create("tcp://*:*", 10, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "CurveZMQ"));
}

static void test_create_errors(void **state)
{
    (void)state;
    km_status st;
    assert_null(km_zmq_pub_create("tcp://127.0.0.1", 10, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_null(km_zmq_pub_create("udp://127.0.0.1:5", 10, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    /* Binding a port already bound is an I/O error with the endpoint in the message. */
    km_zmq_pub *a = km_zmq_pub_create("tcp://127.0.0.1:*", 10, &st);
    assert_non_null(a);
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", km_zmq_pub_endpoint(a));
    assert_null(km_zmq_pub_create(endpoint, 10, &st));
    assert_int_equal(st, KM_ERR_IO);
    assert_non_null(strstr(km_last_error(), endpoint));
    km_zmq_pub_destroy(a);
    km_zmq_pub_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sub_receives_and_decodes),
        cmocka_unit_test(test_no_subscriber_never_blocks),
        cmocka_unit_test(test_stalled_subscriber_never_blocks),
        cmocka_unit_test(test_topics_per_stream),
        cmocka_unit_test(test_latest_endpoint_conflates),
        cmocka_unit_test(test_bind_policy),
        cmocka_unit_test(test_create_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
