/*
 * test_gemm.c - dnn_gemm against references, and im2col/col2im.
 *
 * Every gemm kernel this CPU runs is checked three ways: within rounding of a
 * double-precision reference (it computes the right thing), bit for bit against a plain
 * loop in its documented order (it sums every element in one fixed order, whatever its
 * blocking, tile edges and the alignment of its arrays), and for the generic kernel bit for
 * bit against darknet's loops where it keeps their order. im2col is checked on a
 * hand-worked example and col2im as its adjoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn_internal.h"

/* Written where C has no element, to catch stores outside the m x n window. */
#define SENTINEL 12345.0f

static float *rand_matrix(struct dnn_rng *rng, size_t n)
{
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = dnn_rng_uniform(rng, -1, 1);
    return x;
}

static float a_at(const float *a, bool ta, int lda, int i, int p)
{
    return ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
}

static float b_at(const float *b, bool tb, int ldb, int p, int j)
{
    return tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
}

/* darknet's gemm_cpu loops, one plain float loop nest per case. */
static void gemm_darknet_order(bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
                               int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[(size_t)i * ldc + j] *= beta;
    for (int i = 0; i < m; i++) {
        if (!tb) {
            for (int p = 0; p < k; p++) {
                const float ap = alpha * a_at(a, ta, lda, i, p);
                for (int j = 0; j < n; j++)
                    c[(size_t)i * ldc + j] += ap * b_at(b, tb, ldb, p, j);
            }
        } else {
            for (int j = 0; j < n; j++) {
                float sum = 0;
                for (int p = 0; p < k; p++)
                    sum += alpha * a_at(a, ta, lda, i, p) * b_at(b, tb, ldb, p, j);
                c[(size_t)i * ldc + j] += sum;
            }
        }
    }
}

/* dnn_gemm's documented order, one element at a time: beta first (0 clears), then
 * c = c + (alpha * A(i,p)) * B(p,j) for p = 0 .. k-1, rounded once per term when fused (fmaf)
 * and twice when not (this file is built with -ffp-contract=off). */
static void gemm_chain(bool fused, bool ta, bool tb, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float *cij = &c[(size_t)i * ldc + j];
            if (beta == 0)
                *cij = 0;
            else if (beta != 1)
                *cij *= beta;
            for (int p = 0; p < k; p++) {
                const float ap = alpha * a_at(a, ta, lda, i, p), bp = b_at(b, tb, ldb, p, j);
                *cij = fused ? fmaf(ap, bp, *cij) : *cij + ap * bp;
            }
        }
    }
}

/* Runs one case with one kernel: within rounding of a double reference, bit for bit its own
 * order (gemm_chain), and for the generic kernel darknet's loops where it keeps their order. */
