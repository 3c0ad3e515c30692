/* Hand-eye coordination: a gaze ray and hand pointing rays against named targets (boxes,
 * plane rectangles, spheres). Per person: which target the eyes and each hand are on, the
 * events when that changes, look-and-pinch selection, and the measures (gaze-hand angle,
 * gaze lead time, same target). No allocation after km_handeye_create. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

#define MS 1000000LL
/* A gaze that entered a target this long before the hand reached it still counts as
 * leading (the eyes often move on to the next thing as the hand arrives). */
#define HANDEYE_LEAD_WINDOW_NS (2000 * MS)

static const char *const shape_names[KM_TARGET_SHAPE_COUNT] = {"box", "plane", "sphere"};

const char *km_target_shape_name(km_target_shape shape)
{
    return (unsigned)shape < KM_TARGET_SHAPE_COUNT ? shape_names[shape] : "?";
}

static bool finite3(km_vec3 v)
{
    return isfinite(v.x) && isfinite(v.y) && isfinite(v.z);
}

km_status km_gaze_from_head_pose(km_vec3 head_pos_m, km_quat q, km_vec3 forward_body,
                                 km_vec3 eye_offset_body, km_ray *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gaze: NULL output");
    double qn = sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w);
    if (!finite3(head_pos_m) || !finite3(eye_offset_body) || !isfinite(qn) || qn < 1e-9)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gaze: head pose is not finite");
    if (!finite3(forward_body) || km_vec3_norm(forward_body) < 1e-12)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gaze: forward axis is zero");
    q = km_quat_normalize(q);
    out->origin_m = km_vec3_add(head_pos_m, km_quat_rotate(q, eye_offset_body));
    out->direction = km_vec3_normalize(km_quat_rotate(q, forward_body));
    return KM_OK;
}

km_status km_hand_ray_from_points(km_vec3 from, km_vec3 to, km_ray *out)
{
    if (!out || !finite3(from) || !finite3(to))
        return km_error(KM_ERR_INVALID_ARGUMENT, "hand ray: bad points");
    km_vec3 d = km_vec3_sub(to, from);
    if (km_vec3_norm(d) < 1e-6)
        return km_error(KM_ERR_NUMERIC, "hand ray: the two points coincide");
    out->origin_m = to;
    out->direction = km_vec3_normalize(d);
    return KM_OK;
}

km_status km_hand_pointing_ray(const km_hand *hand, km_ray *out)
{
    if (!hand || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "hand ray: NULL argument");
    uint32_t v = hand->landmark_valid;
    if (!(v & KM_HAND_LANDMARK_BIT(KM_HAND_INDEX_TIP)))
        return km_error(KM_ERR_NOT_FOUND, "hand ray: no index tip");
    int from = (v & KM_HAND_LANDMARK_BIT(KM_HAND_WRIST)) ? KM_HAND_WRIST
               : (v & KM_HAND_LANDMARK_BIT(KM_HAND_INDEX_MCP)) ? KM_HAND_INDEX_MCP
                                                                : -1;
    if (from < 0)
        return km_error(KM_ERR_NOT_FOUND, "hand ray: neither wrist nor index MCP");
    return km_hand_ray_from_points(hand->landmark_m[from], hand->landmark_m[KM_HAND_INDEX_TIP], out);
}

/* Point / direction in the target's body frame. */
static km_vec3 to_body(const km_target *t, km_vec3 p)
{
    return km_quat_rotate(km_quat_conjugate(t->rotation), km_vec3_sub(p, t->centre_m));
}

static km_vec3 dir_to_body(const km_target *t, km_vec3 d)
{
    return km_quat_rotate(km_quat_conjugate(t->rotation), d);
}

