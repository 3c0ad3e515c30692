/* The template recognizer: configuration, template storage (allocated once at create),
 * classification with no allocation. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

struct km_gesture_recognizer {
    km_gesture_config cfg;
    size_t template_count;
    size_t label_count;
    km_vec3 *templates;   /* max_templates * resample_count normalised points */
    int *template_label;  /* max_templates */
    char (*labels)[KM_GESTURE_NAME_MAX]; /* max_templates names (a label needs a template) */
    /* scratch for classify */
    km_vec3 *candidate;   /* resample_count */
    double *dtw_rows;     /* 2 * resample_count */
    bool *matched;        /* resample_count */
    double *order_cost;   /* max_templates: LB_Keogh bound used to order/prune the DTW search */
    size_t *order;        /* max_templates */
    km_vec3 *env_lo, *env_hi; /* max_templates * resample_count: DTW envelopes of templates */
    double *tail;         /* resample_count + 1: LB suffix sums of the template being matched */
};

static size_t dtw_band(const km_gesture_config *cfg)
{
    return (size_t)ceil(cfg->dtw_band * (double)cfg->resample_count);
}

/* Envelope of template t, computed when it is added (templates are immutable after). */
static void make_envelope(km_gesture_recognizer *rec, size_t t)
{
    size_t n = rec->cfg.resample_count;
    km_gesture_envelope(rec->templates + t * n, n, dtw_band(&rec->cfg), rec->env_lo + t * n,
                        rec->env_hi + t * n);
}

km_gesture_config km_gesture_config_default(void)
{
    km_gesture_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.resample_count = 64;
    cfg.max_templates = 512;
    cfg.scale = KM_GESTURE_SCALE_RMS_RADIUS;
    cfg.rotation = KM_GESTURE_ROTATE_NONE;
    cfg.matcher = KM_GESTURE_MATCH_DTW;
    cfg.search_angle_rad = 0.2;
    cfg.search_threshold_rad = 2.0 * M_PI / 180.0;
    cfg.dtw_band = 0.1;
    cfg.cost_at_zero_score = 1.0;
    cfg.min_score = 0.3;
    return cfg;
}

