/* Recording format: writer -> reader round trip bit-exact for every stream kind, power-loss
 * truncation at every byte offset of the last records, CRC corruption, lost/damaged index
 * rebuilt by a scan, seeking, repair by append, malformed files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinema/recording.h"
#include "kinema/transport.h"

#define N_FRAMES 6

typedef struct expected {
    int stream;
    uint64_t sequence, time_ns;
    uint32_t flags;
    uint8_t *payload;           /* what the record's payload must be, byte for byte */
    size_t payload_bytes;
} expected;

typedef struct fixture {
    char path[256];
    km_rig rig;
    km_recording_stream desc[6];
    int ids[6];
    expected rec[64];
    int count;
} fixture;

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static void make_rig(km_rig *rig)
{
    memset(rig, 0, sizeof *rig);
    snprintf(rig->name, sizeof rig->name, "test-rig");
    rig->camera_count = 3;
    for (int c = 0; c < 3; c++) {
        km_camera_look_at(&rig->cameras[c], "cam", 32, 24, 1.0,
                          km_vec3_make(2.0 * c - 2.0, 1.5, 3.0), km_vec3_make(0, 1, 0));
        snprintf(rig->cameras[c].name, sizeof rig->cameras[c].name, "cam%d", c);
        rig->cameras[c].dist[0] = -0.1 * c + 1e-17; /* not representable in short decimal */
    }
}

/* Expected payload of an image record: the 24-byte image header then the pixels. */
static void expect_image(fixture *fx, int stream, const km_frame *f)
{
    expected *e = &fx->rec[fx->count++];
    e->stream = stream;
    e->sequence = f->sequence;
    e->time_ns = f->time_ns;
    e->flags = f->flags;
    e->payload_bytes = 24 + f->size;
    e->payload = malloc(e->payload_bytes);
    le32(e->payload, (uint32_t)f->width);
    le32(e->payload + 4, (uint32_t)f->height);
    le32(e->payload + 8, (uint32_t)f->stride);
    le32(e->payload + 12, (uint32_t)f->format);
    le64(e->payload + 16, f->arrival_ns);
    memcpy(e->payload + 24, f->data, f->size);
}

