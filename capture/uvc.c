/* The USB Video Class backend on libusb: enumeration, opening by serial or USB path,
 * probe/commit negotiation, isochronous and bulk streaming, controls, hot-plug and the stall
 * watchdog. The pure parts live in uvc_descriptors.c, uvc_negotiate.c, uvc_payload.c and
 * uvc_clock.c (see uvc.h).
 *
 * Threads. A km_uvc_context runs one event thread (libusb_handle_events_timeout_completed):
 * every transfer callback and hot-plug callback runs there. A transfer callback reassembles the
 * payloads of its packets straight into a frame: the pool frame the capture thread is waiting
 * with in next_frame when there is one (no further copy), else one of two private frames that
 * next_frame copies out later. Each camera's state shared by the two threads is guarded by
 * the camera's mutex; nothing on that path allocates. Slow work (control transfers, restarts,
 * reattaching) runs on the capture thread in next_frame or on the caller's thread, never on
 * the event thread, which must keep serving the other cameras.
 *
 * Device life cycle. A transfer that completes with LIBUSB_TRANSFER_NO_DEVICE, a resubmission
 * that fails with LIBUSB_ERROR_NO_DEVICE or a hot-plug "left" event marks the camera gone:
 * next_frame then releases the device and reports KM_ERR_DEVICE (again every 5 s while it is
 * away, KM_ERR_AGAIN in between), and looks for it again on every hot-plug "arrived" event
 * and once a second. A camera that delivers no complete frame for watchdog_periods frame
 * periods is restarted (streaming stopped, probe/commit again, restarted). */
#include <libusb.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uvc.h"

#define MAX_CAMERAS 32
#define MAX_TRANSFERS 16
#define CONTROL_TIMEOUT_MS 1000
#define CONFIG_MAX_BYTES 65535
#define SLOTS 2
#define RESCAN_INTERVAL_NS 1000000000ull
#define REPORT_INTERVAL_NS 5000000000ull
#define DRAIN_TIMEOUT_NS 1000000000ull

struct km_uvc_context {
    libusb_context *usb;
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
    pthread_mutex_t lock;        /* cameras[], budget */
    km_uvc_bus_budget budget;
    km_uvc_camera *cameras[MAX_CAMERAS];
    int camera_count;
    bool hotplug;
    libusb_hotplug_callback_handle hotplug_handle;
};

enum slot_state { SLOT_FREE = 0, SLOT_NEXT, SLOT_FILLING, SLOT_READY };

struct km_uvc_camera {
    km_uvc_context *ctx;
    km_uvc_config cfg;
    pthread_mutex_t lock;        /* everything the event thread touches */
    pthread_cond_t cond;
    pthread_mutex_t control;     /* serialises control transfers and stream restarts */

    /* device */
    libusb_device *dev;
    libusb_device_handle *handle;
    uint16_t vendor_id, product_id;
    uint8_t bus;
    int speed;
    char path[KM_UVC_PATH_MAX];
    char serial[KM_NAME_MAX];
    char product[KM_NAME_MAX];
    bool claimed_vc, claimed_vs;
    uint8_t *config_raw;
    km_uvc_descriptor_set *desc;

    /* negotiated */
    int stream;
    km_uvc_choice choice;
    km_uvc_probe committed;
    int alt_index;               /* -1 for bulk */
    uint32_t booked_bytes;       /* on the bus budget */
    bool booked;
    km_pixel_format format;
    int width, height, stride;
    size_t frame_bytes;          /* largest frame this mode produces */
    size_t buffer_bytes;         /* what a frame buffer holds (max over the modes) */
    double rate_hz;
    uint64_t interval_ns;        /* between isochronous packets */
    double clock_hz;

    /* transfers */
    struct libusb_transfer *transfers[MAX_TRANSFERS];
    uint8_t *transfer_data[MAX_TRANSFERS];
    int transfer_count;
    int packets;                 /* per isochronous transfer */
    size_t transfer_bytes;       /* buffer of each transfer */
    int in_flight;
    bool streaming;              /* the user started the source */
    bool running;                /* transfers are submitted */
    bool stopping;

    /* life cycle */
    bool gone;
    bool released;               /* device handle closed after it went */
    bool rescan;
    uint64_t last_scan_ns, last_report_ns;
    uint64_t last_frame_ns;

    /* assembly (event thread, under lock) */
    km_uvc_assembler assembler;
    km_uvc_clock clock;
    uint64_t frames_started;
    uint64_t frame_start_ns;
    km_frame *target;            /* the pool frame next_frame waits with */
    bool target_done;
    uint8_t *slot_data[SLOTS];
    km_frame slot_meta[SLOTS];
    int slot_state[SLOTS];
    uint64_t slot_order[SLOTS];
    uint64_t slot_counter;

    km_uvc_stats stats;
};

/* ------------------------------------------------------------------ helpers */

static km_status usb_error(int rc, const char *what)
{
    return km_error(rc == LIBUSB_ERROR_NO_DEVICE ? KM_ERR_DEVICE
                    : rc == LIBUSB_ERROR_ACCESS  ? KM_ERR_IO
                    : rc == LIBUSB_ERROR_TIMEOUT ? KM_ERR_TIMEOUT
                                                 : KM_ERR_DEVICE,
                    "uvc: %s: %s", what, libusb_error_name(rc));
}

static void path_of(libusb_device *dev, char *out, size_t size)
{
    uint8_t ports[8];
    int n = libusb_get_port_numbers(dev, ports, (int)sizeof ports);
    int used = snprintf(out, size, "%u", libusb_get_bus_number(dev));
    for (int i = 0; i < n && used > 0 && (size_t)used < size; i++)
        used += snprintf(out + used, size - (size_t)used, "%c%u", i == 0 ? '-' : '.', ports[i]);
}

static bool is_video_device(libusb_device *dev)
{
    struct libusb_config_descriptor *cd = NULL;
    if (libusb_get_config_descriptor(dev, 0, &cd) != 0 || !cd)
        return false;
    bool video = false;
    for (int i = 0; i < cd->bNumInterfaces && !video; i++) {
        const struct libusb_interface *in = &cd->interface[i];
        for (int a = 0; a < in->num_altsetting; a++)
            if (in->altsetting[a].bInterfaceClass == KM_UVC_CLASS_VIDEO &&
                in->altsetting[a].bInterfaceSubClass == KM_UVC_SC_VIDEOCONTROL)
                video = true;
    }
    libusb_free_config_descriptor(cd);
    return video;
}

/* Whole configuration descriptor through GET_DESCRIPTOR (the bytes the parser wants). */
static km_status read_config(libusb_device_handle *h, uint8_t *buf, size_t cap, size_t *size)
{
    int rc = libusb_get_descriptor(h, LIBUSB_DT_CONFIG, 0, buf, 9);
    if (rc < 9)
        return rc < 0 ? usb_error(rc, "reading the configuration descriptor")
                      : km_error(KM_ERR_FORMAT, "uvc: configuration descriptor of %d bytes", rc);
    size_t total = (size_t)(buf[2] | (buf[3] << 8));
    if (total < 9 || total > cap)
        return km_error(KM_ERR_FORMAT, "uvc: configuration wTotalLength %zu", total);
    rc = libusb_get_descriptor(h, LIBUSB_DT_CONFIG, 0, buf, (int)total);
    if (rc < 0)
        return usb_error(rc, "reading the configuration descriptor");
    *size = (size_t)rc;
    return KM_OK;
}

static void read_string(libusb_device_handle *h, uint8_t index, char *out, size_t size)
{
    out[0] = '\0';
    if (!index)
        return;
    unsigned char buf[KM_NAME_MAX];
    int rc = libusb_get_string_descriptor_ascii(h, index, buf, (int)sizeof buf);
    if (rc <= 0)
        return;
    size_t n = (size_t)rc < size - 1 ? (size_t)rc : size - 1;
    memcpy(out, buf, n);
    out[n] = '\0';
}

