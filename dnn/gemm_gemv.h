/*
 * gemm_gemv.h - dnn_gemm's products with one row of C (m == 1, a batch of one through a
 * connected layer), C(0,j) += a(p) * B(p,j), streaming B once; and with up to GV_MR rows of C
 * and B transposed (a weight gradient of LeNet's 6 filters: 6 x 75, 784 terms).
 *
 * Included by gemm.c only, right after gemm_kernel.h (whose gk_transpose it uses) and with
 * the same macros defined (GK_SUFFIX, GK_ATTR, GK_LANES, GK_MADD); GK_LANES must be 4 or 8.
 * The register-blocked kernel would compute GK_MR rows of C for the one that exists and pack
 * all of B on the way; here every vector lane holds a different column j of C, so every lane
 * does useful work and B is read once, where it is, transposed in registers when it is stored
 * transposed.
 *
 * Each element still gets its k terms added straight into it, c = c + a(i,p) * B(p,j) in
 * increasing p with a(i,p) = alpha * A(i,p) rounded to float, through the same GK_MADD as the
 * kernel of gemm_kernel.h: the same bits, whatever the sizes, strides or alignment.
 */

#define GV_CAT2(a, b) a##_##b
#define GV_CAT(a, b) GV_CAT2(a, b)
#define GV_FN(name) GV_CAT(name, GK_SUFFIX)
#define GV_V GV_FN(gv_vec)
/* Rows of C at most (6 sums, 8 transposed terms and their temporaries fill the 16 vector
 * registers of AVX2), and terms per chunk of A scaled by alpha (6 KiB of stack). */
#define GV_MR 6
#define GV_KC 256

typedef float GV_V __attribute__((vector_size(GK_LANES * sizeof(float))));
#if GK_LANES == 4
#define GV_SPLAT(x) ((GV_V)DNN_GEMM_SPLAT4(x))
#else
#define GV_SPLAT(x) ((GV_V)DNN_GEMM_SPLAT8(x))
#endif

/*
 * B transposed, for `rows` rows of C (1 .. GV_MR, a constant once inlined):
 * c[r*sci + j*scj] += ap[r*sa + p] * b[j*sbj + p] for r < rows, j < n, p < kc (ap: terms of
 * A, alpha applied).
 * Blocks of GK_LANES columns of C, i.e. rows of B as stored, each read sequentially:
 * GK_LANES terms of GK_LANES rows are loaded and transposed, so that a vector holds one term
 * of GK_LANES columns, and serves every row of C. Missing columns of the last block repeat
 * its first row of B and are not written back.
 */
GK_ATTR static inline __attribute__((always_inline)) void
GV_FN(gv_rows_t)(const int rows, int n, int kc, const float *restrict ap, size_t sa, const float *b,
                 size_t sbj, float *c, size_t sci, size_t scj)
{
    for (int j0 = 0; j0 < n; j0 += GK_LANES) {
        const int nr = gemm_min(GK_LANES, n - j0);
        const float *row[GK_LANES];
        for (int q = 0; q < GK_LANES; q++)
            row[q] = b + (size_t)(j0 + (q < nr ? q : 0)) * sbj;
        GV_V acc[GV_MR];
        DNN_GEMM_UNROLL_ALL
        for (int r = 0; r < rows; r++) {
            float t[GK_LANES];
            for (int q = 0; q < GK_LANES; q++)
                t[q] = q < nr ? c[(size_t)r * sci + (size_t)(j0 + q) * scj] : 0;
            memcpy(&acc[r], t, sizeof t);
        }
        int p = 0;
        for (; p + GK_LANES <= kc; p += GK_LANES) {
            GV_V v[GK_LANES];
            DNN_GEMM_UNROLL_ALL
            for (int q = 0; q < GK_LANES; q++)
                memcpy(&v[q], row[q] + p, sizeof(GV_V));
            GV_FN(gk_transpose)(v); /* from gemm_kernel.h */
            DNN_GEMM_UNROLL_ALL
            for (int t = 0; t < GK_LANES; t++) {
                DNN_GEMM_UNROLL_ALL
                for (int r = 0; r < rows; r++)
                    acc[r] = GK_MADD(acc[r], GV_SPLAT(ap[(size_t)r * sa + (size_t)(p + t)]), v[t]);
            }
        }
        for (; p < kc; p++) {
            float col[GK_LANES];
            for (int q = 0; q < GK_LANES; q++)
                col[q] = row[q][p];
            GV_V bv;
            memcpy(&bv, col, sizeof bv);
            DNN_GEMM_UNROLL_ALL
            for (int r = 0; r < rows; r++)
                acc[r] = GK_MADD(acc[r], GV_SPLAT(ap[(size_t)r * sa + (size_t)p]), bv);
        }
        DNN_GEMM_UNROLL_ALL
        for (int r = 0; r < rows; r++) {
            float t[GK_LANES];
            memcpy(t, &acc[r], sizeof t);
            for (int q = 0; q < nr; q++)
                c[(size_t)r * sci + (size_t)(j0 + q) * scj] = t[q];
        }
    }
}

