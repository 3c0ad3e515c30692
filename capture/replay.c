/* The replay backend of km_source: one image stream of a recording, frame by frame, read
 * straight from the file into the caller's pool frame (km_recording_read_frame: one pread,
 * CRC checked in place, no allocation per frame).
 *
 * Time: with KM_REPLAY_TIME_SHIFT a frame recorded at t is stamped t - base + start, where
 * base is the first data record of the whole recording (not of this stream) so that several
 * replayed cameras keep their mutual alignment; arrival keeps its recorded delay after the
 * exposure. With KM_REPLAY_TIME_ORIGINAL the recorded stamps are kept. Pacing (realtime)
 * sleeps until start + (t - base), i.e. the recorded intervals, whatever the time mode.
 * Looping: lap n adds n * (span + one mean period) to the time and n * records to the
 * sequence, so both keep increasing as a live camera's would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/recording.h"

typedef struct replay_source {
    km_recording *rec;
    km_recording_stream stream;   /* copy of the description */
    km_replay_config cfg;
    uint64_t base_ns;             /* first data record of the recording */
    uint64_t start_ns;            /* where base lands (SHIFT) / pacing origin */
    size_t *records;              /* record numbers of this stream, file order */
    size_t record_count;
    size_t next;                  /* position in records[] */
    uint64_t lap;
    uint64_t lap_time_ns;         /* span + one mean period */
    size_t max_pixels;
} replay_source;

km_replay_config km_replay_config_default(void)
{
    km_replay_config c;
    memset(&c, 0, sizeof c);
    c.realtime = true;
    c.loop = false;
    c.time = KM_REPLAY_TIME_SHIFT;
    c.start_time_ns = 0;
    return c;
}

static km_status replay_start(void *self)
{
    replay_source *s = self;
    uint64_t now = km_time_now_ns();
    s->start_ns = s->cfg.start_time_ns ? s->cfg.start_time_ns : now;
    s->next = 0;
    s->lap = 0;
    return KM_OK;
}

static km_status replay_next_frame(void *self, km_frame *frame, uint64_t timeout_ns)
{
    replay_source *s = self;
    if (s->next >= s->record_count) {
        if (!s->cfg.loop || s->record_count == 0) return KM_ERR_END_OF_STREAM;
        s->next = 0;
        s->lap++;
    }
    size_t index = s->records[s->next];
    km_record entry;
    km_status st = km_recording_peek(s->rec, index, &entry);
    if (st) return st;
    /* Timing from the index first, so a paced source sleeps before it reads. */
    uint64_t recorded_ns = entry.time_ns;
    uint64_t rel_ns = (recorded_ns >= s->base_ns ? recorded_ns - s->base_ns : 0) +
                      s->lap * s->lap_time_ns;
    if (s->cfg.realtime) {
        uint64_t due = s->start_ns + rel_ns;
        uint64_t now = km_time_now_ns();
        if (due > now && due - now > timeout_ns) {
            km_time_sleep_until_ns(now + timeout_ns);
            return KM_ERR_AGAIN;
        }
        if (due > now) km_time_sleep_until_ns(due);
    }
    st = km_recording_read_frame(s->rec, index, frame);
    if (st != KM_OK) {
        /* A damaged record: skip it (the capture thread counts the error). */
        if (st == KM_ERR_FORMAT) s->next++;
        return st;
    }
    uint64_t delay_ns = frame->arrival_ns > recorded_ns ? frame->arrival_ns - recorded_ns : 0;
    if (s->cfg.time == KM_REPLAY_TIME_SHIFT)
        frame->time_ns = s->start_ns + rel_ns;
    else
        frame->time_ns = recorded_ns + s->lap * s->lap_time_ns;
    frame->arrival_ns = s->cfg.realtime ? km_time_now_ns() : frame->time_ns + delay_ns;
    frame->sequence += s->lap * s->record_count;
    frame->camera = s->stream.camera < 0 ? 0 : s->stream.camera;
    s->next++;
    return KM_OK;
}

static km_status replay_stop(void *self)
{
    (void)self;
    return KM_OK;
}

static void replay_close(void *self)
{
    replay_source *s = self;
    if (!s) return;
    km_recording_close(s->rec);
    free(s->records);
    free(s);
}

static void replay_describe(void *self, km_source_info *info)
{
    replay_source *s = self;
    snprintf(info->backend, sizeof info->backend, "replay");
    snprintf(info->name, sizeof info->name, "%s", s->stream.name);
    snprintf(info->serial, sizeof info->serial, "%s", s->stream.serial);
    info->camera = s->stream.camera < 0 ? 0 : s->stream.camera;
    info->width = s->stream.width;
    info->height = s->stream.height;
    info->format = s->stream.format;
    info->rate_hz = s->stream.rate_hz;
    info->max_frame_bytes = s->max_pixels;
}

