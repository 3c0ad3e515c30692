/* kinemad: the Kinema service. Thin by design: parse arguments, read the config, run the
 * pipeline (pipeline/pipeline.c) until SIGINT/SIGTERM or the sources end, print a status
 * line once a second. Signal handling lives here and only here (never in the library). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/kinema.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* --markers-out: every solved frame's markers as CSV (tests compare runs with it). */
static void write_markers(void *user, const km_solved_frame *frame)
{
    FILE *f = user;
    if (!frame->markers) return;
    for (int i = 0; i < frame->markers->count; i++) {
        const km_marker *m = &frame->markers->items[i];
        fprintf(f, "%llu,%u,%.9f,%.9f,%.9f,%d\n", (unsigned long long)frame->frame, m->id,
                m->pos_m.x, m->pos_m.y, m->pos_m.z, m->views);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: kinemad [OPTIONS]\n"
        "\n"
        "Run the Kinema motion-capture service: capture -> 2D detection -> 3D reconstruction\n"
        "-> marker tracking -> rigid bodies -> skeletons -> hands and gestures -> publish every\n"
        "solved frame over ZeroMQ and OSC (and, when configured, VMC avatars and OSC events).\n"
        "Without --config it runs the embedded default: a synthetic 8-camera rig (1280x1024,\n"
        "120 Hz) watching a walking actor with a head band and a hand-held prop, publishing on\n"
        "tcp://127.0.0.1:5555 (ZeroMQ PUB, wire v1.3, docs/protocol.md) and\n"
        "osc.udp://127.0.0.1:9000 (OSC, /kinema/...). Sources: synthetic, replay (a recording),\n"
        "devices (UVC cameras and Kinects over USB; docs/capture.md).\n"
        "\n"
        "Options:\n"
        "  -c, --config FILE     YAML configuration (docs/config.md)\n"
        "  -d, --duration SEC    stop after SEC seconds (default: run until SIGINT/SIGTERM)\n"
        "  -n, --frames N        stop after N solved frame sets\n"
        "      --fast            do not pace synthetic sources in real time (as fast as possible)\n"
        "      --zmq ENDPOINT    override transport.zmq.endpoint (e.g. tcp://127.0.0.1:5555)\n"
        "      --osc HOST:PORT   override transport.osc host and port\n"
        "      --control ENDPOINT  override transport.control.endpoint (JSON request/reply,\n"
        "                        default tcp://127.0.0.1:5556; docs/protocol.md \"Control\")\n"
        "      --no-zmq, --no-osc, --no-control  disable a transport\n"
        "      --markers-out FILE  write every solved frame's markers as CSV\n"
        "                        (frame,id,x_m,y_m,z_m,views)\n"
        "      --check-config    read and validate the config, print the result, exit\n"
        "  -q, --quiet           no status line (errors and warnings only)\n"
        "  -v, --verbose         debug logging\n"
        "      --log-json        log lines as JSON objects (for log collectors)\n"
        "  -h, --help            this help\n"
        "\n"
        "Status line (stderr, once a second): solved frame rate, markers per frame, 2D blobs\n"
        "per frame, dropped camera frames, incomplete frame sets, mean/max latency from\n"
        "capture to publish, and messages sent.\n"
        "Exit status: 0 on clean shutdown, 1 on a runtime error, 2 on bad arguments or config.\n");
}

/* "8 ok" or "6 ok, 2 disconnected": the cameras by state (read on the stepping thread). */
static void camera_summary(const km_pipeline *pipeline, char *out, size_t size)
{
    km_camera_status cs[KM_MAX_CAMERAS];
    int n = km_pipeline_camera_status(pipeline, cs, KM_MAX_CAMERAS);
    if (n > KM_MAX_CAMERAS) n = KM_MAX_CAMERAS;
    int count[KM_CAMERA_STATE_INACTIVE + 1] = {0};
    for (int c = 0; c < n; c++)
        if ((unsigned)cs[c].state <= KM_CAMERA_STATE_INACTIVE) count[cs[c].state]++;
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k <= KM_CAMERA_STATE_INACTIVE && len < size; k++)
        if (count[k])
            len += (size_t)snprintf(out + len, size - len, "%s%d %s", len ? ", " : "", count[k],
                                    km_camera_state_name((km_camera_state)k));
}

