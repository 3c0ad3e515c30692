/* kinema calibrate wand / kinema calibrate check: the extrinsics of a whole rig from a wand
 * wave (+ the ground plane from an L-frame), and the check of a rig against any recording's
 * 2D observations (per-camera reprojection errors, bumped cameras). Rows of cmd_calibrate.c's
 * SUBCOMMANDS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/calib.h"
#include "kinema/tracking.h"

#define MAX_OBSERVATIONS 65536

static const char WAND_USAGE[] =
    "usage: kinema calibrate wand --intrinsics cams.yaml --obs wand.csv --out rig.yaml\n"
    "                             [--wand 0,0.15,0.5] [--ground ground.csv]\n"
    "                             [--report report.png] [--refine-intrinsics]\n"
    "\n"
    "Extrinsics of all cameras from a wand wave: the wand (three collinear markers) is found\n"
    "among the blobs of each view, the cameras are initialised from pairwise essential\n"
    "matrices and bundle-adjusted with the wand poses (scale from the wand). With --ground the\n"
    "world frame comes from an L-frame on the floor (Y up, floor Y = 0); without it the rig\n"
    "stays in the frame of its root camera. Progress on stderr; the report on stdout.\n"
    "  --intrinsics F    intrinsics of the N cameras: one file with camera_count N (poses not\n"
    "                    needed), or a comma-separated list of single-camera files\n"
    "  --obs F           obs.csv of the wand wave (formats.md)\n"
    "  --out F           calibrated rig (formats.md) with the quality figures as extra keys\n"
    "  --wand A,B,C      marker positions along the wand in metres (default 0,0.15,0.5)\n"
    "  --ground F        obs.csv of the still L-frame (corner at the origin, long arm +X with\n"
    "                    markers at 0.3 and 0.5 m, short arm +Z at 0.2 m, markers 7 mm high)\n"
    "  --report F        one-page PNG: coverage per camera, RMS per camera, wand length errors\n"
    "  --refine-intrinsics  also solve fx fy cx cy k1 k2 of every camera\n"
    "  --min-frames N    fewer frames with the wand in 2+ cameras is an error (default 30)\n"
    "\n"
    "Guide: docs/calibration.md.\n";

/* Read every frame of an obs.csv and hand its blobs to `add`. */
typedef km_status (*add_fn)(void *ctx, uint64_t frame, const km_calib_blob *blobs, int n);

static km_status read_obs(const char *path, add_fn add, void *ctx, int *frames)
{
    km_status st;
    km_obs_reader *reader = km_obs_reader_open(path, &st);
    if (reader == NULL)
        return st;
    km_observation *items = calloc(MAX_OBSERVATIONS, sizeof *items);
    km_calib_blob *blobs = calloc(MAX_OBSERVATIONS, sizeof *blobs);
    if (items == NULL || blobs == NULL) {
        free(items);
        free(blobs);
        km_obs_reader_close(reader);
        return km_error(KM_ERR_NO_MEMORY, "out of memory");
    }
    km_observation_set set = {.capacity = MAX_OBSERVATIONS, .items = items};
    *frames = 0;
    while ((st = km_obs_reader_next(reader, &set)) == KM_OK) {
        for (int i = 0; i < set.count; i++)
            blobs[i] = (km_calib_blob){set.items[i].camera, set.items[i].x, set.items[i].y};
        if ((st = add(ctx, set.frame, blobs, set.count)) != KM_OK)
            break;
        (*frames)++;
    }
    if (st == KM_ERR_END_OF_STREAM)
        st = KM_OK;
    free(items);
    free(blobs);
    km_obs_reader_close(reader);
    return st;
}

static km_status add_wand(void *ctx, uint64_t frame, const km_calib_blob *blobs, int n)
{
    return km_wand_calibration_add_frame(ctx, frame, blobs, n);
}

static km_status add_ground(void *ctx, uint64_t frame, const km_calib_blob *blobs, int n)
{
    (void)frame;
    return km_ground_add_frame(ctx, blobs, n);
}

static int fail(const char *what)
{
    fprintf(stderr, "kinema calibrate %s: %s\n", what, km_last_error());
    return KINEMA_EXIT_FAILURE;
}

