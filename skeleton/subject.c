/* Subjects (include/kinema/skeleton.h "subjects", "subject calibration"): the scaled
 * template, the subject YAML file, labeled frames from C3D, and calibration from a labeled
 * T-pose / range-of-motion take.
 *
 * Calibration alternates two steps. (1) IK on every calibration frame with the current
 * subject gives each segment's rotation. (2) With the rotations fixed, every marker is
 * linear in the root position, the bone vectors and its own offset:
 *     x_i = root + sum over joints a on the chain of seg(i): R_parent(a) bone_a
 *                + R_seg(i) offset_i
 * so all bones and offsets of all frames are fitted in one linear least-squares problem
 * (per-frame root positions eliminated in closed form), with a weak prior towards the
 * scaled template for what the motion does not observe (a static pose cannot tell a joint
 * centre from a marker offset along the same direction; movement can). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeleton_internal.h"

#define MODULE "skeleton"

km_status skeleton_read_markers(const km_config *cfg, const char *path, km_body_markerset *set);
void skeleton_write_markers(FILE *f, const km_body_markerset *set);

km_status km_subject_default(const km_body_markerset *set, double height_m, const char *name,
                             km_subject *out)
{
    if (!set || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "subject default: NULL");
    if (!(height_m > 0.5 && height_m < 2.5))
        return km_error(KM_ERR_INVALID_ARGUMENT, "subject default: height %g m not in (0.5, 2.5)",
                        height_m);
    km_status st = km_body_markerset_validate(set);
    if (st != KM_OK)
        return st;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name ? name : "subject");
    const double s = height_m / SKELETON_TEMPLATE_HEIGHT_M;
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        out->bone_m[j] = km_vec3_scale(km_joint_default_offset(j), s);
    out->markers = *set;
    for (int i = 0; i < set->count; i++)
        out->markers.markers[i].offset_m = km_vec3_scale(set->markers[i].offset_m, s);
    return KM_OK;
}

/* ------------------------------------------------------------------- files */

static const char *const SUBJECT_KEYS[] = {"subject", "marker_set", "bones", "markers", NULL};

static km_status parse_subject(km_config *cfg, km_subject *out)
{
    km_status st = km_config_check_keys(cfg, "", SUBJECT_KEYS);
    if (st != KM_OK)
        return st;
    st = km_config_get_string(cfg, "subject", "subject", out->name, sizeof out->name);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    st = km_config_get_string(cfg, "marker_set", "markers", out->markers.name,
                              sizeof out->markers.name);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    if (km_config_type(cfg, "bones") != KM_CONFIG_MAPPING)
        return km_error(KM_ERR_PARSE, "%s:%d: bones: expected a mapping joint: [x, y, z]",
                        km_config_name(cfg), km_config_line(cfg, "bones"));
    bool seen[KM_JOINT_COUNT] = {false};
    for (size_t k = 0;; k++) {
        const char *key = km_config_key(cfg, "bones", k);
        if (!key)
            break;
        char path[128];
        snprintf(path, sizeof path, "bones.%s", key);
        int j = km_joint_from_name(key);
        if (j <= 0)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: not a joint with a bone (Spine ... "
                            "RightToes)", km_config_name(cfg), km_config_line(cfg, path), path);
        double v[3];
        size_t n = 0;
        st = km_config_get_doubles(cfg, path, v, 3, &n);
        if (st != KM_OK)
            return st;
        if (n != 3 || !isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2]) ||
            sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) > 1.5)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: expected [x, y, z] in metres (< 1.5 m)",
                            km_config_name(cfg), km_config_line(cfg, path), path);
        out->bone_m[j] = km_vec3_make(v[0], v[1], v[2]);
        seen[j] = true;
    }
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        if (!seen[j])
            return km_error(KM_ERR_PARSE, "%s:%d: bones: missing %s", km_config_name(cfg),
                            km_config_line(cfg, "bones"), km_joint_name(j));
    if (!km_config_has(cfg, "markers"))
        return km_error(KM_ERR_PARSE, "%s:1: missing 'markers'", km_config_name(cfg));
    return skeleton_read_markers(cfg, "markers", &out->markers);
}

km_status km_subject_parse(const char *text, size_t length, const char *name, km_subject *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "subject parse: NULL");
    memset(out, 0, sizeof *out);
    km_status st;
    km_config *cfg = km_config_parse(text, length, name ? name : "<memory>", &st);
    if (!cfg)
        return st;
    st = parse_subject(cfg, out);
    km_config_destroy(cfg);
    return st;
}

