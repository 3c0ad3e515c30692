/* Recordings: writer (km_recorder) and reader (km_recording) of the project's chunked binary
 * format. docs/recording.md is the byte-level specification; the constants below follow it.
 *
 * Layout: preamble (16 bytes), then records. A record is a 40-byte header and a payload:
 *   0 u32 sync 'KMRC'   4 u16 type   6 u16 stream   8 u32 payload_bytes   12 u32 flags
 *  16 u64 sequence     24 u64 time_ns   32 u32 payload CRC-32   36 u32 header CRC-32
 * All integers little-endian. The header has its own CRC so a corrupt length is never
 * trusted; the sync word lets a scan find the next record after damage.
 *
 * Power loss: the writer only ever appends, and the records a reader needs to understand the
 * data (STREAM, RIG) come before the data that uses them, so every prefix of a file that ends
 * on a record boundary is a valid recording without its index. The reader trusts the
 * trailing INDEX/END only when every check passes, and otherwise scans.
 *
 * Threads: a recorder or a reader is used by one thread at a time. The writer allocates its
 * buffer and index at create; per record it only copies (the index grows by doubling past
 * expected_records). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32.h"
#include "kinema/recording.h"

#define SYNC_WORD 0x43524d4bu /* "KMRC" read as a little-endian u32 */
#define HDR KM_RECORDING_RECORD_HEADER_SIZE
#define NO_STREAM 0xffffu

enum record_type {
    REC_STREAM = 1,
    REC_RIG = 2,
    REC_DATA = 3,
    REC_INDEX = 4,
    REC_END = 5,
};

#define STREAM_PAYLOAD_SIZE 168
#define RIG_HEADER_SIZE 72
#define RIG_CAMERA_SIZE 288
#define IMAGE_HEADER_SIZE 24
#define OBS_HEADER_SIZE 8
#define OBS_ROW_SIZE 32
#define INDEX_HEADER_SIZE 8
#define INDEX_ENTRY_SIZE 32
#define END_PAYLOAD_SIZE 16
#define END_RECORD_SIZE (HDR + END_PAYLOAD_SIZE)

/* ------------------------------------------------------------ little-endian helpers */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void putf64(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put64(p, u);
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }
static double getf64(const uint8_t *p)
{
    uint64_t u = get64(p);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
/* Copy a NUL-padded fixed field into a C string, always terminated. */
static void get_name(char *out, size_t out_size, const uint8_t *p, size_t field)
{
    size_t n = 0;
    while (n < field && n + 1 < out_size && p[n]) n++;
    memcpy(out, p, n);
    out[n] = '\0';
}
static void put_name(uint8_t *p, size_t field, const char *s)
{
    memset(p, 0, field);
    size_t n = strnlen(s, field - 1);
    memcpy(p, s, n);
}

typedef struct record_header {
    uint16_t type;
    uint16_t stream;
    uint32_t payload_bytes;
    uint32_t flags;
    uint64_t sequence;
    uint64_t time_ns;
    uint32_t payload_crc;
} record_header;

static void encode_header(uint8_t *p, const record_header *h)
{
    put32(p, SYNC_WORD);
    put16(p + 4, h->type);
    put16(p + 6, h->stream);
    put32(p + 8, h->payload_bytes);
    put32(p + 12, h->flags);
    put64(p + 16, h->sequence);
    put64(p + 24, h->time_ns);
    put32(p + 32, h->payload_crc);
    put32(p + 36, km_crc32_update(0, p, 36));
}

/* false when the sync word or the header CRC is wrong. */
static bool decode_header(const uint8_t *p, record_header *h)
{
    if (get32(p) != SYNC_WORD || get32(p + 36) != km_crc32_update(0, p, 36)) return false;
    h->type = get16(p + 4);
    h->stream = get16(p + 6);
    h->payload_bytes = get32(p + 8);
    h->flags = get32(p + 12);
    h->sequence = get64(p + 16);
    h->time_ns = get64(p + 24);
    h->payload_crc = get32(p + 32);
    return true;
}

static size_t pixel_bytes(km_pixel_format f)
{
    switch (f) {
    case KM_PIXEL_GRAY8: return 1;
    case KM_PIXEL_GRAY16:
    case KM_PIXEL_DEPTH16:
    case KM_PIXEL_YUYV: return 2;
    case KM_PIXEL_RGB24: return 3;
    default: return 0; /* compressed */
    }
}

/* Is a stream description usable? (shared by writer and reader) */
static bool stream_valid(const km_recording_stream *s, char *why, size_t why_size)
{
    if (s->kind < KM_RECORDING_STREAM_IMAGES || s->kind > KM_RECORDING_STREAM_SOLVED) {
        snprintf(why, why_size, "unknown stream kind %d", (int)s->kind);
        return false;
    }
    if (s->camera < -1 || s->camera >= KM_MAX_CAMERAS) {
        snprintf(why, why_size, "camera %d out of range", s->camera);
        return false;
    }
    if (!(s->rate_hz >= 0.0 && s->rate_hz <= 1e6)) {
        snprintf(why, why_size, "rate_hz not in [0, 1e6]");
        return false;
    }
    if (s->kind == KM_RECORDING_STREAM_IMAGES) {
        if ((unsigned)s->format >= KM_PIXEL_FORMAT_COUNT || s->width < 1 || s->height < 1 ||
            s->width > 65535 || s->height > 65535) {
            snprintf(why, why_size, "image stream needs a known format and 1..65535 pixel sizes");
            return false;
        }
    }
    return true;
}

/* ================================================================== writer */

typedef struct index_entry {
    uint64_t offset;
    uint64_t time_ns;
    uint64_t sequence;
    uint16_t stream;
    uint16_t type;
    uint32_t payload_bytes;
} index_entry;

struct km_recorder {
    km_recorder_config cfg;
    int fd;
    char path[512];
    uint8_t *buffer;
    size_t buffered;
    uint64_t offset;           /* file offset of the next record */
    uint64_t last_flush_ns;
    index_entry *index;
    size_t index_count, index_capacity;
    km_recording_stream streams[KM_RECORDING_MAX_STREAMS];
    int stream_count;
    bool has_rig;
    km_status failed;          /* sticky: after an I/O error nothing more is written */
};

km_recorder_config km_recorder_config_default(void)
{
    km_recorder_config c;
    memset(&c, 0, sizeof c);
    c.buffer_bytes = 4u << 20;
    c.flush_interval_ns = 1000000000ull;
    c.sync = false;
    c.expected_records = 65536;
    return c;
}

static km_status write_all(km_recorder *rec, const struct iovec *iov_in, int iovcnt)
{
    struct iovec iov[4];
    memcpy(iov, iov_in, (size_t)iovcnt * sizeof *iov);
    int first = 0;
    while (first < iovcnt) {
        ssize_t n = writev(rec->fd, iov + first, iovcnt - first);
        if (n < 0) {
            if (errno == EINTR) continue;
            rec->failed = km_error(KM_ERR_IO, "%s: write failed: %s", rec->path, strerror(errno));
            return rec->failed;
        }
        size_t left = (size_t)n;
        while (first < iovcnt && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            first++;
        }
        if (first < iovcnt) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + left;
            iov[first].iov_len -= left;
        }
    }
    return KM_OK;
}

