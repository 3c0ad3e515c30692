/* The live gesture stage: one object the pipeline feeds per frame with bodies, landmark
 * hands and eye-tracker gaze, and asks once per frame for the events decided since. It
 * wires the recognizer, the spotters (one per hand of every person followed), the hand-pose
 * tracker and hand-eye together the way docs/gestures.md describes, so the pipeline's
 * wiring is a few calls. Everything is allocated at create; the per-frame calls allocate
 * nothing (counted in tests/gesture/test_engine.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

#define MS 1000000LL
/* Hip positions kept per person for the travel speed (500 ms at up to 500 Hz). */
#define HIP_RING 256

typedef enum spot_source { SOURCE_NONE = 0, SOURCE_BODY, SOURCE_HAND } spot_source;

typedef struct slot {
    bool active;
    int person;
    int64_t last_seen_ns;
    km_spotter *spot[2];        /* [0] left, [1] right; NULL when that hand is not spotted */
    spot_source source[2];      /* what feeds the spotter (a change resets it: body-relative
                                   and world positions do not mix) */
    km_handeye *he;             /* NULL without targets */
    bool body_valid;
    int64_t body_ns;
    km_gesture_body body;
    bool forward_valid;
    km_vec3 forward;
    int64_t hip_t[HIP_RING];
    km_vec3 hip_p[HIP_RING];
    size_t hip_count, hip_next;
    bool travelling;
    bool hand_valid[2];
    km_hand hand[2];            /* last landmark hand per side */
    bool gaze_valid;
    int64_t gaze_ns;
    km_ray gaze;
} slot;

struct km_gesture_engine {
    km_gesture_engine_config cfg;
    km_gesture_recognizer *rec;
    km_handpose_tracker *poses;
    slot *slots;
    km_gesture_event *queue;    /* ring of cfg.event_capacity */
    size_t queue_head, queue_count;
    km_gesture_event *scratch;  /* what one stage call may return */
    size_t scratch_capacity;
    int64_t now_ns;             /* latest time seen (step or input) */
    int64_t step_ns;            /* time of the last step that ran the stages */
    km_gesture_engine_stats stats;
};

km_gesture_body km_gesture_body_init(void)
{
    km_gesture_body b;
    memset(&b, 0, sizeof b);
    b.head_rotation = km_quat_identity();
    return b;
}

km_gesture_engine_config km_gesture_engine_config_default(void)
{
    km_gesture_engine_config c;
    memset(&c, 0, sizeof c);
    c.builtin_variants = 5;
    c.resample_count = 64;
    c.spotter = km_spotter_config_default();
    c.spotter.min_height_m = -0.1; /* streams are hand - chest (docs/gestures.md) */
    c.handpose = km_handpose_config_default();
    c.handeye = km_handeye_config_default();
    c.max_people = 4;
    c.hands[0] = c.hands[1] = true;
    c.travel_speed_mps = 0.8;
    c.travel_window_ns = 500 * MS;
    c.gaze_override_ns = 500 * MS;
    c.hand_timeout_ns = 300 * MS;
    c.person_timeout_ns = 2000 * MS;
    c.event_capacity = 256;
    return c;
}

km_status km_gesture_engine_config_check(const km_gesture_engine_config *c)
{
    if (!c)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine config: NULL");
    if (!memchr(c->model_path, '\0', sizeof c->model_path))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine config: model path too long");
    if (!c->model_path[0] && (c->builtin_variants < 1 || c->builtin_variants > 100))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine config: builtin_variants not in [1, 100]");
    if (c->resample_count < 8 || c->resample_count > 1024)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine config: resample_count not in [8, 1024]");
    if (c->max_people < 1 || c->max_people > KM_GESTURE_ENGINE_MAX_PEOPLE)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine config: max_people not in [1, %d]",
                        KM_GESTURE_ENGINE_MAX_PEOPLE);
    if (!(c->travel_speed_mps >= 0 && c->travel_speed_mps < 100))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine config: travel_speed_mps not in [0, 100)");
    if (c->travel_window_ns <= 0 || c->gaze_override_ns < 0 || c->hand_timeout_ns <= 0 ||
        c->person_timeout_ns <= 0)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine config: travel window, hand and person timeouts must be "
                        "> 0, gaze override >= 0");
    if (c->event_capacity < 1 || c->event_capacity > 1000000)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine config: event_capacity not in [1, 1000000]");
    km_status st = km_spotter_config_check(&c->spotter);
    if (st)
        return st;
    km_handpose_config hp = c->handpose;
    hp.max_hands = 2 * (size_t)c->max_people;
    if ((st = km_handpose_config_check(&hp)))
        return st;
    return km_handeye_config_check(&c->handeye);
}

