/* The built-in dynamic gestures, generated procedurally (our own code, no recorded data) in
 * the person's frame: x to the person's right, y up, z backwards (forward is -z), metres,
 * 60 Hz. Each variant changes size, duration, curvature, proportions and the speed profile
 * deterministically, so templates cover how differently people perform the same gesture. */
#include <math.h>
#include <string.h>

#include "gesture_internal.h"

static const char *const builtin_names[KM_GESTURE_BUILTIN_COUNT] = {
    "swipe_left", "swipe_right", "swipe_up",  "swipe_down", "push",
    "pull",       "circle_cw",   "circle_ccw", "wave",      "raise_hand"};

const char *km_gesture_builtin_name(int index)
{
    return index >= 0 && index < KM_GESTURE_BUILTIN_COUNT ? builtin_names[index] : NULL;
}

/* Deterministic value in [0,1) from (gesture, variant, k). */
static double vary(int g, int v, int k)
{
    uint32_t h = (uint32_t)g * 2654435761u ^ (uint32_t)v * 40503u ^ (uint32_t)k * 2246822519u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    h *= 3266489917u;
    h ^= h >> 16;
    return (double)h / 4294967296.0;
}

static double lerp(double a, double b, double t)
{
    return a + (b - a) * t;
}

/* Minimum-jerk progress (Flash & Hogan): how people move between two points. `skew`
 * shifts the speed peak earlier (< 0) or later (> 0). */
static double progress(double tau, double skew)
{
    double t = tau + skew * tau * (1.0 - tau);
    return t * t * t * (10.0 - 15.0 * t + 6.0 * t * t);
}

#define BUILTIN_RATE_HZ 60.0

/* Durations the generator uses (variants spread over [lo, hi] seconds). */
static void duration_range(int g, double *lo, double *hi)
{
    switch (g) {
    case 6: case 7: *lo = 0.7; *hi = 1.3; break;
    case 8: *lo = 1.0; *hi = 1.8; break;
    case 9: *lo = 0.45; *hi = 1.2; break;
    default: *lo = 0.3; *hi = 0.6; break;
    }
}

void km_gesture_builtin_duration(int g, int64_t *min_ns, int64_t *max_ns)
{
    double lo = 0, hi = 0;
    if (g >= 0 && g < KM_GESTURE_BUILTIN_COUNT)
        duration_range(g, &lo, &hi);
    /* people are slower or quicker than the generator: half to twice its range; the
     * spotter's segment trimming also shortens a gesture by its slow ends */
    if (min_ns)
        *min_ns = (int64_t)(0.5 * lo * 1e9);
    if (max_ns)
        *max_ns = (int64_t)(2.0 * hi * 1e9);
}

