/* Wire v1: exact round trip, byte layout pinned to docs/protocol.md, and the decoder's
 * refusal of every malformed input (truncation at each offset, bad magic/version, count
 * overflows) while skipping sections it does not know. v1.2: every section (rigid bodies,
 * skeletons, hands, events, camera status) round trips exactly, is refused when truncated
 * or inconsistent, grows by record_size, and is skipped by decoders without storage. */
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
    assert_int_equal(km_wire_frame_sections(&f.frame), KM_WIRE_WITH_MARKERS | KM_WIRE_WITH_OBS2D);
    assert_int_equal(km_wire_encode_frame(&f.frame, f.buf, sizeof f.buf, &f.length), KM_OK);
    /* header+counts 72, 2 entries, 5 markers, 3 observations */
    assert_int_equal(f.length, 72 + 2 * 16 + 24 * MARKERS + 16 * 3);
    assert_int_equal(f.length,
                     km_wire_encoded_size_sections(CAMERAS, MARKERS, 3,
                                                   KM_WIRE_WITH_MARKERS | KM_WIRE_WITH_OBS2D));
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

/* ------------------------------------------------------------------ v1.2 sections */

#define RIGIDS 2
#define PEOPLE 3
#define HANDS 2
#define EVENTS 2

typedef struct streams_fixture {
    fixture base;
    km_observation obs[3];
    km_observation_set obs_set;
    km_rigid_pose rigid[RIGIDS];
    km_rigid_definition defs[RIGIDS];
    km_skeleton_pose skel[PEOPLE];
    km_hand hands[HANDS];
    km_gesture_event events[EVENTS];
    km_camera_status cams[CAMERAS];
    uint8_t buf[16384];
    size_t length;
} streams_fixture;

