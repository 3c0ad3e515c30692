/* The engine of kinemad: capture threads -> frame sets -> detect -> reconstruct -> publish.
 *
 * Threads: each camera has its capture thread (capture/capture.c), and 2D detection runs
 * there too, as a frame processor, so the cameras' frames are detected in parallel (as
 * mocap cameras detect on board) and the solver thread only assembles, reconstructs and
 * publishes. Everything else below runs on the one thread that calls km_pipeline_step. Every buffer is sized from
 * the config and allocated in km_pipeline_create / km_pipeline_start; km_pipeline_step
 * allocates nothing (tests/pipeline counts it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinema/cv.h"
#include "kinema/pipeline.h"
#include "node.h"
#include "config_fields.h"
#include "stages.h"

/* Blobs of one frame, detected on the capture thread. */
typedef struct detected_frame {
    km_blob *blobs;
    int count;
    km_status status;
} detected_frame;

/* Per-camera detection state, touched only by that camera's capture thread (and read by the
 * solver thread through frame->user once the frame came out of the ring). A frame and its
 * slot travel together: slot k serves frame k mod slot_count; with slot_count = pool + 1
 * a slot is never reused while its frame is still in flight (at most `pool` frames are). */
typedef struct camera_detection {
    km_detector *detector;
    uint8_t *gray;          /* devices: the frame as 8-bit intensity when it comes in another
                               format (YUYV, 16-bit, RGB, MJPEG); NULL otherwise */
    size_t gray_bytes;
    int max_blobs;
    int slot_count;
    unsigned next_slot;
    detected_frame *slots;
    km_blob *blob_storage;
} camera_detection;

static void detect_on_capture_thread(void *user, km_frame *frame);
static km_status use_rig(km_pipeline *p, const km_rig *rig);

struct km_pipeline {
    km_pipeline_config cfg;
    km_synthetic_scene *scene;          /* owned; NULL for non-synthetic sources */
    double source_rate_hz;              /* nominal frame rate of the sources */
    int replay_stream[KM_MAX_CAMERAS];  /* replay: the recording's stream of each camera */
    /* source devices: opened in km_pipeline_create (a missing camera is an error there),
     * handed to their captures at start. */
    km_uvc_context *uvc;
    km_freenect_context *freenect;
    km_source *device_sources[KM_MAX_CAMERAS];
    km_source *sources[KM_MAX_CAMERAS]; /* borrowed from the captures (which own them until
                                            destroy): whether each camera's device is there */
    km_rig rig;                         /* what reconstruction solves with */
    int camera_count;
    km_capture *captures[KM_MAX_CAMERAS];
    km_frameset_assembler *assembler;
    camera_detection detection[KM_MAX_CAMERAS];
    km_reconstructor *reconstructor;
    km_tracker *tracker;                /* NULL when tracking is off */
    km_marker_set raw_markers;          /* reconstruct's output when tracking is on */
    km_marker_set predicted;            /* the tracker's predictions: reconstruct's prior */
    km_publisher *publisher;            /* NULL when publishing is off */
    km_control *control;                /* NULL when off; polled on the solver thread */
    km_reconstruct_config reconstruct_cfg; /* as created, for reload_calibration */
    km_observation_set observations;
    km_marker_set markers;
    km_stages *stages;                  /* rigid bodies, skeletons, hands, gestures; NULL in
                                           a node */
    km_camera_status camera_status[KM_MAX_CAMERAS];
    /* Recording on request (control start_recording): the frame sets' 2D observations and
     * the solved frames (wire bytes), written on this thread through the recorder's buffer. */
    km_recorder *recorder;
    char recording_path[512];
    int rec_obs_stream, rec_solved_stream;
    uint64_t rec_frames, rec_stop_ns; /* rec_stop_ns 0: until stop_recording */
    uint8_t *rec_buffer;
    size_t rec_buffer_bytes;
    /* Live wand calibration (control `calibrate`): fed every frame set's 2D observations
     * while collecting; solved in the session's own worker thread. */
    km_calib_session *calib;
    bool calib_feeding;
    km_pipeline_frame_fn on_frame;
    void *on_frame_user;
    km_pipeline_stats stats;
    bool started;
    /* Multi-host (docs/protocol.md "Multi-host"). */
    bool active[KM_MAX_CAMERAS];        /* cameras captured and detected in this process */
    km_node_solver *solver;             /* role solver: the nodes' streams */
    bool capturing;                     /* role node: captures started */
    uint64_t node_start_ns;             /* role node: km_pipeline_start time */
    uint64_t node_first_request_ns;     /* role node: first control request served */
    uint64_t node_finished_ns;          /* role node: when every source ended */
};

km_pipeline_config km_pipeline_config_default(void)
{
    km_pipeline_config c;
    memset(&c, 0, sizeof c);
    c.source = KM_PIPELINE_SOURCE_SYNTHETIC;
    c.synthetic = km_synthetic_config_default();
    c.realtime = true;
    c.pool_frames = 16;
    c.frameset_timeout_ns = 0; /* three frame periods */
    c.detect = km_detect_config_default();
    c.reconstruct = km_reconstruct_config_default();
    c.track_enabled = true;
    c.track = km_tracker_config_default();
    c.publish = km_publisher_config_default();
    c.publish_enabled = true;
    c.control = km_control_config_default();
    c.replay = km_replay_config_default();
    c.role = KM_PIPELINE_ROLE_SINGLE;
    snprintf(c.node_publish, sizeof c.node_publish, "tcp://127.0.0.1:5557");
    c.node_wait_ns = 10000000000ull;
    c.solver_timeout_ns = 1000000000ull;
    c.solver_max_pending = 128;
    c.rigid_enabled = true;
    c.rigid = km_rigid_config_default();
    c.skeleton_enabled = true; /* the default source is the synthetic actor */
    c.skeleton = km_skeleton_solver_config_default();
    c.skeleton_height_m = 1.75;
    c.gesture_enabled = true;
    c.gesture = km_gesture_engine_config_default();
    /* The gaze comes from the skeleton's head, whose rest pose faces +Z (a headset rigid
     * body's convention, -Z, is the engine's own default). */
    c.gesture.handeye.head_forward = km_vec3_make(0, 0, 1);
    c.vmc = km_vmc_config_default();
    c.events = km_event_sender_config_default();
    c.input = km_input_config_default();
    return c;
}

/* Camera indices at `path` (a sequence of ints) -> bit mask and list. */
static km_status read_cameras(const km_config *cfg, const char *path, uint64_t *mask,
                              int *list, int *count)
{
    double v[KM_MAX_CAMERAS];
    size_t n = 0;
    km_status st = km_config_get_doubles(cfg, path, v, KM_MAX_CAMERAS, &n);
    if (st == KM_ERR_NOT_FOUND)
        return km_error(KM_ERR_PARSE, "%s: %s: required (the rig cameras, e.g. [0, 1, 2, 3])",
                        km_config_name(cfg), path);
    if (st) return st;
    *mask = 0;
    if (count) *count = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (int)v[i];
        if ((double)c != v[i] || c < 0 || c >= KM_MAX_CAMERAS || (*mask >> c & 1))
            return km_error(KM_ERR_PARSE, "%s:%d: %s: camera %g is not a rig index 0..%d or "
                            "is listed twice", km_config_name(cfg), km_config_line(cfg, path),
                            path, v[i], KM_MAX_CAMERAS - 1);
        *mask |= 1ull << c;
        if (list) list[(*count)++] = c;
    }
    if (!*mask)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: no camera", km_config_name(cfg),
                        km_config_line(cfg, path), path);
    return KM_OK;
}

/* sources: [{type: uvc|freenect, camera: N, ...}] (docs/capture.md "Configuration"). */
static km_status read_devices(const km_config *cfg, km_pipeline_config *out)
{
    size_t n = km_config_count(cfg, "sources");
    if (n == 0 || n > KM_MAX_CAMERAS)
        return km_error(KM_ERR_PARSE, "%s:%d: sources: 1 to %d devices expected (a list of "
                        "{type: uvc|freenect, camera: N, ...})", km_config_name(cfg),
                        km_config_line(cfg, "sources"), KM_MAX_CAMERAS);
    uint64_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        char path[32], type[16];
        snprintf(path, sizeof path, "sources.%zu", i);
        char type_path[48];
        snprintf(type_path, sizeof type_path, "%s.type", path);
        km_status st = km_config_get_string(cfg, type_path, "", type, sizeof type);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        km_pipeline_device *d = &out->devices[i];
        memset(d, 0, sizeof *d);
        int camera;
        if (strcmp(type, "uvc") == 0) {
            d->kind = KM_PIPELINE_DEVICE_UVC;
            d->uvc = km_uvc_config_default();
            d->uvc.camera = -1;
            if ((st = km_uvc_config_read(cfg, path, &d->uvc))) return st;
            camera = d->uvc.camera;
        } else if (strcmp(type, "freenect") == 0) {
            d->kind = KM_PIPELINE_DEVICE_FREENECT;
            d->freenect = km_freenect_config_default();
            d->freenect.camera = -1;
            if ((st = km_freenect_config_read(cfg, path, &d->freenect))) return st;
            camera = d->freenect.camera;
        } else {
            return km_error(KM_ERR_PARSE, "%s:%d: %s: type: expected uvc or freenect, got '%s'",
                            km_config_name(cfg), km_config_line(cfg, path), path, type);
        }
        if (camera < 0 || camera >= KM_MAX_CAMERAS || (seen >> camera & 1))
            return km_error(KM_ERR_PARSE, "%s:%d: %s: camera: each device needs its own rig "
                            "index 0..%d", km_config_name(cfg), km_config_line(cfg, path), path,
                            KM_MAX_CAMERAS - 1);
        seen |= 1ull << camera;
    }
    out->device_count = (int)n;
    return KM_OK;
}

