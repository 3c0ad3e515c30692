/* Static hand poses: per-frame classification of synthetic parametric hands (random size,
 * orientation, landmark noise) with a printed confusion matrix; the debounced state machine
 * (one start/end per held pose, no flicker at the pinch thresholds, holds, lost hands);
 * hand validation; the real SR305 estimated hands (figures printed). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "gesture_data.h"
#include "synth_hand.h"

#define NONE KM_POSE_COUNT /* "no pose" column */

static double U(synth_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * synth_uniform(r);
}

static void curled(synth_rng *r, double *f)
{
    f[0] = U(r, 78, 95);
    f[1] = U(r, 95, 110);
    f[2] = U(r, 45, 70);
}

static void straight(synth_rng *r, double *f)
{
    f[0] = U(r, 0, 12);
    f[1] = U(r, 0, 10);
    f[2] = U(r, 0, 8);
}

/* Parameters of pose k (NONE = a relaxed, half-curled hand). */
static synth_hand_params pose_params(synth_rng *r, int k)
{
    synth_hand_params hp;
    memset(&hp, 0, sizeof hp);
    switch (k) {
    case KM_POSE_OPEN_PALM:
        for (int f = 0; f < 4; f++)
            straight(r, hp.flex_deg[f]);
        hp.thumb_abduction = U(r, 0.8, 1.0);
        hp.thumb_flex_deg[0] = U(r, 0, 10);
        hp.thumb_flex_deg[1] = U(r, 0, 10);
        break;
    case KM_POSE_FIST:
    case KM_POSE_POINT:
    case KM_POSE_THUMBS_UP:
        for (int f = 0; f < 4; f++)
            curled(r, hp.flex_deg[f]);
        if (k == KM_POSE_POINT)
            straight(r, hp.flex_deg[0]);
        if (k == KM_POSE_THUMBS_UP) {
            hp.thumb_abduction = U(r, 0.55, 0.8);
            hp.thumb_flex_deg[0] = U(r, 0, 10);
            hp.thumb_flex_deg[1] = U(r, 0, 10);
        } else {
            hp.thumb_abduction = U(r, 0.0, 0.3);
            hp.thumb_over_fingers = true;
        }
        break;
    case KM_POSE_PINCH:
        hp.flex_deg[0][0] = U(r, 45, 60);
        hp.flex_deg[0][1] = U(r, 45, 60);
        hp.flex_deg[0][2] = U(r, 15, 30);
        for (int f = 1; f < 4; f++)
            for (int b = 0; b < 3; b++)
                hp.flex_deg[f][b] = U(r, 5, 60);
        hp.thumb_abduction = U(r, 0.4, 0.7);
        hp.thumb_to_index_tip = true;
        break;
    default: /* relaxed */
        for (int f = 0; f < 4; f++) {
            hp.flex_deg[f][0] = U(r, 25, 40);
            hp.flex_deg[f][1] = U(r, 30, 45);
            hp.flex_deg[f][2] = U(r, 10, 25);
        }
        hp.thumb_abduction = U(r, 0.6, 0.8);
        hp.thumb_flex_deg[0] = U(r, 15, 25);
        hp.thumb_flex_deg[1] = U(r, 15, 25);
        break;
    }
    return hp;
}

static km_hand random_hand(synth_rng *r, int k, double sigma_m, int64_t t_ns)
{
    synth_hand_params hp = pose_params(r, k);
    km_mat3 R = synth_random_rotation(r, M_PI);
    km_hand_side side = synth_uniform(r) < 0.5 ? KM_HAND_SIDE_LEFT : KM_HAND_SIDE_RIGHT;
    if (k == KM_POSE_THUMBS_UP) {
        /* orient the thumb (MCP -> tip) up, then any turn about up and a tilt <= 20 deg */
        km_vec3 p[KM_HAND_LANDMARK_COUNT];
        synth_hand_local(&hp, p);
        km_vec3 thumb = km_vec3_normalize(km_vec3_sub(p[KM_HAND_THUMB_TIP], p[KM_HAND_THUMB_MCP]));
        if (side == KM_HAND_SIDE_LEFT)
            thumb.x = -thumb.x;
        km_mat3 toward_up = synth_rotation_between(thumb, km_vec3_make(0, 1, 0));
        km_mat3 yaw = km_mat3_from_axis_angle(km_vec3_make(0, 1, 0), U(r, -M_PI, M_PI));
        km_mat3 tilt = synth_random_rotation(r, 20.0 * M_PI / 180.0);
        R = km_mat3_mul(tilt, km_mat3_mul(yaw, toward_up));
    }
    km_hand h = synth_hand_world(&hp, R, U(r, 0.8, 1.25), km_vec3_make(U(r, -1, 1), 1.2, U(r, -1, 1)),
                                 side, sigma_m, r);
    h.time_ns = t_ns;
    return h;
}

