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
 *   hands       - km_hand: a tracked hand (centre and/or the 21-landmark layout), validated.
 *   events      - km_gesture_event: what the stage reports (hand poses, gestures, hand-eye),
 *                 and its JSON Lines form (docs/formats.md "Events").
 *   hand poses  - pinch, fist, point, open palm, thumbs-up from the landmarks, debounced
 *                 per hand into start/hold/end events (gesture/handpose.c).
 *   spotting    - km_spotter: gestures found in the continuous stream of one point
 *                 (motion segmentation + the recognizer), and the built-in gesture set
 *                 (gesture/spotter.c, gesture/builtin.c).
 *   hand-eye    - gaze and pointing rays against named targets: gaze enter/leave, reach,
 *                 look-and-pinch select, gaze-hand angle, gaze lead (gesture/handeye.c).
 *   engine      - km_gesture_engine: all of the above for the live pipeline, fed with bodies,
 *                 landmark hands and gaze per frame, stepped for the events (gesture/engine.c).
 * Inputs: points in any consistent unit (metres in the pipeline; 2D data use z = 0).
 * Outputs: a label index/name, a score and the matching cost; events. See docs/gestures.md
 * ("The engine" lists the calls per frame; km_gesture_engine wires them). */
#ifndef KINEMA_GESTURE_H
#define KINEMA_GESTURE_H

#include <stdbool.h>
#include <stdint.h>
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


/* ==================================================================== hands
 * A tracked hand: at least a position (palm centre or wrist), and when the source gives
 * them the 21 landmarks of the layout common hand trackers use (MediaPipe, Leap/Ultraleap
 * exports, depth-based estimators): the wrist, then four points per finger from the palm
 * outwards. Sources: skeleton hand joints, hand rigid bodies / finger markers, depth hands,
 * external trackers sending landmarks over OSC/ZeroMQ (transport/ decodes those messages
 * into this struct and calls km_hand_validate before use). Positions in metres, world frame
 * (Y up) in the pipeline; any consistent frame offline. */

#define KM_HAND_LANDMARK_COUNT 21

typedef enum km_hand_landmark {
    KM_HAND_WRIST = 0,
    KM_HAND_THUMB_CMC, KM_HAND_THUMB_MCP, KM_HAND_THUMB_IP, KM_HAND_THUMB_TIP,
    KM_HAND_INDEX_MCP, KM_HAND_INDEX_PIP, KM_HAND_INDEX_DIP, KM_HAND_INDEX_TIP,
    KM_HAND_MIDDLE_MCP, KM_HAND_MIDDLE_PIP, KM_HAND_MIDDLE_DIP, KM_HAND_MIDDLE_TIP,
    KM_HAND_RING_MCP, KM_HAND_RING_PIP, KM_HAND_RING_DIP, KM_HAND_RING_TIP,
    KM_HAND_PINKY_MCP, KM_HAND_PINKY_PIP, KM_HAND_PINKY_DIP, KM_HAND_PINKY_TIP
} km_hand_landmark;

/* landmark_valid bit of landmark i; all 21 bits. */
#define KM_HAND_LANDMARK_BIT(i) (1u << (i))
#define KM_HAND_LANDMARKS_ALL 0x1FFFFFu

typedef enum km_hand_side {
    KM_HAND_SIDE_UNKNOWN = 0,
    KM_HAND_SIDE_LEFT,
    KM_HAND_SIDE_RIGHT,
    KM_HAND_SIDE_COUNT
} km_hand_side;

typedef struct km_hand {
    int64_t time_ns;        /* when the hand was at this pose (capture time) */
    int person;             /* skeleton/person id, -1 when unknown */
    km_hand_side side;
    bool centre_valid;      /* centre_m holds a position */
    km_vec3 centre_m;       /* palm centre (or the hand rigid body's origin) */
    uint32_t landmark_valid;/* KM_HAND_LANDMARK_BIT(i) set when landmark_m[i] is valid */
    km_vec3 landmark_m[KM_HAND_LANDMARK_COUNT];
    double confidence;      /* source's confidence in [0,1]; 1 when it gives none */
} km_hand;

