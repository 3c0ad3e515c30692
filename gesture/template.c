/* Matching costs between a candidate and a template, both resampled to n points and
 * normalised. All costs are mean point distances in normalised units, so one score scale
 * and one rejection threshold serve every matcher. No allocation: scratch is passed in. */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "gesture_internal.h"

bool km_gesture_label_valid(const char *label)
{
    if (!label)
        return false;
    size_t len = strlen(label);
    if (len == 0 || len >= KM_GESTURE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)label[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

double km_gesture_path_cost(const km_vec3 *a, const km_vec3 *b, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dx = a[i].x - b[i].x, dy = a[i].y - b[i].y, dz = a[i].z - b[i].z;
        sum += sqrt(dx * dx + dy * dy + dz * dz);
    }
    return sum / (double)n;
}

/* Path cost of `a` rotated by angle about z, without writing the rotated copy. */
static double path_cost_at(const km_vec3 *a, const km_vec3 *b, size_t n, double angle)
{
    double c = cos(angle), s = sin(angle), sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dx = a[i].x * c - a[i].y * s - b[i].x;
        double dy = a[i].x * s + a[i].y * c - b[i].y;
        double dz = a[i].z - b[i].z;
        sum += sqrt(dx * dx + dy * dy + dz * dz);
    }
    return sum / (double)n;
}

/* Golden-section search as in $1 (Wobbrock et al. 2007, DistanceAtBestAngle). */
double km_gesture_path_cost_search(const km_vec3 *a, const km_vec3 *b, size_t n, double range_rad,
                                   double threshold_rad)
{
    if (range_rad <= 0.0)
        return km_gesture_path_cost(a, b, n);
    double lo = -range_rad, hi = range_rad;
    double x1 = KM_GESTURE_PHI * lo + (1.0 - KM_GESTURE_PHI) * hi;
    double f1 = path_cost_at(a, b, n, x1);
    double x2 = (1.0 - KM_GESTURE_PHI) * lo + KM_GESTURE_PHI * hi;
    double f2 = path_cost_at(a, b, n, x2);
    while (fabs(hi - lo) > threshold_rad) {
        if (f1 < f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = KM_GESTURE_PHI * lo + (1.0 - KM_GESTURE_PHI) * hi;
            f1 = path_cost_at(a, b, n, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = (1.0 - KM_GESTURE_PHI) * lo + KM_GESTURE_PHI * hi;
            f2 = path_cost_at(a, b, n, x2);
        }
    }
    return fmin(f1, f2);
}

static double dist3(km_vec3 a, km_vec3 b)
{
    double dx = a.x - b.x, dy = a.y - b.y, dz = a.z - b.z;
    return sqrt(dx * dx + dy * dy + dz * dz);
}

/* Classic DTW restricted to |i - j| <= band; two rolling rows, only the band's cells
 * touched (O(n * band)). The accumulated cost is divided by n so that the identity
 * alignment gives the path cost. Costs only grow along a row, so once a whole row exceeds
 * `abandon_above` the template cannot win: stop early (returns DBL_MAX). With `tail`
 * (tail[i] = a lower bound of what rows i..n-1 still add, e.g. LB_Keogh's), the row minimum
 * plus the bound of the rows left is compared instead: earlier abandoning, same result. */
double km_gesture_dtw_cost_bounded(const km_vec3 *a, const km_vec3 *b, size_t n, size_t band,
                                   double *rows, double abandon_above, const double *tail)
{
    double limit = abandon_above < DBL_MAX / (double)(n + 1) ? abandon_above * (double)n : DBL_MAX;
    double *prev = rows, *cur = rows + n;
    for (size_t j = 0; j < n; j++)
        prev[j] = cur[j] = DBL_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t j_lo = i > band ? i - band : 0;
        size_t j_hi = i + band < n - 1 ? i + band : n - 1;
        if (j_lo > 0)
            cur[j_lo - 1] = DBL_MAX;
        double row_min = DBL_MAX;
        for (size_t j = j_lo; j <= j_hi; j++) {
            double best;
            if (i == 0 && j == 0) {
                best = 0.0;
            } else {
                best = DBL_MAX;
                if (i > 0)
                    best = fmin(best, prev[j]);
                if (j > 0)
                    best = fmin(best, cur[j - 1]);
                if (i > 0 && j > 0)
                    best = fmin(best, prev[j - 1]);
            }
            cur[j] = best == DBL_MAX ? DBL_MAX : best + dist3(a[i], b[j]);
            if (cur[j] < row_min)
                row_min = cur[j];
        }
        /* the next row reads prev[j_hi + 1]: outside this row's band, so unreachable */
        if (j_hi + 1 < n)
            cur[j_hi + 1] = DBL_MAX;
        double rest = tail && i + 1 < n ? tail[i + 1] : 0.0;
        if (row_min > limit || (row_min != DBL_MAX && row_min + rest > limit))
            return DBL_MAX;
        double *t = prev;
        prev = cur;
        cur = t;
    }
    return prev[n - 1] / (double)n;
}

