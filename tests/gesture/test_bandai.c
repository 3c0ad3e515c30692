/* Spotting on real full-body motion capture: the Bandai Namco dataset-2 takes (CC BY-NC 4.0,
 * tests only) of waves and raised hands, and walk/run takes as non-gestures. Each hand joint
 * becomes a stream relative to the chest (gestures are made relative to the body; walking
 * carries the whole body along), the person's forward direction comes from the shoulders
 * every frame, and the built-in set is spotted. Figures printed; the walk/run takes must
 * report nothing and every performing hand must report its gesture.
 * The takes are read and posed by the skeleton module's BVH reader (km_bvh_load,
 * km_bvh_pose). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gesture_data.h"
#include "kinema/skeleton.h"

#define BVH_MAX_JOINTS 64

typedef struct take_result {
    int events[2][KM_GESTURE_BUILTIN_COUNT]; /* per hand (0 left, 1 right), per label */
    int total[2];
} take_result;

static int builtin_index(const char *name)
{
    for (int g = 0; g < KM_GESTURE_BUILTIN_COUNT; g++)
        if (!strcmp(name, km_gesture_builtin_name(g)))
            return g;
    return -1;
}

/* locomotion_gate: suppress the spotters while the hips travel faster than 0.8 m/s
 * horizontally (over the last 0.5 s), as the pipeline does. */
static bool run_take(const char *path, km_gesture_recognizer *rec, take_result *res,
                     bool locomotion_gate)
{
    memset(res, 0, sizeof *res);
    km_status st;
    km_bvh *b = km_bvh_load(path, &st);
    if (!b)
        return false;
    assert_true(km_bvh_joint_count(b) <= BVH_MAX_JOINTS);
    int hand[2] = {km_bvh_find_joint(b, "Hand_L"), km_bvh_find_joint(b, "Hand_R")};
    int chest = km_bvh_find_joint(b, "Chest"), hips = km_bvh_find_joint(b, "Hips");
    km_vec3 hip_track[512];
    int sh_l = km_bvh_find_joint(b, "Shoulder_L"), sh_r = km_bvh_find_joint(b, "Shoulder_R");
    assert_true(hand[0] >= 0 && hand[1] >= 0 && chest >= 0 && sh_l >= 0 && sh_r >= 0 && hips >= 0);
    const int frames = km_bvh_frame_count(b);
    const double frame_time_s = km_bvh_frame_time_s(b);
    const double scale_m = 0.01; /* these files are in centimetres */
    km_spotter *spot[2];
    for (int h = 0; h < 2; h++) {
        km_spotter_config cfg = km_spotter_config_default();
        cfg.hand = h ? KM_HAND_SIDE_RIGHT : KM_HAND_SIDE_LEFT;
        cfg.min_height_m = -0.1; /* hands up near the chest or higher (stream: hand - chest) */
        spot[h] = km_spotter_create(&cfg, rec, NULL);
        assert_non_null(spot[h]);
        assert_int_equal(km_spotter_use_builtin_limits(spot[h]), KM_OK);
    }
    km_vec3 pos[BVH_MAX_JOINTS];
    for (int f = 0; f < frames; f++) {
        assert_int_equal(km_bvh_pose(b, f, scale_m, pos, NULL), KM_OK);
        km_vec3 right = km_vec3_sub(pos[sh_r], pos[sh_l]);
        km_vec3 forward = km_vec3_cross(km_vec3_make(0, 1, 0), right);
        int64_t t = (int64_t)llround(f * frame_time_s * 1e9);
        hip_track[f % 512] = pos[hips];
        int back = (int)(0.5 / frame_time_s);
        bool travelling = false;
        if (f >= back) {
            km_vec3 d = km_vec3_sub(pos[hips], hip_track[(f - back) % 512]);
            travelling = hypot(d.x, d.z) / (back * frame_time_s) > 0.8;
        }
        for (int h = 0; h < 2; h++) {
            km_spotter_set_suppressed(spot[h], locomotion_gate && travelling);
            if (km_vec3_norm(km_vec3_make(forward.x, 0, forward.z)) > 1e-6)
                km_spotter_set_forward(spot[h], forward);
            km_gesture_event ev[4];
            size_t n;
            km_vec3 rel = km_vec3_sub(pos[hand[h]], pos[chest]);
            assert_int_equal(km_spotter_push(spot[h], rel, t, ev, 4, &n), KM_OK);
            for (size_t k = 0; k < n; k++) {
                int g = builtin_index(ev[k].name);
                if (g >= 0)
                    res->events[h][g]++;
                res->total[h]++;
            }
        }
    }
    /* a second of stillness after the take: the last gesture's end is seen */
    for (int h = 0; h < 2; h++) {
        km_bvh_pose(b, frames - 1, scale_m, pos, NULL);
        km_vec3 rel = km_vec3_sub(pos[hand[h]], pos[chest]);
        for (int f = 1; f <= 30; f++) {
            km_gesture_event ev[4];
            size_t n;
            int64_t t = (int64_t)llround((frames - 1 + f) * frame_time_s * 1e9);
            km_spotter_push(spot[h], rel, t, ev, 4, &n);
            for (size_t k = 0; k < n; k++) {
                int g = builtin_index(ev[k].name);
                if (g >= 0)
                    res->events[h][g]++;
                res->total[h]++;
            }
        }
        km_spotter_destroy(spot[h]);
    }
    km_bvh_destroy(b);
    return true;
}

