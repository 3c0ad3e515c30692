/* Wire schema v1 (v1.2 sections): encoder and validating decoder of a solved frame
 * (docs/protocol.md).
 *
 * Every multi-byte field is little-endian and written/read byte by byte through the
 * helpers below, so the code is independent of host byte order and alignment. The decoder
 * checks every count and length against the buffer before it reads what they describe;
 * it never allocates and never reads outside [buf, buf + length). */
#include "kinema/transport.h"

#include <string.h>

/* Header field offsets (the table in docs/protocol.md). */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 4,
    OFF_FLAGS = 6,
    OFF_HEADER_SIZE = 8,
    OFF_CAMERA_COUNT = 10,
    OFF_SECTION_COUNT = 12,
    OFF_TABLE_OFFSET = 14,
    OFF_TOTAL_LENGTH = 16,
    OFF_RESERVED = 20,
    OFF_FRAME = 24,
    OFF_CAPTURE_TIME = 32,
    OFF_SOLVED_TIME = 40,
    OFF_PUBLISH_TIME = 48,
};

/* Section table entry field offsets. */
enum {
    ENTRY_TYPE = 0,
    ENTRY_RECORD_SIZE = 2,
    ENTRY_COUNT = 4,
    ENTRY_OFFSET = 8,
    ENTRY_LENGTH = 12,
};

/* Marker record field offsets. */
enum {
    MARKER_ID = 0,
    MARKER_X = 4,
    MARKER_Y = 8,
    MARKER_Z = 12,
    MARKER_RESIDUAL = 16,
    MARKER_VIEWS = 20,
    MARKER_FLAGS = 22,
};

/* 2D observation record field offsets. */
enum {
    OBS_X = 0,
    OBS_Y = 4,
    OBS_AREA = 8,
    OBS_CAMERA = 12,
    OBS_FLAGS = 14,
};

/* Rigid body record (v1.2). */
enum {
    RIGID_ID = 0,
    RIGID_FLAGS = 4,
    RIGID_MARKERS_USED = 6,
    RIGID_POS = 8,
    RIGID_ROT = 20,
    RIGID_ERROR = 36,
};

/* Skeleton record (v1.2): per-person fields, then joint_count joints of joint_size bytes
 * from joints_offset (each: pos, world rotation, local rotation). v1.3 grew the header by
 * the joints_observed mask (joints_offset 20; a v1.2 sender's 16 means no mask). */
enum {
    SKEL_PERSON = 0,
    SKEL_FLAGS = 2,
    SKEL_JOINT_COUNT = 4,
    SKEL_JOINT_SIZE = 6,
    SKEL_JOINTS_OFFSET = 8,
    SKEL_MARKERS_USED = 10,
    SKEL_RESIDUAL = 12,
    SKEL_JOINTS_OBSERVED = 16,
    JOINT_POS = 0,
    JOINT_ROT = 12,
    JOINT_LOCAL_ROT = 28,
};

/* Hand record (v1.2). */
enum {
    HAND_PERSON = 0,
    HAND_SIDE = 2,
    HAND_FLAGS = 3,
    HAND_LANDMARK_VALID = 4,
    HAND_TIME = 8,
    HAND_CONFIDENCE = 16,
    HAND_CENTRE = 20,
    HAND_LANDMARKS = 32, /* 21 x f32x3, ends at 284; 4 bytes of padding */
};

/* Event record (v1.2). */
enum {
    EVENT_TYPE = 0,
    EVENT_HAND = 2,
    EVENT_PERSON = 4,
    EVENT_T = 8,
    EVENT_T_START = 16,
    EVENT_T_END = 24,
    EVENT_SCORE = 32,
    EVENT_ANGLE = 36,
    EVENT_LEAD = 40,
    EVENT_SAME_TARGET = 44,
    EVENT_NAME = 48,
    EVENT_TARGET = 48 + KM_WIRE_EVENT_NAME_SIZE,
};

/* Camera status record (v1.2), one per camera in rig order. */
enum {
    CAMSTAT_STATE = 0,
    CAMSTAT_FRAMES = 8,
    CAMSTAT_DROPPED = 16,
    CAMSTAT_ERRORS = 24,
};

/* On little-endian hosts the byte-wise helpers reduce to unaligned stores/loads; the
 * memcpy forms make that explicit for compilers that do not merge the byte operations. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KM_WIRE_HOST_LE 1
#else
#define KM_WIRE_HOST_LE 0
#endif

static void put_u16(uint8_t *p, uint16_t v)
{
    if (KM_WIRE_HOST_LE) {
        memcpy(p, &v, 2);
        return;
    }
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    if (KM_WIRE_HOST_LE) {
        memcpy(p, &v, 4);
        return;
    }
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static void put_f32(uint8_t *p, double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_u32(p, bits);
}

static uint16_t get_u16(const uint8_t *p)
{
    if (KM_WIRE_HOST_LE) {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    if (KM_WIRE_HOST_LE) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

static float get_f32(const uint8_t *p)
{
    uint32_t bits = get_u32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

/* Offset of the section table for this many cameras. */
static size_t table_offset_for(int camera_count)
{
    return align8(KM_WIRE_HEADER_SIZE + 2u * (size_t)camera_count);
}

/* The sections in the order Kinema writes them (by type number), with their v1.2 record
 * sizes. */
