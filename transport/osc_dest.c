/* Destinations of the OSC streams (VMC, events): one non-blocking UDP socket each, unicast
 * or multicast, with a per-destination rate limit, and the config reader for their list.
 *
 * Why a socket per destination: the multicast TTL is a socket option, and a full send
 * buffer towards one receiver must not cost another receiver its packets. */
#include "transport_internal.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

km_status km_osc_destination_check(const km_osc_destination *cfg)
{
    if (!cfg->host[0])
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc destination: host is empty");
    for (const char *p = cfg->host; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == 0x7f)
            return km_error(KM_ERR_INVALID_ARGUMENT, "osc destination '%s': expected a host "
                            "name or address", cfg->host);
    if (km_port_validate(cfg->port) != KM_OK)
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc destination %s: port '%s': expected "
                        "1..65535", cfg->host, cfg->port);
    if (!(cfg->max_rate_hz >= 0.0 && cfg->max_rate_hz <= 100000.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc destination %s:%s: max_rate_hz %g "
                        "outside 0..100000", cfg->host, cfg->port, cfg->max_rate_hz);
    if (cfg->multicast_ttl < 0 || cfg->multicast_ttl > 255)
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc destination %s:%s: multicast_ttl %d "
                        "outside 0..255", cfg->host, cfg->port, cfg->multicast_ttl);
    return KM_OK;
}

km_status km_osc_dest_open(km_osc_dest *dest, const km_osc_destination *cfg)
{
    memset(dest, 0, sizeof *dest);
    dest->fd = -1;
    km_status st = km_osc_destination_check(cfg);
    if (st)
        return st;
    snprintf(dest->name, sizeof dest->name, "%s:%s", cfg->host, cfg->port);
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(cfg->host, cfg->port, &hints, &found);
    if (gai != 0 || !found)
        return km_error(KM_ERR_IO, "osc: cannot resolve %s: %s", dest->name,
                        gai_strerror(gai));
    memcpy(&dest->address, found->ai_addr, found->ai_addrlen);
    dest->address_length = found->ai_addrlen;
    int family = found->ai_family;
    freeaddrinfo(found);
    dest->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (dest->fd < 0)
        return km_error(KM_ERR_IO, "osc: socket for %s: %s", dest->name, strerror(errno));
    int ttl = cfg->multicast_ttl;
    if (family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&dest->address;
        dest->multicast = IN_MULTICAST(ntohl(in->sin_addr.s_addr));
        if (dest->multicast &&
            setsockopt(dest->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0)
            st = km_error(KM_ERR_IO, "osc: IP_MULTICAST_TTL for %s: %s", dest->name,
                          strerror(errno));
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&dest->address;
        dest->multicast = IN6_IS_ADDR_MULTICAST(&in6->sin6_addr);
        if (dest->multicast &&
            setsockopt(dest->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) != 0)
            st = km_error(KM_ERR_IO, "osc: IPV6_MULTICAST_HOPS for %s: %s", dest->name,
                          strerror(errno));
    }
    if (st) {
        km_osc_dest_close(dest);
        return st;
    }
    dest->interval_ns = cfg->max_rate_hz > 0.0 ? (uint64_t)llround(1e9 / cfg->max_rate_hz) : 0;
    km_log(KM_LOG_INFO, "transport", "osc destination %s%s%s", dest->name,
           dest->multicast ? " (multicast)" : "", dest->interval_ns ? ", rate limited" : "");
    return KM_OK;
}

void km_osc_dest_close(km_osc_dest *dest)
{
    if (dest && dest->fd >= 0) {
        close(dest->fd);
        dest->fd = -1;
    }
}

bool km_osc_dest_due(km_osc_dest *dest, uint64_t now_ns)
{
    if (dest->interval_ns == 0)
        return true;
    if (dest->next_due_ns != 0 && now_ns < dest->next_due_ns)
        return false;
    /* Book the next slot one interval after this one; a source faster than the limit then
     * averages exactly max_rate_hz. After a gap (or at start) restart from now, so a burst
     * after a pause does not catch up on missed slots. */
    if (dest->next_due_ns == 0 || now_ns - dest->next_due_ns >= dest->interval_ns)
        dest->next_due_ns = now_ns + dest->interval_ns;
    else
        dest->next_due_ns += dest->interval_ns;
    return true;
}

km_status km_osc_dest_send(const km_osc_dest *dest, const uint8_t *buf, size_t length)
{
    ssize_t n = sendto(dest->fd, buf, length, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (const struct sockaddr *)&dest->address, dest->address_length);
    if (n == (ssize_t)length)
        return KM_OK;
    int error = n < 0 ? errno : EMSGSIZE;
    if (error == EAGAIN || error == EWOULDBLOCK)
        return KM_ERR_AGAIN;
    return km_error(KM_ERR_IO, "osc: sendto %s: %s", dest->name, strerror(error));
}

void km_osc_counters_get(const km_osc_counters *c, km_osc_sender_stats *out)
{
    out->packets = atomic_load_explicit(&c->packets, memory_order_relaxed);
    out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
    out->rate_limited = atomic_load_explicit(&c->rate_limited, memory_order_relaxed);
}

/* "file:line: key: why". */
static km_status bad(const km_config *cfg, const char *key, const char *why)
{
    return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                    km_config_line(cfg, key), key, why);
}

