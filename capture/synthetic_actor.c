/* The procedural actor of the synthetic scene: a person of about 1.75 m walking a circle
 * around the volume centre, with a simple articulated body (pelvis, torso, head, arms, legs)
 * driven by smooth periodic functions of time, so the scene is an exact, deterministic
 * function of time and its motion has no jumps.
 *
 * Frames of reference: world right-handed, Y up, metres. Each body segment has a local frame
 * with x = the actor's left, y = up (along the segment towards its parent joint for limbs),
 * z = forward. Marker positions are marker CENTRES: a marker of diameter d sits on the skin,
 * so its centre is d/2 off the skin surface of the body capsule it is attached to. The same
 * capsules serve as occluders for the renderer. All numbers are our own rough anthropometry
 * (no external data). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "synthetic.h"

#define PI 3.14159265358979323846

/* Index order of the markers within an actor (id = actor*1000 + index). */
static const char *const marker_labels[SYNTH_MARKERS_PER_ACTOR] = {
    "LFHD", "RFHD", "LBHD", "RBHD", "C7",   "T10",  "CLAV", "STRN", "RBAK", "LSHO",
    "LUPA", "LELB", "LFRM", "LWRA", "LWRB", "LFIN", "RSHO", "RUPA", "RELB", "RFRM",
    "RWRA", "RWRB", "RFIN", "LASI", "RASI", "LPSI", "RPSI", "LTHI", "LKNE", "LTIB",
    "LANK", "LHEE", "LTOE", "RTHI", "RKNE", "RTIB", "RANK", "RHEE", "RTOE", "HEAD1",
    "HEAD2", "HEAD3", "HEAD4", "PROP1", "PROP2", "PROP3", "PROP4", "PROP5",
};

enum {
    M_LFHD, M_RFHD, M_LBHD, M_RBHD, M_C7, M_T10, M_CLAV, M_STRN, M_RBAK, M_LSHO,
    M_LUPA, M_LELB, M_LFRM, M_LWRA, M_LWRB, M_LFIN, M_RSHO, M_RUPA, M_RELB, M_RFRM,
    M_RWRA, M_RWRB, M_RFIN, M_LASI, M_RASI, M_LPSI, M_RPSI, M_LTHI, M_LKNE, M_LTIB,
    M_LANK, M_LHEE, M_LTOE, M_RTHI, M_RKNE, M_RTIB, M_RANK, M_RHEE, M_RTOE,
};

/* Head rigid body: markers on short posts of a head band, relative to the head centre
 * (head frame). Asymmetric so that its pose is unambiguous: the six pairwise distances
 * differ from each other by at least 2 cm, and no two markers are closer than 6 cm. */
static const km_vec3 head_local[SYNTH_HEAD_MARKERS] = {
    {0.073, 0.153, -0.079},
    {0.024, 0.177, 0.079},
    {0.030, 0.178, -0.038},
    {-0.067, 0.182, 0.062},
};

/* Prop: a wand held in the right fist, its z axis continuing the forearm, origin at the
 * centre of the fist. Asymmetric constellation (a stick with side branches): the ten pairwise
 * distances differ by at least 1.3 cm, no two markers closer than 5 cm. */
static const km_vec3 prop_local[SYNTH_PROP_MARKERS] = {
    {0.000, 0.000, 0.100},
    {-0.048, -0.069, 0.318},
    {0.020, 0.044, 0.215},
    {0.018, 0.020, 0.309},
    {-0.002, 0.030, 0.171},
};

/* ------------------------------------------------------------ frames */

typedef struct segment_frame {
    km_vec3 origin;
    km_mat3 R;       /* local -> world */
    double scale;    /* lengths in local coordinates are multiplied by this */
} segment_frame;

static km_mat3 rot_x(double a)
{
    double c = cos(a), s = sin(a);
    km_mat3 R = {{1, 0, 0, 0, c, -s, 0, s, c}};
    return R;
}

