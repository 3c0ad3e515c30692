/* Shared by the end-to-end skeleton test and bench_skeleton: a real motion (CMU BVH in the
 * MotionBuilder-friendly naming of mocap_bvh/cmu_fairmotion) wearing the Plug-in Gait
 * markers, placed by this code: each marker rides the BVH segment that moves like the
 * segment of our body model it belongs to, at the template's offset (scaled to the actor)
 * from the joint it sits next to, taken in the take's T-pose frame 0. Ground-truth joint
 * centres are the BVH joints' positions. */
#ifndef KINEMA_TESTS_SKELETON_BVH_ACTOR_H
#define KINEMA_TESTS_SKELETON_BVH_ACTOR_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"
#include "kinema/skeleton.h"

/* Our joint -> the CMU joint at the same place (truth) and the CMU segment whose frame
 * carries our segment's markers. */
static const char *const BVH_ACTOR_JOINT[KM_JOINT_COUNT][2] = {
    {"Hips", "Hips"},
    {"Spine", "Spine1"},
    {"Spine1", "Spine1"},
    {"Neck", "Head"},
    {"Head", "Head"},
    {"LeftShoulder", "LeftShoulder"},
    {"LeftArm", "LeftArm"},
    {"LeftForeArm", "LeftForeArm"},
    {"LeftHand", "LeftFingerBase"},
    {"RightShoulder", "RightShoulder"},
    {"RightArm", "RightArm"},
    {"RightForeArm", "RightForeArm"},
    {"RightHand", "RightFingerBase"},
    {"LeftUpLeg", "LeftUpLeg"},
    {"LeftLeg", "LeftLeg"},
    {"LeftFoot", "LeftFoot"},
    {"LeftToeBase", "LeftToeBase"},
    {"RightUpLeg", "RightUpLeg"},
    {"RightLeg", "RightLeg"},
    {"RightFoot", "RightFoot"},
    {"RightToeBase", "RightToeBase"},
};

/* The joints whose centres a marker-based solver can know (functional joints of the limbs):
 * the figure of merit. */
static const int BVH_ACTOR_LIMB_JOINTS[12] = {
    KM_JOINT_LEFT_UPPER_LEG,  KM_JOINT_LEFT_LOWER_LEG,  KM_JOINT_LEFT_FOOT,
    KM_JOINT_RIGHT_UPPER_LEG, KM_JOINT_RIGHT_LOWER_LEG, KM_JOINT_RIGHT_FOOT,
    KM_JOINT_LEFT_UPPER_ARM,  KM_JOINT_LEFT_LOWER_ARM,  KM_JOINT_LEFT_HAND,
    KM_JOINT_RIGHT_UPPER_ARM, KM_JOINT_RIGHT_LOWER_ARM, KM_JOINT_RIGHT_HAND};

/* In the CMU skeleton the forearm's twist (pronation) happens at the "LeftHand" joint, whose
 * child "LeftFingerBase" (at the same place) flexes the hand: the wrist markers, which ride
 * the distal forearm and so turn with pronation, are carried by "LeftHand". */
static const char *const BVH_ACTOR_WRIST_CARRIER[2] = {"LeftHand", "RightHand"};

typedef struct bvh_actor {
    km_bvh *bvh;
    double scale_m;
    int joint_bvh[KM_JOINT_COUNT];
    int seg_bvh[KM_JOINT_COUNT];
    km_body_markerset set;
    km_vec3 marker_local[KM_SKELETON_MAX_MARKERS]; /* in the carrying BVH segment's frame */
    int marker_bvh[KM_SKELETON_MAX_MARKERS];        /* the carrying BVH segment */
    int nodes;
    km_vec3 *pos;
    km_mat3 *rot;
} bvh_actor;

static inline void bvh_actor_free(bvh_actor *a)
{
    km_bvh_destroy(a->bvh);
    free(a->pos);
    free(a->rot);
    memset(a, 0, sizeof *a);
}

