/*
 * gemm_gemv.h - dnn_gemm's products with one row of C (m == 1, a batch of one through a
 * connected layer): C(0,j) += a(p) * B(p,j), streaming B once.
 *
 * Included by gemm.c only, after gemm_kernel.h and with the same macros defined (GK_SUFFIX,
 * GK_ATTR, GK_LANES, GK_MADD, GK_SPLAT); GK_LANES must be 4 or 8. The register-blocked kernel
 * would compute GK_MR rows of C for the one that exists and pack all of B on the way; here
 * every vector lane holds a different column j of C, so every lane does useful work and B is
 * read once, where it is.
 *
 * Each element still gets its k terms added straight into it, c = c + a(p) * b(p,j) in
 * increasing p with a(p) = alpha * A(0,p) rounded to float, through the same GK_MADD as the
 * kernel of gemm_kernel.h: the same bits, whatever the sizes, strides or alignment.
 */

#define GV_CAT2(a, b) a##_##b
#define GV_CAT(a, b) GV_CAT2(a, b)
#define GV_FN(name) GV_CAT(name, GK_SUFFIX)
#define GV_V GV_FN(gv_vec)
/* Columns of C per block of the transposed case: two vectors, so that two independent chains
 * of multiply-adds hide each other's latency. */
#define GV_NA 1
#define GV_COLS (GV_NA * GK_LANES)

typedef float GV_V __attribute__((vector_size(GK_LANES * sizeof(float))));
#if GK_LANES == 4
#define GV_SPLAT(x) ((GV_V)DNN_GEMM_SPLAT4(x))
#else
#define GV_SPLAT(x) ((GV_V)DNN_GEMM_SPLAT8(x))
#endif

/* Transposes the GK_LANES x GK_LANES block r in registers: on entry r[q] holds GK_LANES
 * consecutive terms of column q, on return r[s] holds term s of every column. */
GK_ATTR static inline __attribute__((always_inline)) void GV_FN(gv_transpose)(GV_V r[GK_LANES])
{
#if GK_LANES == 4
    const GV_V t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
    const GV_V t1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
    const GV_V t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
    const GV_V t3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    r[1] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    r[2] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
#elif GK_LANES == 8
    /* Pairs of columns interleaved, then pairs of pairs, then the 128-bit halves swapped:
     * the three steps of an 8 x 8 transpose on AVX (unpck, shufps, vperm2f128). */
    GV_V t[8], u[8];
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
#else
#error "gemm_gemv.h: GK_LANES must be 4 or 8"
#endif
}

/*
 * B transposed: c[j*scj] += ap[p] * b[j*sbj + p] for j < n, p < kc (ap: the kc terms of A,
 * alpha applied). Blocks of GV_COLS columns of C, i.e. rows of B as stored, each read
 * sequentially: GK_LANES terms of GK_LANES rows are loaded and transposed, so that a vector
 * holds one term of GK_LANES columns. Missing columns of the last block repeat its first
 * row of B and are not written back.
 */
GK_ATTR static void GV_FN(gv_gemv_t)(int n, int kc, const float *restrict ap, const float *b,
                                     size_t sbj, float *c, size_t scj)
{
    for (int j0 = 0; j0 < n; j0 += GV_COLS) {
        const int nr = gemm_min(GV_COLS, n - j0);
        const float *row[GV_COLS];
        float t[GV_COLS];
        for (int q = 0; q < GV_COLS; q++) {
            row[q] = b + (size_t)(j0 + (q < nr ? q : 0)) * sbj;
            t[q] = q < nr ? c[(size_t)(j0 + q) * scj] : 0;
        }
        GV_V acc[GV_NA];
        memcpy(acc, t, sizeof acc);
        int p = 0;
        for (; p + GK_LANES <= kc; p += GK_LANES) {
            DNN_GEMM_UNROLL_ALL
            for (int v = 0; v < GV_NA; v++) {
                GV_V r[GK_LANES];
                DNN_GEMM_UNROLL_ALL
                for (int q = 0; q < GK_LANES; q++)
                    memcpy(&r[q], row[v * GK_LANES + q] + p, sizeof(GV_V));
                GV_FN(gv_transpose)(r);
                DNN_GEMM_UNROLL_ALL
                for (int s = 0; s < GK_LANES; s++)
                    acc[v] = GK_MADD(acc[v], GV_SPLAT(ap[p + s]), r[s]);
            }
        }
        for (; p < kc; p++) {
            DNN_GEMM_UNROLL_ALL
            for (int v = 0; v < GV_NA; v++) {
                float col[GK_LANES];
                for (int q = 0; q < GK_LANES; q++)
                    col[q] = row[v * GK_LANES + q][p];
                GV_V bv;
                memcpy(&bv, col, sizeof bv);
                acc[v] = GK_MADD(acc[v], GV_SPLAT(ap[p]), bv);
            }
        }
        memcpy(t, acc, sizeof t);
        for (int q = 0; q < nr; q++)
            c[(size_t)(j0 + q) * scj] = t[q];
    }
}

