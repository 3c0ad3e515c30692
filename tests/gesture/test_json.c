/* The strict JSON reader (gesture/json.c, private). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../gesture/json.h"

static km_status parse(const char *text, km_json_doc *doc)
{
    return km_json_parse(doc, text, strlen(text), "t.json");
}

static void test_valid(void **state)
{
    (void)state;
    km_json_doc doc;
    const char *text = "\xEF\xBB\xBF{\"a\": [1, -2.5e3, true, false, null],\n \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\", \"o\": {}}";
    assert_int_equal(parse(text, &doc), KM_OK);
    assert_int_equal(doc.nodes[0].type, KM_JSON_OBJECT);
    assert_int_equal(doc.nodes[0].child_count, 3);
    size_t a = km_json_member(&doc, 0, "a");
    assert_true(a > 0);
    assert_int_equal(doc.nodes[a].child_count, 5);
    size_t second = doc.nodes[a + 1].next_sibling;
    assert_float_equal(doc.nodes[second].number, -2500.0, 0.0);
    size_t s = km_json_member(&doc, 0, "s");
    assert_int_equal(doc.nodes[s].line, 2);
    char out[32];
    assert_true(km_json_string(&doc, s, out, sizeof out));
    assert_string_equal(out, "x\xC3\xA9\xF0\x9F\x98\x80\n\"");
    assert_false(km_json_string(&doc, s, out, 4)); /* does not fit */
    assert_int_equal(km_json_member(&doc, 0, "missing"), 0);
    assert_int_equal(km_json_member(&doc, a, "x"), 0); /* not an object */
    km_json_free(&doc);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[01]", "[1.]", "[.5]", "[1e]",
        "[-]", "[NaN]", "[Infinity]", "[tru]", "\"\\x\"", "\"\\u12G4\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"a\nb\"", "[1] 2", "// c\n1", "[1e999]", "{\"a\":1}}", "'s'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        km_json_doc doc;
        km_status st = parse(bad[i], &doc);
        km_json_free(&doc);
        if (st != KM_ERR_PARSE)
            fail_msg("accepted malformed JSON #%zu '%s'", i, bad[i]);
        assert_non_null(strstr(km_last_error(), "t.json:"));
    }
    /* nesting limit */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    km_json_doc doc;
    assert_int_equal(km_json_parse(&doc, deep, 200, "deep"), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "nesting"));
    km_json_free(&doc);
    /* line numbers */
    assert_int_equal(parse("{\n\"a\":\n[1,\n2,,3]}", &doc), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "t.json:4:"));
    km_json_free(&doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests_name("gesture_json", tests, NULL, NULL);
}
