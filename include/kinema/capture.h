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
    /* Optional (NULL: always connected): false once the backend knows its device is gone
     * (unplugged, stopped answering). Called from other threads than next_frame's. */
    bool (*connected)(void *self);
} km_source_vtable;

/* Wrap a backend. Takes ownership of `self` (closed by km_source_destroy, or at once through
 * vtable->close when the wrapper cannot be made). Used by backends. */
km_source *km_source_create(const km_source_vtable *vtable, void *self, km_status *err);
void km_source_destroy(km_source *source); /* stops if needed; accepts NULL */
km_status km_source_start(km_source *source);
km_status km_source_next_frame(km_source *source, km_frame *frame, uint64_t timeout_ns);
km_status km_source_stop(km_source *source);
void km_source_describe(km_source *source, km_source_info *info);
/* false when the source's device is known to be gone (a UVC camera unplugged, a Kinect whose
 * USB events fail); true otherwise, and for sources without a device. Thread-safe: the
 * pipeline asks from its solver thread to report the camera DISCONNECTED, not just MISSING. */
bool km_source_connected(km_source *source);

/* ------------------------------------------------------------- synthetic */

/* The synthetic scene: a procedural actor walking and turning on a loop path with a
 * standard ~40-marker body set (Plug-in-Gait-like labels), a head-worn rigid body of 4
 * markers and a hand-held prop of 5 markers; several actors can share the volume. The
 * scene is a pure function of time, so any thread may query it. */
typedef struct km_synthetic_scene km_synthetic_scene;

/* The scene's content. ACTOR: the walking actor(s) above. WAND: a calibration take on the
 * same rig: a three-marker wand (markers WAND1..3, ids 0..2, at 0, 0.15 and 0.5 m along it)
 * waved through the volume along km_synthetic_wand's path for wand_seconds, then an L-frame
 * (LFRAME1..4, ids 3..6: corner at the origin, +X 0.3 m and 0.5 m, +Z 0.2 m, centres 7 mm
 * above the floor) lying still for lframe_seconds; no actor, no occluders, no rigid body. */
typedef enum km_synthetic_scene_kind {
    KM_SYNTHETIC_SCENE_ACTOR = 0,
    KM_SYNTHETIC_SCENE_WAND = 1
} km_synthetic_scene_kind;

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
    /* What the cameras see (added for the live calibration of issue 4): */
    km_synthetic_scene_kind scene; /* KM_SYNTHETIC_SCENE_ACTOR (default) or _WAND */
    double wand_seconds;     /* wand scene: the wand wave lasts this long (default 20) */
    double lframe_seconds;   /* wand scene: then the L-frame lies still on the floor this
                                long (default 10); after it the volume is empty */
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

/* Same, with the time stamp of frame 0 given (CLOCK_MONOTONIC ns; 0 = the time of
 * km_source_start). Give all cameras of a rig the same start so frame k of every camera
 * carries the same time_ns and the frame-set assembler groups them. Frame k of the source
 * shows the scene at scene time km_synthetic_scene_frame_time(scene, k); its sequence is k. */
km_source *km_synthetic_source_create_at(const km_synthetic_scene *scene, int camera,
                                         bool realtime, uint64_t start_time_ns,
                                         km_status *err);

/* Ground truth of the rigid bodies: each actor wears a head rigid body ("HEAD", markers
 * HEAD1..4) and holds a prop in the right hand ("PROP", markers PROP1..5). */
typedef enum km_synthetic_rigid_kind {
    KM_SYNTHETIC_RIGID_HEAD = 0,
    KM_SYNTHETIC_RIGID_PROP = 1,
    KM_SYNTHETIC_RIGID_KIND_COUNT
} km_synthetic_rigid_kind;

typedef struct km_synthetic_rigid_pose {
    uint32_t id;             /* actor*1000 + 900 + kind */
    int actor;
    km_synthetic_rigid_kind kind;
    char name[16];           /* "HEAD" or "PROP" */
    km_vec3 pos_m;           /* origin of the body frame in the world */
    km_quat rot;             /* body frame -> world */
} km_synthetic_rigid_pose;

/* Poses of all rigid bodies at a scene time (actor-major, HEAD then PROP). Returns the
 * count written (at most capacity). A marker of the body is at pos_m + rot * local, with
 * `local` from km_synthetic_rigid_definition. */
int km_synthetic_scene_rigid_poses(const km_synthetic_scene *scene, uint64_t time_ns,
                                   km_synthetic_rigid_pose *out, int capacity);
