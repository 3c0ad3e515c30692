/* The skeleton solver: labeling of unlabeled markers and IK for each person
 * (include/kinema/skeleton.h "solver").
 *
 * Per frame, for every tracked person:
 *  1. predict: the pose extrapolated at constant velocity gives each label a position;
 *  2. assign: labels of all people against all markers, cost = squared distance to the
 *     prediction, the marker that carried the label last frame (same track id) cheaper and
 *     allowed further (track continuity); exact minimum cost with "unlabeled" allowed
 *     (multi.c), so a marker serves one label of one person;
 *  3. solve IK on the labeled markers; a label whose residual is large is dropped (segment
 *     rigidity: the solved body cannot reach it) and the pose solved again;
 *  4. recover: free labels (occluded before, or dropped) take a free marker lying within
 *     max_residual_m of their solved position, and the pose is refined; a limb still
 *     unlabeled searches free markers with a wide, shrinking gate;
 *  5. lost limbs: a limb still unlabeled while free markers lie within its reach is restarted
 *     from typical poses, and a limb end that took markers from afar is checked for mixed-up
 *     labels, a step at a time under the boot budget (see "lost limbs" below).
 * The pose says which joints are observed (joints_observed); unobserved ones are held still.
 * A person with too few labels is lost. People that are not tracked boot from the markers
 * nobody took: clusters of markers (people stand apart) are fitted with the subject's rest
 * pose upright at 12 headings, labels and pose refined together (assignment + IK with a
 * shrinking gate, like ICP); the best fit wins if it explains enough markers. The boot is a
 * per-person state machine run a step at a time within boot_budget_us per call (see
 * "boot" below). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeleton_internal.h"

#define MODULE "skeleton"
#define BOOT_HEADINGS 12
#define BOOT_BACKOFF_SLOTS 8   /* places a person recently failed to boot at */
#define BOOT_LIMB_COMBOS 64    /* limb-end assignments of one group (at most 24 arise) */

/* Markers a boot fits: a snapshot of one cluster, or the cluster in the current frame.
 * index: each one's index in the frame it was taken from. */
typedef struct boot_view {
    km_vec3 *pos;
    int *index;
    uint32_t *id;            /* the markers' track ids */
    int count;
    km_vec3 centroid;
} boot_view;

typedef struct boot_backoff {
    km_vec3 centroid;
    uint64_t until_frame;
    int failures;            /* 0 = slot unused */
} boot_backoff;

/* Limb-end search of one group (boot LIMBS phase). */
typedef struct limb_search {
    int labels[4], n;
    int cand[6], k;
    int current[4], best[4];
    double best_cost;
    bool used[6];
    pose_state base;
    int combos[BOOT_LIMB_COMBOS][4], combo_count, combo;
} limb_search;

typedef enum boot_phase { BOOT_IDLE = 0, BOOT_COARSE, BOOT_FINAL, BOOT_LIMBS, BOOT_ACCEPT } boot_phase;

/* A person's boot in progress, spread over calls (see "boot" below). */
typedef struct boot_job {
    boot_phase phase;
    boot_view view;                  /* the snapshot the search fits (arrays from create) */
    int cluster;                     /* this call's cluster of the boot */
    km_vec3 track_centroid;          /* where that cluster was last seen */
    uint64_t started_frame, catchup_frame;
    int hyp, stage;                  /* hypothesis (or finalist) and its next stage */
    double coarse[2 * BOOT_HEADINGS];
    int finalists[4], finalist_count;
    bool fresh;                      /* FINAL took its snapshot */
    double best;
    int best_h;
    pose_state best_state;
    int best_assigned[KM_SKELETON_MAX_MARKERS];
    int assigned[KM_SKELETON_MAX_MARKERS]; /* labels (view indices) between LIMBS steps */
    int group;
    bool group_ready;
    int catchups;
    int partials;                    /* partial fits refused since the last boot */
    limb_search ls;
    boot_backoff backoff[BOOT_BACKOFF_SLOTS];
} boot_job;

/* Recovery of a lost limb (see "lost limbs" below). */
#define LIMBS 4

typedef struct limb_state {
    uint32_t joints;                         /* bit j: joint j belongs to the limb */
    int labels[KM_SKELETON_MAX_MARKERS], count;  /* the limb's labels */
    int distal;                              /* of them, below its first segment */
    double reach_m;                          /* farthest marker from the limb's root joint */
    int next;                                /* next typical pose to start from */
    int tried;                               /* starts tried since the limb was lost */
    int failures;                            /* whole cycles without a fit (back-off) */
    uint64_t wait_until;                     /* frame before which it is not searched */
    int end[KM_SKELETON_MAX_MARKERS], end_count; /* labels of its end (forearm + hand, foot) */
    bool end_check;                          /* end labels taken by a wide search: check */
} limb_state;

typedef struct person {
    km_ik *ik;
    bool tracked;
    int labels;                              /* subject marker count */
    int row_base;                            /* first global row of its labels */
    int assigned[KM_SKELETON_MAX_MARKERS];   /* marker index this frame, -1 */
    uint32_t last_id[KM_SKELETON_MAX_MARKERS];
    bool has_last_id[KM_SKELETON_MAX_MARKERS];
    km_vec3 pred[KM_SKELETON_MAX_MARKERS];
    double residual[KM_SKELETON_MAX_MARKERS];
    km_body_frame frame;
    km_skeleton_pose pose;
    boot_job job;
    limb_state limb[LIMBS];
    /* the end check under way (limb_end_step): limb, next combination, candidates by id */
    int end_limb;                            /* -1: none */
    int end_combo;
    uint32_t end_cand_id[6];
    limb_search end_ls;
} person;

struct km_skeleton_solver {
    km_skeleton_solver_config cfg;
    int count;
    int rows;
    person people[KM_SKELETON_MAX_PEOPLE];
    skel_assign *assign;
    skel_edge *edges;
    int max_edges;
    double *unassigned;
    int *row_to_col;
    int *owner;          /* per marker: global row that took it, -1 */
    bool *free_marker;
    int *cluster, *work, *members;
    km_vec3 *pos;
    int *cl_count, *cl_claim;   /* per cluster: free markers, person booting from it (-1) */
    km_vec3 *cl_centroid;
    boot_view cur;              /* a boot's cluster in the current frame */
    km_ik *scratch;             /* a person's IK before a limb search (restored on failure) */
    int scratch_assigned[KM_SKELETON_MAX_MARKERS];
    km_skeleton_pose scratch_pose;
    km_skeleton_solver_stats stats;
};

static void limbs_setup(person *pe);
static void recover_limbs(km_skeleton_solver *s, const km_marker_set *m, uint64_t t0_ns);
static bool budget_left(const km_skeleton_solver *s, uint64_t t0_ns, int steps);
static void limb_enumerate(limb_search *ls, int depth, int free_left);

km_skeleton_solver_config km_skeleton_solver_config_default(void)
{
    km_skeleton_solver_config c;
    c.ik = km_ik_config_default();
    c.max_markers = 512;
    c.gate_m = 0.06;
    c.continuity_gate_m = 0.10;
    c.continuity_factor = 0.25;
    c.max_residual_m = 0.03;
    c.min_markers = 8;
    c.person_link_m = 0.35;
    c.boot_budget_us = 1500;
    c.boot_steps = 0;
    c.boot_retry_frames = 60;
    return c;
}

void km_skeleton_solver_destroy(km_skeleton_solver *s)
{
    if (!s)
        return;
    km_ik_destroy(s->scratch);
    for (int p = 0; p < s->count; p++) {
        km_ik_destroy(s->people[p].ik);
        free(s->people[p].job.view.pos);
        free(s->people[p].job.view.index);
        free(s->people[p].job.view.id);
    }
    free(s->cl_count);
    free(s->cl_claim);
    free(s->cl_centroid);
    free(s->cur.pos);
    free(s->cur.index);
    free(s->cur.id);
    skel_assign_destroy(s->assign);
    free(s->edges);
    free(s->unassigned);
    free(s->row_to_col);
    free(s->owner);
    free(s->free_marker);
    free(s->cluster);
    free(s->work);
    free(s->members);
    free(s->pos);
    free(s);
}

