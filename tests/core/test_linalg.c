#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "kinema/core.h"

static void assert_near(double a, double b, double tol)
{
    if (!(fabs(a - b) <= tol))
        fail_msg("%.17g != %.17g (tol %g)", a, b, tol);
}

static uint64_t rng = 0xC0FFEE1234567ull;
static double rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}

static void test_least_squares_exact(void **state)
{
    (void)state;
    /* Overdetermined but consistent: b = A x_true exactly. */
    enum { M = 40, N = 6 };
    double A[M * N], b[M], x_true[N] = {1.5, -2, 0.25, 3, -0.75, 10}, x[N];
    for (int i = 0; i < M; i++) {
        b[i] = 0;
        for (int j = 0; j < N; j++) {
            A[i * N + j] = rnd();
            b[i] += A[i * N + j] * x_true[j];
        }
    }
    assert_int_equal(km_least_squares(A, b, M, N, x), KM_OK);
    for (int j = 0; j < N; j++)
        assert_near(x[j], x_true[j], 1e-12);
}

static void test_least_squares_line_fit(void **state)
{
    (void)state;
    /* y = a + b t fitted to 4 points, by hand: t = 0..3, y = 3, 5, 7, 8 -> mean t 1.5,
     * mean y 5.75, Sxy = 4.125 + 0.375 + 0.625 + 3.375 = 8.5, Sxx = 5 -> b = 1.7,
     * a = 5.75 - 1.7 * 1.5 = 3.2. */
    double A[] = {1, 0, 1, 1, 1, 2, 1, 3};
    double b[] = {3, 5, 7, 8};
    double x[2];
    assert_int_equal(km_least_squares(A, b, 4, 2, x), KM_OK);
    assert_near(x[0], 3.2, 1e-14);
    assert_near(x[1], 1.7, 1e-14);
}

static void test_least_squares_errors(void **state)
{
    (void)state;
    double A[] = {1, 2, 2, 4, 3, 6}; /* second column = 2 * first */
    double b[] = {1, 2, 3};
    double x[2];
    assert_int_equal(km_least_squares(A, b, 3, 2, x), KM_ERR_NUMERIC);
    assert_int_equal(km_least_squares(A, b, 1, 2, x), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_least_squares(A, b, 3, 17, x), KM_ERR_INVALID_ARGUMENT);
    double Z[4] = {0};
    assert_int_equal(km_least_squares(Z, b, 2, 2, x), KM_ERR_NUMERIC);
}

static void test_solve_spd(void **state)
{
    (void)state;
    enum { N = 40 };
    static double B[N * N], A[N * N];
    double x_true[N], b[N], x[N];
    for (int i = 0; i < N * N; i++)
        B[i] = rnd();
    /* A = B^T B + N I is symmetric positive definite. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = i == j ? N : 0;
            for (int k = 0; k < N; k++)
                s += B[k * N + i] * B[k * N + j];
            A[i * N + j] = s;
        }
    for (int i = 0; i < N; i++)
        x_true[i] = rnd();
    for (int i = 0; i < N; i++) {
        b[i] = 0;
        for (int j = 0; j < N; j++)
            b[i] += A[i * N + j] * x_true[j];
    }
    double A_copy[N * N];
    memcpy(A_copy, A, sizeof A);
    assert_int_equal(km_solve_spd(A, b, N, x), KM_OK);
    for (int i = 0; i < N; i++)
        assert_near(x[i], x_true[i], 1e-11);
    assert_memory_equal(A, A_copy, sizeof A); /* not modified */

    double indefinite[] = {1, 2, 2, 1};
    assert_int_equal(km_solve_spd(indefinite, b, 2, x), KM_ERR_NUMERIC);
    double semidefinite[] = {1, 1, 1, 1};
    assert_int_equal(km_solve_spd(semidefinite, b, 2, x), KM_ERR_NUMERIC);
    assert_int_equal(km_solve_spd(A, b, 65, x), KM_ERR_INVALID_ARGUMENT);
}

