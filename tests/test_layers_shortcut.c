/*
 * test_layers_shortcut.c - AlexeyAB's [shortcut]: several sources (from=-2,-3) and learned
 * weights (weights_type, weights_normalization), from the cfg to the engine.
 *
 * Without normalization the backward pass is checked against finite differences; with a
 * relu or softmax normalization darknet's weight update is not the exact gradient (it
 * leaves the normalization out), so those are checked against values worked out by hand
 * from AlexeyAB's formulas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "dnn/dnn_internal.h"
#include "host/layer_table.h"
#include "tests/helpers/gradcheck.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A 1x1 stride-1 maxpool: output = input, with a delta of its own. */
static struct dnn_layer_spec identity(void)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_MAXPOOL, .size = 1, .stride = 1};
    return s;
}

static struct dnn_layer_spec route2(int a, int b)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_ROUTE, .n_route = 2, .route = {a, b}};
    return s;
}

/* AlexeyAB's shortcut from `from` and `extra`, with weights wt normalized by wn. */
static struct dnn_layer_spec multi(int from, int extra, enum dnn_shortcut_weights wt,
                                   enum dnn_weights_normalization wn, enum dnn_activation act)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_SHORTCUT,
                               .from = from,
                               .n_route = extra >= 0 ? 1 : 0,
                               .route = {extra >= 0 ? extra : 0},
                               .weights_type = wt,
                               .weights_normalization = wn,
                               .activation = act};
    return s;
}

static void expect_gradients(const char *what, int batch, int h, int w, int c,
                             const struct dnn_layer_spec *specs, size_t n)
{
    struct dnn_net_config cfg = gradcheck_config(batch, h, w, c);
    struct gradcheck_result r = gradcheck_network(&cfg, specs, n, 1e-2f, 1e-3, 400);
    printf("  %-40s %4zu derivatives, max error %.2e\n", what, r.checked, r.max_error);
    assert_true(r.checked > 0);
    assert_int_equal(r.mismatches, 0);
}

static struct dnn_network *make_net(int batch, int h, int w, int c,
                                    const struct dnn_layer_spec *specs, size_t n, bool training)
{
    struct dnn_net_config cfg = gradcheck_config(batch, h, w, c);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, specs, n, training, 3), DNN_OK);
    return net;
}

/* ------------------------------------------------------------ gradient checks */

static void test_multi_gradients(void **state)
{
    (void)state;
    /* the input (layer 2, 4 channels), layer 1 (4 channels) and layer 0 (2 channels:
     * reaches the first half of each image only) */
    const struct dnn_layer_spec base[] = {identity(), route2(0, 0), identity()};
    struct dnn_layer_spec s[4];
    memcpy(s, base, sizeof base);

    s[3] = multi(1, 0, DNN_SHORTCUT_WEIGHTS_NONE, DNN_WEIGHTS_NORM_NONE, DNN_ACT_LINEAR);
    expect_gradients("two sources, no weights", 2, 3, 3, 2, s, 4);
    s[3] = multi(1, 0, DNN_SHORTCUT_WEIGHTS_PER_FEATURE, DNN_WEIGHTS_NORM_NONE, DNN_ACT_LOGISTIC);
    expect_gradients("two sources, per_feature", 2, 3, 3, 2, s, 4);
    s[3] = multi(0, 1, DNN_SHORTCUT_WEIGHTS_PER_CHANNEL, DNN_WEIGHTS_NORM_NONE, DNN_ACT_TANH);
    expect_gradients("two sources, per_channel", 2, 3, 3, 2, s, 4);
    s[3] = multi(0, -1, DNN_SHORTCUT_WEIGHTS_PER_CHANNEL, DNN_WEIGHTS_NORM_NONE, DNN_ACT_MISH);
    expect_gradients("one source, per_channel, mish", 2, 3, 3, 2, s, 4);
}