static void test_bandai(void **state)
{
    (void)state;
    const char *root = gesture_data_root();
    if (!root) {
        printf("SKIP: no data directory (set KINEMA_DATA)\n");
        skip();
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/gestures/bandai_namco_dataset2_gestures", root);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("SKIP: %s not found\n", dir);
        skip();
    }
    km_gesture_config cfg = km_gesture_config_default();
    cfg.max_templates = 64;
    km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, NULL);
    assert_int_equal(km_gesture_add_builtin(rec, 5), KM_OK);
    static const struct {
        const char *content;
        int gesture;   /* builtin index expected, -1 none */
        bool hands[2]; /* which hands perform it */
        int takes;
    } kinds[] = {
        {"wave-right-hand", 8, {false, true}, 5},    {"wave-left-hand", 8, {true, false}, 5},
        {"wave-both-hands", 8, {true, true}, 5},     {"raise-up-right-hand", 9, {false, true}, 5},
        {"raise-up-left-hand", 9, {true, false}, 5}, {"raise-up-both-hands", 9, {true, true}, 5},
        {"walk", -1, {false, false}, 1},             {"walk-turn-left", -1, {false, false}, 1},
        {"run", -1, {false, false}, 1},
    };
    int found_streams = 0, gesture_streams = 0, negative_events = 0, idle_hand_events = 0;
    int extra_events = 0, negative_ungated = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int kind_found = 0, kind_streams = 0;
        for (int take = 1; take <= kinds[k].takes; take++) {
            char path[1400];
            snprintf(path, sizeof path, "%s/dataset-2_%s_normal_%03d.bvh", dir, kinds[k].content, take);
            take_result r, ungated;
            if (!run_take(path, rec, &r, true) || !run_take(path, rec, &ungated, false)) {
                printf("SKIP: cannot read %s\n", path);
                skip();
            }
            printf("BANDAI %-22s take %d: left hand", kinds[k].content, take);
            for (int h = 0; h < 2; h++) {
                if (h)
                    printf(", right hand");
                for (int g = 0; g < KM_GESTURE_BUILTIN_COUNT; g++)
                    if (r.events[h][g])
                        printf(" %s x%d", km_gesture_builtin_name(g), r.events[h][g]);
                if (!r.total[h])
                    printf(" -");
                if (kinds[k].gesture < 0) {
                    negative_events += r.total[h];
                    negative_ungated += ungated.total[h];
                } else if (kinds[k].hands[h]) {
                    kind_streams++;
                    gesture_streams++;
                    if (r.events[h][kinds[k].gesture] > 0) {
                        kind_found++;
                        found_streams++;
                    }
                    extra_events += r.total[h] - r.events[h][kinds[k].gesture];
                } else {
                    idle_hand_events += r.total[h];
                }
            }
            printf("\n");
        }
        if (kinds[k].gesture >= 0)
            printf("BANDAI %s: gesture found in %d of %d performing-hand streams\n", kinds[k].content,
                   kind_found, kind_streams);
    }
    printf("BANDAI summary: %s/%s found in %d of %d performing-hand streams (%.2f); other "
           "labels on performing hands %d; events on the idle hand %d; events in walk/run "
           "takes %d (without the locomotion gate: %d)\n",
           km_gesture_builtin_name(8), km_gesture_builtin_name(9), found_streams, gesture_streams,
           (double)found_streams / gesture_streams, extra_events, idle_hand_events, negative_events,
           negative_ungated);
    assert_int_equal(negative_events, 0);
    assert_int_equal(found_streams, gesture_streams); /* every wave and raise found */
    km_gesture_recognizer_destroy(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bandai)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
