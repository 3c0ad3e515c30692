/* OSC publisher in Kinema's namespace (docs/protocol.md, "OSC"):
 *   one bundle per frame, time tag = the frame's capture time on the wall clock,
 *   /kinema/frame  ,hhi     frame, capture_time_ns, marker_count (markers of the whole frame)
 *   /kinema/marker ,iffffi  id, x, y, z (metres), residual_px, views   (one per marker)
 * A frame whose bundle would exceed max_packet_bytes (default 8192, a size every common OSC
 * receiver accepts in one datagram) is split: the first bundle carries /kinema/frame and
 * the first markers, continuation bundles carry only /kinema/marker, all with the same
 * time tag, in marker order.
 *
 * liblo builds the two message templates at create (address pattern, type tags, layout,
 * via lo_message_serialise). Per frame we only write the big-endian argument values into
 * copies of those templates, frame them as OSC 1.0 bundles in a buffer allocated at create
 * and sendto() them on our own non-blocking UDP socket. liblo's per-frame API
 * (lo_bundle_new, lo_message_add_*, lo_send_bundle) allocates several blocks per message
 * and per send and can block on a full socket buffer, so it is kept out of the hot path:
 * this path allocates nothing. */
#include "transport_internal.h"

#include <errno.h>
#include <lo/lo.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OSC_BUNDLE_HEADER 16 /* "#bundle\0" + 8-byte time tag */
#define OSC_FRAME_ARGS 20    /* h h i */
#define OSC_MARKER_ARGS 24   /* i f f f f i */
#define OSC_PATH_FRAME "/kinema/frame"
#define OSC_PATH_MARKER "/kinema/marker"

struct km_osc_pub {
    int fd;
    struct sockaddr_storage address;
    socklen_t address_length;
    uint8_t frame_template[64];
    size_t frame_length, frame_args;   /* message bytes; offset of the arguments */
    uint8_t marker_template[64];
    size_t marker_length, marker_args;
    int markers_per_bundle;
    int max_markers;
    uint8_t *packet;                   /* max_packet_bytes, allocated at create */
    size_t packet_capacity;
    _Atomic uint64_t sent;
    _Atomic uint64_t errors;
};

km_status km_port_validate(const char *port)
{
    if (!port || !*port || strlen(port) > 5)
        return km_error(KM_ERR_INVALID_ARGUMENT, "port '%s': expected 1..65535",
                        port ? port : "(null)");
    long value = 0;
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9')
            return km_error(KM_ERR_INVALID_ARGUMENT, "port '%s': expected 1..65535", port);
        value = value * 10 + (*c - '0');
    }
    if (value < 1 || value > 65535)
        return km_error(KM_ERR_INVALID_ARGUMENT, "port '%s': expected 1..65535", port);
    return KM_OK;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static void put_be_f32(uint8_t *p, double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_be32(p, bits);
}

int km_osc_markers_per_bundle(int max_packet_bytes)
{
    /* Message sizes are fixed by the templates: /kinema/frame 44 bytes, /kinema/marker 48,
     * each preceded by its 4-byte size in the bundle. */
    const int frame_element = 4 + 44, marker_element = 4 + 48;
    int room = max_packet_bytes - OSC_BUNDLE_HEADER - frame_element;
    return room < marker_element ? 0 : room / marker_element;
}

uint64_t km_osc_timetag_from_monotonic_ns(uint64_t time_ns)
{
    struct timespec wall, mono;
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    int64_t offset_ns = ((int64_t)wall.tv_sec - (int64_t)mono.tv_sec) * 1000000000 +
                        ((int64_t)wall.tv_nsec - (int64_t)mono.tv_nsec);
    int64_t unix_ns = (int64_t)time_ns + offset_ns;
    if (unix_ns < 0)
        unix_ns = 0;
    /* NTP epoch is 1900-01-01: 70 years (17 leap days) before the Unix epoch. Seconds wrap
     * modulo 2^32 (NTP era 1 starts in 2036), as every OSC implementation does. */
    uint64_t seconds = (uint64_t)(unix_ns / 1000000000) + 2208988800u;
    uint64_t nanos = (uint64_t)(unix_ns % 1000000000);
    uint64_t fraction = (nanos << 32) / 1000000000u;
    return ((seconds & 0xffffffffu) << 32) | fraction;
}

/* Serialise a liblo message once into `out`; returns the length, 0 on failure. */
static size_t make_template(lo_message m, const char *path, uint8_t *out, size_t capacity)
{
    size_t length = lo_message_length(m, path);
    if (length == 0 || length > capacity)
        return 0;
    size_t written = 0;
    lo_message_serialise(m, path, out, &written);
    return written == length ? length : 0;
}

