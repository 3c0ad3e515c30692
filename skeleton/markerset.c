/* Marker sets (include/kinema/skeleton.h "marker sets"): the default Plug-in Gait full-body
 * template and the marker set YAML file (docs/skeleton.md). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "skeleton_internal.h"

#define MODULE "skeleton"

typedef struct template_marker {
    const char *label;
    int segment;
    double x, y, z;
} template_marker;

/* Plug-in Gait full body. Offsets in the segment frame of the rest pose (T-pose, palms
 * down, facing +Z, left +X) for the 1.75 m template: head markers around the skull base,
 * torso markers on the chest segment, lateral markers (ELB, KNE, ANK) on the flexion axes
 * of their joints. Right-side markers mirror the left in x (RBAK has no left twin). */
static const template_marker PIG_LEFT_AND_CENTRE[] = {
    {"LFHD", KM_JOINT_HEAD, 0.055, 0.12, 0.09},
    {"RFHD", KM_JOINT_HEAD, -0.055, 0.12, 0.09},
    {"LBHD", KM_JOINT_HEAD, 0.06, 0.10, -0.08},
    {"RBHD", KM_JOINT_HEAD, -0.06, 0.10, -0.08},
    {"C7", KM_JOINT_CHEST, 0.0, 0.22, -0.09},
    {"T10", KM_JOINT_CHEST, 0.0, 0.05, -0.12},
    {"CLAV", KM_JOINT_CHEST, 0.0, 0.19, 0.07},
    {"STRN", KM_JOINT_CHEST, 0.0, 0.04, 0.11},
    {"RBAK", KM_JOINT_CHEST, -0.08, 0.12, -0.12},
    {"LSHO", KM_JOINT_LEFT_SHOULDER, 0.15, 0.05, -0.04},
    {"LUPA", KM_JOINT_LEFT_UPPER_ARM, 0.14, 0.03, -0.03},
    {"LELB", KM_JOINT_LEFT_UPPER_ARM, 0.28, 0.035, 0.0},
    {"LFRM", KM_JOINT_LEFT_LOWER_ARM, 0.12, 0.03, -0.02},
    {"LWRA", KM_JOINT_LEFT_LOWER_ARM, 0.25, 0.0, 0.03},
    {"LWRB", KM_JOINT_LEFT_LOWER_ARM, 0.25, 0.0, -0.03},
    {"LFIN", KM_JOINT_LEFT_HAND, 0.08, 0.015, -0.01},
    {"LASI", KM_JOINT_HIPS, 0.12, 0.0, 0.055},
    {"RASI", KM_JOINT_HIPS, -0.12, 0.0, 0.055},
    {"LPSI", KM_JOINT_HIPS, 0.045, 0.01, -0.105},
    {"RPSI", KM_JOINT_HIPS, -0.045, 0.01, -0.105},
    {"LTHI", KM_JOINT_LEFT_UPPER_LEG, 0.07, -0.22, 0.02},
    {"LKNE", KM_JOINT_LEFT_UPPER_LEG, 0.055, -0.42, 0.0},
    {"LTIB", KM_JOINT_LEFT_LOWER_LEG, 0.05, -0.20, 0.02},
    {"LANK", KM_JOINT_LEFT_LOWER_LEG, 0.045, -0.40, 0.0},
    {"LHEE", KM_JOINT_LEFT_FOOT, 0.0, -0.045, -0.07},
    {"LTOE", KM_JOINT_LEFT_FOOT, 0.0, -0.05, 0.14},
};

static int mirror_joint(int j)
{
    switch (j) {
    case KM_JOINT_LEFT_SHOULDER: return KM_JOINT_RIGHT_SHOULDER;
    case KM_JOINT_LEFT_UPPER_ARM: return KM_JOINT_RIGHT_UPPER_ARM;
    case KM_JOINT_LEFT_LOWER_ARM: return KM_JOINT_RIGHT_LOWER_ARM;
    case KM_JOINT_LEFT_HAND: return KM_JOINT_RIGHT_HAND;
    case KM_JOINT_LEFT_UPPER_LEG: return KM_JOINT_RIGHT_UPPER_LEG;
    case KM_JOINT_LEFT_LOWER_LEG: return KM_JOINT_RIGHT_LOWER_LEG;
    case KM_JOINT_LEFT_FOOT: return KM_JOINT_RIGHT_FOOT;
    case KM_JOINT_LEFT_TOES: return KM_JOINT_RIGHT_TOES;
    default: return j;
    }
}

static void add(km_body_markerset *s, const char *label, int seg, double x, double y, double z)
{
    km_body_marker *m = &s->markers[s->count++];
    snprintf(m->label, sizeof m->label, "%s", label);
    m->segment = seg;
    m->offset_m = km_vec3_make(x, y, z);
    m->weight = 1.0;
}

