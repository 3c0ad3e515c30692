/* Kinema cv: the thin extern "C" wrapper over OpenCV's C++ API (cv/, the only C++ in the
 * tree). Only what calibration, tools and examples need; the hot path never calls it.
 * Functions never throw: OpenCV exceptions become km_status with the message. */
#ifndef KINEMA_CV_H
#define KINEMA_CV_H

#include "kinema/calib.h"
#include "kinema/core.h"
#include "kinema/tracking.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write an 8-bit grey (channels=1) or BGR (channels=3) image as PNG. */
km_status km_cv_write_png(const char *path, const uint8_t *pixels, int width, int height,
                          int stride, int channels);
/* Read an image file as 8-bit grey. *pixels is malloc'ed (caller frees with free()). */
km_status km_cv_read_gray(const char *path, uint8_t **pixels, int *width, int *height);
/* Read a rig file through cv::FileStorage (the reader other tools use), to prove our files
 * are what OpenCV expects and to read files OpenCV wrote. */
km_status km_cv_rig_read(const char *path, km_rig *rig);

/* Reference blob detector, the baseline of bench/bench_detect.c: cv::threshold (pixels >
 * threshold), cv::findContours (external, 8-connected) and cv::moments of the weights
 * max(value - threshold, 0) over each contour's bounding box, so the centroids use the same
 * weights as km_detector_run. No area or roundness filter; roundness and flags are
 * computed as in km_blob. Output sorted by y then x; KM_ERR_CAPACITY (the first `capacity`
 * kept) when there were more. Allocates (OpenCV images and contours) on every call. */
km_status km_cv_reference_detect(const uint8_t *image, int width, int height, int stride,
                                 int threshold, km_blob *out, int capacity, int *count);
/* cv::setNumThreads: how many threads OpenCV's own parallel loops may use (benchmarks
 * compare one core with one core); a negative value restores OpenCV's default. */
void km_cv_set_num_threads(int threads);


/* ===================================================== intrinsics calibration ============
 * (cv/board.cpp, cv/calibrate.cpp, cv/draw.cpp; added by the intrinsics work of issue 4.)
 * Board detection, cv::calibrateCamera, a board renderer for synthetic views, and the few
 * drawing primitives the calibration report needs. */

typedef enum km_cv_corner_method {
    /* cv::findChessboardCornersSB (sector-based, subpixel accurate by itself). */
    KM_CV_CORNERS_SB = 0,
    /* cv::findChessboardCorners (adaptive threshold, fast check, normalise) +
     * cv::cornerSubPix 11x11, exactly as OpenCV's calibration sample. */
    KM_CV_CORNERS_CLASSIC = 1,
    /* The same detector, but cv::cornerSubPix's half window adapted to the view: 0.3 x the
     * smallest distance between neighbouring inner corners, 2..11 px. A fixed 11 px half
     * window (23 x 23 px) reaches past the outer squares of a small or steep board (and a
     * board whose outer squares the page edge cut short) and pulls the border corners
     * several pixels towards the board's edge (docs/calibration.md). */
    KM_CV_CORNERS_ADAPTIVE = 2
} km_cv_corner_method;

/* Find the board in an 8-bit grey image. Chessboard: all corners or none (`method` picks
 * the detector). ChArUco: cv::aruco::detectMarkers + interpolateCornersCharuco, any subset
 * of corners (`method` ignored). *count = corners found (0: no board; not an error);
 * *markers (may be NULL) = ArUco markers seen (ChArUco; 0 for a chessboard). KM_ERR_CAPACITY
 * when capacity < km_board_max_corners(board). */
km_status km_cv_detect_board(const km_board *board, km_cv_corner_method method,
                             const uint8_t *gray, int width, int height, int stride,
                             km_board_corner *out, int capacity, int *count, int *markers);

/* One view for km_cv_calibrate_camera (borrowed corners). */
typedef struct km_cv_calibration_view {
    const km_board_corner *corners;
    int count;
} km_cv_calibration_view;

