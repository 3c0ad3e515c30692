/* kinema synth-obs: 2D observations of the synthetic scene without rendering: every
 * visible marker's exact distorted projection plus Gaussian pixel noise, and the scene's
 * reflections. With the rig and the ground truth it makes a reconstruction test case on
 * files. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/capture.h"
#include "kinema/tracking.h"

static const char USAGE[] =
    "usage: kinema synth-obs --out obs.csv [--rig-out rig.yaml] [--truth-out truth.csv]\n"
    "                        [--frames N] [--cameras N] [--noise-px S] [options]\n"
    "\n"
    "Projects the markers of the built-in synthetic scene into its cameras (what an ideal\n"
    "detector would report, plus Gaussian noise of S px per axis) and writes obs.csv;\n"
    "--rig-out writes the scene's exact rig, --truth-out the ground truth in the markers.csv\n"
    "layout (id = synthetic marker id, residual_px 0, views = cameras that observed it).\n"
    "\n"
    "options:\n"
    "  --frames N            frames 0..N-1 (default 300)\n"
    "  --cameras N           cameras (default 8)\n"
    "  --noise-px S          per-axis noise sigma in pixels (default 0.1)\n"
    "  --reflection-rate R   mean spurious blobs per camera frame (default: the scene's)\n"
    "  --actors N            actors in the volume (default 1)\n"
    "  --seed S              scene and noise seed (default 1)\n";

#define CMD "synth-obs"
#define MAX_OBS_PER_CAMERA 1024

int kinema_cmd_synth_obs(int argc, char **argv)
{
    const char *out_path = NULL, *rig_out = NULL, *truth_out = NULL;
    long frames = 300, cameras = 8, seed = 1, actors = 1;
    double noise_px = 0.1, reflection_rate = -1.0;
    for (int i = 1; i < argc;) {
        const char *value;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--rig-out", &value)) {
            if (!(rig_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--truth-out", &value)) {
            if (!(truth_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--frames", &value)) {
            if (!cli_parse_long(value, 1, 100000000, &frames))
                return cli_usage_error(CMD, USAGE, "--frames: expected a count >= 1");
        } else if (cli_option(argc, argv, &i, "--cameras", &value)) {
            if (!cli_parse_long(value, 2, KM_MAX_CAMERAS, &cameras))
                return cli_usage_error(CMD, USAGE, "--cameras: expected 2..%d", KM_MAX_CAMERAS);
        } else if (cli_option(argc, argv, &i, "--actors", &value)) {
            if (!cli_parse_long(value, 1, 8, &actors))
                return cli_usage_error(CMD, USAGE, "--actors: expected 1..8");
        } else if (cli_option(argc, argv, &i, "--seed", &value)) {
            if (!cli_parse_long(value, 0, 0x7fffffffL, &seed))
                return cli_usage_error(CMD, USAGE, "--seed: expected an integer >= 0");
        } else if (cli_option(argc, argv, &i, "--noise-px", &value)) {
            if (!cli_parse_double(value, 0.0, 100.0, &noise_px))
                return cli_usage_error(CMD, USAGE, "--noise-px: expected 0..100");
        } else if (cli_option(argc, argv, &i, "--reflection-rate", &value)) {
            if (!cli_parse_double(value, 0.0, 1000.0, &reflection_rate))
                return cli_usage_error(CMD, USAGE, "--reflection-rate: expected 0..1000");
        } else {
            return cli_usage_error(CMD, USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!out_path)
        return cli_usage_error(CMD, USAGE, "--out is required");

    km_synthetic_config scfg = km_synthetic_config_default();
    scfg.camera_count = (int)cameras;
    scfg.actor_count = (int)actors;
    scfg.seed = (uint64_t)seed;
    if (reflection_rate >= 0.0)
        scfg.reflection_rate = reflection_rate;
    km_status st;
    km_synthetic_scene *scene = km_synthetic_scene_create(&scfg, &st);
    if (!scene) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    const km_rig *rig = km_synthetic_scene_rig(scene);
    int status = KINEMA_EXIT_FAILURE;
    FILE *out = NULL, *truth_f = NULL;
    const int obs_capacity = MAX_OBS_PER_CAMERA * (int)cameras;
    km_synthetic_observation *sobs = calloc(MAX_OBS_PER_CAMERA, sizeof *sobs);
    km_observation *items = calloc((size_t)obs_capacity, sizeof *items);
    km_synthetic_marker *truth = calloc(KM_SYNTHETIC_MAX_MARKERS, sizeof *truth);
    km_marker *truth_items = calloc(KM_SYNTHETIC_MAX_MARKERS, sizeof *truth_items);
    if (!sobs || !items || !truth || !truth_items) {
        fprintf(stderr, "kinema %s: out of memory\n", CMD);
        goto done;
    }
    if (rig_out && km_rig_save(rig_out, rig, NULL) != KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        goto done;
    }
    if (!(out = cli_open_output(CMD, out_path)))
        goto done;
    km_obs_csv_write_header(out);
    if (truth_out) {
        if (!(truth_f = cli_open_output(CMD, truth_out)))
            goto done;
        km_markers_csv_write_header(truth_f);
    }
    km_observation_set obs = {.capacity = obs_capacity, .items = items};
    uint64_t total = 0;
    for (uint64_t f = 0; f < (uint64_t)frames; f++) {
        obs.frame = f;
        obs.time_ns = km_synthetic_scene_frame_time(scene, f);
        obs.count = 0;
        const int nt = km_synthetic_scene_markers(scene, obs.time_ns, truth,
                                                  KM_SYNTHETIC_MAX_MARKERS);
        for (int m = 0; m < nt; m++)
            truth_items[m] = (km_marker){.id = truth[m].id, .pos_m = truth[m].pos_m};
        for (int c = 0; c < rig->camera_count; c++) {
            /* Noise differs per camera and frame but repeats for the same seed. */
            int n = km_synthetic_scene_observe(scene, c, f, noise_px, (uint64_t)seed, sobs,
                                               MAX_OBS_PER_CAMERA);
            for (int k = 0; k < n; k++) {
                items[obs.count++] = (km_observation){
                    .x = sobs[k].x, .y = sobs[k].y, .area_px = 0.0, .camera = c};
                if (sobs[k].marker_id == KM_SYNTHETIC_REFLECTION_ID)
                    continue;
                for (int m = 0; m < nt; m++) {
                    if (truth_items[m].id == sobs[k].marker_id) {
                        truth_items[m].views++;
                        break;
                    }
                }
            }
        }
        km_obs_csv_write(out, &obs);
        total += (uint64_t)obs.count;
        if (truth_f) {
            km_marker_set set = {.frame = f, .time_ns = obs.time_ns, .count = nt,
                                 .capacity = KM_SYNTHETIC_MAX_MARKERS, .items = truth_items};
            km_markers_csv_write(truth_f, &set);
        }
    }
    if (!cli_close_output(CMD, out, out_path)) {
        out = NULL;
        goto done;
    }
    out = NULL;
    if (truth_f) {
        FILE *t = truth_f;
        truth_f = NULL;
        if (!cli_close_output(CMD, t, truth_out))
            goto done;
    }
    fprintf(strcmp(out_path, "-") == 0 ? stderr : stdout,
            "synth-obs: %ld frames, %ld cameras, %.2f observations/frame, noise %.3f px\n", frames,
            cameras, (double)total / (double)frames, noise_px);
    status = KINEMA_EXIT_OK;
done:
    if (out)
        cli_close_output(CMD, out, out_path);
    if (truth_f)
        cli_close_output(CMD, truth_f, truth_out);
    free(sobs);
    free(items);
    free(truth);
    free(truth_items);
    km_synthetic_scene_destroy(scene);
    return status;
}
