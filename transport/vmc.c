/* VMC protocol sender, performer -> marionette (docs/protocol.md "VMC"; the protocol:
 * protocol.vmc.info, "Marionette" section). Receivers (EVMC4U in Unity, VMC4UE in
 * Unreal, VSeeFace-style apps) apply each /VMC/Ext/Bone/Pos as the bone's
 * Transform.localPosition / localRotation of a VRM-normalised humanoid, so we send local
 * transforms in Unity's frame.
 *
 * Frames: Kinema's world is right-handed, Y up (formats.md); Unity is left-handed, Y up.
 * We mirror the X axis — the same convention as OptiTrack's Unity plugin for the same
 * source frame — so an actor facing +Z in the studio faces +Z (Unity's forward) and the
 * actor's left hand stays the avatar's left hand:
 *   position (x, y, z)         -> (-x, y, z)
 *   rotation (qx, qy, qz, qw)  -> (qx, -qy, -qz, qw)
 * (a mirror M = diag(-1,1,1) conjugates a rotation R into M R M; for the quaternion that
 * negates the components of the axis that the mirror does not flip).
 *
 * Per call nothing is allocated: the packet buffer is sized at create, messages are
 * written straight into it, and a bundle that would exceed max_packet_bytes is sent and a
 * new one begun (all with the same time tag). */
#include "transport_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const bone_names[KM_HUMAN_BONE_COUNT] = {
    "Hips", "LeftUpperLeg", "RightUpperLeg", "LeftLowerLeg", "RightLowerLeg", "LeftFoot",
    "RightFoot", "Spine", "Chest", "Neck", "Head", "LeftShoulder", "RightShoulder",
    "LeftUpperArm", "RightUpperArm", "LeftLowerArm", "RightLowerArm", "LeftHand", "RightHand",
    "LeftToes", "RightToes", "LeftEye", "RightEye", "Jaw",
    "LeftThumbProximal", "LeftThumbIntermediate", "LeftThumbDistal",
    "LeftIndexProximal", "LeftIndexIntermediate", "LeftIndexDistal",
    "LeftMiddleProximal", "LeftMiddleIntermediate", "LeftMiddleDistal",
    "LeftRingProximal", "LeftRingIntermediate", "LeftRingDistal",
    "LeftLittleProximal", "LeftLittleIntermediate", "LeftLittleDistal",
    "RightThumbProximal", "RightThumbIntermediate", "RightThumbDistal",
    "RightIndexProximal", "RightIndexIntermediate", "RightIndexDistal",
    "RightMiddleProximal", "RightMiddleIntermediate", "RightMiddleDistal",
    "RightRingProximal", "RightRingIntermediate", "RightRingDistal",
    "RightLittleProximal", "RightLittleIntermediate", "RightLittleDistal",
    "UpperChest"};

/* Unity's humanoid hierarchy (optional bones included: UpperChest, shoulders, neck, toes,
 * eyes, jaw, fingers). */
static const signed char bone_parents[KM_HUMAN_BONE_COUNT] = {
    -1,                        /* Hips */
    0, 0, 1, 2, 3, 4,          /* upper legs <- Hips, lower legs, feet */
    0, 7,                      /* Spine <- Hips, Chest <- Spine */
    54, 9,                     /* Neck <- UpperChest, Head <- Neck */
    54, 54,                    /* shoulders <- UpperChest */
    11, 12, 13, 14, 15, 16,    /* upper arms <- shoulders, lower arms, hands */
    5, 6,                      /* toes <- feet */
    10, 10, 10,                /* eyes, jaw <- Head */
    17, 24, 25, 17, 27, 28, 17, 30, 31, 17, 33, 34, 17, 36, 37, /* left fingers */
    18, 39, 40, 18, 42, 43, 18, 45, 46, 18, 48, 49, 18, 51, 52, /* right fingers */
    8                          /* UpperChest <- Chest */
};

const char *km_human_bone_name(int bone)
{
    return bone >= 0 && bone < KM_HUMAN_BONE_COUNT ? bone_names[bone] : NULL;
}

km_status km_human_bone_parse(const char *name, km_human_bone *out)
{
    for (int b = 0; name && b < KM_HUMAN_BONE_COUNT; b++)
        if (strcmp(bone_names[b], name) == 0) {
            if (out)
                *out = (km_human_bone)b;
            return KM_OK;
        }
    return km_error(KM_ERR_NOT_FOUND, "'%s' is not a HumanBodyBones name",
                    name ? name : "(null)");
}

int km_human_bone_parent(int bone)
{
    return bone >= 0 && bone < KM_HUMAN_BONE_COUNT ? bone_parents[bone] : -1;
}

