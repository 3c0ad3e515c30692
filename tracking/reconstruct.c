/* Reconstruction: the 2D observations of all cameras of one frame set -> 3D markers.
 *
 * 1. Every observation is undistorted once per frame (Newton on the distortion model, from
 *    the distorted point) to a normalised image point, a unit world ray and the 2x2
 *    Jacobian M = d(raw pixel)/d(normalised) at that point. From then on all geometry stays
 *    in normalised coordinates: the projection of a point is R X + t and a division, and
 *    M turns a normalised difference into raw pixels (to first order, i.e. exactly enough
 *    for sub-pixel residuals), so gates and residuals are still in raw pixels, the unit of
 *    the detector's noise, without evaluating the distortion polynomial again.
 * 2. Observations are indexed per camera by rows of the undistorted image (ROW_HEIGHT_PX),
 *    so "the nearest unused observation near where X projects" looks at a few rows only.
 * 3. Camera pairs are visited best-conditioned first (optical axes near 90 degrees). For a
 *    pair (i, j) every ray lies in one plane of the pencil of planes through the baseline;
 *    the angle phi of that plane around the baseline is the same for the two rays of a true
 *    match. Sorting camera j's unused observations by phi turns the epipolar search into a
 *    binary search plus a short window instead of an all-pairs test.
 * 4. The epipolar matches of a pair are ranked by a quick support score (the rays' midpoint
 *    reprojected into the other cameras, capped after QUICK_SUPPORT_CAP supporting views),
 *    then built in that order: support gathered by reprojection, the point solved by a
 *    weighted least squares over the views' rays whose terms approximate squared raw-pixel
 *    reprojection errors (see solve_views), outliers dropped by their leave-one-out error
 *    (closed form: the view's term taken out of the normal equations), a second gathering
 *    round around the solved point. Each observation is used at most
 *    once.
 * 5. Two passes: the first accepts only points seen by >= 3 cameras, the second builds the
 *    two-view points from what is left. A two-view point cannot be verified by a third
 *    camera, so it must pass stricter tests (see accept_two_view): a unique epipolar partner
 *    in both directions within a wider gate, the noise-based residual limit, no marker of the
 *    frame within MIN_SEPARATION_M, and, when a prior (predicted markers) was given, a
 *    predicted position nearby that no other marker of the frame explains.
 * 6. With a prior (km_reconstructor_set_prior: best the tracker's predictions), a prior
 *    pass comes first: each predicted marker is built straight from the observations
 *    nearest to its projections (evaluate_prior), so that the passes above only search
 *    what no prediction explained. In the steady state of a tracked scene that is most of
 *    the frame's markers, and the search sees a few observations per camera (pairs with
 *    few left are tested exhaustively instead of sorted).
 *
 * Every buffer is sized from the config in km_reconstructor_create; km_reconstructor_run
 * does not allocate. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"
#include "triangulate.h"

#define MODULE "reconstruct"

static inline double dist2(km_vec3 a, km_vec3 b)
{
    const double dx = a.x - b.x, dy = a.y - b.y, dz = a.z - b.z;
    return dx * dx + dy * dy + dz * dz;
}

static inline double dot3(km_vec3 a, km_vec3 b)
{
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

/* Rays closer than asin(EPIPOLE_SIN_MIN) to the baseline have an ill-defined plane angle;
 * they are matched by brute force (few: only near the epipole). */
#define EPIPOLE_SIN_MIN 0.05
/* Classes of rays by the sine of their angle to the baseline (the last bound is
 * EPIPOLE_SIN_MIN): the epipolar search window of a class is asin(gate / bound). */
#define SIN_BETA_CLASS_COUNT 3
static const double sin_beta_class[SIN_BETA_CLASS_COUNT] = {0.5, 0.2, EPIPOLE_SIN_MIN};
/* Support search radius around a reprojected two-view point, in units of max_residual_px:
 * wide, because a two-view point can be a few pixels off in a third camera. */
#define SUPPORT_GATE_WIDE 3.0
/* Once the frame's noise is known, the wide gate shrinks to this many times the noise (a
 * two-view point from a narrow-baseline pair is off by up to ~10 noise sigmas in a third
 * camera): fewer wrong observations to consider, fewer to look at. */
#define SUPPORT_GATE_NOISE 20.0
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
/* The median of this many markers is as good an estimate as that of all (and keeping a
 * sorted list of a dense frame's 200 was 2% of the frame). */
#define NOISE_MAX_MARKERS 64
/* A view is an outlier when its (leave-one-out) reprojection error exceeds
 * OUTLIER_MEDIAN_FACTOR times the median error of the other views, clamped to
 * [OUTLIER_FLOOR_NOISE * noise, OUTLIER_CEILING * max_residual_px]. */
#define OUTLIER_MEDIAN_FACTOR 4.0
#define OUTLIER_FLOOR_NOISE 4.0
#define OUTLIER_CEILING 2.0
/* Once the noise is known, a point whose mean residual exceeds this many times the noise is
 * rejected even below max_residual_px (a ghost made of observations of several markers). */
#define ACCEPT_NOISE_FACTOR 4.0
/* The quick score of a seed stops after this many supporting views: enough to rank a true
 * match (each support near 1) far above a false one (each far below 1), and a true match
 * then costs a handful of projections instead of one per camera. */
#define QUICK_SUPPORT_CAP 4
/* ... and gives up after QUICK_MISS_CAP + 2 x (supports so far) cameras without support: a
 * false match finds nothing in most cameras, and asking all 23 others of a 24-camera rig
 * for every false match of a dense frame was the largest cost. (A rig of 8 has 6 others.) */
#define QUICK_MISS_CAP 6
/* Leave-one-out test: up to this many views the others' errors are recomputed at the
 * leave-one-out point (see reject_outliers). */
#define LOO_EXACT_MAX_VIEWS 8
/* Two-view points: the epipolar uniqueness test uses this many times max_epipolar_px, and
 * no other marker of the frame may be nearer than MIN_SEPARATION_M (a second point made of
 * leftover views of one marker). */
#define TWO_VIEW_UNIQUE_GATE 2.0
/* A pair with at most this many (unused observation of i) x (of j) combinations is searched
 * by testing every combination. */
#define BRUTE_FORCE_PAIRS 64
/* Prior pass: search radius around a predicted marker's projection, in units of
 * max_residual_px (1 px by default: about 6 mm at 5 m with a 75 degree lens, where a
 * constant-velocity prediction at 120 Hz is off by a few tenths of a pixel; see
 * evaluate_prior). */
#define PRIOR_GATE 0.5
#define PRIOR_MIN_VIEWS 5
#define PRIOR_GOOD 0.5
#define MIN_SEPARATION_M 0.01
/* Without a prior, a two-view point must also lie on a body: at least
 * TWO_VIEW_MIN_NEIGHBOURS markers of the frame seen by >= 3 cameras within
 * TWO_VIEW_NEIGHBOUR_RADIUS_M. Markers come in constellations (a suit, a rigid body); a
 * chance epipolar match of two reflections lands anywhere in the volume. */
#define TWO_VIEW_NEIGHBOUR_RADIUS_M 0.3
/* A point with fewer views than this is also checked against MIN_SEPARATION_M (a few views
 * split off a marker that was built already); well-seen points are not (the check is a scan
 * of the frame's markers). */
#define DUPLICATE_CHECK_VIEWS 6
#define TWO_VIEW_MIN_NEIGHBOURS 2
/* Height of the rows of the per-camera observation index, undistorted pixels. */
#define ROW_HEIGHT_PX 4.0
#define MAX_ROWS_PER_CAMERA 4096
/* Undistortion: a table of undistorted points every LUT_STEP_PX raw pixels gives a start
 * within ~1e-4 (normalised) by bilinear interpolation, one Newton step takes it to ~1e-9
 * (0.001 px); a start further off than LUT_NEWTON_MAX falls back to the full iteration. */
#define LUT_STEP_PX 32.0
#define LUT_NEWTON_MAX 1e-3
#define LUT_MAX_NODES_PER_CAMERA (1 << 16)
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

/* Per camera, copied or derived from the rig once. */
typedef struct rec_camera {
    double R[9];
    double t[3];
    km_vec3 center;
    double fx, fy, cx, cy, skew;
    double k1, k2, p1, p2, k3;
    bool distorted;
    double focal_px;      /* mean focal length: px per normalised unit on the axis */
    double inv_fx, inv_fy; /* 1 / fx, 1 / fy: multiplications in the per-observation path */
    double gate_scale;    /* largest undistorted px per raw px over the image (>= 1) */
    double raw_scale;     /* largest raw px per normalised unit over the image (bounds how far
                           * a projection moves in raw px when the point moves) */
    double row_min_px;    /* undistorted v of the first row of the index */
    int rows;             /* rows of the index */
    int row_base;         /* offset of this camera's rows in row_start */
    /* Undistortion start table: normalised (x, y) at raw pixels (LUT_STEP_PX * a - 0.5,
     * LUT_STEP_PX * b - 0.5), lut_cols x lut_rows nodes, at lut_base in the shared table
     * (none when the camera has no distortion or no image size). */
    int lut_cols, lut_rows, lut_base;
    /* Epipolar search window (plane angle) of each sin_beta class, for this camera as the
     * pair's second camera: asin(gate / bound) with the gate in normalised units. */
    double window[SIN_BETA_CLASS_COUNT];
} rec_camera;

/* An epipolar match of a pair, ranked by a quick support score before the full
 * evaluation, which only the candidates that get their turn pay for. */
