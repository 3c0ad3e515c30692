/* km_publisher: the transport stage's single entry point for the pipeline. Owns the ZeroMQ
 * and OSC publishers, reads the `transport:` config section, stamps publish time and keeps
 * the counters. Per frame it allocates nothing itself (see zmq_pub.c for libzmq's one
 * message allocation). */
#include "transport_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 4 KiB for the counters and the pipeline's members, plus the rigid body list. */
#define STATUS_BUFFER_BYTES 16384
#define STATUS_NAME_BYTES 64 /* = KM_NAME_MAX: rigid body names kept for `status` */

/* A rigid body definition as the last frame gave it (names are not in the wire records:
 * the `status` message carries them, docs/protocol.md). */
typedef struct rigid_name {
    uint32_t id;
    bool tracked;
    char name[STATUS_NAME_BYTES];
} rigid_name;

struct km_publisher {
    km_zmq_pub *zmq;
    km_osc_pub *osc;
    int max_markers;
    int max_rigid_bodies, max_skeletons, max_hands, max_events;
    _Atomic uint64_t frames;
    _Atomic uint64_t rejected;
    _Atomic uint64_t status_sent;
    /* Status: state of the solver thread (the only caller of send/tick). */
    uint64_t status_interval_ns;
    uint64_t status_last_ns;          /* when the last status went out (0: never) */
    uint64_t status_frames_at_last;   /* `frames` then, for the rate */
    uint64_t last_frame, last_capture_ns, last_publish_ns;
    uint64_t latency_max_ns;          /* capture -> publish, max since the last status */
    int last_camera_count, last_marker_count, last_observation_total;
    int last_skeletons_tracked, last_skeleton_count, last_hand_count;
    rigid_name *rigid_names;          /* max_rigid_bodies, allocated at create */
    int rigid_name_count;
    uint16_t last_observation_count[KM_MAX_CAMERAS];
    km_publisher_status_fn status_fn;
    void *status_user;
    char *status_buffer;              /* STATUS_BUFFER_BYTES, allocated at create */
};

km_publisher_config km_publisher_config_default(void)
{
    km_publisher_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.zmq_enabled = true;
    snprintf(cfg.zmq_endpoint, sizeof cfg.zmq_endpoint, "%s", "tcp://127.0.0.1:5555");
    cfg.zmq_sndhwm = 1000;
    cfg.osc_enabled = true;
    snprintf(cfg.osc_host, sizeof cfg.osc_host, "%s", "127.0.0.1");
    snprintf(cfg.osc_port, sizeof cfg.osc_port, "%s", "9000");
    cfg.max_markers = 512;
    cfg.osc_max_packet_bytes = 8192;
    cfg.status_interval_ns = 1000000000u;
    cfg.max_rigid_bodies = 64;
    cfg.max_skeletons = KM_SKELETON_MAX_PEOPLE;
    cfg.max_hands = 16;
    cfg.max_events = 64;
    return cfg;
}

/* "file:line: key: why" for a value that parsed but is not acceptable. */
static km_status bad_value(const km_config *cfg, const char *key, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                    km_config_line(cfg, key), key, why);
}

