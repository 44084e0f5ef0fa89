/*
 * test_conv_cache.c - convolutions that keep their forward pass's column matrices for the
 * backward pass (dnn_network_set_column_cache, dnn/conv_cache.c) give bit for bit what
 * lowering every image again gives: every layer's output and delta, weight and bias
 * gradients, the input delta, losses and weights after training steps with subdivisions, and
 * predictions; with the cache for every layer, for some only, and none; with and without
 * several images per product (dnn_network_set_lowering); serial and with 1, 2 and 3 threads.
 * The layers: a 24x24 output (one image per product), groups, stride 2, dilation, dropout
 * before a convolution, 1x1 stride 1 (keeps nothing) and 1x1 stride 2. It also checks that
 * the backward pass reads the kept columns (spoiling them changes the weight gradient), which
 * layers keep them, and that an inference pass in between makes the backward lower again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dnn/conv_lower.h"
#include "dnn/conv_sliding.h"
#include "host/thread_pool.h"
#include "tests/helpers/engine_inputs.h"

#define CH 3
#define SIDE 24
#define CLASSES 4
#define BATCH 5
#define ITERS 4
#define MAX_LAYERS 12

/* The convolutions' output pixels: 576 (per image in both passes when lowered), 144 after
 * the pool (lowered backward), 36 (lowered both ways), 36, 36, 9. */
static size_t layers(struct dnn_layer_spec *s)
{
    size_t n = 0;
    /* 0: 24x24, more filters than a layer that slides has (it would keep no columns) */
    s[n++] = test_conv_spec(DNN_CONV_SLIDING_MAX_FILTERS + 2, 3, 1, 1, 1, 0, true, DNN_ACT_LEAKY);
    s[n++] = (struct dnn_layer_spec){.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2};
    s[n++] = test_conv_spec(8, 3, 1, 1, 2, 0, false, DNN_ACT_RELU); /* 2: 12x12, groups */
    s[n++] = (struct dnn_layer_spec){.kind = DNN_LAYER_DROPOUT, .probability = 0.3f};
    s[n++] = test_conv_spec(10, 3, 2, 1, 2, 0, true, DNN_ACT_MISH);   /* 4: 6x6, stride 2 */
    s[n++] = test_conv_spec(6, 1, 1, 0, 1, 0, false, DNN_ACT_LEAKY);  /* 5: 1x1, keeps nothing */
    s[n++] = test_conv_spec(6, 3, 1, 1, 1, 2, false, DNN_ACT_LEAKY);  /* 6: dilated */
    s[n++] = test_conv_spec(5, 1, 2, 0, 1, 0, false, DNN_ACT_LINEAR); /* 7: 1x1 stride 2, 3x3 */
    s[n++] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES};
    s[n++] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
    return n;
}

/* Layers that keep columns with a whole budget, and the floats each keeps. */
static const size_t kept_layers[] = {0, 2, 4, 6, 7};
static size_t kept_floats(size_t i)
{
    switch (i) {
    case 0:
        return 27 * (size_t)BATCH * 576;
    case 2:
        return 2 * 9 * (DNN_CONV_SLIDING_MAX_FILTERS + 2) / 2 * (size_t)BATCH * 144;
    case 4:
        return 2 * 36 * (size_t)BATCH * 36;
    case 6:
        return 54 * (size_t)BATCH * 36;
    case 7:
        return 6 * (size_t)BATCH * 9;
    default:
        return 0;
    }
}

/* How a run goes: images per product (< 2: no lowering), the column cache's budget in bytes
 * (0: none), threads (0: serial). */
struct setup {
    int images;
    size_t cache_bytes;
    unsigned threads;
};

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

static struct dnn_network *make_net(const struct setup *su, const struct dnn_parallel *par)
{
    struct dnn_net_config cfg = {.batch = BATCH,
                                 .subdivisions = 2,
                                 .h = SIDE,
                                 .w = SIDE,
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
    if (su->images >= 2)
        assert_int_equal(dnn_network_set_lowering(net, su->images, DNN_LOWER_BYTES_DEFAULT),
                         DNN_OK);
    assert_int_equal(dnn_network_set_column_cache(net, su->cache_bytes), DNN_OK);
    return net;
}

struct data {
    float *x, *x2, *in_delta, *y;
};

static void data_make(struct data *d, size_t inputs)
{
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 31);
    d->x = test_random_floats(&rng, BATCH * inputs);
    d->x2 = test_random_floats(&rng, BATCH * inputs);
    d->in_delta = test_random_floats(&rng, BATCH * inputs);
    d->y = calloc(BATCH * CLASSES, sizeof(float));
    assert_non_null(d->y);
    for (int b = 0; b < BATCH; b++)
        d->y[b * CLASSES + b % CLASSES] = 1;
}

