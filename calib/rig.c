/* The camera rig file (formats.md "Camera rig"): reading through km_config, which accepts
 * OpenCV FileStorage's "%YAML:1.0" header and ignores its "!!opencv-matrix" tags, and writing
 * the exact layout of formats.md with full double precision.
 *
 * The reader validates everything before the rig is used, because a wrong calibration gives
 * plausible-looking but wrong 3D data: sizes and counts, the camera matrix's fixed entries,
 * the rotation's orthonormality. Each error names "file:line: key: why".
 * Details and the choices made (optional keys, accepted distortion sizes) are in
 * docs/formats.md, "Camera rig". */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

/* Largest image side accepted; guards against a garbage number making later buffers huge. */
#define RIG_MAX_IMAGE_SIDE 65536
/* Rotations off orthonormal by more than this are a wrong file, not rounding. */
#define RIG_ROTATION_TOLERANCE 1e-6
/* Below this the rotation is used bit for bit (so save -> load round trips exactly). */
#define RIG_ROTATION_EXACT 1e-12
/* OpenCV distortion vectors: 4 (k1 k2 p1 p2), 5 (+k3), 8 (+k4..k6 rational), 12 (+s1..s4
 * thin prism), 14 (+tauX tauY tilt). We model the first five. */
#define RIG_MAX_DIST 14

/* "file:line: path: message" with the line of the node at `path` (or of its nearest parent
 * when absent: km_config_line gives 0, then the file name alone). */
static km_status rig_fail(const km_config *cfg, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static km_status rig_fail(const km_config *cfg, const char *path, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int line = km_config_line(cfg, path);
    if (line > 0)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg), line, path, what);
    return km_error(KM_ERR_PARSE, "%s: %s: %s", km_config_name(cfg), path, what);
}

/* A required key: not found becomes KM_ERR_PARSE (km_config already wrote "file:line: path:
 * not found" with the parent's line). */
static km_status required(km_status st)
{
    return st == KM_ERR_NOT_FOUND ? KM_ERR_PARSE : st;
}

/* Names are written inside double quotes by km_rig_save; keep them to what needs no
 * escaping so that every reader (ours, OpenCV's) reads back the same bytes. */
