/* Control socket: the strict JSON reader, request validation (every command, every kind of
 * malformed request gets an error and calls no handler), replies built by handlers, the
 * REP socket on 127.0.0.1 with a real REQ client, the loopback-only rule and CurveZMQ. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "kinema/transport.h"
#include "transport_internal.h"

static int parse(const char *text, km_json_token *tokens, int capacity)
{
    int count = -1;
    km_status st = km_json_tokens_parse(text, strlen(text), tokens, capacity, &count);
    return st ? -1 : count;
}

static void test_json_reader(void **state)
{
    (void)state;
    km_json_token t[64];
    const char *doc = "{\"a\": [1, -2.5e3, true, null], \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\"}}";
    assert_int_equal(parse(doc, t, 64), 11); /* object, 3 keys, array + 4, object, string */
    int a = km_json_token_member(doc, t, 0, "a");
    assert_int_equal(t[a].type, KM_JTOK_ARRAY);
    assert_int_equal(t[a].children, 4);
    assert_true(t[a + 2].number == -2500.0);
    int b = km_json_token_member(doc, t, 0, "b");
    int c = km_json_token_member(doc, t, b, "c");
    char out[32];
    assert_true(km_json_token_string(doc, &t[c], out, sizeof out));
    assert_string_equal(out, "x\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(km_json_token_member(doc, t, 0, "zz"), -1);
    assert_int_equal(km_json_token_member(doc, t, a, "a"), -1); /* not an object */
    /* \u0000 parses but cannot become a C string. */
    const char *nul = "\"a\\u0000b\"";
    assert_int_equal(parse(nul, t, 64), 1);
    assert_false(km_json_token_string(nul, &t[0], out, sizeof out));
    assert_false(km_json_token_string(doc, &t[c], out, 4)); /* does not fit */
    assert_false(km_json_token_string(doc, &t[c], out, 7)); /* x, e-acute 2, emoji 4, NUL */
    assert_true(km_json_token_string(doc, &t[c], out, 8));
    /* A 63-character rigid name fits name[64] exactly; 64 characters do not. */
    km_control_request r;
    char req[256];
    snprintf(req, sizeof req, "{\"cmd\":\"define_rigid\",\"name\":\"%s\",\"markers\":[1,2,3]}",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk");
    assert_int_equal(km_control_parse_request(req, strlen(req), &r), KM_OK);
    assert_int_equal(strlen(r.name), 63);
    snprintf(req, sizeof req, "{\"cmd\":\"define_rigid\",\"name\":\"%s\",\"markers\":[1,2,3]}",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl");
    assert_int_not_equal(km_control_parse_request(req, strlen(req), &r), KM_OK);

    static const char *const bad[] = {
        "", " ", "{", "{\"a\":1,}", "[1,]", "[01]", "[1.]", "[.5]", "[-]", "[1e]", "NaN",
        "[Infinity]", "'a'", "{a:1}", "{\"a\" 1}", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"a\tb\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "{\"a\":1,\"a\":2}", "[1] 2", "tru", "nul", "[1e999]", "\"abc",
        "[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", /* 17 levels */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], t, 64) != -1)
            fail_msg("accepted malformed JSON #%zu: %s", i, bad[i]);
        assert_non_null(strstr(km_last_error(), "JSON: offset"));
    }
    /* 16 levels are fine; too many tokens is an error, not an overflow. */
    assert_true(parse("[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", t, 64) > 0);
    assert_int_equal(parse("[1,2,3,4,5,6,7,8]", t, 4), -1);
}

static km_status parse_request(const char *text, km_control_request *out)
{
    return km_control_parse_request(text, strlen(text), out);
}

static void expect_refused(const char *text, const char *needle)
{
    km_control_request r;
    km_status st = parse_request(text, &r);
    if (st == KM_OK)
        fail_msg("accepted %s", text);
    if (!strstr(km_last_error(), needle))
        fail_msg("error for %s is '%s', lacks '%s'", text, km_last_error(), needle);
}

