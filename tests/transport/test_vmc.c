/* VMC sender: bone table, the right-handed -> Unity conversion (worked example and a
 * property check), the messages a liblo receiver gets (addresses, type tags, values of the
 * local transforms), bundle splitting, several destinations with per-destination rate
 * limits, multicast TTL, config reading and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lo/lo.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/transport.h"
#include "transport_internal.h"

#define MAX_SEEN 512

typedef struct seen_message {
    char path[32];
    char types[16];
    char name[32];
    float f[8];
    int i[4];
} seen_message;

typedef struct receiver {
    lo_server server;
    char port[16];
    seen_message seen[MAX_SEEN];
    int count;
} receiver;

#include "../common/lo_args.h"

static int on_message(const char *path, const char *types, lo_arg **argv, int argc,
                      lo_message msg, void *user)
{
    (void)msg;
    receiver *r = user;
    if (r->count >= MAX_SEEN)
        return 0;
    seen_message *m = &r->seen[r->count++];
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->types, sizeof m->types, "%s", types);
    int fi = 0, ii = 0;
    for (int a = 0; a < argc; a++) {
        if (types[a] == 's')
            snprintf(m->name, sizeof m->name, "%s", &argv[a]->s);
        else if (types[a] == 'f' && fi < 8)
            m->f[fi++] = arg_f(argv[a]);
        else if (types[a] == 'i' && ii < 4)
            m->i[ii++] = arg_i(argv[a]);
    }
    return 0;
}

static void receiver_open(receiver *r)
{
    memset(r, 0, sizeof *r);
    r->server = lo_server_new_with_proto(NULL, LO_UDP, NULL);
    assert_non_null(r->server);
    snprintf(r->port, sizeof r->port, "%d", lo_server_get_port(r->server));
    lo_server_add_method(r->server, NULL, NULL, on_message, r);
}

/* Receive until `timeout_ms` pass without a packet. */
static void receiver_drain(receiver *r, int timeout_ms)
{
    while (lo_server_recv_noblock(r->server, timeout_ms) > 0) {
    }
}

static const seen_message *find(const receiver *r, const char *path, const char *name)
{
    for (int k = 0; k < r->count; k++)
        if (strcmp(r->seen[k].path, path) == 0 && (!name || strcmp(r->seen[k].name, name) == 0))
            return &r->seen[k];
    return NULL;
}

static int count_path(const receiver *r, const char *path)
{
    int n = 0;
    for (int k = 0; k < r->count; k++)
        n += strcmp(r->seen[k].path, path) == 0;
    return n;
}

static void test_bone_table(void **state)
{
    (void)state;
    assert_string_equal(km_human_bone_name(KM_BONE_HIPS), "Hips");
    assert_string_equal(km_human_bone_name(KM_BONE_LEFT_THUMB_PROXIMAL), "LeftThumbProximal");
    assert_string_equal(km_human_bone_name(KM_BONE_RIGHT_THUMB_PROXIMAL), "RightThumbProximal");
    assert_string_equal(km_human_bone_name(53), "RightLittleDistal");
    assert_string_equal(km_human_bone_name(KM_BONE_UPPER_CHEST), "UpperChest");
    assert_null(km_human_bone_name(55));
    assert_null(km_human_bone_name(-1));
    for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++) {
        km_human_bone parsed;
        assert_int_equal(km_human_bone_parse(km_human_bone_name(b), &parsed), KM_OK);
        assert_int_equal(parsed, b);
        /* Every chain reaches Hips without a cycle. */
        int p = b, steps = 0;
        while (p != KM_BONE_HIPS && steps++ < KM_HUMAN_BONE_COUNT)
            p = km_human_bone_parent(p);
        assert_int_equal(p, KM_BONE_HIPS);
    }
    assert_int_equal(km_human_bone_parent(KM_BONE_HIPS), -1);
    assert_int_equal(km_human_bone_parent(KM_BONE_NECK), KM_BONE_UPPER_CHEST);
    assert_int_equal(km_human_bone_parent(KM_BONE_UPPER_CHEST), KM_BONE_CHEST);
    assert_int_equal(km_human_bone_parent(KM_BONE_LEFT_HAND), KM_BONE_LEFT_LOWER_ARM);
    assert_int_equal(km_human_bone_parent(26), 25); /* LeftThumbDistal <- Intermediate */
    assert_int_equal(km_human_bone_parse("hips", NULL), KM_ERR_NOT_FOUND);
}

