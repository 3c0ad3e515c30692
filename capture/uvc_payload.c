/* UVC payload reassembly (UVC 1.5 2.4.3.3 and the uncompressed/MJPEG payload specs).
 *
 * Every payload (an isochronous packet, or a bulk transfer) starts with a header: bHeaderLength,
 * bmHeaderInfo (FID, EOF, PTS, SCR, RES, STI, ERR, EOH) and, when announced, a 4-byte PTS and a
 * 6-byte SCR. A frame is the run of payloads with the same FID; it ends with the EOF bit or,
 * for devices that never set EOF, when the FID toggles. The data after each header is copied
 * straight into the caller's buffer; nothing here allocates or blocks, so it runs inside the
 * libusb transfer callback. A frame is damaged when packets were lost, a payload had the ERR
 * bit or a malformed header, or an uncompressed frame has the wrong size; damaged frames are
 * dropped or delivered flagged KM_FRAME_FLAG_INCOMPLETE as configured. Frames longer than
 * allowed are dropped without writing past the buffer. */
#include <string.h>

#include "uvc.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

km_status km_uvc_payload_header_parse(const uint8_t *p, size_t size, km_uvc_payload_header *h)
{
    if (!p || !h)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc payload: NULL");
    memset(h, 0, sizeof *h);
    if (size < 2)
        return km_error(KM_ERR_FORMAT, "uvc payload: offset 0: %zu bytes, no header", size);
    h->length = p[0];
    h->info = p[1];
    if (h->length < 2)
        return km_error(KM_ERR_FORMAT, "uvc payload: offset 0: bHeaderLength %u", h->length);
    if (h->length > size)
        return km_error(KM_ERR_FORMAT,
                        "uvc payload: offset 0: bHeaderLength %u in a %zu-byte payload",
                        h->length, size);
    h->fid = (h->info & KM_UVC_HEADER_FID) != 0;
    h->eof = (h->info & KM_UVC_HEADER_EOF) != 0;
    h->error = (h->info & KM_UVC_HEADER_ERR) != 0;
    h->still = (h->info & KM_UVC_HEADER_STI) != 0;
    h->has_pts = (h->info & KM_UVC_HEADER_PTS) != 0;
    h->has_scr = (h->info & KM_UVC_HEADER_SCR) != 0;
    size_t need = 2 + (h->has_pts ? 4u : 0u) + (h->has_scr ? 6u : 0u);
    if (h->length < need)
        return km_error(KM_ERR_FORMAT,
                        "uvc payload: offset 1: bmHeaderInfo 0x%02x needs %zu header bytes, "
                        "bHeaderLength is %u",
                        h->info, need, h->length);
    size_t at = 2;
    if (h->has_pts) {
        h->pts = rd32(p + at);
        at += 4;
    }
    if (h->has_scr) {
        h->stc = rd32(p + at);
        h->sof = (uint16_t)((p[at + 4] | (p[at + 5] << 8)) & 0x7ff);
    }
    return KM_OK;
}

void km_uvc_assembler_init(km_uvc_assembler *a, const km_uvc_assembler_config *config)
{
    memset(a, 0, sizeof *a);
    if (config)
        a->config = *config;
    a->fid = -1;
}

void km_uvc_assembler_set_buffer(km_uvc_assembler *a, uint8_t *buffer, size_t capacity)
{
    a->next_buffer = buffer;
    a->next_capacity = buffer ? capacity : 0;
}

void km_uvc_assembler_abort(km_uvc_assembler *a)
{
    if (a->in_frame) {
        a->stats.dropped_no_buffer++;
        a->in_frame = false;
        a->finished = true; /* skip the rest of this FID */
    }
    a->buffer = NULL;
    a->capacity = 0;
}

void km_uvc_assembler_lost(km_uvc_assembler *a, unsigned packets)
{
    a->stats.lost_packets += packets;
    if (a->in_frame)
        a->lost = true;
    else if (a->config.frame_bytes == 0)
        /* Between frames the lost packet may have been the start of the next one; an
         * uncompressed frame's size check would catch that, a compressed one cannot. */
        a->damage_next = true;
}

