#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinema/core.h"

typedef struct captured {
    int count;
    km_log_level level;
    char module[64];
    char message[4096];
} captured;

static void capture_handler(void *user, km_log_level level, const char *module,
                            const char *message)
{
    captured *c = user;
    c->count++;
    c->level = level;
    snprintf(c->module, sizeof c->module, "%s", module);
    snprintf(c->message, sizeof c->message, "%s", message);
}

static int reset(void **state)
{
    (void)state;
    km_log_set_handler(NULL, NULL);
    km_log_set_level(KM_LOG_INFO);
    km_log_set_json(false);
    return 0;
}

static void test_handler_and_levels(void **state)
{
    (void)state;
    captured c = {0};
    km_log_set_handler(capture_handler, &c);
    assert_int_equal(km_log_get_level(), KM_LOG_INFO);
    km_log(KM_LOG_INFO, "detect", "found %d blobs", 12);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.level, KM_LOG_INFO);
    assert_string_equal(c.module, "detect");
    assert_string_equal(c.message, "found 12 blobs");

    km_log(KM_LOG_DEBUG, "detect", "hidden");
    assert_int_equal(c.count, 1); /* below the level: not delivered */
    km_log(KM_LOG_ERROR, "capture", "boom");
    assert_int_equal(c.count, 2);
    assert_int_equal(c.level, KM_LOG_ERROR);

    km_log_set_level(KM_LOG_DEBUG);
    km_log(KM_LOG_DEBUG, "detect", "now visible");
    assert_int_equal(c.count, 3);
    assert_string_equal(c.message, "now visible");

    /* km_error logs at debug level. */
    km_error(KM_ERR_PARSE, "x.yaml:3: nope");
    assert_int_equal(c.count, 4);
    assert_int_equal(c.level, KM_LOG_DEBUG);
    assert_non_null(strstr(c.message, "x.yaml:3: nope"));

    km_log_set_level(KM_LOG_ERROR);
    km_log(KM_LOG_WARN, "detect", "hidden");
    assert_int_equal(c.count, 4);
}

static void test_long_message_is_cut(void **state)
{
    (void)state;
    captured c = {0};
    km_log_set_handler(capture_handler, &c);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    km_log(KM_LOG_WARN, "m", "%s", big);
    assert_int_equal(c.count, 1);
    size_t n = strlen(c.message);
    assert_true(n < 2100 && n > 1000);
    assert_string_equal(c.message + n - 3, "...");
}

static void test_level_parse(void **state)
{
    (void)state;
    km_log_level l = KM_LOG_ERROR;
    assert_int_equal(km_log_level_parse("debug", &l), KM_OK);
    assert_int_equal(l, KM_LOG_DEBUG);
    assert_int_equal(km_log_level_parse("warn", &l), KM_OK);
    assert_int_equal(l, KM_LOG_WARN);
    assert_int_equal(km_log_level_parse("error", &l), KM_OK);
    assert_int_equal(l, KM_LOG_ERROR);
    assert_int_equal(km_log_level_parse("info", &l), KM_OK);
    assert_int_equal(l, KM_LOG_INFO);
    assert_int_equal(km_log_level_parse("verbose", &l), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "verbose"));
    assert_int_equal(km_log_level_parse(NULL, &l), KM_ERR_INVALID_ARGUMENT);
}

static void test_json_escape(void **state)
{
    (void)state;
    char out[256];
    size_t n = km_json_escape(out, sizeof out, "a\"b\\c\nd\te\x01\x7f");
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\te\\u0001\\u007f");
    assert_int_equal(n, strlen(out));
    /* Valid UTF-8 passes through; invalid bytes become U+FFFD. */
    km_json_escape(out, sizeof out, "caf\xc3\xa9 \xff\xc3");
    assert_string_equal(out, "caf\xc3\xa9 \\ufffd\\ufffd");
    km_json_escape(out, sizeof out, "\xed\xa0\x80"); /* surrogate */
    assert_string_equal(out, "\\ufffd\\ufffd\\ufffd");
    km_json_escape(out, sizeof out, "\xf0\x9f\x98\x80");
    assert_string_equal(out, "\xf0\x9f\x98\x80");
    /* Cut output never splits an escape. */
    char small[6];
    n = km_json_escape(small, sizeof small, "ab\"cd");
    assert_int_equal(n, 6);
    assert_string_equal(small, "ab\\\"c");
    n = km_json_escape(small, 4, "ab\"cd");
    assert_string_equal(small, "ab");
    assert_int_equal(km_json_escape(NULL, 0, "\n"), 2);
}

/* Runs fn with stderr redirected to a temporary file, returns what was written. */
static void capture_stderr(void (*fn)(void), char *out, size_t out_size)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, out_size - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
}

static void log_plain(void)
{
    km_log(KM_LOG_WARN, "capture", "camera %d lost", 3);
}

static void log_json(void)
{
    km_log(KM_LOG_INFO, "osc", "path \"/km/hand\"\nnext\\line");
}

static void test_stderr_sink(void **state)
{
    (void)state;
    char text[1024];
    capture_stderr(log_plain, text, sizeof text);
    /* 2026-11-29T01:02:03.123Z [warn] capture: camera 3 lost\n */
    assert_true(strlen(text) == 24 + strlen(" [warn] capture: camera 3 lost\n"));
    const char *pattern = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; pattern[i]; i++) {
        if (pattern[i] == 'd')
            assert_true(isdigit((unsigned char)text[i]));
        else
            assert_int_equal(text[i], pattern[i]);
    }
    assert_string_equal(text + 24, " [warn] capture: camera 3 lost\n");
}

static void test_stderr_json_sink(void **state)
{
    (void)state;
    char text[1024];
    km_log_set_json(true);
    capture_stderr(log_json, text, sizeof text);
    km_log_set_json(false);
    assert_true(strncmp(text, "{\"t_ns\":", 8) == 0);
    assert_non_null(strstr(text, "\"level\":\"info\",\"module\":\"osc\","
                                 "\"msg\":\"path \\\"/km/hand\\\"\\nnext\\\\line\""));
    assert_non_null(strstr(text, "\"time\":\""));
    /* Exactly one line. */
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    assert_string_equal(nl - 2, "\"}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handler_and_levels, reset, reset),
        cmocka_unit_test_setup_teardown(test_long_message_is_cut, reset, reset),
        cmocka_unit_test_setup_teardown(test_level_parse, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_escape, reset, reset),
        cmocka_unit_test_setup_teardown(test_stderr_sink, reset, reset),
        cmocka_unit_test_setup_teardown(test_stderr_json_sink, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
