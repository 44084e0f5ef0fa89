/*
 * test_layers_conv.c - the convolutional, connected and batchnorm layers.
 *
 * Backward passes are checked by finite differences (tests/helpers/gradcheck) on
 * small shapes with smooth activations; forward passes against hand-worked answers
 * and a naive convolution, so a transposed weight layout cannot hide; batch
 * normalisation against its formulas in training and inference; and an inference
 * network (no training buffers) against a training one.
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
#include "dnn/dnn_internal.h"
#include "tests/helpers/gradcheck.h"

/* Finite-difference step and relative tolerance of the gradient checks. */
#define GC_STEP 1e-2f
#define GC_TOL 2e-3
#define GC_MAX_PER_TENSOR 40

/* |got - want| <= tol * (1 + |want|), with the numbers in the failure message. */
#define assert_close(got, want, tol) check_close((double)(got), (double)(want), (tol), __LINE__)

static void check_close(double got, double want, double tol, int line)
{
    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("line %d: got %.9g, want %.9g (tolerance %.1e)", line, got, want, tol);
}

static struct dnn_layer_spec conv_spec(int filters, int size, int stride, int pad, int groups,
                                       bool bn, enum dnn_activation act)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_CONVOLUTIONAL,
        .activation = act,
        .filters = filters,
        .size = size,
        .stride = stride,
        .pad = pad,
        .groups = groups,
        .batch_normalize = bn,
    };
    return s;
}

static struct dnn_layer_spec connected_spec(int outputs, bool bn, enum dnn_activation act)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_CONNECTED,
        .activation = act,
        .outputs = outputs,
        .batch_normalize = bn,
    };
    return s;
}

static struct dnn_layer_spec batchnorm_spec(void)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_BATCHNORM};
    return s;
}

/* Largest gradcheck error seen by each group of checks, printed at the end. */
struct gc_summary {
    double plain; /* conv/connected without BN */
    double bn;    /* anything with batch normalisation */
};

static struct gc_summary summary;

static void gradcheck_ok(const char *what, const struct dnn_net_config *cfg,
                         const struct dnn_layer_spec *specs, size_t n, double tol, double *track)
{
    struct gradcheck_result r = gradcheck_network(cfg, specs, n, GC_STEP, tol, GC_MAX_PER_TENSOR);
    print_message("%-40s %4zu derivatives, max error %.2e\n", what, r.checked, r.max_error);
    if (r.max_error > *track)
        *track = r.max_error;
    assert_true(r.checked > 0);
    if (r.mismatches != 0)
        fail_msg("%s: %zu of %zu derivatives outside %.1e", what, r.mismatches, r.checked, tol);
}

/* ---------------------------------------------------------- gradient checks */

