/* Private header of the USB Video Class backend (capture/uvc*.c).
 *
 * The pure parts of the driver, each testable without a device:
 *  - uvc_descriptors.c: configuration descriptor bytes -> km_uvc_descriptor_set (VideoControl
 *    terminals and units, VideoStreaming formats, frames, intervals, alternate settings with
 *    their isochronous bandwidth);
 *  - uvc_negotiate.c: the probe/commit structure (26/34/48 bytes by bcdUVC), the choice of
 *    format/frame/interval, alternate-setting selection and the per-bus bandwidth budget;
 *  - uvc_payload.c: payload headers and frame reassembly into a caller's buffer;
 *  - uvc_clock.c: device clock (SCR/PTS) -> host CLOCK_MONOTONIC mapping.
 * uvc.c puts them on libusb (enumeration, streaming, controls, hotplug, watchdog).
 *
 * Spec references are to "USB Device Class Definition for Video Devices" 1.5 (UVC 1.5) and
 * the USB 2.0 / 3.x specifications. */
#ifndef KINEMA_CAPTURE_UVC_H
#define KINEMA_CAPTURE_UVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinema/capture.h"
#include "kinema/core.h"

/* ------------------------------------------------------------ constants (UVC 1.5 A.*) */

#define KM_UVC_CLASS_VIDEO 0x0e
#define KM_UVC_SC_VIDEOCONTROL 0x01
#define KM_UVC_SC_VIDEOSTREAMING 0x02

#define KM_USB_DT_DEVICE 0x01
#define KM_USB_DT_CONFIG 0x02
#define KM_USB_DT_STRING 0x03
#define KM_USB_DT_INTERFACE 0x04
#define KM_USB_DT_ENDPOINT 0x05
#define KM_USB_DT_IAD 0x0b
#define KM_USB_DT_CS_INTERFACE 0x24
#define KM_USB_DT_CS_ENDPOINT 0x25
#define KM_USB_DT_SS_ENDPOINT_COMPANION 0x30

/* VideoControl interface descriptor subtypes (A.5) */
#define KM_UVC_VC_HEADER 0x01
#define KM_UVC_VC_INPUT_TERMINAL 0x02
#define KM_UVC_VC_OUTPUT_TERMINAL 0x03
#define KM_UVC_VC_SELECTOR_UNIT 0x04
#define KM_UVC_VC_PROCESSING_UNIT 0x05
#define KM_UVC_VC_EXTENSION_UNIT 0x06
#define KM_UVC_VC_ENCODING_UNIT 0x07

/* VideoStreaming interface descriptor subtypes (A.6) */
#define KM_UVC_VS_INPUT_HEADER 0x01
#define KM_UVC_VS_OUTPUT_HEADER 0x02
#define KM_UVC_VS_STILL_IMAGE_FRAME 0x03
#define KM_UVC_VS_FORMAT_UNCOMPRESSED 0x04
#define KM_UVC_VS_FRAME_UNCOMPRESSED 0x05
#define KM_UVC_VS_FORMAT_MJPEG 0x06
#define KM_UVC_VS_FRAME_MJPEG 0x07
#define KM_UVC_VS_COLORFORMAT 0x0d
#define KM_UVC_VS_FORMAT_FRAME_BASED 0x10
#define KM_UVC_VS_FRAME_FRAME_BASED 0x11

#define KM_UVC_ITT_CAMERA 0x0201

/* Class-specific requests (A.8) and selectors (A.9) */
#define KM_UVC_SET_CUR 0x01
#define KM_UVC_GET_CUR 0x81
#define KM_UVC_GET_MIN 0x82
#define KM_UVC_GET_MAX 0x83
#define KM_UVC_GET_RES 0x84
#define KM_UVC_GET_DEF 0x87
#define KM_UVC_VS_PROBE_CONTROL 0x01
#define KM_UVC_VS_COMMIT_CONTROL 0x02
#define KM_UVC_CT_AE_MODE_CONTROL 0x02
#define KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL 0x04
#define KM_UVC_PU_GAIN_CONTROL 0x04
/* bmControls bits: camera terminal (3.7.2.3) and processing unit (3.7.2.5) */
#define KM_UVC_CT_BIT_AE_MODE (1u << 1)
#define KM_UVC_CT_BIT_EXPOSURE_ABSOLUTE (1u << 3)
#define KM_UVC_PU_BIT_GAIN (1u << 9)
/* CT_AE_MODE_CONTROL values (4.2.2.1.2) */
#define KM_UVC_AE_MODE_MANUAL 0x01
#define KM_UVC_AE_MODE_AUTO 0x02

