/*
 * gemm_kernel.h - one register-blocked GEMM, instantiated once per instruction set.
 *
 * Included by gemm.c only, several times, each time with these macros defined:
 *   GK_SUFFIX       name suffix of the functions made (generic, avx2, avx512)
 *   GK_ATTR         attributes of every function made (a target("...") or nothing)
 *   GK_LANES        floats per vector (4, 8, 16)
 *   GK_MR           rows of C per micro-tile
 *   GK_NV           vectors per row of a micro-tile (GK_NR = GK_NV * GK_LANES columns)
 *   GK_MADD(c,a,b)  c + a * b on vectors: one fused multiply-add, or a product then a sum
 *   GK_SPLAT(x)     a vector with x in every lane (DNN_GEMM_SPLAT4/8/16)
 * and the block sizes DNN_GEMM_BLOCK, DNN_GEMM_NC_TA and the helpers of gemm.c visible.
 *
 * Every element of C gets its k terms added straight into it, c = c + a(i,p) * b(p,j) in
 * increasing p, with a(i,p) = alpha * A(i,p) rounded to float. Cache blocks and tiles only
 * choose which elements are worked on together; the edges run the same micro-kernel on a copy
 * of the tile. So an element's value depends only on its own inputs and on GK_MADD, never on
 * its position, the alignment of the arrays or the shape of the blocks.
 */

#define GK_CAT2(a, b) a##_##b
#define GK_CAT(a, b) GK_CAT2(a, b)
#define GK_FN(name) GK_CAT(name, GK_SUFFIX)
#define GK_NR (GK_NV * GK_LANES)
#define GK_V GK_FN(gk_vec)

typedef float GK_V __attribute__((vector_size(GK_LANES * sizeof(float))));

_Static_assert(DNN_GEMM_NC_TA % GK_NR == 0 && DNN_GEMM_BLOCK % DNN_GEMM_NC_TA == 0 &&
                   DNN_GEMM_BLOCK % GK_NR == 0 && DNN_GEMM_NN_NC % GK_NR == 0,
               "a packed block holds whole micro-panels, in every shape");

#if DNN_GEMM_GEMV && (GK_LANES == 4 || GK_LANES == 8)
/* Transposes the GK_LANES x GK_LANES block r in registers: on entry r[q] holds GK_LANES
 * consecutive terms of column q, on return r[s] holds term s of every column. */
