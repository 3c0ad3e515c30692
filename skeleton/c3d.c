/* C3D reader and writer (include/kinema/skeleton.h "C3D files").
 *
 * Layout (c3d.org user guide): 512-byte blocks. Block 1 is the header (16-bit words; word 1
 * low byte = first parameter block, high byte 0x50). The parameter section starts with 4
 * bytes (reserved, reserved, block count, processor = 83 + type) then records:
 *   int8 name length (negative = locked), int8 group id (negative = a group, positive = a
 *   parameter of that group), name, int16 offset to the next record (counted from the
 *   offset word itself; 0 = last), then for a group: uint8 description length +
 *   description; for a parameter: int8 type, uint8 dimension count, uint8 dims, data, then
 *   the description.
 * The data section holds, per frame, for each point X Y Z and a 4th word whose high byte is
 * the camera mask and low byte the residual (/ |scale|); negative = invalid; then the
 * analog samples. Values are int16 x |scale| or floats (when POINT:SCALE < 0).
 *
 * Byte orders: Intel little-endian IEEE; DEC little-endian integers and VAX F floats
 * (the two 16-bit halves swapped and the exponent biased by 2 more than IEEE, i.e. the
 * IEEE reading of the re-ordered bytes is 4x too large); SGI/MIPS big-endian IEEE.
 *
 * Every size and count is checked against the buffer before use: a malformed file gives
 * KM_ERR_FORMAT naming the file and the byte offset. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kinema/skeleton.h"

#define MODULE "c3d"
#define BLOCK 512

typedef struct reader {
    const uint8_t *data;
    size_t size;
    const char *name;
    km_c3d_processor proc;
} reader;

static km_status fmt_error(const reader *r, size_t offset, const char *why)
{
    return km_error(KM_ERR_FORMAT, "%s: offset %zu: %s", r->name, offset, why);
}

/* ---------------------------------------------------------------- byte order */

static uint16_t rd_u16(const reader *r, size_t off)
{
    const uint8_t *b = r->data + off;
    if (r->proc == KM_C3D_PROCESSOR_SGI)
        return (uint16_t)((b[0] << 8) | b[1]);
    return (uint16_t)(b[0] | (b[1] << 8));
}

static int16_t rd_i16(const reader *r, size_t off)
{
    return (int16_t)rd_u16(r, off);
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float rd_float(const reader *r, size_t off)
{
    const uint8_t *b = r->data + off;
    uint32_t u;
    switch (r->proc) {
    case KM_C3D_PROCESSOR_SGI:
        u = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        return bits_to_float(u);
    case KM_C3D_PROCESSOR_DEC: {
        /* VAX F: first 16-bit word holds sign, exponent and high fraction. */
        u = ((uint32_t)b[1] << 24) | ((uint32_t)b[0] << 16) | ((uint32_t)b[3] << 8) | b[2];
        if ((u & 0x7f800000u) == 0)
            return 0.0f; /* exponent 0: zero (or a reserved operand) */
        /* Divide by 4 by lowering the exponent; exponents 1 and 2 would underflow into
         * IEEE denormals, which the arithmetic below handles. */
        return bits_to_float(u) * 0.25f;
    }
    case KM_C3D_PROCESSOR_INTEL:
    default:
        u = b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
        return bits_to_float(u);
    }
}

/* ---------------------------------------------------------------- helpers */

void km_c3d_free(km_c3d *c3d)
{
    if (!c3d)
        return;
    if (c3d->parameters) {
        for (int i = 0; i < c3d->parameter_count; i++)
            free(c3d->parameters[i].data);
    }
    free(c3d->parameters);
    free(c3d->labels);
    free(c3d->pos);
    free(c3d->residual);
    free(c3d->camera_mask);
    memset(c3d, 0, sizeof *c3d);
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0' || s[n - 1] == '\t' ||
                     s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
}

static double units_factor(const char *units)
{
    char u[16];
    size_t n = 0;
    for (const char *p = units; *p && n + 1 < sizeof u; p++)
        if (!isspace((unsigned char)*p))
            u[n++] = (char)tolower((unsigned char)*p);
    u[n] = '\0';
    if (!strcmp(u, "mm") || n == 0)
        return 0.001;
    if (!strcmp(u, "m"))
        return 1.0;
    if (!strcmp(u, "cm"))
        return 0.01;
    if (!strcmp(u, "dm"))
        return 0.1;
    if (!strcmp(u, "in") || !strcmp(u, "inch") || !strcmp(u, "inches"))
        return 0.0254;
    return 0.0; /* unknown */
}

km_status km_c3d_alloc(km_c3d *c3d, int point_count, int frame_count)
{
    if (!c3d || point_count < 0 || frame_count < 0 || point_count > 65535 ||
        frame_count > 100000000)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d alloc: bad sizes %d points x %d frames",
                        point_count, frame_count);
    memset(c3d, 0, sizeof *c3d);
    size_t n = (size_t)point_count * (size_t)frame_count;
    c3d->labels = calloc(point_count > 0 ? (size_t)point_count : 1, sizeof *c3d->labels);
    c3d->pos = calloc(n > 0 ? n * 3 : 1, sizeof *c3d->pos);
    c3d->residual = malloc((n > 0 ? n : 1) * sizeof *c3d->residual);
    c3d->camera_mask = calloc(n > 0 ? n : 1, 1);
    if (!c3d->labels || !c3d->pos || !c3d->residual || !c3d->camera_mask) {
        km_c3d_free(c3d);
        return km_error(KM_ERR_NO_MEMORY, "c3d: out of memory for %d points x %d frames",
                        point_count, frame_count);
    }
    for (size_t i = 0; i < n; i++)
        c3d->residual[i] = -1.0f;
    c3d->processor = KM_C3D_PROCESSOR_INTEL;
    c3d->point_count = point_count;
    c3d->frame_count = frame_count;
    c3d->first_frame = 1;
    c3d->rate_hz = 100.0;
    c3d->scale = -1.0;
    c3d->data_start_block = 0;
    snprintf(c3d->units, sizeof c3d->units, "m");
    c3d->units_to_m = 1.0;
    return KM_OK;
}