enum { K_MARKERS, K_RIGID, K_SKELETONS, K_HANDS, K_EVENTS, K_CAMERA_STATUS, K_OBS2D, K_COUNT };
static const struct section_kind {
    unsigned bit;
    uint16_t type;
    uint16_t record_size;
    const char *name;
} kinds[K_COUNT] = {
    {KM_WIRE_WITH_MARKERS, KM_WIRE_SECTION_MARKERS, KM_WIRE_MARKER_RECORD_SIZE, "markers"},
    {KM_WIRE_WITH_RIGID, KM_WIRE_SECTION_RIGID_BODIES, KM_WIRE_RIGID_RECORD_SIZE,
     "rigid body"},
    {KM_WIRE_WITH_SKELETONS, KM_WIRE_SECTION_SKELETONS, KM_WIRE_SKELETON_RECORD_SIZE,
     "skeleton"},
    {KM_WIRE_WITH_HANDS, KM_WIRE_SECTION_HAND_POSES, KM_WIRE_HAND_RECORD_SIZE, "hand"},
    {KM_WIRE_WITH_EVENTS, KM_WIRE_SECTION_EVENTS, KM_WIRE_EVENT_RECORD_SIZE, "event"},
    {KM_WIRE_WITH_CAMERA_STATUS, KM_WIRE_SECTION_CAMERA_STATUS,
     KM_WIRE_CAMERA_STATUS_RECORD_SIZE, "camera status"},
    {KM_WIRE_WITH_OBS2D, KM_WIRE_SECTION_OBSERVATIONS_2D, KM_WIRE_OBS2D_RECORD_SIZE,
     "2D observation"},
};

_Static_assert(KM_WIRE_SKELETON_HEADER_SIZE + KM_JOINT_COUNT * KM_WIRE_SKELETON_JOINT_SIZE <=
                   KM_WIRE_SKELETON_RECORD_SIZE,
               "skeleton record holds every joint");
_Static_assert(HAND_LANDMARKS + KM_HAND_LANDMARK_COUNT * 12 <= KM_WIRE_HAND_RECORD_SIZE,
               "hand record holds every landmark");
_Static_assert(EVENT_TARGET + KM_WIRE_EVENT_NAME_SIZE == KM_WIRE_EVENT_RECORD_SIZE,
               "event record layout");
_Static_assert(KM_WIRE_EVENT_NAME_SIZE == KM_GESTURE_NAME_MAX, "event names travel uncut");

/* Bytes of a message with these per-kind counts (sections not asked for are ignored);
 * 0 when out of range. */
static size_t size_for_counts(int camera_count, const int counts[K_COUNT], unsigned sections)
{
    if (camera_count < 0 || camera_count > KM_WIRE_MAX_CAMERAS ||
        (sections & ~(unsigned)KM_WIRE_WITH_ALL) != 0)
        return 0;
    /* Counts must fit the u32 count fields and the total the u32 length field. */
    uint64_t body = 0;
    size_t entries = 0;
    for (int k = 0; k < K_COUNT; k++) {
        if (!(sections & kinds[k].bit))
            continue;
        if (counts[k] < 0)
            return 0;
        entries++;
        body += (uint64_t)counts[k] * kinds[k].record_size;
    }
    if (body > UINT32_MAX / 2)
        return 0;
    /* Every record size is a multiple of 8, so every section starts 8-byte aligned. */
    return table_offset_for(camera_count) + entries * KM_WIRE_SECTION_ENTRY_SIZE + (size_t)body;
}

size_t km_wire_encoded_size_sections(int camera_count, int marker_count,
                                     int observation_count, unsigned sections)
{
    int counts[K_COUNT] = {0};
    counts[K_MARKERS] = marker_count;
    counts[K_OBS2D] = observation_count;
    return size_for_counts(camera_count, counts, sections);
}

size_t km_wire_encoded_size(int camera_count, int marker_count)
{
    return km_wire_encoded_size_sections(camera_count, marker_count, 0, KM_WIRE_WITH_MARKERS);
}

size_t km_wire_frame_size(int marker_count)
{
    return km_wire_encoded_size(KM_WIRE_MAX_CAMERAS, marker_count < 0 ? 0 : marker_count);
}

size_t km_wire_frame_size_max(int max_markers, int max_rigid_bodies, int max_skeletons,
                              int max_hands, int max_events)
{
    int counts[K_COUNT] = {max_markers, max_rigid_bodies, max_skeletons, max_hands, max_events,
                           KM_WIRE_MAX_CAMERAS, 0};
    return size_for_counts(KM_WIRE_MAX_CAMERAS, counts,
                           KM_WIRE_WITH_ALL & ~(unsigned)KM_WIRE_WITH_OBS2D);
}

/* The frame's count of each kind (0 for a NULL array); KM_ERR_INVALID_ARGUMENT when a count
 * is negative or positive with a NULL array. */
