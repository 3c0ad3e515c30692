/* Rigid body definition files (YAML, docs/formats.md "Rigid body definitions") and the
 * rigid.csv writer. The YAML is read through core's km_config, which gives every value its
 * line, so each error names file:line. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kinema/tracking.h"

static const char *const TOP_KEYS[] = {"rigid_bodies", NULL};
static const char *const BODY_KEYS[] = {"name", "id", "marker_diameter_m", "markers", NULL};

/* Turn a non-parse failure of a getter into a parse error at the value's line. */
static km_status at_line(const km_config *cfg, const char *path, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                    km_config_line(cfg, path), path, why);
}

static km_status read_body(const km_config *cfg, int k, km_rigid_definition *def)
{
    char path[96], sub[128];
    snprintf(path, sizeof path, "rigid_bodies.%d", k);
    memset(def, 0, sizeof *def);
    if (km_config_type(cfg, path) != KM_CONFIG_MAPPING)
        return at_line(cfg, path, "expected a mapping with name, id and markers");
    km_status st = km_config_check_keys(cfg, path, BODY_KEYS);
    if (st != KM_OK)
        return st;

    snprintf(sub, sizeof sub, "%s.name", path);
    st = km_config_get_string(cfg, sub, "", def->name, sizeof def->name);
    if (st == KM_ERR_NOT_FOUND)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: missing 'name'", km_config_name(cfg),
                        km_config_line(cfg, path), path);
    if (st != KM_OK)
        return st;

    snprintf(sub, sizeof sub, "%s.id", path);
    long id;
    st = km_config_get_int(cfg, sub, 0, 0, (long)UINT32_MAX - 1, &id);
    if (st == KM_ERR_NOT_FOUND)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: missing 'id'", km_config_name(cfg),
                        km_config_line(cfg, path), path);
    if (st != KM_OK)
        return st;
    def->id = (uint32_t)id;

    snprintf(sub, sizeof sub, "%s.marker_diameter_m", path);
    st = km_config_get_double(cfg, sub, 0.0, 0.0, 0.999, &def->marker_diameter_m);
    if (st != KM_OK && st != KM_ERR_NOT_FOUND)
        return st;

    snprintf(sub, sizeof sub, "%s.markers", path);
    if (km_config_type(cfg, sub) == KM_CONFIG_ABSENT)
        return km_error(KM_ERR_PARSE, "%s:%d: %s: missing 'markers'", km_config_name(cfg),
                        km_config_line(cfg, path), path);
    if (km_config_type(cfg, sub) != KM_CONFIG_SEQUENCE)
        return at_line(cfg, sub, "expected a list of [x, y, z] marker positions");
    const size_t n = km_config_count(cfg, sub);
    if (n < 3 || n > KM_RIGID_MAX_MARKERS) {
        char why[80];
        snprintf(why, sizeof why, "%zu markers, need 3..%d", n, KM_RIGID_MAX_MARKERS);
        return at_line(cfg, sub, why);
    }
    def->marker_count = (int)n;
    for (size_t i = 0; i < n; i++) {
        char item[160];
        snprintf(item, sizeof item, "%s.%zu", sub, i);
        double xyz[3];
        size_t got = 0;
        st = km_config_get_doubles(cfg, item, xyz, 3, &got);
        if (st != KM_OK)
            return st;
        if (got != 3)
            return at_line(cfg, item, "expected [x, y, z] (3 numbers, metres)");
        def->markers_m[i] = km_vec3_make(xyz[0], xyz[1], xyz[2]);
    }
    if (km_rigid_definition_validate(def) != KM_OK) {
        char why[KM_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", km_last_error());
        return at_line(cfg, path, why);
    }
    return KM_OK;
}

