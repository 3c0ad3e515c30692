/* Fuzz target: the JSON reader behind the unified JSON of the 3D gesture data sets, both
 * shapes (top-level strokes, and paths.<key>.strokes). */
#include <stddef.h>
#include <stdint.h>

#include "kinema/gesture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_gesture_set *set = km_gesture_set_create();
    if (set) {
        km_gesture_parse_unified_json(set, (const char *)data, size, "fuzz.json", NULL, 1e6);
        km_gesture_parse_unified_json(set, (const char *)data, size, "fuzz.json", "Palm", 1e9);
    }
    km_gesture_set_destroy(set);
    return 0;
}
