/* Private to skeleton/: the body model table shared by ik.c, subject.c, markerset.c and
 * label.c. */
#ifndef KINEMA_SKELETON_INTERNAL_H
#define KINEMA_SKELETON_INTERNAL_H

#include "kinema/skeleton.h"

/* How a joint may rotate relative to its parent. */
typedef enum joint_kind {
    JOINT_ROOT = 0,   /* 6-DoF: translation + rotation */
    JOINT_BALL,       /* 3-DoF, limited by a swing cone about twist_axis and a twist range */
    JOINT_ANGLES,     /* 1 or 2 rotations about fixed local axes, each with a range */
    JOINT_FIXED       /* rigid to the parent (no markers to observe it with the default set) */
} joint_kind;

typedef struct joint_def {
    const char *name;
    int parent;
    joint_kind kind;
    km_vec3 offset_m;         /* default bone vector, 1.75 m person */
    /* BALL */
    km_vec3 twist_axis;       /* unit, parent frame at rest: the bone's direction */
    double swing_max_rad;
    double twist_lo_rad, twist_hi_rad;
    /* ANGLES: local rotation = R(axis[0], angle[0]) * R(axis[1], angle[1]) */
    int axis_count;
    km_vec3 axis[2];
    double lo_rad[2], hi_rad[2];
} joint_def;

/* The table, in km_joint order. */
const joint_def *skeleton_joint_def(int joint);
/* Degrees of freedom of a joint (6 root, 3 ball, axis_count, 0 fixed). */
int skeleton_joint_dof(int joint);
/* The default height the template offsets are drawn for. */
#define SKELETON_TEMPLATE_HEIGHT_M 1.75

/* Rest-pose world positions of joints and markers of a subject with the hips at pelvis. */
void skeleton_rest_positions(const km_subject *s, km_vec3 hips_m, km_vec3 *joints,
                             km_vec3 *markers);


/* ------------------------------------------------------------------- ik.c */

/* The IK pose parameters (per frame state). */
typedef struct pose_state {
    km_vec3 root_pos;
    km_quat root_rot;
    km_quat q[KM_JOINT_COUNT];        /* BALL joints */
    double angle[KM_JOINT_COUNT][2];  /* ANGLES joints */
} pose_state;

/* Hooks for the joint calibration (subject.c): number of pose parameters; get/set the
 * current pose; residuals r (3 per marker, observed - predicted, 0 for missing markers)
 * and their Jacobian J (row-major 3*count x dof) with respect to pose increments, the
 * segments' world rotations R and joint positions P; the weighted cost is returned. A step
 * applies pose increments (with limits). */
int skeleton_ik_dof(const km_ik *ik);
void skeleton_ik_get_state(const km_ik *ik, pose_state *out);
void skeleton_ik_set_state(km_ik *ik, const pose_state *in);
double skeleton_ik_linearize(km_ik *ik, const km_body_frame *f, double *J, double *r,
                             km_mat3 *R, km_vec3 *P);
void skeleton_ik_step(km_ik *ik, const double *delta);
double skeleton_ik_cost(km_ik *ik, const km_body_frame *f);

/* ---------------------------------------------------------------- multi.c */

/* A possible label <-> marker pairing with its cost. */
typedef struct skel_edge {
    int row;      /* label (global over all people) */
    int col;      /* marker index in the frame */
    double cost;
} skel_edge;

typedef struct skel_assign skel_assign;

/* Workspace for up to max_rows labels, max_cols markers and max_edges edges. */
skel_assign *skel_assign_create(int max_rows, int max_cols, int max_edges);
void skel_assign_destroy(skel_assign *a);
/* Minimum-cost assignment: each row gets at most one column and each column at most one row;
 * a row may stay unassigned at cost unassigned[row]. Solved exactly (Hungarian) on each
 * connected component of the edge graph. row_to_col[r] = column or -1. No allocation. */
void skel_assign_solve(skel_assign *a, int rows, int cols, const skel_edge *edges,
                       int edge_count, const double *unassigned, int *row_to_col);

/* Single-linkage clusters of the points with use[i] (link distance link_m): cluster[i] = id
 * in 0..count-1, -1 for unused points. work: n ints. Returns the cluster count. */
int skel_cluster(const km_vec3 *pos, const bool *use, int n, double link_m, int *cluster,
                 int *work);

/* ik.c: km_ik_solve with an explicit iteration count (boot hypotheses). */
km_status skeleton_ik_solve_n(km_ik *ik, const km_body_frame *frame, int iterations,
                              km_skeleton_pose *out);
/* ik.c: set the rotation of a ball joint in the current pose (boot hypotheses). */
void skeleton_ik_set_ball(km_ik *ik, int joint, km_quat q);
/* ik.c: multiply every joint range by scale, twist ranges (about the bone) by twist_scale
 * (narrow ranges while booting from a rest-like pose; 1, 1 = the anatomical ranges). */
void skeleton_ik_set_limit_scale(km_ik *ik, double scale, double twist_scale);
/* ik.c, for the recovery of a lost limb (label.c): */
/* Copy the whole solver state (pose, history, residuals; same subject size). */
void skeleton_ik_copy(km_ik *dst, const km_ik *src);
/* Number of typical poses a limb is restarted from (first_joint: Left/RightUpperArm,
 * Left/RightUpperLeg; 0 for other joints), and setting the limb's joints of the current pose
 * to typical pose k (within limits; the rest of the body unchanged). */
int skeleton_ik_limb_starts(int first_joint);
void skeleton_ik_limb_start(km_ik *ik, int first_joint, int k);
/* The end of a limb (forearm twist and hand, or foot) at rest angles, in the current pose. */
void skeleton_ik_relax_end(km_ik *ik, int first_joint);
/* Joints of the mask get no velocity: the next prediction leaves them where they are (a
 * limb no marker observes is held, not extrapolated forever). */
void skeleton_ik_hold(km_ik *ik, uint32_t joints);
/* After solves that moved a limb: the previous pose (for the constant-velocity prediction)
 * taken from `before` (the state before those solves), with the joints of the mask (bit j)
 * at their new values: the body keeps its velocity, the limb starts at rest. */
void skeleton_ik_merge_history(km_ik *ik, const km_ik *before, uint32_t joints);
#endif
