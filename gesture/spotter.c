/* Online gesture spotting in the continuous stream of one point. Motion onset/rest
 * segmentation (speed with hysteresis relative to the segment's own peak) cuts the stream;
 * each segment is classified once, when it ends, so the per-frame cost is a few operations
 * except on those frames. Continuous motion longer than max_segment_ns falls back to
 * sliding windows ending at the current sample. All memory is allocated at create. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gesture_internal.h"

#define MS 1000000LL
/* A gap in the stream longer than this restarts the history (the hand was lost). */
#define SPOTTER_GAP_NS (250 * MS)
/* Sliding windows: the best candidate is reported once no better one appeared for this
 * long (the window's end may still be moving over the true gesture end). Windows are
 * classified every window_step samples (67 ms at 60 Hz), so a better one had its chance. */
#define SPOTTER_CONFIRM_NS (25 * MS)

/* At most this many speed valleys inside a segment are tried as gesture starts. */
#define SPOTTER_MAX_VALLEYS 4
/* A valley: a local speed minimum below this fraction of the highest speed after it. */
#define SPOTTER_VALLEY_FRACTION 0.5

/* Chained segments: at most this many, with rests shorter than this between them. */
#define SPOTTER_MAX_CHAIN 8
#define SPOTTER_CHAIN_GAP_NS (250 * MS)

/* Sliding windows: start snapping range and the extra score they need. The extra used to
 * be 0.1; a long wave (Bandai Namco takes: raise, 7 swings at 1.4 Hz, > 3 s of motion)
 * only reaches the windows, and a window cut from the middle of a wave starts and ends at
 * reversals where the templates start and end at the centre: it scores 0.56-0.64, so 4
 * of 20 wave streams were missed. With no extra they are all found; the synthetic streams'
 * figures (windows included) do not change. */
#define SPOTTER_SNAP_NS (150 * MS)
#define SPOTTER_WINDOW_EXTRA_SCORE 0.0

typedef enum spot_state { SPOT_REST = 0, SPOT_MOVING, SPOT_WINDOWS } spot_state;

typedef struct candidate {
    bool valid;
    int label;
    double score;
    uint64_t start, end; /* sample numbers */
    int64_t found_ns;
} candidate;

struct km_spotter {
    km_spotter_config cfg;
    km_gesture_recognizer *rec;
    km_vec3 right, up, back; /* the person's frame in world coordinates */
    size_t capacity;
    km_vec3 *pos;            /* ring of capacity samples, sample k at k % capacity */
    int64_t *t_ns;
    double *speed;           /* smoothed speed (onset, peaks, valleys, windows) */
    double *end_speed;       /* low-lag speed (end of a segment) */
    km_vec3 *smooth;         /* low-passed positions (speed only; segments use raw ones) */
    km_vec3 *scratch;        /* one segment in the person's frame */
    uint64_t next;           /* number of the next sample */
    uint64_t first;          /* oldest sample kept */
    uint64_t floor;          /* no segment may start before this (end of the last gesture) */
    spot_state state;
    uint64_t onset;
    uint64_t low_since;      /* first sample of the current low-speed run; UINT64_MAX none */
    uint64_t end_low_since;  /* same for the low-lag speed */
    double peak;
    uint64_t last_window;    /* sample at which windows were last classified */
    /* Starts of the recent segments that ended without a gesture, each followed by the
     * next onset within SPOTTER_CHAIN_GAP_NS: a slow wave pauses at every reversal, so
     * its swings arrive as separate segments that only together form the gesture. */
    uint64_t chain[SPOTTER_MAX_CHAIN];
    size_t chain_count;
    int64_t last_end_ns;     /* when the last segment ended */
    bool suppressed;         /* km_spotter_set_suppressed */
    candidate pending;
    km_spotter_stats stats;
    size_t label_capacity;   /* the recognizer's max_templates (a label needs a template) */
    int64_t *min_duration_ns;/* per label; 0 = none */
    int64_t *max_duration_ns;/* per label; 0 = none */
};

