/* Synthetic wand wave and L-frame: the 2D observations an operator's calibration take would
 * give on the synthetic ring rig (see capture.h, "synthetic wand wave"). Pure functions of
 * (seed, frame, camera); nothing is rendered, blobs are projected marker centres with noise,
 * merges, dropouts and ghosts, so a calibration test runs in well under a second per
 * thousand frames. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic.h"

#define PI 3.14159265358979323846
#define MAX_GHOSTS_PER_VIEW 16
#define MIN_RADIUS_PX 1.5

struct km_synthetic_wand {
    km_synthetic_wand_config cfg;
    km_rig rig;
    double max_norm_r2[KM_MAX_CAMERAS];
    synth_wand_path path;
};

void synth_wand_path_init(synth_wand_path *p, uint64_t seed)
{
    synth_rng rng = synth_rng_make(seed, 0x3a7d, 0, 0);
    for (int a = 0; a < 3; a++)
        for (int k = 0; k < 2; k++) {
            /* Incommensurate cycle counts: the path does not retrace itself. */
            p->pos_cycles[a][k] = (k == 0 ? 2.0 : 5.0) + 3.0 * synth_rng_uniform(&rng);
            p->pos_phase[a][k] = 2.0 * PI * synth_rng_uniform(&rng);
            p->pos_weight[a][k] = k == 0 ? 0.7 : 0.3;
        }
    p->azimuth_cycles = 3.0 + 2.0 * synth_rng_uniform(&rng);
    p->azimuth_wobble_cycles = 7.0 + 4.0 * synth_rng_uniform(&rng);
    p->azimuth_phase = 2.0 * PI * synth_rng_uniform(&rng);
    p->azimuth_wobble_phase = 2.0 * PI * synth_rng_uniform(&rng);
    p->elevation_cycles = 6.0 + 5.0 * synth_rng_uniform(&rng);
    p->elevation_phase = 2.0 * PI * synth_rng_uniform(&rng);
}

void synth_wand_path_eval(const synth_wand_path *p, double u, const double marker_m[3],
                          bool collinear, km_vec3 out[3])
{
    const double *m = marker_m;
    const double mid = 0.5 * (m[0] + m[2]);
    km_vec3 centre, dir;
    if (collinear) {
        /* Degenerate wave: the wand slides along its own axis, all markers on one line. */
        dir = km_vec3_normalize(km_vec3_make(1.0, 0.3, 0.5));
        double s = 1.2 * sin(2.0 * PI * 3.0 * u + p->pos_phase[0][0]);
        centre = km_vec3_add(km_vec3_make(0.0, 1.2, 0.0), km_vec3_scale(dir, s));
    } else {
        double c[3];
        for (int a = 0; a < 3; a++) {
            c[a] = 0.0;
            for (int k = 0; k < 2; k++)
                c[a] += p->pos_weight[a][k] *
                        sin(2.0 * PI * p->pos_cycles[a][k] * u + p->pos_phase[a][k]);
        }
        centre = km_vec3_make(1.3 * c[0], 1.15 + 0.9 * c[1], 1.3 * c[2]);
        double azimuth = 2.0 * PI * p->azimuth_cycles * u + p->azimuth_phase +
                         0.8 * sin(2.0 * PI * p->azimuth_wobble_cycles * u +
                                   p->azimuth_wobble_phase);
        double elevation = (55.0 * PI / 180.0) *
                           sin(2.0 * PI * p->elevation_cycles * u + p->elevation_phase);
        dir = km_vec3_make(cos(elevation) * cos(azimuth), sin(elevation),
                           cos(elevation) * sin(azimuth));
    }
    for (int k = 0; k < 3; k++)
        out[k] = km_vec3_add(centre, km_vec3_scale(dir, m[k] - mid));
}

void synth_lframe_eval(double height_m, km_vec3 out[4])
{
    const double h = height_m;
    out[0] = km_vec3_make(0.0, h, 0.0);
    out[1] = km_vec3_make(0.3, h, 0.0);
    out[2] = km_vec3_make(0.5, h, 0.0);
    out[3] = km_vec3_make(0.0, h, 0.2);
}