typedef struct rec_candidate {
    int seed_a, seed_b;
    /* What the quick score found around the seeds' midpoint, for the full evaluation to
     * reuse (see evaluate_candidate): the nearest unused observation of each camera that
     * had one within gate_px (and its distance^2), and the cameras that had none. */
    double gate_px;
    uint64_t miss;                      /* bit c: camera c had none */
    int hits;
    int hit_obs[QUICK_SUPPORT_CAP];
    double hit_d2[QUICK_SUPPORT_CAP];
} rec_candidate;

/* One observation, undistorted: 64 bytes, what a lookup and a residual read. */
typedef struct rec_obs {
    double xn, yn;        /* normalised undistorted */
    double M[4];          /* d(u,v)/d(xn,yn) at the observation, row-major: raw px */
    double un, vn;        /* undistorted pixels (K applied to xn, yn) */
} rec_obs;

/* One view of a point being solved: its observation, its terms of the normal equations
 * and its reprojection error. */
typedef struct rec_view {
    int obs;
    double A[6];          /* its term of the ray least squares: w (I - d d^T), upper half */
    double b[3];          /* w (I - d d^T) c */
    double error_px;      /* reprojection error at the current point, raw px */
} rec_view;

struct km_reconstructor {
    km_reconstruct_config cfg;
    km_rig rig;           /* the camera models, for the rare undistortion fallback */
    int camera_count;
    rec_camera cams[KM_MAX_CAMERAS];
    int pair_count;
    rec_pair *pairs;

    /* Per observation of the current frame set (index = position in the set). */
    int obs_capacity;
    rec_obs *obs;         /* undistorted geometry */
    km_vec3 *ray;         /* unit world direction from the camera centre */
    int *camera;
    unsigned char *used;
    int *match_count;     /* epipolar partners in the pair being processed */
    double *phi;          /* plane angle around the current pair's baseline */
    int *beta_class;      /* class of the ray's angle to the current pair's baseline */
    km_vec3 *plane_in_i;  /* for obs of camera j: its epipolar plane normal in camera i */

    /* Observation indices grouped by camera (cam_start), and within a camera by row. */
    int cam_start[KM_MAX_CAMERAS + 1];
    int *by_camera;
    int *row_start;       /* per camera rows + 1 entries, at cams[c].row_base */
    /* Observations ordered by camera, then row: index and undistorted pixel position,
     * contiguous so that a lookup scans a few cache lines. */
    int *row_obs;
    double *row_u, *row_v;
    int *obs_slot;        /* per observation: its row of the index (row_base + row) */
    int row_total;
    /* Unused observations of each camera, compacted lazily (entries at cam_start[c]). */
    int *unused;
    int unused_count[KM_MAX_CAMERAS];

    /* Pair scratch. */
    int *list_a;
    int *sorted_b;
    double *sorted_b_phi;

    /* Candidates of one pair. */
    int candidate_capacity;
    rec_candidate *candidates;
    int *order;
    double *order_key;

    /* Noise estimate of the current frame (see NOISE_*). */
    double noise_px;
    bool noise_known;
    /* The last frame's estimate, the start of a frame with a prior (see build_from_prior). */
    double last_noise_px;
    bool last_noise_known;
    int residual_count;
    double *residual_sorted;  /* max_markers: mean residuals of well-seen markers */

    double *lut;          /* undistortion start tables of all cameras */

    /* Prior of the next run (km_reconstructor_set_prior). */
    km_vec3 *prior;
    int prior_count;
};

km_reconstruct_config km_reconstruct_config_default(void)
{
    km_reconstruct_config cfg = {
        .max_epipolar_px = 2.0,
        .max_residual_px = 2.0,
        .min_views = 2,
        .max_markers = 512,
        .max_observations = 8192,
        .prior_gate_m = 0.03,
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
    if (n < 16) {
        /* Insertion sort: most lists after the first pairs are this short. */
        for (int a = 1; a < n; a++) {
            const double k = keys[a];
            const int v = idx[a];
            int b = a - 1;
            while (b >= 0 && keys[b] > k) {
                keys[b + 1] = keys[b];
                idx[b + 1] = idx[b];
                b--;
            }
            keys[b + 1] = k;
            idx[b + 1] = v;
        }
        return;
    }
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

/* ------------------------------------------------------------- distortion */

/* Distortion of a normalised point and its 2x2 Jacobian d(xd,yd)/d(x,y), row-major. */
static inline void distort_with_jacobian(const rec_camera *cam, double x, double y, double *xd,
                                  double *yd, double *J)
{
    const double k1 = cam->k1, k2 = cam->k2, p1 = cam->p1, p2 = cam->p2, k3 = cam->k3;
    const double r2 = x * x + y * y;
    const double radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
    *xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x);
    *yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y;
    const double drad_dr2 = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2);
    const double drad_dx = 2.0 * x * drad_dr2, drad_dy = 2.0 * y * drad_dr2;
    J[0] = radial + x * drad_dx + 2.0 * p1 * y + 6.0 * p2 * x;
    J[1] = x * drad_dy + 2.0 * p1 * x + 2.0 * p2 * y;
    J[2] = y * drad_dx + 2.0 * p1 * x + 2.0 * p2 * y;
    J[3] = radial + y * drad_dy + 6.0 * p1 * y + 2.0 * p2 * x;
}

/* Raw pixel -> normalised undistorted point and M = d(u,v)/d(x,y) there. Newton from the
 * distorted point (quadratic convergence: 3-4 steps for real lenses); if it does not
 * converge, or lands where the model folds over (det <= 0), calib's robust iteration. */
static void undistort(const rec_camera *cam, const km_camera *model, double u, double v,
                      double *x_out, double *y_out, double *M)
{
    const double yd = (v - cam->cy) / cam->fy;
    const double xd = (u - cam->cx - cam->skew * yd) / cam->fx;
    double x = xd, y = yd, J[4] = {1, 0, 0, 1};
    if (cam->distorted) {
        /* Start from one fixed-point step of the radial part (error ~1e-3 for real lenses),
         * then Newton. Once a step is below 1e-8 the point is within ~1e-15 (quadratic
         * convergence), and the Jacobian of the last iterate serves for M. */
        const double r2d = xd * xd + yd * yd;
        const double rad = 1.0 + r2d * (cam->k1 + r2d * (cam->k2 + r2d * cam->k3));
        if (rad > 0.1) {
            x = xd / rad;
            y = yd / rad;
        }
        bool converged = false;
        for (int it = 0; it < 12; it++) {
            double fx_, fy_;
            distort_with_jacobian(cam, x, y, &fx_, &fy_, J);
            const double ex = fx_ - xd, ey = fy_ - yd;
            const double det = J[0] * J[3] - J[1] * J[2];
            if (!(det > 1e-9))
                break;
            const double dx = (J[3] * ex - J[1] * ey) / det, dy = (-J[2] * ex + J[0] * ey) / det;
            x -= dx;
            y -= dy;
            if (fabs(dx) + fabs(dy) < 1e-8) {
                converged = true;
                break;
            }
        }
        if (!converged || !isfinite(x) || !isfinite(y)) {
            double dxd, dyd;
            km_camera_undistort_point(model, u, v, &x, &y);
            distort_with_jacobian(cam, x, y, &dxd, &dyd, J);
        }
    }
    *x_out = x;
    *y_out = y;
    /* (u, v) = [fx skew; 0 fy] (xd, yd) + c */
    M[0] = cam->fx * J[0] + cam->skew * J[2];
    M[1] = cam->fx * J[1] + cam->skew * J[3];
    M[2] = cam->fy * J[2];
    M[3] = cam->fy * J[3];
}

/* undistort() for the per-frame path: table start, one Newton step. */
static inline void undistort_fast(const rec_camera *cam, const double *lut,
                                  const km_camera *model, double u, double v, double *x_out,
                                  double *y_out, double *M)
{
    if (!cam->distorted || cam->lut_cols == 0) {
        undistort(cam, model, u, v, x_out, y_out, M);
        return;
    }
    const double gx = (u + 0.5) * (1.0 / LUT_STEP_PX), gy = (v + 0.5) * (1.0 / LUT_STEP_PX);
    if (!(gx >= 0.0) || !(gy >= 0.0) || gx >= cam->lut_cols - 1 || gy >= cam->lut_rows - 1) {
        undistort(cam, model, u, v, x_out, y_out, M);
        return;
    }
    const int ix = (int)gx, iy = (int)gy;
    const double fx = gx - ix, fy = gy - iy;
    const double *n00 = lut + cam->lut_base + 2 * (iy * cam->lut_cols + ix);
    const double *n10 = n00 + 2, *n01 = n00 + 2 * cam->lut_cols, *n11 = n01 + 2;
    double x = (1.0 - fy) * ((1.0 - fx) * n00[0] + fx * n10[0]) +
               fy * ((1.0 - fx) * n01[0] + fx * n11[0]);
    double y = (1.0 - fy) * ((1.0 - fx) * n00[1] + fx * n10[1]) +
               fy * ((1.0 - fx) * n01[1] + fx * n11[1]);
    const double yd = (v - cam->cy) * cam->inv_fy;
    const double xd = (u - cam->cx - cam->skew * yd) * cam->inv_fx;
    double J[4], dxd, dyd;
    distort_with_jacobian(cam, x, y, &dxd, &dyd, J);
    const double ex = dxd - xd, ey = dyd - yd;
    const double det = J[0] * J[3] - J[1] * J[2];
    if (!(det > 1e-9)) {
        undistort(cam, model, u, v, x_out, y_out, M);
        return;
    }
    const double dx = (J[3] * ex - J[1] * ey) / det, dy = (-J[2] * ex + J[0] * ey) / det;
    if (!(fabs(dx) + fabs(dy) < LUT_NEWTON_MAX)) {
        undistort(cam, model, u, v, x_out, y_out, M);
        return;
    }
    x -= dx;
    y -= dy;
    *x_out = x;
    *y_out = y;
    M[0] = cam->fx * J[0] + cam->skew * J[2];
    M[1] = cam->fx * J[1] + cam->skew * J[3];
    M[2] = cam->fy * J[2];
    M[3] = cam->fy * J[3];
}

