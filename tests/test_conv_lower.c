/*
 * test_conv_lower.c - convolutions that lower several images side by side into one column
 * matrix (dnn_network_set_lowering, dnn/conv_lower.c) give bit for bit what one image at a
 * time gives: outputs, weight and bias gradients, the input delta (added to what is there),
 * losses and weights after training steps, predictions; with 1, 2, 3 and a whole batch of
 * images per product, a batch that is no multiple of them, a scratch budget that limits one
 * layer, and threads. The layers: 3x3 padded, stride 2, groups, dilation, 1x1 stride 1
 * (read in place per image, gathered when lowered), 1x1 stride 2, batch normalisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dnn/conv_lower.h"
#include "host/thread_pool.h"
#include "tests/helpers/engine_inputs.h"

#define CH 3
#define CLASSES 4
#define BATCH 5
#define ITERS 2
#define MAX_LAYERS 10

/* 7x7 input: 3x3 padded with batch norm (49 pixels), stride 2 with groups (16), 1x1 stride 1
 * (16), dilated 3x3 (16), 1x1 stride 2 (4 pixels). */
static size_t strided_net(struct dnn_layer_spec *s)
{
    size_t n = 0;
    s[n++] = test_conv_spec(8, 3, 1, 1, 1, 0, true, DNN_ACT_LEAKY);
    s[n++] = test_conv_spec(12, 3, 2, 1, 2, 0, false, DNN_ACT_RELU);
    s[n++] = test_conv_spec(10, 1, 1, 0, 1, 0, true, DNN_ACT_MISH);
    s[n++] = test_conv_spec(6, 3, 1, 1, 1, 2, false, DNN_ACT_LEAKY);
    s[n++] = test_conv_spec(5, 1, 2, 0, 1, 0, false, DNN_ACT_LINEAR);
    s[n++] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES};
    s[n++] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
    return n;
}

/* A 1x1 stride-1 first layer with groups, whose input delta adds into the caller's; then a
 * dilated 3x3 with batch norm on 7x7. */
static size_t direct_first_net(struct dnn_layer_spec *s)
{
    size_t n = 0;
    s[n++] = test_conv_spec(6, 1, 1, 0, 3, 0, false, DNN_ACT_LEAKY);
    s[n++] = test_conv_spec(9, 3, 1, 1, 3, 2, true, DNN_ACT_LOGISTIC);
    s[n++] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES};
    s[n++] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
    return n;
}

/* How a run lowers: images per product (< 2: never calls dnn_network_set_lowering), the
 * scratch budget, threads (0: serial). */
struct lowering {
    int images;
    size_t bytes;
    unsigned threads;
};

/* Everything a run leaves, concatenated: each layer's output and gradients after one
 * forward and backward, the input delta, the losses, the parameters after ITERS steps and a
 * prediction. */
struct outcome {
    float *v;
    size_t n, cap;
};

static void keep(struct outcome *o, const float *x, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2;
        o->v = realloc(o->v, o->cap * sizeof(float));
        assert_non_null(o->v);
    }
    memcpy(o->v + o->n, x, n * sizeof(float));
    o->n += n;
}

static struct dnn_network *make_net(size_t (*layers)(struct dnn_layer_spec *),
                                    const struct lowering *lw, const struct dnn_parallel *par)
{
    struct dnn_net_config cfg = {.batch = BATCH,
                                 .subdivisions = 1,
                                 .h = 7,
                                 .w = 7,
                                 .c = CH,
                                 .learning_rate = 0.05f,
                                 .momentum = 0.9f,
                                 .decay = 0.0005f,
                                 .policy = DNN_POLICY_CONSTANT,
                                 .max_batches = 100};
    struct dnn_layer_spec s[MAX_LAYERS];
    const size_t n = layers(s);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, true, 9), DNN_OK);
    assert_int_equal(dnn_network_set_parallel(net, par), DNN_OK);
    if (lw->images >= 2)
        assert_int_equal(dnn_network_set_lowering(net, lw->images, lw->bytes), DNN_OK);
    return net;
}

static void run_net(size_t (*layers)(struct dnn_layer_spec *), const struct lowering *lw,
                    struct outcome *o)
{
    struct dz_pool *pool = lw->threads ? dz_pool_create(lw->threads) : NULL;
    const struct dnn_parallel par = pool ? dz_pool_parallel(pool) : (struct dnn_parallel){0};
    struct dnn_network *net = make_net(layers, lw, pool ? &par : NULL);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 31);
    float *x = test_random_floats(&rng, BATCH * net->inputs);
    float *in_delta = test_random_floats(&rng, BATCH * net->inputs);
    float *y = calloc(BATCH * CLASSES, sizeof(float));
    assert_non_null(y);
    for (int b = 0; b < BATCH; b++)
        y[b * CLASSES + b % CLASSES] = 1;

    dnn_network_forward_range(net, 0, net->n - 1, x, y, true);
    dnn_network_backward_range(net, 0, net->n - 1, x, in_delta);
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        keep(o, l->output, l->outputs * BATCH);
        keep(o, l->delta, l->outputs * BATCH);
        for (size_t p = 0; p < l->n_params; p++)
            if (l->params[p].update)
                keep(o, l->params[p].update, l->params[p].count);
    }
    keep(o, in_delta, BATCH * net->inputs);
    dnn_network_update_range(net, 0, net->n - 1);
    for (int it = 0; it < ITERS; it++) {
        const float loss = dnn_network_train_batch(net, x, y);
        keep(o, &loss, 1);
    }
    for (size_t i = 0; i < net->n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++)
            keep(o, net->layers[i].params[p].value, net->layers[i].params[p].count);
    keep(o, dnn_network_predict(net, x), BATCH * CLASSES);
    free(y);
    free(in_delta);
    free(x);
    dnn_network_free(net);
    if (pool)
        dz_pool_destroy(pool);
}

