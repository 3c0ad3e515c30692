/* Reconstruction: the 2D observations of all cameras of one frame set -> 3D markers.
 *
 * 1. Every observation is undistorted once to a normalised image point and a world ray.
 * 2. Camera pairs are visited best-conditioned first (optical axes near 90 degrees). For a
 *    pair (i, j) every ray lies in one plane of the pencil of planes through the baseline;
 *    the angle phi of that plane around the baseline is the same for the two rays of a true
 *    match. Sorting camera j's observations by phi turns the epipolar search into a binary
 *    search plus a short window instead of an all-pairs test.
 * 3. Each epipolar match seeds a candidate: two-ray midpoint, then support gathered in every
 *    other camera by reprojecting it (nearest unused observation inside a gate), Gauss–Newton
 *    on all views, views with a large reprojection error dropped, a second gathering round
 *    with the refined point.
 * 4. Candidates of a pair are accepted greedily, most views first, then lowest residual;
 *    each observation belongs to at most one marker.
 * 5. Two passes: the first accepts only points seen by >= 3 cameras, the second then builds
 *    the two-view points from what is left, rejecting two-view matches that are ambiguous
 *    (an observation with more than one epipolar partner). A two-view point cannot be
 *    verified, so taking them last keeps a reflection from stealing a true marker's view.
 *
 * Every buffer is sized from the config in km_reconstructor_create; km_reconstructor_run
 * does not allocate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"
#include "triangulate.h"

#define MODULE "reconstruct"

/* Rays closer than asin(EPIPOLE_SIN_MIN) to the baseline have an ill-defined plane angle;
 * they are matched by brute force (few: only near the epipole). */
#define EPIPOLE_SIN_MIN 0.05
/* Support search radius around a reprojected two-view point, in units of max_residual_px:
 * wide, because a two-view point can be a few pixels off in a third camera. */
#define SUPPORT_GATE_WIDE 3.0
/* Noise scale. The thresholds that separate a true view from a neighbouring marker's
 * observation, or a true point from a ghost, must follow the actual centroid noise plus
 * calibration error (0.1 px on the synthetic rig, maybe 0.5 px on a stage), not the
 * user's max_residual_px alone. So each frame estimates it: the median mean residual of the
 * markers accepted so far with at least NOISE_MIN_VIEWS views, once NOISE_MIN_MARKERS of
 * them exist (the first markers accepted are the best supported, rarely ghosts). Before
 * that the prior is max_residual_px / NOISE_PRIOR_DIVISOR. The estimate is clamped to
 * [max_residual_px / 160, max_residual_px / 4]. */
#define NOISE_MIN_VIEWS 4
#define NOISE_MIN_MARKERS 5
#define NOISE_PRIOR_DIVISOR 16.0
/* A view is an outlier when its (leave-one-out) reprojection error exceeds
 * OUTLIER_MEDIAN_FACTOR times the median error of the other views, clamped to
 * [OUTLIER_FLOOR_NOISE * noise, OUTLIER_CEILING * max_residual_px]. */
#define OUTLIER_MEDIAN_FACTOR 4.0
#define OUTLIER_FLOOR_NOISE 4.0
#define OUTLIER_CEILING 2.0
/* Once the noise is known, a point whose mean residual exceeds this many times the noise is
 * rejected even below max_residual_px (a ghost made of observations of several markers). */
#define ACCEPT_NOISE_FACTOR 4.0
/* Candidate seeds per camera pair, in units of max_observations. */
#define CANDIDATES_PER_OBSERVATION 4
/* Upper bound on max_observations, to keep a corrupt config from asking for gigabytes. */
#define MAX_OBSERVATIONS_LIMIT (1 << 22)

typedef struct rec_pair {
    int i, j;
    double score;    /* sin of the angle between the optical axes: 1 is best */
    km_vec3 b;       /* unit baseline direction, centre i -> centre j */
    km_vec3 e1, e2;  /* (b, e1, e2) right-handed orthonormal */
} rec_pair;

/* An epipolar match of a pair, ranked by a quick support count before the full
 * (Gauss–Newton) evaluation, which only the candidates that get their turn pay for. */
typedef struct rec_candidate {
    int seed_a, seed_b;
} rec_candidate;

struct km_reconstructor {
    km_reconstruct_config cfg;
    km_rig rig;
    int camera_count;
    double focal_px[KM_MAX_CAMERAS]; /* px per normalised unit, to express gates in px */
    km_vec3 center[KM_MAX_CAMERAS];
    int pair_count;
    rec_pair *pairs;

    /* Per observation of the current frame set (index = position in the set). */
    int obs_capacity;
    double *xn, *yn;      /* undistorted normalised */
    double *u, *v;        /* raw pixels */
    km_vec3 *ray;         /* unit world direction from the camera centre */
    int *camera;
    unsigned char *used;
    int *match_count;     /* epipolar partners in the pair being processed */
    double *phi;          /* plane angle around the current pair's baseline */
    double *sin_beta;     /* sin of the angle between the ray and the baseline */
    km_vec3 *plane_in_i;  /* for obs of camera j: its epipolar plane normal in camera i */