/* role: single|node|solver, node: {cameras, publish, wait_ms},
 * solver: {nodes: [{data, control, cameras}], timeout_ms, max_pending} (docs/config.md). */
static km_status read_multihost(const km_config *cfg, km_pipeline_config *out)
{
    static const char *const node_keys[] = {"cameras", "publish", "wait_ms", NULL};
    static const char *const solver_keys[] = {"nodes", "timeout_ms", "max_pending", NULL};
    static const char *const link_keys[] = {"data", "control", "cameras", NULL};
    char role[16];
    km_status st = km_config_get_string(cfg, "role", "single", role, sizeof role);
    if (st && st != KM_ERR_NOT_FOUND) return st;
    if (strcmp(role, "single") == 0)
        out->role = KM_PIPELINE_ROLE_SINGLE;
    else if (strcmp(role, "node") == 0)
        out->role = KM_PIPELINE_ROLE_NODE;
    else if (strcmp(role, "solver") == 0)
        out->role = KM_PIPELINE_ROLE_SOLVER;
    else
        return km_error(KM_ERR_PARSE, "%s:%d: role: expected single, node or solver, got '%s'",
                        km_config_name(cfg), km_config_line(cfg, "role"), role);
    if (out->role == KM_PIPELINE_ROLE_NODE) {
        if ((st = km_config_check_keys(cfg, "node", node_keys))) return st;
        uint64_t mask;
        if ((st = read_cameras(cfg, "node.cameras", &mask, out->node_cameras,
                               &out->node_camera_count)))
            return st;
        st = km_config_get_string(cfg, "node.publish", out->node_publish, out->node_publish,
                                  sizeof out->node_publish);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        long wait_ms;
        st = km_config_get_int(cfg, "node.wait_ms", (long)(out->node_wait_ns / 1000000), 0,
                               3600000, &wait_ms);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->node_wait_ns = (uint64_t)wait_ms * 1000000ull;
    } else if (km_config_has(cfg, "node")) {
        return km_error(KM_ERR_PARSE, "%s:%d: node: only read with role: node",
                        km_config_name(cfg), km_config_line(cfg, "node"));
    }
    if (out->role == KM_PIPELINE_ROLE_SOLVER) {
        if ((st = km_config_check_keys(cfg, "solver", solver_keys))) return st;
        size_t n = km_config_count(cfg, "solver.nodes");
        if (n < 1 || n > KM_PIPELINE_MAX_NODES)
            return km_error(KM_ERR_PARSE, "%s:%d: solver.nodes: expected a list of 1..%d nodes "
                            "({data, control, cameras})", km_config_name(cfg),
                            km_config_line(cfg, "solver"), KM_PIPELINE_MAX_NODES);
        out->solver_node_count = (int)n;
        for (size_t i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof path, "solver.nodes.%zu", i);
            if ((st = km_config_check_keys(cfg, path, link_keys))) return st;
            snprintf(path, sizeof path, "solver.nodes.%zu.data", i);
            st = km_config_get_string(cfg, path, "", out->solver_nodes[i],
                                      sizeof out->solver_nodes[i]);
            if (st == KM_ERR_NOT_FOUND)
                return km_error(KM_ERR_PARSE, "%s:%d: %s: required (the node's node.publish)",
                                km_config_name(cfg), km_config_line(cfg, "solver.nodes"), path);
            if (st) return st;
            snprintf(path, sizeof path, "solver.nodes.%zu.control", i);
            st = km_config_get_string(cfg, path, "", out->solver_controls[i],
                                      sizeof out->solver_controls[i]);
            if (st && st != KM_ERR_NOT_FOUND) return st;
            snprintf(path, sizeof path, "solver.nodes.%zu.cameras", i);
            if ((st = read_cameras(cfg, path, &out->solver_node_cameras[i], NULL, NULL)))
                return st;
        }
        long v;
        st = km_config_get_int(cfg, "solver.timeout_ms",
                               (long)(out->solver_timeout_ns / 1000000), 10, 600000, &v);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->solver_timeout_ns = (uint64_t)v * 1000000ull;
        st = km_config_get_int(cfg, "solver.max_pending", out->solver_max_pending, 2, 100000, &v);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->solver_max_pending = (int)v;
    } else if (km_config_has(cfg, "solver")) {
        return km_error(KM_ERR_PARSE, "%s:%d: solver: only read with role: solver",
                        km_config_name(cfg), km_config_line(cfg, "solver"));
    }
    return KM_OK;
}

km_status km_pipeline_config_read(const km_config *cfg, km_pipeline_config *out)
{
    static const char *const top_keys[] = {"source", "synthetic", "replay", "sources",
                                           "realtime", "rig",
                                           "pool_frames", "detect", "reconstruct",
                                           "track", "transport", "role", "node", "solver",
                                           "rigid", "skeleton", "gesture", NULL};
    static const char *const track_keys[] = {"enabled", "gate_m", "max_gap_frames",
                                             "birth_frames", "fill_gaps", "smoothing_alpha",
                                             "smoothing_beta", NULL};
    static const char *const detect_keys[] = {"threshold", "min_area_px", "max_area_px",
                                              "min_roundness", "max_blobs", NULL};
    static const char *const reconstruct_keys[] = {"max_epipolar_px", "max_residual_px",
                                                   "min_views", "max_markers",
                                                   "max_observations", NULL};
    km_status st = km_config_check_keys(cfg, "", top_keys);
    if (st) return st;

    char source[32];
    st = km_config_get_string(cfg, "source", "synthetic", source, sizeof source);
    if (st && st != KM_ERR_NOT_FOUND) return st;
    if (strcmp(source, "synthetic") == 0) {
        out->source = KM_PIPELINE_SOURCE_SYNTHETIC;
    } else if (strcmp(source, "replay") == 0) {
        out->source = KM_PIPELINE_SOURCE_REPLAY;
    } else if (strcmp(source, "devices") == 0) {
        out->source = KM_PIPELINE_SOURCE_DEVICES;
    } else {
        return km_error(KM_ERR_PARSE, "%s:%d: source: unknown source '%s' (known: synthetic, "
                        "replay, devices)", km_config_name(cfg), km_config_line(cfg, "source"),
                        source);
    }
    if ((st = km_synthetic_config_read(cfg, "synthetic", &out->synthetic))) return st;
    if (out->source == KM_PIPELINE_SOURCE_REPLAY || km_config_has(cfg, "replay")) {
        /* replay: {path: rec.kmr, realtime: true, loop: false, time: now|original} */
        static const char *const replay_keys[] = {"path", "realtime", "loop", "time", NULL};
        if ((st = km_config_check_keys(cfg, "replay", replay_keys))) return st;
        st = km_config_get_string(cfg, "replay.path", "", out->replay_path,
                                  sizeof out->replay_path);
        if (st == KM_ERR_NOT_FOUND && out->source == KM_PIPELINE_SOURCE_REPLAY)
            return km_error(KM_ERR_PARSE, "%s:%d: source: replay needs replay.path",
                            km_config_name(cfg), km_config_line(cfg, "source"));
        if (st && st != KM_ERR_NOT_FOUND) return st;
        bool flag;
        st = km_config_get_bool(cfg, "replay.realtime", out->replay.realtime, &flag);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->replay.realtime = flag;
        st = km_config_get_bool(cfg, "replay.loop", out->replay.loop, &flag);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->replay.loop = flag;
        char time_mode[16];
        st = km_config_get_string(cfg, "replay.time", "now", time_mode, sizeof time_mode);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        if (strcmp(time_mode, "now") == 0)
            out->replay.time = KM_REPLAY_TIME_SHIFT;
        else if (strcmp(time_mode, "original") == 0)
            out->replay.time = KM_REPLAY_TIME_ORIGINAL;
        else
            return km_error(KM_ERR_PARSE, "%s:%d: replay.time: expected now or original, got '%s'",
                            km_config_name(cfg), km_config_line(cfg, "replay.time"), time_mode);
    }

    if (out->source == KM_PIPELINE_SOURCE_DEVICES || km_config_has(cfg, "sources")) {
        if ((st = read_devices(cfg, out))) return st;
    }

    bool realtime;
    st = km_config_get_bool(cfg, "realtime", out->realtime, &realtime);
    if (st && st != KM_ERR_NOT_FOUND) return st;
    out->realtime = realtime;
    st = km_config_get_string(cfg, "rig", "", out->rig_path, sizeof out->rig_path);
    if (st && st != KM_ERR_NOT_FOUND) return st;
    long pool;
    st = km_config_get_int(cfg, "pool_frames", (long)out->pool_frames, 2, 1024, &pool);
    if (st && st != KM_ERR_NOT_FOUND) return st;
    out->pool_frames = (size_t)pool;

    if (km_config_has(cfg, "detect")) {
        if ((st = km_config_check_keys(cfg, "detect", detect_keys))) return st;
        if ((st = km_field_int(cfg, "detect.threshold", 1, 254, &out->detect.threshold))) return st;
        if ((st = km_field_int(cfg, "detect.min_area_px", 1, 1000000, &out->detect.min_area_px)))
            return st;
        if ((st = km_field_int(cfg, "detect.max_area_px", 1, 10000000, &out->detect.max_area_px)))
            return st;
        if ((st = km_field_double(cfg, "detect.min_roundness", 0.0, 1.0,
                              &out->detect.min_roundness)))
            return st;
        if ((st = km_field_int(cfg, "detect.max_blobs", 1, 65536, &out->detect.max_blobs))) return st;
    }
    if (km_config_has(cfg, "reconstruct")) {
        if ((st = km_config_check_keys(cfg, "reconstruct", reconstruct_keys))) return st;
        if ((st = km_field_double(cfg, "reconstruct.max_epipolar_px", 0.01, 100.0,
                              &out->reconstruct.max_epipolar_px)))
            return st;
        if ((st = km_field_double(cfg, "reconstruct.max_residual_px", 0.01, 100.0,
                              &out->reconstruct.max_residual_px)))
            return st;
        if ((st = km_field_int(cfg, "reconstruct.min_views", 2, KM_MAX_CAMERAS,
                           &out->reconstruct.min_views)))
            return st;
        if ((st = km_field_int(cfg, "reconstruct.max_markers", 1, 65536,
                           &out->reconstruct.max_markers)))
            return st;
        if ((st = km_field_int(cfg, "reconstruct.max_observations", 1, 1 << 20,
                           &out->reconstruct.max_observations)))
            return st;
    }
    if (km_config_has(cfg, "track")) {
        if ((st = km_config_check_keys(cfg, "track", track_keys))) return st;
        bool b;
        st = km_config_get_bool(cfg, "track.enabled", out->track_enabled, &b);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->track_enabled = b;
        st = km_config_get_bool(cfg, "track.fill_gaps", out->track.fill_gaps, &b);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->track.fill_gaps = b;
        if ((st = km_field_double(cfg, "track.gate_m", 0.001, 1.0, &out->track.gate_m))) return st;
        if ((st = km_field_int(cfg, "track.max_gap_frames", 0, 10000, &out->track.max_gap_frames)))
            return st;
        if ((st = km_field_int(cfg, "track.birth_frames", 1, 1000, &out->track.birth_frames)))
            return st;
        if ((st = km_field_double(cfg, "track.smoothing_alpha", 0.01, 1.0,
                              &out->track.smoothing_alpha)))
            return st;
        if ((st = km_field_double(cfg, "track.smoothing_beta", 0.0, 1.0,
                              &out->track.smoothing_beta)))
            return st;
    }
    if (km_config_has(cfg, "transport")) {
        if ((st = km_publisher_config_read(cfg, "transport", &out->publish))) return st;
        if ((st = km_control_config_read(cfg, "transport.control", &out->control))) return st;
    }
    /* Skeletons by default only on the synthetic actor: elsewhere the people and their
     * marker sets are the operator's to declare (`skeleton:`). */
    if (out->source != KM_PIPELINE_SOURCE_SYNTHETIC ||
        out->synthetic.scene != KM_SYNTHETIC_SCENE_ACTOR)
        out->skeleton_enabled = false;
    if ((st = km_stages_config_read(cfg, out))) return st;
    if (out->source == KM_PIPELINE_SOURCE_DEVICES && !out->rig_path[0])
        return km_error(KM_ERR_PARSE, "%s:%d: source: devices needs rig: (the calibration of "
                        "the cameras, kinema calibrate)", km_config_name(cfg),
                        km_config_line(cfg, "source"));
    return read_multihost(cfg, out);
}

