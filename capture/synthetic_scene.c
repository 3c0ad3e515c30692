/* The synthetic scene object: its configuration (defaults, reading from a config file with
 * range checks), creation of the actors, rig and noise textures, and frame timing. The
 * actor lives in synthetic_actor.c, the rig in synthetic_rig.c, images and observations in
 * synthetic_render.c, the km_source in synthetic_source.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic.h"

km_synthetic_config km_synthetic_config_default(void)
{
    km_synthetic_config c;
    memset(&c, 0, sizeof c);
    c.camera_count = 8;
    c.width = 1280;
    c.height = 1024;
    c.rate_hz = 120.0;
    c.actor_count = 1;
    c.seed = 1;
    c.image_noise = 2.0;
    c.distortion = 1.0;
    c.reflection_rate = 0.2;
    c.occlusion = true;
    c.marker_diameter_m = 0.014;
    c.duration_s = 0.0;
    c.scene = KM_SYNTHETIC_SCENE_ACTOR;
    c.wand_seconds = 20.0;
    c.lframe_seconds = 10.0;
    return c;
}

/* Limits shared by the config reader and scene creation (docs/config.md, ### synthetic). */
#define CAMERAS_MAX KM_MAX_CAMERAS
#define SIZE_MIN 64
#define SIZE_MAX_PX 4096
#define RATE_MIN_HZ 1.0
#define RATE_MAX_HZ 1000.0
#define NOISE_MAX 50.0
#define DISTORTION_MAX 2.0
#define REFLECTION_MAX 20.0
#define DIAMETER_MIN_M 0.003
#define DIAMETER_MAX_M 0.05
#define DURATION_MAX_S 1e7
/* A wave shorter than this is no calibration take (the path would whip round the volume). */
#define WAND_MIN_S 0.5

static km_status check_config(const km_synthetic_config *c)
{
    if (c->camera_count < 1 || c->camera_count > CAMERAS_MAX)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: camera_count %d not in [1, %d]",
                        c->camera_count, CAMERAS_MAX);
    if (c->width < SIZE_MIN || c->width > SIZE_MAX_PX || c->height < SIZE_MIN ||
        c->height > SIZE_MAX_PX)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: image %dx%d not in [%d, %d]",
                        c->width, c->height, SIZE_MIN, SIZE_MAX_PX);
    if (!(c->rate_hz >= RATE_MIN_HZ && c->rate_hz <= RATE_MAX_HZ))
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: rate_hz %g not in [%g, %g]",
                        c->rate_hz, RATE_MIN_HZ, RATE_MAX_HZ);
    if (c->actor_count < 1 || c->actor_count > SYNTH_MAX_ACTORS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: actor_count %d not in [1, %d]",
                        c->actor_count, SYNTH_MAX_ACTORS);
    if (!(c->image_noise >= 0.0 && c->image_noise <= NOISE_MAX))
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: image_noise %g not in [0, %g]",
                        c->image_noise, NOISE_MAX);
    if (!(c->distortion >= 0.0 && c->distortion <= DISTORTION_MAX))
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: distortion %g not in [0, %g]",
                        c->distortion, DISTORTION_MAX);
    if (!(c->reflection_rate >= 0.0 && c->reflection_rate <= REFLECTION_MAX))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "synthetic: reflection_rate %g not in [0, %g]", c->reflection_rate,
                        REFLECTION_MAX);
    if (!(c->marker_diameter_m >= DIAMETER_MIN_M && c->marker_diameter_m <= DIAMETER_MAX_M))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "synthetic: marker_diameter_m %g not in [%g, %g]",
                        c->marker_diameter_m, DIAMETER_MIN_M, DIAMETER_MAX_M);
    if (!(c->duration_s >= 0.0 && c->duration_s <= DURATION_MAX_S))
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: duration_s %g not in [0, %g]",
                        c->duration_s, DURATION_MAX_S);
    if (c->scene != KM_SYNTHETIC_SCENE_ACTOR && c->scene != KM_SYNTHETIC_SCENE_WAND)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: unknown scene %d", (int)c->scene);
    if (!(c->wand_seconds >= WAND_MIN_S && c->wand_seconds <= DURATION_MAX_S))
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: wand_seconds %g not in [%g, %g]",
                        c->wand_seconds, WAND_MIN_S, DURATION_MAX_S);
    if (!(c->lframe_seconds >= 0.0 && c->lframe_seconds <= DURATION_MAX_S))
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic: lframe_seconds %g not in [0, %g]",
                        c->lframe_seconds, DURATION_MAX_S);
    return KM_OK;
}

