/* Rigid bodies: pose accuracy against the synthetic scene's ground truth (two actors, each
 * with a HEAD and a PROP; 8 cameras, 0.1 px noise; reconstruct -> track -> rigid), still
 * identified with one marker occluded, Kabsch with weights, definition validation, the
 * unique-constellation check, no allocation per frame, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"
#include "kinema/tracking.h"

#include "../common/alloc_count.h"

static const double DEG = 180.0 / M_PI;

/* Definitions of the scene's bodies: HEAD and PROP for actors A and B (same constellations:
 * the check must warn; tracking continuity keeps them apart). */
static int scene_definitions(km_rigid_definition *defs)
{
    int n = 0;
    for (int actor = 0; actor < 2; actor++)
        for (int kind = 0; kind < KM_SYNTHETIC_RIGID_KIND_COUNT; kind++) {
            km_synthetic_marker m[KM_RIGID_MAX_MARKERS];
            const int count = km_synthetic_rigid_definition((km_synthetic_rigid_kind)kind, m,
                                                            KM_RIGID_MAX_MARKERS);
            km_rigid_definition *d = &defs[n++];
            memset(d, 0, sizeof *d);
            snprintf(d->name, sizeof d->name, "%s_%c", kind == 0 ? "HEAD" : "PROP", 'A' + actor);
            d->id = (uint32_t)(n);
            d->marker_count = count;
            for (int i = 0; i < count; i++)
                d->markers_m[i] = m[i].pos_m;
        }
    return n;
}

typedef struct rigid_score {
    long tracked, expected;
    double sum_sq_pos, sum_sq_ang, max_pos, max_ang;
    long swaps;
    double ms_per_frame;
    long kind_n[2];
    double kind_sq_pos[2], kind_sq_ang[2];
} rigid_score;

/* drop_marker: scene marker id whose observations are removed (UINT32_MAX = none).
 * identify_only: reset the rigid tracker every frame (no prediction). */
