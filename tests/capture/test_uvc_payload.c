/* UVC payload reassembly: header parsing (lengths, PTS/SCR presence), frames delimited by EOF
 * and by FID toggles, lost packets and the ERR bit (frame dropped or flagged INCOMPLETE),
 * over-long frames, size checks of GRAY8/Y16/YUYV and variable MJPEG, and that nothing is
 * written past the caller's buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "uvc.h"

/* Build one payload: 12-byte header with PTS and SCR, then `n` data bytes of value v. */
static size_t payload(uint8_t *out, bool fid, bool eof, bool err, uint32_t pts, uint32_t stc,
                      uint16_t sof, size_t n, uint8_t v)
{
    out[0] = 12;
    out[1] = (uint8_t)(KM_UVC_HEADER_EOH | KM_UVC_HEADER_PTS | KM_UVC_HEADER_SCR |
                       (fid ? KM_UVC_HEADER_FID : 0) | (eof ? KM_UVC_HEADER_EOF : 0) |
                       (err ? KM_UVC_HEADER_ERR : 0));
    for (int i = 0; i < 4; i++) {
        out[2 + i] = (uint8_t)(pts >> (8 * i));
        out[6 + i] = (uint8_t)(stc >> (8 * i));
    }
    out[10] = (uint8_t)sof;
    out[11] = (uint8_t)(sof >> 8);
    memset(out + 12, v, n);
    return 12 + n;
}

static void test_header(void **state)
{
    (void)state;
    uint8_t p[64];
    km_uvc_payload_header h;
    size_t n = payload(p, true, true, false, 0x11223344, 0xaabbccdd, 0xfff, 4, 7);
    assert_int_equal(km_uvc_payload_header_parse(p, n, &h), KM_OK);
    assert_true(h.fid);
    assert_true(h.eof);
    assert_false(h.error);
    assert_true(h.has_pts && h.has_scr);
    assert_int_equal(h.pts, 0x11223344);
    assert_int_equal(h.stc, 0xaabbccdd);
    assert_int_equal(h.sof, 0x7ff); /* 11 bits */
    /* a 2-byte header without PTS/SCR */
    uint8_t q[4] = {2, KM_UVC_HEADER_EOH, 1, 2};
    assert_int_equal(km_uvc_payload_header_parse(q, 4, &h), KM_OK);
    assert_false(h.has_pts);
    /* malformed: too short, header longer than payload, PTS announced without room */
    assert_int_equal(km_uvc_payload_header_parse(q, 1, &h), KM_ERR_FORMAT);
    q[0] = 5;
    assert_int_equal(km_uvc_payload_header_parse(q, 4, &h), KM_ERR_FORMAT);
    q[0] = 1;
    assert_int_equal(km_uvc_payload_header_parse(q, 4, &h), KM_ERR_FORMAT);
    q[0] = 4;
    q[1] = KM_UVC_HEADER_PTS;
    assert_int_equal(km_uvc_payload_header_parse(q, 4, &h), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "offset"));
    /* PTS only: 6 bytes */
    uint8_t r[6] = {6, KM_UVC_HEADER_PTS, 1, 0, 0, 0};
    assert_int_equal(km_uvc_payload_header_parse(r, 6, &h), KM_OK);
    assert_int_equal(h.pts, 1);
}

typedef struct feed_log {
    int frames;
    km_uvc_frame_result last;
} feed_log;

/* Feed like the backend does: on FRAME_BEFORE take the frame, give a buffer, feed again. */
static km_status feed(km_uvc_assembler *a, const uint8_t *p, size_t n, feed_log *log,
                      uint8_t *next_buffer, size_t cap)
{
    km_uvc_feed_event ev;
    km_uvc_frame_result r;
    km_status st = km_uvc_assembler_feed(a, p, n, NULL, &ev, &r);
    if (ev == KM_UVC_FEED_FRAME_BEFORE) {
        log->frames++;
        log->last = r;
        km_uvc_assembler_set_buffer(a, next_buffer, cap);
        st = km_uvc_assembler_feed(a, p, n, NULL, &ev, &r);
        assert_int_not_equal(ev, KM_UVC_FEED_FRAME_BEFORE);
    }
    if (ev == KM_UVC_FEED_FRAME) {
        log->frames++;
        log->last = r;
        km_uvc_assembler_set_buffer(a, next_buffer, cap);
    }
    return st;
}