/* ------------------------------------------------------------ create/destroy */

void km_reconstructor_destroy(km_reconstructor *rec)
{
    if (!rec)
        return;
    free(rec->pairs);
    free(rec->obs);
    free(rec->ray);
    free(rec->camera);
    free(rec->used);
    free(rec->match_count);
    free(rec->phi);
    free(rec->beta_class);
    free(rec->plane_in_i);
    free(rec->by_camera);
    free(rec->row_start);
    free(rec->row_obs);
    free(rec->row_u);
    free(rec->row_v);
    free(rec->obs_slot);
    free(rec->unused);
    free(rec->list_a);
    free(rec->sorted_b);
    free(rec->sorted_b_phi);
    free(rec->candidates);
    free(rec->order);
    free(rec->order_key);
    free(rec->residual_sorted);
    free(rec->prior);
    free(rec->lut);
    free(rec);
}

static km_vec3 camera_axis(const km_camera *cam)
{
    /* Third row of R: the camera's +z (viewing direction) in world coordinates. */
    return km_vec3_make(cam->R.m[6], cam->R.m[7], cam->R.m[8]);
}

/* Derived camera data; the undistorted extent of the image (sampled along its border and
 * a coarse interior grid) sizes the row index and the gate scale. */
static void setup_camera(rec_camera *rc, const km_camera *cam)
{
    memcpy(rc->R, cam->R.m, sizeof rc->R);
    rc->t[0] = cam->t.x;
    rc->t[1] = cam->t.y;
    rc->t[2] = cam->t.z;
    rc->center = km_camera_center(cam);
    rc->fx = cam->K[0];
    rc->fy = cam->K[4];
    rc->cx = cam->K[2];
    rc->cy = cam->K[5];
    rc->skew = cam->K[1];
    rc->k1 = cam->dist[0];
    rc->k2 = cam->dist[1];
    rc->p1 = cam->dist[2];
    rc->p2 = cam->dist[3];
    rc->k3 = cam->dist[4];
    rc->distorted = rc->k1 != 0.0 || rc->k2 != 0.0 || rc->p1 != 0.0 || rc->p2 != 0.0 ||
                    rc->k3 != 0.0;
    rc->focal_px = 0.5 * (rc->fx + rc->fy);
    rc->inv_fx = 1.0 / rc->fx;
    rc->inv_fy = 1.0 / rc->fy;
    const double w = cam->width > 0 ? cam->width : 2.0 * rc->cx + 1.0;
    const double h = cam->height > 0 ? cam->height : 2.0 * rc->cy + 1.0;
    double vmin = INFINITY, vmax = -INFINITY, scale = 1.0, smax_all = rc->focal_px;
    const int steps = 16;
    for (int a = 0; a <= steps; a++) {
        for (int b = 0; b <= steps; b++) {
            const double u = -0.5 + w * a / steps, v = -0.5 + h * b / steps;
            double x, y, M[4];
            undistort(rc, cam, u, v, &x, &y, M);
            const double vn = rc->fy * y + rc->cy;
            if (isfinite(vn)) {
                vmin = fmin(vmin, vn);
                vmax = fmax(vmax, vn);
            }
            /* Smallest singular value of M relative to the focal length: how much a raw
             * pixel shrinks after undistortion. */
            const double a2 = M[0] * M[0] + M[1] * M[1] + M[2] * M[2] + M[3] * M[3];
            const double det = fabs(M[0] * M[3] - M[1] * M[2]);
            const double disc = sqrt(fmax(0.0, a2 * a2 - 4.0 * det * det));
            const double smin = sqrt(fmax(0.0, 0.5 * (a2 - disc)));
            const double smax = sqrt(fmax(0.0, 0.5 * (a2 + disc)));
            if (smin > 0.0 && isfinite(smin))
                scale = fmax(scale, rc->focal_px / smin);
            if (isfinite(smax))
                smax_all = fmax(smax_all, smax);
        }
    }
    if (!isfinite(vmin) || !isfinite(vmax)) {
        vmin = -0.5;
        vmax = h;
    }
    rc->gate_scale = fmin(scale * 1.05, 8.0);
    rc->raw_scale = smax_all * 1.05;
    rc->row_min_px = vmin;
    const double rows = ceil((vmax - vmin) / ROW_HEIGHT_PX) + 1.0;
    rc->rows = rows > MAX_ROWS_PER_CAMERA ? MAX_ROWS_PER_CAMERA : (int)rows;
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
        cfg->max_observations > MAX_OBSERVATIONS_LIMIT || !(cfg->prior_gate_m > 0.0) ||
        !isfinite(cfg->max_epipolar_px) || !isfinite(cfg->max_residual_px) ||
        !isfinite(cfg->prior_gate_m)) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "reconstruct: bad config (max_epipolar_px %g, max_residual_px %g, "
                        "min_views %d, max_markers %d, max_observations %d, prior_gate_m %g)",
                        cfg->max_epipolar_px, cfg->max_residual_px, cfg->min_views,
                        cfg->max_markers, cfg->max_observations, cfg->prior_gate_m);
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
    int row_total = 0;
    for (int c = 0; c < ncam; c++) {
        setup_camera(&rec->cams[c], &rig->cameras[c]);
        rec->cams[c].row_base = row_total;
        row_total += rec->cams[c].rows + 1;
    }
    rec->row_total = row_total;
    /* Undistortion tables. */
    int lut_total = 0;
    for (int c = 0; c < ncam; c++) {
        rec_camera *rc = &rec->cams[c];
        const km_camera *cam = &rig->cameras[c];
        rc->lut_cols = rc->lut_rows = 0;
        if (!rc->distorted || cam->width <= 0 || cam->height <= 0)
            continue;
        const int cols = (int)ceil((cam->width + 0.5) / LUT_STEP_PX) + 2;
        const int rows = (int)ceil((cam->height + 0.5) / LUT_STEP_PX) + 2;
        if ((long)cols * rows > LUT_MAX_NODES_PER_CAMERA)
            continue;
        rc->lut_cols = cols;
        rc->lut_rows = rows;
        rc->lut_base = lut_total;
        lut_total += 2 * cols * rows;
    }
    rec->lut = calloc((size_t)(lut_total > 0 ? lut_total : 1), sizeof(double));
    if (!rec->lut) {
        km_reconstructor_destroy(rec);
        *err = km_error(KM_ERR_NO_MEMORY, "reconstruct: out of memory");
        return NULL;
    }
    for (int c = 0; c < ncam; c++) {
        const rec_camera *rc = &rec->cams[c];
        for (int b = 0; b < rc->lut_rows; b++) {
            for (int a = 0; a < rc->lut_cols; a++) {
                double *node = rec->lut + rc->lut_base + 2 * (b * rc->lut_cols + a);
                double M[4];
                undistort(rc, &rig->cameras[c], LUT_STEP_PX * a - 0.5, LUT_STEP_PX * b - 0.5,
                          &node[0], &node[1], M);
            }
        }
    }

    for (int c = 0; c < ncam; c++) {
        rec_camera *rc = &rec->cams[c];
        const double gate_norm = cfg->max_epipolar_px * rc->gate_scale / rc->focal_px;
        for (int k = 0; k < SIN_BETA_CLASS_COUNT; k++)
            rc->window[k] = asin(fmin(1.0, gate_norm / sin_beta_class[k]));
    }
    rec->pair_count = ncam * (ncam - 1) / 2;
    const size_t nobs = (size_t)cfg->max_observations;
    rec->obs_capacity = cfg->max_observations;
    rec->candidate_capacity = CANDIDATES_PER_OBSERVATION * cfg->max_observations;
    const size_t ncand = (size_t)rec->candidate_capacity;
    rec->pairs = calloc((size_t)rec->pair_count, sizeof *rec->pairs);
    rec->obs = calloc(nobs, sizeof(rec_obs));
    rec->ray = calloc(nobs, sizeof(km_vec3));
    rec->camera = calloc(nobs, sizeof(int));
    rec->used = calloc(nobs, 1);
    rec->match_count = calloc(nobs, sizeof(int));
    rec->phi = calloc(nobs, sizeof(double));
    rec->beta_class = calloc(nobs, sizeof(int));
    rec->plane_in_i = calloc(nobs, sizeof(km_vec3));
    rec->by_camera = calloc(nobs, sizeof(int));
    rec->row_start = calloc((size_t)row_total + 1, sizeof(int));
    rec->row_obs = calloc(nobs, sizeof(int));
    rec->row_u = calloc(nobs, sizeof(double));
    rec->row_v = calloc(nobs, sizeof(double));
    rec->obs_slot = calloc(nobs, sizeof(int));
    rec->unused = calloc(nobs, sizeof(int));
    rec->list_a = calloc(nobs, sizeof(int));
    rec->sorted_b = calloc(nobs, sizeof(int));
    rec->sorted_b_phi = calloc(nobs, sizeof(double));
    rec->candidates = calloc(ncand, sizeof(rec_candidate));
    rec->order = calloc(ncand, sizeof(int));
    rec->order_key = calloc(ncand, sizeof(double));
    rec->residual_sorted = calloc((size_t)cfg->max_markers, sizeof(double));
    rec->prior = calloc((size_t)cfg->max_markers, sizeof(km_vec3));
    if (!rec->pairs || !rec->obs || !rec->row_u || !rec->row_v || !rec->obs_slot || !rec->ray ||
        !rec->camera || !rec->used || !rec->match_count || !rec->phi || !rec->beta_class ||
        !rec->plane_in_i || !rec->by_camera || !rec->row_start || !rec->row_obs ||
        !rec->unused || !rec->list_a || !rec->sorted_b || !rec->sorted_b_phi ||
        !rec->candidates || !rec->order || !rec->order_key ||
        !rec->residual_sorted || !rec->prior) {
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
            double c = km_vec3_dot(camera_axis(&rig->cameras[i]),
                                   camera_axis(&rig->cameras[j]));
            pair->score = sqrt(fmax(0.0, 1.0 - c * c));
            km_vec3 b = km_vec3_sub(rec->cams[j].center, rec->cams[i].center);
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

km_status km_reconstructor_set_prior(km_reconstructor *rec, const km_marker_set *predicted)
{
    if (!rec)
        return km_error(KM_ERR_INVALID_ARGUMENT, "reconstruct: NULL reconstructor");
    rec->prior_count = 0;
    if (!predicted || predicted->count <= 0)
        return KM_OK;
    if (!predicted->items)
        return km_error(KM_ERR_INVALID_ARGUMENT, "reconstruct: prior without items");
    int n = 0;
    for (int k = 0; k < predicted->count && n < rec->cfg.max_markers; k++) {
        const km_vec3 p = predicted->items[k].pos_m;
        if (isfinite(p.x) && isfinite(p.y) && isfinite(p.z))
            rec->prior[n++] = p;
    }
    rec->prior_count = n;
    if (predicted->count > rec->cfg.max_markers)
        return km_error(KM_ERR_CAPACITY, "reconstruct: prior of %d markers, max_markers is %d",
                        predicted->count, rec->cfg.max_markers);
    return KM_OK;
}

/* ------------------------------------------------------------- per frame */

static int row_of(const rec_camera *cam, double vn)
{
    const double r = (vn - cam->row_min_px) * (1.0 / ROW_HEIGHT_PX);
    if (!(r > 0.0))
        return 0;
    if (r >= cam->rows - 1)
        return cam->rows - 1;
    return (int)r;
}

/* Check the observations, undistort each one and index them by camera and row. One pass
 * over the observations does the per-observation work (the checks, undistortion, ray, row,
 * counts); a failed check leaves only scratch behind, which the next frame overwrites. */
static km_status prepare(km_reconstructor *rec, const km_observation_set *obs)
{
    const int n = obs->count;
    int counts[KM_MAX_CAMERAS] = {0};
    memset(rec->row_start, 0, ((size_t)rec->row_total + 1) * sizeof *rec->row_start);
    for (int k = 0; k < n; k++) {
        const km_observation *o = &obs->items[k];
        const int c = o->camera;
        if (c < 0 || c >= rec->camera_count)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "reconstruct: frame %llu: observation %d has camera %d, the rig has %d",
                            (unsigned long long)obs->frame, k, c, rec->camera_count);
        if (!isfinite(o->x) || !isfinite(o->y))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "reconstruct: frame %llu: observation %d is not finite",
                            (unsigned long long)obs->frame, k);
        const rec_camera *cam = &rec->cams[c];
        double x, y;
        rec_obs *ob = &rec->obs[k];
        undistort_fast(cam, rec->lut, &rec->rig.cameras[c], o->x, o->y, &x, &y, ob->M);
        ob->xn = x;
        ob->yn = y;
        ob->un = cam->fx * x + cam->skew * y + cam->cx;
        ob->vn = cam->fy * y + cam->cy;
        rec->camera[k] = c;
        rec->used[k] = 0;
        /* World ray: R^T (x, y, 1). */
        const double *R = cam->R;
        const double dx = R[0] * x + R[3] * y + R[6], dy = R[1] * x + R[4] * y + R[7],
                     dz = R[2] * x + R[5] * y + R[8];
        const double inv = 1.0 / sqrt(dx * dx + dy * dy + dz * dz);
        km_vec3 *ray = &rec->ray[k];
        ray->x = dx * inv;
        ray->y = dy * inv;
        ray->z = dz * inv;
        const int slot = cam->row_base + row_of(cam, ob->vn);
        rec->obs_slot[k] = slot;
        rec->row_start[slot + 1]++;
        counts[c]++;
    }
    rec->cam_start[0] = 0;
    for (int c = 0; c < rec->camera_count; c++)
        rec->cam_start[c + 1] = rec->cam_start[c] + counts[c];
    int fill[KM_MAX_CAMERAS];
    for (int c = 0; c < rec->camera_count; c++) {
        fill[c] = rec->cam_start[c];
        rec->unused_count[c] = counts[c];
    }
    for (int k = 0; k < n; k++) {
        const int pos = fill[rec->camera[k]]++;
        rec->by_camera[pos] = k;
        rec->unused[pos] = k;
    }
    /* Row index: counting sort of each camera's observations by row. Prefix sums over all
     * cameras' rows at once: camera c's rows start after the rows of cameras < c, whose
     * observations come first in row_obs. */
    for (int r = 0; r < rec->row_total; r++)
        rec->row_start[r + 1] += rec->row_start[r];
    for (int k = 0; k < n; k++) {
        const int pos = rec->row_start[rec->obs_slot[k]]++;
        rec->row_obs[pos] = k;
        rec->row_u[pos] = rec->obs[k].un;
        rec->row_v[pos] = rec->obs[k].vn;
    }
    /* The fill moved each row's start to its end (the next row's start): shift back. */
    for (int r = rec->row_total; r > 0; r--)
        rec->row_start[r] = rec->row_start[r - 1];
    rec->row_start[0] = 0;
    return KM_OK;
}