void km_body_markerset_default(km_body_markerset *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "PlugInGait-FullBody");
    const size_t n = sizeof PIG_LEFT_AND_CENTRE / sizeof PIG_LEFT_AND_CENTRE[0];
    /* Central and left markers in file order; each left limb marker followed later by its
     * right twin, keeping the conventional L-then-R grouping per limb. */
    for (size_t i = 0; i < n; i++) {
        const template_marker *t = &PIG_LEFT_AND_CENTRE[i];
        add(out, t->label, t->segment, t->x, t->y, t->z);
    }
    for (size_t i = 0; i < n; i++) {
        const template_marker *t = &PIG_LEFT_AND_CENTRE[i];
        if (t->label[0] != 'L' || mirror_joint(t->segment) == t->segment)
            continue;
        char label[KM_LABEL_MAX];
        snprintf(label, sizeof label, "R%s", t->label + 1);
        add(out, label, mirror_joint(t->segment), -t->x, t->y, t->z);
    }
}

int km_body_markerset_find(const km_body_markerset *set, const char *label)
{
    if (!set || !label)
        return -1;
    for (int i = 0; i < set->count; i++)
        if (!strcmp(set->markers[i].label, label))
            return i;
    return -1;
}

km_status km_body_markerset_validate(const km_body_markerset *set)
{
    if (!set)
        return km_error(KM_ERR_INVALID_ARGUMENT, "marker set: NULL");
    if (set->count < 3 || set->count > KM_SKELETON_MAX_MARKERS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "marker set '%s': %d markers (3..%d)",
                        set->name, set->count, KM_SKELETON_MAX_MARKERS);
    for (int i = 0; i < set->count; i++) {
        const km_body_marker *m = &set->markers[i];
        size_t len = strnlen(m->label, KM_LABEL_MAX);
        if (len == 0 || len >= KM_LABEL_MAX)
            return km_error(KM_ERR_INVALID_ARGUMENT, "marker set '%s': marker %d: empty label",
                            set->name, i);
        for (size_t k = 0; k < len; k++)
            if (m->label[k] == ',' || m->label[k] == ' ' || m->label[k] == '\t')
                return km_error(KM_ERR_INVALID_ARGUMENT,
                                "marker set '%s': label '%s' contains ',' or a space",
                                set->name, m->label);
        if (m->segment < 0 || m->segment >= KM_JOINT_COUNT)
            return km_error(KM_ERR_INVALID_ARGUMENT, "marker set '%s': %s: bad segment %d",
                            set->name, m->label, m->segment);
        if (!isfinite(m->offset_m.x) || !isfinite(m->offset_m.y) ||
            !isfinite(m->offset_m.z) || km_vec3_norm(m->offset_m) > 2.0)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "marker set '%s': %s: offset not finite or farther than 2 m",
                            set->name, m->label);
        if (!(m->weight > 0.0) || !isfinite(m->weight))
            return km_error(KM_ERR_INVALID_ARGUMENT, "marker set '%s': %s: weight must be > 0",
                            set->name, m->label);
        for (int k = 0; k < i; k++)
            if (!strcmp(set->markers[k].label, m->label))
                return km_error(KM_ERR_INVALID_ARGUMENT,
                                "marker set '%s': label '%s' appears twice", set->name,
                                m->label);
    }
    return KM_OK;
}

/* ------------------------------------------------------------------- files */

static const char *const SET_KEYS[] = {"marker_set", "markers", NULL};
static const char *const MARKER_KEYS[] = {"label", "segment", "offset", "weight", NULL};

static km_status at_line(const km_config *cfg, const char *path, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                    km_config_line(cfg, path), path, why);
}

