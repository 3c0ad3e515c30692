/* Body model and per-frame inverse kinematics (include/kinema/skeleton.h "IK").
 *
 * Pose parameters: root position and orientation, a quaternion per ball joint, one or two
 * angles per hinge-like joint. Each Levenberg-Marquardt iteration linearises the marker
 * positions in small rotation increments (world-frame axis a through joint centre c moves a
 * marker x by a x (x - c)), so there is no Euler-angle singularity for the 3-DoF joints;
 * ball joints are then projected onto their limits by a swing-twist decomposition, angle
 * joints clamped to their ranges. A Tikhonov term keeps joints that no marker observes
 * where they were. Everything is sized at create: no allocation per frame. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeleton_internal.h"

#define MODULE "skeleton"
#define DEG (M_PI / 180.0)
#define MAX_DOF 64

/* ---------------------------------------------------------------- body model */

#define V(x, y, z) {x, y, z}
#define BALL(name, parent, off, tw, swing, tlo, thi)                                      \
    {name, parent, JOINT_BALL, off, tw, (swing) * DEG, (tlo) * DEG, (thi) * DEG, 0,       \
     {V(0, 0, 0), V(0, 0, 0)}, {0, 0}, {0, 0}}
#define ANG1(name, parent, off, a0, lo0, hi0)                                             \
    {name, parent, JOINT_ANGLES, off, V(0, 0, 0), 0, 0, 0, 1, {a0, V(0, 0, 0)},           \
     {(lo0) * DEG, 0}, {(hi0) * DEG, 0}}
#define ANG2(name, parent, off, a0, lo0, hi0, a1, lo1, hi1)                               \
    {name, parent, JOINT_ANGLES, off, V(0, 0, 0), 0, 0, 0, 2, {a0, a1},                  \
     {(lo0) * DEG, (lo1) * DEG}, {(hi0) * DEG, (hi1) * DEG}}
#define FIXED(name, parent, off)                                                          \
    {name, parent, JOINT_FIXED, off, V(0, 0, 0), 0, 0, 0, 0, {V(0, 0, 0), V(0, 0, 0)},   \
     {0, 0}, {0, 0}}

/* Rest: T-pose, palms down, facing +Z, left on +X, Y up. Ranges are anatomical ones,
 * generous enough for sport and stage motion. Mirroring left -> right negates x of the
 * offsets and the ranges of rotations about Y and Z. */
static const joint_def JOINTS[KM_JOINT_COUNT] = {
    {"Hips", -1, JOINT_ROOT, V(0, 0, 0), V(0, 0, 0), 0, 0, 0, 0, {V(0, 0, 0), V(0, 0, 0)},
     {0, 0}, {0, 0}},
    BALL("Spine", KM_JOINT_HIPS, V(0, 0.10, 0), V(0, 1, 0), 60, -50, 50),
    FIXED("Chest", KM_JOINT_SPINE, V(0, 0.15, 0)),
    BALL("Neck", KM_JOINT_CHEST, V(0, 0.22, -0.01), V(0, 1, 0), 70, -80, 80),
    FIXED("Head", KM_JOINT_NECK, V(0, 0.10, 0.01)),
    ANG2("LeftShoulder", KM_JOINT_CHEST, V(0.03, 0.17, 0.03), V(0, 0, 1), -20, 35, V(0, 1, 0),
         -25, 25),
    BALL("LeftUpperArm", KM_JOINT_LEFT_SHOULDER, V(0.15, 0.01, -0.04), V(1, 0, 0), 165, -110,
         110),
    ANG2("LeftLowerArm", KM_JOINT_LEFT_UPPER_ARM, V(0.28, 0, 0), V(0, 1, 0), -155, 10,
         V(1, 0, 0), -100, 100),
    ANG2("LeftHand", KM_JOINT_LEFT_LOWER_ARM, V(0.25, 0, 0), V(0, 0, 1), -85, 85, V(0, 1, 0),
         -40, 40),
    ANG2("RightShoulder", KM_JOINT_CHEST, V(-0.03, 0.17, 0.03), V(0, 0, 1), -35, 20,
         V(0, 1, 0), -25, 25),
    BALL("RightUpperArm", KM_JOINT_RIGHT_SHOULDER, V(-0.15, 0.01, -0.04), V(-1, 0, 0), 165,
         -110, 110),
    ANG2("RightLowerArm", KM_JOINT_RIGHT_UPPER_ARM, V(-0.28, 0, 0), V(0, 1, 0), -10, 155,
         V(1, 0, 0), -100, 100),
    ANG2("RightHand", KM_JOINT_RIGHT_LOWER_ARM, V(-0.25, 0, 0), V(0, 0, 1), -85, 85,
         V(0, 1, 0), -40, 40),
    BALL("LeftUpperLeg", KM_JOINT_HIPS, V(0.085, -0.075, 0.0), V(0, -1, 0), 130, -60, 60),
    ANG1("LeftLowerLeg", KM_JOINT_LEFT_UPPER_LEG, V(0, -0.42, 0), V(1, 0, 0), -10, 160),
    ANG2("LeftFoot", KM_JOINT_LEFT_LOWER_LEG, V(0, -0.40, 0), V(1, 0, 0), -55, 55, V(0, 0, 1),
         -40, 40),
    FIXED("LeftToes", KM_JOINT_LEFT_FOOT, V(0, -0.05, 0.13)),
    BALL("RightUpperLeg", KM_JOINT_HIPS, V(-0.085, -0.075, 0.0), V(0, -1, 0), 130, -60, 60),
    ANG1("RightLowerLeg", KM_JOINT_RIGHT_UPPER_LEG, V(0, -0.42, 0), V(1, 0, 0), -10, 160),
    ANG2("RightFoot", KM_JOINT_RIGHT_LOWER_LEG, V(0, -0.40, 0), V(1, 0, 0), -55, 55,
         V(0, 0, 1), -40, 40),
    FIXED("RightToes", KM_JOINT_RIGHT_FOOT, V(0, -0.05, 0.13)),
};

