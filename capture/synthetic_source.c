/* The synthetic backend of km_source: one camera of a synthetic scene, rendered frame by
 * frame into the caller's pool frame. Frame k is stamped start + k / rate_hz (CLOCK_MONOTONIC
 * ns) and shows the scene at scene time k / rate_hz. When realtime, next_frame sleeps until
 * that stamp, like a camera that exposes at its frame rate; otherwise frames come as fast as
 * they are asked for (tests, benchmarks, offline runs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic.h"

typedef struct synthetic_source {
    const km_synthetic_scene *scene;
    int camera;
    bool realtime;
    uint64_t start_request_ns; /* 0 = stamp frame 0 at start() */
    uint64_t start_ns;
    uint64_t next_index;
    uint64_t frame_limit;      /* 0 = endless */
} synthetic_source;

static km_status synthetic_start(void *self)
{
    synthetic_source *s = self;
    s->start_ns = s->start_request_ns ? s->start_request_ns : km_time_now_ns();
    s->next_index = 0;
    return KM_OK;
}

static km_status synthetic_next_frame(void *self, km_frame *frame, uint64_t timeout_ns)
{
    synthetic_source *s = self;
    const km_synthetic_config *cfg = &s->scene->cfg;
    if (s->frame_limit && s->next_index >= s->frame_limit)
        return KM_ERR_END_OF_STREAM;
    size_t bytes = (size_t)cfg->width * (size_t)cfg->height;
    if (!frame->data || frame->capacity < bytes)
        return km_error(KM_ERR_CAPACITY, "synthetic source: frame holds %zu bytes, needs %zu",
                        frame->capacity, bytes);
    uint64_t k = s->next_index;
    uint64_t stamp = s->start_ns + km_synthetic_scene_frame_time(s->scene, k);
    if (s->realtime) {
        uint64_t now = km_time_now_ns();
        if (stamp > now && stamp - now > timeout_ns) {
            km_time_sleep_until_ns(now + timeout_ns);
            return KM_ERR_AGAIN;
        }
        if (stamp > now)
            km_time_sleep_until_ns(stamp);
    }
    km_status st = km_synthetic_scene_render(s->scene, s->camera, k, frame->data, cfg->width);
    if (st != KM_OK)
        return st;
    frame->time_ns = stamp;
    frame->arrival_ns = km_time_now_ns();
    frame->sequence = k;
    frame->camera = s->camera;
    frame->width = cfg->width;
    frame->height = cfg->height;
    frame->stride = cfg->width;
    frame->format = KM_PIXEL_GRAY8;
    frame->size = bytes;
    frame->flags = 0;
    s->next_index = k + 1;
    return KM_OK;
}

static km_status synthetic_stop(void *self)
{
    (void)self;
    return KM_OK;
}

static void synthetic_close(void *self)
{
    free(self);
}

static void synthetic_describe(void *self, km_source_info *info)
{
    synthetic_source *s = self;
    const km_synthetic_config *cfg = &s->scene->cfg;
    snprintf(info->backend, sizeof info->backend, "synthetic");
    snprintf(info->name, sizeof info->name, "%s", s->scene->rig.cameras[s->camera].name);
    snprintf(info->serial, sizeof info->serial, "synthetic-%llu-%d",
             (unsigned long long)cfg->seed, s->camera);
    info->camera = s->camera;
    info->width = cfg->width;
    info->height = cfg->height;
    info->format = KM_PIXEL_GRAY8;
    info->rate_hz = cfg->rate_hz;
    info->max_frame_bytes = (size_t)cfg->width * (size_t)cfg->height;
}

static const km_source_vtable synthetic_vtable = {
    .backend = "synthetic",
    .start = synthetic_start,
    .next_frame = synthetic_next_frame,
    .stop = synthetic_stop,
    .close = synthetic_close,
    .describe = synthetic_describe,
};

km_source *km_synthetic_source_create_at(const km_synthetic_scene *scene, int camera,
                                         bool realtime, uint64_t start_time_ns,
                                         km_status *err)
{
    km_status st;
    if (!scene || camera < 0 || camera >= scene->cfg.camera_count) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "synthetic source: no scene or camera %d out of range",
                      camera);
        if (err)
            *err = st;
        return NULL;
    }
    synthetic_source *s = calloc(1, sizeof *s);
    if (!s) {
        st = km_error(KM_ERR_NO_MEMORY, "synthetic source: no memory");
        if (err)
            *err = st;
        return NULL;
    }
    s->scene = scene;
    s->camera = camera;
    s->realtime = realtime;
    s->start_request_ns = start_time_ns;
    if (scene->cfg.duration_s > 0.0)
        s->frame_limit = (uint64_t)ceil(scene->cfg.duration_s * scene->cfg.rate_hz - 1e-9);
    /* km_source_create takes ownership of s, closing it on failure. */
    return km_source_create(&synthetic_vtable, s, err);
}

km_source *km_synthetic_source_create(const km_synthetic_scene *scene, int camera,
                                      bool realtime, km_status *err)
{
    return km_synthetic_source_create_at(scene, camera, realtime, 0, err);
}
