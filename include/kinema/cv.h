/* Kinema cv: the thin extern "C" wrapper over OpenCV's C++ API (cv/, the only C++ in the
 * tree). Only what calibration, tools and examples need; the hot path never calls it.
 * Functions never throw: OpenCV exceptions become km_status with the message. */
#ifndef KINEMA_CV_H
#define KINEMA_CV_H

#include "kinema/calib.h"
#include "kinema/core.h"

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

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CV_H */