double km_gesture_dtw_cost(const km_vec3 *a, const km_vec3 *b, size_t n, size_t band,
                           double *rows, double abandon_above)
{
    return km_gesture_dtw_cost_bounded(a, b, n, band, rows, abandon_above, NULL);
}

void km_gesture_envelope(const km_vec3 *b, size_t n, size_t band, km_vec3 *lo, km_vec3 *hi)
{
    for (size_t i = 0; i < n; i++) {
        size_t j_lo = i > band ? i - band : 0;
        size_t j_hi = i + band < n - 1 ? i + band : n - 1;
        km_vec3 l = b[j_lo], h = b[j_lo];
        for (size_t j = j_lo + 1; j <= j_hi; j++) {
            l = km_vec3_make(fmin(l.x, b[j].x), fmin(l.y, b[j].y), fmin(l.z, b[j].z));
            h = km_vec3_make(fmax(h.x, b[j].x), fmax(h.y, b[j].y), fmax(h.z, b[j].z));
        }
        lo[i] = l;
        hi[i] = h;
    }
}

/* Every point a[i] is matched by some b[j] with |i - j| <= band, at least as far as the
 * distance from a[i] to the box of those b[j]: the sum of those distances bounds DTW from
 * below (LB_Keogh, Keogh & Ratanamahatana 2005, with boxes for 3D points). */
double km_gesture_lb_keogh(const km_vec3 *a, const km_vec3 *lo, const km_vec3 *hi, size_t n,
                           double *tail)
{
    double sum = 0.0;
    if (tail)
        tail[n] = 0.0;
    for (size_t k = n; k-- > 0;) {
        double dx = a[k].x < lo[k].x ? lo[k].x - a[k].x : (a[k].x > hi[k].x ? a[k].x - hi[k].x : 0.0);
        double dy = a[k].y < lo[k].y ? lo[k].y - a[k].y : (a[k].y > hi[k].y ? a[k].y - hi[k].y : 0.0);
        double dz = a[k].z < lo[k].z ? lo[k].z - a[k].z : (a[k].z > hi[k].z ? a[k].z - hi[k].z : 0.0);
        sum += sqrt(dx * dx + dy * dy + dz * dz);
        if (tail)
            tail[k] = sum;
    }
    return sum / (double)n;
}

/* $P's greedy cloud distance (Vatavu, Anthony & Wobbrock 2012) from start index `start`:
 * each point of a takes the nearest unmatched point of b, earlier matches weigh more. */
static double cloud_distance(const km_vec3 *a, const km_vec3 *b, size_t n, size_t start,
                             bool *matched)
{
    memset(matched, 0, n * sizeof *matched);
    double sum = 0.0, weight_sum = 0.0;
    size_t i = start;
    do {
        double best = DBL_MAX;
        size_t index = 0;
        for (size_t j = 0; j < n; j++) {
            if (matched[j])
                continue;
            double d = dist3(a[i], b[j]);
            if (d < best) {
                best = d;
                index = j;
            }
        }
        matched[index] = true;
        double weight = 1.0 - (double)((i + n - start) % n) / (double)n;
        sum += weight * best;
        weight_sum += weight;
        i = (i + 1) % n;
    } while (i != start);
    return sum / weight_sum;
}

double km_gesture_cloud_cost(const km_vec3 *a, const km_vec3 *b, size_t n, bool *matched)
{
    size_t step = (size_t)floor(sqrt((double)n)); /* $P: n^(1 - 0.5) */
    if (step < 1)
        step = 1;
    double best = DBL_MAX;
    for (size_t i = 0; i < n; i += step) {
        best = fmin(best, cloud_distance(a, b, n, i, matched));
        best = fmin(best, cloud_distance(b, a, n, i, matched));
    }
    return best;
}