GK_ATTR static inline __attribute__((always_inline)) void GK_FN(gk_transpose)(GK_V r[GK_LANES])
{
#if GK_LANES == 4
    const GK_V t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
    const GK_V t1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
    const GK_V t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
    const GK_V t3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    r[1] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    r[2] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
#elif GK_LANES == 8
    /* Pairs of columns interleaved, then pairs of pairs, then the 128-bit halves swapped:
     * the three steps of an 8 x 8 transpose on AVX (unpck, shufps, vperm2f128). */
    GK_V t[8], u[8];
    DNN_GEMM_UNROLL_ALL
    for (int q = 0; q < 8; q += 2) {
        t[q] = __builtin_shufflevector(r[q], r[q + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[q + 1] = __builtin_shufflevector(r[q], r[q + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    DNN_GEMM_UNROLL_ALL
    for (int h = 0; h < 8; h += 4) {
        u[h + 0] = __builtin_shufflevector(t[h], t[h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[h + 1] = __builtin_shufflevector(t[h], t[h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[h + 2] = __builtin_shufflevector(t[h + 1], t[h + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[h + 3] = __builtin_shufflevector(t[h + 1], t[h + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    DNN_GEMM_UNROLL_ALL
    for (int s = 0; s < 4; s++) {
        r[s] = __builtin_shufflevector(u[s], u[s + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[s + 4] = __builtin_shufflevector(u[s], u[s + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
#endif
}

/*
 * gemm_pack_b for B transposed (B(p,j) = b[j*sbj + p]): whole micro-panels GK_LANES terms at
 * a time, GK_LANES rows of B loaded and transposed in registers and stored as panel rows. A
 * scalar transposing copy cost as much as the product for a few rows of A (perf).
 */
GK_ATTR static void GK_FN(gk_pack_bt)(int kc, int nc, const float *b, size_t sbj, float *bp)
{
    for (int q0 = 0; q0 < nc; q0 += GK_NR) {
        const int w = gemm_min(GK_NR, nc - q0);
        float *panel = bp + (size_t)q0 * kc;
        const float *src = b + (size_t)q0 * sbj;
        int p = 0;
        if (w == GK_NR) {
            for (; p + GK_LANES <= kc; p += GK_LANES) {
                DNN_GEMM_UNROLL_ALL
                for (int v = 0; v < GK_NV; v++) {
                    GK_V r[GK_LANES];
                    DNN_GEMM_UNROLL_ALL
                    for (int q = 0; q < GK_LANES; q++)
                        memcpy(&r[q], src + (size_t)(v * GK_LANES + q) * sbj + (size_t)p,
                               sizeof(GK_V));
                    GK_FN(gk_transpose)(r);
                    DNN_GEMM_UNROLL_ALL
                    for (int t = 0; t < GK_LANES; t++)
                        memcpy(panel + (size_t)(p + t) * GK_NR + (size_t)v * GK_LANES, &r[t],
                               sizeof(GK_V));
                }
            }
        }
        for (; p < kc; p++)
            for (int q = 0; q < GK_NR; q++)
                panel[(size_t)p * GK_NR + q] = q < w ? src[(size_t)q * sbj + (size_t)p] : 0;
    }
}
#define GK_PACK_B(kc, nc, b, sbp, sbj, bp)                                                         \
    ((sbp) == 1 && (sbj) != 1 ? GK_FN(gk_pack_bt)((kc), (nc), (b), (sbj), (bp))                    \
                              : gemm_pack_b((kc), (nc), GK_NR, (b), (sbp), (sbj), (bp)))
#else
#define GK_PACK_B(kc, nc, b, sbp, sbj, bp) gemm_pack_b((kc), (nc), GK_NR, (b), (sbp), (sbj), (bp))
#endif

/*
 * The micro-kernel: the GK_MR x GK_NR tile c (row stride ldc), or +0 in every element when
 * zero (c is then only written: as if C had been cleared first, the same bits), gets, for
 * p = 0 .. kc-1,
 * c[r][q] += a(r,p) * bp[p*sbp + q] (sbp = GK_NR for a packed micro-panel), where a(r,p) = alpha *
 * ar[r][p*sap], or the load itself when !scale (alpha == 1, as alpha * x == x then). The tile's
 * sums live in registers during the loop. Inlined twice with scale a constant, so the loop holds no
 * test of alpha.
 */
GK_ATTR static inline __attribute__((always_inline)) void
GK_FN(gk_micro_loop)(bool scale, bool zero, int kc, float alpha, const float *const ar[GK_MR],
                     size_t sap, const float *restrict bp, size_t sbp, float *restrict c,
                     size_t ldc)
{
    GK_V acc[GK_MR][GK_NV];
    DNN_GEMM_UNROLL_ALL
    for (int r = 0; r < GK_MR; r++) {
        DNN_GEMM_UNROLL_ALL
        for (int v = 0; v < GK_NV; v++) {
            if (zero)
                acc[r][v] = (GK_V){0}; /* all bits zero: +0.0f */
            else
                memcpy(&acc[r][v], c + (size_t)r * ldc + (size_t)v * GK_LANES, sizeof(GK_V));
        }
    }
    for (int p = 0; p < kc; p++) {
        GK_V bv[GK_NV];
        DNN_GEMM_UNROLL_ALL
        for (int v = 0; v < GK_NV; v++)
            memcpy(&bv[v], bp + (size_t)p * sbp + (size_t)v * GK_LANES, sizeof(GK_V));
        DNN_GEMM_UNROLL_ALL
        for (int r = 0; r < GK_MR; r++) {
            const float x = scale ? alpha * ar[r][(size_t)p * sap] : ar[r][(size_t)p * sap];
            /* Every lane a copy of x (a sum such as 0 + x would turn -0 into +0). */
            const GK_V av = GK_SPLAT(x);
            DNN_GEMM_UNROLL_ALL
            for (int v = 0; v < GK_NV; v++)
                acc[r][v] = GK_MADD(acc[r][v], av, bv[v]);
        }
    }
    DNN_GEMM_UNROLL_ALL
    for (int r = 0; r < GK_MR; r++) {
        DNN_GEMM_UNROLL_ALL
        for (int v = 0; v < GK_NV; v++)
            memcpy(c + (size_t)r * ldc + (size_t)v * GK_LANES, &acc[r][v], sizeof(GK_V));
    }
}

GK_ATTR static void GK_FN(gk_micro)(bool zero, int kc, float alpha, const float *const ar[GK_MR],
                                    size_t sap, const float *restrict bp, size_t sbp,
                                    float *restrict c, size_t ldc)
{
    if (dnn_feq(alpha, 1))
        GK_FN(gk_micro_loop)(false, zero, kc, alpha, ar, sap, bp, sbp, c, ldc);
    else
        GK_FN(gk_micro_loop)(true, zero, kc, alpha, ar, sap, bp, sbp, c, ldc);
}

/*
 * One tile of C at rows i0 .. i0+mr-1 and columns of one packed micro-panel (nr of them
 * real), starting from +0 rather than C when zero. A full tile is worked in place; an edge
 * tile through a GK_MR x GK_NR copy, whose missing rows repeat row 0 of A and whose missing
 * columns meet the zeros of the packing; only the mr x nr real elements are written back.
 */
GK_ATTR static void GK_FN(gk_tile)(bool zero, int mr, int nr, int kc, float alpha, const float *a,
                                   size_t sai, size_t sap, const float *bp, size_t sbp, float *c,
                                   size_t sci, size_t scj)
{
    const float *ar[GK_MR];
    for (int r = 0; r < GK_MR; r++)
        ar[r] = a + (size_t)(r < mr ? r : 0) * sai;
    if (mr == GK_MR && nr == GK_NR && scj == 1) {
        GK_FN(gk_micro)(zero, kc, alpha, ar, sap, bp, sbp, c, sci);
        return;
    }
    float t[GK_MR * GK_NR];
    if (!zero && (mr < GK_MR || nr < GK_NR)) /* an edge: the rest of the tile must hold numbers */
        memset(t, 0, sizeof t);
    if (!zero)
        gemm_tile_in(mr, nr, GK_NR, c, sci, scj, t);
    GK_FN(gk_micro)(zero, kc, alpha, ar, sap, bp, sbp, t, GK_NR);
    gemm_tile_out(mr, nr, GK_NR, t, c, sci, scj);
}

/*
 * Asks for the first micro-tile's worth of rows of C at c (rows of them, row stride sci) to
 * be brought into cache: the tile gk_gemm works next, whose first loads would otherwise wait
 * for memory (a convolution's weight gradient adds 64 terms into each tile of a 9.4 MB C).
 * Only for C stored by rows; a hint, which changes no value.
 */
GK_ATTR static inline __attribute__((always_inline)) void
GK_FN(gk_prefetch_c)(const float *c, int rows, size_t sci, size_t scj)
{
    if (scj != 1)
        return;
    for (int r = 0; r < rows; r++) {
        __builtin_prefetch(c + (size_t)r * sci, 1);
        __builtin_prefetch(c + (size_t)r * sci + GK_NR - 1, 1);
    }
}

/*
 * The tiles of C at rows i0 .. i0+mr-1 (row stride sci) against the nc columns packed at bp
 * (micro-panels of kc terms, as gemm_pack_b): gk_tile for each, but with A's row pointers set
 * up and alpha tested once for the whole row, and the panel stride a constant. For short
 * products (LeNet's input delta: 6 terms) the per-tile setup cost as much as the tile.
 */
GK_ATTR static void GK_FN(gk_tile_row)(bool zero, int mr, int nc, int kc, float alpha,
                                       const float *a, size_t sai, size_t sap, const float *bp,
                                       float *c, size_t sci, size_t scj)
{
    const int full = mr == GK_MR && scj == 1 ? nc / GK_NR * GK_NR : 0;
    const float *ar[GK_MR];
    for (int r = 0; r < GK_MR; r++)
        ar[r] = a + (size_t)r * sai;
    if (dnn_feq(alpha, 1)) {
        for (int q0 = 0; q0 < full; q0 += GK_NR)
            GK_FN(gk_micro_loop)
        (false, zero, kc, alpha, ar, sap, bp + (size_t)q0 * kc, GK_NR, c + q0, sci);
    } else {
        for (int q0 = 0; q0 < full; q0 += GK_NR)
            GK_FN(gk_micro_loop)
        (true, zero, kc, alpha, ar, sap, bp + (size_t)q0 * kc, GK_NR, c + q0, sci);
    }
    for (int q0 = full; q0 < nc; q0 += GK_NR)
        GK_FN(gk_tile)
    (zero, mr, gemm_min(GK_NR, nc - q0), kc, alpha, a, sai, sap, bp + (size_t)q0 * kc, GK_NR,
     c + (size_t)q0 * scj, sci, scj);
}

/*
 * Packs the mr x kc tile of A at a (A(r,p) = a[r*sai + p*sap]) for the micro-kernel: term p's
 * GK_MR values, alpha * A(r,p) rounded to float as gk_micro_loop would compute them, sit side
 * by side at ap + p*GK_MR; missing rows repeat row 0, as in gk_tile.
 */
GK_ATTR static void GK_FN(gk_pack_a)(int mr, int kc, float alpha, const float *a, size_t sai,
                                     size_t sap, float *restrict ap)
{
    const bool scale = !dnn_feq(alpha, 1);
    size_t off[GK_MR];
    for (int r = 0; r < GK_MR; r++)
        off[r] = (size_t)(r < mr ? r : 0) * sai;
    /* Term by term: when A is transposed, a term's values share a cache line or two. */
    for (int p = 0; p < kc; p++) {
        const float *at = a + (size_t)p * sap;
        float *dst = ap + (size_t)p * GK_MR;
        if (scale) {
            DNN_GEMM_UNROLL_ALL
            for (int r = 0; r < GK_MR; r++)
                dst[r] = alpha * at[off[r]];
        } else {
            DNN_GEMM_UNROLL_ALL
            for (int r = 0; r < GK_MR; r++)
                dst[r] = at[off[r]];
        }
    }
}

/*
 * gk_pack_a for a whole block of A transposed (A(i,p) = a[p*sap + i]): the mc x kc block at a
 * into the tiles gk_pack_a makes, tile t (rows t*GK_MR ..) at ap + t*GK_MR*kc, the same
 * floats. A term's values of every tile are side by side in one row of the stored A^T, so the
 * block is copied DNN_GEMM_PACK_P terms at a time across all its tiles: those few rows stay in
 * L1 while every tile takes its part. Packed tile by tile, each tile walked kc rows lda floats
 * apart, a power-of-two lda kept the rows in two L1 sets, and every tile fetched each row
 * again from L2 (512^3 TN: the packing of A took 5% of the product, perf).
 */
GK_ATTR static void GK_FN(gk_pack_at)(int mc, int kc, float alpha, const float *a, size_t sap,
                                      float *restrict ap)
{
    const bool scale = !dnn_feq(alpha, 1);
    for (int p0 = 0; p0 < kc; p0 += DNN_GEMM_PACK_P) {
        const int pc = gemm_min(DNN_GEMM_PACK_P, kc - p0);
        for (int i0 = 0; i0 < mc; i0 += GK_MR) {
            const int mr = gemm_min(GK_MR, mc - i0);
            const float *src = a + (size_t)p0 * sap + (size_t)i0;
            float *dst = ap + (size_t)i0 * kc + (size_t)p0 * GK_MR;
            if (mr < GK_MR) { /* the last tile: missing rows repeat row 0, as gk_pack_a */
                GK_FN(gk_pack_a)(mr, pc, alpha, src, 1, sap, dst);
                continue;
            }
            for (int p = 0; p < pc; p++) {
                const float *at = src + (size_t)p * sap;
                float *d = dst + (size_t)p * GK_MR;
                if (scale) {
                    DNN_GEMM_UNROLL_ALL
                    for (int r = 0; r < GK_MR; r++)
                        d[r] = alpha * at[r];
                } else {
                    memcpy(d, at, GK_MR * sizeof(float));
                }
            }
        }
    }
}

/*
 * gemm_pack_b for B by rows (B(p,j) = b[p*sbp + j]), the micro-panels of a block many panels
 * wide: DNN_GEMM_PACK_P terms at a time across every panel, so that the rows of B are read
 * in order, a few at a time, rather than each panel walking kc rows sbp floats apart (the
 * same aliasing of L1 sets as gk_pack_at's). The same floats as gemm_pack_b. Both drivers use
 * it: gk_gemm_goto (TN) and gk_gemm's blocks of DNN_GEMM_NN_NC columns (NN, VGG-7's forward
 * with columns 1024 floats apart: 128 x 1024 x 1152 +9%, side by side in one process).
 */
GK_ATTR static void GK_FN(gk_pack_b_rows)(int kc, int nc, const float *b, size_t sbp,
                                          float *restrict bp)
{
    const int full = nc / GK_NR * GK_NR;
    for (int p0 = 0; p0 < kc; p0 += DNN_GEMM_PACK_P) {
        const int pc = gemm_min(DNN_GEMM_PACK_P, kc - p0);
        for (int q0 = 0; q0 < full; q0 += GK_NR) {
            const float *src = b + (size_t)p0 * sbp + (size_t)q0;
            float *panel = bp + (size_t)q0 * kc + (size_t)p0 * GK_NR;
            for (int p = 0; p < pc; p++)
                memcpy(panel + (size_t)p * GK_NR, src + (size_t)p * sbp, GK_NR * sizeof(float));
        }
    }
    if (full < nc) /* the last, partly zero panel */
        gemm_pack_b(kc, nc - full, GK_NR, b + full, sbp, 1, bp + (size_t)full * kc);
}

/* One tile of C (mr x nr real elements) from a tile of A packed by gk_pack_a, starting from
 * +0 rather than C when zero. */
GK_ATTR static void GK_FN(gk_tile_packed)(bool zero, int mr, int nr, int kc,
                                          const float *restrict ap, const float *bp, float *c,
                                          size_t sci, size_t scj)
{
    const float *ar[GK_MR];
    for (int r = 0; r < GK_MR; r++)
        ar[r] = ap + r;
    if (mr == GK_MR && nr == GK_NR && scj == 1) {
        /* The packed stride is a constant here, so term p's loads use fixed offsets. */
        GK_FN(gk_micro_loop)(false, zero, kc, 1, ar, GK_MR, bp, GK_NR, c, sci);
        return;
    }
    float t[GK_MR * GK_NR];
    if (!zero && (mr < GK_MR || nr < GK_NR)) /* an edge: the rest of the tile must hold numbers */
        memset(t, 0, sizeof t);
    if (!zero)
        gemm_tile_in(mr, nr, GK_NR, c, sci, scj, t);
    GK_FN(gk_micro_loop)(false, zero, kc, 1, ar, GK_MR, bp, GK_NR, t, GK_NR);
    gemm_tile_out(mr, nr, GK_NR, t, c, sci, scj);
}

/*
 * The same product, A transposed (A(i,p) = a[p*sap + i]), with both operands packed into
 * caller's memory, GotoBLAS's loop order: for each block of DNN_GEMM_GOTO_NC columns and
 * DNN_GEMM_GOTO_KC terms (in increasing p), B's block is packed once into bp (micro-panels, as
 * gemm_pack_b); for each block of DNN_GEMM_GOTO_MC rows, A's block is packed once into ap
 * (tiles, as gk_pack_a, by gk_pack_at) and then read
 * from L2 by every micro-panel of B. Neither operand is read where it is, so neither its
 * layout nor its leading dimension matters: with A transposed its rows are lda floats apart,
 * and a power-of-two lda puts the terms of a tile in a handful of L1 sets, where they keep
 * evicting each other. ap holds DNN_GEMM_GOTO_MC x min(k, KC) floats, bp min(k, KC) x
 * min(n, NC) rounded up to whole micro-panels; both 64-byte aligned. When zero, C's old
 * values are never read: the first block of terms starts every element from +0.
 */
GK_ATTR static void GK_FN(gk_gemm_goto)(bool zero, int m, int n, int k, float alpha, const float *a,
                                        size_t sap, const float *b, size_t sbp, size_t sbj,
                                        float *c, size_t sci, size_t scj, float *restrict ap,
                                        float *restrict bp)
{
    enum { MC = DNN_GEMM_GOTO_MC / GK_MR * GK_MR };
    for (int j1 = 0; j1 < n; j1 += DNN_GEMM_GOTO_NC) {
        const int nc = gemm_min(DNN_GEMM_GOTO_NC, n - j1);
        for (int p0 = 0; p0 < k; p0 += DNN_GEMM_GOTO_KC) {
            const int kc = gemm_min(DNN_GEMM_GOTO_KC, k - p0);
            if (sbj == 1)
                GK_FN(gk_pack_b_rows)(kc, nc, b + (size_t)p0 * sbp + (size_t)j1, sbp, bp);
            else
                GK_PACK_B(kc, nc, b + (size_t)p0 * sbp + (size_t)j1 * sbj, sbp, sbj, bp);
            for (int i1 = 0; i1 < m; i1 += MC) {
                const int mc = gemm_min(MC, m - i1);
                GK_FN(gk_pack_at)(mc, kc, alpha, a + (size_t)i1 + (size_t)p0 * sap, sap, ap);
                for (int j0 = 0; j0 < nc; j0 += GK_NR) {
                    const int nr = gemm_min(GK_NR, nc - j0);
                    for (int i0 = 0; i0 < mc; i0 += GK_MR) {
                        /* the next tile's C, unless it starts from +0 (as gk_gemm) */
                        if (!(zero && p0 == 0) && i1 + i0 + GK_MR < m)
                            GK_FN(gk_prefetch_c)
                        (c + (size_t)(i1 + i0 + GK_MR) * sci + (size_t)(j1 + j0) * scj,
                         gemm_min(GK_MR, m - i1 - i0 - GK_MR), sci, scj);
                        GK_FN(gk_tile_packed)
                        (zero && p0 == 0, gemm_min(GK_MR, mc - i0), nr, kc, ap + (size_t)i0 * kc,
                         bp + (size_t)j0 * kc,
                         c + (size_t)(i1 + i0) * sci + (size_t)(j1 + j0) * scj, sci, scj);
                    }
                }
            }
        }
    }
}

/*
 * C += op(A) op(B) with A(i,p) = a[i*sai + p*sap], B(p,j) = b[p*sbp + j*sbj] and
 * C(i,j) = c[i*sci + j*scj] (scj != 1: C is stored transposed, and every tile goes through a
 * copy). deep, when not NULL and A is not transposed, is a caller's buffer (64-byte aligned)
 * for a block of deep_k terms by deep_n columns (0: one micro-panel), larger than the stack's:
 * one micro-panel deeper than the stack's, for fewer passes over tiles whose copies cost (C
 * transposed), or DNN_GEMM_NN_NC columns by DNN_GEMM_NN_KC terms, so that each tile of A
 * passes several micro-panels while its rows stay in L1 (C by rows). For each block of columns and
 * terms (in increasing p), the block of B is packed into micro-panels on the stack, where it stays
 * in L1 while every row of A passes it; A is read where it is. A block is one micro-panel wide and
 * as deep as DNN_GEMM_BLOCK floats allow (fewer, longer micro-kernel runs), or DNN_GEMM_NC_TA
 * columns wide when A is transposed: a micro-kernel then reads one row of A per term, and fewer
 * rows keep its pages within the first-level TLB. When zero, C's old values are never read: the
 * first block of terms starts every element from +0, as if C had been cleared (beta == 0).
 * src, when not NULL (A not transposed), packs each block of B in place of gemm_pack_b, and
 * b is not read: B's column j is src's column jbase + j.
 */
GK_ATTR static void GK_FN(gk_gemm)(bool zero, int m, int n, int k, float alpha, const float *a,
                                   size_t sai, size_t sap, const float *b, size_t sbp, size_t sbj,
                                   float *c, size_t sci, size_t scj, float *deep, int deep_k,
                                   int deep_n, const struct dnn_gemm_src *src, int jbase)
{
    float stack_bp[DNN_GEMM_BLOCK] __attribute__((aligned(64)));
    const bool use_deep = deep && sap == 1;
    float *bp = use_deep ? deep : stack_bp;
    const int nb = use_deep && deep_n > 0 ? deep_n : sap == 1 ? GK_NR : DNN_GEMM_NC_TA;
    const int kb = use_deep ? deep_k : DNN_GEMM_BLOCK / nb;
    /* With few rows of A, a packed panel of B would serve one or two tiles only, and packing
     * it costs about as much as using it (LeNet's convolutions: 6 filters). Whole panels of B
     * not transposed are then read where they are, rows sbp floats apart (not when B exists
     * only as what src packs). */
    const bool b_in_place = !src && sap == 1 && sbj == 1 && m <= 2 * GK_MR;
    for (int j0 = 0; j0 < n; j0 += nb) {
        const int nc = gemm_min(nb, n - j0);
        if (b_in_place && nc == GK_NR) {
            for (int p0 = 0; p0 < k; p0 += kb) {
                const int kc = gemm_min(kb, k - p0);
                for (int i0 = 0; i0 < m; i0 += GK_MR) {
                    if (i0 + GK_MR < m)
                        GK_FN(gk_prefetch_c)
                    (c + (size_t)(i0 + GK_MR) * sci + (size_t)j0 * scj,
                     gemm_min(GK_MR, m - i0 - GK_MR), sci, scj);
                    GK_FN(gk_tile)
                    (zero && p0 == 0, gemm_min(GK_MR, m - i0), GK_NR, kc, alpha,
                     a + (size_t)i0 * sai + (size_t)p0 * sap, sai, sap, b + (size_t)p0 * sbp + j0,
                     sbp, c + (size_t)i0 * sci + (size_t)j0 * scj, sci, scj);
                }
            }
            continue;
        }
        for (int p0 = 0; p0 < k; p0 += kb) {
            const int kc = gemm_min(kb, k - p0);
            if (src)
                src->pack(src->ctx, p0, kc, jbase + j0, nc, GK_NR, bp);
            else if (sbj == 1 && nc > GK_NR) /* a block several panels wide: gk_pack_b_rows */
                GK_FN(gk_pack_b_rows)(kc, nc, b + (size_t)p0 * sbp + (size_t)j0, sbp, bp);
            else
                GK_PACK_B(kc, nc, b + (size_t)p0 * sbp + (size_t)j0 * sbj, sbp, sbj, bp);
            for (int i0 = 0; i0 < m; i0 += GK_MR) {
                if (i0 + GK_MR < m)
                    GK_FN(gk_prefetch_c)
                (c + (size_t)(i0 + GK_MR) * sci + (size_t)j0 * scj, gemm_min(GK_MR, m - i0 - GK_MR),
                 sci, scj);
                GK_FN(gk_tile_row)
                (zero && p0 == 0, gemm_min(GK_MR, m - i0), nc, kc, alpha,
                 a + (size_t)i0 * sai + (size_t)p0 * sap, sai, sap, bp,
                 c + (size_t)i0 * sci + (size_t)j0 * scj, sci, scj);
            }
        }
    }
}

#undef GK_PACK_B
#undef GK_V
#undef GK_NR
#undef GK_FN
#undef GK_CAT
#undef GK_CAT2
