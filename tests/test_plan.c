/*
 * test_plan.c - the engine's plan (dnn_plan_build), the one description of a network's
 * memory that the TA's check, the host's partition plan and `tee plan` read:
 *  - the plan's totals are what dnn_network_create allocates, by dnn.h's formula;
 *  - an inference plan counts no training buffer and shares activations between two
 *    buffers by parity, except outputs a route or shortcut reads and the output layer;
 *  - an inference network that shares predicts bit for bit what a training network does;
 *  - a refused network names the layer and the status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dnn/dnn.h"
#include "tests/helpers/gradcheck.h"

static struct dnn_layer_spec conv(int filters)
{
    return (struct dnn_layer_spec){.kind = DNN_LAYER_CONVOLUTIONAL,
                                   .activation = DNN_ACT_LEAKY,
                                   .filters = filters,
                                   .size = 3,
                                   .stride = 1,
                                   .pad = 1,
                                   .groups = 1,
                                   .batch_normalize = true};
}

static struct dnn_layer_spec connected(int outputs)
{
    return (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = outputs};
}

static struct dnn_layer_spec maxpool(void)
{
    return (struct dnn_layer_spec){.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2, .pad = 1};
}

static struct dnn_layer_spec softmax(void)
{
    return (struct dnn_layer_spec){
        .kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
}

/* dnn.h's formula over the plan's own per-layer figures. */
static size_t formula(const struct dnn_plan *p)
{
    size_t arena = 0, shared[2] = {0, 0};
    for (size_t i = 0; i < p->n; i++) {
        const struct dnn_layer_plan *l = &p->layers[i];
        arena += l->param_bytes + l->scratch_bytes + (p->training ? l->train_bytes : 0);
        if (l->own_output)
            arena += l->output_bytes;
        else if (l->output_bytes > shared[i % 2])
            shared[i % 2] = l->output_bytes;
    }
    arena += shared[0] + shared[1] + p->workspace_floats * sizeof(float) + 64;
    return arena + p->n * sizeof(struct dnn_layer) + sizeof(struct dnn_network);
}

/* A plain chain: conv, conv, maxpool, conv, connected, softmax. */
static size_t chain(struct dnn_layer_spec *s)
{
    s[0] = conv(4);
    s[1] = conv(6);
    s[2] = maxpool();
    s[3] = conv(3);
    s[4] = connected(5);
    s[5] = softmax();
    return 6;
}

static void test_plan_equals_allocation(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6];
    const size_t n = chain(s);
    const struct dnn_net_config cfg = gradcheck_config(2, 8, 8, 3);
    for (int t = 0; t < 2; t++) {
        const bool training = t == 1;
        struct dnn_plan plan;
        struct dnn_network *net = NULL;
        assert_int_equal(dnn_plan_build(&plan, &cfg, s, n, training), DNN_OK);
        assert_int_equal(dnn_network_create(&net, &cfg, s, n, training, 1), DNN_OK);
        assert_int_equal(plan.bytes, net->arena_bytes + n * sizeof(struct dnn_layer) +
                                         sizeof(struct dnn_network));
        assert_int_equal(plan.bytes, formula(&plan));
        size_t params = 0;
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(plan.layers[i].inputs, net->layers[i].inputs);
            assert_int_equal(plan.layers[i].outputs, net->layers[i].outputs);
            assert_int_equal(plan.layers[i].out_c, net->layers[i].out_c);
            for (size_t k = 0; k < net->layers[i].n_params; k++)
                params += net->layers[i].params[k].count;
        }
        assert_int_equal(plan.param_floats, params);
        assert_true(plan.param_bytes >= params * sizeof(float));
        assert_int_equal(plan.inputs, 8 * 8 * 3);
        assert_int_equal(plan.outputs, 5);
        assert_int_equal(plan.truths, 5);
        assert_true(plan.has_cost);
        dnn_network_free(net);
        dnn_plan_free(&plan);
    }
}

