/* Kinema skeleton: skeletal motion (issue 6 builds skeletal tracking on it).
 *   BVH files - read and write Biovision Hierarchy motion (a joint hierarchy with offsets
 *               and channel order, then one row of channel values per frame), and forward
 *               kinematics from a frame to world joint positions and orientations. Used to
 *               drive synthetic scenes with real motion capture and, later, to export
 *               solved skeletons.
 * Units: a BVH file has none written down. Offsets and position channels are kept in the
 * file's units; km_bvh_pose scales them by scale_m (metres per file unit), for which
 * km_bvh_guess_scale_m gives a guess from the skeleton's size. */
#ifndef KINEMA_SKELETON_H
#define KINEMA_SKELETON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kinema/core.h"
#include "kinema/tracking.h" /* km_marker_set: the skeleton solver's input */

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- BVH files */

#define KM_BVH_NAME_MAX 64
#define KM_BVH_MAX_JOINTS 1024       /* ROOT + JOINT + End Site entries */
#define KM_BVH_MAX_VALUES (1L << 27) /* frames x channels held in memory */

/* Channel kinds, as written in CHANNELS lines ("Xposition" ... "Zrotation"). */
typedef enum km_bvh_channel {
    KM_BVH_XPOSITION = 0,
    KM_BVH_YPOSITION,
    KM_BVH_ZPOSITION,
    KM_BVH_XROTATION,
    KM_BVH_YROTATION,
    KM_BVH_ZROTATION
} km_bvh_channel;

/* One node of the hierarchy, in file order (a parent always comes before its children). */
typedef struct km_bvh_joint {
    char name[KM_BVH_NAME_MAX]; /* as in the file; an End Site is named "<parent>_End" */
    int parent;                 /* index of the parent, -1 for the root */
    km_vec3 offset;             /* translation from the parent, file units */
    int channel_count;          /* 0..6 (0 for End Sites) */
    km_bvh_channel channels[6]; /* in file order: this order is the rotation order */
    int first_channel;          /* column of this joint's first channel in a frame row */
    bool end_site;
} km_bvh_joint;

typedef struct km_bvh km_bvh;

/* Parse a BVH file: HIERARCHY, one ROOT with nested JOINT / End Site blocks (each an OFFSET,
 * then CHANNELS n followed by n channel names, none for End Sites), then MOTION, "Frames: N",
 * "Frame Time: T" (seconds, > 0) and N lines of exactly as many numbers as there are
 * channels. Anything else - unknown keyword, missing brace, duplicate channel, a value that
 * is not a finite number, too few or too many rows - is KM_ERR_PARSE with "file:line: ..."
 * in km_last_error(). CRLF line ends are accepted. Free with km_bvh_destroy. */
km_bvh *km_bvh_load(const char *path, km_status *err);
/* Same, from text in memory (not kept); `name` stands for the file name in messages. */
km_bvh *km_bvh_parse(const char *text, size_t length, const char *name, km_status *err);
void km_bvh_destroy(km_bvh *bvh);

int km_bvh_joint_count(const km_bvh *bvh);       /* including End Sites */
const km_bvh_joint *km_bvh_joint_at(const km_bvh *bvh, int index); /* NULL out of range */
/* Index of the joint with this name, -1 if none. */
int km_bvh_find_joint(const km_bvh *bvh, const char *name);
int km_bvh_channel_count(const km_bvh *bvh);
int km_bvh_frame_count(const km_bvh *bvh);
double km_bvh_frame_time_s(const km_bvh *bvh);
/* The channel values of a frame (channel_count doubles, owned by bvh); NULL out of range. */
const double *km_bvh_frame(const km_bvh *bvh, int frame);

/* Forward kinematics of one frame. Each joint's local transform is a translation - its
 * OFFSET, with each axis that has a position channel replaced by the channel's value (so
 * files that repeat the offset in position channels, and roots that carry the global
 * position, both come out right) - followed by its rotation channels multiplied in file
 * order (CHANNELS ... Zrotation Xrotation Yrotation means R = Rz Rx Ry), angles in degrees.
 * World = parent world * local. Writes km_bvh_joint_count() positions in metres (file units
 * times scale_m) and, when rotations is not NULL, world orientations (joint frame -> world;
 * an End Site takes its parent's). No allocation. */
