/* UVC descriptor parser: the five real webcams (binary fixtures rebuilt from their lsusb
 * dumps by tools/lsusb_to_descriptor.py) parse to exactly the formats, frame sizes, frame
 * intervals and isochronous packet sizes the dumps list; a UVC 1.5 descriptor set built from
 * the specification parses field by field; malformed inputs are refused with an offset. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvc.h"
#include "uvc_spec_descriptors.h"

static const char *const cameras[5] = {"isight_imac", "isight_macbook", "logitech_hd_pro_920",
                                       "ms_lifecam_show", "quickcampro9000"};

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static uint8_t *fixture(const char *name, size_t *size)
{
    const char *src = getenv("KINEMA_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/capture/fixtures/uvc/%s.config.bin", src ? src : ".",
             name);
    uint8_t *b = read_file(path, size);
    if (!b)
        fail_msg("fixture %s missing", path);
    return b;
}

static const char *data_dir(void)
{
    const char *d = getenv("KINEMA_DATA");
    if (!d || !*d)
        d = getenv("KINEMA_DATA_DEFAULT");
    return d;
}

/* ------------------------------------------------ expected values read from the text dump */

typedef struct expect_frame {
    int subtype;
    unsigned width, height;
    uint32_t default_interval;
    int interval_type;
    uint32_t intervals[64];
    int n_intervals;
    uint32_t min, max, step;
} expect_frame;

typedef struct expect_format {
    int subtype;
    char guid_fourcc[5];
    int frames_declared;
} expect_format;

typedef struct expectation {
    expect_format formats[16];
    int n_formats;
    expect_frame frames[256];
    int n_frames;
    unsigned alt_bytes[32]; /* iso packet bytes per interval of each VS alt, in order */
    int n_alts;
    uint32_t clock_hz;
    unsigned bcd_uvc;
} expectation;

static unsigned long num_after(const char *line, const char *key)
{
    const char *p = strstr(line, key) + strlen(key);
    while (*p == ' ')
        p++;
    if (*p == '(') { /* an index: "dwFrameInterval( 3)" */
        p = strchr(p, ')');
        p = p ? p + 1 : line + strlen(line);
    }
    return strtoul(p, NULL, 0);
}

