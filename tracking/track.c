/* 3D marker tracking: persistent ids across frames.
 *
 * Per frame: every live track predicts its position (constant velocity); measured markers
 * are hashed into a grid of cells of size gate_m so each prediction finds its candidates
 * among the 27 neighbouring cells (linear in the marker count, no quadratic pass). The
 * candidate pairs form a bipartite graph; each connected component (tracks competing for
 * the same markers) is solved exactly by the Hungarian method when small (the usual case:
 * one or two tracks), greedily by distance when large. Unassigned tracks coast on their
 * prediction for max_gap_frames, then die; unassigned markers start new tracks.
 *
 * All memory is allocated in km_tracker_create; km_tracker_update does not allocate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"

/* Components up to this many tracks and markers are solved exactly (n^3 on the stack). */
#define HUNGARIAN_MAX 24
/* Internal velocity gain: 1 would be a pure finite difference; a little averaging damps the
 * measurement noise in the prediction while still following a walking foot. */
#define VELOCITY_GAIN 0.7

typedef struct edge {
    int track;
    int marker;
    double cost;             /* squared distance prediction -> marker, m^2 */
    int component;           /* root of the union-find node of the track */
} edge;

struct km_tracker {
    km_tracker_config cfg;
    km_tracker_stats stats;
    uint32_t next_id;

    /* tracks (structure of arrays, index = slot) */
    int track_capacity;
    bool *active;
    uint32_t *id;            /* 0 while tentative */
    km_vec3 *pos;            /* last measured position */
    km_vec3 *vel;            /* m/s */
    km_vec3 *smooth_pos;     /* alpha-beta output state */
    km_vec3 *smooth_vel;
    uint64_t *last_time_ns;
    uint64_t *last_frame;
    int *updates;            /* measurements taken so far */
    int *hits;               /* consecutive frames with a marker */
    int *missed;             /* consecutive frames without */
    km_vec3 *pred;           /* this frame's prediction */
    double *pred_dt;         /* seconds from the last measurement to this frame */
    int *track_marker;       /* assigned marker this frame, -1 */
    int *free_slots;         /* stack of free slot indices */
    int free_count;
    int *live;               /* slots in use, compacted each frame */
    int live_count;

    /* markers of the current frame */
    int marker_capacity;
    km_marker *input;        /* copy (in and out may alias) */
    int *marker_track;       /* assigned track slot, -1 */
    int *marker_stamp;       /* duplicate suppression while querying the grid */
    uint32_t stamp;

    /* spatial hash */
    int hash_size;           /* power of two */
    int *hash_head;
    int *hash_next;

    /* assignment */
    int edge_capacity;
    int edge_count;
    edge *edges;
    int *parent;             /* union-find over tracks [0, T) and markers [T, T+M) */
    int *local_index;        /* per node: index inside the current component, -1 */
    bool edge_overflow_logged;
};

km_tracker_config km_tracker_config_default(void)
{
    km_tracker_config c;
    memset(&c, 0, sizeof c);
    c.max_tracks = 1024;
    c.max_markers = 512;
    c.gate_m = 0.03;
    c.max_gap_frames = 10;
    c.birth_frames = 1;
    c.fill_gaps = false;
    c.smoothing_alpha = 1.0;
    c.smoothing_beta = 0.1;
    c.frame_period_s = 1.0 / 120.0;
    return c;
}

void km_tracker_destroy(km_tracker *t)
{
    if (!t)
        return;
    free(t->active);
    free(t->id);
    free(t->pos);
    free(t->vel);
    free(t->smooth_pos);
    free(t->smooth_vel);
    free(t->last_time_ns);
    free(t->last_frame);
    free(t->updates);
    free(t->hits);
    free(t->missed);
    free(t->pred);
    free(t->pred_dt);
    free(t->track_marker);
    free(t->free_slots);
    free(t->live);
    free(t->input);
    free(t->marker_track);
    free(t->marker_stamp);
    free(t->hash_head);
    free(t->hash_next);
    free(t->edges);
    free(t->parent);
    free(t->local_index);
    free(t);
}

void km_tracker_reset(km_tracker *t)
{
    if (!t)
        return;
    for (int k = 0; k < t->track_capacity; k++)
        t->active[k] = false;
    t->free_count = 0;
    for (int k = t->track_capacity - 1; k >= 0; k--)
        t->free_slots[t->free_count++] = k;
    t->live_count = 0;
    memset(&t->stats, 0, sizeof t->stats);
}