static int classify(const km_handpose_features *f, const km_handpose_config *cfg)
{
    int best = NONE;
    double bm = cfg->enter_score;
    for (int k = 0; k < KM_POSE_COUNT; k++)
        if (f->membership[k] >= bm) {
            bm = f->membership[k];
            best = k;
        }
    return best;
}

static void test_frame_classification(void **state)
{
    (void)state;
    km_handpose_config cfg = km_handpose_config_default();
    const double sigmas[] = {0.0, 0.003, 0.006};
    for (size_t s = 0; s < sizeof sigmas / sizeof sigmas[0]; s++) {
        synth_rng r = {42 + s};
        int confusion[KM_POSE_COUNT + 1][KM_POSE_COUNT + 1];
        memset(confusion, 0, sizeof confusion);
        const int per = 400;
        for (int k = 0; k <= NONE; k++)
            for (int i = 0; i < per; i++) {
                km_hand h = random_hand(&r, k, sigmas[s], 0);
                km_handpose_features f;
                assert_int_equal(km_handpose_evaluate(&h, &cfg, &f), KM_OK);
                confusion[k][classify(&f, &cfg)]++;
            }
        printf("HANDPOSE frame classification, noise sigma %.1f mm, %d hands per pose "
               "(size 0.8-1.25, any orientation, both sides)\n",
               sigmas[s] * 1e3, per);
        printf("  true\\got   pinch  fist point  open thumb  none   accuracy\n");
        for (int k = 0; k <= NONE; k++) {
            printf("  %-9s", k == NONE ? "relaxed" : km_hand_pose_name((km_hand_pose)k));
            for (int j = 0; j <= NONE; j++)
                printf(" %5d", confusion[k][j]);
            double acc = (double)confusion[k][k] / per;
            printf("   %.4f\n", acc);
            /* with <= 3 mm noise every pose is recognised in >= 97 % of frames and a
             * relaxed hand is never taken for a pose more than 3 % of the time */
            if (sigmas[s] <= 0.003)
                assert_true(acc >= 0.97);
        }
    }
}

