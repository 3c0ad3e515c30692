/* Kinema gesture: dynamic gestures recognised from trajectories of one tracked point
 * (a hand centre, a fingertip, a marker, a pen tip).
 *   trajectory  - a fixed-capacity list of 3D points with timestamps; resampling to N points
 *                 equally spaced along the path; normalisation of position, scale and
 *                 (optionally) rotation.
 *   recognizer  - a template recognizer: labelled templates, a matching cost between
 *                 normalised trajectories, a rejection threshold ("no gesture") and a score in
 *                 [0,1]. Templates are preallocated; classification allocates nothing, so an
 *                 online spotter can hand it windows of a stream frame after frame.
 *   dollar1     - the classic $1 unistroke recognizer (Wobbrock, Wilson & Li, UIST 2007),
 *                 kept as the baseline every accuracy figure is compared against.
 *   model       - a trained recognizer saved as a versioned text file (docs/formats.md,
 *                 "Gesture model").
 *   data sets   - readers for traj.csv (formats.md), the $1 XML logs and the unified JSON of
 *                 the 3D gesture data sets (3DTCGS, SHREC 2019), into a labelled sample set.
 * Inputs: points in any consistent unit (metres in the pipeline; 2D data use z = 0).
 * Outputs: a label index/name, a score and the matching cost. See docs/gestures.md. */
#ifndef KINEMA_GESTURE_H
#define KINEMA_GESTURE_H

#include <stdio.h>

#include "kinema/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest label or sample id, including the terminating NUL. */
#define KM_GESTURE_NAME_MAX 64

/* -------------------------------------------------------------- trajectory */

/* Structure of arrays with its capacity: `pos[i]` was at `t_ns[i]`. The arrays are owned by
 * whoever called km_trajectory_init (freed by km_trajectory_release). Times are
 * nanoseconds on any one time base (CLOCK_MONOTONIC live, the recording's clock offline). */
typedef struct km_trajectory {
    km_vec3 *pos;
    int64_t *t_ns;
    size_t count;
    size_t capacity;
} km_trajectory;

/* Allocates room for `capacity` points (count = 0). KM_ERR_NO_MEMORY on failure. */
km_status km_trajectory_init(km_trajectory *traj, size_t capacity);
/* Frees the arrays and zeroes the struct; NULL and zeroed structs are accepted. */
void km_trajectory_release(km_trajectory *traj);
void km_trajectory_clear(km_trajectory *traj);
/* Appends one point; KM_ERR_CAPACITY when full (nothing is written). */
km_status km_trajectory_push(km_trajectory *traj, km_vec3 pos, int64_t t_ns);

/* Sum of the segment lengths. */
double km_gesture_path_length(const km_vec3 *pos, size_t count);

/* Resample `count` points (count >= 1) to `n` points (n >= 2) equally spaced along the path
 * by linear interpolation: out[0] is the first point, out[n-1] the last. A path of zero
 * length gives n copies of the first point. No allocation. */
km_status km_gesture_resample(const km_vec3 *pos, size_t count, km_vec3 *out, size_t n);

typedef enum km_gesture_scale {
    KM_GESTURE_SCALE_RMS_RADIUS = 0, /* divide by the RMS distance to the centroid */
    KM_GESTURE_SCALE_BBOX_DIAGONAL,  /* divide by the diagonal of the bounding box */
    KM_GESTURE_SCALE_AXES,           /* each axis by its own RMS (like $1's scale to a square,
                                        so writers' aspect ratios matter less), but never by
                                        less than 0.3 x the largest axis RMS, so a thin axis
                                        (a swipe's width, a planar gesture's depth) is scaled
                                        with the others instead of blowing up its noise */
    KM_GESTURE_SCALE_COUNT
} km_gesture_scale;

typedef enum km_gesture_rotation {
    KM_GESTURE_ROTATE_NONE = 0,       /* keep the orientation (it carries meaning: swipe left
                                         vs right, caret vs v) */
    KM_GESTURE_ROTATE_INDICATIVE_2D,  /* $1: rotate about z so that centroid->first point
                                         lies on +x */
    KM_GESTURE_ROTATE_PCA_3D,         /* principal axes onto x,y,z (largest variance first),
                                         signs chosen so the first point lies on the negative
                                         side of each axis; right-handed */
    KM_GESTURE_ROTATION_COUNT
} km_gesture_rotation;

/* In place: translate the centroid to the origin, optionally rotate, scale by the chosen
 * measure. KM_ERR_NUMERIC when the points are all at one place (nothing to scale). */
km_status km_gesture_normalize(km_vec3 *pts, size_t n, km_gesture_scale scale,
                               km_gesture_rotation rotation);

/* Short names ("rms_radius", "indicative_2d", ...) used in the model file, and parsers
 * (KM_ERR_INVALID_ARGUMENT for unknown names). */
