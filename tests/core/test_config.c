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

#include "kinema/core.h"

static const char happy_yaml[] =
    "# kinemad test config\n"                      /* 1 */
    "log_level: debug\n"                           /* 2 */
    "fps: 120\n"                                   /* 3 */
    "exposure_us: \"500\"\n"                       /* 4 */
    "gain: 1.5e0\n"                                /* 5 */
    "mask: 0xFF\n"                                 /* 6 */
    "enabled: yes\n"                               /* 7 */
    "mirror: Off\n"                                /* 8 */
    "name: stage-a\n"                              /* 9 */
    "empty: ''\n"                                  /* 10 */
    "nothing:\n"                                   /* 11 */
    "transport:\n"                                 /* 12 */
    "  zmq:\n"                                     /* 13 */
    "    endpoint: tcp://127.0.0.1:5555\n"         /* 14 */
    "    hwm: 100\n"                               /* 15 */
    "sources:\n"                                   /* 16 */
    "  - type: synthetic\n"                        /* 17 */
    "    cameras: 4\n"                             /* 18 */
    "  - type: uvc\n"                              /* 19 */
    "    device: [1, 2.5, -3]\n"                   /* 20 */
    "origin: [0, 1.25, -2e-3]\n"                   /* 21 */
    "bodies:\n"                                    /* 22 */
    "  wand: {markers: 3}\n"                       /* 23 */
    "  head: {markers: 4}\n";                      /* 24 */

static km_config *parse(const char *text, km_status *st)
{
    return km_config_parse(text, strlen(text), "test.yaml", st);
}