km_status km_publisher_config_read(const km_config *cfg, const char *path,
                                   km_publisher_config *out)
{
    if (!cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "transport config: NULL argument");
    const char *section = path && *path ? path : "transport";
    if (strlen(section) > 200)
        return km_error(KM_ERR_INVALID_ARGUMENT, "transport config: path too long");
    km_publisher_config c = km_publisher_config_default();
    char key[256], sub[256];
    km_status st;

    /* vmc, events, control and input are read by their own readers (km_vmc_config_read,
     * km_event_sender_config_read, km_control_config_read, km_input_config_read). */
    static const char *const known_top[] = {"zmq", "osc", "max_markers", "status_interval_s",
                                            "vmc", "events", "control", "input",
                                            "max_rigid_bodies", "max_skeletons", "max_hands",
                                            "max_events", NULL};
    static const char *const known_zmq[] = {"enabled", "endpoint", "sndhwm", "latest_endpoint",
                                            "curve_secret_key_file", NULL};
    static const char *const known_osc[] = {"enabled", "host", "port", "max_packet_bytes",
                                            NULL};
    if (!km_config_has(cfg, section)) {
        *out = c; /* no transport section: defaults */
        return KM_OK;
    }
    if ((st = km_config_check_keys(cfg, section, known_top)) != KM_OK)
        return st;
    snprintf(sub, sizeof sub, "%s.zmq", section);
    if (km_config_has(cfg, sub) && (st = km_config_check_keys(cfg, sub, known_zmq)) != KM_OK)
        return st;
    snprintf(sub, sizeof sub, "%s.osc", section);
    if (km_config_has(cfg, sub) && (st = km_config_check_keys(cfg, sub, known_osc)) != KM_OK)
        return st;

    long value;
    snprintf(key, sizeof key, "%s.max_markers", section);
    st = km_config_get_int(cfg, key, c.max_markers, 1, 1 << 20, &value);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    c.max_markers = (int)value;
    struct {
        const char *name;
        int *field;
        long max;
    } limits[] = {{"max_rigid_bodies", &c.max_rigid_bodies, 4096},
                  {"max_skeletons", &c.max_skeletons, 1024},
                  {"max_hands", &c.max_hands, 4096},
                  {"max_events", &c.max_events, 65536}};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", section, limits[i].name);
        st = km_config_get_int(cfg, key, *limits[i].field, 1, limits[i].max, &value);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        *limits[i].field = (int)value;
    }

    snprintf(key, sizeof key, "%s.zmq.enabled", section);
    st = km_config_get_bool(cfg, key, c.zmq_enabled, &c.zmq_enabled);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    snprintf(key, sizeof key, "%s.zmq.endpoint", section);
    /* The fallback must not be the output buffer (snprintf on overlapping memory). */
    const km_publisher_config defaults = c;
    st = km_config_get_string(cfg, key, defaults.zmq_endpoint, c.zmq_endpoint,
                              sizeof c.zmq_endpoint);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    if (st == KM_OK && km_zmq_endpoint_validate(c.zmq_endpoint) != KM_OK)
        return bad_value(cfg, key, km_last_error());
    /* A sndhwm of 0 means "no limit" to libzmq: a stalled subscriber would then grow our
     * memory without bound, so it is refused. */
    snprintf(key, sizeof key, "%s.zmq.sndhwm", section);
    st = km_config_get_int(cfg, key, c.zmq_sndhwm, 1, 10000000, &value);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    c.zmq_sndhwm = (int)value;
    snprintf(key, sizeof key, "%s.zmq.latest_endpoint", section);
    st = km_config_get_string(cfg, key, "", c.zmq_latest_endpoint,
                              sizeof c.zmq_latest_endpoint);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    if (st == KM_OK && c.zmq_latest_endpoint[0] &&
        km_zmq_endpoint_validate(c.zmq_latest_endpoint) != KM_OK)
        return bad_value(cfg, key, km_last_error());
    snprintf(key, sizeof key, "%s.zmq.curve_secret_key_file", section);
    st = km_config_get_string(cfg, key, "", c.zmq_curve_secret_key_file,
                              sizeof c.zmq_curve_secret_key_file);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    /* Refuse a remote bind without keys here already, with the line of the endpoint. */
    snprintf(key, sizeof key, "%s.zmq.endpoint", section);
    if (!c.zmq_curve_secret_key_file[0] && c.zmq_enabled &&
        !km_zmq_endpoint_is_local(c.zmq_endpoint))
        return bad_value(cfg, key, "a non-loopback endpoint needs zmq.curve_secret_key_file "
                         "(CurveZMQ; docs/protocol.md \"Security\")");
    snprintf(key, sizeof key, "%s.zmq.latest_endpoint", section);
    if (!c.zmq_curve_secret_key_file[0] && c.zmq_enabled && c.zmq_latest_endpoint[0] &&
        !km_zmq_endpoint_is_local(c.zmq_latest_endpoint))
        return bad_value(cfg, key, "a non-loopback endpoint needs zmq.curve_secret_key_file "
                         "(CurveZMQ; docs/protocol.md \"Security\")");
    snprintf(key, sizeof key, "%s.status_interval_s", section);
    double interval_s;
    st = km_config_get_double(cfg, key, (double)c.status_interval_ns * 1e-9, 0.0, 3600.0,
                              &interval_s);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    c.status_interval_ns = (uint64_t)(interval_s * 1e9 + 0.5);

    snprintf(key, sizeof key, "%s.osc.enabled", section);
    st = km_config_get_bool(cfg, key, c.osc_enabled, &c.osc_enabled);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    snprintf(key, sizeof key, "%s.osc.host", section);
    st = km_config_get_string(cfg, key, defaults.osc_host, c.osc_host, sizeof c.osc_host);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    if (st == KM_OK) {
        if (!c.osc_host[0])
            return bad_value(cfg, key, "host is empty");
        for (const char *p = c.osc_host; *p; p++)
            if (*p <= ' ' || *p == '/' || *p == 0x7f)
                return bad_value(cfg, key, "expected a host name or address");
    }
    /* The port may be written as a number or a string in YAML; both read as text. */
    snprintf(key, sizeof key, "%s.osc.port", section);
    st = km_config_get_string(cfg, key, defaults.osc_port, c.osc_port, sizeof c.osc_port);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    if (st == KM_OK && km_port_validate(c.osc_port) != KM_OK)
        return bad_value(cfg, key, "expected a port number 1..65535");
    snprintf(key, sizeof key, "%s.osc.max_packet_bytes", section);
    st = km_config_get_int(cfg, key, c.osc_max_packet_bytes, 512, 65507, &value);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    c.osc_max_packet_bytes = (int)value;

    *out = c;
    return KM_OK;
}

