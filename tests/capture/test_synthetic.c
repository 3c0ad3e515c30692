/* Tests of the synthetic scene: the actor (markers, labels, smooth motion, markers outside
 * the body), the rig (whole path in view), visibility, rendering (centroid of a rendered
 * marker equals its projected centre), observations (noise statistics), rigid-body ground
 * truth, determinism and the config reader. Prints the measured figures. */
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
#include "synthetic.h" /* private: capsules, to check markers sit outside the body */

#define PERIOD_120_NS 8333333ull

static km_synthetic_scene *make_scene(km_synthetic_config *cfg)
{
    km_status st = KM_ERR_INTERNAL;
    km_synthetic_scene *s = km_synthetic_scene_create(cfg, &st);
    assert_non_null(s);
    assert_int_equal(st, KM_OK);
    return s;
}

static void test_markers_labels_ids(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.actor_count = 3;
    km_synthetic_scene *s = make_scene(&cfg);
    km_synthetic_marker m[KM_SYNTHETIC_MAX_MARKERS];
    int n = km_synthetic_scene_markers(s, 0, m, KM_SYNTHETIC_MAX_MARKERS);
    assert_int_equal(n, 3 * 48);
    printf("markers per actor: %d (39 Plug-in-Gait + 4 HEAD + 5 PROP)\n", n / 3);
    for (int i = 0; i < n; i++) {
        assert_int_equal(m[i].id, (uint32_t)((i / 48) * 1000 + i % 48));
        assert_true(strlen(m[i].label) > 0);
        for (int j = 0; j < i; j++)
            if (m[j].id / 1000 == m[i].id / 1000)
                assert_string_not_equal(m[i].label, m[j].label);
    }
    /* Some standard labels exist. */
    const char *want[] = {"LFHD", "C7", "STRN", "RBAK", "LWRB", "RFIN", "LASI", "RPSI",
                          "LKNE", "RTOE", "HEAD1", "HEAD4", "PROP1", "PROP5"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        bool found = false;
        for (int i = 0; i < 48; i++)
            found = found || strcmp(m[i].label, want[w]) == 0;
        assert_true(found);
    }
    /* A capacity smaller than the scene truncates. */
    assert_int_equal(km_synthetic_scene_markers(s, 0, m, 10), 10);
    km_synthetic_scene_destroy(s);
}

static void test_smooth_and_plausible(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.actor_count = 2;
    km_synthetic_scene *s = make_scene(&cfg);
    km_synthetic_marker prev[KM_SYNTHETIC_MAX_MARKERS], cur[KM_SYNTHETIC_MAX_MARKERS];
    int n = km_synthetic_scene_markers(s, 0, prev, KM_SYNTHETIC_MAX_MARKERS);
    double max_step = 0, max_y = 0, min_y = 10, max_r = 0;
    for (uint64_t k = 1; k <= 1200; k++) {
        int n2 = km_synthetic_scene_markers(s, km_synthetic_scene_frame_time(s, k), cur,
                                            KM_SYNTHETIC_MAX_MARKERS);
        assert_int_equal(n2, n);
        for (int i = 0; i < n; i++) {
            double d = km_vec3_dist(prev[i].pos_m, cur[i].pos_m);
            if (d > max_step)
                max_step = d;
            if (cur[i].pos_m.y > max_y)
                max_y = cur[i].pos_m.y;
            if (cur[i].pos_m.y < min_y)
                min_y = cur[i].pos_m.y;
            double r = hypot(cur[i].pos_m.x, cur[i].pos_m.z);
            if (r > max_r)
                max_r = r;
        }
        memcpy(prev, cur, sizeof cur[0] * (size_t)n);
    }
    printf("motion over 10 s at 120 Hz: max marker step %.1f mm, height %.3f..%.3f m, "
           "max radius %.2f m\n", max_step * 1e3, min_y, max_y, max_r);
    assert_true(max_step < 0.05);
    assert_true(max_step > 0.005); /* it does move */
    assert_true(min_y > 0.0);
    assert_true(max_y > 1.65 && max_y < 1.95); /* head band posts above a ~1.75 m head */
    assert_true(max_r < 2.5);
    km_synthetic_scene_destroy(s);
}

/* Marker centres must sit outside every body capsule (else they would always be hidden):
 * at least half a marker diameter minus a little off the skin of their own segment. */