/* The weights are parameters in .weights order, and start at 1 as AlexeyAB's. */
static void test_initial_weights(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {
        identity(), route2(0, 0), identity(),
        multi(1, 0, DNN_SHORTCUT_WEIGHTS_PER_CHANNEL, DNN_WEIGHTS_NORM_SOFTMAX, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(1, 2, 2, 2, s, 4, true);
    const struct dnn_layer *l = &net->layers[3];
    assert_int_equal(l->nweights, 3 * 4); /* (2 sources + the input) * 4 channels */
    assert_int_equal(l->n_params, 1);
    assert_string_equal(l->params[0].name, "weights");
    assert_int_equal(l->params[0].count, l->nweights);
    assert_non_null(l->params[0].update);
    for (size_t i = 0; i < l->nweights; i++)
        assert_true(l->weights[i] == 1.0f);
    dnn_network_free(net);
}

/* ------------------------------------------------------------ known answers */

/* One 1x1x2 image: layer 0 and 1 are identities, layer 2 the shortcut from 0 and 0 again
 * (three slots, each the input itself); returns the network built with weights w. */
static struct dnn_network *three_slots(enum dnn_weights_normalization wn, const float w[3])
{
    const struct dnn_layer_spec s[] = {
        identity(), identity(), multi(0, 0, DNN_SHORTCUT_WEIGHTS_PER_FEATURE, wn, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(1, 1, 1, 2, s, 3, true);
    assert_int_equal(net->layers[2].nweights, 3);
    memcpy(net->layers[2].weights, w, 3 * sizeof(float));
    return net;
}

static void expect_known(enum dnn_weights_normalization wn, const float w[3], const double nw[3])
{
    struct dnn_network *net = three_slots(wn, w);
    const float x[2] = {1.5f, -2.0f};
    float dx[2] = {0, 0};
    dnn_network_forward_range(net, 0, 2, x, NULL, true);
    struct dnn_layer *l = &net->layers[2];
    for (int k = 0; k < 2; k++)
        assert_float_equal(l->output[k], x[k] * (nw[0] + nw[1] + nw[2]), 1e-5);
    l->delta[0] = 1.0f;
    l->delta[1] = 0.5f;
    dnn_network_backward_range(net, 0, 2, x, dx);
    /* every slot's delta flows back to x: dx = delta * (w0 + w1 + w2) */
    for (int k = 0; k < 2; k++)
        assert_float_equal(dx[k], l->delta[k] * (nw[0] + nw[1] + nw[2]), 1e-5);
    /* darknet's weight update: sum of delta * value, the normalization left out */
    const double dot = 1.0 * 1.5 + 0.5 * -2.0;
    for (int s = 0; s < 3; s++)
        assert_float_equal(l->weight_updates[s], dot, 1e-6);
    dnn_network_free(net);
}

static void test_normalized_known_answers(void **state)
{
    (void)state;
    const float w[3] = {2.0f, -1.0f, 1.0f};
    const double eps = 0.0001;
    const double relu_sum = eps + 2 + 0 + 1;
    const double relu_w[3] = {2 / relu_sum, 0, 1 / relu_sum};
    expect_known(DNN_WEIGHTS_NORM_RELU, w, relu_w);
    const double e[3] = {1.0, exp(-3.0), exp(-1.0)}; /* exp(w - max) */
    const double soft_sum = eps + e[0] + e[1] + e[2];
    const double soft_w[3] = {e[0] / soft_sum, e[1] / soft_sum, e[2] / soft_sum};
    expect_known(DNN_WEIGHTS_NORM_SOFTMAX, w, soft_w);
    const double none_w[3] = {2, -1, 1};
    expect_known(DNN_WEIGHTS_NORM_NONE, w, none_w);
}

/* Inference folds relu normalization as AlexeyAB's predict does (fuse_conv_batchnorm's
 * lrelu): a weight at or below 0.001 counts as 0.001. */
static void test_relu_inference_floor(void **state)
{
    (void)state;
    const float w[3] = {2.0f, -1.0f, 1.0f};
    struct dnn_network *net = three_slots(DNN_WEIGHTS_NORM_RELU, w);
    const float x[2] = {1.5f, -2.0f};
    const float *y = dnn_network_predict(net, x);
    const double sum = 0.0001 + 2 + 0.001 + 1;
    for (int k = 0; k < 2; k++)
        assert_float_equal(y[k], x[k] * (2 + 0.001 + 1) / sum, 1e-6);
    /* training keeps relu's 0: the known answers above */
    dnn_network_forward_range(net, 0, 2, x, NULL, true);
    assert_float_equal(net->layers[2].output[0], x[0] * 3 / (0.0001 + 3), 1e-6);
    dnn_network_free(net);
}

/* per_channel: each channel has its own weight per slot; a source with fewer channels
 * adds only to the first of the input's channels (flat index), as AlexeyAB's does. */
static void test_per_channel_known_answer(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {
        identity(), route2(0, 0),
        multi(0, -1, DNN_SHORTCUT_WEIGHTS_PER_CHANNEL, DNN_WEIGHTS_NORM_NONE, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(1, 1, 1, 1, s, 3, false);
    struct dnn_layer *l = &net->layers[2];
    assert_int_equal(l->out_c, 2);
    assert_int_equal(l->nweights, 4); /* (1 source + 1) * 2 channels */
    const float w[4] = {2, 3, 5, 7};  /* input: c0, c1; source 0: c0, c1 */
    memcpy(l->weights, w, sizeof w);
    const float x[1] = {1.25f};
    const float *y = dnn_network_predict(net, x);
    /* input is route [x, x]; the source (layer 0) has one channel: x */
    assert_true(y[0] == 1.25f * 2 + 1.25f * 5);
    assert_true(y[1] == 1.25f * 3);
    dnn_network_free(net);
}

/* An update moves the weights by darknet's momentum SGD with decay. */
static void test_weights_update(void **state)
{
    (void)state;
    const float w[3] = {1, 1, 1};
    struct dnn_network *net = three_slots(DNN_WEIGHTS_NORM_NONE, w);
    struct dnn_layer *l = &net->layers[2];
    l->weight_updates[0] = 2.0f;
    l->weight_updates[1] = -1.0f;
    l->weight_updates[2] = 0;
    net->cfg.decay = 0;
    dnn_network_update_range(net, 0, 2);
    const float rate = dnn_network_current_rate(net);
    assert_true(rate > 0);
    assert_float_equal(l->weights[0], 1 + rate * 2.0f, 1e-6);
    assert_float_equal(l->weights[1], 1 - rate * 1.0f, 1e-6);
    assert_true(l->weights[2] == 1.0f);
    dnn_network_free(net);
}

static void test_setup_rejects(void **state)
{
    (void)state;
    struct dnn_layer_spec s[3] = {
        identity(), identity(),
        multi(0, 1, DNN_SHORTCUT_WEIGHTS_PER_FEATURE, DNN_WEIGHTS_NORM_NONE, DNN_ACT_LINEAR)};
    struct dnn_net_config cfg = gradcheck_config(1, 4, 4, 2);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 3, false, 1), DNN_OK);
    dnn_network_free(net);
    net = NULL;
    s[2].route[0] = 2; /* itself */
    assert_int_equal(dnn_network_create(&net, &cfg, s, 3, false, 1), DNN_ERR_INVALID);
    s[2].route[0] = 1;
    s[2].weights_type = DNN_SHORTCUT_WEIGHTS_COUNT;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 3, false, 1), DNN_ERR_INVALID);
    s[2].weights_type = DNN_SHORTCUT_WEIGHTS_NONE;
    s[2].n_route = DNN_MAX_ROUTE + 1;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 3, false, 1), DNN_ERR_INVALID);
    /* a source of another width: AlexeyAB asserts they match */
    const struct dnn_layer_spec pool = {.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2};
    const struct dnn_layer_spec t[3] = {
        identity(), pool,
        multi(0, -1, DNN_SHORTCUT_WEIGHTS_PER_FEATURE, DNN_WEIGHTS_NORM_NONE, DNN_ACT_LINEAR)};
    assert_int_equal(dnn_network_create(&net, &cfg, t, 3, false, 1), DNN_ERR_SHAPE);
    assert_null(net);
}

