/* Frame pool: `count` frames whose pixel buffers are carved out of one 64-byte aligned
 * allocation made at create time, so the capture path never allocates.
 *
 * Threading contract: the free list is an SPSC ring whose producer is the thread that
 * RELEASES frames (the consumer of images, e.g. the detect/solver thread) and whose consumer
 * is the thread that ACQUIRES them (the device's capture thread). So exactly one thread may
 * call km_frame_pool_acquire and exactly one (other or same) thread may call
 * km_frame_pool_release. A pipeline with several consumers of one device's frames must
 * funnel releases through one thread. */
#include "kinema/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_ALIGNMENT 64

struct km_frame_pool {
    size_t count;
    size_t frame_bytes;   /* as asked */
    size_t frame_stride;  /* frame_bytes rounded up to the alignment */
    uint8_t *data;        /* count * frame_stride bytes */
    km_frame *frames;     /* count entries; frames[i].data = data + i * frame_stride */
    atomic_uchar *in_use; /* catches double release (a programmer error) cheaply */
    km_spsc_ring *free_frames;
};

km_frame_pool *km_frame_pool_create(size_t count, size_t frame_bytes, km_status *err)
{
    km_status st = KM_OK;
    km_frame_pool *pool = NULL;
    if (count == 0 || frame_bytes == 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "frame pool: count %zu and frame_bytes %zu "
                      "must both be positive", count, frame_bytes);
        goto done;
    }
    size_t stride = (frame_bytes + FRAME_ALIGNMENT - 1) / FRAME_ALIGNMENT * FRAME_ALIGNMENT;
    if (stride < frame_bytes || count > SIZE_MAX / stride) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "frame pool: %zu frames of %zu bytes overflow",
                      count, frame_bytes);
        goto done;
    }
    pool = calloc(1, sizeof *pool);
    if (pool == NULL) {
        st = km_error(KM_ERR_NO_MEMORY, "frame pool: out of memory");
        goto done;
    }
    pool->count = count;
    pool->frame_bytes = frame_bytes;
    pool->frame_stride = stride;
    pool->data = aligned_alloc(FRAME_ALIGNMENT, count * stride);
    pool->frames = calloc(count, sizeof *pool->frames);
    pool->in_use = calloc(count, sizeof *pool->in_use);
    if (pool->data == NULL || pool->frames == NULL || pool->in_use == NULL) {
        st = km_error(KM_ERR_NO_MEMORY, "frame pool: cannot allocate %zu frames of %zu bytes",
                      count, frame_bytes);
        goto done;
    }
    pool->free_frames = km_spsc_ring_create(count);
    if (pool->free_frames == NULL) {
        st = KM_ERR_NO_MEMORY; /* message set by the ring */
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        km_frame *f = &pool->frames[i];
        f->data = pool->data + i * stride;
        f->capacity = frame_bytes;
        f->pool_slot = pool;
        atomic_init(&pool->in_use[i], 0);
        km_spsc_ring_push(pool->free_frames, f);
    }
done:
    if (st != KM_OK) {
        km_frame_pool_destroy(pool);
        pool = NULL;
    }
    if (err != NULL)
        *err = st;
    return pool;
}

void km_frame_pool_destroy(km_frame_pool *pool)
{
    if (pool == NULL)
        return;
    if (pool->free_frames != NULL) {
        size_t outstanding = pool->count - km_spsc_ring_count(pool->free_frames);
        if (outstanding != 0)
            km_log(KM_LOG_WARN, "pool", "destroying a frame pool with %zu frames still in use",
                   outstanding);
    }
    km_spsc_ring_destroy(pool->free_frames);
    free(pool->in_use);
    free(pool->frames);
    free(pool->data);
    free(pool);
}

km_frame *km_frame_pool_acquire(km_frame_pool *pool)
{
    km_frame *f = km_spsc_ring_pop(pool->free_frames);
    if (f == NULL)
        return NULL;
    atomic_store_explicit(&pool->in_use[f - pool->frames], 1, memory_order_relaxed);
    /* Hand out a clean frame: stale metadata from the previous user must not leak into the
     * next one. The pixels are not cleared (the producer overwrites them). */
    uint8_t *data = f->data;
    memset(f, 0, sizeof *f);
    f->data = data;
    f->capacity = pool->frame_bytes;
    f->pool_slot = pool;
    return f;
}

void km_frame_pool_release(km_frame_pool *pool, km_frame *frame)
{
    if (frame == NULL)
        return;
    /* Compare addresses as integers: relational operators on pointers into different
     * objects are undefined. */
    uintptr_t first = (uintptr_t)pool->frames, address = (uintptr_t)frame;
    if (address < first || address >= first + pool->count * sizeof(km_frame) ||
        (address - first) % sizeof(km_frame) != 0 || frame->pool_slot != pool) {
        km_log(KM_LOG_ERROR, "pool", "release of a frame that does not belong to this pool");
        return;
    }
    size_t index = (size_t)(frame - pool->frames);
    if (!atomic_exchange_explicit(&pool->in_use[index], 0, memory_order_relaxed)) {
        km_log(KM_LOG_ERROR, "pool", "frame %zu released twice; ignored", index);
        return;
    }
    /* Cannot fail: the ring holds `count` slots and this frame was not in it. */
    km_spsc_ring_push(pool->free_frames, frame);
}

size_t km_frame_pool_available(const km_frame_pool *pool)
{
    return km_spsc_ring_count(pool->free_frames);
}