km_tracker *km_tracker_create(const km_tracker_config *cfg, km_status *err)
{
    km_status dummy;
    if (!err)
        err = &dummy;
    if (!cfg) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "tracker: no config");
        return NULL;
    }
    if (cfg->max_tracks < 1 || cfg->max_tracks > (1 << 22) || cfg->max_markers < 1 ||
        cfg->max_markers > (1 << 22)) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "tracker: max_tracks and max_markers must be in 1..4194304");
        return NULL;
    }
    if (!(cfg->gate_m > 0.0 && cfg->gate_m < 10.0) || cfg->max_gap_frames < 0 ||
        cfg->birth_frames < 1 || !(cfg->smoothing_alpha > 0.0 && cfg->smoothing_alpha <= 1.0) ||
        !(cfg->smoothing_beta >= 0.0 && cfg->smoothing_beta <= 2.0) ||
        !(cfg->frame_period_s > 0.0 && cfg->frame_period_s < 10.0)) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "tracker: bad config (gate_m in (0,10), max_gap_frames >= 0, "
                        "birth_frames >= 1, smoothing_alpha in (0,1], smoothing_beta in [0,2], "
                        "frame_period_s in (0,10))");
        return NULL;
    }
    km_tracker *t = calloc(1, sizeof *t);
    if (!t) {
        *err = km_error(KM_ERR_NO_MEMORY, "tracker: out of memory");
        return NULL;
    }
    t->cfg = *cfg;
    t->next_id = 1;
    const size_t T = (size_t)cfg->max_tracks, M = (size_t)cfg->max_markers;
    t->track_capacity = cfg->max_tracks;
    t->marker_capacity = cfg->max_markers;
    int hs = 16;
    while (hs < 2 * cfg->max_markers)
        hs *= 2;
    t->hash_size = hs;
    t->edge_capacity = 8 * (cfg->max_markers + cfg->max_tracks);
    t->active = calloc(T, sizeof *t->active);
    t->id = calloc(T, sizeof *t->id);
    t->pos = calloc(T, sizeof *t->pos);
    t->vel = calloc(T, sizeof *t->vel);
    t->smooth_pos = calloc(T, sizeof *t->smooth_pos);
    t->smooth_vel = calloc(T, sizeof *t->smooth_vel);
    t->last_time_ns = calloc(T, sizeof *t->last_time_ns);
    t->last_frame = calloc(T, sizeof *t->last_frame);
    t->updates = calloc(T, sizeof *t->updates);
    t->hits = calloc(T, sizeof *t->hits);
    t->missed = calloc(T, sizeof *t->missed);
    t->pred = calloc(T, sizeof *t->pred);
    t->pred_dt = calloc(T, sizeof *t->pred_dt);
    t->track_marker = calloc(T, sizeof *t->track_marker);
    t->free_slots = calloc(T, sizeof *t->free_slots);
    t->live = calloc(T, sizeof *t->live);
    t->input = calloc(M, sizeof *t->input);
    t->marker_track = calloc(M, sizeof *t->marker_track);
    t->marker_stamp = calloc(M, sizeof *t->marker_stamp);
    t->hash_head = calloc((size_t)hs, sizeof *t->hash_head);
    t->hash_next = calloc(M, sizeof *t->hash_next);
    t->edges = calloc((size_t)t->edge_capacity, sizeof *t->edges);
    t->parent = calloc(T + M, sizeof *t->parent);
    t->local_index = calloc(T + M, sizeof *t->local_index);
    if (!t->active || !t->id || !t->pos || !t->vel || !t->smooth_pos || !t->smooth_vel ||
        !t->last_time_ns || !t->last_frame || !t->updates || !t->hits || !t->missed ||
        !t->pred || !t->pred_dt || !t->track_marker || !t->free_slots || !t->live ||
        !t->input || !t->marker_track || !t->marker_stamp || !t->hash_head || !t->hash_next ||
        !t->edges || !t->parent || !t->local_index) {
        km_tracker_destroy(t);
        *err = km_error(KM_ERR_NO_MEMORY, "tracker: out of memory");
        return NULL;
    }
    for (size_t k = 0; k < T + M; k++)
        t->local_index[k] = -1;
    km_tracker_reset(t);
    *err = KM_OK;
    return t;
}

