/* `kinema export --video`: a small synthetic recording (an 8-bit stream with a moving disk
 * and a gap of three lost frames, a 10-bit-in-16 stream, a colour stream) exported by the
 * real `kinema` binary (path in argv[1]) to .avi (MJPG), .mkv (FFV1, lossless) and .mp4
 * (mp4v), then read back through OpenCV (km_cv_video_reader): size, frame count (gaps held
 * for their duration, or not with --no-fill), every frame's pixels against the source within
 * the codec's error (exact for FFV1), 16-bit values scaled over their range; a codec OpenCV
 * cannot write fails with a message that says so. When this OpenCV cannot write MJPG video
 * at all, the test skips with OpenCV's reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinema/capture.h"
#include "kinema/cv.h"
#include "kinema/recording.h"

#define W 96
#define H 64
#define FRAMES 40
#define GAP_AT 20   /* recording frame 20 comes 4 periods after frame 19: 3 frames lost */
#define GAP 3
#define FRAMES16 12
#define PERIOD_NS 33333333ull

static const char *kinema_bin;
static char dir[256];
static char rec_path[512];

static uint8_t gray_pixel(int k, int x, int y)
{
    double dx = x - (16 + 1.5 * k), dy = y - 32;
    int v = 30 + x / 2 + y / 2;
    if (dx * dx + dy * dy <= 36) v = 235;
    return (uint8_t)v;
}

static unsigned gray16_pixel(int k, int x, int y)
{
    unsigned v = (unsigned)(8 * x + 4 * y + k);
    return v > 1023 ? 1023 : v; /* 10-bit data, right-aligned, as a Kinect's IR */
}

static void rgb_pixel(int k, int x, int y, uint8_t *rgb)
{
    rgb[0] = (uint8_t)(2 * x + k);
    rgb[1] = (uint8_t)(3 * y);
    rgb[2] = 128;
}

static void write_recording(void)
{
    km_status st;
    km_recorder *w = km_recorder_create(rec_path, NULL, &st);
    assert_non_null(w);
    km_recording_stream d;
    memset(&d, 0, sizeof d);
    d.kind = KM_RECORDING_STREAM_IMAGES;
    d.width = W;
    d.height = H;
    d.rate_hz = 30.0;
    int ids[3];
    static const km_pixel_format formats[3] = {KM_PIXEL_GRAY8, KM_PIXEL_GRAY16, KM_PIXEL_RGB24};
    for (int s = 0; s < 3; s++) {
        d.camera = s;
        d.format = formats[s];
        snprintf(d.name, sizeof d.name, "cam%d", s);
        assert_int_equal(km_recorder_add_stream(w, &d, &ids[s]), KM_OK);
    }
    static uint8_t px[W * H * 3];
    for (int k = 0; k < FRAMES; k++) {
        uint64_t slot = (uint64_t)k + (k >= GAP_AT ? GAP : 0);
        for (int s = 0; s < 3; s++) {
            if (s == 1 && k >= FRAMES16) continue;
            km_frame f;
            memset(&f, 0, sizeof f);
            f.time_ns = 5000000000ull + slot * PERIOD_NS + (uint64_t)s * 1000u;
            f.arrival_ns = f.time_ns + 2000000u;
            f.sequence = slot;
            f.camera = s;
            f.width = W;
            f.height = H;
            f.format = formats[s];
            int bpp = s == 0 ? 1 : s == 1 ? 2 : 3;
            f.stride = W * bpp;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    uint8_t *p = px + y * f.stride + x * bpp;
                    if (s == 0) {
                        p[0] = gray_pixel(k, x, y);
                    } else if (s == 1) {
                        unsigned v = gray16_pixel(k, x, y);
                        p[0] = (uint8_t)v;
                        p[1] = (uint8_t)(v >> 8);
                    } else {
                        rgb_pixel(k, x, y, p);
                    }
                }
            f.data = px;
            f.size = f.capacity = (size_t)f.stride * H;
            assert_int_equal(km_recorder_write_frame(w, ids[s], &f), KM_OK);
        }
    }
    assert_int_equal(km_recorder_close(w), KM_OK);
}