static void run_rigid(int frames, const uint32_t *drop, int drop_count, bool identify_only,
                      double smoothing, rigid_score *sc, const char *label)
{
    km_synthetic_config scfg = km_synthetic_config_default();
    scfg.actor_count = 2;
    km_status err;
    km_synthetic_scene *scene = km_synthetic_scene_create(&scfg, &err);
    assert_non_null(scene);
    const km_rig *rig = km_synthetic_scene_rig(scene);
    km_reconstruct_config rcfg = km_reconstruct_config_default();
    km_reconstructor *rec = km_reconstructor_create(&rcfg, rig, &err);
    assert_non_null(rec);
    km_tracker_config tcfg = km_tracker_config_default();
    km_tracker *tr = km_tracker_create(&tcfg, &err);
    assert_non_null(tr);
    km_rigid_definition defs[4];
    const int ndefs = scene_definitions(defs);
    km_rigid_config rgcfg = km_rigid_config_default();
    if (smoothing >= 0.0)
        rgcfg.orientation_smoothing = smoothing;
    km_rigid_tracker *rt = km_rigid_tracker_create(&rgcfg, defs, ndefs, &err);
    assert_non_null(rt);

    static km_observation obs_items[8192];
    static km_marker marker_items[512];
    static km_synthetic_observation sobs[1024];
    km_observation_set obs = {.capacity = 8192, .items = obs_items};
    km_marker_set markers = {.capacity = 512, .items = marker_items};
    km_rigid_pose poses[4];
    km_synthetic_rigid_pose truth[8];
    int truth_of[4] = {-1, -1, -1, -1}; /* ground-truth body index each definition follows */
    memset(sc, 0, sizeof *sc);
    long during = 0;
    double elapsed_ms = 0.0;
    for (int f = 0; f < frames; f++) {
        obs.frame = (uint64_t)f;
        obs.time_ns = km_synthetic_scene_frame_time(scene, (uint64_t)f);
        obs.count = 0;
        for (int c = 0; c < rig->camera_count; c++) {
            const int n = km_synthetic_scene_observe(scene, c, (uint64_t)f, 0.1, 7, sobs, 1024);
            for (int k = 0; k < n; k++) {
                bool dropped = false;
                for (int d = 0; d < drop_count; d++)
                    dropped |= sobs[k].marker_id == drop[d];
                if (!dropped)
                    obs.items[obs.count++] = (km_observation){sobs[k].x, sobs[k].y, 20.0, c};
            }
        }
        assert_int_equal(km_reconstructor_run(rec, &obs, &markers), KM_OK);
        assert_int_equal(km_tracker_update(tr, &markers, &markers), KM_OK);
        if (identify_only)
            km_rigid_tracker_reset(rt);
        const long before = alloc_count_get();
        const uint64_t t0 = km_time_now_ns();
        assert_int_equal(km_rigid_tracker_update(rt, &markers, poses, 4), KM_OK);
        elapsed_ms += (double)(km_time_now_ns() - t0) * 1e-6;
        during += alloc_count_get() - before;
        const int nt = km_synthetic_scene_rigid_poses(scene, obs.time_ns, truth, 8);
        assert_int_equal(nt, 4);
        for (int b = 0; b < ndefs; b++) {
            sc->expected++;
            if (!poses[b].tracked)
                continue;
            sc->tracked++;
            /* nearest ground-truth body of the same kind */
            const km_synthetic_rigid_kind kind = b % 2 ? KM_SYNTHETIC_RIGID_PROP
                                                       : KM_SYNTHETIC_RIGID_HEAD;
            int best = -1;
            double best_d = INFINITY;
            for (int g = 0; g < nt; g++) {
                if (truth[g].kind != kind)
                    continue;
                const double d = km_vec3_dist(truth[g].pos_m, poses[b].pos_m);
                if (d < best_d) {
                    best_d = d;
                    best = g;
                }
            }
            assert_true(best >= 0);
            if (truth_of[b] >= 0 && truth_of[b] != best && !identify_only)
                sc->swaps++;
            truth_of[b] = best;
            const double ang = km_quat_angle_between(truth[best].rot, poses[b].rot) * DEG;
            sc->sum_sq_pos += best_d * best_d;
            sc->sum_sq_ang += ang * ang;
            sc->kind_n[kind]++;
            sc->kind_sq_pos[kind] += best_d * best_d;
            sc->kind_sq_ang[kind] += ang * ang;
            if (best_d > sc->max_pos)
                sc->max_pos = best_d;
            if (ang > sc->max_ang)
                sc->max_ang = ang;
            assert_true(poses[b].error_m < rgcfg.max_error_m);
            assert_true(poses[b].markers_used >= defs[b].marker_count - 1);
        }
        /* the same ground-truth body is never claimed twice */
        for (int a = 0; a < ndefs; a++)
            for (int b = a + 1; b < ndefs; b++)
                if (poses[a].tracked && poses[b].tracked)
                    assert_true(km_vec3_dist(poses[a].pos_m, poses[b].pos_m) > 0.01);
    }
    sc->ms_per_frame = elapsed_ms / frames;
    printf("%s: 2 actors, 8 cameras, 0.1 px, %d frames, %d marker(s) hidden, orientation "
           "smoothing %.2f: tracked %.2f%%, position RMS %.4f mm (max %.4f), orientation RMS %.4f deg (max %.4f), swaps %ld, "
           "rigid %.4f ms/frame, %ld allocations\n",
           label, frames, drop_count, rgcfg.orientation_smoothing,
           100.0 * sc->tracked / sc->expected,
           1000.0 * sqrt(sc->sum_sq_pos / sc->tracked), 1000.0 * sc->max_pos,
           sqrt(sc->sum_sq_ang / sc->tracked), sc->max_ang, sc->swaps, sc->ms_per_frame, during);
    for (int k = 0; k < 2; k++)
        printf("  %s: position RMS %.4f mm, orientation RMS %.4f deg over %ld poses\n",
               k ? "PROP" : "HEAD", 1000.0 * sqrt(sc->kind_sq_pos[k] / sc->kind_n[k]),
               sqrt(sc->kind_sq_ang[k] / sc->kind_n[k]), sc->kind_n[k]);
    assert_int_equal(during, 0);
    km_rigid_tracker_destroy(rt);
    km_tracker_destroy(tr);
    km_reconstructor_destroy(rec);
    km_synthetic_scene_destroy(scene);
}

