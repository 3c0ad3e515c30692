/* Import of an anipose / Pose2Sim / freemocap multi-camera calibration (anipose TOML) into a
 * km_rig. The file is one table per camera:
 *
 *   [cam_01]                          any table name except [metadata]
 *   name = "cam_01"                   optional (the table name otherwise)
 *   size = [ 1088.0, 1920.0]          width, height in pixels
 *   matrix = [[fx,0,cx],[0,fy,cy],[0,0,1]]
 *   distortions = [k1, k2, p1, p2]    or [k1, k2, p1, p2, k3] (fewer: the rest are 0)
 *   rotation = [rx, ry, rz]           Rodrigues vector, world -> camera (cv::Rodrigues)
 *   translation = [tx, ty, tz]        x_cam = R X + t, in the file's length unit
 *   fisheye = false                   optional; true is refused (Brown-Conrady only)
 *
 * and an optional [metadata] table (adjusted, error) that is read and ignored.
 *
 * The reader is a strict subset of TOML, enough for every file these tools write: tables
 * [name], `key = value` with bare keys, values that are basic/literal one-line strings,
 * numbers, booleans, or arrays (one or two levels, possibly spanning lines, trailing comma
 * allowed) of numbers; `#` comments. Anything else (dotted keys, inline tables, arrays of
 * tables, escapes, dates, multi-line strings) is a KM_ERR_PARSE naming file and line, not
 * a silent misreading. Keys a camera does not use are ignored so that files with extra
 * fields still import. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

/* Largest image side accepted, as calib/rig.c (guards later buffer sizes). */
#define ANIPOSE_MAX_IMAGE_SIDE 65536
/* Numbers one array value keeps: the largest array we use is the 3x3 matrix; distortion
 * vectors of OpenCV have at most 14. Longer arrays (of keys we ignore) are counted only. */
#define ANIPOSE_ARRAY_CAPACITY 16
/* Longest table name and string value read. */
#define ANIPOSE_TEXT_MAX 128
/* Rodrigues vectors longer than this (radians) are refused: cv::Rodrigues gives at most pi,
 * optimisers that do not wrap the angle drift a few turns at most. */
#define ANIPOSE_MAX_ROTATION_RAD 100.0
/* A calibration file is a few KB; refuse to read something absurd into memory. */
#define ANIPOSE_MAX_FILE_BYTES (16u << 20)

typedef struct cursor {
    const char *p, *end;
    int line;
    const char *file;
} cursor;

typedef enum value_kind { VALUE_STRING, VALUE_NUMBER, VALUE_BOOL, VALUE_ARRAY } value_kind;

typedef struct value {
    value_kind kind;
    int line;
    double number;
    bool boolean;
    char string[ANIPOSE_TEXT_MAX];
    /* Arrays: depth 0 (empty), 1 ([a, b]) or 2 ([[a, b], [c, d]]); rows x cols numbers
     * stored row by row (depth 1: rows = 1); ragged when the inner lengths differ. */
    int depth, rows, cols, count;
    bool ragged;
    double data[ANIPOSE_ARRAY_CAPACITY];
} value;

/* What one camera table has given so far. */
typedef struct camera_state {
    char table[ANIPOSE_TEXT_MAX];
    int header_line;
    bool has_name, has_size, has_matrix, has_dist, has_rotation, has_translation, has_fisheye;
} camera_state;

/* The whole parse: tables seen (for duplicates) and the camera being filled. */
typedef struct parser {
    cursor c;
    km_rig *rig;
    char tables[KM_MAX_CAMERAS + 2][ANIPOSE_TEXT_MAX];
    int table_count;
    bool in_camera; /* else at top level or in [metadata] */
    bool in_metadata;
    camera_state cam;
} parser;