static void test_inference_shares_activations(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6];
    const size_t n = chain(s);
    const struct dnn_net_config cfg = gradcheck_config(2, 8, 8, 3);
    struct dnn_plan infer, train;
    assert_int_equal(dnn_plan_build(&infer, &cfg, s, n, false), DNN_OK);
    assert_int_equal(dnn_plan_build(&train, &cfg, s, n, true), DNN_OK);
    /* Layers 0..4 share by parity; the softmax is the network's output and keeps its own. */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(infer.layers[i].own_output, i == 5);
        assert_true(train.layers[i].own_output);
        assert_int_equal(infer.layers[i].train_bytes, train.layers[i].train_bytes);
    }
    /* Even: layers 0 (8x8x4), 2 (4x4x6) and 4 (5); odd: 1 (8x8x6) and 3 (4x4x3); batch 2. */
    assert_int_equal(infer.shared_bytes[0], 2 * 8 * 8 * 4 * sizeof(float));
    assert_int_equal(infer.shared_bytes[1], 2 * 8 * 8 * 6 * sizeof(float));
    assert_int_equal(infer.train_bytes, 0);
    assert_true(train.train_bytes > 0);
    assert_true(infer.activation_bytes < train.activation_bytes);
    assert_true(infer.bytes + train.train_bytes < train.bytes);
    dnn_plan_free(&infer);
    dnn_plan_free(&train);
}

static void test_route_keeps_its_sources(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6] = {conv(4), conv(4), conv(4)};
    s[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_SHORTCUT, .activation = DNN_ACT_LINEAR, .from = 0, .alpha = 1, .beta = 1};
    s[4] = (struct dnn_layer_spec){.kind = DNN_LAYER_ROUTE, .n_route = 2, .route = {1, 3}};
    s[5] = conv(2);
    const struct dnn_net_config cfg = gradcheck_config(1, 4, 4, 2);
    struct dnn_plan p;
    assert_int_equal(dnn_plan_build(&p, &cfg, s, 6, false), DNN_OK);
    const bool own[6] = {true, true, false, true, false, true};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(p.layers[i].own_output, own[i]);
        assert_int_equal(p.layers[i].read_later, i == 0 || i == 1 || i == 3);
    }
    assert_int_equal(p.bytes, formula(&p));
    dnn_plan_free(&p);
}

/* Sharing must not change a single bit of what inference computes. */
static void test_shared_inference_predicts_the_same(void **state)
{
    (void)state;
    struct dnn_layer_spec s[7] = {conv(4), conv(4), conv(4)};
    s[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_SHORTCUT, .activation = DNN_ACT_LINEAR, .from = 0, .alpha = 1, .beta = 1};
    s[4] = maxpool();
    s[5] = connected(7);
    s[6] = softmax();
    const struct dnn_net_config cfg = gradcheck_config(3, 6, 6, 2);
    struct dnn_network *infer = NULL, *train = NULL;
    assert_int_equal(dnn_network_create(&infer, &cfg, s, 7, false, 42), DNN_OK);
    assert_int_equal(dnn_network_create(&train, &cfg, s, 7, true, 42), DNN_OK);
    /* 0 is read by the shortcut, 6 is the output; 1, 3, 5 share one buffer, 2, 4 the other. */
    assert_ptr_equal(infer->layers[1].output, infer->layers[3].output);
    assert_ptr_equal(infer->layers[3].output, infer->layers[5].output);
    assert_ptr_equal(infer->layers[2].output, infer->layers[4].output);
    assert_ptr_not_equal(infer->layers[1].output, infer->layers[2].output);
    assert_ptr_not_equal(infer->layers[0].output, infer->layers[2].output);
    float input[3 * 6 * 6 * 2];
    struct dnn_rng r;
    dnn_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof input / sizeof input[0]; i++)
        input[i] = dnn_rng_uniform(&r, -1, 1);
    for (int round = 0; round < 2; round++) {
        const float *a = dnn_network_predict(infer, input);
        const float *b = dnn_network_predict(train, input);
        assert_memory_equal(a, b, 3 * 7 * sizeof(float));
    }
    dnn_network_free(infer);
    dnn_network_free(train);
}

/* The layer kinds of issue 12: their buffers (LRN's norms, local's parameters and
 * workspace) are in the plan, the layers scale_channels and sam read keep their outputs,
 * and a sharing inference network predicts what a training one does. */
