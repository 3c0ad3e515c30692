/* The hand input model (21-landmark layout), its validation, and the gesture event with its
 * JSON Lines form (docs/formats.md "Events"). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gesture_internal.h"

static const char *const landmark_names[KM_HAND_LANDMARK_COUNT] = {
    "wrist",      "thumb_cmc",  "thumb_mcp",  "thumb_ip",   "thumb_tip",  "index_mcp",
    "index_pip",  "index_dip",  "index_tip",  "middle_mcp", "middle_pip", "middle_dip",
    "middle_tip", "ring_mcp",   "ring_pip",   "ring_dip",   "ring_tip",   "pinky_mcp",
    "pinky_pip",  "pinky_dip",  "pinky_tip"};

static const char *const side_names[KM_HAND_SIDE_COUNT] = {"unknown", "left", "right"};

/* A tracking volume is metres across; anything beyond this is a unit mistake or garbage. */
#define KM_HAND_MAX_COORDINATE_M 1e4

km_hand km_hand_init(void)
{
    km_hand h;
    memset(&h, 0, sizeof h);
    h.person = -1;
    h.confidence = 1.0;
    return h;
}

const char *km_hand_landmark_name(int landmark)
{
    return landmark >= 0 && landmark < KM_HAND_LANDMARK_COUNT ? landmark_names[landmark] : NULL;
}

const char *km_hand_side_name(km_hand_side side)
{
    return (unsigned)side < KM_HAND_SIDE_COUNT ? side_names[side] : "?";
}

km_status km_hand_side_parse(const char *name, km_hand_side *out)
{
    for (int i = 0; i < KM_HAND_SIDE_COUNT; i++)
        if (name && strcmp(name, side_names[i]) == 0) {
            *out = (km_hand_side)i;
            return KM_OK;
        }
    return km_error(KM_ERR_INVALID_ARGUMENT, "unknown hand side '%s' (left, right, unknown)",
                    name ? name : "(null)");
}

static bool point_ok(km_vec3 p)
{
    return isfinite(p.x) && isfinite(p.y) && isfinite(p.z) &&
           fabs(p.x) <= KM_HAND_MAX_COORDINATE_M && fabs(p.y) <= KM_HAND_MAX_COORDINATE_M &&
           fabs(p.z) <= KM_HAND_MAX_COORDINATE_M;
}

km_status km_hand_validate(const km_hand *hand)
{
    if (!hand)
        return km_error(KM_ERR_INVALID_ARGUMENT, "hand: NULL");
    if ((unsigned)hand->side >= KM_HAND_SIDE_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "hand: side %d out of range", (int)hand->side);
    if (hand->landmark_valid & ~KM_HAND_LANDMARKS_ALL)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "hand: landmark_valid 0x%x has bits beyond the 21 landmarks",
                        (unsigned)hand->landmark_valid);
    if (!(hand->confidence >= 0.0 && hand->confidence <= 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "hand: confidence not in [0, 1]");
    if (hand->centre_valid && !point_ok(hand->centre_m))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "hand: centre is not finite or beyond %g m", KM_HAND_MAX_COORDINATE_M);
    for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++)
        if ((hand->landmark_valid & KM_HAND_LANDMARK_BIT(i)) && !point_ok(hand->landmark_m[i]))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "hand: landmark %d (%s) is not finite or beyond %g m", i,
                            landmark_names[i], KM_HAND_MAX_COORDINATE_M);
    if (!hand->centre_valid && !(hand->landmark_valid & KM_HAND_LANDMARK_BIT(KM_HAND_WRIST)))
        return km_error(KM_ERR_INVALID_ARGUMENT, "hand: neither centre nor wrist is valid");
    return KM_OK;
}

