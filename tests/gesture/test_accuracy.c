/* Accuracy of the template recognizer on the real gesture data sets, beside the $1 baseline
 * run on the same split in the same process. Prints one line per figure:
 *   ACCURACY dataset=<name> split=<split> ours=<acc> dollar1=<acc> n=<tests>
 * Set KINEMA_GESTURE_VARIANTS=1 to also print the accuracy of every matcher / scale /
 * rotation variant (the evidence behind the defaults, docs/gestures.md). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_data.h"
#include "kinema/gesture.h"

typedef struct split {
    const km_gesture_set *set;
    size_t *train, *test;
    size_t train_count, test_count;
} split;

typedef struct score {
    int correct, total, rejected;
} score;

static double ratio(score s)
{
    return s.total ? (double)s.correct / s.total : 0.0;
}

static score eval_ours(const km_gesture_config *cfg, const split *sp)
{
    km_gesture_config c = *cfg;
    c.max_templates = sp->train_count ? sp->train_count : 1;
    km_status st;
    km_gesture_recognizer *rec = km_gesture_recognizer_create(&c, &st);
    assert_non_null(rec);
    for (size_t i = 0; i < sp->train_count; i++) {
        const km_gesture_sample *s = &sp->set->samples[sp->train[i]];
        assert_int_equal(km_gesture_recognizer_add(rec, s->label, s->traj.pos, s->traj.count), KM_OK);
    }
    score r = {0, 0, 0};
    for (size_t i = 0; i < sp->test_count; i++) {
        const km_gesture_sample *s = &sp->set->samples[sp->test[i]];
        km_gesture_result res;
        assert_int_equal(km_gesture_classify(rec, s->traj.pos, s->traj.count, &res), KM_OK);
        r.total++;
        /* correct = the closest label is right (accuracy without rejection, as $1 reports);
         * rejected = how many of those the threshold would have refused */
        if (res.label < 0)
            r.rejected++;
        const char *best = km_gesture_recognizer_label_name(rec, (size_t)res.best_label);
        if (best && strcmp(best, s->label) == 0)
            r.correct++;
    }
    km_gesture_recognizer_destroy(rec);
    return r;
}

static score eval_dollar1(const split *sp)
{
    km_status st;
    km_dollar1 *d = km_dollar1_create(sp->train_count ? sp->train_count : 1, &st);
    assert_non_null(d);
    const char *labels[4096];
    size_t nlabels = 0;
    for (size_t i = 0; i < sp->train_count; i++) {
        const km_gesture_sample *s = &sp->set->samples[sp->train[i]];
        assert_int_equal(km_dollar1_add(d, s->label, s->traj.pos, s->traj.count), KM_OK);
        bool seen = false;
        for (size_t l = 0; l < nlabels; l++)
            seen = seen || strcmp(labels[l], s->label) == 0;
        if (!seen && nlabels < 4096)
            labels[nlabels++] = s->label;
    }
    score r = {0, 0, 0};
    for (size_t i = 0; i < sp->test_count; i++) {
        const km_gesture_sample *s = &sp->set->samples[sp->test[i]];
        km_gesture_result res;
        assert_int_equal(km_dollar1_classify(d, s->traj.pos, s->traj.count, &res), KM_OK);
        r.total++;
        if (res.label >= 0 && strcmp(res.name, s->label) == 0)
            r.correct++;
    }
    km_dollar1_destroy(d);
    return r;
}

static void make_split(split *sp, const km_gesture_set *set, int train_lo, int train_hi,
                       int test_lo, int test_hi)
{
    sp->set = set;
    sp->train = calloc(set->count, sizeof *sp->train);
    sp->test = calloc(set->count, sizeof *sp->test);
    assert_non_null(sp->train);
    assert_non_null(sp->test);
    sp->train_count = sp->test_count = 0;
    for (size_t i = 0; i < set->count; i++) {
        int subj = set->samples[i].subject;
        if (subj >= train_lo && subj <= train_hi)
            sp->train[sp->train_count++] = i;
        else if (subj >= test_lo && subj <= test_hi)
            sp->test[sp->test_count++] = i;
    }
}

