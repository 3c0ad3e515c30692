/* Private to transport/: the two publishers km_publisher combines. Each is driven by one
 * thread (the caller of km_publisher_send); counters are relaxed atomics so another thread
 * may read them. */
#ifndef KINEMA_TRANSPORT_INTERNAL_H
#define KINEMA_TRANSPORT_INTERNAL_H

#include "kinema/transport.h"

#include <stdatomic.h>

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
 * endpoint is refused with KM_ERR_INVALID_ARGUMENT; `what` names the socket in messages. */
km_status km_zmq_bind_secure(void *socket, const char *endpoint, const km_zmq_curve_keys *keys,
                             const char *what);

/* ------------------------------------------------------------------ zmq_pub.c */

typedef struct km_zmq_pub km_zmq_pub;

typedef struct km_zmq_pub_options {
    const char *endpoint;            /* XPUB bind endpoint */
    int sndhwm;
    const char *latest_endpoint;     /* NULL or "": no conflated latest-frame socket */
    const km_zmq_curve_keys *curve;  /* NULL: local endpoints only */
} km_zmq_pub_options;

/* Binds the XPUB (SNDHWM, LINGER 0) and the optional latest-frame PUB (CONFLATE);
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

#endif
