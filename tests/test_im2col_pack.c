/*
 * test_im2col_pack.c - a convolution's columns packed straight from the images.
 *
 * dnn_im2col_pack must write, for any block of rows and columns and any panel width, exactly
 * the floats that packing the explicit column matrix (dnn_im2col_ld, images side by side)
 * would: the same bits, padding zeros included, and nothing past the block. The padded copy
 * (dnn_im2col_pad) read with pad 0 must give the same columns. And dnn_gemm_src_with /
 * dnn_gemm_src_par on those columns must equal dnn_gemm_with / dnn_gemm_par on the explicit
 * matrix bit for bit, for every kernel this CPU runs: the GEMM's contract (gemm.c) that the
 * partition tests rely on. At the network's level, a prediction (columns packed from the
 * image, one image at a time or lowered side by side) must give each convolution's output
 * the bits of a training forward pass (explicit columns kept for the backward pass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dnn/conv_lower.h"
#include "dnn/dnn_internal.h"
#include "tests/helpers/engine_inputs.h"

#define SENTINEL 12345.0f

struct spec {
    int images, channels, h, w, ksize, stride, pad, dilation;
};

static float *rand_floats(struct dnn_rng *rng, size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = dnn_rng_uniform(rng, -1, 1);
    return x;
}

static int extent(const struct spec *s, int size)
{
    return dnn_im2col_extent(size, s->ksize, s->stride, s->pad, s->dilation);
}

/* The explicit column matrix of all images side by side: k rows of images*n floats. */
static float *explicit_columns(const struct spec *s, const float *im, int *ld)
{
    const int n = extent(s, s->h) * extent(s, s->w), k = s->channels * s->ksize * s->ksize;
    const size_t in = (size_t)s->channels * (size_t)s->h * (size_t)s->w;
    *ld = s->images * n;
    float *cols = malloc((size_t)k * (size_t)*ld * sizeof(float));
    assert_non_null(cols);
    for (int b = 0; b < s->images; b++)
        dnn_im2col_ld(im + (size_t)b * in, s->channels, s->h, s->w, s->ksize, s->stride, s->pad,
                      s->dilation, cols + (size_t)b * (size_t)n, (size_t)*ld);
    return cols;
}

/* Packs the block (p0, kc, j0, nc) with panel width nr through src and from the explicit
 * matrix, and asserts both are the same bits, with nothing written past the block. */
static void check_block(const struct dnn_im2col_src *src, const float *cols, int ld, int p0, int kc,
                        int j0, int nc, int nr)
{
    const int panels = (nc + nr - 1) / nr;
    const size_t floats = (size_t)panels * (size_t)nr * (size_t)kc;
    float *got = malloc((floats + 1) * sizeof(float));
    float *want = malloc(floats * sizeof(float));
    assert_non_null(got);
    assert_non_null(want);
    for (size_t i = 0; i <= floats; i++)
        got[i] = SENTINEL;
    for (int t = 0; t < panels; t++)
        for (int p = 0; p < kc; p++)
            for (int q = 0; q < nr; q++) {
                const int j = t * nr + q;
                want[((size_t)t * (size_t)kc + (size_t)p) * (size_t)nr + (size_t)q] =
                    j < nc ? cols[(size_t)(p0 + p) * (size_t)ld + (size_t)(j0 + j)] : 0;
            }
    dnn_im2col_pack(src, p0, kc, j0, nc, nr, got);
    assert_memory_equal(got, want, floats * sizeof(float));
    assert_true(got[floats] == SENTINEL);
    free(got);
    free(want);
}

static const struct spec specs[] = {
    {1, 1, 5, 5, 3, 1, 1, 1},   {2, 2, 6, 7, 3, 1, 1, 1},   {3, 3, 8, 8, 3, 1, 1, 1},
    {2, 2, 9, 5, 3, 2, 1, 1},   {2, 1, 7, 7, 1, 1, 0, 1},   {2, 2, 6, 6, 1, 2, 0, 1},
    {1, 2, 7, 9, 5, 1, 2, 1},   {2, 1, 9, 9, 3, 1, 2, 2},   {2, 3, 4, 4, 2, 1, 0, 1},
    {3, 1, 3, 3, 3, 1, 2, 1},   {2, 2, 5, 11, 3, 3, 1, 1},  {4, 1, 2, 2, 3, 1, 1, 1},
    {2, 2, 32, 32, 3, 1, 1, 1}, {2, 2, 16, 16, 3, 1, 1, 1},
};

