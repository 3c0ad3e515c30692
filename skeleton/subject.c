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
    c.iterations = 4;
    c.refine_iterations = 20;
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

/* Adapt the scaled template to the person's limb lengths, as Plug-in Gait does from its
 * lateral markers: the distance between a marker by a limb's proximal joint and markers by
 * its distal joint (median over the take) minus the same distance in the template is added
 * to the bone, and to the offsets of the markers riding next to the distal joint. The
 * calibration's prior is this adapted template, so what the take cannot observe (a wrist
 * that never flexes) is still near the markers' evidence. */
static void adapt_template(const km_body_frame *frames, int count, km_subject *s)
{
    static const struct {
        int joint;          /* the bone spanned: its length is from its parent to it */
        const char *a, *b1, *b2;
    } SPANS[] = {
        {KM_JOINT_LEFT_LOWER_ARM, "LSHO", "LELB", NULL},
        {KM_JOINT_LEFT_HAND, "LELB", "LWRA", "LWRB"},
        {KM_JOINT_LEFT_FOOT, "LKNE", "LANK", NULL},
        {KM_JOINT_LEFT_LOWER_LEG, "LASI", "LKNE", NULL},
        {KM_JOINT_RIGHT_LOWER_ARM, "RSHO", "RELB", NULL},
        {KM_JOINT_RIGHT_HAND, "RELB", "RWRA", "RWRB"},
        {KM_JOINT_RIGHT_FOOT, "RKNE", "RANK", NULL},
        {KM_JOINT_RIGHT_LOWER_LEG, "RASI", "RKNE", NULL},
    };
    km_vec3 rest_joint[KM_JOINT_COUNT], rest_marker[KM_SKELETON_MAX_MARKERS];
    skeleton_rest_positions(s, km_vec3_make(0, 0, 0), rest_joint, rest_marker);
    double *d = malloc(sizeof(double) * (size_t)count);
    if (!d)
        return;
    for (size_t k = 0; k < sizeof SPANS / sizeof SPANS[0]; k++) {
        int a = km_body_markerset_find(&s->markers, SPANS[k].a);
        int b[2] = {km_body_markerset_find(&s->markers, SPANS[k].b1),
                    SPANS[k].b2 ? km_body_markerset_find(&s->markers, SPANS[k].b2) : -1};
        if (a < 0 || b[0] < 0)
            continue;
        int n = 0;
        double tmpl = 0;
        int nb = b[1] >= 0 ? 2 : 1;
        for (int q = 0; q < nb; q++)
            tmpl += km_vec3_dist(rest_marker[a], rest_marker[b[q]]) / nb;
        for (int f = 0; f < count; f++) {
            if (!frames[f].valid[a] || !frames[f].valid[b[0]] ||
                (nb == 2 && !frames[f].valid[b[1]]))
                continue;
            double v = 0;
            for (int q = 0; q < nb; q++)
                v += km_vec3_dist(frames[f].pos_m[a], frames[f].pos_m[b[q]]) / nb;
            d[n++] = v;
        }
        if (n < 1)
            continue;
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
                double t = d[j];
                d[j] = d[j - 1];
                d[j - 1] = t;
            }
        double delta = d[n / 2] - tmpl;
        const int J = SPANS[k].joint;
        double len = km_vec3_norm(s->bone_m[J]);
        if (len < 1e-6 || fabs(delta) > 0.3 * len)
            continue; /* implausible: keep the template */
        km_vec3 dir = km_vec3_scale(s->bone_m[J], 1.0 / len);
        km_vec3 shift = km_vec3_scale(dir, delta);
        s->bone_m[J] = km_vec3_add(s->bone_m[J], shift);
        /* markers of the parent segment riding next to the distal joint move with it */
        const int seg = km_joint_parent(J);
        for (int i = 0; i < s->markers.count; i++) {
            km_body_marker *m = &s->markers.markers[i];
            if (m->segment == seg &&
                km_vec3_dist(rest_marker[i], rest_joint[J]) <
                    km_vec3_dist(rest_marker[i], rest_joint[seg]))
                m->offset_m = km_vec3_add(m->offset_m, shift);
        }
    }
    free(d);
}

