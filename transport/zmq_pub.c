/* ZeroMQ PUB publisher: each solved frame goes out as multipart [topic][wire v1 payload]
 * on the topics "frame" (the full frame) and "markers" (the same bytes for now; it will
 * carry the markers-only section when issue 8 splits the streams). docs/protocol.md.
 *
 * Never blocks: PUB drops per subscriber when that subscriber's queue reaches ZMQ_SNDHWM,
 * every send uses ZMQ_DONTWAIT, LINGER is 0 so destroy does not wait for slow peers.
 *
 * Allocation: the frame is encoded straight into one libzmq message (zmq_msg_init_size,
 * the only allocation per frame, made inside libzmq because libzmq owns the lifetime of a
 * queued message — a reused buffer would be overwritten while a stalled subscriber's
 * queue still points at it). The second topic shares that message by reference count
 * (zmq_msg_copy does not allocate), so the payload is neither copied nor allocated twice. */
#include "transport_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct km_zmq_pub {
    void *context;
    void *socket;
    char endpoint[256];           /* as bound, wildcard port resolved */
    _Atomic uint64_t sent;        /* messages (one per topic per frame) */
    _Atomic uint64_t dropped;
};

static const char *const topics[] = {KM_WIRE_TOPIC_FRAME, KM_WIRE_TOPIC_MARKERS};
enum { TOPIC_COUNT = sizeof topics / sizeof topics[0] };

km_status km_zmq_endpoint_validate(const char *endpoint)
{
    if (!endpoint || !*endpoint)
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint is empty");
    const char *sep = strstr(endpoint, "://");
    if (!sep)
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': expected "
                        "transport://address (tcp://127.0.0.1:5555)", endpoint);
    size_t scheme_len = (size_t)(sep - endpoint);
    const char *address = sep + 3;
    for (const char *c = address; *c; c++)
        if (*c <= ' ' || *c == 0x7f)
            return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': whitespace or "
                            "control character in the address", endpoint);
    if ((scheme_len == 3 && strncmp(endpoint, "ipc", 3) == 0) ||
        (scheme_len == 6 && strncmp(endpoint, "inproc", 6) == 0)) {
        if (!*address)
            return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': empty path",
                            endpoint);
        return KM_OK;
    }
    if (!(scheme_len == 3 && strncmp(endpoint, "tcp", 3) == 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': transport must be tcp, "
                        "ipc or inproc", endpoint);
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address)
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': expected "
                        "tcp://host:port", endpoint);
    if (address[0] == '[' && colon[-1] != ']')
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': IPv6 host must be "
                        "[addr]:port", endpoint);
    if (strchr(address, '/'))
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': '/' in a tcp address",
                        endpoint);
    if (strcmp(colon + 1, "*") == 0)
        return KM_OK; /* wildcard: the OS picks a free port (tests) */
    if (km_port_validate(colon + 1) != KM_OK)
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq endpoint '%s': port must be 1..65535 "
                        "or *", endpoint);
    return KM_OK;
}