km_skeleton_solver *km_skeleton_solver_create(const km_skeleton_solver_config *cfg,
                                              const km_subject *subjects, int count,
                                              km_status *err)
{
    km_status st = KM_OK;
    km_skeleton_solver *s = NULL;
    if (!subjects || count < 1 || count > KM_SKELETON_MAX_PEOPLE) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "skeleton solver: %d subjects (1..%d)", count,
                      KM_SKELETON_MAX_PEOPLE);
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        st = km_error(KM_ERR_NO_MEMORY, "skeleton solver: out of memory");
        goto out;
    }
    s->cfg = cfg ? *cfg : km_skeleton_solver_config_default();
    if (s->cfg.max_markers < 1 || s->cfg.max_markers > 100000 || !(s->cfg.gate_m > 0) ||
        !(s->cfg.max_residual_m > 0) || s->cfg.min_markers < 3 || s->cfg.boot_budget_us < 0 ||
        s->cfg.boot_steps < 0 || s->cfg.boot_retry_frames < 0 ||
        s->cfg.boot_retry_frames > 1000000) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "skeleton solver: bad configuration");
        goto out;
    }
    for (int p = 0; p < count; p++) {
        person *pe = &s->people[p];
        pe->ik = km_ik_create(&subjects[p], &s->cfg.ik, &st);
        if (!pe->ik)
            goto out;
        s->count = p + 1;
        pe->labels = subjects[p].markers.count;
        pe->row_base = s->rows;
        s->rows += pe->labels;
        pe->pose.person = p;
        limbs_setup(pe);
    }
    s->scratch = km_ik_create(&subjects[0], &s->cfg.ik, &st);
    if (!s->scratch)
        goto out;
    const int m = s->cfg.max_markers;
    for (int p = 0; p < count; p++) {
        s->people[p].job.view.pos = malloc((size_t)m * sizeof(km_vec3));
        s->people[p].job.view.index = malloc((size_t)m * sizeof(int));
        s->people[p].job.view.id = malloc((size_t)m * sizeof(uint32_t));
        if (!s->people[p].job.view.pos || !s->people[p].job.view.index ||
            !s->people[p].job.view.id) {
            st = km_error(KM_ERR_NO_MEMORY, "skeleton solver: out of memory");
            goto out;
        }
    }
    s->cl_count = malloc((size_t)m * sizeof *s->cl_count);
    s->cl_claim = malloc((size_t)m * sizeof *s->cl_claim);
    s->cl_centroid = malloc((size_t)m * sizeof *s->cl_centroid);
    s->cur.pos = malloc((size_t)m * sizeof *s->cur.pos);
    s->cur.index = malloc((size_t)m * sizeof *s->cur.index);
    s->cur.id = malloc((size_t)m * sizeof *s->cur.id);
    s->max_edges = s->rows * 24 + 1;
    s->assign = skel_assign_create(s->rows, m, s->max_edges);
    s->edges = malloc((size_t)s->max_edges * sizeof *s->edges);
    s->unassigned = malloc((size_t)s->rows * sizeof *s->unassigned);
    s->row_to_col = malloc((size_t)s->rows * sizeof *s->row_to_col);
    s->owner = malloc((size_t)m * sizeof *s->owner);
    s->free_marker = malloc((size_t)m * sizeof *s->free_marker);
    s->cluster = malloc((size_t)m * sizeof *s->cluster);
    s->work = malloc((size_t)m * sizeof *s->work);
    s->members = malloc((size_t)m * sizeof *s->members);
    s->pos = malloc((size_t)m * sizeof *s->pos);
    if (!s->assign || !s->edges || !s->unassigned || !s->row_to_col || !s->owner ||
        !s->free_marker || !s->cluster || !s->work || !s->members || !s->pos || !s->cl_count ||
        !s->cl_claim || !s->cl_centroid || !s->cur.pos || !s->cur.index || !s->cur.id) {
        st = km_error(KM_ERR_NO_MEMORY, "skeleton solver: out of memory");
        goto out;
    }
    km_skeleton_solver_reset(s);
out:
    if (err)
        *err = st;
    if (st != KM_OK) {
        km_skeleton_solver_destroy(s);
        return NULL;
    }
    return s;
}

void km_skeleton_solver_reset(km_skeleton_solver *s)
{
    if (!s)
        return;
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        km_ik_reset(pe->ik);
        skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
        pe->tracked = false;
        pe->job.phase = BOOT_IDLE;
        pe->job.partials = 0;
        memset(pe->job.backoff, 0, sizeof pe->job.backoff);
        for (int b = 0; b < LIMBS; b++) {
            pe->limb[b].next = pe->limb[b].tried = pe->limb[b].failures = 0;
            pe->limb[b].wait_until = 0;
            pe->limb[b].end_check = false;
        }
        pe->end_limb = -1;
        for (int l = 0; l < KM_SKELETON_MAX_MARKERS; l++) {
            pe->assigned[l] = -1;
            pe->has_last_id[l] = false;
        }
    }
}

int km_skeleton_solver_count(const km_skeleton_solver *s)
{
    return s ? s->count : 0;
}

const km_subject *km_skeleton_solver_subject(const km_skeleton_solver *s, int person_index)
{
    if (!s || person_index < 0 || person_index >= s->count)
        return NULL;
    return km_ik_subject(s->people[person_index].ik);
}

km_skeleton_solver_stats km_skeleton_solver_get_stats(const km_skeleton_solver *s)
{
    return s->stats;
}

km_status km_skeleton_solver_labels(const km_skeleton_solver *s, int person_index,
                                    int *marker_index, int capacity)
{
    if (!s || person_index < 0 || person_index >= s->count || !marker_index)
        return km_error(KM_ERR_INVALID_ARGUMENT, "skeleton labels: bad argument");
    const person *pe = &s->people[person_index];
    if (capacity < pe->labels)
        return km_error(KM_ERR_CAPACITY, "skeleton labels: %d labels, room for %d",
                        pe->labels, capacity);
    memcpy(marker_index, pe->assigned, sizeof(int) * (size_t)pe->labels);
    return KM_OK;
}

/* ------------------------------------------------------------------ frame */

static void frame_from_assignment(const km_skeleton_solver *s, person *pe,
                                  const km_marker_set *m)
{
    pe->frame.count = pe->labels;
    pe->frame.frame = m->frame;
    pe->frame.time_ns = m->time_ns;
    for (int l = 0; l < pe->labels; l++) {
        int k = pe->assigned[l];
        pe->frame.valid[l] = k >= 0;
        if (k >= 0)
            pe->frame.pos_m[l] = s->pos[k];
    }
}

static int labeled_count(const person *pe)
{
    int n = 0;
    for (int l = 0; l < pe->labels; l++)
        n += pe->assigned[l] >= 0;
    return n;
}

/* Edges from the labels of `pe` (at positions pred) to markers that are free or (when
 * others is false) any marker; returns the new edge count. */
static int add_edges(km_skeleton_solver *s, const person *pe, const km_marker_set *m,
                     int edge_count, double gate_m, bool continuity, bool free_only)
{
    const double g2 = gate_m * gate_m;
    const double c2 = s->cfg.continuity_gate_m * s->cfg.continuity_gate_m;
    for (int l = 0; l < pe->labels; l++) {
        if (free_only && pe->assigned[l] >= 0)
            continue;
        const int row = pe->row_base + l;
        s->unassigned[row] = g2;
        for (int k = 0; k < m->count; k++) {
            if (free_only && s->owner[k] != -1)
                continue;
            km_vec3 d = km_vec3_sub(s->pos[k], pe->pred[l]);
            double d2 = km_vec3_dot(d, d);
            double cost;
            if (continuity && pe->has_last_id[l] && m->items[k].id == pe->last_id[l] && d2 < c2)
                cost = d2 * s->cfg.continuity_factor;
            else if (d2 < g2)
                cost = d2;
            else
                continue;
            if (edge_count >= s->max_edges)
                return edge_count;
            s->edges[edge_count].row = row;
            s->edges[edge_count].col = k;
            s->edges[edge_count].cost = cost;
            edge_count++;
        }
    }
    return edge_count;
}

/* Apply the assignment of rows of person pe (free_only: only labels that had none). */
static int take_assignment(km_skeleton_solver *s, person *pe, bool free_only)
{
    int added = 0;
    for (int l = 0; l < pe->labels; l++) {
        if (free_only && pe->assigned[l] >= 0)
            continue;
        int k = s->row_to_col[pe->row_base + l];
        if (k >= 0 && s->owner[k] >= 0 && s->owner[k] != pe->row_base + l)
            continue;
        pe->assigned[l] = k;
        if (k >= 0) {
            s->owner[k] = pe->row_base + l;
            added++;
        }
    }
    return added;
}

static void release_labels(km_skeleton_solver *s, person *pe)
{
    for (int l = 0; l < pe->labels; l++) {
        if (pe->assigned[l] >= 0 && s->owner[pe->assigned[l]] == pe->row_base + l)
            s->owner[pe->assigned[l]] = -1;
        pe->assigned[l] = -1;
    }
}