/* Walk the lsusb text: FORMAT_* / FRAME_* descriptors and the VS endpoints. */
static bool read_expectation(const char *camera, expectation *e)
{
    const char *dir = data_dir();
    if (!dir)
        return false;
    char path[1024];
    snprintf(path, sizeof path, "%s/usb/libuvc_camera_descriptors/%s.txt", dir, camera);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    memset(e, 0, sizeof *e);
    char line[512];
    enum { NONE, FORMAT, FRAME } ctx = NONE;
    bool video_iface = false, video_streaming_iface = false;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "bInterfaceClass"))
            video_iface = strstr(line, "Video") != NULL;
        if (strstr(line, "bInterfaceSubClass"))
            video_streaming_iface = video_iface && strstr(line, "Video Streaming") != NULL;
        if (strstr(line, "bDescriptorSubtype")) {
            ctx = NONE;
            int st = (int)num_after(line, "bDescriptorSubtype");
            if (strstr(line, "(FORMAT_UNCOMPRESSED)") || strstr(line, "(FORMAT_MJPEG)") ||
                strstr(line, "(FORMAT_FRAME_BASED)")) {
                ctx = FORMAT;
                e->formats[e->n_formats].subtype = st;
                e->n_formats++;
            } else if (strstr(line, "(FRAME_UNCOMPRESSED)") || strstr(line, "(FRAME_MJPEG)") ||
                       strstr(line, "(FRAME_FRAME_BASED)")) {
                ctx = FRAME;
                e->frames[e->n_frames].subtype = st;
                e->n_frames++;
            }
            continue;
        }
        if (strstr(line, "bcdUVC"))
            e->bcd_uvc = (unsigned)(strtod(strstr(line, "bcdUVC") + 6, NULL) * 100 + 0.5);
        if (strstr(line, "dwClockFrequency"))
            e->clock_hz = (uint32_t)(strtod(strstr(line, "dwClockFrequency") + 16, NULL) * 1e6 +
                                     0.5);
        if (video_streaming_iface && strstr(line, "wMaxPacketSize")) {
            unsigned mult = 0, size = 0;
            const char *p = strstr(line, "0x");
            p = strchr(p, ' ');
            if (p && sscanf(p, " %ux %u bytes", &mult, &size) == 2)
                e->alt_bytes[e->n_alts++] = mult * size;
        }
        if (ctx == FORMAT) {
            expect_format *fm = &e->formats[e->n_formats - 1];
            if (strstr(line, "bNumFrameDescriptors"))
                fm->frames_declared = (int)num_after(line, "bNumFrameDescriptors");
            if (strstr(line, "guidFormat")) {
                const char *g = strchr(line, '{');
                unsigned b[4];
                if (g && sscanf(g + 1, "%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3]) == 4)
                    for (int i = 0; i < 4; i++)
                        fm->guid_fourcc[i] = (char)b[i];
            }
        } else if (ctx == FRAME) {
            expect_frame *fr = &e->frames[e->n_frames - 1];
            if (strstr(line, "wWidth"))
                fr->width = (unsigned)num_after(line, "wWidth");
            else if (strstr(line, "wHeight"))
                fr->height = (unsigned)num_after(line, "wHeight");
            else if (strstr(line, "dwDefaultFrameInterval"))
                fr->default_interval = (uint32_t)num_after(line, "dwDefaultFrameInterval");
            else if (strstr(line, "bFrameIntervalType"))
                fr->interval_type = (int)num_after(line, "bFrameIntervalType");
            else if (strstr(line, "dwFrameInterval("))
                fr->intervals[fr->n_intervals++] = (uint32_t)num_after(line, "dwFrameInterval");
            else if (strstr(line, "dwMinFrameInterval"))
                fr->min = (uint32_t)num_after(line, "dwMinFrameInterval");
            else if (strstr(line, "dwMaxFrameInterval"))
                fr->max = (uint32_t)num_after(line, "dwMaxFrameInterval");
            else if (strstr(line, "dwFrameIntervalStep"))
                fr->step = (uint32_t)num_after(line, "dwFrameIntervalStep");
        }
    }
    fclose(f);
    return true;
}

static void test_fixtures_match_dumps(void **state)
{
    (void)state;
    if (!data_dir()) {
        skip();
        return;
    }
    int checked = 0;
    km_uvc_descriptor_set *set = malloc(sizeof *set);
    expectation *e = malloc(sizeof *e);
    for (int c = 0; c < 5; c++) {
        if (!read_expectation(cameras[c], e)) {
            print_message("skip %s: KINEMA_DATA has no usb/libuvc_camera_descriptors dump\n",
                          cameras[c]);
            continue;
        }
        size_t size;
        uint8_t *blob = fixture(cameras[c], &size);
        km_status st = km_uvc_parse_config(blob, size, set);
        if (st)
            fail_msg("%s: %s", cameras[c], km_last_error());
        assert_int_equal(set->bcd_uvc >> 8, e->bcd_uvc / 100);
        assert_int_equal(set->clock_hz, e->clock_hz);
        assert_int_equal(set->format_count, e->n_formats);
        assert_int_equal(set->frame_count, e->n_frames);
        assert_true(e->n_frames > 0);
        int frame = 0;
        for (int i = 0; i < set->format_count; i++) {
            const km_uvc_format_desc *f = &set->formats[i];
            assert_int_equal(f->frame_count, e->formats[i].frames_declared);
            if (f->kind != KM_UVC_FORMAT_MJPEG)
                assert_memory_equal(f->fourcc, e->formats[i].guid_fourcc, 4);
            for (int j = 0; j < f->frame_count; j++, frame++) {
                const km_uvc_frame_desc *fr = &set->frames[f->first_frame + j];
                const expect_frame *x = &e->frames[frame];
                assert_int_equal(fr->width, x->width);
                assert_int_equal(fr->height, x->height);
                assert_int_equal(fr->default_interval, x->default_interval);
                if (x->interval_type == 0) {
                    assert_true(fr->continuous);
                    assert_int_equal(fr->min_interval, x->min);
                    assert_int_equal(fr->max_interval, x->max);
                    assert_int_equal(fr->step_interval, x->step);
                } else {
                    assert_false(fr->continuous);
                    assert_int_equal(x->n_intervals, x->interval_type);
                    int n = x->n_intervals < KM_UVC_MAX_INTERVALS ? x->n_intervals
                                                                   : KM_UVC_MAX_INTERVALS;
                    assert_int_equal(fr->interval_count, n);
                    for (int k = 0; k < n; k++)
                        assert_int_equal(fr->intervals[k], x->intervals[k]);
                }
            }
        }
        /* isochronous alternate settings, with their high-bandwidth multipliers */
        int iso = 0;
        for (int a = 0; a < set->alt_count; a++) {
            if (set->alts[a].transfer_type != 1)
                continue;
            assert_true(iso < e->n_alts);
            assert_int_equal(set->alts[a].bytes_per_interval, e->alt_bytes[iso]);
            iso++;
        }
        assert_int_equal(iso, e->n_alts);
        free(blob);
        checked++;
    }
    free(set);
    free(e);
    if (checked == 0)
        skip();
}