/* A 32x4 GRAY8 frame (128 bytes) sent as 4 payloads of 32 bytes. */
static void send_frame(km_uvc_assembler *a, bool fid, bool eof, int lose_index, bool err_index1,
                       uint8_t v, feed_log *log, uint8_t *buf, size_t cap)
{
    uint8_t p[64];
    for (int i = 0; i < 4; i++) {
        if (i == lose_index) {
            km_uvc_assembler_lost(a, 1);
            continue;
        }
        size_t n = payload(p, fid, eof && i == 3, err_index1 && i == 1, 1000u + v, 5000u + v,
                           (uint16_t)i, 32, (uint8_t)(v + i));
        assert_int_equal(feed(a, p, n, log, buf, cap), KM_OK);
    }
}

static void test_frames_eof_and_fid(void **state)
{
    (void)state;
    uint8_t buf[256];
    memset(buf, 0xee, sizeof buf);
    km_uvc_assembler_config cfg = {.frame_bytes = 128, .max_frame_bytes = 128};
    km_uvc_assembler a;
    km_uvc_assembler_init(&a, &cfg);
    km_uvc_assembler_set_buffer(&a, buf, 128);
    feed_log log = {0};
    send_frame(&a, false, true, -1, false, 10, &log, buf, 128);
    assert_int_equal(log.frames, 1);
    assert_int_equal(log.last.bytes, 128);
    assert_int_equal(log.last.flags, 0);
    assert_true(log.last.has_pts);
    assert_int_equal(log.last.pts, 1010);
    assert_int_equal(log.last.sequence, 0);
    assert_int_equal(buf[0], 10);
    assert_int_equal(buf[32], 11);
    assert_int_equal(buf[127], 13);
    assert_int_equal(buf[128], 0xee); /* nothing past the frame */
    /* a header-only payload after EOF with the same FID is ignored */
    uint8_t p[64];
    size_t n = payload(p, false, false, false, 0, 0, 0, 0, 0);
    assert_int_equal(feed(&a, p, n, &log, buf, 128), KM_OK);
    assert_int_equal(log.frames, 1);
    /* a device that never sets EOF: frames end at the FID toggle */
    send_frame(&a, true, false, -1, false, 20, &log, buf, 128);
    assert_int_equal(log.frames, 1);
    send_frame(&a, false, false, -1, false, 30, &log, buf, 128);
    assert_int_equal(log.frames, 2);
    assert_int_equal(log.last.pts, 1020);
    assert_int_equal(log.last.sequence, 1);
    assert_int_equal(a.stats.frames, 2);
    /* empty isochronous packets change nothing */
    km_uvc_feed_event ev;
    km_uvc_frame_result r;
    assert_int_equal(km_uvc_assembler_feed(&a, p, 0, NULL, &ev, &r), KM_OK);
    assert_int_equal(ev, KM_UVC_FEED_CONTINUE);
}