/* Subject parameters as a vector: bones 1..20 then marker offsets. */
static void subject_to_vec(const km_subject *s, double *v)
{
    for (int j = 1; j < KM_JOINT_COUNT; j++) {
        v[3 * (j - 1)] = s->bone_m[j].x;
        v[3 * (j - 1) + 1] = s->bone_m[j].y;
        v[3 * (j - 1) + 2] = s->bone_m[j].z;
    }
    const int nb = 3 * (KM_JOINT_COUNT - 1);
    for (int i = 0; i < s->markers.count; i++) {
        v[nb + 3 * i] = s->markers.markers[i].offset_m.x;
        v[nb + 3 * i + 1] = s->markers.markers[i].offset_m.y;
        v[nb + 3 * i + 2] = s->markers.markers[i].offset_m.z;
    }
}

static void vec_to_subject(const double *v, km_subject *s)
{
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        s->bone_m[j] = km_vec3_make(v[3 * (j - 1)], v[3 * (j - 1) + 1], v[3 * (j - 1) + 2]);
    const int nb = 3 * (KM_JOINT_COUNT - 1);
    for (int i = 0; i < s->markers.count; i++)
        s->markers.markers[i].offset_m =
            km_vec3_make(v[nb + 3 * i], v[nb + 3 * i + 1], v[nb + 3 * i + 2]);
}

/* The prior towards the (adapted) template: lam per coordinate, but limb bones may change
 * their length much more easily than their direction (the rest pose stays a T-pose, which
 * the joint limits and the boot hypotheses are defined against). Block of parameter block k
 * (bones 1..20 then markers), 3x3 row-major. */
static bool limb_bone(int j)
{
    switch (j) {
    case KM_JOINT_LEFT_LOWER_ARM: case KM_JOINT_LEFT_HAND:
    case KM_JOINT_RIGHT_LOWER_ARM: case KM_JOINT_RIGHT_HAND:
    case KM_JOINT_LEFT_LOWER_LEG: case KM_JOINT_LEFT_FOOT: case KM_JOINT_LEFT_TOES:
    case KM_JOINT_RIGHT_LOWER_LEG: case KM_JOINT_RIGHT_FOOT: case KM_JOINT_RIGHT_TOES:
        return true;
    default:
        return false;
    }
}

static void prior_block(const km_subject *prior, int k, double lam, double *P)
{
    memset(P, 0, sizeof(double) * 9);
    P[0] = P[4] = P[8] = lam;
    if (k >= KM_JOINT_COUNT - 1 || !limb_bone(k + 1))
        return;
    km_vec3 d = km_vec3_normalize(prior->bone_m[k + 1]);
    const double dv[3] = {d.x, d.y, d.z};
    const double stiff = 50.0 * lam;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            P[r * 3 + c] = lam * dv[r] * dv[c] + stiff * ((r == c) - dv[r] * dv[c]);
}

/* cost += (x-p)^T P (x-p); grad (may be NULL) = P (x-p), over all N parameters. */
static double prior_eval(const km_subject *prior, double lam, const double *x, const double *p,
                         int N, double *grad)
{
    double c = 0;
    for (int k = 0; 3 * k < N; k++) {
        double P[9];
        prior_block(prior, k, lam, P);
        const double e[3] = {x[3 * k] - p[3 * k], x[3 * k + 1] - p[3 * k + 1],
                             x[3 * k + 2] - p[3 * k + 2]};
        for (int r = 0; r < 3; r++) {
            double v = P[r * 3] * e[0] + P[r * 3 + 1] * e[1] + P[r * 3 + 2] * e[2];
            c += e[r] * v;
            if (grad)
                grad[3 * k + r] = v;
        }
    }
    return c;
}

/* Dense Cholesky factorisation in place (lower triangle), n a few hundred (calibration
 * only). */
static km_status cholesky_factor(double *A, int n)
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
    return KM_OK;
}

static void cholesky_back(const double *L, double *b, int n)
{
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++)
            v -= L[(size_t)i * n + k] * b[k];
        b[i] = v / L[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = b[i];
        for (int k = i + 1; k < n; k++)
            v -= L[(size_t)k * n + i] * b[k];
        b[i] = v / L[(size_t)i * n + i];
    }
}