/* Every value a multiple of 1/64 or so: exact in f32. */
static void make_streams(streams_fixture *f)
{
    memset(f, 0, sizeof *f);
    make_frame(&f->base);
    km_solved_frame *fr = &f->base.frame;
    for (int i = 0; i < 3; i++) {
        km_observation o = {100.5 + i, 200.25 - i, 10 + i, i};
        f->obs[i] = o;
    }
    f->obs_set.count = f->obs_set.capacity = 3;
    f->obs_set.items = f->obs;
    fr->observations = &f->obs_set;
    for (int i = 0; i < RIGIDS; i++) {
        km_rigid_pose *b = &f->rigid[i];
        b->id = 500u + (uint32_t)i;
        b->definition = i;
        b->tracked = i == 0;
        b->pos_m = vec3(0.5 * i, 1.25, -0.75);
        km_quat q = {0.5, -0.5, 0.5, 0.5};
        b->rot = q;
        b->error_m = 0.001953125 * (i + 1);
        b->markers_used = 4 - i;
        snprintf(f->defs[i].name, sizeof f->defs[i].name, "body%d", i);
        f->defs[i].id = b->id;
    }
    fr->rigid_bodies = f->rigid;
    fr->rigid_definitions = f->defs;
    fr->rigid_body_count = RIGIDS;
    for (int p = 0; p < PEOPLE; p++) {
        km_skeleton_pose *k = &f->skel[p];
        k->person = p;
        k->tracked = p != 1;
        /* person 0: the left forearm and hand unsupported (occluded) */
        k->joints_observed = p == 1 ? 0u
                                    : KM_SKELETON_ALL_JOINTS & ~((1u << KM_JOINT_LEFT_LOWER_ARM) |
                                                                 (1u << KM_JOINT_LEFT_HAND));
        k->residual_m = 0.0078125 * (p + 1);
        k->markers_used = 39 - p;
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            k->joint_pos_m[j] = vec3(p + 0.03125 * j, 1.0 + 0.015625 * j, -0.0625 * j);
            km_quat w = {0.0, 0.25 * (j % 3), 0.0, 1.0 - 0.125 * p};
            km_quat l = {0.125 * (j % 2), 0.0, -0.25, 0.5 + 0.0625 * j};
            k->joint_rot[j] = w;
            k->local_rot[j] = l;
        }
    }
    fr->skeletons = f->skel;
    fr->skeleton_count = PEOPLE;
    for (int h = 0; h < HANDS; h++) {
        km_hand *k = &f->hands[h];
        *k = km_hand_init();
        k->time_ns = 987654321012345ll + h;
        k->person = h == 0 ? -1 : 2;
        k->side = h == 0 ? KM_HAND_SIDE_LEFT : KM_HAND_SIDE_RIGHT;
        k->centre_valid = h == 1;
        k->centre_m = h == 1 ? vec3(0.25, 1.5, 0.125) : vec3(0, 0, 0);
        k->landmark_valid = h == 0 ? KM_HAND_LANDMARKS_ALL : 0x3u;
        for (int l = 0; l < KM_HAND_LANDMARK_COUNT; l++)
            k->landmark_m[l] = (k->landmark_valid >> l) & 1
                                   ? vec3(0.01171875 * l, 1.25 + h, -0.5 * h)
                                   : vec3(0, 0, 0);
        k->confidence = 0.75 + 0.125 * h;
    }
    fr->hands = f->hands;
    fr->hand_count = HANDS;
    for (int e = 0; e < EVENTS; e++) {
        km_gesture_event *v = &f->events[e];
        v->type = e == 0 ? KM_EVENT_GESTURE : KM_EVENT_SELECT;
        v->t_ns = 5000000000ll + e;
        v->t_start_ns = e == 0 ? 4500000000ll : 0;
        v->t_end_ns = e == 0 ? 4990000000ll : 0;
        v->person = e;
        v->hand = e == 0 ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
        if (e == 0) {
            /* 63 characters: the longest name the struct holds travels uncut. */
            memset(v->name, 'g', KM_GESTURE_NAME_MAX - 1);
            v->name[KM_GESTURE_NAME_MAX - 1] = '\0';
        } else {
            snprintf(v->target, sizeof v->target, "panel-3");
        }
        v->score = 0.875;
        v->gaze_hand_angle_rad = e == 0 ? NAN : 0.046875;
        v->gaze_lead_ms = e == 0 ? NAN : -180.5;
        v->same_target = e == 0 ? -1 : 1;
    }
    fr->events = f->events;
    fr->event_count = EVENTS;
    for (int c = 0; c < CAMERAS; c++) {
        f->cams[c].state = (km_camera_state)(c % 4);
        f->cams[c].frames = 1000000ull * c + 7;
        f->cams[c].dropped = (uint64_t)c;
        f->cams[c].errors = c == 5 ? 0x100000000ull : 0;
    }
    fr->camera_status = f->cams;
    assert_int_equal(km_wire_encode_frame(fr, f->buf, sizeof f->buf, &f->length), KM_OK);
}

typedef struct decoded {
    km_marker markers[MARKERS];
    km_observation obs[3];
    km_rigid_pose rigid[RIGIDS];
    km_skeleton_pose skel[PEOPLE];
    km_hand hands[HANDS];
    km_gesture_event events[EVENTS];
    km_camera_status cams[CAMERAS];
    km_wire_storage storage;
    km_wire_stream_storage streams;
} decoded;

static void decoded_init(decoded *d)
{
    memset(d, 0, sizeof *d);
    km_wire_storage s = {d->markers, MARKERS, d->obs, 3};
    d->storage = s;
    km_wire_stream_storage x = {d->rigid, RIGIDS, d->skel, PEOPLE, d->hands, HANDS,
                                d->events, EVENTS, d->cams, CAMERAS};
    d->streams = x;
}

