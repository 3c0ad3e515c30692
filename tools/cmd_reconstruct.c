/* kinema reconstruct --rig rig.yaml --obs obs.csv --out markers.csv
 * 2D observations of a calibrated rig -> 3D markers, frame by frame (formats.md). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/tracking.h"

static const char USAGE[] =
    "usage: kinema reconstruct --rig rig.yaml --obs obs.csv --out markers.csv [options]\n"
    "\n"
    "Reads 2D observations (obs.csv) of a calibrated camera rig and writes the 3D markers\n"
    "of every frame (markers.csv, formats.md). Progress goes to stderr about once a second.\n"
    "\n"
    "options:\n"
    "  --rig FILE              camera rig YAML (formats.md)\n"
    "  --obs FILE              2D observations, frame,time_ns,camera,x,y,area\n"
    "  --out FILE              3D markers (\"-\" = stdout)\n"
    "  --max-epipolar-px D     correspondence gate (default 2.0)\n"
    "  --max-residual-px D     reject points with a larger mean reprojection error (2.0)\n"
    "  --min-views N           cameras a marker needs (default 2)\n"
    "  --max-markers N         per frame (default 512)\n"
    "  --max-observations N    per frame, all cameras (default 8192)\n"
    "  --prior-previous        two-view markers only near a marker of the previous frame\n"
    "  --quiet                 no progress and no summary\n";

#define CMD "reconstruct"

int kinema_cmd_reconstruct(int argc, char **argv)
{
    const char *rig_path = NULL, *obs_path = NULL, *out_path = NULL;
    km_reconstruct_config cfg = km_reconstruct_config_default();
    bool quiet = false, prior_previous = false;
    for (int i = 1; i < argc;) {
        const char *value;
        long n;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
            i++;
        } else if (strcmp(argv[i], "--prior-previous") == 0) {
            prior_previous = true;
            i++;
        } else if (cli_option(argc, argv, &i, "--rig", &value)) {
            if (!(rig_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--obs", &value)) {
            if (!(obs_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--max-epipolar-px", &value)) {
            if (!cli_parse_double(value, 1e-6, 1e4, &cfg.max_epipolar_px))
                return cli_usage_error(CMD, USAGE, "--max-epipolar-px: expected a number > 0");
        } else if (cli_option(argc, argv, &i, "--max-residual-px", &value)) {
            if (!cli_parse_double(value, 1e-6, 1e4, &cfg.max_residual_px))
                return cli_usage_error(CMD, USAGE, "--max-residual-px: expected a number > 0");
        } else if (cli_option(argc, argv, &i, "--min-views", &value)) {
            if (!cli_parse_long(value, 2, KM_MAX_CAMERAS, &n))
                return cli_usage_error(CMD, USAGE, "--min-views: expected 2..%d",
                                       KM_MAX_CAMERAS);
            cfg.min_views = (int)n;
        } else if (cli_option(argc, argv, &i, "--max-markers", &value)) {
            if (!cli_parse_long(value, 1, 1 << 20, &n))
                return cli_usage_error(CMD, USAGE, "--max-markers: expected 1..1048576");
            cfg.max_markers = (int)n;
        } else if (cli_option(argc, argv, &i, "--max-observations", &value)) {
            if (!cli_parse_long(value, 1, 1 << 22, &n))
                return cli_usage_error(CMD, USAGE, "--max-observations: expected 1..4194304");
            cfg.max_observations = (int)n;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!rig_path || !obs_path || !out_path)
        return cli_usage_error(CMD, USAGE, "--rig, --obs and --out are required");

    static km_rig rig; /* large (64 cameras): not on the stack */
    km_status st = km_rig_load(rig_path, &rig);
    if (st != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    km_reconstructor *rec = km_reconstructor_create(&cfg, &rig, &st);
    if (!rec) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    km_obs_reader *reader = km_obs_reader_open(obs_path, &st);
    if (!reader) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        km_reconstructor_destroy(rec);
        return KINEMA_EXIT_FAILURE;
    }
    km_observation *obs_items = calloc((size_t)cfg.max_observations, sizeof *obs_items);
    km_marker *marker_items = calloc((size_t)cfg.max_markers, sizeof *marker_items);
    FILE *out = NULL;
    int status = KINEMA_EXIT_FAILURE;
    if (!obs_items || !marker_items) {
        fprintf(stderr, "kinema %s: out of memory\n", CMD);
        goto done;
    }
    if (!(out = cli_open_output(CMD, out_path)))
        goto done;
    km_markers_csv_write_header(out);

    km_observation_set obs = {.capacity = cfg.max_observations, .items = obs_items};
    km_marker_set markers = {.capacity = cfg.max_markers, .items = marker_items};
    uint64_t frames = 0, marker_total = 0, observation_total = 0, views_total = 0;
    uint64_t overflow_frames = 0;
    double residual_sum = 0.0;
    uint64_t solve_ns = 0;
    const uint64_t start_ns = km_time_now_ns();
    uint64_t next_progress_ns = start_ns + 1000000000ull;
    for (;;) {
        st = km_obs_reader_next(reader, &obs);
        if (st == KM_ERR_END_OF_STREAM)
            break;
        if (st != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
        const uint64_t t0 = km_time_now_ns();
        /* The previous frame's markers (still in `markers`) predict this frame's. */
        if (prior_previous && frames > 0)
            (void)km_reconstructor_set_prior(rec, &markers); /* holds <= max_markers */
        st = km_reconstructor_run(rec, &obs, &markers);
        const uint64_t t1 = km_time_now_ns();
        solve_ns += t1 - t0;
        if (st == KM_ERR_CAPACITY) {
            /* The markers kept are valid: write them and say so at the end. */
            overflow_frames++;
        } else if (st != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            goto done;
        }
        km_markers_csv_write(out, &markers);
        frames++;
        observation_total += (uint64_t)obs.count;
        marker_total += (uint64_t)markers.count;
        for (int k = 0; k < markers.count; k++) {
            residual_sum += markers.items[k].residual_px;
            views_total += (uint64_t)markers.items[k].views;
        }
        if (!quiet && t1 >= next_progress_ns) {
            fprintf(stderr, "kinema %s: frame %" PRIu64 ", %" PRIu64 " frames, %.0f frames/s\n",
                    CMD, obs.frame, frames, frames / ((t1 - start_ns) * 1e-9));
            next_progress_ns = t1 + 1000000000ull;
        }
    }
    if (!cli_close_output(CMD, out, out_path)) {
        out = NULL;
        goto done;
    }
    out = NULL;
    if (!quiet) {
        FILE *summary = strcmp(out_path, "-") == 0 ? stderr : stdout;
        fprintf(summary,
                "reconstruct: %" PRIu64 " frames, %.2f observations/frame, %.2f markers/frame, "
                "%.2f views/marker, mean residual %.4f px, %.3f ms/frame\n",
                frames, frames ? (double)observation_total / frames : 0.0,
                frames ? (double)marker_total / frames : 0.0,
                marker_total ? (double)views_total / marker_total : 0.0,
                marker_total ? residual_sum / marker_total : 0.0,
                frames ? solve_ns * 1e-6 / frames : 0.0);
    }
    if (overflow_frames)
        fprintf(stderr,
                "kinema %s: warning: %" PRIu64 " frames had more than %d markers (extra dropped;"
                " raise --max-markers)\n",
                CMD, overflow_frames, cfg.max_markers);
    status = KINEMA_EXIT_OK;
done:
    if (out)
        cli_close_output(CMD, out, out_path);
    free(obs_items);
    free(marker_items);
    km_obs_reader_close(reader);
    km_reconstructor_destroy(rec);
    return status;
}