static void print_status(const km_pipeline *pipeline, const km_pipeline_stats *now,
                         const km_pipeline_stats *before, double seconds)
{
    uint64_t sets = now->framesets - before->framesets;
    double fps = seconds > 0 ? (double)sets / seconds : 0.0;
    double markers = sets ? (double)(now->markers - before->markers) / (double)sets : 0.0;
    uint64_t frames = now->frames - before->frames;
    double blobs = frames ? (double)(now->observations - before->observations) / (double)frames
                          : 0.0;
    double lat_ms = sets ? (double)(now->latency_ns_sum - before->latency_ns_sum) / (double)sets
                               / 1e6
                         : 0.0;
    double rigid = sets ? (double)(now->rigid_tracked - before->rigid_tracked) / (double)sets
                        : 0.0;
    double people = sets ? (double)(now->skeletons_tracked - before->skeletons_tracked) /
                               (double)sets
                         : 0.0;
    double stage_ms = sets ? (double)(now->stage_time_ns_sum - before->stage_time_ns_sum) /
                                 (double)sets / 1e6
                           : 0.0;
    char cameras[160];
    camera_summary(pipeline, cameras, sizeof cameras);
    km_log(KM_LOG_INFO, "kinemad",
           "%.1f fps | %.1f markers/frame | %.1f rigid, %.1f skeletons tracked | %llu events |"
           " %.1f blobs/camera | dropped %llu | incomplete %llu | latency %.2f ms mean, %.2f ms"
           " max (rigid..gestures %.2f ms) | zmq %llu sent (%llu dropped) | osc %llu sent |"
           " cameras %s",
           fps, markers, rigid, people, (unsigned long long)(now->events - before->events),
           blobs, (unsigned long long)now->dropped_frames,
           (unsigned long long)now->incomplete_framesets, lat_ms,
           (double)now->latency_ns_max / 1e6, stage_ms, (unsigned long long)now->zmq_sent,
           (unsigned long long)now->zmq_dropped, (unsigned long long)now->osc_sent, cameras);
}