const km_c3d_parameter *km_c3d_find_parameter(const km_c3d *c3d, const char *group,
                                              const char *name)
{
    if (!c3d || !group || !name)
        return NULL;
    for (int i = 0; i < c3d->parameter_count; i++) {
        const km_c3d_parameter *p = &c3d->parameters[i];
        if (!strcasecmp(p->group, group) && !strcasecmp(p->name, name))
            return p;
    }
    return NULL;
}

double km_c3d_parameter_number(const km_c3d_parameter *p, int index)
{
    if (!p || index < 0 || index >= p->element_count)
        return 0.0;
    switch (p->type) {
    case KM_C3D_TYPE_BYTE:
        return ((const int8_t *)p->data)[index];
    case KM_C3D_TYPE_INT16:
        return ((const int16_t *)p->data)[index];
    case KM_C3D_TYPE_FLOAT:
        return ((const float *)p->data)[index];
    case KM_C3D_TYPE_CHAR:
    default:
        return 0.0;
    }
}

bool km_c3d_parameter_string(const km_c3d_parameter *p, int index, char *out, size_t out_size)
{
    if (!p || p->type != KM_C3D_TYPE_CHAR || !out || out_size == 0 || index < 0)
        return false;
    int len = p->dim_count == 0 ? p->element_count : p->dims[0];
    int count = len > 0 ? p->element_count / len : 0;
    if (p->dim_count <= 1)
        count = 1;
    if (index >= count || len <= 0) {
        if (index == 0 && len == 0) {
            out[0] = '\0';
            return true;
        }
        return false;
    }
    size_t n = (size_t)len < out_size - 1 ? (size_t)len : out_size - 1;
    memcpy(out, (const char *)p->data + (size_t)index * (size_t)len, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    rstrip(out);
    return true;
}

int km_c3d_find_label(const km_c3d *c3d, const char *label)
{
    if (!c3d || !label)
        return -1;
    for (int i = 0; i < c3d->point_count; i++)
        if (!strcmp(c3d->labels[i], label))
            return i;
    return -1;
}

/* ------------------------------------------------------------- parameters */

typedef struct group_name {
    int id;
    char name[KM_C3D_NAME_MAX];
} group_name;

#define MAX_GROUPS 128

static km_status parse_parameters(const reader *r, size_t start, size_t section_end,
                                  km_c3d *out)
{
    /* First pass counts records so that the parameter array is allocated once. */
    group_name groups[MAX_GROUPS];
    int group_count = 0;
    int capacity = 64;
    out->parameters = calloc((size_t)capacity, sizeof *out->parameters);
    if (!out->parameters)
        return km_error(KM_ERR_NO_MEMORY, "%s: out of memory", r->name);

    size_t off = start + 4;
    int records = 0;
    while (off + 2 <= section_end) {
        int8_t name_len_raw = (int8_t)r->data[off];
        int8_t gid = (int8_t)r->data[off + 1];
        if (name_len_raw == 0 || gid == 0)
            break; /* end of the section (some writers leave a zero record) */
        if (++records > 100000)
            return fmt_error(r, off, "too many parameter records");
        int name_len = name_len_raw < 0 ? -name_len_raw : name_len_raw;
        size_t p = off + 2;
        if (p + (size_t)name_len + 2 > section_end)
            return fmt_error(r, off, "parameter record runs past the end of the file");
        char name[KM_C3D_NAME_MAX]; /* a length byte of -128 means 128 characters */
        memcpy(name, r->data + p, (size_t)name_len);
        name[name_len] = '\0';
        rstrip(name);
        p += (size_t)name_len;
        size_t next_word = p;
        uint16_t next_raw = rd_u16(r, p);
        p += 2;
        size_t next = next_raw == 0 ? 0 : next_word + next_raw;
        /* An offset that leaves the parameter section is wrong (sample02/sgi_*.c3d store one
         * in the other byte order): then the record's own length decides where the next
         * one starts. */
        bool bad_next = next > section_end;
        /* The record must end before the next one starts (when there is one). */
        size_t limit = next && !bad_next ? next : section_end;
        size_t record_end = p;

        if (gid < 0) {
            int id = -gid;
            int k;
            for (k = 0; k < group_count; k++)
                if (groups[k].id == id)
                    break;
            if (k == group_count) {
                if (group_count == MAX_GROUPS)
                    return fmt_error(r, off, "more than 128 parameter groups");
                group_count++;
            }
            groups[k].id = id;
            snprintf(groups[k].name, sizeof groups[k].name, "%s", name);
            record_end = p < limit ? p + 1 + r->data[p] : p;
        } else {
            if (p + 2 > limit)
                return fmt_error(r, p, "parameter header runs past its record");
            int8_t type = (int8_t)r->data[p];
            int dim_count = r->data[p + 1];
            p += 2;
            if (type != -1 && type != 1 && type != 2 && type != 4) {
                char why[320];
                snprintf(why, sizeof why, "parameter %s: bad data type %d", name, type);
                return fmt_error(r, p - 2, why);
            }
            if (dim_count > KM_C3D_MAX_DIMS) {
                char why[320];
                snprintf(why, sizeof why, "parameter %s: %d dimensions (max %d)", name,
                         dim_count, KM_C3D_MAX_DIMS);
                return fmt_error(r, p - 1, why);
            }
            if (p + (size_t)dim_count > limit)
                return fmt_error(r, p, "parameter dimensions run past their record");
            km_c3d_parameter par;
            memset(&par, 0, sizeof par);
            par.type = (km_c3d_type)type;
            par.dim_count = dim_count;
            size_t elements = 1;
            for (int d = 0; d < dim_count; d++) {
                par.dims[d] = r->data[p + (size_t)d];
                elements *= (size_t)par.dims[d];
            }
            p += (size_t)dim_count;
            size_t elem_size = type < 0 ? 1 : (size_t)type;
            size_t bytes = elements * elem_size;
            if (p + bytes > limit && !bad_next && p + bytes <= section_end) {
                /* A next-record offset too small for the record's own data (sample13's
                 * PhoeniX files): the data decide, as for an offset that leaves the
                 * section. */
                bad_next = true;
                limit = section_end;
            }
            if (p + bytes > limit) {
                char why[320];
                snprintf(why, sizeof why, "parameter %s: %zu bytes of data run past the end "
                         "of the parameter section", name, bytes);
                return fmt_error(r, p, why);
            }
            par.element_count = (int)elements;
            par.data = malloc(bytes > 0 ? bytes : 1);
            if (!par.data)
                return km_error(KM_ERR_NO_MEMORY, "%s: out of memory", r->name);
            for (size_t e = 0; e < elements; e++) {
                size_t at = p + e * elem_size;
                switch (type) {
                case -1:
                case 1:
                    ((uint8_t *)par.data)[e] = r->data[at];
                    break;
                case 2:
                    ((int16_t *)par.data)[e] = rd_i16(r, at);
                    break;
                case 4:
                    ((float *)par.data)[e] = rd_float(r, at);
                    break;
                }
            }
            /* Remember the group id until the names are resolved (groups may follow). */
            snprintf(par.group, sizeof par.group, "#%d", gid);
            snprintf(par.name, sizeof par.name, "%s", name);
            if (out->parameter_count == capacity) {
                capacity *= 2;
                km_c3d_parameter *grown =
                    realloc(out->parameters, (size_t)capacity * sizeof *grown);
                if (!grown) {
                    free(par.data);
                    return km_error(KM_ERR_NO_MEMORY, "%s: out of memory", r->name);
                }
                out->parameters = grown;
            }
            out->parameters[out->parameter_count++] = par;
            p += bytes;
            record_end = p < limit ? p + 1 + r->data[p] : p;
        }
        if (bad_next) {
            km_log(KM_LOG_DEBUG, MODULE, "%s: offset %zu: next-record offset %u leaves the "
                   "parameter section; using the record's length", r->name, next_word,
                   (unsigned)next_raw);
            next = record_end;
            if (next >= section_end)
                break;
        }
        if (next == 0)
            break;
        if (next <= off)
            return fmt_error(r, next_word, "parameter record points backwards");
        off = next;
    }

    for (int i = 0; i < out->parameter_count; i++) {
        km_c3d_parameter *par = &out->parameters[i];
        int gid = atoi(par->group + 1);
        const char *gname = NULL;
        for (int k = 0; k < group_count; k++)
            if (groups[k].id == gid)
                gname = groups[k].name;
        if (gname)
            snprintf(par->group, sizeof par->group, "%s", gname);
        /* else keep "#id": a parameter of an undeclared group stays reachable */
    }
    return KM_OK;
}

/* A numeric parameter as a double, with a fallback when absent or empty. */
static double param_number(const km_c3d *c, const char *g, const char *n, double fallback,
                           bool *found)
{
    const km_c3d_parameter *p = km_c3d_find_parameter(c, g, n);
    if (!p || p->type == KM_C3D_TYPE_CHAR || p->element_count < 1) {
        if (found)
            *found = false;
        return fallback;
    }
    if (found)
        *found = true;
    return km_c3d_parameter_number(p, 0);
}

/* Integer parameters that may exceed 32767 are stored as signed int16 by old writers:
 * read them as unsigned. */
static long param_count(const km_c3d *c, const char *g, const char *n, long fallback)
{
    const km_c3d_parameter *p = km_c3d_find_parameter(c, g, n);
    if (!p || p->type == KM_C3D_TYPE_CHAR || p->element_count < 1)
        return fallback;
    if (p->type == KM_C3D_TYPE_INT16)
        return (uint16_t)((const int16_t *)p->data)[0];
    double v = km_c3d_parameter_number(p, 0);
    if (!isfinite(v) || v < 0 || v > 1e9)
        return fallback;
    return (long)v;
}

/* Labels from POINT:LABELS, then LABELS2, LABELS3, ... (files with more than 255 points). */
static void read_labels(km_c3d *c)
{
    int filled = 0;
    for (int k = 1; k < 100 && filled < c->point_count; k++) {
        char pname[24];
        if (k == 1)
            snprintf(pname, sizeof pname, "LABELS");
        else
            snprintf(pname, sizeof pname, "LABELS%d", k);
        const km_c3d_parameter *p = km_c3d_find_parameter(c, "POINT", pname);
        if (!p || p->type != KM_C3D_TYPE_CHAR)
            break;
        int count = p->dim_count >= 2 ? p->element_count / (p->dims[0] > 0 ? p->dims[0] : 1) : 1;
        for (int i = 0; i < count && filled < c->point_count; i++) {
            char tmp[KM_C3D_LABEL_MAX];
            if (!km_c3d_parameter_string(p, i, tmp, sizeof tmp))
                break;
            /* Some writers prefix labels with the subject name ("Subject:LASI"). */
            snprintf(c->labels[filled++], KM_C3D_LABEL_MAX, "%s", tmp);
        }
    }
}

/* ------------------------------------------------------------------ parse */

km_status km_c3d_parse(const uint8_t *data, size_t size, const char *name, km_c3d *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<memory>";
    if (!data)
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: no data", name);
    reader r = {data, size, name, KM_C3D_PROCESSOR_INTEL};
    if (size < BLOCK)
        return fmt_error(&r, 0, "shorter than the 512-byte header block: not a C3D file");
    if (data[1] != 0x50)
        return fmt_error(&r, 1, "header key is not 0x50: not a C3D file");
    int param_block = data[0];
    if (param_block < 2)
        return fmt_error(&r, 0, "parameter section must start at block 2 or later");
    size_t pstart = (size_t)(param_block - 1) * BLOCK;
    if (pstart + 4 > size)
        return fmt_error(&r, 0, "parameter section starts past the end of the file");
    int proc = data[pstart + 3];
    if (proc != KM_C3D_PROCESSOR_INTEL && proc != KM_C3D_PROCESSOR_DEC &&
        proc != KM_C3D_PROCESSOR_SGI) {
        char why[96];
        snprintf(why, sizeof why, "unknown processor type %d (expected 84 Intel, 85 DEC, 86 SGI)",
                 proc);
        return fmt_error(&r, pstart + 3, why);
    }
    r.proc = (km_c3d_processor)proc;
    out->processor = r.proc;

    /* Header words (1-based word n at byte 2(n-1)). */
    int hdr_points = rd_u16(&r, 2);
    int hdr_analog = rd_u16(&r, 4);
    int hdr_first = rd_u16(&r, 6);
    int hdr_last = rd_u16(&r, 8);
    float hdr_scale = rd_float(&r, 12);
    int hdr_data_start = rd_u16(&r, 16);
    float hdr_rate = rd_float(&r, 20);

    /* The parameter section ends before the data (or after its declared block count).
     * The data start of the header is trusted over the block count (sample13's files
     * declare 3 parameter blocks and use more). */
    size_t section_end = size;
    int param_blocks = data[pstart + 2];
    if (hdr_data_start > param_block) {
        if ((size_t)(hdr_data_start - 1) * BLOCK < section_end)
            section_end = (size_t)(hdr_data_start - 1) * BLOCK;
    } else if (param_blocks > 0 && pstart + (size_t)param_blocks * BLOCK < section_end) {
        section_end = pstart + (size_t)param_blocks * BLOCK;
    }
    km_status st = parse_parameters(&r, pstart, section_end, out);
    if (st != KM_OK) {
        km_c3d_free(out);
        return st;
    }

    long points = param_count(out, "POINT", "USED", hdr_points);
    bool have_scale;
    double scale = param_number(out, "POINT", "SCALE", hdr_scale, &have_scale);
    if (!isfinite(scale) || scale == 0.0)
        scale = isfinite(hdr_scale) && hdr_scale != 0.0f ? hdr_scale : -1.0;
    /* The header's sign decides the storage when the parameter disagrees (the data follow
     * what the writer actually did, and the header is what readers traditionally trust). */
    bool float_storage = hdr_scale < 0.0f;
    if (!(hdr_scale != 0.0f && isfinite(hdr_scale)))
        float_storage = scale < 0.0;
    double rate = param_number(out, "POINT", "RATE", hdr_rate, NULL);
    if (!isfinite(rate) || rate <= 0.0)
        rate = isfinite(hdr_rate) && hdr_rate > 0.0f ? hdr_rate : 0.0;
    long data_start = param_count(out, "POINT", "DATA_START", hdr_data_start);
    if (data_start < 2 && hdr_data_start >= 2)
        data_start = hdr_data_start;
    long frames = (long)hdr_last - (long)hdr_first + 1;
    if (hdr_last < hdr_first)
        frames = 0;
    /* Files of more than 65535 frames keep the true count in TRIAL:ACTUAL_END_FIELD (two
     * int16 words, low first) or POINT:FRAMES (float when large). */
    const km_c3d_parameter *end_field = km_c3d_find_parameter(out, "TRIAL", "ACTUAL_END_FIELD");
    const km_c3d_parameter *start_field =
        km_c3d_find_parameter(out, "TRIAL", "ACTUAL_START_FIELD");
    if (hdr_last == 65535 && end_field && start_field && end_field->type == KM_C3D_TYPE_INT16 &&
        end_field->element_count >= 2 && start_field->type == KM_C3D_TYPE_INT16 &&
        start_field->element_count >= 2) {
        long e = (uint16_t)((int16_t *)end_field->data)[0] +
                 65536L * (uint16_t)((int16_t *)end_field->data)[1];
        long s = (uint16_t)((int16_t *)start_field->data)[0] +
                 65536L * (uint16_t)((int16_t *)start_field->data)[1];
        if (e >= s)
            frames = e - s + 1;
    }

    if (points < 0 || points > 65535) {
        km_c3d_free(out);
        return fmt_error(&r, 2, "point count out of range");
    }
    if (data_start < 2) {
        km_c3d_free(out);
        return fmt_error(&r, 16, "data section must start at block 2 or later");
    }
    if ((size_t)(data_start - 1) * BLOCK < pstart + 4) {
        km_c3d_free(out);
        return fmt_error(&r, 16, "data section starts inside the parameter section");
    }
    int analog = hdr_analog;
    size_t word = float_storage ? 4 : 2;
    size_t frame_bytes = ((size_t)points * 4 + (size_t)analog) * word;
    size_t dstart = (size_t)(data_start - 1) * BLOCK;
    if (frames > 0 && frame_bytes == 0) {
        /* Nothing stored per frame: no points, no analog. Keep the count. */
    } else if (frames > 0) {
        size_t avail = dstart <= size ? size - dstart : 0;
        size_t needed = frame_bytes * (size_t)frames;
        if (avail < needed) {
            char why[256];
            snprintf(why, sizeof why,
                     "data section truncated: %ld frames x %zu bytes (%ld points, %d analog "
                     "values, %s) need %zu bytes from block %ld, the file has %zu",
                     frames, frame_bytes, points, analog, float_storage ? "float" : "int16",
                     needed, data_start, avail);
            km_c3d_free(out);
            return fmt_error(&r, dstart, why);
        }
    }

    /* Keep the parameters across the (re)allocation of the data arrays. */
    km_c3d_parameter *params = out->parameters;
    int param_count_v = out->parameter_count;
    out->parameters = NULL;
    out->parameter_count = 0;
    st = km_c3d_alloc(out, (int)points, (int)frames);
    out->parameters = params;
    out->parameter_count = param_count_v;
    if (st != KM_OK) {
        km_c3d_free(out);
        return st;
    }
    out->processor = r.proc;
    out->first_frame = hdr_first;
    out->rate_hz = rate;
    out->scale = float_storage ? -fabs(scale) : fabs(scale);
    out->analog_per_frame = analog;
    out->analog_rate_hz = param_number(out, "ANALOG", "RATE", 0.0, NULL);
    out->data_start_block = (int)data_start;
    const km_c3d_parameter *units = km_c3d_find_parameter(out, "POINT", "UNITS");
    if (!units || !km_c3d_parameter_string(units, 0, out->units, sizeof out->units) ||
        out->units[0] == '\0')
        snprintf(out->units, sizeof out->units, "mm");
    out->units_to_m = units_factor(out->units);
    if (out->units_to_m == 0.0) {
        km_log(KM_LOG_WARN, MODULE, "%s: unknown POINT:UNITS '%s', assuming mm", name,
               out->units);
        out->units_to_m = 0.001;
    }
    read_labels(out);

    const double abs_scale = fabs(scale);
    for (long f = 0; f < frames; f++) {
        size_t base = dstart + (size_t)f * frame_bytes;
        for (long p = 0; p < points; p++) {
            size_t at = base + (size_t)p * 4 * word;
            size_t idx = (size_t)f * (size_t)points + (size_t)p;
            double x, y, z;
            int fourth;
            if (float_storage) {
                x = rd_float(&r, at);
                y = rd_float(&r, at + 4);
                z = rd_float(&r, at + 8);
                float w = rd_float(&r, at + 12);
                /* The 4th float holds the integer value of the residual/camera word. */
                if (!isfinite(w))
                    fourth = -1;
                else if (w < -32768.0f || w > 65535.0f)
                    fourth = w < 0 ? -1 : 0;
                else
                    fourth = (int)w;
                if (fourth > 32767)
                    fourth -= 65536; /* written as unsigned: the sign bit is the flag */
            } else {
                x = rd_i16(&r, at) * abs_scale;
                y = rd_i16(&r, at + 2) * abs_scale;
                z = rd_i16(&r, at + 4) * abs_scale;
                fourth = rd_i16(&r, at + 6);
            }
            out->pos[idx * 3 + 0] = x;
            out->pos[idx * 3 + 1] = y;
            out->pos[idx * 3 + 2] = z;
            if (fourth < 0 || !isfinite(x) || !isfinite(y) || !isfinite(z)) {
                out->residual[idx] = -1.0f;
                out->camera_mask[idx] = 0;
            } else {
                out->residual[idx] = (float)((fourth & 0xff) * abs_scale);
                out->camera_mask[idx] = (uint8_t)((fourth >> 8) & 0x7f);
            }
        }
    }
    return KM_OK;
}

km_status km_c3d_read(const char *path, km_c3d *out)
{
    if (!out || !path)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d read: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return km_error(KM_ERR_IO, "%s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return km_error(KM_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return km_error(KM_ERR_IO, "%s: cannot size: %s", path, strerror(errno));
    }
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf) {
        fclose(f);
        return km_error(KM_ERR_NO_MEMORY, "%s: out of memory (%ld bytes)", path, len);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != (size_t)len || rerr) {
        free(buf);
        return km_error(KM_ERR_IO, "%s: read failed", path);
    }
    km_status st = km_c3d_parse(buf, (size_t)len, path, out);
    free(buf);
    return st;
}