static km_status flush_buffer(km_recorder *rec)
{
    if (rec->failed) return rec->failed;
    if (rec->buffered) {
        struct iovec v = {rec->buffer, rec->buffered};
        km_status st = write_all(rec, &v, 1);
        if (st) return st;
        rec->buffered = 0;
    }
    if (rec->cfg.sync && fdatasync(rec->fd) != 0) {
        rec->failed = km_error(KM_ERR_IO, "%s: fdatasync failed: %s", rec->path, strerror(errno));
        return rec->failed;
    }
    rec->last_flush_ns = km_time_now_ns();
    return KM_OK;
}

static km_status index_push(km_recorder *rec, const index_entry *e)
{
    if (rec->index_count == rec->index_capacity) {
        size_t cap = rec->index_capacity ? 2 * rec->index_capacity : 1024;
        index_entry *grown = realloc(rec->index, cap * sizeof *grown);
        if (!grown) return km_error(KM_ERR_NO_MEMORY, "%s: no memory for the index", rec->path);
        rec->index = grown;
        rec->index_capacity = cap;
    }
    rec->index[rec->index_count++] = *e;
    return KM_OK;
}

/* Append one record made of up to two payload pieces (header + body without a copy). */
static km_status append_record(km_recorder *rec, uint16_t type, uint16_t stream, uint32_t flags,
                               uint64_t sequence, uint64_t time_ns, const void *a, size_t a_len,
                               const void *b, size_t b_len, bool indexed)
{
    if (rec->failed) return rec->failed;
    size_t payload = a_len + b_len;
    if (payload > KM_RECORDING_MAX_PAYLOAD)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: record of %zu bytes exceeds the %u-byte limit",
                        rec->path, payload, KM_RECORDING_MAX_PAYLOAD);
    record_header h = {type, stream, (uint32_t)payload, flags, sequence, time_ns, 0};
    h.payload_crc = km_crc32_update(km_crc32_update(0, a, a_len), b, b_len);
    uint8_t head[HDR];
    encode_header(head, &h);
    if (indexed) {
        index_entry e = {rec->offset, time_ns, sequence, stream, type, (uint32_t)payload};
        km_status st = index_push(rec, &e);
        if (st) return st;
    }
    size_t total = HDR + payload;
    /* Large records (camera images) skip the buffer: one writev from the caller's memory
     * saves a copy of every pixel; small ones are gathered into few large writes. */
    bool direct = total > rec->cfg.buffer_bytes / 4;
    if (direct || total > rec->cfg.buffer_bytes - rec->buffered) {
        km_status st = flush_buffer(rec);
        if (st) return st;
    }
    if (direct) {
        struct iovec v[3] = {{head, HDR}, {(void *)a, a_len}, {(void *)b, b_len}};
        km_status st = write_all(rec, v, 3);
        if (st) return st;
    } else {
        uint8_t *dst = rec->buffer + rec->buffered;
        memcpy(dst, head, HDR);
        if (a_len) memcpy(dst + HDR, a, a_len);
        /* write_observations builds its payload in place: no copy onto itself. */
        if (b_len && dst + HDR + a_len != (const uint8_t *)b) memcpy(dst + HDR + a_len, b, b_len);
        rec->buffered += total;
    }
    rec->offset += total;
    if (rec->cfg.flush_interval_ns &&
        km_time_now_ns() - rec->last_flush_ns >= rec->cfg.flush_interval_ns)
        return flush_buffer(rec);
    return KM_OK;
}

static km_recorder *recorder_alloc(const char *path, const km_recorder_config *cfg,
                                   km_status *st)
{
    km_recorder *rec = calloc(1, sizeof *rec);
    if (!rec) {
        *st = km_error(KM_ERR_NO_MEMORY, "recorder: no memory");
        return NULL;
    }
    rec->fd = -1;
    rec->cfg = cfg ? *cfg : km_recorder_config_default();
    if (rec->cfg.buffer_bytes < 64 * 1024) rec->cfg.buffer_bytes = 64 * 1024;
    snprintf(rec->path, sizeof rec->path, "%s", path);
    rec->buffer = malloc(rec->cfg.buffer_bytes);
    rec->index_capacity = rec->cfg.expected_records ? rec->cfg.expected_records : 1024;
    rec->index = malloc(rec->index_capacity * sizeof *rec->index);
    if (!rec->buffer || !rec->index) {
        *st = km_error(KM_ERR_NO_MEMORY, "recorder: no memory for a %zu-byte buffer",
                       rec->cfg.buffer_bytes);
        free(rec->buffer);
        free(rec->index);
        free(rec);
        return NULL;
    }
    rec->last_flush_ns = km_time_now_ns();
    return rec;
}

static void recorder_free(km_recorder *rec)
{
    if (rec->fd >= 0) close(rec->fd);
    free(rec->buffer);
    free(rec->index);
    free(rec);
}

km_recorder *km_recorder_create(const char *path, const km_recorder_config *cfg, km_status *err)
{
    km_status st = KM_OK;
    if (!path) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL path");
        if (err) *err = st;
        return NULL;
    }
    km_recorder *rec = recorder_alloc(path, cfg, &st);
    if (!rec) {
        if (err) *err = st;
        return NULL;
    }
    rec->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rec->fd < 0) {
        st = km_error(KM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        recorder_free(rec);
        if (err) *err = st;
        return NULL;
    }
    uint8_t pre[KM_RECORDING_PREAMBLE_SIZE];
    memcpy(pre, KM_RECORDING_MAGIC, 8);
    put16(pre + 8, KM_RECORDING_VERSION_MAJOR);
    put16(pre + 10, KM_RECORDING_VERSION_MINOR);
    put32(pre + 12, HDR);
    memcpy(rec->buffer, pre, sizeof pre);
    rec->buffered = sizeof pre;
    rec->offset = sizeof pre;
    if (err) *err = KM_OK;
    return rec;
}

km_status km_recorder_set_rig(km_recorder *rec, const km_rig *rig)
{
    if (!rec || !rig) return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL argument");
    if (rec->has_rig) return km_error(KM_ERR_INVALID_ARGUMENT, "%s: rig already set", rec->path);
    if (rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: rig has %d cameras", rec->path,
                        rig->camera_count);
    /* Binary, not YAML: the doubles come back bit-exact. */
    size_t size = RIG_HEADER_SIZE + (size_t)rig->camera_count * RIG_CAMERA_SIZE;
    uint8_t buf[RIG_HEADER_SIZE + KM_MAX_CAMERAS * RIG_CAMERA_SIZE];
    memset(buf, 0, size);
    put_name(buf, 64, rig->name);
    put32(buf + 64, (uint32_t)rig->camera_count);
    for (int c = 0; c < rig->camera_count; c++) {
        const km_camera *cam = &rig->cameras[c];
        uint8_t *p = buf + RIG_HEADER_SIZE + (size_t)c * RIG_CAMERA_SIZE;
        put_name(p, 64, cam->name);
        put32(p + 64, (uint32_t)cam->width);
        put32(p + 68, (uint32_t)cam->height);
        for (int i = 0; i < 9; i++) putf64(p + 72 + 8 * i, cam->K[i]);
        for (int i = 0; i < 5; i++) putf64(p + 144 + 8 * i, cam->dist[i]);
        for (int i = 0; i < 9; i++) putf64(p + 184 + 8 * i, cam->R.m[i]);
        putf64(p + 256, cam->t.x);
        putf64(p + 264, cam->t.y);
        putf64(p + 272, cam->t.z);
        put32(p + 280, cam->has_pose ? 1u : 0u);
    }
    km_status st = append_record(rec, REC_RIG, NO_STREAM, 0, 0, 0, buf, size, NULL, 0, true);
    if (st == KM_OK) rec->has_rig = true;
    return st;
}

