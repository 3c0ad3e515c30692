/* Kinema transport: every solved frame leaves the pipeline here.
 *   wire  - the versioned binary encoding of a solved frame (docs/protocol.md), encoder and
 *           decoder, no allocation.
 *   zmq   - a ZeroMQ PUB socket; each message is [topic][payload] multipart.
 *   osc   - OSC over UDP (liblo) in Kinema's own namespace (/kinema/...).
 *   vmc   - the VMC protocol (OSC) for Unity/Unreal/VSeeFace-style avatar receivers.
 * Publishers never block the pipeline: a slow subscriber loses messages, the tracker does
 * not slow down. Defaults bind/send to 127.0.0.1 only. */
#ifndef KINEMA_TRANSPORT_H
#define KINEMA_TRANSPORT_H

#include "kinema/core.h"
#include "kinema/gesture.h"
#include "kinema/skeleton.h"
#include "kinema/tracking.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the pipeline hands to the publishers once per frame set. Pointers are borrowed for
 * the duration of the publish call. */
/* State of one camera in a solved frame (CAMERA_STATUS section). */
typedef enum km_camera_state {
    KM_CAMERA_STATE_OK = 0,           /* its frame is in this frame set */
    KM_CAMERA_STATE_MISSING = 1,      /* no frame in this set (late, dropped, node silent) */
    KM_CAMERA_STATE_DISCONNECTED = 2, /* device gone (unplugged, stalled): being reattached */
    KM_CAMERA_STATE_INACTIVE = 3,     /* not run by this process */
} km_camera_state;

/* "ok", "missing", "disconnected", "inactive" (the names of docs/protocol.md); "unknown"
 * for other values. */
const char *km_camera_state_name(km_camera_state state);

typedef struct km_camera_status {
    km_camera_state state;
    uint64_t frames;              /* frames delivered since start */
    uint64_t dropped;             /* frames lost in capture (pool or ring full) */
    uint64_t errors;              /* source errors (USB transfer errors, restarts) */
} km_camera_status;

typedef struct km_solved_frame {
    uint64_t frame;               /* frame-set number */
    uint64_t capture_time_ns;     /* exposure time of the frame set (CLOCK_MONOTONIC) */
    uint64_t solved_time_ns;      /* when the solve finished */
    uint64_t publish_time_ns;     /* stamped by the publisher just before sending */
    int camera_count;
    uint16_t observation_count[KM_MAX_CAMERAS]; /* 2D blobs per camera */
    const km_marker_set *markers; /* may be NULL (no markers) */
    /* The 2D observations the markers were solved from (all cameras); NULL = not published
     * (no `obs2d` topic, no OBSERVATIONS_2D section in `frame`). */
    const km_observation_set *observations;
    /* Added for the live stages (issues 5-8). NULL / 0 = none this frame; every array is
     * borrowed for the publish call like the rest. */
    const km_rigid_pose *rigid_bodies;       /* one per definition, definition order */
    const km_rigid_definition *rigid_definitions; /* same order: ids and names */
    int rigid_body_count;
    const km_skeleton_pose *skeletons;       /* one per subject (tracked flag per pose) */
    int skeleton_count;
    const km_hand *hands;                    /* hands seen this frame (landmarks, centres) */
    int hand_count;
    const km_gesture_event *events;          /* gesture, hand-pose and hand-eye events
                                                decided while solving this frame */
    int event_count;
    const km_camera_status *camera_status;   /* camera_count entries */
} km_solved_frame;

/* ------------------------------------------------------------------ wire v1 */

#define KM_WIRE_VERSION 1

/* Layout constants of wire v1 (docs/protocol.md has the full byte table). A message is
 * a fixed 56-byte little-endian header, camera_count u16 observation counts, a table of
 * 16-byte section entries, then the sections (8-byte aligned). Section types a decoder
 * does not know are skipped, so new streams are added without a version bump. */
#define KM_WIRE_MAGIC "KMF1"
#define KM_WIRE_HEADER_SIZE 56
#define KM_WIRE_SECTION_ENTRY_SIZE 16
#define KM_WIRE_MARKER_RECORD_SIZE 24
#define KM_WIRE_OBS2D_RECORD_SIZE 16
#define KM_WIRE_MAX_CAMERAS 64
/* Records of the v1.2 sections (docs/protocol.md has each byte table). Every record size is
 * a multiple of 8, so each section starts 8-byte aligned. */
#define KM_WIRE_RIGID_RECORD_SIZE 40
#define KM_WIRE_SKELETON_HEADER_SIZE 20  /* per-person fields before the joints (v1.3: with
                                            the joints_observed mask at 16) */
