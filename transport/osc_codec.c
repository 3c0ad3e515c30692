/* OSC 1.0 packets (opensoundcontrol.org spec 1.0): a small writer for the senders (VMC,
 * events) and a validating reader for the input messages. Big-endian, 4-byte aligned;
 * strings NUL-terminated and padded with NULs to a multiple of 4.
 *
 * The writer fills a caller buffer and never allocates (the per-frame VMC path uses it).
 * The reader never allocates either and never reads outside [buf, buf + length): every
 * length is checked before what it describes is touched; malformed packets are refused
 * with the byte offset in the message. */
#include "transport_internal.h"

#include <string.h>

/* ----------------------------------------------------------------- writer */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t km_osc_padded_size(size_t string_length)
{
    return (string_length + 4u) & ~(size_t)3u; /* room for the NUL, rounded up to 4 */
}

void km_osc_writer_init(km_osc_writer *w, uint8_t *buf, size_t capacity)
{
    w->buf = buf;
    w->capacity = capacity;
    w->length = 0;
    w->overflow = false;
}

static uint8_t *reserve(km_osc_writer *w, size_t n)
{
    if (w->overflow || n > w->capacity - w->length) {
        w->overflow = true;
        return NULL;
    }
    uint8_t *p = w->buf + w->length;
    w->length += n;
    return p;
}

void km_osc_write_string(km_osc_writer *w, const char *s)
{
    size_t n = strlen(s);
    size_t padded = km_osc_padded_size(n);
    uint8_t *p = reserve(w, padded);
    if (!p)
        return;
    memcpy(p, s, n);
    memset(p + n, 0, padded - n);
}

void km_osc_write_int32(km_osc_writer *w, int32_t v)
{
    uint8_t *p = reserve(w, 4);
    if (p)
        be32(p, (uint32_t)v);
}

void km_osc_write_float(km_osc_writer *w, double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint8_t *p = reserve(w, 4);
    if (p)
        be32(p, bits);
}

void km_osc_write_int64(km_osc_writer *w, int64_t v)
{
    uint8_t *p = reserve(w, 8);
    if (p) {
        be32(p, (uint32_t)((uint64_t)v >> 32));
        be32(p + 4, (uint32_t)v);
    }
}

void km_osc_write_bundle_header(km_osc_writer *w, uint64_t timetag)
{
    uint8_t *p = reserve(w, 16);
    if (!p)
        return;
    memcpy(p, "#bundle", 8);
    be32(p + 8, (uint32_t)(timetag >> 32));
    be32(p + 12, (uint32_t)timetag);
}

size_t km_osc_begin_element(km_osc_writer *w)
{
    size_t mark = w->length;
    reserve(w, 4);
    return mark;
}

void km_osc_end_element(km_osc_writer *w, size_t mark)
{
    if (!w->overflow)
        be32(w->buf + mark, (uint32_t)(w->length - mark - 4));
}

/* ----------------------------------------------------------------- reader */

/* A string at buf[*at...): NUL within length, padding all NUL. */
static km_status read_string(const uint8_t *buf, size_t length, size_t base, size_t *at,
                             const char **out, size_t *out_length, const char *what)
{
    size_t start = *at;
    if (start >= length)
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: %s missing", base + start, what);
    const uint8_t *nul = memchr(buf + start, 0, length - start);
    if (!nul)
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: %s not NUL-terminated", base + start,
                        what);
    size_t n = (size_t)(nul - (buf + start));
    size_t padded = km_osc_padded_size(n);
    if (padded > length - start)
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: %s padding runs past the end",
                        base + start, what);
    for (size_t i = start + n; i < start + padded; i++)
        if (buf[i] != 0)
            return km_error(KM_ERR_FORMAT, "osc: offset %zu: %s padding is not NUL", base + i,
                            what);
    *out = (const char *)buf + start;
    *out_length = n;
    *at = start + padded;
    return KM_OK;
}

