/* Rigid bodies: identification by inter-marker distances, 6-DoF pose by weighted Kabsch,
 * tracking with a constant-velocity prediction.
 *
 * Identification (a body not tracked in the previous frames): a depth-first search assigns
 * the definition's markers one after the other to measured markers whose distances to every
 * marker assigned before match the definition's distance matrix within tolerance_m; a
 * definition marker may stay unassigned up to max_missing times. Candidates after the first
 * marker come from the first marker's neighbourhood (points within the body's largest
 * distance), so the cost is about markers x neighbours per body. Every complete candidate is
 * verified by a proper-rotation fit (Kabsch), which also rejects mirror images that distances
 * alone cannot tell apart. Most markers, then the smallest error, wins.
 *
 * Tracking: the pose of the last two solved frames predicts this frame's pose; each
 * definition marker takes the nearest free measured marker within gate_m of its predicted
 * position, and the fit must again be below max_error_m (else identification runs).
 *
 * No allocation in km_rigid_tracker_update. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"

/* Depth-first search budget per identification (guards against pathological clouds). */
#define SEARCH_NODE_LIMIT 200000
/* A body not solved for more frames than this is identified from scratch. */
#define MAX_COAST_FRAMES 5

/* ------------------------------------------------------------------ Kabsch */

km_status km_rigid_solve_pose(const km_vec3 *local, const km_vec3 *world, const double *weights,
                              int n, km_vec3 *pos_m, km_quat *rot, double *error_m)
{
    if (!local || !world || n < 3 || !pos_m || !rot)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid pose: need >= 3 point pairs");
    double W = 0.0;
    km_vec3 cl = {0, 0, 0}, cw = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        const double w = weights ? weights[i] : 1.0;
        if (!(w >= 0.0) || !isfinite(w))
            return km_error(KM_ERR_INVALID_ARGUMENT, "rigid pose: bad weight");
        W += w;
        cl = km_vec3_add(cl, km_vec3_scale(local[i], w));
        cw = km_vec3_add(cw, km_vec3_scale(world[i], w));
    }
    if (!(W > 0.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid pose: weights sum to 0");
    cl = km_vec3_scale(cl, 1.0 / W);
    cw = km_vec3_scale(cw, 1.0 / W);
    /* H = sum w (l - cl)(p - cw)^T, then R = V diag(1, 1, d) U^T for H = U S V^T. */
    double H[9] = {0};
    for (int i = 0; i < n; i++) {
        const double w = weights ? weights[i] : 1.0;
        const km_vec3 a = km_vec3_sub(local[i], cl), b = km_vec3_sub(world[i], cw);
        const double av[3] = {a.x, a.y, a.z}, bv[3] = {b.x, b.y, b.z};
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                H[r * 3 + c] += w * av[r] * bv[c];
    }
    double U[9], s[3], V[9];
    if (km_svd(H, 3, 3, U, s, V) != KM_OK)
        return km_error(KM_ERR_NUMERIC, "rigid pose: non-finite input");
    if (!(s[1] > 1e-12 * (s[0] + 1e-300)) || !(s[0] > 0.0))
        return km_error(KM_ERR_NUMERIC, "rigid pose: points are collinear");
    km_mat3 R;
    double d = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        const double sign[3] = {1.0, 1.0, pass == 0 ? 1.0 : -1.0};
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) {
                double v = 0.0;
                for (int k = 0; k < 3; k++)
                    v += V[r * 3 + k] * sign[k] * U[c * 3 + k];
                R.m[r * 3 + c] = v;
            }
        d = km_mat3_det(R);
        if (d > 0.0)
            break;
    }
    const km_vec3 t = km_vec3_sub(cw, km_mat3_apply(R, cl));
    *pos_m = t;
    *rot = km_quat_normalize(km_quat_from_mat3(R));
    if (error_m) {
        double e = 0.0;
        for (int i = 0; i < n; i++)
            e += km_vec3_dist(km_vec3_add(t, km_mat3_apply(R, local[i])), world[i]);
        *error_m = e / n;
    }
    return KM_OK;
}

/* ------------------------------------------------------------- definitions */

