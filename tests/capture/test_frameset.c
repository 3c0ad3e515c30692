/* Tests of the frame-set assembler: grouping by time stamp with jitter, a missing camera does
 * not block the others (newer complete set, timeout), duplicates and late frames are counted
 * and handed back, overflow, order of emitted sets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "kinema/capture.h"

#define MS 1000000ull

static km_frameset_assembler *make(int cameras, int max_sets)
{
    km_frameset_config cfg = km_frameset_config_default();
    cfg.camera_count = cameras;
    cfg.rate_hz = 100.0; /* 10 ms period: tolerance 5 ms, timeout 30 ms */
    cfg.max_sets = max_sets;
    km_status st;
    km_frameset_assembler *a = km_frameset_assembler_create(&cfg, &st);
    assert_non_null(a);
    return a;
}

static km_frame frame_at(int camera, uint64_t time_ns)
{
    km_frame f;
    memset(&f, 0, sizeof f);
    f.camera = camera;
    f.time_ns = time_ns;
    return f;
}

static bool push(km_frameset_assembler *a, km_frame *f, uint64_t now)
{
    bool kept = false;
    assert_int_equal(km_frameset_assembler_push(a, f, now, &kept), KM_OK);
    return kept;
}

static void test_complete_set_with_jitter(void **state)
{
    (void)state;
    km_frameset_assembler *a = make(3, 8);
    km_frame f0 = frame_at(0, 1000 * MS), f1 = frame_at(1, 1000 * MS + 2 * MS),
             f2 = frame_at(2, 1000 * MS - 3 * MS);
    km_frameset set;
    assert_true(push(a, &f1, 0));
    assert_true(push(a, &f0, 0));
    assert_false(km_frameset_assembler_pop(a, 1 * MS, &set)); /* still waiting for cam 2 */
    assert_true(push(a, &f2, 1 * MS));
    assert_true(km_frameset_assembler_pop(a, 1 * MS, &set));
    assert_true(set.complete);
    assert_int_equal(set.present, 3);
    assert_int_equal(set.camera_count, 3);
    assert_ptr_equal(set.frames[0], &f0);
    assert_ptr_equal(set.frames[1], &f1);
    assert_ptr_equal(set.frames[2], &f2);
    assert_int_equal(set.time_ns, 1002 * MS); /* the first frame's stamp */
    assert_false(km_frameset_assembler_pop(a, 1 * MS, &set));
    km_frameset_stats st;
    km_frameset_assembler_stats(a, &st);
    assert_int_equal(st.sets_complete, 1);
    assert_int_equal(st.sets_incomplete, 0);
    km_frameset_assembler_destroy(a);
}

static void test_missing_camera_does_not_block(void **state)
{
    (void)state;
    km_frameset_assembler *a = make(3, 8);
    /* Set at 10 ms lacks camera 2; the set at 20 ms is complete and releases it. */
    km_frame a0 = frame_at(0, 10 * MS), a1 = frame_at(1, 10 * MS);
    km_frame b0 = frame_at(0, 20 * MS), b1 = frame_at(1, 20 * MS), b2 = frame_at(2, 20 * MS);
    assert_true(push(a, &a0, 0));
    assert_true(push(a, &a1, 0));
    assert_true(push(a, &b0, 1 * MS));
    assert_true(push(a, &b1, 1 * MS));
    km_frameset set;
    assert_false(km_frameset_assembler_pop(a, 2 * MS, &set));
    assert_true(push(a, &b2, 2 * MS));
    assert_true(km_frameset_assembler_pop(a, 2 * MS, &set));
    assert_int_equal(set.time_ns, 10 * MS); /* the older set first */
    assert_false(set.complete);
    assert_int_equal(set.present, 2);
    assert_null(set.frames[2]);
    assert_true(km_frameset_assembler_pop(a, 2 * MS, &set));
    assert_int_equal(set.time_ns, 20 * MS);
    assert_true(set.complete);
    /* The late frame of camera 2 for 10 ms is refused and counted. */
    km_frame late = frame_at(2, 10 * MS + MS);
    assert_false(push(a, &late, 3 * MS));

    /* Timeout: only cameras 0 and 1 deliver at 30 ms; after 30 ms of waiting the set goes. */
    km_frame c0 = frame_at(0, 30 * MS), c1 = frame_at(1, 30 * MS);
    assert_true(push(a, &c0, 100 * MS));
    assert_true(push(a, &c1, 101 * MS));
    assert_false(km_frameset_assembler_pop(a, 120 * MS, &set));
    assert_true(km_frameset_assembler_pop(a, 130 * MS, &set));
    assert_int_equal(set.time_ns, 30 * MS);
    assert_int_equal(set.present, 2);

    km_frameset_stats st;
    km_frameset_assembler_stats(a, &st);
    assert_int_equal(st.sets_complete, 1);
    assert_int_equal(st.sets_incomplete, 2);
    assert_int_equal(st.missing_frames, 2);
    assert_int_equal(st.late_frames, 1);
    assert_int_equal(st.duplicate_frames, 0);
    km_frameset_assembler_destroy(a);
}

