/* kinema calibrate import: bring a multi-camera calibration made by another tool into
 * Kinema's rig file. Supported: anipose / aniposelib / Pose2Sim / freemocap TOML
 * (km_rig_load_anipose). A row of cmd_calibrate.c's SUBCOMMANDS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/calib.h"

#define CMD "calibrate import"

static const char IMPORT_USAGE[] =
    "usage: kinema calibrate import --anipose calibration.toml --out rig.yaml [--z-up]\n"
    "                               [--units m|cm|mm]\n"
    "\n"
    "Converts a multi-camera calibration written by anipose, aniposelib, Pose2Sim or\n"
    "freemocap (TOML: one [cam_N] table per camera with size, matrix, distortions,\n"
    "rotation = Rodrigues world->camera, translation) into a Kinema rig file (formats.md,\n"
    "readable by cv::FileStorage). The camera model is the same (OpenCV pinhole +\n"
    "Brown-Conrady); fisheye cameras are refused. Prints one line per camera (name, size,\n"
    "focal lengths, centre in the output world) on stdout.\n"
    "  --anipose F    the TOML calibration file\n"
    "  --out F        rig file to write\n"
    "  --z-up         the source world has Z up (Qualisys, Vicon, Pose2Sim from Qualisys,\n"
    "                 most lab systems): rotate it so that its +Z becomes Kinema's +Y\n"
    "                 ((x, y, z) -> (x, z, -y); Kinema's world is right-handed, Y up).\n"
    "                 Without it the source axes are kept as they are\n"
    "  --units U      length unit of the file's translations: m (default; Pose2Sim), cm or\n"
    "                 mm (anipose rigs calibrated with a board in mm); converted to metres\n"
    "\n"
    "Errors name file and line (exit 1); usage errors exit 2. Guide: docs/calibration.md,\n"
    "\"Importing a calibration\".\n";

static int fail(void)
{
    fprintf(stderr, "kinema " CMD ": %s\n", km_last_error());
    return KINEMA_EXIT_FAILURE;
}

/* The world's "up" the cameras suggest: the mean of their image-up directions (-y of the
 * camera frame) in world coordinates. Only a hint: cameras are usually upright. */
static km_vec3 mean_image_up(const km_rig *rig)
{
    km_vec3 sum = km_vec3_make(0, 0, 0);
    for (int c = 0; c < rig->camera_count; c++) {
        km_mat3 Rt = km_mat3_transpose(rig->cameras[c].R);
        sum = km_vec3_add(sum, km_mat3_apply(Rt, km_vec3_make(0, -1, 0)));
    }
    return km_vec3_normalize(sum);
}

int kinema_calibrate_import(int argc, char **argv)
{
    const char *anipose = NULL, *out = NULL;
    bool z_up = false;
    double scale = 1.0;
    const char *units = "m";
    for (int i = 1; i < argc;) {
        const char *value;
        if (cli_is_help(argv[i])) {
            fputs(IMPORT_USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--anipose", &value)) {
            if (!(anipose = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--units", &value)) {
            if (!value)
                return KINEMA_EXIT_USAGE;
            if (strcmp(value, "m") == 0)
                scale = 1.0;
            else if (strcmp(value, "cm") == 0)
                scale = 0.01;
            else if (strcmp(value, "mm") == 0)
                scale = 0.001;
            else
                return cli_usage_error(CMD, IMPORT_USAGE, "--units: expected m, cm or mm, "
                                       "got '%s'", value);
            units = value;
        } else if (strcmp(argv[i], "--z-up") == 0) {
            z_up = true;
            i++;
        } else {
            return cli_usage_error(CMD, IMPORT_USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (anipose == NULL || out == NULL)
        return cli_usage_error(CMD, IMPORT_USAGE, "--anipose and --out are required");

    km_rig *rig = malloc(sizeof *rig);
    if (rig == NULL) {
        fprintf(stderr, "kinema " CMD ": out of memory\n");
        return KINEMA_EXIT_FAILURE;
    }
    if (km_rig_load_anipose(anipose, rig) != KM_OK) {
        free(rig);
        return fail();
    }
    for (int c = 0; c < rig->camera_count; c++)
        rig->cameras[c].t = km_vec3_scale(rig->cameras[c].t, scale);
    km_vec3 up = mean_image_up(rig);
    if (z_up) {
        /* X_kinema = R X_source: source +Z -> +Y, source +Y -> -Z, X kept (det +1). */
        km_mat3 R = {{1, 0, 0, 0, 0, 1, 0, -1, 0}};
        km_rig_transform(rig, R, km_vec3_make(0, 0, 0));
    } else if (up.z > 0.7) {
        fprintf(stderr, "kinema " CMD ": note: the cameras' image 'up' points along the "
                        "source's +Z on average (%.2f): the source world is probably Z up; "
                        "use --z-up for Kinema's Y-up world\n", up.z);
    }
    double farthest = 0.0;
    for (int c = 0; c < rig->camera_count; c++)
        farthest = fmax(farthest, km_vec3_norm(km_camera_center(&rig->cameras[c])));
    if (farthest > 100.0)
        fprintf(stderr, "kinema " CMD ": note: a camera is %.0f m from the origin: are the "
                        "translations in mm or cm (--units)?\n", farthest);

    km_status st = km_rig_save(out, rig, NULL);
    if (st != KM_OK) {
        free(rig);
        return fail();
    }
    printf("imported %d cameras from %s (translations in %s%s)\n", rig->camera_count, anipose,
           units, z_up ? "; source Z up -> Kinema Y up" : "; source axes kept");
    printf("  %-3s %-16s %-11s %10s %10s   %s\n", "#", "name", "size", "fx px", "fy px",
           "centre x y z (m)");
    for (int c = 0; c < rig->camera_count; c++) {
        const km_camera *cam = &rig->cameras[c];
        km_vec3 C = km_camera_center(cam);
        char size[32];
        snprintf(size, sizeof size, "%dx%d", cam->width, cam->height);
        printf("  %-3d %-16s %-11s %10.2f %10.2f   %8.3f %8.3f %8.3f\n", c, cam->name, size,
               cam->K[0], cam->K[4], C.x, C.y, C.z);
    }
    printf("wrote %s\n", out);
    free(rig);
    return KINEMA_EXIT_OK;
}