#define KM_WIRE_SKELETON_V12_HEADER_SIZE 16 /* a v1.2 sender's header: no mask */
#define KM_WIRE_SKELETON_JOINT_SIZE 44   /* pos f32x3, world rot f32x4, local rot f32x4 */
#define KM_WIRE_SKELETON_RECORD_SIZE 944 /* 20 + 21 x 44 = 944 (v1.2: 16 + 924, padded) */
#define KM_WIRE_HAND_RECORD_SIZE 288
#define KM_WIRE_EVENT_NAME_SIZE 64       /* = KM_GESTURE_NAME_MAX: names travel uncut */
#define KM_WIRE_EVENT_RECORD_SIZE 176
#define KM_WIRE_CAMERA_STATUS_RECORD_SIZE 32
/* Record flag bits. */
#define KM_WIRE_RIGID_TRACKED 0x1u
#define KM_WIRE_SKELETON_TRACKED 0x1u
#define KM_WIRE_HAND_CENTRE_VALID 0x1u

/* Section types (all written since v1.2; v1.0 had MARKERS, v1.1 added OBSERVATIONS_2D).
 * 0x8000 and above: experimental/private, never assigned. */
typedef enum km_wire_section_type {
    KM_WIRE_SECTION_MARKERS = 1,
    KM_WIRE_SECTION_RIGID_BODIES = 2,
    KM_WIRE_SECTION_SKELETONS = 3,
    KM_WIRE_SECTION_HAND_POSES = 4,
    KM_WIRE_SECTION_EVENTS = 5,
    KM_WIRE_SECTION_CAMERA_STATUS = 6,
    KM_WIRE_SECTION_OBSERVATIONS_2D = 7
} km_wire_section_type;

/* ZeroMQ topics (first frame of each multipart message on the PUB socket). ZeroMQ matches
 * subscriptions by prefix, so no topic is a prefix of another (docs/protocol.md). */
#define KM_WIRE_TOPIC_FRAME "frame"       /* wire message with every section */
#define KM_WIRE_TOPIC_MARKERS "markers"   /* wire message: header + MARKERS */
#define KM_WIRE_TOPIC_OBS2D "obs2d"       /* wire message: header + OBSERVATIONS_2D */
#define KM_WIRE_TOPIC_STATUS "status"     /* JSON object, once per status interval */
#define KM_WIRE_TOPIC_GESTURE "gesture"   /* JSON Lines event (formats.md), one per hand pose
                                             or gesture event */
#define KM_WIRE_TOPIC_HANDEYE "handeye"   /* JSON Lines event, one per hand-eye event */
/* Since v1.2: wire message with header + that one section, when the frame has the array. */
#define KM_WIRE_TOPIC_RIGID "rigid"       /* RIGID_BODIES */
#define KM_WIRE_TOPIC_SKELETON "skeleton" /* SKELETONS */
#define KM_WIRE_TOPIC_HANDS "hands"       /* HAND_POSES */

/* Which sections a message carries (km_wire_encode). */
#define KM_WIRE_WITH_MARKERS 0x1u
#define KM_WIRE_WITH_OBS2D 0x2u
#define KM_WIRE_WITH_RIGID 0x4u
#define KM_WIRE_WITH_SKELETONS 0x8u
#define KM_WIRE_WITH_HANDS 0x10u
#define KM_WIRE_WITH_EVENTS 0x20u
#define KM_WIRE_WITH_CAMERA_STATUS 0x40u
#define KM_WIRE_WITH_ALL 0x7Fu

/* Exact bytes km_wire_encode_frame writes for this many cameras and markers with no
 * observations (0 when a count is out of range). */
size_t km_wire_encoded_size(int camera_count, int marker_count);
/* Exact bytes of a message with the given sections (KM_WIRE_WITH_*); 0 when out of range.
 * The v1.2 sections (rigid, skeletons, hands, events, camera status) are counted empty
 * here (their 16-byte entry only): size those with km_wire_encoded_size_frame. */
size_t km_wire_encoded_size_sections(int camera_count, int marker_count,
                                     int observation_count, unsigned sections);
/* Exact bytes km_wire_encode(frame, sections, ...) writes, every section counted with the
 * frame's own counts; 0 when a count is out of range (negative, more than 64 cameras, a
 * count with a NULL array, or a message over 2 GiB). */
size_t km_wire_encoded_size_frame(const km_solved_frame *frame, unsigned sections);
/* An upper bound of km_wire_encode_frame's size for any frame within these limits (any
 * camera_count <= KM_WIRE_MAX_CAMERAS, with camera status), observations excluded: what a
 * recorder or publisher allocates once. 0 when a limit is negative. */
size_t km_wire_frame_size_max(int max_markers, int max_rigid_bodies, int max_skeletons,
                              int max_hands, int max_events);

/* Encode the sections asked for (KM_WIRE_WITH_*; a section is written even when its set
 * is NULL or empty, with count 0) into buf. KM_ERR_CAPACITY when it does not fit;
 * *length = bytes. No allocation. */
km_status km_wire_encode(const km_solved_frame *frame, unsigned sections, uint8_t *buf,
                         size_t capacity, size_t *length);