/* ------------------------------------------------------------------ config */

static km_status cfg_ms(const km_config *cfg, const char *path, double max_ms, int64_t *out_ns)
{
    double ms = (double)*out_ns / 1e6;
    km_status st = km_config_get_double(cfg, path, ms, 0.0, max_ms, &ms);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    *out_ns = (int64_t)llround(ms * 1e6);
    return KM_OK;
}

static km_status cfg_double(const km_config *cfg, const char *path, double min, double max,
                            double *out)
{
    km_status st = km_config_get_double(cfg, path, *out, min, max, out);
    return st == KM_ERR_NOT_FOUND ? KM_OK : st;
}

static km_status cfg_size(const km_config *cfg, const char *path, long min, long max, size_t *out)
{
    long v = (long)*out;
    km_status st = km_config_get_int(cfg, path, v, min, max, &v);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    *out = (size_t)v;
    return KM_OK;
}

/* "base.name" into buf (paths are bounded by the reader: base <= 256 + a sub-section) */
static const char *join_key(char *buf, size_t size, const char *base, const char *name)
{
    int n = snprintf(buf, size, "%s%s%s", base, *base ? "." : "", name);
    if (n < 0 || (size_t)n >= size)
        buf[0] = '\0';
    return buf;
}
#define KEY(base, name) join_key(p, sizeof p, (base), (name))

static km_status read_spotter(const km_config *cfg, const char *path, km_spotter_config *s)
{
    static const char *const keys[] = {"speed_on_mps", "speed_off_mps", "end_fraction", "rest_ms",
                                       "end_rest_ms", "min_segment_ms", "max_segment_ms",
                                       "min_extent_m", "min_score", "min_margin", "min_height_m",
                                       NULL};
    km_status st = km_config_check_keys(cfg, path, keys);
    if (st)
        return st;
    char p[640];
    if ((st = cfg_double(cfg, KEY(path, "speed_on_mps"), 1e-3, 100, &s->speed_on_mps)) ||
        (st = cfg_double(cfg, KEY(path, "speed_off_mps"), 1e-3, 100, &s->speed_off_mps)) ||
        (st = cfg_double(cfg, KEY(path, "end_fraction"), 0, 0.99, &s->end_fraction)) ||
        (st = cfg_ms(cfg, KEY(path, "rest_ms"), 10000, &s->rest_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "end_rest_ms"), 10000, &s->end_rest_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "min_segment_ms"), 10000, &s->min_segment_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "max_segment_ms"), 3900, &s->max_segment_ns)) ||
        (st = cfg_double(cfg, KEY(path, "min_extent_m"), 0, 10, &s->min_extent_m)) ||
        (st = cfg_double(cfg, KEY(path, "min_score"), 0, 1, &s->min_score)) ||
        (st = cfg_double(cfg, KEY(path, "min_margin"), 0, 1, &s->min_margin)) ||
        (st = cfg_double(cfg, KEY(path, "min_height_m"), -1e9, 1e9, &s->min_height_m)))
        return st;
    if (km_spotter_config_check(s))
        return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                        km_config_line(cfg, path), path, km_last_error());
    return KM_OK;
}