static void test_gradcheck_conv(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 5, 5, 2);
    struct dnn_layer_spec s[2];

    s[0] = conv_spec(3, 3, 1, 1, 1, false, DNN_ACT_LINEAR);
    gradcheck_ok("conv 3x3 s1 p1 linear", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(3, 3, 2, 1, 1, false, DNN_ACT_LOGISTIC);
    gradcheck_ok("conv 3x3 s2 p1 logistic", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(2, 2, 2, 0, 1, false, DNN_ACT_TANH);
    gradcheck_ok("conv 2x2 s2 p0 tanh (edge dropped)", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(4, 3, 1, 1, 2, false, DNN_ACT_LOGISTIC);
    gradcheck_ok("conv 3x3 groups=2 logistic", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(3, 1, 1, 0, 1, false, DNN_ACT_LINEAR);
    gradcheck_ok("conv 1x1 (direct) linear", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(4, 1, 1, 0, 2, false, DNN_ACT_TANH);
    gradcheck_ok("conv 1x1 (direct) groups=2 tanh", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(3, 1, 2, 0, 1, false, DNN_ACT_LOGISTIC);
    gradcheck_ok("conv 1x1 s2 (im2col) logistic", &cfg, s, 1, GC_TOL, &summary.plain);
    /* Two layers: the second passes its delta back into the first's. */
    s[0] = conv_spec(4, 3, 1, 1, 1, false, DNN_ACT_TANH);
    s[1] = conv_spec(2, 1, 1, 0, 2, false, DNN_ACT_LOGISTIC);
    gradcheck_ok("conv 3x3 -> conv 1x1 groups=2", &cfg, s, 2, GC_TOL, &summary.plain);
    /* AlexeyAB's dilation: taps 2 apart, padding pad*2, darknet's output size. */
    s[0] = conv_spec(3, 3, 1, 1, 1, false, DNN_ACT_TANH);
    s[0].dilation = 2;
    gradcheck_ok("conv 3x3 dilation=2 tanh", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = conv_spec(4, 3, 2, 1, 2, false, DNN_ACT_LOGISTIC);
    s[0].dilation = 3;
    s[1] = conv_spec(2, 3, 1, 1, 1, false, DNN_ACT_LINEAR);
    s[1].dilation = 2;
    gradcheck_ok("conv dil=3 s2 groups=2 -> conv dil=2", &cfg, s, 2, GC_TOL, &summary.plain);
    /* Winograd's path (conv_winograd.h) in both: the second's input delta is the first's. */
    struct dnn_net_config wide = gradcheck_config(2, 3, 4, DNN_WINO_MIN_CHANNELS);
    s[0] = conv_spec(DNN_WINO_MIN_FILTERS, 3, 1, 1, 1, false, DNN_ACT_TANH);
    s[1] = conv_spec(DNN_WINO_MIN_FILTERS, 3, 1, 1, 1, false, DNN_ACT_LINEAR);
    gradcheck_ok("conv 3x3 Winograd -> conv 3x3 Winograd", &wide, s, 2, GC_TOL, &summary.plain);
}

static void test_gradcheck_conv_bn(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 5, 5, 2);
    struct dnn_layer_spec s[2];

    s[0] = conv_spec(3, 3, 1, 1, 1, true, DNN_ACT_LINEAR);
    gradcheck_ok("conv 3x3 BN linear", &cfg, s, 1, GC_TOL, &summary.bn);
    s[0] = conv_spec(3, 3, 1, 1, 1, true, DNN_ACT_LOGISTIC);
    gradcheck_ok("conv 3x3 BN logistic", &cfg, s, 1, GC_TOL, &summary.bn);
    s[0] = conv_spec(4, 3, 2, 1, 2, true, DNN_ACT_TANH);
    gradcheck_ok("conv 3x3 s2 groups=2 BN tanh", &cfg, s, 1, GC_TOL, &summary.bn);
    s[0] = conv_spec(3, 1, 1, 0, 1, true, DNN_ACT_LOGISTIC);
    gradcheck_ok("conv 1x1 BN logistic", &cfg, s, 1, GC_TOL, &summary.bn);
    s[0] = conv_spec(4, 3, 1, 1, 1, true, DNN_ACT_TANH);
    s[1] = conv_spec(3, 3, 1, 1, 1, true, DNN_ACT_LINEAR);
    gradcheck_ok("conv BN -> conv BN", &cfg, s, 2, GC_TOL, &summary.bn);
}

static void test_gradcheck_connected(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(3, 2, 3, 2);
    struct dnn_layer_spec s[2];

    s[0] = connected_spec(5, false, DNN_ACT_LINEAR);
    gradcheck_ok("connected linear", &cfg, s, 1, GC_TOL, &summary.plain);
    s[0] = connected_spec(4, false, DNN_ACT_LOGISTIC);
    s[1] = connected_spec(3, false, DNN_ACT_TANH);
    gradcheck_ok("connected logistic -> connected tanh", &cfg, s, 2, GC_TOL, &summary.plain);
    /* conv feeding a connected layer: (c, h, w) flattened as it lies in memory. */
    struct dnn_net_config cfg2 = gradcheck_config(2, 4, 4, 2);
    s[0] = conv_spec(2, 3, 1, 1, 1, false, DNN_ACT_TANH);
    s[1] = connected_spec(3, false, DNN_ACT_LINEAR);
    gradcheck_ok("conv -> connected", &cfg2, s, 2, GC_TOL, &summary.plain);
}

static void test_gradcheck_connected_bn(void **state)
{
    (void)state;
    /* BN statistics over the batch only (out_h = out_w = 1). */
    struct dnn_net_config cfg = gradcheck_config(8, 1, 2, 3);
    struct dnn_layer_spec s[2];

    s[0] = connected_spec(4, true, DNN_ACT_LINEAR);
    gradcheck_ok("connected BN linear", &cfg, s, 1, GC_TOL, &summary.bn);
    s[0] = connected_spec(4, true, DNN_ACT_LOGISTIC);
    s[1] = connected_spec(3, true, DNN_ACT_TANH);
    gradcheck_ok("connected BN logistic -> connected BN tanh", &cfg, s, 2, GC_TOL, &summary.bn);
}

static void test_gradcheck_batchnorm_layer(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 5, 5, 2);
    struct dnn_layer_spec s[2];

    s[0] = batchnorm_spec();
    gradcheck_ok("batchnorm layer", &cfg, s, 1, GC_TOL, &summary.bn);
    s[0] = conv_spec(3, 3, 1, 1, 1, false, DNN_ACT_TANH);
    s[1] = batchnorm_spec();
    gradcheck_ok("conv -> batchnorm layer", &cfg, s, 2, GC_TOL, &summary.bn);
}

/*
 * dnn_bn_backward against darknet's formulas (backward_batchnorm_layer), computed
 * here in double on the batchnorm layer: batch 2, 2 channels of 2 values. One
 * change from darknet, see dnn/batchnorm.c: the variance term divides by N - 1,
 * like the forward's variance, where darknet divides by N.
 */
static void test_bn_backward_formula(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 2, 1, 2);
    struct dnn_layer_spec s = batchnorm_spec();
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 5), DNN_OK);
    struct dnn_layer *l = &net->layers[0];
    l->bn.scales[0] = 1.5f;
    l->bn.scales[1] = -0.5f;
    const float x[8] = {1, 2, 0, 0.5f, 3, 6, -1, 4};
    const float d[8] = {0.5f, -1, 2, 0.25f, 1, 0.75f, -0.5f, 1.5f};
    float dx[8] = {0};
    dnn_network_forward(net, x, NULL, true);
    memcpy(l->delta, d, sizeof d);
    dnn_network_backward_range(net, 0, 0, x, dx);

    const int n = 4; /* values per channel */
    for (int c = 0; c < 2; c++) {
        double mean = 0, var = 0, dmean = 0, dvar = 0, dscale = 0;
        size_t idx[4];
        for (int j = 0; j < n; j++)
            idx[j] = (size_t)((j / 2) * 2 + c) * 2 + (size_t)(j % 2);
        for (int j = 0; j < n; j++)
            mean += x[idx[j]] / (double)n;
        for (int j = 0; j < n; j++)
            var += (x[idx[j]] - mean) * (x[idx[j]] - mean) / (n - 1);
        const double scale = l->bn.scales[c], v = var + 1e-5;
        for (int j = 0; j < n; j++) {
            const double xn = (x[idx[j]] - mean) / (sqrt(var) + 1e-6);
            dscale += d[idx[j]] * xn;
            dmean += d[idx[j]] * scale;
            dvar += d[idx[j]] * scale * (x[idx[j]] - mean);
        }
        dmean *= -1 / sqrt(v);
        dvar *= -0.5 * pow(v, -1.5);
        assert_close(l->bn.scale_updates[c], dscale, 1e-5);
        for (int j = 0; j < n; j++) {
            const double want =
                d[idx[j]] * scale / sqrt(v) + dvar * 2 * (x[idx[j]] - mean) / (n - 1) + dmean / n;
            assert_close(dx[idx[j]], want, 1e-5);
        }
    }
    dnn_network_free(net);
}

/* -------------------------------------------------------------- forward answers */

static struct dnn_network *make_net(const struct dnn_net_config *cfg,
                                    const struct dnn_layer_spec *specs, size_t n, bool training)
{
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, cfg, specs, n, training, 5), DNN_OK);
    assert_non_null(net);
    return net;
}

