/* UVC descriptor parsing: the bytes of a configuration descriptor -> km_uvc_descriptor_set.
 *
 * A configuration is a chain of descriptors, each starting with bLength and bDescriptorType.
 * Interface descriptors switch the context: class-specific (CS_INTERFACE) descriptors that
 * follow a VideoControl interface describe terminals and units (UVC 1.5 3.7), those that follow
 * the alternate setting 0 of a VideoStreaming interface describe formats and frames (3.9), and
 * the endpoint of each later alternate setting gives the isochronous bandwidth it reserves.
 * Every field is read only after checking it lies inside its descriptor, and every
 * descriptor inside the buffer; the first inconsistency is reported with its byte offset. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uvc.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

#define FAIL(off, ...) fail_at((off), __VA_ARGS__)

static km_status fail_at(size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static km_status fail_at(size_t offset, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return km_error(KM_ERR_FORMAT, "uvc descriptors: offset %zu: %s", offset, msg);
}

km_pixel_format km_uvc_guid_pixel_format(const uint8_t guid[16])
{
    /* Uncompressed formats use the Microsoft media-subtype GUIDs: the FOURCC in the first
     * four bytes followed by 00000010-8000-00aa00389b71 (UVC 1.5 uncompressed payload 2.1). */
    static const uint8_t tail[12] = {0x00, 0x00, 0x10, 0x00, 0x80, 0x00,
                                     0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};
    if (memcmp(guid + 4, tail, sizeof tail) != 0)
        return KM_PIXEL_FORMAT_COUNT;
    if (!memcmp(guid, "YUY2", 4) || !memcmp(guid, "YUYV", 4))
        return KM_PIXEL_YUYV;
    if (!memcmp(guid, "Y800", 4) || !memcmp(guid, "GREY", 4) || !memcmp(guid, "Y8  ", 4) ||
        !memcmp(guid, "Y8\0\0", 4))
        return KM_PIXEL_GRAY8;
    if (!memcmp(guid, "Y16 ", 4) || !memcmp(guid, "Y16\0", 4))
        return KM_PIXEL_GRAY16;
    return KM_PIXEL_FORMAT_COUNT;
}

size_t km_uvc_frame_bytes(const km_uvc_format_desc *format, const km_uvc_frame_desc *frame)
{
    if (!format || !frame)
        return 0;
    if (format->kind == KM_UVC_FORMAT_UNCOMPRESSED)
        return (size_t)frame->width * frame->height * format->bits_per_pixel / 8;
    if (frame->max_frame_bytes)
        return frame->max_frame_bytes;
    return (size_t)frame->width * frame->height * 2;
}

static void set_fourcc(km_uvc_format_desc *f)
{
    bool printable = true;
    for (int i = 0; i < 4; i++)
        if (f->guid[i] < 0x20 || f->guid[i] > 0x7e)
            printable = false;
    if (printable)
        memcpy(f->fourcc, f->guid, 4);
    else
        memcpy(f->fourcc, "????", 4);
    f->fourcc[4] = '\0';
}

/* Parser state while walking the chain. */
typedef struct walk {
    km_uvc_descriptor_set *set;
    bool in_video;               /* inside the first video function's interfaces */
    bool video_done;             /* a second VideoControl interface ends the first function */
    int iface_class, iface_subclass, iface_number, iface_alt;
    int stream;                  /* current VideoStreaming interface (index), -1 none */
    int format;                  /* current format (index), -1 none */
    int alt;                     /* last alt recorded for an endpoint, -1 none */
    bool vc_header_seen;
} walk;

