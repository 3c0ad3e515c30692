/* kinema calibrate: camera calibration commands. Each subcommand is one row of SUBCOMMANDS;
 * `intrinsics` (one camera from board images) is here, others (wand, check) add their row
 * and function. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kinema/calib.h"

#define CMD "calibrate"

static const char USAGE[] =
    "usage: kinema calibrate intrinsics --images 'GLOB' --board SPEC --out cam.yaml\n"
    "                                   [--report report.png] [options]\n"
    "\n"
    "Intrinsics of one camera (pinhole + Brown-Conrady k1 k2 p1 p2 k3) from images of a\n"
    "planar board. Writes the single-camera rig file of formats.md with\n"
    "rms_reprojection_error_px. Progress on stderr, one line per image; summary on stdout.\n"
    "  --images GLOB    image files (quote the glob); read as 8-bit grey\n"
    "  --board SPEC     chessboard:COLSxROWS:SQUARE_M  (INNER corners, e.g. chessboard:9x6:0.025)\n"
    "                   charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT]  (squares, e.g.\n"
    "                   charuco:5x7:0.04:0.02:DICT_6X6_250)\n"
    "  --out FILE       calibration file (YAML, readable by cv::FileStorage)\n"
    "  --report FILE    one-page PNG: coverage map, per-view errors, the numbers\n"
    "\n"
    "options:\n"
    "  --fix-aspect-ratio      fx = fy\n"
    "  --zero-tangent-dist     p1 = p2 = 0\n"
    "  --fix-principal-point   cx, cy at the image centre\n"
    "  --fix-k3                k3 = 0 (narrow lenses)\n"
    "  --sb                    chessboard corners by findChessboardCornersSB instead of\n"
    "                          findChessboardCorners + cornerSubPix\n"
    "  --sample-window         cornerSubPix with the fixed 11 px half window of OpenCV's\n"
    "                          sample (default: adapted to each view's corner spacing)\n"
    "  --outlier-px X          absolute outlier limit in px (default 1.0); a view is a\n"
    "                          candidate when its error > max(X, 2 x median, median + 5\n"
    "                          robust sigma), dropped when that moves fx fy cx or cy by\n"
    "                          more than --outlier-shift S standard deviations (default 1)\n"
    "  --outlier-shift S       see --outlier-px (0: drop every candidate)\n"
    "  --no-outliers           keep every view (no outlier rejection)\n"
    "  --blur-ratio R          blurry below R x median sharpness (default 0.35; 0 = off)\n"
    "  --duplicate-px D        duplicate when corners move less than D px (default 3; 0 = off)\n"
    "  --min-views N           fewer usable views is an error (default 3)\n"
    "\n"
    "Guide: docs/calibration.md.\n";

static int calibrate_intrinsics(int argc, char **argv)
{
    const char *images = NULL, *board = NULL, *out = NULL, *report = NULL;
    km_intrinsics_config cfg = km_intrinsics_config_default();
    int i = 1;
    while (i < argc) {
        const char *v;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--images", &v)) {
            images = v;
        } else if (cli_option(argc, argv, &i, "--board", &v)) {
            board = v;
        } else if (cli_option(argc, argv, &i, "--out", &v)) {
            out = v;
        } else if (cli_option(argc, argv, &i, "--report", &v)) {
            report = v;
        } else if (cli_option(argc, argv, &i, "--outlier-px", &v)) {
            if (!cli_parse_double(v, 1e-3, 1e3, &cfg.outlier_threshold_px))
                return cli_usage_error(CMD, USAGE, "--outlier-px: expected a number of pixels");
        } else if (cli_option(argc, argv, &i, "--outlier-shift", &v)) {
            if (!cli_parse_double(v, 0.0, 1e6, &cfg.outlier_min_shift_sigma))
                return cli_usage_error(CMD, USAGE,
                                       "--outlier-shift: expected a number of standard deviations");
        } else if (cli_option(argc, argv, &i, "--blur-ratio", &v)) {
            if (!cli_parse_double(v, 0.0, 0.99, &cfg.blur_ratio))
                return cli_usage_error(CMD, USAGE, "--blur-ratio: expected a number in [0, 0.99]");
        } else if (cli_option(argc, argv, &i, "--duplicate-px", &v)) {
            if (!cli_parse_double(v, 0.0, 1e3, &cfg.duplicate_px))
                return cli_usage_error(CMD, USAGE, "--duplicate-px: expected a number of pixels");
        } else if (cli_option(argc, argv, &i, "--min-views", &v)) {
            long n;
            if (!cli_parse_long(v, 3, 100000, &n))
                return cli_usage_error(CMD, USAGE, "--min-views: expected an integer >= 3");
            cfg.min_views = (int)n;
        } else if (strcmp(argv[i], "--fix-aspect-ratio") == 0) {
            cfg.flags |= KM_CALIB_FIX_ASPECT_RATIO;
            i++;
        } else if (strcmp(argv[i], "--zero-tangent-dist") == 0) {
            cfg.flags |= KM_CALIB_ZERO_TANGENT_DIST;
            i++;
        } else if (strcmp(argv[i], "--fix-principal-point") == 0) {
            cfg.flags |= KM_CALIB_FIX_PRINCIPAL_POINT;
            i++;
        } else if (strcmp(argv[i], "--fix-k3") == 0) {
            cfg.flags |= KM_CALIB_FIX_K3;
            i++;
        } else if (strcmp(argv[i], "--sb") == 0) {
            cfg.chessboard_sb = true;
            i++;
        } else if (strcmp(argv[i], "--sample-window") == 0) {
            cfg.sample_corner_window = true;
            i++;
        } else if (strcmp(argv[i], "--no-outliers") == 0) {
            cfg.outlier_median_factor = 0.0;
            i++;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (images == NULL || board == NULL || out == NULL)
        return cli_usage_error(CMD, USAGE, "--images, --board and --out are required");
    if (km_board_parse(board, &cfg.board) != KM_OK)
        return cli_usage_error(CMD, USAGE, "--board: %s", km_last_error());

    km_status st;
    km_intrinsics *ki = km_intrinsics_create(&cfg, &st);
    if (ki == NULL) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    km_intrinsics_result res;
    st = km_intrinsics_add_glob(ki, images);
    if (st == KM_OK)
        st = km_intrinsics_solve(ki, &res);
    if (st == KM_OK)
        st = km_intrinsics_save(&res, out);
    if (st == KM_OK && report != NULL)
        st = km_intrinsics_write_report(&res, report);
    if (st != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        km_intrinsics_destroy(ki);
        return KINEMA_EXIT_FAILURE;
    }
    const double *K = res.camera.K, *d = res.camera.dist;
    printf("images %d, with board %d, used %d, coverage %.0f%%\n", res.image_count,
           res.detected_count, res.used_count, res.coverage_percent);
    printf("rms_reprojection_error_px %.4f\n", res.rms_px);
    printf("fx %.4f fy %.4f cx %.4f cy %.4f (one-sigma %.2f %.2f %.2f %.2f)\n", K[0], K[4], K[2],
           K[5], res.std_dev[0], res.std_dev[1], res.std_dev[2], res.std_dev[3]);
    printf("k1 %.6f k2 %.6f p1 %.6f p2 %.6f k3 %.6f\n", d[0], d[1], d[2], d[3], d[4]);
    for (int k = 0; k < res.view_count; k++) {
        const km_intrinsics_view *v = &res.views[k];
        if (v->status == KM_VIEW_OUTLIER)
            printf("rejected [%d] %s: outlier, %.3f px > limit %.3f px, dropping it moved the "
                   "intrinsics by %.1f sigma\n", k, v->name, v->error_px, res.outlier_limit_px,
                   v->drop_shift_sigma);
        else if (v->status == KM_VIEW_USED && v->drop_shift_sigma > 0.0)
            printf("kept [%d] %s: %.3f px > limit %.3f px, but dropping it moved the intrinsics "
                   "by only %.2f sigma\n", k, v->name, v->error_px, res.outlier_limit_px,
                   v->drop_shift_sigma);
        else if (v->status != KM_VIEW_USED)
            printf("rejected [%d] %s: %s\n", k, v->name, km_view_status_name(v->status));
    }
    printf("wrote %s%s%s\n", out, report ? " and " : "", report ? report : "");
    km_intrinsics_destroy(ki);
    return KINEMA_EXIT_OK;
}

typedef struct calibrate_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} calibrate_subcommand;

static const calibrate_subcommand SUBCOMMANDS[] = {
    {"intrinsics", calibrate_intrinsics, "one camera from chessboard/ChArUco images -> cam.yaml"},
    {"wand", kinema_calibrate_wand, "all cameras' poses from a wand wave (+ L-frame) -> rig.yaml"},
    {"check", kinema_calibrate_check, "reprojection errors of a recording against a rig"},
    {"import", kinema_calibrate_import, "a rig from another tool (anipose / Pose2Sim TOML) -> rig.yaml"},
};
#define SUBCOMMAND_COUNT (sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0])

static void calibrate_usage(FILE *f)
{
    fprintf(f, "usage: kinema calibrate <what> [options]   (kinema calibrate <what> --help)\n\n");
    for (size_t k = 0; k < SUBCOMMAND_COUNT; k++)
        fprintf(f, "  %-12s %s\n", SUBCOMMANDS[k].name, SUBCOMMANDS[k].summary);
}

int kinema_cmd_calibrate(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        calibrate_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? KINEMA_EXIT_USAGE : KINEMA_EXIT_OK;
    }
    for (size_t k = 0; k < SUBCOMMAND_COUNT; k++)
        if (strcmp(argv[1], SUBCOMMANDS[k].name) == 0)
            return SUBCOMMANDS[k].run(argc - 1, argv + 1);
    fprintf(stderr, "kinema calibrate: unknown '%s'\n\n", argv[1]);
    calibrate_usage(stderr);
    return KINEMA_EXIT_USAGE;
}