static void lowering_is_exact(size_t (*layers)(struct dnn_layer_spec *))
{
    const size_t big = DNN_LOWER_BYTES_DEFAULT;
    const struct lowering cases[] = {
        {2, big, 0}, {3, big, 0}, {BATCH, big, 0}, {64, big, 0},
        {1, big, 2}, {3, big, 2}, {2, big, 3},     {BATCH, big, 3},
    };
    struct outcome want = {0};
    const struct lowering alone = {1, 0, 0};
    run_net(layers, &alone, &want);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct outcome got = {0};
        run_net(layers, &cases[c], &got);
        assert_int_equal(got.n, want.n);
        assert_memory_equal(got.v, want.v, want.n * sizeof(float));
        free(got.v);
    }
    free(want.v);
}

static void test_strided_layers_are_exact(void **state)
{
    (void)state;
    lowering_is_exact(strided_net);
}

static void test_direct_first_layer_is_exact(void **state)
{
    (void)state;
    lowering_is_exact(direct_first_net);
}

/* The equality above proves something only if the layers do lower: check how many images
 * each takes, the budget's limit, and that nothing lowers without the call or with
 * max_images 1 (the TA's case). */
static void test_images_per_product(void **state)
{
    (void)state;
    const struct lowering none = {1, 0, 0}, three = {3, DNN_LOWER_BYTES_DEFAULT, 0};
    struct dnn_network *net = make_net(strided_net, &none, NULL);
    for (size_t i = 0; i < net->n; i++) {
        assert_int_equal(dnn_conv_lower_images(&net->layers[i], net, true), 1);
        assert_int_equal(dnn_conv_lower_images(&net->layers[i], net, false), 1);
    }
    assert_null(net->lower_workspace);
    assert_int_equal(dnn_network_set_lowering(net, 1, DNN_LOWER_BYTES_DEFAULT), DNN_OK);
    assert_null(net->lower_workspace);
    dnn_network_free(net);

    net = make_net(strided_net, &three, NULL);
    for (size_t i = 0; i < 5; i++) /* the five convolutions: 49, 16, 16, 16 and 4 pixels */
        assert_int_equal(dnn_conv_lower_images(&net->layers[i], net, true), 3);
    /* the forward pass lowers to 64 columns: 2 images of 49 pixels, 3 (at most) of 16 */
    assert_int_equal(dnn_conv_lower_images(&net->layers[0], net, false), 2);
    for (size_t i = 1; i < 5; i++)
        assert_int_equal(dnn_conv_lower_images(&net->layers[i], net, false), 3);
    assert_int_equal(dnn_conv_lower_images(&net->layers[5], net, true), 1); /* connected */
    /* layer 0's scratch per image: (27 rows of columns + 8 of output) x 49 pixels */
    const size_t per0 = (27 + 8) * 49;
    assert_int_equal(net->lower_floats, 3 * per0);
    /* a budget of two of layer 0's images: layer 0 takes 2, the smaller layers more */
    assert_int_equal(dnn_network_set_lowering(net, BATCH, 2 * per0 * sizeof(float)), DNN_OK);
    assert_int_equal(dnn_conv_lower_images(&net->layers[0], net, true), 2);
    assert_int_equal(dnn_conv_lower_images(&net->layers[4], net, true), BATCH);
    assert_int_equal(dnn_conv_lower_images(&net->layers[4], net, false), BATCH);
    /* too small for two images of any layer: nothing lowers */
    assert_int_equal(dnn_network_set_lowering(net, BATCH, 10 * sizeof(float)), DNN_OK);
    assert_null(net->lower_workspace);
    assert_int_equal(dnn_conv_lower_images(&net->layers[4], net, true), 1);
    dnn_network_free(net);
}

/* A budget that limits layer 0 to 2 images while the others take the whole batch. */
static void test_budget_limited_is_exact(void **state)
{
    (void)state;
    struct outcome want = {0}, got = {0};
    const struct lowering alone = {1, 0, 0};
    const struct lowering tight = {BATCH, 2 * (27 + 8) * 49 * sizeof(float), 0};
    run_net(strided_net, &alone, &want);
    run_net(strided_net, &tight, &got);
    assert_int_equal(got.n, want.n);
    assert_memory_equal(got.v, want.v, want.n * sizeof(float));
    free(got.v);
    free(want.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_per_product),
        cmocka_unit_test(test_strided_layers_are_exact),
        cmocka_unit_test(test_direct_first_layer_is_exact),
        cmocka_unit_test(test_budget_limited_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
