/* Small dense solvers: least squares, SPD solve, symmetric eigen-decomposition, SVD.
 *
 * No allocation: every workspace is a stack array sized by the maxima in core.h
 * (KM_LSQ_MAX_N, KM_SPD_MAX_N, KM_EIGEN_MAX_N, KM_SVD_MAX_N). The number of rows m is not
 * bounded: QR is built one row at a time with Givens rotations, so only the n x n factor R
 * is stored. These run per frame (triangulation, rigid fits), hence the no-malloc rule. */
#include "kinema/core.h"

#include <math.h>
#include <string.h>

#define JACOBI_MAX_SWEEPS 64

/* Rotate row vector `row` (length n, entries before k already zero) into the upper
 * triangular R (n x n), also rotating the right-hand side when rhs != NULL: one step of
 * row-wise Givens QR. Afterwards `row` is all zero except what is left in *rhs (the
 * residual component). */
static void givens_add_row(double *R, double *qtb, int n, double *row, double *rhs)
{
    for (int k = 0; k < n; k++) {
        double b = row[k];
        if (b == 0.0)
            continue;
        double a = R[k * n + k];
        double h = hypot(a, b);
        double c = a / h, s = b / h;
        for (int j = k; j < n; j++) {
            double t = R[k * n + j];
            R[k * n + j] = c * t + s * row[j];
            row[j] = -s * t + c * row[j];
        }
        if (rhs != NULL) {
            double t = qtb[k];
            qtb[k] = c * t + s * *rhs;
            *rhs = -s * t + c * *rhs;
        }
    }
}

/* R (n x n upper triangular) of the QR decomposition of A (m x n, row-major). */
static void qr_r_factor(const double *A, const double *b, int m, int n, double *R, double *qtb)
{
    double row[KM_LSQ_MAX_N];
    memset(R, 0, sizeof(double) * (size_t)n * (size_t)n);
    if (qtb != NULL)
        memset(qtb, 0, sizeof(double) * (size_t)n);
    for (int i = 0; i < m; i++) {
        memcpy(row, A + (size_t)i * (size_t)n, sizeof(double) * (size_t)n);
        double rhs = b != NULL ? b[i] : 0.0;
        givens_add_row(R, qtb, n, row, b != NULL ? &rhs : NULL);
    }
}

km_status km_least_squares(const double *A, const double *b, int m, int n, double *x)
{
    if (A == NULL || b == NULL || x == NULL || n < 1 || n > KM_LSQ_MAX_N || m < n)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "least squares: need 1 <= n <= %d and m >= n (m=%d n=%d)", KM_LSQ_MAX_N,
                        m, n);
    double R[KM_LSQ_MAX_N * KM_LSQ_MAX_N], qtb[KM_LSQ_MAX_N];
    qr_r_factor(A, b, m, n, R, qtb);
    double largest = 0.0;
    for (int k = 0; k < n; k++)
        largest = fmax(largest, fabs(R[k * n + k]));
    for (int k = 0; k < n; k++) {
        /* |R_kk| tiny against the largest: column k is (numerically) a combination of the
         * others; the solution would be noise. */
        if (!(fabs(R[k * n + k]) > 1e-12 * largest))
            return km_error(KM_ERR_NUMERIC,
                            "least squares: matrix is rank deficient (column %d)", k);
    }
    for (int k = n - 1; k >= 0; k--) {
        double sum = qtb[k];
        for (int j = k + 1; j < n; j++)
            sum -= R[k * n + j] * x[j];
        x[k] = sum / R[k * n + k];
    }
    for (int k = 0; k < n; k++)
        if (!isfinite(x[k]))
            return km_error(KM_ERR_NUMERIC, "least squares: non-finite solution");
    return KM_OK;
}

km_status km_solve_spd(const double *A, const double *b, int n, double *x)
{
    if (A == NULL || b == NULL || x == NULL || n < 1 || n > KM_SPD_MAX_N)
        return km_error(KM_ERR_INVALID_ARGUMENT, "spd solve: need 1 <= n <= %d (n=%d)",
                        KM_SPD_MAX_N, n);
    double L[KM_SPD_MAX_N * KM_SPD_MAX_N];
    /* Cholesky A = L L^T, reading only the lower triangle of A. */
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int k = 0; k < j; k++)
            d -= L[j * n + k] * L[j * n + k];
        if (!(d > 1e-13 * fabs(A[j * n + j])) || !(d > 0.0) || !isfinite(d))
            return km_error(KM_ERR_NUMERIC,
                            "spd solve: matrix is not positive definite (pivot %d)", j);
        double ljj = sqrt(d);
        L[j * n + j] = ljj;
        for (int i = j + 1; i < n; i++) {
            double s = A[i * n + j];
            for (int k = 0; k < j; k++)
                s -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = s / ljj;
        }
    }
    double y[KM_SPD_MAX_N];
    for (int i = 0; i < n; i++) { /* L y = b */
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= L[i * n + k] * y[k];
        y[i] = s / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) { /* L^T x = y */
        double s = y[i];
        for (int k = i + 1; k < n; k++)
            s -= L[k * n + i] * x[k];
        x[i] = s / L[i * n + i];
    }
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return km_error(KM_ERR_NUMERIC, "spd solve: non-finite solution");
    return KM_OK;
}

