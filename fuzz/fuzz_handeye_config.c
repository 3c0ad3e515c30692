/* Fuzz target: the `handeye` config section (km_config_parse, then km_handeye_config_read
 * at the root and at "handeye"). Any input must give a config or an error status, never a
 * crash, leak or hang; a config that loads must pass km_handeye_config_check and build a
 * tracker. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/gesture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_status st;
    km_config *cfg = km_config_parse((const char *)data, size, "fuzz.yaml", &st);
    if (!cfg)
        return 0;
    const char *paths[2] = {"handeye", ""};
    for (int k = 0; k < 2; k++) {
        km_handeye_config he = km_handeye_config_default();
        if (km_handeye_config_read(cfg, paths[k], &he) != KM_OK)
            continue;
        if (km_handeye_config_check(&he) != KM_OK)
            abort(); /* the reader must only return valid configurations */
        km_handeye *tracker = km_handeye_create(&he, &st);
        if (!tracker)
            abort();
        km_handeye_input in;
        memset(&in, 0, sizeof in);
        in.time_ns = 1;
        in.gaze_valid = true;
        in.gaze.direction = km_vec3_make(0, 0, -1);
        in.gaze.origin_m = km_vec3_make(0, 1.6, 0);
        km_gesture_event ev[8];
        size_t n;
        km_handeye_update(tracker, &in, ev, 8, &n);
        km_handeye_destroy(tracker);
    }
    km_config_destroy(cfg);
    return 0;
}