/* An empty hand (nothing valid, person -1, confidence 1). */
km_hand km_hand_init(void);
/* Checks what an outside source could get wrong: side in range, no bit above the 21
 * landmarks, every valid position finite and within 1e4 m, confidence in [0,1], at least
 * a centre or a wrist. KM_ERR_INVALID_ARGUMENT with a message naming the field. */
km_status km_hand_validate(const km_hand *hand);
/* The point a dynamic gesture follows: centre when valid, else the wrist, else the mean of
 * the valid MCP joints. false when none is available. */
bool km_hand_position(const km_hand *hand, km_vec3 *out);
/* Landmark names ("wrist", "thumb_cmc", ..., "pinky_tip"); NULL out of range. */
const char *km_hand_landmark_name(int landmark);
/* "unknown", "left", "right" and parser (KM_ERR_INVALID_ARGUMENT otherwise). */
const char *km_hand_side_name(km_hand_side side);
km_status km_hand_side_parse(const char *name, km_hand_side *out);

/* =================================================================== events
 * What the gesture stage reports: hand poses (start/hold/end), dynamic gestures and
 * hand-eye events, in one struct so one queue and one publisher serve them all. */

typedef enum km_gesture_event_type {
    KM_EVENT_POSE_START = 0,   /* a static hand pose began (after debounce) */
    KM_EVENT_POSE_HOLD,        /* still held (every hold_interval) */
    KM_EVENT_POSE_END,
    KM_EVENT_GESTURE,          /* a dynamic gesture was recognised (t_start_ns..t_end_ns) */
    KM_EVENT_GAZE_ENTER,       /* the gaze ray entered a target */
    KM_EVENT_GAZE_LEAVE,
    KM_EVENT_HAND_REACH,       /* the hand ray (or the hand itself) reached a target */
    KM_EVENT_HAND_LEAVE,
    KM_EVENT_SELECT,           /* look-and-pinch: pinch while looking at a target */
    KM_EVENT_TYPE_COUNT
} km_gesture_event_type;

typedef struct km_gesture_event {
    km_gesture_event_type type;
    int64_t t_ns;              /* when the event was decided (time of the sample that
                                  completed it) */
    int64_t t_start_ns;        /* pose/gesture start; 0 when not applicable */
    int64_t t_end_ns;          /* gesture end (last moving sample); 0 otherwise */
    int person;
    km_hand_side hand;
    char name[KM_GESTURE_NAME_MAX];   /* pose or gesture name; "" for hand-eye events */
    char target[KM_GESTURE_NAME_MAX]; /* hand-eye target; "" otherwise */
    double score;              /* gesture score / pose confidence in [0,1] */
    /* hand-eye measures (NAN when not defined for this event) */
    double gaze_hand_angle_rad;/* angle at the eye between gaze and where the hand points */
    double gaze_lead_ms;       /* hand reached the target this long after the gaze did
                                  (negative: the hand was first) */
    int same_target;           /* 1 gaze and hand on the same target, 0 not, -1 unknown */
} km_gesture_event;

/* "pose_start", "pose_hold", "pose_end", "gesture", "gaze_enter", "gaze_leave", "reach",
 * "hand_leave", "select". */
const char *km_gesture_event_type_name(km_gesture_event_type type);
/* true for the hand-eye events (gaze enter/leave, reach, hand leave, select): JSON type
 * "hand_eye", ZeroMQ topic `handeye`; the others are poses and gestures (`gesture`). */
bool km_gesture_event_is_handeye(km_gesture_event_type type);
/* One JSON Lines object (docs/formats.md "Events"), without the newline:
 *   {"t_ns":..,"type":"gesture","name":"swipe_left","person":0,"hand":"right","score":0.93,
 *    "t_start_ns":..,"t_end_ns":..}
 *   {"t_ns":..,"type":"hand_pose","event":"start","name":"pinch",...,"confidence":0.9}
 *   {"t_ns":..,"type":"hand_eye","event":"select","person":0,"hand":"left",
 *    "target":"panel-3","gaze_hand_angle_rad":0.04,"gaze_lead_ms":180,"same_target":true}
 * Undefined (NAN) measures are left out. Returns the length the whole line needs (like
 * snprintf: >= size means it was cut, and out holds a NUL-terminated prefix). No
 * allocation; thread-safe. */