const joint_def *skeleton_joint_def(int joint)
{
    if (joint < 0 || joint >= KM_JOINT_COUNT)
        return NULL;
    return &JOINTS[joint];
}

int skeleton_joint_dof(int joint)
{
    const joint_def *d = skeleton_joint_def(joint);
    if (!d)
        return 0;
    switch (d->kind) {
    case JOINT_ROOT:
        return 6;
    case JOINT_BALL:
        return 3;
    case JOINT_ANGLES:
        return d->axis_count;
    case JOINT_FIXED:
    default:
        return 0;
    }
}

const char *km_joint_name(int joint)
{
    const joint_def *d = skeleton_joint_def(joint);
    return d ? d->name : "";
}

int km_joint_parent(int joint)
{
    const joint_def *d = skeleton_joint_def(joint);
    return d ? d->parent : -1;
}

int km_joint_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        if (!strcmp(JOINTS[j].name, name))
            return j;
    return -1;
}

km_vec3 km_joint_default_offset(int joint)
{
    const joint_def *d = skeleton_joint_def(joint);
    return d ? d->offset_m : km_vec3_make(0, 0, 0);
}

void skeleton_rest_positions(const km_subject *s, km_vec3 hips_m, km_vec3 *joints,
                             km_vec3 *markers)
{
    km_vec3 p[KM_JOINT_COUNT];
    p[0] = hips_m;
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        p[j] = km_vec3_add(p[JOINTS[j].parent], s->bone_m[j]);
    if (joints)
        memcpy(joints, p, sizeof p);
    if (markers)
        for (int i = 0; i < s->markers.count; i++) {
            const km_body_marker *m = &s->markers.markers[i];
            markers[i] = km_vec3_add(p[m->segment], m->offset_m);
        }
}

/* ------------------------------------------------------------------- state */


struct km_ik {
    km_ik_config cfg;
    km_subject subject;
    pose_state state;     /* current estimate (solved, or predicted by extrapolate) */
    pose_state solved;    /* pose of the last solve */
    pose_state prev;      /* pose of the solve before that */
    bool warm, have_prev;
    int dof_start[KM_JOINT_COUNT];
    int dof_total;
    uint32_t chain[KM_JOINT_COUNT];   /* bit j set: joint j moves segment (index) */
    /* forward kinematics of `state` */
    km_mat3 R[KM_JOINT_COUNT];
    km_vec3 P[KM_JOINT_COUNT];
    km_mat3 local[KM_JOINT_COUNT];
    double residual[KM_SKELETON_MAX_MARKERS];
    double last_rms;
    int last_used;
    double limit_scale;   /* ranges multiplied by this (1; narrower while booting) */
    double twist_scale;   /* twist ranges (about the bone) multiplied by this */
};

km_ik_config km_ik_config_default(void)
{
    km_ik_config c;
    c.max_iterations = 12;
    c.boot_iterations = 60;
    c.tolerance_m = 1e-5;
    c.damping = 1e-4;
    c.limits = true;
    return c;
}

static km_mat3 axis_rot(km_vec3 axis, double angle)
{
    return km_mat3_from_axis_angle(axis, angle);
}

static void local_rotation(const km_ik *ik, const pose_state *s, int j, km_mat3 *out)
{
    const joint_def *d = &JOINTS[j];
    switch (d->kind) {
    case JOINT_ROOT:
        *out = km_quat_to_mat3(s->root_rot);
        break;
    case JOINT_BALL:
        *out = km_quat_to_mat3(s->q[j]);
        break;
    case JOINT_ANGLES:
        *out = axis_rot(d->axis[0], s->angle[j][0]);
        if (d->axis_count > 1)
            *out = km_mat3_mul(*out, axis_rot(d->axis[1], s->angle[j][1]));
        break;
    case JOINT_FIXED:
    default:
        *out = km_mat3_identity();
        break;
    }
    (void)ik;
}

