/* Fuzz target: the $1 XML log reader. */
#include <stddef.h>
#include <stdint.h>

#include "kinema/gesture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_gesture_set *set = km_gesture_set_create();
    if (set)
        km_gesture_parse_dollar1_xml(set, (const char *)data, size, "fuzz.xml");
    km_gesture_set_destroy(set);
    return 0;
}