static km_status frame_counts(const km_solved_frame *f, int counts[K_COUNT])
{
    counts[K_MARKERS] = f->markers ? f->markers->count : 0;
    counts[K_OBS2D] = f->observations ? f->observations->count : 0;
    counts[K_RIGID] = f->rigid_bodies ? f->rigid_body_count : 0;
    counts[K_SKELETONS] = f->skeletons ? f->skeleton_count : 0;
    counts[K_HANDS] = f->hands ? f->hand_count : 0;
    counts[K_EVENTS] = f->events ? f->event_count : 0;
    counts[K_CAMERA_STATUS] = f->camera_status ? f->camera_count : 0;
    const bool has_items[K_COUNT] = {
        !f->markers || f->markers->items, true, true, true, true, true,
        !f->observations || f->observations->items};
    for (int k = 0; k < K_COUNT; k++)
        if (counts[k] < 0 || (counts[k] > 0 && !has_items[k]))
            return km_error(KM_ERR_INVALID_ARGUMENT, "wire: encode: %s count %d with %s "
                            "items", kinds[k].name, counts[k], has_items[k] ? "some" : "no");
    /* Counts of arrays given as NULL are ignored, like a NULL marker set. */
    return KM_OK;
}

size_t km_wire_encoded_size_frame(const km_solved_frame *frame, unsigned sections)
{
    int counts[K_COUNT];
    if (!frame || frame_counts(frame, counts) != KM_OK)
        return 0;
    return size_for_counts(frame->camera_count, counts, sections);
}

static void put_entry(uint8_t *e, uint16_t type, uint16_t record_size, uint32_t count,
                      size_t offset)
{
    put_u16(e + ENTRY_TYPE, type);
    put_u16(e + ENTRY_RECORD_SIZE, record_size);
    put_u32(e + ENTRY_COUNT, count);
    put_u32(e + ENTRY_OFFSET, (uint32_t)offset);
    put_u32(e + ENTRY_LENGTH, count * record_size);
}

static uint16_t clamp_u16(long v)
{
    return (uint16_t)(v < 0 ? 0 : (v > UINT16_MAX ? UINT16_MAX : v));
}

static void put_vec3(uint8_t *p, km_vec3 v)
{
    put_f32(p, v.x);
    put_f32(p + 4, v.y);
    put_f32(p + 8, v.z);
}

static void put_quat(uint8_t *p, km_quat q)
{
    put_f32(p, q.x);
    put_f32(p + 4, q.y);
    put_f32(p + 8, q.z);
    put_f32(p + 12, q.w);
}

/* A NUL-terminated name into a zero-padded field of KM_WIRE_EVENT_NAME_SIZE bytes (the
 * last byte always NUL). */
static void put_name(uint8_t *p, const char *name)
{
    size_t n = strnlen(name, KM_WIRE_EVENT_NAME_SIZE - 1);
    memcpy(p, name, n);
    memset(p + n, 0, KM_WIRE_EVENT_NAME_SIZE - n);
}