/* cv::calibrateCamera on the views (object points (x_m, y_m, 0), image points (u, v)) with
 * KM_CALIB_* flags (an aspect ratio fixed at 1). Writes K (row-major 3x3) and dist (k1 k2 p1
 * p2 k3) and *rms_px (cv's return value, RMS over all points). view_rms_px (view_count, may
 * be NULL): RMS error per view; residual_px (sum of counts, may be NULL): per point
 * |projection - detection|, views in order. std_dev (9, may be NULL): standard deviations
 * OpenCV estimates for fx fy cx cy k1 k2 p1 p2 k3 (0 for fixed ones), pixels / unitless.
 * KM_ERR_NUMERIC when OpenCV fails. */
km_status km_cv_calibrate_camera(const km_cv_calibration_view *views, int view_count,
                                 int width, int height, unsigned flags, double K[9],
                                 double dist[5], double *rms_px, double *view_rms_px,
                                 double *residual_px, double *std_dev);

/* Render what `camera` (K, dist, and pose R, t mapping board coordinates -> camera) sees of
 * the board lying at z = 0 of its frame, into an 8-bit grey image of camera->width x height
 * (`stride` bytes a row): a printed board with a white margin on `background` grey, bilinear
 * sampling of an antialiased texture, lens distortion applied. For synthetic tests. */
km_status km_cv_render_board(const km_board *board, const km_camera *camera, uint8_t *gray,
                             int stride, uint8_t background);

/* A caller-owned 8-bit BGR image to draw on (report pictures). Colours are 0xRRGGBB. */
typedef struct km_cv_canvas {
    uint8_t *pixels;
    int width, height, stride; /* stride in bytes, >= 3 * width */
} km_cv_canvas;

/* Anti-aliased primitives (cv::line, cv::rectangle, cv::circle, cv::putText with
 * FONT_HERSHEY_SIMPLEX). thickness < 0 fills (rectangles, circles). Text: (x, y) is the
 * bottom-left of the first character, scale 0.5 is about 10 px tall. Clipped to the canvas;
 * KM_ERR_INVALID_ARGUMENT only for a bad canvas. */
km_status km_cv_draw_line(km_cv_canvas *canvas, double x0, double y0, double x1, double y1,
                          uint32_t rgb, int thickness);
km_status km_cv_draw_rect(km_cv_canvas *canvas, double x, double y, double w, double h,
                          uint32_t rgb, int thickness);
km_status km_cv_draw_circle(km_cv_canvas *canvas, double x, double y, double radius,
                            uint32_t rgb, int thickness);
km_status km_cv_draw_text(km_cv_canvas *canvas, double x, double y, const char *text,
                          double scale, uint32_t rgb, int thickness);
/* Width in pixels text would take at this scale and thickness. */
int km_cv_text_width(const char *text, double scale, int thickness);

/* ===================================================== wand calibration ==================
 * (cv/geometry.cpp; added by the wand calibration work of issue 4.) */

/* Relative pose of camera 1 with respect to camera 0 from count >= 5 correspondences in
 * undistorted normalised coordinates (x = X/Z, y = Y/Z): cv::findEssentialMat (five-point
 * algorithm in RANSAC, `threshold` in normalised units, e.g. 1 px / focal) then
 * cv::recoverPose. x_cam1 = R * x_cam0 + t with |t| = 1 (scale unknown). inlier_mask (count
 * bytes, may be NULL) gets 1 for the points RANSAC and the cheirality test kept; *inliers is
 * their number. KM_ERR_NUMERIC when no pose is found (degenerate configuration). */
km_status km_cv_relative_pose(const double *x0, const double *y0, const double *x1,
                              const double *y1, int count, double threshold, km_mat3 *R,
                              km_vec3 *t, uint8_t *inlier_mask, int *inliers);


