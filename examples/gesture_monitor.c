/* gesture_monitor: prints the gesture, hand-pose and hand-eye events of a running kinemad
 * live, one line each: the receive time, how long the event took from its sample to here
 * (same host: both clocks are CLOCK_MONOTONIC), and the JSON Lines object as sent
 * (docs/formats.md "Events", docs/protocol.md topic `gesture`).
 *
 *   gesture_monitor [--endpoint tcp://127.0.0.1:5555] [--topic gesture] [--count N]
 *                   [--timeout-s S]
 *
 * Plain libzmq, no Kinema library: copy it into any project. Exit 0 after N events (or
 * when the timeout passes with none), 1 on a socket error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The "t_ns" field of the event, 0 when absent. */
static uint64_t event_time(const char *json)
{
    const char *p = strstr(json, "\"t_ns\":");
    return p ? strtoull(p + 7, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:5555", *topic = "gesture";
    long count = -1;
    double timeout_s = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--endpoint") && i + 1 < argc)
            endpoint = argv[++i];
        else if (!strcmp(argv[i], "--topic") && i + 1 < argc)
            topic = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-s") && i + 1 < argc)
            timeout_s = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: gesture_monitor [--endpoint E] [--topic T] [--count N] "
                            "[--timeout-s S]\n");
            return 2;
        }
    }
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int timeout_ms = timeout_s > 0 ? (int)(timeout_s * 1000) : -1;
    if (!sub || zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms) ||
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic)) || zmq_connect(sub, endpoint)) {
        fprintf(stderr, "gesture_monitor: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    fprintf(stderr, "gesture_monitor: listening on %s, topic '%s'\n", endpoint, topic);
    long seen = 0;
    while (count < 0 || seen < count) {
        char name[64], payload[4096];
        int n = zmq_recv(sub, name, sizeof name - 1, 0);
        if (n < 0) {
            if (zmq_errno() == EAGAIN)
                break; /* timeout */
            fprintf(stderr, "gesture_monitor: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_size);
        if (!more)
            continue; /* not a [topic][payload] message */
        n = zmq_recv(sub, payload, sizeof payload - 1, 0);
        if (n < 0)
            continue;
        payload[n < (int)sizeof payload - 1 ? n : (int)sizeof payload - 1] = '\0';
        uint64_t t = now_ns(), sent = event_time(payload);
        double age_ms = sent && sent <= t ? (double)(t - sent) / 1e6 : -1.0;
        printf("%.3f  +%6.1f ms  %s\n", (double)t / 1e9, age_ms, payload);
        fflush(stdout);
        seen++;
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return 0;
}
