/* Kinema calibration: the camera model (OpenCV's pinhole + Brown–Conrady k1 k2 p1 p2 k3),
 * the camera rig (all cameras with their pose in the world frame) and its YAML file
 * (formats.md "Camera rig", readable by OpenCV's cv::FileStorage).
 *
 * Conventions (formats.md): world frame right-handed, Y up, metres. x_cam = R * X_world + t.
 * Pixel (0,0) is the centre of the top-left pixel. */
#ifndef KINEMA_CALIB_H
#define KINEMA_CALIB_H

#include <stdio.h>

#include "kinema/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KM_MAX_CAMERAS 64
#define KM_NAME_MAX 64

typedef struct km_camera {
    char name[KM_NAME_MAX];
    int width, height;      /* image size in pixels */
    double K[9];            /* row-major camera matrix [fx 0 cx; 0 fy cy; 0 0 1] */
    double dist[5];         /* k1 k2 p1 p2 k3 */
    km_mat3 R;              /* world -> camera rotation */
    km_vec3 t;              /* world -> camera translation, metres */
    bool has_pose;          /* false for an intrinsics-only file */
} km_camera;

typedef struct km_rig {
    char name[KM_NAME_MAX];
    int camera_count;
    km_camera cameras[KM_MAX_CAMERAS];
} km_rig;

/* Camera centre in world coordinates (-R^T t). */
km_vec3 km_camera_center(const km_camera *cam);
/* World point -> camera frame. */
km_vec3 km_camera_to_camera_frame(const km_camera *cam, km_vec3 X_world);
/* Project a world point to distorted pixel coordinates. Returns false when the point is
 * behind the camera (z <= 1 mm); *u,*v are then unspecified. */
bool km_camera_project(const km_camera *cam, km_vec3 X_world, double *u, double *v);
/* Apply the distortion model to normalised coordinates (x, y) -> (xd, yd). */
void km_camera_distort_normalized(const km_camera *cam, double x, double y, double *xd,
                                  double *yd);
/* Distorted pixel -> undistorted normalised image coordinates (iterative inverse of the
 * distortion, as cv::undistortPoints; converges for the distortion of real lenses). */
void km_camera_undistort_point(const km_camera *cam, double u, double v, double *x, double *y);
/* Unit ray direction in world coordinates through a distorted pixel; origin = centre. */
km_vec3 km_camera_pixel_ray(const km_camera *cam, double u, double v);

/* Fill a camera with a pinhole model looking from `eye` at `target` (world Y up), for
 * synthetic rigs and tests. fov is the horizontal field of view in radians. */
void km_camera_look_at(km_camera *cam, const char *name, int width, int height,
                       double hfov_rad, km_vec3 eye, km_vec3 target);

/* Read a rig YAML file (formats.md). Also accepts the intrinsics-only form
 * (camera_count: 1, no rotation/translation). Errors name file and line. */
km_status km_rig_load(const char *path, km_rig *rig);
/* Same, from text in memory; `name` stands for the file name in messages. */
km_status km_rig_parse(const char *text, size_t length, const char *name, km_rig *rig);
/* Write a rig in the exact layout of formats.md (%YAML:1.0, !!opencv-matrix), full
 * double precision, so cv::FileStorage reads it. `extra` (may be NULL) is appended verbatim
 * at top level (e.g. "rms_reprojection_error_px: 0.31\n"). */
km_status km_rig_save(const char *path, const km_rig *rig, const char *extra);

/* ------------------------------------------------ import: anipose / Pose2Sim TOML
 * (calib/rig_anipose.c.) Multi-camera calibrations written by anipose, aniposelib,
 * Pose2Sim and freemocap: one TOML table per camera ([cam_0], any name but [metadata]) with
 * name, size = [w, h], matrix = 3x3 K, distortions = [k1, k2, p1, p2(, k3)], rotation =
 * Rodrigues vector (world -> camera, cv::Rodrigues) and translation (x_cam = R X + t).
 * Cameras come in file order, has_pose true; translation is copied in the file's length
 * unit (Pose2Sim: metres; some anipose rigs: millimetres) and the world axes are the
 * source's (often Z up: see km_rig_transform and `kinema calibrate import --z-up`).
 * The rig's name is the file's base name without extension. Errors: KM_ERR_PARSE
 * "file:line: what" (syntax outside the supported TOML subset, a camera missing size,
 * matrix, rotation or translation, wrong array shapes, non-finite numbers, fx/fy <= 0, more
 * than KM_MAX_CAMERAS cameras); KM_ERR_UNSUPPORTED naming the camera for fisheye = true. On
 * failure *out is zeroed. docs/calibration.md, "Importing a calibration". */
