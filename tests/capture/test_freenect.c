/* The Kinect backend against a simulated libfreenect: every freenect_* function it calls is
 * wrapped at link time (-Wl,--wrap=freenect_...) and answered by fake Kinects that deliver
 * depth and video frames from freenect_process_events_timeout through the registered
 * callbacks, with a 60 MHz frame counter (tests/capture/fake_freenect.h, shared with the
 * pipeline's test tests/pipeline/test_kinect.c). Checked: listing, opening by serial and by index,
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

#include "fake_freenect.h"

static uint64_t now_ns(void) { return fake_kinect_now_ns(); }

/* ------------------------------------------------------------------ helpers */

static int setup(void **state)
{
    (void)state;
    fake_kinect_reset();
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
    fake_kinect *a = fake_kinect_add("A00362A04123045A");
    fake_kinect_add("B00367707417045B");
    km_status st;
    km_freenect_context *ctx = km_freenect_context_create(&st);
    assert_non_null(ctx);
    assert_int_equal(fkn.ctx.subdevices, FREENECT_DEVICE_MOTOR | FREENECT_DEVICE_CAMERA);
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
    assert_int_equal(fkn.k[1].depth_mode.depth_format, FREENECT_DEPTH_REGISTERED);
    km_source_destroy(src);
    byi.index = 5;
    assert_null(km_freenect_source_create(ctx, &byi, &st));
    assert_int_equal(st, KM_ERR_NOT_FOUND);
    km_freenect_context_destroy(ctx);
}

static void test_shared_device_and_two_kinects(void **state)
{
    (void)state;
    fake_kinect *a = fake_kinect_add("A1");
    fake_kinect *b = fake_kinect_add("B2");
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
    fake_kinect *a = fake_kinect_add("W");
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
    fake_kinect_stall(a, true);
    uint64_t end = now_ns() + 2000000000ull;
    while (a->depth_starts < 2 && now_ns() < end) {
        memset(&f, 0, sizeof f);
        f.data = frame_data;
        f.capacity = 640 * 480 * 2;
        km_source_next_frame(src, &f, 50000000ull);
    }
    assert_true(a->depth_starts >= 2); /* restarted */
    fake_kinect_stall(a, false);
    assert_int_equal(next(src, &f, 640 * 480 * 2), KM_OK);
    assert_true(km_source_connected(src));
    /* the event loop fails (Kinect unplugged): KM_ERR_DEVICE, no crash, and the source says
     * its device is gone (the pipeline reports the camera DISCONNECTED) */
    fake_kinect_fail_events(true);
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
    /* said once (again every 5 s), then the timeout waited out: the capture runner, which
     * logs every error, is not flooded */
    memset(&f, 0, sizeof f);
    f.data = frame_data;
    f.capacity = 640 * 480 * 2;
    uint64_t t = now_ns();
    assert_int_equal(km_source_next_frame(src, &f, 20000000ull), KM_ERR_AGAIN);
    assert_true(now_ns() - t >= 19000000ull);
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
