/* The stages after marker tracking, live (see stages.h for the flow).
 *
 * Order matters: rigid bodies first, because a headset or prop is identified by its exact
 * constellation and its markers must not be offered to the skeleton labeler (which would try
 * to explain them as body markers); skeletons next; then hands (skeleton hand joints and
 * landmarks received from outside trackers) feed the gesture stage. Everything runs on the
 * solver thread, so nothing here locks. */
#include <stdlib.h>
#include <string.h>

#include "config_fields.h"
#include "stages.h"

#define MAX_RIGID_BODIES KM_PIPELINE_MAX_RIGID_BODIES
#define MAX_HANDS KM_PIPELINE_MAX_HANDS
#define MAX_INPUT_MESSAGES 64
#define MAX_EVENTS KM_PIPELINE_MAX_EVENTS

struct km_stages {
    int max_markers;              /* per input frame */
    /* rigid bodies */
    km_rigid_config rigid_cfg;
    km_rigid_tracker *rigid;
    km_rigid_definition defs[MAX_RIGID_BODIES];
    int rigid_count;
    km_rigid_pose rigid_poses[MAX_RIGID_BODIES];
    /* skeletons */
    km_skeleton_solver *skeleton;
    int people;
    km_skeleton_pose poses[KM_SKELETON_MAX_PEOPLE];
    km_marker_set body_markers;   /* the markers no tracked rigid body took */
    /* hands and gestures */
    km_gesture_engine *gesture;
    km_hand hands[MAX_HANDS];
    km_gesture_event events_out[MAX_EVENTS];
    km_input_receiver *input;
    km_input_message messages[MAX_INPUT_MESSAGES];
    /* outputs that are not frames */
    km_vmc_sender *vmc;
    int vmc_person;
    km_vmc_pose vmc_pose;
    km_event_sender *event_sender;
    /* counters */
    uint64_t rigid_tracked, skeletons_tracked, events, input_messages;
};

/* ------------------------------------------------------------------ config */

/* rigid: {enabled, definitions, tolerance_m, max_error_m, gate_m, max_missing}
 * skeleton: {enabled, subjects: [files], people, height_m, marker_set, gate_m,
 *            max_residual_m, min_markers} */
