/* A small self-contained test scene for reconstruction tests: a look_at ring of cameras,
 * a cloud of markers moving through the volume, projected with calib's camera model plus
 * Gaussian pixel noise, random occlusion and random reflection blobs. No dependency on the
 * capture stage, so the geometry tests do not wait on the renderer. Header-only (static
 * functions): include it in one test file. */
#ifndef KINEMA_TEST_FIXTURE_SCENE_H
#define KINEMA_TEST_FIXTURE_SCENE_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kinema/tracking.h"

#define FIX_MAX_MARKERS 512

typedef struct fix_scene {
    km_rig rig;
    int marker_count;
    km_vec3 offset[FIX_MAX_MARKERS]; /* marker position relative to the moving body centre */
    double noise_px;
    double occlusion;                /* probability that a marker is hidden from a camera */
    double reflection_rate;          /* mean spurious blobs per camera frame */
    uint64_t rng;
} fix_scene;

static inline double fix_uniform(fix_scene *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (double)(s->rng >> 11) / 9007199254740992.0;
}

static inline double fix_gaussian(fix_scene *s)
{
    double u1 = fix_uniform(s), u2 = fix_uniform(s);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* cameras on a ring of radius 5 m alternating 2.0 and 3.0 m high, looking at (0, 1, 0). */
static inline void fix_scene_init(fix_scene *s, int cameras, int markers, double noise_px,
                                  double occlusion, double reflection_rate, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s->rig.camera_count = cameras;
    snprintf(s->rig.name, sizeof s->rig.name, "fixture");
    for (int c = 0; c < cameras; c++) {
        const double a = 2.0 * M_PI * c / cameras;
        char name[16];
        snprintf(name, sizeof name, "cam%d", c);
        km_camera *cam = &s->rig.cameras[c];
        km_camera_look_at(cam, name, 1280, 1024, 75.0 * M_PI / 180.0,
                          km_vec3_make(5.0 * cos(a), c % 2 ? 3.0 : 2.0, 5.0 * sin(a)),
                          km_vec3_make(0, 1, 0));
        const double d[5] = {-0.1 - 0.01 * (c % 3), 0.05, 0.0005, -0.0003, 0.0};
        memcpy(cam->dist, d, sizeof d);
    }
    s->marker_count = markers;
    for (int m = 0; m < markers; m++)
        s->offset[m] = km_vec3_make(-0.3 + 0.6 * fix_uniform(s), 1.8 * fix_uniform(s),
                                    -0.2 + 0.4 * fix_uniform(s));
    s->noise_px = noise_px;
    s->occlusion = occlusion;
    s->reflection_rate = reflection_rate;
}

/* Ground truth of frame f: the body walks a circle of radius 1 m and turns with it. */
static inline void fix_scene_truth(const fix_scene *s, uint64_t f, km_vec3 *out)
{
    const double t = (double)f / 120.0, a = 0.5 * t;
    const double ca = cos(a), sa = sin(a);
    const km_vec3 centre = km_vec3_make(cos(a), 0.0, sin(a));
    for (int m = 0; m < s->marker_count; m++) {
        const km_vec3 o = s->offset[m];
        /* wobble so markers move relative to each other a little */
        const double w = 0.02 * sin(3.0 * t + m);
        out[m] = km_vec3_make(centre.x + ca * o.x - sa * o.z, centre.y + o.y + w,
                              centre.z + sa * o.x + ca * o.z);
    }
}

/* Observations of frame f (noise, occlusion, reflections); views[m] = cameras that see m. */
static inline void fix_scene_observe(fix_scene *s, uint64_t f, const km_vec3 *truth,
                                     km_observation_set *obs, int *views)
{
    obs->frame = f;
    obs->time_ns = f * 8333333u;
    obs->count = 0;
    for (int m = 0; m < s->marker_count; m++)
        views[m] = 0;
    for (int c = 0; c < s->rig.camera_count; c++) {
        const km_camera *cam = &s->rig.cameras[c];
        for (int m = 0; m < s->marker_count; m++) {
            double u, v;
            if (!km_camera_project(cam, truth[m], &u, &v))
                continue;
            const double hide = fix_uniform(s);
            u += s->noise_px * fix_gaussian(s);
            v += s->noise_px * fix_gaussian(s);
            if (u < 0 || v < 0 || u > cam->width - 1 || v > cam->height - 1 || hide < s->occlusion)
                continue;
            if (obs->count >= obs->capacity)
                return;
            obs->items[obs->count++] = (km_observation){.x = u, .y = v, .area_px = 20, .camera = c};
            views[m]++;
        }
        /* Reflections: Bernoulli trials approximating a Poisson count. */
        for (int r = 0; r < 4; r++) {
            if (fix_uniform(s) < s->reflection_rate / 4.0 && obs->count < obs->capacity)
                obs->items[obs->count++] = (km_observation){
                    .x = fix_uniform(s) * (cam->width - 1), .y = fix_uniform(s) * (cam->height - 1),
                    .area_px = 10, .camera = c};
        }
    }
}

/* Accuracy bookkeeping: match reconstructed markers to truth, nearest within 1 cm. */
typedef struct fix_score {
    long expected;    /* truth markers seen by >= 2 cameras */
    long found;       /* of those, matched */
    long ghosts;      /* reconstructed markers with no truth within 1 cm, or duplicates */
    long reconstructed;
    double sum_sq_m;  /* over matched */
    long matched;
    long frames;
} fix_score;

static inline void fix_score_frame(fix_score *sc, const km_vec3 *truth, const int *views,
                                   int truth_count, const km_marker_set *markers)
{
    int taken[FIX_MAX_MARKERS] = {0};
    sc->frames++;
    sc->reconstructed += markers->count;
    for (int k = 0; k < markers->count; k++) {
        int best = -1;
        double best_d = 0.01;
        for (int m = 0; m < truth_count; m++) {
            double d = km_vec3_dist(markers->items[k].pos_m, truth[m]);
            if (d < best_d) {
                best_d = d;
                best = m;
            }
        }
        if (best < 0 || taken[best]) {
            sc->ghosts++;
            continue;
        }
        taken[best] = 1;
        sc->sum_sq_m += best_d * best_d;
        sc->matched++;
    }
    for (int m = 0; m < truth_count; m++) {
        if (views[m] >= 2) {
            sc->expected++;
            if (taken[m])
                sc->found++;
        }
    }
}

#endif /* KINEMA_TEST_FIXTURE_SCENE_H */