km_status km_rigid_definition_validate(const km_rigid_definition *def)
{
    if (!def)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid body: no definition");
    const size_t len = strnlen(def->name, sizeof def->name);
    if (len == 0 || len == sizeof def->name)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid body: name must be 1..%d characters",
                        KM_NAME_MAX - 1);
    for (size_t k = 0; k < len; k++) {
        const unsigned char c = (unsigned char)def->name[k];
        if (c == ',' || c < 0x20 || c == 0x7f || c == '"')
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "rigid body '%s': name must not contain ',', '\"' or control "
                            "characters", def->name);
    }
    if (def->marker_count < 3 || def->marker_count > KM_RIGID_MAX_MARKERS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid body '%s': %d markers, need 3..%d",
                        def->name, def->marker_count, KM_RIGID_MAX_MARKERS);
    if (!(def->marker_diameter_m >= 0.0 && def->marker_diameter_m < 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "rigid body '%s': marker_diameter_m must be in [0, 1)", def->name);
    for (int i = 0; i < def->marker_count; i++) {
        const km_vec3 p = def->markers_m[i];
        if (!isfinite(p.x) || !isfinite(p.y) || !isfinite(p.z) || fabs(p.x) > 100.0 ||
            fabs(p.y) > 100.0 || fabs(p.z) > 100.0)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "rigid body '%s': marker %d: coordinates must be finite, |v| <= 100 m",
                            def->name, i);
        for (int j = 0; j < i; j++)
            if (km_vec3_dist(p, def->markers_m[j]) < 0.001)
                return km_error(KM_ERR_INVALID_ARGUMENT,
                                "rigid body '%s': markers %d and %d are less than 1 mm apart",
                                def->name, j, i);
    }
    /* Not collinear: some marker lies off the line through the two farthest apart. */
    int a = 0, b = 1;
    double best = -1.0;
    for (int i = 0; i < def->marker_count; i++)
        for (int j = i + 1; j < def->marker_count; j++) {
            const double d = km_vec3_dist(def->markers_m[i], def->markers_m[j]);
            if (d > best) {
                best = d;
                a = i;
                b = j;
            }
        }
    const km_vec3 axis = km_vec3_normalize(km_vec3_sub(def->markers_m[b], def->markers_m[a]));
    double off = 0.0;
    for (int i = 0; i < def->marker_count; i++) {
        const km_vec3 v = km_vec3_sub(def->markers_m[i], def->markers_m[a]);
        const double d = km_vec3_norm(km_vec3_cross(v, axis));
        if (d > off)
            off = d;
    }
    if (off < 0.001)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "rigid body '%s': markers lie on one line (orientation undefined)",
                        def->name);
    return KM_OK;
}

km_status km_rigid_definition_from_points(const char *name, uint32_t id, const km_vec3 *pos_m,
                                          int count, km_rigid_definition *out)
{
    if (!name || !pos_m || !out || count < 3 || count > KM_RIGID_MAX_MARKERS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid body: need a name and 3..%d markers",
                        KM_RIGID_MAX_MARKERS);
    memset(out, 0, sizeof *out);
    if (strlen(name) >= sizeof out->name)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid body: name longer than %d characters",
                        KM_NAME_MAX - 1);
    strcpy(out->name, name);
    out->id = id;
    out->marker_count = count;
    km_vec3 c = {0, 0, 0};
    for (int i = 0; i < count; i++)
        c = km_vec3_add(c, pos_m[i]);
    c = km_vec3_scale(c, 1.0 / count);
    for (int i = 0; i < count; i++)
        out->markers_m[i] = km_vec3_sub(pos_m[i], c);
    return km_rigid_definition_validate(out);
}

/* ----------------------------------------------------------------- matcher */

typedef struct matcher {
    const km_vec3 *pts;
    const double *weights;   /* may be NULL */
    int count;
    const bool *used;        /* may be NULL */
    int *near;               /* scratch: capacity count */
    int near_count;
    const km_rigid_definition *def;
    double dist[KM_RIGID_MAX_MARKERS][KM_RIGID_MAX_MARKERS];
    double reach_m;          /* largest inter-marker distance + tolerance */
    double tol;
    double max_error;
    int max_missing;
    int assign[KM_RIGID_MAX_MARKERS];
    int best[KM_RIGID_MAX_MARKERS];
    int best_count;
    double best_error;
    km_vec3 best_pos;
    km_quat best_rot;
    long nodes;
    bool done;
} matcher;