/* IK, then drop labels the solved body cannot reach and solve again. */
static void solve_person(km_skeleton_solver *s, person *pe, const km_marker_set *m,
                         int iterations)
{
    frame_from_assignment(s, pe, m);
    if (skeleton_ik_solve_n(pe->ik, &pe->frame, iterations, &pe->pose) != KM_OK)
        return;
    km_ik_residuals(pe->ik, pe->residual);
    int dropped = 0;
    for (int l = 0; l < pe->labels; l++) {
        if (pe->assigned[l] >= 0 && pe->residual[l] > s->cfg.max_residual_m) {
            s->owner[pe->assigned[l]] = -1;
            pe->assigned[l] = -1;
            dropped++;
        }
    }
    if (dropped) {
        s->stats.dropped += (uint64_t)dropped;
        frame_from_assignment(s, pe, m);
        skeleton_ik_solve_n(pe->ik, &pe->frame, iterations, &pe->pose);
    }
}

/* Free labels take free markers near their solved position. */
static void recover(km_skeleton_solver *s, const km_marker_set *m)
{
    int e = 0;
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (!pe->tracked)
            continue;
        km_ik_predict_markers(pe->ik, pe->pred);
        e = add_edges(s, pe, m, e, s->cfg.max_residual_m, false, true);
    }
    if (e == 0)
        return;
    skel_assign_solve(s->assign, s->rows, m->count, s->edges, e, s->unassigned, s->row_to_col);
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (!pe->tracked)
            continue;
        int added = take_assignment(s, pe, true);
        if (added > 0) {
            s->stats.recovered += (uint64_t)added;
            solve_person(s, pe, m, s->cfg.ik.max_iterations);
        }
    }
}

/* A limb that stayed unlabeled (occluded for long, or not fitted at boot) may be far from
 * where the pose left it: its free labels search free markers with a shrinking wide gate,
 * each step followed by IK (ICP on the missing part); the last step drops what the body
 * cannot reach. */
static void recover_wide(km_skeleton_solver *s, person *pe, const km_marker_set *m)
{
    static const double GATES[] = {0.25, 0.12, 0.06};
    int missing = 0;
    for (int l = 0; l < pe->labels; l++)
        missing += pe->assigned[l] < 0;
    int free_markers = 0;
    for (int k = 0; k < m->count; k++)
        free_markers += s->owner[k] == -1;
    if (missing == 0 || free_markers == 0)
        return;
    bool took[KM_SKELETON_MAX_MARKERS];
    for (int l = 0; l < pe->labels; l++)
        took[l] = pe->assigned[l] < 0;
    for (size_t gi = 0; gi < sizeof GATES / sizeof GATES[0]; gi++) {
        /* give back what the previous step took */
        for (int l = 0; l < pe->labels; l++)
            if (took[l] && pe->assigned[l] >= 0) {
                s->owner[pe->assigned[l]] = -1;
                pe->assigned[l] = -1;
            }
        km_ik_predict_markers(pe->ik, pe->pred);
        int e = add_edges(s, pe, m, 0, GATES[gi], false, true);
        if (e == 0)
            return;
        skel_assign_solve(s->assign, s->rows, m->count, s->edges, e, s->unassigned,
                          s->row_to_col);
        int added = take_assignment(s, pe, true);
        if (added == 0)
            return;
        if (gi + 1 < sizeof GATES / sizeof GATES[0]) {
            frame_from_assignment(s, pe, m);
            skeleton_ik_solve_n(pe->ik, &pe->frame, s->cfg.ik.max_iterations, &pe->pose);
        } else {
            s->stats.recovered += (uint64_t)added;
            solve_person(s, pe, m, s->cfg.ik.max_iterations);
            /* what came from beyond the tracking gate may sit swapped on a limb's end */
            for (int b = 0; b < LIMBS; b++)
                for (int i = 0; i < pe->limb[b].end_count; i++)
                    if (took[pe->limb[b].end[i]] && pe->assigned[pe->limb[b].end[i]] >= 0) {
                        pe->limb[b].end_check = true;
                    }
        }
    }
}

/* ---------------------------------------------------------------- lost limbs
 *
 * A limb (arm from the shoulder joint, leg from the hip joint) whose markers below its first
 * segment stay unlabeled while free markers lie within its reach was lost where the
 * prediction cannot find it again: a boot accepted with an arm fitted in the wrong pose (its
 * markers 0.5-1 m from where the model holds it), or an arm that moved far while occluded.
 * recover_wide's 25 cm gate does not reach that far. The limb is then restarted from
 * typical poses (ik.c: arm down, T, forward, up, elbow straight or bent...; leg straight,
 * stepping, knee up...), one per attempt: its labels are fitted to the free markers within
 * its reach with a shrinking gate, IK after each step, the rest of the body held by its own
 * labels. An attempt that fits at least LIMB_MIN_FIT of the limb's labels within
 * max_residual_m without pushing any other label out is taken; else the pose and labels
 * before it are restored and the next call tries the next start. Attempts share the boot
 * budget (boot_budget_us, boot_steps; at least one per call when a limb waits). After a
 * whole cycle of starts without a fit the limb waits LIMB_RETRY_FRAMES (doubling, up to 8x)
 * before the next cycle, so a hand near props is not searched every frame. */

#define LIMB_MIN_FIT 4          /* labels of a limb an attempt must fit (2 below its first
                                 * segment), with an RMS residual within LIMB_FIT_RMS_M */
#define LIMB_FIT_RMS_M 0.01
#define LIMB_RETRY_FRAMES 15    /* after a cycle of starts without a fit */
#define LIMB_REACH_MARGIN_M 0.08

static const int LIMB_FIRST[LIMBS] = {KM_JOINT_LEFT_UPPER_ARM, KM_JOINT_RIGHT_UPPER_ARM,
                                      KM_JOINT_LEFT_UPPER_LEG, KM_JOINT_RIGHT_UPPER_LEG};
static const double LIMB_GATES[] = {0.25, 0.15, 0.08, 0.05};

static void limbs_setup(person *pe)
{
    const km_subject *subj = km_ik_subject(pe->ik);
    km_vec3 joints[KM_JOINT_COUNT], markers[KM_SKELETON_MAX_MARKERS];
    skeleton_rest_positions(subj, km_vec3_make(0, 0, 0), joints, markers);
    for (int b = 0; b < LIMBS; b++) {
        limb_state *lb = &pe->limb[b];
        memset(lb, 0, sizeof *lb);
        for (int j = 0; j < KM_JOINT_COUNT; j++)
            for (int a = j; a >= 0; a = km_joint_parent(a))
                if (a == LIMB_FIRST[b])
                    lb->joints |= 1u << j;
        for (int l = 0; l < pe->labels; l++) {
            int seg = subj->markers.markers[l].segment;
            if (!(lb->joints & (1u << seg)))
                continue;
            lb->labels[lb->count++] = l;
            lb->distal += seg != LIMB_FIRST[b];
            /* the end: forearm and hand, or foot and toes (two below the first segment) */
            int depth = 0;
            for (int a = seg; a != LIMB_FIRST[b]; a = km_joint_parent(a))
                depth++;
            if (b < 2 ? depth >= 1 : depth >= 2)
                lb->end[lb->end_count++] = l;
            double d = km_vec3_dist(markers[l], joints[LIMB_FIRST[b]]);
            if (d > lb->reach_m)
                lb->reach_m = d;
        }
        lb->reach_m += LIMB_REACH_MARGIN_M;
    }
}

/* Is limb b lost: fewer than two of its distal labels (of at least two) labeled? */
static bool limb_lost(const km_subject *subj, const person *pe, const limb_state *lb, int b)
{
    if (lb->distal < 2)
        return false;
    int have = 0;
    for (int i = 0; i < lb->count; i++) {
        int l = lb->labels[i];
        have += pe->assigned[l] >= 0 && subj->markers.markers[l].segment != LIMB_FIRST[b];
    }
    return have < 2;
}

/* Free markers within the limb's reach of its root joint. */
static int limb_free_markers(const km_skeleton_solver *s, const limb_state *lb, int count,
                             km_vec3 root)
{
    int n = 0;
    for (int k = 0; k < count; k++)
        n += s->owner[k] == -1 && km_vec3_dist(s->pos[k], root) < lb->reach_m;
    return n;
}

/* One attempt at limb b of pe from typical pose `start`; true when the limb was found (labels
 * set, pose solved). On failure pe is as before. */
