/* Kinema transport: every solved frame leaves the pipeline here.
 *   wire  - the versioned binary encoding of a solved frame (docs/protocol.md), encoder and
 *           decoder, no allocation.
 *   zmq   - a ZeroMQ PUB socket; each message is [topic][payload] multipart.
 *   osc   - OSC over UDP (liblo) in Kinema's own namespace (/kinema/...).
 * Publishers never block the pipeline: a slow subscriber loses messages, the tracker does
 * not slow down. Defaults bind/send to 127.0.0.1 only. */
#ifndef KINEMA_TRANSPORT_H
#define KINEMA_TRANSPORT_H

#include "kinema/core.h"
#include "kinema/tracking.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the pipeline hands to the publishers once per frame set. Pointers are borrowed for
 * the duration of the publish call. */
typedef struct km_solved_frame {
    uint64_t frame;               /* frame-set number */
    uint64_t capture_time_ns;     /* exposure time of the frame set (CLOCK_MONOTONIC) */
    uint64_t solved_time_ns;      /* when the solve finished */
    uint64_t publish_time_ns;     /* stamped by the publisher just before sending */
    int camera_count;
    uint16_t observation_count[KM_MAX_CAMERAS]; /* 2D blobs per camera */
    const km_marker_set *markers; /* may be NULL (no markers) */
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
#define KM_WIRE_MAX_CAMERAS 64

/* Section types. Only MARKERS is written by v1.0; the others are reserved so issue-8
 * streams get stable numbers. 0x8000 and above: experimental/private, never assigned. */
typedef enum km_wire_section_type {
    KM_WIRE_SECTION_MARKERS = 1,
    KM_WIRE_SECTION_RIGID_BODIES = 2,
    KM_WIRE_SECTION_SKELETONS = 3,
    KM_WIRE_SECTION_HAND_POSES = 4,
    KM_WIRE_SECTION_EVENTS = 5,
    KM_WIRE_SECTION_CAMERA_STATUS = 6,
    KM_WIRE_SECTION_OBSERVATIONS_2D = 7
} km_wire_section_type;

/* ZeroMQ topics (first frame of each multipart message). */
#define KM_WIRE_TOPIC_FRAME "frame"
#define KM_WIRE_TOPIC_MARKERS "markers"

/* Exact bytes km_wire_encode_frame writes for this many cameras and markers (0 when a
 * count is out of range). */
size_t km_wire_encoded_size(int camera_count, int marker_count);

/* Encode into buf (capacity bytes). KM_ERR_CAPACITY when it does not fit; *length = bytes. */
km_status km_wire_encode_frame(const km_solved_frame *frame, uint8_t *buf, size_t capacity,
                               size_t *length);
/* Bytes km_wire_encode_frame needs for a frame with this many markers: an upper bound
 * valid for any camera_count <= KM_WIRE_MAX_CAMERAS. */
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
    int sections_skipped;         /* sections of types this decoder does not know */
} km_wire_frame;

/* Validate and decode. KM_ERR_FORMAT (with the byte offset in the message) on truncated,
 * oversized or inconsistent input; KM_ERR_UNSUPPORTED on an unknown version;
 * KM_ERR_CAPACITY when more markers than storage_capacity. */
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
} km_publisher_config;

km_publisher_config km_publisher_config_default(void);
/* Read the `transport:` section of a config (docs/config.md). */
km_status km_publisher_config_read(const km_config *cfg, const char *path,
                                   km_publisher_config *out);
/* Opens the sockets; all buffers allocated here. */
km_publisher *km_publisher_create(const km_publisher_config *cfg, km_status *err);
void km_publisher_destroy(km_publisher *pub);
/* Send one solved frame on every enabled transport. Never blocks on a subscriber.
 * Stamps frame->publish_time_ns. Call from one thread at a time (the solver thread).
 * KM_ERR_CAPACITY (nothing sent) when the frame has more than max_markers markers or more
 * than KM_WIRE_MAX_CAMERAS cameras. A transport that fails to send counts it in the stats
 * and does not make the call fail: the pipeline goes on. */
km_status km_publisher_send(km_publisher *pub, km_solved_frame *frame);
/* The endpoint the PUB socket is bound to, with a wildcard port ("tcp://127.0.0.1:*")
 * resolved to the real one; "" when ZeroMQ is disabled. Owned by pub. */
const char *km_publisher_zmq_endpoint(const km_publisher *pub);

/* Counters since create; safe to read from another thread (each counter is exact, the
 * set is not a snapshot). zmq_sent counts messages handed to libzmq (one per topic per
 * frame, so 2 per frame in v1), zmq_dropped messages zmq_send refused (EAGAIN or error). A PUB socket drops silently per subscriber whose
 * queue (zmq.sndhwm) is full: libzmq does not report those (docs/protocol.md). osc_sent
 * counts UDP packets (bundles), osc_errors failed sends (EAGAIN included). */
typedef struct km_publisher_stats {
    uint64_t zmq_sent, zmq_dropped;
    uint64_t osc_sent, osc_errors;
    uint64_t frames;              /* km_publisher_send calls that published */
    uint64_t rejected;            /* calls refused with KM_ERR_CAPACITY / invalid frame */
} km_publisher_stats;
void km_publisher_stats_get(const km_publisher *pub, km_publisher_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_TRANSPORT_H */