/* The sections of the `frame` topic: MARKERS always, plus each other section whose array
 * is set in the frame (observations, rigid_bodies, skeletons, hands, events,
 * camera_status; a set array with count 0 gives an empty section). */
unsigned km_wire_frame_sections(const km_solved_frame *frame);
/* km_wire_encode(frame, km_wire_frame_sections(frame), ...). */
km_status km_wire_encode_frame(const km_solved_frame *frame, uint8_t *buf, size_t capacity,
                               size_t *length);
/* Bytes km_wire_encode_frame needs for a frame with this many markers and no
 * observations: an upper bound valid for any camera_count <= KM_WIRE_MAX_CAMERAS. */
size_t km_wire_frame_size(int marker_count);

/* Decoded view of a frame message. markers points into `storage` given by the caller. */
typedef struct km_wire_frame {
    uint16_t version;
    uint64_t frame;
    uint64_t capture_time_ns, solved_time_ns, publish_time_ns;
    int camera_count;
    uint16_t observation_count[KM_MAX_CAMERAS];
    int marker_count;
    km_marker *markers;           /* = storage */
    uint16_t flags;               /* header flags (none defined in v1) */
    int section_count;            /* entries in the section table */
    int sections_skipped;         /* sections of types this decoder does not know or was not
                                     given storage for */
    bool has_markers;             /* a MARKERS section was present */
    bool has_observations;        /* an OBSERVATIONS_2D section was decoded */
    int observation_total;        /* 2D observations decoded (all cameras) */
    km_observation *observations; /* = storage->observations */
    /* v1.2 sections; each is decoded only when km_wire_decode_streams was given an array
     * for it (else it is skipped like an unknown section), into that array. */
    bool has_rigid_bodies, has_skeletons, has_hands, has_events, has_camera_status;
    int rigid_body_count;         /* definition = record index, marker_ids not carried */
    km_rigid_pose *rigid_bodies;
    int skeleton_count;
    km_skeleton_pose *skeletons;
    int hand_count;
    km_hand *hands;
    int event_count;
    km_gesture_event *events;
    int camera_status_count;      /* = camera_count when written by Kinema */
    km_camera_status *camera_status;
} km_wire_frame;

/* Caller-owned arrays the decoder fills (it never allocates). observations may be NULL:
 * then an OBSERVATIONS_2D section is skipped like an unknown one. */
typedef struct km_wire_storage {
    km_marker *markers;
    int marker_capacity;
    km_observation *observations;
    int observation_capacity;
} km_wire_storage;

/* Caller-owned arrays for the v1.2 sections (km_wire_decode_streams). A separate struct so
 * that callers initialising km_wire_storage positionally ({markers, n, obs, m}) stay valid
 * and warning-free. A NULL array skips its section like an unknown one; more records than
 * the capacity: KM_ERR_CAPACITY. */
typedef struct km_wire_stream_storage {
    km_rigid_pose *rigid_bodies;
    int rigid_body_capacity;
    km_skeleton_pose *skeletons;
    int skeleton_capacity;
    km_hand *hands;
    int hand_capacity;
    km_gesture_event *events;
    int event_capacity;
    km_camera_status *camera_status;
    int camera_status_capacity;
} km_wire_stream_storage;

/* Validate and decode. KM_ERR_FORMAT (with the byte offset in the message) on truncated,
 * oversized or inconsistent input; KM_ERR_UNSUPPORTED on an unknown version;
 * KM_ERR_CAPACITY when more records than the storage holds. */
km_status km_wire_decode(const uint8_t *buf, size_t length, const km_wire_storage *storage,
                         km_wire_frame *out);
/* km_wire_decode plus the v1.2 sections for which `streams` has arrays (streams NULL: same
 * as km_wire_decode, every v1.2 section skipped). */
km_status km_wire_decode_streams(const uint8_t *buf, size_t length,
                                 const km_wire_storage *storage,
                                 const km_wire_stream_storage *streams, km_wire_frame *out);
/* Markers only (OBSERVATIONS_2D skipped). */
km_status km_wire_decode_frame(const uint8_t *buf, size_t length, km_marker *storage,
                               int storage_capacity, km_wire_frame *out);

/* ---------------------------------------------------------------- publishers */

typedef struct km_publisher km_publisher;