/* The worked example of docs/protocol.md, and mirror(R v) == R_unity mirror(v). */
static void test_conversion(void **state)
{
    (void)state;
    km_vec3 p = km_vmc_position_to_unity(km_vec3_make(1.0, 2.0, 3.0));
    assert_true(p.x == -1.0 && p.y == 2.0 && p.z == 3.0);
    /* +90 deg about +Y in Kinema's right-handed frame turns +Z to +X. */
    km_quat q = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), M_PI / 2);
    km_vec3 v = km_quat_rotate(q, km_vec3_make(0, 0, 1));
    assert_true(fabs(v.x - 1.0) < 1e-12 && fabs(v.z) < 1e-12);
    km_quat u = km_vmc_rotation_to_unity(q);
    assert_true(fabs(u.x) < 1e-12 && fabs(u.y + M_SQRT1_2) < 1e-12 && fabs(u.z) < 1e-12 &&
                fabs(u.w - M_SQRT1_2) < 1e-12);
    /* In Unity the same motion turns forward (+Z) to -X (the mirrored +X). */
    km_vec3 w = km_quat_rotate(u, km_vec3_make(0, 0, 1));
    assert_true(fabs(w.x + 1.0) < 1e-12 && fabs(w.z) < 1e-12);
    srand(7);
    for (int k = 0; k < 1000; k++) {
        km_vec3 axis = km_vec3_normalize(km_vec3_make(rand() / (double)RAND_MAX - 0.5,
                                                      rand() / (double)RAND_MAX - 0.5,
                                                      rand() / (double)RAND_MAX - 0.5));
        km_quat r = km_quat_from_axis_angle(axis, 6.0 * rand() / (double)RAND_MAX - 3.0);
        km_vec3 x = km_vec3_make(rand() / (double)RAND_MAX - 0.5, rand() / (double)RAND_MAX,
                                 rand() / (double)RAND_MAX - 0.5);
        km_vec3 a = km_vmc_position_to_unity(km_quat_rotate(r, x));
        km_vec3 b = km_quat_rotate(km_vmc_rotation_to_unity(r), km_vmc_position_to_unity(x));
        assert_true(km_vec3_dist(a, b) < 1e-12);
    }
}

static km_vmc_config config_for(const char *port)
{
    km_vmc_config c = km_vmc_config_default();
    snprintf(c.destinations[0].port, sizeof c.destinations[0].port, "%s", port);
    return c;
}

static void identity_pose(km_vmc_pose *pose)
{
    memset(pose, 0, sizeof *pose);
    for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++)
        pose->rotation[b] = km_quat_identity();
}

