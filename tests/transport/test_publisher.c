/* km_publisher: the `transport:` config section (defaults, values, every validation error
 * names file:line), the send contract (capacity, stats), and the allocation count of
 * km_publisher_send with ZeroMQ only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "kinema/transport.h"

/* ---------------------------------------------------------- allocation counting
 * Linked with -Wl,--wrap=malloc,calloc,realloc: every allocation made by Kinema's own
 * (statically linked) code goes through __wrap_* (tests/common/alloc_count.h). When not
 * built with ASan, malloc itself is also interposed for the whole process, which counts
 * libzmq's allocations too. Only allocations on the thread that called
 * alloc_count_enable(true) are counted (ALLOC_COUNT_WINDOW). */
#define ALLOC_COUNT_WINDOW
#include "../common/alloc_count.h"
static atomic_long all_allocations;

#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALL 0
#else
#define COUNT_ALL 1
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void *malloc(size_t size)
{
    if (alloc_count_enabled())
        atomic_fetch_add(&all_allocations, 1);
    return __libc_malloc(size);
}
void *calloc(size_t n, size_t size)
{
    if (alloc_count_enabled())
        atomic_fetch_add(&all_allocations, 1);
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size)
{
    if (alloc_count_enabled())
        atomic_fetch_add(&all_allocations, 1);
    return __libc_realloc(p, size);
}
#endif

/* ------------------------------------------------------------------- config */

static km_status read_text(const char *text, km_publisher_config *out)
{
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "test.yaml", &st);
    assert_non_null(cfg);
    st = km_publisher_config_read(cfg, "transport", out);
    km_config_destroy(cfg);
    return st;
}

static void test_defaults(void **state)
{
    (void)state;
    km_publisher_config c = km_publisher_config_default();
    assert_true(c.zmq_enabled);
    assert_string_equal(c.zmq_endpoint, "tcp://127.0.0.1:5555");
    assert_int_equal(c.zmq_sndhwm, 1000);
    assert_true(c.osc_enabled);
    assert_string_equal(c.osc_host, "127.0.0.1");
    assert_string_equal(c.osc_port, "9000");
    assert_int_equal(c.max_markers, 512);
    assert_int_equal(c.osc_max_packet_bytes, 8192);
    assert_int_equal(c.max_rigid_bodies, 64);
    assert_int_equal(c.max_skeletons, KM_SKELETON_MAX_PEOPLE);
    assert_int_equal(c.max_hands, 16);
    assert_int_equal(c.max_events, 64);

    km_publisher_config r;
    assert_int_equal(read_text("other: 1\n", &r), KM_OK);
    assert_memory_equal(&r, &c, sizeof c);
}