static void forward(km_ik *ik, const pose_state *s)
{
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        local_rotation(ik, s, j, &ik->local[j]);
        if (j == 0) {
            ik->R[0] = ik->local[0];
            ik->P[0] = s->root_pos;
        } else {
            int p = JOINTS[j].parent;
            ik->R[j] = km_mat3_mul(ik->R[p], ik->local[j]);
            ik->P[j] = km_vec3_add(ik->P[p], km_mat3_apply(ik->R[p], ik->subject.bone_m[j]));
        }
    }
}

static km_vec3 marker_pos(const km_ik *ik, int i)
{
    const km_body_marker *m = &ik->subject.markers.markers[i];
    return km_vec3_add(ik->P[m->segment], km_mat3_apply(ik->R[m->segment], m->offset_m));
}

static void init_state(pose_state *s)
{
    memset(s, 0, sizeof *s);
    s->root_rot = km_quat_identity();
    for (int j = 0; j < KM_JOINT_COUNT; j++)
        s->q[j] = km_quat_identity();
}

static void setup(km_ik *ik)
{
    int n = 0;
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        ik->dof_start[j] = n;
        n += skeleton_joint_dof(j);
        uint32_t mask = 1u << j;
        for (int a = JOINTS[j].parent; a >= 0; a = JOINTS[a].parent)
            mask |= 1u << a;
        ik->chain[j] = mask;
    }
    ik->dof_total = n;
}

km_ik *km_ik_create(const km_subject *subject, const km_ik_config *cfg, km_status *err)
{
    km_status st;
    if (!subject) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "ik: no subject");
        goto fail;
    }
    st = km_body_markerset_validate(&subject->markers);
    if (st != KM_OK)
        goto fail;
    km_ik *ik = calloc(1, sizeof *ik);
    if (!ik) {
        st = km_error(KM_ERR_NO_MEMORY, "ik: out of memory");
        goto fail;
    }
    ik->cfg = cfg ? *cfg : km_ik_config_default();
    if (ik->cfg.max_iterations < 1)
        ik->cfg.max_iterations = 1;
    if (ik->cfg.boot_iterations < ik->cfg.max_iterations)
        ik->cfg.boot_iterations = ik->cfg.max_iterations;
    ik->subject = *subject;
    ik->subject.bone_m[0] = km_vec3_make(0, 0, 0);
    setup(ik);
    km_ik_reset(ik);
    if (err)
        *err = KM_OK;
    return ik;
fail:
    if (err)
        *err = st;
    return NULL;
}

void km_ik_destroy(km_ik *ik)
{
    free(ik);
}

void km_ik_reset(km_ik *ik)
{
    if (!ik)
        return;
    init_state(&ik->state);
    ik->prev = ik->state;
    ik->solved = ik->state;
    ik->warm = false;
    ik->have_prev = false;
    ik->last_rms = 0;
    ik->last_used = 0;
    ik->limit_scale = 1.0;
    ik->twist_scale = 1.0;
    for (int i = 0; i < KM_SKELETON_MAX_MARKERS; i++)
        ik->residual[i] = -1;
    forward(ik, &ik->state);
}

const km_subject *km_ik_subject(const km_ik *ik)
{
    return &ik->subject;
}

void km_ik_set_subject(km_ik *ik, const km_subject *subject)
{
    ik->subject = *subject;
    ik->subject.bone_m[0] = km_vec3_make(0, 0, 0);
    forward(ik, &ik->state);
}

/* ---------------------------------------------------------------- limits */

static double wrap_angle(double a)
{
    while (a > M_PI)
        a -= 2 * M_PI;
    while (a < -M_PI)
        a += 2 * M_PI;
    return a;
}

static km_quat clamp_ball(const joint_def *d, km_quat q, double scale, double twist_scale)
{
    q = km_quat_normalize(q);
    if (q.w < 0) {
        q.x = -q.x;
        q.y = -q.y;
        q.z = -q.z;
        q.w = -q.w;
    }
    km_vec3 axis = d->twist_axis;
    double proj = q.x * axis.x + q.y * axis.y + q.z * axis.z;
    km_quat twist = {axis.x * proj, axis.y * proj, axis.z * proj, q.w};
    double tn = sqrt(twist.x * twist.x + twist.y * twist.y + twist.z * twist.z +
                     twist.w * twist.w);
    if (tn < 1e-9)
        twist = km_quat_identity(); /* swing of 180 degrees: twist undefined */
    else
        twist = (km_quat){twist.x / tn, twist.y / tn, twist.z / tn, twist.w / tn};
    km_quat swing = km_quat_mul(q, km_quat_conjugate(twist));
    double twist_angle = wrap_angle(2.0 * atan2(twist.x * axis.x + twist.y * axis.y +
                                                    twist.z * axis.z,
                                                twist.w));
    double sw = fabs(swing.w) > 1.0 ? 1.0 : fabs(swing.w);
    double swing_angle = 2.0 * acos(sw);
    bool changed = false;
    if (twist_angle < d->twist_lo_rad * twist_scale) {
        twist_angle = d->twist_lo_rad * twist_scale;
        changed = true;
    } else if (twist_angle > d->twist_hi_rad * twist_scale) {
        twist_angle = d->twist_hi_rad * twist_scale;
        changed = true;
    }
    if (swing_angle > d->swing_max_rad * scale) {
        km_vec3 sa = {swing.x, swing.y, swing.z};
        if (swing.w < 0)
            sa = km_vec3_scale(sa, -1);
        swing = km_quat_from_axis_angle(km_vec3_normalize(sa), d->swing_max_rad * scale);
        changed = true;
    }
    if (!changed)
        return q;
    return km_quat_normalize(km_quat_mul(swing, km_quat_from_axis_angle(axis, twist_angle)));
}