/* Hips turned +90 deg about Y; Spine 0.1 m above and 0.1 m in +Z (world) of the hips. */
static void test_messages_and_local_transforms(void **state)
{
    (void)state;
    receiver r;
    receiver_open(&r);
    km_vmc_config c = config_for(r.port);
    km_status st;
    km_vmc_sender *s = km_vmc_sender_create(&c, &st);
    assert_non_null(s);

    static km_vmc_pose pose;
    identity_pose(&pose);
    pose.present = 1u << KM_BONE_HIPS | 1u << KM_BONE_SPINE | 1u << KM_BONE_HEAD;
    pose.pos_m[KM_BONE_HIPS] = km_vec3_make(0.5, 1.0, 0.0);
    pose.rotation[KM_BONE_HIPS] = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), M_PI / 2);
    pose.pos_m[KM_BONE_SPINE] = km_vec3_make(0.5, 1.1, 0.1);
    pose.rotation[KM_BONE_SPINE] = pose.rotation[KM_BONE_HIPS];
    /* Head's parents (Neck, UpperChest, Chest) are missing: relative to Spine. */
    pose.pos_m[KM_BONE_HEAD] = km_vec3_make(0.5, 1.6, 0.1);
    pose.rotation[KM_BONE_HEAD] = km_quat_identity();
    pose.time_ns = km_time_now_ns();
    assert_int_equal(km_vmc_send(s, &pose, km_time_now_ns()), KM_OK);
    receiver_drain(&r, 200);

    const seen_message *ok = find(&r, "/VMC/Ext/OK", NULL);
    assert_non_null(ok);
    assert_string_equal(ok->types, "iiii");
    assert_true(ok->i[0] == 1 && ok->i[1] == 3 && ok->i[2] == 0 && ok->i[3] == 1);
    const seen_message *t = find(&r, "/VMC/Ext/T", NULL);
    assert_non_null(t);
    assert_string_equal(t->types, "f");
    assert_true(t->f[0] >= 0.0f && t->f[0] < 10.0f);
    const seen_message *root = find(&r, "/VMC/Ext/Root/Pos", "root");
    assert_non_null(root);
    assert_string_equal(root->types, "sfffffff");
    assert_true(root->f[6] == 1.0f);
    assert_int_equal(count_path(&r, "/VMC/Ext/Bone/Pos"), 3);

    const seen_message *hips = find(&r, "/VMC/Ext/Bone/Pos", "Hips");
    assert_non_null(hips);
    assert_string_equal(hips->types, "sfffffff");
    /* Hips: world pose in Unity: x mirrored, rotation -90 deg about Y. */
    assert_true(fabsf(hips->f[0] + 0.5f) < 1e-6f && fabsf(hips->f[1] - 1.0f) < 1e-6f);
    assert_true(fabsf(hips->f[4] + (float)M_SQRT1_2) < 1e-6f);
    assert_true(fabsf(hips->f[6] - (float)M_SQRT1_2) < 1e-6f);
    /* Spine: in the hips' frame the offset is (0.1, 0.1, 0) in Unity (worked example in
     * docs/protocol.md), rotation identity. */
    const seen_message *spine = find(&r, "/VMC/Ext/Bone/Pos", "Spine");
    assert_non_null(spine);
    assert_true(fabsf(spine->f[0] - 0.1f) < 1e-6f && fabsf(spine->f[1] - 0.1f) < 1e-6f &&
                fabsf(spine->f[2]) < 1e-6f);
    assert_true(fabsf(spine->f[6] - 1.0f) < 1e-6f);
    /* Head relative to Spine: 0.5 m up in the spine frame; local rotation undoes the
     * spine's -90 deg: +90 deg about Y in Unity. */
    const seen_message *head = find(&r, "/VMC/Ext/Bone/Pos", "Head");
    assert_non_null(head);
    assert_true(fabsf(head->f[0]) < 1e-6f && fabsf(head->f[1] - 0.5f) < 1e-6f &&
                fabsf(head->f[2]) < 1e-6f);
    assert_true(fabsf(head->f[4] - (float)M_SQRT1_2) < 1e-6f);

    /* No pose: "alive but not loaded". */
    r.count = 0;
    assert_int_equal(km_vmc_send(s, NULL, km_time_now_ns()), KM_OK);
    receiver_drain(&r, 200);
    assert_int_equal(r.count, 2);
    ok = find(&r, "/VMC/Ext/OK", NULL);
    assert_non_null(ok);
    assert_true(ok->i[0] == 0 && ok->i[3] == 0);
    assert_non_null(find(&r, "/VMC/Ext/T", NULL));

    /* A non-finite value: refused, nothing sent. */
    km_osc_sender_stats before, after;
    km_vmc_sender_stats(s, &before);
    pose.pos_m[KM_BONE_SPINE].y = NAN;
    assert_int_equal(km_vmc_send(s, &pose, km_time_now_ns()), KM_ERR_INVALID_ARGUMENT);
    km_vmc_sender_stats(s, &after);
    assert_true(after.packets == before.packets);
    km_vmc_sender_destroy(s);
    lo_server_free(r.server);
}