bool km_hand_position(const km_hand *hand, km_vec3 *out)
{
    if (!hand || !out)
        return false;
    if (hand->centre_valid) {
        *out = hand->centre_m;
        return true;
    }
    if (hand->landmark_valid & KM_HAND_LANDMARK_BIT(KM_HAND_WRIST)) {
        *out = hand->landmark_m[KM_HAND_WRIST];
        return true;
    }
    static const int mcps[] = {KM_HAND_INDEX_MCP, KM_HAND_MIDDLE_MCP, KM_HAND_RING_MCP,
                               KM_HAND_PINKY_MCP};
    km_vec3 sum = {0, 0, 0};
    int n = 0;
    for (int k = 0; k < 4; k++)
        if (hand->landmark_valid & KM_HAND_LANDMARK_BIT(mcps[k])) {
            sum = km_vec3_add(sum, hand->landmark_m[mcps[k]]);
            n++;
        }
    if (n == 0)
        return false;
    *out = km_vec3_scale(sum, 1.0 / n);
    return true;
}

/* ------------------------------------------------------------------ events */

static const char *const event_names[KM_EVENT_TYPE_COUNT] = {
    "pose_start", "pose_hold", "pose_end", "gesture", "gaze_enter",
    "gaze_leave", "reach",     "hand_leave", "select"};

const char *km_gesture_event_type_name(km_gesture_event_type type)
{
    return (unsigned)type < KM_EVENT_TYPE_COUNT ? event_names[type] : "?";
}

/* snprintf-like appender that keeps counting past the end so the caller learns the size. */
typedef struct json_out {
    char *buf;
    size_t size;
    size_t len;
} json_out;

static void put(json_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(json_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->size ? o->size - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void put_string(json_out *o, const char *key, const char *value)
{
    char escaped[6 * KM_GESTURE_NAME_MAX + 1];
    km_json_escape(escaped, sizeof escaped, value);
    put(o, ",\"%s\":\"%s\"", key, escaped);
}

static void put_number(json_out *o, const char *key, double v)
{
    if (isfinite(v))
        put(o, ",\"%s\":%.6g", key, v);
}

bool km_gesture_event_is_handeye(km_gesture_event_type type)
{
    return type >= KM_EVENT_GAZE_ENTER && type <= KM_EVENT_SELECT;
}

size_t km_gesture_event_to_json(const km_gesture_event *e, char *out, size_t size)
{
    json_out o = {out, size, 0};
    if (size)
        out[0] = '\0';
    if (!e)
        return 0;
    const char *type = "hand_eye";
    const char *sub = km_gesture_event_type_name(e->type);
    if (e->type <= KM_EVENT_POSE_END) {
        type = "hand_pose";
        sub = e->type == KM_EVENT_POSE_START ? "start" : e->type == KM_EVENT_POSE_HOLD ? "hold"
                                                                                     : "end";
    } else if (e->type == KM_EVENT_GESTURE) {
        type = "gesture";
        sub = NULL;
    }
    put(&o, "{\"t_ns\":%lld,\"type\":\"%s\"", (long long)e->t_ns, type);
    if (sub)
        put(&o, ",\"event\":\"%s\"", sub);
    if (e->name[0])
        put_string(&o, "name", e->name);
    put(&o, ",\"person\":%d,\"hand\":\"%s\"", e->person, km_hand_side_name(e->hand));
    if (e->target[0])
        put_string(&o, "target", e->target);
    if (e->type == KM_EVENT_GESTURE) {
        put_number(&o, "score", e->score);
        put(&o, ",\"t_start_ns\":%lld,\"t_end_ns\":%lld", (long long)e->t_start_ns,
            (long long)e->t_end_ns);
    } else if (e->type <= KM_EVENT_POSE_END) {
        put_number(&o, "confidence", e->score);
        put(&o, ",\"t_start_ns\":%lld", (long long)e->t_start_ns);
    } else {
        put_number(&o, "gaze_hand_angle_rad", e->gaze_hand_angle_rad);
        put_number(&o, "gaze_lead_ms", e->gaze_lead_ms);
        if (e->same_target >= 0)
            put(&o, ",\"same_target\":%s", e->same_target ? "true" : "false");
    }
    put(&o, "}");
    return o.len;
}
