/* The Kinect backend against a simulated libfreenect: every freenect_* function it calls is
 * wrapped at link time (-Wl,--wrap=freenect_...) and answered by fake Kinects that deliver
 * depth and video frames from freenect_process_events_timeout through the registered
 * callbacks, with a 60 MHz frame counter. Checked: listing, opening by serial and by index,
 * the modes asked for (11-bit, registered mm, IR 8-bit, colour), the frames and their format,
 * time stamps mapped from the frame counter, LED off and tilt, two Kinects at once, one Kinect
 * shared by a depth and an IR source (opened once, closed once), IR and colour refused
 * together, the stall watchdog, and a failing event loop reported as KM_ERR_DEVICE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libfreenect.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinema/capture.h"

#define MAX_FAKE 4

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
    uint32_t frame;
    uint64_t next_ns;
    bool stall;
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
    fake_kinect k[MAX_FAKE];
    struct _freenect_device devs[MAX_FAKE];
    bool fail_events;
    uint64_t t0;
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static fake_kinect *fake_add(const char *serial)
{
    for (int i = 0; i < MAX_FAKE; i++)
        if (!fk.k[i].used) {
            memset(&fk.k[i], 0, sizeof fk.k[i]);
            fk.k[i].used = true;
            fk.k[i].led = -1;
            snprintf(fk.k[i].serial, sizeof fk.k[i].serial, "%s", serial);
            fk.devs[i].k = &fk.k[i];
            return &fk.k[i];
        }
    return NULL;
}

static freenect_frame_mode make_mode(freenect_resolution res, int fmt, bool depth)
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
    *ctx = &fk.ctx;
    fk.t0 = now_ns();
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

/* Deliver a frame of every running stream that is due (30 Hz), from this thread, as
 * libfreenect does from inside its event processing. */