km_status km_bvh_pose(const km_bvh *bvh, int frame, double scale_m, km_vec3 *positions_m,
                      km_mat3 *rotations);

/* A guess of metres per file unit: the rest pose's height (all channels zero, position
 * channels at their offsets) compared with a 1.7 m person, choosing among metres,
 * centimetres, millimetres, inches and the CMU converters' unit (1/0.45 inch = 0.056444 m).
 * 0 when the skeleton has no height (a single joint). */
double km_bvh_guess_scale_m(const km_bvh *bvh);

/* Write the hierarchy and motion in the layout the reader accepts (tabs, one frame per line,
 * values with %.9g so that reading back gives the same numbers to 9 digits). */
km_status km_bvh_save(const km_bvh *bvh, const char *path);
km_status km_bvh_write(const km_bvh *bvh, FILE *f);

/* ------------------------------------------------------------------ C3D files
 * (skeleton/c3d.c) The C3D marker file format (c3d.org "The C3D File Format User Guide"):
 * 512-byte blocks; a header block, a parameter section (groups and typed, dimensioned
 * parameters) and the 3D point + analog data, frame-interleaved. All three processor types
 * are read: Intel (little-endian IEEE), DEC (little-endian integers, VAX F floats) and
 * SGI/MIPS (big-endian IEEE); integer storage (POINT:SCALE > 0, values x SCALE) and float
 * storage (POINT:SCALE < 0). Analog samples are skipped (their size is accounted for).
 * Positions keep the file's units and axes (POINT:UNITS, usually mm, often Z up);
 * km_c3d_frame_markers converts one frame to metres and Kinema's world frame. */

/* Processor type byte of the parameter section (83 + type). */
typedef enum km_c3d_processor {
    KM_C3D_PROCESSOR_INTEL = 84,
    KM_C3D_PROCESSOR_DEC = 85,
    KM_C3D_PROCESSOR_SGI = 86
} km_c3d_processor;

/* Parameter data types as stored in the file. */
typedef enum km_c3d_type {
    KM_C3D_TYPE_CHAR = -1,
    KM_C3D_TYPE_BYTE = 1,
    KM_C3D_TYPE_INT16 = 2,
    KM_C3D_TYPE_FLOAT = 4
} km_c3d_type;

#define KM_C3D_NAME_MAX 132   /* group/parameter names (up to 128 characters in a file) */
#define KM_C3D_LABEL_MAX 64   /* point labels are cut to 63 characters */
#define KM_C3D_MAX_DIMS 7

/* One parameter. `data` holds the element_count values converted to host order: chars
 * (type CHAR: element_count bytes, column-major as in the file: dims[0] characters per
 * string), int8 (BYTE), int16 (INT16) or float (FLOAT, DEC floats converted). */
typedef struct km_c3d_parameter {
    char group[KM_C3D_NAME_MAX];
    char name[KM_C3D_NAME_MAX];
    km_c3d_type type;
    int dim_count;               /* 0 = scalar */
    int dims[KM_C3D_MAX_DIMS];
    int element_count;           /* product of dims (1 for a scalar) */
    void *data;                  /* owned by the km_c3d */
} km_c3d_parameter;

/* A whole C3D file in memory. Frame f, point p: pos[(f * point_count + p) * 3 + 0..2] in the
 * file's units (integer storage already multiplied by |scale|), residual[f * point_count + p]
 * (file units; < 0 = point invalid in that frame), camera_mask[...] (bit k = camera k+1
 * contributed; 0 when unknown). */
typedef struct km_c3d {
    km_c3d_processor processor;
    int point_count;
    int frame_count;
    int first_frame;             /* number of frame 0 (header word 4) */
    double rate_hz;              /* POINT:RATE or header */
    double scale;                /* POINT:SCALE or header; < 0 means float storage */
    int analog_per_frame;        /* analog values stored per 3D frame (channels x samples) */
    double analog_rate_hz;       /* ANALOG:RATE, 0 when absent */
    int data_start_block;        /* 1-based block of the data section */
    char units[16];              /* POINT:UNITS ("mm" when absent) */
    double units_to_m;           /* metres per unit (0.001 for mm, 1 for m, 0.01 for cm...) */
    char (*labels)[KM_C3D_LABEL_MAX]; /* point_count labels, trailing spaces removed; "" when
                                       * the file has none (never NULL when point_count > 0) */
    double *pos;
    float *residual;
    uint8_t *camera_mask;
    int parameter_count;
    km_c3d_parameter *parameters;
} km_c3d;

