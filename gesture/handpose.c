/* Static hand poses from the 21 landmarks: scale-free features (finger extensions, the
 * thumb-index distance over the hand's size), fuzzy memberships per pose, and per hand a
 * debounced hysteresis state machine emitting start/hold/end events. No allocation after
 * km_handpose_tracker_create. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

static const char *const pose_names[KM_POSE_COUNT] = {"pinch", "fist", "point", "open_palm",
                                                      "thumbs_up"};

const char *km_hand_pose_name(km_hand_pose pose)
{
    return (unsigned)pose < KM_POSE_COUNT ? pose_names[pose] : NULL;
}

km_handpose_config km_handpose_config_default(void)
{
    km_handpose_config c;
    memset(&c, 0, sizeof c);
    c.up = km_vec3_make(0, 1, 0);
    c.pinch_enter = 0.25;
    c.pinch_exit = 0.40;
    c.enter_score = 0.6;
    c.exit_score = 0.4;
    c.min_on_ns = 60000000;
    c.min_off_ns = 80000000;
    c.hold_interval_ns = 250000000;
    c.lost_timeout_ns = 300000000;
    c.max_hands = 8;
    return c;
}

km_status km_handpose_config_check(const km_handpose_config *c)
{
    if (!c)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handpose config: NULL");
    if (!(km_vec3_norm(c->up) > 1e-9) || !isfinite(km_vec3_norm(c->up)))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handpose config: up must be a finite non-zero vector");
    if (!(c->pinch_enter > 0.0 && c->pinch_exit > c->pinch_enter && c->pinch_exit < 10.0))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "handpose config: need 0 < pinch_enter < pinch_exit < 10");
    if (!(c->exit_score >= 0.0 && c->enter_score > c->exit_score && c->enter_score <= 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "handpose config: need 0 <= exit_score < enter_score <= 1");
    if (c->min_on_ns < 0 || c->min_off_ns < 0 || c->hold_interval_ns < 0 || c->lost_timeout_ns <= 0)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "handpose config: times must be >= 0 (lost_timeout_ns > 0)");
    if (c->max_hands < 1 || c->max_hands > 4096)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handpose config: max_hands not in [1, 4096]");
    return KM_OK;
}

static double clamp01(double v)
{
    return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
}

/* Landmarks every pose needs: the wrist, every finger's four points (thumb: MCP, IP, tip). */
static const uint32_t NEEDED = KM_HAND_LANDMARKS_ALL & ~KM_HAND_LANDMARK_BIT(KM_HAND_THUMB_CMC);

/* Extension of a finger from its reach: |tip - wrist| over the length of the straightened
 * chain wrist-MCP-PIP-DIP-tip: straight and in line with the palm 1.0; 20/20/10 degrees
 * of MCP/PIP/DIP flexion 0.95; a relaxed hand (40/45/25) 0.77; folded into the palm (fist)
 * ~0.35; bent 90 degrees at the MCP only 0.71. Mapped so 0.70 -> 0 and 0.96 -> 1.
 * Scale-free, and it needs no palm plane (which noisy landmarks make unstable). */
static double finger_extension(const km_vec3 *p, int mcp)
{
    double chain = km_vec3_dist(p[KM_HAND_WRIST], p[mcp]) + km_vec3_dist(p[mcp], p[mcp + 1]) +
                   km_vec3_dist(p[mcp + 1], p[mcp + 2]) + km_vec3_dist(p[mcp + 2], p[mcp + 3]);
    if (!(chain > 0.0))
        return 0.0;
    double reach = km_vec3_dist(p[KM_HAND_WRIST], p[mcp + 3]) / chain;
    return clamp01((reach - 0.70) / 0.26);
}

