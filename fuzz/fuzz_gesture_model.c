/* Fuzz target: the gesture model reader (docs/formats.md, "Gesture model"). */
#include <stddef.h>
#include <stdint.h>

#include "kinema/gesture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_status st;
    km_gesture_recognizer *rec = km_gesture_model_parse((const char *)data, size, "fuzz", 0, &st);
    if (rec) {
        /* a model that loads must classify without trouble */
        km_vec3 pts[3] = {{0, 0, 0}, {1, 0.5, 0}, {2, 0, 0.25}};
        km_gesture_result res;
        km_gesture_classify(rec, pts, 3, &res);
    }
    km_gesture_recognizer_destroy(rec);
    return 0;
}
