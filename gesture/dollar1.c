/* The $1 unistroke recognizer (Wobbrock, Wilson & Li, "Gestures without libraries, toolkits
 * or training", UIST 2007), kept faithful to the paper's pseudocode so that it is a fair
 * baseline: Resample(64) with the paper's point-insertion walk, RotateToZero (indicative
 * angle), ScaleToSquare(250) (non-uniform), TranslateToOrigin, Recognize with
 * DistanceAtBestAngle over +-45 deg, threshold 2 deg. Only x and y are used. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

#define DOLLAR1_N 64
#define DOLLAR1_SQUARE 250.0
#define DOLLAR1_ANGLE_RANGE (45.0 * M_PI / 180.0)
#define DOLLAR1_ANGLE_PRECISION (2.0 * M_PI / 180.0)

struct km_dollar1 {
    size_t capacity, count, label_count;
    km_vec3 *templates;                  /* capacity * 64, z = 0 */
    int *template_label;
    char (*labels)[KM_GESTURE_NAME_MAX];
    km_vec3 candidate[DOLLAR1_N];
};

km_dollar1 *km_dollar1_create(size_t max_templates, km_status *err)
{
    km_dollar1 *d = NULL;
    if (max_templates < 1 || max_templates > 1000000) {
        km_status st = km_error(KM_ERR_INVALID_ARGUMENT, "$1: max_templates %zu not in [1, 1e6]",
                                max_templates);
        if (err)
            *err = st;
        return NULL;
    }
    d = calloc(1, sizeof *d);
    if (d) {
        d->capacity = max_templates;
        d->templates = malloc(max_templates * DOLLAR1_N * sizeof *d->templates);
        d->template_label = malloc(max_templates * sizeof *d->template_label);
        d->labels = malloc(max_templates * sizeof *d->labels);
        if (d->templates && d->template_label && d->labels) {
            if (err)
                *err = KM_OK;
            return d;
        }
    }
    km_dollar1_destroy(d);
    km_status st = km_error(KM_ERR_NO_MEMORY, "$1: cannot allocate %zu templates", max_templates);
    if (err)
        *err = st;
    return NULL;
}

void km_dollar1_destroy(km_dollar1 *d)
{
    if (!d)
        return;
    free(d->templates);
    free(d->template_label);
    free(d->labels);
    free(d);
}

size_t km_dollar1_template_count(const km_dollar1 *d)
{
    return d ? d->count : 0;
}

static double dist2d(km_vec3 a, km_vec3 b)
{
    return hypot(a.x - b.x, a.y - b.y);
}

/* Step 1 of the paper. The paper inserts each new point q into the input list and continues
 * from it; carrying `prev` does the same without modifying the caller's points. */
static km_status resample(const km_vec3 *pos, size_t count, km_vec3 *out)
{
    double length = 0.0;
    for (size_t i = 1; i < count; i++)
        length += dist2d(pos[i - 1], pos[i]);
    double interval = length / (DOLLAR1_N - 1);
    if (!(interval > 0.0) || !isfinite(interval))
        return km_error(KM_ERR_NUMERIC, "$1: trajectory has no length");
    size_t m = 0;
    out[m++] = km_vec3_make(pos[0].x, pos[0].y, 0.0);
    km_vec3 prev = out[0];
    double acc = 0.0;
    size_t i = 1;
    while (i < count && m < DOLLAR1_N) {
        double d = dist2d(prev, pos[i]);
        if (acc + d >= interval && d > 0.0) {
            double u = (interval - acc) / d;
            km_vec3 q = km_vec3_make(prev.x + u * (pos[i].x - prev.x),
                                     prev.y + u * (pos[i].y - prev.y), 0.0);
            out[m++] = q;
            prev = q;
            acc = 0.0;
        } else {
            acc += d;
            prev = km_vec3_make(pos[i].x, pos[i].y, 0.0);
            i++;
        }
    }
    /* Rounding may leave the walk one point short: the paper appends the last point. */
    while (m < DOLLAR1_N)
        out[m++] = km_vec3_make(pos[count - 1].x, pos[count - 1].y, 0.0);
    return KM_OK;
}

