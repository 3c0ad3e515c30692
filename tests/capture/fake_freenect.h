/* A simulated libfreenect for tests of the Kinect backend (capture/freenect.c) and of everything
 * above it (the pipeline's `source: devices` with `type: freenect`): every freenect_* function
 * the backend calls is wrapped at link time (-Wl,--wrap=freenect_..., the list is
 * freenect_wrapped in tests/capture/meson.build, used through freenect_wrap_args) and answered
 * by fake Kinects that deliver depth and video frames from freenect_process_events_timeout
 * through the registered callbacks, as libfreenect does from inside its event processing.
 *
 * Frames come at 30 Hz on a common grid of CLOCK_MONOTONIC (multiples of 1/30 s, as two
 * Kinects of one rig would if they were in phase), each stamped with a 60 MHz frame counter
 * (offset per Kinect). By default depth pixel p of frame n is (n + p) & 0x7ff and every video
 * byte of frame n is n & 0xff; a test can instead give a Kinect a fixed video image
 * (fake_kinect_set_video_image: e.g. the IR view of markers). A Kinect can stall (no frames
 * while its streams run) and the event loop can be made to fail (a Kinect unplugged: real
 * libfreenect returns < 0 from freenect_process_events_timeout once a device is marked dead).
 *
 * Modes follow libfreenect's table: depth 640x480 (11-bit or 16-bit), IR 640x488 (medium) or
 * 1280x1024 (high), colour 640x480 or 1280x1024.
 *
 * Threads: the event thread of the backend runs freenect_process_events_timeout; the test
 * changes a Kinect through the helpers below, which take fkn.lock (so does the event loop and
 * every wrapped call that changes a Kinect's streams). Read a Kinect's counters under fkn.lock
 * while the backend runs (after km_freenect_context_destroy, freely).
 *
 * Header-only: include it in exactly one file of a test executable (it defines the
 * __wrap_freenect_* functions), after <cmocka.h>. Its names (fkn, fake_kinect*) do not clash
 * with fake_usb.h's. */
#ifndef KINEMA_TESTS_FAKE_FREENECT_H
#define KINEMA_TESTS_FAKE_FREENECT_H

#include <libfreenect.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_KINECTS 4
#define FAKE_KINECT_PERIOD_NS 33333333ull /* 30 Hz */

typedef struct fake_kinect {
    bool used;
    char serial[32];
    bool open;
    int opens, closes;
    void *user;
    freenect_depth_cb depth_cb;
    freenect_video_cb video_cb;
    freenect_frame_mode depth_mode, video_mode;
    bool depth_on, video_on;
    int depth_starts, video_starts;
    int led;
    double tilt;
    bool tilted;
    uint32_t frame;             /* frames delivered (a depth and a video frame count once) */
    uint64_t next_ns;           /* the next frame is due at this CLOCK_MONOTONIC time */
    bool stall;                 /* streams run, no frames */
    uint8_t *video_image;       /* borrowed: sent as every video frame when it holds the
                                   mode's bytes (video_image_bytes >= video_mode.bytes) */
    size_t video_image_bytes;
    uint16_t depth[640 * 480];
    uint8_t video[1280 * 1024 * 3];
} fake_kinect;

struct _freenect_device {
    fake_kinect *k;
};
struct _freenect_context {
    int subdevices;
};

static struct {
    pthread_mutex_t lock;
    struct _freenect_context ctx;
    fake_kinect k[FAKE_KINECTS];
    struct _freenect_device devs[FAKE_KINECTS];
    bool fail_events;           /* freenect_process_events_timeout returns -1 */
    uint64_t events;            /* calls of freenect_process_events_timeout */
    uint64_t failed_events;     /* of which answered -1 */
    uint64_t t0;
} fkn = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline uint64_t fake_kinect_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ helpers for tests */

/* No Kinects, the event loop healthy. Call between tests, with no context running. */
static inline void fake_kinect_reset(void)
{
    pthread_mutex_lock(&fkn.lock);
    memset(fkn.k, 0, sizeof fkn.k);
    memset(fkn.devs, 0, sizeof fkn.devs);
    fkn.fail_events = false;
    fkn.events = fkn.failed_events = 0;
    pthread_mutex_unlock(&fkn.lock);
}

