/* bench_latency: capture timestamp -> subscriber receipt on loopback, p50/p99/max over N
 * frames (default 10000), for each transport beside its floor, the same-size raw send:
 *   ZeroMQ  km_publisher_send (XPUB, encode into the message, `frame` topic) -> SUB thread
 *           floor: raw libzmq PUB zmq_send of the same bytes as [topic][payload] -> SUB thread
 *   OSC     km_publisher_send (OSC bundle: /kinema/frame + 49 /kinema/marker) -> UDP thread
 *           floor: raw sendto() of the same bytes; and liblo's lo_send_bundle of a bundle
 *           built once (liblo's own send path)
 * The capture time is stamped immediately before the send call (no camera here: what is
 * measured is the transport's share of the end-to-end latency). Receivers block in
 * recv and stamp CLOCK_MONOTONIC on return; the timestamp travels in the message itself.
 * The three OSC paths share ONE receiving socket and thread (told apart by the bundle's time
 * tag: the floors send tags 0.2 and 0.3, Kinema a real time): the receiver's wake-up, which
 * dominates the tail on a loaded machine, is then the same for all of them.
 * The paths take turns message by message (round robin, the order reversed every other
 * round) so that machine load and warm caches favour none; messages are paced (default 2000 per second over all paths) so each measures one
 * message's latency, not queueing.
 *
 *   bench_latency [frames] [messages_per_s]        (default 10000 2000) */
#include <lo/lo.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "kinema/transport.h"
#include "bench_help.h"

#define MARKERS 49
#define CAMERAS 8
/* Offset of capture_time_ns: wire v1 header (docs/protocol.md) ... */
#define WIRE_CAPTURE_OFFSET 32
/* ... and in the OSC bundle: 16 bundle header + 4 element size + "/kinema/frame" (16) +
 * ",hhi" (8) + frame (8). */
#define OSC_CAPTURE_OFFSET 52

enum { ZMQ_KINEMA, ZMQ_FLOOR, OSC_KINEMA, OSC_FLOOR_RAW, OSC_FLOOR_LIBLO, PATHS };
static const char *const path_names[PATHS] = {
    "ZeroMQ  Kinema (km_publisher_send)", "ZeroMQ  floor: raw zmq_send, same bytes",
    "OSC     Kinema (km_publisher_send)", "OSC     floor: raw sendto, same bytes",
    "OSC     floor: liblo lo_send_bundle"};

typedef struct path_stats {
    uint32_t *latency_ns;
    atomic_int count;
} path_stats;

static path_stats stats[PATHS];
static atomic_int measuring;
static atomic_int stop;
static int capacity;

static void record(int p, uint64_t capture_ns)
{
    uint64_t now = km_time_now_ns();
    if (!atomic_load(&measuring) || capture_ns == 0 || capture_ns > now)
        return;
    int i = atomic_fetch_add(&stats[p].count, 1);
    if (i < capacity)
        stats[p].latency_ns[i] = (uint32_t)(now - capture_ns > UINT32_MAX ? UINT32_MAX
                                                                            : now - capture_ns);
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

typedef struct zmq_receiver {
    void *context;
    char endpoint[256];
    atomic_int ready;
    int path;
} zmq_receiver;

/* Each receiver has its own context (I/O thread), like a subscriber process: a shared I/O
 * thread would be warm for whichever path came second in the round robin. */
static void *zmq_receive_thread(void *arg)
{
    zmq_receiver *r = arg;
    r->context = zmq_ctx_new();
    void *sub = zmq_socket(r->context, ZMQ_SUB);
    int linger = 0, timeout = 100;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect(sub, r->endpoint);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "frame", 5);
    static _Thread_local uint8_t buf[1 << 16];
    char topic[16];
    while (!atomic_load(&stop)) {
        if (zmq_recv(sub, topic, sizeof topic, 0) < 0)
            continue;
        int n = zmq_recv(sub, buf, sizeof buf, 0);
        atomic_store(&r->ready, 1);
        if (n >= WIRE_CAPTURE_OFFSET + 8)
            record(r->path, get_le64(buf + WIRE_CAPTURE_OFFSET));
    }
    zmq_close(sub);
    zmq_ctx_term(r->context);
    return NULL;
}

typedef struct udp_receiver {
    int fd;
    int path;
    struct sockaddr_in addr;
    char port[16];
} udp_receiver;

/* Time tags the floors' bundles carry (seconds 0, fraction 2 / 3: never a real time). */
#define TAG_FLOOR_RAW 2u
#define TAG_FLOOR_LIBLO 3u