static void test_happy_path(void **state)
{
    (void)state;
    km_status st = KM_ERR_INTERNAL;
    km_config *cfg = parse(happy_yaml, &st);
    assert_int_equal(st, KM_OK);
    assert_non_null(cfg);
    assert_string_equal(km_config_name(cfg), "test.yaml");

    long l = 0;
    assert_int_equal(km_config_get_int(cfg, "fps", 30, 1, 1000, &l), KM_OK);
    assert_int_equal(l, 120);
    assert_int_equal(km_config_get_int(cfg, "exposure_us", 0, 0, 100000, &l), KM_OK);
    assert_int_equal(l, 500); /* quoted numbers read as numbers */
    assert_int_equal(km_config_get_int(cfg, "mask", 0, 0, 1000, &l), KM_OK);
    assert_int_equal(l, 255);
    assert_int_equal(km_config_get_int(cfg, "transport.zmq.hwm", 0, 1, 1 << 20, &l), KM_OK);
    assert_int_equal(l, 100);
    assert_int_equal(km_config_get_int(cfg, "sources.0.cameras", 0, 1, 64, &l), KM_OK);
    assert_int_equal(l, 4);

    double d = 0;
    assert_int_equal(km_config_get_double(cfg, "gain", 1, 0, 16, &d), KM_OK);
    assert_true(d == 1.5);
    assert_int_equal(km_config_get_double(cfg, "fps", 1, 0, 1000, &d), KM_OK);
    assert_true(d == 120.0); /* an integer is a number */

    bool b = false;
    assert_int_equal(km_config_get_bool(cfg, "enabled", false, &b), KM_OK);
    assert_true(b);
    assert_int_equal(km_config_get_bool(cfg, "mirror", true, &b), KM_OK);
    assert_false(b);

    char s[64];
    assert_int_equal(km_config_get_string(cfg, "name", "x", s, sizeof s), KM_OK);
    assert_string_equal(s, "stage-a");
    assert_int_equal(km_config_get_string(cfg, "transport.zmq.endpoint", "", s, sizeof s), KM_OK);
    assert_string_equal(s, "tcp://127.0.0.1:5555");
    assert_int_equal(km_config_get_string(cfg, "sources.1.type", "", s, sizeof s), KM_OK);
    assert_string_equal(s, "uvc");
    assert_int_equal(km_config_get_string(cfg, "empty", "x", s, sizeof s), KM_OK);
    assert_string_equal(s, "");
    assert_int_equal(km_config_get_string(cfg, "fps", "", s, sizeof s), KM_OK);
    assert_string_equal(s, "120");

    double v[4];
    size_t n = 99;
    assert_int_equal(km_config_get_doubles(cfg, "origin", v, 4, &n), KM_OK);
    assert_int_equal(n, 3);
    assert_true(v[0] == 0 && v[1] == 1.25 && v[2] == -2e-3);
    assert_int_equal(km_config_get_doubles(cfg, "sources.1.device", v, 3, &n), KM_OK);
    assert_int_equal(n, 3);
    assert_true(v[2] == -3);

    assert_int_equal(km_config_count(cfg, "sources"), 2);
    assert_int_equal(km_config_count(cfg, "origin"), 3);
    assert_int_equal(km_config_count(cfg, "transport"), 0);
    assert_int_equal(km_config_count(cfg, "missing"), 0);

    assert_true(km_config_has(cfg, "transport.zmq"));
    assert_true(km_config_has(cfg, "sources.1"));
    assert_true(km_config_has(cfg, "nothing"));
    assert_true(km_config_has(cfg, ""));
    assert_false(km_config_has(cfg, "sources.2"));
    assert_false(km_config_has(cfg, "sources.-1"));
    assert_false(km_config_has(cfg, "sources.x"));
    assert_false(km_config_has(cfg, "transport..zmq"));
    assert_false(km_config_has(cfg, "transport."));
    assert_false(km_config_has(cfg, "fps.0"));

    assert_int_equal(km_config_line(cfg, "fps"), 3);
    assert_int_equal(km_config_line(cfg, "transport.zmq.endpoint"), 14);
    assert_int_equal(km_config_line(cfg, "sources.1.device"), 20);
    assert_int_equal(km_config_line(cfg, "sources.1.device.2"), 20);
    assert_int_equal(km_config_line(cfg, "nope"), 0);

    assert_int_equal(km_config_type(cfg, "transport"), KM_CONFIG_MAPPING);
    assert_int_equal(km_config_type(cfg, "sources"), KM_CONFIG_SEQUENCE);
    assert_int_equal(km_config_type(cfg, "fps"), KM_CONFIG_SCALAR);
    assert_int_equal(km_config_type(cfg, "nothing"), KM_CONFIG_NULL);
    assert_int_equal(km_config_type(cfg, "nope"), KM_CONFIG_ABSENT);

    assert_string_equal(km_config_key(cfg, "bodies", 0), "wand");
    assert_string_equal(km_config_key(cfg, "bodies", 1), "head");
    assert_null(km_config_key(cfg, "bodies", 2));
    assert_null(km_config_key(cfg, "sources", 0));
    assert_int_equal(km_config_get_int(cfg, "bodies.head.markers", 0, 0, 99, &l), KM_OK);
    assert_int_equal(l, 4);
    km_config_destroy(cfg);
    km_config_destroy(NULL);
}

static void test_absent_gives_fallback(void **state)
{
    (void)state;
    km_config *cfg = parse(happy_yaml, NULL);
    assert_non_null(cfg);
    long l = 0;
    double d = 0;
    bool b = false;
    char s[16];
    size_t n = 5;
    double v[2];
    assert_int_equal(km_config_get_int(cfg, "transport.zmq.port", 7, 0, 9, &l), KM_ERR_NOT_FOUND);
    assert_int_equal(l, 7);
    /* The message points at the deepest existing parent, ready for "required key". */
    assert_string_equal(km_last_error(), "test.yaml:14: transport.zmq.port: not found");
    assert_int_equal(km_config_get_double(cfg, "x", 2.5, 0, 9, &d), KM_ERR_NOT_FOUND);
    assert_true(d == 2.5);
    assert_int_equal(km_config_get_bool(cfg, "x", true, &b), KM_ERR_NOT_FOUND);
    assert_true(b);
    assert_int_equal(km_config_get_string(cfg, "x", "dflt", s, sizeof s), KM_ERR_NOT_FOUND);
    assert_string_equal(s, "dflt");
    assert_int_equal(km_config_get_string(cfg, "x", NULL, s, sizeof s), KM_ERR_NOT_FOUND);
    assert_string_equal(s, "");
    assert_int_equal(km_config_get_doubles(cfg, "x", v, 2, &n), KM_ERR_NOT_FOUND);
    assert_int_equal(n, 0);
    km_config_destroy(cfg);
}