/* Payload header bmHeaderInfo bits (2.4.3.3) */
#define KM_UVC_HEADER_FID 0x01
#define KM_UVC_HEADER_EOF 0x02
#define KM_UVC_HEADER_PTS 0x04
#define KM_UVC_HEADER_SCR 0x08
#define KM_UVC_HEADER_RES 0x10
#define KM_UVC_HEADER_STI 0x20
#define KM_UVC_HEADER_ERR 0x40
#define KM_UVC_HEADER_EOH 0x80

/* ------------------------------------------------------------------ descriptors */

#define KM_UVC_MAX_FORMATS 16
#define KM_UVC_MAX_FRAMES 192      /* over all formats */
#define KM_UVC_MAX_INTERVALS 16    /* discrete intervals kept per frame */
#define KM_UVC_MAX_ALTS 32         /* alternate settings over all streaming interfaces */
#define KM_UVC_MAX_UNITS 24        /* terminals and units of the VideoControl interface */
#define KM_UVC_MAX_STREAMS 4       /* VideoStreaming interfaces */

typedef enum km_uvc_format_kind {
    KM_UVC_FORMAT_UNCOMPRESSED = 0,
    KM_UVC_FORMAT_MJPEG,
    KM_UVC_FORMAT_FRAME_BASED
} km_uvc_format_kind;

typedef struct km_uvc_frame_desc {
    uint8_t index;               /* bFrameIndex (1-based, what the probe names) */
    uint8_t capabilities;
    uint16_t width, height;
    uint32_t min_bit_rate, max_bit_rate;
    uint32_t max_frame_bytes;    /* dwMaxVideoFrameBufferSize (0 for frame-based) */
    uint32_t bytes_per_line;     /* frame-based only */
    uint32_t default_interval;   /* 100 ns units */
    bool continuous;             /* bFrameIntervalType 0: min/max/step below */
    uint32_t min_interval, max_interval, step_interval;
    int interval_count;          /* discrete: intervals[0..interval_count) */
    bool intervals_truncated;    /* the device listed more than KM_UVC_MAX_INTERVALS */
    uint32_t intervals[KM_UVC_MAX_INTERVALS];
} km_uvc_frame_desc;

typedef struct km_uvc_format_desc {
    uint8_t index;               /* bFormatIndex */
    km_uvc_format_kind kind;
    uint8_t guid[16];            /* uncompressed / frame-based */
    char fourcc[5];              /* first 4 GUID bytes when printable ("YUY2"), "MJPG" */
    uint8_t bits_per_pixel;
    uint8_t default_frame_index;
    uint8_t flags;               /* MJPEG bmFlags, frame-based bVariableSize */
    uint8_t interlace_flags;
    km_pixel_format pixel_format;/* KM_PIXEL_FORMAT_COUNT: not one Kinema can take */
    int stream;                  /* index into streams[] */
    int first_frame, frame_count;/* frames[first_frame .. +frame_count) */
    int declared_frames;         /* bNumFrameDescriptors */
    bool has_color;
    uint8_t color_primaries, transfer_characteristics, matrix_coefficients;
} km_uvc_format_desc;

typedef struct km_uvc_alt_desc {
    uint8_t interface_number;
    uint8_t alt;                 /* bAlternateSetting */
    uint8_t endpoint;            /* bEndpointAddress */
    uint8_t transfer_type;       /* bmAttributes & 3: 1 iso, 2 bulk */
    uint8_t interval;            /* bInterval */
    uint16_t max_packet_raw;     /* wMaxPacketSize as sent (bits 11-12: extra transactions) */
    uint32_t bytes_per_interval; /* what one service interval carries (with multiplier or the
                                    SuperSpeed companion's wBytesPerInterval) */
    bool superspeed_companion;
} km_uvc_alt_desc;

