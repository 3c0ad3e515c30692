/* Kinema core: status codes and error messages, logging, the monotonic clock,
 * the frame pool and lock-free SPSC ring that carry frames from capture threads to
 * the pipeline, small linear algebra, and the YAML configuration reader.
 *
 * Everything else in Kinema depends on this header and on nothing above it. */
#ifndef KINEMA_CORE_H
#define KINEMA_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ status */

/* Every fallible function returns one of these. KM_OK is 0 so `if (st)` tests failure. */
typedef enum km_status {
    KM_OK = 0,
    KM_ERR_INVALID_ARGUMENT, /* caller passed something unusable */
    KM_ERR_NO_MEMORY,
    KM_ERR_IO,               /* open/read/write/socket failed (errno in the message) */
    KM_ERR_PARSE,            /* malformed text input: file:line in the message */
    KM_ERR_FORMAT,           /* malformed binary input: offset in the message */
    KM_ERR_CAPACITY,         /* a fixed-capacity array or pool is full */
    KM_ERR_NOT_FOUND,
    KM_ERR_UNSUPPORTED,
    KM_ERR_TIMEOUT,
    KM_ERR_DEVICE,           /* USB/device failure */
    KM_ERR_AGAIN,            /* nothing available now; try later */
    KM_ERR_END_OF_STREAM,
    KM_ERR_NUMERIC,          /* degenerate geometry, singular system */
    KM_ERR_INTERNAL,
    KM_STATUS_COUNT
} km_status;

/* Short constant name of a status ("KM_ERR_PARSE"); never NULL. */
const char *km_status_name(km_status st);

/* The message of the most recent failure on the calling thread (like errno: thread-local,
 * overwritten by the next failure). Never NULL; "" when nothing failed yet. */
const char *km_last_error(void);

/* Record a failure message for the calling thread and return `st`, so that a function
 * can `return km_error(KM_ERR_PARSE, "%s:%d: ...", file, line);`. The message is
 * also logged at debug level. */