static void *udp_receive_thread(void *arg)
{
    udp_receiver *r = arg;
    static _Thread_local uint8_t buf[1 << 16];
    while (!atomic_load(&stop)) {
        ssize_t n = recv(r->fd, buf, sizeof buf, 0);
        if (n < OSC_CAPTURE_OFFSET + 8)
            continue;
        uint64_t tag = get_be64(buf + 8); /* after "#bundle\0" */
        int path = tag == TAG_FLOOR_RAW     ? OSC_FLOOR_RAW
                   : tag == TAG_FLOOR_LIBLO ? OSC_FLOOR_LIBLO
                                            : r->path;
        record(path, get_be64(buf + OSC_CAPTURE_OFFSET));
    }
    return NULL;
}

static int udp_open(udp_receiver *r, int path)
{
    r->path = path;
    r->fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&r->addr, 0, sizeof r->addr);
    r->addr.sin_family = AF_INET;
    r->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof r->addr;
    struct timeval tv = {0, 100000};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(r->fd, (struct sockaddr *)&r->addr, sizeof r->addr) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&r->addr, &length) != 0)
        return -1;
    snprintf(r->port, sizeof r->port, "%d", ntohs(r->addr.sin_port));
    return 0;
}

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void summarise(int p, double *p50, double *p99, double *max, int *n)
{
    *n = atomic_load(&stats[p].count);
    if (*n > capacity)
        *n = capacity;
    qsort(stats[p].latency_ns, (size_t)*n, sizeof(uint32_t), cmp);
    *p50 = *n ? stats[p].latency_ns[*n / 2] / 1000.0 : 0;
    *p99 = *n ? stats[p].latency_ns[(int)(0.99 * (*n - 1))] / 1000.0 : 0;
    *max = *n ? stats[p].latency_ns[*n - 1] / 1000.0 : 0;
}