km_status km_rig_parse_anipose(const char *text, size_t length, const char *name, km_rig *out);
km_status km_rig_load_anipose(const char *path, km_rig *out);


/* ===================================================== intrinsics calibration ============
 * (calib/intrinsics.c; added by the intrinsics work of issue 4, separate from the above.)
 * Intrinsics of one camera from images of a planar board, chessboard or ChArUco: board
 * detection (through cv/), view selection (blurry and near-duplicate views rejected, image
 * coverage reported), calibration with the Brown-Conrady model (cv::calibrateCamera),
 * per-view reprojection errors and iterative outlier-view rejection. Input: 8-bit grey
 * images (files or buffers); output: a km_camera (has_pose false) and statistics, saved as a
 * single-camera rig file (formats.md) and optionally a report PNG. Not for the hot path. */

typedef enum km_board_type {
    KM_BOARD_CHESSBOARD = 0,
    KM_BOARD_CHARUCO = 1
} km_board_type;

/* A planar calibration board. The board frame has z = 0 on the board plane, metres. */
typedef struct km_board {
    km_board_type type;
    int columns, rows; /* chessboard: INNER corners along a row / along a column (9x6 for
                          OpenCV's sample); ChArUco: squares along X / Y, as
                          cv::aruco::CharucoBoard::create(columns, rows, ...) */
    double square_m;   /* side of one square */
    double marker_m;   /* ChArUco: side of an ArUco marker; 0 for a chessboard */
    int dictionary;    /* ChArUco: cv::aruco::PREDEFINED_DICTIONARY_NAME (DICT_6X6_250 = 10) */
} km_board;

/* Parse "chessboard:COLSxROWS:SQUARE_M" (inner corners) or
 * "charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT_6X6_250]" (squares). KM_ERR_PARSE with the
 * reason otherwise. */
km_status km_board_parse(const char *spec, km_board *board);
/* Most corners one view of the board can have (chessboard c*r, ChArUco (c-1)*(r-1)). */
int km_board_max_corners(const km_board *board);
/* "chessboard 9x6 inner corners, 25.0 mm squares" (for messages and reports). */
void km_board_describe(const km_board *board, char *out, size_t out_size);

/* One detected board corner. */
typedef struct km_board_corner {
    int id;            /* chessboard: row * columns + column (OpenCV order); ChArUco: its id */
    double u_px, v_px; /* detected position, distorted pixels */
    double x_m, y_m;   /* position on the board plane (z = 0), metres */
} km_board_corner;

/* Model flags of the calibration (0: fx, fy, cx, cy, k1 k2 p1 p2 k3 all free). */
#define KM_CALIB_FIX_ASPECT_RATIO 0x1u    /* fx = fy */
#define KM_CALIB_ZERO_TANGENT_DIST 0x2u   /* p1 = p2 = 0 */
#define KM_CALIB_FIX_PRINCIPAL_POINT 0x4u /* cx, cy at the image centre */
#define KM_CALIB_FIX_K3 0x8u              /* k3 = 0 */

typedef enum km_view_status {
    KM_VIEW_USED = 0,        /* in the final calibration */
    KM_VIEW_DETECTED,        /* board found; not selected yet (before km_intrinsics_solve) */
    KM_VIEW_UNREADABLE,      /* the file could not be read as an image */
    KM_VIEW_WRONG_SIZE,      /* image size differs from the first image's */
    KM_VIEW_NO_BOARD,        /* no board found */
    KM_VIEW_TOO_FEW_CORNERS, /* ChArUco: fewer corners than min_corners */
    KM_VIEW_BOARD_MISMATCH,  /* corners do not fit the board geometry (wrong size/flipped) */
    KM_VIEW_BLURRY,          /* sharpness below blur_ratio x the median */
    KM_VIEW_DUPLICATE,       /* nearly the same corner positions as a sharper kept view */
    KM_VIEW_OUTLIER          /* dropped by the outlier rejection */
} km_view_status;

/* "used", "no-board", ... never NULL. */
const char *km_view_status_name(km_view_status status);

