/* A simulated USB bus for tests of the UVC backend (capture/uvc.c) and of everything above
 * it (the capture runner, the pipeline's `source: devices`): every libusb function the backend
 * calls is wrapped at link time (-Wl,--wrap=libusb_..., the list is uvc_wrapped in
 * tests/meson.build) and answered by fake cameras built from the UVC 1.5 specification
 * (uvc_spec_descriptors.h) or from a real camera's descriptors. The fake streams isochronous
 * (or bulk) payloads with FID/EOF/PTS/SCR headers from a 48 MHz device clock, and can lose
 * packets, leave out EOF, stall, or be unplugged and plugged back in (hot-plug events from the
 * event thread, as real libusb delivers them).
 *
 * Frames are FRAME_W x FRAME_H GRAY8. By default every pixel of frame n is n & 0xff
 * and frames follow each other as fast as the bus carries them; a fake camera can instead
 * send a fixed image (fake_dev.image) and pace its frames on a common time grid
 * (fake_dev.interval_ns), as free-running cameras of one rig do.
 *
 * Header-only: include it in exactly one file of a test executable (it defines the
 * __wrap_libusb_* functions), after <cmocka.h>. */
#ifndef KINEMA_TESTS_FAKE_USB_H
#define KINEMA_TESTS_FAKE_USB_H

#include <libusb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinema/capture.h"
#include "uvc.h"
#include "uvc_spec_descriptors.h"

/* ------------------------------------------------------------------ the fake bus */

#define MAX_FAKE 8
#define MAX_PENDING 64
#define MAX_LOG 512
#define FRAME_W 64
#define FRAME_H 48
#define FRAME_BYTES (FRAME_W * FRAME_H)

typedef struct fake_dev fake_dev;

struct libusb_device {
    fake_dev *f;
    int refs;
};
struct libusb_device_handle {
    fake_dev *f;
};
struct libusb_context {
    int dummy;
};

typedef struct control_log {
    uint8_t type, request;
    uint16_t value, index, length;
    uint8_t data[64];
} control_log;

struct fake_dev {
    bool used, present, uvc, open_denied;
    uint16_t vid, pid;
    uint8_t bus, ports[3];
    int nports, speed;
    char serial[32], product[32];
    uint8_t config[4096];
    size_t config_len;
    struct libusb_device *dev; /* the current object (a new one after replug) */
    /* negotiation */
    uint8_t probe[48];
    uint16_t probe_len;
    uint32_t max_payload;      /* what GET_CUR answers in dwMaxPayloadTransferSize */
    int alt;
    int alt_changes;
    int probes_set;
    /* stream */
    uint64_t frame;            /* next frame number */
    size_t offset;             /* bytes of the frame sent */
    int gap;                   /* empty packets still to send after a frame */
    bool fid;
    int lose_every;            /* lose one packet of every Nth frame (0 = never) */
    bool no_eof;
    bool stall;
    bool unplug;               /* complete everything with NO_DEVICE at the next event */
    uint64_t t0;
    uint32_t frame_pts;        /* PTS of the frame being sent */
    /* Content and pacing (0/NULL: the defaults above). Set before streaming starts or under
     * fk.lock. */
    const uint8_t *image;      /* FRAME_BYTES sent as every frame's pixels (borrowed) */
    uint64_t interval_ns;      /* frames start on multiples of this in CLOCK_MONOTONIC time,
                                  empty packets in between */
    uint64_t next_frame_ns;    /* interval_ns: the next frame starts at this sample time */
};

