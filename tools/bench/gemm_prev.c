/*
 * gemm_prev.c - dnn_gemm as it was at commit 9c8bcd0 (the packed kernels, before the products
 * with one row of C and the shape-dependent paths), kept as the baseline that
 * tools/bench/gemm_bench.c times side by side with today's; not part of any library.
 * Only the product itself is kept: kernel selection comes from the library, which has not
 * changed it, and the thread split is left out (the bench runs one thread).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn_internal.h"

void gemm_prev_with(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);
void gemm_prev_with_tc(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k,
                       float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc);

/* Floats per packed block of B: 16 KiB on the stack, in L1 beside the rows of A that pass
 * it (a TA's stack is 64 KiB by default, ta/Makefile). The block is one micro-panel wide
 * (AVX2: 256 terms x 16 columns), or DNN_GEMM_NC_TA columns wide (64 x 64) when A is
 * transposed. Chosen with `make bench-gemm` on a Zen 3 core; block sizes change speed only,
 * never a result. */
#define DNN_GEMM_BLOCK 4096
#define DNN_GEMM_NC_TA 64
/* Blocks of gk_gemm_goto, which packs both operands into memory from malloc (about 600 KiB
 * at most): B's block of KC terms x NC columns stays in L2/L3, A's of MC rows x KC terms in
 * L2, one micro-panel of B in L1. MC is a multiple of 4 and 6 and 8 rows, NC of 32 columns. */
#define DNN_GEMM_GOTO_KC 256
#define DNN_GEMM_GOTO_MC 96
#define DNN_GEMM_GOTO_NC 512
/* Terms of the deep micro-panels of a product into C transposed (gemm_run): at most 32
 * columns x 4096 terms, 512 KiB. */
#define DNN_GEMM_DEEP_K 4096

/* The micro-kernel's loops over rows and vectors must be unrolled for its sums to stay in
 * registers (gcc -O2 does not do it by itself); a hint only, which changes no result. */
#if defined(__clang__)
#define DNN_GEMM_UNROLL_ALL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define DNN_GEMM_UNROLL_ALL _Pragma("GCC unroll 16")
#else
#define DNN_GEMM_UNROLL_ALL
#endif

/* The run-time choice exists on x86-64 with gcc or clang (libgcc's or compiler-rt's CPU
 * model answers __builtin_cpu_supports); elsewhere, arm64 TAs included, only generic.
 * -DDNN_GEMM_PORTABLE keeps an x86-64 build to the generic kernel too, so that its results
 * equal an arm64 build's bit for bit (make check-optee compares the simulator with OP-TEE):
 * the AVX2 and AVX-512 kernels fuse each multiply-add, one rounding instead of two. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(DNN_GEMM_PORTABLE)
#define DNN_GEMM_X86 1
#else
#define DNN_GEMM_X86 0
#endif

/* A vector initialiser with x in each of 4, 8 or 16 lanes: the compiler makes it one
 * broadcast. */
#define DNN_GEMM_SPLAT4(x)                                                                         \
    {                                                                                              \
        (x), (x), (x), (x)                                                                         \
    }
#define DNN_GEMM_SPLAT8(x)                                                                         \
    {                                                                                              \
        (x), (x), (x), (x), (x), (x), (x), (x)                                                     \
    }
#define DNN_GEMM_SPLAT16(x)                                                                        \
    {                                                                                              \
        (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x)             \
    }

static int gemm_min(int a, int b)
{
    return a < b ? a : b;
}

/*
 * Packs the kc x nc block of B (B(p,j) = b[p*sbp + j*sbj]) into micro-panels of nr columns:
 * panel t holds columns t*nr .. t*nr+nr-1 as kc rows of nr floats, at bp + t*nr*kc. Columns
 * past nc are zeros, so the micro-kernel always works whole panels. Inlined into each
 * kernel's driver, where nr is a constant: a whole row is then a few vector moves.
 */
static inline __attribute__((always_inline)) void
gemm_pack_b(int kc, int nc, int nr, const float *b, size_t sbp, size_t sbj, float *bp)
{
    for (int q0 = 0; q0 < nc; q0 += nr) {
        const int w = gemm_min(nr, nc - q0);
        float *panel = bp + (size_t)q0 * kc;
        const float *src = b + (size_t)q0 * sbj;
        if (sbj == 1 && w == nr) {
            for (int p = 0; p < kc; p++)
                memcpy(panel + (size_t)p * nr, src + (size_t)p * sbp, (size_t)nr * sizeof(float));
            continue;
        }
        if (sbj == 1) {
            for (int p = 0; p < kc; p++)
                memcpy(panel + (size_t)p * nr, src + (size_t)p * sbp, (size_t)w * sizeof(float));
        } else {
            /* B transposed: read each column of the block (a row of B) in order. */
            for (int q = 0; q < w; q++)
                for (int p = 0; p < kc; p++)
                    panel[(size_t)p * nr + q] = src[(size_t)q * sbj + (size_t)p];
        }
        for (int p = 0; p < kc; p++)
            for (int q = w; q < nr; q++)
                panel[(size_t)p * nr + q] = 0;
    }
}