km_status km_stages_config_read(const km_config *cfg, km_pipeline_config *out)
{
    static const char *const rigid_keys[] = {"enabled", "definitions", "tolerance_m",
                                             "max_error_m", "gate_m", "max_missing",
                                             "orientation_smoothing", NULL};
    static const char *const skeleton_keys[] = {"enabled", "subjects", "people", "height_m",
                                                "marker_set", "gate_m", "max_residual_m",
                                                "min_markers", "boot_budget_us",
                                                "boot_steps", "boot_retry_frames", NULL};
    km_status st;
    if (km_config_has(cfg, "rigid")) {
        if ((st = km_config_check_keys(cfg, "rigid", rigid_keys))) return st;
        if ((st = km_field_bool(cfg, "rigid.enabled", &out->rigid_enabled))) return st;
        if ((st = km_field_string(cfg, "rigid.definitions", out->rigid_path, sizeof out->rigid_path)))
            return st;
        if ((st = km_field_double(cfg, "rigid.tolerance_m", 1e-4, 0.1, &out->rigid.tolerance_m)))
            return st;
        if ((st = km_field_double(cfg, "rigid.max_error_m", 1e-4, 0.1, &out->rigid.max_error_m)))
            return st;
        if ((st = km_field_double(cfg, "rigid.gate_m", 1e-3, 1.0, &out->rigid.gate_m))) return st;
        if ((st = km_field_int(cfg, "rigid.max_missing", 0, KM_RIGID_MAX_MARKERS - 3,
                           &out->rigid.max_missing)))
            return st;
        if ((st = km_field_double(cfg, "rigid.orientation_smoothing", 0.0, 0.9,
                              &out->rigid.orientation_smoothing)))
            return st;
    }
    if (km_config_has(cfg, "skeleton")) {
        if ((st = km_config_check_keys(cfg, "skeleton", skeleton_keys))) return st;
        out->skeleton_enabled = true;
        if ((st = km_field_bool(cfg, "skeleton.enabled", &out->skeleton_enabled))) return st;
        if (km_config_has(cfg, "skeleton.subjects")) {
            size_t n = km_config_count(cfg, "skeleton.subjects");
            if (n < 1 || n > KM_SKELETON_MAX_PEOPLE)
                return km_error(KM_ERR_PARSE, "%s:%d: skeleton.subjects: 1 to %d subject files "
                                "expected, got %zu", km_config_name(cfg),
                                km_config_line(cfg, "skeleton.subjects"), KM_SKELETON_MAX_PEOPLE,
                                n);
            for (size_t i = 0; i < n; i++) {
                char path[64];
                snprintf(path, sizeof path, "skeleton.subjects.%zu", i);
                st = km_config_get_string(cfg, path, "", out->subject_paths[i],
                                          sizeof out->subject_paths[i]);
                if (st || !out->subject_paths[i][0])
                    return km_error(KM_ERR_PARSE, "%s:%d: %s: a subject file name expected",
                                    km_config_name(cfg), km_config_line(cfg, path), path);
            }
            out->subject_count = (int)n;
        }
        if ((st = km_field_int(cfg, "skeleton.people", 1, KM_SKELETON_MAX_PEOPLE,
                           &out->skeleton_people)))
            return st;
        if ((st = km_field_double(cfg, "skeleton.height_m", 1.0, 2.5, &out->skeleton_height_m)))
            return st;
        if ((st = km_field_string(cfg, "skeleton.marker_set", out->marker_set_path,
                            sizeof out->marker_set_path)))
            return st;
        if ((st = km_field_double(cfg, "skeleton.gate_m", 0.005, 0.5, &out->skeleton.gate_m)))
            return st;
        if ((st = km_field_double(cfg, "skeleton.max_residual_m", 0.001, 0.5,
                              &out->skeleton.max_residual_m)))
            return st;
        if ((st = km_field_int(cfg, "skeleton.min_markers", 3, KM_SKELETON_MAX_MARKERS,
                           &out->skeleton.min_markers)))
            return st;
        if ((st = km_field_int(cfg, "skeleton.boot_budget_us", 0, 1000000,
                           &out->skeleton.boot_budget_us)))
            return st;
        if ((st = km_field_int(cfg, "skeleton.boot_steps", 0, 100000,
                               &out->skeleton.boot_steps)))
            return st;
        if ((st = km_field_int(cfg, "skeleton.boot_retry_frames", 0, 100000,
                           &out->skeleton.boot_retry_frames)))
            return st;
    }
    if (km_config_has(cfg, "gesture")) {
        if ((st = km_gesture_engine_config_read(cfg, "gesture", &out->gesture))) return st;
        bool enabled = true;
        st = km_config_get_bool(cfg, "gesture.enabled", true, &enabled);
        if (st && st != KM_ERR_NOT_FOUND) return st;
        out->gesture_enabled = enabled;
    }
    if ((st = km_vmc_config_read(cfg, "transport.vmc", &out->vmc))) return st;
    if ((st = km_event_sender_config_read(cfg, "transport.events", &out->events))) return st;
    if ((st = km_input_config_read(cfg, "transport.input", &out->input))) return st;
    return KM_OK;
}

/* ------------------------------------------------------------------ create */

/* The synthetic scene's own bodies: each actor's head band and hand-held prop, in the
 * frames the scene's ground truth uses (so tests compare poses directly). */
static km_status synthetic_definitions(km_stages *s, const km_synthetic_scene *scene)
{
    int actors = km_synthetic_scene_config(scene)->actor_count;
    for (int a = 0; a < actors; a++) {
        for (int k = 0; k < 2; k++) {
            if (s->rigid_count >= MAX_RIGID_BODIES) return KM_OK;
            km_synthetic_marker m[KM_RIGID_MAX_MARKERS];
            km_synthetic_rigid_kind kind = k == 0 ? KM_SYNTHETIC_RIGID_HEAD
                                                  : KM_SYNTHETIC_RIGID_PROP;
            int n = km_synthetic_rigid_definition(kind, m, KM_RIGID_MAX_MARKERS);
            km_rigid_definition *d = &s->defs[s->rigid_count];
            memset(d, 0, sizeof *d);
            const char *base = k == 0 ? "head" : "prop";
            if (actors == 1)
                snprintf(d->name, sizeof d->name, "%s", base);
            else
                snprintf(d->name, sizeof d->name, "%s_%d", base, a + 1);
            d->id = (uint32_t)(1 + s->rigid_count);
            d->marker_count = n;
            d->marker_diameter_m = km_synthetic_scene_config(scene)->marker_diameter_m;
            for (int i = 0; i < n; i++) d->markers_m[i] = m[i].pos_m;
            km_status st = km_rigid_definition_validate(d);
            if (st) return st;
            s->rigid_count++;
        }
    }
    return KM_OK;
}

