/*
 * gemm_old.c - dnn_gemm as it was before the packed kernels (commit 401096e), kept as the
 * baseline of tools/bench/gemm_bench.c; not part of any library.
 *
 * Single-precision matrix multiply with darknet's gemm_cpu semantics.
 *
 * C = alpha * op(A) * op(B) + beta * C, all row-major; C is scaled by beta first.
 * Every element of C is accumulated in one fixed order, the order of darknet's
 * reference loops:
 *   B not transposed (NN, TN): C[i][j] += (alpha * A(i,p)) * B[p][j] for p = 0 .. k-1,
 *                              straight into C;
 *   B transposed (NT, TT):     s = sum over p = 0 .. k-1 of (alpha * A(i,p)) * B[j][p],
 *                              starting from 0, then C[i][j] += s.
 * Cache blocks and register tiles below only choose which elements are worked on
 * together, never the order of the terms of one element, so the results are
 * bit-identical to the plain loops and stay so when rows are later split between
 * threads. No intrinsics: the inner loops have a fixed trip count of AXPY_W so that
 * gcc's -O2 ("very cheap") vectoriser takes them.
 */
#include "dnn/dnn_internal.h"

void gemm_old(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

/* NN/TN: columns of C and rows of B per cache block (AXPY_KB x AXPY_JB floats of B). */
#define AXPY_JB 256
#define AXPY_KB 128
/* Width of the inner loop the compiler turns into vector code. */
#define AXPY_W 8

/* NT/TT: rows and columns of C per band and terms per packed chunk of B. The partial
 * sums (DOT_MR x DOT_NR) and the packed chunk (DOT_KC x DOT_NR) live on the stack,
 * 2.5 KiB together: a TA's stack is small. */
#define DOT_MR 8
#define DOT_NR 16
#define DOT_KC 32

/* Fully unrolling the inner loop of dot_row (16 = DOT_NR) keeps its sums in registers (2.5x
 * faster with gcc 12); a hint only, which changes no result. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define DNN_GEMM_UNROLL _Pragma("GCC unroll 16")
#else
#define DNN_GEMM_UNROLL
#endif

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* One row of the NN/TN kernel: c[j] += a * b[j] for j < n. */
static void axpy_row(int n, float a, const float *restrict b, float *restrict c)
{
    int j = 0;
    for (; j + AXPY_W <= n; j += AXPY_W)
        for (int t = 0; t < AXPY_W; t++)
            c[j + t] += a * b[j + t];
    for (; j < n; j++)
        c[j] += a * b[j];
}

/* Four rows at once, so each loaded b[j] serves four rows of C. */
static void axpy_rows4(int n, const float a[4], const float *restrict b, float *restrict c0,
                       float *restrict c1, float *restrict c2, float *restrict c3)
{
    const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    int j = 0;
    for (; j + AXPY_W <= n; j += AXPY_W) {
        for (int t = 0; t < AXPY_W; t++) {
            const float bv = b[j + t];
            c0[j + t] += a0 * bv;
            c1[j + t] += a1 * bv;
            c2[j + t] += a2 * bv;
            c3[j + t] += a3 * bv;
        }
    }
    for (; j < n; j++) {
        const float bv = b[j];
        c0[j] += a0 * bv;
        c1[j] += a1 * bv;
        c2[j] += a2 * bv;
        c3[j] += a3 * bv;
    }
}

/*
 * NN and TN: A(i,p) = a[i*sai + p*sap] (NN: sai = lda, sap = 1; TN: sai = 1, sap = lda),
 * B is k x n with row stride ldb. Blocks: columns j0.. of width AXPY_JB, then terms
 * p0.. of depth AXPY_KB in increasing order, so each element still sees p = 0 .. k-1.
 */
static void gemm_b_rows(int m, int n, int k, float alpha, const float *a, size_t sai, size_t sap,
                        const float *b, size_t ldb, float *c, size_t ldc)
{
    for (int j0 = 0; j0 < n; j0 += AXPY_JB) {
        const int nb = min_int(AXPY_JB, n - j0);
        for (int p0 = 0; p0 < k; p0 += AXPY_KB) {
            const int pend = p0 + min_int(AXPY_KB, k - p0);
            int i = 0;
            for (; i + 4 <= m; i += 4) {
                float *ci = c + (size_t)i * ldc + j0;
                for (int p = p0; p < pend; p++) {
                    const float *ap = a + (size_t)i * sai + (size_t)p * sap;
                    const float av[4] = {alpha * ap[0], alpha * ap[sai], alpha * ap[2 * sai],
                                         alpha * ap[3 * sai]};
                    axpy_rows4(nb, av, b + (size_t)p * ldb + j0, ci, ci + ldc, ci + 2 * ldc,
                               ci + 3 * ldc);
                }
            }
            for (; i < m; i++) {
                float *ci = c + (size_t)i * ldc + j0;
                for (int p = p0; p < pend; p++)
                    axpy_row(nb, alpha * a[(size_t)i * sai + (size_t)p * sap],
                             b + (size_t)p * ldb + j0, ci);
            }
        }
    }
}

/*
 * One row of the NT/TT kernel over a packed chunk: s[q] += sum over p < pc of
 * (alpha * a[p*sap]) * bt[p][q], each s[q] a single chain in order of p. The sums
 * stay in registers across the chunk; the inner loop has a fixed width.
 */
static void dot_row(int pc, float alpha, const float *a, size_t sap,
                    const float (*restrict bt)[DOT_NR], float *restrict s)
{
    float acc[DOT_NR];
    for (int q = 0; q < DOT_NR; q++)
        acc[q] = s[q];
    for (int p = 0; p < pc; p++) {
        const float av = alpha * a[(size_t)p * sap];
        DNN_GEMM_UNROLL
        for (int q = 0; q < DOT_NR; q++)
            acc[q] += av * bt[p][q];
    }
    for (int q = 0; q < DOT_NR; q++)
        s[q] = acc[q];
}

/*
 * NT and TT: A(i,p) as in gemm_b_rows, B(j,p) = b[j*ldb + p]. For each band of up to
 * DOT_MR rows and DOT_NR columns the sums start at 0 and gather their terms chunk by
 * chunk in increasing p; each chunk of B is first copied transposed into bt so the
 * inner loop runs over contiguous columns. The sums are added to C once at the end,
 * as darknet does.
 */
static void gemm_b_cols(int m, int n, int k, float alpha, const float *a, size_t sai, size_t sap,
                        const float *b, size_t ldb, float *c, size_t ldc)
{
    float s[DOT_MR][DOT_NR];
    float bt[DOT_KC][DOT_NR];
    for (int i0 = 0; i0 < m; i0 += DOT_MR) {
        const int mr = min_int(DOT_MR, m - i0);
        for (int j0 = 0; j0 < n; j0 += DOT_NR) {
            const int nr = min_int(DOT_NR, n - j0);
            for (int r = 0; r < DOT_MR; r++)
                for (int q = 0; q < DOT_NR; q++)
                    s[r][q] = 0;
            for (int p0 = 0; p0 < k; p0 += DOT_KC) {
                const int pc = min_int(DOT_KC, k - p0);
                /* Columns past the edge of C get zeros; their sums are dropped. */
                for (int q = 0; q < nr; q++) {
                    const float *bq = b + (size_t)(j0 + q) * ldb + (size_t)p0;
                    for (int p = 0; p < pc; p++)
                        bt[p][q] = bq[p];
                }
                for (int q = nr; q < DOT_NR; q++)
                    for (int p = 0; p < pc; p++)
                        bt[p][q] = 0;
                for (int r = 0; r < mr; r++)
                    dot_row(pc, alpha, a + (size_t)(i0 + r) * sai + (size_t)p0 * sap, sap, bt,
                            s[r]);
            }
            for (int r = 0; r < mr; r++) {
                float *ci = c + (size_t)(i0 + r) * ldc + j0;
                for (int q = 0; q < nr; q++)
                    ci[q] += s[r][q];
            }
        }
    }
}

void gemm_old(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (!dnn_feq(beta, 1)) {
        /* beta == 0 stores zeros so stale workspace (even NaN) cannot leak into C;
         * for finite C this equals darknet's C *= 0. */
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * (size_t)ldc;
            if (dnn_feq(beta, 0))
                for (int j = 0; j < n; j++)
                    ci[j] = 0;
            else
                for (int j = 0; j < n; j++)
                    ci[j] *= beta;
        }
    }
    if (k <= 0)
        return;
    const size_t sai = ta ? 1 : (size_t)lda;
    const size_t sap = ta ? (size_t)lda : 1;
    if (tb)
        gemm_b_cols(m, n, k, alpha, a, sai, sap, b, (size_t)ldb, c, (size_t)ldc);
    else
        gemm_b_rows(m, n, k, alpha, a, sai, sap, b, (size_t)ldb, c, (size_t)ldc);
}