static km_mat3 rot_y(double a)
{
    double c = cos(a), s = sin(a);
    km_mat3 R = {{c, 0, s, 0, 1, 0, -s, 0, c}};
    return R;
}

static km_mat3 rot_z(double a)
{
    double c = cos(a), s = sin(a);
    km_mat3 R = {{c, -s, 0, s, c, 0, 0, 0, 1}};
    return R;
}

static km_vec3 frame_point(const segment_frame *f, double x, double y, double z)
{
    km_vec3 local = {x * f->scale, y * f->scale, z * f->scale};
    return km_vec3_add(f->origin, km_mat3_apply(f->R, local));
}

/* A child segment whose origin is at `x,y,z` of the parent and which is rotated by Rlocal. */
static segment_frame frame_child(const segment_frame *parent, double x, double y, double z,
                                 km_mat3 Rlocal)
{
    segment_frame f;
    f.origin = frame_point(parent, x, y, z);
    f.R = km_mat3_mul(parent->R, Rlocal);
    f.scale = parent->scale;
    return f;
}

/* A marker on the skin of a capsule of radius `radius` (unscaled) around the local point
 * (x,y,z): its centre sits at radius*scale + half_diameter from the axis along `dir`. */
static km_vec3 skin_marker(const segment_frame *f, double x, double y, double z, km_vec3 dir,
                           double radius, double half_diameter_m)
{
    km_vec3 d = km_vec3_normalize(dir);
    double off = radius * f->scale + half_diameter_m;
    km_vec3 local = {x * f->scale + d.x * off, y * f->scale + d.y * off,
                     z * f->scale + d.z * off};
    return km_vec3_add(f->origin, km_mat3_apply(f->R, local));
}

static void add_capsule(synth_world *w, km_vec3 a, km_vec3 b, double radius_m)
{
    synth_capsule *c = &w->capsules[w->capsule_count++];
    c->a = a;
    c->b = b;
    c->radius_m = radius_m;
}

/* ------------------------------------------------------------ body radii (m, unscaled) */
#define R_TORSO 0.11
#define R_HEAD 0.10
#define R_UPPER_ARM 0.05
#define R_FOREARM 0.035
#define R_THIGH 0.075
#define R_SHANK 0.05
#define R_FOOT 0.035
#define L_UPPER_ARM 0.29
#define L_FOREARM 0.26
#define L_THIGH 0.42
#define L_SHANK 0.42

/* One arm. side = +1 left, -1 right. Flexion swings the arm forward (radians). */
static void eval_arm(synth_world *w, km_vec3 *m, const segment_frame *torso, double side,
                     double flexion, double elbow, double pronation, double half_d,
                     segment_frame *forearm_out)
{
    segment_frame ua = frame_child(torso, side * 0.18, 0.42, 0.0,
                                   km_mat3_mul(rot_z(side * 0.14), rot_x(-flexion)));
    segment_frame fa = frame_child(&ua, 0, -L_UPPER_ARM, 0,
                                   km_mat3_mul(rot_x(-elbow), rot_y(side * pronation)));
    bool left = side > 0;
    int base = left ? M_LSHO : M_RSHO;
    /* Acromion: on top of the shoulder joint. */
    m[base + 0] = skin_marker(&ua, 0, 0, 0, km_vec3_make(0, 1, 0), R_UPPER_ARM, half_d);
    /* Upper arm markers at different heights left and right (as Plug-in-Gait asks, so the
     * sides can be told apart). */
    m[base + 1] = skin_marker(&ua, 0, left ? -0.12 : -0.18, 0, km_vec3_make(side, 0, -0.2),
                              R_UPPER_ARM, half_d);
    m[base + 2] = skin_marker(&ua, 0, -L_UPPER_ARM, 0, km_vec3_make(side, 0, -0.3),
                              R_UPPER_ARM, half_d);
    m[base + 3] = skin_marker(&fa, 0, left ? -0.13 : -0.16, 0, km_vec3_make(side, 0, 0.2),
                              R_FOREARM, half_d);
    /* Wrist bar: thumb side (forward) and little-finger side (back). */
    m[base + 4] = skin_marker(&fa, 0, -L_FOREARM, 0, km_vec3_make(0, 0, 1), R_FOREARM, half_d);
    m[base + 5] = skin_marker(&fa, 0, -L_FOREARM, 0, km_vec3_make(0, 0, -1), R_FOREARM, half_d);
    /* Back of the hand (the hand itself is not an occluder). */
    m[base + 6] = skin_marker(&fa, 0, -0.34, 0, km_vec3_make(side, 0, 0), 0.015, half_d);

    add_capsule(w, ua.origin, fa.origin, R_UPPER_ARM * ua.scale);
    add_capsule(w, fa.origin, frame_point(&fa, 0, -L_FOREARM, 0), R_FOREARM * fa.scale);
    if (forearm_out)
        *forearm_out = fa;
}

