/* The UVC backend against a simulated libusb: every libusb function the backend calls is
 * wrapped at link time (-Wl,--wrap=libusb_...) and answered by fake cameras built from the UVC
 * 1.5 specification (tests/capture/uvc_spec_descriptors.h) or from a real camera's
 * descriptors (the C920 fixture). The fake streams isochronous (or bulk) payloads with
 * FID/EOF/PTS/SCR headers from a 48 MHz device clock, and can lose packets, leave out EOF,
 * stall, or be unplugged and plugged back in (hot-plug events from the event thread, as real
 * libusb delivers them).
 *
 * Checked: enumeration (VID/PID, serial, bus-port path, modes); opening by serial and path;
 * the probe/commit bytes sent and the alternate setting chosen; refusal of a mode or a second
 * camera the bus cannot carry; frames reassembled with their pixels, sequence numbers and
 * PTS-mapped time stamps; lost packets (dropped or flagged); frames ended by FID toggles;
 * bulk streaming; exposure/gain/rate controls; disconnect mid-stream (KM_ERR_DEVICE, the other
 * camera keeps running under the capture runner) and reattachment through the hot-plug
 * callback; the stall watchdog. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libusb.h>
#include <pthread.h>
#include <stdatomic.h>
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

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static fake_dev *fake_add(uint8_t bus, uint8_t port1, uint8_t port2, const char *serial,
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

static fake_dev *fake_add_spec(uint8_t bus, uint8_t port1, uint8_t port2, const char *serial,
                               bool bulk)
{
    uvc_blob x;
    uvc_spec_options o = {.small_only = true, .bulk = bulk};
    uvc_spec_build(&x, &o);
    return fake_add(bus, port1, port2, serial, x.b, x.n);
}

static void fake_reset(void)
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
static void fake_unplug(fake_dev *f)
{
    pthread_mutex_lock(&fk.lock);
    f->unplug = true;
    pthread_mutex_unlock(&fk.lock);
}

/* Plug back in: a new libusb_device, an "arrived" event. */
static void fake_replug(fake_dev *f)
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