size_t km_gesture_event_to_json(const km_gesture_event *event, char *out, size_t size);

/* ============================================================== hand poses
 * Static hand poses from the 21 landmarks: per-frame memberships in [0,1] from finger
 * extensions and the thumb-index distance relative to the hand's size (so the same
 * thresholds serve a child's hand and a large one, in any unit), then per hand a state
 * machine with hysteresis (enter/exit thresholds) and debounce (min on/off times) that
 * emits start, hold and end events. */

typedef enum km_hand_pose {
    KM_POSE_PINCH = 0,  /* thumb tip touching index tip */
    KM_POSE_FIST,       /* all four fingers curled ("grab"), thumb not sticking out */
    KM_POSE_POINT,      /* index extended, middle/ring/pinky curled */
    KM_POSE_OPEN_PALM,  /* all five extended */
    KM_POSE_THUMBS_UP,  /* four fingers curled, thumb extended along `up` */
    KM_POSE_COUNT
} km_hand_pose;

/* "pinch", "fist", "point", "open_palm", "thumbs_up"; NULL out of range. */
const char *km_hand_pose_name(km_hand_pose pose);

typedef struct km_handpose_config {
    km_vec3 up;                 /* world up for thumbs-up (default 0,1,0: formats.md Y up) */
    double pinch_enter;         /* thumb-index tip distance / hand size to start a pinch
                                   (default 0.25) */
    double pinch_exit;          /* ... and to release it (default 0.40; > pinch_enter) */
    double enter_score;         /* membership to start any other pose (default 0.6) */
    double exit_score;          /* membership below which it ends (default 0.4) */
    int64_t min_on_ns;          /* debounce: above enter this long before start (60 ms) */
    int64_t min_off_ns;         /* below exit this long before end (80 ms) */
    int64_t hold_interval_ns;   /* a hold event every this long while held (250 ms; 0 =
                                   none) */
    int64_t lost_timeout_ns;    /* a hand not seen this long ends its poses (300 ms) */
    size_t max_hands;           /* tracked (person, side) pairs (default 8) */
} km_handpose_config;

km_handpose_config km_handpose_config_default(void);
km_status km_handpose_config_check(const km_handpose_config *cfg);

/* Per-frame evaluation of one hand, no state. */
typedef struct km_handpose_features {
    double hand_size_m;         /* mean wrist -> index/middle/ring/pinky MCP distance */
    double extension[5];        /* thumb, index, middle, ring, pinky: 0 curled .. 1 straight */
    double pinch_distance;      /* thumb tip - index tip / hand size */
    double thumb_away;          /* thumb tip - nearest index/middle joint / hand size */
    double thumb_up_cos;        /* cos of the angle between thumb (MCP->tip) and up */
    double membership[KM_POSE_COUNT]; /* [0,1] per pose; pinch: 1 at distance 0, 0.5 at
                                         pinch_enter... see docs/gestures.md */
} km_handpose_features;

/* KM_ERR_NOT_FOUND when the landmarks the poses need (wrist, the four MCPs, all tips and
 * the thumb MCP) are not all valid; out is then zeroed. */
km_status km_handpose_evaluate(const km_hand *hand, const km_handpose_config *cfg,
                               km_handpose_features *out);

typedef struct km_handpose_tracker km_handpose_tracker;

/* Allocates max_hands states once. NULL + *err on bad config or no memory. */
km_handpose_tracker *km_handpose_tracker_create(const km_handpose_config *cfg,
                                                km_status *err);
void km_handpose_tracker_destroy(km_handpose_tracker *tracker);
/* Feed one hand observation (in time order per hand). Writes up to `capacity` events to
 * `events` and their number to *count; KM_ERR_CAPACITY when more were due (the rest are
 * dropped and logged) or when more than max_hands hands are tracked. A hand without the
 * landmarks counts as showing no pose. No allocation. */
km_status km_handpose_tracker_push(km_handpose_tracker *tracker, const km_hand *hand,
                                   km_gesture_event *events, size_t capacity, size_t *count);
