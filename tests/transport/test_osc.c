/* OSC publisher against liblo's own receiver (a server thread on 127.0.0.1:<free port>):
 * /kinema/frame and /kinema/marker arrive with the documented type tags and values, in
 * bundles time-tagged with the capture time, split when a frame exceeds the packet size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lo/lo.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kinema/transport.h"
#include "transport_internal.h"

#define MAX_RECEIVED 512

typedef struct received_marker {
    int32_t id;
    float x, y, z, residual;
    int32_t views;
} received_marker;

/* Filled by the liblo server thread, read by the test thread under the mutex. */
typedef struct receiver {
    pthread_mutex_t lock;
    int bundles;
    lo_timetag timetags[64];
    int frames;
    int64_t frame_number, capture_time_ns;
    int32_t marker_count;
    int markers;
    received_marker marker[MAX_RECEIVED];
    /* v1.2 streams */
    int rigids, skeletons, joints, hands;
    int32_t rigid_id[4], rigid_tracked[4];
    char rigid_name[4][64];
    float rigid_qw[4], rigid_y[4];
    int32_t skeleton_tracked[4], skeleton_joint_count[4];
    float joint_x[4][KM_JOINT_COUNT], joint_qy[4][KM_JOINT_COUNT];
    int32_t hand_side, hand_valid;
    float hand_landmark1_x, hand_centre_z;
    int unexpected;          /* messages with another path or type tags */
    char unexpected_what[128];
} receiver;

#include "../common/lo_args.h"

static int on_bundle_start(lo_timetag time, void *user)
{
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->bundles < 64)
        r->timetags[r->bundles] = time;
    r->bundles++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_bundle_end(void *user)
{
    (void)user;
    return 0;
}

