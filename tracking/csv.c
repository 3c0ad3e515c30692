/* obs.csv and markers.csv (formats.md): streaming readers that hand out one frame at a
 * time, and the writers.
 *
 * The readers are strict, because these files are the contract between stages: the header
 * must be exactly the documented columns (extra columns after them are allowed and
 * ignored), every field must be a plain number, a frame's rows must be contiguous and frame
 * numbers must not decrease. Comment lines start with '#'; blank lines carry nothing and are
 * ignored. Every error names file:line. Reading never allocates after open. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"

#define MODULE "csv"

/* Longest accepted line, with room for extra columns. */
#define CSV_LINE_MAX 4096
#define CSV_MAX_FIELDS 64

static const char OBS_HEADER[] = "frame,time_ns,camera,x,y,area";
static const char MARKERS_HEADER[] = "frame,time_ns,id,x,y,z,residual_px,views";

typedef enum csv_kind { CSV_OBS, CSV_MARKERS } csv_kind;

/* One parsed data row of either file. */
typedef struct csv_row {
    uint64_t frame;
    uint64_t time_ns;
    union {
        km_observation obs;
        km_marker marker;
    } item;
} csv_row;

/* The reader behind both public reader types. */
typedef struct csv_reader {
    csv_kind kind;
    FILE *file;            /* NULL when reading from memory */
    const char *mem;
    size_t mem_length, mem_pos;
    char name[256];
    long line;             /* number of the line in buf (1-based) */
    char buf[CSV_LINE_MAX + 2];
    bool have_pending;     /* a row of the next frame was already read */
    csv_row pending;
    km_status failed;      /* sticky: after an error every call repeats it */
    char failed_message[700]; /* name + line + reason always fit */
} csv_reader;

struct km_obs_reader {
    csv_reader r;
};
struct km_markers_reader {
    csv_reader r;
};

/* ------------------------------------------------------------- line input */

static km_status fail(csv_reader *r, km_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static km_status fail(csv_reader *r, km_status st, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(r->failed_message, sizeof r->failed_message, "%s:%ld: %s", r->name, r->line, why);
    r->failed = st;
    return km_error(st, "%s", r->failed_message);
}

static int next_char(csv_reader *r)
{
    if (r->file)
        return getc(r->file);
    if (r->mem_pos >= r->mem_length)
        return EOF;
    return (unsigned char)r->mem[r->mem_pos++];
}

/* Read the next line into buf (without the line end). KM_OK, KM_ERR_END_OF_STREAM or
 * KM_ERR_PARSE / KM_ERR_IO. */
static km_status read_line(csv_reader *r)
{
    size_t n = 0;
    int c = next_char(r);
    if (c == EOF) {
        if (r->file && ferror(r->file))
            return fail(r, KM_ERR_IO, "read error: %s", strerror(errno));
        return KM_ERR_END_OF_STREAM;
    }
    r->line++;
    while (c != EOF && c != '\n') {
        if (c == '\0')
            return fail(r, KM_ERR_PARSE, "NUL byte in text");
        if (n >= CSV_LINE_MAX)
            return fail(r, KM_ERR_PARSE, "line longer than %d bytes", CSV_LINE_MAX);
        r->buf[n++] = (char)c;
        c = next_char(r);
    }
    if (c == EOF && r->file && ferror(r->file))
        return fail(r, KM_ERR_IO, "read error: %s", strerror(errno));
    if (n > 0 && r->buf[n - 1] == '\r')
        n--;
    r->buf[n] = '\0';
    return KM_OK;
}

/* Next line that is neither a comment nor blank. */
static km_status read_content_line(csv_reader *r)
{
    for (;;) {
        km_status st = read_line(r);
        if (st != KM_OK)
            return st;
        if (r->buf[0] == '#' || r->buf[0] == '\0')
            continue;
        return KM_OK;
    }
}

/* ---------------------------------------------------------------- fields */

static int split_fields(char *line, char **fields, int capacity)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == capacity)
            return n + 1; /* too many: caller only needs the first ones */
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            return n;
        *comma = '\0';
        p = comma + 1;
    }
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A decimal number as printf writes it: digits, sign, point, exponent; nothing else
 * (strtod alone would also take "inf", "nan", hex and leading spaces). */
