/* Fuzz target: the `gesture` config section of kinemad (km_config_parse, then
 * km_gesture_engine_config_read at "gesture"), with its spotter, handpose and handeye
 * sub-sections. Any input must give a config or an error status, never a crash, leak or
 * hang; a config that loads must pass km_gesture_engine_config_check, and (when small and
 * without a model file) build an engine that takes a body and a step. */
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
    km_gesture_engine_config ec = km_gesture_engine_config_default();
    if (km_gesture_engine_config_read(cfg, "gesture", &ec) == KM_OK) {
        if (km_gesture_engine_config_check(&ec) != KM_OK)
            abort(); /* the reader must only return valid configurations */
        /* building is bounded here: no files, few templates, a small queue */
        if (!ec.model_path[0] && ec.builtin_variants <= 3 && ec.event_capacity <= 4096 &&
            ec.resample_count <= 128) {
            km_gesture_engine *e = km_gesture_engine_create(&ec, &st);
            if (!e)
                abort();
            km_gesture_body b = km_gesture_body_init();
            b.tracked = KM_BODY_BIT(KM_BODY_CHEST) | KM_BODY_BIT(KM_BODY_RIGHT_HAND) |
                        KM_BODY_BIT(KM_BODY_HEAD);
            b.joint_m[KM_BODY_CHEST] = km_vec3_make(0, 1.3, 0);
            b.joint_m[KM_BODY_RIGHT_HAND] = km_vec3_make(0.3, 1.3, -0.3);
            b.joint_m[KM_BODY_HEAD] = km_vec3_make(0, 1.6, 0);
            b.head_rotation_valid = true;
            km_gesture_engine_push_body(e, 0, 1, &b);
            km_gesture_event ev[8];
            size_t n;
            km_gesture_engine_step(e, 1, ev, 8, &n);
            km_gesture_engine_destroy(e);
        }
    }
    km_config_destroy(cfg);
    return 0;
}
