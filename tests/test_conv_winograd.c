/*
 * test_conv_winograd.c - the F(2x2, 3x3) Winograd convolution (dnn/conv_winograd.c,
 * conv_winograd_grad.c): its forward product, input delta and weight gradient against im2col +
 * GEMM (and col2im) within a float tolerance, a relative 1e-5 of each element's sum of |terms|,
 * for odd and even extents from 1 and channel and filter counts around the threshold; bit for
 * bit the same result whatever the scratch (blocks of tiles and filters), with the filters
 * transformed once or per block (the gradient's sums inside the scratch or not), on threads,
 * and for the streamed tiles' split of the filters (forward rows, the input delta summed over
 * tiles then folded, the gradient's rows); then which layers take the path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/conv_winograd.h"
#include "host/thread_pool.h"
#include "tests/helpers/engine_inputs.h"

struct shape {
    int h, w, c, k, images;
};

static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    return p;
}

static float *abs_copy(const float *x, size_t n)
{
    float *y = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        y[i] = fabsf(x[i]);
    return y;
}

/* The scratch a layer of this shape gets (its share of l->workspace_floats). */
static size_t scratch_of(const struct shape *s)
{
    const struct dnn_net_config cfg = {
        .batch = s->images, .subdivisions = 1, .h = s->h, .w = s->w, .c = s->c, .max_batches = 1};
    struct dnn_layer_spec spec = test_conv_spec(s->k, 3, 1, 1, 1, 0, false, DNN_ACT_LINEAR);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, &spec, 1, false, 3), DNN_OK);
    const size_t f = dnn_conv_winograd_scratch_floats(&net->layers[0]);
    assert_true(f > 0);
    if (dnn_conv_winograd_applies(&net->layers[0]))
        assert_true(f <= net->layers[0].workspace_floats);
    dnn_network_free(net);
    return f;
}

/* want, and bound (the sum of |terms| of each element): im2col + GEMM of one image. */
static void reference_forward(const struct shape *s, const float *wt, const float *im, float *want,
                              float *bound)
{
    const int n = s->h * s->w, kk = 9 * s->c;
    float *cols = alloc_floats((size_t)kk * (size_t)n);
    dnn_im2col(im, s->c, s->h, s->w, 3, 1, 1, cols);
    dnn_gemm(false, false, s->k, n, kk, 1, wt, kk, cols, n, 0, want, n);
    float *aw = abs_copy(wt, (size_t)s->k * (size_t)kk), *ac = abs_copy(cols, (size_t)kk * n);
    dnn_gemm(false, false, s->k, n, kk, 1, aw, kk, ac, n, 0, bound, n);
    free(ac);
    free(aw);
    free(cols);
}

static void assert_close(const float *got, const float *want, const float *bound, size_t n,
                         const char *what, const struct shape *s)
{
    for (size_t i = 0; i < n; i++) {
        const float tol = 1e-5f * bound[i] + 1e-30f;
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s %dx%d c %d k %d images %d: element %zu is %g, not %g (tolerance %g)", what,
                     s->h, s->w, s->c, s->k, s->images, i, got[i], want[i], tol);
    }
}

static void assert_same_bits(const float *a, const float *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("%s: element %zu is %a, not %a", what, i, a[i], b[i]);
}