/* One image 3x3, two 2x2 filters, stride 1, no pad: worked by hand. */
static void test_conv_known_answer(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(1, 3, 3, 1);
    struct dnn_layer_spec s = conv_spec(2, 2, 1, 0, 1, false, DNN_ACT_LINEAR);
    struct dnn_network *net = make_net(&cfg, &s, 1, false);
    struct dnn_layer *l = &net->layers[0];
    assert_int_equal(l->out_h, 2);
    assert_int_equal(l->out_w, 2);
    assert_int_equal(l->out_c, 2);
    /* weights (filter, ky, kx): [[1 2] [3 4]] and [[0 1] [-2 0]] */
    const float w[8] = {1, 2, 3, 4, 0, 1, -2, 0};
    memcpy(l->weights, w, sizeof w);
    l->biases[0] = 0.5f;
    l->biases[1] = -1;
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float *y = dnn_network_predict(net, x);
    /* filter 0: 1*1+2*2+4*3+5*4 = 37, 47, 67, 77; filter 1: 2-8 = -6, -7, -9, -10 */
    const float want[8] = {37.5f, 47.5f, 67.5f, 77.5f, -7, -8, -10, -11};
    assert_memory_equal(y, want, sizeof want);
    dnn_network_free(net);
}

/* One image of 2 inputs into 3 outputs: W is (outputs, inputs). */
static void test_connected_known_answer(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 1, 1, 2);
    struct dnn_layer_spec s = connected_spec(3, false, DNN_ACT_LINEAR);
    struct dnn_network *net = make_net(&cfg, &s, 1, false);
    struct dnn_layer *l = &net->layers[0];
    const float w[6] = {1, 2, 3, 4, 5, 6};
    const float b[3] = {0.5f, 0, -1};
    memcpy(l->weights, w, sizeof w);
    memcpy(l->biases, b, sizeof b);
    const float x[4] = {1, -1, 2, 0.5f};
    const float *y = dnn_network_predict(net, x);
    /* image 0: (1-2, 3-4, 5-6) + b; image 1: (2+1, 6+2, 10+3) + b */
    const float want[6] = {-0.5f, -1, -2, 3.5f, 8, 12};
    assert_memory_equal(y, want, sizeof want);
    dnn_network_free(net);
}

/* Naive direct convolution with darknet's layout, in double. */
static double naive_conv(const struct dnn_layer *l, const float *in, int b, int f, int y, int x)
{
    const struct dnn_layer_spec *s = &l->spec;
    const int cg = l->c / s->groups, fg = s->filters / s->groups, g = f / fg;
    const int d = s->dilation > 1 ? s->dilation : 1;
    double sum = l->biases[f];
    for (int ci = 0; ci < cg; ci++) {
        const int c = g * cg + ci;
        for (int ky = 0; ky < s->size; ky++) {
            for (int kx = 0; kx < s->size; kx++) {
                /* a dilated kernel: taps d apart, the image padded by pad*d (AlexeyAB) */
                const int iy = y * s->stride - s->pad * d + ky * d;
                const int ix = x * s->stride - s->pad * d + kx * d;
                if (iy < 0 || iy >= l->h || ix < 0 || ix >= l->w)
                    continue;
                const float wv = l->weights[(((size_t)f * cg + ci) * s->size + ky) * s->size + kx];
                sum += (double)wv * in[(((size_t)b * l->c + c) * l->h + iy) * l->w + ix];
            }
        }
    }
    return sum;
}