static bool same_f(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

static void assert_vec3_equal(km_vec3 a, km_vec3 b)
{
    assert_true(a.x == b.x && a.y == b.y && a.z == b.z);
}

static void assert_quat_equal(km_quat a, km_quat b)
{
    assert_true(a.x == b.x && a.y == b.y && a.z == b.z && a.w == b.w);
}

static void test_streams_round_trip(void **state)
{
    (void)state;
    static streams_fixture f;
    make_streams(&f);
    const unsigned all = KM_WIRE_WITH_ALL;
    assert_int_equal(km_wire_frame_sections(&f.base.frame), all);
    size_t expect = 72 + 7 * 16 + 24 * MARKERS + 40 * RIGIDS + 944 * PEOPLE + 288 * HANDS +
                    176 * EVENTS + 32 * CAMERAS + 16 * 3;
    assert_int_equal(f.length, expect);
    assert_int_equal(km_wire_encoded_size_frame(&f.base.frame, all), expect);
    assert_true(km_wire_frame_size_max(MARKERS, RIGIDS, PEOPLE, HANDS, EVENTS) >= expect - 48);

    static decoded d;
    decoded_init(&d);
    km_wire_frame w;
    assert_int_equal(km_wire_decode_streams(f.buf, f.length, &d.storage, &d.streams, &w), KM_OK);
    assert_int_equal(w.section_count, 7);
    assert_int_equal(w.sections_skipped, 0);
    assert_true(w.has_markers && w.has_observations && w.has_rigid_bodies && w.has_skeletons &&
                w.has_hands && w.has_events && w.has_camera_status);
    assert_int_equal(w.marker_count, MARKERS);
    assert_int_equal(w.observation_total, 3);
    assert_int_equal(w.rigid_body_count, RIGIDS);
    assert_ptr_equal(w.rigid_bodies, d.rigid);
    for (int i = 0; i < RIGIDS; i++) {
        assert_int_equal(d.rigid[i].id, f.rigid[i].id);
        assert_int_equal(d.rigid[i].definition, i);
        assert_int_equal(d.rigid[i].tracked, f.rigid[i].tracked);
        assert_int_equal(d.rigid[i].markers_used, f.rigid[i].markers_used);
        assert_vec3_equal(d.rigid[i].pos_m, f.rigid[i].pos_m);
        assert_quat_equal(d.rigid[i].rot, f.rigid[i].rot);
        assert_true(d.rigid[i].error_m == f.rigid[i].error_m);
        assert_int_equal(d.rigid[i].marker_ids[0], KM_RIGID_NO_MARKER);
    }
    assert_int_equal(w.skeleton_count, PEOPLE);
    for (int p = 0; p < PEOPLE; p++) {
        const km_skeleton_pose *a = &d.skel[p], *b = &f.skel[p];
        assert_int_equal(a->person, b->person);
        assert_int_equal(a->tracked, b->tracked);
        assert_int_equal(a->joints_observed, b->joints_observed);
        assert_int_equal(a->markers_used, b->markers_used);
        assert_true(a->residual_m == b->residual_m);
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            assert_vec3_equal(a->joint_pos_m[j], b->joint_pos_m[j]);
            assert_quat_equal(a->joint_rot[j], b->joint_rot[j]);
            assert_quat_equal(a->local_rot[j], b->local_rot[j]);
        }
    }
    assert_int_equal(w.hand_count, HANDS);
    for (int h = 0; h < HANDS; h++) {
        const km_hand *a = &d.hands[h], *b = &f.hands[h];
        assert_true(a->time_ns == b->time_ns);
        assert_int_equal(a->person, b->person);
        assert_int_equal(a->side, b->side);
        assert_int_equal(a->centre_valid, b->centre_valid);
        assert_vec3_equal(a->centre_m, b->centre_m);
        assert_int_equal(a->landmark_valid, b->landmark_valid);
        for (int l = 0; l < KM_HAND_LANDMARK_COUNT; l++)
            assert_vec3_equal(a->landmark_m[l], b->landmark_m[l]);
        assert_true(a->confidence == b->confidence);
        assert_int_equal(km_hand_validate(a), KM_OK);
    }
    assert_int_equal(w.event_count, EVENTS);
    for (int e = 0; e < EVENTS; e++) {
        const km_gesture_event *a = &d.events[e], *b = &f.events[e];
        assert_int_equal(a->type, b->type);
        assert_true(a->t_ns == b->t_ns && a->t_start_ns == b->t_start_ns &&
                    a->t_end_ns == b->t_end_ns);
        assert_int_equal(a->person, b->person);
        assert_int_equal(a->hand, b->hand);
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->target, b->target);
        assert_true(a->score == b->score);
        assert_true(same_f(a->gaze_hand_angle_rad, b->gaze_hand_angle_rad));
        assert_true(same_f(a->gaze_lead_ms, b->gaze_lead_ms));
        assert_int_equal(a->same_target, b->same_target);
    }
    assert_int_equal(strlen(d.events[0].name), KM_GESTURE_NAME_MAX - 1);
    assert_int_equal(w.camera_status_count, CAMERAS);
    for (int c = 0; c < CAMERAS; c++) {
        assert_int_equal(d.cams[c].state, f.cams[c].state);
        assert_true(d.cams[c].frames == f.cams[c].frames);
        assert_true(d.cams[c].dropped == f.cams[c].dropped);
        assert_true(d.cams[c].errors == f.cams[c].errors);
    }
    /* Deterministic bytes. */
    static uint8_t again[16384];
    size_t again_length;
    assert_int_equal(km_wire_encode_frame(&f.base.frame, again, sizeof again, &again_length),
                     KM_OK);
    assert_int_equal(again_length, f.length);
    assert_memory_equal(again, f.buf, f.length);
}