static bool limb_attempt(km_skeleton_solver *s, person *pe, const km_marker_set *m, int b,
                         int start, km_vec3 root)
{
    limb_state *lb = &pe->limb[b];
    skeleton_ik_copy(s->scratch, pe->ik);
    memcpy(s->scratch_assigned, pe->assigned, sizeof s->scratch_assigned);
    int others_out_before = 0;
    km_ik_residuals(pe->ik, pe->residual);
    for (int l = 0; l < pe->labels; l++)
        others_out_before += pe->assigned[l] >= 0 && pe->residual[l] > s->cfg.max_residual_m;
    /* the limb's few labels (if any) may be wrong: it is searched afresh */
    for (int i = 0; i < lb->count; i++) {
        int l = lb->labels[i];
        if (pe->assigned[l] >= 0) {
            s->owner[pe->assigned[l]] = -1;
            pe->assigned[l] = -1;
        }
    }
    skeleton_ik_limb_start(pe->ik, LIMB_FIRST[b], start);
    bool ok = true;
    for (size_t gi = 0; ok && gi < sizeof LIMB_GATES / sizeof LIMB_GATES[0]; gi++) {
        const double g2 = LIMB_GATES[gi] * LIMB_GATES[gi];
        km_ik_predict_markers(pe->ik, pe->pred);
        int e = 0;
        for (int i = 0; i < lb->count; i++) {
            const int l = lb->labels[i], row = pe->row_base + l;
            s->unassigned[row] = g2;
            for (int k = 0; k < m->count && e < s->max_edges; k++) {
                if (s->owner[k] != -1 || km_vec3_dist(s->pos[k], root) >= lb->reach_m)
                    continue;
                km_vec3 d = km_vec3_sub(s->pos[k], pe->pred[l]);
                double d2 = km_vec3_dot(d, d);
                if (d2 < g2)
                    s->edges[e++] = (skel_edge){row, k, d2};
            }
        }
        if (e < 2) {
            ok = false;
            break;
        }
        skel_assign_solve(s->assign, s->rows, m->count, s->edges, e, s->unassigned,
                          s->row_to_col);
        int got = 0;
        for (int i = 0; i < lb->count; i++) {
            const int l = lb->labels[i];
            pe->assigned[l] = s->row_to_col[pe->row_base + l];
            got += pe->assigned[l] >= 0;
        }
        frame_from_assignment(s, pe, m);
        /* (an early, wide stage may take only a few: the limb turns towards the rest) */
        ok = got >= 2 &&
             skeleton_ik_solve_n(pe->ik, &pe->frame, s->cfg.ik.max_iterations, NULL) == KM_OK;
    }
    int fit = 0, fit_distal = 0, others_out = 0;
    double fit_ss = 0;
    if (ok) {
        km_ik_residuals(pe->ik, pe->residual);
        const km_subject *subj = km_ik_subject(pe->ik);
        for (int l = 0; l < pe->labels; l++) {
            if (pe->assigned[l] < 0)
                continue;
            const int seg = subj->markers.markers[l].segment;
            bool in = pe->residual[l] <= s->cfg.max_residual_m;
            if (!(lb->joints & (1u << seg))) {
                others_out += !in;
            } else if (in) {
                fit++;
                fit_distal += seg != LIMB_FIRST[b];
                fit_ss += pe->residual[l] * pe->residual[l];
            } else {
                pe->assigned[l] = -1;
            }
        }
    }
    s->stats.limb_attempts++;
    /* a real limb fits tightly (markers rigid on their segments); a prop's markers near a
     * shoulder can be reached by three labels at 3 cm, not by four at 1 cm RMS */
    if (!ok || fit < LIMB_MIN_FIT || fit_distal < 2 ||
        fit_ss > fit * LIMB_FIT_RMS_M * LIMB_FIT_RMS_M || others_out > others_out_before) {
        skeleton_ik_copy(pe->ik, s->scratch);
        for (int i = 0; i < lb->count; i++) {
            const int l = lb->labels[i];
            pe->assigned[l] = s->scratch_assigned[l];
            if (pe->assigned[l] >= 0)
                s->owner[pe->assigned[l]] = pe->row_base + l;
        }
        km_ik_residuals(pe->ik, pe->residual);
        return false;
    }
    for (int i = 0; i < lb->count; i++) {
        const int l = lb->labels[i];
        if (pe->assigned[l] >= 0)
            s->owner[pe->assigned[l]] = pe->row_base + l;
    }
    s->stats.recovered += (uint64_t)fit;
    solve_person(s, pe, m, s->cfg.ik.max_iterations);
    skeleton_ik_merge_history(pe->ik, s->scratch, lb->joints);
    lb->end_check = true;
    return true;
}

/* Markers taken from afar can land on the wrong labels of a limb's end (WRA on WRB's
 * marker: the solve twists the forearm or shifts the hand and still fits each label within
 * max_residual_m, and track continuity then keeps the mistake). As the boot does (LIMBS),
 * every assignment of the end's labels to the markers they hold and free markers near them
 * (at most 24) is tried, one IK solve per step so that it fits the budget: from the current
 * pose with the end's twist and hand or foot angles at rest, on the current frame, against
 * the current labels' cost; a clearly better one (cost below LIMB_END_BETTER of it, a label
 * left empty costing gate_m^2) is taken. The candidates are remembered by track id (a
 * combination whose markers went away or were taken is skipped). */

#define LIMB_END_BETTER 0.7

/* Start the check of limb b's end; false when there is nothing to try. */
static bool limb_end_setup(km_skeleton_solver *s, person *pe, const km_marker_set *m, int b)
{
    limb_state *lb = &pe->limb[b];
    limb_search *ls = &pe->end_ls;
    lb->end_check = false;
    ls->n = 0;
    ls->k = 0;
    for (int i = 0; i < lb->end_count && ls->n < 4; i++)
        ls->labels[ls->n++] = lb->end[i];
    for (int i = 0; i < ls->n; i++)
        if (pe->assigned[ls->labels[i]] >= 0)
            ls->cand[ls->k++] = pe->assigned[ls->labels[i]];
    km_ik_predict_markers(pe->ik, pe->pred);
    for (int k = 0; k < m->count && ls->k < ls->n; k++) {
        if (s->owner[k] != -1)
            continue;
        bool near = false;
        for (int i = 0; i < ls->n; i++)
            near |= km_vec3_dist(s->pos[k], pe->pred[ls->labels[i]]) < 0.08;
        if (near)
            ls->cand[ls->k++] = k;
    }
    if (ls->k < 2)
        return false;
    for (int j = 0; j < ls->k; j++)
        pe->end_cand_id[j] = m->items[ls->cand[j]].id;
    memset(ls->used, 0, sizeof ls->used);
    ls->combo_count = 0;
    limb_enumerate(ls, 0, ls->k);
    pe->end_limb = b;
    pe->end_combo = 0;
    return ls->combo_count > 0;
}

/* Cost of pe's current solve on its labels, with gate_m^2 for each of the end's labels that
 * has no marker. */
static double end_cost(km_skeleton_solver *s, person *pe, const km_marker_set *m)
{
    const limb_search *ls = &pe->end_ls;
    frame_from_assignment(s, pe, m);
    double c = skeleton_ik_cost(pe->ik, &pe->frame);
    for (int i = 0; i < ls->n; i++)
        if (pe->assigned[ls->labels[i]] < 0)
            c += s->cfg.gate_m * s->cfg.gate_m;
    return c;
}

/* One combination of the end check under way. */
static void limb_end_step(km_skeleton_solver *s, person *pe, const km_marker_set *m)
{
    limb_search *ls = &pe->end_ls;
    const int b = pe->end_limb;
    const int c = pe->end_combo++;
    if (pe->end_combo >= ls->combo_count)
        pe->end_limb = -1;
    /* this frame's index of each candidate; each must be free or held by the end */
    int idx[6];
    for (int j = 0; j < ls->k; j++) {
        idx[j] = -1;
        for (int k = 0; k < m->count && idx[j] < 0; k++)
            if (m->items[k].id == pe->end_cand_id[j])
                idx[j] = k;
        if (idx[j] < 0)
            return;
        int own = s->owner[idx[j]];
        bool ours = false;
        for (int i = 0; i < ls->n; i++)
            ours |= own == pe->row_base + ls->labels[i];
        if (own != -1 && !ours)
            return;
    }
    const double before = end_cost(s, pe, m);
    skeleton_ik_copy(s->scratch, pe->ik);
    memcpy(s->scratch_assigned, pe->assigned, sizeof s->scratch_assigned);
    for (int i = 0; i < ls->n; i++)
        pe->assigned[ls->labels[i]] = ls->combos[c][i] >= 0 ? idx[ls->combos[c][i]] : -1;
    bool same = true;
    for (int i = 0; i < ls->n; i++)
        same &= pe->assigned[ls->labels[i]] == s->scratch_assigned[ls->labels[i]];
    s->stats.limb_attempts++;
    double after = 1e18;
    if (!same) {
        skeleton_ik_relax_end(pe->ik, LIMB_FIRST[b]);
        frame_from_assignment(s, pe, m);
        if (skeleton_ik_solve_n(pe->ik, &pe->frame, s->cfg.ik.max_iterations, NULL) == KM_OK)
            after = end_cost(s, pe, m);
    }
    if (after < LIMB_END_BETTER * before) {
        for (int i = 0; i < ls->n; i++) {
            int old = s->scratch_assigned[ls->labels[i]];
            if (old >= 0 && s->owner[old] == pe->row_base + ls->labels[i])
                s->owner[old] = -1;
        }
        for (int i = 0; i < ls->n; i++)
            if (pe->assigned[ls->labels[i]] >= 0)
                s->owner[pe->assigned[ls->labels[i]]] = pe->row_base + ls->labels[i];
        solve_person(s, pe, m, s->cfg.ik.max_iterations);
        skeleton_ik_merge_history(pe->ik, s->scratch, pe->limb[b].joints);
        km_log(KM_LOG_DEBUG, MODULE, "person %d: %s end relabeled (cost %.3g -> %.3g)",
               pe->pose.person, km_joint_name(LIMB_FIRST[b]), before, after);
        return;
    }
    skeleton_ik_copy(pe->ik, s->scratch);
    memcpy(pe->assigned, s->scratch_assigned, sizeof s->scratch_assigned);
    km_ik_residuals(pe->ik, pe->residual);
}

