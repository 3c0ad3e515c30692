/* Kinema pipeline: the service's engine, wiring the stages of the data flow together:
 *
 *   sources (one capture thread each, detecting its camera's 2D blobs) -> frame sets
 *     -> reconstruct (all cameras) -> track (persistent ids) -> publish (ZeroMQ, OSC)
 *
 * kinemad is a thin shell around it (config, signals, status line); tests and benchmarks
 * run it in-process. Everything is allocated in km_pipeline_create; km_pipeline_step
 * allocates nothing. */
#ifndef KINEMA_PIPELINE_H
#define KINEMA_PIPELINE_H

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "kinema/core.h"
#include "kinema/recording.h"
#include "kinema/tracking.h"
#include "kinema/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum km_pipeline_source_kind {
    KM_PIPELINE_SOURCE_SYNTHETIC = 0, /* the embedded default */
    KM_PIPELINE_SOURCE_REPLAY = 1,    /* a recording's image streams (include/kinema/recording.h) */
} km_pipeline_source_kind;

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
void km_pipeline_stop(km_pipeline *p);
void km_pipeline_stats_get(const km_pipeline *p, km_pipeline_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_PIPELINE_H */
