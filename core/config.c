/* YAML configuration reader on libyaml's document API (yaml_parser_load).
 *
 * The whole document is loaded once; getters walk it by dotted path without allocating.
 * Every node keeps libyaml's start mark, so each error names file:line. Loading also
 * validates what libyaml lets through: mapping keys must be unique scalars, the top level a
 * mapping, and the stream a single document.
 *
 * Calibration files written by OpenCV's FileStorage start with "%YAML:1.0", which libyaml
 * rejects (it wants "%YAML 1.1"); that first line is turned into a comment in a private copy
 * (same length, so line numbers stay right). Tags such as "!!opencv-matrix" are ignored: a
 * tagged mapping is just a mapping. */
#include "kinema/core.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Bigger than any sane config or rig file; protects against loading a wrong file. */
#define CONFIG_MAX_BYTES (64u * 1024u * 1024u)

struct km_config {
    yaml_document_t document;
    bool loaded;   /* document is initialised (and must be deleted) */
    char name[256];
};

/* ------------------------------------------------------------- node access */

static yaml_node_t *node_by_index(const km_config *cfg, int index)
{
    const yaml_document_t *d = &cfg->document;
    if (!cfg->loaded || index < 1 || index > d->nodes.top - d->nodes.start)
        return NULL;
    return d->nodes.start + index - 1;
}

static yaml_node_t *root_node(const km_config *cfg)
{
    return node_by_index(cfg, 1);
}

static int node_line(const yaml_node_t *node)
{
    return node != NULL ? (int)node->start_mark.line + 1 : 0;
}

static bool scalar_equals(const yaml_node_t *node, const char *s, size_t len)
{
    return node != NULL && node->type == YAML_SCALAR_NODE && node->data.scalar.length == len &&
           memcmp(node->data.scalar.value, s, len) == 0;
}

/* Child of `node` named by one path component (s, len): a mapping key, or a decimal index
 * into a sequence. NULL when absent. */
static yaml_node_t *child(const km_config *cfg, const yaml_node_t *node, const char *s,
                          size_t len)
{
    if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top; p++) {
            if (scalar_equals(node_by_index(cfg, p->key), s, len))
                return node_by_index(cfg, p->value);
        }
        return NULL;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        if (len == 0 || len > 9)
            return NULL;
        long index = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return NULL;
            index = index * 10 + (s[i] - '0');
        }
        long count = node->data.sequence.items.top - node->data.sequence.items.start;
        if (index >= count)
            return NULL;
        return node_by_index(cfg, node->data.sequence.items.start[index]);
    }
    return NULL;
}

/* Node at a dotted path ("" is the root). *deepest (optional) receives the last node found
 * on the way, to point an error about a missing key at the right line. */
static yaml_node_t *resolve(const km_config *cfg, const char *path, yaml_node_t **deepest)
{
    yaml_node_t *node = cfg != NULL ? root_node(cfg) : NULL;
    if (deepest != NULL)
        *deepest = node;
    if (node == NULL || path == NULL)
        return NULL;
    const char *s = path;
    if (*s == '\0')
        return node;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t len = dot != NULL ? (size_t)(dot - s) : strlen(s);
        if (len == 0)
            return NULL; /* "a..b", ".a", "a." name nothing */
        node = child(cfg, node, s, len);
        if (node == NULL)
            return NULL;
        if (deepest != NULL)
            *deepest = node;
        if (dot == NULL)
            return node;
        s = dot + 1;
    }
}

/* ------------------------------------------------------------ value parsing */

static bool is_null_scalar(const yaml_node_t *node)
{
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)node->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *kind_name(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_SCALAR_NODE: return is_null_scalar(node) ? "null" : "a scalar";
    default: return "nothing";
    }
}

/* A scalar's text when it is a non-null scalar without embedded NUL bytes, else NULL. */
static const char *scalar_text(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || is_null_scalar(node))
        return NULL;
    const char *v = (const char *)node->data.scalar.value;
    if (strlen(v) != node->data.scalar.length)
        return NULL;
    return v;
}

static bool parse_long(const char *s, long *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    const char *digits = s;
    if (*digits == '+' || *digits == '-')
        digits++;
    int base = 10;
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
        base = 16;
    else if (!isdigit((unsigned char)digits[0]))
        return false;
    errno = 0;
    char *end;
    /* base 10 explicitly: "010" is ten, not the octal eight strtol(…, 0) would read. */
    long v = strtol(s, &end, base);
    if (errno != 0 || *end != '\0' || end == s)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    /* Independent of the program's LC_NUMERIC: "0.5" must read as 0.5 under a German
     * locale too. */
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return false;
    errno = 0;
    char *end;
    double v = strtod_l(s, &end, c_locale);
    int saved_errno = errno;
    freelocale(c_locale);
    if (end == s || *end != '\0' || !isfinite(v) || (saved_errno == ERANGE && fabs(v) > 1.0))
        return false;
    *out = v;
    return true;
}