static void write_records(int kind, const km_solved_frame *f, int count, uint8_t *r)
{
    const size_t size = kinds[kind].record_size;
    /* One loop per kind (the switch outside the loop keeps the per-record path straight). */
    switch (kind) {
    case K_MARKERS:
        for (int i = 0; i < count; i++, r += size) {
            const km_marker *m = &f->markers->items[i];
            put_u32(r + MARKER_ID, m->id);
            put_f32(r + MARKER_X, m->pos_m.x);
            put_f32(r + MARKER_Y, m->pos_m.y);
            put_f32(r + MARKER_Z, m->pos_m.z);
            put_f32(r + MARKER_RESIDUAL, m->residual_px);
            put_u16(r + MARKER_VIEWS, clamp_u16(m->views));
            put_u16(r + MARKER_FLAGS, 0);
        }
        break;
    case K_OBS2D:
        for (int i = 0; i < count; i++, r += size) {
            const km_observation *o = &f->observations->items[i];
            put_f32(r + OBS_X, o->x);
            put_f32(r + OBS_Y, o->y);
            put_f32(r + OBS_AREA, o->area_px);
            put_u16(r + OBS_CAMERA, clamp_u16(o->camera));
            put_u16(r + OBS_FLAGS, 0);
        }
        break;
    case K_RIGID:
        for (int i = 0; i < count; i++, r += size) {
            const km_rigid_pose *b = &f->rigid_bodies[i];
            put_u32(r + RIGID_ID, b->id);
            put_u16(r + RIGID_FLAGS, b->tracked ? KM_WIRE_RIGID_TRACKED : 0);
            put_u16(r + RIGID_MARKERS_USED, clamp_u16(b->markers_used));
            put_vec3(r + RIGID_POS, b->pos_m);
            put_quat(r + RIGID_ROT, b->rot);
            put_f32(r + RIGID_ERROR, b->error_m);
        }
        break;
    case K_SKELETONS:
        for (int i = 0; i < count; i++, r += size) {
            const km_skeleton_pose *p = &f->skeletons[i];
            put_u16(r + SKEL_PERSON, clamp_u16(p->person));
            put_u16(r + SKEL_FLAGS, p->tracked ? KM_WIRE_SKELETON_TRACKED : 0);
            put_u16(r + SKEL_JOINT_COUNT, KM_JOINT_COUNT);
            put_u16(r + SKEL_JOINT_SIZE, KM_WIRE_SKELETON_JOINT_SIZE);
            put_u16(r + SKEL_JOINTS_OFFSET, KM_WIRE_SKELETON_HEADER_SIZE);
            put_u16(r + SKEL_MARKERS_USED, clamp_u16(p->markers_used));
            put_f32(r + SKEL_RESIDUAL, p->residual_m);
            put_u32(r + SKEL_JOINTS_OBSERVED, p->joints_observed & KM_SKELETON_ALL_JOINTS);
            uint8_t *j = r + KM_WIRE_SKELETON_HEADER_SIZE;
            for (int k = 0; k < KM_JOINT_COUNT; k++, j += KM_WIRE_SKELETON_JOINT_SIZE) {
                put_vec3(j + JOINT_POS, p->joint_pos_m[k]);
                put_quat(j + JOINT_ROT, p->joint_rot[k]);
                put_quat(j + JOINT_LOCAL_ROT, p->local_rot[k]);
            }
            memset(j, 0, (size_t)(r + size - j));
        }
        break;
    case K_HANDS:
        for (int i = 0; i < count; i++, r += size) {
            const km_hand *h = &f->hands[i];
            int person = h->person < -1 ? -1 : (h->person > INT16_MAX ? INT16_MAX : h->person);
            put_u16(r + HAND_PERSON, (uint16_t)(int16_t)person);
            r[HAND_SIDE] = (uint8_t)((unsigned)h->side < KM_HAND_SIDE_COUNT ? h->side : 0);
            r[HAND_FLAGS] = h->centre_valid ? KM_WIRE_HAND_CENTRE_VALID : 0;
            put_u32(r + HAND_LANDMARK_VALID, h->landmark_valid);
            put_u64(r + HAND_TIME, (uint64_t)h->time_ns);
            put_f32(r + HAND_CONFIDENCE, h->confidence);
            /* Invalid positions are written as 0 so equal hands give equal bytes. */
            static const km_vec3 zero = {0, 0, 0};
            put_vec3(r + HAND_CENTRE, h->centre_valid ? h->centre_m : zero);
            uint8_t *l = r + HAND_LANDMARKS;
            for (int k = 0; k < KM_HAND_LANDMARK_COUNT; k++, l += 12)
                put_vec3(l, (h->landmark_valid & KM_HAND_LANDMARK_BIT(k)) ? h->landmark_m[k]
                                                                           : zero);
            memset(l, 0, (size_t)(r + size - l));
        }
        break;
    case K_EVENTS:
        for (int i = 0; i < count; i++, r += size) {
            const km_gesture_event *e = &f->events[i];
            put_u16(r + EVENT_TYPE, clamp_u16(e->type));
            r[EVENT_HAND] = (uint8_t)((unsigned)e->hand < KM_HAND_SIDE_COUNT ? e->hand : 0);
            r[EVENT_HAND + 1] = 0;
            put_u32(r + EVENT_PERSON, (uint32_t)(int32_t)e->person);
            put_u64(r + EVENT_T, (uint64_t)e->t_ns);
            put_u64(r + EVENT_T_START, (uint64_t)e->t_start_ns);
            put_u64(r + EVENT_T_END, (uint64_t)e->t_end_ns);
            put_f32(r + EVENT_SCORE, e->score);
            put_f32(r + EVENT_ANGLE, e->gaze_hand_angle_rad);
            put_f32(r + EVENT_LEAD, e->gaze_lead_ms);
            int same = e->same_target < -1 ? -1 : (e->same_target > 1 ? 1 : e->same_target);
            put_u16(r + EVENT_SAME_TARGET, (uint16_t)(int16_t)same);
            put_u16(r + EVENT_SAME_TARGET + 2, 0);
            put_name(r + EVENT_NAME, e->name);
            put_name(r + EVENT_TARGET, e->target);
        }
        break;
    case K_CAMERA_STATUS:
        for (int i = 0; i < count; i++, r += size) {
            const km_camera_status *c = &f->camera_status[i];
            memset(r, 0, CAMSTAT_FRAMES);
            r[CAMSTAT_STATE] = (uint8_t)((unsigned)c->state <= UINT8_MAX ? c->state : UINT8_MAX);
            put_u64(r + CAMSTAT_FRAMES, c->frames);
            put_u64(r + CAMSTAT_DROPPED, c->dropped);
            put_u64(r + CAMSTAT_ERRORS, c->errors);
        }
        break;
    default:
        break;
    }
}