/* The marker constellation of a rigid body in its own frame: pos_m is the local position,
 * id the marker index within an actor (add actor*1000 for the scene id), label as in the
 * scene. Returns the count written (4 for HEAD, 5 for PROP), 0 for an unknown kind. Same
 * for every actor and scene (marker_diameter does not change it). */
int km_synthetic_rigid_definition(km_synthetic_rigid_kind kind, km_synthetic_marker *out,
                                  int capacity);

/* A 2D observation without rendering: the distorted projection of a visible marker
 * centre, or a reflection (marker_id = KM_SYNTHETIC_REFLECTION_ID). */
#define KM_SYNTHETIC_REFLECTION_ID UINT32_MAX
typedef struct km_synthetic_observation {
    double x, y;             /* raw (distorted) pixels */
    uint32_t marker_id;
} km_synthetic_observation;

/* The observations camera `camera` makes of frame `frame_index`: every marker that
 * km_synthetic_scene_visible accepts (marker order), then the same reflections the renderer
 * draws, each displaced by Gaussian noise of noise_px (per axis) drawn from `seed`, camera
 * and frame (deterministic). Returns the count written (at most capacity); 0 on bad
 * arguments. Markers whose disks overlap in the image are still reported separately. */
int km_synthetic_scene_observe(const km_synthetic_scene *scene, int camera,
                               uint64_t frame_index, double noise_px, uint64_t seed,
                               km_synthetic_observation *out, int capacity);
/* Radius in pixels of the disk the renderer draws for a marker seen by a camera (the
 * marker diameter projected with fx / Z, at least 1.5 px); 0 when behind the camera. */
double km_synthetic_scene_marker_radius_px(const km_synthetic_scene *scene, int camera,
                                           km_vec3 pos_m);

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
/* A frame processor runs on the capture thread for every frame that goes into the ring,
 * after the source filled it and before the consumer sees it: per-camera work (2D detection)
 * then runs in parallel on the cameras' threads instead of serially on the pipeline thread.
 * It may set frame->user for the consumer. Set before start; fn must not block. */
typedef void (*km_frame_processor_fn)(void *user, km_frame *frame);
void km_capture_set_processor(km_capture *capture, km_frame_processor_fn fn, void *user);
/* Lossless mode (call before start): when every pool frame is in use the thread waits for
 * the consumer instead of dropping the frame. For offline sources (replay, unpaced synthetic)
 * where no device clock runs away; live cameras keep the default (drop and count). */
void km_capture_set_lossless(km_capture *capture, bool lossless);
km_status km_capture_start(km_capture *capture);
void km_capture_stop(km_capture *capture);
/* Consumer side (one thread): next frame or NULL; give it back with km_capture_release. */
km_frame *km_capture_pop(km_capture *capture);
void km_capture_release(km_capture *capture, km_frame *frame);
void km_capture_stats_get(const km_capture *capture, km_capture_stats *out);
/* True once a finite source reached its end and its ring is drained. */
bool km_capture_finished(const km_capture *capture);
void km_capture_describe(km_capture *capture, km_source_info *info);

/* ------------------------------------------------------------- frame sets */

/* Groups the frames of N cameras by time stamp: frames whose time_ns lies within
 * `tolerance_ns` of a set's first frame belong to that set. A set is emitted when every
 * camera delivered, or when a newer set completes, or `timeout_ns` after its first frame
 * arrived, so a missing camera never blocks the others. Sets come out in time order.
 * Fixed capacity: no allocation after create. One thread pushes and pops. */
typedef struct km_frameset_assembler km_frameset_assembler;

typedef struct km_frameset_config {
    int camera_count;        /* cameras 0..camera_count-1 (required, <= KM_MAX_CAMERAS) */
    double rate_hz;          /* nominal frame rate (default 120) */
    uint64_t tolerance_ns;   /* 0 = half a frame period */
    uint64_t timeout_ns;     /* 0 = three frame periods */
    int max_sets;            /* sets being assembled or waiting to be popped (default 8) */
} km_frameset_config;

typedef struct km_frameset {
    uint64_t time_ns;        /* time stamp of the set's first frame */
    int camera_count;
    int present;             /* cameras that delivered */
    bool complete;           /* present == camera_count */
    /* Borrowed frames, NULL where a camera is missing. The caller gives each back to the
     * capture it came from (frame->camera) once done. */
    km_frame *frames[KM_MAX_CAMERAS];
} km_frameset;