/* Source `replay`: the rig (`rig:` or the recording's own) and, for each camera of it, the
 * recording's 8-bit image stream that feeds it. */
static km_status open_replay(km_pipeline *p)
{
    const km_pipeline_config *cfg = &p->cfg;
    km_status st;
    km_recording *rec = km_recording_open(cfg->replay_path, &st);
    if (!rec) return st;
    if (cfg->rig_path[0]) {
        st = km_rig_load(cfg->rig_path, &p->rig);
    } else if (km_recording_rig(rec)) {
        p->rig = *km_recording_rig(rec);
        st = KM_OK;
    } else {
        st = km_error(KM_ERR_NOT_FOUND, "%s: the recording embeds no rig: give one with rig:",
                      cfg->replay_path);
    }
    for (int c = 0; c < KM_MAX_CAMERAS; c++) p->replay_stream[c] = -1;
    for (int i = 0; st == KM_OK && i < km_recording_stream_count(rec); i++) {
        const km_recording_stream *s = km_recording_stream_get(rec, i);
        if (s->kind != KM_RECORDING_STREAM_IMAGES || s->format != KM_PIXEL_GRAY8 ||
            s->camera < 0 || s->camera >= p->rig.camera_count || p->replay_stream[s->camera] >= 0)
            continue;
        const km_camera *cam = &p->rig.cameras[s->camera];
        if (s->width != cam->width || s->height != cam->height)
            st = km_error(KM_ERR_INVALID_ARGUMENT, "%s: stream %d is %dx%d, rig camera %d is %dx%d",
                          cfg->replay_path, i, s->width, s->height, s->camera, cam->width,
                          cam->height);
        p->replay_stream[s->camera] = i;
        if (s->rate_hz > p->source_rate_hz) p->source_rate_hz = s->rate_hz;
    }
    for (int c = 0; st == KM_OK && c < p->rig.camera_count; c++)
        if (p->replay_stream[c] < 0)
            st = km_error(KM_ERR_NOT_FOUND, "%s: no 8-bit image stream for rig camera %d",
                          cfg->replay_path, c);
    if (p->source_rate_hz <= 0) p->source_rate_hz = 120.0;
    km_recording_close(rec);
    return st;
}

/* Source `devices`: the rig from `rig:`, each of its cameras opened from its `sources:` entry
 * (a device per rig camera; the frame size must be the calibrated one). */
static km_status open_devices(km_pipeline *p)
{
    const km_pipeline_config *cfg = &p->cfg;
    km_status st = km_rig_load(cfg->rig_path, &p->rig);
    if (st) return st;
    int device_of[KM_MAX_CAMERAS];
    for (int c = 0; c < KM_MAX_CAMERAS; c++) device_of[c] = -1;
    for (int i = 0; i < cfg->device_count; i++) {
        const km_pipeline_device *d = &cfg->devices[i];
        int c = d->kind == KM_PIPELINE_DEVICE_UVC ? d->uvc.camera : d->freenect.camera;
        if (c >= p->rig.camera_count)
            return km_error(KM_ERR_INVALID_ARGUMENT, "sources.%d: camera %d is not in the rig "
                            "%s (%d cameras)", i, c, cfg->rig_path, p->rig.camera_count);
        device_of[c] = i;
    }
    for (int c = 0; c < p->rig.camera_count; c++) {
        if (device_of[c] >= 0) continue;
        if (cfg->role == KM_PIPELINE_ROLE_NODE) continue; /* checked against node cameras */
        return km_error(KM_ERR_INVALID_ARGUMENT, "sources: no device for rig camera %d (%s)", c,
                        p->rig.cameras[c].name);
    }
    p->source_rate_hz = 0;
    for (int c = 0; c < p->rig.camera_count; c++) {
        int i = device_of[c];
        if (i < 0) continue;
        if (cfg->role == KM_PIPELINE_ROLE_NODE) {
            bool mine = false;
            for (int k = 0; k < cfg->node_camera_count; k++) mine |= cfg->node_cameras[k] == c;
            if (!mine) continue;
        }
        const km_pipeline_device *d = &cfg->devices[i];
        km_source *src;
        if (d->kind == KM_PIPELINE_DEVICE_UVC) {
            if (!p->uvc && !(p->uvc = km_uvc_context_create(&st))) return st;
            src = km_uvc_source_create(p->uvc, &d->uvc, NULL, &st);
        } else {
            if (!p->freenect && !(p->freenect = km_freenect_context_create(&st))) return st;
            src = km_freenect_source_create(p->freenect, &d->freenect, &st);
        }
        if (!src) return st;
        p->device_sources[c] = src;
        km_source_info info;
        km_source_describe(src, &info);
        const km_camera *cam = &p->rig.cameras[c];
        if (info.width != cam->width || info.height != cam->height)
            return km_error(KM_ERR_INVALID_ARGUMENT, "sources.%d: %s %s delivers %dx%d but rig "
                            "camera %d is calibrated at %dx%d (set width/height)", i,
                            info.backend, info.name, info.width, info.height, c, cam->width,
                            cam->height);
        if (info.format == KM_PIXEL_DEPTH16)
            return km_error(KM_ERR_UNSUPPORTED, "sources.%d: a depth stream has no marker images: "
                            "use the Kinect's IR stream (stream: ir8) as a mocap camera", i);
        if (info.rate_hz > p->source_rate_hz) p->source_rate_hz = info.rate_hz;
        km_log(KM_LOG_INFO, "pipeline", "camera %d: %s %s (serial %s) %dx%d @ %.1f Hz", c,
               info.backend, info.name, info.serial, info.width, info.height, info.rate_hz);
    }
    if (p->source_rate_hz <= 0) p->source_rate_hz = 30.0;
    return KM_OK;
}

/* ------------------------------------------------- control socket handlers
 * They run on the solver thread (km_control_poll is called from km_pipeline_step), so they
 * may touch the pipeline without locks. */

/* The pipeline's part of the `status` message: each camera's state (current even when no
 * frame is solved, e.g. every camera unplugged: the status still ticks), then a solver's node
 * table. Runs on the stepping thread, like the state updates. snprintf's contract: the length
 * the text needs. */
static size_t pipeline_status_json(void *user, char *out, size_t size)
{
    const km_pipeline *p = user;
    size_t len = 0;
    len += (size_t)snprintf(out, size, ",\"camera_states\":[");
    for (int c = 0; c < p->camera_count; c++)
        len += (size_t)snprintf(len < size ? out + len : NULL, len < size ? size - len : 0,
                                "%s\"%s\"", c ? "," : "",
                                km_camera_state_name(p->camera_status[c].state));
    len += (size_t)snprintf(len < size ? out + len : NULL, len < size ? size - len : 0, "]");
    if (p->solver)
        len += km_node_solver_status_json(p->solver, len < size ? out + len : NULL,
                                          len < size ? size - len : 0);
    return len;
}