static size_t frame_limit(const km_uvc_assembler *a)
{
    size_t limit = a->config.frame_bytes ? a->config.frame_bytes : a->config.max_frame_bytes;
    if (limit == 0 || (a->buffer && a->capacity < limit))
        limit = a->buffer ? a->capacity : limit;
    return limit;
}

/* End of the frame in progress. true when it is delivered (*r filled). */
static bool finish(km_uvc_assembler *a, km_uvc_frame_result *r)
{
    a->in_frame = false;
    a->finished = true;
    if (!a->buffer) {
        a->stats.dropped_no_buffer++;
        return false;
    }
    if (a->overlong) {
        a->stats.dropped_overlong++;
        return false; /* the buffer stays ours for the next frame */
    }
    /* A packet lost while this frame was open may have belonged to the next one (a camera
     * without EOF): an uncompressed frame that has every byte is whole regardless. */
    bool damaged = a->damaged || (a->lost && (a->config.frame_bytes == 0 ||
                                              a->size != a->config.frame_bytes));
    if (a->config.frame_bytes && a->size != a->config.frame_bytes)
        damaged = true;
    if (a->size == 0)
        damaged = true;
    if (damaged && !a->config.deliver_incomplete) {
        a->stats.dropped_incomplete++;
        return false;
    }
    memset(r, 0, sizeof *r);
    r->bytes = a->size;
    r->flags = damaged ? KM_FRAME_FLAG_INCOMPLETE : 0;
    r->has_pts = a->has_pts;
    r->pts = a->pts;
    r->sequence = a->frame_sequence;
    r->buffer = a->buffer;
    a->stats.frames++;
    if (damaged)
        a->stats.incomplete++;
    /* The delivered buffer now belongs to the caller. */
    a->buffer = NULL;
    a->capacity = 0;
    return true;
}

static void start(km_uvc_assembler *a, int fid)
{
    if (a->next_buffer) {
        a->buffer = a->next_buffer;
        a->capacity = a->next_capacity;
        a->next_buffer = NULL;
        a->next_capacity = 0;
    }
    a->in_frame = true;
    a->finished = false;
    a->fid = fid;
    a->size = 0;
    a->damaged = a->damage_next;
    a->damage_next = false;
    a->lost = false;
    a->overlong = false;
    a->has_pts = false;
    a->pts = 0;
    a->frame_sequence = a->sequence++;
}

km_status km_uvc_assembler_feed(km_uvc_assembler *a, const uint8_t *payload, size_t size,
                                km_uvc_payload_header *header, km_uvc_feed_event *event,
                                km_uvc_frame_result *result)
{
    *event = KM_UVC_FEED_CONTINUE;
    if (size == 0)
        return KM_OK; /* empty isochronous packet: nothing was sent in this interval */
    km_uvc_payload_header h;
    km_status st = km_uvc_payload_header_parse(payload, size, &h);
    if (header)
        *header = h;
    if (st) {
        a->stats.header_errors++;
        if (a->in_frame)
            a->damaged = true;
        return st;
    }
    int fid = h.fid ? 1 : 0;
    if (a->in_frame && fid != a->fid) {
        /* FID toggled without EOF: the frame before ended. */
        if (finish(a, result)) {
            *event = KM_UVC_FEED_FRAME_BEFORE;
            return KM_OK; /* the caller feeds this payload again with a new buffer */
        }
    }
    size_t data_size = size - h.length;
    if (!a->in_frame) {
        if (a->finished && fid == a->fid)
            return KM_OK; /* trailing payloads of a finished or skipped frame */
        start(a, fid);
    }
    if (h.error) {
        a->stats.error_payloads++;
        a->damaged = true;
    }
    if (h.has_pts && !a->has_pts) {
        a->has_pts = true;
        a->pts = h.pts;
    }
    if (data_size && !a->overlong) {
        size_t limit = frame_limit(a);
        if (data_size > limit || a->size > limit - data_size) {
            a->overlong = true;
        } else {
            if (a->buffer)
                memcpy(a->buffer + a->size, payload + h.length, data_size);
            a->size += data_size;
        }
    }
    if (h.eof) {
        if (finish(a, result))
            *event = KM_UVC_FEED_FRAME;
    }
    return KM_OK;
}
