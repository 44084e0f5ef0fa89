/*
 * test_threads.c - the engine with threads (host/thread_pool.c lent as struct dnn_parallel)
 * gives bit for bit what it gives alone: gemm in every transpose case and odd shape, and
 * training and prediction of two small nets, with 1, 2, 3 and 7 threads. The second is big
 * enough for every split of the engine to cut its work into several tasks: batch norm by
 * channels (in convolutional, connected and [batchnorm] layers), activations by pieces,
 * max pooling by planes, the convolutional weight gradient by chunks of images and the
 * Winograd convolution by images. The splits' own pieces too: how dnn_parallel_first cuts,
 * the Winograd filter transforms by filters and channels, dnn_fill_par and the SGD step (also
 * against darknet's three passes), on real pools and on a pretend one that runs the tasks
 * backwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dnn/conv_winograd.h"
#include "dnn/dnn_internal.h"
#include "host/thread_pool.h"
#include "tests/helpers/engine_inputs.h"

static const unsigned thread_counts[] = {1, 2, 3, 7};
#define N_COUNTS (sizeof thread_counts / sizeof thread_counts[0])

static void test_gemm_split_is_exact(void **state)
{
    (void)state;
    /* Shapes off every tile and split size (24 rows, 64 columns), big enough to split; the
     * last, a weight gradient's C^T, splits in rows only. */
    const int shapes[][3] = {
        {97, 203, 150}, {16, 784, 144}, {512, 49, 300}, {5, 1000, 77}, {1152, 128, 40}};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 11);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = test_random_floats(&rng, (size_t)m * k),
              *b = test_random_floats(&rng, (size_t)k * n);
        float *c0 = test_random_floats(&rng, (size_t)m * n);
        float *c = malloc((size_t)m * n * sizeof(float)), *want = malloc((size_t)m * n * 4);
        assert_non_null(c);
        assert_non_null(want);
        for (int tcase = 0; tcase < 4; tcase++) {
            const bool ta = tcase & 1, tb = tcase & 2;
            const float beta = tcase == 3 ? 0.5f : 1;
            memcpy(want, c0, (size_t)m * n * sizeof(float));
            dnn_gemm(ta, tb, m, n, k, 0.75f, a, ta ? m : k, b, tb ? k : n, beta, want, n);
            for (size_t t = 0; t < N_COUNTS; t++) {
                struct dz_pool *pool = dz_pool_create(thread_counts[t]);
                assert_non_null(pool);
                const struct dnn_parallel par = dz_pool_parallel(pool);
                memcpy(c, c0, (size_t)m * n * sizeof(float));
                dnn_gemm_par(&par, ta, tb, m, n, k, 0.75f, a, ta ? m : k, b, tb ? k : n, beta, c,
                             n);
                assert_memory_equal(c, want, (size_t)m * n * sizeof(float));
                dz_pool_destroy(pool);
            }
        }
        free(want);
        free(c);
        free(c0);
        free(b);
        free(a);
    }
}

static void test_im2col_split_is_exact(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 12);
    const int ch = 9, h = 31, w = 29, ks = 3, stride = 2, pad = 1;
    const int oh = (h + 2 * pad - ks) / stride + 1, ow = (w + 2 * pad - ks) / stride + 1;
    const size_t cols = (size_t)ch * ks * ks * oh * ow, img = (size_t)ch * h * w;
    float *im = test_random_floats(&rng, img), *col = test_random_floats(&rng, cols);
    float *want_col = malloc(cols * sizeof(float)), *got_col = malloc(cols * sizeof(float));
    float *want_im = test_random_floats(&rng, img), *got_im = malloc(img * sizeof(float));
    assert_non_null(want_col);
    assert_non_null(got_col);
    assert_non_null(got_im);
    memcpy(got_im, want_im, img * sizeof(float));
    dnn_im2col(im, ch, h, w, ks, stride, pad, want_col);
    dnn_col2im(col, ch, h, w, ks, stride, pad, want_im);
    for (size_t t = 0; t < N_COUNTS; t++) {
        struct dz_pool *pool = dz_pool_create(thread_counts[t]);
        assert_non_null(pool);
        const struct dnn_parallel par = dz_pool_parallel(pool);
        dnn_im2col_par(&par, im, ch, h, w, ks, stride, pad, 1, got_col);
        assert_memory_equal(got_col, want_col, cols * sizeof(float));
        float *im_t = malloc(img * sizeof(float));
        assert_non_null(im_t);
        memcpy(im_t, got_im, img * sizeof(float));
        dnn_col2im_par(&par, col, ch, h, w, ks, stride, pad, 1, im_t);
        assert_memory_equal(im_t, want_im, img * sizeof(float));
        free(im_t);
        dz_pool_destroy(pool);
    }
    free(got_im);
    free(want_im);
    free(got_col);
    free(want_col);
    free(col);
    free(im);
}

