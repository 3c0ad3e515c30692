/* Input messages from outside trackers (docs/protocol.md "Input"): hand landmarks and gaze
 * over OSC (UDP) and over ZeroMQ (JSON on a ROUTER socket), decoded and validated into
 * km_input_message for the gesture stage.
 *
 * All or nothing: a packet is decoded into a scratch array first and handed out only when
 * every message in it is valid, so a malformed packet changes nothing; its sender gets an
 * error reply. The receiver allocates its buffers at create; polling allocates nothing in
 * Kinema's code (libzmq allocates the messages it receives). */
#include "transport_internal.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define INPUT_MAX_COORDINATE_M 100.0
#define INPUT_MAX_PERSON 1023
#define INPUT_DATAGRAM_BYTES 65536
#define INPUT_SCRATCH 64
#define INPUT_TOKENS 256

/* --------------------------------------------------------------- checks */

static km_status check_vec(km_vec3 v, const char *what, int index)
{
    if (!isfinite(v.x) || !isfinite(v.y) || !isfinite(v.z) ||
        fabs(v.x) > INPUT_MAX_COORDINATE_M || fabs(v.y) > INPUT_MAX_COORDINATE_M ||
        fabs(v.z) > INPUT_MAX_COORDINATE_M)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: %s %d is not finite or beyond "
                        "%.0f m", what, index, INPUT_MAX_COORDINATE_M);
    return KM_OK;
}

static km_status check_common(int person, double confidence)
{
    if (person < 0 || person > INPUT_MAX_PERSON)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: person %d outside 0..%d", person,
                        INPUT_MAX_PERSON);
    if (!(confidence >= 0.0 && confidence <= 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: confidence %g outside [0, 1]",
                        confidence);
    return KM_OK;
}

static km_status finish_gaze(km_gaze_input *g)
{
    km_status st = check_common(g->person, g->confidence);
    if (!st)
        st = check_vec(g->origin_m, "gaze origin", 0);
    if (!st)
        st = check_vec(g->direction, "gaze direction", 0);
    if (st)
        return st;
    double norm = km_vec3_norm(g->direction);
    if (!(norm > 1e-6))
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: gaze direction is zero");
    g->direction = km_vec3_scale(g->direction, 1.0 / norm);
    return KM_OK;
}

static km_status finish_hand(km_hand_input *h)
{
    km_status st = check_common(h->person, h->confidence);
    if (st)
        return st;
    if (h->hand != KM_HAND_SIDE_LEFT && h->hand != KM_HAND_SIDE_RIGHT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: hand must be \"left\" or \"right\"");
    for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++)
        if ((st = check_vec(h->landmarks_m[i], "hand landmark", i)))
            return st;
    return KM_OK;
}

/* ------------------------------------------------------------------ OSC */

typedef struct osc_decode {
    km_input_message *out;
    int capacity, count;
    uint64_t now_ns;
} osc_decode;

static bool is_float(char t)
{
    return t == 'f' || t == 'd';
}

static double number(const km_osc_arg *a)
{
    return a->type == 'f' ? (double)a->f : a->d;
}

/* time_ns: 'h' or 'i' (python-osc sends 0 as i), never negative. */
static km_status read_time(const km_osc_arg *a, uint64_t now_ns, uint64_t *out)
{
    int64_t t = a->type == 'h' ? a->h : a->type == 'i' ? a->i : -1;
    if (t < 0 || (a->type != 'h' && a->type != 'i'))
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: time_ns must be a non-negative "
                        "int64 (h) or int32 (i)");
    *out = t ? (uint64_t)t : now_ns;
    return KM_OK;
}

