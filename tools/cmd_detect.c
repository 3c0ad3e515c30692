/* kinema detect: 2D blob detection into obs.csv, from image files or from frames of the
 * synthetic scene (which also writes the rig and the ground truth, for file round trips). */
#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/capture.h"
#include "kinema/cv.h"
#include "kinema/tracking.h"

static const char USAGE[] =
    "usage: kinema detect --images 'GLOB' --out obs.csv [--camera K] [options]\n"
    "       kinema detect --synthetic --out obs.csv [--frames N] [--cameras N]\n"
    "                     [--rig-out rig.yaml] [--truth-out truth.csv] [options]\n"
    "\n"
    "Detects bright blobs (subpixel intensity-weighted centroids) and writes one obs.csv row\n"
    "per blob (formats.md).\n"
    "  --images: every file the glob matches (sorted) is one frame of camera K (default 0),\n"
    "            read as 8-bit grey; time_ns = frame / rate.\n"
    "  --synthetic: renders frames 0..N-1 of every camera of the built-in synthetic scene\n"
    "            (capture/synthetic) and detects them; --rig-out writes its exact rig,\n"
    "            --truth-out its ground-truth markers (markers.csv layout: id = synthetic\n"
    "            marker id, residual_px 0, views = cameras that see the marker).\n"
    "\n"
    "options:\n"
    "  --threshold N     grey level a blob pixel must exceed (default from the detector: 64)\n"
    "  --min-area N      smallest blob in pixels (default 3)\n"
    "  --max-area N      largest blob in pixels (default 4000)\n"
    "  --rate-hz R       frame rate for time_ns of --images (default 120)\n"
    "  --frames N        synthetic frames (default 120)\n"
    "  --cameras N       synthetic cameras (default 8)\n"
    "  --seed S          synthetic scene seed (default 1)\n"
    "  --debug-png DIR   also write each camera's image of the first --debug-frames frames\n"
    "                    as DIR/frame<F>_cam<C>.png with the detected blobs drawn (green\n"
    "                    ring, red cross at the centroid), to check threshold and filters\n"
    "  --debug-frames N  how many frames get a debug picture (default 1)\n";

#define CMD "detect"
#define MAX_BLOBS 4096

typedef struct detect_args {
    const char *images, *out_path, *rig_out, *truth_out, *debug_dir;
    long debug_frames;
    bool synthetic;
    int camera;
    double rate_hz;
    long frames, cameras, seed;
    km_detect_config dcfg;
} detect_args;

/* Detect one image and append its blobs to obs as observations of `camera`. */
static int detect_into(km_detector *det, const uint8_t *image, int width, int height,
                       km_blob *blobs, int camera, km_observation_set *obs, const char *what)
{
    int count = 0;
    km_status st = km_detector_run(det, image, width, height, width, blobs, MAX_BLOBS, &count);
    if (st == KM_ERR_CAPACITY) {
        fprintf(stderr, "kinema %s: %s: more than %d blobs, extra dropped\n", CMD, what,
                MAX_BLOBS);
    } else if (st != KM_OK) {
        fprintf(stderr, "kinema %s: %s: %s\n", CMD, what, km_last_error());
        return -1;
    }
    for (int k = 0; k < count && obs->count < obs->capacity; k++)
        obs->items[obs->count++] = (km_observation){
            .x = blobs[k].x, .y = blobs[k].y, .area_px = blobs[k].area_px, .camera = camera};
    return count;
}