/* Random conv layers of every shape option against the naive convolution. */
static void test_conv_matches_naive(void **state)
{
    (void)state;
    static const int cases[][8] = {
        /* c, filters, size, stride, pad, groups, h (w = h + 1), dilation */
        {2, 3, 3, 1, 1, 1, 5, 1}, {4, 6, 3, 2, 1, 2, 6, 1}, {3, 2, 1, 1, 0, 1, 4, 1},
        {4, 4, 1, 1, 0, 4, 3, 1}, {2, 2, 5, 2, 2, 1, 7, 1}, {3, 3, 2, 3, 0, 3, 8, 1},
        {2, 4, 4, 1, 0, 2, 4, 1}, {2, 3, 3, 1, 1, 1, 5, 2}, {2, 3, 3, 2, 1, 1, 7, 3},
        {4, 4, 5, 1, 2, 2, 6, 2},
    };
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 17);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *k = cases[t];
        struct dnn_net_config cfg = gradcheck_config(2, k[6], k[6] + 1, k[0]);
        struct dnn_layer_spec s = conv_spec(k[1], k[2], k[3], k[4], k[5], false, DNN_ACT_LINEAR);
        s.dilation = k[7];
        struct dnn_network *net = make_net(&cfg, &s, 1, false);
        struct dnn_layer *l = &net->layers[0];
        for (size_t i = 0; i < l->nbiases; i++)
            l->biases[i] = dnn_rng_uniform(&rng, -1, 1);
        const size_t nin = net->inputs * 2;
        float *x = malloc(nin * sizeof(float));
        assert_non_null(x);
        for (size_t i = 0; i < nin; i++)
            x[i] = dnn_rng_uniform(&rng, -1, 1);
        const float *y = dnn_network_predict(net, x);
        for (int b = 0; b < 2; b++)
            for (int f = 0; f < l->out_c; f++)
                for (int oy = 0; oy < l->out_h; oy++)
                    for (int ox = 0; ox < l->out_w; ox++) {
                        const double want = naive_conv(l, x, b, f, oy, ox);
                        const float got =
                            y[(((size_t)b * l->out_c + f) * l->out_h + oy) * l->out_w + ox];
                        if (fabs(got - want) > 1e-5 * (1 + fabs(want)))
                            fail_msg("case %zu: out[%d][%d][%d][%d] = %g, naive %g", t, b, f, oy,
                                     ox, (double)got, want);
                    }
        free(x);
        dnn_network_free(net);
    }
}

/* ---------------------------------------------------------- batch normalisation */

/* The batchnorm layer in training and inference against its formulas. */
static void test_batchnorm_formulas(void **state)
{
    (void)state;
    /* batch 2, 2 channels of 2x1: channel 0 holds 1,2 | 3,6; channel 1 holds 0,0 | 0,4 */
    struct dnn_net_config cfg = gradcheck_config(2, 2, 1, 2);
    struct dnn_layer_spec s = batchnorm_spec();
    struct dnn_network *net = make_net(&cfg, &s, 1, true);
    struct dnn_layer *l = &net->layers[0];
    assert_int_equal(l->n_params, 3);
    l->bn.scales[0] = 2;
    l->bn.scales[1] = 0.5f;
    const float x[8] = {1, 2, 0, 0, 3, 6, 0, 4};

    dnn_network_forward(net, x, NULL, true);
    /* channel 0: mean 3, unbiased variance (4+1+0+9)/3 = 14/3; channel 1: mean 1, 12/3 */
    const double m[2] = {3, 1}, v[2] = {14.0 / 3, 4}, sc[2] = {2, 0.5};
    for (int c = 0; c < 2; c++) {
        assert_close(l->bn.mean[c], m[c], 1e-6);
        assert_close(l->bn.variance[c], v[c], 1e-5);
        /* rolling statistics start at 0 and move 1% towards the batch's */
        assert_close(l->bn.rolling_mean[c], 0.01 * m[c], 1e-7);
        assert_close(l->bn.rolling_variance[c], 0.01 * v[c], 1e-7);
    }
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 2; k++) {
                const size_t i = (size_t)(b * 2 + c) * 2 + k;
                const double want = sc[c] * (x[i] - m[c]) / (sqrt(v[c]) + 1e-6);
                assert_close(l->output[i], want, 1e-5);
            }

    /* Inference uses the rolling statistics, not the batch's. */
    l->bn.rolling_mean[0] = 0.5f;
    l->bn.rolling_mean[1] = -1;
    l->bn.rolling_variance[0] = 4;
    l->bn.rolling_variance[1] = 0.25f;
    const double rm[2] = {0.5, -1}, rs[2] = {2, 0.5};
    const float *y = dnn_network_predict(net, x);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 2; k++) {
                const size_t i = (size_t)(b * 2 + c) * 2 + k;
                const double want = sc[c] * (x[i] - rm[c]) / (rs[c] + 1e-6);
                assert_close(y[i], want, 1e-5);
            }
    /* and leaves them alone */
    assert_true(l->bn.rolling_mean[0] == 0.5f && l->bn.rolling_variance[1] == 0.25f);
    /* A second training pass: rolling = .99 * rolling + .01 * batch statistic. */
    dnn_network_forward(net, x, NULL, true);
    assert_close(l->bn.rolling_mean[0], 0.99 * 0.5 + 0.01 * m[0], 1e-6);
    assert_close(l->bn.rolling_variance[1], 0.99 * 0.25 + 0.01 * v[1], 1e-6);
    dnn_network_free(net);
}

