/* Kinema pipeline: the service's engine, wiring the stages of the data flow together:
 *
 *   sources (one capture thread each, detecting its camera's 2D blobs) -> frame sets
 *     -> reconstruct (all cameras) -> track (persistent ids) -> rigid bodies -> skeletons
 *     -> hands and gestures -> publish (ZeroMQ, OSC, VMC, OSC events)
 *
 * kinemad is a thin shell around it (config, signals, status line); tests and benchmarks
 * run it in-process. Everything is allocated in km_pipeline_create; km_pipeline_step
 * allocates nothing. */
#ifndef KINEMA_PIPELINE_H
#define KINEMA_PIPELINE_H

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "kinema/core.h"
#include "kinema/gesture.h"
#include "kinema/recording.h"
#include "kinema/skeleton.h"
#include "kinema/tracking.h"
#include "kinema/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum km_pipeline_source_kind {
    KM_PIPELINE_SOURCE_SYNTHETIC = 0, /* the embedded default */
    KM_PIPELINE_SOURCE_REPLAY = 1,    /* a recording's image streams (include/kinema/recording.h) */
    KM_PIPELINE_SOURCE_DEVICES = 2,   /* USB cameras and Kinects (`sources:`, docs/capture.md) */
} km_pipeline_source_kind;

/* One entry of `sources:` (source: devices). */
typedef enum km_pipeline_device_kind {
    KM_PIPELINE_DEVICE_UVC = 0,       /* our UVC driver on libusb */
    KM_PIPELINE_DEVICE_FREENECT = 1,  /* Kinect v1 through libfreenect */
} km_pipeline_device_kind;

typedef struct km_pipeline_device {
    km_pipeline_device_kind kind;
    km_uvc_config uvc;                /* kind UVC; .camera is the rig index */
    km_freenect_config freenect;      /* kind FREENECT; .camera is the rig index */
} km_pipeline_device;

/* What this process does (docs/protocol.md "Multi-host"). */
typedef enum km_pipeline_role {
    KM_PIPELINE_ROLE_SINGLE = 0, /* capture, detect, solve, publish: everything here */
    KM_PIPELINE_ROLE_NODE = 1,   /* capture + detect some rig cameras, publish `obs2d` */
    KM_PIPELINE_ROLE_SOLVER = 2, /* merge the nodes' `obs2d` by time, solve, publish */
} km_pipeline_role;

#define KM_PIPELINE_MAX_NODES 16
/* What one solved frame can carry from the live stages (pipeline/stages.c). */
#define KM_PIPELINE_MAX_RIGID_BODIES 64
#define KM_PIPELINE_MAX_HANDS (2 * KM_SKELETON_MAX_PEOPLE + 16)
#define KM_PIPELINE_MAX_EVENTS 64

typedef struct km_pipeline_config {
    km_pipeline_source_kind source;
    km_synthetic_config synthetic;
    bool realtime;             /* pace sources at their frame rate (default true) */
    char rig_path[512];        /* calibration to solve with; "" = the source's own rig */
    size_t pool_frames;        /* frames per camera pool / ring (default 16) */
    uint64_t frameset_timeout_ns; /* give up waiting for a late camera (default 3 periods) */
    km_detect_config detect;
    km_reconstruct_config reconstruct;
    bool track_enabled;        /* persistent marker ids across frames (default true) */
    km_tracker_config track;
    km_publisher_config publish;
    km_control_config control;   /* JSON request/reply control socket (transport.control) */
    bool publish_enabled;      /* false: solve only (batch, tests) */
    /* source: replay (config `replay: {path, realtime, loop, time}`). Frames are paced when
     * both `realtime` and replay.realtime are true. The rig is `rig:` when given, else the
     * recording's embedded rig. */
    char replay_path[512];
    km_replay_config replay;
    /* source: devices (config `sources:`, one entry per rig camera; `rig:` required). */
    km_pipeline_device devices[KM_MAX_CAMERAS];
    int device_count;
    /* Multi-host (added by issue 8; config `role`, `node`, `solver`, docs/config.md). */
    km_pipeline_role role;
    int node_cameras[KM_MAX_CAMERAS]; /* node: the rig cameras this process runs */
    int node_camera_count;
    char node_publish[128];    /* node: PUB endpoint of the `obs2d` stream (bind) */
    uint64_t node_wait_ns;     /* node: start capturing once the solver's first control
                                  request came (+200 ms), or after this long (default 10 s) */
    int solver_node_count;
    char solver_nodes[KM_PIPELINE_MAX_NODES][128];    /* solver: each node's PUB (connect) */
    char solver_controls[KM_PIPELINE_MAX_NODES][128]; /* its control socket ("" = no sync) */
    uint64_t solver_node_cameras[KM_PIPELINE_MAX_NODES]; /* bit c: the node runs camera c */
    uint64_t solver_timeout_ns; /* a node silent this long is missing (default 1 s) */
    int solver_max_pending;    /* frame sets being merged at once (default 128) */
    /* The stages after marker tracking (pipeline/stages.c, docs/config.md). */
    bool rigid_enabled;        /* `rigid: {enabled}` (default true) */
    char rigid_path[512];      /* definitions file (formats.md); "": none, except the
                                  synthetic source, whose own head and prop bodies are used */
    km_rigid_config rigid;
    bool skeleton_enabled;     /* default: true for the synthetic source (one template subject
                                  per actor), else true when `skeleton:` names subjects */
    char subject_paths[KM_SKELETON_MAX_PEOPLE][512]; /* subject files (kinema skeleton
                                  calibrate); none: `people` template subjects */
    int subject_count;
    int skeleton_people;       /* template subjects when no files (default: actors or 1) */
    double skeleton_height_m;  /* their height (default 1.75) */
    char marker_set_path[512]; /* their marker set ("" = Plug-in Gait, docs/skeleton.md) */
    km_skeleton_solver_config skeleton;
    bool gesture_enabled;      /* `gesture:` (default true): hand poses, dynamic gestures and
                                  hand-eye from skeletons and received hands */
    km_gesture_engine_config gesture;
    km_vmc_config vmc;         /* `transport.vmc` (off by default) */
    km_event_sender_config events; /* `transport.events`: gesture events as OSC (off) */
    km_input_config input;     /* `transport.input`: hand landmarks and gaze in (off) */
} km_pipeline_config;