static void check_forward(struct dnn_rng *rng, const struct shape *s)
{
    const size_t plane = (size_t)s->h * (size_t)s->w, in_size = plane * (size_t)s->c;
    const size_t out_size = plane * (size_t)s->k, nw = (size_t)s->k * (size_t)s->c * 9;
    float *wt = test_random_floats(rng, nw);
    float *in = test_random_floats(rng, in_size * (size_t)s->images);
    float *want = alloc_floats(out_size), *bound = alloc_floats(out_size);
    float *got = alloc_floats(out_size * (size_t)s->images);
    float *again = alloc_floats(out_size * (size_t)s->images);
    float *u = alloc_floats((size_t)DNN_WINO_XI * (size_t)s->k * (size_t)s->c);
    const size_t small = scratch_of(s), big = small * 3 + 4096;
    float *scratch = alloc_floats(big);

    /* filters transformed per block, in the least scratch */
    struct dnn_wino_conv cv = {.c = s->c, .h = s->h, .w = s->w, .k = s->k, .weights = wt};
    dnn_wino_forward(&cv, NULL, in, in_size, s->images, got, out_size, scratch, small);
    for (int b = 0; b < s->images; b++) {
        reference_forward(s, wt, in + (size_t)b * in_size, want, bound);
        assert_close(got + (size_t)b * out_size, want, bound, out_size, "forward", s);
    }
    /* transformed once, with more scratch: the same bits */
    dnn_wino_filter_transform(wt, s->k, s->c, u);
    cv.u = u;
    dnn_wino_forward(&cv, NULL, in, in_size, s->images, again, out_size, scratch, big);
    assert_same_bits(again, got, out_size * (size_t)s->images, "forward, filters transformed once");
    /* a streamed tile's rows: filters [r0, r1) of every image */
    cv.u = NULL;
    memset(again, 0, out_size * (size_t)s->images * sizeof(float));
    for (int r0 = 0, step = 1 + s->k / 3; r0 < s->k; r0 += step) {
        struct dnn_wino_conv rows = cv;
        rows.k = r0 + step < s->k ? step : s->k - r0;
        rows.weights = wt + (size_t)r0 * (size_t)s->c * 9;
        dnn_wino_forward(&rows, NULL, in, in_size, s->images, again + (size_t)r0 * plane, out_size,
                         scratch, small);
    }
    assert_same_bits(again, got, out_size * (size_t)s->images, "forward, filters in tiles");
    free(scratch);
    free(u);
    free(again);
    free(got);
    free(bound);
    free(want);
    free(in);
    free(wt);
}

/* want = base + col2im(W^T delta), bound = |base| + the same of |W| and |delta|. */
static void reference_input_delta(const struct shape *s, const float *wt, const float *delta,
                                  const float *base, float *want, float *bound)
{
    const int n = s->h * s->w, kk = 9 * s->c;
    const size_t in_size = (size_t)n * (size_t)s->c;
    float *cols = alloc_floats((size_t)kk * (size_t)n);
    memcpy(want, base, in_size * sizeof(float));
    dnn_gemm(true, false, kk, n, s->k, 1, wt, kk, delta, n, 0, cols, n);
    dnn_col2im(cols, s->c, s->h, s->w, 3, 1, 1, want);
    float *aw = abs_copy(wt, (size_t)s->k * (size_t)kk);
    float *ad = abs_copy(delta, (size_t)s->k * (size_t)n);
    for (size_t i = 0; i < in_size; i++)
        bound[i] = fabsf(base[i]);
    dnn_gemm(true, false, kk, n, s->k, 1, aw, kk, ad, n, 0, cols, n);
    dnn_col2im(cols, s->c, s->h, s->w, 3, 1, 1, bound);
    free(ad);
    free(aw);
    free(cols);
}