typedef struct km_uvc_unit_desc {
    uint8_t subtype;             /* KM_UVC_VC_* */
    uint8_t id;
    uint8_t source_id;           /* first source (units, output terminals) */
    uint16_t terminal_type;      /* terminals */
    uint8_t control_size;
    uint32_t controls;           /* bmControls, first 4 bytes little-endian */
    uint8_t guid[16];            /* extension units */
} km_uvc_unit_desc;

typedef struct km_uvc_stream_desc {
    uint8_t interface_number;
    uint8_t endpoint_address;    /* from the input header */
    uint8_t terminal_link;
    uint8_t still_capture_method;
    int format_first, format_count;
    int alt_first, alt_count;    /* alts[] of this interface (alternate setting > 0 for iso) */
    bool bulk;                   /* streams over a bulk endpoint in alternate setting 0 */
} km_uvc_stream_desc;

typedef struct km_uvc_descriptor_set {
    uint16_t bcd_uvc;            /* 0x0100, 0x0110, 0x0150 */
    uint32_t clock_hz;           /* dwClockFrequency (device clock of PTS/SCR) */
    uint8_t control_interface;
    uint8_t configuration_value;
    int camera_terminal;         /* index in units[], -1 when none */
    int processing_unit;         /* index in units[], -1 when none */
    int unit_count, stream_count, format_count, frame_count, alt_count;
    km_uvc_unit_desc units[KM_UVC_MAX_UNITS];
    km_uvc_stream_desc streams[KM_UVC_MAX_STREAMS];
    km_uvc_format_desc formats[KM_UVC_MAX_FORMATS];
    km_uvc_frame_desc frames[KM_UVC_MAX_FRAMES];
    km_uvc_alt_desc alts[KM_UVC_MAX_ALTS];
} km_uvc_descriptor_set;

/* Parse a whole configuration descriptor (as GET_DESCRIPTOR(CONFIGURATION) returns it,
 * wTotalLength bytes) and keep the first video function. Strict: every length is checked
 * against its descriptor and the buffer; KM_ERR_FORMAT "uvc descriptors: offset N: ..." on
 * malformed input, KM_ERR_NOT_FOUND when there is no VideoControl + VideoStreaming interface,
 * KM_ERR_CAPACITY when a fixed array above is too small. Still-image frames are ignored;
 * audio and other functions are skipped. No allocation; `out` is fully rewritten. */
km_status km_uvc_parse_config(const uint8_t *data, size_t size, km_uvc_descriptor_set *out);

/* Kinema pixel format of a format GUID ("YUY2" -> YUYV, "Y800"/"GREY"/"Y8  " -> GRAY8,
 * "Y16 " -> GRAY16); KM_PIXEL_FORMAT_COUNT for others. */
km_pixel_format km_uvc_guid_pixel_format(const uint8_t guid[16]);
/* Bytes of one frame of an uncompressed format (width * height * bits / 8); for MJPEG and
 * frame-based formats the frame's dwMaxVideoFrameBufferSize (or width*height*2 if 0). */
size_t km_uvc_frame_bytes(const km_uvc_format_desc *format, const km_uvc_frame_desc *frame);

/* ------------------------------------------------------------------ negotiation */

/* VS_PROBE_CONTROL / VS_COMMIT_CONTROL (4.3.1.1). */
typedef struct km_uvc_probe {
    uint16_t hint;               /* bmHint: bit 0 = keep dwFrameInterval */
    uint8_t format_index, frame_index;
    uint32_t frame_interval;     /* 100 ns units */
    uint16_t key_frame_rate, p_frame_rate, comp_quality, comp_window_size;
    uint16_t delay_ms;
    uint32_t max_video_frame_size;
    uint32_t max_payload_transfer_size;
    /* UVC 1.1 */
    uint32_t clock_frequency;
    uint8_t framing_info, preferred_version, min_version, max_version;
    /* UVC 1.5 */
    uint8_t usage, bit_depth_luma, settings, max_number_of_ref_frames_plus1;
    uint16_t rate_control_modes;
    uint64_t layout_per_stream;
} km_uvc_probe;

