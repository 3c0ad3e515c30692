/* The control socket (docs/protocol.md "Control"): JSON requests over a ZeroMQ REP socket,
 * validated strictly, dispatched to the handlers the pipeline registered, answered with a
 * JSON reply. Polled from the solver thread: km_control_poll never blocks, and handlers
 * run on that thread, so they may touch the pipeline without locks.
 *
 * A malformed request changes nothing: it is parsed and validated completely (JSON
 * grammar, command name, every member's presence, type and range) before any handler is
 * called, and the reply names what is wrong. */
#include "transport_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CONTROL_TOKENS 256
#define CONTROL_REPLY_BYTES 65536
#define CONTROL_POLL_BATCH 16
/* Larger messages make libzmq drop the connection instead of buffering them. */
#define CONTROL_MAX_MESSAGE_BYTES (1 << 20)

static const char *const command_names[KM_CONTROL_COMMAND_COUNT] = {
    "status", "list_cameras", "start_recording", "stop_recording", "reload_calibration",
    "define_rigid", "calibrate"};

const char *km_control_command_name(km_control_command command)
{
    return (unsigned)command < KM_CONTROL_COMMAND_COUNT ? command_names[command] : NULL;
}

struct km_control_reply {
    char *buf;
    size_t size, length;
    bool overflow;
};

struct km_control {
    void *context;
    void *socket;
    char endpoint[256];
    int max_request_bytes;
    km_control_handler handlers[KM_CONTROL_COMMAND_COUNT];
    void *users[KM_CONTROL_COMMAND_COUNT];
    km_publisher *publisher;
    char *reply;                       /* CONTROL_REPLY_BYTES */
};

/* ------------------------------------------------------------ reply writer */