static bool name_is_plain(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static km_status read_name(const km_config *cfg, const char *path, const char *fallback,
                           char out[KM_NAME_MAX])
{
    /* Optional: OpenCV-written files have no names. */
    if (km_config_type(cfg, path) == KM_CONFIG_ABSENT) {
        snprintf(out, KM_NAME_MAX, "%s", fallback);
        return KM_OK;
    }
    km_status st = km_config_get_string(cfg, path, fallback, out, KM_NAME_MAX);
    if (st != KM_OK)
        return st;
    if (!name_is_plain(out))
        return rig_fail(cfg, path, "names may not contain control characters, '\"' or '\\'");
    return KM_OK;
}

/* An "!!opencv-matrix" mapping {rows, cols, dt, data}. Fills out[0..rows*cols). */
static km_status read_matrix(const km_config *cfg, const char *path, double *out,
                             size_t capacity, int *rows_out, int *cols_out)
{
    static const char *const keys[] = {"rows", "cols", "dt", "data", NULL};
    char sub[160];
    km_status st;
    km_config_kind kind = km_config_type(cfg, path);
    if (kind == KM_CONFIG_ABSENT) {
        size_t none;
        return required(km_config_get_doubles(cfg, path, out, 0, &none));
    }
    if (kind != KM_CONFIG_MAPPING)
        return rig_fail(cfg, path, "expected an !!opencv-matrix mapping {rows, cols, dt, data}");
    if ((st = km_config_check_keys(cfg, path, keys)) != KM_OK)
        return st;

    long rows, cols;
    snprintf(sub, sizeof sub, "%s.rows", path);
    if ((st = required(km_config_get_int(cfg, sub, 0, 1, 64, &rows))) != KM_OK)
        return st;
    snprintf(sub, sizeof sub, "%s.cols", path);
    if ((st = required(km_config_get_int(cfg, sub, 0, 1, 64, &cols))) != KM_OK)
        return st;

    char dt[8];
    snprintf(sub, sizeof sub, "%s.dt", path);
    if ((st = required(km_config_get_string(cfg, sub, "", dt, sizeof dt))) != KM_OK)
        return st;
    /* d = CV_64F (what we and calibrateCamera write); f = CV_32F, also plain numbers. */
    if (strcmp(dt, "d") != 0 && strcmp(dt, "f") != 0)
        return rig_fail(cfg, sub, "expected 'd' or 'f' (a real matrix), got '%s'", dt);

    snprintf(sub, sizeof sub, "%s.data", path);
    double data[RIG_MAX_DIST > 9 ? RIG_MAX_DIST : 9];
    size_t count = 0;
    size_t want = (size_t)(rows * cols);
    if (want > capacity)
        return rig_fail(cfg, path, "%ldx%ld matrix is too large here (at most %zu numbers)",
                        rows, cols, capacity);
    if ((st = required(km_config_get_doubles(cfg, sub, data, sizeof data / sizeof data[0],
                                             &count))) != KM_OK)
        return st;
    if (count != want)
        return rig_fail(cfg, sub, "rows x cols is %ldx%ld = %zu but data holds %zu numbers",
                        rows, cols, want, count);
    memcpy(out, data, want * sizeof *out);
    *rows_out = (int)rows;
    *cols_out = (int)cols;
    return KM_OK;
}

static km_status read_camera_matrix(const km_config *cfg, const char *path, double K[9])
{
    int rows, cols;
    km_status st = read_matrix(cfg, path, K, 9, &rows, &cols);
    if (st != KM_OK)
        return st;
    if (rows != 3 || cols != 3)
        return rig_fail(cfg, path, "expected a 3x3 matrix, got %dx%d", rows, cols);
    if (!(K[0] > 0.0) || !(K[4] > 0.0))
        return rig_fail(cfg, path, "focal lengths must be > 0 (fx = %g, fy = %g)", K[0], K[4]);
    if (K[3] != 0.0 || K[6] != 0.0 || K[7] != 0.0 || K[8] != 1.0)
        return rig_fail(cfg, path, "expected [fx 0 cx; 0 fy cy; 0 0 1]");
    /* The OpenCV projection model (and ours) has no skew term. */
    if (K[1] != 0.0)
        return rig_fail(cfg, path, "skew (element 0,1 = %g) is not supported", K[1]);
    return KM_OK;
}

static km_status read_distortion(const km_config *cfg, const char *path, double dist[5])
{
    double d[RIG_MAX_DIST];
    int rows, cols;
    km_status st = read_matrix(cfg, path, d, RIG_MAX_DIST, &rows, &cols);
    if (st != KM_OK)
        return st;
    int n = rows * cols;
    if ((rows != 1 && cols != 1) || (n != 4 && n != 5 && n != 8 && n != 12 && n != 14))
        return rig_fail(cfg, path, "expected a 1x5 vector (or 1x4, 1x8, 1x12, 1x14), got %dx%d",
                        rows, cols);
    /* Terms beyond k3 (rational, thin prism, tilt) are not modelled: accept them only when
     * zero, so a file that needs them fails loudly instead of projecting wrongly. */
    for (int i = 5; i < n; i++)
        if (d[i] != 0.0)
            return rig_fail(cfg, path, "coefficient %d is %g: only k1 k2 p1 p2 k3 are "
                            "supported (higher terms must be 0)", i, d[i]);
    memset(dist, 0, 5 * sizeof *dist);
    memcpy(dist, d, (size_t)(n < 5 ? n : 5) * sizeof *dist);
    return KM_OK;
}

/* Nearest rotation (polar factor U V^T of the SVD). */
static km_status orthonormalise(km_mat3 *R)
{
    double U[9], s[3], V[9];
    km_status st = km_svd(R->m, 3, 3, U, s, V);
    if (st != KM_OK)
        return st;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            R->m[3 * r + c] = U[3 * r + 0] * V[3 * c + 0] + U[3 * r + 1] * V[3 * c + 1] +
                              U[3 * r + 2] * V[3 * c + 2];
    return KM_OK;
}

static km_status read_rotation(const km_config *cfg, const char *path, km_mat3 *R)
{
    int rows, cols;
    km_status st = read_matrix(cfg, path, R->m, 9, &rows, &cols);
    if (st != KM_OK)
        return st;
    if (rows != 3 || cols != 3)
        return rig_fail(cfg, path, "expected a 3x3 matrix, got %dx%d", rows, cols);
    km_mat3 RRt = km_mat3_mul(*R, km_mat3_transpose(*R));
    double err = 0.0;
    for (int i = 0; i < 9; i++)
        err = fmax(err, fabs(RRt.m[i] - ((i % 4 == 0) ? 1.0 : 0.0)));
    if (!(err <= RIG_ROTATION_TOLERANCE))
        return rig_fail(cfg, path, "not orthonormal (max |R R^T - I| = %.3g > %g)", err,
                        RIG_ROTATION_TOLERANCE);
    double det = km_mat3_det(*R);
    if (!(det > 0.0))
        return rig_fail(cfg, path, "a reflection, not a rotation (det = %.6g)", det);
    if (err > RIG_ROTATION_EXACT) {
        /* Rounding from a short-precision writer: snap to the nearest rotation. */
        if (orthonormalise(R) != KM_OK)
            return rig_fail(cfg, path, "cannot orthonormalise");
        km_log(KM_LOG_DEBUG, "calib", "%s: %s re-orthonormalised (error %.3g)",
               km_config_name(cfg), path, err);
    }
    return KM_OK;
}

static km_status read_translation(const km_config *cfg, const char *path, km_vec3 *t)
{
    double d[3];
    int rows, cols;
    km_status st = read_matrix(cfg, path, d, 3, &rows, &cols);
    if (st != KM_OK)
        return st;
    if (!((rows == 3 && cols == 1) || (rows == 1 && cols == 3)))
        return rig_fail(cfg, path, "expected a 3x1 vector, got %dx%d", rows, cols);
    *t = km_vec3_make(d[0], d[1], d[2]);
    return KM_OK;
}

static km_status read_camera(const km_config *cfg, int index, int camera_count, km_camera *cam)
{
    static const char *const keys[] = {"name", "image_width", "image_height", "camera_matrix",
                                       "distortion_coefficients", "rotation", "translation",
                                       NULL};
    char section[32], path[160], fallback[KM_NAME_MAX];
    km_status st;
    snprintf(section, sizeof section, "camera_%d", index);
    km_config_kind kind = km_config_type(cfg, section);
    if (kind == KM_CONFIG_ABSENT)
        return km_error(KM_ERR_PARSE, "%s:%d: camera_%d: not found (camera_count is %d)",
                        km_config_name(cfg), km_config_line(cfg, "camera_count"), index,
                        camera_count);
    if (kind != KM_CONFIG_MAPPING)
        return rig_fail(cfg, section, "expected a mapping");
    if ((st = km_config_check_keys(cfg, section, keys)) != KM_OK)
        return st;

    snprintf(fallback, sizeof fallback, "cam%d", index);
    snprintf(path, sizeof path, "%s.name", section);
    if ((st = read_name(cfg, path, fallback, cam->name)) != KM_OK)
        return st;

    long v;
    snprintf(path, sizeof path, "%s.image_width", section);
    if ((st = required(km_config_get_int(cfg, path, 0, 1, RIG_MAX_IMAGE_SIDE, &v))) != KM_OK)
        return st;
    cam->width = (int)v;
    snprintf(path, sizeof path, "%s.image_height", section);
    if ((st = required(km_config_get_int(cfg, path, 0, 1, RIG_MAX_IMAGE_SIDE, &v))) != KM_OK)
        return st;
    cam->height = (int)v;

    snprintf(path, sizeof path, "%s.camera_matrix", section);
    if ((st = read_camera_matrix(cfg, path, cam->K)) != KM_OK)
        return st;
    snprintf(path, sizeof path, "%s.distortion_coefficients", section);
    if ((st = read_distortion(cfg, path, cam->dist)) != KM_OK)
        return st;

    char rpath[160], tpath[160];
    snprintf(rpath, sizeof rpath, "%s.rotation", section);
    snprintf(tpath, sizeof tpath, "%s.translation", section);
    bool has_r = km_config_has(cfg, rpath), has_t = km_config_has(cfg, tpath);
    if (!has_r && !has_t && camera_count == 1) {
        /* Intrinsics-only file (formats.md): identity pose, flagged as unknown. */
        cam->R = km_mat3_identity();
        cam->t = km_vec3_make(0.0, 0.0, 0.0);
        cam->has_pose = false;
        return KM_OK;
    }
    if (!has_r)
        return rig_fail(cfg, section, "rotation: not found%s",
                        camera_count > 1 ? " (required when camera_count > 1)"
                                         : " (translation given without it)");
    if (!has_t)
        return rig_fail(cfg, section, "translation: not found%s",
                        camera_count > 1 ? " (required when camera_count > 1)"
                                         : " (rotation given without it)");
    if ((st = read_rotation(cfg, rpath, &cam->R)) != KM_OK)
        return st;
    if ((st = read_translation(cfg, tpath, &cam->t)) != KM_OK)
        return st;
    cam->has_pose = true;
    return KM_OK;
}

/* "camera_<decimal>" -> index, or -1 for any other key. */
static long camera_key_index(const char *key)
{
    if (strncmp(key, "camera_", 7) != 0 || key[7] < '0' || key[7] > '9')
        return -1;
    char *end;
    errno = 0;
    long i = strtol(key + 7, &end, 10);
    if (*end != '\0' || errno != 0)
        return -1;
    return i;
}

static km_status rig_from_config(const km_config *cfg, km_rig *rig)
{
    km_status st;
    memset(rig, 0, sizeof *rig);
    if ((st = read_name(cfg, "rig_name", "", rig->name)) != KM_OK)
        return st;
    long count;
    if ((st = required(km_config_get_int(cfg, "camera_count", 0, 1, KM_MAX_CAMERAS, &count))) !=
        KM_OK)
        return st;
    /* A camera section beyond camera_count means the count is wrong (or a camera was
     * added by hand): refuse rather than silently drop it. */
    for (size_t i = 0;; i++) {
        const char *key = km_config_key(cfg, "", i);
        if (key == NULL)
            break;
        long index = camera_key_index(key);
        if (index >= count)
            return rig_fail(cfg, key, "beyond camera_count (%ld): camera_count does not match "
                            "the camera sections", count);
    }
    rig->camera_count = (int)count;
    for (int i = 0; i < rig->camera_count; i++)
        if ((st = read_camera(cfg, i, rig->camera_count, &rig->cameras[i])) != KM_OK)
            return st;
    return KM_OK;
}

km_status km_rig_parse(const char *text, size_t length, const char *name, km_rig *rig)
{
    if ((text == NULL && length > 0) || rig == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig parse: NULL argument");
    km_status st = KM_OK;
    km_config *cfg = km_config_parse(text != NULL ? text : "", length,
                                     name != NULL ? name : "(rig)", &st);
    if (cfg == NULL) {
        memset(rig, 0, sizeof *rig);
        return st != KM_OK ? st : KM_ERR_PARSE;
    }
    st = rig_from_config(cfg, rig);
    if (st != KM_OK)
        memset(rig, 0, sizeof *rig);
    km_config_destroy(cfg);
    return st;
}

km_status km_rig_load(const char *path, km_rig *rig)
{
    if (path == NULL || rig == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig load: NULL argument");
    km_status st = KM_OK;
    km_config *cfg = km_config_load(path, &st);
    if (cfg == NULL) {
        memset(rig, 0, sizeof *rig);
        return st != KM_OK ? st : KM_ERR_PARSE;
    }
    st = rig_from_config(cfg, rig);
    if (st != KM_OK)
        memset(rig, 0, sizeof *rig);
    km_config_destroy(cfg);
    return st;
}

/* ------------------------------------------------------------------ writer */

static void write_matrix(FILE *f, const char *key, int rows, int cols, const double *data)
{
    fprintf(f, "   %s: !!opencv-matrix {rows: %d, cols: %d, dt: d, data: [", key, rows, cols);
    for (int i = 0; i < rows * cols; i++)
        fprintf(f, "%s%.17g", i ? ", " : "", data[i]);
    fprintf(f, "]}\n");
}

static km_status check_camera_for_save(const km_camera *cam, int index)
{
    if (!name_is_plain(cam->name) || strlen(cam->name) >= KM_NAME_MAX)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: camera_%d: name must be printable "
                        "without '\"' or '\\'", index);
    if (cam->width < 1 || cam->height < 1 || cam->width > RIG_MAX_IMAGE_SIDE ||
        cam->height > RIG_MAX_IMAGE_SIDE)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: camera_%d: image size %dx%d",
                        index, cam->width, cam->height);
    for (int i = 0; i < 9; i++)
        if (!isfinite(cam->K[i]) || !isfinite(cam->R.m[i]))
            return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: camera_%d: non-finite matrix",
                            index);
    for (int i = 0; i < 5; i++)
        if (!isfinite(cam->dist[i]))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "rig save: camera_%d: non-finite distortion", index);
    if (!isfinite(cam->t.x) || !isfinite(cam->t.y) || !isfinite(cam->t.z))
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: camera_%d: non-finite translation",
                        index);
    return KM_OK;
}

