/* Live calibration session: bounded collection of a wand wave (and an L-frame) fed frame by
 * frame from the pipeline, solved in a worker thread with progress and cancel. See calib.h,
 * "live calibration session".
 *
 * The collection is a km_wand_calibration whose storage is reserved at create (wand.c's
 * add_frame then never allocates) plus a flat array of L-frame blobs, frames separated by a
 * marker blob (camera -1). The worker runs km_wand_calibration_solve with the progress and
 * cancel hooks of wand_internal.h, then feeds the stored L-frame to a km_ground made with
 * the solved rig. One mutex guards the state, the progress and the collection; the worker
 * does not hold it while it solves: the state SOLVING keeps the feeding thread out of the
 * collection (add_* check it under the mutex before touching anything). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/tracking.h"
#include "wand_internal.h"

#define MODULE "calib"
#define FRAME_END (-1) /* camera of the blob that ends an L-frame frame in ground[] */

struct km_calib_session {
    km_calib_session_config cfg;
    km_rig intrinsics;
    km_wand_calibration *wc;
    km_calib_blob *scratch;          /* max_blobs_per_frame, for add_observations */
    km_calib_blob *ground;           /* ground_blob_capacity, frames ended by FRAME_END */

    pthread_mutex_t lock;            /* everything below (and wc while not SOLVING) */
    pthread_cond_t finished;         /* signalled when a solve ends */
    km_calib_session_state state;
    km_calib_session_phase phase;
    int frames_fed, decimation;
    int ground_frames, ground_used, ground_stored_frames, truncated_frames;
    int camera_views[KM_MAX_CAMERAS];
    double fraction;
    char stage[160];
    km_status status;
    char error[KM_ERROR_MESSAGE_MAX];
    pthread_t thread;
    bool thread_started;             /* a worker was created and not joined yet */
    atomic_bool cancel;
    km_rig rig;                      /* the result */
    km_wand_result result;
};

const char *km_calib_session_state_name(km_calib_session_state state)
{
    switch (state) {
    case KM_CALIB_SESSION_COLLECTING: return "collecting";
    case KM_CALIB_SESSION_SOLVING: return "solving";
    case KM_CALIB_SESSION_DONE: return "done";
    case KM_CALIB_SESSION_FAILED: return "failed";
    case KM_CALIB_SESSION_CANCELLED: return "cancelled";
    }
    return "unknown";
}

km_calib_session_config km_calib_session_config_default(void)
{
    km_calib_session_config c;
    memset(&c, 0, sizeof c);
    c.wand = km_wand_config_default();
    c.lframe = km_lframe_default();
    c.max_frames = 6000;
    c.decimation = 1;
    c.max_blobs_per_frame = 0;
    c.ground_blob_capacity = 200000;
    c.with_ground = true;
    return c;
}

/* Back to an empty collection (lock held or not shared yet). */
static void clear_collection(km_calib_session *s)
{
    km_wand_calibration *wc = s->wc;
    wc->view_count = 0;
    wc->frame_count = 0;
    wc->blob_count = 0;
    wc->frames_given = 0;
    memset(wc->stats, 0, sizeof wc->stats);
    s->state = KM_CALIB_SESSION_COLLECTING;
    s->phase = KM_CALIB_SESSION_WAND;
    s->frames_fed = 0;
    s->decimation = s->cfg.decimation;
    s->ground_frames = s->ground_used = s->ground_stored_frames = s->truncated_frames = 0;
    memset(s->camera_views, 0, sizeof s->camera_views);
    s->fraction = 0.0;
    snprintf(s->stage, sizeof s->stage, "collecting the wand wave");
    s->status = KM_OK;
    s->error[0] = '\0';
}

