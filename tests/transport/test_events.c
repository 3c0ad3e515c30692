/* Gesture events: the JSON Lines form (exact text, escaping, invalid events), the OSC
 * message a liblo receiver gets, and the ZeroMQ `gesture` topic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lo/lo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "kinema/transport.h"

static km_gesture_event make_event(void)
{
    km_gesture_event e;
    memset(&e, 0, sizeof e);
    e.type = KM_EVENT_GESTURE;
    e.t_ns = 123;
    e.t_start_ns = 100;
    snprintf(e.name, sizeof e.name, "swipe_left");
    e.person = 0;
    e.hand = KM_HAND_SIDE_RIGHT;
    e.score = 0.93;
    return e;
}

static void test_json(void **state)
{
    (void)state;
    km_gesture_event e = make_event();
    char out[512];
    size_t n = km_gesture_event_json(&e, out, sizeof out);
    /* The example line of formats.md "Events" (plus t_end_ns), byte for byte. */
    assert_string_equal(out, "{\"t_ns\":123,\"type\":\"gesture\",\"name\":\"swipe_left\","
                             "\"person\":0,\"hand\":\"right\",\"score\":0.93,"
                             "\"t_start_ns\":100,\"t_end_ns\":0}");
    assert_int_equal(n, strlen(out));
    /* Cut output reports the needed length like snprintf. */
    assert_int_equal(km_gesture_event_json(&e, out, 10), n);
    assert_int_equal(strlen(out), 9);
    e.t_start_ns = 0;
    snprintf(e.name, sizeof e.name, "a\"b\\c\n");
    e.hand = KM_HAND_SIDE_UNKNOWN;
    km_gesture_event_json(&e, out, sizeof out);
    assert_string_equal(out, "{\"t_ns\":123,\"type\":\"gesture\",\"name\":\"a\\\"b\\\\c\\n\","
                             "\"person\":0,\"hand\":\"unknown\",\"score\":0.93,"
                             "\"t_start_ns\":0,\"t_end_ns\":0}");
    km_gesture_event bad = make_event();
    bad.score = 1.5;
    assert_int_equal(km_gesture_event_json(&bad, out, sizeof out), 0);
    bad = make_event();
    bad.score = NAN;
    assert_int_equal(km_gesture_event_json(&bad, out, sizeof out), 0);
    bad = make_event();
    bad.name[0] = '\0';
    assert_int_equal(km_gesture_event_json(&bad, out, sizeof out), 0);
    bad = make_event();
    bad.person = -1;
    assert_int_equal(km_gesture_event_json(&bad, out, sizeof out), 0);
    bad = make_event();
    bad.hand = (km_hand_side)7;
    assert_int_equal(km_gesture_event_json(&bad, out, sizeof out), 0);
    km_hand_side h;
    assert_int_equal(km_hand_side_parse("left", &h), KM_OK);
    assert_int_equal(h, KM_HAND_SIDE_LEFT);
    assert_int_equal(km_hand_side_parse("Left", &h), KM_ERR_INVALID_ARGUMENT);
}

typedef struct got {
    int count;
    char types[16], name[64], hand[16];
    int person;
    float score;
} got;

#include "../common/lo_args.h"

static int on_gesture(const char *path, const char *types, lo_arg **argv, int argc,
                      lo_message msg, void *user)
{
    (void)msg;
    (void)argc;
    got *g = user;
    if (strcmp(path, "/kinema/gesture") != 0)
        return 1;
    g->count++;
    snprintf(g->types, sizeof g->types, "%s", types);
    if (strcmp(types, "sisf") == 0) {
        snprintf(g->name, sizeof g->name, "%s", &argv[0]->s);
        g->person = arg_i(argv[1]);
        snprintf(g->hand, sizeof g->hand, "%s", &argv[2]->s);
        g->score = arg_f(argv[3]);
    }
    return 0;
}