int main(int argc, char **argv)
{
    bench_help(argc, argv,
               "usage: bench_latency [frames >= 100] [messages_per_s]   (default 10000, 2000)\n\nCapture timestamp -> subscriber receipt on loopback (p50/p99/max) for ZeroMQ and OSC, each\nbeside its floor: a raw zmq_send / sendto() / liblo send of the same bytes.\n");
    int frames = argc > 1 ? atoi(argv[1]) : 10000;
    double rate_hz = argc > 2 ? atof(argv[2]) : 2000.0;
    if (frames < 100 || rate_hz <= 0) {
        fprintf(stderr, "usage: bench_latency [frames >= 100] [messages_per_s]\n");
        return 2;
    }
    km_log_set_level(KM_LOG_WARN);
    capacity = frames + 100;
    for (int p = 0; p < PATHS; p++)
        stats[p].latency_ns = calloc((size_t)capacity, sizeof(uint32_t));

    /* The frame: 8 cameras, 49 markers (the synthetic default's marker count). */
    static km_marker markers[MARKERS];
    for (int i = 0; i < MARKERS; i++) {
        markers[i].id = (uint32_t)i;
        markers[i].pos_m = km_vec3_make(0.013 * i, 1.0 + 0.007 * i, -0.021 * i);
        markers[i].residual_px = 0.1;
        markers[i].views = 4;
    }
    km_marker_set set = {0, 0, MARKERS, MARKERS, markers};
    km_solved_frame frame;
    memset(&frame, 0, sizeof frame);
    frame.camera_count = CAMERAS;
    frame.markers = &set;

    /* One UDP receiver on 127.0.0.1 for the three OSC paths. */
    udp_receiver ur[1];
    if (udp_open(&ur[0], OSC_KINEMA) != 0) {
        perror("bench_latency: udp bind");
        return 1;
    }

    /* Kinema publishers: one ZeroMQ only, one OSC only. */
    km_status st;
    km_publisher_config zc = km_publisher_config_default();
    snprintf(zc.zmq_endpoint, sizeof zc.zmq_endpoint, "tcp://127.0.0.1:*");
    zc.osc_enabled = false;
    zc.status_interval_ns = 0;
    km_publisher *zpub = km_publisher_create(&zc, &st);
    km_publisher_config oc = km_publisher_config_default();
    oc.zmq_enabled = false;
    snprintf(oc.osc_port, sizeof oc.osc_port, "%s", ur[0].port);
    km_publisher *opub = km_publisher_create(&oc, &st);
    if (!zpub || !opub) {
        fprintf(stderr, "bench_latency: %s\n", km_last_error());
        return 1;
    }
    /* Floors. ZeroMQ: a plain PUB sending the same encoded bytes, in a context (I/O thread)
     * of its own like km_publisher's, so both paths cross two I/O threads as between two
     * processes. */
    void *ctx = zmq_ctx_new();
    void *pub_ctx = zmq_ctx_new();
    void *raw_pub = zmq_socket(pub_ctx, ZMQ_PUB);
    int linger = 0;
    zmq_setsockopt(raw_pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_bind(raw_pub, "tcp://127.0.0.1:*");
    char raw_endpoint[256];
    size_t size = sizeof raw_endpoint;
    zmq_getsockopt(raw_pub, ZMQ_LAST_ENDPOINT, raw_endpoint, &size);
    static uint8_t wire[1 << 16];
    size_t wire_length;
    km_wire_encode_frame(&frame, wire, sizeof wire, &wire_length);
    /* OSC: capture the exact bundle Kinema sends, for sendto and for liblo. */
    static uint8_t osc_bytes[1 << 16];
    ssize_t osc_length = 0;
    {
        frame.capture_time_ns = km_time_now_ns();
        km_publisher_send(opub, &frame);
        osc_length = recv(ur[0].fd, osc_bytes, sizeof osc_bytes, 0);
        if (osc_length <= OSC_CAPTURE_OFFSET) {
            fprintf(stderr, "bench_latency: no OSC bundle received\n");
            return 1;
        }
        put_be64(osc_bytes + 8, TAG_FLOOR_RAW);
    }
    int raw_fd = socket(AF_INET, SOCK_DGRAM, 0);
    lo_address lo_to = lo_address_new("127.0.0.1", ur[0].port);
    lo_timetag liblo_tag = {0, TAG_FLOOR_LIBLO};
    lo_bundle lo_b = lo_bundle_new(liblo_tag);
    lo_message lo_frame = lo_message_new();
    lo_message_add_int64(lo_frame, 0);
    lo_message_add_int64(lo_frame, 0); /* capture time: rewritten per send below */
    lo_message_add_int32(lo_frame, MARKERS);
    lo_bundle_add_message(lo_b, "/kinema/frame", lo_frame);
    for (int i = 0; i < MARKERS; i++) {
        lo_message m = lo_message_new();
        lo_message_add_int32(m, i);
        for (int k = 0; k < 4; k++)
            lo_message_add_float(m, 0.5f);
        lo_message_add_int32(m, 4);
        lo_bundle_add_message(lo_b, "/kinema/marker", m);
    }
    lo_arg **lo_args = lo_message_get_argv(lo_frame);

    zmq_receiver zr_kinema = {NULL, "", 0, ZMQ_KINEMA}, zr_floor = {NULL, "", 0, ZMQ_FLOOR};
    snprintf(zr_kinema.endpoint, sizeof zr_kinema.endpoint, "%s", km_publisher_zmq_endpoint(zpub));
    snprintf(zr_floor.endpoint, sizeof zr_floor.endpoint, "%s", raw_endpoint);
    pthread_t threads[3];
    pthread_create(&threads[0], NULL, zmq_receive_thread, &zr_kinema);
    pthread_create(&threads[1], NULL, zmq_receive_thread, &zr_floor);
    pthread_create(&threads[2], NULL, udp_receive_thread, &ur[0]);
    /* Wait until both subscriptions are live. */
    for (int i = 0; i < 5000 && !(atomic_load(&zr_kinema.ready) && atomic_load(&zr_floor.ready));
         i++) {
        frame.capture_time_ns = km_time_now_ns();
        km_publisher_send(zpub, &frame);
        zmq_send(raw_pub, "frame", 5, ZMQ_SNDMORE);
        zmq_send(raw_pub, wire, wire_length, 0);
        usleep(1000);
    }
    usleep(100000);
    atomic_store(&measuring, 1);

    const uint64_t period = (uint64_t)(1e9 / rate_hz);
    printf("bench_latency: %d frames per path, one message every %.0f us round robin over the "
           "%d paths, 8 cameras, 49 markers (wire %zu B, OSC bundle %zd B), loopback\n",
           frames, 1e6 / rate_hz, PATHS, wire_length, osc_length);
    /* Round robin, one message per path in turn: a burst of machine load (other processes
     * on a shared machine) hits every path alike instead of one path's block. */
    uint64_t t0 = km_time_now_ns();
    for (int i = 0; i < frames * PATHS; i++) {
        /* Whichever path goes second after another of its kind finds the loopback path
         * warm (measured: ~15 us at p50 on a loaded machine), so odd rounds reverse the
         * order within ZeroMQ and within OSC (ABBA), and the bias cancels. */
        static const int even[PATHS] = {ZMQ_KINEMA, ZMQ_FLOOR, OSC_KINEMA, OSC_FLOOR_RAW,
                                        OSC_FLOOR_LIBLO};
        static const int odd[PATHS] = {ZMQ_FLOOR, ZMQ_KINEMA, OSC_FLOOR_LIBLO, OSC_FLOOR_RAW,
                                       OSC_KINEMA};
        int p = (i / PATHS) % 2 ? odd[i % PATHS] : even[i % PATHS];
        km_time_sleep_until_ns(t0 + (uint64_t)i * period);
        uint64_t capture = km_time_now_ns();
        switch (p) {
        case ZMQ_KINEMA:
        case OSC_KINEMA:
            frame.capture_time_ns = capture;
            km_publisher_send(p == ZMQ_KINEMA ? zpub : opub, &frame);
            break;
        case ZMQ_FLOOR: {
            /* Same bytes with this capture time (little-endian, wire v1). */
            for (int b = 0; b < 8; b++)
                wire[WIRE_CAPTURE_OFFSET + b] = (uint8_t)(capture >> (8 * b));
            zmq_send(raw_pub, "frame", 5, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(raw_pub, wire, wire_length, ZMQ_DONTWAIT);
            break;
        }
        case OSC_FLOOR_RAW:
            put_be64(osc_bytes + OSC_CAPTURE_OFFSET, capture);
            sendto(raw_fd, osc_bytes, (size_t)osc_length, MSG_DONTWAIT,
                   (struct sockaddr *)&ur[0].addr, sizeof ur[0].addr);
            break;
        case OSC_FLOOR_LIBLO:
            lo_args[1]->h = (int64_t)capture;
            lo_send_bundle(lo_to, lo_b);
            break;
        }
    }
    usleep(50000);
    atomic_store(&measuring, 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);

    double p50[PATHS], p99[PATHS], mx[PATHS];
    int n[PATHS];
    for (int p = 0; p < PATHS; p++)
        summarise(p, &p50[p], &p99[p], &mx[p], &n[p]);
    printf("%-42s %7s %9s %9s %9s\n", "path (capture -> receipt)", "frames", "p50 us", "p99 us",
           "max us");
    for (int p = 0; p < PATHS; p++)
        printf("%-42s %7d %9.1f %9.1f %9.1f\n", path_names[p], n[p], p50[p], p99[p], mx[p]);
    printf("\nKinema minus floor (same-size raw send):\n");
    printf("  ZeroMQ: p50 %+.1f us (x%.2f), p99 %+.1f us (x%.2f)  -> p99 within 100 us of the "
           "floor: %s\n", p50[ZMQ_KINEMA] - p50[ZMQ_FLOOR], p50[ZMQ_KINEMA] / p50[ZMQ_FLOOR],
           p99[ZMQ_KINEMA] - p99[ZMQ_FLOOR], p99[ZMQ_KINEMA] / p99[ZMQ_FLOOR],
           p99[ZMQ_KINEMA] - p99[ZMQ_FLOOR] <= 100.0 ? "yes" : "NO");
    printf("  OSC:    p50 %+.1f us (x%.2f), p99 %+.1f us (x%.2f) vs raw sendto -> within 100 us: "
           "%s;  vs liblo: p50 %+.1f us, p99 %+.1f us\n",
           p50[OSC_KINEMA] - p50[OSC_FLOOR_RAW], p50[OSC_KINEMA] / p50[OSC_FLOOR_RAW],
           p99[OSC_KINEMA] - p99[OSC_FLOOR_RAW], p99[OSC_KINEMA] / p99[OSC_FLOOR_RAW],
           p99[OSC_KINEMA] - p99[OSC_FLOOR_RAW] <= 100.0 ? "yes" : "NO",
           p50[OSC_KINEMA] - p50[OSC_FLOOR_LIBLO], p99[OSC_KINEMA] - p99[OSC_FLOOR_LIBLO]);
    lo_bundle_free_recursive(lo_b);
    lo_address_free(lo_to);
    close(raw_fd);
    close(ur[0].fd);
    zmq_close(raw_pub);
    zmq_ctx_term(pub_ctx);
    zmq_ctx_term(ctx);
    km_publisher_destroy(zpub);
    km_publisher_destroy(opub);
    for (int p = 0; p < PATHS; p++)
        free(stats[p].latency_ns);
    return 0;
}