bool km_target_hit(const km_target *t, const km_ray *ray, double margin_m, double *distance_m)
{
    if (!t || !ray)
        return false;
    double hit = -1.0;
    switch (t->shape) {
    case KM_TARGET_SPHERE: {
        double r = t->radius_m + margin_m;
        km_vec3 oc = km_vec3_sub(ray->origin_m, t->centre_m);
        double b = km_vec3_dot(oc, ray->direction), c = km_vec3_dot(oc, oc) - r * r;
        if (c <= 0.0) {
            hit = 0.0; /* inside */
        } else {
            double disc = b * b - c;
            if (disc >= 0.0 && -b - sqrt(disc) >= 0.0)
                hit = -b - sqrt(disc);
        }
        break;
    }
    case KM_TARGET_BOX: {
        /* slab test in the box frame */
        km_vec3 o = to_body(t, ray->origin_m), d = dir_to_body(t, ray->direction);
        double half[3] = {0.5 * t->size_m.x + margin_m, 0.5 * t->size_m.y + margin_m,
                          0.5 * t->size_m.z + margin_m};
        double oo[3] = {o.x, o.y, o.z}, dd[3] = {d.x, d.y, d.z};
        double lo = 0.0, hi = DBL_MAX;
        bool miss = false;
        for (int k = 0; k < 3 && !miss; k++) {
            if (fabs(dd[k]) < 1e-12) {
                if (fabs(oo[k]) > half[k])
                    miss = true;
                continue;
            }
            double t1 = (-half[k] - oo[k]) / dd[k], t2 = (half[k] - oo[k]) / dd[k];
            if (t1 > t2) {
                double tmp = t1;
                t1 = t2;
                t2 = tmp;
            }
            lo = fmax(lo, t1);
            hi = fmin(hi, t2);
            if (lo > hi)
                miss = true;
        }
        if (!miss)
            hit = lo;
        break;
    }
    case KM_TARGET_PLANE: {
        km_vec3 o = to_body(t, ray->origin_m), d = dir_to_body(t, ray->direction);
        if (fabs(d.z) < 1e-12)
            break; /* parallel */
        double s = -o.z / d.z;
        if (s < 0.0)
            break;
        double x = o.x + s * d.x, y = o.y + s * d.y;
        if (fabs(x) <= 0.5 * t->size_m.x + margin_m && fabs(y) <= 0.5 * t->size_m.y + margin_m)
            hit = s;
        break;
    }
    default:
        break;
    }
    if (hit < 0.0)
        return false;
    if (distance_m)
        *distance_m = hit;
    return true;
}

double km_target_distance(const km_target *t, km_vec3 p)
{
    if (!t)
        return DBL_MAX;
    if (t->shape == KM_TARGET_SPHERE)
        return fmax(0.0, km_vec3_dist(p, t->centre_m) - t->radius_m);
    km_vec3 b = to_body(t, p);
    double hz = t->shape == KM_TARGET_BOX ? 0.5 * t->size_m.z : 0.0;
    double dx = fmax(0.0, fabs(b.x) - 0.5 * t->size_m.x);
    double dy = fmax(0.0, fabs(b.y) - 0.5 * t->size_m.y);
    double dz = fmax(0.0, fabs(b.z) - hz);
    return sqrt(dx * dx + dy * dy + dz * dz);
}

/* ------------------------------------------------------------------ config */

km_handeye_config km_handeye_config_default(void)
{
    km_handeye_config c;
    memset(&c, 0, sizeof c);
    c.head_forward = km_vec3_make(0, 0, -1);
    c.hand_ray = KM_HAND_RAY_INDEX;
    c.gaze_margin_m = 0.02;
    c.hand_margin_m = 0.02;
    c.reach_distance_m = 0.05;
    c.gaze_dwell_ns = 100 * MS;
    c.gaze_grace_ns = 80 * MS;
    c.select_requires_hand_on_target = false;
    return c;
}