/* Sequence: each pose held 1 s at 60 Hz with 3 mm noise, separated by 0.5 s relaxed. */
static void test_tracker_events(void **state)
{
    (void)state;
    km_handpose_config cfg = km_handpose_config_default();
    km_status st;
    km_handpose_tracker *t = km_handpose_tracker_create(&cfg, &st);
    assert_non_null(t);
    synth_rng r = {7};
    int starts[KM_POSE_COUNT] = {0}, ends[KM_POSE_COUNT] = {0}, holds = 0;
    int64_t t_ns = 0, dt = 16666667;
    double latency_ms_max = 0.0;
    const int rounds = 5;
    for (int round = 0; round < rounds; round++)
        for (int k = 0; k < KM_POSE_COUNT; k++) {
            /* one fixed hand per segment (the pose is held), new noise per frame */
            synth_rng seg = {1000 + (uint64_t)round * 10 + (uint64_t)k};
            synth_hand_params hp = pose_params(&seg, k);
            synth_hand_params relaxed = pose_params(&seg, NONE);
            km_mat3 R = km_mat3_identity();
            if (k == KM_POSE_THUMBS_UP) {
                km_vec3 p[KM_HAND_LANDMARK_COUNT];
                synth_hand_local(&hp, p);
                km_vec3 th = km_vec3_normalize(km_vec3_sub(p[KM_HAND_THUMB_TIP], p[KM_HAND_THUMB_MCP]));
                R = synth_rotation_between(th, km_vec3_make(0, 1, 0));
            }
            int64_t seg_start = t_ns;
            for (int f = 0; f < 90; f++) {
                bool posed = f >= 30;
                km_hand h = synth_hand_world(posed ? &hp : &relaxed, R, 1.0, km_vec3_make(0, 1.2, 0),
                                             KM_HAND_SIDE_RIGHT, 0.003, &r);
                h.time_ns = t_ns;
                km_gesture_event ev[8];
                size_t n;
                assert_int_equal(km_handpose_tracker_push(t, &h, ev, 8, &n), KM_OK);
                for (size_t i = 0; i < n; i++) {
                    int pose = -1;
                    for (int j = 0; j < KM_POSE_COUNT; j++)
                        if (strcmp(ev[i].name, km_hand_pose_name((km_hand_pose)j)) == 0)
                            pose = j;
                    assert_true(pose >= 0);
                    assert_int_equal(ev[i].hand, KM_HAND_SIDE_RIGHT);
                    if (ev[i].type == KM_EVENT_POSE_START) {
                        starts[pose]++;
                        if (pose != k || !posed)
                            printf("unexpected start of %s in segment %s frame %d\n",
                                   ev[i].name, km_hand_pose_name((km_hand_pose)k), f);
                        assert_int_equal(pose, k); /* only the shown pose starts */
                        assert_true(posed);
                        double lat = (double)(ev[i].t_ns - (seg_start + 30 * dt)) / 1e6;
                        if (lat > latency_ms_max)
                            latency_ms_max = lat;
                    } else if (ev[i].type == KM_EVENT_POSE_END) {
                        ends[pose]++;
                    } else {
                        holds++;
                        /* the previous pose may still hold until its end is debounced */
                        assert_true(pose == k || (!posed && pose == (k + KM_POSE_COUNT - 1) % KM_POSE_COUNT));
                    }
                }
                t_ns += dt;
            }
        }
    printf("HANDPOSE events over %d rounds of 5 held poses (1 s each, 3 mm noise, 60 Hz): ", rounds);
    for (int k = 0; k < KM_POSE_COUNT; k++) {
        printf("%s %d/%d ", km_hand_pose_name((km_hand_pose)k), starts[k], ends[k]);
        assert_int_equal(starts[k], rounds); /* exactly one start per held pose */
        assert_int_equal(ends[k], k == KM_POSE_COUNT - 1 ? rounds - 1 : rounds);
    }
    printf("(start/end); holds %d; start latency max %.0f ms\n", holds, latency_ms_max);
    assert_true(latency_ms_max <= 120.0);
    /* the last pose is still held: it ends when the hand is lost */
    km_gesture_event ev[8];
    size_t n;
    assert_int_equal(km_handpose_tracker_expire(t, t_ns + cfg.lost_timeout_ns, ev, 8, &n), KM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].type, KM_EVENT_POSE_END);
    assert_string_equal(ev[0].name, "thumbs_up");
    assert_false(km_handpose_tracker_active(t, 0, KM_HAND_SIDE_RIGHT, KM_POSE_THUMBS_UP));
    km_handpose_tracker_destroy(t);
}

/* The thumb-index distance wobbling between pinch_enter and pinch_exit never toggles. */
static void test_pinch_hysteresis(void **state)
{
    (void)state;
    km_handpose_config cfg = km_handpose_config_default();
    km_handpose_tracker *t = km_handpose_tracker_create(&cfg, NULL);
    assert_non_null(t);
    synth_rng r = {3};
    synth_hand_params hp = pose_params(&r, KM_POSE_PINCH);
    km_vec3 local[KM_HAND_LANDMARK_COUNT];
    synth_hand_local(&hp, local);
    km_hand h = synth_hand_world(&hp, km_mat3_identity(), 1.0, km_vec3_make(0, 0, 0),
                                 KM_HAND_SIDE_LEFT, 0.0, NULL);
    km_handpose_features f;
    assert_int_equal(km_handpose_evaluate(&h, &cfg, &f), KM_OK);
    km_vec3 tip = h.landmark_m[KM_HAND_INDEX_TIP];
    km_vec3 dir = km_vec3_normalize(km_vec3_sub(h.landmark_m[KM_HAND_THUMB_TIP], tip));
    int starts = 0, ends = 0;
    for (int i = 0; i < 600; i++) {
        /* distance / hand size: 0.05 for 0.5 s, then 0.26..0.39 (between the thresholds)
         * wobbling for 8 s, then 0.6 */
        double d = i < 30 ? 0.05 : i < 510 ? 0.325 + 0.065 * sin(i * 0.7) : 0.6;
        h.landmark_m[KM_HAND_THUMB_TIP] = km_vec3_add(tip, km_vec3_scale(dir, d * f.hand_size_m));
        h.time_ns = (int64_t)i * 16666667;
        km_gesture_event ev[8];
        size_t n;
        assert_int_equal(km_handpose_tracker_push(t, &h, ev, 8, &n), KM_OK);
        for (size_t k = 0; k < n; k++) {
            if (strcmp(ev[k].name, "pinch"))
                continue;
            starts += ev[k].type == KM_EVENT_POSE_START;
            ends += ev[k].type == KM_EVENT_POSE_END;
        }
    }
    assert_int_equal(starts, 1);
    assert_int_equal(ends, 1);
    km_handpose_tracker_destroy(t);
}

