/* Bundle adjustment of the wand calibration: Levenberg-Marquardt over all camera poses (the
 * root camera fixed: it sets the gauge; the wand's known marker spacing sets the scale),
 * optionally their intrinsics (fx fy cx cy k1 k2), and one wand pose per frame. A wand pose
 * is marker 0's position and the wand's unit direction (5 degrees of freedom): the three
 * markers are a + offset_k d, so the wand's geometry is built in, not a soft constraint.
 *
 * Cost: Huber on each marker's image error (pixels, raw distorted image), solved by
 * iteratively reweighted normal equations. The normal matrix is arrow-shaped: per-frame 5x5
 * blocks and a small camera block, so the frames are eliminated (Schur complement) and the
 * reduced camera system (<= 12 x 32 parameters) is solved densely by Cholesky. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wand_internal.h"

#define POSE_PARAMS 6
#define INTRINSIC_PARAMS 6
#define MAX_BLOCK (POSE_PARAMS + INTRINSIC_PARAMS)
#define WAND_PARAMS 5
#define MAX_LAMBDA_TRIES 12

/* ---------------------------------------------------------------- projection */

/* Projection of a camera-frame point and its derivatives: d(u,v)/d(p) (2x3, may be NULL) and
 * d(u,v)/d(fx fy cx cy k1 k2) (2x6, may be NULL). */
static bool project(const km_camera *cam, km_vec3 p, double *u, double *v, double Jp[6],
                    double Ji[12])
{
    if (!(p.z > 1e-9))
        return false;
    const double fx = cam->K[0], fy = cam->K[4], s = cam->K[1], cx = cam->K[2], cy = cam->K[5];
    const double k1 = cam->dist[0], k2 = cam->dist[1], p1 = cam->dist[2], p2 = cam->dist[3],
                 k3 = cam->dist[4];
    const double iz = 1.0 / p.z, xn = p.x * iz, yn = p.y * iz;
    const double r2 = xn * xn + yn * yn, r4 = r2 * r2;
    const double radial = 1.0 + k1 * r2 + k2 * r4 + k3 * r4 * r2;
    const double xd = xn * radial + 2.0 * p1 * xn * yn + p2 * (r2 + 2.0 * xn * xn);
    const double yd = yn * radial + p1 * (r2 + 2.0 * yn * yn) + 2.0 * p2 * xn * yn;
    *u = fx * xd + s * yd + cx;
    *v = fy * yd + cy;
    if (Jp != NULL) {
        const double g = k1 + 2.0 * k2 * r2 + 3.0 * k3 * r4; /* d radial / d r2 */
        const double dxx = radial + 2.0 * g * xn * xn + 2.0 * p1 * yn + 6.0 * p2 * xn;
        const double dxy = 2.0 * g * xn * yn + 2.0 * p1 * xn + 2.0 * p2 * yn;
        const double dyx = 2.0 * g * xn * yn + 2.0 * p1 * xn + 2.0 * p2 * yn;
        const double dyy = radial + 2.0 * g * yn * yn + 6.0 * p1 * yn + 2.0 * p2 * xn;
        const double dux = fx * dxx + s * dyx, duy = fx * dxy + s * dyy;
        const double dvx = fy * dyx, dvy = fy * dyy;
        /* d(xn, yn)/dp = [iz 0 -xn iz; 0 iz -yn iz] */
        Jp[0] = dux * iz, Jp[1] = duy * iz, Jp[2] = -(dux * xn + duy * yn) * iz;
        Jp[3] = dvx * iz, Jp[4] = dvy * iz, Jp[5] = -(dvx * xn + dvy * yn) * iz;
    }
    if (Ji != NULL) {
        Ji[0] = xd, Ji[1] = 0.0, Ji[2] = 1.0, Ji[3] = 0.0;
        Ji[4] = fx * xn * r2, Ji[5] = fx * xn * r4;
        Ji[6] = 0.0, Ji[7] = yd, Ji[8] = 0.0, Ji[9] = 1.0;
        Ji[10] = fy * yn * r2, Ji[11] = fy * yn * r4;
    }
    return true;
}