static struct {
    pthread_mutex_t lock;
    struct libusb_context ctx;
    fake_dev devs[MAX_FAKE];
    struct libusb_transfer *pending[MAX_PENDING];
    int npending;
    struct libusb_transfer *cancelled[MAX_PENDING];
    int ncancelled;
    control_log log[MAX_LOG];
    int nlog;
    libusb_hotplug_callback_fn hotplug;
    void *hotplug_user;
    struct {
        struct libusb_device *dev;
        libusb_hotplug_event event;
    } events[8];
    int nevents;
    int open_handles;
    int live_devices;
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static inline fake_dev *fake_add(uint8_t bus, uint8_t port1, uint8_t port2, const char *serial,
                          const uint8_t *config, size_t config_len)
{
    pthread_mutex_lock(&fk.lock);
    fake_dev *f = NULL;
    for (int i = 0; i < MAX_FAKE; i++)
        if (!fk.devs[i].used) {
            f = &fk.devs[i];
            break;
        }
    memset(f, 0, sizeof *f);
    f->used = f->present = true;
    f->uvc = config != NULL;
    f->vid = 0x1d6b;
    f->pid = 0x0100 + (uint16_t)(f - fk.devs);
    f->bus = bus;
    f->ports[0] = port1;
    f->ports[1] = port2;
    f->nports = port2 ? 2 : 1;
    f->speed = LIBUSB_SPEED_HIGH;
    snprintf(f->serial, sizeof f->serial, "%s", serial ? serial : "");
    snprintf(f->product, sizeof f->product, "Fake UVC %d", (int)(f - fk.devs));
    if (config) {
        memcpy(f->config, config, config_len);
        f->config_len = config_len;
    }
    f->max_payload = 1000;
    f->dev = calloc(1, sizeof *f->dev);
    f->dev->f = f;
    f->dev->refs = 1;
    f->t0 = now_ns();
    pthread_mutex_unlock(&fk.lock);
    return f;
}

static inline fake_dev *fake_add_spec(uint8_t bus, uint8_t port1, uint8_t port2, const char *serial,
                               bool bulk)
{
    uvc_blob x;
    uvc_spec_options o = {.small_only = true, .bulk = bulk};
    uvc_spec_build(&x, &o);
    return fake_add(bus, port1, port2, serial, x.b, x.n);
}

static inline void fake_reset(void)
{
    pthread_mutex_lock(&fk.lock);
    for (int i = 0; i < MAX_FAKE; i++)
        if (fk.devs[i].used && fk.devs[i].dev) {
            /* the test dropped its references; leftovers are the fake's own */
            free(fk.devs[i].dev);
        }
    memset(fk.devs, 0, sizeof fk.devs);
    fk.npending = fk.ncancelled = fk.nlog = fk.nevents = 0;
    fk.open_handles = 0;
    pthread_mutex_unlock(&fk.lock);
}

/* Unplug: outstanding transfers complete with NO_DEVICE and a "left" event follows, both
 * from the event thread. */
static inline void fake_unplug(fake_dev *f)
{
    pthread_mutex_lock(&fk.lock);
    f->unplug = true;
    pthread_mutex_unlock(&fk.lock);
}

/* Plug back in: a new libusb_device, an "arrived" event. */
static inline void fake_replug(fake_dev *f)
{
    pthread_mutex_lock(&fk.lock);
    f->present = true;
    f->unplug = false;
    f->frame = 0;
    f->offset = 0;
    f->gap = 0;
    struct libusb_device *old = f->dev;
    f->dev = calloc(1, sizeof *f->dev);
    if (--old->refs == 0)
        free(old); /* else the backend's last unref frees it */
    f->dev->f = f;
    f->dev->refs = 1;
    fk.events[fk.nevents].dev = f->dev;
    fk.events[fk.nevents].event = LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
    fk.nevents++;
    pthread_mutex_unlock(&fk.lock);
}

static inline int count_log(uint8_t type, uint8_t request, uint16_t value)
{
    pthread_mutex_lock(&fk.lock);
    int n = 0;
    for (int i = 0; i < fk.nlog; i++)
        if (fk.log[i].type == type && fk.log[i].request == request && fk.log[i].value == value)
            n++;
    pthread_mutex_unlock(&fk.lock);
    return n;
}

/* Last control request of this type/request/wValue (and wIndex unless index_any). */
static inline const control_log *last_log_at(uint8_t type, uint8_t request, uint16_t value,
                                      int index)
{
    const control_log *l = NULL;
    pthread_mutex_lock(&fk.lock);
    for (int i = 0; i < fk.nlog; i++)
        if (fk.log[i].type == type && fk.log[i].request == request &&
            fk.log[i].value == value && (index < 0 || fk.log[i].index == index))
            l = &fk.log[i];
    pthread_mutex_unlock(&fk.lock);
    return l;
}

static inline const control_log *last_log(uint8_t type, uint8_t request, uint16_t value)
{
    return last_log_at(type, request, value, -1);
}

/* ------------------------------------------------------------------ payload generator */

/* Device clock: 48 MHz, +30 ppm, from the fake's t0. */
static inline uint32_t device_ticks(const fake_dev *f, uint64_t host_ns)
{
    double t = (double)(host_ns - f->t0) * 1e-9;
    return (uint32_t)(uint64_t)(t * 48e6 * (1 + 30e-6) + 1000.0);
}

/* One payload of at most `cap` bytes into out; returns its length, *lost when this packet is
 * to be reported lost. */
static inline size_t generate(fake_dev *f, uint8_t *out, size_t cap, uint64_t sample_ns, bool *lost)
{
    *lost = false;
    if (f->stall)
        return 0;
    if (f->gap > 0) {
        f->gap--;
        return 0;
    }
    if (f->interval_ns && f->offset == 0) {
        if (sample_ns < f->next_frame_ns)
            return 0;
        /* on the common grid: cameras of one rig expose at the same instants */
        f->next_frame_ns = sample_ns - sample_ns % f->interval_ns + f->interval_ns;
    }
    size_t data = cap - 12;
    if (data > FRAME_BYTES - f->offset)
        data = FRAME_BYTES - f->offset;
    bool last = f->offset + data == FRAME_BYTES;
    uint32_t stc = device_ticks(f, sample_ns);
    /* exposure started 3 ms before the frame's first payload */
    if (f->offset == 0)
        f->frame_pts = device_ticks(f, sample_ns - 3000000);
    out[0] = 12;
    out[1] = (uint8_t)(KM_UVC_HEADER_EOH | KM_UVC_HEADER_PTS | KM_UVC_HEADER_SCR |
                       (f->fid ? KM_UVC_HEADER_FID : 0) |
                       (last && !f->no_eof ? KM_UVC_HEADER_EOF : 0));
    for (int i = 0; i < 4; i++) {
        out[2 + i] = (uint8_t)(f->frame_pts >> (8 * i));
        out[6 + i] = (uint8_t)(stc >> (8 * i));
    }
    uint16_t sof = (uint16_t)((sample_ns / 1000000) & 0x7ff);
    out[10] = (uint8_t)sof;
    out[11] = (uint8_t)(sof >> 8);
    if (f->image)
        memcpy(out + 12, f->image + f->offset, data);
    else
        memset(out + 12, (int)(f->frame & 0xff), data);
    if (f->lose_every && f->frame % (uint64_t)f->lose_every == 1 && f->offset == 0 && data < FRAME_BYTES)
        *lost = true;
    f->offset += data;
    if (last) {
        f->offset = 0;
        f->frame++;
        f->fid = !f->fid;
        f->gap = 4;
    }
    return 12 + data;
}

/* ------------------------------------------------------------------ wrapped libusb */

int __wrap_libusb_init(libusb_context **ctx);
void __wrap_libusb_exit(libusb_context *ctx);
int __wrap_libusb_has_capability(uint32_t capability);
int __wrap_libusb_hotplug_register_callback(libusb_context *ctx, int events, int flags,
                                            int vendor_id, int product_id, int dev_class,
                                            libusb_hotplug_callback_fn cb_fn, void *user_data,
                                            libusb_hotplug_callback_handle *callback_handle);
void __wrap_libusb_hotplug_deregister_callback(libusb_context *ctx,
                                               libusb_hotplug_callback_handle callback_handle);
int __wrap_libusb_handle_events_timeout_completed(libusb_context *ctx, struct timeval *tv,
                                                  int *completed);
void __wrap_libusb_interrupt_event_handler(libusb_context *ctx);
ssize_t __wrap_libusb_get_device_list(libusb_context *ctx, libusb_device ***list);
void __wrap_libusb_free_device_list(libusb_device **list, int unref_devices);
int __wrap_libusb_get_device_descriptor(libusb_device *dev,
                                        struct libusb_device_descriptor *desc);
int __wrap_libusb_get_config_descriptor(libusb_device *dev, uint8_t config_index,
                                        struct libusb_config_descriptor **config);
void __wrap_libusb_free_config_descriptor(struct libusb_config_descriptor *config);
uint8_t __wrap_libusb_get_bus_number(libusb_device *dev);
int __wrap_libusb_get_port_numbers(libusb_device *dev, uint8_t *port_numbers, int len);
int __wrap_libusb_get_device_speed(libusb_device *dev);
libusb_device *__wrap_libusb_ref_device(libusb_device *dev);
void __wrap_libusb_unref_device(libusb_device *dev);
int __wrap_libusb_open(libusb_device *dev, libusb_device_handle **handle);
void __wrap_libusb_close(libusb_device_handle *handle);
int __wrap_libusb_get_string_descriptor_ascii(libusb_device_handle *h, uint8_t index,
                                              unsigned char *data, int length);
int __wrap_libusb_control_transfer(libusb_device_handle *h, uint8_t type, uint8_t request,
                                   uint16_t value, uint16_t index, unsigned char *data,
                                   uint16_t length, unsigned int timeout);
int __wrap_libusb_set_auto_detach_kernel_driver(libusb_device_handle *h, int enable);
int __wrap_libusb_claim_interface(libusb_device_handle *h, int iface);
int __wrap_libusb_release_interface(libusb_device_handle *h, int iface);
int __wrap_libusb_set_interface_alt_setting(libusb_device_handle *h, int iface, int alt);
struct libusb_transfer *__wrap_libusb_alloc_transfer(int iso_packets);
void __wrap_libusb_free_transfer(struct libusb_transfer *t);
int __wrap_libusb_submit_transfer(struct libusb_transfer *t);
int __wrap_libusb_cancel_transfer(struct libusb_transfer *t);

int __wrap_libusb_init(libusb_context **ctx)
{
    *ctx = &fk.ctx;
    return 0;
}
void __wrap_libusb_exit(libusb_context *ctx) { (void)ctx; }
int __wrap_libusb_has_capability(uint32_t capability)
{
    return capability == LIBUSB_CAP_HAS_HOTPLUG;
}
int __wrap_libusb_hotplug_register_callback(libusb_context *ctx, int events, int flags,
                                            int vendor_id, int product_id, int dev_class,
                                            libusb_hotplug_callback_fn cb_fn, void *user_data,
                                            libusb_hotplug_callback_handle *callback_handle)
{
    (void)ctx;
    assert_int_equal(events,
                     LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT);
    (void)flags;
    (void)vendor_id;
    (void)product_id;
    (void)dev_class;
    pthread_mutex_lock(&fk.lock);
    fk.hotplug = cb_fn;
    fk.hotplug_user = user_data;
    pthread_mutex_unlock(&fk.lock);
    *callback_handle = 7;
    return 0;
}
void __wrap_libusb_hotplug_deregister_callback(libusb_context *ctx,
                                               libusb_hotplug_callback_handle callback_handle)
{
    (void)ctx;
    assert_int_equal(callback_handle, 7);
    pthread_mutex_lock(&fk.lock);
    fk.hotplug = NULL;
    pthread_mutex_unlock(&fk.lock);
}
void __wrap_libusb_interrupt_event_handler(libusb_context *ctx) { (void)ctx; }

/* Complete one transfer like the host controller would: fill its packets from the fake
 * camera it was submitted to, run its callback. */
static inline void complete(struct libusb_transfer *t, bool cancelled)
{
    fake_dev *f = t->dev_handle->f;
    uint64_t now = now_ns();
    pthread_mutex_lock(&fk.lock);
    if (cancelled) {
        t->status = LIBUSB_TRANSFER_CANCELLED;
    } else if (f->unplug || !f->present) {
        t->status = LIBUSB_TRANSFER_NO_DEVICE;
        if (f->present) {
            f->present = false;
            fk.events[fk.nevents].dev = f->dev;
            fk.events[fk.nevents].event = LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT;
            fk.nevents++;
        }
    } else if (t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS) {
        t->status = LIBUSB_TRANSFER_COMPLETED;
        int n = t->num_iso_packets;
        for (int i = 0; i < n; i++) {
            struct libusb_iso_packet_descriptor *p = &t->iso_packet_desc[i];
            bool lost;
            uint64_t sample = now - (uint64_t)(n - 1 - i) * 125000u;
            size_t len = generate(f, libusb_get_iso_packet_buffer_simple(t, (unsigned)i),
                                  p->length, sample, &lost);
            p->actual_length = (unsigned)len;
            p->status = lost ? LIBUSB_TRANSFER_ERROR : LIBUSB_TRANSFER_COMPLETED;
        }
    } else {
        bool lost;
        t->status = LIBUSB_TRANSFER_COMPLETED;
        size_t len = generate(f, t->buffer, (size_t)t->length, now, &lost);
        t->actual_length = (int)len;
    }
    pthread_mutex_unlock(&fk.lock);
    t->callback(t);
}

int __wrap_libusb_handle_events_timeout_completed(libusb_context *ctx, struct timeval *tv,
                                                  int *completed)
{
    (void)ctx;
    (void)tv;
    (void)completed;
    pthread_mutex_lock(&fk.lock);
    /* hot-plug events first, as libusb delivers them from its event handling */
    while (fk.nevents > 0) {
        struct libusb_device *dev = fk.events[0].dev;
        libusb_hotplug_event ev = fk.events[0].event;
        memmove(fk.events, fk.events + 1, sizeof fk.events[0] * (size_t)(fk.nevents - 1));
        fk.nevents--;
        libusb_hotplug_callback_fn cb = fk.hotplug;
        void *user = fk.hotplug_user;
        pthread_mutex_unlock(&fk.lock);
        if (cb)
            cb(&fk.ctx, dev, ev, user);
        pthread_mutex_lock(&fk.lock);
    }
    struct libusb_transfer *t = NULL;
    bool cancelled = false;
    if (fk.ncancelled > 0) {
        t = fk.cancelled[--fk.ncancelled];
        cancelled = true;
    } else if (fk.npending > 0) {
        t = fk.pending[0];
        memmove(fk.pending, fk.pending + 1, sizeof fk.pending[0] * (size_t)(fk.npending - 1));
        fk.npending--;
    }
    pthread_mutex_unlock(&fk.lock);
    if (t) {
        complete(t, cancelled);
        /* pace like the bus: one isochronous packet per 125 us microframe */
        if (!cancelled)
            sleep_us(t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS ? 125L * t->num_iso_packets : 250);
    } else {
        sleep_us(1000);
    }
    return 0;
}

ssize_t __wrap_libusb_get_device_list(libusb_context *ctx, libusb_device ***list)
{
    (void)ctx;
    pthread_mutex_lock(&fk.lock);
    libusb_device **l = calloc(MAX_FAKE + 1, sizeof *l);
    ssize_t n = 0;
    for (int i = 0; i < MAX_FAKE; i++)
        if (fk.devs[i].used && fk.devs[i].present && !fk.devs[i].unplug) {
            l[n] = fk.devs[i].dev;
            l[n]->refs++;
            n++;
        }
    pthread_mutex_unlock(&fk.lock);
    *list = l;
    return n;
}

void __wrap_libusb_free_device_list(libusb_device **list, int unref_devices)
{
    if (unref_devices)
        for (int i = 0; list[i]; i++)
            __wrap_libusb_unref_device(list[i]);
    free(list);
}

int __wrap_libusb_get_device_descriptor(libusb_device *dev, struct libusb_device_descriptor *d)
{
    memset(d, 0, sizeof *d);
    d->bLength = 18;
    d->bDescriptorType = 1;
    d->bcdUSB = 0x0200;
    d->bDeviceClass = 0xef;
    d->idVendor = dev->f->vid;
    d->idProduct = dev->f->pid;
    d->iProduct = 2;
    d->iSerialNumber = dev->f->serial[0] ? 3 : 0;
    d->bNumConfigurations = 1;
    return 0;
}

int __wrap_libusb_get_config_descriptor(libusb_device *dev, uint8_t config_index,
                                        struct libusb_config_descriptor **config)
{
    assert_int_equal(config_index, 0);
    struct libusb_config_descriptor *c = calloc(1, sizeof *c);
    struct libusb_interface *in = calloc(1, sizeof *in);
    struct libusb_interface_descriptor *alt = calloc(1, sizeof *alt);
    alt->bInterfaceClass = dev->f->uvc ? 14 : 3;
    alt->bInterfaceSubClass = 1;
    in->altsetting = alt;
    in->num_altsetting = 1;
    c->bNumInterfaces = 1;
    c->interface = in;
    *config = c;
    return 0;
}

void __wrap_libusb_free_config_descriptor(struct libusb_config_descriptor *c)
{
    if (!c)
        return;
    free((void *)c->interface[0].altsetting);
    free((void *)c->interface);
    free(c);
}

uint8_t __wrap_libusb_get_bus_number(libusb_device *dev) { return dev->f->bus; }

int __wrap_libusb_get_port_numbers(libusb_device *dev, uint8_t *ports, int len)
{
    int n = dev->f->nports < len ? dev->f->nports : len;
    memcpy(ports, dev->f->ports, (size_t)n);
    return n;
}

int __wrap_libusb_get_device_speed(libusb_device *dev) { return dev->f->speed; }

libusb_device *__wrap_libusb_ref_device(libusb_device *dev)
{
    pthread_mutex_lock(&fk.lock);
    dev->refs++;
    pthread_mutex_unlock(&fk.lock);
    return dev;
}

void __wrap_libusb_unref_device(libusb_device *dev)
{
    pthread_mutex_lock(&fk.lock);
    dev->refs--;
    /* a replaced (unplugged) device object is freed with its last reference */
    if (dev->refs == 0 && dev->f->dev != dev)
        free(dev);
    pthread_mutex_unlock(&fk.lock);
}

int __wrap_libusb_open(libusb_device *dev, libusb_device_handle **handle)
{
    if (dev->f->open_denied)
        return LIBUSB_ERROR_ACCESS;
    if (!dev->f->present || dev->f->dev != dev)
        return LIBUSB_ERROR_NO_DEVICE;
    libusb_device_handle *h = calloc(1, sizeof *h);
    h->f = dev->f;
    *handle = h;
    pthread_mutex_lock(&fk.lock);
    fk.open_handles++;
    pthread_mutex_unlock(&fk.lock);
    return 0;
}

void __wrap_libusb_close(libusb_device_handle *h)
{
    pthread_mutex_lock(&fk.lock);
    fk.open_handles--;
    pthread_mutex_unlock(&fk.lock);
    free(h);
}

int __wrap_libusb_get_string_descriptor_ascii(libusb_device_handle *h, uint8_t index,
                                              unsigned char *data, int length)
{
    const char *s = index == 3 ? h->f->serial : index == 2 ? h->f->product : NULL;
    if (!s)
        return LIBUSB_ERROR_INVALID_PARAM;
    int n = (int)strlen(s);
    if (n > length - 1)
        n = length - 1;
    memcpy(data, s, (size_t)n);
    data[n] = 0;
    return n;
}

int __wrap_libusb_control_transfer(libusb_device_handle *h, uint8_t type, uint8_t request,
                                   uint16_t value, uint16_t index, unsigned char *data,
                                   uint16_t length, unsigned int timeout)
{
    (void)timeout;
    fake_dev *f = h->f;
    pthread_mutex_lock(&fk.lock);
    if (!f->present || f->unplug) {
        pthread_mutex_unlock(&fk.lock);
        return LIBUSB_ERROR_NO_DEVICE;
    }
    if (fk.nlog < MAX_LOG) {
        control_log *l = &fk.log[fk.nlog++];
        l->type = type;
        l->request = request;
        l->value = value;
        l->index = index;
        l->length = length;
        if (!(type & 0x80))
            memcpy(l->data, data, length < 64 ? length : 64);
    }
    int rc = length;
    if (type == 0x80 && request == LIBUSB_REQUEST_GET_DESCRIPTOR && (value >> 8) == 2) {
        rc = (int)(f->config_len < length ? f->config_len : length);
        memcpy(data, f->config, (size_t)rc);
    } else if (type == 0x21 && request == KM_UVC_SET_CUR && (value >> 8) == 1) {
        memcpy(f->probe, data, length);
        f->probe_len = length;
        f->probes_set++;
    } else if (type == 0xa1 && request == KM_UVC_GET_CUR && (value >> 8) == 1) {
        /* the camera's answer: what was asked, with its sizes filled in */
        memcpy(data, f->probe, length);
        uint32_t frame = FRAME_BYTES, pay = f->max_payload;
        for (int i = 0; i < 4; i++) {
            data[18 + i] = (uint8_t)(frame >> (8 * i));
            data[22 + i] = (uint8_t)(pay >> (8 * i));
        }
    } else if (type == 0xa1 && (request == KM_UVC_GET_MIN || request == KM_UVC_GET_MAX)) {
        uint32_t v = request == KM_UVC_GET_MIN ? 1 : (length == 4 ? 10000 : 255);
        for (int i = 0; i < length; i++)
            data[i] = (uint8_t)(v >> (8 * i));
    } else if (type == 0xa1) {
        memset(data, 0, length);
    }
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

int __wrap_libusb_set_auto_detach_kernel_driver(libusb_device_handle *h, int enable)
{
    (void)h;
    assert_int_equal(enable, 1);
    return 0;
}
int __wrap_libusb_claim_interface(libusb_device_handle *h, int iface)
{
    return h->f->present ? ((void)iface, 0) : LIBUSB_ERROR_NO_DEVICE;
}
int __wrap_libusb_release_interface(libusb_device_handle *h, int iface)
{
    (void)h;
    (void)iface;
    return 0;
}
int __wrap_libusb_set_interface_alt_setting(libusb_device_handle *h, int iface, int alt)
{
    (void)iface;
    pthread_mutex_lock(&fk.lock);
    int rc = h->f->present && !h->f->unplug ? 0 : LIBUSB_ERROR_NO_DEVICE;
    if (!rc) {
        h->f->alt = alt;
        h->f->alt_changes++;
        if (alt > 0) { /* the camera starts a fresh stream */
            h->f->frame = 0;
            h->f->offset = 0;
            h->f->gap = 0;
            h->f->fid = false;
        }
    }
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

struct libusb_transfer *__wrap_libusb_alloc_transfer(int iso_packets)
{
    return calloc(1, sizeof(struct libusb_transfer) +
                         sizeof(struct libusb_iso_packet_descriptor) * (size_t)iso_packets);
}
void __wrap_libusb_free_transfer(struct libusb_transfer *t) { free(t); }

int __wrap_libusb_submit_transfer(struct libusb_transfer *t)
{
    pthread_mutex_lock(&fk.lock);
    fake_dev *f = t->dev_handle->f;
    int rc = 0;
    if (!f->present)
        rc = LIBUSB_ERROR_NO_DEVICE;
    else if (fk.npending >= MAX_PENDING)
        rc = LIBUSB_ERROR_BUSY;
    else
        fk.pending[fk.npending++] = t;
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

int __wrap_libusb_cancel_transfer(struct libusb_transfer *t)
{
    pthread_mutex_lock(&fk.lock);
    int rc = LIBUSB_ERROR_NOT_FOUND;
    for (int i = 0; i < fk.npending; i++)
        if (fk.pending[i] == t) {
            memmove(fk.pending + i, fk.pending + i + 1,
                    sizeof fk.pending[0] * (size_t)(fk.npending - i - 1));
            fk.npending--;
            fk.cancelled[fk.ncancelled++] = t;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

#endif /* KINEMA_TESTS_FAKE_USB_H */
