/* Shared by the skeleton tests and bench_skeleton: CPU time of the calling thread, to tell a
 * call's own work from the time the (shared, loaded) machine took the CPU away. */
#ifndef KINEMA_TESTS_SKELETON_THREAD_TIME_H
#define KINEMA_TESTS_SKELETON_THREAD_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t thread_time_ns(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
        return 0;
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#endif
