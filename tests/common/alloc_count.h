/* Allocation counting for tests linked with
 *     link_args : ['-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc']
 * The linker rewrites every malloc/calloc/realloc call of the objects linked into the test
 * (the test and the statically linked Kinema code; not shared libraries such as libzmq) to
 * the __wrap_ functions below, which bump one counter and forward to __real_.
 *
 * The __wrap_ functions must be external definitions (the linker resolves them by name), so
 * this header defines non-static functions: include it exactly once per test executable,
 * i.e. from the one .c file of the test that counts (no duplicate symbols then).
 *
 * The counter is atomic: pipeline and calibration tests allocate from several threads.
 *
 *   alloc_count_get()      allocations counted so far
 *   alloc_count_reset()    set the counter to 0
 *
 * By default every wrapped allocation of every thread is counted. A test that counts only
 * a window on its own thread defines ALLOC_COUNT_WINDOW before including this header; then
 * only allocations made on a thread between alloc_count_enable(true) and
 * alloc_count_enable(false) on that same thread are counted, and alloc_count_enabled()
 * tells a test's own malloc interposer whether the current thread counts. */
#ifndef KINEMA_TESTS_ALLOC_COUNT_H
#define KINEMA_TESTS_ALLOC_COUNT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

static atomic_long alloc_count_value;

#ifdef ALLOC_COUNT_WINDOW
static _Thread_local bool alloc_count_on;
static inline void alloc_count_enable(bool on) { alloc_count_on = on; }
static inline bool alloc_count_enabled(void) { return alloc_count_on; }
#else
static inline bool alloc_count_enabled(void) { return true; }
#endif

static inline long alloc_count_get(void)
{
    return atomic_load_explicit(&alloc_count_value, memory_order_relaxed);
}

static inline void alloc_count_reset(void)
{
    atomic_store_explicit(&alloc_count_value, 0, memory_order_relaxed);
}

static inline void alloc_count_bump(void)
{
    if (alloc_count_enabled())
        atomic_fetch_add_explicit(&alloc_count_value, 1, memory_order_relaxed);
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

void *__wrap_malloc(size_t size)
{
    alloc_count_bump();
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    alloc_count_bump();
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    alloc_count_bump();
    return __real_realloc(p, size);
}

#endif