static void key_path(char *out, size_t size, const char *path, const char *key)
{
    if (path && path[0])
        snprintf(out, size, "%s.%s", path, key);
    else
        snprintf(out, size, "%s", key);
}

/* KM_ERR_NOT_FOUND from a getter only means "absent, keep the default". */
#define READ_OR_FAIL(call)                                                                     \
    do {                                                                                       \
        km_status st_ = (call);                                                                \
        if (st_ != KM_OK && st_ != KM_ERR_NOT_FOUND)                                           \
            return st_;                                                                        \
    } while (0)

km_status km_synthetic_config_read(const km_config *cfg, const char *path,
                                   km_synthetic_config *out)
{
    if (!cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "synthetic config: NULL argument");
    if (!path)
        path = "";
    km_synthetic_config c = km_synthetic_config_default();
    static const char *const known[] = {
        "camera_count", "width",      "height",          "rate_hz",   "actor_count",
        "seed",         "image_noise", "distortion",     "reflection_rate", "occlusion",
        "marker_diameter_m", "duration_s", "scene", "wand_seconds", "lframe_seconds", NULL,
    };
    if (path[0] == '\0' || km_config_has(cfg, path)) {
        km_status st = km_config_check_keys(cfg, path, known);
        if (st != KM_OK)
            return st;
    }
    char key[256];
    long v;
#define READ_INT(name, lo, hi, field)                                                          \
    do {                                                                                       \
        key_path(key, sizeof key, path, name);                                                 \
        km_status st_ = km_config_get_int(cfg, key, (long)(field), (lo), (hi), &v);            \
        if (st_ == KM_OK)                                                                      \
            (field) = (int)v;                                                                  \
        else if (st_ != KM_ERR_NOT_FOUND)                                                      \
            return st_;                                                                        \
    } while (0)
#define READ_DOUBLE(name, lo, hi, field)                                                       \
    do {                                                                                       \
        key_path(key, sizeof key, path, name);                                                 \
        READ_OR_FAIL(km_config_get_double(cfg, key, (field), (lo), (hi), &(field)));          \
    } while (0)
    READ_INT("camera_count", 1, CAMERAS_MAX, c.camera_count);
    READ_INT("width", SIZE_MIN, SIZE_MAX_PX, c.width);
    READ_INT("height", SIZE_MIN, SIZE_MAX_PX, c.height);
    READ_DOUBLE("rate_hz", RATE_MIN_HZ, RATE_MAX_HZ, c.rate_hz);
    READ_INT("actor_count", 1, SYNTH_MAX_ACTORS, c.actor_count);
    key_path(key, sizeof key, path, "seed");
    {
        km_status st = km_config_get_int(cfg, key, (long)c.seed, 0, LONG_MAX, &v);
        if (st == KM_OK)
            c.seed = (uint64_t)v;
        else if (st != KM_ERR_NOT_FOUND)
            return st;
    }
    READ_DOUBLE("image_noise", 0.0, NOISE_MAX, c.image_noise);
    READ_DOUBLE("distortion", 0.0, DISTORTION_MAX, c.distortion);
    READ_DOUBLE("reflection_rate", 0.0, REFLECTION_MAX, c.reflection_rate);
    key_path(key, sizeof key, path, "occlusion");
    READ_OR_FAIL(km_config_get_bool(cfg, key, c.occlusion, &c.occlusion));
    READ_DOUBLE("marker_diameter_m", DIAMETER_MIN_M, DIAMETER_MAX_M, c.marker_diameter_m);
    READ_DOUBLE("duration_s", 0.0, DURATION_MAX_S, c.duration_s);
    key_path(key, sizeof key, path, "scene");
    {
        char name[16];
        km_status st = km_config_get_string(cfg, key, "actor", name, sizeof name);
        if (st != KM_OK && st != KM_ERR_NOT_FOUND)
            return st;
        if (strcmp(name, "actor") == 0)
            c.scene = KM_SYNTHETIC_SCENE_ACTOR;
        else if (strcmp(name, "wand") == 0)
            c.scene = KM_SYNTHETIC_SCENE_WAND;
        else
            return km_error(KM_ERR_PARSE, "%s:%d: %s: unknown scene '%s' (known: actor, wand)",
                            km_config_name(cfg), km_config_line(cfg, key), key, name);
    }
    READ_DOUBLE("wand_seconds", WAND_MIN_S, DURATION_MAX_S, c.wand_seconds);
    READ_DOUBLE("lframe_seconds", 0.0, DURATION_MAX_S, c.lframe_seconds);
#undef READ_INT
#undef READ_DOUBLE
    *out = c;
    return KM_OK;
}