/* Tracked people's lost limbs, one attempt at a time while the budget lasts. */
static void recover_limbs(km_skeleton_solver *s, const km_marker_set *m, uint64_t t0_ns)
{
    int steps = 0;
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (!pe->tracked)
            continue;
        const km_subject *subj = km_ik_subject(pe->ik);
        for (int b = 0; b < LIMBS; b++) {
            limb_state *lb = &pe->limb[b];
            if (!limb_lost(subj, pe, lb, b)) {
                lb->tried = lb->failures = 0;
                continue;
            }
            if (s->stats.frames < lb->wait_until)
                continue;
            km_ik_get_pose(pe->ik, &s->scratch_pose);
            const km_vec3 root = s->scratch_pose.joint_pos_m[LIMB_FIRST[b]];
            if (limb_free_markers(s, lb, m->count, root) < LIMB_MIN_FIT)
                continue;
            const int starts = skeleton_ik_limb_starts(LIMB_FIRST[b]);
            bool found = false;
            while (!found && budget_left(s, t0_ns, steps)) {
                found = limb_attempt(s, pe, m, b, lb->next, root);
                steps++;
                lb->next = (lb->next + 1) % starts;
                if (found) {
                    s->stats.limbs_recovered++;
                    km_log(KM_LOG_DEBUG, MODULE, "person %d: %s found again (start %d, %d "
                           "attempts)", p, km_joint_name(LIMB_FIRST[b]),
                           (lb->next + starts - 1) % starts, lb->tried + 1);
                    lb->tried = lb->failures = 0;
                } else if (++lb->tried >= starts) {
                    lb->tried = 0;
                    lb->failures++;
                    int shift = lb->failures - 1 < 3 ? lb->failures - 1 : 3;
                    lb->wait_until = s->stats.frames + ((uint64_t)LIMB_RETRY_FRAMES << shift);
                    break;
                }
            }
        }
        /* then the ends to check (a lost limb first: it is the worse error), one combination
         * a step */
        for (int b = 0; b < LIMBS && pe->end_limb < 0; b++)
            if (pe->limb[b].end_check)
                limb_end_setup(s, pe, m, b);
        while (pe->end_limb >= 0 && budget_left(s, t0_ns, steps)) {
            limb_end_step(s, pe, m);
            steps++;
        }
    }
}

/* --------------------------------------------------------------------- boot
 *
 * Booting a person is a search (24 rest-pose hypotheses, ICP-like stages, then every
 * assignment of the limb-end markers), tens of milliseconds of work. It runs as a state
 * machine per person, a bounded step at a time, within boot_budget_us per call:
 *   COARSE  all hypotheses through the first BOOT_COARSE_STAGES stages, on a snapshot of the
 *           cluster's markers taken when the boot starts (one stage per step);
 *   FINAL   the best BOOT_FINALISTS through all stages, on a fresh snapshot of the same
 *           cluster (the person moved while COARSE ran; headings are 30 degrees apart, so the
 *           ranking survives that);
 *   LIMBS   the limb-end search on that snapshot (one IK solve per step);
 *   ACCEPT  the fitted pose shifted by how far the cluster's centroid moved since the
 *           snapshot, refitted on the current frame (gates 8 then 4 cm) and accepted if
 *           enough labels fit (up to BOOT_CATCHUPS tries on successive frames).
 * A cluster that does not give a person is avoided for boot_retry_frames (doubling with each
 * further failure at the same place, up to 8x), so markers of props are not refitted every
 * frame. With boot_budget_us = 0 and boot_steps = 0 the whole boot runs in the call that
 * starts it, every phase on the same frame. */

#define BOOT_HYPOTHESES (2 * BOOT_HEADINGS)
#define BOOT_FINALISTS 3
#define BOOT_COARSE_STAGES 3
#define BOOT_CATCHUPS 3
#define BOOT_PARTIALS 2     /* fits without head, torso or pelvis refused before one is taken */
#define BOOT_FOLLOW_M 1.0   /* a boot's cluster is found again within this of where it was */
#define BOOT_BACKOFF_M 0.5  /* a failed place covers clusters within this */

static const double BOOT_GATES[] = {0.15, 0.15, 0.10, 0.07, 0.05, 0.04};
#define BOOT_STAGES ((int)(sizeof BOOT_GATES / sizeof BOOT_GATES[0]))

/* Sum over labels of min(distance^2, gate^2) between the fitted body and its markers. */
static double fit_score(const person *pe, double gate_m)
{
    double g2 = gate_m * gate_m, sc = 0;
    for (int l = 0; l < pe->labels; l++) {
        if (pe->assigned[l] < 0 || pe->residual[l] < 0) {
            sc += g2;
            continue;
        }
        double d2 = pe->residual[l] * pe->residual[l];
        sc += d2 < g2 ? d2 : g2;
    }
    return sc;
}

/* Segments whose markers place the body before the limbs are fitted. */
static bool core_segment(int seg)
{
    return seg == KM_JOINT_HIPS || seg == KM_JOINT_SPINE || seg == KM_JOINT_CHEST ||
           seg == KM_JOINT_NECK || seg == KM_JOINT_HEAD || seg == KM_JOINT_LEFT_UPPER_LEG ||
           seg == KM_JOINT_RIGHT_UPPER_LEG;
}

/* The view's markers at the labels (pe->assigned indexes the view). */
static void frame_from_view(person *pe, const boot_view *v)
{
    pe->frame.count = pe->labels;
    for (int l = 0; l < pe->labels; l++) {
        int k = pe->assigned[l];
        pe->frame.valid[l] = k >= 0;
        if (k >= 0)
            pe->frame.pos_m[l] = v->pos[k];
    }
}

/* Edges from pe's labels at pe->pred to the view's markers within gate_m (core labels only
 * when asked). */
static int view_edges(km_skeleton_solver *s, const person *pe, const boot_view *v,
                      double gate_m, bool core_only)
{
    const double g2 = gate_m * gate_m;
    const km_subject *subj = km_ik_subject(pe->ik);
    int e = 0;
    for (int l = 0; l < pe->labels; l++) {
        const int row = pe->row_base + l;
        s->unassigned[row] = g2;
        if (core_only && !core_segment(subj->markers.markers[l].segment))
            continue;
        for (int k = 0; k < v->count && e < s->max_edges; k++) {
            km_vec3 d = km_vec3_sub(v->pos[k], pe->pred[l]);
            double d2 = km_vec3_dot(d, d);
            if (d2 < g2)
                s->edges[e++] = (skel_edge){row, k, d2};
        }
    }
    return e;
}

/* One ICP-like stage: labels from the current pose within gate_m, then IK. Labels are left in
 * pe->assigned (view indices), residuals in pe->residual. */
static bool boot_stage(km_skeleton_solver *s, person *pe, const boot_view *v, double gate_m,
                       bool core_only, int iterations)
{
    km_ik_predict_markers(pe->ik, pe->pred);
    int e = view_edges(s, pe, v, gate_m, core_only);
    skel_assign_solve(s->assign, s->rows, v->count, s->edges, e, s->unassigned, s->row_to_col);
    for (int l = 0; l < pe->labels; l++)
        pe->assigned[l] = s->row_to_col[pe->row_base + l];
    frame_from_view(pe, v);
    if (skeleton_ik_solve_n(pe->ik, &pe->frame, iterations, &pe->pose) != KM_OK)
        return false;
    km_ik_residuals(pe->ik, pe->residual);
    return true;
}

/* The subject's rest pose upright at hypothesis h's heading (arms raised in a T or down),
 * its marker centroid on the view's. */