static void test_symmetric_eigen(void **state)
{
    (void)state;
    /* Known: [[2,1],[1,2]] has eigenvalues 1 and 3, vectors (1,-1)/sqrt2 and (1,1)/sqrt2. */
    double A2[] = {2, 1, 1, 2}, w2[2], V2[4];
    assert_int_equal(km_symmetric_eigen(A2, 2, w2, V2), KM_OK);
    assert_near(w2[0], 1, 1e-15);
    assert_near(w2[1], 3, 1e-15);
    assert_near(fabs(V2[0 * 2 + 0]), M_SQRT1_2, 1e-15);
    assert_near(V2[0 * 2 + 0], -V2[1 * 2 + 0], 1e-15);
    assert_near(V2[0 * 2 + 1], V2[1 * 2 + 1], 1e-15);

    /* Random symmetric 12x12: A v_k = w_k v_k, V orthonormal, ascending. */
    enum { N = 12 };
    double A[N * N], w[N], V[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++)
            A[i * N + j] = A[j * N + i] = rnd();
    assert_int_equal(km_symmetric_eigen(A, N, w, V), KM_OK);
    for (int k = 0; k < N; k++) {
        if (k > 0)
            assert_true(w[k - 1] <= w[k]);
        for (int i = 0; i < N; i++) {
            double Av = 0;
            for (int j = 0; j < N; j++)
                Av += A[i * N + j] * V[j * N + k];
            assert_near(Av, w[k] * V[i * N + k], 1e-12);
        }
        for (int l = 0; l < N; l++) {
            double dot = 0;
            for (int i = 0; i < N; i++)
                dot += V[i * N + k] * V[i * N + l];
            assert_near(dot, k == l ? 1 : 0, 1e-13);
        }
    }
    double bad[] = {NAN, 0, 0, 1};
    assert_int_equal(km_symmetric_eigen(bad, 2, w, V), KM_ERR_NUMERIC);
}

/* Checks A = U diag(s) V^T, orthonormality and ordering. */
static void check_svd(const double *A, int m, int n, const double *U, const double *s,
                      const double *V)
{
    for (int k = 1; k < n; k++)
        assert_true(s[k - 1] >= s[k]);
    for (int k = 0; k < n; k++)
        assert_true(s[k] >= 0);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double vv = 0, uu = 0;
            for (int i = 0; i < n; i++)
                vv += V[i * n + a] * V[i * n + b];
            assert_near(vv, a == b ? 1 : 0, 1e-13);
            if (U != NULL) {
                for (int i = 0; i < m; i++)
                    uu += U[i * n + a] * U[i * n + b];
                assert_near(uu, a == b ? 1 : 0, 1e-12);
            }
        }
    if (U != NULL)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double r = 0;
                for (int k = 0; k < n; k++)
                    r += U[i * n + k] * s[k] * V[j * n + k];
                assert_near(r, A[i * n + j], 1e-12);
            }
}

static void test_svd_reconstructs(void **state)
{
    (void)state;
    enum { M = 30, N = 9 };
    double A[M * N], U[M * N], s[N], V[N * N], s2[N], V2[N * N];
    for (int i = 0; i < M * N; i++)
        A[i] = rnd();
    assert_int_equal(km_svd(A, M, N, U, s, V), KM_OK);
    check_svd(A, M, N, U, s, V);
    /* Without U: same singular values (through the QR path). */
    assert_int_equal(km_svd(A, M, N, NULL, s2, V2), KM_OK);
    check_svd(A, M, N, NULL, s2, V2);
    for (int k = 0; k < N; k++)
        assert_near(s2[k], s[k], 1e-12);
}

static void test_svd_known_values(void **state)
{
    (void)state;
    /* [[3,0],[4,5]]: singular values sqrt(45) and sqrt(5). */
    double A[] = {3, 0, 4, 5}, U[4], s[2], V[4];
    assert_int_equal(km_svd(A, 2, 2, U, s, V), KM_OK);
    assert_near(s[0], sqrt(45), 1e-14);
    assert_near(s[1], sqrt(5), 1e-14);
    check_svd(A, 2, 2, U, s, V);
}