/* ---------------------------------------------------------------- markers */

km_mat3 km_c3d_z_up_to_y_up(void)
{
    km_mat3 m = {{1, 0, 0, 0, 0, 1, 0, -1, 0}};
    return m;
}

km_status km_c3d_frame_markers(const km_c3d *c3d, int frame, const km_mat3 *to_world,
                               km_marker_set *out)
{
    if (!c3d || !out || frame < 0 || frame >= c3d->frame_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d frame %d out of range [0, %d)", frame,
                        c3d ? c3d->frame_count : 0);
    out->count = 0;
    out->frame = (uint64_t)frame;
    out->time_ns = c3d->rate_hz > 0 ? (uint64_t)llround(frame * 1e9 / c3d->rate_hz) : 0;
    km_status st = KM_OK;
    for (int p = 0; p < c3d->point_count; p++) {
        size_t idx = (size_t)frame * (size_t)c3d->point_count + (size_t)p;
        const double *x = &c3d->pos[idx * 3];
        if (c3d->residual[idx] < 0.0f || (x[0] == 0.0 && x[1] == 0.0 && x[2] == 0.0))
            continue;
        if (out->count >= out->capacity) {
            st = km_error(KM_ERR_CAPACITY, "c3d frame %d: more than %d markers", frame,
                          out->capacity);
            break;
        }
        km_vec3 v = km_vec3_scale(km_vec3_make(x[0], x[1], x[2]), c3d->units_to_m);
        if (to_world)
            v = km_mat3_apply(*to_world, v);
        km_marker *m = &out->items[out->count++];
        m->id = (uint32_t)p;
        m->pos_m = v;
        m->residual_px = c3d->residual[idx] * c3d->units_to_m;
        m->views = __builtin_popcount(c3d->camera_mask[idx]);
    }
    return st;
}