static void fill_modes(const km_uvc_descriptor_set *d, km_uvc_device_info *info)
{
    info->mode_count = 0;
    info->uvc_version = d->bcd_uvc;
    for (int i = 0; i < d->format_count; i++) {
        const km_uvc_format_desc *f = &d->formats[i];
        for (int j = f->first_frame; j < f->first_frame + f->frame_count; j++) {
            if (info->mode_count >= KM_UVC_MAX_MODES)
                return;
            const km_uvc_frame_desc *fr = &d->frames[j];
            km_uvc_mode *m = &info->modes[info->mode_count++];
            m->format = f->pixel_format;
            memcpy(m->fourcc, f->fourcc, sizeof m->fourcc);
            m->width = fr->width;
            m->height = fr->height;
            uint32_t lo = UINT32_MAX, hi = 0;
            if (fr->continuous) {
                lo = fr->min_interval;
                hi = fr->max_interval;
            } else {
                for (int k = 0; k < fr->interval_count; k++) {
                    if (fr->intervals[k] < lo)
                        lo = fr->intervals[k];
                    if (fr->intervals[k] > hi)
                        hi = fr->intervals[k];
                }
            }
            m->max_rate_hz = lo && lo != UINT32_MAX ? 1e7 / lo : 0;
            m->min_rate_hz = hi ? 1e7 / hi : 0;
        }
    }
}

/* ------------------------------------------------------------------ event thread */

static void *event_thread(void *arg)
{
    km_uvc_context *ctx = arg;
    while (!atomic_load_explicit(&ctx->stop, memory_order_acquire)) {
        struct timeval tv = {0, 100000};
        int completed = 0;
        int rc = libusb_handle_events_timeout_completed(ctx->usb, &tv, &completed);
        if (rc != 0 && rc != LIBUSB_ERROR_INTERRUPTED && rc != LIBUSB_ERROR_TIMEOUT) {
            km_log(KM_LOG_WARN, "uvc", "event loop: %s", libusb_error_name(rc));
            struct timespec pause = {0, 10000000};
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

static int LIBUSB_CALL hotplug_cb(libusb_context *usb, libusb_device *dev,
                                  libusb_hotplug_event event, void *user)
{
    (void)usb;
    km_uvc_context *ctx = user;
    pthread_mutex_lock(&ctx->lock);
    for (int i = 0; i < ctx->camera_count; i++) {
        km_uvc_camera *cam = ctx->cameras[i];
        pthread_mutex_lock(&cam->lock);
        if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT && cam->dev == dev && !cam->gone) {
            cam->gone = true;
            pthread_cond_broadcast(&cam->cond);
        } else if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED && cam->gone) {
            cam->rescan = true;
            pthread_cond_broadcast(&cam->cond);
        }
        pthread_mutex_unlock(&cam->lock);
    }
    pthread_mutex_unlock(&ctx->lock);
    return 0; /* stay registered */
}

km_uvc_context *km_uvc_context_create(km_status *err)
{
    km_status st = KM_OK;
    km_uvc_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        st = km_error(KM_ERR_NO_MEMORY, "uvc: no memory");
        goto out;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    atomic_init(&ctx->stop, false);
    km_uvc_bus_budget_init(&ctx->budget);
    int rc = libusb_init(&ctx->usb);
    if (rc != 0) {
        st = usb_error(rc, "libusb_init");
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        ctx = NULL;
        goto out;
    }
    if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        rc = libusb_hotplug_register_callback(
            ctx->usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
            0, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
            hotplug_cb, ctx, &ctx->hotplug_handle);
        ctx->hotplug = rc == 0;
        if (rc != 0)
            km_log(KM_LOG_WARN, "uvc", "no hot-plug events (%s): cameras are looked for once a "
                   "second after they go", libusb_error_name(rc));
    }
    if (pthread_create(&ctx->thread, NULL, event_thread, ctx) != 0) {
        st = km_error(KM_ERR_INTERNAL, "uvc: cannot start the event thread");
        if (ctx->hotplug)
            libusb_hotplug_deregister_callback(ctx->usb, ctx->hotplug_handle);
        libusb_exit(ctx->usb);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        ctx = NULL;
        goto out;
    }
    ctx->thread_running = true;
out:
    if (err)
        *err = st;
    return ctx;
}

void km_uvc_context_destroy(km_uvc_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->camera_count)
        km_log(KM_LOG_ERROR, "uvc", "context destroyed with %d camera(s) still open",
               ctx->camera_count);
    if (ctx->hotplug)
        libusb_hotplug_deregister_callback(ctx->usb, ctx->hotplug_handle);
    atomic_store_explicit(&ctx->stop, true, memory_order_release);
    if (ctx->thread_running) {
        libusb_interrupt_event_handler(ctx->usb);
        pthread_join(ctx->thread, NULL);
    }
    libusb_exit(ctx->usb);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* ------------------------------------------------------------------ enumeration */

km_status km_uvc_list(km_uvc_context *ctx, km_uvc_device_info *out, int capacity, int *count)
{
    if (!ctx || !count || (capacity > 0 && !out))
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: bad arguments to list");
    *count = 0;
    libusb_device **list = NULL;
    ssize_t n = libusb_get_device_list(ctx->usb, &list);
    if (n < 0)
        return usb_error((int)n, "listing devices");
    uint8_t *raw = malloc(CONFIG_MAX_BYTES);
    km_uvc_descriptor_set *desc = malloc(sizeof *desc);
    if (!raw || !desc) {
        free(raw);
        free(desc);
        libusb_free_device_list(list, 1);
        return km_error(KM_ERR_NO_MEMORY, "uvc: no memory");
    }
    km_status st = KM_OK;
    for (ssize_t i = 0; i < n; i++) {
        libusb_device *dev = list[i];
        struct libusb_device_descriptor dd;
        if (libusb_get_device_descriptor(dev, &dd) != 0 || !is_video_device(dev))
            continue;
        if (*count >= capacity) {
            st = km_error(KM_ERR_CAPACITY, "uvc: more than %d cameras", capacity);
            break;
        }
        km_uvc_device_info *info = &out[(*count)++];
        memset(info, 0, sizeof *info);
        info->vendor_id = dd.idVendor;
        info->product_id = dd.idProduct;
        info->bus = libusb_get_bus_number(dev);
        info->speed = libusb_get_device_speed(dev);
        path_of(dev, info->path, sizeof info->path);
        libusb_device_handle *h = NULL;
        int rc = libusb_open(dev, &h);
        if (rc != 0) {
            km_log(KM_LOG_DEBUG, "uvc", "%s: cannot open (%s)", info->path,
                   libusb_error_name(rc));
            continue;
        }
        info->opened = true;
        read_string(h, dd.iSerialNumber, info->serial, sizeof info->serial);
        read_string(h, dd.iProduct, info->product, sizeof info->product);
        size_t size = 0;
        if (read_config(h, raw, CONFIG_MAX_BYTES, &size) == KM_OK &&
            km_uvc_parse_config(raw, size, desc) == KM_OK)
            fill_modes(desc, info);
        else
            km_log(KM_LOG_WARN, "uvc", "%s: descriptors unreadable: %s", info->path,
                   km_last_error());
        libusb_close(h);
    }
    free(raw);
    free(desc);
    libusb_free_device_list(list, 1);
    return st;
}

/* ------------------------------------------------------------------ device match and open */

/* Find the device the camera's config (or, on reattach, its identity) names. On success
 * *dev is referenced and *handle open. */