/* 26 bytes for UVC 1.0, 34 for 1.1, 48 for 1.5 and later. */
size_t km_uvc_probe_size(uint16_t bcd_uvc);
/* Write the probe for bcd_uvc into out (little-endian); returns bytes written, 0 when
 * capacity is too small. */
size_t km_uvc_probe_pack(const km_uvc_probe *probe, uint16_t bcd_uvc, uint8_t *out,
                         size_t capacity);
/* Read a probe of `size` bytes (26, 34 or 48; fields beyond size are zeroed).
 * KM_ERR_FORMAT when size < 26. */
km_status km_uvc_probe_unpack(const uint8_t *data, size_t size, km_uvc_probe *probe);

/* What the user asked for. format KM_PIXEL_FORMAT_COUNT = any format Kinema can take
 * (GRAY8, GRAY16, YUYV, MJPEG in that order of preference); width/height 0 = the format's
 * default frame; rate_hz 0 = the frame's default interval. */
typedef struct km_uvc_request {
    km_pixel_format format;
    int width, height;
    double rate_hz;
} km_uvc_request;

typedef struct km_uvc_choice {
    int format;                  /* index into formats[] */
    int frame;                   /* index into frames[] */
    uint32_t interval;           /* 100 ns units, one the frame supports */
} km_uvc_choice;

/* Pick format, frame and the supported interval nearest to 1/rate_hz. KM_ERR_UNSUPPORTED
 * (the message lists what the camera offers) when nothing matches. */
km_status km_uvc_choose(const km_uvc_descriptor_set *set, const km_uvc_request *request,
                        km_uvc_choice *choice);

/* Device speeds as libusb numbers them (LIBUSB_SPEED_*). */
#define KM_USB_SPEED_LOW 1
#define KM_USB_SPEED_FULL 2
#define KM_USB_SPEED_HIGH 3
#define KM_USB_SPEED_SUPER 4
#define KM_USB_SPEED_SUPER_PLUS 5

/* Periodic bandwidth a bus offers per (micro)frame, in bytes: 125 us microframes for high
 * and SuperSpeed, 1 ms frames for full/low speed. USB 2.0 5.6.4 reserves at most 80% of a
 * high-speed microframe (7500 bytes) and 90% of a full-speed frame (1500 bytes) for periodic
 * transfers; SuperSpeed: 90% of the 8b/10b-coded 5 Gb/s (62500 bytes per 125 us). */
uint32_t km_usb_periodic_capacity(int speed);
/* Bytes per (micro)frame an alternate setting reserves: bytes_per_interval spread over its
 * service interval (2^(bInterval-1) microframes at high/SuperSpeed, bInterval frames at full). */
uint32_t km_uvc_alt_bytes_per_frame(const km_uvc_alt_desc *alt, int speed);

/* The isochronous alternate setting of `stream` with the least bandwidth that still carries
 * `payload_bytes` (the committed dwMaxPayloadTransferSize) per service interval. On success
 * *alt_index indexes set->alts. KM_ERR_UNSUPPORTED naming the required and the largest
 * available bytes per (micro)frame when none does. */
km_status km_uvc_select_alt(const km_uvc_descriptor_set *set, int stream, uint32_t payload_bytes,
                            int speed, int *alt_index);

/* Bandwidth booked on each bus, so that several cameras sharing a bus are refused before they
 * starve each other. Not thread-safe: the owner (km_uvc_context) locks around it. */
#define KM_UVC_MAX_BUSES 16
typedef struct km_uvc_bus_budget {
    int bus_count;
    struct {
        uint8_t bus;
        int speed;
        uint32_t used;           /* bytes per (micro)frame booked */
        int streams;
    } buses[KM_UVC_MAX_BUSES];
} km_uvc_bus_budget;

void km_uvc_bus_budget_init(km_uvc_bus_budget *budget);
/* Book `bytes` per (micro)frame on `bus` (speed of the device). KM_ERR_UNSUPPORTED naming
 * the bytes required, available and already booked when the bus cannot take them. */
km_status km_uvc_bus_budget_reserve(km_uvc_bus_budget *budget, uint8_t bus, int speed,
                                    uint32_t bytes);
void km_uvc_bus_budget_release(km_uvc_bus_budget *budget, uint8_t bus, int speed, uint32_t bytes);

