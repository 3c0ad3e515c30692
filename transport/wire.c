/* Wire schema v1: encoder and validating decoder of a solved frame (docs/protocol.md).
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

static int section_count_of(unsigned sections)
{
    return ((sections & KM_WIRE_WITH_MARKERS) != 0) + ((sections & KM_WIRE_WITH_OBS2D) != 0);
}

size_t km_wire_encoded_size_sections(int camera_count, int marker_count,
                                     int observation_count, unsigned sections)
{
    if (camera_count < 0 || camera_count > KM_WIRE_MAX_CAMERAS || marker_count < 0 ||
        observation_count < 0 || (sections & ~(unsigned)KM_WIRE_WITH_ALL) != 0)
        return 0;
    /* Counts must fit the u32 count fields and the total the u32 length field. */
    uint64_t body = 0;
    if (sections & KM_WIRE_WITH_MARKERS)
        body += (uint64_t)marker_count * KM_WIRE_MARKER_RECORD_SIZE;
    if (sections & KM_WIRE_WITH_OBS2D)
        body += (uint64_t)observation_count * KM_WIRE_OBS2D_RECORD_SIZE;
    if (body > UINT32_MAX / 2)
        return 0;
    /* Both record sizes are multiples of 8, so every section starts 8-byte aligned. */
    return table_offset_for(camera_count) +
           (size_t)section_count_of(sections) * KM_WIRE_SECTION_ENTRY_SIZE + (size_t)body;
}

size_t km_wire_encoded_size(int camera_count, int marker_count)
{
    return km_wire_encoded_size_sections(camera_count, marker_count, 0, KM_WIRE_WITH_MARKERS);
}

size_t km_wire_frame_size(int marker_count)
{
    return km_wire_encoded_size(KM_WIRE_MAX_CAMERAS, marker_count < 0 ? 0 : marker_count);
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
    int marker_count = 0;
    const km_marker *items = NULL;
    if (frame->markers) {
        marker_count = frame->markers->count;
        items = frame->markers->items;
        if (marker_count < 0 || (marker_count > 0 && !items))
            return km_error(KM_ERR_INVALID_ARGUMENT, "wire: encode: marker set count %d "
                            "with %s items", marker_count, items ? "some" : "no");
    }
    int observation_count = 0;
    const km_observation *observations = NULL;
    if (frame->observations) {
        observation_count = frame->observations->count;
        observations = frame->observations->items;
        if (observation_count < 0 || (observation_count > 0 && !observations))
            return km_error(KM_ERR_INVALID_ARGUMENT, "wire: encode: observation set count "
                            "%d with %s items", observation_count,
                            observations ? "some" : "no");
    }
    size_t need = km_wire_encoded_size_sections(frame->camera_count, marker_count,
                                                observation_count, sections);
    if (need == 0)
        return km_error(KM_ERR_CAPACITY, "wire: encode: %d markers and %d observations do "
                        "not fit a message", marker_count, observation_count);
    if (need > capacity)
        return km_error(KM_ERR_CAPACITY, "wire: encode: needs %zu bytes, buffer has %zu",
                        need, capacity);

    const int section_count = section_count_of(sections);
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
    if (sections & KM_WIRE_WITH_MARKERS) {
        put_entry(e, KM_WIRE_SECTION_MARKERS, KM_WIRE_MARKER_RECORD_SIZE,
                  (uint32_t)marker_count, section);
        e += KM_WIRE_SECTION_ENTRY_SIZE;
        uint8_t *r = buf + section;
        for (int i = 0; i < marker_count; i++, r += KM_WIRE_MARKER_RECORD_SIZE) {
            const km_marker *m = &items[i];
            put_u32(r + MARKER_ID, m->id);
            put_f32(r + MARKER_X, m->pos_m.x);
            put_f32(r + MARKER_Y, m->pos_m.y);
            put_f32(r + MARKER_Z, m->pos_m.z);
            put_f32(r + MARKER_RESIDUAL, m->residual_px);
            int views = m->views < 0 ? 0 : (m->views > UINT16_MAX ? UINT16_MAX : m->views);
            put_u16(r + MARKER_VIEWS, (uint16_t)views);
            put_u16(r + MARKER_FLAGS, 0);
        }
        section += (size_t)marker_count * KM_WIRE_MARKER_RECORD_SIZE;
    }
    if (sections & KM_WIRE_WITH_OBS2D) {
        put_entry(e, KM_WIRE_SECTION_OBSERVATIONS_2D, KM_WIRE_OBS2D_RECORD_SIZE,
                  (uint32_t)observation_count, section);
        uint8_t *r = buf + section;
        for (int i = 0; i < observation_count; i++, r += KM_WIRE_OBS2D_RECORD_SIZE) {
            const km_observation *o = &observations[i];
            put_f32(r + OBS_X, o->x);
            put_f32(r + OBS_Y, o->y);
            put_f32(r + OBS_AREA, o->area_px);
            int camera = o->camera < 0 ? 0 : (o->camera > UINT16_MAX ? UINT16_MAX : o->camera);
            put_u16(r + OBS_CAMERA, (uint16_t)camera);
            put_u16(r + OBS_FLAGS, 0);
        }
    }
    *length = need;
    return KM_OK;
}