static km_status control_list_cameras(void *user, const km_control_request *request,
                                      km_control_reply *reply)
{
    (void)request;
    km_pipeline *p = user;
    char json[8192];
    size_t len = 0;
    len += (size_t)snprintf(json + len, sizeof json - len, "[");
    for (int c = 0; c < p->camera_count && len < sizeof json; c++) {
        km_source_info info;
        memset(&info, 0, sizeof info);
        if (p->captures[c]) km_capture_describe(p->captures[c], &info);
        km_capture_stats cs = {0};
        if (p->captures[c]) km_capture_stats_get(p->captures[c], &cs);
        char name[2 * KM_NAME_MAX];
        km_json_escape(name, sizeof name, p->rig.cameras[c].name);
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "%s{\"index\":%d,\"name\":\"%s\",\"backend\":\"%s\","
                                "\"state\":\"%s\",\"width\":%d,\"height\":%d,"
                                "\"rate_hz\":%.3f,\"frames\":%llu,\"dropped\":%llu,"
                                "\"errors\":%llu}",
                                c ? "," : "", c, name, info.backend[0] ? info.backend : "none",
                                km_camera_state_name(p->camera_status[c].state),
                                p->rig.cameras[c].width, p->rig.cameras[c].height,
                                info.rate_hz, (unsigned long long)cs.frames,
                                (unsigned long long)(cs.dropped_pool + cs.dropped_ring),
                                (unsigned long long)cs.errors);
    }
    if (len + 2 > sizeof json)
        return km_error(KM_ERR_CAPACITY, "list_cameras: too many cameras for one reply");
    snprintf(json + len, sizeof json - len, "]");
    return km_control_reply_add_json(reply, "cameras", json);
}

static km_status control_reload_calibration(void *user, const km_control_request *request,
                                            km_control_reply *reply)
{
    km_pipeline *p = user;
    const char *path = request->path[0] ? request->path : p->cfg.rig_path;
    if (!path[0])
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "reload_calibration: no path given and no rig configured (the source's "
                        "own calibration is in use)");
    /* Validate completely before touching the running solver: a bad file changes nothing. */
    km_rig rig;
    km_status st = km_rig_load(path, &rig);
    if (st) return st;
    if ((st = use_rig(p, &rig))) {
        char why[KM_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", km_last_error());
        return km_error(st, "reload_calibration: %s: %s", path, why);
    }
    km_log(KM_LOG_INFO, "pipeline", "calibration reloaded from %s", path);
    return km_control_reply_add_string(reply, "rig", path);
}

/* ------------------------------------------------- recording on request */

/* Bytes for one solved frame of any content the pipeline makes (every stream at its limit). */
static size_t solved_frame_bound(const km_pipeline *p)
{
    return km_wire_frame_size_max(p->reconstruct_cfg.max_markers, KM_PIPELINE_MAX_RIGID_BODIES,
                                  KM_SKELETON_MAX_PEOPLE, KM_PIPELINE_MAX_HANDS,
                                  KM_PIPELINE_MAX_EVENTS) +
           (size_t)p->reconstruct_cfg.max_observations * KM_WIRE_OBS2D_RECORD_SIZE;
}

static km_status recording_start(km_pipeline *p, const char *path, double duration_s)
{
    if (p->recorder)
        return km_error(KM_ERR_INVALID_ARGUMENT, "start_recording: already recording to %s "
                        "(stop_recording first)", p->recording_path);
    km_status st;
    km_recorder *rec = km_recorder_create(path, NULL, &st);
    if (!rec) return st;
    km_recording_stream obs, solved;
    memset(&obs, 0, sizeof obs);
    obs.kind = KM_RECORDING_STREAM_OBSERVATIONS;
    obs.camera = -1; /* every camera's blobs of a frame set in one record */
    snprintf(obs.name, sizeof obs.name, "observations");
    obs.rate_hz = p->source_rate_hz;
    solved = obs;
    solved.kind = KM_RECORDING_STREAM_SOLVED;
    snprintf(solved.name, sizeof solved.name, "solved");
    size_t bytes = solved_frame_bound(p);
    uint8_t *buf = malloc(bytes);
    if (!buf) st = km_error(KM_ERR_NO_MEMORY, "start_recording: out of memory");
    if (!st) st = km_recorder_set_rig(rec, &p->rig);
    if (!st) st = km_recorder_add_stream(rec, &obs, &p->rec_obs_stream);
    if (!st) st = km_recorder_add_stream(rec, &solved, &p->rec_solved_stream);
    if (st) {
        km_status keep = st;
        km_recorder_close(rec);
        unlink(path);
        free(buf);
        return keep;
    }
    p->recorder = rec;
    p->rec_buffer = buf;
    p->rec_buffer_bytes = bytes;
    p->rec_frames = 0;
    p->rec_stop_ns = duration_s > 0 ? km_time_now_ns() + (uint64_t)(duration_s * 1e9) : 0;
    snprintf(p->recording_path, sizeof p->recording_path, "%s", path);
    km_log(KM_LOG_INFO, "pipeline", "recording 2D observations and solved frames to %s%s", path,
           duration_s > 0 ? " (timed)" : "");
    return KM_OK;
}

static km_status recording_stop(km_pipeline *p, uint64_t *frames, uint64_t *bytes)
{
    if (!p->recorder)
        return km_error(KM_ERR_INVALID_ARGUMENT, "stop_recording: not recording");
    *frames = p->rec_frames;
    *bytes = km_recorder_bytes(p->recorder);
    km_status st = km_recorder_close(p->recorder);
    p->recorder = NULL;
    free(p->rec_buffer);
    p->rec_buffer = NULL;
    km_log(st ? KM_LOG_ERROR : KM_LOG_INFO, "pipeline", "recording %s: %llu frame sets%s%s",
           p->recording_path, (unsigned long long)*frames, st ? ": " : "",
           st ? km_last_error() : "");
    return st;
}

/* One solved frame into the recording. A write error ends the recording (what was written
 * stays readable: the recorder's records are self-delimiting) and the pipeline goes on. */
static void recording_write(km_pipeline *p, const km_solved_frame *frame)
{
    size_t len = 0;
    km_status st = km_recorder_write_observations(p->recorder, p->rec_obs_stream,
                                                  frame->observations);
    if (!st)
        st = km_wire_encode_frame(frame, p->rec_buffer, p->rec_buffer_bytes, &len);
    if (!st)
        st = km_recorder_write_record(p->recorder, p->rec_solved_stream, frame->frame,
                                      frame->capture_time_ns, 0, p->rec_buffer, len);
    if (st == KM_ERR_CAPACITY) {
        km_log(KM_LOG_WARN, "pipeline", "recording: frame %llu too large, skipped",
               (unsigned long long)frame->frame);
        return;
    }
    p->rec_frames++;
    uint64_t frames, bytes;
    if (st) {
        km_log(KM_LOG_ERROR, "pipeline", "recording %s stopped: %s", p->recording_path,
               km_last_error());
        recording_stop(p, &frames, &bytes);
    } else if (p->rec_stop_ns && km_time_now_ns() >= p->rec_stop_ns) {
        recording_stop(p, &frames, &bytes);
    }
}

static km_status control_start_recording(void *user, const km_control_request *request,
                                         km_control_reply *reply)
{
    km_pipeline *p = user;
    km_status st = recording_start(p, request->path, request->duration_s);
    if (!st) st = km_control_reply_add_string(reply, "path", request->path);
    return st;
}

static km_status control_stop_recording(void *user, const km_control_request *request,
                                        km_control_reply *reply)
{
    (void)request;
    km_pipeline *p = user;
    char path[512];
    snprintf(path, sizeof path, "%s", p->recording_path);
    uint64_t frames = 0, bytes = 0;
    km_status st = recording_stop(p, &frames, &bytes);
    if (st) return st;
    st = km_control_reply_add_string(reply, "path", path);
    if (!st) st = km_control_reply_add_int(reply, "frames", (long long)frames);
    if (!st) st = km_control_reply_add_int(reply, "bytes", (long long)bytes);
    return st;
}

/* ------------------------------------------------- live calibration */

static km_status calibrate_status_reply(km_pipeline *p, km_control_reply *reply)
{
    km_calib_session_progress pr;
    km_calib_session_get_progress(p->calib, &pr);
    km_status st = km_control_reply_add_string(reply, "state",
                                               km_calib_session_state_name(pr.state));
    if (!st) st = km_control_reply_add_string(reply, "phase",
                                              pr.phase == KM_CALIB_SESSION_GROUND ? "ground"
                                                                                  : "wand");
    if (!st) st = km_control_reply_add_double(reply, "fraction", pr.fraction);
    if (!st) st = km_control_reply_add_string(reply, "stage", pr.stage);
    if (!st) st = km_control_reply_add_int(reply, "wand_frames", pr.frames_kept);
    if (!st) st = km_control_reply_add_int(reply, "ground_frames", pr.ground_frames);
    char views[8 * KM_MAX_CAMERAS + 4];
    size_t len = 0;
    views[len++] = '[';
    for (int c = 0; c < pr.camera_count; c++)
        len += (size_t)snprintf(views + len, sizeof views - len, "%s%d", c ? "," : "",
                                pr.camera_views[c]);
    snprintf(views + len, sizeof views - len, "]");
    if (!st) st = km_control_reply_add_json(reply, "camera_views", views);
    if (!st && (pr.state == KM_CALIB_SESSION_FAILED || pr.state == KM_CALIB_SESSION_CANCELLED))
        st = km_control_reply_add_string(reply, "error", pr.error);
    if (!st && pr.state == KM_CALIB_SESSION_DONE) {
        km_rig rig;
        km_wand_result r;
        if (km_calib_session_get_result(p->calib, &rig, &r) == KM_OK) {
            st = km_control_reply_add_double(reply, "rms_px", r.rms_px);
            if (!st) st = km_control_reply_add_double(reply, "wand_length_error_rms_mm",
                                                      r.length_error_rms_mm);
            if (!st) st = km_control_reply_add_int(reply, "frames_used", r.frames_used);
            if (!st) st = km_control_reply_add_bool(reply, "ground", r.has_ground);
            if (!st) st = km_control_reply_add_double(reply, "solve_seconds", r.solve_seconds);
        }
    }
    return st;
}