static void encode_stream(uint8_t *p, const km_recording_stream *s)
{
    memset(p, 0, STREAM_PAYLOAD_SIZE);
    put16(p, (uint16_t)s->id);
    put16(p + 2, (uint16_t)s->kind);
    put32(p + 4, (uint32_t)s->camera);
    put32(p + 8, (uint32_t)s->width);
    put32(p + 12, (uint32_t)s->height);
    put32(p + 16, (uint32_t)s->format);
    putf64(p + 24, s->rate_hz);
    put_name(p + 32, 64, s->name);
    put_name(p + 96, 64, s->serial);
}

km_status km_recorder_add_stream(km_recorder *rec, const km_recording_stream *desc,
                                 int *stream_id)
{
    if (!rec || !desc) return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL argument");
    if (rec->stream_count >= KM_RECORDING_MAX_STREAMS)
        return km_error(KM_ERR_CAPACITY, "%s: more than %d streams", rec->path,
                        KM_RECORDING_MAX_STREAMS);
    km_recording_stream s;
    memset(&s, 0, sizeof s);
    s.id = rec->stream_count;
    s.kind = desc->kind;
    s.camera = desc->camera;
    snprintf(s.name, sizeof s.name, "%s", desc->name);
    snprintf(s.serial, sizeof s.serial, "%s", desc->serial);
    if (desc->kind == KM_RECORDING_STREAM_IMAGES) {
        s.width = desc->width;
        s.height = desc->height;
        s.format = desc->format;
    }
    s.rate_hz = desc->rate_hz;
    char why[96];
    if (!stream_valid(&s, why, sizeof why))
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: stream '%s': %s", rec->path, s.name, why);
    uint8_t buf[STREAM_PAYLOAD_SIZE];
    encode_stream(buf, &s);
    km_status st = append_record(rec, REC_STREAM, (uint16_t)s.id, 0, 0, 0, buf, sizeof buf,
                                 NULL, 0, true);
    if (st) return st;
    rec->streams[rec->stream_count++] = s;
    if (stream_id) *stream_id = s.id;
    return KM_OK;
}

km_status km_recorder_add_source_stream(km_recorder *rec, const km_source_info *info,
                                        int *stream_id)
{
    if (!info) return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL source info");
    km_recording_stream s;
    memset(&s, 0, sizeof s);
    s.kind = KM_RECORDING_STREAM_IMAGES;
    s.camera = info->camera;
    snprintf(s.name, sizeof s.name, "%s", info->name);
    snprintf(s.serial, sizeof s.serial, "%s", info->serial);
    s.width = info->width;
    s.height = info->height;
    s.format = info->format;
    s.rate_hz = info->rate_hz;
    return km_recorder_add_stream(rec, &s, stream_id);
}

static km_status check_stream(km_recorder *rec, int stream, km_recording_stream_kind kind)
{
    if (stream < 0 || stream >= rec->stream_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: no stream %d", rec->path, stream);
    if (rec->streams[stream].kind != kind)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: stream %d is not of kind %d", rec->path,
                        stream, (int)kind);
    return KM_OK;
}

km_status km_recorder_write_frame(km_recorder *rec, int stream, const km_frame *frame)
{
    if (!rec || !frame || (!frame->data && frame->size))
        return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL argument");
    km_status st = check_stream(rec, stream, KM_RECORDING_STREAM_IMAGES);
    if (st) return st;
    if (frame->format != rec->streams[stream].format)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: stream %d: frame format %d, stream format %d",
                        rec->path, stream, (int)frame->format, (int)rec->streams[stream].format);
    if (frame->width < 0 || frame->height < 0 || frame->stride < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: negative frame size", rec->path);
    uint8_t head[IMAGE_HEADER_SIZE];
    put32(head, (uint32_t)frame->width);
    put32(head + 4, (uint32_t)frame->height);
    put32(head + 8, (uint32_t)frame->stride);
    put32(head + 12, (uint32_t)frame->format);
    /* Arrival as a delay after exposure, so replay can keep it relative to a shifted time. */
    put64(head + 16, frame->arrival_ns);
    return append_record(rec, REC_DATA, (uint16_t)stream, frame->flags, frame->sequence,
                         frame->time_ns, head, sizeof head, frame->data, frame->size, true);
}

km_status km_recorder_write_observations(km_recorder *rec, int stream,
                                         const km_observation_set *obs)
{
    if (!rec || !obs || obs->count < 0 || (obs->count && !obs->items))
        return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL or invalid observation set");
    km_status st = check_stream(rec, stream, KM_RECORDING_STREAM_OBSERVATIONS);
    if (st) return st;
    /* Encode in place in the buffer when it fits (no allocation): flush first if needed. */
    size_t payload = OBS_HEADER_SIZE + (size_t)obs->count * OBS_ROW_SIZE;
    if (payload > KM_RECORDING_MAX_PAYLOAD)
        return km_error(KM_ERR_CAPACITY, "%s: %d observations in one record", rec->path,
                        obs->count);
    if (HDR + payload > rec->cfg.buffer_bytes)
        return km_error(KM_ERR_CAPACITY, "%s: observation set of %zu bytes exceeds the buffer",
                        rec->path, payload);
    if (HDR + payload > rec->cfg.buffer_bytes - rec->buffered && (st = flush_buffer(rec)))
        return st;
    /* Build the payload in the free tail of the buffer, then append it as a record: the
     * copy in append_record moves it by HDR bytes (memmove semantics needed). */
    uint8_t *p = rec->buffer + rec->buffered + HDR;
    put32(p, (uint32_t)obs->count);
    put32(p + 4, 0);
    for (int i = 0; i < obs->count; i++) {
        uint8_t *row = p + OBS_HEADER_SIZE + (size_t)i * OBS_ROW_SIZE;
        putf64(row, obs->items[i].x);
        putf64(row + 8, obs->items[i].y);
        putf64(row + 16, obs->items[i].area_px);
        put32(row + 24, (uint32_t)obs->items[i].camera);
        put32(row + 28, 0);
    }
    /* The payload already sits where append_record would copy it: a copy onto itself. To
     * stay within memcpy's rules, pass it as b with a == NULL and let append_record skip the
     * copy when source and destination coincide. */
    return append_record(rec, REC_DATA, (uint16_t)stream, 0, obs->frame, obs->time_ns, NULL, 0,
                         p, payload, true);
}