typedef struct km_frameset_stats {
    uint64_t sets_complete;
    uint64_t sets_incomplete;
    uint64_t missing_frames;   /* camera slots empty in emitted sets */
    uint64_t duplicate_frames; /* a second frame of a camera for the same set */
    uint64_t late_frames;      /* frame of a set that was already emitted */
    uint64_t overflow_frames;  /* no room for a new set (consumer does not pop) */
} km_frameset_stats;

km_frameset_config km_frameset_config_default(void);
km_frameset_assembler *km_frameset_assembler_create(const km_frameset_config *cfg,
                                                    km_status *err);
/* Frames still held are not released: flush and pop first. Accepts NULL. */
void km_frameset_assembler_destroy(km_frameset_assembler *assembler);
/* Offer a frame; now_ns is the caller's clock (CLOCK_MONOTONIC) for timeouts. *kept tells
 * who owns the frame: true = the assembler holds it until it comes out in a set; false =
 * rejected (duplicate, late, overflow: counted in the stats), the caller still owns it and
 * should release it. Returns KM_ERR_INVALID_ARGUMENT for a camera index out of range. */
km_status km_frameset_assembler_push(km_frameset_assembler *assembler, km_frame *frame,
                                     uint64_t now_ns, bool *kept);
/* Next ready set (oldest first) into *out; false when none is ready at now_ns. */
bool km_frameset_assembler_pop(km_frameset_assembler *assembler, uint64_t now_ns,
                               km_frameset *out);
/* Close every set being assembled (end of stream); pop then returns them. */
void km_frameset_assembler_flush(km_frameset_assembler *assembler);
void km_frameset_assembler_stats(const km_frameset_assembler *assembler,
                                 km_frameset_stats *out);


/* ------------------------------------------------------------- clock sync */

/* Clock offset and drift of each camera (capture/clock_sync.c), estimated from the frame
 * sets the assembler emits: per set, each present camera's time_ns against the median of the
 * present cameras' stamps; per camera a least-squares line through the last `window`
 * samples. A camera whose clock runs fast shows a growing offset (drift > 0); a constant
 * offset is a fixed delay (cable, exposure start). Fixed memory, no allocation after create;
 * one thread. Recordings (include/kinema/recording.h) keep each camera's stamps, so the
 * estimate can be made offline too (kinema inspect). */
typedef struct km_clock_sync km_clock_sync;

typedef struct km_clock_estimate {
    int camera;
    uint64_t samples;        /* sets this camera was in (all time) */
    double offset_ns;        /* camera stamp - reference at the newest sample (fit) */
    double drift_ppm;        /* d(offset)/dt: microseconds per second */
    double residual_ns;      /* RMS of the samples around the line (jitter) */
    double span_s;           /* time covered by the window */
    bool valid;              /* >= 2 samples at distinct times */
} km_clock_estimate;

km_clock_sync *km_clock_sync_create(int camera_count, int window, km_status *err);
void km_clock_sync_destroy(km_clock_sync *cs); /* accepts NULL */
void km_clock_sync_reset(km_clock_sync *cs);
/* Feed an emitted frame set (sets with fewer than two cameras are ignored). */
km_status km_clock_sync_add_set(km_clock_sync *cs, const km_frameset *set);
/* Feed one pair directly (camera stamp against any reference clock, e.g. host arrival). */
km_status km_clock_sync_add(km_clock_sync *cs, int camera, uint64_t reference_ns,
                            uint64_t camera_ns);
/* KM_ERR_AGAIN with fewer than two samples. */
km_status km_clock_sync_estimate(const km_clock_sync *cs, int camera, km_clock_estimate *out);

/* ===================================================== synthetic wand wave ===============
 * (capture/synthetic_wand.c; added by the wand calibration work of issue 4.)
 * 2D observations of a calibration wand waved through the volume of the synthetic rig, and
 * of an L-frame lying on the floor, for the wand calibration (calib/wand.c) and its tests.
 * The wand carries three collinear markers; its centre follows a smooth random path that
 * covers the volume (x, z within +-1.3 m, y in [0.25, 2.05] m) whatever the frame count (the
 * path is a function of frame / frame_count), its direction turns smoothly through all
 * azimuths and +-55 deg of elevation. Per camera and frame: markers outside the image or
 * behind the camera are not seen, markers whose disks overlap merge into one blob, each
 * marker drops out with probability dropout_rate, Gaussian noise of noise_px per axis, and
 * Poisson(ghost_rate) ghost blobs at uniform places. Deterministic from the seed. */

