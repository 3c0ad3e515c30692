/* ZeroMQ publisher (docs/protocol.md, "ZeroMQ"): each solved frame goes out as multipart
 * [topic][payload] on an XPUB socket, one message per topic that has a subscriber:
 *   frame   - the wire v1 message with every section the frame has (markers, 2D
 *             observations, rigid bodies, skeletons, hands, events, camera status)
 *   markers - header + MARKERS section
 *   obs2d   - header + OBSERVATIONS_2D section (only when the frame carries observations)
 *   rigid, skeleton, hands - header + RIGID_BODIES / SKELETONS / HAND_POSES (only when the
 *             frame carries that array)
 *   status  - a JSON object (publisher.c formats it, once per status interval)
 *   gesture - one JSON Lines event per message
 * and optionally, on a second PUB socket (the "latest" endpoint), the `frame` message alone
 * as a single part, so that a consumer with ZMQ_CONFLATE on its SUB (conflation works
 * only on single-part messages) only ever reads the newest frame.
 *
 * Why XPUB: it hands us the subscriptions (first subscribe / last unsubscribe of each
 * prefix), so a topic nobody subscribed to is neither encoded nor sent. ZeroMQ matches by
 * prefix; a topic is wanted while at least one live subscription is a prefix of it.
 *
 * Never blocks: XPUB drops per subscriber when that subscriber's queue reaches ZMQ_SNDHWM,
 * every send uses ZMQ_DONTWAIT, LINGER is 0 so destroy does not wait for slow peers.
 *
 * Allocation: each wanted topic's payload is encoded straight into one libzmq message
 * (zmq_msg_init_size, made inside libzmq because libzmq owns the lifetime of a queued
 * message — a reused buffer would be overwritten while a stalled subscriber's queue still
 * points at it). The latest socket shares the frame message by reference count
 * (zmq_msg_copy does not allocate). Kinema's code allocates nothing per frame. */
#include "transport_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

enum {
    TOPIC_FRAME, TOPIC_MARKERS, TOPIC_OBS2D, TOPIC_STATUS, TOPIC_GESTURE, TOPIC_RIGID,
    TOPIC_SKELETON, TOPIC_HANDS, TOPIC_HANDEYE, TOPIC_COUNT
};
static const char *const topics[TOPIC_COUNT] = {
    KM_WIRE_TOPIC_FRAME, KM_WIRE_TOPIC_MARKERS, KM_WIRE_TOPIC_OBS2D, KM_WIRE_TOPIC_STATUS,
    KM_WIRE_TOPIC_GESTURE, KM_WIRE_TOPIC_RIGID, KM_WIRE_TOPIC_SKELETON, KM_WIRE_TOPIC_HANDS,
    KM_WIRE_TOPIC_HANDEYE};

struct km_zmq_pub {
    void *context;
    void *socket;                 /* XPUB */
    void *latest;                 /* PUB, single-part frames; NULL when not configured */
    char endpoint[256];           /* as bound, wildcard port resolved */
    char latest_endpoint[256];
    int subscribers[TOPIC_COUNT]; /* live subscriptions that are a prefix of the topic */
    uint64_t subscriptions_checked_ns; /* last read of the XPUB's subscription messages */
    _Atomic uint64_t sent;        /* messages handed to libzmq (all topics, latest too) */
    _Atomic uint64_t dropped;
};

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
    km_zmq_pub_options o = {endpoint, sndhwm, NULL, NULL};
    return km_zmq_pub_open(&o, err);
}

static km_status open_socket(km_zmq_pub *zp, int type, const char *endpoint, int sndhwm,
                             const km_zmq_curve_keys *curve, void **out, char *bound,
                             size_t bound_size)
{
    int linger = 0;
    void *socket = zmq_socket(zp->context, type);
    if (!socket)
        return km_error(KM_ERR_IO, "zmq_socket: %s", zmq_strerror(errno));
    *out = socket;
    if (zmq_setsockopt(socket, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) != 0 ||
        zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger) != 0)
        return km_error(KM_ERR_IO, "zmq_setsockopt: %s", zmq_strerror(errno));
    return km_zmq_bind_secure(socket, endpoint, curve, "zmq publisher", bound, bound_size);
}