km_status km_wire_encode(const km_solved_frame *frame, unsigned sections, uint8_t *buf,
                         size_t capacity, size_t *length)
{
    if (!frame || !buf || !length)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wire: encode: NULL argument");
    *length = 0;
    if ((sections & ~(unsigned)KM_WIRE_WITH_ALL) != 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "wire: encode: unknown section bits 0x%x",
                        sections);
    if (frame->camera_count < 0 || frame->camera_count > KM_WIRE_MAX_CAMERAS)
        return km_error(KM_ERR_CAPACITY, "wire: encode: camera_count %d outside 0..%d",
                        frame->camera_count, KM_WIRE_MAX_CAMERAS);
    int counts[K_COUNT];
    km_status st = frame_counts(frame, counts);
    if (st)
        return st;
    size_t need = size_for_counts(frame->camera_count, counts, sections);
    if (need == 0)
        return km_error(KM_ERR_CAPACITY, "wire: encode: %d markers, %d observations, %d "
                        "skeletons... do not fit a message", counts[K_MARKERS],
                        counts[K_OBS2D], counts[K_SKELETONS]);
    if (need > capacity)
        return km_error(KM_ERR_CAPACITY, "wire: encode: needs %zu bytes, buffer has %zu",
                        need, capacity);

    int section_count = 0;
    for (int k = 0; k < K_COUNT; k++)
        section_count += (sections & kinds[k].bit) != 0;
    const size_t table = table_offset_for(frame->camera_count);
    size_t section = table + (size_t)section_count * KM_WIRE_SECTION_ENTRY_SIZE;

    memcpy(buf + OFF_MAGIC, KM_WIRE_MAGIC, 4);
    put_u16(buf + OFF_VERSION, KM_WIRE_VERSION);
    put_u16(buf + OFF_FLAGS, 0);
    put_u16(buf + OFF_HEADER_SIZE, KM_WIRE_HEADER_SIZE);
    put_u16(buf + OFF_CAMERA_COUNT, (uint16_t)frame->camera_count);
    put_u16(buf + OFF_SECTION_COUNT, (uint16_t)section_count);
    put_u16(buf + OFF_TABLE_OFFSET, (uint16_t)table);
    put_u32(buf + OFF_TOTAL_LENGTH, (uint32_t)need);
    put_u32(buf + OFF_RESERVED, 0);
    put_u64(buf + OFF_FRAME, frame->frame);
    put_u64(buf + OFF_CAPTURE_TIME, frame->capture_time_ns);
    put_u64(buf + OFF_SOLVED_TIME, frame->solved_time_ns);
    put_u64(buf + OFF_PUBLISH_TIME, frame->publish_time_ns);
    uint8_t *p = buf + KM_WIRE_HEADER_SIZE;
    for (int c = 0; c < frame->camera_count; c++, p += 2)
        put_u16(p, frame->observation_count[c]);
    /* Zero the alignment padding so equal frames give equal bytes. */
    memset(p, 0, (size_t)(buf + table - p));

    uint8_t *e = buf + table;
    for (int k = 0; k < K_COUNT; k++) {
        if (!(sections & kinds[k].bit))
            continue;
        put_entry(e, kinds[k].type, kinds[k].record_size, (uint32_t)counts[k], section);
        e += KM_WIRE_SECTION_ENTRY_SIZE;
        write_records(k, frame, counts[k], buf + section);
        section += (size_t)counts[k] * kinds[k].record_size;
    }
    *length = need;
    return KM_OK;
}

unsigned km_wire_frame_sections(const km_solved_frame *frame)
{
    if (!frame)
        return KM_WIRE_WITH_MARKERS;
    return KM_WIRE_WITH_MARKERS | (frame->observations ? KM_WIRE_WITH_OBS2D : 0u) |
           (frame->rigid_bodies ? KM_WIRE_WITH_RIGID : 0u) |
           (frame->skeletons ? KM_WIRE_WITH_SKELETONS : 0u) |
           (frame->hands ? KM_WIRE_WITH_HANDS : 0u) |
           (frame->events ? KM_WIRE_WITH_EVENTS : 0u) |
           (frame->camera_status ? KM_WIRE_WITH_CAMERA_STATUS : 0u);
}

km_status km_wire_encode_frame(const km_solved_frame *frame, uint8_t *buf, size_t capacity,
                               size_t *length)
{
    return km_wire_encode(frame, km_wire_frame_sections(frame), buf, capacity, length);
}

/* ------------------------------------------------------------------ decoder */

static km_vec3 get_vec3(const uint8_t *p)
{
    km_vec3 v = {get_f32(p), get_f32(p + 4), get_f32(p + 8)};
    return v;
}

static km_quat get_quat(const uint8_t *p)
{
    km_quat q = {get_f32(p), get_f32(p + 4), get_f32(p + 8), get_f32(p + 12)};
    return q;
}

/* A zero-padded name field: it must hold a NUL (KM_ERR_FORMAT otherwise). */
static km_status get_name(const uint8_t *p, size_t at, char out[KM_WIRE_EVENT_NAME_SIZE])
{
    const uint8_t *nul = memchr(p, 0, KM_WIRE_EVENT_NAME_SIZE);
    if (!nul)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: event name field without a NUL",
                        at);
    memcpy(out, p, (size_t)(nul - p) + 1);
    return KM_OK;
}

/* Per-kind checks of a whole skeleton record's joint layout. */
static km_status check_skeleton(const uint8_t *r, size_t at, uint16_t record_size)
{
    uint16_t joint_count = get_u16(r + SKEL_JOINT_COUNT);
    uint16_t joint_size = get_u16(r + SKEL_JOINT_SIZE);
    uint16_t joints_offset = get_u16(r + SKEL_JOINTS_OFFSET);
    if (joint_size < KM_WIRE_SKELETON_JOINT_SIZE)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: skeleton joint_size %u < %d",
                        at + SKEL_JOINT_SIZE, joint_size, KM_WIRE_SKELETON_JOINT_SIZE);
    if (joints_offset < KM_WIRE_SKELETON_V12_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: skeleton joints_offset %u < %d",
                        at + SKEL_JOINTS_OFFSET, joints_offset,
                        KM_WIRE_SKELETON_V12_HEADER_SIZE);
    if ((uint32_t)joints_offset + (uint32_t)joint_count * joint_size > record_size)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: %u joints of %u bytes from %u run "
                        "past the %u-byte skeleton record", at + SKEL_JOINT_COUNT, joint_count,
                        joint_size, joints_offset, record_size);
    return KM_OK;
}

/* Decode the count records of kind k from message offset `offset` (bounds checked by the
 * caller). One loop per kind, the switch outside it. */
