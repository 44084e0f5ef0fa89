/*
 * gemm.c - single-precision matrix multiply with darknet's gemm_cpu interface.
 *
 * C = alpha * op(A) * op(B) + beta * C, all row-major; C is scaled by beta first, then every
 * element gets its k terms added straight into it in increasing p:
 *   C[i][j] = C[i][j] + (alpha * A(i,p)) * B(p,j),  p = 0 .. k-1,
 * the order of darknet's loops for B not transposed (NN, TN); for B transposed darknet sums
 * the terms from 0 and adds the sum to C once, which differs in the last bits when beta != 0.
 *
 * This order is a contract, not an accident of the loops: the TA's streamed layers
 * (dnn_tile_backward's input delta) add a layer's k range in chunks, one call per chunk with
 * beta 1, and get the whole product's bits only because every path below adds each chunk's
 * terms in increasing p straight into C; blocks, tiles, threads and the path taken decide
 * which elements are worked on together, never an element's order of terms.
 *
 * One packed, register-blocked kernel (gemm_kernel.h) serves every transpose case, built for
 * three instruction sets and chosen at run time from the CPU alone:
 *   avx512  x86-64 with AVX-512F: 16-lane vectors, one fused multiply-add per term (only
 *           in a build with -DDNN_GEMM_ENABLE_AVX512: the same bits as avx2, no faster
 *           on the one AVX-512 CPU measured, README)
 *   avx2    x86-64 with AVX2 and FMA: 8-lane vectors, one fused multiply-add per term
 *   generic 4-lane vectors, a product then a sum (SSE2 on baseline x86-64, NEON on arm64,
 *           the only kernel of an arm64 TA): bit for bit darknet's NN/TN loops
 * The choice never depends on alignment, sizes or threads, and an element's terms are always
 * summed in the same order, so the normal world and a TA on the same CPU agree bit for bit,
 * and splitting C between threads (over M/N blocks, never K) will not change a bit.
 * The fused kernels round once per term instead of twice, so their results differ from
 * darknet's in the last bits (README, "Where darknetp differs from darknet on purpose").
 *
 * Which code runs depends on the shape, never the bits (test_gemm checks every path against
 * the k-ordered chain, bit for bit):
 *   - at most 6 rows of C with B transposed, or one row (a batch of one through a connected
 *     layer): gemm_gemv.h, B streamed once, transposed in registers, no packing;
 *   - with alpha 1, a product that fits that only as its transpose runs as C^T = B^T A^T;
 *   - otherwise the kernel, its wide tiles (6 x 16 on AVX2) for all but a last few columns,
 *     which get narrow ones (12 x 8), both operands packed for large products with A
 *     transposed (the packing malloc may fail in a TA's heap: then the unpacked kernel),
 *     B packed 64 columns at a time with A not transposed and C by rows (else, or without
 *     malloc, one micro-panel at a time on the stack), or by a caller's function
 *     (dnn_gemm_src_par: a convolution's columns packed from the image);
 *   - beta 0 (forward products, column workspaces) never reads C: tiles start from +0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn_internal.h"

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
/* Terms per pass of gk_pack_at and gk_pack_b_rows over a block's tiles or panels: their rows
 * of the stored operand, however far apart, stay in L1 until every tile has taken its part. */
#define DNN_GEMM_PACK_P 8
/* Terms of the deep micro-panels of a product into C transposed (gemm_run): at most 32
 * columns x 4096 terms, 512 KiB. */
#define DNN_GEMM_DEEP_K 4096
/* The block of B of a product with A not transposed into C by rows (gemm_kernel), from
 * malloc: NN_NC columns by NN_KC terms, 64 KiB, in L2 beside the tile of A in L1. Products
 * with at most NN_MIN_M rows of C keep the stack's block (a packed block would serve too
 * few tiles of A to pay; with explicit B they read it in place), and so do those whose A
 * has fewer than NN_MIN_A floats (256 KiB): such an A stays in L2 anyway, and reading B
 * from L2 instead of L1 made LeNet's connected layers (100 x 120 x 150) slower, its
 * training step by 7-15%. */
