/* Rendering of the synthetic scene into 8-bit IR-style images, and the matching ground truth
 * (visibility, 2D observations).
 *
 * An IR mocap image is dark with bright round retro-reflective markers. We draw:
 * - the background: mean SYNTH_BACKGROUND_MEAN grey levels plus sensor noise;
 * - each visible marker as an anti-aliased disk of peak SYNTH_MARKER_PEAK whose radius is
 *   the marker diameter projected with fx / Z (at least 1.5 px), centred on the DISTORTED
 *   projection of the marker centre;
 * - a Poisson number of spurious small blobs (reflections) per camera frame.
 * Visibility (km_synthetic_scene_visible) is exactly the test the renderer uses: in front of
 * the camera, disk inside the image, and (cfg.occlusion) the line of sight from the camera
 * centre to the marker centre does not pass through a body capsule of any actor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic.h"

#define MIN_RADIUS_PX 1.5
/* Column samples per boundary pixel in the disk coverage integral (exact in y). */
#define COVERAGE_SAMPLES 24

/* ------------------------------------------------------------ noise texture */

/* Drawing fresh Gaussian noise for 1.3 million pixels costs far more than the rest of a
 * frame (tens of ms), so each camera gets a texture of noise drawn once at scene creation,
 * SYNTH_NOISE_PAD pixels larger than a frame in both directions, and every frame copies its
 * rows from a pseudo-random (seed, camera, frame) offset into it: a memcpy per row. The
 * noise then still changes from frame to frame (129 x 129 different windows), has the
 * right per-pixel statistics, and costs about as much as one pass over the image. The
 * samples are Irwin–Hall (sum of four uniforms, rescaled): Gaussian to the eye and to any
 * detector, tails cut at 3.5 sigma. To bound memory with many large cameras, at most
 * ~64 MB of textures are made and cameras share them modulo their count. */