static void test_wrong_types_and_ranges(void **state)
{
    (void)state;
    km_config *cfg = parse(happy_yaml, NULL);
    assert_non_null(cfg);
    long l = 0;
    double d = 0;
    bool b = false;
    char s[8];
    size_t n;
    double v[2];

    assert_int_equal(km_config_get_int(cfg, "fps", 30, 1, 100, &l), KM_ERR_PARSE);
    assert_int_equal(l, 30);
    assert_string_equal(km_last_error(),
                        "test.yaml:3: fps: expected an integer in [1, 100], got '120'");
    assert_int_equal(km_config_get_int(cfg, "gain", 0, 0, 100, &l), KM_ERR_PARSE);
    assert_int_equal(km_config_get_int(cfg, "name", 0, 0, 100, &l), KM_ERR_PARSE);
    assert_string_equal(km_last_error(),
                        "test.yaml:9: name: expected an integer in [0, 100], got 'stage-a'");
    assert_int_equal(km_config_get_int(cfg, "transport", 0, 0, 100, &l), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "test.yaml:13: transport: expected an integer"));
    assert_non_null(strstr(km_last_error(), "got a mapping"));
    assert_int_equal(km_config_get_int(cfg, "nothing", 0, 0, 100, &l), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "got null"));

    assert_int_equal(km_config_get_double(cfg, "gain", 1, 2, 16, &d), KM_ERR_PARSE);
    assert_true(d == 1);
    assert_non_null(strstr(km_last_error(), "test.yaml:5: gain: expected a number in [2, 16]"));
    assert_int_equal(km_config_get_double(cfg, "name", 1, 0, 16, &d), KM_ERR_PARSE);
    assert_int_equal(km_config_get_double(cfg, "origin", 1, 0, 16, &d), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "got a sequence"));

    assert_int_equal(km_config_get_bool(cfg, "fps", false, &b), KM_ERR_PARSE);
    assert_string_equal(km_last_error(), "test.yaml:3: fps: expected true or false, got '120'");
    assert_int_equal(km_config_get_string(cfg, "transport", "", s, sizeof s), KM_ERR_PARSE);
    assert_int_equal(km_config_get_string(cfg, "nothing", "", s, sizeof s), KM_ERR_PARSE);
    assert_int_equal(km_config_get_string(cfg, "transport.zmq.endpoint", "d", s, sizeof s),
                     KM_ERR_PARSE);
    assert_string_equal(s, "d");
    assert_non_null(strstr(km_last_error(), "test.yaml:14: transport.zmq.endpoint: expected a "
                                            "string of at most 7 bytes, got 20"));

    assert_int_equal(km_config_get_doubles(cfg, "origin", v, 2, &n), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "test.yaml:21: origin: expected at most 2 numbers, got 3"));
    assert_int_equal(km_config_get_doubles(cfg, "fps", v, 2, &n), KM_ERR_PARSE);
    assert_int_equal(km_config_get_doubles(cfg, "sources", v, 2, &n), KM_ERR_PARSE);
    km_config_destroy(cfg);

    cfg = parse("a: [1, x, 3]\nb: 1e999\nc: nan\nd: 99999999999999999999999\ne: 12abc\n"
                "f: \" 5\"\ng: 010\nh: -0x10\n", NULL);
    assert_non_null(cfg);
    double v3[3];
    assert_int_equal(km_config_get_doubles(cfg, "a", v3, 3, &n), KM_ERR_PARSE);
    assert_string_equal(km_last_error(), "test.yaml:1: a.1: expected a number, got 'x'");
    assert_int_equal(n, 0);
    assert_int_equal(km_config_get_double(cfg, "b", 0, -INFINITY, INFINITY, &d), KM_ERR_PARSE);
    assert_int_equal(km_config_get_double(cfg, "c", 0, -INFINITY, INFINITY, &d), KM_ERR_PARSE);
    assert_int_equal(km_config_get_int(cfg, "d", 0, 0, __LONG_MAX__, &l), KM_ERR_PARSE);
    assert_int_equal(km_config_get_int(cfg, "e", 0, 0, 1000, &l), KM_ERR_PARSE);
    assert_int_equal(km_config_get_int(cfg, "f", 0, 0, 1000, &l), KM_ERR_PARSE);
    assert_int_equal(km_config_get_int(cfg, "g", 0, 0, 1000, &l), KM_OK);
    assert_int_equal(l, 10); /* decimal, not octal */
    assert_int_equal(km_config_get_int(cfg, "h", 0, -1000, 1000, &l), KM_OK);
    assert_int_equal(l, -16);
    km_config_destroy(cfg);
}