/* Copies the mr x nr elements of C (C(r,q) = c[r*sci + q*scj]) into the tile t (row stride
 * ldt), for a micro-kernel that works a whole tile: an edge, or C stored transposed. */
static void gemm_tile_in(int mr, int nr, int ldt, const float *c, size_t sci, size_t scj, float *t)
{
    for (int r = 0; r < mr; r++) {
        const float *cr = c + (size_t)r * sci;
        if (scj == 1)
            memcpy(t + r * ldt, cr, (size_t)nr * sizeof(float));
        else
            for (int q = 0; q < nr; q++)
                t[r * ldt + q] = cr[(size_t)q * scj];
    }
}

/* The way back of gemm_tile_in: only the mr x nr real elements are written. */
static void gemm_tile_out(int mr, int nr, int ldt, const float *t, float *c, size_t sci, size_t scj)
{
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * sci;
        if (scj == 1)
            memcpy(cr, t + r * ldt, (size_t)nr * sizeof(float));
        else
            for (int q = 0; q < nr; q++)
                cr[(size_t)q * scj] = t[r * ldt + q];
    }
}

/* generic: 4 x 8 tiles of 4-lane vectors, two roundings per term as darknet's loops. */
#define GK_SUFFIX generic
#define GK_ATTR
#define GK_LANES 4
#define GK_SPLAT(x) (GK_V) DNN_GEMM_SPLAT4(x)
#define GK_MR 4
#define GK_NV 2
#define GK_MADD(c, a, b) ((c) + (a) * (b))
#include "tools/bench/gemm_prev_kernel.h"
#undef GK_SUFFIX
#undef GK_ATTR
#undef GK_LANES
#undef GK_SPLAT
#undef GK_MR
#undef GK_NV
#undef GK_MADD

#if DNN_GEMM_X86
/* avx2: 6 x 16 tiles, 12 of the 16 ymm registers hold sums. The fused multiply-add is
 * asked for by name, so it does not depend on -ffp-contract. */
#define GK_SUFFIX avx2
#define GK_ATTR __attribute__((target("avx2,fma")))
#define GK_LANES 8
#define GK_SPLAT(x) (GK_V) DNN_GEMM_SPLAT8(x)
#define GK_MR 6
#define GK_NV 2
#define GK_MADD(c, a, b) __builtin_ia32_vfmaddps256((a), (b), (c))
#include "tools/bench/gemm_prev_kernel.h"
#undef GK_SUFFIX
#undef GK_ATTR
#undef GK_LANES
#undef GK_SPLAT
#undef GK_MR
#undef GK_NV
#undef GK_MADD

/* avx512: 8 x 32 tiles, 16 of the 32 zmm registers hold sums; 4 = current rounding mode. */
#define GK_SUFFIX avx512
#define GK_ATTR __attribute__((target("avx512f")))
#define GK_LANES 16
#define GK_SPLAT(x) (GK_V) DNN_GEMM_SPLAT16(x)
#define GK_MR 8
#define GK_NV 2
#define GK_MADD(c, a, b) __builtin_ia32_vfmaddps512_mask((a), (b), (c), (unsigned short)0xffff, 4)
#include "tools/bench/gemm_prev_kernel.h"
#undef GK_SUFFIX
#undef GK_ATTR
#undef GK_LANES
#undef GK_SPLAT
#undef GK_MR
#undef GK_NV
#undef GK_MADD
#endif

/* Products with A transposed and at least this many multiply-adds pack both operands
 * (gk_gemm_goto): measured with `make bench-gemm`, 512^3 TN went from 56% to 79% of the FMA
 * peak; for NN and NT it made no difference beyond the noise, so they keep reading A in place
 * and need no malloc. Below 2^20 the malloc and the packing of A start to show. */
#define DNN_GEMM_GOTO_WORK (1u << 20)

/* The first 64-byte boundary in @mem, from malloc with 64 bytes to spare: malloc's alignment
 * (at least 8) makes the step whole floats, and no cast raises the pointer's alignment (the
 * TA's dev kit builds with -mstrict-align -Wcast-align). */