/* Ends the poses of hands not seen for lost_timeout_ns before now_ns (call once per frame,
 * also when no hand was seen). */
km_status km_handpose_tracker_expire(km_handpose_tracker *tracker, int64_t now_ns,
                                     km_gesture_event *events, size_t capacity, size_t *count);
/* Is this pose currently held (after debounce) by (person, side)? */
bool km_handpose_tracker_active(const km_handpose_tracker *tracker, int person,
                                km_hand_side side, km_hand_pose pose);

/* ================================================================ spotting
 * Online spotting of dynamic gestures in the continuous stream of one point (a hand
 * centre, a wrist): the stream is cut where the hand starts and stops moving (speed with
 * hysteresis: onset above speed_on, end when the speed stays below max(speed_off,
 * end_fraction x the segment's peak) for rest_ns), each segment is classified by a
 * recognizer, and gestures that fail the rejection tests (score, margin to the second
 * label, size, duration) are dropped. While the hand keeps moving longer than
 * max_segment_ns, sliding windows ending at the current sample are classified every
 * window_step samples instead (fallback). One spotter per tracked point; all memory is
 * allocated at create. */

typedef struct km_spotter_config {
    double speed_on_mps;        /* motion onset (default 0.45 m/s) */
    double speed_off_mps;       /* absolute rest speed (default 0.12 m/s) */
    double end_fraction;        /* the segment ends below this x its peak speed (0.2) */
    int64_t rest_ns;            /* low smoothed speed this long ends a segment (50 ms) */
    int64_t speed_window_ns;    /* speed = displacement of the low-passed position over
                                   this span (60 ms) */
    int64_t min_segment_ns;     /* shorter segments are ignored (100 ms) */
    int64_t max_segment_ns;     /* longer motion switches to sliding windows (3 s) */
    double min_extent_m;        /* bounding-box diagonal a gesture must reach (0.12 m) */
    double min_score;           /* rejection: recognizer score (default 0.55; sliding
                                   windows need 0.15 more) */
    double min_margin;          /* rejection: score - second label's score (0.03) */
    size_t window_step;         /* sliding windows every this many samples (4) */
    int64_t window_ns[4];       /* sliding window lengths, 0 = unused (0.6, 1.0, 1.6 s) */
    int64_t history_ns;         /* stream history kept (default 4 s) */
    size_t max_samples;         /* history capacity in samples (default 2048: 4 s at
                                   500 Hz); the oldest are dropped */
    km_vec3 forward;            /* the person's forward direction, horizontal (default
                                   0,0,-1); points are turned into the person's frame
                                   (x right, y up, z backwards) before matching, so
                                   "swipe_left" means the person's left */
    km_vec3 up;                 /* world up (default 0,1,0) */
    int person;                 /* copied into the events (default 0; the transport refuses
                                   negative persons) */
    km_hand_side hand;
    double min_height_m;        /* activation zone: a gesture's highest point must reach
                                   this height (along `up`, in the stream's coordinates).
                                   Off by default (-1e9). For body-relative streams (hand -
                                   chest, as the skeleton path feeds) -0.25 keeps arms
                                   swinging at the sides while walking out */
    int64_t end_window_ns;      /* low-lag speed for the end of a segment: least-squares
                                   slope of the raw positions over this span (70 ms) */
    int64_t end_rest_ns;        /* that speed below the end threshold this long also ends a
                                   segment (34 ms; the smoothed speed needs rest_ns) */
} km_spotter_config;

km_spotter_config km_spotter_config_default(void);
km_status km_spotter_config_check(const km_spotter_config *cfg);

/* The built-in gesture set: swipe_left, swipe_right, swipe_up, swipe_down, push, pull,
 * circle_cw, circle_ccw (as the person sees them), wave, raise_hand; generated
 * procedurally in the person's frame (x right, y up, z backwards, metres),
 * `variants` templates per gesture (speed profile, size, curvature and proportions vary
 * deterministically). 10 x 5 = 50 templates by default. KM_ERR_CAPACITY when the
 * recognizer is full. */