static void test_pack_matches_explicit_columns(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 7);
    const int widths[] = {4, 8, 16, 32};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const struct spec *s = &specs[i];
        const size_t in = (size_t)s->channels * (size_t)s->h * (size_t)s->w;
        float *im = rand_floats(&rng, in * (size_t)s->images);
        int ld = 0;
        float *cols = explicit_columns(s, im, &ld);
        const int k = s->channels * s->ksize * s->ksize;
        /* the padded copy, read with pad 0 */
        const size_t padded = dnn_im2col_padded_floats(s->channels, s->h, s->w, s->pad);
        float *pim = malloc(padded * (size_t)s->images * sizeof(float));
        assert_non_null(pim);
        for (int b = 0; b < s->images; b++)
            dnn_im2col_pad(im + (size_t)b * in, s->channels, s->h, s->w, s->pad,
                           (size_t)s->w + 2 * (size_t)s->pad, pim + (size_t)b * padded);
        const struct dnn_im2col_src plain = {im,   in,       s->images, s->channels, s->h,
                                             s->w, s->ksize, s->stride, s->pad,      s->dilation};
        const struct dnn_im2col_src pad0 = {
            pim,      padded,    s->images, s->channels, s->h + 2 * s->pad, s->w + 2 * s->pad,
            s->ksize, s->stride, 0,         s->dilation};
        for (int trial = 0; trial < 40; trial++) {
            const int nr = widths[trial % 4];
            const int p0 = (int)(dnn_rng_uniform(&rng, 0, 1) * (float)k) % k;
            const int kc = 1 + (int)(dnn_rng_uniform(&rng, 0, 1) * (float)(k - p0)) % (k - p0);
            const int j0 = trial == 0 ? 0 : (int)(dnn_rng_uniform(&rng, 0, 1) * (float)ld) % ld;
            const int nc =
                trial == 0 ? ld : 1 + (int)(dnn_rng_uniform(&rng, 0, 1) * 80.0f) % (ld - j0);
            check_block(&plain, cols, ld, trial == 0 ? 0 : p0, trial == 0 ? k : kc, j0, nc, nr);
            check_block(&pad0, cols, ld, p0, kc, j0, nc, nr);
        }
        free(pim);
        free(cols);
        free(im);
    }
}

/* dnn_gemm_src_with against dnn_gemm_with on the explicit columns, every kernel, rows 1 ..
 * 17 (the one-row path, edge tiles) and column counts with and without narrow tiles. */
static void test_gemm_src_same_bits(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 11);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const struct spec *s = &specs[i];
        const size_t in = (size_t)s->channels * (size_t)s->h * (size_t)s->w;
        float *im = rand_floats(&rng, in * (size_t)s->images);
        int ld = 0;
        float *cols = explicit_columns(s, im, &ld);
        const int k = s->channels * s->ksize * s->ksize;
        const struct dnn_im2col_src cs = {im,   in,       s->images, s->channels, s->h,
                                          s->w, s->ksize, s->stride, s->pad,      s->dilation};
        const struct dnn_gemm_src src = {dnn_im2col_pack, &cs};
        for (int m = 1; m <= 17; m += (m < 8 ? 1 : 3)) {
            float *a = rand_floats(&rng, (size_t)m * (size_t)k);
            float *want = malloc((size_t)m * (size_t)ld * sizeof(float));
            float *got = malloc((size_t)m * (size_t)ld * sizeof(float));
            assert_non_null(want);
            assert_non_null(got);
            for (int kern = 0; kern < DNN_GEMM_KERNEL_COUNT; kern++) {
                if (!dnn_gemm_kernel_available((enum dnn_gemm_kernel)kern))
                    continue;
                for (size_t e = 0; e < (size_t)m * (size_t)ld; e++)
                    got[e] = want[e] = SENTINEL; /* beta 0 must not read C */
                dnn_gemm_with((enum dnn_gemm_kernel)kern, false, false, m, ld, k, 1, a, k, cols, ld,
                              0, want, ld);
                dnn_gemm_src_with((enum dnn_gemm_kernel)kern, m, ld, k, a, k, &src, got, ld);
                assert_memory_equal(got, want, (size_t)m * (size_t)ld * sizeof(float));
            }
            for (size_t e = 0; e < (size_t)m * (size_t)ld; e++)
                got[e] = want[e] = SENTINEL;
            dnn_gemm_par(NULL, false, false, m, ld, k, 1, a, k, cols, ld, 0, want, ld);
            dnn_gemm_src_par(NULL, m, ld, k, a, k, &src, got, ld);
            assert_memory_equal(got, want, (size_t)m * (size_t)ld * sizeof(float));
            free(got);
            free(want);
            free(a);
        }
        free(cols);
        free(im);
    }
}