static km_status vc_descriptor(walk *w, const uint8_t *d, size_t len, size_t off)
{
    km_uvc_descriptor_set *s = w->set;
    uint8_t subtype = d[2];
    if (subtype == KM_UVC_VC_HEADER) {
        if (len < 12)
            return FAIL(off, "VC header of %zu bytes (at least 12)", len);
        size_t n = d[11];
        if (12 + n > len)
            return FAIL(off, "VC header lists %zu interfaces in %zu bytes", n, len);
        s->bcd_uvc = rd16(d + 3);
        s->clock_hz = rd32(d + 7);
        if (s->bcd_uvc < 0x0100)
            return FAIL(off, "bcdUVC %x.%02x is not a UVC version", s->bcd_uvc >> 8,
                        s->bcd_uvc & 0xff);
        w->vc_header_seen = true;
        return KM_OK;
    }
    if (subtype != KM_UVC_VC_INPUT_TERMINAL && subtype != KM_UVC_VC_OUTPUT_TERMINAL &&
        subtype != KM_UVC_VC_SELECTOR_UNIT && subtype != KM_UVC_VC_PROCESSING_UNIT &&
        subtype != KM_UVC_VC_EXTENSION_UNIT && subtype != KM_UVC_VC_ENCODING_UNIT)
        return KM_OK; /* unknown subtypes are skipped (length already checked) */
    if (len < 4)
        return FAIL(off, "VC unit of %zu bytes", len);
    if (s->unit_count >= KM_UVC_MAX_UNITS)
        return km_error(KM_ERR_CAPACITY, "uvc descriptors: offset %zu: more than %d units",
                        off, KM_UVC_MAX_UNITS);
    km_uvc_unit_desc *u = &s->units[s->unit_count];
    memset(u, 0, sizeof *u);
    u->subtype = subtype;
    u->id = d[3];
    if (u->id == 0)
        return FAIL(off, "unit/terminal id 0 is reserved");
    size_t mask_at = 0;
    switch (subtype) {
    case KM_UVC_VC_INPUT_TERMINAL:
        if (len < 8)
            return FAIL(off, "input terminal of %zu bytes (at least 8)", len);
        u->terminal_type = rd16(d + 4);
        if (u->terminal_type == KM_UVC_ITT_CAMERA) {
            if (len < 15)
                return FAIL(off, "camera terminal of %zu bytes (at least 15)", len);
            u->control_size = d[14];
            mask_at = 15;
        }
        break;
    case KM_UVC_VC_OUTPUT_TERMINAL:
        if (len < 9)
            return FAIL(off, "output terminal of %zu bytes (at least 9)", len);
        u->terminal_type = rd16(d + 4);
        u->source_id = d[7];
        break;
    case KM_UVC_VC_SELECTOR_UNIT:
        if (len < 5 || 5 + (size_t)d[4] > len)
            return FAIL(off, "selector unit of %zu bytes", len);
        u->source_id = d[4] ? d[5] : 0;
        break;
    case KM_UVC_VC_PROCESSING_UNIT:
        if (len < 8)
            return FAIL(off, "processing unit of %zu bytes (at least 8)", len);
        u->source_id = d[4];
        u->control_size = d[7];
        mask_at = 8;
        break;
    case KM_UVC_VC_EXTENSION_UNIT: {
        if (len < 24)
            return FAIL(off, "extension unit of %zu bytes (at least 24)", len);
        memcpy(u->guid, d + 4, 16);
        size_t pins = d[21];
        if (22 + pins + 1 > len)
            return FAIL(off, "extension unit lists %zu sources in %zu bytes", pins, len);
        u->source_id = pins ? d[22] : 0;
        u->control_size = d[22 + pins];
        mask_at = 23 + pins;
        break;
    }
    case KM_UVC_VC_ENCODING_UNIT:
        if (len < 7)
            return FAIL(off, "encoding unit of %zu bytes (at least 7)", len);
        u->source_id = d[4];
        u->control_size = d[6];
        mask_at = 7;
        break;
    default:
        break;
    }
    if (mask_at) {
        if (mask_at + u->control_size > len)
            return FAIL(off, "bmControls of %u bytes past the end of a %zu-byte unit",
                        u->control_size, len);
        for (size_t i = 0; i < u->control_size && i < 4; i++)
            u->controls |= (uint32_t)d[mask_at + i] << (8 * i);
    }
    for (int i = 0; i < s->unit_count; i++)
        if (s->units[i].id == u->id)
            return FAIL(off, "unit/terminal id %u used twice", u->id);
    if (subtype == KM_UVC_VC_INPUT_TERMINAL && u->terminal_type == KM_UVC_ITT_CAMERA &&
        s->camera_terminal < 0)
        s->camera_terminal = s->unit_count;
    if (subtype == KM_UVC_VC_PROCESSING_UNIT && s->processing_unit < 0)
        s->processing_unit = s->unit_count;
    s->unit_count++;
    return KM_OK;
}