typedef struct km_synthetic_wand_config {
    int camera_count;         /* default 8 (the synthetic ring rig, km_synthetic_scene's) */
    int width, height;        /* default 1280 x 1024 */
    double rate_hz;           /* time stamps: default 120 */
    uint64_t seed;            /* default 1 */
    int frame_count;          /* wand frames, default 1500 */
    double wand_marker_m[3];  /* marker positions along the wand: default 0, 0.15, 0.5 */
    double noise_px;          /* default 0.15 */
    double ghost_rate;        /* mean ghost blobs per camera frame, default 0.3 */
    double dropout_rate;      /* probability one marker is missed in one view, default 0.02 */
    double distortion;        /* lens distortion scale of the rig, default 1.0 */
    double marker_diameter_m; /* default 0.014 (decides when markers merge) */
    int ground_frame_count;   /* frames of the static L-frame, default 2400 (20 s) */
    double lframe_height_m;   /* marker centres above the floor, default 0.007 */
    bool collinear_motion;    /* degenerate wave for tests: the wand slides along one fixed
                                 line (its own axis), default false */
} km_synthetic_wand_config;

/* One 2D blob of the generator (obs.csv row plus what it truly is). */
typedef struct km_synthetic_blob {
    int camera;
    double x, y;              /* raw (distorted) pixels */
    double area_px;
    int marker;               /* 0..2 wand / 0..3 L-frame marker; -1 ghost; -2 merged blob */
} km_synthetic_blob;

typedef struct km_synthetic_wand km_synthetic_wand;

km_synthetic_wand_config km_synthetic_wand_config_default(void);
/* NULL and *err (message in km_last_error) on a bad config. Free with
 * km_synthetic_wand_destroy. */
km_synthetic_wand *km_synthetic_wand_create(const km_synthetic_wand_config *cfg,
                                            km_status *err);
void km_synthetic_wand_destroy(km_synthetic_wand *wand); /* accepts NULL */
const km_synthetic_wand_config *km_synthetic_wand_get_config(const km_synthetic_wand *wand);
/* The true rig (world frame: Y up, the floor at Y = 0, the L-frame corner at the origin). */
const km_rig *km_synthetic_wand_rig(const km_synthetic_wand *wand);
/* True world positions of the three wand markers in wand frame `frame`. */
void km_synthetic_wand_markers(const km_synthetic_wand *wand, int frame, km_vec3 out[3]);
/* True world positions of the L-frame markers: corner, long arm 0.3 m and 0.5 m (+X), short
 * arm 0.2 m (+Z), all lframe_height_m above the floor. */
void km_synthetic_lframe_markers(const km_synthetic_wand *wand, km_vec3 out[4]);
/* Blobs of every camera in wand frame `frame` (camera order). Returns the count written (at
 * most capacity; 64 per camera always suffice); -1 on bad arguments. */
int km_synthetic_wand_observe(const km_synthetic_wand *wand, int frame,
                              km_synthetic_blob *out, int capacity);
/* Same for the L-frame, frame in [0, ground_frame_count). */
int km_synthetic_wand_observe_ground(const km_synthetic_wand *wand, int frame,
                                     km_synthetic_blob *out, int capacity);
/* Write the wand frames (and, when ground_path is not NULL, the L-frame frames) as obs.csv
 * (formats.md). KM_ERR_IO naming the file on failure. */
km_status km_synthetic_wand_write_csv(const km_synthetic_wand *wand, const char *wand_path,
                                      const char *ground_path);

/* ------------------------------------------------------------- USB Video Class (uvc) */

/* Our own USB Video Class driver on libusb (capture/uvc*.c; docs/capture.md says why not
 * libuvc). A km_uvc_context owns the libusb context, ONE event thread that runs every
 * transfer callback (payload reassembly, clock mapping) and the hot-plug callbacks, and the
 * isochronous bandwidth booked on each bus. Sources are made from it, one per camera; a
 * camera that is unplugged makes its source report KM_ERR_DEVICE, and it is reattached when
 * it comes back (same serial, or same USB socket when it has none). A stream that delivers no
 * complete frame for `watchdog_periods` frame periods is restarted. */
typedef struct km_uvc_context km_uvc_context;
typedef struct km_uvc_camera km_uvc_camera;