static km_status read_records(int k, const uint8_t *buf, size_t offset, uint16_t record_size,
                              uint32_t count, const km_wire_storage *s,
                              const km_wire_stream_storage *x)
{
    static const km_vec3 origin = {0, 0, 0};
    static const km_quat identity = {0, 0, 0, 1};
    const uint8_t *r = buf + offset;
    switch (k) {
    case K_MARKERS:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            km_marker *m = &s->markers[i];
            m->id = get_u32(r + MARKER_ID);
            m->pos_m.x = get_f32(r + MARKER_X);
            m->pos_m.y = get_f32(r + MARKER_Y);
            m->pos_m.z = get_f32(r + MARKER_Z);
            m->residual_px = get_f32(r + MARKER_RESIDUAL);
            m->views = get_u16(r + MARKER_VIEWS);
        }
        return KM_OK;
    case K_OBS2D:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            km_observation *o = &s->observations[i];
            o->x = get_f32(r + OBS_X);
            o->y = get_f32(r + OBS_Y);
            o->area_px = get_f32(r + OBS_AREA);
            o->camera = get_u16(r + OBS_CAMERA);
        }
        return KM_OK;
    case K_RIGID:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            km_rigid_pose *b = &x->rigid_bodies[i];
            b->id = get_u32(r + RIGID_ID);
            b->definition = (int)i;
            b->tracked = (get_u16(r + RIGID_FLAGS) & KM_WIRE_RIGID_TRACKED) != 0;
            b->markers_used = get_u16(r + RIGID_MARKERS_USED);
            b->pos_m = get_vec3(r + RIGID_POS);
            b->rot = get_quat(r + RIGID_ROT);
            b->error_m = get_f32(r + RIGID_ERROR);
            for (int m = 0; m < KM_RIGID_MAX_MARKERS; m++)
                b->marker_ids[m] = KM_RIGID_NO_MARKER; /* not carried on the wire */
        }
        return KM_OK;
    case K_SKELETONS:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            km_status st = check_skeleton(r, (size_t)(r - buf), record_size);
            if (st)
                return st;
            km_skeleton_pose *p = &x->skeletons[i];
            p->person = get_u16(r + SKEL_PERSON);
            p->tracked = (get_u16(r + SKEL_FLAGS) & KM_WIRE_SKELETON_TRACKED) != 0;
            /* A v1.2 sender's header has no mask: its tracked pose's joints are taken as
             * observed (what it meant). */
            p->joints_observed =
                get_u16(r + SKEL_JOINTS_OFFSET) >= SKEL_JOINTS_OBSERVED + 4
                    ? get_u32(r + SKEL_JOINTS_OBSERVED) & KM_SKELETON_ALL_JOINTS
                    : (p->tracked ? KM_SKELETON_ALL_JOINTS : 0);
            p->markers_used = get_u16(r + SKEL_MARKERS_USED);
            p->residual_m = get_f32(r + SKEL_RESIDUAL);
            int joints = get_u16(r + SKEL_JOINT_COUNT);
            uint16_t joint_size = get_u16(r + SKEL_JOINT_SIZE);
            const uint8_t *j = r + get_u16(r + SKEL_JOINTS_OFFSET);
            /* Joints a (hypothetical) shorter record lacks: at the origin, rest rotation;
             * joints a longer one appends (new joints go after these 21): not read. */
            for (int n = 0; n < KM_JOINT_COUNT; n++, j += joint_size) {
                bool present = n < joints;
                p->joint_pos_m[n] = present ? get_vec3(j + JOINT_POS) : origin;
                p->joint_rot[n] = present ? get_quat(j + JOINT_ROT) : identity;
                p->local_rot[n] = present ? get_quat(j + JOINT_LOCAL_ROT) : identity;
            }
        }
        return KM_OK;
    case K_HANDS:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            const size_t at = (size_t)(r - buf);
            uint8_t side = r[HAND_SIDE];
            if (side >= KM_HAND_SIDE_COUNT)
                return km_error(KM_ERR_FORMAT, "wire: offset %zu: hand side %u (0..%d)",
                                at + HAND_SIDE, side, KM_HAND_SIDE_COUNT - 1);
            int person = (int16_t)get_u16(r + HAND_PERSON);
            if (person < -1)
                return km_error(KM_ERR_FORMAT, "wire: offset %zu: hand person %d (-1 = "
                                "unknown, else >= 0)", at + HAND_PERSON, person);
            km_hand *h = &x->hands[i];
            h->person = person;
            h->side = (km_hand_side)side;
            h->centre_valid = (r[HAND_FLAGS] & KM_WIRE_HAND_CENTRE_VALID) != 0;
            h->landmark_valid = get_u32(r + HAND_LANDMARK_VALID);
            h->time_ns = (int64_t)get_u64(r + HAND_TIME);
            h->confidence = get_f32(r + HAND_CONFIDENCE);
            h->centre_m = get_vec3(r + HAND_CENTRE);
            for (int n = 0; n < KM_HAND_LANDMARK_COUNT; n++)
                h->landmark_m[n] = get_vec3(r + HAND_LANDMARKS + 12 * n);
        }
        return KM_OK;
    case K_EVENTS:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            const size_t at = (size_t)(r - buf);
            uint8_t hand = r[EVENT_HAND];
            if (hand >= KM_HAND_SIDE_COUNT)
                return km_error(KM_ERR_FORMAT, "wire: offset %zu: event hand %u (0..%d)",
                                at + EVENT_HAND, hand, KM_HAND_SIDE_COUNT - 1);
            int same_target = (int16_t)get_u16(r + EVENT_SAME_TARGET);
            if (same_target < -1 || same_target > 1)
                return km_error(KM_ERR_FORMAT, "wire: offset %zu: event same_target %d (-1, "
                                "0, 1)", at + EVENT_SAME_TARGET, same_target);
            km_gesture_event *e = &x->events[i];
            km_status st = get_name(r + EVENT_NAME, at + EVENT_NAME, e->name);
            if (!st)
                st = get_name(r + EVENT_TARGET, at + EVENT_TARGET, e->target);
            if (st)
                return st;
            /* An event type this decoder does not know is passed on as its number. */
            e->type = (km_gesture_event_type)get_u16(r + EVENT_TYPE);
            e->hand = (km_hand_side)hand;
            e->person = (int32_t)get_u32(r + EVENT_PERSON);
            e->t_ns = (int64_t)get_u64(r + EVENT_T);
            e->t_start_ns = (int64_t)get_u64(r + EVENT_T_START);
            e->t_end_ns = (int64_t)get_u64(r + EVENT_T_END);
            e->score = get_f32(r + EVENT_SCORE);
            e->gaze_hand_angle_rad = get_f32(r + EVENT_ANGLE);
            e->gaze_lead_ms = get_f32(r + EVENT_LEAD);
            e->same_target = same_target;
        }
        return KM_OK;
    case K_CAMERA_STATUS:
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            km_camera_status *c = &x->camera_status[i];
            c->state = (km_camera_state)r[CAMSTAT_STATE];
            c->frames = get_u64(r + CAMSTAT_FRAMES);
            c->dropped = get_u64(r + CAMSTAT_DROPPED);
            c->errors = get_u64(r + CAMSTAT_ERRORS);
        }
        return KM_OK;
    default:
        return KM_OK;
    }
}

