/* OSC publisher in Kinema's namespace (docs/protocol.md, "OSC"):
 *   one bundle per frame, time tag = the frame's capture time on the wall clock,
 *   /kinema/frame  ,hhi     frame, capture_time_ns, marker_count (markers of the whole frame)
 *   /kinema/marker ,iffffi  id, x, y, z (metres), residual_px, views   (one per marker)
 *   then (v1.2 streams) /kinema/rigid, /kinema/skeleton + its /kinema/joint messages,
 *   /kinema/hand (docs/protocol.md "OSC"), packed after the markers into as many bundles
 *   as needed.
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

/* ------------------------------------------------- v1.2 streams (rigid, skeleton, hand)
 * Written straight into the packet (no template: a rigid body's name varies in length).
 * Every size below is exact, so an element is placed only where it fits. */
#define OSC_PATH_RIGID "/kinema/rigid"
#define OSC_TYPES_RIGID ",isffffffffii" /* id name x y z qx qy qz qw error_m tracked used */
#define OSC_PATH_SKELETON "/kinema/skeleton"
#define OSC_TYPES_SKELETON ",iiifi"      /* person tracked joint_count residual_m used */
#define OSC_PATH_JOINT "/kinema/joint"
#define OSC_TYPES_JOINT ",iifffffff"     /* person joint x y z qx qy qz qw (world) */
#define OSC_PATH_HAND "/kinema/hand"
/* person side flags landmark_valid confidence cx cy cz, then 21 landmarks x y z */
#define OSC_TYPES_HAND ",iiiifffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define OSC_RIGID_NAME_MAX 63

_Static_assert(sizeof OSC_TYPES_HAND - 1 == 1 + 4 + 4 + 3 * KM_HAND_LANDMARK_COUNT,
               "hand type tag: 4 ints, confidence, centre, 21 landmarks");

static size_t osc_string_size(size_t n)
{
    return (n + 4) & ~(size_t)3; /* NUL included, padded to 4 */
}

static uint8_t *put_osc_string(uint8_t *p, const char *text, size_t n)
{
    size_t padded = osc_string_size(n);
    memcpy(p, text, n);
    memset(p + n, 0, padded - n);
    return p + padded;
}

#define CONST_STRING_SIZE(s) osc_string_size(sizeof(s) - 1)

static uint8_t *put_prefix(uint8_t *p, const char *path, size_t path_length, const char *types,
                           size_t types_length)
{
    p = put_osc_string(p, path, path_length);
    return put_osc_string(p, types, types_length);
}
#define PUT_PREFIX(p, path, types) put_prefix(p, path, sizeof(path) - 1, types, sizeof(types) - 1)

static uint8_t *put_i(uint8_t *p, int32_t v)
{
    put_be32(p, (uint32_t)v);
    return p + 4;
}

static uint8_t *put_f(uint8_t *p, double v)
{
    put_be_f32(p, v);
    return p + 4;
}

static uint8_t *put_v3(uint8_t *p, km_vec3 v)
{
    p = put_f(p, v.x);
    p = put_f(p, v.y);
    return put_f(p, v.z);
}

static uint8_t *put_q(uint8_t *p, km_quat q)
{
    p = put_f(p, q.x);
    p = put_f(p, q.y);
    p = put_f(p, q.z);
    return put_f(p, q.w);
}

/* The bundle being filled: a new one is begun (after sending the full one) when the next
 * element does not fit. */
typedef struct packer {
    km_osc_pub *op;
    uint64_t timetag;
    uint8_t *at;
    km_status result;
} packer;

static void packer_begin(packer *k)
{
    k->at = k->op->packet;
    memcpy(k->at, "#bundle", 8); /* includes the terminating NUL: 8 bytes */
    put_be64(k->at + 8, k->timetag);
    k->at += OSC_BUNDLE_HEADER;
}

static void packer_send(packer *k)
{
    km_status st = send_packet(k->op, (size_t)(k->at - k->op->packet));
    if (st && !k->result)
        k->result = st;
}

/* Room for one message of `size` bytes; returns where to write it (after its size field). */
static uint8_t *packer_element(packer *k, size_t size)
{
    const uint8_t *end = k->op->packet + k->op->packet_capacity;
    if ((size_t)(end - k->at) < 4 + size) {
        packer_send(k);
        packer_begin(k);
    }
    put_be32(k->at, (uint32_t)size);
    uint8_t *message = k->at + 4;
    k->at = message + size;
    return message;
}