km_status km_handpose_evaluate(const km_hand *hand, const km_handpose_config *cfg,
                               km_handpose_features *out)
{
    if (!hand || !cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "handpose evaluate: NULL argument");
    memset(out, 0, sizeof *out);
    if ((hand->landmark_valid & NEEDED) != NEEDED)
        return km_error(KM_ERR_NOT_FOUND, "handpose: landmarks missing (valid mask 0x%x)",
                        (unsigned)hand->landmark_valid);
    const km_vec3 *p = hand->landmark_m;
    double size = 0.0;
    for (int mcp = KM_HAND_INDEX_MCP; mcp <= KM_HAND_PINKY_MCP; mcp += 4)
        size += km_vec3_dist(p[KM_HAND_WRIST], p[mcp]);
    size /= 4.0;
    if (!(size > 0.0) || !isfinite(size))
        return km_error(KM_ERR_NUMERIC, "handpose: hand size is zero");
    out->hand_size_m = size;
    for (int f = 1; f < 5; f++)
        out->extension[f] = finger_extension(p, KM_HAND_INDEX_MCP + 4 * (f - 1));
    /* Thumb: its tip away from the index and middle fingers (folded over them in a fist:
     * < 0.25 hand sizes; out to the side or up: > 0.45), times its own straightness (MCP ->
     * tip over the bones: a thumb bent over the fingers is short). */
    double thumb_bones = km_vec3_dist(p[KM_HAND_THUMB_MCP], p[KM_HAND_THUMB_IP]) +
                         km_vec3_dist(p[KM_HAND_THUMB_IP], p[KM_HAND_THUMB_TIP]);
    double thumb_straight =
        thumb_bones > 0.0 ? km_vec3_dist(p[KM_HAND_THUMB_MCP], p[KM_HAND_THUMB_TIP]) / thumb_bones
                          : 0.0;
    static const int near_points[] = {KM_HAND_INDEX_PIP, KM_HAND_INDEX_DIP, KM_HAND_MIDDLE_PIP,
                                      KM_HAND_MIDDLE_DIP, KM_HAND_INDEX_MCP};
    double thumb_away = DBL_MAX;
    for (size_t k = 0; k < sizeof near_points / sizeof near_points[0]; k++)
        thumb_away = fmin(thumb_away, km_vec3_dist(p[KM_HAND_THUMB_TIP], p[near_points[k]]));
    thumb_away /= size;
    out->thumb_away = thumb_away;
    out->extension[0] =
        clamp01((thumb_away - 0.25) / 0.20) * clamp01((thumb_straight - 0.75) / 0.2);
    out->pinch_distance = km_vec3_dist(p[KM_HAND_THUMB_TIP], p[KM_HAND_INDEX_TIP]) / size;
    km_vec3 thumb_dir = km_vec3_normalize(km_vec3_sub(p[KM_HAND_THUMB_TIP], p[KM_HAND_THUMB_MCP]));
    out->thumb_up_cos = km_vec3_dot(thumb_dir, km_vec3_normalize(cfg->up));

    const double *e = out->extension;
    double curled = 1.0, extended = 1.0;
    for (int f = 2; f < 5; f++) {
        curled = fmin(curled, 1.0 - e[f]);
        extended = fmin(extended, e[f]);
    }
    /* Pinch: linear in the distance, crossing enter_score at pinch_enter and exit_score at
     * pinch_exit, so the one state machine below gives the distance hysteresis. */
    double slope = (cfg->enter_score - cfg->exit_score) / (cfg->pinch_exit - cfg->pinch_enter);
    out->membership[KM_POSE_PINCH] =
        clamp01(cfg->enter_score + (cfg->pinch_enter - out->pinch_distance) * slope);
    double up = clamp01((out->thumb_up_cos - 0.5) / 0.35);
    out->membership[KM_POSE_FIST] = fmin(fmin(curled, 1.0 - e[1]), 1.0 - e[0]);
    out->membership[KM_POSE_POINT] = fmin(curled, e[1]);
    out->membership[KM_POSE_OPEN_PALM] = fmin(fmin(extended, e[1]), e[0]);
    out->membership[KM_POSE_THUMBS_UP] = fmin(fmin(fmin(curled, 1.0 - e[1]), e[0]), up);
    /* A pinch bends the index and brings the thumb onto it: it is then neither pointing,
     * an open palm nor a fist (a pinch with the other fingers curled looks like one). */
    double not_pinch = 1.0 - clamp01((out->membership[KM_POSE_PINCH] - cfg->exit_score) /
                                     (cfg->enter_score - cfg->exit_score));
    out->membership[KM_POSE_FIST] = fmin(out->membership[KM_POSE_FIST], not_pinch);
    out->membership[KM_POSE_POINT] = fmin(out->membership[KM_POSE_POINT], not_pinch);
    out->membership[KM_POSE_OPEN_PALM] = fmin(out->membership[KM_POSE_OPEN_PALM], not_pinch);
    for (int k = 0; k < KM_POSE_COUNT; k++)
        out->membership[k] *= hand->confidence;
    return KM_OK;
}

