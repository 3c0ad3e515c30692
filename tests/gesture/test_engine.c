/* The live gesture engine: synthetic bodies whose right hand carries the continuous
 * synthetic stream (gestures embedded in wandering), the person facing +x, give the
 * gestures with the right person and hand; a walking person with swinging arms gives none;
 * a scripted look-and-pinch (landmark hands + head gaze, then an eye tracker's gaze) selects
 * the looked-at target; no allocation per frame (malloc wrapped); the `gesture:` config
 * section and its errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "synth_stream.h"

#include "../common/alloc_count.h"

#define FRAME_NS 16666667LL

/* A standing person's body in the person frame (x right, y up, z back), turned by R and
 * moved by `offset`; the right hand at `right_hand` (person frame). */
static km_gesture_body make_body(km_mat3 R, km_vec3 offset, km_vec3 right_hand, km_vec3 left_hand)
{
    static const km_vec3 local[KM_BODY_JOINT_COUNT] = {
        {0, 0.80, 0},     {0, 0.95, 0},      {0, 1.40, 0},      {0, 1.60, 0},
        {-0.18, 1.30, 0}, {-0.20, 1.00, 0},  {0, 0, 0},         {0.18, 1.30, 0},
        {0.25, 1.05, -0.1}, {0, 0, 0}};
    km_gesture_body b = km_gesture_body_init();
    for (int j = 0; j < KM_BODY_JOINT_COUNT; j++) {
        km_vec3 p = local[j];
        if (j == KM_BODY_RIGHT_HAND)
            p = right_hand;
        if (j == KM_BODY_LEFT_HAND)
            p = left_hand;
        b.joint_m[j] = km_vec3_add(km_mat3_apply(R, p), offset);
        b.tracked |= KM_BODY_BIT(j);
    }
    /* facing left to the shoulders (facing_valid false) */
    b.head_rotation_valid = true;
    b.head_rotation = km_quat_from_mat3(R);
    return b;
}

static int builtin_index(const char *name)
{
    for (int g = 0; g < KM_GESTURE_BUILTIN_COUNT; g++)
        if (!strcmp(name, km_gesture_builtin_name(g)))
            return g;
    return -1;
}

