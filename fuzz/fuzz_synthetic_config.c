/* Fuzz target: the synthetic source's config reader (km_synthetic_config_read) on arbitrary
 * YAML. Any input gives either a config whose every field is inside its documented range, or
 * an error status with a message; never a crash, leak or hang. No scene is created (that would
 * fuzz the allocator, not the reader). */
#include <stdint.h>
#include <stdlib.h>

#include "kinema/capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const km_config *cfg, const char *path)
{
    km_synthetic_config c;
    km_status st = km_synthetic_config_read(cfg, path, &c);
    if (st != KM_OK) {
        if (km_last_error()[0] == '\0')
            abort(); /* failure must say why */
        return;
    }
    if (c.camera_count < 1 || c.camera_count > KM_MAX_CAMERAS || c.width < 64 ||
        c.width > 4096 || c.height < 64 || c.height > 4096 || !(c.rate_hz >= 1.0) ||
        !(c.rate_hz <= 1000.0) || c.actor_count < 1 || c.actor_count > 8 ||
        !(c.image_noise >= 0.0 && c.image_noise <= 50.0) ||
        !(c.distortion >= 0.0 && c.distortion <= 2.0) ||
        !(c.reflection_rate >= 0.0 && c.reflection_rate <= 20.0) ||
        !(c.marker_diameter_m >= 0.003 && c.marker_diameter_m <= 0.05) ||
        !(c.duration_s >= 0.0 && c.duration_s <= 1e7) ||
        (c.scene != KM_SYNTHETIC_SCENE_ACTOR && c.scene != KM_SYNTHETIC_SCENE_WAND) ||
        !(c.wand_seconds >= 0.5 && c.wand_seconds <= 1e7) ||
        !(c.lframe_seconds >= 0.0 && c.lframe_seconds <= 1e7))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_status st = KM_OK;
    km_config *cfg = km_config_parse((const char *)data, size, "fuzz.yaml", &st);
    if (cfg == NULL)
        return 0;
    check(cfg, "synthetic");
    check(cfg, "sources.0.synthetic");
    check(cfg, "");
    km_config_destroy(cfg);
    return 0;
}
