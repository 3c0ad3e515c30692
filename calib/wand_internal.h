/* Private to calib/: the state of the wand calibration shared by wand.c (collection and
 * identification, statistics), extrinsics_init.c (initial poses), bundle.c (bundle
 * adjustment) and ground.c / report.c. */
#ifndef KINEMA_CALIB_WAND_INTERNAL_H
#define KINEMA_CALIB_WAND_INTERNAL_H

#include <stdatomic.h>

#include "kinema/calib.h"

/* The wand identified in one camera's view of one frame. */
typedef struct wand_view {
    int camera;
    int frame;              /* index into km_wand_calibration.frames */
    double u[3], v[3];      /* raw (distorted) pixels, wand marker order */
    double xn[3], yn[3];    /* undistorted normalised coordinates (with the input intrinsics) */
    bool used;              /* in the adjustment (not dropped as an outlier) */
} wand_view;

/* A blob of a camera whose view of a frame did not give the wand (a marker hidden, a ghost
 * in the way): kept so that the statistics can take each end marker from every camera that
 * saw it, not only from the cameras that saw the whole wand. */
typedef struct wand_blob {
    int camera;
    double u, v;            /* raw (distorted) pixels */
} wand_blob;

/* At most this many blobs are kept of a view without the wand (more: a cluttered view). */
#define WAND_SPARE_BLOBS_PER_VIEW 6

/* A frame with at least one identified view; its views are contiguous, and so are its
 * spare blobs. */
typedef struct wand_frame {
    uint64_t frame;
    int first_view, view_count;
    int first_blob, blob_count;
    km_vec3 a;              /* wand pose: position of marker 0 (world / rig gauge) */
    km_vec3 d;              /* unit direction from marker 0 to marker 2 */
    bool used;              /* >= 2 used views and a valid initial pose */
} wand_frame;

struct km_wand_calibration {
    km_wand_config cfg;
    km_rig rig;             /* intrinsics in; poses after the initialisation */
    km_rig input;           /* the intrinsics as given (undistortion of the views) */
    wand_view *views;
    int view_count, view_capacity;
    wand_frame *frames;
    int frame_count, frame_capacity;
    wand_blob *blobs;       /* spare blobs of all frames */
    int blob_count, blob_capacity;
    bool bounded;           /* wand_reserve was called: spare blobs that do not fit are
                               dropped rather than allocated (they only feed statistics) */
    int frames_given;
    km_wand_camera_stats stats[KM_MAX_CAMERAS];
    double *length_error_mm;    /* result storage */
    int *coverage;              /* camera_count x rows x columns */
    double offset_m[3];     /* marker positions relative to marker 0 */
    /* Hooks of a solve that calib/session.c runs in a worker thread; NULL otherwise. The
     * solve checks `cancel` between stages and every bundle adjustment iteration, and
     * reports its progress through `progress` (called on the solving thread). */
    const atomic_bool *cancel;
    void (*progress)(void *user, double fraction, const char *stage);
    void *progress_user;
    int round;              /* outlier round of the running solve (progress text) */
    double sigma_px;        /* robust per-axis image noise of the last outlier round (0
                               before): gates the spare blobs of the wand length figure */
    int iterations_done;    /* LM iterations of the running solve so far (progress) */
};

/* true when the running solve was asked to stop. */
static inline bool wand_cancelled(const km_wand_calibration *wc)
{
    return wc->cancel != NULL && atomic_load_explicit(wc->cancel, memory_order_acquire);
}

/* Report the solve's progress (no-op without a progress hook). `fraction` 0..1. */
void wand_report(const km_wand_calibration *wc, double fraction, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Preallocate room for `frames` stored frames and `views` identified views (and as many
 * spare blobs), so that km_wand_calibration_add_frame does not allocate until they are full. */
km_status wand_reserve(km_wand_calibration *wc, int frames, int views);
/* Keep every other stored frame (the 1st, 3rd, ...) and their views, in place; the
 * per-camera view counts follow. For a bounded collection of a long wave. */
void wand_thin(km_wand_calibration *wc);

/* extrinsics_init.c: pairwise relative poses, spanning tree, chaining, scale from the wand,
 * initial wand poses. Sets rig poses, frames' a/d/used; *root = camera at the origin. */
km_status wand_initialise(km_wand_calibration *wc, int *root);

/* bundle.c: Levenberg-Marquardt over cameras (root fixed) and wand poses of used frames,
 * on used views. Updates rig and frames. *iterations added to, *rms_px final RMS. */
km_status wand_bundle_adjust(km_wand_calibration *wc, int root, int *iterations,
                             double *rms_px);

/* Project a camera-frame point with the camera's intrinsics; false when z <= 0. */
bool wand_project_camera_frame(const km_camera *cam, km_vec3 pc, double *u, double *v);

/* Triangulate one point from n >= 2 views given in undistorted normalised coordinates
 * (iteratively reweighted linear least squares ~ minimum reprojection error). */
km_status wand_triangulate(const km_rig *rig, const int *cameras, const double *xn,
                           const double *yn, int n, km_vec3 *out);

#endif /* KINEMA_CALIB_WAND_INTERNAL_H */