#define KM_GESTURE_BUILTIN_COUNT 10
const char *km_gesture_builtin_name(int index);
km_status km_gesture_add_builtin(km_gesture_recognizer *rec, int variants);
/* Writes builtin gesture `index`, variant `variant` (any int: same one every time) into
 * pos/t_ns (capacity points; may be NULL for t_ns) and its point count in *count. */
km_status km_gesture_builtin_generate(int index, int variant, km_vec3 *pos, int64_t *t_ns,
                                      size_t capacity, size_t *count);

/* The range of durations the spotter accepts for builtin gesture `index` (half the
 * shortest to twice the longest the generator makes); 0/0 out of range. */
void km_gesture_builtin_duration(int index, int64_t *min_ns, int64_t *max_ns);

typedef struct km_spotter km_spotter;

/* The spotter borrows `rec` (it must outlive the spotter; one thread uses both). */
km_spotter *km_spotter_create(const km_spotter_config *cfg, km_gesture_recognizer *rec,
                              km_status *err);
void km_spotter_destroy(km_spotter *spotter);
/* Turn the person's frame (e.g. from the skeleton's hips each frame). */
km_status km_spotter_set_forward(km_spotter *spotter, km_vec3 forward);
/* Feed one sample (time order; a repeated or older time is ignored with KM_OK; a gap >
 * 250 ms restarts the history). Recognised gestures come out as KM_EVENT_GESTURE events
 * (up to capacity; *count set). No allocation. */
km_status km_spotter_push(km_spotter *spotter, km_vec3 pos_m, int64_t t_ns,
                          km_gesture_event *events, size_t capacity, size_t *count);
/* A segment classified as `label` is rejected when it lasted less than min_ns or more than
 * max_ns (0 = no limit). Per label of the recognizer (KM_ERR_NOT_FOUND for unknown labels).
 * A swipe takes well under a second: a slow drift of the same shape (a hand lowered after
 * a raise) is not one. */
km_status km_spotter_set_duration_limits(km_spotter *spotter, const char *label, int64_t min_ns,
                                         int64_t max_ns);
/* km_gesture_builtin_duration's limits for every builtin label the recognizer has. */
km_status km_spotter_use_builtin_limits(km_spotter *spotter);
/* While suppressed, samples are kept but nothing is classified and a segment in progress is
 * dropped. The pipeline suppresses a person's spotters while the body itself travels fast
 * (walking, running: hips faster than ~0.8 m/s), when arm swings look like push/pull. */
void km_spotter_set_suppressed(km_spotter *spotter, bool suppressed);
/* Forget the history (e.g. the hand was lost). */
void km_spotter_reset(km_spotter *spotter);

/* Counters for tests and the status topic. */
typedef struct km_spotter_stats {
    uint64_t samples;
    uint64_t segments;          /* onset/rest segments classified */
    uint64_t windows;           /* sliding windows classified */
    uint64_t rejected;          /* candidates that failed a rejection test */
    uint64_t gestures;          /* events emitted */
} km_spotter_stats;
km_spotter_stats km_spotter_stats_get(const km_spotter *spotter);

/* =============================================================== hand-eye
 * Where a person looks and where the hand points, against named targets (boxes, plane
 * rectangles, spheres in world metres): gaze enter/leave, hand reach/leave, look-and-pinch
 * selection, and the measures (gaze-hand angle, gaze lead time, same target). */

typedef struct km_ray {
    km_vec3 origin_m;
    km_vec3 direction;          /* unit */
} km_ray;

/* Gaze from a head pose (head rigid body or skeleton head): origin = head position +
 * rotation * eye_offset_body, direction = rotation * forward_body (normalised).
 * KM_ERR_INVALID_ARGUMENT when forward_body is zero or the quaternion is not finite. */
km_status km_gaze_from_head_pose(km_vec3 head_pos_m, km_quat head_rotation,
                                 km_vec3 forward_body, km_vec3 eye_offset_body,
                                 km_ray *out);

typedef enum km_hand_ray_mode {
    KM_HAND_RAY_INDEX = 0,      /* wrist -> index tip (falls back to index MCP -> tip) */
    KM_HAND_RAY_FOREARM,        /* elbow -> wrist: see km_hand_ray_from_points */
    KM_HAND_RAY_MODE_COUNT
} km_hand_ray_mode;

