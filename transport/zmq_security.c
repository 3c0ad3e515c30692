/* Who may reach a ZeroMQ socket of kinemad (docs/protocol.md, "Security").
 *
 * The rule of issue 8: local by default, remote only with CurveZMQ. A socket bound to a
 * loopback address (127.0.0.0/8, ::1, localhost), ipc:// or inproc:// needs nothing; any
 * other bind (a LAN address, an interface name, the wildcard *) is refused unless the
 * socket is a CurveZMQ server, which encrypts every message and requires clients to know
 * the server's public key.
 *
 * Key file: the server's secret key as 40 Z85 characters, either alone in the file or in
 * the zcert format that `zmq_curve_keypair`-based tools write
 * (`secret-key = "<40 chars>"`). The public key is derived from it (zmq_curve_public) and
 * logged, so that it can be handed to clients. */
#include "transport_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static bool is_z85_char(char c)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                                   "YZ.-:+=^!/*?&<>()[]{}@%$#";
    return c && strchr(alphabet, c) != NULL;
}

bool km_zmq_endpoint_is_local(const char *endpoint)
{
    if (!endpoint)
        return false;
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return false;
    size_t length = (size_t)(colon - host);
    /* A "source;destination" form binds nothing locally we could judge: refuse. */
    if (memchr(host, ';', length))
        return false;
    if (length == 9 && strncmp(host, "localhost", 9) == 0)
        return true;
    if (length == 5 && strncmp(host, "[::1]", 5) == 0)
        return true;
    /* 127.0.0.0/8, written as a dotted quad. */
    if (length >= 9 && length <= 15 && strncmp(host, "127.", 4) == 0) {
        int dots = 0;
        for (size_t i = 0; i < length; i++) {
            if (host[i] == '.')
                dots++;
            else if (host[i] < '0' || host[i] > '9')
                return false;
        }
        return dots == 3;
    }
    return false;
}

km_status km_zmq_curve_load(const char *secret_key_file, km_zmq_curve_keys *out)
{
    if (!secret_key_file || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "curve: NULL argument");
    memset(out, 0, sizeof *out);
    if (!zmq_has("curve"))
        return km_error(KM_ERR_UNSUPPORTED, "curve: this libzmq was built without CurveZMQ");
    FILE *f = fopen(secret_key_file, "rb");
    if (!f)
        return km_error(KM_ERR_IO, "curve: cannot open secret key file %s: %s",
                        secret_key_file, strerror(errno));
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    bool too_long = !feof(f);
    fclose(f);
    if (too_long)
        return km_error(KM_ERR_PARSE, "%s: curve secret key file larger than 4 KiB",
                        secret_key_file);
    text[n] = '\0';
    const char *key = NULL;
    const char *tag = strstr(text, "secret-key");
    if (tag) {
        const char *quote = strchr(tag, '"');
        if (quote)
            key = quote + 1;
    } else {
        key = text;
        while (*key == ' ' || *key == '\t' || *key == '\r' || *key == '\n')
            key++;
    }
    size_t run = 0;
    while (key && is_z85_char(key[run]))
        run++;
    if (!key || run != 40)
        return km_error(KM_ERR_PARSE, "%s: expected a CurveZMQ secret key of 40 Z85 "
                        "characters (alone, or as secret-key = \"...\")", secret_key_file);
    if (!tag) {
        const char *rest = key + 40;
        while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
            rest++;
        if (*rest)
            return km_error(KM_ERR_PARSE, "%s: text after the 40-character key",
                            secret_key_file);
    }
    memcpy(out->secret_key, key, 40);
    out->secret_key[40] = '\0';
    uint8_t binary[32];
    if (!zmq_z85_decode(binary, out->secret_key))
        return km_error(KM_ERR_PARSE, "%s: not a valid Z85 key", secret_key_file);
    if (zmq_curve_public(out->public_key, out->secret_key) != 0)
        return km_error(KM_ERR_PARSE, "%s: cannot derive the public key: %s", secret_key_file,
                        zmq_strerror(errno));
    out->enabled = true;
    return KM_OK;
}

km_status km_zmq_bind_secure(void *socket, const char *endpoint, const km_zmq_curve_keys *keys,
                             const char *what, char *bound, size_t bound_size)
{
    bool curve = keys && keys->enabled;
    if (!curve && !km_zmq_endpoint_is_local(endpoint))
        return km_error(KM_ERR_INVALID_ARGUMENT, "%s: refusing to bind %s without CurveZMQ: "
                        "a non-loopback endpoint needs a server secret key "
                        "(curve_secret_key_file, docs/protocol.md \"Security\"); bind "
                        "tcp://127.0.0.1:PORT for local clients", what, endpoint);
    if (curve) {
        int server = 1;
        if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &server, sizeof server) != 0 ||
            zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys->secret_key, 41) != 0)
            return km_error(KM_ERR_IO, "%s: CurveZMQ options: %s", what, zmq_strerror(errno));
    }
    if (zmq_bind(socket, endpoint) != 0)
        return km_error(KM_ERR_IO, "zmq_bind(%s): %s", endpoint, zmq_strerror(errno));
    size_t size = bound_size;
    if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, bound, &size) != 0)
        snprintf(bound, bound_size, "%s", endpoint);
    if (curve)
        km_log(KM_LOG_INFO, "transport", "%s: CurveZMQ server on %s, public key %s", what,
               endpoint, keys->public_key);
    return KM_OK;
}