km_spotter_config km_spotter_config_default(void)
{
    km_spotter_config c;
    memset(&c, 0, sizeof c);
    c.speed_on_mps = 0.45;
    c.speed_off_mps = 0.12;
    c.end_fraction = 0.2;
    c.rest_ns = 50 * MS;
    c.speed_window_ns = 60 * MS;
    c.end_window_ns = 70 * MS;
    c.end_rest_ns = 34 * MS;
    c.min_segment_ns = 100 * MS;
    c.max_segment_ns = 3000 * MS;
    c.min_extent_m = 0.12;
    c.min_score = 0.55;
    c.min_margin = 0.03;
    c.window_step = 4;
    c.window_ns[0] = 600 * MS;
    c.window_ns[1] = 1000 * MS;
    c.window_ns[2] = 1600 * MS;
    c.history_ns = 4000 * MS;
    c.max_samples = 2048;
    c.forward = km_vec3_make(0, 0, -1);
    c.up = km_vec3_make(0, 1, 0);
    c.person = 0;
    c.hand = KM_HAND_SIDE_UNKNOWN;
    c.min_height_m = -1e9;
    return c;
}

static bool finite3(km_vec3 v)
{
    return isfinite(v.x) && isfinite(v.y) && isfinite(v.z);
}

km_status km_spotter_config_check(const km_spotter_config *c)
{
    if (!c)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: NULL");
    if (!(c->speed_on_mps > 0 && c->speed_off_mps > 0 && c->speed_off_mps < c->speed_on_mps &&
          c->speed_on_mps < 100))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "spotter config: need 0 < speed_off_mps < speed_on_mps < 100");
    if (!(c->end_fraction >= 0.0 && c->end_fraction < 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: end_fraction not in [0, 1)");
    if (c->end_window_ns < 0 || c->end_rest_ns < 0 || c->end_window_ns > c->history_ns)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "spotter config: end_window_ns and end_rest_ns must be >= 0, "
                        "end_window_ns <= history_ns");
    if (c->rest_ns < 0 || c->speed_window_ns < 0 || c->min_segment_ns < 0 ||
        c->max_segment_ns <= c->min_segment_ns || c->history_ns <= c->max_segment_ns)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "spotter config: times must be >= 0 with min_segment_ns < max_segment_ns "
                        "< history_ns");
    if (!(c->min_extent_m >= 0 && c->min_score >= 0 && c->min_score <= 1 && c->min_margin >= 0 &&
          c->min_margin <= 1))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "spotter config: min_extent_m >= 0, min_score and min_margin in [0, 1]");
    if (c->window_step < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: window_step must be >= 1");
    for (int k = 0; k < 4; k++)
        if (c->window_ns[k] < 0 || c->window_ns[k] > c->history_ns)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "spotter config: window_ns[%d] not in [0, history_ns]", k);
    if (c->max_samples < 16 || c->max_samples > (1u << 24))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: max_samples not in [16, 2^24]");
    if (!finite3(c->forward) || !finite3(c->up) || km_vec3_norm(c->up) < 1e-9)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: bad forward or up vector");
    if (!isfinite(c->min_height_m))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: min_height_m must be finite");
    if ((unsigned)c->hand >= KM_HAND_SIDE_COUNT)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter config: bad hand side");
    return KM_OK;
}

km_status km_spotter_set_forward(km_spotter *s, km_vec3 forward)
{
    if (!s || !finite3(forward))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter: bad forward vector");
    km_vec3 up = km_vec3_normalize(s->cfg.up);
    /* keep only the horizontal part: a person looking down still faces forward */
    km_vec3 f = km_vec3_sub(forward, km_vec3_scale(up, km_vec3_dot(forward, up)));
    if (km_vec3_norm(f) < 1e-9)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter: forward is vertical");
    f = km_vec3_normalize(f);
    s->up = up;
    s->right = km_vec3_cross(f, up);
    s->back = km_vec3_scale(f, -1.0);
    s->cfg.forward = f;
    return KM_OK;
}