static void test_values_read(void **state)
{
    (void)state;
    km_publisher_config c;
    assert_int_equal(read_text("transport:\n"
                               "  max_markers: 64\n"
                               "  max_skeletons: 2\n"
                               "  max_hands: 4\n"
                               "  zmq:\n"
                               "    enabled: true\n"
                               "    endpoint: \"tcp://127.0.0.1:6000\"\n"
                               "    sndhwm: 20\n"
                               "    latest_endpoint: \"tcp://127.0.0.1:6001\"\n"
                               "  status_interval_s: 0.25\n"
                               "  osc:\n"
                               "    enabled: false\n"
                               "    host: stage-pc.local\n"
                               "    port: 9100\n"
                               "    max_packet_bytes: 1400\n",
                               &c),
                     KM_OK);
    assert_int_equal(c.max_markers, 64);
    assert_int_equal(c.max_skeletons, 2);
    assert_int_equal(c.max_hands, 4);
    assert_true(c.zmq_enabled);
    assert_string_equal(c.zmq_endpoint, "tcp://127.0.0.1:6000");
    assert_int_equal(c.zmq_sndhwm, 20);
    assert_string_equal(c.zmq_latest_endpoint, "tcp://127.0.0.1:6001");
    assert_true(c.status_interval_ns == 250000000u);
    assert_string_equal(c.zmq_curve_secret_key_file, "");
    assert_false(c.osc_enabled);
    assert_string_equal(c.osc_host, "stage-pc.local");
    assert_string_equal(c.osc_port, "9100");
    assert_int_equal(c.osc_max_packet_bytes, 1400);
    assert_int_equal(read_text("transport:\n  zmq:\n    endpoint: ipc:///tmp/kinema.sock\n", &c),
                     KM_OK);
    assert_int_equal(read_text("transport:\n  zmq:\n    endpoint: \"tcp://[::1]:5555\"\n", &c),
                     KM_OK);
    /* Only the keys given change; the string defaults survive (no aliasing). */
    assert_int_equal(read_text("transport:\n  osc:\n    port: 9100\n", &c), KM_OK);
    assert_string_equal(c.zmq_endpoint, "tcp://127.0.0.1:5555");
    assert_string_equal(c.osc_host, "127.0.0.1");
    /* A remote bind is accepted once a CurveZMQ key file is configured. */
    assert_int_equal(read_text("transport:\n  zmq:\n    endpoint: \"tcp://*:6000\"\n"
                               "    curve_secret_key_file: /etc/kinema/server.key\n", &c),
                     KM_OK);
    assert_string_equal(c.zmq_curve_secret_key_file, "/etc/kinema/server.key");
}

/* Each bad document must fail with a message naming the file, the line and the key. */
static void expect_error(const char *text, int line, const char *key)
{
    km_publisher_config c;
    km_status st = read_text(text, &c);
    assert_int_not_equal(st, KM_OK);
    const char *msg = km_last_error();
    char where[64];
    snprintf(where, sizeof where, "test.yaml:%d", line);
    if (!strstr(msg, where) || !strstr(msg, key))
        fail_msg("error '%s' lacks '%s' or '%s'", msg, where, key);
}

static void test_validation_errors(void **state)
{
    (void)state;
    expect_error("transport:\n  zmq:\n    endpoint: \"tcp://127.0.0.1\"\n", 3, "endpoint");
    expect_error("transport:\n  zmq:\n    endpoint: \"tcp://127.0.0.1:70000\"\n", 3, "endpoint");
    expect_error("transport:\n  zmq:\n    endpoint: \"udp://127.0.0.1:5555\"\n", 3, "endpoint");
    expect_error("transport:\n  zmq:\n    endpoint: \"127.0.0.1:5555\"\n", 3, "endpoint");
    expect_error("transport:\n  zmq:\n    sndhwm: 0\n", 3, "sndhwm");
    expect_error("transport:\n  zmq:\n    enabled: maybe\n", 3, "enabled");
    expect_error("transport:\n  osc:\n    port: 99999\n", 3, "port");
    expect_error("transport:\n  osc:\n    port: \"90x\"\n", 3, "port");
    expect_error("transport:\n  osc:\n    host: \"a b\"\n", 3, "host");
    expect_error("transport:\n  osc:\n    max_packet_bytes: 100000\n", 3, "max_packet_bytes");
    expect_error("transport:\n  max_markers: many\n", 2, "max_markers");
    expect_error("transport:\n  max_markers: 0\n", 2, "max_markers");
    expect_error("transport:\n  max_skeletons: 0\n", 2, "max_skeletons");
    expect_error("transport:\n  max_events: lots\n", 2, "max_events");
    /* Typos in key names are caught, not ignored. */
    expect_error("transport:\n  zmq:\n    endpiont: \"tcp://127.0.0.1:1\"\n", 3, "endpiont");
    expect_error("transport:\n  oscc:\n    port: 1\n", 2, "oscc");
    /* Remote binds need CurveZMQ keys. */
    expect_error("transport:\n  zmq:\n    endpoint: \"tcp://*:6000\"\n", 3, "curve");
    expect_error("transport:\n  zmq:\n    endpoint: \"tcp://10.0.0.5:6000\"\n", 3, "endpoint");
    expect_error("transport:\n  zmq:\n    latest_endpoint: \"tcp://0.0.0.0:6001\"\n", 3,
                 "latest_endpoint");
    expect_error("transport:\n  zmq:\n    latest_endpoint: \"tcp://127.0.0.1\"\n", 3,
                 "latest_endpoint");
    expect_error("transport:\n  status_interval_s: -1\n", 2, "status_interval_s");
}

