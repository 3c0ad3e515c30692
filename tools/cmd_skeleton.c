/* kinema skeleton markerset --out pig.yaml
 * kinema skeleton calibrate --c3d take.c3d --out subject.yaml
 * kinema skeleton solve (--c3d f.c3d | --markers markers.csv | --rig rig.yaml --obs obs.csv)
 *                       --subject s.yaml [--subject s2.yaml ...] --out skeleton.csv|.bvh
 * Marker-based skeletal tracking from files (docs/skeleton.md). */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/skeleton.h"
#include "kinema/tracking.h"

#define CMD "skeleton"

static const char USAGE[] =
    "usage: kinema skeleton markerset --out FILE\n"
    "       kinema skeleton calibrate --c3d TAKE.c3d --out SUBJECT.yaml [options]\n"
    "       kinema skeleton solve INPUT --subject SUBJECT.yaml [--subject ...] --out FILE "
    "[options]\n"
    "\n"
    "markerset  writes the default Plug-in Gait full-body marker set (39 markers) as a marker\n"
    "           set file, to edit for other sets.\n"
    "calibrate  fits a subject (bone lengths, marker offsets) to a labeled T-pose or\n"
    "           range-of-motion take in C3D (labels matched to the marker set).\n"
    "solve      labels unlabeled markers and solves one skeleton per subject every frame\n"
    "           (up to 4 people). Labels in the input are not used. Output: skeleton.csv\n"
    "           (formats.md) or, for a name ending in .bvh, one BVH per person (NAME.bvh,\n"
    "           NAME.p1.bvh, ...).\n"
    "\n"
    "input (solve):\n"
    "  --c3d FILE            3D markers of a C3D file\n"
    "  --markers FILE        3D markers (markers.csv; ids from tracking help)\n"
    "  --rig FILE --obs FILE 2D observations: reconstructed and tracked first\n"
    "options:\n"
    "  --subject FILE        subject file (repeat for several people)\n"
    "  --out FILE            output\n"
    "  --labels-out FILE     (solve) markers.csv with a label column (SUBJECT:LABEL)\n"
    "  --up y|z|auto         (C3D) the file's vertical axis (default auto: the axis along\n"
    "                        which one frame's markers spread most)\n"
    "  --frames A:B          (C3D) frames to use (default all; calibrate: a few seconds of\n"
    "                        T-pose / range of motion)\n"
    "  --markerset FILE      (calibrate) marker set file (default Plug-in Gait)\n"
    "  --height M            (calibrate) body height in metres (default: from the markers)\n"
    "  --name NAME           (calibrate) subject name (default: the file name)\n"
    "  --quiet               no summary\n";

typedef struct args {
    const char *c3d, *markers, *rig, *obs, *out, *labels_out, *up, *frames, *markerset,
        *name;
    const char *subjects[KM_SKELETON_MAX_PEOPLE];
    int subject_count;
    double height;
    bool quiet;
} args;

