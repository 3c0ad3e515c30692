/* Optional config fields (config_fields.h): the one place the pipeline's readers turn
 * "absent" into "keep the default". */
#include "config_fields.h"

km_status km_field_int(const km_config *cfg, const char *path, long min, long max, int *field)
{
    long v;
    km_status st = km_config_get_int(cfg, path, *field, min, max, &v);
    if (st == KM_OK) *field = (int)v;
    return st == KM_ERR_NOT_FOUND ? KM_OK : st;
}

km_status km_field_double(const km_config *cfg, const char *path, double min, double max,
                          double *field)
{
    double v;
    km_status st = km_config_get_double(cfg, path, *field, min, max, &v);
    if (st == KM_OK) *field = v;
    return st == KM_ERR_NOT_FOUND ? KM_OK : st;
}

km_status km_field_bool(const km_config *cfg, const char *path, bool *field)
{
    bool v;
    km_status st = km_config_get_bool(cfg, path, *field, &v);
    if (st == KM_OK) *field = v;
    return st == KM_ERR_NOT_FOUND ? KM_OK : st;
}

km_status km_field_string(const km_config *cfg, const char *path, char *field, size_t size)
{
    km_status st = km_config_get_string(cfg, path, field, field, size);
    return st == KM_ERR_NOT_FOUND ? KM_OK : st;
}