km_status km_handeye_config_check(const km_handeye_config *c)
{
    if (!c)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: NULL");
    if (!finite3(c->head_forward) || km_vec3_norm(c->head_forward) < 1e-9 || !finite3(c->eye_offset_m))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: head_forward must be non-zero");
    if ((unsigned)c->hand_ray >= KM_HAND_RAY_MODE_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: bad hand_ray");
    if (!(c->gaze_margin_m >= 0 && c->gaze_margin_m < 10 && c->hand_margin_m >= 0 &&
          c->hand_margin_m < 10 && c->reach_distance_m >= 0 && c->reach_distance_m < 10))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: margins must be in [0, 10) m");
    if (c->gaze_dwell_ns < 0 || c->gaze_grace_ns < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: times must be >= 0");
    if (c->target_count > KM_HANDEYE_MAX_TARGETS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: more than %d targets",
                        KM_HANDEYE_MAX_TARGETS);
    for (size_t i = 0; i < c->target_count; i++) {
        const km_target *t = &c->targets[i];
        if (!km_gesture_label_valid(t->name))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "handeye config: target %zu name is not 1..63 of [A-Za-z0-9_.-]", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->targets[j].name, t->name))
                return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: target '%s' twice",
                                t->name);
        double qn = sqrt(t->rotation.x * t->rotation.x + t->rotation.y * t->rotation.y +
                         t->rotation.z * t->rotation.z + t->rotation.w * t->rotation.w);
        if ((unsigned)t->shape >= KM_TARGET_SHAPE_COUNT || !finite3(t->centre_m) ||
            !finite3(t->size_m) || !isfinite(t->radius_m) || !(fabs(qn - 1.0) < 1e-6))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "handeye config: target '%s' has a bad shape, centre, size or rotation",
                            t->name);
        bool ok = t->shape == KM_TARGET_SPHERE
                      ? t->radius_m > 0
                      : t->size_m.x > 0 && t->size_m.y > 0 &&
                            (t->shape == KM_TARGET_PLANE || t->size_m.z > 0);
        if (!ok)
            return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config: target '%s' has no size",
                            t->name);
    }
    return KM_OK;
}

/* A vector of exactly `n` numbers at path (absent: *out unchanged). */
static km_status read_vector(const km_config *cfg, const char *path, double *out, size_t n,
                             double limit)
{
    if (!km_config_has(cfg, path))
        return KM_OK;
    double v[4];
    size_t count = 0;
    km_status st = km_config_get_doubles(cfg, path, v, 4, &count);
    if (st)
        return st;
    if (count != n)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: expected %zu numbers, got %zu", km_config_name(cfg),
                        km_config_line(cfg, path), path, n, count);
    for (size_t k = 0; k < n; k++) {
        if (fabs(v[k]) > limit)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: %g is beyond %g", km_config_name(cfg),
                            km_config_line(cfg, path), path, v[k], limit);
        out[k] = v[k];
    }
    return KM_OK;
}

static km_status read_vec3(const km_config *cfg, const char *path, km_vec3 *out, double limit)
{
    double v[3] = {out->x, out->y, out->z};
    km_status st = read_vector(cfg, path, v, 3, limit);
    if (!st)
        *out = km_vec3_make(v[0], v[1], v[2]);
    return st;
}

static km_status read_ms(const km_config *cfg, const char *path, int64_t *out_ns)
{
    double ms = (double)*out_ns / 1e6;
    km_status st = km_config_get_double(cfg, path, ms, 0.0, 60000.0, &ms);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    *out_ns = (int64_t)llround(ms * 1e6);
    return KM_OK;
}

static km_status read_double(const km_config *cfg, const char *path, double min, double max,
                             double *out)
{
    km_status st = km_config_get_double(cfg, path, *out, min, max, out);
    return st == KM_ERR_NOT_FOUND ? KM_OK : st;
}