/* Write a recording with all kinds of streams, interleaved as live. */
static void write_fixture(fixture *fx, const char *name, bool with_rig)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->path, sizeof fx->path, "/tmp/km_test_recording_%d_%s.kmr", (int)getpid(), name);
    km_status st;
    km_recorder_config cfg = km_recorder_config_default();
    cfg.buffer_bytes = 4096; /* small: forces buffered, flushed and direct (large) writes */
    km_recorder *w = km_recorder_create(fx->path, &cfg, &st);
    assert_non_null(w);
    make_rig(&fx->rig);
    if (with_rig) assert_int_equal(km_recorder_set_rig(w, &fx->rig), KM_OK);
    const km_pixel_format formats[4] = {KM_PIXEL_GRAY8, KM_PIXEL_GRAY16, KM_PIXEL_DEPTH16,
                                        KM_PIXEL_MJPEG};
    for (int s = 0; s < 4; s++) {
        km_recording_stream *d = &fx->desc[s];
        d->kind = KM_RECORDING_STREAM_IMAGES;
        d->camera = s < 3 ? s : 0;
        snprintf(d->name, sizeof d->name, "stream%d", s);
        snprintf(d->serial, sizeof d->serial, "SN-%d", 1000 + s);
        d->width = 32;
        d->height = 24;
        d->format = formats[s];
        d->rate_hz = 120.0;
        assert_int_equal(km_recorder_add_stream(w, d, &fx->ids[s]), KM_OK);
        assert_int_equal(fx->ids[s], s);
    }
    fx->desc[4].kind = KM_RECORDING_STREAM_OBSERVATIONS;
    fx->desc[4].camera = -1;
    snprintf(fx->desc[4].name, sizeof fx->desc[4].name, "obs");
    fx->desc[4].rate_hz = 120.0;
    assert_int_equal(km_recorder_add_stream(w, &fx->desc[4], &fx->ids[4]), KM_OK);
    fx->desc[5].kind = KM_RECORDING_STREAM_SOLVED;
    fx->desc[5].camera = -1;
    snprintf(fx->desc[5].name, sizeof fx->desc[5].name, "solved");
    fx->desc[5].rate_hz = 120.0;
    assert_int_equal(km_recorder_add_stream(w, &fx->desc[5], &fx->ids[5]), KM_OK);

    uint8_t pixels[(32 * 2 + 8) * 24]; /* widest: gray16 with padded rows */
    uint8_t mjpeg[9000];
    for (int k = 0; k < N_FRAMES; k++) {
        uint64_t t = 1000000000ull + (uint64_t)k * 8333333ull;
        for (int s = 0; s < 4; s++) {
            km_frame f;
            memset(&f, 0, sizeof f);
            f.time_ns = t + (uint64_t)s * 1000u;
            f.arrival_ns = f.time_ns + 2500000u + (uint64_t)s;
            f.sequence = (uint64_t)k + (s == 1 && k >= 3 ? 1u : 0u); /* stream 1 drops one */
            f.camera = fx->desc[s].camera;
            f.width = 32;
            f.height = 24;
            f.format = formats[s];
            f.flags = (k == 2) ? KM_FRAME_FLAG_INCOMPLETE : 0;
            if (formats[s] == KM_PIXEL_MJPEG) {
                /* Compressed: any length, here larger than the 4 KiB buffer on frame 4. */
                f.size = k == 4 ? sizeof mjpeg : 100 + 37u * (unsigned)k;
                for (size_t i = 0; i < f.size; i++) mjpeg[i] = (uint8_t)rnd();
                mjpeg[0] = 0xff;
                mjpeg[1] = 0xd8;
                f.data = mjpeg;
                f.stride = 0;
            } else {
                int bpp = formats[s] == KM_PIXEL_GRAY8 ? 1 : 2;
                f.stride = 32 * bpp + (s == 1 ? 8 : 0); /* padded rows on gray16 */
                f.size = (size_t)f.stride * 24;
                for (size_t i = 0; i < f.size; i++) pixels[i] = (uint8_t)rnd();
                f.data = pixels;
            }
            f.capacity = f.size;
            assert_int_equal(km_recorder_write_frame(w, fx->ids[s], &f), KM_OK);
            expect_image(fx, fx->ids[s], &f);
        }
        /* Observations: k rows (0 on the first frame: an empty set round-trips too). */
        km_observation items[8];
        km_observation_set obs = {(uint64_t)k, t, k, 8, items};
        expected *e = &fx->rec[fx->count++];
        e->stream = fx->ids[4];
        e->sequence = (uint64_t)k;
        e->time_ns = t;
        e->payload_bytes = 8 + 32u * (size_t)k;
        e->payload = calloc(1, e->payload_bytes);
        le32(e->payload, (uint32_t)k);
        for (int i = 0; i < k; i++) {
            items[i].x = (double)rnd() / 7.0;
            items[i].y = -(double)rnd() / 3.0;
            items[i].area_px = 1.0 / (1.0 + i);
            items[i].camera = i % 3;
            memcpy(e->payload + 8 + 32 * i, &items[i].x, 8);
            memcpy(e->payload + 8 + 32 * i + 8, &items[i].y, 8);
            memcpy(e->payload + 8 + 32 * i + 16, &items[i].area_px, 8);
            le32(e->payload + 8 + 32 * i + 24, (uint32_t)items[i].camera);
        }
        assert_int_equal(km_recorder_write_observations(w, fx->ids[4], &obs), KM_OK);
        /* Solved frame: wire v1 bytes. */
        km_marker markers[4];
        km_marker_set ms = {(uint64_t)k, t, 3, 4, markers};
        for (int i = 0; i < 3; i++) {
            markers[i].id = (uint32_t)(i + 10 * k);
            markers[i].pos_m = km_vec3_make(0.1 * i, 1.0 + 0.01 * k, -0.5);
            markers[i].residual_px = 0.25;
            markers[i].views = 3;
        }
        km_solved_frame sf;
        memset(&sf, 0, sizeof sf);
        sf.frame = (uint64_t)k;
        sf.capture_time_ns = t;
        sf.solved_time_ns = t + 1000;
        sf.publish_time_ns = t + 2000;
        sf.camera_count = 3;
        sf.observation_count[0] = (uint16_t)k;
        sf.markers = &ms;
        uint8_t wire[1024];
        size_t len = 0;
        assert_int_equal(km_wire_encode_frame(&sf, wire, sizeof wire, &len), KM_OK);
        assert_int_equal(km_recorder_write_record(w, fx->ids[5], sf.frame, t, 0, wire, len), KM_OK);
        e = &fx->rec[fx->count++];
        e->stream = fx->ids[5];
        e->sequence = (uint64_t)k;
        e->time_ns = t;
        e->payload_bytes = len;
        e->payload = malloc(len);
        memcpy(e->payload, wire, len);
    }
    assert_int_equal(km_recorder_close(w), KM_OK);
}