#define CH 3
#define CLASSES 5
#define ITERS 3
#define MAX_LAYERS 12

/* A net to train: its layers, and the batch and image side it is trained on. */
struct net_case {
    size_t (*layers)(struct dnn_layer_spec *s);
    int batch, side;
};

static size_t conv_net(struct dnn_layer_spec *s)
{
    const struct dnn_layer_spec net[] = {
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_LEAKY,
         .filters = 20,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 1,
         .batch_normalize = true},
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_RELU,
         .filters = 40,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 2},
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_LEAKY,
         .filters = 30,
         .size = 5,
         .stride = 2,
         .pad = 2,
         .groups = 1,
         .batch_normalize = true},
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_LINEAR,
         .filters = 26,
         .size = 1,
         .stride = 1,
         .pad = 0,
         .groups = 1},
        {.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2},
        {.kind = DNN_LAYER_DROPOUT, .probability = 0.25f},
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES},
        {.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1},
    };
    memcpy(s, net, sizeof net);
    return sizeof net / sizeof net[0];
}

/* Enough values per layer for the splits to make several tasks with 2, 3 and 7 threads:
 * 16 images of 28 x 28, 16 and more channels; a padded 3/2 max pool with windows across
 * plane edges; a 1x1 convolution (no im2col); groups. */
static size_t split_net(struct dnn_layer_spec *s)
{
    const struct dnn_layer_spec net[] = {
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_LEAKY,
         .filters = 16,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 1,
         .batch_normalize = true},
        {.kind = DNN_LAYER_MAXPOOL, .size = 3, .stride = 2, .pad = 2},
        {.kind = DNN_LAYER_BATCHNORM},
        {.kind = DNN_LAYER_ACTIVATION, .activation = DNN_ACT_LOGISTIC},
        /* the second takes Winograd's path (conv_winograd.h): tasks over images, its forward
         * and input delta */
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_LEAKY,
         .filters = 64,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 1},
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_LEAKY,
         .filters = 64,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 1},
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_RELU,
         .filters = 32,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 2,
         .batch_normalize = true},
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_MISH,
         .filters = 30,
         .size = 1,
         .stride = 1,
         .pad = 0,
         .groups = 1,
         .batch_normalize = true},
        {.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2},
        {.kind = DNN_LAYER_CONNECTED,
         .activation = DNN_ACT_LEAKY,
         .outputs = 40,
         .batch_normalize = true},
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES},
        {.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1},
    };
    memcpy(s, net, sizeof net);
    return sizeof net / sizeof net[0];
}

/* What a run leaves: the losses, the weights after ITERS steps and a prediction. */
struct outcome {
    float loss[ITERS];
    float *params;
    size_t n_params;
    float *pred;
};

