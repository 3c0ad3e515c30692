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
 *     max_residual_m of their solved position, and the pose is refined.
 * A person with too few labels is lost. People that are not tracked boot from the markers
 * nobody took: clusters of markers (people stand apart) are fitted with the subject's rest
 * pose upright at 12 headings, labels and pose refined together (assignment + IK with a
 * shrinking gate, like ICP); the best fit wins if it explains enough markers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeleton_internal.h"

#define MODULE "skeleton"
#define BOOT_HEADINGS 12

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
    km_skeleton_solver_stats stats;
};

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
    return c;
}

void km_skeleton_solver_destroy(km_skeleton_solver *s)
{
    if (!s)
        return;
    for (int p = 0; p < s->count; p++)
        km_ik_destroy(s->people[p].ik);
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
        !(s->cfg.max_residual_m > 0) || s->cfg.min_markers < 3) {
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
    }
    const int m = s->cfg.max_markers;
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
        !s->free_marker || !s->cluster || !s->work || !s->members || !s->pos) {
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
        pe->tracked = false;
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
        }
    }
}

/* --------------------------------------------------------------------- boot */

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

/* Fit the person's rest pose at heading `yaw` (arms raised in a T or down) onto the markers
 * marked free: first the core of the body, then everything with a shrinking gate (ICP-like).
 * Labels are left in pe->assigned (owners not set). */
static double boot_hypothesis(km_skeleton_solver *s, person *pe, const km_marker_set *m,
                              km_vec3 centroid, double yaw, bool arms_down, size_t stages)
{
    static const double GATES[] = {0.15, 0.15, 0.10, 0.07, 0.05, 0.04};
    km_ik_reset(pe->ik);
    skeleton_ik_set_limit_scale(pe->ik, 0.5, 0.25);
    km_quat q = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), yaw);
    km_ik_set_root(pe->ik, km_vec3_make(0, 0, 0), q);
    if (arms_down) {
        skeleton_ik_set_ball(pe->ik, KM_JOINT_LEFT_UPPER_ARM,
                             km_quat_from_axis_angle(km_vec3_make(0, 0, 1), -1.35));
        skeleton_ik_set_ball(pe->ik, KM_JOINT_RIGHT_UPPER_ARM,
                             km_quat_from_axis_angle(km_vec3_make(0, 0, 1), 1.35));
    }
    /* the hypothesis' marker centroid onto the markers' centroid */
    km_ik_predict_markers(pe->ik, pe->pred);
    km_vec3 pc = {0, 0, 0};
    for (int l = 0; l < pe->labels; l++)
        pc = km_vec3_add(pc, pe->pred[l]);
    pc = km_vec3_scale(pc, 1.0 / pe->labels);
    km_skeleton_pose tmp;
    km_ik_get_pose(pe->ik, &tmp);
    km_vec3 root = km_vec3_add(tmp.joint_pos_m[0], km_vec3_sub(centroid, pc));
    km_ik_set_root(pe->ik, root, q);
    const km_subject *subj = km_ik_subject(pe->ik);
    const size_t gates = sizeof GATES / sizeof GATES[0];
    if (stages > gates)
        stages = gates;
    for (size_t gi = 0; gi < stages; gi++) {
        km_ik_predict_markers(pe->ik, pe->pred);
        for (int l = 0; l < pe->labels; l++)
            pe->assigned[l] = -1;
        int e = add_edges(s, pe, m, 0, GATES[gi], false, true);
        if (gi == 0) {
            /* core labels only */
            int k = 0;
            for (int i = 0; i < e; i++)
                if (core_segment(subj->markers.markers[s->edges[i].row - pe->row_base].segment))
                    s->edges[k++] = s->edges[i];
            e = k;
        }
        skel_assign_solve(s->assign, s->rows, m->count, s->edges, e, s->unassigned,
                          s->row_to_col);
        for (int l = 0; l < pe->labels; l++)
            pe->assigned[l] = s->row_to_col[pe->row_base + l];
        frame_from_assignment(s, pe, m);
        if (skeleton_ik_solve_n(pe->ik, &pe->frame, 15, &pe->pose) != KM_OK) {
            skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
            return 1e9;
        }
        km_ik_residuals(pe->ik, pe->residual);
    }
    skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
    return fit_score(pe, GATES[stages - 1]);
}