km_synthetic_scene *km_synthetic_scene_create(const km_synthetic_config *cfg, km_status *err)
{
    km_status st;
    km_synthetic_config c = cfg ? *cfg : km_synthetic_config_default();
    st = check_config(&c);
    if (st != KM_OK) {
        if (err)
            *err = st;
        return NULL;
    }
    km_synthetic_scene *scene = calloc(1, sizeof *scene);
    if (!scene) {
        st = km_error(KM_ERR_NO_MEMORY, "synthetic: no memory for the scene");
        if (err)
            *err = st;
        return NULL;
    }
    scene->cfg = c;
    synth_actors_init(scene);
    synth_wand_path_init(&scene->wand_path, c.seed);
    synth_rig_build(scene);
    st = synth_noise_init(scene);
    if (st != KM_OK) {
        km_synthetic_scene_destroy(scene);
        if (err)
            *err = st;
        return NULL;
    }
    if (c.scene == KM_SYNTHETIC_SCENE_WAND)
        km_log(KM_LOG_DEBUG, "capture",
               "synthetic scene: %d cameras %dx%d at %g Hz, wand wave %g s then L-frame %g s, "
               "seed %llu", c.camera_count, c.width, c.height, c.rate_hz, c.wand_seconds,
               c.lframe_seconds, (unsigned long long)c.seed);
    else
        km_log(KM_LOG_DEBUG, "capture",
               "synthetic scene: %d cameras %dx%d at %g Hz, %d actor(s), seed %llu",
               c.camera_count, c.width, c.height, c.rate_hz, c.actor_count,
               (unsigned long long)c.seed);
    if (err)
        *err = KM_OK;
    return scene;
}

void km_synthetic_scene_destroy(km_synthetic_scene *scene)
{
    if (!scene)
        return;
    free(scene->noise);
    free(scene);
}

const km_rig *km_synthetic_scene_rig(const km_synthetic_scene *scene)
{
    return scene ? &scene->rig : NULL;
}

const km_synthetic_config *km_synthetic_scene_config(const km_synthetic_scene *scene)
{
    return scene ? &scene->cfg : NULL;
}

uint64_t km_synthetic_scene_frame_time(const km_synthetic_scene *scene, uint64_t frame)
{
    if (!scene)
        return 0;
    /* Rounded to the nanosecond; exact in double up to 2^53 ns (104 days). */
    return (uint64_t)llround((double)frame * 1e9 / scene->cfg.rate_hz);
}
