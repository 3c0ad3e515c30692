/* Kinema tracking: from images to 3D markers.
 *   detect      - 2D blobs in one 8-bit image: threshold, connected regions, subpixel
 *                 intensity-weighted centroids, area/roundness filters. Plain C, no
 *                 allocation per frame.
 *   reconstruct - 2D observations of all cameras of a calibrated rig -> 3D markers:
 *                 correspondence across views, triangulation, outlier rejection.
 *   track       - 3D markers of successive frames -> persistent marker ids.
 *   rigid       - 3D markers -> rigid-body poses (6-DoF) from marker constellations.
 * Inputs and outputs follow formats.md (obs.csv, markers.csv, rigid.csv). */
#ifndef KINEMA_TRACKING_H
#define KINEMA_TRACKING_H

#include <stdio.h>

#include "kinema/calib.h"
#include "kinema/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ detect */

typedef struct km_detect_config {
    int threshold;           /* grey level a pixel must exceed to belong to a blob (default 64) */
    int min_area_px;         /* default 3 */
    int max_area_px;         /* default 4000 */
    double min_roundness;    /* minor/major axis ratio of the blob's moment ellipse, in [0,1]
                              * (see km_blob.roundness; default 0.4) */
    int max_blobs;           /* capacity of the per-frame blob list (default 512) */
} km_detect_config;

typedef struct km_blob {
    double x, y;             /* subpixel intensity-weighted centroid, raw (distorted) pixels;
                              * pixel (0,0) is the centre of the top-left pixel */
    double area_px;          /* pixel count above threshold */
    double roundness;        /* sqrt(lambda_min / lambda_max) of the intensity-weighted
                              * covariance of the blob, each pixel counted as a unit square
                              * (+1/12 px^2 on the diagonal): 1 for a disk, ~0.1 for a 1x10
                              * line, 1 for a single pixel */
    double intensity;        /* sum of (value - threshold) */
    int min_x, min_y, max_x, max_y; /* bounding box, inclusive, in pixels */
    uint32_t flags;          /* KM_BLOB_FLAG_* */
} km_blob;

/* The blob touches the image border: part of the marker may be cut off, so its centroid
 * can be biased towards the inside. Such blobs are kept (filters still apply). */
#define KM_BLOB_FLAG_BORDER 0x1u

typedef struct km_detector km_detector;

km_detect_config km_detect_config_default(void);
/* All buffers for images up to max_width x max_height are allocated here, once. */
km_detector *km_detector_create(const km_detect_config *cfg, int max_width, int max_height,
                                km_status *err);
void km_detector_destroy(km_detector *detector);
/* Detect blobs in an 8-bit image. Writes at most `capacity` blobs to out and sets *count.
 * KM_ERR_CAPACITY (with the first `capacity` blobs kept) when there were more. No
 * allocation.
 * Connected regions are 8-connected. Blobs are sorted by y, then x; on overflow the kept
 * blobs are the first `capacity` of that order (the top-most ones). width/height must not
 * exceed the sizes given to km_detector_create; stride >= width. The image is only read.
 * One detector must not be run from two threads at once (it owns scratch buffers). */
km_status km_detector_run(km_detector *detector, const uint8_t *image, int width, int height,
                          int stride, km_blob *out, int capacity, int *count);

/* ------------------------------------------------------------ observations */

/* One 2D observation (a row of obs.csv). */
typedef struct km_observation {
    double x, y;             /* raw (distorted) pixels */
    double area_px;
    int camera;              /* index in the rig */
} km_observation;

/* All 2D observations of one frame set. Preallocated with a fixed capacity. */
typedef struct km_observation_set {
    uint64_t frame;
    uint64_t time_ns;
    int count;
    int capacity;
    km_observation *items;   /* owned by whoever created the set */
} km_observation_set;

/* ------------------------------------------------------------------ markers */