static int parse_args(int argc, char **argv, int first, args *a)
{
    memset(a, 0, sizeof *a);
    a->up = "auto";
    static const struct {
        const char *name;
        size_t offset;
    } STRINGS[] = {
        {"--c3d", offsetof(args, c3d)},           {"--markers", offsetof(args, markers)},
        {"--rig", offsetof(args, rig)},           {"--obs", offsetof(args, obs)},
        {"--out", offsetof(args, out)},           {"--labels-out", offsetof(args, labels_out)},
        {"--up", offsetof(args, up)},             {"--frames", offsetof(args, frames)},
        {"--markerset", offsetof(args, markerset)}, {"--name", offsetof(args, name)},
    };
    for (int i = first; i < argc;) { /* cli_option moves i past the option and its value */
        const char *v = NULL;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return -1;
        }
        if (!strcmp(argv[i], "--quiet")) {
            a->quiet = true;
            i++;
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof STRINGS / sizeof STRINGS[0] && !matched; k++) {
            if (cli_option(argc, argv, &i, STRINGS[k].name, &v)) {
                if (!v)
                    return KINEMA_EXIT_USAGE;
                *(const char **)((char *)a + STRINGS[k].offset) = v;
                matched = true;
            }
        }
        if (matched)
            continue;
        if (cli_option(argc, argv, &i, "--height", &v)) {
            if (!v || !cli_parse_double(v, 0.5, 2.5, &a->height))
                return cli_usage_error(CMD, USAGE, "--height: a number of metres in [0.5, 2.5]");
        } else if (cli_option(argc, argv, &i, "--subject", &v)) {
            if (!v)
                return KINEMA_EXIT_USAGE;
            if (a->subject_count == KM_SKELETON_MAX_PEOPLE)
                return cli_usage_error(CMD, USAGE, "at most %d subjects",
                                       KM_SKELETON_MAX_PEOPLE);
            a->subjects[a->subject_count++] = v;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (strcmp(a->up, "y") && strcmp(a->up, "z") && strcmp(a->up, "auto"))
        return cli_usage_error(CMD, USAGE, "--up: y, z or auto");
    return 0;
}

/* "A:B" (either may be empty) within [0, count). */
static bool frame_range(const char *s, int count, int *first, int *last)
{
    *first = 0;
    *last = count - 1;
    if (!s)
        return true;
    const char *colon = strchr(s, ':');
    if (!colon)
        return false;
    char a[32] = {0}, b[32] = {0};
    size_t la = (size_t)(colon - s);
    if (la >= sizeof a || strlen(colon + 1) >= sizeof b)
        return false;
    memcpy(a, s, la);
    strcpy(b, colon + 1);
    long v;
    if (a[0]) {
        if (!cli_parse_long(a, 0, count - 1, &v))
            return false;
        *first = (int)v;
    }
    if (b[0]) {
        if (!cli_parse_long(b, 0, count - 1, &v))
            return false;
        *last = (int)v;
    }
    return *first <= *last;
}

/* The C3D's vertical axis: --up, or the axis (Y or Z) along which the markers of a frame
 * spread most, over a few frames (a person is taller than wide). */
static km_mat3 c3d_to_world(const km_c3d *c, const char *up, bool *z_up)
{
    bool z = !strcmp(up, "z");
    if (!strcmp(up, "auto")) {
        double ey = 0, ez = 0;
        for (int k = 0; k < 10 && c->frame_count > 0; k++) {
            int f = (int)((long)k * c->frame_count / 10);
            double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
            for (int p = 0; p < c->point_count; p++) {
                size_t i = (size_t)f * (size_t)c->point_count + (size_t)p;
                if (c->residual[i] < 0)
                    continue;
                for (int a = 0; a < 3; a++) {
                    double v = c->pos[i * 3 + (size_t)a];
                    lo[a] = v < lo[a] ? v : lo[a];
                    hi[a] = v > hi[a] ? v : hi[a];
                }
            }
            if (hi[1] > lo[1]) {
                ey += hi[1] - lo[1];
                ez += hi[2] - lo[2];
            }
        }
        z = ez > ey;
    }
    *z_up = z;
    return z ? km_c3d_z_up_to_y_up() : km_mat3_identity();
}

/* ----------------------------------------------------------------- markerset */

static int cmd_markerset(const args *a)
{
    if (!a->out)
        return cli_usage_error(CMD, USAGE, "markerset: --out is required");
    km_body_markerset set;
    km_body_markerset_default(&set);
    if (km_body_markerset_save(a->out, &set) != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    if (!a->quiet)
        fprintf(stderr, "kinema %s: wrote %s (%d markers)\n", CMD, a->out, set.count);
    return KINEMA_EXIT_OK;
}

/* ----------------------------------------------------------------- calibrate */

static int cmd_calibrate(const args *a)
{
    if (!a->c3d || !a->out)
        return cli_usage_error(CMD, USAGE, "calibrate: --c3d and --out are required");
    km_c3d c;
    if (km_c3d_read(a->c3d, &c) != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    int rc = KINEMA_EXIT_FAILURE;
    km_body_frame *frames = NULL;
    km_body_markerset base, set;
    if (a->markerset) {
        if (km_body_markerset_load(a->markerset, &base) != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
    } else {
        km_body_markerset_default(&base);
    }
    if (km_body_markerset_match_c3d(&base, &c, &set) != KM_OK) {
        fprintf(stderr, "kinema %s: %s: %s\n", CMD, a->c3d, km_last_error());
        goto done;
    }
    int first, last;
    if (!frame_range(a->frames, c.frame_count, &first, &last)) {
        rc = cli_usage_error(CMD, USAGE, "--frames: A:B within 0..%d", c.frame_count - 1);
        goto done;
    }
    bool z_up;
    km_mat3 to_world = c3d_to_world(&c, a->up, &z_up);
    int n = last - first + 1;
    frames = malloc(sizeof *frames * (size_t)n);
    if (!frames) {
        fprintf(stderr, "kinema %s: out of memory\n", CMD);
        goto done;
    }
    for (int f = 0; f < n; f++)
        km_body_frame_from_c3d(&c, first + f, &set, &to_world, &frames[f]);
    km_subject_calibration_config cfg = km_subject_calibration_config_default();
    cfg.height_m = a->height;
    char name[KM_NAME_MAX];
    if (a->name) {
        snprintf(name, sizeof name, "%s", a->name);
    } else {
        const char *slash = strrchr(a->c3d, '/');
        snprintf(name, sizeof name, "%s", slash ? slash + 1 : a->c3d);
        char *dot = strrchr(name, '.');
        if (dot)
            *dot = '\0';
    }
    km_subject subject;
    km_subject_calibration_report rep;
    if (km_subject_calibrate(&set, frames, n, &cfg, name, &subject, &rep) != KM_OK ||
        km_subject_save(a->out, &subject) != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        goto done;
    }
    if (!a->quiet)
        fprintf(stderr,
                "kinema %s: %s: %d of %d markers of %s matched, %s up; %d frames used; height "
                "%.2f m; marker RMS %.2f mm (scaled template %.1f mm) -> %s\n",
                CMD, a->c3d, set.count, base.count, base.name, z_up ? "Z" : "Y",
                rep.frames_used, rep.height_m, rep.rms_after_m * 1e3, rep.rms_before_m * 1e3,
                a->out);
    rc = KINEMA_EXIT_OK;
done:
    free(frames);
    km_c3d_free(&c);
    return rc;
}

/* --------------------------------------------------------------------- solve */

typedef struct source {
    km_c3d c3d;
    bool have_c3d;
    km_mat3 to_world;
    int c3d_first, c3d_last, c3d_next;
    km_markers_reader *markers;
    km_obs_reader *obs;
    km_rig *rig;
    km_reconstructor *rec;
    km_tracker *tracker;
    km_observation_set obs_set;
    km_marker_set raw;
} source;

static void source_close(source *s)
{
    if (s->have_c3d)
        km_c3d_free(&s->c3d);
    km_markers_reader_close(s->markers);
    km_obs_reader_close(s->obs);
    km_reconstructor_destroy(s->rec);
    km_tracker_destroy(s->tracker);
    free(s->rig);
    free(s->obs_set.items);
    free(s->raw.items);
}

/* Next frame of markers; KM_ERR_END_OF_STREAM at the end. */
static km_status source_next(source *s, km_marker_set *out)
{
    if (s->have_c3d) {
        if (s->c3d_next > s->c3d_last)
            return KM_ERR_END_OF_STREAM;
        return km_c3d_frame_markers(&s->c3d, s->c3d_next++, &s->to_world, out);
    }
    if (s->markers)
        return km_markers_reader_next(s->markers, out);
    km_status st = km_obs_reader_next(s->obs, &s->obs_set);
    if (st != KM_OK)
        return st;
    st = km_reconstructor_run(s->rec, &s->obs_set, &s->raw);
    if (st != KM_OK && st != KM_ERR_CAPACITY)
        return st;
    return km_tracker_update(s->tracker, &s->raw, out);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int cmd_solve(const args *a)
{
    int inputs = (a->c3d != NULL) + (a->markers != NULL) + (a->obs != NULL || a->rig != NULL);
    if (inputs != 1 || (a->obs != NULL) != (a->rig != NULL))
        return cli_usage_error(CMD, USAGE,
                               "solve: one input: --c3d, --markers, or --rig with --obs");
    if (!a->out || a->subject_count == 0)
        return cli_usage_error(CMD, USAGE, "solve: --subject and --out are required");
    int rc = KINEMA_EXIT_FAILURE;
    source src;
    memset(&src, 0, sizeof src);
    km_skeleton_solver *solver = NULL;
    FILE *out = NULL, *labels_out = NULL;
    km_skeleton_pose *history = NULL;
    size_t history_frames = 0, history_cap = 0;
    km_marker *items = malloc(sizeof *items * 4096);
    km_marker_set set = {0, 0, 0, 4096, items};
    km_subject subjects[KM_SKELETON_MAX_PEOPLE];
    const bool bvh = ends_with(a->out, ".bvh");
    for (int p = 0; p < a->subject_count; p++)
        if (km_subject_load(a->subjects[p], &subjects[p]) != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
    km_status st;
    double frame_period_s = 1.0 / 120;
    if (a->c3d) {
        if (km_c3d_read(a->c3d, &src.c3d) != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
        src.have_c3d = true;
        bool z_up;
        src.to_world = c3d_to_world(&src.c3d, a->up, &z_up);
        if (!frame_range(a->frames, src.c3d.frame_count, &src.c3d_first, &src.c3d_last)) {
            rc = cli_usage_error(CMD, USAGE, "--frames: A:B within 0..%d",
                                 src.c3d.frame_count - 1);
            goto done;
        }
        src.c3d_next = src.c3d_first;
        if (src.c3d.rate_hz > 0)
            frame_period_s = 1.0 / src.c3d.rate_hz;
    } else if (a->markers) {
        src.markers = km_markers_reader_open(a->markers, &st);
        if (!src.markers) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
    } else {
        src.rig = malloc(sizeof *src.rig);
        km_observation *oitems = malloc(sizeof *oitems * 65536);
        km_marker *ritems = malloc(sizeof *ritems * 4096);
        src.obs_set = (km_observation_set){0, 0, 0, 65536, oitems};
        src.raw = (km_marker_set){0, 0, 0, 4096, ritems};
        if (!src.rig || !oitems || !ritems || km_rig_load(a->rig, src.rig) != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
        km_reconstruct_config rcfg = km_reconstruct_config_default();
        rcfg.max_markers = 4096;
        rcfg.max_observations = 65536;
        src.rec = km_reconstructor_create(&rcfg, src.rig, &st);
        km_tracker_config tcfg = km_tracker_config_default();
        tcfg.max_markers = 4096;
        tcfg.max_tracks = 8192;
        src.tracker = km_tracker_create(&tcfg, &st);
        src.obs = km_obs_reader_open(a->obs, &st);
        if (!src.rec || !src.tracker || !src.obs) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
    }
    km_skeleton_solver_config scfg = km_skeleton_solver_config_default();
    scfg.max_markers = 4096;
    solver = km_skeleton_solver_create(&scfg, subjects, a->subject_count, &st);
    if (!solver || !items) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        goto done;
    }
    if (!bvh) {
        out = cli_open_output(CMD, a->out);
        if (!out)
            goto done;
        km_skeleton_csv_write_header(out);
    }
    if (a->labels_out) {
        labels_out = cli_open_output(CMD, a->labels_out);
        if (!labels_out)
            goto done;
        fputs("frame,time_ns,id,x,y,z,residual_px,views,label\n", labels_out);
    }
    uint64_t frames = 0, tracked[KM_SKELETON_MAX_PEOPLE] = {0}, solve_ns = 0;
    double residual_sum = 0;
    uint64_t residual_n = 0, label_right = 0, label_total = 0;
    for (;;) {
        st = source_next(&src, &set);
        if (st == KM_ERR_END_OF_STREAM)
            break;
        if (st != KM_OK && st != KM_ERR_CAPACITY) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
        km_skeleton_pose poses[KM_SKELETON_MAX_PEOPLE];
        uint64_t t0 = km_time_now_ns();
        if (km_skeleton_solver_run(solver, &set, poses, KM_SKELETON_MAX_PEOPLE) != KM_OK) {
            fprintf(stderr, "kinema %s: frame %" PRIu64 ": %s\n", CMD, set.frame,
                    km_last_error());
            goto done;
        }
        solve_ns += km_time_now_ns() - t0;
        frames++;
        for (int p = 0; p < a->subject_count; p++) {
            if (!poses[p].tracked)
                continue;
            tracked[p]++;
            residual_sum += poses[p].residual_m;
            residual_n++;
        }
        if (out)
            km_skeleton_csv_write(out, set.frame, set.time_ns, poses, a->subject_count);
        if (bvh) {
            if (history_frames == history_cap) {
                size_t cap = history_cap ? history_cap * 2 : 1024;
                km_skeleton_pose *h =
                    realloc(history, cap * (size_t)a->subject_count * sizeof *h);
                if (!h) {
                    fprintf(stderr, "kinema %s: out of memory\n", CMD);
                    goto done;
                }
                history = h;
                history_cap = cap;
            }
            memcpy(history + history_frames * (size_t)a->subject_count, poses,
                   sizeof *poses * (size_t)a->subject_count);
            history_frames++;
        }
        /* labels: written out, and checked against a labeled C3D's own */
        int owner[4096];
        for (int k = 0; k < set.count; k++)
            owner[k] = -1;
        for (int p = 0; p < a->subject_count; p++) {
            int lab[KM_SKELETON_MAX_MARKERS];
            km_skeleton_solver_labels(solver, p, lab, KM_SKELETON_MAX_MARKERS);
            for (int l = 0; l < subjects[p].markers.count; l++) {
                if (lab[l] < 0)
                    continue;
                owner[lab[l]] = p * KM_SKELETON_MAX_MARKERS + l;
                if (src.have_c3d) {
                    const char *file_label = src.c3d.labels[items[lab[l]].id];
                    const char *colon = strrchr(file_label, ':');
                    if (colon)
                        file_label = colon + 1;
                    if (file_label[0]) {
                        label_total++;
                        label_right += !strcmp(file_label, subjects[p].markers.markers[l].label);
                    }
                }
            }
        }
        if (labels_out)
            for (int k = 0; k < set.count; k++) {
                const km_marker *m = &items[k];
                fprintf(labels_out, "%" PRIu64 ",%" PRIu64 ",%u,%.6f,%.6f,%.6f,%.4f,%d,", set.frame,
                        set.time_ns, m->id, m->pos_m.x, m->pos_m.y, m->pos_m.z, m->residual_px,
                        m->views);
                if (owner[k] >= 0) {
                    int p = owner[k] / KM_SKELETON_MAX_MARKERS;
                    fprintf(labels_out, "%s:%s", subjects[p].name,
                            subjects[p].markers.markers[owner[k] % KM_SKELETON_MAX_MARKERS].label);
                }
                fputc('\n', labels_out);
            }
    }
    if (bvh) {
        for (int p = 0; p < a->subject_count; p++) {
            char path[1024];
            if (p == 0)
                snprintf(path, sizeof path, "%s", a->out);
            else
                snprintf(path, sizeof path, "%.*s.p%d.bvh", (int)(strlen(a->out) - 4), a->out,
                         p);
            km_skeleton_pose *mine = malloc(sizeof *mine * (history_frames ? history_frames : 1));
            if (!mine)
                goto done;
            for (size_t f = 0; f < history_frames; f++)
                mine[f] = history[f * (size_t)a->subject_count + (size_t)p];
            FILE *bf = cli_open_output(CMD, path);
            km_status ws = bf ? km_skeleton_bvh_write(bf, &subjects[p], mine, (int)history_frames,
                                                      frame_period_s)
                              : KM_ERR_IO;
            free(mine);
            if (ws != KM_OK) {
                if (bf)
                    cli_close_output(CMD, bf, path);
                fprintf(stderr, "kinema %s: %s: %s\n", CMD, path, km_last_error());
                goto done;
            }
            if (!cli_close_output(CMD, bf, path))
                goto done;
        }
    }
    if (!a->quiet) {
        km_skeleton_solver_stats stats = km_skeleton_solver_get_stats(solver);
        fprintf(stderr, "kinema %s: %" PRIu64 " frames, %d people:", CMD, frames,
                a->subject_count);
        for (int p = 0; p < a->subject_count; p++)
            fprintf(stderr, " %s tracked %.1f%%", subjects[p].name,
                    frames ? 100.0 * (double)tracked[p] / (double)frames : 0.0);
        fprintf(stderr, "; mean marker residual %.2f mm; boots %" PRIu64 ", lost %" PRIu64
                        "; solve %.3f ms/frame",
                residual_n ? residual_sum / (double)residual_n * 1e3 : 0.0, stats.boots,
                stats.lost, frames ? (double)solve_ns / (double)frames * 1e-6 : 0.0);
        if (label_total)
            fprintf(stderr, "; labels agreeing with the file's: %.2f%%",
                    100.0 * (double)label_right / (double)label_total);
        fputc('\n', stderr);
    }
    rc = KINEMA_EXIT_OK;
done:
    if (out && !cli_close_output(CMD, out, a->out))
        rc = KINEMA_EXIT_FAILURE;
    if (labels_out && !cli_close_output(CMD, labels_out, a->labels_out))
        rc = KINEMA_EXIT_FAILURE;
    free(history);
    free(items);
    km_skeleton_solver_destroy(solver);
    source_close(&src);
    return rc;
}

int kinema_cmd_skeleton(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? KINEMA_EXIT_USAGE : KINEMA_EXIT_OK;
    }
    args a;
    int r = parse_args(argc, argv, 2, &a);
    if (r != 0)
        return r < 0 ? KINEMA_EXIT_OK : r;
    if (!strcmp(argv[1], "markerset"))
        return cmd_markerset(&a);
    if (!strcmp(argv[1], "calibrate"))
        return cmd_calibrate(&a);
    if (!strcmp(argv[1], "solve"))
        return cmd_solve(&a);
    return cli_usage_error(CMD, USAGE, "unknown subcommand '%s' (markerset, calibrate, solve)",
                           argv[1]);
}
