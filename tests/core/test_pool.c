#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "kinema/core.h"

static void test_create_invalid(void **state)
{
    (void)state;
    km_status st = KM_OK;
    assert_null(km_frame_pool_create(0, 100, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    st = KM_OK;
    assert_null(km_frame_pool_create(4, 0, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    assert_null(km_frame_pool_create(SIZE_MAX / 2, 1000, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    km_frame_pool_destroy(NULL);
}

static void test_acquire_release(void **state)
{
    (void)state;
    km_status st = KM_ERR_INTERNAL;
    const size_t bytes = 640 * 480 + 3; /* not a multiple of 64 on purpose */
    km_frame_pool *pool = km_frame_pool_create(3, bytes, &st);
    assert_non_null(pool);
    assert_int_equal(st, KM_OK);
    assert_int_equal(km_frame_pool_available(pool), 3);

    km_frame *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = km_frame_pool_acquire(pool);
        assert_non_null(f[i]);
        assert_int_equal((uintptr_t)f[i]->data % 64, 0);
        assert_true(f[i]->capacity >= bytes);
        assert_int_equal(f[i]->size, 0);
        /* Whole buffer writable (ASan checks the bounds). */
        memset(f[i]->data, 0x40 + i, bytes);
    }
    assert_null(km_frame_pool_acquire(pool)); /* exhausted: caller counts a drop */
    assert_int_equal(km_frame_pool_available(pool), 0);
    /* Buffers do not overlap. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(f[i]->data[bytes - 1], 0x40 + i);
    assert_ptr_not_equal(f[0]->data, f[1]->data);

    f[1]->time_ns = 99;
    f[1]->flags = KM_FRAME_FLAG_INCOMPLETE;
    f[1]->size = 10;
    km_frame_pool_release(pool, f[1]);
    assert_int_equal(km_frame_pool_available(pool), 1);
    /* Double release is ignored rather than corrupting the free list. */
    km_frame_pool_release(pool, f[1]);
    assert_int_equal(km_frame_pool_available(pool), 1);
    km_frame foreign = {0};
    km_frame_pool_release(pool, &foreign);
    assert_int_equal(km_frame_pool_available(pool), 1);

    km_frame *again = km_frame_pool_acquire(pool);
    assert_ptr_equal(again, f[1]);
    assert_int_equal(again->time_ns, 0); /* metadata reset */
    assert_int_equal(again->flags, 0);
    assert_int_equal(again->size, 0);
    assert_non_null(again->data);
    km_frame_pool_release(pool, again);
    km_frame_pool_release(pool, f[0]);
    km_frame_pool_release(pool, f[2]);
    assert_int_equal(km_frame_pool_available(pool), 3);
    km_frame_pool_destroy(pool);
}

/* Capture thread acquires, fills and hands frames over a ring; the main thread checks and
 * releases: the contract the pool documents. */
#define HANDOFF_FRAMES 20000

typedef struct handoff {
    km_frame_pool *pool;
    km_spsc_ring *to_consumer;
    uint64_t drops;
} handoff;

static void *capture_thread(void *arg)
{
    handoff *h = arg;
    for (uint64_t seq = 0; seq < HANDOFF_FRAMES; seq++) {
        km_frame *f;
        while ((f = km_frame_pool_acquire(h->pool)) == NULL)
            h->drops++;
        f->sequence = seq;
        f->size = 256;
        memset(f->data, (int)(seq & 0xFF), f->size);
        while (!km_spsc_ring_push(h->to_consumer, f)) {
        }
    }
    return NULL;
}

static void test_two_thread_handoff(void **state)
{
    (void)state;
    km_status st;
    handoff h = {.pool = km_frame_pool_create(4, 256, &st),
                 .to_consumer = km_spsc_ring_create(4)};
    assert_non_null(h.pool);
    assert_non_null(h.to_consumer);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, capture_thread, &h), 0);
    uint64_t bad = 0;
    for (uint64_t seq = 0; seq < HANDOFF_FRAMES;) {
        km_frame *f = km_spsc_ring_pop(h.to_consumer);
        if (f == NULL)
            continue;
        if (f->sequence != seq || f->data[0] != (uint8_t)(seq & 0xFF) ||
            f->data[255] != (uint8_t)(seq & 0xFF))
            bad++;
        km_frame_pool_release(h.pool, f);
        seq++;
    }
    pthread_join(t, NULL);
    assert_int_equal(bad, 0);
    assert_int_equal(km_frame_pool_available(h.pool), 4);
    km_spsc_ring_destroy(h.to_consumer);
    km_frame_pool_destroy(h.pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_invalid),
        cmocka_unit_test(test_acquire_release),
        cmocka_unit_test(test_two_thread_handoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