/* km_vmc_pose_from_skeleton: a T-pose gives identity rotations and copied positions on the
 * bones of the same names, an untracked pose nothing present; a rotated elbow arrives at a
 * VMC receiver as that local rotation. */
static void test_pose_from_skeleton(void **state)
{
    (void)state;
    static km_skeleton_pose sk;
    memset(&sk, 0, sizeof sk);
    sk.person = 2;
    sk.tracked = true;
    sk.joints_observed = KM_SKELETON_ALL_JOINTS;
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        sk.joint_pos_m[j] = km_vec3_make(0.1 * j, 1.0 + 0.01 * j, -0.05 * j);
        sk.joint_rot[j] = km_quat_identity();
        sk.local_rot[j] = km_quat_identity();
    }
    static km_vmc_pose pose;
    memset(&pose, 0x5a, sizeof pose); /* garbage: everything must be written */
    km_vmc_pose_from_skeleton(&sk, 12345, &pose);
    assert_int_equal(pose.person, 2);
    assert_true(pose.time_ns == 12345);
    int present = 0;
    for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++)
        present += (pose.present >> b) & 1;
    assert_int_equal(present, KM_JOINT_COUNT);
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        km_human_bone b;
        assert_int_equal(km_human_bone_parse(km_joint_name(j), &b), KM_OK);
        assert_true((pose.present >> b) & 1);
        assert_true(pose.pos_m[b].x == sk.joint_pos_m[j].x);
        assert_true(pose.pos_m[b].y == sk.joint_pos_m[j].y);
        assert_true(pose.pos_m[b].z == sk.joint_pos_m[j].z);
        assert_true(pose.rotation[b].x == 0 && pose.rotation[b].y == 0 &&
                    pose.rotation[b].z == 0 && pose.rotation[b].w == 1);
    }
    /* Spot checks of the name mapping (different numbering on both sides). */
    assert_true(pose.pos_m[KM_BONE_LEFT_LOWER_ARM].x == sk.joint_pos_m[KM_JOINT_LEFT_LOWER_ARM].x);
    assert_true(pose.pos_m[KM_BONE_RIGHT_TOES].z == sk.joint_pos_m[KM_JOINT_RIGHT_TOES].z);
    /* Bones the skeleton does not have: absent, at rest. */
    assert_false((pose.present >> KM_BONE_UPPER_CHEST) & 1);
    assert_false((pose.present >> KM_BONE_LEFT_THUMB_PROXIMAL) & 1);
    assert_true(pose.rotation[KM_BONE_JAW].w == 1 && pose.pos_m[KM_BONE_JAW].x == 0);

    /* An occluded forearm (no labeled marker): its bone is not sent, the others are. */
    sk.joints_observed = KM_SKELETON_ALL_JOINTS & ~(1u << KM_JOINT_LEFT_LOWER_ARM);
    km_vmc_pose_from_skeleton(&sk, 1, &pose);
    assert_false((pose.present >> KM_BONE_LEFT_LOWER_ARM) & 1);
    assert_true((pose.present >> KM_BONE_LEFT_UPPER_ARM) & 1);
    sk.joints_observed = KM_SKELETON_ALL_JOINTS;

    sk.tracked = false;
    km_vmc_pose_from_skeleton(&sk, 1, &pose);
    assert_true(pose.present == 0);
    km_vmc_pose_from_skeleton(NULL, 1, &pose);
    assert_true(pose.present == 0);

    /* Elbow bent 90 deg about world +Y (the forearm and the hand turn together). */
    sk.tracked = true;
    km_quat bend = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), M_PI / 2);
    sk.joint_rot[KM_JOINT_LEFT_LOWER_ARM] = bend;
    sk.joint_rot[KM_JOINT_LEFT_HAND] = bend;
    km_vmc_pose_from_skeleton(&sk, km_time_now_ns(), &pose);
    receiver r;
    receiver_open(&r);
    km_vmc_config c = config_for(r.port);
    km_status st;
    km_vmc_sender *s = km_vmc_sender_create(&c, &st);
    assert_non_null(s);
    assert_int_equal(km_vmc_send(s, &pose, km_time_now_ns()), KM_OK);
    receiver_drain(&r, 200);
    assert_int_equal(count_path(&r, "/VMC/Ext/Bone/Pos"), KM_JOINT_COUNT);
    /* Local rotation of the forearm in its (unrotated) upper arm = the bend in Unity's
     * frame: (qx, -qy, -qz, qw) = (0, -0.7071, 0, 0.7071). */
    const seen_message *fore = find(&r, "/VMC/Ext/Bone/Pos", "LeftLowerArm");
    assert_non_null(fore);
    assert_true(fabsf(fore->f[3]) < 1e-6f && fabsf(fore->f[4] + (float)M_SQRT1_2) < 1e-6f &&
                fabsf(fore->f[5]) < 1e-6f && fabsf(fore->f[6] - (float)M_SQRT1_2) < 1e-6f);
    /* Its local position: the mirrored world offset from the upper arm. */
    km_vec3 d = km_vec3_sub(sk.joint_pos_m[KM_JOINT_LEFT_LOWER_ARM],
                            sk.joint_pos_m[KM_JOINT_LEFT_UPPER_ARM]);
    assert_true(fabsf(fore->f[0] - (float)-d.x) < 1e-6f && fabsf(fore->f[1] - (float)d.y) < 1e-6f &&
                fabsf(fore->f[2] - (float)d.z) < 1e-6f);
    /* The hand turned with the forearm: identity in it. */
    const seen_message *hand = find(&r, "/VMC/Ext/Bone/Pos", "LeftHand");
    assert_non_null(hand);
    assert_true(fabsf(hand->f[6] - 1.0f) < 1e-6f && fabsf(hand->f[4]) < 1e-6f);
    km_vmc_sender_destroy(s);
    lo_server_free(r.server);
}