/* Capacity of the caller's storage for kind k; -1 when the storage has no array for it
 * (the section is then skipped). Markers are always decoded (capacity may be 0). */
static int storage_capacity(int k, const km_wire_storage *s, const km_wire_stream_storage *x)
{
    switch (k) {
    case K_MARKERS: return s->marker_capacity;
    case K_OBS2D: return s->observations ? s->observation_capacity : -1;
    case K_RIGID: return x->rigid_bodies ? x->rigid_body_capacity : -1;
    case K_SKELETONS: return x->skeletons ? x->skeleton_capacity : -1;
    case K_HANDS: return x->hands ? x->hand_capacity : -1;
    case K_EVENTS: return x->events ? x->event_capacity : -1;
    case K_CAMERA_STATUS: return x->camera_status ? x->camera_status_capacity : -1;
    default: return -1;
    }
}

static void set_decoded(int k, int count, km_wire_frame *out)
{
    switch (k) {
    case K_MARKERS: out->marker_count = count; out->has_markers = true; break;
    case K_OBS2D: out->observation_total = count; out->has_observations = true; break;
    case K_RIGID: out->rigid_body_count = count; out->has_rigid_bodies = true; break;
    case K_SKELETONS: out->skeleton_count = count; out->has_skeletons = true; break;
    case K_HANDS: out->hand_count = count; out->has_hands = true; break;
    case K_EVENTS: out->event_count = count; out->has_events = true; break;
    case K_CAMERA_STATUS: out->camera_status_count = count; out->has_camera_status = true;
        break;
    default: break;
    }
}

km_status km_wire_decode_frame(const uint8_t *buf, size_t length, km_marker *storage,
                               int storage_capacity, km_wire_frame *out)
{
    km_wire_storage s = {storage, storage_capacity, NULL, 0};
    return km_wire_decode_streams(buf, length, &s, NULL, out);
}

km_status km_wire_decode(const uint8_t *buf, size_t length, const km_wire_storage *storage,
                         km_wire_frame *out)
{
    return km_wire_decode_streams(buf, length, storage, NULL, out);
}

static bool bad_array(const void *items, int capacity)
{
    return capacity < 0 || (capacity > 0 && !items);
}