static void pack_streams(packer *k, const km_solved_frame *f)
{
    for (int i = 0; f->rigid_bodies && i < f->rigid_body_count; i++) {
        const km_rigid_pose *b = &f->rigid_bodies[i];
        const char *name = f->rigid_definitions ? f->rigid_definitions[i].name : "";
        size_t n = strnlen(name, OSC_RIGID_NAME_MAX);
        size_t size = CONST_STRING_SIZE(OSC_PATH_RIGID) + CONST_STRING_SIZE(OSC_TYPES_RIGID) +
                      4 + osc_string_size(n) + 8 * 4 + 2 * 4;
        uint8_t *p = PUT_PREFIX(packer_element(k, size), OSC_PATH_RIGID, OSC_TYPES_RIGID);
        p = put_i(p, (int32_t)b->id);
        p = put_osc_string(p, name, n);
        p = put_v3(p, b->pos_m);
        p = put_q(p, b->rot);
        p = put_f(p, b->error_m);
        p = put_i(p, b->tracked ? 1 : 0);
        put_i(p, b->markers_used);
    }
    for (int i = 0; f->skeletons && i < f->skeleton_count; i++) {
        const km_skeleton_pose *s = &f->skeletons[i];
        const size_t head = CONST_STRING_SIZE(OSC_PATH_SKELETON) +
                            CONST_STRING_SIZE(OSC_TYPES_SKELETON) + 5 * 4;
        uint8_t *p = PUT_PREFIX(packer_element(k, head), OSC_PATH_SKELETON, OSC_TYPES_SKELETON);
        p = put_i(p, s->person);
        p = put_i(p, s->tracked ? 1 : 0);
        p = put_i(p, s->tracked ? KM_JOINT_COUNT : 0);
        p = put_f(p, s->residual_m);
        put_i(p, s->markers_used);
        if (!s->tracked)
            continue; /* an untracked pose holds the last one: no joints sent */
        const size_t joint = CONST_STRING_SIZE(OSC_PATH_JOINT) +
                             CONST_STRING_SIZE(OSC_TYPES_JOINT) + 9 * 4;
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            p = PUT_PREFIX(packer_element(k, joint), OSC_PATH_JOINT, OSC_TYPES_JOINT);
            p = put_i(p, s->person);
            p = put_i(p, j);
            p = put_v3(p, s->joint_pos_m[j]);
            put_q(p, s->joint_rot[j]);
        }
    }
    for (int i = 0; f->hands && i < f->hand_count; i++) {
        const km_hand *h = &f->hands[i];
        static const km_vec3 zero = {0, 0, 0};
        const size_t size = CONST_STRING_SIZE(OSC_PATH_HAND) + CONST_STRING_SIZE(OSC_TYPES_HAND) +
                            (sizeof OSC_TYPES_HAND - 2) * 4;
        uint8_t *p = PUT_PREFIX(packer_element(k, size), OSC_PATH_HAND, OSC_TYPES_HAND);
        p = put_i(p, h->person);
        p = put_i(p, (int32_t)h->side);
        p = put_i(p, h->centre_valid ? 1 : 0);
        p = put_i(p, (int32_t)h->landmark_valid);
        p = put_f(p, h->confidence);
        p = put_v3(p, h->centre_valid ? h->centre_m : zero);
        for (int l = 0; l < KM_HAND_LANDMARK_COUNT; l++)
            p = put_v3(p, (h->landmark_valid & KM_HAND_LANDMARK_BIT(l)) ? h->landmark_m[l]
                                                                        : zero);
    }
}

km_status km_osc_pub_send(km_osc_pub *op, const km_solved_frame *frame)
{
    int marker_count = frame->markers ? frame->markers->count : 0;
    const km_marker *items = frame->markers ? frame->markers->items : NULL;
    if (marker_count < 0 || marker_count > op->max_markers || (marker_count > 0 && !items))
        return km_error(KM_ERR_CAPACITY, "osc: frame %llu has %d markers, limit %d",
                        (unsigned long long)frame->frame, marker_count, op->max_markers);
    if ((frame->rigid_bodies && frame->rigid_body_count < 0) ||
        (frame->skeletons && frame->skeleton_count < 0) ||
        (frame->hands && frame->hand_count < 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc: frame %llu: negative count",
                        (unsigned long long)frame->frame);

    packer k = {op, km_osc_timetag_from_monotonic_ns(frame->capture_time_ns), NULL, KM_OK};
    int next = 0;
    for (;;) {
        packer_begin(&k);
        uint8_t *at = k.at;
        if (next == 0) {
            uint8_t *m = at + 4;
            at = append_element(at, op->frame_template, op->frame_length);
            put_be64(m + op->frame_args, frame->frame);
            put_be64(m + op->frame_args + 8, frame->capture_time_ns);
            put_be32(m + op->frame_args + 16, (uint32_t)marker_count);
        }
        /* Markers: markers_per_bundle per bundle (the documented split rule). */
        int end = next + op->markers_per_bundle;
        if (end > marker_count)
            end = marker_count;
        for (; next < end; next++) {
            const km_marker *mk = &items[next];
            uint8_t *m = at + 4 + op->marker_args;
            at = append_element(at, op->marker_template, op->marker_length);
            put_be32(m, mk->id);
            put_be_f32(m + 4, mk->pos_m.x);
            put_be_f32(m + 8, mk->pos_m.y);
            put_be_f32(m + 12, mk->pos_m.z);
            put_be_f32(m + 16, mk->residual_px);
            put_be32(m + 20, (uint32_t)(mk->views < 0 ? 0 : mk->views));
        }
        k.at = at;
        if (next >= marker_count)
            break;
        packer_send(&k);
    }
    /* The other streams follow the markers in the last bundle, continuing in new bundles
     * (same time tag) as it fills. */
    pack_streams(&k, frame);
    packer_send(&k);
    return k.result;
}