km_status km_osc_destinations_read(const km_config *cfg, const char *path,
                                   km_osc_destination *out, int capacity, int *count)
{
    if (!cfg || !path || !out || !count || capacity < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc destinations: bad argument");
    if (strlen(path) > 200)
        return km_error(KM_ERR_INVALID_ARGUMENT, "osc destinations: path too long");
    km_config_kind kind = km_config_type(cfg, path);
    if (kind == KM_CONFIG_ABSENT)
        return km_error(KM_ERR_NOT_FOUND, "%s: not found", path);
    if (kind != KM_CONFIG_SEQUENCE)
        return bad(cfg, path, "expected a list of {host, port, max_rate_hz, multicast_ttl}");
    size_t n = km_config_count(cfg, path);
    if (n < 1 || n > (size_t)capacity) {
        char why[96];
        snprintf(why, sizeof why, "expected 1..%d destinations, got %zu", capacity, n);
        return bad(cfg, path, why);
    }
    static const char *const known[] = {"host", "port", "max_rate_hz", "multicast_ttl", NULL};
    char item[256], key[300];
    for (size_t i = 0; i < n; i++) {
        km_osc_destination d;
        memset(&d, 0, sizeof d);
        snprintf(d.host, sizeof d.host, "127.0.0.1");
        d.multicast_ttl = 1;
        snprintf(item, sizeof item, "%s.%zu", path, i);
        if (km_config_type(cfg, item) != KM_CONFIG_MAPPING)
            return bad(cfg, item, "expected a mapping {host, port, ...}");
        km_status st = km_config_check_keys(cfg, item, known);
        if (st)
            return st;
        snprintf(key, sizeof key, "%s.host", item);
        st = km_config_get_string(cfg, key, "127.0.0.1", d.host, sizeof d.host);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        snprintf(key, sizeof key, "%s.port", item);
        st = km_config_get_string(cfg, key, "", d.port, sizeof d.port);
        if (st == KM_ERR_NOT_FOUND)
            return bad(cfg, item, "port is required");
        if (st)
            return st;
        if (km_port_validate(d.port) != KM_OK)
            return bad(cfg, key, "expected a port number 1..65535");
        snprintf(key, sizeof key, "%s.max_rate_hz", item);
        st = km_config_get_double(cfg, key, 0.0, 0.0, 100000.0, &d.max_rate_hz);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        long ttl;
        snprintf(key, sizeof key, "%s.multicast_ttl", item);
        st = km_config_get_int(cfg, key, 1, 0, 255, &ttl);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        d.multicast_ttl = (int)ttl;
        snprintf(key, sizeof key, "%s.host", item);
        if (km_osc_destination_check(&d) != KM_OK)
            return bad(cfg, key, km_last_error());
        out[i] = d;
    }
    *count = (int)n;
    return KM_OK;
}
