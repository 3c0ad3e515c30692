/* Private to the gesture stage: a small strict JSON reader (RFC 8259) that parses a whole
 * document into a flat array of nodes in document order, for the data-set readers. Offline
 * use only (it allocates). Strings stay raw in the source text; km_json_string decodes. */
#ifndef KINEMA_GESTURE_JSON_H
#define KINEMA_GESTURE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "kinema/core.h"

typedef enum km_json_type {
    KM_JSON_NULL,
    KM_JSON_FALSE,
    KM_JSON_TRUE,
    KM_JSON_NUMBER,
    KM_JSON_STRING,
    KM_JSON_ARRAY,
    KM_JSON_OBJECT
} km_json_type;

typedef struct km_json_node {
    km_json_type type;
    int line;              /* 1-based line where the value starts */
    size_t key_offset;     /* member of an object: raw key bytes (between the quotes) */
    size_t key_length;
    size_t string_offset;  /* KM_JSON_STRING: raw bytes between the quotes */
    size_t string_length;
    double number;
    size_t child_count;    /* arrays and objects; the first child is the next node */
    size_t next_sibling;   /* index of the next sibling, 0 = none */
} km_json_node;

typedef struct km_json_doc {
    const char *text;
    size_t length;
    km_json_node *nodes;   /* nodes[0] is the root */
    size_t count, capacity;
} km_json_doc;

/* KM_ERR_PARSE "name:line: why" on malformed input (including nesting deeper than 64 and
 * trailing garbage). Free with km_json_free even on failure. `text` must outlive the doc. */
km_status km_json_parse(km_json_doc *doc, const char *text, size_t length, const char *name);
void km_json_free(km_json_doc *doc);
/* Member `key` of object node `object`; 0 when absent or not an object (0 is the root and
 * never a member). */
size_t km_json_member(const km_json_doc *doc, size_t object, const char *key);
/* Decodes string node `index` into out (NUL-terminated); false when not a string, when it
 * holds a NUL or does not fit. */
bool km_json_string(const km_json_doc *doc, size_t index, char *out, size_t out_size);

#endif
