/* Trajectories: storage, resampling along the path, normalisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

km_status km_trajectory_init(km_trajectory *traj, size_t capacity)
{
    if (!traj || capacity == 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "trajectory: capacity must be > 0");
    memset(traj, 0, sizeof *traj);
    traj->pos = malloc(capacity * sizeof *traj->pos);
    traj->t_ns = malloc(capacity * sizeof *traj->t_ns);
    if (!traj->pos || !traj->t_ns) {
        km_trajectory_release(traj);
        return km_error(KM_ERR_NO_MEMORY, "trajectory: cannot allocate %zu points", capacity);
    }
    traj->capacity = capacity;
    return KM_OK;
}

void km_trajectory_release(km_trajectory *traj)
{
    if (!traj)
        return;
    free(traj->pos);
    free(traj->t_ns);
    memset(traj, 0, sizeof *traj);
}

void km_trajectory_clear(km_trajectory *traj)
{
    if (traj)
        traj->count = 0;
}

km_status km_trajectory_push(km_trajectory *traj, km_vec3 pos, int64_t t_ns)
{
    if (!traj)
        return km_error(KM_ERR_INVALID_ARGUMENT, "trajectory: NULL");
    if (traj->count >= traj->capacity)
        return km_error(KM_ERR_CAPACITY, "trajectory: full (%zu points)", traj->capacity);
    traj->pos[traj->count] = pos;
    traj->t_ns[traj->count] = t_ns;
    traj->count++;
    return KM_OK;
}

double km_gesture_path_length(const km_vec3 *pos, size_t count)
{
    double length = 0.0;
    for (size_t i = 1; i < count; i++)
        length += km_vec3_dist(pos[i - 1], pos[i]);
    return length;
}

km_status km_gesture_resample(const km_vec3 *pos, size_t count, km_vec3 *out, size_t n)
{
    if (!pos || !out || count < 1 || n < 2)
        return km_error(KM_ERR_INVALID_ARGUMENT, "resample: need >= 1 input and >= 2 output points");
    double total = km_gesture_path_length(pos, count);
    if (!(total > 0.0) || !isfinite(total)) {
        for (size_t k = 0; k < n; k++)
            out[k] = pos[0];
        return isfinite(total) ? KM_OK
                               : km_error(KM_ERR_NUMERIC, "resample: non-finite coordinates");
    }
    /* Walk the polyline once; target k sits at arc length k*total/(n-1). Computing each target
     * from k (not by accumulating a step, as $1 does) keeps the last point exact. */
    size_t seg = 1;
    double seg_start = 0.0;
    double seg_len = count > 1 ? km_vec3_dist(pos[0], pos[1]) : 0.0;
    out[0] = pos[0];
    for (size_t k = 1; k + 1 < n; k++) {
        double target = total * (double)k / (double)(n - 1);
        while (seg + 1 < count && seg_start + seg_len < target) {
            seg_start += seg_len;
            seg++;
            seg_len = km_vec3_dist(pos[seg - 1], pos[seg]);
        }
        double u = seg_len > 0.0 ? (target - seg_start) / seg_len : 0.0;
        if (u < 0.0)
            u = 0.0;
        if (u > 1.0)
            u = 1.0;
        km_vec3 a = pos[seg - 1], b = pos[seg];
        out[k] = km_vec3_make(a.x + u * (b.x - a.x), a.y + u * (b.y - a.y), a.z + u * (b.z - a.z));
    }
    out[n - 1] = pos[count - 1];
    return KM_OK;
}

static const char *const scale_names[KM_GESTURE_SCALE_COUNT] = {"rms_radius", "bbox_diagonal",
                                                                "axes"};
static const char *const rotation_names[KM_GESTURE_ROTATION_COUNT] = {"none", "indicative_2d",
                                                                      "pca_3d"};

const char *km_gesture_scale_name(km_gesture_scale scale)
{
    return (unsigned)scale < KM_GESTURE_SCALE_COUNT ? scale_names[scale] : "?";
}

const char *km_gesture_rotation_name(km_gesture_rotation rotation)
{
    return (unsigned)rotation < KM_GESTURE_ROTATION_COUNT ? rotation_names[rotation] : "?";
}

km_status km_gesture_scale_parse(const char *name, km_gesture_scale *out)
{
    for (int i = 0; i < KM_GESTURE_SCALE_COUNT; i++)
        if (name && strcmp(name, scale_names[i]) == 0) {
            *out = (km_gesture_scale)i;
            return KM_OK;
        }
    return km_error(KM_ERR_INVALID_ARGUMENT, "unknown scale '%s' (rms_radius, bbox_diagonal, axes)",
                    name ? name : "(null)");
}

km_status km_gesture_rotation_parse(const char *name, km_gesture_rotation *out)
{
    for (int i = 0; i < KM_GESTURE_ROTATION_COUNT; i++)
        if (name && strcmp(name, rotation_names[i]) == 0) {
            *out = (km_gesture_rotation)i;
            return KM_OK;
        }
    return km_error(KM_ERR_INVALID_ARGUMENT,
                    "unknown rotation '%s' (none, indicative_2d, pca_3d)", name ? name : "(null)");
}