static void test_markers_outside_body(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.actor_count = 4;
    km_synthetic_scene *s = make_scene(&cfg);
    synth_world *w = malloc(sizeof *w);
    assert_non_null(w);
    double worst = 1e9;
    const char *worst_label = "";
    for (uint64_t k = 0; k < 1200; k += 7) {
        synth_world_eval(s, km_synthetic_scene_frame_time(s, k), w);
        assert_int_equal(w->capsule_count, 4 * SYNTH_CAPSULES_PER_ACTOR);
        for (int i = 0; i < w->marker_count; i++) {
            km_vec3 p = w->markers[i].pos_m;
            for (int c = 0; c < w->capsule_count; c++) {
                const synth_capsule *cap = &w->capsules[c];
                km_vec3 d = km_vec3_sub(cap->b, cap->a), q = km_vec3_sub(p, cap->a);
                double dd = km_vec3_dot(d, d);
                double t = dd > 0 ? km_vec3_dot(q, d) / dd : 0;
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                double dist = km_vec3_dist(p, km_vec3_add(cap->a, km_vec3_scale(d, t)));
                double clearance = dist - cap->radius_m;
                if (clearance < worst) {
                    worst = clearance;
                    worst_label = w->markers[i].label;
                }
            }
        }
    }
    printf("smallest marker-centre clearance from any body capsule: %.1f mm (%s)\n",
           worst * 1e3, worst_label);
    assert_true(worst > 0.004);
    free(w);
    km_synthetic_scene_destroy(s);
}

static void test_rig(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    km_synthetic_scene *s = make_scene(&cfg);
    const km_rig *rig = km_synthetic_scene_rig(s);
    assert_int_equal(rig->camera_count, 8);
    for (int i = 0; i < 8; i++) {
        const km_camera *c = &rig->cameras[i];
        assert_int_equal(c->width, 1280);
        assert_int_equal(c->height, 1024);
        assert_true(c->has_pose);
        assert_true(c->dist[0] <= -0.12 && c->dist[0] >= -0.2);
        assert_true(c->dist[1] >= 0.05 && c->dist[1] <= 0.1);
        assert_true(fabs(c->K[0] - 1108.5) < 20);
        km_vec3 ctr = km_camera_center(c);
        double ring = hypot(ctr.x, ctr.z);
        assert_true(ring > 4.0 && ring < 5.5);
        assert_true(fabs(ctr.y - (i % 2 ? 2.8 : 2.2)) < 1e-6);
        /* Looks at (0, 1, 0): it projects near the principal point (distortion is 0 on
         * the axis). */
        double u, v;
        assert_true(km_camera_project(c, km_vec3_make(0, 1, 0), &u, &v));
        assert_true(fabs(u - c->K[2]) < 0.5 && fabs(v - c->K[5]) < 0.5);
        if (i > 0)
            assert_true(c->K[0] != rig->cameras[0].K[0]);
    }
    /* distortion = 0 gives a pinhole rig. */
    cfg.distortion = 0;
    km_synthetic_scene *s0 = make_scene(&cfg);
    for (int j = 0; j < 5; j++)
        assert_true(km_synthetic_scene_rig(s0)->cameras[3].dist[j] == 0.0);
    km_synthetic_scene_destroy(s0);
    km_synthetic_scene_destroy(s);
}

/* Over one lap: (a) without occlusion every marker is inside every image (the whole path is
 * in all views), (b) with occlusion most markers are seen by two or more cameras. */
static void test_visibility(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.occlusion = false;
    km_synthetic_scene *open = make_scene(&cfg);
    cfg.occlusion = true;
    km_synthetic_scene *s = make_scene(&cfg);
    km_synthetic_marker m[KM_SYNTHETIC_MAX_MARKERS];
    long in_view = 0, total = 0, two_plus = 0, samples = 0, seen_sum = 0;
    long min_seen = 99;
    /* A lap of the 1.5 m circle at 1 m/s takes 9.4 s. */
    for (uint64_t k = 0; k < 1140; k += 12) {
        uint64_t t = km_synthetic_scene_frame_time(s, k);
        int n = km_synthetic_scene_markers(s, t, m, KM_SYNTHETIC_MAX_MARKERS);
        for (int i = 0; i < n; i++) {
            int seen = 0;
            for (int c = 0; c < 8; c++) {
                in_view += km_synthetic_scene_visible(open, c, &m[i], t);
                total++;
                seen += km_synthetic_scene_visible(s, c, &m[i], t);
            }
            two_plus += seen >= 2;
            seen_sum += seen;
            if (seen < min_seen)
                min_seen = seen;
            samples++;
        }
    }
    double in_view_frac = (double)in_view / (double)total;
    double two_frac = (double)two_plus / (double)samples;
    printf("in-image fraction (no occlusion, all cameras): %.4f\n", in_view_frac);
    printf("markers seen by >= 2 cameras: %.4f of marker-frames (mean %.2f cameras, min %ld)\n",
           two_frac, (double)seen_sum / (double)samples, min_seen);
    assert_true(in_view_frac > 0.999);
    assert_true(two_frac > 0.95);
    /* Occlusion does hide some markers from some cameras. */
    assert_true((double)seen_sum / (double)samples < 7.9);
    km_synthetic_scene_destroy(open);
    km_synthetic_scene_destroy(s);
}