void km_spotter_destroy(km_spotter *s)
{
    if (!s)
        return;
    free(s->pos);
    free(s->t_ns);
    free(s->speed);
    free(s->end_speed);
    free(s->smooth);
    free(s->scratch);
    free(s->min_duration_ns);
    free(s->max_duration_ns);
    free(s);
}

km_spotter *km_spotter_create(const km_spotter_config *cfg, km_gesture_recognizer *rec,
                              km_status *err)
{
    km_status st = km_spotter_config_check(cfg);
    km_spotter *s = NULL;
    if (!st && !rec)
        st = km_error(KM_ERR_INVALID_ARGUMENT, "spotter: NULL recognizer");
    if (!st) {
        s = calloc(1, sizeof *s);
        size_t n = cfg->max_samples;
        if (s) {
            s->pos = malloc(n * sizeof *s->pos);
            s->t_ns = malloc(n * sizeof *s->t_ns);
            s->speed = malloc(n * sizeof *s->speed);
            s->end_speed = malloc(n * sizeof *s->end_speed);
            s->smooth = malloc(n * sizeof *s->smooth);
            s->scratch = malloc(n * sizeof *s->scratch);
            s->label_capacity = km_gesture_recognizer_config(rec)->max_templates;
            s->min_duration_ns = calloc(s->label_capacity, sizeof *s->min_duration_ns);
            s->max_duration_ns = calloc(s->label_capacity, sizeof *s->max_duration_ns);
        }
        if (!s || !s->pos || !s->t_ns || !s->speed || !s->end_speed || !s->smooth || !s->scratch ||
            !s->min_duration_ns || !s->max_duration_ns) {
            km_spotter_destroy(s);
            s = NULL;
            st = km_error(KM_ERR_NO_MEMORY, "spotter: cannot allocate %zu samples", n);
        } else {
            s->cfg = *cfg;
            s->rec = rec;
            s->capacity = n;
            st = km_spotter_set_forward(s, cfg->forward);
            if (st) {
                km_spotter_destroy(s);
                s = NULL;
            } else {
                km_spotter_reset(s);
            }
        }
    }
    if (err)
        *err = st;
    return s;
}

void km_spotter_reset(km_spotter *s)
{
    if (!s)
        return;
    s->next = s->first = s->floor = 0;
    s->state = SPOT_REST;
    s->low_since = UINT64_MAX;
    s->end_low_since = UINT64_MAX;
    s->peak = 0.0;
    s->last_window = 0;
    s->pending.valid = false;
    s->chain_count = 0;
    s->last_end_ns = INT64_MIN / 2;
}

km_spotter_stats km_spotter_stats_get(const km_spotter *s)
{
    km_spotter_stats z;
    memset(&z, 0, sizeof z);
    return s ? s->stats : z;
}

#define AT(arr, k) (s->arr[(k) % s->capacity])

typedef struct sink {
    km_gesture_event *events;
    size_t capacity, count, dropped;
} sink;

