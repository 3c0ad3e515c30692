/* kinema replay: run the pipeline on a recording (source `replay`) and write the solved
 * markers as markers.csv, and/or publish them like kinemad does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/kinema.h"
#include "kinema/recording.h"

static const char USAGE[] =
    "usage: kinema replay REC.kmr [--markers FILE.csv] [options]\n"
    "\n"
    "Run the pipeline (detect -> reconstruct) on the camera images of a recording and write\n"
    "the 3D markers (formats.md markers.csv, time_ns as recorded) and/or publish them.\n"
    "\n"
    "options:\n"
    "  --markers FILE    write markers.csv (\"-\" = stdout)\n"
    "  --rig FILE        solve with this rig instead of the recording's embedded one\n"
    "  --realtime        pace frames at their recorded intervals (default: as fast as possible)\n"
    "  --loop            start again at the end (until --frames or Ctrl-C)\n"
    "  --frames N        stop after N solved frame sets\n"
    "  --publish         publish over ZeroMQ and OSC (defaults of kinemad, or below)\n"
    "  --zmq ENDPOINT    ZeroMQ PUB endpoint (implies --publish)\n"
    "  --osc HOST:PORT   OSC destination (implies --publish)\n"
    "Progress goes to stderr, a summary line to stdout unless markers go there.\n";

typedef struct replay_out {
    FILE *csv;
    uint64_t frames, markers;
} replay_out;

static void on_frame(void *user, const km_solved_frame *frame)
{
    replay_out *o = user;
    o->frames++;
    if (!frame->markers) return;
    o->markers += (uint64_t)frame->markers->count;
    if (o->csv) {
        km_marker_set set = *frame->markers;
        set.frame = frame->frame;
        set.time_ns = frame->capture_time_ns;
        km_markers_csv_write(o->csv, &set);
    }
}

int kinema_cmd_replay(int argc, char **argv)
{
    const char *path = NULL, *markers = NULL, *rig = NULL, *zmq = NULL, *osc = NULL, *v;
    bool realtime = false, loop = false, publish = false;
    long max_frames = 0;
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        }
        if (strcmp(argv[i], "--realtime") == 0) { realtime = true; i++; continue; }
        if (strcmp(argv[i], "--loop") == 0) { loop = true; i++; continue; }
        if (strcmp(argv[i], "--publish") == 0) { publish = true; i++; continue; }
        if (cli_option(argc, argv, &i, "--markers", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            markers = v;
        } else if (cli_option(argc, argv, &i, "--rig", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            rig = v;
        } else if (cli_option(argc, argv, &i, "--zmq", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            zmq = v;
            publish = true;
        } else if (cli_option(argc, argv, &i, "--osc", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            osc = v;
            publish = true;
        } else if (cli_option(argc, argv, &i, "--frames", &v)) {
            if (!v || !cli_parse_long(v, 1, 0x7fffffffL, &max_frames))
                return cli_usage_error("replay", USAGE, "--frames: expected a count >= 1");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("replay", USAGE, "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i++];
        } else {
            return cli_usage_error("replay", USAGE, "one recording only ('%s')", argv[i]);
        }
    }
    if (!path) return cli_usage_error("replay", USAGE, "no recording given");
    if (!markers && !publish)
        return cli_usage_error("replay", USAGE, "nothing to do: give --markers and/or --publish");

    km_pipeline_config pc = km_pipeline_config_default();
    pc.source = KM_PIPELINE_SOURCE_REPLAY;
    snprintf(pc.replay_path, sizeof pc.replay_path, "%s", path);
    pc.realtime = realtime;
    pc.replay.realtime = realtime;
    pc.replay.loop = loop;
    pc.replay.time = KM_REPLAY_TIME_ORIGINAL;
    if (rig) snprintf(pc.rig_path, sizeof pc.rig_path, "%s", rig);
    pc.publish_enabled = publish;
    if (zmq) snprintf(pc.publish.zmq_endpoint, sizeof pc.publish.zmq_endpoint, "%s", zmq);
    if (osc) {
        const char *colon = strrchr(osc, ':');
        if (!colon || colon == osc || (size_t)(colon - osc) >= sizeof pc.publish.osc_host)
            return cli_usage_error("replay", USAGE, "--osc: expected HOST:PORT");
        snprintf(pc.publish.osc_host, sizeof pc.publish.osc_host, "%.*s", (int)(colon - osc), osc);
        snprintf(pc.publish.osc_port, sizeof pc.publish.osc_port, "%s", colon + 1);
    }
    replay_out o = {NULL, 0, 0};
    if (markers) {
        o.csv = cli_open_output("replay", markers);
        if (!o.csv) return KINEMA_EXIT_FAILURE;
        km_markers_csv_write_header(o.csv);
    }
    km_status st;
    km_pipeline *p = km_pipeline_create(&pc, &st);
    if (!p || (km_pipeline_set_frame_callback(p, on_frame, &o), st = km_pipeline_start(p))) {
        fprintf(stderr, "kinema replay: %s\n", km_last_error());
        km_pipeline_destroy(p);
        if (o.csv) cli_close_output("replay", o.csv, markers);
        return KINEMA_EXIT_FAILURE;
    }
    uint64_t t0 = km_time_now_ns(), last = t0;
    int rc = KINEMA_EXIT_OK;
    for (;;) {
        int solved = 0;
        st = km_pipeline_step(p, 200000000ull, &solved);
        if (st == KM_ERR_END_OF_STREAM) break;
        if (st && st != KM_ERR_AGAIN && st != KM_ERR_CAPACITY)
            fprintf(stderr, "kinema replay: %s\n", km_last_error());
        if (max_frames && o.frames >= (uint64_t)max_frames) break;
        uint64_t now = km_time_now_ns();
        if (now - last > 1000000000ull) {
            fprintf(stderr, "\rkinema replay: %llu frame sets", (unsigned long long)o.frames);
            last = now;
        }
    }
    km_pipeline_stop(p);
    km_pipeline_stats stats;
    km_pipeline_stats_get(p, &stats);
    km_pipeline_destroy(p);
    if (o.csv && !cli_close_output("replay", o.csv, markers)) rc = KINEMA_EXIT_FAILURE;
    double s = (double)(km_time_now_ns() - t0) / 1e9;
    FILE *summary = markers && strcmp(markers, "-") == 0 ? stderr : stdout;
    fprintf(stderr, "\n");
    fprintf(summary, "%s: %llu frame sets in %.2f s (%.0f fps), %.1f markers/frame, %llu incomplete "
            "sets, %llu dropped frames\n", path, (unsigned long long)o.frames, s,
            s > 0 ? (double)o.frames / s : 0.0,
            o.frames ? (double)o.markers / (double)o.frames : 0.0,
            (unsigned long long)stats.incomplete_framesets,
            (unsigned long long)stats.dropped_frames);
    return rc;
}