/* Run `kinema export REC <args>`; returns its exit status, its stderr in log. */
static int run_export(const char *args, char *log, size_t log_size)
{
    char cmd[2048], log_path[512];
    snprintf(log_path, sizeof log_path, "%s/export.log", dir);
    snprintf(cmd, sizeof cmd, "'%s' export '%s' %s >'%s' 2>&1", kinema_bin, rec_path, args,
             log_path);
    int rc = system(cmd);
    FILE *f = fopen(log_path, "r");
    size_t n = f ? fread(log, 1, log_size - 1, f) : 0;
    log[n] = '\0';
    if (f)
        fclose(f);
    print_message("$ kinema export rec.kmr %s\n%s", args, log);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

typedef struct readback {
    int width, height, frames;
    double fps;
    uint8_t (*pixels)[W * H * 3]; /* frames read (grey: W*H bytes used; colour: 3*W*H) */
} readback;

static void read_video(const char *path, bool colour, readback *out, int capacity)
{
    km_status st;
    km_cv_video_reader *r = km_cv_video_reader_open(path, &out->width, &out->height, &out->fps,
                                                    &st);
    if (!r)
        fail_msg("%s", km_last_error());
    assert_int_equal(out->width, W);
    assert_int_equal(out->height, H);
    out->frames = 0;
    for (;;) {
        static uint8_t scratch[W * H * 3];
        uint8_t *dst = out->frames < capacity ? out->pixels[out->frames] : scratch;
        st = colour ? km_cv_video_reader_read_bgr(r, dst, W * 3)
                    : km_cv_video_reader_read_gray(r, dst, W);
        if (st == KM_ERR_END_OF_STREAM)
            break;
        if (st)
            fail_msg("%s frame %d: %s", path, out->frames, km_last_error());
        out->frames++;
    }
    km_cv_video_reader_close(r);
}

/* Mean and largest absolute difference between video frame v and recording frame k. */
static void compare_gray(const uint8_t *v, int k, double *mean, int *worst)
{
    long sum = 0;
    *worst = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int d = abs((int)v[y * W + x] - (int)gray_pixel(k, x, y));
            sum += d;
            if (d > *worst)
                *worst = d;
        }
    *mean = (double)sum / (W * H);
}

static uint8_t (*frames_buf)[W * H * 3];

static int setup_all(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kinema-test-video-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(rec_path, sizeof rec_path, "%s/rec.kmr", dir);
    frames_buf = calloc(64, sizeof *frames_buf);
    if (!frames_buf)
        return -1;
    write_recording();
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    free(frames_buf);
    return 0;
}

/* Can this OpenCV write MJPG at all? If not, say why and skip (the tool says the same). */
static bool video_writable(void)
{
    char probe[512];
    snprintf(probe, sizeof probe, "%s/probe.avi", dir);
    km_status st;
    km_cv_video_writer *w = km_cv_video_writer_open(probe, NULL, 30, W, H, false, &st);
    if (!w) {
        print_message("SKIP: %s\n", km_last_error());
        return false;
    }
    km_cv_video_writer_close(w);
    unlink(probe);
    return true;
}