/* Plug in a Kinect with this camera serial (listed in the order added); NULL when full. */
static inline fake_kinect *fake_kinect_add(const char *serial)
{
    fake_kinect *k = NULL;
    pthread_mutex_lock(&fkn.lock);
    for (int i = 0; i < FAKE_KINECTS; i++)
        if (!fkn.k[i].used) {
            k = &fkn.k[i];
            memset(k, 0, sizeof *k);
            k->used = true;
            k->led = -1;
            snprintf(k->serial, sizeof k->serial, "%s", serial);
            fkn.devs[i].k = k;
            break;
        }
    pthread_mutex_unlock(&fkn.lock);
    return k;
}

/* Every video frame (IR or colour) of k shows `image` (borrowed, `bytes` long; it must hold
 * the video mode's bytes, e.g. 640 * 488 for IR 8-bit, else the default pattern is sent).
 * NULL: the default pattern again. */
static inline void fake_kinect_set_video_image(fake_kinect *k, uint8_t *image, size_t bytes)
{
    pthread_mutex_lock(&fkn.lock);
    k->video_image = image;
    k->video_image_bytes = image ? bytes : 0;
    pthread_mutex_unlock(&fkn.lock);
}

/* k's streams keep running but deliver nothing (true) or deliver again (false). */
static inline void fake_kinect_stall(fake_kinect *k, bool stall)
{
    pthread_mutex_lock(&fkn.lock);
    k->stall = stall;
    pthread_mutex_unlock(&fkn.lock);
}

/* The event loop fails from now on (true: a Kinect unplugged) or works again (false). */
static inline void fake_kinect_fail_events(bool fail)
{
    pthread_mutex_lock(&fkn.lock);
    fkn.fail_events = fail;
    pthread_mutex_unlock(&fkn.lock);
}

/* Frames k has delivered so far. */
static inline uint32_t fake_kinect_frames(const fake_kinect *k)
{
    pthread_mutex_lock(&fkn.lock);
    uint32_t n = k->frame;
    pthread_mutex_unlock(&fkn.lock);
    return n;
}

static inline freenect_frame_mode fake_kinect_mode(freenect_resolution res, int fmt, bool depth)
{
    freenect_frame_mode m;
    memset(&m, 0, sizeof m);
    m.resolution = res;
    m.dummy = fmt;
    m.framerate = 30;
    m.is_valid = 1;
    bool high = res == FREENECT_RESOLUTION_HIGH;
    if (depth) {
        if (res != FREENECT_RESOLUTION_MEDIUM) {
            m.is_valid = 0;
            return m;
        }
        m.width = 640;
        m.height = 480;
        m.data_bits_per_pixel = fmt == FREENECT_DEPTH_11BIT ? 11 : 16;
        m.padding_bits_per_pixel = (int8_t)(16 - m.data_bits_per_pixel);
        m.bytes = 640 * 480 * 2;
    } else if (fmt == FREENECT_VIDEO_IR_8BIT) {
        m.width = high ? 1280 : 640;
        m.height = high ? 1024 : 488;
        m.data_bits_per_pixel = 8;
        m.bytes = m.width * m.height;
    } else if (fmt == FREENECT_VIDEO_IR_10BIT) {
        m.width = high ? 1280 : 640;
        m.height = high ? 1024 : 488;
        m.data_bits_per_pixel = 10;
        m.padding_bits_per_pixel = 6;
        m.bytes = m.width * m.height * 2;
    } else if (fmt == FREENECT_VIDEO_RGB) {
        m.width = high ? 1280 : 640;
        m.height = high ? 1024 : 480;
        m.data_bits_per_pixel = 24;
        m.bytes = m.width * m.height * 3;
    } else {
        m.is_valid = 0;
    }
    return m;
}

/* ------------------------------------------------------------------ wrapped libfreenect */

int __wrap_freenect_init(freenect_context **ctx, freenect_usb_context *usb);
int __wrap_freenect_shutdown(freenect_context *ctx);
void __wrap_freenect_set_log_level(freenect_context *ctx, freenect_loglevel level);
void __wrap_freenect_select_subdevices(freenect_context *ctx, freenect_device_flags subdevs);
int __wrap_freenect_process_events_timeout(freenect_context *ctx, struct timeval *timeout);
int __wrap_freenect_list_device_attributes(freenect_context *ctx,
                                           struct freenect_device_attributes **list);
void __wrap_freenect_free_device_attributes(struct freenect_device_attributes *list);
int __wrap_freenect_open_device(freenect_context *ctx, freenect_device **dev, int index);
int __wrap_freenect_open_device_by_camera_serial(freenect_context *ctx, freenect_device **dev,
                                                 const char *serial);