/*
 * B not transposed, C by rows: c[j] += ap[p] * b[p*sbp + j] for j < n, p < kc. Rows of B are
 * read sequentially, four terms at a time into each vector of C; C's block of GV_NC columns
 * stays in L1 between terms. The last columns (n % GK_LANES) go through a vector copy.
 */
#define GV_NC 1024
GK_ATTR static void GV_FN(gv_gemv_n)(int n, int kc, const float *restrict ap, const float *b,
                                     size_t sbp, float *c)
{
    for (int j1 = 0; j1 < n; j1 += GV_NC) {
        const int nc = gemm_min(GV_NC, n - j1);
        const int nv = nc / GK_LANES * GK_LANES;
        float *cj = c + j1;
        for (int p0 = 0; p0 < kc; p0 += 4) {
            const int pc = gemm_min(4, kc - p0);
            const float *br[4];
            GV_V av[4];
            for (int s = 0; s < 4; s++) {
                br[s] = b + (size_t)(p0 + (s < pc ? s : 0)) * sbp + j1;
                av[s] = GV_SPLAT(ap[p0 + (s < pc ? s : 0)]);
            }
            if (pc == 4) {
                for (int j = 0; j < nv; j += GK_LANES) {
                    GV_V x, y[4];
                    memcpy(&x, cj + j, sizeof x);
                    DNN_GEMM_UNROLL_ALL
                    for (int s = 0; s < 4; s++)
                        memcpy(&y[s], br[s] + j, sizeof(GV_V));
                    DNN_GEMM_UNROLL_ALL
                    for (int s = 0; s < 4; s++)
                        x = GK_MADD(x, av[s], y[s]);
                    memcpy(cj + j, &x, sizeof x);
                }
            } else {
                for (int j = 0; j < nv; j += GK_LANES) {
                    GV_V x, y;
                    memcpy(&x, cj + j, sizeof x);
                    for (int s = 0; s < pc; s++) {
                        memcpy(&y, br[s] + j, sizeof y);
                        x = GK_MADD(x, av[s], y);
                    }
                    memcpy(cj + j, &x, sizeof x);
                }
            }
            if (nv < nc) {
                float tx[GK_LANES] = {0}, ty[GK_LANES] = {0};
                const size_t rest = (size_t)(nc - nv) * sizeof(float);
                GV_V x, y;
                memcpy(tx, cj + nv, rest);
                memcpy(&x, tx, sizeof x);
                for (int s = 0; s < pc; s++) {
                    memcpy(ty, br[s] + nv, rest);
                    memcpy(&y, ty, sizeof y);
                    x = GK_MADD(x, av[s], y);
                }
                memcpy(tx, &x, sizeof x);
                memcpy(cj + nv, tx, rest);
            }
        }
    }
}
#undef GV_NC

/*
 * C(0,j) += (alpha * A(0,p)) * B(p,j) for j < n, p < k, with A(0,p) = a[p*sap],
 * B(p,j) = b[p*sbp + j*sbj] and C(0,j) = c[j*scj]. Says whether it did it: false (nothing
 * done) when B is not transposed and C is (scj != 1), which the caller leaves to the kernel.
 * With alpha != 1 or A transposed, the terms are taken in chunks of GV_KC, scaled by alpha
 * into a buffer on the stack; otherwise in one pass, A read where it is.
 */
#define GV_KC 1024
GK_ATTR static bool GV_FN(gv_gemv)(int n, int k, float alpha, const float *a, size_t sap,
                                   const float *b, size_t sbp, size_t sbj, float *c, size_t scj)
{
    if (sbp != 1 && scj != 1)
        return false;
    const bool scale = !dnn_feq(alpha, 1);
    if (!scale && sap == 1) {
        /* A's terms as they are: one pass, each row of B read from start to end. */
        if (sbp == 1)
            GV_FN(gv_gemv_t)(n, k, a, b, sbj, c, scj);
        else
            GV_FN(gv_gemv_n)(n, k, a, b, sbp, c);
        return true;
    }
    float buf[GV_KC];
    for (int p0 = 0; p0 < k; p0 += GV_KC) {
        const int kc = gemm_min(GV_KC, k - p0);
        const float *ap = a + (size_t)p0 * sap;
        /* alpha * A(0,p) rounded to float, as gk_micro_loop and gk_pack_a compute it */
        for (int p = 0; p < kc; p++)
            buf[p] = scale ? alpha * ap[(size_t)p * sap] : ap[(size_t)p * sap];
        ap = buf;
        if (sbp == 1)
            GV_FN(gv_gemv_t)(n, kc, ap, b + (size_t)p0, sbj, c, scj);
        else
            GV_FN(gv_gemv_n)(n, kc, ap, b + (size_t)p0 * sbp, sbp, c);
    }
    return true;
}
#undef GV_KC

#undef GV_SPLAT
#undef GV_COLS
#undef GV_NA
#undef GV_V
#undef GV_FN
#undef GV_CAT
#undef GV_CAT2
