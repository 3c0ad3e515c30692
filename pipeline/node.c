/* Multi-host, solver side: the camera nodes' `obs2d` streams -> frame sets of observations.
 *
 * Each node publishes one wire message per camera frame (docs/protocol.md "Multi-host"):
 * header camera_count = that camera's index + 1, OBSERVATIONS_2D with its blobs. The solver
 * subscribes to every node, maps each message's capture time onto its own clock with the
 * node's offset (measured over the node's control socket, NTP style), and groups messages
 * whose times lie within half a frame period. A group is emitted, oldest first, once every
 * camera of the nodes still alive delivered, or after the timeout. A node silent for longer
 * than the timeout is missing: logged, reported in `status`, and its cameras are no longer
 * waited for, so the solver continues with the others. Everything is allocated in create. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "node.h"

typedef struct node_link {
    char endpoint[128];
    char control[128];
    void *sub;
    uint64_t cameras;          /* bit c: camera c comes from this node */
    int64_t offset_ns;         /* node clock - solver clock */
    uint64_t rtt_ns;           /* round trip of the exchange the offset came from; 0 = none */
    uint64_t last_rx_ns;       /* solver clock */
    uint64_t messages, rejected;
    bool alive;
} node_link;

typedef struct obs_group {
    bool used;
    uint64_t time_ns;          /* solver clock: the first message's corrected time */
    uint64_t first_rx_ns;
    uint64_t have;             /* cameras delivered */
    uint64_t frame[KM_MAX_CAMERAS];
    uint64_t camera_time_ns[KM_MAX_CAMERAS];
    int count[KM_MAX_CAMERAS];
    km_observation *obs;       /* camera c's at obs + c * max_blobs */
} obs_group;

struct km_node_solver {
    void *context;
    node_link nodes[KM_PIPELINE_MAX_NODES];
    int node_count;
    int camera_count;
    int max_blobs;
    uint64_t all_cameras;
    uint64_t tolerance_ns;
    uint64_t timeout_ns;
    uint64_t created_ns;
    uint64_t last_emitted_ns;  /* time of the last group emitted (0 = none) */
    bool emitted_any;
    bool received_any;
    uint64_t late;             /* messages for a frame set already emitted */
    obs_group *groups;
    int group_count;
    km_observation *group_storage;
    km_observation *decode_obs;
    int decode_capacity;
    uint8_t *rx;
    size_t rx_capacity;
};

