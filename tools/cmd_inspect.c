/* kinema inspect: what a recording holds and whether it is sound: streams, rates, drops
 * (sequence gaps), time gaps, duration, CRC errors, a cut tail; --repair rewrites the index
 * of a cut recording. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kinema/kinema.h"
#include "kinema/recording.h"

static const char USAGE[] =
    "usage: kinema inspect REC.kmr [--no-verify] [--repair]\n"
    "\n"
    "Summary of a recording: version, size, index, cut tail (power loss), embedded rig, and\n"
    "per stream: kind, camera, size/format, records, duration, measured vs nominal rate,\n"
    "dropped frames (sequence gaps), repeated sequences, time gaps (> 1.5 periods), the\n"
    "longest interval; then every record's CRC is checked (progress on stderr).\n"
    "\n"
    "options:\n"
    "  --no-verify   skip reading the payloads (index only: instant)\n"
    "  --repair      cut a damaged tail and write a fresh index (in place), then inspect\n"
    "Exit status: 0 sound, 1 damaged (CRC errors or a cut tail) or unreadable, 2 usage.\n";

static const char *kind_name(km_recording_stream_kind k)
{
    switch (k) {
    case KM_RECORDING_STREAM_IMAGES: return "images";
    case KM_RECORDING_STREAM_OBSERVATIONS: return "observations";
    case KM_RECORDING_STREAM_SOLVED: return "solved";
    }
    return "?";
}

static const char *format_name(km_pixel_format f)
{
    static const char *const names[] = {"gray8", "gray16", "depth16", "yuyv", "rgb24", "mjpeg"};
    return (unsigned)f < KM_PIXEL_FORMAT_COUNT ? names[f] : "?";
}

static void progress(void *user, uint64_t done, uint64_t total)
{
    (void)user;
    fprintf(stderr, "\rkinema inspect: checked %.0f of %.0f MB", (double)done / 1e6,
            (double)total / 1e6);
}

int kinema_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool verify = true, repair = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        }
        if (strcmp(argv[i], "--no-verify") == 0) verify = false;
        else if (strcmp(argv[i], "--repair") == 0) repair = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("inspect", USAGE, "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage_error("inspect", USAGE, "one recording only ('%s')", argv[i]);
    }
    if (!path) return cli_usage_error("inspect", USAGE, "no recording given");
    km_status st;
    if (repair) {
        km_recorder *rec = km_recorder_open_append(path, NULL, &st);
        if (!rec || (st = km_recorder_close(rec))) {
            fprintf(stderr, "kinema inspect: --repair: %s\n", km_last_error());
            return KINEMA_EXIT_FAILURE;
        }
        fprintf(stderr, "kinema inspect: %s repaired (index rewritten)\n", path);
    }
    km_recording *r = km_recording_open(path, &st);
    if (!r) {
        fprintf(stderr, "kinema inspect: %s\n", km_last_error());
        return KINEMA_EXIT_FAILURE;
    }
    km_recording_info info;
    km_recording_get_info(r, &info);
    double duration_s = info.records ? (double)(info.last_time_ns - info.first_time_ns) / 1e9 : 0;
    printf("%s: kinema recording v%d.%d, %.1f MB, %llu records, %.3f s\n", path,
           info.version_major, info.version_minor, (double)info.file_bytes / 1e6,
           (unsigned long long)info.records, duration_s);
    printf("index: %s\n", info.index_rebuilt ? "missing or damaged: rebuilt by scanning" : "ok");
    if (info.truncated)
        printf("CUT: %s (complete records end at offset %llu; kinema inspect --repair fixes the "
               "index)\n", info.cut_reason, (unsigned long long)info.cut_offset);
    if (info.damaged_records)
        printf("damaged records skipped by the scan: %llu\n",
               (unsigned long long)info.damaged_records);
    const km_rig *rig = km_recording_rig(r);
    if (rig)
        printf("rig: \"%s\", %d cameras\n", rig->name, rig->camera_count);
    else
        printf("rig: none embedded\n");
    printf("%-3s %-12s %-4s %-16s %-14s %8s %9s %9s %7s %7s %7s %9s\n", "id", "kind", "cam",
           "name", "format", "records", "rate_hz", "nominal", "drops", "repeats", "gaps",
           "max_gap_ms");
    for (int i = 0; i < km_recording_stream_count(r); i++) {
        const km_recording_stream *s = km_recording_stream_get(r, i);
        char fmt[32] = "-";
        if (s->kind == KM_RECORDING_STREAM_IMAGES)
            snprintf(fmt, sizeof fmt, "%dx%d %s", s->width, s->height, format_name(s->format));
        double span = (double)(s->last_time_ns - s->first_time_ns) / 1e9;
        double rate = s->records > 1 && span > 0 ? (double)(s->records - 1) / span : 0.0;
        printf("%-3d %-12s %-4d %-16.16s %-14s %8llu %9.2f %9.2f %7llu %7llu %7llu %9.2f\n", s->id,
               kind_name(s->kind), s->camera, s->name, fmt, (unsigned long long)s->records, rate,
               s->rate_hz, (unsigned long long)s->sequence_gaps,
               (unsigned long long)s->sequence_repeats, (unsigned long long)s->time_gaps,
               (double)s->max_interval_ns / 1e6);
    }
    int rc = info.truncated || info.damaged_records ? KINEMA_EXIT_FAILURE : KINEMA_EXIT_OK;
    if (verify) {
        km_recording_check chk;
        st = km_recording_verify(r, &chk, progress, NULL);
        if (chk.bytes_read >= (64u << 20)) fprintf(stderr, "\n");
        if (st) {
            fprintf(stderr, "kinema inspect: %s\n", km_last_error());
            rc = KINEMA_EXIT_FAILURE;
        } else {
            printf("crc: %llu records ok, %llu errors", (unsigned long long)chk.records_ok,
                   (unsigned long long)chk.crc_errors);
            if (chk.first_bad_offset != UINT64_MAX)
                printf(" (first at offset %llu)", (unsigned long long)chk.first_bad_offset);
            printf("\n");
            if (chk.crc_errors) rc = KINEMA_EXIT_FAILURE;
        }
    }
    km_recording_close(r);
    return rc;
}
