/* Small fixed-size geometry: 3-vectors, unit quaternions (x, y, z, w; body -> world),
 * row-major 3x3 and 4x4 matrices. Everything by value, no allocation, no state. */
#include "kinema/core.h"

#include <math.h>

/* ------------------------------------------------------------------ vec3 */

km_vec3 km_vec3_make(double x, double y, double z)
{
    return (km_vec3){x, y, z};
}

km_vec3 km_vec3_add(km_vec3 a, km_vec3 b)
{
    return (km_vec3){a.x + b.x, a.y + b.y, a.z + b.z};
}

km_vec3 km_vec3_sub(km_vec3 a, km_vec3 b)
{
    return (km_vec3){a.x - b.x, a.y - b.y, a.z - b.z};
}

km_vec3 km_vec3_scale(km_vec3 a, double s)
{
    return (km_vec3){a.x * s, a.y * s, a.z * s};
}

double km_vec3_dot(km_vec3 a, km_vec3 b)
{
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

km_vec3 km_vec3_cross(km_vec3 a, km_vec3 b)
{
    return (km_vec3){a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

double km_vec3_norm(km_vec3 a)
{
    return sqrt(km_vec3_dot(a, a));
}

double km_vec3_dist(km_vec3 a, km_vec3 b)
{
    return km_vec3_norm(km_vec3_sub(a, b));
}

km_vec3 km_vec3_normalize(km_vec3 a)
{
    double n = km_vec3_norm(a);
    return n > 0.0 ? km_vec3_scale(a, 1.0 / n) : a;
}

/* ------------------------------------------------------------------ mat3 */

km_mat3 km_mat3_identity(void)
{
    return (km_mat3){{1, 0, 0, 0, 1, 0, 0, 0, 1}};
}

km_mat3 km_mat3_mul(km_mat3 a, km_mat3 b)
{
    km_mat3 r;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            r.m[i * 3 + j] = a.m[i * 3 + 0] * b.m[0 * 3 + j] + a.m[i * 3 + 1] * b.m[1 * 3 + j] +
                             a.m[i * 3 + 2] * b.m[2 * 3 + j];
    return r;
}

km_mat3 km_mat3_transpose(km_mat3 a)
{
    km_mat3 r;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            r.m[i * 3 + j] = a.m[j * 3 + i];
    return r;
}

km_vec3 km_mat3_apply(km_mat3 a, km_vec3 v)
{
    return (km_vec3){a.m[0] * v.x + a.m[1] * v.y + a.m[2] * v.z,
                     a.m[3] * v.x + a.m[4] * v.y + a.m[5] * v.z,
                     a.m[6] * v.x + a.m[7] * v.y + a.m[8] * v.z};
}

double km_mat3_det(km_mat3 a)
{
    const double *m = a.m;
    return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
           m[2] * (m[3] * m[7] - m[4] * m[6]);
}

km_status km_mat3_inverse(km_mat3 a, km_mat3 *out)
{
    const double *m = a.m;
    double scale = 0.0;
    for (int i = 0; i < 9; i++)
        scale = fmax(scale, fabs(m[i]));
    double det = km_mat3_det(a);
    /* Relative test: a well-scaled matrix of tiny entries is not singular. */
    if (!isfinite(det) || scale == 0.0 || fabs(det) <= 1e-14 * scale * scale * scale)
        return km_error(KM_ERR_NUMERIC, "mat3 inverse: singular matrix (det %g)", det);
    double inv = 1.0 / det;
    km_mat3 r = {{
        (m[4] * m[8] - m[5] * m[7]) * inv, (m[2] * m[7] - m[1] * m[8]) * inv,
        (m[1] * m[5] - m[2] * m[4]) * inv, (m[5] * m[6] - m[3] * m[8]) * inv,
        (m[0] * m[8] - m[2] * m[6]) * inv, (m[2] * m[3] - m[0] * m[5]) * inv,
        (m[3] * m[7] - m[4] * m[6]) * inv, (m[1] * m[6] - m[0] * m[7]) * inv,
        (m[0] * m[4] - m[1] * m[3]) * inv,
    }};
    *out = r;
    return KM_OK;
}

km_mat3 km_mat3_from_axis_angle(km_vec3 axis, double angle_rad)
{
    double n = km_vec3_norm(axis);
    if (n == 0.0)
        return km_mat3_identity();
    double x = axis.x / n, y = axis.y / n, z = axis.z / n;
    double c = cos(angle_rad), s = sin(angle_rad), t = 1.0 - c;
    return (km_mat3){{
        t * x * x + c, t * x * y - s * z, t * x * z + s * y,
        t * x * y + s * z, t * y * y + c, t * y * z - s * x,
        t * x * z - s * y, t * y * z + s * x, t * z * z + c,
    }};
}

km_mat3 km_mat3_from_rodrigues(km_vec3 r)
{
    double theta = km_vec3_norm(r);
    if (theta < 1e-12) {
        /* First order: I + [r]x, exact to rounding at this size. */
        return (km_mat3){{1, -r.z, r.y, r.z, 1, -r.x, -r.y, r.x, 1}};
    }
    return km_mat3_from_axis_angle(r, theta);
}

km_vec3 km_mat3_to_rodrigues(km_mat3 R)
{
    /* Through the quaternion: stable near 0 and near pi, where acos((trace-1)/2) is not. */
    km_quat q = km_quat_from_mat3(R);
    if (q.w < 0.0)
        q = (km_quat){-q.x, -q.y, -q.z, -q.w};
    double s = sqrt(q.x * q.x + q.y * q.y + q.z * q.z);
    if (s < 1e-300)
        return (km_vec3){0, 0, 0};
    double angle = 2.0 * atan2(s, q.w);
    return (km_vec3){q.x / s * angle, q.y / s * angle, q.z / s * angle};
}

/* ------------------------------------------------------------------ quat */

km_quat km_quat_identity(void)
{
    return (km_quat){0, 0, 0, 1};
}

km_quat km_quat_mul(km_quat a, km_quat b)
{
    return (km_quat){
        a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
        a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
        a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
        a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
    };
}

km_quat km_quat_conjugate(km_quat q)
{
    return (km_quat){-q.x, -q.y, -q.z, q.w};
}

km_quat km_quat_normalize(km_quat q)
{
    double n = sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w);
    if (!(n > 0.0) || !isfinite(n))
        return km_quat_identity();
    return (km_quat){q.x / n, q.y / n, q.z / n, q.w / n};
}

km_quat km_quat_from_axis_angle(km_vec3 axis, double angle_rad)
{
    double n = km_vec3_norm(axis);
    if (n == 0.0)
        return km_quat_identity();
    double s = sin(angle_rad * 0.5) / n;
    return (km_quat){axis.x * s, axis.y * s, axis.z * s, cos(angle_rad * 0.5)};
}

km_vec3 km_quat_rotate(km_quat q, km_vec3 v)
{
    /* v' = v + 2w (u x v) + 2 u x (u x v), u the vector part: 2 cross products instead of
     * two quaternion products. */
    km_vec3 u = {q.x, q.y, q.z};
    km_vec3 t = km_vec3_scale(km_vec3_cross(u, v), 2.0);
    return km_vec3_add(km_vec3_add(v, km_vec3_scale(t, q.w)), km_vec3_cross(u, t));
}

km_mat3 km_quat_to_mat3(km_quat q)
{
    double x = q.x, y = q.y, z = q.z, w = q.w;
    return (km_mat3){{
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    }};
}

km_quat km_quat_from_mat3(km_mat3 R)
{
    /* Shepperd's method: divide by the largest of the four candidates, never by ~0. */
    const double *m = R.m;
    double trace = m[0] + m[4] + m[8];
    km_quat q;
    if (trace > m[0] && trace > m[4] && trace > m[8]) {
        double s = 2.0 * sqrt(1.0 + trace);
        q = (km_quat){(m[7] - m[5]) / s, (m[2] - m[6]) / s, (m[3] - m[1]) / s, 0.25 * s};
    } else if (m[0] > m[4] && m[0] > m[8]) {
        double s = 2.0 * sqrt(fmax(1.0 + m[0] - m[4] - m[8], 1e-300));
        q = (km_quat){0.25 * s, (m[1] + m[3]) / s, (m[2] + m[6]) / s, (m[7] - m[5]) / s};
    } else if (m[4] > m[8]) {
        double s = 2.0 * sqrt(fmax(1.0 + m[4] - m[0] - m[8], 1e-300));
        q = (km_quat){(m[1] + m[3]) / s, 0.25 * s, (m[5] + m[7]) / s, (m[2] - m[6]) / s};
    } else {
        double s = 2.0 * sqrt(fmax(1.0 + m[8] - m[0] - m[4], 1e-300));
        q = (km_quat){(m[2] + m[6]) / s, (m[5] + m[7]) / s, 0.25 * s, (m[3] - m[1]) / s};
    }
    q = km_quat_normalize(q);
    /* Canonical sign (w >= 0) so equal rotations give equal quaternions. */
    if (q.w < 0.0)
        q = (km_quat){-q.x, -q.y, -q.z, -q.w};
    return q;
}

double km_quat_angle_between(km_quat a, km_quat b)
{
    km_quat d = km_quat_mul(km_quat_conjugate(a), b);
    double v = sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
    /* atan2 keeps precision for tiny angles where acos(|w|) loses half the digits; |w|
     * because q and -q are the same rotation. */
    return 2.0 * atan2(v, fabs(d.w));
}

km_quat km_quat_slerp(km_quat a, km_quat b, double t)
{
    double dot = a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
    if (dot < 0.0) { /* the shorter of the two arcs */
        b = (km_quat){-b.x, -b.y, -b.z, -b.w};
        dot = -dot;
    }
    double wa, wb;
    if (dot > 0.9995) {
        /* Nearly equal: sin(theta) ~ 0, linear interpolation is exact enough. */
        wa = 1.0 - t;
        wb = t;
    } else {
        double theta = acos(dot);
        double s = sin(theta);
        wa = sin((1.0 - t) * theta) / s;
        wb = sin(t * theta) / s;
    }
    return km_quat_normalize((km_quat){wa * a.x + wb * b.x, wa * a.y + wb * b.y,
                                       wa * a.z + wb * b.z, wa * a.w + wb * b.w});
}

/* ------------------------------------------------------------------ mat4 */

km_mat4 km_mat4_identity(void)
{
    return (km_mat4){{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}};
}

km_mat4 km_mat4_mul(km_mat4 a, km_mat4 b)
{
    km_mat4 r;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double sum = 0.0;
            for (int k = 0; k < 4; k++)
                sum += a.m[i * 4 + k] * b.m[k * 4 + j];
            r.m[i * 4 + j] = sum;
        }
    return r;
}

km_mat4 km_mat4_from_rt(km_mat3 R, km_vec3 t)
{
    return (km_mat4){{R.m[0], R.m[1], R.m[2], t.x, R.m[3], R.m[4], R.m[5], t.y, R.m[6], R.m[7],
                      R.m[8], t.z, 0, 0, 0, 1}};
}

km_vec3 km_mat4_apply_point(km_mat4 a, km_vec3 p)
{
    const double *m = a.m;
    km_vec3 r = {m[0] * p.x + m[1] * p.y + m[2] * p.z + m[3],
                 m[4] * p.x + m[5] * p.y + m[6] * p.z + m[7],
                 m[8] * p.x + m[9] * p.y + m[10] * p.z + m[11]};
    double w = m[12] * p.x + m[13] * p.y + m[14] * p.z + m[15];
    /* Rigid transforms have w = 1; divide only for a projective bottom row. */
    if (w != 1.0 && w != 0.0)
        r = km_vec3_scale(r, 1.0 / w);
    return r;
}