/* Pointing ray of a hand with landmarks (INDEX mode): from the index tip, along wrist ->
 * index tip. KM_ERR_NOT_FOUND when those landmarks are missing, KM_ERR_NUMERIC when they
 * coincide. */
km_status km_hand_pointing_ray(const km_hand *hand, km_ray *out);
/* Ray from `from` through `to`, starting at `to` (e.g. elbow -> wrist for FOREARM). */
km_status km_hand_ray_from_points(km_vec3 from, km_vec3 to, km_ray *out);

typedef enum km_target_shape {
    KM_TARGET_BOX = 0,
    KM_TARGET_PLANE,            /* a rectangle */
    KM_TARGET_SPHERE,
    KM_TARGET_SHAPE_COUNT
} km_target_shape;

typedef struct km_target {
    char name[KM_GESTURE_NAME_MAX];
    km_target_shape shape;
    km_vec3 centre_m;
    km_quat rotation;           /* box/plane: body frame -> world (plane normal is body +z,
                                   its width along body x, height along body y) */
    km_vec3 size_m;             /* box: full sizes x,y,z; plane: width, height (z unused) */
    double radius_m;            /* sphere */
} km_target;

/* Distance along the ray to its first hit of the target inflated by margin_m (the ray's
 * origin inside counts as a hit at 0); false when missed. */
bool km_target_hit(const km_target *target, const km_ray *ray, double margin_m,
                   double *distance_m);
/* Distance from a point to the target (0 inside). */
double km_target_distance(const km_target *target, km_vec3 p);

#define KM_HANDEYE_MAX_TARGETS 64

typedef struct km_handeye_config {
    km_vec3 head_forward;       /* head body axis along the gaze (default 0,0,-1) */
    km_vec3 eye_offset_m;       /* eyes in the head body frame (default 0) */
    km_hand_ray_mode hand_ray;  /* default index */
    double gaze_margin_m;       /* targets are this much larger for the gaze (0.02) */
    double hand_margin_m;       /* ... for the hand ray (0.02) */
    double reach_distance_m;    /* the hand itself this close counts as reaching (0.05) */
    int64_t gaze_dwell_ns;      /* gaze on a target this long before a pinch selects it
                                   (100 ms) */
    int64_t gaze_grace_ns;      /* a gaze leaving for less than this keeps the target
                                   (blinks, saccades; 80 ms) */
    bool select_requires_hand_on_target; /* false: pinch anywhere selects the gazed target
                                   unless the hand points at ANOTHER target; true: the hand
                                   must point at the gazed target too */
    size_t target_count;
    km_target targets[KM_HANDEYE_MAX_TARGETS];
} km_handeye_config;

km_handeye_config km_handeye_config_default(void);
km_status km_handeye_config_check(const km_handeye_config *cfg);
/* Reads the `handeye` section at `path` (docs/config.md "### handeye") into *out, over the
 * defaults. KM_ERR_PARSE "file:line: key: why" on a bad value, unknown key or target. */
km_status km_handeye_config_read(const km_config *config, const char *path,
                                 km_handeye_config *out);
/* Shape names "box", "plane", "sphere". */
const char *km_target_shape_name(km_target_shape shape);

/* What one person does at one instant. */
typedef struct km_handeye_input {
    int64_t time_ns;
    int person;
    bool gaze_valid;
    km_ray gaze;                /* km_gaze_from_head_pose or an eye tracker */
    struct {
        bool valid;
        km_ray ray;             /* pointing ray */
        km_vec3 position_m;     /* the hand (for reach by touch) */
        bool pinching;          /* pinch held (km_handpose_tracker_active or events) */
    } hand[2];                  /* [0] left, [1] right */
} km_handeye_input;

/* Last measures of one hand. */
typedef struct km_handeye_state {
    int gaze_target;            /* index into targets, -1 none */
    int hand_target[2];
    double gaze_hand_angle_rad[2]; /* NAN when undefined */
} km_handeye_state;