/* ------------------------------------------------------------------ payloads */

typedef struct km_uvc_payload_header {
    uint8_t length;              /* bHeaderLength */
    uint8_t info;                /* bmHeaderInfo */
    bool fid, eof, error, still;
    bool has_pts, has_scr;
    uint32_t pts;                /* device clock at the start of exposure */
    uint32_t stc;                /* SCR: device clock when the payload was formed */
    uint16_t sof;                /* SCR: 11-bit USB frame number at that time */
} km_uvc_payload_header;

/* Parse the header of one payload. KM_ERR_FORMAT when the payload is shorter than 2 bytes or
 * than its header, or the header is too short for the PTS/SCR it announces. */
km_status km_uvc_payload_header_parse(const uint8_t *payload, size_t size,
                                      km_uvc_payload_header *header);

typedef struct km_uvc_assembler_config {
    size_t frame_bytes;          /* exact size of an uncompressed frame; 0 = variable (MJPEG) */
    size_t max_frame_bytes;      /* longer frames are rejected (and never written past this) */
    bool deliver_incomplete;     /* true: damaged frames come out flagged INCOMPLETE;
                                    false: they are dropped */
} km_uvc_assembler_config;

typedef struct km_uvc_assembler_stats {
    uint64_t frames;             /* delivered (complete or flagged) */
    uint64_t incomplete;         /* delivered with KM_FRAME_FLAG_INCOMPLETE */
    uint64_t dropped_incomplete; /* damaged and dropped */
    uint64_t dropped_overlong;
    uint64_t dropped_no_buffer;  /* no buffer to assemble into */
    uint64_t lost_packets;       /* reported by km_uvc_assembler_lost */
    uint64_t header_errors;      /* malformed payload headers */
    uint64_t error_payloads;     /* payloads with the ERR bit */
} km_uvc_assembler_stats;

/* A completed frame. */
typedef struct km_uvc_frame_result {
    size_t bytes;
    uint32_t flags;              /* KM_FRAME_FLAG_INCOMPLETE */
    bool has_pts;
    uint32_t pts;
    uint64_t sequence;           /* frames seen by this assembler (delivered or not), from 0 */
    uint8_t *buffer;             /* the buffer the frame was written into */
} km_uvc_frame_result;

typedef enum km_uvc_feed_event {
    KM_UVC_FEED_CONTINUE = 0,    /* payload consumed; no frame finished */
    KM_UVC_FEED_FRAME,           /* payload consumed and it finished a frame (EOF): *result */
    KM_UVC_FEED_FRAME_BEFORE     /* the payload starts a new frame (FID toggled) and the one
                                    before it finished: *result. The payload was NOT consumed:
                                    set the next buffer, then feed the same payload again. */
} km_uvc_feed_event;

/* Reassembles frames from payloads. Pure: no allocation, no clock, writes only into the
 * buffer given with km_uvc_assembler_set_buffer. Not thread-safe (one per stream). */
typedef struct km_uvc_assembler {
    km_uvc_assembler_config config;
    uint8_t *buffer;             /* frame in progress; NULL: followed but discarded */
    size_t capacity;
    uint8_t *next_buffer;        /* taken when the next frame starts */
    size_t next_capacity;
    size_t size;
    bool in_frame;
    int fid;                     /* -1 before the first payload */
    bool damaged, overlong, finished, damage_next;
    bool lost;                   /* packets lost while this frame was open */
    bool has_pts;
    uint32_t pts;
    uint64_t sequence;           /* frames started so far */
    uint64_t frame_sequence;     /* of the frame in progress */
    km_uvc_assembler_stats stats;
} km_uvc_assembler;

void km_uvc_assembler_init(km_uvc_assembler *assembler, const km_uvc_assembler_config *config);
/* Where the next frame goes (capacity bytes; NULL = discard): taken when the next frame
 * starts; a frame in progress keeps its buffer. A delivered frame's buffer is given back to
 * the caller (the assembler forgets it), so set a buffer again after each delivered frame;
 * a dropped frame's buffer is reused. */