/* "file:line: path: " prefix shared by the getters' messages. */
static km_status value_error(const km_config *cfg, const yaml_node_t *node, const char *path,
                             const char *what)
{
    return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", cfg->name, node_line(node), path, what);
}

static km_status not_found(const km_config *cfg, const char *path)
{
    yaml_node_t *deepest = NULL;
    resolve(cfg, path, &deepest);
    if (deepest == NULL)
        return km_error(KM_ERR_NOT_FOUND, "%s: %s: not found", cfg->name, path);
    return km_error(KM_ERR_NOT_FOUND, "%s:%d: %s: not found", cfg->name, node_line(deepest),
                    path);
}

/* Short quoted excerpt of a scalar for messages. */
static void excerpt(const yaml_node_t *node, char *out, size_t out_size)
{
    if (node->type != YAML_SCALAR_NODE) {
        snprintf(out, out_size, "%s", kind_name(node));
        return;
    }
    if (is_null_scalar(node)) {
        snprintf(out, out_size, "null");
        return;
    }
    size_t len = node->data.scalar.length;
    const char *v = (const char *)node->data.scalar.value;
    if (len > 40)
        snprintf(out, out_size, "'%.40s...'", v);
    else
        snprintf(out, out_size, "'%.*s'", (int)len, v);
}

/* ------------------------------------------------------------------ getters */

bool km_config_has(const km_config *cfg, const char *path)
{
    return resolve(cfg, path, NULL) != NULL;
}

km_status km_config_get_int(const km_config *cfg, const char *path, long fallback, long min,
                            long max, long *out)
{
    if (cfg == NULL || path == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "config get_int: NULL argument");
    yaml_node_t *node = resolve(cfg, path, NULL);
    *out = fallback;
    if (node == NULL)
        return not_found(cfg, path);
    long v;
    char what[160], got[64];
    if (!parse_long(scalar_text(node), &v) || v < min || v > max) {
        excerpt(node, got, sizeof got);
        snprintf(what, sizeof what, "expected an integer in [%ld, %ld], got %s", min, max, got);
        return value_error(cfg, node, path, what);
    }
    *out = v;
    return KM_OK;
}

km_status km_config_get_double(const km_config *cfg, const char *path, double fallback,
                               double min, double max, double *out)
{
    if (cfg == NULL || path == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "config get_double: NULL argument");
    yaml_node_t *node = resolve(cfg, path, NULL);
    *out = fallback;
    if (node == NULL)
        return not_found(cfg, path);
    double v;
    char what[160], got[64];
    if (!parse_double(scalar_text(node), &v) || v < min || v > max) {
        excerpt(node, got, sizeof got);
        snprintf(what, sizeof what, "expected a number in [%g, %g], got %s", min, max, got);
        return value_error(cfg, node, path, what);
    }
    *out = v;
    return KM_OK;
}

km_status km_config_get_bool(const km_config *cfg, const char *path, bool fallback, bool *out)
{
    static const char *const true_words[] = {"true", "yes", "on"};
    static const char *const false_words[] = {"false", "no", "off"};
    if (cfg == NULL || path == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "config get_bool: NULL argument");
    yaml_node_t *node = resolve(cfg, path, NULL);
    *out = fallback;
    if (node == NULL)
        return not_found(cfg, path);
    const char *s = scalar_text(node);
    if (s != NULL) {
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(s, true_words[i]) == 0) {
                *out = true;
                return KM_OK;
            }
            if (strcasecmp(s, false_words[i]) == 0) {
                *out = false;
                return KM_OK;
            }
        }
    }
    char what[160], got[64];
    excerpt(node, got, sizeof got);
    snprintf(what, sizeof what, "expected true or false, got %s", got);
    return value_error(cfg, node, path, what);
}