km_tracker_stats km_tracker_get_stats(const km_tracker *t)
{
    km_tracker_stats zero;
    memset(&zero, 0, sizeof zero);
    return t ? t->stats : zero;
}

km_status km_tracker_velocity(const km_tracker *t, uint32_t id, km_vec3 *out)
{
    if (!t || !out || id == 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "tracker: bad argument");
    for (int k = 0; k < t->live_count; k++) {
        const int s = t->live[k];
        if (t->active[s] && t->id[s] == id) {
            *out = t->vel[s];
            return KM_OK;
        }
    }
    return km_error(KM_ERR_NOT_FOUND, "tracker: no live track with id %u", id);
}

/* ------------------------------------------------------------ spatial hash */

static inline void cell_of(double x, double inv_cell, long *c)
{
    *c = (long)floor(x * inv_cell);
}

static inline unsigned hash_cell(long ix, long iy, long iz, int size)
{
    const unsigned long h = (unsigned long)ix * 73856093ul ^ (unsigned long)iy * 19349663ul ^
                            (unsigned long)iz * 83492791ul;
    return (unsigned)(h & (unsigned long)(size - 1));
}

static void hash_build(km_tracker *t, int count)
{
    const double inv = 1.0 / t->cfg.gate_m;
    for (int k = 0; k < t->hash_size; k++)
        t->hash_head[k] = -1;
    for (int m = 0; m < count; m++) {
        long ix, iy, iz;
        cell_of(t->input[m].pos_m.x, inv, &ix);
        cell_of(t->input[m].pos_m.y, inv, &iy);
        cell_of(t->input[m].pos_m.z, inv, &iz);
        const unsigned h = hash_cell(ix, iy, iz, t->hash_size);
        t->hash_next[m] = t->hash_head[h];
        t->hash_head[h] = m;
    }
}

/* ------------------------------------------------------------- union-find */

static int uf_find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void uf_union(int *parent, int a, int b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a != b)
        parent[a < b ? b : a] = a < b ? a : b;
}

/* --------------------------------------------------------------- sorting */

/* Heap sort of the edges by (component, cost): qsort may allocate in glibc. */
static inline bool edge_less(const edge *a, const edge *b)
{
    return a->component != b->component ? a->component < b->component : a->cost < b->cost;
}

static void sift_down(edge *e, int start, int n)
{
    int root = start;
    for (;;) {
        int child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && edge_less(&e[child], &e[child + 1]))
            child++;
        if (!edge_less(&e[root], &e[child]))
            return;
        edge tmp = e[root];
        e[root] = e[child];
        e[child] = tmp;
        root = child;
    }
}

static void sort_edges(edge *e, int n)
{
    for (int k = n / 2 - 1; k >= 0; k--)
        sift_down(e, k, n);
    for (int end = n - 1; end > 0; end--) {
        edge tmp = e[0];
        e[0] = e[end];
        e[end] = tmp;
        sift_down(e, 0, end);
    }
}