/* ------------------------------------------------------------------ publisher */

#define MARKERS 40

typedef struct frame_data {
    km_marker markers[MARKERS + 1];
    km_marker_set set;
    km_solved_frame frame;
} frame_data;

static void make_frame(frame_data *d, int count)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < count; i++) {
        d->markers[i].id = (uint32_t)i;
        d->markers[i].pos_m.x = 0.01 * i;
        d->markers[i].views = 2;
    }
    d->set.count = count;
    d->set.capacity = MARKERS + 1;
    d->set.items = d->markers;
    d->frame.camera_count = 8;
    d->frame.markers = &d->set;
}

static void test_send_contract_and_stats(void **state)
{
    (void)state;
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    c.max_markers = MARKERS;
    km_status st;
    km_publisher *pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    assert_non_null(strstr(km_publisher_zmq_endpoint(pub), "tcp://127.0.0.1:"));

    static frame_data d;
    make_frame(&d, MARKERS + 1);
    assert_int_equal(km_publisher_send(pub, &d.frame), KM_ERR_CAPACITY);
    make_frame(&d, MARKERS);
    d.frame.camera_count = KM_WIRE_MAX_CAMERAS + 1;
    assert_int_equal(km_publisher_send(pub, &d.frame), KM_ERR_CAPACITY);
    make_frame(&d, MARKERS);
    uint64_t before = km_time_now_ns();
    assert_int_equal(km_publisher_send(pub, &d.frame), KM_OK);
    assert_true(d.frame.publish_time_ns >= before);
    assert_true(d.frame.publish_time_ns <= km_time_now_ns());

    km_publisher_stats s;
    km_publisher_stats_get(pub, &s);
    assert_true(s.frames == 1 && s.rejected == 2);
    /* Nobody subscribed: no topic was encoded or sent. */
    assert_true(s.zmq_sent == 0 && s.zmq_dropped == 0);
    assert_true(s.osc_sent == 0 && s.osc_errors == 0);
    km_publisher_destroy(pub);
    km_publisher_destroy(NULL);

    /* Both transports off: a valid publisher that sends nowhere. */
    c.zmq_enabled = false;
    pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    assert_string_equal(km_publisher_zmq_endpoint(pub), "");
    assert_int_equal(km_publisher_send(pub, &d.frame), KM_OK);
    km_publisher_destroy(pub);

    /* Invalid endpoint at create. */
    c.zmq_enabled = true;
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1");
    assert_null(km_publisher_create(&c, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
}

static void test_send_allocations_zmq_only(void **state)
{
    (void)state;
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    c.max_markers = MARKERS;
    km_status st;
    km_publisher *pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    static frame_data d;
    make_frame(&d, MARKERS);
    /* A subscriber to "frame", so that the topic is really encoded and sent. */
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_publisher_zmq_endpoint(pub)), 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "frame", 5);
    uint8_t buffer[4096];
    bool live = false;
    for (int i = 0; i < 500 && !live; i++) {
        km_publisher_send(pub, &d.frame);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        live = zmq_poll(&item, 1, 10) == 1;
    }
    assert_true(live);
    const int frames = 1000;
    km_publisher_send(pub, &d.frame); /* warm-up */
    alloc_count_reset();
    atomic_store(&all_allocations, 0);
    alloc_count_enable(true);
    for (int i = 0; i < frames; i++) {
        d.frame.frame = (uint64_t)i;
        km_publisher_send(pub, &d.frame);
    }
    alloc_count_enable(false);
    long own = alloc_count_get(), all = atomic_load(&all_allocations);
    print_message("allocations over %d frames: Kinema code %ld, whole process %s%ld\n", frames,
                  own, COUNT_ALL ? "" : "(not counted under ASan) ", all);
    assert_int_equal(own, 0);
    /* libzmq: exactly the one zmq_msg_init_size per frame (documented in zmq_pub.c). */
    if (COUNT_ALL) {
        assert_true(all >= 1); /* the interposer sees libzmq's allocations at all */
        assert_true(all <= frames);
    }
    km_publisher_stats ps;
    km_publisher_stats_get(pub, &ps);
    assert_true(ps.zmq_sent >= (uint64_t)frames);
    while (zmq_recv(sub, buffer, sizeof buffer, ZMQ_DONTWAIT) >= 0) {
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_publisher_destroy(pub);
}


static size_t extra_status(void *user, char *out, size_t size)
{
    int n = snprintf(out, size, ",\"dropped_frames\":%d", *(int *)user);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* The `status` topic: a JSON object per interval, with the pipeline's extra members, only
 * to its subscribers; the rate is computed over the interval. */
static void test_status_topic(void **state)
{
    (void)state;
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    c.max_markers = MARKERS;
    c.status_interval_ns = 50000000u; /* 50 ms */
    km_status st;
    km_publisher *pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    int dropped = 7;
    km_publisher_set_status_fn(pub, extra_status, &dropped);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_publisher_zmq_endpoint(pub)), 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "status", 6);
    static frame_data d;
    make_frame(&d, 10);
    char topic[16], text[4096];
    int got = 0;
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    /* Frames at ~1 kHz until two status messages arrived. */
    while (got < 2 && km_time_now_ns() < deadline) {
        d.frame.frame++;
        d.frame.capture_time_ns = km_time_now_ns();
        assert_int_equal(km_publisher_send(pub, &d.frame), KM_OK);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 1) == 1) {
            int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
            assert_int_equal(n, 6);
            int length = zmq_recv(sub, text, sizeof text - 1, 0);
            assert_true(length > 0);
            text[length] = '\0';
            got++;
        }
    }
    assert_int_equal(got, 2);
    print_message("status: %s\n", text);
    assert_true(text[0] == '{' && text[strlen(text) - 1] == '}');
    assert_non_null(strstr(text, "\"type\":\"status\""));
    assert_non_null(strstr(text, "\"markers\":10,"));
    assert_non_null(strstr(text, "\"camera_count\":8,"));
    assert_non_null(strstr(text, "\"dropped_frames\":7}"));
    const char *rate = strstr(text, "\"rate_hz\":");
    assert_non_null(rate);
    double rate_hz = atof(rate + 10);
    assert_true(rate_hz > 50.0); /* ~1 kHz asked; a loaded machine is slower but not 50 Hz */
    km_publisher_stats ps;
    km_publisher_stats_get(pub, &ps);
    assert_true(ps.status_sent >= 2);
    /* The same text on demand (control socket). */
    assert_true(km_publisher_status_json(pub, km_time_now_ns(), text, sizeof text) > 0);
    assert_int_equal(km_publisher_status_json(pub, km_time_now_ns(), text, 16), 0);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_publisher_destroy(pub);
}