km_node_solver *km_node_solver_create(const km_pipeline_config *cfg, int camera_count,
                                      int max_blobs, double rate_hz, km_status *err)
{
    km_status st = KM_OK;
    km_node_solver *s = calloc(1, sizeof *s);
    if (!s) {
        st = km_error(KM_ERR_NO_MEMORY, "solver: out of memory");
        goto fail;
    }
    if (cfg->solver_node_count < 1 || cfg->solver_node_count > KM_PIPELINE_MAX_NODES) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "solver: %d nodes (expected 1..%d)",
                      cfg->solver_node_count, KM_PIPELINE_MAX_NODES);
        goto fail;
    }
    s->camera_count = camera_count;
    s->max_blobs = max_blobs;
    s->all_cameras = camera_count >= 64 ? UINT64_MAX : ((1ull << camera_count) - 1);
    s->tolerance_ns = (uint64_t)(0.5e9 / (rate_hz > 0 ? rate_hz : 120.0));
    s->timeout_ns = cfg->solver_timeout_ns ? cfg->solver_timeout_ns : 1000000000ull;
    s->created_ns = km_time_now_ns();
    s->group_count = cfg->solver_max_pending > 0 ? cfg->solver_max_pending : 128;
    s->groups = calloc((size_t)s->group_count, sizeof *s->groups);
    s->group_storage = calloc((size_t)s->group_count * (size_t)camera_count * (size_t)max_blobs,
                              sizeof *s->group_storage);
    s->decode_capacity = max_blobs;
    s->decode_obs = calloc((size_t)max_blobs, sizeof *s->decode_obs);
    s->rx_capacity = km_wire_encoded_size_sections(KM_WIRE_MAX_CAMERAS, 0, max_blobs,
                                                   KM_WIRE_WITH_ALL) + 4096;
    s->rx = malloc(s->rx_capacity);
    if (!s->groups || !s->group_storage || !s->decode_obs || !s->rx) {
        st = km_error(KM_ERR_NO_MEMORY, "solver: out of memory for %d pending frame sets",
                      s->group_count);
        goto fail;
    }
    for (int g = 0; g < s->group_count; g++)
        s->groups[g].obs = s->group_storage + (size_t)g * (size_t)camera_count * (size_t)max_blobs;
    s->context = zmq_ctx_new();
    if (!s->context) {
        st = km_error(KM_ERR_IO, "solver: zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    uint64_t covered = 0;
    for (int i = 0; i < cfg->solver_node_count; i++) {
        node_link *n = &s->nodes[i];
        snprintf(n->endpoint, sizeof n->endpoint, "%s", cfg->solver_nodes[i]);
        snprintf(n->control, sizeof n->control, "%s", cfg->solver_controls[i]);
        n->cameras = cfg->solver_node_cameras[i] & s->all_cameras;
        if (!n->cameras) {
            st = km_error(KM_ERR_INVALID_ARGUMENT, "solver: node %d (%s) runs none of the rig's "
                          "%d cameras", i, n->endpoint, camera_count);
            goto fail;
        }
        if (n->cameras & covered) {
            st = km_error(KM_ERR_INVALID_ARGUMENT, "solver: node %d (%s) lists a camera another "
                          "node runs", i, n->endpoint);
            goto fail;
        }
        covered |= n->cameras;
        /* Alive from the start: a node is waited for (up to the timeout) before its first
         * message, so the first frame sets are not emitted without its cameras. */
        n->alive = true;
        n->last_rx_ns = s->created_ns;
        n->sub = zmq_socket(s->context, ZMQ_SUB);
        int hwm = 100000, linger = 0;
        if (!n->sub || zmq_setsockopt(n->sub, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
            zmq_setsockopt(n->sub, ZMQ_LINGER, &linger, sizeof linger) ||
            zmq_setsockopt(n->sub, ZMQ_SUBSCRIBE, KM_WIRE_TOPIC_OBS2D,
                           strlen(KM_WIRE_TOPIC_OBS2D)) ||
            zmq_connect(n->sub, n->endpoint)) {
            st = km_error(KM_ERR_IO, "solver: node %d: cannot subscribe to %s: %s", i,
                          n->endpoint, zmq_strerror(zmq_errno()));
            goto fail;
        }
        s->node_count++;
    }
    return s;
fail:
    if (err) *err = st ? st : KM_ERR_INTERNAL;
    km_node_solver_destroy(s);
    return NULL;
}

void km_node_solver_destroy(km_node_solver *s)
{
    if (!s) return;
    for (int i = 0; i < KM_PIPELINE_MAX_NODES; i++)
        if (s->nodes[i].sub) zmq_close(s->nodes[i].sub);
    if (s->context) zmq_ctx_term(s->context);
    free(s->groups);
    free(s->group_storage);
    free(s->decode_obs);
    free(s->rx);
    free(s);
}

static void *open_req(void *context, const char *endpoint)
{
    void *req = zmq_socket(context, ZMQ_REQ);
    if (!req) return NULL;
    int linger = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(req, endpoint)) {
        zmq_close(req);
        return NULL;
    }
    return req;
}

/* One request/reply on req. Returns the node's time_ns, 0 when no (valid) reply came in
 * timeout_ms: the REQ then cannot send again and the caller opens a new one. */
static uint64_t sync_once(void *req, int timeout_ms, uint64_t *t0, uint64_t *t1)
{
    static const char request[] = "{\"cmd\":\"status\"}";
    *t0 = km_time_now_ns();
    if (zmq_send(req, request, sizeof request - 1, 0) < 0) return 0;
    zmq_pollitem_t item = {req, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) != 1) return 0;
    char reply[8192];
    int n = zmq_recv(req, reply, sizeof reply - 1, 0);
    *t1 = km_time_now_ns();
    if (n <= 0) return 0;
    reply[n < (int)sizeof reply ? n : (int)sizeof reply - 1] = '\0';
    const char *at = strstr(reply, "\"time_ns\":");
    return at ? strtoull(at + 10, NULL, 10) : 0;
}

void km_node_solver_sync(km_node_solver *s, uint64_t wait_ns)
{
    enum { ROUNDS = 8 };
    uint64_t deadline = km_time_now_ns() + wait_ns;
    for (int i = 0; i < s->node_count; i++) {
        node_link *n = &s->nodes[i];
        if (!n->control[0]) continue;
        int good = 0;
        void *req = NULL;
        /* One socket for all rounds (a new connection per round would put the TCP
         * handshake in the request's half of the round trip and bias the offset). */
        while (good < ROUNDS && km_time_now_ns() < deadline) {
            if (!req && !(req = open_req(s->context, n->control))) break;
            uint64_t t0 = 0, t1 = 0;
            uint64_t node_ns = sync_once(req, 200, &t0, &t1);
            if (!node_ns) { /* not up yet: a fresh socket, retry until the deadline */
                zmq_close(req);
                req = NULL;
                continue;
            }
            uint64_t rtt = t1 - t0;
            if (!n->rtt_ns || rtt < n->rtt_ns) {
                n->rtt_ns = rtt;
                /* The node read its clock halfway through the round trip (NTP's estimate). */
                n->offset_ns = (int64_t)(node_ns - (t0 + rtt / 2));
            }
            good++;
        }
        if (req) zmq_close(req);
        if (good)
            km_log(KM_LOG_INFO, "solver", "node %d (%s): clock offset %+.3f ms (round trip "
                   "%.3f ms, best of %d)", i, n->endpoint, (double)n->offset_ns / 1e6,
                   (double)n->rtt_ns / 1e6, good);
        else
            km_log(KM_LOG_WARN, "solver", "node %d: no answer from its control socket %s: "
                   "clock offset taken as 0", i, n->control);
        /* The wait for the node counts from here, not from create. */
        n->last_rx_ns = km_time_now_ns();
    }
}

