/* Fuzz target: the UVC descriptor parser (capture/uvc_descriptors.c) on arbitrary bytes
 * taken as a configuration descriptor. Any input must parse or fail with a status and a
 * message, never crash or read out of bounds; what parses must keep the parser's promises
 * (indices in range, frames inside their format, intervals non-zero), and the negotiation
 * arithmetic that follows (mode choice, alternate setting, probe bytes) must hold on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../capture/uvc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_uvc_descriptor_set set;
    km_clear_error();
    km_status st = km_uvc_parse_config(data, size, &set);
    if (st != KM_OK) {
        if (km_last_error()[0] == '\0')
            abort();
        return 0;
    }
    if (set.stream_count < 1 || set.stream_count > KM_UVC_MAX_STREAMS ||
        set.format_count > KM_UVC_MAX_FORMATS || set.frame_count > KM_UVC_MAX_FRAMES ||
        set.alt_count > KM_UVC_MAX_ALTS || set.unit_count > KM_UVC_MAX_UNITS)
        abort();
    for (int i = 0; i < set.format_count; i++) {
        const km_uvc_format_desc *f = &set.formats[i];
        if (f->first_frame < 0 || f->first_frame + f->frame_count > set.frame_count ||
            f->stream < 0 || f->stream >= set.stream_count)
            abort();
        for (int j = f->first_frame; j < f->first_frame + f->frame_count; j++) {
            const km_uvc_frame_desc *fr = &set.frames[j];
            if (fr->width == 0 || fr->height == 0)
                abort();
            if (fr->interval_count > KM_UVC_MAX_INTERVALS)
                abort();
            for (int k = 0; k < fr->interval_count; k++)
                if (fr->intervals[k] == 0)
                    abort();
            if (fr->continuous && (fr->min_interval == 0 || fr->min_interval > fr->max_interval))
                abort();
            (void)km_uvc_frame_bytes(f, fr);
        }
    }
    /* negotiation on what parsed */
    km_uvc_request any = {KM_PIXEL_FORMAT_COUNT, 0, 0, 0};
    km_uvc_choice c;
    if (km_uvc_choose(&set, &any, &c) == KM_OK) {
        if (c.format < 0 || c.format >= set.format_count || c.frame < 0 ||
            c.frame >= set.frame_count || c.interval == 0)
            abort();
        km_uvc_request fast = {set.formats[c.format].pixel_format, set.frames[c.frame].width,
                               set.frames[c.frame].height, 1000};
        if (km_uvc_choose(&set, &fast, &c) != KM_OK)
            abort();
        km_uvc_probe p = {.hint = 1, .format_index = set.formats[c.format].index,
                          .frame_index = set.frames[c.frame].index, .frame_interval = c.interval};
        uint8_t buf[48];
        size_t n = km_uvc_probe_pack(&p, set.bcd_uvc, buf, sizeof buf);
        km_uvc_probe q;
        if (n < 26 || km_uvc_probe_unpack(buf, n, &q) != KM_OK ||
            q.frame_interval != c.interval || q.format_index != p.format_index)
            abort();
        int alt;
        uint32_t need = size > 0 ? (uint32_t)data[size - 1] * 16u : 0;
        for (int speed = KM_USB_SPEED_FULL; speed <= KM_USB_SPEED_SUPER; speed++)
            if (km_uvc_select_alt(&set, set.formats[c.format].stream, need, speed, &alt) ==
                    KM_OK &&
                (alt < 0 || alt >= set.alt_count || set.alts[alt].bytes_per_interval < need))
                abort();
    }
    return 0;
}