static km_status on_osc_message(void *user, const km_osc_message *m)
{
    osc_decode *d = user;
    if (d->count >= d->capacity)
        return km_error(KM_ERR_CAPACITY, "input: more than %d messages in one packet",
                        d->capacity);
    km_input_message *out = &d->out[d->count];
    memset(out, 0, sizeof *out);
    km_status st;
    if (strcmp(m->address, "/kinema/input/hand") == 0) {
        /* ,i s h f + 63 f: person hand time_ns confidence, 21 x (x y z) */
        if (m->argc != 4 + 3 * KM_HAND_LANDMARK_COUNT || m->args[0].type != 'i' ||
            m->args[1].type != 's' || !is_float(m->args[3].type))
            return km_error(KM_ERR_FORMAT, "input: /kinema/input/hand expects ,ishf then 63 "
                            "floats (got ,%s)", m->types);
        for (int a = 4; a < m->argc; a++)
            if (!is_float(m->args[a].type))
                return km_error(KM_ERR_FORMAT, "input: /kinema/input/hand argument %d must "
                                "be a float", a);
        km_hand_input *h = &out->hand;
        out->kind = KM_INPUT_HAND;
        h->person = m->args[0].i;
        if (strcmp(m->args[1].s, "left") == 0)
            h->hand = KM_HAND_SIDE_LEFT;
        else if (strcmp(m->args[1].s, "right") == 0)
            h->hand = KM_HAND_SIDE_RIGHT;
        else
            return km_error(KM_ERR_INVALID_ARGUMENT, "input: hand must be \"left\" or "
                            "\"right\"");
        if ((st = read_time(&m->args[2], d->now_ns, &h->time_ns)))
            return st;
        h->confidence = number(&m->args[3]);
        for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++)
            h->landmarks_m[i] = km_vec3_make(number(&m->args[4 + 3 * i]),
                                             number(&m->args[5 + 3 * i]),
                                             number(&m->args[6 + 3 * i]));
        st = finish_hand(h);
    } else if (strcmp(m->address, "/kinema/input/gaze") == 0) {
        /* ,i h f f f f f f f: person time_ns origin xyz direction xyz confidence */
        if (m->argc != 9 || m->args[0].type != 'i')
            return km_error(KM_ERR_FORMAT, "input: /kinema/input/gaze expects ,ihfffffff "
                            "(got ,%s)", m->types);
        for (int a = 2; a < 9; a++)
            if (!is_float(m->args[a].type))
                return km_error(KM_ERR_FORMAT, "input: /kinema/input/gaze argument %d must "
                                "be a float", a);
        km_gaze_input *g = &out->gaze;
        out->kind = KM_INPUT_GAZE;
        g->person = m->args[0].i;
        if ((st = read_time(&m->args[1], d->now_ns, &g->time_ns)))
            return st;
        g->origin_m = km_vec3_make(number(&m->args[2]), number(&m->args[3]),
                                   number(&m->args[4]));
        g->direction = km_vec3_make(number(&m->args[5]), number(&m->args[6]),
                                    number(&m->args[7]));
        g->confidence = number(&m->args[8]);
        st = finish_gaze(g);
    } else {
        return km_error(KM_ERR_FORMAT, "input: unknown address %s (expected "
                        "/kinema/input/hand or /kinema/input/gaze)", m->address);
    }
    if (st)
        return st;
    d->count++;
    return KM_OK;
}

km_status km_input_decode_osc(const uint8_t *buf, size_t length, uint64_t now_ns,
                              km_input_message *out, int capacity, int *count)
{
    if (!out || !count || capacity < 1 || (!buf && length))
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: bad argument");
    osc_decode d = {out, capacity, 0, now_ns};
    km_status st = km_osc_parse_packet(buf, length, on_osc_message, &d, NULL);
    *count = st ? 0 : d.count;
    return st;
}

/* ----------------------------------------------------------------- JSON */

typedef struct json_doc {
    const char *text;
    const km_json_token *t;
} json_doc;

static km_status json_number(const json_doc *j, int object, const char *key, bool required,
                             double fallback, double *out)
{
    int v = km_json_token_member(j->text, j->t, object, key);
    if (v < 0) {
        if (required)
            return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"%s\" is required", key);
        *out = fallback;
        return KM_OK;
    }
    if (j->t[v].type != KM_JTOK_NUMBER)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"%s\" must be a number", key);
    *out = j->t[v].number;
    return KM_OK;
}

static km_status json_vec(const json_doc *j, int v, const char *key, km_vec3 *out)
{
    if (v < 0 || j->t[v].type != KM_JTOK_ARRAY || j->t[v].children != 3)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"%s\" must be [x, y, z]", key);
    double c[3];
    for (int i = 0; i < 3; i++) {
        if (j->t[v + 1 + i].type != KM_JTOK_NUMBER)
            return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"%s\" must be [x, y, z] numbers",
                            key);
        c[i] = j->t[v + 1 + i].number;
    }
    *out = km_vec3_make(c[0], c[1], c[2]);
    return KM_OK;
}