km_synthetic_wand_config km_synthetic_wand_config_default(void)
{
    km_synthetic_wand_config c;
    memset(&c, 0, sizeof c);
    c.camera_count = 8;
    c.width = 1280;
    c.height = 1024;
    c.rate_hz = 120.0;
    c.seed = 1;
    c.frame_count = 1500;
    c.wand_marker_m[0] = 0.0;
    c.wand_marker_m[1] = 0.15;
    c.wand_marker_m[2] = 0.5;
    c.noise_px = 0.15;
    c.ghost_rate = 0.3;
    c.dropout_rate = 0.02;
    c.distortion = 1.0;
    c.marker_diameter_m = 0.014;
    c.ground_frame_count = 2400;
    c.lframe_height_m = 0.007;
    c.collinear_motion = false;
    return c;
}

static km_status check_config(const km_synthetic_wand_config *c)
{
    if (c->camera_count < 2 || c->camera_count > KM_MAX_CAMERAS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic wand: camera_count %d not in [2, %d]",
                        c->camera_count, KM_MAX_CAMERAS);
    if (c->frame_count < 1 || c->frame_count > 10000000)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic wand: frame_count %d not in [1, 1e7]",
                        c->frame_count);
    if (c->ground_frame_count < 0 || c->ground_frame_count > 1000000)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "synthetic wand: ground_frame_count %d not in [0, 1e6]",
                        c->ground_frame_count);
    if (!(c->wand_marker_m[0] < c->wand_marker_m[1] && c->wand_marker_m[1] < c->wand_marker_m[2]) ||
        !(c->wand_marker_m[2] - c->wand_marker_m[0] <= 3.0))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "synthetic wand: wand markers must increase and span at most 3 m");
    if (!(c->noise_px >= 0.0 && c->noise_px <= 10.0) ||
        !(c->ghost_rate >= 0.0 && c->ghost_rate <= 10.0) ||
        !(c->dropout_rate >= 0.0 && c->dropout_rate < 1.0) ||
        !(c->distortion >= 0.0 && c->distortion <= 2.0) ||
        !(c->marker_diameter_m > 0.0 && c->marker_diameter_m <= 0.05) ||
        !(c->lframe_height_m >= 0.0 && c->lframe_height_m <= 0.1) ||
        !(c->rate_hz >= 1.0 && c->rate_hz <= 1000.0))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "synthetic wand: noise_px [0,10], ghost_rate [0,10], dropout_rate [0,1), "
                        "distortion [0,2], marker_diameter_m (0,0.05], lframe_height_m [0,0.1], "
                        "rate_hz [1,1000]");
    return KM_OK;
}

