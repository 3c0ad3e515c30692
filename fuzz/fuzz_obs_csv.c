/* Fuzz target: the obs.csv reader (tracking/csv.c) on arbitrary bytes. Any input must give
 * frames or an error status, never a crash or an out-of-bounds access; every frame handed
 * out must satisfy the reader's promises (count within capacity, camera index valid, finite
 * numbers, frames increasing), and what was accepted must survive write -> read unchanged
 * up to the writer's precision. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"

#define CAPACITY 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_observation items[CAPACITY], again_items[CAPACITY];
    km_status err;
    km_obs_reader *r = km_obs_reader_open_memory((const char *)data, size, "fuzz.csv", &err);
    if (!r) {
        if (err == KM_OK || km_last_error()[0] == '\0')
            abort();
        return 0;
    }
    km_observation_set set = {.capacity = CAPACITY, .items = items};
    bool have_last = false;
    uint64_t last = 0;
    km_status st;
    while ((st = km_obs_reader_next(r, &set)) == KM_OK) {
        if (set.count < 1 || set.count > CAPACITY)
            abort();
        if (have_last && set.frame <= last)
            abort();
        have_last = true;
        last = set.frame;
        for (int k = 0; k < set.count; k++)
            if (items[k].camera < 0 || items[k].camera >= KM_MAX_CAMERAS ||
                !isfinite(items[k].x) || !isfinite(items[k].y) || !(items[k].area_px >= 0.0))
                abort();
        /* Round trip of this frame. */
        char *text = NULL;
        size_t length = 0;
        FILE *f = open_memstream(&text, &length);
        if (!f)
            continue;
        km_obs_csv_write_header(f);
        km_obs_csv_write(f, &set);
        fclose(f);
        km_obs_reader *r2 = km_obs_reader_open_memory(text, length, "again.csv", &err);
        if (!r2)
            abort();
        km_observation_set again = {.capacity = CAPACITY, .items = again_items};
        if (km_obs_reader_next(r2, &again) != KM_OK || again.count != set.count ||
            again.frame != set.frame || again.time_ns != set.time_ns)
            abort();
        for (int k = 0; k < set.count; k++) {
            /* %.4f px; huge values keep about 15 significant digits. */
            const double tol_x = 1e-4 + 1e-12 * fabs(items[k].x);
            const double tol_y = 1e-4 + 1e-12 * fabs(items[k].y);
            if (again_items[k].camera != items[k].camera ||
                fabs(again_items[k].x - items[k].x) > tol_x ||
                fabs(again_items[k].y - items[k].y) > tol_y)
                abort();
        }
        km_obs_reader_close(r2);
        free(text);
    }
    if (st != KM_ERR_END_OF_STREAM && km_last_error()[0] == '\0')
        abort();
    km_obs_reader_close(r);
    return 0;
}