/* ===================================================== MJPEG (UVC cameras) ================
 * (cv/mjpeg.cpp; added with the UVC driver of issue 3.) */

/* Decode one MJPEG frame of a UVC camera (km_frame of format KM_PIXEL_MJPEG: `size` bytes)
 * to 8-bit grey into out (height rows of stride bytes). Frames without Huffman tables (the
 * "AVI1" MJPEG many webcams send) get the standard tables of ITU-T T.81 K.3. Decodes straight
 * into out when the frame is width x height; KM_ERR_FORMAT (offset or reason in the message)
 * when it is not a JPEG, does not decode or has another size. Allocates (OpenCV, libjpeg):
 * call it off the capture hot path. */
km_status km_cv_mjpeg_to_gray(const uint8_t *jpeg, size_t size, uint8_t *out, int width,
                              int height, int stride);


/* ===================================================== video files =======================
 * (cv/video.cpp; added with `kinema export --video` of issue 3.) cv::VideoWriter and
 * cv::VideoCapture behind opaque handles. What can be written depends on the OpenCV build's
 * video I/O backends: Debian's libopencv-videoio (FFmpeg backend) writes MJPG in .avi,
 * mp4v in .mp4 and FFV1 (lossless) in .mkv; OpenCV's built-in MJPEG writer does .avi alone. */
typedef struct km_cv_video_writer km_cv_video_writer;
typedef struct km_cv_video_reader km_cv_video_reader;

/* The codec chosen for a file name when none is asked for: "MJPG" for .avi, "mp4v" for .mp4
 * and .m4v, "FFV1" for .mkv, NULL for other extensions. */
const char *km_cv_video_default_fourcc(const char *path);
/* Create (truncate) a video of width x height frames at fps. fourcc: four characters
 * ("MJPG", "mp4v", "FFV1", ...), or NULL / "" for km_cv_video_default_fourcc(path).
 * is_color: frames are BGR (else 8-bit grey). KM_ERR_UNSUPPORTED, with the codec, file and
 * the OpenCV backends in the message, when this OpenCV cannot write it
 * (cv::VideoWriter::isOpened false); KM_ERR_INVALID_ARGUMENT for a bad size, rate or
 * fourcc. Close with km_cv_video_writer_close. */
km_cv_video_writer *km_cv_video_writer_open(const char *path, const char *fourcc, double fps,
                                            int width, int height, bool is_color,
                                            km_status *err);
/* Append one frame: height rows of stride bytes, 8-bit grey or BGR as opened. Allocates
 * (the encoder): not for a hot path. */
km_status km_cv_video_writer_write(km_cv_video_writer *writer, const uint8_t *pixels,
                                   int stride);
/* Frames written so far. */
long km_cv_video_writer_frames(const km_cv_video_writer *writer);
/* Finish the file (trailer, index) and free the writer. Accepts NULL. */
km_status km_cv_video_writer_close(km_cv_video_writer *writer);

/* Open a video for reading; *width, *height, *fps (each may be NULL) from the container
 * (fps 0 when it does not say). KM_ERR_IO when OpenCV cannot open it. */
km_cv_video_reader *km_cv_video_reader_open(const char *path, int *width, int *height,
                                            double *fps, km_status *err);
/* Next frame as 8-bit grey into out (height rows of stride bytes; colour frames are
 * converted with cv::COLOR_BGR2GRAY). KM_ERR_END_OF_STREAM after the last frame,
 * KM_ERR_FORMAT when a frame has another size than the one opened. */
km_status km_cv_video_reader_read_gray(km_cv_video_reader *reader, uint8_t *out, int stride);
/* Same, BGR (3 bytes a pixel; grey frames are expanded). */
km_status km_cv_video_reader_read_bgr(km_cv_video_reader *reader, uint8_t *out, int stride);
void km_cv_video_reader_close(km_cv_video_reader *reader); /* accepts NULL */

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CV_H */
