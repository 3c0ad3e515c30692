/* km_source: the vtable wrapper every capture backend (synthetic, replay, uvc, freenect)
 * sits behind. It checks arguments and the started/stopped state so backends need not, and
 * owns the backend's state (closed in km_source_destroy). A source is driven by one thread
 * at a time (the capture thread while it runs). */
#include <stdlib.h>
#include <string.h>

#include "kinema/capture.h"

struct km_source {
    const km_source_vtable *vtable;
    void *self;
    bool started;
};

km_source *km_source_create(const km_source_vtable *vtable, void *self, km_status *err)
{
    km_status st;
    if (!vtable || !vtable->start || !vtable->next_frame || !vtable->stop || !vtable->close ||
        !vtable->describe) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "source: incomplete backend vtable (%s)",
                      vtable && vtable->backend ? vtable->backend : "?");
        /* Ownership of self was given to us: close it when we can. */
        if (vtable && vtable->close && self)
            vtable->close(self);
        if (err)
            *err = st;
        return NULL;
    }
    km_source *source = calloc(1, sizeof *source);
    if (!source) {
        st = km_error(KM_ERR_NO_MEMORY, "source: no memory");
        vtable->close(self);
        if (err)
            *err = st;
        return NULL;
    }
    source->vtable = vtable;
    source->self = self;
    if (err)
        *err = KM_OK;
    return source;
}

void km_source_destroy(km_source *source)
{
    if (!source)
        return;
    if (source->started)
        km_source_stop(source);
    source->vtable->close(source->self);
    free(source);
}

km_status km_source_start(km_source *source)
{
    if (!source)
        return km_error(KM_ERR_INVALID_ARGUMENT, "source: NULL");
    if (source->started)
        return KM_OK;
    km_status st = source->vtable->start(source->self);
    if (st == KM_OK)
        source->started = true;
    return st;
}

km_status km_source_next_frame(km_source *source, km_frame *frame, uint64_t timeout_ns)
{
    if (!source || !frame)
        return km_error(KM_ERR_INVALID_ARGUMENT, "source: NULL source or frame");
    if (!source->started)
        return km_error(KM_ERR_INVALID_ARGUMENT, "source %s: next_frame before start",
                        source->vtable->backend ? source->vtable->backend : "?");
    return source->vtable->next_frame(source->self, frame, timeout_ns);
}

km_status km_source_stop(km_source *source)
{
    if (!source)
        return km_error(KM_ERR_INVALID_ARGUMENT, "source: NULL");
    if (!source->started)
        return KM_OK;
    source->started = false;
    return source->vtable->stop(source->self);
}

void km_source_describe(km_source *source, km_source_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof *info);
    info->camera = -1;
    if (!source)
        return;
    source->vtable->describe(source->self, info);
}

bool km_source_connected(km_source *source)
{
    return source && (!source->vtable->connected || source->vtable->connected(source->self));
}