typedef struct km_intrinsics_config {
    km_board board;
    unsigned flags;               /* KM_CALIB_*; default 0 */
    double blur_ratio;            /* reject views with sharpness < ratio x median; 0.35; 0 off */
    double duplicate_px;          /* mean corner distance below which two views are duplicates
                                     (over their common corners); 3 px; 0 off */
    double outlier_threshold_px;  /* a view is an outlier candidate when its RMS error exceeds
                                     max(this, outlier_median_factor x median, median +
                                     outlier_spread_factor x robust sigma); 1.0 px */
    double outlier_median_factor; /* 2.0; 0 disables outlier rejection */
    int min_views;                /* fewer usable views is an error; 3 (the least allowed) */
    int min_corners;              /* a ChArUco view needs this many corners; 8 */
    int grid_columns, grid_rows;  /* coverage grid over the image; 8 x 6 */
    bool chessboard_sb;           /* chessboard corners: false (default) = findChessboardCorners
                                     + cornerSubPix; true = findChessboardCornersSB (see
                                     docs/calibration.md) */
    /* Fields below added after the first release of this struct (defaults in
     * km_intrinsics_config_default). */
    bool sample_corner_window;    /* false (default): cornerSubPix half window adapted to the
                                     view's corner spacing (KM_CV_CORNERS_ADAPTIVE); true: the
                                     fixed 11 px of OpenCV's sample, which pulls the border
                                     corners of small or steep boards (docs/calibration.md) */
    double outlier_spread_factor; /* robust sigma (1.4826 x MAD of the view errors) multiples
                                     above the median for a candidate; 5 */
    double outlier_min_shift_sigma; /* a candidate is dropped only if dropping it moves fx, fy,
                                     cx or cy by more than this many of their standard
                                     deviations (OpenCV's estimate without the view); a view
                                     that fits badly but does not change the solution is kept
                                     (more data); 1.0; 0 drops every candidate */
} km_intrinsics_config;

km_intrinsics_config km_intrinsics_config_default(void);

/* What happened to one image. */
typedef struct km_intrinsics_view {
    char name[256];            /* file path or the caller's label (cut to fit) */
    km_view_status status;
    int duplicate_of;          /* KM_VIEW_DUPLICATE: index of the kept view, else -1 */
    double sharpness;          /* contrast-normalised Laplacian variance over the board */
    double error_px;           /* RMS reprojection error of its corners: for used views from
                                  the final calibration, for outliers from the last round they
                                  took part in; 0 when never calibrated */
    int corner_count;
    km_board_corner *corners;  /* corner_count detected corners (owned by the calibrator) */
    double *residual_px;       /* per corner |reprojected - detected| like error_px, or NULL */
    double drop_shift_sigma;   /* for a view over the outlier limit: the largest change of fx,
                                  fy, cx, cy dropping it caused, in standard deviations (kept
                                  when below outlier_min_shift_sigma); 0 when never tried */
} km_intrinsics_view;

typedef struct km_intrinsics_result {
    km_camera camera;          /* name "cam0", K and dist; has_pose false */
    km_board board;
    unsigned flags;
    double rms_px;             /* over all corners of the used views (cv::calibrateCamera's) */
    double std_dev[9];         /* one-sigma uncertainty OpenCV estimates for fx fy cx cy (px)
                                  and k1 k2 p1 p2 k3; 0 for parameters the flags fix (with
                                  FIX_ASPECT_RATIO the focal length's is in fy's slot) */
    double outlier_limit_px;   /* the final limit (see outlier_threshold_px) */
    int image_count, detected_count, used_count;
    double coverage_percent;   /* grid cells holding a corner of a used view, of all cells */
    int grid_columns, grid_rows;
    const int *grid_counts;    /* grid_rows x grid_columns corner counts (used views), borrowed */
    int view_count;
    const km_intrinsics_view *views; /* every image added, borrowed */
} km_intrinsics_result;

/* The calibrator collects detections; images themselves are not kept. Borrowed pointers
 * of a result stay valid until the next add or destroy. Single thread. */
typedef struct km_intrinsics km_intrinsics;

/* NULL and *err on a bad config (board sizes, thresholds). Free with km_intrinsics_destroy. */
km_intrinsics *km_intrinsics_create(const km_intrinsics_config *cfg, km_status *err);
void km_intrinsics_destroy(km_intrinsics *ki);
/* Detect the board in one 8-bit grey image (copied nowhere). *status (may be NULL) says
 * what happened: KM_VIEW_DETECTED or a rejection. KM_OK unless arguments are invalid or
 * memory runs out; a view without a board is not a failure. Progress via km_log. */