/* observe() reports exactly the markers visible() accepts, at their projections. */
static void test_observe_matches_visible(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.actor_count = 2;
    cfg.reflection_rate = 0.0;
    km_synthetic_scene *s = make_scene(&cfg);
    km_synthetic_marker m[KM_SYNTHETIC_MAX_MARKERS];
    km_synthetic_observation obs[KM_SYNTHETIC_MAX_MARKERS];
    for (uint64_t k = 0; k < 600; k += 97) {
        uint64_t t = km_synthetic_scene_frame_time(s, k);
        int n = km_synthetic_scene_markers(s, t, m, KM_SYNTHETIC_MAX_MARKERS);
        for (int c = 0; c < 8; c++) {
            int no = km_synthetic_scene_observe(s, c, k, 0.0, 7, obs, KM_SYNTHETIC_MAX_MARKERS);
            int j = 0;
            for (int i = 0; i < n; i++) {
                if (!km_synthetic_scene_visible(s, c, &m[i], t))
                    continue;
                assert_true(j < no);
                assert_int_equal(obs[j].marker_id, m[i].id);
                double u, v;
                assert_true(km_camera_project(&km_synthetic_scene_rig(s)->cameras[c],
                                              m[i].pos_m, &u, &v));
                assert_true(fabs(u - obs[j].x) < 1e-6 && fabs(v - obs[j].y) < 1e-6);
                j++;
            }
            assert_int_equal(j, no);
        }
    }
    km_synthetic_scene_destroy(s);
}

static void test_observe_noise(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.reflection_rate = 3.0;
    km_synthetic_scene *s = make_scene(&cfg);
    km_synthetic_observation a[256], b[256];
    double sum = 0, sum2 = 0;
    long count = 0, reflections = 0, frames = 0;
    for (uint64_t k = 0; k < 400; k += 3) {
        for (int c = 0; c < 8; c++) {
            int na = km_synthetic_scene_observe(s, c, k, 0.0, 11, a, 256);
            int nb = km_synthetic_scene_observe(s, c, k, 0.1, 11, b, 256);
            assert_int_equal(na, nb);
            frames++;
            for (int i = 0; i < na; i++) {
                assert_int_equal(a[i].marker_id, b[i].marker_id);
                double dx = b[i].x - a[i].x, dy = b[i].y - a[i].y;
                sum += dx + dy;
                sum2 += dx * dx + dy * dy;
                count += 2;
                if (a[i].marker_id == KM_SYNTHETIC_REFLECTION_ID)
                    reflections++;
            }
        }
    }
    double mean = sum / count, sd = sqrt(sum2 / count - mean * mean);
    double refl_rate = (double)reflections / (double)frames;
    printf("observe(0.1 px): mean %.4f px, sigma %.4f px over %ld coordinates; reflections "
           "%.2f per camera frame (rate 3)\n", mean, sd, count, refl_rate);
    assert_true(fabs(mean) < 0.005);
    assert_true(fabs(sd - 0.1) < 0.005);
    assert_true(fabs(refl_rate - 3.0) < 0.3);
    /* Same seed, same noise; other seed, other noise. */
    int n1 = km_synthetic_scene_observe(s, 2, 5, 0.1, 11, a, 256);
    int n2 = km_synthetic_scene_observe(s, 2, 5, 0.1, 11, b, 256);
    assert_int_equal(n1, n2);
    for (int i = 0; i < n1; i++) {
        assert_true(a[i].x == b[i].x && a[i].y == b[i].y);
        assert_int_equal(a[i].marker_id, b[i].marker_id);
    }
    km_synthetic_scene_observe(s, 2, 5, 0.1, 12, b, 256);
    assert_true(a[0].x != b[0].x);
    /* Capacity is respected; bad arguments give 0. */
    assert_int_equal(km_synthetic_scene_observe(s, 2, 5, 0.1, 11, a, 3), 3);
    assert_int_equal(km_synthetic_scene_observe(s, 8, 5, 0.1, 11, a, 256), 0);
    assert_int_equal(km_synthetic_scene_observe(s, 0, 5, -1.0, 11, a, 256), 0);
    km_synthetic_scene_destroy(s);
}

/* Intensity-weighted centroid of the pixels whose centres lie within `radius` of (cx, cy),
 * background subtracted (so zero-mean noise adds no bias). */
static void window_centroid(const uint8_t *img, int stride, int w, int h, double cx, double cy,
                            double radius, double bg, double *ox, double *oy)
{
    double sw = 0, sx = 0, sy = 0;
    int half = (int)ceil(radius) + 1;
    for (int y = (int)floor(cy) - half; y <= (int)floor(cy) + half + 1; y++) {
        for (int x = (int)floor(cx) - half; x <= (int)floor(cx) + half + 1; x++) {
            if (x < 0 || y < 0 || x >= w || y >= h || hypot(x - cx, y - cy) > radius)
                continue;
            double v = img[(size_t)y * (size_t)stride + (size_t)x] - bg;
            sw += v;
            sx += v * x;
            sy += v * y;
        }
    }
    *ox = sx / sw;
    *oy = sy / sw;
}