/* Read a C3D file. On failure *out is left empty (safe to km_c3d_free) and the status is
 * KM_ERR_IO, or KM_ERR_FORMAT with "file: offset N: why" in km_last_error(). The caller
 * frees with km_c3d_free. */
km_status km_c3d_read(const char *path, km_c3d *out);
/* Same, from bytes in memory (not kept); `name` stands for the file name in messages. */
km_status km_c3d_parse(const uint8_t *data, size_t size, const char *name, km_c3d *out);
/* Free what km_c3d_read/parse/alloc gave; accepts NULL and an empty (zeroed) struct. */
void km_c3d_free(km_c3d *c3d);
/* Allocate an empty C3D for writing: point_count labels (""), frame_count frames, all points
 * invalid (residual -1), units "m", rate 100 Hz, float storage (scale -1), no parameters. */
km_status km_c3d_alloc(km_c3d *c3d, int point_count, int frame_count);

/* The parameter GROUP:NAME (case-insensitive), NULL when absent. */
const km_c3d_parameter *km_c3d_find_parameter(const km_c3d *c3d, const char *group,
                                              const char *name);
/* Element `index` of a numeric parameter as a double (0 when out of range or CHAR). */
double km_c3d_parameter_number(const km_c3d_parameter *p, int index);
/* String `index` of a CHAR parameter (dims[0] characters each; a scalar or 1-D char array
 * is one string), trailing spaces removed, cut to out_size-1. false when out of range. */
bool km_c3d_parameter_string(const km_c3d_parameter *p, int index, char *out, size_t out_size);
/* Index of the point with this label (exact, case-sensitive), -1 when absent. */
int km_c3d_find_label(const km_c3d *c3d, const char *label);

/* The valid points of frame `frame` (0-based) as markers in metres and Kinema's world
 * frame: world = to_world * (pos * units_to_m) (to_world NULL = identity; see
 * km_c3d_z_up_to_y_up). Points whose residual is < 0 or whose coordinates are all exactly 0
 * (the "missing" convention of many writers) are left out. Each marker's id is its point
 * index; residual_px is the file residual in metres; views is the number of bits set in the
 * camera mask. KM_ERR_CAPACITY when out->capacity is too small (first ones kept). */
km_status km_c3d_frame_markers(const km_c3d *c3d, int frame, const km_mat3 *to_world,
                               km_marker_set *out);
/* The rotation taking a Z-up right-handed frame (most C3D files) to Kinema's Y-up frame:
 * (x, y, z) -> (x, z, -y). */
km_mat3 km_c3d_z_up_to_y_up(void);

/* Write a C3D file: Intel processor, float storage when c3d->scale <= 0 (else 16-bit
 * integers with that scale; points out of range are an error), no analog data, parameters
 * POINT:USED FRAMES SCALE RATE DATA_START UNITS LABELS DESCRIPTIONS, ANALOG:USED RATE and
 * TRIAL:ACTUAL_START_FIELD ACTUAL_END_FIELD. Other parameters of c3d are not written. */
km_status km_c3d_write(const char *path, const km_c3d *c3d);
/* Same into memory: *data is malloc'ed (caller frees), *size its length. */
km_status km_c3d_write_memory(const km_c3d *c3d, uint8_t **data, size_t *size);

/* ============================================================ skeletal tracking ==========
 * (skeleton/markerset.c subject.c label.c ik.c multi.c) Marker-based full-body tracking:
 *   body model   - 21 joints named as Unity's HumanBodyBones; a T-pose rest with every
 *                  segment frame aligned to the world (Y up, the person facing +Z, their
 *                  left on +X); joint limits per joint.
 *   marker set   - labels, the segment each rides on and its offset in the segment frame;
 *                  Plug-in Gait full body by default, others from a YAML file.
 *   subject      - one person's bone vectors and marker offsets, fitted from a labeled
 *                  T-pose / range-of-motion take (km_subject_calibrate); a YAML file.
 *   IK           - per frame, root 6-DoF + joint rotations minimising weighted marker
 *                  residuals (Levenberg-Marquardt warm-started from the last frame).
 *   solver       - unlabeled 3D markers in (km_marker_set, ids from km_tracker when
 *                  available), labels assigned per subject from track continuity and the
 *                  predicted pose, IK, skeleton poses out; up to KM_SKELETON_MAX_PEOPLE.
 * Output rows follow formats.md skeleton.csv. Units metres, world Y up. */

