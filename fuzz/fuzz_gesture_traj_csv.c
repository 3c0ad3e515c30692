/* Fuzz target: the traj.csv reader (formats.md, gesture trajectories). */
#include <stddef.h>
#include <stdint.h>

#include "kinema/gesture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_gesture_set *set = km_gesture_set_create();
    if (set)
        km_gesture_parse_traj_csv(set, (const char *)data, size, "fuzz.csv");
    km_gesture_set_destroy(set);
    return 0;
}
