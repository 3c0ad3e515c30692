/* Tests of calib/rig_anipose.c (import of anipose / Pose2Sim TOML calibrations).
 *
 * Real data (KINEMA_DATA, README section 5): the five real rig files parse with the right
 * cameras and numbers (rotations checked against cv::Rodrigues); on the Pose2Sim demo the
 * imported rig is validated end to end against independent data: Pose2Sim's 3D result
 * (pose-3d/Balancing_for_IK.trc) projected with our rig lands on the OpenPose 2D keypoints
 * of each camera, and km_triangulate on the OpenPose keypoints with our rig reproduces the
 * TRC. Both only hold if every convention (Rodrigues direction, world->camera, K layout,
 * distortion order, units) is read right. Plus the --z-up world change, malformed inputs,
 * and the save -> km_rig_load round trip that `kinema calibrate import` relies on. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kinema/calib.h"
#include "kinema/tracking.h"

static const char *data_dir(void)
{
    const char *d = getenv("KINEMA_DATA");
    if (d == NULL || d[0] == '\0')
        d = getenv("KINEMA_DATA_DEFAULT");
    return d;
}

/* "<data>/multicam/<rel>" when that file is readable. */
static bool data_path(const char *rel, char *out, size_t size)
{
    const char *d = data_dir();
    if (d == NULL)
        return false;
    snprintf(out, size, "%s/multicam/%s", d, rel);
    return access(out, R_OK) == 0;
}

#define SKIP_WITHOUT(rel, path)                                                              \
    do {                                                                                     \
        if (!data_path(rel, path, sizeof path)) {                                            \
            print_message("skipped: %s not found (set KINEMA_DATA to the shared data set, "  \
                          "README section 5)\n", rel);                                       \
            skip();                                                                          \
        }                                                                                    \
    } while (0)

static void temp_path(char *out, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/kinema_test_rig_anipose_%ld_%s", dir != NULL ? dir : "/tmp",
             (long)getpid(), tag);
}

/* ------------------------------------------------------------ a. real files */

