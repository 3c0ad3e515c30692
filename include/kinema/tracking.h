/* Kinema tracking: from images to 3D markers.
 *   detect      - 2D blobs in one 8-bit image: threshold, connected regions, subpixel
 *                 intensity-weighted centroids, area/roundness filters. Plain C, no
 *                 allocation per frame.
 *   reconstruct - 2D observations of all cameras of a calibrated rig -> 3D markers:
 *                 correspondence across views, triangulation, outlier rejection.
 * Inputs and outputs follow formats.md (obs.csv, markers.csv). */
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

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_TRACKING_H */