int kinema_calibrate_wand(int argc, char **argv)
{
    const char *intrinsics = NULL, *obs = NULL, *out = NULL, *ground = NULL, *report = NULL;
    km_wand_config cfg = km_wand_config_default();
    for (int i = 1; i < argc;) {
        const char *value;
        long n;
        if (cli_is_help(argv[i])) {
            fputs(WAND_USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--intrinsics", &value)) {
            if (!(intrinsics = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--obs", &value)) {
            if (!(obs = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--ground", &value)) {
            if (!(ground = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--report", &value)) {
            if (!(report = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--wand", &value)) {
            if (!value || km_wand_parse_geometry(value, cfg.marker_m) != KM_OK)
                return cli_usage_error("calibrate wand", WAND_USAGE, "--wand: %s",
                                       value ? km_last_error() : "missing value");
        } else if (cli_option(argc, argv, &i, "--min-frames", &value)) {
            if (!cli_parse_long(value, 5, 100000000, &n))
                return cli_usage_error("calibrate wand", WAND_USAGE,
                                       "--min-frames: expected an integer >= 5");
            cfg.min_frames = (int)n;
        } else if (strcmp(argv[i], "--refine-intrinsics") == 0) {
            cfg.refine_intrinsics = true;
            i++;
        } else {
            return cli_usage_error("calibrate wand", WAND_USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (!intrinsics || !obs || !out)
        return cli_usage_error("calibrate wand", WAND_USAGE,
                               "--intrinsics, --obs and --out are required");
    km_rig *rig = calloc(2, sizeof *rig);
    if (rig == NULL)
        return fail("wand");
    km_rig *solved = rig + 1;
    km_status st = km_wand_load_intrinsics(intrinsics, rig);
    if (st != KM_OK) {
        free(rig);
        return fail("wand");
    }
    km_wand_calibration *wc = km_wand_calibration_create(&cfg, rig, &st);
    if (wc == NULL) {
        free(rig);
        return fail("wand");
    }
    int frames = 0;
    km_wand_result result;
    st = read_obs(obs, add_wand, wc, &frames);
    if (st == KM_OK) {
        km_log(KM_LOG_INFO, "wand", "%s: %d frames read", obs, frames);
        st = km_wand_calibration_solve(wc, solved, &result);
    }
    if (st == KM_OK && ground != NULL) {
        km_lframe lf = km_lframe_default();
        km_ground *g = km_ground_create(solved, &lf, &st);
        if (g != NULL) {
            st = read_obs(ground, add_ground, g, &frames);
            if (st == KM_OK)
                st = km_wand_calibration_set_ground(g, solved, &result);
            km_ground_destroy(g);
        }
    } else if (st == KM_OK) {
        fprintf(stderr, "kinema calibrate wand: no --ground: the rig stays in the frame of "
                        "camera %d (not Y up)\n", result.root_camera);
    }
    if (st == KM_OK)
        st = km_wand_save_rig(out, solved, &result);
    if (st == KM_OK)
        st = km_wand_report_text(&result, solved, stdout);
    if (st == KM_OK && report != NULL)
        st = km_wand_report_png(&result, solved, report);
    int rc = st == KM_OK ? KINEMA_EXIT_OK : fail("wand");
    if (st == KM_OK)
        printf("wrote %s%s%s\n", out, report ? " and " : "", report ? report : "");
    km_wand_calibration_destroy(wc);
    free(rig);
    return rc;
}

static const char CHECK_USAGE[] =
    "usage: kinema calibrate check --rig rig.yaml --obs any.csv [--match-px 5]\n"
    "                              [--bump-px 0.5] [--bump-factor 3]\n"
    "\n"
    "Reconstructs the recording's markers with the rig (as `kinema reconstruct`), projects\n"
    "them into every camera and matches the nearest blob within --match-px: per-camera\n"
    "reprojection RMS and median. A camera whose median exceeds max(bump-px, bump-factor x\n"
    "the other cameras' median), or that matches fewer than half as many points as the\n"
    "others, is flagged as moved (\"bumped\"). Exit status 0 when all\n"
    "cameras are fine, 1 when one is flagged or on error.\n";

typedef struct check_ctx {
    km_reconstructor *rec;
    km_rig_check *check;
    km_observation *items;
    km_marker_set markers;
    km_vec3 *points;
} check_ctx;

static km_status add_check(void *p, uint64_t frame, const km_calib_blob *blobs, int n)
{
    check_ctx *ctx = p;
    km_observation_set set = {.frame = frame, .count = n, .capacity = n, .items = ctx->items};
    for (int i = 0; i < n; i++)
        ctx->items[i] = (km_observation){blobs[i].x_px, blobs[i].y_px, 0.0, blobs[i].camera};
    km_status st = km_reconstructor_run(ctx->rec, &set, &ctx->markers);
    if (st != KM_OK && st != KM_ERR_CAPACITY)
        return st;
    for (int k = 0; k < ctx->markers.count; k++)
        ctx->points[k] = ctx->markers.items[k].pos_m;
    return km_rig_check_add_frame(ctx->check, ctx->points, ctx->markers.count, blobs, n);
}

int kinema_calibrate_check(int argc, char **argv)
{
    const char *rig_path = NULL, *obs = NULL;
    double match_px = 5.0, bump_px = 0.5, bump_factor = 3.0;
    for (int i = 1; i < argc;) {
        const char *value;
        if (cli_is_help(argv[i])) {
            fputs(CHECK_USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--rig", &value)) {
            if (!(rig_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--obs", &value)) {
            if (!(obs = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--match-px", &value)) {
            if (!cli_parse_double(value, 0.01, 1000.0, &match_px))
                return cli_usage_error("calibrate check", CHECK_USAGE, "--match-px: expected "
                                       "0.01..1000");
        } else if (cli_option(argc, argv, &i, "--bump-px", &value)) {
            if (!cli_parse_double(value, 0.0, 1000.0, &bump_px))
                return cli_usage_error("calibrate check", CHECK_USAGE, "--bump-px: expected "
                                       "0..1000");
        } else if (cli_option(argc, argv, &i, "--bump-factor", &value)) {
            if (!cli_parse_double(value, 1.0, 1000.0, &bump_factor))
                return cli_usage_error("calibrate check", CHECK_USAGE, "--bump-factor: expected "
                                       "1..1000");
        } else {
            return cli_usage_error("calibrate check", CHECK_USAGE, "unknown option '%s'",
                                   argv[i]);
        }
    }
    if (!rig_path || !obs)
        return cli_usage_error("calibrate check", CHECK_USAGE, "--rig and --obs are required");
    km_rig *rig = calloc(1, sizeof *rig);
    if (rig == NULL || km_rig_load(rig_path, rig) != KM_OK) {
        free(rig);
        return fail("check");
    }
    km_reconstruct_config rcfg = km_reconstruct_config_default();
    rcfg.max_observations = MAX_OBSERVATIONS;
    km_status st = KM_OK;
    check_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.rec = km_reconstructor_create(&rcfg, rig, &st);
    ctx.check = km_rig_check_create(rig, match_px, &st);
    ctx.items = calloc(MAX_OBSERVATIONS, sizeof *ctx.items);
    ctx.markers.items = calloc((size_t)rcfg.max_markers, sizeof *ctx.markers.items);
    ctx.markers.capacity = rcfg.max_markers;
    ctx.points = calloc((size_t)rcfg.max_markers, sizeof *ctx.points);
    int rc = KINEMA_EXIT_FAILURE;
    if (ctx.rec && ctx.check && ctx.items && ctx.markers.items && ctx.points) {
        int frames = 0;
        km_rig_check_result result;
        st = read_obs(obs, add_check, &ctx, &frames);
        if (st == KM_OK)
            st = km_rig_check_result_get(ctx.check, bump_px, bump_factor, &result);
        if (st == KM_OK)
            st = km_rig_check_report_text(&result, rig, stdout);
        if (st == KM_OK)
            rc = result.bumped_count > 0 ? KINEMA_EXIT_FAILURE : KINEMA_EXIT_OK;
        else
            fail("check");
    } else {
        fail("check");
    }
    free(ctx.points);
    free(ctx.markers.items);
    free(ctx.items);
    km_rig_check_destroy(ctx.check);
    km_reconstructor_destroy(ctx.rec);
    free(rig);
    return rc;
}
