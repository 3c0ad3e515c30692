/* Hand-eye: ray/target geometry; scripted synthetic scenes (gaze from a noisy head pose,
 * hand pointing rays, pinches) where look-and-pinch must select the looked-at target every
 * time and never when the hand points at another one; measured gaze lead vs the scripted
 * lead; the handeye config section (targets, errors with file:line). Measures printed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <stdio.h>

#include "synth_hand.h"

static const char *SCENE_YAML =
    "handeye:\n"
    "  head_forward: [0, 0, -1]\n"
    "  gaze_dwell_ms: 100\n"
    "  targets:\n"
    "    panel-1: {shape: plane, centre: [-1.2, 1.5, -2.0], size: [0.6, 0.4]}\n"
    "    panel-2: {shape: plane, centre: [-0.4, 1.5, -2.0], size: [0.6, 0.4]}\n"
    "    panel-3: {shape: plane, centre: [0.4, 1.5, -2.0], size: [0.6, 0.4]}\n"
    "    panel-4: {shape: plane, centre: [1.2, 1.5, -2.0], size: [0.6, 0.4]}\n"
    "    ball: {shape: sphere, centre: [1.0, 1.0, -1.0], radius: 0.15}\n"
    "    table:\n"
    "      shape: box\n"
    "      centre: [-0.8, 0.8, -1.0]\n"
    "      size: [0.5, 0.1, 0.5]\n"
    "      rotation: [0, 0.3826834, 0, 0.9238795]\n";

static km_handeye_config scene_config(void)
{
    km_status st;
    km_config *cfg = km_config_parse(SCENE_YAML, strlen(SCENE_YAML), "scene.yaml", &st);
    assert_non_null(cfg);
    km_handeye_config he = km_handeye_config_default();
    assert_int_equal(km_handeye_config_read(cfg, "handeye", &he), KM_OK);
    km_config_destroy(cfg);
    assert_int_equal(he.target_count, 6);
    return he;
}

static void test_geometry(void **state)
{
    (void)state;
    km_handeye_config c = scene_config();
    km_ray ray = {km_vec3_make(0.4, 1.5, 0), km_vec3_make(0, 0, -1)};
    double d;
    assert_true(km_target_hit(&c.targets[2], &ray, 0.0, &d));
    assert_float_equal(d, 2.0, 1e-12);
    assert_false(km_target_hit(&c.targets[1], &ray, 0.0, &d));
    ray.direction = km_vec3_make(0, 0, 1); /* behind */
    assert_false(km_target_hit(&c.targets[2], &ray, 0.0, &d));
    /* the 45-degree turned table: a ray at x = -0.8 + 0.3 hits only because of the turn */
    ray = (km_ray){km_vec3_make(-0.8 + 0.3, 2.0, -1.0), km_vec3_make(0, -1, 0)};
    assert_true(km_target_hit(&c.targets[5], &ray, 0.0, &d)); /* half diagonal 0.354 */
    assert_float_equal(d, 1.15, 1e-9);
    ray.origin_m.x = -0.8 + 0.36;
    assert_false(km_target_hit(&c.targets[5], &ray, 0.0, &d));
    assert_true(km_target_hit(&c.targets[5], &ray, 0.02, &d));
    /* sphere, from outside and from inside */
    ray = (km_ray){km_vec3_make(1.0, 1.0, 0.0), km_vec3_make(0, 0, -1)};
    assert_true(km_target_hit(&c.targets[4], &ray, 0.0, &d));
    assert_float_equal(d, 0.85, 1e-12);
    ray.origin_m.z = -1.0;
    assert_true(km_target_hit(&c.targets[4], &ray, 0.0, &d));
    assert_float_equal(d, 0.0, 0.0);
    assert_float_equal(km_target_distance(&c.targets[4], km_vec3_make(1.0, 1.5, -1.0)), 0.35, 1e-12);
    assert_float_equal(km_target_distance(&c.targets[2], km_vec3_make(0.4, 1.5, -1.9)), 0.1, 1e-12);
    /* gaze from a head pose: turned 90 degrees left, forward -z becomes -x */
    km_ray g;
    km_quat q = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), M_PI / 2);
    assert_int_equal(km_gaze_from_head_pose(km_vec3_make(0, 1.6, 0), q, km_vec3_make(0, 0, -1),
                                            km_vec3_make(0, 0.05, -0.08), &g), KM_OK);
    assert_float_equal(g.direction.x, -1.0, 1e-12);
    assert_float_equal(g.origin_m.x, -0.08, 1e-12);
    assert_float_equal(g.origin_m.y, 1.65, 1e-12);
    assert_int_equal(km_gaze_from_head_pose(km_vec3_make(0, 1.6, 0), q, km_vec3_make(0, 0, 0),
                                            km_vec3_make(0, 0, 0), &g), KM_ERR_INVALID_ARGUMENT);
    /* hand pointing ray from landmarks */
    km_hand h = km_hand_init();
    h.landmark_valid = KM_HAND_LANDMARK_BIT(KM_HAND_WRIST) | KM_HAND_LANDMARK_BIT(KM_HAND_INDEX_TIP);
    h.landmark_m[KM_HAND_WRIST] = km_vec3_make(0, 1, 0);
    h.landmark_m[KM_HAND_INDEX_TIP] = km_vec3_make(0, 1, -0.2);
    assert_int_equal(km_hand_pointing_ray(&h, &ray), KM_OK);
    assert_float_equal(ray.direction.z, -1.0, 1e-12);
    assert_float_equal(ray.origin_m.z, -0.2, 1e-12);
    h.landmark_valid = KM_HAND_LANDMARK_BIT(KM_HAND_WRIST);
    assert_int_equal(km_hand_pointing_ray(&h, &ray), KM_ERR_NOT_FOUND);
}

