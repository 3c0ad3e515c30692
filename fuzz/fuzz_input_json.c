/* Fuzz target: JSON input messages (ZeroMQ input socket, transport/input.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinema/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_input_message m;
    if (km_input_decode_json((const char *)data, size, 1, &m) != KM_OK)
        return 0;
    if (m.kind == KM_INPUT_GAZE) {
        if (fabs(km_vec3_norm(m.gaze.direction) - 1.0) > 1e-9)
            abort();
    } else if (m.kind == KM_INPUT_HAND) {
        if (m.hand.hand != KM_HAND_SIDE_LEFT && m.hand.hand != KM_HAND_SIDE_RIGHT)
            abort();
        for (int k = 0; k < KM_HAND_LANDMARK_COUNT; k++)
            if (!(fabs(m.hand.landmarks_m[k].x) <= 100))
                abort();
    } else {
        abort();
    }
    return 0;
}