static void test_body_gestures(void **state)
{
    (void)state;
    stream_params sp = {60, 0.002, 0.08, true, 4.0};
    synth_stream s;
    synth_stream_make(&s, &sp, 31);
    km_gesture_engine_config cfg = km_gesture_engine_config_default();
    km_status st;
    km_gesture_engine *e = km_gesture_engine_create(&cfg, &st);
    assert_non_null(e);
    assert_int_equal(km_gesture_recognizer_template_count(km_gesture_engine_recognizer(e)), 50);
    /* person 7 faces +x: R turns the person frame (forward -z) to the world */
    km_mat3 R = km_mat3_from_axis_angle(km_vec3_make(0, 1, 0), -M_PI / 2);
    km_vec3 fwd = km_mat3_apply(R, km_vec3_make(0, 0, -1));
    assert_true(fabs(fwd.x - 1) < 1e-9);
    const km_vec3 place7 = {2.0, 0.0, 1.0};
    /* the stream's home is (0.25, 1.2, -0.35): in front of the right shoulder, 0.25 m above
     * the chest (the activation zone, min_height_m -0.1 relative to the chest, then leaves
     * out only wandering far below it) */
    const km_vec3 left_rest = {-0.22, 0.75, 0.02};
    bool *hit = calloc(s.truth_count, sizeof *hit);
    int detected = 0, false_events = 0, walker_events = 0, left_events = 0, poses = 0;
    km_gesture_event ev[64];
    km_hand hands[16];
    long before = alloc_count_get();
    double max_latency_ms = 0;
    for (size_t i = 0; i < s.count; i++) {
        int64_t t = s.t_ns[i];
        km_gesture_body b = make_body(R, place7, s.pos[i], left_rest);
        assert_int_equal(km_gesture_engine_push_body(e, 7, t, &b), KM_OK);
        /* person 2 walks along z at 1.3 m/s, arms swinging +-0.3 m at 0.9 Hz */
        double ts = (double)t * 1e-9, sw = 0.3 * sin(2 * M_PI * 0.9 * ts);
        km_gesture_body w = make_body(km_mat3_identity(), km_vec3_make(-2.0, 0.0, -1.3 * ts),
                                      km_vec3_make(0.22, 0.75 + 0.1 * fabs(sw), -sw),
                                      km_vec3_make(-0.22, 0.75 + 0.1 * fabs(sw), sw));
        assert_int_equal(km_gesture_engine_push_body(e, 2, t, &w), KM_OK);
        size_t n;
        assert_int_equal(km_gesture_engine_step(e, t, ev, 64, &n), KM_OK);
        size_t nh;
        assert_int_equal(km_gesture_engine_hands(e, hands, 16, &nh), KM_OK);
        assert_int_equal(nh, 4);
        for (size_t k = 0; k < n; k++) {
            if (ev[k].type != KM_EVENT_GESTURE) {
                poses++;
                continue;
            }
            if (ev[k].person == 2) {
                walker_events++;
                continue;
            }
            assert_int_equal(ev[k].person, 7);
            if (ev[k].hand != KM_HAND_SIDE_RIGHT) {
                left_events++;
                continue;
            }
            int match = -1;
            for (size_t j = 0; j < s.truth_count; j++) {
                int64_t lo = ev[k].t_start_ns > s.truth[j].start_ns ? ev[k].t_start_ns : s.truth[j].start_ns;
                int64_t hi = ev[k].t_end_ns < s.truth[j].end_ns ? ev[k].t_end_ns : s.truth[j].end_ns;
                if (hi - lo >= (s.truth[j].end_ns - s.truth[j].start_ns) / 2) {
                    match = (int)j;
                    break;
                }
            }
            if (match >= 0 && builtin_index(ev[k].name) == s.truth[match].label && !hit[match]) {
                hit[match] = true;
                detected++;
                double lat = (double)(ev[k].t_ns - s.truth[match].end_ns) / 1e6;
                if (lat > max_latency_ms)
                    max_latency_ms = lat;
            } else {
                false_events++;
            }
        }
    }
    long allocs = alloc_count_get() - before;
    double minutes = (double)s.t_ns[s.count - 1] * 1e-9 / 60.0;
    km_gesture_engine_stats stats = km_gesture_engine_stats_get(e);
    printf("ENGINE bodies: person 7 facing +x, right hand = synthetic stream (%.1f min, %zu "
           "gestures): detected %d (%.4f), false %d (%.2f/min), worst latency %.0f ms; left hand "
           "%d events; walking person 2: %d events; other events %d; allocations in %zu frames: "
           "%ld; dropped %llu\n",
           minutes, s.truth_count, detected, (double)detected / (double)s.truth_count,
           false_events, false_events / minutes, max_latency_ms, left_events, walker_events, poses,
           s.count, allocs, (unsigned long long)stats.events_dropped);
    assert_int_equal(allocs, 0);
    assert_true(detected * 100 >= (int)s.truth_count * 95);
    assert_true(false_events / minutes < 1.0);
    assert_int_equal(walker_events, 0);
    assert_int_equal(left_events, 0);
    assert_int_equal(stats.people, 2);
    assert_int_equal(stats.events_dropped, 0);
    /* people gone: their slots are freed after person_timeout */
    size_t n;
    assert_int_equal(km_gesture_engine_step(e, s.t_ns[s.count - 1] + 3000000000LL, ev, 64, &n),
                     KM_OK);
    assert_int_equal(km_gesture_engine_stats_get(e).people, 0);
    free(hit);
    km_gesture_engine_destroy(e);
    stream_free(&s);
}

static km_config *parse(const char *text, km_status *st)
{
    return km_config_parse(text, strlen(text), "cfg.yaml", st);
}