typedef struct km_publisher_config {
    bool zmq_enabled;             /* default true */
    char zmq_endpoint[128];       /* default "tcp://127.0.0.1:5555" (bind) */
    int zmq_sndhwm;               /* send high-water mark, messages (default 1000) */
    bool osc_enabled;             /* default true */
    char osc_host[128];           /* default "127.0.0.1" */
    char osc_port[16];            /* default "9000" */
    int max_markers;              /* sizes the encode buffer (default 512) */
    int osc_max_packet_bytes;     /* split a frame into bundles of at most this many bytes
                                     (default 8192, 512..65507) */
    /* Added by issue 8 (kept at the end so older initialisers stay valid): */
    char zmq_latest_endpoint[128]; /* "" (default): off. Else a PUB sending the `frame`
                                      message alone (single part): a consumer that sets
                                      ZMQ_CONFLATE on its SUB only ever reads the newest */
    char zmq_curve_secret_key_file[512]; /* "" (default): no CurveZMQ, local binds only */
    uint64_t status_interval_ns;  /* `status` topic period (default 1 s; 0 = off) */
    /* Added with wire v1.2: most records per frame of each stream (a frame with more is
     * refused with KM_ERR_CAPACITY, nothing sent). 0 in an older initialiser = default. */
    int max_rigid_bodies;         /* default 64 */
    int max_skeletons;            /* default KM_SKELETON_MAX_PEOPLE */
    int max_hands;                /* default 16 */
    int max_events;               /* default 64 */
} km_publisher_config;

/* Extra members for the status message: write `,"key":value` pairs (JSON, leading comma)
 * into out (size bytes) and return the length written (0..size-1). Called on the thread
 * that calls km_publisher_send / km_publisher_tick. */
typedef size_t (*km_publisher_status_fn)(void *user, char *out, size_t size);

km_publisher_config km_publisher_config_default(void);
/* Read the `transport:` section of a config (docs/config.md). */
km_status km_publisher_config_read(const km_config *cfg, const char *path,
                                   km_publisher_config *out);
/* Opens the sockets; all buffers allocated here. */
km_publisher *km_publisher_create(const km_publisher_config *cfg, km_status *err);
void km_publisher_destroy(km_publisher *pub);
/* Send one solved frame on every enabled transport. Never blocks on a subscriber.
 * Stamps frame->publish_time_ns. Call from one thread at a time (the solver thread).
 * KM_ERR_CAPACITY (nothing sent) when the frame has more than max_markers markers, more
 * than KM_WIRE_MAX_CAMERAS cameras, or more rigid bodies / skeletons / hands / events than
 * the config's limits (or a negative count). A transport that fails to send counts it in the stats
 * and does not make the call fail: the pipeline goes on. */
km_status km_publisher_send(km_publisher *pub, km_solved_frame *frame);
/* The endpoint the PUB socket is bound to, with a wildcard port ("tcp://127.0.0.1:*")
 * resolved to the real one; "" when ZeroMQ is disabled. Owned by pub. */
const char *km_publisher_zmq_endpoint(const km_publisher *pub);
/* The latest-frame endpoint as bound; "" when not configured. Owned by pub. */
const char *km_publisher_zmq_latest_endpoint(const km_publisher *pub);
/* Publish the `status` message if the status interval has passed since the last one
 * (km_publisher_send calls this too). Call it from the solver thread's loop even when no
 * frame comes, so subscribers see a stalled tracker. now_ns: km_time_now_ns(). */
void km_publisher_tick(km_publisher *pub, uint64_t now_ns);
/* Let the pipeline add its own members (dropped frames, camera state) to `status`.
 * Call before the first send. fn NULL removes it. */
void km_publisher_set_status_fn(km_publisher *pub, km_publisher_status_fn fn, void *user);
/* Format the status message into out now (what `status` carries); returns its length,
 * 0 when it does not fit. For the control socket's "status" reply and tests. */
size_t km_publisher_status_json(km_publisher *pub, uint64_t now_ns, char *out, size_t size);

/* Counters since create; safe to read from another thread (each counter is exact, the
 * set is not a snapshot). zmq_sent counts messages handed to libzmq: one per topic that has
 * a subscriber (topics nobody subscribed to are not even encoded) plus one per frame on the
 * latest endpoint; zmq_dropped messages zmq_send refused (EAGAIN or error). The PUB side
 * drops silently per subscriber whose queue (zmq.sndhwm) is full: libzmq does not report
 * those (docs/protocol.md). osc_sent counts UDP packets (bundles), osc_errors failed sends
 * (EAGAIN included). */
typedef struct km_publisher_stats {
    uint64_t zmq_sent, zmq_dropped;
    uint64_t osc_sent, osc_errors;
    uint64_t frames;              /* km_publisher_send calls that published */
    uint64_t rejected;            /* calls refused with KM_ERR_CAPACITY / invalid frame */
    uint64_t status_sent;         /* status messages handed to libzmq */
} km_publisher_stats;
void km_publisher_stats_get(const km_publisher *pub, km_publisher_stats *out);


/* ------------------------------------------------------ OSC destinations */

/* Where an OSC stream (VMC, events) goes. Each destination has its own UDP socket, so
 * several receivers (a Unity VMC marionette, VSeeFace, a show controller) can each get the
 * stream at their own rate. A multicast address (224.0.0.0/4, ff00::/8) is sent to with
 * IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS = multicast_ttl. */
#define KM_OSC_MAX_DESTINATIONS 8