/* Entry of section `type` in a message (NULL when absent). */
static uint8_t *entry_of(uint8_t *m, uint16_t type)
{
    int sections = rd16(m + 12);
    uint8_t *e = m + rd16(m + 14);
    for (int s = 0; s < sections; s++, e += 16)
        if (rd16(e) == type)
            return e;
    return NULL;
}

static float rdf(const uint8_t *p)
{
    uint32_t bits = rd32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

/* Offsets and values as docs/protocol.md's byte tables give them. */
static void test_streams_layout(void **state)
{
    (void)state;
    static streams_fixture f;
    make_streams(&f);
    uint8_t *m = f.buf;
    /* Sections in type order: 1 2 3 4 5 6 7. */
    for (int s = 0; s < 7; s++)
        assert_int_equal(rd16(m + 72 + 16 * s), s + 1);
    const uint8_t *e = entry_of(m, KM_WIRE_SECTION_RIGID_BODIES);
    assert_int_equal(rd16(e + 2), 40);
    const uint8_t *r = m + rd32(e + 8);
    assert_int_equal(rd32(r), 500);
    assert_int_equal(rd16(r + 4), 1);       /* tracked */
    assert_int_equal(rd16(r + 6), 4);       /* markers_used */
    assert_true(rdf(r + 12) == 1.25f);      /* y */
    assert_true(rdf(r + 20) == 0.5f && rdf(r + 24) == -0.5f && rdf(r + 32) == 0.5f);
    assert_true(rdf(r + 36) == 0.001953125f);

    assert_string_equal(km_camera_state_name(KM_CAMERA_STATE_DISCONNECTED), "disconnected");
    assert_string_equal(km_camera_state_name(KM_CAMERA_STATE_OK), "ok");
    assert_string_equal(km_camera_state_name((km_camera_state)9), "unknown");

    e = entry_of(m, KM_WIRE_SECTION_SKELETONS);
    assert_int_equal(rd16(e + 2), 944);
    r = m + rd32(e + 8) + 944; /* person 1 */
    assert_int_equal(rd16(r), 1);
    assert_int_equal(rd16(r + 2), 0);       /* not tracked */
    assert_int_equal(rd16(r + 4), 21);
    assert_int_equal(rd16(r + 6), 44);
    assert_int_equal(rd16(r + 8), 20);      /* v1.3: the mask before the joints */
    assert_int_equal(rd16(r + 10), 38);
    assert_true(rdf(r + 12) == 0.015625f);
    assert_int_equal(rd32(r + 16), 0);      /* joints_observed: untracked */
    const uint8_t *j = r + 20 + 44 * 2;     /* joint 2 (Chest) */
    assert_true(rdf(j) == 1.0f + 0.0625f);  /* x = person + 0.03125 * 2 */
    assert_true(rdf(j + 16) == 0.5f);       /* world qy = 0.25 * (2 % 3) */
    assert_true(rdf(j + 24) == 0.875f);     /* world qw */
    assert_true(rdf(j + 36) == -0.25f);     /* local qz */
    r -= 944;                               /* person 0: all but joints 7 and 8 */
    assert_int_equal(rd32(r + 16), 0x1ffe7f);

    e = entry_of(m, KM_WIRE_SECTION_HAND_POSES);
    assert_int_equal(rd16(e + 2), 288);
    r = m + rd32(e + 8) + 288; /* hand 1 */
    assert_int_equal(rd16(r), 2);
    assert_int_equal(r[2], KM_HAND_SIDE_RIGHT);
    assert_int_equal(r[3], 1);              /* centre valid */
    assert_int_equal(rd32(r + 4), 3);
    assert_true(rdf(r + 16) == 0.875f);
    assert_true(rdf(r + 24) == 1.5f);
    assert_true(rdf(r + 32 + 12 + 4) == 2.25f); /* landmark 1 y */
    assert_true(rdf(r + 32 + 24) == 0.0f);  /* landmark 2: not valid, written 0 */
    r = m + rd32(e + 8);                    /* hand 0: person -1 */
    assert_int_equal(rd16(r), 0xffff);

    e = entry_of(m, KM_WIRE_SECTION_EVENTS);
    assert_int_equal(rd16(e + 2), 176);
    r = m + rd32(e + 8) + 176; /* event 1 */
    assert_int_equal(rd16(r), KM_EVENT_SELECT);
    assert_int_equal(r[2], KM_HAND_SIDE_LEFT);
    assert_int_equal(rd32(r + 4), 1);
    assert_true(rdf(r + 40) == -180.5f);
    assert_int_equal(rd16(r + 44), 1);
    assert_int_equal(r[48], 0);             /* empty name */
    assert_memory_equal(r + 112, "panel-3\0", 8);

    e = entry_of(m, KM_WIRE_SECTION_CAMERA_STATUS);
    assert_int_equal(rd16(e + 2), 32);
    assert_int_equal(rd32(e + 4), CAMERAS);
    r = m + rd32(e + 8) + 32 * 5;
    assert_int_equal(r[0], 1);              /* camera 5: state MISSING */
    assert_int_equal(rd32(r + 8), 5000007);
    assert_int_equal(rd32(r + 24), 0);
    assert_int_equal(rd32(r + 28), 1);      /* errors = 2^32 */
    /* Every section 8-byte aligned. */
    for (int s = 0; s < 7; s++)
        assert_int_equal(rd32(m + 72 + 16 * s + 8) % 8, 0);
}

static void test_streams_truncation_every_offset(void **state)
{
    (void)state;
    static streams_fixture f;
    make_streams(&f);
    static decoded d;
    decoded_init(&d);
    km_wire_frame w;
    for (size_t n = 0; n < f.length; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, f.buf, n);
        assert_int_equal(km_wire_decode_streams(copy, n, &d.storage, &d.streams, &w),
                         KM_ERR_FORMAT);
        if (n >= 20) {
            wr32(copy + 16, (uint32_t)n);
            assert_int_equal(km_wire_decode_streams(copy, n, &d.storage, &d.streams, &w),
                             KM_ERR_FORMAT);
        }
        free(copy);
    }
    assert_non_null(strstr(km_last_error(), "offset"));
}

