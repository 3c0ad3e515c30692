/* Strict JSON reader (RFC 8259 grammar: no comments, no trailing commas, no NaN, no
 * leading zeros, escapes and UTF-16 surrogates checked) into a flat node array. Written
 * here rather than adding a dependency because the data-set readers need only this much. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define JSON_MAX_DEPTH 64

typedef struct parser {
    km_json_doc *doc;
    const char *s;
    size_t n, pos;
    int line;
    const char *name;
} parser;

static km_status fail(parser *p, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: JSON: %s", p->name, p->line, why);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c == '\n')
            p->line++;
        else if (c != ' ' && c != '\t' && c != '\r')
            return;
        p->pos++;
    }
}

static km_status new_node(parser *p, km_json_type type, size_t *index)
{
    km_json_doc *d = p->doc;
    if (d->count == d->capacity) {
        size_t cap = d->capacity ? d->capacity * 2 : 256;
        km_json_node *nodes = realloc(d->nodes, cap * sizeof *nodes);
        if (!nodes)
            return km_error(KM_ERR_NO_MEMORY, "%s: JSON: out of memory", p->name);
        d->nodes = nodes;
        d->capacity = cap;
    }
    *index = d->count++;
    km_json_node *node = &d->nodes[*index];
    memset(node, 0, sizeof *node);
    node->type = type;
    node->line = p->line;
    return KM_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(const char *s, size_t n, size_t at, unsigned *out)
{
    if (at + 4 > n)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = hex_value(s[at + i]);
        if (h < 0)
            return false;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

/* At the opening quote; leaves pos after the closing quote. */
static km_status scan_string(parser *p, size_t *offset, size_t *length)
{
    p->pos++;
    size_t start = p->pos;
    while (p->pos < p->n) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            *offset = start;
            *length = p->pos - start;
            p->pos++;
            return KM_OK;
        }
        if (c < 0x20)
            return fail(p, "control character in string");
        if (c == '\\') {
            if (p->pos + 1 >= p->n)
                return fail(p, "unterminated string");
            char e = p->s[p->pos + 1];
            if (e == 'u') {
                unsigned u;
                if (!read_hex4(p->s, p->n, p->pos + 2, &u))
                    return fail(p, "bad \\u escape");
                p->pos += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned lo;
                    if (p->pos + 1 >= p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                        !read_hex4(p->s, p->n, p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return fail(p, "unpaired UTF-16 surrogate");
                    p->pos += 6;
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    return fail(p, "unpaired UTF-16 surrogate");
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return fail(p, "bad escape in string");
            p->pos += 2;
            continue;
        }
        p->pos++;
    }
    return fail(p, "unterminated string");
}

static km_status scan_number(parser *p, double *out)
{
    size_t start = p->pos, i = p->pos;
    const char *s = p->s;
    if (i < p->n && s[i] == '-')
        i++;
    if (i >= p->n || !(s[i] >= '0' && s[i] <= '9'))
        return fail(p, "bad number");
    if (s[i] == '0') {
        i++;
    } else {
        while (i < p->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->n && s[i] == '.') {
        i++;
        if (i >= p->n || !(s[i] >= '0' && s[i] <= '9'))
            return fail(p, "bad number: digit expected after '.'");
        while (i < p->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->n || !(s[i] >= '0' && s[i] <= '9'))
            return fail(p, "bad number: digit expected in exponent");
        while (i < p->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    char buf[128];
    if (i - start >= sizeof buf)
        return fail(p, "number too long");
    memcpy(buf, s + start, i - start);
    buf[i - start] = '\0';
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && (v > 1.0 || v < -1.0))
        return fail(p, "number out of range");
    *out = v;
    p->pos = i;
    return KM_OK;
}

static bool literal(parser *p, const char *word)
{
    size_t len = strlen(word);
    if (p->pos + len <= p->n && memcmp(p->s + p->pos, word, len) == 0) {
        p->pos += len;
        return true;
    }
    return false;
}

static km_status parse_value(parser *p, int depth, size_t *out_index);

static km_status parse_container(parser *p, int depth, bool object, size_t index)
{
    char close = object ? '}' : ']';
    p->pos++; /* the opening bracket */
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return KM_OK;
    }
    size_t prev_child = 0;
    for (;;) {
        size_t key_offset = 0, key_length = 0;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return fail(p, "object key (a string) expected");
            km_status st = scan_string(p, &key_offset, &key_length);
            if (st)
                return st;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return fail(p, "':' expected after object key");
            p->pos++;
            skip_ws(p);
        }
        size_t child;
        km_status st = parse_value(p, depth + 1, &child);
        if (st)
            return st;
        km_json_node *node = &p->doc->nodes[child];
        node->key_offset = key_offset;
        node->key_length = key_length;
        if (prev_child)
            p->doc->nodes[prev_child].next_sibling = child;
        prev_child = child;
        p->doc->nodes[index].child_count++;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, object ? "unterminated object" : "unterminated array");
        char c = p->s[p->pos++];
        if (c == close)
            return KM_OK;
        if (c != ',')
            return fail(p, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static km_status parse_value(parser *p, int depth, size_t *out_index)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(p, "nesting deeper than 64");
    skip_ws(p);
    if (p->pos >= p->n)
        return fail(p, "value expected");
    char c = p->s[p->pos];
    km_status st;
    size_t index;
    switch (c) {
    case '{':
    case '[':
        st = new_node(p, c == '{' ? KM_JSON_OBJECT : KM_JSON_ARRAY, &index);
        if (!st)
            st = parse_container(p, depth, c == '{', index);
        break;
    case '"': {
        st = new_node(p, KM_JSON_STRING, &index);
        size_t off = 0, len = 0;
        if (!st)
            st = scan_string(p, &off, &len);
        if (!st) {
            p->doc->nodes[index].string_offset = off;
            p->doc->nodes[index].string_length = len;
        }
        break;
    }
    case 't':
    case 'f':
    case 'n':
        st = new_node(p, c == 't' ? KM_JSON_TRUE : c == 'f' ? KM_JSON_FALSE : KM_JSON_NULL, &index);
        if (!st && !literal(p, c == 't' ? "true" : c == 'f' ? "false" : "null"))
            st = fail(p, "unknown literal");
        break;
    default: {
        double v = 0.0;
        st = new_node(p, KM_JSON_NUMBER, &index);
        if (!st)
            st = scan_number(p, &v);
        if (!st)
            p->doc->nodes[index].number = v;
        break;
    }
    }
    if (!st)
        *out_index = index;
    return st;
}

km_status km_json_parse(km_json_doc *doc, const char *text, size_t length, const char *name)
{
    memset(doc, 0, sizeof *doc);
    doc->text = text;
    doc->length = length;
    parser p = {doc, text, length, 0, 1, name ? name : "(json)"};
    /* A UTF-8 byte order mark is tolerated, as Windows tools write one. */
    if (length >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p.pos = 3;
    size_t root;
    km_status st = parse_value(&p, 0, &root);
    if (st)
        return st;
    skip_ws(&p);
    if (p.pos != p.n)
        return fail(&p, "trailing characters after the document");
    return KM_OK;
}

void km_json_free(km_json_doc *doc)
{
    if (!doc)
        return;
    free(doc->nodes);
    memset(doc, 0, sizeof *doc);
}

size_t km_json_member(const km_json_doc *doc, size_t object, const char *key)
{
    if (object >= doc->count || doc->nodes[object].type != KM_JSON_OBJECT ||
        doc->nodes[object].child_count == 0)
        return 0;
    size_t key_len = strlen(key);
    for (size_t c = object + 1; c; c = doc->nodes[c].next_sibling) {
        const km_json_node *node = &doc->nodes[c];
        if (node->key_length == key_len && memcmp(doc->text + node->key_offset, key, key_len) == 0)
            return c;
    }
    return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool km_json_string(const km_json_doc *doc, size_t index, char *out, size_t out_size)
{
    if (index >= doc->count || doc->nodes[index].type != KM_JSON_STRING || out_size == 0)
        return false;
    const char *s = doc->text + doc->nodes[index].string_offset;
    size_t n = doc->nodes[index].string_length, o = 0;
    for (size_t i = 0; i < n;) {
        char tmp[4];
        size_t len = 1;
        if (s[i] != '\\') {
            tmp[0] = s[i++];
        } else {
            /* escapes were validated by the parser */
            char e = s[i + 1];
            if (e == 'u') {
                unsigned u = 0, lo = 0;
                read_hex4(s, n, i + 2, &u);
                i += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    read_hex4(s, n, i + 2, &lo);
                    i += 6;
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (u == 0)
                    return false;
                len = put_utf8(tmp, u);
            } else {
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                tmp[0] = to[strchr(from, e) - from];
                i += 2;
            }
        }
        if (o + len >= out_size)
            return false;
        memcpy(out + o, tmp, len);
        o += len;
    }
    out[o] = '\0';
    return true;
}