static void check_input_delta(struct dnn_rng *rng, const struct shape *s)
{
    const size_t plane = (size_t)s->h * (size_t)s->w, in_size = plane * (size_t)s->c;
    const size_t out_size = plane * (size_t)s->k, nw = (size_t)s->k * (size_t)s->c * 9;
    const size_t all_in = in_size * (size_t)s->images;
    float *wt = test_random_floats(rng, nw);
    float *delta = test_random_floats(rng, out_size * (size_t)s->images);
    float *base = test_random_floats(rng, all_in); /* what a route put there: kept */
    float *want = alloc_floats(in_size), *bound = alloc_floats(in_size);
    float *got = alloc_floats(all_in), *again = alloc_floats(all_in);
    float *u = alloc_floats((size_t)DNN_WINO_XI * (size_t)s->k * (size_t)s->c);
    const size_t small = scratch_of(s), big = small * 3 + 4096;
    float *scratch = alloc_floats(big);
    const size_t acc_size = dnn_wino_delta_acc_floats(s->c, s->h, s->w);
    float *acc = alloc_floats(acc_size * (size_t)s->images);

    struct dnn_wino_conv cv = {.c = s->c, .h = s->h, .w = s->w, .k = s->k, .weights = wt};
    memcpy(got, base, all_in * sizeof(float));
    dnn_wino_input_delta(&cv, NULL, delta, out_size, s->images, got, in_size, scratch, small);
    for (int b = 0; b < s->images; b++) {
        reference_input_delta(s, wt, delta + (size_t)b * out_size, base + (size_t)b * in_size, want,
                              bound);
        assert_close(got + (size_t)b * in_size, want, bound, in_size, "input delta", s);
    }
    dnn_wino_filter_transform_turned(wt, s->k, s->c, u);
    cv.ut = u;
    memcpy(again, base, all_in * sizeof(float));
    dnn_wino_input_delta(&cv, NULL, delta, out_size, s->images, again, in_size, scratch, big);
    assert_same_bits(again, got, all_in, "input delta, filters transformed once");
    /* streamed tiles of several sizes: summed transformed, folded after the last */
    for (int step = 1; step <= s->k; step = step * 3 + 1) {
        cv.ut = NULL;
        memcpy(again, base, all_in * sizeof(float));
        for (int r0 = 0; r0 < s->k; r0 += step) {
            struct dnn_wino_conv rows = cv;
            rows.k = r0 + step < s->k ? step : s->k - r0;
            rows.weights = wt + (size_t)r0 * (size_t)s->c * 9;
            dnn_wino_delta_accumulate(&rows, delta + (size_t)r0 * plane, out_size, s->images,
                                      r0 == 0, acc, acc_size, scratch, small);
        }
        dnn_wino_delta_fold(s->c, s->h, s->w, acc, acc_size, s->images, again, in_size);
        assert_same_bits(again, got, all_in, "input delta, filters in tiles");
    }
    free(acc);
    free(scratch);
    free(u);
    free(again);
    free(got);
    free(bound);
    free(want);
    free(base);
    free(delta);
    free(wt);
}

/* want = base + sum over images of delta * im2col(in)^T, bound = |base| + the same of |delta|
 * and |columns|. */
static void reference_weight_gradient(const struct shape *s, const float *in, const float *delta,
                                      const float *base, float *want, float *bound)
{
    const int n = s->h * s->w, kk = 9 * s->c;
    const size_t in_size = (size_t)n * (size_t)s->c, out_size = (size_t)n * (size_t)s->k;
    const size_t nw = (size_t)s->k * (size_t)kk;
    float *cols = alloc_floats((size_t)kk * (size_t)n);
    memcpy(want, base, nw * sizeof(float));
    for (size_t i = 0; i < nw; i++)
        bound[i] = fabsf(base[i]);
    for (int b = 0; b < s->images; b++) {
        dnn_im2col(in + (size_t)b * in_size, s->c, s->h, s->w, 3, 1, 1, cols);
        dnn_gemm(false, true, s->k, kk, n, 1, delta + (size_t)b * out_size, n, cols, n, 1, want,
                 kk);
        float *ad = abs_copy(delta + (size_t)b * out_size, out_size);
        float *ac = abs_copy(cols, (size_t)kk * (size_t)n);
        dnn_gemm(false, true, s->k, kk, n, 1, ad, n, ac, n, 1, bound, kk);
        free(ac);
        free(ad);
    }
    free(cols);
}

/* The weight gradient against im2col's, then bit for bit whatever the scratch, with the sums
 * outside it, on threads, and for a streamed tile's rows of filters. */