/* Read the `markers` list at `path` into set (shared with the subject file). */
km_status skeleton_read_markers(const km_config *cfg, const char *path, km_body_markerset *set);
km_status skeleton_read_markers(const km_config *cfg, const char *path, km_body_markerset *set)
{
    if (km_config_type(cfg, path) != KM_CONFIG_SEQUENCE)
        return at_line(cfg, path, "expected a list of markers");
    size_t n = km_config_count(cfg, path);
    if (n > KM_SKELETON_MAX_MARKERS)
        return at_line(cfg, path, "more than 64 markers");
    set->count = 0;
    for (size_t i = 0; i < n; i++) {
        char p[160], sub[192], text[64];
        snprintf(p, sizeof p, "%s.%zu", path, i);
        if (km_config_type(cfg, p) != KM_CONFIG_MAPPING)
            return at_line(cfg, p, "expected {label, segment, offset, weight}");
        km_status st = km_config_check_keys(cfg, p, MARKER_KEYS);
        if (st != KM_OK)
            return st;
        km_body_marker *m = &set->markers[set->count];
        memset(m, 0, sizeof *m);
        snprintf(sub, sizeof sub, "%s.label", p);
        st = km_config_get_string(cfg, sub, "", m->label, sizeof m->label);
        if (st == KM_ERR_NOT_FOUND)
            return at_line(cfg, p, "missing 'label'");
        if (st != KM_OK)
            return st;
        snprintf(sub, sizeof sub, "%s.segment", p);
        st = km_config_get_string(cfg, sub, "", text, sizeof text);
        if (st == KM_ERR_NOT_FOUND)
            return at_line(cfg, p, "missing 'segment'");
        if (st != KM_OK)
            return st;
        m->segment = km_joint_from_name(text);
        if (m->segment < 0)
            return at_line(cfg, sub, "unknown segment (a HumanBodyBones name such as "
                                     "LeftUpperArm)");
        snprintf(sub, sizeof sub, "%s.offset", p);
        double v[3] = {0, 0, 0};
        size_t count = 0;
        if (km_config_has(cfg, sub)) {
            st = km_config_get_doubles(cfg, sub, v, 3, &count);
            if (st != KM_OK)
                return st;
            if (count != 3)
                return at_line(cfg, sub, "expected [x, y, z] in metres");
        }
        m->offset_m = km_vec3_make(v[0], v[1], v[2]);
        snprintf(sub, sizeof sub, "%s.weight", p);
        st = km_config_get_double(cfg, sub, 1.0, 1e-6, 1e6, &m->weight);
        if (st != KM_OK && st != KM_ERR_NOT_FOUND)
            return st;
        set->count++;
        /* per-marker checks now, so the error names this marker's line */
        for (int k = 0; k < set->count - 1; k++)
            if (!strcmp(set->markers[k].label, m->label))
                return at_line(cfg, p, "duplicate label");
        for (const char *c = m->label; *c; c++)
            if (*c == ',' || *c == ' ' || *c == '\t')
                return at_line(cfg, p, "label contains ',' or a space");
        if (!m->label[0])
            return at_line(cfg, p, "empty label");
        if (!(km_vec3_norm(m->offset_m) <= 2.0))
            return at_line(cfg, p, "offset farther than 2 m");
    }
    if (set->count < 3)
        return at_line(cfg, path, "at least 3 markers needed");
    return KM_OK;
}

static km_status parse_set(km_config *cfg, km_body_markerset *out)
{
    km_status st = km_config_check_keys(cfg, "", SET_KEYS);
    if (st != KM_OK)
        return st;
    st = km_config_get_string(cfg, "marker_set", "markers", out->name, sizeof out->name);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;
    if (!km_config_has(cfg, "markers"))
        return km_error(KM_ERR_PARSE, "%s:1: missing 'markers'", km_config_name(cfg));
    return skeleton_read_markers(cfg, "markers", out);
}

km_status km_body_markerset_parse(const char *text, size_t length, const char *name,
                                  km_body_markerset *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "marker set parse: NULL");
    memset(out, 0, sizeof *out);
    km_status st;
    km_config *cfg = km_config_parse(text, length, name ? name : "<memory>", &st);
    if (!cfg)
        return st;
    st = parse_set(cfg, out);
    km_config_destroy(cfg);
    return st;
}

km_status km_body_markerset_load(const char *path, km_body_markerset *out)
{
    if (!out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "marker set load: NULL");
    memset(out, 0, sizeof *out);
    km_status st;
    km_config *cfg = km_config_load(path, &st);
    if (!cfg)
        return st;
    st = parse_set(cfg, out);
    km_config_destroy(cfg);
    return st;
}

/* Shared with the subject file writer. */
void skeleton_write_markers(FILE *f, const km_body_markerset *set);
void skeleton_write_markers(FILE *f, const km_body_markerset *set)
{
    fprintf(f, "markers:\n");
    for (int i = 0; i < set->count; i++) {
        const km_body_marker *m = &set->markers[i];
        fprintf(f, "  - {label: \"%s\", segment: %s, offset: [%.17g, %.17g, %.17g], "
                   "weight: %.17g}\n",
                m->label, km_joint_name(m->segment), m->offset_m.x, m->offset_m.y,
                m->offset_m.z, m->weight);
    }
}

km_status km_body_markerset_save(const char *path, const km_body_markerset *set)
{
    km_status st = km_body_markerset_validate(set);
    if (st != KM_OK)
        return st;
    FILE *f = fopen(path, "w");
    if (!f)
        return km_error(KM_ERR_IO, "%s: cannot write", path);
    fprintf(f, "# Kinema marker set (docs/skeleton.md)\nmarker_set: \"%s\"\n", set->name);
    skeleton_write_markers(f, set);
    if (fclose(f) != 0)
        return km_error(KM_ERR_IO, "%s: write failed", path);
    return KM_OK;
}
