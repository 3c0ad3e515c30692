/* Fuzz target: the C3D reader (skeleton/c3d.c) on arbitrary bytes: no crash, a clear error
 * (KM_ERR_FORMAT with a message) or a file whose arrays are all readable; what it accepts
 * is written back (when the writer can hold it) and read again with the same data. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/skeleton.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    km_log_set_level(KM_LOG_ERROR); /* unknown units are warned about */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_c3d c;
    km_status st = km_c3d_parse(data, size, "fuzz.c3d", &c);
    if (st != KM_OK) {
        if ((st != KM_ERR_FORMAT && st != KM_ERR_NO_MEMORY) || km_last_error()[0] == '\0' ||
            c.pos != NULL || c.parameters != NULL)
            abort();
        return 0;
    }
    if (c.point_count < 0 || c.frame_count < 0 || c.units_to_m <= 0)
        abort();
    size_t n = (size_t)c.point_count * (size_t)c.frame_count;
    double sum = 0;
    for (size_t k = 0; k < n; k++) {
        sum += c.residual[k] + c.camera_mask[k];
        if (c.residual[k] >= 0)
            sum += c.pos[k * 3] + c.pos[k * 3 + 1] + c.pos[k * 3 + 2];
    }
    for (int p = 0; p < c.point_count; p++)
        if (strnlen(c.labels[p], KM_C3D_LABEL_MAX) >= KM_C3D_LABEL_MAX)
            abort();
    for (int i = 0; i < c.parameter_count; i++) {
        const km_c3d_parameter *p = &c.parameters[i];
        if (p->element_count < 0 || !p->data)
            abort();
        char s[64];
        for (int e = 0; e < p->element_count && e < 16; e++) {
            sum += km_c3d_parameter_number(p, e);
            km_c3d_parameter_string(p, e, s, sizeof s);
        }
    }
    (void)sum;
    km_marker items[64];
    km_marker_set ms = {0, 0, 0, 64, items};
    if (c.frame_count > 0)
        km_c3d_frame_markers(&c, 0, NULL, &ms);
    /* round trip through the writer (float storage keeps every finite value) */
    uint8_t *out;
    size_t out_size;
    if (c.point_count <= 32767 && c.frame_count <= 65534 && n <= 100000) {
        c.scale = -1.0;
        for (size_t k = 0; k < n * 3; k++)
            if (!isfinite(c.pos[k]) || fabs(c.pos[k]) > 1e30)
                c.pos[k] = 0;
        if (km_c3d_write_memory(&c, &out, &out_size) != KM_OK) {
            /* The one refusal a parsed file may get: a file can declare thousands of points
             * without labels, and the labels the writer gives them do not fit C3D's parameter
             * section (255 blocks of 512 bytes: its size is one header byte). */
            if (strstr(km_last_error(), "parameter section too large") == NULL)
                abort();
        } else {
            km_c3d back;
            if (km_c3d_parse(out, out_size, "back.c3d", &back) != KM_OK)
                abort();
            if (back.point_count != c.point_count || back.frame_count != c.frame_count)
                abort();
            for (size_t k = 0; k < n; k++)
                if ((back.residual[k] < 0) != (c.residual[k] < 0 || !isfinite(c.residual[k])))
                    abort();
            km_c3d_free(&back);
            free(out);
        }
    }
    km_c3d_free(&c);
    return 0;
}
