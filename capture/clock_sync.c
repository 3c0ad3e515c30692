/* Clock offset and drift of each camera of a frame-set stream.
 *
 * Every frame set gives, for each present camera, its stamp against the set's reference: the
 * median of the present cameras' stamps (robust: one camera with a wrong clock does not move
 * the reference while at least three cameras are present). Per camera, the last `window`
 * (reference, offset) pairs are kept in a ring and fitted with a straight line by least
 * squares: the intercept at the newest sample is the current offset, the slope the drift.
 * Offsets are small (ns..ms) and references large (CLOCK_MONOTONIC ns), so the fit is done
 * on times relative to the oldest sample of the window, in seconds, and on offsets in ns:
 * doubles then keep sub-nanosecond resolution. All memory is allocated at create; add and
 * estimate allocate nothing (they run on the solver thread, per frame set). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"

typedef struct camera_clock {
    uint64_t *reference_ns;  /* ring of `window` samples */
    double *offset_ns;
    int head, count;
    uint64_t samples;
} camera_clock;

struct km_clock_sync {
    int camera_count;
    int window;
    camera_clock cameras[KM_MAX_CAMERAS];
    uint64_t *reference_storage;
    double *offset_storage;
};

km_clock_sync *km_clock_sync_create(int camera_count, int window, km_status *err)
{
    km_status st;
    if (camera_count < 1 || camera_count > KM_MAX_CAMERAS || window < 2 || window > 100000) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "clock sync: need 1..%d cameras and a window of "
                      "2..100000 samples", KM_MAX_CAMERAS);
        if (err) *err = st;
        return NULL;
    }
    km_clock_sync *cs = calloc(1, sizeof *cs);
    size_t n = (size_t)camera_count * (size_t)window;
    if (cs) {
        cs->reference_storage = calloc(n, sizeof *cs->reference_storage);
        cs->offset_storage = calloc(n, sizeof *cs->offset_storage);
    }
    if (!cs || !cs->reference_storage || !cs->offset_storage) {
        km_clock_sync_destroy(cs);
        st = km_error(KM_ERR_NO_MEMORY, "clock sync: no memory");
        if (err) *err = st;
        return NULL;
    }
    cs->camera_count = camera_count;
    cs->window = window;
    for (int c = 0; c < camera_count; c++) {
        cs->cameras[c].reference_ns = cs->reference_storage + (size_t)c * (size_t)window;
        cs->cameras[c].offset_ns = cs->offset_storage + (size_t)c * (size_t)window;
    }
    if (err) *err = KM_OK;
    return cs;
}

void km_clock_sync_destroy(km_clock_sync *cs)
{
    if (!cs) return;
    free(cs->reference_storage);
    free(cs->offset_storage);
    free(cs);
}

void km_clock_sync_reset(km_clock_sync *cs)
{
    if (!cs) return;
    for (int c = 0; c < cs->camera_count; c++) {
        cs->cameras[c].head = 0;
        cs->cameras[c].count = 0;
        cs->cameras[c].samples = 0;
    }
}

km_status km_clock_sync_add(km_clock_sync *cs, int camera, uint64_t reference_ns,
                            uint64_t camera_ns)
{
    if (!cs || camera < 0 || camera >= cs->camera_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "clock sync: camera %d out of range", camera);
    camera_clock *cc = &cs->cameras[camera];
    /* Signed difference of two u64 without overflow for any realistic offset. */
    double offset = camera_ns >= reference_ns ? (double)(camera_ns - reference_ns)
                                              : -(double)(reference_ns - camera_ns);
    cc->reference_ns[cc->head] = reference_ns;
    cc->offset_ns[cc->head] = offset;
    cc->head = (cc->head + 1) % cs->window;
    if (cc->count < cs->window) cc->count++;
    cc->samples++;
    return KM_OK;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

km_status km_clock_sync_add_set(km_clock_sync *cs, const km_frameset *set)
{
    if (!cs || !set) return km_error(KM_ERR_INVALID_ARGUMENT, "clock sync: NULL argument");
    uint64_t stamps[KM_MAX_CAMERAS];
    int n = 0;
    int count = set->camera_count < cs->camera_count ? set->camera_count : cs->camera_count;
    for (int c = 0; c < count; c++)
        if (set->frames[c]) stamps[n++] = set->frames[c]->time_ns;
    if (n < 2) return KM_OK; /* one camera alone says nothing about relative clocks */
    qsort(stamps, (size_t)n, sizeof stamps[0], compare_u64);
    uint64_t reference = n % 2 ? stamps[n / 2]
                               : stamps[n / 2 - 1] + (stamps[n / 2] - stamps[n / 2 - 1]) / 2;
    for (int c = 0; c < count; c++)
        if (set->frames[c]) km_clock_sync_add(cs, c, reference, set->frames[c]->time_ns);
    return KM_OK;
}

km_status km_clock_sync_estimate(const km_clock_sync *cs, int camera, km_clock_estimate *out)
{
    if (!cs || !out || camera < 0 || camera >= cs->camera_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "clock sync: camera %d out of range", camera);
    memset(out, 0, sizeof *out);
    out->camera = camera;
    const camera_clock *cc = &cs->cameras[camera];
    out->samples = cc->samples;
    if (cc->count < 2) return km_error(KM_ERR_AGAIN, "clock sync: camera %d: %d samples, need 2",
                                       camera, cc->count);
    int oldest = (cc->head - cc->count + cs->window) % cs->window;
    int newest = (cc->head - 1 + cs->window) % cs->window;
    uint64_t t0 = cc->reference_ns[oldest];
    double sx = 0, sy = 0;
    for (int k = 0; k < cc->count; k++) {
        int i = (oldest + k) % cs->window;
        double x = cc->reference_ns[i] >= t0 ? (double)(cc->reference_ns[i] - t0) * 1e-9 : 0.0;
        sx += x;
        sy += cc->offset_ns[i];
    }
    double mx = sx / cc->count, my = sy / cc->count, sxx = 0, sxy = 0;
    for (int k = 0; k < cc->count; k++) {
        int i = (oldest + k) % cs->window;
        double x = cc->reference_ns[i] >= t0 ? (double)(cc->reference_ns[i] - t0) * 1e-9 : 0.0;
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (cc->offset_ns[i] - my);
    }
    /* Slope in ns per second = drift in ppb; all references equal -> no drift measurable. */
    double slope = sxx > 0 ? sxy / sxx : 0.0;
    double x_new = (double)(cc->reference_ns[newest] - t0) * 1e-9;
    double sr = 0;
    for (int k = 0; k < cc->count; k++) {
        int i = (oldest + k) % cs->window;
        double x = cc->reference_ns[i] >= t0 ? (double)(cc->reference_ns[i] - t0) * 1e-9 : 0.0;
        double r = cc->offset_ns[i] - (my + slope * (x - mx));
        sr += r * r;
    }
    out->offset_ns = my + slope * (x_new - mx);
    out->drift_ppm = slope * 1e-3;
    out->residual_ns = sqrt(sr / cc->count);
    out->span_s = x_new;
    out->valid = sxx > 0;
    return KM_OK;
}