/* Joints, in parent-before-child order. A segment is named by its proximal joint: the
 * "LeftUpperArm" segment is the humerus, rotating about the shoulder joint. */
typedef enum km_joint {
    KM_JOINT_HIPS = 0,
    KM_JOINT_SPINE,
    KM_JOINT_CHEST,
    KM_JOINT_NECK,
    KM_JOINT_HEAD,
    KM_JOINT_LEFT_SHOULDER,
    KM_JOINT_LEFT_UPPER_ARM,
    KM_JOINT_LEFT_LOWER_ARM,
    KM_JOINT_LEFT_HAND,
    KM_JOINT_RIGHT_SHOULDER,
    KM_JOINT_RIGHT_UPPER_ARM,
    KM_JOINT_RIGHT_LOWER_ARM,
    KM_JOINT_RIGHT_HAND,
    KM_JOINT_LEFT_UPPER_LEG,
    KM_JOINT_LEFT_LOWER_LEG,
    KM_JOINT_LEFT_FOOT,
    KM_JOINT_LEFT_TOES,
    KM_JOINT_RIGHT_UPPER_LEG,
    KM_JOINT_RIGHT_LOWER_LEG,
    KM_JOINT_RIGHT_FOOT,
    KM_JOINT_RIGHT_TOES,
    KM_JOINT_COUNT
} km_joint;

/* "Hips", "LeftUpperArm", ... (Unity HumanBodyBones); "" when out of range. */
const char *km_joint_name(int joint);
/* Parent joint, -1 for the hips and out of range. */
int km_joint_parent(int joint);
/* Joint index of a HumanBodyBones name (exact), -1 when unknown. */
int km_joint_from_name(const char *name);
/* Rest bone vector of a joint (its position in the parent frame) for a person of 1.75 m. */
km_vec3 km_joint_default_offset(int joint);

/* ---------------------------------------------------------------- marker sets */

#define KM_SKELETON_MAX_MARKERS 64
#define KM_LABEL_MAX 32

typedef struct km_body_marker {
    char label[KM_LABEL_MAX];  /* non-empty, unique in the set, no ',' or spaces */
    int segment;               /* km_joint of the segment it rides on */
    km_vec3 offset_m;          /* position in the segment frame (rest: world axes) */
    double weight;             /* residual weight in IK (default 1) */
} km_body_marker;

typedef struct km_body_markerset {
    char name[KM_NAME_MAX];
    int count;
    km_body_marker markers[KM_SKELETON_MAX_MARKERS];
} km_body_markerset;

/* The Plug-in Gait full-body set (39 markers: LFHD RFHD LBHD RBHD C7 T10 CLAV STRN RBAK
 * LSHO LUPA LELB LFRM LWRA LWRB LFIN (and R), LASI RASI LPSI RPSI LTHI LKNE LTIB LANK LHEE
 * LTOE (and R)) with template offsets for a 1.75 m person (docs/skeleton.md). */
void km_body_markerset_default(km_body_markerset *out);
/* Marker set file (YAML, docs/skeleton.md):
 *   marker_set: "name"
 *   markers:
 *     - {label: LFHD, segment: Head, offset: [0.07, 0.1, 0.08], weight: 1}
 * offset and weight optional (0 0 0 and 1). Errors KM_ERR_PARSE "file:line: ...". */
km_status km_body_markerset_load(const char *path, km_body_markerset *out);
km_status km_body_markerset_parse(const char *text, size_t length, const char *name,
                                  km_body_markerset *out);
km_status km_body_markerset_save(const char *path, const km_body_markerset *set);
/* Index of a label, -1 when absent. */
int km_body_markerset_find(const km_body_markerset *set, const char *label);
/* Labels, segments, finite offsets, positive weights. KM_ERR_INVALID_ARGUMENT + reason. */
km_status km_body_markerset_validate(const km_body_markerset *set);