km_status km_error(km_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Longest message km_last_error() holds (bytes including the NUL); longer ones are cut. */
#define KM_ERROR_MESSAGE_MAX 512
/* Reset the calling thread's message to "" (tests; a retry loop that wants a clean slate). */
void km_clear_error(void);

/* ---------------------------------------------------------------- logging */

typedef enum km_log_level {
    KM_LOG_ERROR = 0,
    KM_LOG_WARN = 1,
    KM_LOG_INFO = 2,
    KM_LOG_DEBUG = 3
} km_log_level;

/* A log sink. Called from any thread; must be thread-safe. `module` is a short tag
 * ("capture", "detect", ...). */
typedef void (*km_log_fn)(void *user, km_log_level level, const char *module,
                          const char *message);

/* Logging is the one process-wide setting of the library: the program (kinemad, kinema,
 * a test) decides once at start where log lines go. The default writes human-readable lines
 * to stderr at level INFO. Not meant to be changed while other threads log. */
void km_log_set_level(km_log_level level);
km_log_level km_log_get_level(void);
/* The stderr sink writes "2026-11-29T01:02:03.123Z [info] module: message" (wall clock, UTC).
 * json=true: one JSON object per line on stderr instead:
 * {"t_ns":<CLOCK_MONOTONIC ns>,"level":"info","module":"..","msg":"..","time":"<UTC as above>"}.
 * Messages longer than 2 KiB are cut and end in "...". */
void km_log_set_json(bool json);
/* Replace the sink (NULL restores the stderr sink). */
void km_log_set_handler(km_log_fn fn, void *user);
void km_log(km_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void km_logv(km_log_level level, const char *module, const char *fmt, va_list ap);
/* Parse "error", "warn", "info", "debug"; KM_ERR_INVALID_ARGUMENT otherwise. */
km_status km_log_level_parse(const char *name, km_log_level *out);
/* Escape `in` for use inside a JSON string literal (quotes not added): " \ and control
 * characters escaped, invalid UTF-8 bytes replaced by \ufffd. Writes at most out_size bytes
 * including the NUL, never splitting an escape; returns the length the whole escaped text
 * needs (like snprintf), so `ret >= out_size` means it was cut. Thread-safe, no allocation. */
size_t km_json_escape(char *out, size_t out_size, const char *in);

/* ------------------------------------------------------------------ clock */

/* CLOCK_MONOTONIC in nanoseconds: the one time base of every timestamp in Kinema. */
uint64_t km_time_now_ns(void);
/* Sleep until an absolute CLOCK_MONOTONIC time (returns early only on error). */
void km_time_sleep_until_ns(uint64_t deadline_ns);

/* -------------------------------------------------------------- SPSC ring */

/* Lock-free single-producer/single-consumer ring of pointers. One thread pushes, one
 * other thread pops; C11 acquire/release atomics, no locks, no allocation after create. */
typedef struct km_spsc_ring km_spsc_ring;

/* capacity is rounded up to a power of two. Caller frees with km_spsc_ring_destroy. */
km_spsc_ring *km_spsc_ring_create(size_t capacity);
void km_spsc_ring_destroy(km_spsc_ring *ring);
/* Producer side. false when full (the item is not queued). item must not be NULL. */
bool km_spsc_ring_push(km_spsc_ring *ring, void *item);
/* Consumer side. NULL when empty. */
void *km_spsc_ring_pop(km_spsc_ring *ring);
/* Approximate number of queued items (exact when called from either end). */
size_t km_spsc_ring_count(const km_spsc_ring *ring);
size_t km_spsc_ring_capacity(const km_spsc_ring *ring);

/* ------------------------------------------------------------- frame pool */

typedef enum km_pixel_format {
    KM_PIXEL_GRAY8 = 0, /* 8-bit intensity (IR mocap cameras) */
    KM_PIXEL_GRAY16,    /* 16-bit little-endian intensity / Y16 */
    KM_PIXEL_DEPTH16,   /* 16-bit depth in millimetres, 0 = no reading */
    KM_PIXEL_YUYV,
    KM_PIXEL_RGB24,
    KM_PIXEL_MJPEG,     /* compressed; `size` bytes are valid */
    KM_PIXEL_FORMAT_COUNT
} km_pixel_format;

/* One image from one device. `data` points into the pool's preallocated memory. */
typedef struct km_frame {
    uint64_t time_ns;       /* exposure time, CLOCK_MONOTONIC ns (device clock mapped) */
    uint64_t arrival_ns;    /* when the last byte reached the host */
    uint64_t sequence;      /* per-device frame counter as the device numbers it */
    int camera;             /* index of the device in the rig */
    int width, height;
    int stride;             /* bytes per row */
    km_pixel_format format;
    uint8_t *data;
    size_t size;            /* valid bytes in data */
    size_t capacity;        /* bytes allocated behind data */
    uint32_t flags;         /* KM_FRAME_FLAG_* */
    void *pool_slot;        /* private to the pool */
    void *user;             /* set by a frame processor on the capture thread for the
                             * consumer (km_capture_set_processor); NULL from the pool */
} km_frame;

#define KM_FRAME_FLAG_INCOMPLETE 0x1u /* payload lost packets; content may be damaged */

typedef struct km_frame_pool km_frame_pool;

/* `count` frames of `frame_bytes` each, allocated once (each frame's data 64-byte aligned).
 * Threading contract: the free list is an SPSC ring, so exactly ONE thread (the device's
 * capture thread) calls km_frame_pool_acquire and exactly ONE thread (the consumer that is
 * done with the pixels) calls km_frame_pool_release; they may be the same thread. Several
 * consumers must funnel their releases through one thread. An acquired frame has all
 * metadata zeroed (data/capacity set); its pixels are stale. Releasing a frame twice or a
 * foreign frame is logged and ignored. Caller frees with km_frame_pool_destroy after every
 * frame was released (destroy frees everything; frames still out become dangling). */
km_frame_pool *km_frame_pool_create(size_t count, size_t frame_bytes, km_status *err);
void km_frame_pool_destroy(km_frame_pool *pool);
/* NULL when every frame is in use (the caller counts a drop). */
km_frame *km_frame_pool_acquire(km_frame_pool *pool);
void km_frame_pool_release(km_frame_pool *pool, km_frame *frame);
size_t km_frame_pool_available(const km_frame_pool *pool);

/* ------------------------------------------------------------------- math */

typedef struct km_vec3 { double x, y, z; } km_vec3;
/* Unit quaternion rotating the body frame into the world frame (formats.md order). */
typedef struct km_quat { double x, y, z, w; } km_quat;
/* Row-major 3x3 and 4x4 matrices. */
typedef struct km_mat3 { double m[9]; } km_mat3;
typedef struct km_mat4 { double m[16]; } km_mat4;

km_vec3 km_vec3_make(double x, double y, double z);
km_vec3 km_vec3_add(km_vec3 a, km_vec3 b);
km_vec3 km_vec3_sub(km_vec3 a, km_vec3 b);
km_vec3 km_vec3_scale(km_vec3 a, double s);
double km_vec3_dot(km_vec3 a, km_vec3 b);
km_vec3 km_vec3_cross(km_vec3 a, km_vec3 b);
double km_vec3_norm(km_vec3 a);
double km_vec3_dist(km_vec3 a, km_vec3 b);
/* Zero vector stays zero. */
km_vec3 km_vec3_normalize(km_vec3 a);

km_mat3 km_mat3_identity(void);
km_mat3 km_mat3_mul(km_mat3 a, km_mat3 b);
km_mat3 km_mat3_transpose(km_mat3 a);
km_vec3 km_mat3_apply(km_mat3 a, km_vec3 v);
double km_mat3_det(km_mat3 a);
/* KM_ERR_NUMERIC when singular. */
km_status km_mat3_inverse(km_mat3 a, km_mat3 *out);
/* Rotation about a unit axis by angle (radians), and Rodrigues vector <-> matrix. */
km_mat3 km_mat3_from_axis_angle(km_vec3 axis, double angle_rad);
km_mat3 km_mat3_from_rodrigues(km_vec3 r);
km_vec3 km_mat3_to_rodrigues(km_mat3 R);

km_quat km_quat_identity(void);
km_quat km_quat_mul(km_quat a, km_quat b);
km_quat km_quat_conjugate(km_quat q);
km_quat km_quat_normalize(km_quat q);
km_quat km_quat_from_axis_angle(km_vec3 axis, double angle_rad);
km_vec3 km_quat_rotate(km_quat q, km_vec3 v);
km_mat3 km_quat_to_mat3(km_quat q);
km_quat km_quat_from_mat3(km_mat3 R);
/* Angle of the rotation between two orientations, radians in [0, pi]. */
double km_quat_angle_between(km_quat a, km_quat b);
km_quat km_quat_slerp(km_quat a, km_quat b, double t);

km_mat4 km_mat4_identity(void);
km_mat4 km_mat4_mul(km_mat4 a, km_mat4 b);
km_mat4 km_mat4_from_rt(km_mat3 R, km_vec3 t);
km_vec3 km_mat4_apply_point(km_mat4 a, km_vec3 p);

/* Size limits of the dense solvers below: their workspaces are stack arrays of these sizes
 * (no allocation). The row count m is not limited. */
#define KM_LSQ_MAX_N 16
#define KM_SPD_MAX_N 64
#define KM_EIGEN_MAX_N 16
#define KM_SVD_MAX_N 16

/* Dense least squares for small systems: minimise |A x - b| with A row-major m x n
 * (m >= n, n <= KM_LSQ_MAX_N, any m) through QR built row by row with Givens rotations
 * (as stable as Householder QR, and needs only an n x n workspace). KM_ERR_NUMERIC when A is
 * rank deficient (|R_kk| <= 1e-12 max |R_jj|); KM_ERR_INVALID_ARGUMENT on bad sizes.
 * No allocation. */
km_status km_least_squares(const double *A, const double *b, int m, int n, double *x);
/* Solve the symmetric positive definite n x n system A x = b (Cholesky, n <= 64; only the
 * lower triangle of A is read). A is not modified. KM_ERR_NUMERIC when A is not positive
 * definite. */
km_status km_solve_spd(const double *A, const double *b, int n, double *x);
/* Eigen-decomposition of a symmetric n x n matrix (n <= 16, cyclic Jacobi; A is
 * symmetrised as (A + A^T)/2). Eigenvalues ascending in `values`; eigenvector k is column k
 * of `vectors` (row-major n x n, orthonormal). KM_ERR_NUMERIC on non-finite input. */
km_status km_symmetric_eigen(const double *A, int n, double *values, double *vectors);
/* Singular value decomposition of a row-major m x n matrix (m >= n, n <= 16, any m;
 * one-sided Jacobi): A = U diag(s) V^T. s descending; U is m x n, V is n x n, both
 * row-major, both with orthonormal columns (U's columns for zero singular values are an
 * arbitrary orthonormal completion). U may be NULL when not needed (then A is first reduced
 * to its n x n QR factor). Rank deficiency is not an error; KM_ERR_NUMERIC on non-finite
 * input. The null space of A (e.g. DLT, homography) is the last column of V. */
km_status km_svd(const double *A, int m, int n, double *U, double *s, double *V);

/* Minimum-cost assignment (Hungarian method: shortest augmenting paths with potentials,
 * O(n^2 m)) of rows 0..n-1 to distinct columns 0..m-1 of a row-major n x m cost matrix,
 * 1 <= n <= m, costs finite. row_to_col[i] is the column given to row i. The workspace of
 * km_assignment_workspace_bytes(n, m) bytes (aligned for double) is the caller's, so a
 * per-frame caller allocates nothing. Shared by marker tracking and skeleton labeling. */
size_t km_assignment_workspace_bytes(int n, int m);
void km_assignment_solve(const double *cost, int n, int m, void *workspace, int *row_to_col);

/* ----------------------------------------------------------------- config */

/* The configuration of kinemad is YAML 1.1 (libyaml), chosen because the calibration files
 * (formats.md) are YAML too, so an operator learns one syntax. Keys are addressed by
 * dotted paths ("transport.zmq.endpoint", "sources.0.type"). Every error message names
 * the file and line. Details (docs/config.md "Format"):
 * - Path: components separated by '.'; on a mapping a component is a key (so keys that
 *   contain '.' cannot be addressed), on a sequence a decimal index from 0. "" is the root.
 * - Loading rejects syntax errors, duplicate keys, non-scalar keys, a top level that is not a
 *   mapping and more than one document. An empty file is a valid config with no keys.
 * - OpenCV FileStorage files load as they are: a first line "%YAML:1.0" is accepted, tags
 *   ("!!opencv-matrix") are ignored, so "camera_0.camera_matrix.data" reads the 9 numbers.
 * - Scalars are typed by the getter asking, whether quoted or not: get_int reads "42" or
 *   42 (decimal, or hex with 0x), get_double any finite C-locale number, get_bool true/
 *   false/yes/no/on/off (any case), get_string any scalar. A null value (`key:`, `~`,
 *   `null`) is present (km_config_has is true) but fails every getter with KM_ERR_PARSE.
 * - KM_ERR_NOT_FOUND also sets km_last_error() ("file:LINE: path: not found", LINE of the
 *   deepest existing parent), ready to report when a key is required.
 * - Thread-safety: a loaded km_config is read-only; getters may run concurrently. */
typedef struct km_config km_config;

/* Parse a file. On failure returns NULL, sets *err and km_last_error() ("file:line: why").
 * Caller frees with km_config_destroy. */
km_config *km_config_load(const char *path, km_status *err);
/* Parse text held in memory; `name` is used in messages in place of a file name. */
km_config *km_config_parse(const char *text, size_t length, const char *name, km_status *err);
void km_config_destroy(km_config *cfg);

/* Does the path exist? */
bool km_config_has(const km_config *cfg, const char *path);
/* Each getter: KM_OK and *out set when present and valid; KM_ERR_NOT_FOUND (and *out =
 * fallback) when absent; KM_ERR_PARSE with "file:line: key: expected ..." when present but of
 * the wrong type or out of [min, max]. */
km_status km_config_get_int(const km_config *cfg, const char *path, long fallback, long min,
                            long max, long *out);
km_status km_config_get_double(const km_config *cfg, const char *path, double fallback,
                               double min, double max, double *out);
km_status km_config_get_bool(const km_config *cfg, const char *path, bool fallback, bool *out);
/* Copies at most out_size-1 bytes; KM_ERR_PARSE when longer. */
km_status km_config_get_string(const km_config *cfg, const char *path, const char *fallback,
                               char *out, size_t out_size);
/* Reads a sequence of numbers into out[0..capacity); *count is set to the number read.
 * KM_ERR_PARSE when not a sequence of numbers or longer than capacity. */
km_status km_config_get_doubles(const km_config *cfg, const char *path, double *out,
                                size_t capacity, size_t *count);
/* Number of items of a sequence (0 when absent or not a sequence). */
size_t km_config_count(const km_config *cfg, const char *path);
/* The index-th key (document order) of the mapping at path; NULL when absent, not a mapping
 * or index >= its size. For sections whose keys the user chooses (named rigid bodies,
 * "camera_0", ...). The string is owned by cfg and valid until km_config_destroy. */
const char *km_config_key(const km_config *cfg, const char *path, size_t index);
typedef enum km_config_kind {
    KM_CONFIG_ABSENT = 0,
    KM_CONFIG_NULL,     /* "key:", "key: ~", "key: null" */
    KM_CONFIG_SCALAR,   /* number, bool or string: the getters decide */
    KM_CONFIG_SEQUENCE,
    KM_CONFIG_MAPPING
} km_config_kind;
/* What is at path (e.g. a setting that may be one string or a list of strings). */
km_config_kind km_config_type(const km_config *cfg, const char *path);
/* Line (1-based) where the value at path starts, 0 when absent. */
int km_config_line(const km_config *cfg, const char *path);
const char *km_config_name(const km_config *cfg);
/* Reject keys the program does not know: every mapping key under `path` (or the root when
 * path is "") must be one of `known` (NULL-terminated). Catches typos like "endpiont":
 * KM_ERR_PARSE "file:line: path.key: unknown key; did you mean 'endpoint'?" (first unknown
 * key only). KM_OK when path is absent; KM_ERR_PARSE when it is not a mapping. */
km_status km_config_check_keys(const km_config *cfg, const char *path, const char *const *known);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_CORE_H */