static int run_images(const detect_args *a, FILE *out, km_blob *blobs, km_observation_set *obs,
                      uint64_t *frames_out, uint64_t *blobs_out)
{
    glob_t g;
    int rc = glob(a->images, 0, NULL, &g);
    if (rc != 0) {
        fprintf(stderr, "kinema %s: no file matches '%s'\n", CMD, a->images);
        if (rc != GLOB_NOMATCH)
            globfree(&g);
        return KINEMA_EXIT_FAILURE;
    }
    int status = KINEMA_EXIT_OK;
    km_detector *det = NULL;
    int det_w = 0, det_h = 0;
    for (size_t k = 0; k < g.gl_pathc; k++) {
        uint8_t *pixels = NULL;
        int w, h;
        km_status st = km_cv_read_gray(g.gl_pathv[k], &pixels, &w, &h);
        if (st != KM_OK) {
            fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
            status = KINEMA_EXIT_FAILURE;
            break;
        }
        if (!det || w > det_w || h > det_h) {
            /* Buffers are sized once for the largest image seen. */
            km_detector_destroy(det);
            det_w = w > det_w ? w : det_w;
            det_h = h > det_h ? h : det_h;
            det = km_detector_create(&a->dcfg, det_w, det_h, &st);
            if (!det) {
                fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
                free(pixels);
                status = KINEMA_EXIT_FAILURE;
                break;
            }
        }
        obs->frame = k;
        obs->time_ns = (uint64_t)((double)k * 1e9 / a->rate_hz + 0.5);
        obs->count = 0;
        int n = detect_into(det, pixels, w, h, blobs, a->camera, obs, g.gl_pathv[k]);
        if (n >= 0 && a->debug_dir && k < (size_t)a->debug_frames) {
            char png[4096];
            snprintf(png, sizeof png, "%s/frame%zu_cam%d.png", a->debug_dir, k, a->camera);
            if (cli_write_detection_png(png, pixels, w, h, w, obs->items, obs->count,
                                        a->camera) < 0)
                n = -1;
            else
                fprintf(stderr, "kinema %s: wrote %s\n", CMD, png);
        }
        free(pixels);
        if (n < 0) {
            status = KINEMA_EXIT_FAILURE;
            break;
        }
        km_obs_csv_write(out, obs);
        (*frames_out)++;
        *blobs_out += (uint64_t)obs->count;
    }
    km_detector_destroy(det);
    globfree(&g);
    return status;
}

static int write_truth(FILE *f, const km_synthetic_scene *scene, uint64_t frame,
                       uint64_t time_ns, int camera_count, km_synthetic_marker *truth,
                       km_marker *items)
{
    int n = km_synthetic_scene_markers(scene, time_ns, truth, KM_SYNTHETIC_MAX_MARKERS);
    km_marker_set set = {.frame = frame, .time_ns = time_ns, .count = 0,
                         .capacity = KM_SYNTHETIC_MAX_MARKERS, .items = items};
    for (int m = 0; m < n; m++) {
        int views = 0;
        for (int c = 0; c < camera_count; c++)
            views += km_synthetic_scene_visible(scene, c, &truth[m], time_ns) ? 1 : 0;
        items[set.count++] = (km_marker){
            .id = truth[m].id, .pos_m = truth[m].pos_m, .residual_px = 0.0, .views = views};
    }
    km_markers_csv_write(f, &set);
    return n;
}