static km_status read_target(const km_config *cfg, const char *path, const char *name,
                             km_target *t)
{
    static const char *const keys[] = {"shape", "centre", "size", "radius", "rotation", NULL};
    char p[800];
    km_status st = km_config_check_keys(cfg, path, keys);
    if (st)
        return st;
    if (km_config_type(cfg, path) != KM_CONFIG_MAPPING)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: a target is a mapping (shape, centre, ...)",
                        km_config_name(cfg), km_config_line(cfg, path), path);
    int line = km_config_line(cfg, path);
    memset(t, 0, sizeof *t);
    if (!km_gesture_label_valid(name))
        return km_error(KM_ERR_PARSE, "%s:%d: target name '%s' is not 1..63 of [A-Za-z0-9_.-]",
                        km_config_name(cfg), line, name);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rotation = km_quat_identity();
    char shape[16];
    snprintf(p, sizeof p, "%s.shape", path);
    st = km_config_get_string(cfg, p, "", shape, sizeof shape);
    if (st == KM_ERR_NOT_FOUND)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: target needs a shape (box, plane, sphere)",
                        km_config_name(cfg), line, path);
    if (st)
        return st;
    int found = -1;
    for (int k = 0; k < KM_TARGET_SHAPE_COUNT; k++)
        if (!strcmp(shape, shape_names[k]))
            found = k;
    if (found < 0)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: unknown shape '%s' (box, plane, sphere)",
                        km_config_name(cfg), km_config_line(cfg, p), p, shape);
    t->shape = (km_target_shape)found;
    snprintf(p, sizeof p, "%s.centre", path);
    if (!km_config_has(cfg, p))
        return km_error(KM_ERR_PARSE, "%s:%d: %s: target needs a centre [x, y, z]",
                        km_config_name(cfg), line, path);
    if ((st = read_vec3(cfg, p, &t->centre_m, 1e4)))
        return st;
    if (t->shape == KM_TARGET_SPHERE) {
        snprintf(p, sizeof p, "%s.radius", path);
        st = km_config_get_double(cfg, p, 0.0, 1e-6, 1e3, &t->radius_m);
        if (st == KM_ERR_NOT_FOUND)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: a sphere needs a radius",
                            km_config_name(cfg), line, path);
        if (st)
            return st;
    } else {
        snprintf(p, sizeof p, "%s.size", path);
        double size[3] = {0, 0, 0};
        size_t n = t->shape == KM_TARGET_BOX ? 3 : 2;
        if (!km_config_has(cfg, p))
            return km_error(KM_ERR_PARSE, "%s:%d: %s: a %s needs a size (%s)", km_config_name(cfg),
                            line, path, shape, n == 3 ? "[x, y, z]" : "[width, height]");
        if ((st = read_vector(cfg, p, size, n, 1e3)))
            return st;
        for (size_t k = 0; k < n; k++)
            if (!(size[k] > 0))
                return km_error(KM_ERR_PARSE, "%s:%d: %s: sizes must be > 0", km_config_name(cfg),
                                km_config_line(cfg, p), p);
        t->size_m = km_vec3_make(size[0], size[1], size[2]);
        snprintf(p, sizeof p, "%s.rotation", path);
        double q[4] = {0, 0, 0, 1};
        if ((st = read_vector(cfg, p, q, 4, 1e3)))
            return st;
        double qn = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
        if (qn < 1e-9)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: zero quaternion", km_config_name(cfg),
                            km_config_line(cfg, p), p);
        t->rotation = km_quat_normalize((km_quat){q[0], q[1], q[2], q[3]});
    }
    return KM_OK;
}

km_status km_handeye_config_read(const km_config *cfg, const char *path, km_handeye_config *out)
{
    static const char *const keys[] = {"head_forward", "eye_offset_m", "hand_ray",
                                       "gaze_margin_m", "hand_margin_m", "reach_distance_m",
                                       "gaze_dwell_ms", "gaze_grace_ms",
                                       "select_requires_hand_on_target", "targets", NULL};
    if (!cfg || !path || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye config read: NULL argument");
    km_status st = km_config_check_keys(cfg, path, keys);
    if (st)
        return st;
    char p[512];
#define KEY(name) (snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", name), p)
    if ((st = read_vec3(cfg, KEY("head_forward"), &out->head_forward, 1e3)) ||
        (st = read_vec3(cfg, KEY("eye_offset_m"), &out->eye_offset_m, 10)) ||
        (st = read_double(cfg, KEY("gaze_margin_m"), 0, 10, &out->gaze_margin_m)) ||
        (st = read_double(cfg, KEY("hand_margin_m"), 0, 10, &out->hand_margin_m)) ||
        (st = read_double(cfg, KEY("reach_distance_m"), 0, 10, &out->reach_distance_m)) ||
        (st = read_ms(cfg, KEY("gaze_dwell_ms"), &out->gaze_dwell_ns)) ||
        (st = read_ms(cfg, KEY("gaze_grace_ms"), &out->gaze_grace_ns)))
        return st;
    if (km_vec3_norm(out->head_forward) < 1e-9)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: must not be zero", km_config_name(cfg),
                        km_config_line(cfg, KEY("head_forward")), p);
    st = km_config_get_bool(cfg, KEY("select_requires_hand_on_target"),
                            out->select_requires_hand_on_target,
                            &out->select_requires_hand_on_target);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    char mode[16];
    st = km_config_get_string(cfg, KEY("hand_ray"), "index", mode, sizeof mode);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    if (!strcmp(mode, "index"))
        out->hand_ray = KM_HAND_RAY_INDEX;
    else if (!strcmp(mode, "forearm"))
        out->hand_ray = KM_HAND_RAY_FOREARM;
    else
        return km_error(KM_ERR_PARSE, "%s:%d: %s: '%s' is not index or forearm",
                        km_config_name(cfg), km_config_line(cfg, p), p, mode);
    const char *targets = KEY("targets");
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s", targets);
    km_config_kind kind = km_config_type(cfg, tpath);
    if (kind != KM_CONFIG_ABSENT) {
        if (kind != KM_CONFIG_MAPPING)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: expected a mapping of named targets",
                            km_config_name(cfg), km_config_line(cfg, tpath), tpath);
        out->target_count = 0;
        const char *name;
        for (size_t i = 0; (name = km_config_key(cfg, tpath, i)); i++) {
            if (out->target_count >= KM_HANDEYE_MAX_TARGETS)
                return km_error(KM_ERR_PARSE, "%s:%d: %s: more than %d targets",
                                km_config_name(cfg), km_config_line(cfg, tpath), tpath,
                                KM_HANDEYE_MAX_TARGETS);
            char one[700];
            snprintf(one, sizeof one, "%s.%s", tpath, name);
            if ((st = read_target(cfg, one, name, &out->targets[out->target_count])))
                return st;
            out->target_count++;
        }
    }