/* Facts of the dumps written out, so the fixtures are checked without KINEMA_DATA too. */
static void test_fixtures_known_values(void **state)
{
    (void)state;
    km_uvc_descriptor_set *s = malloc(sizeof *s);
    size_t size;
    uint8_t *b = fixture("isight_imac", &size);
    assert_int_equal(size, 267);
    assert_int_equal(km_uvc_parse_config(b, size, s), KM_OK);
    assert_int_equal(s->bcd_uvc, 0x0100);
    assert_int_equal(s->clock_hz, 13500000);
    assert_int_equal(s->format_count, 1);
    assert_string_equal(s->formats[0].fourcc, "UYVY");
    assert_int_equal(s->formats[0].pixel_format, KM_PIXEL_FORMAT_COUNT);
    assert_int_equal(s->frame_count, 3);
    assert_int_equal(s->frames[1].width, 352);
    assert_int_equal(s->frames[1].height, 288);
    assert_true(s->frames[0].continuous);
    assert_int_equal(s->frames[0].min_interval, 333333);
    assert_int_equal(s->alt_count, 1);
    assert_int_equal(s->alts[0].bytes_per_interval, 3072);
    assert_int_equal(s->alts[0].max_packet_raw, 0x1400);
    assert_true(s->camera_terminal >= 0);
    assert_int_equal(s->units[s->processing_unit].controls, 0x0039);
    free(b);

    b = fixture("logitech_hd_pro_920", &size);
    assert_int_equal(km_uvc_parse_config(b, size, s), KM_OK);
    assert_int_equal(s->clock_hz, 300000000);
    assert_int_equal(s->control_interface, 0);
    assert_int_equal(s->stream_count, 1);
    assert_int_equal(s->streams[0].interface_number, 1);
    assert_int_equal(s->format_count, 3);
    assert_int_equal(s->formats[0].pixel_format, KM_PIXEL_YUYV);
    assert_int_equal(s->formats[0].frame_count, 19);
    assert_int_equal(s->formats[1].kind, KM_UVC_FORMAT_FRAME_BASED);
    assert_string_equal(s->formats[1].fourcc, "H264");
    assert_int_equal(s->formats[2].kind, KM_UVC_FORMAT_MJPEG);
    assert_int_equal(s->formats[2].pixel_format, KM_PIXEL_MJPEG);
    assert_int_equal(s->formats[2].frame_count, 17);
    assert_true(s->formats[0].has_color);
    assert_int_equal(s->formats[0].matrix_coefficients, 4);
    /* camera terminal: AE mode + exposure absolute; processing unit: gain */
    uint32_t ct = s->units[s->camera_terminal].controls;
    assert_true(ct & KM_UVC_CT_BIT_AE_MODE);
    assert_true(ct & KM_UVC_CT_BIT_EXPOSURE_ABSOLUTE);
    assert_true(s->units[s->processing_unit].controls & KM_UVC_PU_BIT_GAIN);
    /* 640x480 YUYV at 30 fps: 614400 bytes */
    assert_int_equal(km_uvc_frame_bytes(&s->formats[0], &s->frames[0]), 614400);
    /* the last alternate setting is 0x13fc: 3 x 1020 bytes per microframe */
    assert_int_equal(s->alts[s->alt_count - 1].bytes_per_interval, 3060);
    free(b);

    for (int c = 0; c < 5; c++) {
        b = fixture(cameras[c], &size);
        assert_int_equal(km_uvc_parse_config(b, size, s), KM_OK);
        assert_true(s->format_count > 0);
        free(b);
    }
    free(s);
}