bool wand_project_camera_frame(const km_camera *cam, km_vec3 pc, double *u, double *v)
{
    return project(cam, pc, u, v, NULL, NULL);
}

/* Orthonormal tangent basis of a unit vector (the same for the Jacobian and the update). */
static void tangent_basis(km_vec3 d, km_vec3 *e1, km_vec3 *e2)
{
    km_vec3 axis = fabs(d.x) < 0.6 ? km_vec3_make(1, 0, 0)
                   : fabs(d.y) < 0.6 ? km_vec3_make(0, 1, 0) : km_vec3_make(0, 0, 1);
    *e1 = km_vec3_normalize(km_vec3_cross(d, axis));
    *e2 = km_vec3_cross(d, *e1);
}

/* ------------------------------------------------------------- dense Cholesky */

/* Solve A x = b for symmetric positive definite A (n x n, row-major, lower triangle used,
 * overwritten by the factor). false when not positive definite. */
static bool cholesky_solve(double *A, int n, double *b)
{
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int k = 0; k < j; k++)
            d -= A[j * n + k] * A[j * n + k];
        if (!(d > 0.0))
            return false;
        d = sqrt(d);
        A[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double s = A[i * n + j];
            for (int k = 0; k < j; k++)
                s -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = s / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= A[i * n + k] * b[k];
        b[i] = s / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (int k = i + 1; k < n; k++)
            s -= A[k * n + i] * b[k];
        b[i] = s / A[i * n + i];
    }
    return true;
}

/* Inverse of a 5x5 SPD matrix. */
static bool invert5(const double *V, double *Vinv)
{
    double L[25];
    for (int c = 0; c < 5; c++) {
        double e[5] = {0};
        e[c] = 1.0;
        memcpy(L, V, sizeof L);
        if (!cholesky_solve(L, 5, e))
            return false;
        for (int r = 0; r < 5; r++)
            Vinv[r * 5 + c] = e[r];
    }
    return true;
}

/* ----------------------------------------------------------------- the state */

typedef struct ba_state {
    km_camera *cams;    /* camera_count */
    km_vec3 *a, *d;     /* frame_count */
} ba_state;

typedef struct ba_problem {
    km_wand_calibration *wc;
    int ncam, root;
    bool refine;
    int base[KM_MAX_CAMERAS];   /* first reduced-system column of each camera's block */
    int col0[KM_MAX_CAMERAS];   /* first local column used (6 for the root: pose fixed) */
    int size[KM_MAX_CAMERAS];   /* columns of the block (0 for the root without intrinsics) */
    int nc;                     /* reduced system size */
    double huber;
} ba_problem;

static double huber_cost(double e, double delta)
{
    return e <= delta ? 0.5 * e * e : delta * (e - 0.5 * delta);
}

/* Robust cost, and the plain sum of squared errors and its count for the RMS. */
static double evaluate(const ba_problem *P, const ba_state *S, double *sq, int *count)
{
    const km_wand_calibration *wc = P->wc;
    double cost = 0.0;
    *sq = 0.0;
    *count = 0;
    for (int v = 0; v < wc->view_count; v++) {
        const wand_view *w = &wc->views[v];
        if (!w->used || !wc->frames[w->frame].used)
            continue;
        const km_camera *cam = &S->cams[w->camera];
        for (int k = 0; k < 3; k++) {
            km_vec3 X = km_vec3_add(S->a[w->frame], km_vec3_scale(S->d[w->frame], wc->offset_m[k]));
            double u, vv;
            double e;
            if (!project(cam, km_camera_to_camera_frame(cam, X), &u, &vv, NULL, NULL))
                e = 1e6; /* behind the camera: a large, finite penalty */
            else
                e = hypot(u - w->u[k], vv - w->v[k]);
            cost += huber_cost(e, P->huber);
            *sq += e * e;
            (*count)++;
        }
    }
    return cost;
}