/* ----------------------------------------------------------------- tracker */

typedef enum pose_phase { PHASE_OFF = 0, PHASE_PENDING_ON, PHASE_ON, PHASE_PENDING_OFF } pose_phase;

typedef struct pose_state {
    pose_phase phase;
    int64_t since_ns;      /* start of the pending phase */
    int64_t start_ns;      /* pose start (first sample above enter) */
    int64_t last_event_ns; /* start or last hold */
} pose_state;

typedef struct hand_slot {
    bool used;
    int person;
    km_hand_side side;
    int64_t last_seen_ns;
    pose_state pose[KM_POSE_COUNT];
} hand_slot;

struct km_handpose_tracker {
    km_handpose_config cfg;
    hand_slot *slots;
};

km_handpose_tracker *km_handpose_tracker_create(const km_handpose_config *cfg, km_status *err)
{
    km_status st = km_handpose_config_check(cfg);
    km_handpose_tracker *t = NULL;
    if (!st) {
        t = calloc(1, sizeof *t);
        if (t)
            t->slots = calloc(cfg->max_hands, sizeof *t->slots);
        if (!t || !t->slots) {
            km_handpose_tracker_destroy(t);
            t = NULL;
            st = km_error(KM_ERR_NO_MEMORY, "handpose tracker: out of memory");
        } else {
            t->cfg = *cfg;
        }
    }
    if (err)
        *err = st;
    return t;
}

void km_handpose_tracker_destroy(km_handpose_tracker *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t);
}

typedef struct event_sink {
    km_gesture_event *events;
    size_t capacity;
    size_t count;
    size_t dropped;
} event_sink;

static void emit(event_sink *s, const hand_slot *h, km_gesture_event_type type, km_hand_pose pose,
                 int64_t t_ns, int64_t start_ns, double score)
{
    if (s->count >= s->capacity) {
        s->dropped++;
        return;
    }
    km_gesture_event *e = &s->events[s->count++];
    memset(e, 0, sizeof *e);
    e->type = type;
    e->t_ns = t_ns;
    e->t_start_ns = start_ns;
    e->person = h->person;
    e->hand = h->side;
    snprintf(e->name, sizeof e->name, "%s", pose_names[pose]);
    e->score = score;
    e->gaze_hand_angle_rad = NAN;
    e->gaze_lead_ms = NAN;
    e->same_target = -1;
}

static void step(const km_handpose_config *c, hand_slot *h, km_hand_pose pose, double m,
                 int64_t t, event_sink *s)
{
    pose_state *p = &h->pose[pose];
    switch (p->phase) {
    case PHASE_OFF:
        if (m >= c->enter_score) {
            p->phase = PHASE_PENDING_ON;
            p->since_ns = t;
        } else {
            break;
        }
        __attribute__((fallthrough)); /* a zero debounce starts at once */
    case PHASE_PENDING_ON:
        if (m < c->enter_score) {
            p->phase = PHASE_OFF;
        } else if (t - p->since_ns >= c->min_on_ns) {
            p->phase = PHASE_ON;
            p->start_ns = p->since_ns;
            p->last_event_ns = t;
            emit(s, h, KM_EVENT_POSE_START, pose, t, p->start_ns, m);
        }
        break;
    case PHASE_ON:
        if (m < c->exit_score) {
            p->phase = PHASE_PENDING_OFF;
            p->since_ns = t;
            if (c->min_off_ns == 0) {
                p->phase = PHASE_OFF;
                emit(s, h, KM_EVENT_POSE_END, pose, t, p->start_ns, m);
            }
        } else if (c->hold_interval_ns > 0 && t - p->last_event_ns >= c->hold_interval_ns) {
            p->last_event_ns = t;
            emit(s, h, KM_EVENT_POSE_HOLD, pose, t, p->start_ns, m);
        }
        break;
    case PHASE_PENDING_OFF:
        if (m >= c->exit_score) {
            p->phase = PHASE_ON;
        } else if (t - p->since_ns >= c->min_off_ns) {
            p->phase = PHASE_OFF;
            emit(s, h, KM_EVENT_POSE_END, pose, t, p->start_ns, m);
        }
        break;
    }
}