km_vec3 km_vmc_position_to_unity(km_vec3 p)
{
    km_vec3 u = {-p.x, p.y, p.z};
    return u;
}

km_quat km_vmc_rotation_to_unity(km_quat q)
{
    km_quat u = {q.x, -q.y, -q.z, q.w};
    return u;
}

/* --------------------------------------------------------------- config */

#define VMC_DEFAULT_PORT "39539"

km_vmc_config km_vmc_config_default(void)
{
    km_vmc_config c;
    memset(&c, 0, sizeof c);
    c.destination_count = 1;
    snprintf(c.destinations[0].host, sizeof c.destinations[0].host, "127.0.0.1");
    snprintf(c.destinations[0].port, sizeof c.destinations[0].port, VMC_DEFAULT_PORT);
    c.destinations[0].multicast_ttl = 1;
    c.max_packet_bytes = 1472;
    c.ok_arguments = 4;
    c.calibration_state = 3;
    return c;
}

static km_status check_config(const km_vmc_config *c)
{
    if (c->destination_count < 1 || c->destination_count > KM_OSC_MAX_DESTINATIONS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: destination_count %d outside 1..%d",
                        c->destination_count, KM_OSC_MAX_DESTINATIONS);
    if (c->max_packet_bytes < 512 || c->max_packet_bytes > 65507)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: max_packet_bytes %d outside "
                        "512..65507", c->max_packet_bytes);
    if (c->ok_arguments != 1 && c->ok_arguments != 3 && c->ok_arguments != 4)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: ok_arguments %d: expected 1, 3 or 4",
                        c->ok_arguments);
    if (c->calibration_state < 0 || c->calibration_state > 3)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: calibration_state %d outside 0..3",
                        c->calibration_state);
    if (c->calibration_mode < 0 || c->calibration_mode > 2)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: calibration_mode %d outside 0..2",
                        c->calibration_mode);
    if (c->person < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: person %d < 0", c->person);
    for (int i = 0; i < c->destination_count; i++) {
        km_status st = km_osc_destination_check(&c->destinations[i]);
        if (st)
            return st;
    }
    return KM_OK;
}