/* conv + BN in inference: (conv - rolling_mean) / (sqrt(rolling_var) + 1e-6) * scale + bias. */
static void test_conv_bn_inference_uses_rolling_stats(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(1, 3, 3, 1);
    struct dnn_layer_spec s = conv_spec(2, 2, 1, 0, 1, true, DNN_ACT_LINEAR);
    struct dnn_network *net = make_net(&cfg, &s, 1, false);
    struct dnn_layer *l = &net->layers[0];
    const float w[8] = {1, 2, 3, 4, 0, 1, -2, 0};
    memcpy(l->weights, w, sizeof w);
    const float bias[2] = {0.5f, -1}, scales[2] = {2, 3}, rm[2] = {40, -8}, rv[2] = {16, 1};
    memcpy(l->biases, bias, sizeof bias);
    memcpy(l->bn.scales, scales, sizeof scales);
    memcpy(l->bn.rolling_mean, rm, sizeof rm);
    memcpy(l->bn.rolling_variance, rv, sizeof rv);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float *y = dnn_network_predict(net, x);
    const double conv[8] = {37, 47, 67, 77, -6, -7, -9, -10};
    for (int i = 0; i < 8; i++) {
        const int c = i / 4;
        const double want = (conv[i] - rm[c]) / (sqrt(rv[c]) + 1e-6) * scales[c] + bias[c];
        assert_close(y[i], want, 1e-5);
    }
    dnn_network_free(net);
}

/* A mixed network whose layers exercise BN, groups, 1x1 and connected. */
static size_t mixed_specs(struct dnn_layer_spec *s)
{
    s[0] = conv_spec(4, 3, 1, 1, 1, true, DNN_ACT_LEAKY);
    s[1] = conv_spec(4, 3, 2, 1, 2, false, DNN_ACT_LOGISTIC);
    s[2] = conv_spec(6, 1, 1, 0, 1, true, DNN_ACT_TANH);
    s[3] = batchnorm_spec();
    s[4] = connected_spec(5, true, DNN_ACT_RELU);
    s[5] = connected_spec(3, false, DNN_ACT_LINEAR);
    return 6;
}

/*
 * An inference network (no training buffers at all) computes exactly what a
 * training network computes in inference mode, and touches none of those buffers
 * (under ASan a stray access to one would be a NULL dereference).
 */
static void test_inference_network_matches_training(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(3, 6, 5, 2);
    struct dnn_layer_spec s[6];
    const size_t n = mixed_specs(s);
    struct dnn_network *train = make_net(&cfg, s, n, true);
    struct dnn_network *infer = make_net(&cfg, s, n, false);

    size_t bytes_train = 0, bytes_infer = 0;
    assert_int_equal(dnn_network_plan(&cfg, s, n, true, &bytes_train), DNN_OK);
    assert_int_equal(dnn_network_plan(&cfg, s, n, false, &bytes_infer), DNN_OK);
    assert_true(bytes_infer < bytes_train);
    for (size_t i = 0; i < n; i++) {
        const struct dnn_layer *l = &infer->layers[i];
        assert_null(l->delta);
        assert_null(l->bn.x);
        assert_null(l->bn.x_norm);
        assert_null(l->bn.mean);
        assert_null(l->weight_updates);
        assert_null(l->bn.scale_updates);
    }

    struct dnn_rng rng;
    dnn_rng_seed(&rng, 8);
    const size_t nin = train->inputs * 3;
    float *x = malloc(nin * sizeof(float));
    assert_non_null(x);
    /* Move the rolling statistics away from their initial 0 with a few training passes. */
    for (int it = 0; it < 3; it++) {
        for (size_t i = 0; i < nin; i++)
            x[i] = dnn_rng_uniform(&rng, -1, 1);
        dnn_network_forward(train, x, NULL, true);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < train->layers[i].n_params; p++) {
            const struct dnn_param *src = &train->layers[i].params[p];
            const struct dnn_param *dst = &infer->layers[i].params[p];
            assert_string_equal(src->name, dst->name);
            assert_int_equal(src->count, dst->count);
            memcpy(dst->value, src->value, src->count * sizeof(float));
        }
    for (size_t i = 0; i < nin; i++)
        x[i] = dnn_rng_uniform(&rng, -1, 1);
    const size_t out = dnn_network_output_index(train);
    const size_t nout = train->layers[out].outputs * 3;
    dnn_network_forward(train, x, NULL, false);
    float *want = malloc(nout * sizeof(float));
    assert_non_null(want);
    memcpy(want, train->layers[out].output, nout * sizeof(float));
    const float *got = dnn_network_predict(infer, x);
    assert_memory_equal(got, want, nout * sizeof(float));
    /* and the training network's prediction is deterministic */
    assert_memory_equal(dnn_network_predict(train, x), want, nout * sizeof(float));
    free(want);
    free(x);
    dnn_network_free(infer);
    dnn_network_free(train);
}

/* ------------------------------------------------------------------ plumbing */

static void assert_param_names(const struct dnn_layer *l, const char *const *names, size_t n)
{
    assert_int_equal(l->n_params, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l->params[i].name, names[i]);
        const bool rolling = strncmp(names[i], "rolling_", 8) == 0;
        assert_true(rolling == (l->params[i].update == NULL));
    }
}