/* Solve one component: edges e[0..n) all share a component. */
static void assign_component(km_tracker *t, const edge *e, int n)
{
    const int T = t->track_capacity;
    if (n == 1) {
        t->track_marker[e[0].track] = e[0].marker;
        t->marker_track[e[0].marker] = e[0].track;
        return;
    }
    /* local indices of the component's tracks and markers */
    int tracks[HUNGARIAN_MAX], markers[HUNGARIAN_MAX];
    int nt = 0, nm = 0;
    bool small = true;
    for (int k = 0; k < n && small; k++) {
        int *lt = &t->local_index[e[k].track];
        int *lm = &t->local_index[T + e[k].marker];
        if (*lt < 0) {
            if (nt == HUNGARIAN_MAX)
                small = false;
            else {
                *lt = nt;
                tracks[nt++] = e[k].track;
            }
        }
        if (small && *lm < 0) {
            if (nm == HUNGARIAN_MAX)
                small = false;
            else {
                *lm = nm;
                markers[nm++] = e[k].marker;
            }
        }
    }
    if (small) {
        /* Square matrix: a non-edge costs gate^2, the same as leaving both unassigned, so
         * the optimum never prefers a far pair to a near one; non-edges are dropped after. */
        const int s = nt > nm ? nt : nm;
        double cost[HUNGARIAN_MAX * HUNGARIAN_MAX];
        /* (edges reach at most 2 gates: see the young-track search radius) */
        const double none = 4.0 * t->cfg.gate_m * t->cfg.gate_m;
        bool is_edge[HUNGARIAN_MAX * HUNGARIAN_MAX];
        for (int k = 0; k < s * s; k++) {
            cost[k] = none;
            is_edge[k] = false;
        }
        for (int k = 0; k < n; k++) {
            const int cell = t->local_index[e[k].track] * s + t->local_index[T + e[k].marker];
            cost[cell] = e[k].cost;
            is_edge[cell] = true;
        }
        /* Square s x s: every row gets a column; invert to the row of each column. */
        double workspace[5 * (HUNGARIAN_MAX + 1)]; /* >= km_assignment_workspace_bytes(s, s) */
        int col_of_row[HUNGARIAN_MAX], row_of_col[HUNGARIAN_MAX];
        km_assignment_solve(cost, s, s, workspace, col_of_row);
        for (int i = 0; i < s; i++) row_of_col[col_of_row[i]] = i;
        for (int j = 0; j < nm; j++) {
            const int i = row_of_col[j];
            if (i < 0 || i >= nt || !is_edge[i * s + j])
                continue;
            t->track_marker[tracks[i]] = markers[j];
            t->marker_track[markers[j]] = tracks[i];
        }
    } else {
        /* Large cluster (dense marker cloud, huge gate): greedy by distance, edges are
         * sorted by cost within the component. */
        for (int k = 0; k < n; k++) {
            if (t->track_marker[e[k].track] >= 0 || t->marker_track[e[k].marker] >= 0)
                continue;
            t->track_marker[e[k].track] = e[k].marker;
            t->marker_track[e[k].marker] = e[k].track;
        }
    }
    for (int k = 0; k < nt; k++)
        t->local_index[tracks[k]] = -1;
    for (int k = 0; k < nm; k++)
        t->local_index[T + markers[k]] = -1;
}

/* ----------------------------------------------------------------- update */

static double seconds_between(const km_tracker *t, int slot, uint64_t frame, uint64_t time_ns)
{
    if (time_ns > t->last_time_ns[slot])
        return (double)(time_ns - t->last_time_ns[slot]) * 1e-9;
    const uint64_t frames = frame > t->last_frame[slot] ? frame - t->last_frame[slot] : 1;
    return (double)frames * t->cfg.frame_period_s;
}

static void start_track(km_tracker *t, int slot, const km_marker *m, uint64_t frame,
                        uint64_t time_ns)
{
    t->active[slot] = true;
    t->pos[slot] = m->pos_m;
    t->vel[slot] = km_vec3_make(0, 0, 0);
    t->smooth_pos[slot] = m->pos_m;
    t->smooth_vel[slot] = km_vec3_make(0, 0, 0);
    t->last_time_ns[slot] = time_ns;
    t->last_frame[slot] = frame;
    t->updates[slot] = 1;
    t->hits[slot] = 1;
    t->missed[slot] = 0;
    t->id[slot] = 0;
    if (t->cfg.birth_frames <= 1) {
        t->id[slot] = t->next_id++;
        t->stats.births++;
    }
}

static void update_track(km_tracker *t, int slot, const km_marker *m, uint64_t frame,
                         uint64_t time_ns)
{
    const double dt = t->pred_dt[slot];
    const km_vec3 z = m->pos_m;
    if (t->updates[slot] == 1) {
        t->vel[slot] = km_vec3_scale(km_vec3_sub(z, t->pos[slot]), 1.0 / dt);
    } else {
        const km_vec3 r = km_vec3_sub(z, t->pred[slot]);
        t->vel[slot] = km_vec3_add(t->vel[slot], km_vec3_scale(r, VELOCITY_GAIN / dt));
    }
    if (t->cfg.smoothing_alpha < 1.0) {
        const km_vec3 p = km_vec3_add(t->smooth_pos[slot], km_vec3_scale(t->smooth_vel[slot], dt));
        const km_vec3 r = km_vec3_sub(z, p);
        t->smooth_pos[slot] = km_vec3_add(p, km_vec3_scale(r, t->cfg.smoothing_alpha));
        if (t->updates[slot] == 1)
            t->smooth_vel[slot] = t->vel[slot];
        else
            t->smooth_vel[slot] = km_vec3_add(t->smooth_vel[slot],
                                              km_vec3_scale(r, t->cfg.smoothing_beta / dt));
    } else {
        t->smooth_pos[slot] = z;
        t->smooth_vel[slot] = t->vel[slot];
    }
    if (t->missed[slot] > 0)
        t->stats.bridged++;
    t->pos[slot] = z;
    t->last_time_ns[slot] = time_ns;
    t->last_frame[slot] = frame;
    t->updates[slot]++;
    t->hits[slot]++;
    t->missed[slot] = 0;
    if (t->id[slot] == 0 && t->hits[slot] >= t->cfg.birth_frames) {
        t->id[slot] = t->next_id++;
        t->stats.births++;
    }
}

