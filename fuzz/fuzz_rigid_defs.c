/* Fuzz target: the rigid body definitions reader (tracking/rigid_defs.c) on arbitrary bytes:
 * no crash; what it accepts passes validation, has unique names and ids, and the rigid
 * tracker and the unique-constellation check accept it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"

#define CAPACITY 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    km_log_set_level(KM_LOG_ERROR); /* confusion warnings are expected */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_rigid_definition defs[CAPACITY];
    int count = -1;
    const km_status st =
        km_rigid_definitions_parse((const char *)data, size, "fuzz.yaml", defs, CAPACITY, &count);
    if (st != KM_OK) {
        if (st != KM_ERR_PARSE || count != 0 || km_last_error()[0] == '\0')
            abort();
        return 0;
    }
    if (count < 1 || count > CAPACITY)
        abort();
    for (int k = 0; k < count; k++) {
        if (km_rigid_definition_validate(&defs[k]) != KM_OK)
            abort();
        for (int j = 0; j < k; j++)
            if (defs[j].id == defs[k].id || strcmp(defs[j].name, defs[k].name) == 0)
                abort();
    }
    km_rigid_definitions_check(defs, count, 0.004, NULL, 0);
    km_rigid_config cfg = km_rigid_config_default();
    cfg.max_markers = 16;
    km_status err;
    km_rigid_tracker *t = km_rigid_tracker_create(&cfg, defs, count, &err);
    if (!t)
        abort();
    /* the first body's own markers as a frame: it must be found */
    km_marker items[KM_RIGID_MAX_MARKERS];
    km_marker_set set = {.count = defs[0].marker_count, .capacity = KM_RIGID_MAX_MARKERS,
                         .items = items};
    for (int i = 0; i < defs[0].marker_count; i++)
        items[i] = (km_marker){.id = (uint32_t)i, .pos_m = defs[0].markers_m[i], .views = 2};
    km_rigid_pose poses[CAPACITY];
    if (km_rigid_tracker_update(t, &set, poses, CAPACITY) != KM_OK)
        abort();
    km_rigid_tracker_destroy(t);
    return 0;
}