km_zmq_pub *km_zmq_pub_create(const char *endpoint, int sndhwm, km_status *err)
{
    km_status st = km_zmq_endpoint_validate(endpoint);
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    if (sndhwm < 0) {
        if (err)
            *err = km_error(KM_ERR_INVALID_ARGUMENT, "zmq sndhwm %d < 0", sndhwm);
        return NULL;
    }
    km_zmq_pub *zp = calloc(1, sizeof *zp);
    if (!zp) {
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "zmq publisher: out of memory");
        return NULL;
    }
    int linger = 0;
    size_t endpoint_size = sizeof zp->endpoint;
    zp->context = zmq_ctx_new();
    if (!zp->context) {
        st = km_error(KM_ERR_IO, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto fail;
    }
    zp->socket = zmq_socket(zp->context, ZMQ_PUB);
    if (!zp->socket) {
        st = km_error(KM_ERR_IO, "zmq_socket(PUB): %s", zmq_strerror(errno));
        goto fail;
    }
    if (zmq_setsockopt(zp->socket, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) != 0 ||
        zmq_setsockopt(zp->socket, ZMQ_LINGER, &linger, sizeof linger) != 0) {
        st = km_error(KM_ERR_IO, "zmq_setsockopt: %s", zmq_strerror(errno));
        goto fail;
    }
    if (zmq_bind(zp->socket, endpoint) != 0) {
        st = km_error(KM_ERR_IO, "zmq_bind(%s): %s", endpoint, zmq_strerror(errno));
        goto fail;
    }
    if (zmq_getsockopt(zp->socket, ZMQ_LAST_ENDPOINT, zp->endpoint, &endpoint_size) != 0)
        snprintf(zp->endpoint, sizeof zp->endpoint, "%s", endpoint);
    km_log(KM_LOG_INFO, "transport", "zmq PUB bound to %s (sndhwm %d)", zp->endpoint, sndhwm);
    if (err)
        *err = KM_OK;
    return zp;

fail:
    km_zmq_pub_destroy(zp);
    if (err)
        *err = st;
    return NULL;
}

void km_zmq_pub_destroy(km_zmq_pub *zp)
{
    if (!zp)
        return;
    if (zp->socket)
        zmq_close(zp->socket);
    if (zp->context)
        zmq_ctx_term(zp->context); /* LINGER 0: returns at once */
    free(zp);
}

const char *km_zmq_pub_endpoint(const km_zmq_pub *zp)
{
    return zp ? zp->endpoint : "";
}

void km_zmq_pub_counters(const km_zmq_pub *zp, uint64_t *sent, uint64_t *dropped)
{
    *sent = atomic_load_explicit(&zp->sent, memory_order_relaxed);
    *dropped = atomic_load_explicit(&zp->dropped, memory_order_relaxed);
}

static void count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

km_status km_zmq_pub_send(km_zmq_pub *zp, const km_solved_frame *frame)
{
    int marker_count = frame->markers ? frame->markers->count : 0;
    size_t size = km_wire_encoded_size(frame->camera_count, marker_count);
    if (size == 0)
        return km_error(KM_ERR_CAPACITY, "zmq: frame %llu (%d cameras, %d markers) does not "
                        "fit a wire message", (unsigned long long)frame->frame,
                        frame->camera_count, marker_count);
    zmq_msg_t payload;
    if (zmq_msg_init_size(&payload, size) != 0) {
        count(&zp->dropped);
        return km_error(KM_ERR_NO_MEMORY, "zmq_msg_init_size(%zu): %s", size,
                        zmq_strerror(errno));
    }
    size_t length = 0;
    km_status st = km_wire_encode_frame(frame, zmq_msg_data(&payload), size, &length);
    if (st) {
        zmq_msg_close(&payload);
        return st;
    }
    km_status result = KM_OK;
    for (int t = 0; t < TOPIC_COUNT; t++) {
        /* The last topic sends `payload` itself; earlier ones a counted reference to it. */
        zmq_msg_t part;
        zmq_msg_t *body = &payload;
        if (t + 1 < TOPIC_COUNT) {
            zmq_msg_init(&part);
            zmq_msg_copy(&part, &payload);
            body = &part;
        }
        const char *topic = topics[t];
        int sent_topic = zmq_send(zp->socket, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        int sent_body = sent_topic < 0 ? -1 : zmq_msg_send(body, zp->socket, ZMQ_DONTWAIT);
        if (sent_body < 0) {
            /* On failure the message is still ours to close. PUB with DONTWAIT only fails
             * like this on EAGAIN (no room) or a terminating context. */
            int error = errno;
            zmq_msg_close(body);
            count(&zp->dropped);
            result = error == EAGAIN
                         ? KM_ERR_AGAIN
                         : km_error(KM_ERR_IO, "zmq_send(%s): %s", topic, zmq_strerror(error));
        } else {
            count(&zp->sent);
        }
    }
    return result;
}