static obs_group *group_for(km_node_solver *s, uint64_t time_ns, uint64_t now_ns)
{
    obs_group *free_group = NULL, *oldest = NULL;
    for (int g = 0; g < s->group_count; g++) {
        obs_group *grp = &s->groups[g];
        if (!grp->used) {
            if (!free_group) free_group = grp;
            continue;
        }
        uint64_t d = grp->time_ns > time_ns ? grp->time_ns - time_ns : time_ns - grp->time_ns;
        if (d <= s->tolerance_ns) return grp;
        if (!oldest || grp->time_ns < oldest->time_ns) oldest = grp;
    }
    if (!free_group) return NULL; /* full: the caller emits the oldest first */
    memset(free_group->count, 0, sizeof free_group->count);
    free_group->used = true;
    free_group->time_ns = time_ns;
    free_group->first_rx_ns = now_ns;
    free_group->have = 0;
    (void)oldest;
    return free_group;
}

static void take_message(km_node_solver *s, node_link *n, const uint8_t *buf, size_t len,
                         uint64_t now_ns)
{
    km_wire_storage storage = {NULL, 0, s->decode_obs, s->decode_capacity};
    km_wire_frame f;
    km_status st = km_wire_decode(buf, len, &storage, &f);
    int camera = f.camera_count - 1;
    if (st == KM_OK && (camera < 0 || camera >= s->camera_count || !(n->cameras >> camera & 1)))
        st = km_error(KM_ERR_FORMAT, "camera %d is not one of this node's", camera);
    for (int i = 0; st == KM_OK && i < f.observation_total; i++)
        if (f.observations[i].camera != camera)
            st = km_error(KM_ERR_FORMAT, "observation of camera %d in camera %d's message",
                          f.observations[i].camera, camera);
    if (st) {
        if (n->rejected++ == 0)
            km_log(KM_LOG_WARN, "solver", "%s: message refused: %s (further ones counted)",
                   n->endpoint, km_last_error());
        return;
    }
    n->messages++;
    n->last_rx_ns = now_ns;
    s->received_any = true;
    if (!n->alive) {
        n->alive = true;
        km_log(KM_LOG_INFO, "solver", "node %s is back", n->endpoint);
    }
    uint64_t t = (uint64_t)((int64_t)f.capture_time_ns - n->offset_ns);
    if (s->emitted_any && t + s->tolerance_ns <= s->last_emitted_ns) {
        s->late++;
        return;
    }
    obs_group *g = group_for(s, t, now_ns);
    if (!g) {
        s->late++;
        return;
    }
    if (g->have >> camera & 1) return; /* duplicate */
    g->have |= 1ull << camera;
    g->frame[camera] = f.frame;
    g->camera_time_ns[camera] = t;
    int count = f.observation_total < s->max_blobs ? f.observation_total : s->max_blobs;
    memcpy(g->obs + (size_t)camera * (size_t)s->max_blobs, f.observations,
           (size_t)count * sizeof *f.observations);
    g->count[camera] = count;
}

void km_node_solver_poll(km_node_solver *s, uint64_t now_ns)
{
    for (int i = 0; i < s->node_count; i++) {
        node_link *n = &s->nodes[i];
        /* Bounded per call so one chatty node cannot starve the others. */
        for (int k = 0; k < 1024; k++) {
            char topic[16];
            int tn = zmq_recv(n->sub, topic, sizeof topic, ZMQ_DONTWAIT);
            if (tn < 0) break;
            int more = 0;
            size_t more_size = sizeof more;
            zmq_getsockopt(n->sub, ZMQ_RCVMORE, &more, &more_size);
            if (!more) continue;
            int len = zmq_recv(n->sub, s->rx, s->rx_capacity, 0);
            /* Drain any further parts (none expected). */
            zmq_getsockopt(n->sub, ZMQ_RCVMORE, &more, &more_size);
            while (more) {
                char skip[64];
                zmq_recv(n->sub, skip, sizeof skip, 0);
                zmq_getsockopt(n->sub, ZMQ_RCVMORE, &more, &more_size);
            }
            if (len < 0 || (size_t)len > s->rx_capacity) {
                n->rejected++;
                continue;
            }
            take_message(s, n, s->rx, (size_t)len, now_ns);
        }
        if (n->alive && now_ns > n->last_rx_ns && now_ns - n->last_rx_ns > s->timeout_ns) {
            n->alive = false;
            km_log(KM_LOG_WARN, "solver", "node %s missing: silent for %.0f ms; continuing "
                   "without its cameras", n->endpoint, (double)(now_ns - n->last_rx_ns) / 1e6);
        }
    }
}