    /* Observation indices grouped by camera, each group sorted by v. */
    int cam_start[KM_MAX_CAMERAS + 1];
    int *by_camera;
    double *by_camera_v;

    /* Pair scratch. */
    int *list_a;
    int *sorted_b;
    double *sorted_b_phi;
    int *near_b;

    /* Candidates of one pair. */
    int candidate_capacity;
    rec_candidate *candidates;
    int *order;
    double *order_key;

    /* Noise estimate of the current frame (see NOISE_*). */
    double noise_px;
    bool noise_known;
    int residual_count;
    double *residual_sorted;  /* max_markers: mean residuals of well-seen markers */
};

km_reconstruct_config km_reconstruct_config_default(void)
{
    km_reconstruct_config cfg = {
        .max_epipolar_px = 2.0,
        .max_residual_px = 2.0,
        .min_views = 2,
        .max_markers = 512,
        .max_observations = 8192,
    };
    return cfg;
}

/* ------------------------------------------------------------------ sorting */

/* In-place heap sort of keys[] carrying idx[] along: O(n log n), no recursion and, unlike
 * glibc's qsort (which may malloc a merge buffer), no allocation. */
static void sift_down(double *keys, int *idx, int root, int n)
{
    for (;;) {
        int child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && keys[child + 1] > keys[child])
            child++;
        if (!(keys[child] > keys[root]))
            return;
        double tk = keys[root];
        keys[root] = keys[child];
        keys[child] = tk;
        int ti = idx[root];
        idx[root] = idx[child];
        idx[child] = ti;
        root = child;
    }
}

static void heap_sort(double *keys, int *idx, int n)
{
    for (int start = n / 2 - 1; start >= 0; start--)
        sift_down(keys, idx, start, n);
    for (int end = n - 1; end > 0; end--) {
        double tk = keys[0];
        keys[0] = keys[end];
        keys[end] = tk;
        int ti = idx[0];
        idx[0] = idx[end];
        idx[end] = ti;
        sift_down(keys, idx, 0, end);
    }
}