static km_status fail(const cursor *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static km_status fail(const cursor *c, int line, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return km_error(KM_ERR_PARSE, "%s:%d: %s", c->file, line, what);
}

/* ------------------------------------------------------------------ lexer */

static bool at_end(const cursor *c) { return c->p >= c->end; }

static void skip_blank(cursor *c)
{
    while (!at_end(c) && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static void skip_comment(cursor *c)
{
    if (!at_end(c) && *c->p == '#')
        while (!at_end(c) && *c->p != '\n')
            c->p++;
}

/* At a line end ("\n", "\r\n") or the end of the text? Consumes it. */
static bool take_line_end(cursor *c)
{
    if (at_end(c))
        return true;
    if (*c->p == '\n') {
        c->p++;
        c->line++;
        return true;
    }
    if (*c->p == '\r' && c->end - c->p >= 2 && c->p[1] == '\n') {
        c->p += 2;
        c->line++;
        return true;
    }
    return false;
}

/* Inside an array, blanks, comments and line breaks may separate the items. */
static void skip_array_space(cursor *c)
{
    for (;;) {
        skip_blank(c);
        skip_comment(c);
        if (at_end(c) || !(*c->p == '\n' || *c->p == '\r') || !take_line_end(c))
            return;
    }
}

static bool is_bare_key_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* A printable description of the character at the cursor for messages. */
static const char *describe_here(const cursor *c, char buf[16])
{
    if (at_end(c))
        return "end of file";
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '\n' || ch == '\r')
        return "end of line";
    if (ch >= 0x20 && ch < 0x7f)
        snprintf(buf, 16, "'%c'", ch);
    else
        snprintf(buf, 16, "byte 0x%02x", ch);
    return buf;
}

/* A bare key or table name into out (at most ANIPOSE_TEXT_MAX - 1 chars). */
static km_status read_bare_key(cursor *c, char out[ANIPOSE_TEXT_MAX], const char *what)
{
    const char *start = c->p;
    while (!at_end(c) && is_bare_key_char(*c->p))
        c->p++;
    size_t n = (size_t)(c->p - start);
    char buf[16];
    if (n == 0) {
        if (!at_end(c) && (*c->p == '"' || *c->p == '\''))
            return fail(c, c->line, "quoted %ss are not supported (use letters, digits, "
                        "'_' and '-')", what);
        return fail(c, c->line, "expected a %s, found %s", what, describe_here(c, buf));
    }
    if (n >= ANIPOSE_TEXT_MAX)
        return fail(c, c->line, "%s longer than %d characters", what, ANIPOSE_TEXT_MAX - 1);
    memcpy(out, start, n);
    out[n] = '\0';
    if (!at_end(c) && *c->p == '.')
        return fail(c, c->line, "dotted %ss ('%s.') are not supported", what, out);
    return KM_OK;
}

static km_status read_string(cursor *c, value *v)
{
    char quote = *c->p;
    if (c->end - c->p >= 3 && c->p[1] == quote && c->p[2] == quote)
        return fail(c, c->line, "multi-line strings are not supported");
    c->p++;
    size_t n = 0;
    for (;;) {
        if (at_end(c) || *c->p == '\n' || *c->p == '\r')
            return fail(c, c->line, "unterminated string");
        char ch = *c->p;
        if (ch == quote)
            break;
        if (ch == '\\' && quote == '"')
            return fail(c, c->line, "escape sequences in strings are not supported");
        if ((unsigned char)ch < 0x20 && ch != '\t')
            return fail(c, c->line, "control character 0x%02x in a string", (unsigned char)ch);
        if (ch == 0x7f)
            return fail(c, c->line, "control character 0x7f in a string");
        if (n + 1 >= sizeof v->string)
            return fail(c, c->line, "string longer than %zu characters", sizeof v->string - 1);
        v->string[n++] = ch;
        c->p++;
    }
    c->p++;
    v->string[n] = '\0';
    v->kind = VALUE_STRING;
    return KM_OK;
}

/* A TOML decimal number: [+-] digits [. digits] [e [+-] digits]. inf/nan and numbers that
 * overflow a double are refused as non-finite; hex/octal/binary and '_' are not supported. */
/* Move *q past a run of decimal digits; how many there were. */
static size_t skip_digits(const char **q)
{
    const char *start = *q;
    while (**q >= '0' && **q <= '9')
        (*q)++;
    return (size_t)(*q - start);
}

static km_status read_number(cursor *c, double *out)
{
    const char *start = c->p;
    while (!at_end(c) && (is_bare_key_char(*c->p) || *c->p == '.' || *c->p == '+'))
        c->p++;
    size_t n = (size_t)(c->p - start);
    char tok[64];
    char buf[16];
    if (n == 0)
        return fail(c, c->line, "expected a number, found %s", describe_here(c, buf));
    if (n >= sizeof tok)
        return fail(c, c->line, "number too long (%zu characters)", n);
    memcpy(tok, start, n);
    tok[n] = '\0';
    const char *s = tok;
    if (*s == '+' || *s == '-')
        s++;
    if (strcmp(s, "inf") == 0 || strcmp(s, "nan") == 0)
        return fail(c, c->line, "non-finite number '%s'", tok);
    /* Validate the grammar ourselves: strtod also takes hex, "infinity", leading '.'. */
    const char *q = s;
    bool ok = skip_digits(&q) > 0;
    if (ok && *q == '.') {
        q++;
        ok = skip_digits(&q) > 0;
    }
    if (ok && (*q == 'e' || *q == 'E')) {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        ok = skip_digits(&q) > 0;
    }
    if (!ok || *q != '\0')
        return fail(c, c->line, "bad number '%s'", tok);
    errno = 0;
    double d = strtod(tok, NULL);
    if (!isfinite(d))
        return fail(c, c->line, "non-finite number '%s' (out of range)", tok);
    *out = d;
    return KM_OK;
}

/* Does the text at the cursor start with the whole word `word`? */
static bool take_word_peek(const cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    return !((size_t)(c->end - c->p) > n && is_bare_key_char(c->p[n]));
}

static void array_push(value *v, double d)
{
    if (v->count < ANIPOSE_ARRAY_CAPACITY)
        v->data[v->count] = d;
    v->count++;
}

/* One item separator inside an array: ',' or the closing ']' (left for the caller). */
static km_status array_separator(cursor *c, int open_line)
{
    skip_array_space(c);
    if (!at_end(c) && *c->p == ',') {
        c->p++;
        return KM_OK;
    }
    if (!at_end(c) && *c->p == ']')
        return KM_OK;
    char buf[16];
    if (at_end(c))
        return fail(c, c->line, "unterminated array (opened on line %d)", open_line);
    return fail(c, c->line, "expected ',' or ']' in the array opened on line %d, found %s "
                "(is its ']' missing?)", open_line, describe_here(c, buf));
}

/* An array item must be a number (or a nested array, checked by the caller): anything else
 * is most often an array whose ']' was forgotten, running into the next key. */
static km_status check_item_start(const cursor *c, int open_line)
{
    char ch = *c->p;
    if ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.' || ch == 'i' ||
        ch == 'n')
        return KM_OK;
    char buf[16];
    if (ch == '"' || ch == '\'' || ch == '{' || take_word_peek(c, "true") ||
        take_word_peek(c, "false"))
        return fail(c, c->line, "only arrays of numbers are supported");
    return fail(c, c->line, "expected a number or ']' in the array opened on line %d, found "
                "%s (is its ']' missing?)", open_line, describe_here(c, buf));
}

/* The inner array of a two-level array: numbers only. Returns its length in *n. */
static km_status read_inner_array(cursor *c, value *v, int *n)
{
    int open_line = c->line;
    c->p++; /* '[' */
    *n = 0;
    km_status st;
    for (;;) {
        skip_array_space(c);
        if (at_end(c))
            return fail(c, c->line, "unterminated array (opened on line %d)", open_line);
        if (*c->p == ']') {
            c->p++;
            return KM_OK;
        }
        if (*c->p == '[')
            return fail(c, c->line, "arrays nested more than two levels are not supported");
        if ((st = check_item_start(c, open_line)) != KM_OK)
            return st;
        double d;
        if ((st = read_number(c, &d)) != KM_OK)
            return st;
        array_push(v, d);
        (*n)++;
        if ((st = array_separator(c, open_line)) != KM_OK)
            return st;
    }
}

static km_status read_array(cursor *c, value *v)
{
    int open_line = c->line;
    c->p++; /* '[' */
    v->kind = VALUE_ARRAY;
    v->depth = v->rows = v->cols = v->count = 0;
    v->ragged = false;
    km_status st;
    for (;;) {
        skip_array_space(c);
        if (at_end(c))
            return fail(c, c->line, "unterminated array (opened on line %d)", open_line);
        if (*c->p == ']') {
            c->p++;
            return KM_OK;
        }
        if (*c->p == '[') {
            if (v->depth == 1)
                return fail(c, c->line, "array mixes numbers and arrays");
            v->depth = 2;
            int n;
            if ((st = read_inner_array(c, v, &n)) != KM_OK)
                return st;
            if (v->rows == 0)
                v->cols = n;
            else if (n != v->cols)
                v->ragged = true;
            v->rows++;
        } else {
            if (v->depth == 2)
                return fail(c, c->line, "array mixes arrays and numbers");
            if ((st = check_item_start(c, open_line)) != KM_OK)
                return st;
            v->depth = 1;
            double d;
            if ((st = read_number(c, &d)) != KM_OK)
                return st;
            array_push(v, d);
            v->rows = 1;
            v->cols++;
        }
        if ((st = array_separator(c, open_line)) != KM_OK)
            return st;
    }
}

static bool take_word(cursor *c, const char *word)
{
    if (!take_word_peek(c, word))
        return false;
    c->p += strlen(word);
    return true;
}

static km_status read_value(cursor *c, value *v)
{
    char buf[16];
    v->line = c->line;
    if (at_end(c) || *c->p == '\n' || *c->p == '\r' || *c->p == '#')
        return fail(c, c->line, "missing value after '='");
    char ch = *c->p;
    if (ch == '"' || ch == '\'')
        return read_string(c, v);
    if (ch == '[')
        return read_array(c, v);
    if (ch == '{')
        return fail(c, c->line, "inline tables are not supported");
    if (take_word(c, "true") || take_word(c, "false")) {
        v->kind = VALUE_BOOL;
        v->boolean = ch == 't';
        return KM_OK;
    }
    if ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == 'i' || ch == 'n') {
        v->kind = VALUE_NUMBER;
        return read_number(c, &v->number);
    }
    return fail(c, c->line, "unsupported value starting with %s", describe_here(c, buf));
}