#define KM_UVC_MAX_MODES 64
#define KM_UVC_PATH_MAX 32

/* One format x frame size a camera offers. */
typedef struct km_uvc_mode {
    km_pixel_format format;  /* KM_PIXEL_FORMAT_COUNT: one Kinema cannot take (H264, UYVY) */
    char fourcc[5];          /* "YUY2", "Y800", "MJPG", ... */
    int width, height;
    double min_rate_hz, max_rate_hz;
} km_uvc_mode;

typedef struct km_uvc_device_info {
    uint16_t vendor_id, product_id;
    uint8_t bus;
    char path[KM_UVC_PATH_MAX]; /* "bus-port.port...", e.g. "1-2.3": stays with the socket */
    char serial[KM_NAME_MAX];   /* "" when the camera has none or could not be opened */
    char product[KM_NAME_MAX];
    int speed;               /* 1 low, 2 full, 3 high, 4 super, 5 super+ (libusb numbers) */
    bool opened;             /* it could be opened (permissions): serial and modes known */
    uint16_t uvc_version;    /* bcdUVC, 0x0100 = 1.0 */
    int mode_count;          /* modes beyond KM_UVC_MAX_MODES are left out */
    km_uvc_mode modes[KM_UVC_MAX_MODES];
} km_uvc_device_info;

/* Starts the event thread. Caller frees with km_uvc_context_destroy after destroying every
 * source made from it. */
km_uvc_context *km_uvc_context_create(km_status *err);
void km_uvc_context_destroy(km_uvc_context *ctx); /* accepts NULL */
/* UVC cameras on the machine (opens each briefly to read its serial and descriptors).
 * *count = entries written; KM_ERR_CAPACITY when there were more than capacity. */
km_status km_uvc_list(km_uvc_context *ctx, km_uvc_device_info *out, int capacity, int *count);

typedef struct km_uvc_config {
    char serial[KM_NAME_MAX];   /* open the camera with this serial, */
    char path[KM_UVC_PATH_MAX]; /* or the one in this USB socket; both "": the first camera */
    uint16_t vendor_id, product_id; /* 0 = any */
    int camera;              /* rig index stamped on the frames (default 0) */
    char name[KM_NAME_MAX];  /* "" = the product string */
    km_pixel_format format;  /* KM_PIXEL_FORMAT_COUNT (default): GRAY8, GRAY16, YUYV, MJPEG,
                                the first the camera offers */
    int width, height;       /* 0 = the format's default frame size */
    double rate_hz;          /* 0 = the frame's default; else the nearest supported */
    double exposure_us;      /* > 0: manual exposure in us (auto exposure off); 0 = leave */
    int gain;                /* >= 0: processing-unit gain; -1 (default) = leave */
    bool deliver_incomplete; /* false (default): frames with lost data are dropped;
                                true: delivered with KM_FRAME_FLAG_INCOMPLETE */
    int transfers;           /* transfers in flight (default 4) */
    int packets_per_transfer;/* isochronous packets per transfer (default 32) */
    double watchdog_periods; /* restart after this many frame periods without a complete
                                frame (default 10, at least 200 ms; 0 = no watchdog) */
    double clock_hz;         /* device clock of PTS/SCR; 0 (default) = dwClockFrequency */
} km_uvc_config;

km_uvc_config km_uvc_config_default(void);
/* Read the keys of one `sources.N` entry of type uvc (docs/capture.md); absent keys keep
 * the defaults, unknown keys are an error. */
km_status km_uvc_config_read(const km_config *cfg, const char *path, km_uvc_config *out);

/* Find and open the camera, negotiate the mode (probe/commit), choose the alternate setting
 * and book its bandwidth on the bus: a mode the camera or the bus cannot carry is refused
 * here with KM_ERR_UNSUPPORTED naming the bytes per microframe needed and available.
 * KM_ERR_NOT_FOUND when no camera matches. When `camera` is not NULL it receives a handle
 * for controls and statistics, valid until the source is destroyed. The context must outlive
 * the source. */
km_source *km_uvc_source_create(km_uvc_context *ctx, const km_uvc_config *cfg,
                                km_uvc_camera **camera, km_status *err);
/* Controls; any thread but the context's event thread. Exposure in us (UVC resolution is
 * 100 us; auto exposure is switched to manual); KM_ERR_UNSUPPORTED when the camera lacks the
 * control, KM_ERR_INVALID_ARGUMENT outside the camera's range (the message gives it). */
