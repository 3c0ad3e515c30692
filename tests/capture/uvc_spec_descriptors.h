/* A UVC configuration descriptor built field by field from the UVC 1.5 specification
 * (tables 3-1 .. 3-20 of "USB Device Class Definition for Video Devices" 1.5 and the
 * uncompressed / MJPEG payload specifications), for tests of the descriptor parser and of the
 * libusb backend. Header-only: each test includes it. */
#ifndef KINEMA_TESTS_UVC_SPEC_DESCRIPTORS_H
#define KINEMA_TESTS_UVC_SPEC_DESCRIPTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct uvc_blob {
    uint8_t b[4096];
    size_t n;
} uvc_blob;

static inline void ub8(uvc_blob *x, unsigned v) { x->b[x->n++] = (uint8_t)v; }
static inline void ub16(uvc_blob *x, unsigned v) { ub8(x, v & 0xff); ub8(x, (v >> 8) & 0xff); }
static inline void ub32(uvc_blob *x, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        ub8(x, (v >> (8 * i)) & 0xff);
}
static inline void ubn(uvc_blob *x, const void *p, size_t n)
{
    memcpy(x->b + x->n, p, n);
    x->n += n;
}
/* Start a descriptor: bLength is patched by ub_end. */
static inline size_t ub_begin(uvc_blob *x, unsigned type)
{
    size_t at = x->n;
    ub8(x, 0);
    ub8(x, type);
    return at;
}
static inline void ub_end(uvc_blob *x, size_t at) { x->b[at] = (uint8_t)(x->n - at); }
static inline void ub_patch16(uvc_blob *x, size_t at, unsigned v)
{
    x->b[at] = (uint8_t)v;
    x->b[at + 1] = (uint8_t)(v >> 8);
}

static inline void ub_guid(uvc_blob *x, const char fourcc[4])
{
    static const uint8_t tail[12] = {0x00, 0x00, 0x10, 0x00, 0x80, 0x00,
                                     0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};
    ubn(x, fourcc, 4);
    ubn(x, tail, 12);
}

static inline void ub_interface(uvc_blob *x, unsigned number, unsigned alt, unsigned endpoints,
                                unsigned subclass)
{
    size_t d = ub_begin(x, 4);
    ub8(x, number);
    ub8(x, alt);
    ub8(x, endpoints);
    ub8(x, 14); /* CC_VIDEO */
    ub8(x, subclass);
    ub8(x, 0x00); /* PC_PROTOCOL_15 is 0x01 for 1.5; 0 is accepted */
    ub8(x, 0);
    ub_end(x, d);
}

static inline void ub_endpoint(uvc_blob *x, unsigned address, unsigned attributes,
                               unsigned max_packet, unsigned interval)
{
    size_t d = ub_begin(x, 5);
    ub8(x, address);
    ub8(x, attributes);
    ub16(x, max_packet);
    ub8(x, interval);
    ub_end(x, d);
}

/* Uncompressed frame (table 3-2 of the uncompressed payload spec). intervals: n > 0 discrete,
 * n == 0 continuous from iv[0] to iv[1] in steps of iv[2]. */
static inline void ub_frame(uvc_blob *x, unsigned subtype, unsigned index, unsigned w,
                            unsigned h, unsigned bpp, int n, const uint32_t *iv)
{
    size_t d = ub_begin(x, 0x24);
    ub8(x, subtype);
    ub8(x, index);
    ub8(x, 0); /* bmCapabilities */
    ub16(x, w);
    ub16(x, h);
    uint32_t bytes = w * h * bpp / 8;
    ub32(x, bytes * 8 * 10);  /* dwMinBitRate at 10 fps */
    ub32(x, bytes * 8 * 120); /* dwMaxBitRate */
    ub32(x, bytes);           /* dwMaxVideoFrameBufferSize */
    ub32(x, n > 0 ? iv[0] : iv[0]); /* dwDefaultFrameInterval */
    ub8(x, (unsigned)n);
    if (n == 0) {
        ub32(x, iv[0]);
        ub32(x, iv[1]);
        ub32(x, iv[2]);
    } else {
        for (int i = 0; i < n; i++)
            ub32(x, iv[i]);
    }
    ub_end(x, d);
}