static void matcher_init(matcher *mt, const km_rigid_definition *def, const km_vec3 *pts,
                         const double *weights, int count, const bool *used, int *near,
                         double tol, double max_error, int max_missing)
{
    mt->pts = pts;
    mt->weights = weights;
    mt->count = count;
    mt->used = used;
    mt->near = near;
    mt->near_count = 0;
    mt->def = def;
    double reach = 0.0;
    for (int i = 0; i < def->marker_count; i++)
        for (int j = 0; j < def->marker_count; j++) {
            mt->dist[i][j] = km_vec3_dist(def->markers_m[i], def->markers_m[j]);
            if (mt->dist[i][j] > reach)
                reach = mt->dist[i][j];
        }
    mt->reach_m = reach + tol;
    mt->tol = tol;
    mt->max_error = max_error;
    mt->max_missing = max_missing;
    mt->best_count = 0;
    mt->best_error = INFINITY;
    mt->nodes = 0;
    mt->done = false;
}

/* Fit the current assignment; keep it when better than the best so far. */
static void matcher_evaluate(matcher *mt, int assigned)
{
    km_vec3 local[KM_RIGID_MAX_MARKERS], world[KM_RIGID_MAX_MARKERS];
    double w[KM_RIGID_MAX_MARKERS];
    int n = 0;
    for (int i = 0; i < mt->def->marker_count; i++) {
        if (mt->assign[i] < 0)
            continue;
        local[n] = mt->def->markers_m[i];
        world[n] = mt->pts[mt->assign[i]];
        w[n] = mt->weights ? mt->weights[mt->assign[i]] : 1.0;
        n++;
    }
    (void)assigned;
    km_vec3 pos;
    km_quat rot;
    double err;
    if (km_rigid_solve_pose(local, world, w, n, &pos, &rot, &err) != KM_OK)
        return;
    if (!(err <= mt->max_error))
        return;
    if (n > mt->best_count || (n == mt->best_count && err < mt->best_error)) {
        mt->best_count = n;
        mt->best_error = err;
        mt->best_pos = pos;
        mt->best_rot = rot;
        memcpy(mt->best, mt->assign, sizeof mt->best);
        /* A complete, tight match cannot be beaten by much: stop searching. */
        if (n == mt->def->marker_count && err < 0.25 * mt->max_error)
            mt->done = true;
    }
}

static bool matcher_consistent(const matcher *mt, int i, int p)
{
    for (int j = 0; j < i; j++) {
        const int q = mt->assign[j];
        if (q < 0)
            continue;
        if (q == p)
            return false;
        if (fabs(km_vec3_dist(mt->pts[p], mt->pts[q]) - mt->dist[i][j]) > mt->tol)
            return false;
    }
    return true;
}

static void matcher_search(matcher *mt, int i, int missing, int assigned)
{
    if (mt->done || ++mt->nodes > SEARCH_NODE_LIMIT)
        return;
    const int n = mt->def->marker_count;
    if (i == n) {
        if (assigned >= 3 && assigned >= mt->best_count)
            matcher_evaluate(mt, assigned);
        return;
    }
    /* Cannot beat the best any more: even assigning every remaining marker. */
    if (assigned + (n - i) < mt->best_count)
        return;
    if (assigned == 0) {
        for (int p = 0; p < mt->count && !mt->done; p++) {
            if (mt->used && mt->used[p])
                continue;
            /* the first marker's neighbourhood: candidates of the deeper levels */
            mt->near_count = 0;
            for (int q = 0; q < mt->count; q++)
                if (q != p && !(mt->used && mt->used[q]) &&
                    km_vec3_dist(mt->pts[p], mt->pts[q]) <= mt->reach_m)
                    mt->near[mt->near_count++] = q;
            if (mt->near_count + 1 < n - mt->max_missing || mt->near_count + 1 < 3)
                continue;
            mt->assign[i] = p;
            matcher_search(mt, i + 1, missing, 1);
        }
    } else {
        for (int k = 0; k < mt->near_count && !mt->done; k++) {
            const int p = mt->near[k];
            if (!matcher_consistent(mt, i, p))
                continue;
            mt->assign[i] = p;
            matcher_search(mt, i + 1, missing, assigned + 1);
        }
    }
    if (missing < mt->max_missing && !mt->done) {
        mt->assign[i] = -1;
        matcher_search(mt, i + 1, missing + 1, assigned);
    }
    mt->assign[i] = -1;
}