/* First position in keys[lo, hi) with keys[pos] >= value. */
static int lower_bound(const double *keys, int lo, int hi, double value)
{
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (keys[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First position in keys[lo, hi) with keys[pos] > value. */
static int upper_bound(const double *keys, int lo, int hi, double value)
{
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (keys[mid] <= value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ------------------------------------------------------------ create/destroy */

void km_reconstructor_destroy(km_reconstructor *rec)
{
    if (!rec)
        return;
    free(rec->pairs);
    free(rec->xn);
    free(rec->yn);
    free(rec->u);
    free(rec->v);
    free(rec->ray);
    free(rec->camera);
    free(rec->used);
    free(rec->match_count);
    free(rec->phi);
    free(rec->sin_beta);
    free(rec->plane_in_i);
    free(rec->by_camera);
    free(rec->by_camera_v);
    free(rec->list_a);
    free(rec->sorted_b);
    free(rec->sorted_b_phi);
    free(rec->near_b);
    free(rec->candidates);
    free(rec->order);
    free(rec->order_key);
    free(rec->residual_sorted);
    free(rec);
}

static km_vec3 camera_axis(const km_camera *cam)
{
    /* Third row of R: the camera's +z (viewing direction) in world coordinates. */
    return km_vec3_make(cam->R.m[6], cam->R.m[7], cam->R.m[8]);
}

km_reconstructor *km_reconstructor_create(const km_reconstruct_config *cfg, const km_rig *rig,
                                          km_status *err)
{
    km_status dummy;
    if (!err)
        err = &dummy;
    if (!cfg || !rig) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "reconstruct: NULL config or rig");
        return NULL;
    }
    if (!(cfg->max_epipolar_px > 0.0) || !(cfg->max_residual_px > 0.0) || cfg->min_views < 2 ||
        cfg->max_markers < 1 || cfg->max_observations < 1 ||
        cfg->max_observations > MAX_OBSERVATIONS_LIMIT) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "reconstruct: bad config (max_epipolar_px %g, max_residual_px %g, "
                        "min_views %d, max_markers %d, max_observations %d)",
                        cfg->max_epipolar_px, cfg->max_residual_px, cfg->min_views,
                        cfg->max_markers, cfg->max_observations);
        return NULL;
    }
    if (rig->camera_count < 2 || rig->camera_count > KM_MAX_CAMERAS) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "reconstruct: the rig needs 2..%d cameras, it has %d", KM_MAX_CAMERAS,
                        rig->camera_count);
        return NULL;
    }
    for (int c = 0; c < rig->camera_count; c++) {
        const km_camera *cam = &rig->cameras[c];
        if (!cam->has_pose || !(cam->K[0] > 0.0) || !(cam->K[4] > 0.0)) {
            *err = km_error(KM_ERR_INVALID_ARGUMENT,
                            "reconstruct: camera %d (%s) has no pose or no focal length", c,
                            cam->name);
            return NULL;
        }
    }

    km_reconstructor *rec = calloc(1, sizeof *rec);
    if (!rec) {
        *err = km_error(KM_ERR_NO_MEMORY, "reconstruct: out of memory");
        return NULL;
    }
    rec->cfg = *cfg;
    rec->rig = *rig;
    const int ncam = rig->camera_count;
    rec->camera_count = ncam;
    for (int c = 0; c < ncam; c++) {
        const km_camera *cam = &rec->rig.cameras[c];
        rec->focal_px[c] = 0.5 * (cam->K[0] + cam->K[4]);
        rec->center[c] = km_camera_center(cam);
    }

    rec->pair_count = ncam * (ncam - 1) / 2;
    const size_t nobs = (size_t)cfg->max_observations;
    rec->obs_capacity = cfg->max_observations;
    rec->candidate_capacity = CANDIDATES_PER_OBSERVATION * cfg->max_observations;
    const size_t ncand = (size_t)rec->candidate_capacity;
    rec->pairs = calloc((size_t)rec->pair_count, sizeof *rec->pairs);
    rec->xn = calloc(nobs, sizeof(double));
    rec->yn = calloc(nobs, sizeof(double));
    rec->u = calloc(nobs, sizeof(double));
    rec->v = calloc(nobs, sizeof(double));
    rec->ray = calloc(nobs, sizeof(km_vec3));
    rec->camera = calloc(nobs, sizeof(int));
    rec->used = calloc(nobs, 1);
    rec->match_count = calloc(nobs, sizeof(int));
    rec->phi = calloc(nobs, sizeof(double));
    rec->sin_beta = calloc(nobs, sizeof(double));
    rec->plane_in_i = calloc(nobs, sizeof(km_vec3));
    rec->by_camera = calloc(nobs, sizeof(int));
    rec->by_camera_v = calloc(nobs, sizeof(double));
    rec->list_a = calloc(nobs, sizeof(int));
    rec->sorted_b = calloc(nobs, sizeof(int));
    rec->sorted_b_phi = calloc(nobs, sizeof(double));
    rec->near_b = calloc(nobs, sizeof(int));
    rec->candidates = calloc(ncand, sizeof(rec_candidate));
    rec->order = calloc(ncand, sizeof(int));
    rec->order_key = calloc(ncand, sizeof(double));
    rec->residual_sorted = calloc((size_t)cfg->max_markers, sizeof(double));
    if (!rec->pairs || !rec->xn || !rec->yn || !rec->u || !rec->v || !rec->ray ||
        !rec->camera || !rec->used || !rec->match_count || !rec->phi || !rec->sin_beta ||
        !rec->plane_in_i || !rec->by_camera || !rec->by_camera_v || !rec->list_a ||
        !rec->sorted_b || !rec->sorted_b_phi || !rec->near_b || !rec->candidates ||
        !rec->order || !rec->order_key || !rec->residual_sorted) {
        km_reconstructor_destroy(rec);
        *err = km_error(KM_ERR_NO_MEMORY, "reconstruct: out of memory for %d observations",
                        cfg->max_observations);
        return NULL;
    }

    /* Camera pairs, best-conditioned first. */
    int p = 0;
    for (int i = 0; i < ncam; i++) {
        for (int j = i + 1; j < ncam; j++) {
            rec_pair *pair = &rec->pairs[p++];
            pair->i = i;
            pair->j = j;
            double c = km_vec3_dot(camera_axis(&rec->rig.cameras[i]),
                                   camera_axis(&rec->rig.cameras[j]));
            pair->score = sqrt(fmax(0.0, 1.0 - c * c));
            km_vec3 b = km_vec3_sub(rec->center[j], rec->center[i]);
            if (!(km_vec3_norm(b) > 1e-6)) {
                /* Two cameras in one place see no parallax: never pair them. */
                pair->score = -1.0;
                b = km_vec3_make(1, 0, 0);
            }
            pair->b = km_vec3_normalize(b);
            km_vec3 helper = fabs(pair->b.x) < 0.9 ? km_vec3_make(1, 0, 0) : km_vec3_make(0, 1, 0);
            pair->e1 = km_vec3_normalize(km_vec3_cross(helper, pair->b));
            pair->e2 = km_vec3_cross(pair->b, pair->e1);
        }
    }
    /* Insertion sort (runs once; at most 2016 pairs), stable so ties keep index order. */
    for (int a = 1; a < rec->pair_count; a++) {
        rec_pair key = rec->pairs[a];
        int k = a - 1;
        while (k >= 0 && rec->pairs[k].score < key.score) {
            rec->pairs[k + 1] = rec->pairs[k];
            k--;
        }
        rec->pairs[k + 1] = key;
    }
    *err = KM_OK;
    return rec;
}

