/* The frame-set assembler: groups frames of N cameras by time stamp into sets for the
 * per-frame pipeline (detect every camera, then reconstruct from all).
 *
 * A set is keyed by the time stamp of its first frame; a frame joins the open set within
 * `tolerance` of its time stamp (the nearest one), else opens a new set. A set closes when
 * (1) every camera delivered, (2) a newer set completes (a camera that skipped a frame must
 * not hold the others back), (3) `timeout` passed since its first frame arrived, or (4) a new
 * set needs room and this is the oldest open one. Closing a set closes all older open sets
 * too, so sets come out in time order. Frames older than the newest closed set (plus
 * tolerance) are late: their set was already handed on. All memory is allocated at create. */
#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"

typedef struct frameset_slot {
    bool used;
    bool closed;
    uint64_t time_ns;
    uint64_t first_arrival_ns;
    int present;
    km_frame **frames; /* camera_count entries in the assembler's table */
} frameset_slot;

struct km_frameset_assembler {
    int camera_count;
    uint64_t tolerance_ns;
    uint64_t timeout_ns;
    int slot_count;
    frameset_slot *slots;
    km_frame **frame_table;
    bool have_watermark;
    uint64_t watermark_ns; /* time of the newest closed set */
    km_frameset_stats stats;
};

km_frameset_config km_frameset_config_default(void)
{
    km_frameset_config c;
    memset(&c, 0, sizeof c);
    c.camera_count = 0;
    c.rate_hz = 120.0;
    c.tolerance_ns = 0;
    c.timeout_ns = 0;
    c.max_sets = 8;
    return c;
}

km_frameset_assembler *km_frameset_assembler_create(const km_frameset_config *cfg,
                                                    km_status *err)
{
    km_status st;
    if (!cfg || cfg->camera_count < 1 || cfg->camera_count > KM_MAX_CAMERAS ||
        !(cfg->rate_hz > 0.0) || cfg->max_sets < 1 || cfg->max_sets > 1024) {
        st = km_error(KM_ERR_INVALID_ARGUMENT,
                      "frameset: need 1..%d cameras, rate_hz > 0 and 1..1024 sets",
                      KM_MAX_CAMERAS);
        if (err)
            *err = st;
        return NULL;
    }
    km_frameset_assembler *a = calloc(1, sizeof *a);
    if (a) {
        a->slots = calloc((size_t)cfg->max_sets, sizeof *a->slots);
        a->frame_table = calloc((size_t)cfg->max_sets * (size_t)cfg->camera_count,
                                sizeof *a->frame_table);
    }
    if (!a || !a->slots || !a->frame_table) {
        km_frameset_assembler_destroy(a);
        st = km_error(KM_ERR_NO_MEMORY, "frameset: no memory");
        if (err)
            *err = st;
        return NULL;
    }
    double period_ns = 1e9 / cfg->rate_hz;
    a->camera_count = cfg->camera_count;
    a->tolerance_ns = cfg->tolerance_ns ? cfg->tolerance_ns : (uint64_t)(0.5 * period_ns);
    a->timeout_ns = cfg->timeout_ns ? cfg->timeout_ns : (uint64_t)(3.0 * period_ns);
    a->slot_count = cfg->max_sets;
    for (int i = 0; i < a->slot_count; i++)
        a->slots[i].frames = a->frame_table + (size_t)i * (size_t)cfg->camera_count;
    if (err)
        *err = KM_OK;
    return a;
}

void km_frameset_assembler_destroy(km_frameset_assembler *a)
{
    if (!a)
        return;
    free(a->frame_table);
    free(a->slots);
    free(a);
}

static uint64_t abs_diff(uint64_t x, uint64_t y)
{
    return x > y ? x - y : y - x;
}

static void close_slot(km_frameset_assembler *a, frameset_slot *s)
{
    s->closed = true;
    if (s->present == a->camera_count) {
        a->stats.sets_complete++;
    } else {
        a->stats.sets_incomplete++;
        a->stats.missing_frames += (uint64_t)(a->camera_count - s->present);
    }
    if (!a->have_watermark || s->time_ns > a->watermark_ns) {
        a->watermark_ns = s->time_ns;
        a->have_watermark = true;
    }
}