typedef struct km_handeye km_handeye;
/* One per person. Copies cfg. */
km_handeye *km_handeye_create(const km_handeye_config *cfg, km_status *err);
void km_handeye_destroy(km_handeye *he);
/* Forget all state (targets looked at, reached, pinches) without events, e.g. when the
 * person it followed is gone. No allocation. */
void km_handeye_reset(km_handeye *he);
/* One update per frame (time order). Events written as km_spotter_push does. */
km_status km_handeye_update(km_handeye *he, const km_handeye_input *in,
                            km_gesture_event *events, size_t capacity, size_t *count);
km_handeye_state km_handeye_state_get(const km_handeye *he);

/* ================================================================= engine
 * The live gesture stage of one pipeline: everything above wired together, fed per frame
 * with bodies (skeleton poses), landmark hands (OSC/ZeroMQ input, depth) and eye-tracker
 * gaze, and asked once per frame for the events decided since (docs/gestures.md "The
 * engine"). It owns one recognizer (a model file or the built-in set), per person a
 * spotter per hand and a hand-eye tracker, and one hand-pose tracker. Everything is
 * allocated at create; the per-frame calls allocate nothing. One thread at a time. */

/* The joints a body gives the engine (named after Unity's HumanBodyBones, which the
 * skeleton module uses: Hips, Chest, Neck, Head, LeftUpperArm = shoulder, LeftLowerArm =
 * elbow, LeftHand, ...). */
typedef enum km_gesture_body_joint {
    KM_BODY_HIPS = 0,
    KM_BODY_CHEST,
    KM_BODY_NECK,
    KM_BODY_HEAD,
    KM_BODY_LEFT_SHOULDER,   /* LeftUpperArm */
    KM_BODY_LEFT_ELBOW,      /* LeftLowerArm */
    KM_BODY_LEFT_HAND,
    KM_BODY_RIGHT_SHOULDER,
    KM_BODY_RIGHT_ELBOW,
    KM_BODY_RIGHT_HAND,
    KM_BODY_JOINT_COUNT
} km_gesture_body_joint;

#define KM_BODY_BIT(j) (1u << (j))

/* One person's body at one instant, world metres (Y up unless the engine's spotter.up
 * says otherwise). Only joints whose bit is set in `tracked` are read. */
typedef struct km_gesture_body {
    uint32_t tracked;                       /* KM_BODY_BIT(joint) per valid joint */
    km_vec3 joint_m[KM_BODY_JOINT_COUNT];
    bool head_rotation_valid;               /* head_rotation holds the head's orientation */
    km_quat head_rotation;                  /* head body frame -> world (gaze along the
                                               hand-eye config's head_forward) */
    bool facing_valid;                      /* facing holds the person's forward direction */
    km_vec3 facing;                         /* any length; only the horizontal part is used.
                                               When not valid: up x (right shoulder - left
                                               shoulder), else the previous facing */
} km_gesture_body;

/* An empty body (nothing tracked, identity head rotation). */
km_gesture_body km_gesture_body_init(void);

#define KM_GESTURE_ENGINE_MAX_PEOPLE 64

typedef struct km_gesture_engine_config {
    char model_path[1024];      /* a gesture model (km_gesture_model_load); "" = the
                                   built-in set */
    int builtin_variants;       /* templates per built-in gesture (5 -> 50 templates) */
    size_t resample_count;      /* points per template for the built-in set (64) */
    km_spotter_config spotter;  /* per hand; person/hand/forward are set by the engine.
                                   Default min_height_m -0.1: the streams are hand - chest,
                                   so arms swinging at the sides while walking stay out */
    km_handpose_config handpose;/* max_hands is set to 2 x max_people */
    km_handeye_config handeye;  /* hand-eye runs when it has targets */
    int max_people;             /* people followed at once (4; 1..KM_GESTURE_ENGINE_MAX_PEOPLE) */
    bool hands[2];              /* spot gestures of the left [0] / right [1] hand (both) */
    double travel_speed_mps;    /* the person's spotters are paused while the hips travel
                                   faster than this horizontally (0.8 m/s; 0 = never) */
    int64_t travel_window_ns;   /* ... measured over this span (500 ms) */
    int64_t gaze_override_ns;   /* an eye tracker's gaze (push_gaze) replaces the head's
                                   for this long (500 ms) */
    int64_t hand_timeout_ns;    /* a landmark hand / body older than this is not used for
                                   rays, hands out and spotting (300 ms) */
    int64_t person_timeout_ns;  /* a person not seen this long frees its slot (2 s) */
    size_t event_capacity;      /* events queued between two steps (256); more are
                                   counted as dropped */
} km_gesture_engine_config;