static void apply_step(const ba_problem *P, const ba_state *from, ba_state *to,
                       const double *dc, const double *df)
{
    const km_wand_calibration *wc = P->wc;
    memcpy(to->cams, from->cams, (size_t)P->ncam * sizeof *to->cams);
    for (int c = 0; c < P->ncam; c++) {
        if (P->size[c] == 0)
            continue;
        const double *x = dc + P->base[c] - P->col0[c]; /* x[local column] */
        km_camera *cam = &to->cams[c];
        if (P->col0[c] == 0) {
            km_mat3 dR = km_mat3_from_rodrigues(km_vec3_make(x[0], x[1], x[2]));
            cam->R = km_mat3_mul(dR, cam->R);
            cam->t = km_vec3_add(cam->t, km_vec3_make(x[3], x[4], x[5]));
        }
        if (P->refine) {
            cam->K[0] += x[6], cam->K[4] += x[7], cam->K[2] += x[8], cam->K[5] += x[9];
            cam->dist[0] += x[10], cam->dist[1] += x[11];
        }
    }
    for (int f = 0; f < wc->frame_count; f++) {
        to->a[f] = from->a[f];
        to->d[f] = from->d[f];
        if (!wc->frames[f].used)
            continue;
        const double *x = df + 5 * f;
        km_vec3 e1, e2;
        tangent_basis(from->d[f], &e1, &e2);
        to->a[f] = km_vec3_add(from->a[f], km_vec3_make(x[0], x[1], x[2]));
        to->d[f] = km_vec3_normalize(
            km_vec3_add(from->d[f], km_vec3_add(km_vec3_scale(e1, x[3]), km_vec3_scale(e2, x[4]))));
    }
}

/* Workspace of one linearisation. */
typedef struct ba_work {
    double *S, *Sf;     /* nc x nc reduced matrix (Sf: factorised copy) */
    double *bc;         /* nc */
    double *U;          /* undamped camera part: nc x nc, rebuilt for each lambda */
    double *V, *bf;     /* per frame: 25, 5 (undamped) */
    double *W;          /* per view: MAX_BLOCK x 5 */
    double *dc, *df;
} ba_work;

/* Build the Gauss-Newton system at state S (IRLS weights from the current errors): camera
 * block U (dense), per-frame V, per-view W, gradients. */
