/* Fuzz target: the markers.csv reader (tracking/csv.c) on arbitrary bytes: no crash, and
 * every frame handed out keeps the reader's promises. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinema/tracking.h"

#define CAPACITY 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_marker items[CAPACITY];
    km_status err;
    km_markers_reader *r =
        km_markers_reader_open_memory((const char *)data, size, "fuzz.csv", &err);
    if (!r)
        return 0;
    km_marker_set set = {.capacity = CAPACITY, .items = items};
    bool have_last = false;
    uint64_t last = 0;
    while (km_markers_reader_next(r, &set) == KM_OK) {
        if (set.count < 1 || set.count > CAPACITY || (have_last && set.frame <= last))
            abort();
        have_last = true;
        last = set.frame;
        for (int k = 0; k < set.count; k++)
            if (!isfinite(items[k].pos_m.x) || !isfinite(items[k].pos_m.y) ||
                !isfinite(items[k].pos_m.z) || !(items[k].residual_px >= 0.0) ||
                items[k].views < 0 || items[k].views > KM_MAX_CAMERAS)
                abort();
    }
    km_markers_reader_close(r);
    return 0;
}