km_synthetic_wand *km_synthetic_wand_create(const km_synthetic_wand_config *cfg, km_status *err)
{
    km_status st = cfg ? check_config(cfg)
                       : km_error(KM_ERR_INVALID_ARGUMENT, "synthetic wand: NULL config");
    if (st != KM_OK) {
        if (err)
            *err = st;
        return NULL;
    }
    /* The rig is the synthetic scene's, so the wand calibration solves the same cameras the
     * rest of the pipeline's tests use. */
    km_synthetic_config scfg = km_synthetic_config_default();
    scfg.camera_count = cfg->camera_count;
    scfg.width = cfg->width;
    scfg.height = cfg->height;
    scfg.rate_hz = cfg->rate_hz;
    scfg.seed = cfg->seed;
    scfg.distortion = cfg->distortion;
    scfg.marker_diameter_m = cfg->marker_diameter_m;
    km_synthetic_scene *scene = km_synthetic_scene_create(&scfg, &st);
    if (scene == NULL) {
        if (err)
            *err = st;
        return NULL;
    }
    km_synthetic_wand *w = calloc(1, sizeof *w);
    if (w == NULL) {
        km_synthetic_scene_destroy(scene);
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "synthetic wand: out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    w->rig = scene->rig;
    memcpy(w->max_norm_r2, scene->max_norm_r2, sizeof w->max_norm_r2);
    km_synthetic_scene_destroy(scene);

    synth_wand_path_init(&w->path, cfg->seed);
    if (err)
        *err = KM_OK;
    return w;
}

void km_synthetic_wand_destroy(km_synthetic_wand *wand)
{
    free(wand);
}

const km_synthetic_wand_config *km_synthetic_wand_get_config(const km_synthetic_wand *wand)
{
    return &wand->cfg;
}

const km_rig *km_synthetic_wand_rig(const km_synthetic_wand *wand)
{
    return &wand->rig;
}

void km_synthetic_wand_markers(const km_synthetic_wand *w, int frame, km_vec3 out[3])
{
    const double u = (double)frame / (double)w->cfg.frame_count;
    synth_wand_path_eval(&w->path, u, w->cfg.wand_marker_m, w->cfg.collinear_motion, out);
}

void km_synthetic_lframe_markers(const km_synthetic_wand *w, km_vec3 out[4])
{
    synth_lframe_eval(w->cfg.lframe_height_m, out);
}

static double gaussian(synth_rng *rng)
{
    double u1 = synth_rng_uniform(rng), u2 = synth_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

static int poisson(synth_rng *rng, double mean)
{
    double limit = exp(-mean), p = 1.0;
    int k = 0;
    while (k < MAX_GHOSTS_PER_VIEW) {
        p *= synth_rng_uniform(rng);
        if (p <= limit)
            break;
        k++;
    }
    return k;
}

/* Blobs of one camera seeing `count` markers; appended to out. */
static int observe_view(const km_synthetic_wand *w, int camera, const km_vec3 *markers,
                        int count, synth_rng *rng, km_synthetic_blob *out, int capacity)
{
    const km_camera *cam = &w->rig.cameras[camera];
    double u[4], v[4], r[4];
    bool seen[4];
    for (int k = 0; k < count; k++) {
        seen[k] = false;
        km_vec3 pc = km_camera_to_camera_frame(cam, markers[k]);
        if (pc.z < 0.1)
            continue;
        double xn = pc.x / pc.z, yn = pc.y / pc.z;
        if (xn * xn + yn * yn > w->max_norm_r2[camera])
            continue;
        if (!km_camera_project(cam, markers[k], &u[k], &v[k]))
            continue;
        if (u[k] < 0.0 || v[k] < 0.0 || u[k] > cam->width - 1.0 || v[k] > cam->height - 1.0)
            continue;
        r[k] = fmax(cam->K[0] * 0.5 * w->cfg.marker_diameter_m / pc.z, MIN_RADIUS_PX);
        seen[k] = true;
    }
    /* Overlapping disks are one blob to a detector: merge them (area-weighted centre). */
    int label[4];
    for (int k = 0; k < count; k++)
        label[k] = k;
    for (int a = 0; a < count; a++)
        for (int b = a + 1; b < count; b++)
            if (seen[a] && seen[b] && hypot(u[a] - u[b], v[a] - v[b]) < r[a] + r[b]) {
                double wa = r[a] * r[a], wb = r[b] * r[b];
                u[a] = (wa * u[a] + wb * u[b]) / (wa + wb);
                v[a] = (wa * v[a] + wb * v[b]) / (wa + wb);
                r[a] = sqrt(wa + wb);
                label[a] = -2;
                seen[b] = false;
            }
    int n = 0;
    for (int k = 0; k < count; k++) {
        /* Draw the random numbers whether or not the marker is seen, so a change in one
         * marker's visibility does not reshuffle the noise of the others. */
        double drop = synth_rng_uniform(rng);
        double nx = gaussian(rng) * w->cfg.noise_px, ny = gaussian(rng) * w->cfg.noise_px;
        if (!seen[k] || drop < w->cfg.dropout_rate || n >= capacity)
            continue;
        out[n].camera = camera;
        out[n].x = u[k] + nx;
        out[n].y = v[k] + ny;
        out[n].area_px = PI * r[k] * r[k];
        out[n].marker = label[k];
        n++;
    }
    int ghosts = poisson(rng, w->cfg.ghost_rate);
    for (int g = 0; g < ghosts && n < capacity; g++) {
        out[n].camera = camera;
        out[n].x = synth_rng_uniform(rng) * (cam->width - 1);
        out[n].y = synth_rng_uniform(rng) * (cam->height - 1);
        out[n].area_px = 4.0 + 20.0 * synth_rng_uniform(rng);
        out[n].marker = -1;
        n++;
    }
    return n;
}

static int observe_all(const km_synthetic_wand *w, uint64_t stream, int frame,
                       const km_vec3 *markers, int count, km_synthetic_blob *out, int capacity)
{
    int n = 0;
    for (int c = 0; c < w->cfg.camera_count; c++) {
        synth_rng rng = synth_rng_make(w->cfg.seed, stream, (uint64_t)c, (uint64_t)frame);
        n += observe_view(w, c, markers, count, &rng, out + n, capacity - n);
    }
    return n;
}

int km_synthetic_wand_observe(const km_synthetic_wand *wand, int frame, km_synthetic_blob *out,
                              int capacity)
{
    if (!wand || !out || capacity < 0 || frame < 0 || frame >= wand->cfg.frame_count)
        return -1;
    km_vec3 m[3];
    km_synthetic_wand_markers(wand, frame, m);
    return observe_all(wand, 0x57a9d, frame, m, 3, out, capacity);
}

int km_synthetic_wand_observe_ground(const km_synthetic_wand *wand, int frame,
                                     km_synthetic_blob *out, int capacity)
{
    if (!wand || !out || capacity < 0 || frame < 0 || frame >= wand->cfg.ground_frame_count)
        return -1;
    km_vec3 m[4];
    km_synthetic_lframe_markers(wand, m);
    return observe_all(wand, 0x6e0d, frame, m, 4, out, capacity);
}

static km_status write_file(const km_synthetic_wand *w, const char *path, bool ground)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return km_error(KM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "frame,time_ns,camera,x,y,area\n");
    const int capacity = 64 * w->cfg.camera_count;
    km_synthetic_blob *blobs = malloc((size_t)capacity * sizeof *blobs);
    if (blobs == NULL) {
        fclose(f);
        return km_error(KM_ERR_NO_MEMORY, "synthetic wand: out of memory");
    }
    int frames = ground ? w->cfg.ground_frame_count : w->cfg.frame_count;
    for (int k = 0; k < frames; k++) {
        int n = ground ? km_synthetic_wand_observe_ground(w, k, blobs, capacity)
                       : km_synthetic_wand_observe(w, k, blobs, capacity);
        uint64_t t_ns = (uint64_t)llround((double)k * 1e9 / w->cfg.rate_hz);
        for (int i = 0; i < n; i++)
            fprintf(f, "%d,%llu,%d,%.4f,%.4f,%.1f\n", k, (unsigned long long)t_ns,
                    blobs[i].camera, blobs[i].x, blobs[i].y, blobs[i].area_px);
    }
    free(blobs);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0)
        failed = true;
    if (failed)
        return km_error(KM_ERR_IO, "%s: write failed", path);
    return KM_OK;
}