static bool parse_double(const char *s, double *out)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
              *p == 'E'))
            return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static km_status parse_row(csv_reader *r, csv_row *row)
{
    char *f[CSV_MAX_FIELDS];
    const int want = r->kind == CSV_OBS ? 6 : 8;
    const int n = split_fields(r->buf, f, CSV_MAX_FIELDS);
    if (n < want)
        return fail(r, KM_ERR_PARSE, "expected %d fields, got %d", want, n);
    if (!parse_u64(f[0], &row->frame))
        return fail(r, KM_ERR_PARSE, "frame: expected an unsigned integer, got \"%.32s\"", f[0]);
    if (!parse_u64(f[1], &row->time_ns))
        return fail(r, KM_ERR_PARSE, "time_ns: expected an unsigned integer, got \"%.32s\"",
                    f[1]);
    if (r->kind == CSV_OBS) {
        km_observation *o = &row->item.obs;
        uint64_t camera;
        if (!parse_u64(f[2], &camera) || camera >= KM_MAX_CAMERAS)
            return fail(r, KM_ERR_PARSE, "camera: expected an integer in 0..%d, got \"%.32s\"",
                        KM_MAX_CAMERAS - 1, f[2]);
        o->camera = (int)camera;
        if (!parse_double(f[3], &o->x))
            return fail(r, KM_ERR_PARSE, "x: expected a number, got \"%.32s\"", f[3]);
        if (!parse_double(f[4], &o->y))
            return fail(r, KM_ERR_PARSE, "y: expected a number, got \"%.32s\"", f[4]);
        if (!parse_double(f[5], &o->area_px) || o->area_px < 0.0)
            return fail(r, KM_ERR_PARSE, "area: expected a number >= 0, got \"%.32s\"", f[5]);
    } else {
        km_marker *m = &row->item.marker;
        uint64_t id, views;
        if (!parse_u64(f[2], &id) || id > UINT32_MAX)
            return fail(r, KM_ERR_PARSE, "id: expected a 32-bit unsigned integer, got \"%.32s\"",
                        f[2]);
        m->id = (uint32_t)id;
        if (!parse_double(f[3], &m->pos_m.x))
            return fail(r, KM_ERR_PARSE, "x: expected a number, got \"%.32s\"", f[3]);
        if (!parse_double(f[4], &m->pos_m.y))
            return fail(r, KM_ERR_PARSE, "y: expected a number, got \"%.32s\"", f[4]);
        if (!parse_double(f[5], &m->pos_m.z))
            return fail(r, KM_ERR_PARSE, "z: expected a number, got \"%.32s\"", f[5]);
        if (!parse_double(f[6], &m->residual_px) || m->residual_px < 0.0)
            return fail(r, KM_ERR_PARSE, "residual_px: expected a number >= 0, got \"%.32s\"",
                        f[6]);
        if (!parse_u64(f[7], &views) || views > KM_MAX_CAMERAS)
            return fail(r, KM_ERR_PARSE, "views: expected an integer in 0..%d, got \"%.32s\"",
                        KM_MAX_CAMERAS, f[7]);
        m->views = (int)views;
    }
    return KM_OK;
}

/* ------------------------------------------------------------- open/next */

static km_status reader_init(csv_reader *r, csv_kind kind, const char *name)
{
    r->kind = kind;
    snprintf(r->name, sizeof r->name, "%s", name ? name : "(memory)");
    const char *header = kind == CSV_OBS ? OBS_HEADER : MARKERS_HEADER;
    km_status st = read_content_line(r);
    if (st == KM_ERR_END_OF_STREAM) {
        if (r->line == 0)
            r->line = 1;
        return fail(r, KM_ERR_PARSE, "empty file: expected the header \"%s\"", header);
    }
    if (st != KM_OK)
        return st;
    const size_t len = strlen(header);
    if (strncmp(r->buf, header, len) != 0 || (r->buf[len] != '\0' && r->buf[len] != ','))
        return fail(r, KM_ERR_PARSE, "bad header: expected \"%s\" (extra columns may follow)",
                    header);
    return KM_OK;
}

static void reader_close(csv_reader *r)
{
    if (r->file)
        fclose(r->file);
}

static csv_reader *reader_open(csv_kind kind, size_t size, const char *path, const char *text,
                               size_t length, const char *name, km_status *err)
{
    km_status dummy;
    if (!err)
        err = &dummy;
    if ((!path && !text) || (path && !*path)) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "csv: no file name or text");
        return NULL;
    }
    csv_reader *r = calloc(1, size);
    if (!r) {
        *err = km_error(KM_ERR_NO_MEMORY, "csv: out of memory");
        return NULL;
    }
    if (path) {
        r->file = fopen(path, "rb");
        if (!r->file) {
            *err = km_error(KM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            free(r);
            return NULL;
        }
        name = path;
    } else {
        r->mem = text;
        r->mem_length = length;
    }
    *err = reader_init(r, kind, name);
    if (*err != KM_OK) {
        reader_close(r);
        free(r);
        return NULL;
    }
    return r;
}

static km_status store_row(csv_reader *r, const csv_row *row, void *out_set)
{
    if (r->kind == CSV_OBS) {
        km_observation_set *set = out_set;
        if (set->count >= set->capacity)
            return fail(r, KM_ERR_CAPACITY, "frame %" PRIu64 " has more than %d observations",
                        row->frame, set->capacity);
        set->items[set->count++] = row->item.obs;
    } else {
        km_marker_set *set = out_set;
        if (set->count >= set->capacity)
            return fail(r, KM_ERR_CAPACITY, "frame %" PRIu64 " has more than %d markers",
                        row->frame, set->capacity);
        set->items[set->count++] = row->item.marker;
    }
    return KM_OK;
}

/* Read one frame's rows into out_set (its count already 0). Rows of the next frame stop the
 * frame and are kept for the next call, so a decreasing or repeated frame number is caught
 * at the row where it appears. */