typedef struct km_osc_destination {
    char host[128];               /* name or address (unicast or multicast) */
    char port[16];                /* 1..65535 */
    double max_rate_hz;           /* 0 = every call; else at most this many packets (sets
                                     of bundles) per second, evenly spaced. Streams only:
                                     events are never rate limited */
    int multicast_ttl;            /* default 1 (this subnet), 0..255 */
} km_osc_destination;

/* Counters of one OSC sender (all destinations); safe to read from another thread. */
typedef struct km_osc_sender_stats {
    uint64_t packets;             /* UDP datagrams sent */
    uint64_t errors;              /* failed sendto (EAGAIN included) */
    uint64_t rate_limited;        /* (call, destination) pairs skipped by max_rate_hz */
} km_osc_sender_stats;

/* Read a list of destinations at `path` (a YAML sequence of {host, port, max_rate_hz,
 * multicast_ttl}); KM_ERR_NOT_FOUND when absent (out untouched); KM_ERR_PARSE with
 * file:line otherwise. */
km_status km_osc_destinations_read(const km_config *cfg, const char *path,
                                   km_osc_destination *out, int capacity, int *count);

/* --------------------------------------------------- skeletons for VMC */

/* Unity's HumanBodyBones, same numbers and names (the VMC protocol's bone names). */
typedef enum km_human_bone {
    KM_BONE_HIPS = 0,
    KM_BONE_LEFT_UPPER_LEG, KM_BONE_RIGHT_UPPER_LEG, KM_BONE_LEFT_LOWER_LEG,
    KM_BONE_RIGHT_LOWER_LEG, KM_BONE_LEFT_FOOT, KM_BONE_RIGHT_FOOT, KM_BONE_SPINE,
    KM_BONE_CHEST, KM_BONE_NECK, KM_BONE_HEAD, KM_BONE_LEFT_SHOULDER, KM_BONE_RIGHT_SHOULDER,
    KM_BONE_LEFT_UPPER_ARM, KM_BONE_RIGHT_UPPER_ARM, KM_BONE_LEFT_LOWER_ARM,
    KM_BONE_RIGHT_LOWER_ARM, KM_BONE_LEFT_HAND, KM_BONE_RIGHT_HAND, KM_BONE_LEFT_TOES,
    KM_BONE_RIGHT_TOES, KM_BONE_LEFT_EYE, KM_BONE_RIGHT_EYE, KM_BONE_JAW,
    KM_BONE_LEFT_THUMB_PROXIMAL, /* 24; then Intermediate, Distal; Index, Middle, Ring,
                                    Little likewise; then the right hand (39..53) */
    KM_BONE_RIGHT_THUMB_PROXIMAL = 39,
    KM_BONE_UPPER_CHEST = 54,
    KM_HUMAN_BONE_COUNT = 55
} km_human_bone;

/* "Hips", "LeftThumbIntermediate", ...; NULL when out of range. */
const char *km_human_bone_name(int bone);
/* Name -> bone (exact, case-sensitive as Unity's). KM_ERR_NOT_FOUND otherwise. */
km_status km_human_bone_parse(const char *name, km_human_bone *out);
/* Unity's humanoid parent (Hips: -1; UpperChest's parent is Chest, Neck's and the
 * shoulders' parent is UpperChest). */
int km_human_bone_parent(int bone);

/* One person's skeleton in Unity HumanBodyBones order, the input of the VMC sender (the
 * skeleton stage's km_skeleton_pose, include/kinema/skeleton.h, is mapped onto it).
 *   pos_m[b]     world position of bone b's joint (its origin), metres, Kinema's world
 *                frame (right-handed, Y up).
 *   rotation[b]  world orientation of bone b relative to its rest pose in the T-pose
 *                facing +Z (identity for every bone = a T-pose facing +Z). This is the
 *                convention of VRM's normalised humanoid, which VMC receivers drive.
 * Only bones whose bit is set in `present` are sent; a missing bone's children are sent
 * relative to their nearest present ancestor. */
typedef struct km_vmc_pose {
    int person;
    uint64_t time_ns;             /* capture time (CLOCK_MONOTONIC) */
    uint64_t present;             /* bit b: bone b solved in this frame */
    km_vec3 pos_m[KM_HUMAN_BONE_COUNT];
    km_quat rotation[KM_HUMAN_BONE_COUNT];
} km_vmc_pose;

/* A solved skeleton (include/kinema/skeleton.h) as a VMC pose: each joint goes to the bone of
 * the same HumanBodyBones name (both use Unity's rest convention: identity = T-pose facing
 * +Z); an untracked pose gives present = 0, and a joint whose joints_observed bit is clear
 * is not present (receivers hold that bone). No allocation. */
void km_vmc_pose_from_skeleton(const km_skeleton_pose *pose, uint64_t time_ns,
                               km_vmc_pose *out);

/* ---------------------------------------------------------------- VMC */

