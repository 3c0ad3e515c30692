/* obs.csv / markers.csv: write -> read round trip, and every kind of malformed input gives
 * KM_ERR_PARSE with file:line in the message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinema/tracking.h"

static void test_obs_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/kinema_test_obs_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "# written by test_csv\n");
    km_obs_csv_write_header(f);
    km_observation items[8];
    km_observation_set set = {.capacity = 8, .items = items};
    /* Frames 3, 4 and 10 (frames without observations are simply absent). */
    const uint64_t frames[3] = {3, 4, 10};
    for (int fr = 0; fr < 3; fr++) {
        set.frame = frames[fr];
        set.time_ns = frames[fr] * 8333333u;
        set.count = fr + 1;
        for (int k = 0; k < set.count; k++)
            items[k] = (km_observation){.x = 100.12345 + k + fr, .y = 200.5 - k, .area_px = 12 + k,
                                        .camera = k};
        km_obs_csv_write(f, &set);
    }
    fclose(f);

    km_status err;
    km_obs_reader *r = km_obs_reader_open(path, &err);
    assert_non_null(r);
    assert_int_equal(err, KM_OK);
    km_observation got_items[8];
    km_observation_set got = {.capacity = 8, .items = got_items};
    for (int fr = 0; fr < 3; fr++) {
        assert_int_equal(km_obs_reader_next(r, &got), KM_OK);
        assert_int_equal(got.frame, frames[fr]);
        assert_int_equal(got.time_ns, frames[fr] * 8333333u);
        assert_int_equal(got.count, fr + 1);
        for (int k = 0; k < got.count; k++) {
            assert_int_equal(got_items[k].camera, k);
            /* %.4f px: the written value is within 0.5e-4 px. */
            assert_true(fabs(got_items[k].x - (100.12345 + k + fr)) <= 0.5e-4 + 1e-9);
            assert_true(fabs(got_items[k].y - (200.5 - k)) < 1e-9);
            assert_true(fabs(got_items[k].area_px - (12 + k)) < 1e-9);
        }
    }
    assert_int_equal(km_obs_reader_next(r, &got), KM_ERR_END_OF_STREAM);
    assert_int_equal(km_obs_reader_next(r, &got), KM_ERR_END_OF_STREAM);
    km_obs_reader_close(r);
    unlink(path);
}

static void test_markers_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/kinema_test_markers_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    km_markers_csv_write_header(f);
    km_marker items[4] = {
        {.id = 7, .pos_m = {1.0000004, -2.5, 0.25}, .residual_px = 0.12344, .views = 5},
        {.id = 4000000000u, .pos_m = {0, 1.7, -3.1234567}, .residual_px = 0, .views = 2},
    };
    km_marker_set set = {.frame = 12, .time_ns = 99, .count = 2, .capacity = 4, .items = items};
    km_markers_csv_write(f, &set);
    fclose(f);

    km_status err;
    km_markers_reader *r = km_markers_reader_open(path, &err);
    assert_non_null(r);
    km_marker got_items[4];
    km_marker_set got = {.capacity = 4, .items = got_items};
    assert_int_equal(km_markers_reader_next(r, &got), KM_OK);
    assert_int_equal(got.frame, 12);
    assert_int_equal(got.time_ns, 99);
    assert_int_equal(got.count, 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(got_items[k].id, items[k].id);
        assert_int_equal(got_items[k].views, items[k].views);
        /* %.6f m: micrometre resolution. */
        assert_true(fabs(got_items[k].pos_m.x - items[k].pos_m.x) <= 0.5e-6 + 1e-12);
        assert_true(fabs(got_items[k].pos_m.y - items[k].pos_m.y) <= 0.5e-6 + 1e-12);
        assert_true(fabs(got_items[k].pos_m.z - items[k].pos_m.z) <= 0.5e-6 + 1e-12);
        assert_true(fabs(got_items[k].residual_px - items[k].residual_px) <= 0.5e-4 + 1e-12);
    }
    assert_int_equal(km_markers_reader_next(r, &got), KM_ERR_END_OF_STREAM);
    km_markers_reader_close(r);
    unlink(path);
}