static void centroid_errors(double noise, double *max_err, double *mean_err, int *checked)
{
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.image_noise = noise;
    cfg.reflection_rate = 0;
    km_synthetic_scene *s = make_scene(&cfg);
    uint8_t *img = malloc(1280 * 1024);
    assert_non_null(img);
    km_synthetic_observation obs[256];
    *max_err = 0;
    double sum = 0;
    int n_checked = 0;
    for (uint64_t k = 0; k < 1000; k += 111) {
        for (int c = 0; c < 8; c += 3) {
            assert_int_equal(km_synthetic_scene_render(s, c, k, img, 1280), KM_OK);
            int n = km_synthetic_scene_observe(s, c, k, 0.0, 1, obs, 256);
            km_synthetic_marker m[KM_SYNTHETIC_MAX_MARKERS];
            int nm = km_synthetic_scene_markers(s, km_synthetic_scene_frame_time(s, k), m,
                                                KM_SYNTHETIC_MAX_MARKERS);
            for (int i = 0; i < n; i++) {
                double radius = 0;
                for (int j = 0; j < nm; j++)
                    if (m[j].id == obs[i].marker_id)
                        radius = km_synthetic_scene_marker_radius_px(s, c, m[j].pos_m);
                assert_true(radius >= 1.5);
                /* Isolated: no other marker within 9 px. */
                bool isolated = true;
                for (int j = 0; j < n && isolated; j++)
                    if (j != i && hypot(obs[j].x - obs[i].x, obs[j].y - obs[i].y) < 9.0)
                        isolated = false;
                if (!isolated)
                    continue;
                double x, y;
                window_centroid(img, 1280, 1280, 1024, obs[i].x, obs[i].y, radius + 1.0,
                                SYNTH_BACKGROUND_MEAN, &x, &y);
                double e = hypot(x - obs[i].x, y - obs[i].y);
                if (e > *max_err)
                    *max_err = e;
                sum += e;
                n_checked++;
            }
        }
    }
    *mean_err = sum / n_checked;
    *checked = n_checked;
    free(img);
    km_synthetic_scene_destroy(s);
}

static void test_render_centroid(void **state)
{
    (void)state;
    double max_err, mean_err;
    int n;
    centroid_errors(0.0, &max_err, &mean_err, &n);
    printf("rendered centroid vs projected centre, no noise: mean %.4f px, max %.4f px (%d "
           "isolated markers)\n", mean_err, max_err, n);
    assert_true(n > 100);
    /* The pixel-sampling bias of a centroid of a 1.5 px disk is up to ~0.02 px. */
    assert_true(max_err < 0.03);
    centroid_errors(2.0, &max_err, &mean_err, &n);
    printf("rendered centroid vs projected centre, noise sigma 2: mean %.4f px, max %.4f px\n",
           mean_err, max_err);
    assert_true(max_err < 0.05);
}

static void test_render_image(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.reflection_rate = 0;
    km_synthetic_scene *s = make_scene(&cfg);
    uint8_t *img = malloc(1300 * 1024), *img2 = malloc(1300 * 1024);
    assert_non_null(img);
    assert_non_null(img2);
    memset(img2, 0x5a, 1300 * 1024);
    /* Stride wider than the width: the padding is left alone. */
    memset(img, 0x5a, 1300 * 1024);
    assert_int_equal(km_synthetic_scene_render(s, 1, 10, img, 1300), KM_OK);
    double sum = 0, sum2 = 0;
    long bright = 0, px = 0;
    for (int y = 0; y < 1024; y++) {
        for (int x = 0; x < 1280; x++) {
            int v = img[(size_t)y * 1300 + (size_t)x];
            if (v > 60) {
                bright++;
                continue;
            }
            sum += v;
            sum2 += (double)v * v;
            px++;
        }
        for (int x = 1280; x < 1300; x++)
            assert_int_equal(img[(size_t)y * 1300 + (size_t)x], 0x5a);
    }
    double mean = sum / px, sd = sqrt(sum2 / px - mean * mean);
    printf("background mean %.2f sigma %.2f; %ld bright pixels\n", mean, sd, bright);
    assert_true(fabs(mean - 8.0) < 0.2);
    assert_true(fabs(sd - 2.0) < 0.2);
    assert_true(bright > 48 * 5);
    /* Deterministic; the noise changes between frames. */
    assert_int_equal(km_synthetic_scene_render(s, 1, 10, img2, 1300), KM_OK);
    assert_memory_equal(img, img2, 1300 * 1024);
    assert_int_equal(km_synthetic_scene_render(s, 1, 11, img2, 1300), KM_OK);
    assert_memory_not_equal(img, img2, 1300 * 1024);
    /* Bad arguments. */
    assert_int_equal(km_synthetic_scene_render(s, 8, 0, img, 1300), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_synthetic_scene_render(s, 0, 0, img, 1000), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_synthetic_scene_render(s, 0, 0, NULL, 1300), KM_ERR_INVALID_ARGUMENT);

    /* Reflections add bright blobs: count connected bright pixels roughly by comparing. */
    km_synthetic_config cr = cfg;
    cr.reflection_rate = 10;
    km_synthetic_scene *sr = make_scene(&cr);
    assert_int_equal(km_synthetic_scene_render(sr, 1, 10, img2, 1300), KM_OK);
    long bright_r = 0;
    for (int y = 0; y < 1024; y++)
        for (int x = 0; x < 1280; x++)
            bright_r += img2[(size_t)y * 1300 + (size_t)x] > 60;
    assert_true(bright_r > bright);
    km_synthetic_scene_destroy(sr);

    /* Timing of one 1280x1024 frame (printed, not asserted). */
    uint64_t t0 = km_time_now_ns();
    int frames = 40;
    for (int k = 0; k < frames; k++)
        km_synthetic_scene_render(s, k % 8, (uint64_t)k, img, 1280);
    double ms = (double)(km_time_now_ns() - t0) / 1e6 / frames;
    printf("render one 1280x1024 frame (1 actor): %.3f ms\n", ms);
    free(img);
    free(img2);
    km_synthetic_scene_destroy(s);
}