km_publisher *km_publisher_create(const km_publisher_config *cfg, km_status *err)
{
    km_status st = KM_OK;
    if (!cfg || cfg->max_markers < 0 || cfg->max_rigid_bodies < 0 || cfg->max_skeletons < 0 ||
        cfg->max_hands < 0 || cfg->max_events < 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "publisher: bad config");
        if (err)
            *err = st;
        return NULL;
    }
    km_publisher *pub = calloc(1, sizeof *pub);
    if (!pub) {
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "publisher: out of memory");
        return NULL;
    }
    /* 0 in a config from an initialiser older than these fields: the default. */
    const km_publisher_config defaults = km_publisher_config_default();
    pub->max_markers = cfg->max_markers;
    pub->max_rigid_bodies = cfg->max_rigid_bodies ? cfg->max_rigid_bodies
                                                  : defaults.max_rigid_bodies;
    pub->max_skeletons = cfg->max_skeletons ? cfg->max_skeletons : defaults.max_skeletons;
    pub->max_hands = cfg->max_hands ? cfg->max_hands : defaults.max_hands;
    pub->max_events = cfg->max_events ? cfg->max_events : defaults.max_events;
    pub->status_interval_ns = cfg->status_interval_ns;
    pub->status_buffer = malloc(STATUS_BUFFER_BYTES);
    pub->rigid_names = calloc((size_t)pub->max_rigid_bodies, sizeof *pub->rigid_names);
    if (!pub->status_buffer || !pub->rigid_names) {
        st = km_error(KM_ERR_NO_MEMORY, "publisher: out of memory");
        goto fail;
    }
    if (cfg->zmq_enabled) {
        km_zmq_curve_keys keys;
        memset(&keys, 0, sizeof keys);
        if (cfg->zmq_curve_secret_key_file[0] &&
            (st = km_zmq_curve_load(cfg->zmq_curve_secret_key_file, &keys)))
            goto fail;
        km_zmq_pub_options o = {cfg->zmq_endpoint, cfg->zmq_sndhwm, cfg->zmq_latest_endpoint,
                                &keys};
        pub->zmq = km_zmq_pub_open(&o, &st);
        if (!pub->zmq)
            goto fail;
    }
    if (cfg->osc_enabled) {
        int packet = cfg->osc_max_packet_bytes ? cfg->osc_max_packet_bytes : 8192;
        pub->osc = km_osc_pub_create(cfg->osc_host, cfg->osc_port, cfg->max_markers, packet,
                                     &st);
        if (!pub->osc)
            goto fail;
    }
    if (err)
        *err = KM_OK;
    return pub;
