/* The replay km_source and the pipeline run from a recording:
 * - a recording of synthetic camera frames replays the same frames, pixels and metadata
 *   bit-exact (original time), shifted time keeps intervals, looping continues time and
 *   sequence, pacing follows the recorded intervals, a cut recording replays its complete
 *   frames;
 * - the whole pipeline from the recording solves exactly what it solves from the synthetic
 *   source for the same frames (markers compared bit for bit through the frame callback). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinema/pipeline.h"
#include "kinema/recording.h"

#define FRAMES 16

static km_synthetic_config scene_config(void)
{
    km_synthetic_config sc = km_synthetic_config_default();
    sc.camera_count = 4;
    sc.width = 640;
    sc.height = 512;
    sc.duration_s = FRAMES / sc.rate_hz;
    return sc;
}

/* Record every camera of the scene for FRAMES frames, as `kinema record --synthetic` does:
 * the synthetic sources (all started at one time base) through km_recorder_write_frame. */
static void record_scene(const char *path, const km_synthetic_config *sc, uint64_t start_ns)
{
    km_status st;
    km_synthetic_scene *scene = km_synthetic_scene_create(sc, &st);
    assert_non_null(scene);
    km_recorder *w = km_recorder_create(path, NULL, &st);
    assert_non_null(w);
    assert_int_equal(km_recorder_set_rig(w, km_synthetic_scene_rig(scene)), KM_OK);
    km_source *src[8];
    int ids[8];
    for (int c = 0; c < sc->camera_count; c++) {
        src[c] = km_synthetic_source_create_at(scene, c, false, start_ns, &st);
        assert_non_null(src[c]);
        km_source_info info;
        km_source_describe(src[c], &info);
        assert_int_equal(km_recorder_add_source_stream(w, &info, &ids[c]), KM_OK);
        assert_int_equal(km_source_start(src[c]), KM_OK);
    }
    size_t bytes = (size_t)sc->width * (size_t)sc->height;
    uint8_t *buf = malloc(bytes);
    for (int k = 0; k < FRAMES; k++) {
        for (int c = 0; c < sc->camera_count; c++) {
            km_frame f;
            memset(&f, 0, sizeof f);
            f.data = buf;
            f.capacity = bytes;
            assert_int_equal(km_source_next_frame(src[c], &f, 0), KM_OK);
            assert_int_equal(km_recorder_write_frame(w, ids[c], &f), KM_OK);
        }
    }
    for (int c = 0; c < sc->camera_count; c++) km_source_destroy(src[c]);
    assert_int_equal(km_recorder_close(w), KM_OK);
    free(buf);
    km_synthetic_scene_destroy(scene);
}

static char rec_path[256];

static int setup(void **state)
{
    (void)state;
    snprintf(rec_path, sizeof rec_path, "/tmp/km_test_replay_%d.kmr", (int)getpid());
    km_synthetic_config sc = scene_config();
    record_scene(rec_path, &sc, 5000000000ull);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(rec_path);
    return 0;
}

