/* Reading liblo's message arguments in tests. liblo hands out lo_arg pointers into its
 * packed argument data, which need not be aligned for the union (UBSan flags a direct
 * a->f): read the values with memcpy. */
#ifndef KINEMA_TESTS_LO_ARGS_H
#define KINEMA_TESTS_LO_ARGS_H

#include <lo/lo.h>
#include <stdint.h>
#include <string.h>

static inline float arg_f(const lo_arg *a)
{
    float v;
    memcpy(&v, (const void *)a, sizeof v);
    return v;
}

static inline int32_t arg_i(const lo_arg *a)
{
    int32_t v;
    memcpy(&v, (const void *)a, sizeof v);
    return v;
}

static inline int64_t arg_h(const lo_arg *a)
{
    int64_t v;
    memcpy(&v, (const void *)a, sizeof v);
    return v;
}

#endif