km_status km_recorder_write_record(km_recorder *rec, int stream, uint64_t sequence,
                                   uint64_t time_ns, uint32_t flags, const void *payload,
                                   size_t payload_bytes)
{
    if (!rec || (!payload && payload_bytes))
        return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL argument");
    if (stream < 0 || stream >= rec->stream_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: no stream %d", rec->path, stream);
    return append_record(rec, REC_DATA, (uint16_t)stream, flags, sequence, time_ns, payload,
                         payload_bytes, NULL, 0, true);
}

km_status km_recorder_flush(km_recorder *rec)
{
    if (!rec) return km_error(KM_ERR_INVALID_ARGUMENT, "recorder: NULL");
    return flush_buffer(rec);
}

uint64_t km_recorder_bytes(const km_recorder *rec)
{
    return rec ? rec->offset : 0;
}

km_status km_recorder_close(km_recorder *rec)
{
    if (!rec) return KM_OK;
    km_status st = rec->failed;
    if (!st) {
        /* INDEX: entry count, entry size, then the entries; then END pointing at it. Neither
         * is indexed itself. The index is written straight from a temporary encoding. */
        uint64_t index_offset = rec->offset;
        size_t bytes = INDEX_HEADER_SIZE + rec->index_count * INDEX_ENTRY_SIZE;
        uint8_t *buf = malloc(bytes);
        if (!buf) {
            st = km_error(KM_ERR_NO_MEMORY, "%s: no memory for the index", rec->path);
        } else {
            put32(buf, (uint32_t)rec->index_count);
            put32(buf + 4, INDEX_ENTRY_SIZE);
            for (size_t i = 0; i < rec->index_count; i++) {
                uint8_t *e = buf + INDEX_HEADER_SIZE + i * INDEX_ENTRY_SIZE;
                put64(e, rec->index[i].offset);
                put64(e + 8, rec->index[i].time_ns);
                put64(e + 16, rec->index[i].sequence);
                put16(e + 24, rec->index[i].stream);
                put16(e + 26, rec->index[i].type);
                put32(e + 28, rec->index[i].payload_bytes);
            }
            if (bytes > KM_RECORDING_MAX_PAYLOAD)
                km_log(KM_LOG_WARN, "recording", "%s: index of %zu bytes too large; readers "
                       "will scan", rec->path, bytes);
            else
                st = append_record(rec, REC_INDEX, NO_STREAM, 0, rec->index_count, 0, buf, bytes,
                                   NULL, 0, false);
            free(buf);
        }
        if (!st) {
            uint8_t end[END_PAYLOAD_SIZE];
            put64(end, index_offset);
            put64(end + 8, rec->offset);
            st = append_record(rec, REC_END, NO_STREAM, 0, 0, 0, end, sizeof end, NULL, 0, false);
        }
        if (!st) st = flush_buffer(rec);
        if (!st && fsync(rec->fd) != 0)
            st = km_error(KM_ERR_IO, "%s: fsync failed: %s", rec->path, strerror(errno));
    }
    if (rec->fd >= 0 && close(rec->fd) != 0 && !st)
        st = km_error(KM_ERR_IO, "%s: close failed: %s", rec->path, strerror(errno));
    rec->fd = -1;
    recorder_free(rec);
    return st;
}

/* ================================================================== reader */

struct km_recording {
    char name[512];
    int fd;                    /* -1 for memory */
    const uint8_t *memory;
    uint64_t size;
    km_recording_info info;
    km_recording_stream streams[KM_RECORDING_MAX_STREAMS];
    int stream_count;
    km_rig rig;
    index_entry *data;         /* data records, file order */
    size_t data_count;
    size_t cursor;
    uint8_t *payload;          /* buffer for one payload (files only) */
    size_t payload_capacity;
};

static km_status read_at(const km_recording *r, uint64_t offset, void *dst, size_t n)
{
    if (offset > r->size || n > r->size - offset)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: %zu bytes past the end of the file",
                        r->name, (unsigned long long)offset, n);
    if (r->memory) {
        memcpy(dst, r->memory + offset, n);
        return KM_OK;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(r->fd, (uint8_t *)dst + done, n - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return km_error(got < 0 ? KM_ERR_IO : KM_ERR_FORMAT, "%s: offset %llu: read failed: %s",
                            r->name, (unsigned long long)(offset + done),
                            got < 0 ? strerror(errno) : "file shrank");
        done += (size_t)got;
    }
    return KM_OK;
}

/* Pointer to n payload bytes at offset: straight into memory, else read into the buffer. */
static km_status payload_at(km_recording *r, uint64_t offset, size_t n, const uint8_t **out)
{
    if (r->memory) {
        if (offset > r->size || n > r->size - offset)
            return km_error(KM_ERR_FORMAT, "%s: offset %llu: payload past the end", r->name,
                            (unsigned long long)offset);
        *out = r->memory + offset;
        return KM_OK;
    }
    if (n > r->payload_capacity) {
        /* Sized at open to the largest payload in the index; only grows for records read
         * before the index knew them (never in replay's steady state). */
        uint8_t *grown = realloc(r->payload, n ? n : 1);
        if (!grown) return km_error(KM_ERR_NO_MEMORY, "%s: no memory for a payload", r->name);
        r->payload = grown;
        r->payload_capacity = n;
    }
    km_status st = read_at(r, offset, r->payload, n);
    *out = r->payload;
    return st;
}

static bool decode_stream_payload(const uint8_t *p, size_t n, km_recording_stream *s)
{
    if (n < STREAM_PAYLOAD_SIZE) return false;
    memset(s, 0, sizeof *s);
    s->id = get16(p);
    s->kind = (km_recording_stream_kind)get16(p + 2);
    s->camera = (int32_t)get32(p + 4);
    s->width = (int32_t)get32(p + 8);
    s->height = (int32_t)get32(p + 12);
    s->format = (km_pixel_format)get32(p + 16);
    s->rate_hz = getf64(p + 24);
    get_name(s->name, sizeof s->name, p + 32, 64);
    get_name(s->serial, sizeof s->serial, p + 96, 64);
    if (s->kind != KM_RECORDING_STREAM_IMAGES) {
        s->width = s->height = 0;
        s->format = KM_PIXEL_GRAY8;
    }
    char why[96];
    return stream_valid(s, why, sizeof why);
}

static bool finite_all(const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}

static bool decode_rig_payload(const uint8_t *p, size_t n, km_rig *rig)
{
    if (n < RIG_HEADER_SIZE) return false;
    memset(rig, 0, sizeof *rig);
    get_name(rig->name, sizeof rig->name, p, 64);
    uint32_t count = get32(p + 64);
    if (count < 1 || count > KM_MAX_CAMERAS || n < RIG_HEADER_SIZE + count * RIG_CAMERA_SIZE)
        return false;
    rig->camera_count = (int)count;
    for (uint32_t c = 0; c < count; c++) {
        km_camera *cam = &rig->cameras[c];
        const uint8_t *q = p + RIG_HEADER_SIZE + (size_t)c * RIG_CAMERA_SIZE;
        get_name(cam->name, sizeof cam->name, q, 64);
        cam->width = (int32_t)get32(q + 64);
        cam->height = (int32_t)get32(q + 68);
        for (int i = 0; i < 9; i++) cam->K[i] = getf64(q + 72 + 8 * i);
        for (int i = 0; i < 5; i++) cam->dist[i] = getf64(q + 144 + 8 * i);
        for (int i = 0; i < 9; i++) cam->R.m[i] = getf64(q + 184 + 8 * i);
        cam->t = km_vec3_make(getf64(q + 256), getf64(q + 264), getf64(q + 272));
        cam->has_pose = get32(q + 280) != 0;
        if (cam->width < 1 || cam->height < 1 || cam->width > 65535 || cam->height > 65535 ||
            !finite_all(cam->K, 9) || !finite_all(cam->dist, 5) || !finite_all(cam->R.m, 9) ||
            !isfinite(cam->t.x) || !isfinite(cam->t.y) || !isfinite(cam->t.z) ||
            !(cam->K[0] > 0) || !(cam->K[4] > 0))
            return false;
    }
    return true;
}

static km_status data_push(km_recording *r, const index_entry *e, size_t *capacity)
{
    if (r->data_count == *capacity) {
        size_t cap = *capacity ? 2 * *capacity : 256;
        index_entry *grown = realloc(r->data, cap * sizeof *grown);
        if (!grown) return km_error(KM_ERR_NO_MEMORY, "%s: no memory for the index", r->name);
        r->data = grown;
        *capacity = cap;
    }
    r->data[r->data_count++] = *e;
    return KM_OK;
}

/* A metadata record (STREAM or RIG) met at open: validate and take it. */
static km_status take_metadata(km_recording *r, uint64_t offset, const record_header *h,
                               const uint8_t *payload)
{
    if (h->type == REC_STREAM) {
        km_recording_stream s;
        if (!decode_stream_payload(payload, h->payload_bytes, &s) || s.id != h->stream ||
            s.id != r->stream_count)
            return km_error(KM_ERR_FORMAT, "%s: offset %llu: invalid stream record (stream %u, "
                            "expected %d)", r->name, (unsigned long long)offset, h->stream,
                            r->stream_count);
        r->streams[r->stream_count++] = s;
    } else if (h->type == REC_RIG) {
        if (r->info.has_rig)
            return km_error(KM_ERR_FORMAT, "%s: offset %llu: second rig record", r->name,
                            (unsigned long long)offset);
        if (!decode_rig_payload(payload, h->payload_bytes, &r->rig))
            return km_error(KM_ERR_FORMAT, "%s: offset %llu: invalid rig record", r->name,
                            (unsigned long long)offset);
        r->info.has_rig = true;
    }
    return KM_OK;
}

/* A data record must name a declared stream. */
static bool data_header_ok(const km_recording *r, const record_header *h)
{
    return h->stream < r->stream_count;
}

static void reset_contents(km_recording *r)
{
    r->stream_count = 0;
    r->info.has_rig = false;
    r->data_count = 0;
}

/* Try the trailing END + INDEX. false (and nothing kept) when anything is off. */
static bool load_index(km_recording *r)
{
    if (r->size < KM_RECORDING_PREAMBLE_SIZE + END_RECORD_SIZE) return false;
    uint64_t end_at = r->size - END_RECORD_SIZE;
    uint8_t end[END_RECORD_SIZE];
    record_header h;
    if (read_at(r, end_at, end, sizeof end) || !decode_header(end, &h) || h.type != REC_END ||
        h.payload_bytes != END_PAYLOAD_SIZE ||
        h.payload_crc != km_crc32_update(0, end + HDR, END_PAYLOAD_SIZE))
        return false;
    uint64_t index_at = get64(end + HDR);
    if (get64(end + HDR + 8) != end_at || index_at < KM_RECORDING_PREAMBLE_SIZE ||
        index_at + HDR + INDEX_HEADER_SIZE > end_at)
        return false;
    uint8_t ih[HDR];
    record_header ix;
    if (read_at(r, index_at, ih, HDR) || !decode_header(ih, &ix) || ix.type != REC_INDEX ||
        index_at + HDR + ix.payload_bytes != end_at || ix.payload_bytes < INDEX_HEADER_SIZE)
        return false;
    const uint8_t *idx;
    if (payload_at(r, index_at + HDR, ix.payload_bytes, &idx) ||
        km_crc32_update(0, idx, ix.payload_bytes) != ix.payload_crc)
        return false;
    uint32_t count = get32(idx), entry_size = get32(idx + 4);
    if (entry_size < INDEX_ENTRY_SIZE ||
        (uint64_t)count * entry_size != ix.payload_bytes - INDEX_HEADER_SIZE)
        return false;
    /* Copy the entries out first: reading metadata records reuses the payload buffer. */
    index_entry *all = malloc((size_t)(count ? count : 1) * sizeof *all);
    if (!all) return false;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = idx + INDEX_HEADER_SIZE + (size_t)i * entry_size;
        all[i] = (index_entry){get64(e), get64(e + 8), get64(e + 16), get16(e + 24),
                               get16(e + 26), get32(e + 28)};
    }
    bool ok = true;
    size_t cap = 0;
    uint64_t expect = KM_RECORDING_PREAMBLE_SIZE;
    for (uint32_t i = 0; i < count && ok; i++) {
        const index_entry *e = &all[i];
        /* Entries tile the file from the preamble to the index, in order. */
        if (e->offset != expect || e->payload_bytes > KM_RECORDING_MAX_PAYLOAD ||
            e->offset + HDR + e->payload_bytes > index_at) {
            ok = false;
            break;
        }
        expect = e->offset + HDR + e->payload_bytes;
        if (e->type == REC_DATA) {
            if (e->stream >= r->stream_count || data_push(r, e, &cap)) ok = false;
        } else if (e->type == REC_STREAM || e->type == REC_RIG) {
            uint8_t hb[HDR];
            record_header mh;
            const uint8_t *pl;
            if (read_at(r, e->offset, hb, HDR) || !decode_header(hb, &mh) || mh.type != e->type ||
                mh.payload_bytes != e->payload_bytes ||
                payload_at(r, e->offset + HDR, mh.payload_bytes, &pl) ||
                km_crc32_update(0, pl, mh.payload_bytes) != mh.payload_crc ||
                take_metadata(r, e->offset, &mh, pl))
                ok = false;
        }
        /* other types: skipped (later minor versions) */
    }
    if (ok && expect != index_at) ok = false;
    free(all);
    if (!ok) {
        km_clear_error();
        reset_contents(r);
    }
    return ok;
}