typedef struct km_marker {
    uint32_t id;             /* track id (persistent once tracking exists; per-frame index now) */
    km_vec3 pos_m;
    double residual_px;      /* mean reprojection error over the views used */
    int views;               /* cameras that saw it */
} km_marker;

typedef struct km_marker_set {
    uint64_t frame;
    uint64_t time_ns;
    int count;
    int capacity;
    km_marker *items;
} km_marker_set;

/* ------------------------------------------------------------- reconstruct */

typedef struct km_reconstruct_config {
    double max_epipolar_px;  /* correspondence gate: distance to the epipolar line (default 2.0) */
    double max_residual_px;  /* reject 3D points with a larger mean reprojection error (default 2.0) */
    int min_views;           /* default 2 */
    int max_markers;         /* default 512 */
    int max_observations;    /* per frame set, all cameras (default 8192) */
    double prior_gate_m;     /* with a prior (km_reconstructor_set_prior): a two-view point
                              * needs a predicted marker this near (default 0.03) */
} km_reconstruct_config;

typedef struct km_reconstructor km_reconstructor;

km_reconstruct_config km_reconstruct_config_default(void);
/* Copies the rig. Buffers sized from the config, allocated once. */
km_reconstructor *km_reconstructor_create(const km_reconstruct_config *cfg, const km_rig *rig,
                                          km_status *err);
void km_reconstructor_destroy(km_reconstructor *rec);
/* Observations of one frame set in, markers out (out->capacity respected, KM_ERR_CAPACITY
 * when exceeded). No allocation. */
km_status km_reconstructor_run(km_reconstructor *rec, const km_observation_set *obs,
                               km_marker_set *out);
/* Optional prior for the next km_reconstructor_run only: the predicted marker positions of
 * that frame (best: km_tracker_predict; or simply the previous frame's markers). Two uses:
 * - speed: each predicted marker is built first, straight from the observations nearest
 *   to its projections (within 0.5 x max_residual_px), with the same outlier and residual
 *   tests as a point from the epipolar search; it is kept only when it has >= 5 views and
 *   lies within a fraction of that gate of the prediction (a good prediction). The search
 *   then runs on the observations left over (new markers, reflections, markers whose
 *   prediction was off). A wrong or stale prediction costs one gather and falls back to the
 *   search; a prediction never makes a marker that the observations do not support.
 * - two-view points: a point seen by two cameras only cannot be checked by a third; with a
 *   prior it is accepted only within prior_gate_m of a predicted position that no other
 *   marker of the frame is nearer to, which removes the two-view ghosts that reflections
 *   make. The positions are copied (ids ignored; at most max_markers, the
 * rest dropped with KM_ERR_CAPACITY); NULL or an empty set clears it. No allocation. */
km_status km_reconstructor_set_prior(km_reconstructor *rec, const km_marker_set *predicted);

/* Triangulate one point from n >= 2 views (linear DLT on undistorted rays, then
 * Gauss–Newton on reprojection error). residual_px may be NULL. */
km_status km_triangulate(const km_rig *rig, const int *cameras, const double *u,
                         const double *v, int n, km_vec3 *out, double *residual_px);

/* --------------------------------------------------------------- CSV files */

/* obs.csv reader: one frame set at a time, in file order. Rows of a frame must be
 * contiguous. Malformed lines -> KM_ERR_PARSE naming file and line. */
typedef struct km_obs_reader km_obs_reader;
km_obs_reader *km_obs_reader_open(const char *path, km_status *err);
void km_obs_reader_close(km_obs_reader *reader);
/* KM_ERR_END_OF_STREAM after the last frame. */
km_status km_obs_reader_next(km_obs_reader *reader, km_observation_set *out);
/* The same reader over text in memory (not copied: it must outlive the reader); `name`
 * stands for the file name in messages. For tests and the fuzz target. */
km_obs_reader *km_obs_reader_open_memory(const char *text, size_t length, const char *name,
                                         km_status *err);

