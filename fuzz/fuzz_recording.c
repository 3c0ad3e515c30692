/* Fuzz target: the recording reader (capture/recording.c) over bytes in memory: open (index
 * or scan), every stream and the rig, iterate and decode every record (images into a frame
 * and straight into a caller's buffer, observation sets), verify, seek. Must never crash or
 * read out of bounds, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/recording.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    km_log_set_level(KM_LOG_ERROR);
    km_status st;
    km_recording *r = km_recording_open_memory(data, size, "fuzz", &st);
    if (!r) return 0;
    km_recording_info info;
    km_recording_get_info(r, &info);
    for (int i = 0; i < km_recording_stream_count(r); i++) {
        const km_recording_stream *s = km_recording_stream_get(r, i);
        if (!s || s->id != i) abort();
    }
    const km_rig *rig = km_recording_rig(r);
    if (rig && (rig->camera_count < 1 || rig->camera_count > KM_MAX_CAMERAS)) abort();
    static uint8_t pixels[1 << 16];
    km_observation items[64];
    km_record rec;
    /* Each call moves past one record (good or bad); one more reports the end or the cut. */
    for (uint64_t i = 0; i <= info.records; i++) {
        st = km_recording_next(r, -1, &rec);
        if (i == info.records && st == KM_OK) abort(); /* more records than the index said */
        if (st) continue;
        if (rec.kind == KM_RECORDING_STREAM_IMAGES) {
            km_frame f;
            /* Touch both ends of the decoded pixels (ASan checks the bounds). */
            volatile uint8_t sink;
            if (km_record_decode_frame(r, &rec, &f) == KM_OK && f.size)
                sink = (uint8_t)(f.data[0] ^ f.data[f.size - 1]);
            (void)sink;
            km_frame g;
            memset(&g, 0, sizeof g);
            g.data = pixels;
            g.capacity = sizeof pixels;
            km_recording_read_frame(r, rec.index, &g);
        } else if (rec.kind == KM_RECORDING_STREAM_OBSERVATIONS) {
            km_observation_set obs = {0, 0, 0, 64, items};
            km_record_decode_observations(&rec, &obs);
        }
    }
    km_recording_check chk;
    km_recording_verify(r, &chk, NULL, NULL);
    km_recording_seek_time(r, -1, info.first_time_ns + 1);
    km_recording_seek_sequence(r, 0, 1);
    if (km_recording_next(r, 0, &rec) == KM_OK && rec.stream != 0) abort();
    km_recording_close(r);
    return 0;
}