/* Classify samples [a, b]; on success (all rejection tests passed) fill *out. */
static bool classify_range(km_spotter *s, uint64_t a, uint64_t b, candidate *out, int64_t now)
{
    const km_spotter_config *c = &s->cfg;
    if (b <= a + 1 || AT(t_ns, b) - AT(t_ns, a) < c->min_segment_ns)
        return false;
    km_vec3 lo = {DBL_MAX, DBL_MAX, DBL_MAX}, hi = {-DBL_MAX, -DBL_MAX, -DBL_MAX};
    size_t n = 0;
    for (uint64_t k = a; k <= b; k++) {
        km_vec3 p = AT(pos, k);
        km_vec3 q = {km_vec3_dot(p, s->right), km_vec3_dot(p, s->up), km_vec3_dot(p, s->back)};
        s->scratch[n++] = q;
        lo = km_vec3_make(fmin(lo.x, q.x), fmin(lo.y, q.y), fmin(lo.z, q.z));
        hi = km_vec3_make(fmax(hi.x, q.x), fmax(hi.y, q.y), fmax(hi.z, q.z));
    }
    if (km_vec3_dist(lo, hi) < c->min_extent_m || hi.y < c->min_height_m)
        return false;
    km_gesture_result r;
    if (km_gesture_classify(s->rec, s->scratch, n, &r) != KM_OK)
        return false;
    int64_t duration = AT(t_ns, b) - AT(t_ns, a);
    if (r.label < 0 || r.score < c->min_score || r.score - r.second_score < c->min_margin ||
        (s->min_duration_ns[r.label] > 0 && duration < s->min_duration_ns[r.label]) ||
        (s->max_duration_ns[r.label] > 0 && duration > s->max_duration_ns[r.label])) {
        s->stats.rejected++;
        return false;
    }
    out->valid = true;
    out->label = r.label;
    out->score = r.score;
    out->start = a;
    out->end = b;
    out->found_ns = now;
    return true;
}

static void emit(km_spotter *s, const candidate *cand, int64_t now, sink *out)
{
    s->floor = cand->end;
    s->stats.gestures++;
    if (out->count >= out->capacity) {
        out->dropped++;
        return;
    }
    km_gesture_event *e = &out->events[out->count++];
    memset(e, 0, sizeof *e);
    e->type = KM_EVENT_GESTURE;
    e->t_ns = now;
    e->t_start_ns = AT(t_ns, cand->start);
    e->t_end_ns = AT(t_ns, cand->end);
    e->person = s->cfg.person;
    e->hand = s->cfg.hand;
    snprintf(e->name, sizeof e->name, "%s",
             km_gesture_recognizer_label_name(s->rec, (size_t)cand->label));
    e->score = cand->score;
    e->gaze_hand_angle_rad = NAN;
    e->gaze_lead_ms = NAN;
    e->same_target = -1;
}

/* The segment [onset - run-up, low_since] ended: trim it to where the speed is above the
 * end threshold on both sides and classify it. */
static void end_segment(km_spotter *s, int64_t now, sink *out)
{
    double thr = fmax(s->cfg.speed_off_mps, s->cfg.end_fraction * s->peak);
    uint64_t lower = s->first > s->floor ? s->first : s->floor;
    /* walk back to the speed valley before the onset (or below the threshold): wandering
     * just before a gesture is not part of it */
    uint64_t a = s->onset;
    while (a > lower && AT(speed, a - 1) >= thr && AT(speed, a - 1) <= AT(speed, a) * 1.02)
        a--;
    if (a > lower)
        a--; /* the sample where the motion began */
    uint64_t b = s->low_since;
    s->stats.segments++;
    /* the chain holds only segments right before this one, within the history */
    if (AT(t_ns, s->onset) - s->last_end_ns > SPOTTER_CHAIN_GAP_NS)
        s->chain_count = 0;
    size_t keep = 0;
    for (size_t k = 0; k < s->chain_count; k++)
        if (s->chain[k] >= lower && now - AT(t_ns, s->chain[k]) <= s->cfg.max_segment_ns)
            s->chain[keep++] = s->chain[k];
    s->chain_count = keep;
    s->last_end_ns = AT(t_ns, b);
    /* Without a rest between them, wandering and a gesture form one segment. The gesture
     * then starts at one of the speed valleys inside it: try the whole segment, then the
     * segments starting at the valleys (earliest first), and keep the first that passes
     * the rejection tests — the earliest, so that a wave is not cut to its last swing. */
    uint64_t starts[SPOTTER_MAX_CHAIN + 1 + SPOTTER_MAX_VALLEYS];
    size_t count = 0;
    for (size_t k = 0; k < s->chain_count; k++)
        starts[count++] = s->chain[k];
    starts[count++] = a;
    double after_max = 0.0; /* the highest speed after index k */
    uint64_t valleys[SPOTTER_MAX_VALLEYS];
    size_t nv = 0;
    for (uint64_t k = b; k > a + 1 && nv < SPOTTER_MAX_VALLEYS; k--) {
        double v = AT(speed, k - 1);
        if (v <= AT(speed, k - 2) && v < AT(speed, k) && v < SPOTTER_VALLEY_FRACTION * after_max)
            valleys[nv++] = k - 1;
        if (AT(speed, k) > after_max)
            after_max = AT(speed, k);
    }
    while (nv > 0)
        starts[count++] = valleys[--nv]; /* earliest first */
    for (size_t k = 0; k < count; k++) {
        candidate cand;
        if (classify_range(s, starts[k], b, &cand, now)) {
            emit(s, &cand, now, out);
            s->chain_count = 0;
            return;
        }
    }
    if (s->chain_count == SPOTTER_MAX_CHAIN) {
        memmove(s->chain, s->chain + 1, (SPOTTER_MAX_CHAIN - 1) * sizeof *s->chain);
        s->chain_count--;
    }
    s->chain[s->chain_count++] = a;
}