static void test_plan_of_new_kinds(void **state)
{
    (void)state;
    struct dnn_layer_spec s[12];
    s[0] = (struct dnn_layer_spec){.kind = DNN_LAYER_CROP, .crop_height = 8, .crop_width = 8};
    s[1] = (struct dnn_layer_spec){.kind = DNN_LAYER_LOCAL,
                                   .filters = 4,
                                   .size = 3,
                                   .stride = 1,
                                   .pad = 1,
                                   .activation = DNN_ACT_LEAKY};
    s[2] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_NORMALIZATION, .size = 3, .alpha = .5f, .beta = .75f, .kappa = 1};
    s[3] = conv(4);
    s[4] = (struct dnn_layer_spec){.kind = DNN_LAYER_SAM, .from = 2};
    s[5] = (struct dnn_layer_spec){.kind = DNN_LAYER_REORG, .stride = 2};
    s[6] = (struct dnn_layer_spec){.kind = DNN_LAYER_AVGPOOL};
    s[7] = (struct dnn_layer_spec){.kind = DNN_LAYER_SCALE_CHANNELS, .from = 5};
    s[8] = (struct dnn_layer_spec){.kind = DNN_LAYER_UPSAMPLE, .stride = -4, .scale = 1};
    s[9] = (struct dnn_layer_spec){.kind = DNN_LAYER_L2NORM};
    s[10] = connected(5);
    s[11] = softmax();
    const size_t n = 12;
    const struct dnn_net_config cfg = gradcheck_config(2, 10, 10, 3);
    for (int t = 0; t < 2; t++) {
        const bool training = t == 1;
        struct dnn_plan plan;
        struct dnn_network *net = NULL;
        assert_int_equal(dnn_plan_build(&plan, &cfg, s, n, training), DNN_OK);
        assert_int_equal(dnn_network_create(&net, &cfg, s, n, training, 1), DNN_OK);
        assert_int_equal(plan.bytes, net->arena_bytes + n * sizeof(struct dnn_layer) +
                                         sizeof(struct dnn_network));
        assert_int_equal(plan.bytes, formula(&plan));
        /* local: 4 biases per position and 4 x 27 weights per position, 8 x 8 positions */
        assert_int_equal(plan.layers[1].param_floats, (size_t)64 * 4 + 64 * 4 * 27);
        assert_true(plan.layers[1].workspace_floats >= (size_t)27 * 64);
        /* LRN keeps its norms, (batch, inputs), for inference too */
        assert_true(plan.layers[2].scratch_bytes >= (size_t)2 * 8 * 8 * 4 * sizeof(float));
        assert_int_equal(plan.layers[8].out_w, 1);
        assert_int_equal(plan.layers[8].out_c, 16);
        assert_true(plan.layers[2].read_later && plan.layers[5].read_later);
        if (!training)
            assert_true(plan.layers[2].own_output && plan.layers[5].own_output);
        dnn_network_free(net);
        dnn_plan_free(&plan);
    }

    struct dnn_network *infer = NULL, *train = NULL;
    assert_int_equal(dnn_network_create(&infer, &cfg, s, n, false, 42), DNN_OK);
    assert_int_equal(dnn_network_create(&train, &cfg, s, n, true, 42), DNN_OK);
    float input[2 * 10 * 10 * 3];
    struct dnn_rng r;
    dnn_rng_seed(&r, 9);
    for (size_t i = 0; i < sizeof input / sizeof input[0]; i++)
        input[i] = dnn_rng_uniform(&r, 0, 1);
    const float *a = dnn_network_predict(infer, input);
    const float *b = dnn_network_predict(train, input);
    assert_memory_equal(a, b, 2 * 5 * sizeof(float));
    dnn_network_free(infer);
    dnn_network_free(train);
}

static void test_refusal_names_the_layer(void **state)
{
    (void)state;
    struct dnn_layer_spec s[3] = {conv(4), maxpool(), conv(4)};
    s[2].kind = DNN_LAYER_ROUTE; /* reads layer 5, which does not exist before it */
    s[2].n_route = 1;
    s[2].route[0] = 5;
    const struct dnn_net_config cfg = gradcheck_config(1, 4, 4, 1);
    struct dnn_plan p;
    char why[128];
    assert_int_equal(dnn_plan_build(&p, &cfg, s, 3, false), DNN_ERR_INVALID);
    assert_int_equal(p.status, DNN_ERR_INVALID);
    assert_int_equal(p.failed_layer, 2);
    assert_null(p.layers);
    dnn_plan_describe(&p, why, sizeof why);
    assert_string_equal(why, "layer 2: invalid argument");
    dnn_plan_free(&p);

    struct dnn_net_config bad = cfg;
    bad.batch = 0;
    assert_int_equal(dnn_plan_build(&p, &bad, s, 1, false), DNN_ERR_INVALID);
    assert_int_equal(p.failed_layer, 1); /* n: the network, not a layer */
    dnn_plan_describe(&p, why, sizeof why);
    assert_string_equal(why, "network: invalid argument");
    dnn_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_equals_allocation),
        cmocka_unit_test(test_inference_shares_activations),
        cmocka_unit_test(test_route_keeps_its_sources),
        cmocka_unit_test(test_shared_inference_predicts_the_same),
        cmocka_unit_test(test_refusal_names_the_layer),
        cmocka_unit_test(test_plan_of_new_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