/* Swap in a rig (same cameras): a new reconstructor first, so a failure changes nothing. */
static km_status use_rig(km_pipeline *p, const km_rig *rig)
{
    if (rig->camera_count != p->camera_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "the rig has %d cameras, the pipeline runs %d",
                        rig->camera_count, p->camera_count);
    km_status st;
    km_reconstructor *rec = km_reconstructor_create(&p->reconstruct_cfg, rig, &st);
    if (!rec) return st;
    km_reconstructor_destroy(p->reconstructor);
    p->reconstructor = rec;
    p->rig = *rig;
    if (p->tracker) km_tracker_reset(p->tracker); /* positions move to the new world frame */
    return KM_OK;
}

/* calibrate {"action": start|ground|solve|status|apply|cancel, "path"} — the operator's
 * wand calibration while the daemon runs (docs/calibration.md "Live calibration"). */
static km_status control_calibrate(void *user, const km_control_request *request,
                                   km_control_reply *reply)
{
    km_pipeline *p = user;
    const char *a = request->action;
    km_status st = KM_OK;
    if (strcmp(a, "start") == 0) {
        km_rig intrinsics = p->rig;
        if (request->path[0] && (st = km_rig_load(request->path, &intrinsics))) return st;
        if (intrinsics.camera_count != p->camera_count)
            return km_error(KM_ERR_INVALID_ARGUMENT, "calibrate: %s has %d cameras, the "
                            "pipeline runs %d", request->path, intrinsics.camera_count,
                            p->camera_count);
        km_calib_session_config cc = km_calib_session_config_default();
        cc.with_ground = false; /* only when the operator shows the L-frame (action ground) */
        km_calib_session *session = km_calib_session_create(&cc, &intrinsics, &st);
        if (!session) return st;
        km_calib_session_destroy(p->calib); /* a previous one is replaced */
        p->calib = session;
        p->calib_feeding = true;
        km_log(KM_LOG_INFO, "pipeline", "calibration: collecting the wand wave");
        return calibrate_status_reply(p, reply);
    }
    if (!p->calib)
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibrate %s: no calibration running (action "
                        "start first)", a);
    if (strcmp(a, "ground") == 0) {
        if ((st = km_calib_session_set_phase(p->calib, KM_CALIB_SESSION_GROUND))) return st;
        km_log(KM_LOG_INFO, "pipeline", "calibration: collecting the L-frame on the floor");
    } else if (strcmp(a, "solve") == 0) {
        p->calib_feeding = false;
        if ((st = km_calib_session_start(p->calib))) {
            p->calib_feeding = true;
            return st;
        }
        km_log(KM_LOG_INFO, "pipeline", "calibration: solving in the background");
    } else if (strcmp(a, "apply") == 0) {
        km_rig rig;
        km_wand_result r;
        if ((st = km_calib_session_get_result(p->calib, &rig, &r))) return st;
        if (request->path[0] && (st = km_rig_save(request->path, &rig, NULL))) return st;
        if ((st = use_rig(p, &rig))) return st;
        km_log(KM_LOG_INFO, "pipeline", "calibration applied (RMS %.3f px%s%s)", r.rms_px,
               request->path[0] ? ", saved to " : "", request->path);
        if (request->path[0]) snprintf(p->cfg.rig_path, sizeof p->cfg.rig_path, "%s",
                                       request->path);
    } else if (strcmp(a, "cancel") == 0) {
        km_calib_session_destroy(p->calib); /* cancels and joins a running solve */
        p->calib = NULL;
        p->calib_feeding = false;
        return km_control_reply_add_string(reply, "state", "cancelled");
    }
    return calibrate_status_reply(p, reply);
}

/* define_rigid: a new body from tracked markers of the last solved frame. */
static km_status control_define_rigid(void *user, const km_control_request *request,
                                      km_control_reply *reply)
{
    km_pipeline *p = user;
    uint32_t id = 0;
    km_status st = km_stages_define_rigid(p->stages, request->name, request->marker_ids,
                                          request->marker_count, &p->markers, &id);
    if (st) return st;
    st = km_control_reply_add_int(reply, "id", (long long)id);
    if (!st) st = km_control_reply_add_string(reply, "name", request->name);
    return st;
}

/* A node's `status`: its clock (the solver's clock-offset exchange reads "time_ns"), its
 * cameras, and the publisher's status. The first request also releases the node's capture
 * (km_pipeline_step): the solver is there and subscribed. */
static km_status control_node_status(void *user, const km_control_request *request,
                                     km_control_reply *reply)
{
    (void)request;
    km_pipeline *p = user;
    uint64_t now = km_time_now_ns();
    if (!p->node_first_request_ns) p->node_first_request_ns = now;
    km_status st = km_control_reply_add_int(reply, "time_ns", (long long)now);
    if (!st) st = km_control_reply_add_string(reply, "role", "node");
    char cams[4 * KM_MAX_CAMERAS + 4];
    size_t len = 0;
    cams[len++] = '[';
    for (int i = 0; i < p->cfg.node_camera_count; i++)
        len += (size_t)snprintf(cams + len, sizeof cams - len, "%s%d", i ? "," : "",
                                p->cfg.node_cameras[i]);
    snprintf(cams + len, sizeof cams - len, "]");
    if (!st) st = km_control_reply_add_json(reply, "cameras", cams);
    if (!st) st = km_control_reply_add_bool(reply, "capturing", p->capturing);
    char status[4096];
    size_t n = km_publisher_status_json(p->publisher, now, status, sizeof status);
    if (!st && n) st = km_control_reply_add_json(reply, "status", status);
    return st;
}