static void check_gemm_kernel(enum dnn_gemm_kernel kern, bool ta, bool tb, int m, int n, int k,
                              float alpha, float beta, int pad)
{
    struct dnn_rng rng;
    dnn_rng_seed(&rng, (uint64_t)(m * 1000003 + n * 1009 + k * 7 + ta * 2 + tb + pad));
    /* Leading dimensions larger than needed when pad > 0. */
    const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int arows = ta ? k : m, brows = tb ? n : k;
    const size_t csize = (size_t)m * ldc * sizeof(float);
    float *a = rand_matrix(&rng, (size_t)arows * lda);
    float *b = rand_matrix(&rng, (size_t)brows * ldb);
    float *c = rand_matrix(&rng, (size_t)m * ldc);
    float *c2 = malloc(csize), *c0 = malloc(csize), *c3 = malloc(csize);
    assert_non_null(c2);
    assert_non_null(c0);
    assert_non_null(c3);
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
            c[(size_t)i * ldc + j] = SENTINEL;
    memcpy(c0, c, csize);
    memcpy(c2, c, csize);
    memcpy(c3, c, csize);
    const char *kname = dnn_gemm_kernel_name(kern);

    dnn_gemm_with(kern, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    gemm_chain(dnn_gemm_kernel_fused(kern), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c2, ldc);

    for (int i = 0; i < m; i++) {
        for (int j = 0; j < ldc; j++) {
            const size_t at = (size_t)i * ldc + j;
            if (j >= n) {
                assert_true(c[at] == SENTINEL);
                continue;
            }
            double ref = (double)beta * c0[at], mag = fabs(ref);
            for (int p = 0; p < k; p++) {
                const double t = (double)alpha * a_at(a, ta, lda, i, p) * b_at(b, tb, ldb, p, j);
                ref += t;
                mag += fabs(t);
            }
            /* float accumulation of k terms: error below k * eps * sum |terms| */
            const double bound = (k + 2) * 1.2e-7 * mag + 1e-30;
            if (fabs(c[at] - ref) > bound)
                fail_msg("gemm %s ta=%d tb=%d %dx%dx%d: C[%d][%d] = %.9g, reference %.9g", kname,
                         ta, tb, m, n, k, i, j, (double)c[at], ref);
        }
    }
    if (memcmp(c, c2, csize) != 0)
        fail_msg("gemm %s ta=%d tb=%d %dx%dx%d alpha %g beta %g: not bit-identical to its "
                 "summation order",
                 kname, ta, tb, m, n, k, (double)alpha, (double)beta);
    /* The generic kernel is darknet's rounding; its order is darknet's except that for B
     * transposed darknet sums the terms apart before adding them to C (equal when beta = 0). */
    if (kern == DNN_GEMM_GENERIC && (!tb || beta == 0)) {
        gemm_darknet_order(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c3, ldc);
        if (memcmp(c, c3, csize) != 0)
            fail_msg("gemm generic ta=%d tb=%d %dx%dx%d: not bit-identical to darknet's loops", ta,
                     tb, m, n, k);
    }
    free(c3);
    free(c0);
    free(c2);
    free(c);
    free(b);
    free(a);
}

static void check_gemm(bool ta, bool tb, int m, int n, int k, float alpha, float beta, int pad)
{
    for (int kern = 0; kern < DNN_GEMM_KERNEL_COUNT; kern++)
        if (dnn_gemm_kernel_available((enum dnn_gemm_kernel)kern))
            check_gemm_kernel((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, beta, pad);
}

static void test_gemm_all_transposes(void **state)
{
    (void)state;
    /* 1x1, primes, sizes around the micro-tiles (4, 6, 8 rows; 8, 16, 32 columns) and the
     * packed blocks (32 columns and 128 terms; 64 and 64 with A transposed) and not multiples
     * of them, and the shapes of LeNet's layers (a 1-row product is a batch of one through a
     * connected layer). */
    static const int sizes[][3] = {
        {1, 1, 1},
        {1, 7, 3},
        {5, 1, 9},
        {3, 5, 7},
        {4, 8, 16},
        {6, 16, 128},
        {8, 32, 129},
        {9, 17, 33},
        {13, 31, 5},
        {8, 300, 40},
        {7, 33, 130},
        {17, 65, 257},
        {6, 259, 3},
        {33, 20, 70},
        {37, 41, 43},
        {12, 64, 256},
        {1, 97, 301},
        {97, 2, 11},
        {16, 196, 25},
        {20, 10, 128},
        {32, 100, 150},
        {3, 127, 131},
        {61, 67, 71},
        {2, 1, 700},
        /* Above DNN_GEMM_GOTO_WORK: A transposed packs both operands, in blocks of 96 rows,
         * 256 terms and 512 columns, and edges of each (16 rows: a last tile of 6 rows
         * reaching past the rows of A). */
        {100, 130, 300},
        {20, 600, 300},
        {16, 300, 250},
        /* ... and of the packing's passes of DNN_GEMM_PACK_P terms (517 = 2 x 256 + 5), with
         * a last tile of rows and a last micro-panel of columns both part padding. */
        {41, 77, 517},
        /* A not transposed into C by rows past DNN_GEMM_NN_MIN_A (50 x 1317 floats of A): B
         * packed in blocks of 64 columns by passes of 8 terms (1317 = 5 x 256 + 37), the
         * second block 29 columns wide, its last micro-panel part padding. */
        {50, 93, 1317},
    };
    static const float alphas[] = {1, 0.5f, -1.25f};
    static const float betas[] = {0, 1, 0.3f};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (size_t ai = 0; ai < 3; ai++)
                for (size_t bi = 0; bi < 3; bi++)
                    check_gemm(t & 2, t & 1, sizes[s][0], sizes[s][1], sizes[s][2], alphas[ai],
                               betas[bi], (int)((s + ai + bi) % 3) * (1 + (int)s % 5));
}

/* Every shape with M, N and K in 1 .. 17: all the edges of every kernel's tiles (4, 6, 8 rows;
 * 8, 16, 32 columns), the one-row products of gemm_gemv.h with blocks of 4, 8 or 16 columns
 * and terms cut short, in every transpose case, with beta 0 and 1 and leading dimensions
 * both tight and larger than needed. */
static void test_gemm_small_sizes(void **state)
{
    (void)state;
    for (int m = 1; m <= 17; m++)
        for (int n = 1; n <= 17; n++)
            for (int k = 1; k <= 17; k++)
                for (int t = 0; t < 4; t++) {
                    const int odd = (m + n + k + t) & 1;
                    check_gemm(t & 2, t & 1, m, n, k, odd ? -1.25f : 1, (float)odd,
                               (m * 7 + n * 3 + k) % 3);
                }
}

/* Products with one row of C (a batch of one through a connected layer), which stream B
 * once (gemm_gemv.h): long rows of terms, past the 1024 terms scaled in one chunk when
 * alpha != 1 or A is transposed, columns not a multiple of any block, bit for bit each
 * kernel's order of terms. */
static void test_gemm_one_row(void **state)
{
    (void)state;
    static const int ns[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1030};
    static const int ks[] = {1, 3, 4, 7, 8, 9, 64, 1023, 1024, 1025, 2100};
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (int t = 0; t < 8; t++) {
                const float alpha = t & 4 ? 0.75f : 1, beta = (ni + ki) & 1 ? 0 : 1;
                check_gemm(t & 2, t & 1, 1, ns[ni], ks[ki], alpha, beta, (int)(ni + ki) % 3);
            }
}

/* beta = 0 never reads C: a C full of NaN gets the bits a cleared C gets, C stored by rows or
 * transposed, in tiles and at their edges, in one block of terms or several, packed or not. */
static void test_gemm_beta0_ignores_c(void **state)
{
    (void)state;
    static const int sizes[][3] = {{2, 3, 1},       {6, 16, 40},  {7, 75, 130}, {13, 37, 300},
                                   {100, 130, 300}, {17, 5, 600}, {1, 40, 50}};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 9);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        const size_t cn = (size_t)m * n;
        float *a = rand_matrix(&rng, (size_t)m * k), *b = rand_matrix(&rng, (size_t)k * n);
        float *c0 = calloc(cn, sizeof(float)), *c1 = malloc(cn * sizeof(float));
        assert_non_null(c0);
        assert_non_null(c1);
        for (int kern = 0; kern < DNN_GEMM_KERNEL_COUNT; kern++) {
            if (!dnn_gemm_kernel_available((enum dnn_gemm_kernel)kern))
                continue;
            for (int t = 0; t < 16; t++) {
                const bool ta = t & 1, tb = t & 2, tc = t & 4;
                const float alpha = t & 8 ? 0.5f : 1; /* 1: C^T may run as its transpose */
                const int lda = ta ? m : k, ldb = tb ? k : n, ldc = tc ? m : n;
                for (size_t i = 0; i < cn; i++) {
                    c0[i] = 0;
                    c1[i] = NAN;
                }
                if (tc) {
                    dnn_gemm_with_tc((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, a, lda, b,
                                     ldb, 1, c0, ldc);
                    dnn_gemm_with_tc((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, a, lda, b,
                                     ldb, 0, c1, ldc);
                } else {
                    dnn_gemm_with((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, a, lda, b,
                                  ldb, 1, c0, ldc);
                    dnn_gemm_with((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, a, lda, b,
                                  ldb, 0, c1, ldc);
                }
                if (memcmp(c0, c1, cn * sizeof(float)) != 0)
                    fail_msg("gemm %s ta=%d tb=%d tc=%d %dx%dx%d alpha %g: beta 0 on NaN differs "
                             "from beta 1 on zeros",
                             dnn_gemm_kernel_name((enum dnn_gemm_kernel)kern), ta, tb, tc, m, n, k,
                             (double)alpha);
            }
        }
        free(c1);
        free(c0);
        free(b);
        free(a);
    }
}

/* C stored transposed (dnn_gemm_with_tc) gets the same bits as C stored by rows: the same
 * terms in the same order, whichever kernel, transposes, alpha and beta, also where a tile
 * is an edge, the product is large enough to pack both operands, or its panels are deep. */
static void test_gemm_transposed_c(void **state)
{
    (void)state;
    /* Past 128 terms C transposed gets deep micro-panels, past 4096 more than one; with
     * alpha 1, C^T with at most 6 columns runs as its transpose (LeNet's weight gradients). */
    static const int sizes[][3] = {{1, 1, 1},     {6, 16, 40},    {7, 75, 130},  {13, 150, 121},
                                   {24, 33, 300}, {16, 300, 250}, {3, 20, 4200}, {1, 37, 1100},
                                   {75, 6, 784},  {150, 6, 196},  {13, 5, 300}};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        float *a = rand_matrix(&rng, (size_t)m * k), *b = rand_matrix(&rng, (size_t)k * n);
        float *c0 = rand_matrix(&rng, (size_t)m * n);
        const int ldt = m + 3; /* C^T: n rows of ldt floats */
        float *c = malloc((size_t)m * n * sizeof(float));
        float *ct = malloc((size_t)n * ldt * sizeof(float));
        assert_non_null(c);
        assert_non_null(ct);
        for (int kern = 0; kern < DNN_GEMM_KERNEL_COUNT; kern++) {
            if (!dnn_gemm_kernel_available((enum dnn_gemm_kernel)kern))
                continue;
            for (int t = 0; t < 8; t++) {
                const bool ta = t & 1, tb = t & 2;
                const float alpha = t & 4 ? -1.25f : 1, beta = t & 4 ? 0.5f : 1;
                memcpy(c, c0, (size_t)m * n * sizeof(float));
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < ldt; i++)
                        ct[(size_t)j * ldt + i] = i < m ? c0[(size_t)i * n + j] : SENTINEL;
                dnn_gemm_with((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, a, ta ? m : k, b,
                              tb ? k : n, beta, c, n);
                dnn_gemm_with_tc((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, alpha, a, ta ? m : k,
                                 b, tb ? k : n, beta, ct, ldt);
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < ldt; i++) {
                        const float got = ct[(size_t)j * ldt + i];
                        const float want = i < m ? c[(size_t)i * n + j] : SENTINEL;
                        if (memcmp(&got, &want, sizeof got) != 0)
                            fail_msg("gemm %s ta=%d tb=%d %dx%dx%d: C^T[%d][%d] = %.9g, C has "
                                     "%.9g",
                                     dnn_gemm_kernel_name((enum dnn_gemm_kernel)kern), ta, tb, m, n,
                                     k, j, i, (double)got, (double)want);
                    }
            }
        }
        free(ct);
        free(c);
        free(c0);
        free(b);
        free(a);
    }
}

/* dnn_gemm runs the best kernel this CPU has, whatever the shape. */
static void test_gemm_uses_best_kernel(void **state)
{
    (void)state;
    const enum dnn_gemm_kernel best = dnn_gemm_kernel_best();
    assert_true(dnn_gemm_kernel_available(best));
    assert_true(dnn_gemm_kernel_available(DNN_GEMM_GENERIC));
    assert_false(dnn_gemm_kernel_available(DNN_GEMM_KERNEL_COUNT));
    static const int sizes[][3] = {{1, 1, 1}, {7, 50, 300}, {64, 64, 64}};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 5);
    for (size_t s = 0; s < 3; s++) {
        const int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        float *a = rand_matrix(&rng, (size_t)m * k), *b = rand_matrix(&rng, (size_t)k * n);
        float *c = rand_matrix(&rng, (size_t)m * n), *d = malloc((size_t)m * n * sizeof(float));
        assert_non_null(d);
        memcpy(d, c, (size_t)m * n * sizeof(float));
        dnn_gemm(false, false, m, n, k, 1, a, k, b, n, 1, c, n);
        dnn_gemm_with(best, false, false, m, n, k, 1, a, k, b, n, 1, d, n);
        assert_memory_equal(c, d, (size_t)m * n * sizeof(float));
        free(d);
        free(c);
        free(b);
        free(a);
    }
}

/* The same numbers at any alignment of A, B and C: both worlds, and any buffer placement,
 * must agree bit for bit. Each array is placed at 0 .. 15 floats past a 64-byte boundary. */
static void test_gemm_alignment_independent(void **state)
{
    (void)state;
    const int m = 23, n = 45, k = 139;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 77);
    float *a0 = rand_matrix(&rng, (size_t)m * k), *b0 = rand_matrix(&rng, (size_t)k * n);
    float *c0 = rand_matrix(&rng, (size_t)m * n);
    const size_t cbytes = (size_t)m * n * sizeof(float);
    float *want = malloc(cbytes);
    assert_non_null(want);
    /* 16 spare floats per array, plus room to reach a 64-byte boundary. */
    float *abuf = malloc(((size_t)m * k + 32) * sizeof(float));
    float *bbuf = malloc(((size_t)k * n + 32) * sizeof(float));
    float *cbuf = malloc(((size_t)m * n + 32) * sizeof(float));
    assert_non_null(abuf);
    assert_non_null(bbuf);
    assert_non_null(cbuf);
    float *abase = (float *)(((uintptr_t)abuf + 63) & ~(uintptr_t)63);
    float *bbase = (float *)(((uintptr_t)bbuf + 63) & ~(uintptr_t)63);
    float *cbase = (float *)(((uintptr_t)cbuf + 63) & ~(uintptr_t)63);
    for (int kern = 0; kern < DNN_GEMM_KERNEL_COUNT; kern++) {
        if (!dnn_gemm_kernel_available((enum dnn_gemm_kernel)kern))
            continue;
        for (int t = 0; t < 4; t++) {
            const bool ta = t & 2, tb = t & 1;
            const int lda = ta ? m : k, ldb = tb ? k : n;
            for (int off = 0; off < 16; off++) {
                float *a = abase + off, *b = bbase + (off * 7) % 16, *c = cbase + (off * 5) % 16;
                memcpy(a, a0, (size_t)m * k * sizeof(float));
                memcpy(b, b0, (size_t)k * n * sizeof(float));
                memcpy(c, c0, cbytes);
                dnn_gemm_with((enum dnn_gemm_kernel)kern, ta, tb, m, n, k, 1, a, lda, b, ldb, 1, c,
                              n);
                if (off == 0)
                    memcpy(want, c, cbytes);
                else if (memcmp(want, c, cbytes) != 0)
                    fail_msg("gemm %s ta=%d tb=%d: result at offset %d differs from offset 0",
                             dnn_gemm_kernel_name((enum dnn_gemm_kernel)kern), ta, tb, off);
            }
        }
    }
    free(cbuf);
    free(bbuf);
    free(abuf);
    free(want);
    free(c0);
    free(b0);
    free(a0);
}

/* k = 0 leaves beta * C; beta = 0 clears C even where it held NaN. */
static void test_gemm_edge_cases(void **state)
{
    (void)state;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};
    float c[4] = {1, 2, 3, 4};
    dnn_gemm(false, false, 2, 2, 0, 1, a, 1, b, 2, 0.5f, c, 2);
    assert_true(c[0] == 0.5f && c[1] == 1.0f && c[2] == 1.5f && c[3] == 2.0f);

    float d[4] = {NAN, NAN, NAN, NAN};
    /* [1 2 3; 4 5 6] * [1 0; 0 1; 1 1] = [4 5; 10 11] */
    dnn_gemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, d, 2);
    assert_true(d[0] == 4 && d[1] == 5 && d[2] == 10 && d[3] == 11);
    /* The same product with A given transposed and B given transposed. */
    float at[6] = {1, 4, 2, 5, 3, 6}, bt[6] = {1, 0, 1, 0, 1, 1};
    float e[4] = {0};
    dnn_gemm(true, true, 2, 2, 3, 1, at, 2, bt, 3, 0, e, 2);
    assert_true(e[0] == 4 && e[1] == 5 && e[2] == 10 && e[3] == 11);
}