static inline void ub_format_uncompressed(uvc_blob *x, unsigned index, unsigned frames,
                                          const char fourcc[4], unsigned bpp)
{
    size_t d = ub_begin(x, 0x24);
    ub8(x, 0x04);
    ub8(x, index);
    ub8(x, frames);
    ub_guid(x, fourcc);
    ub8(x, bpp);
    ub8(x, 1); /* bDefaultFrameIndex */
    ub8(x, 0);
    ub8(x, 0);
    ub8(x, 0);
    ub8(x, 0);
    ub_end(x, d);
}

static inline void ub_color(uvc_blob *x)
{
    size_t d = ub_begin(x, 0x24);
    ub8(x, 0x0d);
    ub8(x, 1); /* BT.709 primaries */
    ub8(x, 1); /* BT.709 transfer */
    ub8(x, 4); /* SMPTE 170M matrix */
    ub_end(x, d);
}

typedef struct uvc_spec_options {
    unsigned bcd_uvc;        /* default 0x0150 */
    uint32_t clock_hz;       /* default 48 MHz */
    bool bulk;               /* stream over a bulk endpoint in alternate setting 0 */
    bool small_only;         /* only the 64x48 GRAY8 format (device tests) */
} uvc_spec_options;

/* Intervals of the 64x48 GRAY8 frame: 30, 60, 120 Hz. */
static const uint32_t uvc_spec_small_intervals[3] = {333333, 166666, 83333};

/* The whole configuration: IAD, VideoControl (header, camera terminal with AE mode and
 * absolute exposure, processing unit with gain, extension unit, output terminal, interrupt
 * endpoint), VideoStreaming (input header; GRAY8 "Y800" 64x48 / 640x480 / 1280x1024
 * (continuous), Y16 640x480, YUY2 320x240, MJPEG 1280x720, a still-image frame descriptor and
 * color matching), and three isochronous alternate settings of 128, 1024 and 3x1024 bytes
 * (or one bulk endpoint). Returns the number of bytes in x->b. */