/* One leg; side = +1 left, -1 right; phase = the gait phase of this leg (radians). */
static void eval_leg(synth_world *w, km_vec3 *m, const segment_frame *pelvis, double side,
                     double phase, double half_d)
{
    /* Hip flexion (thigh forward), knee flexion peaking in early swing: smooth periodic
     * functions of the phase. The foot's pitch (toes down > 0) follows 85 % of the shank's
     * backward inclination, so the ankle stays within ~10 degrees of neutral: toes up at heel
     * strike, toes down at push-off and in swing. */
    double hip = 0.38 * sin(phase);
    double k = 0.5 + 0.5 * cos(phase + 0.3);
    double knee = 0.10 + 0.80 * k * k;
    double shank_incline = knee - hip;
    double foot_pitch = 0.85 * shank_incline - 0.05 * sin(phase + 1.0);
    double ankle = shank_incline - foot_pitch;
    segment_frame th = frame_child(pelvis, side * 0.09, -0.02, 0.0,
                                   km_mat3_mul(rot_z(side * 0.03), rot_x(-hip)));
    segment_frame sh = frame_child(&th, 0, -L_THIGH, 0, rot_x(knee));
    segment_frame ft = frame_child(&sh, 0, -L_SHANK, 0, rot_x(-ankle));
    bool left = side > 0;
    int base = left ? M_LTHI : M_RTHI;
    m[base + 0] = skin_marker(&th, 0, left ? -0.20 : -0.26, 0, km_vec3_make(side, 0, 0.35),
                              R_THIGH, half_d);
    m[base + 1] = skin_marker(&th, 0, -L_THIGH, 0, km_vec3_make(side, 0, 0), R_THIGH, half_d);
    m[base + 2] = skin_marker(&sh, 0, left ? -0.20 : -0.25, 0, km_vec3_make(side, 0, 0.35),
                              R_SHANK, half_d);
    m[base + 3] = skin_marker(&sh, 0, -L_SHANK, 0, km_vec3_make(side, 0, 0), R_SHANK, half_d);
    /* Heel (back of the foot capsule) and toe (top of the forefoot). */
    m[base + 4] = skin_marker(&ft, 0, -0.04, -0.05, km_vec3_make(0, 0, -1), R_FOOT, half_d);
    m[base + 5] = skin_marker(&ft, 0, -0.04, 0.10, km_vec3_make(0, 1, 0), R_FOOT, half_d);

    add_capsule(w, th.origin, sh.origin, R_THIGH * th.scale);
    add_capsule(w, sh.origin, ft.origin, R_SHANK * sh.scale);
    add_capsule(w, frame_point(&ft, 0, -0.04, -0.05), frame_point(&ft, 0, -0.04, 0.14),
                R_FOOT * ft.scale);
}

static km_quat quat_of(km_mat3 R)
{
    return km_quat_normalize(km_quat_from_mat3(R));
}

