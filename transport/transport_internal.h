/* Private to transport/: the two publishers km_publisher combines. Each is driven by one
 * thread (the caller of km_publisher_send); counters are relaxed atomics so another thread
 * may read them. */
#ifndef KINEMA_TRANSPORT_INTERNAL_H
#define KINEMA_TRANSPORT_INTERNAL_H

#include "kinema/transport.h"

#include <stdatomic.h>
#include <sys/socket.h>

/* ------------------------------------------------------------- zmq_security.c */

/* A CurveZMQ server key pair (Z85 text, 40 characters + NUL). */
typedef struct km_zmq_curve_keys {
    bool enabled;
    char secret_key[41];
    char public_key[41];
} km_zmq_curve_keys;

/* Read the server secret key file (40 Z85 characters, alone or as `secret-key = "..."`) and
 * derive the public key. KM_ERR_UNSUPPORTED when libzmq lacks CurveZMQ. */
km_status km_zmq_curve_load(const char *secret_key_file, km_zmq_curve_keys *out);
/* ipc://, inproc://, or tcp:// on 127.0.0.0/8, [::1] or localhost. */
bool km_zmq_endpoint_is_local(const char *endpoint);
/* Bind `socket` (as a CurveZMQ server when keys->enabled). Without keys a non-local
 * endpoint is refused with KM_ERR_INVALID_ARGUMENT; `what` names the socket in messages.
 * `bound` receives the endpoint as bound (a wildcard port resolved: tcp://127.0.0.1:*). */
km_status km_zmq_bind_secure(void *socket, const char *endpoint, const km_zmq_curve_keys *keys,
                             const char *what, char *bound, size_t bound_size);

/* ------------------------------------------------------------------ zmq_pub.c */

typedef struct km_zmq_pub km_zmq_pub;

typedef struct km_zmq_pub_options {
    const char *endpoint;            /* XPUB bind endpoint */
    int sndhwm;
    const char *latest_endpoint;     /* NULL or "": no conflated latest-frame socket */
    const km_zmq_curve_keys *curve;  /* NULL: local endpoints only */
} km_zmq_pub_options;

/* Binds the XPUB (SNDHWM, LINGER 0) and the optional latest-frame PUB (single part);
 * everything allocated here. */
km_zmq_pub *km_zmq_pub_open(const km_zmq_pub_options *options, km_status *err);
/* km_zmq_pub_open with only endpoint and sndhwm. */
km_zmq_pub *km_zmq_pub_create(const char *endpoint, int sndhwm, km_status *err);
void km_zmq_pub_destroy(km_zmq_pub *zp);
/* Encode the frame for each topic that has a subscriber (and the latest socket) and send
 * it. Never blocks. KM_OK when handed to libzmq, KM_ERR_AGAIN when zmq_send refused a
 * message (counted as dropped), other codes for an encode failure. */
km_status km_zmq_pub_send(km_zmq_pub *zp, const km_solved_frame *frame);
/* One single-frame payload (JSON) on `topic` (status, gesture) when someone subscribed. */
km_status km_zmq_pub_send_text(km_zmq_pub *zp, const char *topic, const char *text,
                               size_t length);
/* Does `topic` have a subscriber now? (Reads pending subscriptions first.) */
bool km_zmq_pub_wanted(km_zmq_pub *zp, const char *topic);
/* Bound endpoints with the wildcard port resolved ("" for an absent latest socket). */
const char *km_zmq_pub_endpoint(const km_zmq_pub *zp);
const char *km_zmq_pub_latest_endpoint(const km_zmq_pub *zp);
void km_zmq_pub_counters(const km_zmq_pub *zp, uint64_t *sent, uint64_t *dropped);

/* Endpoint syntax accepted by the config: tcp://host:port (port 1..65535 or *),
 * ipc://path, inproc://name. */
km_status km_zmq_endpoint_validate(const char *endpoint);

/* ------------------------------------------------------------------ osc_pub.c */

typedef struct km_osc_pub km_osc_pub;

/* Resolves host:port once; preformats the OSC messages of up to max_markers markers. */
km_osc_pub *km_osc_pub_create(const char *host, const char *port, int max_markers,
                              int max_packet_bytes, km_status *err);
void km_osc_pub_destroy(km_osc_pub *op);
/* One or more bundles per frame (split at max_packet_bytes). Never blocks; a failed
 * sendto is counted in errors and returns KM_ERR_IO / KM_ERR_AGAIN. */
km_status km_osc_pub_send(km_osc_pub *op, const km_solved_frame *frame);
void km_osc_pub_counters(const km_osc_pub *op, uint64_t *sent, uint64_t *errors);
/* Markers per bundle at this packet size (documented split rule). */
int km_osc_markers_per_bundle(int max_packet_bytes);

/* OSC time tag (NTP format: seconds since 1900 << 32 | fraction) of a CLOCK_MONOTONIC time,
 * mapped to the wall clock through the offset between the two clocks now. */
uint64_t km_osc_timetag_from_monotonic_ns(uint64_t time_ns);

/* Port syntax: decimal 1..65535. */
km_status km_port_validate(const char *port);


/* ---------------------------------------------------------------- osc_codec.c */

/* Writer into a caller buffer; `overflow` is set (and stays set) when a write did not
 * fit; nothing is written past capacity. */
typedef struct km_osc_writer {
    uint8_t *buf;
    size_t capacity, length;
    bool overflow;
} km_osc_writer;