/* VMC protocol, performer -> marionette (protocol.vmc.info): per call one set of OSC
 * bundles to every destination whose rate limit allows it:
 *   /VMC/Ext/OK ,iiii  loaded calibration_state calibration_mode tracking_status (V2.7;
 *                       ok_arguments 1 or 3 send the older forms)
 *   /VMC/Ext/T  ,f     seconds since the sender was created
 *   /VMC/Ext/Root/Pos ,sfffffff  "root" p.xyz q.xyzw (the avatar root: origin, identity)
 *   /VMC/Ext/Bone/Pos ,sfffffff  HumanBodyBones name, LOCAL position and rotation of the
 *                       bone in its parent (Unity's Transform.localPosition/localRotation)
 * all converted to Unity's left-handed Y-up frame by mirroring X (docs/protocol.md has the
 * worked example). Bundles stay within max_packet_bytes. Nothing allocated per call. */
typedef struct km_vmc_config {
    bool enabled;                 /* for the daemon; default false */
    km_osc_destination destinations[KM_OSC_MAX_DESTINATIONS];
    int destination_count;        /* default 1: 127.0.0.1:39539, no rate limit */
    int person;                   /* whose skeleton drives the avatar (default 0) */
    int max_packet_bytes;         /* default 1472 (one Ethernet frame), 512..65507 */
    int ok_arguments;             /* 1, 3 or 4 (default 4) */
    int calibration_state;        /* sent in /VMC/Ext/OK: 0..3 (default 3, calibrated) */
    int calibration_mode;         /* 0 normal (default), 1 MR normal, 2 MR floor fix */
} km_vmc_config;

typedef struct km_vmc_sender km_vmc_sender;

km_vmc_config km_vmc_config_default(void);
/* The `transport.vmc` section (docs/config.md); absent section: defaults. */
km_status km_vmc_config_read(const km_config *cfg, const char *path, km_vmc_config *out);
/* Resolves the destinations and opens their sockets. Caller destroys. */
km_vmc_sender *km_vmc_sender_create(const km_vmc_config *cfg, km_status *err);
void km_vmc_sender_destroy(km_vmc_sender *sender);
/* Send one pose (pose NULL or without Hips: /VMC/Ext/OK with loaded 0 and /VMC/Ext/T only,
 * which tells the receiver the performer is alive but has no avatar data). now_ns is the
 * send time (km_time_now_ns()); it drives the rate limits and /VMC/Ext/T. Call from one
 * thread. A failed send is counted, not returned: KM_OK unless the pose is invalid
 * (non-finite values: KM_ERR_INVALID_ARGUMENT, nothing sent). */
km_status km_vmc_send(km_vmc_sender *sender, const km_vmc_pose *pose, uint64_t now_ns);
void km_vmc_sender_stats(const km_vmc_sender *sender, km_osc_sender_stats *out);
/* Kinema world (right-handed, Y up) -> Unity (left-handed, Y up): x mirrored. */
km_vec3 km_vmc_position_to_unity(km_vec3 p);
km_quat km_vmc_rotation_to_unity(km_quat q);

/* ------------------------------------------------------- gesture events */

/* Gesture events (km_gesture_event, km_hand_side) are the gesture stage's types
 * (include/kinema/gesture.h); transport only encodes and sends them. */


/* The event as one JSON Lines object (formats.md "Events", km_gesture_event_to_json),
 * without the newline, after checking what a receiver relies on. Returns the length the
 * whole text needs (like snprintf: >= size means it was cut), 0 for an invalid event (a
 * gesture or pose with an empty name, negative person, unknown hand, score outside [0,1] or
 * not finite). No allocation. */
size_t km_gesture_event_json(const km_gesture_event *event, char *out, size_t size);

/* Gesture events as plain OSC messages for show control (QLab, TouchDesigner, Max, …):
 *   /kinema/gesture ,sisf  name person hand score
 * one message (not a bundle) per event, to every destination; never rate limited. */
typedef struct km_event_sender_config {
    bool enabled;                 /* for the daemon; default false */
    km_osc_destination destinations[KM_OSC_MAX_DESTINATIONS];
    int destination_count;        /* default 1: 127.0.0.1:9000 (the /kinema namespace port) */
} km_event_sender_config;

typedef struct km_event_sender km_event_sender;

km_event_sender_config km_event_sender_config_default(void);
/* The `transport.events` section; absent: defaults. */
km_status km_event_sender_config_read(const km_config *cfg, const char *path,
                                      km_event_sender_config *out);
km_event_sender *km_event_sender_create(const km_event_sender_config *cfg, km_status *err);
void km_event_sender_destroy(km_event_sender *sender);
/* KM_ERR_INVALID_ARGUMENT for an invalid event (nothing sent); send failures are counted.
 * No allocation. One thread at a time. */
km_status km_event_send_gesture(km_event_sender *sender, const km_gesture_event *event);
void km_event_sender_stats(const km_event_sender *sender, km_osc_sender_stats *out);

