/* Input messages: OSC packets built by liblo (an encoder we did not write) and JSON decoded
 * and validated into hand/gaze structs; every malformed form refused whole; the receiver
 * on 127.0.0.1 with liblo senders and ZeroMQ DEALER/REQ clients, error replies included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lo/lo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "kinema/transport.h"

static lo_message hand_message(int person, const char *hand, int64_t t_ns, float confidence)
{
    lo_message m = lo_message_new();
    lo_message_add_int32(m, person);
    lo_message_add_string(m, hand);
    lo_message_add_int64(m, t_ns);
    lo_message_add_float(m, confidence);
    for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++) {
        lo_message_add_float(m, 0.01f * (float)i);
        lo_message_add_float(m, 1.0f + 0.001f * (float)i);
        lo_message_add_float(m, -0.5f);
    }
    return m;
}

static lo_message gaze_message(float dx, float dy, float dz)
{
    lo_message m = lo_message_new();
    lo_message_add_int32(m, 1);
    lo_message_add_int32(m, 0); /* time 0 as 'i': python-osc sends small ints so */
    lo_message_add_float(m, 0.0f);
    lo_message_add_float(m, 1.6f);
    lo_message_add_float(m, 0.1f);
    lo_message_add_float(m, dx);
    lo_message_add_float(m, dy);
    lo_message_add_float(m, dz);
    lo_message_add_float(m, 0.75f);
    return m;
}

static size_t serialise(lo_message m, const char *path, uint8_t *buf, size_t size)
{
    size_t length = lo_message_length(m, path);
    assert_true(length <= size);
    lo_message_serialise(m, path, buf, &length);
    lo_message_free(m);
    return length;
}

static km_status decode(const uint8_t *buf, size_t length, km_input_message *out, int *count)
{
    return km_input_decode_osc(buf, length, 777, out, 8, count);
}

