/* The UVC backend against a simulated libusb: every libusb function the backend calls is
 * wrapped at link time (-Wl,--wrap=libusb_...) and answered by fake cameras built from the UVC
 * 1.5 specification (tests/capture/uvc_spec_descriptors.h) or from a real camera's
 * descriptors (the C920 fixture). The fake streams isochronous (or bulk) payloads with
 * FID/EOF/PTS/SCR headers from a 48 MHz device clock, and can lose packets, leave out EOF,
 * stall, or be unplugged and plugged back in (hot-plug events from the event thread, as real
 * libusb delivers them).
 *
 * Checked: enumeration (VID/PID, serial, bus-port path, modes); opening by serial and path;
 * the probe/commit bytes sent and the alternate setting chosen; refusal of a mode or a second
 * camera the bus cannot carry; frames reassembled with their pixels, sequence numbers and
 * PTS-mapped time stamps; lost packets (dropped or flagged); frames ended by FID toggles;
 * bulk streaming; exposure/gain/rate controls; disconnect mid-stream (KM_ERR_DEVICE, the other
 * camera keeps running under the capture runner) and reattachment through the hot-plug
 * callback; the stall watchdog. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libusb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinema/capture.h"
#include "fake_usb.h"


/* ------------------------------------------------------------------ helpers */

static int setup(void **state)
{
    (void)state;
    fake_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(fk.open_handles, 0);
    fake_reset();
    return 0;
}

typedef struct frame_buf {
    km_frame f;
    uint8_t data[FRAME_BYTES * 2];
} frame_buf;

static void frame_init(frame_buf *b)
{
    memset(&b->f, 0, sizeof b->f);
    b->f.data = b->data;
    b->f.capacity = sizeof b->data;
}

/* Next frame within 2 s; checks its pixels say the frame number. */
static km_status next(km_source *src, frame_buf *b)
{
    uint64_t end = now_ns() + 2000000000ull;
    for (;;) {
        frame_init(b);
        km_status st = km_source_next_frame(src, &b->f, 50000000ull);
        if (st != KM_ERR_AGAIN || now_ns() > end)
            return st;
    }
}

/* Whole frame, every pixel the frame number the fake camera wrote. */
static void check_pixels(const km_frame *f)
{
    assert_int_equal(f->size, FRAME_BYTES);
    uint8_t v = f->data[0];
    for (size_t i = 0; i < f->size; i++)
        if (f->data[i] != v)
            fail_msg("frame %llu: byte %zu is %u, expected %u", (unsigned long long)f->sequence,
                     i, f->data[i], v);
}

/* ------------------------------------------------------------------ tests */

static void test_enumeration(void **state)
{
    (void)state;
    fake_add_spec(1, 2, 3, "CAM-A", false);
    size_t n;
    uint8_t *c920 = NULL;
    {
        const char *src = getenv("KINEMA_SOURCE_DIR");
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/capture/fixtures/uvc/logitech_hd_pro_920.config.bin",
                 src ? src : ".");
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        c920 = malloc(4096);
        n = fread(c920, 1, 4096, fp);
        fclose(fp);
    }
    fake_dev *b = fake_add(2, 1, 0, "E1CA2A7F", c920, n);
    b->vid = 0x046d;
    b->pid = 0x082d;
    fake_add(1, 4, 0, "KEYBOARD", NULL, 0); /* not a camera */
    fake_dev *d = fake_add_spec(3, 1, 0, "LOCKED", false);
    d->open_denied = true;
    free(c920);

    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    assert_non_null(ctx);
    static km_uvc_device_info list[8];
    int count = 0;
    assert_int_equal(km_uvc_list(ctx, list, 8, &count), KM_OK);
    assert_int_equal(count, 3);
    assert_string_equal(list[0].path, "1-2.3");
    assert_string_equal(list[0].serial, "CAM-A");
    assert_int_equal(list[0].bus, 1);
    assert_true(list[0].opened);
    assert_int_equal(list[0].uvc_version, 0x0150);
    assert_int_equal(list[0].mode_count, 1);
    assert_int_equal(list[0].modes[0].format, KM_PIXEL_GRAY8);
    assert_int_equal(list[0].modes[0].width, 64);
    assert_true(list[0].modes[0].max_rate_hz > 119.9 && list[0].modes[0].max_rate_hz < 120.1);
    assert_true(list[0].modes[0].min_rate_hz > 29.9 && list[0].modes[0].min_rate_hz < 30.1);
    assert_int_equal(list[1].vendor_id, 0x046d);
    assert_int_equal(list[1].product_id, 0x082d);
    assert_string_equal(list[1].path, "2-1");
    assert_string_equal(list[1].serial, "E1CA2A7F");
    assert_int_equal(list[1].mode_count, 19 + 17 + 17);
    assert_string_equal(list[1].modes[0].fourcc, "YUY2");
    assert_string_equal(list[1].modes[19].fourcc, "H264");
    assert_int_equal(list[1].modes[19].format, KM_PIXEL_FORMAT_COUNT);
    assert_int_equal(list[1].modes[36].format, KM_PIXEL_MJPEG);
    assert_false(list[2].opened);
    assert_string_equal(list[2].serial, "");
    /* too small an array */
    assert_int_equal(km_uvc_list(ctx, list, 1, &count), KM_ERR_CAPACITY);
    assert_int_equal(count, 1);
    km_uvc_context_destroy(ctx);
}