static void test_render_timing_many_actors(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.actor_count = 4;
    km_synthetic_scene *s = make_scene(&cfg);
    uint8_t *img = malloc(1280 * 1024);
    assert_non_null(img);
    uint64_t t0 = km_time_now_ns();
    int frames = 20;
    for (int k = 0; k < frames; k++)
        assert_int_equal(km_synthetic_scene_render(s, k % 8, (uint64_t)k, img, 1280), KM_OK);
    double ms = (double)(km_time_now_ns() - t0) / 1e6 / frames;
    printf("render one 1280x1024 frame (4 actors): %.3f ms\n", ms);
    free(img);
    km_synthetic_scene_destroy(s);
}

static void test_deterministic(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    km_synthetic_scene *a = make_scene(&cfg), *b = make_scene(&cfg);
    km_synthetic_marker ma[64], mb[64];
    uint64_t t = km_synthetic_scene_frame_time(a, 321);
    assert_int_equal(t, 2675000000ull);
    int n = km_synthetic_scene_markers(a, t, ma, 64);
    assert_int_equal(km_synthetic_scene_markers(b, t, mb, 64), n);
    assert_memory_equal(ma, mb, sizeof ma[0] * (size_t)n);
    assert_memory_equal(km_synthetic_scene_rig(a), km_synthetic_scene_rig(b), sizeof(km_rig));
    cfg.seed = 2;
    km_synthetic_scene *c = make_scene(&cfg);
    assert_memory_not_equal(&km_synthetic_scene_rig(a)->cameras[0].K,
                            &km_synthetic_scene_rig(c)->cameras[0].K, sizeof(double) * 9);
    km_synthetic_scene_destroy(a);
    km_synthetic_scene_destroy(b);
    km_synthetic_scene_destroy(c);
}

