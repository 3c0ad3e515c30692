/* kinema synth-wand: a synthetic wand wave and L-frame on the synthetic ring rig, as the
 * files a wand calibration starts from (obs.csv of the wave and of the L-frame, the
 * cameras' intrinsics) plus the true rig to compare the result with. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/calib.h"
#include "kinema/capture.h"

static const char USAGE[] =
    "usage: kinema synth-wand --out wand.csv [--ground-out ground.csv]\n"
    "                         [--intrinsics-out cams.yaml] [--truth-out truth_rig.yaml]\n"
    "                         [--cameras 8] [--frames 1500] [options]\n"
    "\n"
    "Waves a three-marker wand through the volume of the synthetic rig and writes the 2D\n"
    "blobs every camera sees (0.15 px noise, ghost blobs, dropouts, merged blobs) as obs.csv;\n"
    "--ground-out writes frames of a still L-frame at the origin, --intrinsics-out the\n"
    "cameras' intrinsics (no poses), --truth-out the exact rig.\n"
    "\n"
    "options:\n"
    "  --cameras N         cameras on the ring (default 8)\n"
    "  --frames N          wand frames (default 1500); the wave covers the volume whatever N\n"
    "  --ground-frames N   L-frame frames (default 2400)\n"
    "  --wand A,B,C        marker positions along the wand (default 0,0.15,0.5)\n"
    "  --noise-px S        per-axis noise (default 0.15)\n"
    "  --ghost-rate R      mean ghost blobs per camera frame (default 0.3)\n"
    "  --dropout-rate P    probability a marker is missed in a view (default 0.02)\n"
    "  --seed S            (default 1)\n";

#define CMD "synth-wand"

int kinema_cmd_synth_wand(int argc, char **argv)
{
    const char *out = NULL, *ground_out = NULL, *intrinsics_out = NULL, *truth_out = NULL;
    km_synthetic_wand_config cfg = km_synthetic_wand_config_default();
    for (int i = 1; i < argc;) {
        const char *value;
        long n;
        double x;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--ground-out", &value)) {
            if (!(ground_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--intrinsics-out", &value)) {
            if (!(intrinsics_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--truth-out", &value)) {
            if (!(truth_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--cameras", &value)) {
            if (!cli_parse_long(value, 2, KM_MAX_CAMERAS, &n))
                return cli_usage_error(CMD, USAGE, "--cameras: expected 2..%d", KM_MAX_CAMERAS);
            cfg.camera_count = (int)n;
        } else if (cli_option(argc, argv, &i, "--frames", &value)) {
            if (!cli_parse_long(value, 1, 10000000, &n))
                return cli_usage_error(CMD, USAGE, "--frames: expected 1..10000000");
            cfg.frame_count = (int)n;
        } else if (cli_option(argc, argv, &i, "--ground-frames", &value)) {
            if (!cli_parse_long(value, 1, 1000000, &n))
                return cli_usage_error(CMD, USAGE, "--ground-frames: expected 1..1000000");
            cfg.ground_frame_count = (int)n;
        } else if (cli_option(argc, argv, &i, "--seed", &value)) {
            if (!cli_parse_long(value, 0, 0x7fffffffL, &n))
                return cli_usage_error(CMD, USAGE, "--seed: expected an integer >= 0");
            cfg.seed = (uint64_t)n;
        } else if (cli_option(argc, argv, &i, "--wand", &value)) {
            if (!value || km_wand_parse_geometry(value, cfg.wand_marker_m) != KM_OK)
                return cli_usage_error(CMD, USAGE, "--wand: %s",
                                       value ? km_last_error() : "missing value");
        } else if (cli_option(argc, argv, &i, "--noise-px", &value)) {
            if (!cli_parse_double(value, 0.0, 10.0, &x))
                return cli_usage_error(CMD, USAGE, "--noise-px: expected 0..10");
            cfg.noise_px = x;
        } else if (cli_option(argc, argv, &i, "--ghost-rate", &value)) {
            if (!cli_parse_double(value, 0.0, 10.0, &x))
                return cli_usage_error(CMD, USAGE, "--ghost-rate: expected 0..10");
            cfg.ghost_rate = x;
        } else if (cli_option(argc, argv, &i, "--dropout-rate", &value)) {
            if (!cli_parse_double(value, 0.0, 0.99, &x))
                return cli_usage_error(CMD, USAGE, "--dropout-rate: expected 0..0.99");
            cfg.dropout_rate = x;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!out)
        return cli_usage_error(CMD, USAGE, "--out is required");
    if (!ground_out)
        cfg.ground_frame_count = 0;
    km_status st;
    km_synthetic_wand *w = km_synthetic_wand_create(&cfg, &st);
    if (w == NULL) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    st = km_synthetic_wand_write_csv(w, out, ground_out);
    if (st == KM_OK && intrinsics_out)
        st = km_wand_save_intrinsics(intrinsics_out, km_synthetic_wand_rig(w));
    if (st == KM_OK && truth_out)
        st = km_rig_save(truth_out, km_synthetic_wand_rig(w),
                         "calibration_method: \"synthetic truth\"\n");
    km_synthetic_wand_destroy(w);
    if (st != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    fprintf(stderr, "kinema %s: %d cameras, %d wand frames -> %s%s%s\n", CMD, cfg.camera_count,
            cfg.frame_count, out, ground_out ? ", L-frame -> " : "", ground_out ? ground_out : "");
    return KINEMA_EXIT_OK;
}