static void hypothesis_start(person *pe, const boot_view *v, int h)
{
    const double yaw = 2 * M_PI * (h / 2) / BOOT_HEADINGS;
    km_ik_reset(pe->ik);
    km_quat q = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), yaw);
    km_ik_set_root(pe->ik, km_vec3_make(0, 0, 0), q);
    if (h % 2) {
        skeleton_ik_set_ball(pe->ik, KM_JOINT_LEFT_UPPER_ARM,
                             km_quat_from_axis_angle(km_vec3_make(0, 0, 1), -1.35));
        skeleton_ik_set_ball(pe->ik, KM_JOINT_RIGHT_UPPER_ARM,
                             km_quat_from_axis_angle(km_vec3_make(0, 0, 1), 1.35));
    }
    km_ik_predict_markers(pe->ik, pe->pred);
    km_vec3 pc = {0, 0, 0};
    for (int l = 0; l < pe->labels; l++)
        pc = km_vec3_add(pc, pe->pred[l]);
    pc = km_vec3_scale(pc, 1.0 / pe->labels);
    km_skeleton_pose tmp;
    km_ik_get_pose(pe->ik, &tmp);
    km_ik_set_root(pe->ik, km_vec3_add(tmp.joint_pos_m[0], km_vec3_sub(v->centroid, pc)), q);
}

/* Limb ends carry close markers (forearm, wrist and hand within a few centimetres) that a
 * rough fit can swap; a swap is then fitted by twisting the forearm or the foot round. With
 * the boot's narrow twist ranges the true order fits best: every permutation of the labeled
 * markers of each limb end is tried and the one with the smallest residual kept. */
static double solve_cost(person *pe, const boot_view *v, const pose_state *start)
{
    skeleton_ik_set_state(pe->ik, start);
    frame_from_view(pe, v);
    if (skeleton_ik_solve_n(pe->ik, &pe->frame, 12, &pe->pose) != KM_OK)
        return 1e18;
    return pe->pose.residual_m * pe->pose.residual_m * pe->pose.markers_used;
}

/* Every injective assignment of the group's labels to candidates, each label taking a
 * candidate while there are enough of them (the list the LIMBS steps go through). */
static void limb_enumerate(limb_search *ls, int depth, int free_left)
{
    if (depth == ls->n) {
        if (ls->combo_count < BOOT_LIMB_COMBOS)
            memcpy(ls->combos[ls->combo_count++], ls->current, sizeof ls->current);
        return;
    }
    for (int j = 0; j < ls->k; j++) {
        if (ls->used[j])
            continue;
        ls->used[j] = true;
        ls->current[depth] = j;
        limb_enumerate(ls, depth + 1, free_left - 1);
        ls->used[j] = false;
    }
    /* leave this label empty only when the candidates left cannot cover the rest */
    if (free_left < ls->n - depth) {
        ls->current[depth] = -1;
        limb_enumerate(ls, depth + 1, free_left);
    }
}

/* Set up limb group g from ls->base and pe->assigned; false when there is nothing to try. */
static bool limb_group_setup(person *pe, const boot_view *v, limb_search *ls, int g)
{
    static const int GROUPS[4][2] = {
        {KM_JOINT_LEFT_LOWER_ARM, KM_JOINT_LEFT_HAND},
        {KM_JOINT_RIGHT_LOWER_ARM, KM_JOINT_RIGHT_HAND},
        {KM_JOINT_LEFT_FOOT, KM_JOINT_LEFT_TOES},
        {KM_JOINT_RIGHT_FOOT, KM_JOINT_RIGHT_TOES}};
    const km_subject *subj = km_ik_subject(pe->ik);
    ls->n = 0;
    ls->k = 0;
    for (int l = 0; l < pe->labels && ls->n < 4; l++) {
        int seg = subj->markers.markers[l].segment;
        if (seg == GROUPS[g][0] || seg == GROUPS[g][1])
            ls->labels[ls->n++] = l;
    }
    if (ls->n < 2)
        return false;
    /* candidates: the markers the group holds, and free ones near its labels */
    skeleton_ik_set_state(pe->ik, &ls->base);
    km_ik_predict_markers(pe->ik, pe->pred);
    for (int i = 0; i < ls->n && ls->k < 6; i++)
        if (pe->assigned[ls->labels[i]] >= 0)
            ls->cand[ls->k++] = pe->assigned[ls->labels[i]];
    /* free markers only when a label of the group has none (else permutations of what it
     * holds: at most 24 fits) */
    for (int k = 0; k < v->count && ls->k < 5 && ls->k < ls->n; k++) {
        bool taken = false;
        for (int l = 0; l < pe->labels; l++)
            taken |= pe->assigned[l] == k;
        if (taken)
            continue;
        bool near = false;
        for (int i = 0; i < ls->n; i++)
            near |= km_vec3_dist(v->pos[k], pe->pred[ls->labels[i]]) < 0.10;
        if (near)
            ls->cand[ls->k++] = k;
    }
    if (ls->k < 2)
        return false;
    for (int i = 0; i < ls->n; i++) {
        ls->best[i] = -1;
        for (int j = 0; j < ls->k; j++)
            if (pe->assigned[ls->labels[i]] == ls->cand[j])
                ls->best[i] = j;
    }
    ls->best_cost = 1e18;
    memset(ls->used, 0, sizeof ls->used);
    ls->combo_count = 0;
    ls->combo = 0;
    limb_enumerate(ls, 0, ls->k);
    return ls->combo_count > 0;
}

/* Snapshot of the markers of cluster cl that nobody owns. */
static void view_from_cluster(const km_skeleton_solver *s, const km_marker_set *m, int cl,
                              boot_view *v)
{
    v->count = 0;
    km_vec3 c = {0, 0, 0};
    for (int k = 0; k < m->count; k++)
        if (s->cluster[k] == cl && s->owner[k] == -1) {
            v->pos[v->count] = s->pos[k];
            v->id[v->count] = m->items[k].id;
            v->index[v->count++] = k;
            c = km_vec3_add(c, s->pos[k]);
        }
    v->centroid = v->count ? km_vec3_scale(c, 1.0 / v->count) : c;
}

static bool backed_off(const km_skeleton_solver *s, const boot_job *j, km_vec3 c)
{
    for (int i = 0; i < BOOT_BACKOFF_SLOTS; i++)
        if (j->backoff[i].failures > 0 && s->stats.frames < j->backoff[i].until_frame &&
            km_vec3_dist(c, j->backoff[i].centroid) < BOOT_BACKOFF_M)
            return true;
    return false;
}

/* This person could not be fitted to the markers around c: wait before trying there again,
 * longer after each failure at that place. */
static void back_off(km_skeleton_solver *s, boot_job *j, km_vec3 c)
{
    const uint64_t now = s->stats.frames, retry = (uint64_t)s->cfg.boot_retry_frames;
    boot_backoff *slot = NULL;
    for (int i = 0; i < BOOT_BACKOFF_SLOTS && !slot; i++)
        if (j->backoff[i].failures > 0 && km_vec3_dist(c, j->backoff[i].centroid) < BOOT_BACKOFF_M)
            slot = &j->backoff[i];
    if (slot && now > slot->until_frame + 8 * retry)
        slot->failures = 0; /* long quiet there: start over */
    if (!slot)
        for (int i = 0; i < BOOT_BACKOFF_SLOTS; i++)
            if (!slot || j->backoff[i].until_frame < slot->until_frame)
                slot = &j->backoff[i];
    if (slot->failures <= 0 || km_vec3_dist(c, slot->centroid) >= BOOT_BACKOFF_M)
        slot->failures = 0;
    slot->failures++;
    slot->centroid = c;
    int shift = slot->failures - 1 < 3 ? slot->failures - 1 : 3;
    slot->until_frame = now + (retry << shift);
}

/* How well a boot fit explains the markers (labels in pe->assigned, residuals in
 * pe->residual; labels that do not fit are removed): 0 = not this person (too few labels);
 * 1 = a body, but the pelvis, torso or head is not among what fits (a mid-motion pose the
 * rest-pose search got partly wrong; tracking would fight it); 2 = accepted. */
static int fit_quality(const km_skeleton_solver *s, person *pe, int *good_out)
{
    static const int CORE[] = {KM_JOINT_HIPS, KM_JOINT_CHEST, KM_JOINT_HEAD};
    const km_subject *subj = km_ik_subject(pe->ik);
    int good = 0, have[3] = {0, 0, 0}, fit[3] = {0, 0, 0};
    for (int l = 0; l < pe->labels; l++) {
        bool ok = pe->assigned[l] >= 0 && pe->residual[l] <= s->cfg.max_residual_m;
        if (!ok)
            pe->assigned[l] = -1;
        good += ok;
        for (int c = 0; c < 3; c++)
            if (subj->markers.markers[l].segment == CORE[c]) {
                have[c]++;
                fit[c] += ok;
            }
    }
    *good_out = good;
    if (good < s->cfg.min_markers || good < pe->labels / 2)
        return 0;
    for (int c = 0; c < 3; c++)
        if (have[c] >= 2 && fit[c] < 2 && pe->job.partials < BOOT_PARTIALS)
            return 1;
    return 2;
}