static int on_frame(const char *path, const char *types, lo_arg **argv, int argc,
                    lo_message msg, void *user)
{
    (void)path, (void)types, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    r->frames++;
    r->frame_number = arg_h(argv[0]);
    r->capture_time_ns = arg_h(argv[1]);
    r->marker_count = arg_i(argv[2]);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_marker(const char *path, const char *types, lo_arg **argv, int argc,
                     lo_message msg, void *user)
{
    (void)path, (void)types, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->markers < MAX_RECEIVED) {
        received_marker *m = &r->marker[r->markers];
        m->id = arg_i(argv[0]);
        m->x = arg_f(argv[1]);
        m->y = arg_f(argv[2]);
        m->z = arg_f(argv[3]);
        m->residual = arg_f(argv[4]);
        m->views = arg_i(argv[5]);
    }
    r->markers++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_rigid(const char *path, const char *types, lo_arg **argv, int argc,
                    lo_message msg, void *user)
{
    (void)path, (void)types, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->rigids < 4) {
        int k = r->rigids;
        r->rigid_id[k] = arg_i(argv[0]);
        snprintf(r->rigid_name[k], sizeof r->rigid_name[k], "%s", (const char *)argv[1]);
        r->rigid_y[k] = arg_f(argv[3]);
        r->rigid_qw[k] = arg_f(argv[8]);
        r->rigid_tracked[k] = arg_i(argv[10]);
    }
    r->rigids++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_skeleton(const char *path, const char *types, lo_arg **argv, int argc,
                       lo_message msg, void *user)
{
    (void)path, (void)types, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    int person = arg_i(argv[0]);
    if (person >= 0 && person < 4) {
        r->skeleton_tracked[person] = arg_i(argv[1]);
        r->skeleton_joint_count[person] = arg_i(argv[2]);
    }
    r->skeletons++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_joint(const char *path, const char *types, lo_arg **argv, int argc,
                    lo_message msg, void *user)
{
    (void)path, (void)types, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    int person = arg_i(argv[0]), joint = arg_i(argv[1]);
    if (person >= 0 && person < 4 && joint >= 0 && joint < KM_JOINT_COUNT) {
        r->joint_x[person][joint] = arg_f(argv[2]);
        r->joint_qy[person][joint] = arg_f(argv[6]);
    }
    r->joints++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_hand(const char *path, const char *types, lo_arg **argv, int argc,
                   lo_message msg, void *user)
{
    (void)path, (void)types, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    r->hand_side = arg_i(argv[1]);
    r->hand_valid = arg_i(argv[3]);
    r->hand_centre_z = arg_f(argv[7]);
    r->hand_landmark1_x = arg_f(argv[8 + 3]);
    r->hands++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* Matches whatever the typed methods above did not: a wrong path or wrong type tags. */
static int on_other(const char *path, const char *types, lo_arg **argv, int argc,
                    lo_message msg, void *user)
{
    (void)argv, (void)argc, (void)msg;
    receiver *r = user;
    pthread_mutex_lock(&r->lock);
    r->unexpected++;
    snprintf(r->unexpected_what, sizeof r->unexpected_what, "%s %s", path, types);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void on_error(int num, const char *msg, const char *where)
{
    fprintf(stderr, "liblo server error %d: %s (%s)\n", num, msg, where ? where : "");
}

typedef struct server {
    lo_server_thread thread;
    receiver r;
    char port[16];
} server;

static void server_start(server *s)
{
    memset(&s->r, 0, sizeof s->r);
    pthread_mutex_init(&s->r.lock, NULL);
    s->thread = lo_server_thread_new_with_proto(NULL, LO_UDP, on_error);
    assert_non_null(s->thread);
    lo_server_thread_add_method(s->thread, "/kinema/frame", "hhi", on_frame, &s->r);
    lo_server_thread_add_method(s->thread, "/kinema/marker", "iffffi", on_marker, &s->r);
    lo_server_thread_add_method(s->thread, "/kinema/rigid", "isffffffffii", on_rigid, &s->r);
    lo_server_thread_add_method(s->thread, "/kinema/skeleton", "iiifi", on_skeleton, &s->r);
    lo_server_thread_add_method(s->thread, "/kinema/joint", "iifffffff", on_joint, &s->r);
    lo_server_thread_add_method(s->thread, "/kinema/hand",
                                "iiiifffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
                                "ffffffff", on_hand, &s->r);
    lo_server_thread_add_method(s->thread, NULL, NULL, on_other, &s->r);
    lo_server_add_bundle_handlers(lo_server_thread_get_server(s->thread), on_bundle_start,
                                  on_bundle_end, &s->r);
    snprintf(s->port, sizeof s->port, "%d", lo_server_thread_get_port(s->thread));
    assert_int_equal(lo_server_thread_start(s->thread), 0);
}

static void server_stop(server *s)
{
    lo_server_thread_stop(s->thread);
    lo_server_thread_free(s->thread);
    pthread_mutex_destroy(&s->r.lock);
}

/* Wait until `markers` marker messages arrived (or 5 s). */
static void wait_markers(server *s, int frames, int markers)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&s->r.lock);
        bool done = s->r.frames >= frames && s->r.markers >= markers;
        pthread_mutex_unlock(&s->r.lock);
        if (done)
            return;
        struct timespec ms10 = {0, 10000000};
        nanosleep(&ms10, NULL);
    }
}

typedef struct frame_data {
    km_marker markers[64];
    km_marker_set set;
    km_solved_frame frame;
} frame_data;

static void make_frame(frame_data *d, int marker_count)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < marker_count; i++) {
        d->markers[i].id = 100u + (uint32_t)i;
        d->markers[i].pos_m.x = 0.5 + i;
        d->markers[i].pos_m.y = -0.25 * i;
        d->markers[i].pos_m.z = 2.0;
        d->markers[i].residual_px = 0.125;
        d->markers[i].views = i % 8 + 2;
    }
    d->set.count = marker_count;
    d->set.capacity = 64;
    d->set.items = d->markers;
    d->frame.frame = 123456789012ull;
    d->frame.capture_time_ns = km_time_now_ns() - 5000000; /* 5 ms ago */
    d->frame.camera_count = 2;
    d->frame.markers = &d->set;
}