static void check_weight_gradient(struct dnn_rng *rng, const struct shape *s,
                                  const struct dnn_parallel *par)
{
    const size_t plane = (size_t)s->h * (size_t)s->w, in_size = plane * (size_t)s->c;
    const size_t out_size = plane * (size_t)s->k, nw = (size_t)s->k * (size_t)s->c * 9;
    float *in = test_random_floats(rng, in_size * (size_t)s->images);
    float *delta = test_random_floats(rng, out_size * (size_t)s->images);
    float *base = test_random_floats(rng, nw); /* the updates so far (momentum): kept */
    float *want = alloc_floats(nw), *bound = alloc_floats(nw);
    float *got = alloc_floats(nw), *again = alloc_floats(nw);
    float *acc = alloc_floats((size_t)DNN_WINO_XI * (size_t)s->k * (size_t)s->c);
    const size_t small = scratch_of(s), big = small * 3 + 4096;
    float *scratch = alloc_floats(big);

    const struct dnn_wino_conv cv = {.c = s->c, .h = s->h, .w = s->w, .k = s->k};
    memcpy(got, base, nw * sizeof(float));
    dnn_wino_weight_gradient(&cv, NULL, in, in_size, delta, out_size, s->images, got, NULL, scratch,
                             small);
    reference_weight_gradient(s, in, delta, base, want, bound);
    assert_close(got, want, bound, nw, "weight gradient", s);
    /* the sums outside the scratch, split among threads */
    memcpy(again, base, nw * sizeof(float));
    dnn_wino_weight_gradient(&cv, par, in, in_size, delta, out_size, s->images, again, acc, scratch,
                             big);
    assert_same_bits(again, got, nw, "weight gradient, sums outside the scratch, threads");
    /* streamed tiles of several sizes: each its rows of filters */
    for (int step = 1; step <= s->k; step = step * 3 + 1) {
        memcpy(again, base, nw * sizeof(float));
        for (int r0 = 0; r0 < s->k; r0 += step) {
            struct dnn_wino_conv rows = cv;
            rows.k = r0 + step < s->k ? step : s->k - r0;
            dnn_wino_weight_gradient(&rows, NULL, in, in_size, delta + (size_t)r0 * plane, out_size,
                                     s->images, again + (size_t)r0 * (size_t)s->c * 9, NULL,
                                     scratch, small);
        }
        assert_same_bits(again, got, nw, "weight gradient, filters in tiles");
    }
    free(scratch);
    free(acc);
    free(again);
    free(got);
    free(bound);
    free(want);
    free(base);
    free(delta);
    free(in);
}

static void test_shapes_match_im2col(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 51);
    const int extents[] = {1, 2, 3, 4, 5, 7, 8, 13};
    const int channels[] = {DNN_WINO_MIN_CHANNELS - 1, DNN_WINO_MIN_CHANNELS,
                            DNN_WINO_MIN_CHANNELS + 3};
    const int quick = getenv("DNN_TEST_QUICK") != NULL;
    struct dz_pool *pool = dz_pool_create(3);
    assert_non_null(pool);
    const struct dnn_parallel par = dz_pool_parallel(pool);
    for (size_t i = 0; i < sizeof extents / sizeof extents[0]; i++)
        for (size_t j = 0; j < sizeof extents / sizeof extents[0]; j += quick ? 3 : 1)
            for (size_t c = 0; c < 3; c++) {
                const struct shape s = {extents[i], extents[j], channels[c],
                                        DNN_WINO_MIN_FILTERS + (int)(i + 2 * j + c) % 5,
                                        1 + (int)(i + j + c) % 3};
                check_forward(&rng, &s);
                check_input_delta(&rng, &s);
                check_weight_gradient(&rng, &s, &par);
            }
    dz_pool_destroy(pool);
}

/* Larger: blocks of tiles that span images and cut tile rows, several filter blocks. */
static void test_blocks_span_images(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 52);
    const struct shape shapes[] = {
        {8, 8, 64, 96, 3}, {14, 14, 32, 32, 2}, {7, 7, 32, 64, 3}, {32, 30, 16, 40, 1}};
    struct dz_pool *pool = dz_pool_create(2);
    assert_non_null(pool);
    const struct dnn_parallel par = dz_pool_parallel(pool);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        check_forward(&rng, &shapes[i]);
        check_input_delta(&rng, &shapes[i]);
        check_weight_gradient(&rng, &shapes[i], &par);
    }
    dz_pool_destroy(pool);
}

/* Two steps of training of a net with two Winograd layers (and a first one that is not),
 * with the filters transformed once per pass (dnn_network_set_lowering) or per block, and on
 * 1 to 3 threads: the losses, every parameter and the input's delta. */
/* the last layer's filters, the net's classes: enough for the Winograd path */
#define CLASSES (DNN_WINO_MIN_FILTERS + 1)

struct train_outcome {
    float loss[2];
    float *params;
    size_t n_params;
};