km_status km_intrinsics_add_image(km_intrinsics *ki, const char *name, const uint8_t *gray,
                                  int width, int height, int stride, km_view_status *status);
/* Same from an image file (unreadable files become KM_VIEW_UNREADABLE). */
km_status km_intrinsics_add_file(km_intrinsics *ki, const char *path, km_view_status *status);
/* Every file the glob matches, in sorted order. KM_ERR_NOT_FOUND when none matches. */
km_status km_intrinsics_add_glob(km_intrinsics *ki, const char *pattern);
/* Select views, calibrate, reject outliers, fill *out. Errors (km_last_error names the
 * cause): KM_ERR_NOT_FOUND when no image or no board was found (with a hint when another
 * board size would have matched), KM_ERR_INVALID_ARGUMENT when fewer than min_views usable
 * views remain, KM_ERR_NUMERIC when OpenCV's solver fails. May be called again after more
 * images were added. */
km_status km_intrinsics_solve(km_intrinsics *ki, km_intrinsics_result *out);
/* Write the single-camera rig file of formats.md with rms_reprojection_error_px (and the
 * selection statistics as extra keys). */
km_status km_intrinsics_save(const km_intrinsics_result *result, const char *path);
/* One-page PNG: per-view error bars, coverage map of all corners over the image frame with
 * their residuals, and the numbers (RMS, fx fy cx cy, distortion, rejected views). */
km_status km_intrinsics_write_report(const km_intrinsics_result *result, const char *png_path);

/* ===================================================== wand calibration ==================
 * (calib/wand.c, extrinsics_init.c, bundle.c, ground.c, report.c; added by the wand
 * calibration work of issue 4, separate from the above.)
 * Extrinsics of N cameras with known intrinsics from a wand wave: the operator waves a wand
 * with three collinear markers through the volume; from the 2D blobs alone (ghosts and
 * dropouts included) the wand is identified in each view, the cameras are initialised from
 * pairwise essential matrices chained along a spanning tree of the best pairs (scale from the
 * wand length), then all camera poses and wand poses are bundle-adjusted (Levenberg-Marquardt,
 * Huber cost, Schur complement on the camera block), optionally with the intrinsics. The
 * ground plane (world frame: Y up, floor Y = 0) then comes from an L-frame on the floor.
 * Offline (not the hot path): allocates as it collects frames. Single thread. */

/* One 2D blob (an obs.csv row): camera index and raw (distorted) pixel position. */
typedef struct km_calib_blob {
    int camera;
    double x_px, y_px;
} km_calib_blob;

typedef struct km_wand_config {
    double marker_m[3];         /* marker positions along the wand, increasing; the middle
                                   one must not be at the centre (0, 0.15, 0.5) */
    double collinear_px;        /* middle blob's distance to the line of the ends, at most
                                   this + 1% of the wand's image length (1.5 px) */
    double ratio_tolerance;     /* relative tolerance of the middle marker's position along
                                   the wand in the image (perspective changes it; 0.25) */
    double min_length_px;       /* shorter wand images are ignored (15 px) */
    int max_blobs_per_view;     /* views with more blobs are skipped as cluttered (32) */
    int min_frames;             /* fewer frames seen by >= 2 cameras: error (30) */
    int min_camera_frames;      /* a camera seeing the wand in fewer frames: error naming
                                   it (15) */
    int max_iterations;         /* Levenberg-Marquardt iterations per round (60) */
    double huber_px;            /* Huber cost threshold (1.0 px) */
    double outlier_px;          /* after a round, views with a residual above
                                   max(outlier_px, 6 x robust sigma) are dropped (2.0 px) */
    bool refine_intrinsics;     /* also solve fx fy cx cy k1 k2 per camera (false) */
    int grid_columns, grid_rows;/* coverage grid over each image (16 x 12) */
} km_wand_config;

km_wand_config km_wand_config_default(void);
/* Parse "0,0.15,0.5" (three increasing numbers, metres) into cfg->marker_m. KM_ERR_PARSE. */
km_status km_wand_parse_geometry(const char *text, double marker_m[3]);

