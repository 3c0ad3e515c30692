/* Ground plane from an L-frame: the world frame of the rig (Y up, floor at Y = 0, origin
 * under the L-frame's corner marker). The L-frame lies still, so its markers are the blobs a
 * camera sees again at the same place frame after frame; ghosts do not repeat. Those stable
 * blobs are averaged per camera, matched across cameras by triangulation support,
 * identified by the L's shape (three collinear markers on the long arm, the corner at
 * long_arm_m[0] from the middle one) and the rigid transform that best maps them onto the
 * L-frame model is the world transform (least squares, Kabsch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wand_internal.h"

#define CLUSTER_PX 2.0
#define SUPPORT_PX 2.0
#define MAX_STABLE 32
#define MAX_BLOBS_PER_CAMERA 200000

typedef struct stable_point {
    double u, v, xn, yn;
    int count;
} stable_point;

struct km_ground {
    km_rig rig;
    km_lframe lframe;
    int frames;
    double *u[KM_MAX_CAMERAS], *v[KM_MAX_CAMERAS];
    int count[KM_MAX_CAMERAS], capacity[KM_MAX_CAMERAS];
};

km_lframe km_lframe_default(void)
{
    km_lframe l;
    l.long_arm_m[0] = 0.3;
    l.long_arm_m[1] = 0.5;
    l.short_arm_m = 0.2;
    l.height_m = 0.007;
    return l;
}

km_ground *km_ground_create(const km_rig *rig, const km_lframe *lframe, km_status *err)
{
    km_status st = KM_OK;
    if (rig == NULL || lframe == NULL || rig->camera_count < 2 ||
        rig->camera_count > KM_MAX_CAMERAS)
        st = km_error(KM_ERR_INVALID_ARGUMENT, "ground: need a rig of 2..%d cameras and an "
                      "L-frame", KM_MAX_CAMERAS);
    else if (!(lframe->long_arm_m[0] > 0.0 && lframe->long_arm_m[1] > lframe->long_arm_m[0] &&
               lframe->short_arm_m > 0.0 && lframe->height_m >= 0.0 &&
               fabs(lframe->long_arm_m[1] - 2.0 * lframe->long_arm_m[0]) > 0.02))
        st = km_error(KM_ERR_INVALID_ARGUMENT, "ground: L-frame arms must be positive, the "
                      "long arm's markers increasing and its middle marker off-centre");
    km_ground *g = NULL;
    if (st == KM_OK && (g = calloc(1, sizeof *g)) == NULL)
        st = km_error(KM_ERR_NO_MEMORY, "ground: out of memory");
    if (st != KM_OK) {
        if (err)
            *err = st;
        return NULL;
    }
    g->rig = *rig;
    g->lframe = *lframe;
    if (err)
        *err = KM_OK;
    return g;
}

void km_ground_destroy(km_ground *g)
{
    if (g == NULL)
        return;
    for (int c = 0; c < KM_MAX_CAMERAS; c++) {
        free(g->u[c]);
        free(g->v[c]);
    }
    free(g);
}

km_status km_ground_add_frame(km_ground *g, const km_calib_blob *blobs, int count)
{
    if (g == NULL || (blobs == NULL && count > 0) || count < 0)
        return km_error(KM_ERR_INVALID_ARGUMENT, "ground add frame: bad arguments");
    for (int i = 0; i < count; i++) {
        int c = blobs[i].camera;
        if (c < 0 || c >= g->rig.camera_count)
            return km_error(KM_ERR_INVALID_ARGUMENT, "ground add frame: camera %d out of range",
                            c);
        if (g->count[c] >= MAX_BLOBS_PER_CAMERA)
            continue;
        if (g->count[c] == g->capacity[c]) {
            int cap = g->capacity[c] ? 2 * g->capacity[c] : 1024;
            double *u = realloc(g->u[c], (size_t)cap * sizeof *u);
            if (u == NULL)
                return km_error(KM_ERR_NO_MEMORY, "ground: out of memory");
            g->u[c] = u;
            double *v = realloc(g->v[c], (size_t)cap * sizeof *v);
            if (v == NULL)
                return km_error(KM_ERR_NO_MEMORY, "ground: out of memory");
            g->v[c] = v;
            g->capacity[c] = cap;
        }
        g->u[c][g->count[c]] = blobs[i].x_px;
        g->v[c][g->count[c]] = blobs[i].y_px;
        g->count[c]++;
    }
    g->frames++;
    return KM_OK;
}

/* Blobs of camera c seen at the same place in at least half of the frames. */
static int stable_points(const km_ground *g, int c, stable_point *out)
{
    const int n = g->count[c];
    bool *taken = calloc((size_t)n + 1, sizeof *taken);
    if (taken == NULL)
        return 0;
    int found = 0;
    for (int i = 0; i < n && found < MAX_STABLE; i++) {
        if (taken[i])
            continue;
        double mu = g->u[c][i], mv = g->v[c][i];
        int m = 0;
        for (int pass = 0; pass < 2; pass++) {
            double su = 0, sv = 0;
            m = 0;
            for (int j = i; j < n; j++)
                if (!taken[j] && hypot(g->u[c][j] - mu, g->v[c][j] - mv) < CLUSTER_PX)
                    su += g->u[c][j], sv += g->v[c][j], m++;
            if (m == 0)
                break;
            mu = su / m, mv = sv / m;
        }
        if (2 * m < g->frames)
            continue;
        for (int j = i; j < n; j++)
            if (!taken[j] && hypot(g->u[c][j] - mu, g->v[c][j] - mv) < CLUSTER_PX)
                taken[j] = true;
        stable_point *p = &out[found++];
        p->u = mu, p->v = mv, p->count = m;
        km_camera_undistort_point(&g->rig.cameras[c], mu, mv, &p->xn, &p->yn);
    }
    free(taken);
    return found;
}