static km_status decode_all(uint8_t *m, size_t length)
{
    static decoded d;
    decoded_init(&d);
    km_wire_frame w;
    return km_wire_decode_streams(m, length, &d.storage, &d.streams, &w);
}

static void test_streams_bad_records(void **state)
{
    (void)state;
    static streams_fixture f;
    static const uint16_t types[] = {KM_WIRE_SECTION_RIGID_BODIES, KM_WIRE_SECTION_SKELETONS,
                                     KM_WIRE_SECTION_HAND_POSES, KM_WIRE_SECTION_EVENTS,
                                     KM_WIRE_SECTION_CAMERA_STATUS};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        /* record_size smaller than v1.2's (the length made consistent): refused. */
        make_streams(&f);
        uint8_t *e = entry_of(f.buf, types[t]);
        uint16_t size = rd16(e + 2);
        uint32_t count = rd32(e + 4);
        wr16(e + 2, (uint16_t)(size - 8));
        wr32(e + 12, count * (size - 8u));
        assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
        assert_non_null(strstr(km_last_error(), "record_size"));
        /* count that does not make the length. */
        make_streams(&f);
        e = entry_of(f.buf, types[t]);
        wr32(e + 4, rd32(e + 4) + 1);
        assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
        /* A second section of the same type. */
        make_streams(&f);
        e = entry_of(f.buf, types[t]);
        uint8_t *other = entry_of(f.buf, KM_WIRE_SECTION_MARKERS);
        memcpy(other, e, 16);
        assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
        assert_non_null(strstr(km_last_error(), "second"));
    }
    /* Skeleton joint layout: joint_size below 44, joints_offset below 16, joints past the
     * record. */
    make_streams(&f);
    uint8_t *r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_SKELETONS) + 8);
    wr16(r + 6, 40);
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "joint_size"));
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_SKELETONS) + 8);
    wr16(r + 8, 8);
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_SKELETONS) + 8) + 944 * 2;
    wr16(r + 4, 22); /* 20 + 22 * 44 = 988 > 944 */
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "joints"));
    /* A v1.2 sender's record (16-byte header, no mask, 4 bytes of padding): the same joints,
     * a tracked pose's joints all taken as observed. */
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_SKELETONS) + 8);
    memmove(r + 16, r + 20, 21 * 44);
    memset(r + 940, 0, 4);
    wr16(r + 8, 16);
    {
        static decoded d12;
        decoded_init(&d12);
        km_wire_frame w12;
        assert_int_equal(km_wire_decode_streams(f.buf, f.length, &d12.storage, &d12.streams,
                                                &w12),
                         KM_OK);
        assert_int_equal(d12.skel[0].joints_observed, KM_SKELETON_ALL_JOINTS);
        assert_int_equal(d12.skel[1].joints_observed, 0); /* untracked */
        for (int jn = 0; jn < KM_JOINT_COUNT; jn++)
            assert_vec3_equal(d12.skel[0].joint_pos_m[jn], f.skel[0].joint_pos_m[jn]);
    }
    /* Fewer joints than 21 (a shorter future layout): the rest at rest. */
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_SKELETONS) + 8);
    wr16(r + 4, 20);
    static decoded d;
    decoded_init(&d);
    km_wire_frame w;
    assert_int_equal(km_wire_decode_streams(f.buf, f.length, &d.storage, &d.streams, &w), KM_OK);
    assert_true(d.skel[0].joint_rot[20].w == 1 && d.skel[0].joint_pos_m[20].x == 0);
    assert_true(d.skel[0].joint_pos_m[19].x == f.skel[0].joint_pos_m[19].x);
    /* Event name without a NUL, hand side out of range. */
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_EVENTS) + 8);
    r[48 + 63] = 'g';
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "NUL"));
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_EVENTS) + 8);
    r[2] = 3;
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_HAND_POSES) + 8);
    r[2] = 9;
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "side"));
    /* Person below -1 (the encoder never writes one), same_target outside -1..1. */
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_HAND_POSES) + 8);
    wr16(r, (uint16_t)-5);
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "person"));
    make_streams(&f);
    r = f.buf + rd32(entry_of(f.buf, KM_WIRE_SECTION_EVENTS) + 8);
    wr16(r + 44, 2);
    assert_int_equal(decode_all(f.buf, f.length), KM_ERR_FORMAT);
}

