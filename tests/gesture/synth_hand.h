/* Test fixture: a parametric hand (finger flexion angles, thumb abduction/flexion) in the
 * 21-landmark layout, posed in the world with a rotation, a size factor and Gaussian noise.
 * Hand frame: wrist at the origin, fingers along +y when straight, palm facing -z, thumb
 * on the +x side for a right hand (a left hand mirrors x). Metres. */
#ifndef KINEMA_TESTS_SYNTH_HAND_H
#define KINEMA_TESTS_SYNTH_HAND_H

#include <math.h>
#include <string.h>

#include "kinema/gesture.h"

typedef struct synth_rng {
    uint64_t s;
} synth_rng;

static inline double synth_uniform(synth_rng *r)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(r->s >> 11) / 9007199254740992.0;
}

static inline double synth_gauss(synth_rng *r)
{
    double u = synth_uniform(r), v = synth_uniform(r);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

typedef struct synth_hand_params {
    double flex_deg[4][3]; /* index..pinky: MCP, PIP, DIP flexion (0 = straight) */
    double thumb_abduction; /* 0 across the palm .. 1 out to the side */
    double thumb_flex_deg[2]; /* MCP, IP */
    bool thumb_to_index_tip; /* pinch: the thumb chain reaches for the index tip (IK) */
    bool thumb_over_fingers; /* fist: the thumb lies across the index/middle middle phalanges */
} synth_hand_params;

static const double SYNTH_MCP[4][3] = {
    {0.024, 0.088, 0.0}, {0.004, 0.092, 0.0}, {-0.015, 0.087, 0.0}, {-0.032, 0.078, 0.0}};
static const double SYNTH_BONES[4][3] = {
    {0.040, 0.025, 0.020}, {0.045, 0.029, 0.021}, {0.042, 0.027, 0.020}, {0.032, 0.020, 0.018}};
static const double SYNTH_THUMB_BONES[3] = {0.042, 0.032, 0.027};

static inline km_vec3 synth_bend(km_vec3 d0, km_vec3 toward, double angle_rad)
{
    km_vec3 perp = km_vec3_sub(toward, km_vec3_scale(d0, km_vec3_dot(toward, d0)));
    perp = km_vec3_normalize(perp);
    return km_vec3_normalize(
        km_vec3_add(km_vec3_scale(d0, cos(angle_rad)), km_vec3_scale(perp, sin(angle_rad))));
}

/* Landmarks in the hand frame (right hand). */
static inline void synth_hand_local(const synth_hand_params *hp, km_vec3 *p)
{
    const double deg = M_PI / 180.0;
    p[KM_HAND_WRIST] = km_vec3_make(0, 0, 0);
    for (int f = 0; f < 4; f++) {
        int mcp = KM_HAND_INDEX_MCP + 4 * f;
        p[mcp] = km_vec3_make(SYNTH_MCP[f][0], SYNTH_MCP[f][1], SYNTH_MCP[f][2]);
        double phi = 0.0;
        for (int b = 0; b < 3; b++) {
            phi += hp->flex_deg[f][b] * deg;
            /* fingers splay a little: index leans to +x, pinky to -x */
            double splay = (1.5 - f) * 0.08;
            km_vec3 d = km_vec3_make(sin(splay) * cos(phi), cos(splay) * cos(phi), -sin(phi));
            p[mcp + b + 1] = km_vec3_add(p[mcp + b], km_vec3_scale(d, SYNTH_BONES[f][b]));
        }
    }
    p[KM_HAND_THUMB_CMC] = km_vec3_make(0.022, 0.022, -0.012);
    km_vec3 across = km_vec3_normalize(km_vec3_make(-0.1, 0.75, -0.65));
    km_vec3 out = km_vec3_normalize(km_vec3_make(0.75, 0.6, -0.25));
    double a = hp->thumb_abduction;
    km_vec3 d0 = km_vec3_normalize(
        km_vec3_add(km_vec3_scale(across, 1.0 - a), km_vec3_scale(out, a)));
    km_vec3 target = km_vec3_add(p[KM_HAND_INDEX_TIP], km_vec3_make(0.002, 0.0, -0.003));
    if (hp->thumb_over_fingers) {
        km_vec3 m = km_vec3_add(km_vec3_add(p[KM_HAND_INDEX_PIP], p[KM_HAND_INDEX_DIP]),
                                km_vec3_add(p[KM_HAND_MIDDLE_PIP], p[KM_HAND_MIDDLE_DIP]));
        target = km_vec3_add(km_vec3_scale(m, 0.25), km_vec3_make(0.0, 0.0, -0.012));
    }
    bool ik = hp->thumb_to_index_tip || hp->thumb_over_fingers;
    double l1 = SYNTH_THUMB_BONES[1], l2 = SYNTH_THUMB_BONES[2];
    if (ik) {
        /* turn the metacarpal toward the index tip until the two distal bones reach it */
        km_vec3 toward = km_vec3_normalize(km_vec3_sub(target, p[KM_HAND_THUMB_CMC]));
        for (int k = 0; k <= 10; k++) {
            km_vec3 d = km_vec3_normalize(km_vec3_add(km_vec3_scale(d0, 1.0 - 0.1 * k),
                                                      km_vec3_scale(toward, 0.1 * k)));
            km_vec3 mcp = km_vec3_add(p[KM_HAND_THUMB_CMC], km_vec3_scale(d, SYNTH_THUMB_BONES[0]));
            if (km_vec3_dist(mcp, target) < 0.95 * (l1 + l2) || k == 10) {
                d0 = d;
                break;
            }
        }
    }
    p[KM_HAND_THUMB_MCP] = km_vec3_add(p[KM_HAND_THUMB_CMC], km_vec3_scale(d0, SYNTH_THUMB_BONES[0]));
    if (ik) {
        /* two-bone IK: MCP -> IP -> TIP reaching the index tip, bending away from the palm */
        km_vec3 A = p[KM_HAND_THUMB_MCP];
        km_vec3 u = km_vec3_sub(target, A);
        double d = km_vec3_norm(u);
        u = km_vec3_scale(u, 1.0 / d);
        if (d > l1 + l2 - 1e-4)
            d = l1 + l2 - 1e-4;
        double along = (l1 * l1 - l2 * l2 + d * d) / (2 * d);
        double h = sqrt(fmax(0.0, l1 * l1 - along * along));
        km_vec3 hint = km_vec3_make(0.3, 0.0, 1.0);
        km_vec3 v = km_vec3_normalize(km_vec3_sub(hint, km_vec3_scale(u, km_vec3_dot(hint, u))));
        p[KM_HAND_THUMB_IP] = km_vec3_add(A, km_vec3_add(km_vec3_scale(u, along), km_vec3_scale(v, h)));
        p[KM_HAND_THUMB_TIP] = km_vec3_add(A, km_vec3_scale(u, d));
        return;
    }
    km_vec3 palmward = km_vec3_normalize(km_vec3_make(-1.0, 0.2, -0.6));
    km_vec3 d1 = synth_bend(d0, palmward, hp->thumb_flex_deg[0] * deg);
    p[KM_HAND_THUMB_IP] = km_vec3_add(p[KM_HAND_THUMB_MCP], km_vec3_scale(d1, SYNTH_THUMB_BONES[1]));
    km_vec3 d2 = synth_bend(d1, palmward, hp->thumb_flex_deg[1] * deg);
    p[KM_HAND_THUMB_TIP] = km_vec3_add(p[KM_HAND_THUMB_IP], km_vec3_scale(d2, SYNTH_THUMB_BONES[2]));
}

/* World hand: rotation R (hand frame -> world), uniform size factor, position of the wrist,
 * isotropic Gaussian noise of sigma_m on every landmark; a left hand mirrors x first. */
static inline km_hand synth_hand_world(const synth_hand_params *hp, km_mat3 R, double size,
                                       km_vec3 wrist, km_hand_side side, double sigma_m,
                                       synth_rng *rng)
{
    km_vec3 local[KM_HAND_LANDMARK_COUNT];
    synth_hand_local(hp, local);
    km_hand h = km_hand_init();
    h.side = side;
    h.person = 0;
    h.landmark_valid = KM_HAND_LANDMARKS_ALL;
    for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++) {
        km_vec3 q = local[i];
        if (side == KM_HAND_SIDE_LEFT)
            q.x = -q.x;
        q = km_vec3_add(wrist, km_mat3_apply(R, km_vec3_scale(q, size)));
        if (sigma_m > 0.0 && rng) {
            q.x += sigma_m * synth_gauss(rng);
            q.y += sigma_m * synth_gauss(rng);
            q.z += sigma_m * synth_gauss(rng);
        }
        h.landmark_m[i] = q;
    }
    return h;
}

/* A random rotation (uniform axis, angle in [0, max_angle]). */
static inline km_mat3 synth_random_rotation(synth_rng *r, double max_angle_rad)
{
    km_vec3 axis = km_vec3_make(synth_gauss(r), synth_gauss(r), synth_gauss(r));
    axis = km_vec3_normalize(axis);
    return km_mat3_from_axis_angle(axis, max_angle_rad * synth_uniform(r));
}

/* Rotation taking unit a onto unit b. */
static inline km_mat3 synth_rotation_between(km_vec3 a, km_vec3 b)
{
    km_vec3 axis = km_vec3_cross(a, b);
    double s = km_vec3_norm(axis), c = km_vec3_dot(a, b);
    if (s < 1e-12)
        return km_mat3_identity();
    return km_mat3_from_axis_angle(km_vec3_scale(axis, 1.0 / s), atan2(s, c));
}

#endif