void km_uvc_assembler_set_buffer(km_uvc_assembler *assembler, uint8_t *buffer, size_t capacity);
/* Forget the frame in progress (its buffer is being taken away); it counts as dropped and the
 * rest of its payloads are skipped until the FID toggles. */
void km_uvc_assembler_abort(km_uvc_assembler *assembler);
/* Packets were lost (iso packet error, missed transfer): the frame in progress is damaged. */
void km_uvc_assembler_lost(km_uvc_assembler *assembler, unsigned packets);
/* Feed one payload (one iso packet or one bulk transfer). Zero-length packets are ignored.
 * *header receives the parsed header (for the clock) when non-NULL and the payload had one.
 * KM_ERR_FORMAT for a malformed header (counted; the frame in progress is damaged). */
km_status km_uvc_assembler_feed(km_uvc_assembler *assembler, const uint8_t *payload, size_t size,
                                km_uvc_payload_header *header, km_uvc_feed_event *event,
                                km_uvc_frame_result *result);

/* ------------------------------------------------------------------ clock */

#define KM_UVC_CLOCK_WINDOW 64

/* Maps a device clock (UVC PTS/SCR, or any 32-bit hardware counter such as Kinect's frame
 * timestamp) onto CLOCK_MONOTONIC by a linear fit over a sliding window of (device ticks,
 * host ns) pairs. Host times are completion times, always late by a random delay: samples are
 * grouped in 16 ms bins keeping each bin's least-delayed one, and the fitted line is moved
 * down onto the lower envelope of those instead of through their middle. With the default 64
 * bins the fit spans about a second. Not thread-safe; no allocation. */
typedef struct km_uvc_clock {
    double nominal_hz;
    uint32_t window;             /* bins used (<= KM_UVC_CLOCK_WINDOW) */
    uint64_t bin_ns;             /* samples are grouped in bins of this host time (16 ms);
                                    each bin keeps its least-delayed sample */
    int count, head;             /* committed bins */
    int64_t dev[KM_UVC_CLOCK_WINDOW];   /* unwrapped ticks */
    uint64_t host[KM_UVC_CLOCK_WINDOW]; /* ns */
    bool bin_active;             /* the bin being filled */
    uint64_t bin_start;
    int64_t bin_dev;
    uint64_t bin_host;
    bool have_last;
    uint32_t last_raw;
    int64_t last_dev;
    uint64_t last_host;
    /* fit: host = host_ref + offset_ns + (dev - dev_ref) * ns_per_tick */
    bool valid;
    int64_t dev_ref;
    uint64_t host_ref;
    double ns_per_tick;
    double offset_ns;
    int late_run;                /* consecutive samples far later than the fit */
    uint64_t resets;
} km_uvc_clock;

/* device_hz: nominal device clock frequency (> 0). window 0 = KM_UVC_CLOCK_WINDOW. */
void km_uvc_clock_init(km_uvc_clock *clock, double device_hz, uint32_t window);
void km_uvc_clock_reset(km_uvc_clock *clock);
/* One (device counter, host time) pair: `ticks` is the 32-bit counter (SCR's STC), host_ns
 * the host time at which the device sampled it (the caller corrects the transfer completion
 * time for the packets that came after it, using the SOF numbers). The 32-bit wrap is undone
 * from the host time elapsed since the previous sample, so gaps longer than a wrap are fine.
 * A sample inconsistent with the fit by more than 5 ms (device reset) restarts the fit. */
void km_uvc_clock_add(km_uvc_clock *clock, uint32_t ticks, uint64_t host_ns);
/* Host time of a 32-bit device time (PTS), taken as the one nearest the latest sample.
 * KM_ERR_AGAIN until the fit has at least 2 samples spanning 1 ms. */
km_status km_uvc_clock_map(const km_uvc_clock *clock, uint32_t ticks, uint64_t *host_ns);
/* Measured device clock rate error against nominal, parts per million (0 when not valid). */
double km_uvc_clock_ppm(const km_uvc_clock *clock);
/* 1 ms USB frames from SOF number `earlier` to `later` (11-bit counters, so mod 2048:
 * 0..2047); `later` is taken to be at or after `earlier`. */
uint32_t km_uvc_sof_delta(uint16_t earlier, uint16_t later);

#endif /* KINEMA_CAPTURE_UVC_H */
