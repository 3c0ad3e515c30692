/* Kinema capture: sources of frames. A km_source is a small vtable (open, start, next
 * frame, stop, close, describe) implemented by backends in capture/: `synthetic` (the
 * embedded default: a procedural actor seen by a virtual camera rig), and later `replay`,
 * `uvc` (our USB Video Class driver on libusb) and `freenect` (Kinect v1).
 *
 * A km_capture runs one thread per source: the thread pulls frames from its source into a
 * preallocated km_frame_pool and pushes them into an SPSC ring; the pipeline thread pops
 * them and groups them into frame sets with km_frameset_assembler. */
#ifndef KINEMA_CAPTURE_H
#define KINEMA_CAPTURE_H

#include "kinema/calib.h"
#include "kinema/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- km_source */

typedef struct km_source km_source;

typedef struct km_source_info {
    char backend[16];        /* "synthetic", "replay", "uvc", "freenect" */
    char name[KM_NAME_MAX];  /* device/camera name */
    char serial[KM_NAME_MAX];
    int camera;              /* index in the rig */
    int width, height;
    km_pixel_format format;
    double rate_hz;
    size_t max_frame_bytes;  /* what a pool frame must hold */
} km_source_info;

/* The backend vtable. `self` is the backend's private state. next_frame fills a frame the
 * caller acquired from its pool (data/capacity set) and blocks until one is ready or
 * timeout_ns passes (KM_ERR_AGAIN); KM_ERR_END_OF_STREAM when a finite source is done. */
typedef struct km_source_vtable {
    const char *backend;
    km_status (*start)(void *self);
    km_status (*next_frame)(void *self, km_frame *frame, uint64_t timeout_ns);
    km_status (*stop)(void *self);
    void (*close)(void *self);
    void (*describe)(void *self, km_source_info *info);
} km_source_vtable;

/* Wrap a backend. Takes ownership of `self` (closed by km_source_destroy). Used by backends. */
km_source *km_source_create(const km_source_vtable *vtable, void *self, km_status *err);
void km_source_destroy(km_source *source); /* stops if needed; accepts NULL */
km_status km_source_start(km_source *source);
km_status km_source_next_frame(km_source *source, km_frame *frame, uint64_t timeout_ns);
km_status km_source_stop(km_source *source);
void km_source_describe(km_source *source, km_source_info *info);

/* ------------------------------------------------------------- synthetic */

/* The synthetic scene: a procedural actor walking and turning on a loop path with a
 * standard ~40-marker body set (Plug-in-Gait-like labels), a head-worn rigid body of 4
 * markers and a hand-held prop of 5 markers; several actors can share the volume. The
 * scene is a pure function of time, so any thread may query it. */
typedef struct km_synthetic_scene km_synthetic_scene;

typedef struct km_synthetic_config {
    int camera_count;        /* default 8, placed on a ring looking at the volume centre */
    int width, height;       /* default 1280 x 1024 */
    double rate_hz;          /* default 120 */
    int actor_count;         /* default 1 */
    uint64_t seed;           /* default 1: same seed, same scene and noise */
    double image_noise;      /* sensor noise, grey levels sigma (default 2.0) */
    double distortion;       /* scale of the lens distortion (default 1.0, 0 = none) */
    double reflection_rate;  /* mean spurious reflections per camera frame (default 0.2) */
    bool occlusion;          /* markers hidden by the body from some views (default true) */
    double marker_diameter_m;/* default 0.014 */
    double duration_s;       /* frames stop after this (0 = endless, default) */
} km_synthetic_config;

#define KM_SYNTHETIC_MAX_MARKERS 512

typedef struct km_synthetic_marker {
    uint32_t id;             /* stable across the scene: actor*1000 + index */
    char label[16];          /* "LFHD", "HEAD1", "PROP3", ... */
    km_vec3 pos_m;           /* world position */
} km_synthetic_marker;

km_synthetic_config km_synthetic_config_default(void);
/* Read the `synthetic:` keys of a config (see docs/config.md); absent keys keep defaults. */
km_status km_synthetic_config_read(const km_config *cfg, const char *path,
                                   km_synthetic_config *out);

km_synthetic_scene *km_synthetic_scene_create(const km_synthetic_config *cfg, km_status *err);
void km_synthetic_scene_destroy(km_synthetic_scene *scene);
/* The virtual rig (exact calibration of the rendered cameras). */
const km_rig *km_synthetic_scene_rig(const km_synthetic_scene *scene);
const km_synthetic_config *km_synthetic_scene_config(const km_synthetic_scene *scene);
/* Ground truth at a time: all markers of all actors. Returns the count written. */
int km_synthetic_scene_markers(const km_synthetic_scene *scene, uint64_t time_ns,
                               km_synthetic_marker *out, int capacity);
/* Is the marker visible from the camera (in front, inside the image, not occluded)? */
bool km_synthetic_scene_visible(const km_synthetic_scene *scene, int camera,
                                const km_synthetic_marker *marker, uint64_t time_ns);
/* Time of frame k (k / rate). */
uint64_t km_synthetic_scene_frame_time(const km_synthetic_scene *scene, uint64_t frame);
/* Render frame `frame_index` of camera `camera` into an 8-bit image (width x height,
 * stride bytes a row): markers as anti-aliased disks sized by distance, sensor noise,
 * occlusion, reflections. No allocation. */
km_status km_synthetic_scene_render(const km_synthetic_scene *scene, int camera,
                                    uint64_t frame_index, uint8_t *image, int stride);

/* A km_source for one camera of the scene (the scene must outlive the source). Frames come
 * paced in real time at rate_hz when `realtime`, else as fast as asked. */
km_source *km_synthetic_source_create(const km_synthetic_scene *scene, int camera,
                                      bool realtime, km_status *err);

/* ------------------------------------------------------------- capture runner */

typedef struct km_capture km_capture;

typedef struct km_capture_stats {
    uint64_t frames;          /* delivered into the ring */
    uint64_t dropped_pool;    /* no free frame in the pool */
    uint64_t dropped_ring;    /* ring full (consumer too slow) */
    uint64_t errors;
} km_capture_stats;

/* Runs `source` on its own thread into a pool of `pool_frames` frames and a ring of the
 * same size. Takes ownership of the source. */
km_capture *km_capture_create(km_source *source, size_t pool_frames, km_status *err);
void km_capture_destroy(km_capture *capture); /* stops and joins; accepts NULL */
km_status km_capture_start(km_capture *capture);
void km_capture_stop(km_capture *capture);
/* Consumer side (one thread): next frame or NULL; give it back with km_capture_release. */
km_frame *km_capture_pop(km_capture *capture);
void km_capture_release(km_capture *capture, km_frame *frame);
void km_capture_stats_get(const km_capture *capture, km_capture_stats *out);
/* True once a finite source reached its end and its ring is drained. */
bool km_capture_finished(const km_capture *capture);
void km_capture_describe(km_capture *capture, km_source_info *info);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CAPTURE_H */