typedef enum hand_mode { HAND_AGREES, HAND_DOWN, HAND_DISAGREES } hand_mode;

static km_ray noisy_ray(synth_rng *r, km_vec3 origin, km_vec3 toward, double sigma_rad)
{
    km_vec3 d = km_vec3_normalize(km_vec3_sub(toward, origin));
    km_vec3 axis = km_vec3_normalize(km_vec3_cross(d, km_vec3_make(synth_gauss(r), synth_gauss(r), synth_gauss(r))));
    km_mat3 R = km_mat3_from_axis_angle(axis, sigma_rad * synth_gauss(r));
    return (km_ray){origin, km_vec3_normalize(km_mat3_apply(R, d))};
}

/* Gaze from a head pose: the head looks at the target with ~1 degree noise. */
static km_ray head_gaze(synth_rng *r, const km_handeye_config *c, km_vec3 toward)
{
    km_vec3 head = km_vec3_make(0, 1.6, 0);
    km_ray want = noisy_ray(r, head, toward, 1.0 * M_PI / 180);
    km_mat3 R = synth_rotation_between(km_vec3_make(0, 0, -1), want.direction);
    km_ray g;
    assert_int_equal(km_gaze_from_head_pose(head, km_quat_from_mat3(R), c->head_forward,
                                            c->eye_offset_m, &g), KM_OK);
    return g;
}