static void free_fixture(fixture *fx)
{
    for (int i = 0; i < fx->count; i++) free(fx->rec[i].payload);
    unlink(fx->path);
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}

static void check_record(const expected *e, const km_record *r)
{
    assert_int_equal(r->stream, e->stream);
    assert_int_equal(r->sequence, e->sequence);
    assert_int_equal(r->time_ns, e->time_ns);
    assert_int_equal(r->flags, e->flags);
    assert_int_equal(r->payload_bytes, e->payload_bytes);
    assert_memory_equal(r->payload, e->payload, e->payload_bytes);
}

static void test_round_trip_every_stream_kind(void **state)
{
    (void)state;
    fixture fx;
    write_fixture(&fx, "roundtrip", true);
    km_status st;
    km_recording *r = km_recording_open(fx.path, &st);
    assert_non_null(r);
    km_recording_info info;
    km_recording_get_info(r, &info);
    assert_false(info.truncated);
    assert_false(info.index_rebuilt);
    assert_int_equal(info.records, (uint64_t)fx.count);
    assert_int_equal(info.version_major, KM_RECORDING_VERSION_MAJOR);
    /* Rig: bit-exact doubles. */
    const km_rig *rig = km_recording_rig(r);
    assert_non_null(rig);
    assert_string_equal(rig->name, fx.rig.name);
    assert_int_equal(rig->camera_count, fx.rig.camera_count);
    for (int c = 0; c < rig->camera_count; c++) {
        assert_string_equal(rig->cameras[c].name, fx.rig.cameras[c].name);
        assert_memory_equal(rig->cameras[c].K, fx.rig.cameras[c].K, sizeof rig->cameras[c].K);
        assert_memory_equal(rig->cameras[c].dist, fx.rig.cameras[c].dist, sizeof rig->cameras[c].dist);
        assert_memory_equal(&rig->cameras[c].R, &fx.rig.cameras[c].R, sizeof(km_mat3));
        assert_memory_equal(&rig->cameras[c].t, &fx.rig.cameras[c].t, sizeof(km_vec3));
        assert_int_equal(rig->cameras[c].has_pose, fx.rig.cameras[c].has_pose);
    }
    /* Streams: descriptions and what the index says. */
    assert_int_equal(km_recording_stream_count(r), 6);
    for (int s = 0; s < 6; s++) {
        const km_recording_stream *d = km_recording_stream_get(r, s);
        assert_int_equal(d->kind, fx.desc[s].kind);
        assert_int_equal(d->camera, fx.desc[s].camera);
        assert_string_equal(d->name, fx.desc[s].name);
        assert_string_equal(d->serial, fx.desc[s].serial);
        assert_true(d->rate_hz == 120.0);
        assert_int_equal(d->records, N_FRAMES);
        if (d->kind == KM_RECORDING_STREAM_IMAGES) {
            assert_int_equal(d->width, 32);
            assert_int_equal(d->format, fx.desc[s].format);
        }
    }
    assert_int_equal(km_recording_stream_get(r, 1)->sequence_gaps, 1);
    assert_int_equal(km_recording_stream_get(r, 0)->sequence_gaps, 0);
    assert_null(km_recording_stream_get(r, 6));

    /* Every record, in order, byte for byte; then the end. */
    km_record rec;
    for (int i = 0; i < fx.count; i++) {
        assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
        check_record(&fx.rec[i], &rec);
        if (rec.kind == KM_RECORDING_STREAM_IMAGES) {
            km_frame f;
            assert_int_equal(km_record_decode_frame(r, &rec, &f), KM_OK);
            assert_int_equal(f.size, fx.rec[i].payload_bytes - 24);
            assert_memory_equal(f.data, fx.rec[i].payload + 24, f.size);
            assert_int_equal(f.camera, fx.desc[rec.stream].camera);
            /* Straight into a caller's frame: same bytes and metadata. */
            uint8_t buf[10000];
            km_frame g;
            memset(&g, 0, sizeof g);
            g.data = buf;
            g.capacity = sizeof buf;
            assert_int_equal(km_recording_read_frame(r, rec.index, &g), KM_OK);
            assert_int_equal(g.size, f.size);
            assert_memory_equal(g.data, f.data, f.size);
            assert_int_equal(g.time_ns, f.time_ns);
            assert_int_equal(g.arrival_ns, f.arrival_ns);
            assert_int_equal(g.sequence, f.sequence);
            assert_int_equal(g.stride, f.stride);
            assert_int_equal(g.flags, f.flags);
            assert_int_equal(g.format, f.format);
            g.capacity = 10;
            assert_int_equal(km_recording_read_frame(r, rec.index, &g), KM_ERR_CAPACITY);
        } else if (rec.kind == KM_RECORDING_STREAM_OBSERVATIONS) {
            km_observation items[8];
            km_observation_set obs = {0, 0, 0, 8, items};
            assert_int_equal(km_record_decode_observations(&rec, &obs), KM_OK);
            assert_int_equal(obs.frame, rec.sequence);
            assert_int_equal(obs.count, (int)rec.sequence);
            km_observation_set small = {0, 0, 0, 1, items};
            if (obs.count > 1)
                assert_int_equal(km_record_decode_observations(&rec, &small), KM_ERR_CAPACITY);
        } else {
            km_marker storage[8];
            km_wire_frame wf;
            assert_int_equal(km_wire_decode_frame(rec.payload, rec.payload_bytes, storage, 8, &wf),
                             KM_OK);
            assert_int_equal(wf.frame, rec.sequence);
            assert_int_equal(wf.marker_count, 3);
        }
    }
    assert_int_equal(km_recording_next(r, -1, &rec), KM_ERR_END_OF_STREAM);
    /* Filter by stream. */
    km_recording_rewind(r);
    int n = 0;
    while (km_recording_next(r, 5, &rec) == KM_OK) {
        assert_int_equal(rec.stream, 5);
        n++;
    }
    assert_int_equal(n, N_FRAMES);
    km_recording_check chk;
    assert_int_equal(km_recording_verify(r, &chk, NULL, NULL), KM_OK);
    assert_int_equal(chk.records_ok, (uint64_t)fx.count);
    assert_int_equal(chk.crc_errors, 0);
    km_recording_close(r);

    /* The same bytes through the memory reader. */
    size_t size;
    uint8_t *bytes = read_file(fx.path, &size);
    r = km_recording_open_memory(bytes, size, "mem", &st);
    assert_non_null(r);
    for (int i = 0; i < fx.count; i++) {
        assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
        check_record(&fx.rec[i], &rec);
    }
    km_recording_close(r);
    free(bytes);
    free_fixture(&fx);
}