/* Sliding windows in continuous motion. A gesture inside motion still starts and ends at
 * speed valleys, so a window is only classified while the hand slows down (speed below
 * SPOTTER_VALLEY_FRACTION of the window's peak) and its start is moved to the deepest
 * speed valley within SPOTTER_SNAP_NS of the nominal start; the score must also clear
 * min_score + SPOTTER_WINDOW_EXTRA_SCORE (windows see far more candidates than segments). */
static void windows(km_spotter *s, int64_t now, sink *out)
{
    const km_spotter_config *c = &s->cfg;
    uint64_t b = s->next - 1;
    uint64_t lower = s->first > s->floor ? s->first : s->floor;
    candidate best = {0};
    (void)out;
    for (int k = 0; k < 4; k++) {
        if (c->window_ns[k] <= 0)
            continue;
        uint64_t a = b;
        double peak = 0.0;
        while (a > lower && now - AT(t_ns, a - 1) <= c->window_ns[k]) {
            a--;
            peak = fmax(peak, AT(speed, a));
        }
        if (now - AT(t_ns, a) < c->window_ns[k] * 8 / 10)
            continue; /* not enough history for this length */
        if (AT(speed, b) > SPOTTER_VALLEY_FRACTION * peak)
            continue; /* not slowing down: no gesture ends here */
        uint64_t best_a = UINT64_MAX;
        double best_v = SPOTTER_VALLEY_FRACTION * peak;
        int64_t t_a = AT(t_ns, a);
        for (uint64_t j = a; j > lower && t_a - AT(t_ns, j) <= SPOTTER_SNAP_NS; j--)
            if (AT(speed, j) < best_v) {
                best_v = AT(speed, j);
                best_a = j;
            }
        for (uint64_t j = a; j < b && AT(t_ns, j) - t_a <= SPOTTER_SNAP_NS; j++)
            if (AT(speed, j) < best_v) {
                best_v = AT(speed, j);
                best_a = j;
            }
        if (best_a == UINT64_MAX)
            continue;
        candidate cand;
        s->stats.windows++;
        if (classify_range(s, best_a, b, &cand, now) &&
            cand.score >= c->min_score + SPOTTER_WINDOW_EXTRA_SCORE &&
            (!best.valid || cand.score > best.score))
            best = cand;
    }
    if (best.valid && (!s->pending.valid || best.score > s->pending.score))
        s->pending = best;
}

/* Low-lag speed of sample i for deciding that a segment ended: the least-squares slope of
 * the raw positions over the last end_window_ns (lag ~ half the window, 35 ms, against
 * ~55 ms for the smoothed speed; noisier, which the threshold relative to the segment's
 * peak tolerates). Falls back to the smoothed speed with fewer than 3 samples. */
