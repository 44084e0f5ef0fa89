/*
 * test_conv_sliding.c - the sliding-window forward product of convolutions with few filters
 * (dnn/conv_sliding.c) against im2col and dnn_gemm, bit for bit, with every kernel this CPU
 * runs: kernel sizes 2 to 7, padding 0 to 3 (more than the kernel's reach too), widths below,
 * at and across its 16-column strips, 1 to 16 filters (every remainder of its 4-filter
 * blocks), and weights with infinities and NaNs, whose products with the padding's zeros the
 * columns hold too (NaNs match NaNs: their sign is the compiler's). Then whole networks: a layer
 * taking the sliding window gives the outputs from its columns, and which layers take it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/conv_sliding.h"
#include "tests/helpers/engine_inputs.h"

/* A network of one convolution over an h x w x c input, batch 1, for inference. */
static struct dnn_network *one_conv(int h, int w, int c, struct dnn_layer_spec spec)
{
    const struct dnn_net_config cfg = {
        .batch = 1, .subdivisions = 1, .h = h, .w = w, .c = c, .max_batches = 1};
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, &spec, 1, false, 7), DNN_OK);
    return net;
}

/* The layer's product for input im, with kernel, both ways; asserts the bits agree. */
static void check_layer(enum dnn_gemm_kernel kernel, const struct dnn_layer *l, const float *im)
{
    const int m = l->spec.filters, k = l->spec.size * l->spec.size * l->c, n = l->out_h * l->out_w;
    float *cols = malloc((size_t)k * (size_t)n * sizeof(float));
    float *want = malloc((size_t)m * (size_t)n * sizeof(float));
    float *got = malloc((size_t)m * (size_t)n * sizeof(float));
    float *scratch = malloc(dnn_conv_sliding_padded_floats(l) * sizeof(float));
    assert_true(cols && want && got && scratch);
    dnn_im2col(im, l->c, l->h, l->w, l->spec.size, 1, l->spec.pad, cols);
    dnn_gemm_with(kernel, false, false, m, n, k, 1, l->weights, k, cols, n, 0, want, n);
    memset(got, 0x7f, (size_t)m * (size_t)n * sizeof(float));
    dnn_conv_sliding_forward_with(kernel, l, im, scratch, got);
    for (int i = 0; i < m * n; i++)
        /* A NaN's sign and payload are the compiler's (which operand of a sum comes
         * first), not the order of terms: any NaN matches any NaN. */
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0 && !(isnan(got[i]) && isnan(want[i])))
            fail_msg("%s, %d filters %dx%d pad %d on %dx%dx%d: element %d is %a, not %a",
                     dnn_gemm_kernel_name(kernel), m, l->spec.size, l->spec.size, l->spec.pad, l->h,
                     l->w, l->c, i, got[i], want[i]);
    free(scratch);
    free(got);
    free(want);
    free(cols);
}

static void check_shape(struct dnn_rng *rng, int h, int w, int c, int filters, int size, int pad)
{
    struct dnn_network *net =
        one_conv(h, w, c, test_conv_spec(filters, size, 1, pad, 1, 0, false, DNN_ACT_LINEAR));
    const struct dnn_layer *l = &net->layers[0];
    assert_true(l->out_h >= 1 && l->out_w >= 1);
    float *im = test_random_floats(rng, (size_t)h * (size_t)w * (size_t)c);
    for (int kernel = 0; kernel < DNN_GEMM_KERNEL_COUNT; kernel++)
        if (dnn_gemm_kernel_available((enum dnn_gemm_kernel)kernel))
            check_layer((enum dnn_gemm_kernel)kernel, l, im);
    free(im);
    dnn_network_free(net);
}

static void test_shapes_match_gemm(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 41);
    for (int size = 2; size <= 7; size++)
        for (int pad = 0; pad <= 3; pad++)
            for (int filters = 1; filters <= DNN_CONV_SLIDING_MAX_FILTERS; filters += 3)
                check_shape(&rng, 9 + size, size + 3 * pad + filters, 1 + filters % 3, filters,
                            size, pad);
    /* Widths around the 16-column strips, and LeNet's two layers. */
    const int widths[] = {1, 2, 15, 16, 17, 31, 32, 33, 40};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        check_shape(&rng, 6, widths[i], 2, 5, 3, 1);
    check_shape(&rng, 28, 28, 3, 6, 5, 2);
    check_shape(&rng, 14, 14, 6, 6, 5, 2);
}