static km_status create_rigid(km_stages *s, int max_markers)
{
    km_rigid_config rc = s->rigid_cfg;
    if (rc.max_markers < max_markers) rc.max_markers = max_markers;
    km_status st = KM_OK;
    km_rigid_tracker *t = km_rigid_tracker_create(&rc, s->defs, s->rigid_count, &st);
    if (!t) return st;
    km_rigid_tracker_destroy(s->rigid);
    s->rigid = t;
    s->rigid_cfg = rc;
    return KM_OK;
}

/* The synthetic actors' subjects, calibrated as an operator would from a range-of-motion
 * take: 80 frames over 6 s of each actor's walk, labeled from the scene (in a simulation the labels
 * are known; a real stage labels its calibration take with `kinema skeleton calibrate`). */
static km_status synthetic_subject(const km_synthetic_scene *scene, const km_body_markerset *set,
                                   int actor, double height_m, km_subject *out)
{
    enum { FRAMES = 80 };
    km_body_frame *frames = calloc(FRAMES, sizeof *frames);
    km_synthetic_marker *m = calloc(KM_SYNTHETIC_MAX_MARKERS, sizeof *m);
    km_status st = KM_OK;
    if (!frames || !m) {
        st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for subject calibration");
        goto done;
    }
    for (int f = 0; f < FRAMES; f++) {
        uint64_t t = (uint64_t)f * 75000000ull; /* 13 Hz over 6 s: one walking circle */
        int n = km_synthetic_scene_markers(scene, t, m, KM_SYNTHETIC_MAX_MARKERS);
        km_body_frame *bf = &frames[f];
        bf->frame = (uint64_t)f;
        bf->time_ns = t;
        bf->count = set->count;
        for (int i = 0; i < n; i++) {
            if ((int)(m[i].id / 1000) != actor) continue;
            int l = km_body_markerset_find(set, m[i].label);
            if (l < 0) continue;
            bf->pos_m[l] = m[i].pos_m;
            bf->valid[l] = true;
        }
    }
    char name[32];
    snprintf(name, sizeof name, "actor%d", actor + 1);
    km_subject_calibration_config cc = km_subject_calibration_config_default();
    cc.height_m = height_m;

    km_subject_calibration_report rep;
    st = km_subject_calibrate(set, frames, FRAMES, &cc, name, out, &rep);
    if (!st)
        km_log(KM_LOG_INFO, "pipeline", "subject %s calibrated from the synthetic actor: "
               "marker RMS %.1f mm (template %.1f mm)", name, rep.rms_after_m * 1e3,
               rep.rms_before_m * 1e3);
done:
    free(frames);
    free(m);
    return st;
}

static km_status create_skeleton(km_stages *s, const km_pipeline_config *cfg,
                                 const km_synthetic_scene *scene)
{
    /* Subjects are large (marker sets): on the heap, only while the solver copies them. */
    km_subject *subj = calloc(KM_SKELETON_MAX_PEOPLE, sizeof *subj);
    if (!subj) return km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for subjects");
    km_status st = KM_OK;
    int people;
    if (cfg->subject_count > 0) {
        people = cfg->subject_count;
        for (int i = 0; i < people && !st; i++) st = km_subject_load(cfg->subject_paths[i], &subj[i]);
    } else {
        people = cfg->skeleton_people;
        if (people <= 0)
            people = scene ? km_synthetic_scene_config(scene)->actor_count : 1;
        if (people > KM_SKELETON_MAX_PEOPLE) people = KM_SKELETON_MAX_PEOPLE;
        km_body_markerset set;
        if (cfg->marker_set_path[0])
            st = km_body_markerset_load(cfg->marker_set_path, &set);
        else
            km_body_markerset_default(&set);
        bool from_scene = scene && !cfg->marker_set_path[0] &&
                          people <= km_synthetic_scene_config(scene)->actor_count;
        for (int i = 0; i < people && !st; i++) {
            char name[32];
            snprintf(name, sizeof name, "person%d", i + 1);
            st = from_scene ? synthetic_subject(scene, &set, i, cfg->skeleton_height_m, &subj[i])
                            : km_subject_default(&set, cfg->skeleton_height_m, name, &subj[i]);
        }
    }
    if (!st) {
        km_skeleton_solver_config sc = cfg->skeleton;
        s->skeleton = km_skeleton_solver_create(&sc, subj, people, &st);
        s->people = s->skeleton ? people : 0;
    }
    free(subj);
    return st;
}

