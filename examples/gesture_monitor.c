/* gesture_monitor: prints the gesture, hand-pose and hand-eye events of a running kinemad
 * live, one line each: the receive time, how long the event took from its sample to here
 * (same host: both clocks are CLOCK_MONOTONIC), and the JSON Lines object as sent
 * (docs/formats.md "Events", docs/protocol.md topics `gesture` and `handeye`).
 *
 *   gesture_monitor [--endpoint tcp://127.0.0.1:5555] [--topic gesture --topic handeye]
 *                   [--count N] [--timeout-s S]
 *
 * Without --topic both event topics are followed: `gesture` (hand poses, gestures) and
 * `handeye` (gaze, reach, look-and-pinch select); each --topic replaces that default.
 *
 * Plain libzmq, no Kinema library: copy it into any project. Exit 0 after N events (or
 * when the timeout passes with none), 1 on a socket error. */
#include <inttypes.h>
#include <stdbool.h>
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
    const char *endpoint = "tcp://127.0.0.1:5555";
    const char *topics[8] = {"gesture", "handeye"};
    int topic_count = 2;
    bool topics_given = false;
    long count = -1;
    double timeout_s = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: gesture_monitor [--endpoint tcp://127.0.0.1:5555] [--topic T]... "
                   "[--count N] [--timeout-s S]\n\nPrints kinemad's gesture, hand-pose and "
                   "hand-eye events as they arrive (default\ntopics: gesture handeye), with "
                   "their age since the sample.\n");
            return 0;
        } else if (!strcmp(argv[i], "--endpoint") && i + 1 < argc)
            endpoint = argv[++i];
        else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
            if (!topics_given)
                topic_count = 0;
            topics_given = true;
            if (topic_count == 8) {
                fprintf(stderr, "gesture_monitor: at most 8 topics\n");
                return 2;
            }
            topics[topic_count++] = argv[++i];
        }
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-s") && i + 1 < argc)
            timeout_s = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: gesture_monitor [--endpoint E] [--topic T]... [--count N] "
                            "[--timeout-s S]\n(default topics: gesture handeye)\n");
            return 2;
        }
    }
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int timeout_ms = timeout_s > 0 ? (int)(timeout_s * 1000) : -1;
    bool ok = sub && zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms) == 0;
    for (int t = 0; ok && t < topic_count; t++)
        ok = zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topics[t], strlen(topics[t])) == 0;
    if (!ok || zmq_connect(sub, endpoint)) {
        fprintf(stderr, "gesture_monitor: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    for (int t = 0; t < topic_count; t++)
        fprintf(stderr, "gesture_monitor: listening on %s, topic '%s'\n", endpoint, topics[t]);
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
        name[n < (int)sizeof name - 1 ? n : (int)sizeof name - 1] = '\0';
        printf("%.3f  +%6.1f ms  %-8s %s\n", (double)t / 1e9, age_ms, name, payload);
        fflush(stdout);
        seen++;
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return 0;
}