static void test_synthetic_accuracy(void **state)
{
    (void)state;
    rigid_score sc;
    /* Each frame's pose as measured (no orientation filter): HEAD sits at ~0.50 mm, the
     * limit its geometry sets (its origin is 17 cm from four nearly coplanar markers, so
     * their noise is levered through the orientation; see docs/tracking.md), PROP ~0.37. */
    run_rigid(300, NULL, 0, false, 0.0, &sc, "rigid-per-frame");
    assert_true(sc.tracked >= 0.98 * sc.expected);
    assert_true(1000.0 * sqrt(sc.sum_sq_pos / sc.tracked) < 0.5);
    assert_true(sqrt(sc.sum_sq_ang / sc.tracked) < 0.2);
    assert_int_equal(sc.swaps, 0);
    for (int k = 0; k < 2; k++) {
        assert_true(1000.0 * sqrt(sc.kind_sq_pos[k] / sc.kind_n[k]) < 0.55);
        assert_true(sqrt(sc.kind_sq_ang[k] / sc.kind_n[k]) < 0.2);
    }
    const double max_per_frame = sc.max_pos;
    /* The default: the orientation filter (tracking with prediction). Every body kind meets
     * issue 5's figures, and the largest error does not grow (no lag beyond the noise). */
    run_rigid(300, NULL, 0, false, -1.0, &sc, "rigid");
    assert_true(sc.tracked >= 0.98 * sc.expected);
    assert_true(1000.0 * sqrt(sc.sum_sq_pos / sc.tracked) < 0.5);
    assert_true(sqrt(sc.sum_sq_ang / sc.tracked) < 0.2);
    assert_int_equal(sc.swaps, 0);
    assert_true(sc.max_pos <= max_per_frame);
    for (int k = 0; k < 2; k++) {
        assert_true(1000.0 * sqrt(sc.kind_sq_pos[k] / sc.kind_n[k]) < 0.5);
        assert_true(sqrt(sc.kind_sq_ang[k] / sc.kind_n[k]) < 0.2);
    }
}

static void test_one_marker_occluded(void **state)
{
    (void)state;
    /* One marker of each body hidden from every camera for the whole run (HEAD1 and PROP2
     * of actor 0, HEAD3 and PROP1 of actor 1). Ids: actor*1000 + index in the actor. */
    km_synthetic_marker head[KM_RIGID_MAX_MARKERS], prop[KM_RIGID_MAX_MARKERS];
    km_synthetic_rigid_definition(KM_SYNTHETIC_RIGID_HEAD, head, KM_RIGID_MAX_MARKERS);
    km_synthetic_rigid_definition(KM_SYNTHETIC_RIGID_PROP, prop, KM_RIGID_MAX_MARKERS);
    const uint32_t drop[4] = {head[0].id, prop[1].id, 1000 + head[2].id, 1000 + prop[0].id};
    rigid_score sc;
    run_rigid(200, drop, 4, false, -1.0, &sc, "rigid-occluded");
    assert_true(sc.tracked >= 0.98 * sc.expected);
    assert_true(1000.0 * sqrt(sc.sum_sq_pos / sc.tracked) < 1.0);
    assert_true(sqrt(sc.sum_sq_ang / sc.tracked) < 0.5);
    assert_int_equal(sc.swaps, 0);
    /* identification from scratch every frame (no prediction), marker still hidden */
    run_rigid(60, drop, 4, true, -1.0, &sc, "rigid-occluded-identify");
    assert_true(sc.tracked >= 0.95 * sc.expected);
    assert_true(1000.0 * sqrt(sc.sum_sq_pos / sc.tracked) < 1.0);
}

/* ------------------------------------------------------------------ units */

/* The orientation filter, noise-free: a body spinning at constant angular velocity is
 * followed exactly (no lag); under constant angular acceleration eps it lags by
 * eps dt^2 (1 - alpha) / beta, the figure docs/tracking.md states; without the filter the
 * pose is exact. */