/* Power loss: every prefix that cuts into the last records (or the index) opens and yields
 * exactly the records complete in it, then reports the cut with its offset. */
static void test_truncated_at_every_byte(void **state)
{
    (void)state;
    fixture fx;
    write_fixture(&fx, "truncate", true);
    size_t size;
    uint8_t *bytes = read_file(fx.path, &size);
    km_status st;
    km_recording *full = km_recording_open_memory(bytes, size, "full", &st);
    assert_non_null(full);
    /* Record ends, from the index. */
    size_t total = km_recording_record_count(full);
    assert_int_equal(total, (size_t)fx.count);
    uint64_t ends[64];
    for (size_t i = 0; i < total; i++) {
        km_record e;
        assert_int_equal(km_recording_peek(full, i, &e), KM_OK);
        ends[i] = e.offset + KM_RECORDING_RECORD_HEADER_SIZE + e.payload_bytes;
    }
    km_record first_cut;
    km_recording_peek(full, total - 4, &first_cut);
    km_recording_close(full);
    long cuts = 0;
    for (size_t cut = (size_t)first_cut.offset; cut <= size; cut++) {
        km_recording *r = km_recording_open_memory(bytes, cut, "cut", &st);
        assert_non_null(r);
        km_recording_info info;
        km_recording_get_info(r, &info);
        size_t complete = 0;
        while (complete < total && ends[complete] <= cut) complete++;
        assert_int_equal(info.records, complete);
        assert_int_equal(info.truncated, cut != size);
        km_record rec;
        for (size_t i = 0; i < complete; i++) {
            assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
            check_record(&fx.rec[i], &rec);
        }
        st = km_recording_next(r, -1, &rec);
        if (cut == size) {
            assert_int_equal(st, KM_ERR_END_OF_STREAM);
        } else {
            assert_int_equal(st, KM_ERR_FORMAT);
            char needle[64];
            snprintf(needle, sizeof needle, "offset %llu", (unsigned long long)info.cut_offset);
            assert_non_null(strstr(km_last_error(), needle));
            assert_non_null(strstr(km_last_error(), "cut off"));
            assert_true(info.cut_offset <= cut);
            assert_true(info.cut_offset >= (complete ? ends[complete - 1] : 0));
        }
        km_recording_close(r);
        cuts++;
    }
    assert_true(cuts > 1000);
    print_message("truncation: %ld cut offsets checked (last 4 records + index + end)\n", cuts);
    free(bytes);
    free_fixture(&fx);
}

