/* kinema export: an image stream of a recording as a PNG sequence or as one video file
 * (both through the OpenCV wrapper), MJPEG frames as the .jpg files they already are. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kinema/cv.h"
#include "kinema/kinema.h"
#include "kinema/recording.h"

static const char USAGE[] =
    "usage: kinema export REC.kmr --stream N (--png-dir DIR | --video FILE)\n"
    "                     [--fourcc CODE] [--fps F] [--range LO:HI|auto] [--no-fill]\n"
    "                     [--first K] [--count N]\n"
    "\n"
    "Write image stream N of a recording as DIR/frame_<sequence>.png (8-bit) or as one video\n"
    "FILE (.avi: MJPG, .mp4: mp4v, .mkv: FFV1 lossless; --fourcc picks another codec).\n"
    "gray8 as is; gray16 scaled so its lowest..highest value over the exported frames spans\n"
    "0..255 (--range LO:HI to fix it); depth16 scaled so 0..8191 mm spans it (0 = no reading\n"
    "stays black); yuyv as its luma; rgb24 in colour. mjpeg frames are written unchanged as\n"
    ".jpg, or decoded to grey for a video. A video runs at the stream's rate and repeats the\n"
    "previous frame over gaps in the recording, so its time matches the recording's\n"
    "(--no-fill: every frame once). Progress on stderr.\n"
    "\n"
    "options:\n"
    "  --stream N       stream id (kinema inspect lists them)\n"
    "  --png-dir DIR    output directory (created if missing)\n"
    "  --video FILE     output video (needs an OpenCV with video I/O, e.g. FFmpeg)\n"
    "  --fourcc CODE    video codec, four characters (MJPG, mp4v, FFV1, XVID, ...)\n"
    "  --fps F          video rate (default: the stream's rate, else its mean frame rate)\n"
    "  --range LO:HI    16-bit values LO..HI to 0..255; auto: the exported frames' extremes\n"
    "  --no-fill        video: no repeated frames over gaps\n"
    "  --first K        skip the first K frames of the stream\n"
    "  --count N        export at most N frames of the recording\n";

/* How 16-bit samples become 8-bit: (v - lo) * 255 / (hi - lo), clamped. */
typedef struct range16 {
    unsigned lo, hi;
} range16;

static uint8_t scale16(unsigned v, range16 r)
{
    if (v <= r.lo) return 0;
    if (v >= r.hi) return 255;
    return (uint8_t)(((v - r.lo) * 255u + (r.hi - r.lo) / 2) / (r.hi - r.lo));
}

/* Convert one frame to 8-bit grey (or BGR) in `out` (width x channels bytes a row); returns
 * channels. MJPEG frames are decoded to grey (-1 after printing why when that fails). */
static int to_8bit(const km_frame *f, uint8_t *out, range16 r)
{
    int w = f->width, h = f->height;
    if (f->format == KM_PIXEL_MJPEG) {
        if (km_cv_mjpeg_to_gray(f->data, f->size, out, w, h, w)) return -1;
        return 1;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *row = f->data + (size_t)y * (size_t)f->stride;
        uint8_t *o = out + (size_t)y * (size_t)w * (f->format == KM_PIXEL_RGB24 ? 3 : 1);
        for (int x = 0; x < w; x++) {
            switch (f->format) {
            case KM_PIXEL_GRAY8: o[x] = row[x]; break;
            case KM_PIXEL_GRAY16:
            case KM_PIXEL_DEPTH16:
                o[x] = scale16((unsigned)row[2 * x] | ((unsigned)row[2 * x + 1] << 8), r);
                break;
            case KM_PIXEL_YUYV: o[x] = row[2 * x]; break;
            case KM_PIXEL_RGB24:
                o[3 * x] = row[3 * x + 2];
                o[3 * x + 1] = row[3 * x + 1];
                o[3 * x + 2] = row[3 * x];
                break;
            default: break;
            }
        }
    }
    return f->format == KM_PIXEL_RGB24 ? 3 : 1;
}

/* The lowest and highest 16-bit sample of the frames to export (first pass for
 * --range auto); the iterator is rewound afterwards. */