static void test_lost_packets_drop_or_flag(void **state)
{
    (void)state;
    uint8_t buf[128];
    km_uvc_assembler_config cfg = {.frame_bytes = 128, .max_frame_bytes = 128};
    km_uvc_assembler a;
    km_uvc_assembler_init(&a, &cfg);
    km_uvc_assembler_set_buffer(&a, buf, sizeof buf);
    feed_log log = {0};
    /* default: a frame with a lost packet is dropped, the next good one comes through */
    send_frame(&a, false, true, 2, false, 1, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 0);
    assert_int_equal(a.stats.dropped_incomplete, 1);
    assert_int_equal(a.stats.lost_packets, 1);
    send_frame(&a, true, true, -1, false, 2, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(log.last.sequence, 1);
    /* ERR bit: dropped too */
    send_frame(&a, false, true, -1, true, 3, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(a.stats.error_payloads, 1);

    /* deliver_incomplete: the same frames come out flagged */
    cfg.deliver_incomplete = true;
    km_uvc_assembler_init(&a, &cfg);
    km_uvc_assembler_set_buffer(&a, buf, sizeof buf);
    log.frames = 0;
    send_frame(&a, false, true, 0, false, 4, &log, buf, sizeof buf); /* first payload lost */
    assert_int_equal(log.frames, 1);
    assert_int_equal(log.last.flags, KM_FRAME_FLAG_INCOMPLETE);
    assert_int_equal(log.last.bytes, 96);
    send_frame(&a, true, true, -1, true, 5, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 2);
    assert_int_equal(log.last.flags, KM_FRAME_FLAG_INCOMPLETE);
    assert_int_equal(a.stats.incomplete, 2);
    /* a packet lost after the last data of a frame without EOF: the frame ends at the FID
     * toggle with all its bytes, so it is whole (the lost packet was the next frame's or
     * carried no data) */
    uint8_t p[64];
    for (int i = 0; i < 4; i++) {
        size_t n = payload(p, false, false, false, 0, 0, 0, 32, 9);
        feed(&a, p, n, &log, buf, sizeof buf);
    }
    km_uvc_assembler_lost(&a, 1);
    send_frame(&a, true, true, -1, false, 6, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 4);
    assert_int_equal(a.stats.incomplete, 2);
    assert_int_equal(log.last.flags, 0);
    /* a packet lost in the middle of an uncompressed frame: short, flagged */
    for (int i = 0; i < 4; i++) {
        if (i == 2) {
            km_uvc_assembler_lost(&a, 1);
            continue;
        }
        size_t n = payload(p, false, i == 3, false, 0, 0, 0, 32, 9);
        feed(&a, p, n, &log, buf, sizeof buf);
    }
    assert_int_equal(log.frames, 5);
    assert_int_equal(log.last.flags, KM_FRAME_FLAG_INCOMPLETE);
    assert_int_equal(log.last.bytes, 96);
}

static void test_overlong_and_sizes(void **state)
{
    (void)state;
    uint8_t buf[160];
    memset(buf, 0xee, sizeof buf);
    km_uvc_assembler_config cfg = {.frame_bytes = 128, .max_frame_bytes = 128};
    km_uvc_assembler a;
    km_uvc_assembler_init(&a, &cfg);
    km_uvc_assembler_set_buffer(&a, buf, 128);
    feed_log log = {0};
    uint8_t p[64];
    /* five payloads of 32 = 160 bytes for a 128-byte frame: rejected, buffer not overrun */
    for (int i = 0; i < 5; i++) {
        size_t n = payload(p, false, i == 4, false, 0, 0, 0, 32, 1);
        assert_int_equal(feed(&a, p, n, &log, buf, 128), KM_OK);
    }
    assert_int_equal(log.frames, 0);
    assert_int_equal(a.stats.dropped_overlong, 1);
    assert_int_equal(buf[128], 0xee);
    /* short frame (3 payloads of 32, EOF on the third): dropped by the size check */
    for (int i = 0; i < 3; i++) {
        size_t n = payload(p, true, i == 2, false, 0, 0, 0, 32, 1);
        assert_int_equal(feed(&a, p, n, &log, buf, 128), KM_OK);
    }
    assert_int_equal(log.frames, 0);
    assert_int_equal(a.stats.dropped_incomplete, 1);

    /* MJPEG: variable size up to max_frame_bytes */
    km_uvc_assembler_config mj = {.frame_bytes = 0, .max_frame_bytes = 100};
    km_uvc_assembler_init(&a, &mj);
    km_uvc_assembler_set_buffer(&a, buf, sizeof buf);
    size_t n = payload(p, false, false, false, 0, 0, 0, 40, 0xff);
    feed(&a, p, n, &log, buf, sizeof buf);
    n = payload(p, false, true, false, 0, 0, 0, 30, 0xd9);
    feed(&a, p, n, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(log.last.bytes, 70);
    n = payload(p, true, false, false, 0, 0, 0, 50, 1);
    feed(&a, p, n, &log, buf, sizeof buf);
    n = payload(p, true, true, false, 0, 0, 0, 51, 1); /* 101 > 100 */
    feed(&a, p, n, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(a.stats.dropped_overlong, 1);
    /* a lost packet between MJPEG frames damages the next one (its start may be gone) */
    km_uvc_assembler_lost(&a, 1);
    n = payload(p, false, true, false, 0, 0, 0, 10, 1);
    feed(&a, p, n, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(a.stats.dropped_incomplete, 1);
    /* buffer smaller than max_frame_bytes: the buffer is the limit */
    km_uvc_assembler_init(&a, &mj);
    km_uvc_assembler_set_buffer(&a, buf, 20);
    n = payload(p, true, true, false, 0, 0, 0, 21, 1);
    feed(&a, p, n, &log, buf, 20);
    assert_int_equal(a.stats.dropped_overlong, 1);
}

static void test_no_buffer_and_abort(void **state)
{
    (void)state;
    uint8_t buf[128];
    km_uvc_assembler_config cfg = {.frame_bytes = 128, .max_frame_bytes = 128};
    km_uvc_assembler a;
    km_uvc_assembler_init(&a, &cfg);
    feed_log log = {0};
    /* no buffer: followed and counted, nothing written */
    send_frame(&a, false, true, -1, false, 1, &log, NULL, 0);
    assert_int_equal(log.frames, 0);
    assert_int_equal(a.stats.dropped_no_buffer, 1);
    /* abort mid-frame: the rest of that FID is skipped */
    km_uvc_assembler_set_buffer(&a, buf, sizeof buf);
    uint8_t p[64];
    size_t n = payload(p, true, false, false, 0, 0, 0, 32, 1);
    feed(&a, p, n, &log, buf, sizeof buf);
    km_uvc_assembler_abort(&a);
    feed(&a, p, n, &log, buf, sizeof buf);
    n = payload(p, true, true, false, 0, 0, 0, 32, 1);
    feed(&a, p, n, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 0);
    assert_int_equal(a.stats.dropped_no_buffer, 2);
    /* the next FID with a buffer works; the sequence counted every frame seen */
    km_uvc_assembler_set_buffer(&a, buf, sizeof buf);
    send_frame(&a, false, true, -1, false, 2, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(log.last.sequence, 2);
    /* malformed header inside a frame damages it */
    uint8_t bad[3] = {9, 0, 0};
    send_frame(&a, true, false, -1, false, 3, &log, buf, sizeof buf);
    km_uvc_feed_event ev;
    km_uvc_frame_result r;
    assert_int_equal(km_uvc_assembler_feed(&a, bad, 3, NULL, &ev, &r), KM_ERR_FORMAT);
    n = payload(p, true, true, false, 0, 0, 0, 0, 0);
    feed(&a, p, n, &log, buf, sizeof buf);
    assert_int_equal(log.frames, 1);
    assert_int_equal(a.stats.header_errors, 1);
}

/* Y16 and YUYV sizes: what the frame descriptors give the assembler. */
static void test_format_sizes(void **state)
{
    (void)state;
    km_uvc_format_desc f = {.kind = KM_UVC_FORMAT_UNCOMPRESSED, .bits_per_pixel = 16};
    km_uvc_frame_desc fr = {.width = 640, .height = 480, .max_frame_bytes = 1};
    assert_int_equal(km_uvc_frame_bytes(&f, &fr), 614400);
    f.bits_per_pixel = 8;
    assert_int_equal(km_uvc_frame_bytes(&f, &fr), 307200);
    f.kind = KM_UVC_FORMAT_MJPEG;
    fr.max_frame_bytes = 123456;
    assert_int_equal(km_uvc_frame_bytes(&f, &fr), 123456);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_frames_eof_and_fid),
        cmocka_unit_test(test_lost_packets_drop_or_flag),
        cmocka_unit_test(test_overlong_and_sizes),
        cmocka_unit_test(test_no_buffer_and_abort),
        cmocka_unit_test(test_format_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