static void test_request_validation(void **state)
{
    (void)state;
    km_control_request r;
    assert_int_equal(parse_request("{\"cmd\":\"status\"}", &r), KM_OK);
    assert_int_equal(r.command, KM_CONTROL_STATUS);
    assert_int_equal(parse_request("{\"cmd\":\"list_cameras\",\"id\":7}", &r), KM_OK);
    assert_int_equal(r.command, KM_CONTROL_LIST_CAMERAS);
    assert_int_equal(parse_request("{\"cmd\":\"start_recording\",\"path\":\"/tmp/take 1.kmr\","
                                   "\"duration_s\":12.5}", &r), KM_OK);
    assert_string_equal(r.path, "/tmp/take 1.kmr");
    assert_true(r.duration_s == 12.5);
    assert_int_equal(parse_request("{\"cmd\":\"stop_recording\"}", &r), KM_OK);
    assert_int_equal(parse_request("{\"cmd\":\"reload_calibration\"}", &r), KM_OK);
    assert_string_equal(r.path, "");
    assert_int_equal(parse_request("{\"cmd\":\"reload_calibration\",\"path\":\"rig.yaml\"}", &r),
                     KM_OK);
    assert_int_equal(parse_request("{\"id\":\"x\",\"cmd\":\"define_rigid\",\"name\":\"wand-1\","
                                   "\"markers\":[4,9,12,30]}", &r), KM_OK);
    assert_int_equal(r.command, KM_CONTROL_DEFINE_RIGID);
    assert_string_equal(r.name, "wand-1");
    assert_int_equal(r.marker_count, 4);
    assert_int_equal(r.marker_ids[3], 30);

    expect_refused("[1]", "must be a JSON object");
    expect_refused("{}", "missing \"cmd\"");
    expect_refused("{\"cmd\":3}", "\"cmd\" must be one of");
    expect_refused("{\"cmd\":\"reboot\"}", "unknown command \"reboot\"");
    expect_refused("{\"cmd\":\"status\",\"verbose\":true}", "unknown member \"verbose\"");
    expect_refused("{\"cmd\":\"status\",\"path\":\"x\"}", "unknown member \"path\"");
    expect_refused("{\"cmd\":\"start_recording\"}", "needs \"path\"");
    expect_refused("{\"cmd\":\"start_recording\",\"path\":\"\"}", "is empty");
    expect_refused("{\"cmd\":\"start_recording\",\"path\":5}", "must be a string");
    expect_refused("{\"cmd\":\"start_recording\",\"path\":\"a\",\"duration_s\":-1}",
                   "duration_s");
    expect_refused("{\"cmd\":\"start_recording\",\"path\":\"a\",\"duration_s\":\"10\"}",
                   "duration_s");
    expect_refused("{\"cmd\":\"define_rigid\",\"markers\":[1,2,3]}", "needs \"name\"");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"a b\",\"markers\":[1,2,3]}", "name");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"w\"}", "needs \"markers\"");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"w\",\"markers\":[1,2]}", "3..32");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"w\",\"markers\":[1,2,2]}", "twice");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"w\",\"markers\":[1,2,3.5]}", "integer");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"w\",\"markers\":[1,2,-3]}", "integer");
    expect_refused("{\"cmd\":\"define_rigid\",\"name\":\"w\",\"markers\":[1,2,4294967296]}",
                   "integer");
    expect_refused("{\"cmd\":\"status\",\"id\":[1]}", "\"id\"");
    expect_refused("{\"cmd\":\"status\"", "malformed request");
    expect_refused("{\"cmd\":\"status\",\"cmd\":\"stop_recording\"}", "duplicate key");
}

typedef struct calls {
    int count;
    km_control_request last;
    km_status result;
} calls;

static km_status handler(void *user, const km_control_request *req, km_control_reply *reply)
{
    calls *c = user;
    c->count++;
    c->last = *req;
    if (c->result)
        return km_error(c->result, "recorder: disk full");
    km_control_reply_add_string(reply, "path", req->path);
    km_control_reply_add_int(reply, "frames", 42);
    km_control_reply_add_double(reply, "rate_hz", 239.5);
    km_control_reply_add_bool(reply, "recording", true);
    assert_int_equal(km_control_reply_add_json(reply, "cameras", "[0,1,{\"n\":\"c\\\"2\"}]"),
                     KM_OK);
    assert_int_equal(km_control_reply_add_json(reply, "bad", "[1,"), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_control_reply_add_int(reply, "Bad Key", 1), KM_ERR_INVALID_ARGUMENT);
    return KM_OK;
}

static km_control *make_control(void)
{
    km_control_config c = km_control_config_default();
    snprintf(c.endpoint, sizeof c.endpoint, "tcp://127.0.0.1:*");
    km_status st;
    km_control *ctl = km_control_create(&c, &st);
    assert_non_null(ctl);
    return ctl;
}

static const char *handle(km_control *ctl, const char *request)
{
    static char out[8192];
    size_t n = km_control_handle(ctl, request, strlen(request), out, sizeof out);
    assert_true(n > 0 && n == strlen(out));
    /* Every reply is itself strict JSON. */
    km_json_token t[128];
    assert_true(parse(out, t, 128) > 0);
    return out;
}

