/* Kinema recordings (part of the capture stage, capture/recording.c and capture/replay.c):
 * the project's own file format for any mix of streams (camera images in any
 * km_pixel_format including MJPEG and depth, 2D observation sets, solved frames as wire v1
 * bytes), its writer (km_recorder), its reader (km_recording) and the `replay` km_source
 * that feeds a recording back into the pipeline.
 *
 * The format (docs/recording.md has the byte table): a 16-byte preamble, then records, each
 * a 40-byte header (sync word, type, stream, payload length, flags, sequence, time_ns,
 * payload CRC-32, header CRC-32) and its payload. Stream descriptions and the camera rig are
 * records too. Closing the writer appends an INDEX record and a fixed-size END record; the
 * reader uses them to seek without reading the file, and when they are missing or damaged
 * (power loss, crash) it rebuilds the index by scanning the records, stopping at the first
 * incomplete one: a recording cut off mid-write stays readable up to its last complete
 * record. Every malformed input is KM_ERR_FORMAT naming the byte offset, never a crash. */
#ifndef KINEMA_RECORDING_H
#define KINEMA_RECORDING_H

#include "kinema/calib.h"
#include "kinema/capture.h"
#include "kinema/core.h"
#include "kinema/tracking.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KM_RECORDING_MAGIC "KINEMREC"    /* first 8 bytes of a file */
#define KM_RECORDING_VERSION_MAJOR 1     /* a reader refuses another major version */
#define KM_RECORDING_VERSION_MINOR 0     /* minor versions only add (record types, tail bytes) */
#define KM_RECORDING_PREAMBLE_SIZE 16
#define KM_RECORDING_RECORD_HEADER_SIZE 40
#define KM_RECORDING_MAX_STREAMS 256
/* Largest payload a reader accepts (a 4K 16-bit image is 16 MiB): a corrupt length field
 * can then never make it allocate gigabytes. */
#define KM_RECORDING_MAX_PAYLOAD (256u * 1024u * 1024u)

/* What the data records of a stream hold (docs/recording.md "Payloads"). */
typedef enum km_recording_stream_kind {
    KM_RECORDING_STREAM_IMAGES = 1,       /* km_frame: 24-byte image header + pixel bytes */
    KM_RECORDING_STREAM_OBSERVATIONS = 2, /* km_observation_set: count + 32-byte rows */
    KM_RECORDING_STREAM_SOLVED = 3        /* km_solved_frame as wire v1 bytes (protocol.md) */
} km_recording_stream_kind;

/* A stream's description (written once, before its first data record) and, from the reader,
 * what the index says about its records. */
typedef struct km_recording_stream {
    int id;                       /* 0.. in order of declaration (assigned by the writer) */
    km_recording_stream_kind kind;
    int camera;                   /* rig index of an image/observation stream, -1 = none */
    char name[KM_NAME_MAX];
    char serial[KM_NAME_MAX];
    int width, height;            /* images: size (0 for other kinds) */
    km_pixel_format format;       /* images */
    double rate_hz;               /* nominal rate (0 = unknown) */
    /* Filled by the reader from the index (no payload read): */
    uint64_t records;
    uint64_t payload_bytes;
    uint64_t first_time_ns, last_time_ns;
    uint64_t sequence_gaps;       /* sequence numbers skipped (frames the source dropped) */
    uint64_t sequence_repeats;    /* records whose sequence did not increase */
    uint64_t time_gaps;           /* intervals longer than 1.5 nominal periods */
    uint64_t max_interval_ns;
} km_recording_stream;

/* ------------------------------------------------------------------ writer */

typedef struct km_recorder km_recorder;

typedef struct km_recorder_config {
    /* Records are gathered in one buffer of this size and written with one write() when it
     * is full (records larger than the buffer go out directly). Default 4 MiB. */
    size_t buffer_bytes;
    /* Also write the buffer out when this long passed since the last write, checked at
     * every record: bounds what a crash loses on a slow stream. 0 = only when full.
     * Default 1 s. */
    uint64_t flush_interval_ns;
    /* fdatasync() after every buffer write: what was written survives power loss, at the
     * cost of throughput. Default false (the OS writes back within its own interval). */
    bool sync;
    /* Index entries preallocated (the index grows by doubling beyond). Default 65536. */
    size_t expected_records;
} km_recorder_config;

km_recorder_config km_recorder_config_default(void);
/* Create (truncate) a recording file and write its preamble. cfg may be NULL (defaults).
 * Caller ends it with km_recorder_close. */
km_recorder *km_recorder_create(const char *path, const km_recorder_config *cfg,
                                km_status *err);