static double spin_lag_deg(double smoothing, double eps_rad_s2, double omega0_rad_s)
{
    km_rigid_definition defs[4];
    scene_definitions(defs);
    km_rigid_config cfg = km_rigid_config_default();
    cfg.orientation_smoothing = smoothing;
    km_status err;
    km_rigid_tracker *rt = km_rigid_tracker_create(&cfg, &defs[1], 1, &err); /* PROP_A */
    assert_non_null(rt);
    km_marker items[KM_RIGID_MAX_MARKERS];
    km_marker_set set = {.capacity = KM_RIGID_MAX_MARKERS, .items = items};
    const km_vec3 axis = km_vec3_normalize(km_vec3_make(0.3, 1.0, -0.2));
    const km_vec3 origin = km_vec3_make(0.5, 1.2, -0.3);
    double last_deg = 0.0;
    for (int f = 0; f < 120; f++) {
        const double t = f / 120.0;
        const km_quat q = km_quat_from_axis_angle(axis, omega0_rad_s * t + 0.5 * eps_rad_s2 * t * t);
        set.frame = (uint64_t)f;
        set.time_ns = (uint64_t)f * 8333333u;
        set.count = defs[1].marker_count;
        for (int i = 0; i < set.count; i++)
            items[i] = (km_marker){.id = (uint32_t)(i + 1),
                                   .pos_m = km_vec3_add(origin, km_quat_rotate(q, defs[1].markers_m[i])),
                                   .views = 8};
        km_rigid_pose pose;
        assert_int_equal(km_rigid_tracker_update(rt, &set, &pose, 1), KM_OK);
        assert_true(pose.tracked);
        last_deg = km_quat_angle_between(pose.rot, q) * DEG;
    }
    km_rigid_tracker_destroy(rt);
    return last_deg;
}

static void test_orientation_filter_lag(void **state)
{
    (void)state;
    const double dt = 1.0 / 120.0, s = 0.3, alpha = 1.0 - s;
    const double beta = 2.0 * (2.0 - alpha) - 4.0 * sqrt(1.0 - alpha);
    /* constant angular velocity, 3 rad/s: followed without lag */
    assert_true(spin_lag_deg(s, 0.0, 3.0) < 1e-6);
    /* constant angular acceleration, 20 rad/s^2 (1150 deg/s^2) */
    const double expected = 20.0 * dt * dt * (1.0 - alpha) / beta * DEG;
    const double lag = spin_lag_deg(s, 20.0, 0.0);
    printf("orientation filter (smoothing %.1f) under 20 rad/s^2: lag %.4f deg (model %.4f)\n",
           s, lag, expected);
    assert_true(lag > 0.8 * expected && lag < 1.2 * expected);
    /* off: exact */
    assert_true(spin_lag_deg(0.0, 20.0, 0.0) < 1e-6);
}

static void test_kabsch(void **state)
{
    (void)state;
    const km_vec3 local[5] = {{0, 0, 0}, {0.1, 0, 0}, {0, 0.15, 0}, {0, 0, 0.08}, {0.05, 0.05, 0.02}};
    const km_quat q = km_quat_from_axis_angle(km_vec3_normalize(km_vec3_make(1, 2, -0.5)), 2.4);
    const km_vec3 t = km_vec3_make(1.0, -0.3, 2.0);
    km_vec3 world[5];
    for (int i = 0; i < 5; i++)
        world[i] = km_vec3_add(t, km_quat_rotate(q, local[i]));
    km_vec3 pos;
    km_quat rot;
    double err;
    assert_int_equal(km_rigid_solve_pose(local, world, NULL, 5, &pos, &rot, &err), KM_OK);
    assert_true(km_vec3_dist(pos, t) < 1e-12);
    assert_true(km_quat_angle_between(rot, q) < 1e-9);
    assert_true(err < 1e-12);
    /* A wrong marker with weight 0 does not disturb the pose; with weight 1 it does. */
    world[4] = km_vec3_add(world[4], km_vec3_make(0.01, 0, 0));
    const double w[5] = {1, 1, 1, 1, 0};
    assert_int_equal(km_rigid_solve_pose(local, world, w, 5, &pos, &rot, &err), KM_OK);
    assert_true(km_vec3_dist(pos, t) < 1e-12);
    assert_int_equal(km_rigid_solve_pose(local, world, NULL, 5, &pos, &rot, &err), KM_OK);
    assert_true(km_vec3_dist(pos, t) > 1e-4);
    assert_true(err > 1e-3);
    /* A mirror image is not a rotation: the fit stays bad. */
    km_vec3 mirror[5];
    for (int i = 0; i < 5; i++)
        mirror[i] = km_vec3_make(-local[i].x, local[i].y, local[i].z);
    assert_int_equal(km_rigid_solve_pose(local, mirror, NULL, 5, &pos, &rot, &err), KM_OK);
    assert_true(err > 0.005);
    /* collinear and too few */
    const km_vec3 line[3] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
    assert_int_equal(km_rigid_solve_pose(line, line, NULL, 3, &pos, &rot, &err), KM_ERR_NUMERIC);
    assert_int_equal(km_rigid_solve_pose(local, world, NULL, 2, &pos, &rot, &err),
                     KM_ERR_INVALID_ARGUMENT);
}

