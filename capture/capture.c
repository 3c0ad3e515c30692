/* km_capture: one thread per source. The thread takes a free frame from a preallocated
 * km_frame_pool, lets the source fill it and pushes it into an SPSC ring; the consumer (one
 * pipeline thread) pops frames and releases them back to the pool. Pool and ring are the
 * SPSC pair of core: the capture thread is the only one to acquire and push, the consumer the
 * only one to pop and release, so nothing on this path takes a lock or allocates.
 *
 * When the pool is empty (the consumer holds every frame), the thread still pulls the next
 * frame from the source into a private scratch frame and counts it dropped, exactly as a
 * camera whose host is not keeping up loses frames; so the source's clock and numbering go
 * on and a slow consumer never stalls the device. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"

/* How long the thread waits in next_frame before looking at the stop flag again. */
#define POLL_TIMEOUT_NS 50000000ull
/* Private frame flag: a frame carrying no image, handed back by the stopping thread. */
#define FLAG_EMPTY 0x80000000u

struct km_capture {
    km_source *source;
    km_source_info info;
    km_frame_pool *pool;
    km_spsc_ring *ring;
    km_frame scratch;         /* receives frames that have no pool frame to go to */
    uint8_t *scratch_data;
    pthread_t thread;
    bool thread_running;      /* touched by the owner thread only */
    atomic_bool stop;
    atomic_bool end_of_stream;
    atomic_uint_fast64_t frames;
    atomic_uint_fast64_t dropped_pool;
    atomic_uint_fast64_t dropped_ring;
    atomic_uint_fast64_t errors;
    bool lossless;            /* wait for a free frame instead of dropping (set before start) */
    km_frame_processor_fn processor; /* optional, runs on this thread (set before start) */
    void *processor_user;
};

static void *capture_thread(void *arg)
{
    km_capture *c = arg;
    km_frame *held = NULL; /* a pool frame the ring could not take; reused next time */
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        km_frame *frame = held ? held : km_frame_pool_acquire(c->pool);
        held = NULL;
        if (!frame && c->lossless) {
            /* Offline sources (replay, synthetic not paced) have no clock to keep up with:
             * wait for the consumer instead of losing a frame. */
            km_time_sleep_until_ns(km_time_now_ns() + 100000ull);
            continue;
        }
        km_frame *target = frame ? frame : &c->scratch;
        target->flags = 0; /* backends set their own flags; clear a recycled FLAG_EMPTY */
        km_status st = km_source_next_frame(c->source, target, POLL_TIMEOUT_NS);
        if (st == KM_ERR_AGAIN) {
            held = frame;
            continue;
        }
        if (st == KM_ERR_END_OF_STREAM) {
            held = frame;
            atomic_store_explicit(&c->end_of_stream, true, memory_order_release);
            break;
        }
        if (st != KM_OK) {
            atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
            km_log(KM_LOG_WARN, "capture", "camera %d (%s): %s: %s", c->info.camera,
                   c->info.backend, km_status_name(st), km_last_error());
            held = frame;
            /* Do not spin on a failing device. */
            km_time_sleep_until_ns(km_time_now_ns() + 10000000ull);
            continue;
        }
        if (!frame) {
            atomic_fetch_add_explicit(&c->dropped_pool, 1, memory_order_relaxed);
            continue;
        }
        if (c->processor) c->processor(c->processor_user, frame);
        if (!km_spsc_ring_push(c->ring, frame)) {
            /* Cannot happen while the ring is at least as large as the pool; kept as a
             * counted drop for safety. The frame stays ours and is reused. */
            atomic_fetch_add_explicit(&c->dropped_ring, 1, memory_order_relaxed);
            held = frame;
            continue;
        }
        atomic_fetch_add_explicit(&c->frames, 1, memory_order_relaxed);
    }
    /* A pool frame still held here may only go back to the pool from the consumer side
     * (the pool's free list is single-producer too), so pass it through the ring marked
     * empty; km_capture_pop releases it instead of returning it. The ring has room: it is
     * at least as large as the pool. */
    if (held) {
        held->flags = FLAG_EMPTY;
        held->size = 0;
        if (!km_spsc_ring_push(c->ring, held))
            atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
    }
    return NULL;
}