static void put(km_control_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(km_control_reply *r, const char *fmt, ...)
{
    if (r->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->buf + r->length, r->size - r->length, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= r->size - r->length)
        r->overflow = true;
    else
        r->length += (size_t)n;
}

/* A JSON string literal (with quotes) of `text`. */
static void put_string(km_control_reply *r, const char *text)
{
    if (r->overflow)
        return;
    if (r->size - r->length < 3) {
        r->overflow = true;
        return;
    }
    r->buf[r->length++] = '"';
    size_t room = r->size - r->length - 1; /* keep one byte for the closing quote */
    size_t need = km_json_escape(r->buf + r->length, room, text);
    if (need >= room) {
        r->overflow = true;
        return;
    }
    r->length += need;
    r->buf[r->length++] = '"';
    r->buf[r->length] = '\0';
}

static bool key_ok(const char *key)
{
    if (!key || !*key)
        return false;
    for (const char *c = key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static km_status add_key(km_control_reply *r, const char *key)
{
    if (!r || !key_ok(key))
        return km_error(KM_ERR_INVALID_ARGUMENT, "control reply: key must be [a-z0-9_]+");
    put(r, ",\"%s\":", key);
    return KM_OK;
}

static km_status added(const km_control_reply *r)
{
    return r->overflow ? km_error(KM_ERR_CAPACITY, "control reply longer than %zu bytes",
                                  r->size)
                       : KM_OK;
}

km_status km_control_reply_add_string(km_control_reply *r, const char *key, const char *value)
{
    km_status st = add_key(r, key);
    if (st)
        return st;
    put_string(r, value ? value : "");
    return added(r);
}

km_status km_control_reply_add_int(km_control_reply *r, const char *key, long long value)
{
    km_status st = add_key(r, key);
    if (st)
        return st;
    put(r, "%lld", value);
    return added(r);
}

km_status km_control_reply_add_double(km_control_reply *r, const char *key, double value)
{
    if (!isfinite(value))
        return km_error(KM_ERR_INVALID_ARGUMENT, "control reply: %s is not finite",
                        key ? key : "value");
    km_status st = add_key(r, key);
    if (st)
        return st;
    put(r, "%.17g", value);
    return added(r);
}

km_status km_control_reply_add_bool(km_control_reply *r, const char *key, bool value)
{
    km_status st = add_key(r, key);
    if (st)
        return st;
    put(r, "%s", value ? "true" : "false");
    return added(r);
}

km_status km_control_reply_add_json(km_control_reply *r, const char *key, const char *json)
{
    km_json_token tokens[CONTROL_TOKENS];
    int count;
    if (!json || km_json_tokens_parse(json, strlen(json), tokens, CONTROL_TOKENS, &count))
        return km_error(KM_ERR_INVALID_ARGUMENT, "control reply: %s is not one JSON value",
                        key ? key : "value");
    km_status st = add_key(r, key);
    if (st)
        return st;
    put(r, "%s", json);
    return added(r);
}

/* ------------------------------------------------------- request parsing */

typedef struct request_text {
    const char *text;
    const km_json_token *tokens;
} request_text;

static km_status member_string(const request_text *q, int value, const char *key, char *out,
                               size_t size)
{
    const km_json_token *t = &q->tokens[value];
    if (t->type != KM_JTOK_STRING)
        return km_error(KM_ERR_PARSE, "control: \"%s\" must be a string", key);
    if (!km_json_token_string(q->text, t, out, size))
        return km_error(KM_ERR_PARSE, "control: \"%s\" is longer than %zu bytes or contains "
                        "\\u0000", key, size - 1);
    return KM_OK;
}

static bool rigid_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Members each command accepts ("cmd" and "id" are accepted by all). */
static const char *const allowed[KM_CONTROL_COMMAND_COUNT][3] = {
    {NULL}, {NULL}, {"path", "duration_s", NULL}, {NULL}, {"path", NULL},
    {"name", "markers", NULL}, {"action", "path", NULL}};

static km_status parse_tokens(const request_text *q, int count, km_control_request *out)
{
    (void)count;
    const km_json_token *tokens = q->tokens;
    memset(out, 0, sizeof *out);
    if (tokens[0].type != KM_JTOK_OBJECT)
        return km_error(KM_ERR_PARSE, "control: the request must be a JSON object, e.g. "
                        "{\"cmd\":\"status\"}");
    int cmd = km_json_token_member(q->text, tokens, 0, "cmd");
    if (cmd < 0)
        return km_error(KM_ERR_PARSE, "control: missing \"cmd\"");
    char name[32];
    km_status st = member_string(q, cmd, "cmd", name, sizeof name);
    if (st)
        return km_error(KM_ERR_PARSE, "control: \"cmd\" must be one of status, list_cameras, "
                        "start_recording, stop_recording, reload_calibration, define_rigid, "
                        "calibrate");
    int c = 0;
    while (c < KM_CONTROL_COMMAND_COUNT && strcmp(command_names[c], name) != 0)
        c++;
    if (c == KM_CONTROL_COMMAND_COUNT)
        return km_error(KM_ERR_PARSE, "control: unknown command \"%s\"; known: status, "
                        "list_cameras, start_recording, stop_recording, reload_calibration, "
                        "define_rigid, calibrate", name);
    out->command = (km_control_command)c;

    /* Every member must be known for this command. */
    int k = 1;
    for (uint32_t m = 0; m < tokens[0].children; m++) {
        char key[64];
        if (!km_json_token_string(q->text, &tokens[k], key, sizeof key))
            return km_error(KM_ERR_PARSE, "control: member name too long");
        bool known = strcmp(key, "cmd") == 0 || strcmp(key, "id") == 0;
        for (int a = 0; !known && allowed[c][a]; a++)
            known = strcmp(key, allowed[c][a]) == 0;
        if (!known)
            return km_error(KM_ERR_PARSE, "control: unknown member \"%s\" for \"%s\"", key,
                            name);
        k = (int)tokens[k + 1].next;
    }
    int id = km_json_token_member(q->text, tokens, 0, "id");
    if (id >= 0 && !((tokens[id].type == KM_JTOK_STRING && tokens[id].length <= 64) ||
                     (tokens[id].type == KM_JTOK_NUMBER && tokens[id].length <= 20)))
        return km_error(KM_ERR_PARSE, "control: \"id\" must be a string of at most 64 bytes or "
                        "a number");

    int path = km_json_token_member(q->text, tokens, 0, "path");
    if (c == KM_CONTROL_START_RECORDING && path < 0)
        return km_error(KM_ERR_PARSE, "control: start_recording needs \"path\"");
    if (path >= 0) {
        if ((st = member_string(q, path, "path", out->path, sizeof out->path)))
            return st;
        if (c == KM_CONTROL_START_RECORDING && !out->path[0])
            return km_error(KM_ERR_PARSE, "control: \"path\" is empty");
    }
    int duration = km_json_token_member(q->text, tokens, 0, "duration_s");
    if (duration >= 0) {
        if (tokens[duration].type != KM_JTOK_NUMBER || !(tokens[duration].number >= 0.0) ||
            tokens[duration].number > 604800.0)
            return km_error(KM_ERR_PARSE, "control: \"duration_s\" must be a number of "
                            "seconds in 0..604800");
        out->duration_s = tokens[duration].number;
    }
    if (c == KM_CONTROL_CALIBRATE) {
        static const char *const actions[] = {"start", "ground", "solve", "status", "apply",
                                              "cancel", NULL};
        int ac = km_json_token_member(q->text, tokens, 0, "action");
        bool ok = ac >= 0 && member_string(q, ac, "action", out->action, sizeof out->action) ==
                                 KM_OK;
        int a = 0;
        while (ok && actions[a] && strcmp(actions[a], out->action) != 0) a++;
        if (!ok || !actions[a])
            return km_error(KM_ERR_PARSE, "control: calibrate needs \"action\": one of start, "
                            "ground, solve, status, apply, cancel");
    }
    if (c == KM_CONTROL_DEFINE_RIGID) {
        int nm = km_json_token_member(q->text, tokens, 0, "name");
        if (nm < 0)
            return km_error(KM_ERR_PARSE, "control: define_rigid needs \"name\"");
        if ((st = member_string(q, nm, "name", out->name, sizeof out->name)) ||
            !rigid_name_ok(out->name))
            return km_error(KM_ERR_PARSE, "control: \"name\" must be 1..63 characters of "
                            "[A-Za-z0-9_.-]");
        int mk = km_json_token_member(q->text, tokens, 0, "markers");
        if (mk < 0)
            return km_error(KM_ERR_PARSE, "control: define_rigid needs \"markers\" (3..%d "
                            "marker track ids)", KM_CONTROL_MAX_RIGID_MARKERS);
        const km_json_token *array = &tokens[mk];
        if (array->type != KM_JTOK_ARRAY || array->children < 3 ||
            array->children > KM_CONTROL_MAX_RIGID_MARKERS)
            return km_error(KM_ERR_PARSE, "control: \"markers\" must be an array of 3..%d "
                            "marker track ids", KM_CONTROL_MAX_RIGID_MARKERS);
        for (uint32_t i = 0; i < array->children; i++) {
            const km_json_token *t = &tokens[mk + 1 + (int)i];
            if (t->type != KM_JTOK_NUMBER || t->number < 0 || t->number > 4294967295.0 ||
                t->number != floor(t->number))
                return km_error(KM_ERR_PARSE, "control: \"markers\"[%u] must be an integer "
                                "track id in 0..4294967295", i);
            uint32_t v = (uint32_t)t->number;
            for (int j = 0; j < out->marker_count; j++)
                if (out->marker_ids[j] == v)
                    return km_error(KM_ERR_PARSE, "control: \"markers\" lists id %u twice", v);
            out->marker_ids[out->marker_count++] = v;
        }
    }
    return KM_OK;
}

km_status km_control_parse_request(const char *text, size_t length, km_control_request *out)
{
    if (!text || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "control: NULL argument");
    km_json_token tokens[CONTROL_TOKENS];
    int count;
    km_status st = km_json_tokens_parse(text, length, tokens, CONTROL_TOKENS, &count);
    if (st)
        return km_error(KM_ERR_PARSE, "control: malformed request: %s", km_last_error());
    request_text q = {text, tokens};
    return parse_tokens(&q, count, out);
}

/* ------------------------------------------------------------------ handle */

static void begin_reply(km_control_reply *r, bool ok, const char *cmd, const char *id,
                        size_t id_length)
{
    r->length = 0;
    r->overflow = false;
    r->buf[0] = '\0';
    put(r, "{\"ok\":%s", ok ? "true" : "false");
    if (cmd)
        put(r, ",\"cmd\":\"%s\"", cmd);
    if (id)
        put(r, ",\"id\":%.*s", (int)id_length, id);
}

static size_t error_reply(km_control_reply *r, const char *cmd, const char *id, size_t id_length,
                          const char *message)
{
    begin_reply(r, false, cmd, id, id_length);
    put(r, ",\"error\":");
    put_string(r, message);
    put(r, "}");
    if (r->overflow) {
        /* The message itself did not fit: a fixed reply always does (size >= 64). */
        r->overflow = false;
        r->length = 0;
        put(r, "{\"ok\":false,\"error\":\"reply too long\"}");
    }
    return r->length;
}

size_t km_control_handle(km_control *ctl, const char *request, size_t length, char *out,
                         size_t size)
{
    km_control_reply r = {out, size, 0, false};
    if (!ctl || !out || size < 64)
        return 0;
    if (!request || length > (size_t)ctl->max_request_bytes) {
        char why[96];
        snprintf(why, sizeof why, "control: request of %zu bytes, at most %d accepted",
                 length, ctl->max_request_bytes);
        return error_reply(&r, NULL, NULL, 0, why);
    }
    km_json_token tokens[CONTROL_TOKENS];
    int count;
    if (km_json_tokens_parse(request, length, tokens, CONTROL_TOKENS, &count)) {
        char why[KM_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "control: malformed request: %s", km_last_error());
        return error_reply(&r, NULL, NULL, 0, why);
    }
    /* Echo the request's "id" (validated below) in every reply. */
    const char *id = NULL;
    size_t id_length = 0;
    int id_token = km_json_token_member(request, tokens, 0, "id");
    if (id_token >= 0 && ((tokens[id_token].type == KM_JTOK_STRING &&
                           tokens[id_token].length <= 64) ||
                          (tokens[id_token].type == KM_JTOK_NUMBER &&
                           tokens[id_token].length <= 20))) {
        bool string = tokens[id_token].type == KM_JTOK_STRING;
        id = request + tokens[id_token].start - string;
        id_length = tokens[id_token].length + 2u * string;
    }
    km_control_request req;
    request_text q = {request, tokens};
    if (parse_tokens(&q, count, &req))
        return error_reply(&r, NULL, id, id_length, km_last_error());
    const char *cmd = command_names[req.command];
    km_control_handler fn = ctl->handlers[req.command];
    begin_reply(&r, true, cmd, id, id_length);
    km_status st = KM_OK;
    if (fn) {
        st = fn(ctl->users[req.command], &req, &r);
    } else if (req.command == KM_CONTROL_STATUS && ctl->publisher) {
        char status[16384]; /* = the publisher's status buffer */
        size_t n = km_publisher_status_json(ctl->publisher, km_time_now_ns(), status,
                                            sizeof status);
        st = n ? km_control_reply_add_json(&r, "status", status)
               : km_error(KM_ERR_CAPACITY, "control: status too long");
    } else {
        st = km_error(KM_ERR_UNSUPPORTED, "control: \"%s\" is not available in this process "
                      "(no handler registered)", cmd);
    }
    if (!st && r.overflow)
        st = km_error(KM_ERR_CAPACITY, "control: reply longer than %zu bytes", size);
    if (st) {
        char why[KM_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", km_last_error());
        return error_reply(&r, cmd, id, id_length, why[0] ? why : km_status_name(st));
    }
    put(&r, "}");
    if (r.overflow)
        return error_reply(&r, cmd, id, id_length, "control: reply too long");
    return r.length;
}

/* ------------------------------------------------------------------ socket */

km_control_config km_control_config_default(void)
{
    km_control_config c;
    memset(&c, 0, sizeof c);
    c.enabled = true;
    snprintf(c.endpoint, sizeof c.endpoint, "tcp://127.0.0.1:5556");
    c.max_request_bytes = 65536;
    return c;
}

km_status km_control_config_read(const km_config *cfg, const char *path, km_control_config *out)
{
    if (!cfg || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "control config: NULL argument");
    const char *section = path && *path ? path : "transport.control";
    if (strlen(section) > 200)
        return km_error(KM_ERR_INVALID_ARGUMENT, "control config: path too long");
    km_control_config c = km_control_config_default();
    if (km_config_has(cfg, section)) {
        static const char *const known[] = {"enabled", "endpoint", "curve_secret_key_file",
                                            "max_request_bytes", NULL};
        km_status st = km_config_check_keys(cfg, section, known);
        if (st)
            return st;
        char key[256];
        snprintf(key, sizeof key, "%s.enabled", section);
        st = km_config_get_bool(cfg, key, c.enabled, &c.enabled);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        snprintf(key, sizeof key, "%s.curve_secret_key_file", section);
        st = km_config_get_string(cfg, key, "", c.curve_secret_key_file,
                                  sizeof c.curve_secret_key_file);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        long value;
        snprintf(key, sizeof key, "%s.max_request_bytes", section);
        st = km_config_get_int(cfg, key, c.max_request_bytes, 64, KM_JSON_MAX_BYTES, &value);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        c.max_request_bytes = (int)value;
        snprintf(key, sizeof key, "%s.endpoint", section);
        st = km_config_get_string(cfg, key, "tcp://127.0.0.1:5556", c.endpoint,
                                  sizeof c.endpoint);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
        const char *why = NULL;
        if (km_zmq_endpoint_validate(c.endpoint) != KM_OK)
            why = km_last_error();
        else if (!c.curve_secret_key_file[0] && !km_zmq_endpoint_is_local(c.endpoint))
            why = "a non-loopback endpoint needs control.curve_secret_key_file (CurveZMQ; "
                  "docs/protocol.md \"Security\")";
        if (why)
            return km_error(KM_ERR_PARSE, "%s:%d: %s: %s", km_config_name(cfg),
                            km_config_line(cfg, key), key, why);
    }
    *out = c;
    return KM_OK;
}

km_control *km_control_create(const km_control_config *cfg, km_status *err)
{
    km_status st = KM_OK;
    if (!cfg || cfg->max_request_bytes < 64 || cfg->max_request_bytes > KM_JSON_MAX_BYTES)
        st = km_error(KM_ERR_INVALID_ARGUMENT, "control: max_request_bytes outside 64..%d",
                      KM_JSON_MAX_BYTES);
    else
        st = km_zmq_endpoint_validate(cfg->endpoint);
    if (st) {
        if (err)
            *err = st;
        return NULL;
    }
    km_control *ctl = calloc(1, sizeof *ctl);
    if (!ctl || !(ctl->reply = malloc(CONTROL_REPLY_BYTES))) {
        free(ctl);
        if (err)
            *err = km_error(KM_ERR_NO_MEMORY, "control: out of memory");
        return NULL;
    }
    ctl->max_request_bytes = cfg->max_request_bytes;
    km_zmq_curve_keys keys;
    memset(&keys, 0, sizeof keys);
    int linger = 0;
    int64_t max_message = CONTROL_MAX_MESSAGE_BYTES;
    if (cfg->curve_secret_key_file[0] &&
        (st = km_zmq_curve_load(cfg->curve_secret_key_file, &keys)))
        goto fail;
    ctl->context = zmq_ctx_new();
    ctl->socket = ctl->context ? zmq_socket(ctl->context, ZMQ_REP) : NULL;
    if (!ctl->socket) {
        st = km_error(KM_ERR_IO, "control: zmq socket: %s", zmq_strerror(errno));
        goto fail;
    }
    if (zmq_setsockopt(ctl->socket, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(ctl->socket, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message)) {
        st = km_error(KM_ERR_IO, "control: zmq_setsockopt: %s", zmq_strerror(errno));
        goto fail;
    }
    if ((st = km_zmq_bind_secure(ctl->socket, cfg->endpoint, &keys, "control socket",
                                 ctl->endpoint, sizeof ctl->endpoint)))
        goto fail;
    km_log(KM_LOG_INFO, "transport", "control socket (REP, JSON) on %s", ctl->endpoint);
    if (err)
        *err = KM_OK;
    return ctl;
fail:
    km_control_destroy(ctl);
    if (err)
        *err = st;
    return NULL;
}

void km_control_destroy(km_control *ctl)
{
    if (!ctl)
        return;
    if (ctl->socket)
        zmq_close(ctl->socket);
    if (ctl->context)
        zmq_ctx_term(ctl->context);
    free(ctl->reply);
    free(ctl);
}

const char *km_control_endpoint(const km_control *ctl)
{
    return ctl ? ctl->endpoint : "";
}

void km_control_set_handler(km_control *ctl, km_control_command command, km_control_handler fn,
                            void *user)
{
    if (!ctl || (unsigned)command >= KM_CONTROL_COMMAND_COUNT)
        return;
    ctl->handlers[command] = fn;
    ctl->users[command] = user;
}

void km_control_set_publisher(km_control *ctl, km_publisher *pub)
{
    if (ctl)
        ctl->publisher = pub;
}

km_status km_control_poll(km_control *ctl, int *handled)
{
    if (handled)
        *handled = 0;
    if (!ctl)
        return km_error(KM_ERR_INVALID_ARGUMENT, "control: NULL");
    for (int n = 0; n < CONTROL_POLL_BATCH; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, ctl->socket, ZMQ_DONTWAIT) < 0) {
            int error = errno;
            zmq_msg_close(&msg);
            if (error == EAGAIN)
                return KM_OK;
            return km_error(KM_ERR_IO, "control: receive: %s", zmq_strerror(error));
        }
        size_t length;
        if (zmq_msg_more(&msg)) {
            /* A multipart request: drain it (its parts have all arrived), then refuse. */
            zmq_msg_close(&msg);
            int more = 1;
            while (more) {
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, ctl->socket, 0) < 0) {
                    zmq_msg_close(&msg);
                    break;
                }
                more = zmq_msg_more(&msg);
                zmq_msg_close(&msg);
            }
            km_control_reply r = {ctl->reply, CONTROL_REPLY_BYTES, 0, false};
            length = error_reply(&r, NULL, NULL, 0, "control: a request is one message "
                                 "frame holding one JSON object");
        } else {
            length = km_control_handle(ctl, zmq_msg_data(&msg), zmq_msg_size(&msg), ctl->reply,
                                       CONTROL_REPLY_BYTES);
            zmq_msg_close(&msg);
        }
        if (zmq_send(ctl->socket, ctl->reply, length, ZMQ_DONTWAIT) < 0)
            return km_error(KM_ERR_IO, "control: reply: %s", zmq_strerror(errno));
        if (handled)
            (*handled)++;
    }
    return KM_OK;
}