/* Scan the records from the preamble: the recovery path (no index, or a damaged one). */
static km_status scan(km_recording *r)
{
    size_t cap = 0;
    uint64_t at = KM_RECORDING_PREAMBLE_SIZE;
    r->info.truncated = true;
    for (;;) {
        uint64_t left = r->size - at;
        if (left == 0) {
            snprintf(r->info.cut_reason, sizeof r->info.cut_reason,
                     "offset %llu: file ends without an end record (writer did not close)",
                     (unsigned long long)at);
            break;
        }
        if (left < HDR) {
            snprintf(r->info.cut_reason, sizeof r->info.cut_reason,
                     "offset %llu: record header incomplete (%llu of %d bytes)",
                     (unsigned long long)at, (unsigned long long)left, HDR);
            break;
        }
        uint8_t hb[HDR];
        record_header h;
        km_status st = read_at(r, at, hb, HDR);
        if (st) return st;
        if (!decode_header(hb, &h)) {
            snprintf(r->info.cut_reason, sizeof r->info.cut_reason,
                     "offset %llu: no valid record header (sync word or header CRC wrong)",
                     (unsigned long long)at);
            break;
        }
        if (h.payload_bytes > KM_RECORDING_MAX_PAYLOAD || h.payload_bytes > left - HDR) {
            snprintf(r->info.cut_reason, sizeof r->info.cut_reason,
                     "offset %llu: record incomplete (payload %u bytes, %llu present)",
                     (unsigned long long)at, h.payload_bytes, (unsigned long long)(left - HDR));
            break;
        }
        const uint8_t *pl;
        if ((st = payload_at(r, at + HDR, h.payload_bytes, &pl))) return st;
        bool crc_ok = km_crc32_update(0, pl, h.payload_bytes) == h.payload_crc;
        if (h.type == REC_END && crc_ok && h.payload_bytes == END_PAYLOAD_SIZE &&
            at + HDR + h.payload_bytes == r->size) {
            /* A complete file whose index was unusable: nothing was cut. */
            r->info.truncated = false;
            at = r->size;
            break;
        }
        if (!crc_ok) {
            /* The header is sound, so its length is: skip the damaged payload and go on
             * (bit rot in the middle must not lose the rest). A damaged last record is what
             * power loss leaves (the size grew before the data landed): that is the cut. */
            if (at + HDR + h.payload_bytes == r->size) {
                snprintf(r->info.cut_reason, sizeof r->info.cut_reason,
                         "offset %llu: last record's payload CRC mismatch (partly written)",
                         (unsigned long long)at);
                break;
            }
            r->info.damaged_records++;
            km_log(KM_LOG_WARN, "recording", "%s: offset %llu: payload CRC mismatch, record "
                   "skipped", r->name, (unsigned long long)at);
        } else if (h.type == REC_STREAM || h.type == REC_RIG) {
            /* A well-checksummed metadata record that does not decode was written wrong:
             * refuse the file rather than guess. */
            if ((st = take_metadata(r, at, &h, pl))) return st;
        } else if (h.type == REC_DATA) {
            if (!data_header_ok(r, &h)) {
                /* Its stream record was lost (damaged): the data cannot be interpreted. */
                r->info.damaged_records++;
                km_log(KM_LOG_WARN, "recording", "%s: offset %llu: data of undeclared stream "
                       "%u skipped", r->name, (unsigned long long)at, h.stream);
                at += HDR + h.payload_bytes;
                continue;
            }
            index_entry e = {at, h.time_ns, h.sequence, h.stream, h.type, h.payload_bytes};
            if ((st = data_push(r, &e, &cap))) return st;
        }
        at += HDR + h.payload_bytes;
    }
    r->info.cut_offset = at;
    r->info.index_rebuilt = true;
    return KM_OK;
}