/* Is axis k of angle joint j along the joint's own bone (towards its first child)? */
static bool twist_axis_of(int j, int k)
{
    for (int c = j + 1; c < KM_JOINT_COUNT; c++)
        if (JOINTS[c].parent == j) {
            km_vec3 b = km_vec3_normalize(JOINTS[c].offset_m);
            return fabs(km_vec3_dot(b, JOINTS[j].axis[k])) > 0.9;
        }
    return false;
}

static void apply_limits(const km_ik *ik, pose_state *s)
{
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        const joint_def *d = &JOINTS[j];
        if (d->kind == JOINT_BALL) {
            s->q[j] = ik->cfg.limits ? clamp_ball(d, s->q[j], ik->limit_scale, ik->twist_scale)
                                     : km_quat_normalize(s->q[j]);
        } else if (d->kind == JOINT_ANGLES && ik->cfg.limits) {
            for (int k = 0; k < d->axis_count; k++) {
                /* an axis along the bone (the forearm's) is a twist */
                const double sc = twist_axis_of(j, k) ? ik->twist_scale : ik->limit_scale;
                if (s->angle[j][k] < d->lo_rad[k] * sc)
                    s->angle[j][k] = d->lo_rad[k] * sc;
                if (s->angle[j][k] > d->hi_rad[k] * sc)
                    s->angle[j][k] = d->hi_rad[k] * sc;
            }
        }
    }
    s->root_rot = km_quat_normalize(s->root_rot);
}

/* ------------------------------------------------------------------- solve */

static double cost(km_ik *ik, const km_body_frame *f, int *used)
{
    double c = 0.0;
    int n = 0;
    for (int i = 0; i < f->count; i++) {
        if (!f->valid[i])
            continue;
        km_vec3 d = km_vec3_sub(f->pos_m[i], marker_pos(ik, i));
        c += ik->subject.markers.markers[i].weight * km_vec3_dot(d, d);
        n++;
    }
    if (used)
        *used = n;
    return c;
}

/* One column per DOF that moves marker i: the world displacement per unit increment. */
static int marker_columns(const km_ik *ik, const pose_state *s, int seg, km_vec3 x,
                          int *index, km_vec3 *col)
{
    int n = 0;
    uint32_t mask = ik->chain[seg];
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        if (!(mask & (1u << j)))
            continue;
        const joint_def *d = &JOINTS[j];
        int base = ik->dof_start[j];
        km_vec3 r = km_vec3_sub(x, ik->P[j]);
        switch (d->kind) {
        case JOINT_ROOT: {
            static const km_vec3 E[3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
            for (int k = 0; k < 3; k++) {
                index[n] = base + k;
                col[n++] = E[k];
            }
            for (int k = 0; k < 3; k++) {
                index[n] = base + 3 + k;
                col[n++] = km_vec3_cross(E[k], r);
            }
            break;
        }
        case JOINT_BALL:
            for (int k = 0; k < 3; k++) {
                km_vec3 a = {ik->R[j].m[k], ik->R[j].m[3 + k], ik->R[j].m[6 + k]};
                index[n] = base + k;
                col[n++] = km_vec3_cross(a, r);
            }
            break;
        case JOINT_ANGLES: {
            const km_mat3 *Rp = &ik->R[d->parent];
            km_vec3 a0 = km_mat3_apply(*Rp, d->axis[0]);
            index[n] = base;
            col[n++] = km_vec3_cross(a0, r);
            if (d->axis_count > 1) {
                km_mat3 R0 = km_mat3_mul(*Rp, axis_rot(d->axis[0], s->angle[j][0]));
                km_vec3 a1 = km_mat3_apply(R0, d->axis[1]);
                index[n] = base + 1;
                col[n++] = km_vec3_cross(a1, r);
            }
            break;
        }
        case JOINT_FIXED:
        default:
            break;
        }
    }
    return n;
}