static void linearise(const ba_problem *P, const ba_state *S, ba_work *w)
{
    const km_wand_calibration *wc = P->wc;
    const int nc = P->nc;
    memset(w->U, 0, (size_t)nc * (size_t)nc * sizeof *w->U);
    memset(w->bc, 0, (size_t)nc * sizeof *w->bc);
    memset(w->V, 0, (size_t)wc->frame_count * 25 * sizeof *w->V);
    memset(w->bf, 0, (size_t)wc->frame_count * 5 * sizeof *w->bf);
    for (int v = 0; v < wc->view_count; v++) {
        const wand_view *view = &wc->views[v];
        double *W = w->W + (size_t)v * MAX_BLOCK * 5;
        memset(W, 0, MAX_BLOCK * 5 * sizeof *W);
        if (!view->used || !wc->frames[view->frame].used)
            continue;
        const int c = view->camera, f = view->frame;
        const km_camera *cam = &S->cams[c];
        km_vec3 e1, e2;
        tangent_basis(S->d[f], &e1, &e2);
        double *V = w->V + 25 * f, *bf = w->bf + 5 * f;
        const int c0 = P->col0[c], nb = P->size[c], base = P->base[c];
        for (int k = 0; k < 3; k++) {
            const double o = wc->offset_m[k];
            km_vec3 X = km_vec3_add(S->a[f], km_vec3_scale(S->d[f], o));
            km_vec3 RX = km_mat3_apply(cam->R, X);
            km_vec3 p = km_vec3_add(RX, cam->t);
            double u, vv, Jp[6], Ji[12];
            if (!project(cam, p, &u, &vv, Jp, Ji))
                continue;
            double r[2] = {u - view->u[k], vv - view->v[k]};
            double e = hypot(r[0], r[1]);
            double weight = e <= P->huber ? 1.0 : P->huber / e;
            /* Camera Jacobian (2 x 12): pose (omega, t) then intrinsics. */
            double Jc[2][MAX_BLOCK] = {{0}};
            const double sk[9] = {0, -RX.z, RX.y, RX.z, 0, -RX.x, -RX.y, RX.x, 0}; /* [RX]x */
            for (int row = 0; row < 2; row++) {
                const double *jp = Jp + 3 * row;
                for (int col = 0; col < 3; col++) {
                    /* dp/domega = -[RX]x */
                    Jc[row][col] = -(jp[0] * sk[col] + jp[1] * sk[3 + col] + jp[2] * sk[6 + col]);
                    Jc[row][3 + col] = jp[col];
                }
                for (int col = 0; col < INTRINSIC_PARAMS; col++)
                    Jc[row][POSE_PARAMS + col] = Ji[row * 6 + col];
            }
            /* Wand Jacobian (2 x 5): dp/da = R, dp/d(tangent) = R o [e1 e2]. */
            double Jw[2][5];
            const double *Rm = cam->R.m;
            const double E[2][3] = {{e1.x, e1.y, e1.z}, {e2.x, e2.y, e2.z}};
            for (int row = 0; row < 2; row++) {
                const double *jp = Jp + 3 * row;
                double jr[3]; /* jp * R */
                for (int col = 0; col < 3; col++)
                    jr[col] = jp[0] * Rm[col] + jp[1] * Rm[3 + col] + jp[2] * Rm[6 + col];
                for (int col = 0; col < 3; col++)
                    Jw[row][col] = jr[col];
                for (int q = 0; q < 2; q++)
                    Jw[row][3 + q] = o * (jr[0] * E[q][0] + jr[1] * E[q][1] + jr[2] * E[q][2]);
            }
            for (int row = 0; row < 2; row++) {
                const double wr = weight * r[row];
                for (int i = 0; i < 5; i++) {
                    bf[i] -= Jw[row][i] * wr;
                    for (int j = 0; j < 5; j++)
                        V[i * 5 + j] += weight * Jw[row][i] * Jw[row][j];
                }
                for (int i = 0; i < nb; i++) {
                    const double ji = Jc[row][c0 + i];
                    w->bc[base + i] -= ji * wr;
                    for (int j = 0; j < nb; j++)
                        w->U[(size_t)(base + i) * nc + base + j] += weight * ji * Jc[row][c0 + j];
                    for (int j = 0; j < 5; j++)
                        W[i * 5 + j] += weight * ji * Jw[row][j];
                }
            }
        }
    }
}