int __wrap_freenect_process_events_timeout(freenect_context *ctx, struct timeval *timeout)
{
    (void)ctx;
    (void)timeout;
    pthread_mutex_lock(&fk.lock);
    bool fail = fk.fail_events;
    pthread_mutex_unlock(&fk.lock);
    if (fail)
        return -1;
    uint64_t now = now_ns();
    for (int i = 0; i < MAX_FAKE; i++) {
        fake_kinect *k = &fk.k[i];
        if (!k->used || !k->open || (!k->depth_on && !k->video_on) || k->stall)
            continue;
        if (k->next_ns == 0)
            k->next_ns = now;
        if (now < k->next_ns)
            continue;
        /* frames on a 30 Hz grid of the Kinect's own clock; the delivery is late by however
         * long this thread took to come round (up to a few ms) */
        uint64_t grid = k->next_ns;
        while (k->next_ns <= now)
            k->next_ns += 33333333;
        /* frame counter: 60 MHz, offset per Kinect */
        uint32_t ts = (uint32_t)(uint64_t)((double)(grid - fk.t0) * 0.06) +
                      0x10000000u * (uint32_t)i;
        uint32_t n = k->frame++;
        if (k->depth_on && k->depth_cb) {
            for (int p = 0; p < 640 * 480; p++)
                k->depth[p] = (uint16_t)((n + (uint32_t)p) & 0x7ff);
            k->depth_cb(&fk.devs[i], k->depth, ts);
        }
        if (k->video_on && k->video_cb) {
            memset(k->video, (int)(n & 0xff), (size_t)k->video_mode.bytes);
            k->video_cb(&fk.devs[i], k->video, ts);
        }
    }
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
    for (int i = 0; i < MAX_FAKE; i++)
        if (fk.k[i].used) {
            struct freenect_device_attributes *a = calloc(1, sizeof *a);
            a->camera_serial = fk.k[i].serial;
            *tail = a;
            tail = &a->next;
            n++;
        }
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

static int open_kinect(int i, freenect_device **dev)
{
    if (fk.k[i].open)
        return -1; /* libfreenect cannot open one Kinect twice */
    fk.k[i].open = true;
    fk.k[i].opens++;
    *dev = &fk.devs[i];
    return 0;
}

int __wrap_freenect_open_device(freenect_context *ctx, freenect_device **dev, int index)
{
    (void)ctx;
    int n = 0;
    for (int i = 0; i < MAX_FAKE; i++)
        if (fk.k[i].used && n++ == index)
            return open_kinect(i, dev);
    return -1;
}

int __wrap_freenect_open_device_by_camera_serial(freenect_context *ctx, freenect_device **dev,
                                                 const char *serial)
{
    (void)ctx;
    for (int i = 0; i < MAX_FAKE; i++)
        if (fk.k[i].used && !strcmp(fk.k[i].serial, serial))
            return open_kinect(i, dev);
    return -1;
}

int __wrap_freenect_close_device(freenect_device *dev)
{
    assert_true(dev->k->open);
    dev->k->open = false;
    dev->k->closes++;
    dev->k->depth_on = dev->k->video_on = false;
    return 0;
}

void __wrap_freenect_set_user(freenect_device *dev, void *user) { dev->k->user = user; }
void *__wrap_freenect_get_user(freenect_device *dev) { return dev->k->user; }
void __wrap_freenect_set_depth_callback(freenect_device *dev, freenect_depth_cb cb)
{
    dev->k->depth_cb = cb;
}
void __wrap_freenect_set_video_callback(freenect_device *dev, freenect_video_cb cb)
{
    dev->k->video_cb = cb;
}
freenect_frame_mode __wrap_freenect_find_depth_mode(freenect_resolution res,
                                                    freenect_depth_format fmt)
{
    return make_mode(res, fmt, true);
}
freenect_frame_mode __wrap_freenect_find_video_mode(freenect_resolution res,
                                                    freenect_video_format fmt)
{
    return make_mode(res, fmt, false);
}
int __wrap_freenect_set_depth_mode(freenect_device *dev, const freenect_frame_mode mode)
{
    dev->k->depth_mode = mode;
    return 0;
}
int __wrap_freenect_set_video_mode(freenect_device *dev, freenect_frame_mode mode)
{
    dev->k->video_mode = mode;
    return 0;
}
int __wrap_freenect_start_depth(freenect_device *dev)
{
    dev->k->depth_on = true;
    dev->k->depth_starts++;
    return 0;
}
int __wrap_freenect_start_video(freenect_device *dev)
{
    dev->k->video_on = true;
    dev->k->video_starts++;
    return 0;
}
int __wrap_freenect_stop_depth(freenect_device *dev)
{
    dev->k->depth_on = false;
    return 0;
}
int __wrap_freenect_stop_video(freenect_device *dev)
{
    dev->k->video_on = false;
    return 0;
}
int __wrap_freenect_set_led(freenect_device *dev, freenect_led_options option)
{
    dev->k->led = (int)option;
    return 0;
}
int __wrap_freenect_set_tilt_degs(freenect_device *dev, double angle)
{
    dev->k->tilt = angle;
    dev->k->tilted = true;
    return 0;
}

/* ------------------------------------------------------------------ helpers */

static int setup(void **state)
{
    (void)state;
    memset(fk.k, 0, sizeof fk.k);
    fk.fail_events = false;
    return 0;
}

static uint8_t *frame_data;

static km_status next(km_source *src, km_frame *f, size_t capacity)
{
    uint64_t end = now_ns() + 3000000000ull;
    for (;;) {
        memset(f, 0, sizeof *f);
        f->data = frame_data;
        f->capacity = capacity;
        km_status st = km_source_next_frame(src, f, 100000000ull);
        if (st != KM_ERR_AGAIN || now_ns() > end)
            return st;
    }
}

/* ------------------------------------------------------------------ tests */

static void test_list_and_depth(void **state)
{
    (void)state;
    fake_kinect *a = fake_add("A00362A04123045A");
    fake_add("B00367707417045B");
    km_status st;
    km_freenect_context *ctx = km_freenect_context_create(&st);
    assert_non_null(ctx);
    assert_int_equal(fk.ctx.subdevices, FREENECT_DEVICE_MOTOR | FREENECT_DEVICE_CAMERA);
    char serials[4][KM_NAME_MAX];
    int n = 0;
    assert_int_equal(km_freenect_list(ctx, serials, 4, &n), KM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(serials[1], "B00367707417045B");
    assert_int_equal(km_freenect_list(ctx, serials, 1, &n), KM_ERR_CAPACITY);

    km_freenect_config cfg = km_freenect_config_default();
    snprintf(cfg.serial, sizeof cfg.serial, "A00362A04123045A");
    cfg.camera = 4;
    cfg.set_tilt = true;
    cfg.tilt_deg = -10;
    km_source *src = km_freenect_source_create(ctx, &cfg, &st);
    assert_non_null(src);
    assert_int_equal(a->led, LED_OFF);
    assert_true(a->tilted);
    assert_true(a->tilt == -10);
    assert_int_equal(a->depth_mode.depth_format, FREENECT_DEPTH_11BIT);
    km_source_info info;
    km_source_describe(src, &info);
    assert_string_equal(info.backend, "freenect");
    assert_string_equal(info.serial, "A00362A04123045A");
    assert_int_equal(info.format, KM_PIXEL_GRAY16);
    assert_int_equal(info.width, 640);
    assert_int_equal(info.max_frame_bytes, 640 * 480 * 2);
    assert_int_equal(km_source_start(src), KM_OK);
    km_frame f;
    uint64_t last_time = 0, last_arrival = 0;
    long long worst_time = 0, worst_arrival = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(next(src, &f, 640 * 480 * 2), KM_OK);
        assert_int_equal(f.camera, 4);
        assert_int_equal(f.format, KM_PIXEL_GRAY16);
        assert_int_equal(f.stride, 1280);
        assert_int_equal(f.size, 640 * 480 * 2);
        const uint16_t *px = (const uint16_t *)f.data;
        uint16_t first = px[0];
        assert_int_equal(px[1000], (uint16_t)((first + 1000) & 0x7ff));
        assert_true(f.time_ns <= f.arrival_ns);
        /* time_ns follows the Kinect's frame counter, not the callback's jitter: once the fit
         * has a few frames, consecutive stamps are the counter's 33.333 ms apart */
        if (i >= 8) {
            int64_t step = (int64_t)(f.time_ns - last_time);
            int64_t arrival_step = (int64_t)(f.arrival_ns - last_arrival);
            if (llabs(step - 33333333) > worst_time)
                worst_time = llabs(step - 33333333);
            if (llabs(arrival_step - 33333333) > worst_arrival)
                worst_arrival = llabs(arrival_step - 33333333);
            if (llabs(step - 33333333) > 1000000)
                fail_msg("frame %d: %lld us after the previous one", i, (long long)step / 1000);
        }
        last_time = f.time_ns;
        last_arrival = f.arrival_ns;
    }
    print_message("frame period error: time_ns %lld us, arrival %lld us (worst)\n",
                  worst_time / 1000, worst_arrival / 1000);
    km_source_destroy(src);
    assert_int_equal(a->closes, 1);
    assert_false(a->depth_on);

    /* by index, registered millimetres */
    km_freenect_config byi = km_freenect_config_default();
    byi.index = 1;
    byi.stream = KM_FREENECT_DEPTH_REGISTERED;
    src = km_freenect_source_create(ctx, &byi, &st);
    assert_non_null(src);
    km_source_describe(src, &info);
    assert_string_equal(info.serial, "B00367707417045B");
    assert_int_equal(info.format, KM_PIXEL_DEPTH16);
    assert_int_equal(fk.k[1].depth_mode.depth_format, FREENECT_DEPTH_REGISTERED);
    km_source_destroy(src);
    byi.index = 5;
    assert_null(km_freenect_source_create(ctx, &byi, &st));
    assert_int_equal(st, KM_ERR_NOT_FOUND);
    km_freenect_context_destroy(ctx);
}

static void test_shared_device_and_two_kinects(void **state)
{
    (void)state;
    fake_kinect *a = fake_add("A1");
    fake_kinect *b = fake_add("B2");
    km_status st;
    km_freenect_context *ctx = km_freenect_context_create(&st);
    km_freenect_config depth = km_freenect_config_default();
    snprintf(depth.serial, sizeof depth.serial, "A1");
    km_freenect_config ir = depth;
    ir.stream = KM_FREENECT_IR_8BIT;
    ir.camera = 1;
    km_freenect_config rgb = depth;
    rgb.stream = KM_FREENECT_VIDEO_RGB;
    km_freenect_config other = km_freenect_config_default();
    snprintf(other.serial, sizeof other.serial, "B2");
    other.stream = KM_FREENECT_VIDEO_RGB;
    other.high_resolution = true;
    other.camera = 2;
    km_source *sd = km_freenect_source_create(ctx, &depth, &st);
    km_source *si = km_freenect_source_create(ctx, &ir, &st);
    assert_non_null(sd);
    assert_non_null(si);
    assert_int_equal(a->opens, 1); /* one device, two streams */
    /* IR and colour share the video stream */
    assert_null(km_freenect_source_create(ctx, &rgb, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    km_source *so = km_freenect_source_create(ctx, &other, &st);
    assert_non_null(so);
    km_source_info info;
    km_source_describe(si, &info);
    assert_int_equal(info.format, KM_PIXEL_GRAY8);
    assert_int_equal(info.height, 488);
    km_source_describe(so, &info);
    assert_int_equal(info.format, KM_PIXEL_RGB24);
    assert_int_equal(info.width, 1280);
    assert_int_equal(b->video_mode.video_format, FREENECT_VIDEO_RGB);
    assert_int_equal(km_source_start(sd), KM_OK);
    assert_int_equal(km_source_start(si), KM_OK);
    assert_int_equal(km_source_start(so), KM_OK);
    km_frame f;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(next(sd, &f, 1280 * 1024 * 3), KM_OK);
        assert_int_equal(f.format, KM_PIXEL_GRAY16);
        assert_int_equal(next(si, &f, 1280 * 1024 * 3), KM_OK);
        assert_int_equal(f.format, KM_PIXEL_GRAY8);
        assert_int_equal(f.size, 640 * 488);
        assert_int_equal(f.data[0], f.data[640 * 488 - 1]);
        assert_int_equal(next(so, &f, 1280 * 1024 * 3), KM_OK);
        assert_int_equal(f.camera, 2);
        assert_int_equal(f.size, 1280 * 1024 * 3);
    }
    /* a frame buffer too small is refused, not overrun */
    memset(&f, 0, sizeof f);
    f.data = frame_data;
    f.capacity = 100;
    assert_int_equal(km_source_next_frame(so, &f, 1000000), KM_ERR_INVALID_ARGUMENT);
    km_source_destroy(sd);
    assert_int_equal(a->closes, 0); /* still used by the IR source */
    km_source_destroy(si);
    assert_int_equal(a->closes, 1);
    km_source_destroy(so);
    assert_int_equal(b->closes, 1);
    km_freenect_context_destroy(ctx);
}

static void test_watchdog_and_failure(void **state)
{
    (void)state;
    fake_kinect *a = fake_add("W");
    km_status st;
    km_freenect_context *ctx = km_freenect_context_create(&st);
    km_freenect_config cfg = km_freenect_config_default();
    cfg.watchdog_s = 0.2;
    cfg.led_off = false;
    km_source *src = km_freenect_source_create(ctx, &cfg, &st);
    assert_int_equal(a->led, -1);
    assert_int_equal(km_source_start(src), KM_OK);
    km_frame f;
    assert_int_equal(next(src, &f, 640 * 480 * 2), KM_OK);
    pthread_mutex_lock(&fk.lock);
    a->stall = true;
    pthread_mutex_unlock(&fk.lock);
    uint64_t end = now_ns() + 2000000000ull;
    while (a->depth_starts < 2 && now_ns() < end) {
        memset(&f, 0, sizeof f);
        f.data = frame_data;
        f.capacity = 640 * 480 * 2;
        km_source_next_frame(src, &f, 50000000ull);
    }
    assert_true(a->depth_starts >= 2); /* restarted */
    pthread_mutex_lock(&fk.lock);
    a->stall = false;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(next(src, &f, 640 * 480 * 2), KM_OK);
    assert_true(km_source_connected(src));
    /* the event loop fails (Kinect unplugged): KM_ERR_DEVICE, no crash, and the source says
     * its device is gone (the pipeline reports the camera DISCONNECTED) */
    pthread_mutex_lock(&fk.lock);
    fk.fail_events = true;
    pthread_mutex_unlock(&fk.lock);
    km_status r = KM_OK;
    end = now_ns() + 2000000000ull;
    while (r != KM_ERR_DEVICE && now_ns() < end) {
        memset(&f, 0, sizeof f);
        f.data = frame_data;
        f.capacity = 640 * 480 * 2;
        r = km_source_next_frame(src, &f, 20000000ull);
    }
    assert_int_equal(r, KM_ERR_DEVICE);
    assert_false(km_source_connected(src));
    km_source_destroy(src);
    km_freenect_context_destroy(ctx);
}

static void test_config_read(void **state)
{
    (void)state;
    const char *text = "sources:\n"
                       "  - type: freenect\n"
                       "    serial: A00362A04123045A\n"
                       "    stream: depth_registered\n"
                       "    camera: 3\n"
                       "    tilt_deg: 5\n"
                       "    led_off: false\n"
                       "  - type: freenect\n"
                       "    stream: sonar\n"
                       "  - type: freenect\n"
                       "    tilt_deg: 40\n";
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "k.yaml", &st);
    assert_non_null(cfg);
    km_freenect_config c = km_freenect_config_default();
    assert_int_equal(km_freenect_config_read(cfg, "sources.0", &c), KM_OK);
    assert_string_equal(c.serial, "A00362A04123045A");
    assert_int_equal(c.stream, KM_FREENECT_DEPTH_REGISTERED);
    assert_int_equal(c.camera, 3);
    assert_true(c.set_tilt && c.tilt_deg == 5);
    assert_false(c.led_off);
    c = km_freenect_config_default();
    assert_int_equal(km_freenect_config_read(cfg, "sources.1", &c), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "k.yaml:9"));
    assert_int_equal(km_freenect_config_read(cfg, "sources.2", &c), KM_ERR_PARSE);
    km_config_destroy(cfg);
}

int main(void)
{
    frame_data = malloc(1280 * 1024 * 3);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list_and_depth, setup),
        cmocka_unit_test_setup(test_shared_device_and_two_kinects, setup),
        cmocka_unit_test_setup(test_watchdog_and_failure, setup),
        cmocka_unit_test_setup(test_config_read, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(frame_data);
    return rc;
}
