/* The gesture model file: a recognizer's configuration and normalised templates as
 * versioned line-oriented text (docs/formats.md, "Gesture model"). The reader is strict: keys
 * in a fixed order, every number checked, counts matched, "name:line: why" on any error. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

#define MODEL_MAGIC "kinema_gesture_model"
#define MODEL_VERSION 1
#define MODEL_MAX_TEMPLATES 1000000

km_status km_gesture_model_write(const km_gesture_recognizer *rec, FILE *f)
{
    if (!rec || !f)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture model: NULL argument");
    const km_gesture_config *cfg = km_gesture_recognizer_config(rec);
    size_t count = km_gesture_recognizer_template_count(rec);
    fprintf(f, "%s %d\n", MODEL_MAGIC, MODEL_VERSION);
    fprintf(f, "resample_count %zu\n", cfg->resample_count);
    fprintf(f, "scale %s\n", km_gesture_scale_name(cfg->scale));
    fprintf(f, "rotation %s\n", km_gesture_rotation_name(cfg->rotation));
    fprintf(f, "matcher %s\n", km_gesture_matcher_name(cfg->matcher));
    fprintf(f, "search_angle_rad %.17g\n", cfg->search_angle_rad);
    fprintf(f, "search_threshold_rad %.17g\n", cfg->search_threshold_rad);
    fprintf(f, "dtw_band %.17g\n", cfg->dtw_band);
    fprintf(f, "cost_at_zero_score %.17g\n", cfg->cost_at_zero_score);
    fprintf(f, "min_score %.17g\n", cfg->min_score);
    fprintf(f, "templates %zu\n", count);
    for (size_t t = 0; t < count; t++) {
        int label;
        const km_vec3 *pts = km_gesture_recognizer_template(rec, t, &label);
        fprintf(f, "template %s\n", km_gesture_recognizer_label_name(rec, (size_t)label));
        for (size_t i = 0; i < cfg->resample_count; i++)
            fprintf(f, "%.17g %.17g %.17g\n", pts[i].x, pts[i].y, pts[i].z);
    }
    fprintf(f, "end\n");
    if (ferror(f))
        return km_error(KM_ERR_IO, "gesture model: write failed: %s", strerror(errno));
    return KM_OK;
}

km_status km_gesture_model_save(const km_gesture_recognizer *rec, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return km_error(KM_ERR_IO, "%s: %s", path, strerror(errno));
    km_status st = km_gesture_model_write(rec, f);
    if (fclose(f) != 0 && !st)
        st = km_error(KM_ERR_IO, "%s: %s", path, strerror(errno));
    return st;
}

/* ------------------------------------------------------------------ reader */

#define MAX_TOKENS 4

typedef struct model_reader {
    const char *text, *name;
    size_t length, pos;
    int line;
    /* the current line split into whitespace-separated tokens (NUL-terminated copies) */
    char buf[256];
    char *tok[MAX_TOKENS];
    int ntok;
} model_reader;

static km_status fail(const model_reader *r, const char *fmt, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, fmt, what);
    return km_error(KM_ERR_PARSE, "%s:%d: gesture model: %s", r->name, r->line, msg);
}

/* Next line that is not blank or a comment; KM_ERR_END_OF_STREAM at the end. */
static km_status next_line(model_reader *r)
{
    while (r->pos < r->length) {
        r->line++;
        size_t end = r->pos;
        while (end < r->length && r->text[end] != '\n')
            end++;
        size_t len = end - r->pos;
        const char *s = r->text + r->pos;
        r->pos = end + 1;
        if (len && s[len - 1] == '\r')
            len--;
        if (len >= sizeof r->buf)
            return fail(r, "%s", "line too long");
        memcpy(r->buf, s, len);
        r->buf[len] = '\0';
        if (strlen(r->buf) != len)
            return fail(r, "%s", "NUL byte in line");
        r->ntok = 0;
        char *p = r->buf;
        for (;;) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (!*p || *p == '#')
                break;
            if (r->ntok == MAX_TOKENS)
                return fail(r, "%s", "too many fields");
            r->tok[r->ntok++] = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
            if (*p)
                *p++ = '\0';
        }
        if (r->ntok > 0)
            return KM_OK;
    }
    return KM_ERR_END_OF_STREAM;
}

