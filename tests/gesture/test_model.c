/* Gesture model file: round trip and strict rejection of malformed files with file:line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/gesture.h"

static km_gesture_recognizer *small_recognizer(void)
{
    km_gesture_config cfg = km_gesture_config_default();
    cfg.resample_count = 16;
    cfg.max_templates = 4;
    cfg.min_score = 0.25;
    km_status st;
    km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, &st);
    assert_non_null(rec);
    km_vec3 p[30];
    for (int i = 0; i < 30; i++)
        p[i] = km_vec3_make(cos(i * 0.2), sin(i * 0.2), 0.01 * i);
    assert_int_equal(km_gesture_recognizer_add(rec, "spiral", p, 30), KM_OK);
    for (int i = 0; i < 30; i++)
        p[i] = km_vec3_make(i * 0.1, 0.02 * (i % 3), 0);
    assert_int_equal(km_gesture_recognizer_add(rec, "swipe_right", p, 30), KM_OK);
    return rec;
}

static char *write_to_string(const km_gesture_recognizer *rec, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    assert_int_equal(km_gesture_model_write(rec, f), KM_OK);
    fclose(f);
    return buf;
}

static void test_round_trip(void **state)
{
    (void)state;
    km_gesture_recognizer *rec = small_recognizer();
    size_t len;
    char *text = write_to_string(rec, &len);
    km_status st;
    km_gesture_recognizer *back = km_gesture_model_parse(text, len, "mem", 10, &st);
    assert_int_equal(st, KM_OK);
    assert_non_null(back);
    const km_gesture_config *a = km_gesture_recognizer_config(rec), *b = km_gesture_recognizer_config(back);
    assert_int_equal(b->resample_count, 16);
    assert_int_equal(b->max_templates, 10);
    assert_int_equal(b->matcher, a->matcher);
    assert_true(b->min_score == a->min_score && b->search_threshold_rad == a->search_threshold_rad);
    assert_int_equal(km_gesture_recognizer_template_count(back), 2);
    assert_string_equal(km_gesture_recognizer_label_name(back, 1), "swipe_right");
    for (size_t t = 0; t < 2; t++) {
        const km_vec3 *pa = km_gesture_recognizer_template(rec, t, NULL);
        const km_vec3 *pb = km_gesture_recognizer_template(back, t, NULL);
        assert_memory_equal(pa, pb, 16 * sizeof *pa); /* %.17g is exact */
    }
    /* and through a file */
    const char *path = "test_gesture_model.tmp";
    assert_int_equal(km_gesture_model_save(rec, path), KM_OK);
    km_gesture_recognizer *loaded = km_gesture_model_load(path, 0, &st);
    assert_non_null(loaded);
    assert_int_equal(km_gesture_recognizer_config(loaded)->max_templates, 2);
    remove(path);
    assert_null(km_gesture_model_load("/nonexistent/model", 0, &st));
    assert_int_equal(st, KM_ERR_IO);
    km_gesture_recognizer_destroy(loaded);
    km_gesture_recognizer_destroy(back);
    km_gesture_recognizer_destroy(rec);
    free(text);
}

/* Replace the first occurrence of `from` by `to` in the valid model and expect failure at
 * `line` with `why` in the message. */
static void expect_bad(const char *text, const char *from, const char *to, int line, const char *why)
{
    char buf[8192];
    const char *at = strstr(text, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    km_status st;
    km_gesture_recognizer *rec = km_gesture_model_parse(buf, strlen(buf), "m.model", 0, &st);
    char want[64];
    snprintf(want, sizeof want, "m.model:%d:", line);
    if (rec || st != KM_ERR_PARSE || !strstr(km_last_error(), want) || !strstr(km_last_error(), why))
        fail_msg("replacing '%s' by '%s': got '%s'", from, to, km_last_error());
}

static void test_malformed(void **state)
{
    (void)state;
    km_gesture_recognizer *rec = small_recognizer();
    size_t len;
    char *text = write_to_string(rec, &len);
    km_gesture_recognizer_destroy(rec);
    expect_bad(text, "kinema_gesture_model 1", "kinema_gesture_model 2", 1, "unsupported version");
    expect_bad(text, "kinema_gesture_model 1", "hello", 1, "first line");
    expect_bad(text, "resample_count 16", "resample_count 4", 2, "resample_count");
    expect_bad(text, "resample_count 16", "resample_count -3", 2, "not a count");
    expect_bad(text, "scale rms_radius", "scale big", 3, "unknown scale");
    expect_bad(text, "matcher dtw", "matcher magic", 5, "unknown matcher");
    expect_bad(text, "min_score", "max_score", 10, "'min_score' expected");
    expect_bad(text, "min_score 0.25", "min_score nan", 10, "finite");
    expect_bad(text, "min_score 0.25", "min_score 2", 10, "min_score");
    expect_bad(text, "templates 2", "templates 3", 46, "'template <label>' expected");
    expect_bad(text, "templates 2", "templates 1", 29, "'end' expected");
    expect_bad(text, "templates 2", "templates 99999", 11, "larger than the file");
    expect_bad(text, "template spiral", "template two words", 12, "template <label>");
    expect_bad(text, "template spiral", "template bad,label", 12, "template <label>");
    expect_bad(text, "template spiral\n", "template spiral\n1 2\n", 13, "three finite numbers");
    expect_bad(text, "template spiral\n", "template spiral\n1 2 inf\n", 13, "three finite numbers");
    expect_bad(text, "end\n", "end\nmore\n", 47, "content after 'end'");
    expect_bad(text, "end\n", "", 45, "unexpected end of file");
    /* comments and blank lines are fine */
    char buf[8192];
    snprintf(buf, sizeof buf, "# trained today\n\n%s# bye\n", text);
    km_status st;
    rec = km_gesture_model_parse(buf, strlen(buf), "m", 0, &st);
    assert_non_null(rec);
    km_gesture_recognizer_destroy(rec);
    assert_null(km_gesture_model_parse("", 0, "empty", 0, &st));
    assert_int_equal(st, KM_ERR_PARSE);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests_name("gesture_model", tests, NULL, NULL);
}
