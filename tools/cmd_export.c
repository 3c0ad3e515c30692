/* kinema export: an image stream of a recording as a PNG sequence (through the OpenCV
 * wrapper), MJPEG frames as the .jpg files they already are. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kinema/cv.h"
#include "kinema/kinema.h"
#include "kinema/recording.h"

static const char USAGE[] =
    "usage: kinema export REC.kmr --stream N --png-dir DIR [--first K] [--count N]\n"
    "\n"
    "Write image stream N of a recording as DIR/frame_<sequence>.png (8-bit). gray8 as is;\n"
    "gray16 as its high byte; depth16 scaled linearly so 8191 mm is white (0 = no reading\n"
    "stays black); yuyv as its luma; rgb24 in colour; mjpeg frames are written unchanged\n"
    "as .jpg. Progress on stderr.\n"
    "\n"
    "options:\n"
    "  --stream N     stream id (kinema inspect lists them)\n"
    "  --png-dir DIR  output directory (created if missing)\n"
    "  --first K      skip the first K frames of the stream\n"
    "  --count N      write at most N frames\n";

/* Convert one frame to 8-bit grey (or BGR) in `out`; returns channels. */
static int to_8bit(const km_frame *f, uint8_t *out)
{
    int w = f->width, h = f->height;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = f->data + (size_t)y * (size_t)f->stride;
        uint8_t *o = out + (size_t)y * (size_t)w * (f->format == KM_PIXEL_RGB24 ? 3 : 1);
        for (int x = 0; x < w; x++) {
            switch (f->format) {
            case KM_PIXEL_GRAY8: o[x] = row[x]; break;
            case KM_PIXEL_GRAY16: o[x] = row[2 * x + 1]; break;
            case KM_PIXEL_DEPTH16: {
                unsigned mm = (unsigned)row[2 * x] | ((unsigned)row[2 * x + 1] << 8);
                o[x] = (uint8_t)(mm >= 8191 ? 255 : mm * 255 / 8191);
                break;
            }
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

int kinema_cmd_export(int argc, char **argv)
{
    const char *path = NULL, *dir = NULL, *v;
    long stream = -1, first = 0, count = -1;
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
    if (!path || stream < 0 || !dir)
        return cli_usage_error("export", USAGE, "need REC.kmr, --stream and --png-dir");
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
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "kinema export: cannot create %s: %s\n", dir, strerror(errno));
        km_recording_close(r);
        return KINEMA_EXIT_FAILURE;
    }
    uint8_t *img = malloc((size_t)s->width * (size_t)s->height * 3);
    int rc = img ? KINEMA_EXIT_OK : KINEMA_EXIT_FAILURE;
    long index = 0, written = 0;
    km_record rec;
    while (img && (count < 0 || written < count) &&
           (st = km_recording_next(r, (int)stream, &rec)) != KM_ERR_END_OF_STREAM) {
        if (st) {
            /* A damaged record or the cut tail: say so and go on / stop. */
            fprintf(stderr, "kinema export: %s\n", km_last_error());
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
        if (f.format == KM_PIXEL_MJPEG) {
            snprintf(file, sizeof file, "%s/frame_%06llu.jpg", dir, (unsigned long long)f.sequence);
            FILE *out = fopen(file, "wb");
            if (!out || fwrite(f.data, 1, f.size, out) != f.size) st = KM_ERR_IO;
            if (out && fclose(out) != 0) st = KM_ERR_IO;
            if (st) km_error(KM_ERR_IO, "%s: %s", file, strerror(errno));
        } else if (f.width > s->width || f.height > s->height) {
            st = km_error(KM_ERR_FORMAT, "record at offset %llu: %dx%d larger than the stream",
                          (unsigned long long)rec.offset, f.width, f.height);
        } else {
            snprintf(file, sizeof file, "%s/frame_%06llu.png", dir, (unsigned long long)f.sequence);
            int channels = to_8bit(&f, img);
            st = km_cv_write_png(file, img, f.width, f.height, f.width * channels, channels);
        }
        if (st) {
            fprintf(stderr, "kinema export: %s\n", km_last_error());
            rc = KINEMA_EXIT_FAILURE;
            break;
        }
        written++;
        if (written % 50 == 0) fprintf(stderr, "\rkinema export: %ld frames", written);
    }
    fprintf(stderr, "%skinema export: %ld frames of stream %ld written to %s\n",
            written >= 50 ? "\n" : "", written, stream, dir);
    free(img);
    km_recording_close(r);
    return rc;
}