static km_status read_handpose(const km_config *cfg, const char *path, km_handpose_config *h)
{
    static const char *const keys[] = {"pinch_enter", "pinch_exit", "enter_score", "exit_score",
                                       "min_on_ms", "min_off_ms", "hold_interval_ms",
                                       "lost_timeout_ms", NULL};
    km_status st = km_config_check_keys(cfg, path, keys);
    if (st)
        return st;
    char p[640];
    if ((st = cfg_double(cfg, KEY(path, "pinch_enter"), 0, 10, &h->pinch_enter)) ||
        (st = cfg_double(cfg, KEY(path, "pinch_exit"), 0, 10, &h->pinch_exit)) ||
        (st = cfg_double(cfg, KEY(path, "enter_score"), 0, 1, &h->enter_score)) ||
        (st = cfg_double(cfg, KEY(path, "exit_score"), 0, 1, &h->exit_score)) ||
        (st = cfg_ms(cfg, KEY(path, "min_on_ms"), 60000, &h->min_on_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "min_off_ms"), 60000, &h->min_off_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "hold_interval_ms"), 60000, &h->hold_interval_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "lost_timeout_ms"), 60000, &h->lost_timeout_ns)))
        return st;
    if (km_handpose_config_check(h))
        return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                        km_config_line(cfg, path), path, km_last_error());
    return KM_OK;
}

km_status km_gesture_engine_config_read(const km_config *cfg, const char *path,
                                        km_gesture_engine_config *out)
{
    static const char *const keys[] = {"model", "builtin_variants", "resample_count", "max_people",
                                       "hands", "travel_speed_mps", "travel_window_ms",
                                       "gaze_override_ms", "hand_timeout_ms", "person_timeout_ms",
                                       "event_capacity", "spotter", "handpose", "handeye",
                                       "enabled" /* kinemad: the stage on/off */, NULL};
    if (!cfg || !path || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine config read: NULL argument");
    if (strlen(path) > 256)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine config read: path too long");
    km_config_kind kind = km_config_type(cfg, path);
    if (kind == KM_CONFIG_ABSENT)
        return KM_OK;
    if (kind != KM_CONFIG_MAPPING)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: expected a mapping", km_config_name(cfg),
                        km_config_line(cfg, path), path);
    km_status st = km_config_check_keys(cfg, path, keys);
    if (st)
        return st;
    char p[640];
    st = km_config_get_string(cfg, KEY(path, "model"), out->model_path, out->model_path,
                              sizeof out->model_path);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    long v = out->builtin_variants;
    st = km_config_get_int(cfg, KEY(path, "builtin_variants"), v, 1, 100, &v);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    out->builtin_variants = (int)v;
    v = out->max_people;
    st = km_config_get_int(cfg, KEY(path, "max_people"), v, 1, KM_GESTURE_ENGINE_MAX_PEOPLE, &v);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    out->max_people = (int)v;
    if ((st = cfg_size(cfg, KEY(path, "resample_count"), 8, 1024, &out->resample_count)) ||
        (st = cfg_size(cfg, KEY(path, "event_capacity"), 1, 1000000, &out->event_capacity)) ||
        (st = cfg_double(cfg, KEY(path, "travel_speed_mps"), 0, 99, &out->travel_speed_mps)) ||
        (st = cfg_ms(cfg, KEY(path, "travel_window_ms"), 10000, &out->travel_window_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "gaze_override_ms"), 60000, &out->gaze_override_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "hand_timeout_ms"), 60000, &out->hand_timeout_ns)) ||
        (st = cfg_ms(cfg, KEY(path, "person_timeout_ms"), 3600000, &out->person_timeout_ns)))
        return st;
    char hands[16];
    st = km_config_get_string(cfg, KEY(path, "hands"), "", hands, sizeof hands);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    if (!st) {
        static const char *const names[4] = {"none", "left", "right", "both"};
        int found = -1;
        for (int k = 0; k < 4; k++)
            if (!strcmp(hands, names[k]))
                found = k;
        if (found < 0)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: '%s' is not both, left, right or none",
                            km_config_name(cfg), km_config_line(cfg, p), p, hands);
        out->hands[0] = found & 1;
        out->hands[1] = (found & 2) != 0;
    }
    char sub[600];
    join_key(sub, sizeof sub, path, "spotter");
    if ((st = read_spotter(cfg, sub, &out->spotter)))
        return st;
    join_key(sub, sizeof sub, path, "handpose");
    if ((st = read_handpose(cfg, sub, &out->handpose)))
        return st;
    join_key(sub, sizeof sub, path, "handeye");
    if (km_config_type(cfg, sub) != KM_CONFIG_ABSENT &&
        (st = km_handeye_config_read(cfg, sub, &out->handeye)))
        return st;
    if (km_gesture_engine_config_check(out))
        return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                        km_config_line(cfg, path), path, km_last_error());
    return KM_OK;
}