/* Run the search; true when a match was found (mt->best, best_pos, best_rot). */
static bool matcher_run(matcher *mt)
{
    for (int i = 0; i < KM_RIGID_MAX_MARKERS; i++)
        mt->assign[i] = -1;
    matcher_search(mt, 0, 0, 0);
    return mt->best_count >= 3;
}

/* -------------------------------------------------- unique-constellation check */

/* Could a (all markers or all but one) be found among b's markers? */
static bool confusable(const km_rigid_definition *a, const km_rigid_definition *b,
                       double tolerance_m, matcher *mt)
{
    int near[KM_RIGID_MAX_MARKERS];
    if (a->marker_count < 3 || b->marker_count < 3 || a->marker_count > KM_RIGID_MAX_MARKERS ||
        b->marker_count > KM_RIGID_MAX_MARKERS)
        return false;
    const int max_missing = a->marker_count > 3 ? 1 : 0;
    matcher_init(mt, a, b->markers_m, NULL, b->marker_count, NULL, near, tolerance_m,
                 tolerance_m, max_missing);
    const bool found = matcher_run(mt);
    mt->near = NULL; /* stack scratch */
    return found;
}

int km_rigid_definitions_check(const km_rigid_definition *defs, int count, double tolerance_m,
                               km_rigid_confusion *out, int capacity)
{
    if (!defs || count < 2 || !(tolerance_m > 0.0))
        return 0;
    int found = 0;
    for (int a = 0; a < count; a++) {
        for (int b = 0; b < count; b++) {
            matcher mt, other;
            if (a == b || !confusable(&defs[a], &defs[b], tolerance_m, &mt))
                continue;
            /* the pair was already reported the other way round */
            if (b < a && confusable(&defs[b], &defs[a], tolerance_m, &other))
                continue;
            km_log(KM_LOG_WARN, "rigid",
                   "rigid bodies '%s' and '%s' could be confused: %d of the %d markers of "
                   "'%s' fit markers of '%s' with a mean error of %.2f mm",
                   defs[a].name, defs[b].name, mt.best_count, defs[a].marker_count,
                   defs[a].name, defs[b].name, mt.best_error * 1000.0);
            if (out && found < capacity)
                out[found] = (km_rigid_confusion){a, b, mt.best_error, mt.best_count};
            found++;
        }
    }
    return found;
}

/* ----------------------------------------------------------------- tracker */

typedef struct body_state {
    bool valid;              /* a pose was ever solved */
    int solves;              /* consecutive solved frames */
    int missed;              /* frames since the last solve */
    km_vec3 pos, prev_pos;
    km_quat rot, prev_rot;
    double last_dt;          /* seconds between the last two solves */
    km_vec3 omega;           /* angular velocity of the orientation filter, rad/s, world */
    uint64_t last_time_ns;
    uint64_t last_frame;
} body_state;

struct km_rigid_tracker {
    km_rigid_config cfg;
    int count;
    km_rigid_definition *defs;
    body_state *state;
    int marker_capacity;
    km_vec3 *pts;            /* positions of the current frame */
    double *weights;
    bool *used;
    int *near;
};

km_rigid_config km_rigid_config_default(void)
{
    km_rigid_config c;
    memset(&c, 0, sizeof c);
    c.tolerance_m = 0.004;
    c.max_error_m = 0.003;
    c.gate_m = 0.02;
    c.max_missing = 1;
    c.max_markers = 512;
    c.orientation_smoothing = 0.3;
    return c;
}

void km_rigid_tracker_destroy(km_rigid_tracker *t)
{
    if (!t)
        return;
    free(t->defs);
    free(t->state);
    free(t->pts);
    free(t->weights);
    free(t->used);
    free(t->near);
    free(t);
}

void km_rigid_tracker_reset(km_rigid_tracker *t)
{
    if (t)
        memset(t->state, 0, (size_t)t->count * sizeof *t->state);
}

int km_rigid_tracker_count(const km_rigid_tracker *t)
{
    return t ? t->count : 0;
}