/* Limb ends carry close markers (forearm, wrist and hand within a few centimetres) that a
 * rough fit can swap; a swap is then fitted by twisting the forearm or the foot round. With
 * the boot's narrow twist ranges the true order fits best: every permutation of the labeled
 * markers of each limb end is tried and the one with the smallest residual kept. */
static double solve_cost(km_skeleton_solver *s, person *pe, const km_marker_set *m,
                         const pose_state *start)
{
    skeleton_ik_set_state(pe->ik, start);
    frame_from_assignment(s, pe, m);
    if (skeleton_ik_solve_n(pe->ik, &pe->frame, 12, &pe->pose) != KM_OK)
        return 1e18;
    return pe->pose.residual_m * pe->pose.residual_m * pe->pose.markers_used;
}

typedef struct limb_search {
    int labels[4], n;
    int cand[6], k;
    int current[4], best[4];
    double best_cost;
    bool used[6];
    pose_state base;
} limb_search;

/* Every injective assignment of the group's labels to candidates, each label taking a
 * candidate while there are enough of them. */
static void limb_enumerate(km_skeleton_solver *s, person *pe, const km_marker_set *m,
                           limb_search *ls, int depth, int free_left)
{
    if (depth == ls->n) {
        for (int i = 0; i < ls->n; i++)
            pe->assigned[ls->labels[i]] = ls->current[i] >= 0 ? ls->cand[ls->current[i]] : -1;
        double c = solve_cost(s, pe, m, &ls->base);
        /* each label left without a marker costs a gate's worth */
        for (int i = 0; i < ls->n; i++)
            if (ls->current[i] < 0)
                c += s->cfg.gate_m * s->cfg.gate_m;
        if (c < ls->best_cost) {
            ls->best_cost = c;
            memcpy(ls->best, ls->current, sizeof ls->best);
        }
        return;
    }
    for (int j = 0; j < ls->k; j++) {
        if (ls->used[j])
            continue;
        ls->used[j] = true;
        ls->current[depth] = j;
        limb_enumerate(s, pe, m, ls, depth + 1, free_left - 1);
        ls->used[j] = false;
    }
    /* leave this label empty only when the candidates left cannot cover the rest */
    if (free_left < ls->n - depth) {
        ls->current[depth] = -1;
        limb_enumerate(s, pe, m, ls, depth + 1, free_left);
    }
}

