/* Fuzz target: the BVH reader (skeleton/bvh.c) on arbitrary bytes. Any input must give a
 * skeleton or an error status with a message, never a crash or an out-of-bounds access.
 * What was accepted must keep the reader's promises (parents before children, channel
 * columns adding up, finite values), pose without error, and survive write -> read with
 * the same structure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/skeleton.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_status err;
    km_bvh *bvh = km_bvh_parse((const char *)data, size, "fuzz.bvh", &err);
    if (!bvh) {
        if (err == KM_OK || km_last_error()[0] == '\0')
            abort();
        return 0;
    }
    const int joints = km_bvh_joint_count(bvh);
    if (joints < 1 || joints > KM_BVH_MAX_JOINTS)
        abort();
    int columns = 0;
    for (int j = 0; j < joints; j++) {
        const km_bvh_joint *jt = km_bvh_joint_at(bvh, j);
        if (jt->parent >= j || (j > 0 && jt->parent < 0) || (j == 0 && jt->parent != -1))
            abort();
        if (jt->channel_count < 0 || jt->channel_count > 6 || jt->first_channel != columns)
            abort();
        columns += jt->channel_count;
    }
    if (columns != km_bvh_channel_count(bvh))
        abort();
    static km_vec3 pos[KM_BVH_MAX_JOINTS];
    static km_mat3 rot[KM_BVH_MAX_JOINTS];
    const int frames = km_bvh_frame_count(bvh);
    for (int f = 0; f < frames && f < 8; f++) {
        const double *row = km_bvh_frame(bvh, f);
        for (int c = 0; c < columns; c++)
            if (!isfinite(row[c]))
                abort();
        if (km_bvh_pose(bvh, f, 0.01, pos, rot) != KM_OK)
            abort();
    }
    (void)km_bvh_guess_scale_m(bvh);
    /* Round trip through the writer. */
    char *text = NULL;
    size_t length = 0;
    FILE *f = open_memstream(&text, &length);
    if (f) {
        if (km_bvh_write(bvh, f) != KM_OK)
            abort();
        fclose(f);
        km_bvh *again = km_bvh_parse(text, length, "fuzz-again.bvh", &err);
        if (!again || km_bvh_joint_count(again) != joints ||
            km_bvh_channel_count(again) != columns || km_bvh_frame_count(again) != frames)
            abort();
        km_bvh_destroy(again);
        free(text);
    }
    km_bvh_destroy(bvh);
    return 0;
}