static void free_split(split *sp)
{
    free(sp->train);
    free(sp->test);
}

/* The variants compared in docs/gestures.md. */
typedef struct variant {
    const char *name;
    km_gesture_config cfg;
} variant;

static size_t variants(variant *out, bool with_slow)
{
    size_t n = 0;
    const km_gesture_config def = km_gesture_config_default();
    out[n++] = (variant){"default", def};
    km_gesture_config p = def, c;
    p.matcher = KM_GESTURE_MATCH_PATH; /* path variants start from the path matcher */
    out[n++] = (variant){"path-rms-search11", p};
    c = p;
    c.search_angle_rad = 0.0;
    out[n++] = (variant){"path-rms-nosearch", c};
    c = p;
    c.search_angle_rad = 45.0 * M_PI / 180.0;
    out[n++] = (variant){"path-rms-search45", c};
    c = p;
    c.scale = KM_GESTURE_SCALE_BBOX_DIAGONAL;
    out[n++] = (variant){"path-bbox", c};
    c = p;
    c.scale = KM_GESTURE_SCALE_AXES;
    out[n++] = (variant){"path-axes", c};
    c = p;
    c.rotation = KM_GESTURE_ROTATE_INDICATIVE_2D;
    c.search_angle_rad = 45.0 * M_PI / 180.0;
    out[n++] = (variant){"path-rms-indicative-search45", c};
    c = p;
    c.rotation = KM_GESTURE_ROTATE_PCA_3D;
    c.search_angle_rad = 0.0;
    out[n++] = (variant){"path-rms-pca", c};
    c = def;
    c.matcher = KM_GESTURE_MATCH_DTW;
    c.scale = KM_GESTURE_SCALE_AXES;
    out[n++] = (variant){"dtw-axes", c};
    c = def;
    c.matcher = KM_GESTURE_MATCH_DTW;
    c.scale = KM_GESTURE_SCALE_BBOX_DIAGONAL;
    out[n++] = (variant){"dtw-bbox", c};
    c = def;
    c.matcher = KM_GESTURE_MATCH_DTW;
    c.dtw_band = 0.2;
    out[n++] = (variant){"dtw-rms-band20", c};
    if (with_slow) {
        c = def;
        c.matcher = KM_GESTURE_MATCH_CLOUD;
        c.resample_count = 32;
        out[n++] = (variant){"cloud32-rms", c};
    }
    return n;
}

static bool want_variants(void)
{
    const char *v = getenv("KINEMA_GESTURE_VARIANTS");
    return v && *v && strcmp(v, "0") != 0;
}

static void report(const char *dataset, const char *split_name, const split *sp,
                   double *ours_out, double *dollar1_out)
{
    /* Accuracy as $1 reports it: every test sample is a gesture of the set, so the figure is
     * taken without rejection; the default rejection threshold's false rejections are
     * printed beside it. */
    km_gesture_config cfg = km_gesture_config_default();
    score ours = eval_ours(&cfg, sp);
    double d1 = ratio(eval_dollar1(sp));
    printf("ACCURACY dataset=%s split=%s ours=%.4f dollar1=%.4f n=%d templates=%zu "
           "rejected_at_default_threshold=%d\n",
           dataset, split_name, ratio(ours), d1, ours.total, sp->train_count,
           ours.rejected);
    if (want_variants()) {
        variant v[16];
        size_t nv = variants(v, sp->train_count <= 64);
        const char *only = getenv("KINEMA_GESTURE_VARIANTS");
        for (size_t i = 0; i < nv; i++) {
            if (strcmp(only, "1") != 0 && !strstr(only, v[i].name))
                continue;
            v[i].cfg.min_score = 0.0;
            printf("  VARIANT dataset=%s split=%s variant=%s accuracy=%.4f\n", dataset, split_name,
                   v[i].name, ratio(eval_ours(&v[i].cfg, sp)));
        }
    }
    fflush(stdout);
    if (ours_out)
        *ours_out = ratio(ours);
    if (dollar1_out)
        *dollar1_out = d1;
}