km_status km_symmetric_eigen(const double *A, int n, double *values, double *vectors)
{
    if (A == NULL || values == NULL || vectors == NULL || n < 1 || n > KM_EIGEN_MAX_N)
        return km_error(KM_ERR_INVALID_ARGUMENT, "eigen: need 1 <= n <= %d (n=%d)",
                        KM_EIGEN_MAX_N, n);
    double a[KM_EIGEN_MAX_N * KM_EIGEN_MAX_N];
    double *v = vectors;
    double total = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            /* Symmetrise: callers' matrices are symmetric up to rounding. */
            a[i * n + j] = 0.5 * (A[i * n + j] + A[j * n + i]);
            v[i * n + j] = i == j ? 1.0 : 0.0;
            total += a[i * n + j] * a[i * n + j];
        }
    if (!isfinite(total))
        return km_error(KM_ERR_NUMERIC, "eigen: non-finite matrix entries");
    bool converged = false;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS && !converged; sweep++) {
        double off = 0.0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                off += a[p * n + q] * a[p * n + q];
        if (off <= 1e-30 * total || off == 0.0) {
            converged = true;
            break;
        }
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0.0)
                    continue;
                /* Rotation J (c, s) zeroing a_pq in J^T A J, with the smaller angle. */
                double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                double t = (theta >= 0.0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    if (!converged)
        return km_error(KM_ERR_NUMERIC, "eigen: Jacobi did not converge");
    for (int i = 0; i < n; i++)
        values[i] = a[i * n + i];
    /* Selection sort ascending, moving eigenvector columns along. */
    for (int i = 0; i < n; i++) {
        int best = i;
        for (int j = i + 1; j < n; j++)
            if (values[j] < values[best])
                best = j;
        if (best != i) {
            double t = values[i];
            values[i] = values[best];
            values[best] = t;
            for (int k = 0; k < n; k++) {
                t = v[k * n + i];
                v[k * n + i] = v[k * n + best];
                v[k * n + best] = t;
            }
        }
    }
    return KM_OK;
}

/* One-sided (Hestenes) Jacobi on the columns of W (rows x n): rotates column pairs until all
 * are mutually orthogonal, accumulating the rotations in V. Then W = U diag(s). */
static bool one_sided_jacobi(double *W, int rows, int n, double *V)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            V[i * n + j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS; sweep++) {
        bool rotated = false;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double alpha = 0.0, beta = 0.0, gamma = 0.0;
                for (int i = 0; i < rows; i++) {
                    double wp = W[(size_t)i * n + p], wq = W[(size_t)i * n + q];
                    alpha += wp * wp;
                    beta += wq * wq;
                    gamma += wp * wq;
                }
                if (gamma == 0.0 || fabs(gamma) <= 1e-15 * sqrt(alpha * beta))
                    continue;
                rotated = true;
                double zeta = (beta - alpha) / (2.0 * gamma);
                double t = (zeta >= 0.0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                double c = 1.0 / sqrt(1.0 + t * t), s = c * t;
                for (int i = 0; i < rows; i++) {
                    double wp = W[(size_t)i * n + p], wq = W[(size_t)i * n + q];
                    W[(size_t)i * n + p] = c * wp - s * wq;
                    W[(size_t)i * n + q] = s * wp + c * wq;
                }
                for (int i = 0; i < n; i++) {
                    double vp = V[i * n + p], vq = V[i * n + q];
                    V[i * n + p] = c * vp - s * vq;
                    V[i * n + q] = s * vp + c * vq;
                }
            }
        if (!rotated)
            return true;
    }
    return false;
}

static void swap_columns(double *M, int rows, int n, int a, int b)
{
    for (int i = 0; i < rows; i++) {
        double t = M[(size_t)i * n + a];
        M[(size_t)i * n + a] = M[(size_t)i * n + b];
        M[(size_t)i * n + b] = t;
    }
}

/* Column k of U (m x n) for a zero singular value: any unit vector orthogonal to columns
 * 0..k-1. Gram-Schmidt (twice, for rounding) on basis vectors e_j until one survives. */
