/* The virtual camera rig of the synthetic scene: N cameras evenly spaced on a ring around the
 * volume, alternately mounted low and high (so the rig is not planar and heights can be
 * triangulated well), all aimed at the volume centre (0, 1, 0). Each camera then gets its
 * own, slightly different intrinsics and a realistic Brown–Conrady lens distortion (barrel,
 * k1 < 0), scaled by cfg.distortion and varied per camera from the seed. The rig is the
 * exact calibration of the rendered images. */
#include <math.h>
#include <stdio.h>

#include "synthetic.h"

#define PI 3.14159265358979323846

/* The ring: far enough that the whole walking circle (radius 1.5 m, plus arms and prop)
 * stays inside every image, down to the feet on the near side. */
#define RING_RADIUS_M 4.8
#define LOW_HEIGHT_M 2.2
#define HIGH_HEIGHT_M 2.8
#define HFOV_RAD (60.0 * PI / 180.0)

/* Largest normalised radius up to which r * (1 + k1 r^2 + k2 r^4 + k3 r^6) still grows,
 * searched up to `limit` (the model is only meaningful there). */
static double monotonic_radius(const double dist[5], double limit)
{
    const double step = 1e-3;
    double prev = 0.0;
    for (double r = step; r <= limit; r += step) {
        double r2 = r * r;
        double rd = r * (1.0 + dist[0] * r2 + dist[1] * r2 * r2 + dist[4] * r2 * r2 * r2);
        if (rd <= prev)
            return r - step;
        prev = rd;
    }
    return limit;
}

void synth_rig_build(km_synthetic_scene *scene)
{
    const km_synthetic_config *cfg = &scene->cfg;
    km_rig *rig = &scene->rig;
    synth_rng rng = synth_rng_make(cfg->seed, 0x819, 0, 0);
    snprintf(rig->name, sizeof rig->name, "synthetic");
    rig->camera_count = cfg->camera_count;
    for (int i = 0; i < cfg->camera_count; i++) {
        km_camera *cam = &rig->cameras[i];
        double angle = 2.0 * PI * i / cfg->camera_count;
        double height = (i % 2 == 0) ? LOW_HEIGHT_M : HIGH_HEIGHT_M;
        km_vec3 eye = {RING_RADIUS_M * cos(angle), height, RING_RADIUS_M * sin(angle)};
        char name[KM_NAME_MAX];
        snprintf(name, sizeof name, "synthetic%d", i);
        km_camera_look_at(cam, name, cfg->width, cfg->height, HFOV_RAD, eye,
                          km_vec3_make(0.0, 1.0, 0.0));

        /* Real lenses differ a little from their nominal focal length and their principal
         * point is a few pixels off centre (u = uniform in [-1, 1]). */
        double u1 = 2.0 * synth_rng_uniform(&rng) - 1.0;
        double u2 = 2.0 * synth_rng_uniform(&rng) - 1.0;
        double u3 = 2.0 * synth_rng_uniform(&rng) - 1.0;
        double u4 = 2.0 * synth_rng_uniform(&rng) - 1.0;
        double fx = cam->K[0] * (1.0 + 0.01 * u1);
        double fy = fx * (1.0 + 0.003 * u2);
        double pixel_scale = cfg->width / 1280.0;
        cam->K[0] = fx;
        cam->K[4] = fy;
        cam->K[2] += 6.0 * pixel_scale * u3;
        cam->K[5] += 6.0 * pixel_scale * u4;

        /* Barrel distortion of a wide-ish machine-vision lens. */
        double s = cfg->distortion;
        cam->dist[0] = -(0.12 + 0.08 * synth_rng_uniform(&rng)) * s;
        cam->dist[1] = (0.05 + 0.05 * synth_rng_uniform(&rng)) * s;
        cam->dist[2] = 0.0008 * (2.0 * synth_rng_uniform(&rng) - 1.0) * s;
        cam->dist[3] = 0.0008 * (2.0 * synth_rng_uniform(&rng) - 1.0) * s;
        cam->dist[4] = 0.02 * (2.0 * synth_rng_uniform(&rng) - 1.0) * s;

        /* Normalised radius of the image corner, with margin: beyond it nothing is seen. */
        double cx = cam->K[2], cy = cam->K[5];
        double corner_x = fmax(cx, cfg->width - 1 - cx) / fx;
        double corner_y = fmax(cy, cfg->height - 1 - cy) / fy;
        double corner = sqrt(corner_x * corner_x + corner_y * corner_y);
        double r_max = monotonic_radius(cam->dist, 2.0 * corner);
        scene->max_norm_r2[i] = r_max * r_max;
        scene->camera_center[i] = km_camera_center(cam);
    }
}