#define NET_BATCH 3
#define NET_CLASSES 4

/* Convolutions with filters enough to pack from the image (DNN_CONV_SRC_MIN_FILTERS): padded
 * 3x3, stride 2 with two groups, dilated 3x3; no batch norm or dropout, so a training
 * forward and a prediction compute the same outputs. */
static struct dnn_network *packing_net(int lower_images)
{
    const struct dnn_net_config cfg = {.batch = NET_BATCH,
                                       .subdivisions = 1,
                                       .h = 7,
                                       .w = 7,
                                       .c = 3,
                                       .learning_rate = 0.05f,
                                       .momentum = 0.9f,
                                       .policy = DNN_POLICY_CONSTANT,
                                       .max_batches = 100};
    const struct dnn_layer_spec s[] = {
        test_conv_spec(40, 3, 1, 1, 1, 0, false, DNN_ACT_LEAKY),
        test_conv_spec(64, 3, 2, 1, 2, 0, false, DNN_ACT_RELU),
        test_conv_spec(36, 3, 1, 1, 1, 2, false, DNN_ACT_LINEAR),
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = NET_CLASSES},
        {.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1},
    };
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, sizeof s / sizeof s[0], true, 5), DNN_OK);
    if (lower_images >= 2)
        assert_int_equal(dnn_network_set_lowering(net, lower_images, DNN_LOWER_BYTES_DEFAULT),
                         DNN_OK);
    return net;
}

static void test_network_forward_same_bits(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 13);
    struct dnn_network *kept = packing_net(1);
    float *x = rand_floats(&rng, NET_BATCH * kept->inputs);
    float *y = calloc(NET_BATCH * NET_CLASSES, sizeof(float));
    assert_non_null(y);
    for (int b = 0; b < NET_BATCH; b++)
        y[b * NET_CLASSES + b % NET_CLASSES] = 1;
    /* the training forward lowers with im2col into the kept columns */
    assert_int_equal(dnn_network_set_column_cache(kept, DNN_COL_CACHE_BYTES_DEFAULT), DNN_OK);
    for (size_t i = 0; i < 3; i++)
        assert_non_null(kept->layers[i].col_cache);
    dnn_network_forward_range(kept, 0, kept->n - 1, x, y, true);
    /* predictions pack from the image: one image at a time, and lowered (2 images of 49
     * pixels, 3 of 16 per product) */
    for (int lower = 1; lower <= NET_BATCH; lower += 2) {
        struct dnn_network *packed = packing_net(lower);
        (void)dnn_network_predict(packed, x);
        for (size_t i = 0; i < 3; i++) {
            const struct dnn_layer *a = &kept->layers[i], *b = &packed->layers[i];
            assert_true(dnn_conv_packs_from_image(b, false));
            assert_memory_equal(a->output, b->output, a->outputs * NET_BATCH * sizeof(float));
        }
        dnn_network_free(packed);
    }
    dnn_network_free(kept);
    free(y);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_matches_explicit_columns),
        cmocka_unit_test(test_gemm_src_same_bits),
        cmocka_unit_test(test_network_forward_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
