/* Private to transport/: the two publishers km_publisher combines. Each is driven by one
 * thread (the caller of km_publisher_send); counters are relaxed atomics so another thread
 * may read them. */
#ifndef KINEMA_TRANSPORT_INTERNAL_H
#define KINEMA_TRANSPORT_INTERNAL_H

#include "kinema/transport.h"

#include <stdatomic.h>

/* ------------------------------------------------------------------ zmq_pub.c */

typedef struct km_zmq_pub km_zmq_pub;

/* Binds a PUB socket (SNDHWM = sndhwm, LINGER 0) to endpoint; everything allocated here. */
km_zmq_pub *km_zmq_pub_create(const char *endpoint, int sndhwm, km_status *err);
void km_zmq_pub_destroy(km_zmq_pub *zp);
/* Encode the frame once into a libzmq message and send it on every topic. Never blocks.
 * KM_OK when handed to libzmq, KM_ERR_AGAIN when zmq_send refused it (counted as dropped),
 * other codes for an encode failure. */
km_status km_zmq_pub_send(km_zmq_pub *zp, const km_solved_frame *frame);
/* Bound endpoint with the wildcard port resolved. */
const char *km_zmq_pub_endpoint(const km_zmq_pub *zp);
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