/* The same event as its JSON line on ZeroMQ, when subscribed: hand poses and gestures on
 * the `gesture` topic, hand-eye events (gaze, reach, select) on `handeye`. Call from the
 * thread that calls km_publisher_send. KM_ERR_INVALID_ARGUMENT for an invalid event. */
km_status km_publisher_send_gesture(km_publisher *pub, const km_gesture_event *event);

/* ------------------------------------------------------------ control socket */

/* The local control socket (docs/protocol.md "Control"): ZeroMQ REP, default
 * tcp://127.0.0.1:5556, one JSON request -> one JSON reply:
 *   {"cmd":"status"} -> {"ok":true,"cmd":"status",...}   errors: {"ok":false,"error":"..."}
 * Requests are validated strictly (unknown commands, unknown or mistyped members,
 * malformed JSON are refused with a clear error and call nothing) before the handler the
 * pipeline registered for the command runs. Polled without blocking from the solver
 * thread (km_control_poll), so handlers run on that thread and need no locking. */
typedef enum km_control_command {
    KM_CONTROL_STATUS = 0,           /* no members */
    KM_CONTROL_LIST_CAMERAS,         /* no members */
    KM_CONTROL_START_RECORDING,      /* "path" (required), "duration_s" (optional, >= 0) */
    KM_CONTROL_STOP_RECORDING,       /* no members */
    KM_CONTROL_RELOAD_CALIBRATION,   /* "path" (optional: "" = the configured file) */
    KM_CONTROL_DEFINE_RIGID,         /* "name" (required), "markers": 3..32 track ids */
    KM_CONTROL_CALIBRATE,            /* "action" (required): start | ground | solve | status |
                                        apply | cancel; "path" (optional): start: the
                                        cameras' intrinsics (a rig file; "" = the running
                                        rig's), apply: where to save the new rig */
    KM_CONTROL_COMMAND_COUNT
} km_control_command;

#define KM_CONTROL_MAX_RIGID_MARKERS 32

/* A validated request. Strings are NUL-terminated and fit their arrays. */
typedef struct km_control_request {
    km_control_command command;
    char path[512];
    double duration_s;               /* 0 = until stop_recording */
    char name[64];                   /* define_rigid: 1..63 of [A-Za-z0-9_.-] */
    uint32_t marker_ids[KM_CONTROL_MAX_RIGID_MARKERS];
    int marker_count;
    char action[16];                 /* calibrate: one of the actions above */
} km_control_request;

/* The reply being built: a handler adds members after "ok" and "cmd". */
typedef struct km_control_reply km_control_reply;
km_status km_control_reply_add_string(km_control_reply *reply, const char *key,
                                      const char *value);
km_status km_control_reply_add_int(km_control_reply *reply, const char *key, long long value);
km_status km_control_reply_add_double(km_control_reply *reply, const char *key, double value);
km_status km_control_reply_add_bool(km_control_reply *reply, const char *key, bool value);
/* `json` must be one valid JSON value (an array, an object...); it is checked, and
 * KM_ERR_INVALID_ARGUMENT returned (nothing added) when it is not. */
km_status km_control_reply_add_json(km_control_reply *reply, const char *key,
                                    const char *json);

/* Return KM_OK to reply {"ok":true,...}; any other status replies
 * {"ok":false,"error":km_last_error()} and drops what the handler added. */
typedef km_status (*km_control_handler)(void *user, const km_control_request *request,
                                        km_control_reply *reply);

typedef struct km_control_config {
    bool enabled;                    /* for the daemon; default true */
    char endpoint[128];              /* default "tcp://127.0.0.1:5556" (bind) */
    char curve_secret_key_file[512]; /* "": local endpoints only (see Security) */
    int max_request_bytes;           /* default 65536 (larger requests: error reply) */
} km_control_config;

typedef struct km_control km_control;

km_control_config km_control_config_default(void);
/* The `transport.control` section; absent: defaults. A non-loopback endpoint without a
 * key file is an error (file:line). */
km_status km_control_config_read(const km_config *cfg, const char *path,
                                 km_control_config *out);
/* Binds the REP socket (non-loopback only with CurveZMQ keys: KM_ERR_INVALID_ARGUMENT
 * otherwise). Caller destroys. */
km_control *km_control_create(const km_control_config *cfg, km_status *err);
void km_control_destroy(km_control *control);
const char *km_control_endpoint(const km_control *control);
/* Register (or with fn NULL remove) the handler of a command. Without a handler the reply
 * is {"ok":false,"error":"... not available ..."} — except `status`, which then replies
 * with the publisher's status when one was given (km_control_set_publisher). */
void km_control_set_handler(km_control *control, km_control_command command,
                            km_control_handler fn, void *user);
/* Lets `status` include "status": <km_publisher_status_json> (borrowed, not owned). */
void km_control_set_publisher(km_control *control, km_publisher *pub);
/* Answer the requests waiting on the socket, at most 16 per call; never blocks. *handled
 * (may be NULL) = requests answered. Call from the solver thread once per loop. */