/* ------------------------------------------------------------- per frame */

/* Undistort every observation and index them by camera, sorted by v. */
static km_status prepare(km_reconstructor *rec, const km_observation_set *obs)
{
    const int n = obs->count;
    int counts[KM_MAX_CAMERAS + 1] = {0};
    for (int k = 0; k < n; k++) {
        const km_observation *o = &obs->items[k];
        if (o->camera < 0 || o->camera >= rec->camera_count)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "reconstruct: frame %llu: observation %d has camera %d, the rig has %d",
                            (unsigned long long)obs->frame, k, o->camera, rec->camera_count);
        if (!isfinite(o->x) || !isfinite(o->y))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "reconstruct: frame %llu: observation %d is not finite",
                            (unsigned long long)obs->frame, k);
        const km_camera *cam = &rec->rig.cameras[o->camera];
        double x, y;
        km_camera_undistort_point(cam, o->x, o->y, &x, &y);
        rec->xn[k] = x;
        rec->yn[k] = y;
        rec->u[k] = o->x;
        rec->v[k] = o->y;
        rec->camera[k] = o->camera;
        rec->used[k] = 0;
        /* World ray: R^T (x, y, 1). */
        const double *R = cam->R.m;
        km_vec3 d = km_vec3_make(R[0] * x + R[3] * y + R[6], R[1] * x + R[4] * y + R[7],
                                 R[2] * x + R[5] * y + R[8]);
        rec->ray[k] = km_vec3_normalize(d);
        counts[o->camera + 1]++;
    }
    rec->cam_start[0] = 0;
    for (int c = 0; c < rec->camera_count; c++)
        rec->cam_start[c + 1] = rec->cam_start[c] + counts[c + 1];
    int fill[KM_MAX_CAMERAS];
    for (int c = 0; c < rec->camera_count; c++)
        fill[c] = rec->cam_start[c];
    for (int k = 0; k < n; k++) {
        int pos = fill[rec->camera[k]]++;
        rec->by_camera[pos] = k;
        rec->by_camera_v[pos] = rec->v[k];
    }
    for (int c = 0; c < rec->camera_count; c++) {
        int lo = rec->cam_start[c], hi = rec->cam_start[c + 1];
        heap_sort(rec->by_camera_v + lo, rec->by_camera + lo, hi - lo);
    }
    return KM_OK;
}

/* Nearest unused observation of camera c within gate_px of where X projects; -1 if none.
 * *dist2 receives its squared distance in px^2. */
static int nearest_unused(const km_reconstructor *rec, int c, km_vec3 X, double gate_px,
                          double *dist2)
{
    const km_camera *cam = &rec->rig.cameras[c];
    double pu, pv;
    if (!km_tri_project(cam, X, &pu, &pv, NULL))
        return -1;
    if (cam->width > 0 && cam->height > 0 &&
        (pu < -gate_px || pv < -gate_px || pu > cam->width - 1 + gate_px ||
         pv > cam->height - 1 + gate_px))
        return -1;
    const int hi = rec->cam_start[c + 1];
    int best = -1;
    double best_d2 = gate_px * gate_px;
    for (int pos = lower_bound(rec->by_camera_v, rec->cam_start[c], hi, pv - gate_px);
         pos < hi && rec->by_camera_v[pos] <= pv + gate_px; pos++) {
        const int k = rec->by_camera[pos];
        if (rec->used[k])
            continue;
        const double du = rec->u[k] - pu, dv = rec->v[k] - pv;
        const double d2 = du * du + dv * dv;
        if (d2 <= best_d2) {
            best_d2 = d2;
            best = k;
        }
    }
    *dist2 = best_d2;
    return best;
}

/* Gauss–Newton over the observations in views[0..n); fills *X and *residual. */
static km_status refine_views(const km_reconstructor *rec, const int *views, int n, km_vec3 *X,
                              double *residual, double *view_error)
{
    const km_camera *cams[KM_MAX_CAMERAS];
    double u[KM_MAX_CAMERAS], v[KM_MAX_CAMERAS];
    for (int k = 0; k < n; k++) {
        cams[k] = &rec->rig.cameras[rec->camera[views[k]]];
        u[k] = rec->u[views[k]];
        v[k] = rec->v[views[k]];
    }
    return km_tri_refine(cams, u, v, n, X, residual, view_error);
}

/* Closest point of two rays from the camera centres; false when they are (nearly) parallel
 * or meet behind a camera. */