/* ------------------------------------------------------------------ im2col */

static int extent(int size, int ksize, int stride, int pad)
{
    return (size + 2 * pad - ksize) / stride + 1;
}

/* A 3x3 image 1..9, ksize 2, stride 1, pad 1: out 4x4, rows (ky, kx). */
static void test_im2col_known_answer(void **state)
{
    (void)state;
    const float im[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float col[4 * 16];
    dnn_im2col(im, 1, 3, 3, 2, 1, 1, col);
    /* Row (0,0) reads im[y-1][x-1]; row (1,1) reads im[y][x]. */
    static const float row00[16] = {0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9};
    static const float row01[16] = {0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0};
    static const float row11[16] = {1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0};
    assert_memory_equal(col, row00, sizeof row00);
    assert_memory_equal(col + 16, row01, sizeof row01);
    assert_memory_equal(col + 48, row11, sizeof row11);

    /* Two channels, stride 2, no pad, 1x1 kernel: a subsampling. */
    const float im2[2 * 9] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    float col2[2 * 4];
    dnn_im2col(im2, 2, 3, 3, 1, 2, 0, col2);
    static const float want2[8] = {1, 3, 7, 9, 11, 13, 17, 19};
    assert_memory_equal(col2, want2, sizeof want2);
}

/* <col2im(y), x> == <y, im2col(x)>, and col2im adds to what im held. */
/* im2col and col2im against their definition, pixel by pixel: every pixel a row's span test
 * may get wrong (padding wider than the kernel, strides that skip the last column,
 * dilation), and col2im's sums in the same order (rows, then y, then x), so bit for bit. */
static void test_im2col_matches_definition(void **state)
{
    (void)state;
    static const int cases[][7] = {
        /* channels, h, w, ksize, stride, pad, dilation */
        {1, 5, 5, 3, 1, 1, 1}, {2, 5, 7, 3, 2, 1, 1}, {3, 6, 4, 2, 2, 0, 1},  {2, 7, 7, 3, 3, 2, 1},
        {1, 4, 4, 1, 1, 0, 1}, {2, 5, 5, 1, 2, 0, 1}, {2, 8, 6, 5, 1, 2, 1},  {1, 3, 3, 3, 1, 4, 1},
        {2, 6, 6, 4, 2, 3, 1}, {1, 9, 8, 3, 1, 2, 2}, {2, 9, 10, 3, 2, 4, 2}, {1, 2, 9, 5, 3, 6, 1},
    };
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 7);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int ch = cases[t][0], h = cases[t][1], w = cases[t][2], ks = cases[t][3],
                  st = cases[t][4], pad = cases[t][5], dil = cases[t][6];
        const int oh = dnn_im2col_extent(h, ks, st, pad, dil);
        const int ow = dnn_im2col_extent(w, ks, st, pad, dil);
        const size_t nim = (size_t)ch * h * w, ncol = (size_t)ch * ks * ks * oh * ow;
        float *im = rand_matrix(&rng, nim), *y = rand_matrix(&rng, ncol);
        float *col = malloc(ncol * sizeof(float)), *want = malloc(ncol * sizeof(float));
        float *back = calloc(nim, sizeof(float)), *back_want = calloc(nim, sizeof(float));
        assert_non_null(col);
        assert_non_null(want);
        assert_non_null(back);
        assert_non_null(back_want);
        for (int r = 0; r < ch * ks * ks; r++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    const int c = r / ks / ks, iy = (r / ks % ks) * dil + oy * st - pad;
                    const int ix = (r % ks) * dil + ox * st - pad;
                    const bool in = iy >= 0 && iy < h && ix >= 0 && ix < w;
                    const size_t at = ((size_t)r * oh + oy) * ow + ox;
                    const size_t px = ((size_t)c * h + (in ? iy : 0)) * w + (in ? ix : 0);
                    want[at] = in ? im[px] : 0;
                    if (in)
                        back_want[px] += y[at];
                }
        dnn_im2col_par(NULL, im, ch, h, w, ks, st, pad, dil, col);
        dnn_col2im_par(NULL, y, ch, h, w, ks, st, pad, dil, back);
        if (memcmp(col, want, ncol * sizeof(float)) != 0)
            fail_msg("case %zu: im2col differs from its definition", t);
        if (memcmp(back, back_want, nim * sizeof(float)) != 0)
            fail_msg("case %zu: col2im differs from its definition", t);
        free(back_want);
        free(back);
        free(want);
        free(col);
        free(y);
        free(im);
    }
}