static km_status find_device(km_uvc_camera *cam, bool reattach, libusb_device **dev_out,
                             libusb_device_handle **handle_out)
{
    libusb_device **list = NULL;
    ssize_t n = libusb_get_device_list(cam->ctx->usb, &list);
    if (n < 0)
        return usb_error((int)n, "listing devices");
    const char *want_serial = reattach ? cam->serial : cam->cfg.serial;
    const char *want_path = reattach ? (cam->serial[0] ? "" : cam->path) : cam->cfg.path;
    uint16_t want_vid = reattach ? cam->vendor_id : cam->cfg.vendor_id;
    uint16_t want_pid = reattach ? cam->product_id : cam->cfg.product_id;
    char seen[256];
    size_t seen_used = 0;
    seen[0] = '\0';
    km_status st = km_error(KM_ERR_NOT_FOUND, "uvc: no camera");
    for (ssize_t i = 0; i < n; i++) {
        libusb_device *dev = list[i];
        struct libusb_device_descriptor dd;
        if (libusb_get_device_descriptor(dev, &dd) != 0)
            continue;
        if ((want_vid && dd.idVendor != want_vid) || (want_pid && dd.idProduct != want_pid))
            continue;
        if (!is_video_device(dev))
            continue;
        char path[KM_UVC_PATH_MAX];
        path_of(dev, path, sizeof path);
        if (want_path[0] && strcmp(path, want_path) != 0) {
            int w = snprintf(seen + seen_used, sizeof seen - seen_used, "%s%s", seen_used ? ", " : "",
                             path);
            if (w > 0 && (size_t)w < sizeof seen - seen_used)
                seen_used += (size_t)w;
            continue;
        }
        libusb_device_handle *h = NULL;
        int rc = libusb_open(dev, &h);
        if (rc != 0) {
            km_log(KM_LOG_WARN, "uvc", "%s: cannot open (%s): permissions (udev rule)?", path,
                   libusb_error_name(rc));
            continue;
        }
        char serial[KM_NAME_MAX];
        read_string(h, dd.iSerialNumber, serial, sizeof serial);
        if (want_serial[0] && strcmp(serial, want_serial) != 0) {
            int w = snprintf(seen + seen_used, sizeof seen - seen_used, "%s%s", seen_used ? ", " : "",
                             serial[0] ? serial : path);
            if (w > 0 && (size_t)w < sizeof seen - seen_used)
                seen_used += (size_t)w;
            libusb_close(h);
            continue;
        }
        /* this one */
        cam->vendor_id = dd.idVendor;
        cam->product_id = dd.idProduct;
        cam->bus = libusb_get_bus_number(dev);
        cam->speed = libusb_get_device_speed(dev);
        snprintf(cam->path, sizeof cam->path, "%s", path);
        snprintf(cam->serial, sizeof cam->serial, "%s", serial);
        read_string(h, dd.iProduct, cam->product, sizeof cam->product);
        *dev_out = libusb_ref_device(dev);
        *handle_out = h;
        st = KM_OK;
        break;
    }
    libusb_free_device_list(list, 1);
    if (st != KM_OK) {
        if (want_serial[0])
            st = km_error(KM_ERR_NOT_FOUND, "uvc: no camera with serial \"%s\" (found: %s)",
                          want_serial, seen[0] ? seen : "none");
        else if (want_path[0])
            st = km_error(KM_ERR_NOT_FOUND, "uvc: no camera at USB path %s (found: %s)",
                          want_path, seen[0] ? seen : "none");
        else
            st = km_error(KM_ERR_NOT_FOUND, "uvc: no UVC camera found");
    }
    return st;
}

/* ------------------------------------------------------------------ controls */

static km_status control(km_uvc_camera *cam, uint8_t request, uint8_t unit, uint8_t selector,
                         uint8_t *data, uint16_t length, const char *what)
{
    uint8_t type = request & 0x80 ? 0xa1 : 0x21; /* class request to an interface */
    uint16_t index = (uint16_t)((unit << 8) | cam->desc->control_interface);
    if (unit == 0) /* VideoStreaming requests address the streaming interface */
        index = cam->desc->streams[cam->stream].interface_number;
    int rc = libusb_control_transfer(cam->handle, type, request, (uint16_t)(selector << 8), index,
                                     data, length, CONTROL_TIMEOUT_MS);
    if (rc < 0)
        return usb_error(rc, what);
    if (rc != length && !(request & 0x80))
        return km_error(KM_ERR_DEVICE, "uvc: %s: %d of %u bytes sent", what, rc, length);
    if ((request & 0x80) && rc < (int)length && rc < 26)
        return km_error(KM_ERR_DEVICE, "uvc: %s: %d of %u bytes", what, rc, length);
    return KM_OK;
}

static uint32_t rdn(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static km_status set_exposure_locked(km_uvc_camera *cam, double exposure_us)
{
    if (cam->gone || !cam->handle)
        return km_error(KM_ERR_DEVICE, "uvc %s: camera is disconnected", cam->path);
    const km_uvc_descriptor_set *d = cam->desc;
    if (d->camera_terminal < 0 ||
        !(d->units[d->camera_terminal].controls & KM_UVC_CT_BIT_EXPOSURE_ABSOLUTE))
        return km_error(KM_ERR_UNSUPPORTED, "uvc %s: the camera has no absolute exposure control",
                        cam->path);
    uint8_t unit = d->units[d->camera_terminal].id;
    if (d->units[d->camera_terminal].controls & KM_UVC_CT_BIT_AE_MODE) {
        uint8_t mode = KM_UVC_AE_MODE_MANUAL;
        km_status st = control(cam, KM_UVC_SET_CUR, unit, KM_UVC_CT_AE_MODE_CONTROL, &mode, 1,
                               "setting manual exposure mode");
        if (st)
            return st;
    }
    /* dwExposureTimeAbsolute is in units of 100 us (UVC 1.5 4.2.2.1.4) */
    long units = lround(exposure_us / 100.0);
    if (units < 1)
        units = 1;
    uint8_t lo[4] = {0}, hi[4] = {0};
    if (control(cam, KM_UVC_GET_MIN, unit, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL, lo, 4,
                "reading the exposure range") == KM_OK &&
        control(cam, KM_UVC_GET_MAX, unit, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL, hi, 4,
                "reading the exposure range") == KM_OK) {
        uint32_t mn = rdn(lo, 4), mx = rdn(hi, 4);
        if (mx >= mn && mx > 0 && ((uint32_t)units < mn || (uint32_t)units > mx))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "uvc %s: exposure %.0f us outside the camera's %u..%u us", cam->path,
                            exposure_us, mn * 100, mx * 100);
    }
    uint8_t v[4];
    for (int i = 0; i < 4; i++)
        v[i] = (uint8_t)((uint32_t)units >> (8 * i));
    return control(cam, KM_UVC_SET_CUR, unit, KM_UVC_CT_EXPOSURE_TIME_ABSOLUTE_CONTROL, v, 4,
                   "setting the exposure time");
}

static km_status set_gain_locked(km_uvc_camera *cam, int gain)
{
    if (cam->gone || !cam->handle)
        return km_error(KM_ERR_DEVICE, "uvc %s: camera is disconnected", cam->path);
    const km_uvc_descriptor_set *d = cam->desc;
    if (d->processing_unit < 0 || !(d->units[d->processing_unit].controls & KM_UVC_PU_BIT_GAIN))
        return km_error(KM_ERR_UNSUPPORTED, "uvc %s: the camera has no gain control", cam->path);
    uint8_t unit = d->units[d->processing_unit].id;
    uint8_t lo[2] = {0}, hi[2] = {0};
    if (control(cam, KM_UVC_GET_MIN, unit, KM_UVC_PU_GAIN_CONTROL, lo, 2, "reading the gain range") ==
            KM_OK &&
        control(cam, KM_UVC_GET_MAX, unit, KM_UVC_PU_GAIN_CONTROL, hi, 2, "reading the gain range") ==
            KM_OK) {
        uint32_t mn = rdn(lo, 2), mx = rdn(hi, 2);
        if (mx >= mn && (gain < (int)mn || gain > (int)mx))
            return km_error(KM_ERR_INVALID_ARGUMENT, "uvc %s: gain %d outside the camera's %u..%u",
                            cam->path, gain, mn, mx);
    }
    uint8_t v[2] = {(uint8_t)gain, (uint8_t)(gain >> 8)};
    return control(cam, KM_UVC_SET_CUR, unit, KM_UVC_PU_GAIN_CONTROL, v, 2, "setting the gain");
}

/* ------------------------------------------------------------------ negotiation */

static void release_booking(km_uvc_camera *cam)
{
    if (!cam->booked)
        return;
    pthread_mutex_lock(&cam->ctx->lock);
    km_uvc_bus_budget_release(&cam->ctx->budget, cam->bus, cam->speed, cam->booked_bytes);
    pthread_mutex_unlock(&cam->ctx->lock);
    cam->booked = false;
    cam->booked_bytes = 0;
}

/* Probe and commit the configured mode, pick the alternate setting and book its bandwidth.
 * Caller holds cam->control; streaming is stopped. */