#define DNN_GEMM_NN_NC 64
#define DNN_GEMM_NN_KC 256
#define DNN_GEMM_NN_MIN_M 24
#define DNN_GEMM_NN_MIN_A 65536.0

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

/* The products with one row of C (gemm_gemv.h) transpose blocks of B in registers with
 * __builtin_shufflevector (clang, gcc 12 and later); without it the kernel of gemm_kernel.h
 * computes them, to the same bits. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define DNN_GEMM_GEMV 1
#endif
#endif
#ifndef DNN_GEMM_GEMV
#define DNN_GEMM_GEMV 0
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
            /* B transposed: the panel written in order, term by term, from the block's w
             * rows of B, each read in order across terms (w cache lines stay in L1). Writing
             * a column of the panel per row of B instead strides the stores by nr floats,
             * and whenever the stack put the panel 4 KiB-aliased to B, every load waited on
             * a store: LeNet's 6x75x784 weight gradient ran at half speed. */
            for (int p = 0; p < kc; p++)
                for (int q = 0; q < w; q++)
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
#include "dnn/gemm_kernel.h"
#if DNN_GEMM_GEMV
#include "dnn/gemm_gemv.h"
#endif
#undef GK_SUFFIX
#undef GK_MR
#undef GK_NV
/* generic_n: 8 x 4 tiles, one vector per row, for the last 1 .. 4 columns of C (below). */
#define GK_SUFFIX generic_n
#define GK_MR 8
#define GK_NV 1
#include "dnn/gemm_kernel.h"
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
#include "dnn/gemm_kernel.h"
#if DNN_GEMM_GEMV
#include "dnn/gemm_gemv.h"
#endif
#undef GK_SUFFIX
#undef GK_MR
#undef GK_NV
/* avx2_n: 12 x 8 tiles, 12 ymm registers of sums, for the last 1 .. 8 columns of C. */
#define GK_SUFFIX avx2_n
#define GK_MR 12
#define GK_NV 1
#include "dnn/gemm_kernel.h"
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
#include "dnn/gemm_kernel.h"
#undef GK_SUFFIX
#undef GK_ATTR
#undef GK_LANES
#undef GK_SPLAT
#undef GK_MR
#undef GK_NV
#undef GK_MADD
#endif

bool dnn_gemm_kernel_available(enum dnn_gemm_kernel kernel)
{
    switch (kernel) {
    case DNN_GEMM_GENERIC:
        return true;
#if DNN_GEMM_X86
    case DNN_GEMM_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DNN_GEMM_AVX512:
#ifdef DNN_GEMM_ENABLE_AVX512
        return __builtin_cpu_supports("avx512f");
#else
        /* Used only when a build opts in: on an AMD EPYC (Zen 4, whose AVX-512 unit is two
         * 256-bit halves) it passed every test, its bits those of avx2, but ran no faster
         * (README); not yet measured on a CPU with full-width AVX-512 units. */
        return false;
#endif
#endif
    default:
        return false;
    }
}

enum dnn_gemm_kernel dnn_gemm_kernel_best(void)
{
    if (dnn_gemm_kernel_available(DNN_GEMM_AVX512))
        return DNN_GEMM_AVX512;
    if (dnn_gemm_kernel_available(DNN_GEMM_AVX2))
        return DNN_GEMM_AVX2;
    return DNN_GEMM_GENERIC;
}

const char *dnn_gemm_kernel_name(enum dnn_gemm_kernel kernel)
{
    switch (kernel) {
    case DNN_GEMM_GENERIC:
        return "generic";
    case DNN_GEMM_AVX2:
        return "avx2";
    case DNN_GEMM_AVX512:
        return "avx512";
    default:
        return "?";
    }
}