/* All 55 bones: split into several bundles of at most max_packet_bytes, every bone once,
 * /VMC/Ext/OK first. */
static void test_full_skeleton_split(void **state)
{
    (void)state;
    receiver r;
    receiver_open(&r);
    km_vmc_config c = config_for(r.port);
    c.max_packet_bytes = 1472;
    km_status st;
    km_vmc_sender *s = km_vmc_sender_create(&c, &st);
    assert_non_null(s);
    static km_vmc_pose pose;
    identity_pose(&pose);
    pose.present = (1ull << KM_HUMAN_BONE_COUNT) - 1;
    for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++)
        pose.pos_m[b] = km_vec3_make(0.01 * b, 1.0 + 0.001 * b, -0.02 * b);
    assert_int_equal(km_vmc_send(s, &pose, km_time_now_ns()), KM_OK);
    receiver_drain(&r, 200);
    km_osc_sender_stats stats;
    km_vmc_sender_stats(s, &stats);
    print_message("55 bones at 1472 bytes per bundle: %llu datagrams\n",
                  (unsigned long long)stats.packets);
    assert_true(stats.packets >= 4 && stats.packets <= 6);
    assert_int_equal(count_path(&r, "/VMC/Ext/Bone/Pos"), KM_HUMAN_BONE_COUNT);
    assert_string_equal(r.seen[0].path, "/VMC/Ext/OK");
    for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++) {
        const seen_message *m = find(&r, "/VMC/Ext/Bone/Pos", km_human_bone_name(b));
        assert_non_null(m);
        assert_string_equal(m->types, "sfffffff");
    }
    /* Identity rotations: local offsets are the mirrored world differences. */
    const seen_message *hand = find(&r, "/VMC/Ext/Bone/Pos", "LeftHand");
    double dx = -(0.01 * KM_BONE_LEFT_HAND - 0.01 * KM_BONE_LEFT_LOWER_ARM);
    assert_true(fabs(hand->f[0] - dx) < 1e-6);
    km_vmc_sender_destroy(s);
    lo_server_free(r.server);
}