km_osc_pub *km_osc_pub_create(const char *host, const char *port, int max_markers,
                              int max_packet_bytes, km_status *err)
{
    km_status st = KM_OK;
    if (!host || !*host) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "osc host is empty");
    } else if ((st = km_port_validate(port)) != KM_OK) {
        /* message set */
    } else if (max_markers < 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "osc: max_markers %d < 0", max_markers);
    } else if (max_packet_bytes < 512 || max_packet_bytes > 65507) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "osc: max_packet_bytes %d outside 512..65507",
                      max_packet_bytes);
    }
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    km_osc_pub *op = calloc(1, sizeof *op);
    if (!op) {
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "osc publisher: out of memory");
        return NULL;
    }
    op->fd = -1;
    op->max_markers = max_markers;
    op->packet_capacity = (size_t)max_packet_bytes;
    op->packet = malloc(op->packet_capacity);
    if (!op->packet) {
        st = km_error(KM_ERR_NO_MEMORY, "osc publisher: out of memory");
        goto fail;
    }

    lo_message frame = lo_message_new();
    lo_message marker = lo_message_new();
    if (frame && marker) {
        lo_message_add_int64(frame, 0);
        lo_message_add_int64(frame, 0);
        lo_message_add_int32(frame, 0);
        lo_message_add_int32(marker, 0);
        lo_message_add_float(marker, 0.0f);
        lo_message_add_float(marker, 0.0f);
        lo_message_add_float(marker, 0.0f);
        lo_message_add_float(marker, 0.0f);
        lo_message_add_int32(marker, 0);
        op->frame_length = make_template(frame, OSC_PATH_FRAME, op->frame_template,
                                         sizeof op->frame_template);
        op->marker_length = make_template(marker, OSC_PATH_MARKER, op->marker_template,
                                          sizeof op->marker_template);
    }
    if (frame)
        lo_message_free(frame);
    if (marker)
        lo_message_free(marker);
    if (op->frame_length != 44 || op->marker_length != 48) {
        st = km_error(KM_ERR_INTERNAL, "osc: liblo message templates have unexpected sizes "
                      "%zu/%zu (expected 44/48)", op->frame_length, op->marker_length);
        goto fail;
    }
    op->frame_args = op->frame_length - OSC_FRAME_ARGS;
    op->marker_args = op->marker_length - OSC_MARKER_ARGS;
    op->markers_per_bundle = km_osc_markers_per_bundle(max_packet_bytes);
    if (op->markers_per_bundle < 1) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "osc: max_packet_bytes %d too small",
                      max_packet_bytes);
        goto fail;
    }

    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &found);
    if (gai != 0 || !found) {
        st = km_error(KM_ERR_IO, "osc: cannot resolve %s:%s: %s", host, port,
                      gai_strerror(gai));
        goto fail;
    }
    memcpy(&op->address, found->ai_addr, found->ai_addrlen);
    op->address_length = found->ai_addrlen;
    op->fd = socket(found->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    freeaddrinfo(found);
    if (op->fd < 0) {
        st = km_error(KM_ERR_IO, "osc: socket: %s", strerror(errno));
        goto fail;
    }
    km_log(KM_LOG_INFO, "transport", "osc to %s:%s (%d markers per bundle)", host, port,
           op->markers_per_bundle);
    if (err)
        *err = KM_OK;
    return op;

fail:
    km_osc_pub_destroy(op);
    if (err)
        *err = st;
    return NULL;
}

void km_osc_pub_destroy(km_osc_pub *op)
{
    if (!op)
        return;
    if (op->fd >= 0)
        close(op->fd);
    free(op->packet);
    free(op);
}

void km_osc_pub_counters(const km_osc_pub *op, uint64_t *sent, uint64_t *errors)
{
    *sent = atomic_load_explicit(&op->sent, memory_order_relaxed);
    *errors = atomic_load_explicit(&op->errors, memory_order_relaxed);
}

/* Append one bundle element (size + message) at *at. */
static uint8_t *append_element(uint8_t *at, const uint8_t *message, size_t length)
{
    put_be32(at, (uint32_t)length);
    memcpy(at + 4, message, length);
    return at + 4 + length;
}

static km_status send_packet(km_osc_pub *op, size_t length)
{
    ssize_t n = sendto(op->fd, op->packet, length, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (const struct sockaddr *)&op->address, op->address_length);
    if (n == (ssize_t)length) {
        atomic_fetch_add_explicit(&op->sent, 1, memory_order_relaxed);
        return KM_OK;
    }
    int error = n < 0 ? errno : EMSGSIZE;
    atomic_fetch_add_explicit(&op->errors, 1, memory_order_relaxed);
    if (error == EAGAIN || error == EWOULDBLOCK)
        return KM_ERR_AGAIN;
    return km_error(KM_ERR_IO, "osc: sendto: %s", strerror(error));
}

km_status km_osc_pub_send(km_osc_pub *op, const km_solved_frame *frame)
{
    int marker_count = frame->markers ? frame->markers->count : 0;
    const km_marker *items = frame->markers ? frame->markers->items : NULL;
    if (marker_count < 0 || marker_count > op->max_markers || (marker_count > 0 && !items))
        return km_error(KM_ERR_CAPACITY, "osc: frame %llu has %d markers, limit %d",
                        (unsigned long long)frame->frame, marker_count, op->max_markers);
    uint64_t timetag = km_osc_timetag_from_monotonic_ns(frame->capture_time_ns);

    km_status result = KM_OK;
    int next = 0;
    do {
        uint8_t *at = op->packet;
        memcpy(at, "#bundle", 8); /* includes the terminating NUL: 8 bytes */
        put_be64(at + 8, timetag);
        at += OSC_BUNDLE_HEADER;
        if (next == 0) {
            uint8_t *m = at + 4;
            at = append_element(at, op->frame_template, op->frame_length);
            put_be64(m + op->frame_args, frame->frame);
            put_be64(m + op->frame_args + 8, frame->capture_time_ns);
            put_be32(m + op->frame_args + 16, (uint32_t)marker_count);
        }
        int end = next + op->markers_per_bundle;
        if (end > marker_count)
            end = marker_count;
        for (; next < end; next++) {
            const km_marker *k = &items[next];
            uint8_t *m = at + 4 + op->marker_args;
            at = append_element(at, op->marker_template, op->marker_length);
            put_be32(m, k->id);
            put_be_f32(m + 4, k->pos_m.x);
            put_be_f32(m + 8, k->pos_m.y);
            put_be_f32(m + 12, k->pos_m.z);
            put_be_f32(m + 16, k->residual_px);
            put_be32(m + 20, (uint32_t)(k->views < 0 ? 0 : k->views));
        }
        km_status st = send_packet(op, (size_t)(at - op->packet));
        if (st && !result)
            result = st;
    } while (next < marker_count);
    return result;
}