static void run_net(const struct net_case *nc, const struct dnn_parallel *par, struct outcome *o)
{
    const int batch = nc->batch, side = nc->side;
    struct dnn_net_config cfg = {.batch = batch,
                                 .subdivisions = 1,
                                 .h = side,
                                 .w = side,
                                 .c = CH,
                                 .learning_rate = 0.05f,
                                 .momentum = 0.9f,
                                 .decay = 0.0005f,
                                 .policy = DNN_POLICY_CONSTANT,
                                 .max_batches = 100};
    struct dnn_layer_spec s[MAX_LAYERS];
    const size_t n = nc->layers(s);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, true, 5), DNN_OK);
    assert_int_equal(dnn_network_set_parallel(net, par), DNN_OK);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 77);
    const size_t inputs = (size_t)side * (size_t)side * CH;
    float *x = test_random_floats(&rng, (size_t)batch * inputs);
    float *y = calloc((size_t)batch * CLASSES, sizeof(float));
    assert_non_null(y);
    for (int it = 0; it < ITERS; it++) {
        for (int b = 0; b < batch; b++)
            y[b * CLASSES + (b + it) % CLASSES] = 1;
        o->loss[it] = dnn_network_train_batch(net, x, y);
        memset(y, 0, (size_t)batch * CLASSES * sizeof(float));
    }
    o->n_params = 0;
    for (size_t i = 0; i < net->n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++)
            o->n_params += net->layers[i].params[p].count;
    o->params = malloc(o->n_params * sizeof(float));
    assert_non_null(o->params);
    size_t at = 0;
    for (size_t i = 0; i < net->n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++) {
            memcpy(o->params + at, net->layers[i].params[p].value,
                   net->layers[i].params[p].count * sizeof(float));
            at += net->layers[i].params[p].count;
        }
    const float *out = dnn_network_predict(net, x);
    o->pred = malloc((size_t)batch * CLASSES * sizeof(float));
    assert_non_null(o->pred);
    memcpy(o->pred, out, (size_t)batch * CLASSES * sizeof(float));
    free(y);
    free(x);
    dnn_network_free(net);
}

static void training_is_exact(const struct net_case *nc)
{
    struct outcome want;
    run_net(nc, NULL, &want);
    for (size_t t = 0; t < N_COUNTS; t++) {
        struct dz_pool *pool = dz_pool_create(thread_counts[t]);
        assert_non_null(pool);
        const struct dnn_parallel par = dz_pool_parallel(pool);
        struct outcome got;
        run_net(nc, &par, &got);
        assert_memory_equal(got.loss, want.loss, sizeof want.loss);
        assert_int_equal(got.n_params, want.n_params);
        assert_memory_equal(got.params, want.params, want.n_params * sizeof(float));
        assert_memory_equal(got.pred, want.pred, (size_t)nc->batch * CLASSES * sizeof(float));
        free(got.params);
        free(got.pred);
        dz_pool_destroy(pool);
    }
    free(want.params);
    free(want.pred);
}

static void test_training_is_exact(void **state)
{
    (void)state;
    const struct net_case nc = {conv_net, 4, 23};
    training_is_exact(&nc);
}

static void test_training_splits_are_exact(void **state)
{
    (void)state;
    const struct net_case nc = {split_net, 16, 28};
    training_is_exact(&nc);
}

static void test_parallel_first_cuts(void **state)
{
    (void)state;
    /* every item once, in order; tasks differ by one item at most, the larger first */
    for (size_t n = 0; n <= 100; n++)
        for (size_t tasks = 1; tasks <= 9; tasks++) {
            assert_int_equal(dnn_parallel_first(n, tasks, 0), 0);
            assert_int_equal(dnn_parallel_first(n, tasks, tasks), n);
            size_t prev = (size_t)-1;
            for (size_t t = 0; t < tasks; t++) {
                const size_t a = dnn_parallel_first(n, tasks, t);
                const size_t size = dnn_parallel_first(n, tasks, t + 1) - a;
                assert_true(size == n / tasks || size == n / tasks + 1);
                assert_true(size <= prev);
                prev = size;
            }
        }
    /* the case it was made for: 50 images in 8 tasks */
    assert_int_equal(dnn_parallel_first(50, 8, 2), 14);
}

/* A pool that is not one: runs the tasks on the calling thread, last first (the order a pool
 * may take them in), and keeps the largest task count it was given. */
struct backwards_pool {
    size_t most_tasks;
};

static void backwards_run(void *ctx, size_t n, void (*task)(void *arg, size_t i), void *arg)
{
    struct backwards_pool *p = ctx;
    if (n > p->most_tasks)
        p->most_tasks = n;
    for (size_t i = n; i-- > 0;)
        task(arg, i);
}

