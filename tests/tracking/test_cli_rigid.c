/* Integration: `kinema synth-obs` (1 actor, 8 cameras, 0.1 px) -> `kinema rigid define` from
 * the ground-truth markers of frame 0 (HEAD by ids, PROP near a point) -> `kinema rigid`;
 * the poses in rigid.csv must carry the definition's markers onto the ground-truth markers of
 * every frame (mean < 1 mm). Also exit codes and messages for help, usage and bad files.
 *
 * argv[1] is the kinema executable (meson passes it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinema/tracking.h"

static const char *kinema_exe;
static char dir[64];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

#define FRAMES 150

static void test_round_trip(void **state)
{
    (void)state;
    assert_int_equal(run("'%s' synth-obs --frames %d --noise-px 0.1 --out %s/obs.csv "
                         "--rig-out %s/rig.yaml --truth-out %s/truth.csv",
                         kinema_exe, FRAMES, dir, dir, dir), 0);
    /* HEAD markers of actor 0 are ids 39..42, PROP 43..47 (km_synthetic_rigid_definition) */
    assert_int_equal(run("'%s' rigid define --markers %s/truth.csv --frame 0 --ids 39,40,41,42 "
                         "--name HEAD --out %s/rigid.yaml > /dev/null", kinema_exe, dir, dir), 0);
    /* PROP by --near: the centroid of its markers in frame 0 */
    char truth_path[128];
    snprintf(truth_path, sizeof truth_path, "%s/truth.csv", dir);
    km_status err;
    km_markers_reader *r = km_markers_reader_open(truth_path, &err);
    assert_non_null(r);
    static km_marker items[1024];
    km_marker_set truth = {.capacity = 1024, .items = items};
    assert_int_equal(km_markers_reader_next(r, &truth), KM_OK);
    km_vec3 c = {0, 0, 0};
    for (int k = 0; k < truth.count; k++)
        if (items[k].id >= 43 && items[k].id <= 47)
            c = km_vec3_add(c, km_vec3_scale(items[k].pos_m, 0.2));
    km_markers_reader_close(r);
    assert_int_equal(run("'%s' rigid define --markers %s/truth.csv --frame 0 --near %f,%f,%f "
                         "--radius-mm 140 --name PROP --out %s/rigid.yaml --append > /dev/null",
                         kinema_exe, dir, c.x, c.y, c.z, dir), 0);
    km_rigid_definition defs[4];
    int ndefs = 0;
    char defs_path[128];
    snprintf(defs_path, sizeof defs_path, "%s/rigid.yaml", dir);
    assert_int_equal(km_rigid_definitions_load(defs_path, defs, 4, &ndefs), KM_OK);
    assert_int_equal(ndefs, 2);
    assert_int_equal(defs[0].marker_count, 4);
    assert_int_equal(defs[1].marker_count, 5);
    assert_int_equal(defs[1].id, 2);

    assert_int_equal(run("'%s' rigid --rig %s/rig.yaml --obs %s/obs.csv --defs %s/rigid.yaml "
                         "--out %s/rigid.csv --markers-out %s/markers.csv > %s/summary.txt",
                         kinema_exe, dir, dir, dir, dir, dir, dir), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/summary.txt", dir);
    assert_true(file_contains(path, "rigid: 150 frames"));

    /* rigid.csv vs the ground-truth markers: the pose must carry each definition marker onto
     * the truth marker it was made from (frame 0 order: ids ascending = definition order). */
    snprintf(path, sizeof path, "%s/rigid.csv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    r = km_markers_reader_open(truth_path, &err);
    assert_non_null(r);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "frame,time_ns,rigid_id,name,x,y,z,qx,qy,qz,qw,error_m,tracked\n");
    long rows = 0, tracked = 0;
    double err_sum = 0.0;
    long err_n = 0;
    for (int fr = 0; fr < FRAMES; fr++) {
        assert_int_equal(km_markers_reader_next(r, &truth), KM_OK);
        for (int b = 0; b < 2; b++) {
            assert_non_null(fgets(line, sizeof line, f));
            uint64_t frame, t;
            unsigned id;
            char name[64];
            double x, y, z, qx, qy, qz, qw, e;
            int tr;
            assert_int_equal(sscanf(line, "%" SCNu64 ",%" SCNu64 ",%u,%63[^,],%lf,%lf,%lf,%lf,"
                                          "%lf,%lf,%lf,%lf,%d",
                                    &frame, &t, &id, name, &x, &y, &z, &qx, &qy, &qz, &qw, &e,
                                    &tr), 13);
            assert_int_equal(frame, (uint64_t)fr);
            assert_int_equal(id, defs[b].id);
            assert_string_equal(name, defs[b].name);
            rows++;
            if (!tr)
                continue;
            tracked++;
            const km_quat q = {qx, qy, qz, qw};
            const uint32_t first = b == 0 ? 39 : 43;
            for (int i = 0; i < defs[b].marker_count; i++) {
                const km_vec3 w = km_vec3_add(km_vec3_make(x, y, z),
                                              km_quat_rotate(q, defs[b].markers_m[i]));
                for (int k = 0; k < truth.count; k++)
                    if (items[k].id == first + (uint32_t)i) {
                        err_sum += km_vec3_dist(w, items[k].pos_m);
                        err_n++;
                    }
            }
        }
    }
    assert_null(fgets(line, sizeof line, f));
    fclose(f);
    km_markers_reader_close(r);
    printf("kinema rigid on synth-obs: %ld rows, tracked %.2f%%, mean marker error vs truth "
           "%.4f mm\n", rows, 100.0 * tracked / rows, 1000.0 * err_sum / err_n);
    assert_int_equal(rows, 2 * FRAMES);
    assert_true(tracked >= 0.98 * rows);
    assert_true(err_sum / err_n < 0.001);
    /* markers.csv carries persistent ids */
    snprintf(path, sizeof path, "%s/markers.csv", dir);
    assert_true(file_contains(path, "frame,time_ns,id,x,y,z,residual_px,views"));
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(run("'%s' rigid --help > /dev/null", kinema_exe), 0);
    assert_int_equal(run("'%s' rigid define --help > /dev/null", kinema_exe), 0);
    assert_int_equal(run("'%s' rigid --obs x.csv 2> /dev/null", kinema_exe), 2);
    assert_int_equal(run("'%s' rigid define --name A 2> /dev/null", kinema_exe), 2);
    assert_int_equal(run("'%s' rigid define --name A --out %s/x.yaml --coords 1,2 2> /dev/null",
                         kinema_exe, dir), 2);
    /* collinear coordinates: a failure with the reason */
    assert_int_equal(run("'%s' rigid define --name A --out %s/x.yaml "
                         "--coords '0,0,0;0.1,0,0;0.2,0,0' 2> %s/err.txt",
                         kinema_exe, dir, dir), 1);
    char path[128];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    assert_true(file_contains(path, "one line"));
    /* a malformed definitions file: file:line on stderr */
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("rigid_bodies:\n  - name: A\n    id: 1\n    markers: [[0,0,0],[1,0,0],[0,1]]\n", f);
    fclose(f);
    assert_int_equal(run("'%s' rigid --rig %s/rig.yaml --obs %s/obs.csv --defs %s/bad.yaml "
                         "--out %s/o.csv 2> %s/err.txt", kinema_exe, dir, dir, dir, dir, dir), 1);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    assert_true(file_contains(path, "bad.yaml:4:"));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_rigid /path/to/kinema\n");
        return 1;
    }
    kinema_exe = argv[1];
    snprintf(dir, sizeof dir, "/tmp/kinema_cli_rigid_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exit_codes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    run("rm -rf '%s'", dir);
    return rc;
}