#undef KEY
    st = km_handeye_config_check(out);
    if (st)
        return km_error(KM_ERR_PARSE, "%s: %s", km_config_name(cfg), km_last_error());
    return KM_OK;
}

/* ----------------------------------------------------------------- tracker */

typedef struct hand_state {
    int target;               /* effective hand target, -1 none */
    int64_t reach_ns;         /* when it reached it */
    bool pinching;
    double angle_rad;
} hand_state;

struct km_handeye {
    km_handeye_config cfg;
    int gaze_target;          /* effective gaze target (after grace), -1 none */
    int gaze_raw;             /* this frame's closest hit */
    int64_t gaze_raw_since_ns;/* the raw target differs from the effective one since */
    int64_t gaze_enter_ns[KM_HANDEYE_MAX_TARGETS]; /* last entry per target */
    int64_t gaze_leave_ns[KM_HANDEYE_MAX_TARGETS];
    hand_state hand[2];
    int64_t last_ns;
};

void km_handeye_reset(km_handeye *he)
{
    if (!he)
        return;
    he->gaze_target = he->gaze_raw = -1;
    he->gaze_raw_since_ns = 0;
    for (int h = 0; h < 2; h++) {
        memset(&he->hand[h], 0, sizeof he->hand[h]);
        he->hand[h].target = -1;
        he->hand[h].angle_rad = NAN;
    }
    for (int i = 0; i < KM_HANDEYE_MAX_TARGETS; i++)
        he->gaze_enter_ns[i] = he->gaze_leave_ns[i] = INT64_MIN / 2;
    he->last_ns = INT64_MIN;
}

km_handeye *km_handeye_create(const km_handeye_config *cfg, km_status *err)
{
    km_status st = km_handeye_config_check(cfg);
    km_handeye *he = NULL;
    if (!st) {
        he = calloc(1, sizeof *he);
        if (!he) {
            st = km_error(KM_ERR_NO_MEMORY, "handeye: out of memory");
        } else {
            he->cfg = *cfg;
            km_handeye_reset(he);
        }
    }
    if (err)
        *err = st;
    return he;
}

void km_handeye_destroy(km_handeye *he)
{
    free(he);
}

km_handeye_state km_handeye_state_get(const km_handeye *he)
{
    km_handeye_state s;
    memset(&s, 0, sizeof s);
    s.gaze_target = he ? he->gaze_target : -1;
    for (int h = 0; h < 2; h++) {
        s.hand_target[h] = he ? he->hand[h].target : -1;
        s.gaze_hand_angle_rad[h] = he ? he->hand[h].angle_rad : NAN;
    }
    return s;
}