/* bFrameIntervalType at type_at, the intervals from data_at (frame-based frames have
 * dwBytesPerLine in between). */
static km_status read_intervals(km_uvc_frame_desc *f, const uint8_t *d, size_t len,
                                size_t type_at, size_t at, size_t off)
{
    uint8_t type = d[type_at];
    at--; /* the code below reads from at + 1 */
    if (type == 0) {
        if (at + 1 + 12 > len)
            return FAIL(off, "continuous frame intervals past the end of a %zu-byte frame", len);
        f->continuous = true;
        f->min_interval = rd32(d + at + 1);
        f->max_interval = rd32(d + at + 5);
        f->step_interval = rd32(d + at + 9);
        if (f->min_interval == 0 || f->min_interval > f->max_interval)
            return FAIL(off, "frame interval range %u..%u", f->min_interval, f->max_interval);
        return KM_OK;
    }
    if (at + 1 + 4 * (size_t)type > len)
        return FAIL(off, "%u frame intervals past the end of a %zu-byte frame", type, len);
    for (size_t i = 0; i < type; i++) {
        uint32_t iv = rd32(d + at + 1 + 4 * i);
        if (iv == 0)
            return FAIL(off, "frame interval %zu is 0", i);
        if (f->interval_count < KM_UVC_MAX_INTERVALS)
            f->intervals[f->interval_count++] = iv;
        else
            f->intervals_truncated = true;
    }
    return KM_OK;
}

