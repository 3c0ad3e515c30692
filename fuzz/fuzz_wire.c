/* Fuzz target: km_wire_decode_frame, km_wire_decode and km_wire_decode_streams (every v1.2
 * section with storage) on arbitrary bytes (wire v1, docs/protocol.md). Any input must give
 * KM_OK or an error status, never a crash or an out-of-bounds read; an accepted message must
 * re-encode to a message that decodes to the same values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/transport.h"

#define STORAGE 1024
#define STREAMS 64
#define PEOPLE 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Equal as values; any NaN equals any NaN (a signalling NaN comes back quieted). */
static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

static int same_vec(km_vec3 a, km_vec3 b)
{
    return same(a.x, b.x) && same(a.y, b.y) && same(a.z, b.z);
}

static int same_quat(km_quat a, km_quat b)
{
    return same(a.x, b.x) && same(a.y, b.y) && same(a.z, b.z) && same(a.w, b.w);
}

typedef struct arrays {
    km_rigid_pose rigid[STREAMS];
    km_skeleton_pose skel[PEOPLE];
    km_hand hands[STREAMS];
    km_gesture_event events[STREAMS];
    km_camera_status cams[KM_WIRE_MAX_CAMERAS];
} arrays;

static km_wire_stream_storage streams_of(arrays *a)
{
    km_wire_stream_storage x = {a->rigid, STREAMS, a->skel, PEOPLE, a->hands, STREAMS,
                                a->events, STREAMS, a->cams, KM_WIRE_MAX_CAMERAS};
    return x;
}