static km_status json_check_keys(const json_doc *j, const char *const *known)
{
    int k = 1;
    for (uint32_t m = 0; m < j->t[0].children; m++) {
        char key[32];
        bool ok = km_json_token_string(j->text, &j->t[k], key, sizeof key);
        for (int i = 0; ok && known[i]; i++)
            if (strcmp(known[i], key) == 0)
                goto next;
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: unknown member \"%s\"",
                        ok ? key : "(long)");
    next:
        k = (int)j->t[k + 1].next;
    }
    return KM_OK;
}

km_status km_input_decode_json(const char *text, size_t length, uint64_t now_ns,
                               km_input_message *out)
{
    if (!text || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: NULL argument");
    km_json_token tokens[INPUT_TOKENS];
    int count;
    km_status st = km_json_tokens_parse(text, length, tokens, INPUT_TOKENS, &count);
    if (st)
        return km_error(KM_ERR_FORMAT, "input: malformed JSON: %s", km_last_error());
    json_doc j = {text, tokens};
    if (tokens[0].type != KM_JTOK_OBJECT)
        return km_error(KM_ERR_FORMAT, "input: expected a JSON object");
    int type = km_json_token_member(text, tokens, 0, "type");
    char kind[16] = "";
    if (type < 0 || tokens[type].type != KM_JTOK_STRING ||
        !km_json_token_string(text, &tokens[type], kind, sizeof kind) ||
        (strcmp(kind, "hand") != 0 && strcmp(kind, "gaze") != 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"type\" must be \"hand\" or "
                        "\"gaze\"");
    bool hand = strcmp(kind, "hand") == 0;
    static const char *const hand_keys[] = {"type", "person", "hand", "t_ns", "confidence",
                                            "landmarks", NULL};
    static const char *const gaze_keys[] = {"type", "person", "t_ns", "confidence", "origin",
                                            "direction", NULL};
    if ((st = json_check_keys(&j, hand ? hand_keys : gaze_keys)))
        return st;
    km_input_message m;
    memset(&m, 0, sizeof m);
    double person, t_ns, confidence;
    if ((st = json_number(&j, 0, "person", false, 0, &person)) ||
        (st = json_number(&j, 0, "t_ns", false, 0, &t_ns)) ||
        (st = json_number(&j, 0, "confidence", false, 1.0, &confidence)))
        return st;
    if (person != floor(person) || person < 0 || person > INPUT_MAX_PERSON)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"person\" must be an integer "
                        "0..%d", INPUT_MAX_PERSON);
    /* Integers above 2^53 are not exact in a double; t_ns is accepted up to there. */
    if (t_ns != floor(t_ns) || t_ns < 0 || t_ns > 9007199254740992.0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"t_ns\" must be an integer "
                        "0..2^53");
    uint64_t time_ns = t_ns > 0 ? (uint64_t)t_ns : now_ns;
    if (hand) {
        km_hand_input *h = &m.hand;
        m.kind = KM_INPUT_HAND;
        h->person = (int)person;
        h->time_ns = time_ns;
        h->confidence = confidence;
        int side = km_json_token_member(text, tokens, 0, "hand");
        char name[16] = "";
        if (side < 0 || tokens[side].type != KM_JTOK_STRING ||
            !km_json_token_string(text, &tokens[side], name, sizeof name) ||
            (strcmp(name, "left") != 0 && strcmp(name, "right") != 0))
            return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"hand\" must be \"left\" or "
                            "\"right\"");
        h->hand = strcmp(name, "left") == 0 ? KM_HAND_SIDE_LEFT : KM_HAND_SIDE_RIGHT;
        int lm = km_json_token_member(text, tokens, 0, "landmarks");
        if (lm < 0 || tokens[lm].type != KM_JTOK_ARRAY ||
            tokens[lm].children != KM_HAND_LANDMARK_COUNT)
            return km_error(KM_ERR_INVALID_ARGUMENT, "input: \"landmarks\" must be %d "
                            "[x, y, z] points", KM_HAND_LANDMARK_COUNT);
        int v = lm + 1;
        for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++) {
            if ((st = json_vec(&j, v, "landmarks", &h->landmarks_m[i])))
                return st;
            v = (int)tokens[v].next;
        }
        st = finish_hand(h);
    } else {
        km_gaze_input *g = &m.gaze;
        m.kind = KM_INPUT_GAZE;
        g->person = (int)person;
        g->time_ns = time_ns;
        g->confidence = confidence;
        if ((st = json_vec(&j, km_json_token_member(text, tokens, 0, "origin"), "origin",
                           &g->origin_m)) ||
            (st = json_vec(&j, km_json_token_member(text, tokens, 0, "direction"), "direction",
                           &g->direction)))
            return st;
        st = finish_gaze(g);
    }
    if (st)
        return st;
    *out = m;
    return KM_OK;
}