static void test_look_and_pinch(void **state)
{
    (void)state;
    km_handeye_config c = scene_config();
    synth_rng r = {99};
    const int64_t dt = 16666667;
    int selects_right = 0, selects_wrong = 0, trials_select = 0, trials_disagree = 0;
    int selects_in_disagree = 0;
    double lead_err_max = 0.0, angle_sum = 0.0, angle_agree_max = 0.0, angle_disagree_min = DBL_MAX;
    int angles = 0, leads = 0, same_on_reach = 0, reaches = 0;
    for (int trial = 0; trial < 300; trial++) {
        km_handeye *he = km_handeye_create(&c, NULL);
        assert_non_null(he);
        int target = (int)(synth_uniform(&r) * 6) % 6;
        int other = (target + 1 + (int)(synth_uniform(&r) * 5)) % 6;
        hand_mode mode = (hand_mode)(trial % 3);
        double lead_s = 0.1 + 0.3 * synth_uniform(&r);
        int64_t t = 0;
        int first_look = (target + 3) % 6;
        km_vec3 shoulder = km_vec3_make(0.2, 1.4, -0.1);
        int reach_frame = (int)llround((0.3 + lead_s) / (dt * 1e-9));
        double measured_lead = NAN;
        for (int f = 0; f < 120; f++, t += dt) {
            km_handeye_input in;
            memset(&in, 0, sizeof in);
            in.time_ns = t;
            in.person = 0;
            in.gaze_valid = true;
            /* 0.3 s on another target, then the target */
            int look = f < 18 ? first_look : target;
            in.gaze = head_gaze(&r, &c, c.targets[look].centre_m);
            in.hand[1].valid = true;
            bool raised = f >= reach_frame && mode != HAND_DOWN;
            int aim = mode == HAND_DISAGREES ? other : target;
            if (raised) {
                in.hand[1].ray = noisy_ray(&r, shoulder, c.targets[aim].centre_m, 1.5 * M_PI / 180);
                in.hand[1].ray.origin_m = km_vec3_add(shoulder, km_vec3_scale(in.hand[1].ray.direction, 0.6));
            } else {
                in.hand[1].ray = (km_ray){km_vec3_make(0.25, 0.9, 0.0), km_vec3_make(0, -1, 0)};
            }
            in.hand[1].position_m = in.hand[1].ray.origin_m;
            in.hand[1].pinching = f >= reach_frame + 12 && f < reach_frame + 24;
            km_gesture_event ev[8];
            size_t n;
            assert_int_equal(km_handeye_update(he, &in, ev, 8, &n), KM_OK);
            for (size_t k = 0; k < n; k++) {
                if (ev[k].type == KM_EVENT_SELECT) {
                    if (mode == HAND_DISAGREES)
                        selects_in_disagree++;
                    else if (!strcmp(ev[k].target, c.targets[target].name))
                        selects_right++;
                    else
                        selects_wrong++;
                    if (mode == HAND_AGREES && isfinite(ev[k].gaze_hand_angle_rad)) {
                        angle_sum += ev[k].gaze_hand_angle_rad;
                        angles++;
                    }
                    char line[512];
                    km_gesture_event_to_json(&ev[k], line, sizeof line);
                    assert_non_null(strstr(line, "\"type\":\"hand_eye\",\"event\":\"select\""));
                }
                if (ev[k].type == KM_EVENT_HAND_REACH && f == reach_frame) {
                    reaches++;
                    same_on_reach += ev[k].same_target == 1;
                    if (mode == HAND_AGREES) {
                        measured_lead = ev[k].gaze_lead_ms;
                        angle_agree_max = fmax(angle_agree_max, ev[k].gaze_hand_angle_rad);
                    } else {
                        angle_disagree_min = fmin(angle_disagree_min, ev[k].gaze_hand_angle_rad);
                    }
                }
            }
        }
        if (mode == HAND_AGREES) {
            /* scripted: gaze entered at frame 18, the hand at reach_frame */
            double expect = (reach_frame - 18) * dt / 1e6;
            assert_true(isfinite(measured_lead));
            lead_err_max = fmax(lead_err_max, fabs(measured_lead - expect));
            leads++;
        }
        if (mode == HAND_DISAGREES)
            trials_disagree++;
        else
            trials_select++;
        km_handeye_destroy(he);
    }
    printf("HANDEYE look-and-pinch: %d trials where the hand agrees or rests -> %d right selections, "
           "%d wrong; %d trials with the hand on another target -> %d selections\n",
           trials_select, selects_right, selects_wrong, trials_disagree, selects_in_disagree);
    printf("HANDEYE measures: gaze lead error max %.1f ms over %d reaches (scripted leads "
           "100-400 ms); mean gaze-hand angle at selection (hand agreeing) %.3f rad; at reach: agreeing max "
           "%.3f rad, disagreeing min %.3f rad; same_target on %d of %d reaches\n",
           lead_err_max, leads, angles ? angle_sum / angles : 0.0, angle_agree_max,
           angle_disagree_min, same_on_reach, reaches);
    assert_int_equal(selects_right, trials_select);
    assert_int_equal(selects_wrong, 0);
    assert_int_equal(selects_in_disagree, 0);
    assert_true(lead_err_max <= 1.0); /* exact to the frame: both events are frame-stamped */
    assert_true(angle_agree_max < angle_disagree_min);
}