fail:
    km_publisher_destroy(pub);
    if (err)
        *err = st;
    return NULL;
}

void km_publisher_destroy(km_publisher *pub)
{
    if (!pub)
        return;
    km_zmq_pub_destroy(pub->zmq);
    km_osc_pub_destroy(pub->osc);
    free(pub->status_buffer);
    free(pub->rigid_names);
    free(pub);
}

const char *km_publisher_zmq_endpoint(const km_publisher *pub)
{
    return pub && pub->zmq ? km_zmq_pub_endpoint(pub->zmq) : "";
}

const char *km_publisher_zmq_latest_endpoint(const km_publisher *pub)
{
    return pub && pub->zmq ? km_zmq_pub_latest_endpoint(pub->zmq) : "";
}

void km_publisher_set_status_fn(km_publisher *pub, km_publisher_status_fn fn, void *user)
{
    if (!pub)
        return;
    pub->status_fn = fn;
    pub->status_user = user;
}

/* Appends to out[*at, size); on overflow *at becomes size (the message is then dropped). */
static void append(char *out, size_t size, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t size, size_t *at, const char *fmt, ...)
{
    if (*at >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *at, size - *at, fmt, ap);
    va_end(ap);
    *at = n < 0 || (size_t)n >= size - *at ? size : *at + (size_t)n;
}

/* A string's characters as JSON string content (quotes, backslashes and control characters
 * escaped; other bytes, UTF-8 included, as they are). */
static void append_json_text(char *out, size_t size, size_t *at, const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            append(out, size, at, "\\%c", *c);
        else if (*c < 0x20)
            append(out, size, at, "\\u%04x", *c);
        else
            append(out, size, at, "%c", *c);
    }
}

size_t km_publisher_status_json(km_publisher *pub, uint64_t now_ns, char *out, size_t size)
{
    if (!pub || !out || size == 0)
        return 0;
    km_publisher_stats s;
    km_publisher_stats_get(pub, &s);
    uint64_t elapsed = pub->status_last_ns && now_ns > pub->status_last_ns
                           ? now_ns - pub->status_last_ns : 0;
    double rate_hz = elapsed ? (double)(s.frames - pub->status_frames_at_last) * 1e9 /
                                   (double)elapsed
                             : 0.0;
    size_t at = 0;
    append(out, size, &at, "{\"type\":\"status\",\"protocol\":%d,\"t_ns\":%llu,"
           "\"frame\":%llu,\"frames\":%llu,\"rate_hz\":%.2f,\"camera_count\":%d,"
           "\"observation_count\":[", KM_WIRE_VERSION, (unsigned long long)now_ns,
           (unsigned long long)pub->last_frame, (unsigned long long)s.frames, rate_hz,
           pub->last_camera_count);
    for (int c = 0; c < pub->last_camera_count; c++)
        append(out, size, &at, "%s%u", c ? "," : "", pub->last_observation_count[c]);
    append(out, size, &at, "],\"observations\":%d,\"markers\":%d,\"latency_ns\":%llu,"
           "\"latency_max_ns\":%llu,\"zmq_sent\":%llu,\"zmq_dropped\":%llu,"
           "\"osc_sent\":%llu,\"osc_errors\":%llu,\"rejected\":%llu",
           pub->last_observation_total, pub->last_marker_count,
           (unsigned long long)(pub->last_publish_ns > pub->last_capture_ns
                                    ? pub->last_publish_ns - pub->last_capture_ns : 0),
           (unsigned long long)pub->latency_max_ns, (unsigned long long)s.zmq_sent,
           (unsigned long long)s.zmq_dropped, (unsigned long long)s.osc_sent,
           (unsigned long long)s.osc_errors, (unsigned long long)s.rejected);
    append(out, size, &at, ",\"skeletons\":%d,\"skeletons_tracked\":%d,\"hands\":%d,"
           "\"rigid_bodies\":[", pub->last_skeleton_count, pub->last_skeletons_tracked,
           pub->last_hand_count);
    for (int i = 0; i < pub->rigid_name_count; i++) {
        const rigid_name *r = &pub->rigid_names[i];
        append(out, size, &at, "%s{\"id\":%u,\"name\":\"", i ? "," : "", r->id);
        append_json_text(out, size, &at, r->name);
        append(out, size, &at, "\",\"tracked\":%s}", r->tracked ? "true" : "false");
    }
    append(out, size, &at, "]");
    if (pub->status_fn && at + 2 < size) {
        size_t extra = pub->status_fn(pub->status_user, out + at, size - at - 1);
        at = extra < size - at - 1 ? at + extra : size;
    }
    append(out, size, &at, "}");
    if (at >= size)
        return 0;
    return at;
}

