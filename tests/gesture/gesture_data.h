/* Test helpers of the gesture suite: locating and loading the real data sets. */
#ifndef KINEMA_TESTS_GESTURE_DATA_H
#define KINEMA_TESTS_GESTURE_DATA_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kinema/gesture.h"

/* KINEMA_DATA, else KINEMA_DATA_DEFAULT (set by tests/meson.build); NULL when neither names
 * an existing directory. */
static inline const char *gesture_data_root(void)
{
    const char *names[2] = {"KINEMA_DATA", "KINEMA_DATA_DEFAULT"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        struct stat sb;
        if (v && *v && stat(v, &sb) == 0 && S_ISDIR(sb.st_mode))
            return v;
    }
    return NULL;
}

typedef enum gesture_file_kind { GESTURE_FILE_XML, GESTURE_FILE_JSON } gesture_file_kind;

static inline int gesture_name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Loads every *.xml / *.json file of `dir` (sorted by name) into `set`. Returns the number of
 * files read, -1 when the directory is missing, -2 on the first reader error (message in
 * km_last_error()). */
static inline int gesture_load_dir(km_gesture_set *set, const char *dir, gesture_file_kind kind,
                                   const char *path_key, double t_to_ns)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, gesture_name_cmp);
    if (n < 0)
        return -1;
    int loaded = 0;
    const char *ext = kind == GESTURE_FILE_XML ? ".xml" : ".json";
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        size_t len = strlen(name), elen = strlen(ext);
        if (loaded >= 0 && len > elen && strcmp(name + len - elen, ext) == 0) {
            char path[8192];
            km_status st = snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path
                               ? km_error(KM_ERR_INVALID_ARGUMENT, "path too long")
                           : kind == GESTURE_FILE_XML
                               ? km_gesture_load_dollar1_xml(set, path)
                               : km_gesture_load_unified_json(set, path, path_key, t_to_ns);
            if (st) {
                fprintf(stderr, "load %s: %s\n", path, km_last_error());
                loaded = -2;
            } else {
                loaded++;
            }
        }
        free(list[i]);
    }
    free(list);
    return loaded;
}

#endif