/* Closest target hit by the ray; -1 none. */
static int closest_hit(const km_handeye_config *c, const km_ray *ray, double margin, double *dist)
{
    int best = -1;
    double bd = DBL_MAX;
    for (size_t i = 0; i < c->target_count; i++) {
        double d;
        if (km_target_hit(&c->targets[i], ray, margin, &d) && d < bd) {
            bd = d;
            best = (int)i;
        }
    }
    if (dist)
        *dist = bd;
    return best;
}

typedef struct sink {
    km_gesture_event *events;
    size_t capacity, count, dropped;
} sink;

static km_gesture_event *emit(sink *s, km_gesture_event_type type, int64_t t, int person,
                              km_hand_side hand, const char *target)
{
    if (s->count >= s->capacity) {
        s->dropped++;
        return NULL;
    }
    km_gesture_event *e = &s->events[s->count++];
    memset(e, 0, sizeof *e);
    e->type = type;
    e->t_ns = t;
    e->person = person;
    e->hand = hand;
    snprintf(e->target, sizeof e->target, "%s", target);
    e->score = 1.0;
    e->gaze_hand_angle_rad = NAN;
    e->gaze_lead_ms = NAN;
    e->same_target = -1;
    return e;
}

/* Lead of the gaze over the hand on target `t` reached at `reach_ns`: NAN when the gaze was
 * not on it within the lead window. */
static double lead_ms(const km_handeye *he, int t, int64_t reach_ns)
{
    if (t < 0)
        return NAN;
    int64_t enter = he->gaze_enter_ns[t];
    bool on_or_recent = he->gaze_target == t || reach_ns - he->gaze_leave_ns[t] <= HANDEYE_LEAD_WINDOW_NS;
    if (enter <= INT64_MIN / 4 || !on_or_recent || reach_ns - enter > HANDEYE_LEAD_WINDOW_NS)
        return NAN;
    return (double)(reach_ns - enter) / 1e6;
}