static void data_free(struct data *d)
{
    free(d->x);
    free(d->x2);
    free(d->in_delta);
    free(d->y);
}

static void keep_layers(struct outcome *o, const struct dnn_network *net)
{
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        keep(o, l->output, l->outputs * BATCH);
        keep(o, l->delta, l->outputs * BATCH);
        for (size_t p = 0; p < l->n_params; p++)
            if (l->params[p].update)
                keep(o, l->params[p].update, l->params[p].count);
    }
}

/* One forward and backward kept layer by layer, then ITERS training steps (two updates), then
 * a training forward, an inference forward on other images and a backward on those: the
 * backward must lower them, not use the training pass's columns; then a training forward and
 * a backward told of other images. */
static void run_net(const struct setup *su, struct outcome *o)
{
    struct dz_pool *pool = su->threads ? dz_pool_create(su->threads) : NULL;
    const struct dnn_parallel par = pool ? dz_pool_parallel(pool) : (struct dnn_parallel){0};
    struct dnn_network *net = make_net(su, pool ? &par : NULL);
    struct data d;
    data_make(&d, net->inputs);

    dnn_network_forward_range(net, 0, net->n - 1, d.x, d.y, true);
    dnn_network_backward_range(net, 0, net->n - 1, d.x, d.in_delta);
    keep_layers(o, net);
    keep(o, d.in_delta, BATCH * net->inputs);
    for (int it = 0; it < ITERS; it++) {
        const float loss = dnn_network_train_batch(net, it % 2 ? d.x2 : d.x, d.y);
        keep(o, &loss, 1);
    }
    for (size_t i = 0; i < net->n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++)
            keep(o, net->layers[i].params[p].value, net->layers[i].params[p].count);
    keep(o, dnn_network_predict(net, d.x), BATCH * CLASSES);

    dnn_network_forward_range(net, 0, net->n - 1, d.x, d.y, true);
    dnn_network_forward_range(net, 0, net->n - 1, d.x2, d.y, false);
    dnn_network_backward_range(net, 0, net->n - 1, d.x2, d.in_delta);
    keep_layers(o, net);
    keep(o, d.in_delta, BATCH * net->inputs);
    /* a backward given another input than its forward: the first layer lowers that one */
    dnn_network_forward_range(net, 0, net->n - 1, d.x, d.y, true);
    dnn_network_backward_range(net, 0, net->n - 1, d.x2, d.in_delta);
    keep_layers(o, net);
    keep(o, d.in_delta, BATCH * net->inputs);

    data_free(&d);
    dnn_network_free(net);
    if (pool)
        dz_pool_destroy(pool);
}

/* A budget that holds layers 4 and 6 but neither 0 nor 2 (too big) nor, after them, 7. */
static size_t some_bytes(void)
{
    return (kept_floats(4) + kept_floats(6)) * sizeof(float);
}

static void test_cache_is_exact(void **state)
{
    (void)state;
    const size_t all = DNN_COL_CACHE_BYTES_DEFAULT;
    const struct setup cases[] = {
        {1, all, 0},
        {1, all, 1},
        {1, all, 2},
        {1, all, 3},
        {BATCH, all, 0},
        {BATCH, all, 2},
        {BATCH, all, 3},
        {2, all, 3},
        {1, some_bytes(), 0},
        {BATCH, some_bytes(), 2},
        {BATCH, some_bytes(), 3},
        {BATCH, 0, 3},
    };
    struct outcome want = {0};
    const struct setup plain = {1, 0, 0};
    run_net(&plain, &want);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct outcome got = {0};
        run_net(&cases[c], &got);
        assert_int_equal(got.n, want.n);
        assert_memory_equal(got.v, want.v, want.n * sizeof(float));
        free(got.v);
    }
    free(want.v);
}

/* The equality above proves something only if layers keep their columns: check which do,
 * how much, the partial budget's choice, and that nothing is kept without the call, with a
 * budget of 0, or without training buffers. */
