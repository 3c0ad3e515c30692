/* Fuzz target: km_config_parse on arbitrary bytes, then every getter on whatever loaded.
 * Any input must give a config or an error status, never a crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const km_config *cfg, const char *path)
{
    long l;
    double d, v[8];
    bool b;
    char s[32];
    size_t n;
    km_config_has(cfg, path);
    km_config_get_int(cfg, path, 0, -1000, 1000, &l);
    km_config_get_double(cfg, path, 0, -1e9, 1e9, &d);
    km_config_get_bool(cfg, path, false, &b);
    km_config_get_string(cfg, path, "", s, sizeof s);
    km_config_get_doubles(cfg, path, v, 8, &n);
    if (n > 8)
        abort();
    km_config_count(cfg, path);
    km_config_type(cfg, path);
    km_config_line(cfg, path);
    static const char *const known[] = {"sources", "type", "data", "rows", NULL};
    km_config_check_keys(cfg, path, known);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_status st = KM_OK;
    km_config *cfg = km_config_parse((const char *)data, size, "fuzz.yaml", &st);
    if (cfg == NULL) {
        if (st == KM_OK)
            abort(); /* failure must say why */
        return 0;
    }
    if (st != KM_OK)
        abort();
    exercise(cfg, "");
    exercise(cfg, "sources.0.type");
    /* Walk two levels of whatever keys the input has, plus sequence indices. */
    for (size_t i = 0; i < 16; i++) {
        const char *key = km_config_key(cfg, "", i);
        if (key == NULL)
            break;
        char path[160];
        snprintf(path, sizeof path, "%.60s", key);
        exercise(cfg, path);
        for (size_t j = 0; j < 4; j++) {
            const char *sub = km_config_key(cfg, path, j);
            char child[160];
            if (sub != NULL)
                snprintf(child, sizeof child, "%.60s.%.60s", path, sub);
            else
                snprintf(child, sizeof child, "%.60s.%zu", path, j);
            exercise(cfg, child);
        }
    }
    km_config_destroy(cfg);
    return 0;
}