int __wrap_freenect_close_device(freenect_device *dev);
void __wrap_freenect_set_user(freenect_device *dev, void *user);
void *__wrap_freenect_get_user(freenect_device *dev);
void __wrap_freenect_set_depth_callback(freenect_device *dev, freenect_depth_cb cb);
void __wrap_freenect_set_video_callback(freenect_device *dev, freenect_video_cb cb);
freenect_frame_mode __wrap_freenect_find_depth_mode(freenect_resolution res,
                                                    freenect_depth_format fmt);
freenect_frame_mode __wrap_freenect_find_video_mode(freenect_resolution res,
                                                    freenect_video_format fmt);
int __wrap_freenect_set_depth_mode(freenect_device *dev, const freenect_frame_mode mode);
int __wrap_freenect_set_video_mode(freenect_device *dev, freenect_frame_mode mode);
int __wrap_freenect_start_depth(freenect_device *dev);
int __wrap_freenect_start_video(freenect_device *dev);
int __wrap_freenect_stop_depth(freenect_device *dev);
int __wrap_freenect_stop_video(freenect_device *dev);
int __wrap_freenect_set_led(freenect_device *dev, freenect_led_options option);
int __wrap_freenect_set_tilt_degs(freenect_device *dev, double angle);

int __wrap_freenect_init(freenect_context **ctx, freenect_usb_context *usb)
{
    assert_null(usb);
    *ctx = &fkn.ctx;
    pthread_mutex_lock(&fkn.lock);
    fkn.t0 = fake_kinect_now_ns();
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_shutdown(freenect_context *ctx)
{
    (void)ctx;
    return 0;
}
void __wrap_freenect_set_log_level(freenect_context *ctx, freenect_loglevel level)
{
    (void)ctx;
    (void)level;
}
void __wrap_freenect_select_subdevices(freenect_context *ctx, freenect_device_flags subdevs)
{
    ctx->subdevices = (int)subdevs;
}

/* Deliver a frame of every running stream that is due, from this thread (the callbacks run
 * under fkn.lock: they must not call a helper above; the backend's only take its own locks
 * and freenect_get_user, which does not lock). */
int __wrap_freenect_process_events_timeout(freenect_context *ctx, struct timeval *timeout)
{
    (void)ctx;
    (void)timeout;
    pthread_mutex_lock(&fkn.lock);
    fkn.events++;
    if (fkn.fail_events) {
        fkn.failed_events++;
        pthread_mutex_unlock(&fkn.lock);
        return -1;
    }
    uint64_t now = fake_kinect_now_ns();
    for (int i = 0; i < FAKE_KINECTS; i++) {
        fake_kinect *k = &fkn.k[i];
        if (!k->used || !k->open || (!k->depth_on && !k->video_on) || k->stall)
            continue;
        if (k->next_ns == 0) /* the first frame: the next instant of the common grid */
            k->next_ns = (now / FAKE_KINECT_PERIOD_NS + 1) * FAKE_KINECT_PERIOD_NS;
        if (now < k->next_ns)
            continue;
        /* frames on a 30 Hz grid of the Kinect's own clock; the delivery is late by however
         * long this thread took to come round (up to a few ms) */
        uint64_t grid = k->next_ns;
        while (k->next_ns <= now)
            k->next_ns += FAKE_KINECT_PERIOD_NS;
        /* frame counter: 60 MHz, offset per Kinect */
        uint32_t ts = (uint32_t)(uint64_t)((double)(grid - fkn.t0) * 0.06) +
                      0x10000000u * (uint32_t)i;
        uint32_t n = k->frame++;
        if (k->depth_on && k->depth_cb) {
            for (int p = 0; p < 640 * 480; p++)
                k->depth[p] = (uint16_t)((n + (uint32_t)p) & 0x7ff);
            k->depth_cb(&fkn.devs[i], k->depth, ts);
        }
        if (k->video_on && k->video_cb) {
            if (k->video_image && k->video_image_bytes >= (size_t)k->video_mode.bytes) {
                k->video_cb(&fkn.devs[i], k->video_image, ts);
            } else {
                memset(k->video, (int)(n & 0xff), (size_t)k->video_mode.bytes);
                k->video_cb(&fkn.devs[i], k->video, ts);
            }
        }
    }
    pthread_mutex_unlock(&fkn.lock);
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
    return 0;
}

int __wrap_freenect_list_device_attributes(freenect_context *ctx,
                                           struct freenect_device_attributes **list)
{
    (void)ctx;
    struct freenect_device_attributes *head = NULL, **tail = &head;
    int n = 0;
    pthread_mutex_lock(&fkn.lock);
    for (int i = 0; i < FAKE_KINECTS; i++)
        if (fkn.k[i].used) {
            struct freenect_device_attributes *a = calloc(1, sizeof *a);
            a->camera_serial = fkn.k[i].serial;
            *tail = a;
            tail = &a->next;
            n++;
        }
    pthread_mutex_unlock(&fkn.lock);
    *list = head;
    return n;
}

void __wrap_freenect_free_device_attributes(struct freenect_device_attributes *list)
{
    while (list) {
        struct freenect_device_attributes *next = list->next;
        free(list);
        list = next;
    }
}

/* Caller holds fkn.lock. */
static inline int fake_kinect_open(int i, freenect_device **dev)
{
    if (fkn.k[i].open)
        return -1; /* libfreenect cannot open one Kinect twice */
    fkn.k[i].open = true;
    fkn.k[i].opens++;
    *dev = &fkn.devs[i];
    return 0;
}

int __wrap_freenect_open_device(freenect_context *ctx, freenect_device **dev, int index)
{
    (void)ctx;
    int n = 0, rc = -1;
    pthread_mutex_lock(&fkn.lock);
    for (int i = 0; i < FAKE_KINECTS; i++)
        if (fkn.k[i].used && n++ == index) {
            rc = fake_kinect_open(i, dev);
            break;
        }
    pthread_mutex_unlock(&fkn.lock);
    return rc;
}

int __wrap_freenect_open_device_by_camera_serial(freenect_context *ctx, freenect_device **dev,
                                                 const char *serial)
{
    (void)ctx;
    int rc = -1;
    pthread_mutex_lock(&fkn.lock);
    for (int i = 0; i < FAKE_KINECTS; i++)
        if (fkn.k[i].used && !strcmp(fkn.k[i].serial, serial)) {
            rc = fake_kinect_open(i, dev);
            break;
        }
    pthread_mutex_unlock(&fkn.lock);
    return rc;
}

int __wrap_freenect_close_device(freenect_device *dev)
{
    pthread_mutex_lock(&fkn.lock);
    bool was_open = dev->k->open;
    dev->k->open = false;
    dev->k->closes++;
    dev->k->depth_on = dev->k->video_on = false;
    pthread_mutex_unlock(&fkn.lock);
    assert_true(was_open);
    return 0;
}

/* No locking in these two: freenect_get_user is called from the frame callbacks. */
void __wrap_freenect_set_user(freenect_device *dev, void *user) { dev->k->user = user; }
void *__wrap_freenect_get_user(freenect_device *dev) { return dev->k->user; }
void __wrap_freenect_set_depth_callback(freenect_device *dev, freenect_depth_cb cb)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->depth_cb = cb;
    pthread_mutex_unlock(&fkn.lock);
}
void __wrap_freenect_set_video_callback(freenect_device *dev, freenect_video_cb cb)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->video_cb = cb;
    pthread_mutex_unlock(&fkn.lock);
}
freenect_frame_mode __wrap_freenect_find_depth_mode(freenect_resolution res,
                                                    freenect_depth_format fmt)
{
    return fake_kinect_mode(res, fmt, true);
}
freenect_frame_mode __wrap_freenect_find_video_mode(freenect_resolution res,
                                                    freenect_video_format fmt)
{
    return fake_kinect_mode(res, fmt, false);
}
int __wrap_freenect_set_depth_mode(freenect_device *dev, const freenect_frame_mode mode)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->depth_mode = mode;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_set_video_mode(freenect_device *dev, freenect_frame_mode mode)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->video_mode = mode;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_start_depth(freenect_device *dev)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->depth_on = true;
    dev->k->depth_starts++;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_start_video(freenect_device *dev)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->video_on = true;
    dev->k->video_starts++;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_stop_depth(freenect_device *dev)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->depth_on = false;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_stop_video(freenect_device *dev)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->video_on = false;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_set_led(freenect_device *dev, freenect_led_options option)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->led = (int)option;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}
int __wrap_freenect_set_tilt_degs(freenect_device *dev, double angle)
{
    pthread_mutex_lock(&fkn.lock);
    dev->k->tilt = angle;
    dev->k->tilted = true;
    pthread_mutex_unlock(&fkn.lock);
    return 0;
}

#endif /* KINEMA_TESTS_FAKE_FREENECT_H */