/* ------------------------------------------------------------- v1.2 streams */

typedef struct full_frame {
    frame_data base;
    km_rigid_pose rigid[3];
    km_rigid_definition defs[3];
    km_skeleton_pose skel[KM_SKELETON_MAX_PEOPLE + 1];
    km_hand hands[2];
    km_gesture_event events[1];
    km_camera_status cams[8];
} full_frame;

static void make_full_frame(full_frame *f)
{
    memset(f, 0, sizeof *f);
    make_frame(&f->base, 10);
    km_solved_frame *fr = &f->base.frame;
    for (int i = 0; i < 3; i++) {
        f->rigid[i].id = 10u + (uint32_t)i;
        f->rigid[i].tracked = true;
        f->rigid[i].rot.w = 1;
        f->rigid[i].pos_m.y = 0.5 * i;
        snprintf(f->defs[i].name, sizeof f->defs[i].name, "%s", i == 2 ? "q\"uote" : "wand");
        f->defs[i].id = f->rigid[i].id;
    }
    fr->rigid_bodies = f->rigid;
    fr->rigid_definitions = f->defs;
    fr->rigid_body_count = 3;
    for (int p = 0; p < 3; p++) {
        f->skel[p].person = p;
        f->skel[p].tracked = true;
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            f->skel[p].joint_pos_m[j].x = p + 0.25 * j;
            f->skel[p].joint_rot[j].w = 1;
            f->skel[p].local_rot[j].w = 1;
        }
    }
    fr->skeletons = f->skel;
    fr->skeleton_count = 3;
    f->hands[0] = km_hand_init();
    f->hands[0].landmark_valid = 1;
    f->hands[1] = km_hand_init();
    fr->hands = f->hands;
    fr->hand_count = 2;
    fr->events = f->events;
    fr->event_count = 1;
    fr->camera_status = f->cams;
}