static void test_validation(void **state)
{
    (void)state;
    km_hand h = km_hand_init();
    assert_int_equal(km_hand_validate(&h), KM_ERR_INVALID_ARGUMENT); /* nothing valid */
    h.centre_valid = true;
    assert_int_equal(km_hand_validate(&h), KM_OK);
    h.landmark_valid = 1u << 21;
    assert_int_equal(km_hand_validate(&h), KM_ERR_INVALID_ARGUMENT);
    h.landmark_valid = KM_HAND_LANDMARK_BIT(KM_HAND_INDEX_TIP);
    h.landmark_m[KM_HAND_INDEX_TIP].y = NAN;
    assert_int_equal(km_hand_validate(&h), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "index_tip"));
    h.landmark_m[KM_HAND_INDEX_TIP].y = 2e4;
    assert_int_equal(km_hand_validate(&h), KM_ERR_INVALID_ARGUMENT);
    h.landmark_m[KM_HAND_INDEX_TIP].y = 1.0;
    assert_int_equal(km_hand_validate(&h), KM_OK);
    h.side = (km_hand_side)7;
    assert_int_equal(km_hand_validate(&h), KM_ERR_INVALID_ARGUMENT);
    h.side = KM_HAND_SIDE_RIGHT;
    h.confidence = 1.5;
    assert_int_equal(km_hand_validate(&h), KM_ERR_INVALID_ARGUMENT);
    h.confidence = 0.5;
    km_vec3 p;
    assert_true(km_hand_position(&h, &p));
    km_handpose_features f;
    km_handpose_config cfg = km_handpose_config_default();
    assert_int_equal(km_handpose_evaluate(&h, &cfg, &f), KM_ERR_NOT_FOUND);
    /* names */
    assert_string_equal(km_hand_landmark_name(KM_HAND_PINKY_TIP), "pinky_tip");
    assert_null(km_hand_landmark_name(21));
    km_hand_side side;
    assert_int_equal(km_hand_side_parse("left", &side), KM_OK);
    assert_int_equal(side, KM_HAND_SIDE_LEFT);
    assert_int_equal(km_hand_side_parse("middle", &side), KM_ERR_INVALID_ARGUMENT);
    cfg.pinch_exit = cfg.pinch_enter;
    assert_int_equal(km_handpose_config_check(&cfg), KM_ERR_INVALID_ARGUMENT);
    /* the tracker refuses invalid hands and too many hands */
    cfg = km_handpose_config_default();
    cfg.max_hands = 1;
    km_handpose_tracker *t = km_handpose_tracker_create(&cfg, NULL);
    km_gesture_event ev[4];
    size_t n;
    assert_int_equal(km_handpose_tracker_push(t, &h, ev, 4, &n), KM_OK);
    h.person = 5;
    assert_int_equal(km_handpose_tracker_push(t, &h, ev, 4, &n), KM_ERR_CAPACITY);
    h.confidence = -1;
    assert_int_equal(km_handpose_tracker_push(t, &h, ev, 4, &n), KM_ERR_INVALID_ARGUMENT);
    km_handpose_tracker_destroy(t);
}

static void test_event_json(void **state)
{
    (void)state;
    km_gesture_event e;
    memset(&e, 0, sizeof e);
    e.type = KM_EVENT_SELECT;
    e.t_ns = 456;
    e.person = 0;
    e.hand = KM_HAND_SIDE_LEFT;
    snprintf(e.target, sizeof e.target, "panel-3");
    e.gaze_hand_angle_rad = 0.04;
    e.gaze_lead_ms = 180;
    e.same_target = 1;
    char buf[512];
    size_t len = km_gesture_event_to_json(&e, buf, sizeof buf);
    assert_int_equal(len, strlen(buf));
    assert_string_equal(buf, "{\"t_ns\":456,\"type\":\"hand_eye\",\"event\":\"select\",\"person\":0,"
                             "\"hand\":\"left\",\"target\":\"panel-3\",\"gaze_hand_angle_rad\":0.04,"
                             "\"gaze_lead_ms\":180,\"same_target\":true}");
    e.type = KM_EVENT_GESTURE;
    e.t_ns = 123;
    e.t_start_ns = 100;
    e.t_end_ns = 110;
    e.hand = KM_HAND_SIDE_RIGHT;
    e.target[0] = '\0';
    snprintf(e.name, sizeof e.name, "swipe_\"left");
    e.score = 0.93;
    len = km_gesture_event_to_json(&e, buf, sizeof buf);
    assert_string_equal(buf, "{\"t_ns\":123,\"type\":\"gesture\",\"name\":\"swipe_\\\"left\",\"person\":0,"
                             "\"hand\":\"right\",\"score\":0.93,\"t_start_ns\":100,\"t_end_ns\":110}");
    /* cut: the size needed is still returned, the prefix is terminated */
    char small[20];
    assert_int_equal(km_gesture_event_to_json(&e, small, sizeof small), len);
    assert_int_equal(strlen(small), sizeof small - 1);
    e.type = KM_EVENT_POSE_HOLD;
    snprintf(e.name, sizeof e.name, "pinch");
    e.score = 0.5;
    km_gesture_event_to_json(&e, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"type\":\"hand_pose\",\"event\":\"hold\",\"name\":\"pinch\""));
    assert_non_null(strstr(buf, "\"confidence\":0.5"));
}