static double end_speed(const km_spotter *s, uint64_t i, double smooth_speed)
{
    const int64_t t = AT(t_ns, i);
    double n = 0, st = 0, stt = 0;
    km_vec3 sp = {0, 0, 0}, stp = {0, 0, 0};
    for (uint64_t j = i;; j--) {
        double tj = (double)(AT(t_ns, j) - t) * 1e-9;
        km_vec3 pj = AT(pos, j);
        n += 1;
        st += tj;
        stt += tj * tj;
        sp = km_vec3_add(sp, pj);
        stp = km_vec3_add(stp, km_vec3_scale(pj, tj));
        if (j == s->first || t - AT(t_ns, j - 1) > s->cfg.end_window_ns)
            break;
    }
    double den = n * stt - st * st;
    if (n < 3 || !(den > 0))
        return smooth_speed;
    km_vec3 slope = km_vec3_scale(km_vec3_sub(km_vec3_scale(stp, n), km_vec3_scale(sp, st)),
                                  1.0 / den);
    return km_vec3_norm(slope);
}

km_status km_spotter_push(km_spotter *s, km_vec3 p, int64_t t, km_gesture_event *events,
                          size_t capacity, size_t *count)
{
    if (count)
        *count = 0;
    if (!s || (!events && capacity))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter push: NULL argument");
    if (!finite3(p))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter push: non-finite position");
    const km_spotter_config *c = &s->cfg;
    if (s->next > s->first) {
        int64_t last = AT(t_ns, s->next - 1);
        if (t <= last)
            return KM_OK; /* repeated or out of order: ignored */
        if (t - last > SPOTTER_GAP_NS)
            km_spotter_reset(s);
    }
    s->stats.samples++;
    uint64_t i = s->next++;
    AT(pos, i) = p;
    AT(t_ns, i) = t;
    /* forget what is older than the history or about to be overwritten */
    while (s->first < i && (i - s->first >= s->capacity || t - AT(t_ns, s->first) > c->history_ns))
        s->first++;
    /* speed: displacement of the smoothed position over the last speed_window_ns (at least
     * one sample back). Tracker noise differentiated frame to frame looks like motion
     * (2 mm at 60 Hz ~ 0.3 m/s), so positions are first low-passed (exponential, time
     * constant speed_window_ns / 2). */
    double v = 0.0;
    if (i > s->first) {
        double dt = (double)(t - AT(t_ns, i - 1));
        double alpha = dt / (dt + 0.5 * (double)c->speed_window_ns);
        AT(smooth, i) = km_vec3_add(AT(smooth, i - 1),
                                    km_vec3_scale(km_vec3_sub(p, AT(smooth, i - 1)), alpha));
        uint64_t j = i - 1;
        while (j > s->first && t - AT(t_ns, j - 1) <= c->speed_window_ns)
            j--;
        v = km_vec3_dist(AT(smooth, i), AT(smooth, j)) / ((double)(t - AT(t_ns, j)) * 1e-9);
    } else {
        AT(smooth, i) = p;
    }
    AT(speed, i) = v;
    AT(end_speed, i) = end_speed(s, i, v);

    sink out = {events, capacity, 0, 0};
    if (s->suppressed) {
        /* keep the history (for when it is lifted), classify nothing */
        s->state = SPOT_REST;
        s->pending.valid = false;
        s->chain_count = 0;
        s->floor = i;
        return KM_OK;
    }
    switch (s->state) {
    case SPOT_REST:
        if (v >= c->speed_on_mps) {
            s->state = SPOT_MOVING;
            s->onset = i;
            s->peak = v;
            s->low_since = UINT64_MAX;
            s->end_low_since = UINT64_MAX;
        }
        break;
    case SPOT_MOVING: {
        if (v > s->peak)
            s->peak = v;
        /* The segment ends when the speed stays below the end threshold: the low-lag speed
         * for end_rest_ns, or the smoothed one for rest_ns. A wave's reversal dips the
         * low-lag speed for about one sample; a real end keeps it down. */
        double thr = fmax(c->speed_off_mps, c->end_fraction * s->peak);
        if (v < thr) {
            if (s->low_since == UINT64_MAX)
                s->low_since = i;
        } else {
            s->low_since = UINT64_MAX;
        }
        if (AT(end_speed, i) < thr) {
            if (s->end_low_since == UINT64_MAX)
                s->end_low_since = i;
        } else {
            s->end_low_since = UINT64_MAX;
        }
        bool smooth_end = s->low_since != UINT64_MAX && t - AT(t_ns, s->low_since) >= c->rest_ns;
        bool fast_end = s->end_low_since != UINT64_MAX &&
                        t - AT(t_ns, s->end_low_since) >= c->end_rest_ns;
        if (smooth_end || fast_end) {
            /* the gesture's last sample: the earlier of the two low-speed runs' starts */
            if (!smooth_end || (fast_end && s->end_low_since < s->low_since))
                s->low_since = s->end_low_since;
            end_segment(s, t, &out);
            s->state = SPOT_REST;
            s->end_low_since = UINT64_MAX;
        }
        if (s->state == SPOT_MOVING && (s->onset < s->first ||
                                        t - AT(t_ns, s->onset) > c->max_segment_ns)) {
            s->state = SPOT_WINDOWS;
            s->low_since = UINT64_MAX;
            s->last_window = i;
            windows(s, t, &out);
        }
        break;
    }
    case SPOT_WINDOWS:
        if (i - s->last_window >= c->window_step) {
            s->last_window = i;
            windows(s, t, &out);
        }
        if (s->pending.valid && t - s->pending.found_ns >= SPOTTER_CONFIRM_NS) {
            emit(s, &s->pending, t, &out);
            s->pending.valid = false;
        }
        if (v < c->speed_off_mps) {
            if (s->low_since == UINT64_MAX)
                s->low_since = i;
            if (t - AT(t_ns, s->low_since) >= c->rest_ns) {
                if (s->pending.valid)
                    emit(s, &s->pending, t, &out);
                s->pending.valid = false;
                s->state = SPOT_REST;
            }
        } else {
            s->low_since = UINT64_MAX;
        }
        break;
    }
    if (count)
        *count = out.count;
    if (out.dropped)
        return km_error(KM_ERR_CAPACITY, "spotter: %zu gesture events did not fit", out.dropped);
    return KM_OK;
}