/* Project X into camera c: normalised (x, y); false when behind the camera. */
static inline bool project_normalized(const rec_camera *cam, km_vec3 X, double *x, double *y,
                                      double *Xc)
{
    const double *R = cam->R;
    const double cx = R[0] * X.x + R[1] * X.y + R[2] * X.z + cam->t[0];
    const double cy = R[3] * X.x + R[4] * X.y + R[5] * X.z + cam->t[1];
    const double cz = R[6] * X.x + R[7] * X.y + R[8] * X.z + cam->t[2];
    if (!(cz > KM_TRI_MIN_DEPTH_M))
        return false;
    const double iz = 1.0 / cz;
    *x = cx * iz;
    *y = cy * iz;
    if (Xc) {
        Xc[0] = cx;
        Xc[1] = cy;
        Xc[2] = cz;
    }
    return true;
}

/* Raw-pixel distance^2 between observation k and the normalised point (x, y). */
static inline double pixel_dist2(const km_reconstructor *rec, int k, double x, double y)
{
    const rec_obs *ob = &rec->obs[k];
    const double *M = ob->M;
    const double dx = x - ob->xn, dy = y - ob->yn;
    const double du = M[0] * dx + M[1] * dy, dv = M[2] * dx + M[3] * dy;
    return du * du + dv * dv;
}

/* Nearest unused observation of camera c within gate_px (raw pixels) of where X projects;
 * -1 if none. *dist2 receives its squared distance in px^2. */
static inline int nearest_unused_at(const km_reconstructor *rec, int c, double x, double y,
                                    double gate_px, double *dist2);

static int nearest_unused(const km_reconstructor *rec, int c, km_vec3 X, double gate_px,
                          double *dist2)
{
    const rec_camera *cam = &rec->cams[c];
    if (rec->unused_count[c] == 0)
        return -1;
    double x, y;
    if (!project_normalized(cam, X, &x, &y, NULL))
        return -1;
    return nearest_unused_at(rec, c, x, y, gate_px, dist2);
}