static void test_frame_and_markers_arrive_typed(void **state)
{
    (void)state;
    static server s;
    server_start(&s);
    km_status st;
    km_osc_pub *op = km_osc_pub_create("127.0.0.1", s.port, 64, 8192, &st);
    assert_non_null(op);
    static frame_data d;
    make_frame(&d, 5);
    lo_timetag before;
    lo_timetag_now(&before);
    assert_int_equal(km_osc_pub_send(op, &d.frame), KM_OK);
    wait_markers(&s, 1, 5);

    pthread_mutex_lock(&s.r.lock);
    assert_int_equal(s.r.unexpected, 0);
    assert_int_equal(s.r.bundles, 1);
    assert_int_equal(s.r.frames, 1);
    assert_true(s.r.frame_number == 123456789012ll);
    assert_true(s.r.capture_time_ns == (int64_t)d.frame.capture_time_ns);
    assert_int_equal(s.r.marker_count, 5);
    assert_int_equal(s.r.markers, 5);
    for (int i = 0; i < 5; i++) {
        received_marker *m = &s.r.marker[i];
        assert_int_equal(m->id, 100 + i);
        assert_true(m->x == (float)(0.5 + i));
        assert_true(m->y == (float)(-0.25 * i));
        assert_true(m->z == 2.0f);
        assert_true(m->residual == 0.125f);
        assert_int_equal(m->views, i % 8 + 2);
    }
    /* The time tag is the capture time on the wall clock: 5 ms before `before`. */
    double age = lo_timetag_diff(before, s.r.timetags[0]);
    print_message("time tag %.3f ms before the send\n", age * 1e3);
    assert_true(age > 0.004 && age < 0.050);
    pthread_mutex_unlock(&s.r.lock);

    uint64_t sent, errors;
    km_osc_pub_counters(op, &sent, &errors);
    assert_true(sent == 1 && errors == 0);
    km_osc_pub_destroy(op);
    server_stop(&s);
}