km_calib_session *km_calib_session_create(const km_calib_session_config *cfg,
                                          const km_rig *intrinsics, km_status *err)
{
    km_status dummy;
    if (err == NULL)
        err = &dummy;
    if (cfg == NULL || intrinsics == NULL) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT, "calibration session: NULL argument");
        return NULL;
    }
    if (cfg->max_frames < cfg->wand.min_frames || cfg->max_frames > 10000000 ||
        cfg->decimation < 1 || cfg->max_blobs_per_frame < 0 ||
        cfg->max_blobs_per_frame > 1000000 || cfg->ground_blob_capacity < 0 ||
        cfg->ground_blob_capacity > 100000000) {
        *err = km_error(KM_ERR_INVALID_ARGUMENT,
                        "calibration session: bad config (max_frames %d must be at least the "
                        "wand's min_frames %d; decimation >= 1; capacities >= 0)",
                        cfg->max_frames, cfg->wand.min_frames);
        return NULL;
    }
    km_calib_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *err = km_error(KM_ERR_NO_MEMORY, "calibration session: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->intrinsics = *intrinsics;
    s->wc = km_wand_calibration_create(&cfg->wand, intrinsics, err);
    if (s->wc == NULL) {
        free(s);
        return NULL;
    }
    const int ncam = intrinsics->camera_count;
    if (s->cfg.max_blobs_per_frame == 0)
        s->cfg.max_blobs_per_frame = 64 * ncam;
    s->scratch = malloc((size_t)s->cfg.max_blobs_per_frame * sizeof *s->scratch);
    s->ground = malloc(((size_t)s->cfg.ground_blob_capacity + 1) * sizeof *s->ground);
    km_status st = KM_OK;
    if (s->scratch == NULL || s->ground == NULL)
        st = km_error(KM_ERR_NO_MEMORY, "calibration session: out of memory");
    else
        st = wand_reserve(s->wc, cfg->max_frames, cfg->max_frames * ncam);
    if (st == KM_OK && pthread_mutex_init(&s->lock, NULL) != 0)
        st = km_error(KM_ERR_INTERNAL, "calibration session: cannot create a mutex");
    if (st == KM_OK && pthread_cond_init(&s->finished, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        st = km_error(KM_ERR_INTERNAL, "calibration session: cannot create a condition");
    }
    if (st != KM_OK) {
        km_wand_calibration_destroy(s->wc);
        free(s->scratch);
        free(s->ground);
        free(s);
        *err = st;
        return NULL;
    }
    atomic_init(&s->cancel, false);
    clear_collection(s);
    *err = KM_OK;
    return s;
}

/* Join a worker that has finished (lock held; the worker no longer takes it). */
static void join_finished(km_calib_session *s)
{
    if (s->thread_started && s->state != KM_CALIB_SESSION_SOLVING) {
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
}

void km_calib_session_destroy(km_calib_session *s)
{
    if (s == NULL)
        return;
    km_calib_session_cancel(s);
    km_calib_session_wait(s);
    pthread_mutex_lock(&s->lock);
    join_finished(s);
    pthread_mutex_unlock(&s->lock);
    pthread_cond_destroy(&s->finished);
    pthread_mutex_destroy(&s->lock);
    km_wand_calibration_destroy(s->wc);
    free(s->scratch);
    free(s->ground);
    free(s);
}

km_status km_calib_session_set_phase(km_calib_session *s, km_calib_session_phase phase)
{
    if (s == NULL || (phase != KM_CALIB_SESSION_WAND && phase != KM_CALIB_SESSION_GROUND))
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session: bad phase");
    pthread_mutex_lock(&s->lock);
    km_status st = KM_OK;
    if (s->state == KM_CALIB_SESSION_SOLVING) {
        st = km_error(KM_ERR_AGAIN, "calibration session: a solve is running");
    } else {
        s->phase = phase;
        /* Showing the L-frame means the operator wants the world frame from it. */
        if (phase == KM_CALIB_SESSION_GROUND) s->cfg.with_ground = true;
        snprintf(s->stage, sizeof s->stage, "collecting %s",
                 phase == KM_CALIB_SESSION_WAND ? "the wand wave" : "the L-frame");
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Store one wand frame (lock held, not solving). Thins the store when it is full. */
static km_status add_wand_frame(km_calib_session *s, uint64_t frame, const km_calib_blob *b,
                                int count)
{
    km_wand_calibration *wc = s->wc;
    const int fed = s->frames_fed++;
    if (fed % s->decimation != 0)
        return KM_OK;
    if (wc->frame_count >= s->cfg.max_frames) {
        wand_thin(wc);
        s->decimation *= 2;
        km_log(KM_LOG_INFO, MODULE, "calibration session: %d wand frames kept, now every %d-th "
               "frame of the wave", wc->frame_count, s->decimation);
    }
    km_status st = km_wand_calibration_add_frame(wc, frame, b, count);
    for (int c = 0; c < wc->rig.camera_count; c++)
        s->camera_views[c] = wc->stats[c].view_count;
    return st;
}

/* Store one L-frame frame (lock held, not solving); frames that do not fit are counted. */
static km_status add_ground_frame(km_calib_session *s, const km_calib_blob *b, int count)
{
    s->ground_frames++;
    if (s->ground_used + count + 1 > s->cfg.ground_blob_capacity)
        return KM_OK; /* the L-frame does not move: the frames kept are enough */
    memcpy(s->ground + s->ground_used, b, (size_t)count * sizeof *b);
    s->ground_used += count;
    s->ground[s->ground_used++] = (km_calib_blob){FRAME_END, 0.0, 0.0};
    s->ground_stored_frames++;
    return KM_OK;
}

km_status km_calib_session_add_frame(km_calib_session *s, uint64_t frame,
                                     const km_calib_blob *blobs, int count)
{
    if (s == NULL || count < 0 || (blobs == NULL && count > 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session add frame: bad arguments");
    bool truncated = count > s->cfg.max_blobs_per_frame;
    if (truncated)
        count = s->cfg.max_blobs_per_frame;
    const int ncam = s->intrinsics.camera_count;
    for (int i = 0; i < count; i++)
        if (blobs[i].camera < 0 || blobs[i].camera >= ncam)
            return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session frame %llu: camera "
                            "%d out of range (rig has %d); frame not used",
                            (unsigned long long)frame, blobs[i].camera, ncam);
    pthread_mutex_lock(&s->lock);
    km_status st;
    if (s->state == KM_CALIB_SESSION_SOLVING) {
        pthread_mutex_unlock(&s->lock);
        return km_error(KM_ERR_AGAIN, "calibration session: a solve is running");
    }
    if (s->state != KM_CALIB_SESSION_COLLECTING) { /* more frames after a solve: collect on */
        join_finished(s);
        s->state = KM_CALIB_SESSION_COLLECTING;
        s->fraction = 0.0;
    }
    s->truncated_frames += truncated;
    if (s->phase == KM_CALIB_SESSION_WAND)
        st = add_wand_frame(s, frame, blobs, count);
    else
        st = add_ground_frame(s, blobs, count);
    pthread_mutex_unlock(&s->lock);
    if (st == KM_OK && truncated)
        st = km_error(KM_ERR_CAPACITY, "calibration session: frame %llu has more than %d "
                      "blobs; the first %d were used", (unsigned long long)frame,
                      s->cfg.max_blobs_per_frame, s->cfg.max_blobs_per_frame);
    return st;
}

km_status km_calib_session_add_observations(km_calib_session *s,
                                            const struct km_observation_set *obs)
{
    if (s == NULL || obs == NULL || obs->count < 0 || (obs->items == NULL && obs->count > 0))
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "calibration session add observations: bad arguments");
    /* The scratch belongs to the one feeding thread. */
    int n = obs->count < s->cfg.max_blobs_per_frame ? obs->count : s->cfg.max_blobs_per_frame;
    for (int i = 0; i < n; i++) {
        s->scratch[i].camera = obs->items[i].camera;
        s->scratch[i].x_px = obs->items[i].x;
        s->scratch[i].y_px = obs->items[i].y;
    }
    km_status st = km_calib_session_add_frame(s, obs->frame, s->scratch, n);
    if (st == KM_OK && n < obs->count) {
        pthread_mutex_lock(&s->lock);
        s->truncated_frames++;
        pthread_mutex_unlock(&s->lock);
        st = km_error(KM_ERR_CAPACITY, "calibration session: frame %llu has %d observations, "
                      "more than %d; the first %d were used", (unsigned long long)obs->frame,
                      obs->count, s->cfg.max_blobs_per_frame, n);
    }
    return st;
}

/* Progress hook of the wand solve (worker thread). */
static void on_progress(void *user, double fraction, const char *stage)
{
    km_calib_session *s = user;
    pthread_mutex_lock(&s->lock);
    if (fraction > s->fraction)
        s->fraction = fraction;
    snprintf(s->stage, sizeof s->stage, "%s", stage);
    pthread_mutex_unlock(&s->lock);
}

/* The world frame from the stored L-frame frames with the solved rig (worker thread). */
static km_status solve_ground(km_calib_session *s, km_rig *rig, km_wand_result *result)
{
    if (s->ground_stored_frames == 0)
        return km_error(KM_ERR_NOT_FOUND, "calibration session: no L-frame frames were fed "
                        "(set the phase to ground while the L-frame lies on the floor, or "
                        "solve without the ground plane)");
    on_progress(s, 0.9, "ground plane from the L-frame");
    km_status st;
    km_ground *g = km_ground_create(rig, &s->cfg.lframe, &st);
    if (g == NULL)
        return st;
    int start = 0;
    for (int i = 0; i < s->ground_used && st == KM_OK; i++)
        if (s->ground[i].camera == FRAME_END) {
            st = km_ground_add_frame(g, s->ground + start, i - start);
            start = i + 1;
        }
    if (st == KM_OK)
        st = km_wand_calibration_set_ground(g, rig, result);
    km_ground_destroy(g);
    return st;
}

static void *worker(void *arg)
{
    km_calib_session *s = arg;
    km_wand_calibration *wc = s->wc;
    wc->cancel = &s->cancel;
    wc->progress = on_progress;
    wc->progress_user = s;
    km_rig *rig = malloc(sizeof *rig);
    km_wand_result *result = malloc(sizeof *result);
    km_status st = KM_OK;
    if (rig == NULL || result == NULL)
        st = km_error(KM_ERR_NO_MEMORY, "calibration session: out of memory");
    if (st == KM_OK)
        st = km_wand_calibration_solve(wc, rig, result);
    if (st == KM_OK && s->cfg.with_ground) {
        if (atomic_load_explicit(&s->cancel, memory_order_acquire))
            st = km_error(KM_ERR_AGAIN, "wand: calibration cancelled");
        else
            st = solve_ground(s, rig, result);
    }
    wc->cancel = NULL;
    wc->progress = NULL;
    wc->progress_user = NULL;
    pthread_mutex_lock(&s->lock);
    s->status = st;
    if (st == KM_OK) {
        s->rig = *rig;
        s->result = *result;
        s->state = KM_CALIB_SESSION_DONE;
        s->fraction = 1.0;
        s->error[0] = '\0';
        snprintf(s->stage, sizeof s->stage, "done: %d cameras, RMS %.3f px, wand length "
                 "error RMS %.3f mm%s", rig->camera_count, result->rms_px,
                 result->length_error_rms_mm, result->has_ground ? ", world frame from the "
                 "L-frame" : "");
    } else {
        bool cancelled = atomic_load_explicit(&s->cancel, memory_order_acquire) &&
                         st == KM_ERR_AGAIN;
        s->state = cancelled ? KM_CALIB_SESSION_CANCELLED : KM_CALIB_SESSION_FAILED;
        snprintf(s->error, sizeof s->error, "%s", cancelled ? "calibration cancelled"
                                                            : km_last_error());
        snprintf(s->stage, sizeof s->stage, "%s", cancelled ? "cancelled" : "failed");
    }
    km_calib_session_state final_state = s->state;
    char text[KM_ERROR_MESSAGE_MAX + 200];
    snprintf(text, sizeof text, "%s%s%s", s->stage, st == KM_OK ? "" : ": ", s->error);
    pthread_cond_broadcast(&s->finished);
    pthread_mutex_unlock(&s->lock);
    km_log(final_state == KM_CALIB_SESSION_FAILED ? KM_LOG_WARN : KM_LOG_INFO, MODULE,
           "calibration session: %s", text);
    free(rig);
    free(result);
    return NULL;
}

km_status km_calib_session_start(km_calib_session *s)
{
    if (s == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session start: NULL");
    pthread_mutex_lock(&s->lock);
    km_status st = KM_OK;
    if (s->state == KM_CALIB_SESSION_SOLVING) {
        st = km_error(KM_ERR_AGAIN, "calibration session: a solve is already running");
        goto out;
    }
    join_finished(s);
    if (s->wc->frame_count == 0) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "calibration session: no wand frame was kept "
                      "(%d frames fed): wave the wand through the volume first", s->frames_fed);
        goto out;
    }
    atomic_store_explicit(&s->cancel, false, memory_order_release);
    s->state = KM_CALIB_SESSION_SOLVING;
    s->fraction = 0.0;
    s->status = KM_OK;
    s->error[0] = '\0';
    snprintf(s->stage, sizeof s->stage, "starting (%d wand frames)", s->wc->frame_count);
    if (pthread_create(&s->thread, NULL, worker, s) != 0) {
        s->state = KM_CALIB_SESSION_COLLECTING;
        st = km_error(KM_ERR_INTERNAL, "calibration session: cannot start a thread");
        goto out;
    }
    s->thread_started = true;
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

void km_calib_session_cancel(km_calib_session *s)
{
    if (s == NULL)
        return;
    atomic_store_explicit(&s->cancel, true, memory_order_release);
}

km_status km_calib_session_wait(km_calib_session *s)
{
    if (s == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session wait: NULL");
    pthread_mutex_lock(&s->lock);
    while (s->state == KM_CALIB_SESSION_SOLVING)
        pthread_cond_wait(&s->finished, &s->lock);
    km_status st = s->status;
    char error[KM_ERROR_MESSAGE_MAX];
    snprintf(error, sizeof error, "%s", s->error);
    pthread_mutex_unlock(&s->lock);
    if (st != KM_OK)
        return km_error(st, "%s", error);
    return KM_OK;
}

void km_calib_session_get_progress(const km_calib_session *cs, km_calib_session_progress *out)
{
    if (cs == NULL || out == NULL)
        return;
    km_calib_session *s = (km_calib_session *)cs; /* the mutex is the only thing changed */
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    out->state = s->state;
    out->phase = s->phase;
    out->fraction = s->fraction;
    snprintf(out->stage, sizeof out->stage, "%s", s->stage);
    out->frames_fed = s->frames_fed;
    out->decimation = s->decimation;
    out->ground_frames = s->ground_frames;
    out->ground_blobs = s->ground_used - s->ground_stored_frames;
    out->truncated_frames = s->truncated_frames;
    out->camera_count = s->intrinsics.camera_count;
    memcpy(out->camera_views, s->camera_views, sizeof out->camera_views);
    out->status = s->status;
    snprintf(out->error, sizeof out->error, "%s", s->error);
    /* wc->frame_count does not change while solving (the solve only reads the store). */
    out->frames_kept = s->wc->frame_count;
    if (s->wc->frame_count > 0) {
        out->first_frame = s->wc->frames[0].frame;
        out->last_frame = s->wc->frames[s->wc->frame_count - 1].frame;
    }
    pthread_mutex_unlock(&s->lock);
}

km_status km_calib_session_get_result(km_calib_session *s, km_rig *rig, km_wand_result *result)
{
    if (s == NULL || rig == NULL || result == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session result: NULL argument");
    pthread_mutex_lock(&s->lock);
    km_status st = KM_OK;
    if (s->state == KM_CALIB_SESSION_COLLECTING || s->state == KM_CALIB_SESSION_SOLVING)
        st = km_error(KM_ERR_AGAIN, "calibration session: no result yet (%s)",
                      km_calib_session_state_name(s->state));
    else if (s->state != KM_CALIB_SESSION_DONE)
        st = km_error(s->status, "%s", s->error);
    else {
        *rig = s->rig;
        *result = s->result;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

km_status km_calib_session_reset(km_calib_session *s)
{
    if (s == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "calibration session reset: NULL");
    pthread_mutex_lock(&s->lock);
    km_status st = KM_OK;
    if (s->state == KM_CALIB_SESSION_SOLVING) {
        st = km_error(KM_ERR_AGAIN, "calibration session: a solve is running (cancel and wait "
                      "first)");
    } else {
        join_finished(s);
        clear_collection(s);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}