static void test_dispatch(void **state)
{
    (void)state;
    km_control *ctl = make_control();
    calls c = {0};
    km_control_set_handler(ctl, KM_CONTROL_START_RECORDING, handler, &c);
    const char *reply = handle(ctl, "{\"cmd\":\"start_recording\",\"path\":\"/tmp/\\\"q\\\".kmr\","
                                     "\"id\":\"req-1\"}");
    assert_string_equal(reply, "{\"ok\":true,\"cmd\":\"start_recording\",\"id\":\"req-1\","
                               "\"path\":\"/tmp/\\\"q\\\".kmr\",\"frames\":42,\"rate_hz\":239.5,"
                               "\"recording\":true,\"cameras\":[0,1,{\"n\":\"c\\\"2\"}]}");
    assert_int_equal(c.count, 1);
    assert_string_equal(c.last.path, "/tmp/\"q\".kmr");
    /* Malformed requests never reach the handler. */
    static const char *const bad[] = {
        "{\"cmd\":\"start_recording\"}", "{\"cmd\":\"start_recording\",\"path\":1}",
        "not json", "{\"cmd\":\"start_recording\",\"path\":\"a\",}", "",
        "{\"cmd\":\"start_recording\",\"path\":\"a\",\"extra\":0}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reply = handle(ctl, bad[i]);
        assert_non_null(strstr(reply, "\"ok\":false"));
        assert_non_null(strstr(reply, "\"error\":\"control: "));
    }
    assert_int_equal(c.count, 1);
    /* The id is echoed in error replies too. */
    reply = handle(ctl, "{\"cmd\":\"nope\",\"id\":12}");
    assert_non_null(strstr(reply, "\"id\":12"));
    /* A handler failure: ok false, its message, nothing it added. */
    c.result = KM_ERR_IO;
    reply = handle(ctl, "{\"cmd\":\"start_recording\",\"path\":\"x\"}");
    assert_string_equal(reply, "{\"ok\":false,\"cmd\":\"start_recording\","
                               "\"error\":\"recorder: disk full\"}");
    /* No handler. */
    reply = handle(ctl, "{\"cmd\":\"define_rigid\",\"name\":\"w\",\"markers\":[1,2,3]}");
    assert_non_null(strstr(reply, "not available"));
    /* status without a handler but with a publisher. */
    km_publisher_config pc = km_publisher_config_default();
    pc.zmq_enabled = false;
    pc.osc_enabled = false;
    km_status st;
    km_publisher *pub = km_publisher_create(&pc, &st);
    assert_non_null(pub);
    km_control_set_publisher(ctl, pub);
    reply = handle(ctl, "{\"cmd\":\"status\"}");
    assert_non_null(strstr(reply, "{\"ok\":true,\"cmd\":\"status\",\"status\":{\"type\":"
                                  "\"status\""));
    km_publisher_destroy(pub);
    /* Oversized request. */
    char big[70000];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"cmd\":\"status\"}", 16);
    char out[1024];
    size_t n = km_control_handle(ctl, big, sizeof big, out, sizeof out);
    assert_true(n > 0);
    assert_non_null(strstr(out, "at most 65536"));
    km_control_destroy(ctl);
}

/* A REQ client on 127.0.0.1; the server is polled in this thread like the pipeline does. */
static void roundtrip(km_control *ctl, void *req, const char *request, char *reply, size_t size)
{
    assert_true(zmq_send(req, request, strlen(request), 0) >= 0);
    int got = -1;
    for (int i = 0; i < 500 && got < 0; i++) {
        int handled;
        assert_int_equal(km_control_poll(ctl, &handled), KM_OK);
        got = zmq_recv(req, reply, size - 1, ZMQ_DONTWAIT);
        if (got < 0)
            zmq_poll(NULL, 0, 5);
    }
    assert_true(got > 0);
    reply[got] = '\0';
}

static void test_socket(void **state)
{
    (void)state;
    km_control *ctl = make_control();
    calls c = {0};
    km_control_set_handler(ctl, KM_CONTROL_STOP_RECORDING, handler, &c);
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(req, km_control_endpoint(ctl)), 0);
    char reply[4096];
    roundtrip(ctl, req, "{\"cmd\":\"stop_recording\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "{\"ok\":true,\"cmd\":\"stop_recording\""));
    roundtrip(ctl, req, "{\"cmd\":", reply, sizeof reply);
    assert_non_null(strstr(reply, "{\"ok\":false,\"error\":\"control: malformed request: JSON: "
                                  "offset 7"));
    /* A multipart request: refused, and the socket keeps working. */
    assert_true(zmq_send(req, "{\"cmd\":", 7, ZMQ_SNDMORE) >= 0);
    roundtrip(ctl, req, "\"status\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "one message frame"));
    roundtrip(ctl, req, "{\"cmd\":\"stop_recording\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "\"ok\":true"));
    assert_int_equal(c.count, 2);
    /* Nothing waiting: poll returns at once. */
    int handled = -1;
    uint64_t t0 = km_time_now_ns();
    assert_int_equal(km_control_poll(ctl, &handled), KM_OK);
    assert_int_equal(handled, 0);
    assert_true(km_time_now_ns() - t0 < 50000000u);
    zmq_close(req);
    zmq_ctx_term(ctx);
    km_control_destroy(ctl);
}