static km_status expect_line(model_reader *r, const char *what)
{
    km_status st = next_line(r);
    if (st == KM_ERR_END_OF_STREAM)
        return fail(r, "unexpected end of file, %s expected", what);
    return st;
}

static bool to_double(const char *s, double *out)
{
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p))
            return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool to_size(const char *s, size_t *out)
{
    if (!isdigit((unsigned char)s[0]) || strlen(s) > 9)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *out = (size_t)strtoul(s, NULL, 10);
    return true;
}

/* "key value" with exactly that key. */
static km_status key_value(model_reader *r, const char *key, const char **value)
{
    km_status st = expect_line(r, key);
    if (st)
        return st;
    if (strcmp(r->tok[0], key) != 0)
        return fail(r, "'%s' expected", key);
    if (r->ntok != 2)
        return fail(r, "'%s' takes exactly one value", key);
    *value = r->tok[1];
    return KM_OK;
}

/* Reads `key` into *out, a field of *cfg, and checks the configuration at once so that an
 * out-of-range value is reported on its own line (the other fields hold valid values). */
static km_status key_double(model_reader *r, const char *key, double *out,
                            const km_gesture_config *cfg)
{
    const char *v;
    km_status st = key_value(r, key, &v);
    if (st)
        return st;
    if (!to_double(v, out))
        return fail(r, "'%s' is not a finite number", key);
    if (km_gesture_config_check(cfg))
        return fail(r, "%s", km_last_error());
    return KM_OK;
}