static km_status cholesky_solve(double *A, double *b, int n)
{
    km_status st = cholesky_factor(A, n);
    if (st == KM_OK)
        cholesky_back(A, b, n);
    return st;
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
    {
        double *pv = malloc(sizeof(double) * (size_t)N);
        if (!pv) {
            free(H);
            free(g);
            free(abar);
            free(blocks);
            free(nblocks);
            return km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
        }
        subject_to_vec(prior, pv);
        for (int k = 0; 3 * k < N; k++) {
            double P[9];
            prior_block(prior, k, lam, P);
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) {
                    H[(size_t)(3 * k + r) * N + 3 * k + c] += P[r * 3 + c];
                    g[3 * k + r] += P[r * 3 + c] * pv[3 * k + c];
                }
        }
        free(pv);
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

/* ------------------------------------------------ joint refinement (bundle) */

/* Levenberg-Marquardt over all frames' poses and the subject together (the poses eliminated
 * per frame by their Schur complement, as in bundle adjustment): converges where the
 * alternation only creeps. Starts from `cur` and the poses in states; updates both. */
static km_status refine_joint(km_subject *cur, const km_subject *prior, const km_body_frame *fr,
                              int count, pose_state *states, double prior_w, int iterations,
                              double *rms_out)
{
    km_status st;
    km_ik_config icfg = km_ik_config_default();
    km_ik *ik = km_ik_create(cur, &icfg, &st);
    if (!ik)
        return st;
    const int M = cur->markers.count, n = skeleton_ik_dof(ik);
    const int nb = 3 * (KM_JOINT_COUNT - 1), N = nb + 3 * M;
    double *J = malloc(sizeof(double) * 3 * (size_t)M * (size_t)n);
    double *r = malloc(sizeof(double) * 3 * (size_t)M);
    double *Lff = malloc(sizeof(double) * (size_t)count * (size_t)n * (size_t)n);
    double *Hfs = malloc(sizeof(double) * (size_t)count * (size_t)n * (size_t)N);
    double *gf = malloc(sizeof(double) * (size_t)count * (size_t)n);
    double *S = malloc(sizeof(double) * (size_t)N * (size_t)N);
    double *S2 = malloc(sizeof(double) * (size_t)N * (size_t)N);
    double *b = malloc(sizeof(double) * (size_t)N);
    double *X = malloc(sizeof(double) * (size_t)n * (size_t)N);
    double *y = malloc(sizeof(double) * (size_t)n);
    double *sv = malloc(sizeof(double) * (size_t)N);
    double *pv = malloc(sizeof(double) * (size_t)N);
    pose_state *trial = malloc(sizeof *trial * (size_t)count);
    if (!J || !r || !Lff || !Hfs || !gf || !S || !S2 || !b || !X || !y || !sv || !pv || !trial) {
        st = km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
        goto done;
    }
    subject_to_vec(prior, pv);
    const double lam_p = prior_w * count;
    double lambda = 1e-3;
    /* total cost of the current subject and poses */
    double cost_now = 0;
    subject_to_vec(cur, sv);
    for (int f = 0; f < count; f++) {
        skeleton_ik_set_state(ik, &states[f]);
        cost_now += skeleton_ik_cost(ik, &fr[f]);
    }
    cost_now += prior_eval(prior, lam_p, sv, pv, N, NULL);
    st = KM_OK;
    for (int it = 0; it < iterations; it++) {
        memset(S, 0, sizeof(double) * (size_t)N * (size_t)N);
        memset(b, 0, sizeof(double) * (size_t)N);
        for (int f = 0; f < count; f++) {
            km_mat3 R[KM_JOINT_COUNT];
            km_vec3 P[KM_JOINT_COUNT];
            skeleton_ik_set_state(ik, &states[f]);
            skeleton_ik_linearize(ik, &fr[f], J, r, R, P);
            double *L = Lff + (size_t)f * n * n;
            double *Hf = Hfs + (size_t)f * n * N;
            double *g = gf + (size_t)f * n;
            memset(L, 0, sizeof(double) * (size_t)n * n);
            memset(Hf, 0, sizeof(double) * (size_t)n * N);
            memset(g, 0, sizeof(double) * (size_t)n);
            for (int i = 0; i < M; i++) {
                if (!fr[f].valid[i])
                    continue;
                const km_body_marker *m = &cur->markers.markers[i];
                const double w = m->weight;
                const double *Ji = J + (size_t)i * 3 * n;
                /* subject blocks of marker i */
                int cols[KM_JOINT_COUNT + 1];
                km_mat3 blk[KM_JOINT_COUNT + 1];
                int nbk = 0;
                for (int a = m->segment; a > 0; a = km_joint_parent(a)) {
                    cols[nbk] = 3 * (a - 1);
                    blk[nbk++] = R[km_joint_parent(a)];
                }
                cols[nbk] = nb + 3 * i;
                blk[nbk++] = R[m->segment];
                for (int a = 0; a < n; a++) {
                    double ja[3] = {Ji[a], Ji[n + a], Ji[2 * n + a]};
                    if (ja[0] == 0 && ja[1] == 0 && ja[2] == 0)
                        continue;
                    g[a] += w * (ja[0] * r[3 * i] + ja[1] * r[3 * i + 1] + ja[2] * r[3 * i + 2]);
                    for (int c = 0; c <= a; c++)
                        L[(size_t)a * n + c] += w * (ja[0] * Ji[c] + ja[1] * Ji[n + c] +
                                                     ja[2] * Ji[2 * n + c]);
                    for (int k = 0; k < nbk; k++)
                        for (int cc = 0; cc < 3; cc++)
                            Hf[(size_t)a * N + cols[k] + cc] +=
                                w * (ja[0] * blk[k].m[cc] + ja[1] * blk[k].m[3 + cc] +
                                     ja[2] * blk[k].m[6 + cc]);
                }
                for (int k = 0; k < nbk; k++) {
                    for (int l = 0; l < nbk; l++) {
                        km_mat3 prod = km_mat3_mul(km_mat3_transpose(blk[k]), blk[l]);
                        for (int rr = 0; rr < 3; rr++)
                            for (int cc = 0; cc < 3; cc++)
                                S[(size_t)(cols[k] + rr) * N + cols[l] + cc] +=
                                    w * prod.m[rr * 3 + cc];
                    }
                    km_vec3 t = km_mat3_apply(km_mat3_transpose(blk[k]),
                                              km_vec3_make(r[3 * i], r[3 * i + 1], r[3 * i + 2]));
                    b[cols[k]] += w * t.x;
                    b[cols[k] + 1] += w * t.y;
                    b[cols[k] + 2] += w * t.z;
                }
            }
            /* pose block: symmetric, damped */
            for (int a = 0; a < n; a++) {
                for (int c = a + 1; c < n; c++)
                    L[(size_t)a * n + c] = L[(size_t)c * n + a];
                L[(size_t)a * n + a] += 1e-4 + lambda * L[(size_t)a * n + a];
            }
            if (cholesky_factor(L, n) != KM_OK)
                continue;
            /* S -= Hf^T L^-1 Hf ; b -= Hf^T L^-1 g */
            memcpy(X, Hf, sizeof(double) * (size_t)n * N);
            for (int c = 0; c < N; c++) {
                for (int a = 0; a < n; a++)
                    y[a] = X[(size_t)a * N + c];
                cholesky_back(L, y, n);
                for (int a = 0; a < n; a++)
                    X[(size_t)a * N + c] = y[a];
            }
            memcpy(y, g, sizeof(double) * (size_t)n);
            cholesky_back(L, y, n);
            for (int a = 0; a < n; a++) {
                const double *ha = Hf + (size_t)a * N;
                const double *xa = X + (size_t)a * N;
                for (int c = 0; c < N; c++) {
                    if (ha[c] == 0.0)
                        continue;
                    double *Sc = S + (size_t)c * N;
                    for (int d = 0; d <= c; d++)
                        Sc[d] -= ha[c] * xa[d];
                    b[c] -= ha[c] * y[a];
                }
            }
        }
        /* prior and damping; S lower triangle holds the Schur complement */
        bool improved = false;
        for (int attempt = 0; attempt < 5 && !improved; attempt++) {
            for (int c = 0; c < N; c++) {
                for (int d = 0; d <= c; d++)
                    S2[(size_t)c * N + d] = S[(size_t)c * N + d];
                S2[(size_t)c * N + c] += lambda * S[(size_t)c * N + c] + 1e-9;
            }
            for (int k = 0; 3 * k < N; k++) {
                double P[9];
                prior_block(prior, k, lam_p, P);
                for (int rr = 0; rr < 3; rr++)
                    for (int cc = 0; cc <= rr; cc++)
                        S2[(size_t)(3 * k + rr) * N + 3 * k + cc] += P[rr * 3 + cc];
            }
            double *ds = malloc(sizeof(double) * (size_t)N);
            if (!ds) {
                st = km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
                goto done;
            }
            prior_eval(prior, lam_p, sv, pv, N, ds);
            for (int c = 0; c < N; c++)
                ds[c] = b[c] - ds[c];
            if (cholesky_solve(S2, ds, N) != KM_OK) {
                free(ds);
                lambda *= 10;
                continue;
            }
            /* new subject, new poses */
            double *nv = malloc(sizeof(double) * (size_t)N);
            if (!nv) {
                free(ds);
                st = km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
                goto done;
            }
            for (int c = 0; c < N; c++)
                nv[c] = sv[c] + ds[c];
            km_subject next = *cur;
            vec_to_subject(nv, &next);
            km_ik_set_subject(ik, &next);
            double cost_new = prior_eval(prior, lam_p, nv, pv, N, NULL);
            double *dtheta = malloc(sizeof(double) * (size_t)n);
            for (int f = 0; f < count && dtheta; f++) {
                const double *L = Lff + (size_t)f * n * n;
                const double *Hf = Hfs + (size_t)f * n * N;
                for (int a = 0; a < n; a++) {
                    double v = gf[(size_t)f * n + a];
                    for (int c = 0; c < N; c++)
                        v -= Hf[(size_t)a * N + c] * ds[c];
                    dtheta[a] = v;
                }
                cholesky_back(L, dtheta, n);
                skeleton_ik_set_state(ik, &states[f]);
                skeleton_ik_step(ik, dtheta);
                skeleton_ik_get_state(ik, &trial[f]);
                cost_new += skeleton_ik_cost(ik, &fr[f]);
            }
            free(dtheta);
            free(ds);
            if (cost_new < cost_now) {
                improved = true;
                bool converged = cost_now - cost_new < 1e-6 * cost_now;
                cost_now = cost_new;
                memcpy(sv, nv, sizeof(double) * (size_t)N);
                *cur = next;
                memcpy(states, trial, sizeof *trial * (size_t)count);
                lambda = lambda / 3 > 1e-7 ? lambda / 3 : 1e-7;
                if (converged)
                    it = iterations;
            } else {
                km_ik_set_subject(ik, cur);
                lambda *= 5;
            }
            free(nv);
        }
        if (!improved)
            break;
        km_log(KM_LOG_DEBUG, MODULE, "joint calibration iteration %d: cost %g", it + 1, cost_now);
    }
    if (rms_out) {
        double sum = 0;
        int k = 0;
        for (int f = 0; f < count; f++) {
            skeleton_ik_set_state(ik, &states[f]);
            sum += skeleton_ik_cost(ik, &fr[f]);
            for (int i = 0; i < M; i++)
                k += fr[f].valid[i];
        }
        *rms_out = k ? sqrt(sum / k) : 0;
    }
done:
    km_ik_destroy(ik);
    free(J);
    free(r);
    free(Lff);
    free(Hfs);
    free(gf);
    free(S);
    free(S2);
    free(b);
    free(X);
    free(y);
    free(sv);
    free(pv);
    free(trial);
    return st;
}

/* IK over all frames in order (warm start); rotations out; returns the RMS residual. */
static double solve_all(const km_subject *s, const km_body_frame *frames, int count,
                        km_mat3 (*R)[KM_JOINT_COUNT], pose_state *states)
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
        if (states)
            skeleton_ik_get_state(ik, &states[f]);
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
    adapt_template(sel, used, &prior);
    km_subject cur = prior;
    double rms0 = solve_all(&cur, sel, used, R, NULL);
    double rms = rms0;
    for (int it = 0; it < cfg.iterations && st == KM_OK; it++) {
        km_subject next = cur;
        st = fit_linear(&next, &prior, sel, used, (const km_mat3(*)[KM_JOINT_COUNT])R,
                        cfg.prior_weight);
        if (st != KM_OK)
            break;
        double r = solve_all(&next, sel, used, R, NULL);
        km_log(KM_LOG_DEBUG, MODULE, "calibration iteration %d: rms %.2f mm", it + 1, r * 1e3);
        if (r < 0)
            break;
        cur = next;
        rms = r;
    }
    if (st == KM_OK && cfg.refine_iterations > 0) {
        pose_state *states = malloc(sizeof *states * (size_t)used);
        if (!states) {
            st = km_error(KM_ERR_NO_MEMORY, "subject calibration: out of memory");
        } else {
            solve_all(&cur, sel, used, R, states);
            double r = rms;
            km_subject refined = cur;
            km_status rs = refine_joint(&refined, &prior, sel, used, states, cfg.prior_weight,
                                        cfg.refine_iterations, &r);
            if (rs == KM_OK) {
                cur = refined;
                rms = solve_all(&cur, sel, used, R, NULL);
            } else {
                km_log(KM_LOG_WARN, MODULE, "calibration refinement failed (%s): keeping the "
                       "alternating fit", km_last_error());
            }
            free(states);
        }
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