km_status km_gesture_config_check(const km_gesture_config *cfg)
{
    if (!cfg)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: NULL");
    if (cfg->resample_count < 8 || cfg->resample_count > 1024)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: resample_count %zu not in [8, 1024]",
                        cfg->resample_count);
    if (cfg->max_templates < 1 || cfg->max_templates > 1000000)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: max_templates %zu not in [1, 1e6]",
                        cfg->max_templates);
    if ((unsigned)cfg->scale >= KM_GESTURE_SCALE_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: bad scale");
    if ((unsigned)cfg->rotation >= KM_GESTURE_ROTATION_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: bad rotation");
    if ((unsigned)cfg->matcher >= KM_GESTURE_MATCHER_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: bad matcher");
    if (!(cfg->search_angle_rad >= 0.0 && cfg->search_angle_rad <= M_PI))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: search_angle_rad not in [0, pi]");
    if (!(cfg->search_threshold_rad >= 1e-4 && cfg->search_threshold_rad <= M_PI))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture config: search_threshold_rad not in [1e-4, pi]");
    if (!(cfg->dtw_band >= 0.0 && cfg->dtw_band <= 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: dtw_band not in [0, 1]");
    if (!(cfg->cost_at_zero_score > 0.0 && cfg->cost_at_zero_score < 1e6))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: cost_at_zero_score must be > 0");
    if (!(cfg->min_score >= 0.0 && cfg->min_score <= 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture config: min_score not in [0, 1]");
    return KM_OK;
}

km_gesture_recognizer *km_gesture_recognizer_create(const km_gesture_config *cfg, km_status *err)
{
    km_status st = km_gesture_config_check(cfg);
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    km_gesture_recognizer *rec = calloc(1, sizeof *rec);
    if (rec) {
        size_t n = cfg->resample_count, t = cfg->max_templates;
        rec->cfg = *cfg;
        rec->templates = malloc(t * n * sizeof *rec->templates);
        rec->template_label = malloc(t * sizeof *rec->template_label);
        rec->labels = malloc(t * sizeof *rec->labels);
        rec->candidate = malloc(n * sizeof *rec->candidate);
        rec->dtw_rows = malloc(2 * n * sizeof *rec->dtw_rows);
        rec->matched = malloc(n * sizeof *rec->matched);
        rec->order_cost = malloc(t * sizeof *rec->order_cost);
        rec->order = malloc(t * sizeof *rec->order);
        rec->env_lo = malloc(t * n * sizeof *rec->env_lo);
        rec->env_hi = malloc(t * n * sizeof *rec->env_hi);
        rec->tail = malloc((n + 1) * sizeof *rec->tail);
        if (rec->templates && rec->template_label && rec->labels && rec->candidate &&
            rec->dtw_rows && rec->matched && rec->order_cost && rec->order && rec->env_lo &&
            rec->env_hi && rec->tail) {
            if (err)
                *err = KM_OK;
            return rec;
        }
    }
    km_gesture_recognizer_destroy(rec);
    st = km_error(KM_ERR_NO_MEMORY, "gesture recognizer: cannot allocate %zu templates",
                  cfg->max_templates);
    if (err)
        *err = st;
    return NULL;
}

void km_gesture_recognizer_destroy(km_gesture_recognizer *rec)
{
    if (!rec)
        return;
    free(rec->templates);
    free(rec->template_label);
    free(rec->labels);
    free(rec->candidate);
    free(rec->dtw_rows);
    free(rec->matched);
    free(rec->order_cost);
    free(rec->order);
    free(rec->env_lo);
    free(rec->env_hi);
    free(rec->tail);
    free(rec);
}

const km_gesture_config *km_gesture_recognizer_config(const km_gesture_recognizer *rec)
{
    return rec ? &rec->cfg : NULL;
}

static int find_or_add_label(km_gesture_recognizer *rec, const char *label)
{
    for (size_t i = 0; i < rec->label_count; i++)
        if (strcmp(rec->labels[i], label) == 0)
            return (int)i;
    /* label_count <= template_count < max_templates here, so there is room. */
    snprintf(rec->labels[rec->label_count], KM_GESTURE_NAME_MAX, "%s", label);
    return (int)rec->label_count++;
}

static km_status check_add(km_gesture_recognizer *rec, const char *label, const km_vec3 *pos)
{
    if (!rec || !pos)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture template: NULL argument");
    if (!km_gesture_label_valid(label))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture template: label '%s' is not 1..63 characters of [A-Za-z0-9_.-]",
                        label ? label : "(null)");
    if (rec->template_count >= rec->cfg.max_templates)
        return km_error(KM_ERR_CAPACITY, "gesture template: all %zu template slots are used",
                        rec->cfg.max_templates);
    return KM_OK;
}

km_status km_gesture_recognizer_add(km_gesture_recognizer *rec, const char *label,
                                    const km_vec3 *pos, size_t count)
{
    km_status st = check_add(rec, label, pos);
    if (st)
        return st;
    if (count < 2)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture template '%s': needs >= 2 points", label);
    size_t n = rec->cfg.resample_count;
    km_vec3 *dst = rec->templates + rec->template_count * n;
    st = km_gesture_resample(pos, count, dst, n);
    if (!st)
        st = km_gesture_normalize(dst, n, rec->cfg.scale, rec->cfg.rotation);
    if (st)
        return km_error(st, "gesture template '%s': %s", label, km_last_error());
    rec->template_label[rec->template_count] = find_or_add_label(rec, label);
    make_envelope(rec, rec->template_count);
    rec->template_count++;
    return KM_OK;
}

km_status km_gesture_recognizer_add_normalized(km_gesture_recognizer *rec, const char *label,
                                               const km_vec3 *pts, size_t count)
{
    km_status st = check_add(rec, label, pts);
    if (st)
        return st;
    size_t n = rec->cfg.resample_count;
    if (count != n)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture template '%s': %zu points, the recognizer uses %zu", label, count, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pts[i].x) || !isfinite(pts[i].y) || !isfinite(pts[i].z))
            return km_error(KM_ERR_INVALID_ARGUMENT, "gesture template '%s': non-finite point %zu",
                            label, i);
    memcpy(rec->templates + rec->template_count * n, pts, n * sizeof *pts);
    rec->template_label[rec->template_count] = find_or_add_label(rec, label);
    make_envelope(rec, rec->template_count);
    rec->template_count++;
    return KM_OK;
}

void km_gesture_recognizer_clear(km_gesture_recognizer *rec)
{
    if (rec) {
        rec->template_count = 0;
        rec->label_count = 0;
    }
}

size_t km_gesture_recognizer_template_count(const km_gesture_recognizer *rec)
{
    return rec ? rec->template_count : 0;
}

size_t km_gesture_recognizer_label_count(const km_gesture_recognizer *rec)
{
    return rec ? rec->label_count : 0;
}

const char *km_gesture_recognizer_label_name(const km_gesture_recognizer *rec, size_t i)
{
    return rec && i < rec->label_count ? rec->labels[i] : NULL;
}

const km_vec3 *km_gesture_recognizer_template(const km_gesture_recognizer *rec, size_t t,
                                              int *label)
{
    if (!rec || t >= rec->template_count)
        return NULL;
    if (label)
        *label = rec->template_label[t];
    return rec->templates + t * rec->cfg.resample_count;
}

/* `abandon_above`: the template is of no interest when its cost exceeds this (the worse of
 * the best and second-best label costs so far), so the matcher may stop early. */
static double match(km_gesture_recognizer *rec, const km_vec3 *tmpl, double abandon_above)
{
    const km_gesture_config *cfg = &rec->cfg;
    size_t n = cfg->resample_count;
    switch (cfg->matcher) {
    case KM_GESTURE_MATCH_DTW:
        /* rec->tail holds this template's LB_Keogh suffix sums (classify computed them) */
        return km_gesture_dtw_cost_bounded(rec->candidate, tmpl, n, dtw_band(cfg), rec->dtw_rows,
                                           abandon_above, rec->tail);
    case KM_GESTURE_MATCH_CLOUD:
        return km_gesture_cloud_cost(rec->candidate, tmpl, n, rec->matched);
    case KM_GESTURE_MATCH_PATH:
    default:
        return km_gesture_path_cost_search(rec->candidate, tmpl, n, cfg->search_angle_rad,
                                           cfg->search_threshold_rad);
    }
}

static double score_of(const km_gesture_config *cfg, double cost)
{
    double s = 1.0 - cost / cfg->cost_at_zero_score;
    return s < 0.0 ? 0.0 : (s > 1.0 ? 1.0 : s);
}

km_status km_gesture_classify(km_gesture_recognizer *rec, const km_vec3 *pos, size_t count,
                              km_gesture_result *out)
{
    if (!rec || !pos || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture classify: NULL argument");
    memset(out, 0, sizeof *out);
    out->label = -1;
    out->best_label = -1;
    out->best_template = -1;
    out->name = "";
    out->cost = DBL_MAX;
    if (count < 2)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture classify: needs >= 2 points, got %zu",
                        count);
    if (rec->template_count == 0)
        return km_error(KM_ERR_NOT_FOUND, "gesture classify: no templates loaded");
    size_t n = rec->cfg.resample_count;
    km_status st = km_gesture_resample(pos, count, rec->candidate, n);
    if (st)
        return st;
    if (km_gesture_normalize(rec->candidate, n, rec->cfg.scale, rec->cfg.rotation))
        return KM_OK; /* a motionless window is "no gesture", not an error */

    /* The best and second-best label costs so far bound what is worth computing: a template
     * costing more than both changes neither the result nor second_score. */
    double second = DBL_MAX;
    size_t count_t = rec->template_count;
    for (size_t t = 0; t < count_t; t++)
        rec->order[t] = t;
    bool dtw = rec->cfg.matcher == KM_GESTURE_MATCH_DTW;
    if (dtw) {
        /* LB_Keogh bounds the DTW cost from below: visiting templates from the lowest bound
         * finds the best two early, and a template whose bound already exceeds the second
         * best cost is skipped without running DTW (the result is exactly the full search's).
         * Shell sort: in place, no allocation (qsort may allocate). */
        for (size_t t = 0; t < count_t; t++)
            rec->order_cost[t] = km_gesture_lb_keogh(rec->candidate, rec->env_lo + t * n,
                                                     rec->env_hi + t * n, n, NULL);
        for (size_t gap = count_t / 2; gap > 0; gap /= 2)
            for (size_t i = gap; i < count_t; i++) {
                size_t v = rec->order[i];
                size_t j = i;
                for (; j >= gap && rec->order_cost[rec->order[j - gap]] > rec->order_cost[v]; j -= gap)
                    rec->order[j] = rec->order[j - gap];
                rec->order[j] = v;
            }
    }
    for (size_t k = 0; k < count_t; k++) {
        size_t t = rec->order[k];
        int l = rec->template_label[t];
        if (dtw) {
            if (rec->order_cost[t] >= second)
                break; /* sorted: every template left is bounded above `second` too */
            km_gesture_lb_keogh(rec->candidate, rec->env_lo + t * n, rec->env_hi + t * n, n,
                                rec->tail);
        }
        double cost = match(rec, rec->templates + t * n, second);
        if (cost >= second)
            continue;
        if (l == out->best_label) {
            if (cost < out->cost) {
                out->cost = cost;
                out->best_template = (int)t;
            }
        } else if (cost < out->cost) {
            second = out->cost;
            out->cost = cost;
            out->best_template = (int)t;
            out->best_label = l;
        } else {
            second = cost;
        }
    }
    out->score = score_of(&rec->cfg, out->cost);
    out->second_score = second == DBL_MAX ? 0.0 : score_of(&rec->cfg, second);
    if (out->score >= rec->cfg.min_score) {
        out->label = out->best_label;
        out->name = rec->labels[out->label];
    }
    return KM_OK;
}

static const char *const matcher_names[KM_GESTURE_MATCHER_COUNT] = {"path", "dtw", "cloud"};

const char *km_gesture_matcher_name(km_gesture_matcher matcher)
{
    return (unsigned)matcher < KM_GESTURE_MATCHER_COUNT ? matcher_names[matcher] : "?";
}

km_status km_gesture_matcher_parse(const char *name, km_gesture_matcher *out)
{
    for (int i = 0; i < KM_GESTURE_MATCHER_COUNT; i++)
        if (name && strcmp(name, matcher_names[i]) == 0) {
            *out = (km_gesture_matcher)i;
            return KM_OK;
        }
    return km_error(KM_ERR_INVALID_ARGUMENT, "unknown matcher '%s' (path, dtw, cloud)",
                    name ? name : "(null)");
}