/* What dnn_parallel_ranges handed out: each item's piece count and the pieces' number. */
struct ranges_seen {
    unsigned char *hits; /* (n) times each item was in a piece */
    size_t pieces;
    size_t last_i0; /* the pieces come last first from backwards_run: each ends where the one
                       seen before it began */
};

static void record_range(void *arg, size_t i0, size_t i1)
{
    struct ranges_seen *r = arg;
    assert_true(i0 <= i1);
    if (r->pieces > 0)
        assert_int_equal(i1, r->last_i0);
    for (size_t i = i0; i < i1; i++)
        r->hits[i]++;
    r->last_i0 = i0;
    r->pieces++;
}

static void test_parallel_ranges_cover_once(void **state)
{
    (void)state;
    const size_t n = 1003, min_items = 50;
    unsigned char hits[1003];
    struct backwards_pool bp = {0};
    const struct dnn_parallel back = {.run = backwards_run, .ctx = &bp, .threads = 3};
    for (int serial = 0; serial < 2; serial++) {
        const struct dnn_parallel *par = serial ? NULL : &back;
        memset(hits, 0, sizeof hits);
        struct ranges_seen r = {.hits = hits};
        dnn_parallel_ranges(par, n, min_items, record_range, &r);
        assert_int_equal(r.pieces, serial ? 1 : dnn_parallel_tasks(&back, n, min_items));
        assert_true(serial || r.pieces >= 2);
        assert_int_equal(r.last_i0, 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(hits[i], 1);
    }
    /* nothing to cut: one empty piece, as the serial loop would run */
    struct ranges_seen r = {.hits = hits};
    dnn_parallel_ranges(&back, 0, min_items, record_range, &r);
    assert_int_equal(r.pieces, 1);
}

static void test_filter_transform_split_is_exact(void **state)
{
    (void)state;
    /* filters x channels: a last run of 3 filters (65 x 131 = 8515), whole runs, VGG-7's
     * conv7; each cut into several tasks by both transforms */
    const int shapes[][2] = {{65, 131}, {64, 200}, {512, 512}};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 23);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int k = shapes[s][0], c = shapes[s][1];
        const size_t filters = (size_t)k * (size_t)c, n = (size_t)DNN_WINO_XI * filters;
        float *w = test_random_floats(&rng, filters * 9);
        float *want = malloc(n * sizeof(float)), *want_t = malloc(n * sizeof(float));
        float *got = malloc(n * sizeof(float));
        assert_non_null(want);
        assert_non_null(want_t);
        assert_non_null(got);
        dnn_wino_filter_transform(w, k, c, want);
        dnn_wino_filter_transform_turned(w, k, c, want_t);
        struct backwards_pool bp = {0};
        const struct dnn_parallel back = {.run = backwards_run, .ctx = &bp, .threads = 2};
        memset(got, 0xff, n * sizeof(float));
        dnn_wino_filter_transform_par(&back, w, k, c, got);
        assert_memory_equal(got, want, n * sizeof(float));
        assert_true(bp.most_tasks >= 2);
        bp.most_tasks = 0;
        memset(got, 0xff, n * sizeof(float));
        dnn_wino_filter_transform_turned_par(&back, w, k, c, got);
        assert_memory_equal(got, want_t, n * sizeof(float));
        assert_true(bp.most_tasks >= 2);
        for (size_t t = 0; t < N_COUNTS; t++) {
            struct dz_pool *pool = dz_pool_create(thread_counts[t]);
            assert_non_null(pool);
            const struct dnn_parallel par = dz_pool_parallel(pool);
            memset(got, 0xff, n * sizeof(float));
            dnn_wino_filter_transform_par(&par, w, k, c, got);
            assert_memory_equal(got, want, n * sizeof(float));
            memset(got, 0xff, n * sizeof(float));
            dnn_wino_filter_transform_turned_par(&par, w, k, c, got);
            assert_memory_equal(got, want_t, n * sizeof(float));
            dz_pool_destroy(pool);
        }
        free(got);
        free(want_t);
        free(want);
        free(w);
    }
}