static km_status prepare(const km_vec3 *pos, size_t count, km_vec3 *pts)
{
    if (!pos || count < 2)
        return km_error(KM_ERR_INVALID_ARGUMENT, "$1: needs >= 2 points");
    km_status st = resample(pos, count, pts);
    if (st)
        return st;
    /* Step 2: rotate about the centroid so the indicative angle is zero. */
    km_vec3 c = km_gesture_centroid(pts, DOLLAR1_N);
    double theta = atan2(c.y - pts[0].y, c.x - pts[0].x);
    for (size_t k = 0; k < DOLLAR1_N; k++)
        pts[k] = km_vec3_sub(pts[k], c);
    km_gesture_rotate_z(pts, pts, DOLLAR1_N, -theta);
    /* Step 3: scale non-uniformly to the reference square, then translate to the origin. */
    double min_x = DBL_MAX, max_x = -DBL_MAX, min_y = DBL_MAX, max_y = -DBL_MAX;
    for (size_t k = 0; k < DOLLAR1_N; k++) {
        min_x = fmin(min_x, pts[k].x);
        max_x = fmax(max_x, pts[k].x);
        min_y = fmin(min_y, pts[k].y);
        max_y = fmax(max_y, pts[k].y);
    }
    /* A perfectly straight stroke has a zero side; the paper divides by it (the known 1D
     * limitation of $1). Leave that axis unscaled instead of producing infinities. */
    double sx = max_x - min_x > 1e-12 ? DOLLAR1_SQUARE / (max_x - min_x) : 1.0;
    double sy = max_y - min_y > 1e-12 ? DOLLAR1_SQUARE / (max_y - min_y) : 1.0;
    for (size_t k = 0; k < DOLLAR1_N; k++)
        pts[k] = km_vec3_make(pts[k].x * sx, pts[k].y * sy, 0.0);
    c = km_gesture_centroid(pts, DOLLAR1_N);
    for (size_t k = 0; k < DOLLAR1_N; k++)
        pts[k] = km_vec3_sub(pts[k], c);
    return KM_OK;
}

km_status km_dollar1_add(km_dollar1 *d, const char *label, const km_vec3 *pos, size_t count)
{
    if (!d || !km_gesture_label_valid(label))
        return km_error(KM_ERR_INVALID_ARGUMENT, "$1: bad recognizer or label");
    if (d->count >= d->capacity)
        return km_error(KM_ERR_CAPACITY, "$1: all %zu template slots are used", d->capacity);
    km_status st = prepare(pos, count, d->templates + d->count * DOLLAR1_N);
    if (st)
        return st;
    int l = -1;
    for (size_t i = 0; i < d->label_count; i++)
        if (strcmp(d->labels[i], label) == 0)
            l = (int)i;
    if (l < 0) {
        snprintf(d->labels[d->label_count], KM_GESTURE_NAME_MAX, "%s", label);
        l = (int)d->label_count++;
    }
    d->template_label[d->count++] = l;
    return KM_OK;
}

km_status km_dollar1_classify(km_dollar1 *d, const km_vec3 *pos, size_t count,
                              km_gesture_result *out)
{
    if (!d || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "$1: NULL argument");
    memset(out, 0, sizeof *out);
    out->label = out->best_label = out->best_template = -1;
    out->name = "";
    out->cost = DBL_MAX;
    if (d->count == 0)
        return km_error(KM_ERR_NOT_FOUND, "$1: no templates");
    km_status st = prepare(pos, count, d->candidate);
    if (st == KM_ERR_NUMERIC)
        return KM_OK;
    if (st)
        return st;
    for (size_t t = 0; t < d->count; t++) {
        /* The path cost is the paper's PathDistance (mean distance); z is 0 on both sides. */
        double cost = km_gesture_path_cost_search(d->candidate, d->templates + t * DOLLAR1_N,
                                                  DOLLAR1_N, DOLLAR1_ANGLE_RANGE,
                                                  DOLLAR1_ANGLE_PRECISION);
        if (cost < out->cost) {
            out->cost = cost;
            out->best_template = (int)t;
            out->best_label = d->template_label[t];
        }
    }
    out->score = 1.0 - out->cost / (0.5 * sqrt(2.0 * DOLLAR1_SQUARE * DOLLAR1_SQUARE));
    out->label = out->best_label;
    out->name = d->labels[out->label];
    return KM_OK;
}