static void test_duplicates_and_flush(void **state)
{
    (void)state;
    km_frameset_assembler *a = make(2, 8);
    km_frame f0 = frame_at(0, 50 * MS), dup = frame_at(0, 51 * MS), f1 = frame_at(1, 60 * MS);
    km_frame bad = frame_at(5, 50 * MS);
    bool kept = true;
    assert_int_equal(km_frameset_assembler_push(a, &bad, 0, &kept), KM_ERR_INVALID_ARGUMENT);
    assert_false(kept);
    assert_true(push(a, &f0, 0));
    assert_false(push(a, &dup, 0)); /* second frame of camera 0 for the 50 ms set */
    assert_true(push(a, &f1, 0));   /* 60 ms: a new set */
    km_frameset set;
    assert_false(km_frameset_assembler_pop(a, 1 * MS, &set));
    km_frameset_assembler_flush(a);
    assert_true(km_frameset_assembler_pop(a, 1 * MS, &set));
    assert_int_equal(set.time_ns, 50 * MS);
    assert_ptr_equal(set.frames[0], &f0);
    assert_true(km_frameset_assembler_pop(a, 1 * MS, &set));
    assert_int_equal(set.time_ns, 60 * MS);
    assert_ptr_equal(set.frames[1], &f1);
    assert_false(km_frameset_assembler_pop(a, 1 * MS, &set));
    km_frameset_stats st;
    km_frameset_assembler_stats(a, &st);
    assert_int_equal(st.duplicate_frames, 1);
    assert_int_equal(st.missing_frames, 2);
    km_frameset_assembler_destroy(a);
}

static void test_overflow_and_single_camera(void **state)
{
    (void)state;
    km_frameset_assembler *a = make(2, 2);
    km_frame f[4];
    for (int i = 0; i < 4; i++)
        f[i] = frame_at(0, (uint64_t)(i + 1) * 10 * MS);
    assert_true(push(a, &f[0], 0));
    assert_true(push(a, &f[1], 0));
    assert_false(push(a, &f[2], 0)); /* no room: refused, oldest set handed on */
    km_frameset_stats st;
    km_frameset_assembler_stats(a, &st);
    assert_int_equal(st.overflow_frames, 1);
    km_frameset set;
    assert_true(km_frameset_assembler_pop(a, 0, &set));
    assert_int_equal(set.time_ns, 10 * MS);
    assert_true(push(a, &f[3], 0)); /* room again */
    km_frameset_assembler_destroy(a);

    /* One camera: every frame is a complete set at once, in order. */
    a = make(1, 4);
    for (int i = 0; i < 4; i++) {
        f[i].camera = 0;
        assert_true(push(a, &f[i], 0));
        assert_true(km_frameset_assembler_pop(a, 0, &set));
        assert_ptr_equal(set.frames[0], &f[i]);
    }
    km_frameset_assembler_destroy(a);

    km_frameset_config cfg = km_frameset_config_default();
    km_status err = KM_OK;
    assert_null(km_frameset_assembler_create(&cfg, &err)); /* camera_count is required */
    assert_int_equal(err, KM_ERR_INVALID_ARGUMENT);
    km_frameset_assembler_destroy(NULL);
}

/* A long interleaved stream with jitter, out-of-order arrival between cameras and one
 * camera dropping every 7th frame: every set comes out once, in order, nothing is lost. */
static void test_stream(void **state)
{
    (void)state;
    enum { CAMS = 4, FRAMES = 300 };
    km_frameset_assembler *a = make(CAMS, 8);
    static km_frame frames[FRAMES][CAMS];
    const int lag[CAMS] = {0, 1, 2, 1};
    uint64_t now = 0, expected_time = 0;
    int sets = 0, frames_out = 0, dropped = 0;
    km_frameset set;
    for (int k = 0; k < FRAMES; k++) {
        for (int c = 0; c < CAMS; c++) {
            /* Cameras deliver up to two frames behind camera 0. */
            int kk = k - lag[c];
            if (kk < 0)
                continue;
            if (c == 3 && kk % 7 == 0) {
                dropped++;
                continue;
            }
            uint64_t jitter = (uint64_t)((kk * 7 + c * 3) % 5) * (MS / 2); /* 0..2 ms */
            frames[kk][c] = frame_at(c, 1000 * MS + (uint64_t)kk * 10 * MS + jitter);
            assert_true(push(a, &frames[kk][c], now));
        }
        now += 10 * MS;
        while (km_frameset_assembler_pop(a, now, &set)) {
            if (sets > 0)
                assert_true(set.time_ns > expected_time);
            expected_time = set.time_ns;
            sets++;
            frames_out += set.present;
        }
    }
    km_frameset_assembler_flush(a);
    while (km_frameset_assembler_pop(a, now, &set)) {
        sets++;
        frames_out += set.present;
    }
    km_frameset_stats st;
    km_frameset_assembler_stats(a, &st);
    assert_int_equal(sets, FRAMES);
    assert_int_equal(st.late_frames, 0);
    assert_int_equal(st.duplicate_frames, 0);
    /* Every pushed frame came out. */
    int pushed = 0;
    for (int c = 0; c < CAMS; c++)
        pushed += FRAMES - lag[c];
    assert_int_equal(frames_out, pushed - dropped);
    km_frameset_assembler_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_set_with_jitter),
        cmocka_unit_test(test_missing_camera_does_not_block),
        cmocka_unit_test(test_duplicates_and_flush),
        cmocka_unit_test(test_overflow_and_single_camera),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