km_vec3 km_gesture_centroid(const km_vec3 *pts, size_t n)
{
    km_vec3 c = {0, 0, 0};
    for (size_t i = 0; i < n; i++)
        c = km_vec3_add(c, pts[i]);
    return n ? km_vec3_scale(c, 1.0 / (double)n) : c;
}

void km_gesture_rotate_z(const km_vec3 *in, km_vec3 *out, size_t n, double angle_rad)
{
    double c = cos(angle_rad), s = sin(angle_rad);
    for (size_t i = 0; i < n; i++) {
        km_vec3 p = in[i];
        out[i] = km_vec3_make(p.x * c - p.y * s, p.x * s + p.y * c, p.z);
    }
}

/* Principal axes by the eigenvectors of the 3x3 covariance; the sign of each axis is chosen
 * so the first point projects negatively (a gesture starts "before" its centre along every
 * axis), which removes PCA's sign ambiguity; the third axis is the cross product of the first
 * two so the frame stays right-handed (no mirroring). */
static km_status rotate_pca(km_vec3 *pts, size_t n)
{
    double cov[9] = {0};
    for (size_t i = 0; i < n; i++) {
        double v[3] = {pts[i].x, pts[i].y, pts[i].z};
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                cov[r * 3 + c] += v[r] * v[c];
    }
    double values[3], vectors[9];
    km_status st = km_symmetric_eigen(cov, 3, values, vectors);
    if (st)
        return st;
    km_vec3 axis[3];
    for (int k = 0; k < 2; k++) {
        int col = 2 - k; /* eigenvalues ascending: largest variance first */
        axis[k] = km_vec3_make(vectors[0 * 3 + col], vectors[1 * 3 + col], vectors[2 * 3 + col]);
        if (km_vec3_dot(axis[k], pts[0]) > 0.0)
            axis[k] = km_vec3_scale(axis[k], -1.0);
    }
    axis[2] = km_vec3_cross(axis[0], axis[1]);
    for (size_t i = 0; i < n; i++) {
        km_vec3 p = pts[i];
        pts[i] = km_vec3_make(km_vec3_dot(axis[0], p), km_vec3_dot(axis[1], p),
                              km_vec3_dot(axis[2], p));
    }
    return KM_OK;
}

km_status km_gesture_normalize(km_vec3 *pts, size_t n, km_gesture_scale scale,
                               km_gesture_rotation rotation)
{
    if (!pts || n < 1 || (unsigned)scale >= KM_GESTURE_SCALE_COUNT ||
        (unsigned)rotation >= KM_GESTURE_ROTATION_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "normalize: bad arguments");
    km_vec3 c = km_gesture_centroid(pts, n);
    for (size_t i = 0; i < n; i++)
        pts[i] = km_vec3_sub(pts[i], c);

    /* Rotate before measuring: the bounding box depends on the orientation. */
    if (rotation == KM_GESTURE_ROTATE_INDICATIVE_2D) {
        double angle = atan2(pts[0].y, pts[0].x); /* centroid is now the origin */
        km_gesture_rotate_z(pts, pts, n, -angle);
    } else if (rotation == KM_GESTURE_ROTATE_PCA_3D) {
        km_status st = rotate_pca(pts, n);
        if (st)
            return st;
    }

    double size = 0.0;
    if (scale == KM_GESTURE_SCALE_AXES) {
        double ms[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++) {
            ms[0] += pts[i].x * pts[i].x;
            ms[1] += pts[i].y * pts[i].y;
            ms[2] += pts[i].z * pts[i].z;
        }
        double rms[3], largest = 0.0;
        for (int a = 0; a < 3; a++) {
            rms[a] = sqrt(ms[a] / (double)n);
            largest = fmax(largest, rms[a]);
        }
        if (!(largest > 1e-12) || !isfinite(largest))
            return km_error(KM_ERR_NUMERIC, "normalize: degenerate trajectory (size %g)", largest);
        for (int a = 0; a < 3; a++)
            rms[a] = fmax(rms[a], KM_GESTURE_THIN_AXIS_RATIO * largest);
        for (size_t i = 0; i < n; i++)
            pts[i] = km_vec3_make(pts[i].x / rms[0], pts[i].y / rms[1], pts[i].z / rms[2]);
        return KM_OK;
    }
    if (scale == KM_GESTURE_SCALE_RMS_RADIUS) {
        for (size_t i = 0; i < n; i++)
            size += km_vec3_dot(pts[i], pts[i]);
        size = sqrt(size / (double)n);
    } else {
        km_vec3 lo = pts[0], hi = pts[0];
        for (size_t i = 1; i < n; i++) {
            lo = km_vec3_make(fmin(lo.x, pts[i].x), fmin(lo.y, pts[i].y), fmin(lo.z, pts[i].z));
            hi = km_vec3_make(fmax(hi.x, pts[i].x), fmax(hi.y, pts[i].y), fmax(hi.z, pts[i].z));
        }
        size = km_vec3_dist(lo, hi);
    }
    if (!(size > 1e-12) || !isfinite(size))
        return km_error(KM_ERR_NUMERIC, "normalize: degenerate trajectory (size %g)", size);
    for (size_t i = 0; i < n; i++)
        pts[i] = km_vec3_scale(pts[i], 1.0 / size);
    return KM_OK;
}
