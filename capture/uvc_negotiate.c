/* UVC stream negotiation, the pure part: the probe/commit structure (UVC 1.5 4.3.1.1), the
 * choice of format, frame size and frame interval from what the descriptors offer, the
 * alternate setting that carries the committed payload size, and the bandwidth budget of
 * each bus. uvc.c sends the bytes; everything here is arithmetic that tests check exactly. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "uvc.h"

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

size_t km_uvc_probe_size(uint16_t bcd_uvc)
{
    if (bcd_uvc >= 0x0150)
        return 48;
    if (bcd_uvc >= 0x0110)
        return 34;
    return 26;
}

size_t km_uvc_probe_pack(const km_uvc_probe *p, uint16_t bcd_uvc, uint8_t *out, size_t capacity)
{
    size_t n = km_uvc_probe_size(bcd_uvc);
    if (!p || !out || capacity < n)
        return 0;
    memset(out, 0, n);
    wr16(out + 0, p->hint);
    out[2] = p->format_index;
    out[3] = p->frame_index;
    wr32(out + 4, p->frame_interval);
    wr16(out + 8, p->key_frame_rate);
    wr16(out + 10, p->p_frame_rate);
    wr16(out + 12, p->comp_quality);
    wr16(out + 14, p->comp_window_size);
    wr16(out + 16, p->delay_ms);
    wr32(out + 18, p->max_video_frame_size);
    wr32(out + 22, p->max_payload_transfer_size);
    if (n >= 34) {
        wr32(out + 26, p->clock_frequency);
        out[30] = p->framing_info;
        out[31] = p->preferred_version;
        out[32] = p->min_version;
        out[33] = p->max_version;
    }
    if (n >= 48) {
        out[34] = p->usage;
        out[35] = p->bit_depth_luma;
        out[36] = p->settings;
        out[37] = p->max_number_of_ref_frames_plus1;
        wr16(out + 38, p->rate_control_modes);
        for (int i = 0; i < 8; i++)
            out[40 + i] = (uint8_t)(p->layout_per_stream >> (8 * i));
    }
    return n;
}

km_status km_uvc_probe_unpack(const uint8_t *d, size_t size, km_uvc_probe *p)
{
    if (!d || !p)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc probe: NULL");
    memset(p, 0, sizeof *p);
    if (size < 26)
        return km_error(KM_ERR_FORMAT, "uvc probe: %zu bytes (at least 26)", size);
    p->hint = rd16(d);
    p->format_index = d[2];
    p->frame_index = d[3];
    p->frame_interval = rd32(d + 4);
    p->key_frame_rate = rd16(d + 8);
    p->p_frame_rate = rd16(d + 10);
    p->comp_quality = rd16(d + 12);
    p->comp_window_size = rd16(d + 14);
    p->delay_ms = rd16(d + 16);
    p->max_video_frame_size = rd32(d + 18);
    p->max_payload_transfer_size = rd32(d + 22);
    if (size >= 34) {
        p->clock_frequency = rd32(d + 26);
        p->framing_info = d[30];
        p->preferred_version = d[31];
        p->min_version = d[32];
        p->max_version = d[33];
    }
    if (size >= 48) {
        p->usage = d[34];
        p->bit_depth_luma = d[35];
        p->settings = d[36];
        p->max_number_of_ref_frames_plus1 = d[37];
        p->rate_control_modes = rd16(d + 38);
        for (int i = 0; i < 8; i++)
            p->layout_per_stream |= (uint64_t)d[40 + i] << (8 * i);
    }
    return KM_OK;
}

/* Interval (100 ns) of the frame nearest `want` among those it supports. */
static uint32_t nearest_interval(const km_uvc_frame_desc *f, uint32_t want)
{
    if (want == 0)
        return f->default_interval ? f->default_interval
               : f->continuous     ? f->min_interval
               : f->interval_count ? f->intervals[0]
                                   : 0;
    if (f->continuous) {
        uint32_t v = want < f->min_interval ? f->min_interval
                     : want > f->max_interval ? f->max_interval : want;
        if (f->step_interval > 0) {
            uint64_t k = ((uint64_t)(v - f->min_interval) + f->step_interval / 2) /
                         f->step_interval;
            uint64_t snapped = f->min_interval + k * f->step_interval;
            if (snapped > f->max_interval)
                snapped -= f->step_interval;
            v = (uint32_t)snapped;
        }
        return v;
    }
    uint32_t best = 0;
    uint64_t best_err = UINT64_MAX;
    for (int i = 0; i < f->interval_count; i++) {
        uint32_t iv = f->intervals[i];
        uint64_t err = iv > want ? iv - want : want - iv;
        if (err < best_err) {
            best_err = err;
            best = iv;
        }
    }
    return best;
}