km_status km_vmc_config_read(const km_config *cfg, const char *path, km_vmc_config *out)
{
    if (!cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc config: NULL argument");
    const char *section = path && *path ? path : "transport.vmc";
    if (strlen(section) > 200)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc config: path too long");
    km_vmc_config c = km_vmc_config_default();
    if (!km_config_has(cfg, section)) {
        *out = c;
        return KM_OK;
    }
    static const char *const known[] = {"enabled", "destinations", "person", "max_packet_bytes",
                                        "ok_arguments", "calibration_state", "calibration_mode",
                                        NULL};
    km_status st = km_config_check_keys(cfg, section, known);
    if (st)
        return st;
    char key[256];
    snprintf(key, sizeof key, "%s.enabled", section);
    st = km_config_get_bool(cfg, key, c.enabled, &c.enabled);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    snprintf(key, sizeof key, "%s.destinations", section);
    st = km_osc_destinations_read(cfg, key, c.destinations, KM_OSC_MAX_DESTINATIONS,
                                  &c.destination_count);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    static const struct {
        const char *name;
        long min, max;
        size_t offset;
    } ints[] = {
        {"person", 0, 1000, offsetof(km_vmc_config, person)},
        {"max_packet_bytes", 512, 65507, offsetof(km_vmc_config, max_packet_bytes)},
        {"ok_arguments", 1, 4, offsetof(km_vmc_config, ok_arguments)},
        {"calibration_state", 0, 3, offsetof(km_vmc_config, calibration_state)},
        {"calibration_mode", 0, 2, offsetof(km_vmc_config, calibration_mode)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int *field = (int *)((char *)&c + ints[i].offset);
        long value;
        snprintf(key, sizeof key, "%s.%s", section, ints[i].name);
        st = km_config_get_int(cfg, key, *field, ints[i].min, ints[i].max, &value);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        *field = (int)value;
    }
    if (c.ok_arguments == 2) {
        snprintf(key, sizeof key, "%s.ok_arguments", section);
        return km_error(KM_ERR_PARSE, "%s:%d: %s: expected 1, 3 or 4", km_config_name(cfg),
                        km_config_line(cfg, key), key);
    }
    *out = c;
    return KM_OK;
}

/* --------------------------------------------------------------- sender */

struct km_vmc_sender {
    km_vmc_config cfg;
    km_osc_dest dests[KM_OSC_MAX_DESTINATIONS];
    int dest_count;
    uint64_t start_ns;
    uint8_t *packet;                  /* max_packet_bytes */
    km_osc_counters counters;
    /* Scratch of one call (Unity frame). */
    km_vec3 position[KM_HUMAN_BONE_COUNT];
    km_quat rotation[KM_HUMAN_BONE_COUNT];
    bool due[KM_OSC_MAX_DESTINATIONS];
};

km_vmc_sender *km_vmc_sender_create(const km_vmc_config *cfg, km_status *err)
{
    km_status st = cfg ? check_config(cfg)
                       : km_error(KM_ERR_INVALID_ARGUMENT, "vmc: NULL config");
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    km_vmc_sender *s = calloc(1, sizeof *s);
    if (!s) {
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "vmc: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    for (int i = 0; i < KM_OSC_MAX_DESTINATIONS; i++)
        s->dests[i].fd = -1;
    s->packet = malloc((size_t)cfg->max_packet_bytes);
    if (!s->packet) {
        st = km_error(KM_ERR_NO_MEMORY, "vmc: out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->destination_count; i++) {
        st = km_osc_dest_open(&s->dests[i], &cfg->destinations[i]);
        if (st)
            goto fail;
        s->dest_count++;
    }
    s->start_ns = km_time_now_ns();
    if (err)
        *err = KM_OK;
    return s;
fail:
    km_vmc_sender_destroy(s);
    if (err)
        *err = st;
    return NULL;
}

void km_vmc_sender_destroy(km_vmc_sender *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->dest_count; i++)
        km_osc_dest_close(&s->dests[i]);
    free(s->packet);
    free(s);
}

void km_vmc_sender_stats(const km_vmc_sender *s, km_osc_sender_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (s)
        km_osc_counters_get(&s->counters, out);
}

/* Send the bundle in the writer to every due destination. */
static void flush(km_vmc_sender *s, km_osc_writer *w)
{
    for (int i = 0; i < s->dest_count; i++) {
        if (!s->due[i])
            continue;
        km_status st = km_osc_dest_send(&s->dests[i], w->buf, w->length);
        atomic_fetch_add_explicit(st ? &s->counters.errors : &s->counters.packets, 1,
                                  memory_order_relaxed);
    }
}

/* Begin a message element in the current bundle, flushing it first when a message of
 * `size` bytes would not fit. */
static size_t begin(km_vmc_sender *s, km_osc_writer *w, uint64_t timetag, size_t size)
{
    if (w->length > 16 && w->length + 4 + size > w->capacity) {
        flush(s, w);
        km_osc_writer_init(w, w->buf, w->capacity);
        km_osc_write_bundle_header(w, timetag);
    }
    return km_osc_begin_element(w);
}

static bool finite3(km_vec3 v)
{
    return isfinite(v.x) && isfinite(v.y) && isfinite(v.z);
}

km_status km_vmc_send(km_vmc_sender *s, const km_vmc_pose *pose, uint64_t now_ns)
{
    if (!s)
        return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: NULL sender");
    bool loaded = pose && (pose->present & 1u) != 0; /* Hips anchors the avatar */
    if (loaded) {
        for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++) {
            if (!(pose->present >> b & 1u))
                continue;
            km_quat q = pose->rotation[b];
            double norm = sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w);
            if (!finite3(pose->pos_m[b]) || !isfinite(norm) || norm < 1e-6)
                return km_error(KM_ERR_INVALID_ARGUMENT, "vmc: person %d bone %s: position "
                                "or rotation not finite (or zero quaternion)", pose->person,
                                bone_names[b]);
            s->position[b] = km_vmc_position_to_unity(pose->pos_m[b]);
            s->rotation[b] = km_vmc_rotation_to_unity(km_quat_normalize(q));
        }
    }
    bool any = false;
    for (int i = 0; i < s->dest_count; i++) {
        s->due[i] = km_osc_dest_due(&s->dests[i], now_ns);
        if (!s->due[i])
            atomic_fetch_add_explicit(&s->counters.rate_limited, 1, memory_order_relaxed);
        any |= s->due[i];
    }
    if (!any)
        return KM_OK;

    /* Time tag "immediately" (OSC 1.0: 1): a receiver whose clock runs behind ours would
     * otherwise hold a bundle stamped with our time; for an avatar only the newest pose
     * matters, so every receiver applies it on arrival. */
    const uint64_t timetag = KM_OSC_TIMETAG_IMMEDIATE;
    km_osc_writer w;
    km_osc_writer_init(&w, s->packet, (size_t)s->cfg.max_packet_bytes);
    km_osc_write_bundle_header(&w, timetag);

    /* /VMC/Ext/OK: 12 + 4 (",iiii" padded to 8) + 4 per argument. */
    static const char *const ok_types[] = {NULL, ",i", NULL, ",iii", ",iiii"};
    int n = s->cfg.ok_arguments;
    size_t mark = begin(s, &w, timetag, 12 + 8 + 4 * (size_t)n);
    km_osc_write_string(&w, "/VMC/Ext/OK");
    km_osc_write_string(&w, ok_types[n]);
    km_osc_write_int32(&w, loaded ? 1 : 0);
    if (n >= 3) {
        km_osc_write_int32(&w, s->cfg.calibration_state);
        km_osc_write_int32(&w, s->cfg.calibration_mode);
    }
    if (n == 4)
        km_osc_write_int32(&w, loaded ? 1 : 0);
    km_osc_end_element(&w, mark);

    mark = begin(s, &w, timetag, 12 + 4 + 4);
    km_osc_write_string(&w, "/VMC/Ext/T");
    km_osc_write_string(&w, ",f");
    km_osc_write_float(&w, (double)(now_ns - s->start_ns) * 1e-9);
    km_osc_end_element(&w, mark);

    if (loaded) {
        /* The avatar root stays at the origin with no rotation: Hips carries the pose. */
        mark = begin(s, &w, timetag, 20 + 12 + 8 + 28);
        km_osc_write_string(&w, "/VMC/Ext/Root/Pos");
        km_osc_write_string(&w, ",sfffffff");
        km_osc_write_string(&w, "root");
        for (int k = 0; k < 6; k++)
            km_osc_write_float(&w, 0.0);
        km_osc_write_float(&w, 1.0);
        km_osc_end_element(&w, mark);

        for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++) {
            if (!(pose->present >> b & 1u))
                continue;
            int parent = bone_parents[b];
            while (parent >= 0 && !(pose->present >> parent & 1u))
                parent = bone_parents[parent];
            km_vec3 local_position = s->position[b];
            km_quat local_rotation = s->rotation[b];
            if (parent >= 0) {
                km_quat inverse = km_quat_conjugate(s->rotation[parent]);
                local_position = km_quat_rotate(inverse, km_vec3_sub(s->position[b],
                                                                     s->position[parent]));
                local_rotation = km_quat_normalize(km_quat_mul(inverse, s->rotation[b]));
            }
            const char *name = bone_names[b];
            mark = begin(s, &w, timetag, 20 + 12 + km_osc_padded_size(strlen(name)) + 28);
            km_osc_write_string(&w, "/VMC/Ext/Bone/Pos");
            km_osc_write_string(&w, ",sfffffff");
            km_osc_write_string(&w, name);
            km_osc_write_float(&w, local_position.x);
            km_osc_write_float(&w, local_position.y);
            km_osc_write_float(&w, local_position.z);
            km_osc_write_float(&w, local_rotation.x);
            km_osc_write_float(&w, local_rotation.y);
            km_osc_write_float(&w, local_rotation.z);
            km_osc_write_float(&w, local_rotation.w);
            km_osc_end_element(&w, mark);
        }
    }
    if (w.overflow)
        return km_error(KM_ERR_INTERNAL, "vmc: a message did not fit %d bytes",
                        s->cfg.max_packet_bytes);
    flush(s, &w);
    return KM_OK;
}