static km_status negotiate(km_uvc_camera *cam)
{
    const km_uvc_descriptor_set *d = cam->desc;
    km_uvc_request req = {cam->cfg.format, cam->cfg.width, cam->cfg.height, cam->cfg.rate_hz};
    km_status st = km_uvc_choose(d, &req, &cam->choice);
    if (st)
        return st;
    const km_uvc_format_desc *f = &d->formats[cam->choice.format];
    const km_uvc_frame_desc *fr = &d->frames[cam->choice.frame];
    cam->stream = f->stream;
    km_uvc_probe p = {0};
    p.hint = 1; /* keep dwFrameInterval */
    p.format_index = f->index;
    p.frame_index = fr->index;
    p.frame_interval = cam->choice.interval;
    uint8_t buf[48];
    size_t n = km_uvc_probe_pack(&p, d->bcd_uvc, buf, sizeof buf);
    st = control(cam, KM_UVC_SET_CUR, 0, KM_UVC_VS_PROBE_CONTROL, buf, (uint16_t)n,
                 "VS_PROBE_CONTROL SET_CUR");
    if (st)
        return st;
    memset(buf, 0, sizeof buf);
    st = control(cam, KM_UVC_GET_CUR, 0, KM_UVC_VS_PROBE_CONTROL, buf, (uint16_t)n,
                 "VS_PROBE_CONTROL GET_CUR");
    if (st)
        return st;
    km_uvc_probe got;
    st = km_uvc_probe_unpack(buf, n, &got);
    if (st)
        return st;
    if (got.format_index != p.format_index || got.frame_index != p.frame_index)
        return km_error(KM_ERR_UNSUPPORTED,
                        "uvc %s: the camera answered the probe for format %u frame %u with "
                        "format %u frame %u",
                        cam->path, p.format_index, p.frame_index, got.format_index,
                        got.frame_index);
    st = control(cam, KM_UVC_SET_CUR, 0, KM_UVC_VS_COMMIT_CONTROL, buf, (uint16_t)n,
                 "VS_COMMIT_CONTROL SET_CUR");
    if (st)
        return st;
    cam->committed = got;

    /* mode */
    cam->format = f->pixel_format;
    cam->width = fr->width;
    cam->height = fr->height;
    cam->stride = f->pixel_format == KM_PIXEL_GRAY8   ? fr->width
                  : f->pixel_format == KM_PIXEL_MJPEG ? 0
                                                      : fr->width * 2;
    uint32_t interval = got.frame_interval ? got.frame_interval : cam->choice.interval;
    cam->rate_hz = interval ? 1e7 / interval : 0;
    size_t bytes = km_uvc_frame_bytes(f, fr);
    if (f->kind != KM_UVC_FORMAT_UNCOMPRESSED && got.max_video_frame_size > bytes)
        bytes = got.max_video_frame_size;
    cam->frame_bytes = bytes;
    cam->clock_hz = cam->cfg.clock_hz > 0 ? cam->cfg.clock_hz
                    : got.clock_frequency ? got.clock_frequency
                    : d->clock_hz        ? d->clock_hz
                                         : 48e6;

    /* alternate setting and bandwidth */
    release_booking(cam);
    const km_uvc_stream_desc *s = &d->streams[cam->stream];
    if (s->bulk) {
        cam->alt_index = -1;
        cam->interval_ns = 0;
        return KM_OK;
    }
    uint32_t payload = got.max_payload_transfer_size;
    if (payload == 0)
        return km_error(KM_ERR_DEVICE, "uvc %s: the camera committed dwMaxPayloadTransferSize 0",
                        cam->path);
    st = km_uvc_select_alt(d, cam->stream, payload, cam->speed, &cam->alt_index);
    if (st)
        return st;
    const km_uvc_alt_desc *a = &d->alts[cam->alt_index];
    uint32_t per_frame = km_uvc_alt_bytes_per_frame(a, cam->speed);
    pthread_mutex_lock(&cam->ctx->lock);
    st = km_uvc_bus_budget_reserve(&cam->ctx->budget, cam->bus, cam->speed, per_frame);
    pthread_mutex_unlock(&cam->ctx->lock);
    if (st)
        return st;
    cam->booked = true;
    cam->booked_bytes = per_frame;
    unsigned e = a->interval ? a->interval - 1u : 0u;
    cam->interval_ns = cam->speed >= KM_USB_SPEED_HIGH ? 125000ull << (e > 15 ? 15 : e)
                                                       : 1000000ull * (a->interval ? a->interval : 1);
    return KM_OK;
}

/* ------------------------------------------------------------------ streaming (event thread) */

/* Give the assembler somewhere to put the next frame: the waiting pool frame, else a free
 * private slot, else the oldest finished slot (its frame is dropped: the consumer is behind). */
static void provide_buffer(km_uvc_camera *cam)
{
    km_uvc_assembler *a = &cam->assembler;
    /* Only between frames: handing out a slot earlier could take (drop) a finished frame the
     * capture thread has not had the chance to collect yet. */
    if (a->next_buffer || a->in_frame)
        return;
    bool ready = false;
    for (int i = 0; i < SLOTS; i++)
        ready = ready || cam->slot_state[i] == SLOT_READY;
    /* the waiting pool frame takes the next frame directly, unless an older one is waiting
     * in a slot (frames stay in order) */
    if (cam->target && !cam->target_done && !ready && a->buffer != cam->target->data &&
        cam->target->capacity >= cam->frame_bytes) {
        km_uvc_assembler_set_buffer(a, cam->target->data, cam->target->capacity);
        return;
    }
    if (a->buffer && !a->in_frame)
        return; /* the buffer of a dropped frame is used again */
    int pick = -1;
    for (int i = 0; i < SLOTS; i++)
        if (cam->slot_state[i] == SLOT_FREE) {
            pick = i;
            break;
        }
    if (pick < 0) {
        uint64_t oldest = UINT64_MAX;
        for (int i = 0; i < SLOTS; i++)
            if (cam->slot_state[i] == SLOT_READY && cam->slot_order[i] < oldest) {
                oldest = cam->slot_order[i];
                pick = i;
            }
        if (pick < 0)
            return; /* nothing: the frame is followed and discarded */
        cam->stats.dropped_no_buffer++;
    }
    cam->slot_state[pick] = SLOT_NEXT;
    km_uvc_assembler_set_buffer(a, cam->slot_data[pick], cam->buffer_bytes);
}

static void fill_meta(km_uvc_camera *cam, km_frame *f, const km_uvc_frame_result *r,
                      uint64_t arrival_ns)
{
    uint64_t t = cam->frame_start_ns;
    uint64_t mapped;
    if (r->has_pts && km_uvc_clock_map(&cam->clock, r->pts, &mapped) == KM_OK &&
        mapped <= arrival_ns && arrival_ns - mapped < 2000000000ull)
        t = mapped;
    f->time_ns = t;
    f->arrival_ns = arrival_ns;
    f->sequence = r->sequence;
    f->camera = cam->cfg.camera;
    f->width = cam->width;
    f->height = cam->height;
    f->stride = cam->stride;
    f->format = cam->format;
    f->size = r->bytes;
    f->flags = r->flags;
}

static void deliver(km_uvc_camera *cam, const km_uvc_frame_result *r, uint64_t now)
{
    cam->last_frame_ns = now;
    if (cam->target && r->buffer == cam->target->data) {
        uint8_t *data = cam->target->data;
        size_t capacity = cam->target->capacity;
        void *slot = cam->target->pool_slot;
        fill_meta(cam, cam->target, r, now);
        cam->target->data = data;
        cam->target->capacity = capacity;
        cam->target->pool_slot = slot;
        cam->target_done = true;
        pthread_cond_broadcast(&cam->cond);
        return;
    }
    for (int i = 0; i < SLOTS; i++)
        if (r->buffer == cam->slot_data[i]) {
            fill_meta(cam, &cam->slot_meta[i], r, now);
            cam->slot_state[i] = SLOT_READY;
            cam->slot_order[i] = ++cam->slot_counter;
            pthread_cond_broadcast(&cam->cond);
            return;
        }
}

/* Bring the private slots' states in line with the assembler: a slot handed out as the next
 * buffer is FILLING once its frame started; a FILLING or NEXT slot the assembler no longer
 * holds (its frame was dropped and another buffer taken, or the stream was reset) is FREE. */
static void sync_slots(km_uvc_camera *cam)
{
    const km_uvc_assembler *a = &cam->assembler;
    for (int i = 0; i < SLOTS; i++) {
        if (cam->slot_state[i] == SLOT_READY || cam->slot_state[i] == SLOT_FREE)
            continue;
        if (a->in_frame && a->buffer == cam->slot_data[i])
            cam->slot_state[i] = SLOT_FILLING;
        else if (a->next_buffer == cam->slot_data[i] || a->buffer == cam->slot_data[i])
            cam->slot_state[i] = SLOT_NEXT; /* reused for the next frame */
        else
            cam->slot_state[i] = SLOT_FREE;
    }
}