km_gesture_recognizer *km_gesture_model_parse(const char *text, size_t length, const char *name,
                                              size_t max_templates, km_status *err)
{
    model_reader r = {.text = text, .name = name ? name : "(model)", .length = length};
    km_gesture_recognizer *rec = NULL;
    km_vec3 *pts = NULL;
    km_status st = KM_OK;
    const char *v;
    km_gesture_config cfg = km_gesture_config_default();
    size_t count = 0;
    if (!text && length) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "gesture model: NULL text");
        goto done;
    }

    if ((st = expect_line(&r, MODEL_MAGIC)))
        goto done;
    if (strcmp(r.tok[0], MODEL_MAGIC) != 0 || r.ntok != 2) {
        st = fail(&r, "first line must be '%s <version>'", MODEL_MAGIC);
        goto done;
    }
    if (strcmp(r.tok[1], "1") != 0) {
        st = fail(&r, "unsupported version %s (this reader knows 1)", r.tok[1]);
        goto done;
    }
    if ((st = key_value(&r, "resample_count", &v)))
        goto done;
    if (!to_size(v, &cfg.resample_count)) {
        st = fail(&r, "%s", "resample_count is not a count");
        goto done;
    }
    if (km_gesture_config_check(&cfg)) {
        st = fail(&r, "%s", km_last_error());
        goto done;
    }
    if ((st = key_value(&r, "scale", &v)))
        goto done;
    if (km_gesture_scale_parse(v, &cfg.scale)) {
        st = fail(&r, "%s", km_last_error());
        goto done;
    }
    if ((st = key_value(&r, "rotation", &v)))
        goto done;
    if (km_gesture_rotation_parse(v, &cfg.rotation)) {
        st = fail(&r, "%s", km_last_error());
        goto done;
    }
    if ((st = key_value(&r, "matcher", &v)))
        goto done;
    if (km_gesture_matcher_parse(v, &cfg.matcher)) {
        st = fail(&r, "%s", km_last_error());
        goto done;
    }
    if ((st = key_double(&r, "search_angle_rad", &cfg.search_angle_rad, &cfg)) ||
        (st = key_double(&r, "search_threshold_rad", &cfg.search_threshold_rad, &cfg)) ||
        (st = key_double(&r, "dtw_band", &cfg.dtw_band, &cfg)) ||
        (st = key_double(&r, "cost_at_zero_score", &cfg.cost_at_zero_score, &cfg)) ||
        (st = key_double(&r, "min_score", &cfg.min_score, &cfg)))
        goto done;
    if ((st = key_value(&r, "templates", &v)))
        goto done;
    if (!to_size(v, &count) || count > MODEL_MAX_TEMPLATES) {
        st = fail(&r, "%s", "templates is not a count <= 1000000");
        goto done;
    }
    /* Each point line takes at least 6 bytes: refuse counts the text cannot hold before
     * allocating for them. */
    if (cfg.resample_count > 0 && count > (length / 6) / cfg.resample_count + 1) {
        st = fail(&r, "%s", "templates count larger than the file can hold");
        goto done;
    }
    cfg.max_templates = count > max_templates ? count : max_templates;
    if (cfg.max_templates == 0)
        cfg.max_templates = 1;
    if (km_gesture_config_check(&cfg)) {
        st = fail(&r, "%s", km_last_error());
        goto done;
    }
    rec = km_gesture_recognizer_create(&cfg, &st);
    pts = malloc(cfg.resample_count * sizeof *pts);
    if (!rec || !pts) {
        st = km_error(KM_ERR_NO_MEMORY, "%s: gesture model: out of memory", r.name);
        goto done;
    }
    for (size_t t = 0; t < count; t++) {
        if ((st = expect_line(&r, "'template <label>'")))
            goto done;
        if (strcmp(r.tok[0], "template") != 0 || r.ntok != 2 ||
            !km_gesture_label_valid(r.tok[1])) {
            st = fail(&r, "%s", "'template <label>' expected (label: 1..63 of [A-Za-z0-9_.-])");
            goto done;
        }
        char label[KM_GESTURE_NAME_MAX];
        snprintf(label, sizeof label, "%s", r.tok[1]);
        int template_line = r.line;
        for (size_t i = 0; i < cfg.resample_count; i++) {
            if ((st = expect_line(&r, "a point 'x y z'")))
                goto done;
            double xyz[3];
            if (r.ntok != 3 || !to_double(r.tok[0], &xyz[0]) || !to_double(r.tok[1], &xyz[1]) ||
                !to_double(r.tok[2], &xyz[2])) {
                st = fail(&r, "%s", "point 'x y z' of three finite numbers expected");
                goto done;
            }
            pts[i] = km_vec3_make(xyz[0], xyz[1], xyz[2]);
        }
        if (km_gesture_recognizer_add_normalized(rec, label, pts, cfg.resample_count)) {
            r.line = template_line;
            st = fail(&r, "%s", km_last_error());
            goto done;
        }
    }
    if ((st = expect_line(&r, "'end'")))
        goto done;
    if (strcmp(r.tok[0], "end") != 0 || r.ntok != 1) {
        st = fail(&r, "%s", "'end' expected after the last template");
        goto done;
    }
    st = next_line(&r);
    if (st == KM_ERR_END_OF_STREAM)
        st = KM_OK;
    else if (!st)
        st = fail(&r, "%s", "content after 'end'");
done:
    free(pts);
    if (st) {
        km_gesture_recognizer_destroy(rec);
        rec = NULL;
    }
    if (err)
        *err = st;
    return rec;
}

km_gesture_recognizer *km_gesture_model_load(const char *path, size_t max_templates,
                                             km_status *err)
{
    char *text;
    size_t length;
    km_status st = km_gesture_read_file(path, &text, &length);
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    km_gesture_recognizer *rec = km_gesture_model_parse(text, length, path, max_templates, err);
    free(text);
    return rec;
}
