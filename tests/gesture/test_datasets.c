/* Readers of traj.csv, the $1 XML logs and the unified JSON, on fixtures built here
 * (valid and malformed) and on one real file of each data set when KINEMA_DATA is present. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_data.h"
#include "kinema/gesture.h"

static const char *good_csv =
    "# comment\n"
    "sample,label,t_ns,x,y,z,extra\n"
    "a1,circle,0,0,1,0,x\n"
    "a1,circle,10,1,0.5,-2e-3,x\r\n"
    "b2,swipe_left,5,1,0,0.5,y\n";

static void test_traj_csv(void **state)
{
    (void)state;
    km_gesture_set *set = km_gesture_set_create();
    assert_int_equal(km_gesture_parse_traj_csv(set, good_csv, strlen(good_csv), "g.csv"), KM_OK);
    assert_int_equal(set->count, 2);
    assert_string_equal(set->samples[0].id, "a1");
    assert_string_equal(set->samples[0].label, "circle");
    assert_int_equal(set->samples[0].traj.count, 2);
    assert_float_equal(set->samples[0].traj.pos[1].z, -2e-3, 0.0);
    assert_true(set->samples[0].traj.t_ns[1] == 10);
    assert_string_equal(set->samples[1].label, "swipe_left");

    /* write and read back */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(km_gesture_write_traj_csv(set, f), KM_OK);
    fclose(f);
    km_gesture_set *back = km_gesture_set_create();
    assert_int_equal(km_gesture_parse_traj_csv(back, buf, len, "w.csv"), KM_OK);
    assert_int_equal(back->count, 2);
    assert_float_equal(back->samples[0].traj.pos[1].y, 0.5, 0.0);
    free(buf);
    km_gesture_set_destroy(back);
    km_gesture_set_destroy(set);
}

static void expect_csv_error(const char *text, const char *where, const char *why)
{
    km_gesture_set *set = km_gesture_set_create();
    km_status st = km_gesture_parse_traj_csv(set, text, strlen(text), "b.csv");
    if (st != KM_ERR_PARSE || !strstr(km_last_error(), where) || !strstr(km_last_error(), why))
        fail_msg("'%s': got %d '%s'", text, st, km_last_error());
    km_gesture_set_destroy(set);
}

static void test_traj_csv_malformed(void **state)
{
    (void)state;
    const char *h = "sample,label,t_ns,x,y,z\n";
    char t[512];
    expect_csv_error("", "b.csv:0:", "no header");
    expect_csv_error("sample,label,time,x,y,z\n", "b.csv:1:", "header column 3");
    snprintf(t, sizeof t, "%sa,c,0,1,2\n", h);
    expect_csv_error(t, "b.csv:2:", "5 columns");
    snprintf(t, sizeof t, "%sa,c,0,1,2,zz\n", h);
    expect_csv_error(t, "b.csv:2:", "z is not");
    snprintf(t, sizeof t, "%sa,c,0,1,2,nan\n", h);
    expect_csv_error(t, "b.csv:2:", "z is not");
    snprintf(t, sizeof t, "%sa,c,1.5,1,2,3\n", h);
    expect_csv_error(t, "b.csv:2:", "t_ns");
    snprintf(t, sizeof t, "%sa,c,5,1,2,3\na,c,4,1,2,3\n", h);
    expect_csv_error(t, "b.csv:3:", "back in time");
    snprintf(t, sizeof t, "%sa,c,5,1,2,3\na,d,6,1,2,3\n", h);
    expect_csv_error(t, "b.csv:3:", "changes label");
    snprintf(t, sizeof t, "%sa,c,5,1,2,3\nb,c,6,1,2,3\na,c,7,1,2,3\n", h);
    expect_csv_error(t, "b.csv:4:", "not contiguous");
    snprintf(t, sizeof t, "%sa,c,5,1,2,3\n\na,c,7,1,2,3\n", h);
    expect_csv_error(t, "b.csv:3:", "empty line");
    snprintf(t, sizeof t, "%sa,bad label,5,1,2,3\n", h);
    expect_csv_error(t, "b.csv:2:", "[A-Za-z0-9_.-]");
}

static const char *good_xml =
    "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>\n"
    "<Gesture Name=\"arrow01\" Subject=\"2\" Speed=\"medium\" NumPts=\"3\" Millseconds=\"30\">\n"
    "  <!-- a comment -->\n"
    "  <Point X=\"50\" Y=\"242\" T=\"11435895\" />\n"
    "  <Point X='52' Y=\"240.5\" T=\"11435910\"/>\n"
    "  <Point X=\"54\" Y=\"239\" T=\"11435922\" />\n"
    "</Gesture>\n";