static void test_replay_delivers_same_frames(void **state)
{
    (void)state;
    km_synthetic_config sc = scene_config();
    km_status st;
    km_synthetic_scene *scene = km_synthetic_scene_create(&sc, &st);
    size_t bytes = (size_t)sc.width * (size_t)sc.height;
    uint8_t *want = malloc(bytes), *got = malloc(bytes);
    km_replay_config rc = km_replay_config_default();
    rc.realtime = false;
    rc.time = KM_REPLAY_TIME_ORIGINAL;
    km_source *sources[8];
    int count = 0;
    assert_int_equal(km_replay_sources_create(rec_path, &rc, sources, 8, &count), KM_OK);
    assert_int_equal(count, sc.camera_count);
    for (int c = 0; c < count; c++) {
        km_source_info info;
        km_source_describe(sources[c], &info);
        assert_string_equal(info.backend, "replay");
        assert_int_equal(info.camera, c);
        assert_int_equal(info.width, sc.width);
        assert_int_equal(info.format, KM_PIXEL_GRAY8);
        assert_true(info.max_frame_bytes >= bytes);
        km_source *syn = km_synthetic_source_create_at(scene, c, false, 5000000000ull, &st);
        assert_int_equal(km_source_start(sources[c]), KM_OK);
        assert_int_equal(km_source_start(syn), KM_OK);
        for (int k = 0; k < FRAMES; k++) {
            km_frame a, b;
            memset(&a, 0, sizeof a);
            memset(&b, 0, sizeof b);
            a.data = want;
            a.capacity = bytes;
            b.data = got;
            b.capacity = bytes;
            assert_int_equal(km_source_next_frame(syn, &a, 0), KM_OK);
            assert_int_equal(km_source_next_frame(sources[c], &b, 0), KM_OK);
            assert_int_equal(b.time_ns, a.time_ns);
            /* arrival_ns: the synthetic source stamps the render time (differs per run);
             * the recorded value comes back exactly (tests/capture/test_recording.c). */
            assert_int_equal(b.sequence, a.sequence);
            assert_int_equal(b.camera, a.camera);
            assert_int_equal(b.width, a.width);
            assert_int_equal(b.height, a.height);
            assert_int_equal(b.stride, a.stride);
            assert_int_equal(b.format, a.format);
            assert_int_equal(b.size, a.size);
            assert_int_equal(b.flags, a.flags);
            assert_memory_equal(b.data, a.data, a.size);
        }
        km_frame end;
        memset(&end, 0, sizeof end);
        end.data = got;
        end.capacity = bytes;
        assert_int_equal(km_source_next_frame(sources[c], &end, 0), KM_ERR_END_OF_STREAM);
        km_source_destroy(syn);
        km_source_destroy(sources[c]);
    }
    free(want);
    free(got);
    km_synthetic_scene_destroy(scene);
}