km_status km_wire_decode_streams(const uint8_t *buf, size_t length,
                                 const km_wire_storage *storage,
                                 const km_wire_stream_storage *streams, km_wire_frame *out)
{
    static const km_wire_stream_storage none;
    const km_wire_stream_storage *x = streams ? streams : &none;
    if (!out || !storage || (!buf && length > 0) ||
        bad_array(storage->markers, storage->marker_capacity) ||
        bad_array(storage->observations, storage->observation_capacity) ||
        bad_array(x->rigid_bodies, x->rigid_body_capacity) ||
        bad_array(x->skeletons, x->skeleton_capacity) ||
        bad_array(x->hands, x->hand_capacity) ||
        bad_array(x->events, x->event_capacity) ||
        bad_array(x->camera_status, x->camera_status_capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "wire: decode: bad argument");
    memset(out, 0, sizeof *out);
    out->markers = storage->markers;
    out->observations = storage->observations;
    out->rigid_bodies = x->rigid_bodies;
    out->skeletons = x->skeletons;
    out->hands = x->hands;
    out->events = x->events;
    out->camera_status = x->camera_status;

    if (length < KM_WIRE_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: message of %zu bytes is shorter "
                        "than the %d-byte header", length, length, KM_WIRE_HEADER_SIZE);
    if (memcmp(buf + OFF_MAGIC, KM_WIRE_MAGIC, 4) != 0)
        return km_error(KM_ERR_FORMAT, "wire: offset 0: bad magic (not a Kinema frame)");
    uint16_t version = get_u16(buf + OFF_VERSION);
    if (version != KM_WIRE_VERSION)
        return km_error(KM_ERR_UNSUPPORTED, "wire: offset %d: version %u, this decoder "
                        "reads version %d", OFF_VERSION, version, KM_WIRE_VERSION);
    uint16_t header_size = get_u16(buf + OFF_HEADER_SIZE);
    uint16_t camera_count = get_u16(buf + OFF_CAMERA_COUNT);
    uint16_t section_count = get_u16(buf + OFF_SECTION_COUNT);
    uint16_t table = get_u16(buf + OFF_TABLE_OFFSET);
    uint32_t total = get_u32(buf + OFF_TOTAL_LENGTH);

    if (total != length)
        return km_error(KM_ERR_FORMAT, "wire: offset %d: total_length %u but the message "
                        "has %zu bytes", OFF_TOTAL_LENGTH, total, length);
    if (header_size < KM_WIRE_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "wire: offset %d: header_size %u < %d", OFF_HEADER_SIZE,
                        header_size, KM_WIRE_HEADER_SIZE);
    if (camera_count > KM_WIRE_MAX_CAMERAS)
        return km_error(KM_ERR_FORMAT, "wire: offset %d: camera_count %u > %d",
                        OFF_CAMERA_COUNT, camera_count, KM_WIRE_MAX_CAMERAS);
    /* The observation counts lie in [header_size, table); the table in [table, table_end). */
    size_t counts_end = (size_t)header_size + 2u * camera_count;
    if (counts_end > table)
        return km_error(KM_ERR_FORMAT, "wire: offset %d: table_offset %u overlaps the header "
                        "and observation counts (end %zu)", OFF_TABLE_OFFSET, table, counts_end);
    size_t table_end = (size_t)table + (size_t)section_count * KM_WIRE_SECTION_ENTRY_SIZE;
    if (table_end > length)
        return km_error(KM_ERR_FORMAT, "wire: offset %u: section table of %u entries ends at "
                        "%zu, past the message end %zu", table, section_count, table_end, length);

    out->version = version;
    out->flags = get_u16(buf + OFF_FLAGS);
    out->frame = get_u64(buf + OFF_FRAME);
    out->capture_time_ns = get_u64(buf + OFF_CAPTURE_TIME);
    out->solved_time_ns = get_u64(buf + OFF_SOLVED_TIME);
    out->publish_time_ns = get_u64(buf + OFF_PUBLISH_TIME);
    out->camera_count = camera_count;
    out->section_count = section_count;
    for (int c = 0; c < camera_count; c++)
        out->observation_count[c] = get_u16(buf + header_size + 2 * c);

    unsigned seen = 0;
    for (int s = 0; s < section_count; s++) {
        const size_t entry_at = (size_t)table + (size_t)s * KM_WIRE_SECTION_ENTRY_SIZE;
        const uint8_t *e = buf + entry_at;
        uint16_t type = get_u16(e + ENTRY_TYPE);
        uint16_t record_size = get_u16(e + ENTRY_RECORD_SIZE);
        uint32_t count = get_u32(e + ENTRY_COUNT);
        uint32_t offset = get_u32(e + ENTRY_OFFSET);
        uint32_t section_length = get_u32(e + ENTRY_LENGTH);
        if (offset < table_end || offset > length)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: section %d (type %u) starts at "
                            "%u, outside [%zu, %zu]", entry_at + ENTRY_OFFSET, s, type, offset,
                            table_end, length);
        if (section_length > length - offset)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: section %d (type %u) of %u bytes "
                            "at %u runs past the message end %zu", entry_at + ENTRY_LENGTH, s,
                            type, section_length, offset, length);
        int k = 0;
        while (k < K_COUNT && kinds[k].type != type)
            k++;
        int capacity = k < K_COUNT ? storage_capacity(k, storage, x) : -1;
        if (capacity < 0) {
            /* Unknown (or not asked for) stream: skip it, that is the extension rule. */
            out->sections_skipped++;
            continue;
        }
        if (seen & kinds[k].bit)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: second %s section", entry_at,
                            kinds[k].name);
        seen |= kinds[k].bit;
        /* Later revisions may append fields to a record: read the known prefix, skip the
         * rest. */
        if (record_size < kinds[k].record_size)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: %s record_size %u < %u",
                            entry_at + ENTRY_RECORD_SIZE, kinds[k].name, record_size,
                            kinds[k].record_size);
        if ((uint64_t)count * record_size != section_length)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: %u %s records of %u bytes do not "
                            "make the section length %u", entry_at + ENTRY_COUNT, count,
                            kinds[k].name, record_size, section_length);
        if (count > (uint32_t)capacity)
            return km_error(KM_ERR_CAPACITY, "wire: offset %zu: %u %s records, storage holds %d",
                            entry_at + ENTRY_COUNT, count, kinds[k].name, capacity);
        km_status st = read_records(k, buf, offset, record_size, count, storage, x);
        if (st)
            return st;
        set_decoded(k, (int)count, out);
    }
    return KM_OK;
}

const char *km_camera_state_name(km_camera_state state)
{
    static const char *const names[] = {"ok", "missing", "disconnected", "inactive"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}
