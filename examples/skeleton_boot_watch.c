/* skeleton_boot_watch: runs kinemad's pipeline on the embedded default (the synthetic walking
 * actor), offline and as fast as it goes, and watches the skeleton find the actor: the frame
 * of the first pose, the frame from which every joint is observed, and whether a hand was put
 * on the wrong arm (the LeftHand joint far from the actor's left wrist marker). It is how the
 * boot figures of docs/skeleton.md are measured, and a way to see what the boot settings do.
 *
 *   skeleton_boot_watch [--frames 600] [--budget-us 1500] [--steps 0] [--retry 60]
 *                       [--every 40]
 *
 * --budget-us, --steps and --retry are skeleton.boot_budget_us, boot_steps and
 * boot_retry_frames (docs/config.md); --every N prints one line every N frames once the
 * skeleton is tracked. The joint-to-marker distance of a right solve is 3.6-3.7 cm (the wrist
 * marker sits on the back of the wrist); 6 cm or more means the hand is not where it is.
 * Exit status 0 when the skeleton was found, every joint became observed and no hand was
 * off after that; 1 otherwise (so a test can run it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/pipeline.h"

#define WRONG_HAND_M 0.06

typedef struct watch {
    const km_synthetic_scene *scene;
    long every;
    long first_pose, full;   /* frames; -1 until seen */
    long wrong_after_full;   /* frames after `full` with the left hand >= 6 cm off */
    uint64_t frames;
} watch;

static km_vec3 marker(const km_synthetic_marker *m, int n, const char *label)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].label, label) == 0)
            return m[i].pos_m;
    return km_vec3_make(0, 0, 0);
}

static int popcount(uint32_t v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

static void on_frame(void *user, const km_solved_frame *f)
{
    watch *w = user;
    w->frames++;
    if (f->skeleton_count == 0 || !f->skeletons[0].tracked)
        return;
    const km_skeleton_pose *k = &f->skeletons[0];
    km_synthetic_marker m[512];
    int n = km_synthetic_scene_markers(w->scene, km_synthetic_scene_frame_time(w->scene, f->frame),
                                       m, 512);
    double left = km_vec3_dist(k->joint_pos_m[KM_JOINT_LEFT_HAND], marker(m, n, "LWRA"));
    double right = km_vec3_dist(k->joint_pos_m[KM_JOINT_RIGHT_HAND], marker(m, n, "RWRA"));
    int observed = popcount(k->joints_observed);
    if (w->first_pose < 0) {
        w->first_pose = (long)f->frame;
        printf("frame %4llu: first pose (%d of %d joints observed, %d markers)\n",
               (unsigned long long)f->frame, observed, KM_JOINT_COUNT, k->markers_used);
    }
    if (w->full < 0 && k->joints_observed == KM_SKELETON_ALL_JOINTS) {
        w->full = (long)f->frame;
        printf("frame %4llu: every joint observed (%d markers)\n",
               (unsigned long long)f->frame, k->markers_used);
    }
    if (w->full >= 0 && left >= WRONG_HAND_M)
        w->wrong_after_full++;
    if (w->every > 0 && f->frame % (uint64_t)w->every == 0)
        printf("frame %4llu: %2d joints observed, %2d markers, LeftHand-LWRA %.3f m, "
               "RightHand-RWRA %.3f m, hips height %.2f m\n", (unsigned long long)f->frame,
               observed, k->markers_used, left, right, k->joint_pos_m[KM_JOINT_HIPS].y);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: skeleton_boot_watch [--frames 600] [--budget-us 1500] [--steps 0] "
                "[--retry 60] [--every 40]\n\n"
                "Runs the pipeline on the embedded synthetic actor (offline) and reports when the\n"
                "skeleton finds the actor: first pose, every joint observed, and frames with the\n"
                "left hand 6 cm or more from the left wrist marker (a wrong arm).\n");
}

int main(int argc, char **argv)
{
    long frames = 600, budget_us = -1, steps = -1, retry = -1, every = 40;
    for (int i = 1; i < argc; i++) {
        long *target = NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--frames")) {
            target = &frames;
        } else if (!strcmp(argv[i], "--budget-us")) {
            target = &budget_us;
        } else if (!strcmp(argv[i], "--steps")) {
            target = &steps;
        } else if (!strcmp(argv[i], "--retry")) {
            target = &retry;
        } else if (!strcmp(argv[i], "--every")) {
            target = &every;
        }
        char *end = NULL;
        if (target == NULL || i + 1 >= argc ||
            (*target = strtol(argv[i + 1], &end, 10), *end != '\0' || *target < 0)) {
            fprintf(stderr, "skeleton_boot_watch: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        i++;
    }
    km_pipeline_config cfg = km_pipeline_config_default();
    cfg.realtime = false;
    cfg.publish_enabled = false;
    cfg.pool_frames = 8;
    if (budget_us >= 0)
        cfg.skeleton.boot_budget_us = (int)budget_us;
    if (steps >= 0)
        cfg.skeleton.boot_steps = (int)steps;
    if (retry >= 0)
        cfg.skeleton.boot_retry_frames = (int)retry;
    km_status st;
    km_pipeline *p = km_pipeline_create(&cfg, &st);
    if (p == NULL) {
        fprintf(stderr, "skeleton_boot_watch: %s\n", km_last_error());
        return 1;
    }
    watch w = {km_pipeline_scene(p), every, -1, -1, 0, 0};
    km_pipeline_set_frame_callback(p, on_frame, &w);
    if ((st = km_pipeline_start(p)) != KM_OK) {
        fprintf(stderr, "skeleton_boot_watch: %s\n", km_last_error());
        km_pipeline_destroy(p);
        return 1;
    }
    km_pipeline_stats stats;
    do {
        int n = 0;
        st = km_pipeline_step(p, 100000000ull, &n);
        km_pipeline_stats_get(p, &stats);
    } while (st == KM_OK && stats.framesets < (uint64_t)frames);
    km_pipeline_destroy(p);
    if (st != KM_OK) {
        fprintf(stderr, "skeleton_boot_watch: %s\n", km_last_error());
        return 1;
    }
    printf("%llu frames: first pose at %ld, every joint observed from %ld, %ld frames since "
           "with the left hand >= %.0f cm off its wrist marker\n",
           (unsigned long long)w.frames, w.first_pose, w.full, w.wrong_after_full,
           100 * WRONG_HAND_M);
    return w.first_pose >= 0 && w.full >= 0 && w.wrong_after_full == 0 ? 0 : 1;
}