static void refine_limb_ends(km_skeleton_solver *s, person *pe, const km_marker_set *m)
{
    static const int GROUPS[4][2] = {
        {KM_JOINT_LEFT_LOWER_ARM, KM_JOINT_LEFT_HAND},
        {KM_JOINT_RIGHT_LOWER_ARM, KM_JOINT_RIGHT_HAND},
        {KM_JOINT_LEFT_FOOT, KM_JOINT_LEFT_TOES},
        {KM_JOINT_RIGHT_FOOT, KM_JOINT_RIGHT_TOES}};
    const km_subject *subj = km_ik_subject(pe->ik);
    skeleton_ik_set_limit_scale(pe->ik, 0.5, 0.25);
    limb_search ls;
    skeleton_ik_get_state(pe->ik, &ls.base);
    for (int g = 0; g < 4; g++) {
        ls.n = 0;
        ls.k = 0;
        for (int l = 0; l < pe->labels && ls.n < 4; l++) {
            int seg = subj->markers.markers[l].segment;
            if (seg == GROUPS[g][0] || seg == GROUPS[g][1])
                ls.labels[ls.n++] = l;
        }
        if (ls.n < 2)
            continue;
        /* candidates: the markers the group holds, and free ones near its labels */
        skeleton_ik_set_state(pe->ik, &ls.base);
        km_ik_predict_markers(pe->ik, pe->pred);
        for (int i = 0; i < ls.n && ls.k < 6; i++)
            if (pe->assigned[ls.labels[i]] >= 0)
                ls.cand[ls.k++] = pe->assigned[ls.labels[i]];
        /* free markers only when a label of the group has none (else permutations of
         * what it holds: at most 24 fits) */
        for (int k = 0; k < m->count && ls.k < 5 && ls.k < ls.n; k++) {
            if (s->owner[k] != -1)
                continue;
            bool taken = false;
            for (int l = 0; l < pe->labels; l++)
                taken |= pe->assigned[l] == k;
            if (taken)
                continue;
            bool near = false;
            for (int i = 0; i < ls.n; i++)
                near |= km_vec3_dist(s->pos[k], pe->pred[ls.labels[i]]) < 0.10;
            if (near)
                ls.cand[ls.k++] = k;
        }
        if (ls.k < 2)
            continue;
        for (int i = 0; i < ls.n; i++) {
            ls.best[i] = -1;
            for (int j = 0; j < ls.k; j++)
                if (pe->assigned[ls.labels[i]] == ls.cand[j])
                    ls.best[i] = j;
        }
        ls.best_cost = 1e18;
        memset(ls.used, 0, sizeof ls.used);
        limb_enumerate(s, pe, m, &ls, 0, ls.k);
        for (int i = 0; i < ls.n; i++)
            pe->assigned[ls.labels[i]] = ls.best[i] >= 0 ? ls.cand[ls.best[i]] : -1;
        solve_cost(s, pe, m, &ls.base);
        skeleton_ik_get_state(pe->ik, &ls.base);
    }
    km_ik_residuals(pe->ik, pe->residual);
    skeleton_ik_set_limit_scale(pe->ik, 1.0, 1.0);
}

static bool boot_person(km_skeleton_solver *s, person *pe, const km_marker_set *m)
{
    /* centroid of the free markers (the caller marks one cluster free) */
    km_vec3 c = {0, 0, 0};
    int n = 0;
    for (int k = 0; k < m->count; k++)
        if (s->owner[k] == -1) {
            c = km_vec3_add(c, s->pos[k]);
            n++;
        }
    if (n < s->cfg.min_markers)
        return false;
    c = km_vec3_scale(c, 1.0 / n);
    /* every heading x arm pose through the first three (coarse) stages, the best three
     * through all of them */
    enum { HYPOTHESES = 2 * BOOT_HEADINGS, FINALISTS = 3 };
    double coarse[HYPOTHESES];
    for (int h = 0; h < HYPOTHESES; h++)
        coarse[h] = boot_hypothesis(s, pe, m, c, 2 * M_PI * (h / 2) / BOOT_HEADINGS, h % 2, 3);
    double best = 1e18;
    int best_h = -1;
    for (int f = 0; f < FINALISTS; f++) {
        int h = -1;
        for (int k = 0; k < HYPOTHESES; k++)
            if (coarse[k] < 1e17 && (h < 0 || coarse[k] < coarse[h]))
                h = k;
        if (h < 0)
            break;
        coarse[h] = 1e18;
        double sc = boot_hypothesis(s, pe, m, c, 2 * M_PI * (h / 2) / BOOT_HEADINGS, h % 2, 99);
        if (sc < best) {
            best = sc;
            best_h = h;
        }
    }
    if (best_h < 0)
        return false;
    boot_hypothesis(s, pe, m, c, 2 * M_PI * (best_h / 2) / BOOT_HEADINGS, best_h % 2, 99);
    refine_limb_ends(s, pe, m);
    /* accept: enough labels explained within the outlier threshold */
    int good = 0;
    for (int l = 0; l < pe->labels; l++) {
        if (pe->assigned[l] >= 0 && pe->residual[l] <= s->cfg.max_residual_m)
            good++;
        else
            pe->assigned[l] = -1;
    }
    km_log(KM_LOG_DEBUG, MODULE, "boot: best heading %d score %g, %d of %d labels fit",
           best_h, best, good, pe->labels);
    if (good < s->cfg.min_markers || good < pe->labels / 2) {
        for (int l = 0; l < pe->labels; l++)
            pe->assigned[l] = -1;
        km_ik_reset(pe->ik);
        return false;
    }
    for (int l = 0; l < pe->labels; l++)
        if (pe->assigned[l] >= 0)
            s->owner[pe->assigned[l]] = pe->row_base + l;
    frame_from_assignment(s, pe, m);
    skeleton_ik_solve_n(pe->ik, &pe->frame, s->cfg.ik.boot_iterations, &pe->pose);
    km_ik_residuals(pe->ik, pe->residual);
    return true;
}