static void note_start(km_uvc_camera *cam, uint64_t host_ns)
{
    km_uvc_assembler *a = &cam->assembler;
    if (a->sequence != cam->frames_started) {
        cam->frames_started = a->sequence;
        cam->frame_start_ns = host_ns;
    }
}

static void payload(km_uvc_camera *cam, const uint8_t *data, size_t size, uint64_t host_ns,
                    uint64_t now)
{
    km_uvc_assembler *a = &cam->assembler;
    km_uvc_payload_header h;
    km_uvc_feed_event ev;
    km_uvc_frame_result r;
    provide_buffer(cam);
    km_status st = km_uvc_assembler_feed(a, data, size, &h, &ev, &r);
    if (st == KM_OK && size > 0 && h.has_scr)
        km_uvc_clock_add(&cam->clock, h.stc, host_ns);
    if (ev == KM_UVC_FEED_FRAME_BEFORE) {
        deliver(cam, &r, now);
        provide_buffer(cam);
        km_uvc_assembler_feed(a, data, size, NULL, &ev, &r);
    }
    note_start(cam, host_ns);
    if (ev == KM_UVC_FEED_FRAME)
        deliver(cam, &r, now);
    sync_slots(cam);
}

static void LIBUSB_CALL transfer_cb(struct libusb_transfer *t)
{
    km_uvc_camera *cam = t->user_data;
    uint64_t now = km_time_now_ns();
    pthread_mutex_lock(&cam->lock);
    if (t->status == LIBUSB_TRANSFER_NO_DEVICE) {
        cam->gone = true;
        cam->in_flight--;
        pthread_cond_broadcast(&cam->cond);
        pthread_mutex_unlock(&cam->lock);
        return;
    }
    if (t->status == LIBUSB_TRANSFER_CANCELLED || cam->stopping || cam->gone) {
        cam->in_flight--;
        pthread_cond_broadcast(&cam->cond);
        pthread_mutex_unlock(&cam->lock);
        return;
    }
    if (t->status == LIBUSB_TRANSFER_COMPLETED) {
        if (t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS) {
            int n = t->num_iso_packets;
            for (int i = 0; i < n; i++) {
                const struct libusb_iso_packet_descriptor *p = &t->iso_packet_desc[i];
                if (p->status != LIBUSB_TRANSFER_COMPLETED) {
                    km_uvc_assembler_lost(&cam->assembler, 1);
                    continue;
                }
                /* packet i went over the bus (n - 1 - i) service intervals before the last */
                uint64_t back = (uint64_t)(n - 1 - i) * cam->interval_ns;
                payload(cam, libusb_get_iso_packet_buffer_simple(t, (unsigned)i),
                        p->actual_length, now > back ? now - back : now, now);
            }
        } else {
            payload(cam, t->buffer, (size_t)t->actual_length, now, now);
        }
    } else {
        /* TIMEOUT, STALL, OVERFLOW, ERROR: the data of this transfer is lost */
        cam->stats.transfer_errors++;
        km_uvc_assembler_lost(&cam->assembler, 1);
    }
    int rc = libusb_submit_transfer(t);
    if (rc != 0) {
        cam->in_flight--;
        if (rc == LIBUSB_ERROR_NO_DEVICE)
            cam->gone = true;
        else
            cam->stats.transfer_errors++;
        pthread_cond_broadcast(&cam->cond);
    }
    pthread_mutex_unlock(&cam->lock);
}

/* ------------------------------------------------------------------ stream control */

static bool wait_until(km_uvc_camera *cam, uint64_t deadline_ns)
{
    struct timespec ts;
    uint64_t now = km_time_now_ns();
    if (now >= deadline_ns)
        return false;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wait = deadline_ns - now;
    ts.tv_sec += (time_t)(wait / 1000000000ull);
    ts.tv_nsec += (long)(wait % 1000000000ull);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(&cam->cond, &cam->lock, &ts) == 0;
}

/* Cancel every transfer and wait for their callbacks. Caller holds control, not lock. */
static void stop_transfers(km_uvc_camera *cam)
{
    pthread_mutex_lock(&cam->lock);
    cam->stopping = true;
    if (cam->in_flight > 0)
        for (int i = 0; i < cam->transfer_count; i++)
            libusb_cancel_transfer(cam->transfers[i]);
    uint64_t deadline = km_time_now_ns() + DRAIN_TIMEOUT_NS;
    while (cam->in_flight > 0 && km_time_now_ns() < deadline)
        wait_until(cam, deadline);
    if (cam->in_flight > 0)
        km_log(KM_LOG_WARN, "uvc", "%s: %d transfers did not come back", cam->path,
               cam->in_flight);
    cam->in_flight = 0;
    cam->running = false;
    cam->stopping = false;
    /* a frame in progress is lost; private frames not collected are dropped */
    km_uvc_assembler_abort(&cam->assembler);
    km_uvc_assembler_set_buffer(&cam->assembler, NULL, 0);
    sync_slots(cam);
    pthread_mutex_unlock(&cam->lock);
}

/* Select the alternate setting and submit the transfers. Caller holds control. */
static km_status start_transfers(km_uvc_camera *cam)
{
    const km_uvc_descriptor_set *d = cam->desc;
    const km_uvc_stream_desc *s = &d->streams[cam->stream];
    uint8_t endpoint;
    size_t length;
    int packets = 0;
    uint32_t packet_bytes = 0;
    if (cam->alt_index >= 0) {
        const km_uvc_alt_desc *a = &d->alts[cam->alt_index];
        int rc = libusb_set_interface_alt_setting(cam->handle, a->interface_number, a->alt);
        if (rc != 0)
            return usb_error(rc, "selecting the alternate setting");
        endpoint = a->endpoint;
        packets = cam->packets;
        packet_bytes = a->bytes_per_interval;
        length = (size_t)packets * packet_bytes;
    } else {
        endpoint = s->endpoint_address;
        for (int i = s->alt_first; i < s->alt_first + s->alt_count; i++)
            if (d->alts[i].transfer_type == 2)
                endpoint = d->alts[i].endpoint;
        length = cam->committed.max_payload_transfer_size;
        if (length == 0 || length > cam->transfer_bytes)
            length = cam->transfer_bytes;
    }
    if (length > cam->transfer_bytes)
        return km_error(KM_ERR_INTERNAL, "uvc: transfer of %zu bytes in a %zu-byte buffer", length,
                        cam->transfer_bytes);
    pthread_mutex_lock(&cam->lock);
    km_uvc_assembler_config ac = {
        .frame_bytes = cam->format == KM_PIXEL_MJPEG || cam->format == KM_PIXEL_FORMAT_COUNT
                           ? 0 : cam->frame_bytes,
        .max_frame_bytes = cam->frame_bytes,
        .deliver_incomplete = cam->cfg.deliver_incomplete};
    /* statistics and frame numbering go on across restarts */
    km_uvc_assembler_stats keep = cam->assembler.stats;
    uint64_t sequence = cam->assembler.sequence;
    km_uvc_assembler_init(&cam->assembler, &ac);
    cam->assembler.stats = keep;
    cam->assembler.sequence = sequence;
    cam->frames_started = sequence;
    if (fabs(cam->clock.nominal_hz - cam->clock_hz) > 0.5)
        km_uvc_clock_init(&cam->clock, cam->clock_hz, 0);
    cam->last_frame_ns = km_time_now_ns();
    km_status st = KM_OK;
    sync_slots(cam);
    for (int i = 0; i < cam->transfer_count; i++) {
        struct libusb_transfer *t = cam->transfers[i];
        if (packets) {
            libusb_fill_iso_transfer(t, cam->handle, endpoint, cam->transfer_data[i], (int)length,
                                     packets, transfer_cb, cam, 0);
            libusb_set_iso_packet_lengths(t, packet_bytes);
        } else {
            libusb_fill_bulk_transfer(t, cam->handle, endpoint, cam->transfer_data[i], (int)length,
                                      transfer_cb, cam, 0);
        }
        int rc = libusb_submit_transfer(t);
        if (rc != 0) {
            if (rc == LIBUSB_ERROR_NO_DEVICE)
                cam->gone = true;
            st = usb_error(rc, "submitting a transfer");
            break;
        }
        cam->in_flight++;
    }
    cam->running = cam->in_flight > 0;
    pthread_mutex_unlock(&cam->lock);
    if (st && cam->running)
        stop_transfers(cam);
    return st;
}