/* ------------------------------------------------------------------ subjects */

typedef struct km_subject {
    char name[KM_NAME_MAX];
    km_body_markerset markers;       /* offsets fitted to this person */
    km_vec3 bone_m[KM_JOINT_COUNT];  /* joint position in its parent's frame at rest; the
                                      * hips' entry is unused (0) */
} km_subject;

/* A subject from a marker set's template, bones and offsets scaled to height_m. */
km_status km_subject_default(const km_body_markerset *set, double height_m, const char *name,
                             km_subject *out);
/* Subject file (YAML, docs/skeleton.md): name, bones (joint: [x, y, z]), markers (as in a
 * marker set file). Errors KM_ERR_PARSE "file:line: ...". */
km_status km_subject_save(const char *path, const km_subject *subject);
km_status km_subject_load(const char *path, km_subject *out);
km_status km_subject_parse(const char *text, size_t length, const char *name,
                           km_subject *out);

/* Labeled marker positions of one person in one frame, in the order of a marker set. */
typedef struct km_body_frame {
    uint64_t frame;
    uint64_t time_ns;
    int count;                               /* = the marker set's count */
    km_vec3 pos_m[KM_SKELETON_MAX_MARKERS];
    bool valid[KM_SKELETON_MAX_MARKERS];
} km_body_frame;

/* Frame `frame` of a labeled C3D as a body frame of `set` (labels matched exactly, or
 * after a "Subject:" prefix); positions in metres through to_world (NULL = identity). */
km_status km_body_frame_from_c3d(const km_c3d *c3d, int frame, const km_body_markerset *set,
                                 const km_mat3 *to_world, km_body_frame *out);

/* -------------------------------------------------------------------- poses */

typedef struct km_skeleton_pose {
    int person;                             /* index of the subject */
    bool tracked;                           /* solved this frame */
    km_vec3 joint_pos_m[KM_JOINT_COUNT];    /* world joint centres */
    km_quat joint_rot[KM_JOINT_COUNT];      /* world orientations (identity = T-pose rest) */
    km_quat local_rot[KM_JOINT_COUNT];      /* relative to the parent (hips: = joint_rot) */
    double residual_m;                      /* RMS marker residual of the solve */
    int markers_used;
    /* Bit j set: segment j (the bone from joint j on) is observed - a labeled marker rides on
     * it or on a segment below it (Toes, Head, Chest follow their parent). A clear bit is
     * Vicon's "occluded" / Motive's untracked bone: the joints of that limb are the model's
     * guess (held where the last solve left them), not a measurement, even though the person
     * is tracked. KM_SKELETON_ALL_JOINTS when everything is seen; 0 when not tracked. */
    uint32_t joints_observed;
} km_skeleton_pose;

#define KM_SKELETON_ALL_JOINTS ((1u << KM_JOINT_COUNT) - 1u)

/* skeleton.csv (formats.md): frame,time_ns,person,joint,x,y,z,qx,qy,qz,qw; one row per joint
 * of each tracked pose. */
void km_skeleton_csv_write_header(FILE *f);
void km_skeleton_csv_write(FILE *f, uint64_t frame, uint64_t time_ns,
                           const km_skeleton_pose *poses, int count);

/* ------------------------------------------------------------------------ IK */

typedef struct km_ik_config {
    int max_iterations;        /* LM iterations per frame (default 12) */
    int boot_iterations;       /* iterations when not warm (default 60) */
    double tolerance_m;        /* stop when the RMS residual changes less (default 1e-5) */
    double damping;            /* Tikhonov damping on each step, m^2 per rad^2 (default
                                * 1e-4): keeps unobserved joints at their last value */
    bool limits;               /* project on the joint limits (default true) */
} km_ik_config;

typedef struct km_ik km_ik;

km_ik_config km_ik_config_default(void);
/* The solver copies the subject. Free with km_ik_destroy (accepts NULL). */
km_ik *km_ik_create(const km_subject *subject, const km_ik_config *cfg, km_status *err);
void km_ik_destroy(km_ik *ik);
/* Forget the last pose: the next solve starts cold (root from the markers, T-pose). */
void km_ik_reset(km_ik *ik);
/* Solve one frame (frame->count must equal the subject's marker count). Warm-starts from the
 * last solved pose. KM_ERR_NUMERIC when fewer than 3 markers are valid (the pose keeps its
 * last value, tracked = false). No allocation. */
