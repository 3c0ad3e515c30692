#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <pthread.h>
#include <string.h>

#include "kinema/core.h"

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(km_status_name(KM_OK), "KM_OK");
    assert_string_equal(km_status_name(KM_ERR_PARSE), "KM_ERR_PARSE");
    assert_string_equal(km_status_name(KM_ERR_INTERNAL), "KM_ERR_INTERNAL");
    for (int i = 0; i < KM_STATUS_COUNT; i++) {
        const char *name = km_status_name((km_status)i);
        assert_non_null(name);
        assert_true(strncmp(name, "KM_", 3) == 0);
        assert_string_not_equal(name, "KM_ERR_UNKNOWN");
    }
    assert_string_equal(km_status_name(KM_STATUS_COUNT), "KM_ERR_UNKNOWN");
    assert_string_equal(km_status_name((km_status)-3), "KM_ERR_UNKNOWN");
}

static void test_error_sets_message(void **state)
{
    (void)state;
    km_clear_error();
    assert_string_equal(km_last_error(), "");
    km_status st = km_error(KM_ERR_PARSE, "%s:%d: bad %s", "a.yaml", 7, "thing");
    assert_int_equal(st, KM_ERR_PARSE);
    assert_string_equal(km_last_error(), "a.yaml:7: bad thing");
}

static void test_error_may_quote_itself(void **state)
{
    (void)state;
    km_error(KM_ERR_IO, "inner");
    km_error(KM_ERR_IO, "outer: %s: %s", km_last_error(), km_last_error());
    assert_string_equal(km_last_error(), "outer: inner: inner");
}

static void test_error_truncates(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    km_error(KM_ERR_INTERNAL, "%s", big);
    assert_int_equal(strlen(km_last_error()), KM_ERROR_MESSAGE_MAX - 1);
}

static atomic_int thread_ok;

static void *other_thread(void *arg)
{
    (void)arg;
    /* A fresh thread sees "" and its own failures only. */
    int ok = strcmp(km_last_error(), "") == 0;
    km_error(KM_ERR_DEVICE, "thread message");
    ok = ok && strcmp(km_last_error(), "thread message") == 0;
    atomic_store(&thread_ok, ok);
    return NULL;
}

static void test_error_is_thread_local(void **state)
{
    (void)state;
    km_error(KM_ERR_IO, "main message");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&thread_ok), 1);
    assert_string_equal(km_last_error(), "main message");
}

static void test_clock_monotonic(void **state)
{
    (void)state;
    uint64_t a = km_time_now_ns();
    uint64_t b = km_time_now_ns();
    assert_true(b >= a);
    uint64_t deadline = km_time_now_ns() + 5 * 1000 * 1000; /* 5 ms */
    km_time_sleep_until_ns(deadline);
    uint64_t after = km_time_now_ns();
    assert_true(after >= deadline);
    assert_true(after - deadline < 500u * 1000 * 1000); /* generous on a loaded machine */
    /* A deadline in the past returns at once. */
    uint64_t t0 = km_time_now_ns();
    km_time_sleep_until_ns(t0 - 1000);
    assert_true(km_time_now_ns() - t0 < 100u * 1000 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_error_sets_message),
        cmocka_unit_test(test_error_may_quote_itself),
        cmocka_unit_test(test_error_truncates),
        cmocka_unit_test(test_error_is_thread_local),
        cmocka_unit_test(test_clock_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