static void expect_xml_error(const char *from, const char *to, const char *where, const char *why)
{
    char buf[2048];
    const char *at = strstr(good_xml, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - good_xml), good_xml, to, at + strlen(from));
    km_gesture_set *set = km_gesture_set_create();
    km_status st = km_gesture_parse_dollar1_xml(set, buf, strlen(buf), "b.xml");
    if (st != KM_ERR_PARSE || !strstr(km_last_error(), where) || !strstr(km_last_error(), why))
        fail_msg("'%s'->'%s': got %d '%s'", from, to, st, km_last_error());
    assert_int_equal(set->count, 0);
    km_gesture_set_destroy(set);
}

static void test_dollar1_xml(void **state)
{
    (void)state;
    km_gesture_set *set = km_gesture_set_create();
    assert_int_equal(km_gesture_parse_dollar1_xml(set, good_xml, strlen(good_xml), "x/arrow01.xml"), KM_OK);
    assert_int_equal(set->count, 1);
    km_gesture_sample *s = &set->samples[0];
    assert_string_equal(s->label, "arrow");
    assert_string_equal(s->id, "s02_arrow01");
    assert_int_equal(s->subject, 2);
    assert_int_equal(s->traj.count, 3);
    assert_float_equal(s->traj.pos[1].y, 240.5, 0.0);
    assert_true(s->traj.t_ns[2] == 11435922LL * 1000000);
    km_gesture_set_destroy(set);

    expect_xml_error("NumPts=\"3\"", "NumPts=\"4\"", "b.xml:1:", "NumPts=4 but 3");
    expect_xml_error("<Gesture ", "<Gestur ", "b.xml:2:", "root element");
    expect_xml_error("X='52'", "X='5x2'", "b.xml:5:", "numeric X");
    expect_xml_error("X='52'", "X='52", "b.xml:6:", "'<'"); /* found where '<' is */
    expect_xml_error("T=\"11435922\"", "T=\"11435000\"", "b.xml:6:", "back in time");
    expect_xml_error(" Y=\"239\"", "", "b.xml:6:", "numeric X, Y");
    expect_xml_error("</Gesture>\n", "", "b.xml:7:", "missing </Gesture>");
    expect_xml_error("</Gesture>\n", "</Gesture>\n<Gesture>", "b.xml:8:", "content after");
    expect_xml_error("Subject=\"2\"", "Subject=\"2\" Subject=\"3\"", "b.xml:2:", "duplicate");
    expect_xml_error("<Point X=\"50\" Y=\"242\" T=\"11435895\" />", "<Point X=\"50\" Y=\"242\" T=\"11435895\"></Point>", "b.xml:4:", "must be empty");
    expect_xml_error("Name=\"arrow01\"", "Name=\"01\"", "b.xml:2:", "Name");
}

static const char *good_json =
    "{\"name\": \"Caret\", \"subject\": 1, \"date\": null,\n"
    " \"paths\": {\"Palm\": {\"strokes\": [\n"
    "   {\"x\": 0.1, \"y\": -0.07, \"w\": null, \"z\": -0.3, \"t\": 5.7, \"stroke_id\": 0},\n"
    "   {\"x\": 0.2, \"y\": -0.05, \"w\": null, \"z\": -0.33, \"t\": 5.75, \"stroke_id\": 0}]},\n"
    "  \"Pinky_3\": {\"strokes\": [null, null]}},\n"
    " \"strokes\": [{\"x\": 1, \"y\": 2, \"z\": null, \"t\": 1000, \"stroke_id\": 0},\n"
    "             {\"x\": 3, \"y\": 4, \"t\": 1017}],\n"
    " \"device\": {\"osBrowserInfo\": \"Leap Motion Controller\", \"mouse\": false}}\n";

static void expect_json_error(const char *from, const char *to, const char *key, const char *where,
                              const char *why)
{
    char buf[2048];
    const char *at = strstr(good_json, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - good_json), good_json, to, at + strlen(from));
    km_gesture_set *set = km_gesture_set_create();
    km_status st = km_gesture_parse_unified_json(set, buf, strlen(buf), "b.json", key, 1e9);
    if (st != KM_ERR_PARSE || !strstr(km_last_error(), where) || !strstr(km_last_error(), why))
        fail_msg("'%s'->'%s': got %d '%s'", from, to, st, km_last_error());
    km_gesture_set_destroy(set);
}

