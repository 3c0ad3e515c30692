/* UVC negotiation arithmetic: probe/commit bytes for UVC 1.0/1.1/1.5, the choice of
 * format/frame/interval, the alternate setting for a payload size (with the refusal message
 * naming bytes per microframe), and the per-bus bandwidth budget. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "uvc.h"
#include "uvc_spec_descriptors.h"

static void test_probe_sizes_and_bytes(void **state)
{
    (void)state;
    assert_int_equal(km_uvc_probe_size(0x0100), 26);
    assert_int_equal(km_uvc_probe_size(0x0110), 34);
    assert_int_equal(km_uvc_probe_size(0x0150), 48);
    km_uvc_probe p = {0};
    p.hint = 1;
    p.format_index = 2;
    p.frame_index = 3;
    p.frame_interval = 333333;
    p.max_video_frame_size = 614400;
    p.max_payload_transfer_size = 3072;
    p.clock_frequency = 48000000;
    p.framing_info = 3;
    p.bit_depth_luma = 8;
    p.layout_per_stream = 0x0102030405060708ull;
    uint8_t b[48];
    assert_int_equal(km_uvc_probe_pack(&p, 0x0100, b, 25), 0);
    assert_int_equal(km_uvc_probe_pack(&p, 0x0100, b, sizeof b), 26);
    static const uint8_t want26[26] = {0x01, 0x00, 0x02, 0x03, 0x15, 0x16, 0x05, 0x00, 0, 0,
                                       0,    0,    0,    0,    0,    0,    0,    0,    0x00,
                                       0x60, 0x09, 0x00, 0x00, 0x0c, 0x00, 0x00};
    assert_memory_equal(b, want26, 26);
    assert_int_equal(km_uvc_probe_pack(&p, 0x0110, b, sizeof b), 34);
    assert_int_equal(b[26], 0x00);
    assert_int_equal(b[27], 0x6c);
    assert_int_equal(b[28], 0xdc);
    assert_int_equal(b[29], 0x02);
    assert_int_equal(b[30], 3);
    assert_int_equal(km_uvc_probe_pack(&p, 0x0150, b, sizeof b), 48);
    assert_int_equal(b[35], 8);
    assert_int_equal(b[40], 0x08);
    assert_int_equal(b[47], 0x01);
    km_uvc_probe q;
    assert_int_equal(km_uvc_probe_unpack(b, 48, &q), KM_OK);
    assert_memory_equal(&p, &q, sizeof p);
    assert_int_equal(km_uvc_probe_unpack(b, 26, &q), KM_OK);
    assert_int_equal(q.clock_frequency, 0);
    assert_int_equal(q.max_payload_transfer_size, 3072);
    assert_int_equal(km_uvc_probe_unpack(b, 25, &q), KM_ERR_FORMAT);
}

static km_uvc_descriptor_set *spec_set(void)
{
    uvc_blob x;
    uvc_spec_options o = {0};
    size_t n = uvc_spec_build(&x, &o);
    km_uvc_descriptor_set *s = malloc(sizeof *s);
    assert_int_equal(km_uvc_parse_config(x.b, n, s), KM_OK);
    return s;
}

static void test_choose(void **state)
{
    (void)state;
    km_uvc_descriptor_set *s = spec_set();
    km_uvc_choice c;
    /* anything: GRAY8 first, its default frame (index 1, 64x48), default interval */
    km_uvc_request r = {KM_PIXEL_FORMAT_COUNT, 0, 0, 0};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_OK);
    assert_int_equal(c.format, 0);
    assert_int_equal(s->frames[c.frame].width, 64);
    assert_int_equal(c.interval, 333333);
    /* 640x480 GRAY8 at 100 Hz: nearest discrete of {83333, 333333} is 83333 */
    r = (km_uvc_request){KM_PIXEL_GRAY8, 640, 480, 100};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_OK);
    assert_int_equal(s->frames[c.frame].width, 640);
    assert_int_equal(c.interval, 83333);
    /* 1280x1024 continuous 83333..333333 step 83333: 50 Hz (200000) snaps to 166666 */
    r = (km_uvc_request){KM_PIXEL_GRAY8, 1280, 1024, 50};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_OK);
    assert_int_equal(c.interval, 166666);
    /* 500 Hz clamps to the minimum interval */
    r.rate_hz = 500;
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_OK);
    assert_int_equal(c.interval, 83333);
    /* format given */
    r = (km_uvc_request){KM_PIXEL_MJPEG, 1280, 720, 30};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_OK);
    assert_int_equal(s->formats[c.format].kind, KM_UVC_FORMAT_MJPEG);
    r = (km_uvc_request){KM_PIXEL_GRAY16, 0, 0, 0};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_OK);
    assert_int_equal(s->formats[c.format].pixel_format, KM_PIXEL_GRAY16);
    /* no such size: the message lists what there is */
    r = (km_uvc_request){KM_PIXEL_GRAY8, 800, 600, 0};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "Y800 640x480"));
    r = (km_uvc_request){KM_PIXEL_RGB24, 0, 0, 0};
    assert_int_equal(km_uvc_choose(s, &r, &c), KM_ERR_UNSUPPORTED);
    free(s);
}