/* Kabsch: rotation R and translation t minimising sum |R P_i + t - M_i|^2. */
static km_status kabsch(const km_vec3 *P, const km_vec3 *M, int n, km_mat3 *R, km_vec3 *t)
{
    km_vec3 pc = {0, 0, 0}, mc = {0, 0, 0};
    for (int i = 0; i < n; i++)
        pc = km_vec3_add(pc, P[i]), mc = km_vec3_add(mc, M[i]);
    pc = km_vec3_scale(pc, 1.0 / n), mc = km_vec3_scale(mc, 1.0 / n);
    double H[9] = {0}; /* sum (P - pc)(M - mc)^T */
    for (int i = 0; i < n; i++) {
        km_vec3 p = km_vec3_sub(P[i], pc), m = km_vec3_sub(M[i], mc);
        double pv[3] = {p.x, p.y, p.z}, mv[3] = {m.x, m.y, m.z};
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                H[r * 3 + c] += pv[r] * mv[c];
    }
    double U[9], s[3], V[9];
    if (km_svd(H, 3, 3, U, s, V) != KM_OK)
        return KM_ERR_NUMERIC;
    /* R = V diag(1, 1, det) U^T, proper rotation. */
    km_mat3 Um, Vm;
    memcpy(Um.m, U, sizeof U);
    memcpy(Vm.m, V, sizeof V);
    double det = km_mat3_det(km_mat3_mul(Vm, km_mat3_transpose(Um)));
    for (int r = 0; r < 3; r++)
        Vm.m[r * 3 + 2] *= det < 0 ? -1.0 : 1.0;
    *R = km_mat3_mul(Vm, km_mat3_transpose(Um));
    *t = km_vec3_sub(mc, km_mat3_apply(*R, pc));
    return KM_OK;
}