km_pipeline *km_pipeline_create(const km_pipeline_config *cfg, km_status *err)
{
    km_status st = KM_OK;
    km_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory");
        goto fail;
    }
    p->cfg = *cfg;
    if (cfg->source == KM_PIPELINE_SOURCE_REPLAY) {
        if ((st = open_replay(p))) goto fail;
    } else if (cfg->source == KM_PIPELINE_SOURCE_DEVICES) {
        if ((st = open_devices(p))) goto fail;
    } else {
        p->source_rate_hz = cfg->synthetic.rate_hz;
        p->scene = km_synthetic_scene_create(&cfg->synthetic, &st);
        if (!p->scene) goto fail;
        p->rig = *km_synthetic_scene_rig(p->scene);
        if (cfg->rig_path[0]) {
            /* Solve with an operator's calibration instead of the scene's exact one. */
            if ((st = km_rig_load(cfg->rig_path, &p->rig))) goto fail;
            if (p->rig.camera_count != km_synthetic_scene_rig(p->scene)->camera_count) {
                st = km_error(KM_ERR_INVALID_ARGUMENT,
                              "%s: rig has %d cameras but the source has %d", cfg->rig_path,
                              p->rig.camera_count, km_synthetic_scene_rig(p->scene)->camera_count);
                goto fail;
            }
        }
    }
    p->camera_count = p->rig.camera_count;
    if (cfg->role == KM_PIPELINE_ROLE_NODE) {
        for (int i = 0; i < cfg->node_camera_count; i++) {
            if (cfg->node_cameras[i] >= p->camera_count) {
                st = km_error(KM_ERR_INVALID_ARGUMENT, "pipeline: node camera %d is not in the "
                              "rig (%d cameras)", cfg->node_cameras[i], p->camera_count);
                goto fail;
            }
            p->active[cfg->node_cameras[i]] = true;
        }
        if (!cfg->publish_enabled) {
            st = km_error(KM_ERR_INVALID_ARGUMENT, "pipeline: role node needs publishing on");
            goto fail;
        }
    } else if (cfg->role == KM_PIPELINE_ROLE_SINGLE) {
        for (int c = 0; c < p->camera_count; c++) p->active[c] = true;
    }

    int max_w = 0, max_h = 0;
    for (int c = 0; c < p->camera_count; c++) {
        if (p->rig.cameras[c].width > max_w) max_w = p->rig.cameras[c].width;
        if (p->rig.cameras[c].height > max_h) max_h = p->rig.cameras[c].height;
    }
    int slots = (int)cfg->pool_frames + 1;
    for (int c = 0; c < p->camera_count; c++) {
        if (!p->active[c]) continue;
        camera_detection *d = &p->detection[c];
        d->detector = km_detector_create(&cfg->detect, max_w, max_h, &st);
        if (!d->detector) goto fail;
        d->max_blobs = cfg->detect.max_blobs;
        d->slot_count = slots;
        d->slots = calloc((size_t)slots, sizeof *d->slots);
        d->blob_storage = calloc((size_t)slots * (size_t)d->max_blobs, sizeof *d->blob_storage);
        if (!d->slots || !d->blob_storage) {
            st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for blob buffers");
            goto fail;
        }
        for (int k = 0; k < slots; k++) d->slots[k].blobs = d->blob_storage + (size_t)k * (size_t)d->max_blobs;
        if (cfg->source == KM_PIPELINE_SOURCE_DEVICES) {
            d->gray_bytes = (size_t)max_w * (size_t)max_h;
            if (!(d->gray = malloc(d->gray_bytes))) {
                st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for image buffers");
                goto fail;
            }
        }
    }
    km_reconstruct_config rc = cfg->reconstruct;
    int obs_capacity = p->camera_count * cfg->detect.max_blobs;
    if (rc.max_observations < obs_capacity) rc.max_observations = obs_capacity;
    p->reconstruct_cfg = rc;
    p->reconstructor = km_reconstructor_create(&rc, &p->rig, &st);
    if (!p->reconstructor) goto fail;

    p->observations.items = calloc((size_t)obs_capacity, sizeof *p->observations.items);
    p->observations.capacity = obs_capacity;
    p->markers.items = calloc((size_t)rc.max_markers, sizeof *p->markers.items);
    p->markers.capacity = rc.max_markers;
    if (cfg->track_enabled) {
        km_tracker_config tc = cfg->track;
        if (tc.max_markers < rc.max_markers) tc.max_markers = rc.max_markers;
        if (p->source_rate_hz > 0) tc.frame_period_s = 1.0 / p->source_rate_hz;
        p->tracker = km_tracker_create(&tc, &st);
        if (!p->tracker) goto fail;
        p->raw_markers.items = calloc((size_t)rc.max_markers, sizeof *p->raw_markers.items);
        p->raw_markers.capacity = rc.max_markers;
        p->predicted.items = calloc((size_t)tc.max_markers, sizeof *p->predicted.items);
        p->predicted.capacity = tc.max_markers;
        if (!p->raw_markers.items || !p->predicted.items) {
            st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for marker buffers");
            goto fail;
        }
    }
    if (!p->observations.items || !p->markers.items) {
        st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for frame buffers");
        goto fail;
    }

    km_frameset_config fc = km_frameset_config_default();
    fc.camera_count = p->camera_count;
    fc.rate_hz = p->source_rate_hz;
    fc.timeout_ns = cfg->frameset_timeout_ns;
    /* A camera can run up to a whole pool ahead of the slowest one: room for that many sets. */
    fc.max_sets = 2 * (int)cfg->pool_frames;
    /* Unpaced sources lose no frame, so a set is only ever incomplete when a camera thread
     * is slow to be scheduled: wait for it (bounded) rather than split the set. */
    if (!cfg->realtime && fc.timeout_ns == 0) fc.timeout_ns = 2000000000ull;
    if (cfg->role == KM_PIPELINE_ROLE_SINGLE) {
        p->assembler = km_frameset_assembler_create(&fc, &st);
        if (!p->assembler) goto fail;
    } else if (cfg->role == KM_PIPELINE_ROLE_SOLVER) {
        p->solver = km_node_solver_create(cfg, p->camera_count, cfg->detect.max_blobs,
                                          p->source_rate_hz, &st);
        if (!p->solver) goto fail;
    }

    if (cfg->role != KM_PIPELINE_ROLE_NODE) {
        /* The synthetic actors give the stages their default bodies and subjects; a
         * calibration take (scene wand) has none. */
        const km_synthetic_scene *actors =
            p->scene && cfg->synthetic.scene == KM_SYNTHETIC_SCENE_ACTOR ? p->scene : NULL;
        p->stages = km_stages_create(cfg, actors, rc.max_markers, &st);
        if (!p->stages) goto fail;
    }
    for (int c = 0; c < p->camera_count; c++)
        p->camera_status[c].state = p->active[c] ? KM_CAMERA_STATE_MISSING
                                                 : KM_CAMERA_STATE_INACTIVE;

    if (cfg->publish_enabled) {
        km_publisher_config pc = cfg->publish;
        if (pc.max_markers < rc.max_markers) pc.max_markers = rc.max_markers;
        /* room for everything the live stages can put in a frame */
        if (pc.max_rigid_bodies < KM_PIPELINE_MAX_RIGID_BODIES)
            pc.max_rigid_bodies = KM_PIPELINE_MAX_RIGID_BODIES;
        if (pc.max_skeletons < KM_SKELETON_MAX_PEOPLE) pc.max_skeletons = KM_SKELETON_MAX_PEOPLE;
        if (pc.max_hands < KM_PIPELINE_MAX_HANDS) pc.max_hands = KM_PIPELINE_MAX_HANDS;
        if (pc.max_events < KM_PIPELINE_MAX_EVENTS) pc.max_events = KM_PIPELINE_MAX_EVENTS;
        if (cfg->role == KM_PIPELINE_ROLE_NODE) {
            /* A node publishes its cameras' 2D observations only, on its own endpoint. */
            snprintf(pc.zmq_endpoint, sizeof pc.zmq_endpoint, "%s", cfg->node_publish);
            pc.zmq_enabled = true;
            pc.osc_enabled = false;
            pc.zmq_latest_endpoint[0] = '\0';
            /* The PUB reads its subscriptions when the status is due: often enough that the
             * solver's `obs2d` subscription is known before capture starts (node_step waits
             * 200 ms after the solver's first request), so frame 0 is not skipped. */
            if (!pc.status_interval_ns || pc.status_interval_ns > 50000000ull)
                pc.status_interval_ns = 50000000ull;
        }
        p->publisher = km_publisher_create(&pc, &st);
        if (!p->publisher) goto fail;
        km_publisher_set_status_fn(p->publisher, pipeline_status_json, p);
        if (cfg->control.enabled) {
            p->control = km_control_create(&cfg->control, &st);
            if (!p->control) goto fail;
            km_control_set_publisher(p->control, p->publisher);
            km_control_set_handler(p->control, KM_CONTROL_LIST_CAMERAS, control_list_cameras, p);
            km_control_set_handler(p->control, KM_CONTROL_RELOAD_CALIBRATION,
                                   control_reload_calibration, p);
            if (p->stages) {
                km_control_set_handler(p->control, KM_CONTROL_DEFINE_RIGID,
                                       control_define_rigid, p);
                km_control_set_handler(p->control, KM_CONTROL_START_RECORDING,
                                       control_start_recording, p);
                km_control_set_handler(p->control, KM_CONTROL_STOP_RECORDING,
                                       control_stop_recording, p);
                km_control_set_handler(p->control, KM_CONTROL_CALIBRATE, control_calibrate, p);
            }
            if (cfg->role == KM_PIPELINE_ROLE_NODE)
                km_control_set_handler(p->control, KM_CONTROL_STATUS, control_node_status, p);
        }
    }
    return p;

fail:
    if (err) *err = st ? st : KM_ERR_INTERNAL;
    km_pipeline_destroy(p);
    return NULL;
}

void km_pipeline_set_frame_callback(km_pipeline *p, km_pipeline_frame_fn fn, void *user)
{
    p->on_frame = fn;
    p->on_frame_user = user;
}

const km_rig *km_pipeline_rig(const km_pipeline *p) { return &p->rig; }
const km_synthetic_scene *km_pipeline_scene(const km_pipeline *p) { return p->scene; }

static km_status start_captures(km_pipeline *p);

km_status km_pipeline_start(km_pipeline *p)
{
    if (p->started) return km_error(KM_ERR_INVALID_ARGUMENT, "pipeline: already started");
    if (p->cfg.role == KM_PIPELINE_ROLE_SOLVER) {
        /* Clock offsets first: the nodes start capturing on this first request. */
        km_node_solver_sync(p->solver, p->cfg.node_wait_ns);
        p->started = true;
        return KM_OK;
    }
    if (p->cfg.role == KM_PIPELINE_ROLE_NODE) {
        /* Capture starts in km_pipeline_step once the solver is there (or after wait). */
        p->node_start_ns = km_time_now_ns();
        p->started = true;
        return KM_OK;
    }
    return start_captures(p);
}

static km_status start_captures(km_pipeline *p)
{
    km_status st = KM_OK;
    /* One start time for all cameras, a little ahead so that every capture thread is up
     * before its first frame is due: frame k of every camera then carries the same time. */
    uint64_t start_ns = km_time_now_ns() + 20000000ull;
    km_replay_config replay = p->cfg.replay;
    replay.realtime = p->cfg.realtime && p->cfg.replay.realtime;
    replay.start_time_ns = start_ns;
    for (int c = 0; c < p->camera_count; c++) {
        if (!p->active[c]) continue;
        km_source *src;
        if (p->cfg.source == KM_PIPELINE_SOURCE_DEVICES) {
            /* Opened at create; a capture takes it over (and closes it) from here. */
            src = p->device_sources[c];
            p->device_sources[c] = NULL;
            if (!src) st = km_error(KM_ERR_INVALID_ARGUMENT, "pipeline: camera %d was already "
                                    "started once (devices are opened at create)", c);
        } else {
            src = p->cfg.source == KM_PIPELINE_SOURCE_REPLAY
                      ? km_replay_source_create(p->cfg.replay_path, p->replay_stream[c], &replay,
                                                &st)
                      : km_synthetic_source_create_at(p->scene, c, p->cfg.realtime, start_ns,
                                                      &st);
        }
        if (!src) goto fail;
        p->captures[c] = km_capture_create(src, p->cfg.pool_frames, &st);
        if (!p->captures[c]) goto fail;
        p->sources[c] = src;
        km_capture_set_lossless(p->captures[c], !p->cfg.realtime);
        km_capture_set_processor(p->captures[c], detect_on_capture_thread, &p->detection[c]);
    }
    for (int c = 0; c < p->camera_count; c++)
        if (p->captures[c] && (st = km_capture_start(p->captures[c]))) goto fail;
    p->started = true;
    p->capturing = true;
    return KM_OK;
fail:
    km_pipeline_stop(p);
    return st ? st : KM_ERR_INTERNAL;
}