static void test_select_alt(void **state)
{
    (void)state;
    km_uvc_descriptor_set *s = spec_set();
    int alt = -1;
    assert_int_equal(km_uvc_select_alt(s, 0, 100, KM_USB_SPEED_HIGH, &alt), KM_OK);
    assert_int_equal(s->alts[alt].alt, 1);
    assert_int_equal(km_uvc_select_alt(s, 0, 1024, KM_USB_SPEED_HIGH, &alt), KM_OK);
    assert_int_equal(s->alts[alt].alt, 2);
    assert_int_equal(km_uvc_select_alt(s, 0, 1025, KM_USB_SPEED_HIGH, &alt), KM_OK);
    assert_int_equal(s->alts[alt].alt, 3);
    assert_int_equal(km_uvc_select_alt(s, 0, 3073, KM_USB_SPEED_HIGH, &alt), KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "needs 3073 bytes per microframe"));
    assert_non_null(strstr(km_last_error(), "3072 bytes per microframe available"));
    /* bandwidth arithmetic: bInterval 4 at high speed = every 8 microframes */
    km_uvc_alt_desc a = {.transfer_type = 1, .interval = 4, .bytes_per_interval = 3072};
    assert_int_equal(km_uvc_alt_bytes_per_frame(&a, KM_USB_SPEED_HIGH), 384);
    a.interval = 1;
    assert_int_equal(km_uvc_alt_bytes_per_frame(&a, KM_USB_SPEED_HIGH), 3072);
    a.bytes_per_interval = 1023;
    assert_int_equal(km_uvc_alt_bytes_per_frame(&a, KM_USB_SPEED_FULL), 1023);
    free(s);
}

static void test_bus_budget(void **state)
{
    (void)state;
    km_uvc_bus_budget b;
    km_uvc_bus_budget_init(&b);
    /* two 3 x 1024 cameras do not fit one high-speed bus (6000 bytes per microframe) */
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 1, KM_USB_SPEED_HIGH, 3072), KM_OK);
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 1, KM_USB_SPEED_HIGH, 3072),
                     KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "needs 3072 bytes per microframe, 2928 of 6000"));
    /* another bus is fine, and a smaller stream still fits */
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 2, KM_USB_SPEED_HIGH, 3072), KM_OK);
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 1, KM_USB_SPEED_HIGH, 2048), KM_OK);
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 1, KM_USB_SPEED_HIGH, 1024),
                     KM_ERR_UNSUPPORTED);
    km_uvc_bus_budget_release(&b, 1, KM_USB_SPEED_HIGH, 3072);
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 1, KM_USB_SPEED_HIGH, 3072), KM_OK);
    /* full speed is counted per 1 ms frame, 1350 bytes */
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 3, KM_USB_SPEED_FULL, 1023), KM_OK);
    assert_int_equal(km_uvc_bus_budget_reserve(&b, 3, KM_USB_SPEED_FULL, 400),
                     KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "per frame"));
    assert_int_equal(km_usb_periodic_capacity(KM_USB_SPEED_SUPER), 56250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_sizes_and_bytes),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_select_alt),
        cmocka_unit_test(test_bus_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