static void test_col2im_is_adjoint(void **state)
{
    (void)state;
    static const int cases[][6] = {
        /* channels, h, w, ksize, stride, pad */
        {1, 5, 5, 3, 1, 1}, {2, 5, 7, 3, 2, 1}, {3, 6, 4, 2, 2, 0},
        {2, 7, 7, 3, 3, 2}, {1, 4, 4, 1, 1, 0}, {2, 5, 5, 1, 2, 0},
        {2, 8, 6, 5, 1, 2}, {1, 3, 3, 3, 1, 0}, {2, 6, 6, 4, 2, 3},
    };
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 99);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int ch = cases[t][0], h = cases[t][1], w = cases[t][2], ks = cases[t][3],
                  st = cases[t][4], pad = cases[t][5];
        const size_t nim = (size_t)ch * h * w;
        const size_t ncol = (size_t)ch * ks * ks * extent(h, ks, st, pad) * extent(w, ks, st, pad);
        float *x = rand_matrix(&rng, nim);
        float *y = rand_matrix(&rng, ncol);
        float *base = rand_matrix(&rng, nim);
        float *im = malloc(nim * sizeof(float));
        float *col = malloc(ncol * sizeof(float));
        assert_non_null(im);
        assert_non_null(col);

        memcpy(im, base, nim * sizeof(float));
        dnn_col2im(y, ch, h, w, ks, st, pad, im);
        dnn_im2col(x, ch, h, w, ks, st, pad, col);
        double lhs = 0, rhs = 0, mag = 0;
        for (size_t i = 0; i < nim; i++) {
            lhs += ((double)im[i] - base[i]) * x[i];
            mag += fabs((double)im[i] - base[i]) * fabs(x[i]);
        }
        for (size_t i = 0; i < ncol; i++)
            rhs += (double)y[i] * col[i];
        if (fabs(lhs - rhs) > 1e-5 * (mag + 1))
            fail_msg("case %zu: <col2im(y), x> = %.9g but <y, im2col(x)> = %.9g", t, lhs, rhs);
        free(col);
        free(im);
        free(base);
        free(y);
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_all_transposes),
        cmocka_unit_test(test_gemm_small_sizes),
        cmocka_unit_test(test_gemm_one_row),
        cmocka_unit_test(test_gemm_beta0_ignores_c),
        cmocka_unit_test(test_gemm_transposed_c),
        cmocka_unit_test(test_gemm_edge_cases),
        cmocka_unit_test(test_gemm_uses_best_kernel),
        cmocka_unit_test(test_gemm_alignment_independent),
        cmocka_unit_test(test_im2col_known_answer),
        cmocka_unit_test(test_im2col_matches_definition),
        cmocka_unit_test(test_col2im_is_adjoint),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