km_status km_subject_load(const char *path, km_subject *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "subject load: NULL");
    memset(out, 0, sizeof *out);
    km_status st;
    km_config *cfg = km_config_load(path, &st);
    if (!cfg)
        return st;
    st = parse_subject(cfg, out);
    km_config_destroy(cfg);
    return st;
}

km_status km_subject_save(const char *path, const km_subject *s)
{
    if (!s || !path)
        return km_error(KM_ERR_INVALID_ARGUMENT, "subject save: NULL");
    km_status st = km_body_markerset_validate(&s->markers);
    if (st != KM_OK)
        return st;
    FILE *f = fopen(path, "w");
    if (!f)
        return km_error(KM_ERR_IO, "%s: cannot write", path);
    fprintf(f, "# Kinema subject (docs/skeleton.md): bones are joint positions in the parent\n"
               "# segment frame at rest (T-pose, facing +Z, left +X, Y up), metres.\n");
    fprintf(f, "subject: \"%s\"\nmarker_set: \"%s\"\nbones:\n", s->name, s->markers.name);
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        fprintf(f, "  %s: [%.17g, %.17g, %.17g]\n", km_joint_name(j), s->bone_m[j].x,
                s->bone_m[j].y, s->bone_m[j].z);
    skeleton_write_markers(f, &s->markers);
    if (fclose(f) != 0)
        return km_error(KM_ERR_IO, "%s: write failed", path);
    return KM_OK;
}

/* ------------------------------------------------------------- C3D frames */

static const char *const ALIASES[][2] = {{"LFRM", "LFRA"}, {"RFRM", "RFRA"}};

/* Index of the C3D point for a label: exact, after "Subject:", or an alias. */
static int c3d_point(const km_c3d *c3d, const char *label)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *want = label;
        if (pass == 1) {
            want = NULL;
            for (size_t a = 0; a < sizeof ALIASES / sizeof ALIASES[0]; a++) {
                if (!strcmp(ALIASES[a][0], label))
                    want = ALIASES[a][1];
                else if (!strcmp(ALIASES[a][1], label))
                    want = ALIASES[a][0];
            }
            if (!want)
                break;
        }
        for (int p = 0; p < c3d->point_count; p++) {
            const char *l = c3d->labels[p];
            const char *colon = strrchr(l, ':');
            if (!strcmp(l, want) || (colon && !strcmp(colon + 1, want)))
                return p;
        }
    }
    return -1;
}

km_status km_body_markerset_match_c3d(const km_body_markerset *set, const km_c3d *c3d,
                                      km_body_markerset *out)
{
    if (!set || !c3d || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "markerset match: NULL");
    km_body_markerset r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", set->name);
    for (int i = 0; i < set->count; i++) {
        int p = c3d_point(c3d, set->markers[i].label);
        if (p < 0)
            continue;
        r.markers[r.count] = set->markers[i];
        const char *l = c3d->labels[p];
        const char *colon = strrchr(l, ':');
        snprintf(r.markers[r.count].label, KM_LABEL_MAX, "%s", colon ? colon + 1 : l);
        r.count++;
    }
    if (r.count < 3)
        return km_error(KM_ERR_NOT_FOUND, "markerset match: only %d labels of '%s' in the file",
                        r.count, set->name);
    *out = r;
    return KM_OK;
}

km_status km_body_frame_from_c3d(const km_c3d *c3d, int frame, const km_body_markerset *set,
                                 const km_mat3 *to_world, km_body_frame *out)
{
    if (!c3d || !set || !out || frame < 0 || frame >= c3d->frame_count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "body frame from c3d: bad argument");
    out->frame = (uint64_t)frame;
    out->time_ns = c3d->rate_hz > 0 ? (uint64_t)llround(frame * 1e9 / c3d->rate_hz) : 0;
    out->count = set->count;
    for (int i = 0; i < set->count; i++) {
        int p = c3d_point(c3d, set->markers[i].label);
        out->valid[i] = false;
        if (p < 0)
            continue;
        size_t k = (size_t)frame * (size_t)c3d->point_count + (size_t)p;
        const double *x = &c3d->pos[k * 3];
        if (c3d->residual[k] < 0 || (x[0] == 0 && x[1] == 0 && x[2] == 0))
            continue;
        km_vec3 v = km_vec3_scale(km_vec3_make(x[0], x[1], x[2]), c3d->units_to_m);
        out->pos_m[i] = to_world ? km_mat3_apply(*to_world, v) : v;
        out->valid[i] = true;
    }
    return KM_OK;
}