void km_publisher_tick(km_publisher *pub, uint64_t now_ns)
{
    if (!pub || !pub->status_interval_ns)
        return;
    if (pub->status_last_ns == 0) {
        /* The first status goes out one interval after the first tick. */
        pub->status_last_ns = now_ns;
        return;
    }
    if (now_ns - pub->status_last_ns < pub->status_interval_ns)
        return;
    if (pub->zmq && km_zmq_pub_wanted(pub->zmq, KM_WIRE_TOPIC_STATUS)) {
        size_t length = km_publisher_status_json(pub, now_ns, pub->status_buffer,
                                                 STATUS_BUFFER_BYTES);
        if (length == 0)
            km_log(KM_LOG_WARN, "transport", "status message longer than %d bytes: dropped",
                   STATUS_BUFFER_BYTES);
        else if (km_zmq_pub_send_text(pub->zmq, KM_WIRE_TOPIC_STATUS, pub->status_buffer,
                                      length) == KM_OK)
            atomic_fetch_add_explicit(&pub->status_sent, 1, memory_order_relaxed);
    }
    pub->status_last_ns = now_ns;
    pub->status_frames_at_last = atomic_load_explicit(&pub->frames, memory_order_relaxed);
    pub->latency_max_ns = 0;
}

/* What `status` reports of the v1.2 streams: counts, and each rigid body's id, name and
 * tracked state (names copied only when they change: a strcmp per body per frame). */
static void remember_streams(km_publisher *pub, const km_solved_frame *frame)
{
    pub->last_skeleton_count = frame->skeletons ? frame->skeleton_count : 0;
    pub->last_skeletons_tracked = 0;
    for (int i = 0; i < pub->last_skeleton_count; i++)
        pub->last_skeletons_tracked += frame->skeletons[i].tracked;
    pub->last_hand_count = frame->hands ? frame->hand_count : 0;
    if (!frame->rigid_bodies)
        return; /* no rigid stage this frame: keep the last known list */
    pub->rigid_name_count = frame->rigid_body_count;
    for (int i = 0; i < frame->rigid_body_count; i++) {
        rigid_name *r = &pub->rigid_names[i];
        const km_rigid_pose *b = &frame->rigid_bodies[i];
        r->id = b->id;
        r->tracked = b->tracked;
        const char *name = frame->rigid_definitions ? frame->rigid_definitions[i].name : "";
        if (strncmp(r->name, name, sizeof r->name - 1) != 0)
            snprintf(r->name, sizeof r->name, "%s", name);
    }
}