km_stages *km_stages_create(const km_pipeline_config *cfg, const km_synthetic_scene *scene,
                            int max_markers, km_status *err)
{
    km_status st = KM_OK;
    km_stages *s = calloc(1, sizeof *s);
    if (!s) {
        st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for the stages");
        goto fail;
    }
    s->rigid_cfg = cfg->rigid;
    s->max_markers = max_markers;
    if (cfg->rigid_enabled) {
        if (cfg->rigid_path[0]) {
            if ((st = km_rigid_definitions_load(cfg->rigid_path, s->defs, MAX_RIGID_BODIES,
                                                &s->rigid_count)))
                goto fail;
        } else if (scene) {
            if ((st = synthetic_definitions(s, scene))) goto fail;
        }
        if (s->rigid_count > 0 && (st = create_rigid(s, max_markers))) goto fail;
    }
    s->body_markers.items = calloc((size_t)max_markers, sizeof *s->body_markers.items);
    s->body_markers.capacity = max_markers;
    if (!s->body_markers.items) {
        st = km_error(KM_ERR_NO_MEMORY, "pipeline: out of memory for marker buffers");
        goto fail;
    }
    if (cfg->skeleton_enabled && (st = create_skeleton(s, cfg, scene))) goto fail;
    if (cfg->gesture_enabled) {
        s->gesture = km_gesture_engine_create(&cfg->gesture, &st);
        if (!s->gesture) goto fail;
    }
    if (cfg->input.enabled) {
        s->input = km_input_receiver_create(&cfg->input, &st);
        if (!s->input) goto fail;
    }
    if (cfg->vmc.enabled) {
        s->vmc = km_vmc_sender_create(&cfg->vmc, &st);
        if (!s->vmc) goto fail;
        s->vmc_person = cfg->vmc.person;
    }
    if (cfg->events.enabled) {
        s->event_sender = km_event_sender_create(&cfg->events, &st);
        if (!s->event_sender) goto fail;
    }
    if (s->rigid_count)
        km_log(KM_LOG_INFO, "pipeline", "%d rigid bodies%s", s->rigid_count,
               cfg->rigid_path[0] ? "" : " (the synthetic scene's)");
    if (s->skeleton)
        km_log(KM_LOG_INFO, "pipeline", "skeletons: %d %s", s->people,
               cfg->subject_count ? "subjects from files"
               : scene && !cfg->marker_set_path[0] ? "subjects calibrated on the synthetic actors"
                                                   : "template subjects");
    return s;
fail:
    if (err) *err = st ? st : KM_ERR_INTERNAL;
    km_stages_destroy(s);
    return NULL;
}

void km_stages_destroy(km_stages *s)
{
    if (!s) return;
    km_rigid_tracker_destroy(s->rigid);
    km_skeleton_solver_destroy(s->skeleton);
    km_gesture_engine_destroy(s->gesture);
    km_input_receiver_destroy(s->input);
    km_vmc_sender_destroy(s->vmc);
    km_event_sender_destroy(s->event_sender);
    free(s->body_markers.items);
    free(s);
}

/* ------------------------------------------------------------------ per frame */

/* The markers that no tracked rigid body took. */
static void markers_without_bodies(km_stages *s, const km_marker_set *in)
{
    km_marker_set *out = &s->body_markers;
    out->count = 0;
    out->frame = in->frame;
    out->time_ns = in->time_ns;
    for (int i = 0; i < in->count && out->count < out->capacity; i++) {
        uint32_t id = in->items[i].id;
        bool taken = false;
        for (int b = 0; b < s->rigid_count && !taken; b++) {
            const km_rigid_pose *p = &s->rigid_poses[b];
            if (!p->tracked) continue;
            int n = s->defs[b].marker_count;
            for (int k = 0; k < n; k++)
                if (p->marker_ids[k] == id) {
                    taken = true;
                    break;
                }
        }
        if (!taken) out->items[out->count++] = in->items[i];
    }
}

/* A received landmark hand as the gesture stage's km_hand. */
static km_hand hand_from_input(const km_hand_input *in, uint64_t now_ns)
{
    km_hand h = km_hand_init();
    h.time_ns = (int64_t)(in->time_ns ? in->time_ns : now_ns);
    h.person = in->person;
    h.side = in->hand;
    h.confidence = in->confidence;
    h.landmark_valid = KM_HAND_LANDMARKS_ALL;
    for (int i = 0; i < KM_HAND_LANDMARK_COUNT; i++) h.landmark_m[i] = in->landmarks_m[i];
    return h;
}