static void test_nonfinite_weights_match_gemm(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 42);
    struct dnn_network *net =
        one_conv(7, 9, 2, test_conv_spec(5, 3, 1, 2, 1, 0, false, DNN_ACT_LINEAR));
    struct dnn_layer *l = &net->layers[0];
    l->weights[0] = INFINITY;
    l->weights[20] = -INFINITY;
    l->weights[31] = NAN;
    float *im = test_random_floats(&rng, 7 * 9 * 2);
    im[5] = 0; /* an Inf times an image's own zero, beside the padding's */
    for (int kernel = 0; kernel < DNN_GEMM_KERNEL_COUNT; kernel++)
        if (dnn_gemm_kernel_available((enum dnn_gemm_kernel)kernel))
            check_layer((enum dnn_gemm_kernel)kernel, l, im);
    free(im);
    dnn_network_free(net);
}

static void test_which_layers_slide(void **state)
{
    (void)state;
    const struct {
        int filters, size, stride, pad, groups, dilation;
        bool slides;
    } cases[] = {
        {6, 5, 1, 2, 1, 0, true},                                 /* LeNet */
        {DNN_CONV_SLIDING_MAX_FILTERS, 3, 1, 1, 1, 0, true},      /* the most filters */
        {DNN_CONV_SLIDING_MAX_FILTERS + 1, 3, 1, 1, 1, 0, false}, /* one more */
        {6, 3, 2, 1, 1, 0, false},                                /* stride 2 */
        {6, 3, 1, 1, 2, 0, false},                                /* groups */
        {6, 3, 1, 1, 1, 2, false},                                /* dilated */
        {6, 1, 1, 0, 1, 0, false},                                /* 1x1 reads in place */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dnn_network *net =
            one_conv(12, 12, 4,
                     test_conv_spec(cases[i].filters, cases[i].size, cases[i].stride, cases[i].pad,
                                    cases[i].groups, cases[i].dilation, false, DNN_ACT_LINEAR));
        assert_int_equal(dnn_conv_sliding_applies(&net->layers[0]), cases[i].slides);
        dnn_network_free(net);
    }
}

/* A network's forward pass through the sliding window equals, bit for bit, the product
 * on the layer's columns plus its biases, for every image of a batch. */
static void test_network_forward_matches_columns(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 43);
    const struct dnn_net_config cfg = {
        .batch = 3, .subdivisions = 1, .h = 13, .w = 11, .c = 2, .max_batches = 1};
    struct dnn_layer_spec spec = test_conv_spec(7, 3, 1, 1, 1, 0, false, DNN_ACT_LINEAR);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, &spec, 1, false, 9), DNN_OK);
    struct dnn_layer *l = &net->layers[0];
    assert_true(dnn_conv_sliding_applies(l));
    for (int f = 0; f < 7; f++)
        l->biases[f] = dnn_rng_uniform(&rng, -1, 1);
    const size_t in = 13 * 11 * 2, n = (size_t)l->out_h * (size_t)l->out_w;
    float *x = test_random_floats(&rng, 3 * in);
    const float *got = dnn_network_predict(net, x);
    float *cols = malloc(18 * n * sizeof(float)), *want = malloc(7 * n * sizeof(float));
    assert_true(cols && want);
    for (int b = 0; b < 3; b++) {
        dnn_im2col(x + (size_t)b * in, 2, 13, 11, 3, 1, 1, cols);
        dnn_gemm(false, false, 7, (int)n, 18, 1, l->weights, 18, cols, (int)n, 0, want, (int)n);
        for (int f = 0; f < 7; f++)
            for (size_t j = 0; j < n; j++)
                want[(size_t)f * n + j] += l->biases[f];
        assert_memory_equal(got + (size_t)b * 7 * n, want, 7 * n * sizeof(float));
    }
    free(want);
    free(cols);
    free(x);
    dnn_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_match_gemm),
        cmocka_unit_test(test_nonfinite_weights_match_gemm),
        cmocka_unit_test(test_which_layers_slide),
        cmocka_unit_test(test_network_forward_matches_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
