/* Wire v1: exact round trip, byte layout pinned to docs/protocol.md, and the decoder's
 * refusal of every malformed input (truncation at each offset, bad magic/version, count
 * overflows) while skipping sections it does not know. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/transport.h"

#define CAMERAS 8
#define MARKERS 5

static km_vec3 vec3(double x, double y, double z)
{
    km_vec3 v = {x, y, z};
    return v;
}

typedef struct fixture {
    km_marker markers[MARKERS];
    km_marker_set set;
    km_solved_frame frame;
    uint8_t buf[4096];
    size_t length;
} fixture;

static void make_frame(fixture *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < MARKERS; i++) {
        /* Values exactly representable in f32, so the round trip is bit exact. */
        f->markers[i].id = 1000u + (uint32_t)i * 77u;
        f->markers[i].pos_m = vec3(0.25 * i - 1.0, 1.5 + 0.125 * i, -2.0 + 0.5 * i);
        f->markers[i].residual_px = 0.0625 * (i + 1);
        f->markers[i].views = 2 + i;
    }
    f->set.frame = 42;
    f->set.count = MARKERS;
    f->set.capacity = MARKERS;
    f->set.items = f->markers;
    f->frame.frame = 0x0102030405060708ull;
    f->frame.capture_time_ns = 1111111111111ull;
    f->frame.solved_time_ns = 1111111222222ull;
    f->frame.publish_time_ns = 1111111333333ull;
    f->frame.camera_count = CAMERAS;
    for (int c = 0; c < CAMERAS; c++)
        f->frame.observation_count[c] = (uint16_t)(40 + c);
    f->frame.markers = &f->set;
    assert_int_equal(km_wire_encode_frame(&f->frame, f->buf, sizeof f->buf, &f->length), KM_OK);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_round_trip_exact(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    assert_int_equal(f.length, km_wire_encoded_size(CAMERAS, MARKERS));
    assert_int_equal(f.length, 72 + 16 + 24 * MARKERS); /* align8(56 + 2*8) + entry + records */
    assert_true(km_wire_frame_size(MARKERS) >= f.length);

    km_marker out[MARKERS];
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, out, MARKERS, &w), KM_OK);
    assert_int_equal(w.version, 1);
    assert_true(w.frame == f.frame.frame);
    assert_true(w.capture_time_ns == f.frame.capture_time_ns);
    assert_true(w.solved_time_ns == f.frame.solved_time_ns);
    assert_true(w.publish_time_ns == f.frame.publish_time_ns);
    assert_int_equal(w.camera_count, CAMERAS);
    for (int c = 0; c < CAMERAS; c++)
        assert_int_equal(w.observation_count[c], 40 + c);
    assert_int_equal(w.marker_count, MARKERS);
    assert_ptr_equal(w.markers, out);
    assert_int_equal(w.section_count, 1);
    assert_int_equal(w.sections_skipped, 0);
    for (int i = 0; i < MARKERS; i++) {
        assert_int_equal(out[i].id, f.markers[i].id);
        assert_true(out[i].pos_m.x == f.markers[i].pos_m.x);
        assert_true(out[i].pos_m.y == f.markers[i].pos_m.y);
        assert_true(out[i].pos_m.z == f.markers[i].pos_m.z);
        assert_true(out[i].residual_px == f.markers[i].residual_px);
        assert_int_equal(out[i].views, f.markers[i].views);
    }
    /* Encoding is deterministic: the same frame gives the same bytes. */
    uint8_t again[4096];
    size_t again_length;
    assert_int_equal(km_wire_encode_frame(&f.frame, again, sizeof again, &again_length), KM_OK);
    assert_int_equal(again_length, f.length);
    assert_memory_equal(again, f.buf, f.length);
}

static void test_arbitrary_doubles_round_to_f32(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    f.markers[0].pos_m = vec3(1.234567891234, -9.87654321, 0.1);
    f.markers[0].residual_px = 0.3;
    assert_int_equal(km_wire_encode_frame(&f.frame, f.buf, sizeof f.buf, &f.length), KM_OK);
    km_marker out[MARKERS];
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, out, MARKERS, &w), KM_OK);
    assert_true(out[0].pos_m.x == (double)(float)1.234567891234);
    assert_true(out[0].pos_m.y == (double)(float)-9.87654321);
    assert_true(out[0].pos_m.z == (double)(float)0.1);
    /* f32 in a 10 m volume keeps sub-micrometre resolution (docs/protocol.md). */
    assert_true(fabs(out[0].pos_m.y - -9.87654321) < 1e-6);
}