static void test_definition_validate(void **state)
{
    (void)state;
    const km_vec3 pts[4] = {{1, 1, 1}, {1.1, 1, 1}, {1, 1.12, 1}, {1, 1, 1.07}};
    km_rigid_definition d;
    assert_int_equal(km_rigid_definition_from_points("wand", 7, pts, 4, &d), KM_OK);
    km_vec3 c = {0, 0, 0};
    for (int i = 0; i < 4; i++)
        c = km_vec3_add(c, d.markers_m[i]);
    assert_true(km_vec3_norm(c) < 1e-12); /* origin at the centroid */
    assert_true(km_vec3_dist(km_vec3_sub(d.markers_m[1], d.markers_m[0]),
                             km_vec3_make(0.1, 0, 0)) < 1e-12);
    km_rigid_definition bad = d;
    bad.marker_count = 2;
    assert_int_equal(km_rigid_definition_validate(&bad), KM_ERR_INVALID_ARGUMENT);
    bad = d;
    bad.markers_m[1] = km_vec3_add(bad.markers_m[0], km_vec3_make(0.0005, 0, 0));
    assert_int_equal(km_rigid_definition_validate(&bad), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "1 mm"));
    bad = d;
    for (int i = 0; i < 4; i++)
        bad.markers_m[i] = km_vec3_make(0.05 * i, 0, 0);
    assert_int_equal(km_rigid_definition_validate(&bad), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "line"));
    bad = d;
    strcpy(bad.name, "a,b");
    assert_int_equal(km_rigid_definition_validate(&bad), KM_ERR_INVALID_ARGUMENT);
    bad = d;
    bad.markers_m[2].y = NAN;
    assert_int_equal(km_rigid_definition_validate(&bad), KM_ERR_INVALID_ARGUMENT);
}

static void test_confusion_check(void **state)
{
    (void)state;
    km_rigid_definition defs[4];
    scene_definitions(defs); /* HEAD_A, PROP_A, HEAD_B, PROP_B */
    km_rigid_confusion conf[8];
    /* HEAD vs PROP: distinct */
    km_rigid_definition two[2] = {defs[0], defs[1]};
    assert_int_equal(km_rigid_definitions_check(two, 2, 0.004, conf, 8), 0);
    /* identical constellations: confused (reported once) */
    const int n = km_rigid_definitions_check(defs, 4, 0.004, conf, 8);
    printf("confusable pairs among HEAD_A, PROP_A, HEAD_B, PROP_B: %d\n", n);
    assert_int_equal(n, 2);
    /* a body that is another one minus a marker: its 3 markers fit inside the other */
    km_rigid_definition sub[2] = {defs[1], defs[1]};
    strcpy(sub[1].name, "PROP_SUBSET");
    sub[1].id = 99;
    sub[1].marker_count = 4; /* PROP without its last marker */
    assert_true(km_rigid_definitions_check(sub, 2, 0.004, conf, 8) >= 1);
    /* moving one marker of the copy by 2 cm makes them distinct */
    km_rigid_definition moved[2] = {defs[0], defs[0]};
    strcpy(moved[1].name, "HEAD_MOVED");
    moved[1].id = 98;
    moved[1].markers_m[0] = km_vec3_add(moved[1].markers_m[0], km_vec3_make(0.0, 0.02, 0.02));
    moved[1].markers_m[2] = km_vec3_add(moved[1].markers_m[2], km_vec3_make(0.02, 0.0, -0.02));
    assert_int_equal(km_rigid_definitions_check(moved, 2, 0.004, conf, 8), 0);
}