/* Open an existing recording to add records to it: its index is read (or rebuilt by a scan),
 * anything after its last complete record (an old index, a cut-off record) is cut off, and
 * km_recorder_close writes a new index. Used to repair a recording cut by a crash (open and
 * close) and to add streams to a finished one. */
km_recorder *km_recorder_open_append(const char *path, const km_recorder_config *cfg,
                                     km_status *err);
/* Embed the calibration the recording was made with (at most once per file). */
km_status km_recorder_set_rig(km_recorder *rec, const km_rig *rig);
/* Declare a stream; desc->id is ignored, the new id is returned in *stream_id. Reader-side
 * fields of desc are ignored. At most KM_RECORDING_MAX_STREAMS per file. */
km_status km_recorder_add_stream(km_recorder *rec, const km_recording_stream *desc,
                                 int *stream_id);
/* Convenience: an image stream described by a source's km_source_info. */
km_status km_recorder_add_source_stream(km_recorder *rec, const km_source_info *info,
                                        int *stream_id);
/* Write one camera frame (frame->size bytes of frame->data, metadata kept bit-exact) to an
 * image stream. The frame is only read. KM_ERR_INVALID_ARGUMENT when its format differs from
 * the stream's. No allocation (except rare index growth). */
km_status km_recorder_write_frame(km_recorder *rec, int stream, const km_frame *frame);
/* Write an observation set (obs->count rows) to an observation stream. */
km_status km_recorder_write_observations(km_recorder *rec, int stream,
                                         const km_observation_set *obs);
/* Write a raw data record: for a SOLVED stream, the bytes km_wire_encode_frame produced
 * (sequence = frame number, time_ns = capture time). The bytes are copied. */
km_status km_recorder_write_record(km_recorder *rec, int stream, uint64_t sequence,
                                   uint64_t time_ns, uint32_t flags, const void *payload,
                                   size_t payload_bytes);
/* Write the buffered records to the file now (and fdatasync when cfg.sync). */
km_status km_recorder_flush(km_recorder *rec);
/* Bytes handed to the recorder so far (file size once flushed). */
uint64_t km_recorder_bytes(const km_recorder *rec);
/* Flush, write the INDEX and END records, close the file and free rec (always, even on
 * error). Accepts NULL. */
km_status km_recorder_close(km_recorder *rec);

/* ------------------------------------------------------------------ reader */

typedef struct km_recording km_recording;

/* What opening found. */
typedef struct km_recording_info {
    int version_major, version_minor;
    uint64_t file_bytes;
    uint64_t records;              /* data records (streams' records summed) */
    bool index_rebuilt;            /* no usable INDEX/END: the records were scanned */
    /* The file does not end with a valid END record: it was cut (crash, power loss, a copy
     * in progress) or damaged. The complete records before cut_offset are all readable. */
    bool truncated;
    uint64_t cut_offset;           /* where the valid records end */
    char cut_reason[160];          /* "offset 1234: record header incomplete (17 of 40 bytes)" */
    uint64_t damaged_records;      /* records skipped by the scan (bad CRC) */
    uint64_t first_time_ns, last_time_ns; /* over all data records */
    bool has_rig;
} km_recording_info;

/* One data record, as returned by the iterator. payload is borrowed from the reader and
 * valid until the next call on it. */
typedef struct km_record {
    int stream;
    km_recording_stream_kind kind;
    uint64_t sequence;
    uint64_t time_ns;
    uint32_t flags;
    const uint8_t *payload;
    size_t payload_bytes;
    uint64_t offset;               /* of the record header in the file */
    size_t index;                  /* record number (0 .. info.records-1), file order */
} km_record;

/* Open a recording (read-only). KM_ERR_FORMAT (with the offset) when the file is not a
 * recording or its version is unknown; a cut or damaged tail is not an error (see
 * km_recording_info.truncated). Caller frees with km_recording_close. */
km_recording *km_recording_open(const char *path, km_status *err);
/* The same over bytes in memory (not copied: they must outlive the reader); `name` stands
 * for the file name in messages. Tests and the fuzz target. */
km_recording *km_recording_open_memory(const uint8_t *data, size_t size, const char *name,
                                       km_status *err);
void km_recording_close(km_recording *r);
void km_recording_get_info(const km_recording *r, km_recording_info *out);
int km_recording_stream_count(const km_recording *r);
/* NULL when index is out of range. Owned by r. */
const km_recording_stream *km_recording_stream_get(const km_recording *r, int index);
/* The embedded rig, NULL when there is none. Owned by r. */
const km_rig *km_recording_rig(const km_recording *r);