static void release_device(km_uvc_camera *cam)
{
    if (cam->handle) {
        if (cam->claimed_vs)
            libusb_release_interface(cam->handle, cam->desc->streams[cam->stream].interface_number);
        if (cam->claimed_vc)
            libusb_release_interface(cam->handle, cam->desc->control_interface);
        libusb_close(cam->handle);
    }
    if (cam->dev)
        libusb_unref_device(cam->dev);
    cam->handle = NULL;
    cam->dev = NULL;
    cam->claimed_vc = cam->claimed_vs = false;
}

/* Open the found device: descriptors, interfaces, negotiation, controls. Caller holds
 * control. On failure the device is released. */
static km_status setup_device(km_uvc_camera *cam, libusb_device *dev, libusb_device_handle *h)
{
    cam->dev = dev;
    cam->handle = h;
    size_t size = 0;
    km_status st = read_config(h, cam->config_raw, CONFIG_MAX_BYTES, &size);
    if (!st)
        st = km_uvc_parse_config(cam->config_raw, size, cam->desc);
    if (st)
        goto fail;
    libusb_set_auto_detach_kernel_driver(h, 1); /* uvcvideo lets go of the interfaces */
    int rc = libusb_claim_interface(h, cam->desc->control_interface);
    if (rc != 0) {
        st = usb_error(rc, "claiming the VideoControl interface (is another program using it?)");
        goto fail;
    }
    cam->claimed_vc = true;
    cam->stream = 0;
    rc = libusb_claim_interface(h, cam->desc->streams[0].interface_number);
    if (rc != 0) {
        st = usb_error(rc, "claiming the VideoStreaming interface");
        goto fail;
    }
    cam->claimed_vs = true;
    if (cam->desc->alt_count && !cam->desc->streams[0].bulk)
        libusb_set_interface_alt_setting(h, cam->desc->streams[0].interface_number, 0);
    st = negotiate(cam);
    if (st)
        goto fail;
    if (cam->cfg.exposure_us > 0 && (st = set_exposure_locked(cam, cam->cfg.exposure_us)))
        goto fail;
    if (cam->cfg.gain >= 0 && (st = set_gain_locked(cam, cam->cfg.gain)))
        goto fail;
    return KM_OK;
fail:
    release_device(cam);
    return st;
}

/* Transfer buffers sized for the largest alternate setting (or payload) of the stream, and
 * frame slots for the largest frame, so a renegotiation never allocates. */
static km_status allocate_buffers(km_uvc_camera *cam)
{
    const km_uvc_descriptor_set *d = cam->desc;
    const km_uvc_stream_desc *s = &d->streams[cam->stream];
    size_t largest_packet = 0;
    for (int i = s->alt_first; i < s->alt_first + s->alt_count; i++)
        if (d->alts[i].bytes_per_interval > largest_packet)
            largest_packet = d->alts[i].bytes_per_interval;
    cam->packets = s->bulk ? 0 : cam->cfg.packets_per_transfer;
    if (s->bulk) {
        size_t payload = cam->committed.max_payload_transfer_size;
        cam->transfer_bytes = payload > 512 ? payload : 512;
        if (cam->transfer_bytes < cam->frame_bytes && cam->transfer_bytes < (1u << 20))
            cam->transfer_bytes = cam->frame_bytes < (1u << 20) ? cam->frame_bytes : (1u << 20);
    } else {
        cam->transfer_bytes = (size_t)cam->packets * largest_packet;
    }
    size_t frame_max = 0;
    for (int i = s->format_first; i < s->format_first + s->format_count; i++) {
        const km_uvc_format_desc *f = &d->formats[i];
        for (int j = f->first_frame; j < f->first_frame + f->frame_count; j++) {
            size_t b = km_uvc_frame_bytes(f, &d->frames[j]);
            if (b > frame_max)
                frame_max = b;
        }
    }
    cam->buffer_bytes = frame_max > cam->frame_bytes ? frame_max : cam->frame_bytes;
    cam->transfer_count = cam->cfg.transfers;
    for (int i = 0; i < cam->transfer_count; i++) {
        cam->transfers[i] = libusb_alloc_transfer(cam->packets);
        cam->transfer_data[i] = malloc(cam->transfer_bytes ? cam->transfer_bytes : 1);
        if (!cam->transfers[i] || !cam->transfer_data[i])
            return km_error(KM_ERR_NO_MEMORY, "uvc: no memory for transfers");
    }
    for (int i = 0; i < SLOTS; i++) {
        cam->slot_data[i] = malloc(cam->buffer_bytes);
        if (!cam->slot_data[i])
            return km_error(KM_ERR_NO_MEMORY, "uvc: no memory for frames");
        cam->slot_meta[i].data = cam->slot_data[i];
        cam->slot_meta[i].capacity = cam->buffer_bytes;
    }
    return KM_OK;
}

/* Restart streaming (watchdog, rate change): stop, probe/commit again, start. Caller holds
 * control. */
static km_status restart_stream(km_uvc_camera *cam)
{
    stop_transfers(cam);
    if (cam->alt_index >= 0)
        libusb_set_interface_alt_setting(cam->handle,
                                         cam->desc->streams[cam->stream].interface_number, 0);
    km_status st = negotiate(cam);
    if (!st && cam->streaming)
        st = start_transfers(cam);
    pthread_mutex_lock(&cam->lock);
    cam->stats.restarts++;
    pthread_mutex_unlock(&cam->lock);
    return st;
}

/* ------------------------------------------------------------------ disconnect, reattach */

/* The camera went: give the device back to the system. Caller holds control. */
static void drop_device(km_uvc_camera *cam)
{
    stop_transfers(cam);
    release_device(cam);
    pthread_mutex_lock(&cam->lock);
    cam->released = true;
    cam->stats.disconnects++;
    pthread_mutex_unlock(&cam->lock);
    km_log(KM_LOG_WARN, "uvc", "camera %d (%s%s%s) disconnected", cam->cfg.camera, cam->path,
           cam->serial[0] ? ", serial " : "", cam->serial);
}

static bool try_reattach(km_uvc_camera *cam)
{
    libusb_device *dev = NULL;
    libusb_device_handle *h = NULL;
    if (find_device(cam, true, &dev, &h) != KM_OK)
        return false;
    km_status st = setup_device(cam, dev, h);
    if (st) {
        km_log(KM_LOG_WARN, "uvc", "camera %d back but not usable: %s", cam->cfg.camera,
               km_last_error());
        return false;
    }
    pthread_mutex_lock(&cam->lock);
    cam->gone = false;
    cam->released = false;
    cam->rescan = false;
    cam->stats.reattaches++;
    pthread_mutex_unlock(&cam->lock);
    if (cam->streaming && (st = start_transfers(cam)) != KM_OK) {
        km_log(KM_LOG_WARN, "uvc", "camera %d: restarting after reattach: %s", cam->cfg.camera,
               km_last_error());
        return false;
    }
    km_log(KM_LOG_INFO, "uvc", "camera %d (%s) reattached", cam->cfg.camera, cam->path);
    return true;
}

/* ------------------------------------------------------------------ km_source vtable */

static km_status uvc_start(void *self)
{
    km_uvc_camera *cam = self;
    pthread_mutex_lock(&cam->control);
    cam->streaming = true;
    km_status st = cam->gone ? km_error(KM_ERR_DEVICE, "uvc %s: camera is disconnected", cam->path)
                             : start_transfers(cam);
    if (st && !cam->gone)
        cam->streaming = false;
    pthread_mutex_unlock(&cam->control);
    return cam->gone ? KM_OK : st; /* a gone camera is looked for in next_frame */
}

static km_status uvc_stop(void *self)
{
    km_uvc_camera *cam = self;
    pthread_mutex_lock(&cam->control);
    cam->streaming = false;
    if (cam->handle) {
        stop_transfers(cam);
        if (cam->alt_index >= 0)
            libusb_set_interface_alt_setting(cam->handle,
                                             cam->desc->streams[cam->stream].interface_number, 0);
    }
    pthread_mutex_unlock(&cam->control);
    return KM_OK;
}