km_status km_rig_save(const char *path, const km_rig *rig, const char *extra)
{
    if (path == NULL || rig == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: NULL argument");
    if (rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: camera_count %d not in [1, %d]",
                        rig->camera_count, KM_MAX_CAMERAS);
    if (!name_is_plain(rig->name) || strnlen(rig->name, KM_NAME_MAX) >= KM_NAME_MAX)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "rig save: rig name must be printable without '\"' or '\\'");
    bool all_posed = true;
    for (int i = 0; i < rig->camera_count; i++) {
        km_status st = check_camera_for_save(&rig->cameras[i], i);
        if (st != KM_OK)
            return st;
        all_posed = all_posed && rig->cameras[i].has_pose;
    }
    if (!all_posed && rig->camera_count > 1)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "rig save: every camera of a multi-camera rig needs a pose");

    /* Write beside the target and rename, so a crash never leaves half a calibration. */
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rig save: path too long");
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return km_error(KM_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    fprintf(f, "%%YAML:1.0\n---\n");
    fprintf(f, "rig_name: \"%s\"\n", rig->name);
    fprintf(f, "camera_count: %d\n", rig->camera_count);
    for (int i = 0; i < rig->camera_count; i++) {
        const km_camera *c = &rig->cameras[i];
        fprintf(f, "camera_%d:\n", i);
        fprintf(f, "   name: \"%s\"\n", c->name);
        fprintf(f, "   image_width: %d\n", c->width);
        fprintf(f, "   image_height: %d\n", c->height);
        write_matrix(f, "camera_matrix", 3, 3, c->K);
        write_matrix(f, "distortion_coefficients", 1, 5, c->dist);
        if (c->has_pose) {
            double t[3] = {c->t.x, c->t.y, c->t.z};
            write_matrix(f, "rotation", 3, 3, c->R.m);
            write_matrix(f, "translation", 3, 1, t);
        }
    }
    if (extra != NULL)
        fputs(extra, f);
    bool failed = ferror(f) != 0;
    int saved_errno = errno;
    if (fclose(f) != 0 && !failed) {
        failed = true;
        saved_errno = errno;
    }
    if (failed) {
        remove(tmp);
        return km_error(KM_ERR_IO, "%s: write failed: %s", tmp, strerror(saved_errno));
    }
    if (rename(tmp, path) != 0) {
        saved_errno = errno;
        remove(tmp);
        return km_error(KM_ERR_IO, "%s: cannot rename to %s: %s", tmp, path,
                        strerror(saved_errno));
    }
    return KM_OK;
}