#undef KEY

/* ---------------------------------------------------------- create/destroy */

void km_gesture_engine_destroy(km_gesture_engine *e)
{
    if (!e)
        return;
    if (e->slots)
        for (int i = 0; i < e->cfg.max_people; i++) {
            km_spotter_destroy(e->slots[i].spot[0]);
            km_spotter_destroy(e->slots[i].spot[1]);
            km_handeye_destroy(e->slots[i].he);
        }
    free(e->slots);
    km_handpose_tracker_destroy(e->poses);
    km_gesture_recognizer_destroy(e->rec);
    free(e->queue);
    free(e->scratch);
    free(e);
}

static km_status create_parts(km_gesture_engine *e)
{
    const km_gesture_engine_config *c = &e->cfg;
    km_status st = KM_OK;
    if (c->model_path[0]) {
        e->rec = km_gesture_model_load(c->model_path, 0, &st);
        if (!e->rec)
            return st;
    } else {
        km_gesture_config gc = km_gesture_config_default();
        gc.resample_count = c->resample_count;
        gc.max_templates = (size_t)c->builtin_variants * KM_GESTURE_BUILTIN_COUNT;
        e->rec = km_gesture_recognizer_create(&gc, &st);
        if (!e->rec)
            return st;
        if ((st = km_gesture_add_builtin(e->rec, c->builtin_variants)))
            return st;
    }
    km_handpose_config hp = c->handpose;
    hp.max_hands = 2 * (size_t)c->max_people;
    e->poses = km_handpose_tracker_create(&hp, &st);
    if (!e->poses)
        return st;
    e->slots = calloc((size_t)c->max_people, sizeof *e->slots);
    e->queue = calloc(c->event_capacity, sizeof *e->queue);
    /* the most one call can produce: every pose of every hand ending at once */
    e->scratch_capacity = hp.max_hands * KM_POSE_COUNT + 16;
    e->scratch = calloc(e->scratch_capacity, sizeof *e->scratch);
    if (!e->slots || !e->queue || !e->scratch)
        return km_error(KM_ERR_NO_MEMORY, "gesture engine: out of memory");
    for (int i = 0; i < c->max_people; i++) {
        slot *s = &e->slots[i];
        for (int h = 0; h < 2; h++) {
            if (!c->hands[h])
                continue;
            km_spotter_config sc = c->spotter;
            sc.hand = h ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
            s->spot[h] = km_spotter_create(&sc, e->rec, &st);
            if (!s->spot[h])
                return st;
            if ((st = km_spotter_use_builtin_limits(s->spot[h])))
                return st;
        }
        if (c->handeye.target_count > 0) {
            s->he = km_handeye_create(&c->handeye, &st);
            if (!s->he)
                return st;
        }
    }
    return KM_OK;
}

km_gesture_engine *km_gesture_engine_create(const km_gesture_engine_config *cfg, km_status *err)
{
    km_status st = km_gesture_engine_config_check(cfg);
    km_gesture_engine *e = NULL;
    if (!st) {
        e = calloc(1, sizeof *e);
        if (!e) {
            st = km_error(KM_ERR_NO_MEMORY, "gesture engine: out of memory");
        } else {
            e->cfg = *cfg;
            e->now_ns = e->step_ns = INT64_MIN;
            st = create_parts(e);
            if (st) {
                km_gesture_engine_destroy(e);
                e = NULL;
            }
        }
    }
    if (err)
        *err = st;
    return e;
}

const km_gesture_recognizer *km_gesture_engine_recognizer(const km_gesture_engine *e)
{
    return e ? e->rec : NULL;
}

km_gesture_engine_stats km_gesture_engine_stats_get(const km_gesture_engine *e)
{
    km_gesture_engine_stats z;
    memset(&z, 0, sizeof z);
    if (!e)
        return z;
    z = e->stats;
    z.people = 0;
    for (int i = 0; i < e->cfg.max_people; i++)
        z.people += e->slots[i].active;
    return z;
}