static void step_state(const km_ik *ik, const pose_state *in, const double *delta,
                       pose_state *out)
{
    *out = *in;
    out->root_pos = km_vec3_add(in->root_pos, km_vec3_make(delta[0], delta[1], delta[2]));
    km_vec3 w = {delta[3], delta[4], delta[5]};
    double a = km_vec3_norm(w);
    if (a > 1e-12)
        out->root_rot = km_quat_mul(km_quat_from_axis_angle(km_vec3_scale(w, 1 / a), a),
                                    in->root_rot);
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        const joint_def *d = &JOINTS[j];
        const double *dj = delta + ik->dof_start[j];
        if (d->kind == JOINT_BALL) {
            km_vec3 v = {dj[0], dj[1], dj[2]};
            double an = km_vec3_norm(v);
            if (an > 1e-12)
                out->q[j] = km_quat_mul(in->q[j],
                                        km_quat_from_axis_angle(km_vec3_scale(v, 1 / an), an));
        } else if (d->kind == JOINT_ANGLES) {
            for (int k = 0; k < d->axis_count; k++)
                out->angle[j][k] = in->angle[j][k] + dj[k];
        }
    }
    apply_limits(ik, out);
}

/* Cold start: the root from the hips markers (Kabsch onto their rest offsets) when at least
 * three are seen, else the centroid of all markers; the joints at rest. */
static void boot_root(km_ik *ik, const km_body_frame *f)
{
    init_state(&ik->state);
    km_vec3 local[KM_SKELETON_MAX_MARKERS], world[KM_SKELETON_MAX_MARKERS];
    km_vec3 rest_markers[KM_SKELETON_MAX_MARKERS];
    skeleton_rest_positions(&ik->subject, km_vec3_make(0, 0, 0), NULL, rest_markers);
    int n = 0;
    for (int i = 0; i < f->count; i++) {
        if (f->valid[i] && ik->subject.markers.markers[i].segment == KM_JOINT_HIPS) {
            local[n] = rest_markers[i];
            world[n++] = f->pos_m[i];
        }
    }
    km_vec3 pos;
    km_quat rot;
    if (n >= 3 && km_rigid_solve_pose(local, world, NULL, n, &pos, &rot, NULL) == KM_OK) {
        ik->state.root_pos = pos;
        ik->state.root_rot = rot;
        return;
    }
    km_vec3 cw = {0, 0, 0}, cl = {0, 0, 0};
    n = 0;
    for (int i = 0; i < f->count; i++) {
        if (!f->valid[i])
            continue;
        cw = km_vec3_add(cw, f->pos_m[i]);
        cl = km_vec3_add(cl, rest_markers[i]);
        n++;
    }
    if (n > 0)
        ik->state.root_pos = km_vec3_scale(km_vec3_sub(cw, cl), 1.0 / n);
}

void km_ik_set_root(km_ik *ik, km_vec3 pos_m, km_quat rot)
{
    ik->state.root_pos = pos_m;
    ik->state.root_rot = km_quat_normalize(rot);
    ik->solved = ik->state;
    ik->prev = ik->state;
    ik->have_prev = false;
    ik->warm = true;
    forward(ik, &ik->state);
}

void skeleton_ik_set_limit_scale(km_ik *ik, double scale, double twist_scale)
{
    ik->limit_scale = scale;
    ik->twist_scale = twist_scale;
}

void skeleton_ik_set_ball(km_ik *ik, int joint, km_quat q)
{
    if (joint <= 0 || joint >= KM_JOINT_COUNT || JOINTS[joint].kind != JOINT_BALL)
        return;
    ik->state.q[joint] = km_quat_normalize(q);
    ik->solved = ik->state;
    ik->prev = ik->state;
    forward(ik, &ik->state);
}

static void fill_pose(const km_ik *ik, km_skeleton_pose *out, bool tracked)
{
    out->tracked = tracked;
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        out->joint_pos_m[j] = ik->P[j];
        out->joint_rot[j] = km_quat_normalize(km_quat_from_mat3(ik->R[j]));
        out->local_rot[j] = km_quat_normalize(km_quat_from_mat3(ik->local[j]));
    }
    out->residual_m = ik->last_rms;
    out->markers_used = ik->last_used;
}