/* Parameters in darknet's .weights order, with the right sizes. */
static void test_param_order(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 4, 4, 4);
    struct dnn_layer_spec s[5] = {conv_spec(6, 3, 1, 1, 2, true, DNN_ACT_LEAKY),
                                  conv_spec(6, 3, 1, 1, 1, false, DNN_ACT_LOGISTIC),
                                  batchnorm_spec(), connected_spec(5, true, DNN_ACT_LINEAR),
                                  connected_spec(4, false, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(&cfg, s, 5, true);
    static const char *const conv_bn[] = {"biases", "scales", "rolling_mean", "rolling_variance",
                                          "weights"};
    static const char *const plain[] = {"biases", "weights"};
    static const char *const bn_layer[] = {"scales", "rolling_mean", "rolling_variance"};
    static const char *const conn_bn[] = {"biases", "weights", "scales", "rolling_mean",
                                          "rolling_variance"};
    assert_param_names(&net->layers[0], conv_bn, 5);
    assert_param_names(&net->layers[1], plain, 2);
    assert_param_names(&net->layers[2], bn_layer, 3);
    assert_param_names(&net->layers[3], conn_bn, 5);
    assert_param_names(&net->layers[4], plain, 2);
    /* conv 0: 6 filters over 4/2 channels of 3x3 */
    assert_int_equal(net->layers[0].params[4].count, 6 * 2 * 3 * 3);
    assert_int_equal(net->layers[0].params[0].count, 6);
    assert_int_equal(net->layers[2].params[0].count, 6);
    /* connected 3: 5 outputs over 6*4*4 inputs */
    assert_int_equal(net->layers[3].params[1].count, 5 * 96);
    assert_int_equal(net->layers[3].params[2].count, 5);
    /* initial values: BN scales 1, rolling statistics and biases 0 */
    for (size_t p = 0; p < 4; p++) {
        const struct dnn_param *prm = &net->layers[0].params[p];
        for (size_t i = 0; i < prm->count; i++)
            assert_true(prm->value[i] == (p == 1 ? 1.0f : 0.0f));
    }
    dnn_network_free(net);
}

/* Bad hyper-parameters are refused with a status, not a crash. */
static void test_setup_rejects(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(1, 5, 5, 3);
    struct dnn_network *net = NULL;
    struct dnn_layer_spec s;

    s = conv_spec(4, 3, 1, 1, 2, false, DNN_ACT_LINEAR); /* 3 channels, 2 groups */
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_SHAPE);
    s = conv_spec(3, 3, 1, 1, 3, false, DNN_ACT_LINEAR);
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_OK);
    dnn_network_free(net);
    s = conv_spec(4, 3, 1, 1, 3, false, DNN_ACT_LINEAR); /* 4 filters, 3 groups */
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_SHAPE);
    s = conv_spec(4, 0, 1, 1, 1, false, DNN_ACT_LINEAR);
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_INVALID);
    s = conv_spec(4, 3, 0, 1, 1, false, DNN_ACT_LINEAR);
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_INVALID);
    s = conv_spec(0, 3, 1, 1, 1, false, DNN_ACT_LINEAR);
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_INVALID);
    s = conv_spec(4, 9, 1, 1, 1, false, DNN_ACT_LINEAR); /* 9x9 over a padded 7x7 */
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_SHAPE);
    s = conv_spec(4, 3, 1, 1 << 30, 1, false, DNN_ACT_LINEAR);
    assert_int_not_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_OK);
    s = connected_spec(0, false, DNN_ACT_LINEAR);
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_INVALID);
    /* Dilated without padding: darknet's output size (3) is not what the taps give (1). */
    s = conv_spec(4, 3, 1, 0, 1, false, DNN_ACT_LINEAR);
    s.dilation = 2;
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_SHAPE);
    s.dilation = -1;
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_ERR_INVALID);
    s = conv_spec(4, 1, 1, 0, 1, false, DNN_ACT_LINEAR); /* 1x1: dilation has no effect */
    s.dilation = 5;
    assert_int_equal(dnn_network_create(&net, &cfg, &s, 1, true, 1), DNN_OK);
    dnn_network_free(net);
    net = NULL;
    assert_null(net);
}

/* Sum of the input delta after backward from a fixed output delta, from a given start. */
static void backward_into(struct dnn_network *net, const float *x, float start, float *dx,
                          size_t nin)
{
    struct dnn_layer *last = &net->layers[net->n - 1];
    for (size_t i = 0; i < nin; i++)
        dx[i] = start;
    dnn_network_forward(net, x, NULL, true);
    for (size_t i = 0; i < last->outputs * (size_t)last->batch; i++)
        last->delta[i] = (float)((int)(i % 7) - 3) * 0.25f;
    dnn_network_backward_range(net, 0, net->n - 1, x, dx);
}

/* Backward adds into the input delta (route and shortcut rely on it), for every path. */
static void test_backward_adds_to_input_delta(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 4, 4, 2);
    struct dnn_layer_spec specs[] = {conv_spec(3, 3, 1, 1, 1, false, DNN_ACT_LINEAR),
                                     conv_spec(4, 1, 1, 0, 2, true, DNN_ACT_LOGISTIC),
                                     connected_spec(3, false, DNN_ACT_LINEAR),
                                     connected_spec(3, true, DNN_ACT_LINEAR), batchnorm_spec()};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        struct dnn_network *net = make_net(&cfg, &specs[k], 1, true);
        const size_t nin = net->inputs * 2;
        float *x = malloc(nin * sizeof(float)), *d0 = malloc(nin * sizeof(float)),
              *d1 = malloc(nin * sizeof(float));
        assert_true(x && d0 && d1);
        for (size_t i = 0; i < nin; i++)
            x[i] = (float)((int)(i % 5) - 2) * 0.3f + (float)i * 0.01f;
        backward_into(net, x, 0, d0, nin);
        backward_into(net, x, 1.5f, d1, nin);
        for (size_t i = 0; i < nin; i++)
            assert_close(d1[i], d0[i] + 1.5f, 1e-6);
        free(d1);
        free(d0);
        free(x);
        dnn_network_free(net);
    }
}