/* ------------------------------------------------- skeleton -> VMC pose */

void km_vmc_pose_from_skeleton(const km_skeleton_pose *pose, uint64_t time_ns,
                               km_vmc_pose *out)
{
    if (!out)
        return;
    static const km_vec3 origin = {0, 0, 0};
    static const km_quat identity = {0, 0, 0, 1};
    out->person = pose ? pose->person : 0;
    out->time_ns = time_ns;
    out->present = 0;
    for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++) {
        out->pos_m[b] = origin;
        out->rotation[b] = identity;
    }
    if (!pose)
        return;
    /* Both sides name their joints with Unity's HumanBodyBones names and use the same rest
     * convention (identity = T-pose facing +Z), so a joint is copied to the bone of its
     * name. An untracked pose holds the last solve: it is copied but nothing is marked
     * present, so the sender says "no avatar data". */
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        km_human_bone bone;
        const char *name = km_joint_name(j);
        if (!name || !*name || km_human_bone_parse(name, &bone) != KM_OK)
            continue;
        out->pos_m[bone] = pose->joint_pos_m[j];
        out->rotation[bone] = pose->joint_rot[j];
        /* a joint no labeled marker supports (an occluded arm) is a guess: not sent, so
         * receivers hold the bone where it was */
        if (pose->tracked && (pose->joints_observed >> j & 1u))
            out->present |= 1ull << bone;
    }
}