static void test_layout_matches_protocol_doc(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    const uint8_t *b = f.buf;
    assert_memory_equal(b, "KMF1", 4);
    assert_int_equal(rd16(b + 4), 1);      /* version */
    assert_int_equal(rd16(b + 6), 0);      /* flags */
    assert_int_equal(rd16(b + 8), 56);     /* header_size */
    assert_int_equal(rd16(b + 10), CAMERAS);
    assert_int_equal(rd16(b + 12), 1);     /* section_count */
    assert_int_equal(rd16(b + 14), 72);    /* table_offset */
    assert_int_equal(rd32(b + 16), f.length);
    assert_int_equal(rd32(b + 20), 0);
    assert_int_equal(b[24], 0x08);         /* frame, little-endian */
    assert_int_equal(b[31], 0x01);
    assert_int_equal(rd16(b + 56), 40);    /* camera 0 observations */
    assert_int_equal(rd16(b + 56 + 2 * 7), 47);
    const uint8_t *e = b + 72;             /* section entry */
    assert_int_equal(rd16(e), KM_WIRE_SECTION_MARKERS);
    assert_int_equal(rd16(e + 2), 24);
    assert_int_equal(rd32(e + 4), MARKERS);
    assert_int_equal(rd32(e + 8), 88);
    assert_int_equal(rd32(e + 12), 24 * MARKERS);
    const uint8_t *r = b + 88 + 24;        /* marker 1 */
    assert_int_equal(rd32(r), 1077);
    float x;
    uint32_t bits = rd32(r + 4);
    memcpy(&x, &bits, 4);
    assert_true(x == -0.75f);
    assert_int_equal(rd16(r + 20), 3);     /* views */
    assert_int_equal(rd16(r + 22), 0);     /* record flags */
}

static void test_truncation_every_offset(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    km_marker out[MARKERS];
    km_wire_frame w;
    for (size_t n = 0; n < f.length; n++) {
        /* A heap copy of exactly n bytes, so ASan catches any read past the end. */
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, f.buf, n);
        assert_int_equal(km_wire_decode_frame(copy, n, out, MARKERS, &w), KM_ERR_FORMAT);
        /* Also with total_length patched to n, so the deeper checks are what refuse it. */
        if (n >= 20) {
            wr32(copy + 16, (uint32_t)n);
            km_status st = km_wire_decode_frame(copy, n, out, MARKERS, &w);
            assert_int_equal(st, KM_ERR_FORMAT);
        }
        free(copy);
    }
    assert_non_null(strstr(km_last_error(), "offset"));
}

static void test_bad_magic_and_version(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    km_marker out[MARKERS];
    km_wire_frame w;
    f.buf[0] = 'X';
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, out, MARKERS, &w), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "magic"));
    f.buf[0] = 'K';
    wr16(f.buf + 4, 2);
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, out, MARKERS, &w),
                     KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "version 2"));
    wr16(f.buf + 4, 0);
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, out, MARKERS, &w),
                     KM_ERR_UNSUPPORTED);
    wr16(f.buf + 4, 1);
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, out, MARKERS, &w), KM_OK);
}

static void expect_format(uint8_t *buf, size_t length)
{
    km_marker out[MARKERS];
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(buf, length, out, MARKERS, &w), KM_ERR_FORMAT);
}

static void test_count_overflow(void **state)
{
    (void)state;
    fixture f;
    uint8_t *entry;

    make_frame(&f);
    entry = f.buf + 72;
    wr32(entry + 4, 0xffffffffu);            /* marker count */
    expect_format(f.buf, f.length);
    wr32(entry + 4, 0x0aaaaaabu);            /* count * 24 wraps to 8 in 32 bits */
    wr32(entry + 12, 8);
    expect_format(f.buf, f.length);

    make_frame(&f);
    wr32(f.buf + 72 + 12, 0xfffffff0u);       /* section length past the end */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr32(f.buf + 72 + 8, 0xfffffff0u);        /* section offset past the end */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr32(f.buf + 72 + 8, 16);                 /* section inside the header */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr16(f.buf + 72 + 2, 12);                 /* record smaller than v1's 24 bytes */
    expect_format(f.buf, f.length);

    make_frame(&f);
    wr16(f.buf + 10, 0xffff);                 /* camera_count */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr16(f.buf + 10, 9);                      /* counts would run into the table */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr16(f.buf + 12, 0xffff);                 /* section_count */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr16(f.buf + 8, 8);                       /* header_size below 56 */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr16(f.buf + 14, 0xfff8);                 /* table past the end */
    expect_format(f.buf, f.length);
    make_frame(&f);
    wr32(f.buf + 16, (uint32_t)f.length + 1); /* total_length disagrees */
    expect_format(f.buf, f.length);

    /* Too many markers for the caller's storage is a capacity problem, not a format one. */
    make_frame(&f);
    km_marker few[2];
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, few, 2, &w), KM_ERR_CAPACITY);
}

