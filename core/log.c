/* Logging: one function with levels and a module tag; the program chooses the sink.
 *
 * The level, the JSON switch and the handler are the single documented process-wide
 * setting of the library (core.h). They live in C11 atomics so that a log call racing with
 * km_log_set_level() from another thread is not a data race; changing the handler while
 * other threads log is still not supported (fn and user are two separate atomics). */
#include "kinema/core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A log line longer than this is cut (with "...") rather than allocated for. */
#define LOG_MESSAGE_MAX 2048

static atomic_int log_level = KM_LOG_INFO;
static atomic_bool log_json = false;
static _Atomic(km_log_fn) log_handler; /* zero-initialised: no handler */
static _Atomic(void *) log_handler_user;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void km_log_set_level(km_log_level level)
{
    if (level < KM_LOG_ERROR)
        level = KM_LOG_ERROR;
    if (level > KM_LOG_DEBUG)
        level = KM_LOG_DEBUG;
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

km_log_level km_log_get_level(void)
{
    return (km_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void km_log_set_json(bool json)
{
    atomic_store_explicit(&log_json, json, memory_order_relaxed);
}

void km_log_set_handler(km_log_fn fn, void *user)
{
    /* user first, then fn with release: a thread that sees the new fn sees its user. */
    atomic_store_explicit(&log_handler_user, user, memory_order_relaxed);
    atomic_store_explicit(&log_handler, fn, memory_order_release);
}

km_status km_log_level_parse(const char *name, km_log_level *out)
{
    if (name != NULL) {
        for (int i = 0; i <= KM_LOG_DEBUG; i++) {
            if (strcmp(name, level_names[i]) == 0) {
                if (out != NULL)
                    *out = (km_log_level)i;
                return KM_OK;
            }
        }
    }
    return km_error(KM_ERR_INVALID_ARGUMENT,
                    "log level '%s': expected one of error, warn, info, debug",
                    name != NULL ? name : "(null)");
}

/* Length of the valid UTF-8 sequence starting at s (1..4), 0 when invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF, as JSON readers do. */
static size_t utf8_sequence_length(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

size_t km_json_escape(char *out, size_t out_size, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    size_t needed = 0, used = 0;
    bool truncated = false;
    const unsigned char *s = (const unsigned char *)(in != NULL ? in : "");
    while (*s != '\0') {
        char piece[8];
        size_t piece_len, advance = 1;
        unsigned char c = *s;
        switch (c) {
        case '"': memcpy(piece, "\\\"", 2); piece_len = 2; break;
        case '\\': memcpy(piece, "\\\\", 2); piece_len = 2; break;
        case '\n': memcpy(piece, "\\n", 2); piece_len = 2; break;
        case '\r': memcpy(piece, "\\r", 2); piece_len = 2; break;
        case '\t': memcpy(piece, "\\t", 2); piece_len = 2; break;
        case '\b': memcpy(piece, "\\b", 2); piece_len = 2; break;
        case '\f': memcpy(piece, "\\f", 2); piece_len = 2; break;
        default:
            if (c < 0x20 || c == 0x7F) {
                memcpy(piece, "\\u00", 4);
                piece[4] = hex[c >> 4];
                piece[5] = hex[c & 0xF];
                piece_len = 6;
            } else if (c < 0x80) {
                piece[0] = (char)c;
                piece_len = 1;
            } else {
                advance = utf8_sequence_length(s);
                if (advance == 0) {
                    /* Not UTF-8 (e.g. a Latin-1 device name): replace rather than emit
                     * a line JSON parsers would reject. */
                    memcpy(piece, "\\ufffd", 6);
                    piece_len = 6;
                    advance = 1;
                } else {
                    memcpy(piece, s, advance);
                    piece_len = advance;
                }
            }
        }
        needed += piece_len;
        /* Never split an escape or a UTF-8 sequence when the output is too small. */
        if (!truncated && out != NULL && used + piece_len < out_size) {
            memcpy(out + used, piece, piece_len);
            used += piece_len;
        } else {
            truncated = true;
        }
        s += advance;
    }
    if (out != NULL && out_size > 0)
        out[used] = '\0';
    return needed;
}

/* "2026-11-29T01:02:03.123Z": wall-clock UTC, for humans reading the log. */
static void format_wall_time(char *out, size_t out_size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000L));
}

static void write_stderr_line(km_log_level level, const char *module, const char *message)
{
    char wall[96];
    format_wall_time(wall, sizeof wall);
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        char module_json[128];
        char message_json[LOG_MESSAGE_MAX * 2];
        km_json_escape(module_json, sizeof module_json, module);
        km_json_escape(message_json, sizeof message_json, message);
        /* One fprintf call per line: stdio locks the stream per call, so lines from
         * different threads never interleave. */
        fprintf(stderr,
                "{\"t_ns\":%llu,\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\","
                "\"time\":\"%s\"}\n",
                (unsigned long long)km_time_now_ns(), level_names[level], module_json,
                message_json, wall);
    } else {
        fprintf(stderr, "%s [%s] %s: %s\n", wall, level_names[level], module, message);
    }
}

void km_logv(km_log_level level, const char *module, const char *fmt, va_list ap)
{
    if (level < KM_LOG_ERROR)
        level = KM_LOG_ERROR;
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    if (level > KM_LOG_DEBUG)
        return;
    if (module == NULL)
        module = "kinema";
    char message[LOG_MESSAGE_MAX];
    int n = vsnprintf(message, sizeof message, fmt != NULL ? fmt : "", ap);
    if (n >= (int)sizeof message)
        memcpy(message + sizeof message - 4, "...", 4);
    km_log_fn fn = atomic_load_explicit(&log_handler, memory_order_acquire);
    if (fn != NULL) {
        fn(atomic_load_explicit(&log_handler_user, memory_order_relaxed), level, module,
           message);
        return;
    }
    write_stderr_line(level, module, message);
}

void km_log(km_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    km_logv(level, module, fmt, ap);
    va_end(ap);
}