static int count_log(uint8_t type, uint8_t request, uint16_t value)
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
static const control_log *last_log_at(uint8_t type, uint8_t request, uint16_t value,
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

static const control_log *last_log(uint8_t type, uint8_t request, uint16_t value)
{
    return last_log_at(type, request, value, -1);
}

/* ------------------------------------------------------------------ payload generator */

/* Device clock: 48 MHz, +30 ppm, from the fake's t0. */
static uint32_t device_ticks(const fake_dev *f, uint64_t host_ns)
{
    double t = (double)(host_ns - f->t0) * 1e-9;
    return (uint32_t)(uint64_t)(t * 48e6 * (1 + 30e-6) + 1000.0);
}

/* One payload of at most `cap` bytes into out; returns its length, *lost when this packet is
 * to be reported lost. */
static size_t generate(fake_dev *f, uint8_t *out, size_t cap, uint64_t sample_ns, bool *lost)
{
    *lost = false;
    if (f->stall)
        return 0;
    if (f->gap > 0) {
        f->gap--;
        return 0;
    }
    size_t data = cap - 12;
    if (data > FRAME_BYTES - f->offset)
        data = FRAME_BYTES - f->offset;
    bool last = f->offset + data == FRAME_BYTES;
    uint32_t stc = device_ticks(f, sample_ns);
    /* exposure started 3 ms before the frame's first payload */
    static uint32_t frame_pts[MAX_FAKE];
    int id = (int)(f - fk.devs);
    if (f->offset == 0)
        frame_pts[id] = device_ticks(f, sample_ns - 3000000);
    out[0] = 12;
    out[1] = (uint8_t)(KM_UVC_HEADER_EOH | KM_UVC_HEADER_PTS | KM_UVC_HEADER_SCR |
                       (f->fid ? KM_UVC_HEADER_FID : 0) |
                       (last && !f->no_eof ? KM_UVC_HEADER_EOF : 0));
    for (int i = 0; i < 4; i++) {
        out[2 + i] = (uint8_t)(frame_pts[id] >> (8 * i));
        out[6 + i] = (uint8_t)(stc >> (8 * i));
    }
    uint16_t sof = (uint16_t)((sample_ns / 1000000) & 0x7ff);
    out[10] = (uint8_t)sof;
    out[11] = (uint8_t)(sof >> 8);
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
static void complete(struct libusb_transfer *t, bool cancelled)
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

/* ------------------------------------------------------------------ helpers */

static int setup(void **state)
{
    (void)state;
    fake_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(fk.open_handles, 0);
    fake_reset();
    return 0;
}

typedef struct frame_buf {
    km_frame f;
    uint8_t data[FRAME_BYTES * 2];
} frame_buf;

static void frame_init(frame_buf *b)
{
    memset(&b->f, 0, sizeof b->f);
    b->f.data = b->data;
    b->f.capacity = sizeof b->data;
}

/* Next frame within 2 s; checks its pixels say the frame number. */
static km_status next(km_source *src, frame_buf *b)
{
    uint64_t end = now_ns() + 2000000000ull;
    for (;;) {
        frame_init(b);
        km_status st = km_source_next_frame(src, &b->f, 50000000ull);
        if (st != KM_ERR_AGAIN || now_ns() > end)
            return st;
    }
}

/* Whole frame, every pixel the frame number the fake camera wrote. */
static void check_pixels(const km_frame *f)
{
    assert_int_equal(f->size, FRAME_BYTES);
    uint8_t v = f->data[0];
    for (size_t i = 0; i < f->size; i++)
        if (f->data[i] != v)
            fail_msg("frame %llu: byte %zu is %u, expected %u", (unsigned long long)f->sequence,
                     i, f->data[i], v);
}

/* ------------------------------------------------------------------ tests */

static void test_enumeration(void **state)
{
    (void)state;
    fake_add_spec(1, 2, 3, "CAM-A", false);
    size_t n;
    uint8_t *c920 = NULL;
    {
        const char *src = getenv("KINEMA_SOURCE_DIR");
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/capture/fixtures/uvc/logitech_hd_pro_920.config.bin",
                 src ? src : ".");
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        c920 = malloc(4096);
        n = fread(c920, 1, 4096, fp);
        fclose(fp);
    }
    fake_dev *b = fake_add(2, 1, 0, "E1CA2A7F", c920, n);
    b->vid = 0x046d;
    b->pid = 0x082d;
    fake_add(1, 4, 0, "KEYBOARD", NULL, 0); /* not a camera */
    fake_dev *d = fake_add_spec(3, 1, 0, "LOCKED", false);
    d->open_denied = true;
    free(c920);

    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    assert_non_null(ctx);
    static km_uvc_device_info list[8];
    int count = 0;
    assert_int_equal(km_uvc_list(ctx, list, 8, &count), KM_OK);
    assert_int_equal(count, 3);
    assert_string_equal(list[0].path, "1-2.3");
    assert_string_equal(list[0].serial, "CAM-A");
    assert_int_equal(list[0].bus, 1);
    assert_true(list[0].opened);
    assert_int_equal(list[0].uvc_version, 0x0150);
    assert_int_equal(list[0].mode_count, 1);
    assert_int_equal(list[0].modes[0].format, KM_PIXEL_GRAY8);
    assert_int_equal(list[0].modes[0].width, 64);
    assert_true(list[0].modes[0].max_rate_hz > 119.9 && list[0].modes[0].max_rate_hz < 120.1);
    assert_true(list[0].modes[0].min_rate_hz > 29.9 && list[0].modes[0].min_rate_hz < 30.1);
    assert_int_equal(list[1].vendor_id, 0x046d);
    assert_int_equal(list[1].product_id, 0x082d);
    assert_string_equal(list[1].path, "2-1");
    assert_string_equal(list[1].serial, "E1CA2A7F");
    assert_int_equal(list[1].mode_count, 19 + 17 + 17);
    assert_string_equal(list[1].modes[0].fourcc, "YUY2");
    assert_string_equal(list[1].modes[19].fourcc, "H264");
    assert_int_equal(list[1].modes[19].format, KM_PIXEL_FORMAT_COUNT);
    assert_int_equal(list[1].modes[36].format, KM_PIXEL_MJPEG);
    assert_false(list[2].opened);
    assert_string_equal(list[2].serial, "");
    /* too small an array */
    assert_int_equal(km_uvc_list(ctx, list, 1, &count), KM_ERR_CAPACITY);
    assert_int_equal(count, 1);
    km_uvc_context_destroy(ctx);
}

static void test_open_and_negotiate(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 2, 3, "CAM-A", false);
    fake_add_spec(1, 2, 4, "CAM-B", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    snprintf(cfg.serial, sizeof cfg.serial, "CAM-A");
    cfg.rate_hz = 60;
    cfg.camera = 3;
    km_uvc_camera *cam = NULL;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    if (!src)
        fail_msg("%s", km_last_error());
    assert_non_null(cam);
    /* probe: 48 bytes (bcdUVC 1.5), bmHint 1, format 1, frame 1, 166666 x 100 ns */
    const control_log *p = last_log(0x21, KM_UVC_SET_CUR, 0x0100);
    assert_non_null(p);
    assert_int_equal(p->length, 48);
    assert_int_equal(p->index, 1); /* the streaming interface */
    static const uint8_t want[8] = {0x01, 0x00, 0x01, 0x01, 0x0a, 0x8b, 0x02, 0x00};
    assert_memory_equal(p->data, want, 8);
    assert_non_null(last_log(0xa1, KM_UVC_GET_CUR, 0x0100));
    /* commit = what the camera answered (dwMaxPayloadTransferSize 1000) */
    const control_log *c = last_log(0x21, KM_UVC_SET_CUR, 0x0200);
    assert_non_null(c);
    assert_int_equal(c->length, 48);
    assert_memory_equal(c->data, want, 8);
    assert_int_equal(c->data[22] | (c->data[23] << 8), 1000);
    km_source_info info;
    km_source_describe(src, &info);
    assert_string_equal(info.backend, "uvc");
    assert_string_equal(info.serial, "CAM-A");
    assert_int_equal(info.camera, 3);
    assert_int_equal(info.width, 64);
    assert_int_equal(info.format, KM_PIXEL_GRAY8);
    assert_int_equal(info.max_frame_bytes, FRAME_BYTES);
    assert_true(info.rate_hz > 59.9 && info.rate_hz < 60.1);
    /* the alternate setting is chosen at start: 1000 bytes need the 1024-byte setting 2 */
    assert_int_equal(km_source_start(src), KM_OK);
    assert_int_equal(a->alt, 2);
    km_source_destroy(src);
    assert_int_equal(a->alt, 0);

    /* by USB path */
    km_uvc_config byp = km_uvc_config_default();
    snprintf(byp.path, sizeof byp.path, "1-2.4");
    src = km_uvc_source_create(ctx, &byp, NULL, &st);
    assert_non_null(src);
    km_source_describe(src, &info);
    assert_string_equal(info.serial, "CAM-B");
    km_source_destroy(src);
    /* nobody with this serial: the message lists who is there */
    snprintf(cfg.serial, sizeof cfg.serial, "NOPE");
    assert_null(km_uvc_source_create(ctx, &cfg, NULL, &st));
    assert_int_equal(st, KM_ERR_NOT_FOUND);
    assert_non_null(strstr(km_last_error(), "CAM-A"));
    /* a mode the camera lacks */
    km_uvc_config big = km_uvc_config_default();
    big.width = 640;
    big.height = 480;
    assert_null(km_uvc_source_create(ctx, &big, NULL, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    km_uvc_context_destroy(ctx);
}

static void test_bandwidth_refusal(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 1, 0, "A", false);
    fake_dev *b = fake_add_spec(1, 2, 0, "B", false);
    fake_dev *c = fake_add_spec(2, 1, 0, "C", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    /* more than any alternate setting carries */
    a->max_payload = 4000;
    snprintf(cfg.serial, sizeof cfg.serial, "A");
    assert_null(km_uvc_source_create(ctx, &cfg, NULL, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "needs 4000 bytes per microframe"));
    assert_non_null(strstr(km_last_error(), "3072"));
    /* two 3 x 1024 cameras on bus 1: the second is refused, bus 2 is fine */
    a->max_payload = 3000;
    b->max_payload = 3000;
    c->max_payload = 3000;
    km_source *sa = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_non_null(sa);
    snprintf(cfg.serial, sizeof cfg.serial, "B");
    assert_null(km_uvc_source_create(ctx, &cfg, NULL, &st));
    assert_int_equal(st, KM_ERR_UNSUPPORTED);
    assert_non_null(strstr(km_last_error(), "bus 1"));
    assert_non_null(strstr(km_last_error(), "needs 3072 bytes per microframe, 2928 of 6000"));
    snprintf(cfg.serial, sizeof cfg.serial, "C");
    km_source *sc = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_non_null(sc);
    /* once A is gone its bandwidth is free again */
    km_source_destroy(sa);
    snprintf(cfg.serial, sizeof cfg.serial, "B");
    km_source *sb = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_non_null(sb);
    km_source_destroy(sb);
    km_source_destroy(sc);
    km_uvc_context_destroy(ctx);
}

static void test_streaming_and_timestamps(void **state)
{
    (void)state;
    fake_add_spec(1, 1, 0, "S", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_non_null(src);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    uint64_t last_seq = 0;
    int checked_time = 0;
    uint64_t t_start = now_ns();
    for (int i = 0; i < 500; i++) {
        assert_int_equal(next(src, &b), KM_OK);
        check_pixels(&b.f);
        /* one stream, no restart: the sequence counts the camera's frames from 0 */
        assert_int_equal(b.f.data[0], (uint8_t)b.f.sequence);
        assert_int_equal(b.f.flags, 0);
        assert_int_equal(b.f.width, 64);
        assert_int_equal(b.f.stride, 64);
        if (i > 0)
            assert_true(b.f.sequence > last_seq);
        last_seq = b.f.sequence;
        /* PTS: exposure 3 ms before the frame's first payload, which went over the bus up to
         * 8 microframes before the transfer completed */
        if (now_ns() - t_start > 100000000ull) {
            int64_t lead = (int64_t)b.f.arrival_ns - (int64_t)b.f.time_ns;
            if (lead < 2500000 || lead > 6000000)
                fail_msg("frame %llu: time_ns %lld us before arrival, expected 3..4 ms",
                         (unsigned long long)b.f.sequence, (long long)lead / 1000);
            checked_time++;
        }
    }
    km_uvc_stats s;
    km_uvc_camera_stats(cam, &s);
    print_message("500 frames, %d time-checked; clock %+.1f ppm (fake: +30)\n", checked_time,
                  s.clock_ppm);
    assert_true(s.frames >= 500);
    assert_true(s.clock_ppm > -200 && s.clock_ppm < 260);
    assert_true(s.connected);
    assert_true(s.clock_valid);
    assert_true(checked_time > 20);
    assert_int_equal(s.lost_packets, 0);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_lost_packets_and_fid(void **state)
{
    (void)state;
    fake_dev *f = fake_add_spec(1, 1, 0, "L", false);
    f->lose_every = 3;
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(next(src, &b), KM_OK);
        check_pixels(&b.f); /* only whole frames come out */
        assert_true(b.f.data[0] % 3 != 1); /* the fake damages frames 1, 4, 7, ... */
    }
    km_uvc_stats s;
    km_uvc_camera_stats(cam, &s);
    assert_true(s.lost_packets >= 9);
    assert_true(s.dropped_incomplete >= 9);
    assert_int_equal(s.incomplete, 0);
    km_source_destroy(src);

    /* delivered flagged instead; and a camera that never sets EOF */
    pthread_mutex_lock(&fk.lock);
    f->no_eof = true;
    pthread_mutex_unlock(&fk.lock);
    cfg.deliver_incomplete = true;
    src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    int flagged = 0, whole = 0;
    for (int i = 0; i < 30; i++) {
        km_status r = next(src, &b);
        if (r != KM_OK) {
            km_uvc_camera_stats(cam, &s);
            fail_msg("frame %d: %s; frames %llu lost %llu dropped %llu/%llu/%llu hdr %llu", i,
                     km_status_name(r), (unsigned long long)s.frames,
                     (unsigned long long)s.lost_packets,
                     (unsigned long long)s.dropped_incomplete,
                     (unsigned long long)s.dropped_overlong,
                     (unsigned long long)s.dropped_no_buffer,
                     (unsigned long long)s.header_errors);
        }
        if (b.f.flags & KM_FRAME_FLAG_INCOMPLETE) {
            flagged++;
            assert_true(b.f.size <= FRAME_BYTES);
        } else {
            check_pixels(&b.f);
            whole++;
        }
    }
    assert_true(flagged >= 5);
    assert_true(whole >= 15);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_bulk(void **state)
{
    (void)state;
    fake_dev *f = fake_add_spec(1, 1, 0, "BULK", true);
    f->max_payload = 1024;
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    km_source *src = km_uvc_source_create(ctx, &cfg, NULL, &st);
    if (!src)
        fail_msg("%s", km_last_error());
    assert_int_equal(km_source_start(src), KM_OK);
    assert_int_equal(f->alt_changes, 0); /* bulk streams stay in setting 0 */
    static frame_buf b;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(next(src, &b), KM_OK);
        check_pixels(&b.f);
    }
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_controls(void **state)
{
    (void)state;
    fake_add_spec(1, 1, 0, "CTL", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.exposure_us = 1000;
    cfg.gain = 100;
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_non_null(src);
    /* AE mode manual on the camera terminal (unit 1, interface 0) */
    const control_log *l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_CT_AE_MODE_CONTROL << 8, 0x0100);
    assert_non_null(l);
    assert_int_equal(l->index, 0x0100);
    assert_int_equal(l->length, 1);
    assert_int_equal(l->data[0], KM_UVC_AE_MODE_MANUAL);
    /* exposure 1000 us = 10 x 100 us */
    l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL << 8, 0x0100);
    assert_non_null(l);
    assert_int_equal(l->index, 0x0100);
    assert_int_equal(l->length, 4);
    assert_int_equal(l->data[0], 10);
    /* gain on the processing unit (unit 2) */
    l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_PU_GAIN_CONTROL << 8, 0x0200);
    assert_non_null(l);
    assert_int_equal(l->index, 0x0200);
    assert_int_equal(l->data[0], 100);
    /* at run time */
    assert_int_equal(km_uvc_camera_set_exposure(cam, 250), KM_OK);
    l = last_log_at(0x21, KM_UVC_SET_CUR, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL << 8, 0x0100);
    assert_int_equal(l->data[0], 3); /* 250 us rounds to 300 us */
    assert_int_equal(km_uvc_camera_set_exposure(cam, 2e6), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "100..1000000 us"));
    assert_int_equal(km_uvc_camera_set_gain(cam, 300), KM_ERR_INVALID_ARGUMENT);
    /* frame rate by a new probe, also while streaming */
    assert_int_equal(km_source_start(src), KM_OK);
    int probes = count_log(0x21, KM_UVC_SET_CUR, 0x0100);
    assert_int_equal(km_uvc_camera_set_rate(cam, 120), KM_OK);
    assert_int_equal(count_log(0x21, KM_UVC_SET_CUR, 0x0100), probes + 1);
    l = last_log(0x21, KM_UVC_SET_CUR, 0x0100);
    uint32_t iv = (uint32_t)(l->data[4] | (l->data[5] << 8) | (l->data[6] << 16));
    assert_int_equal(iv, 83333);
    km_source_info info;
    km_source_describe(src, &info);
    assert_true(info.rate_hz > 119 && info.rate_hz < 121);
    static frame_buf b;
    assert_int_equal(next(src, &b), KM_OK);
    check_pixels(&b.f);
    km_source_destroy(src);

    /* a camera without the controls */
    uvc_blob x;
    uvc_spec_options o = {.small_only = true};
    uvc_spec_build(&x, &o);
    for (size_t off = x.b[0]; off < x.n; off += x.b[off])
        if (x.b[off + 1] == 0x24 && x.b[off + 2] == 0x02 && x.b[off] >= 18)
            x.b[off + 15] = 0; /* camera terminal bmControls */
    fake_add(1, 5, 0, "NOCTL", x.b, x.n);
    km_uvc_config plain = km_uvc_config_default();
    snprintf(plain.serial, sizeof plain.serial, "NOCTL");
    src = km_uvc_source_create(ctx, &plain, &cam, &st);
    assert_non_null(src);
    assert_int_equal(km_uvc_camera_set_exposure(cam, 500), KM_ERR_UNSUPPORTED);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_disconnect_and_reattach(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 1, 0, "A", false);
    fake_add_spec(2, 1, 0, "B", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    snprintf(cfg.serial, sizeof cfg.serial, "A");
    km_uvc_camera *cam_a, *cam_b;
    km_source *sa = km_uvc_source_create(ctx, &cfg, &cam_a, &st);
    snprintf(cfg.serial, sizeof cfg.serial, "B");
    cfg.camera = 1;
    km_source *sb = km_uvc_source_create(ctx, &cfg, &cam_b, &st);
    assert_non_null(sa);
    assert_non_null(sb);
    /* both under the capture runner, one thread each */
    km_capture *ca = km_capture_create(sa, 4, &st);
    km_capture *cb = km_capture_create(sb, 4, &st);
    assert_int_equal(km_capture_start(ca), KM_OK);
    assert_int_equal(km_capture_start(cb), KM_OK);
    uint64_t got_a = 0, got_b = 0;
    uint64_t end = now_ns() + 3000000000ull;
    while ((got_a < 20 || got_b < 20) && now_ns() < end) {
        km_frame *f;
        while ((f = km_capture_pop(ca))) {
            check_pixels(f);
            got_a++;
            km_capture_release(ca, f);
        }
        while ((f = km_capture_pop(cb))) {
            got_b++;
            km_capture_release(cb, f);
        }
        sleep_us(2000);
    }
    assert_true(got_a >= 20 && got_b >= 20);

    /* A is pulled out mid-stream */
    fake_unplug(a);
    end = now_ns() + 2000000000ull;
    km_uvc_stats s;
    do {
        sleep_us(5000);
        km_uvc_camera_stats(cam_a, &s);
    } while (s.connected && now_ns() < end);
    assert_false(s.connected);
    /* A's runner reports the error; B keeps delivering meanwhile */
    km_capture_stats cs;
    end = now_ns() + 2000000000ull;
    do {
        sleep_us(5000);
        km_capture_stats_get(ca, &cs);
    } while (cs.errors == 0 && now_ns() < end);
    assert_true(cs.errors >= 1);
    uint64_t b_before = got_b;
    end = now_ns() + 300000000ull;
    while (now_ns() < end) {
        km_frame *f;
        while ((f = km_capture_pop(ca)))
            km_capture_release(ca, f);
        while ((f = km_capture_pop(cb))) {
            got_b++;
            km_capture_release(cb, f);
        }
        sleep_us(2000);
    }
    assert_true(got_b > b_before + 10);
    km_uvc_camera_stats(cam_a, &s);
    assert_int_equal(s.disconnects, 1);
    int probes_before = count_log(0x21, KM_UVC_SET_CUR, 0x0100);

    /* A comes back (a new libusb_device): reattached through the hot-plug callback */
    fake_replug(a);
    uint64_t a_after = 0;
    end = now_ns() + 3000000000ull;
    while (a_after < 10 && now_ns() < end) {
        km_frame *f;
        while ((f = km_capture_pop(ca))) {
            check_pixels(f);
            a_after++;
            km_capture_release(ca, f);
        }
        while ((f = km_capture_pop(cb)))
            km_capture_release(cb, f);
        sleep_us(2000);
    }
    assert_true(a_after >= 10);
    km_uvc_camera_stats(cam_a, &s);
    assert_true(s.connected);
    assert_int_equal(s.reattaches, 1);
    assert_true(count_log(0x21, KM_UVC_SET_CUR, 0x0100) > probes_before); /* renegotiated */
    assert_int_equal(a->alt, 2);
    km_capture_destroy(ca);
    km_capture_destroy(cb);
    km_uvc_context_destroy(ctx);
}

/* Without the runner: exactly one KM_ERR_DEVICE, then KM_ERR_AGAIN while it is away. */
static void test_disconnect_direct(void **state)
{
    (void)state;
    fake_dev *a = fake_add_spec(1, 1, 0, "D", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    km_source *src = km_uvc_source_create(ctx, &cfg, NULL, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    assert_int_equal(next(src, &b), KM_OK);
    fake_unplug(a);
    int device_errors = 0, again = 0;
    for (int i = 0; i < 20; i++) {
        frame_init(&b);
        km_status r = km_source_next_frame(src, &b.f, 20000000ull);
        if (r == KM_ERR_DEVICE) {
            device_errors++;
            assert_non_null(strstr(km_last_error(), "disconnected"));
        } else if (r == KM_ERR_AGAIN && device_errors) {
            again++;
        }
    }
    assert_int_equal(device_errors, 1);
    assert_true(again >= 10);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_watchdog(void **state)
{
    (void)state;
    fake_dev *f = fake_add_spec(1, 1, 0, "W", false);
    km_status st;
    km_uvc_context *ctx = km_uvc_context_create(&st);
    km_uvc_config cfg = km_uvc_config_default();
    cfg.packets_per_transfer = 8;
    cfg.rate_hz = 120; /* 10 periods = 83 ms, so the 200 ms floor applies */
    km_uvc_camera *cam;
    km_source *src = km_uvc_source_create(ctx, &cfg, &cam, &st);
    assert_int_equal(km_source_start(src), KM_OK);
    static frame_buf b;
    assert_int_equal(next(src, &b), KM_OK);
    int probes = count_log(0x21, KM_UVC_SET_CUR, 0x0100);
    pthread_mutex_lock(&fk.lock);
    f->stall = true; /* the camera keeps answering with empty packets */
    pthread_mutex_unlock(&fk.lock);
    km_uvc_stats s;
    uint64_t end = now_ns() + 2000000000ull;
    do {
        frame_init(&b);
        km_source_next_frame(src, &b.f, 50000000ull);
        km_uvc_camera_stats(cam, &s);
    } while (s.restarts == 0 && now_ns() < end);
    assert_true(s.restarts >= 1);
    assert_true(count_log(0x21, KM_UVC_SET_CUR, 0x0100) > probes);
    pthread_mutex_lock(&fk.lock);
    f->stall = false;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(next(src, &b), KM_OK);
    check_pixels(&b.f);
    km_source_destroy(src);
    km_uvc_context_destroy(ctx);
}

static void test_config_read(void **state)
{
    (void)state;
    const char *text = "sources:\n"
                       "  - type: uvc\n"
                       "    camera: 2\n"
                       "    serial: \"E1CA2A7F\"\n"
                       "    format: gray8\n"
                       "    width: 640\n"
                       "    height: 480\n"
                       "    rate_hz: 120\n"
                       "    exposure_us: 500\n"
                       "    gain: 16\n"
                       "    deliver_incomplete: true\n"
                       "  - type: uvc\n"
                       "    format: rgb\n"
                       "  - type: uvc\n"
                       "    exposur_us: 5\n";
    km_status st;
    km_config *cfg = km_config_parse(text, strlen(text), "test.yaml", &st);
    assert_non_null(cfg);
    km_uvc_config c = km_uvc_config_default();
    assert_int_equal(km_uvc_config_read(cfg, "sources.0", &c), KM_OK);
    assert_int_equal(c.camera, 2);
    assert_string_equal(c.serial, "E1CA2A7F");
    assert_int_equal(c.format, KM_PIXEL_GRAY8);
    assert_int_equal(c.width, 640);
    assert_true(c.rate_hz == 120);
    assert_true(c.exposure_us == 500);
    assert_int_equal(c.gain, 16);
    assert_true(c.deliver_incomplete);
    assert_int_equal(c.transfers, 4);
    c = km_uvc_config_default();
    assert_int_equal(km_uvc_config_read(cfg, "sources.1", &c), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "test.yaml:13"));
    assert_int_equal(km_uvc_config_read(cfg, "sources.2", &c), KM_ERR_PARSE);
    assert_non_null(strstr(km_last_error(), "exposure_us"));
    km_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enumeration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_and_negotiate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bandwidth_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_and_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_packets_and_fid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_and_reattach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_read, setup, teardown),
    };
    if (getenv("KM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