km_status km_ground_solve(km_ground *g, km_mat3 *R_out, km_vec3 *t_out, km_vec3 markers[4],
                          double *rms_mm)
{
    if (g == NULL || R_out == NULL || t_out == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "ground solve: NULL argument");
    if (g->frames < 1)
        return km_error(KM_ERR_NOT_FOUND, "ground: no L-frame frames given");
    const int ncam = g->rig.camera_count;
    static const int MAX_POINTS = 16;
    stable_point *sp = malloc((size_t)ncam * MAX_STABLE * sizeof *sp);
    if (sp == NULL)
        return km_error(KM_ERR_NO_MEMORY, "ground: out of memory");
    int ns[KM_MAX_CAMERAS];
    int seeing = 0;
    for (int c = 0; c < ncam; c++) {
        ns[c] = stable_points(g, c, sp + c * MAX_STABLE);
        seeing += ns[c] > 0;
    }
    if (seeing < 2) {
        free(sp);
        return km_error(KM_ERR_NOT_FOUND, "ground: the L-frame's markers are steady in only %d "
                        "camera(s) (need 2 or more): is the L-frame in view and still?", seeing);
    }
    /* Triangulate: each stable point of each camera with each of another camera, keep the
     * candidate most other cameras confirm. */
    km_vec3 points[16];
    int support[16];
    int npts = 0;
    for (int ref = 0; ref < ncam && npts < MAX_POINTS; ref++)
        for (int i = 0; i < ns[ref] && npts < MAX_POINTS; i++) {
            const stable_point *p = &sp[ref * MAX_STABLE + i];
            km_vec3 best = {0, 0, 0};
            int best_support = 0;
            for (int c2 = 0; c2 < ncam; c2++) {
                if (c2 == ref)
                    continue;
                for (int j = 0; j < ns[c2]; j++) {
                    const stable_point *q = &sp[c2 * MAX_STABLE + j];
                    int cams[KM_MAX_CAMERAS] = {ref, c2};
                    double xs[KM_MAX_CAMERAS] = {p->xn, q->xn}, ys[KM_MAX_CAMERAS] = {p->yn, q->yn};
                    km_vec3 X;
                    if (wand_triangulate(&g->rig, cams, xs, ys, 2, &X) != KM_OK)
                        continue;
                    /* Support: cameras with a stable point within SUPPORT_PX of X's image. */
                    int m = 0;
                    for (int c3 = 0; c3 < ncam; c3++) {
                        double u, v;
                        if (!km_camera_project(&g->rig.cameras[c3], X, &u, &v))
                            continue;
                        double bd = SUPPORT_PX;
                        int bk = -1;
                        for (int k = 0; k < ns[c3]; k++) {
                            const stable_point *s = &sp[c3 * MAX_STABLE + k];
                            double d = hypot(s->u - u, s->v - v);
                            if (d < bd)
                                bd = d, bk = k;
                        }
                        if (bk >= 0) {
                            cams[m] = c3;
                            xs[m] = sp[c3 * MAX_STABLE + bk].xn;
                            ys[m] = sp[c3 * MAX_STABLE + bk].yn;
                            m++;
                        }
                    }
                    if (m > best_support && m >= 2 &&
                        wand_triangulate(&g->rig, cams, xs, ys, m, &X) == KM_OK)
                        best_support = m, best = X;
                }
            }
            if (best_support < 2)
                continue;
            bool duplicate = false;
            for (int k = 0; k < npts; k++)
                if (km_vec3_dist(points[k], best) < 0.01) {
                    duplicate = true;
                    if (best_support > support[k])
                        points[k] = best, support[k] = best_support;
                }
            if (!duplicate) {
                points[npts] = best;
                support[npts] = best_support;
                npts++;
            }
        }
    free(sp);
    if (npts < 4)
        return km_error(KM_ERR_NOT_FOUND, "ground: found %d of the L-frame's 4 markers in 3D "
                        "(each needs 2 cameras): check that the whole L-frame is in view", npts);

    /* Identify the L among the points: the collinear triple of the long arm plus the short
     * arm's marker, the combination fitting the model best. */
    const km_lframe *L = &g->lframe;
    const double h = L->height_m;
    const km_vec3 model[4] = {{0, h, 0}, {L->long_arm_m[0], h, 0}, {L->long_arm_m[1], h, 0},
                              {0, h, L->short_arm_m}};
    double best_rms = INFINITY;
    km_mat3 best_R = km_mat3_identity();
    km_vec3 best_t = {0, 0, 0}, best_pts[4];
    for (int a = 0; a < npts; a++)
        for (int b = 0; b < npts; b++)
            for (int c = 0; c < npts; c++)
                for (int d = 0; d < npts; d++) {
                    if (a == b || a == c || a == d || b == c || b == d || c == d)
                        continue;
                    km_vec3 P[4] = {points[a], points[b], points[c], points[d]};
                    km_mat3 R;
                    km_vec3 t;
                    if (kabsch(P, model, 4, &R, &t) != KM_OK)
                        continue;
                    double sq = 0.0;
                    for (int k = 0; k < 4; k++) {
                        km_vec3 w = km_vec3_add(km_mat3_apply(R, P[k]), t);
                        double e = km_vec3_dist(w, model[k]);
                        sq += e * e;
                    }
                    double rms = sqrt(sq / 4.0);
                    if (rms < best_rms) {
                        best_rms = rms, best_R = R, best_t = t;
                        memcpy(best_pts, P, sizeof P);
                    }
                }
    if (!(best_rms < 0.01))
        return km_error(KM_ERR_NOT_FOUND, "ground: no 4 markers fit the L-frame (best fit %.1f "
                        "mm RMS): check the L-frame geometry (long arm %g and %g m, short arm "
                        "%g m)", 1000.0 * best_rms, L->long_arm_m[0], L->long_arm_m[1],
                        L->short_arm_m);
    /* Sign check: the cameras look down at the floor; a mirrored L (short arm on the wrong
     * side) would put them under it. */
    int below = 0;
    for (int c = 0; c < ncam; c++) {
        km_vec3 C = km_vec3_add(km_mat3_apply(best_R, km_camera_center(&g->rig.cameras[c])),
                                best_t);
        below += C.y < 0.0;
    }
    if (2 * below > ncam)
        return km_error(KM_ERR_NUMERIC, "ground: %d of %d cameras would be below the floor: "
                        "the L-frame looks mirrored (long arm along +X, short arm along +Z, "
                        "corner at the origin)", below, ncam);
    *R_out = best_R;
    *t_out = best_t;
    if (markers)
        memcpy(markers, best_pts, sizeof best_pts);
    if (rms_mm)
        *rms_mm = 1000.0 * best_rms;
    km_log(KM_LOG_INFO, "ground", "L-frame found (%d markers in 3D, fit %.3f mm RMS)", npts,
           1000.0 * best_rms);
    return KM_OK;
}

void km_rig_transform(km_rig *rig, km_mat3 R, km_vec3 t)
{
    /* X_old = R^T (X_new - t): x_cam = R_c R^T X_new + (t_c - R_c R^T t). */
    km_mat3 Rt = km_mat3_transpose(R);
    for (int c = 0; c < rig->camera_count; c++) {
        km_camera *cam = &rig->cameras[c];
        cam->R = km_mat3_mul(cam->R, Rt);
        cam->t = km_vec3_sub(cam->t, km_mat3_apply(cam->R, t));
    }
}

km_status km_wand_calibration_set_ground(km_ground *ground, km_rig *rig, km_wand_result *result)
{
    if (ground == NULL || rig == NULL || result == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "set ground: NULL argument");
    km_mat3 R;
    km_vec3 t;
    double rms = 0.0;
    km_status st = km_ground_solve(ground, &R, &t, NULL, &rms);
    if (st != KM_OK)
        return st;
    km_rig_transform(rig, R, t);
    result->has_ground = true;
    result->ground_rms_mm = rms;
    return KM_OK;
}