static km_status parse_message(const uint8_t *buf, size_t length, size_t base,
                               km_osc_message *out)
{
    memset(out, 0, sizeof *out);
    if (length == 0 || length % 4 != 0)
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: message of %zu bytes (must be a "
                        "non-zero multiple of 4)", base, length);
    if (buf[0] != '/')
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: address does not start with '/'", base);
    size_t at = 0, n;
    km_status st = read_string(buf, length, base, &at, &out->address, &n, "address");
    if (st)
        return st;
    out->address_length = n;
    if (at == length) {
        /* OSC 1.0 allows a message without a type tag string (old implementations). */
        out->types = "";
        return KM_OK;
    }
    if (buf[at] != ',')
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: type tag string does not start "
                        "with ','", base + at);
    size_t types_at = at;
    st = read_string(buf, length, base, &at, &out->types, &n, "type tags");
    if (st)
        return st;
    out->types++; /* skip the ',' */
    n--;
    if (n > KM_OSC_MAX_ARGS)
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: %zu arguments, at most %d are read",
                        base + types_at, n, KM_OSC_MAX_ARGS);
    for (size_t i = 0; i < n; i++) {
        km_osc_arg *a = &out->args[i];
        a->type = out->types[i];
        size_t need = 0;
        switch (a->type) {
        case 'i': case 'f': case 'c': case 'r': case 'm': need = 4; break;
        case 'h': case 'd': case 't': need = 8; break;
        case 'T': case 'F': case 'N': case 'I': need = 0; break;
        case 's': case 'S': {
            st = read_string(buf, length, base, &at, &a->s, &a->length, "string argument");
            if (st)
                return st;
            continue;
        }
        case 'b': {
            if (length - at < 4)
                return km_error(KM_ERR_FORMAT, "osc: offset %zu: blob size missing", base + at);
            uint32_t size = rd32(buf + at);
            size_t padded = ((size_t)size + 3u) & ~(size_t)3u;
            if (size > length - at - 4 || padded > length - at - 4)
                return km_error(KM_ERR_FORMAT, "osc: offset %zu: blob of %u bytes runs past "
                                "the end", base + at, size);
            a->blob = buf + at + 4;
            a->length = size;
            at += 4 + padded;
            continue;
        }
        default:
            /* Arrays ([ ]) and unknown tags: their size is unknown, so nothing after them
             * can be read; refused rather than guessed. */
            return km_error(KM_ERR_FORMAT, "osc: offset %zu: unsupported type tag '%c'",
                            base + types_at + 1 + i,
                            a->type >= 0x20 && a->type < 0x7f ? a->type : '?');
        }
        if (length - at < need)
            return km_error(KM_ERR_FORMAT, "osc: offset %zu: argument %zu ('%c') runs past "
                            "the end", base + at, i, a->type);
        if (need == 4) {
            uint32_t v = rd32(buf + at);
            a->i = (int32_t)v;
            memcpy(&a->f, &v, sizeof a->f);
        } else if (need == 8) {
            uint64_t v = (uint64_t)rd32(buf + at) << 32 | rd32(buf + at + 4);
            a->h = (int64_t)v;
            memcpy(&a->d, &v, sizeof a->d);
        }
        at += need;
    }
    if (at != length)
        return km_error(KM_ERR_FORMAT, "osc: offset %zu: %zu bytes after the last argument",
                        base + at, length - at);
    out->argc = (int)n;
    return KM_OK;
}

km_status km_osc_parse_message(const uint8_t *buf, size_t length, km_osc_message *out)
{
    if (!out || (!buf && length))
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc: NULL argument");
    return parse_message(buf, length, 0, out);
}

static km_status parse_packet(const uint8_t *buf, size_t length, size_t base, int depth,
                              km_osc_message_fn fn, void *user, int *count)
{
    if (length >= 8 && memcmp(buf, "#bundle", 8) == 0) {
        if (depth >= KM_OSC_MAX_BUNDLE_DEPTH)
            return km_error(KM_ERR_FORMAT, "osc: offset %zu: bundles nested deeper than %d",
                            base, KM_OSC_MAX_BUNDLE_DEPTH);
        if (length < 16 || length % 4 != 0)
            return km_error(KM_ERR_FORMAT, "osc: offset %zu: bundle of %zu bytes", base,
                            length);
        uint64_t timetag = (uint64_t)rd32(buf + 8) << 32 | rd32(buf + 12);
        size_t at = 16;
        while (at < length) {
            if (length - at < 4)
                return km_error(KM_ERR_FORMAT, "osc: offset %zu: element size missing",
                                base + at);
            uint32_t size = rd32(buf + at);
            if (size == 0 || size % 4 != 0 || size > length - at - 4)
                return km_error(KM_ERR_FORMAT, "osc: offset %zu: bundle element of %u bytes "
                                "(must be a non-zero multiple of 4 within the bundle)",
                                base + at, size);
            km_status st = parse_packet(buf + at + 4, size, base + at + 4, depth + 1, fn, user,
                                        count);
            if (st)
                return st;
            at += 4 + size;
        }
        (void)timetag; /* dispatched immediately: Kinema reacts at once to input */
        return KM_OK;
    }
    km_osc_message m;
    memset(&m, 0, sizeof m);
    km_status st = parse_message(buf, length, base, &m);
    if (st)
        return st;
    (*count)++;
    return fn ? fn(user, &m) : KM_OK;
}

km_status km_osc_parse_packet(const uint8_t *buf, size_t length, km_osc_message_fn fn,
                              void *user, int *message_count)
{
    int count = 0;
    if (!buf && length)
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc: NULL buffer");
    km_status st = parse_packet(buf, length, 0, 0, fn, user, &count);
    if (message_count)
        *message_count = count;
    return st;
}
