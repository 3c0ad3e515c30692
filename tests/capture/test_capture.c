/* Tests of the capture runner (one thread per source, pool + SPSC ring) driven by the
 * synthetic source, and of the synthetic source itself (time stamps, sequence, end of
 * stream, real-time pacing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"

static km_synthetic_scene *small_scene(double duration_s)
{
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.camera_count = 2;
    cfg.width = 320;
    cfg.height = 256;
    cfg.duration_s = duration_s;
    km_status st;
    km_synthetic_scene *s = km_synthetic_scene_create(&cfg, &st);
    assert_non_null(s);
    return s;
}

static void test_source_direct(void **state)
{
    (void)state;
    km_synthetic_scene *s = small_scene(0.1); /* 12 frames at 120 Hz */
    km_status st;
    km_source *src = km_synthetic_source_create_at(s, 1, false, 5000000000ull, &st);
    assert_non_null(src);
    km_source_info info;
    km_source_describe(src, &info);
    assert_string_equal(info.backend, "synthetic");
    assert_int_equal(info.camera, 1);
    assert_int_equal(info.width, 320);
    assert_int_equal(info.max_frame_bytes, 320 * 256);
    uint8_t *buf = malloc(320 * 256);
    km_frame f;
    memset(&f, 0, sizeof f);
    f.data = buf;
    f.capacity = 320 * 256;
    /* Not started yet. */
    assert_int_equal(km_source_next_frame(src, &f, 0), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_source_start(src), KM_OK);
    uint8_t *ref = malloc(320 * 256);
    for (uint64_t k = 0; k < 12; k++) {
        assert_int_equal(km_source_next_frame(src, &f, 0), KM_OK);
        assert_int_equal(f.sequence, k);
        assert_int_equal(f.time_ns, 5000000000ull + km_synthetic_scene_frame_time(s, k));
        assert_int_equal(f.camera, 1);
        assert_int_equal(f.format, KM_PIXEL_GRAY8);
        assert_int_equal(f.stride, 320);
        assert_int_equal(f.size, 320 * 256);
        assert_int_equal(km_synthetic_scene_render(s, 1, k, ref, 320), KM_OK);
        assert_memory_equal(buf, ref, 320 * 256);
    }
    assert_int_equal(km_source_next_frame(src, &f, 0), KM_ERR_END_OF_STREAM);
    /* A frame too small is refused. */
    f.capacity = 100;
    km_source_stop(src);
    km_source_start(src);
    assert_int_equal(km_source_next_frame(src, &f, 0), KM_ERR_CAPACITY);
    km_source_destroy(src);
    assert_null(km_synthetic_source_create(s, 2, false, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    free(buf);
    free(ref);
    km_synthetic_scene_destroy(s);
}

static void test_source_realtime_pacing(void **state)
{
    (void)state;
    km_synthetic_scene *s = small_scene(0);
    km_status st;
    km_source *src = km_synthetic_source_create(s, 0, true, &st);
    assert_non_null(src);
    uint8_t *buf = malloc(320 * 256);
    km_frame f;
    memset(&f, 0, sizeof f);
    f.data = buf;
    f.capacity = 320 * 256;
    uint64_t t0 = km_time_now_ns();
    assert_int_equal(km_source_start(src), KM_OK);
    for (int k = 0; k < 13; k++) {
        st = km_source_next_frame(src, &f, 1000000000ull);
        assert_int_equal(st, KM_OK);
        /* Never delivered before its time stamp. */
        assert_true(f.arrival_ns >= f.time_ns);
    }
    double elapsed_s = (double)(km_time_now_ns() - t0) / 1e9;
    printf("13 real-time frames at 120 Hz took %.3f s\n", elapsed_s);
    assert_true(elapsed_s >= 0.099); /* frame 12 is stamped at 100 ms */
    /* A short timeout before the next stamp gives KM_ERR_AGAIN. */
    assert_int_equal(km_source_next_frame(src, &f, 1000), KM_ERR_AGAIN);
    km_source_destroy(src);
    free(buf);
    km_synthetic_scene_destroy(s);
}

static void test_runner_in_order(void **state)
{
    (void)state;
    km_synthetic_scene *s = small_scene(0.25); /* 30 frames */
    km_status st;
    km_source *src = km_synthetic_source_create(s, 0, true, &st);
    km_capture *cap = km_capture_create(src, 8, &st);
    assert_non_null(cap);
    km_source_info info;
    km_capture_describe(cap, &info);
    assert_int_equal(info.width, 320);
    assert_int_equal(km_capture_start(cap), KM_OK);
    uint64_t last_seq = 0, last_time = 0;
    int popped = 0;
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    while (!km_capture_finished(cap) && km_time_now_ns() < deadline) {
        km_frame *f = km_capture_pop(cap);
        if (!f) {
            km_time_sleep_until_ns(km_time_now_ns() + 1000000);
            continue;
        }
        if (popped > 0) {
            assert_true(f->sequence > last_seq);
            assert_true(f->time_ns > last_time);
        }
        last_seq = f->sequence;
        last_time = f->time_ns;
        assert_int_equal(f->size, 320 * 256);
        popped++;
        km_capture_release(cap, f);
    }
    assert_true(km_capture_finished(cap));
    km_capture_stats stats;
    km_capture_stats_get(cap, &stats);
    printf("runner: popped %d, frames %llu, dropped pool %llu ring %llu, errors %llu\n", popped,
           (unsigned long long)stats.frames, (unsigned long long)stats.dropped_pool,
           (unsigned long long)stats.dropped_ring, (unsigned long long)stats.errors);
    assert_int_equal(stats.frames, (uint64_t)popped);
    assert_int_equal(stats.frames + stats.dropped_pool, 30);
    assert_int_equal(last_seq, 29);
    assert_int_equal(stats.errors, 0);
    km_capture_stop(cap);
    km_capture_destroy(cap);
    km_synthetic_scene_destroy(s);
}

static void test_runner_drops_when_not_popped(void **state)
{
    (void)state;
    km_synthetic_scene *s = small_scene(0.2); /* 24 frames */
    km_status st;
    km_source *src = km_synthetic_source_create(s, 1, false, &st);
    km_capture *cap = km_capture_create(src, 4, &st);
    assert_non_null(cap);
    assert_int_equal(km_capture_start(cap), KM_OK);
    km_capture_stats stats;
    uint64_t deadline = km_time_now_ns() + 5000000000ull;
    do {
        km_time_sleep_until_ns(km_time_now_ns() + 2000000);
        km_capture_stats_get(cap, &stats);
    } while (stats.frames + stats.dropped_pool < 24 && km_time_now_ns() < deadline);
    assert_int_equal(stats.frames, 4);
    assert_int_equal(stats.dropped_pool, 20);
    assert_false(km_capture_finished(cap)); /* the ring still holds frames */
    for (uint64_t k = 0; k < 4; k++) {
        km_frame *f = km_capture_pop(cap);
        assert_non_null(f);
        assert_int_equal(f->sequence, k);
        km_capture_release(cap, f);
    }
    assert_null(km_capture_pop(cap));
    deadline = km_time_now_ns() + 2000000000ull;
    while (!km_capture_finished(cap) && km_time_now_ns() < deadline)
        km_time_sleep_until_ns(km_time_now_ns() + 1000000);
    assert_true(km_capture_finished(cap));
    km_capture_destroy(cap);
    km_synthetic_scene_destroy(s);
}

static void test_runner_stop_clean(void **state)
{
    (void)state;
    km_synthetic_scene *s = small_scene(0); /* endless */
    km_status st;
    km_capture *cap = km_capture_create(km_synthetic_source_create(s, 0, true, &st), 4, &st);
    assert_non_null(cap);
    assert_int_equal(km_capture_start(cap), KM_OK);
    assert_int_equal(km_capture_start(cap), KM_OK); /* idempotent */
    int got = 0;
    km_frame *held = NULL;
    uint64_t deadline = km_time_now_ns() + 3000000000ull;
    while (got < 5 && km_time_now_ns() < deadline) {
        km_frame *f = km_capture_pop(cap);
        if (!f) {
            km_time_sleep_until_ns(km_time_now_ns() + 1000000);
            continue;
        }
        got++;
        if (!held)
            held = f; /* keep one across stop, released afterwards */
        else
            km_capture_release(cap, f);
    }
    assert_int_equal(got, 5);
    uint64_t t0 = km_time_now_ns();
    km_capture_stop(cap);
    double stop_ms = (double)(km_time_now_ns() - t0) / 1e6;
    printf("stop + join took %.2f ms\n", stop_ms);
    assert_true(stop_ms < 500);
    km_capture_stop(cap); /* twice is fine */
    assert_false(km_capture_finished(cap)); /* endless source: stopped, not finished */
    km_capture_release(cap, held);
    /* Restart after stop works. */
    assert_int_equal(km_capture_start(cap), KM_OK);
    km_frame *f = NULL;
    deadline = km_time_now_ns() + 3000000000ull;
    while (!(f = km_capture_pop(cap)) && km_time_now_ns() < deadline)
        km_time_sleep_until_ns(km_time_now_ns() + 1000000);
    assert_non_null(f);
    km_capture_release(cap, f);
    km_capture_destroy(cap); /* stops and joins */
    km_synthetic_scene_destroy(s);
}

static void test_runner_bad_arguments(void **state)
{
    (void)state;
    km_status st = KM_OK;
    assert_null(km_capture_create(NULL, 4, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    km_synthetic_scene *s = small_scene(0);
    /* Ownership of the source passes even on failure (no leak under ASan). */
    assert_null(km_capture_create(km_synthetic_source_create(s, 0, false, &st), 0, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    km_capture_destroy(NULL);
    assert_null(km_capture_pop(NULL));
    assert_true(km_capture_finished(NULL));
    km_synthetic_scene_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_direct),
        cmocka_unit_test(test_source_realtime_pacing),
        cmocka_unit_test(test_runner_in_order),
        cmocka_unit_test(test_runner_drops_when_not_popped),
        cmocka_unit_test(test_runner_stop_clean),
        cmocka_unit_test(test_runner_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