static void test_rigid_poses(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    cfg.actor_count = 2;
    km_synthetic_scene *s = make_scene(&cfg);
    km_synthetic_marker local_head[8], local_prop[8];
    assert_int_equal(km_synthetic_rigid_definition(KM_SYNTHETIC_RIGID_HEAD, local_head, 8), 4);
    assert_int_equal(km_synthetic_rigid_definition(KM_SYNTHETIC_RIGID_PROP, local_prop, 8), 5);
    assert_int_equal(km_synthetic_rigid_definition(KM_SYNTHETIC_RIGID_KIND_COUNT, local_prop, 8),
                     0);
    assert_string_equal(local_head[0].label, "HEAD1");
    assert_string_equal(local_prop[4].label, "PROP5");
    /* Asymmetric: all pairwise distances differ by > 5 mm. */
    const km_synthetic_marker *defs[2] = {local_head, local_prop};
    int counts[2] = {4, 5};
    for (int d = 0; d < 2; d++) {
        double dist[16];
        int nd = 0;
        for (int i = 0; i < counts[d]; i++)
            for (int j = i + 1; j < counts[d]; j++)
                dist[nd++] = km_vec3_dist(defs[d][i].pos_m, defs[d][j].pos_m);
        for (int i = 0; i < nd; i++)
            for (int j = i + 1; j < nd; j++)
                assert_true(fabs(dist[i] - dist[j]) > 0.005);
    }
    km_synthetic_marker m[KM_SYNTHETIC_MAX_MARKERS];
    km_synthetic_rigid_pose poses[8];
    double max_err = 0;
    for (uint64_t k = 0; k < 1000; k += 37) {
        uint64_t t = km_synthetic_scene_frame_time(s, k);
        km_synthetic_scene_markers(s, t, m, KM_SYNTHETIC_MAX_MARKERS);
        int np = km_synthetic_scene_rigid_poses(s, t, poses, 8);
        assert_int_equal(np, 4);
        for (int p = 0; p < np; p++) {
            const km_synthetic_rigid_pose *rp = &poses[p];
            double qn = sqrt(rp->rot.x * rp->rot.x + rp->rot.y * rp->rot.y +
                             rp->rot.z * rp->rot.z + rp->rot.w * rp->rot.w);
            assert_true(fabs(qn - 1.0) < 1e-9);
            assert_int_equal(rp->id, (uint32_t)(rp->actor * 1000 + 900 + rp->kind));
            const km_synthetic_marker *def = rp->kind == KM_SYNTHETIC_RIGID_HEAD ? local_head
                                                                                 : local_prop;
            int nm = rp->kind == KM_SYNTHETIC_RIGID_HEAD ? 4 : 5;
            for (int i = 0; i < nm; i++) {
                km_vec3 w = km_vec3_add(rp->pos_m, km_quat_rotate(rp->rot, def[i].pos_m));
                const km_synthetic_marker *sm = &m[rp->actor * 48 + (int)def[i].id];
                assert_string_equal(sm->label, def[i].label);
                double e = km_vec3_dist(w, sm->pos_m);
                if (e > max_err)
                    max_err = e;
            }
        }
    }
    assert_true(max_err < 1e-9);
    assert_int_equal(km_synthetic_scene_rigid_poses(s, 0, poses, 3), 3);
    km_synthetic_scene_destroy(s);
}

static void test_create_rejects(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    km_status st = KM_OK;
    cfg.camera_count = 0;
    assert_null(km_synthetic_scene_create(&cfg, &st));
    assert_int_equal(st, KM_ERR_INVALID_ARGUMENT);
    cfg = km_synthetic_config_default();
    cfg.actor_count = 9;
    assert_null(km_synthetic_scene_create(&cfg, &st));
    cfg = km_synthetic_config_default();
    cfg.rate_hz = 0;
    assert_null(km_synthetic_scene_create(&cfg, &st));
    assert_true(strstr(km_last_error(), "rate_hz") != NULL);
    km_synthetic_scene_destroy(NULL);
}

static void test_config_read(void **state)
{
    (void)state;
    const char *text = "synthetic:\n"
                       "  camera_count: 4\n"
                       "  width: 640\n"
                       "  height: 480\n"
                       "  rate_hz: 60\n"
                       "  actor_count: 2\n"
                       "  seed: 42\n"
                       "  image_noise: 1.5\n"
                       "  distortion: 0.5\n"
                       "  reflection_rate: 0\n"
                       "  occlusion: false\n"
                       "  marker_diameter_m: 0.019\n"
                       "  duration_s: 3.5\n"
                       "  scene: wand\n"
                       "  wand_seconds: 12\n"
                       "  lframe_seconds: 0\n";
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "test.yaml", &st);
    assert_non_null(cfg);
    km_synthetic_config c;
    assert_int_equal(km_synthetic_config_read(cfg, "synthetic", &c), KM_OK);
    assert_int_equal(c.camera_count, 4);
    assert_int_equal(c.width, 640);
    assert_int_equal(c.height, 480);
    assert_true(c.rate_hz == 60.0);
    assert_int_equal(c.actor_count, 2);
    assert_int_equal(c.seed, 42);
    assert_true(c.image_noise == 1.5);
    assert_true(c.distortion == 0.5);
    assert_true(c.reflection_rate == 0.0);
    assert_false(c.occlusion);
    assert_true(c.marker_diameter_m == 0.019);
    assert_true(c.duration_s == 3.5);
    assert_int_equal(c.scene, KM_SYNTHETIC_SCENE_WAND);
    assert_true(c.wand_seconds == 12.0);
    assert_true(c.lframe_seconds == 0.0);
    /* Absent section: defaults. */
    assert_int_equal(km_synthetic_config_read(cfg, "nothing.here", &c), KM_OK);
    assert_int_equal(c.camera_count, 8);
    assert_int_equal(c.width, 1280);
    assert_int_equal(c.scene, KM_SYNTHETIC_SCENE_ACTOR);
    assert_true(c.wand_seconds == 20.0 && c.lframe_seconds == 10.0);
    km_config_destroy(cfg);

    const char *bad[] = {
        "synthetic:\n  camera_count: 0\n",
        "synthetic:\n  width: 100000\n",
        "synthetic:\n  rate_hz: -1\n",
        "synthetic:\n  actor_count: 20\n",
        "synthetic:\n  image_noise: abc\n",
        "synthetic:\n  marker_diameter_m: 1\n",
        "synthetic:\n  occlusion: maybe\n",
        "synthetic:\n  camera_cuont: 3\n",
        "synthetic:\n  scene: dog\n",
        "synthetic:\n  scene: [wand]\n",
        "synthetic:\n  wand_seconds: 0\n",
        "synthetic:\n  lframe_seconds: -2\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = km_config_parse(bad[i], strlen(bad[i]), "bad.yaml", &st);
        assert_non_null(cfg);
        km_synthetic_config keep = km_synthetic_config_default();
        keep.camera_count = 3;
        c = keep;
        st = km_synthetic_config_read(cfg, "synthetic", &c);
        assert_int_not_equal(st, KM_OK);
        /* The message names the file and line. */
        assert_true(strstr(km_last_error(), "bad.yaml:2") != NULL);
        assert_int_equal(c.camera_count, 3); /* untouched on failure */
        km_config_destroy(cfg);
    }
}