const km_rigid_definition *km_rigid_tracker_definition(const km_rigid_tracker *t, int index)
{
    return t && index >= 0 && index < t->count ? &t->defs[index] : NULL;
}

km_rigid_tracker *km_rigid_tracker_create(const km_rigid_config *cfg,
                                          const km_rigid_definition *defs, int count,
                                          km_status *err)
{
    km_status dummy;
    if (!err)
        err = &dummy;
    if (!cfg || (count > 0 && !defs) || count < 0) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "rigid tracker: bad argument");
        return NULL;
    }
    if (!(cfg->tolerance_m > 0.0 && cfg->tolerance_m < 1.0) ||
        !(cfg->max_error_m > 0.0 && cfg->max_error_m < 1.0) ||
        !(cfg->gate_m > 0.0 && cfg->gate_m < 10.0) || cfg->max_missing < 0 ||
        cfg->max_markers < 1 || cfg->max_markers > (1 << 22) ||
        !(cfg->orientation_smoothing >= 0.0 && cfg->orientation_smoothing <= 0.9)) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "rigid tracker: bad config (tolerance_m, max_error_m in (0,1), gate_m "
                        "in (0,10), max_missing >= 0, max_markers in 1..4194304, "
                        "orientation_smoothing in [0, 0.9])");
        return NULL;
    }
    for (int k = 0; k < count; k++) {
        if ((*err = km_rigid_definition_validate(&defs[k])) != KM_OK)
            return NULL;
        for (int j = 0; j < k; j++)
            if (defs[j].id == defs[k].id || strcmp(defs[j].name, defs[k].name) == 0) {
                *err = km_error(KM_ERR_INVALID_ARGUMENT,
                                "rigid tracker: definitions %d ('%s') and %d ('%s') share a "
                                "name or id", j, defs[j].name, k, defs[k].name);
                return NULL;
            }
    }
    km_rigid_tracker *t = calloc(1, sizeof *t);
    if (!t) {
        *err = km_error(KM_ERR_NO_MEMORY, "rigid tracker: out of memory");
        return NULL;
    }
    t->cfg = *cfg;
    t->count = count;
    t->marker_capacity = cfg->max_markers;
    const size_t n = count > 0 ? (size_t)count : 1, M = (size_t)cfg->max_markers;
    t->defs = calloc(n, sizeof *t->defs);
    t->state = calloc(n, sizeof *t->state);
    t->pts = calloc(M, sizeof *t->pts);
    t->weights = calloc(M, sizeof *t->weights);
    t->used = calloc(M, sizeof *t->used);
    t->near = calloc(M, sizeof *t->near);
    if (!t->defs || !t->state || !t->pts || !t->weights || !t->used || !t->near) {
        km_rigid_tracker_destroy(t);
        *err = km_error(KM_ERR_NO_MEMORY, "rigid tracker: out of memory");
        return NULL;
    }
    if (count > 0)
        memcpy(t->defs, defs, (size_t)count * sizeof *defs);
    km_rigid_definitions_check(t->defs, count, cfg->tolerance_m, NULL, 0);
    *err = KM_OK;
    return t;
}

static int min_markers(const km_rigid_tracker *t, const km_rigid_definition *def)
{
    const int m = def->marker_count - t->cfg.max_missing;
    return m < 3 ? 3 : m;
}

/* Rotation vector (axis * angle, angle in [0, pi]) of a unit quaternion, and back. */
static km_vec3 quat_log(km_quat q)
{
    if (q.w < 0.0)
        q = (km_quat){-q.x, -q.y, -q.z, -q.w};
    const double s = sqrt(q.x * q.x + q.y * q.y + q.z * q.z);
    if (s < 1e-12)
        return km_vec3_make(2.0 * q.x, 2.0 * q.y, 2.0 * q.z);
    const double k = 2.0 * atan2(s, q.w) / s;
    return km_vec3_make(q.x * k, q.y * k, q.z * k);
}

static km_quat quat_exp(km_vec3 v)
{
    const double angle = km_vec3_norm(v);
    if (angle < 1e-12)
        return km_quat_normalize((km_quat){0.5 * v.x, 0.5 * v.y, 0.5 * v.z, 1.0});
    return km_quat_from_axis_angle(v, angle);
}