static const char *const SCENE =
    "gesture:\n"
    "  max_people: 2\n"
    "  hands: both\n"
    "  gaze_override_ms: 400\n"
    "  spotter: {min_score: 0.6, end_rest_ms: 34}\n"
    "  handpose: {pinch_enter: 0.25}\n"
    "  handeye:\n"
    "    gaze_dwell_ms: 100\n"
    "    targets:\n"
    "      panel_a: {shape: plane, centre: [-1.0, 1.6, -2.0], size: [0.6, 0.4]}\n"
    "      panel_b: {shape: plane, centre: [1.0, 1.6, -2.0], size: [0.6, 0.4]}\n";

static km_hand scripted_hand(bool pinch, int64_t t_ns)
{
    synth_hand_params hp;
    memset(&hp, 0, sizeof hp);
    if (pinch) {
        hp.flex_deg[0][0] = 50;
        hp.flex_deg[0][1] = 50;
        hp.flex_deg[0][2] = 20;
        for (int f = 1; f < 4; f++)
            for (int b = 0; b < 3; b++)
                hp.flex_deg[f][b] = 30;
        hp.thumb_abduction = 0.55;
        hp.thumb_to_index_tip = true;
    } else {
        hp.thumb_abduction = 0.7;
    }
    /* fingers up (hand frame +y = world up): the hand points at no target */
    km_hand h = synth_hand_world(&hp, km_mat3_identity(), 1.0, km_vec3_make(0.2, 1.2, -0.4),
                                 KM_HAND_SIDE_RIGHT, 0.0, NULL);
    h.person = 3;
    h.time_ns = t_ns;
    return h;
}

static void test_look_and_pinch(void **state)
{
    (void)state;
    km_status st;
    km_config *c = parse(SCENE, &st);
    assert_non_null(c);
    km_gesture_engine_config cfg = km_gesture_engine_config_default();
    assert_int_equal(km_gesture_engine_config_read(c, "gesture", &cfg), KM_OK);
    km_config_destroy(c);
    assert_int_equal(cfg.handeye.target_count, 2);
    assert_int_equal(cfg.max_people, 2);
    km_gesture_engine *e = km_gesture_engine_create(&cfg, &st);
    assert_non_null(e);
    /* the head (at 0, 1.6, 0) looks at panel_a */
    km_vec3 head = {0, 1.6, 0};
    km_vec3 to_a = km_vec3_normalize(km_vec3_sub(km_vec3_make(-1.0, 1.6, -2.0), head));
    km_mat3 look_a = synth_rotation_between(km_vec3_make(0, 0, -1), to_a);
    km_gesture_body body = km_gesture_body_init();
    body.tracked = KM_BODY_BIT(KM_BODY_HEAD) | KM_BODY_BIT(KM_BODY_HIPS);
    body.joint_m[KM_BODY_HEAD] = head;
    body.joint_m[KM_BODY_HIPS] = km_vec3_make(0, 0.9, 0);
    body.head_rotation_valid = true;
    body.head_rotation = km_quat_from_mat3(look_a);
    int selects = 0, enters = 0;
    char selected[2][KM_GESTURE_NAME_MAX] = {"", ""};
    km_gesture_event ev[32];
    long before = alloc_count_get();
    for (int f = 0; f < 240; f++) {
        int64_t t = (int64_t)f * FRAME_NS;
        assert_int_equal(km_gesture_engine_push_body(e, 3, t, &body), KM_OK);
        bool pinch = (f >= 60 && f < 100) || (f >= 180 && f < 220);
        km_hand h = scripted_hand(pinch, t);
        assert_int_equal(km_gesture_engine_push_hand(e, &h), KM_OK);
        /* an eye tracker looks at panel_b from frame 130 on (overrides the head) */
        if (f >= 130)
            assert_int_equal(km_gesture_engine_push_gaze(e, 3, t, head,
                                                         km_vec3_sub(km_vec3_make(1.0, 1.6, -2.0), head)),
                             KM_OK);
        size_t n;
        assert_int_equal(km_gesture_engine_step(e, t, ev, 32, &n), KM_OK);
        for (size_t k = 0; k < n; k++) {
            if (ev[k].type == KM_EVENT_GAZE_ENTER)
                enters++;
            if (ev[k].type != KM_EVENT_SELECT)
                continue;
            assert_int_equal(ev[k].person, 3);
            assert_int_equal(ev[k].hand, KM_HAND_SIDE_RIGHT);
            if (selects < 2)
                snprintf(selected[selects], KM_GESTURE_NAME_MAX, "%s", ev[k].target);
            selects++;
        }
    }
    long allocs = alloc_count_get() - before;
    printf("ENGINE look-and-pinch: %d selections (%s, %s), %d gaze entries, allocations %ld\n",
           selects, selected[0], selected[1], enters, allocs);
    assert_int_equal(allocs, 0);
    assert_int_equal(selects, 2);
    assert_string_equal(selected[0], "panel_a");
    assert_string_equal(selected[1], "panel_b");
    assert_int_equal(enters, 2);
    /* the hands out: the landmark hand (no body hand joint) */
    km_hand out[4];
    size_t nh;
    assert_int_equal(km_gesture_engine_hands(e, out, 4, &nh), KM_OK);
    assert_int_equal(nh, 1);
    assert_int_equal(out[0].person, 3);
    assert_int_equal(out[0].landmark_valid, KM_HAND_LANDMARKS_ALL);
    assert_int_equal(km_gesture_engine_hands(e, out, 0, &nh), KM_ERR_CAPACITY);
    km_gesture_engine_destroy(e);
}

