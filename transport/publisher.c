/* km_publisher: the transport stage's single entry point for the pipeline. Owns the ZeroMQ
 * and OSC publishers, reads the `transport:` config section, stamps publish time and keeps
 * the counters. Per frame it allocates nothing itself (see zmq_pub.c for libzmq's one
 * message allocation). */
#include "transport_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct km_publisher {
    km_zmq_pub *zmq;
    km_osc_pub *osc;
    int max_markers;
    _Atomic uint64_t frames;
    _Atomic uint64_t rejected;
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

    static const char *const known_top[] = {"zmq", "osc", "max_markers", NULL};
    static const char *const known_zmq[] = {"enabled", "endpoint", "sndhwm", NULL};
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

    snprintf(key, sizeof key, "%s.zmq.enabled", section);
    st = km_config_get_bool(cfg, key, c.zmq_enabled, &c.zmq_enabled);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    snprintf(key, sizeof key, "%s.zmq.endpoint", section);
    st = km_config_get_string(cfg, key, c.zmq_endpoint, c.zmq_endpoint,
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

    snprintf(key, sizeof key, "%s.osc.enabled", section);
    st = km_config_get_bool(cfg, key, c.osc_enabled, &c.osc_enabled);
    if (st && st != KM_ERR_NOT_FOUND)
        return st;
    snprintf(key, sizeof key, "%s.osc.host", section);
    st = km_config_get_string(cfg, key, c.osc_host, c.osc_host, sizeof c.osc_host);
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
    st = km_config_get_string(cfg, key, c.osc_port, c.osc_port, sizeof c.osc_port);
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
    if (!cfg || cfg->max_markers < 0) {
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
    pub->max_markers = cfg->max_markers;
    if (cfg->zmq_enabled) {
        pub->zmq = km_zmq_pub_create(cfg->zmq_endpoint, cfg->zmq_sndhwm, &st);
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
    free(pub);
}

const char *km_publisher_zmq_endpoint(const km_publisher *pub)
{
    return pub && pub->zmq ? km_zmq_pub_endpoint(pub->zmq) : "";
}

km_status km_publisher_send(km_publisher *pub, km_solved_frame *frame)
{
    if (!pub || !frame)
        return km_error(KM_ERR_INVALID_ARGUMENT, "publisher: NULL argument");
    int marker_count = frame->markers ? frame->markers->count : 0;
    if (frame->camera_count < 0 || frame->camera_count > KM_WIRE_MAX_CAMERAS ||
        marker_count < 0 || marker_count > pub->max_markers ||
        (marker_count > 0 && !frame->markers->items)) {
        atomic_fetch_add_explicit(&pub->rejected, 1, memory_order_relaxed);
        return km_error(KM_ERR_CAPACITY, "publisher: frame %llu has %d cameras and %d markers "
                        "(limits %d, %d)", (unsigned long long)frame->frame,
                        frame->camera_count, marker_count, KM_WIRE_MAX_CAMERAS,
                        pub->max_markers);
    }
    frame->publish_time_ns = km_time_now_ns();
    /* A failing transport is counted in its stats; the pipeline carries on. */
    if (pub->zmq)
        (void)km_zmq_pub_send(pub->zmq, frame);
    if (pub->osc)
        (void)km_osc_pub_send(pub->osc, frame);
    atomic_fetch_add_explicit(&pub->frames, 1, memory_order_relaxed);
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
}