/* ------------------------------------------------------------------ write */

typedef struct writer {
    uint8_t *buf;
    size_t size;
} writer;

static void wr_u16(writer *w, size_t off, uint16_t v)
{
    w->buf[off] = (uint8_t)(v & 0xff);
    w->buf[off + 1] = (uint8_t)(v >> 8);
}

static void wr_float(writer *w, size_t off, float f)
{
    uint32_t u = float_to_bits(f);
    for (int i = 0; i < 4; i++)
        w->buf[off + (size_t)i] = (uint8_t)(u >> (8 * i));
}

/* Parameter records are built in a growing byte buffer. */
typedef struct pbuf {
    uint8_t *b;
    size_t len, cap;
    bool failed;
} pbuf;

static void pb_put(pbuf *p, const void *src, size_t n)
{
    if (p->failed)
        return;
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        while (cap < p->len + n)
            cap *= 2;
        uint8_t *nb = realloc(p->b, cap);
        if (!nb) {
            p->failed = true;
            return;
        }
        p->b = nb;
        p->cap = cap;
    }
    memcpy(p->b + p->len, src, n);
    p->len += n;
}

static void pb_u8(pbuf *p, uint8_t v)
{
    pb_put(p, &v, 1);
}

static void pb_u16(pbuf *p, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v & 0xff), (uint8_t)(v >> 8)};
    pb_put(p, b, 2);
}

