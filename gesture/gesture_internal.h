/* Private to the gesture stage: helpers shared by its files. */
#ifndef KINEMA_GESTURE_INTERNAL_H
#define KINEMA_GESTURE_INTERNAL_H

#include <stdbool.h>

#include "kinema/gesture.h"

km_vec3 km_gesture_centroid(const km_vec3 *pts, size_t n);
/* out may equal in. */
void km_gesture_rotate_z(const km_vec3 *in, km_vec3 *out, size_t n, double angle_rad);
/* Golden ratio constant of the $1 paper's search: 0.5 * (-1 + sqrt(5)). */
/* KM_GESTURE_SCALE_AXES: an axis is never scaled by less than this times the largest. */
#define KM_GESTURE_THIN_AXIS_RATIO 0.3
#define KM_GESTURE_PHI 0.6180339887498949

/* Is `label` a valid label/token (1..63 chars of [A-Za-z0-9_.-])? */
bool km_gesture_label_valid(const char *label);

/* Matching costs between two normalised trajectories of n points (template.c). */
double km_gesture_path_cost(const km_vec3 *a, const km_vec3 *b, size_t n);
/* Minimum of the path cost over rotations of `a` about z in [-range, range]. */
double km_gesture_path_cost_search(const km_vec3 *a, const km_vec3 *b, size_t n, double range_rad,
                                   double threshold_rad);
/* rows must hold 2*n doubles. DBL_MAX once the cost is known to exceed abandon_above
 * (pass DBL_MAX to always compute it). */
double km_gesture_dtw_cost(const km_vec3 *a, const km_vec3 *b, size_t n, size_t band,
                           double *rows, double abandon_above);
/* The same with tail[i] (i in 0..n, tail[n] = 0) a lower bound of the cost rows i..n-1
 * add (unnormalised), for earlier abandoning; tail NULL = none. */
double km_gesture_dtw_cost_bounded(const km_vec3 *a, const km_vec3 *b, size_t n, size_t band,
                                   double *rows, double abandon_above, const double *tail);
/* Per point i, the bounding box of b[i-band .. i+band] (LB_Keogh's envelope, in 3D). */
void km_gesture_envelope(const km_vec3 *b, size_t n, size_t band, km_vec3 *lo, km_vec3 *hi);
/* LB_Keogh lower bound of the DTW cost (normalised like it); tail (n+1 doubles, may be
 * NULL) receives the suffix sums for km_gesture_dtw_cost_bounded. */
double km_gesture_lb_keogh(const km_vec3 *a, const km_vec3 *lo, const km_vec3 *hi, size_t n,
                           double *tail);
/* matched must hold n bools. */
double km_gesture_cloud_cost(const km_vec3 *a, const km_vec3 *b, size_t n, bool *matched);

/* Whole-file reader shared by the load functions: malloc'd buffer, NUL-terminated. */
km_status km_gesture_read_file(const char *path, char **text, size_t *length);

#endif