km_status km_handeye_update(km_handeye *he, const km_handeye_input *in, km_gesture_event *events,
                            size_t capacity, size_t *count)
{
    if (count)
        *count = 0;
    if (!he || !in || (!events && capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye update: NULL argument");
    if (in->time_ns <= he->last_ns)
        return KM_OK; /* repeated or out of order: ignored */
    const km_handeye_config *c = &he->cfg;
    if (in->gaze_valid && (!finite3(in->gaze.origin_m) || !finite3(in->gaze.direction) ||
                           fabs(km_vec3_norm(in->gaze.direction) - 1.0) > 1e-3))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handeye: gaze ray not finite or not unit");
    for (int h = 0; h < 2; h++)
        if (in->hand[h].valid &&
            (!finite3(in->hand[h].ray.origin_m) || !finite3(in->hand[h].position_m) ||
             !finite3(in->hand[h].ray.direction) ||
             fabs(km_vec3_norm(in->hand[h].ray.direction) - 1.0) > 1e-3))
            return km_error(KM_ERR_INVALID_ARGUMENT, "handeye: hand %d ray not finite or not unit", h);
    he->last_ns = in->time_ns;
    int64_t t = in->time_ns;
    sink s = {events, capacity, 0, 0};

    /* gaze: the closest target hit, held through short excursions (grace) */
    double gaze_dist = DBL_MAX;
    int raw = in->gaze_valid ? closest_hit(c, &in->gaze, c->gaze_margin_m, &gaze_dist) : -1;
    if (raw != he->gaze_raw) {
        he->gaze_raw = raw;
        he->gaze_raw_since_ns = t;
    }
    bool switch_now = raw != he->gaze_target &&
                      (he->gaze_target < 0 || t - he->gaze_raw_since_ns >= c->gaze_grace_ns);
    if (switch_now) {
        int old = he->gaze_target;
        if (old >= 0) {
            he->gaze_leave_ns[old] = t;
            emit(&s, KM_EVENT_GAZE_LEAVE, t, in->person, KM_HAND_SIDE_UNKNOWN, c->targets[old].name);
        }
        he->gaze_target = raw;
        if (raw >= 0) {
            /* the eyes arrived when the raw hit changed, not when the grace ran out */
            he->gaze_enter_ns[raw] = he->gaze_raw_since_ns;
            km_gesture_event *e = emit(&s, KM_EVENT_GAZE_ENTER, t, in->person, KM_HAND_SIDE_UNKNOWN,
                                       c->targets[raw].name);
            /* a hand already there was first: negative lead */
            for (int h = 0; h < 2 && e; h++)
                if (he->hand[h].target == raw) {
                    e->hand = h ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
                    e->gaze_lead_ms = -(double)(he->gaze_raw_since_ns - he->hand[h].reach_ns) / 1e6;
                    e->same_target = 1;
                }
        }
    }
    int g = he->gaze_target;

    for (int h = 0; h < 2; h++) {
        hand_state *hs = &he->hand[h];
        km_hand_side side = h ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
        int target = -1;
        double hand_dist = DBL_MAX;
        if (in->hand[h].valid) {
            /* touching a target beats pointing at one */
            double best = c->reach_distance_m;
            for (size_t i = 0; i < c->target_count; i++) {
                double d = km_target_distance(&c->targets[i], in->hand[h].position_m);
                if (d <= best) {
                    best = d;
                    target = (int)i;
                    hand_dist = 0.0;
                }
            }
            if (target < 0)
                target = closest_hit(c, &in->hand[h].ray, c->hand_margin_m, &hand_dist);
        }
        /* gaze-hand angle: seen from the eye, between the gaze and where the hand points
         * (its hit on a target, else a point along the hand ray as far as the gaze goes) */
        hs->angle_rad = NAN;
        if (in->gaze_valid && in->hand[h].valid) {
            double along = target >= 0 ? hand_dist : (g >= 0 && gaze_dist < DBL_MAX ? gaze_dist : 2.0);
            km_vec3 aim = km_vec3_add(in->hand[h].ray.origin_m,
                                      km_vec3_scale(in->hand[h].ray.direction, along));
            km_vec3 to_aim = km_vec3_normalize(km_vec3_sub(aim, in->gaze.origin_m));
            double cosang = km_vec3_dot(to_aim, in->gaze.direction);
            hs->angle_rad = acos(fmax(-1.0, fmin(1.0, cosang)));
        }
        if (target != hs->target) {
            if (hs->target >= 0)
                emit(&s, KM_EVENT_HAND_LEAVE, t, in->person, side, c->targets[hs->target].name);
            hs->target = target;
            hs->reach_ns = t;
            if (target >= 0) {
                km_gesture_event *e = emit(&s, KM_EVENT_HAND_REACH, t, in->person, side,
                                           c->targets[target].name);
                if (e) {
                    e->gaze_hand_angle_rad = hs->angle_rad;
                    e->gaze_lead_ms = lead_ms(he, target, t);
                    e->same_target = g >= 0 ? g == target : 0;
                }
            }
        }
        /* look-and-pinch: on the pinch's start, select what the eyes rest on, unless the
         * hand points at something else */
        bool pinching = in->hand[h].valid && in->hand[h].pinching;
        if (pinching && !hs->pinching) {
            bool dwelt = g >= 0 && t - he->gaze_enter_ns[g] >= c->gaze_dwell_ns;
            bool agree = c->select_requires_hand_on_target ? target == g : (target < 0 || target == g);
            if (dwelt && agree) {
                km_gesture_event *e = emit(&s, KM_EVENT_SELECT, t, in->person, side, c->targets[g].name);
                if (e) {
                    e->gaze_hand_angle_rad = hs->angle_rad;
                    e->gaze_lead_ms = target == g ? lead_ms(he, g, hs->reach_ns) : NAN;
                    e->same_target = target == g;
                }
            } else if (g >= 0) {
                km_log(KM_LOG_DEBUG, "gesture", "handeye: pinch not a selection (%s)",
                       !dwelt ? "gaze not dwelt" : "hand on another target");
            }
        }
        hs->pinching = pinching;
    }
    if (count)
        *count = s.count;
    if (s.dropped)
        return km_error(KM_ERR_CAPACITY, "handeye: %zu events did not fit", s.dropped);
    return KM_OK;
}