static void test_gray8_avi_with_gap(void **state)
{
    (void)state;
    if (!video_writable())
        skip();
    char log[8192], args[1024];
    snprintf(args, sizeof args, "--stream 0 --video '%s/gray.avi'", dir);
    assert_int_equal(run_export(args, log, sizeof log), 0);
    assert_non_null(strstr(log, "40 frames of stream 0 written"));
    assert_non_null(strstr(log, "43 video frames, 3 repeated over gaps"));
    readback rb = {.pixels = frames_buf};
    snprintf(args, sizeof args, "%s/gray.avi", dir);
    read_video(args, false, &rb, 64);
    print_message("gray.avi: %dx%d, %d frames at %.2f fps\n", rb.width, rb.height, rb.frames,
                  rb.fps);
    assert_int_equal(rb.frames, FRAMES + GAP);
    assert_true(fabs(rb.fps - 30.0) < 0.01);
    /* video frame i shows recording frame k: 19 is held over the 3 lost frames */
    double worst_mean = 0;
    int worst_px = 0;
    for (int i = 0; i < rb.frames; i++) {
        int k = i < GAP_AT ? i : i < GAP_AT + GAP ? GAP_AT - 1 : i - GAP;
        double mean;
        int worst;
        compare_gray(rb.pixels[i], k, &mean, &worst);
        if (mean > worst_mean)
            worst_mean = mean;
        if (worst > worst_px)
            worst_px = worst;
        /* and not the neighbour: the disk moved 1.5 px, which shows */
        if (k + 1 < FRAMES) {
            double other;
            int o;
            compare_gray(rb.pixels[i], k + 1, &other, &o);
            assert_true(other > mean);
        }
    }
    print_message("MJPG: mean |error| <= %.2f, worst pixel %d grey levels\n", worst_mean,
                  worst_px);
    assert_true(worst_mean < 2.0);
    assert_true(worst_px < 40); /* JPEG ringing at the disk's edge */
}

static void test_lossless_mkv_and_16bit(void **state)
{
    (void)state;
    if (!video_writable())
        skip();
    char log[8192], args[1024], path[512];
    snprintf(path, sizeof path, "%s/ffv1.mkv", dir);
    km_status st;
    km_cv_video_writer *w = km_cv_video_writer_open(path, "FFV1", 30, W, H, false, &st);
    if (!w) {
        print_message("SKIP: no FFV1 writer: %s\n", km_last_error());
        skip();
    }
    km_cv_video_writer_close(w);
    /* 8-bit, every frame once: exact */
    snprintf(args, sizeof args, "--stream 0 --video '%s/gray.mkv' --no-fill --first 5 --count 10",
             dir);
    assert_int_equal(run_export(args, log, sizeof log), 0);
    readback rb = {.pixels = frames_buf};
    snprintf(path, sizeof path, "%s/gray.mkv", dir);
    read_video(path, false, &rb, 64);
    assert_int_equal(rb.frames, 10);
    for (int i = 0; i < rb.frames; i++) {
        double mean;
        int worst;
        compare_gray(rb.pixels[i], 5 + i, &mean, &worst);
        if (worst != 0)
            fail_msg("FFV1 frame %d: worst pixel off by %d", i, worst);
    }
    /* 16-bit with 10-bit data: scaled over 0..1023 (auto) */
    snprintf(args, sizeof args, "--stream 1 --video '%s/ir.mkv'", dir);
    assert_int_equal(run_export(args, log, sizeof log), 0);
    assert_non_null(strstr(log, "16-bit values 0..1023 to 0..255"));
    snprintf(path, sizeof path, "%s/ir.mkv", dir);
    read_video(path, false, &rb, 64);
    assert_int_equal(rb.frames, FRAMES16);
    for (int k = 0; k < rb.frames; k++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int want = (int)((gray16_pixel(k, x, y) * 255u + 511u) / 1023u);
                int got = rb.pixels[k][y * W + x];
                if (got != want)
                    fail_msg("16-bit frame %d (%d,%d): %d, expected %d", k, x, y, got, want);
            }
    /* a fixed range clamps */
    snprintf(args, sizeof args, "--stream 1 --video '%s/ir2.mkv' --range 256:511 --count 1", dir);
    assert_int_equal(run_export(args, log, sizeof log), 0);
    snprintf(path, sizeof path, "%s/ir2.mkv", dir);
    read_video(path, false, &rb, 64);
    assert_int_equal(rb.frames, 1);
    assert_int_equal(rb.pixels[0][0], 0);             /* 0 < 256 */
    assert_int_equal(rb.pixels[0][H * W - 1], 255);   /* 1023 > 511 */
    int x = 40, y = 0;                                /* 320: (320-256)*255/255 = 64 */
    assert_int_equal(rb.pixels[0][y * W + x], 64);
}