/* Bytes a string of this length takes in OSC (NUL + padding to 4). */
size_t km_osc_padded_size(size_t string_length);
void km_osc_writer_init(km_osc_writer *w, uint8_t *buf, size_t capacity);
void km_osc_write_string(km_osc_writer *w, const char *s);
void km_osc_write_int32(km_osc_writer *w, int32_t v);
void km_osc_write_float(km_osc_writer *w, double v);
void km_osc_write_int64(km_osc_writer *w, int64_t v);
/* "#bundle\0" + time tag. */
void km_osc_write_bundle_header(km_osc_writer *w, uint64_t timetag);
/* A bundle element: begin reserves the size field and returns its offset; end fills it. */
size_t km_osc_begin_element(km_osc_writer *w);
void km_osc_end_element(km_osc_writer *w, size_t mark);

/* OSC 1.0's special time tag: dispatch on arrival. */
#define KM_OSC_TIMETAG_IMMEDIATE 1u

#define KM_OSC_MAX_ARGS 80        /* /kinema/input/hand has 67 */
#define KM_OSC_MAX_BUNDLE_DEPTH 8

/* One decoded argument. Strings and blobs point into the packet (not copied). */
typedef struct km_osc_arg {
    char type;                    /* the type tag: i f s h d b T F N ... */
    int32_t i;                    /* i (and the bits of f, c, r, m) */
    float f;
    int64_t h;                    /* h (and the bits of d, t) */
    double d;
    const char *s;                /* s, S: NUL-terminated inside the packet */
    const uint8_t *blob;          /* b */
    size_t length;                /* s, S, b: bytes (without the NUL) */
} km_osc_arg;

typedef struct km_osc_message {
    const char *address;          /* NUL-terminated, inside the packet */
    size_t address_length;
    const char *types;            /* type tags without the ',' ("" when absent) */
    int argc;
    km_osc_arg args[KM_OSC_MAX_ARGS];
} km_osc_message;

/* Validate and decode one OSC message (not a bundle). KM_ERR_FORMAT with the byte offset
 * on anything malformed; array tags and unknown tags are refused. No allocation. */
km_status km_osc_parse_message(const uint8_t *buf, size_t length, km_osc_message *out);
typedef km_status (*km_osc_message_fn)(void *user, const km_osc_message *message);
/* A packet: a message or a bundle (nested up to KM_OSC_MAX_BUNDLE_DEPTH); fn is called for
 * each message in order, and its failure stops the walk. The whole packet is validated
 * as it is walked, so fn may have seen earlier messages when a later one is malformed. */
km_status km_osc_parse_packet(const uint8_t *buf, size_t length, km_osc_message_fn fn,
                              void *user, int *message_count);

/* ----------------------------------------------------------------- osc_dest.c */

/* One destination of an OSC stream: its own non-blocking UDP socket and rate limit. */
typedef struct km_osc_dest {
    int fd;
    struct sockaddr_storage address;
    socklen_t address_length;
    bool multicast;
    uint64_t interval_ns;         /* 0: no limit */
    uint64_t next_due_ns;         /* 0: send now */
    char name[160];               /* "host:port" for messages */
} km_osc_dest;

/* Validate, resolve, open, set the multicast TTL. On failure the dest is closed. */
km_status km_osc_dest_open(km_osc_dest *dest, const km_osc_destination *cfg);
void km_osc_dest_close(km_osc_dest *dest);
/* Rate limit: true when a stream packet may go to this destination at now_ns (and books
 * the next slot: slots are interval_ns apart, so the average rate is max_rate_hz exactly;
 * after a pause longer than one interval the schedule restarts from now). */
bool km_osc_dest_due(km_osc_dest *dest, uint64_t now_ns);
/* sendto, non-blocking. KM_ERR_AGAIN on a full socket buffer, KM_ERR_IO otherwise. */
km_status km_osc_dest_send(const km_osc_dest *dest, const uint8_t *buf, size_t length);
/* Fill defaults (multicast_ttl 1) and check a destination's fields. */
km_status km_osc_destination_check(const km_osc_destination *cfg);

/* Counters shared by the OSC senders (relaxed atomics). */
typedef struct km_osc_counters {
    _Atomic uint64_t packets, errors, rate_limited;
} km_osc_counters;
void km_osc_counters_get(const km_osc_counters *c, km_osc_sender_stats *out);

/* -------------------------------------------------------------- json_tokens.c */

#define KM_JSON_MAX_DEPTH 16
#define KM_JSON_MAX_BYTES 65536

typedef enum km_jtok_type {
    KM_JTOK_NULL, KM_JTOK_FALSE, KM_JTOK_TRUE, KM_JTOK_NUMBER, KM_JTOK_STRING,
    KM_JTOK_ARRAY, KM_JTOK_OBJECT, KM_JTOK_KEY
} km_jtok_type;

/* Tokens in document order. An object's children are key, value, key, value...; an
 * array's are its values. start/length: raw bytes (between the quotes for strings and
 * keys). next: index of the token after this value's subtree (not set for keys). */
typedef struct km_json_token {
    km_jtok_type type;
    uint32_t start, length;
    uint32_t children;            /* values (array) or members (object) */
    uint32_t next;
    double number;
} km_json_token;

/* Strict parse of one JSON value (documented in json_tokens.c) into tokens[0..capacity).
 * KM_ERR_PARSE "JSON: offset N: why" on malformed input, too many tokens, nesting deeper
 * than KM_JSON_MAX_DEPTH, duplicate keys or more than KM_JSON_MAX_BYTES. No allocation. */
km_status km_json_tokens_parse(const char *text, size_t length, km_json_token *tokens,
                               int capacity, int *count);
/* Index of the value of member `key` of object token `object`; -1 when absent. */
int km_json_token_member(const char *text, const km_json_token *tokens, int object,
                         const char *key);
/* Decode a string/key token into out (NUL-terminated UTF-8); false when it does not fit or
 * contains \u0000. */
bool km_json_token_string(const char *text, const km_json_token *token, char *out,
                          size_t size);

#endif