/* Orientation filter (km_rigid_config.orientation_smoothing). Why: the per-frame pose of
 * a body whose origin lies far from its markers (HEAD: the head centre, 17 cm below four
 * nearly coplanar head-band markers) is limited by its orientation noise times that lever,
 * and the per-frame Kabsch fit is already at the limit the markers' noise sets (a Monte
 * Carlo of the HEAD constellation with the reconstructed markers' error gives 0.47 mm RMS,
 * measured 0.50 mm). Only time adds information. So the orientation is tracked by an
 * alpha-beta filter on SO(3): constant angular velocity prediction from the filtered
 * orientation, the innovation r = log(measured * predicted^-1) corrected by alpha = 1 -
 * smoothing, the angular velocity by beta = 2 (2 - alpha) - 4 sqrt(1 - alpha) (the
 * steady-state Kalman gains of a constant-velocity model). It adds no frame of delay; under
 * a constant angular acceleration a it lags by a dt^2 (1 - alpha) / beta: at 120 Hz with
 * the default 0.3, 0.005 deg per 100 deg/s^2, e.g. 0.2 deg at the peak of a 90 deg head
 * turn in 0.3 s. The origin follows from the measured markers' centroid (which has no
 * lever) and the filtered orientation. */
static void filter_orientation(const km_rigid_tracker *t, body_state *s,
                               const km_rigid_definition *def, const int *assign, double dt,
                               km_vec3 *pos, km_quat *rot, double *err)
{
    const double alpha = 1.0 - t->cfg.orientation_smoothing;
    if (!(alpha < 1.0) || !(dt > 0.0))
        return;
    km_quat q = *rot;
    if (s->solves == 1) {
        /* second solve in a row: the angular velocity from the two measurements */
        s->omega = km_vec3_scale(quat_log(km_quat_mul(q, km_quat_conjugate(s->rot))), 1.0 / dt);
        return;
    }
    const double beta = 2.0 * (2.0 - alpha) - 4.0 * sqrt(1.0 - alpha);
    const km_quat pred = km_quat_normalize(km_quat_mul(quat_exp(km_vec3_scale(s->omega, dt)), s->rot));
    const km_vec3 r = quat_log(km_quat_mul(q, km_quat_conjugate(pred)));
    q = km_quat_normalize(km_quat_mul(quat_exp(km_vec3_scale(r, alpha)), pred));
    s->omega = km_vec3_add(s->omega, km_vec3_scale(r, beta / dt));
    /* origin: the measured centroid, the filtered orientation (Kabsch: t = cw - R cl) */
    km_vec3 cl = {0, 0, 0}, cw = {0, 0, 0};
    double W = 0.0;
    for (int i = 0; i < def->marker_count; i++) {
        if (assign[i] < 0)
            continue;
        const double w = t->weights[assign[i]];
        cl = km_vec3_add(cl, km_vec3_scale(def->markers_m[i], w));
        cw = km_vec3_add(cw, km_vec3_scale(t->pts[assign[i]], w));
        W += w;
    }
    cl = km_vec3_scale(cl, 1.0 / W);
    cw = km_vec3_scale(cw, 1.0 / W);
    *pos = km_vec3_sub(cw, km_quat_rotate(q, cl));
    *rot = q;
    double e = 0.0;
    int n = 0;
    for (int i = 0; i < def->marker_count; i++) {
        if (assign[i] < 0)
            continue;
        e += km_vec3_dist(km_vec3_add(*pos, km_quat_rotate(q, def->markers_m[i])),
                          t->pts[assign[i]]);
        n++;
    }
    *err = e / n;
}

/* Fit the assignment; on success fill the pose. */
static bool fit(const km_rigid_tracker *t, const km_rigid_definition *def, const int *assign,
                km_vec3 *pos, km_quat *rot, double *err, int *used_count)
{
    km_vec3 local[KM_RIGID_MAX_MARKERS], world[KM_RIGID_MAX_MARKERS];
    double w[KM_RIGID_MAX_MARKERS];
    int n = 0;
    for (int i = 0; i < def->marker_count; i++) {
        if (assign[i] < 0)
            continue;
        local[n] = def->markers_m[i];
        world[n] = t->pts[assign[i]];
        w[n] = t->weights[assign[i]];
        n++;
    }
    *used_count = n;
    if (n < min_markers(t, def))
        return false;
    if (km_rigid_solve_pose(local, world, w, n, pos, rot, err) != KM_OK)
        return false;
    return *err <= t->cfg.max_error_m;
}