/* Solve the damped system by the Schur complement; false when not positive definite. */
static bool solve_damped(const ba_problem *P, ba_work *w, double lambda)
{
    const km_wand_calibration *wc = P->wc;
    const int nc = P->nc;
    memcpy(w->S, w->U, (size_t)nc * (size_t)nc * sizeof *w->S);
    double *rhs = w->dc;
    memcpy(rhs, w->bc, (size_t)nc * sizeof *rhs);
    for (int i = 0; i < nc; i++)
        w->S[(size_t)i * nc + i] += lambda * fmax(w->U[(size_t)i * nc + i], 1e-9);
    double *vinv_all = w->Sf + (size_t)nc * nc; /* frame_count x 25, after Sf */
    for (int f = 0; f < wc->frame_count; f++) {
        const wand_frame *fr = &wc->frames[f];
        if (!fr->used)
            continue;
        double V[25];
        memcpy(V, w->V + 25 * f, sizeof V);
        for (int i = 0; i < 5; i++)
            V[i * 5 + i] += lambda * fmax(V[i * 5 + i], 1e-9) + 1e-12;
        double *Vinv = vinv_all + 25 * f;
        if (!invert5(V, Vinv))
            return false;
        const double *bf = w->bf + 5 * f;
        double Vb[5];
        for (int i = 0; i < 5; i++) {
            Vb[i] = 0.0;
            for (int j = 0; j < 5; j++)
                Vb[i] += Vinv[i * 5 + j] * bf[j];
        }
        for (int va = 0; va < fr->view_count; va++) {
            const wand_view *A = &wc->views[fr->first_view + va];
            const int ca = A->camera, na = P->size[ca];
            if (!A->used || na == 0)
                continue;
            const double *Wa = w->W + (size_t)(fr->first_view + va) * MAX_BLOCK * 5;
            double WV[MAX_BLOCK][5]; /* Wa Vinv */
            for (int i = 0; i < na; i++)
                for (int j = 0; j < 5; j++) {
                    double s = 0.0;
                    for (int k = 0; k < 5; k++)
                        s += Wa[i * 5 + k] * Vinv[k * 5 + j];
                    WV[i][j] = s;
                }
            for (int i = 0; i < na; i++) {
                double s = 0.0;
                for (int k = 0; k < 5; k++)
                    s += Wa[i * 5 + k] * Vb[k];
                rhs[P->base[ca] + i] -= s;
            }
            for (int vb = 0; vb < fr->view_count; vb++) {
                const wand_view *B = &wc->views[fr->first_view + vb];
                const int cb = B->camera, nbb = P->size[cb];
                if (!B->used || nbb == 0)
                    continue;
                const double *Wb = w->W + (size_t)(fr->first_view + vb) * MAX_BLOCK * 5;
                for (int i = 0; i < na; i++)
                    for (int j = 0; j < nbb; j++) {
                        double s = 0.0;
                        for (int k = 0; k < 5; k++)
                            s += WV[i][k] * Wb[j * 5 + k];
                        w->S[(size_t)(P->base[ca] + i) * nc + P->base[cb] + j] -= s;
                    }
            }
        }
    }
    memcpy(w->Sf, w->S, (size_t)nc * (size_t)nc * sizeof *w->S);
    if (nc > 0 && !cholesky_solve(w->Sf, nc, rhs))
        return false;
    /* Back-substitution: df = Vinv (bf - sum W^T dc). */
    for (int f = 0; f < wc->frame_count; f++) {
        const wand_frame *fr = &wc->frames[f];
        double *df = w->df + 5 * f;
        memset(df, 0, 5 * sizeof *df);
        if (!fr->used)
            continue;
        double b[5];
        memcpy(b, w->bf + 5 * f, sizeof b);
        for (int va = 0; va < fr->view_count; va++) {
            const wand_view *A = &wc->views[fr->first_view + va];
            const int ca = A->camera, na = P->size[ca];
            if (!A->used || na == 0)
                continue;
            const double *Wa = w->W + (size_t)(fr->first_view + va) * MAX_BLOCK * 5;
            for (int j = 0; j < 5; j++)
                for (int i = 0; i < na; i++)
                    b[j] -= Wa[i * 5 + j] * rhs[P->base[ca] + i];
        }
        const double *Vinv = vinv_all + 25 * f;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
                df[i] += Vinv[i * 5 + j] * b[j];
    }
    return true;
}