/* Decode with every section, re-encode what was accepted, decode again, compare. */
static void streams_round_trip(const uint8_t *data, size_t size)
{
    static km_marker markers[STORAGE], markers2[STORAGE];
    static km_observation obs[STORAGE], obs2[STORAGE];
    static arrays a, b;
    static uint8_t encoded[1u << 18];
    km_wire_storage s = {markers, STORAGE, obs, STORAGE};
    km_wire_stream_storage x = streams_of(&a);
    km_wire_frame w;
    if (km_wire_decode_streams(data, size, &s, &x, &w) != KM_OK)
        return;
    if (w.rigid_body_count < 0 || w.rigid_body_count > STREAMS || w.skeleton_count < 0 ||
        w.skeleton_count > PEOPLE || w.hand_count < 0 || w.hand_count > STREAMS ||
        w.event_count < 0 || w.event_count > STREAMS || w.camera_status_count < 0 ||
        w.camera_status_count > KM_WIRE_MAX_CAMERAS || w.sections_skipped > w.section_count)
        abort();
    for (int i = 0; i < w.event_count; i++)
        if (strnlen(a.events[i].name, KM_GESTURE_NAME_MAX) >= KM_GESTURE_NAME_MAX ||
            strnlen(a.events[i].target, KM_GESTURE_NAME_MAX) >= KM_GESTURE_NAME_MAX)
            abort();
    km_marker_set ms = {w.frame, w.capture_time_ns, w.marker_count, STORAGE, markers};
    km_observation_set os = {w.frame, w.capture_time_ns, w.observation_total, STORAGE, obs};
    km_solved_frame f;
    memset(&f, 0, sizeof f);
    f.frame = w.frame;
    f.camera_count = w.camera_count;
    f.markers = &ms;
    if (w.has_observations)
        f.observations = &os;
    if (w.has_rigid_bodies) {
        f.rigid_bodies = a.rigid;
        f.rigid_body_count = w.rigid_body_count;
    }
    if (w.has_skeletons) {
        f.skeletons = a.skel;
        f.skeleton_count = w.skeleton_count;
    }
    if (w.has_hands) {
        f.hands = a.hands;
        f.hand_count = w.hand_count;
    }
    if (w.has_events) {
        f.events = a.events;
        f.event_count = w.event_count;
    }
    /* The encoder writes one status per camera: only a matching section round trips. */
    if (w.has_camera_status && w.camera_status_count == w.camera_count)
        f.camera_status = a.cams;
    size_t length = 0;
    if (km_wire_encode_frame(&f, encoded, sizeof encoded, &length) != KM_OK)
        return; /* more than this buffer: fine */
    km_wire_storage s2 = {markers2, STORAGE, obs2, STORAGE};
    km_wire_stream_storage x2 = streams_of(&b);
    km_wire_frame w2;
    if (km_wire_decode_streams(encoded, length, &s2, &x2, &w2) != KM_OK)
        abort();
    if (w2.rigid_body_count != f.rigid_body_count || w2.skeleton_count != f.skeleton_count ||
        w2.hand_count != f.hand_count || w2.event_count != f.event_count)
        abort();
    for (int i = 0; i < f.rigid_body_count; i++) {
        const km_rigid_pose *p = &a.rigid[i], *q = &b.rigid[i];
        if (p->id != q->id || p->tracked != q->tracked || p->markers_used != q->markers_used ||
            !same_vec(p->pos_m, q->pos_m) || !same_quat(p->rot, q->rot) ||
            !same(p->error_m, q->error_m))
            abort();
    }
    for (int i = 0; i < f.skeleton_count; i++) {
        const km_skeleton_pose *p = &a.skel[i], *q = &b.skel[i];
        if (p->person != q->person || p->tracked != q->tracked || !same(p->residual_m, q->residual_m))
            abort();
        for (int j = 0; j < KM_JOINT_COUNT; j++)
            if (!same_vec(p->joint_pos_m[j], q->joint_pos_m[j]) ||
                !same_quat(p->joint_rot[j], q->joint_rot[j]) ||
                !same_quat(p->local_rot[j], q->local_rot[j]))
                abort();
    }
    for (int i = 0; i < f.hand_count; i++) {
        const km_hand *p = &a.hands[i], *q = &b.hands[i];
        if (p->person != q->person || p->side != q->side || p->time_ns != q->time_ns ||
            p->landmark_valid != q->landmark_valid || p->centre_valid != q->centre_valid ||
            (p->centre_valid && !same_vec(p->centre_m, q->centre_m)))
            abort();
        for (int l = 0; l < KM_HAND_LANDMARK_COUNT; l++)
            if ((p->landmark_valid & KM_HAND_LANDMARK_BIT(l)) &&
                !same_vec(p->landmark_m[l], q->landmark_m[l]))
                abort();
    }
    for (int i = 0; i < f.event_count; i++) {
        const km_gesture_event *p = &a.events[i], *q = &b.events[i];
        if (p->type != q->type || p->person != q->person || p->hand != q->hand ||
            p->t_ns != q->t_ns || strcmp(p->name, q->name) != 0 ||
            strcmp(p->target, q->target) != 0 || !same(p->score, q->score) ||
            !same(p->gaze_lead_ms, q->gaze_lead_ms) || p->same_target != q->same_target)
            abort();
    }
    for (int c = 0; f.camera_status && c < f.camera_count; c++)
        if (a.cams[c].state != b.cams[c].state || a.cams[c].frames != b.cams[c].frames ||
            a.cams[c].errors != b.cams[c].errors)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_marker storage[STORAGE], again[STORAGE];
    static uint8_t encoded[1u << 16];
    static km_observation observations[STORAGE];
    km_wire_frame w, w2;
    /* With 2D observation storage too (the obs2d/frame topics' OBSERVATIONS_2D section). */
    km_wire_storage all = {storage, STORAGE, observations, STORAGE};
    if (km_wire_decode(data, size, &all, &w) == KM_OK &&
        (w.observation_total < 0 || w.observation_total > STORAGE ||
         (w.observation_total > 0 && !w.has_observations) || w.has_skeletons))
        abort();
    streams_round_trip(data, size);
    if (km_wire_decode_frame(data, size, storage, STORAGE, &w) != KM_OK)
        return 0;
    if (w.marker_count < 0 || w.marker_count > STORAGE || w.camera_count < 0 ||
        w.camera_count > KM_WIRE_MAX_CAMERAS)
        abort();
    /* Round trip of what was accepted: decode(encode(x)) == x. */
    km_marker_set set = {w.frame, w.capture_time_ns, w.marker_count, STORAGE, storage};
    km_solved_frame f;
    memset(&f, 0, sizeof f);
    f.frame = w.frame;
    f.capture_time_ns = w.capture_time_ns;
    f.solved_time_ns = w.solved_time_ns;
    f.publish_time_ns = w.publish_time_ns;
    f.camera_count = w.camera_count;
    memcpy(f.observation_count, w.observation_count, sizeof f.observation_count);
    f.markers = &set;
    size_t length = 0;
    if (km_wire_encode_frame(&f, encoded, sizeof encoded, &length) != KM_OK)
        return 0; /* more markers than this buffer: fine */
    if (km_wire_decode_frame(encoded, length, again, STORAGE, &w2) != KM_OK)
        abort();
    if (w2.frame != w.frame || w2.marker_count != w.marker_count ||
        w2.camera_count != w.camera_count)
        abort();
    for (int i = 0; i < w.marker_count; i++)
        if (again[i].id != storage[i].id || again[i].views != storage[i].views ||
            !same(again[i].pos_m.x, storage[i].pos_m.x) ||
            !same(again[i].pos_m.y, storage[i].pos_m.y) ||
            !same(again[i].pos_m.z, storage[i].pos_m.z) ||
            !same(again[i].residual_px, storage[i].residual_px))
            abort();
    return 0;
}
