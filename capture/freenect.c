/* Kinect v1 through libfreenect: depth (11-bit disparity, millimetres registered to the colour
 * camera or not), infrared and colour streams as km_sources, LED and tilt, several Kinects.
 *
 * Threads. libfreenect runs its callbacks inside freenect_process_events; the context's event
 * thread calls it with a 10 ms timeout under the context's `api` mutex, and every other
 * libfreenect call (open, mode, start/stop, LED, tilt) takes the same mutex, since libfreenect
 * does not promise that calls on one context may run concurrently. A depth or video callback
 * copies the finished frame straight into the pool frame next_frame is waiting with, or into
 * the source's private frame when none is waiting (the newest frame wins); nothing there
 * allocates.
 *
 * Time. Every frame carries the Kinect's 32-bit frame time stamp, a 60 MHz counter (wraps
 * every 71.6 s). Pairs (time stamp, host time of the callback) feed the same lower-envelope fit
 * as the UVC clock (uvc_clock.c), so time_ns is the device's own frame timing on the host clock,
 * free of the callback's jitter; a constant offset to the exposure remains (libfreenect does not
 * say where in the frame the counter is sampled). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinema/capture.h"
#include "uvc.h"

#define KINECT_CLOCK_HZ 60000000.0
/* Once the Kinects are gone, next_frame says so (KM_ERR_DEVICE) this often, and waits out its
 * timeout with KM_ERR_AGAIN in between, as a UVC camera that is away does (uvc.c): the capture
 * runner logs every error, and a failure answered at once would be logged ~100 times a second
 * per Kinect. */
#define FAILURE_REPORT_INTERVAL_NS 5000000000ull

static const char *const stream_names[KM_FREENECT_STREAM_COUNT] = {
    "depth11", "depth_registered", "depth_mm", "ir8", "ir10", "rgb"};

km_freenect_config km_freenect_config_default(void)
{
    km_freenect_config c;
    memset(&c, 0, sizeof c);
    c.stream = KM_FREENECT_DEPTH_11BIT;
    c.led_off = true;
    c.watchdog_s = 1.0;
    return c;
}

static const char *const freenect_keys[] = {"type", "camera", "serial", "index", "stream",
                                            "high_resolution", "led_off", "tilt_deg",
                                            "watchdog_s", NULL};

km_status km_freenect_config_read(const km_config *cfg, const char *path, km_freenect_config *out)
{
    if (!cfg || !path || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "freenect: NULL argument to config_read");
    km_status st = km_config_check_keys(cfg, path, freenect_keys);
    if (st)
        return st;
    char key[256];
    long v;
    double d;
    bool b;
    char s[KM_NAME_MAX];
#define KEY(name) (snprintf(key, sizeof key, "%s%s%s", path, path[0] ? "." : "", name), key)
    if ((st = km_config_get_int(cfg, KEY("camera"), out->camera, 0, KM_MAX_CAMERAS - 1, &v)) ==
        KM_OK)
        out->camera = (int)v;
    else if (st != KM_ERR_NOT_FOUND)
        return st;
    if ((st = km_config_get_int(cfg, KEY("index"), out->index, 0, 63, &v)) == KM_OK)
        out->index = (int)v;
    else if (st != KM_ERR_NOT_FOUND)
        return st;
    if ((st = km_config_get_bool(cfg, KEY("high_resolution"), out->high_resolution, &b)) == KM_OK)
        out->high_resolution = b;
    else if (st != KM_ERR_NOT_FOUND)
        return st;
    if ((st = km_config_get_bool(cfg, KEY("led_off"), out->led_off, &b)) == KM_OK)
        out->led_off = b;
    else if (st != KM_ERR_NOT_FOUND)
        return st;
    if ((st = km_config_get_double(cfg, KEY("tilt_deg"), 0, -27, 27, &d)) == KM_OK) {
        out->tilt_deg = d;
        out->set_tilt = true;
    } else if (st != KM_ERR_NOT_FOUND) {
        return st;
    }
    if ((st = km_config_get_double(cfg, KEY("watchdog_s"), out->watchdog_s, 0, 3600, &d)) == KM_OK)
        out->watchdog_s = d;
    else if (st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, KEY("serial"), "", out->serial, sizeof out->serial);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, KEY("stream"), stream_names[out->stream], s, sizeof s);
    if (st == KM_OK) {
        int found = -1;
        for (int i = 0; i < KM_FREENECT_STREAM_COUNT; i++)
            if (!strcmp(s, stream_names[i]))
                found = i;
        if (found < 0)
            return km_error(KM_ERR_PARSE,
                            "%s:%d: %s: expected depth11, depth_registered, depth_mm, ir8, ir10 "
                            "or rgb",
                            km_config_name(cfg), km_config_line(cfg, key), key);
        out->stream = (km_freenect_stream)found;
    } else if (st != KM_ERR_NOT_FOUND) {
        return st;
    }