bool dnn_gemm_kernel_fused(enum dnn_gemm_kernel kernel)
{
    return kernel == DNN_GEMM_AVX2 || kernel == DNN_GEMM_AVX512;
}

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
static bool gemm_goto(enum dnn_gemm_kernel kernel, bool narrow, bool zero, bool ta, int m, int n,
                      int k, float alpha, const float *a, size_t sai, size_t sap, const float *b,
                      size_t sbp, size_t sbj, float *c, size_t sci, size_t scj)
{
    /* gk_gemm_goto packs A as stored transposed, its rows of C side by side (sai == 1): the
     * only A with sap != 1 that gemm_run makes, transposed product or not. */
    if (!ta || sai != 1 || (double)m * (double)n * (double)k < DNN_GEMM_GOTO_WORK)
        return false;
    /* Rounded up to whole tiles and micro-panels of every kernel (4, 6, 8 or 12 rows; 4, 8, 16
     * or 32 columns): the last tile of A is packed whole, padding rows included. */
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
        gk_gemm_goto_avx512(zero, m, n, k, alpha, a, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        break;
    case DNN_GEMM_AVX2:
        if (narrow)
            gk_gemm_goto_avx2_n(zero, m, n, k, alpha, a, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        else
            gk_gemm_goto_avx2(zero, m, n, k, alpha, a, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        break;
#endif
    default:
        if (narrow)
            gk_gemm_goto_generic_n(zero, m, n, k, alpha, a, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        else
            gk_gemm_goto_generic(zero, m, n, k, alpha, a, sap, b, sbp, sbj, c, sci, scj, ap, bp);
        break;
    }
    free(mem);
    return true;
}

/* Rows of C that gemm_gemv.h takes (GV_MR), with B transposed; one row with B by rows. */
#define DNN_GEMM_SMALL_M 6
/* A product into C stored transposed with at most this many terms runs as its transpose
 * when it can (gemm_run): `make bench-gemm`, VGG-7's weight gradients C^T against NT with
 * 64 and 256 terms 0.7-0.9x, with 1024 terms 1.0-1.3x. */
#define DNN_GEMM_SWAP_K 256

static bool gemm_small_fits(int m, size_t sbp, size_t scj)
{
    return DNN_GEMM_GEMV && m >= 1 && m <= DNN_GEMM_SMALL_M && (sbp == 1 || (m == 1 && scj == 1));
}

/*
 * Runs a product with at most DNN_GEMM_SMALL_M rows of C through gemm_gemv.h (see
 * gemm_small_fits), which streams B once with every vector lane on a column of C, and says
 * whether it did; false (nothing done) leaves it to the kernel, whose results are the same
 * bits. AVX-512 CPUs run the AVX2 version: both fuse each multiply-add, so an element's value
 * is the same.
 */
static bool gemm_gemv(enum dnn_gemm_kernel kernel, int m, int n, int k, float alpha, const float *a,
                      size_t sai, size_t sap, const float *b, size_t sbp, size_t sbj, float *c,
                      size_t sci, size_t scj)
{
#if DNN_GEMM_GEMV
    if (!gemm_small_fits(m, sbp, scj))
        return false;
    switch (kernel) {
#if DNN_GEMM_X86
    case DNN_GEMM_AVX512:
    case DNN_GEMM_AVX2:
        return dnn_gemm_kernel_available(DNN_GEMM_AVX2) &&
               gv_gemv_avx2(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj);
#endif
    default:
        return gv_gemv_generic(m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj);
    }
#else
    (void)kernel, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)sai, (void)sap, (void)b;
    (void)sbp, (void)sbj, (void)c, (void)sci, (void)scj;
    return false;
#endif
}

/* Columns of C per tile of kernel's wide kernel (the narrow ones: half as many). */
static int gemm_nr(enum dnn_gemm_kernel kernel)
{
    return kernel == DNN_GEMM_AVX512 ? 32 : kernel == DNN_GEMM_AVX2 ? 16 : 8;
}

/* The narrow tiles' columns of a product of n columns: the last 1 .. half a wide tile's
 * (gemm_run says why), or none. */
static int gemm_n_narrow(enum dnn_gemm_kernel kernel, int n)
{
    const int nr = gemm_nr(kernel), rest = n % nr;
    return kernel != DNN_GEMM_AVX512 && rest > 0 && rest <= nr / 2 ? rest : 0;
}

/* The product by the register-blocked kernel, wide tiles or narrow ones (no narrow AVX-512
 * kernel: the wide one then), with both operands packed when that pays; B packed by src
 * instead when src is not NULL (gk_gemm). */
static void gemm_kernel(enum dnn_gemm_kernel kernel, bool narrow, bool zero, int m, int n, int k,
                        float alpha, const float *a, size_t sai, size_t sap, const float *b,
                        size_t sbp, size_t sbj, float *c, size_t sci, size_t scj,
                        const struct dnn_gemm_src *src, int jbase)
{
    const bool ta = sap != 1, tc = scj != 1; /* A, C stored transposed (as far as it matters) */
    if (gemm_goto(kernel, narrow, zero, ta, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj))
        return;
    /* C transposed: each pass of a tile copies it in and out with strided accesses, which
     * took a tenth of VGG-7's training (perf); a micro-panel of up to DNN_GEMM_DEEP_K terms,
     * from malloc, makes one pass of a product's tiles where the stack's 256 terms made
     * several. Without it (malloc failed) the stack's panels give the same bits. */
    float *mem = NULL, *deep = NULL;
    int deep_k = gemm_min(k, DNN_GEMM_DEEP_K), deep_n = 0;
    if (tc && !ta && k > DNN_GEMM_BLOCK / 32 && (mem = malloc((size_t)deep_k * 32 * 4 + 64)))
        deep = gemm_align64(mem);
    /* C by rows, A not transposed (a convolution's forward product): with a block of B
     * several micro-panels wide, each tile of A is read from L2 or memory once per
     * DNN_GEMM_NN_NC columns instead of once per micro-panel. VGG-7's 8x8 layers (512 x 64
     * x 4608 per image: its weights, 9.4 MB, passed 4 times) ran at 54% of the FMA peak. */
    if (!tc && !ta && n > gemm_nr(kernel) && m > DNN_GEMM_NN_MIN_M &&
        (double)m * (double)k >= DNN_GEMM_NN_MIN_A &&
        (mem = malloc((size_t)DNN_GEMM_NN_KC * DNN_GEMM_NN_NC * sizeof(float) + 64))) {
        deep = gemm_align64(mem);
        deep_k = gemm_min(k, DNN_GEMM_NN_KC);
        deep_n = DNN_GEMM_NN_NC;
    }
    switch (kernel) {
#if DNN_GEMM_X86
    case DNN_GEMM_AVX512:
        gk_gemm_avx512(zero, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep, deep_k,
                       deep_n, src, jbase);
        break;
    case DNN_GEMM_AVX2:
        if (narrow)
            gk_gemm_avx2_n(zero, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep,
                           deep_k, deep_n, src, jbase);
        else
            gk_gemm_avx2(zero, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep, deep_k,
                         deep_n, src, jbase);
        break;
#endif
    default:
        if (narrow)
            gk_gemm_generic_n(zero, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep,
                              deep_k, deep_n, src, jbase);
        else
            gk_gemm_generic(zero, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj, deep,
                            deep_k, deep_n, src, jbase);
        break;
    }
    free(mem);
}

/* dnn_gemm_with, with C(i,j) at c[i*ldc + j], or at c[j*ldc + i] when tc. */
static void gemm_run(enum dnn_gemm_kernel kernel, bool ta, bool tb, bool tc, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    size_t sai = ta ? 1 : (size_t)lda, sap = ta ? (size_t)lda : 1;
    size_t sbp = tb ? 1 : (size_t)ldb, sbj = tb ? (size_t)ldb : 1;
    size_t sci = tc ? 1 : (size_t)ldc, scj = tc ? (size_t)ldc : 1;
    /* With alpha == 1 the product may run as its transpose, C^T = op(B)^T op(A)^T into C^T
     * stored the other way: each term is the same product (a * b == b * a, also fused), added
     * in the same order, so the same bits. It does when only that form fits gemm_gemv.h (a
     * weight gradient the layer computes as C^T with 6 columns), and for C stored transposed
     * with few terms, whose tiles the kernel would copy in and out for little work (VGG-7's
     * conv7 weight gradient, 64 terms; C by rows also lets the kernel prefetch C). */
    const bool swap = dnn_feq(alpha, 1) && !gemm_small_fits(m, sbp, scj) &&
                      (gemm_small_fits(n, sap, sci) || (scj != 1 && k <= DNN_GEMM_SWAP_K));
    if (swap) {
        const int t = m;
        const float *x = a;
        size_t u = sai, v = sap;
        m = n, n = t, a = b, b = x;
        sai = sbj, sap = sbp, sbj = u, sbp = v;
        u = sci, sci = scj, scj = u;
    }
    const bool small = gemm_small_fits(m, sbp, scj);
    /* beta == 0 with terms to add: the kernel starts every element from +0 instead of reading
     * C, the same bits as clearing C first, without a pass over C (a convolution's forward
     * product: k = 27 for VGG-7's first layer). gemm_gemv.h (a few rows) reads C. */
    const bool zero = dnn_feq(beta, 0) && k > 0 && !small;
    if (!dnn_feq(beta, 1) && !zero) {
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
    if (!dnn_gemm_kernel_available(kernel))
        kernel = DNN_GEMM_GENERIC;
    if (small && gemm_gemv(kernel, m, n, k, alpha, a, sai, sap, b, sbp, sbj, c, sci, scj))
        return;
    /* The wide tiles (8, 16 or 32 columns) for all of C but a last 1 .. half a tile's columns,
     * which get the narrow tiles of half the width (LeNet's weight gradients, C^T with 6
     * columns, used 6 of 16 lanes). Columns are independent: the same bits either way. */
    const int n_narrow = gemm_n_narrow(kernel, n);
    if (n > n_narrow)
        gemm_kernel(kernel, false, zero, m, n - n_narrow, k, alpha, a, sai, sap, b, sbp, sbj, c,
                    sci, scj, NULL, 0);
    if (n_narrow)
        gemm_kernel(kernel, true, zero, m, n_narrow, k, alpha, a, sai, sap,
                    b + (size_t)(n - n_narrow) * sbj, sbp, sbj, c + (size_t)(n - n_narrow) * scj,
                    sci, scj, NULL, 0);
}

/*
 * C(m, n) = A(m, k) * B(k, n) with B packed by src, its columns jbase .. jbase+n-1: the tiles
 * and terms gemm_run gives an explicit B, wide and narrow tiles alike, C never read (beta 0).
 * Only the kernel's stack block is used, so it also runs in a TA.
 */
static void gemm_src_run(enum dnn_gemm_kernel kernel, int m, int n, int k, const float *a, int lda,
                         const struct dnn_gemm_src *src, int jbase, float *c, int ldc)
{
    if (m <= 0 || n <= 0 || k <= 0)
        return;
    if (!dnn_gemm_kernel_available(kernel))
        kernel = DNN_GEMM_GENERIC;
    const int n_narrow = gemm_n_narrow(kernel, n);
    if (n > n_narrow)
        gemm_kernel(kernel, false, true, m, n - n_narrow, k, 1, a, (size_t)lda, 1, NULL, 0, 1, c,
                    (size_t)ldc, 1, src, jbase);
    if (n_narrow)
        gemm_kernel(kernel, true, true, m, n_narrow, k, 1, a, (size_t)lda, 1, NULL, 0, 1,
                    c + (n - n_narrow), (size_t)ldc, 1, src, jbase + n - n_narrow);
}

void dnn_gemm_with(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm_run(kernel, ta, tb, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dnn_gemm_with_tc(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k,
                      float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                      float *c, int ldc)
{
    gemm_run(kernel, ta, tb, true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Multiples of every kernel's tile (4/6/8/12 rows; 4/8/16/32 columns and the 64 of
 * DNN_GEMM_NC_TA), so a split between threads cuts no tile in two (a speed matter only:
 * a cut changes no element's terms). */
#define DNN_GEMM_SPLIT_M 24
#define DNN_GEMM_SPLIT_N 64
/* Multiply-adds a task should have at least, to be worth waking a thread for (some 10 us). */
#define DNN_GEMM_SPLIT_WORK (1u << 18)

/* One product cut into a grid of tm x tn blocks of C; task t works block (t / tn, t % tn). */
struct gemm_split {
    enum dnn_gemm_kernel kernel;
    bool ta, tb, tc;
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    const struct dnn_gemm_src *src; /* B packed by src (dnn_gemm_src_par), or NULL */
    int units_m, units_n, tm, tn;
};

static void gemm_split_task(void *arg, size_t t)
{
    const struct gemm_split *s = arg;
    const int bi = (int)(t / (size_t)s->tn), bj = (int)(t % (size_t)s->tn);
    /* Blocks of whole units, spread evenly: block b holds units [b*u/t, (b+1)*u/t). */
    const int i0 = (int)((long long)bi * s->units_m / s->tm) * DNN_GEMM_SPLIT_M;
    const int i1 =
        gemm_min(s->m, (int)((long long)(bi + 1) * s->units_m / s->tm) * DNN_GEMM_SPLIT_M);
    const int j0 = (int)((long long)bj * s->units_n / s->tn) * DNN_GEMM_SPLIT_N;
    const int j1 =
        gemm_min(s->n, (int)((long long)(bj + 1) * s->units_n / s->tn) * DNN_GEMM_SPLIT_N);
    const float *a = s->a + (s->ta ? (size_t)i0 : (size_t)i0 * (size_t)s->lda);
    if (s->src) {
        gemm_src_run(s->kernel, i1 - i0, j1 - j0, s->k, a, s->lda, s->src, j0,
                     s->c + (size_t)i0 * (size_t)s->ldc + (size_t)j0, s->ldc);
        return;
    }
    const float *b = s->b + (s->tb ? (size_t)j0 * (size_t)s->ldb : (size_t)j0);
    const size_t at =
        s->tc ? (size_t)j0 * (size_t)s->ldc + (size_t)i0 : (size_t)i0 * (size_t)s->ldc + (size_t)j0;
    gemm_run(s->kernel, s->ta, s->tb, s->tc, i1 - i0, j1 - j0, s->k, s->alpha, a, s->lda, b, s->ldb,
             s->beta, s->c + at, s->ldc);
}

/*
 * The grid of tm x tn blocks for `tasks` tasks (at most) on `threads` threads. Every task
 * packs the operands of its own block: A's rows once per block column, B's columns once per
 * block row, so a grid packs tn x (M x K) + tm x (N x K) floats in all. Of the grids with at
 * least min(tasks, 2 x threads) blocks (two per thread, so that a thread the machine slows
 * leaves work to the other), the one that packs least; on a tie, the more blocks. A weight
 * gradient's C^T (1152 x 128, K = pixels) so splits its rows only: split in columns too, as
 * a columns-first rule did, its long A was packed twice.
 */
static void gemm_split_grid(struct gemm_split *s, int tasks, int threads)
{
    if (tasks < 1)
        tasks = 1;
    const int tn_max = gemm_min(s->units_n, tasks);
    int most = 1;
    for (int tn = 1; tn <= tn_max; tn++) {
        const int blocks = tn * gemm_min(s->units_m, tasks / tn);
        most = blocks > most ? blocks : most;
    }
    const int least = gemm_min(most, gemm_min(tasks, 2 * threads));
    long long best = -1;
    s->tm = s->tn = 1;
    for (int tn = 1; tn <= tn_max; tn++) {
        const int tm = gemm_min(s->units_m, tasks / tn);
        const long long packed = (long long)tn * s->m + (long long)tm * s->n;
        if (tm * tn < least)
            continue;
        if (best < 0 || packed < best || (packed == best && tm * tn > s->tm * s->tn)) {
            best = packed;
            s->tm = tm;
            s->tn = tn;
        }
    }
}

/* The product serially, by gemm_run or (src not NULL) gemm_src_run. */
static void gemm_one(enum dnn_gemm_kernel kernel, bool ta, bool tb, bool tc, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb,
                     const struct dnn_gemm_src *src, float beta, float *c, int ldc)
{
    if (src)
        gemm_src_run(kernel, m, n, k, a, lda, src, 0, c, ldc);
    else
        gemm_run(kernel, ta, tb, tc, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void gemm_par(const struct dnn_parallel *par, bool ta, bool tb, bool tc, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb,
                     const struct dnn_gemm_src *src, float beta, float *c, int ldc)
{
    const enum dnn_gemm_kernel kernel = dnn_gemm_kernel_best();
    const unsigned threads = dnn_parallel_threads(par);
    if (threads < 2 || m <= 0 || n <= 0 || k <= 0) {
        gemm_one(kernel, ta, tb, tc, m, n, k, alpha, a, lda, b, ldb, src, beta, c, ldc);
        return;
    }
    /* A few tasks per thread, so a thread the machine slows down leaves its share to the
     * others; but none smaller than DNN_GEMM_SPLIT_WORK. */
    const double work = (double)m * (double)n * (double)k;
    double want = work / DNN_GEMM_SPLIT_WORK;
    if (want > 4.0 * threads)
        want = 4.0 * threads;
    struct gemm_split s = {
        .kernel = kernel,
        .ta = ta,
        .tb = tb,
        .tc = tc,
        .m = m,
        .n = n,
        .k = k,
        .lda = lda,
        .ldb = ldb,
        .ldc = ldc,
        .alpha = alpha,
        .beta = beta,
        .a = a,
        .b = b,
        .c = c,
        .src = src,
        .units_m = (m + DNN_GEMM_SPLIT_M - 1) / DNN_GEMM_SPLIT_M,
        .units_n = (n + DNN_GEMM_SPLIT_N - 1) / DNN_GEMM_SPLIT_N,
    };
    gemm_split_grid(&s, (int)want, (int)threads);
    if (s.tm * s.tn < 2) {
        gemm_one(kernel, ta, tb, tc, m, n, k, alpha, a, lda, b, ldb, src, beta, c, ldc);
        return;
    }
    dnn_parallel_for(par, (size_t)s.tm * (size_t)s.tn, gemm_split_task, &s);
}

void dnn_gemm_par(const struct dnn_parallel *par, bool ta, bool tb, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc)
{
    gemm_par(par, ta, tb, false, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc);
}

void dnn_gemm_par_tc(const struct dnn_parallel *par, bool ta, bool tb, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc)
{
    gemm_par(par, ta, tb, true, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc);
}

void dnn_gemm_src_par(const struct dnn_parallel *par, int m, int n, int k, const float *a, int lda,
                      const struct dnn_gemm_src *src, float *c, int ldc)
{
    gemm_par(par, false, false, false, m, n, k, 1, a, lda, NULL, 0, src, 0, c, ldc);
}

void dnn_gemm_src_with(enum dnn_gemm_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const struct dnn_gemm_src *src, float *c, int ldc)
{
    gemm_src_run(kernel, m, n, k, a, lda, src, 0, c, ldc);
}

void dnn_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
{
    dnn_gemm_with(dnn_gemm_kernel_best(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