static int run_synthetic(const detect_args *a, FILE *out, km_blob *blobs,
                         km_observation_set *obs, uint64_t *frames_out, uint64_t *blobs_out)
{
    km_synthetic_config scfg = km_synthetic_config_default();
    scfg.camera_count = (int)a->cameras;
    scfg.seed = (uint64_t)a->seed;
    km_status st;
    km_synthetic_scene *scene = km_synthetic_scene_create(&scfg, &st);
    if (!scene) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    const km_rig *rig = km_synthetic_scene_rig(scene);
    int status = KINEMA_EXIT_FAILURE;
    uint8_t *image = NULL;
    km_detector *det = NULL;
    FILE *truth_f = NULL;
    km_synthetic_marker *truth = calloc(KM_SYNTHETIC_MAX_MARKERS, sizeof *truth);
    km_marker *truth_items = calloc(KM_SYNTHETIC_MAX_MARKERS, sizeof *truth_items);
    int max_w = 0, max_h = 0;
    for (int c = 0; c < rig->camera_count; c++) {
        max_w = rig->cameras[c].width > max_w ? rig->cameras[c].width : max_w;
        max_h = rig->cameras[c].height > max_h ? rig->cameras[c].height : max_h;
    }
    image = malloc((size_t)max_w * (size_t)max_h);
    if (!truth || !truth_items || !image) {
        fprintf(stderr, "kinema %s: out of memory\n", CMD);
        goto done;
    }
    det = km_detector_create(&a->dcfg, max_w, max_h, &st);
    if (!det) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        goto done;
    }
    if (a->rig_out && km_rig_save(a->rig_out, rig, "# written by kinema detect --synthetic\n") !=
                          KM_OK) {
        fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
        goto done;
    }
    if (a->truth_out) {
        if (!(truth_f = cli_open_output(CMD, a->truth_out)))
            goto done;
        km_markers_csv_write_header(truth_f);
    }
    uint64_t next_progress_ns = km_time_now_ns() + 1000000000ull;
    for (uint64_t f = 0; f < (uint64_t)a->frames; f++) {
        obs->frame = f;
        obs->time_ns = km_synthetic_scene_frame_time(scene, f);
        obs->count = 0;
        for (int c = 0; c < rig->camera_count; c++) {
            const km_camera *cam = &rig->cameras[c];
            st = km_synthetic_scene_render(scene, c, f, image, cam->width);
            if (st != KM_OK) {
                fprintf(stderr, "kinema %s: %s\n", CMD, km_last_error());
                goto done;
            }
            char what[64];
            snprintf(what, sizeof what, "frame %" PRIu64 " camera %d", f, c);
            if (detect_into(det, image, cam->width, cam->height, blobs, c, obs, what) < 0)
                goto done;
            if (a->debug_dir && f < (uint64_t)a->debug_frames) {
                char png[4096];
                snprintf(png, sizeof png, "%s/frame%" PRIu64 "_cam%d.png", a->debug_dir, f, c);
                if (cli_write_detection_png(png, image, cam->width, cam->height, cam->width,
                                            obs->items, obs->count, c) < 0)
                    goto done;
                fprintf(stderr, "kinema %s: wrote %s\n", CMD, png);
            }
        }
        km_obs_csv_write(out, obs);
        if (truth_f)
            write_truth(truth_f, scene, f, obs->time_ns, rig->camera_count, truth, truth_items);
        (*frames_out)++;
        *blobs_out += (uint64_t)obs->count;
        uint64_t now = km_time_now_ns();
        if (now >= next_progress_ns) {
            fprintf(stderr, "kinema %s: frame %" PRIu64 " of %ld\n", CMD, f + 1, a->frames);
            next_progress_ns = now + 1000000000ull;
        }
    }
    status = KINEMA_EXIT_OK;
done:
    if (truth_f && !cli_close_output(CMD, truth_f, a->truth_out))
        status = KINEMA_EXIT_FAILURE;
    km_detector_destroy(det);
    free(image);
    free(truth);
    free(truth_items);
    km_synthetic_scene_destroy(scene);
    return status;
}