static void pb_group(pbuf *p, int id, const char *name, const char *desc)
{
    size_t n = strlen(name), d = strlen(desc);
    pb_u8(p, (uint8_t)n);
    pb_u8(p, (uint8_t)(int8_t)-id);
    pb_put(p, name, n);
    pb_u16(p, (uint16_t)(2 + 1 + d));
    pb_u8(p, (uint8_t)d);
    pb_put(p, desc, d);
}

/* One parameter; `data` is in host order, element_count values of |type| bytes. Returns the
 * offset of its data in the buffer (to patch DATA_START later). */
static size_t pb_param(pbuf *p, int gid, const char *name, int type, int dim_count,
                       const int *dims, const void *data)
{
    size_t n = strlen(name);
    size_t elements = 1;
    for (int i = 0; i < dim_count; i++)
        elements *= (size_t)dims[i];
    size_t es = type < 0 ? 1 : (size_t)type;
    pb_u8(p, (uint8_t)n);
    pb_u8(p, (uint8_t)gid);
    pb_put(p, name, n);
    pb_u16(p, (uint16_t)(2 + 2 + (size_t)dim_count + elements * es + 1));
    pb_u8(p, (uint8_t)(int8_t)type);
    pb_u8(p, (uint8_t)dim_count);
    for (int i = 0; i < dim_count; i++)
        pb_u8(p, (uint8_t)dims[i]);
    size_t at = p->len;
    for (size_t e = 0; e < elements; e++) {
        if (type == 2) {
            pb_u16(p, (uint16_t)((const int16_t *)data)[e]);
        } else if (type == 4) {
            uint32_t u = float_to_bits(((const float *)data)[e]);
            uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16),
                            (uint8_t)(u >> 24)};
            pb_put(p, b, 4);
        } else {
            pb_put(p, (const uint8_t *)data + e, 1);
        }
    }
    pb_u8(p, 0); /* no description */
    return at;
}