static void train_wino_net(bool lowering, unsigned threads, struct train_outcome *o)
{
    const int batch = 3;
    const struct dnn_net_config cfg = {.batch = batch,
                                       .subdivisions = 1,
                                       .h = 11,
                                       .w = 10,
                                       .c = 3,
                                       .learning_rate = 0.05f,
                                       .momentum = 0.9f,
                                       .policy = DNN_POLICY_CONSTANT,
                                       .max_batches = 10};
    const struct dnn_layer_spec specs[] = {
        test_conv_spec(DNN_WINO_MIN_FILTERS, 3, 1, 1, 1, 0, false, DNN_ACT_LEAKY),
        test_conv_spec(DNN_WINO_MIN_FILTERS + 4, 3, 1, 1, 1, 0, true, DNN_ACT_LEAKY),
        test_conv_spec(CLASSES, 3, 1, 1, 1, 0, false, DNN_ACT_LINEAR),
        {.kind = DNN_LAYER_AVGPOOL},
        {.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1},
    };
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, specs, 5, true, 9), DNN_OK);
    assert_false(dnn_conv_winograd_applies(&net->layers[0]));
#ifndef DNN_CONV_NO_WINOGRAD
    assert_true(dnn_conv_winograd_applies(&net->layers[1]));
    assert_true(dnn_conv_winograd_applies(&net->layers[2]));
#endif
    if (lowering) {
        assert_int_equal(dnn_network_set_lowering(net, batch, DNN_LOWER_BYTES_DEFAULT), DNN_OK);
#ifndef DNN_CONV_NO_WINOGRAD
        assert_non_null(net->wino_u);
#endif
    }
    struct dz_pool *pool = threads > 1 ? dz_pool_create(threads) : NULL;
    struct dnn_parallel par = {0};
    if (pool) {
        par = dz_pool_parallel(pool);
        assert_int_equal(dnn_network_set_parallel(net, &par), DNN_OK);
    }
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 19);
    float *x = test_random_floats(&rng, (size_t)batch * 11 * 10 * 3);
    float y[3 * CLASSES] = {0};
    for (int b = 0; b < batch; b++)
        y[b * CLASSES + b * 5] = 1;
    for (int it = 0; it < 2; it++)
        o->loss[it] = dnn_network_train_batch(net, x, y);
    o->n_params = 0;
    for (size_t i = 0; i < net->n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++)
            o->n_params += net->layers[i].params[p].count;
    o->params = alloc_floats(o->n_params);
    size_t at = 0;
    for (size_t i = 0; i < net->n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++) {
            memcpy(o->params + at, net->layers[i].params[p].value,
                   net->layers[i].params[p].count * sizeof(float));
            at += net->layers[i].params[p].count;
        }
    free(x);
    dnn_network_free(net);
    if (pool)
        dz_pool_destroy(pool);
}

static void test_training_same_bits_any_threads(void **state)
{
    (void)state;
    struct train_outcome want;
    train_wino_net(false, 1, &want);
    for (unsigned t = 1; t <= 3; t++)
        for (int lowering = 0; lowering < 2; lowering++) {
            struct train_outcome got;
            train_wino_net(lowering, t, &got);
            assert_memory_equal(got.loss, want.loss, sizeof want.loss);
            assert_int_equal(got.n_params, want.n_params);
            assert_same_bits(got.params, want.params, want.n_params, "trained parameters");
            free(got.params);
        }
    free(want.params);
}