/* Hand landmarks and gaze from outside trackers, into the gesture engine. A message the
 * engine refuses (a hand failing km_hand_validate) is logged and dropped. */
static void poll_input(km_stages *s, uint64_t now_ns)
{
    if (!s->input) return;
    int n = 0;
    if (km_input_poll(s->input, s->messages, MAX_INPUT_MESSAGES, &n)) return;
    s->input_messages += (uint64_t)n;
    if (!s->gesture) return;
    for (int i = 0; i < n; i++) {
        const km_input_message *m = &s->messages[i];
        km_status st;
        if (m->kind == KM_INPUT_HAND) {
            km_hand h = hand_from_input(&m->hand, now_ns);
            st = km_gesture_engine_push_hand(s->gesture, &h);
        } else {
            st = km_gesture_engine_push_gaze(s->gesture, m->gaze.person,
                                             (int64_t)(m->gaze.time_ns ? m->gaze.time_ns
                                                                       : now_ns),
                                             m->gaze.origin_m, m->gaze.direction);
        }
        if (st) km_log(KM_LOG_DEBUG, "pipeline", "input refused: %s", km_last_error());
    }
}

/* A solved skeleton as the gesture engine's body: the joints it follows, the head's
 * orientation (gaze) and the hips' forward direction (facing). */
static km_gesture_body body_from_pose(const km_skeleton_pose *pose)
{
    static const int joint_of[KM_BODY_JOINT_COUNT] = {
        [KM_BODY_HIPS] = KM_JOINT_HIPS,
        [KM_BODY_CHEST] = KM_JOINT_CHEST,
        [KM_BODY_NECK] = KM_JOINT_NECK,
        [KM_BODY_HEAD] = KM_JOINT_HEAD,
        [KM_BODY_LEFT_SHOULDER] = KM_JOINT_LEFT_UPPER_ARM,
        [KM_BODY_LEFT_ELBOW] = KM_JOINT_LEFT_LOWER_ARM,
        [KM_BODY_LEFT_HAND] = KM_JOINT_LEFT_HAND,
        [KM_BODY_RIGHT_SHOULDER] = KM_JOINT_RIGHT_UPPER_ARM,
        [KM_BODY_RIGHT_ELBOW] = KM_JOINT_RIGHT_LOWER_ARM,
        [KM_BODY_RIGHT_HAND] = KM_JOINT_RIGHT_HAND,
    };
    km_gesture_body b = km_gesture_body_init();
    for (int j = 0; j < KM_BODY_JOINT_COUNT; j++) {
        /* a joint no labeled marker supports (an occluded arm) is a guess: not a gesture */
        if (!(pose->joints_observed >> joint_of[j] & 1u)) continue;
        b.joint_m[j] = pose->joint_pos_m[joint_of[j]];
        b.tracked |= KM_BODY_BIT(j);
    }
    b.head_rotation_valid = true;
    b.head_rotation = pose->joint_rot[KM_JOINT_HEAD];
    /* rest pose faces +Z (docs/skeleton.md) */
    b.facing_valid = true;
    b.facing = km_quat_rotate(pose->joint_rot[KM_JOINT_HIPS], km_vec3_make(0, 0, 1));
    return b;
}

km_status km_stages_run(km_stages *s, const km_marker_set *markers, uint64_t time_ns,
                        km_solved_frame *out)
{
    km_status result = KM_OK, st;
    uint64_t now = km_time_now_ns();
    const km_marker_set *for_skeleton = markers;
    if (s->rigid) {
        st = km_rigid_tracker_update(s->rigid, markers, s->rigid_poses, MAX_RIGID_BODIES);
        if (st && st != KM_ERR_CAPACITY) result = st;
        for (int b = 0; b < s->rigid_count; b++) s->rigid_tracked += s->rigid_poses[b].tracked;
        out->rigid_bodies = s->rigid_poses;
        out->rigid_definitions = s->defs;
        out->rigid_body_count = s->rigid_count;
        markers_without_bodies(s, markers);
        for_skeleton = &s->body_markers;
    }
    if (s->skeleton) {
        st = km_skeleton_solver_run(s->skeleton, for_skeleton, s->poses, KM_SKELETON_MAX_PEOPLE);
        if (st && st != KM_ERR_CAPACITY) result = st;
        out->skeletons = s->poses;
        out->skeleton_count = s->people;
        for (int p = 0; p < s->people; p++) {
            const km_skeleton_pose *pose = &s->poses[p];
            if (!pose->tracked) continue;
            s->skeletons_tracked++;
            if (s->gesture) {
                km_gesture_body body = body_from_pose(pose);
                st = km_gesture_engine_push_body(s->gesture, p, (int64_t)time_ns, &body);
                if (st && st != KM_ERR_CAPACITY) result = st;
            }
        }
    }
    poll_input(s, now);
    if (s->gesture) {
        size_t n = 0;
        st = km_gesture_engine_step(s->gesture, (int64_t)time_ns, s->events_out, MAX_EVENTS, &n);
        if (st) result = st;
        if (n) {
            out->events = s->events_out;
            out->event_count = (int)n;
        }
        size_t hands = 0;
        km_gesture_engine_hands(s->gesture, s->hands, MAX_HANDS, &hands);
        if (hands) {
            out->hands = s->hands;
            out->hand_count = (int)hands;
        }
    }
    return result;
}