/* markers.csv reader, same rules (extra columns such as `label` are ignored). Frames with
 * more rows than out->capacity -> KM_ERR_CAPACITY. */
typedef struct km_markers_reader km_markers_reader;
km_markers_reader *km_markers_reader_open(const char *path, km_status *err);
km_markers_reader *km_markers_reader_open_memory(const char *text, size_t length,
                                                 const char *name, km_status *err);
void km_markers_reader_close(km_markers_reader *reader);
/* KM_ERR_END_OF_STREAM after the last frame. */
km_status km_markers_reader_next(km_markers_reader *reader, km_marker_set *out);

/* Writers append rows; the header is written by the _header functions. */
void km_obs_csv_write_header(FILE *f);
void km_obs_csv_write(FILE *f, const km_observation_set *obs);
void km_markers_csv_write_header(FILE *f);
void km_markers_csv_write(FILE *f, const km_marker_set *markers);

/* ---------------------------------------------------------- marker tracking */

/* km_tracker: 3D markers of successive frames in (from km_reconstructor_run), the same
 * markers out with persistent ids (km_marker.id) that stay with a physical marker while it
 * is tracked.
 * Each track predicts its position with constant velocity; measured markers are assigned to
 * predictions within gate_m by a global assignment (exact minimum-cost on each cluster of
 * competing tracks, a spatial hash keeps candidate search linear in the marker count).
 * A track that misses frames keeps predicting and takes its marker back when it reappears
 * within max_gap_frames (gap bridging); after that it dies and its id is never reused.
 * Unassigned markers start tentative tracks that get an id after birth_frames consecutive
 * frames. Optional smoothing: an alpha-beta filter per track (no added frame delay: the
 * output of frame k uses frames <= k only). Sizes fixed at create: no allocation per frame.
 * One tracker is used by one thread at a time. */

/* A track that is bridging a gap (fill_gaps) is reported with views = 0 at its predicted
 * position. */
typedef struct km_tracker_config {
    int max_tracks;          /* live + tentative tracks (default 1024) */
    int max_markers;         /* markers per input frame (default 512) */
    double gate_m;           /* max distance prediction -> marker (default 0.03) */
    int max_gap_frames;      /* a track survives this many frames without a marker (default 10) */
    int birth_frames;        /* consecutive frames before a new track gets an id (default 1) */
    bool fill_gaps;          /* also output predicted positions of tracks in a gap (default false) */
    double smoothing_alpha;  /* alpha-beta position gain in (0,1]; 1 = off (default 1) */
    double smoothing_beta;   /* alpha-beta velocity gain, used when alpha < 1 (default 0.1) */
    double frame_period_s;   /* used when time_ns does not advance (default 1/120) */
} km_tracker_config;

/* Counters since create (or reset), for reports and tests. */
typedef struct km_tracker_stats {
    uint64_t frames;
    uint64_t births;         /* tracks that got an id */
    uint64_t deaths;         /* tracks that ended (gap longer than max_gap_frames) */
    uint64_t bridged;        /* gaps closed: a track took a marker back after >= 1 missed frame */
    uint64_t unassigned;     /* markers not output (tentative or no track capacity) */
} km_tracker_stats;

typedef struct km_tracker km_tracker;

km_tracker_config km_tracker_config_default(void);
/* All buffers allocated here. NULL with *err set on a bad config. Free with
 * km_tracker_destroy (accepts NULL). */
km_tracker *km_tracker_create(const km_tracker_config *cfg, km_status *err);
void km_tracker_destroy(km_tracker *tracker);
/* Forget all tracks (ids keep increasing). */
void km_tracker_reset(km_tracker *tracker);
/* One frame: `in` markers (ids ignored) -> `out` markers with persistent ids (ids start at 1),
 * in input order, then gap fills when fill_gaps. `in` and `out` may be the same set. Input
 * frames must come in time order. KM_ERR_CAPACITY when in->count > max_markers (nothing
 * tracked) or out->capacity is too small (the first ones kept). No allocation. */