static void test_large_frame_split_into_bundles(void **state)
{
    (void)state;
    assert_int_equal(km_osc_markers_per_bundle(8192), 156);
    assert_int_equal(km_osc_markers_per_bundle(512), 8);
    static server s;
    server_start(&s);
    km_status st;
    km_osc_pub *op = km_osc_pub_create("127.0.0.1", s.port, 64, 512, &st);
    assert_non_null(op);
    static frame_data d;
    make_frame(&d, 20);
    assert_int_equal(km_osc_pub_send(op, &d.frame), KM_OK);
    wait_markers(&s, 1, 20);

    pthread_mutex_lock(&s.r.lock);
    assert_int_equal(s.r.unexpected, 0);
    assert_int_equal(s.r.bundles, 3);   /* 8 + 8 + 4 markers */
    assert_int_equal(s.r.frames, 1);    /* /kinema/frame only in the first bundle */
    assert_int_equal(s.r.marker_count, 20);
    assert_int_equal(s.r.markers, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(s.r.marker[i].id, 100 + i);
    for (int b = 1; b < 3; b++) {
        assert_int_equal(s.r.timetags[b].sec, s.r.timetags[0].sec);
        assert_int_equal(s.r.timetags[b].frac, s.r.timetags[0].frac);
    }
    pthread_mutex_unlock(&s.r.lock);
    uint64_t sent, errors;
    km_osc_pub_counters(op, &sent, &errors);
    assert_true(sent == 3 && errors == 0);

    /* An empty frame is one bundle with /kinema/frame only. */
    make_frame(&d, 0);
    d.frame.frame = 7;
    assert_int_equal(km_osc_pub_send(op, &d.frame), KM_OK);
    wait_markers(&s, 2, 20);
    pthread_mutex_lock(&s.r.lock);
    assert_int_equal(s.r.frames, 2);
    assert_true(s.r.frame_number == 7);
    assert_int_equal(s.r.marker_count, 0);
    pthread_mutex_unlock(&s.r.lock);

    km_osc_pub_destroy(op);
    server_stop(&s);
}

/* v1.2 streams at 512-byte packets: rigid bodies (with names), skeleton headers and the
 * tracked person's 21 joints, a hand; every message typed as documented, split over
 * bundles with the markers' time tag. */
static void test_streams_messages(void **state)
{
    (void)state;
    static server s;
    server_start(&s);
    km_status st;
    km_osc_pub *op = km_osc_pub_create("127.0.0.1", s.port, 64, 512, &st);
    assert_non_null(op);
    static frame_data d;
    make_frame(&d, 3);
    static km_rigid_pose rigid[2];
    static km_rigid_definition defs[2];
    memset(rigid, 0, sizeof rigid);
    for (int i = 0; i < 2; i++) {
        rigid[i].id = 7u + (uint32_t)i;
        rigid[i].tracked = i == 0;
        rigid[i].pos_m = km_vec3_make(0, 1.5 + i, 0);
        rigid[i].rot = km_quat_identity();
    }
    snprintf(defs[0].name, sizeof defs[0].name, "wand");
    memset(defs[1].name, 'n', sizeof defs[1].name - 1); /* 63 characters */
    defs[1].name[sizeof defs[1].name - 1] = '\0';
    d.frame.rigid_bodies = rigid;
    d.frame.rigid_definitions = defs;
    d.frame.rigid_body_count = 2;
    static km_skeleton_pose skel[2];
    memset(skel, 0, sizeof skel);
    for (int p = 0; p < 2; p++) {
        skel[p].person = p;
        skel[p].tracked = p == 1;
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            skel[p].joint_pos_m[j] = km_vec3_make(0.125 * j, 1, 0);
            km_quat q = {0, 0.5, 0, 0.75};
            skel[p].joint_rot[j] = q;
        }
    }
    d.frame.skeletons = skel;
    d.frame.skeleton_count = 2;
    static km_hand hand;
    hand = km_hand_init();
    hand.side = KM_HAND_SIDE_RIGHT;
    hand.landmark_valid = 3;
    hand.landmark_m[1] = km_vec3_make(0.25, 0, 0);
    hand.centre_valid = true;
    hand.centre_m = km_vec3_make(0, 0, -2.5);
    d.frame.hands = &hand;
    d.frame.hand_count = 1;
    assert_int_equal(km_osc_pub_send(op, &d.frame), KM_OK);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&s.r.lock);
        bool done = s.r.hands >= 1 && s.r.joints >= KM_JOINT_COUNT && s.r.markers >= 3;
        pthread_mutex_unlock(&s.r.lock);
        if (done)
            break;
        struct timespec ms10 = {0, 10000000};
        nanosleep(&ms10, NULL);
    }
    pthread_mutex_lock(&s.r.lock);
    if (s.r.unexpected)
        fail_msg("unexpected message %s", s.r.unexpected_what);
    assert_int_equal(s.r.markers, 3);
    assert_int_equal(s.r.rigids, 2);
    assert_int_equal(s.r.rigid_id[0], 7);
    assert_string_equal(s.r.rigid_name[0], "wand");
    assert_int_equal(strlen(s.r.rigid_name[1]), 63);
    assert_true(s.r.rigid_y[1] == 2.5f && s.r.rigid_qw[1] == 1.0f);
    assert_true(s.r.rigid_tracked[0] == 1 && s.r.rigid_tracked[1] == 0);
    assert_int_equal(s.r.skeletons, 2);
    assert_true(s.r.skeleton_tracked[0] == 0 && s.r.skeleton_joint_count[0] == 0);
    assert_true(s.r.skeleton_tracked[1] == 1 && s.r.skeleton_joint_count[1] == KM_JOINT_COUNT);
    assert_int_equal(s.r.joints, KM_JOINT_COUNT); /* the untracked person sends none */
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        assert_true(s.r.joint_x[1][j] == (float)(0.125 * j) && s.r.joint_qy[1][j] == 0.5f);
    assert_int_equal(s.r.hands, 1);
    assert_int_equal(s.r.hand_side, KM_HAND_SIDE_RIGHT);
    assert_int_equal(s.r.hand_valid, 3);
    assert_true(s.r.hand_landmark1_x == 0.25f && s.r.hand_centre_z == -2.5f);
    /* 3 markers + 2 rigid (~300 B) + 2 headers + 21 joints of 68 B + a 380 B hand at 512 B:
     * at least 5 bundles, all with the frame's time tag. */
    assert_true(s.r.bundles >= 5);
    for (int b = 1; b < s.r.bundles && b < 64; b++)
        assert_true(s.r.timetags[b].sec == s.r.timetags[0].sec &&
                    s.r.timetags[b].frac == s.r.timetags[0].frac);
    pthread_mutex_unlock(&s.r.lock);
    km_osc_pub_destroy(op);
    server_stop(&s);
}