static int format_rank(km_pixel_format pf)
{
    switch (pf) {
    case KM_PIXEL_GRAY8: return 0;
    case KM_PIXEL_GRAY16: return 1;
    case KM_PIXEL_YUYV: return 2;
    case KM_PIXEL_MJPEG: return 3;
    default: return 99;
    }
}

km_status km_uvc_choose(const km_uvc_descriptor_set *s, const km_uvc_request *r,
                        km_uvc_choice *c)
{
    if (!s || !r || !c)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: NULL argument to choose");
    /* Formats in order of preference. */
    int order[KM_UVC_MAX_FORMATS];
    int n = 0;
    for (int rank = 0; rank < 4; rank++)
        for (int i = 0; i < s->format_count; i++) {
            km_pixel_format pf = s->formats[i].pixel_format;
            if (format_rank(pf) != rank)
                continue;
            if (r->format != KM_PIXEL_FORMAT_COUNT && pf != r->format)
                continue;
            order[n++] = i;
        }
    for (int k = 0; k < n; k++) {
        const km_uvc_format_desc *f = &s->formats[order[k]];
        int pick = -1;
        for (int j = f->first_frame; j < f->first_frame + f->frame_count; j++) {
            const km_uvc_frame_desc *fr = &s->frames[j];
            if (r->width > 0 || r->height > 0) {
                if (fr->width == r->width && fr->height == r->height) {
                    pick = j;
                    break;
                }
            } else if (fr->index == f->default_frame_index || pick < 0) {
                pick = j;
                if (fr->index == f->default_frame_index)
                    break;
            }
        }
        if (pick < 0)
            continue;
        uint32_t want = r->rate_hz > 0 ? (uint32_t)llround(1e7 / r->rate_hz) : 0;
        uint32_t iv = nearest_interval(&s->frames[pick], want);
        if (iv == 0)
            continue;
        c->format = order[k];
        c->frame = pick;
        c->interval = iv;
        return KM_OK;
    }
    /* Nothing: say what there is. */
    char list[400];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < s->format_count && used < sizeof list - 40; i++) {
        const km_uvc_format_desc *f = &s->formats[i];
        for (int j = f->first_frame; j < f->first_frame + f->frame_count &&
                                     used < sizeof list - 40; j++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s %ux%u", used ? ", " : "",
                             f->fourcc, s->frames[j].width, s->frames[j].height);
            if (w > 0)
                used += (size_t)w;
        }
    }
    return km_error(KM_ERR_UNSUPPORTED,
                    "uvc: no mode %s %dx%d (the camera offers: %s)",
                    r->format == KM_PIXEL_FORMAT_COUNT ? "of a usable format"
                    : r->format == KM_PIXEL_GRAY8      ? "GRAY8"
                    : r->format == KM_PIXEL_GRAY16     ? "GRAY16"
                    : r->format == KM_PIXEL_YUYV       ? "YUYV"
                    : r->format == KM_PIXEL_MJPEG      ? "MJPEG"
                                                       : "(unsupported format)",
                    r->width, r->height, list[0] ? list : "nothing usable");
}

uint32_t km_usb_periodic_capacity(int speed)
{
    switch (speed) {
    case KM_USB_SPEED_LOW:
    case KM_USB_SPEED_FULL:
        return 1350;   /* 90% of 1500 bytes per 1 ms frame */
    case KM_USB_SPEED_HIGH:
        return 6000;   /* 80% of 7500 bytes per 125 us microframe */
    case KM_USB_SPEED_SUPER:
        return 56250;  /* 90% of 62500 bytes per 125 us (5 Gb/s, 8b/10b) */
    case KM_USB_SPEED_SUPER_PLUS:
        return 136363; /* 90% of ~151515 bytes per 125 us (10 Gb/s, 128b/132b) */
    default:
        return 6000;   /* unknown: assume high speed */
    }
}

static const char *frame_unit(int speed)
{
    return speed <= KM_USB_SPEED_FULL && speed > 0 ? "frame" : "microframe";
}