static void expect_error(const char *text, const char *needle)
{
    km_status st;
    km_config *c = parse(text, &st);
    assert_non_null(c);
    km_gesture_engine_config cfg = km_gesture_engine_config_default();
    st = km_gesture_engine_config_read(c, "gesture", &cfg);
    printf("ENGINE config error: %s\n", km_last_error());
    assert_int_equal(st, KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "cfg.yaml:"));
    assert_non_null(strstr(km_last_error(), needle));
    km_config_destroy(c);
}

static void test_config(void **state)
{
    (void)state;
    km_status st;
    km_config *c = parse("other: 1\n", &st);
    km_gesture_engine_config cfg = km_gesture_engine_config_default();
    assert_int_equal(km_gesture_engine_config_read(c, "gesture", &cfg), KM_OK); /* absent */
    assert_int_equal(cfg.max_people, 4);
    km_config_destroy(c);
    c = parse("gesture:\n  hands: right\n  builtin_variants: 3\n  travel_speed_mps: 1.2\n"
              "  spotter: {min_height_m: -0.2, rest_ms: 60}\n  handpose: {min_on_ms: 40}\n",
              &st);
    assert_int_equal(km_gesture_engine_config_read(c, "gesture", &cfg), KM_OK);
    assert_false(cfg.hands[0]);
    assert_true(cfg.hands[1]);
    assert_int_equal(cfg.builtin_variants, 3);
    assert_true(fabs(cfg.travel_speed_mps - 1.2) < 1e-12);
    assert_true(fabs(cfg.spotter.min_height_m + 0.2) < 1e-12);
    assert_int_equal(cfg.spotter.rest_ns, 60000000);
    assert_int_equal(cfg.handpose.min_on_ns, 40000000);
    km_config_destroy(c);
    km_gesture_engine *e = km_gesture_engine_create(&cfg, &st);
    assert_non_null(e);
    assert_int_equal(km_gesture_recognizer_template_count(km_gesture_engine_recognizer(e)), 30);
    km_gesture_engine_destroy(e);

    expect_error("gesture:\n  max_people: 2\n  spotter: {min_scroe: 0.6}\n", "min_scroe");
    expect_error("gesture:\n  hands: middle\n", "hands");
    expect_error("gesture:\n  max_people: 0\n", "max_people");
    expect_error("gesture:\n  hand_timeout: 3\n", "hand_timeout");
    expect_error("gesture: [1, 2]\n", "expected a mapping");
    expect_error("gesture:\n  handpose: {pinch_enter: 0.5, pinch_exit: 0.3}\n", "pinch");
    expect_error("gesture:\n  spotter: {speed_on_mps: 0.1, speed_off_mps: 0.2}\n", "speed_off");
    expect_error("gesture:\n  handeye:\n    targets:\n      a: {shape: cone, centre: [0, 0, 0]}\n",
                 "cone");

    /* an unreadable model */
    cfg = km_gesture_engine_config_default();
    snprintf(cfg.model_path, sizeof cfg.model_path, "/nonexistent/model.txt");
    assert_null(km_gesture_engine_create(&cfg, &st));
    assert_int_not_equal(st, KM_OK);
    printf("ENGINE missing model: %s\n", km_last_error());
}