km_status synth_noise_init(km_synthetic_scene *scene)
{
    const km_synthetic_config *cfg = &scene->cfg;
    scene->noise_width = cfg->width + SYNTH_NOISE_PAD;
    scene->noise_height = cfg->height + SYNTH_NOISE_PAD;
    size_t bytes = (size_t)scene->noise_width * (size_t)scene->noise_height;
    size_t budget = (size_t)64 << 20;
    int count = cfg->camera_count;
    while (count > 1 && (size_t)count * bytes > budget)
        count--;
    scene->noise_texture_count = count;
    scene->noise = malloc((size_t)count * bytes);
    if (!scene->noise)
        return km_error(KM_ERR_NO_MEMORY, "synthetic: no memory for %d noise textures of %zu bytes",
                        count, bytes);
    const double sqrt3 = 1.7320508075688772;
    for (int c = 0; c < count; c++) {
        synth_rng rng = synth_rng_make(cfg->seed, 0x4015e, (uint64_t)c, 0);
        uint8_t *tex = scene->noise + (size_t)c * bytes;
        for (size_t i = 0; i < bytes; i++) {
            uint64_t r = synth_rng_next(&rng);
            double sum = (double)(r & 0xffff) + (double)((r >> 16) & 0xffff) +
                         (double)((r >> 32) & 0xffff) + (double)(r >> 48);
            double n = (sum / 65536.0 - 2.0) * sqrt3; /* mean 0, variance 1 */
            double v = SYNTH_BACKGROUND_MEAN + cfg->image_noise * n;
            long q = lround(v);
            tex[i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
        }
    }
    return KM_OK;
}

/* ------------------------------------------------------------ geometry */

/* Squared distance between segments p1-q1 and p2-q2 (Ericson, Real-Time Collision
 * Detection, 5.1.9). */
static double segment_segment_dist2(km_vec3 p1, km_vec3 q1, km_vec3 p2, km_vec3 q2)
{
    km_vec3 d1 = km_vec3_sub(q1, p1), d2 = km_vec3_sub(q2, p2), r = km_vec3_sub(p1, p2);
    double a = km_vec3_dot(d1, d1), e = km_vec3_dot(d2, d2), f = km_vec3_dot(d2, r);
    double s, t;
    const double eps = 1e-12;
    if (a <= eps && e <= eps) {
        s = t = 0.0;
    } else if (a <= eps) {
        s = 0.0;
        t = fmin(fmax(f / e, 0.0), 1.0);
    } else {
        double c = km_vec3_dot(d1, r);
        if (e <= eps) {
            t = 0.0;
            s = fmin(fmax(-c / a, 0.0), 1.0);
        } else {
            double b = km_vec3_dot(d1, d2);
            double denom = a * e - b * b;
            s = denom > eps ? fmin(fmax((b * f - c * e) / denom, 0.0), 1.0) : 0.0;
            t = (b * s + f) / e;
            if (t < 0.0) {
                t = 0.0;
                s = fmin(fmax(-c / a, 0.0), 1.0);
            } else if (t > 1.0) {
                t = 1.0;
                s = fmin(fmax((b - c) / a, 0.0), 1.0);
            }
        }
    }
    km_vec3 c1 = km_vec3_add(p1, km_vec3_scale(d1, s));
    km_vec3 c2 = km_vec3_add(p2, km_vec3_scale(d2, t));
    km_vec3 d = km_vec3_sub(c1, c2);
    return km_vec3_dot(d, d);
}

/* Squared distance from point c to segment p-q. */
static double point_segment_dist2(km_vec3 c, km_vec3 p, km_vec3 q)
{
    km_vec3 d = km_vec3_sub(q, p), w = km_vec3_sub(c, p);
    double dd = km_vec3_dot(d, d);
    double s = dd > 0 ? fmin(fmax(km_vec3_dot(w, d) / dd, 0.0), 1.0) : 0.0;
    km_vec3 e = km_vec3_sub(w, km_vec3_scale(d, s));
    return km_vec3_dot(e, e);
}

/* Does the line of sight eye -> marker pass through a body capsule? */
static bool occluded(const synth_world *w, km_vec3 eye, km_vec3 marker)
{
    for (int a = 0; a < w->actor_count; a++) {
        double br = w->bound_radius_m[a];
        if (point_segment_dist2(w->bound_center[a], eye, marker) > br * br)
            continue;
        const synth_capsule *caps = &w->capsules[a * SYNTH_CAPSULES_PER_ACTOR];
        for (int i = 0; i < SYNTH_CAPSULES_PER_ACTOR; i++) {
            double r = caps[i].radius_m;
            if (segment_segment_dist2(eye, marker, caps[i].a, caps[i].b) < r * r)
                return true;
        }
    }
    return false;
}

/* Distorted projection and disk radius of a world point; false when behind the camera or
 * outside the range where the lens model is valid. */
static bool project(const km_synthetic_scene *scene, int camera, km_vec3 pos_m, double *u,
                    double *v, double *radius_px)
{
    const km_camera *cam = &scene->rig.cameras[camera];
    km_vec3 pc = km_camera_to_camera_frame(cam, pos_m);
    if (pc.z < 0.05)
        return false;
    double x = pc.x / pc.z, y = pc.y / pc.z;
    if (x * x + y * y > scene->max_norm_r2[camera])
        return false;
    double xd, yd;
    km_camera_distort_normalized(cam, x, y, &xd, &yd);
    *u = cam->K[0] * xd + cam->K[1] * yd + cam->K[2];
    *v = cam->K[4] * yd + cam->K[5];
    double r = cam->K[0] * 0.5 * scene->cfg.marker_diameter_m / pc.z;
    *radius_px = r < MIN_RADIUS_PX ? MIN_RADIUS_PX : r;
    return true;
}

static bool disk_inside(const km_synthetic_scene *scene, double u, double v, double r)
{
    return u - r >= 0.0 && v - r >= 0.0 && u + r <= scene->cfg.width - 1.0 &&
           v + r <= scene->cfg.height - 1.0;
}

/* The one visibility test of renderer, visible() and observe(). */
static bool marker_seen(const km_synthetic_scene *scene, const synth_world *w, int camera,
                        km_vec3 pos_m, double *u, double *v, double *radius_px)
{
    if (!project(scene, camera, pos_m, u, v, radius_px))
        return false;
    if (!disk_inside(scene, *u, *v, *radius_px))
        return false;
    if (scene->cfg.occlusion && occluded(w, scene->camera_center[camera], pos_m))
        return false;
    return true;
}

bool km_synthetic_scene_visible(const km_synthetic_scene *scene, int camera,
                                const km_synthetic_marker *marker, uint64_t time_ns)
{
    if (!scene || !marker || camera < 0 || camera >= scene->cfg.camera_count)
        return false;
    double u, v, r;
    if (!project(scene, camera, marker->pos_m, &u, &v, &r) || !disk_inside(scene, u, v, r))
        return false;
    if (!scene->cfg.occlusion)
        return true;
    synth_world w;
    synth_world_eval(scene, time_ns, &w);
    return !occluded(&w, scene->camera_center[camera], marker->pos_m);
}

double km_synthetic_scene_marker_radius_px(const km_synthetic_scene *scene, int camera,
                                           km_vec3 pos_m)
{
    if (!scene || camera < 0 || camera >= scene->cfg.camera_count)
        return 0.0;
    const km_camera *cam = &scene->rig.cameras[camera];
    km_vec3 pc = km_camera_to_camera_frame(cam, pos_m);
    if (pc.z < 0.05)
        return 0.0;
    double r = cam->K[0] * 0.5 * scene->cfg.marker_diameter_m / pc.z;
    return r < MIN_RADIUS_PX ? MIN_RADIUS_PX : r;
}

/* ------------------------------------------------------------ reflections */

/* Poisson(reflection_rate) blobs at uniform places, from (seed, camera, frame) only, so the
 * renderer and observe() agree. */
static int reflections(const km_synthetic_scene *scene, int camera, uint64_t frame_index,
                       synth_reflection *out)
{
    double rate = scene->cfg.reflection_rate;
    if (rate <= 0.0)
        return 0;
    synth_rng rng = synth_rng_make(scene->cfg.seed, 0x4ef1ec7, (uint64_t)camera, frame_index);
    /* Knuth's multiplication method (rate is at most 20). */
    double limit = exp(-rate), p = 1.0;
    int n = -1;
    do {
        n++;
        p *= synth_rng_uniform(&rng);
    } while (p > limit && n < SYNTH_MAX_REFLECTIONS);
    for (int i = 0; i < n; i++) {
        synth_reflection *r = &out[i];
        r->radius_px = 1.0 + 2.0 * synth_rng_uniform(&rng);
        double margin = r->radius_px + 1.0;
        r->u = margin + (scene->cfg.width - 1 - 2 * margin) * synth_rng_uniform(&rng);
        r->v = margin + (scene->cfg.height - 1 - 2 * margin) * synth_rng_uniform(&rng);
        r->peak = 120.0 + 130.0 * synth_rng_uniform(&rng);
    }
    return n;
}

/* ------------------------------------------------------------ drawing */

/* Fraction of pixel (dx, dy) (pixel centre relative to the disk centre, the pixel spanning
 * +-0.5) covered by the disk of radius r: exact along y, midpoint rule along x. */
static double coverage(double dx, double dy, double r)
{
    double r2 = r * r, sum = 0.0;
    for (int k = 0; k < COVERAGE_SAMPLES; k++) {
        double xs = dx - 0.5 + (k + 0.5) / COVERAGE_SAMPLES;
        double h2 = r2 - xs * xs;
        if (h2 <= 0.0)
            continue;
        double h = sqrt(h2);
        double lo = fmax(dy - 0.5, -h), hi = fmin(dy + 0.5, h);
        if (hi > lo)
            sum += hi - lo;
    }
    return sum / COVERAGE_SAMPLES;
}

/* Add an anti-aliased disk. Pixel (x, y) covers [x-0.5, x+0.5] x [y-0.5, y+0.5] (pixel
 * centres at integers, formats.md). Pixels wholly inside get the full peak, wholly outside
 * nothing, and only the boundary ring pays for the coverage integral. The coverage is
 * exact up to the 24-sample midpoint rule along x (error < 0.003 px on the centroid), so the
 * intensity-weighted centroid over pixel centres equals the projected centre up to the
 * sampling ("pixel-locking") bias of any centroid of a small disk: <= 0.02 px at r = 1.5 px,
 * less for larger disks (measured in tests/capture/test_synthetic.c). A projected sphere
 * is really a slightly elliptical disk whose centroid differs from the projected centre by
 * about r^2 * tan(angle off axis) / f: below 0.005 px for these 1.5–3 px markers, negligible
 * against the 0.05 px the detector aims at. */
static void draw_disk(uint8_t *image, int stride, int width, int height, double cu, double cv,
                      double r, double peak)
{
    int x0 = (int)floor(cu - r + 0.5), x1 = (int)floor(cu + r + 0.5);
    int y0 = (int)floor(cv - r + 0.5), y1 = (int)floor(cv + r + 0.5);
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > width - 1)
        x1 = width - 1;
    if (y1 > height - 1)
        y1 = height - 1;
    double r2 = r * r;
    for (int y = y0; y <= y1; y++) {
        uint8_t *row = image + (size_t)y * (size_t)stride;
        double dy = y - cv, ay = fabs(dy);
        double ny = ay > 0.5 ? ay - 0.5 : 0.0, fy = ay + 0.5;
        for (int x = x0; x <= x1; x++) {
            double dx = x - cu, ax = fabs(dx);
            double nx = ax > 0.5 ? ax - 0.5 : 0.0, fx = ax + 0.5;
            double cov;
            if (nx * nx + ny * ny >= r2)
                continue;
            if (fx * fx + fy * fy <= r2)
                cov = 1.0;
            else
                cov = coverage(dx, dy, r);
            double value = row[x] + peak * cov;
            row[x] = (uint8_t)(value >= 255.0 ? 255 : (int)(value + 0.5));
        }
    }
}