/* Rebuild message m with the records of section `type` grown by `extra` bytes (filled with
 * 0xee), as a later revision appending fields would write it. */
static size_t grow_section(const uint8_t *m, uint16_t type, size_t extra, uint8_t *out)
{
    int sections = rd16(m + 12);
    size_t table = rd16(m + 14);
    size_t at = table + 16u * (size_t)sections;
    memcpy(out, m, at);
    for (int s = 0; s < sections; s++) {
        uint8_t *e = out + table + 16 * s;
        size_t size = rd16(e + 2), count = rd32(e + 4), from = rd32(e + 8);
        size_t stride = rd16(e) == type ? size + extra : size;
        at = (at + 7) & ~(size_t)7;
        wr16(e + 2, (uint16_t)stride);
        wr32(e + 8, (uint32_t)at);
        wr32(e + 12, (uint32_t)(count * stride));
        for (size_t i = 0; i < count; i++) {
            memcpy(out + at, m + from + i * size, size);
            memset(out + at + size, 0xee, stride - size);
            at += stride;
        }
    }
    wr32(out + 16, (uint32_t)at);
    return at;
}

static void test_streams_grown_records(void **state)
{
    (void)state;
    static streams_fixture f;
    make_streams(&f);
    static const uint16_t types[] = {KM_WIRE_SECTION_RIGID_BODIES, KM_WIRE_SECTION_SKELETONS,
                                     KM_WIRE_SECTION_HAND_POSES, KM_WIRE_SECTION_EVENTS,
                                     KM_WIRE_SECTION_CAMERA_STATUS};
    static uint8_t grown[20000];
    static decoded d;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t length = grow_section(f.buf, types[t], 8, grown);
        assert_int_equal(length, f.length + 8 * rd32(entry_of(f.buf, types[t]) + 4));
        decoded_init(&d);
        km_wire_frame w;
        assert_int_equal(km_wire_decode_streams(grown, length, &d.storage, &d.streams, &w),
                         KM_OK);
        assert_int_equal(d.rigid[1].id, f.rigid[1].id);
        assert_true(d.skel[2].joint_rot[20].w == f.skel[2].joint_rot[20].w);
        assert_true(d.hands[1].landmark_m[1].y == f.hands[1].landmark_m[1].y);
        assert_string_equal(d.events[1].target, "panel-3");
        assert_true(d.cams[7].frames == f.cams[7].frames);
    }
}