/* --------------------------------------------------------------- semantics */

/* Names are later written inside double quotes by km_rig_save (calib/rig.c): printable,
 * no '"' or '\'. */
static bool name_is_plain(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

/* "[cam_01]" or "[cam_01] (name)" for messages. */
static const char *camera_label(const parser *ps, char *out, size_t size)
{
    const km_camera *cam = &ps->rig->cameras[ps->rig->camera_count - 1];
    if (ps->cam.has_name && strcmp(cam->name, ps->cam.table) != 0)
        snprintf(out, size, "[%s] (\"%s\")", ps->cam.table, cam->name);
    else
        snprintf(out, size, "[%s]", ps->cam.table);
    return out;
}

static km_status want_vector(const parser *ps, const char *key, const value *v, int n)
{
    char label[2 * ANIPOSE_TEXT_MAX];
    if (v->kind != VALUE_ARRAY || v->depth != 1 || v->cols != n)
        return fail(&ps->c, v->line, "%s: %s: expected an array of %d numbers", 
                    camera_label(ps, label, sizeof label), key, n);
    return KM_OK;
}

static km_status camera_key(parser *ps, const char *key, const value *v)
{
    km_camera *cam = &ps->rig->cameras[ps->rig->camera_count - 1];
    camera_state *cs = &ps->cam;
    char label[2 * ANIPOSE_TEXT_MAX];
    km_status st;
    if (strcmp(key, "name") == 0) {
        if (v->kind != VALUE_STRING)
            return fail(&ps->c, v->line, "[%s]: name: expected a string", cs->table);
        if (strlen(v->string) >= KM_NAME_MAX)
            return fail(&ps->c, v->line, "[%s]: name: longer than %d characters", cs->table,
                        KM_NAME_MAX - 1);
        if (v->string[0] == '\0' || !name_is_plain(v->string))
            return fail(&ps->c, v->line, "[%s]: name: empty or with '\"', '\\' or control "
                        "characters", cs->table);
        memcpy(cam->name, v->string, strlen(v->string) + 1); /* fits: checked above */
        cs->has_name = true;
    } else if (strcmp(key, "size") == 0) {
        if ((st = want_vector(ps, key, v, 2)) != KM_OK)
            return st;
        for (int i = 0; i < 2; i++)
            if (!(v->data[i] >= 1.0 && v->data[i] <= ANIPOSE_MAX_IMAGE_SIDE) ||
                v->data[i] != floor(v->data[i]))
                return fail(&ps->c, v->line, "%s: size: %g is not an image side in pixels "
                            "(a whole number in 1..%d)", camera_label(ps, label, sizeof label),
                            v->data[i], ANIPOSE_MAX_IMAGE_SIDE);
        cam->width = (int)v->data[0];
        cam->height = (int)v->data[1];
        cs->has_size = true;
    } else if (strcmp(key, "matrix") == 0) {
        if (v->kind != VALUE_ARRAY || v->depth != 2 || v->rows != 3 || v->cols != 3 ||
            v->ragged)
            return fail(&ps->c, v->line, "%s: matrix: expected a 3x3 array "
                        "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]",
                        camera_label(ps, label, sizeof label));
        const double *K = v->data;
        if (!(K[0] > 0.0) || !(K[4] > 0.0))
            return fail(&ps->c, v->line, "%s: matrix: focal lengths must be > 0 (fx = %g, "
                        "fy = %g)", camera_label(ps, label, sizeof label), K[0], K[4]);
        if (K[3] != 0.0 || K[6] != 0.0 || K[7] != 0.0 || K[8] != 1.0)
            return fail(&ps->c, v->line, "%s: matrix: expected [[fx, 0, cx], [0, fy, cy], "
                        "[0, 0, 1]]", camera_label(ps, label, sizeof label));
        if (K[1] != 0.0)
            return fail(&ps->c, v->line, "%s: matrix: skew (element 0,1 = %g) is not "
                        "supported", camera_label(ps, label, sizeof label), K[1]);
        memcpy(cam->K, K, sizeof cam->K);
        cs->has_matrix = true;
    } else if (strcmp(key, "distortions") == 0) {
        /* OpenCV's vectors: up to 5 (k1 k2 p1 p2 k3; shorter ones mean the rest are 0), or
         * 8/12/14 whose terms beyond k3 we do not model and accept only as zeros. */
        if (v->kind != VALUE_ARRAY || v->depth > 1 ||
            !(v->cols <= 5 || v->cols == 8 || v->cols == 12 || v->cols == 14))
            return fail(&ps->c, v->line, "%s: distortions: expected an array of up to 5 "
                        "numbers [k1, k2, p1, p2, k3]", camera_label(ps, label, sizeof label));
        for (int i = 5; i < v->cols; i++)
            if (v->data[i] != 0.0)
                return fail(&ps->c, v->line, "%s: distortions: coefficient %d is %g: only k1 "
                            "k2 p1 p2 k3 are supported (higher terms must be 0)",
                            camera_label(ps, label, sizeof label), i, v->data[i]);
        memset(cam->dist, 0, sizeof cam->dist);
        for (int i = 0; i < v->cols && i < 5; i++)
            cam->dist[i] = v->data[i];
        cs->has_dist = true;
    } else if (strcmp(key, "rotation") == 0) {
        if ((st = want_vector(ps, key, v, 3)) != KM_OK)
            return st;
        /* A rotation angle is at most pi (cv::Rodrigues); a huge vector is garbage whose
         * norm could overflow and make the matrix NaN. */
        km_vec3 r = km_vec3_make(v->data[0], v->data[1], v->data[2]);
        double angle = km_vec3_norm(r);
        if (!(angle <= ANIPOSE_MAX_ROTATION_RAD))
            return fail(&ps->c, v->line, "%s: rotation: |r| = %g rad is not a rotation "
                        "vector (expected at most %g)", camera_label(ps, label, sizeof label),
                        angle, ANIPOSE_MAX_ROTATION_RAD);
        cam->R = km_mat3_from_rodrigues(r);
        cs->has_rotation = true;
    } else if (strcmp(key, "translation") == 0) {
        if ((st = want_vector(ps, key, v, 3)) != KM_OK)
            return st;
        cam->t = km_vec3_make(v->data[0], v->data[1], v->data[2]);
        cs->has_translation = true;
    } else if (strcmp(key, "fisheye") == 0) {
        if (v->kind != VALUE_BOOL)
            return fail(&ps->c, v->line, "%s: fisheye: expected true or false",
                        camera_label(ps, label, sizeof label));
        if (v->boolean)
            return km_error(KM_ERR_UNSUPPORTED, "%s:%d: %s: fisheye = true: Kinema's camera "
                            "model is the pinhole with Brown-Conrady distortion only; "
                            "calibrate this camera without the fisheye model",
                            ps->c.file, v->line, camera_label(ps, label, sizeof label));
        cs->has_fisheye = true;
    } else {
        km_log(KM_LOG_DEBUG, "calib", "%s:%d: [%s]: key '%s' ignored", ps->c.file, v->line,
               cs->table, key);
    }
    return KM_OK;
}

/* Close the current camera table: every required key must have been given. */
static km_status finish_camera(parser *ps)
{
    if (!ps->in_camera)
        return KM_OK;
    const camera_state *cs = &ps->cam;
    const char *missing = !cs->has_size          ? "size"
                          : !cs->has_matrix      ? "matrix"
                          : !cs->has_rotation    ? "rotation"
                          : !cs->has_translation ? "translation"
                                                 : NULL;
    if (missing != NULL) {
        char label[2 * ANIPOSE_TEXT_MAX];
        return fail(&ps->c, cs->header_line, "%s: %s: not found (a camera needs size, "
                    "matrix, rotation and translation)", camera_label(ps, label, sizeof label),
                    missing);
    }
    km_camera *cam = &ps->rig->cameras[ps->rig->camera_count - 1];
    cam->has_pose = true;
    ps->in_camera = false;
    return KM_OK;
}

static km_status table_header(parser *ps)
{
    cursor *c = &ps->c;
    int line = c->line;
    char name[ANIPOSE_TEXT_MAX];
    char buf[16];
    km_status st;
    c->p++; /* '[' */
    if (!at_end(c) && *c->p == '[')
        return fail(c, line, "arrays of tables ([[...]]) are not supported");
    skip_blank(c);
    if ((st = read_bare_key(c, name, "table name")) != KM_OK)
        return st;
    skip_blank(c);
    if (at_end(c) || *c->p != ']')
        return fail(c, line, "expected ']' after the table name, found %s",
                    describe_here(c, buf));
    c->p++;
    if ((st = finish_camera(ps)) != KM_OK)
        return st;
    for (int i = 0; i < ps->table_count; i++)
        if (strcmp(ps->tables[i], name) == 0)
            return fail(c, line, "table [%s] defined twice", name);
    ps->in_metadata = strcmp(name, "metadata") == 0;
    if (!ps->in_metadata) {
        if (ps->rig->camera_count >= KM_MAX_CAMERAS)
            return fail(c, line, "[%s]: more than %d cameras", name, KM_MAX_CAMERAS);
        km_camera *cam = &ps->rig->cameras[ps->rig->camera_count++];
        memset(cam, 0, sizeof *cam);
        cam->R = km_mat3_identity();
        /* The table name stands for the camera's name until `name =` gives one. */
        snprintf(cam->name, KM_NAME_MAX, "%.*s", KM_NAME_MAX - 1, name);
        memset(&ps->cam, 0, sizeof ps->cam);
        snprintf(ps->cam.table, sizeof ps->cam.table, "%s", name);
        ps->cam.header_line = line;
        ps->in_camera = true;
    }
    /* Table names are remembered for the duplicate check; the array holds every camera plus
     * [metadata] (more cameras failed above). */
    if (ps->table_count < (int)(sizeof ps->tables / sizeof ps->tables[0]))
        snprintf(ps->tables[ps->table_count++], ANIPOSE_TEXT_MAX, "%s", name);
    return KM_OK;
}

/* Keys seen in the current table, for the duplicate-key check (anipose writes 8). */
#define ANIPOSE_MAX_KEYS 64

static km_status parse_text(parser *ps)
{
    cursor *c = &ps->c;
    char keys[ANIPOSE_MAX_KEYS][ANIPOSE_TEXT_MAX];
    int key_count = 0;
    char buf[16];
    km_status st;
    value *v = malloc(sizeof *v);
    if (v == NULL)
        return km_error(KM_ERR_NO_MEMORY, "%s: out of memory", c->file);
    st = KM_OK;
    while (st == KM_OK && !at_end(c)) {
        skip_blank(c);
        skip_comment(c);
        if (take_line_end(c))
            continue;
        int line = c->line;
        if (*c->p == '[') {
            if ((st = table_header(ps)) != KM_OK)
                break;
            key_count = 0;
        } else {
            char key[ANIPOSE_TEXT_MAX];
            if ((st = read_bare_key(c, key, "key")) != KM_OK)
                break;
            skip_blank(c);
            if (at_end(c) || *c->p != '=') {
                st = fail(c, line, "expected '=' after '%s', found %s", key,
                          describe_here(c, buf));
                break;
            }
            c->p++;
            skip_blank(c);
            for (int i = 0; i < key_count; i++)
                if (strcmp(keys[i], key) == 0) {
                    st = fail(c, line, "key '%s' given twice in the same table", key);
                    break;
                }
            if (st != KM_OK)
                break;
            if (key_count >= ANIPOSE_MAX_KEYS) {
                st = fail(c, line, "more than %d keys in one table", ANIPOSE_MAX_KEYS);
                break;
            }
            snprintf(keys[key_count++], ANIPOSE_TEXT_MAX, "%s", key);
            memset(v, 0, sizeof *v);
            if ((st = read_value(c, v)) != KM_OK)
                break;
            if (ps->in_camera && (st = camera_key(ps, key, v)) != KM_OK)
                break;
        }
        /* After a header or a value: only blanks and a comment before the line end. */
        skip_blank(c);
        skip_comment(c);
        if (!take_line_end(c)) {
            st = fail(c, c->line, "unexpected %s after the %s", describe_here(c, buf),
                      line == c->line ? "value" : "array");
            break;
        }
    }
    free(v);
    if (st != KM_OK)
        return st;
    if ((st = finish_camera(ps)) != KM_OK)
        return st;
    if (ps->rig->camera_count == 0)
        return fail(c, c->line, "no camera table ([cam_0], ...) in the file");
    return KM_OK;
}

/* The rig's name: the file's base name without its extension, made safe for km_rig_save. */
static void rig_name_from_path(const char *path, char out[KM_NAME_MAX])
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n >= KM_NAME_MAX)
        n = KM_NAME_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)base[i];
        out[i] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '_' : (char)ch;
    }
    out[n] = '\0';
}

