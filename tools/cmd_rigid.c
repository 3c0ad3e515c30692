/* kinema rigid --rig rig.yaml --obs obs.csv --defs rigid.yaml --out rigid.csv
 *   2D observations -> reconstruct -> marker tracking -> rigid-body poses (formats.md).
 * kinema rigid define ... --out rigid.yaml
 *   a rigid body definition from a recorded frame of markers.csv or from coordinates. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/tracking.h"

#define CMD "rigid"
#define MAX_DEFINITIONS 256

static const char USAGE[] =
    "usage: kinema rigid --rig rig.yaml --obs obs.csv --defs rigid.yaml --out rigid.csv [options]\n"
    "       kinema rigid define ... (see kinema rigid define --help)\n"
    "\n"
    "Reconstructs the 3D markers of every frame of obs.csv, tracks them (persistent ids) and\n"
    "solves the pose of every rigid body of the definitions file (docs/formats.md): one row\n"
    "per body per frame, frame,time_ns,rigid_id,name,x,y,z,qx,qy,qz,qw,error_m,tracked.\n"
    "A body not found in a frame repeats its last pose with tracked=0.\n"
    "\n"
    "options:\n"
    "  --rig FILE            camera rig YAML\n"
    "  --obs FILE            2D observations (obs.csv)\n"
    "  --defs FILE           rigid body definitions (YAML)\n"
    "  --out FILE            poses (rigid.csv, \"-\" = stdout)\n"
    "  --markers-out FILE    also write the tracked markers (markers.csv with persistent ids)\n"
    "  --tolerance-mm D      inter-marker distance tolerance when identifying (default 4)\n"
    "  --max-error-mm D      reject poses with a larger mean marker error (default 3)\n"
    "  --max-missing N       markers a body may miss (default 1)\n"
    "  --gate-mm D           marker tracking gate (default 30)\n"
    "  --max-gap-frames N    marker tracks bridge gaps this long (default 10)\n"
    "  --quiet               no summary\n";

static const char DEFINE_USAGE[] =
    "usage: kinema rigid define --name NAME --out rigid.yaml [--id N] [--append]\n"
    "           (--markers markers.csv --frame N (--ids a,b,c | --near x,y,z --radius-mm R)\n"
    "            | --coords \"x,y,z;x,y,z;x,y,z\")\n"
    "\n"
    "Defines a rigid body from a constellation of 3..16 markers: from one frame of a\n"
    "markers.csv recording (markers chosen by id, or all markers within a radius of a point),\n"
    "or from coordinates in metres. Recorded markers are re-centred on their centroid (the\n"
    "body frame has the world axes at that frame); coordinates are taken as they are.\n"
    "The unique-constellation check warns when the new body could be confused with another\n"
    "one of the file.\n"
    "\n"
    "options:\n"
    "  --name NAME          body name (no commas)\n"
    "  --id N               body id (default: one more than the largest in the file, or 1)\n"
    "  --out FILE           definitions file to write\n"
    "  --append             keep the definitions already in --out and add this one\n"
    "  --markers FILE       markers.csv recording\n"
    "  --frame N            the frame of the recording to take\n"
    "  --ids LIST           marker ids of that frame, comma-separated\n"
    "  --near X,Y,Z         take the markers within --radius-mm of this point (metres)\n"
    "  --radius-mm D        default 150\n"
    "  --coords LIST        marker positions in the body frame: x,y,z;x,y,z;...\n"
    "  --marker-diameter-mm D  recorded in the file (optional)\n"
    "  --tolerance-mm D     for the confusion check (default 4)\n";

static bool parse_vec3(const char *s, km_vec3 *out)
{
    char *end;
    double v[3];
    for (int k = 0; k < 3; k++) {
        errno = 0;
        v[k] = strtod(s, &end);
        if (end == s || errno || !isfinite(v[k]))
            return false;
        s = end;
        if (k < 2) {
            if (*s != ',')
                return false;
            s++;
        }
    }
    if (*s != '\0' && *s != ';')
        return false;
    *out = km_vec3_make(v[0], v[1], v[2]);
    return true;
}

static int cmd_define(int argc, char **argv)
{
    const char *name = NULL, *out_path = NULL, *markers_path = NULL, *ids_text = NULL,
               *near_text = NULL, *coords_text = NULL;
    long id = -1, frame = -1;
    double radius_m = 0.15, diameter_m = 0.0, tolerance_m = 0.004;
    bool append = false;
    for (int i = 1; i < argc;) {
        const char *value;
        double d;
        if (cli_is_help(argv[i])) {
            fputs(DEFINE_USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (strcmp(argv[i], "--append") == 0) {
            append = true;
            i++;
        } else if (cli_option(argc, argv, &i, "--name", &value)) {
            if (!(name = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--markers", &value)) {
            if (!(markers_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--ids", &value)) {
            if (!(ids_text = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--near", &value)) {
            if (!(near_text = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--coords", &value)) {
            if (!(coords_text = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--id", &value)) {
            if (!cli_parse_long(value, 0, (long)UINT32_MAX - 1, &id))
                return cli_usage_error(CMD " define", DEFINE_USAGE, "--id: expected 0..%lu",
                                       (unsigned long)UINT32_MAX - 1);
        } else if (cli_option(argc, argv, &i, "--frame", &value)) {
            if (!cli_parse_long(value, 0, LONG_MAX, &frame))
                return cli_usage_error(CMD " define", DEFINE_USAGE, "--frame: expected >= 0");
        } else if (cli_option(argc, argv, &i, "--radius-mm", &value)) {
            if (!cli_parse_double(value, 1e-3, 1e5, &d))
                return cli_usage_error(CMD " define", DEFINE_USAGE, "--radius-mm: expected > 0");
            radius_m = d * 1e-3;
        } else if (cli_option(argc, argv, &i, "--marker-diameter-mm", &value)) {
            if (!cli_parse_double(value, 0.0, 999.0, &d))
                return cli_usage_error(CMD " define", DEFINE_USAGE,
                                       "--marker-diameter-mm: expected 0..999");
            diameter_m = d * 1e-3;
        } else if (cli_option(argc, argv, &i, "--tolerance-mm", &value)) {
            if (!cli_parse_double(value, 1e-3, 1e3, &d))
                return cli_usage_error(CMD " define", DEFINE_USAGE, "--tolerance-mm: expected > 0");
            tolerance_m = d * 1e-3;
        } else {
            return cli_usage_error(CMD " define", DEFINE_USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!name || !out_path)
        return cli_usage_error(CMD " define", DEFINE_USAGE, "--name and --out are required");
    if (!!coords_text == !!markers_path)
        return cli_usage_error(CMD " define", DEFINE_USAGE,
                               "give either --coords or --markers (with --frame)");
    if (markers_path && (frame < 0 || !!ids_text == !!near_text))
        return cli_usage_error(CMD " define", DEFINE_USAGE,
                               "--markers needs --frame and one of --ids or --near");

    static km_rigid_definition defs[MAX_DEFINITIONS];
    int count = 0;
    if (append) {
        FILE *probe = fopen(out_path, "r");
        if (probe) {
            fclose(probe);
            if (km_rigid_definitions_load(out_path, defs, MAX_DEFINITIONS - 1, &count) != KM_OK) {
                fprintf(stderr, "kinema %s define: %s\n", CMD, km_last_error());
                return KINEMA_EXIT_FAILURE;
            }
        }
    }
    km_vec3 pts[KM_RIGID_MAX_MARKERS];
    int n = 0;
    km_rigid_definition *def = &defs[count];
    if (coords_text) {
        const char *s = coords_text;
        while (*s) {
            if (n == KM_RIGID_MAX_MARKERS || !parse_vec3(s, &pts[n]))
                return cli_usage_error(CMD " define", DEFINE_USAGE,
                                       "--coords: expected up to %d x,y,z triples separated by ';'",
                                       KM_RIGID_MAX_MARKERS);
            n++;
            s = strchr(s, ';');
            if (!s)
                break;
            s++;
        }
        memset(def, 0, sizeof *def);
        if (strlen(name) >= sizeof def->name) {
            fprintf(stderr, "kinema %s define: name too long\n", CMD);
            return KINEMA_EXIT_FAILURE;
        }
        strcpy(def->name, name);
        def->marker_count = n;
        memcpy(def->markers_m, pts, (size_t)n * sizeof *pts);
    } else {
        km_vec3 near = {0, 0, 0};
        if (near_text && !parse_vec3(near_text, &near))
            return cli_usage_error(CMD " define", DEFINE_USAGE, "--near: expected x,y,z");
        km_status st;
        km_markers_reader *reader = km_markers_reader_open(markers_path, &st);
        if (!reader) {
            fprintf(stderr, "kinema %s define: %s\n", CMD, km_last_error());
            return KINEMA_EXIT_FAILURE;
        }
        static km_marker items[65536];
        km_marker_set set = {.capacity = 65536, .items = items};
        bool found = false;
        while ((st = km_markers_reader_next(reader, &set)) == KM_OK)
            if (set.frame == (uint64_t)frame) {
                found = true;
                break;
            }
        km_markers_reader_close(reader);
        if (st != KM_OK && st != KM_ERR_END_OF_STREAM) {
            fprintf(stderr, "kinema %s define: %s\n", CMD, km_last_error());
            return KINEMA_EXIT_FAILURE;
        }
        if (!found) {
            fprintf(stderr, "kinema %s define: %s has no frame %ld\n", CMD, markers_path, frame);
            return KINEMA_EXIT_FAILURE;
        }
        if (ids_text) {
            const char *s = ids_text;
            for (;;) {
                char *end;
                errno = 0;
                const unsigned long want = strtoul(s, &end, 10);
                if (end == s || errno || (*end != ',' && *end != '\0') || want > UINT32_MAX)
                    return cli_usage_error(CMD " define", DEFINE_USAGE,
                                           "--ids: expected comma-separated marker ids");
                int k = 0;
                while (k < set.count && set.items[k].id != (uint32_t)want)
                    k++;
                if (k == set.count) {
                    fprintf(stderr, "kinema %s define: frame %ld has no marker with id %lu\n",
                            CMD, frame, want);
                    return KINEMA_EXIT_FAILURE;
                }
                if (n == KM_RIGID_MAX_MARKERS) {
                    fprintf(stderr, "kinema %s define: more than %d markers\n", CMD,
                            KM_RIGID_MAX_MARKERS);
                    return KINEMA_EXIT_FAILURE;
                }
                pts[n++] = set.items[k].pos_m;
                if (*end == '\0')
                    break;
                s = end + 1;
            }
        } else {
            for (int k = 0; k < set.count; k++) {
                if (km_vec3_dist(set.items[k].pos_m, near) > radius_m)
                    continue;
                if (n == KM_RIGID_MAX_MARKERS) {
                    fprintf(stderr, "kinema %s define: more than %d markers within %.0f mm; "
                            "use a smaller --radius-mm or --ids\n", CMD, KM_RIGID_MAX_MARKERS,
                            radius_m * 1e3);
                    return KINEMA_EXIT_FAILURE;
                }
                pts[n++] = set.items[k].pos_m;
            }
        }
        if (km_rigid_definition_from_points(name, 0, pts, n, def) != KM_OK) {
            fprintf(stderr, "kinema %s define: %s\n", CMD, km_last_error());
            return KINEMA_EXIT_FAILURE;
        }
    }
    if (id < 0) {
        id = 1;
        for (int k = 0; k < count; k++)
            if ((long)defs[k].id >= id)
                id = (long)defs[k].id + 1;
    }
    def->id = (uint32_t)id;
    def->marker_diameter_m = diameter_m;
    if (km_rigid_definition_validate(def) != KM_OK) {
        fprintf(stderr, "kinema %s define: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    for (int k = 0; k < count; k++)
        if (defs[k].id == def->id || strcmp(defs[k].name, def->name) == 0) {
            fprintf(stderr, "kinema %s define: %s already has a body named '%s' or with id %u\n",
                    CMD, out_path, defs[k].name, defs[k].id);
            return KINEMA_EXIT_FAILURE;
        }
    count++;
    const int confusions = km_rigid_definitions_check(defs, count, tolerance_m, NULL, 0);
    if (km_rigid_definitions_save(out_path, defs, count) != KM_OK) {
        fprintf(stderr, "kinema %s define: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    printf("rigid define: '%s' (id %u, %d markers) written to %s (%d definitions, %d "
           "confusable pairs)\n", def->name, def->id, def->marker_count, out_path, count,
           confusions);
    return KINEMA_EXIT_OK;
}

int kinema_cmd_rigid(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "define") == 0)
        return cmd_define(argc - 1, argv + 1);
    const char *rig_path = NULL, *obs_path = NULL, *defs_path = NULL, *out_path = NULL,
               *markers_out_path = NULL;
    km_reconstruct_config rcfg = km_reconstruct_config_default();
    km_tracker_config tcfg = km_tracker_config_default();
    km_rigid_config gcfg = km_rigid_config_default();
    bool quiet = false;
    for (int i = 1; i < argc;) {
        const char *value;
        double d;
        long n;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
            i++;
        } else if (cli_option(argc, argv, &i, "--rig", &value)) {
            if (!(rig_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--obs", &value)) {
            if (!(obs_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--defs", &value)) {
            if (!(defs_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--markers-out", &value)) {
            if (!(markers_out_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--tolerance-mm", &value)) {
            if (!cli_parse_double(value, 1e-3, 999.0, &d))
                return cli_usage_error(CMD, USAGE, "--tolerance-mm: expected a number > 0");
            gcfg.tolerance_m = d * 1e-3;
        } else if (cli_option(argc, argv, &i, "--max-error-mm", &value)) {
            if (!cli_parse_double(value, 1e-3, 999.0, &d))
                return cli_usage_error(CMD, USAGE, "--max-error-mm: expected a number > 0");
            gcfg.max_error_m = d * 1e-3;
        } else if (cli_option(argc, argv, &i, "--gate-mm", &value)) {
            if (!cli_parse_double(value, 1e-3, 9999.0, &d))
                return cli_usage_error(CMD, USAGE, "--gate-mm: expected a number > 0");
            tcfg.gate_m = d * 1e-3;
        } else if (cli_option(argc, argv, &i, "--max-missing", &value)) {
            if (!cli_parse_long(value, 0, KM_RIGID_MAX_MARKERS, &n))
                return cli_usage_error(CMD, USAGE, "--max-missing: expected 0..%d",
                                       KM_RIGID_MAX_MARKERS);
            gcfg.max_missing = (int)n;
        } else if (cli_option(argc, argv, &i, "--max-gap-frames", &value)) {
            if (!cli_parse_long(value, 0, 100000, &n))
                return cli_usage_error(CMD, USAGE, "--max-gap-frames: expected 0..100000");
            tcfg.max_gap_frames = (int)n;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!rig_path || !obs_path || !defs_path || !out_path)
        return cli_usage_error(CMD, USAGE, "--rig, --obs, --defs and --out are required");

    static km_rig rig;
    static km_rigid_definition defs[MAX_DEFINITIONS];
    int def_count = 0;
    if (km_rig_load(rig_path, &rig) != KM_OK ||
        km_rigid_definitions_load(defs_path, defs, MAX_DEFINITIONS, &def_count) != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    tcfg.max_markers = rcfg.max_markers;
    tcfg.max_tracks = 2 * rcfg.max_markers;
    gcfg.max_markers = rcfg.max_markers;
    km_status st;
    km_reconstructor *rec = km_reconstructor_create(&rcfg, &rig, &st);
    km_tracker *tracker = rec ? km_tracker_create(&tcfg, &st) : NULL;
    km_rigid_tracker *rigid = tracker ? km_rigid_tracker_create(&gcfg, defs, def_count, &st) : NULL;
    km_obs_reader *reader = rigid ? km_obs_reader_open(obs_path, &st) : NULL;
    km_observation *obs_items = calloc((size_t)rcfg.max_observations, sizeof *obs_items);
    km_marker *marker_items = calloc((size_t)rcfg.max_markers, sizeof *marker_items);
    km_rigid_pose *poses = calloc((size_t)def_count, sizeof *poses);
    long *tracked = calloc((size_t)def_count, sizeof *tracked);
    double *error_sum = calloc((size_t)def_count, sizeof *error_sum);
    FILE *out = NULL, *markers_out = NULL;
    int status = KINEMA_EXIT_FAILURE;
    if (!reader) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        goto done;
    }
    if (!obs_items || !marker_items || !poses || !tracked || !error_sum) {
        fprintf(stderr, "kinema %s: out of memory\n", CMD);
        goto done;
    }
    if (!(out = cli_open_output(CMD, out_path)))
        goto done;
    if (markers_out_path && !(markers_out = cli_open_output(CMD, markers_out_path)))
        goto done;
    km_rigid_csv_write_header(out);
    if (markers_out)
        km_markers_csv_write_header(markers_out);
    km_observation_set obs = {.capacity = rcfg.max_observations, .items = obs_items};
    km_marker_set markers = {.capacity = rcfg.max_markers, .items = marker_items};
    uint64_t frames = 0, solve_ns = 0;
    for (;;) {
        st = km_obs_reader_next(reader, &obs);
        if (st == KM_ERR_END_OF_STREAM)
            break;
        if (st != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
        const uint64_t t0 = km_time_now_ns();
        st = km_reconstructor_run(rec, &obs, &markers);
        if (st == KM_OK || st == KM_ERR_CAPACITY)
            st = km_tracker_update(tracker, &markers, &markers);
        if (st == KM_OK || st == KM_ERR_CAPACITY)
            st = km_rigid_tracker_update(rigid, &markers, poses, def_count);
        solve_ns += km_time_now_ns() - t0;
        if (st != KM_OK) {
            fprintf(stderr, "kinema %s: frame %" PRIu64 ": %s\n", CMD, obs.frame,
                    km_last_error());
            goto done;
        }
        km_rigid_csv_write(out, obs.frame, obs.time_ns, defs, poses, def_count);
        if (markers_out)
            km_markers_csv_write(markers_out, &markers);
        for (int b = 0; b < def_count; b++)
            if (poses[b].tracked) {
                tracked[b]++;
                error_sum[b] += poses[b].error_m;
            }
        frames++;
    }
    bool ok = cli_close_output(CMD, out, out_path);
    out = NULL;
    if (markers_out) {
        ok = cli_close_output(CMD, markers_out, markers_out_path) && ok;
        markers_out = NULL;
    }
    if (!ok)
        goto done;
    if (!quiet) {
        FILE *summary = strcmp(out_path, "-") == 0 ? stderr : stdout;
        const km_tracker_stats ts = km_tracker_get_stats(tracker);
        fprintf(summary,
                "rigid: %" PRIu64 " frames, %.3f ms/frame (reconstruct + track + rigid), "
                "marker tracks born %" PRIu64 ", ended %" PRIu64 ", gaps bridged %" PRIu64 "\n",
                frames, frames ? solve_ns * 1e-6 / frames : 0.0, ts.births, ts.deaths, ts.bridged);
        for (int b = 0; b < def_count; b++)
            fprintf(summary, "  %-16s id %-4u tracked %6.2f%%  mean error %.3f mm\n",
                    defs[b].name, defs[b].id, frames ? 100.0 * tracked[b] / frames : 0.0,
                    tracked[b] ? 1000.0 * error_sum[b] / tracked[b] : 0.0);
    }
    status = KINEMA_EXIT_OK;
done:
    if (out)
        cli_close_output(CMD, out, out_path);
    if (markers_out)
        cli_close_output(CMD, markers_out, markers_out_path);
    free(obs_items);
    free(marker_items);
    free(poses);
    free(tracked);
    free(error_sum);
    km_obs_reader_close(reader);
    km_rigid_tracker_destroy(rigid);
    km_tracker_destroy(tracker);
    km_reconstructor_destroy(rec);
    return status;
}