static void test_crc_corruption_detected(void **state)
{
    (void)state;
    fixture fx;
    write_fixture(&fx, "crc", false);
    size_t size;
    uint8_t *bytes = read_file(fx.path, &size);
    km_status st;
    km_recording *r = km_recording_open_memory(bytes, size, "x", &st);
    km_record victim;
    km_recording_peek(r, 7, &victim);
    km_recording_close(r);
    /* One bit flipped in a payload: the index is intact, the record fails its CRC. */
    bytes[victim.offset + KM_RECORDING_RECORD_HEADER_SIZE + 30] ^= 0x10;
    r = km_recording_open_memory(bytes, size, "flip", &st);
    assert_non_null(r);
    km_record rec;
    for (int i = 0; i < fx.count; i++) {
        st = km_recording_next(r, -1, &rec);
        if (i == 7) {
            assert_int_equal(st, KM_ERR_FORMAT);
            assert_non_null(strstr(km_last_error(), "CRC"));
            char needle[64];
            snprintf(needle, sizeof needle, "offset %llu", (unsigned long long)victim.offset);
            assert_non_null(strstr(km_last_error(), needle));
        } else {
            assert_int_equal(st, KM_OK); /* the iterator went on past the bad record */
            check_record(&fx.rec[i], &rec);
        }
    }
    km_recording_check chk;
    assert_int_equal(km_recording_verify(r, &chk, NULL, NULL), KM_OK);
    assert_int_equal(chk.crc_errors, 1);
    assert_int_equal(chk.first_bad_offset, victim.offset);
    km_recording_close(r);
    /* Header damage: the header CRC catches it. */
    bytes[victim.offset + KM_RECORDING_RECORD_HEADER_SIZE + 30] ^= 0x10;
    bytes[victim.offset + 17] ^= 0x01; /* sequence */
    r = km_recording_open_memory(bytes, size, "hdr", &st);
    assert_non_null(r);
    assert_int_equal(km_recording_read(r, 7, &rec), KM_ERR_FORMAT);
    km_recording_close(r);
    /* Without the index, the scan cannot trust that header: it stops there (the cut). */
    r = km_recording_open_memory(bytes, size - 56, "hdr-scan", &st);
    assert_non_null(r);
    km_recording_info info;
    km_recording_get_info(r, &info);
    assert_true(info.truncated);
    assert_int_equal(info.records, 7);
    assert_int_equal(info.cut_offset, victim.offset);
    km_recording_close(r);
    /* Payload damage without the index: the scan skips the record and keeps the rest. */
    bytes[victim.offset + 17] ^= 0x01;
    bytes[victim.offset + KM_RECORDING_RECORD_HEADER_SIZE + 30] ^= 0x10;
    r = km_recording_open_memory(bytes, size - 56, "payload-scan", &st);
    assert_non_null(r);
    km_recording_get_info(r, &info);
    assert_int_equal(info.damaged_records, 1);
    assert_int_equal(info.records, (uint64_t)fx.count - 1);
    km_recording_close(r);
    free(bytes);
    free_fixture(&fx);
}