km_status km_tracker_update(km_tracker *tracker, const km_marker_set *in, km_marker_set *out);
/* Predicted positions of all live tracks (including tentative ones and those in a gap) for
 * the coming frame `frame` at `time_ns`: the same constant-velocity predictions that
 * km_tracker_update will assign that frame's markers to. Meant for
 * km_reconstructor_set_prior before km_reconstructor_run of that frame, which then builds
 * the predicted markers straight from their projections and searches only the rest.
 * items[k].id is the track id (0 while tentative), views 0, residual_px 0. Writes at most
 * out->capacity (KM_ERR_CAPACITY with the first ones kept). No allocation; does not change
 * the tracker. */
km_status km_tracker_predict(const km_tracker *tracker, uint64_t frame, uint64_t time_ns,
                             km_marker_set *out);
km_tracker_stats km_tracker_get_stats(const km_tracker *tracker);
/* Velocity (m/s) of the live track with this id; KM_ERR_NOT_FOUND when there is none. */
km_status km_tracker_velocity(const km_tracker *tracker, uint32_t id, km_vec3 *out);

/* ------------------------------------------------------------- rigid bodies */

/* Rigid bodies: a definition is a constellation of markers in the body's own frame. The
 * rigid tracker finds each body among the 3D markers of a frame by inter-marker distances
 * (works with one marker missing), solves its 6-DoF pose by weighted Kabsch (SVD), and
 * tracks it with a constant-velocity prediction so that later frames take the markers
 * nearest to the predicted positions. Definitions are read and written as YAML
 * (docs/formats.md "Rigid body definitions"); poses are written as rigid.csv. */

#define KM_RIGID_MAX_MARKERS 16
#define KM_RIGID_NO_MARKER UINT32_MAX

typedef struct km_rigid_definition {
    char name[KM_NAME_MAX];  /* unique, non-empty, no ',' (it is a rigid.csv column) */
    uint32_t id;             /* unique */
    int marker_count;        /* 3..KM_RIGID_MAX_MARKERS */
    km_vec3 markers_m[KM_RIGID_MAX_MARKERS]; /* marker centres in the body frame, metres */
    double marker_diameter_m;/* 0 = not given */
} km_rigid_definition;

/* Validate one definition: name, marker count, finite coordinates, markers at least 1 mm
 * apart, not all on one line. KM_ERR_INVALID_ARGUMENT with the reason in km_last_error(). */
km_status km_rigid_definition_validate(const km_rigid_definition *def);
/* A definition from world marker positions (a recorded frame): the body frame has its origin
 * at the markers' centroid and the world's axes. */
km_status km_rigid_definition_from_points(const char *name, uint32_t id, const km_vec3 *pos_m,
                                          int count, km_rigid_definition *out);

/* Two definitions that could be confused: marker subset of `b` (all, or all but one) can be
 * laid onto all or all but one of the markers of `a` with a mean error below tolerance. */
typedef struct km_rigid_confusion {
    int a, b;                /* definition indices, a != b */
    double error_m;          /* mean marker error of the best fit */
    int matched;             /* markers of a that fitted */
} km_rigid_confusion;

/* Unique-constellation check over a set of definitions: writes up to `capacity` confusable
 * pairs to out (may be NULL) and returns how many there are; each one is also logged as a
 * warning (module "rigid"). tolerance_m: the identification tolerance (e.g. 0.004). */
int km_rigid_definitions_check(const km_rigid_definition *defs, int count, double tolerance_m,
                               km_rigid_confusion *out, int capacity);

/* Weighted Kabsch: the rotation and translation that map local[i] onto world[i] best in the
 * weighted least-squares sense (weights may be NULL = all 1; n >= 3, not collinear).
 * world = pos + rot * local. error_m (may be NULL): mean distance of the fitted markers. */