km_status km_spotter_set_duration_limits(km_spotter *s, const char *label, int64_t min_ns,
                                         int64_t max_ns)
{
    if (!s || !label || min_ns < 0 || max_ns < 0 || (max_ns > 0 && max_ns < min_ns))
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter duration limits: bad arguments");
    size_t labels = km_gesture_recognizer_label_count(s->rec);
    for (size_t l = 0; l < labels && l < s->label_capacity; l++)
        if (strcmp(km_gesture_recognizer_label_name(s->rec, l), label) == 0) {
            s->min_duration_ns[l] = min_ns;
            s->max_duration_ns[l] = max_ns;
            return KM_OK;
        }
    return km_error(KM_ERR_NOT_FOUND, "spotter: the recognizer has no label '%s'", label);
}

km_status km_spotter_use_builtin_limits(km_spotter *s)
{
    if (!s)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spotter: NULL");
    for (int g = 0; g < KM_GESTURE_BUILTIN_COUNT; g++) {
        int64_t lo, hi;
        km_gesture_builtin_duration(g, &lo, &hi);
        km_status st = km_spotter_set_duration_limits(s, km_gesture_builtin_name(g), lo, hi);
        if (st && st != KM_ERR_NOT_FOUND)
            return st;
    }
    return KM_OK;
}

void km_spotter_set_suppressed(km_spotter *s, bool suppressed)
{
    if (s)
        s->suppressed = suppressed;
}