static void test_shift_loop_and_pacing(void **state)
{
    (void)state;
    size_t bytes = 640 * 512;
    uint8_t *buf = malloc(bytes);
    km_status st;
    /* Shifted to a start, looped: time and sequence go on increasing through the lap. */
    km_replay_config rc = km_replay_config_default();
    rc.realtime = false;
    rc.loop = true;
    rc.time = KM_REPLAY_TIME_SHIFT;
    rc.start_time_ns = 42000000000ull;
    km_source *s = km_replay_source_create(rec_path, 1, &rc, &st);
    assert_non_null(s);
    assert_int_equal(km_source_start(s), KM_OK);
    uint64_t prev_t = 0, prev_seq = 0;
    const uint64_t period = 8333333; /* 1/120 s as the synthetic scene stamps it, +-1 ns */
    for (int k = 0; k < 3 * FRAMES; k++) {
        km_frame f;
        memset(&f, 0, sizeof f);
        f.data = buf;
        f.capacity = bytes;
        assert_int_equal(km_source_next_frame(s, &f, 0), KM_OK);
        if (k == 0) {
            assert_int_equal(f.time_ns, rc.start_time_ns); /* camera 1's first = first of all */
        } else {
            assert_true(f.time_ns - prev_t >= period - 1 && f.time_ns - prev_t <= period + 1);
            assert_int_equal(f.sequence, prev_seq + 1);
        }
        prev_t = f.time_ns;
        prev_seq = f.sequence;
    }
    km_source_destroy(s);
    /* Paced: FRAMES frames take (FRAMES-1)/120 s. */
    rc = km_replay_config_default();
    s = km_replay_source_create(rec_path, 0, &rc, &st);
    assert_non_null(s);
    assert_int_equal(km_source_start(s), KM_OK);
    uint64_t t0 = km_time_now_ns();
    int got = 0;
    while (got < FRAMES) {
        km_frame f;
        memset(&f, 0, sizeof f);
        f.data = buf;
        f.capacity = bytes;
        st = km_source_next_frame(s, &f, 50000000ull);
        if (st == KM_ERR_AGAIN) continue;
        assert_int_equal(st, KM_OK);
        assert_true(f.arrival_ns + 2000000 >= f.time_ns);
        got++;
    }
    double elapsed_s = (double)(km_time_now_ns() - t0) / 1e9;
    double expect_s = (FRAMES - 1) / 120.0;
    print_message("paced replay: %d frames in %.1f ms (recorded span %.1f ms)\n", FRAMES,
                  elapsed_s * 1e3, expect_s * 1e3);
    assert_true(elapsed_s >= expect_s - 0.002 && elapsed_s < expect_s + 0.5);
    km_source_destroy(s);
    /* Errors: not an image stream, missing file. */
    assert_null(km_replay_source_create(rec_path, 99, &rc, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_null(km_replay_source_create("/nonexistent.kmr", 0, &rc, &st));
    assert_int_equal(st, KM_ERR_IO);
    free(buf);
}

static void test_cut_recording_replays_complete_frames(void **state)
{
    (void)state;
    char cut_path[300];
    snprintf(cut_path, sizeof cut_path, "%s.cut", rec_path);
    FILE *in = fopen(rec_path, "rb");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *bytes = malloc((size_t)size);
    assert_int_equal(fread(bytes, 1, (size_t)size, in), (size_t)size);
    fclose(in);
    /* Cut in the middle of the last frame of camera 3 (the last record before the index). */
    km_status st;
    km_recording *r = km_recording_open_memory(bytes, (size_t)size, "x", &st);
    km_record last;
    km_recording_peek(r, km_recording_record_count(r) - 1, &last);
    km_recording_close(r);
    FILE *out = fopen(cut_path, "wb");
    fwrite(bytes, 1, (size_t)last.offset + 1000, out);
    fclose(out);
    km_replay_config rc = km_replay_config_default();
    rc.realtime = false;
    int counts[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        km_source *s = km_replay_source_create(cut_path, pass ? 3 : 2, &rc, &st);
        assert_non_null(s);
        km_source_start(s);
        uint8_t *buf = malloc(640 * 512);
        for (;;) {
            km_frame f;
            memset(&f, 0, sizeof f);
            f.data = buf;
            f.capacity = 640 * 512;
            st = km_source_next_frame(s, &f, 0);
            if (st == KM_ERR_END_OF_STREAM) break;
            assert_int_equal(st, KM_OK);
            counts[pass]++;
        }
        free(buf);
        km_source_destroy(s);
    }
    assert_int_equal(counts[0], FRAMES);
    assert_int_equal(counts[1], FRAMES - 1);
    unlink(cut_path);
    free(bytes);
}

/* ---- pipeline: synthetic vs replay ---- */

typedef struct solved_log {
    int frames;
    uint64_t frame_number[64];
    int marker_count[64];
    km_marker markers[64][128];
    uint16_t observations[64][8];
} solved_log;

static void on_frame(void *user, const km_solved_frame *frame)
{
    solved_log *log = user;
    if (log->frames >= 64) return;
    int i = log->frames++;
    log->frame_number[i] = frame->frame;
    int n = frame->markers ? frame->markers->count : 0;
    if (n > 128) n = 128;
    log->marker_count[i] = n;
    if (n) memcpy(log->markers[i], frame->markers->items, (size_t)n * sizeof(km_marker));
    memcpy(log->observations[i], frame->observation_count, sizeof log->observations[i]);
}

static void run_pipeline(const km_pipeline_config *cfg, solved_log *log)
{
    km_status st;
    km_pipeline *p = km_pipeline_create(cfg, &st);
    if (!p) fail_msg("pipeline: %s", km_last_error());
    km_pipeline_set_frame_callback(p, on_frame, log);
    assert_int_equal(km_pipeline_start(p), KM_OK);
    for (;;) {
        int solved = 0;
        st = km_pipeline_step(p, 2000000000ull, &solved);
        if (st == KM_ERR_END_OF_STREAM) break;
        assert_true(st == KM_OK || st == KM_ERR_AGAIN || st == KM_ERR_CAPACITY);
    }
    km_pipeline_stats stats;
    km_pipeline_stats_get(p, &stats);
    assert_int_equal(stats.dropped_frames, 0);
    km_pipeline_destroy(p);
}

static void test_pipeline_replay_equals_synthetic(void **state)
{
    (void)state;
    static solved_log from_synthetic, from_replay;
    memset(&from_synthetic, 0, sizeof from_synthetic);
    memset(&from_replay, 0, sizeof from_replay);
    km_pipeline_config cfg = km_pipeline_config_default();
    cfg.synthetic = scene_config();
    cfg.realtime = false;
    cfg.publish_enabled = false;
    run_pipeline(&cfg, &from_synthetic);

    cfg.source = KM_PIPELINE_SOURCE_REPLAY;
    snprintf(cfg.replay_path, sizeof cfg.replay_path, "%s", rec_path);
    cfg.synthetic = km_synthetic_config_default(); /* must not matter */
    run_pipeline(&cfg, &from_replay);

    assert_int_equal(from_synthetic.frames, FRAMES);
    assert_int_equal(from_replay.frames, from_synthetic.frames);
    long markers = 0;
    for (int i = 0; i < FRAMES; i++) {
        assert_int_equal(from_replay.frame_number[i], from_synthetic.frame_number[i]);
        assert_int_equal(from_replay.marker_count[i], from_synthetic.marker_count[i]);
        assert_memory_equal(from_replay.observations[i], from_synthetic.observations[i],
                            sizeof from_replay.observations[i]);
        for (int m = 0; m < from_replay.marker_count[i]; m++) {
            const km_marker *a = &from_synthetic.markers[i][m], *b = &from_replay.markers[i][m];
            assert_int_equal(a->id, b->id);
            assert_int_equal(a->views, b->views);
            assert_memory_equal(&a->pos_m, &b->pos_m, sizeof a->pos_m);
            assert_memory_equal(&a->residual_px, &b->residual_px, sizeof a->residual_px);
        }
        markers += from_replay.marker_count[i];
    }
    print_message("pipeline: %d frame sets, %ld markers, identical from synthetic and replay\n",
                  FRAMES, markers);
    assert_true(markers > FRAMES * 10);
}

static void test_pipeline_config_replay(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "source: replay\nreplay:\n  path: %s\n  realtime: false\n  loop: true\n"
             "  time: original\n", rec_path);
    km_status st;
    km_config *c = km_config_parse(text, strlen(text), "replay.yaml", &st);
    assert_non_null(c);
    km_pipeline_config cfg = km_pipeline_config_default();
    assert_int_equal(km_pipeline_config_read(c, &cfg), KM_OK);
    assert_int_equal(cfg.source, KM_PIPELINE_SOURCE_REPLAY);
    assert_string_equal(cfg.replay_path, rec_path);
    assert_false(cfg.replay.realtime);
    assert_true(cfg.replay.loop);
    assert_int_equal(cfg.replay.time, KM_REPLAY_TIME_ORIGINAL);
    km_config_destroy(c);
    static const char *bad[] = {"source: replay\n", "source: replay\nreplay: {path: x, lop: 1}\n",
                                "source: replay\nreplay: {path: x, time: later}\n",
                                "source: tape\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = km_config_parse(bad[i], strlen(bad[i]), "bad.yaml", &st);
        assert_non_null(c);
        cfg = km_pipeline_config_default();
        assert_int_equal(km_pipeline_config_read(c, &cfg), KM_ERR_PARSE);
        assert_non_null(strstr(km_last_error(), "bad.yaml:"));
        km_config_destroy(c);
    }
    /* The rig comes from the recording; a recording without one needs rig:. */
    cfg = km_pipeline_config_default();
    cfg.source = KM_PIPELINE_SOURCE_REPLAY;
    cfg.publish_enabled = false;
    snprintf(cfg.replay_path, sizeof cfg.replay_path, "%s", rec_path);
    km_pipeline *p = km_pipeline_create(&cfg, &st);
    assert_non_null(p);
    assert_int_equal(km_pipeline_rig(p)->camera_count, 4);
    assert_null(km_pipeline_scene(p));
    km_pipeline_destroy(p);
}

int main(void)
{
    km_log_set_level(KM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_delivers_same_frames),
        cmocka_unit_test(test_shift_loop_and_pacing),
        cmocka_unit_test(test_cut_recording_replays_complete_frames),
        cmocka_unit_test(test_pipeline_replay_equals_synthetic),
        cmocka_unit_test(test_pipeline_config_replay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