static km_status lm_solve(km_ik *ik, const km_body_frame *f, int iterations)
{
    const int n = ik->dof_total;
    double H[MAX_DOF * MAX_DOF], g[MAX_DOF], delta[MAX_DOF], A[MAX_DOF * MAX_DOF];
    int idx[MAX_DOF];
    km_vec3 col[MAX_DOF];
    double lambda = 1e-3;
    int used = 0;
    forward(ik, &ik->state);
    double c = cost(ik, f, &used);
    for (int it = 0; it < iterations; it++) {
        memset(H, 0, sizeof(double) * (size_t)(n * n));
        memset(g, 0, sizeof(double) * (size_t)n);
        for (int i = 0; i < f->count; i++) {
            if (!f->valid[i])
                continue;
            const km_body_marker *m = &ik->subject.markers.markers[i];
            km_vec3 x = marker_pos(ik, i);
            km_vec3 r = km_vec3_sub(f->pos_m[i], x);
            int nc = marker_columns(ik, &ik->state, m->segment, x, idx, col);
            const double w = m->weight;
            for (int a = 0; a < nc; a++) {
                g[idx[a]] += w * km_vec3_dot(col[a], r);
                for (int b = 0; b <= a; b++) {
                    double v = w * km_vec3_dot(col[a], col[b]);
                    int ia = idx[a], ib = idx[b];
                    if (ia >= ib)
                        H[ia * n + ib] += v;
                    else
                        H[ib * n + ia] += v;
                }
            }
        }
        bool improved = false;
        for (int attempt = 0; attempt < 6 && !improved; attempt++) {
            memcpy(A, H, sizeof(double) * (size_t)(n * n));
            for (int k = 0; k < n; k++)
                A[k * n + k] += lambda * H[k * n + k] + ik->cfg.damping;
            if (km_solve_spd(A, g, n, delta) != KM_OK) {
                lambda *= 10;
                continue;
            }
            pose_state trial;
            step_state(ik, &ik->state, delta, &trial);
            pose_state keep = ik->state;
            ik->state = trial;
            forward(ik, &ik->state);
            double ct = cost(ik, f, NULL);
            if (ct < c) {
                improved = true;
                bool converged = sqrt(c / (used ? used : 1)) - sqrt(ct / (used ? used : 1)) <
                                 ik->cfg.tolerance_m;
                c = ct;
                lambda = lambda / 3 > 1e-7 ? lambda / 3 : 1e-7;
                if (converged)
                    it = iterations;
            } else {
                ik->state = keep;
                forward(ik, &ik->state);
                lambda *= 4;
            }
        }
        if (!improved)
            break;
    }
    ik->last_used = used;
    ik->last_rms = used ? sqrt(c / used) : 0.0;
    for (int i = 0; i < KM_SKELETON_MAX_MARKERS; i++)
        ik->residual[i] = -1;
    for (int i = 0; i < f->count; i++)
        if (f->valid[i])
            ik->residual[i] = km_vec3_dist(f->pos_m[i], marker_pos(ik, i));
    return KM_OK;
}

/* From a cold start the arms are where local minima live (an arm reached by twisting the
 * other way round, an elbow bent against its limit): each arm is restarted from a few
 * typical poses (T, down, forward, up; elbow straight or bent) and the best fit is kept. */
static void cold_start_arms(km_ik *ik, const km_body_frame *f)
{
    static const struct {
        double swing_z, swing_y, elbow;
    } STARTS[] = {{0, 0, 0},     {-1.35, 0, 0},   {0, 1.4, 0},   {1.2, 0, 0},
                  {0, 0, -1.5},  {-1.35, 0, -1.5}, {0, 1.4, -1.5}, {-0.7, 0.7, -0.8}};
    for (int side = 0; side < 2; side++) {
        const int upper = side ? KM_JOINT_RIGHT_UPPER_ARM : KM_JOINT_LEFT_UPPER_ARM;
        const int lower = side ? KM_JOINT_RIGHT_LOWER_ARM : KM_JOINT_LEFT_LOWER_ARM;
        const int hand = side ? KM_JOINT_RIGHT_HAND : KM_JOINT_LEFT_HAND;
        const double mirror = side ? -1.0 : 1.0;
        pose_state best = ik->state;
        forward(ik, &ik->state);
        double best_cost = cost(ik, f, NULL);
        const pose_state base = ik->state;
        for (size_t k = 0; k < sizeof STARTS / sizeof STARTS[0]; k++) {
            ik->state = base;
            km_quat qz = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), mirror * STARTS[k].swing_z);
            km_quat qy = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), -mirror * STARTS[k].swing_y);
            ik->state.q[upper] = km_quat_mul(qy, qz);
            ik->state.angle[lower][0] = mirror * STARTS[k].elbow;
            ik->state.angle[lower][1] = 0;
            ik->state.angle[hand][0] = ik->state.angle[hand][1] = 0;
            apply_limits(ik, &ik->state);
            lm_solve(ik, f, 20);
            double c = cost(ik, f, NULL);
            if (c < best_cost * 0.999) {
                best_cost = c;
                best = ik->state;
            }
        }
        ik->state = best;
        forward(ik, &ik->state);
    }
    lm_solve(ik, f, ik->cfg.max_iterations);
}

km_status skeleton_ik_solve_n(km_ik *ik, const km_body_frame *frame, int iterations,
                              km_skeleton_pose *out)
{
    if (!ik || !frame)
        return km_error(KM_ERR_INVALID_ARGUMENT, "ik solve: NULL argument");
    if (frame->count != ik->subject.markers.count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "ik solve: frame has %d markers, subject %d",
                        frame->count, ik->subject.markers.count);
    int valid = 0;
    for (int i = 0; i < frame->count; i++)
        valid += frame->valid[i];
    if (valid < 3) {
        if (out)
            fill_pose(ik, out, false);
        return km_error(KM_ERR_NUMERIC, "ik solve: %d markers (at least 3 needed)", valid);
    }
    const bool cold = !ik->warm;
    if (!ik->warm) {
        boot_root(ik, frame);
        if (iterations < ik->cfg.boot_iterations)
            iterations = ik->cfg.boot_iterations;
        ik->have_prev = false;
    }
    km_status st = lm_solve(ik, frame, iterations);
    if (st == KM_OK && cold)
        cold_start_arms(ik, frame);
    if (st != KM_OK)
        return st;
    ik->prev = ik->warm ? ik->solved : ik->state;
    ik->have_prev = ik->warm;
    ik->solved = ik->state;
    ik->warm = true;
    if (out)
        fill_pose(ik, out, true);
    return KM_OK;
}