/* Evaluate one actor at scene time t (seconds), appending to the world. */
static void eval_actor(const km_synthetic_scene *scene, int actor, double t, synth_world *w)
{
    const synth_actor_params *p = &scene->actors[actor];
    double half_d = 0.5 * scene->cfg.marker_diameter_m;
    km_vec3 *m = NULL;
    km_vec3 pos[SYNTH_MARKERS_PER_ACTOR];
    m = pos;
    int first_capsule = w->capsule_count;

    /* Root on the ground at the actor's place on the circle, facing along the path
     * (counter-clockwise seen from above), so the actor keeps turning. */
    double theta = p->path_phase_rad + p->speed_mps / p->path_radius_m * t;
    km_vec3 forward = {-sin(theta), 0, cos(theta)};
    km_vec3 up = {0, 1, 0};
    km_vec3 left = km_vec3_cross(up, forward);
    segment_frame root;
    root.origin = km_vec3_make(p->path_radius_m * cos(theta), 0, p->path_radius_m * sin(theta));
    root.R = (km_mat3){{left.x, up.x, forward.x, left.y, up.y, forward.y, left.z, up.z,
                        forward.z}};
    root.scale = p->scale;

    /* Gait phase of the left leg; the right leg is half a cycle later. */
    double phase = p->gait_phase_rad + 2.0 * PI * p->speed_mps / p->stride_m * t;
    double pelvis_yaw = -0.08 * sin(phase);
    /* The pelvis is highest at mid-stance, twice per cycle. */
    segment_frame pelvis = frame_child(&root, 0, 0.93 + 0.015 * cos(2.0 * phase), 0,
                                       rot_y(pelvis_yaw));
    segment_frame torso;
    torso.origin = frame_point(&pelvis, 0, 0.05, 0);
    torso.R = km_mat3_mul(root.R, km_mat3_mul(rot_y(-0.5 * pelvis_yaw), rot_x(0.08)));
    torso.scale = p->scale;
    /* The head looks around (yaw) and nods a little, slowly. */
    double look = 0.35 * sin(2.0 * PI * 0.23 * t + p->look_phase_rad);
    double nod = 0.10 * sin(2.0 * PI * 0.31 * t + 1.3 * p->look_phase_rad);
    segment_frame neck = frame_child(&torso, 0, 0.50, 0.0, km_mat3_mul(rot_y(look), rot_x(nod)));
    segment_frame head = frame_child(&neck, 0, 0.14, 0.02, km_mat3_identity());

    /* Head and torso markers. */
    m[M_LFHD] = skin_marker(&head, 0, 0, 0, km_vec3_make(0.45, 0.25, 0.85), R_HEAD, half_d);
    m[M_RFHD] = skin_marker(&head, 0, 0, 0, km_vec3_make(-0.45, 0.25, 0.85), R_HEAD, half_d);
    m[M_LBHD] = skin_marker(&head, 0, 0, 0, km_vec3_make(0.45, 0.25, -0.85), R_HEAD, half_d);
    m[M_RBHD] = skin_marker(&head, 0, 0, 0, km_vec3_make(-0.45, 0.25, -0.85), R_HEAD, half_d);
    m[M_C7] = frame_point(&torso, 0, 0.47, -0.10);
    m[M_T10] = frame_point(&torso, 0, 0.20, -0.105);
    m[M_CLAV] = frame_point(&torso, 0, 0.42, 0.095);
    m[M_STRN] = frame_point(&torso, 0, 0.26, 0.105);
    m[M_RBAK] = frame_point(&torso, -0.10, 0.30, -0.12);
    m[M_LASI] = frame_point(&pelvis, 0.125, 0.05, 0.125);
    m[M_RASI] = frame_point(&pelvis, -0.125, 0.05, 0.125);
    m[M_LPSI] = frame_point(&pelvis, 0.05, 0.07, -0.125);
    m[M_RPSI] = frame_point(&pelvis, -0.05, 0.07, -0.125);

    /* Torso as two side-by-side capsules (wider than deep), then the head. */
    add_capsule(w, frame_point(&torso, 0.065, -0.06, 0), frame_point(&torso, 0.07, 0.40, 0),
                R_TORSO * p->scale);
    add_capsule(w, frame_point(&torso, -0.065, -0.06, 0), frame_point(&torso, -0.07, 0.40, 0),
                R_TORSO * p->scale);
    add_capsule(w, head.origin, head.origin, R_HEAD * p->scale);

    /* Arms swing opposite to the legs; the right hand holds the prop in front of the body
     * and turns it slowly about the forearm. */
    double sw = sin(phase);
    eval_arm(w, m, &torso, +1, -0.30 * sw, 0.30 - 0.15 * sw, 0.0, half_d, NULL);
    double prop_turn = 0.35 * sin(2.0 * PI * 0.17 * t + p->prop_phase_rad);
    segment_frame right_forearm;
    eval_arm(w, m, &torso, -1, 0.45 + 0.08 * sw, 1.20 + 0.05 * sin(phase + 0.7), prop_turn,
             half_d, &right_forearm);
    eval_leg(w, m, &pelvis, +1, phase, half_d);
    eval_leg(w, m, &pelvis, -1, phase + PI, half_d);

    /* Rigid bodies: origins and orientations, then their markers. */
    segment_frame prop = frame_child(&right_forearm, 0, -0.34, 0,
                                     km_mat3_mul(rot_x(0.5 * PI), rot_z(0.25 * prop_turn)));
    prop.scale = 1.0; /* the prop's size does not follow the actor's */
    segment_frame head_rb = head;
    head_rb.scale = 1.0; /* nor does the head band's constellation */
    for (int i = 0; i < SYNTH_HEAD_MARKERS; i++)
        m[SYNTH_HEAD_FIRST + i] = frame_point(&head_rb, head_local[i].x, head_local[i].y,
                                              head_local[i].z);
    for (int i = 0; i < SYNTH_PROP_MARKERS; i++)
        m[SYNTH_PROP_FIRST + i] = frame_point(&prop, prop_local[i].x, prop_local[i].y,
                                              prop_local[i].z);

    km_synthetic_rigid_pose *rb = &w->rigid[2 * actor];
    rb[0].id = (uint32_t)(actor * 1000 + 900 + KM_SYNTHETIC_RIGID_HEAD);
    rb[0].actor = actor;
    rb[0].kind = KM_SYNTHETIC_RIGID_HEAD;
    snprintf(rb[0].name, sizeof rb[0].name, "HEAD");
    rb[0].pos_m = head_rb.origin;
    rb[0].rot = quat_of(head_rb.R);
    rb[1].id = (uint32_t)(actor * 1000 + 900 + KM_SYNTHETIC_RIGID_PROP);
    rb[1].actor = actor;
    rb[1].kind = KM_SYNTHETIC_RIGID_PROP;
    snprintf(rb[1].name, sizeof rb[1].name, "PROP");
    rb[1].pos_m = prop.origin;
    rb[1].rot = quat_of(prop.R);

    for (int i = 0; i < SYNTH_MARKERS_PER_ACTOR; i++) {
        km_synthetic_marker *out = &w->markers[w->marker_count++];
        out->id = (uint32_t)(actor * 1000 + i);
        memcpy(out->label, marker_labels[i], strlen(marker_labels[i]) + 1);
        out->pos_m = m[i];
    }

    /* Bounding sphere of the capsules (centred on the pelvis: everything is within ~1.2 m,
     * the prop included). */
    km_vec3 c = pelvis.origin;
    double r = 0;
    for (int i = first_capsule; i < w->capsule_count; i++) {
        const synth_capsule *cap = &w->capsules[i];
        double ra = km_vec3_dist(c, cap->a) + cap->radius_m;
        double rb2 = km_vec3_dist(c, cap->b) + cap->radius_m;
        if (ra > r)
            r = ra;
        if (rb2 > r)
            r = rb2;
    }
    w->bound_center[actor] = c;
    w->bound_radius_m[actor] = r;
}