/* gv_rows_t with rows a constant in each branch, so that its loops over rows unroll and its
 * sums stay in registers. */
GK_ATTR static void GV_FN(gv_small_t)(int rows, int n, int kc, const float *restrict ap, size_t sa,
                                      const float *b, size_t sbj, float *c, size_t sci, size_t scj)
{
    switch (rows) {
    case 1:
        GV_FN(gv_rows_t)(1, n, kc, ap, sa, b, sbj, c, sci, scj);
        break;
    case 2:
        GV_FN(gv_rows_t)(2, n, kc, ap, sa, b, sbj, c, sci, scj);
        break;
    case 3:
        GV_FN(gv_rows_t)(3, n, kc, ap, sa, b, sbj, c, sci, scj);
        break;
    case 4:
        GV_FN(gv_rows_t)(4, n, kc, ap, sa, b, sbj, c, sci, scj);
        break;
    case 5:
        GV_FN(gv_rows_t)(5, n, kc, ap, sa, b, sbj, c, sci, scj);
        break;
    default:
        GV_FN(gv_rows_t)(GV_MR, n, kc, ap, sa, b, sbj, c, sci, scj);
        break;
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
 * C(i,j) += (alpha * A(i,p)) * B(p,j) for i < m, j < n, p < k, with A(i,p) = a[i*sai + p*sap],
 * B(p,j) = b[p*sbp + j*sbj] and C(i,j) = c[i*sci + j*scj], for m <= GV_MR rows, B transposed
 * (sbp == 1) or, for m == 1, C by rows (scj == 1). Says whether it did it: false (nothing
 * done) otherwise, which the caller leaves to the kernel. With alpha != 1 or A transposed,
 * the terms are taken in chunks of GV_KC, scaled by alpha into a buffer on the stack;
 * otherwise in one pass, A read where it is.
 */
GK_ATTR static bool GV_FN(gv_gemv)(int m, int n, int k, float alpha, const float *a, size_t sai,
                                   size_t sap, const float *b, size_t sbp, size_t sbj, float *c,
                                   size_t sci, size_t scj)
{
    if (m < 1 || m > GV_MR || (sbp != 1 && (m != 1 || scj != 1)))
        return false;
    const bool scale = !dnn_feq(alpha, 1);
    if (!scale && sap == 1) {
        /* A's terms as they are: one pass, each row of B read from start to end. */
        if (sbp == 1)
            GV_FN(gv_small_t)(m, n, k, a, sai, b, sbj, c, sci, scj);
        else
            GV_FN(gv_gemv_n)(n, k, a, b, sbp, c);
        return true;
    }
    float buf[GV_MR * GV_KC];
    for (int p0 = 0; p0 < k; p0 += GV_KC) {
        const int kc = gemm_min(GV_KC, k - p0);
        /* alpha * A(i,p) rounded to float, as gk_micro_loop and gk_pack_a compute it */
        for (int i = 0; i < m; i++) {
            const float *ai = a + (size_t)i * sai + (size_t)p0 * sap;
            for (int p = 0; p < kc; p++)
                buf[i * kc + p] = scale ? alpha * ai[(size_t)p * sap] : ai[(size_t)p * sap];
        }
        if (sbp == 1)
            GV_FN(gv_small_t)(m, n, kc, buf, (size_t)kc, b + (size_t)p0, sbj, c, sci, scj);
        else
            GV_FN(gv_gemv_n)(n, kc, buf, b + (size_t)p0 * sbp, sbp, c);
    }
    return true;
}

#undef GV_SPLAT
#undef GV_KC
#undef GV_MR
#undef GV_V
#undef GV_FN
#undef GV_CAT
#undef GV_CAT2
