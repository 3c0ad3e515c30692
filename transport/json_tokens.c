/* A strict, bounded JSON reader for the messages transport/ receives (control requests,
 * input messages): RFC 8259 grammar (no comments, no trailing commas, no NaN/Infinity,
 * no leading zeros, no control characters in strings, escapes and UTF-16 surrogate pairs
 * checked, UTF-8 validated), plus two rules of our own that make a request unambiguous:
 * duplicate keys in an object are refused, and nesting is limited.
 *
 * Why not gesture/json.c: that reader is private to the gesture stage and grows its node
 * array with realloc for large offline data sets; control and input messages are small and
 * are parsed on the solver thread (km_control_poll, km_input_poll), so this one writes into
 * a caller-provided token array and never allocates. */
#include "transport_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s;
    size_t n, pos;
    km_json_token *tokens;
    int capacity, count;
    int depth;
} parser;

static km_status fail(const parser *p, const char *why)
{
    return km_error(KM_ERR_PARSE, "JSON: offset %zu: %s", p->pos, why);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static km_status new_token(parser *p, km_jtok_type type, int *index)
{
    if (p->count >= p->capacity)
        return fail(p, "too many values");
    *index = p->count++;
    km_json_token *t = &p->tokens[*index];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->start = (uint32_t)p->pos;
    return KM_OK;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A string starting at the opening quote; the token spans the raw bytes between quotes. */
static km_status parse_string(parser *p, int *index)
{
    p->pos++; /* opening quote */
    km_status st = new_token(p, KM_JTOK_STRING, index);
    if (st)
        return st;
    while (p->pos < p->n) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->tokens[*index].length = (uint32_t)(p->pos - p->tokens[*index].start);
            p->pos++;
            return KM_OK;
        }
        if (c < 0x20)
            return fail(p, "control character in a string");
        if (c == '\\') {
            if (p->pos + 1 >= p->n)
                return fail(p, "unterminated escape");
            char e = p->s[p->pos + 1];
            if (e == 'u') {
                if (p->n - p->pos < 6)
                    return fail(p, "short \\u escape");
                int v = hex4(p->s + p->pos + 2);
                if (v < 0)
                    return fail(p, "bad \\u escape");
                if (v >= 0xdc00 && v <= 0xdfff)
                    return fail(p, "unpaired low surrogate");
                if (v >= 0xd800 && v <= 0xdbff) {
                    if (p->n - p->pos < 12 || p->s[p->pos + 6] != '\\' ||
                        p->s[p->pos + 7] != 'u')
                        return fail(p, "unpaired high surrogate");
                    int low = hex4(p->s + p->pos + 8);
                    if (low < 0xdc00 || low > 0xdfff)
                        return fail(p, "unpaired high surrogate");
                    p->pos += 6;
                }
                p->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return fail(p, "bad escape");
            p->pos += 2;
            continue;
        }
        size_t len = utf8_length((const unsigned char *)p->s + p->pos, p->n - p->pos);
        if (len == 0)
            return fail(p, "invalid UTF-8 in a string");
        p->pos += len;
    }
    return fail(p, "unterminated string");
}

static km_status parse_number(parser *p, int *index)
{
    km_status st = new_token(p, KM_JTOK_NUMBER, index);
    if (st)
        return st;
    size_t start = p->pos;
    const char *s = p->s;
    if (p->pos < p->n && s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->n)
        return fail(p, "truncated number");
    if (s[p->pos] == '0') {
        p->pos++;
    } else if (s[p->pos] >= '1' && s[p->pos] <= '9') {
        while (p->pos < p->n && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    } else {
        return fail(p, "bad number");
    }
    if (p->pos < p->n && s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->n || s[p->pos] < '0' || s[p->pos] > '9')
            return fail(p, "digit expected after '.'");
        while (p->pos < p->n && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->n && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->n && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->n || s[p->pos] < '0' || s[p->pos] > '9')
            return fail(p, "digit expected in exponent");
        while (p->pos < p->n && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    size_t length = p->pos - start;
    char copy[64];
    if (length >= sizeof copy)
        return fail(p, "number longer than 63 characters");
    memcpy(copy, s + start, length);
    copy[length] = '\0';
    km_json_token *t = &p->tokens[*index];
    t->number = strtod(copy, NULL);
    t->length = (uint32_t)length;
    if (t->number > 1.7976931348623157e308 || t->number < -1.7976931348623157e308)
        return fail(p, "number out of range");
    return KM_OK;
}

static bool raw_equal(const parser *p, const km_json_token *a, const km_json_token *b)
{
    return a->length == b->length && memcmp(p->s + a->start, p->s + b->start, a->length) == 0;
}

static km_status parse_value(parser *p, int *index);

static km_status parse_container(parser *p, bool object, int *index)
{
    if (++p->depth > KM_JSON_MAX_DEPTH)
        return fail(p, "nested too deeply");
    km_status st = new_token(p, object ? KM_JTOK_OBJECT : KM_JTOK_ARRAY, index);
    if (st)
        return st;
    int self = *index;
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        p->tokens[self].next = (uint32_t)p->count;
        p->depth--;
        return KM_OK;
    }
    int first_key = -1;
    for (;;) {
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return fail(p, "object key (a string) expected");
            int key;
            if ((st = parse_string(p, &key)))
                return st;
            /* Duplicate keys make a request ambiguous: refused. Keys are compared raw
             * (an escaped spelling of the same key is not detected; keys we read are
             * plain ASCII and are matched raw too). */
            if (first_key < 0)
                first_key = key;
            for (int k = first_key; k < key; k = (int)p->tokens[k + 1].next) {
                if (raw_equal(p, &p->tokens[k], &p->tokens[key]))
                    return fail(p, "duplicate key");
            }
            p->tokens[key].type = KM_JTOK_KEY;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return fail(p, "':' expected");
            p->pos++;
        }
        skip_ws(p);
        int child;
        if ((st = parse_value(p, &child)))
            return st;
        p->tokens[self].children++;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            break;
        }
        return fail(p, object ? "',' or '}' expected" : "',' or ']' expected");
    }
    p->tokens[self].next = (uint32_t)p->count;
    p->depth--;
    return KM_OK;
}