void synth_actors_init(km_synthetic_scene *scene)
{
    int n = scene->cfg.actor_count;
    synth_rng rng = synth_rng_make(scene->cfg.seed, 0xac7042, 0, 0);
    for (int a = 0; a < n; a++) {
        synth_actor_params *p = &scene->actors[a];
        /* Everyone walks the same circle at the same speed, evenly spaced, so they never
         * run into each other; gait and looking differ per actor. */
        p->path_radius_m = 1.5;
        p->path_phase_rad = 2.0 * PI * a / n + 0.3;
        p->speed_mps = 1.0;
        p->stride_m = 1.25 + 0.1 * synth_rng_uniform(&rng);
        p->gait_phase_rad = 2.0 * PI * synth_rng_uniform(&rng);
        p->look_phase_rad = 2.0 * PI * synth_rng_uniform(&rng);
        p->prop_phase_rad = 2.0 * PI * synth_rng_uniform(&rng);
        /* Actor 0 is the reference 1.75 m person; the others within +-4 %. */
        p->scale = a == 0 ? 1.0 : 0.96 + 0.08 * synth_rng_uniform(&rng);
    }
}

void synth_world_eval(const km_synthetic_scene *scene, uint64_t time_ns, synth_world *world)
{
    if (scene->cfg.scene == KM_SYNTHETIC_SCENE_WAND) {
        synth_wand_world_eval(scene, time_ns, world);
        return;
    }
    double t = (double)time_ns * 1e-9;
    world->actor_count = scene->cfg.actor_count;
    world->marker_count = 0;
    world->capsule_count = 0;
    for (int a = 0; a < scene->cfg.actor_count; a++)
        eval_actor(scene, a, t, world);
}