km_status km_publisher_send(km_publisher *pub, km_solved_frame *frame)
{
    if (!pub || !frame)
        return km_error(KM_ERR_INVALID_ARGUMENT, "publisher: NULL argument");
    int marker_count = frame->markers ? frame->markers->count : 0;
    if (frame->camera_count < 0 || frame->camera_count > KM_WIRE_MAX_CAMERAS ||
        marker_count < 0 || marker_count > pub->max_markers ||
        (marker_count > 0 && !frame->markers->items) ||
        (frame->observations && (frame->observations->count < 0 ||
                                 (frame->observations->count > 0 &&
                                  !frame->observations->items)))) {
        atomic_fetch_add_explicit(&pub->rejected, 1, memory_order_relaxed);
        return km_error(KM_ERR_CAPACITY, "publisher: frame %llu has %d cameras and %d markers "
                        "(limits %d, %d)", (unsigned long long)frame->frame,
                        frame->camera_count, marker_count, KM_WIRE_MAX_CAMERAS,
                        pub->max_markers);
    }
    /* The v1.2 streams: a count over its limit (or negative) refuses the frame whole. */
    const struct {
        const char *name;
        const void *items;
        int count, limit;
    } streams[] = {
        {"rigid bodies", frame->rigid_bodies, frame->rigid_body_count, pub->max_rigid_bodies},
        {"skeletons", frame->skeletons, frame->skeleton_count, pub->max_skeletons},
        {"hands", frame->hands, frame->hand_count, pub->max_hands},
        {"events", frame->events, frame->event_count, pub->max_events},
    };
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        if (streams[i].items && (streams[i].count < 0 || streams[i].count > streams[i].limit)) {
            atomic_fetch_add_explicit(&pub->rejected, 1, memory_order_relaxed);
            return km_error(KM_ERR_CAPACITY, "publisher: frame %llu has %d %s (limit %d)",
                            (unsigned long long)frame->frame, streams[i].count,
                            streams[i].name, streams[i].limit);
        }
    }
    frame->publish_time_ns = km_time_now_ns();
    /* A failing transport is counted in its stats; the pipeline carries on. */
    if (pub->zmq)
        (void)km_zmq_pub_send(pub->zmq, frame);
    if (pub->osc)
        (void)km_osc_pub_send(pub->osc, frame);
    atomic_fetch_add_explicit(&pub->frames, 1, memory_order_relaxed);

    pub->last_frame = frame->frame;
    pub->last_capture_ns = frame->capture_time_ns;
    pub->last_publish_ns = frame->publish_time_ns;
    uint64_t latency = frame->publish_time_ns > frame->capture_time_ns
                           ? frame->publish_time_ns - frame->capture_time_ns : 0;
    if (latency > pub->latency_max_ns)
        pub->latency_max_ns = latency;
    pub->last_camera_count = frame->camera_count;
    memcpy(pub->last_observation_count, frame->observation_count,
           sizeof pub->last_observation_count);
    pub->last_marker_count = marker_count;
    pub->last_observation_total = frame->observations ? frame->observations->count : 0;
    remember_streams(pub, frame);
    km_publisher_tick(pub, frame->publish_time_ns);
    return KM_OK;
}

void km_publisher_stats_get(const km_publisher *pub, km_publisher_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!pub)
        return;
    if (pub->zmq)
        km_zmq_pub_counters(pub->zmq, &out->zmq_sent, &out->zmq_dropped);
    if (pub->osc)
        km_osc_pub_counters(pub->osc, &out->osc_sent, &out->osc_errors);
    out->frames = atomic_load_explicit(&pub->frames, memory_order_relaxed);
    out->rejected = atomic_load_explicit(&pub->rejected, memory_order_relaxed);
    out->status_sent = atomic_load_explicit(&pub->status_sent, memory_order_relaxed);
}

km_status km_publisher_send_gesture(km_publisher *pub, const km_gesture_event *event)
{
    if (!pub)
        return km_error(KM_ERR_INVALID_ARGUMENT, "publisher: NULL argument");
    char line[512];
    size_t length = km_gesture_event_json(event, line, sizeof line);
    if (length == 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "publisher: invalid gesture event");
    if (length >= sizeof line)
        return km_error(KM_ERR_CAPACITY, "publisher: gesture event JSON longer than %zu bytes",
                        sizeof line);
    if (!pub->zmq)
        return KM_OK;
    return km_zmq_pub_send_text(pub->zmq,
                                km_gesture_event_is_handeye(event->type) ? KM_WIRE_TOPIC_HANDEYE
                                                                         : KM_WIRE_TOPIC_GESTURE,
                                line, length);
}