unsigned km_wire_frame_sections(const km_solved_frame *frame)
{
    return KM_WIRE_WITH_MARKERS | (frame && frame->observations ? KM_WIRE_WITH_OBS2D : 0u);
}

km_status km_wire_encode_frame(const km_solved_frame *frame, uint8_t *buf, size_t capacity,
                               size_t *length)
{
    return km_wire_encode(frame, km_wire_frame_sections(frame), buf, capacity, length);
}

/* The OBSERVATIONS_2D section (entry at entry_at, bounds already checked). */
static km_status decode_observations(const uint8_t *buf, size_t entry_at, uint16_t record_size,
                                     uint32_t count, uint32_t section_length, uint32_t offset,
                                     const km_wire_storage *storage, km_wire_frame *out)
{
    if (out->has_observations)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: second 2D observations section",
                        entry_at);
    if (record_size < KM_WIRE_OBS2D_RECORD_SIZE)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: observation record_size %u < %d",
                        entry_at + ENTRY_RECORD_SIZE, record_size, KM_WIRE_OBS2D_RECORD_SIZE);
    if ((uint64_t)count * record_size != section_length)
        return km_error(KM_ERR_FORMAT, "wire: offset %zu: %u observations of %u bytes do not "
                        "make the section length %u", entry_at + ENTRY_COUNT, count,
                        record_size, section_length);
    if (count > (uint32_t)storage->observation_capacity)
        return km_error(KM_ERR_CAPACITY, "wire: offset %zu: %u observations, storage holds %d",
                        entry_at + ENTRY_COUNT, count, storage->observation_capacity);
    const uint8_t *r = buf + offset;
    for (uint32_t i = 0; i < count; i++, r += record_size) {
        km_observation *o = &storage->observations[i];
        o->x = get_f32(r + OBS_X);
        o->y = get_f32(r + OBS_Y);
        o->area_px = get_f32(r + OBS_AREA);
        o->camera = get_u16(r + OBS_CAMERA);
    }
    out->observation_total = (int)count;
    out->has_observations = true;
    return KM_OK;
}

km_status km_wire_decode_frame(const uint8_t *buf, size_t length, km_marker *storage,
                               int storage_capacity, km_wire_frame *out)
{
    km_wire_storage s = {storage, storage_capacity, NULL, 0};
    return km_wire_decode(buf, length, &s, out);
}

km_status km_wire_decode(const uint8_t *buf, size_t length, const km_wire_storage *storage,
                         km_wire_frame *out)
{
    if (!out || !storage || (!buf && length > 0) || storage->marker_capacity < 0 ||
        (storage->marker_capacity > 0 && !storage->markers) ||
        storage->observation_capacity < 0 ||
        (storage->observation_capacity > 0 && !storage->observations))
        return km_error(KM_ERR_INVALID_ARGUMENT, "wire: decode: bad argument");
    memset(out, 0, sizeof *out);
    out->markers = storage->markers;
    out->observations = storage->observations;
    const int storage_capacity = storage->marker_capacity;

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

    bool have_markers = false;
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
        if (type == KM_WIRE_SECTION_OBSERVATIONS_2D && storage->observations) {
            km_status st = decode_observations(buf, entry_at, record_size, count,
                                               section_length, offset, storage, out);
            if (st)
                return st;
            continue;
        }
        if (type != KM_WIRE_SECTION_MARKERS) {
            /* Unknown (or not asked for) stream: skip it, that is the extension rule. */
            out->sections_skipped++;
            continue;
        }
        if (have_markers)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: second markers section",
                            entry_at);
        have_markers = true;
        /* Later revisions may append fields to a record: read the v1 prefix, skip the rest. */
        if (record_size < KM_WIRE_MARKER_RECORD_SIZE)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: marker record_size %u < %d",
                            entry_at + ENTRY_RECORD_SIZE, record_size,
                            KM_WIRE_MARKER_RECORD_SIZE);
        if ((uint64_t)count * record_size != section_length)
            return km_error(KM_ERR_FORMAT, "wire: offset %zu: %u markers of %u bytes do not "
                            "make the section length %u", entry_at + ENTRY_COUNT, count,
                            record_size, section_length);
        if (count > (uint32_t)storage_capacity)
            return km_error(KM_ERR_CAPACITY, "wire: offset %zu: %u markers, storage holds %d",
                            entry_at + ENTRY_COUNT, count, storage_capacity);
        const uint8_t *r = buf + offset;
        for (uint32_t i = 0; i < count; i++, r += record_size) {
            km_marker *m = &storage->markers[i];
            m->id = get_u32(r + MARKER_ID);
            m->pos_m.x = get_f32(r + MARKER_X);
            m->pos_m.y = get_f32(r + MARKER_Y);
            m->pos_m.z = get_f32(r + MARKER_Z);
            m->residual_px = get_f32(r + MARKER_RESIDUAL);
            m->views = get_u16(r + MARKER_VIEWS);
        }
        out->marker_count = (int)count;
        out->has_markers = true;
    }
    return KM_OK;
}
