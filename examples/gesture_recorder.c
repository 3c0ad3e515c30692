/* gesture_recorder: records templates of one gesture from a continuous stream of a tracked
 * point, cutting the repetitions at rests, and writes traj.csv for `kinema gesture train`.
 *
 *   some_tracker | gesture_recorder --label swipe_left --out swipe_left.csv [--reps 5]
 *                  [--rest-ms 300] [--rest-speed 0.1] [--min-length 0.1]
 *
 * Input on stdin: one point per line "t_ns,x,y,z" (metres; e.g. a hand joint of
 * skeleton.csv or a marker of markers.csv cut to those columns). Perform the gesture, hold
 * still for --rest-ms, repeat. A repetition is the motion between two rests (speed below
 * --rest-speed m/s over 50 ms, held --rest-ms) whose path is at least --min-length m. Each is
 * reported on stderr as it is captured; after --reps of them (or at end of input) traj.csv
 * is written. Uses the library's trajectory and traj.csv writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/gesture.h"

#define MAX_POINTS 100000

int main(int argc, char **argv)
{
    const char *label = NULL, *out = NULL;
    long reps = 5;
    double rest_ms = 300, rest_speed = 0.1, min_length = 0.1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: gesture_recorder --label NAME --out traj.csv [--reps 5] [--rest-ms 300] "
                   "[--rest-speed 0.1]\n                        [--min-length 0.1] < t_ns,x,y,z "
                   "lines\n\nCuts repetitions of one gesture at rests out of a tracked point's "
                   "stream and writes\ntraj.csv for `kinema gesture train` "
                   "(docs/gestures.md).\n");
            return 0;
        } else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--rest-ms") && i + 1 < argc)
            rest_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rest-speed") && i + 1 < argc)
            rest_speed = atof(argv[++i]);
        else if (!strcmp(argv[i], "--min-length") && i + 1 < argc)
            min_length = atof(argv[++i]);
        else
            label = NULL, i = argc;
    }
    if (!label || !out || reps < 1) {
        fprintf(stderr, "usage: gesture_recorder --label NAME --out traj.csv [--reps N] "
                        "[--rest-ms MS] [--rest-speed M/S] [--min-length M] < t_ns,x,y,z lines\n");
        return 2;
    }
    km_gesture_set *set = km_gesture_set_create();
    km_trajectory all;
    if (!set || km_trajectory_init(&all, MAX_POINTS))
        return 1;
    char line[512];
    size_t start = 0;       /* first point of the current motion */
    bool moving = false;
    int64_t still_since = -1;
    long line_no = 0;
    while ((long)set->count < reps && fgets(line, sizeof line, stdin)) {
        line_no++;
        long long t;
        double x, y, z;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%lld,%lf,%lf,%lf", &t, &x, &y, &z) != 4) {
            fprintf(stderr, "gesture_recorder: stdin:%ld: expected t_ns,x,y,z\n", line_no);
            return 1;
        }
        if (all.count == all.capacity) { /* keep memory bounded: restart the buffer */
            km_trajectory_clear(&all);
            moving = false;
        }
        km_trajectory_push(&all, km_vec3_make(x, y, z), t);
        size_t i = all.count - 1, j = i;
        while (j > 0 && t - all.t_ns[j - 1] <= 50000000)
            j--;
        double speed = j < i ? km_vec3_dist(all.pos[i], all.pos[j]) / ((t - all.t_ns[j]) * 1e-9) : 0;
        if (speed >= rest_speed) {
            if (!moving) {
                moving = true;
                start = j;
            }
            still_since = -1;
            continue;
        }
        if (still_since < 0)
            still_since = t;
        if (moving && t - still_since >= (int64_t)(rest_ms * 1e6)) {
            moving = false;
            /* the motion ended where the stillness began */
            size_t end = i;
            while (end > start && all.t_ns[end] > still_since)
                end--;
            double length = km_gesture_path_length(all.pos + start, end - start + 1);
            if (end > start + 2 && length >= min_length) {
                char id[64];
                snprintf(id, sizeof id, "%s-%zu", label, set->count + 1);
                km_gesture_set_add(set, id, label, -1, all.pos + start, all.t_ns + start,
                                   end - start + 1);
                fprintf(stderr, "gesture_recorder: %s: %zu points, %.2f m, %.0f ms\n", id,
                        end - start + 1, length, (all.t_ns[end] - all.t_ns[start]) / 1e6);
            }
        }
    }
    FILE *f = fopen(out, "w");
    if (!f || km_gesture_write_traj_csv(set, f) || fclose(f)) {
        fprintf(stderr, "gesture_recorder: cannot write %s\n", out);
        return 1;
    }
    fprintf(stderr, "gesture_recorder: %zu repetitions of '%s' -> %s\n", set->count, label, out);
    km_trajectory_release(&all);
    km_gesture_set_destroy(set);
    return 0;
}