static void test_real_files(void **state)
{
    (void)state;
    static const struct {
        const char *rel;
        int cameras;
        const char *first_name;
        int width, height;
    } files[] = {
        {"pose2sim_demo/calibration/Calib_qualisys.toml", 4, "cam_01", 1088, 1920},
        {"aniposelib_rigs/12cam-allen-mouse/calibration.toml", 12, "cam088", 1440, 1080},
        {"aniposelib_rigs/7cam-allen-mouse/calibration.toml", 7, "cam088", 1440, 1080},
        {"aniposelib_rigs/calib_motobs_7cam.toml", 7, "cam088", 1440, 1080},
        {"aniposelib_rigs/mouse-outdoor/calibration_right_4_10_2026_adjusted.toml", 12, "10",
         640, 512},
    };
    char path[1024];
    SKIP_WITHOUT(files[0].rel, path);
    km_rig *rig = malloc(sizeof *rig);
    assert_non_null(rig);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        assert_true(data_path(files[f].rel, path, sizeof path));
        km_status st = km_rig_load_anipose(path, rig);
        if (st != KM_OK)
            print_message("%s: %s\n", files[f].rel, km_last_error());
        assert_int_equal(st, KM_OK);
        assert_int_equal(rig->camera_count, files[f].cameras);
        assert_string_equal(rig->cameras[0].name, files[f].first_name);
        for (int c = 0; c < rig->camera_count; c++) {
            const km_camera *cam = &rig->cameras[c];
            assert_true(cam->has_pose);
            assert_int_equal(cam->width, files[f].width);
            assert_int_equal(cam->height, files[f].height);
            assert_true(cam->K[0] > 0.0 && cam->K[4] > 0.0 && cam->K[8] == 1.0);
            km_mat3 RRt = km_mat3_mul(cam->R, km_mat3_transpose(cam->R));
            for (int i = 0; i < 9; i++)
                assert_true(fabs(RRt.m[i] - (i % 4 == 0 ? 1.0 : 0.0)) < 1e-12);
        }
        print_message("%s: %d cameras, first \"%s\" %dx%d fx %.1f\n", files[f].rel,
                      rig->camera_count, rig->cameras[0].name, rig->cameras[0].width,
                      rig->cameras[0].height, rig->cameras[0].K[0]);
    }

    /* Exact values of the Pose2Sim file, camera 1 (4 distortion values: k3 = 0). */
    assert_true(data_path(files[0].rel, path, sizeof path));
    assert_int_equal(km_rig_load_anipose(path, rig), KM_OK);
    assert_string_equal(rig->name, "Calib_qualisys");
    const km_camera *c0 = &rig->cameras[0];
    assert_true(c0->K[0] == 1681.244873046875);
    assert_true(c0->K[2] == 532.97369384375);
    assert_true(c0->K[4] == 1681.075439453125);
    assert_true(c0->K[5] == 948.137390140625);
    assert_true(c0->dist[0] == -0.000721609375 && c0->dist[2] == 9.5e-06 && c0->dist[4] == 0.0);
    assert_true(c0->t.z == 2.8907130499999996);
    assert_string_equal(rig->cameras[3].name, "cam_04");
    /* cv::Rodrigues([1.68827548, 1.04832205, -0.41955852]) (OpenCV 4.6). */
    static const double R0[9] = {0.55363804773362613, 0.80467198673835105, 0.21444790943316269,
                                 0.43453007438387503, -0.059464893499755811,
                                 -0.8986921279821064, -0.7104002579937897, 0.59073422128705022,
                                 -0.38257620579792906};
    for (int i = 0; i < 9; i++)
        assert_true(fabs(c0->R.m[i] - R0[i]) < 1e-14);
    /* Its centre -R^T t (cv::Mat arithmetic): 1.9 m above the Qualisys floor (Z up). */
    km_vec3 C = km_camera_center(c0);
    assert_true(fabs(C.x - 1.4602323709212091) < 1e-12);
    assert_true(fabs(C.y - -1.9091590482454608) < 1e-12);
    assert_true(fabs(C.z - 1.8965058524092058) < 1e-12);

    /* 12-camera anipose rig (trailing commas, integer sizes, 5 distortion values). */
    assert_true(data_path(files[1].rel, path, sizeof path));
    assert_int_equal(km_rig_load_anipose(path, rig), KM_OK);
    const km_camera *c1 = &rig->cameras[1];
    assert_string_equal(c1->name, "cam091");
    assert_true(c1->K[0] == 1826.511974861076 && c1->K[2] == 719.5 && c1->K[5] == 539.5);
    assert_true(c1->dist[0] == -0.1986544107079966);
    assert_true(c1->t.z == 1450.551478333015); /* millimetres: copied as written */
    static const double R1[9] = {-0.9821812249826174, 0.11887427568296149,
                                 -0.14556423967615315, 0.1537213321275458,
                                 0.95374211977947465, -0.25835193246323263,
                                 0.10811934766996165, -0.27612474633651585,
                                 -0.95502111553620472};
    for (int i = 0; i < 9; i++)
        assert_true(fabs(c1->R.m[i] - R1[i]) < 1e-14);

    /* Outdoor rig: k1 k2 k3 with p1 = p2 = 0. */
    assert_true(data_path(files[4].rel, path, sizeof path));
    assert_int_equal(km_rig_load_anipose(path, rig), KM_OK);
    assert_true(rig->cameras[0].dist[0] == -0.3437 && rig->cameras[0].dist[1] == 0.1788 &&
                rig->cameras[0].dist[4] == -0.0527);
    assert_true(rig->cameras[0].K[4] == 525.9586);
    free(rig);
}

/* ------------------------------------------- b. Pose2Sim demo: 2D and 3D checks */

#define TRC_MARKERS 21
#define TRC_MAX_FRAMES 128
#define BODY25B_POINTS 25
#define MAX_PEOPLE 8
#define DEMO_CAMERAS 4
#define MIN_CONFIDENCE 0.3

/* The TRC's markers and their BODY_25B keypoint index (Pose2Sim's skeletons.py, BODY_25B). */
static const struct {
    const char *name;
    int body25b;
} MARKER_MAP[TRC_MARKERS] = {
    {"RHip", 12},     {"RKnee", 14},   {"RAnkle", 16},    {"RBigToe", 22}, {"RSmallToe", 23},
    {"RHeel", 24},    {"LHip", 11},    {"LKnee", 13},     {"LAnkle", 15},  {"LBigToe", 19},
    {"LSmallToe", 20}, {"LHeel", 21},  {"Neck", 17},      {"Head", 18},    {"Nose", 0},
    {"RShoulder", 6}, {"RElbow", 8},   {"RWrist", 10},    {"LShoulder", 5}, {"LElbow", 7},
    {"LWrist", 9},
};

