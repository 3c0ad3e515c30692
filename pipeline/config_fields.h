/* Optional config fields of the daemon's sections (pipeline/config_fields.c): each reads
 * `path` over *field with range checks; an absent key keeps *field (the default) and is not
 * an error; a bad value is KM_ERR_PARSE naming file:line (km_config_get_*). Internal to the
 * pipeline library. */
#ifndef KINEMA_PIPELINE_CONFIG_FIELDS_H
#define KINEMA_PIPELINE_CONFIG_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "kinema/core.h"

km_status km_field_int(const km_config *cfg, const char *path, long min, long max, int *field);
km_status km_field_double(const km_config *cfg, const char *path, double min, double max,
                          double *field);
km_status km_field_bool(const km_config *cfg, const char *path, bool *field);
km_status km_field_string(const km_config *cfg, const char *path, char *field, size_t size);

#endif