static const km_source_vtable replay_vtable = {
    .backend = "replay",
    .start = replay_start,
    .next_frame = replay_next_frame,
    .stop = replay_stop,
    .close = replay_close,
    .describe = replay_describe,
};

km_source *km_replay_source_create(const char *path, int stream, const km_replay_config *cfg,
                                   km_status *err)
{
    km_status st = KM_OK;
    replay_source *s = calloc(1, sizeof *s);
    if (!s) {
        st = km_error(KM_ERR_NO_MEMORY, "replay: no memory");
        goto fail;
    }
    s->cfg = cfg ? *cfg : km_replay_config_default();
    s->rec = km_recording_open(path, &st);
    if (!s->rec) goto fail;
    const km_recording_stream *desc = km_recording_stream_get(s->rec, stream);
    if (!desc || desc->kind != KM_RECORDING_STREAM_IMAGES) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "%s: stream %d is not an image stream", path,
                      stream);
        goto fail;
    }
    s->stream = *desc;
    km_recording_info info;
    km_recording_get_info(s->rec, &info);
    s->base_ns = info.first_time_ns;
    s->records = malloc((desc->records ? desc->records : 1) * sizeof *s->records);
    if (!s->records) {
        st = km_error(KM_ERR_NO_MEMORY, "replay: no memory for %llu records",
                      (unsigned long long)desc->records);
        goto fail;
    }
    /* The record numbers of this stream, and the largest image (sizes the pool): from the
     * index, no file read. */
    size_t n = 0;
    size_t total = km_recording_record_count(s->rec);
    for (size_t i = 0; i < total && n < desc->records; i++) {
        km_record r;
        if (km_recording_peek(s->rec, i, &r) || r.stream != stream) continue;
        s->records[n++] = i;
        size_t pixels = r.payload_bytes > 24 ? r.payload_bytes - 24 : 0;
        if (pixels > s->max_pixels) s->max_pixels = pixels;
    }
    if (info.truncated)
        km_log(KM_LOG_WARN, "replay", "%s: recording cut off (%s): replaying its %zu complete "
               "frames of stream %d", path, info.cut_reason, n, stream);
    st = KM_OK;
    s->record_count = n;
    if (n == 0) km_log(KM_LOG_WARN, "replay", "%s: stream %d has no records", path, stream);
    if (s->max_pixels == 0)
        s->max_pixels = (size_t)desc->width * (size_t)desc->height * 2;
    uint64_t span = desc->last_time_ns - desc->first_time_ns;
    uint64_t period = n > 1 ? span / (n - 1)
                            : (desc->rate_hz > 0 ? (uint64_t)(1e9 / desc->rate_hz) : 1000000ull);
    s->lap_time_ns = span + period;
    return km_source_create(&replay_vtable, s, err);
fail:
    replay_close(s);
    if (err) *err = st ? st : KM_ERR_INTERNAL;
    return NULL;
}

km_status km_replay_sources_create(const char *path, const km_replay_config *cfg,
                                   km_source **sources, int capacity, int *count)
{
    if (!sources || !count || capacity < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "replay: NULL argument");
    *count = 0;
    km_status st;
    km_recording *rec = km_recording_open(path, &st);
    if (!rec) return st;
    km_replay_config c = cfg ? *cfg : km_replay_config_default();
    /* One start for all cameras, a little ahead so every capture thread is up before the
     * first frame is due (as the pipeline does for synthetic sources). */
    if (c.start_time_ns == 0) c.start_time_ns = km_time_now_ns() + 20000000ull;
    st = KM_OK;
    for (int i = 0; i < km_recording_stream_count(rec); i++) {
        if (km_recording_stream_get(rec, i)->kind != KM_RECORDING_STREAM_IMAGES) continue;
        if (*count >= capacity) {
            st = km_error(KM_ERR_CAPACITY, "%s: more image streams than %d sources", path,
                          capacity);
            break;
        }
        km_source *src = km_replay_source_create(path, i, &c, &st);
        if (!src) break;
        sources[(*count)++] = src;
    }
    km_recording_close(rec);
    if (st == KM_OK && *count == 0)
        st = km_error(KM_ERR_NOT_FOUND, "%s: no image stream to replay", path);
    if (st) {
        for (int i = 0; i < *count; i++) km_source_destroy(sources[i]);
        *count = 0;
    }
    return st;
}