/* ------------------------------------------------------------- receiver */

km_input_config km_input_config_default(void)
{
    km_input_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.osc_host, sizeof c.osc_host, "127.0.0.1");
    snprintf(c.osc_port, sizeof c.osc_port, "9100");
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:5557");
    return c;
}

km_status km_input_config_read(const km_config *cfg, const char *path, km_input_config *out)
{
    if (!cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input config: NULL argument");
    const char *section = path && *path ? path : "transport.input";
    if (strlen(section) > 200)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input config: path too long");
    km_input_config c = km_input_config_default();
    const km_input_config defaults = c;
    if (km_config_has(cfg, section)) {
        static const char *const known[] = {"enabled", "osc_host", "osc_port", "zmq_endpoint",
                                            "curve_secret_key_file", NULL};
        km_status st = km_config_check_keys(cfg, section, known);
        if (st)
            return st;
        char key[256];
        snprintf(key, sizeof key, "%s.enabled", section);
        st = km_config_get_bool(cfg, key, c.enabled, &c.enabled);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        static const struct {
            const char *name;
            size_t offset, size;
        } strings[] = {
            {"osc_host", offsetof(km_input_config, osc_host), sizeof c.osc_host},
            {"osc_port", offsetof(km_input_config, osc_port), sizeof c.osc_port},
            {"zmq_endpoint", offsetof(km_input_config, zmq_endpoint), sizeof c.zmq_endpoint},
            {"curve_secret_key_file", offsetof(km_input_config, curve_secret_key_file),
             sizeof c.curve_secret_key_file},
        };
        for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
            snprintf(key, sizeof key, "%s.%s", section, strings[i].name);
            st = km_config_get_string(cfg, key, (const char *)&defaults + strings[i].offset,
                                      (char *)&c + strings[i].offset, strings[i].size);
            if (st && st != KM_ERR_NOT_FOUND)
                return st;
        }
        const char *why = NULL;
        snprintf(key, sizeof key, "%s.osc_port", section);
        if (c.osc_host[0] && strcmp(c.osc_port, "0") != 0 && km_port_validate(c.osc_port))
            why = "expected a port number 1..65535 (or 0: any free port)";
        if (!why && c.zmq_endpoint[0]) {
            snprintf(key, sizeof key, "%s.zmq_endpoint", section);
            if (km_zmq_endpoint_validate(c.zmq_endpoint))
                why = km_last_error();
            else if (!c.curve_secret_key_file[0] && !km_zmq_endpoint_is_local(c.zmq_endpoint))
                why = "a non-loopback endpoint needs input.curve_secret_key_file (CurveZMQ)";
        }
        if (why)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                            km_config_line(cfg, key), key, why);
    }
    *out = c;
    return KM_OK;
}

struct km_input_receiver {
    int fd;                            /* UDP, -1 when OSC is off */
    int osc_port;
    void *context, *router;
    char endpoint[256];
    uint8_t *datagram;                 /* INPUT_DATAGRAM_BYTES */
    km_input_message scratch[INPUT_SCRATCH];
    _Atomic uint64_t accepted, rejected;
};