typedef struct km_pipeline km_pipeline;

/* Called on the pipeline thread after each solved frame, before it is published is done.
 * The frame and what it points to are valid during the call only. */
typedef void (*km_pipeline_frame_fn)(void *user, const km_solved_frame *frame);

typedef struct km_pipeline_stats {
    uint64_t framesets;        /* solved and published */
    uint64_t frames;           /* camera frames processed */
    uint64_t dropped_frames;   /* lost in capture (pool/ring full) */
    uint64_t incomplete_framesets; /* frame sets with a camera missing */
    uint64_t markers;          /* 3D markers over all frame sets */
    uint64_t observations;     /* 2D blobs over all frames */
    uint64_t latency_ns_sum;   /* capture time -> published, summed */
    uint64_t latency_ns_max;
    uint64_t zmq_sent, zmq_dropped, osc_sent, osc_errors;
    /* Multi-host (added by issue 8): solver: camera frames received from nodes, nodes
     * missing now; node: camera frames published. */
    uint64_t node_messages;
    int nodes_missing;
    /* Live stages: rigid-body and skeleton poses solved (tracked) over all frames, gesture
     * events decided, input messages taken. */
    uint64_t rigid_tracked, skeletons_tracked, events, input_messages;
    uint64_t stage_time_ns_sum; /* time spent after marker tracking (rigid .. gestures) */
    uint64_t stage_time_ns_max;
} km_pipeline_stats;

km_pipeline_config km_pipeline_config_default(void);
/* Read a kinemad config (docs/config.md). Unknown keys are errors (typos are caught). */
km_status km_pipeline_config_read(const km_config *cfg, km_pipeline_config *out);

km_pipeline *km_pipeline_create(const km_pipeline_config *cfg, km_status *err);
void km_pipeline_destroy(km_pipeline *p); /* stops threads; accepts NULL */
void km_pipeline_set_frame_callback(km_pipeline *p, km_pipeline_frame_fn fn, void *user);
/* The rig solved with, and the synthetic scene (NULL for other sources) for ground truth. */
const km_rig *km_pipeline_rig(const km_pipeline *p);
const km_synthetic_scene *km_pipeline_scene(const km_pipeline *p);
km_status km_pipeline_start(km_pipeline *p);
/* Process what the capture threads delivered, waiting up to timeout_ns for a frame set.
 * *solved is the number of frame sets solved and published in this call. Returns
 * KM_ERR_END_OF_STREAM once every finite source is done and drained. Allocates nothing. */
km_status km_pipeline_step(km_pipeline *p, uint64_t timeout_ns, int *solved);
/* Each rig camera's state (OK, MISSING, DISCONNECTED, INACTIVE) and counters, as the last
 * solved frame's camera_status, kept current by km_pipeline_step when no frame set comes:
 * with every camera unplugged nothing is solved, yet here they turn DISCONNECTED. Copies up
 * to `capacity` entries to out; returns the number of cameras. Call from the thread that
 * calls km_pipeline_step. */
int km_pipeline_camera_status(const km_pipeline *p, km_camera_status *out, int capacity);
void km_pipeline_stop(km_pipeline *p);
void km_pipeline_stats_get(const km_pipeline *p, km_pipeline_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_PIPELINE_H */
