/* Integration: the file round trip of the acceptance. `kinema synth-obs` writes obs.csv,
 * rig.yaml and truth.csv of the synthetic default (8 cameras, 0.1 px noise), `kinema
 * reconstruct` turns them into markers.csv, and this test compares markers.csv with the truth
 * through the library's CSV readers: RMS < 1 mm and >= 99% of the markers seen by two or more
 * cameras found. Also the CLI's exit codes for help, usage errors and bad input.
 *
 * argv[1] is the kinema executable (meson passes it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinema/tracking.h"

static const char *kinema_exe;
static char dir[64];

/* Run a shell command; return its exit status (-1 when it did not exit normally). */
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
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_round_trip(void **state)
{
    (void)state;
    assert_int_equal(run("'%s' synth-obs --frames 300 --noise-px 0.1 --out %s/obs.csv "
                         "--rig-out %s/rig.yaml --truth-out %s/truth.csv",
                         kinema_exe, dir, dir, dir),
                     0);
    assert_int_equal(run("'%s' reconstruct --rig %s/rig.yaml --obs %s/obs.csv "
                         "--out %s/markers.csv > %s/summary.txt",
                         kinema_exe, dir, dir, dir, dir),
                     0);
    char path[128];
    snprintf(path, sizeof path, "%s/summary.txt", dir);
    assert_true(file_contains(path, "reconstruct: 300 frames"));

    char truth_path[128], markers_path[128];
    snprintf(truth_path, sizeof truth_path, "%s/truth.csv", dir);
    snprintf(markers_path, sizeof markers_path, "%s/markers.csv", dir);
    km_status err;
    km_markers_reader *truth_r = km_markers_reader_open(truth_path, &err);
    assert_non_null(truth_r);
    km_markers_reader *rec_r = km_markers_reader_open(markers_path, &err);
    assert_non_null(rec_r);
    static km_marker truth_items[1024], rec_items[1024];
    km_marker_set truth = {.capacity = 1024, .items = truth_items};
    km_marker_set rec = {.capacity = 1024, .items = rec_items};
    bool have_rec = false;
    long frames = 0, expected = 0, found = 0, matched = 0, ghosts = 0;
    double sum_sq = 0.0;
    for (;;) {
        km_status st = km_markers_reader_next(truth_r, &truth);
        if (st == KM_ERR_END_OF_STREAM)
            break;
        assert_int_equal(st, KM_OK);
        frames++;
        /* markers.csv has no row for a frame without markers: read ahead as needed. */
        if (!have_rec || rec.frame < truth.frame) {
            do {
                st = km_markers_reader_next(rec_r, &rec);
                assert_true(st == KM_OK || st == KM_ERR_END_OF_STREAM);
                have_rec = st == KM_OK;
            } while (have_rec && rec.frame < truth.frame);
        }
        const bool same = have_rec && rec.frame == truth.frame;
        if (same)
            assert_int_equal(rec.time_ns, truth.time_ns);
        int taken[1024] = {0};
        for (int k = 0; same && k < rec.count; k++) {
            int best = -1;
            double best_d = 0.01;
            for (int m = 0; m < truth.count; m++) {
                double d = km_vec3_dist(rec_items[k].pos_m, truth_items[m].pos_m);
                if (d < best_d) {
                    best_d = d;
                    best = m;
                }
            }
            if (best < 0 || taken[best]) {
                ghosts++;
                continue;
            }
            taken[best] = 1;
            matched++;
            sum_sq += best_d * best_d;
        }
        for (int m = 0; m < truth.count; m++) {
            if (truth_items[m].views >= 2) {
                expected++;
                found += taken[m];
            }
        }
    }
    km_markers_reader_close(truth_r);
    km_markers_reader_close(rec_r);
    const double rms_mm = matched ? 1000.0 * sqrt(sum_sq / matched) : INFINITY;
    const double recall = expected ? (double)found / expected : 0.0;
    printf("kinema synth-obs | reconstruct on files: %ld frames, RMS %.4f mm (markers.csv has "
           "1 um resolution), recall %.3f%% (%ld/%ld), ghosts %ld\n",
           frames, rms_mm, 100.0 * recall, found, expected, ghosts);
    assert_int_equal(frames, 300);
    assert_true(expected > 300 * 30);
    assert_true(rms_mm < 1.0);
    assert_true(recall >= 0.99);
    assert_true(ghosts < frames / 10);
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(run("'%s' --help > /dev/null", kinema_exe), 0);
    assert_int_equal(run("'%s' reconstruct --help > %s/help.txt", kinema_exe, dir), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/help.txt", dir);
    assert_true(file_contains(path, "usage: kinema reconstruct"));
    assert_int_equal(run("'%s' detect --help > /dev/null", kinema_exe), 0);
    assert_int_equal(run("'%s' synth-obs --help > /dev/null", kinema_exe), 0);
    /* Usage errors: exit 2 with the usage on stderr. */
    assert_int_equal(run("'%s' 2> %s/err.txt", kinema_exe, dir), 2);
    assert_int_equal(run("'%s' frobnicate 2> %s/err.txt", kinema_exe, dir), 2);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    assert_true(file_contains(path, "unknown command 'frobnicate'"));
    assert_true(file_contains(path, "usage: kinema"));
    assert_int_equal(run("'%s' reconstruct --rig x.yaml 2> /dev/null", kinema_exe), 2);
    assert_int_equal(run("'%s' reconstruct --bogus 2> /dev/null", kinema_exe), 2);
    assert_int_equal(run("'%s' detect --out x.csv 2> /dev/null", kinema_exe), 2);
    /* Bad input: exit 1 naming file and line. */
    FILE *f;
    snprintf(path, sizeof path, "%s/bad_obs.csv", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "frame,time_ns,camera,x,y,area\n0,0,0,1,2,3\n0,0,zero,1,2,3\n");
    fclose(f);
    /* The round-trip test wrote rig.yaml (tests run in order). */
    assert_int_equal(run("'%s' reconstruct --rig %s/rig.yaml --obs %s --out %s/m.csv "
                         "2> %s/err2.txt",
                         kinema_exe, dir, path, dir, dir),
                     1);
    char err_path[128], needle[160];
    snprintf(err_path, sizeof err_path, "%s/err2.txt", dir);
    snprintf(needle, sizeof needle, "%s:3:", path);
    assert_true(file_contains(err_path, needle));
    assert_int_equal(run("'%s' reconstruct --rig %s/nonexistent.yaml --obs %s --out %s/m.csv "
                         "2> /dev/null",
                         kinema_exe, dir, path, dir),
                     1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_reconstruct /path/to/kinema\n");
        return 1;
    }
    kinema_exe = argv[1];
    snprintf(dir, sizeof dir, "/tmp/kinema_cli_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exit_codes),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed)
        run("rm -rf '%s'", dir);
    return failed;
}