km_status km_ik_solve(km_ik *ik, const km_body_frame *frame, km_skeleton_pose *out)
{
    return skeleton_ik_solve_n(ik, frame, ik ? ik->cfg.max_iterations : 0, out);
}

void km_ik_predict_markers(const km_ik *ik, km_vec3 *out)
{
    for (int i = 0; i < ik->subject.markers.count; i++)
        out[i] = marker_pos(ik, i);
}

void km_ik_get_pose(const km_ik *ik, km_skeleton_pose *out)
{
    fill_pose(ik, out, ik->warm);
}

void km_ik_residuals(const km_ik *ik, double *out)
{
    memcpy(out, ik->residual, sizeof(double) * (size_t)ik->subject.markers.count);
}

/* q_next = q * (q_prev^-1 * q): the same relative rotation once more. */
static km_quat extrapolate_quat(km_quat prev, km_quat cur)
{
    km_quat d = km_quat_mul(km_quat_conjugate(prev), cur);
    return km_quat_normalize(km_quat_mul(cur, d));
}

void km_ik_extrapolate(km_ik *ik)
{
    if (!ik->warm || !ik->have_prev)
        return;
    pose_state next = ik->solved;
    const pose_state *p = &ik->prev, *c = &ik->solved;
    next.root_pos = km_vec3_sub(km_vec3_scale(c->root_pos, 2.0), p->root_pos);
    km_quat d = km_quat_mul(c->root_rot, km_quat_conjugate(p->root_rot));
    next.root_rot = km_quat_normalize(km_quat_mul(d, c->root_rot));
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        if (JOINTS[j].kind == JOINT_BALL)
            next.q[j] = extrapolate_quat(p->q[j], c->q[j]);
        else if (JOINTS[j].kind == JOINT_ANGLES)
            for (int k = 0; k < 2; k++)
                next.angle[j][k] = 2 * c->angle[j][k] - p->angle[j][k];
    }
    apply_limits(ik, &next);
    ik->state = next;
    forward(ik, &ik->state);
}

/* ---------------------------------------------------- calibration hooks */

int skeleton_ik_dof(const km_ik *ik)
{
    return ik->dof_total;
}

void skeleton_ik_get_state(const km_ik *ik, pose_state *out)
{
    *out = ik->state;
}

void skeleton_ik_set_state(km_ik *ik, const pose_state *in)
{
    ik->state = *in;
    ik->solved = *in;
    ik->prev = *in;
    ik->have_prev = false;
    ik->warm = true;
    forward(ik, &ik->state);
}

double skeleton_ik_linearize(km_ik *ik, const km_body_frame *f, double *J, double *r,
                             km_mat3 *R, km_vec3 *P)
{
    const int n = ik->dof_total;
    forward(ik, &ik->state);
    int idx[MAX_DOF];
    km_vec3 col[MAX_DOF];
    double c = 0;
    for (int i = 0; i < f->count; i++) {
        double *Ji = J + (size_t)i * 3 * (size_t)n;
        memset(Ji, 0, sizeof(double) * 3 * (size_t)n);
        r[3 * i] = r[3 * i + 1] = r[3 * i + 2] = 0;
        if (!f->valid[i])
            continue;
        const km_body_marker *m = &ik->subject.markers.markers[i];
        km_vec3 x = marker_pos(ik, i);
        km_vec3 d = km_vec3_sub(f->pos_m[i], x);
        r[3 * i] = d.x;
        r[3 * i + 1] = d.y;
        r[3 * i + 2] = d.z;
        c += m->weight * km_vec3_dot(d, d);
        int nc = marker_columns(ik, &ik->state, m->segment, x, idx, col);
        for (int a = 0; a < nc; a++) {
            Ji[idx[a]] = col[a].x;
            Ji[n + idx[a]] = col[a].y;
            Ji[2 * n + idx[a]] = col[a].z;
        }
    }
    if (R)
        memcpy(R, ik->R, sizeof ik->R);
    if (P)
        memcpy(P, ik->P, sizeof ik->P);
    return c;
}

void skeleton_ik_step(km_ik *ik, const double *delta)
{
    pose_state next;
    step_state(ik, &ik->state, delta, &next);
    skeleton_ik_set_state(ik, &next);
}

double skeleton_ik_cost(km_ik *ik, const km_body_frame *f)
{
    forward(ik, &ik->state);
    return cost(ik, f, NULL);
}

/* ---------------------------------------------------- limb restarts (label.c) */

void skeleton_ik_copy(km_ik *dst, const km_ik *src)
{
    *dst = *src;
}

/* Typical poses of an arm (swing of the upper arm about Z, then Y, then X; elbow flexion:
 * down, T, forward, up, each with the elbow straight or bent, then swung back, and down
 * with the hand in front) and of
 * a leg (hip flexion about X, negative = thigh forward; abduction about Z; knee flexion):
 * a limb the tracker lost is searched from each in turn. Left side; mirrored for the
 * right. */