/* ------------------------------------------------------------- calibration */

km_subject_calibration_config km_subject_calibration_config_default(void)
{
    km_subject_calibration_config c;
    c.height_m = 0.0;
    c.max_frames = 150;
    c.iterations = 10;
    c.prior_weight = 0.005;
    return c;
}

/* Scale of the person against the template: the median ratio of marker distances that do
 * not depend much on the pose (within a segment or across one joint near its rest). */
static double estimate_scale(const km_body_markerset *set, const km_body_frame *frames,
                             int count)
{
    static const char *const PAIRS[][2] = {
        {"LASI", "RASI"}, {"LPSI", "RPSI"}, {"LASI", "LPSI"}, {"RASI", "RPSI"},
        {"LFHD", "LBHD"}, {"RFHD", "RBHD"}, {"LFHD", "RFHD"}, {"LKNE", "LANK"},
        {"RKNE", "RANK"}, {"LHEE", "LTOE"}, {"RHEE", "RTOE"}, {"LSHO", "RSHO"},
        {"C7", "CLAV"},   {"CLAV", "STRN"}, {"LWRA", "LWRB"}, {"RWRA", "RWRB"},
        {"LASI", "LKNE"}, {"RASI", "RKNE"}, {"C7", "LASI"},   {"C7", "RASI"},
        {"LSHO", "LELB"}, {"RSHO", "RELB"}, {"LTHI", "LKNE"}, {"RTHI", "RKNE"}};
    km_subject tmpl;
    if (km_subject_default(set, SKELETON_TEMPLATE_HEIGHT_M, "t", &tmpl) != KM_OK)
        return 1.0;
    km_vec3 rest[KM_SKELETON_MAX_MARKERS];
    skeleton_rest_positions(&tmpl, km_vec3_make(0, 0, 0), NULL, rest);
    double ratios[64];
    int n = 0;
    for (size_t p = 0; p < sizeof PAIRS / sizeof PAIRS[0]; p++) {
        int a = km_body_markerset_find(set, PAIRS[p][0]);
        int b = km_body_markerset_find(set, PAIRS[p][1]);
        if (a < 0 || b < 0)
            continue;
        double sum = 0;
        int k = 0;
        for (int f = 0; f < count; f++)
            if (frames[f].valid[a] && frames[f].valid[b]) {
                sum += km_vec3_dist(frames[f].pos_m[a], frames[f].pos_m[b]);
                k++;
            }
        double t = km_vec3_dist(rest[a], rest[b]);
        if (k > 0 && t > 0.03)
            ratios[n++] = sum / k / t;
    }
    if (n == 0)
        return 1.0;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ratios[j - 1] > ratios[j]; j--) {
            double t = ratios[j];
            ratios[j] = ratios[j - 1];
            ratios[j - 1] = t;
        }
    double s = n % 2 ? ratios[n / 2] : 0.5 * (ratios[n / 2 - 1] + ratios[n / 2]);
    if (s < 0.4)
        s = 0.4;
    if (s > 1.4)
        s = 1.4;
    return s;
}