typedef struct trc {
    int frames;
    int frame_number[TRC_MAX_FRAMES];
    km_vec3 pos_m[TRC_MAX_FRAMES][TRC_MARKERS]; /* in MARKER_MAP order */
} trc;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* TRC (positions returned in the calibration's world, see below): line 3 holds the values of line 2's keys (Units must be m), line 4 the marker names
 * (tab-separated, each followed by two empty cells), line 5 X1 Y1 Z1 ..., then one row per
 * frame: Frame#, Time, then x y z per marker. */
static void read_trc(const char *path, trc *out)
{
    char *text = read_file(path);
    assert_non_null(text);
    char *lines[6] = {0};
    char *p = text;
    for (int i = 0; i < 5; i++) {
        lines[i] = p;
        p = strchr(p, '\n');
        assert_non_null(p);
        *p++ = '\0';
    }
    /* Units column: the 5th of line 2 ("Units") and line 3. */
    assert_non_null(strstr(lines[1], "Units"));
    char units[8] = "";
    int markers = 0;
    assert_int_equal(sscanf(lines[2], "%*s %*s %*s %d %7s", &markers, units), 2);
    assert_int_equal(markers, TRC_MARKERS);
    assert_string_equal(units, "m");
    /* Marker names in file order -> our index. */
    int column_to_marker[TRC_MARKERS];
    int found = 0;
    char *save = NULL;
    for (char *tok = strtok_r(lines[3], "\t\r", &save); tok != NULL;
         tok = strtok_r(NULL, "\t\r", &save)) {
        if (strcmp(tok, "Frame#") == 0 || strcmp(tok, "Time") == 0)
            continue;
        int m = -1;
        for (int k = 0; k < TRC_MARKERS; k++)
            if (strcmp(MARKER_MAP[k].name, tok) == 0)
                m = k;
        if (m < 0)
            fail_msg("unknown TRC marker '%s'", tok);
        assert_true(found < TRC_MARKERS);
        column_to_marker[found++] = m;
    }
    assert_int_equal(found, TRC_MARKERS);
    out->frames = 0;
    while (*p != '\0') {
        char *end;
        long frame = strtol(p, &end, 10);
        if (end == p)
            break;
        assert_true(out->frames < TRC_MAX_FRAMES);
        int f = out->frames++;
        out->frame_number[f] = (int)frame;
        p = end;
        (void)strtod(p, &end); /* time */
        p = end;
        for (int k = 0; k < TRC_MARKERS; k++) {
            double xyz[3];
            for (int a = 0; a < 3; a++) {
                xyz[a] = strtod(p, &end);
                assert_true(end != p);
                p = end;
            }
            /* Pose2Sim writes the TRC for OpenSim, Y up, by permuting the calibration's
             * Z-up world (its zup2yup: trc = (Y, Z, X)); undo it to compare in the rig's
             * own world. */
            out->pos_m[f][column_to_marker[k]] = km_vec3_make(xyz[2], xyz[0], xyz[1]);
        }
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        p++;
    }
    free(text);
}

typedef struct openpose_frame {
    int people;
    double kp[MAX_PEOPLE][BODY25B_POINTS][3]; /* x px, y px, confidence */
} openpose_frame;

/* OpenPose JSON: every "pose_keypoints_2d":[...] is one person's 25 x (x, y, c). */
static bool read_openpose(const char *path, openpose_frame *out)
{
    char *text = read_file(path);
    if (text == NULL)
        return false;
    out->people = 0;
    static const char key[] = "\"pose_keypoints_2d\":[";
    for (char *p = strstr(text, key); p != NULL; p = strstr(p, key)) {
        p += sizeof key - 1;
        assert_true(out->people < MAX_PEOPLE);
        double *kp = &out->kp[out->people++][0][0];
        for (int i = 0; i < BODY25B_POINTS * 3; i++) {
            char *end;
            kp[i] = strtod(p, &end);
            assert_true(end != p);
            p = end;
            if (*p == ',')
                p++;
        }
        assert_int_equal(*p, ']');
    }
    free(text);
    return true;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    int i = (int)floor(q * (n - 1) + 0.5);
    return v[i];
}

/* The person of a frame whose confident keypoints lie nearest (median) to the projections
 * of the TRC markers; -1 when none has 5 confident keypoints in the image. */
static int choose_person(const km_camera *cam, const openpose_frame *op, const km_vec3 *pos)
{
    int best = -1;
    double best_median = INFINITY;
    for (int p = 0; p < op->people; p++) {
        double d[TRC_MARKERS];
        int n = 0;
        for (int k = 0; k < TRC_MARKERS; k++) {
            const double *kp = op->kp[p][MARKER_MAP[k].body25b];
            double u, v;
            if (kp[2] > MIN_CONFIDENCE && km_camera_project(cam, pos[k], &u, &v))
                d[n++] = hypot(u - kp[0], v - kp[1]);
        }
        if (n < 5)
            continue;
        double median = percentile(d, n, 0.5);
        if (median < best_median) {
            best_median = median;
            best = p;
        }
    }
    return best;
}

/* Keypoint k of frame op's person p as a view, when confident. */
static bool keypoint_view(const openpose_frame *op, int p, int k, double *u, double *v)
{
    if (p < 0)
        return false;
    const double *kp = op->kp[p][MARKER_MAP[k].body25b];
    *u = kp[0];
    *v = kp[1];
    return kp[2] > MIN_CONFIDENCE;
}

/* Triangulate keypoint k from the chosen person of each camera (person[c] < 0: camera left
 * out); with more than two views, the worst view is dropped while its error is above
 * reject_px (Pose2Sim's own rule drops views above 15 px). false below two views. */
static bool triangulate_keypoint(const km_rig *rig, const openpose_frame *op, const int *person,
                                 int k, double reject_px, km_vec3 *X, double *residual_px,
                                 int *views_used)
{
    int cams[DEMO_CAMERAS];
    double u[DEMO_CAMERAS], v[DEMO_CAMERAS];
    int n = 0;
    for (int c = 0; c < DEMO_CAMERAS; c++)
        if (keypoint_view(&op[c], person[c], k, &u[n], &v[n]))
            cams[n++] = c;
    for (;;) {
        if (n < 2 || km_triangulate(rig, cams, u, v, n, X, residual_px) != KM_OK)
            return false;
        int worst = -1;
        double worst_px = reject_px;
        for (int i = 0; i < n && n > 2; i++) {
            double pu, pv;
            if (!km_camera_project(&rig->cameras[cams[i]], *X, &pu, &pv))
                continue;
            double e = hypot(pu - u[i], pv - v[i]);
            if (e > worst_px) {
                worst_px = e;
                worst = i;
            }
        }
        if (worst < 0) {
            *views_used = n;
            return true;
        }
        for (int i = worst; i + 1 < n; i++) {
            cams[i] = cams[i + 1];
            u[i] = u[i + 1];
            v[i] = v[i + 1];
        }
        n--;
    }
}

/* The subject in each camera without the reference: cameras that see one person keep it;
 * in a camera that sees several, the person whose keypoints triangulate best with the
 * others' (lowest median residual over the keypoints) is the subject. */
static void choose_people_by_views(const km_rig *rig, const openpose_frame *op, int *person)
{
    for (int c = 0; c < DEMO_CAMERAS; c++)
        person[c] = op[c].people == 1 ? 0 : -1;
    for (int c = 0; c < DEMO_CAMERAS; c++) {
        if (op[c].people <= 1)
            continue;
        double best = INFINITY;
        int chosen = -1;
        for (int p = 0; p < op[c].people; p++) {
            person[c] = p;
            double r[TRC_MARKERS];
            int n = 0;
            for (int k = 0; k < TRC_MARKERS; k++) {
                km_vec3 X;
                int used;
                if (triangulate_keypoint(rig, op, person, k, INFINITY, &X, &r[n], &used))
                    n++;
            }
            double median = n >= 5 ? percentile(r, n, 0.5) : INFINITY;
            if (median < best) {
                best = median;
                chosen = p;
            }
        }
        person[c] = chosen;
    }
}

typedef struct demo {
    km_rig rig;
    trc trc;
    openpose_frame op[TRC_MAX_FRAMES][DEMO_CAMERAS];
    int person[TRC_MAX_FRAMES][DEMO_CAMERAS];
} demo;

/* Load rig, TRC and the OpenPose files of each TRC frame (json index = Frame# - 1: Pose2Sim
 * numbers its TRC rows from 1 for the files 0000...). */
static bool load_demo(demo *d)
{
    char path[1024];
    if (!data_path("pose2sim_demo/calibration/Calib_qualisys.toml", path, sizeof path))
        return false;
    assert_int_equal(km_rig_load_anipose(path, &d->rig), KM_OK);
    assert_int_equal(d->rig.camera_count, DEMO_CAMERAS);
    if (!data_path("pose2sim_demo/pose-3d/Balancing_for_IK.trc", path, sizeof path))
        return false;
    read_trc(path, &d->trc);
    assert_int_equal(d->trc.frames, 100);
    for (int f = 0; f < d->trc.frames; f++)
        for (int c = 0; c < DEMO_CAMERAS; c++) {
            char rel[128];
            snprintf(rel, sizeof rel, "pose2sim_demo/pose/cam%d_json/cam%02d.%04d.json", c + 1,
                     c + 1, d->trc.frame_number[f] - 1);
            assert_true(data_path(rel, path, sizeof path));
            assert_true(read_openpose(path, &d->op[f][c]));
            d->person[f][c] = choose_person(&d->rig.cameras[c], &d->op[f][c],
                                            d->trc.pos_m[f]);
        }
    return true;
}

static void test_pose2sim_reprojection_and_triangulation(void **state)
{
    (void)state;
    char probe[1024];
    SKIP_WITHOUT("pose2sim_demo/pose-3d/Balancing_for_IK.trc", probe);
    demo *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_true(load_demo(d));
    const int max_samples = TRC_MAX_FRAMES * TRC_MARKERS;
    double *err = malloc((size_t)max_samples * sizeof *err);
    assert_non_null(err);

    /* 2D: TRC projected with the imported rig vs the camera's OpenPose keypoints. The
     * errors are mostly OpenPose's disagreement between views (the nose, a sharp feature,
     * lands within 3 px in camera 1; hips and shoulders move by 10-40 px) and Pose2Sim's
     * filtering; a wrong convention (R transposed, Rodrigues sign, TRC axes, pixel origin)
     * gives hundreds of pixels. Measured: medians 11.9 / 8.1 / 18.7 / 8.8 px. */
    double *all = malloc((size_t)DEMO_CAMERAS * max_samples * sizeof *all);
    assert_non_null(all);
    int all_n = 0;
    for (int c = 0; c < DEMO_CAMERAS; c++) {
        const km_camera *cam = &d->rig.cameras[c];
        int n = 0, frames_with_person = 0, extra_people = 0;
        for (int f = 0; f < d->trc.frames; f++) {
            int p = d->person[f][c];
            extra_people += d->op[f][c].people > 1;
            if (p < 0)
                continue;
            frames_with_person++;
            for (int k = 0; k < TRC_MARKERS; k++) {
                const double *kp = d->op[f][c].kp[p][MARKER_MAP[k].body25b];
                double u, v;
                if (kp[2] > MIN_CONFIDENCE && km_camera_project(cam, d->trc.pos_m[f][k], &u, &v))
                    err[n++] = hypot(u - kp[0], v - kp[1]);
            }
        }
        assert_true(n > 1000);
        memcpy(all + all_n, err, (size_t)n * sizeof *err);
        all_n += n;
        double median = percentile(err, n, 0.5), p90 = percentile(err, n, 0.9);
        print_message("%s: %d keypoints in %d frames (%d frames with > 1 person): "
                      "reprojection median %.2f px, 90th percentile %.2f px\n",
                      cam->name, n, frames_with_person, extra_people, median, p90);
        assert_int_equal(frames_with_person, d->trc.frames);
        assert_true(median < 25.0);
        assert_true(p90 < 60.0);
    }
    double all_median = percentile(all, all_n, 0.5);
    print_message("all cameras: reprojection median %.2f px, 90th percentile %.2f px\n",
                  all_median, percentile(all, all_n, 0.9));
    assert_true(all_median < 15.0);
    free(all);

    /* 3D: OpenPose keypoints triangulated with the imported rig vs the TRC: (0) the person
     * chosen by the reference as above, every confident view; (1) without the reference:
     * the person chosen by cross-view consistency, every confident view; (2) the same with
     * views above 15 px dropped, Pose2Sim's rule (it also filters its output in time, which
     * we do not). */
    double *residual = malloc((size_t)max_samples * sizeof *residual);
    assert_non_null(residual);
    static const char *const runs[3] = {
        "person by the reference, all views", "person by cross-view consistency, all views",
        "person by cross-view consistency, views > 15 px dropped"};
    double median_mm[3], mean_mm[3];
    int agree = 0, chosen_total = 0;
    for (int run = 0; run < 3; run++) {
        int n = 0, views_total = 0;
        double sum = 0.0;
        for (int f = 0; f < d->trc.frames; f++) {
            int person[DEMO_CAMERAS];
            if (run == 0) {
                memcpy(person, d->person[f], sizeof person);
            } else {
                choose_people_by_views(&d->rig, d->op[f], person);
                for (int c = 0; c < DEMO_CAMERAS && run == 1; c++) {
                    agree += person[c] == d->person[f][c];
                    chosen_total++;
                }
            }
            for (int k = 0; k < TRC_MARKERS; k++) {
                km_vec3 X;
                double residual_px;
                int views;
                if (!triangulate_keypoint(&d->rig, d->op[f], person, k,
                                          run == 2 ? 15.0 : INFINITY, &X, &residual_px, &views))
                    continue;
                residual[n] = residual_px;
                err[n] = 1000.0 * km_vec3_dist(X, d->trc.pos_m[f][k]);
                sum += err[n++];
                views_total += views;
            }
        }
        assert_true(n > d->trc.frames * TRC_MARKERS * 8 / 10);
        mean_mm[run] = sum / n;
        median_mm[run] = percentile(err, n, 0.5);
        double p90_mm = percentile(err, n, 0.9), residual_median = percentile(residual, n, 0.5);
        print_message("%s: triangulated %d keypoints (of %d, mean %.2f views): vs TRC mean "
                      "%.1f mm, median %.1f mm, 90th percentile %.1f mm; residual median "
                      "%.2f px\n",
                      runs[run], n, d->trc.frames * TRC_MARKERS, (double)views_total / n, mean_mm[run],
                      median_mm[run], p90_mm, residual_median);
        assert_true(residual_median < 15.0);
    }
    print_message("cross-view choice of the subject = the reference's in %d of %d camera "
                  "frames\n", agree, chosen_total);
    assert_true(agree >= chosen_total * 95 / 100);
    for (int run = 0; run < 3; run++)
        assert_true(median_mm[run] < 25.0 && mean_mm[run] < 40.0);
    /* Without the reference the subject is found as well: the same figure. */
    assert_true(fabs(median_mm[1] - median_mm[0]) < 1.0);
    free(residual);
    free(err);
    free(d);
}

/* -------------------------------------------------------------- c. --z-up */

static void test_z_up_transform(void **state)
{
    (void)state;
    char path[1024];
    SKIP_WITHOUT("pose2sim_demo/calibration/Calib_qualisys.toml", path);
    km_rig *src = malloc(sizeof *src), *dst = malloc(sizeof *dst);
    assert_non_null(src);
    assert_non_null(dst);
    assert_int_equal(km_rig_load_anipose(path, src), KM_OK);
    *dst = *src;
    /* Source +Z becomes +Y: (x, y, z) -> (x, z, -y), a rotation (det +1). */
    km_mat3 R = {{1, 0, 0, 0, 0, 1, 0, -1, 0}};
    assert_true(fabs(km_mat3_det(R) - 1.0) < 1e-15);
    km_rig_transform(dst, R, km_vec3_make(0, 0, 0));
    for (int c = 0; c < src->camera_count; c++) {
        km_vec3 a = km_camera_center(&src->cameras[c]), b = km_camera_center(&dst->cameras[c]);
        assert_true(fabs(b.x - a.x) < 1e-12);
        assert_true(fabs(b.y - a.z) < 1e-12);
        assert_true(fabs(b.z + a.y) < 1e-12);
        /* The Qualisys cameras hang 1.5-2.5 m above the floor: Y is height now. */
        assert_true(b.y > 1.0 && b.y < 3.0);
        km_vec3 X = km_vec3_make(0.1, -0.2, 0.9); /* about the subject's hips */
        double u0, v0, u1, v1;
        assert_true(km_camera_project(&src->cameras[c], X, &u0, &v0));
        assert_true(km_camera_project(&dst->cameras[c], km_mat3_apply(R, X), &u1, &v1));
        assert_true(fabs(u0 - u1) < 1e-9 && fabs(v0 - v1) < 1e-9);
    }
    free(src);
    free(dst);
}

/* ---------------------------------------------------------- d. malformed input */

#define GOOD_CAMERA(section)                                                                 \
    "[" section "]\n"                                                                        \
    "name = \"" section "\"\n"                                                               \
    "size = [ 640, 480,]\n"                                                                  \
    "matrix = [ [ 500.0, 0.0, 320.0], [ 0.0, 500.0, 240.0], [ 0.0, 0.0, 1.0]]\n"             \
    "distortions = [ -0.1, 0.01, 0.0, 0.0]\n"                                                \
    "rotation = [ 0.0, 0.0, 0.0]\n"                                                          \
    "translation = [ 0.0, 0.0, 2.0]\n"                                                       \
    "fisheye = false\n\n"

static km_status parse_text(const char *text, km_rig *rig)
{
    return km_rig_parse_anipose(text, strlen(text), "t.toml", rig);
}

static void expect(const char *text, km_status want, const char *fragment)
{
    km_rig *rig = malloc(sizeof *rig);
    assert_non_null(rig);
    km_status st = parse_text(text, rig);
    if (st != want || strstr(km_last_error(), fragment) == NULL)
        fail_msg("got %s \"%s\", wanted %s with \"%s\"", km_status_name(st), km_last_error(),
                 km_status_name(want), fragment);
    assert_int_equal(rig->camera_count, 0); /* zeroed on failure */
    free(rig);
}

static void test_small_files(void **state)
{
    (void)state;
    km_rig *rig = malloc(sizeof *rig);
    assert_non_null(rig);
    /* Comments, CRLF, multi-line arrays, literal strings, exponents, extra keys, no name. */
    const char *text = "# written by hand\r\n"
                       "[cam_a]   # first\r\n"
                       "name = 'left'\r\n"
                       "size = [1280, 1024]\r\n"
                       "matrix = [\r\n  [1.2e3, 0, 640],  # fx\r\n  [0, 1.25E+3, 512],\r\n"
                       "  [0, 0, 1],\r\n]\r\n"
                       "distortions = [-1e-1, 2e-2, 0.0, 0.0, 1e-3]\r\n"
                       "rotation = [0, 0, 0.5]\r\n"
                       "translation = [+0.1, -0.2, 3]\r\n"
                       "extra = \"ignored\"\r\n"
                       "[cam_b]\n"
                       "size = [640.0, 480.0]\n"
                       "matrix = [[500,0,320],[0,500,240],[0,0,1]]\n"
                       "rotation = [0.0, 0.1, 0.0]\n"
                       "translation = [1, 0, 2]\n"
                       "[metadata]\nadjusted = false\nerror = 0.25\n";
    assert_int_equal(parse_text(text, rig), KM_OK);
    assert_int_equal(rig->camera_count, 2);
    assert_string_equal(rig->name, "t");
    assert_string_equal(rig->cameras[0].name, "left");
    assert_string_equal(rig->cameras[1].name, "cam_b"); /* the table name */
    assert_true(rig->cameras[0].K[0] == 1200.0 && rig->cameras[0].K[4] == 1250.0);
    assert_true(rig->cameras[0].dist[4] == 1e-3 && rig->cameras[1].dist[0] == 0.0);
    assert_true(rig->cameras[0].t.x == 0.1 && rig->cameras[0].t.y == -0.2);
    assert_true(fabs(rig->cameras[0].R.m[0] - cos(0.5)) < 1e-15);
    assert_true(fabs(rig->cameras[0].R.m[3] - sin(0.5)) < 1e-15); /* about +Z, cv::Rodrigues */
    assert_int_equal(rig->cameras[1].width, 640);
    free(rig);
}

static void test_malformed(void **state)
{
    (void)state;
    /* Unterminated array: runs into the next key on line 4, opened on line 3. */
    expect("[cam_0]\nsize = [640, 480]\nmatrix = [[500,0,320],[0,500,240],[0,0,1]\n"
           "rotation = [0,0,0]\n",
           KM_ERR_PARSE, "t.toml:4: expected ',' or ']' in the array opened on line 3, "
           "found 'r' (is its ']' missing?)");
    expect("[cam_0]\nsize = [640, 480,\n\nrotation = [0,0,0]\n", KM_ERR_PARSE,
           "t.toml:4: expected a number or ']' in the array opened on line 2");
    expect("[cam_0]\nsize = [640, 480\n", KM_ERR_PARSE, "t.toml:3: unterminated array "
           "(opened on line 2)");
    /* A camera without matrix: the message names the table's line. */
    expect("[cam_0]\nsize = [640, 480]\nrotation = [0,0,0]\ntranslation = [0,0,1]\n"
           "[metadata]\n", KM_ERR_PARSE, "t.toml:1: [cam_0]: matrix: not found");
    expect(GOOD_CAMERA("cam_0") "[cam_1]\nname = \"side\"\nfisheye = true\n",
           KM_ERR_UNSUPPORTED, "t.toml:12: [cam_1] (\"side\"): fisheye = true");
    expect(GOOD_CAMERA("cam_0") "[cam_1]\nsize = [640, 4x0]\n", KM_ERR_PARSE,
           "t.toml:11: bad number '4x0'");
    expect("[cam_0]\nsize = [640, 1e999]\n", KM_ERR_PARSE, "t.toml:2: non-finite number");
    expect("[cam_0]\nsize = [640, nan]\n", KM_ERR_PARSE, "t.toml:2: non-finite number");
    expect("[cam_0]\nsize = [640, 480]\nmatrix = [[0,0,320],[0,500,240],[0,0,1]]\n",
           KM_ERR_PARSE, "t.toml:3: [cam_0]: matrix: focal lengths must be > 0");
    expect("[cam_0]\nsize = [640, 480]\nmatrix = [[500,0,320],[0,500,240]]\n", KM_ERR_PARSE,
           "t.toml:3: [cam_0]: matrix: expected a 3x3 array");
    expect("[cam_0]\nrotation = [0, 0]\n", KM_ERR_PARSE,
           "t.toml:2: [cam_0]: rotation: expected an array of 3 numbers");
    expect("[cam_0]\ndistortions = [0.1, 0, 0, 0, 0, 0.2]\n", KM_ERR_PARSE,
           "t.toml:2: [cam_0]: distortions: expected an array of up to 5");
    expect("[cam_0]\nname = \"a\\\"b\"\n", KM_ERR_PARSE, "t.toml:2: escape sequences");
    expect("[cam.0]\n", KM_ERR_PARSE, "t.toml:1: dotted table names");
    expect("[[cam_0]]\n", KM_ERR_PARSE, "t.toml:1: arrays of tables");
    expect("[cam_0]\nsize = {w = 1}\n", KM_ERR_PARSE, "t.toml:2: inline tables");
    expect("[cam_0]\nsize = [640, 480] 12\n", KM_ERR_PARSE, "t.toml:2: unexpected '1'");
    expect("[cam_0]\nsize = [640, 480]\nsize = [640, 480]\n", KM_ERR_PARSE,
           "t.toml:3: key 'size' given twice");
    expect(GOOD_CAMERA("cam_0") GOOD_CAMERA("cam_0"), KM_ERR_PARSE,
           "t.toml:10: table [cam_0] defined twice");
    expect("# nothing\n[metadata]\nerror = 0.1\n", KM_ERR_PARSE, "no camera table");
    expect("", KM_ERR_PARSE, "t.toml:1: no camera table");
    expect("[cam_0]\nsize = [640, 480.5]\n", KM_ERR_PARSE, "t.toml:2: [cam_0]: size: 480.5");
    expect("[cam_0]\nname\n", KM_ERR_PARSE, "t.toml:2: expected '=' after 'name'");
    expect("[cam_0]\nrotation = [1e300, 1e300, 0]\n", KM_ERR_PARSE,
           "t.toml:2: [cam_0]: rotation: |r| = inf rad is not a rotation vector");

    /* 64 cameras are accepted, the 65th is refused at its header (line 65 * 9 + 1). */
    size_t cap = 66 * 400;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t len = 0;
    for (int c = 0; c < 65; c++) {
        char section[16];
        snprintf(section, sizeof section, "cam_%d", c);
        len += (size_t)snprintf(big + len, cap - len,
                                "[%s]\nname = \"%s\"\nsize = [ 640, 480,]\n"
                                "matrix = [ [ 500.0, 0.0, 320.0], [ 0.0, 500.0, 240.0], "
                                "[ 0.0, 0.0, 1.0]]\ndistortions = [ -0.1, 0.01, 0.0, 0.0]\n"
                                "rotation = [ 0.0, 0.0, 0.0]\ntranslation = [ 0.0, 0.0, 2.0]\n"
                                "fisheye = false\n\n", section, section);
        assert_true(len < cap);
        if (c == 63) {
            km_rig *rig = malloc(sizeof *rig);
            assert_non_null(rig);
            assert_int_equal(km_rig_parse_anipose(big, len, "t.toml", rig), KM_OK);
            assert_int_equal(rig->camera_count, 64);
            free(rig);
        }
    }
    expect(big, KM_ERR_PARSE, "t.toml:577: [cam_64]: more than 64 cameras");
    free(big);

    /* NULL arguments, missing file. */
    km_rig *rig = malloc(sizeof *rig);
    assert_non_null(rig);
    assert_int_equal(km_rig_parse_anipose(NULL, 3, "x", rig), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_rig_parse_anipose("", 0, "x", NULL), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_rig_load_anipose("/nonexistent/calibration.toml", rig), KM_ERR_IO);
    assert_non_null(strstr(km_last_error(), "/nonexistent/calibration.toml"));
    free(rig);
}

/* ----------------------------------------- e. import -> km_rig_save -> km_rig_load */

static void test_save_round_trip(void **state)
{
    (void)state;
    char path[1024];
    SKIP_WITHOUT("aniposelib_rigs/mouse-outdoor/calibration_right_4_10_2026_adjusted.toml",
                 path);
    static const char *const rels[] = {
        "pose2sim_demo/calibration/Calib_qualisys.toml",
        "aniposelib_rigs/mouse-outdoor/calibration_right_4_10_2026_adjusted.toml",
    };
    km_rig *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    char out[512];
    temp_path(out, sizeof out, "rig.yaml");
    for (size_t f = 0; f < sizeof rels / sizeof rels[0]; f++) {
        assert_true(data_path(rels[f], path, sizeof path));
        assert_int_equal(km_rig_load_anipose(path, a), KM_OK);
        assert_int_equal(km_rig_save(out, a, NULL), KM_OK);
        km_status st = km_rig_load(out, b);
        if (st != KM_OK)
            print_message("%s\n", km_last_error());
        assert_int_equal(st, KM_OK);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->camera_count, b->camera_count);
        for (int c = 0; c < a->camera_count; c++) {
            const km_camera *x = &a->cameras[c], *y = &b->cameras[c];
            assert_string_equal(x->name, y->name);
            assert_int_equal(x->width, y->width);
            assert_int_equal(x->height, y->height);
            assert_memory_equal(x->K, y->K, sizeof x->K);
            assert_memory_equal(x->dist, y->dist, sizeof x->dist);
            assert_memory_equal(x->R.m, y->R.m, sizeof x->R.m);
            assert_true(x->t.x == y->t.x && x->t.y == y->t.y && x->t.z == y->t.z);
            assert_true(y->has_pose);
        }
    }
    unlink(out);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_files),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_real_files),
        cmocka_unit_test(test_pose2sim_reprojection_and_triangulation),
        cmocka_unit_test(test_z_up_transform),
        cmocka_unit_test(test_save_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