static km_status read_all(const km_config *cfg, km_rigid_definition *out, int capacity,
                          int *count)
{
    km_status st = km_config_check_keys(cfg, "", TOP_KEYS);
    if (st != KM_OK)
        return st;
    const km_config_kind kind = km_config_type(cfg, "rigid_bodies");
    if (kind == KM_CONFIG_ABSENT)
        return km_error(KM_ERR_PARSE, "%s:1: missing 'rigid_bodies' (a list of definitions)",
                        km_config_name(cfg));
    if (kind != KM_CONFIG_SEQUENCE)
        return at_line(cfg, "rigid_bodies", "expected a list of rigid body definitions");
    const size_t n = km_config_count(cfg, "rigid_bodies");
    if (n == 0)
        return at_line(cfg, "rigid_bodies", "empty list");
    if (n > (size_t)capacity) {
        char why[80];
        snprintf(why, sizeof why, "%zu definitions, at most %d can be read", n, capacity);
        return at_line(cfg, "rigid_bodies", why);
    }
    for (size_t k = 0; k < n; k++) {
        if ((st = read_body(cfg, (int)k, &out[k])) != KM_OK)
            return st;
        for (size_t j = 0; j < k; j++) {
            char path[64];
            snprintf(path, sizeof path, "rigid_bodies.%zu", k);
            if (strcmp(out[j].name, out[k].name) == 0)
                return at_line(cfg, path, "duplicate name");
            if (out[j].id == out[k].id)
                return at_line(cfg, path, "duplicate id");
        }
    }
    *count = (int)n;
    return KM_OK;
}

km_status km_rigid_definitions_parse(const char *text, size_t length, const char *name,
                                     km_rigid_definition *out, int capacity, int *count)
{
    if (!text || !out || capacity < 1 || !count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid definitions: bad argument");
    *count = 0;
    km_status st;
    km_config *cfg = km_config_parse(text, length, name ? name : "(memory)", &st);
    if (!cfg)
        return st;
    st = read_all(cfg, out, capacity, count);
    km_config_destroy(cfg);
    return st;
}

km_status km_rigid_definitions_load(const char *path, km_rigid_definition *out, int capacity,
                                    int *count)
{
    if (!path || !out || capacity < 1 || !count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid definitions: bad argument");
    *count = 0;
    km_status st;
    km_config *cfg = km_config_load(path, &st);
    if (!cfg)
        return st;
    st = read_all(cfg, out, capacity, count);
    km_config_destroy(cfg);
    return st;
}

km_status km_rigid_definitions_save(const char *path, const km_rigid_definition *defs,
                                    int count)
{
    if (!path || !defs || count < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "rigid definitions: nothing to save");
    for (int k = 0; k < count; k++)
        if (km_rigid_definition_validate(&defs[k]) != KM_OK)
            return KM_ERR_INVALID_ARGUMENT; /* message set by validate */
    FILE *f = fopen(path, "w");
    if (!f)
        return km_error(KM_ERR_IO, "%s: cannot write", path);
    fprintf(f, "# Kinema rigid body definitions (docs/formats.md). Marker positions in the\n"
               "# body frame, metres.\n"
               "rigid_bodies:\n");
    for (int k = 0; k < count; k++) {
        const km_rigid_definition *d = &defs[k];
        /* single-quoted YAML scalar: only ' needs escaping (doubled) */
        fprintf(f, "  - name: '");
        for (const char *c = d->name; *c; c++)
            fputs(*c == '\'' ? "''" : (char[2]){*c, 0}, f);
        fprintf(f, "'\n    id: %" PRIu32 "\n", d->id);
        if (d->marker_diameter_m > 0.0)
            fprintf(f, "    marker_diameter_m: %.10g\n", d->marker_diameter_m);
        fprintf(f, "    markers:\n");
        for (int i = 0; i < d->marker_count; i++)
            fprintf(f, "      - [%.10g, %.10g, %.10g]\n", d->markers_m[i].x, d->markers_m[i].y,
                    d->markers_m[i].z);
    }
    const bool ok = !ferror(f);
    if (fclose(f) != 0 || !ok)
        return km_error(KM_ERR_IO, "%s: write failed", path);
    return KM_OK;
}

/* ---------------------------------------------------------------- rigid.csv */

void km_rigid_csv_write_header(FILE *f)
{
    fprintf(f, "frame,time_ns,rigid_id,name,x,y,z,qx,qy,qz,qw,error_m,tracked\n");
}

void km_rigid_csv_write(FILE *f, uint64_t frame, uint64_t time_ns,
                        const km_rigid_definition *defs, const km_rigid_pose *poses, int count)
{
    for (int k = 0; k < count; k++) {
        const km_rigid_pose *p = &poses[k];
        const km_rigid_definition *d = &defs[p->definition];
        fprintf(f,
                "%" PRIu64 ",%" PRIu64 ",%" PRIu32 ",%s,%.6f,%.6f,%.6f,%.7f,%.7f,%.7f,%.7f,"
                "%.6f,%d\n",
                frame, time_ns, p->id, d->name, p->pos_m.x, p->pos_m.y, p->pos_m.z, p->rot.x,
                p->rot.y, p->rot.z, p->rot.w, p->error_m, p->tracked ? 1 : 0);
    }
}
