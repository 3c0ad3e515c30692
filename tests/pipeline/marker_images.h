/* What the pipeline's device tests show their simulated cameras: the projections of a few
 * known markers as bright anti-aliased disks on a dark background, and the rig they were
 * projected with saved as the `rig:` file of kinemad's config. Shared by test_devices.c (UVC)
 * and test_kinect.c (Kinect IR). cmocka must be included before. */
#ifndef KINEMA_TESTS_PIPELINE_MARKER_IMAGES_H
#define KINEMA_TESTS_PIPELINE_MARKER_IMAGES_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinema/calib.h"

/* Add a disk of radius_px centred at (u, v) to an 8-bit image (4x4 supersampled coverage,
 * 240 at full coverage, saturating). Only the disk's bounding box is touched. */
static void marker_images_draw_disk(uint8_t *img, int width, int height, double u, double v,
                                    double radius_px)
{
    const double r = radius_px;
    int x0 = (int)floor(u - r - 1), x1 = (int)ceil(u + r + 1);
    int y0 = (int)floor(v - r - 1), y1 = (int)ceil(v + r + 1);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > width - 1) x1 = width - 1;
    if (y1 > height - 1) y1 = height - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            int inside = 0;
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 4; sx++) {
                    double dx = x - 0.375 + 0.25 * sx - u, dy = y - 0.375 + 0.25 * sy - v;
                    inside += dx * dx + dy * dy <= r * r;
                }
            int value = img[y * width + x] + inside * 240 / 16;
            img[y * width + x] = (uint8_t)(value > 255 ? 255 : value);
        }
}

/* The image camera `cam` (cam->width x cam->height) sees of the markers: background 12, one
 * disk per marker; each projection must be inside the image with margin_px to spare (whole
 * disks, away from the border). */
static void marker_images_render(const km_camera *cam, const km_vec3 *markers, int count,
                                 double radius_px, double margin_px, uint8_t *img)
{
    memset(img, 12, (size_t)cam->width * (size_t)cam->height);
    for (int m = 0; m < count; m++) {
        double u, v;
        assert_true(km_camera_project(cam, markers[m], &u, &v));
        assert_true(u > margin_px && u < cam->width - margin_px - 1 && v > margin_px &&
                    v < cam->height - margin_px - 1);
        marker_images_draw_disk(img, cam->width, cam->height, u, v, radius_px);
    }
}

/* Save the rig to a new temporary file; path is a mkstemp template ("...XXXXXX"). */
static void marker_images_save_rig(const km_rig *rig, char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(km_rig_save(path, rig, NULL), KM_OK);
}

#endif /* KINEMA_TESTS_PIPELINE_MARKER_IMAGES_H */