/* A message as a future encoder may write it: a longer header, an unknown section before
 * the markers, and marker records with extra trailing fields. */
static void test_unknown_section_skipped(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    uint8_t m[1024];
    memset(m, 0xee, sizeof m);
    const size_t header_size = 64, cameras = 3;
    const size_t table = 72;                          /* align8(64 + 2*3) */
    const size_t table_end = table + 2 * 16;
    const size_t unknown_at = table_end, unknown_length = 13;
    const size_t markers_at = 120;                    /* align8(104 + 13) */
    const size_t record = 32;
    const size_t total = markers_at + 2 * record;
    memcpy(m, f.buf, 56);
    memset(m + 56, 0, 8);                             /* the v1.x header extension */
    wr16(m + 8, (uint16_t)header_size);
    wr16(m + 10, (uint16_t)cameras);
    wr16(m + 12, 2);
    wr16(m + 14, (uint16_t)table);
    wr32(m + 16, (uint32_t)total);
    for (size_t c = 0; c < cameras; c++)
        wr16(m + header_size + 2 * c, (uint16_t)(7 + c));
    uint8_t *e = m + table;
    wr16(e, 0x7777);
    wr16(e + 2, 0);
    wr32(e + 4, 1);
    wr32(e + 8, (uint32_t)unknown_at);
    wr32(e + 12, (uint32_t)unknown_length);
    e += 16;
    wr16(e, KM_WIRE_SECTION_MARKERS);
    wr16(e + 2, (uint16_t)record);
    wr32(e + 4, 2);
    wr32(e + 8, (uint32_t)markers_at);
    wr32(e + 12, (uint32_t)(2 * record));
    for (int i = 0; i < 2; i++)
        memcpy(m + markers_at + i * record, f.buf + 88 + 24 * i, 24); /* + 8 unknown bytes */

    km_marker out[MARKERS];
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(m, total, out, MARKERS, &w), KM_OK);
    assert_int_equal(w.section_count, 2);
    assert_int_equal(w.sections_skipped, 1);
    assert_int_equal(w.camera_count, 3);
    assert_int_equal(w.observation_count[2], 9);
    assert_int_equal(w.marker_count, 2);
    assert_int_equal(out[1].id, f.markers[1].id);
    assert_true(out[1].pos_m.z == f.markers[1].pos_m.z);
    assert_int_equal(out[1].views, f.markers[1].views);

    /* A second markers section is inconsistent. */
    wr16(m + table, KM_WIRE_SECTION_MARKERS);
    wr16(m + table + 2, 24);
    wr32(m + table + 4, 0);
    wr32(m + table + 12, 0);
    expect_format(m, total);
}

static void test_no_markers_and_encode_capacity(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    f.frame.markers = NULL;
    f.frame.camera_count = 0;
    assert_int_equal(km_wire_encode_frame(&f.frame, f.buf, sizeof f.buf, &f.length), KM_OK);
    assert_int_equal(f.length, 56 + 16);
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, NULL, 0, &w), KM_OK);
    assert_int_equal(w.marker_count, 0);
    assert_int_equal(w.camera_count, 0);

    make_frame(&f);
    size_t length = 99;
    assert_int_equal(km_wire_encode_frame(&f.frame, f.buf, f.length - 1, &length),
                     KM_ERR_CAPACITY);
    assert_int_equal(length, 0);
    f.frame.camera_count = KM_WIRE_MAX_CAMERAS + 1;
    assert_int_equal(km_wire_encode_frame(&f.frame, f.buf, sizeof f.buf, &length),
                     KM_ERR_CAPACITY);
    assert_int_equal(km_wire_encoded_size(-1, 0), 0);
    assert_int_equal(km_wire_encoded_size(65, 0), 0);
    assert_int_equal(km_wire_frame_size(0), km_wire_encoded_size(64, 0));
}