static void test_tracker_errors(void **state)
{
    (void)state;
    km_rigid_definition defs[4];
    scene_definitions(defs);
    km_rigid_config cfg = km_rigid_config_default();
    km_status err;
    km_rigid_definition dup[2] = {defs[0], defs[1]};
    dup[1].id = dup[0].id;
    assert_null(km_rigid_tracker_create(&cfg, dup, 2, &err));
    assert_int_equal(err, KM_ERR_INVALID_ARGUMENT);
    km_rigid_config bad = cfg;
    bad.tolerance_m = 0;
    assert_null(km_rigid_tracker_create(&bad, defs, 2, &err));
    bad = cfg;
    bad.orientation_smoothing = 0.95;
    assert_null(km_rigid_tracker_create(&bad, defs, 2, &err));
    bad.orientation_smoothing = -0.1;
    assert_null(km_rigid_tracker_create(&bad, defs, 2, &err));
    km_rigid_tracker_destroy(NULL);
    cfg.max_markers = 4;
    km_rigid_tracker *rt = km_rigid_tracker_create(&cfg, defs, 2, &err);
    assert_non_null(rt);
    assert_int_equal(km_rigid_tracker_count(rt), 2);
    assert_string_equal(km_rigid_tracker_definition(rt, 1)->name, "PROP_A");
    assert_null(km_rigid_tracker_definition(rt, 2));
    km_marker items[8];
    km_marker_set set = {.count = 0, .capacity = 8, .items = items};
    km_rigid_pose poses[2];
    assert_int_equal(km_rigid_tracker_update(rt, &set, poses, 1), KM_ERR_CAPACITY);
    assert_int_equal(km_rigid_tracker_update(rt, &set, poses, 2), KM_OK);
    assert_false(poses[0].tracked);
    assert_true(fabs(poses[0].rot.w - 1.0) < 1e-12);
    set.count = 5;
    assert_int_equal(km_rigid_tracker_update(rt, &set, poses, 2), KM_ERR_CAPACITY);
    km_rigid_tracker_destroy(rt);

    /* Exact markers of PROP_A placed in the world, ids kept */
    rt = km_rigid_tracker_create(&(km_rigid_config){.tolerance_m = 0.004, .max_error_m = 0.003,
                                                   .gate_m = 0.02, .max_missing = 1,
                                                   .max_markers = 8},
                                 defs, 2, &err);
    assert_non_null(rt);
    const km_quat q = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 0.7);
    set.count = defs[1].marker_count;
    for (int i = 0; i < set.count; i++)
        items[i] = (km_marker){.id = 100 + (uint32_t)i,
                               .pos_m = km_vec3_add(km_vec3_make(1, 1, 1),
                                                    km_quat_rotate(q, defs[1].markers_m[i])),
                               .views = 3};
    assert_int_equal(km_rigid_tracker_update(rt, &set, poses, 2), KM_OK);
    assert_false(poses[0].tracked);
    assert_true(poses[1].tracked);
    assert_true(km_quat_angle_between(poses[1].rot, q) < 1e-9);
    for (int i = 0; i < set.count; i++)
        assert_int_equal(poses[1].marker_ids[i], 100 + (uint32_t)i);
    km_rigid_tracker_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orientation_filter_lag),
        cmocka_unit_test(test_kabsch),
        cmocka_unit_test(test_definition_validate),
        cmocka_unit_test(test_confusion_check),
        cmocka_unit_test(test_tracker_errors),
        cmocka_unit_test(test_synthetic_accuracy),
        cmocka_unit_test(test_one_marker_occluded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