static void test_check_keys(void **state)
{
    (void)state;
    km_config *cfg = parse(happy_yaml, NULL);
    assert_non_null(cfg);
    const char *const top[] = {"log_level", "fps", "exposure_us", "gain", "mask", "enabled",
                               "mirror", "name", "empty", "nothing", "transport", "sources",
                               "origin", "bodies", NULL};
    assert_int_equal(km_config_check_keys(cfg, "", top), KM_OK);
    const char *const zmq[] = {"endpoint", "hwm", NULL};
    assert_int_equal(km_config_check_keys(cfg, "transport.zmq", zmq), KM_OK);
    const char *const zmq_typo[] = {"endpiont", "hwm", NULL};
    assert_int_equal(km_config_check_keys(cfg, "transport.zmq", zmq_typo), KM_ERR_PARSE);
    assert_string_equal(km_last_error(),
                        "test.yaml:14: transport.zmq.endpoint: unknown key; did you mean "
                        "'endpiont'?");
    const char *const source[] = {"type", "cameras", NULL};
    assert_int_equal(km_config_check_keys(cfg, "sources.0", source), KM_OK);
    assert_int_equal(km_config_check_keys(cfg, "sources.1", source), KM_ERR_PARSE);
    assert_string_equal(km_last_error(),
                        "test.yaml:20: sources.1.device: unknown key (known: type, cameras)");
    const char *const few[] = {"fps", NULL};
    assert_int_equal(km_config_check_keys(cfg, "", few), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "test.yaml:2: log_level: unknown key"));
    assert_int_equal(km_config_check_keys(cfg, "absent.section", few), KM_OK);
    assert_int_equal(km_config_check_keys(cfg, "sources", few), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "sources: expected a mapping, got a sequence"));
    km_config_destroy(cfg);
}