static km_status vs_descriptor(walk *w, const uint8_t *d, size_t len, size_t off)
{
    km_uvc_descriptor_set *s = w->set;
    uint8_t subtype = d[2];
    if (subtype == KM_UVC_VS_INPUT_HEADER) {
        if (len < 13)
            return FAIL(off, "VS input header of %zu bytes (at least 13)", len);
        size_t nformats = d[3], csize = d[12];
        if (13 + nformats * csize > len)
            return FAIL(off, "VS input header controls past the end (%zu formats x %zu bytes)",
                        nformats, csize);
        if (s->stream_count >= KM_UVC_MAX_STREAMS)
            return km_error(KM_ERR_CAPACITY,
                            "uvc descriptors: offset %zu: more than %d streaming interfaces", off,
                            KM_UVC_MAX_STREAMS);
        km_uvc_stream_desc *st = &s->streams[s->stream_count];
        memset(st, 0, sizeof *st);
        st->interface_number = (uint8_t)w->iface_number;
        st->endpoint_address = d[6];
        st->terminal_link = d[8];
        st->still_capture_method = d[9];
        st->format_first = s->format_count;
        st->alt_first = s->alt_count;
        w->stream = s->stream_count++;
        w->format = -1;
        return KM_OK;
    }
    if (subtype == KM_UVC_VS_OUTPUT_HEADER)
        return KM_OK; /* output (display) streams are not ours */
    if (subtype == KM_UVC_VS_STILL_IMAGE_FRAME)
        return KM_OK; /* still images are not used */
    if (subtype == KM_UVC_VS_FORMAT_UNCOMPRESSED || subtype == KM_UVC_VS_FORMAT_MJPEG ||
        subtype == KM_UVC_VS_FORMAT_FRAME_BASED) {
        if (w->stream < 0)
            return FAIL(off, "format before the VS input header");
        size_t need = subtype == KM_UVC_VS_FORMAT_MJPEG ? 11
                      : subtype == KM_UVC_VS_FORMAT_UNCOMPRESSED ? 27 : 28;
        if (len < need)
            return FAIL(off, "format descriptor of %zu bytes (at least %zu)", len, need);
        if (s->format_count >= KM_UVC_MAX_FORMATS)
            return km_error(KM_ERR_CAPACITY, "uvc descriptors: offset %zu: more than %d formats",
                            off, KM_UVC_MAX_FORMATS);
        km_uvc_format_desc *f = &s->formats[s->format_count];
        memset(f, 0, sizeof *f);
        f->index = d[3];
        f->declared_frames = d[4];
        f->stream = w->stream;
        f->first_frame = s->frame_count;
        if (f->index == 0)
            return FAIL(off, "bFormatIndex 0");
        for (int i = s->streams[w->stream].format_first; i < s->format_count; i++)
            if (s->formats[i].index == f->index)
                return FAIL(off, "bFormatIndex %u used twice", f->index);
        if (subtype == KM_UVC_VS_FORMAT_MJPEG) {
            f->kind = KM_UVC_FORMAT_MJPEG;
            f->flags = d[5];
            f->default_frame_index = d[6];
            f->interlace_flags = d[9];
            memcpy(f->fourcc, "MJPG", 5);
            f->pixel_format = KM_PIXEL_MJPEG;
        } else {
            f->kind = subtype == KM_UVC_VS_FORMAT_UNCOMPRESSED ? KM_UVC_FORMAT_UNCOMPRESSED
                                                               : KM_UVC_FORMAT_FRAME_BASED;
            memcpy(f->guid, d + 5, 16);
            f->bits_per_pixel = d[21];
            f->default_frame_index = d[22];
            f->interlace_flags = d[25];
            if (subtype == KM_UVC_VS_FORMAT_FRAME_BASED)
                f->flags = d[27];
            set_fourcc(f);
            f->pixel_format = f->kind == KM_UVC_FORMAT_UNCOMPRESSED
                                  ? km_uvc_guid_pixel_format(f->guid)
                                  : KM_PIXEL_FORMAT_COUNT;
            if (f->kind == KM_UVC_FORMAT_UNCOMPRESSED && f->bits_per_pixel == 0)
                return FAIL(off, "uncompressed format with 0 bits per pixel");
        }
        w->format = s->format_count++;
        s->streams[w->stream].format_count++;
        return KM_OK;
    }
    if (subtype == KM_UVC_VS_FRAME_UNCOMPRESSED || subtype == KM_UVC_VS_FRAME_MJPEG ||
        subtype == KM_UVC_VS_FRAME_FRAME_BASED) {
        if (w->format < 0)
            return FAIL(off, "frame descriptor without a format before it");
        km_uvc_format_desc *fmt = &s->formats[w->format];
        bool frame_based = subtype == KM_UVC_VS_FRAME_FRAME_BASED;
        bool matches = frame_based ? fmt->kind == KM_UVC_FORMAT_FRAME_BASED
                       : subtype == KM_UVC_VS_FRAME_MJPEG ? fmt->kind == KM_UVC_FORMAT_MJPEG
                                                           : fmt->kind == KM_UVC_FORMAT_UNCOMPRESSED;
        if (!matches)
            return FAIL(off, "frame subtype %u does not belong to format %u", subtype,
                        fmt->index);
        if (len < 26)
            return FAIL(off, "frame descriptor of %zu bytes (at least 26)", len);
        if (s->frame_count >= KM_UVC_MAX_FRAMES)
            return km_error(KM_ERR_CAPACITY, "uvc descriptors: offset %zu: more than %d frames",
                            off, KM_UVC_MAX_FRAMES);
        km_uvc_frame_desc *f = &s->frames[s->frame_count];
        memset(f, 0, sizeof *f);
        f->index = d[3];
        f->capabilities = d[4];
        f->width = rd16(d + 5);
        f->height = rd16(d + 7);
        f->min_bit_rate = rd32(d + 9);
        f->max_bit_rate = rd32(d + 13);
        size_t type_at, at;
        if (frame_based) {
            f->default_interval = rd32(d + 17);
            f->bytes_per_line = rd32(d + 22);
            type_at = 21;
            at = 26;
        } else {
            f->max_frame_bytes = rd32(d + 17);
            f->default_interval = rd32(d + 21);
            type_at = 25;
            at = 26;
        }
        if (f->index == 0)
            return FAIL(off, "bFrameIndex 0");
        if (f->width == 0 || f->height == 0)
            return FAIL(off, "frame of %ux%u pixels", f->width, f->height);
        km_status st = read_intervals(f, d, len, type_at, at, off);
        if (st)
            return st;
        for (int i = fmt->first_frame; i < fmt->first_frame + fmt->frame_count; i++)
            if (s->frames[i].index == f->index)
                return FAIL(off, "bFrameIndex %u used twice in format %u", f->index,
                            fmt->index);
        s->frame_count++;
        fmt->frame_count++;
        return KM_OK;
    }
    if (subtype == KM_UVC_VS_COLORFORMAT) {
        if (len < 6)
            return FAIL(off, "color matching descriptor of %zu bytes (at least 6)", len);
        if (w->format >= 0) {
            km_uvc_format_desc *f = &s->formats[w->format];
            f->has_color = true;
            f->color_primaries = d[3];
            f->transfer_characteristics = d[4];
            f->matrix_coefficients = d[5];
        }
        return KM_OK;
    }
    return KM_OK; /* other subtypes (stream-based formats, ...) skipped */
}

