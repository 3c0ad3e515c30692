/* Fuzz target: km_wire_decode_frame and km_wire_decode on arbitrary bytes (wire v1, docs/protocol.md).
 * Any input must give KM_OK or an error status, never a crash or an out-of-bounds read;
 * an accepted message must re-encode to a message that decodes to the same values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/transport.h"

#define STORAGE 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Equal as values; any NaN equals any NaN (a signalling NaN comes back quieted). */
static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_marker storage[STORAGE], again[STORAGE];
    static uint8_t encoded[1u << 16];
    static km_observation observations[STORAGE];
    km_wire_frame w, w2;
    /* With 2D observation storage too (the obs2d/frame topics' OBSERVATIONS_2D section). */
    km_wire_storage all = {storage, STORAGE, observations, STORAGE};
    if (km_wire_decode(data, size, &all, &w) == KM_OK &&
        (w.observation_total < 0 || w.observation_total > STORAGE ||
         (w.observation_total > 0 && !w.has_observations)))
        abort();
    if (km_wire_decode_frame(data, size, storage, STORAGE, &w) != KM_OK)
        return 0;
    if (w.marker_count < 0 || w.marker_count > STORAGE || w.camera_count < 0 ||
        w.camera_count > KM_WIRE_MAX_CAMERAS)
        abort();
    /* Round trip of what was accepted: decode(encode(x)) == x. */
    km_marker_set set = {w.frame, w.capture_time_ns, w.marker_count, STORAGE, storage};
    km_solved_frame f;
    memset(&f, 0, sizeof f);
    f.frame = w.frame;
    f.capture_time_ns = w.capture_time_ns;
    f.solved_time_ns = w.solved_time_ns;
    f.publish_time_ns = w.publish_time_ns;
    f.camera_count = w.camera_count;
    memcpy(f.observation_count, w.observation_count, sizeof f.observation_count);
    f.markers = &set;
    size_t length = 0;
    if (km_wire_encode_frame(&f, encoded, sizeof encoded, &length) != KM_OK)
        return 0; /* more markers than this buffer: fine */
    if (km_wire_decode_frame(encoded, length, again, STORAGE, &w2) != KM_OK)
        abort();
    if (w2.frame != w.frame || w2.marker_count != w.marker_count ||
        w2.camera_count != w.camera_count)
        abort();
    for (int i = 0; i < w.marker_count; i++)
        if (again[i].id != storage[i].id || again[i].views != storage[i].views ||
            !same(again[i].pos_m.x, storage[i].pos_m.x) ||
            !same(again[i].pos_m.y, storage[i].pos_m.y) ||
            !same(again[i].pos_m.z, storage[i].pos_m.z) ||
            !same(again[i].residual_px, storage[i].residual_px))
            abort();
    return 0;
}
