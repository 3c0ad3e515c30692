/* Status codes and the per-thread "last error" message (like errno + strerror). */
#include "kinema/core.h"

#include <stdio.h>
#include <string.h>

/* Thread-local so that concurrent failures in capture threads and the solver thread do not
 * overwrite each other's message; this is the only per-thread state of the library. */
static _Thread_local char last_error_message[KM_ERROR_MESSAGE_MAX];

static const char *const status_names[KM_STATUS_COUNT] = {
    [KM_OK] = "KM_OK",
    [KM_ERR_INVALID_ARGUMENT] = "KM_ERR_INVALID_ARGUMENT",
    [KM_ERR_NO_MEMORY] = "KM_ERR_NO_MEMORY",
    [KM_ERR_IO] = "KM_ERR_IO",
    [KM_ERR_PARSE] = "KM_ERR_PARSE",
    [KM_ERR_FORMAT] = "KM_ERR_FORMAT",
    [KM_ERR_CAPACITY] = "KM_ERR_CAPACITY",
    [KM_ERR_NOT_FOUND] = "KM_ERR_NOT_FOUND",
    [KM_ERR_UNSUPPORTED] = "KM_ERR_UNSUPPORTED",
    [KM_ERR_TIMEOUT] = "KM_ERR_TIMEOUT",
    [KM_ERR_DEVICE] = "KM_ERR_DEVICE",
    [KM_ERR_AGAIN] = "KM_ERR_AGAIN",
    [KM_ERR_END_OF_STREAM] = "KM_ERR_END_OF_STREAM",
    [KM_ERR_NUMERIC] = "KM_ERR_NUMERIC",
    [KM_ERR_INTERNAL] = "KM_ERR_INTERNAL",
};

const char *km_status_name(km_status st)
{
    if ((int)st < 0 || st >= KM_STATUS_COUNT || status_names[st] == NULL)
        return "KM_ERR_UNKNOWN";
    return status_names[st];
}

const char *km_last_error(void)
{
    return last_error_message;
}

km_status km_error(km_status st, const char *fmt, ...)
{
    /* Format into a scratch buffer first: callers commonly pass km_last_error() itself as
     * an argument ("%s: %s", path, km_last_error()), and vsnprintf into its own source is
     * undefined. */
    char scratch[KM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(scratch, sizeof scratch, fmt, ap);
    va_end(ap);
    memcpy(last_error_message, scratch, sizeof scratch);
    km_log(KM_LOG_DEBUG, "error", "%s: %s", km_status_name(st), last_error_message);
    return st;
}

void km_clear_error(void)
{
    last_error_message[0] = '\0';
}