/* Statistics of one camera after the solve. */
typedef struct km_wand_camera_stats {
    int blob_count;             /* blobs given to add_frame */
    int view_count;             /* frames in which the wand was identified */
    int ambiguous_count;        /* views with several wand candidates (skipped) */
    int used_count;             /* views in the final adjustment */
    double rms_px;              /* reprojection RMS over the markers of the used views */
    double coverage_percent;    /* grid cells holding a wand marker, of all cells */
} km_wand_camera_stats;

typedef struct km_wand_result {
    int camera_count;
    km_wand_camera_stats cameras[KM_MAX_CAMERAS];
    int frame_count;            /* frames given */
    int frames_used;            /* frames with the wand in >= 2 cameras after outliers */
    int root_camera;            /* camera held fixed (gauge) */
    int iterations;             /* LM iterations over all rounds */
    double rms_px;              /* final reprojection RMS, all used observations */
    double initial_rms_px;      /* after the initialisation, before bundle adjustment */
    /* Wand length (end to end) of each used frame triangulated freely (each marker on its
     * own, not with the wand constraint) minus the true length, millimetres. */
    double length_error_mean_mm, length_error_rms_mm, length_error_max_mm;
    int length_error_count;
    const double *length_error_mm; /* length_error_count values, borrowed */
    int grid_columns, grid_rows;
    /* Per camera grid_rows x grid_columns counts of wand markers (used views), borrowed. */
    const int *coverage[KM_MAX_CAMERAS];
    double solve_seconds;
    /* Ground plane, when km_wand_calibration_set_ground succeeded. */
    bool has_ground;
    double ground_rms_mm;       /* L-frame markers vs the L-frame model after alignment */
    /* The length error split without the truth (fields added after the first release).
     * The free per-frame triangulation carries the observation noise: pixel_noise_px is the
     * noise per image axis estimated from the residuals of those triangulations (2m - 3
     * degrees of freedom per marker seen m times), length_error_noise_mm the RMS length
     * error that noise alone gives through each frame's geometry (frames seen by >= 3
     * cameras), and length_error_calibration_mm = sqrt(max(0, rms^2 - noise^2)) what is left
     * for the calibration (scale, poses, intrinsics). On the synthetic wave the noise part
     * matches the length error the TRUE rig gives (docs/calibration.md). */
    double pixel_noise_px;
    double length_error_noise_mm;
    double length_error_calibration_mm;
} km_wand_result;

typedef struct km_wand_calibration km_wand_calibration;

/* `intrinsics`: camera_count cameras with K, dist, width, height (poses ignored), e.g. from
 * km_wand_load_intrinsics. NULL and *err on a bad config. Free with
 * km_wand_calibration_destroy. */
km_wand_calibration *km_wand_calibration_create(const km_wand_config *cfg,
                                                const km_rig *intrinsics, km_status *err);
void km_wand_calibration_destroy(km_wand_calibration *wc); /* accepts NULL */
/* The blobs of one frame (all cameras, any order). Identifies the wand in each camera's
 * view (three collinear blobs in the wand's order and spacing, ghosts rejected); ambiguous
 * views are skipped. Blobs are copied. KM_ERR_INVALID_ARGUMENT for a camera index out of
 * range; KM_ERR_NO_MEMORY. */
km_status km_wand_calibration_add_frame(km_wand_calibration *wc, uint64_t frame,
                                        const km_calib_blob *blobs, int count);
/* Identify the wand among the blobs of one view (the same test add_frame uses): blob
 * indices of the markers in wand order into index[3]. false when there is no candidate or
 * more than one. `camera` gives the intrinsics for undistortion. */
bool km_wand_identify(const km_wand_calibration *wc, int camera, const km_calib_blob *blobs,
                      int count, int index[3]);

/* One frame of a wand wave measured against a calibrated rig. */
typedef struct km_wand_measurement {
    km_vec3 ends[2];            /* markers 0 and 2 (the wand's ends), world / rig frame */
    double length_m;            /* their distance */
    int views[2];               /* cameras each end was triangulated from */
} km_wand_measurement;

/* Measure the wand in one frame's blobs with `rig` (the solved rig, or a reference): the wand
 * identified in each camera as add_frame does, each end triangulated from every camera that
 * saw it (the views that gave the whole wand, plus, in the others, the one blob within
 * gate_px of the end's projection; the solve's statistics use 4 sigma of the image noise).
 * The per-frame wand length of the result's statistics. KM_ERR_NOT_FOUND when fewer than
 * two cameras show the wand. */