static void test_svd_rank_deficient_null_space(void **state)
{
    (void)state;
    /* Rows all orthogonal to n0 = (1, -2, 1)/sqrt6: rank 2, null space n0, which is the
     * last column of V (how DLT solvers use it). A rank-1 block checks U's completion. */
    enum { M = 8, N = 3 };
    double A[M * N], U[M * N], s[N], V[N * N];
    for (int i = 0; i < M; i++) {
        double a = rnd(), b = rnd();
        A[i * N + 0] = a + b;
        A[i * N + 1] = a;
        A[i * N + 2] = a - b;
    }
    assert_int_equal(km_svd(A, M, N, U, s, V), KM_OK);
    check_svd(A, M, N, U, s, V);
    assert_true(s[2] < 1e-13 * s[0]);
    double n0[3] = {1 / sqrt(6), -2 / sqrt(6), 1 / sqrt(6)};
    double dot = V[0 * 3 + 2] * n0[0] + V[1 * 3 + 2] * n0[1] + V[2 * 3 + 2] * n0[2];
    assert_near(fabs(dot), 1, 1e-12);

    double R1[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            R1[i * N + j] = (i + 1.0) * (j - 1.5);
    assert_int_equal(km_svd(R1, M, N, U, s, V), KM_OK);
    check_svd(R1, M, N, U, s, V);
    double Z[M * N] = {0};
    assert_int_equal(km_svd(Z, M, N, U, s, V), KM_OK);
    check_svd(Z, M, N, U, s, V);
    assert_near(s[0], 0, 0);

    assert_int_equal(km_svd(A, 2, 3, U, s, V), KM_ERR_INVALID_ARGUMENT);
    A[4] = INFINITY;
    assert_int_equal(km_svd(A, M, N, U, s, V), KM_ERR_NUMERIC);
}

static void test_svd_tall_without_u(void **state)
{
    (void)state;
    /* Many rows (a DLT over thousands of points) need no m-sized workspace when U is NULL. */
    enum { M = 5000, N = 4 };
    static double A[M * N];
    for (int i = 0; i < M * N; i++)
        A[i] = rnd();
    double s[N], V[N * N], w[N], E[N * N], AtA[N * N] = {0};
    assert_int_equal(km_svd(A, M, N, NULL, s, V), KM_OK);
    /* s^2 are the eigenvalues of A^T A. */
    for (int i = 0; i < M; i++)
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++)
                AtA[a * N + b] += A[i * N + a] * A[i * N + b];
    assert_int_equal(km_symmetric_eigen(AtA, N, w, E), KM_OK);
    for (int k = 0; k < N; k++)
        assert_near(s[k] * s[k], w[N - 1 - k], 1e-9 * w[N - 1]);
}


/* Exhaustive minimum over all injective row -> column maps, for checking. */
static double best_by_search(const double *cost, int n, int m, int row, bool *taken)
{
    if (row == n) return 0.0;
    double best = INFINITY;
    for (int j = 0; j < m; j++) {
        if (taken[j]) continue;
        taken[j] = true;
        double c = cost[row * m + j] + best_by_search(cost, n, m, row + 1, taken);
        taken[j] = false;
        if (c < best) best = c;
    }
    return best;
}

static void test_assignment_is_minimal(void **state)
{
    (void)state;
    unsigned seed = 7;
    double workspace[64];
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + trial % 5, m = n + (trial / 5) % 3;
        double cost[5 * 7];
        for (int k = 0; k < n * m; k++) {
            seed = seed * 1103515245u + 12345u;
            cost[k] = (double)(seed >> 16 & 1023) / 7.0;
        }
        assert_true(km_assignment_workspace_bytes(n, m) <= sizeof workspace);
        int row_to_col[5];
        km_assignment_solve(cost, n, m, workspace, row_to_col);
        bool taken[7] = {false};
        double total = 0.0;
        for (int i = 0; i < n; i++) {
            assert_true(row_to_col[i] >= 0 && row_to_col[i] < m);
            assert_false(taken[row_to_col[i]]); /* distinct columns */
            taken[row_to_col[i]] = true;
            total += cost[i * m + row_to_col[i]];
        }
        bool none[7] = {false};
        assert_true(fabs(total - best_by_search(cost, n, m, 0, none)) < 1e-9);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_squares_exact),
        cmocka_unit_test(test_least_squares_line_fit),
        cmocka_unit_test(test_least_squares_errors),
        cmocka_unit_test(test_solve_spd),
        cmocka_unit_test(test_symmetric_eigen),
        cmocka_unit_test(test_svd_reconstructs),
        cmocka_unit_test(test_svd_known_values),
        cmocka_unit_test(test_svd_rank_deficient_null_space),
        cmocka_unit_test(test_svd_tall_without_u),
        cmocka_unit_test(test_assignment_is_minimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