static void expect_parse_error(const char *text, const char *prefix)
{
    km_status st = KM_OK;
    km_config *cfg = km_config_parse(text, strlen(text), "bad.yaml", &st);
    assert_null(cfg);
    assert_int_equal(st, KM_ERR_PARSE);
    if (strncmp(km_last_error(), prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", km_last_error(), prefix);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_parse_error("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml:3:");
    expect_parse_error("a: 1\n  b: 2\n", "bad.yaml:2:");
    expect_parse_error("a: 1\nb: 'unterminated\n", "bad.yaml:3:");
    expect_parse_error("a: 1\nb:\n\t- 1\n", "bad.yaml:3:"); /* tab indentation */
    expect_parse_error("x: 1\ny: 2\nx: 3\n", "bad.yaml:3: duplicate key 'x' (first at line 1)");
    expect_parse_error("m:\n  k: 1\n  k: 2\n", "bad.yaml:3: duplicate key 'k'");
    expect_parse_error("? [1, 2]\n: 3\n", "bad.yaml:1: mapping keys must be plain scalars");
    expect_parse_error("- 1\n- 2\n", "bad.yaml:1: the top level must be a mapping");
    expect_parse_error("just a string\n", "bad.yaml:1: the top level must be a mapping");
    expect_parse_error("a: 1\n---\nb: 2\n", "bad.yaml:3: only one YAML document");
    expect_parse_error("a: 1\nb: \xff\xfe\n", "bad.yaml:2: invalid YAML");
    expect_parse_error("a: *nowhere\n", "bad.yaml:1:");
    expect_parse_error("%YAML 2.0\n---\na: 1\n", "bad.yaml:1:");
    assert_non_null(strstr(km_last_error(), "invalid YAML"));
}

static void test_empty_and_aliases(void **state)
{
    (void)state;
    km_status st = KM_ERR_INTERNAL;
    km_config *cfg = km_config_parse("", 0, NULL, &st);
    assert_int_equal(st, KM_OK);
    assert_non_null(cfg);
    assert_string_equal(km_config_name(cfg), "<memory>");
    assert_false(km_config_has(cfg, ""));
    long l;
    assert_int_equal(km_config_get_int(cfg, "a", 1, 0, 2, &l), KM_ERR_NOT_FOUND);
    assert_string_equal(km_last_error(), "<memory>: a: not found");
    const char *const none[] = {NULL};
    assert_int_equal(km_config_check_keys(cfg, "", none), KM_OK);
    km_config_destroy(cfg);

    cfg = parse("# only a comment\n", &st);
    assert_non_null(cfg);
    km_config_destroy(cfg);

    cfg = parse("base: &b {gain: 2}\ncam0: *b\ncycle: &c [1, *c]\n", &st);
    assert_int_equal(st, KM_OK);
    assert_non_null(cfg);
    assert_int_equal(km_config_get_int(cfg, "cam0.gain", 0, 0, 9, &l), KM_OK);
    assert_int_equal(l, 2);
    /* A self-referencing alias is only followed as far as the path asks. */
    assert_int_equal(km_config_get_int(cfg, "cycle.1.1.1.0", 0, 0, 9, &l), KM_OK);
    assert_int_equal(l, 1);
    km_config_destroy(cfg);
}

/* What OpenCV's cv::FileStorage writes for a rig (formats.md). */
static const char opencv_rig[] =
    "%YAML:1.0\n"                                                       /* 1 */
    "---\n"                                                             /* 2 */
    "rig_name: \"stage-a\"\n"                                           /* 3 */
    "camera_count: 1\n"                                                 /* 4 */
    "camera_0:\n"                                                       /* 5 */
    "   name: \"cam0\"\n"                                               /* 6 */
    "   image_width: 1280\n"                                            /* 7 */
    "   camera_matrix: !!opencv-matrix\n"                               /* 8 */
    "      rows: 3\n"                                                   /* 9 */
    "      cols: 3\n"                                                   /* 10 */
    "      dt: d\n"                                                     /* 11 */
    "      data: [ 9.0e+02, 0., 6.4e+02, 0., 9.0e+02, 5.12e+02, 0., 0.,\n"
    "          1. ]\n"                                                  /* 13 */
    "   distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, dt: d, data: [-0.1, 0.01, 0, 0, 0]}\n"
    "   bad: [1, 2\n";                                                  /* 15: error */

static void test_opencv_header_and_tags(void **state)
{
    (void)state;
    size_t good_length = strstr(opencv_rig, "   bad:") - opencv_rig;
    km_status st = KM_ERR_INTERNAL;
    km_config *cfg = km_config_parse(opencv_rig, good_length, "rig.yaml", &st);
    assert_int_equal(st, KM_OK);
    assert_non_null(cfg);
    char s[32];
    assert_int_equal(km_config_get_string(cfg, "rig_name", "", s, sizeof s), KM_OK);
    assert_string_equal(s, "stage-a");
    assert_int_equal(km_config_type(cfg, "camera_0.camera_matrix"), KM_CONFIG_MAPPING);
    long rows = 0;
    assert_int_equal(km_config_get_int(cfg, "camera_0.camera_matrix.rows", 0, 1, 4, &rows), KM_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(km_config_get_string(cfg, "camera_0.camera_matrix.dt", "", s, sizeof s), KM_OK);
    assert_string_equal(s, "d");
    double k[9];
    size_t n = 0;
    assert_int_equal(km_config_get_doubles(cfg, "camera_0.camera_matrix.data", k, 9, &n), KM_OK);
    assert_int_equal(n, 9);
    assert_true(k[0] == 900 && k[2] == 640 && k[5] == 512 && k[8] == 1);
    assert_int_equal(km_config_get_doubles(cfg, "camera_0.distortion_coefficients.data", k, 9, &n),
                     KM_OK);
    assert_int_equal(n, 5);
    assert_true(k[0] == -0.1);
    /* Line numbers count the header line. */
    assert_int_equal(km_config_line(cfg, "camera_0.image_width"), 7);
    assert_int_equal(km_config_line(cfg, "camera_0.camera_matrix.cols"), 10);
    km_config_destroy(cfg);

    /* And errors after the header still name the right line. */
    cfg = km_config_parse(opencv_rig, strlen(opencv_rig), "rig.yaml", &st);
    assert_null(cfg);
    assert_int_equal(st, KM_ERR_PARSE);
    assert_true(strncmp(km_last_error(), "rig.yaml:16:", 12) == 0 ||
                strncmp(km_last_error(), "rig.yaml:15:", 12) == 0);

    /* Without "---" and with a byte order mark. */
    cfg = parse("\xEF\xBB\xBF%YAML:1.0\na: 1\n", &st);
    assert_non_null(cfg);
    assert_int_equal(km_config_line(cfg, "a"), 2);
    km_config_destroy(cfg);
    /* A normal YAML 1.1 directive still works. */
    cfg = parse("%YAML 1.1\n---\na: 1\n", &st);
    assert_non_null(cfg);
    km_config_destroy(cfg);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/kinema_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("fps: 60\nbroken: [\n", f);
    fclose(f);
    km_status st = KM_OK;
    assert_null(km_config_load(path, &st));
    assert_int_equal(st, KM_ERR_PARSE);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s:3:", path);
    assert_true(strncmp(km_last_error(), prefix, strlen(prefix)) == 0);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("fps: 60\n", f);
    fclose(f);
    km_config *cfg = km_config_load(path, &st);
    assert_int_equal(st, KM_OK);
    assert_non_null(cfg);
    assert_string_equal(km_config_name(cfg), path);
    long l;
    assert_int_equal(km_config_get_int(cfg, "fps", 0, 1, 1000, &l), KM_OK);
    assert_int_equal(l, 60);
    km_config_destroy(cfg);
    unlink(path);

    assert_null(km_config_load("/nonexistent/kinema.yaml", &st));
    assert_int_equal(st, KM_ERR_IO);
    assert_non_null(strstr(km_last_error(), "/nonexistent/kinema.yaml: cannot open"));
}

/* OpenCV-written calibration files from the shared data set (third-party, real). */
static void test_real_opencv_files(void **state)
{
    (void)state;
    const char *dir = getenv("KINEMA_DATA");
    if (dir == NULL || *dir == '\0')
        dir = getenv("KINEMA_DATA_DEFAULT");
    char path[1024];
    snprintf(path, sizeof path, "%s/calibration/opencv_stereo_chessboard/left_intrinsics.yml",
             dir != NULL ? dir : ".");
    if (dir == NULL || access(path, R_OK) != 0) {
        printf("skip: %s absent (set KINEMA_DATA to the shared data folder)\n", path);
        skip();
        return;
    }
    km_status st;
    km_config *cfg = km_config_load(path, &st);
    if (cfg == NULL)
        fail_msg("%s", km_last_error());
    long l;
    assert_int_equal(km_config_get_int(cfg, "nframes", 0, 0, 1000, &l), KM_OK);
    assert_int_equal(l, 13);
    double k[9], d;
    size_t n;
    assert_int_equal(km_config_get_doubles(cfg, "camera_matrix.data", k, 9, &n), KM_OK);
    assert_int_equal(n, 9);
    assert_true(k[0] == 535.91573396163199 && k[2] == 342.28315473308373);
    assert_int_equal(km_config_get_double(cfg, "avg_reprojection_error", 0, 0, 10, &d), KM_OK);
    assert_true(fabs(d - 0.39259098975581364) < 1e-15);
    km_config_destroy(cfg);

    /* The others (with and without "---") load too. */
    const char *others[] = {"calibration/opencv_stereo_chessboard/intrinsics.yml",
                            "calibration/opencv_stereo_chessboard/calibration.yml",
                            "calibration/opencv_aruco_charuco/tutorial_camera_charuco.yml",
                            "calibration/opencv_aruco_charuco/tutorial_camera_params.yml",
                            "calibration/opencv_aruco_charuco/detector_params.yml"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        cfg = km_config_load(path, &st);
        if (cfg == NULL)
            fail_msg("%s", km_last_error());
        assert_true(km_config_key(cfg, "", 0) != NULL);
        km_config_destroy(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_absent_gives_fallback),
        cmocka_unit_test(test_wrong_types_and_ranges),
        cmocka_unit_test(test_check_keys),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_empty_and_aliases),
        cmocka_unit_test(test_opencv_header_and_tags),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_real_opencv_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