static void test_spec_descriptor_set(void **state)
{
    (void)state;
    uvc_blob x;
    uvc_spec_options o = {0};
    size_t n = uvc_spec_build(&x, &o);
    km_uvc_descriptor_set *s = malloc(sizeof *s);
    assert_int_equal(km_uvc_parse_config(x.b, n, s), KM_OK);
    assert_int_equal(s->bcd_uvc, 0x0150);
    assert_int_equal(s->clock_hz, 48000000);
    assert_int_equal(s->unit_count, 4);
    assert_int_equal(s->units[s->camera_terminal].id, 1);
    assert_int_equal(s->units[s->processing_unit].id, 2);
    assert_int_equal(s->units[s->processing_unit].controls, 0x0201);
    assert_int_equal(s->units[2].subtype, KM_UVC_VC_EXTENSION_UNIT);
    assert_memory_equal(s->units[2].guid, "kinema-test-xu!!", 16);
    assert_int_equal(s->units[3].source_id, 4);
    assert_int_equal(s->format_count, 4);
    assert_int_equal(s->formats[0].pixel_format, KM_PIXEL_GRAY8);
    assert_int_equal(s->formats[1].pixel_format, KM_PIXEL_GRAY16);
    assert_int_equal(s->formats[2].pixel_format, KM_PIXEL_YUYV);
    assert_int_equal(s->formats[3].pixel_format, KM_PIXEL_MJPEG);
    assert_int_equal(s->frame_count, 6); /* the still image frame is not one */
    const km_uvc_frame_desc *f = &s->frames[0];
    assert_int_equal(f->width, 64);
    assert_int_equal(f->interval_count, 3);
    assert_int_equal(f->intervals[2], 83333);
    f = &s->frames[2];
    assert_true(f->continuous);
    assert_int_equal(f->min_interval, 83333);
    assert_int_equal(f->max_interval, 333333);
    assert_int_equal(f->step_interval, 83333);
    assert_int_equal(km_uvc_frame_bytes(&s->formats[1], &s->frames[3]), 640 * 480 * 2);
    assert_int_equal(s->alt_count, 3);
    assert_int_equal(s->alts[0].bytes_per_interval, 128);
    assert_int_equal(s->alts[1].bytes_per_interval, 1024);
    assert_int_equal(s->alts[2].bytes_per_interval, 3072);
    assert_int_equal(s->alts[2].alt, 3);
    assert_false(s->streams[0].bulk);

    o.bulk = true;
    n = uvc_spec_build(&x, &o);
    assert_int_equal(km_uvc_parse_config(x.b, n, s), KM_OK);
    assert_true(s->streams[0].bulk);
    assert_int_equal(s->alts[0].transfer_type, 2);

    /* a SuperSpeed companion gives the bytes per interval */
    o.bulk = false;
    o.small_only = true;
    n = uvc_spec_build(&x, &o);
    uint8_t big[4200];
    memcpy(big, x.b, n);
    size_t m = n;
    big[m++] = 6;
    big[m++] = 0x30;
    big[m++] = 15; /* bMaxBurst */
    big[m++] = 1;  /* Mult: 2 bursts */
    big[m++] = 0x00;
    big[m++] = 0x80; /* wBytesPerInterval 32768 */
    big[2] = (uint8_t)m;
    big[3] = (uint8_t)(m >> 8);
    assert_int_equal(km_uvc_parse_config(big, m, s), KM_OK);
    assert_true(s->alts[2].superspeed_companion);
    assert_int_equal(s->alts[2].bytes_per_interval, 32768);
    free(s);
}

