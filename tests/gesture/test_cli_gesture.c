/* kinema gesture train/classify/record on files: a model trained from built-in variants
 * classifies unseen variants; predictions.csv has the documented columns; record reads
 * point lines (file and stdin) and a traj.csv stream and appends numbered samples; errors
 * give the documented exit codes and name the file and line. argv[1] = the kinema binary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinema/gesture.h"

static const char *kinema;
static char dir[256];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_builtin_set(const char *path, int v0, int v1)
{
    km_gesture_set *set = km_gesture_set_create();
    km_vec3 pts[512];
    int64_t t[512];
    size_t n;
    for (int g = 0; g < KM_GESTURE_BUILTIN_COUNT; g++)
        for (int v = v0; v < v1; v++) {
            assert_int_equal(km_gesture_builtin_generate(g, v, pts, t, 512, &n), KM_OK);
            char id[64];
            snprintf(id, sizeof id, "%s-%d", km_gesture_builtin_name(g), v);
            assert_int_equal(km_gesture_set_add(set, id, km_gesture_builtin_name(g), 1, pts, t, n), KM_OK);
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(km_gesture_write_traj_csv(set, f), KM_OK);
    fclose(f);
    km_gesture_set_destroy(set);
}

static void test_train_classify(void **state)
{
    (void)state;
    char train[512], test[512], model[512], pred[512], err[512];
    snprintf(train, sizeof train, "%s/train.csv", dir);
    snprintf(test, sizeof test, "%s/test.csv", dir);
    snprintf(model, sizeof model, "%s/model.txt", dir);
    snprintf(pred, sizeof pred, "%s/pred.csv", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    write_builtin_set(train, 0, 3);
    write_builtin_set(test, 200, 210);
    assert_int_equal(run("%s gesture train --traj %s --out %s 2>%s", kinema, train, model, err), 0);
    assert_non_null(strstr(slurp(err), "30 templates, 10 labels"));
    assert_int_equal(run("%s gesture classify --model %s --traj %s --out %s 2>%s", kinema, model, test,
                         pred, err), 0);
    printf("CLI classify: %s", slurp(err));
    char *csv = slurp(pred);
    assert_non_null(csv);
    assert_int_equal(strncmp(csv, "sample,label,score,accepted\n", 28), 0);
    int rows = 0, right = 0;
    for (char *line = strchr(csv, '\n') + 1; line && *line; line = strchr(line, '\n') + 1) {
        char sample[64], label[64];
        double score;
        int accepted;
        assert_int_equal(sscanf(line, "%63[^,],%63[^,],%lf,%d", sample, label, &score, &accepted), 4);
        rows++;
        right += strncmp(sample, label, strlen(label)) == 0 && sample[strlen(label)] == '-';
        if (!strchr(line, '\n'))
            break;
    }
    assert_int_equal(rows, 100);
    assert_true(right >= 95);
    /* errors: missing input (1, names the file), malformed model (1, file:line), usage (2) */
    assert_int_equal(run("%s gesture classify --model %s/nope --traj %s --out %s 2>%s", kinema, dir,
                         test, pred, err), 1);
    assert_non_null(strstr(slurp(err), "nope"));
    FILE *f = fopen(model, "w");
    fputs("kinema-gesture-model 1\nresample_count 7\n", f);
    fclose(f);
    assert_int_equal(run("%s gesture classify --model %s --traj %s --out %s 2>%s", kinema, model, test,
                         pred, err), 1);
    assert_non_null(strstr(slurp(err), "model.txt:"));
    f = fopen(train, "w");
    fputs("sample,label,t_ns,x,y,z\na,b,0,1,2\n", f);
    fclose(f);
    assert_int_equal(run("%s gesture train --traj %s --out %s 2>%s", kinema, train, model, err), 1);
    assert_non_null(strstr(slurp(err), "train.csv:2"));
    assert_int_equal(run("%s gesture train --out %s 2>/dev/null", kinema, model), 2);
    assert_int_equal(run("%s gesture fly 2>/dev/null", kinema), 2);
    assert_int_equal(run("%s gesture classify --model %s --bogus 2>/dev/null", kinema, model), 2);
    /* the built-in set alone is a valid model */
    assert_int_equal(run("%s gesture train --builtin 5 --out %s 2>%s", kinema, model, err), 0);
    assert_non_null(strstr(slurp(err), "50 templates"));
}

static void test_record(void **state)
{
    (void)state;
    char pts[512], out[512], err[512], stream[512];
    snprintf(pts, sizeof pts, "%s/points.txt", dir);
    snprintf(out, sizeof out, "%s/rec.csv", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    snprintf(stream, sizeof stream, "%s/stream.csv", dir);
    FILE *f = fopen(pts, "w");
    fputs("# two samples\n0.0,1.0,0.0\n0.1 1.0 0.0\n0.2,1.0,0.0\n\n0,0,1,0\n10000000,0,1.1,0\n"
          "20000000,0,1.2,0\n",
          f);
    fclose(f);
    assert_int_equal(run("%s gesture record --label tap --in %s --out %s 2>%s", kinema, pts, out, err), 0);
    /* stdin, appended */
    assert_int_equal(run("printf '1 2 3\\n1 2 4\\n' | %s gesture record --label tap --out %s --append "
                         "2>%s",
                         kinema, out, err),
                     0);
    /* a traj.csv stream, relabelled and appended */
    write_builtin_set(stream, 0, 1);
    assert_int_equal(run("%s gesture record --label tap --in %s --out %s --append 2>%s", kinema, stream,
                         out, err),
                     0);
    km_gesture_set *set = km_gesture_set_create();
    assert_int_equal(km_gesture_load_traj_csv(set, out), KM_OK);
    assert_int_equal(set->count, 3 + KM_GESTURE_BUILTIN_COUNT);
    assert_string_equal(set->samples[0].id, "tap-1");
    assert_string_equal(set->samples[2].id, "tap-3");
    assert_string_equal(set->samples[12].id, "tap-13");
    assert_string_equal(set->samples[5].label, "tap");
    assert_int_equal(set->samples[0].traj.count, 3);
    assert_int_equal(set->samples[0].traj.t_ns[1], 16666667); /* 60 Hz default */
    assert_int_equal(set->samples[1].traj.t_ns[2], 20000000);
    assert_float_equal(set->samples[2].traj.pos[1].z, 4.0, 0.0);
    km_gesture_set_destroy(set);
    /* errors with file:line */
    f = fopen(pts, "w");
    fputs("0,1,0\n0,1,zero\n", f);
    fclose(f);
    assert_int_equal(run("%s gesture record --label tap --in %s --out %s 2>%s", kinema, pts, out, err), 1);
    assert_non_null(strstr(slurp(err), "points.txt:2"));
    f = fopen(pts, "w");
    fputs("5,0,1,0\n4,0,1,1\n", f);
    fclose(f);
    assert_int_equal(run("%s gesture record --label tap --in %s --out %s 2>%s", kinema, pts, out, err), 1);
    assert_non_null(strstr(slurp(err), "time does not increase"));
    assert_int_equal(run("%s gesture record --in %s --out %s 2>/dev/null", kinema, pts, out), 2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_gesture /path/to/kinema\n");
        return 1;
    }
    kinema = argv[1];
    snprintf(dir, sizeof dir, "/tmp/kinema_cli_gesture_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_classify),
        cmocka_unit_test(test_record),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
