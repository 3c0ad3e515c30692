/* kinema record: write a recording (docs/recording.md). Source: the synthetic scene (every
 * camera of its rig, the rig embedded), optionally followed by the solved frames the pipeline
 * computes from those very images (a SOLVED stream of wire v1 bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/kinema.h"
#include "kinema/recording.h"

static const char USAGE[] =
    "usage: kinema record --synthetic --out FILE.kmr [options]\n"
    "\n"
    "Record every camera of the synthetic scene (8-bit images, the rig embedded) into a\n"
    "recording; with --solved, also the solved frames of the pipeline run on those images.\n"
    "\n"
    "options:\n"
    "  --synthetic          source: the synthetic scene (the only source without hardware)\n"
    "  --out FILE           the recording to write (required)\n"
    "  --frames N           frames per camera (default 120)\n"
    "  --config FILE        read the scene from the synthetic: section of a kinemad config\n"
    "  --cameras N          override synthetic camera_count\n"
    "  --size WxH           override synthetic image size\n"
    "  --rate HZ            override synthetic frame rate\n"
    "  --seed N             override synthetic seed\n"
    "  --solved             add a SOLVED stream: the pipeline's output for the recorded frames\n"
    "  --sync               fdatasync after every buffer write (survives power loss; slower)\n"
    "  --buffer-mb N        write buffer (default 4 MiB)\n"
    "Progress goes to stderr; a summary line to stdout.\n";

/* Solved frames gathered in memory (wire v1 bytes, a few KB each) while the pipeline reads
 * the finished recording; appended once it is done, so the replay sources read an indexed
 * file and not one being rewritten. */
typedef struct solved_log {
    uint8_t *bytes;
    size_t used, capacity;
    size_t max_frame;
    km_status status;
} solved_log;

static void log_solved(void *user, const km_solved_frame *frame)
{
    solved_log *log = user;
    /* Each entry: frame u64, time u64, length u64, then the bytes. */
    size_t need = 24 + log->max_frame;
    if (log->status) return;
    if (log->capacity - log->used < need) {
        size_t cap = 2 * log->capacity + need;
        uint8_t *grown = realloc(log->bytes, cap);
        if (!grown) {
            log->status = km_error(KM_ERR_NO_MEMORY, "no memory for solved frames");
            return;
        }
        log->bytes = grown;
        log->capacity = cap;
    }
    uint8_t *p = log->bytes + log->used;
    size_t len = 0;
    km_status st = km_wire_encode_frame(frame, p + 24, log->max_frame, &len);
    if (st) {
        log->status = st;
        return;
    }
    uint64_t head[3] = {frame->frame, frame->capture_time_ns, len};
    memcpy(p, head, sizeof head);
    log->used += 24 + len;
}

/* Run the pipeline on the recording's images (as fast as possible, original time stamps)
 * and append its solved frames as a new stream. */
