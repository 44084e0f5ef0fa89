/*
 * conv_sliding_kernel.h - the sliding-window convolution of conv_sliding.c, instantiated once
 * per instruction set. Included by conv_sliding.c only, with these macros defined:
 *   CS_SUFFIX       name suffix of the function made (generic, avx2)
 *   CS_ATTR         attributes of every function made (a target("...") or nothing)
 *   CS_MADD(c,a,b)  c + a * b on 8-lane vectors: one fused multiply-add, or a product then a
 *                   sum, exactly as the dnn_gemm kernel of the same instruction set does
 *
 * Every output element gets its k terms (k = channels*size*size, ordered as the rows of
 * im2col's column matrix: channel, then kernel row, then kernel column) added in increasing
 * order to a sum that starts at +0, the zeros of the padding included: the chain dnn_gemm
 * computes for output = weights * im2col(input) with beta 0, so the bits are the same.
 */

#define CS_CAT2(a, b) a##_##b
#define CS_CAT(a, b) CS_CAT2(a, b)
#define CS_FN(name) CS_CAT(name, CS_SUFFIX)

/*
 * One strip of CS_STRIP output columns of output row y for FB filters (FB a constant after
 * inlining, so the FB x CS_VECS sums stay in registers). padded: the zero-padded input,
 * channels x ph x pw; w: FB filters' weights, k apart; out: the FB output planes, oh*ow
 * apart, at row y, column x0; cols: how many of the strip's columns are real (1..CS_STRIP).
 */
CS_ATTR static inline __attribute__((always_inline)) void
CS_FN(cs_strip)(int fb, int channels, int ks, int ph, int pw, const float *padded, const float *w,
                size_t k, float *out, size_t plane, int cols)
{
    cs_vec sum[CS_MAX_FB][CS_VECS];
    CS_UNROLL_ALL
    for (int f = 0; f < fb; f++)
        CS_UNROLL_ALL
    for (int v = 0; v < CS_VECS; v++)
        sum[f][v] = (cs_vec){0};
    for (int c = 0; c < channels; c++) {
        for (int ky = 0; ky < ks; ky++) {
            const float *row = padded + ((size_t)c * (size_t)ph + (size_t)ky) * (size_t)pw;
            const float *wp = w + ((size_t)c * (size_t)ks + (size_t)ky) * (size_t)ks;
            for (int kx = 0; kx < ks; kx++) {
                cs_vec x[CS_VECS];
                CS_UNROLL_ALL
                for (int v = 0; v < CS_VECS; v++)
                    memcpy(&x[v], row + kx + v * CS_LANES, sizeof x[v]);
                CS_UNROLL_ALL
                for (int f = 0; f < fb; f++) {
                    const float a = wp[(size_t)f * k + (size_t)kx];
                    const cs_vec av = {a, a, a, a, a, a, a, a};
                    CS_UNROLL_ALL
                    for (int v = 0; v < CS_VECS; v++)
                        sum[f][v] = CS_MADD(sum[f][v], av, x[v]);
                }
            }
        }
    }
    CS_UNROLL_ALL
    for (int f = 0; f < fb; f++) {
        float *o = out + (size_t)f * plane;
        if (cols == CS_STRIP) {
            CS_UNROLL_ALL
            for (int v = 0; v < CS_VECS; v++)
                memcpy(o + v * CS_LANES, &sum[f][v], sizeof sum[f][v]);
        } else {
            float tmp[CS_STRIP];
            memcpy(tmp, sum[f], sizeof tmp);
            memcpy(o, tmp, (size_t)cols * sizeof(float));
        }
    }
}

/* All output rows and strips for FB filters. */
CS_ATTR static inline __attribute__((always_inline)) void
CS_FN(cs_filters)(int fb, int channels, int ks, int oh, int ow, int ph, int pw, const float *padded,
                  const float *w, size_t k, float *out)
{
    const size_t plane = (size_t)oh * (size_t)ow;
    for (int y = 0; y < oh; y++)
        for (int x0 = 0; x0 < ow; x0 += CS_STRIP)
            CS_FN(cs_strip)
    (fb, channels, ks, ph, pw, padded + (size_t)y * (size_t)pw + (size_t)x0, w, k,
     out + (size_t)y * (size_t)ow + (size_t)x0, plane, ow - x0 < CS_STRIP ? ow - x0 : CS_STRIP);
}

CS_ATTR static void CS_FN(cs_forward)(int filters, int channels, int ks, int oh, int ow, int ph,
                                      int pw, const float *padded, const float *w, float *out)
{
    const size_t k = (size_t)channels * (size_t)ks * (size_t)ks;
    const size_t plane = (size_t)oh * (size_t)ow;
    int f = 0;
    for (; f + CS_MAX_FB <= filters; f += CS_MAX_FB)
        CS_FN(cs_filters)
    (CS_MAX_FB, channels, ks, oh, ow, ph, pw, padded, w + (size_t)f * k, k,
     out + (size_t)f * plane);
    switch (filters - f) {
    case 3:
        CS_FN(cs_filters)
        (3, channels, ks, oh, ow, ph, pw, padded, w + (size_t)f * k, k, out + (size_t)f * plane);
        break;
    case 2:
        CS_FN(cs_filters)
        (2, channels, ks, oh, ow, ph, pw, padded, w + (size_t)f * k, k, out + (size_t)f * plane);
        break;
    case 1:
        CS_FN(cs_filters)
        (1, channels, ks, oh, ow, ph, pw, padded, w + (size_t)f * k, k, out + (size_t)f * plane);
        break;
    default:
        break;
    }
}

#undef CS_FN
#undef CS_CAT
#undef CS_CAT2