/* The wand scene: the same rig as the actor scene, the wand of km_synthetic_wand waved for
 * wand_seconds (same path at the same fraction of the take), then the L-frame still on the
 * floor for lframe_seconds, then nothing; every camera sees the wand often enough for a
 * calibration, and the rendered image shows it. */
static void test_wand_scene(void **state)
{
    (void)state;
    km_synthetic_config cfg = km_synthetic_config_default();
    km_synthetic_scene *actor = make_scene(&cfg);
    cfg.scene = KM_SYNTHETIC_SCENE_WAND;
    cfg.wand_seconds = 4.0;
    cfg.lframe_seconds = 1.0;
    km_synthetic_scene *s = make_scene(&cfg);

    /* Same rig, exactly. */
    const km_rig *ra = km_synthetic_scene_rig(actor), *rw = km_synthetic_scene_rig(s);
    assert_int_equal(rw->camera_count, 8);
    for (int c = 0; c < rw->camera_count; c++) {
        assert_memory_equal(ra->cameras[c].K, rw->cameras[c].K, sizeof ra->cameras[c].K);
        assert_memory_equal(ra->cameras[c].dist, rw->cameras[c].dist,
                            sizeof ra->cameras[c].dist);
        assert_memory_equal(&ra->cameras[c].R, &rw->cameras[c].R, sizeof ra->cameras[c].R);
        assert_memory_equal(&ra->cameras[c].t, &rw->cameras[c].t, sizeof ra->cameras[c].t);
    }
    km_synthetic_scene_destroy(actor);

    /* The batch generator's wave over as many frames is the same path. */
    km_synthetic_wand_config wc = km_synthetic_wand_config_default();
    wc.frame_count = 480; /* 4 s at 120 Hz */
    km_status st;
    km_synthetic_wand *wand = km_synthetic_wand_create(&wc, &st);
    assert_non_null(wand);

    km_synthetic_marker m[16];
    km_synthetic_rigid_pose poses[4];
    double max_path_err = 0.0, max_len_err = 0.0;
    int views[KM_MAX_CAMERAS] = {0}, wand_frames = 0;
    for (int k = 0; k < 480; k += 3) {
        uint64_t t = km_synthetic_scene_frame_time(s, (uint64_t)k);
        assert_int_equal(km_synthetic_scene_markers(s, t, m, 16), 3);
        assert_int_equal(km_synthetic_scene_rigid_poses(s, t, poses, 4), 0);
        km_vec3 truth[3];
        km_synthetic_wand_markers(wand, k, truth);
        for (int i = 0; i < 3; i++) {
            char label[16];
            snprintf(label, sizeof label, "WAND%d", i + 1);
            assert_string_equal(m[i].label, label);
            assert_int_equal(m[i].id, i);
            double e = km_vec3_dist(m[i].pos_m, truth[i]);
            if (e > max_path_err)
                max_path_err = e;
            assert_true(m[i].pos_m.y > 0.0 && m[i].pos_m.y < 2.4);
        }
        double l01 = km_vec3_dist(m[0].pos_m, m[1].pos_m);
        double l02 = km_vec3_dist(m[0].pos_m, m[2].pos_m);
        max_len_err = fmax(max_len_err, fmax(fabs(l01 - 0.15), fabs(l02 - 0.5)));
        /* Coverage: cameras that see all three markers of the wand. */
        for (int c = 0; c < 8; c++) {
            int seen = 0;
            for (int i = 0; i < 3; i++)
                seen += km_synthetic_scene_visible(s, c, &m[i], t);
            views[c] += seen == 3;
        }
        wand_frames++;
    }
    /* The time -> fraction-of-take rounding only: far below a micrometre. */
    assert_true(max_path_err < 1e-6);
    assert_true(max_len_err < 1e-12);
    int min_views = wand_frames;
    for (int c = 0; c < 8; c++)
        if (views[c] < min_views)
            min_views = views[c];
    print_message("wand scene: path = batch wave within %.2g m, wand lengths exact to %.2g m; "
                  "each camera sees all 3 wand markers in >= %d of %d frames\n",
                  max_path_err, max_len_err, min_views, wand_frames);
    assert_true(min_views >= wand_frames / 3);

    /* L-frame phase: four still markers at km_lframe_default()'s places. */
    km_vec3 lf[4];
    km_synthetic_lframe_markers(wand, lf);
    for (uint64_t t_ms = 4000; t_ms < 5000; t_ms += 250) {
        assert_int_equal(km_synthetic_scene_markers(s, t_ms * 1000000ull, m, 16), 4);
        for (int i = 0; i < 4; i++) {
            char label[16];
            snprintf(label, sizeof label, "LFRAME%d", i + 1);
            assert_string_equal(m[i].label, label);
            assert_int_equal(m[i].id, 3 + i);
            assert_true(km_vec3_dist(m[i].pos_m, lf[i]) == 0.0);
        }
    }
    assert_true(fabs(m[0].pos_m.y - 0.007) < 1e-15 && m[2].pos_m.x == 0.5 && m[3].pos_m.z == 0.2);
    /* Every camera sees the L-frame's four markers (it lies in the middle of the volume). */
    uint64_t t_lf = 4500000000ull;
    for (int c = 0; c < 8; c++)
        for (int i = 0; i < 4; i++)
            assert_true(km_synthetic_scene_visible(s, c, &m[i], t_lf));
    /* After it: an empty volume (reflections only). */
    assert_int_equal(km_synthetic_scene_markers(s, 5000000000ull, m, 16), 0);
    assert_int_equal(km_synthetic_scene_markers(s, 60000000000ull, m, 16), 0);

    /* Rendering: the observed wand markers are bright disks in the image at their place. */
    int w = cfg.width, h = cfg.height;
    uint8_t *img = malloc((size_t)w * (size_t)h);
    assert_non_null(img);
    int checked = 0;
    for (int c = 0; c < 8; c++) {
        uint64_t frame = 100;
        assert_int_equal(km_synthetic_scene_render(s, c, frame, img, w), KM_OK);
        km_synthetic_observation obs[64];
        int n = km_synthetic_scene_observe(s, c, frame, 0.0, 1, obs, 64);
        for (int i = 0; i < n; i++) {
            if (obs[i].marker_id == KM_SYNTHETIC_REFLECTION_ID)
                continue;
            assert_true(obs[i].marker_id < 3);
            int x = (int)lround(obs[i].x), y = (int)lround(obs[i].y);
            assert_true(img[(size_t)y * (size_t)w + (size_t)x] > 150);
            checked++;
        }
    }
    assert_true(checked >= 12);
    /* The L-frame phase renders 4 disks, after it only reflections. */
    km_synthetic_observation obs[64];
    int n = km_synthetic_scene_observe(s, 0, 540, 0.0, 1, obs, 64), markers = 0;
    for (int i = 0; i < n; i++)
        markers += obs[i].marker_id != KM_SYNTHETIC_REFLECTION_ID;
    assert_int_equal(markers, 4);
    n = km_synthetic_scene_observe(s, 0, 700, 0.0, 1, obs, 64);
    for (int i = 0; i < n; i++)
        assert_true(obs[i].marker_id == KM_SYNTHETIC_REFLECTION_ID);
    free(img);
    km_synthetic_wand_destroy(wand);
    km_synthetic_scene_destroy(s);

    /* Bad wand settings are refused by create. */
    cfg.wand_seconds = 0.0;
    assert_null(km_synthetic_scene_create(&cfg, &st));
    assert_true(strstr(km_last_error(), "wand_seconds") != NULL);
    cfg.wand_seconds = 1.0;
    cfg.lframe_seconds = -1.0;
    assert_null(km_synthetic_scene_create(&cfg, &st));
    cfg.lframe_seconds = 0.0;
    cfg.scene = (km_synthetic_scene_kind)7;
    assert_null(km_synthetic_scene_create(&cfg, &st));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markers_labels_ids),
        cmocka_unit_test(test_smooth_and_plausible),
        cmocka_unit_test(test_markers_outside_body),
        cmocka_unit_test(test_rig),
        cmocka_unit_test(test_visibility),
        cmocka_unit_test(test_observe_matches_visible),
        cmocka_unit_test(test_observe_noise),
        cmocka_unit_test(test_render_centroid),
        cmocka_unit_test(test_render_image),
        cmocka_unit_test(test_render_timing_many_actors),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_rigid_poses),
        cmocka_unit_test(test_create_rejects),
        cmocka_unit_test(test_config_read),
        cmocka_unit_test(test_wand_scene),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