km_status km_wand_measure_frame(const km_wand_calibration *wc, const km_rig *rig,
                                const km_calib_blob *blobs, int count, double gate_px,
                                km_wand_measurement *out);
/* Initialise and bundle-adjust. *rig gets the calibrated cameras (names and intrinsics
 * from the input, refined when asked) in a gauge where the root camera sits at the origin;
 * call km_wand_calibration_set_ground for the world frame. Progress via km_log (info: one
 * line per iteration with cost and RMS px). Errors name the cause: too few frames
 * (KM_ERR_INVALID_ARGUMENT), a camera that never or too rarely sees the wand
 * (KM_ERR_NOT_FOUND, naming the camera), cameras not connected through shared frames,
 * degenerate motion such as all observations on one line (KM_ERR_NUMERIC). The result's
 * borrowed pointers live until the calibration is destroyed or solved again. */
km_status km_wand_calibration_solve(km_wand_calibration *wc, km_rig *rig,
                                    km_wand_result *result);

/* The L-frame: corner marker, long arm along +X with markers at 0.3 and 0.5 m, short arm
 * along +Z with a marker at 0.2 m, marker centres height_m above the floor. */
typedef struct km_lframe {
    double long_arm_m[2];       /* 0.3, 0.5 */
    double short_arm_m;         /* 0.2 */
    double height_m;            /* 0.007 */
} km_lframe;

km_lframe km_lframe_default(void);

/* Ground plane from frames of a static L-frame seen by a calibrated rig. Blobs seen again
 * at the same place in most frames of a camera are the L-frame's markers (ghosts move);
 * they are matched across cameras, triangulated, identified by the L's geometry, and the
 * world transform is computed: origin under the corner marker on the floor, +X along the
 * long arm, +Z along the short arm (orthogonalised), Y = Z x X up. */
typedef struct km_ground km_ground;
km_ground *km_ground_create(const km_rig *rig, const km_lframe *lframe, km_status *err);
void km_ground_destroy(km_ground *ground);
km_status km_ground_add_frame(km_ground *ground, const km_calib_blob *blobs, int count);
/* World transform X_world = R * X_rig + t, and the L-frame markers in the rig's frame
 * (corner, long 1, long 2, short; may be NULL). rms_mm (may be NULL): distance RMS of the
 * markers to the L-frame model after alignment. KM_ERR_NOT_FOUND when the L-frame is not
 * found (naming what is missing). */
km_status km_ground_solve(km_ground *ground, km_mat3 *R, km_vec3 *t, km_vec3 markers[4],
                          double *rms_mm);
/* Move a rig into a new world frame: X_new = R * X_old + t (R a rotation). */
void km_rig_transform(km_rig *rig, km_mat3 R, km_vec3 t);
/* Convenience for the wand calibration: solve the ground with `rig`, apply it to the rig and
 * record it in the result (has_ground, ground_rms_mm). */
km_status km_wand_calibration_set_ground(km_ground *ground, km_rig *rig,
                                         km_wand_result *result);

/* Intrinsics of N cameras: either one rig file with camera_count N whose cameras need no
 * pose (rotation/translation may be absent), or a comma-separated list of single-camera
 * intrinsics files (camera i = i-th file). Errors name file and line. */
km_status km_wand_load_intrinsics(const char *paths, km_rig *rig);
/* One such file's text held in memory; `name` stands for the file name in messages. */
km_status km_wand_parse_intrinsics(const char *text, size_t length, const char *name,
                                   km_rig *rig);
/* Write intrinsics of all cameras as one file (formats.md layout without poses). */
km_status km_wand_save_intrinsics(const char *path, const km_rig *rig);
/* Save the calibrated rig (km_rig_save) with the statistics as extra keys
 * (rms_reprojection_error_px, wand length error, per-camera RMS and observation counts). */
km_status km_wand_save_rig(const char *path, const km_rig *rig, const km_wand_result *result);

/* Quality report: per-camera reprojection RMS, views and coverage, wand length error
 * statistics, ground plane. Text to a stream; PNG: one page with per-camera coverage
 * heat maps, a bar chart of per-camera RMS, a histogram of wand length errors and the
 * numbers. */
