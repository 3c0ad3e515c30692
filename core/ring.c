/* Lock-free single-producer/single-consumer ring of pointers.
 *
 * head and tail are free-running counters (never wrapped; size_t overflow takes centuries
 * at any frame rate and unsigned subtraction stays right across it anyway), indexed with
 * `& mask` because the capacity is a power of two. The producer owns head, the consumer
 * owns tail; each publishes its counter with a release store and reads the other's with an
 * acquire load, so a slot's content is visible before the counter that hands it over.
 * head and tail sit on separate cache lines so the two threads do not false-share, and each
 * side keeps a private cached copy of the other's counter to touch the shared line only when
 * the ring looks full (producer) or empty (consumer). */
#include "kinema/core.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

struct km_spsc_ring {
    /* Read-only after create. */
    size_t capacity;
    size_t mask;
    void **slots;

    /* Producer's line. */
    alignas(CACHE_LINE) atomic_size_t head;
    size_t producer_cached_tail;

    /* Consumer's line. */
    alignas(CACHE_LINE) atomic_size_t tail;
    size_t consumer_cached_head;

    alignas(CACHE_LINE) char end_padding;
};

km_spsc_ring *km_spsc_ring_create(size_t capacity)
{
    if (capacity == 0 || capacity > ((size_t)1 << (sizeof(size_t) * 8 - 4))) {
        km_error(KM_ERR_INVALID_ARGUMENT, "spsc ring: capacity %zu out of range", capacity);
        return NULL;
    }
    size_t rounded = 1;
    while (rounded < capacity)
        rounded <<= 1;
    /* aligned_alloc wants the size to be a multiple of the alignment. */
    size_t bytes = (sizeof(km_spsc_ring) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    km_spsc_ring *ring = aligned_alloc(CACHE_LINE, bytes);
    void **slots = calloc(rounded, sizeof *slots);
    if (ring == NULL || slots == NULL) {
        free(ring);
        free(slots);
        km_error(KM_ERR_NO_MEMORY, "spsc ring: cannot allocate %zu slots", rounded);
        return NULL;
    }
    memset(ring, 0, bytes);
    ring->capacity = rounded;
    ring->mask = rounded - 1;
    ring->slots = slots;
    atomic_init(&ring->head, 0);
    atomic_init(&ring->tail, 0);
    return ring;
}

void km_spsc_ring_destroy(km_spsc_ring *ring)
{
    if (ring == NULL)
        return;
    free(ring->slots);
    free(ring);
}

bool km_spsc_ring_push(km_spsc_ring *ring, void *item)
{
    assert(item != NULL && "NULL is the pop side's 'empty' answer");
    size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    if (head - ring->producer_cached_tail >= ring->capacity) {
        ring->producer_cached_tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
        if (head - ring->producer_cached_tail >= ring->capacity)
            return false;
    }
    ring->slots[head & ring->mask] = item;
    atomic_store_explicit(&ring->head, head + 1, memory_order_release);
    return true;
}

void *km_spsc_ring_pop(km_spsc_ring *ring)
{
    size_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    if (tail == ring->consumer_cached_head) {
        ring->consumer_cached_head = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (tail == ring->consumer_cached_head)
            return NULL;
    }
    void *item = ring->slots[tail & ring->mask];
    atomic_store_explicit(&ring->tail, tail + 1, memory_order_release);
    return item;
}

size_t km_spsc_ring_count(const km_spsc_ring *ring)
{
    /* Load tail first: head only grows, so head - tail can then not underflow. */
    size_t tail = atomic_load_explicit(&((km_spsc_ring *)ring)->tail, memory_order_acquire);
    size_t head = atomic_load_explicit(&((km_spsc_ring *)ring)->head, memory_order_acquire);
    size_t count = head - tail;
    return count > ring->capacity ? ring->capacity : count;
}

size_t km_spsc_ring_capacity(const km_spsc_ring *ring)
{
    return ring->capacity;
}