/* Two destinations, one limited to 60 Hz: one second of 240 Hz calls gives 240 and 60. */
static void test_destinations_and_rate_limit(void **state)
{
    (void)state;
    receiver a, b;
    receiver_open(&a);
    receiver_open(&b);
    km_vmc_config c = config_for(a.port);
    c.destination_count = 2;
    c.destinations[1] = c.destinations[0];
    snprintf(c.destinations[1].port, sizeof c.destinations[1].port, "%s", b.port);
    c.destinations[1].max_rate_hz = 60.0;
    km_status st;
    km_vmc_sender *s = km_vmc_sender_create(&c, &st);
    assert_non_null(s);
    uint64_t t0 = km_time_now_ns();
    for (int k = 0; k < 240; k++) {
        /* Synthetic times: 240 Hz with 0.3 ms of jitter. */
        uint64_t now = t0 + (uint64_t)k * 4166667u + (uint64_t)((k * 7919) % 300) * 1000u;
        assert_int_equal(km_vmc_send(s, NULL, now), KM_OK);
        if (k % 16 == 0) {
            receiver_drain(&a, 0);
            receiver_drain(&b, 0);
        }
    }
    receiver_drain(&a, 100);
    receiver_drain(&b, 100);
    int na = count_path(&a, "/VMC/Ext/OK"), nb = count_path(&b, "/VMC/Ext/OK");
    km_osc_sender_stats stats;
    km_vmc_sender_stats(s, &stats);
    print_message("240 calls in 1 s: unlimited destination %d, 60 Hz destination %d "
                  "(rate limited %llu)\n", na, nb, (unsigned long long)stats.rate_limited);
    assert_int_equal(na, 240);
    assert_true(nb >= 59 && nb <= 61);
    assert_true(stats.rate_limited == (uint64_t)(240 - nb));
    km_vmc_sender_destroy(s);
    lo_server_free(a.server);
    lo_server_free(b.server);
}

static void test_rate_limiter_schedule(void **state)
{
    (void)state;
    km_osc_destination d = {"127.0.0.1", "9", 100.0, 1};
    km_osc_dest dest;
    assert_int_equal(km_osc_dest_open(&dest, &d), KM_OK);
    /* 1 kHz calls for 1 s: exactly 100 due. */
    int due = 0;
    for (int k = 0; k < 1000; k++)
        due += km_osc_dest_due(&dest, 5000000000ull + (uint64_t)k * 1000000u);
    assert_int_equal(due, 100);
    /* After a 1 s pause: one send at once, no burst of catch-up sends. */
    uint64_t t = 7000000000ull;
    assert_true(km_osc_dest_due(&dest, t));
    assert_false(km_osc_dest_due(&dest, t + 1000000));
    assert_false(km_osc_dest_due(&dest, t + 9000000));
    assert_true(km_osc_dest_due(&dest, t + 10000000));
    km_osc_dest_close(&dest);
}

static void test_multicast_ttl(void **state)
{
    (void)state;
    km_osc_destination d = {"239.255.42.99", "39539", 0.0, 3};
    km_osc_dest dest;
    assert_int_equal(km_osc_dest_open(&dest, &d), KM_OK);
    assert_true(dest.multicast);
    int ttl = 0;
    socklen_t size = sizeof ttl;
    assert_int_equal(getsockopt(dest.fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, &size), 0);
    assert_int_equal(ttl, 3);
    km_osc_dest_close(&dest);
    km_osc_destination u = {"127.0.0.1", "39539", 0.0, 1};
    assert_int_equal(km_osc_dest_open(&dest, &u), KM_OK);
    assert_false(dest.multicast);
    km_osc_dest_close(&dest);
}