static void compute_stream_stats(km_recording *r)
{
    uint64_t last_seq[KM_RECORDING_MAX_STREAMS];
    memset(last_seq, 0, sizeof last_seq);
    r->info.first_time_ns = UINT64_MAX;
    r->info.last_time_ns = 0;
    size_t largest = 0;
    for (size_t i = 0; i < r->data_count; i++) {
        const index_entry *e = &r->data[i];
        km_recording_stream *s = &r->streams[e->stream];
        if (e->payload_bytes > largest) largest = e->payload_bytes;
        if (e->time_ns < r->info.first_time_ns) r->info.first_time_ns = e->time_ns;
        if (e->time_ns > r->info.last_time_ns) r->info.last_time_ns = e->time_ns;
        if (s->records == 0) {
            s->first_time_ns = e->time_ns;
        } else {
            if (e->sequence <= last_seq[e->stream])
                s->sequence_repeats++;
            else
                s->sequence_gaps += e->sequence - last_seq[e->stream] - 1;
            uint64_t dt = e->time_ns > s->last_time_ns ? e->time_ns - s->last_time_ns : 0;
            if (dt > s->max_interval_ns) s->max_interval_ns = dt;
            if (s->rate_hz > 0 && (double)dt > 1.5e9 / s->rate_hz) s->time_gaps++;
        }
        last_seq[e->stream] = e->sequence;
        s->last_time_ns = e->time_ns;
        s->records++;
        s->payload_bytes += e->payload_bytes;
    }
    if (!r->data_count) r->info.first_time_ns = 0;
    r->info.records = r->data_count;
    if (!r->memory && largest > r->payload_capacity) {
        uint8_t *buf = realloc(r->payload, largest);
        if (buf) {
            r->payload = buf;
            r->payload_capacity = largest;
        }
    }
}

static km_recording *open_common(km_recording *r, km_status *err)
{
    km_status st;
    uint8_t pre[KM_RECORDING_PREAMBLE_SIZE];
    r->info.file_bytes = r->size;
    if (r->size < sizeof pre || read_at(r, 0, pre, sizeof pre) ||
        memcmp(pre, KM_RECORDING_MAGIC, 8) != 0) {
        st = km_error(KM_ERR_FORMAT, "%s: offset 0: not a Kinema recording (magic '%s' missing)",
                      r->name, KM_RECORDING_MAGIC);
        goto fail;
    }
    r->info.version_major = get16(pre + 8);
    r->info.version_minor = get16(pre + 10);
    if (r->info.version_major != KM_RECORDING_VERSION_MAJOR || get32(pre + 12) != HDR) {
        st = km_error(KM_ERR_FORMAT, "%s: offset 8: unsupported recording version %d.%d "
                      "(this reader knows %d.x)", r->name, r->info.version_major,
                      r->info.version_minor, KM_RECORDING_VERSION_MAJOR);
        goto fail;
    }
    if (!load_index(r)) {
        reset_contents(r);
        if ((st = scan(r))) goto fail;
        if (r->info.truncated)
            km_log(KM_LOG_WARN, "recording", "%s: recording cut off: %s; %zu complete records "
                   "readable", r->name, r->info.cut_reason, r->data_count);
    } else {
        r->info.cut_offset = r->size;
    }
    compute_stream_stats(r);
    if (err) *err = KM_OK;
    return r;
fail:
    if (err) *err = st;
    km_recording_close(r);
    return NULL;
}

km_recording *km_recording_open(const char *path, km_status *err)
{
    km_status st;
    km_recording *r = calloc(1, sizeof *r);
    if (!r) {
        st = km_error(KM_ERR_NO_MEMORY, "recording: no memory");
        if (err) *err = st;
        return NULL;
    }
    snprintf(r->name, sizeof r->name, "%s", path ? path : "(null)");
    r->fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sb;
    if (r->fd < 0 || fstat(r->fd, &sb) != 0) {
        st = km_error(path ? KM_ERR_IO : KM_ERR_INVALID_ARGUMENT, "%s: cannot open: %s", r->name,
                      strerror(errno));
        km_recording_close(r);
        if (err) *err = st;
        return NULL;
    }
    r->size = (uint64_t)sb.st_size;
    return open_common(r, err);
}

km_recording *km_recording_open_memory(const uint8_t *data, size_t size, const char *name,
                                       km_status *err)
{
    km_status st;
    km_recording *r = calloc(1, sizeof *r);
    if (!r || (!data && size)) {
        st = km_error(r ? KM_ERR_INVALID_ARGUMENT : KM_ERR_NO_MEMORY, "recording: %s",
                      r ? "NULL data" : "no memory");
        free(r);
        if (err) *err = st;
        return NULL;
    }
    snprintf(r->name, sizeof r->name, "%s", name ? name : "(memory)");
    r->fd = -1;
    static const uint8_t empty[1] = {0};
    r->memory = data ? data : empty;
    r->size = size;
    return open_common(r, err);
}

void km_recording_close(km_recording *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r->data);
    free(r->payload);
    free(r);
}

void km_recording_get_info(const km_recording *r, km_recording_info *out)
{
    if (!out) return;
    if (!r) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = r->info;
}

int km_recording_stream_count(const km_recording *r) { return r ? r->stream_count : 0; }

const km_recording_stream *km_recording_stream_get(const km_recording *r, int index)
{
    if (!r || index < 0 || index >= r->stream_count) return NULL;
    return &r->streams[index];
}

const km_rig *km_recording_rig(const km_recording *r)
{
    return r && r->info.has_rig ? &r->rig : NULL;
}

