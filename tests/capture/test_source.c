/* Tests of the km_source vtable wrapper with a mock backend: state checks (no frames before
 * start, stop only when started), ownership (close called exactly once, also when the
 * wrapper cannot be made), describe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"

typedef struct mock {
    int starts, stops, closes, frames;
} mock;

static mock *last_closed;

static km_status mock_start(void *self)
{
    ((mock *)self)->starts++;
    return KM_OK;
}

static km_status mock_next(void *self, km_frame *frame, uint64_t timeout_ns)
{
    (void)timeout_ns;
    mock *m = self;
    frame->sequence = (uint64_t)m->frames++;
    return KM_OK;
}

static km_status mock_stop(void *self)
{
    ((mock *)self)->stops++;
    return KM_OK;
}

static void mock_close(void *self)
{
    ((mock *)self)->closes++;
    last_closed = self;
}

static void mock_describe(void *self, km_source_info *info)
{
    (void)self;
    strcpy(info->backend, "mock");
    info->camera = 3;
    info->width = 7;
}

static const km_source_vtable mock_vtable = {
    "mock", mock_start, mock_next, mock_stop, mock_close, mock_describe, NULL,
};

static void test_lifecycle(void **state)
{
    (void)state;
    mock m = {0};
    km_status st;
    km_source *s = km_source_create(&mock_vtable, &m, &st);
    assert_non_null(s);
    assert_int_equal(st, KM_OK);
    km_frame f;
    memset(&f, 0, sizeof f);
    assert_int_equal(km_source_next_frame(s, &f, 0), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(m.frames, 0);
    assert_int_equal(km_source_stop(s), KM_OK);
    assert_int_equal(m.stops, 0); /* not started: nothing to stop */
    assert_int_equal(km_source_start(s), KM_OK);
    assert_int_equal(km_source_start(s), KM_OK);
    assert_int_equal(m.starts, 1);
    assert_int_equal(km_source_next_frame(s, &f, 0), KM_OK);
    assert_int_equal(km_source_next_frame(s, &f, 0), KM_OK);
    assert_int_equal(f.sequence, 1);
    assert_int_equal(km_source_next_frame(s, NULL, 0), KM_ERR_INVALID_ARGUMENT);
    km_source_info info;
    km_source_describe(s, &info);
    assert_string_equal(info.backend, "mock");
    assert_int_equal(info.camera, 3);
    assert_int_equal(info.width, 7);
    km_source_describe(NULL, &info);
    assert_int_equal(info.camera, -1);
    /* A backend without a connected() query has no device to lose. */
    assert_true(km_source_connected(s));
    assert_false(km_source_connected(NULL));
    km_source_destroy(s); /* stops (started) and closes */
    assert_int_equal(m.stops, 1);
    assert_int_equal(m.closes, 1);
    km_source_destroy(NULL);
}

static void test_incomplete_vtable(void **state)
{
    (void)state;
    mock m = {0};
    km_source_vtable bad = mock_vtable;
    bad.next_frame = NULL;
    km_status st = KM_OK;
    last_closed = NULL;
    assert_null(km_source_create(&bad, &m, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_ptr_equal(last_closed, &m); /* ownership taken: closed */
    assert_int_equal(m.closes, 1);
    assert_null(km_source_create(NULL, NULL, &st));
    assert_int_equal(km_source_start(NULL), KM_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_incomplete_vtable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