km_status km_control_poll(km_control *control, int *handled);
/* The socket-free core: one request text -> its reply text in out (NUL-terminated).
 * Used by km_control_poll, the tests and the fuzz target. */
size_t km_control_handle(km_control *control, const char *request, size_t length, char *out,
                         size_t size);
/* Parse and validate a request without running it (tests, fuzzing). */
km_status km_control_parse_request(const char *text, size_t length, km_control_request *out);
/* "status", "list_cameras", ...; NULL out of range. */
const char *km_control_command_name(km_control_command command);

/* ------------------------------------------------------------------ input */

/* Hand landmarks and eye-tracker gaze from outside trackers (MediaPipe, Ultraleap, Tobii,
 * Pupil, ...) for the gesture stage, over OSC or ZeroMQ (docs/protocol.md "Input").
 * Every message is validated (types, counts, finite values, ranges); a malformed one is
 * refused whole with an error sent back to its sender and changes nothing. */
#define KM_HAND_LANDMARK_COUNT 21 /* MediaPipe order: 0 wrist, 1-4 thumb CMC..tip,
                                     5-8 index MCP..tip, 9-12 middle, 13-16 ring,
                                     17-20 little */

typedef struct km_hand_input {
    int person;                   /* 0..1023 */
    km_hand_side hand;            /* left or right */
    uint64_t time_ns;             /* sender's time on our CLOCK_MONOTONIC; 0 = receive time */
    double confidence;            /* [0, 1] */
    km_vec3 landmarks_m[KM_HAND_LANDMARK_COUNT]; /* world frame, metres, |v| <= 100 */
} km_hand_input;

typedef struct km_gaze_input {
    int person;
    uint64_t time_ns;             /* as above */
    km_vec3 origin_m;             /* eye (or between the eyes), world frame */
    km_vec3 direction;            /* unit vector (normalised on decode; zero refused) */
    double confidence;
} km_gaze_input;

typedef enum km_input_kind { KM_INPUT_HAND = 1, KM_INPUT_GAZE = 2 } km_input_kind;

typedef struct km_input_message {
    km_input_kind kind;
    km_hand_input hand;           /* when kind == KM_INPUT_HAND */
    km_gaze_input gaze;           /* when kind == KM_INPUT_GAZE */
} km_input_message;

/* Decode one OSC packet (a message or a bundle of them) of /kinema/input/hand and
 * /kinema/input/gaze messages into out[0..capacity); *count = messages. now_ns replaces a
 * time of 0. All or nothing: KM_ERR_FORMAT / KM_ERR_INVALID_ARGUMENT (message says which
 * message and why) and *count = 0 when any message is malformed or unknown;
 * KM_ERR_CAPACITY when more than capacity. No allocation. */
km_status km_input_decode_osc(const uint8_t *buf, size_t length, uint64_t now_ns,
                              km_input_message *out, int capacity, int *count);
/* Decode one JSON input object ({"type":"hand",...} or {"type":"gaze",...}). */
km_status km_input_decode_json(const char *text, size_t length, uint64_t now_ns,
                               km_input_message *out);

typedef struct km_input_config {
    bool enabled;                 /* for the daemon; default false */
    char osc_host[128];           /* UDP bind address, default "127.0.0.1" ("" = no OSC) */
    char osc_port[16];            /* default "9100" */
    char zmq_endpoint[128];       /* ROUTER bind, default "tcp://127.0.0.1:5557" ("" = none) */
    char curve_secret_key_file[512]; /* for a non-loopback zmq_endpoint */
} km_input_config;

typedef struct km_input_receiver km_input_receiver;

km_input_config km_input_config_default(void);
km_status km_input_config_read(const km_config *cfg, const char *path, km_input_config *out);
km_input_receiver *km_input_receiver_create(const km_input_config *cfg, km_status *err);
void km_input_receiver_destroy(km_input_receiver *receiver);
/* The bound OSC port ("0" in the config picks a free one) and ZeroMQ endpoint. */
int km_input_receiver_osc_port(const km_input_receiver *receiver);
const char *km_input_receiver_zmq_endpoint(const km_input_receiver *receiver);
/* Take what arrived on both sockets, never blocking: up to capacity decoded messages into
 * out, *count of them. Malformed packets are answered (OSC: /kinema/input/error ,ss
 * <address> <why> to the sender; ZeroMQ: {"ok":false,"error":...}) and counted.
 * Call from the thread that consumes the input (the solver thread). */
km_status km_input_poll(km_input_receiver *receiver, km_input_message *out, int capacity,
                        int *count);

typedef struct km_input_stats {
    uint64_t accepted;            /* messages decoded */
    uint64_t rejected;            /* packets / messages refused */
} km_input_stats;
void km_input_receiver_stats(const km_input_receiver *receiver, km_input_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_TRANSPORT_H */