static void test_index_missing_rebuilt(void **state)
{
    (void)state;
    fixture fx;
    write_fixture(&fx, "index", true);
    size_t size;
    uint8_t *bytes = read_file(fx.path, &size);
    km_status st;
    /* 1. Index damaged (a byte of its payload), END intact: scanned, nothing cut. */
    km_recording *r = km_recording_open_memory(bytes, size, "x", &st);
    km_record last;
    km_recording_peek(r, (size_t)fx.count - 1, &last);
    km_recording_close(r);
    uint64_t index_at = last.offset + KM_RECORDING_RECORD_HEADER_SIZE + last.payload_bytes;
    bytes[index_at + KM_RECORDING_RECORD_HEADER_SIZE + 20] ^= 0xff;
    r = km_recording_open_memory(bytes, size, "bad-index", &st);
    assert_non_null(r);
    km_recording_info info;
    km_recording_get_info(r, &info);
    assert_true(info.index_rebuilt);
    assert_false(info.truncated);
    assert_int_equal(info.records, (uint64_t)fx.count);
    assert_true(info.has_rig);
    km_record rec;
    for (int i = 0; i < fx.count; i++) {
        assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
        check_record(&fx.rec[i], &rec);
    }
    assert_int_equal(km_recording_next(r, -1, &rec), KM_ERR_END_OF_STREAM);
    km_recording_close(r);
    bytes[index_at + KM_RECORDING_RECORD_HEADER_SIZE + 20] ^= 0xff;
    /* 2. Index and END gone (writer killed before close): scanned, reported cut at the end. */
    r = km_recording_open_memory(bytes, (size_t)index_at, "no-index", &st);
    assert_non_null(r);
    km_recording_get_info(r, &info);
    assert_true(info.index_rebuilt);
    assert_true(info.truncated);
    assert_int_equal(info.cut_offset, index_at);
    assert_int_equal(info.records, (uint64_t)fx.count);
    km_recording_close(r);
    /* 3. Repair: append-open the cut file and close it: a complete, indexed file again. */
    write_file(fx.path, bytes, (size_t)index_at - 100); /* cut into the last record too */
    km_recorder *w = km_recorder_open_append(fx.path, NULL, &st);
    assert_non_null(w);
    assert_int_equal(km_recorder_close(w), KM_OK);
    r = km_recording_open(fx.path, &st);
    assert_non_null(r);
    km_recording_get_info(r, &info);
    assert_false(info.index_rebuilt);
    assert_false(info.truncated);
    assert_int_equal(info.records, (uint64_t)fx.count - 1);
    assert_true(info.has_rig);
    for (int i = 0; i < fx.count - 1; i++) {
        assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
        check_record(&fx.rec[i], &rec);
    }
    km_recording_close(r);
    /* 4. Append to a complete file: a new stream and a record after the old ones. */
    w = km_recorder_open_append(fx.path, NULL, &st);
    assert_non_null(w);
    km_recording_stream d = fx.desc[5];
    int id = -1;
    assert_int_equal(km_recorder_add_stream(w, &d, &id), KM_OK);
    assert_int_equal(id, 6);
    assert_int_equal(km_recorder_write_record(w, id, 77, 5, 0, "abc", 3), KM_OK);
    assert_int_equal(km_recorder_close(w), KM_OK);
    r = km_recording_open(fx.path, &st);
    assert_non_null(r);
    km_recording_get_info(r, &info);
    assert_false(info.index_rebuilt);
    assert_int_equal(info.records, (uint64_t)fx.count);
    assert_int_equal(km_recording_stream_count(r), 7);
    assert_int_equal(km_recording_read(r, (size_t)fx.count - 1, &rec), KM_OK);
    assert_int_equal(rec.sequence, 77);
    assert_memory_equal(rec.payload, "abc", 3);
    km_recording_close(r);
    free(bytes);
    free_fixture(&fx);
}