static inline size_t uvc_spec_build(uvc_blob *x, const uvc_spec_options *o)
{
    unsigned bcd = o && o->bcd_uvc ? o->bcd_uvc : 0x0150;
    uint32_t clock = o && o->clock_hz ? o->clock_hz : 48000000u;
    bool bulk = o && o->bulk;
    bool small = o && o->small_only;
    x->n = 0;
    size_t cfg = ub_begin(x, 2);
    ub16(x, 0); /* wTotalLength patched below */
    ub8(x, 2);  /* bNumInterfaces */
    ub8(x, 1);  /* bConfigurationValue */
    ub8(x, 0);
    ub8(x, 0x80);
    ub8(x, 250);
    ub_end(x, cfg);
    size_t iad = ub_begin(x, 11);
    ub8(x, 0);
    ub8(x, 2);
    ub8(x, 14);
    ub8(x, 3);
    ub8(x, 0);
    ub8(x, 0);
    ub_end(x, iad);
    ub_interface(x, 0, 0, 1, 1);
    size_t vc = x->n;
    size_t hdr = ub_begin(x, 0x24);
    ub8(x, 0x01);
    ub16(x, bcd);
    size_t vc_total = x->n;
    ub16(x, 0);
    ub32(x, clock);
    ub8(x, 1);
    ub8(x, 1);
    ub_end(x, hdr);
    size_t it = ub_begin(x, 0x24); /* camera terminal, table 3-6 */
    ub8(x, 0x02);
    ub8(x, 1);      /* bTerminalID */
    ub16(x, 0x0201);
    ub8(x, 0);
    ub8(x, 0);
    ub16(x, 0);
    ub16(x, 0);
    ub16(x, 0);
    ub8(x, 3);      /* bControlSize */
    ub8(x, 0x0a);   /* AE mode (bit 1), exposure time absolute (bit 3) */
    ub8(x, 0x00);
    ub8(x, 0x00);
    ub_end(x, it);
    size_t pu = ub_begin(x, 0x24); /* processing unit, table 3-8 (1.5: 3-byte bmControls) */
    ub8(x, 0x05);
    ub8(x, 2);
    ub8(x, 1);
    ub16(x, 0);
    ub8(x, 3);
    ub8(x, 0x01);   /* brightness */
    ub8(x, 0x02);   /* gain (bit 9) */
    ub8(x, 0x00);
    ub8(x, 0);      /* iProcessing */
    ub8(x, 0);      /* bmVideoStandards */
    ub_end(x, pu);
    size_t xu = ub_begin(x, 0x24); /* extension unit, table 3-10 */
    ub8(x, 0x06);
    ub8(x, 4);
    ubn(x, "kinema-test-xu!!", 16);
    ub8(x, 1);      /* bNumControls */
    ub8(x, 1);      /* bNrInPins */
    ub8(x, 2);      /* baSourceID */
    ub8(x, 1);      /* bControlSize */
    ub8(x, 0x01);
    ub8(x, 0);      /* iExtension */
    ub_end(x, xu);
    size_t ot = ub_begin(x, 0x24);
    ub8(x, 0x03);
    ub8(x, 3);
    ub16(x, 0x0101);
    ub8(x, 0);
    ub8(x, 4);
    ub8(x, 0);
    ub_end(x, ot);
    ub_patch16(x, vc_total, (unsigned)(x->n - vc));
    ub_endpoint(x, 0x83, 0x03, 16, 8);
    size_t csep = ub_begin(x, 0x25);
    ub8(x, 0x03);
    ub16(x, 16);
    ub_end(x, csep);

    ub_interface(x, 1, 0, bulk ? 1 : 0, 2);
    size_t vs = x->n;
    unsigned nformats = small ? 1 : 4;
    size_t ih = ub_begin(x, 0x24); /* input header, table 3-14 */
    ub8(x, 0x01);
    ub8(x, nformats);
    size_t vs_total = x->n;
    ub16(x, 0);
    ub8(x, 0x81);   /* bEndpointAddress */
    ub8(x, 0);
    ub8(x, 3);      /* bTerminalLink */
    ub8(x, 0);
    ub8(x, 0);
    ub8(x, 0);
    ub8(x, 1);      /* bControlSize */
    for (unsigned i = 0; i < nformats; i++)
        ub8(x, 0);
    ub_end(x, ih);
    ub_format_uncompressed(x, 1, small ? 1 : 3, "Y800", 8);
    ub_frame(x, 0x05, 1, 64, 48, 8, 3, uvc_spec_small_intervals);
    if (!small) {
        static const uint32_t vga[2] = {83333, 333333};
        static const uint32_t range[3] = {83333, 333333, 83333};
        ub_frame(x, 0x05, 2, 640, 480, 8, 2, vga);
        ub_frame(x, 0x05, 3, 1280, 1024, 8, 0, range);
    }
    /* a still image frame descriptor (table 3-18): parsed past, ignored */
    size_t still = ub_begin(x, 0x24);
    ub8(x, 0x03);
    ub8(x, 0);
    ub8(x, 1);
    ub16(x, 640);
    ub16(x, 480);
    ub8(x, 0);
    ub_end(x, still);
    ub_color(x);
    if (!small) {
        static const uint32_t one[1] = {166666};
        static const uint32_t thirty[1] = {333333};
        ub_format_uncompressed(x, 2, 1, "Y16 ", 16);
        ub_frame(x, 0x05, 1, 640, 480, 16, 1, one);
        ub_format_uncompressed(x, 3, 1, "YUY2", 16);
        ub_frame(x, 0x05, 1, 320, 240, 16, 1, thirty);
        size_t mj = ub_begin(x, 0x24); /* MJPEG format (MJPEG payload table 3-1) */
        ub8(x, 0x06);
        ub8(x, 4);
        ub8(x, 1);
        ub8(x, 1);   /* bmFlags: fixed size samples */
        ub8(x, 1);
        ub8(x, 0);
        ub8(x, 0);
        ub8(x, 0);
        ub8(x, 0);
        ub_end(x, mj);
        ub_frame(x, 0x07, 1, 1280, 720, 16, 1, thirty);
        ub_color(x);
    }
    ub_patch16(x, vs_total, (unsigned)(x->n - vs));
    if (bulk) {
        ub_endpoint(x, 0x81, 0x02, 512, 0);
    } else {
        /* isochronous, asynchronous: 128 B, 1024 B and 3 x 1024 B per microframe */
        static const unsigned sizes[3] = {0x0080, 0x0400, 0x1400};
        for (unsigned a = 0; a < 3; a++) {
            ub_interface(x, 1, a + 1, 1, 2);
            ub_endpoint(x, 0x81, 0x05, sizes[a], 1);
        }
    }
    ub_patch16(x, cfg + 2, (unsigned)x->n);
    return x->n;
}

#endif