/* Iterate data records in file order, only those of `stream` (or all when stream < 0).
 * KM_ERR_END_OF_STREAM after the last one of a complete file; KM_ERR_FORMAT "name: offset N:
 * recording cut off here (...)" after the last one of a truncated file, and for a record
 * whose payload fails its CRC or does not decode (the iterator then moves past it, so the
 * next call goes on). */
km_status km_recording_next(km_recording *r, int stream, km_record *out);
/* Number of data records, and what the index says of record `index` (stream, kind,
 * sequence, time_ns, payload_bytes, offset; payload NULL, flags 0): no file access. */
size_t km_recording_record_count(const km_recording *r);
km_status km_recording_peek(const km_recording *r, size_t index, km_record *out);
/* Read record number `index` (random access; the iterator position is unchanged). */
km_status km_recording_read(km_recording *r, size_t index, km_record *out);
/* Position the iterator at the first data record (file order) of `stream` (any when < 0)
 * with time_ns >= time_ns / sequence >= sequence; KM_ERR_NOT_FOUND (iterator at the end)
 * when there is none. Uses the in-memory index: no file access. */
km_status km_recording_seek_time(km_recording *r, int stream, uint64_t time_ns);
km_status km_recording_seek_sequence(km_recording *r, int stream, uint64_t sequence);
void km_recording_rewind(km_recording *r);

/* Decode an image record into a frame: metadata set, data pointing into the record's
 * payload (borrowed like it; capacity = size). KM_ERR_FORMAT when the record is not a valid
 * image of its stream. */
km_status km_record_decode_frame(const km_recording *r, const km_record *rec, km_frame *out);
/* Read image record `index` straight into a caller's frame (data/capacity set, e.g. a pool
 * frame): no intermediate copy. KM_ERR_CAPACITY when it does not fit. */
km_status km_recording_read_frame(km_recording *r, size_t index, km_frame *frame);
/* Decode an observation record into out (items/capacity set by the caller). */
km_status km_record_decode_observations(const km_record *rec, km_observation_set *out);

/* Read every record and check its CRC: counts what is damaged. */
typedef struct km_recording_check {
    uint64_t records_ok;
    uint64_t crc_errors;           /* payload CRC mismatch (or undecodable payload) */
    uint64_t bytes_read;
    uint64_t first_bad_offset;     /* UINT64_MAX when none */
} km_recording_check;
/* progress (may be NULL) is called every ~64 MiB with bytes done and total. */
km_status km_recording_verify(km_recording *r, km_recording_check *out,
                              void (*progress)(void *user, uint64_t done, uint64_t total),
                              void *user);

/* ------------------------------------------------------------------ replay */

/* Time stamps replayed frames carry. */
typedef enum km_replay_time {
    /* time_ns as recorded. Pacing (realtime) keeps the recorded intervals from start. */
    KM_REPLAY_TIME_ORIGINAL = 0,
    /* time_ns shifted so that the recording's first data record (over all streams) maps to
     * start_time_ns (0 = the time of km_source_start): intervals and the alignment of the
     * cameras are kept, and latency measured downstream is real. */
    KM_REPLAY_TIME_SHIFT = 1
} km_replay_time;

typedef struct km_replay_config {
    bool realtime;           /* sleep until each frame's (shifted) time; false = as fast as asked */
    bool loop;               /* restart at the end; time and sequence go on increasing */
    km_replay_time time;     /* default KM_REPLAY_TIME_SHIFT */
    uint64_t start_time_ns;  /* SHIFT: where the first record lands (0 = at start) */
} km_replay_config;

km_replay_config km_replay_config_default(void);
/* A km_source replaying image stream `stream` of a recording: frame k of the source is the
 * k-th record of the stream, its pixels and metadata (sequence, size, stride, format,
 * flags, arrival relative to exposure) bit-exact, time_ns as cfg->time says. The source
 * opens its own reader (own file descriptor), so sources of one file run on separate
 * threads. Looping adds, per lap, the stream's span plus one mean period to time_ns and its
 * record count to sequence. A cut tail ends the stream after the last complete record
 * (logged as a warning). */
km_source *km_replay_source_create(const char *path, int stream, const km_replay_config *cfg,
                                   km_status *err);
/* One source per image stream of the recording, in stream order, with one shared time base
 * (the first record over all streams), so frame sets assemble as they did live. Writes at
 * most `capacity` sources and sets *count; KM_ERR_NOT_FOUND when there is no image stream.
 * The caller destroys each source. */
km_status km_replay_sources_create(const char *path, const km_replay_config *cfg,
                                   km_source **sources, int capacity, int *count);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_RECORDING_H */
