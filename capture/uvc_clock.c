/* Device clock -> host clock mapping for UVC payload time stamps (and other 32-bit device
 * counters such as Kinect's).
 *
 * A UVC camera stamps each frame with PTS, its clock (dwClockFrequency) at the start of the
 * exposure, and each payload with SCR: the same clock (STC) plus the 11-bit USB SOF number at
 * the moment the payload was formed (UVC 1.5 2.4.3.3). The host only sees when a transfer
 * completed. Pairs (STC, host time of the packet) are fitted by a line over a sliding window;
 * the host times are late by a random, never negative, delay (controller, interrupt, thread
 * wake-up), so the line is lowered onto the least-delayed samples rather than drawn through
 * their middle, which would add the mean delay to every time stamp. The 32-bit counter wraps
 * (every 14 s at 300 MHz); it is unwrapped from the host time elapsed since the previous
 * sample, so any gap is fine. */
#include <math.h>
#include <string.h>

#include "uvc.h"

/* A sample later than the fit by more than this is a delayed completion: skipped. */
#define LATE_LIMIT_NS 5000000.0
/* Earlier than the fit by more than this is impossible for a consistent clock: restart. */
#define EARLY_LIMIT_NS 2000000.0
/* Consecutive late samples after which the device clock is taken to have jumped. */
#define LATE_RESET_COUNT 8
/* A pause in the samples longer than this restarts the fit (the counter stays unwrapped). */
#define STALE_GAP_NS 1000000000ull
/* The fitted slope is used once the window holds this many points spanning this long;
 * before, the nominal rate (a slope from a few jittery points is worse than the nominal). */
#define SLOPE_MIN_SPAN_NS 300000000.0
#define SLOPE_MIN_POINTS 12

void km_uvc_clock_init(km_uvc_clock *c, double device_hz, uint32_t window)
{
    memset(c, 0, sizeof *c);
    c->nominal_hz = device_hz > 0 ? device_hz : 1.0;
    c->window = window == 0 || window > KM_UVC_CLOCK_WINDOW ? KM_UVC_CLOCK_WINDOW : window;
    c->bin_ns = 16000000;
}

void km_uvc_clock_reset(km_uvc_clock *c)
{
    double hz = c->nominal_hz;
    uint32_t window = c->window;
    uint64_t bin = c->bin_ns;
    uint64_t resets = c->resets + 1;
    memset(c, 0, sizeof *c);
    c->nominal_hz = hz;
    c->window = window;
    c->bin_ns = bin;
    c->resets = resets;
}

uint32_t km_uvc_sof_delta(uint16_t earlier, uint16_t later)
{
    return (uint32_t)((later - earlier) & 0x7ff);
}

/* Fit over the committed bins plus the bin being filled. */
static void fit(km_uvc_clock *c)
{
    double x[KM_UVC_CLOCK_WINDOW + 1], y[KM_UVC_CLOCK_WINDOW + 1];
    int n = 0;
    c->dev_ref = c->bin_dev;
    c->host_ref = c->bin_host;
    double nominal = 1e9 / c->nominal_hz;
    double xmin = 0, xmax = 0;
    for (int i = 0; i <= c->count; i++) {
        int64_t dev;
        uint64_t host;
        if (i < c->count) {
            int k = (c->head + KM_UVC_CLOCK_WINDOW - c->count + i) % KM_UVC_CLOCK_WINDOW;
            dev = c->dev[k];
            host = c->host[k];
        } else {
            dev = c->bin_dev;
            host = c->bin_host;
        }
        x[n] = (double)(dev - c->dev_ref);
        /* residual against the nominal rate keeps the numbers small */
        y[n] = (double)(int64_t)(host - c->host_ref) - x[n] * nominal;
        if (x[n] < xmin)
            xmin = x[n];
        if (x[n] > xmax)
            xmax = x[n];
        n++;
    }
    double slope = 0; /* correction to the nominal ns per tick */
    if (n >= SLOPE_MIN_POINTS && (xmax - xmin) * nominal >= SLOPE_MIN_SPAN_NS) {
        /* Least squares, then again over the lower half of the residuals: late samples are
         * the ones that would bend the line. */
        bool use[KM_UVC_CLOCK_WINDOW + 1];
        for (int i = 0; i < n; i++)
            use[i] = true;
        for (int pass = 0; pass < 2; pass++) {
            double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
            for (int i = 0; i < n; i++) {
                if (!use[i])
                    continue;
                sx += x[i];
                sy += y[i];
                m += 1;
            }
            double mx = sx / m, my = sy / m;
            for (int i = 0; i < n; i++) {
                if (!use[i])
                    continue;
                sxx += (x[i] - mx) * (x[i] - mx);
                sxy += (x[i] - mx) * (y[i] - my);
            }
            if (sxx <= 0)
                break;
            slope = sxy / sxx;
            if (pass == 1)
                break;
            double r[KM_UVC_CLOCK_WINDOW + 1], sorted[KM_UVC_CLOCK_WINDOW + 1];
            for (int i = 0; i < n; i++)
                sorted[i] = r[i] = y[i] - (my + slope * (x[i] - mx));
            for (int i = 1; i < n; i++) {
                double v = sorted[i];
                int j = i - 1;
                while (j >= 0 && sorted[j] > v) {
                    sorted[j + 1] = sorted[j];
                    j--;
                }
                sorted[j + 1] = v;
            }
            double median = sorted[n / 2];
            for (int i = 0; i < n; i++)
                use[i] = r[i] <= median;
        }
        /* A real clock is within a few hundred ppm of its nominal rate. */
        if (fabs(slope / nominal) > 1e-3)
            slope = 0;
    }
    double offset = INFINITY;
    for (int i = 0; i < n; i++) {
        double r = y[i] - slope * x[i];
        if (r < offset)
            offset = r;
    }
    c->ns_per_tick = nominal + slope;
    c->offset_ns = offset;
    c->valid = n >= 2 && (xmax - xmin) * nominal >= 1e6;
}