km_status km_config_get_string(const km_config *cfg, const char *path, const char *fallback,
                               char *out, size_t out_size)
{
    if (cfg == NULL || path == NULL || out == NULL || out_size == 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "config get_string: NULL or empty buffer");
    yaml_node_t *node = resolve(cfg, path, NULL);
    if (node == NULL) {
        snprintf(out, out_size, "%s", fallback != NULL ? fallback : "");
        return not_found(cfg, path);
    }
    const char *s = scalar_text(node);
    char what[160], got[64];
    if (s == NULL) {
        excerpt(node, got, sizeof got);
        snprintf(what, sizeof what, "expected a string, got %s", got);
        snprintf(out, out_size, "%s", fallback != NULL ? fallback : "");
        return value_error(cfg, node, path, what);
    }
    size_t len = node->data.scalar.length;
    if (len >= out_size) {
        snprintf(what, sizeof what, "expected a string of at most %zu bytes, got %zu",
                 out_size - 1, len);
        snprintf(out, out_size, "%s", fallback != NULL ? fallback : "");
        return value_error(cfg, node, path, what);
    }
    memcpy(out, s, len + 1);
    return KM_OK;
}

km_status km_config_get_doubles(const km_config *cfg, const char *path, double *out,
                                size_t capacity, size_t *count)
{
    if (cfg == NULL || path == NULL || count == NULL || (out == NULL && capacity > 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "config get_doubles: NULL argument");
    *count = 0;
    yaml_node_t *node = resolve(cfg, path, NULL);
    if (node == NULL)
        return not_found(cfg, path);
    char what[160], got[64];
    if (node->type != YAML_SEQUENCE_NODE) {
        excerpt(node, got, sizeof got);
        snprintf(what, sizeof what, "expected a sequence of numbers, got %s", got);
        return value_error(cfg, node, path, what);
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > capacity) {
        snprintf(what, sizeof what, "expected at most %zu numbers, got %zu", capacity, n);
        return value_error(cfg, node, path, what);
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_by_index(cfg, node->data.sequence.items.start[i]);
        double v;
        if (item == NULL || !parse_double(scalar_text(item), &v)) {
            if (item != NULL)
                excerpt(item, got, sizeof got);
            return km_error(KM_ERR_PARSE, "%s:%d: %s.%zu: expected a number, got %s", cfg->name,
                            node_line(item != NULL ? item : node), path, i,
                            item != NULL ? got : "nothing");
        }
        out[i] = v;
    }
    *count = n;
    return KM_OK;
}

size_t km_config_count(const km_config *cfg, const char *path)
{
    yaml_node_t *node = resolve(cfg, path, NULL);
    if (node == NULL || node->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

const char *km_config_key(const km_config *cfg, const char *path, size_t index)
{
    yaml_node_t *node = resolve(cfg, path, NULL);
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return NULL;
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (index >= n)
        return NULL;
    /* Keys are scalars: checked at load. */
    yaml_node_t *key = node_by_index(cfg, node->data.mapping.pairs.start[index].key);
    return key != NULL ? (const char *)key->data.scalar.value : NULL;
}

km_config_kind km_config_type(const km_config *cfg, const char *path)
{
    yaml_node_t *node = resolve(cfg, path, NULL);
    if (node == NULL)
        return KM_CONFIG_ABSENT;
    switch (node->type) {
    case YAML_MAPPING_NODE: return KM_CONFIG_MAPPING;
    case YAML_SEQUENCE_NODE: return KM_CONFIG_SEQUENCE;
    default: return is_null_scalar(node) ? KM_CONFIG_NULL : KM_CONFIG_SCALAR;
    }
}

int km_config_line(const km_config *cfg, const char *path)
{
    return node_line(resolve(cfg, path, NULL));
}

const char *km_config_name(const km_config *cfg)
{
    return cfg != NULL ? cfg->name : "";
}

/* Levenshtein distance, capped: only used to suggest a near-miss key. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(size_t) * (lb + 1));
    }
    return prev[lb];
}

km_status km_config_check_keys(const km_config *cfg, const char *path, const char *const *known)
{
    if (cfg == NULL || path == NULL || known == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "config check_keys: NULL argument");
    yaml_node_t *node = resolve(cfg, path, NULL);
    if (node == NULL)
        return KM_OK; /* an absent section has no unknown keys */
    const char *shown = *path != '\0' ? path : "(top level)";
    if (node->type != YAML_MAPPING_NODE) {
        char what[160];
        snprintf(what, sizeof what, "expected a mapping, got %s", kind_name(node));
        return value_error(cfg, node, shown, what);
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = node_by_index(cfg, p->key);
        if (key == NULL)
            continue;
        const char *name = (const char *)key->data.scalar.value;
        bool found = false;
        for (const char *const *k = known; *k != NULL && !found; k++)
            found = scalar_equals(key, *k, strlen(*k));
        if (found)
            continue;
        const char *best = NULL;
        size_t best_distance = 3; /* suggest only near misses (typos) */
        char list[256] = "";
        size_t used = 0;
        for (const char *const *k = known; *k != NULL; k++) {
            size_t d = edit_distance(name, *k);
            if (d < best_distance) {
                best_distance = d;
                best = *k;
            }
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *k);
            if (w > 0 && (size_t)w < sizeof list - used)
                used += (size_t)w;
        }
        const char *sep = *path != '\0' ? "." : "";
        if (best != NULL)
            return km_error(KM_ERR_PARSE, "%s:%d: %s%s%.64s: unknown key; did you mean '%s'?",
                            cfg->name, node_line(key), path, sep, name, best);
        return km_error(KM_ERR_PARSE, "%s:%d: %s%s%.64s: unknown key (known: %s)", cfg->name,
                        node_line(key), path, sep, name, list);
    }
    return KM_OK;
}

/* ------------------------------------------------------------------ loading */

/* 1-based line of a byte offset (libyaml reports reader errors by offset only). */
static int line_of_offset(const char *text, size_t length, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < length; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static km_status yaml_failure(const yaml_parser_t *parser, const char *name, const char *text,
                              size_t length)
{
    const char *problem = parser->problem != NULL ? parser->problem : "malformed YAML";
    if (parser->error == YAML_MEMORY_ERROR)
        return km_error(KM_ERR_NO_MEMORY, "%s: out of memory while parsing YAML", name);
    if (parser->error == YAML_READER_ERROR)
        return km_error(KM_ERR_PARSE, "%s:%d: invalid YAML: %s (byte offset %zu)", name,
                        line_of_offset(text, length, parser->problem_offset), problem,
                        parser->problem_offset);
    int line = (int)parser->problem_mark.line + 1;
    if (parser->context != NULL)
        return km_error(KM_ERR_PARSE, "%s:%d: invalid YAML: %s (%s at line %d)", name, line,
                        problem, parser->context, (int)parser->context_mark.line + 1);
    return km_error(KM_ERR_PARSE, "%s:%d: invalid YAML: %s", name, line, problem);
}

static int compare_key_nodes(const void *a, const void *b)
{
    const yaml_node_t *ka = *(yaml_node_t *const *)a, *kb = *(yaml_node_t *const *)b;
    size_t la = ka->data.scalar.length, lb = kb->data.scalar.length;
    int c = memcmp(ka->data.scalar.value, kb->data.scalar.value, la < lb ? la : lb);
    if (c != 0)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    /* Equal keys: order by position so the error names the later one. */
    return ka->start_mark.index < kb->start_mark.index
               ? -1
               : ka->start_mark.index > kb->start_mark.index;
}

/* Every mapping: keys are scalars and unique. Walks the flat node array, so shared (aliased)
 * or even cyclic nodes cost nothing extra. */
static km_status validate_document(km_config *cfg)
{
    yaml_node_t *root = root_node(cfg);
    if (root == NULL)
        return KM_OK; /* empty file: no settings */
    if (root->type != YAML_MAPPING_NODE)
        return km_error(KM_ERR_PARSE, "%s:%d: the top level must be a mapping (key: value), got %s",
                        cfg->name, node_line(root), kind_name(root));
    size_t scratch_capacity = 0;
    yaml_node_t **keys = NULL;
    km_status st = KM_OK;
    for (yaml_node_t *node = cfg->document.nodes.start;
         node < cfg->document.nodes.top && st == KM_OK; node++) {
        if (node->type != YAML_MAPPING_NODE)
            continue;
        size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
        if (n > scratch_capacity) {
            yaml_node_t **grown = realloc(keys, n * sizeof *keys);
            if (grown == NULL) {
                st = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", cfg->name);
                break;
            }
            keys = grown;
            scratch_capacity = n;
        }
        for (size_t i = 0; i < n && st == KM_OK; i++) {
            keys[i] = node_by_index(cfg, node->data.mapping.pairs.start[i].key);
            if (keys[i] == NULL || keys[i]->type != YAML_SCALAR_NODE)
                st = km_error(KM_ERR_PARSE, "%s:%d: mapping keys must be plain scalars",
                              cfg->name, node_line(keys[i] != NULL ? keys[i] : node));
        }
        if (st != KM_OK || n < 2)
            continue;
        qsort(keys, n, sizeof *keys, compare_key_nodes);
        for (size_t i = 1; i < n; i++) {
            if (keys[i]->data.scalar.length == keys[i - 1]->data.scalar.length &&
                memcmp(keys[i]->data.scalar.value, keys[i - 1]->data.scalar.value,
                       keys[i]->data.scalar.length) == 0) {
                st = km_error(KM_ERR_PARSE, "%s:%d: duplicate key '%.64s' (first at line %d)",
                              cfg->name, node_line(keys[i]),
                              (const char *)keys[i]->data.scalar.value, node_line(keys[i - 1]));
                break;
            }
        }
    }
    free(keys);
    return st;
}

/* "%YAML:1.0" (OpenCV FileStorage) or "%YAML 1.0" as first line: libyaml refuses both.
 * Returns the offset of the '%' to comment out, or -1. */
static long opencv_header_offset(const char *text, size_t length)
{
    size_t start = 0;
    if (length >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        start = 3; /* UTF-8 byte order mark */
    static const char *const headers[] = {"%YAML:", "%YAML 1.0"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(headers[i]);
        if (length - start >= n && memcmp(text + start, headers[i], n) == 0)
            return (long)start;
    }
    return -1;
}

km_config *km_config_parse(const char *text, size_t length, const char *name, km_status *err)
{
    km_status st = KM_OK;
    km_config *cfg = NULL;
    char *patched = NULL;
    yaml_parser_t parser;
    bool parser_ready = false;
    if (name == NULL)
        name = "<memory>";
    if (text == NULL && length > 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "%s: NULL text", name);
        goto done;
    }
    if (length > CONFIG_MAX_BYTES || length > INT_MAX) {
        st = km_error(KM_ERR_PARSE, "%s: %zu bytes is too large for a configuration file",
                      name, length);
        goto done;
    }
    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        st = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", name);
        goto done;
    }
    snprintf(cfg->name, sizeof cfg->name, "%s", name);

    const char *input = text != NULL ? text : "";
    long header = opencv_header_offset(input, length);
    if (header >= 0) {
        patched = malloc(length);
        if (patched == NULL) {
            st = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", name);
            goto done;
        }
        memcpy(patched, input, length);
        patched[header] = '#'; /* same length: line numbers unchanged */
        input = patched;
    }

    if (!yaml_parser_initialize(&parser)) {
        st = km_error(KM_ERR_NO_MEMORY, "%s: cannot initialise the YAML parser", name);
        goto done;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)input, length);
    if (!yaml_parser_load(&parser, &cfg->document)) {
        st = yaml_failure(&parser, cfg->name, input, length);
        goto done;
    }
    cfg->loaded = true;
    if (root_node(cfg) != NULL) {
        /* A second document would be silently ignored; refuse it instead (and report a
         * syntax error in the rest of the stream, which yaml_parser_load stops before). */
        yaml_document_t extra;
        if (!yaml_parser_load(&parser, &extra)) {
            st = yaml_failure(&parser, cfg->name, input, length);
            goto done;
        }
        yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
        int extra_line = extra_root != NULL ? (int)extra_root->start_mark.line + 1 : 0;
        yaml_document_delete(&extra);
        if (extra_root != NULL) {
            st = km_error(KM_ERR_PARSE, "%s:%d: only one YAML document is allowed per file",
                          cfg->name, extra_line);
            goto done;
        }
    }
    st = validate_document(cfg);
done:
    if (parser_ready)
        yaml_parser_delete(&parser);
    free(patched);
    if (st != KM_OK) {
        km_config_destroy(cfg);
        cfg = NULL;
    }
    if (err != NULL)
        *err = st;
    return cfg;
}