/* next_frame while the camera is away. Called without locks. */
static km_status handle_gone(km_uvc_camera *cam, uint64_t deadline)
{
    pthread_mutex_lock(&cam->control);
    bool first = !cam->released;
    if (first)
        drop_device(cam);
    uint64_t now = km_time_now_ns();
    bool scan = cam->rescan || now - cam->last_scan_ns >= RESCAN_INTERVAL_NS;
    if (scan) {
        cam->last_scan_ns = now;
        pthread_mutex_lock(&cam->lock);
        cam->rescan = false;
        pthread_mutex_unlock(&cam->lock);
        if (try_reattach(cam)) {
            pthread_mutex_unlock(&cam->control);
            return KM_ERR_AGAIN; /* frames follow on the next call */
        }
    }
    pthread_mutex_unlock(&cam->control);
    if (first || now - cam->last_report_ns >= REPORT_INTERVAL_NS) {
        cam->last_report_ns = now;
        return km_error(KM_ERR_DEVICE, "uvc: camera %d (%s%s%s) is disconnected; waiting for it",
                        cam->cfg.camera, cam->path, cam->serial[0] ? ", serial " : "",
                        cam->serial);
    }
    /* wait for a hot-plug arrival or the timeout */
    pthread_mutex_lock(&cam->lock);
    while (!cam->rescan && km_time_now_ns() < deadline)
        wait_until(cam, deadline);
    pthread_mutex_unlock(&cam->lock);
    return KM_ERR_AGAIN;
}

static uint64_t watchdog_ns(const km_uvc_camera *cam)
{
    if (cam->cfg.watchdog_periods <= 0 || cam->rate_hz <= 0)
        return 0;
    uint64_t w = (uint64_t)(cam->cfg.watchdog_periods * 1e9 / cam->rate_hz);
    return w < 200000000ull ? 200000000ull : w;
}

static km_status uvc_next_frame(void *self, km_frame *frame, uint64_t timeout_ns)
{
    km_uvc_camera *cam = self;
    uint64_t deadline = km_time_now_ns() + timeout_ns;
    pthread_mutex_lock(&cam->lock);
    if (cam->gone) {
        pthread_mutex_unlock(&cam->lock);
        return handle_gone(cam, deadline);
    }
    if (frame->capacity < cam->frame_bytes) {
        pthread_mutex_unlock(&cam->lock);
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: frame of %zu bytes, the mode needs %zu",
                        frame->capacity, cam->frame_bytes);
    }
    km_status st = KM_ERR_AGAIN;
    cam->target = frame;
    cam->target_done = false;
    for (;;) {
        /* a private frame finished earlier goes first (oldest first) */
        int ready = -1;
        uint64_t oldest = UINT64_MAX;
        for (int i = 0; i < SLOTS; i++)
            if (cam->slot_state[i] == SLOT_READY && cam->slot_order[i] < oldest) {
                oldest = cam->slot_order[i];
                ready = i;
            }
        if (cam->target_done) {
            st = KM_OK;
            break;
        }
        if (ready >= 0 && !(cam->assembler.in_frame && cam->assembler.buffer == frame->data)) {
            if (cam->assembler.next_buffer == frame->data)
                km_uvc_assembler_set_buffer(&cam->assembler, NULL, 0);
            if (cam->assembler.buffer == frame->data)
                km_uvc_assembler_abort(&cam->assembler);
            km_frame *m = &cam->slot_meta[ready];
            memcpy(frame->data, m->data, m->size);
            uint8_t *data = frame->data;
            size_t capacity = frame->capacity;
            void *slot = frame->pool_slot;
            *frame = *m;
            frame->data = data;
            frame->capacity = capacity;
            frame->pool_slot = slot;
            cam->slot_state[ready] = SLOT_FREE;
            st = KM_OK;
            break;
        }
        if (cam->gone)
            break;
        if (!wait_until(cam, deadline) && km_time_now_ns() >= deadline)
            break;
    }
    /* take the frame back from the event thread */
    if (!cam->target_done) {
        if (cam->assembler.buffer == frame->data)
            km_uvc_assembler_abort(&cam->assembler);
        if (cam->assembler.next_buffer == frame->data)
            km_uvc_assembler_set_buffer(&cam->assembler, NULL, 0);
    } else {
        st = KM_OK;
    }
    cam->target = NULL;
    cam->target_done = false;
    bool gone = cam->gone;
    uint64_t silent = km_time_now_ns() - cam->last_frame_ns;
    bool dead = cam->running && cam->in_flight == 0;
    if (st == KM_OK)
        cam->stats.frames++;
    pthread_mutex_unlock(&cam->lock);
    if (st == KM_OK)
        return KM_OK;
    if (gone)
        return handle_gone(cam, deadline);
    uint64_t w = watchdog_ns(cam);
    if (cam->streaming && ((w && silent > w) || dead)) {
        km_log(KM_LOG_WARN, "uvc", "camera %d (%s): no frame for %.0f ms, restarting the stream",
               cam->cfg.camera, cam->path, (double)silent / 1e6);
        pthread_mutex_lock(&cam->control);
        km_status rs = cam->gone ? KM_OK : restart_stream(cam);
        pthread_mutex_unlock(&cam->control);
        if (rs)
            return rs;
    }
    return KM_ERR_AGAIN;
}

static void uvc_describe(void *self, km_source_info *info)
{
    km_uvc_camera *cam = self;
    snprintf(info->backend, sizeof info->backend, "uvc");
    snprintf(info->name, sizeof info->name, "%s", cam->cfg.name[0] ? cam->cfg.name : cam->product);
    snprintf(info->serial, sizeof info->serial, "%s", cam->serial);
    info->camera = cam->cfg.camera;
    info->width = cam->width;
    info->height = cam->height;
    info->format = cam->format;
    info->rate_hz = cam->rate_hz;
    info->max_frame_bytes = cam->frame_bytes;
}

static void camera_free(km_uvc_camera *cam)
{
    if (!cam)
        return;
    if (cam->ctx) {
        pthread_mutex_lock(&cam->ctx->lock);
        for (int i = 0; i < cam->ctx->camera_count; i++)
            if (cam->ctx->cameras[i] == cam) {
                cam->ctx->cameras[i] = cam->ctx->cameras[--cam->ctx->camera_count];
                break;
            }
        pthread_mutex_unlock(&cam->ctx->lock);
    }
    if (cam->running)
        stop_transfers(cam);
    release_device(cam);
    release_booking(cam);
    for (int i = 0; i < cam->transfer_count; i++) {
        if (cam->transfers[i])
            libusb_free_transfer(cam->transfers[i]);
        free(cam->transfer_data[i]);
    }
    for (int i = 0; i < SLOTS; i++)
        free(cam->slot_data[i]);
    free(cam->desc);
    free(cam->config_raw);
    pthread_mutex_destroy(&cam->lock);
    pthread_mutex_destroy(&cam->control);
    pthread_cond_destroy(&cam->cond);
    free(cam);
}

static void uvc_close(void *self)
{
    camera_free(self);
}

static bool uvc_connected(void *self)
{
    km_uvc_camera *cam = self;
    pthread_mutex_lock(&cam->lock);
    bool connected = !cam->gone;
    pthread_mutex_unlock(&cam->lock);
    return connected;
}

static const km_source_vtable uvc_vtable = {
    .backend = "uvc",
    .start = uvc_start,
    .next_frame = uvc_next_frame,
    .stop = uvc_stop,
    .close = uvc_close,
    .describe = uvc_describe,
    .connected = uvc_connected,
};

km_uvc_config km_uvc_config_default(void)
{
    km_uvc_config c;
    memset(&c, 0, sizeof c);
    c.format = KM_PIXEL_FORMAT_COUNT;
    c.gain = -1;
    c.transfers = 4;
    c.packets_per_transfer = 32;
    c.watchdog_periods = 10;
    return c;
}