/* ------------------------------------------------------------------ queue */

static void enqueue(km_gesture_engine *e, const km_gesture_event *ev, size_t n, int person)
{
    for (size_t k = 0; k < n; k++) {
        if (e->queue_count == e->cfg.event_capacity) {
            e->stats.events_dropped++;
            continue;
        }
        km_gesture_event *q = &e->queue[(e->queue_head + e->queue_count) % e->cfg.event_capacity];
        *q = ev[k];
        if (person >= 0)
            q->person = person;
        e->queue_count++;
        e->stats.events++;
    }
}

/* ---------------------------------------------------------------- people */

static void slot_clear(slot *s)
{
    for (int h = 0; h < 2; h++) {
        km_spotter_reset(s->spot[h]);
        if (s->spot[h])
            km_spotter_set_suppressed(s->spot[h], false);
        s->source[h] = SOURCE_NONE;
        s->hand_valid[h] = false;
    }
    km_handeye_reset(s->he);
    s->active = false;
    s->body_valid = s->forward_valid = s->travelling = s->gaze_valid = false;
    s->hip_count = s->hip_next = 0;
}

/* The slot following `person`, or a free one claimed for it; NULL when all are taken. */
static slot *find_slot(km_gesture_engine *e, int person, int64_t t_ns)
{
    slot *free_slot = NULL;
    for (int i = 0; i < e->cfg.max_people; i++) {
        slot *s = &e->slots[i];
        if (s->active && s->person == person) {
            if (t_ns > s->last_seen_ns)
                s->last_seen_ns = t_ns;
            return s;
        }
        if (!s->active && !free_slot)
            free_slot = s;
    }
    if (!free_slot) {
        e->stats.people_refused++;
        return NULL;
    }
    slot_clear(free_slot);
    free_slot->active = true;
    free_slot->person = person;
    free_slot->last_seen_ns = t_ns;
    return free_slot;
}

static bool finite3(km_vec3 v)
{
    return isfinite(v.x) && isfinite(v.y) && isfinite(v.z);
}

static bool tracked(const km_gesture_body *b, km_gesture_body_joint j)
{
    return (b->tracked & KM_BODY_BIT(j)) != 0;
}

static void note_time(km_gesture_engine *e, int64_t t_ns)
{
    if (t_ns > e->now_ns)
        e->now_ns = t_ns;
}

/* Feeds one position into the spotter of side h, switching its source if needed. */
static km_status spot(km_gesture_engine *e, slot *s, int h, spot_source source, km_vec3 p,
                      int64_t t_ns)
{
    km_spotter *sp = s->spot[h];
    if (!sp)
        return KM_OK;
    if (s->source[h] != source) {
        km_spotter_reset(sp);
        s->source[h] = source;
    }
    if (s->forward_valid)
        km_spotter_set_forward(sp, s->forward);
    km_spotter_set_suppressed(sp, source == SOURCE_BODY && s->travelling);
    size_t n = 0;
    km_status st = km_spotter_push(sp, p, t_ns, e->scratch, e->scratch_capacity, &n);
    enqueue(e, e->scratch, n, s->person);
    return st;
}

/* Horizontal speed of the hips over the last travel window. */
static void update_travel(km_gesture_engine *e, slot *s, km_vec3 hips, int64_t t_ns)
{
    const km_gesture_engine_config *c = &e->cfg;
    if (s->hip_count > 0 && t_ns <= s->hip_t[(s->hip_next + HIP_RING - 1) % HIP_RING])
        return;
    s->hip_t[s->hip_next] = t_ns;
    s->hip_p[s->hip_next] = hips;
    s->hip_next = (s->hip_next + 1) % HIP_RING;
    if (s->hip_count < HIP_RING)
        s->hip_count++;
    /* the oldest sample within the window */
    size_t oldest = (s->hip_next + HIP_RING - 1) % HIP_RING;
    for (size_t k = 1; k < s->hip_count; k++) {
        size_t idx = (s->hip_next + HIP_RING - 1 - k) % HIP_RING;
        if (t_ns - s->hip_t[idx] > c->travel_window_ns)
            break;
        oldest = idx;
    }
    double dt = (double)(t_ns - s->hip_t[oldest]) * 1e-9;
    s->travelling = false;
    if (c->travel_speed_mps > 0 && dt >= 0.5 * (double)c->travel_window_ns * 1e-9) {
        km_vec3 up = km_vec3_normalize(c->spotter.up);
        km_vec3 d = km_vec3_sub(hips, s->hip_p[oldest]);
        d = km_vec3_sub(d, km_vec3_scale(up, km_vec3_dot(d, up)));
        s->travelling = km_vec3_norm(d) / dt > c->travel_speed_mps;
    }
}