static void test_open_and_negotiate(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 2, 3, "CAM-A", false);
    fake_add_spec(1, 2, 4, "CAM-B", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    snprintf(cfg.serial, sizeof cfg.serial, "CAM-A");
    cfg.rate_hz = 60;
    cfg.camera = 3;
    km_uvc_camera *cam = NULL;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    if (!src)
        fail_msg("%s", km_last_error());
    assert_non_null(cam);
    /* probe: 48 bytes (bcdUVC 1.5), bmHint 1, format 1, frame 1, 166666 x 100 ns */
    const control_log *p = last_log(0x21, KM_UVC_SET_CUR, 0x0100);
    assert_non_null(p);
    assert_int_equal(p->length, 48);
    assert_int_equal(p->index, 1); /* the streaming interface */
    static const uint8_t want[8] = {0x01, 0x00, 0x01, 0x01, 0x0a, 0x8b, 0x02, 0x00};
    assert_memory_equal(p->data, want, 8);
    assert_non_null(last_log(0xa1, KM_UVC_GET_CUR, 0x0100));
    /* commit = what the camera answered (dwMaxPayloadTransferSize 1000) */
    const control_log *c = last_log(0x21, KM_UVC_SET_CUR, 0x0200);
    assert_non_null(c);
    assert_int_equal(c->length, 48);
    assert_memory_equal(c->data, want, 8);
    assert_int_equal(c->data[22] | (c->data[23] << 8), 1000);
    km_source_info info;
    km_source_describe(src, &info);
    assert_string_equal(info.backend, "uvc");
    assert_string_equal(info.serial, "CAM-A");
    assert_int_equal(info.camera, 3);
    assert_int_equal(info.width, 64);
    assert_int_equal(info.format, KM_PIXEL_GRAY8);
    assert_int_equal(info.max_frame_bytes, FRAME_BYTES);
    assert_true(info.rate_hz > 59.9 && info.rate_hz < 60.1);
    /* the alternate setting is chosen at start: 1000 bytes need the 1024-byte setting 2 */
    assert_int_equal(km_source_start(src), KM_OK);
    assert_int_equal(a->alt, 2);
    km_source_destroy(src);
    assert_int_equal(a->alt, 0);

    /* by USB path */
    km_uvc_config byp = km_uvc_config_default();
    snprintf(byp.path, sizeof byp.path, "1-2.4");
    src = km_uvc_source_create(ctx, &byp, NULL, &st);
    assert_non_null(src);
    km_source_describe(src, &info);
    assert_string_equal(info.serial, "CAM-B");
    km_source_destroy(src);
    /* nobody with this serial: the message lists who is there */
    snprintf(cfg.serial, sizeof cfg.serial, "NOPE");
    assert_null(km_uvc_source_create(ctx, &cfg, NULL, &st));
    assert_int_equal(st, KM_ERR_NOT_FOUND);
    assert_non_null(strstr(km_last_error(), "CAM-A"));
    /* a mode the camera lacks */
    km_uvc_config big = km_uvc_config_default();
    big.width = 640;
    big.height = 480;
    assert_null(km_uvc_source_create(ctx, &big, NULL, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    km_uvc_context_destroy(ctx);
}

static void test_bandwidth_refusal(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 1, 0, "A", false);
    fake_dev *b = fake_add_spec(1, 2, 0, "B", false);
    fake_dev *c = fake_add_spec(2, 1, 0, "C", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    /* more than any alternate setting carries */
    a->max_payload = 4000;
    snprintf(cfg.serial, sizeof cfg.serial, "A");
    assert_null(km_uvc_source_create(ctx, &cfg, NULL, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "needs 4000 bytes per microframe"));
    assert_non_null(strstr(km_last_error(), "3072"));
    /* two 3 x 1024 cameras on bus 1: the second is refused, bus 2 is fine */
    a->max_payload = 3000;
    b->max_payload = 3000;
    c->max_payload = 3000;
    km_source *sa = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_non_null(sa);
    snprintf(cfg.serial, sizeof cfg.serial, "B");
    assert_null(km_uvc_source_create(ctx, &cfg, NULL, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "bus 1"));
    assert_non_null(strstr(km_last_error(), "needs 3072 bytes per microframe, 2928 of 6000"));
    snprintf(cfg.serial, sizeof cfg.serial, "C");
    km_source *sc = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_non_null(sc);
    /* once A is gone its bandwidth is free again */
    km_source_destroy(sa);
    snprintf(cfg.serial, sizeof cfg.serial, "B");
    km_source *sb = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_non_null(sb);
    km_source_destroy(sb);
    km_source_destroy(sc);
    km_uvc_context_destroy(ctx);
}

static void test_streaming_and_timestamps(void **state)
{
    (void)state;
    fake_add_spec(1, 1, 0, "S", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_non_null(src);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    uint64_t last_seq = 0;
    int checked_time = 0;
    uint64_t t_start = now_ns();
    for (int i = 0; i < 500; i++) {
        assert_int_equal(next(src, &b), KM_OK);
        check_pixels(&b.f);
        /* one stream, no restart: the sequence counts the camera's frames from 0 */
        assert_int_equal(b.f.data[0], (uint8_t)b.f.sequence);
        assert_int_equal(b.f.flags, 0);
        assert_int_equal(b.f.width, 64);
        assert_int_equal(b.f.stride, 64);
        if (i > 0)
            assert_true(b.f.sequence > last_seq);
        last_seq = b.f.sequence;
        /* PTS: exposure 3 ms before the frame's first payload, which went over the bus up to
         * 8 microframes before the transfer completed */
        if (now_ns() - t_start > 100000000ull) {
            int64_t lead = (int64_t)b.f.arrival_ns - (int64_t)b.f.time_ns;
            if (lead < 2500000 || lead > 6000000)
                fail_msg("frame %llu: time_ns %lld us before arrival, expected 3..4 ms",
                         (unsigned long long)b.f.sequence, (long long)lead / 1000);
            checked_time++;
        }
    }
    km_uvc_stats s;
    km_uvc_camera_stats(cam, &s);
    print_message("500 frames, %d time-checked; clock %+.1f ppm (fake: +30)\n", checked_time,
                  s.clock_ppm);
    assert_true(s.frames >= 500);
    assert_true(s.clock_ppm > -200 && s.clock_ppm < 260);
    assert_true(s.connected);
    assert_true(s.clock_valid);
    assert_true(checked_time > 20);
    assert_int_equal(s.lost_packets, 0);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_lost_packets_and_fid(void **state)
{
    (void)state;
    fake_dev *f = fake_add_spec(1, 1, 0, "L", false);
    f->lose_every = 3;
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(next(src, &b), KM_OK);
        check_pixels(&b.f); /* only whole frames come out */
        assert_true(b.f.data[0] % 3 != 1); /* the fake damages frames 1, 4, 7, ... */
    }
    km_uvc_stats s;
    km_uvc_camera_stats(cam, &s);
    assert_true(s.lost_packets >= 9);
    assert_true(s.dropped_incomplete >= 9);
    assert_int_equal(s.incomplete, 0);
    km_source_destroy(src);

    /* delivered flagged instead; and a camera that never sets EOF */
    pthread_mutex_lock(&fk.lock);
    f->no_eof = true;
    pthread_mutex_unlock(&fk.lock);
    cfg.deliver_incomplete = true;
    src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    int flagged = 0, whole = 0;
    for (int i = 0; i < 30; i++) {
        km_status r = next(src, &b);
        if (r != KM_OK) {
            km_uvc_camera_stats(cam, &s);
            fail_msg("frame %d: %s; frames %llu lost %llu dropped %llu/%llu/%llu hdr %llu", i,
                     km_status_name(r), (unsigned long long)s.frames,
                     (unsigned long long)s.lost_packets,
                     (unsigned long long)s.dropped_incomplete,
                     (unsigned long long)s.dropped_overlong,
                     (unsigned long long)s.dropped_no_buffer,
                     (unsigned long long)s.header_errors);
        }
        if (b.f.flags & KM_FRAME_FLAG_INCOMPLETE) {
            flagged++;
            assert_true(b.f.size <= FRAME_BYTES);
        } else {
            check_pixels(&b.f);
            whole++;
        }
    }
    assert_true(flagged >= 5);
    assert_true(whole >= 15);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_bulk(void **state)
{
    (void)state;
    fake_dev *f = fake_add_spec(1, 1, 0, "BULK", true);
    f->max_payload = 1024;
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    km_source *src = km_uvc_source_create(ctx, &cfg, NULL, &st);
    if (!src)
        fail_msg("%s", km_last_error());
    assert_int_equal(km_source_start(src), KM_OK);
    assert_int_equal(f->alt_changes, 0); /* bulk streams stay in setting 0 */
    static frame_buf b;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(next(src, &b), KM_OK);
        check_pixels(&b.f);
    }
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_controls(void **state)
{
    (void)state;
    fake_add_spec(1, 1, 0, "CTL", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.exposure_us = 1000;
    cfg.gain = 100;
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_non_null(src);
    /* AE mode manual on the camera terminal (unit 1, interface 0) */
    const control_log *l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_CT_AE_MODE_CONTROL << 8, 0x0100);
    assert_non_null(l);
    assert_int_equal(l->index, 0x0100);
    assert_int_equal(l->length, 1);
    assert_int_equal(l->data[0], KM_UVC_AE_MODE_MANUAL);
    /* exposure 1000 us = 10 x 100 us */
    l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL << 8, 0x0100);
    assert_non_null(l);
    assert_int_equal(l->index, 0x0100);
    assert_int_equal(l->length, 4);
    assert_int_equal(l->data[0], 10);
    /* gain on the processing unit (unit 2) */
    l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_PU_GAIN_CONTROL << 8, 0x0200);
    assert_non_null(l);
    assert_int_equal(l->index, 0x0200);
    assert_int_equal(l->data[0], 100);
    /* at run time */
    assert_int_equal(km_uvc_camera_set_exposure(cam, 250), KM_OK);
    l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL << 8, 0x0100);
    assert_int_equal(l->data[0], 3); /* 250 us rounds to 300 us */
    assert_int_equal(km_uvc_camera_set_exposure(cam, 2e6), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "100..1000000 us"));
    assert_int_equal(km_uvc_camera_set_gain(cam, 300), KM_ERR_INVALID_ARGUMENT);
    /* frame rate by a new probe, also while streaming */
    assert_int_equal(km_source_start(src), KM_OK);
    int probes = count_log(0x21, KM_UVC_SET_CUR, 0x0100);
    assert_int_equal(km_uvc_camera_set_rate(cam, 120), KM_OK);
    assert_int_equal(count_log(0x21, KM_UVC_SET_CUR, 0x0100), probes + 1);
    l = last_log(0x21, KM_UVC_SET_CUR, 0x0100);
    uint32_t iv = (uint32_t)(l->data[4] | (l->data[5] << 8) | (l->data[6] << 16));
    assert_int_equal(iv, 83333);
    km_source_info info;
    km_source_describe(src, &info);
    assert_true(info.rate_hz > 119 && info.rate_hz < 121);
    static frame_buf b;
    assert_int_equal(next(src, &b), KM_OK);
    check_pixels(&b.f);
    km_source_destroy(src);

    /* a camera without the controls */
    uvc_blob x;
    uvc_spec_options o = {.small_only = true};
    uvc_spec_build(&x, &o);
    for (size_t off = x.b[0]; off < x.n; off += x.b[off])
        if (x.b[off + 1] == 0x24 && x.b[off + 2] == 0x02 && x.b[off] >= 18)
            x.b[off + 15] = 0; /* camera terminal bmControls */
    fake_add(1, 5, 0, "NOCTL", x.b, x.n);
    km_uvc_config plain = km_uvc_config_default();
    snprintf(plain.serial, sizeof plain.serial, "NOCTL");
    src = km_uvc_source_create(ctx, &plain, &cam, &st);
    assert_non_null(src);
    assert_int_equal(km_uvc_camera_set_exposure(cam, 500), KM_ERR_UNSUPPORTED);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_disconnect_and_reattach(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 1, 0, "A", false);
    fake_add_spec(2, 1, 0, "B", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    snprintf(cfg.serial, sizeof cfg.serial, "A");
    km_uvc_camera *cam_a, *cam_b;
    km_source *sa = km_uvc_source_create(ctx, &cfg, &cam_a, &st);
    snprintf(cfg.serial, sizeof cfg.serial, "B");
    cfg.camera = 1;
    km_source *sb = km_uvc_source_create(ctx, &cfg, &cam_b, &st);
    assert_non_null(sa);
    assert_non_null(sb);
    /* both under the capture runner, one thread each */
    km_capture *ca = km_capture_create(sa, 4, &st);
    km_capture *cb = km_capture_create(sb, 4, &st);
    assert_int_equal(km_capture_start(ca), KM_OK);
    assert_int_equal(km_capture_start(cb), KM_OK);
    uint64_t got_a = 0, got_b = 0;
    uint64_t end = now_ns() + 3000000000ull;
    while ((got_a < 20 || got_b < 20) && now_ns() < end) {
        km_frame *f;
        while ((f = km_capture_pop(ca))) {
            check_pixels(f);
            got_a++;
            km_capture_release(ca, f);
        }
        while ((f = km_capture_pop(cb))) {
            got_b++;
            km_capture_release(cb, f);
        }
        sleep_us(2000);
    }
    assert_true(got_a >= 20 && got_b >= 20);

    /* A is pulled out mid-stream */
    fake_unplug(a);
    end = now_ns() + 2000000000ull;
    km_uvc_stats s;
    do {
        sleep_us(5000);
        km_uvc_camera_stats(cam_a, &s);
    } while (s.connected && now_ns() < end);
    assert_false(s.connected);
    assert_false(km_source_connected(sa)); /* what the pipeline asks (any backend) */
    assert_true(km_source_connected(sb));
    /* A's runner reports the error; B keeps delivering meanwhile */
    km_capture_stats cs;
    end = now_ns() + 2000000000ull;
    do {
        sleep_us(5000);
        km_capture_stats_get(ca, &cs);
    } while (cs.errors == 0 && now_ns() < end);
    assert_true(cs.errors >= 1);
    uint64_t b_before = got_b;
    end = now_ns() + 300000000ull;
    while (now_ns() < end) {
        km_frame *f;
        while ((f = km_capture_pop(ca)))
            km_capture_release(ca, f);
        while ((f = km_capture_pop(cb))) {
            got_b++;
            km_capture_release(cb, f);
        }
        sleep_us(2000);
    }
    assert_true(got_b > b_before + 10);
    km_uvc_camera_stats(cam_a, &s);
    assert_int_equal(s.disconnects, 1);
    int probes_before = count_log(0x21, KM_UVC_SET_CUR, 0x0100);

    /* A comes back (a new libusb_device): reattached through the hot-plug callback */
    fake_replug(a);
    uint64_t a_after = 0;
    end = now_ns() + 3000000000ull;
    while (a_after < 10 && now_ns() < end) {
        km_frame *f;
        while ((f = km_capture_pop(ca))) {
            check_pixels(f);
            a_after++;
            km_capture_release(ca, f);
        }
        while ((f = km_capture_pop(cb)))
            km_capture_release(cb, f);
        sleep_us(2000);
    }
    assert_true(a_after >= 10);
    km_uvc_camera_stats(cam_a, &s);
    assert_true(s.connected);
    assert_true(km_source_connected(sa));
    assert_int_equal(s.reattaches, 1);
    assert_true(count_log(0x21, KM_UVC_SET_CUR, 0x0100) > probes_before); /* renegotiated */
    assert_int_equal(a->alt, 2);
    km_capture_destroy(ca);
    km_capture_destroy(cb);
    km_uvc_context_destroy(ctx);
}

/* Without the runner: exactly one KM_ERR_DEVICE, then KM_ERR_AGAIN while it is away. */
static void test_disconnect_direct(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 1, 0, "D", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    km_source *src = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    assert_int_equal(next(src, &b), KM_OK);
    fake_unplug(a);
    int device_errors = 0, again = 0;
    for (int i = 0; i < 20; i++) {
        frame_init(&b);
        km_status r = km_source_next_frame(src, &b.f, 20000000ull);
        if (r == KM_ERR_DEVICE) {
            device_errors++;
            assert_non_null(strstr(km_last_error(), "disconnected"));
        } else if (r == KM_ERR_AGAIN && device_errors) {
            again++;
        }
    }
    assert_int_equal(device_errors, 1);
    assert_true(again >= 10);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_watchdog(void **state)
{
    (void)state;
    fake_dev *f = fake_add_spec(1, 1, 0, "W", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    cfg.rate_hz = 120; /* 10 periods = 83 ms, so the 200 ms floor applies */
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    assert_int_equal(next(src, &b), KM_OK);
    int probes = count_log(0x21, KM_UVC_SET_CUR, 0x0100);
    pthread_mutex_lock(&fk.lock);
    f->stall = true; /* the camera keeps answering with empty packets */
    pthread_mutex_unlock(&fk.lock);
    km_uvc_stats s;
    uint64_t end = now_ns() + 2000000000ull;
    do {
        frame_init(&b);
        km_source_next_frame(src, &b.f, 50000000ull);
        km_uvc_camera_stats(cam, &s);
    } while (s.restarts == 0 && now_ns() < end);
    assert_true(s.restarts >= 1);
    assert_true(count_log(0x21, KM_UVC_SET_CUR, 0x0100) > probes);
    pthread_mutex_lock(&fk.lock);
    f->stall = false;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(next(src, &b), KM_OK);
    check_pixels(&b.f);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_config_read(void **state)
{
    (void)state;
    const char *text = "sources:\n"
                       "  - type: uvc\n"
                       "    camera: 2\n"
                       "    serial: \"E1CA2A7F\"\n"
                       "    format: gray8\n"
                       "    width: 640\n"
                       "    height: 480\n"
                       "    rate_hz: 120\n"
                       "    exposure_us: 500\n"
                       "    gain: 16\n"
                       "    deliver_incomplete: true\n"
                       "  - type: uvc\n"
                       "    format: rgb\n"
                       "  - type: uvc\n"
                       "    exposur_us: 5\n";
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "test.yaml", &st);
    assert_non_null(cfg);
    km_uvc_config c = km_uvc_config_default();
    assert_int_equal(km_uvc_config_read(cfg, "sources.0", &c), KM_OK);
    assert_int_equal(c.camera, 2);
    assert_string_equal(c.serial, "E1CA2A7F");
    assert_int_equal(c.format, KM_PIXEL_GRAY8);
    assert_int_equal(c.width, 640);
    assert_true(c.rate_hz == 120);
    assert_true(c.exposure_us == 500);
    assert_int_equal(c.gain, 16);
    assert_true(c.deliver_incomplete);
    assert_int_equal(c.transfers, 4);
    c = km_uvc_config_default();
    assert_int_equal(km_uvc_config_read(cfg, "sources.1", &c), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "test.yaml:13"));
    assert_int_equal(km_uvc_config_read(cfg, "sources.2", &c), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "exposure_us"));
    km_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enumeration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_and_negotiate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bandwidth_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_and_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_packets_and_fid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_and_reattach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_read, setup, teardown),
    };
    if (getenv("KM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