static void test_bind_rule_and_curve(void **state)
{
    (void)state;
    km_control_config c = km_control_config_default();
    snprintf(c.endpoint, sizeof c.endpoint, "tcp://0.0.0.0:*");
    km_status st;
    assert_null(km_control_create(&c, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "refusing to bind tcp://0.0.0.0:* without CurveZMQ"));
    if (!zmq_has("curve")) {
        print_message("libzmq without CurveZMQ: curve part skipped\n");
        return;
    }
    char server_public[41], server_secret[41], client_public[41], client_secret[41];
    assert_int_equal(zmq_curve_keypair(server_public, server_secret), 0);
    assert_int_equal(zmq_curve_keypair(client_public, client_secret), 0);
    char path[] = "/tmp/kinema-test-curve-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char text[128];
    int n = snprintf(text, sizeof text, "#   ZeroMQ CURVE **Secret** Certificate\ncurve\n"
                     "    secret-key = \"%s\"\n", server_secret);
    assert_int_equal(write(fd, text, (size_t)n), n);
    close(fd);
    snprintf(c.curve_secret_key_file, sizeof c.curve_secret_key_file, "%s", path);
    km_control *ctl = km_control_create(&c, &st);
    assert_non_null(ctl);
    const char *endpoint = km_control_endpoint(ctl);
    const char *port = strrchr(endpoint, ':');
    char target[64];
    snprintf(target, sizeof target, "tcp://127.0.0.1%s", port);
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(req, ZMQ_CURVE_SERVERKEY, server_public, 41);
    zmq_setsockopt(req, ZMQ_CURVE_PUBLICKEY, client_public, 41);
    zmq_setsockopt(req, ZMQ_CURVE_SECRETKEY, client_secret, 41);
    assert_int_equal(zmq_connect(req, target), 0);
    char reply[4096];
    roundtrip(ctl, req, "{\"cmd\":\"status\"}", reply, sizeof reply);
    assert_non_null(strstr(reply, "not available")); /* answered, over CurveZMQ */
    zmq_close(req);
    /* A client without the server key gets nothing. */
    void *plain = zmq_socket(ctx, ZMQ_REQ);
    zmq_setsockopt(plain, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(plain, target), 0);
    zmq_send(plain, "{\"cmd\":\"status\"}", 16, ZMQ_DONTWAIT);
    int got = -1;
    for (int i = 0; i < 40 && got < 0; i++) {
        km_control_poll(ctl, NULL);
        got = zmq_recv(plain, reply, sizeof reply, ZMQ_DONTWAIT);
        zmq_poll(NULL, 0, 5);
    }
    assert_true(got < 0);
    zmq_close(plain);
    zmq_ctx_term(ctx);
    km_control_destroy(ctl);
    /* A malformed key file is refused with its name. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "short\n", 6), 6);
    close(fd);
    assert_null(km_control_create(&c, &st));
    assert_int_equal(st, KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), path));
    unlink(path);
}

static km_status read_text(const char *text, km_control_config *out)
{
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "c.yaml", &st);
    assert_non_null(cfg);
    st = km_control_config_read(cfg, "transport.control", out);
    km_config_destroy(cfg);
    return st;
}

static void test_config(void **state)
{
    (void)state;
    km_control_config c;
    assert_int_equal(read_text("x: 1\n", &c), KM_OK);
    assert_string_equal(c.endpoint, "tcp://127.0.0.1:5556");
    assert_true(c.enabled);
    assert_int_equal(read_text("transport:\n  control:\n    endpoint: \"tcp://127.0.0.1:7000\"\n"
                               "    max_request_bytes: 1024\n", &c), KM_OK);
    assert_string_equal(c.endpoint, "tcp://127.0.0.1:7000");
    assert_int_equal(c.max_request_bytes, 1024);
    assert_int_not_equal(read_text("transport:\n  control:\n    endpoint: \"tcp://*:7000\"\n",
                                   &c), KM_OK);
    assert_non_null(strstr(km_last_error(), "c.yaml:3"));
    assert_non_null(strstr(km_last_error(), "curve_secret_key_file"));
    assert_int_equal(read_text("transport:\n  control:\n    endpoint: \"tcp://*:7000\"\n"
                               "    curve_secret_key_file: /etc/k.key\n", &c), KM_OK);
    assert_int_not_equal(read_text("transport:\n  control:\n    endpont: x\n", &c), KM_OK);
    assert_non_null(strstr(km_last_error(), "endpont"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_request_validation),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_socket),
        cmocka_unit_test(test_bind_rule_and_curve),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
