/* Gesture events for show control (docs/protocol.md "Events"): one plain OSC message per
 * event to each destination, and the JSON Lines form of formats.md used by the ZeroMQ
 * `gesture` topic and event logs. Both are written into stack buffers: no allocation. */
#include "transport_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool event_valid(const km_gesture_event *e)
{
    bool needs_name = e && (e->type == KM_EVENT_GESTURE || e->type <= KM_EVENT_POSE_END);
    return e && (unsigned)e->type < KM_EVENT_TYPE_COUNT && memchr(e->name, 0, sizeof e->name) &&
           memchr(e->target, 0, sizeof e->target) && (e->name[0] || !needs_name) &&
           e->person >= 0 && (unsigned)e->hand < KM_HAND_SIDE_COUNT && isfinite(e->score) &&
           e->score >= 0.0 && e->score <= 1.0;
}

static km_status invalid(const km_gesture_event *e)
{
    return km_error(KM_ERR_INVALID_ARGUMENT, "gesture event: %s",
                    !e ? "NULL" : "empty or unterminated name, negative person, unknown hand "
                                  "or score outside [0,1]");
}

size_t km_gesture_event_json(const km_gesture_event *e, char *out, size_t size)
{
    if (!event_valid(e) || (!out && size))
        return 0;
    return km_gesture_event_to_json(e, out, size);
}

km_event_sender_config km_event_sender_config_default(void)
{
    km_event_sender_config c;
    memset(&c, 0, sizeof c);
    c.destination_count = 1;
    snprintf(c.destinations[0].host, sizeof c.destinations[0].host, "127.0.0.1");
    snprintf(c.destinations[0].port, sizeof c.destinations[0].port, "9000");
    c.destinations[0].multicast_ttl = 1;
    return c;
}

km_status km_event_sender_config_read(const km_config *cfg, const char *path,
                                      km_event_sender_config *out)
{
    if (!cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "events config: NULL argument");
    const char *section = path && *path ? path : "transport.events";
    if (strlen(section) > 200)
        return km_error(KM_ERR_INVALID_ARGUMENT, "events config: path too long");
    km_event_sender_config c = km_event_sender_config_default();
    if (km_config_has(cfg, section)) {
        static const char *const known[] = {"enabled", "destinations", NULL};
        km_status st = km_config_check_keys(cfg, section, known);
        if (st)
            return st;
        char key[256];
        snprintf(key, sizeof key, "%s.enabled", section);
        st = km_config_get_bool(cfg, key, c.enabled, &c.enabled);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        snprintf(key, sizeof key, "%s.destinations", section);
        st = km_osc_destinations_read(cfg, key, c.destinations, KM_OSC_MAX_DESTINATIONS,
                                      &c.destination_count);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
    }
    *out = c;
    return KM_OK;
}

struct km_event_sender {
    km_osc_dest dests[KM_OSC_MAX_DESTINATIONS];
    int dest_count;
    km_osc_counters counters;
};

km_event_sender *km_event_sender_create(const km_event_sender_config *cfg, km_status *err)
{
    km_status st = KM_OK;
    if (!cfg || cfg->destination_count < 1 || cfg->destination_count > KM_OSC_MAX_DESTINATIONS)
        st = km_error(KM_ERR_INVALID_ARGUMENT, "events: destination_count outside 1..%d",
                      KM_OSC_MAX_DESTINATIONS);
    km_event_sender *s = st ? NULL : calloc(1, sizeof *s);
    if (!st && !s)
        st = km_error(KM_ERR_NO_MEMORY, "events: out of memory");
    for (int i = 0; !st && i < cfg->destination_count; i++) {
        st = km_osc_dest_open(&s->dests[i], &cfg->destinations[i]);
        if (!st)
            s->dest_count++;
    }
    if (st) {
        km_event_sender_destroy(s);
        s = NULL;
    }
    if (err)
        *err = st;
    return s;
}

void km_event_sender_destroy(km_event_sender *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->dest_count; i++)
        km_osc_dest_close(&s->dests[i]);
    free(s);
}

void km_event_sender_stats(const km_event_sender *s, km_osc_sender_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (s)
        km_osc_counters_get(&s->counters, out);
}

km_status km_event_send_gesture(km_event_sender *s, const km_gesture_event *e)
{
    if (!s)
        return km_error(KM_ERR_INVALID_ARGUMENT, "events: NULL sender");
    if (!event_valid(e))
        return invalid(e);
    uint8_t packet[256];
    km_osc_writer w;
    km_osc_writer_init(&w, packet, sizeof packet);
    km_osc_write_string(&w, "/kinema/gesture");
    km_osc_write_string(&w, ",sisf");
    km_osc_write_string(&w, e->name);
    km_osc_write_int32(&w, e->person);
    km_osc_write_string(&w, km_hand_side_name(e->hand));
    km_osc_write_float(&w, e->score);
    if (w.overflow) /* cannot happen: name < 64 bytes */
        return km_error(KM_ERR_INTERNAL, "events: message does not fit");
    for (int i = 0; i < s->dest_count; i++) {
        km_status st = km_osc_dest_send(&s->dests[i], packet, w.length);
        atomic_fetch_add_explicit(st ? &s->counters.errors : &s->counters.packets, 1,
                                  memory_order_relaxed);
    }
    return KM_OK;
}