static void test_fill_split_is_exact(void **state)
{
    (void)state;
    /* an odd count, past a task's minimum several times; one guard float after it */
    const size_t n = 300007;
    float *x = malloc((n + 1) * sizeof(float));
    assert_non_null(x);
    struct backwards_pool bp = {0};
    const struct dnn_parallel back = {.run = backwards_run, .ctx = &bp, .threads = 3};
    for (size_t t = 0; t <= N_COUNTS; t++) {
        struct dz_pool *pool = t < N_COUNTS ? dz_pool_create(thread_counts[t]) : NULL;
        const struct dnn_parallel par = pool ? dz_pool_parallel(pool) : back;
        const float v = -1.5f - (float)t;
        dnn_fill(x, n + 1, 7.0f);
        dnn_fill_par(&par, x, n, v);
        for (size_t i = 0; i < n; i++)
            if (x[i] != v)
                fail_msg("element %zu of %zu is %g, not %g (%zu threads' case)", i, n, (double)x[i],
                         (double)v, t);
        assert_true(x[n] == 7.0f);
        dz_pool_destroy(pool);
    }
    assert_true(bp.most_tasks >= 2);
    free(x);
}

/* The SGD step in one pass, split or not, against darknet's three passes over the tensor. */
static void test_sgd_step_split_is_exact(void **state)
{
    (void)state;
    const size_t n = 200003; /* odd, past a task's minimum */
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 29);
    float *w0 = test_random_floats(&rng, n), *u0 = test_random_floats(&rng, n);
    float *w = malloc(n * sizeof(float)), *u = malloc(n * sizeof(float));
    float *want_w = malloc(n * sizeof(float)), *want_u = malloc(n * sizeof(float));
    assert_non_null(w);
    assert_non_null(u);
    assert_non_null(want_w);
    assert_non_null(want_u);
    /* zeros whose signs the decay's addition changes (-0 + +0 is +0), as darknet's does */
    u0[0] = -0.0f;
    w0[0] = -0.0f;
    struct backwards_pool bp = {0};
    const struct dnn_parallel back = {.run = backwards_run, .ctx = &bp, .threads = 2};
    for (int decay_on = 0; decay_on < 2; decay_on++) {
        struct dnn_update_args a = {
            .batch = 3, .learning_rate = 0.07f, .momentum = 0.9f, .decay = 0.0005f, .t = 1};
        memcpy(want_w, w0, n * sizeof(float));
        memcpy(want_u, u0, n * sizeof(float));
        if (decay_on)
            dnn_axpy(n, -a.decay * (float)a.batch, want_w, want_u);
        dnn_axpy(n, a.learning_rate / (float)a.batch, want_u, want_w);
        dnn_scal(n, a.momentum, want_u);
        for (size_t t = 0; t <= N_COUNTS + 1; t++) {
            struct dz_pool *pool = t < N_COUNTS ? dz_pool_create(thread_counts[t]) : NULL;
            const struct dnn_parallel par = pool ? dz_pool_parallel(pool) : back;
            a.par = t <= N_COUNTS ? &par : NULL; /* the last case: no threads at all */
            memcpy(w, w0, n * sizeof(float));
            memcpy(u, u0, n * sizeof(float));
            dnn_sgd_step(w, u, n, &a, decay_on);
            assert_memory_equal(w, want_w, n * sizeof(float));
            assert_memory_equal(u, want_u, n * sizeof(float));
            dz_pool_destroy(pool);
        }
    }
    assert_true(bp.most_tasks >= 2);
    free(want_u);
    free(want_w);
    free(u);
    free(w);
    free(u0);
    free(w0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_split_is_exact),
        cmocka_unit_test(test_im2col_split_is_exact),
        cmocka_unit_test(test_training_is_exact),
        cmocka_unit_test(test_training_splits_are_exact),
        cmocka_unit_test(test_parallel_first_cuts),
        cmocka_unit_test(test_parallel_ranges_cover_once),
        cmocka_unit_test(test_filter_transform_split_is_exact),
        cmocka_unit_test(test_fill_split_is_exact),
        cmocka_unit_test(test_sgd_step_split_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