/* Dense Cholesky solve of an n x n SPD system (n a few hundred, calibration only). */
static km_status cholesky_solve(double *A, double *b, int n)
{
    for (int j = 0; j < n; j++) {
        double d = A[(size_t)j * n + j];
        for (int k = 0; k < j; k++)
            d -= A[(size_t)j * n + k] * A[(size_t)j * n + k];
        if (!(d > 1e-15))
            return km_error(KM_ERR_NUMERIC, "subject calibration: singular system");
        d = sqrt(d);
        A[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = A[(size_t)i * n + j];
            for (int k = 0; k < j; k++)
                v -= A[(size_t)i * n + k] * A[(size_t)j * n + k];
            A[(size_t)i * n + j] = v / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++)
            v -= A[(size_t)i * n + k] * b[k];
        b[i] = v / A[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = b[i];
        for (int k = i + 1; k < n; k++)
            v -= A[(size_t)k * n + i] * b[k];
        b[i] = v / A[(size_t)i * n + i];
    }
    return KM_OK;
}

/* One linear fit of bones and offsets for fixed segment rotations R[f][j]. */
static km_status fit_linear(km_subject *s, const km_subject *prior, const km_body_frame *frames,
                            int count, const km_mat3 (*R)[KM_JOINT_COUNT], double prior_w)
{
    const int M = s->markers.count;
    const int nb = 3 * (KM_JOINT_COUNT - 1);
    const int N = nb + 3 * M;
    double *H = calloc((size_t)N * N, sizeof *H);
    double *g = calloc((size_t)N, sizeof *g);
    double *abar = calloc((size_t)3 * N, sizeof *abar);
    /* A_i (3 x N) is stored as a list of 3x3 blocks: (column block, matrix). */
    typedef struct block {
        int col;
        km_mat3 m;
    } block;
    block *blocks = calloc((size_t)M * (KM_JOINT_COUNT + 1), sizeof *blocks);
    int *nblocks = calloc((size_t)M, sizeof *nblocks);
    if (!H || !g || !abar || !blocks || !nblocks) {
        free(H);
        free(g);
        free(abar);
        free(blocks);
        free(nblocks);
        return km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
    }
    for (int f = 0; f < count; f++) {
        const km_body_frame *fr = &frames[f];
        double wsum = 0;
        km_vec3 obar = {0, 0, 0};
        memset(abar, 0, sizeof(double) * 3 * (size_t)N);
        for (int i = 0; i < M; i++) {
            nblocks[i] = 0;
            if (!fr->valid[i])
                continue;
            const km_body_marker *m = &s->markers.markers[i];
            block *bl = blocks + (size_t)i * (KM_JOINT_COUNT + 1);
            for (int a = m->segment; a > 0; a = km_joint_parent(a)) {
                bl[nblocks[i]].col = 3 * (a - 1);
                bl[nblocks[i]++].m = R[f][km_joint_parent(a)];
            }
            bl[nblocks[i]].col = nb + 3 * i;
            bl[nblocks[i]++].m = R[f][m->segment];
            const double w = m->weight;
            wsum += w;
            obar = km_vec3_add(obar, km_vec3_scale(fr->pos_m[i], w));
            for (int k = 0; k < nblocks[i]; k++)
                for (int r = 0; r < 3; r++)
                    for (int c = 0; c < 3; c++)
                        abar[(size_t)r * N + bl[k].col + c] += w * bl[k].m.m[r * 3 + c];
            /* H += w A_i^T A_i, g += w A_i^T o_i */
            for (int k = 0; k < nblocks[i]; k++) {
                for (int l = 0; l < nblocks[i]; l++) {
                    km_mat3 prod = km_mat3_mul(km_mat3_transpose(bl[k].m), bl[l].m);
                    for (int r = 0; r < 3; r++)
                        for (int c = 0; c < 3; c++)
                            H[(size_t)(bl[k].col + r) * N + bl[l].col + c] +=
                                w * prod.m[r * 3 + c];
                }
                km_vec3 t = km_mat3_apply(km_mat3_transpose(bl[k].m), fr->pos_m[i]);
                g[bl[k].col + 0] += w * t.x;
                g[bl[k].col + 1] += w * t.y;
                g[bl[k].col + 2] += w * t.z;
            }
        }
        if (wsum <= 0)
            continue;
        /* minus (sum w) Abar^T Abar with Abar = (sum w A_i) / (sum w): the root eliminated */
        for (int r = 0; r < 3; r++) {
            const double *row = abar + (size_t)r * N;
            double ob = r == 0 ? obar.x : r == 1 ? obar.y : obar.z;
            for (int a = 0; a < N; a++) {
                if (row[a] == 0.0)
                    continue;
                double va = row[a] / wsum;
                for (int b = 0; b < N; b++)
                    if (row[b] != 0.0)
                        H[(size_t)a * N + b] -= va * row[b];
                g[a] -= va * ob;
            }
        }
    }
    /* prior towards the template */
    const double lam = prior_w * (count > 0 ? count : 1);
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        const double *t = &prior->bone_m[j].x;
        for (int c = 0; c < 3; c++) {
            int k = 3 * (j - 1) + c;
            H[(size_t)k * N + k] += lam;
            g[k] += lam * t[c];
        }
    }
    for (int i = 0; i < M; i++) {
        const double *t = &prior->markers.markers[i].offset_m.x;
        for (int c = 0; c < 3; c++) {
            int k = nb + 3 * i + c;
            H[(size_t)k * N + k] += lam;
            g[k] += lam * t[c];
        }
    }
    km_status st = cholesky_solve(H, g, N);
    if (st == KM_OK) {
        for (int j = 1; j < KM_JOINT_COUNT; j++)
            s->bone_m[j] = km_vec3_make(g[3 * (j - 1)], g[3 * (j - 1) + 1], g[3 * (j - 1) + 2]);
        for (int i = 0; i < M; i++)
            s->markers.markers[i].offset_m =
                km_vec3_make(g[nb + 3 * i], g[nb + 3 * i + 1], g[nb + 3 * i + 2]);
    }
    free(H);
    free(g);
    free(abar);
    free(blocks);
    free(nblocks);
    return st;
}