km_source *km_uvc_source_create(km_uvc_context *ctx, const km_uvc_config *cfg,
                                km_uvc_camera **camera_out, km_status *err)
{
    km_status st = KM_OK;
    km_uvc_camera *cam = NULL;
    if (camera_out)
        *camera_out = NULL;
    if (!ctx || !cfg) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "uvc: NULL context or config");
        goto fail;
    }
    if (cfg->transfers < 1 || cfg->transfers > MAX_TRANSFERS || cfg->packets_per_transfer < 1 ||
        cfg->packets_per_transfer > 1024) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "uvc: transfers must be 1..%d and "
                      "packets_per_transfer 1..1024", MAX_TRANSFERS);
        goto fail;
    }
    cam = calloc(1, sizeof *cam);
    if (!cam) {
        st = km_error(KM_ERR_NO_MEMORY, "uvc: no memory");
        goto fail;
    }
    cam->cfg = *cfg;
    cam->ctx = ctx; /* registered in ctx->cameras only once it works */
    cam->alt_index = -1;
    pthread_mutex_init(&cam->lock, NULL);
    pthread_mutex_init(&cam->control, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_cond_init(&cam->cond, &attr);
    pthread_condattr_destroy(&attr);
    cam->desc = malloc(sizeof *cam->desc);
    cam->config_raw = malloc(CONFIG_MAX_BYTES);
    if (!cam->desc || !cam->config_raw) {
        st = km_error(KM_ERR_NO_MEMORY, "uvc: no memory");
        goto fail;
    }
    libusb_device *dev = NULL;
    libusb_device_handle *h = NULL;
    st = find_device(cam, false, &dev, &h);
    if (st)
        goto fail;
    pthread_mutex_lock(&cam->control);
    st = setup_device(cam, dev, h);
    pthread_mutex_unlock(&cam->control);
    if (st)
        goto fail;
    km_uvc_clock_init(&cam->clock, cam->clock_hz, 0);
    st = allocate_buffers(cam);
    if (st)
        goto fail;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->camera_count >= MAX_CAMERAS) {
        pthread_mutex_unlock(&ctx->lock);
        st = km_error(KM_ERR_CAPACITY, "uvc: more than %d cameras on one context", MAX_CAMERAS);
        goto fail;
    }
    ctx->cameras[ctx->camera_count++] = cam;
    pthread_mutex_unlock(&ctx->lock);
    km_log(KM_LOG_INFO, "uvc",
           "camera %d: %s %04x:%04x at %s serial \"%s\": %s %dx%d %.2f Hz, %s, %u bytes per %s "
           "booked on bus %u",
           cfg->camera, cam->product, cam->vendor_id, cam->product_id, cam->path, cam->serial,
           cam->desc->formats[cam->choice.format].fourcc, cam->width, cam->height, cam->rate_hz,
           cam->alt_index < 0 ? "bulk" : "isochronous", cam->booked_bytes,
           cam->speed <= KM_USB_SPEED_FULL ? "frame" : "microframe", cam->bus);
    km_source *src = km_source_create(&uvc_vtable, cam, &st);
    if (src && camera_out)
        *camera_out = cam;
    if (err)
        *err = st;
    return src;
fail:
    camera_free(cam);
    if (err)
        *err = st;
    return NULL;
}

/* ------------------------------------------------------------------ public controls */

km_status km_uvc_camera_set_exposure(km_uvc_camera *cam, double exposure_us)
{
    if (!cam || !(exposure_us > 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: exposure must be > 0 us");
    pthread_mutex_lock(&cam->control);
    km_status st = set_exposure_locked(cam, exposure_us);
    if (!st)
        cam->cfg.exposure_us = exposure_us;
    pthread_mutex_unlock(&cam->control);
    return st;
}

km_status km_uvc_camera_set_gain(km_uvc_camera *cam, int gain)
{
    if (!cam || gain < 0 || gain > 65535)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: gain must be 0..65535");
    pthread_mutex_lock(&cam->control);
    km_status st = set_gain_locked(cam, gain);
    if (!st)
        cam->cfg.gain = gain;
    pthread_mutex_unlock(&cam->control);
    return st;
}

km_status km_uvc_camera_set_rate(km_uvc_camera *cam, double rate_hz)
{
    if (!cam || !(rate_hz > 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: rate must be > 0 Hz");
    pthread_mutex_lock(&cam->control);
    double old = cam->cfg.rate_hz;
    cam->cfg.rate_hz = rate_hz;
    km_status st;
    if (cam->gone || !cam->handle)
        st = KM_OK; /* applied when the camera comes back */
    else if (cam->running || cam->streaming)
        st = restart_stream(cam);
    else
        st = negotiate(cam);
    if (st)
        cam->cfg.rate_hz = old;
    pthread_mutex_unlock(&cam->control);
    return st;
}

void km_uvc_camera_stats(km_uvc_camera *cam, km_uvc_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!cam)
        return;
    pthread_mutex_lock(&cam->lock);
    *out = cam->stats;
    const km_uvc_assembler_stats *a = &cam->assembler.stats;
    out->incomplete = a->incomplete;
    out->dropped_incomplete = a->dropped_incomplete;
    out->dropped_overlong = a->dropped_overlong;
    out->dropped_no_buffer += a->dropped_no_buffer;
    out->lost_packets = a->lost_packets;
    out->header_errors = a->header_errors;
    out->connected = !cam->gone;
    out->clock_valid = cam->clock.valid;
    out->clock_ppm = km_uvc_clock_ppm(&cam->clock);
    pthread_mutex_unlock(&cam->lock);
}

/* ------------------------------------------------------------------ config */

static const char *const uvc_keys[] = {
    "type", "camera", "name", "serial", "path", "vendor_id", "product_id", "format", "width",
    "height", "rate_hz", "exposure_us", "gain", "deliver_incomplete", "transfers",
    "packets_per_transfer", "watchdog_periods", "clock_hz", NULL};

km_status km_uvc_config_read(const km_config *cfg, const char *path, km_uvc_config *out)
{
    if (!cfg || !path || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "uvc: NULL argument to config_read");
    km_status st = km_config_check_keys(cfg, path, uvc_keys);
    if (st)
        return st;
    char key[256];
    long v;
    double d;
    bool b;
    char s[KM_NAME_MAX];
#define KEY(name) (snprintf(key, sizeof key, "%s%s%s", path, path[0] ? "." : "", name), key)
#define GET_INT(name, lo, hi, field)                                                        \
    do {                                                                                   \
        st = km_config_get_int(cfg, KEY(name), (long)(field), (lo), (hi), &v);             \
        if (st == KM_OK)                                                                   \
            (field) = (__typeof__(field))v;                                                \
        else if (st != KM_ERR_NOT_FOUND)                                                   \
            return st;                                                                     \
    } while (0)
#define GET_DOUBLE(name, lo, hi, field)                                                     \
    do {                                                                                   \
        st = km_config_get_double(cfg, KEY(name), (field), (lo), (hi), &d);                \
        if (st == KM_OK)                                                                   \
            (field) = d;                                                                   \
        else if (st != KM_ERR_NOT_FOUND)                                                   \
            return st;                                                                     \
    } while (0)
    GET_INT("camera", 0, KM_MAX_CAMERAS - 1, out->camera);
    GET_INT("vendor_id", 0, 0xffff, out->vendor_id);
    GET_INT("product_id", 0, 0xffff, out->product_id);
    GET_INT("width", 0, 16384, out->width);
    GET_INT("height", 0, 16384, out->height);
    GET_INT("gain", -1, 65535, out->gain);
    GET_INT("transfers", 1, MAX_TRANSFERS, out->transfers);
    GET_INT("packets_per_transfer", 1, 1024, out->packets_per_transfer);
    GET_DOUBLE("rate_hz", 0, 10000, out->rate_hz);
    GET_DOUBLE("exposure_us", 0, 10000000, out->exposure_us);
    GET_DOUBLE("watchdog_periods", 0, 1e6, out->watchdog_periods);
    GET_DOUBLE("clock_hz", 0, 4e9, out->clock_hz);
    st = km_config_get_bool(cfg, KEY("deliver_incomplete"), out->deliver_incomplete, &b);
    if (st == KM_OK)
        out->deliver_incomplete = b;
    else if (st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, KEY("serial"), "", out->serial, sizeof out->serial);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, KEY("path"), "", out->path, sizeof out->path);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, KEY("name"), "", out->name, sizeof out->name);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, KEY("format"), "any", s, sizeof s);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    if (st == KM_OK) {
        if (!strcmp(s, "any"))
            out->format = KM_PIXEL_FORMAT_COUNT;
        else if (!strcmp(s, "gray8") || !strcmp(s, "y8") || !strcmp(s, "grey"))
            out->format = KM_PIXEL_GRAY8;
        else if (!strcmp(s, "gray16") || !strcmp(s, "y16"))
            out->format = KM_PIXEL_GRAY16;
        else if (!strcmp(s, "yuyv"))
            out->format = KM_PIXEL_YUYV;
        else if (!strcmp(s, "mjpeg"))
            out->format = KM_PIXEL_MJPEG;
        else
            return km_error(KM_ERR_PARSE, "%s:%d: %s: expected any, gray8, gray16, yuyv or mjpeg",
                            km_config_name(cfg), km_config_line(cfg, key), key);
    }
#undef KEY
#undef GET_INT
#undef GET_DOUBLE
    return KM_OK;
}