const char *km_gesture_scale_name(km_gesture_scale scale);
const char *km_gesture_rotation_name(km_gesture_rotation rotation);
km_status km_gesture_scale_parse(const char *name, km_gesture_scale *out);
km_status km_gesture_rotation_parse(const char *name, km_gesture_rotation *out);

/* -------------------------------------------------------------- recognizer */

typedef enum km_gesture_matcher {
    KM_GESTURE_MATCH_PATH = 0, /* mean distance of corresponding resampled points, with an
                                  optional golden-section search of a rotation about z */
    KM_GESTURE_MATCH_DTW,      /* dynamic time warping (Sakoe-Chiba band), mean distance along
                                  the warping path */
    KM_GESTURE_MATCH_CLOUD,    /* $P-like greedy point-cloud matching (ignores stroke order) */
    KM_GESTURE_MATCHER_COUNT
} km_gesture_matcher;

const char *km_gesture_matcher_name(km_gesture_matcher matcher);
km_status km_gesture_matcher_parse(const char *name, km_gesture_matcher *out);

typedef struct km_gesture_config {
    size_t resample_count;       /* points per normalised trajectory (default 64, 8..1024) */
    size_t max_templates;        /* template capacity, allocated at create (default 512) */
    km_gesture_scale scale;      /* default RMS radius (see docs/gestures.md for the evidence) */
    km_gesture_rotation rotation;/* default none */
    km_gesture_matcher matcher;  /* default DTW (docs/gestures.md has the comparison) */
    double search_angle_rad;     /* PATH: search a rotation about z in +-this (default 0.2;
                                    0 = no search) */
    double search_threshold_rad; /* PATH: golden-section stops at this bracket (default 2 deg) */
    double dtw_band;             /* DTW: band half-width as a fraction of N (default 0.1) */
    double cost_at_zero_score;   /* score = max(0, 1 - cost / this) (default 1.0, in units of
                                    the normalised scale) */
    double min_score;            /* best score below this -> no gesture (default 0.3) */
} km_gesture_config;

km_gesture_config km_gesture_config_default(void);
/* KM_ERR_INVALID_ARGUMENT (with a message naming the field) when a value is out of range. */
km_status km_gesture_config_check(const km_gesture_config *cfg);

typedef struct km_gesture_recognizer km_gesture_recognizer;

typedef struct km_gesture_result {
    int label;            /* index of the recognised label, -1 = no gesture (rejected) */
    const char *name;     /* its name, "" when rejected; owned by the recognizer */
    int best_label;       /* the closest label even when rejected, -1 without templates */
    int best_template;    /* index of the closest template */
    double score;         /* [0,1] score of the closest template */
    double cost;          /* its matching cost (normalised units) */
    double second_score;  /* best score among the other labels (0 when none) */
} km_gesture_result;

/* Allocates everything (templates, scratch) once. Returns NULL and sets *err (and
 * km_last_error) on failure. Destroy with km_gesture_recognizer_destroy (NULL accepted). */
km_gesture_recognizer *km_gesture_recognizer_create(const km_gesture_config *cfg,
                                                    km_status *err);
void km_gesture_recognizer_destroy(km_gesture_recognizer *rec);
const km_gesture_config *km_gesture_recognizer_config(const km_gesture_recognizer *rec);

/* Adds a template: the points are resampled and normalised into the recognizer's own
 * storage (the caller keeps its points). `label` is 1..63 characters of [A-Za-z0-9_.-].
 * KM_ERR_CAPACITY when max_templates are loaded. No allocation. */
km_status km_gesture_recognizer_add(km_gesture_recognizer *rec, const char *label,
                                    const km_vec3 *pos, size_t count);
/* Adds an already resampled and normalised template (resample_count points), as the model
 * reader does. */
km_status km_gesture_recognizer_add_normalized(km_gesture_recognizer *rec, const char *label,
                                               const km_vec3 *pts, size_t count);
/* Removes every template (labels too). */
void km_gesture_recognizer_clear(km_gesture_recognizer *rec);
size_t km_gesture_recognizer_template_count(const km_gesture_recognizer *rec);
size_t km_gesture_recognizer_label_count(const km_gesture_recognizer *rec);
/* Name of label index i; NULL when out of range. Owned by the recognizer. */
const char *km_gesture_recognizer_label_name(const km_gesture_recognizer *rec, size_t i);
/* Label index of template t and its normalised points (resample_count of them); NULL when
 * out of range. Pointers stay valid until the next add/clear. */
const km_vec3 *km_gesture_recognizer_template(const km_gesture_recognizer *rec, size_t t,
                                              int *label);

/* Classifies one trajectory (count >= 2 points, e.g. a window of a stream). Uses the
 * recognizer's preallocated scratch: no allocation, and one thread at a time per
 * recognizer. KM_ERR_INVALID_ARGUMENT for too few points, KM_ERR_NOT_FOUND without
 * templates; a degenerate (motionless) input gives KM_OK with label -1 and score 0. */