static void boot_end(km_skeleton_solver *s, person *pe, bool failed)
{
    boot_job *j = &pe->job;
    if (failed) {
        back_off(s, j, j->track_centroid);
        s->stats.boot_failed++;
        km_log(KM_LOG_DEBUG, MODULE, "boot: no fit near (%.2f %.2f %.2f)", j->track_centroid.x,
               j->track_centroid.y, j->track_centroid.z);
    }
    j->phase = BOOT_IDLE;
    for (int l = 0; l < pe->labels; l++)
        pe->assigned[l] = -1;
    skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
    km_ik_reset(pe->ik);
}

/* The best finalist's labels and pose, on to the limb-end search. */
static void start_limbs(km_skeleton_solver *s, person *pe)
{
    boot_job *j = &pe->job;
    if (j->best_h < 0) {
        boot_end(s, pe, true);
        return;
    }
    j->phase = BOOT_LIMBS;
    j->group = 0;
    j->group_ready = false;
    j->ls.base = j->best_state;
    memcpy(j->assigned, j->best_assigned, sizeof j->assigned);
}

/* One step of pe's boot. cur: the job's cluster in the current frame. */
static void boot_step(km_skeleton_solver *s, person *pe, const km_marker_set *m,
                      const boot_view *cur)
{
    boot_job *j = &pe->job;
    skeleton_ik_set_limit_scale(pe->ik, 0.5, 0.25);
    switch (j->phase) {
    case BOOT_COARSE: {
        if (j->stage == 0)
            hypothesis_start(pe, &j->view, j->hyp);
        bool ok = boot_stage(s, pe, &j->view, BOOT_GATES[j->stage], j->stage == 0, 15);
        if (ok && ++j->stage < BOOT_COARSE_STAGES)
            break;
        j->coarse[j->hyp] = ok ? fit_score(pe, BOOT_GATES[BOOT_COARSE_STAGES - 1]) : 1e9;
        j->stage = 0;
        if (++j->hyp < BOOT_HYPOTHESES)
            break;
        /* the best few go through all the stages */
        j->finalist_count = 0;
        for (int f = 0; f < BOOT_FINALISTS; f++) {
            int h = -1;
            for (int k = 0; k < BOOT_HYPOTHESES; k++)
                if (j->coarse[k] < 1e17 && (h < 0 || j->coarse[k] < j->coarse[h]))
                    h = k;
            if (h < 0)
                break;
            j->coarse[h] = 1e18;
            j->finalists[j->finalist_count++] = h;
        }
        j->phase = BOOT_FINAL;
        j->hyp = 0;
        j->best = 1e18;
        j->best_h = -1;
        j->fresh = false;
        if (j->finalist_count == 0)
            boot_end(s, pe, true);
        break;
    }
    case BOOT_FINAL: {
        if (!j->fresh) {
            /* the person moved while the coarse stages ran: fit the finalists on now */
            j->view.count = cur->count;
            memcpy(j->view.pos, cur->pos, sizeof *cur->pos * (size_t)cur->count);
            memcpy(j->view.index, cur->index, sizeof *cur->index * (size_t)cur->count);
            memcpy(j->view.id, cur->id, sizeof *cur->id * (size_t)cur->count);
            j->view.centroid = cur->centroid;
            j->fresh = true;
        }
        const int h = j->finalists[j->hyp];
        if (j->stage == 0)
            hypothesis_start(pe, &j->view, h);
        bool ok = boot_stage(s, pe, &j->view, BOOT_GATES[j->stage], j->stage == 0, 15);
        if (ok && ++j->stage < BOOT_STAGES)
            break;
        double sc = ok ? fit_score(pe, BOOT_GATES[BOOT_STAGES - 1]) : 1e9;
        if (sc < j->best) {
            j->best = sc;
            j->best_h = h;
            skeleton_ik_get_state(pe->ik, &j->best_state);
            memcpy(j->best_assigned, pe->assigned, sizeof j->best_assigned);
        }
        j->stage = 0;
        if (++j->hyp >= j->finalist_count)
            start_limbs(s, pe);
        break;
    }
    case BOOT_LIMBS: {
        limb_search *ls = &j->ls;
        memcpy(pe->assigned, j->assigned, sizeof j->assigned);
        while (!j->group_ready && j->group < 4) {
            if (limb_group_setup(pe, &j->view, ls, j->group))
                j->group_ready = true;
            else
                j->group++;
        }
        if (j->group_ready) {
            /* one candidate assignment per step */
            const int *cur_combo = ls->combos[ls->combo];
            for (int i = 0; i < ls->n; i++)
                pe->assigned[ls->labels[i]] = cur_combo[i] >= 0 ? ls->cand[cur_combo[i]] : -1;
            double c = solve_cost(pe, &j->view, &ls->base);
            /* each label left without a marker costs a gate's worth */
            for (int i = 0; i < ls->n; i++)
                if (cur_combo[i] < 0)
                    c += s->cfg.gate_m * s->cfg.gate_m;
            if (c < ls->best_cost) {
                ls->best_cost = c;
                memcpy(ls->best, cur_combo, sizeof ls->best);
            }
            if (++ls->combo < ls->combo_count) {
                memcpy(pe->assigned, j->assigned, sizeof j->assigned);
                break;
            }
            for (int i = 0; i < ls->n; i++)
                j->assigned[ls->labels[i]] = ls->best[i] >= 0 ? ls->cand[ls->best[i]] : -1;
            memcpy(pe->assigned, j->assigned, sizeof j->assigned);
            solve_cost(pe, &j->view, &ls->base);
            skeleton_ik_get_state(pe->ik, &ls->base);
            j->group++;
            j->group_ready = false;
            if (j->group < 4)
                break;
        }
        /* all groups done: does the fit explain enough markers? */
        solve_cost(pe, &j->view, &ls->base);
        km_ik_residuals(pe->ik, pe->residual);
        int good;
        int q = fit_quality(s, pe, &good);
        memcpy(j->assigned, pe->assigned, sizeof j->assigned);
        km_log(KM_LOG_DEBUG, MODULE, "boot: best hypothesis %d score %g, %d of %d labels fit%s",
               j->best_h, j->best, good, pe->labels, q == 1 ? " (no head/torso/pelvis)" : "");
        if (q < 2) {
            if (q == 1) {
                j->partials++;
                s->stats.boot_failed++;
            }
            boot_end(s, pe, q == 0); /* a partial fit starts again at once, on a new pose */
            break;
        }
        skeleton_ik_get_state(pe->ik, &j->best_state);
        j->phase = BOOT_ACCEPT;
        j->catchups = 0;
        break;
    }
    case BOOT_ACCEPT: {
        /* the fit, moved with the cluster, refitted on the current frame */
        pose_state st = j->best_state;
        st.root_pos = km_vec3_add(st.root_pos, km_vec3_sub(cur->centroid, j->view.centroid));
        skeleton_ik_set_state(pe->ik, &st);
        /* the labels follow their markers' track ids (km_tracker's) when those persisted:
         * limbs may have moved far since the snapshot; else the pose finds them */
        int carried = 0;
        for (int l = 0; l < pe->labels; l++) {
            int k = j->assigned[l];
            pe->assigned[l] = -1;
            for (int i = 0; k >= 0 && i < cur->count; i++)
                if (cur->id[i] == j->view.id[k]) {
                    pe->assigned[l] = i;
                    carried++;
                    break;
                }
        }
        bool ok;
        if (carried >= s->cfg.min_markers && carried >= pe->labels / 2) {
            frame_from_view(pe, cur);
            ok = skeleton_ik_solve_n(pe->ik, &pe->frame, s->cfg.ik.boot_iterations, &pe->pose) ==
                 KM_OK;
            if (ok)
                km_ik_residuals(pe->ik, pe->residual);
        } else {
            ok = boot_stage(s, pe, cur, 0.08, false, 15) && boot_stage(s, pe, cur, 0.04, false, 15);
        }
        int good = 0;
        if (!ok || fit_quality(s, pe, &good) < 2) {
            j->catchup_frame = s->stats.frames;
            if (++j->catchups >= BOOT_CATCHUPS)
                boot_end(s, pe, true);
            break;
        }
        /* labels from view indices to this frame's markers */
        for (int l = 0; l < pe->labels; l++)
            if (pe->assigned[l] >= 0) {
                pe->assigned[l] = cur->index[pe->assigned[l]];
                s->owner[pe->assigned[l]] = pe->row_base + l;
            }
        skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
        frame_from_assignment(s, pe, m);
        skeleton_ik_solve_n(pe->ik, &pe->frame, s->cfg.ik.boot_iterations, &pe->pose);
        km_ik_residuals(pe->ik, pe->residual);
        pe->tracked = true;
        s->stats.boots++;
        for (int b = 0; b < LIMBS; b++) {
            pe->limb[b].tried = pe->limb[b].failures = 0;
            pe->limb[b].wait_until = 0;
            pe->limb[b].end_check = false;
        }
        pe->end_limb = -1;
        j->phase = BOOT_IDLE;
        j->partials = 0;
        memset(j->backoff, 0, sizeof j->backoff);
        km_log(KM_LOG_DEBUG, MODULE, "boot: person %d tracked, %d labels, %llu frames after "
               "the boot started", pe->pose.person, good,
               (unsigned long long)(s->stats.frames - j->started_frame));
        break;
    }
    case BOOT_IDLE:
        break;
    }
    skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
    s->stats.boot_steps++;
}