#undef KEY
    return KM_OK;
}

#ifndef KINEMA_HAVE_FREENECT

/* Built without libfreenect: the backend is absent, the API answers so. */
struct km_freenect_context {
    int unused;
};

km_freenect_context *km_freenect_context_create(km_status *err)
{
    km_status st = km_error(KM_ERR_UNSUPPORTED, "freenect: built without libfreenect");
    if (err)
        *err = st;
    return NULL;
}
void km_freenect_context_destroy(km_freenect_context *ctx) { (void)ctx; }
km_status km_freenect_list(km_freenect_context *ctx, char (*serials)[KM_NAME_MAX], int capacity,
                           int *count)
{
    (void)ctx;
    (void)serials;
    (void)capacity;
    if (count)
        *count = 0;
    return km_error(KM_ERR_UNSUPPORTED, "freenect: built without libfreenect");
}
km_source *km_freenect_source_create(km_freenect_context *ctx, const km_freenect_config *cfg,
                                     km_status *err)
{
    (void)ctx;
    (void)cfg;
    km_status st = km_error(KM_ERR_UNSUPPORTED, "freenect: built without libfreenect");
    if (err)
        *err = st;
    return NULL;
}

#else /* KINEMA_HAVE_FREENECT */

#include <libfreenect.h>

#define MAX_KINECTS 8

typedef struct fn_source fn_source;

typedef struct fn_device {
    freenect_device *dev;
    char serial[KM_NAME_MAX];
    int users;
    fn_source *depth, *video;    /* the sources fed by this device's callbacks */
} fn_device;

struct km_freenect_context {
    freenect_context *fn;
    pthread_mutex_t api;         /* every libfreenect call */
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
    atomic_bool failed;          /* freenect_process_events failed: devices gone */
    fn_device devices[MAX_KINECTS];
};

struct fn_source {
    km_freenect_context *ctx;
    fn_device *device;
    km_freenect_config cfg;
    bool depth;                  /* depth stream (else video) */
    freenect_frame_mode mode;
    km_pixel_format format;
    int width, height, stride;
    size_t frame_bytes;
    double rate_hz;
    bool started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    km_frame *target;
    bool target_done;
    uint8_t *spare;              /* newest frame when no pool frame was waiting */
    km_frame spare_meta;
    bool spare_ready;
    uint64_t sequence;
    uint64_t last_frame_ns;
    uint64_t frames, dropped, restarts;
    km_uvc_clock clock;
    bool failure_reported;       /* KM_ERR_DEVICE given since the context failed */
    uint64_t failure_report_ns;  /* when */
};

static uint64_t frame_time(fn_source *s, uint32_t timestamp, uint64_t now)
{
    km_uvc_clock_add(&s->clock, timestamp, now);
    uint64_t t;
    if (km_uvc_clock_map(&s->clock, timestamp, &t) == KM_OK && t <= now &&
        now - t < 1000000000ull)
        return t;
    return now;
}