static km_status parse_expect_format(const uint8_t *b, size_t n, km_uvc_descriptor_set *s)
{
    km_clear_error();
    km_status st = km_uvc_parse_config(b, n, s);
    if (st == KM_ERR_FORMAT)
        assert_non_null(strstr(km_last_error(), "offset"));
    return st;
}

static void test_malformed(void **state)
{
    (void)state;
    km_uvc_descriptor_set *s = malloc(sizeof *s);
    uvc_blob x;
    uvc_spec_options o = {0};
    size_t n = uvc_spec_build(&x, &o);
    uint8_t *b = malloc(n);

    /* every truncation: wTotalLength now exceeds the buffer */
    for (size_t cut = 0; cut < n; cut++) {
        memcpy(b, x.b, cut);
        assert_int_equal(parse_expect_format(b, cut, s), KM_ERR_FORMAT);
    }
    /* every truncation with wTotalLength patched: a cut descriptor or missing parts */
    for (size_t cut = 9; cut < n; cut++) {
        memcpy(b, x.b, cut);
        b[2] = (uint8_t)cut;
        b[3] = (uint8_t)(cut >> 8);
        km_status st = parse_expect_format(b, cut, s);
        assert_true(st == KM_OK || st == KM_ERR_FORMAT || st == KM_ERR_NOT_FOUND);
    }
    /* bLength 0 in the middle */
    memcpy(b, x.b, n);
    b[9] = 0;
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "offset 9"));
    /* find the first frame descriptor (CS_INTERFACE, subtype 5) and break it */
    size_t at = 0;
    for (size_t off = x.b[0]; off < n; off += x.b[off])
        if (x.b[off + 1] == 0x24 && x.b[off + 2] == 0x05 && x.b[off] >= 26) {
            at = off;
            break;
        }
    assert_true(at > 0);
    memcpy(b, x.b, n);
    b[at + 25] = 40; /* 40 discrete intervals in a 38-byte descriptor */
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    memcpy(b, x.b, n);
    b[at + 26] = b[at + 27] = b[at + 28] = b[at + 29] = 0; /* interval 0 */
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    memcpy(b, x.b, n);
    b[at + 5] = b[at + 6] = 0; /* width 0 */
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    memcpy(b, x.b, n);
    b[at + 2] = 0x07; /* MJPEG frame under an uncompressed format */
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    /* an isochronous wMaxPacketSize with the reserved multiplier value 3 */
    memcpy(b, x.b, n);
    b[n - 2] = 0x1c;
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    /* not a configuration */
    memcpy(b, x.b, n);
    b[1] = 1;
    assert_int_equal(parse_expect_format(b, n, s), KM_ERR_FORMAT);
    /* no video function at all: just the configuration header */
    memcpy(b, x.b, 9);
    b[2] = 9;
    b[3] = 0;
    assert_int_equal(km_uvc_parse_config(b, 9, s), KM_ERR_NOT_FOUND);
    assert_int_equal(km_uvc_parse_config(NULL, 0, s), KM_ERR_FORMAT);
    free(b);
    free(s);
}

static void test_guid_formats(void **state)
{
    (void)state;
    uint8_t g[16] = {'Y', '8', '0', '0', 0x00, 0x00, 0x10, 0x00,
                     0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};
    assert_int_equal(km_uvc_guid_pixel_format(g), KM_PIXEL_GRAY8);
    memcpy(g, "GREY", 4);
    assert_int_equal(km_uvc_guid_pixel_format(g), KM_PIXEL_GRAY8);
    memcpy(g, "Y16 ", 4);
    assert_int_equal(km_uvc_guid_pixel_format(g), KM_PIXEL_GRAY16);
    memcpy(g, "YUY2", 4);
    assert_int_equal(km_uvc_guid_pixel_format(g), KM_PIXEL_YUYV);
    memcpy(g, "NV12", 4);
    assert_int_equal(km_uvc_guid_pixel_format(g), KM_PIXEL_FORMAT_COUNT);
    memcpy(g, "YUY2", 4);
    g[15] = 0;
    assert_int_equal(km_uvc_guid_pixel_format(g), KM_PIXEL_FORMAT_COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_match_dumps),
        cmocka_unit_test(test_fixtures_known_values),
        cmocka_unit_test(test_spec_descriptor_set),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_guid_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