static int add_solved(const char *path, double rate_hz)
{
    km_status st;
    solved_log log = {NULL, 0, 0, 0, KM_OK};
    km_pipeline_config pc = km_pipeline_config_default();
    pc.source = KM_PIPELINE_SOURCE_REPLAY;
    snprintf(pc.replay_path, sizeof pc.replay_path, "%s", path);
    pc.realtime = false;
    pc.replay.time = KM_REPLAY_TIME_ORIGINAL;
    pc.publish_enabled = false;
    log.max_frame = km_wire_frame_size_max(pc.reconstruct.max_markers,
                                           KM_PIPELINE_MAX_RIGID_BODIES, KM_SKELETON_MAX_PEOPLE,
                                           KM_PIPELINE_MAX_HANDS, KM_PIPELINE_MAX_EVENTS);
    km_pipeline *p = km_pipeline_create(&pc, &st);
    if (!p || (km_pipeline_set_frame_callback(p, log_solved, &log), st = km_pipeline_start(p))) {
        fprintf(stderr, "kinema record: --solved: %s\n", km_last_error());
        km_pipeline_destroy(p);
        return KINEMA_EXIT_FAILURE;
    }
    int solved;
    while ((st = km_pipeline_step(p, 1000000000ull, &solved)) != KM_ERR_END_OF_STREAM) {
        if (st && st != KM_ERR_AGAIN && st != KM_ERR_CAPACITY)
            fprintf(stderr, "kinema record: solve: %s\n", km_last_error());
    }
    km_pipeline_destroy(p);

    km_recorder *rec = log.status ? NULL : km_recorder_open_append(path, NULL, &st);
    km_recording_stream desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = KM_RECORDING_STREAM_SOLVED;
    desc.camera = -1;
    snprintf(desc.name, sizeof desc.name, "solved");
    desc.rate_hz = rate_hz;
    int stream = -1;
    uint64_t frames = 0;
    if (rec) st = km_recorder_add_stream(rec, &desc, &stream);
    for (size_t at = 0; rec && !st && at < log.used; frames++) {
        uint64_t head[3];
        memcpy(head, log.bytes + at, sizeof head);
        st = km_recorder_write_record(rec, stream, head[0], head[1], 0, log.bytes + at + 24,
                                      (size_t)head[2]);
        at += 24 + (size_t)head[2];
    }
    km_status close_st = km_recorder_close(rec);
    free(log.bytes);
    if (!rec || st || close_st || log.status) {
        fprintf(stderr, "kinema record: --solved: %s\n", km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    fprintf(stderr, "kinema record: %llu solved frames added (stream %d)\n",
            (unsigned long long)frames, stream);
    return KINEMA_EXIT_OK;
}

int kinema_cmd_record(int argc, char **argv)
{
    const char *out = NULL, *config = NULL, *v;
    bool synthetic = false, solved = false, sync = false;
    long frames = 120, cameras = -1, seed = -1, buffer_mb = 4;
    double rate = -1;
    int width = -1, height = -1;
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        }
        if (strcmp(argv[i], "--synthetic") == 0) { synthetic = true; i++; continue; }
        if (strcmp(argv[i], "--solved") == 0) { solved = true; i++; continue; }
        if (strcmp(argv[i], "--sync") == 0) { sync = true; i++; continue; }
        if (cli_option(argc, argv, &i, "--out", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            out = v;
        } else if (cli_option(argc, argv, &i, "--config", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            config = v;
        } else if (cli_option(argc, argv, &i, "--frames", &v)) {
            if (!v || !cli_parse_long(v, 1, 100000000, &frames))
                return cli_usage_error("record", USAGE, "--frames: expected a count >= 1");
        } else if (cli_option(argc, argv, &i, "--cameras", &v)) {
            if (!v || !cli_parse_long(v, 1, KM_MAX_CAMERAS, &cameras))
                return cli_usage_error("record", USAGE, "--cameras: expected 1..%d", KM_MAX_CAMERAS);
        } else if (cli_option(argc, argv, &i, "--seed", &v)) {
            if (!v || !cli_parse_long(v, 0, 0x7fffffffL, &seed))
                return cli_usage_error("record", USAGE, "--seed: expected a number");
        } else if (cli_option(argc, argv, &i, "--buffer-mb", &v)) {
            if (!v || !cli_parse_long(v, 1, 4096, &buffer_mb))
                return cli_usage_error("record", USAGE, "--buffer-mb: expected 1..4096");
        } else if (cli_option(argc, argv, &i, "--rate", &v)) {
            if (!v || !cli_parse_double(v, 1, 10000, &rate))
                return cli_usage_error("record", USAGE, "--rate: expected 1..10000 Hz");
        } else if (cli_option(argc, argv, &i, "--size", &v)) {
            if (!v || sscanf(v, "%dx%d", &width, &height) != 2 || width < 16 || height < 16 ||
                width > 8192 || height > 8192)
                return cli_usage_error("record", USAGE, "--size: expected WxH (16..8192)");
        } else {
            return cli_usage_error("record", USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!synthetic)
        return cli_usage_error("record", USAGE, "give a source (--synthetic; cameras: kinemad)");
    if (!out) return cli_usage_error("record", USAGE, "--out FILE is required");

    km_synthetic_config sc = km_synthetic_config_default();
    km_status st;
    if (config) {
        km_config *cfg = km_config_load(config, &st);
        if (!cfg || km_synthetic_config_read(cfg, "synthetic", &sc)) {
            fprintf(stderr, "kinema record: %s\n", km_last_error());
            km_config_destroy(cfg);
            return KINEMA_EXIT_USAGE;
        }
        km_config_destroy(cfg);
    }
    if (cameras > 0) sc.camera_count = (int)cameras;
    if (width > 0) { sc.width = width; sc.height = height; }
    if (rate > 0) sc.rate_hz = rate;
    if (seed >= 0) sc.seed = (uint64_t)seed;
    sc.duration_s = 0; /* --frames decides */

    km_synthetic_scene *scene = km_synthetic_scene_create(&sc, &st);
    if (!scene) {
        fprintf(stderr, "kinema record: %s\n", km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    km_recorder_config rc = km_recorder_config_default();
    rc.sync = sync;
    rc.buffer_bytes = (size_t)buffer_mb << 20;
    rc.expected_records = (size_t)frames * (size_t)sc.camera_count + 16;
    km_recorder *rec = km_recorder_create(out, &rc, &st);
    km_source *src[KM_MAX_CAMERAS] = {0};
    int ids[KM_MAX_CAMERAS];
    size_t bytes = (size_t)sc.width * (size_t)sc.height;
    uint8_t *buf = malloc(bytes);
    int rc_exit = KINEMA_EXIT_FAILURE;
    if (!rec || !buf || (st = km_recorder_set_rig(rec, km_synthetic_scene_rig(scene)))) goto done;
    /* One time base for all cameras (now), so frame k of every camera has the same stamp. */
    uint64_t start_ns = km_time_now_ns();
    for (int c = 0; c < sc.camera_count; c++) {
        src[c] = km_synthetic_source_create_at(scene, c, false, start_ns, &st);
        if (!src[c]) goto done;
        km_source_info info;
        km_source_describe(src[c], &info);
        if ((st = km_recorder_add_source_stream(rec, &info, &ids[c])) ||
            (st = km_source_start(src[c])))
            goto done;
    }
    uint64_t t0 = km_time_now_ns(), last_report = t0;
    for (long k = 0; k < frames; k++) {
        for (int c = 0; c < sc.camera_count; c++) {
            km_frame f;
            memset(&f, 0, sizeof f);
            f.data = buf;
            f.capacity = bytes;
            if ((st = km_source_next_frame(src[c], &f, 0)) || (st = km_recorder_write_frame(rec, ids[c], &f)))
                goto done;
        }
        uint64_t now = km_time_now_ns();
        if (now - last_report > 1000000000ull) {
            fprintf(stderr, "\rkinema record: frame %ld/%ld, %.0f MB", k + 1, frames,
                    (double)km_recorder_bytes(rec) / 1e6);
            last_report = now;
        }
    }
    uint64_t total = km_recorder_bytes(rec);
    st = km_recorder_close(rec);
    rec = NULL;
    if (st) goto done;
    double s = (double)(km_time_now_ns() - t0) / 1e9;
    if (s > 1.0) fprintf(stderr, "\n");
    printf("%s: %ld frames x %d cameras (%dx%d gray8 @ %.0f Hz), rig embedded, %.1f MB in %.2f s "
           "(%.0f MB/s incl. rendering)\n", out, frames, sc.camera_count, sc.width, sc.height,
           sc.rate_hz, (double)total / 1e6, s, s > 0 ? (double)total / 1e6 / s : 0.0);
    rc_exit = solved ? add_solved(out, sc.rate_hz) : KINEMA_EXIT_OK;
done:
    if (rc_exit == KINEMA_EXIT_FAILURE && st)
        fprintf(stderr, "kinema record: %s\n", km_last_error());
    for (int c = 0; c < KM_MAX_CAMERAS; c++) km_source_destroy(src[c]);
    if (rec) km_recorder_close(rec);
    free(buf);
    km_synthetic_scene_destroy(scene);
    return rc_exit;
}