static void test_seek(void **state)
{
    (void)state;
    fixture fx;
    write_fixture(&fx, "seek", false);
    km_status st;
    km_recording *r = km_recording_open(fx.path, &st);
    assert_non_null(r);
    km_record rec;
    uint64_t t3 = 1000000000ull + 3u * 8333333ull;
    assert_int_equal(km_recording_seek_time(r, 2, t3), KM_OK);
    assert_int_equal(km_recording_next(r, 2, &rec), KM_OK);
    assert_int_equal(rec.sequence, 3);
    assert_int_equal(rec.time_ns, t3 + 2000);
    assert_int_equal(km_recording_next(r, 2, &rec), KM_OK);
    assert_int_equal(rec.sequence, 4);
    /* Any stream: the first record at or after t3 in file order is stream 0's frame 3. */
    assert_int_equal(km_recording_seek_time(r, -1, t3), KM_OK);
    assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
    assert_int_equal(rec.stream, 0);
    assert_int_equal(rec.sequence, 3);
    /* Sequence: stream 1 skipped 3 (4 follows 2). */
    assert_int_equal(km_recording_seek_sequence(r, 1, 3), KM_OK);
    assert_int_equal(km_recording_next(r, 1, &rec), KM_OK);
    assert_int_equal(rec.sequence, 4);
    assert_int_equal(km_recording_seek_sequence(r, 5, 100), KM_ERR_NOT_FOUND);
    assert_int_equal(km_recording_next(r, -1, &rec), KM_ERR_END_OF_STREAM);
    assert_int_equal(km_recording_seek_time(r, 0, UINT64_MAX), KM_ERR_NOT_FOUND);
    km_recording_rewind(r);
    assert_int_equal(km_recording_next(r, -1, &rec), KM_OK);
    assert_int_equal(rec.index, 0);
    km_recording_close(r);
    free_fixture(&fx);
}

static void test_malformed_and_misuse(void **state)
{
    (void)state;
    km_status st;
    static const uint8_t junk[] = "NOTAREC-------------------------------------";
    assert_null(km_recording_open_memory(junk, sizeof junk, "junk", &st));
    assert_int_equal(st, KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "offset 0"));
    uint8_t v2[16] = {'K', 'I', 'N', 'E', 'M', 'R', 'E', 'C', 2, 0, 0, 0, 40, 0, 0, 0};
    assert_null(km_recording_open_memory(v2, sizeof v2, "v2", &st));
    assert_int_equal(st, KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "version"));
    /* A bare preamble: an empty recording that was never closed. */
    v2[8] = 1;
    km_recording *r = km_recording_open_memory(v2, sizeof v2, "empty", &st);
    assert_non_null(r);
    km_recording_info info;
    km_recording_get_info(r, &info);
    assert_true(info.truncated);
    assert_int_equal(info.records, 0);
    km_recording_close(r);
    assert_null(km_recording_open("/nonexistent/x.kmr", &st));
    assert_int_equal(st, KM_ERR_IO);

    char path[128];
    snprintf(path, sizeof path, "/tmp/km_test_recording_%d_misuse.kmr", (int)getpid());
    km_recorder *w = km_recorder_create(path, NULL, &st);
    assert_non_null(w);
    km_recording_stream d;
    memset(&d, 0, sizeof d);
    d.kind = KM_RECORDING_STREAM_IMAGES;
    d.width = 0; /* invalid */
    d.format = KM_PIXEL_GRAY8;
    int id;
    assert_int_equal(km_recorder_add_stream(w, &d, &id), KM_ERR_INVALID_ARGUMENT);
    d.width = d.height = 4;
    assert_int_equal(km_recorder_add_stream(w, &d, &id), KM_OK);
    uint8_t px[16] = {0};
    km_frame f = {.width = 4, .height = 4, .stride = 4, .format = KM_PIXEL_GRAY16, .data = px,
                  .size = 16, .capacity = 16};
    assert_int_equal(km_recorder_write_frame(w, id, &f), KM_ERR_INVALID_ARGUMENT);
    km_observation_set obs = {0, 0, 0, 0, NULL};
    assert_int_equal(km_recorder_write_observations(w, id, &obs), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_recorder_write_record(w, 9, 0, 0, 0, px, 1), KM_ERR_INVALID_ARGUMENT);
    km_rig rig;
    make_rig(&rig);
    assert_int_equal(km_recorder_set_rig(w, &rig), KM_OK);
    assert_int_equal(km_recorder_set_rig(w, &rig), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_recorder_close(w), KM_OK);
    assert_int_equal(km_recorder_close(NULL), KM_OK);
    unlink(path);
}

int main(void)
{
    km_log_set_level(KM_LOG_ERROR); /* thousands of expected "cut off" warnings */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_stream_kind),
        cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_crc_corruption_detected),
        cmocka_unit_test(test_index_missing_rebuilt),
        cmocka_unit_test(test_seek),
        cmocka_unit_test(test_malformed_and_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