static void test_limits_and_errors(void **state)
{
    (void)state;
    km_status st;
    assert_null(km_osc_pub_create("127.0.0.1", "0", 10, 8192, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_null(km_osc_pub_create("127.0.0.1", "70000", 10, 8192, &st));
    assert_null(km_osc_pub_create("127.0.0.1", "90a", 10, 8192, &st));
    assert_null(km_osc_pub_create("", "9000", 10, 8192, &st));
    assert_null(km_osc_pub_create("127.0.0.1", "9000", 10, 100, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);

    /* Nobody listens on this port: sends still never block, and UDP reports nothing. */
    km_osc_pub *op = km_osc_pub_create("127.0.0.1", "9", 4, 8192, &st);
    assert_non_null(op);
    static frame_data d;
    make_frame(&d, 5);
    assert_int_equal(km_osc_pub_send(op, &d.frame), KM_ERR_CAPACITY); /* 5 > 4 */
    make_frame(&d, 4);
    uint64_t t0 = km_time_now_ns();
    for (int i = 0; i < 20000; i++) {
        km_status s = km_osc_pub_send(op, &d.frame);
        assert_true(s == KM_OK || s == KM_ERR_AGAIN);
    }
    double seconds = (double)(km_time_now_ns() - t0) * 1e-9;
    print_message("20000 OSC frames to a closed port: %.3f s\n", seconds);
    assert_true(seconds < 10.0);
    uint64_t sent, errors;
    km_osc_pub_counters(op, &sent, &errors);
    assert_true(sent + errors == 20000);
    km_osc_pub_destroy(op);
    km_osc_pub_destroy(NULL);
}

static void test_timetag_conversion(void **state)
{
    (void)state;
    /* A monotonic "now" maps to the wall clock's now within a few milliseconds. */
    lo_timetag now;
    lo_timetag_now(&now);
    uint64_t tt = km_osc_timetag_from_monotonic_ns(km_time_now_ns());
    lo_timetag ours = {(uint32_t)(tt >> 32), (uint32_t)tt};
    assert_true(fabs(lo_timetag_diff(ours, now)) < 0.005);
    /* One second earlier in monotonic time is one second earlier in the tag. */
    uint64_t t = km_time_now_ns();
    uint64_t a = km_osc_timetag_from_monotonic_ns(t);
    uint64_t b = km_osc_timetag_from_monotonic_ns(t - 1000000000ull);
    lo_timetag ta = {(uint32_t)(a >> 32), (uint32_t)a}, tb = {(uint32_t)(b >> 32), (uint32_t)b};
    assert_true(fabs(lo_timetag_diff(ta, tb) - 1.0) < 0.001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_and_markers_arrive_typed),
        cmocka_unit_test(test_large_frame_split_into_bundles),
        cmocka_unit_test(test_streams_messages),
        cmocka_unit_test(test_limits_and_errors),
        cmocka_unit_test(test_timetag_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