int km_synthetic_scene_markers(const km_synthetic_scene *scene, uint64_t time_ns,
                               km_synthetic_marker *out, int capacity)
{
    if (!scene || !out || capacity <= 0)
        return 0;
    synth_world w;
    synth_world_eval(scene, time_ns, &w);
    int n = w.marker_count < capacity ? w.marker_count : capacity;
    memcpy(out, w.markers, (size_t)n * sizeof *out);
    return n;
}

int km_synthetic_scene_rigid_poses(const km_synthetic_scene *scene, uint64_t time_ns,
                                   km_synthetic_rigid_pose *out, int capacity)
{
    if (!scene || !out || capacity <= 0)
        return 0;
    synth_world w;
    synth_world_eval(scene, time_ns, &w);
    int total = 2 * w.actor_count;
    int n = total < capacity ? total : capacity;
    memcpy(out, w.rigid, (size_t)n * sizeof *out);
    return n;
}

int km_synthetic_rigid_definition(km_synthetic_rigid_kind kind, km_synthetic_marker *out,
                                  int capacity)
{
    const km_vec3 *local;
    int count, first;
    if (kind == KM_SYNTHETIC_RIGID_HEAD) {
        local = head_local;
        count = SYNTH_HEAD_MARKERS;
        first = SYNTH_HEAD_FIRST;
    } else if (kind == KM_SYNTHETIC_RIGID_PROP) {
        local = prop_local;
        count = SYNTH_PROP_MARKERS;
        first = SYNTH_PROP_FIRST;
    } else {
        return 0;
    }
    if (!out || capacity <= 0)
        return 0;
    int n = count < capacity ? count : capacity;
    for (int i = 0; i < n; i++) {
        out[i].id = (uint32_t)(first + i);
        memcpy(out[i].label, marker_labels[first + i], strlen(marker_labels[first + i]) + 1);
        out[i].pos_m = local[i];
    }
    return n;
}