static uint64_t expected_cameras(const km_node_solver *s)
{
    uint64_t m = 0;
    for (int i = 0; i < s->node_count; i++)
        if (s->nodes[i].alive) m |= s->nodes[i].cameras;
    return m;
}

bool km_node_solver_pop(km_node_solver *s, uint64_t now_ns, km_observation_set *obs,
                        km_solved_frame *out, bool *complete, int *present)
{
    obs_group *g = NULL;
    int free_groups = 0;
    for (int i = 0; i < s->group_count; i++) {
        if (!s->groups[i].used) {
            free_groups++;
            continue;
        }
        if (!g || s->groups[i].time_ns < g->time_ns) g = &s->groups[i];
    }
    if (!g) return false;
    uint64_t expected = expected_cameras(s);
    bool ready = (g->have & expected) == expected || now_ns - g->first_rx_ns > s->timeout_ns ||
                 free_groups == 0;
    if (!ready) return false;
    obs->count = 0;
    obs->time_ns = g->time_ns;
    out->camera_count = s->camera_count;
    bool first = true;
    *present = 0;
    for (int c = 0; c < s->camera_count; c++) {
        out->observation_count[c] = 0;
        if (!(g->have >> c & 1)) continue;
        (*present)++;
        if (first) {
            /* Like the single process: the set's frame and time are its first camera's. */
            obs->frame = g->frame[c];
            obs->time_ns = g->camera_time_ns[c];
            first = false;
        }
        const km_observation *src = g->obs + (size_t)c * (size_t)s->max_blobs;
        for (int i = 0; i < g->count[c] && obs->count < obs->capacity; i++)
            obs->items[obs->count++] = src[i];
        out->observation_count[c] = (uint16_t)g->count[c];
    }
    out->capture_time_ns = obs->time_ns;
    *complete = (g->have & s->all_cameras) == s->all_cameras;
    s->last_emitted_ns = g->time_ns;
    s->emitted_any = true;
    g->used = false;
    return true;
}

bool km_node_solver_ended(const km_node_solver *s, uint64_t now_ns)
{
    (void)now_ns;
    if (!s->received_any) return false;
    for (int i = 0; i < s->node_count; i++)
        if (s->nodes[i].alive) return false;
    for (int g = 0; g < s->group_count; g++)
        if (s->groups[g].used) return false;
    return true;
}

void km_node_solver_counts(const km_node_solver *s, uint64_t *messages, int *missing)
{
    *messages = 0;
    *missing = 0;
    for (int i = 0; i < s->node_count; i++) {
        *messages += s->nodes[i].messages;
        if (!s->nodes[i].alive) (*missing)++;
    }
}

size_t km_node_solver_status_json(void *user, char *out, size_t size)
{
    const km_node_solver *s = user;
    uint64_t now = km_time_now_ns();
    size_t len = 0;
    int n = snprintf(out, size, ",\"late_messages\":%" PRIu64 ",\"nodes\":[", s->late);
    if (n < 0 || (size_t)n >= size) return 0;
    len = (size_t)n;
    for (int i = 0; i < s->node_count; i++) {
        const node_link *l = &s->nodes[i];
        char ep[2 * sizeof l->endpoint];
        km_json_escape(ep, sizeof ep, l->endpoint);
        n = snprintf(out + len, size - len,
                     "%s{\"endpoint\":\"%s\",\"alive\":%s,\"silent_ms\":%.1f,\"frames\":%" PRIu64
                     ",\"rejected\":%" PRIu64 ",\"clock_offset_ns\":%" PRId64
                     ",\"sync_rtt_ns\":%" PRIu64 "}",
                     i ? "," : "", ep, l->alive ? "true" : "false",
                     now > l->last_rx_ns ? (double)(now - l->last_rx_ns) / 1e6 : 0.0,
                     l->messages, l->rejected, l->offset_ns, l->rtt_ns);
        if (n < 0 || (size_t)n >= size - len) return 0;
        len += (size_t)n;
    }
    if (len + 2 > size) return 0;
    out[len++] = ']';
    out[len] = '\0';
    return len;
}