km_status km_gesture_engine_push_body(km_gesture_engine *e, int person, int64_t t_ns,
                                      const km_gesture_body *b)
{
    if (!e || !b)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine push body: NULL argument");
    if (person < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine push body: person %d < 0", person);
    for (int j = 0; j < KM_BODY_JOINT_COUNT; j++)
        if (tracked(b, (km_gesture_body_joint)j) && !finite3(b->joint_m[j]))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "gesture engine push body: joint %d not finite", j);
    if (b->tracked >> KM_BODY_JOINT_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine push body: tracked bits beyond the %d joints",
                        KM_BODY_JOINT_COUNT);
    if (b->head_rotation_valid &&
        !(isfinite(b->head_rotation.x) && isfinite(b->head_rotation.y) &&
          isfinite(b->head_rotation.z) && isfinite(b->head_rotation.w)))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine push body: bad head rotation");
    slot *s = find_slot(e, person, t_ns);
    if (!s)
        return km_error(KM_ERR_CAPACITY, "gesture engine: %d people followed already, person %d "
                        "ignored", e->cfg.max_people, person);
    if (s->body_valid && t_ns <= s->body_ns)
        return KM_OK; /* repeated or out of order */
    note_time(e, t_ns);
    e->stats.bodies++;
    s->body = *b;
    s->body_ns = t_ns;
    s->body_valid = true;
    /* the person's forward: given, else from the shoulders, else the previous one */
    km_vec3 up = km_vec3_normalize(e->cfg.spotter.up);
    km_vec3 f = {0, 0, 0};
    if (b->facing_valid && finite3(b->facing))
        f = b->facing;
    else if (tracked(b, KM_BODY_LEFT_SHOULDER) && tracked(b, KM_BODY_RIGHT_SHOULDER))
        f = km_vec3_cross(up, km_vec3_sub(b->joint_m[KM_BODY_RIGHT_SHOULDER],
                                          b->joint_m[KM_BODY_LEFT_SHOULDER]));
    f = km_vec3_sub(f, km_vec3_scale(up, km_vec3_dot(f, up)));
    if (km_vec3_norm(f) > 1e-6) {
        s->forward = km_vec3_normalize(f);
        s->forward_valid = true;
    }
    if (tracked(b, KM_BODY_HIPS))
        update_travel(e, s, b->joint_m[KM_BODY_HIPS], t_ns);
    km_status result = KM_OK;
    if (tracked(b, KM_BODY_CHEST)) {
        static const km_gesture_body_joint hand_joint[2] = {KM_BODY_LEFT_HAND, KM_BODY_RIGHT_HAND};
        for (int h = 0; h < 2; h++) {
            if (!tracked(b, hand_joint[h]))
                continue;
            km_vec3 rel = km_vec3_sub(b->joint_m[hand_joint[h]], b->joint_m[KM_BODY_CHEST]);
            km_status st = spot(e, s, h, SOURCE_BODY, rel, t_ns);
            if (st && !result)
                result = st;
        }
    }
    return result;
}

static bool body_fresh(const km_gesture_engine *e, const slot *s, int64_t now_ns)
{
    return s->body_valid && now_ns - s->body_ns <= e->cfg.hand_timeout_ns;
}

