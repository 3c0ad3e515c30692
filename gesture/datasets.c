/* Readers of gesture data sets into a km_gesture_set: traj.csv (formats.md), the $1 XML logs
 * and the unified JSON of the 3D gesture data sets. Offline code: it allocates. Every error
 * names the input and the line. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"
#include "json.h"

/* Refuse absurd inputs before allocating for them. */
#define MAX_FILE_BYTES ((size_t)1 << 30)

/* ------------------------------------------------------------------ files */

km_status km_gesture_read_file(const char *path, char **text, size_t *length)
{
    *text = NULL;
    *length = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return km_error(KM_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= MAX_FILE_BYTES) {
            free(buf);
            fclose(f);
            return km_error(KM_ERR_CAPACITY, "%s: larger than %zu bytes", path, MAX_FILE_BYTES);
        }
        cap *= 2;
        char *grown = realloc(buf, cap + 1);
        if (!grown)
            free(buf);
        buf = grown;
    }
    if (!buf) {
        fclose(f);
        return km_error(KM_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        return km_error(KM_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *text = buf;
    *length = n;
    return KM_OK;
}

/* -------------------------------------------------------------------- set */

km_gesture_set *km_gesture_set_create(void)
{
    return calloc(1, sizeof(km_gesture_set));
}

void km_gesture_set_destroy(km_gesture_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        km_trajectory_release(&set->samples[i].traj);
    free(set->samples);
    free(set);
}

km_status km_gesture_set_add(km_gesture_set *set, const char *id, const char *label,
                             int subject, const km_vec3 *pos, const int64_t *t_ns, size_t count)
{
    if (!set || !id || !pos || count == 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture set: bad arguments");
    if (!km_gesture_label_valid(label))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "gesture set: label '%s' is not 1..63 characters of [A-Za-z0-9_.-]",
                        label ? label : "(null)");
    if (strlen(id) >= KM_GESTURE_NAME_MAX)
        return km_error(KM_ERR_INVALID_ARGUMENT, "gesture set: sample id longer than %d",
                        KM_GESTURE_NAME_MAX - 1);
    if (set->count == set->capacity) {
        size_t cap = set->capacity ? set->capacity * 2 : 64;
        km_gesture_sample *s = realloc(set->samples, cap * sizeof *s);
        if (!s)
            return km_error(KM_ERR_NO_MEMORY, "gesture set: out of memory");
        set->samples = s;
        set->capacity = cap;
    }
    km_gesture_sample *s = &set->samples[set->count];
    memset(s, 0, sizeof *s);
    km_status st = km_trajectory_init(&s->traj, count);
    if (st)
        return st;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->label, sizeof s->label, "%s", label);
    s->subject = subject;
    memcpy(s->traj.pos, pos, count * sizeof *pos);
    for (size_t i = 0; i < count; i++)
        s->traj.t_ns[i] = t_ns ? t_ns[i] : 0;
    s->traj.count = count;
    set->count++;
    return KM_OK;
}

/* Growable point buffer used while a sample is being read. */
typedef struct point_buffer {
    km_vec3 *pos;
    int64_t *t_ns;
    size_t count, capacity;
} point_buffer;

static km_status buffer_push(point_buffer *b, km_vec3 p, int64_t t_ns)
{
    if (b->count == b->capacity) {
        size_t cap = b->capacity ? b->capacity * 2 : 256;
        km_vec3 *pos = realloc(b->pos, cap * sizeof *pos);
        if (!pos)
            return km_error(KM_ERR_NO_MEMORY, "gesture reader: out of memory");
        b->pos = pos;
        int64_t *t = realloc(b->t_ns, cap * sizeof *t);
        if (!t)
            return km_error(KM_ERR_NO_MEMORY, "gesture reader: out of memory");
        b->t_ns = t;
        b->capacity = cap;
    }
    b->pos[b->count] = p;
    b->t_ns[b->count] = t_ns;
    b->count++;
    return KM_OK;
}

static void buffer_free(point_buffer *b)
{
    free(b->pos);
    free(b->t_ns);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- numbers */

/* Whole token must be a finite decimal number. */
static bool parse_double(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (isspace((unsigned char)buf[0]))
        return false;
    for (size_t i = 0; i < len; i++) /* no hex floats, inf or nan words */
        if (!strchr("0123456789+-.eE", buf[i]))
            return false;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_int64(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (!(isdigit((unsigned char)buf[i]) || (i == 0 && buf[i] == '-' && len > 1)))
            return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (end != buf + len || errno == ERANGE)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Base name of `name` without directories and extension, for sample ids. */
static void base_name(const char *name, char *out, size_t out_size)
{
    const char *slash = strrchr(name, '/');
    const char *b = slash ? slash + 1 : name;
    size_t len = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b)
        len = (size_t)(dot - b);
    if (len >= out_size)
        len = out_size - 1;
    memcpy(out, b, len);
    out[len] = '\0';
}

/* ------------------------------------------------------------- traj.csv */

static const char *const traj_columns[6] = {"sample", "label", "t_ns", "x", "y", "z"};

km_status km_gesture_parse_traj_csv(km_gesture_set *set, const char *text, size_t length,
                                    const char *name)
{
    if (!set || (!text && length))
        return km_error(KM_ERR_INVALID_ARGUMENT, "traj.csv: NULL argument");
    name = name ? name : "(traj.csv)";
    size_t first_new = set->count;
    point_buffer buf = {0};
    char cur_id[KM_GESTURE_NAME_MAX] = "", cur_label[KM_GESTURE_NAME_MAX] = "";
    bool header = false;
    km_status st = KM_OK;
    int line = 0;
    size_t pos = 0;
    while (pos < length && !st) {
        line++;
        size_t end = pos;
        while (end < length && text[end] != '\n')
            end++;
        const char *row = text + pos;
        size_t row_len = end - pos;
        pos = end + 1;
        if (row_len && row[row_len - 1] == '\r')
            row_len--;
        if (row_len && row[0] == '#')
            continue;
        if (row_len == 0) {
            st = km_error(KM_ERR_PARSE, "%s:%d: empty line", name, line);
            break;
        }
        if (memchr(row, '\0', row_len)) {
            st = km_error(KM_ERR_PARSE, "%s:%d: NUL byte", name, line);
            break;
        }
        /* split into at most 6 leading fields; the rest are extra columns */
        const char *field[6];
        size_t field_len[6];
        size_t nf = 0, f0 = 0;
        for (size_t i = 0; i <= row_len && nf < 6; i++) {
            if (i == row_len || row[i] == ',') {
                field[nf] = row + f0;
                field_len[nf] = i - f0;
                nf++;
                f0 = i + 1;
            }
        }
        if (nf < 6) {
            st = km_error(KM_ERR_PARSE, "%s:%d: %zu columns, expected at least 6 "
                          "(sample,label,t_ns,x,y,z)", name, line, nf);
            break;
        }
        if (!header) {
            for (int c = 0; c < 6 && !st; c++)
                if (field_len[c] != strlen(traj_columns[c]) ||
                    memcmp(field[c], traj_columns[c], field_len[c]) != 0)
                    st = km_error(KM_ERR_PARSE, "%s:%d: header column %d must be '%s'", name,
                                  line, c + 1, traj_columns[c]);
            header = true;
            continue;
        }
        char id[KM_GESTURE_NAME_MAX], label[KM_GESTURE_NAME_MAX];
        if (field_len[0] == 0 || field_len[0] >= sizeof id || field_len[1] >= sizeof label) {
            st = km_error(KM_ERR_PARSE, "%s:%d: sample id or label empty or longer than %d",
                          name, line, KM_GESTURE_NAME_MAX - 1);
            break;
        }
        memcpy(id, field[0], field_len[0]);
        id[field_len[0]] = '\0';
        memcpy(label, field[1], field_len[1]);
        label[field_len[1]] = '\0';
        if (!km_gesture_label_valid(id) || !km_gesture_label_valid(label)) {
            st = km_error(KM_ERR_PARSE, "%s:%d: sample id and label must be [A-Za-z0-9_.-]",
                          name, line);
            break;
        }
        int64_t t_ns;
        double xyz[3];
        if (!parse_int64(field[2], field_len[2], &t_ns)) {
            st = km_error(KM_ERR_PARSE, "%s:%d: t_ns is not an integer", name, line);
            break;
        }
        for (int c = 0; c < 3 && !st; c++)
            if (!parse_double(field[3 + c], field_len[3 + c], &xyz[c]))
                st = km_error(KM_ERR_PARSE, "%s:%d: %s is not a finite number", name, line,
                              traj_columns[3 + c]);
        if (st)
            break;
        if (strcmp(id, cur_id) != 0) {
            if (buf.count) {
                st = km_gesture_set_add(set, cur_id, cur_label, -1, buf.pos, buf.t_ns, buf.count);
                if (st)
                    break;
                buf.count = 0;
            }
            for (size_t i = first_new; i < set->count; i++)
                if (strcmp(set->samples[i].id, id) == 0)
                    st = km_error(KM_ERR_PARSE, "%s:%d: rows of sample '%s' are not contiguous",
                                  name, line, id);
            if (st)
                break;
            memcpy(cur_id, id, sizeof id);
            memcpy(cur_label, label, sizeof label);
        } else if (strcmp(label, cur_label) != 0) {
            st = km_error(KM_ERR_PARSE, "%s:%d: sample '%s' changes label from '%s' to '%s'",
                          name, line, id, cur_label, label);
            break;
        } else if (t_ns < buf.t_ns[buf.count - 1]) {
            st = km_error(KM_ERR_PARSE, "%s:%d: t_ns goes back in time within sample '%s'",
                          name, line, id);
            break;
        }
        st = buffer_push(&buf, km_vec3_make(xyz[0], xyz[1], xyz[2]), t_ns);
    }
    if (!st && !header)
        st = km_error(KM_ERR_PARSE, "%s:%d: no header line", name, line);
    if (!st && buf.count)
        st = km_gesture_set_add(set, cur_id, cur_label, -1, buf.pos, buf.t_ns, buf.count);
    buffer_free(&buf);
    return st;
}

km_status km_gesture_load_traj_csv(km_gesture_set *set, const char *path)
{
    char *text;
    size_t length;
    km_status st = km_gesture_read_file(path, &text, &length);
    if (st)
        return st;
    st = km_gesture_parse_traj_csv(set, text, length, path);
    free(text);
    return st;
}

km_status km_gesture_write_traj_csv(const km_gesture_set *set, FILE *f)
{
    if (!set || !f)
        return km_error(KM_ERR_INVALID_ARGUMENT, "traj.csv: NULL argument");
    fprintf(f, "sample,label,t_ns,x,y,z\n");
    for (size_t s = 0; s < set->count; s++) {
        const km_gesture_sample *sample = &set->samples[s];
        for (size_t i = 0; i < sample->traj.count; i++) {
            km_vec3 p = sample->traj.pos[i];
            fprintf(f, "%s,%s,%" PRId64 ",%.9g,%.9g,%.9g\n", sample->id, sample->label,
                    sample->traj.t_ns[i], p.x, p.y, p.z);
        }
    }
    if (ferror(f))
        return km_error(KM_ERR_IO, "traj.csv: write failed: %s", strerror(errno));
    return KM_OK;
}

/* ------------------------------------------------------------- $1 XML logs */

typedef struct xml_cursor {
    const char *s;
    size_t n, pos;
    const char *name;
} xml_cursor;

static int line_at(const char *s, size_t pos)
{
    int line = 1;
    for (size_t i = 0; i < pos; i++)
        if (s[i] == '\n')
            line++;
    return line;
}

static km_status xml_fail(const xml_cursor *c, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: XML: %s", c->name, line_at(c->s, c->pos), why);
}

static bool xml_starts(const xml_cursor *c, const char *word)
{
    size_t len = strlen(word);
    return c->pos + len <= c->n && memcmp(c->s + c->pos, word, len) == 0;
}

static void xml_skip_ws(xml_cursor *c)
{
    while (c->pos < c->n && strchr(" \t\r\n", c->s[c->pos]) && c->s[c->pos])
        c->pos++;
}

/* Whitespace, comments and (at the top) the XML declaration. */
static km_status xml_skip_misc(xml_cursor *c, bool allow_declaration)
{
    for (;;) {
        xml_skip_ws(c);
        const char *close = NULL;
        if (xml_starts(c, "<!--"))
            close = "-->";
        else if (allow_declaration && xml_starts(c, "<?"))
            close = "?>";
        else
            return KM_OK;
        size_t len = strlen(close), i = c->pos + 2;
        while (i + len <= c->n && memcmp(c->s + i, close, len) != 0)
            i++;
        if (i + len > c->n)
            return xml_fail(c, "unterminated comment or declaration");
        c->pos = i + len;
    }
}

typedef struct xml_attr {
    const char *name, *value;
    size_t name_len, value_len;
} xml_attr;

#define XML_MAX_ATTRS 16

/* After the element name: attributes up to '>' or '/>'. *empty tells which. */
static km_status xml_attrs(xml_cursor *c, xml_attr *attrs, size_t *count, bool *empty)
{
    *count = 0;
    for (;;) {
        size_t before = c->pos;
        xml_skip_ws(c);
        if (xml_starts(c, "/>")) {
            c->pos += 2;
            *empty = true;
            return KM_OK;
        }
        if (xml_starts(c, ">")) {
            c->pos += 1;
            *empty = false;
            return KM_OK;
        }
        if (c->pos == before)
            return xml_fail(c, "whitespace expected before attribute");
        size_t start = c->pos;
        while (c->pos < c->n && (isalnum((unsigned char)c->s[c->pos]) || c->s[c->pos] == '_' ||
                                 c->s[c->pos] == ':' || c->s[c->pos] == '-'))
            c->pos++;
        if (c->pos == start)
            return xml_fail(c, "attribute name expected");
        xml_attr a = {c->s + start, NULL, c->pos - start, 0};
        xml_skip_ws(c);
        if (c->pos >= c->n || c->s[c->pos] != '=')
            return xml_fail(c, "'=' expected after attribute name");
        c->pos++;
        xml_skip_ws(c);
        if (c->pos >= c->n || (c->s[c->pos] != '"' && c->s[c->pos] != '\''))
            return xml_fail(c, "quoted attribute value expected");
        char quote = c->s[c->pos++];
        size_t vstart = c->pos;
        while (c->pos < c->n && c->s[c->pos] != quote) {
            if (c->s[c->pos] == '<' || c->s[c->pos] == '\0')
                return xml_fail(c, "'<' or NUL inside an attribute value");
            c->pos++;
        }
        if (c->pos >= c->n)
            return xml_fail(c, "unterminated attribute value");
        a.value = c->s + vstart;
        a.value_len = c->pos - vstart;
        c->pos++;
        for (size_t i = 0; i < *count; i++)
            if (attrs[i].name_len == a.name_len && memcmp(attrs[i].name, a.name, a.name_len) == 0)
                return xml_fail(c, "duplicate attribute");
        if (*count >= XML_MAX_ATTRS)
            return xml_fail(c, "too many attributes");
        attrs[(*count)++] = a;
    }
}

static const xml_attr *xml_find(const xml_attr *attrs, size_t count, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < count; i++)
        if (attrs[i].name_len == len && memcmp(attrs[i].name, name, len) == 0)
            return &attrs[i];
    return NULL;
}

static bool xml_tag(xml_cursor *c, const char *tag)
{
    size_t len = strlen(tag);
    if (!xml_starts(c, tag))
        return false;
    char next = c->pos + len < c->n ? c->s[c->pos + len] : '\0';
    return next == ' ' || next == '\t' || next == '\r' || next == '\n' || next == '>' ||
           next == '/';
}

km_status km_gesture_parse_dollar1_xml(km_gesture_set *set, const char *text, size_t length,
                                       const char *name)
{
    if (!set || (!text && length))
        return km_error(KM_ERR_INVALID_ARGUMENT, "$1 XML: NULL argument");
    xml_cursor c = {text, length, 0, name ? name : "(xml)"};
    if (length >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.pos = 3;
    km_status st = xml_skip_misc(&c, true);
    if (st)
        return st;
    if (!xml_tag(&c, "<Gesture"))
        return xml_fail(&c, "<Gesture> root element expected");
    c.pos += strlen("<Gesture");
    xml_attr attrs[XML_MAX_ATTRS];
    size_t nattr;
    bool empty;
    if ((st = xml_attrs(&c, attrs, &nattr, &empty)))
        return st;
    if (empty)
        return xml_fail(&c, "<Gesture/> has no points");
    const xml_attr *gname = xml_find(attrs, nattr, "Name");
    if (!gname || gname->value_len == 0 || gname->value_len >= KM_GESTURE_NAME_MAX)
        return xml_fail(&c, "<Gesture> needs a Name of 1..63 characters");
    char label[KM_GESTURE_NAME_MAX];
    memcpy(label, gname->value, gname->value_len);
    label[gname->value_len] = '\0';
    char full_name[KM_GESTURE_NAME_MAX];
    memcpy(full_name, label, sizeof label);
    size_t llen = gname->value_len;
    while (llen > 0 && isdigit((unsigned char)label[llen - 1]))
        label[--llen] = '\0'; /* "arrow01" -> "arrow" */
    if (!km_gesture_label_valid(label))
        return xml_fail(&c, "gesture Name is not [A-Za-z0-9_.-] followed by digits");
    int64_t subject = -1, num_pts = -1;
    const xml_attr *a = xml_find(attrs, nattr, "Subject");
    if (a && (!parse_int64(a->value, a->value_len, &subject) || subject < 0 || subject > INT_MAX))
        return xml_fail(&c, "Subject is not a non-negative integer");
    a = xml_find(attrs, nattr, "NumPts");
    if (a && (!parse_int64(a->value, a->value_len, &num_pts) || num_pts < 0))
        return xml_fail(&c, "NumPts is not a non-negative integer");

    point_buffer buf = {0};
    for (;;) {
        if ((st = xml_skip_misc(&c, false)))
            break;
        if (xml_starts(&c, "</Gesture")) {
            c.pos += strlen("</Gesture");
            xml_skip_ws(&c);
            if (c.pos >= c.n || c.s[c.pos] != '>') {
                st = xml_fail(&c, "'>' expected to close </Gesture");
                break;
            }
            c.pos++;
            break;
        }
        if (!xml_tag(&c, "<Point")) {
            st = xml_fail(&c, c.pos >= c.n ? "missing </Gesture>" : "<Point .../> expected");
            break;
        }
        c.pos += strlen("<Point");
        if ((st = xml_attrs(&c, attrs, &nattr, &empty)))
            break;
        if (!empty) {
            st = xml_fail(&c, "<Point> must be empty (<Point .../>)");
            break;
        }
        const xml_attr *ax = xml_find(attrs, nattr, "X"), *ay = xml_find(attrs, nattr, "Y");
        const xml_attr *at = xml_find(attrs, nattr, "T");
        double x, y;
        int64_t t_ms;
        if (!ax || !ay || !at || !parse_double(ax->value, ax->value_len, &x) ||
            !parse_double(ay->value, ay->value_len, &y) ||
            !parse_int64(at->value, at->value_len, &t_ms)) {
            st = xml_fail(&c, "<Point> needs numeric X, Y and integer T (ms)");
            break;
        }
        if (t_ms > INT64_MAX / 1000000 || t_ms < INT64_MIN / 1000000) {
            st = xml_fail(&c, "T out of range");
            break;
        }
        if (buf.count && t_ms * 1000000 < buf.t_ns[buf.count - 1]) {
            st = xml_fail(&c, "T goes back in time");
            break;
        }
        if ((st = buffer_push(&buf, km_vec3_make(x, y, 0.0), t_ms * 1000000)))
            break;
    }
    if (!st) {
        st = xml_skip_misc(&c, false);
        if (!st && c.pos != c.n)
            st = xml_fail(&c, "content after </Gesture>");
    }
    if (!st && buf.count == 0)
        st = xml_fail(&c, "no <Point> in the gesture");
    if (!st && num_pts >= 0 && (size_t)num_pts != buf.count) {
        st = km_error(KM_ERR_PARSE, "%s:1: XML: NumPts=%" PRId64 " but %zu points read", c.name,
                      num_pts, buf.count);
    }
    if (!st) {
        char id[KM_GESTURE_NAME_MAX];
        if (subject >= 0)
            snprintf(id, sizeof id, "s%02d_%.50s", (int)(subject % 100), full_name);
        else
            snprintf(id, sizeof id, "%s", full_name);
        for (char *p = id; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
                *p = '_';
        st = km_gesture_set_add(set, id, label, (int)subject, buf.pos, buf.t_ns, buf.count);
    }
    buffer_free(&buf);
    return st;
}

km_status km_gesture_load_dollar1_xml(km_gesture_set *set, const char *path)
{
    char *text;
    size_t length;
    km_status st = km_gesture_read_file(path, &text, &length);
    if (st)
        return st;
    st = km_gesture_parse_dollar1_xml(set, text, length, path);
    free(text);
    return st;
}

/* ----------------------------------------------------------- unified JSON */

static km_status json_fail(const char *name, const km_json_doc *doc, size_t node, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: %s", name, node < doc->count ? doc->nodes[node].line : 1,
                    why);
}

static km_status read_json_point(const char *name, const km_json_doc *doc, size_t point,
                                 double t_to_ns, point_buffer *buf)
{
    const km_json_node *pn = &doc->nodes[point];
    if (pn->type != KM_JSON_OBJECT)
        return json_fail(name, doc, point, "stroke point must be an object {x,y,z,t,...}");
    static const char *const keys[4] = {"x", "y", "z", "t"};
    double v[4];
    for (int k = 0; k < 4; k++) {
        size_t m = km_json_member(doc, point, keys[k]);
        if (k == 2 && (m == 0 || doc->nodes[m].type == KM_JSON_NULL)) {
            v[k] = 0.0; /* 2D data sets leave z out or null */
            continue;
        }
        if (m == 0 || doc->nodes[m].type != KM_JSON_NUMBER || !isfinite(doc->nodes[m].number)) {
            char why[64];
            snprintf(why, sizeof why, "stroke point needs a number '%s'", keys[k]);
            return json_fail(name, doc, point, why);
        }
        v[k] = doc->nodes[m].number;
    }
    size_t sid = km_json_member(doc, point, "stroke_id");
    if (sid && (doc->nodes[sid].type != KM_JSON_NUMBER ||
                doc->nodes[sid].number != floor(doc->nodes[sid].number)))
        return json_fail(name, doc, sid, "stroke_id must be an integer");
    double t = v[3] * t_to_ns;
    if (!(fabs(t) < 9.0e18))
        return json_fail(name, doc, point, "t out of range");
    int64_t t_ns = (int64_t)llround(t);
    if (buf->count && t_ns < buf->t_ns[buf->count - 1])
        return json_fail(name, doc, point, "t goes back in time");
    return buffer_push(buf, km_vec3_make(v[0], v[1], v[2]), t_ns);
}

km_status km_gesture_parse_unified_json(km_gesture_set *set, const char *text, size_t length,
                                        const char *name, const char *path_key, double t_to_ns)
{
    if (!set || (!text && length) || !(t_to_ns > 0.0) || !isfinite(t_to_ns))
        return km_error(KM_ERR_INVALID_ARGUMENT, "unified JSON: bad arguments");
    name = name ? name : "(json)";
    km_json_doc doc;
    km_status st = km_json_parse(&doc, text, length, name);
    if (st) {
        km_json_free(&doc);
        return st;
    }
    point_buffer buf = {0};
    char label[KM_GESTURE_NAME_MAX];
    int subject = -1;
    size_t strokes = 0;
    if (doc.nodes[0].type != KM_JSON_OBJECT) {
        st = json_fail(name, &doc, 0, "top level must be an object");
        goto done;
    }
    size_t m = km_json_member(&doc, 0, "name");
    if (!m || !km_json_string(&doc, m, label, sizeof label) || !km_gesture_label_valid(label)) {
        st = json_fail(name, &doc, m, "'name' must be a string of 1..63 [A-Za-z0-9_.-]");
        goto done;
    }
    m = km_json_member(&doc, 0, "subject");
    if (m && doc.nodes[m].type != KM_JSON_NULL) {
        double v = doc.nodes[m].number;
        if (doc.nodes[m].type != KM_JSON_NUMBER || v != floor(v) || v < 0 || v > INT_MAX) {
            st = json_fail(name, &doc, m, "'subject' must be a non-negative integer or null");
            goto done;
        }
        subject = (int)v;
    }
    if (path_key) {
        size_t paths = km_json_member(&doc, 0, "paths");
        if (!paths || doc.nodes[paths].type != KM_JSON_OBJECT) {
            st = json_fail(name, &doc, paths, "'paths' object expected");
            goto done;
        }
        size_t path = km_json_member(&doc, paths, path_key);
        if (!path || doc.nodes[path].type != KM_JSON_OBJECT) {
            char why[128];
            snprintf(why, sizeof why, "'paths' has no object '%.60s'", path_key);
            st = json_fail(name, &doc, path ? path : paths, why);
            goto done;
        }
        strokes = km_json_member(&doc, path, "strokes");
    } else {
        strokes = km_json_member(&doc, 0, "strokes");
    }
    if (!strokes || doc.nodes[strokes].type != KM_JSON_ARRAY ||
        doc.nodes[strokes].child_count == 0) {
        st = json_fail(name, &doc, strokes, "'strokes' must be a non-empty array of points");
        goto done;
    }
    for (size_t p = strokes + 1; p && !st; p = doc.nodes[p].next_sibling)
        st = read_json_point(name, &doc, p, t_to_ns, &buf);
    if (!st) {
        char id[KM_GESTURE_NAME_MAX], base[KM_GESTURE_NAME_MAX];
        base_name(name, base, sizeof base);
        if (subject >= 0)
            snprintf(id, sizeof id, "s%02d_%.50s", subject % 100, base);
        else
            snprintf(id, sizeof id, "%s", base);
        for (char *q = id; *q; q++)
            if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-')
                *q = '_';
        st = km_gesture_set_add(set, id, label, subject, buf.pos, buf.t_ns, buf.count);
    }
done:
    buffer_free(&buf);
    km_json_free(&doc);
    return st;
}

km_status km_gesture_load_unified_json(km_gesture_set *set, const char *path,
                                       const char *path_key, double t_to_ns)
{
    char *text;
    size_t length;
    km_status st = km_gesture_read_file(path, &text, &length);
    if (st)
        return st;
    st = km_gesture_parse_unified_json(set, text, length, path, path_key, t_to_ns);
    free(text);
    return st;
}