/* Deterministic generator for the template draws (no global state). */
static uint32_t lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* The classic protocol of the $1 paper, made user-independent: k templates per gesture drawn
 * at random from the training subjects, tested on every sample of the test subjects,
 * averaged over `trials` draws. */
static void report_k_templates(const char *dataset, const split *full, int k, int trials,
                               double *ours_out, double *dollar1_out)
{
    const km_gesture_set *set = full->set;
    split sp = *full;
    sp.train = calloc(full->train_count, sizeof *sp.train);
    assert_non_null(sp.train);
    uint32_t seed = 12345u + (uint32_t)k;
    km_gesture_config cfg = km_gesture_config_default();
    cfg.min_score = 0.0;
    score ours = {0, 0, 0}, d1 = {0, 0, 0};
    for (int trial = 0; trial < trials; trial++) {
        sp.train_count = 0;
        /* for every label (in order of first appearance among the training samples) */
        for (size_t i = 0; i < full->train_count; i++) {
            const char *label = set->samples[full->train[i]].label;
            bool first = true;
            for (size_t j = 0; j < i && first; j++)
                first = strcmp(set->samples[full->train[j]].label, label) != 0;
            if (!first)
                continue;
            size_t idx[4096], n = 0;
            for (size_t j = 0; j < full->train_count && n < 4096; j++)
                if (strcmp(set->samples[full->train[j]].label, label) == 0)
                    idx[n++] = full->train[j];
            for (int pick = 0; pick < k && n > 0; pick++) {
                size_t r = lcg(&seed) % n;
                sp.train[sp.train_count++] = idx[r];
                idx[r] = idx[--n]; /* without replacement */
            }
        }
        score o = eval_ours(&cfg, &sp), b = eval_dollar1(&sp);
        ours.correct += o.correct;
        ours.total += o.total;
        d1.correct += b.correct;
        d1.total += b.total;
    }
    char name[64];
    snprintf(name, sizeof name, "%d-template-per-gesture-x%d-trials", k, trials);
    printf("ACCURACY dataset=%s split=%s ours=%.4f dollar1=%.4f n=%d templates=%zu\n", dataset,
           name, ratio(ours), ratio(d1), ours.total, sp.train_count);
    fflush(stdout);
    *ours_out = ratio(ours);
    *dollar1_out = ratio(d1);
    free(sp.train);
}

static km_gesture_set *load_dollar1(void)
{
    const char *root = gesture_data_root();
    if (!root)
        return NULL;
    km_gesture_set *set = km_gesture_set_create();
    assert_non_null(set);
    for (int s = 2; s <= 11; s++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/gestures/dollar1_unistroke_xml_logs/s%02d/medium", root, s);
        int n = gesture_load_dir(set, dir, GESTURE_FILE_XML, NULL, 0);
        if (n == -1) {
            km_gesture_set_destroy(set);
            return NULL;
        }
        assert_int_equal(n, 160);
    }
    assert_int_equal(set->count, 1600);
    return set;
}

static void test_dollar1_logs(void **state)
{
    (void)state;
    km_gesture_set *set = load_dollar1();
    if (!set) {
        printf("SKIP: $1 logs not found under KINEMA_DATA/gestures/dollar1_unistroke_xml_logs\n");
        skip();
    }
    double ours, d1;
    split sp;
    /* user-independent: templates from s02-s06, tests on s07-s11, and the reverse */
    make_split(&sp, set, 2, 6, 7, 11);
    assert_int_equal(sp.train_count, 800);
    assert_int_equal(sp.test_count, 800);
    report("dollar1_logs", "train-s02-s06-test-s07-s11", &sp, &ours, &d1);
    assert_true(ours >= d1);
    assert_true(ours > 0.9);

    double o1, b1, o3, b3;
    report_k_templates("dollar1_logs", &sp, 1, 10, &o1, &b1);
    report_k_templates("dollar1_logs", &sp, 3, 10, &o3, &b3);
    assert_true(o1 >= b1);
    assert_true(o3 >= b3);
    free_split(&sp);

    make_split(&sp, set, 7, 11, 2, 6);
    report("dollar1_logs", "train-s07-s11-test-s02-s06", &sp, &ours, &d1);
    assert_true(ours >= d1);
    free_split(&sp);
    km_gesture_set_destroy(set);
}

