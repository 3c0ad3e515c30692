/* kinema_subscribe: print the frames kinemad publishes over ZeroMQ, decoded with the
 * library's wire decoder (km_wire_decode_streams: markers plus the counts of the v1.2
 * sections). The C twin of kinema_subscribe.py.
 *
 *   kinema_subscribe [--endpoint tcp://127.0.0.1:5555]
 *                    [--topic frame|markers|obs2d|rigid|skeleton|hands]
 *                    [--count N] [--json] [--timeout SECONDS]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "kinema/transport.h"

#define MAX_MARKERS 65536
#define MAX_OBSERVATIONS 65536
#define MAX_STREAM 4096   /* rigid bodies, hands, events per frame */
#define MAX_PEOPLE 1024

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: kinema_subscribe [--endpoint E] [--topic frame|markers|obs2d|rigid|"
                "skeleton|hands] [--count N] "
                "[--json] [--timeout SECONDS]\n");
}

static void print_json(const char *topic, const km_wire_frame *w, uint64_t now_ns)
{
    printf("{\"topic\": \"%s\", \"frame\": %llu, \"capture_time_ns\": %llu, "
           "\"solved_time_ns\": %llu, \"publish_time_ns\": %llu, \"flags\": %u, "
           "\"observation_count\": [", topic, (unsigned long long)w->frame,
           (unsigned long long)w->capture_time_ns, (unsigned long long)w->solved_time_ns,
           (unsigned long long)w->publish_time_ns, w->flags);
    for (int c = 0; c < w->camera_count; c++)
        printf("%s%u", c ? ", " : "", w->observation_count[c]);
    printf("], \"markers\": [");
    for (int i = 0; i < w->marker_count; i++) {
        const km_marker *m = &w->markers[i];
        printf("%s{\"id\": %u, \"x\": %.9g, \"y\": %.9g, \"z\": %.9g, \"residual_px\": %.9g, "
               "\"views\": %d}", i ? ", " : "", m->id, m->pos_m.x, m->pos_m.y, m->pos_m.z,
               m->residual_px, m->views);
    }
    printf("], \"observations\": %d, \"rigid_body_count\": %d, \"skeleton_count\": %d, "
           "\"hand_count\": %d, \"event_count\": %d, \"camera_status_count\": %d",
           w->observation_total, w->rigid_body_count, w->skeleton_count, w->hand_count,
           w->event_count, w->camera_status_count);
    printf(", \"latency_ns\": %lld}\n", (long long)(now_ns - w->capture_time_ns));
}

static void print_text(const km_wire_frame *w, uint64_t now_ns)
{
    printf("frame %llu capture %llu ns latency %.0f us cameras %d markers %d 2D %d rigid %d "
           "skeletons %d hands %d events %d\n",
           (unsigned long long)w->frame, (unsigned long long)w->capture_time_ns,
           (double)(now_ns - w->capture_time_ns) * 1e-3, w->camera_count, w->marker_count,
           w->observation_total, w->rigid_body_count, w->skeleton_count, w->hand_count,
           w->event_count);
    for (int i = 0; i < w->marker_count; i++) {
        const km_marker *m = &w->markers[i];
        printf("  id %5u  x %+.4f  y %+.4f  z %+.4f m  residual %.3f px  views %d\n", m->id,
               m->pos_m.x, m->pos_m.y, m->pos_m.z, m->residual_px, m->views);
    }
}

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:5555", *topic = "frame";
    long count = 0;
    double timeout_s = 0;
    int json = 0;
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'}, {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},    {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 'w'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "e:t:n:jw:h", options, NULL)) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 't': topic = optarg; break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'j': json = 1; break;
        case 'w': timeout_s = strtod(optarg, NULL); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    km_marker *storage = malloc(sizeof *storage * MAX_MARKERS);
    km_wire_storage arrays = {storage, MAX_MARKERS,
                              malloc(sizeof(km_observation) * MAX_OBSERVATIONS),
                              MAX_OBSERVATIONS};
    km_wire_stream_storage streams = {
        malloc(sizeof(km_rigid_pose) * MAX_STREAM), MAX_STREAM,
        malloc(sizeof(km_skeleton_pose) * MAX_PEOPLE), MAX_PEOPLE,
        malloc(sizeof(km_hand) * MAX_STREAM), MAX_STREAM,
        malloc(sizeof(km_gesture_event) * MAX_STREAM), MAX_STREAM,
        malloc(sizeof(km_camera_status) * KM_WIRE_MAX_CAMERAS), KM_WIRE_MAX_CAMERAS};
    uint8_t *buffer = malloc(1u << 22);
    void *context = zmq_ctx_new();
    void *sub = zmq_socket(context, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    if (!storage || !buffer || !arrays.observations || !streams.rigid_bodies ||
        !streams.skeletons || !streams.hands || !streams.events || !streams.camera_status ||
        zmq_connect(sub, endpoint) != 0) {
        fprintf(stderr, "kinema_subscribe: cannot connect to %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        return 1;
    }
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));

    int status = 0;
    long received = 0;
    while (!stop_requested && (count <= 0 || received < count)) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int ready = zmq_poll(&item, 1, timeout_s > 0 ? (long)(timeout_s * 1000) : -1);
        if (ready < 0)
            break; /* interrupted by a signal */
        if (ready == 0) {
            fprintf(stderr, "kinema_subscribe: no frame within %.1f s\n", timeout_s);
            status = 1;
            break;
        }
        char got_topic[64];
        int n = zmq_recv(sub, got_topic, sizeof got_topic - 1, 0);
        if (n < 0)
            break;
        got_topic[n < (int)sizeof got_topic - 1 ? n : (int)sizeof got_topic - 1] = '\0';
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_size);
        if (!more) {
            fprintf(stderr, "kinema_subscribe: message without payload\n");
            status = 2;
            break;
        }
        int length = zmq_recv(sub, buffer, 1u << 22, 0);
        uint64_t now_ns = km_time_now_ns();
        if (length < 0)
            break;
        if (length > (1 << 22)) {
            fprintf(stderr, "kinema_subscribe: %d-byte message too large\n", length);
            status = 2;
            break;
        }
        km_wire_frame w;
        km_status st = km_wire_decode_streams(buffer, (size_t)length, &arrays, &streams, &w);
        if (st) {
            fprintf(stderr, "kinema_subscribe: malformed frame: %s\n", km_last_error());
            status = 2;
            break;
        }
        received++;
        if (json)
            print_json(got_topic, &w, now_ns);
        else
            print_text(&w, now_ns);
        fflush(stdout);
    }
    zmq_close(sub);
    zmq_ctx_term(context);
    free(buffer);
    free(storage);
    free(arrays.observations);
    free(streams.rigid_bodies);
    free(streams.skeletons);
    free(streams.hands);
    free(streams.events);
    free(streams.camera_status);
    return status;
}