/* Tracking step: markers nearest to the predicted positions. */
static bool track_predicted(km_rigid_tracker *t, int b, uint64_t frame, uint64_t time_ns,
                            int count, int *assign, km_vec3 *pos, km_quat *rot, double *err,
                            int *used_count)
{
    const body_state *s = &t->state[b];
    const km_rigid_definition *def = &t->defs[b];
    double dt = time_ns > s->last_time_ns ? (double)(time_ns - s->last_time_ns) * 1e-9
                                          : (double)(frame - s->last_frame) / 120.0;
    km_vec3 pred_pos = s->pos;
    km_quat pred_rot = s->rot;
    if (s->solves >= 2 && s->last_dt > 0.0) {
        const double ratio = dt / s->last_dt;
        pred_pos = km_vec3_add(s->pos, km_vec3_scale(km_vec3_sub(s->pos, s->prev_pos), ratio));
        km_quat delta = km_quat_mul(s->rot, km_quat_conjugate(s->prev_rot));
        if (delta.w < 0)
            delta = (km_quat){-delta.x, -delta.y, -delta.z, -delta.w};
        if (ratio <= 4.0)
            pred_rot = km_quat_normalize(
                km_quat_mul(km_quat_slerp(km_quat_identity(), delta, ratio), s->rot));
    }
    double best_d[KM_RIGID_MAX_MARKERS];
    for (int i = 0; i < def->marker_count; i++) {
        const km_vec3 w = km_vec3_add(pred_pos, km_quat_rotate(pred_rot, def->markers_m[i]));
        assign[i] = -1;
        best_d[i] = t->cfg.gate_m;
        for (int p = 0; p < count; p++) {
            if (t->used[p])
                continue;
            const double d = km_vec3_dist(t->pts[p], w);
            if (d < best_d[i]) {
                best_d[i] = d;
                assign[i] = p;
            }
        }
    }
    /* two definition markers on one measured marker: the nearer keeps it */
    for (int i = 0; i < def->marker_count; i++)
        for (int j = i + 1; j < def->marker_count; j++)
            if (assign[i] >= 0 && assign[i] == assign[j]) {
                if (best_d[i] <= best_d[j])
                    assign[j] = -1;
                else
                    assign[i] = -1;
            }
    if (fit(t, def, assign, pos, rot, err, used_count))
        return true;
    /* One wrong marker (a stray one near a predicted position): drop the worst and refit. */
    if (*used_count - 1 >= min_markers(t, def)) {
        int worst = -1;
        double worst_d = -1.0;
        for (int i = 0; i < def->marker_count; i++)
            if (assign[i] >= 0 && best_d[i] > worst_d) {
                worst_d = best_d[i];
                worst = i;
            }
        assign[worst] = -1;
        if (fit(t, def, assign, pos, rot, err, used_count))
            return true;
    }
    return false;
}