static km_publisher *zmq_publisher(void)
{
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    c.max_markers = MARKERS;
    km_status st;
    km_publisher *pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    return pub;
}

/* A SUB to `skeleton` alone gets header + SKELETONS and nothing else. */
static void test_skeleton_topic_only(void **state)
{
    (void)state;
    km_publisher *pub = zmq_publisher();
    static full_frame f;
    make_full_frame(&f);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_publisher_zmq_endpoint(pub)), 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "skeleton", 8);
    static uint8_t buffer[65536];
    char topic[32];
    int got = 0;
    uint64_t last = 0;
    for (int i = 0; i < 2000 && got < 5; i++) {
        f.base.frame.frame = (uint64_t)i + 1;
        assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_OK);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 2) != 1)
            continue;
        int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
        assert_true(n > 0);
        topic[n] = '\0';
        assert_string_equal(topic, "skeleton");
        int length = zmq_recv(sub, buffer, sizeof buffer, 0);
        assert_true(length > 0 && length < (int)sizeof buffer);
        static km_skeleton_pose skel[KM_SKELETON_MAX_PEOPLE];
        km_wire_storage storage = {NULL, 0, NULL, 0};
        km_wire_stream_storage streams = {0};
        streams.skeletons = skel;
        streams.skeleton_capacity = KM_SKELETON_MAX_PEOPLE;
        km_wire_frame w;
        assert_int_equal(km_wire_decode_streams(buffer, (size_t)length, &storage, &streams, &w),
                         KM_OK);
        assert_int_equal(w.section_count, 1);
        assert_true(w.has_skeletons && !w.has_markers);
        assert_int_equal(w.skeleton_count, 3);
        /* a message may arrive after the poll of its own frame timed out (a loaded or
         * instrumented run): frames come in order, none from the future */
        assert_true(w.frame > last && w.frame <= f.base.frame.frame);
        last = w.frame;
        assert_true(skel[2].joint_pos_m[20].x == 2 + 0.25 * 20);
        assert_int_equal(length, 72 + 16 + 944 * 3);
        got++;
    }
    assert_int_equal(got, 5);
    /* Only `skeleton` was encoded and sent. */
    km_publisher_stats ps;
    km_publisher_stats_get(pub, &ps);
    assert_true(ps.zmq_sent >= 5 && ps.zmq_sent <= ps.frames);
    zmq_close(sub);
    zmq_ctx_term(ctx);

    /* Limits: more skeletons / rigid bodies / hands / events than configured. */
    uint64_t rejected = ps.rejected;
    f.base.frame.skeleton_count = KM_SKELETON_MAX_PEOPLE + 1;
    assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_ERR_CAPACITY);
    f.base.frame.skeleton_count = 3;
    f.base.frame.hand_count = 17;
    assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_ERR_CAPACITY);
    f.base.frame.hand_count = -1;
    assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_ERR_CAPACITY);
    f.base.frame.hand_count = 2;
    f.base.frame.rigid_body_count = 65;
    assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_ERR_CAPACITY);
    f.base.frame.rigid_body_count = 3;
    f.base.frame.event_count = 65;
    assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_ERR_CAPACITY);
    f.base.frame.event_count = 1;
    km_publisher_stats_get(pub, &ps);
    assert_true(ps.rejected == rejected + 5);
    assert_int_equal(km_publisher_send(pub, &f.base.frame), KM_OK);

    /* status: rigid body ids and names (escaped), skeleton and hand counts. */
    char text[16384];
    assert_true(km_publisher_status_json(pub, km_time_now_ns(), text, sizeof text) > 0);
    assert_non_null(strstr(text, "\"rigid_bodies\":[{\"id\":10,\"name\":\"wand\",\"tracked\":true},"));
    assert_non_null(strstr(text, "{\"id\":12,\"name\":\"q\\\"uote\",\"tracked\":true}]"));
    assert_non_null(strstr(text, "\"skeletons\":3,\"skeletons_tracked\":3,\"hands\":2"));
    km_publisher_destroy(pub);
}

