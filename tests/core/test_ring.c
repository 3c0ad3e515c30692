#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "kinema/core.h"

static void test_capacity_rounding(void **state)
{
    (void)state;
    size_t cases[][2] = {{1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {1000, 1024}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        km_spsc_ring *r = km_spsc_ring_create(cases[i][0]);
        assert_non_null(r);
        assert_int_equal(km_spsc_ring_capacity(r), cases[i][1]);
        assert_int_equal(km_spsc_ring_count(r), 0);
        km_spsc_ring_destroy(r);
    }
    assert_null(km_spsc_ring_create(0));
    km_spsc_ring_destroy(NULL);
}

static void test_fifo_full_empty(void **state)
{
    (void)state;
    km_spsc_ring *r = km_spsc_ring_create(4);
    assert_non_null(r);
    int items[10];
    assert_null(km_spsc_ring_pop(r));
    for (int i = 0; i < 4; i++)
        assert_true(km_spsc_ring_push(r, &items[i]));
    assert_false(km_spsc_ring_push(r, &items[4])); /* full: not queued */
    assert_int_equal(km_spsc_ring_count(r), 4);
    assert_ptr_equal(km_spsc_ring_pop(r), &items[0]);
    assert_true(km_spsc_ring_push(r, &items[5]));
    for (int expect = 1; expect <= 3; expect++)
        assert_ptr_equal(km_spsc_ring_pop(r), &items[expect]);
    assert_ptr_equal(km_spsc_ring_pop(r), &items[5]);
    assert_null(km_spsc_ring_pop(r));
    assert_int_equal(km_spsc_ring_count(r), 0);
    /* Wrap around many times. */
    for (int round = 0; round < 1000; round++) {
        assert_true(km_spsc_ring_push(r, &items[round % 10]));
        assert_true(km_spsc_ring_push(r, &items[(round + 1) % 10]));
        assert_ptr_equal(km_spsc_ring_pop(r), &items[round % 10]);
        assert_ptr_equal(km_spsc_ring_pop(r), &items[(round + 1) % 10]);
    }
    km_spsc_ring_destroy(r);
}

#define STRESS_ITEMS 1000000u

typedef struct stress {
    km_spsc_ring *ring;
    uint64_t producer_full_spins;
} stress;

static void *producer(void *arg)
{
    stress *s = arg;
    /* Items are the numbers 1..N encoded as pointers, so no memory is shared besides the
     * ring itself: a reordering bug shows up as a wrong number. */
    for (uintptr_t i = 1; i <= STRESS_ITEMS; i++) {
        while (!km_spsc_ring_push(s->ring, (void *)i))
            s->producer_full_spins++;
    }
    return NULL;
}

static void test_two_thread_stress(void **state)
{
    (void)state;
    stress s = {.ring = km_spsc_ring_create(64)};
    assert_non_null(s.ring);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
    uintptr_t expect = 1;
    uint64_t mismatches = 0;
    while (expect <= STRESS_ITEMS) {
        void *p = km_spsc_ring_pop(s.ring);
        if (p == NULL)
            continue;
        if ((uintptr_t)p != expect)
            mismatches++;
        expect++;
    }
    pthread_join(t, NULL);
    assert_int_equal(mismatches, 0);
    assert_null(km_spsc_ring_pop(s.ring));
    assert_int_equal(km_spsc_ring_count(s.ring), 0);
    km_spsc_ring_destroy(s.ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_rounding),
        cmocka_unit_test(test_fifo_full_empty),
        cmocka_unit_test(test_two_thread_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
