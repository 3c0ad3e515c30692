/* Fuzz target: OSC input packets (/kinema/input/hand and /gaze, bundles nested or not)
 * through transport/osc_codec.c and transport/input.c. Accepted messages must hold only
 * validated values: finite coordinates within 100 m, unit gaze directions, confidence in
 * [0, 1], a known hand. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinema/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_vec(km_vec3 v)
{
    if (!(fabs(v.x) <= 100 && fabs(v.y) <= 100 && fabs(v.z) <= 100))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_input_message out[16];
    int count = -1;
    if (km_input_decode_osc(data, size, 1, out, 16, &count) != KM_OK) {
        if (count != 0)
            abort();
        return 0;
    }
    if (count < 0 || count > 16)
        abort();
    for (int i = 0; i < count; i++) {
        if (out[i].kind == KM_INPUT_HAND) {
            const km_hand_input *h = &out[i].hand;
            if (h->hand != KM_HAND_SIDE_LEFT && h->hand != KM_HAND_SIDE_RIGHT)
                abort();
            if (!(h->confidence >= 0 && h->confidence <= 1) || h->person < 0 || !h->time_ns)
                abort();
            for (int k = 0; k < KM_HAND_LANDMARK_COUNT; k++)
                check_vec(h->landmarks_m[k]);
        } else if (out[i].kind == KM_INPUT_GAZE) {
            const km_gaze_input *g = &out[i].gaze;
            check_vec(g->origin_m);
            if (fabs(km_vec3_norm(g->direction) - 1.0) > 1e-9)
                abort();
            if (!(g->confidence >= 0 && g->confidence <= 1) || g->person < 0)
                abort();
        } else {
            abort();
        }
    }
    return 0;
}