static void test_streams_capacity(void **state)
{
    (void)state;
    static streams_fixture f;
    make_streams(&f);
    static decoded d;
    km_wire_frame w;
    int *caps[5];
    for (int i = 0; i < 5; i++) {
        decoded_init(&d);
        caps[0] = &d.streams.rigid_body_capacity;
        caps[1] = &d.streams.skeleton_capacity;
        caps[2] = &d.streams.hand_capacity;
        caps[3] = &d.streams.event_capacity;
        caps[4] = &d.streams.camera_status_capacity;
        (*caps[i])--;
        assert_int_equal(km_wire_decode_streams(f.buf, f.length, &d.storage, &d.streams, &w),
                         KM_ERR_CAPACITY);
    }
    /* Storage with a capacity but no array: a caller error. */
    decoded_init(&d);
    d.streams.skeletons = NULL;
    assert_int_equal(km_wire_decode_streams(f.buf, f.length, &d.storage, &d.streams, &w),
                     KM_ERR_INVALID_ARGUMENT);
    /* Encoder: one byte short, negative counts, a count without its array. */
    static uint8_t out[16384];
    size_t length = 1;
    assert_int_equal(km_wire_encode_frame(&f.base.frame, out, f.length - 1, &length),
                     KM_ERR_CAPACITY);
    assert_int_equal(length, 0);
    f.base.frame.skeleton_count = -1;
    assert_int_equal(km_wire_encode_frame(&f.base.frame, out, sizeof out, &length),
                     KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_wire_encoded_size_frame(&f.base.frame, KM_WIRE_WITH_ALL), 0);
    f.base.frame.skeleton_count = PEOPLE;
    /* A count with a NULL array is ignored (like a NULL marker set): no section. */
    f.base.frame.hands = NULL;
    assert_int_equal(km_wire_frame_sections(&f.base.frame) & KM_WIRE_WITH_HANDS, 0);
    assert_int_equal(km_wire_encode_frame(&f.base.frame, out, sizeof out, &length), KM_OK);
    assert_int_equal(length, f.length - 16 - 288 * HANDS);
    /* ... but asked for explicitly it is an empty section. */
    assert_int_equal(km_wire_encode(&f.base.frame, KM_WIRE_WITH_HANDS, out, sizeof out, &length),
                     KM_OK);
    decoded_init(&d);
    assert_int_equal(km_wire_decode_streams(out, length, &d.storage, &d.streams, &w), KM_OK);
    assert_true(w.has_hands && w.hand_count == 0 && !w.has_markers);
    /* Size bounds. */
    assert_int_equal(km_wire_frame_size_max(-1, 0, 0, 0, 0), 0);
    assert_int_equal(km_wire_frame_size_max(0, 0, 0, 0, 0),
                     km_wire_encoded_size_sections(64, 0, 0, KM_WIRE_WITH_MARKERS) + 5 * 16 +
                         64 * 32);
    assert_int_equal(km_wire_frame_size_max(1 << 30, 0, 0, 0, 0), 0);
}