/* Update: decay shrinks weights only; biases and BN scales move by their updates alone. */
static void test_update_decay_on_weights_only(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 3, 3, 1);
    cfg.learning_rate = 0.5f;
    cfg.momentum = 0.25f;
    cfg.decay = 0.1f;
    struct dnn_layer_spec s[2] = {conv_spec(2, 3, 1, 1, 1, true, DNN_ACT_LINEAR),
                                  connected_spec(2, true, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(&cfg, s, 2, true);
    for (size_t li = 0; li < 2; li++) {
        struct dnn_layer *l = &net->layers[li];
        const float w0 = l->weights[0], b0 = l->biases[0];
        l->bias_updates[0] = 2;
        l->bn.scale_updates[0] = -4;
        l->weight_updates[0] = 0;
        dnn_network_update_range(net, li, li);
        /* lr / batch = 0.25 */
        assert_close(l->biases[0], b0 + 0.25f * 2, 1e-7);
        assert_close(l->bn.scales[0], 1 + 0.25f * -4, 1e-7);
        assert_close(l->weights[0], w0 + 0.25f * (-0.1f * 2 * w0), 1e-7);
        /* momentum keeps a quarter of the update */
        assert_close(l->bias_updates[0], 0.5f, 1e-7);
        assert_close(l->bn.scale_updates[0], -1, 1e-7);
        assert_close(l->weight_updates[0], 0.25f * (-0.1f * 2 * w0), 1e-7);
    }
    dnn_network_free(net);
}

/* darknet's per-layer learning_rate: the layer's updates use rate * scale; a scale of 0
 * (stored as -0.0) leaves the parameters as they are, the default (+0.0) is 1. */
static void test_layer_rate_scale(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 3, 3, 1);
    cfg.learning_rate = 0.5f;
    cfg.momentum = 0;
    cfg.decay = 0;
    struct dnn_layer_spec s[3] = {conv_spec(2, 3, 1, 1, 1, false, DNN_ACT_LINEAR),
                                  connected_spec(2, false, DNN_ACT_LINEAR),
                                  connected_spec(2, false, DNN_ACT_LINEAR)};
    s[0].learning_rate_scale = dnn_layer_rate_scale_encode(0.5f);
    s[1].learning_rate_scale = dnn_layer_rate_scale_encode(0);
    s[2].learning_rate_scale = dnn_layer_rate_scale_encode(1);
    assert_true(dnn_layer_rate_scale(&s[0]) == 0.5f);
    assert_true(dnn_layer_rate_scale(&s[1]) == 0.0f);
    assert_true(dnn_layer_rate_scale(&s[2]) == 1.0f);
    struct dnn_network *net = make_net(&cfg, s, 3, true);
    const float b0 = net->layers[0].biases[0], b1 = net->layers[1].biases[0],
                b2 = net->layers[2].biases[0];
    for (int i = 0; i < 3; i++)
        net->layers[i].bias_updates[0] = 2;
    dnn_network_update_range(net, 0, 2);
    /* lr / batch = 0.25, times each layer's scale */
    assert_close(net->layers[0].biases[0], b0 + 0.5f * 0.25f * 2, 1e-7);
    assert_true(net->layers[1].biases[0] == b1);
    assert_close(net->layers[2].biases[0], b2 + 0.25f * 2, 1e-7);
    dnn_network_free(net);
}

/* darknet's adam (its adam_update_gpu) on every trainable tensor, worked in double: two
 * updates at batch numbers 3 and 4, so that the moments carry over and the bias correction
 * uses the batch number; a batchnorm layer keeps momentum SGD. */
static double adam_want(double w, double d, double *m, double *v, int t, double decay_batch)
{
    const double b1 = 0.8, b2 = 0.9, eps = 1e-3, lr = 0.5;
    d -= decay_batch * w;
    *m = b1 * *m + (1 - b1) * d;
    *v = b2 * *v + (1 - b2) * d * d;
    const double mhat = *m / (1 - pow(b1, t)), vhat = *v / (1 - pow(b2, t));
    const double ratio = mhat / (sqrt(vhat) + eps);
    /* The engine bounds a step to one learning rate (dnn_adam_step). */
    return w + lr * (ratio > 1 ? 1 : ratio < -1 ? -1 : ratio);
}