/* A full frame to subscribers of every wire topic: still no allocation by Kinema. */
static void test_send_allocations_all_topics(void **state)
{
    (void)state;
    km_publisher *pub = zmq_publisher();
    static full_frame f;
    make_full_frame(&f);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(sub, km_publisher_zmq_endpoint(pub)), 0);
    static const char *const wanted[] = {"frame", "markers", "rigid", "skeleton", "hands"};
    for (int t = 0; t < 5; t++)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, wanted[t], strlen(wanted[t]));
    static uint8_t buffer[65536];
    bool seen[5] = {false};
    int kinds = 0;
    for (int i = 0; i < 3000 && kinds < 5; i++) {
        km_publisher_send(pub, &f.base.frame);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        while (zmq_poll(&item, 1, 1) == 1) {
            char topic[32];
            int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
            zmq_recv(sub, buffer, sizeof buffer, 0);
            topic[n > 0 ? n : 0] = '\0';
            for (int t = 0; t < 5; t++)
                if (!seen[t] && strcmp(topic, wanted[t]) == 0) {
                    seen[t] = true;
                    kinds++;
                }
        }
    }
    assert_int_equal(kinds, 5);
    const int frames = 500;
    alloc_count_reset();
    atomic_store(&all_allocations, 0);
    alloc_count_enable(true);
    for (int i = 0; i < frames; i++) {
        f.base.frame.frame = (uint64_t)i;
        km_publisher_send(pub, &f.base.frame);
    }
    alloc_count_enable(false);
    long own = alloc_count_get(), all = atomic_load(&all_allocations);
    print_message("all topics, %d frames: Kinema %ld allocations, process %ld\n", frames, own,
                  all);
    assert_int_equal(own, 0);
    /* libzmq: one message per topic (frame+markers differ now: 5 encodes) per frame. */
    if (COUNT_ALL)
        assert_true(all <= 5 * frames);
    while (zmq_recv(sub, buffer, sizeof buffer, ZMQ_DONTWAIT) >= 0) {
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    km_publisher_destroy(pub);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_read),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_send_contract_and_stats),
        cmocka_unit_test(test_send_allocations_zmq_only),
        cmocka_unit_test(test_status_topic),
        cmocka_unit_test(test_skeleton_topic_only),
        cmocka_unit_test(test_send_allocations_all_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