static void deliver(fn_source *s, const void *data, uint32_t timestamp)
{
    uint64_t now = km_time_now_ns();
    pthread_mutex_lock(&s->lock);
    km_frame *f;
    if (s->target && !s->target_done) {
        f = s->target;
        s->target_done = true;
    } else {
        if (s->spare_ready)
            s->dropped++; /* the previous one was never collected */
        f = &s->spare_meta;
        s->spare_ready = true;
    }
    memcpy(f->data, data, s->frame_bytes);
    f->time_ns = frame_time(s, timestamp, now);
    f->arrival_ns = now;
    f->sequence = s->sequence++;
    f->camera = s->cfg.camera;
    f->width = s->width;
    f->height = s->height;
    f->stride = s->stride;
    f->format = s->format;
    f->size = s->frame_bytes;
    f->flags = 0;
    s->last_frame_ns = now;
    s->frames++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void depth_cb(freenect_device *dev, void *depth, uint32_t timestamp)
{
    fn_device *d = freenect_get_user(dev);
    if (d && d->depth)
        deliver(d->depth, depth, timestamp);
}

static void video_cb(freenect_device *dev, void *video, uint32_t timestamp)
{
    fn_device *d = freenect_get_user(dev);
    if (d && d->video)
        deliver(d->video, video, timestamp);
}

static void *event_thread(void *arg)
{
    km_freenect_context *ctx = arg;
    while (!atomic_load_explicit(&ctx->stop, memory_order_acquire)) {
        struct timeval tv = {0, 10000};
        pthread_mutex_lock(&ctx->api);
        int rc = freenect_process_events_timeout(ctx->fn, &tv);
        pthread_mutex_unlock(&ctx->api);
        if (rc < 0) {
            if (!atomic_exchange(&ctx->failed, true))
                km_log(KM_LOG_ERROR, "freenect", "event processing failed (%d): Kinect "
                       "disconnected?", rc);
            struct timespec pause = {0, 50000000};
            nanosleep(&pause, NULL);
        } else {
            /* let the other threads at the api mutex */
            struct timespec pause = {0, 200000};
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

km_freenect_context *km_freenect_context_create(km_status *err)
{
    km_status st = KM_OK;
    km_freenect_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        st = km_error(KM_ERR_NO_MEMORY, "freenect: no memory");
        goto out;
    }
    if (freenect_init(&ctx->fn, NULL) < 0) {
        st = km_error(KM_ERR_DEVICE, "freenect: freenect_init failed");
        free(ctx);
        ctx = NULL;
        goto out;
    }
    freenect_set_log_level(ctx->fn, FREENECT_LOG_WARNING);
    /* camera for the streams, motor for LED and tilt (audio is not used) */
    freenect_select_subdevices(ctx->fn,
                               (freenect_device_flags)(FREENECT_DEVICE_MOTOR | FREENECT_DEVICE_CAMERA));
    pthread_mutex_init(&ctx->api, NULL);
    atomic_init(&ctx->stop, false);
    atomic_init(&ctx->failed, false);
    if (pthread_create(&ctx->thread, NULL, event_thread, ctx) != 0) {
        st = km_error(KM_ERR_INTERNAL, "freenect: cannot start the event thread");
        freenect_shutdown(ctx->fn);
        pthread_mutex_destroy(&ctx->api);
        free(ctx);
        ctx = NULL;
        goto out;
    }
    ctx->thread_running = true;
out:
    if (err)
        *err = st;
    return ctx;
}

void km_freenect_context_destroy(km_freenect_context *ctx)
{
    if (!ctx)
        return;
    atomic_store_explicit(&ctx->stop, true, memory_order_release);
    if (ctx->thread_running)
        pthread_join(ctx->thread, NULL);
    for (int i = 0; i < MAX_KINECTS; i++)
        if (ctx->devices[i].dev) {
            km_log(KM_LOG_ERROR, "freenect", "context destroyed with Kinect %s still open",
                   ctx->devices[i].serial);
            freenect_close_device(ctx->devices[i].dev);
        }
    freenect_shutdown(ctx->fn);
    pthread_mutex_destroy(&ctx->api);
    free(ctx);
}

/* Serials in index order; caller holds api. */
static km_status list_locked(km_freenect_context *ctx, char (*serials)[KM_NAME_MAX], int capacity,
                             int *count)
{
    struct freenect_device_attributes *list = NULL;
    int n = freenect_list_device_attributes(ctx->fn, &list);
    *count = 0;
    if (n < 0)
        return km_error(KM_ERR_DEVICE, "freenect: cannot list devices (%d)", n);
    km_status st = KM_OK;
    for (struct freenect_device_attributes *a = list; a; a = a->next) {
        if (*count >= capacity) {
            st = km_error(KM_ERR_CAPACITY, "freenect: more than %d Kinects", capacity);
            break;
        }
        snprintf(serials[*count], KM_NAME_MAX, "%s", a->camera_serial ? a->camera_serial : "");
        (*count)++;
    }
    freenect_free_device_attributes(list);
    return st;
}

km_status km_freenect_list(km_freenect_context *ctx, char (*serials)[KM_NAME_MAX], int capacity,
                           int *count)
{
    if (!ctx || !count || (capacity > 0 && !serials))
        return km_error(KM_ERR_INVALID_ARGUMENT, "freenect: bad arguments to list");
    pthread_mutex_lock(&ctx->api);
    km_status st = list_locked(ctx, serials, capacity, count);
    pthread_mutex_unlock(&ctx->api);
    return st;
}

/* The device of cfg, opened or shared. Caller holds api. */
static km_status device_for(km_freenect_context *ctx, const km_freenect_config *cfg,
                            fn_device **out)
{
    char serial[KM_NAME_MAX];
    snprintf(serial, sizeof serial, "%s", cfg->serial);
    if (!serial[0]) {
        char serials[MAX_KINECTS][KM_NAME_MAX];
        int n = 0;
        km_status st = list_locked(ctx, serials, MAX_KINECTS, &n);
        if (st && st != KM_ERR_CAPACITY)
            return st;
        if (cfg->index >= n)
            return km_error(KM_ERR_NOT_FOUND, "freenect: no Kinect with index %d (%d connected)",
                            cfg->index, n);
        snprintf(serial, sizeof serial, "%s", serials[cfg->index]);
    }
    fn_device *free_slot = NULL;
    for (int i = 0; i < MAX_KINECTS; i++) {
        fn_device *d = &ctx->devices[i];
        if (d->dev && !strcmp(d->serial, serial)) {
            d->users++;
            *out = d;
            return KM_OK;
        }
        if (!d->dev && !free_slot)
            free_slot = d;
    }
    if (!free_slot)
        return km_error(KM_ERR_CAPACITY, "freenect: more than %d Kinects", MAX_KINECTS);
    freenect_device *dev = NULL;
    int rc = serial[0] ? freenect_open_device_by_camera_serial(ctx->fn, &dev, serial)
                       : freenect_open_device(ctx->fn, &dev, cfg->index);
    if (rc < 0 || !dev)
        return km_error(KM_ERR_NOT_FOUND, "freenect: cannot open the Kinect %s%s (%d)",
                        serial[0] ? "with serial " : "", serial, rc);
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->dev = dev;
    snprintf(free_slot->serial, sizeof free_slot->serial, "%s", serial);
    free_slot->users = 1;
    freenect_set_user(dev, free_slot);
    freenect_set_depth_callback(dev, depth_cb);
    freenect_set_video_callback(dev, video_cb);
    if (cfg->led_off && freenect_set_led(dev, LED_OFF) < 0)
        km_log(KM_LOG_WARN, "freenect", "%s: cannot switch the LED off (no motor subdevice?)",
               serial);
    *out = free_slot;
    return KM_OK;
}

static void device_release(km_freenect_context *ctx, fn_device *d)
{
    (void)ctx;
    if (--d->users > 0)
        return;
    freenect_close_device(d->dev);
    memset(d, 0, sizeof *d);
}

static km_status fn_start(void *self)
{
    fn_source *s = self;
    km_freenect_context *ctx = s->ctx;
    pthread_mutex_lock(&ctx->api);
    int rc = s->depth ? freenect_start_depth(s->device->dev) : freenect_start_video(s->device->dev);
    pthread_mutex_unlock(&ctx->api);
    if (rc < 0)
        return km_error(KM_ERR_DEVICE, "freenect %s: cannot start the %s stream (%d)",
                        s->device->serial, stream_names[s->cfg.stream], rc);
    pthread_mutex_lock(&s->lock);
    s->started = true;
    s->last_frame_ns = km_time_now_ns();
    pthread_mutex_unlock(&s->lock);
    return KM_OK;
}

static km_status fn_stop(void *self)
{
    fn_source *s = self;
    km_freenect_context *ctx = s->ctx;
    pthread_mutex_lock(&ctx->api);
    if (s->depth)
        freenect_stop_depth(s->device->dev);
    else
        freenect_stop_video(s->device->dev);
    pthread_mutex_unlock(&ctx->api);
    pthread_mutex_lock(&s->lock);
    s->started = false;
    pthread_mutex_unlock(&s->lock);
    return KM_OK;
}

static bool wait_until(fn_source *s, uint64_t deadline_ns)
{
    uint64_t now = km_time_now_ns();
    if (now >= deadline_ns)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wait = deadline_ns - now;
    ts.tv_sec += (time_t)(wait / 1000000000ull);
    ts.tv_nsec += (long)(wait % 1000000000ull);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0;
}

static km_status fn_next_frame(void *self, km_frame *frame, uint64_t timeout_ns)
{
    fn_source *s = self;
    if (atomic_load(&s->ctx->failed)) {
        uint64_t now = km_time_now_ns(), deadline = now + timeout_ns;
        pthread_mutex_lock(&s->lock);
        bool report = !s->failure_reported ||
                      now - s->failure_report_ns >= FAILURE_REPORT_INTERVAL_NS;
        if (report) {
            s->failure_reported = true;
            s->failure_report_ns = now;
        } else {
            /* nothing signals the condition now: this sleeps until the deadline */
            while (wait_until(s, deadline))
                ;
        }
        pthread_mutex_unlock(&s->lock);
        if (report)
            return km_error(KM_ERR_DEVICE, "freenect %s: the device stopped answering",
                            s->device->serial);
        return KM_ERR_AGAIN;
    }
    if (frame->capacity < s->frame_bytes)
        return km_error(KM_ERR_INVALID_ARGUMENT, "freenect: frame of %zu bytes, the stream "
                        "needs %zu", frame->capacity, s->frame_bytes);
    uint64_t deadline = km_time_now_ns() + timeout_ns;
    pthread_mutex_lock(&s->lock);
    km_status st = KM_ERR_AGAIN;
    if (s->spare_ready) {
        uint8_t *data = frame->data;
        size_t capacity = frame->capacity;
        void *slot = frame->pool_slot;
        memcpy(data, s->spare, s->frame_bytes);
        *frame = s->spare_meta;
        frame->data = data;
        frame->capacity = capacity;
        frame->pool_slot = slot;
        s->spare_meta.data = s->spare;
        s->spare_ready = false;
        st = KM_OK;
    } else {
        s->target = frame;
        s->target_done = false;
        while (!s->target_done && wait_until(s, deadline))
            ;
        if (s->target_done) {
            /* the callback overwrote everything; keep the pool's own fields */
            st = KM_OK;
        }
        s->target = NULL;
        s->target_done = false;
    }
    uint64_t silent = km_time_now_ns() - s->last_frame_ns;
    bool stalled = st != KM_OK && s->started && s->cfg.watchdog_s > 0 &&
                   silent > (uint64_t)(s->cfg.watchdog_s * 1e9);
    pthread_mutex_unlock(&s->lock);
    if (stalled) {
        km_log(KM_LOG_WARN, "freenect", "%s %s: no frame for %.0f ms, restarting the stream",
               s->device->serial, stream_names[s->cfg.stream], (double)silent / 1e6);
        fn_stop(s);
        km_status rs = fn_start(s);
        pthread_mutex_lock(&s->lock);
        s->restarts++;
        pthread_mutex_unlock(&s->lock);
        if (rs)
            return rs;
    }
    return st;
}

static void fn_describe(void *self, km_source_info *info)
{
    fn_source *s = self;
    snprintf(info->backend, sizeof info->backend, "freenect");
    snprintf(info->name, sizeof info->name, "Kinect %s", stream_names[s->cfg.stream]);
    snprintf(info->serial, sizeof info->serial, "%s", s->device->serial);
    info->camera = s->cfg.camera;
    info->width = s->width;
    info->height = s->height;
    info->format = s->format;
    info->rate_hz = s->rate_hz;
    info->max_frame_bytes = s->frame_bytes;
}

static void fn_close(void *self)
{
    fn_source *s = self;
    km_freenect_context *ctx = s->ctx;
    pthread_mutex_lock(&ctx->api);
    if (s->device) {
        if (s->depth && s->device->depth == s)
            s->device->depth = NULL;
        if (!s->depth && s->device->video == s)
            s->device->video = NULL;
        device_release(ctx, s->device);
    }
    pthread_mutex_unlock(&ctx->api);
    free(s->spare);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

/* libfreenect has no hot-plug: once its event processing fails the devices are gone until
 * the context is made again (kinemad restarted), so this stays false. */
static bool fn_connected(void *self)
{
    fn_source *s = self;
    return !atomic_load(&s->ctx->failed);
}

static const km_source_vtable fn_vtable = {
    .backend = "freenect",
    .start = fn_start,
    .next_frame = fn_next_frame,
    .stop = fn_stop,
    .close = fn_close,
    .describe = fn_describe,
    .connected = fn_connected,
};

km_source *km_freenect_source_create(km_freenect_context *ctx, const km_freenect_config *cfg,
                                     km_status *err)
{
    km_status st = KM_OK;
    fn_source *s = NULL;
    if (!ctx || !cfg || cfg->stream < 0 || cfg->stream >= KM_FREENECT_STREAM_COUNT) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "freenect: bad context or config");
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        st = km_error(KM_ERR_NO_MEMORY, "freenect: no memory");
        goto fail;
    }
    s->ctx = ctx;
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    km_uvc_clock_init(&s->clock, KINECT_CLOCK_HZ, 0);
    s->depth = cfg->stream <= KM_FREENECT_DEPTH_MM;
    freenect_resolution res = cfg->high_resolution && !s->depth ? FREENECT_RESOLUTION_HIGH
                                                                : FREENECT_RESOLUTION_MEDIUM;
    switch (cfg->stream) {
    case KM_FREENECT_DEPTH_11BIT:
        s->mode = freenect_find_depth_mode(res, FREENECT_DEPTH_11BIT);
        s->format = KM_PIXEL_GRAY16;
        break;
    case KM_FREENECT_DEPTH_REGISTERED:
        s->mode = freenect_find_depth_mode(res, FREENECT_DEPTH_REGISTERED);
        s->format = KM_PIXEL_DEPTH16;
        break;
    case KM_FREENECT_DEPTH_MM:
        s->mode = freenect_find_depth_mode(res, FREENECT_DEPTH_MM);
        s->format = KM_PIXEL_DEPTH16;
        break;
    case KM_FREENECT_IR_8BIT:
        s->mode = freenect_find_video_mode(res, FREENECT_VIDEO_IR_8BIT);
        s->format = KM_PIXEL_GRAY8;
        break;
    case KM_FREENECT_IR_10BIT:
        s->mode = freenect_find_video_mode(res, FREENECT_VIDEO_IR_10BIT);
        s->format = KM_PIXEL_GRAY16;
        break;
    default:
        s->mode = freenect_find_video_mode(res, FREENECT_VIDEO_RGB);
        s->format = KM_PIXEL_RGB24;
        break;
    }
    if (!s->mode.is_valid || s->mode.bytes <= 0 || s->mode.width <= 0 || s->mode.height <= 0) {
        st = km_error(KM_ERR_UNSUPPORTED, "freenect: no %s mode at this resolution",
                      stream_names[cfg->stream]);
        goto fail;
    }
    s->width = s->mode.width;
    s->height = s->mode.height;
    s->frame_bytes = (size_t)s->mode.bytes;
    s->stride = (int)(s->frame_bytes / (size_t)s->height);
    s->rate_hz = s->mode.framerate > 0 ? s->mode.framerate : 30;
    s->spare = malloc(s->frame_bytes);
    if (!s->spare) {
        st = km_error(KM_ERR_NO_MEMORY, "freenect: no memory");
        goto fail;
    }
    s->spare_meta.data = s->spare;
    s->spare_meta.capacity = s->frame_bytes;

    pthread_mutex_lock(&ctx->api);
    st = device_for(ctx, cfg, &s->device);
    if (!st) {
        fn_device *d = s->device;
        if ((s->depth && d->depth) || (!s->depth && d->video)) {
            st = km_error(KM_ERR_UNSUPPORTED,
                          "freenect %s: the %s stream is taken by another source (IR and colour "
                          "share the Kinect's video stream; depth is one stream)",
                          d->serial, s->depth ? "depth" : "video");
        } else {
            int rc = s->depth ? freenect_set_depth_mode(d->dev, s->mode)
                              : freenect_set_video_mode(d->dev, s->mode);
            if (rc < 0)
                st = km_error(KM_ERR_DEVICE, "freenect %s: cannot set the %s mode (%d)",
                              d->serial, stream_names[cfg->stream], rc);
        }
        if (!st) {
            if (s->depth)
                d->depth = s;
            else
                d->video = s;
            if (cfg->set_tilt && freenect_set_tilt_degs(d->dev, cfg->tilt_deg) < 0)
                km_log(KM_LOG_WARN, "freenect", "%s: cannot tilt to %.1f deg", d->serial,
                       cfg->tilt_deg);
        } else {
            device_release(ctx, d);
            s->device = NULL;
        }
    }
    pthread_mutex_unlock(&ctx->api);
    if (st)
        goto fail;
    km_log(KM_LOG_INFO, "freenect", "camera %d: Kinect %s %s %dx%d", cfg->camera,
           s->device->serial, stream_names[cfg->stream], s->width, s->height);
    return km_source_create(&fn_vtable, s, err);
fail:
    if (s) {
        free(s->spare);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
    }
    if (err)
        *err = st;
    return NULL;
}

#endif /* KINEMA_HAVE_FREENECT */