void km_stages_send(km_stages *s, km_publisher *pub, const km_solved_frame *frame,
                    uint64_t now_ns)
{
    if (s->vmc) {
        const km_skeleton_pose *pose = NULL;
        for (int p = 0; p < frame->skeleton_count; p++)
            if (frame->skeletons[p].person == s->vmc_person && frame->skeletons[p].tracked)
                pose = &frame->skeletons[p];
        if (pose) {
            /* (joints no marker supports are left out: VMC receivers hold them) */
            km_vmc_pose_from_skeleton(pose, frame->capture_time_ns, &s->vmc_pose);
            km_vmc_send(s->vmc, &s->vmc_pose, now_ns);
        } else {
            /* Alive, no avatar data: receivers keep the last pose. */
            km_vmc_send(s->vmc, NULL, now_ns);
        }
    }
    for (int i = 0; i < frame->event_count; i++) {
        if (pub) km_publisher_send_gesture(pub, &frame->events[i]);
        if (s->event_sender) km_event_send_gesture(s->event_sender, &frame->events[i]);
    }
    s->events += (uint64_t)frame->event_count;
}

km_status km_stages_define_rigid(km_stages *s, const char *name, const uint32_t *marker_ids,
                                 int count, const km_marker_set *markers, uint32_t *id)
{
    if (s->rigid_count >= MAX_RIGID_BODIES)
        return km_error(KM_ERR_CAPACITY, "define_rigid: already %d rigid bodies",
                        MAX_RIGID_BODIES);
    if (count < 3 || count > KM_RIGID_MAX_MARKERS)
        return km_error(KM_ERR_INVALID_ARGUMENT, "define_rigid: %d markers given, a rigid body "
                        "has 3 to %d", count, KM_RIGID_MAX_MARKERS);
    uint32_t next_id = 1;
    for (int b = 0; b < s->rigid_count; b++) {
        if (strcmp(s->defs[b].name, name) == 0)
            return km_error(KM_ERR_INVALID_ARGUMENT, "define_rigid: a rigid body named '%s' "
                            "exists (id %u)", name, s->defs[b].id);
        if (s->defs[b].id >= next_id) next_id = s->defs[b].id + 1;
    }
    km_vec3 pos[KM_RIGID_MAX_MARKERS];
    for (int k = 0; k < count; k++) {
        int found = -1;
        for (int i = 0; i < markers->count; i++)
            if (markers->items[i].id == marker_ids[k]) found = i;
        if (found < 0)
            return km_error(KM_ERR_NOT_FOUND, "define_rigid: marker %u is not tracked in the "
                            "current frame", marker_ids[k]);
        pos[k] = markers->items[found].pos_m;
    }
    km_rigid_definition d;
    km_status st = km_rigid_definition_from_points(name, next_id, pos, count, &d);
    if (st) return st;
    s->defs[s->rigid_count++] = d;
    st = create_rigid(s, s->max_markers);
    if (st) {
        s->rigid_count--; /* the running tracker is unchanged */
        return st;
    }
    memset(s->rigid_poses, 0, sizeof s->rigid_poses);
    km_log(KM_LOG_INFO, "pipeline", "rigid body '%s' (id %u) defined from %d markers", name,
           next_id, count);
    *id = next_id;
    return KM_OK;
}

void km_stages_counts(const km_stages *s, uint64_t *rigid_tracked, uint64_t *skeletons_tracked,
                      uint64_t *events, uint64_t *input_messages)
{
    *rigid_tracked = s->rigid_tracked;
    *skeletons_tracked = s->skeletons_tracked;
    *events = s->events;
    *input_messages = s->input_messages;
}