km_capture *km_capture_create(km_source *source, size_t pool_frames, km_status *err)
{
    km_status st = KM_OK;
    km_capture *c = NULL;
    if (!source || pool_frames == 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "capture: no source or pool of 0 frames");
        goto fail;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        st = km_error(KM_ERR_NO_MEMORY, "capture: no memory");
        goto fail;
    }
    c->source = source;
    km_source_describe(source, &c->info);
    if (c->info.max_frame_bytes == 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "capture: source %s reports 0-byte frames",
                      c->info.backend);
        goto fail;
    }
    c->pool = km_frame_pool_create(pool_frames, c->info.max_frame_bytes, &st);
    if (!c->pool)
        goto fail;
    c->ring = km_spsc_ring_create(pool_frames);
    c->scratch_data = malloc(c->info.max_frame_bytes);
    if (!c->ring || !c->scratch_data) {
        st = km_error(KM_ERR_NO_MEMORY, "capture: no memory for ring or scratch frame");
        goto fail;
    }
    c->scratch.data = c->scratch_data;
    c->scratch.capacity = c->info.max_frame_bytes;
    atomic_init(&c->stop, false);
    atomic_init(&c->end_of_stream, false);
    atomic_init(&c->frames, 0);
    atomic_init(&c->dropped_pool, 0);
    atomic_init(&c->dropped_ring, 0);
    atomic_init(&c->errors, 0);
    if (err)
        *err = KM_OK;
    return c;
fail:
    if (c) {
        km_spsc_ring_destroy(c->ring);
        km_frame_pool_destroy(c->pool);
        free(c->scratch_data);
        free(c);
    }
    km_source_destroy(source); /* ownership was ours */
    if (err)
        *err = st;
    return NULL;
}

void km_capture_set_processor(km_capture *c, km_frame_processor_fn fn, void *user)
{
    if (c && !c->thread_running) {
        c->processor = fn;
        c->processor_user = user;
    }
}

void km_capture_set_lossless(km_capture *c, bool lossless)
{
    if (c && !c->thread_running) c->lossless = lossless;
}

km_status km_capture_start(km_capture *c)
{
    if (!c)
        return km_error(KM_ERR_INVALID_ARGUMENT, "capture: NULL");
    if (c->thread_running)
        return KM_OK;
    km_status st = km_source_start(c->source);
    if (st != KM_OK)
        return st;
    atomic_store(&c->stop, false);
    atomic_store(&c->end_of_stream, false);
    int rc = pthread_create(&c->thread, NULL, capture_thread, c);
    if (rc != 0) {
        km_source_stop(c->source);
        return km_error(KM_ERR_INTERNAL, "capture: pthread_create failed (%d)", rc);
    }
    c->thread_running = true;
    return KM_OK;
}

void km_capture_stop(km_capture *c)
{
    if (!c || !c->thread_running)
        return;
    atomic_store_explicit(&c->stop, true, memory_order_release);
    pthread_join(c->thread, NULL);
    c->thread_running = false;
    km_source_stop(c->source);
}

void km_capture_destroy(km_capture *c)
{
    if (!c)
        return;
    km_capture_stop(c);
    /* Drain what the consumer did not take; frames the consumer still holds must have been
     * released before destroy (documented in capture.h). */
    km_frame *f;
    while ((f = km_spsc_ring_pop(c->ring)) != NULL)
        km_frame_pool_release(c->pool, f);
    km_spsc_ring_destroy(c->ring);
    km_frame_pool_destroy(c->pool);
    free(c->scratch_data);
    km_source_destroy(c->source);
    free(c);
}

km_frame *km_capture_pop(km_capture *c)
{
    if (!c)
        return NULL;
    for (;;) {
        km_frame *f = km_spsc_ring_pop(c->ring);
        if (!f || !(f->flags & FLAG_EMPTY))
            return f;
        /* An empty frame the stopping thread handed back: return it to the pool. */
        km_frame_pool_release(c->pool, f);
    }
}

void km_capture_release(km_capture *c, km_frame *frame)
{
    if (c && frame)
        km_frame_pool_release(c->pool, frame);
}

void km_capture_stats_get(const km_capture *c, km_capture_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    km_capture *m = (km_capture *)c; /* atomics are read-only here */
    out->frames = atomic_load_explicit(&m->frames, memory_order_relaxed);
    out->dropped_pool = atomic_load_explicit(&m->dropped_pool, memory_order_relaxed);
    out->dropped_ring = atomic_load_explicit(&m->dropped_ring, memory_order_relaxed);
    out->errors = atomic_load_explicit(&m->errors, memory_order_relaxed);
}

bool km_capture_finished(const km_capture *c)
{
    if (!c)
        return true;
    km_capture *m = (km_capture *)c;
    return atomic_load_explicit(&m->end_of_stream, memory_order_acquire) &&
           km_spsc_ring_count(m->ring) == 0;
}

void km_capture_describe(km_capture *c, km_source_info *info)
{
    if (!info)
        return;
    if (!c) {
        memset(info, 0, sizeof *info);
        return;
    }
    *info = c->info;
}
