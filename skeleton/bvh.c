/* BVH (Biovision Hierarchy) reader, writer and forward kinematics.
 *
 * The reader is strict: every keyword, brace and count is checked, and the first problem is
 * reported as "file:line: what". It works on a NUL-terminated copy of the text (so strtod
 * cannot run past the end of a caller's buffer), builds the joint list in file order
 * (pre-order: parents first), then reads the MOTION rows line by line. Sizes are checked
 * before anything is allocated from them: the number of values cannot exceed what the text
 * could hold, so a forged "Frames: 999999999" fails without a large allocation. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/skeleton.h"

#define MODULE "bvh"

struct km_bvh {
    int joint_count;
    km_bvh_joint *joints;
    int channel_count;
    int frame_count;
    double frame_time_s;
    double *values; /* frame_count x channel_count */
};

static const char *const channel_names[6] = {"Xposition", "Yposition", "Zposition",
                                             "Xrotation", "Yrotation", "Zrotation"};

/* ------------------------------------------------------------------ lexer */

typedef struct lexer {
    const char *p;     /* NUL-terminated */
    int line;
    const char *name;  /* file name for messages */
} lexer;

static void skip_space(lexer *lx)
{
    while (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r' || *lx->p == '\n' ||
           *lx->p == '\f' || *lx->p == '\v') {
        if (*lx->p == '\n')
            lx->line++;
        lx->p++;
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Next whitespace-separated token into buf; false at the end of the text. A token longer
 * than the buffer is cut (it then matches no keyword and is reported as unexpected). */
static bool next_token(lexer *lx, char *buf, size_t cap)
{
    skip_space(lx);
    if (*lx->p == '\0')
        return false;
    size_t n = 0;
    while (*lx->p && !is_space(*lx->p)) {
        if (n + 1 < cap)
            buf[n++] = *lx->p;
        lx->p++;
    }
    buf[n] = '\0';
    return true;
}

static km_status expect(lexer *lx, const char *keyword)
{
    char tok[64];
    if (!next_token(lx, tok, sizeof tok))
        return km_error(KM_ERR_PARSE, "%s:%d: expected '%s', found the end of the file",
                        lx->name, lx->line, keyword);
    if (strcmp(tok, keyword) != 0)
        return km_error(KM_ERR_PARSE, "%s:%d: expected '%s', found '%s'", lx->name, lx->line,
                        keyword, tok);
    return KM_OK;
}

/* Parse a finite number from a token. */
static bool parse_number(const char *tok, double *out)
{
    if (!*tok)
        return false;
    errno = 0;
    char *end = NULL;
    const double v = strtod(tok, &end);
    if (end == tok || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static km_status read_number(lexer *lx, const char *what, double *out)
{
    char tok[64];
    if (!next_token(lx, tok, sizeof tok))
        return km_error(KM_ERR_PARSE, "%s:%d: expected %s, found the end of the file",
                        lx->name, lx->line, what);
    if (!parse_number(tok, out))
        return km_error(KM_ERR_PARSE, "%s:%d: %s: '%s' is not a finite number", lx->name,
                        lx->line, what, tok);
    return KM_OK;
}

/* The rest of the current line, trimmed: a joint name (names may hold spaces). */
static km_status read_name(lexer *lx, char *out, const char *what)
{
    while (*lx->p == ' ' || *lx->p == '\t')
        lx->p++;
    const char *start = lx->p;
    while (*lx->p && *lx->p != '\n')
        lx->p++;
    const char *end = lx->p;
    while (end > start && is_space(end[-1]))
        end--;
    const size_t n = (size_t)(end - start);
    if (n == 0)
        return km_error(KM_ERR_PARSE, "%s:%d: %s without a name", lx->name, lx->line, what);
    if (n >= KM_BVH_NAME_MAX)
        return km_error(KM_ERR_PARSE, "%s:%d: %s name longer than %d characters", lx->name,
                        lx->line, what, KM_BVH_NAME_MAX - 1);
    for (size_t k = 0; k < n; k++)
        if (start[k] == '{' || start[k] == '}' || (unsigned char)start[k] < 0x20)
            return km_error(KM_ERR_PARSE, "%s:%d: %s name '%.*s' has a brace or a control "
                            "character", lx->name, lx->line, what, (int)n, start);
    memcpy(out, start, n);
    out[n] = '\0';
    return KM_OK;
}

/* ---------------------------------------------------------------- hierarchy */

static km_status add_joint(km_bvh *bvh, int *capacity, int parent, const char *name,
                           bool end_site, const lexer *lx, int *index)
{
    if (bvh->joint_count >= KM_BVH_MAX_JOINTS)
        return km_error(KM_ERR_PARSE, "%s:%d: more than %d joints", lx->name, lx->line,
                        KM_BVH_MAX_JOINTS);
    if (bvh->joint_count == *capacity) {
        int cap = *capacity ? 2 * *capacity : 32;
        if (cap > KM_BVH_MAX_JOINTS)
            cap = KM_BVH_MAX_JOINTS;
        km_bvh_joint *grown = realloc(bvh->joints, (size_t)cap * sizeof *grown);
        if (!grown)
            return km_error(KM_ERR_NO_MEMORY, "%s: out of memory", lx->name);
        bvh->joints = grown;
        *capacity = cap;
    }
    km_bvh_joint *j = &bvh->joints[bvh->joint_count];
    memset(j, 0, sizeof *j);
    if (end_site) {
        const char *pname = bvh->joints[parent].name;
        snprintf(j->name, sizeof j->name, "%.*s_End", KM_BVH_NAME_MAX - 5, pname);
    } else {
        snprintf(j->name, sizeof j->name, "%s", name);
    }
    j->parent = parent;
    j->end_site = end_site;
    j->first_channel = bvh->channel_count;
    *index = bvh->joint_count++;
    return KM_OK;
}

static km_status read_offset(lexer *lx, km_bvh_joint *j)
{
    km_status st = expect(lx, "OFFSET");
    if (st != KM_OK)
        return st;
    double v[3];
    for (int a = 0; a < 3; a++)
        if ((st = read_number(lx, "OFFSET value", &v[a])) != KM_OK)
            return st;
    j->offset = km_vec3_make(v[0], v[1], v[2]);
    return KM_OK;
}

static km_status read_channels(lexer *lx, km_bvh *bvh, km_bvh_joint *j)
{
    km_status st = expect(lx, "CHANNELS");
    if (st != KM_OK)
        return st;
    double n;
    if ((st = read_number(lx, "channel count", &n)) != KM_OK)
        return st;
    if (n != floor(n) || n < 0 || n > 6)
        return km_error(KM_ERR_PARSE, "%s:%d: CHANNELS %g: the count must be 0..6", lx->name,
                        lx->line, n);
    j->channel_count = (int)n;
    unsigned seen = 0;
    for (int c = 0; c < j->channel_count; c++) {
        char tok[64];
        if (!next_token(lx, tok, sizeof tok))
            return km_error(KM_ERR_PARSE, "%s:%d: CHANNELS: expected %d channel names, found "
                            "the end of the file", lx->name, lx->line, j->channel_count);
        int kind = -1;
        for (int k = 0; k < 6; k++)
            if (strcmp(tok, channel_names[k]) == 0)
                kind = k;
        if (kind < 0)
            return km_error(KM_ERR_PARSE, "%s:%d: unknown channel '%s' (expected Xposition, "
                            "Yposition, Zposition, Xrotation, Yrotation or Zrotation)",
                            lx->name, lx->line, tok);
        if (seen & (1u << kind))
            return km_error(KM_ERR_PARSE, "%s:%d: channel %s given twice for joint '%s'",
                            lx->name, lx->line, tok, j->name);
        seen |= 1u << kind;
        j->channels[c] = (km_bvh_channel)kind;
    }
    j->first_channel = bvh->channel_count;
    bvh->channel_count += j->channel_count;
    return KM_OK;
}

static km_status parse_hierarchy(lexer *lx, km_bvh *bvh)
{
    km_status st = expect(lx, "HIERARCHY");
    if (st != KM_OK)
        return st;
    if ((st = expect(lx, "ROOT")) != KM_OK)
        return st;
    int capacity = 0, index = 0;
    char name[KM_BVH_NAME_MAX];
    if ((st = read_name(lx, name, "ROOT")) != KM_OK)
        return st;
    if ((st = add_joint(bvh, &capacity, -1, name, false, lx, &index)) != KM_OK)
        return st;
    if ((st = expect(lx, "{")) != KM_OK)
        return st;
    if ((st = read_offset(lx, &bvh->joints[index])) != KM_OK)
        return st;
    if ((st = read_channels(lx, bvh, &bvh->joints[index])) != KM_OK)
        return st;
    /* Open blocks, innermost last. */
    int stack[KM_BVH_MAX_JOINTS];
    int depth = 0;
    stack[depth++] = index;
    while (depth > 0) {
        char tok[64];
        if (!next_token(lx, tok, sizeof tok))
            return km_error(KM_ERR_PARSE, "%s:%d: the file ends inside joint '%s' (missing '}')",
                            lx->name, lx->line, bvh->joints[stack[depth - 1]].name);
        const int parent = stack[depth - 1];
        if (strcmp(tok, "}") == 0) {
            depth--;
        } else if (strcmp(tok, "JOINT") == 0) {
            if ((st = read_name(lx, name, "JOINT")) != KM_OK)
                return st;
            if ((st = add_joint(bvh, &capacity, parent, name, false, lx, &index)) != KM_OK)
                return st;
            if ((st = expect(lx, "{")) != KM_OK)
                return st;
            if ((st = read_offset(lx, &bvh->joints[index])) != KM_OK)
                return st;
            if ((st = read_channels(lx, bvh, &bvh->joints[index])) != KM_OK)
                return st;
            stack[depth++] = index; /* depth <= joint count <= KM_BVH_MAX_JOINTS */
        } else if (strcmp(tok, "End") == 0) {
            if ((st = expect(lx, "Site")) != KM_OK)
                return st;
            if ((st = add_joint(bvh, &capacity, parent, NULL, true, lx, &index)) != KM_OK)
                return st;
            if ((st = expect(lx, "{")) != KM_OK)
                return st;
            if ((st = read_offset(lx, &bvh->joints[index])) != KM_OK)
                return st;
            if ((st = expect(lx, "}")) != KM_OK)
                return st;
        } else if (strcmp(tok, "ROOT") == 0) {
            return km_error(KM_ERR_PARSE, "%s:%d: ROOT inside joint '%s'", lx->name, lx->line,
                            bvh->joints[parent].name);
        } else {
            return km_error(KM_ERR_PARSE, "%s:%d: expected JOINT, End Site or '}' in joint "
                            "'%s', found '%s'", lx->name, lx->line, bvh->joints[parent].name,
                            tok);
        }
    }
    return KM_OK;
}

/* ------------------------------------------------------------------- motion */

static km_status parse_motion(lexer *lx, km_bvh *bvh, size_t text_length)
{
    char tok[64];
    if (!next_token(lx, tok, sizeof tok))
        return km_error(KM_ERR_PARSE, "%s:%d: expected 'MOTION', found the end of the file",
                        lx->name, lx->line);
    if (strcmp(tok, "ROOT") == 0)
        return km_error(KM_ERR_PARSE, "%s:%d: a second ROOT (one skeleton per file)", lx->name,
                        lx->line);
    if (strcmp(tok, "MOTION") != 0)
        return km_error(KM_ERR_PARSE, "%s:%d: expected 'MOTION', found '%s'", lx->name,
                        lx->line, tok);
    km_status st;
    if ((st = expect(lx, "Frames:")) != KM_OK)
        return st;
    double frames;
    if ((st = read_number(lx, "frame count", &frames)) != KM_OK)
        return st;
    if (frames != floor(frames) || frames < 0 || frames > 1e9)
        return km_error(KM_ERR_PARSE, "%s:%d: Frames: %g is not a frame count", lx->name,
                        lx->line, frames);
    if ((st = expect(lx, "Frame")) != KM_OK)
        return st;
    if ((st = expect(lx, "Time:")) != KM_OK)
        return st;
    double frame_time;
    if ((st = read_number(lx, "frame time", &frame_time)) != KM_OK)
        return st;
    if (!(frame_time > 0.0))
        return km_error(KM_ERR_PARSE, "%s:%d: Frame Time %g: must be positive", lx->name,
                        lx->line, frame_time);
    bvh->frame_count = (int)frames;
    bvh->frame_time_s = frame_time;
    const long cols = bvh->channel_count;
    const double total = frames * (double)cols;
    /* Each value takes at least two characters ("0 "). */
    if (total > KM_BVH_MAX_VALUES || total > (double)text_length / 2.0 + 1.0)
        return km_error(KM_ERR_PARSE, "%s:%d: Frames: %d x %ld channels is more data than the "
                        "file holds", lx->name, lx->line, bvh->frame_count, cols);
    bvh->values = calloc(total > 0 ? (size_t)total : 1, sizeof *bvh->values);
    if (!bvh->values)
        return km_error(KM_ERR_NO_MEMORY, "%s: out of memory for %d frames", lx->name,
                        bvh->frame_count);
    /* The rows: one frame per line, blank lines skipped. */
    while (*lx->p && *lx->p != '\n')
        lx->p++; /* the rest of the Frame Time line must be empty */
    for (int f = 0; f < bvh->frame_count; f++) {
        /* next non-blank line */
        for (;;) {
            if (*lx->p == '\n') {
                lx->p++;
                lx->line++;
            }
            const char *q = lx->p;
            while (*q == ' ' || *q == '\t' || *q == '\r')
                q++;
            if (*q == '\n') {
                lx->p = q;
                continue;
            }
            lx->p = q;
            break;
        }
        if (*lx->p == '\0')
            return km_error(KM_ERR_PARSE, "%s:%d: %d frame rows, Frames: says %d", lx->name,
                            lx->line, f, bvh->frame_count);
        double *row = bvh->values + (size_t)f * (size_t)cols;
        for (long c = 0; c < cols; c++) {
            while (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r')
                lx->p++;
            if (*lx->p == '\n' || *lx->p == '\0')
                return km_error(KM_ERR_PARSE, "%s:%d: frame %d has %ld values, expected %ld",
                                lx->name, lx->line, f, c, cols);
            char value[64];
            size_t n = 0;
            while (*lx->p && !is_space(*lx->p)) {
                if (n + 1 < sizeof value)
                    value[n++] = *lx->p;
                lx->p++;
            }
            value[n] = '\0';
            if (!parse_number(value, &row[c]))
                return km_error(KM_ERR_PARSE, "%s:%d: frame %d, value %ld: '%s' is not a "
                                "finite number", lx->name, lx->line, f, c + 1, value);
        }
        while (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r')
            lx->p++;
        if (*lx->p != '\n' && *lx->p != '\0')
            return km_error(KM_ERR_PARSE, "%s:%d: frame %d has more than %ld values", lx->name,
                            lx->line, f, cols);
    }
    skip_space(lx);
    if (*lx->p != '\0')
        return km_error(KM_ERR_PARSE, "%s:%d: more frame rows than Frames: %d (or trailing "
                        "text)", lx->name, lx->line, bvh->frame_count);
    return KM_OK;
}

/* ------------------------------------------------------------------- public */

void km_bvh_destroy(km_bvh *bvh)
{
    if (!bvh)
        return;
    free(bvh->joints);
    free(bvh->values);
    free(bvh);
}

km_bvh *km_bvh_parse(const char *text, size_t length, const char *name, km_status *err)
{
    km_status dummy;
    if (!err)
        err = &dummy;
    if (!name)
        name = "(memory)";
    if (!text && length > 0) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "bvh: NULL text");
        return NULL;
    }
    char *copy = malloc(length + 1);
    km_bvh *bvh = calloc(1, sizeof *bvh);
    if (!copy || !bvh) {
        free(copy);
        free(bvh);
        *err = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", name);
        return NULL;
    }
    if (length > 0)
        memcpy(copy, text, length);
    copy[length] = '\0';
    if (strlen(copy) != length) {
        int line = 1; /* the line of the first NUL */
        for (const char *q = copy; *q; q++)
            if (*q == '\n')
                line++;
        *err = km_error(KM_ERR_PARSE, "%s:%d: NUL byte in the text", name, line);
        free(copy);
        km_bvh_destroy(bvh);
        return NULL;
    }
    lexer lx = {.p = copy, .line = 1, .name = name};
    km_status st = parse_hierarchy(&lx, bvh);
    if (st == KM_OK)
        st = parse_motion(&lx, bvh, length);
    free(copy);
    if (st != KM_OK) {
        km_bvh_destroy(bvh);
        *err = st;
        return NULL;
    }
    *err = KM_OK;
    return bvh;
}

km_bvh *km_bvh_load(const char *path, km_status *err)
{
    km_status dummy;
    if (!err)
        err = &dummy;
    if (!path) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "bvh: NULL path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = km_error(KM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t length = 0, capacity = 0;
    for (;;) {
        if (length == capacity) {
            capacity = capacity ? 2 * capacity : 1 << 16;
            char *grown = realloc(text, capacity);
            if (!grown) {
                free(text);
                fclose(f);
                *err = km_error(KM_ERR_NO_MEMORY, "%s: out of memory", path);
                return NULL;
            }
            text = grown;
        }
        const size_t got = fread(text + length, 1, capacity - length, f);
        length += got;
        if (got == 0)
            break;
    }
    const bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        *err = km_error(KM_ERR_IO, "%s: read error", path);
        return NULL;
    }
    km_bvh *bvh = km_bvh_parse(text, length, path, err);
    free(text);
    return bvh;
}

int km_bvh_joint_count(const km_bvh *bvh)
{
    return bvh ? bvh->joint_count : 0;
}

const km_bvh_joint *km_bvh_joint_at(const km_bvh *bvh, int index)
{
    if (!bvh || index < 0 || index >= bvh->joint_count)
        return NULL;
    return &bvh->joints[index];
}

int km_bvh_find_joint(const km_bvh *bvh, const char *name)
{
    if (!bvh || !name)
        return -1;
    for (int j = 0; j < bvh->joint_count; j++)
        if (strcmp(bvh->joints[j].name, name) == 0)
            return j;
    return -1;
}

int km_bvh_channel_count(const km_bvh *bvh)
{
    return bvh ? bvh->channel_count : 0;
}

int km_bvh_frame_count(const km_bvh *bvh)
{
    return bvh ? bvh->frame_count : 0;
}

double km_bvh_frame_time_s(const km_bvh *bvh)
{
    return bvh ? bvh->frame_time_s : 0.0;
}

const double *km_bvh_frame(const km_bvh *bvh, int frame)
{
    if (!bvh || frame < 0 || frame >= bvh->frame_count)
        return NULL;
    return bvh->values + (size_t)frame * (size_t)bvh->channel_count;
}

/* Rotation about a coordinate axis (0 x, 1 y, 2 z) by degrees. */
static km_mat3 axis_rotation(int axis, double degrees)
{
    const double a = degrees * (M_PI / 180.0), c = cos(a), s = sin(a);
    switch (axis) {
    case 0:
        return (km_mat3){{1, 0, 0, 0, c, -s, 0, s, c}};
    case 1:
        return (km_mat3){{c, 0, s, 0, 1, 0, -s, 0, c}};
    default:
        return (km_mat3){{c, -s, 0, s, c, 0, 0, 0, 1}};
    }
}

/* Local transform of joint j with the channel values `row` (NULL = rest pose). */
static void local_transform(const km_bvh_joint *j, const double *row, km_vec3 *t, km_mat3 *R)
{
    double tv[3] = {j->offset.x, j->offset.y, j->offset.z};
    *R = km_mat3_identity();
    for (int c = 0; c < j->channel_count; c++) {
        const int kind = (int)j->channels[c];
        const double value = row ? row[j->first_channel + c] : 0.0;
        if (kind < 3) {
            if (row)
                tv[kind] = value;
        } else {
            *R = km_mat3_mul(*R, axis_rotation(kind - 3, value));
        }
    }
    *t = km_vec3_make(tv[0], tv[1], tv[2]);
}

static void forward(const km_bvh *bvh, const double *row, double scale_m, km_vec3 *pos,
                    km_mat3 *rot_out, km_mat3 *rot_scratch)
{
    for (int k = 0; k < bvh->joint_count; k++) {
        const km_bvh_joint *j = &bvh->joints[k];
        km_vec3 t;
        km_mat3 R;
        local_transform(j, row, &t, &R);
        t = km_vec3_scale(t, scale_m);
        if (j->parent < 0) {
            pos[k] = t;
            rot_scratch[k] = R;
        } else {
            const km_mat3 P = rot_scratch[j->parent];
            pos[k] = km_vec3_add(pos[j->parent], km_mat3_apply(P, t));
            rot_scratch[k] = j->end_site ? P : km_mat3_mul(P, R);
        }
        if (rot_out)
            rot_out[k] = rot_scratch[k];
    }
}

km_status km_bvh_pose(const km_bvh *bvh, int frame, double scale_m, km_vec3 *positions_m,
                      km_mat3 *rotations)
{
    if (!bvh || !positions_m)
        return km_error(KM_ERR_INVALID_ARGUMENT, "bvh: NULL argument");
    if (frame < 0 || frame >= bvh->frame_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "bvh: frame %d outside 0..%d", frame,
                        bvh->frame_count - 1);
    if (!(scale_m > 0.0) || !isfinite(scale_m))
        return km_error(KM_ERR_INVALID_ARGUMENT, "bvh: scale %g must be positive", scale_m);
    /* Parent orientations are needed even when the caller does not want them: keep them
     * in the caller's array if given, else on the stack. */
    km_mat3 scratch[KM_BVH_MAX_JOINTS];
    forward(bvh, km_bvh_frame(bvh, frame), scale_m, positions_m, rotations,
            rotations ? rotations : scratch);
    return KM_OK;
}

double km_bvh_guess_scale_m(const km_bvh *bvh)
{
    if (!bvh || bvh->joint_count < 2)
        return 0.0;
    km_vec3 pos[KM_BVH_MAX_JOINTS];
    km_mat3 rot[KM_BVH_MAX_JOINTS];
    forward(bvh, NULL, 1.0, pos, NULL, rot);
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int k = 0; k < bvh->joint_count; k++) {
        const double v[3] = {pos[k].x, pos[k].y, pos[k].z};
        for (int a = 0; a < 3; a++) {
            lo[a] = fmin(lo[a], v[a]);
            hi[a] = fmax(hi[a], v[a]);
        }
    }
    double extent = 0.0;
    for (int a = 0; a < 3; a++)
        extent = fmax(extent, hi[a] - lo[a]);
    if (!(extent > 0.0))
        return 0.0;
    /* metres, centimetres, millimetres, inches, CMU (1/0.45 inch) */
    static const double units[5] = {1.0, 0.01, 0.001, 0.0254, 0.0254 / 0.45};
    double best = units[0], best_err = INFINITY;
    for (int u = 0; u < 5; u++) {
        const double err = fabs(log(extent * units[u] / 1.7));
        if (err < best_err) {
            best_err = err;
            best = units[u];
        }
    }
    return best;
}

/* ------------------------------------------------------------------- writer */

static void indent(FILE *f, int depth)
{
    for (int d = 0; d < depth; d++)
        fputc('\t', f);
}

km_status km_bvh_write(const km_bvh *bvh, FILE *f)
{
    if (!bvh || !f || bvh->joint_count < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "bvh: nothing to write");
    int stack[KM_BVH_MAX_JOINTS];
    int depth = 0;
    fputs("HIERARCHY\n", f);
    for (int k = 0; k < bvh->joint_count; k++) {
        const km_bvh_joint *j = &bvh->joints[k];
        while (depth > 0 && stack[depth - 1] != j->parent) {
            depth--;
            indent(f, depth);
            fputs("}\n", f);
        }
        indent(f, depth);
        if (j->parent < 0)
            fprintf(f, "ROOT %s\n", j->name);
        else if (j->end_site)
            fputs("End Site\n", f);
        else
            fprintf(f, "JOINT %s\n", j->name);
        indent(f, depth);
        fputs("{\n", f);
        indent(f, depth + 1);
        fprintf(f, "OFFSET %.9g %.9g %.9g\n", j->offset.x, j->offset.y, j->offset.z);
        if (!j->end_site) {
            indent(f, depth + 1);
            fprintf(f, "CHANNELS %d", j->channel_count);
            for (int c = 0; c < j->channel_count; c++)
                fprintf(f, " %s", channel_names[j->channels[c]]);
            fputc('\n', f);
        }
        stack[depth++] = k;
    }
    while (depth > 0) {
        depth--;
        indent(f, depth);
        fputs("}\n", f);
    }
    fprintf(f, "MOTION\nFrames: %d\nFrame Time: %.9g\n", bvh->frame_count, bvh->frame_time_s);
    for (int fr = 0; fr < bvh->frame_count; fr++) {
        const double *row = km_bvh_frame(bvh, fr);
        for (int c = 0; c < bvh->channel_count; c++)
            fprintf(f, c ? " %.9g" : "%.9g", row[c]);
        fputc('\n', f);
    }
    if (ferror(f))
        return km_error(KM_ERR_IO, "bvh: write error");
    return KM_OK;
}

km_status km_bvh_save(const km_bvh *bvh, const char *path)
{
    if (!bvh || !path)
        return km_error(KM_ERR_INVALID_ARGUMENT, "bvh: NULL argument");
    FILE *f = fopen(path, "w");
    if (!f)
        return km_error(KM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    km_status st = km_bvh_write(bvh, f);
    if (fclose(f) != 0 && st == KM_OK)
        st = km_error(KM_ERR_IO, "%s: write error: %s", path, strerror(errno));
    return st;
}