static void test_errors(void **state)
{
    (void)state;
    km_gesture_engine_config cfg = km_gesture_engine_config_default();
    cfg.max_people = 1;
    cfg.event_capacity = 1;
    km_status st;
    km_gesture_engine *e = km_gesture_engine_create(&cfg, &st);
    assert_non_null(e);
    km_gesture_body b = km_gesture_body_init();
    b.tracked = KM_BODY_BIT(KM_BODY_HIPS);
    assert_int_equal(km_gesture_engine_push_body(e, -1, 0, &b), KM_ERR_INVALID_ARGUMENT);
    b.joint_m[KM_BODY_HIPS].x = NAN;
    assert_int_equal(km_gesture_engine_push_body(e, 0, 0, &b), KM_ERR_INVALID_ARGUMENT);
    b.joint_m[KM_BODY_HIPS].x = 0;
    b.tracked |= 1u << 20;
    assert_int_equal(km_gesture_engine_push_body(e, 0, 0, &b), KM_ERR_INVALID_ARGUMENT);
    b.tracked = KM_BODY_BIT(KM_BODY_HIPS);
    assert_int_equal(km_gesture_engine_push_body(e, 0, 0, &b), KM_OK);
    /* one person only */
    assert_int_equal(km_gesture_engine_push_body(e, 1, 0, &b), KM_ERR_CAPACITY);
    assert_int_equal(km_gesture_engine_stats_get(e).people_refused, 1);
    km_hand h = km_hand_init(); /* neither centre nor wrist */
    assert_int_equal(km_gesture_engine_push_hand(e, &h), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_gesture_engine_push_gaze(e, 0, 0, km_vec3_make(0, 0, 0), km_vec3_make(0, 0, 0)),
                     KM_ERR_INVALID_ARGUMENT);
    /* a queue of one: pose events beyond it are counted, not fatal */
    for (int f = 0; f < 60; f++) {
        km_hand p = scripted_hand(f >= 10, (int64_t)f * FRAME_NS);
        p.person = 0;
        assert_int_equal(km_gesture_engine_push_hand(e, &p), KM_OK);
    }
    /* pinch start and several holds happened; one fits */
    km_gesture_event ev[8];
    size_t n;
    assert_int_equal(km_gesture_engine_step(e, 60 * FRAME_NS, ev, 8, &n), KM_OK);
    assert_int_equal(n, 1);
    assert_true(km_gesture_engine_stats_get(e).events_dropped > 0);
    printf("ENGINE queue of 1: %llu events dropped\n",
           (unsigned long long)km_gesture_engine_stats_get(e).events_dropped);
    assert_int_equal(km_gesture_engine_step(e, 0, NULL, 1, &n), KM_ERR_INVALID_ARGUMENT);
    km_gesture_engine_destroy(e);
    km_gesture_engine_destroy(NULL);
    cfg = km_gesture_engine_config_default();
    cfg.hands[0] = cfg.hands[1] = false;
    cfg.max_people = 100;
    assert_null(km_gesture_engine_create(&cfg, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_gestures),
        cmocka_unit_test(test_look_and_pinch),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