km_status km_gesture_engine_push_hand(km_gesture_engine *e, const km_hand *hand)
{
    if (!e || !hand)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine push hand: NULL argument");
    km_status st = km_hand_validate(hand);
    if (st)
        return st;
    km_hand h = *hand;
    if (h.person < 0)
        h.person = 0;
    if (h.side == KM_HAND_SIDE_UNKNOWN)
        h.side = KM_HAND_SIDE_RIGHT;
    slot *s = find_slot(e, h.person, h.time_ns);
    if (!s)
        return km_error(KM_ERR_CAPACITY, "gesture engine: %d people followed already, person %d "
                        "ignored", e->cfg.max_people, h.person);
    int side = h.side == KM_HAND_SIDE_RIGHT;
    if (s->hand_valid[side] && h.time_ns <= s->hand[side].time_ns)
        return KM_OK; /* repeated or out of order */
    note_time(e, h.time_ns);
    e->stats.hands++;
    s->hand[side] = h;
    s->hand_valid[side] = true;
    size_t n = 0;
    km_status result = km_handpose_tracker_push(e->poses, &h, e->scratch, e->scratch_capacity, &n);
    enqueue(e, e->scratch, n, -1);
    /* the body's hand joint is the steadier stream for gestures when there is one */
    static const km_gesture_body_joint hand_joint[2] = {KM_BODY_LEFT_HAND, KM_BODY_RIGHT_HAND};
    bool body_spots = body_fresh(e, s, h.time_ns) && tracked(&s->body, KM_BODY_CHEST) &&
                      tracked(&s->body, hand_joint[side]);
    km_vec3 p;
    if (!body_spots && km_hand_position(&h, &p)) {
        st = spot(e, s, side, SOURCE_HAND, p, h.time_ns);
        if (st && !result)
            result = st;
    }
    return result;
}

km_status km_gesture_engine_push_gaze(km_gesture_engine *e, int person, int64_t t_ns,
                                      km_vec3 origin_m, km_vec3 direction)
{
    if (!e)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine push gaze: NULL engine");
    if (person < 0 || !finite3(origin_m) || !finite3(direction) || km_vec3_norm(direction) < 1e-9 ||
        km_vec3_norm(origin_m) > 1e4)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture engine push gaze: need person >= 0, a finite origin within 10 km "
                        "and a non-zero finite direction");
    slot *s = find_slot(e, person, t_ns);
    if (!s)
        return km_error(KM_ERR_CAPACITY, "gesture engine: %d people followed already, person %d "
                        "ignored", e->cfg.max_people, person);
    note_time(e, t_ns);
    e->stats.gazes++;
    s->gaze_valid = true;
    s->gaze_ns = t_ns;
    s->gaze.origin_m = origin_m;
    s->gaze.direction = km_vec3_normalize(direction);
    return KM_OK;
}

/* ------------------------------------------------------------------- step */

static bool hand_fresh(const km_gesture_engine *e, const slot *s, int h, int64_t now_ns)
{
    return s->hand_valid[h] && now_ns - s->hand[h].time_ns <= e->cfg.hand_timeout_ns;
}