static int split_host_port(const char *arg, km_publisher_config *pub)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || !colon[1]) return -1;
    size_t host_len = (size_t)(colon - arg);
    if (host_len >= sizeof pub->osc_host || strlen(colon + 1) >= sizeof pub->osc_port) return -1;
    memcpy(pub->osc_host, arg, host_len);
    pub->osc_host[host_len] = '\0';
    snprintf(pub->osc_port, sizeof pub->osc_port, "%s", colon + 1);
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_FAST = 256, OPT_ZMQ, OPT_OSC, OPT_NO_ZMQ, OPT_NO_OSC, OPT_CHECK, OPT_JSON,
           OPT_CONTROL, OPT_NO_CONTROL, OPT_MARKERS_OUT };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"frames", required_argument, NULL, 'n'},
        {"fast", no_argument, NULL, OPT_FAST},
        {"zmq", required_argument, NULL, OPT_ZMQ},
        {"osc", required_argument, NULL, OPT_OSC},
        {"no-zmq", no_argument, NULL, OPT_NO_ZMQ},
        {"no-osc", no_argument, NULL, OPT_NO_OSC},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"no-control", no_argument, NULL, OPT_NO_CONTROL},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"markers-out", required_argument, NULL, OPT_MARKERS_OUT},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"log-json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *zmq_override = NULL, *osc_override = NULL,
               *control_override = NULL, *markers_out = NULL;
    bool no_control = false;
    double duration_s = 0.0;
    unsigned long long max_sets = 0;
    bool fast = false, no_zmq = false, no_osc = false, check_only = false, quiet = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:n:qvh", options, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'd':
            errno = 0;
            duration_s = strtod(optarg, &end);
            if (errno || *end || duration_s < 0) {
                fprintf(stderr, "kinemad: --duration: not a number of seconds: '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n':
            errno = 0;
            max_sets = strtoull(optarg, &end, 10);
            if (errno || *end || optarg[0] == '-') {
                fprintf(stderr, "kinemad: --frames: not a count: '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_FAST: fast = true; break;
        case OPT_ZMQ: zmq_override = optarg; break;
        case OPT_OSC: osc_override = optarg; break;
        case OPT_NO_ZMQ: no_zmq = true; break;
        case OPT_NO_OSC: no_osc = true; break;
        case OPT_CONTROL: control_override = optarg; break;
        case OPT_NO_CONTROL: no_control = true; break;
        case OPT_CHECK: check_only = true; break;
        case OPT_MARKERS_OUT: markers_out = optarg; break;
        case 'q': quiet = true; break;
        case 'v': km_log_set_level(KM_LOG_DEBUG); break;
        case OPT_JSON: km_log_set_json(true); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kinemad: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (quiet) km_log_set_level(KM_LOG_WARN);

    km_pipeline_config pcfg = km_pipeline_config_default();
    if (config_path) {
        km_status st;
        km_config *cfg = km_config_load(config_path, &st);
        if (!cfg) {
            km_log(KM_LOG_ERROR, "kinemad", "%s", km_last_error());
            return 2;
        }
        st = km_pipeline_config_read(cfg, &pcfg);
        km_config_destroy(cfg);
        if (st) {
            km_log(KM_LOG_ERROR, "kinemad", "%s", km_last_error());
            return 2;
        }
    }
    if (fast) pcfg.realtime = false;
    if (zmq_override) snprintf(pcfg.publish.zmq_endpoint, sizeof pcfg.publish.zmq_endpoint, "%s",
                               zmq_override);
    if (osc_override && split_host_port(osc_override, &pcfg.publish)) {
        fprintf(stderr, "kinemad: --osc: expected HOST:PORT, got '%s'\n", osc_override);
        return 2;
    }
    if (control_override)
        snprintf(pcfg.control.endpoint, sizeof pcfg.control.endpoint, "%s", control_override);
    if (no_control) pcfg.control.enabled = false;
    if (no_zmq) pcfg.publish.zmq_enabled = false;
    if (no_osc) pcfg.publish.osc_enabled = false;
    if (check_only) {
        printf("%s: ok (%d synthetic cameras %dx%d @ %.0f Hz; zmq %s; osc %s:%s)\n",
               config_path ? config_path : "(embedded default)", pcfg.synthetic.camera_count,
               pcfg.synthetic.width, pcfg.synthetic.height, pcfg.synthetic.rate_hz,
               pcfg.publish.zmq_enabled ? pcfg.publish.zmq_endpoint : "off",
               pcfg.publish.osc_enabled ? pcfg.publish.osc_host : "off",
               pcfg.publish.osc_enabled ? pcfg.publish.osc_port : "-");
        return 0;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    km_status st;
    km_pipeline *pipeline = km_pipeline_create(&pcfg, &st);
    if (!pipeline) {
        km_log(KM_LOG_ERROR, "kinemad", "cannot start: %s", km_last_error());
        return 1;
    }
    FILE *markers_file = NULL;
    if (markers_out) {
        markers_file = fopen(markers_out, "w");
        if (!markers_file) {
            km_log(KM_LOG_ERROR, "kinemad", "--markers-out %s: %s", markers_out, strerror(errno));
            km_pipeline_destroy(pipeline);
            return 2;
        }
        fprintf(markers_file, "frame,id,x_m,y_m,z_m,views\n");
        km_pipeline_set_frame_callback(pipeline, write_markers, markers_file);
    }
    const km_rig *rig = km_pipeline_rig(pipeline);
    if (pcfg.role == KM_PIPELINE_ROLE_SOLVER)
        km_log(KM_LOG_INFO, "kinemad", "role: solver of %d cameras from %d camera nodes "
               "(docs/protocol.md \"Multi-host\")", rig->camera_count, pcfg.solver_node_count);
    else
        km_log(KM_LOG_INFO, "kinemad", "%ssource: %s, %d cameras%s",
               pcfg.role == KM_PIPELINE_ROLE_NODE ? "role: camera node, " : "",
               pcfg.source == KM_PIPELINE_SOURCE_SYNTHETIC ? "synthetic scene (embedded default)"
               : pcfg.source == KM_PIPELINE_SOURCE_REPLAY ? "replay" : "devices",
               pcfg.role == KM_PIPELINE_ROLE_NODE ? pcfg.node_camera_count : rig->camera_count,
               pcfg.realtime ? ", real time" : ", as fast as possible");
    if (pcfg.role == KM_PIPELINE_ROLE_NODE)
        km_log(KM_LOG_INFO, "kinemad", "node: publishing obs2d on %s; capture starts when the "
               "solver connects", pcfg.node_publish);
    if (pcfg.publish_enabled && pcfg.publish.zmq_enabled && pcfg.role != KM_PIPELINE_ROLE_NODE)
        km_log(KM_LOG_INFO, "kinemad", "publishing ZeroMQ PUB on %s (topics frame, markers, "
               "obs2d, rigid, skeleton, hands, gesture, handeye, status; wire v1.3, "
               "docs/protocol.md)",
               pcfg.publish.zmq_endpoint);
    if (pcfg.publish_enabled && pcfg.publish.osc_enabled && pcfg.role != KM_PIPELINE_ROLE_NODE)
        km_log(KM_LOG_INFO, "kinemad", "publishing OSC to osc.udp://%s:%s (/kinema/frame, "
               "/kinema/marker, /kinema/rigid, /kinema/skeleton, /kinema/joint, /kinema/hand)",
               pcfg.publish.osc_host, pcfg.publish.osc_port);
    if (pcfg.vmc.enabled)
        km_log(KM_LOG_INFO, "kinemad", "VMC: person %d's skeleton to %d destination(s), first "
               "%s:%s", pcfg.vmc.person, pcfg.vmc.destination_count,
               pcfg.vmc.destinations[0].host, pcfg.vmc.destinations[0].port);

    if (pcfg.publish_enabled && pcfg.control.enabled)
        km_log(KM_LOG_INFO, "kinemad", "control socket (JSON request/reply) on %s: try "
               "{\"cmd\":\"status\"} or {\"cmd\":\"list_cameras\"} (also start_recording, "
               "define_rigid, calibrate: docs/protocol.md)", pcfg.control.endpoint);
    st = km_pipeline_start(pipeline);
    if (st) {
        km_log(KM_LOG_ERROR, "kinemad", "cannot start capture: %s", km_last_error());
        km_pipeline_destroy(pipeline);
        return 1;
    }
    uint64_t start_ns = km_time_now_ns(), last_status_ns = start_ns;
    km_pipeline_stats before, now;
    km_pipeline_stats_get(pipeline, &before);
    int rc = 0;
    while (!stop_requested) {
        int solved = 0;
        st = km_pipeline_step(pipeline, 100000000ull, &solved);
        if (st == KM_ERR_END_OF_STREAM) {
            km_log(KM_LOG_INFO, "kinemad", "sources ended");
            break;
        }
        if (st && st != KM_ERR_AGAIN && st != KM_ERR_TIMEOUT) {
            /* One bad frame set must not stop the service: log and go on. */
            km_log(KM_LOG_WARN, "kinemad", "frame set failed: %s", km_last_error());
        }
        uint64_t t = km_time_now_ns();
        if (t - last_status_ns >= 1000000000ull) {
            km_pipeline_stats_get(pipeline, &now);
            print_status(pipeline, &now, &before, (double)(t - last_status_ns) / 1e9);
            before = now;
            last_status_ns = t;
        }
        if (duration_s > 0 && (double)(t - start_ns) / 1e9 >= duration_s) break;
        km_pipeline_stats_get(pipeline, &now);
        if (max_sets && now.framesets >= max_sets) break;
    }
    if (stop_requested) km_log(KM_LOG_INFO, "kinemad", "signal received, shutting down");
    km_pipeline_stop(pipeline);
    km_pipeline_stats_get(pipeline, &now);
    double seconds = (double)(km_time_now_ns() - start_ns) / 1e9;
    km_log(KM_LOG_INFO, "kinemad",
           "done: %llu frame sets in %.1f s (%.1f fps), %.1f markers/frame, %llu dropped frames,"
           " zmq %llu sent, osc %llu sent",
           (unsigned long long)now.framesets, seconds,
           seconds > 0 ? (double)now.framesets / seconds : 0.0,
           now.framesets ? (double)now.markers / (double)now.framesets : 0.0,
           (unsigned long long)now.dropped_frames, (unsigned long long)now.zmq_sent,
           (unsigned long long)now.osc_sent);
    km_pipeline_destroy(pipeline);
    if (markers_file && fclose(markers_file)) {
        km_log(KM_LOG_ERROR, "kinemad", "--markers-out %s: %s", markers_out, strerror(errno));
        rc = 1;
    }
    return rc;
}