static void test_which_layers_keep(void **state)
{
    (void)state;
    const struct setup none = {1, 0, 0}, all = {1, DNN_COL_CACHE_BYTES_DEFAULT, 0};
    const struct setup some = {1, some_bytes(), 0};
    struct dnn_network *net = make_net(&none, NULL);
    assert_null(net->col_cache);
    for (size_t i = 0; i < net->n; i++)
        assert_null(net->layers[i].col_cache);
    dnn_network_free(net);

    net = make_net(&all, NULL);
    size_t total = 0;
    for (size_t i = 0; i < net->n; i++) {
        const size_t f = kept_floats(i);
        total += f;
        if (f) {
            assert_non_null(net->layers[i].col_cache);
            assert_true(net->layers[i].col_cache >= net->col_cache);
            assert_true(net->layers[i].col_cache + f <= net->col_cache + net->col_cache_floats);
        } else {
            assert_null(net->layers[i].col_cache);
        }
    }
    assert_int_equal(net->col_cache_floats, total);
    assert_int_equal(dnn_network_set_column_cache(net, 0), DNN_OK);
    assert_null(net->col_cache);
    for (size_t i = 0; i < net->n; i++)
        assert_null(net->layers[i].col_cache);
    dnn_network_free(net);

    net = make_net(&some, NULL);
    for (size_t k = 0; k < sizeof kept_layers / sizeof kept_layers[0]; k++) {
        const size_t i = kept_layers[k];
        if (i == 4 || i == 6)
            assert_non_null(net->layers[i].col_cache);
        else
            assert_null(net->layers[i].col_cache);
    }
    dnn_network_free(net);

    /* an inference network keeps nothing */
    struct dnn_net_config cfg = {.batch = BATCH, .subdivisions = 1, .h = SIDE, .w = SIDE, .c = CH};
    struct dnn_layer_spec s[MAX_LAYERS];
    const size_t n = layers(s);
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, false, 9), DNN_OK);
    assert_int_equal(dnn_network_set_column_cache(net, DNN_COL_CACHE_BYTES_DEFAULT), DNN_OK);
    assert_null(net->col_cache);
    dnn_network_free(net);
}

#define N_KEPT (sizeof kept_layers / sizeof kept_layers[0])

/* Weight gradients of the layers that keep columns after a forward and backward of x, one
 * outcome each; with @spoil, the kept columns are overwritten between the two passes. */
static void gradients(const struct setup *su, bool spoil, struct outcome *o)
{
    struct dz_pool *pool = su->threads ? dz_pool_create(su->threads) : NULL;
    const struct dnn_parallel par = pool ? dz_pool_parallel(pool) : (struct dnn_parallel){0};
    struct dnn_network *net = make_net(su, pool ? &par : NULL);
    struct data d;
    data_make(&d, net->inputs);
    dnn_network_forward_range(net, 0, net->n - 1, d.x, d.y, true);
    for (size_t k = 0; k < N_KEPT; k++) {
        const size_t i = kept_layers[k];
        assert_ptr_equal(net->layers[i].col_cache_of, i ? net->layers[i - 1].output : d.x);
    }
    if (spoil)
        dnn_fill(net->col_cache, net->col_cache_floats, 0.5f);
    dnn_network_backward_range(net, 0, net->n - 1, d.x, NULL);
    for (size_t k = 0; k < N_KEPT; k++) {
        const struct dnn_layer *l = &net->layers[kept_layers[k]];
        keep(&o[k], l->weight_updates, l->nweights);
    }
    data_free(&d);
    dnn_network_free(net);
    if (pool)
        dz_pool_destroy(pool);
}

/* Spoiling the kept columns changes every keeping layer's weight gradient: the backward pass
 * reads them, lowered or not, rather than lowering again. */
static void test_backward_reads_the_columns(void **state)
{
    (void)state;
    const struct setup cases[] = {{1, DNN_COL_CACHE_BYTES_DEFAULT, 0},
                                  {BATCH, DNN_COL_CACHE_BYTES_DEFAULT, 0},
                                  {BATCH, DNN_COL_CACHE_BYTES_DEFAULT, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct outcome clean[N_KEPT] = {{0}}, spoiled[N_KEPT] = {{0}};
        gradients(&cases[c], false, clean);
        gradients(&cases[c], true, spoiled);
        for (size_t k = 0; k < N_KEPT; k++) {
            assert_int_equal(clean[k].n, spoiled[k].n);
            assert_memory_not_equal(clean[k].v, spoiled[k].v, clean[k].n * sizeof(float));
            free(clean[k].v);
            free(spoiled[k].v);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_layers_keep),
        cmocka_unit_test(test_backward_reads_the_columns),
        cmocka_unit_test(test_cache_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