static bool ray_midpoint(km_vec3 ca, km_vec3 da, km_vec3 cb, km_vec3 db, km_vec3 *X)
{
    const km_vec3 w0 = km_vec3_sub(ca, cb);
    const double b = km_vec3_dot(da, db);
    const double d = km_vec3_dot(da, w0), e = km_vec3_dot(db, w0);
    const double denom = 1.0 - b * b;
    if (!(denom > 1e-10))
        return false;
    const double s = (b * e - d) / denom, t = (e - b * d) / denom;
    if (!(s > KM_TRI_MIN_DEPTH_M) || !(t > KM_TRI_MIN_DEPTH_M))
        return false;
    const km_vec3 pa = km_vec3_add(ca, km_vec3_scale(da, s));
    const km_vec3 pb = km_vec3_add(cb, km_vec3_scale(db, t));
    *X = km_vec3_scale(km_vec3_add(pa, pb), 0.5);
    return true;
}

/* Median of values[0..n) (n <= KM_MAX_CAMERAS), without touching the input. */
static double median_of(const double *values, int n)
{
    double tmp[KM_MAX_CAMERAS];
    for (int k = 0; k < n; k++) {
        double v = values[k];
        int j = k - 1;
        while (j >= 0 && tmp[j] > v) {
            tmp[j + 1] = tmp[j];
            j--;
        }
        tmp[j + 1] = v;
    }
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

static double outlier_floor(const km_reconstructor *rec)
{
    return OUTLIER_FLOOR_NOISE * rec->noise_px;
}

static double outlier_threshold(const km_reconstructor *rec, double median_px)
{
    return fmin(OUTLIER_CEILING * rec->cfg.max_residual_px,
                fmax(outlier_floor(rec), OUTLIER_MEDIAN_FACTOR * median_px));
}

/* Largest mean residual a marker may have now. */
static double accept_limit(const km_reconstructor *rec)
{
    const double limit = rec->cfg.max_residual_px;
    return rec->noise_known ? fmin(limit, ACCEPT_NOISE_FACTOR * rec->noise_px) : limit;
}

/* Feed an accepted marker to the frame's noise estimate. */
static void update_noise(km_reconstructor *rec, int views, double residual)
{
    if (views < NOISE_MIN_VIEWS || rec->residual_count >= rec->cfg.max_markers)
        return;
    int k = rec->residual_count++;
    while (k > 0 && rec->residual_sorted[k - 1] > residual) {
        rec->residual_sorted[k] = rec->residual_sorted[k - 1];
        k--;
    }
    rec->residual_sorted[k] = residual;
    if (rec->residual_count >= NOISE_MIN_MARKERS) {
        const int n = rec->residual_count;
        const double median = n % 2 ? rec->residual_sorted[n / 2]
                                    : 0.5 * (rec->residual_sorted[n / 2 - 1] +
                                             rec->residual_sorted[n / 2]);
        const double max_res = rec->cfg.max_residual_px;
        rec->noise_px = fmin(max_res / 4.0, fmax(max_res / 160.0, median));
        rec->noise_known = true;
    }
}

/* Drop outlier views one at a time, the worst first. The worst view is judged by its
 * leave-one-out error: its distance to the point refined without it, against the threshold
 * from the other views' errors there. A wrong view pulls the point towards itself and
 * inflates everybody's error, so its in-sample error can look acceptable; without it the
 * others agree again and it stands out. Returns the view count (0 when a refinement
 * fails); *threshold_px receives the outlier threshold of the final view set. */
static int reject_outliers(const km_reconstructor *rec, int *views, int n, bool *has_camera,
                           km_vec3 *X, double *residual, double *view_error,
                           double *threshold_px)
{
    const double floor_px = outlier_floor(rec);
    for (;;) {
        *threshold_px = outlier_threshold(rec, median_of(view_error, n));
        if (n <= 2)
            return n;
        int worst = 0;
        for (int k = 1; k < n; k++)
            if (view_error[k] > view_error[worst])
                worst = k;
        /* A leave-one-out error is at most about twice the in-sample one for a view that
         * fits: below half the floor nothing can be an outlier. */
        if (view_error[worst] <= 0.5 * floor_px)
            return n;
        int others[KM_MAX_CAMERAS];
        int m = 0;
        for (int k = 0; k < n; k++)
            if (k != worst)
                others[m++] = views[k];
        km_vec3 Y = *X;
        double residual_y, error_y[KM_MAX_CAMERAS];
        if (refine_views(rec, others, m, &Y, &residual_y, error_y) != KM_OK)
            return n; /* the others alone are degenerate: keep the view */
        const km_camera *cam = &rec->rig.cameras[rec->camera[views[worst]]];
        double pu, pv;
        if (km_tri_project(cam, Y, &pu, &pv, NULL)) {
            const double loo = hypot(pu - rec->u[views[worst]], pv - rec->v[views[worst]]);
            if (!(loo > outlier_threshold(rec, median_of(error_y, m))))
                return n;
        }
        has_camera[cam - rec->rig.cameras] = false;
        memcpy(views, others, (size_t)m * sizeof *views);
        memcpy(view_error, error_y, (size_t)m * sizeof *view_error);
        n = m;
        *X = Y;
        *residual = residual_y;
    }
}

/* Quick support score of a two-view seed, to rank the seeds of a pair before the full
 * evaluation: the rays' midpoint is reprojected into every other camera and the nearest
 * unused observation within the wide gate adds 1 / (1 + (d / s)^2), s the outlier floor.
 * A soft count: a true match's point lands within a fraction of a pixel of its other views
 * and scores near 1 a camera, while a false match that happens to pass near another marker
 * lands a pixel or more away and scores little, so it cannot outrank the true one by
 * catching one more observation in the wide gate. *count gets the hard count.
 * Returns false when the rays do not meet in front of both cameras. */
static bool quick_support(const km_reconstructor *rec, int a, int b, int *count, double *score)
{
    km_vec3 X;
    if (!ray_midpoint(rec->center[rec->camera[a]], rec->ray[a], rec->center[rec->camera[b]],
                      rec->ray[b], &X))
        return false;
    const double gate = SUPPORT_GATE_WIDE * rec->cfg.max_residual_px;
    const double s = outlier_floor(rec);
    const double inv_s2 = 1.0 / (s * s);
    int n = 0;
    double sum = 0.0;
    for (int c = 0; c < rec->camera_count; c++) {
        if (c == rec->camera[a] || c == rec->camera[b])
            continue;
        double d2;
        if (nearest_unused(rec, c, X, gate, &d2) >= 0) {
            n++;
            sum += 1.0 / (1.0 + d2 * inv_s2);
        }
    }
    *count = n;
    *score = sum;
    return true;
}

/* Build a marker from the seed observations a and b:
 * 1. the two-view point (Gauss–Newton on the seeds), reprojected into every other camera,
 *    finds the nearest unused observation within the wide gate;
 * 2. of those, only the ones within the outlier threshold of the median distance are kept:
 *    judged against the two-view point, which the candidates have not pulled yet (a
 *    neighbouring marker taken where the true one is occluded would otherwise drag the
 *    point and hide among inflated errors);
 * 3. refine on all kept views, drop outliers, then gather once more around the refined
 *    point with the tight threshold.
 * views (capacity camera_count) receives the observation indices; returns the view count
 * (0 = failed). */
static int evaluate_candidate(const km_reconstructor *rec, int a, int b, int *views,
                              km_vec3 *X_out, double *residual_out)
{
    km_vec3 X;
    if (!ray_midpoint(rec->center[rec->camera[a]], rec->ray[a], rec->center[rec->camera[b]],
                      rec->ray[b], &X))
        return 0;
    bool has_camera[KM_MAX_CAMERAS] = {false};
    int n = 0;
    views[n++] = a;
    views[n++] = b;
    has_camera[rec->camera[a]] = true;
    has_camera[rec->camera[b]] = true;
    double residual = 0.0, view_error[KM_MAX_CAMERAS], threshold = 0.0, d2;
    if (refine_views(rec, views, n, &X, &residual, view_error) != KM_OK)
        return 0;

    int found[KM_MAX_CAMERAS];
    double dist[KM_MAX_CAMERAS];
    int nfound = 0;
    const double wide = SUPPORT_GATE_WIDE * rec->cfg.max_residual_px;
    for (int c = 0; c < rec->camera_count; c++) {
        if (has_camera[c])
            continue;
        int k = nearest_unused(rec, c, X, wide, &d2);
        if (k >= 0) {
            found[nfound] = k;
            dist[nfound] = sqrt(d2);
            nfound++;
        }
    }
    if (nfound > 0) {
        const double keep = outlier_threshold(rec, median_of(dist, nfound));
        for (int f = 0; f < nfound; f++) {
            if (dist[f] <= keep) {
                views[n++] = found[f];
                has_camera[rec->camera[found[f]]] = true;
            }
        }
        if (n > 2 && refine_views(rec, views, n, &X, &residual, view_error) != KM_OK)
            return 0;
    }
    n = reject_outliers(rec, views, n, has_camera, &X, &residual, view_error, &threshold);
    if (n == 0)
        return 0;

    int added = 0;
    for (int c = 0; c < rec->camera_count; c++) {
        if (has_camera[c])
            continue;
        int k = nearest_unused(rec, c, X, threshold, &d2);
        if (k >= 0) {
            views[n++] = k;
            has_camera[c] = true;
            added++;
        }
    }
    if (added > 0) {
        if (refine_views(rec, views, n, &X, &residual, view_error) != KM_OK)
            return 0;
        n = reject_outliers(rec, views, n, has_camera, &X, &residual, view_error, &threshold);
        if (n == 0)
            return 0;
    }
    *X_out = X;
    *residual_out = residual;
    return n;
}

typedef struct run_state {
    km_marker_set *out;
    int limit;        /* min(out->capacity, max_markers) */
    bool overflow;
    int seeds_dropped;
} run_state;

static void emit_marker(km_reconstructor *rec, run_state *st, const int *views, int n,
                        km_vec3 X, double residual)
{
    if (st->out->count >= st->limit) {
        st->overflow = true;
        return;
    }
    for (int k = 0; k < n; k++)
        rec->used[views[k]] = 1;
    update_noise(rec, n, residual);
    km_marker *m = &st->out->items[st->out->count];
    m->id = (uint32_t)st->out->count;
    m->pos_m = X;
    m->residual_px = residual;
    m->views = n;
    st->out->count++;
}

/* Epipolar distances of the pair (a in camera i, b in camera j), both images, in px. */
static double epipolar_distance_px(const km_reconstructor *rec, const rec_pair *pair, int a,
                                   km_vec3 plane_a_in_j, int b)
{
    const double nj = hypot(plane_a_in_j.x, plane_a_in_j.y);
    const km_vec3 pi = rec->plane_in_i[b];
    const double ni = hypot(pi.x, pi.y);
    if (!(nj > 0.0) || !(ni > 0.0))
        return INFINITY;
    const double dj = fabs(plane_a_in_j.x * rec->xn[b] + plane_a_in_j.y * rec->yn[b] +
                           plane_a_in_j.z) / nj * rec->focal_px[pair->j];
    const double di = fabs(pi.x * rec->xn[a] + pi.y * rec->yn[a] + pi.z) / ni *
                      rec->focal_px[pair->i];
    return fmax(dj, di);
}

/* Normal of the epipolar plane through the baseline and a ray, in camera c's frame. */
static km_vec3 plane_normal_in(const km_reconstructor *rec, const rec_pair *pair, km_vec3 ray,
                               int c)
{
    const km_vec3 n = km_vec3_cross(pair->b, ray);
    return km_mat3_apply(rec->rig.cameras[c].R, n);
}

/* All epipolar matches between unused observations of the pair, then candidates, then
 * greedy acceptance of those with at least min_views views. */
static void process_pair(km_reconstructor *rec, const rec_pair *pair, int min_views,
                         run_state *st)
{
    const int i = pair->i, j = pair->j;
    int na = 0, nb = 0, nnear = 0;
    for (int pos = rec->cam_start[i]; pos < rec->cam_start[i + 1]; pos++) {
        int k = rec->by_camera[pos];
        if (!rec->used[k])
            rec->list_a[na++] = k;
    }
    if (na == 0)
        return;
    for (int pos = rec->cam_start[j]; pos < rec->cam_start[j + 1]; pos++) {
        int k = rec->by_camera[pos];
        if (rec->used[k])
            continue;
        const km_vec3 d = rec->ray[k];
        const double c1 = km_vec3_dot(d, pair->e1), c2 = km_vec3_dot(d, pair->e2);
        rec->sin_beta[k] = hypot(c1, c2);
        rec->phi[k] = atan2(c2, c1);
        rec->plane_in_i[k] = plane_normal_in(rec, pair, d, i);
        rec->match_count[k] = 0;
        if (rec->sin_beta[k] >= EPIPOLE_SIN_MIN) {
            rec->sorted_b[nb] = k;
            rec->sorted_b_phi[nb] = rec->phi[k];
            nb++;
        } else {
            rec->near_b[nnear++] = k;
        }
    }
    if (nb + nnear == 0)
        return;
    heap_sort(rec->sorted_b_phi, rec->sorted_b, nb);

    /* |sin(dphi)| * sin_beta_b <= distance in normalised units (see file comment). */
    const double gate_norm = rec->cfg.max_epipolar_px / rec->focal_px[j];
    const double window = asin(fmin(1.0, gate_norm / EPIPOLE_SIN_MIN));

    int ncand = 0;
    for (int ia = 0; ia < na; ia++) {
        const int a = rec->list_a[ia];
        const km_vec3 d = rec->ray[a];
        const double c1 = km_vec3_dot(d, pair->e1), c2 = km_vec3_dot(d, pair->e2);
        const double sin_beta_a = hypot(c1, c2);
        const double phi_a = atan2(c2, c1);
        const km_vec3 plane_a = plane_normal_in(rec, pair, d, j);
        rec->match_count[a] = 0;

        /* Ranges of sorted_b to test: the window around phi_a, split where it wraps. */
        int ranges[4] = {0, 0, 0, 0};
        if (sin_beta_a < EPIPOLE_SIN_MIN) {
            ranges[0] = 0;
            ranges[1] = nb;
        } else {
            const double lo = phi_a - window, hi = phi_a + window;
            ranges[0] = lower_bound(rec->sorted_b_phi, 0, nb, lo);
            ranges[1] = upper_bound(rec->sorted_b_phi, 0, nb, hi);
            if (lo < -M_PI) {
                ranges[2] = lower_bound(rec->sorted_b_phi, 0, nb, lo + 2.0 * M_PI);
                ranges[3] = nb;
            } else if (hi > M_PI) {
                ranges[2] = 0;
                ranges[3] = upper_bound(rec->sorted_b_phi, 0, nb, hi - 2.0 * M_PI);
            }
        }
        for (int r = 0; r < 3; r++) {
            int from, to;
            const int *list;
            if (r < 2) {
                from = ranges[2 * r];
                to = ranges[2 * r + 1];
                list = rec->sorted_b;
            } else {
                from = 0;
                to = nnear;
                list = rec->near_b;
            }
            for (int pos = from; pos < to; pos++) {
                const int b = list[pos];
                if (epipolar_distance_px(rec, pair, a, plane_a, b) > rec->cfg.max_epipolar_px)
                    continue;
                rec->match_count[a]++;
                rec->match_count[b]++;
                if (ncand >= rec->candidate_capacity) {
                    st->seeds_dropped++;
                    continue;
                }
                rec->candidates[ncand].seed_a = a;
                rec->candidates[ncand].seed_b = b;
                ncand++;
            }
        }
    }
    if (ncand == 0)
        return;

    /* Rank the matches by their quick support score, so that the true match of an
     * observation comes before the false ones its epipolar line also crosses. */
    int norder = 0;
    for (int c = 0; c < ncand; c++) {
        const rec_candidate *cand = &rec->candidates[c];
        int support;
        double score;
        if (!quick_support(rec, cand->seed_a, cand->seed_b, &support, &score) ||
            support + 2 < min_views)
            continue;
        /* A two-view point cannot be verified: take it only when the match is unique. */
        if (support == 0 &&
            (rec->match_count[cand->seed_a] > 1 || rec->match_count[cand->seed_b] > 1))
            continue;
        rec->order[norder] = c;
        rec->order_key[norder] = -score; /* ascending sort: best score first */
        norder++;
    }
    heap_sort(rec->order_key, rec->order, norder);

    /* Greedy acceptance with the full evaluation against what is still unused. */
    for (int o = 0; o < norder && !st->overflow; o++) {
        const rec_candidate *cand = &rec->candidates[rec->order[o]];
        if (rec->used[cand->seed_a] || rec->used[cand->seed_b])
            continue;
        int views[KM_MAX_CAMERAS];
        km_vec3 X = {0, 0, 0};
        double residual = 0.0;
        const int n = evaluate_candidate(rec, cand->seed_a, cand->seed_b, views, &X, &residual);
        if (n < min_views || !(residual <= accept_limit(rec)))
            continue;
        if (n == 2 && (rec->match_count[cand->seed_a] > 1 || rec->match_count[cand->seed_b] > 1))
            continue;
        emit_marker(rec, st, views, n, X, residual);
    }
}

km_status km_reconstructor_run(km_reconstructor *rec, const km_observation_set *obs,
                               km_marker_set *out)
{
    if (!rec || !obs || !out || (obs->count > 0 && !obs->items) ||
        (out->capacity > 0 && !out->items))
        return km_error(KM_ERR_INVALID_ARGUMENT, "reconstruct: NULL argument");
    out->frame = obs->frame;
    out->time_ns = obs->time_ns;
    out->count = 0;
    if (obs->count < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "reconstruct: negative observation count");
    if (obs->count > rec->obs_capacity)
        return km_error(KM_ERR_CAPACITY,
                        "reconstruct: frame %llu has %d observations, max_observations is %d",
                        (unsigned long long)obs->frame, obs->count, rec->obs_capacity);
    km_status status = prepare(rec, obs);
    if (status != KM_OK)
        return status;

    rec->noise_px = rec->cfg.max_residual_px / NOISE_PRIOR_DIVISOR;
    rec->noise_known = false;
    rec->residual_count = 0;
    run_state st = {
        .out = out,
        .limit = out->capacity < rec->cfg.max_markers ? out->capacity : rec->cfg.max_markers,
    };
    const int strict_views = rec->cfg.min_views > 3 ? rec->cfg.min_views : 3;
    for (int pass = 0; pass < 2 && !st.overflow; pass++) {
        const int min_views = pass == 0 ? strict_views : rec->cfg.min_views;
        if (pass == 1 && min_views == strict_views)
            break;
        for (int p = 0; p < rec->pair_count && !st.overflow; p++) {
            if (rec->pairs[p].score < 0.0)
                continue;
            process_pair(rec, &rec->pairs[p], min_views, &st);
        }
    }
    if (st.seeds_dropped > 0)
        km_log(KM_LOG_DEBUG, MODULE, "frame %llu: %d epipolar candidates over capacity dropped",
               (unsigned long long)obs->frame, st.seeds_dropped);
    if (st.overflow)
        return km_error(KM_ERR_CAPACITY,
                        "reconstruct: frame %llu: more than %d markers (kept the first %d)",
                        (unsigned long long)obs->frame, st.limit, st.limit);
    return KM_OK;
}