km_status km_uvc_camera_set_exposure(km_uvc_camera *camera, double exposure_us);
km_status km_uvc_camera_set_gain(km_uvc_camera *camera, int gain);
/* New frame rate by renegotiating (the stream restarts when running). */
km_status km_uvc_camera_set_rate(km_uvc_camera *camera, double rate_hz);

typedef struct km_uvc_stats {
    uint64_t frames;             /* delivered */
    uint64_t incomplete;         /* delivered flagged KM_FRAME_FLAG_INCOMPLETE */
    uint64_t dropped_incomplete; /* damaged and dropped */
    uint64_t dropped_overlong;
    uint64_t dropped_no_buffer;  /* the consumer was not keeping up */
    uint64_t lost_packets;
    uint64_t header_errors;
    uint64_t transfer_errors;
    uint64_t restarts;           /* by the watchdog or a rate change */
    uint64_t disconnects, reattaches;
    bool connected;
    double clock_ppm;            /* device clock rate against its nominal frequency */
    bool clock_valid;
} km_uvc_stats;

void km_uvc_camera_stats(km_uvc_camera *camera, km_uvc_stats *out);

/* ------------------------------------------------------------- Kinect v1 (freenect) */

/* Kinect v1 through libfreenect (capture/freenect.c; docs/capture.md). A km_freenect_context
 * owns the freenect context and the thread that runs freenect_process_events; each source is
 * ONE stream of one Kinect (depth, IR or colour), so a Kinect giving depth and IR is two
 * sources (the device is opened once and shared). Frame time stamps come from the Kinect's
 * 60 MHz frame counter mapped onto CLOCK_MONOTONIC (the same fit as the UVC clock). Built
 * without libfreenect, the functions exist and return KM_ERR_UNSUPPORTED. */
typedef struct km_freenect_context km_freenect_context;

typedef enum km_freenect_stream {
    KM_FREENECT_DEPTH_11BIT = 0, /* raw 11-bit disparity, GRAY16 640x480 (2047 = none) */
    KM_FREENECT_DEPTH_REGISTERED,/* millimetres aligned to the colour camera, DEPTH16 */
    KM_FREENECT_DEPTH_MM,        /* millimetres, not aligned, DEPTH16 */
    KM_FREENECT_IR_8BIT,         /* infrared, GRAY8 640x488 (or 1280x1024 high resolution) */
    KM_FREENECT_IR_10BIT,        /* infrared, GRAY16 */
    KM_FREENECT_VIDEO_RGB,       /* colour, RGB24 640x480 (or 1280x1024) */
    KM_FREENECT_STREAM_COUNT
} km_freenect_stream;

typedef struct km_freenect_config {
    char serial[KM_NAME_MAX];    /* camera serial; "" = by index */
    int index;                   /* device index when no serial (default 0) */
    km_freenect_stream stream;   /* default KM_FREENECT_DEPTH_11BIT */
    bool high_resolution;        /* IR/colour 1280x1024 (default false: 640x480/488) */
    int camera;                  /* rig index stamped on frames (default 0) */
    bool led_off;                /* switch the LED off (default true: no stray light) */
    bool set_tilt;               /* move the tilt motor to tilt_deg (default false) */
    double tilt_deg;             /* -27..27 */
    double watchdog_s;           /* restart the stream after this long without a frame
                                    (default 1, 0 = never) */
} km_freenect_config;

km_freenect_context *km_freenect_context_create(km_status *err);
void km_freenect_context_destroy(km_freenect_context *ctx); /* after its sources; NULL ok */
/* Serials of the connected Kinects, in index order. *count = entries written;
 * KM_ERR_CAPACITY when there are more. */
km_status km_freenect_list(km_freenect_context *ctx, char (*serials)[KM_NAME_MAX], int capacity,
                           int *count);
km_freenect_config km_freenect_config_default(void);
/* Keys of one `sources.N` entry of type freenect (docs/capture.md). */
km_status km_freenect_config_read(const km_config *cfg, const char *path,
                                  km_freenect_config *out);
/* Open (or share) the Kinect and set up the stream. KM_ERR_NOT_FOUND when no Kinect matches,
 * KM_ERR_UNSUPPORTED for a stream the device cannot give (or two video streams of one
 * Kinect: IR and colour share its video endpoint). The context must outlive the source. */
km_source *km_freenect_source_create(km_freenect_context *ctx, const km_freenect_config *cfg,
                                     km_status *err);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CAPTURE_H */