static km_status reader_next(csv_reader *r, void *out_set, uint64_t *frame_out,
                             uint64_t *time_out)
{
    if (r->failed != KM_OK)
        return km_error(r->failed, "%s", r->failed_message);
    csv_row row;
    if (!r->have_pending) {
        km_status st = read_content_line(r);
        if (st != KM_OK)
            return st;
        st = parse_row(r, &row);
        if (st != KM_OK)
            return st;
    } else {
        row = r->pending;
        r->have_pending = false;
    }
    const uint64_t frame = row.frame, time_ns = row.time_ns;
    *frame_out = frame;
    *time_out = time_ns;
    km_status st = store_row(r, &row, out_set);
    if (st != KM_OK)
        return st;
    for (;;) {
        st = read_content_line(r);
        if (st == KM_ERR_END_OF_STREAM)
            break;
        if (st != KM_OK)
            return st;
        st = parse_row(r, &row);
        if (st != KM_OK)
            return st;
        if (row.frame != frame) {
            if (row.frame < frame)
                return fail(r, KM_ERR_PARSE,
                            "frame %" PRIu64 " goes back after frame %" PRIu64
                            " (frames must not decrease)",
                            row.frame, frame);
            r->pending = row;
            r->have_pending = true;
            break;
        }
        if (row.time_ns != time_ns)
            return fail(r, KM_ERR_PARSE,
                        "time_ns %" PRIu64 " differs from %" PRIu64 " earlier in frame %" PRIu64,
                        row.time_ns, time_ns, frame);
        st = store_row(r, &row, out_set);
        if (st != KM_OK)
            return st;
    }
    return KM_OK;
}

/* ---------------------------------------------------------------- public */

km_obs_reader *km_obs_reader_open(const char *path, km_status *err)
{
    return (km_obs_reader *)reader_open(CSV_OBS, sizeof(km_obs_reader), path, NULL, 0, NULL,
                                        err);
}

km_obs_reader *km_obs_reader_open_memory(const char *text, size_t length, const char *name,
                                         km_status *err)
{
    return (km_obs_reader *)reader_open(CSV_OBS, sizeof(km_obs_reader), NULL, text, length,
                                        name, err);
}

void km_obs_reader_close(km_obs_reader *reader)
{
    if (!reader)
        return;
    reader_close(&reader->r);
    free(reader);
}

km_status km_obs_reader_next(km_obs_reader *reader, km_observation_set *out)
{
    if (!reader || !out || out->capacity < 1 || !out->items)
        return km_error(KM_ERR_INVALID_ARGUMENT, "obs reader: NULL reader or empty set");
    out->count = 0;
    km_status st = reader_next(&reader->r, out, &out->frame, &out->time_ns);
    if (st == KM_ERR_END_OF_STREAM)
        out->count = 0;
    return st;
}

km_markers_reader *km_markers_reader_open(const char *path, km_status *err)
{
    return (km_markers_reader *)reader_open(CSV_MARKERS, sizeof(km_markers_reader), path, NULL,
                                            0, NULL, err);
}

km_markers_reader *km_markers_reader_open_memory(const char *text, size_t length,
                                                 const char *name, km_status *err)
{
    return (km_markers_reader *)reader_open(CSV_MARKERS, sizeof(km_markers_reader), NULL, text,
                                            length, name, err);
}

void km_markers_reader_close(km_markers_reader *reader)
{
    if (!reader)
        return;
    reader_close(&reader->r);
    free(reader);
}

km_status km_markers_reader_next(km_markers_reader *reader, km_marker_set *out)
{
    if (!reader || !out || out->capacity < 1 || !out->items)
        return km_error(KM_ERR_INVALID_ARGUMENT, "markers reader: NULL reader or empty set");
    out->count = 0;
    km_status st = reader_next(&reader->r, out, &out->frame, &out->time_ns);
    if (st == KM_ERR_END_OF_STREAM)
        out->count = 0;
    return st;
}

void km_obs_csv_write_header(FILE *f)
{
    fprintf(f, "%s\n", OBS_HEADER);
}

void km_obs_csv_write(FILE *f, const km_observation_set *obs)
{
    for (int k = 0; k < obs->count; k++) {
        const km_observation *o = &obs->items[k];
        fprintf(f, "%" PRIu64 ",%" PRIu64 ",%d,%.4f,%.4f,%.2f\n", obs->frame, obs->time_ns,
                o->camera, o->x, o->y, o->area_px);
    }
}

void km_markers_csv_write_header(FILE *f)
{
    fprintf(f, "%s\n", MARKERS_HEADER);
}

void km_markers_csv_write(FILE *f, const km_marker_set *markers)
{
    for (int k = 0; k < markers->count; k++) {
        const km_marker *m = &markers->items[k];
        fprintf(f, "%" PRIu64 ",%" PRIu64 ",%" PRIu32 ",%.6f,%.6f,%.6f,%.4f,%d\n", markers->frame,
                markers->time_ns, m->id, m->pos_m.x, m->pos_m.y, m->pos_m.z, m->residual_px,
                m->views);
    }
}