static const struct {
    double swing_z, swing_y, swing_x, elbow;
} ARM_STARTS[] = {{-1.35, 0, 0, 0},    {0, 0, 0, 0},       {0, 1.4, 0, 0},
                  {1.2, 0, 0, 0},      {-1.35, 0, 0, -1.5}, {0, 0, 0, -1.5},
                  {0, 1.4, 0, -1.5},   {-0.7, 0.7, 0, -0.8}, {-1.3, 0, 0.5, -0.3},
                  {-1.3, 0, -0.6, -1.8}};
static const struct {
    double flex, abduct, knee;
} LEG_STARTS[] = {{0, 0, 0},     {-0.5, 0, 0.4}, {0.4, 0, 0.6}, {-1.3, 0, 1.6},
                  {0, 0, 1.3},   {0, 0.5, 0},    {-0.8, 0, 0}};

static bool limb_side(int first_joint, bool *arm, double *mirror)
{
    switch (first_joint) {
    case KM_JOINT_LEFT_UPPER_ARM: *arm = true; *mirror = 1; return true;
    case KM_JOINT_RIGHT_UPPER_ARM: *arm = true; *mirror = -1; return true;
    case KM_JOINT_LEFT_UPPER_LEG: *arm = false; *mirror = 1; return true;
    case KM_JOINT_RIGHT_UPPER_LEG: *arm = false; *mirror = -1; return true;
    default: return false;
    }
}

int skeleton_ik_limb_starts(int first_joint)
{
    bool arm;
    double mirror;
    if (!limb_side(first_joint, &arm, &mirror))
        return 0;
    return arm ? (int)(sizeof ARM_STARTS / sizeof ARM_STARTS[0])
               : (int)(sizeof LEG_STARTS / sizeof LEG_STARTS[0]);
}

void skeleton_ik_limb_start(km_ik *ik, int first_joint, int k)
{
    bool arm;
    double mirror;
    const int n = skeleton_ik_limb_starts(first_joint);
    if (n == 0 || !limb_side(first_joint, &arm, &mirror))
        return;
    k = ((k % n) + n) % n;
    pose_state *s = &ik->state;
    if (arm) {
        km_quat qz = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), mirror * ARM_STARTS[k].swing_z);
        km_quat qy = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), -mirror * ARM_STARTS[k].swing_y);
        /* (a rotation about X is its own mirror image) */
        km_quat qx = km_quat_from_axis_angle(km_vec3_make(1, 0, 0), ARM_STARTS[k].swing_x);
        s->q[first_joint] = km_quat_mul(qx, km_quat_mul(qy, qz));
        s->angle[first_joint + 1][0] = mirror * ARM_STARTS[k].elbow;
        s->angle[first_joint + 1][1] = 0;
        s->angle[first_joint + 2][0] = s->angle[first_joint + 2][1] = 0;
    } else {
        km_quat qx = km_quat_from_axis_angle(km_vec3_make(1, 0, 0), LEG_STARTS[k].flex);
        km_quat qz = km_quat_from_axis_angle(km_vec3_make(0, 0, 1), mirror * LEG_STARTS[k].abduct);
        s->q[first_joint] = km_quat_mul(qz, qx);
        s->angle[first_joint + 1][0] = LEG_STARTS[k].knee;
        s->angle[first_joint + 2][0] = s->angle[first_joint + 2][1] = 0;
    }
    apply_limits(ik, s);
    forward(ik, s);
}

void skeleton_ik_relax_end(km_ik *ik, int first_joint)
{
    bool arm;
    double mirror;
    if (!limb_side(first_joint, &arm, &mirror))
        return;
    if (arm) {
        ik->state.angle[first_joint + 1][1] = 0; /* forearm twist */
        ik->state.angle[first_joint + 2][0] = ik->state.angle[first_joint + 2][1] = 0;
    } else {
        ik->state.angle[first_joint + 2][0] = ik->state.angle[first_joint + 2][1] = 0;
    }
    apply_limits(ik, &ik->state);
    forward(ik, &ik->state);
}

void skeleton_ik_hold(km_ik *ik, uint32_t joints)
{
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        if (joints & (1u << j)) {
            ik->prev.q[j] = ik->solved.q[j];
            ik->prev.angle[j][0] = ik->solved.angle[j][0];
            ik->prev.angle[j][1] = ik->solved.angle[j][1];
        }
}

void skeleton_ik_merge_history(km_ik *ik, const km_ik *before, uint32_t joints)
{
    pose_state prev = before->have_prev ? before->prev : before->solved;
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        if (joints & (1u << j)) {
            prev.q[j] = ik->solved.q[j];
            prev.angle[j][0] = ik->solved.angle[j][0];
            prev.angle[j][1] = ik->solved.angle[j][1];
        }
    ik->prev = prev;
    ik->have_prev = before->have_prev;
}