km_status km_rig_parse_anipose(const char *text, size_t length, const char *name, km_rig *out)
{
    if ((text == NULL && length > 0) || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "anipose parse: NULL argument");
    parser *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return km_error(KM_ERR_NO_MEMORY, "anipose parse: out of memory");
    if (name == NULL)
        name = "(anipose)";
    memset(out, 0, sizeof *out);
    ps->c = (cursor){.p = text != NULL ? text : "", .end = (text != NULL ? text : "") + length,
                     .line = 1, .file = name};
    ps->rig = out;
    km_status st = parse_text(ps);
    free(ps);
    if (st != KM_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    rig_name_from_path(name, out->name);
    return KM_OK;
}

km_status km_rig_load_anipose(const char *path, km_rig *out)
{
    if (path == NULL || out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "anipose load: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return km_error(KM_ERR_IO, "%s: %s", path, strerror(errno));
    size_t capacity = 64 * 1024, length = 0;
    char *text = malloc(capacity);
    km_status st = KM_OK;
    while (text != NULL) {
        length += fread(text + length, 1, capacity - length, f);
        if (length < capacity)
            break;
        if (capacity >= ANIPOSE_MAX_FILE_BYTES) {
            st = km_error(KM_ERR_PARSE, "%s: larger than %u bytes: not a calibration file",
                          path, ANIPOSE_MAX_FILE_BYTES);
            break;
        }
        char *bigger = realloc(text, capacity * 2);
        if (bigger == NULL) {
            free(text);
            text = NULL;
            break;
        }
        text = bigger;
        capacity *= 2;
    }
    if (text == NULL)
        st = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", path);
    else if (st == KM_OK && ferror(f))
        st = km_error(KM_ERR_IO, "%s: read error", path);
    fclose(f);
    if (st == KM_OK)
        st = km_rig_parse_anipose(text, length, path, out);
    free(text);
    return st;
}