/* A device frame as 8-bit intensity in d->gray (the detector's input). Markers are the
 * brightest thing a mocap camera sees, so luma (Y, or the upper byte of 16-bit intensity) is
 * what it needs. MJPEG is decoded here, on the camera's own thread, off the solver's path. */
static km_status to_gray(camera_detection *d, const km_frame *f)
{
    size_t w = (size_t)f->width, h = (size_t)f->height;
    if (w * h > d->gray_bytes)
        return km_error(KM_ERR_CAPACITY, "pipeline: camera %d frame %dx%d larger than the rig's",
                        f->camera, f->width, f->height);
    const uint8_t *src = f->data;
    switch (f->format) {
    case KM_PIXEL_YUYV:
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) d->gray[y * w + x] = src[y * f->stride + 2 * x];
        return KM_OK;
    case KM_PIXEL_GRAY16:
        /* little-endian: the high byte carries the top 8 bits */
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) d->gray[y * w + x] = src[y * f->stride + 2 * x + 1];
        return KM_OK;
    case KM_PIXEL_RGB24:
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) {
                const uint8_t *px = src + y * f->stride + 3 * x;
                d->gray[y * w + x] = (uint8_t)((77u * px[0] + 150u * px[1] + 29u * px[2]) >> 8);
            }
        return KM_OK;
    case KM_PIXEL_MJPEG:
        return km_cv_mjpeg_to_gray(f->data, f->size, d->gray, f->width, f->height, f->width);
    default:
        return km_error(KM_ERR_UNSUPPORTED, "pipeline: camera %d: no marker detection on "
                        "frames of pixel format %d (depth)", f->camera, (int)f->format);
    }
}

/* Frame processor: runs on camera `frame->camera`'s capture thread. */
static void detect_on_capture_thread(void *user, km_frame *frame)
{
    camera_detection *d = user;
    detected_frame *slot = &d->slots[d->next_slot++ % (unsigned)d->slot_count];
    slot->count = 0;
    if (frame->format == KM_PIXEL_GRAY8) {
        slot->status = km_detector_run(d->detector, frame->data, frame->width, frame->height,
                                       frame->stride, slot->blobs, d->max_blobs, &slot->count);
    } else if ((slot->status = to_gray(d, frame)) == KM_OK) {
        slot->status = km_detector_run(d->detector, d->gray, frame->width, frame->height,
                                       frame->width, slot->blobs, d->max_blobs, &slot->count);
    }
    frame->user = slot;
}

static void release_frame(km_pipeline *p, km_frame *frame)
{
    km_capture_release(p->captures[frame->camera], frame);
}

static km_status solve_observations(km_pipeline *p, km_solved_frame *out_frame,
                                    km_status result, uint64_t set_time_ns);

/* Camera c's counters from its capture runner, and DISCONNECTED when it has no frame now
 * and its device is gone. */
static void camera_status_refresh(km_pipeline *p, int c, bool has_frame)
{
    km_camera_status *cs = &p->camera_status[c];
    if (p->captures[c]) {
        km_capture_stats st;
        km_capture_stats_get(p->captures[c], &st);
        cs->frames = st.frames;
        cs->dropped = st.dropped_pool + st.dropped_ring;
        cs->errors = st.errors;
    }
    if (p->sources[c] && !has_frame && !km_source_connected(p->sources[c]))
        cs->state = KM_CAMERA_STATE_DISCONNECTED;
}

/* Detect in every frame of the set, give the frames back, reconstruct, publish. */
static km_status solve_set(km_pipeline *p, km_frameset *set)
{
    km_solved_frame out;
    memset(&out, 0, sizeof out);
    out.camera_count = p->camera_count;
    out.capture_time_ns = set->time_ns;
    km_observation_set *obs = &p->observations;
    obs->count = 0;
    obs->time_ns = set->time_ns;
    km_status result = KM_OK;
    bool have_frame = false;
    for (int c = 0; c < p->camera_count; c++) {
        km_camera_status *cs = &p->camera_status[c];
        if (p->active[c]) cs->state = set->frames[c] ? KM_CAMERA_STATE_OK : KM_CAMERA_STATE_MISSING;
        camera_status_refresh(p, c, set->frames[c] != NULL);
        km_frame *f = set->frames[c];
        if (!f) continue;
        if (!have_frame) {
            obs->frame = f->sequence;
            have_frame = true;
        }
        int n = 0;
        const detected_frame *det = f->user;
        if (!det) {
            release_frame(p, f);
            set->frames[c] = NULL;
            continue;
        }
        n = det->count;
        if (det->status && det->status != KM_ERR_CAPACITY)
            result = km_error(det->status, "pipeline: detection failed on camera %d", c);
        for (int i = 0; i < n && obs->count < obs->capacity; i++) {
            km_observation *o = &obs->items[obs->count++];
            o->x = det->blobs[i].x;
            o->y = det->blobs[i].y;
            o->area_px = det->blobs[i].area_px;
            o->camera = c;
        }
        out.observation_count[c] = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
        p->stats.observations += (uint64_t)n;
        p->stats.frames++;
        release_frame(p, f);
        set->frames[c] = NULL;
    }
    if (!set->complete) p->stats.incomplete_framesets++;
    out.camera_status = p->camera_status;
    return solve_observations(p, &out, result, set->time_ns);
}

/* Reconstruct, track and publish p->observations; out carries the set's camera counts and
 * capture time. Shared by the single process and the solver of a multi-host rig. */
static km_status solve_observations(km_pipeline *p, km_solved_frame *out_frame,
                                    km_status result, uint64_t set_time_ns)
{
    km_solved_frame out = *out_frame;
    km_observation_set *obs = &p->observations;
    km_status st;
    p->markers.count = 0;
    km_marker_set *reconstructed = p->tracker ? &p->raw_markers : &p->markers;
    reconstructed->count = 0;
    if (p->tracker) {
        /* Markers the tracker expects are built straight from their projections; the
         * epipolar search only sees what is left (tracking/reconstruct.c). */
        p->predicted.count = 0;
        km_tracker_predict(p->tracker, obs->frame, obs->time_ns, &p->predicted);
        km_reconstructor_set_prior(p->reconstructor, &p->predicted);
    }
    st = km_reconstructor_run(p->reconstructor, obs, reconstructed);
    if (st && st != KM_ERR_CAPACITY) result = st;
    if (p->tracker) {
        st = km_tracker_update(p->tracker, reconstructed, &p->markers);
        if (st && st != KM_ERR_CAPACITY) result = st;
    }
    out.frame = obs->frame;
    out.markers = &p->markers;
    out.observations = obs;
    if (p->stages) {
        uint64_t t0 = km_time_now_ns();
        st = km_stages_run(p->stages, &p->markers, set_time_ns, &out);
        if (st && st != KM_ERR_CAPACITY) result = st;
        uint64_t dt = km_time_now_ns() - t0;
        p->stats.stage_time_ns_sum += dt;
        if (dt > p->stats.stage_time_ns_max) p->stats.stage_time_ns_max = dt;
    }
    out.solved_time_ns = km_time_now_ns();
    if (p->publisher) {
        st = km_publisher_send(p->publisher, &out);
        if (st) result = st;
    } else {
        out.publish_time_ns = out.solved_time_ns;
    }
    if (p->stages) km_stages_send(p->stages, p->publisher, &out, km_time_now_ns());
    if (p->recorder) recording_write(p, &out);
    if (p->calib_feeding) km_calib_session_add_observations(p->calib, obs);
    if (p->on_frame) p->on_frame(p->on_frame_user, &out);

    uint64_t done = out.publish_time_ns ? out.publish_time_ns : out.solved_time_ns;
    uint64_t latency = done > set_time_ns ? done - set_time_ns : 0;
    p->stats.latency_ns_sum += latency;
    if (latency > p->stats.latency_ns_max) p->stats.latency_ns_max = latency;
    p->stats.framesets++;
    p->stats.markers += (uint64_t)p->markers.count;
    return result;
}

/* Role node: one `obs2d` message per camera frame (docs/protocol.md "Multi-host"):
 * camera_count = the camera's index + 1, its blobs in OBSERVATIONS_2D. */
static km_status node_publish_frame(km_pipeline *p, km_frame *f)
{
    km_solved_frame out;
    memset(&out, 0, sizeof out);
    int c = f->camera;
    out.frame = f->sequence;
    out.capture_time_ns = f->time_ns;
    out.camera_count = c + 1;
    km_observation_set *obs = &p->observations;
    obs->count = 0;
    obs->frame = f->sequence;
    obs->time_ns = f->time_ns;
    const detected_frame *det = f->user;
    km_status result = KM_OK;
    if (det) {
        if (det->status && det->status != KM_ERR_CAPACITY)
            result = km_error(det->status, "pipeline: detection failed on camera %d", c);
        for (int i = 0; i < det->count && obs->count < obs->capacity; i++) {
            km_observation *o = &obs->items[obs->count++];
            o->x = det->blobs[i].x;
            o->y = det->blobs[i].y;
            o->area_px = det->blobs[i].area_px;
            o->camera = c;
        }
    }
    out.observation_count[c] = (uint16_t)obs->count;
    out.observations = obs;
    out.solved_time_ns = km_time_now_ns();
    km_status st = km_publisher_send(p->publisher, &out);
    if (st) result = st;
    p->stats.frames++;
    p->stats.node_messages++;
    p->stats.observations += (uint64_t)obs->count;
    uint64_t latency = out.publish_time_ns > f->time_ns ? out.publish_time_ns - f->time_ns : 0;
    p->stats.latency_ns_sum += latency;
    if (latency > p->stats.latency_ns_max) p->stats.latency_ns_max = latency;
    release_frame(p, f);
    return result;
}