static void test_osc(void **state)
{
    (void)state;
    got g = {0};
    lo_server server = lo_server_new_with_proto(NULL, LO_UDP, NULL);
    assert_non_null(server);
    lo_server_add_method(server, NULL, NULL, on_gesture, &g);
    km_event_sender_config c = km_event_sender_config_default();
    snprintf(c.destinations[0].port, sizeof c.destinations[0].port, "%d",
             lo_server_get_port(server));
    km_status st;
    km_event_sender *s = km_event_sender_create(&c, &st);
    assert_non_null(s);
    km_gesture_event e = make_event();
    e.person = 2;
    assert_int_equal(km_event_send_gesture(s, &e), KM_OK);
    while (lo_server_recv_noblock(server, 200) > 0) {
    }
    assert_int_equal(g.count, 1);
    assert_string_equal(g.types, "sisf");
    assert_string_equal(g.name, "swipe_left");
    assert_int_equal(g.person, 2);
    assert_string_equal(g.hand, "right");
    assert_true(fabsf(g.score - 0.93f) < 1e-6f);
    e.score = -0.1;
    assert_int_equal(km_event_send_gesture(s, &e), KM_ERR_INVALID_ARGUMENT);
    km_osc_sender_stats stats;
    km_event_sender_stats(s, &stats);
    assert_true(stats.packets == 1 && stats.errors == 0);
    km_event_sender_destroy(s);
    lo_server_free(server);
}

static void test_zmq_topic(void **state)
{
    (void)state;
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    km_status st;
    km_publisher *pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_publisher_zmq_endpoint(pub)), 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "gesture", 7);
    km_gesture_event e = make_event();
    char topic[16], text[512];
    int length = -1;
    for (int i = 0; i < 500 && length < 0; i++) {
        assert_int_equal(km_publisher_send_gesture(pub, &e), KM_OK);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 10) == 1) {
            assert_int_equal(zmq_recv(sub, topic, sizeof topic, 0), 7);
            length = zmq_recv(sub, text, sizeof text - 1, 0);
        }
    }
    assert_true(length > 0);
    text[length] = '\0';
    char expected[512];
    km_gesture_event_json(&e, expected, sizeof expected);
    assert_string_equal(text, expected);
    e.score = 2.0;
    assert_int_equal(km_publisher_send_gesture(pub, &e), KM_ERR_INVALID_ARGUMENT);

    /* A hand-eye event goes to `handeye`, not to `gesture`: a subscriber to both gets each
     * event once, on its own topic. */
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "handeye", 7);
    km_gesture_event h = make_event();
    h.type = KM_EVENT_SELECT;
    h.name[0] = '\0';
    snprintf(h.target, sizeof h.target, "panel-3");
    int handeye = 0, gesture = 0;
    for (int i = 0; i < 500 && handeye == 0; i++) {
        assert_int_equal(km_publisher_send_gesture(pub, &h), KM_OK);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        while (zmq_poll(&item, 1, 10) == 1) {
            int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
            assert_true(n > 0);
            topic[n] = '\0';
            length = zmq_recv(sub, text, sizeof text - 1, 0);
            assert_true(length > 0);
            text[length] = '\0';
            handeye += strcmp(topic, "handeye") == 0;
            gesture += strcmp(topic, "gesture") == 0;
            if (strcmp(topic, "handeye") == 0) {
                assert_non_null(strstr(text, "\"type\":\"hand_eye\""));
                assert_non_null(strstr(text, "\"event\":\"select\""));
                assert_non_null(strstr(text, "\"target\":\"panel-3\""));
            }
        }
    }
    assert_true(handeye >= 1);
    assert_int_equal(gesture, 0);
    assert_true(km_gesture_event_is_handeye(KM_EVENT_GAZE_ENTER));
    assert_true(km_gesture_event_is_handeye(KM_EVENT_HAND_REACH));
    assert_false(km_gesture_event_is_handeye(KM_EVENT_GESTURE));
    assert_false(km_gesture_event_is_handeye(KM_EVENT_POSE_START));
    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_publisher_destroy(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_osc),
        cmocka_unit_test(test_zmq_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
