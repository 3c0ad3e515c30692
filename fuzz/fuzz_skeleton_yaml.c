/* Fuzz target: the marker set and subject files (skeleton/markerset.c, subject.c) on
 * arbitrary bytes: no crash, KM_ERR_PARSE with a message, or a set/subject that validates and
 * that an IK solver accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/skeleton.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static km_body_markerset set;
    km_status st = km_body_markerset_parse((const char *)data, size, "fuzz.yaml", &set);
    if (st != KM_OK) {
        if (st != KM_ERR_PARSE || km_last_error()[0] == '\0')
            abort();
    } else if (km_body_markerset_validate(&set) != KM_OK) {
        abort();
    }
    static km_subject subject;
    st = km_subject_parse((const char *)data, size, "fuzz.yaml", &subject);
    if (st != KM_OK) {
        if (st != KM_ERR_PARSE || km_last_error()[0] == '\0')
            abort();
        return 0;
    }
    km_ik *ik = km_ik_create(&subject, NULL, &st);
    if (!ik)
        abort();
    km_ik_destroy(ik);
    return 0;
}