static bool budget_left(const km_skeleton_solver *s, uint64_t t0_ns, int steps)
{
    if (steps == 0)
        return true; /* every call moves a boot on */
    if (s->cfg.boot_steps > 0 && steps >= s->cfg.boot_steps)
        return false;
    return s->cfg.boot_budget_us <= 0 ||
           km_time_now_ns() - t0_ns < (uint64_t)s->cfg.boot_budget_us * 1000u;
}

static void boot(km_skeleton_solver *s, const km_marker_set *m, uint64_t t0)
{
    int free_count = 0;
    for (int k = 0; k < m->count; k++) {
        s->free_marker[k] = s->owner[k] < 0;
        free_count += s->free_marker[k];
    }
    int clusters = skel_cluster(s->pos, s->free_marker, m->count, s->cfg.person_link_m,
                                s->cluster, s->work);
    for (int c = 0; c < clusters; c++) {
        s->cl_count[c] = 0;
        s->cl_centroid[c] = km_vec3_make(0, 0, 0);
        s->cl_claim[c] = -1;
    }
    for (int k = 0; k < m->count; k++)
        if (s->cluster[k] >= 0) {
            s->cl_count[s->cluster[k]]++;
            s->cl_centroid[s->cluster[k]] =
                km_vec3_add(s->cl_centroid[s->cluster[k]], s->pos[k]);
        }
    for (int c = 0; c < clusters; c++)
        s->cl_centroid[c] = km_vec3_scale(s->cl_centroid[c], 1.0 / s->cl_count[c]);
    /* boots under way follow their cluster */
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (pe->tracked || pe->job.phase == BOOT_IDLE)
            continue;
        int best = -1;
        double best_d = BOOT_FOLLOW_M;
        for (int c = 0; c < clusters; c++) {
            double d = km_vec3_dist(s->cl_centroid[c], pe->job.track_centroid);
            if (s->cl_claim[c] < 0 && s->cl_count[c] >= s->cfg.min_markers && d < best_d) {
                best_d = d;
                best = c;
            }
        }
        if (best < 0) {
            boot_end(s, pe, false); /* the markers went away */
            continue;
        }
        s->cl_claim[best] = p;
        pe->job.cluster = best;
        pe->job.track_centroid = s->cl_centroid[best];
    }
    int steps = 0;
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        boot_job *j = &pe->job;
        if (pe->tracked)
            continue;
        if (j->phase == BOOT_IDLE) {
            if (!budget_left(s, t0, steps))
                break;
            /* start on the largest cluster nobody boots from that has not failed lately */
            int best = -1;
            for (int c = 0; c < clusters; c++) {
                if (s->cl_claim[c] >= 0 || s->cl_count[c] < s->cfg.min_markers)
                    continue;
                if (backed_off(s, j, s->cl_centroid[c])) {
                    s->stats.boot_skipped++;
                    continue;
                }
                if (best < 0 || s->cl_count[c] > s->cl_count[best])
                    best = c;
            }
            if (best < 0)
                continue;
            s->cl_claim[best] = p;
            view_from_cluster(s, m, best, &j->view);
            j->phase = BOOT_COARSE;
            j->cluster = best;
            j->track_centroid = s->cl_centroid[best];
            j->started_frame = s->stats.frames;
            j->hyp = 0;
            j->stage = 0;
            j->fresh = false;
            j->catchup_frame = UINT64_MAX;
        }
        bool have_cur = false;
        /* (a refit on the current frame that failed waits for the next frame) */
        while (j->phase != BOOT_IDLE && j->catchup_frame != s->stats.frames &&
               budget_left(s, t0, steps)) {
            if (!have_cur && (j->phase == BOOT_ACCEPT || (j->phase == BOOT_FINAL && !j->fresh))) {
                view_from_cluster(s, m, j->cluster, &s->cur);
                have_cur = true;
            }
            boot_step(s, pe, m, &s->cur);
            steps++;
        }
    }
    uint64_t dt = km_time_now_ns() - t0;
    if (dt > s->stats.boot_longest_ns)
        s->stats.boot_longest_ns = dt;
}

/* -------------------------------------------------------------------- run */

/* Segments with a labeled marker on them or below them; a fixed joint (Chest, Head, Toes)
 * follows its parent. */
static uint32_t observed_joints(const person *pe)
{
    const km_subject *subj = km_ik_subject(pe->ik);
    uint32_t mask = 0;
    for (int l = 0; l < pe->labels; l++)
        if (pe->assigned[l] >= 0)
            for (int j = subj->markers.markers[l].segment; j >= 0; j = km_joint_parent(j))
                mask |= 1u << j;
    for (int j = 1; j < KM_JOINT_COUNT; j++)
        if (skeleton_joint_def(j)->kind == JOINT_FIXED && (mask & (1u << km_joint_parent(j))))
            mask |= 1u << j;
    return mask;
}

km_status km_skeleton_solver_run(km_skeleton_solver *s, const km_marker_set *m,
                                 km_skeleton_pose *out, int capacity)
{
    if (!s || !m || !out)
        return km_error(KM_ERR_INVALID_ARGUMENT, "skeleton solver run: NULL argument");
    if (capacity < s->count)
        return km_error(KM_ERR_CAPACITY, "skeleton solver run: %d people, room for %d",
                        s->count, capacity);
    if (m->count > s->cfg.max_markers || m->count < 0)
        return km_error(KM_ERR_CAPACITY, "skeleton solver run: %d markers (max %d)", m->count,
                        s->cfg.max_markers);
    s->stats.frames++;
    for (int k = 0; k < m->count; k++) {
        s->pos[k] = m->items[k].pos_m;
        s->owner[k] = -1;
    }
    /* 1-2: predict and assign the tracked people */
    int e = 0;
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        for (int l = 0; l < pe->labels; l++)
            pe->assigned[l] = -1;
        if (!pe->tracked)
            continue;
        km_ik_extrapolate(pe->ik);
        km_ik_predict_markers(pe->ik, pe->pred);
        e = add_edges(s, pe, m, e, s->cfg.gate_m, true, false);
    }
    if (e > 0) {
        skel_assign_solve(s->assign, s->rows, m->count, s->edges, e, s->unassigned,
                          s->row_to_col);
        for (int p = 0; p < s->count; p++)
            if (s->people[p].tracked)
                take_assignment(s, &s->people[p], false);
    }
    /* 3: IK with outlier rejection */
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (pe->tracked)
            solve_person(s, pe, m, s->cfg.ik.max_iterations);
    }
    /* 4: recovery after occlusion */
    recover(s, m);
    for (int p = 0; p < s->count; p++)
        if (s->people[p].tracked)
            recover_wide(s, &s->people[p], m);
    /* lost people */
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (pe->tracked && labeled_count(pe) < s->cfg.min_markers) {
            release_labels(s, pe);
            pe->tracked = false;
            pe->end_limb = -1;
            km_ik_reset(pe->ik);
            s->stats.lost++;
        }
    }
    /* lost limbs, then boots of the others from what is left, within one budget */
    const uint64_t t0 = km_time_now_ns();
    recover_limbs(s, m, t0);
    bool any_untracked = false;
    for (int p = 0; p < s->count; p++)
        any_untracked |= !s->people[p].tracked;
    if (any_untracked)
        boot(s, m, t0);
    /* out */
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (pe->tracked) {
            km_ik_get_pose(pe->ik, &pe->pose);
            pe->pose.tracked = true;
            pe->pose.joints_observed = observed_joints(pe);
            /* unobserved joints keep still rather than turning on at their last velocity */
            skeleton_ik_hold(pe->ik, ~pe->pose.joints_observed & KM_SKELETON_ALL_JOINTS);
            for (int l = 0; l < pe->labels; l++) {
                int k = pe->assigned[l];
                pe->has_last_id[l] = k >= 0;
                if (k >= 0)
                    pe->last_id[l] = m->items[k].id;
            }
        } else {
            pe->pose.tracked = false;
            pe->pose.joints_observed = 0;
            for (int l = 0; l < pe->labels; l++) {
                pe->has_last_id[l] = false;
                pe->assigned[l] = -1; /* (a boot under way used them for its snapshot) */
            }
        }
        pe->pose.person = p;
        out[p] = pe->pose;
    }
    return KM_OK;
}