/* Two writers: templates from one, tests on the other, both ways; accuracy over both. */
static void two_writer_report(const char *dataset, km_gesture_set *set, int a, int b,
                              double *ours_out, double *d1_out)
{
    split sp;
    double o_ab, d_ab, o_ba, d_ba;
    char name[64];
    make_split(&sp, set, a, a, b, b);
    assert_true(sp.train_count > 0 && sp.test_count > 0);
    snprintf(name, sizeof name, "train-%d-test-%d", a, b);
    report(dataset, name, &sp, &o_ab, &d_ab);
    free_split(&sp);
    make_split(&sp, set, b, b, a, a);
    snprintf(name, sizeof name, "train-%d-test-%d", b, a);
    report(dataset, name, &sp, &o_ba, &d_ba);
    free_split(&sp);
    *ours_out = 0.5 * (o_ab + o_ba);
    *d1_out = 0.5 * (d_ab + d_ba);
    printf("ACCURACY dataset=%s split=writer-independent-both-ways ours=%.4f dollar1=%.4f\n",
           dataset, *ours_out, *d1_out);
}

static void test_3dtcgs(void **state)
{
    (void)state;
    const char *root = gesture_data_root();
    km_gesture_set *set = km_gesture_set_create();
    assert_non_null(set);
    int total = 0;
    for (int u = 2; u <= 3 && root; u++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/gestures/3dtcgs_leap_trajectories/u%02d", root, u);
        int n = gesture_load_dir(set, dir, GESTURE_FILE_JSON, NULL, 1e6 /* ms */);
        if (n == -1)
            break;
        assert_int_equal(n, 26);
        total += n;
    }
    if (total != 52) {
        km_gesture_set_destroy(set);
        printf("SKIP: 3DTCGS not found under KINEMA_DATA/gestures/3dtcgs_leap_trajectories\n");
        skip();
    }
    double ours, d1;
    two_writer_report("3dtcgs_leap", set, 2, 3, &ours, &d1);
    assert_true(ours > 0.5); /* far above chance (1/26) */
    km_gesture_set_destroy(set);
}

static void test_shrec2019(void **state)
{
    (void)state;
    const char *root = gesture_data_root();
    km_gesture_set *set = km_gesture_set_create();
    assert_non_null(set);
    int total = 0;
    for (int u = 1; u <= 2 && root; u++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/gestures/shrec2019_leap_hand/U%d", root, u);
        int n = gesture_load_dir(set, dir, GESTURE_FILE_JSON, "Palm", 1e9 /* s */);
        if (n == -1)
            break;
        assert_int_equal(n, 10);
        total += n;
    }
    if (total != 20) {
        km_gesture_set_destroy(set);
        printf("SKIP: SHREC 2019 not found under KINEMA_DATA/gestures/shrec2019_leap_hand\n");
        skip();
    }
    double ours, d1;
    two_writer_report("shrec2019_leap_palm", set, 1, 2, &ours, &d1);
    assert_true(ours > 0.5); /* chance is 1/5 */
    km_gesture_set_destroy(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dollar1_logs),
        cmocka_unit_test(test_3dtcgs),
        cmocka_unit_test(test_shrec2019),
    };
    return cmocka_run_group_tests_name("gesture_accuracy", tests, NULL, NULL);
}