km_status km_rigid_solve_pose(const km_vec3 *local, const km_vec3 *world, const double *weights,
                              int n, km_vec3 *pos_m, km_quat *rot, double *error_m);

typedef struct km_rigid_config {
    double tolerance_m;      /* inter-marker distance tolerance when identifying (default 0.004) */
    double max_error_m;      /* reject a pose whose mean marker error is larger (default 0.003) */
    double gate_m;           /* search radius around predicted marker positions (default 0.02) */
    int max_missing;         /* markers a body may miss and still be tracked (default 1; at
                              * least 3 markers are always needed) */
    int max_markers;         /* markers per input frame (default 512) */
    double orientation_smoothing; /* orientation filter in [0, 0.9]: 0 = off, each frame's
                              * measured orientation as is; s > 0: an alpha-beta filter with
                              * alpha = 1 - s on the orientation, origin from the measured
                              * markers' centroid; no added delay (default 0.3; see
                              * docs/tracking.md) */
} km_rigid_config;

typedef struct km_rigid_pose {
    uint32_t id;             /* definition id */
    int definition;          /* index in the definitions given at create */
    bool tracked;            /* solved this frame; otherwise pos_m/rot hold the last pose
                              * (identity at the origin before the first) and error_m is 0 */
    km_vec3 pos_m;           /* origin of the body frame in the world */
    km_quat rot;             /* body frame -> world */
    double error_m;          /* mean distance between fitted and measured markers */
    int markers_used;
    /* km_marker.id of the marker matched to each definition marker, KM_RIGID_NO_MARKER when
     * missing; index into the input set when ids are not unique. */
    uint32_t marker_ids[KM_RIGID_MAX_MARKERS];
} km_rigid_pose;

typedef struct km_rigid_tracker km_rigid_tracker;

km_rigid_config km_rigid_config_default(void);
/* Copies the definitions (each validated; ids and names must be unique). Runs the
 * unique-constellation check (warnings only). Free with km_rigid_tracker_destroy. */
km_rigid_tracker *km_rigid_tracker_create(const km_rigid_config *cfg,
                                          const km_rigid_definition *defs, int count,
                                          km_status *err);
void km_rigid_tracker_destroy(km_rigid_tracker *tracker);
void km_rigid_tracker_reset(km_rigid_tracker *tracker);
int km_rigid_tracker_count(const km_rigid_tracker *tracker);
const km_rigid_definition *km_rigid_tracker_definition(const km_rigid_tracker *tracker, int index);
/* One frame of 3D markers (persistent ids not required) -> one pose per definition, in
 * definition order (out needs room for all: KM_ERR_CAPACITY otherwise). Each marker serves at
 * most one body. No allocation. */
km_status km_rigid_tracker_update(km_rigid_tracker *tracker, const km_marker_set *markers,
                                  km_rigid_pose *out, int capacity);

/* Definitions file (YAML, docs/formats.md). Reads at most `capacity` definitions into out
 * and sets *count; every error (syntax, unknown key, bad value, duplicate name or id, more
 * than capacity) is KM_ERR_PARSE naming file:line. */
km_status km_rigid_definitions_load(const char *path, km_rigid_definition *out, int capacity,
                                    int *count);
/* Same, from text in memory; `name` stands for the file name in messages. */
km_status km_rigid_definitions_parse(const char *text, size_t length, const char *name,
                                     km_rigid_definition *out, int capacity, int *count);
km_status km_rigid_definitions_save(const char *path, const km_rigid_definition *defs,
                                    int count);
/* rigid.csv (formats.md): frame,time_ns,rigid_id,name,x,y,z,qx,qy,qz,qw,error_m,tracked */
void km_rigid_csv_write_header(FILE *f);
void km_rigid_csv_write(FILE *f, uint64_t frame, uint64_t time_ns,
                        const km_rigid_definition *defs, const km_rigid_pose *poses, int count);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_TRACKING_H */
