/*
 * test_layers_antialias.c - AlexeyAB's antialiasing=1/2 on [convolutional] and [maxpool]:
 * the layer at stride 1, then a fixed blur with the layer's stride (dnn/antialias.c).
 *
 * Backward is checked against finite differences; forward against values worked out by
 * hand from AlexeyAB's blur kernels; the cfg key as AlexeyAB reads it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "dnn/dnn_internal.h"
#include "tests/helpers/gradcheck.h"

static struct dnn_layer_spec conv(int filters, int size, int stride, int aa,
                                  enum dnn_activation act, bool bn)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_CONVOLUTIONAL,
                               .filters = filters,
                               .size = size,
                               .stride = stride,
                               .pad = size / 2,
                               .groups = 1,
                               .batch_normalize = bn,
                               .antialiasing = aa,
                               .activation = act};
    return s;
}

static struct dnn_layer_spec maxpool(int size, int stride, int pad, int aa)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_MAXPOOL, .size = size, .stride = stride, .pad = pad, .antialiasing = aa};
    return s;
}

/* step: smaller for max pooling, whose argmax a large step can move */
static void expect_gradients(const char *what, int batch, int h, int w, int c,
                             const struct dnn_layer_spec *specs, size_t n, float step)
{
    struct dnn_net_config cfg = gradcheck_config(batch, h, w, c);
    struct gradcheck_result r = gradcheck_network(&cfg, specs, n, step, 2e-3, 300);
    printf("  %-40s %4zu derivatives, max error %.2e\n", what, r.checked, r.max_error);
    assert_true(r.checked > 0);
    assert_int_equal(r.mismatches, 0);
}

static struct dnn_network *make_net(int h, int w, int c, const struct dnn_layer_spec *specs,
                                    size_t n)
{
    struct dnn_net_config cfg = gradcheck_config(1, h, w, c);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, specs, n, true, 5), DNN_OK);
    return net;
}

static void test_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec c1[] = {conv(3, 3, 2, 1, DNN_ACT_LOGISTIC, false)};
    expect_gradients("conv 3x3/2, antialiasing=1", 2, 6, 6, 2, c1, 1, 1e-2f);
    const struct dnn_layer_spec c2[] = {conv(2, 3, 2, 2, DNN_ACT_TANH, true),
                                        conv(2, 1, 1, 1, DNN_ACT_LINEAR, false)};
    expect_gradients("conv/2 bn aa=2, conv/1 aa=1", 2, 7, 7, 2, c2, 2, 1e-2f);
    const struct dnn_layer_spec m1[] = {conv(2, 1, 1, 0, DNN_ACT_LINEAR, false),
                                        maxpool(2, 2, 1, 1)};
    expect_gradients("maxpool 2x2/2, antialiasing=1", 1, 6, 6, 2, m1, 2, 1e-3f);
    const struct dnn_layer_spec m2[] = {conv(2, 1, 1, 0, DNN_ACT_LINEAR, false),
                                        maxpool(3, 2, 2, 2)};
    expect_gradients("maxpool 3x3/2, antialiasing=2", 1, 7, 7, 2, m2, 2, 1e-3f);
}

/* A 1x1/1 maxpool is the identity: the output is the blur of the input itself. */
static void test_blur_known_answers(void **state)
{
    (void)state;
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i; /* 4x4, row-major */
    const struct dnn_layer_spec s3[] = {maxpool(1, 2, 0, 1)};
    struct dnn_network *net = make_net(4, 4, 1, s3, 1);
    assert_int_equal(net->layers[0].out_h, 2);
    assert_int_equal(net->layers[0].out_w, 2);
    assert_int_equal(net->layers[0].aa_h, 4);
    const float *y = dnn_network_predict(net, x);
    /* (0,0): taps (0,0)*4 + (0,1)*2 + (1,0)*2 + (1,1)*1, over 16 */
    assert_true(y[0] == (4 * 0 + 2 * 1 + 2 * 4 + 1 * 5) / 16.0f);
    /* (1,1) at (2,2): 1,2,1 / 2,4,2 / 1,2,1 over rows 1..3, columns 1..3 */
    assert_true(y[3] == (5 + 2 * 6 + 7 + 2 * 9 + 4 * 10 + 2 * 11 + 13 + 2 * 14 + 15) / 16.0f);
    dnn_network_free(net);

    const struct dnn_layer_spec s2[] = {maxpool(1, 2, 0, 2)};
    net = make_net(4, 4, 1, s2, 1);
    y = dnn_network_predict(net, x);
    const float want2[4] = {(0 + 1 + 4 + 5) / 4.0f, (2 + 3 + 6 + 7) / 4.0f,
                            (8 + 9 + 12 + 13) / 4.0f, (10 + 11 + 14 + 15) / 4.0f};
    for (int i = 0; i < 4; i++)
        assert_true(y[i] == want2[i]);
    dnn_network_free(net);
}

/* The blur has no parameters: the layer keeps a plain convolution's, and its shape is the
 * strided one. */
static void test_conv_shape_and_params(void **state)
{
    (void)state;
    const struct dnn_layer_spec plain[] = {conv(4, 3, 2, 0, DNN_ACT_LEAKY, true)};
    const struct dnn_layer_spec aa[] = {conv(4, 3, 2, 1, DNN_ACT_LEAKY, true)};
    struct dnn_network *a = make_net(9, 8, 3, plain, 1);
    struct dnn_network *b = make_net(9, 8, 3, aa, 1);
    assert_int_equal(b->layers[0].out_h, a->layers[0].out_h);
    assert_int_equal(b->layers[0].out_w, a->layers[0].out_w);
    assert_int_equal(b->layers[0].aa_h, 9);
    assert_int_equal(b->layers[0].aa_w, 8);
    assert_int_equal(b->layers[0].n_params, a->layers[0].n_params);
    for (size_t p = 0; p < a->layers[0].n_params; p++)
        assert_int_equal(b->layers[0].params[p].count, a->layers[0].params[p].count);
    assert_int_equal(b->layers[0].spec.stride, 2); /* kept after setup, forward, backward */
    dnn_network_free(a);
    dnn_network_free(b);
}

static void test_cfg_key(void **state)
{
    (void)state;
    static const char text[] = "[net]\nheight=8\nwidth=8\nchannels=1\n"
                               "[convolutional]\nfilters=2\nsize=3\nstride=2\npad=1\n"
                               "antialiasing=1\n"
                               "[maxpool]\nsize=2\nstride=2\nantialiasing=2\n"
                               "[convolutional]\nfilters=2\nsize=1\nantialiasing=7\n";
    struct dk_cfg *cfg = NULL;
    struct dk_model m;
    struct dk_error err = {{0}};
    if (dk_cfg_read_mem("aa.cfg", text, strlen(text), false, &cfg, &err) != 0 ||
        dk_parse_network_cfg(cfg, &m, &err) != 0)
        fail_msg("%s", err.msg);
    dk_cfg_free(cfg);
    assert_int_equal(m.specs[0].antialiasing, 1);
    assert_int_equal(m.specs[1].antialiasing, 2);
    assert_int_equal(m.specs[2].antialiasing, 1); /* AlexeyAB: any other value is 3x3 */
    dk_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_blur_known_answers),
        cmocka_unit_test(test_conv_shape_and_params),
        cmocka_unit_test(test_cfg_key),
    };
    return cmocka_run_group_tests_name("layers_antialias", tests, NULL, NULL);
}