static void test_colour_and_mp4(void **state)
{
    (void)state;
    if (!video_writable())
        skip();
    char log[8192], args[1024], path[512];
    snprintf(args, sizeof args, "--stream 2 --video '%s/colour.avi'", dir);
    assert_int_equal(run_export(args, log, sizeof log), 0);
    readback rb = {.pixels = frames_buf};
    snprintf(path, sizeof path, "%s/colour.avi", dir);
    read_video(path, true, &rb, 64);
    assert_int_equal(rb.frames, FRAMES + GAP);
    double worst_mean = 0;
    for (int i = 0; i < rb.frames; i++) {
        int k = i < GAP_AT ? i : i < GAP_AT + GAP ? GAP_AT - 1 : i - GAP;
        long sum = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t rgb[3];
                rgb_pixel(k, x, y, rgb);
                const uint8_t *bgr = rb.pixels[i] + 3 * (y * W + x);
                sum += abs(bgr[0] - rgb[2]) + abs(bgr[1] - rgb[1]) + abs(bgr[2] - rgb[0]);
            }
        double mean = (double)sum / (3.0 * W * H);
        if (mean > worst_mean)
            worst_mean = mean;
    }
    print_message("MJPG colour: mean |error| <= %.2f per channel\n", worst_mean);
    assert_true(worst_mean < 3.0);

    /* mp4v in .mp4, when this OpenCV has it */
    snprintf(path, sizeof path, "%s/probe.mp4", dir);
    km_status st;
    km_cv_video_writer *w = km_cv_video_writer_open(path, NULL, 30, W, H, false, &st);
    if (!w) {
        print_message("no mp4v writer (not checked): %s\n", km_last_error());
    } else {
        km_cv_video_writer_close(w);
        snprintf(args, sizeof args, "--stream 0 --video '%s/gray.mp4' --no-fill --fps 60", dir);
        assert_int_equal(run_export(args, log, sizeof log), 0);
        snprintf(path, sizeof path, "%s/gray.mp4", dir);
        read_video(path, false, &rb, 64);
        assert_int_equal(rb.frames, FRAMES);
        assert_true(fabs(rb.fps - 60.0) < 0.1);
        double worst = 0;
        for (int i = 0; i < rb.frames; i++) {
            double mean;
            int wp;
            compare_gray(rb.pixels[i], i, &mean, &wp);
            if (mean > worst)
                worst = mean;
        }
        print_message("mp4v: mean |error| <= %.2f grey levels\n", worst);
        assert_true(worst < 6.0);
    }
}

static void test_errors(void **state)
{
    (void)state;
    char log[8192], args[1024];
    snprintf(args, sizeof args, "--stream 0 --video '%s/x.webm'", dir);
    assert_int_equal(run_export(args, log, sizeof log), 2);
    assert_non_null(strstr(log, "name it .avi, .mp4 or .mkv"));
    snprintf(args, sizeof args, "--stream 0 --video '%s/x.avi' --png-dir '%s/p'", dir, dir);
    assert_int_equal(run_export(args, log, sizeof log), 2);
    /* a codec nobody has: the tool says OpenCV cannot write it, and which backends exist */
    snprintf(args, sizeof args, "--stream 0 --video '%s/x.avi' --fourcc QQQQ", dir);
    int rc = run_export(args, log, sizeof log);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(log, "cannot write QQQQ video"));
    assert_non_null(strstr(log, "writer backends"));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_video_export PATH/TO/kinema\n");
        return 2;
    }
    kinema_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray8_avi_with_gap),
        cmocka_unit_test(test_lossless_mkv_and_16bit),
        cmocka_unit_test(test_colour_and_mp4),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