km_gesture_engine_config km_gesture_engine_config_default(void);
km_status km_gesture_engine_config_check(const km_gesture_engine_config *cfg);
/* Reads the section at `path` (the daemon's `gesture`, docs/config.md "### gesture") over
 * *out (start from km_gesture_engine_config_default()). Sub-sections `spotter`,
 * `handpose` and `handeye` (km_handeye_config_read, with targets). KM_ERR_PARSE
 * "file:line: key: why" on a bad value or an unknown key; KM_OK when the section is
 * absent. */
km_status km_gesture_engine_config_read(const km_config *config, const char *path,
                                        km_gesture_engine_config *out);

typedef struct km_gesture_engine km_gesture_engine;

/* Loads the model (or builds the built-in set) and allocates everything. NULL + *err and
 * km_last_error on a bad config, an unreadable model or no memory. */
km_gesture_engine *km_gesture_engine_create(const km_gesture_engine_config *cfg,
                                            km_status *err);
void km_gesture_engine_destroy(km_gesture_engine *engine);

/* One body of person `person` (>= 0) at time_ns (time order per person): the hands relative
 * to the chest go into the person's spotters (turned by the facing; paused while the
 * hips travel fast), and the head gives the gaze for hand-eye. KM_ERR_CAPACITY when
 * max_people others are being followed; KM_ERR_INVALID_ARGUMENT on a negative person or
 * non-finite tracked joints. No allocation. */
km_status km_gesture_engine_push_body(km_gesture_engine *engine, int person, int64_t time_ns,
                                      const km_gesture_body *body);
/* One landmark (or centre-only) hand, validated with km_hand_validate (its message on
 * error). person < 0 is taken as person 0 (a single user with a hand tracker). Poses
 * (pinch, fist, ...) are tracked; when the person has no fresh body, the hand's position
 * (km_hand_position) also goes into the spotter of that side. side UNKNOWN counts as
 * right. No allocation. */
km_status km_gesture_engine_push_hand(km_gesture_engine *engine, const km_hand *hand);
/* An eye tracker's gaze ray for `person` (direction any non-zero length): used for
 * hand-eye instead of the head for gaze_override_ns. No allocation. */
km_status km_gesture_engine_push_gaze(km_gesture_engine *engine, int person, int64_t time_ns,
                                      km_vec3 origin_m, km_vec3 direction);
/* Once per frame (now_ns non-decreasing): ends the poses of lost hands, frees the slots of
 * people gone, runs hand-eye per person, and moves up to `capacity` queued events (in the
 * order they were decided) to `out`, *count of them. Events that do not fit stay queued
 * for the next call. No allocation. */
km_status km_gesture_engine_step(km_gesture_engine *engine, int64_t now_ns,
                                 km_gesture_event *out, size_t capacity, size_t *count);
/* The current hands (fresh within hand_timeout_ns of the last step): a landmark hand as it
 * came in (its centre filled from the body's hand joint when it had none), else a
 * centre-only hand from the body's hand joint. Up to capacity; *count set. */
km_status km_gesture_engine_hands(const km_gesture_engine *engine, km_hand *out,
                                  size_t capacity, size_t *count);

typedef struct km_gesture_engine_stats {
    uint64_t bodies, hands, gazes; /* inputs accepted */
    uint64_t events;               /* events queued */
    uint64_t events_dropped;       /* events lost because the queue was full */
    uint64_t people_refused;       /* inputs refused because max_people were followed */
    int people;                    /* people followed now */
} km_gesture_engine_stats;
km_gesture_engine_stats km_gesture_engine_stats_get(const km_gesture_engine *engine);
/* The recognizer the engine uses (e.g. for its label names). */
const km_gesture_recognizer *km_gesture_engine_recognizer(const km_gesture_engine *engine);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_GESTURE_H */
