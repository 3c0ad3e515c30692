/* Debug views for the CLI: a camera image with what detection found drawn over it, written
 * as PNG, so a person can see at a glance whether the threshold and filters fit the images
 * (a marker missed, a reflection kept, two markers merged). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "kinema/cv.h"

static void put_pixel(uint8_t *bgr, int w, int h, int x, int y, uint8_t b, uint8_t g, uint8_t r)
{
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t *p = bgr + 3 * ((size_t)y * (size_t)w + (size_t)x);
    p[0] = b;
    p[1] = g;
    p[2] = r;
}

int cli_write_detection_png(const char *path, const uint8_t *gray, int width, int height,
                            int stride, const km_observation *obs, int count, int camera)
{
    uint8_t *bgr = malloc((size_t)width * (size_t)height * 3);
    if (!bgr) {
        fprintf(stderr, "kinema: %s: out of memory\n", path);
        return -1;
    }
    /* The IR background sits near black: lift it (gamma) so the scene stays visible under
     * the overlay. */
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (uint8_t)lrint(255.0 * pow(v / 255.0, 0.5));
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            uint8_t v = lut[gray[(size_t)y * (size_t)stride + (size_t)x]];
            put_pixel(bgr, width, height, x, y, v, v, v);
        }
    for (int i = 0; i < count; i++) {
        if (obs[i].camera != camera) continue;
        double cx = obs[i].x, cy = obs[i].y;
        /* Green ring a little larger than the blob, red cross at the subpixel centroid. */
        double radius = sqrt(obs[i].area_px / M_PI) + 4.0;
        int steps = (int)(2.0 * M_PI * radius) + 8;
        for (int k = 0; k < steps; k++) {
            double a = 2.0 * M_PI * k / steps;
            put_pixel(bgr, width, height, (int)lrint(cx + radius * cos(a)),
                      (int)lrint(cy + radius * sin(a)), 0, 255, 0);
        }
        int ix = (int)lrint(cx), iy = (int)lrint(cy);
        for (int d = -2; d <= 2; d++) {
            put_pixel(bgr, width, height, ix + d, iy, 0, 0, 255);
            put_pixel(bgr, width, height, ix, iy + d, 0, 0, 255);
        }
    }
    km_status st = km_cv_write_png(path, bgr, width, height, width * 3, 3);
    free(bgr);
    if (st != KM_OK) {
        fprintf(stderr, "kinema: %s\n", km_last_error());
        return -1;
    }
    return 0;
}