/* ------------------------------------------------------------ the cfg */

static int parse_text(const char *text, struct dk_model *m, struct dk_error *err)
{
    struct dk_cfg *cfg = NULL;
    if (dk_cfg_read_mem("test.cfg", text, strlen(text), false, &cfg, err) != 0)
        return -1;
    int rc = dk_parse_network_cfg(cfg, m, err);
    dk_cfg_free(cfg);
    return rc;
}

static const char *const net_head = "[net]\nbatch=1\nheight=4\nwidth=4\nchannels=2\n"
                                    "[maxpool]\nsize=1\nstride=1\n"
                                    "[maxpool]\nsize=1\nstride=1\n"
                                    "[maxpool]\nsize=1\nstride=1\n";

static void test_cfg_keys(void **state)
{
    (void)state;
    char text[512];
    struct dk_model m;
    struct dk_error err = {0};
    snprintf(text, sizeof text,
             "%s[shortcut]\nfrom=-2,-3\nweights_type=per_channel\nweights_normalization=softmax\n"
             "activation=linear\n",
             net_head);
    assert_int_equal(parse_text(text, &m, &err), 0);
    const struct dnn_layer_spec *sp = &m.specs[3];
    assert_int_equal(sp->kind, DNN_LAYER_SHORTCUT);
    assert_int_equal(sp->from, 1);
    assert_int_equal(sp->n_route, 1);
    assert_int_equal(sp->route[0], 0);
    assert_int_equal(sp->weights_type, DNN_SHORTCUT_WEIGHTS_PER_CHANNEL);
    assert_int_equal(sp->weights_normalization, DNN_WEIGHTS_NORM_SOFTMAX);
    dk_model_free(&m);

    /* AlexeyAB's aliases */
    snprintf(text, sizeof text,
             "%s[shortcut]\nfrom=-1\nweights_type=per_layer\nweights_normalization=avg_relu\n",
             net_head);
    assert_int_equal(parse_text(text, &m, &err), 0);
    assert_int_equal(m.specs[3].weights_type, DNN_SHORTCUT_WEIGHTS_PER_FEATURE);
    assert_int_equal(m.specs[3].weights_normalization, DNN_WEIGHTS_NORM_RELU);
    assert_int_equal(m.specs[3].n_route, 0);
    dk_model_free(&m);

    /* refused: an unknown type, an unknown normalization with weights, alpha with weights */
    const char *const bad[] = {
        "[shortcut]\nfrom=-1\nweights_type=per_pixel\n",
        "[shortcut]\nfrom=-1\nweights_type=per_feature\nweights_normalization=l2\n",
        "[shortcut]\nfrom=-1,-2\nalpha=0.5\n",
        "[shortcut]\nfrom=-1,-9\n",
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(text, sizeof text, "%s%s", net_head, bad[i]);
        assert_int_equal(parse_text(text, &m, &err), -1);
        printf("  refused: %s\n", err.msg);
    }
    /* accepted as AlexeyAB does: a normalization is only read with weights */
    snprintf(text, sizeof text, "%s[shortcut]\nfrom=-1\nweights_normalization=l2\n", net_head);
    assert_int_equal(parse_text(text, &m, &err), 0);
    assert_int_equal(m.specs[3].weights_normalization, DNN_WEIGHTS_NORM_NONE);
    dk_model_free(&m);
}

/* The layer table names every source of a shortcut, in order. */
static void test_layer_table(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {
        identity(), identity(),
        multi(1, 0, DNN_SHORTCUT_WEIGHTS_NONE, DNN_WEIGHTS_NORM_NONE, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(1, 2, 2, 1, s, 3, false);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    dz_print_layer_table(f, net, -1, -1);
    assert_int_equal(fclose(f), 0);
    if (!strstr(text, "    2 res  1,0      "))
        fail_msg("%s", text);
    free(text);
    dnn_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_gradients),
        cmocka_unit_test(test_initial_weights),
        cmocka_unit_test(test_normalized_known_answers),
        cmocka_unit_test(test_relu_inference_floor),
        cmocka_unit_test(test_per_channel_known_answer),
        cmocka_unit_test(test_weights_update),
        cmocka_unit_test(test_setup_rejects),
        cmocka_unit_test(test_cfg_keys),
        cmocka_unit_test(test_layer_table),
    };
    return cmocka_run_group_tests_name("layers_shortcut", tests, NULL, NULL);
}