static void complete_column(double *U, int m, int n, int k)
{
    int best_j = 0;
    double best_norm2 = -1.0;
    for (int j = 0; j < m; j++) {
        double norm2 = 0.0;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0)
                for (int i = 0; i < m; i++)
                    U[(size_t)i * n + k] = i == j ? 1.0 : 0.0;
            for (int l = 0; l < k; l++) {
                double dot = 0.0;
                for (int i = 0; i < m; i++)
                    dot += U[(size_t)i * n + l] * U[(size_t)i * n + k];
                for (int i = 0; i < m; i++)
                    U[(size_t)i * n + k] -= dot * U[(size_t)i * n + l];
            }
        }
        for (int i = 0; i < m; i++)
            norm2 += U[(size_t)i * n + k] * U[(size_t)i * n + k];
        if (norm2 >= 0.5) { /* well away from the span: good enough, stop early */
            best_j = -1;
            break;
        }
        if (norm2 > best_norm2) {
            best_norm2 = norm2;
            best_j = j;
        }
    }
    if (best_j >= 0) { /* no early exit: recompute the best candidate */
        for (int i = 0; i < m; i++)
            U[(size_t)i * n + k] = i == best_j ? 1.0 : 0.0;
        for (int pass = 0; pass < 2; pass++)
            for (int l = 0; l < k; l++) {
                double dot = 0.0;
                for (int i = 0; i < m; i++)
                    dot += U[(size_t)i * n + l] * U[(size_t)i * n + k];
                for (int i = 0; i < m; i++)
                    U[(size_t)i * n + k] -= dot * U[(size_t)i * n + l];
            }
    }
    double norm = 0.0;
    for (int i = 0; i < m; i++)
        norm += U[(size_t)i * n + k] * U[(size_t)i * n + k];
    norm = sqrt(norm);
    for (int i = 0; i < m; i++)
        U[(size_t)i * n + k] /= norm;
}

km_status km_svd(const double *A, int m, int n, double *U, double *s, double *V)
{
    if (A == NULL || s == NULL || V == NULL || n < 1 || n > KM_SVD_MAX_N || m < n)
        return km_error(KM_ERR_INVALID_ARGUMENT, "svd: need 1 <= n <= %d and m >= n (m=%d n=%d)",
                        KM_SVD_MAX_N, m, n);
    for (size_t i = 0; i < (size_t)m * (size_t)n; i++)
        if (!isfinite(A[i]))
            return km_error(KM_ERR_NUMERIC, "svd: non-finite matrix entries");
    /* With U wanted, rotate A's columns in U's own memory (m x n). Without U, A = Q R and
     * A and R share singular values and V, so the small R is rotated instead: no m-sized
     * workspace either way. */
    double R[KM_SVD_MAX_N * KM_SVD_MAX_N];
    double *W;
    int rows;
    if (U != NULL) {
        memcpy(U, A, sizeof(double) * (size_t)m * (size_t)n);
        W = U;
        rows = m;
    } else {
        qr_r_factor(A, NULL, m, n, R, NULL);
        W = R;
        rows = n;
    }
    if (!one_sided_jacobi(W, rows, n, V))
        return km_error(KM_ERR_NUMERIC, "svd: Jacobi did not converge");
    for (int k = 0; k < n; k++) {
        double norm2 = 0.0;
        for (int i = 0; i < rows; i++)
            norm2 += W[(size_t)i * n + k] * W[(size_t)i * n + k];
        s[k] = sqrt(norm2);
    }
    for (int i = 0; i < n; i++) { /* descending */
        int best = i;
        for (int j = i + 1; j < n; j++)
            if (s[j] > s[best])
                best = j;
        if (best != i) {
            double t = s[i];
            s[i] = s[best];
            s[best] = t;
            swap_columns(W, rows, n, i, best);
            swap_columns(V, n, n, i, best);
        }
    }
    if (U != NULL) {
        /* Columns whose norm is rounding noise carry no direction: replace them by an
         * orthonormal completion so that U always has orthonormal columns. */
        double zero_below = s[0] * 1e-13 * (double)m;
        for (int k = 0; k < n; k++) {
            if (s[k] > zero_below && s[k] > 0.0) {
                for (int i = 0; i < m; i++)
                    U[(size_t)i * n + k] /= s[k];
            } else {
                complete_column(U, m, n, k);
            }
        }
    }
    return KM_OK;
}

/* ------------------------------------------------------------- assignment */

size_t km_assignment_workspace_bytes(int n, int m)
{
    size_t rows = (size_t)n + 1, cols = (size_t)m + 1;
    return (rows + 2 * cols) * sizeof(double) + 2 * cols * sizeof(int) + cols * sizeof(bool);
}

void km_assignment_solve(const double *cost, int n, int m, void *workspace, int *row_to_col)
{
    /* Classic 1-based formulation: p[j] = row matched to column j (0 = none), column 0 is
     * the virtual start of each augmenting path. */
    double *u = workspace;
    double *v = u + n + 1;
    double *minv = v + m + 1;
    int *p = (int *)(minv + m + 1);
    int *way = p + m + 1;
    bool *used = (bool *)(way + m + 1);
    for (int i = 0; i <= n; i++) u[i] = 0.0;
    for (int j = 0; j <= m; j++) {
        v[j] = 0.0;
        p[j] = 0;
        way[j] = 0;
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++) {
            minv[j] = INFINITY;
            used[j] = false;
        }
        do {
            used[j0] = true;
            const int i0 = p[j0];
            double delta = INFINITY;
            int j1 = 0;
            for (int j = 1; j <= m; j++) {
                if (used[j]) continue;
                const double cur = cost[(size_t)(i0 - 1) * (size_t)m + (size_t)(j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= m; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            const int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (int j = 1; j <= m; j++)
        if (p[j] > 0) row_to_col[p[j] - 1] = j - 1;
}