uint32_t km_uvc_alt_bytes_per_frame(const km_uvc_alt_desc *a, int speed)
{
    if (!a || a->transfer_type != 1)
        return 0;
    uint32_t period = 1;
    if (speed >= KM_USB_SPEED_HIGH || speed <= 0) {
        unsigned e = a->interval ? a->interval - 1u : 0u;
        period = e > 15 ? 1u << 15 : 1u << e;
    } else {
        period = a->interval ? a->interval : 1;
    }
    return (a->bytes_per_interval + period - 1) / period;
}

km_status km_uvc_select_alt(const km_uvc_descriptor_set *s, int stream, uint32_t payload_bytes,
                            int speed, int *alt_index)
{
    if (!s || !alt_index || stream < 0 || stream >= s->stream_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: bad stream for alternate setting");
    const km_uvc_stream_desc *st = &s->streams[stream];
    int best = -1;
    uint32_t best_bw = UINT32_MAX, largest = 0, largest_payload = 0;
    for (int i = st->alt_first; i < st->alt_first + st->alt_count; i++) {
        const km_uvc_alt_desc *a = &s->alts[i];
        if (a->transfer_type != 1 || a->alt == 0)
            continue;
        uint32_t bw = km_uvc_alt_bytes_per_frame(a, speed);
        if (bw > largest) {
            largest = bw;
            largest_payload = a->bytes_per_interval;
        }
        if (a->bytes_per_interval >= payload_bytes && bw < best_bw) {
            best = i;
            best_bw = bw;
        }
    }
    if (best < 0)
        return km_error(KM_ERR_UNSUPPORTED,
                        "uvc: the mode needs %u bytes per %s (dwMaxPayloadTransferSize) but the "
                        "largest isochronous alternate setting of interface %u carries %u "
                        "(%u bytes per %s available): choose a smaller size, rate or a "
                        "compressed format",
                        payload_bytes, frame_unit(speed), st->interface_number, largest_payload,
                        largest, frame_unit(speed));
    *alt_index = best;
    return KM_OK;
}

void km_uvc_bus_budget_init(km_uvc_bus_budget *b)
{
    if (b)
        memset(b, 0, sizeof *b);
}

static int budget_find(km_uvc_bus_budget *b, uint8_t bus, int speed, bool create)
{
    /* Full/low-speed and high-speed devices are budgeted separately: a USB 2 bus serves
     * full-speed devices through transaction translators in 1 ms frames. */
    bool slow = speed > 0 && speed <= KM_USB_SPEED_FULL;
    for (int i = 0; i < b->bus_count; i++) {
        bool islow = b->buses[i].speed > 0 && b->buses[i].speed <= KM_USB_SPEED_FULL;
        if (b->buses[i].bus == bus && islow == slow)
            return i;
    }
    if (!create || b->bus_count >= KM_UVC_MAX_BUSES)
        return -1;
    int i = b->bus_count++;
    b->buses[i].bus = bus;
    b->buses[i].speed = speed;
    b->buses[i].used = 0;
    b->buses[i].streams = 0;
    return i;
}

km_status km_uvc_bus_budget_reserve(km_uvc_bus_budget *b, uint8_t bus, int speed,
                                    uint32_t bytes)
{
    if (!b)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: NULL bus budget");
    int i = budget_find(b, bus, speed, true);
    if (i < 0)
        return km_error(KM_ERR_CAPACITY, "uvc: more than %d buses in the bandwidth budget",
                        KM_UVC_MAX_BUSES);
    uint32_t cap = km_usb_periodic_capacity(speed);
    uint32_t used = b->buses[i].used;
    if (bytes > cap || used > cap - bytes)
        return km_error(KM_ERR_UNSUPPORTED,
                        "uvc: bus %u cannot carry another stream: it needs %u bytes per %s, "
                        "%u of %u are available (%u booked by %d other stream%s)",
                        bus, bytes, frame_unit(speed), cap - (used < cap ? used : cap), cap, used,
                        b->buses[i].streams, b->buses[i].streams == 1 ? "" : "s");
    b->buses[i].used += bytes;
    b->buses[i].streams++;
    return KM_OK;
}

void km_uvc_bus_budget_release(km_uvc_bus_budget *b, uint8_t bus, int speed, uint32_t bytes)
{
    if (!b)
        return;
    int i = budget_find(b, bus, speed, false);
    if (i < 0)
        return;
    b->buses[i].used = b->buses[i].used > bytes ? b->buses[i].used - bytes : 0;
    if (b->buses[i].streams > 0)
        b->buses[i].streams--;
}