static void test_gaze_events_and_grace(void **state)
{
    (void)state;
    km_handeye_config c = scene_config();
    km_handeye *he = km_handeye_create(&c, NULL);
    km_handeye_input in;
    memset(&in, 0, sizeof in);
    in.gaze_valid = true;
    int enters = 0, leaves = 0;
    const int64_t dt = 16666667;
    for (int f = 0; f < 60; f++) {
        in.time_ns = f * dt;
        /* on panel-3, a 3-frame blink away (shorter than the grace), back, then panel-4 */
        km_vec3 at = f < 20 ? c.targets[2].centre_m
                     : f < 23 ? km_vec3_make(0, 3, -2)
                     : f < 40 ? c.targets[2].centre_m
                              : c.targets[3].centre_m;
        in.gaze = (km_ray){km_vec3_make(0, 1.6, 0), km_vec3_normalize(km_vec3_sub(at, km_vec3_make(0, 1.6, 0)))};
        km_gesture_event ev[8];
        size_t n;
        assert_int_equal(km_handeye_update(he, &in, ev, 8, &n), KM_OK);
        for (size_t k = 0; k < n; k++) {
            enters += ev[k].type == KM_EVENT_GAZE_ENTER;
            leaves += ev[k].type == KM_EVENT_GAZE_LEAVE;
        }
    }
    assert_int_equal(enters, 2);
    assert_int_equal(leaves, 1);
    assert_int_equal(km_handeye_state_get(he).gaze_target, 3);
    /* bad input */
    in.time_ns += dt;
    in.gaze.direction = km_vec3_make(0, 0, 2);
    km_gesture_event ev[2];
    size_t n;
    assert_int_equal(km_handeye_update(he, &in, ev, 2, &n), KM_ERR_INVALID_ARGUMENT);
    km_handeye_destroy(he);
}

static void expect_parse_error(const char *yaml, const char *needle)
{
    km_status st;
    km_config *cfg = km_config_parse(yaml, strlen(yaml), "bad.yaml", &st);
    assert_non_null(cfg);
    km_handeye_config he = km_handeye_config_default();
    st = km_handeye_config_read(cfg, "handeye", &he);
    if (st != KM_ERR_PARSE || !strstr(km_last_error(), needle))
        printf("expected '%s', got %s: %s\n", needle, km_status_name(st), km_last_error());
    assert_int_equal(st, KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), needle));
    km_config_destroy(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_parse_error("handeye:\n  gaze_dwel_ms: 5\n", "bad.yaml:2");
    expect_parse_error("handeye:\n  targets:\n    a: {shape: cone, centre: [0, 0, 0]}\n", "unknown shape");
    expect_parse_error("handeye:\n  targets:\n    a: {shape: sphere, centre: [0, 0, 0]}\n", "radius");
    expect_parse_error("handeye:\n  targets:\n    a: {shape: box, centre: [0, 0]}\n", "expected 3 numbers");
    expect_parse_error("handeye:\n  targets:\n    a: {shape: plane, centre: [0, 0, 0], size: [1, 0]}\n",
                       "sizes must be > 0");
    expect_parse_error("handeye:\n  targets:\n    a: {shape: plane, size: [1, 1]}\n", "centre");
    expect_parse_error("handeye:\n  targets:\n    a b: {shape: sphere, centre: [0, 0, 0], radius: 1}\n",
                       "name");
    expect_parse_error("handeye:\n  hand_ray: elbow\n", "index or forearm");
    expect_parse_error("handeye:\n  head_forward: [0, 0, 0]\n", "must not be zero");
    expect_parse_error("handeye:\n  targets: [1, 2]\n", "mapping");
    expect_parse_error("handeye:\n  targets:\n    a: {shape: box, centre: [0, 0, 0], size: [1, 1, 1], "
                       "rotation: [0, 0, 0, 0]}\n",
                       "zero quaternion");
    /* absent section: defaults, no targets */
    km_status st;
    km_config *cfg = km_config_parse("other: 1\n", 9, "ok.yaml", &st);
    km_handeye_config he = km_handeye_config_default();
    assert_int_equal(km_handeye_config_read(cfg, "handeye", &he), KM_OK);
    assert_int_equal(he.target_count, 0);
    km_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_look_and_pinch),
        cmocka_unit_test(test_gaze_events_and_grace),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