static void test_extra_columns_comments_crlf(void **state)
{
    (void)state;
    const char text[] = "# comment before the header\r\n"
                        "frame,time_ns,camera,x,y,area,roundness\r\n"
                        "0,0,1,10.5,20.25,3,0.9\r\n"
                        "# a comment between rows\n"
                        "\n"
                        "0,0,2,1e2,-5,0.5,0.8\n"
                        "2,16,0,1,2,3,0.1";
    km_status err;
    km_obs_reader *r = km_obs_reader_open_memory(text, strlen(text), "mem.csv", &err);
    assert_non_null(r);
    km_observation items[4];
    km_observation_set set = {.capacity = 4, .items = items};
    assert_int_equal(km_obs_reader_next(r, &set), KM_OK);
    assert_int_equal(set.count, 2);
    assert_int_equal(items[1].camera, 2);
    assert_true(items[1].x == 100.0 && items[1].y == -5.0);
    assert_int_equal(km_obs_reader_next(r, &set), KM_OK);
    assert_int_equal(set.frame, 2);
    assert_int_equal(set.time_ns, 16);
    assert_int_equal(set.count, 1);
    assert_int_equal(km_obs_reader_next(r, &set), KM_ERR_END_OF_STREAM);
    km_obs_reader_close(r);

    /* markers.csv with the label column of a labeled marker */
    const char mtext[] = "frame,time_ns,id,x,y,z,residual_px,views,label\n"
                         "5,40,3,0.1,0.2,0.3,0.05,4,LFHD\n";
    km_markers_reader *mr = km_markers_reader_open_memory(mtext, strlen(mtext), "m.csv", &err);
    assert_non_null(mr);
    km_marker mitems[2];
    km_marker_set mset = {.capacity = 2, .items = mitems};
    assert_int_equal(km_markers_reader_next(mr, &mset), KM_OK);
    assert_int_equal(mset.count, 1);
    assert_int_equal(mitems[0].id, 3);
    km_markers_reader_close(mr);
}

/* Open text (header + rows) and read frames until something other than KM_OK; return that
 * status and check the message starts with the expected "name:line:". */
static km_status read_all(const char *text, const char *where)
{
    km_status err;
    km_obs_reader *r = km_obs_reader_open_memory(text, strlen(text), "bad.csv", &err);
    km_status st = err;
    if (r) {
        km_observation items[3];
        km_observation_set set = {.capacity = 3, .items = items};
        while ((st = km_obs_reader_next(r, &set)) == KM_OK) {
        }
        /* The error is sticky. */
        if (st != KM_ERR_END_OF_STREAM)
            assert_int_equal(km_obs_reader_next(r, &set), st);
        km_obs_reader_close(r);
    }
    if (where) {
        const char *msg = km_last_error();
        if (strncmp(msg, where, strlen(where)) != 0)
            fail_msg("expected message starting \"%s\", got \"%s\"", where, msg);
    }
    return st;
}