static km_status endpoint(walk *w, const uint8_t *d, size_t len, size_t off)
{
    km_uvc_descriptor_set *s = w->set;
    if (len < 7)
        return FAIL(off, "endpoint descriptor of %zu bytes (at least 7)", len);
    w->alt = -1;
    if (w->iface_subclass != KM_UVC_SC_VIDEOSTREAMING || w->stream < 0)
        return KM_OK;
    km_uvc_stream_desc *st = &s->streams[w->stream];
    if (st->interface_number != w->iface_number)
        return KM_OK;
    uint8_t type = d[3] & 3;
    if (type != 1 && type != 2)
        return KM_OK;
    if (!(d[2] & 0x80))
        return KM_OK; /* OUT endpoints are not for video input */
    if (s->alt_count >= KM_UVC_MAX_ALTS)
        return km_error(KM_ERR_CAPACITY,
                        "uvc descriptors: offset %zu: more than %d alternate settings", off,
                        KM_UVC_MAX_ALTS);
    km_uvc_alt_desc *a = &s->alts[s->alt_count];
    memset(a, 0, sizeof *a);
    a->interface_number = (uint8_t)w->iface_number;
    a->alt = (uint8_t)w->iface_alt;
    a->endpoint = d[2];
    a->transfer_type = type;
    a->max_packet_raw = rd16(d + 4);
    a->interval = d[6];
    uint32_t size = a->max_packet_raw & 0x7ff;
    uint32_t extra = (a->max_packet_raw >> 11) & 3;
    if (type == 1 && extra == 3)
        return FAIL(off, "wMaxPacketSize 0x%04x: reserved transactions-per-microframe value",
                    a->max_packet_raw);
    a->bytes_per_interval = size * (type == 1 ? 1 + extra : 1);
    if (type == 1 && a->interval == 0)
        return FAIL(off, "isochronous endpoint with bInterval 0");
    if (type == 2 && w->iface_alt == 0)
        st->bulk = true;
    w->alt = s->alt_count++;
    st->alt_count++;
    return KM_OK;
}