static void test_unified_json(void **state)
{
    (void)state;
    km_gesture_set *set = km_gesture_set_create();
    assert_int_equal(km_gesture_parse_unified_json(set, good_json, strlen(good_json), "d/U1/Caret-1.json", "Palm", 1e9), KM_OK);
    assert_int_equal(km_gesture_parse_unified_json(set, good_json, strlen(good_json), "top.json", NULL, 1e6), KM_OK);
    assert_int_equal(set->count, 2);
    km_gesture_sample *s = &set->samples[0];
    assert_string_equal(s->label, "Caret");
    assert_string_equal(s->id, "s01_Caret-1");
    assert_int_equal(s->subject, 1);
    assert_int_equal(s->traj.count, 2);
    assert_float_equal(s->traj.pos[1].z, -0.33, 0.0);
    assert_true(s->traj.t_ns[1] == 5750000000LL);
    s = &set->samples[1];
    assert_int_equal(s->traj.count, 2);
    assert_float_equal(s->traj.pos[0].z, 0.0, 0.0); /* null z: 2D */
    assert_true(s->traj.t_ns[1] == 1017000000LL);
    km_gesture_set_destroy(set);

    expect_json_error("\"Pinky_3\"", "\"Pinky_3\"", "Pinky_3", "b.json:5:", "stroke point must be an object");
    expect_json_error("\"Palm\"", "\"Palm\"", "Thumb_1", "b.json:2:", "no object 'Thumb_1'");
    expect_json_error("\"x\": 0.2", "\"x\": \"0.2\"", "Palm", "b.json:4:", "number 'x'");
    expect_json_error("\"t\": 5.75", "\"t\": 5.6", "Palm", "b.json:4:", "back in time");
    expect_json_error("\"stroke_id\": 0}]}", "\"stroke_id\": 0.5}]}", "Palm", "b.json:4:", "stroke_id");
    expect_json_error("\"Caret\"", "\"Car et\"", "Palm", "b.json:1:", "'name'");
    expect_json_error("\"subject\": 1", "\"subject\": -1", "Palm", "b.json:1:", "subject");
    expect_json_error("\"mouse\": false}}", "\"mouse\": false}", "Palm", "b.json:", "unterminated object");
    expect_json_error("\"strokes\": [{", "\"strokes\": [], \"x\": [{", NULL, "b.json:", "non-empty");
}

static void test_real_files(void **state)
{
    (void)state;
    const char *root = gesture_data_root();
    if (!root) {
        printf("SKIP: no KINEMA_DATA\n");
        skip();
    }
    char path[4096];
    km_gesture_set *set = km_gesture_set_create();
    snprintf(path, sizeof path, "%s/gestures/dollar1_unistroke_xml_logs/s02/medium/arrow01.xml", root);
    km_status st = km_gesture_load_dollar1_xml(set, path);
    if (st == KM_ERR_IO) {
        km_gesture_set_destroy(set);
        printf("SKIP: %s\n", km_last_error());
        skip();
    }
    assert_int_equal(st, KM_OK);
    assert_int_equal(set->samples[0].traj.count, 74);
    snprintf(path, sizeof path, "%s/gestures/shrec2019_leap_hand/U1/Caret-1.json", root);
    assert_int_equal(km_gesture_load_unified_json(set, path, "Palm", 1e9), KM_OK);
    assert_int_equal(set->samples[1].traj.count, 32);
    /* Pinky_3 holds nulls in these files: a clear error, not a crash */
    assert_int_equal(km_gesture_load_unified_json(set, path, "Pinky_3", 1e9), KM_ERR_PARSE);
    snprintf(path, sizeof path, "%s/gestures/3dtcgs_leap_trajectories/u02/circle1.json", root);
    assert_int_equal(km_gesture_load_unified_json(set, path, NULL, 1e6), KM_OK);
    assert_int_equal(set->samples[2].traj.count, 180);
    assert_string_equal(set->samples[2].label, "circle");
    assert_int_equal(km_gesture_load_traj_csv(set, "/nonexistent.csv"), KM_ERR_IO);
    km_gesture_set_destroy(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traj_csv),
        cmocka_unit_test(test_traj_csv_malformed),
        cmocka_unit_test(test_dollar1_xml),
        cmocka_unit_test(test_unified_json),
        cmocka_unit_test(test_real_files),
    };
    return cmocka_run_group_tests_name("gesture_datasets", tests, NULL, NULL);
}