static km_status parse_value(parser *p, int *index)
{
    if (p->pos >= p->n)
        return fail(p, "value expected");
    char c = p->s[p->pos];
    km_status st;
    if (c == '{' || c == '[')
        return parse_container(p, c == '{', index);
    if (c == '"') {
        st = parse_string(p, index);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        st = parse_number(p, index);
    } else {
        static const struct {
            const char *word;
            km_jtok_type type;
        } words[] = {{"true", KM_JTOK_TRUE}, {"false", KM_JTOK_FALSE}, {"null", KM_JTOK_NULL}};
        for (size_t w = 0; w < 3; w++) {
            size_t len = strlen(words[w].word);
            if (p->n - p->pos >= len && memcmp(p->s + p->pos, words[w].word, len) == 0) {
                if ((st = new_token(p, words[w].type, index)))
                    return st;
                p->pos += len;
                p->tokens[*index].length = (uint32_t)len;
                p->tokens[*index].next = (uint32_t)p->count;
                return KM_OK;
            }
        }
        return fail(p, "value expected");
    }
    if (!st)
        p->tokens[*index].next = (uint32_t)p->count;
    return st;
}

km_status km_json_tokens_parse(const char *text, size_t length, km_json_token *tokens,
                               int capacity, int *count)
{
    if (!text || !tokens || capacity < 1 || !count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "JSON: bad argument");
    *count = 0;
    if (length > KM_JSON_MAX_BYTES)
        return km_error(KM_ERR_PARSE, "JSON: %zu bytes, at most %d accepted", length,
                        KM_JSON_MAX_BYTES);
    parser p = {text, length, 0, tokens, capacity, 0, 0};
    skip_ws(&p);
    int root;
    km_status st = parse_value(&p, &root);
    if (st)
        return st;
    skip_ws(&p);
    if (p.pos != p.n)
        return fail(&p, "trailing characters after the value");
    *count = p.count;
    return KM_OK;
}

int km_json_token_member(const char *text, const km_json_token *tokens, int object,
                         const char *key)
{
    if (tokens[object].type != KM_JTOK_OBJECT)
        return -1;
    size_t key_length = strlen(key);
    int k = object + 1;
    for (uint32_t i = 0; i < tokens[object].children; i++) {
        const km_json_token *t = &tokens[k];
        if (t->length == key_length && memcmp(text + t->start, key, key_length) == 0)
            return k + 1;
        k = (int)tokens[k + 1].next;
    }
    return -1;
}

static void put_utf8(char *out, size_t *at, unsigned cp)
{
    if (cp < 0x80) {
        out[(*at)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*at)++] = (char)(0xc0 | cp >> 6);
        out[(*at)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*at)++] = (char)(0xe0 | cp >> 12);
        out[(*at)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*at)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*at)++] = (char)(0xf0 | cp >> 18);
        out[(*at)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[(*at)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*at)++] = (char)(0x80 | (cp & 0x3f));
    }
}

bool km_json_token_string(const char *text, const km_json_token *t, char *out, size_t size)
{
    if ((t->type != KM_JTOK_STRING && t->type != KM_JTOK_KEY) || size == 0)
        return false;
    size_t at = 0;
    const char *s = text + t->start, *end = s + t->length;
    while (s < end) {
        /* Room for the next byte and the NUL; a \u escape checks its own length below. */
        if (size - at < 2)
            return false;
        if (*s != '\\') {
            out[at++] = *s++;
            continue;
        }
        char e = s[1];
        s += 2;
        switch (e) {
        case 'b': out[at++] = '\b'; break;
        case 'f': out[at++] = '\f'; break;
        case 'n': out[at++] = '\n'; break;
        case 'r': out[at++] = '\r'; break;
        case 't': out[at++] = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)hex4(s);
            s += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* validated pair */
                unsigned low = (unsigned)hex4(s + 2);
                s += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            }
            if (cp == 0)
                return false; /* a NUL would cut the C string */
            size_t bytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (size - at < bytes + 1)
                return false;
            put_utf8(out, &at, cp);
            break;
        }
        default: out[at++] = e; break; /* " \ / */
        }
    }
    out[at] = '\0';
    return true;
}
