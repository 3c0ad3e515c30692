/* Shared by the skeleton tests: real-data paths, an independent forward kinematics of the
 * body model (ground truth for the solver tests) and random poses within the joint limits. */
#ifndef KINEMA_TESTS_SKELETON_FIXTURE_H
#define KINEMA_TESTS_SKELETON_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kinema/skeleton.h"
#include "skeleton_internal.h"

static inline const char *fixture_data_root(void)
{
    const char *d = getenv("KINEMA_DATA");
    if (!d || !*d)
        d = getenv("KINEMA_DATA_DEFAULT");
    return d;
}

/* <data>/rel into out; false when absent. */
static inline bool fixture_data_path(char *out, size_t size, const char *rel)
{
    const char *root = fixture_data_root();
    if (!root)
        return false;
    snprintf(out, size, "%s/%s", root, rel);
    struct stat sb;
    return stat(out, &sb) == 0;
}

/* A pose of the body model in its own parameters: quaternions of the root and ball joints,
 * angles of the others. */
typedef struct fixture_pose {
    km_vec3 root_pos;
    km_quat q[KM_JOINT_COUNT];
    double angle[KM_JOINT_COUNT][2];
} fixture_pose;

static inline km_mat3 fixture_local(const fixture_pose *p, int j)
{
    const joint_def *d = skeleton_joint_def(j);
    if (d->kind == JOINT_ROOT || d->kind == JOINT_BALL)
        return km_quat_to_mat3(p->q[j]);
    km_mat3 r = km_mat3_identity();
    if (d->kind == JOINT_ANGLES)
        for (int k = 0; k < d->axis_count; k++)
            r = km_mat3_mul(r, km_mat3_from_axis_angle(d->axis[k], p->angle[j][k]));
    return r;
}

static inline void fixture_fk(const km_subject *s, const fixture_pose *p, km_vec3 *joints,
                              km_mat3 *rot, km_vec3 *markers)
{
    km_mat3 R[KM_JOINT_COUNT];
    km_vec3 P[KM_JOINT_COUNT];
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        int par = km_joint_parent(j);
        km_mat3 L = fixture_local(p, j);
        if (par < 0) {
            R[j] = L;
            P[j] = p->root_pos;
        } else {
            R[j] = km_mat3_mul(R[par], L);
            P[j] = km_vec3_add(P[par], km_mat3_apply(R[par], s->bone_m[j]));
        }
    }
    if (joints)
        memcpy(joints, P, sizeof P);
    if (rot)
        memcpy(rot, R, sizeof R);
    if (markers)
        for (int i = 0; i < s->markers.count; i++) {
            const km_body_marker *m = &s->markers.markers[i];
            markers[i] = km_vec3_add(P[m->segment], km_mat3_apply(R[m->segment], m->offset_m));
        }
}

static inline double fixture_uniform(unsigned *seed, double lo, double hi)
{
    *seed = *seed * 1103515245u + 12345u;
    return lo + (hi - lo) * ((*seed >> 8) & 0xffffff) / (double)0xffffff;
}

/* Random pose: every joint within `fraction` of its range (ball: swing and twist). */
static inline void fixture_random_pose(unsigned *seed, double fraction, fixture_pose *p)
{
    memset(p, 0, sizeof *p);
    p->root_pos = km_vec3_make(fixture_uniform(seed, -1, 1), fixture_uniform(seed, 0.9, 1.1),
                               fixture_uniform(seed, -1, 1));
    p->q[0] = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), fixture_uniform(seed, -M_PI, M_PI));
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        const joint_def *d = skeleton_joint_def(j);
        p->q[j] = km_quat_identity();
        if (d->kind == JOINT_BALL) {
            km_vec3 t = d->twist_axis;
            km_vec3 any = fabs(t.x) < 0.9 ? km_vec3_make(1, 0, 0) : km_vec3_make(0, 1, 0);
            km_vec3 a = km_vec3_normalize(km_vec3_cross(t, any));
            km_vec3 b = km_vec3_cross(t, a);
            double phi = fixture_uniform(seed, 0, 2 * M_PI);
            km_vec3 sw = km_vec3_add(km_vec3_scale(a, cos(phi)), km_vec3_scale(b, sin(phi)));
            double swing = fixture_uniform(seed, 0, d->swing_max_rad * fraction);
            double twist = fixture_uniform(seed, d->twist_lo_rad * fraction,
                                           d->twist_hi_rad * fraction);
            p->q[j] = km_quat_mul(km_quat_from_axis_angle(sw, swing),
                                  km_quat_from_axis_angle(t, twist));
        } else if (d->kind == JOINT_ANGLES) {
            for (int k = 0; k < d->axis_count; k++) {
                double mid = 0.5 * (d->lo_rad[k] + d->hi_rad[k]);
                double half = 0.5 * (d->hi_rad[k] - d->lo_rad[k]) * fraction;
                p->angle[j][k] = fixture_uniform(seed, mid - half, mid + half);
            }
        }
    }
}

/* Blend of two poses in parameter space (quaternions by slerp). */
static inline void fixture_blend(const fixture_pose *a, const fixture_pose *b, double t,
                                 fixture_pose *out)
{
    out->root_pos = km_vec3_add(km_vec3_scale(a->root_pos, 1 - t), km_vec3_scale(b->root_pos, t));
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        out->q[j] = km_quat_slerp(a->q[j], b->q[j], t);
        for (int k = 0; k < 2; k++)
            out->angle[j][k] = (1 - t) * a->angle[j][k] + t * b->angle[j][k];
    }
}

#endif