static void boot(km_skeleton_solver *s, const km_marker_set *m)
{
    int free_count = 0;
    for (int k = 0; k < m->count; k++) {
        s->free_marker[k] = s->owner[k] < 0;
        free_count += s->free_marker[k];
    }
    if (free_count < s->cfg.min_markers)
        return;
    int clusters = skel_cluster(s->pos, s->free_marker, m->count, s->cfg.person_link_m,
                                s->cluster, s->work);
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (pe->tracked)
            continue;
        /* try clusters from the largest down */
        for (int attempt = 0; attempt < clusters; attempt++) {
            int best_c = -1, best_n = 0;
            for (int cl = 0; cl < clusters; cl++) {
                int n = 0;
                for (int k = 0; k < m->count; k++)
                    n += s->cluster[k] == cl && s->owner[k] < 0;
                if (n > best_n) {
                    best_n = n;
                    best_c = cl;
                }
            }
            if (best_c < 0 || best_n < s->cfg.min_markers)
                break;
            /* hide the other clusters by marking them owned for the fit */
            for (int k = 0; k < m->count; k++)
                if (s->owner[k] < 0 && s->cluster[k] != best_c)
                    s->owner[k] = -2;
            bool ok = boot_person(s, pe, m);
            for (int k = 0; k < m->count; k++)
                if (s->owner[k] == -2)
                    s->owner[k] = -1;
            if (ok) {
                pe->tracked = true;
                s->stats.boots++;
                break;
            }
            /* this cluster is not this person: exclude it from the next attempt */
            for (int k = 0; k < m->count; k++)
                if (s->cluster[k] == best_c)
                    s->cluster[k] = -1;
        }
        /* restore cluster ids is not needed: one boot pass per frame */
    }
}

/* -------------------------------------------------------------------- run */

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
            km_ik_reset(pe->ik);
            s->stats.lost++;
        }
    }
    /* boot the others from what is left */
    bool any_untracked = false;
    for (int p = 0; p < s->count; p++)
        any_untracked |= !s->people[p].tracked;
    if (any_untracked)
        boot(s, m);
    /* out */
    for (int p = 0; p < s->count; p++) {
        person *pe = &s->people[p];
        if (pe->tracked) {
            km_ik_get_pose(pe->ik, &pe->pose);
            pe->pose.tracked = true;
            for (int l = 0; l < pe->labels; l++) {
                int k = pe->assigned[l];
                pe->has_last_id[l] = k >= 0;
                if (k >= 0)
                    pe->last_id[l] = m->items[k].id;
            }
        } else {
            pe->pose.tracked = false;
            for (int l = 0; l < pe->labels; l++)
                pe->has_last_id[l] = false;
        }
        pe->pose.person = p;
        out[p] = pe->pose;
    }
    return KM_OK;
}