km_status km_synthetic_scene_render(const km_synthetic_scene *scene, int camera,
                                    uint64_t frame_index, uint8_t *image, int stride)
{
    if (!scene || !image)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic render: NULL scene or image");
    const km_synthetic_config *cfg = &scene->cfg;
    if (camera < 0 || camera >= cfg->camera_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic render: camera %d not in [0, %d)",
                        camera, cfg->camera_count);
    if (stride < cfg->width)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic render: stride %d < width %d",
                        stride, cfg->width);

    /* Background: a window of this camera's noise texture (see synth_noise_init). */
    synth_rng rng = synth_rng_make(cfg->seed, 0xbac6, (uint64_t)camera, frame_index);
    int ox = (int)(synth_rng_next(&rng) % (SYNTH_NOISE_PAD + 1));
    int oy = (int)(synth_rng_next(&rng) % (SYNTH_NOISE_PAD + 1));
    const uint8_t *tex = scene->noise + (size_t)(camera % scene->noise_texture_count) *
                                            (size_t)scene->noise_width *
                                            (size_t)scene->noise_height;
    for (int y = 0; y < cfg->height; y++)
        memcpy(image + (size_t)y * (size_t)stride,
               tex + (size_t)(y + oy) * (size_t)scene->noise_width + (size_t)ox,
               (size_t)cfg->width);

    /* The world is ~25 KB per actor: on the stack, no allocation per frame. */
    synth_world w;
    synth_world_eval(scene, km_synthetic_scene_frame_time(scene, frame_index), &w);
    for (int i = 0; i < w.marker_count; i++) {
        double u, v, r;
        if (marker_seen(scene, &w, camera, w.markers[i].pos_m, &u, &v, &r))
            draw_disk(image, stride, cfg->width, cfg->height, u, v, r, SYNTH_MARKER_PEAK);
    }
    synth_reflection refl[SYNTH_MAX_REFLECTIONS];
    int n = reflections(scene, camera, frame_index, refl);
    for (int i = 0; i < n; i++)
        draw_disk(image, stride, cfg->width, cfg->height, refl[i].u, refl[i].v,
                  refl[i].radius_px, refl[i].peak);
    return KM_OK;
}