static void test_which_layers(void **state)
{
    (void)state;
    const int c_min = DNN_WINO_MIN_CHANNELS, k_min = DNN_WINO_MIN_FILTERS;
    const struct {
        int c, filters, size, stride, pad, groups, dilation;
        bool takes;
    } cases[] = {
        {c_min, k_min, 3, 1, 1, 1, 0, true},
        {c_min, k_min, 3, 1, 1, 1, 1, true}, /* dilation 1 is none */
        {c_min - 1, k_min, 3, 1, 1, 1, 0, false},
        {c_min, k_min - 1, 3, 1, 1, 1, 0, false},
        {3, 128, 3, 1, 1, 1, 0, false}, /* VGG-7's first layer */
        {c_min, k_min, 1, 1, 1, 1, 0, false},
        {c_min, k_min, 3, 2, 1, 1, 0, false},
        {c_min, k_min, 3, 1, 0, 1, 0, false},
        {c_min, k_min, 3, 1, 2, 1, 0, false},
        {c_min * 2, k_min * 2, 3, 1, 1, 2, 0, false},
        {c_min, k_min, 3, 1, 1, 1, 2, false},
        {c_min, k_min, 5, 1, 2, 1, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct dnn_net_config cfg = {
            .batch = 2, .subdivisions = 1, .h = 9, .w = 9, .c = cases[i].c, .max_batches = 1};
        struct dnn_layer_spec spec =
            test_conv_spec(cases[i].filters, cases[i].size, cases[i].stride, cases[i].pad,
                           cases[i].groups, cases[i].dilation, false, DNN_ACT_LINEAR);
        struct dnn_network *net = NULL;
        assert_int_equal(dnn_network_create(&net, &cfg, &spec, 1, true, 3), DNN_OK);
        const struct dnn_layer *l = &net->layers[0];
#ifdef DNN_CONV_NO_WINOGRAD
        assert_false(dnn_conv_winograd_applies(l));
#else
        if (dnn_conv_winograd_applies(l) != cases[i].takes)
            fail_msg("case %zu: takes the Winograd path: %d", i, !cases[i].takes);
        if (cases[i].takes)
            assert_true(l->workspace_floats >= dnn_conv_winograd_scratch_floats(l));
#endif
        dnn_network_free(net);
    }
}

/* The filters' transform is paid once per pass: a pass of fewer than DNN_WINO_MIN_TILES
 * tiles (batch x tiles of an image) keeps im2col. */
static void test_small_passes_keep_im2col(void **state)
{
    (void)state;
    /* 9x9: 25 tiles an image */
    for (int batch = 1; batch <= 3; batch++) {
        const struct dnn_net_config cfg = {.batch = batch,
                                           .subdivisions = 1,
                                           .h = 9,
                                           .w = 9,
                                           .c = DNN_WINO_MIN_CHANNELS,
                                           .max_batches = 1};
        struct dnn_layer_spec spec =
            test_conv_spec(DNN_WINO_MIN_FILTERS, 3, 1, 1, 1, 0, false, DNN_ACT_LINEAR);
        struct dnn_network *net = NULL;
        assert_int_equal(dnn_network_create(&net, &cfg, &spec, 1, false, 3), DNN_OK);
#ifdef DNN_CONV_NO_WINOGRAD
        assert_false(dnn_conv_winograd_applies(&net->layers[0]));
#else
        assert_int_equal(dnn_conv_winograd_applies(&net->layers[0]),
                         (size_t)batch * 25 >= DNN_WINO_MIN_TILES);
#endif
        dnn_network_free(net);
    }
}

/* The blocks of a pass: within the scratch, and none for no tiles (no division by zero). */
static void test_blocks_fit_scratch(void **state)
{
    (void)state;
    int tb = -1, kb = -1;
    for (int with_u = 0; with_u < 2; with_u++) {
        dnn_wino_blocks(1 << 20, 64, 64, 0, DNN_WINO_TILE_BLOCK, with_u, &tb, &kb);
        assert_int_equal(tb, 0);
        assert_true(kb >= 1 && kb <= 64);
    }
    const size_t scratch = (size_t)DNN_WINO_XI * 64 * (64 + 2 * 64);
    dnn_wino_blocks(scratch, 64, 128, 1000, 64, true, &tb, &kb);
    /* 16 x (64 x 64 + kb x (64 + 64)) floats: 64 of the 128 filters fill it exactly */
    assert_int_equal(tb, 64);
    assert_int_equal(kb, 64);
    assert_true((size_t)DNN_WINO_XI * (64u * (size_t)tb + (size_t)kb * (size_t)(tb + 64)) <=
                scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_match_im2col),
        cmocka_unit_test(test_blocks_span_images),
        cmocka_unit_test(test_training_same_bits_any_threads),
        cmocka_unit_test(test_small_passes_keep_im2col),
        cmocka_unit_test(test_which_layers),
        cmocka_unit_test(test_blocks_fit_scratch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