/* Close `s` and every older open set. */
static void close_up_to(km_frameset_assembler *a, const frameset_slot *s)
{
    uint64_t t = s->time_ns;
    for (int i = 0; i < a->slot_count; i++) {
        frameset_slot *o = &a->slots[i];
        if (o->used && !o->closed && o->time_ns <= t)
            close_slot(a, o);
    }
}

static frameset_slot *oldest_open(km_frameset_assembler *a)
{
    frameset_slot *best = NULL;
    for (int i = 0; i < a->slot_count; i++) {
        frameset_slot *s = &a->slots[i];
        if (s->used && !s->closed && (!best || s->time_ns < best->time_ns))
            best = s;
    }
    return best;
}

static frameset_slot *free_slot(km_frameset_assembler *a)
{
    for (int i = 0; i < a->slot_count; i++)
        if (!a->slots[i].used)
            return &a->slots[i];
    return NULL;
}

km_status km_frameset_assembler_push(km_frameset_assembler *a, km_frame *frame,
                                     uint64_t now_ns, bool *kept)
{
    if (kept)
        *kept = false;
    if (!a || !frame || !kept)
        return km_error(KM_ERR_INVALID_ARGUMENT, "frameset: NULL argument");
    int cam = frame->camera;
    if (cam < 0 || cam >= a->camera_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "frameset: camera %d not in [0, %d)", cam,
                        a->camera_count);
    uint64_t t = frame->time_ns;
    if (a->have_watermark && t <= a->watermark_ns + a->tolerance_ns) {
        a->stats.late_frames++;
        return KM_OK;
    }
    frameset_slot *match = NULL;
    uint64_t best = 0;
    for (int i = 0; i < a->slot_count; i++) {
        frameset_slot *s = &a->slots[i];
        if (!s->used || s->closed)
            continue;
        uint64_t d = abs_diff(s->time_ns, t);
        if (d <= a->tolerance_ns && (!match || d < best)) {
            match = s;
            best = d;
        }
    }
    if (match) {
        if (match->frames[cam]) {
            a->stats.duplicate_frames++;
            return KM_OK;
        }
    } else {
        match = free_slot(a);
        if (!match) {
            /* No room: the oldest open set has waited longest; hand it on incomplete. */
            frameset_slot *old = oldest_open(a);
            if (old)
                close_up_to(a, old);
            a->stats.overflow_frames++;
            return KM_OK;
        }
        match->used = true;
        match->closed = false;
        match->time_ns = t;
        match->first_arrival_ns = now_ns;
        match->present = 0;
        memset(match->frames, 0, (size_t)a->camera_count * sizeof *match->frames);
    }
    match->frames[cam] = frame;
    match->present++;
    *kept = true;
    if (match->present == a->camera_count)
        close_up_to(a, match);
    return KM_OK;
}

bool km_frameset_assembler_pop(km_frameset_assembler *a, uint64_t now_ns, km_frameset *out)
{
    if (!a || !out)
        return false;
    /* Timeouts: a set whose first frame came long ago is handed on without the laggards. */
    frameset_slot *expired = NULL;
    for (int i = 0; i < a->slot_count; i++) {
        frameset_slot *s = &a->slots[i];
        if (s->used && !s->closed && now_ns >= s->first_arrival_ns &&
            now_ns - s->first_arrival_ns >= a->timeout_ns &&
            (!expired || s->time_ns > expired->time_ns))
            expired = s;
    }
    if (expired)
        close_up_to(a, expired);

    frameset_slot *ready = NULL;
    for (int i = 0; i < a->slot_count; i++) {
        frameset_slot *s = &a->slots[i];
        if (s->used && s->closed && (!ready || s->time_ns < ready->time_ns))
            ready = s;
    }
    if (!ready)
        return false;
    out->time_ns = ready->time_ns;
    out->camera_count = a->camera_count;
    out->present = ready->present;
    out->complete = ready->present == a->camera_count;
    memset(out->frames, 0, sizeof out->frames);
    memcpy(out->frames, ready->frames, (size_t)a->camera_count * sizeof *ready->frames);
    ready->used = false;
    ready->closed = false;
    return true;
}

void km_frameset_assembler_flush(km_frameset_assembler *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->slot_count; i++) {
        frameset_slot *s = &a->slots[i];
        if (s->used && !s->closed)
            close_slot(a, s);
    }
}

void km_frameset_assembler_stats(const km_frameset_assembler *a, km_frameset_stats *out)
{
    if (!out)
        return;
    if (!a) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = a->stats;
}