km_input_receiver *km_input_receiver_create(const km_input_config *cfg, km_status *err)
{
    km_status st = KM_OK;
    km_input_receiver *r = cfg ? calloc(1, sizeof *r) : NULL;
    if (!r) {
        if (err)
            *err = km_error(cfg ? KM_ERR_NO_MEMORY : KM_ERR_INVALID_ARGUMENT,
                            "input: %s", cfg ? "out of memory" : "NULL config");
        return NULL;
    }
    r->fd = -1;
    if (!(r->datagram = malloc(INPUT_DATAGRAM_BYTES))) {
        st = km_error(KM_ERR_NO_MEMORY, "input: out of memory");
        goto fail;
    }
    if (cfg->osc_host[0]) {
        struct addrinfo hints = {0}, *found = NULL;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
        int gai = getaddrinfo(cfg->osc_host, cfg->osc_port, &hints, &found);
        if (gai != 0 || !found) {
            st = km_error(KM_ERR_IO, "input: cannot resolve %s:%s: %s", cfg->osc_host,
                          cfg->osc_port, gai_strerror(gai));
            goto fail;
        }
        r->fd = socket(found->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (r->fd < 0 || bind(r->fd, found->ai_addr, found->ai_addrlen) != 0) {
            st = km_error(KM_ERR_IO, "input: bind udp %s:%s: %s", cfg->osc_host,
                          cfg->osc_port, strerror(errno));
            freeaddrinfo(found);
            goto fail;
        }
        freeaddrinfo(found);
        struct sockaddr_storage bound;
        socklen_t size = sizeof bound;
        getsockname(r->fd, (struct sockaddr *)&bound, &size);
        char port[16];
        getnameinfo((struct sockaddr *)&bound, size, NULL, 0, port, sizeof port,
                    NI_NUMERICSERV);
        r->osc_port = atoi(port);
    }
    if (cfg->zmq_endpoint[0]) {
        km_zmq_curve_keys keys;
        memset(&keys, 0, sizeof keys);
        if (cfg->curve_secret_key_file[0] &&
            (st = km_zmq_curve_load(cfg->curve_secret_key_file, &keys)))
            goto fail;
        if ((st = km_zmq_endpoint_validate(cfg->zmq_endpoint)))
            goto fail;
        int linger = 0, hwm = 1000;
        int64_t max_message = 1 << 20;
        r->context = zmq_ctx_new();
        r->router = r->context ? zmq_socket(r->context, ZMQ_ROUTER) : NULL;
        if (!r->router || zmq_setsockopt(r->router, ZMQ_LINGER, &linger, sizeof linger) ||
            zmq_setsockopt(r->router, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
            zmq_setsockopt(r->router, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message)) {
            st = km_error(KM_ERR_IO, "input: zmq socket: %s", zmq_strerror(errno));
            goto fail;
        }
        if ((st = km_zmq_bind_secure(r->router, cfg->zmq_endpoint, &keys, "input socket",
                                     r->endpoint, sizeof r->endpoint)))
            goto fail;
    }
    km_log(KM_LOG_INFO, "transport", "input: OSC udp port %d, ZeroMQ %s", r->osc_port,
           r->endpoint[0] ? r->endpoint : "off");
    if (err)
        *err = KM_OK;
    return r;
fail:
    km_input_receiver_destroy(r);
    if (err)
        *err = st;
    return NULL;
}

void km_input_receiver_destroy(km_input_receiver *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->router)
        zmq_close(r->router);
    if (r->context)
        zmq_ctx_term(r->context);
    free(r->datagram);
    free(r);
}

int km_input_receiver_osc_port(const km_input_receiver *r)
{
    return r ? r->osc_port : 0;
}

const char *km_input_receiver_zmq_endpoint(const km_input_receiver *r)
{
    return r ? r->endpoint : "";
}

void km_input_receiver_stats(const km_input_receiver *r, km_input_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    out->accepted = atomic_load_explicit(&r->accepted, memory_order_relaxed);
    out->rejected = atomic_load_explicit(&r->rejected, memory_order_relaxed);
}

/* /kinema/input/error ,ss <address or "?"> <why> back to the sender of a bad packet. */
static void osc_error_reply(km_input_receiver *r, const struct sockaddr *to, socklen_t size,
                            const char *why)
{
    uint8_t packet[768];
    km_osc_writer w;
    km_osc_writer_init(&w, packet, sizeof packet);
    km_osc_write_string(&w, "/kinema/input/error");
    km_osc_write_string(&w, ",s");
    char text[600];
    snprintf(text, sizeof text, "%s", why);
    km_osc_write_string(&w, text);
    if (!w.overflow)
        (void)sendto(r->fd, packet, w.length, MSG_DONTWAIT | MSG_NOSIGNAL, to, size);
}

static void take(km_input_receiver *r, km_input_message *out, int capacity, int *count,
                 const km_input_message *messages, int n)
{
    for (int i = 0; i < n && *count < capacity; i++)
        out[(*count)++] = messages[i];
    atomic_fetch_add_explicit(&r->accepted, (uint64_t)n, memory_order_relaxed);
}

static void poll_osc(km_input_receiver *r, km_input_message *out, int capacity, int *count)
{
    while (*count < capacity) {
        struct sockaddr_storage from;
        socklen_t size = sizeof from;
        ssize_t n = recvfrom(r->fd, r->datagram, INPUT_DATAGRAM_BYTES, MSG_DONTWAIT,
                             (struct sockaddr *)&from, &size);
        if (n < 0)
            return; /* EAGAIN: nothing more */
        int room = capacity - *count < INPUT_SCRATCH ? capacity - *count : INPUT_SCRATCH;
        int decoded = 0;
        km_status st = km_input_decode_osc(r->datagram, (size_t)n, km_time_now_ns(),
                                           r->scratch, room, &decoded);
        if (st) {
            atomic_fetch_add_explicit(&r->rejected, 1, memory_order_relaxed);
            km_log(KM_LOG_DEBUG, "transport", "input: refused an OSC packet: %s",
                   km_last_error());
            osc_error_reply(r, (struct sockaddr *)&from, size, km_last_error());
            continue;
        }
        take(r, out, capacity, count, r->scratch, decoded);
    }
}

static void zmq_reply(km_input_receiver *r, zmq_msg_t *identity, bool envelope,
                      const char *text)
{
    zmq_msg_send(identity, r->router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (envelope)
        zmq_send(r->router, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(r->router, text, strlen(text), ZMQ_DONTWAIT);
}

static void poll_zmq(km_input_receiver *r, km_input_message *out, int capacity, int *count)
{
    while (*count < capacity) {
        zmq_msg_t identity, part;
        zmq_msg_init(&identity);
        if (zmq_msg_recv(&identity, r->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&identity);
            return;
        }
        /* DEALER: [identity][payload]; REQ: [identity][""][payload]. */
        int parts = 0;
        bool envelope = false;
        km_status st = KM_OK;
        km_input_message message;
        zmq_msg_init(&part);
        bool more = zmq_msg_more(&identity);
        while (more) {
            zmq_msg_close(&part);
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, r->router, 0) < 0)
                break;
            more = zmq_msg_more(&part);
            parts++;
            if (st)
                continue; /* already refused: drain the rest */
            if (parts == 1 && more && zmq_msg_size(&part) == 0) {
                envelope = true;
                continue;
            }
            if (more || parts > 1 + envelope)
                st = km_error(KM_ERR_FORMAT, "input: one JSON object per message, in one "
                              "frame");
            else
                st = km_input_decode_json(zmq_msg_data(&part), zmq_msg_size(&part),
                                          km_time_now_ns(), &message);
        }
        zmq_msg_close(&part);
        if (parts == 0)
            st = km_error(KM_ERR_FORMAT, "input: empty message");
        if (st) {
            atomic_fetch_add_explicit(&r->rejected, 1, memory_order_relaxed);
            char why[KM_ERROR_MESSAGE_MAX * 2], reply[sizeof why + 32];
            km_json_escape(why, sizeof why, km_last_error());
            snprintf(reply, sizeof reply, "{\"ok\":false,\"error\":\"%s\"}", why);
            zmq_reply(r, &identity, envelope, reply);
        } else {
            take(r, out, capacity, count, &message, 1);
            if (envelope) /* a REQ client waits for an answer */
                zmq_reply(r, &identity, true, "{\"ok\":true}");
        }
        zmq_msg_close(&identity);
    }
}

km_status km_input_poll(km_input_receiver *r, km_input_message *out, int capacity, int *count)
{
    if (!r || !out || capacity < 1 || !count)
        return km_error(KM_ERR_INVALID_ARGUMENT, "input: bad argument");
    *count = 0;
    if (r->fd >= 0)
        poll_osc(r, out, capacity, count);
    if (r->router)
        poll_zmq(r, out, capacity, count);
    return KM_OK;
}