/* The SR305 estimates: 21 joints in mm (camera frame: the order of the file is wrist, then
 * four per finger thumb..pinky, as the 21-point layout). Print what the poses see. */
static void test_sr305(void **state)
{
    (void)state;
    const char *files[] = {"1_20210429-232630_right.txt", "1_20210429-232852_left.txt"};
    char path[1024];
    int frames_total = 0;
    for (int fi = 0; fi < 2; fi++) {
        const char *root = gesture_data_root();
        if (!root) {
            printf("SKIP: no data directory (set KINEMA_DATA)\n");
            skip();
        }
        snprintf(path, sizeof path, "%s/gestures/sr305_hand_joints/%s", root, files[fi]);
        FILE *fp = fopen(path, "r");
        if (!fp) {
            printf("SKIP: %s not found (set KINEMA_DATA)\n", path);
            skip();
        }
        km_handpose_config cfg = km_handpose_config_default();
        cfg.up = km_vec3_make(0, -1, 0); /* camera frame: y down */
        int counts[KM_POSE_COUNT + 1] = {0};
        double size_sum = 0.0, pinch_sum = 0.0, ext_sum[5] = {0};
        int frames = 0;
        double v[63];
        for (;;) {
            int got = 0;
            for (int i = 0; i < 63; i++)
                got += fscanf(fp, "%lf", &v[i]) == 1;
            if (got == 0)
                break;
            assert_int_equal(got, 63);
            km_hand h = km_hand_init();
            h.landmark_valid = KM_HAND_LANDMARKS_ALL;
            for (int j = 0; j < 21; j++)
                h.landmark_m[j] = km_vec3_make(v[3 * j] * 1e-3, v[3 * j + 1] * 1e-3, v[3 * j + 2] * 1e-3);
            assert_int_equal(km_hand_validate(&h), KM_OK);
            km_handpose_features f;
            assert_int_equal(km_handpose_evaluate(&h, &cfg, &f), KM_OK);
            counts[classify(&f, &cfg)]++;
            size_sum += f.hand_size_m;
            pinch_sum += f.pinch_distance;
            for (int k = 0; k < 5; k++)
                ext_sum[k] += f.extension[k];
            frames++;
        }
        fclose(fp);
        assert_true(frames > 0);
        frames_total += frames;
        printf("SR305 %s: %d frames, hand size %.1f mm, mean extension thumb..pinky "
               "%.2f %.2f %.2f %.2f %.2f, pinch distance %.2f hand sizes; frames per pose:",
               files[fi], frames, 1e3 * size_sum / frames, ext_sum[0] / frames, ext_sum[1] / frames,
               ext_sum[2] / frames, ext_sum[3] / frames, ext_sum[4] / frames, pinch_sum / frames);
        for (int k = 0; k <= NONE; k++)
            printf(" %s %d", k == NONE ? "none" : km_hand_pose_name((km_hand_pose)k), counts[k]);
        printf("\n");
        /* a real hand is 60-110 mm from wrist to knuckles: the layout was read right */
        assert_true(size_sum / frames > 0.05 && size_sum / frames < 0.12);
    }
    assert_int_equal(frames_total, 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_classification), cmocka_unit_test(test_tracker_events),
        cmocka_unit_test(test_pinch_hysteresis),     cmocka_unit_test(test_validation),
        cmocka_unit_test(test_event_json),           cmocka_unit_test(test_sr305),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
