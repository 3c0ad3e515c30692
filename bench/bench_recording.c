/* bench_recording: what the recording format costs.
 *  1. Recording throughput (MB/s): km_recorder writing 1280x1024 8-bit frames (record headers,
 *     CRC-32 of every byte, 4 MiB buffered writes, index and fsync at close) beside a plain
 *     write() of the same pixel bytes, one call per frame, to the same file system, fsync at
 *     the end too. Ratio = recorder / plain (1.0 = free).
 *  2. Replay delivery per frame: the replay km_source's next_frame (index lookup, pread into
 *     the caller's frame, CRC check) beside a memcpy of the same frame from memory. The file
 *     is in the page cache (just written), so this is the format's CPU overhead, not the disk.
 * Directory: $KINEMA_BENCH_DIR (default /tmp). Frames: $KINEMA_BENCH_FRAMES (default 300). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinema/recording.h"
#include "bench_help.h"

#define W 1280
#define H 1024

static double now_s(void) { return (double)km_time_now_ns() / 1e9; }

enum { DISTINCT = 8 };

/* Seconds to record `frames` frames with km_recorder (close = index + fsync); < 0 on error. */
static double run_recorder(const char *path, const uint8_t *images, size_t bytes, int frames)
{
    double t0 = now_s();
    km_status st;
    km_recorder *w = km_recorder_create(path, NULL, &st);
    km_recording_stream d;
    memset(&d, 0, sizeof d);
    d.kind = KM_RECORDING_STREAM_IMAGES;
    d.width = W;
    d.height = H;
    d.format = KM_PIXEL_GRAY8;
    d.rate_hz = 120;
    int id;
    if (!w || km_recorder_add_stream(w, &d, &id)) goto fail;
    for (int k = 0; k < frames; k++) {
        km_frame f = {.time_ns = 1000000000ull + (uint64_t)k * 8333333u, .sequence = (uint64_t)k,
                      .width = W, .height = H, .stride = W, .format = KM_PIXEL_GRAY8,
                      .data = (uint8_t *)images + (size_t)(k % DISTINCT) * bytes, .size = bytes};
        if (km_recorder_write_frame(w, id, &f)) goto fail;
    }
    if (km_recorder_close(w)) {
        w = NULL;
        goto fail;
    }
    return now_s() - t0;
fail:
    fprintf(stderr, "bench_recording: %s\n", km_last_error());
    km_recorder_close(w);
    return -1;
}

/* Seconds to write the same pixel bytes with one write() per frame and fsync at the end. */
static double run_plain(const char *path, const uint8_t *images, size_t bytes, int frames)
{
    double t0 = now_s();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int k = 0; k < frames && fd >= 0; k++) {
        const uint8_t *p = images + (size_t)(k % DISTINCT) * bytes;
        size_t done = 0;
        while (done < bytes) {
            ssize_t n = write(fd, p + done, bytes - done);
            if (n <= 0) {
                perror("write");
                close(fd);
                return -1;
            }
            done += (size_t)n;
        }
    }
    if (fd < 0 || fsync(fd) != 0 || close(fd) != 0) {
        perror(path);
        return -1;
    }
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    bench_help(argc, argv,
               "usage: bench_recording   (KINEMA_BENCH_DIR, default /tmp; KINEMA_BENCH_FRAMES, default 300)\n\nRecording throughput beside a plain write() of the same bytes, and replay per frame beside a\nmemcpy of the frame.\n");
    km_log_set_level(KM_LOG_WARN);
    const char *dir = getenv("KINEMA_BENCH_DIR") ? getenv("KINEMA_BENCH_DIR") : "/tmp";
    int frames = getenv("KINEMA_BENCH_FRAMES") ? atoi(getenv("KINEMA_BENCH_FRAMES")) : 300;
    if (frames < 10) frames = 10;
    char rec_path[512], raw_path[512];
    snprintf(rec_path, sizeof rec_path, "%s/bench_recording_%d.kmr", dir, (int)getpid());
    snprintf(raw_path, sizeof raw_path, "%s/bench_recording_%d.raw", dir, (int)getpid());
    const size_t bytes = (size_t)W * H;
    /* A few distinct frames with sensor-like content (noise), reused round robin. */
    uint8_t *images = malloc(DISTINCT * bytes), *dst = malloc(bytes);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < DISTINCT * bytes; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        images[i] = (uint8_t)(x >> 56) & 0x3f;
    }
    const double mb = (double)frames * (double)bytes / 1e6;
    printf("bench_recording: %d frames of %dx%d gray8 (%.0f MB) in %s\n", frames, W, H, mb, dir);

    /* Alternate which one runs first (the other's dirty pages may still be written back),
     * best of 4 each. */
    double best_rec = 1e9, best_raw = 1e9;
    for (int rep = 0; rep < 4; rep++) {
        for (int which = 0; which < 2; which++) {
            bool recorder = (which == 0) == (rep % 2 == 0);
            double t = recorder ? run_recorder(rec_path, images, bytes, frames)
                                : run_plain(raw_path, images, bytes, frames);
            if (t < 0) return 1;
            if (recorder && t < best_rec) best_rec = t;
            if (!recorder && t < best_raw) best_raw = t;
            if (!recorder) unlink(raw_path);
        }
    }
    printf("record throughput:  kinema recorder %8.0f MB/s | plain write() %8.0f MB/s | "
           "ratio %.2f (best of 4, fsync at end)\n", mb / best_rec, mb / best_raw,
           best_raw / best_rec);

    /* Replay per-frame delivery vs memcpy of the frame. */
    km_replay_config rc = km_replay_config_default();
    rc.realtime = false;
    km_status st;
    double best_replay = 1e9, best_copy = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        km_source *src = km_replay_source_create(rec_path, 0, &rc, &st);
        if (!src || km_source_start(src)) {
            fprintf(stderr, "bench_recording: %s\n", km_last_error());
            return 1;
        }
        double t0 = now_s();
        int n = 0;
        for (;;) {
            km_frame f;
            memset(&f, 0, sizeof f);
            f.data = dst;
            f.capacity = bytes;
            st = km_source_next_frame(src, &f, 0);
            if (st == KM_ERR_END_OF_STREAM) break;
            if (st) { fprintf(stderr, "bench_recording: %s\n", km_last_error()); return 1; }
            n++;
        }
        double t_replay = (now_s() - t0) / n;
        km_source_destroy(src);
        t0 = now_s();
        for (int k = 0; k < frames; k++) {
            memcpy(dst, images + (size_t)(k % DISTINCT) * bytes, bytes);
            __asm__ __volatile__("" : : "r"(dst) : "memory");
        }
        double t_copy = (now_s() - t0) / frames;
        if (t_replay < best_replay) best_replay = t_replay;
        if (t_copy < best_copy) best_copy = t_copy;
    }
    printf("replay per frame:   replay source %8.1f us | memcpy of the frame %8.1f us | "
           "ratio %.2f (overhead %.1f us/frame, page cache)\n", best_replay * 1e6,
           best_copy * 1e6, best_replay / best_copy, (best_replay - best_copy) * 1e6);
    unlink(rec_path);
    free(images);
    free(dst);
    return 0;
}