/* Decoders without storage for the v1.2 sections (v1.0/v1.1 callers) skip them. */
static void test_streams_old_decoder(void **state)
{
    (void)state;
    static streams_fixture f;
    make_streams(&f);
    km_marker markers[MARKERS];
    km_wire_frame w;
    assert_int_equal(km_wire_decode_frame(f.buf, f.length, markers, MARKERS, &w), KM_OK);
    assert_int_equal(w.sections_skipped, 6);
    assert_int_equal(w.marker_count, MARKERS);
    assert_true(markers[4].pos_m.z == f.base.markers[4].pos_m.z);
    assert_false(w.has_skeletons || w.has_rigid_bodies || w.has_hands);
    km_observation obs[3];
    km_wire_storage s = {markers, MARKERS, obs, 3};
    assert_int_equal(km_wire_decode(f.buf, f.length, &s, &w), KM_OK);
    assert_int_equal(w.sections_skipped, 5);
    assert_int_equal(w.observation_total, 3);
    /* A decoder given only skeleton storage skips the other new sections. */
    static km_skeleton_pose skel[PEOPLE];
    km_wire_stream_storage x = {0};
    x.skeletons = skel;
    x.skeleton_capacity = PEOPLE;
    assert_int_equal(km_wire_decode_streams(f.buf, f.length, &s, &x, &w), KM_OK);
    assert_int_equal(w.sections_skipped, 4);
    assert_true(w.has_skeletons && w.skeleton_count == PEOPLE);
    assert_true(skel[2].joint_pos_m[7].y == f.skel[2].joint_pos_m[7].y);
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
        cmocka_unit_test(test_streams_round_trip),
        cmocka_unit_test(test_streams_layout),
        cmocka_unit_test(test_streams_truncation_every_offset),
        cmocka_unit_test(test_streams_bad_records),
        cmocka_unit_test(test_streams_grown_records),
        cmocka_unit_test(test_streams_capacity),
        cmocka_unit_test(test_streams_old_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