km_config *km_config_load(const char *path, km_status *err)
{
    km_status st = KM_OK;
    km_config *cfg = NULL;
    char *text = NULL;
    size_t length = 0, capacity = 0;
    if (path == NULL) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "config: NULL path");
        goto done;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        st = km_error(KM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    for (;;) {
        if (length == capacity) {
            if (capacity >= CONFIG_MAX_BYTES) {
                st = km_error(KM_ERR_PARSE, "%s: larger than %u bytes; not a configuration file",
                              path, CONFIG_MAX_BYTES);
                break;
            }
            capacity = capacity == 0 ? 16384 : capacity * 2;
            char *grown = realloc(text, capacity + 1);
            if (grown == NULL) {
                st = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", path);
                break;
            }
            text = grown;
        }
        size_t n = fread(text + length, 1, capacity - length, f);
        length += n;
        if (n == 0) {
            if (ferror(f))
                st = km_error(KM_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st == KM_OK)
        cfg = km_config_parse(text != NULL ? text : "", length, path, &st);
done:
    free(text);
    if (err != NULL)
        *err = st;
    return cfg;
}

void km_config_destroy(km_config *cfg)
{
    if (cfg == NULL)
        return;
    if (cfg->loaded)
        yaml_document_delete(&cfg->document);
    free(cfg);
}