/* false when the file is absent or not a CMU-named skeleton. */
static inline bool bvh_actor_init(bvh_actor *a, const char *path)
{
    memset(a, 0, sizeof *a);
    km_status st;
    a->bvh = km_bvh_load(path, &st);
    if (!a->bvh)
        return false;
    a->scale_m = km_bvh_guess_scale_m(a->bvh);
    a->nodes = km_bvh_joint_count(a->bvh);
    a->pos = malloc(sizeof *a->pos * (size_t)a->nodes);
    a->rot = malloc(sizeof *a->rot * (size_t)a->nodes);
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        a->joint_bvh[j] = km_bvh_find_joint(a->bvh, BVH_ACTOR_JOINT[j][0]);
        a->seg_bvh[j] = km_bvh_find_joint(a->bvh, BVH_ACTOR_JOINT[j][1]);
        if (a->joint_bvh[j] < 0 || a->seg_bvh[j] < 0) {
            bvh_actor_free(a);
            return false;
        }
    }
    /* frame 0: the T-pose. Body axes from the hips (left), world up, forward = left x up. */
    km_bvh_pose(a->bvh, 0, a->scale_m, a->pos, a->rot);
    km_vec3 left = km_vec3_sub(a->pos[a->joint_bvh[KM_JOINT_LEFT_UPPER_LEG]],
                               a->pos[a->joint_bvh[KM_JOINT_RIGHT_UPPER_LEG]]);
    left.y = 0;
    left = km_vec3_normalize(left);
    km_vec3 up = {0, 1, 0};
    km_vec3 fwd = km_vec3_cross(left, up);
    km_mat3 body = {{left.x, up.x, fwd.x, left.y, up.y, fwd.y, left.z, up.z, fwd.z}};
    /* template scaled by leg length */
    double leg = km_vec3_dist(a->pos[a->joint_bvh[KM_JOINT_LEFT_UPPER_LEG]],
                              a->pos[a->joint_bvh[KM_JOINT_LEFT_LOWER_LEG]]) +
                 km_vec3_dist(a->pos[a->joint_bvh[KM_JOINT_LEFT_LOWER_LEG]],
                              a->pos[a->joint_bvh[KM_JOINT_LEFT_FOOT]]);
    double s = leg / (0.42 + 0.40);
    km_body_markerset_default(&a->set);
    /* The template's rest pose: each marker is placed, like an operator places it by
     * palpation, relative to the joint it sits next to (ELB at the elbow, WRA/WRB at the
     * wrist, KNE at the knee ...): the template joint nearest to it among its segment's
     * proximal joint and that joint's children. */
    km_vec3 rest[KM_JOINT_COUNT];
    rest[0] = km_vec3_make(0, 0, 0);
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        rest[j] = km_vec3_add(rest[km_joint_parent(j)], km_joint_default_offset(j));
    for (int i = 0; i < a->set.count; i++) {
        const km_body_marker *m = &a->set.markers[i];
        int seg = m->segment;
        km_vec3 rest_marker = km_vec3_add(rest[seg], m->offset_m);
        int near = seg;
        for (int j = 1; j < KM_JOINT_COUNT; j++)
            if (km_joint_parent(j) == seg &&
                km_vec3_dist(rest[j], rest_marker) < km_vec3_dist(rest[near], rest_marker))
                near = j;
        km_vec3 w = km_vec3_add(
            a->pos[a->joint_bvh[near]],
            km_mat3_apply(body, km_vec3_scale(km_vec3_sub(rest_marker, rest[near]), s)));
        int b = a->seg_bvh[seg];
        if (near == KM_JOINT_LEFT_HAND || near == KM_JOINT_RIGHT_HAND) {
            if (seg != near) /* a wrist marker of the forearm */
                b = km_bvh_find_joint(a->bvh,
                                      BVH_ACTOR_WRIST_CARRIER[near == KM_JOINT_RIGHT_HAND]);
        }
        a->marker_bvh[i] = b;
        a->marker_local[i] =
            km_mat3_apply(km_mat3_transpose(a->rot[b]), km_vec3_sub(w, a->pos[b]));
    }
    return true;
}

/* Markers (set order) and our joints' true centres at a frame, shifted by `offset` and
 * turned by `yaw_rad` about the vertical through the origin. */
static inline void bvh_actor_frame(bvh_actor *a, int frame, km_vec3 offset, double yaw_rad,
                                   km_vec3 *markers, km_vec3 *joints)
{
    km_bvh_pose(a->bvh, frame, a->scale_m, a->pos, a->rot);
    km_mat3 turn = km_mat3_from_axis_angle(km_vec3_make(0, 1, 0), yaw_rad);
    for (int i = 0; markers && i < a->set.count; i++) {
        int b = a->marker_bvh[i];
        km_vec3 w = km_vec3_add(a->pos[b], km_mat3_apply(a->rot[b], a->marker_local[i]));
        markers[i] = km_vec3_add(km_mat3_apply(turn, w), offset);
    }
    for (int j = 0; joints && j < KM_JOINT_COUNT; j++)
        joints[j] = km_vec3_add(km_mat3_apply(turn, a->pos[a->joint_bvh[j]]), offset);
}

/* A ring of cameras around `centre` (radius, alternating heights), looking at the middle of
 * the volume: the synthetic rig. */
static inline void bvh_actor_rig(km_rig *rig, int cameras, km_vec3 centre, double radius_m)
{
    memset(rig, 0, sizeof *rig);
    snprintf(rig->name, sizeof rig->name, "ring%d", cameras);
    rig->camera_count = cameras;
    for (int c = 0; c < cameras; c++) {
        double a = 2 * M_PI * c / cameras;
        km_vec3 eye = {centre.x + radius_m * cos(a), c % 2 ? 3.0 : 2.2,
                       centre.z + radius_m * sin(a)};
        char name[16];
        snprintf(name, sizeof name, "cam%d", c);
        km_camera_look_at(&rig->cameras[c], name, 1280, 1024, 75 * M_PI / 180, eye,
                          km_vec3_make(centre.x, 1.0, centre.z));
    }
}

#endif