/* IK over all frames in order (warm start); rotations out; returns the RMS residual. */
static double solve_all(const km_subject *s, const km_body_frame *frames, int count,
                        km_mat3 (*R)[KM_JOINT_COUNT])
{
    km_ik_config cfg = km_ik_config_default();
    cfg.max_iterations = 20;
    cfg.boot_iterations = 100;
    km_status st;
    km_ik *ik = km_ik_create(s, &cfg, &st);
    if (!ik)
        return -1;
    double sum = 0;
    int n = 0;
    for (int f = 0; f < count; f++) {
        km_skeleton_pose pose;
        if (km_ik_solve(ik, &frames[f], &pose) == KM_OK) {
            sum += pose.residual_m * pose.residual_m * pose.markers_used;
            n += pose.markers_used;
        }
        for (int j = 0; j < KM_JOINT_COUNT; j++)
            R[f][j] = km_quat_to_mat3(pose.joint_rot[j]);
    }
    km_ik_destroy(ik);
    return n ? sqrt(sum / n) : -1;
}

km_status km_subject_calibrate(const km_body_markerset *set, const km_body_frame *frames,
                               int count, const km_subject_calibration_config *cfg_in,
                               const char *name, km_subject *out,
                               km_subject_calibration_report *report)
{
    if (!set || !frames || !out || count < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "subject calibration: no frames");
    km_subject_calibration_config cfg = cfg_in ? *cfg_in : km_subject_calibration_config_default();
    if (cfg.max_frames < 1)
        cfg.max_frames = 1;
    for (int f = 0; f < count; f++)
        if (frames[f].count != set->count)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "subject calibration: frame %d has %d markers, the set %d", f,
                            frames[f].count, set->count);
    int used = count < cfg.max_frames ? count : cfg.max_frames;
    km_body_frame *sel = malloc((size_t)used * sizeof *sel);
    km_mat3(*R)[KM_JOINT_COUNT] = malloc((size_t)used * sizeof *R);
    if (!sel || !R) {
        free(sel);
        free(R);
        return km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
    }
    for (int k = 0; k < used; k++)
        sel[k] = frames[(size_t)k * (size_t)count / (size_t)used];

    double height = cfg.height_m;
    if (!(height > 0))
        height = SKELETON_TEMPLATE_HEIGHT_M * estimate_scale(set, sel, used);
    km_subject prior;
    km_status st = km_subject_default(set, height, name, &prior);
    if (st != KM_OK) {
        free(sel);
        free(R);
        return st;
    }
    km_subject cur = prior;
    double rms0 = solve_all(&cur, sel, used, R);
    double rms = rms0;
    for (int it = 0; it < cfg.iterations && st == KM_OK; it++) {
        km_subject next = cur;
        st = fit_linear(&next, &prior, sel, used, (const km_mat3(*)[KM_JOINT_COUNT])R,
                        cfg.prior_weight);
        if (st != KM_OK)
            break;
        double r = solve_all(&next, sel, used, R);
        km_log(KM_LOG_DEBUG, MODULE, "calibration iteration %d: rms %.2f mm", it + 1, r * 1e3);
        if (r < 0)
            break;
        cur = next;
        rms = r;
    }
    free(sel);
    free(R);
    if (st != KM_OK)
        return st;
    *out = cur;
    if (report) {
        report->height_m = height;
        report->frames_used = used;
        report->rms_before_m = rms0;
        report->rms_after_m = rms;
    }
    return KM_OK;
}