/* Standard normal by Box–Muller. */
static double gaussian(synth_rng *rng)
{
    double u1 = synth_rng_uniform(rng), u2 = synth_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int km_synthetic_scene_observe(const km_synthetic_scene *scene, int camera,
                               uint64_t frame_index, double noise_px, uint64_t seed,
                               km_synthetic_observation *out, int capacity)
{
    if (!scene || !out || capacity <= 0 || camera < 0 || camera >= scene->cfg.camera_count ||
        !(noise_px >= 0.0))
        return 0;
    synth_world w;
    synth_world_eval(scene, km_synthetic_scene_frame_time(scene, frame_index), &w);
    synth_rng rng = synth_rng_make(seed, 0x0b5e, (uint64_t)camera, frame_index);
    int n = 0;
    for (int i = 0; i < w.marker_count && n < capacity; i++) {
        double u, v, r;
        if (!marker_seen(scene, &w, camera, w.markers[i].pos_m, &u, &v, &r))
            continue;
        out[n].x = u + noise_px * gaussian(&rng);
        out[n].y = v + noise_px * gaussian(&rng);
        out[n].marker_id = w.markers[i].id;
        n++;
    }
    synth_reflection refl[SYNTH_MAX_REFLECTIONS];
    int nr = reflections(scene, camera, frame_index, refl);
    for (int i = 0; i < nr && n < capacity; i++) {
        out[n].x = refl[i].u + noise_px * gaussian(&rng);
        out[n].y = refl[i].v + noise_px * gaussian(&rng);
        out[n].marker_id = KM_SYNTHETIC_REFLECTION_ID;
        n++;
    }
    return n;
}