static void run_handeye(km_gesture_engine *e, slot *s, int64_t now_ns)
{
    const km_handeye_config *hc = &e->cfg.handeye;
    km_handeye_input in;
    memset(&in, 0, sizeof in);
    in.time_ns = now_ns;
    in.person = s->person;
    bool body = body_fresh(e, s, now_ns);
    const km_gesture_body *b = &s->body;
    if (s->gaze_valid && now_ns - s->gaze_ns <= e->cfg.gaze_override_ns) {
        in.gaze = s->gaze;
        in.gaze_valid = true;
    } else if (body && tracked(b, KM_BODY_HEAD) && b->head_rotation_valid) {
        in.gaze_valid = km_gaze_from_head_pose(b->joint_m[KM_BODY_HEAD], b->head_rotation,
                                               hc->head_forward, hc->eye_offset_m,
                                               &in.gaze) == KM_OK;
    }
    static const km_gesture_body_joint joints[2][3] = {
        {KM_BODY_LEFT_SHOULDER, KM_BODY_LEFT_ELBOW, KM_BODY_LEFT_HAND},
        {KM_BODY_RIGHT_SHOULDER, KM_BODY_RIGHT_ELBOW, KM_BODY_RIGHT_HAND}};
    for (int h = 0; h < 2; h++) {
        km_hand_side side = h ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
        in.hand[h].pinching = km_handpose_tracker_active(e->poses, s->person, side, KM_POSE_PINCH);
        /* the finger ray when landmarks give it, else the arm: shoulder -> hand (a pointing
         * arm is straight; in forearm mode elbow -> hand) */
        if (hand_fresh(e, s, h, now_ns) && hc->hand_ray == KM_HAND_RAY_INDEX &&
            km_hand_pointing_ray(&s->hand[h], &in.hand[h].ray) == KM_OK &&
            km_hand_position(&s->hand[h], &in.hand[h].position_m)) {
            in.hand[h].valid = true;
            continue;
        }
        if (!body || !tracked(b, joints[h][2]))
            continue;
        km_gesture_body_joint from = joints[h][0];
        if (hc->hand_ray == KM_HAND_RAY_FOREARM || !tracked(b, from))
            from = joints[h][1];
        if (!tracked(b, from))
            continue;
        in.hand[h].valid = km_hand_ray_from_points(b->joint_m[from], b->joint_m[joints[h][2]],
                                                   &in.hand[h].ray) == KM_OK;
        in.hand[h].position_m = b->joint_m[joints[h][2]];
    }
    size_t n = 0;
    km_handeye_update(s->he, &in, e->scratch, e->scratch_capacity, &n);
    enqueue(e, e->scratch, n, s->person);
}

km_status km_gesture_engine_step(km_gesture_engine *e, int64_t now_ns, km_gesture_event *out,
                                 size_t capacity, size_t *count)
{
    if (count)
        *count = 0;
    if (!e || (!out && capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine step: NULL argument");
    if (now_ns > e->step_ns) {
        e->step_ns = now_ns;
        note_time(e, now_ns);
        size_t n = 0;
        km_handpose_tracker_expire(e->poses, now_ns, e->scratch, e->scratch_capacity, &n);
        enqueue(e, e->scratch, n, -1);
        for (int i = 0; i < e->cfg.max_people; i++) {
            slot *s = &e->slots[i];
            if (!s->active)
                continue;
            if (now_ns - s->last_seen_ns > e->cfg.person_timeout_ns) {
                slot_clear(s);
                continue;
            }
            if (s->he)
                run_handeye(e, s, now_ns);
        }
    }
    size_t n = 0;
    while (n < capacity && e->queue_count > 0) {
        out[n++] = e->queue[e->queue_head];
        e->queue_head = (e->queue_head + 1) % e->cfg.event_capacity;
        e->queue_count--;
    }
    if (count)
        *count = n;
    return KM_OK;
}

km_status km_gesture_engine_hands(const km_gesture_engine *e, km_hand *out, size_t capacity,
                                  size_t *count)
{
    if (count)
        *count = 0;
    if (!e || (!out && capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture engine hands: NULL argument");
    static const km_gesture_body_joint hand_joint[2] = {KM_BODY_LEFT_HAND, KM_BODY_RIGHT_HAND};
    size_t n = 0;
    for (int i = 0; i < e->cfg.max_people; i++) {
        const slot *s = &e->slots[i];
        if (!s->active)
            continue;
        bool body = body_fresh(e, s, e->now_ns);
        for (int h = 0; h < 2; h++) {
            bool joint = body && tracked(&s->body, hand_joint[h]);
            bool landmarks = hand_fresh(e, s, h, e->now_ns);
            if (!joint && !landmarks)
                continue;
            if (n == capacity)
                return km_error(KM_ERR_CAPACITY, "gesture engine hands: more than %zu hands",
                                capacity);
            km_hand *o = &out[n++];
            if (landmarks) {
                *o = s->hand[h];
            } else {
                *o = km_hand_init();
                o->time_ns = s->body_ns;
                o->side = h ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
            }
            o->person = s->person;
            if (!o->centre_valid && joint) {
                o->centre_valid = true;
                o->centre_m = s->body.joint_m[hand_joint[h]];
            }
        }
    }
    if (count)
        *count = n;
    return KM_OK;
}