km_status km_ik_solve(km_ik *ik, const km_body_frame *frame, km_skeleton_pose *out);
/* Marker positions predicted by the current pose (subject order). */
void km_ik_predict_markers(const km_ik *ik, km_vec3 *out);
/* The current pose (after the last solve). */
void km_ik_get_pose(const km_ik *ik, km_skeleton_pose *out);
/* Set the root of the current pose (boot hypotheses). */
void km_ik_set_root(km_ik *ik, km_vec3 pos_m, km_quat rot);
/* Per-marker residual (m) of the last solve; -1 for markers not used. */
void km_ik_residuals(const km_ik *ik, double *out);
/* Constant-velocity extrapolation of the pose one frame ahead (the labeler's prediction);
 * the state becomes the predicted pose. */
void km_ik_extrapolate(km_ik *ik);
/* Subject (as copied at create, may be updated with km_ik_set_subject). */
const km_subject *km_ik_subject(const km_ik *ik);
void km_ik_set_subject(km_ik *ik, const km_subject *subject);

/* --------------------------------------------------------- subject calibration */

typedef struct km_subject_calibration_config {
    double height_m;           /* 0 = estimate from marker distances (default 0) */
    int max_frames;            /* frames used, evenly spaced over the take (default 150) */
    int iterations;            /* IK / least-squares alternations (default 4) */
    int refine_iterations;     /* then Levenberg-Marquardt over all poses and the subject
                                * together (default 20; 0 = off) */
    double prior_weight;       /* pull towards the scaled template, per frame (default 0.005);
                                * decides what a static T-pose cannot observe */
} km_subject_calibration_config;

typedef struct km_subject_calibration_report {
    double height_m;           /* used (given or estimated) */
    int frames_used;
    double rms_before_m;       /* marker RMS of the scaled template after IK */
    double rms_after_m;        /* marker RMS of the calibrated subject after IK */
} km_subject_calibration_report;

km_subject_calibration_config km_subject_calibration_config_default(void);
/* Fit bone vectors and marker offsets of one person to labeled frames of a T-pose or
 * range-of-motion take: a few alternations of per-frame IK and one linear least-squares fit
 * of all bones and offsets over all frames (the root positions eliminated), then
 * Levenberg-Marquardt over all poses and the subject together (each frame's pose eliminated
 * by its Schur complement, as in bundle adjustment). Markers missing in every frame keep
 * their template offsets. report may be NULL. Allocates (not for the per-frame path). */
km_status km_subject_calibrate(const km_body_markerset *set, const km_body_frame *frames,
                               int count, const km_subject_calibration_config *cfg,
                               const char *name, km_subject *out,
                               km_subject_calibration_report *report);
/* The marker set restricted to the labels present in a C3D file (labels matched exactly,
 * after a "Subject:" prefix, or through the usual aliases LFRA=LFRM, RFRA=RFRM); the
 * markers keep the file's spelling. KM_ERR_NOT_FOUND when fewer than 3 match. */
km_status km_body_markerset_match_c3d(const km_body_markerset *set, const km_c3d *c3d,
                                      km_body_markerset *out);

/* -------------------------------------------------------------------- solver */

#define KM_SKELETON_MAX_PEOPLE 4

typedef struct km_skeleton_solver_config {
    km_ik_config ik;
    int max_markers;           /* markers per input frame (default 512) */
    double gate_m;             /* label <-> predicted position gate (default 0.06) */
    double continuity_gate_m;  /* gate for the marker that had the label last frame (same
                                * track id) (default 0.10) */
    double continuity_factor;  /* its cost is multiplied by this (default 0.25) */
    double max_residual_m;     /* after IK a label further than this is dropped, and an
                                * unlabeled marker this close to a free label's solved
                                * position takes it (recovery) (default 0.03) */
    int min_markers;           /* a person with fewer labeled markers is lost and booted
                                * again (default 8) */
    double person_link_m;      /* boot: markers closer than this are one person (default
                                * 0.35) */
    /* Booting a person is a search of tens of milliseconds; it is spread over calls: */
    int boot_budget_us;        /* boot work per km_skeleton_solver_run call, microseconds
                                * (default 1500); one step (~0.1-1 ms) always runs, so a call
                                * may exceed it by one step. 0 = no time limit. The search
                                * for tracked people's lost limbs shares it (and boot_steps;
                                * one limb step also always runs when a limb waits) */
    int boot_steps;            /* at most this many boot steps per call (default 0 = no limit;
                                * tests set it for a spread that does not depend on time).
                                * boot_budget_us = boot_steps = 0: a whole boot in one call */
    int boot_retry_frames;     /* markers a person could not be fitted to are not tried
                                * again for this many frames (doubling with each further
                                * failure at that place, up to 8x) (default 60; 0 = retry at
                                * once) */
} km_skeleton_solver_config;