km_zmq_pub *km_zmq_pub_open(const km_zmq_pub_options *o, km_status *err)
{
    km_status st = !o ? km_error(KM_ERR_INVALID_ARGUMENT, "zmq publisher: NULL options")
                      : km_zmq_endpoint_validate(o->endpoint);
    bool latest = !st && o->latest_endpoint && o->latest_endpoint[0];
    if (!st && latest)
        st = km_zmq_endpoint_validate(o->latest_endpoint);
    if (!st && o->sndhwm < 0)
        st = km_error(KM_ERR_INVALID_ARGUMENT, "zmq sndhwm %d < 0", o->sndhwm);
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    km_zmq_pub *zp = calloc(1, sizeof *zp);
    if (!zp) {
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "zmq publisher: out of memory");
        return NULL;
    }
    zp->context = zmq_ctx_new();
    if (!zp->context) {
        st = km_error(KM_ERR_IO, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto fail;
    }
    st = open_socket(zp, ZMQ_XPUB, o->endpoint, o->sndhwm, o->curve, &zp->socket,
                     zp->endpoint, sizeof zp->endpoint);
    if (st)
        goto fail;
    /* The latest socket: a PUB with the same per-subscriber queue bound as the topics, and
     * no ZMQ_CONFLATE on our side: libzmq 4.3's conflating pipe leaks a message whenever
     * the writer and the reader contend for it (libzmq PR #4925, unfixed in 4.3.4; measured
     * here: ~1400 leaked messages per 200000 sent under ASan), which a daemon cannot afford.
     * Conflation happens in the consumer's SUB (ZMQ_CONFLATE there): its I/O thread keeps
     * draining the connection into a one-message slot, so nothing old builds up between us
     * and it, and nothing is dropped on our side before it (a small queue here would drop
     * the newest frames of a burst). */
    if (latest && (st = open_socket(zp, ZMQ_PUB, o->latest_endpoint, o->sndhwm, o->curve,
                                    &zp->latest, zp->latest_endpoint,
                                    sizeof zp->latest_endpoint)))
        goto fail;
    km_log(KM_LOG_INFO, "transport", "zmq XPUB bound to %s (sndhwm %d)%s%s", zp->endpoint,
           o->sndhwm, latest ? ", latest-frame PUB on " : "", latest ? zp->latest_endpoint : "");
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
    if (zp->latest)
        zmq_close(zp->latest);
    if (zp->context)
        zmq_ctx_term(zp->context); /* LINGER 0: returns at once */
    free(zp);
}

const char *km_zmq_pub_endpoint(const km_zmq_pub *zp)
{
    return zp ? zp->endpoint : "";
}