km_status km_synthetic_wand_write_csv(const km_synthetic_wand *wand, const char *wand_path,
                                      const char *ground_path)
{
    if (!wand || !wand_path)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic wand write: NULL argument");
    km_status st = write_file(wand, wand_path, false);
    if (st == KM_OK && ground_path != NULL)
        st = write_file(wand, ground_path, true);
    return st;
}

/* ------------------------------------------------------------ the rendered wand scene */

/* The world of the wand scene (km_synthetic_config.scene == KM_SYNTHETIC_SCENE_WAND): the
 * wand during [0, wand_seconds), the L-frame during the next lframe_seconds, then nothing.
 * The wave covers the volume once per take, so a shorter take waves faster (no motion blur
 * is drawn, so only the number of frames matters to a calibration). */
void synth_wand_world_eval(const km_synthetic_scene *scene, uint64_t time_ns,
                           synth_world *world)
{
    static const char *const wand_labels[SYNTH_WAND_MARKERS] = {"WAND1", "WAND2", "WAND3"};
    static const char *const lframe_labels[SYNTH_LFRAME_MARKERS] = {"LFRAME1", "LFRAME2",
                                                                    "LFRAME3", "LFRAME4"};
    static const double wand_marker_m[SYNTH_WAND_MARKERS] = {0.0, 0.15, 0.5};
    const km_synthetic_config *cfg = &scene->cfg;
    const double t = (double)time_ns * 1e-9;
    world->actor_count = 0;
    world->capsule_count = 0;
    world->marker_count = 0;
    km_vec3 pos[SYNTH_LFRAME_MARKERS];
    const char *const *labels;
    int count, first_id;
    if (t < cfg->wand_seconds) {
        synth_wand_path_eval(&scene->wand_path, t / cfg->wand_seconds, wand_marker_m, false,
                             pos);
        labels = wand_labels;
        count = SYNTH_WAND_MARKERS;
        first_id = 0;
    } else if (t < cfg->wand_seconds + cfg->lframe_seconds) {
        synth_lframe_eval(SYNTH_LFRAME_HEIGHT_M, pos);
        labels = lframe_labels;
        count = SYNTH_LFRAME_MARKERS;
        first_id = SYNTH_WAND_MARKERS;
    } else {
        return; /* the operator took the L-frame away: an empty volume */
    }
    for (int i = 0; i < count; i++) {
        km_synthetic_marker *m = &world->markers[world->marker_count++];
        m->id = (uint32_t)(first_id + i);
        snprintf(m->label, sizeof m->label, "%s", labels[i]);
        m->pos_m = pos[i];
    }
}