/* The same around the normalised point (x, y) of camera c (X projected already). */
static inline int nearest_unused_at(const km_reconstructor *rec, int c, double x, double y,
                             double gate_px, double *dist2)
{
    const rec_camera *cam = &rec->cams[c];
    if (rec->unused_count[c] == 0)
        return -1;
    const double pu = cam->fx * x + cam->skew * y + cam->cx, pv = cam->fy * y + cam->cy;
    const double gate_n = gate_px * cam->gate_scale; /* in undistorted px */
    /* Rows of the gate, in row units from the first row; the gate must overlap the index
     * (this also rejects NaN). */
    const double lo = (pv - gate_n - cam->row_min_px) * (1.0 / ROW_HEIGHT_PX);
    const double hi = (pv + gate_n - cam->row_min_px) * (1.0 / ROW_HEIGHT_PX);
    if (!(hi >= 0.0) || !(lo <= cam->rows))
        return -1;
    const int last = cam->rows - 1;
    const int r0 = lo > 0.0 ? (lo >= last ? last : (int)lo) : 0;
    const int r1 = hi >= last ? last : (int)hi;
    const int *row_start = rec->row_start + cam->row_base;
    const int from = row_start[r0], to = row_start[r1 + 1];
    int best = -1;
    double best_d2 = gate_px * gate_px;
    for (int pos = from; pos < to; pos++) {
        if (fabs(rec->row_u[pos] - pu) > gate_n || fabs(rec->row_v[pos] - pv) > gate_n)
            continue;
        const int k = rec->row_obs[pos];
        if (rec->used[k])
            continue;
        const double d2 = pixel_dist2(rec, k, x, y);
        if (d2 <= best_d2) {
            best_d2 = d2;
            best = k;
        }
    }
    *dist2 = best_d2;
    return best;
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

/* Reprojection error of observation k at X in raw pixels (M applied to the normalised
 * difference); INFINITY behind the camera. */
static inline double view_error_px(const km_reconstructor *rec, int k, km_vec3 X)
{
    const rec_camera *cam = &rec->cams[rec->camera[k]];
    double x, y;
    if (!project_normalized(cam, X, &x, &y, NULL))
        return INFINITY;
    return sqrt(pixel_dist2(rec, k, x, y));
}

/* The point: least squares over the views' rays, each term weighted so that it approximates
 * a squared reprojection error in raw pixels. A point at perpendicular distance p from a ray
 * at distance r along it, depth z in that camera, is off by about p r / z^2 in the normalised
 * image (exact on the axis, and the 1/cos^2 of the radial direction off it), and s = sqrt(det
 * M) raw pixels per normalised unit there: w = (s r / z^2)^2, from the current estimate X0.
 * Closed form, so the leave-one-out point of each view is one 3x3 solve with its term taken
 * out. Against Gauss–Newton on the exact reprojection error it differs by well under a
 * percent of the noise-driven error (measured: RMS 0.5305 vs 0.5302 mm on the fixture) and
 * costs a third. The views get their terms and errors; A and b the sums. */
static bool solve_views(const km_reconstructor *rec, rec_view *views, int n, km_vec3 X0,
                        km_vec3 *X, double *residual, double *A, double *b)
{
    double a00 = 0, a01 = 0, a02 = 0, a11 = 0, a12 = 0, a22 = 0, b0 = 0, b1 = 0, b2 = 0;
    for (int v = 0; v < n; v++) {
        rec_view *vw = &views[v];
        const int k = vw->obs;
        const rec_camera *cam = &rec->cams[rec->camera[k]];
        const km_vec3 d = rec->ray[k], c = cam->center;
        const double ox = X0.x - c.x, oy = X0.y - c.y, oz = X0.z - c.z;
        const double r = d.x * ox + d.y * oy + d.z * oz;
        const double z = cam->R[6] * ox + cam->R[7] * oy + cam->R[8] * oz;
        if (!(r > KM_TRI_MIN_DEPTH_M) || !(z > KM_TRI_MIN_DEPTH_M))
            return false;
        const double *M = rec->obs[k].M;
        const double s2 = fabs(M[0] * M[3] - M[1] * M[2]);
        const double q = r / (z * z);
        const double w = s2 * q * q;
        double *Ak = vw->A;
        Ak[0] = w * (1.0 - d.x * d.x);
        Ak[1] = -w * d.x * d.y;
        Ak[2] = -w * d.x * d.z;
        Ak[3] = w * (1.0 - d.y * d.y);
        Ak[4] = -w * d.y * d.z;
        Ak[5] = w * (1.0 - d.z * d.z);
        vw->b[0] = Ak[0] * c.x + Ak[1] * c.y + Ak[2] * c.z;
        vw->b[1] = Ak[1] * c.x + Ak[3] * c.y + Ak[4] * c.z;
        vw->b[2] = Ak[2] * c.x + Ak[4] * c.y + Ak[5] * c.z;
        a00 += Ak[0];
        a01 += Ak[1];
        a02 += Ak[2];
        a11 += Ak[3];
        a12 += Ak[4];
        a22 += Ak[5];
        b0 += vw->b[0];
        b1 += vw->b[1];
        b2 += vw->b[2];
    }
    A[0] = a00; A[1] = a01; A[2] = a02;
    A[3] = a01; A[4] = a11; A[5] = a12;
    A[6] = a02; A[7] = a12; A[8] = a22;
    b[0] = b0;
    b[1] = b1;
    b[2] = b2;
    double x[3];
    if (!km_tri_solve3_spd(A, b, x))
        return false;
    const km_vec3 P = km_vec3_make(x[0], x[1], x[2]);
    double sum = 0.0;
    for (int v = 0; v < n; v++) {
        const double e = view_error_px(rec, views[v].obs, P);
        if (!isfinite(e))
            return false;
        views[v].error_px = e;
        sum += e;
    }
    *X = P;
    *residual = sum / n;
    return true;
}

/* Median of values[0..n) (n <= KM_MAX_CAMERAS), without touching the input: Hoare's
 * selection on a copy (linear on average; an insertion sort of 20 values cost more than
 * the rest of a candidate's outlier test). */
static double select_kth(double *a, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        const double pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                const double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

static double median_of(const double *values, int n)
{
    double tmp[KM_MAX_CAMERAS];
    if (n <= 0)
        return 0.0;
    memcpy(tmp, values, (size_t)n * sizeof *tmp);
    const double upper = select_kth(tmp, n, n / 2);
    if (n % 2)
        return upper;
    /* The lower middle is the largest of the values left of n/2 after the selection. */
    double lower = tmp[0];
    for (int k = 1; k < n / 2; k++)
        if (tmp[k] > lower)
            lower = tmp[k];
    return 0.5 * (lower + upper);
}

/* Median of values[0..n) (n >= 2) and, from the same selection, the median of the values
 * without one of their largest: with e sorted, that is e[n/2 - 1] for even n and the mean
 * of e[n/2 - 1] and e[n/2] for odd n, the same numbers median_of would return. */
static void median_pair(const double *values, int n, double *median, double *median_wo_max)
{
    double tmp[KM_MAX_CAMERAS];
    memcpy(tmp, values, (size_t)n * sizeof *tmp);
    const double upper = select_kth(tmp, n, n / 2);
    double lower = tmp[0];
    for (int k = 1; k < n / 2; k++)
        if (tmp[k] > lower)
            lower = tmp[k];
    if (n % 2) {
        *median = upper;
        *median_wo_max = 0.5 * (lower + upper);
    } else {
        *median = 0.5 * (lower + upper);
        *median_wo_max = lower;
    }
}

/* Support search radius around a two-view point, raw px. */
static double wide_gate(const km_reconstructor *rec)
{
    const double wide = SUPPORT_GATE_WIDE * rec->cfg.max_residual_px;
    return rec->noise_known ? fmin(wide, SUPPORT_GATE_NOISE * rec->noise_px) : wide;
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
    if (views < NOISE_MIN_VIEWS || rec->residual_count >= rec->cfg.max_markers ||
        rec->residual_count >= NOISE_MAX_MARKERS)
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

/* The outlier threshold of a view set: from the median of its views' errors. */
static double views_threshold(const km_reconstructor *rec, const rec_view *views, int n)
{
    double errors[KM_MAX_CAMERAS];
    for (int k = 0; k < n; k++)
        errors[k] = views[k].error_px;
    return outlier_threshold(rec, median_of(errors, n));
}

/* Drop outlier views one at a time, the worst first. The worst view is judged by its
 * leave-one-out error: its distance to the point solved without it, against the threshold
 * from the other views' errors. A wrong view pulls the point towards itself and inflates
 * everybody's error, so its in-sample error can look acceptable; without it the others
 * agree again and it stands out. The leave-one-out point is one 3x3 solve with the view's
 * term taken out of the normal equations. The others' errors there are computed when they
 * are few (where one wrong view moves the median); with many views the median of their
 * current errors is the same within noise and saves the projections. Returns the view
 * count (0 when a solve fails); *threshold_px receives the outlier threshold of the final
 * view set, or NAN when the test ended without needing it (every view well below the
 * floor, or the worst view's leave-one-out error within the floor, which every threshold
 * allows): views_threshold computes it then, when the caller needs it at all. */
static int reject_outliers(const km_reconstructor *rec, rec_view *views, int n,
                           bool *has_camera, km_vec3 *X, double *residual, double *A,
                           double *b, double *threshold_px)
{
    const double floor_px = outlier_floor(rec);
    for (;;) {
        double errors[KM_MAX_CAMERAS];
        for (int k = 0; k < n; k++)
            errors[k] = views[k].error_px;
        if (n <= 2) {
            *threshold_px = outlier_threshold(rec, median_of(errors, n));
            return n;
        }
        int worst = 0;
        for (int k = 1; k < n; k++)
            if (errors[k] > errors[worst])
                worst = k;
        /* A leave-one-out error is at most about twice the in-sample one for a view that
         * fits: below half the floor nothing can be an outlier. The threshold is left to
         * the caller (NAN: views_threshold when it needs it; most callers do not). */
        if (errors[worst] <= 0.5 * floor_px) {
            *threshold_px = NAN;
            return n;
        }
        const rec_view *w = &views[worst];
        const double *Ak = w->A;
        const double Ao[9] = {A[0] - Ak[0], A[1] - Ak[1], A[2] - Ak[2],
                              A[3] - Ak[1], A[4] - Ak[3], A[5] - Ak[4],
                              A[6] - Ak[2], A[7] - Ak[4], A[8] - Ak[5]};
        const double bo[3] = {b[0] - w->b[0], b[1] - w->b[1], b[2] - w->b[2]};
        double y[3];
        *threshold_px = NAN;
        if (!km_tri_solve3_spd(Ao, bo, y))
            return n; /* the others alone are degenerate: keep the view */
        const km_vec3 Y = km_vec3_make(y[0], y[1], y[2]);
        const double loo = view_error_px(rec, w->obs, Y);
        /* Every threshold is at least the floor: within it the view stays, whatever the
         * median (which is then left to the caller, as above). */
        if (!(loo > floor_px))
            return n;
        /* The median without the worst view serves the many-view test below. */
        double median_all, median_wo_worst;
        median_pair(errors, n, &median_all, &median_wo_worst);
        *threshold_px = outlier_threshold(rec, median_all);
        double others_median = median_wo_worst;
        if (n <= LOO_EXACT_MAX_VIEWS) {
            double others[KM_MAX_CAMERAS];
            int m = 0;
            for (int k = 0; k < n; k++)
                if (k != worst)
                    others[m++] = view_error_px(rec, views[k].obs, Y);
            others_median = median_of(others, m);
        }
        if (!(loo > outlier_threshold(rec, others_median)))
            return n;
        has_camera[rec->camera[w->obs]] = false;
        views[worst] = views[n - 1];
        n--;
        /* The rest, weighted from the leave-one-out point. */
        if (!solve_views(rec, views, n, Y, X, residual, A, b))
            return 0;
    }
}

/* Quick support score of a two-view seed, to rank the seeds of a pair before the full
 * evaluation: the rays' midpoint is reprojected into the other cameras and the nearest
 * unused observation within the wide gate adds 1 / (1 + (d / s)^2), s the outlier floor.
 * A soft count: a true match's point lands within a fraction of a pixel of its other views
 * and scores near 1 a camera, while a false match that happens to pass near another marker
 * lands a pixel or more away and scores little, so it cannot outrank the true one by
 * catching one more observation in the wide gate. Stops after QUICK_SUPPORT_CAP supports.
 * *count gets the hard count. Returns false when the rays do not meet in front of both
 * cameras. */
static bool quick_support(const km_reconstructor *rec, rec_candidate *cand, int *count,
                          double *score)
{
    const int a = cand->seed_a, b = cand->seed_b;
    km_vec3 X;
    const int ca = rec->camera[a], cb = rec->camera[b];
    if (!ray_midpoint(rec->cams[ca].center, rec->ray[a], rec->cams[cb].center, rec->ray[b], &X))
        return false;
    const double gate = wide_gate(rec);
    const double s = outlier_floor(rec);
    const double inv_s2 = 1.0 / (s * s);
    int n = 0, misses = 0;
    double sum = 0.0;
    cand->gate_px = gate;
    cand->miss = 0;
    cand->hits = 0;
    /* Cameras from the one after cb on, so that pairs do not all ask the same few. */
    const int ncam = rec->camera_count;
    for (int t = 1; t < ncam && n < QUICK_SUPPORT_CAP && misses < QUICK_MISS_CAP + 2 * n; t++) {
        const int c = (cb + t) % ncam;
        if (c == ca)
            continue;
        double d2;
        const int k = nearest_unused(rec, c, X, gate, &d2);
        if (k >= 0) {
            cand->hit_obs[n] = k;
            cand->hit_d2[n] = d2;
            n++;
            sum += 1.0 / (1.0 + d2 * inv_s2);
        } else {
            cand->miss |= (uint64_t)1 << c;
            misses++;
        }
    }
    cand->hits = n;
    *count = n;
    *score = sum;
    return true;
}

/* Build a marker from the seed observations a and b:
 * 1. the rays' midpoint, reprojected into every other camera, finds the nearest unused
 *    observation within the wide gate;
 * 2. of those, only the ones within the outlier threshold of the median distance are kept:
 *    judged against the two-view point, which the candidates have not pulled yet (a
 *    neighbouring marker taken where the true one is occluded would otherwise drag the
 *    point and hide among inflated errors);
 * 3. solve on all kept views, drop outliers, then gather once more around the solved
 *    point with the tight threshold.
 * obs_out (capacity camera_count) receives the observation indices; returns the view count
 * (0 = failed). */
static int evaluate_candidate(const km_reconstructor *rec, const rec_candidate *cand,
                              int *obs_out, km_vec3 *X_out, double *residual_out)
{
    const int a = cand->seed_a, b = cand->seed_b;
    km_vec3 X;
    const int ca = rec->camera[a], cb = rec->camera[b];
    if (!ray_midpoint(rec->cams[ca].center, rec->ray[a], rec->cams[cb].center, rec->ray[b], &X))
        return 0;
    bool has_camera[KM_MAX_CAMERAS] = {false};
    rec_view views[KM_MAX_CAMERAS];
    int n = 0;
    views[n++].obs = a;
    views[n++].obs = b;
    has_camera[ca] = true;
    has_camera[cb] = true;
    double residual = 0.0, threshold = 0.0, d2, A[9], rhs[3];

    int found[KM_MAX_CAMERAS];
    double dist[KM_MAX_CAMERAS];
    int nfound = 0;
    const double wide = wide_gate(rec);
    /* The quick score's lookups around the same point still hold where they can: since
     * then observations only became used, so a camera that had none within a gate at least
     * as wide has none now, and a nearest observation still unused is still the nearest
     * (any nearer one would have been found then). Its distance is the same number. */
    int quick_of[KM_MAX_CAMERAS];
    for (int c = 0; c < rec->camera_count; c++)
        quick_of[c] = -1;
    for (int h = 0; h < cand->hits; h++)
        if (!rec->used[cand->hit_obs[h]])
            quick_of[rec->camera[cand->hit_obs[h]]] = h;
    const uint64_t miss = wide <= cand->gate_px ? cand->miss : 0;
    const double wide2 = wide * wide;
    for (int c = 0; c < rec->camera_count; c++) {
        if (has_camera[c] || (miss >> c & 1))
            continue;
        int k;
        if (quick_of[c] >= 0) {
            d2 = cand->hit_d2[quick_of[c]];
            k = d2 <= wide2 ? cand->hit_obs[quick_of[c]] : -1;
        } else {
            k = nearest_unused(rec, c, X, wide, &d2);
        }
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
                views[n++].obs = found[f];
                has_camera[rec->camera[found[f]]] = true;
            }
        }
    }
    if (!solve_views(rec, views, n, X, &X, &residual, A, rhs))
        return 0;
    n = reject_outliers(rec, views, n, has_camera, &X, &residual, A, rhs, &threshold);
    if (n == 0)
        return 0;
    if (isnan(threshold) && n < rec->camera_count)
        threshold = views_threshold(rec, views, n);

    int added = 0;
    for (int c = 0; c < rec->camera_count; c++) {
        if (has_camera[c])
            continue;
        int k = nearest_unused(rec, c, X, threshold, &d2);
        if (k >= 0) {
            views[n++].obs = k;
            has_camera[c] = true;
            added++;
        }
    }
    if (added > 0) {
        if (!solve_views(rec, views, n, X, &X, &residual, A, rhs))
            return 0;
        n = reject_outliers(rec, views, n, has_camera, &X, &residual, A, rhs, &threshold);
        if (n == 0)
            return 0;
    }
    for (int k = 0; k < n; k++)
        obs_out[k] = views[k].obs;
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
    for (int k = 0; k < n; k++) {
        rec->used[views[k]] = 1;
    }
    update_noise(rec, n, residual);
    km_marker *m = &st->out->items[st->out->count];
    m->id = (uint32_t)st->out->count;
    m->pos_m = X;
    m->residual_px = residual;
    m->views = n;
    st->out->count++;
}

/* Epipolar distances of the pair (a in camera i, b in camera j), both images, in raw px
 * (the normalised line distance scaled by M along the line's normal). */
static double epipolar_distance_px(const km_reconstructor *rec, int a, km_vec3 plane_a_in_j,
                                   int b)
{
    const double nj = sqrt(plane_a_in_j.x * plane_a_in_j.x + plane_a_in_j.y * plane_a_in_j.y);
    const km_vec3 pi = rec->plane_in_i[b];
    const double ni = sqrt(pi.x * pi.x + pi.y * pi.y);
    if (!(nj > 0.0) || !(ni > 0.0))
        return INFINITY;
    const rec_obs *oa = &rec->obs[a], *ob = &rec->obs[b];
    const double *Mb = ob->M, *Ma = oa->M;
    const double dj = (plane_a_in_j.x * ob->xn + plane_a_in_j.y * ob->yn + plane_a_in_j.z) / nj;
    const double di = (pi.x * oa->xn + pi.y * oa->yn + pi.z) / ni;
    /* The offset from the line, dj * normal, in raw pixels. */
    const double nxj = plane_a_in_j.x / nj, nyj = plane_a_in_j.y / nj;
    const double nxi = pi.x / ni, nyi = pi.y / ni;
    const double sju = Mb[0] * nxj + Mb[1] * nyj, sjv = Mb[2] * nxj + Mb[3] * nyj;
    const double siu = Ma[0] * nxi + Ma[1] * nyi, siv = Ma[2] * nxi + Ma[3] * nyi;
    const double sj = sqrt(sju * sju + sjv * sjv), si = sqrt(siu * siu + siv * siv);
    return fmax(fabs(dj) * sj, fabs(di) * si);
}

/* Normal of the epipolar plane through the baseline and a ray, in camera c's frame. */
static km_vec3 plane_normal_in(const km_reconstructor *rec, const rec_pair *pair, km_vec3 ray,
                               int c)
{
    const km_vec3 n = km_vec3_cross(pair->b, ray);
    const double *R = rec->cams[c].R;
    return km_vec3_make(R[0] * n.x + R[1] * n.y + R[2] * n.z, R[3] * n.x + R[4] * n.y + R[5] * n.z,
                        R[6] * n.x + R[7] * n.y + R[8] * n.z);
}

/* Drop used observations from camera c's unused list; returns its length. */
static int compact_unused(km_reconstructor *rec, int c)
{
    int *list = rec->unused + rec->cam_start[c];
    int n = 0;
    for (int k = 0; k < rec->unused_count[c]; k++)
        if (!rec->used[list[k]])
            list[n++] = list[k];
    rec->unused_count[c] = n;
    return n;
}

/* A two-view point (seeds a, b) passes when (the caller has checked the residual):
 * - each seed has exactly one epipolar partner among the other camera's unused
 *   observations within TWO_VIEW_UNIQUE_GATE x max_epipolar_px (a reflection on the line of
 *   a real marker's leftover view is the typical ghost; with a second partner nearby one of
 *   the two is wrong and nothing tells which);
 * - no marker of the frame is within MIN_SEPARATION_M (leftover views of one marker);
 * - with a prior: some predicted position within prior_gate_m that no marker of the frame
 *   is nearer to (a marker that was tracked and lost views);
 * - without a prior: TWO_VIEW_MIN_NEIGHBOURS well-seen markers nearby (on a body), when the
 *   frame has that many well-seen markers at all. */
static bool accept_two_view(const km_reconstructor *rec, const rec_pair *pair, int a, int b,
                            km_vec3 X, const km_marker_set *out)
{
    const double wide = TWO_VIEW_UNIQUE_GATE * rec->cfg.max_epipolar_px;
    const int i = pair->i, j = pair->j;
    const km_vec3 plane_a = plane_normal_in(rec, pair, rec->ray[a], j);
    const int *list_j = rec->unused + rec->cam_start[j];
    for (int k = 0; k < rec->unused_count[j]; k++) {
        const int o = list_j[k];
        if (o != b && !rec->used[o] && epipolar_distance_px(rec, a, plane_a, o) <= wide)
            return false;
    }
    /* b's partners in camera i: the same test with the roles swapped (plane of b in i is
     * plane_in_i[b]; the plane of each observation of i in j is needed for the other
     * image's distance). */
    const int *list_i = rec->unused + rec->cam_start[i];
    for (int k = 0; k < rec->unused_count[i]; k++) {
        const int o = list_i[k];
        if (o == a || rec->used[o])
            continue;
        const km_vec3 plane_o = plane_normal_in(rec, pair, rec->ray[o], j);
        if (epipolar_distance_px(rec, o, plane_o, b) <= wide)
            return false;
    }
    const double sep2 = MIN_SEPARATION_M * MIN_SEPARATION_M;
    const double near2 = TWO_VIEW_NEIGHBOUR_RADIUS_M * TWO_VIEW_NEIGHBOUR_RADIUS_M;
    int neighbours = 0, well_seen = 0;
    for (int m = 0; m < out->count; m++) {
        const double d2 = dist2(out->items[m].pos_m, X);
        if (d2 < sep2)
            return false;
        if (out->items[m].views >= 3) {
            well_seen++;
            if (d2 < near2)
                neighbours++;
        }
    }
    if (rec->prior_count > 0) {
        const double gate = rec->cfg.prior_gate_m, gate2 = gate * gate;
        for (int p = 0; p < rec->prior_count; p++) {
            const km_vec3 P = rec->prior[p];
            const double d2 = dist2(P, X);
            if (d2 > gate2)
                continue;
            bool explained = false;
            for (int m = 0; m < out->count && !explained; m++)
                explained = dist2(out->items[m].pos_m, P) < d2;
            if (!explained)
                return true;
        }
        return false;
    }
    /* A frame without well-seen markers (a stereo pair, a sparse rig) has nothing to hold
     * a two-view point against: uniqueness must do. */
    return neighbours >= TWO_VIEW_MIN_NEIGHBOURS || well_seen < TWO_VIEW_MIN_NEIGHBOURS;
}

/* Is an accepted marker within MIN_SEPARATION_M of X? */
static bool near_marker(const km_marker_set *out, km_vec3 X)
{
    const double sep2 = MIN_SEPARATION_M * MIN_SEPARATION_M;
    for (int m = 0; m < out->count; m++)
        if (dist2(out->items[m].pos_m, X) < sep2)
            return true;
    return false;
}

static void rank_and_accept(km_reconstructor *rec, const rec_pair *pair, int min_views,
                            run_state *st, int ncand);

/* Observations a (camera i) and b (camera j) within the epipolar gate count as a match for
 * both and become a candidate seed (counted as dropped when the candidates are full).
 * Returns the new candidate count. Shared by the brute-force and the indexed search. */
static inline int consider_pair(km_reconstructor *rec, run_state *st, int a, km_vec3 plane_a,
                                int b, int ncand)
{
    if (epipolar_distance_px(rec, a, plane_a, b) > rec->cfg.max_epipolar_px)
        return ncand;
    rec->match_count[a]++;
    rec->match_count[b]++;
    if (ncand >= rec->candidate_capacity) {
        st->seeds_dropped++;
        return ncand;
    }
    rec->candidates[ncand].seed_a = a;
    rec->candidates[ncand].seed_b = b;
    return ncand + 1;
}

/* All epipolar matches between unused observations of the pair, then candidates, then
 * greedy acceptance of those with at least min_views views. */
static void process_pair(km_reconstructor *rec, const rec_pair *pair, int min_views,
                         run_state *st)
{
    const int i = pair->i, j = pair->j;
    const int na = compact_unused(rec, i);
    if (na == 0)
        return;
    const int nb_all = compact_unused(rec, j);
    if (nb_all == 0)
        return;
    const int *list_a = rec->unused + rec->cam_start[i];
    const int *list_j = rec->unused + rec->cam_start[j];
    int ncand = 0;
    if (na * nb_all <= BRUTE_FORCE_PAIRS) {
        /* Few observations left (the usual case once the predicted markers are built): every
         * pair is tested, which costs less than sorting by plane angle. Same test, same
         * matches. */
        for (int pos = 0; pos < nb_all; pos++) {
            const int k = list_j[pos];
            rec->plane_in_i[k] = plane_normal_in(rec, pair, rec->ray[k], i);
            rec->match_count[k] = 0;
        }
        for (int ia = 0; ia < na; ia++) {
            const int a = list_a[ia];
            const km_vec3 plane_a = plane_normal_in(rec, pair, rec->ray[a], j);
            rec->match_count[a] = 0;
            for (int pos = 0; pos < nb_all; pos++) {
                ncand = consider_pair(rec, st, a, plane_a, list_j[pos], ncand);
            }
        }
        rank_and_accept(rec, pair, min_views, st, ncand);
        return;
    }
    /* Camera j's observations by class of sin_beta (sin_beta_class, then the ones near the
     * epipole), each class sorted by phi: the phi window that can hold a match is
     * asin(gate / sin_beta), narrow for most rays and wide only near the epipole. */
    int class_count[SIN_BETA_CLASS_COUNT + 1] = {0};
    for (int pos = 0; pos < nb_all; pos++) {
        const int k = list_j[pos];
        const km_vec3 d = rec->ray[k];
        const double c1 = dot3(d, pair->e1), c2 = dot3(d, pair->e2);
        const double sb = sqrt(c1 * c1 + c2 * c2);
        int cls = 0;
        while (cls < SIN_BETA_CLASS_COUNT && sb < sin_beta_class[cls])
            cls++;
        rec->beta_class[k] = cls;
        rec->phi[k] = atan2(c2, c1);
        rec->plane_in_i[k] = plane_normal_in(rec, pair, d, i);
        rec->match_count[k] = 0;
        class_count[cls]++;
    }
    int seg[SIN_BETA_CLASS_COUNT + 2];
    seg[0] = 0;
    for (int c = 0; c <= SIN_BETA_CLASS_COUNT; c++)
        seg[c + 1] = seg[c] + class_count[c];
    int fill[SIN_BETA_CLASS_COUNT + 1];
    for (int c = 0; c <= SIN_BETA_CLASS_COUNT; c++)
        fill[c] = seg[c];
    for (int pos = 0; pos < nb_all; pos++) {
        const int k = list_j[pos];
        const int at = fill[rec->beta_class[k]]++;
        rec->sorted_b[at] = k;
        rec->sorted_b_phi[at] = rec->phi[k];
    }
    for (int c = 0; c < SIN_BETA_CLASS_COUNT; c++)
        heap_sort(rec->sorted_b_phi + seg[c], rec->sorted_b + seg[c], seg[c + 1] - seg[c]);

    /* |sin(dphi)| * sin_beta_b <= distance in normalised units (see file comment); the
     * gate in normalised units uses the camera's largest raw-to-undistorted scale. */
    const double *window = rec->cams[j].window;
    for (int ia = 0; ia < na; ia++) {
        const int a = list_a[ia];
        const km_vec3 d = rec->ray[a];
        const double c1 = dot3(d, pair->e1), c2 = dot3(d, pair->e2);
        const double sin_beta_a = sqrt(c1 * c1 + c2 * c2);
        const km_vec3 plane_a = plane_normal_in(rec, pair, d, j);
        const double phi_a = atan2(c2, c1);
        rec->match_count[a] = 0;

        /* Ranges of sorted_b to test: per class the window around phi_a, split where it
         * wraps; all of a class when a is near its epipole; all of the near-epipole ones. */
        int ranges[2 * (2 * SIN_BETA_CLASS_COUNT + 1)];
        int nranges = 0;
        for (int c = 0; c < SIN_BETA_CLASS_COUNT; c++) {
            const int lo_i = seg[c], hi_i = seg[c + 1];
            if (lo_i == hi_i)
                continue;
            if (sin_beta_a < EPIPOLE_SIN_MIN) {
                ranges[nranges++] = lo_i;
                ranges[nranges++] = hi_i;
                continue;
            }
            const double lo = phi_a - window[c], hi = phi_a + window[c];
            ranges[nranges++] = lower_bound(rec->sorted_b_phi, lo_i, hi_i, lo);
            ranges[nranges++] = upper_bound(rec->sorted_b_phi, lo_i, hi_i, hi);
            if (lo < -M_PI) {
                ranges[nranges++] = lower_bound(rec->sorted_b_phi, lo_i, hi_i, lo + 2.0 * M_PI);
                ranges[nranges++] = hi_i;
            } else if (hi > M_PI) {
                ranges[nranges++] = lo_i;
                ranges[nranges++] = upper_bound(rec->sorted_b_phi, lo_i, hi_i, hi - 2.0 * M_PI);
            }
        }
        ranges[nranges++] = seg[SIN_BETA_CLASS_COUNT];
        ranges[nranges++] = seg[SIN_BETA_CLASS_COUNT + 1];
        for (int r = 0; r < nranges; r += 2) {
            for (int pos = ranges[r]; pos < ranges[r + 1]; pos++) {
                ncand = consider_pair(rec, st, a, plane_a, rec->sorted_b[pos], ncand);
            }
        }
    }
    rank_and_accept(rec, pair, min_views, st, ncand);
}

/* The epipolar matches of a pair (rec->candidates[0, ncand)) ranked by their quick support
 * score, then accepted greedily (see process_pair). */
static void rank_and_accept(km_reconstructor *rec, const rec_pair *pair, int min_views,
                            run_state *st, int ncand)
{
    if (ncand == 0)
        return;

    /* Rank the matches by their quick support score, so that the true match of an
     * observation comes before the false ones its epipolar line also crosses. */
    int norder = 0;
    for (int c = 0; c < ncand; c++) {
        const rec_candidate *cand = &rec->candidates[c];
        int support;
        double score;
        if (!quick_support(rec, &rec->candidates[c], &support, &score) ||
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
        const int n = evaluate_candidate(rec, cand, views, &X, &residual);
        if (n < min_views || !(residual <= accept_limit(rec)))
            continue;
        if (n == 2 && !accept_two_view(rec, pair, cand->seed_a, cand->seed_b, X, st->out))
            continue;
        if (n > 2 && n < DUPLICATE_CHECK_VIEWS && near_marker(st->out, X)) {
            /* Views split off a marker already built (two blobs merged in some camera):
             * they are explained, not a new marker. */
            for (int k = 0; k < n; k++)
                rec->used[views[k]] = 1;
            continue;
        }
        emit_marker(rec, st, views, n, X, residual);
    }
}

/* Build a marker from a predicted position P (the prior) instead of an epipolar seed:
 * 1. P is projected into every camera and the nearest unused observation within the
 *    prior gate (PRIOR_GATE x max_residual_px) is taken;
 * 2. the point is solved from those observations alone (P only sets the weights), outliers
 *    are dropped by the leave-one-out test, and views are gathered once more around the
 *    solved point within the outlier floor, in the cameras where that can find one.
 * The prediction only chooses which observations to try; acceptance (>= 3 views, residual,
 * outliers) is the same as for a point found by the epipolar search. The gate is narrow:
 * a constant-velocity prediction at 120 Hz is well inside it, the lookups stay short, and
 * a neighbour's observation is rarely that near; a prediction that is off finds fewer than
 * three views and leaves the marker to the search. A camera that had no observation within
 * the gate is not asked again when the solved point's projection cannot have moved by more
 * than the gate minus the threshold. Returns the view count (0 = failed); obs_out as in
 * evaluate_candidate. */
static int evaluate_prior(const km_reconstructor *rec, km_vec3 P, int *obs_out, km_vec3 *X_out,
                          double *residual_out)
{
    const int ncam = rec->camera_count;
    const double gate = PRIOR_GATE * rec->cfg.max_residual_px;
    bool has_camera[KM_MAX_CAMERAS];
    /* Per camera: P's depth and spread (raw px per normalised unit, with the bound of the
     * projection's derivative), and whether the gate around P held no observation. */
    double depth[KM_MAX_CAMERAS], spread[KM_MAX_CAMERAS];
    bool missed[KM_MAX_CAMERAS];
    rec_view views[KM_MAX_CAMERAS];
    int n = 0;
    double px_per_m = 0.0; /* largest focal / depth: raw px per metre at P, about */
    for (int c = 0; c < ncam; c++) {
        has_camera[c] = false;
        missed[c] = false;
        depth[c] = 0.0;
        if (rec->unused_count[c] == 0)
            continue;
        double x, y, Pc[3];
        if (!project_normalized(&rec->cams[c], P, &x, &y, Pc))
            continue;
        depth[c] = Pc[2];
        const double s = rec->cams[c].focal_px / Pc[2];
        px_per_m = s > px_per_m ? s : px_per_m;
        spread[c] = rec->cams[c].raw_scale * (2.0 + fabs(x) + fabs(y));
        double d2;
        const int k = nearest_unused_at(rec, c, x, y, gate, &d2);
        if (k >= 0) {
            views[n++].obs = k;
            has_camera[c] = true;
        } else {
            missed[c] = true;
        }
    }
    if (n < 3)
        return 0;
    km_vec3 X;
    double residual = 0.0, threshold = 0.0, A[9], rhs[3];
    if (!solve_views(rec, views, n, P, &X, &residual, A, rhs))
        return 0;
    n = reject_outliers(rec, views, n, has_camera, &X, &residual, A, rhs, &threshold);
    if (n < 2)
        return 0;
    const double moved_m = sqrt(dist2(X, P));
    /* The prediction must have been good: off by more than half the gate, the nearest
     * observations may be the marker's in some cameras and a neighbour's in others. */
    if (moved_m * px_per_m > PRIOR_GOOD * gate)
        return 0;
    if (n < ncam) {
        /* The views gathered around the solved point: within the outlier floor (four noise
         * sigmas; the point fits its views to the noise, so no median is needed). */
        const double radius = outlier_floor(rec);
        int added = 0;
        for (int c = 0; c < ncam; c++) {
            if (has_camera[c] || rec->unused_count[c] == 0)
                continue;
            /* A projection moves by at most spread * moved / (depth - moved) raw px. */
            const double shift_px = missed[c] && depth[c] > 2.0 * moved_m
                                        ? spread[c] * moved_m / (depth[c] - moved_m)
                                        : INFINITY;
            if (shift_px + radius <= gate)
                continue;
            double x, y, d2;
            if (!project_normalized(&rec->cams[c], X, &x, &y, NULL))
                continue;
            const int k = nearest_unused_at(rec, c, x, y, radius, &d2);
            if (k >= 0) {
                views[n++].obs = k;
                has_camera[c] = true;
                added++;
            }
        }
        if (added > 0) {
            if (!solve_views(rec, views, n, X, &X, &residual, A, rhs))
                return 0;
            n = reject_outliers(rec, views, n, has_camera, &X, &residual, A, rhs, &threshold);
            if (n < 2)
                return 0;
        }
    }
    for (int k = 0; k < n; k++)
        obs_out[k] = views[k].obs;
    *X_out = X;
    *residual_out = residual;
    return n;
}

/* The prior pass: markers built straight from their predicted positions (see
 * evaluate_prior), before any epipolar search, so that the search only sees what no
 * prediction explained (new markers, reflections, leftovers). Only well-seen points are
 * taken (PRIOR_MIN_VIEWS): when a prediction is off by about the gate, the views found
 * near it can be the marker's in some cameras and a neighbour's in others, and with three
 * or four views such a mix can pass the residual test; the search, which gathers around
 * an epipolar match in every camera, judges those markers. The noise estimate starts from
 * the last frame's, so that the first markers of the pass meet the same residual limit
 * as the rest (the search finds its best-supported markers first; the predictions come in
 * any order). */
static void build_from_prior(km_reconstructor *rec, int min_views, run_state *st)
{
    if (min_views < PRIOR_MIN_VIEWS)
        min_views = PRIOR_MIN_VIEWS;
    for (int p = 0; p < rec->prior_count && !st->overflow; p++) {
        int views[KM_MAX_CAMERAS];
        km_vec3 X = {0, 0, 0};
        double residual = 0.0;
        const int n = evaluate_prior(rec, rec->prior[p], views, &X, &residual);
        if (n < min_views || !(residual <= accept_limit(rec)))
            continue;
        if (n < DUPLICATE_CHECK_VIEWS && near_marker(st->out, X))
            continue; /* leftover views of a marker built already: the search judges them */
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
    const int prior_count = rec->prior_count;
    rec->prior_count = 0; /* a prior describes one frame */
    if (obs->count < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "reconstruct: negative observation count");
    if (obs->count > rec->obs_capacity)
        return km_error(KM_ERR_CAPACITY,
                        "reconstruct: frame %llu has %d observations, max_observations is %d",
                        (unsigned long long)obs->frame, obs->count, rec->obs_capacity);
    km_status status = prepare(rec, obs);
    if (status != KM_OK)
        return status;
    rec->prior_count = prior_count;

    rec->noise_px = rec->cfg.max_residual_px / NOISE_PRIOR_DIVISOR;
    rec->noise_known = false;
    if (rec->prior_count > 0 && rec->last_noise_known) {
        rec->noise_px = rec->last_noise_px;
        rec->noise_known = true;
    }
    rec->residual_count = 0;
    run_state st = {
        .out = out,
        .limit = out->capacity < rec->cfg.max_markers ? out->capacity : rec->cfg.max_markers,
    };
    const int strict_views = rec->cfg.min_views > 3 ? rec->cfg.min_views : 3;
    build_from_prior(rec, strict_views, &st);
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
    rec->prior_count = 0;
    rec->last_noise_px = rec->noise_px;
    rec->last_noise_known = rec->noise_known;
    if (st.seeds_dropped > 0)
        km_log(KM_LOG_DEBUG, MODULE, "frame %llu: %d epipolar candidates over capacity dropped",
               (unsigned long long)obs->frame, st.seeds_dropped);
    if (st.overflow)
        return km_error(KM_ERR_CAPACITY,
                        "reconstruct: frame %llu: more than %d markers (kept the first %d)",
                        (unsigned long long)obs->frame, st.limit, st.limit);
    return KM_OK;
}