typedef struct km_skeleton_solver_stats {
    uint64_t frames;
    uint64_t boots;            /* successful (re)boots */
    uint64_t lost;             /* people lost (too few markers) */
    uint64_t recovered;        /* labels given back by recovery after IK */
    uint64_t dropped;          /* labels dropped as IK outliers */
    uint64_t boot_failed;      /* boots that ended without a fit (the place is backed off) */
    uint64_t boot_steps;       /* boot steps run */
    uint64_t boot_skipped;     /* clusters not tried in a frame because a boot failed there
                                * lately (summed over frames and people) */
    uint64_t boot_longest_ns;  /* longest time one call spent booting (and searching for
                                * lost limbs, which shares the budget) */
    uint64_t limb_attempts;    /* steps of the lost-limb search (a limb restarted from one
                                * typical pose) and of the limb-end check (one assignment) */
    uint64_t limbs_recovered;  /* lost limbs (arm or leg) found again by those searches */
} km_skeleton_solver_stats;

typedef struct km_skeleton_solver km_skeleton_solver;

km_skeleton_solver_config km_skeleton_solver_config_default(void);
/* One subject per person (1..KM_SKELETON_MAX_PEOPLE), copied. Everything allocated here.
 * Free with km_skeleton_solver_destroy (accepts NULL). */
km_skeleton_solver *km_skeleton_solver_create(const km_skeleton_solver_config *cfg,
                                              const km_subject *subjects, int count,
                                              km_status *err);
void km_skeleton_solver_destroy(km_skeleton_solver *solver);
/* Forget all people: they boot again from the next frame. */
void km_skeleton_solver_reset(km_skeleton_solver *solver);
int km_skeleton_solver_count(const km_skeleton_solver *solver);
const km_subject *km_skeleton_solver_subject(const km_skeleton_solver *solver, int person);
/* One frame of unlabeled 3D markers (ids: persistent track ids from km_tracker help
 * continuity; any ids work) -> one pose per subject in subject order (out needs room for
 * all: KM_ERR_CAPACITY otherwise). A person not found is tracked = false. People that are
 * not tracked boot from the markers no tracked person took: standing upright, any heading,
 * T-pose or arms down; a boot is spread over calls (boot_budget_us of work per call) and
 * the person is tracked from the call that completes it. No allocation. One solver is used
 * by one thread at a time. */
km_status km_skeleton_solver_run(km_skeleton_solver *solver, const km_marker_set *markers,
                                 km_skeleton_pose *out, int capacity);
/* Labels of the last run for one person: marker_index[l] = index into the markers given to
 * the last run for label l of the subject's marker set, -1 when unlabeled. capacity must be
 * >= the subject's marker count. */
km_status km_skeleton_solver_labels(const km_skeleton_solver *solver, int person,
                                    int *marker_index, int capacity);
km_skeleton_solver_stats km_skeleton_solver_get_stats(const km_skeleton_solver *solver);

/* BVH of one person's solved motion: the hierarchy from the subject's bones (metres, rest =
 * T-pose), Hips with 6 channels (X Y Z position, Z X Y rotation), every other joint Z X Y
 * rotations in degrees (local_rot); End Sites after Head, Hands and Toes. Frames where the
 * person was not tracked repeat the last tracked pose. Reads back with km_bvh_load. */
km_status km_skeleton_bvh_write(FILE *f, const km_subject *subject,
                                const km_skeleton_pose *poses, int frames, double frame_time_s);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_SKELETON_H */