static km_status node_step(km_pipeline *p, uint64_t deadline, int *solved)
{
    km_status result = KM_OK;
    for (;;) {
        uint64_t now = km_time_now_ns();
        if (p->control) km_control_poll(p->control, NULL);
        km_publisher_tick(p->publisher, now);
        if (!p->capturing) {
            /* The solver's first request (its clock exchange) comes after it subscribed;
             * 200 ms more lets the subscription reach this PUB (ZeroMQ drops messages sent
             * before it arrives). */
            now = km_time_now_ns(); /* after the poll, which may have set the request time */
            bool asked = p->node_first_request_ns && now > p->node_first_request_ns &&
                         now - p->node_first_request_ns > 200000000ull;
            if (asked || now - p->node_start_ns > p->cfg.node_wait_ns) {
                km_log(KM_LOG_INFO, "pipeline", "node: capturing %d cameras (%s)",
                       p->cfg.node_camera_count, asked ? "solver connected"
                                                       : "no solver request yet: wait over");
                p->started = false;
                km_status st = start_captures(p);
                if (st) {
                    /* Fatal for a node: say why once and end (kinemad then exits). */
                    km_log(KM_LOG_ERROR, "pipeline", "node: cannot start capture: %s",
                           km_last_error());
                    return KM_ERR_END_OF_STREAM;
                }
            }
        } else {
            bool all_finished = true;
            for (int c = 0; c < p->camera_count; c++) {
                if (!p->captures[c]) continue;
                km_frame *f;
                while ((f = km_capture_pop(p->captures[c])) != NULL) {
                    km_status st = node_publish_frame(p, f);
                    if (st) result = st;
                    (*solved)++;
                }
                if (!km_capture_finished(p->captures[c])) all_finished = false;
            }
            if (*solved) return result;
            if (all_finished) {
                /* LINGER is 0 on the PUB: give the last messages time to leave. */
                if (!p->node_finished_ns) p->node_finished_ns = now;
                if (now - p->node_finished_ns > 300000000ull) return KM_ERR_END_OF_STREAM;
            }
        }
        if (now >= deadline) return KM_ERR_AGAIN;
        struct timespec ts = {0, 250000};
        nanosleep(&ts, NULL);
    }
}

static km_status solver_step(km_pipeline *p, uint64_t deadline, int *solved)
{
    km_status result = KM_OK;
    for (;;) {
        uint64_t now = km_time_now_ns();
        if (p->control) km_control_poll(p->control, NULL);
        if (p->publisher) km_publisher_tick(p->publisher, now);
        km_node_solver_poll(p->solver, now);
        km_solved_frame out;
        memset(&out, 0, sizeof out);
        bool complete = false;
        int present = 0;
        while (km_node_solver_pop(p->solver, now, &p->observations, &out, &complete, &present)) {
            p->stats.frames += (uint64_t)present;
            p->stats.observations += (uint64_t)p->observations.count;
            if (!complete) p->stats.incomplete_framesets++;
            km_status st = solve_observations(p, &out, KM_OK, out.capture_time_ns);
            if (st) result = st;
            (*solved)++;
            memset(&out, 0, sizeof out);
        }
        if (*solved) return result;
        if (km_node_solver_ended(p->solver, now)) return KM_ERR_END_OF_STREAM;
        if (now >= deadline) return KM_ERR_AGAIN;
        struct timespec ts = {0, 250000};
        nanosleep(&ts, NULL);
    }
}

km_status km_pipeline_step(km_pipeline *p, uint64_t timeout_ns, int *solved)
{
    *solved = 0;
    if (!p->started) return km_error(KM_ERR_INVALID_ARGUMENT, "pipeline: not started");
    if (p->cfg.role == KM_PIPELINE_ROLE_NODE)
        return node_step(p, km_time_now_ns() + timeout_ns, solved);
    if (p->cfg.role == KM_PIPELINE_ROLE_SOLVER)
        return solver_step(p, km_time_now_ns() + timeout_ns, solved);
    uint64_t deadline = km_time_now_ns() + timeout_ns;
    km_status result = KM_OK;
    for (;;) {
        uint64_t now = km_time_now_ns();
        /* Requests and the status message are served even when no frame comes (a dead
         * camera must not silence the control socket). */
        if (p->control) km_control_poll(p->control, NULL);
        if (p->publisher) km_publisher_tick(p->publisher, now);
        bool all_finished = true;
        for (int c = 0; c < p->camera_count; c++) {
            km_frame *f;
            while ((f = km_capture_pop(p->captures[c])) != NULL) {
                bool kept = false;
                km_frameset_assembler_push(p->assembler, f, now, &kept);
                if (!kept) release_frame(p, f);
            }
            if (!km_capture_finished(p->captures[c])) all_finished = false;
        }
        if (all_finished) km_frameset_assembler_flush(p->assembler);
        km_frameset set;
        while (km_frameset_assembler_pop(p->assembler, now, &set)) {
            km_status st = solve_set(p, &set);
            if (st) result = st;
            (*solved)++;
        }
        if (*solved) return result;
        if (all_finished) return KM_ERR_END_OF_STREAM;
        if (now >= deadline) {
            /* No set: with every camera unplugged none comes, so no solved frame would say
             * so; km_pipeline_camera_status does. */
            for (int c = 0; c < p->camera_count; c++) camera_status_refresh(p, c, false);
            return KM_ERR_AGAIN;
        }
        /* Poll: a quarter of a millisecond keeps the added latency small (frames are ~8 ms
         * apart at 120 Hz) without spinning a core. */
        struct timespec ts = {0, 250000};
        nanosleep(&ts, NULL);
    }
}

int km_pipeline_camera_status(const km_pipeline *p, km_camera_status *out, int capacity)
{
    if (!p) return 0;
    for (int c = 0; c < p->camera_count && c < capacity && out; c++) out[c] = p->camera_status[c];
    return p->camera_count;
}

void km_pipeline_stop(km_pipeline *p)
{
    if (!p) return;
    for (int c = 0; c < KM_MAX_CAMERAS; c++)
        if (p->captures[c]) km_capture_stop(p->captures[c]);
    /* Give back frames the assembler still holds before the pools go away. */
    if (p->assembler) {
        km_frameset_assembler_flush(p->assembler);
        km_frameset set;
        while (km_frameset_assembler_pop(p->assembler, UINT64_MAX, &set))
            for (int c = 0; c < p->camera_count; c++)
                if (set.frames[c]) release_frame(p, set.frames[c]);
    }
    for (int c = 0; c < KM_MAX_CAMERAS; c++) {
        if (!p->captures[c]) continue;
        km_frame *f;
        while ((f = km_capture_pop(p->captures[c])) != NULL) release_frame(p, f);
    }
    p->started = false;
}

void km_pipeline_stats_get(const km_pipeline *p, km_pipeline_stats *out)
{
    *out = p->stats;
    for (int c = 0; c < p->camera_count; c++) {
        if (!p->captures[c]) continue;
        km_capture_stats cs;
        km_capture_stats_get(p->captures[c], &cs);
        out->dropped_frames += cs.dropped_pool + cs.dropped_ring;
    }
    if (p->publisher) {
        km_publisher_stats ps;
        km_publisher_stats_get(p->publisher, &ps);
        out->zmq_sent = ps.zmq_sent;
        out->zmq_dropped = ps.zmq_dropped;
        out->osc_sent = ps.osc_sent;
        out->osc_errors = ps.osc_errors;
    }
    if (p->solver) km_node_solver_counts(p->solver, &out->node_messages, &out->nodes_missing);
    if (p->stages)
        km_stages_counts(p->stages, &out->rigid_tracked, &out->skeletons_tracked, &out->events,
                         &out->input_messages);
}

void km_pipeline_destroy(km_pipeline *p)
{
    if (!p) return;
    km_pipeline_stop(p);
    if (p->recorder) {
        uint64_t frames, bytes;
        recording_stop(p, &frames, &bytes);
    }
    km_calib_session_destroy(p->calib);
    for (int c = 0; c < KM_MAX_CAMERAS; c++) km_capture_destroy(p->captures[c]);
    for (int c = 0; c < KM_MAX_CAMERAS; c++) km_source_destroy(p->device_sources[c]);
    /* after every source of theirs */
    km_uvc_context_destroy(p->uvc);
    km_freenect_context_destroy(p->freenect);
    km_frameset_assembler_destroy(p->assembler);
    km_node_solver_destroy(p->solver);
    km_control_destroy(p->control);
    km_publisher_destroy(p->publisher);
    km_reconstructor_destroy(p->reconstructor);
    km_tracker_destroy(p->tracker);
    km_stages_destroy(p->stages);
    free(p->raw_markers.items);
    free(p->predicted.items);
    for (int c = 0; c < KM_MAX_CAMERAS; c++) {
        km_detector_destroy(p->detection[c].detector);
        free(p->detection[c].slots);
        free(p->detection[c].blob_storage);
        free(p->detection[c].gray);
    }
    free(p->observations.items);
    free(p->markers.items);
    km_synthetic_scene_destroy(p->scene);
    free(p);
}
