/* Rigid body definition files: parse, save/load round trip, strict validation with
 * file:line messages; rigid.csv writer. */
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

static const char GOOD[] =
    "# two bodies\n"
    "rigid_bodies:\n"
    "  - name: HEAD\n"
    "    id: 1\n"
    "    marker_diameter_m: 0.014\n"
    "    markers:\n"
    "      - [0.0, 0.10, 0.02]\n"
    "      - [0.07, 0.08, -0.03]\n"
    "      - [-0.06, 0.09, -0.04]\n"
    "      - [0.01, 0.12, -0.09]\n"
    "  - name: \"wand 2\"\n"
    "    id: 42\n"
    "    markers: [[0, 0, 0], [0.25, 0, 0], [0.1, 0.05, 0]]\n";

static void test_parse_good(void **state)
{
    (void)state;
    km_rigid_definition defs[4];
    int n = -1;
    assert_int_equal(km_rigid_definitions_parse(GOOD, strlen(GOOD), "good.yaml", defs, 4, &n),
                     KM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(defs[0].name, "HEAD");
    assert_int_equal(defs[0].id, 1);
    assert_int_equal(defs[0].marker_count, 4);
    assert_true(fabs(defs[0].marker_diameter_m - 0.014) < 1e-15);
    assert_true(fabs(defs[0].markers_m[1].x - 0.07) < 1e-15);
    assert_true(fabs(defs[0].markers_m[3].z + 0.09) < 1e-15);
    assert_string_equal(defs[1].name, "wand 2");
    assert_int_equal(defs[1].id, 42);
    assert_int_equal(defs[1].marker_count, 3);
    assert_true(defs[1].marker_diameter_m == 0.0);
    /* capacity */
    assert_int_equal(km_rigid_definitions_parse(GOOD, strlen(GOOD), "good.yaml", defs, 1, &n),
                     KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "good.yaml:"));
    assert_non_null(strstr(km_last_error(), "at most 1 can be read"));
}

static void test_round_trip(void **state)
{
    (void)state;
    km_rigid_definition defs[4], back[4];
    int n = 0, m = 0;
    assert_int_equal(km_rigid_definitions_parse(GOOD, strlen(GOOD), "good.yaml", defs, 4, &n),
                     KM_OK);
    strcpy(defs[1].name, "it's");
    char path[] = "/tmp/kinema_rigid_defs_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(km_rigid_definitions_save(path, defs, n), KM_OK);
    assert_int_equal(km_rigid_definitions_load(path, back, 4, &m), KM_OK);
    assert_int_equal(m, n);
    for (int k = 0; k < n; k++) {
        assert_string_equal(back[k].name, defs[k].name);
        assert_int_equal(back[k].id, defs[k].id);
        assert_int_equal(back[k].marker_count, defs[k].marker_count);
        assert_true(fabs(back[k].marker_diameter_m - defs[k].marker_diameter_m) < 1e-12);
        for (int i = 0; i < defs[k].marker_count; i++)
            assert_true(km_vec3_dist(back[k].markers_m[i], defs[k].markers_m[i]) < 1e-9);
    }
    unlink(path);
    assert_int_equal(km_rigid_definitions_load("/nonexistent/rigid.yaml", back, 4, &m) != KM_OK,
                     true);
}

typedef struct bad_case {
    const char *text;
    const char *expect; /* substring of the message, including file:line */
} bad_case;

static void test_malformed(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"", "bad.yaml:1: missing 'rigid_bodies'"},
        {"rigid_bodies: 3\n", "bad.yaml:1: rigid_bodies"},
        {"rigid_bodies: []\n", "empty"},
        {"rigid_bodies:\n  - 5\n", "bad.yaml:2:"},
        {"rigid_body:\n  - name: a\n", "unknown key"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markerz: []\n", "bad.yaml:4:"},
        {"rigid_bodies:\n  - id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n", "missing 'name'"},
        {"rigid_bodies:\n  - name: A\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n", "missing 'id'"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n", "missing 'markers'"},
        {"rigid_bodies:\n  - name: A\n    id: -4\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n",
         "bad.yaml:3:"},
        {"rigid_bodies:\n  - name: A\n    id: x\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n",
         "bad.yaml:3:"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0]]\n",
         "2 markers, need 3"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0],[0,1,0]]\n",
         "bad.yaml:4:"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,zz]]\n",
         "bad.yaml:4:"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[2,0,0]]\n",
         "one line"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[0,0,0.0001],[0,1,0]]\n",
         "1 mm"},
        {"rigid_bodies:\n  - name: 'a,b'\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n",
         "bad.yaml:2:"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n"
         "  - name: A\n    id: 2\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n",
         "bad.yaml:5: rigid_bodies.1: duplicate name"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n"
         "  - name: B\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n",
         "duplicate id"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    marker_diameter_m: 2\n"
         "    markers: [[0,0,0],[1,0,0],[0,1,0]]\n", "bad.yaml:4:"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,0]]\n"
         "    id: 2\n", "bad.yaml:"},
        {"rigid_bodies: [\n", "bad.yaml:"},
        {"rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1,.nan]]\n",
         "bad.yaml:4:"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        km_rigid_definition defs[4];
        int n = 99;
        const km_status st = km_rigid_definitions_parse(cases[k].text, strlen(cases[k].text),
                                                        "bad.yaml", defs, 4, &n);
        printf("case %zu: %s -> %s\n", k, km_status_name(st), km_last_error());
        assert_int_equal(st, KM_ERR_PARSE);
        assert_int_equal(n, 0);
        assert_non_null(strstr(km_last_error(), cases[k].expect));
    }
}

static void test_csv_writer(void **state)
{
    (void)state;
    km_rigid_definition defs[2];
    int n = 0;
    assert_int_equal(km_rigid_definitions_parse(GOOD, strlen(GOOD), "good.yaml", defs, 2, &n),
                     KM_OK);
    km_rigid_pose poses[2];
    memset(poses, 0, sizeof poses);
    poses[0] = (km_rigid_pose){.id = 1, .definition = 0, .tracked = true,
                               .pos_m = {1.5, 1.25, -0.5}, .rot = {0, 0.6, 0, 0.8},
                               .error_m = 0.0002};
    poses[1] = (km_rigid_pose){.id = 42, .definition = 1, .tracked = false,
                               .rot = {0, 0, 0, 1}};
    char buf[1024];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    km_rigid_csv_write_header(f);
    km_rigid_csv_write(f, 7, 58333331, defs, poses, 2);
    fclose(f);
    assert_string_equal(buf,
                        "frame,time_ns,rigid_id,name,x,y,z,qx,qy,qz,qw,error_m,tracked\n"
                        "7,58333331,1,HEAD,1.500000,1.250000,-0.500000,0.0000000,0.6000000,"
                        "0.0000000,0.8000000,0.000200,1\n"
                        "7,58333331,42,wand 2,0.000000,0.000000,0.000000,0.0000000,0.0000000,"
                        "0.0000000,1.0000000,0.000000,0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_csv_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