km_status km_gesture_builtin_generate(int g, int v, km_vec3 *pos, int64_t *t_ns, size_t capacity,
                                      size_t *count)
{
    if (!pos || !count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "builtin gesture: NULL argument");
    if (g < 0 || g >= KM_GESTURE_BUILTIN_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "builtin gesture: index %d out of range", g);
    /* variant 0 is the canonical form; the others vary */
    double a = v == 0 ? 0.5 : vary(g, v, 1), b = v == 0 ? 0.5 : vary(g, v, 2);
    double c = v == 0 ? 0.5 : vary(g, v, 3), d = v == 0 ? 0.5 : vary(g, v, 4);
    double lo, hi;
    duration_range(g, &lo, &hi);
    double duration_s = lerp(lo, hi, a);
    size_t n = (size_t)(duration_s * BUILTIN_RATE_HZ) + 1;
    if (n > capacity)
        return km_error(KM_ERR_CAPACITY, "builtin gesture: needs %zu points, room for %zu", n,
                        capacity);
    double skew = lerp(-0.3, 0.3, d);
    for (size_t i = 0; i < n; i++) {
        double tau = (double)i / (double)(n - 1);
        double s = progress(tau, skew);
        double bulge = sin(M_PI * s);
        km_vec3 p = {0, 0, 0};
        double len = lerp(0.25, 0.5, b), curve = lerp(-0.12, 0.12, c) * len;
        switch (g) {
        case 0: /* swipe left: right to left, a slight arc */
        case 1:
            p.x = (g == 0 ? 1 : -1) * len * (0.5 - s);
            p.y = curve * bulge;
            p.z = 0.3 * curve * bulge;
            break;
        case 2: /* swipe up */
        case 3:
            p.y = (g == 3 ? 1 : -1) * len * (0.5 - s);
            p.x = curve * bulge;
            p.z = 0.3 * curve * bulge;
            break;
        case 4: /* push: forward (-z) */
        case 5:
            p.z = (g == 4 ? 1 : -1) * len * (0.5 - s);
            p.y = curve * bulge;
            p.x = 0.3 * curve * bulge;
            break;
        case 6: /* circles in the frontal plane, as the person sees them (looking at -z):
                   clockwise goes top -> right -> bottom. Start angle varies by variant. */
        case 7: {
            double r = lerp(0.10, 0.22, b), start = v == 0 ? 0.0 : (double)(v % 4) * M_PI / 2;
            double turn = lerp(1.0, 1.15, c) * 2 * M_PI;
            double th = start + (g == 6 ? 1 : -1) * turn * progress(tau, 0.3 * skew);
            double ellipse = lerp(0.8, 1.2, d);
            p.x = r * sin(th) * ellipse;
            p.y = r * cos(th) / ellipse;
            p.z = 0.1 * r * sin(th);
            break;
        }
        case 8: { /* wave: side to side, the hand swinging about the elbow (lower at the
                     ends). The cycle count and the first direction matter most to DTW:
                     templates 0-4 take (2, out), (2.5, in), (3, out), (3.5, in), (2, in)
                     cycles; later variants anything in between */
            double cycles = v < 5 ? 2.0 + 0.5 * (v % 4) : lerp(2.0, 3.5, c);
            double dir = v < 5 ? (v % 2 || v == 4 ? -1.0 : 1.0) : (d < 0.5 ? -1.0 : 1.0);
            double amp = lerp(0.07, 0.18, b);
            double ph = 2 * M_PI * cycles * tau;
            double env = fmin(1.0, fmin(tau, 1.0 - tau) * 8.0);
            p.x = dir * amp * env * sin(ph);
            p.y = -0.4 * amp * env * env * sin(ph) * sin(ph);
            /* the forearm pivots about the elbow: swinging out also swings back a little */
            p.z = 0.2 * amp * env * sin(ph);
            break;
        }
        default: { /* raise hand: from below the chest to above the head, bulging forward
                      (the arm swings up in front of the body) — longer, slower and curved
                      forward where a swipe up is short and straight; every other variant
                      swings out sideways instead (lateral raise, right or left) */
            double h = lerp(0.5, 0.8, b), forward = lerp(0.15, 0.3, c) * h;
            double side = v % 4 == 1 ? 1.0 : (v % 4 == 3 ? -1.0 : 0.0);
            p.y = h * (s - 0.5);
            p.z = -forward * bulge - 0.1 * h * s;
            p.x = side * forward * bulge;
            if (side != 0.0)
                p.z *= 0.3;
            break;
        }
        }
        pos[i] = p;
        if (t_ns)
            t_ns[i] = (int64_t)llround((double)i * 1e9 / BUILTIN_RATE_HZ);
    }
    *count = n;
    return KM_OK;
}

km_status km_gesture_add_builtin(km_gesture_recognizer *rec, int variants)
{
    if (!rec || variants < 1 || variants > 1000)
        return km_error(KM_ERR_INVALID_ARGUMENT, "builtin gestures: bad recognizer or variants");
    km_vec3 pts[256];
    for (int g = 0; g < KM_GESTURE_BUILTIN_COUNT; g++)
        for (int v = 0; v < variants; v++) {
            size_t n;
            km_status st = km_gesture_builtin_generate(g, v, pts, NULL, 256, &n);
            if (!st)
                st = km_gesture_recognizer_add(rec, builtin_names[g], pts, n);
            if (st)
                return st;
        }
    return KM_OK;
}