static void test_malformed(void **state)
{
    (void)state;
    const char *H = "frame,time_ns,camera,x,y,area\n";
    char text[512];
    struct {
        const char *body;
        const char *where;
        km_status status;
    } cases[] = {
        {"0,0,0,1,2\n", "bad.csv:2:", KM_ERR_PARSE},                 /* too few fields */
        {"0,0,0,1,2,3\nx,0,0,1,2,3\n", "bad.csv:3:", KM_ERR_PARSE}, /* frame not a number */
        {"-1,0,0,1,2,3\n", "bad.csv:2:", KM_ERR_PARSE},              /* negative frame */
        {"0,0,-1,1,2,3\n", "bad.csv:2:", KM_ERR_PARSE},              /* negative camera */
        {"0,0,64,1,2,3\n", "bad.csv:2:", KM_ERR_PARSE},              /* camera too large */
        {"0,0,0,nan,2,3\n", "bad.csv:2:", KM_ERR_PARSE},             /* not finite */
        {"0,0,0,inf,2,3\n", "bad.csv:2:", KM_ERR_PARSE},
        {"0,0,0, 1,2,3\n", "bad.csv:2:", KM_ERR_PARSE},              /* space */
        {"0,0,0,1,2,-3\n", "bad.csv:2:", KM_ERR_PARSE},              /* negative area */
        {"0,0,0,1,2,3\n0,0,0,1,2,\n", "bad.csv:3:", KM_ERR_PARSE},   /* empty field */
        {"0,0,0,1,2,3\n# c\n1,5,0,1,2,3\n0,0,0,1,2,3\n", "bad.csv:5:", KM_ERR_PARSE}, /* back */
        {"1,5,0,1,2,3\n2,6,0,1,2,3\n1,5,0,1,2,3\n", "bad.csv:4:", KM_ERR_PARSE}, /* not contiguous */
        {"0,0,0,1,2,3\n0,1,0,1,2,3\n", "bad.csv:3:", KM_ERR_PARSE},  /* time differs in frame */
        {"0,0,0,1,2,3\n0,0,0,1,2,3\n0,0,0,1,2,3\n0,0,0,1,2,3\n", "bad.csv:5:", KM_ERR_CAPACITY},
        {"99999999999999999999,0,0,1,2,3\n", "bad.csv:2:", KM_ERR_PARSE}, /* overflow */
        {"0,0,0,1,2,3\n", NULL, KM_ERR_END_OF_STREAM},                /* control: fine */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snprintf(text, sizeof text, "%s%s", H, cases[c].body);
        km_status st = read_all(text, cases[c].where);
        if (st != cases[c].status)
            fail_msg("case %zu: expected %s, got %s (%s)", c, km_status_name(cases[c].status),
                     km_status_name(st), km_last_error());
    }
    /* Bad headers fail at open with line 1 (or the line after comments). */
    assert_int_equal(read_all("frame,time,camera,x,y,area\n", "bad.csv:1:"), KM_ERR_PARSE);
    assert_int_equal(read_all("frame,time_ns,camera,x,y,areaX\n", "bad.csv:1:"), KM_ERR_PARSE);
    assert_int_equal(read_all("# only\n# comments\n", "bad.csv:"), KM_ERR_PARSE);
    assert_int_equal(read_all("", "bad.csv:1:"), KM_ERR_PARSE);
    assert_int_equal(read_all("#c\nframe,time_ns,camera,y,x,area\n", "bad.csv:2:"), KM_ERR_PARSE);

    /* NUL byte inside a line. */
    const char nul[] = "frame,time_ns,camera,x,y,area\n0,0,0,1\0002,3\n";
    km_status err;
    km_obs_reader *r = km_obs_reader_open_memory(nul, sizeof nul - 1, "nul.csv", &err);
    assert_non_null(r);
    km_observation items[2];
    km_observation_set set = {.capacity = 2, .items = items};
    assert_int_equal(km_obs_reader_next(r, &set), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "nul.csv:2:"));
    km_obs_reader_close(r);

    /* Missing file: KM_ERR_IO naming it. */
    assert_null(km_obs_reader_open("/nonexistent/obs.csv", &err));
    assert_int_equal(err, KM_ERR_IO);
    assert_non_null(strstr(km_last_error(), "/nonexistent/obs.csv"));
}

static void test_markers_malformed(void **state)
{
    (void)state;
    const char text[] = "frame,time_ns,id,x,y,z,residual_px,views\n"
                        "0,0,1,0,0,0,0.1,2\n"
                        "0,0,2,0,0,0,0.1,65\n";
    km_status err;
    km_markers_reader *r = km_markers_reader_open_memory(text, strlen(text), "m.csv", &err);
    assert_non_null(r);
    km_marker items[4];
    km_marker_set set = {.capacity = 4, .items = items};
    assert_int_equal(km_markers_reader_next(r, &set), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "m.csv:3:"));
    km_markers_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_obs_round_trip),
        cmocka_unit_test(test_markers_round_trip),
        cmocka_unit_test(test_extra_columns_comments_crlf),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_markers_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