km_status km_wand_report_text(const km_wand_result *result, const km_rig *rig, FILE *out);
km_status km_wand_report_png(const km_wand_result *result, const km_rig *rig,
                             const char *png_path);

/* Checking a rig against a recording: reconstructed 3D points (from any reconstruction with
 * the rig) are projected into every camera and matched to that camera's nearest blob within
 * match_px; per-camera error statistics show when a camera moved ("bumped"). */
typedef struct km_rig_check_camera {
    int matched;                /* observations matched to a 3D point */
    double rms_px, median_px;
    bool bumped;                /* median error well above the other cameras' */
} km_rig_check_camera;

typedef struct km_rig_check_result {
    int camera_count;
    int frame_count, point_count;
    km_rig_check_camera cameras[KM_MAX_CAMERAS];
    double median_px;           /* median over all cameras' medians */
    int bumped_count;
} km_rig_check_result;

typedef struct km_rig_check km_rig_check;
km_rig_check *km_rig_check_create(const km_rig *rig, double match_px, km_status *err);
void km_rig_check_destroy(km_rig_check *check);
km_status km_rig_check_add_frame(km_rig_check *check, const km_vec3 *points, int point_count,
                                 const km_calib_blob *blobs, int blob_count);
/* A camera is bumped when its median error exceeds max(bump_px, bump_factor x the median of
 * the other cameras' medians) (0.5 px, 3), or when it matched fewer than half as many
 * points as the median camera (it moved by more than match_px). */
km_status km_rig_check_result_get(const km_rig_check *check, double bump_px,
                                  double bump_factor, km_rig_check_result *out);
km_status km_rig_check_report_text(const km_rig_check_result *result, const km_rig *rig,
                                   FILE *out);

/* ===================================================== live calibration session ==========
 * (calib/session.c.) The wand calibration as the daemon runs it live: the pipeline feeds
 * each frame's 2D observations while the operator waves the wand (then, optionally, while
 * the L-frame lies on the floor); a control command starts the solve in a worker thread,
 * polls its progress from any thread, may cancel it, and takes the rig and the figures.
 *
 * Memory is bounded and allocated at create: add_* never allocates. The wand is identified
 * in each view as it arrives and only the identified views are kept (not the blobs). A
 * wave longer than max_frames is decimated: every `decimation`-th frame fed is kept, and
 * when the store is full every other stored frame is dropped and the decimation doubles,
 * so the kept frames always span the whole wave evenly. L-frame blobs are kept up to
 * ground_blob_capacity (later ones are counted and ignored: the L-frame does not move).
 *
 * Threads: add_observations / add_frame / set_phase from one feeding thread (the
 * pipeline's); start, cancel, wait, reset, get_result and get_progress from any thread (a
 * mutex guards the state; add_* hold it for the frame's identification only). While a
 * solve runs, add_* return KM_ERR_AGAIN and keep nothing. */

struct km_observation_set; /* tracking.h */

typedef enum km_calib_session_phase {
    KM_CALIB_SESSION_WAND = 0,  /* frames fed are the wand wave (default) */
    KM_CALIB_SESSION_GROUND = 1 /* frames fed show the L-frame on the floor */
} km_calib_session_phase;

typedef enum km_calib_session_state {
    KM_CALIB_SESSION_COLLECTING = 0, /* taking frames */
    KM_CALIB_SESSION_SOLVING,        /* worker thread running */
    KM_CALIB_SESSION_DONE,           /* result available */
    KM_CALIB_SESSION_FAILED,         /* solve failed: status and error say why */
    KM_CALIB_SESSION_CANCELLED       /* cancelled; reset or start again */
} km_calib_session_state;

/* "collecting", "solving", "done", "failed", "cancelled"; never NULL. */
const char *km_calib_session_state_name(km_calib_session_state state);

typedef struct km_calib_session_config {
    km_wand_config wand;        /* km_wand_config_default() */
    km_lframe lframe;           /* km_lframe_default() */
    int max_frames;             /* wand frames kept (frames where >= 1 camera identified the
                                   wand); 6000 */
    int decimation;             /* keep every N-th wand frame fed from the start; 1 */
    int max_blobs_per_frame;    /* blobs of one frame taken (all cameras); 64 x cameras at
                                   create when 0 */
    int ground_blob_capacity;   /* L-frame blobs kept (all frames, all cameras); 200000 */
    bool with_ground;           /* solve the world frame from the L-frame after the wand
                                   (an error when no L-frame frames were fed); true */
} km_calib_session_config;