void km_uvc_clock_add(km_uvc_clock *c, uint32_t ticks, uint64_t host_ns)
{
    int64_t dev;
    if (!c->have_last) {
        dev = ticks;
    } else {
        if (ticks == c->last_raw)
            return; /* the device repeats one SCR over several payloads: first one counts */
        double elapsed_ticks = (double)(int64_t)(host_ns - c->last_host) * c->nominal_hz / 1e9;
        double expected = (double)c->last_dev + elapsed_ticks;
        double wraps = floor((expected - (double)ticks) / 4294967296.0 + 0.5);
        dev = (int64_t)ticks + (int64_t)wraps * ((int64_t)1 << 32);
        if (dev <= c->last_dev) {
            /* a running clock never goes back: the device was reset */
            km_uvc_clock_reset(c);
            dev = ticks;
        } else if (host_ns > c->last_host && host_ns - c->last_host > STALE_GAP_NS) {
            /* The stream paused: the old bins would tie the new samples to a line fitted
             * long ago. Start a new fit; the unwrapped count goes on. */
            c->count = 0;
            c->bin_active = false;
            c->valid = false;
            c->late_run = 0;
        }
    }
    if (c->valid) {
        double predicted = (double)(int64_t)(c->host_ref) + c->offset_ns +
                           (double)(dev - c->dev_ref) * c->ns_per_tick;
        double diff = (double)host_ns - predicted;
        if (diff < -EARLY_LIMIT_NS) {
            km_uvc_clock_reset(c);
            dev = ticks;
        } else if (diff > LATE_LIMIT_NS) {
            if (++c->late_run < LATE_RESET_COUNT)
                return;
            km_uvc_clock_reset(c);
            dev = ticks;
        } else {
            c->late_run = 0;
        }
    }
    c->have_last = true;
    c->last_raw = ticks;
    c->last_dev = dev;
    c->last_host = host_ns;
    /* Keep the least-delayed sample of each bin: the minimum over many samples is close to
     * the true sampling time, where a single sample is late by the whole random delay. */
    double nominal = 1e9 / c->nominal_hz;
    if (!c->bin_active) {
        c->bin_active = true;
        c->bin_start = host_ns;
    } else if ((int64_t)(host_ns - c->bin_start) >= (int64_t)c->bin_ns) {
        c->dev[c->head] = c->bin_dev;
        c->host[c->head] = c->bin_host;
        c->head = (c->head + 1) % KM_UVC_CLOCK_WINDOW;
        if (c->count < (int)c->window)
            c->count++;
        c->bin_start = host_ns;
    } else {
        double apparent = (double)(int64_t)(host_ns - c->bin_host) -
                          (double)(dev - c->bin_dev) * nominal;
        if (apparent >= 0)
            return; /* later than the bin's best: nothing changes */
    }
    c->bin_dev = dev;
    c->bin_host = host_ns;
    fit(c);
}

km_status km_uvc_clock_map(const km_uvc_clock *c, uint32_t ticks, uint64_t *host_ns)
{
    if (!c->valid)
        return KM_ERR_AGAIN;
    int64_t dev = c->last_dev + (int32_t)(ticks - c->last_raw);
    double t = (double)(dev - c->dev_ref) * c->ns_per_tick + c->offset_ns;
    int64_t v = (int64_t)c->host_ref + (int64_t)llround(t);
    *host_ns = v < 0 ? 0 : (uint64_t)v;
    return KM_OK;
}

double km_uvc_clock_ppm(const km_uvc_clock *c)
{
    if (!c->valid || c->ns_per_tick <= 0)
        return 0;
    double hz = 1e9 / c->ns_per_tick;
    return (hz / c->nominal_hz - 1.0) * 1e6;
}
