/* Private to capture/: the state of the synthetic scene shared by the actor, rig, render and
 * source files. The scene is immutable after km_synthetic_scene_create, so any thread may
 * read it; everything per frame lives on the caller's stack. */
#ifndef KINEMA_CAPTURE_SYNTHETIC_H
#define KINEMA_CAPTURE_SYNTHETIC_H

#include "kinema/capture.h"

/* 39 Plug-in-Gait body markers + HEAD1..4 + PROP1..5. */
#define SYNTH_BODY_MARKERS 39
#define SYNTH_HEAD_MARKERS 4
#define SYNTH_PROP_MARKERS 5
#define SYNTH_MARKERS_PER_ACTOR (SYNTH_BODY_MARKERS + SYNTH_HEAD_MARKERS + SYNTH_PROP_MARKERS)
#define SYNTH_HEAD_FIRST SYNTH_BODY_MARKERS
#define SYNTH_PROP_FIRST (SYNTH_BODY_MARKERS + SYNTH_HEAD_MARKERS)
#define SYNTH_MAX_ACTORS 8
#define SYNTH_CAPSULES_PER_ACTOR 13
#define SYNTH_MAX_REFLECTIONS 32
/* Markers are drawn this bright above the background (8-bit grey levels). */
#define SYNTH_MARKER_PEAK 235.0
#define SYNTH_BACKGROUND_MEAN 8.0
/* Extra rows/columns of the per-camera noise texture beyond one frame (see render). */
#define SYNTH_NOISE_PAD 128

/* A body part as an occluder: the points within radius_m of the segment a-b. */
typedef struct synth_capsule {
    km_vec3 a, b;
    double radius_m;
} synth_capsule;

/* Per-actor constants, drawn at scene creation from the seed. */
typedef struct synth_actor_params {
    double path_radius_m;   /* radius of the circle walked, centred on the world origin */
    double path_phase_rad;  /* angle on the circle at t = 0 */
    double speed_mps;       /* walking speed along the circle */
    double stride_m;        /* distance covered by one full gait cycle */
    double gait_phase_rad;  /* gait phase at t = 0 */
    double look_phase_rad;  /* phase of the head's looking around */
    double prop_phase_rad;  /* phase of the wrist's rotation of the prop */
    double scale;           /* body size relative to a 1.75 m person */
} synth_actor_params;

/* Everything of one instant of the scene: markers, occluders and the rigid poses. */
typedef struct synth_world {
    int actor_count;
    int marker_count;
    km_synthetic_marker markers[SYNTH_MAX_ACTORS * SYNTH_MARKERS_PER_ACTOR];
    int capsule_count;
    synth_capsule capsules[SYNTH_MAX_ACTORS * SYNTH_CAPSULES_PER_ACTOR];
    /* Bounding sphere of each actor's capsules, to skip far actors in occlusion tests. */
    km_vec3 bound_center[SYNTH_MAX_ACTORS];
    double bound_radius_m[SYNTH_MAX_ACTORS];
    km_synthetic_rigid_pose rigid[SYNTH_MAX_ACTORS * 2];
} synth_world;

/* A spurious bright blob (a reflection off a shiny surface) in one camera frame. */
typedef struct synth_reflection {
    double u, v, radius_px, peak;
} synth_reflection;

/* The wand wave's path (synthetic_wand.c): cycles per take and phases of the centre and
 * direction curves, drawn from the seed. Shared by km_synthetic_wand (batch) and the wand
 * scene (rendered), so both wave the same way. */
typedef struct synth_wand_path {
    double pos_cycles[3][2], pos_phase[3][2], pos_weight[3][2];
    double azimuth_cycles, azimuth_wobble_cycles, azimuth_phase, azimuth_wobble_phase;
    double elevation_cycles, elevation_phase;
} synth_wand_path;

/* Wand scene: marker positions along the wand, L-frame marker height (km_lframe_default). */
#define SYNTH_WAND_MARKERS 3
#define SYNTH_LFRAME_MARKERS 4
#define SYNTH_LFRAME_HEIGHT_M 0.007

struct km_synthetic_scene {
    km_synthetic_config cfg;
    synth_wand_path wand_path; /* wand scene only */
    km_rig rig;
    synth_actor_params actors[SYNTH_MAX_ACTORS];
    /* Largest squared normalised radius where the lens model is still monotonic (beyond
     * it the polynomial folds far-away points back into the image). */
    double max_norm_r2[KM_MAX_CAMERAS];
    km_vec3 camera_center[KM_MAX_CAMERAS];
    /* Noise textures: noise_texture_count of them, cameras share them modulo the count. */
    uint8_t *noise;
    int noise_width, noise_height;
    int noise_texture_count;
};

/* ----------------------------------------------------------- random numbers */

/* splitmix64: a stateless mixer (hash of seed, camera, frame) and a tiny stream. */
static inline uint64_t synth_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

typedef struct synth_rng {
    uint64_t state;
} synth_rng;

static inline synth_rng synth_rng_make(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    synth_rng r;
    r.state = synth_mix64(a ^ synth_mix64(b ^ synth_mix64(c ^ synth_mix64(d))));
    return r;
}

static inline uint64_t synth_rng_next(synth_rng *r)
{
    r->state += 0x9e3779b97f4a7c15ull;
    uint64_t z = r->state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double synth_rng_uniform(synth_rng *r)
{
    return (double)(synth_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------ shared helpers */

/* synthetic_rig.c: place the cameras of the ring (fills scene->rig, camera_center,
 * max_norm_r2). */
void synth_rig_build(km_synthetic_scene *scene);

/* synthetic_actor.c: per-actor constants from the seed, and the scene at scene time t. */
void synth_actors_init(km_synthetic_scene *scene);
void synth_world_eval(const km_synthetic_scene *scene, uint64_t time_ns, synth_world *world);

/* synthetic_wand.c: the wand's path at u in [0, 1) of the take (markers at marker_m along
 * the wand, centred), the L-frame's markers, and the world of the wand scene at time t. */
void synth_wand_path_init(synth_wand_path *path, uint64_t seed);
void synth_wand_path_eval(const synth_wand_path *path, double u, const double marker_m[3],
                          bool collinear, km_vec3 out[3]);
void synth_lframe_eval(double height_m, km_vec3 out[4]);
void synth_wand_world_eval(const km_synthetic_scene *scene, uint64_t time_ns,
                           synth_world *world);

/* synthetic_render.c: noise textures (allocated here, freed by the scene). */
km_status synth_noise_init(km_synthetic_scene *scene);

#endif /* KINEMA_CAPTURE_SYNTHETIC_H */
