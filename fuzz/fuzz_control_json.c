/* Fuzz target: control requests (transport/control.c) and the strict JSON reader under
 * them. Any input gives KM_OK or an error, never a crash or out-of-bounds read; an
 * accepted request satisfies every documented invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_control_request r;
    if (km_control_parse_request((const char *)data, size, &r) != KM_OK)
        return 0;
    if ((unsigned)r.command >= KM_CONTROL_COMMAND_COUNT || !km_control_command_name(r.command))
        abort();
    if (!memchr(r.path, 0, sizeof r.path) || !memchr(r.name, 0, sizeof r.name))
        abort();
    if (r.command == KM_CONTROL_START_RECORDING && (!r.path[0] || !(r.duration_s >= 0)))
        abort();
    if (r.command == KM_CONTROL_DEFINE_RIGID) {
        if (r.marker_count < 3 || r.marker_count > KM_CONTROL_MAX_RIGID_MARKERS || !r.name[0])
            abort();
        for (int i = 0; i < r.marker_count; i++)
            for (int j = 0; j < i; j++)
                if (r.marker_ids[i] == r.marker_ids[j])
                    abort();
    } else if (r.marker_count != 0) {
        abort();
    }
    return 0;
}