km_status km_c3d_write_memory(const km_c3d *c3d, uint8_t **data, size_t *size)
{
    if (!c3d || !data || !size)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d write: NULL argument");
    *data = NULL;
    *size = 0;
    if (c3d->point_count < 0 || c3d->point_count > 32767 || c3d->frame_count < 0 ||
        c3d->frame_count > 65534 || (c3d->point_count > 0 && (!c3d->pos || !c3d->residual)))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "c3d write: %d points x %d frames not writable (max 32767 x 65534)",
                        c3d->point_count, c3d->frame_count);
    if (c3d->point_count > 255 * 99)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d write: too many labels");
    const bool float_storage = !(c3d->scale > 0.0);
    const double scale = float_storage ? -1.0 : c3d->scale;
    const int points = c3d->point_count, frames = c3d->frame_count;

    pbuf p = {0};
    uint8_t hdr4[4] = {0x01, 0x50, 0, KM_C3D_PROCESSOR_INTEL}; /* block count patched */
    pb_put(&p, hdr4, 4);
    pb_group(&p, 1, "POINT", "3-D point parameters");
    int16_t used = (int16_t)points;
    pb_param(&p, 1, "USED", 2, 0, NULL, &used);
    int16_t nframes = (int16_t)(uint16_t)frames;
    pb_param(&p, 1, "FRAMES", 2, 0, NULL, &nframes);
    float fscale = (float)scale;
    pb_param(&p, 1, "SCALE", 4, 0, NULL, &fscale);
    float frate = (float)c3d->rate_hz;
    pb_param(&p, 1, "RATE", 4, 0, NULL, &frate);
    int16_t ds = 0;
    size_t ds_at = pb_param(&p, 1, "DATA_START", 2, 0, NULL, &ds);
    const char *units = c3d->units[0] ? c3d->units : "m";
    int udims[1] = {(int)strlen(units)};
    pb_param(&p, 1, "UNITS", -1, 1, udims, units);
    /* Labels: up to 255 per parameter (LABELS, LABELS2, ...). */
    int label_len = 4;
    for (int i = 0; i < points; i++) {
        int n = (int)strlen(c3d->labels[i]);
        if (n > label_len)
            label_len = n;
    }
    if (label_len > 255)
        label_len = 255;
    for (int chunk = 0; chunk * 255 < points || (chunk == 0 && points == 0); chunk++) {
        int n = points - chunk * 255;
        if (n > 255)
            n = 255;
        char *lab = calloc((size_t)(n > 0 ? n : 1) * (size_t)label_len, 1);
        char *des = calloc((size_t)(n > 0 ? n : 1) * (size_t)label_len, 1);
        if (!lab || !des) {
            free(lab);
            free(des);
            free(p.b);
            return km_error(KM_ERR_NO_MEMORY, "c3d write: out of memory");
        }
        memset(lab, ' ', (size_t)(n > 0 ? n : 1) * (size_t)label_len);
        memset(des, ' ', (size_t)(n > 0 ? n : 1) * (size_t)label_len);
        for (int i = 0; i < n; i++) {
            const char *l = c3d->labels[chunk * 255 + i];
            char def[16];
            if (!l[0]) {
                snprintf(def, sizeof def, "M%03d", chunk * 255 + i + 1);
                l = def;
            }
            size_t ln = strlen(l);
            memcpy(lab + (size_t)i * (size_t)label_len, l,
                   ln < (size_t)label_len ? ln : (size_t)label_len);
        }
        int dims[2] = {label_len, n};
        char pname[32], dname[32];
        if (chunk == 0) {
            snprintf(pname, sizeof pname, "LABELS");
            snprintf(dname, sizeof dname, "DESCRIPTIONS");
        } else {
            snprintf(pname, sizeof pname, "LABELS%d", chunk + 1);
            snprintf(dname, sizeof dname, "DESCRIPTIONS%d", chunk + 1);
        }
        pb_param(&p, 1, pname, -1, 2, dims, lab);
        pb_param(&p, 1, dname, -1, 2, dims, des);
        free(lab);
        free(des);
        if (points == 0)
            break;
    }
    pb_group(&p, 2, "ANALOG", "analog data parameters");
    int16_t zero = 0;
    pb_param(&p, 2, "USED", 2, 0, NULL, &zero);
    float arate = (float)c3d->rate_hz;
    pb_param(&p, 2, "RATE", 4, 0, NULL, &arate);
    pb_group(&p, 3, "TRIAL", "trial parameters");
    int16_t start_field[2] = {(int16_t)(uint16_t)(c3d->first_frame > 0 ? c3d->first_frame : 1), 0};
    int16_t end_field[2] = {
        (int16_t)(uint16_t)((c3d->first_frame > 0 ? c3d->first_frame : 1) + frames - 1), 0};
    int d2[1] = {2};
    pb_param(&p, 3, "ACTUAL_START_FIELD", 2, 1, d2, start_field);
    /* The last record's offset word is 0 (end of the section). */
    size_t last_record = p.len;
    pb_param(&p, 3, "ACTUAL_END_FIELD", 2, 1, d2, end_field);
    if (p.failed) {
        free(p.b);
        return km_error(KM_ERR_NO_MEMORY, "c3d write: out of memory");
    }
    size_t name_len = strlen("ACTUAL_END_FIELD");
    p.b[last_record + 2 + name_len] = 0;
    p.b[last_record + 2 + name_len + 1] = 0;

    const size_t param_blocks = (p.len + BLOCK - 1) / BLOCK;
    const int data_start = (int)(2 + param_blocks);
    if (param_blocks > 255 || data_start > 32767) {
        free(p.b);
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d write: parameter section too large");
    }
    p.b[2] = (uint8_t)param_blocks;
    p.b[ds_at] = (uint8_t)(data_start & 0xff);
    p.b[ds_at + 1] = (uint8_t)(data_start >> 8);

    const size_t word = float_storage ? 4 : 2;
    const size_t frame_bytes = (size_t)points * 4 * word;
    size_t total = (size_t)(data_start - 1) * BLOCK + frame_bytes * (size_t)frames;
    total = (total + BLOCK - 1) / BLOCK * BLOCK;
    writer w = {calloc(total, 1), total};
    if (!w.buf) {
        free(p.b);
        return km_error(KM_ERR_NO_MEMORY, "c3d write: out of memory (%zu bytes)", total);
    }
    memcpy(w.buf + BLOCK, p.b, p.len);
    free(p.b);

    w.buf[0] = 2;
    w.buf[1] = 0x50;
    wr_u16(&w, 2, (uint16_t)points);
    wr_u16(&w, 4, 0);
    int first = c3d->first_frame > 0 ? c3d->first_frame : 1;
    wr_u16(&w, 6, (uint16_t)first);
    wr_u16(&w, 8, (uint16_t)(first + frames - 1));
    wr_u16(&w, 10, 10);
    wr_float(&w, 12, (float)scale);
    wr_u16(&w, 16, (uint16_t)data_start);
    wr_u16(&w, 18, 0);
    wr_float(&w, 20, (float)c3d->rate_hz);

    const double abs_scale = fabs(scale);
    for (int f = 0; f < frames; f++) {
        size_t base = (size_t)(data_start - 1) * BLOCK + (size_t)f * frame_bytes;
        for (int q = 0; q < points; q++) {
            size_t idx = (size_t)f * (size_t)points + (size_t)q;
            size_t at = base + (size_t)q * 4 * word;
            const double *x = &c3d->pos[idx * 3];
            float res = c3d->residual[idx];
            int fourth;
            if (res < 0.0f || !isfinite(res)) {
                fourth = -1;
            } else {
                long rq = lround(res / abs_scale);
                if (rq > 255)
                    rq = 255;
                int mask = c3d->camera_mask ? c3d->camera_mask[idx] & 0x7f : 0;
                fourth = (int)rq | (mask << 8);
            }
            if (float_storage) {
                for (int k = 0; k < 3; k++)
                    wr_float(&w, at + 4 * (size_t)k, fourth < 0 ? 0.0f : (float)x[k]);
                wr_float(&w, at + 12, (float)fourth);
            } else {
                for (int k = 0; k < 3; k++) {
                    double v = fourth < 0 ? 0.0 : x[k] / abs_scale;
                    if (!(v >= -32768.0 && v <= 32767.0)) {
                        free(w.buf);
                        return km_error(KM_ERR_INVALID_ARGUMENT,
                                        "c3d write: frame %d point %d: %g out of the int16 "
                                        "range of scale %g",
                                        f, q, x[k], abs_scale);
                    }
                    wr_u16(&w, at + 2 * (size_t)k, (uint16_t)(int16_t)lround(v));
                }
                wr_u16(&w, at + 6, (uint16_t)(int16_t)fourth);
            }
        }
    }
    *data = w.buf;
    *size = w.size;
    return KM_OK;
}

km_status km_c3d_write(const char *path, const km_c3d *c3d)
{
    if (!path)
        return km_error(KM_ERR_INVALID_ARGUMENT, "c3d write: NULL path");
    uint8_t *buf;
    size_t size;
    km_status st = km_c3d_write_memory(c3d, &buf, &size);
    if (st != KM_OK)
        return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return km_error(KM_ERR_IO, "%s: %s", path, strerror(errno));
    }
    size_t put = fwrite(buf, 1, size, f);
    free(buf);
    if (put != size || fclose(f) != 0)
        return km_error(KM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return KM_OK;
}