static void test_adam_update(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 3, 3, 1);
    cfg.learning_rate = 0.5f;
    cfg.momentum = 0.25f;
    cfg.decay = 0.1f;
    cfg.adam = true;
    cfg.beta1 = 0.8f;
    cfg.beta2 = 0.9f;
    cfg.epsilon = 1e-3f;
    struct dnn_layer_spec s[3] = {conv_spec(2, 3, 1, 1, 1, true, DNN_ACT_LINEAR),
                                  connected_spec(2, true, DNN_ACT_LINEAR), batchnorm_spec()};
    struct dnn_network *net = make_net(&cfg, s, 3, true);
    net->seen = 3 * 2; /* batch 2, one subdivision: batch number 3 */
    for (size_t li = 0; li < 2; li++) {
        const struct dnn_layer *l = &net->layers[li];
        for (size_t p = 0; p < l->n_params; p++) {
            const struct dnn_param *prm = &l->params[p];
            if (prm->update) {
                assert_non_null(prm->adam_m);
                assert_non_null(prm->adam_v);
            } else {
                assert_null(prm->adam_m);
            }
        }
    }
    assert_null(net->layers[2].params[0].adam_m);

    struct dnn_layer *c = &net->layers[0], *f = &net->layers[1], *bn = &net->layers[2];
    double w = c->weights[0], b = f->biases[1], sc = c->bn.scales[1];
    double mw = 0, vw = 0, mb = 0, vb = 0, ms = 0, vs = 0;
    const float bn_scale0 = bn->bn.scales[0];
    for (int t = 3; t <= 4; t++) {
        c->weight_updates[0] = t == 3 ? 1.5f : -0.5f;
        f->bias_updates[1] = t == 3 ? -2.0f : 0.25f;
        c->bn.scale_updates[1] = 0.75f;
        bn->bn.scale_updates[0] = 4;
        const double dw = c->weight_updates[0], db = f->bias_updates[1];
        dnn_network_update_range(net, 0, 2);
        /* decay applies to every tensor under adam: -decay * batch = -0.2 */
        w = adam_want(w, dw, &mw, &vw, t, 0.2);
        b = adam_want(b, db, &mb, &vb, t, 0.2);
        sc = adam_want(sc, 0.75, &ms, &vs, t, 0.2);
        assert_close(c->weights[0], w, 1e-5);
        assert_close(f->biases[1], b, 1e-5);
        assert_close(c->bn.scales[1], sc, 1e-5);
        assert_close(c->params[0].adam_m[0], 0, 1e-9); /* biases had no update: m stays 0 */
        assert_true(c->weight_updates[0] == 0.0f);     /* the update is consumed */
        assert_true(f->bias_updates[1] == 0.0f);
        net->seen += 2;
    }
    /* The batchnorm layer: momentum SGD, lr / batch = 0.25 times an update of 4, twice (the
     * loop sets the update each time), and momentum keeps a quarter of it. */
    assert_close(bn->bn.scales[0], bn_scale0 + 2 * 0.25f * 4, 1e-6);
    assert_close(bn->bn.scale_updates[0], 0.25f * 4, 1e-6);
    dnn_network_free(net);

    /* B1, B2 and eps come from the normal world: a denormal eps with B2 = 0 and B1 near 1
     * would multiply the step many times over (the review's attack); every step stays within
     * one learning rate per parameter. */
    struct dnn_net_config hostile = cfg;
    hostile.decay = 0;
    hostile.beta1 = 0.999999f;
    hostile.beta2 = 0;
    hostile.epsilon = 1.4e-45f;
    net = make_net(&hostile, s, 3, true);
    c = &net->layers[0];
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < c->nweights; i++)
            c->weight_updates[i] = (i % 2 ? 1e-30f : -3.0f) * (float)(t + 1);
        const float w0 = c->weights[0], w1 = c->weights[1];
        dnn_network_update_range(net, 0, 0);
        assert_true(fabsf(c->weights[0] - w0) <= hostile.learning_rate * 1.000001f);
        assert_true(fabsf(c->weights[1] - w1) <= hostile.learning_rate * 1.000001f);
        net->seen += 2;
    }
    dnn_network_free(net);

    /* beta 1 or more, or epsilon 0, divides by zero: refused. */
    cfg.beta1 = 1;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 1, true, 1), DNN_ERR_INVALID);
    cfg.beta1 = 0.8f;
    cfg.epsilon = 0;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 1, true, 1), DNN_ERR_INVALID);
}

/* The 1x1 stride-1 convolution needs no workspace; others need one column matrix. */
static void test_workspace_sizes(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(2, 6, 5, 4);
    struct dnn_layer_spec s[3] = {conv_spec(4, 1, 1, 0, 1, false, DNN_ACT_LINEAR),
                                  conv_spec(4, 3, 2, 1, 2, false, DNN_ACT_LINEAR),
                                  connected_spec(3, false, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(&cfg, s, 3, true);
    assert_int_equal(net->layers[0].workspace_floats, 0);
    /* out 3x3, 3*3*(4/2) rows */
    assert_int_equal(net->layers[1].workspace_floats, 3 * 3 * 3 * 3 * 2);
    assert_int_equal(net->layers[2].workspace_floats, 0);
    assert_int_equal(net->workspace_floats, 3 * 3 * 3 * 3 * 2);
    dnn_network_free(net);
}

static int print_summary(void **state)
{
    (void)state;
    print_message("max gradcheck error: conv/connected %.2e, with batch norm %.2e\n", summary.plain,
                  summary.bn);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_conv),
        cmocka_unit_test(test_gradcheck_conv_bn),
        cmocka_unit_test(test_gradcheck_connected),
        cmocka_unit_test(test_gradcheck_connected_bn),
        cmocka_unit_test(test_gradcheck_batchnorm_layer),
        cmocka_unit_test(test_bn_backward_formula),
        cmocka_unit_test(test_conv_known_answer),
        cmocka_unit_test(test_connected_known_answer),
        cmocka_unit_test(test_conv_matches_naive),
        cmocka_unit_test(test_batchnorm_formulas),
        cmocka_unit_test(test_conv_bn_inference_uses_rolling_stats),
        cmocka_unit_test(test_inference_network_matches_training),
        cmocka_unit_test(test_param_order),
        cmocka_unit_test(test_setup_rejects),
        cmocka_unit_test(test_backward_adds_to_input_delta),
        cmocka_unit_test(test_update_decay_on_weights_only),
        cmocka_unit_test(test_adam_update),
        cmocka_unit_test(test_layer_rate_scale),
        cmocka_unit_test(test_workspace_sizes),
    };
    return cmocka_run_group_tests_name("layers_conv", tests, NULL, print_summary);
}