km_status km_gesture_classify(km_gesture_recognizer *rec, const km_vec3 *pos, size_t count,
                              km_gesture_result *out);

/* ------------------------------------------------------------- $1 baseline */

/* The $1 unistroke recognizer as published (x,y only; z ignored): resample to 64 points,
 * rotate to the indicative angle, scale non-uniformly to a 250 square, translate the
 * centroid to the origin, golden-section search over +-45 deg down to 2 deg;
 * score = 1 - d / (0.5 * sqrt(250^2 + 250^2)). Never rejects. */
typedef struct km_dollar1 km_dollar1;

km_dollar1 *km_dollar1_create(size_t max_templates, km_status *err);
void km_dollar1_destroy(km_dollar1 *d);
km_status km_dollar1_add(km_dollar1 *d, const char *label, const km_vec3 *pos, size_t count);
size_t km_dollar1_template_count(const km_dollar1 *d);
/* label = index of the best template's label among those added (in order of first use). */
km_status km_dollar1_classify(km_dollar1 *d, const km_vec3 *pos, size_t count,
                              km_gesture_result *out);

/* ------------------------------------------------------------------- model */

/* Writes the configuration and the normalised templates (docs/formats.md, "Gesture
 * model"). KM_ERR_IO with errno text on failure. */
km_status km_gesture_model_write(const km_gesture_recognizer *rec, FILE *f);
km_status km_gesture_model_save(const km_gesture_recognizer *rec, const char *path);
/* Reads a model; NULL and *err + km_last_error "name:line: why" on any malformed input.
 * The recognizer's capacity is max(templates in the file, cfg_override max_templates) when
 * `max_templates` > 0, else exactly the file's template count. Caller destroys it. */
km_gesture_recognizer *km_gesture_model_parse(const char *text, size_t length, const char *name,
                                              size_t max_templates, km_status *err);
km_gesture_recognizer *km_gesture_model_load(const char *path, size_t max_templates,
                                             km_status *err);

/* --------------------------------------------------------------- data sets */

/* One labelled trajectory read from a data set. */
typedef struct km_gesture_sample {
    char id[KM_GESTURE_NAME_MAX];    /* sample id (traj.csv `sample`, file name, ...) */
    char label[KM_GESTURE_NAME_MAX]; /* gesture class */
    int subject;                     /* writer/user number, -1 when unknown */
    km_trajectory traj;              /* owned by the set */
} km_gesture_sample;

/* A growing list of samples (files are read offline, not on the per-frame path). */
typedef struct km_gesture_set {
    km_gesture_sample *samples;
    size_t count;
    size_t capacity;
} km_gesture_set;

/* Caller destroys with km_gesture_set_destroy (NULL accepted). */
km_gesture_set *km_gesture_set_create(void);
void km_gesture_set_destroy(km_gesture_set *set);
/* Copies the points (t_ns may be NULL: times become 0). */
km_status km_gesture_set_add(km_gesture_set *set, const char *id, const char *label,
                             int subject, const km_vec3 *pos, const int64_t *t_ns,
                             size_t count);

/* traj.csv of formats.md: header `sample,label,t_ns,x,y,z` (more columns may follow and are
 * ignored), `#` comments, rows of one sample contiguous and in time order. Every sample is
 * appended to `set`. Errors: KM_ERR_PARSE "name:line: why"; the set may then hold the
 * samples read before the error. */
km_status km_gesture_parse_traj_csv(km_gesture_set *set, const char *text, size_t length,
                                    const char *name);
km_status km_gesture_load_traj_csv(km_gesture_set *set, const char *path);
km_status km_gesture_write_traj_csv(const km_gesture_set *set, FILE *f);

/* One $1 XML log (<Gesture Name=.. Subject=.. NumPts=..> <Point X Y T/>... </Gesture>, UTF-8
 * with or without BOM). Label = Name without its trailing repetition digits; T (ms) -> t_ns;
 * z = 0. NumPts must match the points read. */
km_status km_gesture_parse_dollar1_xml(km_gesture_set *set, const char *text, size_t length,
                                       const char *name);
km_status km_gesture_load_dollar1_xml(km_gesture_set *set, const char *path);

/* One file of the unified JSON of Ousmer et al. 2020 ({name, subject, strokes:[{x,y,z,t,
 * stroke_id}]}, or {name, subject, paths:{<key>:{strokes:[...]}}} for hand data, where
 * `path_key` selects the tracked point, e.g. "Palm"; path_key NULL reads top-level
 * `strokes`). Strokes are concatenated in file order; t is multiplied by `t_to_ns`
 * (1e6 for milliseconds, 1e9 for seconds). The whole document must be valid JSON. */
km_status km_gesture_parse_unified_json(km_gesture_set *set, const char *text, size_t length,
                                        const char *name, const char *path_key,
                                        double t_to_ns);
km_status km_gesture_load_unified_json(km_gesture_set *set, const char *path,
                                       const char *path_key, double t_to_ns);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_GESTURE_H */
