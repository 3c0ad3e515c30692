/* Test fixture: a continuous synthetic hand stream — random smooth wandering (an
 * Ornstein-Uhlenbeck velocity pulled back to a home position), rests with tracker jitter,
 * and built-in gestures performed at random sizes, speeds and small rotations, with noise —
 * plus the ground truth (label, start and end time of every gesture). */
#ifndef KINEMA_TESTS_SYNTH_STREAM_H
#define KINEMA_TESTS_SYNTH_STREAM_H

#include <stdlib.h>

#include "synth_hand.h"

typedef struct stream_truth {
    int label;            /* builtin index */
    int64_t start_ns, end_ns;
} stream_truth;

typedef struct synth_stream {
    km_vec3 *pos;
    int64_t *t_ns;
    size_t count, capacity;
    stream_truth *truth;
    size_t truth_count, truth_capacity;
} synth_stream;

typedef struct stream_params {
    double rate_hz;        /* samples per second */
    double noise_m;        /* tracker noise (sigma per axis) */
    double wander_speed;   /* rms wandering speed, m/s */
    bool gestures;         /* false: only wandering and rests (false-positive test) */
    double minutes;        /* stop after this much stream */
} stream_params;

static inline void stream_push(synth_stream *s, km_vec3 p, int64_t t)
{
    if (s->count == s->capacity) {
        s->capacity = s->capacity ? 2 * s->capacity : 4096;
        s->pos = realloc(s->pos, s->capacity * sizeof *s->pos);
        s->t_ns = realloc(s->t_ns, s->capacity * sizeof *s->t_ns);
    }
    s->pos[s->count] = p;
    s->t_ns[s->count] = t;
    s->count++;
}

static inline void stream_free(synth_stream *s)
{
    free(s->pos);
    free(s->t_ns);
    free(s->truth);
    memset(s, 0, sizeof *s);
}

static inline km_vec3 stream_noise(synth_rng *r, double sigma)
{
    return km_vec3_make(sigma * synth_gauss(r), sigma * synth_gauss(r), sigma * synth_gauss(r));
}

/* World frame = person frame here (the person faces -z). */
static inline void synth_stream_make(synth_stream *s, const stream_params *sp, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    synth_rng r = {seed};
    const km_vec3 home = {0.25, 1.2, -0.35};
    km_vec3 p = home, v = {0, 0, 0};
    double dt = 1.0 / sp->rate_hz;
    double t = 0.0;
    const double end_s = sp->minutes * 60.0;
    km_vec3 g[512];
    while (t < end_s) {
        /* an episode of wandering or rest */
        bool rest = synth_uniform(&r) < 0.4;
        double len = rest ? 0.3 + 1.2 * synth_uniform(&r) : 1.0 + 3.0 * synth_uniform(&r);
        const double tau = 0.35;
        double sigma = sp->wander_speed * sqrt(2.0 / tau);
        for (double e = 0; e < len; e += dt) {
            if (rest) {
                v = km_vec3_scale(v, 0.8); /* come to a stop */
            } else {
                km_vec3 pull = km_vec3_scale(km_vec3_sub(home, p), 1.5);
                v = km_vec3_add(v, km_vec3_scale(km_vec3_add(km_vec3_scale(v, -1.0 / tau), pull), dt));
                v = km_vec3_add(v, km_vec3_scale(stream_noise(&r, sigma), sqrt(dt)));
            }
            p = km_vec3_add(p, km_vec3_scale(v, dt));
            stream_push(s, km_vec3_add(p, stream_noise(&r, sp->noise_m)), (int64_t)llround(t * 1e9));
            t += dt;
        }
        if (!sp->gestures)
            continue;
        /* a gesture from here: random builtin, an unseen variant, scaled in size and time,
         * turned a little about the vertical */
        int label = (int)(synth_uniform(&r) * KM_GESTURE_BUILTIN_COUNT) % KM_GESTURE_BUILTIN_COUNT;
        size_t n;
        km_gesture_builtin_generate(label, 100 + (int)(synth_uniform(&r) * 1e6), g, NULL, 512, &n);
        double size = 0.8 + 0.45 * synth_uniform(&r);
        double time_scale = 0.8 + 0.45 * synth_uniform(&r);
        km_mat3 R = km_mat3_from_axis_angle(km_vec3_make(0, 1, 0), (synth_uniform(&r) - 0.5) * 0.35);
        /* resample the 60 Hz template to this rate and duration */
        double dur = (double)(n - 1) / 60.0 * time_scale;
        int64_t start_ns = (int64_t)llround(t * 1e9);
        km_vec3 origin = p;
        km_vec3 g0 = km_mat3_apply(R, km_vec3_scale(g[0], size));
        km_vec3 last = p;
        for (double e = 0; e <= dur; e += dt) {
            double u = e / dur * (double)(n - 1);
            size_t k = (size_t)u;
            if (k >= n - 1)
                k = n - 2;
            double f = u - (double)k;
            km_vec3 q = km_vec3_add(km_vec3_scale(g[k], 1 - f), km_vec3_scale(g[k + 1], f));
            q = km_vec3_sub(km_mat3_apply(R, km_vec3_scale(q, size)), g0);
            last = km_vec3_add(origin, q);
            stream_push(s, km_vec3_add(last, stream_noise(&r, sp->noise_m)), (int64_t)llround(t * 1e9));
            t += dt;
        }
        if (s->truth_count == s->truth_capacity) {
            s->truth_capacity = s->truth_capacity ? 2 * s->truth_capacity : 64;
            s->truth = realloc(s->truth, s->truth_capacity * sizeof *s->truth);
        }
        s->truth[s->truth_count++] = (stream_truth){label, start_ns, (int64_t)llround((t - dt) * 1e9)};
        p = last;
        v = km_vec3_make(0, 0, 0);
    }
}

#endif