km_calib_session_config km_calib_session_config_default(void);

/* A snapshot of the session (km_calib_session_get_progress). */
typedef struct km_calib_session_progress {
    km_calib_session_state state;
    km_calib_session_phase phase;
    double fraction;            /* 0..1 of the solve, an estimate that only grows; 1 when
                                   done; 0 while collecting */
    char stage[160];            /* what the solve is doing ("bundle adjustment, round 1,
                                   iteration 7: RMS 0.213 px"), or the collection state */
    int frames_fed;             /* wand frames given since create/reset */
    int frames_kept;            /* wand frames stored (with the wand in >= 1 camera) */
    int decimation;             /* current: every N-th wand frame is considered */
    uint64_t first_frame, last_frame; /* frame numbers of the first and last kept wand frame
                                   (0 when none) */
    int ground_frames;          /* L-frame frames given */
    int ground_blobs;           /* L-frame blobs stored */
    int truncated_frames;       /* frames with more blobs than max_blobs_per_frame */
    int camera_count;
    int camera_views[KM_MAX_CAMERAS]; /* stored wand views per camera (live coverage) */
    km_status status;           /* of the finished solve (KM_OK when done) */
    char error[KM_ERROR_MESSAGE_MAX]; /* its message when failed or cancelled */
} km_calib_session_progress;

typedef struct km_calib_session km_calib_session;

/* `intrinsics` as for km_wand_calibration_create (copied). Allocates all storage. NULL and
 * *err on a bad config or out of memory. */
km_calib_session *km_calib_session_create(const km_calib_session_config *cfg,
                                          const km_rig *intrinsics, km_status *err);
/* Cancels and joins a running solve, frees everything. Accepts NULL. */
void km_calib_session_destroy(km_calib_session *session);
/* What the frames fed from now on show. KM_ERR_AGAIN while solving. Switching to GROUND also
 * turns with_ground on (the L-frame shown is meant to set the world frame). */
km_status km_calib_session_set_phase(km_calib_session *session, km_calib_session_phase phase);
/* One frame's blobs (any cameras). No allocation. KM_ERR_AGAIN while a solve runs or
 * after it (reset first); KM_ERR_INVALID_ARGUMENT for a camera out of range (nothing
 * kept); KM_ERR_CAPACITY when count > max_blobs_per_frame (the first ones are used). */
km_status km_calib_session_add_frame(km_calib_session *session, uint64_t frame,
                                     const km_calib_blob *blobs, int count);
/* The same from the pipeline's observation set (obs->items[i].camera, x, y). */
km_status km_calib_session_add_observations(km_calib_session *session,
                                            const struct km_observation_set *obs);
/* Start the solve in a worker thread: wand (identification done, initialisation, bundle
 * adjustment, outlier rounds), then the ground plane when with_ground. KM_ERR_AGAIN when a
 * solve is already running; KM_ERR_INVALID_ARGUMENT when no wand frame was kept. The
 * session may be started again after it finished (e.g. with more frames after a reset). */
km_status km_calib_session_start(km_calib_session *session);
/* Ask a running solve to stop (it does within one bundle adjustment iteration); the state
 * becomes CANCELLED. No-op otherwise. Does not wait: see km_calib_session_wait. */
void km_calib_session_cancel(km_calib_session *session);
/* Block until the running solve (if any) ended; its status (KM_OK when done). */
km_status km_calib_session_wait(km_calib_session *session);
/* Snapshot of the state and progress, from any thread. */
void km_calib_session_get_progress(const km_calib_session *session,
                                   km_calib_session_progress *out);
/* The solved rig (world frame from the L-frame, or the root camera's gauge without it) and
 * the figures. KM_ERR_AGAIN while collecting or solving; the solve's status and message
 * when it failed or was cancelled (KM_ERR_AGAIN, "cancelled"). The result's borrowed
 * arrays (length_error_mm, coverage) stay valid until reset, start or destroy. */
km_status km_calib_session_get_result(km_calib_session *session, km_rig *rig,
                                      km_wand_result *result);
/* Forget all frames and any result; back to collecting the wand (phase WAND, decimation
 * from the config). KM_ERR_AGAIN while solving (cancel and wait first). */
km_status km_calib_session_reset(km_calib_session *session);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CALIB_H */