static hand_slot *find_slot(km_handpose_tracker *t, int person, km_hand_side side, bool add)
{
    hand_slot *free_slot = NULL;
    for (size_t i = 0; i < t->cfg.max_hands; i++) {
        hand_slot *h = &t->slots[i];
        if (h->used && h->person == person && h->side == side)
            return h;
        if (!h->used && !free_slot)
            free_slot = h;
    }
    if (!add || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = true;
    free_slot->person = person;
    free_slot->side = side;
    return free_slot;
}

static km_status finish(event_sink *s, size_t *count)
{
    if (count)
        *count = s->count;
    if (s->dropped) {
        km_log(KM_LOG_WARN, "gesture", "handpose: %zu events dropped (event buffer of %zu)",
               s->dropped, s->capacity);
        return km_error(KM_ERR_CAPACITY, "handpose: %zu events did not fit", s->dropped);
    }
    return KM_OK;
}

km_status km_handpose_tracker_push(km_handpose_tracker *t, const km_hand *hand,
                                   km_gesture_event *events, size_t capacity, size_t *count)
{
    if (count)
        *count = 0;
    if (!t || !hand || (!events && capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handpose push: NULL argument");
    km_status st = km_hand_validate(hand);
    if (st)
        return st;
    hand_slot *h = find_slot(t, hand->person, hand->side, true);
    if (!h)
        return km_error(KM_ERR_CAPACITY, "handpose: more than %zu hands tracked", t->cfg.max_hands);
    if (hand->time_ns < h->last_seen_ns)
        return KM_OK; /* out of order: ignored */
    h->last_seen_ns = hand->time_ns;
    km_handpose_features f;
    if (km_handpose_evaluate(hand, &t->cfg, &f) != KM_OK)
        memset(&f, 0, sizeof f); /* no landmarks: no pose (ends after debounce) */
    event_sink s = {events, capacity, 0, 0};
    for (int k = 0; k < KM_POSE_COUNT; k++)
        step(&t->cfg, h, (km_hand_pose)k, f.membership[k], hand->time_ns, &s);
    return finish(&s, count);
}

km_status km_handpose_tracker_expire(km_handpose_tracker *t, int64_t now_ns,
                                     km_gesture_event *events, size_t capacity, size_t *count)
{
    if (count)
        *count = 0;
    if (!t || (!events && capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "handpose expire: NULL argument");
    event_sink s = {events, capacity, 0, 0};
    for (size_t i = 0; i < t->cfg.max_hands; i++) {
        hand_slot *h = &t->slots[i];
        if (!h->used || now_ns - h->last_seen_ns < t->cfg.lost_timeout_ns)
            continue;
        for (int k = 0; k < KM_POSE_COUNT; k++)
            if (h->pose[k].phase == PHASE_ON || h->pose[k].phase == PHASE_PENDING_OFF)
                emit(&s, h, KM_EVENT_POSE_END, (km_hand_pose)k, now_ns, h->pose[k].start_ns, 0.0);
        h->used = false;
    }
    return finish(&s, count);
}

bool km_handpose_tracker_active(const km_handpose_tracker *t, int person, km_hand_side side,
                                km_hand_pose pose)
{
    if (!t || (unsigned)pose >= KM_POSE_COUNT)
        return false;
    for (size_t i = 0; i < t->cfg.max_hands; i++) {
        const hand_slot *h = &t->slots[i];
        if (h->used && h->person == person && h->side == side)
            return h->pose[pose].phase == PHASE_ON || h->pose[pose].phase == PHASE_PENDING_OFF;
    }
    return false;
}