static void test_osc_decode(void **state)
{
    (void)state;
    uint8_t buf[2048];
    km_input_message out[8];
    int count;
    size_t n = serialise(hand_message(2, "left", 123456789012345ll, 0.9f), "/kinema/input/hand",
                         buf, sizeof buf);
    assert_int_equal(decode(buf, n, out, &count), KM_OK);
    assert_int_equal(count, 1);
    assert_int_equal(out[0].kind, KM_INPUT_HAND);
    assert_int_equal(out[0].hand.person, 2);
    assert_int_equal(out[0].hand.hand, KM_HAND_SIDE_LEFT);
    assert_true(out[0].hand.time_ns == 123456789012345ull);
    assert_true(fabs(out[0].hand.confidence - 0.9) < 1e-6);
    assert_true(fabs(out[0].hand.landmarks_m[20].x - 0.2) < 1e-6);
    assert_true(fabs(out[0].hand.landmarks_m[20].y - 1.02) < 1e-6);

    n = serialise(gaze_message(0.0f, 0.0f, 2.0f), "/kinema/input/gaze", buf, sizeof buf);
    assert_int_equal(decode(buf, n, out, &count), KM_OK);
    assert_int_equal(out[0].kind, KM_INPUT_GAZE);
    assert_true(out[0].gaze.time_ns == 777); /* 0 -> receive time */
    assert_true(out[0].gaze.direction.z == 1.0); /* normalised */
    assert_true(fabs(out[0].gaze.origin_m.y - 1.6) < 1e-6);

    /* A bundle of both: two messages, in order. */
    lo_bundle b = lo_bundle_new(LO_TT_IMMEDIATE);
    lo_bundle_add_message(b, "/kinema/input/gaze", gaze_message(1, 0, 0));
    lo_bundle_add_message(b, "/kinema/input/hand", hand_message(0, "right", 5, 1.0f));
    size_t length = lo_bundle_length(b);
    lo_bundle_serialise(b, buf, &length);
    lo_bundle_free_recursive(b);
    assert_int_equal(decode(buf, length, out, &count), KM_OK);
    assert_int_equal(count, 2);
    assert_int_equal(out[1].kind, KM_INPUT_HAND);
    assert_int_equal(out[1].hand.hand, KM_HAND_SIDE_RIGHT);

    /* All or nothing: one bad message in the bundle refuses both. */
    b = lo_bundle_new(LO_TT_IMMEDIATE);
    lo_bundle_add_message(b, "/kinema/input/gaze", gaze_message(1, 0, 0));
    lo_bundle_add_message(b, "/kinema/input/gaze", gaze_message(0, 0, 0));
    length = lo_bundle_length(b);
    lo_bundle_serialise(b, buf, &length);
    lo_bundle_free_recursive(b);
    assert_int_not_equal(decode(buf, length, out, &count), KM_OK);
    assert_int_equal(count, 0);
    assert_non_null(strstr(km_last_error(), "direction is zero"));

    struct {
        lo_message m;
        const char *path, *needle;
    } bad[] = {
        {hand_message(0, "middle", 1, 0.5f), "/kinema/input/hand", "left"},
        {hand_message(0, "left", 1, 1.5f), "/kinema/input/hand", "confidence"},
        {hand_message(0, "left", -5, 0.5f), "/kinema/input/hand", "time_ns"},
        {hand_message(-1, "left", 1, 0.5f), "/kinema/input/hand", "person"},
        {hand_message(0, "left", 1, 0.5f), "/kinema/input/hands", "unknown address"},
        {gaze_message(0, 0, 1), "/kinema/input/hand", "expects ,ishf"},
        {hand_message(0, "left", 1, 0.5f), "/kinema/input/gaze", "expects ,ihfffffff"},
        {gaze_message(NAN, 0, 1), "/kinema/input/gaze", "not finite"},
        {gaze_message(1e6f, 0, 1), "/kinema/input/gaze", "not finite or beyond"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = serialise(bad[i].m, bad[i].path, buf, sizeof buf);
        assert_int_not_equal(decode(buf, n, out, &count), KM_OK);
        assert_int_equal(count, 0);
        if (!strstr(km_last_error(), bad[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, km_last_error(), bad[i].needle);
    }
    /* A landmark of the wrong type. */
    lo_message m = hand_message(0, "left", 1, 0.5f);
    lo_message_add_int32(m, 3);
    n = serialise(m, "/kinema/input/hand", buf, sizeof buf);
    assert_int_not_equal(decode(buf, n, out, &count), KM_OK);
    /* Truncated packets at every length: refused, never read out of bounds (ASan). */
    n = serialise(hand_message(2, "left", 1, 0.9f), "/kinema/input/hand", buf, sizeof buf);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(km_input_decode_osc(buf, cut, 0, out, 8, &count), KM_OK);
}

static const char *json_hand(char *buf, size_t size, const char *extra)
{
    size_t at = (size_t)snprintf(buf, size, "{\"type\":\"hand\",\"person\":1,\"hand\":\"right\","
                                            "\"t_ns\":99,\"confidence\":0.5,%s\"landmarks\":[",
                                 extra);
    for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s[%d,1.5,-0.25]", i ? "," : "", i);
    snprintf(buf + at, size - at, "]}");
    return buf;
}

static km_status json(const char *text, km_input_message *m)
{
    return km_input_decode_json(text, strlen(text), 555, m);
}

static void test_json_decode(void **state)
{
    (void)state;
    km_input_message m;
    char text[2048];
    assert_int_equal(json(json_hand(text, sizeof text, ""), &m), KM_OK);
    assert_int_equal(m.kind, KM_INPUT_HAND);
    assert_int_equal(m.hand.hand, KM_HAND_SIDE_RIGHT);
    assert_true(m.hand.time_ns == 99);
    assert_true(m.hand.landmarks_m[20].x == 20.0 && m.hand.landmarks_m[20].z == -0.25);
    assert_int_equal(json("{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[0,0,-3]}",
                          &m), KM_OK);
    assert_int_equal(m.kind, KM_INPUT_GAZE);
    assert_true(m.gaze.direction.z == -1.0 && m.gaze.time_ns == 555);
    assert_true(m.gaze.confidence == 1.0);

    static const char *const bad[] = {
        "{\"type\":\"gaze\",\"origin\":[0,1.6,0]}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6],\"direction\":[0,0,1]}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6,\"x\"],\"direction\":[0,0,1]}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[0,0,0]}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[0,0,1],\"person\":1.5}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[0,0,1],\"t_ns\":-1}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[0,0,1],\"confidence\":2}",
        "{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[0,0,1],\"extra\":1}",
        "{\"type\":\"face\"}", "[1]", "{\"type\":\"gaze\"", "",
        "{\"type\":\"hand\",\"hand\":\"left\",\"landmarks\":[[0,0,0]]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (json(bad[i], &m) == KM_OK)
            fail_msg("accepted %s", bad[i]);
    assert_int_not_equal(json(json_hand(text, sizeof text, "\"hand\":\"left\","), &m), KM_OK);
    assert_non_null(strstr(km_last_error(), "duplicate key"));
}

typedef struct errors {
    int count;
    char text[600];
} errors;

static int on_error(const char *path, const char *types, lo_arg **argv, int argc,
                    lo_message msg, void *user)
{
    (void)msg;
    (void)argc;
    errors *e = user;
    if (strcmp(path, "/kinema/input/error") == 0 && strcmp(types, "s") == 0) {
        e->count++;
        snprintf(e->text, sizeof e->text, "%s", &argv[0]->s);
    }
    return 0;
}

static int poll_until(km_input_receiver *r, km_input_message *out, int want)
{
    int total = 0;
    for (int i = 0; i < 400 && total < want; i++) {
        int n;
        assert_int_equal(km_input_poll(r, out + total, 16 - total, &n), KM_OK);
        total += n;
        if (total < want)
            zmq_poll(NULL, 0, 5);
    }
    return total;
}

static void test_receiver(void **state)
{
    (void)state;
    km_input_config c = km_input_config_default();
    snprintf(c.osc_port, sizeof c.osc_port, "0");
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    km_status st;
    km_input_receiver *r = km_input_receiver_create(&c, &st);
    assert_non_null(r);
    assert_true(km_input_receiver_osc_port(r) > 0);
    km_input_message out[16];

    /* OSC from a liblo server socket, so that error replies come back to it. */
    errors e = {0};
    lo_server server = lo_server_new_with_proto(NULL, LO_UDP, NULL);
    lo_server_add_method(server, NULL, NULL, on_error, &e);
    char port[16];
    snprintf(port, sizeof port, "%d", km_input_receiver_osc_port(r));
    lo_address to = lo_address_new("127.0.0.1", port);
    lo_message m = hand_message(0, "left", 1, 0.5f);
    assert_true(lo_send_message_from(to, server, "/kinema/input/hand", m) > 0);
    lo_message_free(m);
    assert_int_equal(poll_until(r, out, 1), 1);
    assert_int_equal(out[0].kind, KM_INPUT_HAND);
    m = gaze_message(0, 0, 0);
    assert_true(lo_send_message_from(to, server, "/kinema/input/gaze", m) > 0);
    lo_message_free(m);
    assert_int_equal(poll_until(r, out, 1), 0);
    while (lo_server_recv_noblock(server, 200) > 0) {
    }
    assert_int_equal(e.count, 1);
    assert_non_null(strstr(e.text, "gaze direction is zero"));
    lo_address_free(to);
    lo_server_free(server);

    /* ZeroMQ: a DEALER sends fire-and-forget; a REQ gets {"ok":true}; errors answered. */
    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(dealer, km_input_receiver_zmq_endpoint(r)), 0);
    assert_int_equal(zmq_connect(req, km_input_receiver_zmq_endpoint(r)), 0);
    const char *gaze = "{\"type\":\"gaze\",\"origin\":[0,1.6,0],\"direction\":[1,0,0]}";
    assert_true(zmq_send(dealer, gaze, strlen(gaze), 0) > 0);
    assert_int_equal(poll_until(r, out, 1), 1);
    assert_int_equal(out[0].kind, KM_INPUT_GAZE);
    char text[2048], reply[1024];
    json_hand(text, sizeof text, "");
    assert_true(zmq_send(req, text, strlen(text), 0) > 0);
    assert_int_equal(poll_until(r, out, 1), 1);
    int n = zmq_recv(req, reply, sizeof reply - 1, 0);
    assert_true(n > 0);
    reply[n] = '\0';
    assert_string_equal(reply, "{\"ok\":true}");
    const char *bad = "{\"type\":\"gaze\",\"origin\":[0,1.6,0]}";
    assert_true(zmq_send(dealer, bad, strlen(bad), 0) > 0);
    assert_int_equal(poll_until(r, out, 1), 0);
    n = zmq_recv(dealer, reply, sizeof reply - 1, 0);
    assert_true(n > 0);
    reply[n] = '\0';
    assert_non_null(strstr(reply, "{\"ok\":false,\"error\":\"input: \\\"direction\\\""));
    km_input_stats stats;
    km_input_receiver_stats(r, &stats);
    assert_true(stats.accepted == 3 && stats.rejected == 2);
    zmq_close(dealer);
    zmq_close(req);
    zmq_ctx_term(ctx);
    km_input_receiver_destroy(r);

    /* Non-loopback ZeroMQ without keys is refused. */
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://*:*");
    assert_null(km_input_receiver_create(&c, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_osc_decode),
        cmocka_unit_test(test_json_decode),
        cmocka_unit_test(test_receiver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