static float *gemm_align64(float *mem)
{
    return mem + (64 - (uintptr_t)mem % 64) % 64 / sizeof(float);
}

/*
 * Runs the product through gk_gemm_goto when that is worth its packing and its malloc, and
 * says whether it did; false (nothing done) also when malloc fails, as it may in a TA's heap:
 * the caller then runs the kernel that reads A in place, whose results are the same bits
 * (blocks never change an element's order of terms).
 */
static bool gemm_goto(enum dnn_gemm_kernel kernel, bool ta, int m, int n, int k, float alpha,
                      const float *a, size_t sai, size_t sap, const float *b, size_t sbp,
                      size_t sbj, float *c, size_t sci, size_t scj)
{
    if (!ta || (double)m * (double)n * (double)k < DNN_GEMM_GOTO_WORK)
        return false;
    /* Rounded up to whole tiles and micro-panels of every kernel (4, 6 or 8 rows; 8, 16 or 32
     * columns): the last tile of A is packed whole, padding rows included. */
    const size_t kc = (size_t)gemm_min(k, DNN_GEMM_GOTO_KC);
    const size_t mc = ((size_t)gemm_min(m, DNN_GEMM_GOTO_MC) + 23) / 24 * 24;
    const size_t nc = ((size_t)gemm_min(n, DNN_GEMM_GOTO_NC) + 31) / 32 * 32;
    const size_t floats = kc * (mc + nc) + 16;
    float *mem = malloc(floats * sizeof(float));
    if (!mem)
        return false;
    float *ap = gemm_align64(mem), *bp = ap + kc * mc;
    switch (kernel) {
#if DNN_GEMM_X86
    case DNN_GEMM_AVX512:
        gk_gemm_goto_avx512(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        break;
    case DNN_GEMM_AVX2:
        gk_gemm_goto_avx2(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        break;
#endif
    default:
        gk_gemm_goto_generic(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        break;
    }
    free(mem);
    return true;
}

/* dnn_gemm_with, with C(i,j) at c[i*ldc + j], or at c[j*ldc + i] when tc. */
static void gemm_run(enum dnn_gemm_kernel kernel, bool ta, bool tb, bool tc, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    const size_t sci = tc ? 1 : (size_t)ldc, scj = tc ? (size_t)ldc : 1;
    if (!dnn_feq(beta, 1)) {
        /* beta == 0 stores zeros so stale workspace (even NaN) cannot leak into C;
         * for finite C this equals darknet's C *= 0. */
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * sci;
            if (dnn_feq(beta, 0) && scj == 1)
                memset(ci, 0, (size_t)n * sizeof(float)); /* all bits zero is +0.0f */
            else if (dnn_feq(beta, 0))
                for (int j = 0; j < n; j++)
                    ci[(size_t)j * scj] = 0;
            else if (scj == 1)
                for (int j = 0; j < n; j++)
                    ci[j] *= beta;
            else
                for (int j = 0; j < n; j++)
                    ci[(size_t)j * scj] *= beta;
        }
    }
    if (k <= 0)
        return;
    const size_t sai = ta ? 1 : (size_t)lda, sap = ta ? (size_t)lda : 1;
    const size_t sbp = tb ? 1 : (size_t)ldb, sbj = tb ? (size_t)ldb : 1;
    if (!dnn_gemm_kernel_available(kernel))
        kernel = DNN_GEMM_GENERIC;
    if (gemm_goto(kernel, ta, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj))
        return;
    /* C transposed: each pass of a tile copies it in and out with strided accesses, which
     * took a tenth of VGG-7's training (perf); a micro-panel of up to DNN_GEMM_DEEP_K terms,
     * from malloc, makes one pass of a product's tiles where the stack's 256 terms made
     * several. Without it (malloc failed) the stack's panels give the same bits. */
    float *mem = NULL, *deep = NULL;
    const int deep_k = gemm_min(k, DNN_GEMM_DEEP_K);
    if (tc && !ta && k > DNN_GEMM_BLOCK / 32 && (mem = malloc((size_t)deep_k * 32 * 4 + 64)))
        deep = gemm_align64(mem);
    switch (kernel) {
#if DNN_GEMM_X86
    case DNN_GEMM_AVX512:
        gk_gemm_avx512(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep, deep_k);
        break;
    case DNN_GEMM_AVX2:
        gk_gemm_avx2(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep, deep_k);
        break;
#endif
    default:
        gk_gemm_generic(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep, deep_k);
        break;
    }
    free(mem);
}

void gemm_prev_with(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm_run(kernel, ta, tb, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_prev_with_tc(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k,
                       float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc)
{
    gemm_run(kernel, ta, tb, true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