static km_status find_range16(km_recording *r, int stream, long first, long count, range16 *out)
{
    unsigned lo = 65535, hi = 0;
    long index = 0, seen = 0;
    km_record rec;
    km_status st;
    while ((count < 0 || seen < count) &&
           (st = km_recording_next(r, stream, &rec)) != KM_ERR_END_OF_STREAM) {
        if (st) {
            if (strstr(km_last_error(), "cut off")) break;
            continue; /* a damaged record: the export pass reports it */
        }
        if (index++ < first) continue;
        km_frame f;
        if (km_record_decode_frame(r, &rec, &f)) continue;
        seen++;
        for (int y = 0; y < f.height; y++) {
            const uint8_t *row = f.data + (size_t)y * (size_t)f.stride;
            for (int x = 0; x < f.width; x++) {
                unsigned v = (unsigned)row[2 * x] | ((unsigned)row[2 * x + 1] << 8);
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        }
    }
    km_recording_rewind(r);
    if (hi <= lo) { /* empty or flat: keep values where they are */
        lo = 0;
        hi = hi > 0 ? hi : 65535;
    }
    out->lo = lo;
    out->hi = hi;
    return KM_OK;
}

static bool parse_range(const char *s, range16 *r, bool *automatic)
{
    if (strcmp(s, "auto") == 0) {
        *automatic = true;
        return true;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *colon = strchr(buf, ':');
    if (!colon) return false;
    *colon = '\0';
    long lo, hi;
    if (!cli_parse_long(buf, 0, 65534, &lo) || !cli_parse_long(colon + 1, 1, 65535, &hi) ||
        hi <= lo)
        return false;
    r->lo = (unsigned)lo;
    r->hi = (unsigned)hi;
    *automatic = false;
    return true;
}

int kinema_cmd_export(int argc, char **argv)
{
    const char *path = NULL, *dir = NULL, *video = NULL, *fourcc = NULL, *v;
    long stream = -1, first = 0, count = -1;
    double fps = 0;
    bool fill = true, range_given = false, range_auto = false;
    range16 range = {0, 65535};
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        }
        if (cli_option(argc, argv, &i, "--stream", &v)) {
            if (!v || !cli_parse_long(v, 0, KM_RECORDING_MAX_STREAMS - 1, &stream))
                return cli_usage_error("export", USAGE, "--stream: expected a stream id");
        } else if (cli_option(argc, argv, &i, "--png-dir", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            dir = v;
        } else if (cli_option(argc, argv, &i, "--video", &v)) {
            if (!v) return KINEMA_EXIT_USAGE;
            video = v;
        } else if (cli_option(argc, argv, &i, "--fourcc", &v)) {
            if (!v || strlen(v) != 4)
                return cli_usage_error("export", USAGE, "--fourcc: expected four characters");
            fourcc = v;
        } else if (cli_option(argc, argv, &i, "--fps", &v)) {
            if (!v || !cli_parse_double(v, 0.01, 10000, &fps))
                return cli_usage_error("export", USAGE, "--fps: expected a rate in Hz");
        } else if (cli_option(argc, argv, &i, "--range", &v)) {
            if (!v || !parse_range(v, &range, &range_auto))
                return cli_usage_error("export", USAGE,
                                       "--range: expected LO:HI (0..65535, LO < HI) or auto");
            range_given = true;
        } else if (strcmp(argv[i], "--no-fill") == 0) {
            fill = false;
            i++;
        } else if (cli_option(argc, argv, &i, "--first", &v)) {
            if (!v || !cli_parse_long(v, 0, 0x7fffffffL, &first))
                return cli_usage_error("export", USAGE, "--first: expected a count");
        } else if (cli_option(argc, argv, &i, "--count", &v)) {
            if (!v || !cli_parse_long(v, 0, 0x7fffffffL, &count))
                return cli_usage_error("export", USAGE, "--count: expected a count");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("export", USAGE, "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i++];
        } else {
            return cli_usage_error("export", USAGE, "one recording only ('%s')", argv[i]);
        }
    }
    if (!path || stream < 0 || (!dir && !video))
        return cli_usage_error("export", USAGE,
                               "need REC.kmr, --stream and --png-dir or --video");
    if (dir && video)
        return cli_usage_error("export", USAGE, "--png-dir or --video, not both");
    if (!video && (fourcc || fps > 0 || !fill))
        return cli_usage_error("export", USAGE, "--fourcc, --fps and --no-fill go with --video");
    if (video && !fourcc && !km_cv_video_default_fourcc(video))
        return cli_usage_error("export", USAGE, "--video %s: name it .avi, .mp4 or .mkv, or "
                               "give --fourcc", video);
    km_status st;
    km_recording *r = km_recording_open(path, &st);
    if (!r) {
        fprintf(stderr, "kinema export: %s\n", km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    const km_recording_stream *s = km_recording_stream_get(r, (int)stream);
    if (!s || s->kind != KM_RECORDING_STREAM_IMAGES) {
        fprintf(stderr, "kinema export: %s: stream %ld is not an image stream\n", path, stream);
        km_recording_close(r);
        return KINEMA_EXIT_FAILURE;
    }
    if (dir && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "kinema export: cannot create %s: %s\n", dir, strerror(errno));
        km_recording_close(r);
        return KINEMA_EXIT_FAILURE;
    }
    bool sixteen = s->format == KM_PIXEL_GRAY16 || s->format == KM_PIXEL_DEPTH16;
    if (sixteen && !range_given) {
        range_auto = s->format == KM_PIXEL_GRAY16;
        if (s->format == KM_PIXEL_DEPTH16) range = (range16){0, 8191};
    }
    if (sixteen && range_auto) find_range16(r, (int)stream, first, count, &range);
    if (sixteen)
        fprintf(stderr, "kinema export: 16-bit values %u..%u to 0..255\n", range.lo, range.hi);

    /* The frames this export covers, for the progress line. */
    long total = s->records > (uint64_t)first ? (long)(s->records - (uint64_t)first) : 0;
    if (count >= 0 && count < total) total = count;
    km_cv_video_writer *writer = NULL;
    double period_ns = 0;
    if (video) {
        if (fps <= 0) fps = s->rate_hz;
        if (fps <= 0 && s->records > 1 && s->last_time_ns > s->first_time_ns)
            fps = (double)(s->records - 1) * 1e9 / (double)(s->last_time_ns - s->first_time_ns);
        if (fps <= 0) fps = 30.0;
        period_ns = 1e9 / fps;
        writer = km_cv_video_writer_open(video, fourcc, fps, s->width, s->height,
                                         s->format == KM_PIXEL_RGB24, &st);
        if (!writer) {
            fprintf(stderr, "kinema export: %s\n", km_last_error());
            km_recording_close(r);
            return KINEMA_EXIT_FAILURE;
        }
        fprintf(stderr, "kinema export: %s: %.4s, %dx%d %s at %.3f fps\n", video,
                fourcc ? fourcc : km_cv_video_default_fourcc(video), s->width, s->height,
                s->format == KM_PIXEL_RGB24 ? "colour" : "grey", fps);
    }

    size_t img_bytes = (size_t)s->width * (size_t)s->height * 3;
    uint8_t *img = malloc(img_bytes);
    uint8_t *previous = writer ? malloc(img_bytes) : NULL; /* video: held over gaps */
    bool buffers = img && (previous || !writer);
    int rc = buffers ? KINEMA_EXIT_OK : KINEMA_EXIT_FAILURE;
    if (!buffers)
        fprintf(stderr, "kinema export: out of memory for %dx%d images\n", s->width, s->height);
    long index = 0, done = 0, repeated = 0;
    uint64_t last_time_ns = 0;
    bool have_previous = false;
    int channels = 1;
    km_record rec;
    bool progress_shown = false;
    while (buffers && (count < 0 || done < count) &&
           (st = km_recording_next(r, (int)stream, &rec)) != KM_ERR_END_OF_STREAM) {
        if (st) {
            /* A damaged record or the cut tail: say so and go on / stop. */
            fprintf(stderr, "%skinema export: %s\n", progress_shown ? "\n" : "", km_last_error());
            progress_shown = false;
            rc = KINEMA_EXIT_FAILURE;
            if (strstr(km_last_error(), "cut off")) break;
            continue;
        }
        if (index++ < first) continue;
        km_frame f;
        char file[4096];
        if ((st = km_record_decode_frame(r, &rec, &f))) {
            fprintf(stderr, "kinema export: %s\n", km_last_error());
            rc = KINEMA_EXIT_FAILURE;
            continue;
        }
        if (f.format != KM_PIXEL_MJPEG && (f.width > s->width || f.height > s->height)) {
            st = km_error(KM_ERR_FORMAT, "record at offset %llu: %dx%d larger than the stream",
                          (unsigned long long)rec.offset, f.width, f.height);
        } else if (writer && (f.width != s->width || f.height != s->height)) {
            st = km_error(KM_ERR_FORMAT, "record at offset %llu: %dx%d, the video is %dx%d",
                          (unsigned long long)rec.offset, f.width, f.height, s->width,
                          s->height);
        } else if (!writer && f.format == KM_PIXEL_MJPEG) {
            snprintf(file, sizeof file, "%s/frame_%06llu.jpg", dir, (unsigned long long)f.sequence);
            FILE *out = fopen(file, "wb");
            if (!out || fwrite(f.data, 1, f.size, out) != f.size) st = KM_ERR_IO;
            if (out && fclose(out) != 0) st = KM_ERR_IO;
            if (st) km_error(KM_ERR_IO, "%s: %s", file, strerror(errno));
        } else if ((channels = to_8bit(&f, img, range)) < 0) {
            st = KM_ERR_FORMAT;
        } else if (writer) {
            /* A gap in the recording (frames the camera or the recorder lost): hold the
             * previous picture for as long as it lasted. */
            if (fill && have_previous && f.time_ns > last_time_ns) {
                double periods = (double)(f.time_ns - last_time_ns) / period_ns;
                long extra = (long)(periods + 0.5) - 1;
                if (periods >= 1.5 && extra > 0) {
                    if (extra > 100000) extra = 100000; /* a broken time stamp: bounded */
                    repeated += extra;
                    for (long k = 0; k < extra && !st; k++)
                        st = km_cv_video_writer_write(writer, previous, s->width * channels);
                }
            }
            if (!st) st = km_cv_video_writer_write(writer, img, s->width * channels);
            last_time_ns = f.time_ns;
            have_previous = true;
            uint8_t *t = previous;
            previous = img;
            img = t;
        } else {
            snprintf(file, sizeof file, "%s/frame_%06llu.png", dir, (unsigned long long)f.sequence);
            st = km_cv_write_png(file, img, f.width, f.height, f.width * channels, channels);
        }
        if (st) {
            fprintf(stderr, "%skinema export: %s\n", progress_shown ? "\n" : "", km_last_error());
            rc = KINEMA_EXIT_FAILURE;
            break;
        }
        done++;
        if (done % 50 == 0 && isatty(STDERR_FILENO)) {
            fprintf(stderr, "\rkinema export: %ld of %ld frames (%.0f%%)", done, total,
                    total > 0 ? 100.0 * (double)done / (double)total : 100.0);
            progress_shown = true;
        } else if (done % 500 == 0) {
            fprintf(stderr, "kinema export: %ld of %ld frames\n", done, total);
        }
    }
    if (progress_shown) fputc('\n', stderr);
    if (writer) {
        long frames = km_cv_video_writer_frames(writer);
        if ((st = km_cv_video_writer_close(writer))) {
            fprintf(stderr, "kinema export: %s\n", km_last_error());
            rc = KINEMA_EXIT_FAILURE;
        }
        fprintf(stderr, "kinema export: %ld frames of stream %ld written to %s (%ld video "
                "frames, %ld repeated over gaps, %.2f s)\n", done, stream, video, frames,
                repeated, (double)frames / fps);
    } else {
        fprintf(stderr, "kinema export: %ld frames of stream %ld written to %s\n", done, stream,
                dir);
    }
    free(img);
    free(previous);
    km_recording_close(r);
    return rc;
}