static km_status read_text(const char *text, km_vmc_config *out)
{
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "vmc.yaml", &st);
    assert_non_null(cfg);
    st = km_vmc_config_read(cfg, "transport.vmc", out);
    km_config_destroy(cfg);
    return st;
}

static void expect_error(const char *text, const char *where, const char *key)
{
    km_vmc_config c;
    assert_int_not_equal(read_text(text, &c), KM_OK);
    if (!strstr(km_last_error(), where) || !strstr(km_last_error(), key))
        fail_msg("error '%s' lacks '%s' or '%s'", km_last_error(), where, key);
}

static void test_config(void **state)
{
    (void)state;
    km_vmc_config c;
    assert_int_equal(read_text("other: 1\n", &c), KM_OK);
    assert_false(c.enabled);
    assert_int_equal(c.destination_count, 1);
    assert_string_equal(c.destinations[0].port, "39539");
    assert_int_equal(read_text("transport:\n"
                               "  vmc:\n"
                               "    enabled: true\n"
                               "    person: 1\n"
                               "    ok_arguments: 3\n"
                               "    destinations:\n"
                               "      - {host: 127.0.0.1, port: 39539}\n"
                               "      - {host: 239.255.0.1, port: 39540, max_rate_hz: 60,"
                               " multicast_ttl: 2}\n",
                               &c),
                     KM_OK);
    assert_true(c.enabled);
    assert_int_equal(c.person, 1);
    assert_int_equal(c.ok_arguments, 3);
    assert_int_equal(c.destination_count, 2);
    assert_string_equal(c.destinations[1].host, "239.255.0.1");
    assert_true(c.destinations[1].max_rate_hz == 60.0);
    assert_int_equal(c.destinations[1].multicast_ttl, 2);
    assert_int_equal(c.destinations[0].multicast_ttl, 1);
    expect_error("transport:\n  vmc:\n    ok_arguments: 2\n", "vmc.yaml:3", "ok_arguments");
    expect_error("transport:\n  vmc:\n    destinations: 5\n", "vmc.yaml:3", "destinations");
    expect_error("transport:\n  vmc:\n    destinations:\n      - {host: a}\n", "vmc.yaml:4",
                 "port");
    expect_error("transport:\n  vmc:\n    destinations:\n      - {port: 99999}\n",
                 "vmc.yaml:4", "port");
    expect_error("transport:\n  vmc:\n    destinations:\n      - {port: 1, max_rate_hz: -1}\n",
                 "vmc.yaml:4", "max_rate_hz");
    expect_error("transport:\n  vmc:\n    destinations:\n      - {port: 1, hots: x}\n",
                 "vmc.yaml:4", "hots");
    expect_error("transport:\n  vmc:\n    prson: 1\n", "vmc.yaml:3", "prson");

    km_status st;
    c = km_vmc_config_default();
    c.destination_count = 0;
    assert_null(km_vmc_sender_create(&c, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    c = km_vmc_config_default();
    snprintf(c.destinations[0].host, sizeof c.destinations[0].host, "no-such-host.invalid");
    assert_null(km_vmc_sender_create(&c, &st));
    assert_int_equal(st, KM_ERR_IO);
    km_vmc_sender_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bone_table),
        cmocka_unit_test(test_conversion),
        cmocka_unit_test(test_messages_and_local_transforms),
        cmocka_unit_test(test_full_skeleton_split),
        cmocka_unit_test(test_pose_from_skeleton),
        cmocka_unit_test(test_destinations_and_rate_limit),
        cmocka_unit_test(test_rate_limiter_schedule),
        cmocka_unit_test(test_multicast_ttl),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