/* Read and check record `index` (header must match the index; payload CRC). */
static km_status load_record(km_recording *r, size_t index, km_record *out)
{
    const index_entry *e = &r->data[index];
    uint8_t hb[HDR];
    record_header h;
    km_status st = read_at(r, e->offset, hb, HDR);
    if (st) return st;
    if (!decode_header(hb, &h) || h.type != REC_DATA || h.stream != e->stream ||
        h.payload_bytes != e->payload_bytes || h.sequence != e->sequence ||
        h.time_ns != e->time_ns)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: record header does not match the index",
                        r->name, (unsigned long long)e->offset);
    const uint8_t *pl;
    if ((st = payload_at(r, e->offset + HDR, h.payload_bytes, &pl))) return st;
    if (km_crc32_update(0, pl, h.payload_bytes) != h.payload_crc)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: payload CRC mismatch (record %zu, "
                        "stream %u)", r->name, (unsigned long long)e->offset, index, h.stream);
    memset(out, 0, sizeof *out);
    out->stream = h.stream;
    out->kind = r->streams[h.stream].kind;
    out->sequence = h.sequence;
    out->time_ns = h.time_ns;
    out->flags = h.flags;
    out->payload = pl;
    out->payload_bytes = h.payload_bytes;
    out->offset = e->offset;
    out->index = index;
    return KM_OK;
}

size_t km_recording_record_count(const km_recording *r)
{
    return r ? r->data_count : 0;
}

km_status km_recording_peek(const km_recording *r, size_t index, km_record *out)
{
    if (!r || !out) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL argument");
    if (index >= r->data_count)
        return km_error(KM_ERR_NOT_FOUND, "%s: no record %zu (%zu records)", r->name, index,
                        r->data_count);
    const index_entry *e = &r->data[index];
    memset(out, 0, sizeof *out);
    out->stream = e->stream;
    out->kind = r->streams[e->stream].kind;
    out->sequence = e->sequence;
    out->time_ns = e->time_ns;
    out->payload_bytes = e->payload_bytes;
    out->offset = e->offset;
    out->index = index;
    return KM_OK;
}

km_status km_recording_read(km_recording *r, size_t index, km_record *out)
{
    if (!r || !out) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL argument");
    if (index >= r->data_count)
        return km_error(KM_ERR_NOT_FOUND, "%s: no record %zu (%zu records)", r->name, index,
                        r->data_count);
    return load_record(r, index, out);
}

km_status km_recording_next(km_recording *r, int stream, km_record *out)
{
    if (!r || !out) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL argument");
    while (r->cursor < r->data_count && stream >= 0 && r->data[r->cursor].stream != stream)
        r->cursor++;
    if (r->cursor >= r->data_count) {
        if (r->info.truncated)
            return km_error(KM_ERR_FORMAT, "%s: offset %llu: recording cut off here (%s)",
                            r->name, (unsigned long long)r->info.cut_offset, r->info.cut_reason);
        return KM_ERR_END_OF_STREAM;
    }
    return load_record(r, r->cursor++, out);
}

km_status km_recording_seek_time(km_recording *r, int stream, uint64_t time_ns)
{
    if (!r) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL");
    for (size_t i = 0; i < r->data_count; i++) {
        if ((stream < 0 || r->data[i].stream == stream) && r->data[i].time_ns >= time_ns) {
            r->cursor = i;
            return KM_OK;
        }
    }
    r->cursor = r->data_count;
    return km_error(KM_ERR_NOT_FOUND, "%s: no record of stream %d at or after %llu ns", r->name,
                    stream, (unsigned long long)time_ns);
}

km_status km_recording_seek_sequence(km_recording *r, int stream, uint64_t sequence)
{
    if (!r) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL");
    for (size_t i = 0; i < r->data_count; i++) {
        if ((stream < 0 || r->data[i].stream == stream) && r->data[i].sequence >= sequence) {
            r->cursor = i;
            return KM_OK;
        }
    }
    r->cursor = r->data_count;
    return km_error(KM_ERR_NOT_FOUND, "%s: no record of stream %d at or after sequence %llu",
                    r->name, stream, (unsigned long long)sequence);
}

void km_recording_rewind(km_recording *r)
{
    if (r) r->cursor = 0;
}

/* Validate an image header against the stream and the payload length. */
static km_status check_image(const km_recording *r, const km_record *rec, const uint8_t *head,
                             size_t pixel_bytes_present, km_frame *out)
{
    const km_recording_stream *s = &r->streams[rec->stream];
    if (s->kind != KM_RECORDING_STREAM_IMAGES)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: stream %d holds no images", r->name,
                        rec->stream);
    int32_t w = (int32_t)get32(head), h = (int32_t)get32(head + 4);
    int32_t stride = (int32_t)get32(head + 8);
    uint32_t format = get32(head + 12);
    bool ok = w >= 0 && h >= 0 && stride >= 0 && w <= 65535 && h <= 65535 &&
              format == (uint32_t)s->format;
    size_t bpp = ok ? pixel_bytes((km_pixel_format)format) : 0;
    if (ok && bpp && h > 0) {
        /* Uncompressed: the rows must be there. */
        size_t need = (size_t)stride * (size_t)(h - 1) + (size_t)w * bpp;
        ok = (size_t)stride >= (size_t)w * bpp && pixel_bytes_present >= need;
    }
    if (!ok)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: invalid image header (%dx%d stride %d "
                        "format %u, %zu bytes)", r->name, (unsigned long long)rec->offset, w, h,
                        stride, format, pixel_bytes_present);
    out->time_ns = rec->time_ns;
    out->arrival_ns = get64(head + 16);
    out->sequence = rec->sequence;
    out->camera = s->camera;
    out->width = w;
    out->height = h;
    out->stride = stride;
    out->format = (km_pixel_format)format;
    out->size = pixel_bytes_present;
    out->flags = rec->flags;
    return KM_OK;
}

km_status km_record_decode_frame(const km_recording *r, const km_record *rec, km_frame *out)
{
    if (!r || !rec || !out || rec->stream < 0 || rec->stream >= r->stream_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "recording: invalid argument");
    if (rec->payload_bytes < IMAGE_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: image record shorter than its header",
                        r->name, (unsigned long long)rec->offset);
    memset(out, 0, sizeof *out);
    km_status st = check_image(r, rec, rec->payload, rec->payload_bytes - IMAGE_HEADER_SIZE, out);
    if (st) return st;
    out->data = (uint8_t *)rec->payload + IMAGE_HEADER_SIZE;
    out->capacity = out->size;
    return KM_OK;
}