static void end_track(km_tracker *t, int slot)
{
    t->active[slot] = false;
    t->free_slots[t->free_count++] = slot;
}

km_status km_tracker_predict(const km_tracker *t, uint64_t frame, uint64_t time_ns,
                             km_marker_set *out)
{
    if (!t || !out || out->capacity < 0 || (out->capacity > 0 && !out->items))
        return km_error(KM_ERR_INVALID_ARGUMENT, "tracker: bad argument");
    out->frame = frame;
    out->time_ns = time_ns;
    int n = 0;
    for (int k = 0; k < t->live_count; k++) {
        const int s = t->live[k];
        if (n == out->capacity) {
            out->count = n;
            return km_error(KM_ERR_CAPACITY, "tracker: %d predictions, room for %d",
                            t->live_count, out->capacity);
        }
        /* The same prediction km_tracker_update will make for this frame. */
        const double dt = seconds_between(t, s, frame, time_ns);
        out->items[n++] = (km_marker){.id = t->id[s],
                                      .pos_m = km_vec3_add(t->pos[s], km_vec3_scale(t->vel[s], dt)),
                                      .residual_px = 0.0,
                                      .views = 0};
    }
    out->count = n;
    return KM_OK;
}

km_status km_tracker_update(km_tracker *t, const km_marker_set *in, km_marker_set *out)
{
    if (!t || !in || !out || (in->count > 0 && !in->items) || in->count < 0 ||
        out->capacity < 0 || (out->capacity > 0 && !out->items))
        return km_error(KM_ERR_INVALID_ARGUMENT, "tracker: bad argument");
    const uint64_t frame = in->frame, time_ns = in->time_ns;
    if (in->count > t->marker_capacity) {
        out->frame = frame;
        out->time_ns = time_ns;
        out->count = 0;
        return km_error(KM_ERR_CAPACITY, "tracker: %d markers in frame %llu, max_markers is %d",
                        in->count, (unsigned long long)frame, t->marker_capacity);
    }
    const int M = in->count;
    for (int m = 0; m < M; m++) {
        const km_vec3 p = in->items[m].pos_m;
        if (!isfinite(p.x) || !isfinite(p.y) || !isfinite(p.z))
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "tracker: marker %d of frame %llu has a non-finite position", m,
                            (unsigned long long)frame);
    }
    memcpy(t->input, in->items, (size_t)M * sizeof *t->input);
    t->stats.frames++;

    /* predictions */
    for (int k = 0; k < t->live_count; k++) {
        const int s = t->live[k];
        const double dt = seconds_between(t, s, frame, time_ns);
        t->pred_dt[s] = dt;
        t->pred[s] = km_vec3_add(t->pos[s], km_vec3_scale(t->vel[s], dt));
        t->track_marker[s] = -1;
    }
    for (int m = 0; m < M; m++)
        t->marker_track[m] = -1;

    /* candidate pairs within the gate, through the spatial hash */
    hash_build(t, M);
    const int T = t->track_capacity;
    const double gate2 = t->cfg.gate_m * t->cfg.gate_m, inv = 1.0 / t->cfg.gate_m;
    t->edge_count = 0;
    for (int k = 0; k < t->live_count; k++) {
        const int s = t->live[k];
        const km_vec3 p = t->pred[s];
        /* A track seen once has no velocity yet: after a missed frame its marker may have
         * moved further than one gate, so its search radius grows (up to 2 gates). */
        const long reach = t->updates[s] == 1 && t->missed[s] > 0 ? 2 : 1;
        const double track_gate2 = gate2 * (double)(reach * reach);
        long cx, cy, cz;
        cell_of(p.x, inv, &cx);
        cell_of(p.y, inv, &cy);
        cell_of(p.z, inv, &cz);
        if (++t->stamp == 0) {
            memset(t->marker_stamp, 0, (size_t)t->marker_capacity * sizeof *t->marker_stamp);
            t->stamp = 1;
        }
        for (long dx = -reach; dx <= reach; dx++)
            for (long dy = -reach; dy <= reach; dy++)
                for (long dz = -reach; dz <= reach; dz++) {
                    const unsigned h = hash_cell(cx + dx, cy + dy, cz + dz, t->hash_size);
                    for (int m = t->hash_head[h]; m >= 0; m = t->hash_next[m]) {
                        if (t->marker_stamp[m] == (int)t->stamp)
                            continue;
                        t->marker_stamp[m] = (int)t->stamp;
                        const km_vec3 d = km_vec3_sub(t->input[m].pos_m, p);
                        const double d2 = d.x * d.x + d.y * d.y + d.z * d.z;
                        if (d2 >= track_gate2)
                            continue;
                        if (t->edge_count == t->edge_capacity) {
                            if (!t->edge_overflow_logged) {
                                km_log(KM_LOG_WARN, "track",
                                       "more than %d candidate pairs in a frame: gate_m %.3f "
                                       "is too large for this marker density",
                                       t->edge_capacity, t->cfg.gate_m);
                                t->edge_overflow_logged = true;
                            }
                            continue;
                        }
                        t->edges[t->edge_count++] = (edge){s, m, d2, 0};
                    }
                }
    }

    /* components of the candidate graph, then each one's assignment */
    const int E = t->edge_count;
    for (int k = 0; k < E; k++) {
        t->parent[t->edges[k].track] = t->edges[k].track;
        t->parent[T + t->edges[k].marker] = T + t->edges[k].marker;
    }
    for (int k = 0; k < E; k++)
        uf_union(t->parent, t->edges[k].track, T + t->edges[k].marker);
    for (int k = 0; k < E; k++)
        t->edges[k].component = uf_find(t->parent, t->edges[k].track);
    sort_edges(t->edges, E);
    for (int k = 0; k < E;) {
        int end = k + 1;
        while (end < E && t->edges[end].component == t->edges[k].component)
            end++;
        assign_component(t, &t->edges[k], end - k);
        k = end;
    }

    /* update, coast or end the tracks */
    int kept = 0;
    for (int k = 0; k < t->live_count; k++) {
        const int s = t->live[k];
        const int m = t->track_marker[s];
        if (m >= 0) {
            update_track(t, s, &t->input[m], frame, time_ns);
        } else {
            t->hits[s] = 0;
            t->missed[s]++;
            if (t->id[s] == 0 || t->missed[s] > t->cfg.max_gap_frames) {
                if (t->id[s] != 0)
                    t->stats.deaths++;
                end_track(t, s);
                continue;
            }
        }
        t->live[kept++] = s;
    }
    t->live_count = kept;
    /* new tracks from unassigned markers */
    for (int m = 0; m < M; m++) {
        if (t->marker_track[m] >= 0)
            continue;
        if (t->free_count == 0)
            continue;
        const int s = t->free_slots[--t->free_count];
        start_track(t, s, &t->input[m], frame, time_ns);
        t->marker_track[m] = s;
        t->live[t->live_count++] = s;
    }

    /* output: measured markers with ids, in input order, then gap fills */
    out->frame = frame;
    out->time_ns = time_ns;
    int n = 0;
    km_status st = KM_OK;
    for (int m = 0; m < M; m++) {
        const int s = t->marker_track[m];
        if (s < 0 || t->id[s] == 0) {
            t->stats.unassigned++;
            continue;
        }
        if (n == out->capacity) {
            st = KM_ERR_CAPACITY;
            break;
        }
        km_marker mk = t->input[m];
        mk.id = t->id[s];
        mk.pos_m = t->smooth_pos[s];
        out->items[n++] = mk;
    }
    if (t->cfg.fill_gaps && st == KM_OK) {
        for (int k = 0; k < t->live_count; k++) {
            const int s = t->live[k];
            if (t->missed[s] == 0 || t->id[s] == 0)
                continue;
            if (n == out->capacity) {
                st = KM_ERR_CAPACITY;
                break;
            }
            out->items[n++] = (km_marker){.id = t->id[s], .pos_m = t->pred[s],
                                          .residual_px = 0.0, .views = 0};
        }
    }
    out->count = n;
    if (st != KM_OK)
        return km_error(st, "tracker: output holds %d markers, frame %llu has more",
                        out->capacity, (unsigned long long)frame);
    return KM_OK;
}