/* OBSERVATIONS_2D: layout, round trip, section selection, every truncation, bad records. */
static void test_observations_section(void **state)
{
    (void)state;
    fixture f;
    make_frame(&f);
    km_observation obs[3] = {{640.5, 512.25, 12, 0}, {1.0, 2.0, 3, 7}, {-0.5, 1023.75, 40, 3}};
    km_observation_set set = {42, 0, 3, 3, obs};
    f.frame.observations = &set;
    assert_int_equal(km_wire_frame_sections(&f.frame), KM_WIRE_WITH_ALL);
    assert_int_equal(km_wire_encode_frame(&f.frame, f.buf, sizeof f.buf, &f.length), KM_OK);
    /* header+counts 72, 2 entries, 5 markers, 3 observations */
    assert_int_equal(f.length, 72 + 2 * 16 + 24 * MARKERS + 16 * 3);
    assert_int_equal(f.length,
                     km_wire_encoded_size_sections(CAMERAS, MARKERS, 3, KM_WIRE_WITH_ALL));
    /* Second entry: type 7, 16-byte records, 3 records right after the markers. */
    const uint8_t *e = f.buf + 72 + 16;
    assert_int_equal(rd16(e), KM_WIRE_SECTION_OBSERVATIONS_2D);
    assert_int_equal(rd16(e + 2), 16);
    assert_int_equal(rd32(e + 4), 3);
    assert_int_equal(rd32(e + 8), 72 + 32 + 24 * MARKERS);
    const uint8_t *r = f.buf + rd32(e + 8) + 16; /* second record */
    assert_int_equal(rd16(r + 12), 7);           /* camera */

    km_marker markers[MARKERS];
    km_observation decoded[3];
    km_wire_storage storage = {markers, MARKERS, decoded, 3};
    km_wire_frame w;
    assert_int_equal(km_wire_decode(f.buf, f.length, &storage, &w), KM_OK);
    assert_true(w.has_markers && w.has_observations);
    assert_int_equal(w.marker_count, MARKERS);
    assert_int_equal(w.observation_total, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(decoded[i].x == obs[i].x && decoded[i].y == obs[i].y);
        assert_true(decoded[i].area_px == obs[i].area_px);
        assert_int_equal(decoded[i].camera, obs[i].camera);
    }
    /* The markers-only decoder skips it like an unknown section. */
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, markers, MARKERS, &w), KM_OK);
    assert_int_equal(w.sections_skipped, 1);
    assert_false(w.has_observations);
    /* Too little storage. */
    storage.observation_capacity = 2;
    assert_int_equal(km_wire_decode(f.buf, f.length, &storage, &w), KM_ERR_CAPACITY);
    storage.observation_capacity = 3;
    /* Truncated anywhere: refused. */
    for (size_t n = 0; n < f.length; n++)
        assert_int_not_equal(km_wire_decode(f.buf, n, &storage, &w), KM_OK);

    /* obs2d only: one section, no markers. */
    uint8_t only[512];
    size_t length;
    assert_int_equal(km_wire_encode(&f.frame, KM_WIRE_WITH_OBS2D, only, sizeof only, &length),
                     KM_OK);
    assert_int_equal(length, 72 + 16 + 16 * 3);
    assert_int_equal(km_wire_decode(only, length, &storage, &w), KM_OK);
    assert_false(w.has_markers);
    assert_int_equal(w.observation_total, 3);
    /* record_size below 16 and a count that does not make the length: format errors. */
    uint8_t bad[512];
    memcpy(bad, only, length);
    wr16(bad + 72 + 2, 12);
    assert_int_equal(km_wire_decode(bad, length, &storage, &w), KM_ERR_FORMAT);
    memcpy(bad, only, length);
    wr32(bad + 72 + 4, 2);
    assert_int_equal(km_wire_decode(bad, length, &storage, &w), KM_ERR_FORMAT);
    /* Unknown section bits are refused; a NULL set writes an empty section. */
    assert_int_equal(km_wire_encode(&f.frame, 0x80, only, sizeof only, &length),
                     KM_ERR_INVALID_ARGUMENT);
    f.frame.observations = NULL;
    assert_int_equal(km_wire_encode(&f.frame, KM_WIRE_WITH_OBS2D, only, sizeof only, &length),
                     KM_OK);
    assert_int_equal(km_wire_decode(only, length, &storage, &w), KM_OK);
    assert_true(w.has_observations && w.observation_total == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_arbitrary_doubles_round_to_f32),
        cmocka_unit_test(test_layout_matches_protocol_doc),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_bad_magic_and_version),
        cmocka_unit_test(test_count_overflow),
        cmocka_unit_test(test_unknown_section_skipped),
        cmocka_unit_test(test_no_markers_and_encode_capacity),
        cmocka_unit_test(test_observations_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