int kinema_cmd_detect(int argc, char **argv)
{
    detect_args a = {.debug_frames = 1, .camera = 0, .rate_hz = 120.0, .frames = 120, .cameras = 8, .seed = 1,
                     .dcfg = km_detect_config_default()};
    for (int i = 1; i < argc;) {
        const char *value;
        long n;
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (strcmp(argv[i], "--synthetic") == 0) {
            a.synthetic = true;
            i++;
        } else if (cli_option(argc, argv, &i, "--images", &value)) {
            if (!(a.images = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(a.out_path = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--rig-out", &value)) {
            if (!(a.rig_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--truth-out", &value)) {
            if (!(a.truth_out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--camera", &value)) {
            if (!cli_parse_long(value, 0, KM_MAX_CAMERAS - 1, &n))
                return cli_usage_error(CMD, USAGE, "--camera: expected 0..%d",
                                       KM_MAX_CAMERAS - 1);
            a.camera = (int)n;
        } else if (cli_option(argc, argv, &i, "--threshold", &value)) {
            if (!cli_parse_long(value, 0, 254, &n))
                return cli_usage_error(CMD, USAGE, "--threshold: expected 0..254");
            a.dcfg.threshold = (int)n;
        } else if (cli_option(argc, argv, &i, "--min-area", &value)) {
            if (!cli_parse_long(value, 1, 1 << 24, &n))
                return cli_usage_error(CMD, USAGE, "--min-area: expected a pixel count >= 1");
            a.dcfg.min_area_px = (int)n;
        } else if (cli_option(argc, argv, &i, "--max-area", &value)) {
            if (!cli_parse_long(value, 1, 1 << 24, &n))
                return cli_usage_error(CMD, USAGE, "--max-area: expected a pixel count >= 1");
            a.dcfg.max_area_px = (int)n;
        } else if (cli_option(argc, argv, &i, "--rate-hz", &value)) {
            if (!cli_parse_double(value, 1e-3, 1e6, &a.rate_hz))
                return cli_usage_error(CMD, USAGE, "--rate-hz: expected a rate > 0");
        } else if (cli_option(argc, argv, &i, "--frames", &value)) {
            if (!cli_parse_long(value, 1, 100000000, &a.frames))
                return cli_usage_error(CMD, USAGE, "--frames: expected a count >= 1");
        } else if (cli_option(argc, argv, &i, "--cameras", &value)) {
            if (!cli_parse_long(value, 1, KM_MAX_CAMERAS, &a.cameras))
                return cli_usage_error(CMD, USAGE, "--cameras: expected 1..%d", KM_MAX_CAMERAS);
        } else if (cli_option(argc, argv, &i, "--debug-png", &value)) {
            if (!value) return KINEMA_EXIT_USAGE;
            a.debug_dir = value;
        } else if (cli_option(argc, argv, &i, "--debug-frames", &value)) {
            if (!value || !cli_parse_long(value, 0, 1000000, &a.debug_frames))
                return cli_usage_error(CMD, USAGE, "--debug-frames: expected a count >= 0");
        } else if (cli_option(argc, argv, &i, "--seed", &value)) {
            if (!cli_parse_long(value, 0, 0x7fffffffL, &a.seed))
                return cli_usage_error(CMD, USAGE, "--seed: expected an integer >= 0");
        } else {
            return cli_usage_error(CMD, USAGE, "unknown argument '%s'", argv[i]);
        }
    }
    if (!a.out_path)
        return cli_usage_error(CMD, USAGE, "--out is required");
    if (a.synthetic == (a.images != NULL))
        return cli_usage_error(CMD, USAGE, "give exactly one of --images and --synthetic");
    if (!a.synthetic && (a.rig_out || a.truth_out))
        return cli_usage_error(CMD, USAGE, "--rig-out and --truth-out need --synthetic");

    const int obs_capacity = MAX_BLOBS * KM_MAX_CAMERAS;
    km_blob *blobs = calloc(MAX_BLOBS, sizeof *blobs);
    km_observation *items = calloc((size_t)obs_capacity, sizeof *items);
    FILE *out = NULL;
    int status = KINEMA_EXIT_FAILURE;
    if (!blobs || !items) {
        fprintf(stderr, "kinema %s: out of memory\n", CMD);
        goto done;
    }
    if (!(out = cli_open_output(CMD, a.out_path)))
        goto done;
    km_obs_csv_write_header(out);
    km_observation_set obs = {.capacity = obs_capacity, .items = items};
    uint64_t frames = 0, blob_count = 0;
    const uint64_t t0 = km_time_now_ns();
    status = a.synthetic ? run_synthetic(&a, out, blobs, &obs, &frames, &blob_count)
                         : run_images(&a, out, blobs, &obs, &frames, &blob_count);
    const uint64_t t1 = km_time_now_ns();
    if (!cli_close_output(CMD, out, a.out_path))
        status = KINEMA_EXIT_FAILURE;
    out = NULL;
    if (status == KINEMA_EXIT_OK)
        fprintf(strcmp(a.out_path, "-") == 0 ? stderr : stdout,
                "detect: %" PRIu64 " frames, %.2f observations/frame, %.1f s\n", frames,
                frames ? (double)blob_count / frames : 0.0, (t1 - t0) * 1e-9);
done:
    if (out)
        cli_close_output(CMD, out, a.out_path);
    free(blobs);
    free(items);
    return status;
}