const char *km_zmq_pub_latest_endpoint(const km_zmq_pub *zp)
{
    return zp ? zp->latest_endpoint : "";
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

/* Read the (un)subscriptions XPUB queued since the last call: byte 1 = subscribe, 0 =
 * unsubscribe, then the prefix. XPUB passes only the first subscribe and the last
 * unsubscribe of each prefix (not verbose), so a counter per topic is exact. */
static void update_subscriptions(km_zmq_pub *zp)
{
    uint8_t message[64];
    for (;;) {
        int n = zmq_recv(zp->socket, message, sizeof message, ZMQ_DONTWAIT);
        if (n < 0)
            return; /* EAGAIN: nothing queued */
        if (n < 1 || (message[0] != 0 && message[0] != 1) || n > (int)sizeof message)
            continue; /* not a subscription, or longer than every topic: matches none */
        size_t prefix = (size_t)n - 1;
        int delta = message[0] == 1 ? 1 : -1;
        for (int t = 0; t < TOPIC_COUNT; t++) {
            if (prefix <= strlen(topics[t]) && memcmp(topics[t], message + 1, prefix) == 0) {
                zp->subscribers[t] += delta;
                if (zp->subscribers[t] < 0)
                    zp->subscribers[t] = 0;
            }
        }
    }
}

/* Reading the XPUB costs a zmq_recv (libzmq command processing) of about a microsecond even
 * when nothing is queued; subscriptions change rarely, so the per-frame path reads them at
 * most once per millisecond, after the frame was sent: a new subscriber waits at most one
 * frame or 1 ms longer for its first message (it already waits for the TCP handshake), and
 * a departed one costs at most that much encoding for nobody. */
#define SUBSCRIPTION_CHECK_NS 1000000u

static void update_subscriptions_throttled(km_zmq_pub *zp)
{
    uint64_t now = km_time_now_ns();
    if (now - zp->subscriptions_checked_ns < SUBSCRIPTION_CHECK_NS)
        return;
    zp->subscriptions_checked_ns = now;
    update_subscriptions(zp);
}

bool km_zmq_pub_wanted(km_zmq_pub *zp, const char *topic)
{
    update_subscriptions(zp);
    for (int t = 0; t < TOPIC_COUNT; t++)
        if (strcmp(topics[t], topic) == 0)
            return zp->subscribers[t] > 0;
    return false;
}

/* [topic][body] on the XPUB. Takes ownership of body (closed on failure). */
static km_status send_topic(km_zmq_pub *zp, int t, zmq_msg_t *body)
{
    const char *topic = topics[t];
    int sent_topic = zmq_send(zp->socket, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    int sent_body = sent_topic < 0 ? -1 : zmq_msg_send(body, zp->socket, ZMQ_DONTWAIT);
    if (sent_body >= 0) {
        count(&zp->sent);
        return KM_OK;
    }
    /* On failure the message is still ours to close. XPUB with DONTWAIT only fails like
     * this on EAGAIN (no room) or a terminating context. */
    int error = errno;
    zmq_msg_close(body);
    count(&zp->dropped);
    return error == EAGAIN ? KM_ERR_AGAIN
                           : km_error(KM_ERR_IO, "zmq_send(%s): %s", topic, zmq_strerror(error));
}

static km_status encode_message(const km_solved_frame *frame, unsigned sections, zmq_msg_t *msg)
{
    size_t size = km_wire_encoded_size_frame(frame, sections);
    if (size == 0)
        return km_error(KM_ERR_CAPACITY, "zmq: frame %llu (%d cameras, sections 0x%x) does not "
                        "fit a wire message", (unsigned long long)frame->frame,
                        frame->camera_count, sections);
    if (zmq_msg_init_size(msg, size) != 0)
        return km_error(KM_ERR_NO_MEMORY, "zmq_msg_init_size(%zu): %s", size,
                        zmq_strerror(errno));
    size_t length = 0;
    km_status st = km_wire_encode(frame, sections, zmq_msg_data(msg), size, &length);
    if (st)
        zmq_msg_close(msg);
    return st;
}

/* Send a counted reference to msg (no copy, no allocation) on the latest socket. */
static km_status send_latest(km_zmq_pub *zp, zmq_msg_t *msg)
{
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, msg);
    if (zmq_msg_send(&copy, zp->latest, ZMQ_DONTWAIT) >= 0) {
        count(&zp->sent);
        return KM_OK;
    }
    zmq_msg_close(&copy);
    count(&zp->dropped);
    return KM_ERR_AGAIN;
}

km_status km_zmq_pub_send(km_zmq_pub *zp, const km_solved_frame *frame)
{
    const unsigned frame_sections = km_wire_frame_sections(frame);
    const bool want_frame = zp->subscribers[TOPIC_FRAME] > 0;
    const bool want_markers = zp->subscribers[TOPIC_MARKERS] > 0;
    /* With markers alone the `frame` and `markers` payloads are the same bytes: encode
     * once and send the second topic a counted reference. */
    const bool markers_is_frame = frame_sections == KM_WIRE_WITH_MARKERS;
    km_status result = KM_OK, st;
    if (want_frame || zp->latest || (want_markers && markers_is_frame)) {
        zmq_msg_t msg;
        st = encode_message(frame, frame_sections, &msg);
        if (st)
            return st; /* the other topics would fail the same way */
        if (zp->latest && (st = send_latest(zp, &msg)) && !result)
            result = st;
        bool share = want_markers && markers_is_frame;
        if (want_frame) {
            /* `frame` first; the last send passes msg itself, earlier ones a reference. */
            zmq_msg_t copy, *body = &msg;
            if (share) {
                zmq_msg_init(&copy);
                zmq_msg_copy(&copy, &msg);
                body = &copy;
            }
            if ((st = send_topic(zp, TOPIC_FRAME, body)) && !result)
                result = st;
        }
        if (share) {
            if ((st = send_topic(zp, TOPIC_MARKERS, &msg)) && !result)
                result = st;
        } else if (!want_frame) {
            zmq_msg_close(&msg);
        }
    }
    if (want_markers && !markers_is_frame) {
        zmq_msg_t msg;
        st = encode_message(frame, KM_WIRE_WITH_MARKERS, &msg);
        if (!st)
            st = send_topic(zp, TOPIC_MARKERS, &msg);
        if (st && !result)
            result = st;
    }
    /* One-section topics: encoded only when subscribed and the frame has the stream. */
    static const struct { int topic; unsigned section; } single[] = {
        {TOPIC_OBS2D, KM_WIRE_WITH_OBS2D},
        {TOPIC_RIGID, KM_WIRE_WITH_RIGID},
        {TOPIC_SKELETON, KM_WIRE_WITH_SKELETONS},
        {TOPIC_HANDS, KM_WIRE_WITH_HANDS},
    };
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        if (zp->subscribers[single[i].topic] <= 0 || !(frame_sections & single[i].section))
            continue;
        zmq_msg_t msg;
        st = encode_message(frame, single[i].section, &msg);
        if (!st)
            st = send_topic(zp, single[i].topic, &msg);
        if (st && !result)
            result = st;
    }
    /* Read subscription changes after the frame is out, so their cost (a zmq_recv) is not
     * in the frame's latency; the next frame sees them. */
    update_subscriptions_throttled(zp);
    return result;
}

km_status km_zmq_pub_send_text(km_zmq_pub *zp, const char *topic, const char *text,
                               size_t length)
{
    update_subscriptions_throttled(zp);
    int t = 0;
    while (t < TOPIC_COUNT && strcmp(topics[t], topic) != 0)
        t++;
    if (t == TOPIC_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "zmq: unknown topic '%s'", topic);
    if (zp->subscribers[t] <= 0)
        return KM_OK; /* nobody listens: nothing to do */
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, length) != 0)
        return km_error(KM_ERR_NO_MEMORY, "zmq_msg_init_size(%zu): %s", length,
                        zmq_strerror(errno));
    memcpy(zmq_msg_data(&msg), text, length);
    return send_topic(zp, t, &msg);
}