km_status wand_bundle_adjust(km_wand_calibration *wc, int root, int *iterations,
                             double *rms_px)
{
    ba_problem P;
    memset(&P, 0, sizeof P);
    P.wc = wc;
    P.ncam = wc->rig.camera_count;
    P.root = root;
    P.refine = wc->cfg.refine_intrinsics;
    P.huber = wc->cfg.huber_px;
    for (int c = 0; c < P.ncam; c++) {
        P.col0[c] = c == root ? POSE_PARAMS : 0;
        P.size[c] = (P.refine ? MAX_BLOCK : POSE_PARAMS) - P.col0[c];
        P.base[c] = P.nc;
        P.nc += P.size[c];
    }
    const int nc = P.nc, nf = wc->frame_count, nv = wc->view_count;
    ba_state cur, next;
    ba_work w;
    memset(&w, 0, sizeof w);
    cur.cams = malloc((size_t)P.ncam * sizeof *cur.cams);
    next.cams = malloc((size_t)P.ncam * sizeof *next.cams);
    km_vec3 *wand_mem = malloc((size_t)nf * 4 * sizeof *wand_mem + 1);
    cur.a = wand_mem;
    w.S = malloc((size_t)nc * nc * sizeof *w.S + 1);
    w.U = malloc((size_t)nc * nc * sizeof *w.U + 1);
    w.Sf = malloc(((size_t)nc * nc + (size_t)nf * 25) * sizeof *w.Sf + 1);
    w.bc = malloc((size_t)nc * sizeof *w.bc + 1);
    w.dc = malloc((size_t)nc * sizeof *w.dc + 1);
    w.V = malloc((size_t)nf * 25 * sizeof *w.V);
    w.bf = malloc((size_t)nf * 5 * sizeof *w.bf);
    w.df = malloc((size_t)nf * 5 * sizeof *w.df);
    w.W = malloc((size_t)nv * MAX_BLOCK * 5 * sizeof *w.W);
    km_status st = KM_OK;
    if (!cur.cams || !next.cams || !wand_mem || !w.S || !w.U || !w.Sf || !w.bc || !w.dc || !w.V ||
        !w.bf || !w.df || !w.W) {
        st = km_error(KM_ERR_NO_MEMORY, "wand bundle adjustment: out of memory");
        goto done;
    }
    cur.d = wand_mem + nf;
    next.a = wand_mem + 2 * nf;
    next.d = wand_mem + 3 * nf;
    memcpy(cur.cams, wc->rig.cameras, (size_t)P.ncam * sizeof *cur.cams);
    for (int f = 0; f < nf; f++) {
        cur.a[f] = wc->frames[f].a;
        cur.d[f] = wc->frames[f].d;
    }
    double sq = 0.0;
    int count = 0;
    double cost = evaluate(&P, &cur, &sq, &count);
    if (count == 0) {
        st = km_error(KM_ERR_NUMERIC, "wand bundle adjustment: no observations");
        goto done;
    }
    double lambda = 1e-3;
    km_log(KM_LOG_INFO, "wand", "bundle adjustment: %d cameras (%d parameters), %d observations, "
           "start cost %.6g, RMS %.4f px", P.ncam, nc, count, cost, sqrt(sq / count));
    for (int it = 0; it < wc->cfg.max_iterations; it++) {
        if (wand_cancelled(wc)) {
            st = km_error(KM_ERR_AGAIN, "wand: calibration cancelled");
            goto done;
        }
        linearise(&P, &cur, &w);
        bool accepted = false;
        double new_cost = cost, new_sq = sq;
        int new_count = count;
        for (int tries = 0; tries < MAX_LAMBDA_TRIES && !accepted; tries++) {
            if (solve_damped(&P, &w, lambda)) {
                apply_step(&P, &cur, &next, w.dc, w.df);
                new_cost = evaluate(&P, &next, &new_sq, &new_count);
                if (isfinite(new_cost) && new_cost < cost) {
                    accepted = true;
                    break;
                }
            }
            lambda *= 4.0;
        }
        (*iterations)++;
        if (!accepted) {
            km_log(KM_LOG_INFO, "wand", "iteration %d: no further decrease (cost %.6g, RMS "
                   "%.4f px)", it + 1, cost, sqrt(sq / count));
            break;
        }
        double decrease = (cost - new_cost) / cost;
        ba_state tmp = cur;
        cur = next;
        next = tmp;
        cost = new_cost, sq = new_sq, count = new_count;
        lambda = fmax(lambda / 3.0, 1e-9);
        km_log(KM_LOG_INFO, "wand", "iteration %d: cost %.6g, RMS %.4f px, lambda %.1e", it + 1,
               cost, sqrt(sq / count), lambda);
        /* An estimate that only grows: typical solves take 10-20 iterations in all. */
        wc->iterations_done++;
        wand_report(wc, 0.2 + 0.6 * (1.0 - pow(0.5, wc->iterations_done / 6.0)),
                    "bundle adjustment, round %d, iteration %d: RMS %.3f px", wc->round + 1,
                    it + 1, sqrt(sq / count));
        if (decrease < 1e-10)
            break;
    }
    memcpy(wc->rig.cameras, cur.cams, (size_t)P.ncam * sizeof *cur.cams);
    for (int f = 0; f < nf; f++) {
        wc->frames[f].a = cur.a[f];
        wc->frames[f].d = cur.d[f];
    }
    *rms_px = sqrt(sq / count);
done:
    free(cur.cams);
    free(next.cams);
    free(wand_mem);
    free(w.S);
    free(w.U);
    free(w.Sf);
    free(w.bc);
    free(w.dc);
    free(w.V);
    free(w.bf);
    free(w.df);
    free(w.W);
    return st;
}