km_status km_rigid_tracker_update(km_rigid_tracker *t, const km_marker_set *markers,
                                  km_rigid_pose *out, int capacity)
{
    if (!t || !markers || (markers->count > 0 && !markers->items) || markers->count < 0 ||
        (t->count > 0 && !out))
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid tracker: bad argument");
    if (capacity < t->count)
        return km_error(KM_ERR_CAPACITY, "rigid tracker: %d poses do not fit in %d", t->count,
                        capacity);
    if (markers->count > t->marker_capacity)
        return km_error(KM_ERR_CAPACITY, "rigid tracker: %d markers, max_markers is %d",
                        markers->count, t->marker_capacity);
    const int M = markers->count;
    const uint64_t frame = markers->frame, time_ns = markers->time_ns;
    for (int p = 0; p < M; p++) {
        const km_marker *mk = &markers->items[p];
        if (!isfinite(mk->pos_m.x) || !isfinite(mk->pos_m.y) || !isfinite(mk->pos_m.z))
            return km_error(KM_ERR_INVALID_ARGUMENT, "rigid tracker: marker %d is not finite",
                            p);
        t->pts[p] = mk->pos_m;
        t->weights[p] = mk->views > 0 ? (double)mk->views : 1.0;
        t->used[p] = false;
    }
    /* ids are reported as marker ids when unique in the frame, else as indices */
    bool ids_unique = true;
    for (int p = 1; p < M && ids_unique; p++)
        if (markers->items[p].id <= markers->items[p - 1].id)
            ids_unique = false;
    if (!ids_unique) {
        /* not sorted: check properly only when small (sorted input is the common case) */
        ids_unique = M <= 64;
        for (int p = 0; p < M && ids_unique; p++)
            for (int q = p + 1; q < M; q++)
                if (markers->items[p].id == markers->items[q].id) {
                    ids_unique = false;
                    break;
                }
    }

    int assign[KM_RIGID_MAX_MARKERS];
    /* pass 0: bodies tracked recently (prediction); pass 1: identification of the rest */
    for (int b = 0; b < t->count; b++) {
        km_rigid_pose *o = &out[b];
        const km_rigid_definition *def = &t->defs[b];
        memset(o, 0, sizeof *o);
        o->id = def->id;
        o->definition = b;
        o->tracked = false;
        for (int i = 0; i < KM_RIGID_MAX_MARKERS; i++)
            o->marker_ids[i] = KM_RIGID_NO_MARKER;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < t->count; b++) {
            body_state *s = &t->state[b];
            const km_rigid_definition *def = &t->defs[b];
            km_rigid_pose *o = &out[b];
            if (o->tracked)
                continue;
            const bool recent = s->valid && s->solves > 0 && s->missed < MAX_COAST_FRAMES;
            km_vec3 pos;
            km_quat rot;
            double err = 0.0;
            int n = 0;
            bool ok = false;
            if (pass == 0) {
                if (!recent)
                    continue;
                ok = track_predicted(t, b, frame, time_ns, M, assign, &pos, &rot, &err, &n);
            } else {
                matcher mt;
                matcher_init(&mt, def, t->pts, t->weights, M, t->used, t->near,
                             t->cfg.tolerance_m, t->cfg.max_error_m, t->cfg.max_missing);
                if (matcher_run(&mt) && mt.best_count >= min_markers(t, def)) {
                    memcpy(assign, mt.best, sizeof assign);
                    ok = fit(t, def, assign, &pos, &rot, &err, &n);
                }
            }
            if (!ok)
                continue;
            const double dt = !s->valid ? 0.0
                              : time_ns > s->last_time_ns
                                  ? (double)(time_ns - s->last_time_ns) * 1e-9
                                  : (double)(frame - s->last_frame) / 120.0;
            if (recent)
                filter_orientation(t, s, def, assign, dt, &pos, &rot, &err);
            else
                s->omega = km_vec3_make(0, 0, 0);
            for (int i = 0; i < def->marker_count; i++)
                if (assign[i] >= 0) {
                    t->used[assign[i]] = true;
                    o->marker_ids[i] =
                        ids_unique ? markers->items[assign[i]].id : (uint32_t)assign[i];
                }
            o->tracked = true;
            o->pos_m = pos;
            o->rot = rot;
            o->error_m = err;
            o->markers_used = n;
            /* keep the quaternion on the hemisphere of the last one (continuous output) */
            if (s->valid && km_vec3_dot(km_vec3_make(rot.x, rot.y, rot.z),
                                        km_vec3_make(s->rot.x, s->rot.y, s->rot.z)) +
                                    rot.w * s->rot.w < 0.0)
                o->rot = (km_quat){-rot.x, -rot.y, -rot.z, -rot.w};
            s->prev_pos = s->pos;
            s->prev_rot = s->rot;
            s->pos = o->pos_m;
            s->rot = o->rot;
            s->last_dt = dt;
            s->solves = recent ? s->solves + 1 : 1;
            s->missed = 0;
            s->valid = true;
            s->last_time_ns = time_ns;
            s->last_frame = frame;
        }
    }
    for (int b = 0; b < t->count; b++) {
        body_state *s = &t->state[b];
        km_rigid_pose *o = &out[b];
        if (o->tracked)
            continue;
        s->missed++;
        if (s->missed >= MAX_COAST_FRAMES)
            s->solves = 0;
        o->pos_m = s->valid ? s->pos : km_vec3_make(0, 0, 0);
        o->rot = s->valid ? s->rot : km_quat_identity();
        o->error_m = 0.0;
    }
    return KM_OK;
}