km_status km_recording_read_frame(km_recording *r, size_t index, km_frame *frame)
{
    if (!r || !frame) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL argument");
    if (index >= r->data_count)
        return km_error(KM_ERR_NOT_FOUND, "%s: no record %zu", r->name, index);
    const index_entry *e = &r->data[index];
    if (e->payload_bytes < IMAGE_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: image record shorter than its header",
                        r->name, (unsigned long long)e->offset);
    size_t pixels = e->payload_bytes - IMAGE_HEADER_SIZE;
    if (!frame->data || frame->capacity < pixels)
        return km_error(KM_ERR_CAPACITY, "%s: frame holds %zu bytes, record %zu needs %zu",
                        r->name, frame->capacity, index, pixels);
    uint8_t buf[HDR + IMAGE_HEADER_SIZE];
    record_header h;
    km_status st = read_at(r, e->offset, buf, sizeof buf);
    if (st) return st;
    if (!decode_header(buf, &h) || h.type != REC_DATA || h.stream != e->stream ||
        h.payload_bytes != e->payload_bytes || h.sequence != e->sequence ||
        h.time_ns != e->time_ns)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: record header does not match the index",
                        r->name, (unsigned long long)e->offset);
    /* Pixels straight into the caller's frame, checksummed in place. */
    if ((st = read_at(r, e->offset + sizeof buf, frame->data, pixels))) return st;
    uint32_t crc = km_crc32_update(km_crc32_update(0, buf + HDR, IMAGE_HEADER_SIZE),
                                   frame->data, pixels);
    if (crc != h.payload_crc)
        return km_error(KM_ERR_FORMAT, "%s: offset %llu: payload CRC mismatch (record %zu)",
                        r->name, (unsigned long long)e->offset, index);
    km_record rec = {.stream = h.stream, .kind = r->streams[h.stream].kind,
                     .sequence = h.sequence, .time_ns = h.time_ns, .flags = h.flags,
                     .payload = NULL, .payload_bytes = h.payload_bytes, .offset = e->offset,
                     .index = index};
    uint8_t *data = frame->data;
    size_t capacity = frame->capacity;
    void *slot = frame->pool_slot, *user = frame->user;
    st = check_image(r, &rec, buf + HDR, pixels, frame);
    frame->data = data;
    frame->capacity = capacity;
    frame->pool_slot = slot;
    frame->user = user;
    return st;
}

km_status km_record_decode_observations(const km_record *rec, km_observation_set *out)
{
    if (!rec || !out || (out->capacity > 0 && !out->items))
        return km_error(KM_ERR_INVALID_ARGUMENT, "recording: invalid argument");
    if (rec->kind != KM_RECORDING_STREAM_OBSERVATIONS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "recording: stream %d holds no observations",
                        rec->stream);
    if (rec->payload_bytes < OBS_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "recording: offset %llu: observation record too short",
                        (unsigned long long)rec->offset);
    uint32_t count = get32(rec->payload);
    if ((uint64_t)count * OBS_ROW_SIZE != rec->payload_bytes - OBS_HEADER_SIZE)
        return km_error(KM_ERR_FORMAT, "recording: offset %llu: %u observations in %zu bytes",
                        (unsigned long long)rec->offset, count, rec->payload_bytes);
    if (count > (uint32_t)(out->capacity < 0 ? 0 : out->capacity))
        return km_error(KM_ERR_CAPACITY, "recording: %u observations, room for %d", count,
                        out->capacity);
    out->frame = rec->sequence;
    out->time_ns = rec->time_ns;
    out->count = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *row = rec->payload + OBS_HEADER_SIZE + (size_t)i * OBS_ROW_SIZE;
        out->items[i].x = getf64(row);
        out->items[i].y = getf64(row + 8);
        out->items[i].area_px = getf64(row + 16);
        out->items[i].camera = (int32_t)get32(row + 24);
    }
    return KM_OK;
}

km_status km_recording_verify(km_recording *r, km_recording_check *out,
                              void (*progress)(void *user, uint64_t done, uint64_t total),
                              void *user)
{
    if (!r || !out) return km_error(KM_ERR_INVALID_ARGUMENT, "recording: NULL argument");
    memset(out, 0, sizeof *out);
    out->first_bad_offset = UINT64_MAX;
    uint64_t next_report = 64u << 20;
    for (size_t i = 0; i < r->data_count; i++) {
        km_record rec;
        km_status st = load_record(r, i, &rec);
        if (st == KM_OK && rec.kind == KM_RECORDING_STREAM_IMAGES) {
            km_frame f;
            st = km_record_decode_frame(r, &rec, &f);
        } else if (st == KM_OK && rec.kind == KM_RECORDING_STREAM_OBSERVATIONS) {
            km_observation_set none = {0, 0, 0, 0, NULL};
            /* Size check only: the count must match the length. */
            uint32_t count = rec.payload_bytes >= OBS_HEADER_SIZE ? get32(rec.payload) : 0;
            if (rec.payload_bytes < OBS_HEADER_SIZE ||
                (uint64_t)count * OBS_ROW_SIZE != rec.payload_bytes - OBS_HEADER_SIZE)
                st = km_record_decode_observations(&rec, &none);
        }
        if (st == KM_ERR_IO || st == KM_ERR_NO_MEMORY) return st;
        if (st) {
            out->crc_errors++;
            if (out->first_bad_offset == UINT64_MAX) out->first_bad_offset = r->data[i].offset;
        } else {
            out->records_ok++;
        }
        out->bytes_read += HDR + r->data[i].payload_bytes;
        if (progress && out->bytes_read >= next_report) {
            progress(user, out->bytes_read, r->size);
            next_report += 64u << 20;
        }
    }
    out->crc_errors += r->info.damaged_records;
    return KM_OK;
}

/* ------------------------------------------------------------ append / repair */

km_recorder *km_recorder_open_append(const char *path, const km_recorder_config *cfg,
                                     km_status *err)
{
    km_status st = KM_OK;
    km_recording *r = km_recording_open(path, &st);
    if (!r) {
        if (err) *err = st;
        return NULL;
    }
    km_recorder *rec = recorder_alloc(path, cfg, &st);
    if (!rec) {
        km_recording_close(r);
        if (err) *err = st;
        return NULL;
    }
    /* Rebuild the writer's index: metadata records first in file order, interleaved with
     * data as they were. A scan of the kept prefix gives both. */
    uint64_t keep = r->info.index_rebuilt ? r->info.cut_offset : 0;
    if (!r->info.index_rebuilt) {
        /* Complete file: keep everything before the INDEX record (END points at it). */
        uint8_t end[END_RECORD_SIZE];
        if ((st = read_at(r, r->size - END_RECORD_SIZE, end, sizeof end))) goto fail;
        keep = get64(end + HDR);
    }
    /* Walk the kept records (headers only) to refill the index in file order. */
    for (uint64_t at = KM_RECORDING_PREAMBLE_SIZE; at < keep;) {
        uint8_t hb[HDR];
        record_header h;
        if ((st = read_at(r, at, hb, HDR))) goto fail;
        if (!decode_header(hb, &h)) {
            st = km_error(KM_ERR_FORMAT, "%s: offset %llu: bad record header while appending",
                          path, (unsigned long long)at);
            goto fail;
        }
        if (h.type == REC_INDEX || h.type == REC_END) {
            keep = at; /* an old index (the file was complete): rewritten at close */
            break;
        }
        index_entry e = {at, h.time_ns, h.sequence, h.stream, h.type, h.payload_bytes};
        if (h.type == REC_DATA || h.type == REC_STREAM || h.type == REC_RIG)
            if ((st = index_push(rec, &e))) goto fail;
        at += HDR + h.payload_bytes;
    }
    rec->stream_count = r->stream_count;
    memcpy(rec->streams, r->streams, (size_t)r->stream_count * sizeof *r->streams);
    rec->has_rig = r->info.has_rig;
    km_recording_close(r);
    r = NULL;
    rec->fd = open(path, O_WRONLY | O_CLOEXEC);
    if (rec->fd < 0 || ftruncate(rec->fd, (off_t)keep) != 0 ||
        lseek(rec->fd, (off_t)keep, SEEK_SET) < 0) {
        st = km_error(KM_ERR_IO, "%s: cannot reopen for appending: %s", path, strerror(errno));
        goto fail;
    }
    rec->offset = keep;
    if (err) *err = KM_OK;
    return rec;
fail:
    km_recording_close(r);
    recorder_free(rec);
    if (err) *err = st;
    return NULL;
}