km_status km_uvc_parse_config(const uint8_t *data, size_t size, km_uvc_descriptor_set *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc descriptors: NULL output");
    memset(out, 0, sizeof *out);
    out->camera_terminal = -1;
    out->processing_unit = -1;
    if (!data || size < 9)
        return FAIL(0, "%zu bytes, too short for a configuration descriptor", size);
    if (data[1] != KM_USB_DT_CONFIG)
        return FAIL(1, "descriptor type %u, expected a configuration (2)", data[1]);
    if (data[0] < 9)
        return FAIL(0, "configuration descriptor bLength %u (at least 9)", data[0]);
    size_t total = rd16(data + 2);
    if (total < data[0])
        return FAIL(2, "wTotalLength %zu shorter than the configuration descriptor", total);
    if (total > size)
        return FAIL(2, "wTotalLength %zu but only %zu bytes", total, size);
    out->configuration_value = data[5];

    walk w = {.set = out, .stream = -1, .format = -1, .alt = -1,
              .iface_class = -1, .iface_subclass = -1, .iface_number = -1};
    bool found_vc = false;
    size_t off = data[0];
    while (off < total) {
        if (total - off < 2)
            return FAIL(off, "descriptor header cut off (1 byte left)");
        size_t len = data[off];
        uint8_t type = data[off + 1];
        if (len < 2)
            return FAIL(off, "descriptor bLength %zu", len);
        if (len > total - off)
            return FAIL(off, "descriptor of %zu bytes runs past the end (%zu left)", len,
                        total - off);
        const uint8_t *d = data + off;
        km_status st = KM_OK;
        if (type == KM_USB_DT_INTERFACE) {
            if (len < 9)
                return FAIL(off, "interface descriptor of %zu bytes (at least 9)", len);
            w.iface_number = d[2];
            w.iface_alt = d[3];
            w.iface_class = d[5];
            w.iface_subclass = d[6];
            w.alt = -1;
            w.format = -1;
            if (w.iface_class == KM_UVC_CLASS_VIDEO && w.iface_subclass == KM_UVC_SC_VIDEOCONTROL) {
                if (found_vc && w.iface_alt == 0)
                    w.video_done = true; /* a second video function: keep the first */
                else if (!found_vc) {
                    found_vc = true;
                    out->control_interface = (uint8_t)w.iface_number;
                }
            }
            w.in_video = !w.video_done && w.iface_class == KM_UVC_CLASS_VIDEO;
            if (w.in_video && w.iface_subclass == KM_UVC_SC_VIDEOSTREAMING) {
                /* stream context follows the interface number */
                w.stream = -1;
                for (int i = 0; i < out->stream_count; i++)
                    if (out->streams[i].interface_number == w.iface_number)
                        w.stream = i;
                if (w.stream < 0 && w.iface_alt != 0)
                    return FAIL(off, "streaming interface %d alternate setting %d before its "
                                     "setting 0", w.iface_number, w.iface_alt);
            }
        } else if (type == KM_USB_DT_CS_INTERFACE && w.in_video) {
            if (len < 3)
                return FAIL(off, "class-specific descriptor of %zu bytes", len);
            if (w.iface_subclass == KM_UVC_SC_VIDEOCONTROL)
                st = vc_descriptor(&w, d, len, off);
            else if (w.iface_subclass == KM_UVC_SC_VIDEOSTREAMING && w.iface_alt == 0)
                st = vs_descriptor(&w, d, len, off);
        } else if (type == KM_USB_DT_ENDPOINT && w.in_video) {
            st = endpoint(&w, d, len, off);
        } else if (type == KM_USB_DT_SS_ENDPOINT_COMPANION && w.in_video) {
            if (len < 6)
                return FAIL(off, "SuperSpeed endpoint companion of %zu bytes (at least 6)", len);
            if (w.alt >= 0) {
                km_uvc_alt_desc *a = &out->alts[w.alt];
                a->superspeed_companion = true;
                uint32_t per = rd16(d + 4);
                if (per)
                    a->bytes_per_interval = per;
            }
        }
        if (st)
            return st;
        off += len;
    }
    if (!found_vc || !w.vc_header_seen)
        return km_error(KM_ERR_NOT_FOUND, "uvc descriptors: no VideoControl interface with a "
                                          "header");
    if (out->stream_count == 0)
        return km_error(KM_ERR_NOT_FOUND, "uvc descriptors: no VideoStreaming interface");
    for (int i = 0; i < out->format_count; i++) {
        const km_uvc_format_desc *f = &out->formats[i];
        if (f->frame_count != f->declared_frames)
            km_log(KM_LOG_DEBUG, "uvc", "format %u declares %d frames, has %d", f->index,
                   f->declared_frames, f->frame_count);
    }
    return KM_OK;
}
