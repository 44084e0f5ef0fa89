/*
 * test_training.c - the engine learns, and learns reproducibly.
 *
 * A synthetic 4-class problem the test makes itself: 8x8 gray images with a
 * bright bar in one of four places (top, bottom, left, right) plus noise. A
 * small conv net must reach a low loss and high held-out accuracy; a broken
 * backward pass (wrong sign, missing term) stays near chance (25%).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn.h"

#define SIDE 8
#define CLASSES 4
#define BATCH 16

static void make_example(struct dnn_rng *rng, float *x, float *y)
{
    int cls = (int)(dnn_rng_u32(rng) % CLASSES);
    int pos = 1 + (int)(dnn_rng_u32(rng) % 2); /* bar at row/col 1-2 from its edge */
    for (int i = 0; i < SIDE * SIDE; i++)
        x[i] = dnn_rng_uniform(rng, 0, 0.5f);
    for (int k = 0; k < SIDE; k++) {
        int r = 0, c = 0;
        switch (cls) {
        case 0:
            r = pos, c = k;
            break;
        case 1:
            r = SIDE - 1 - pos, c = k;
            break;
        case 2:
            r = k, c = pos;
            break;
        default:
            r = k, c = SIDE - 1 - pos;
            break;
        }
        x[r * SIDE + c] += 0.6f;
    }
    for (int j = 0; j < CLASSES; j++)
        y[j] = j == cls ? 1.0f : 0.0f;
}

static struct dnn_net_config config(void)
{
    struct dnn_net_config cfg = {
        .batch = BATCH,
        .subdivisions = 1,
        .h = SIDE,
        .w = SIDE,
        .c = 1,
        .learning_rate = 0.05f,
        .momentum = 0.9f,
        .decay = 0.0005f,
        .policy = DNN_POLICY_CONSTANT,
        .max_batches = 300,
    };
    return cfg;
}

static size_t specs(struct dnn_layer_spec *s)
{
    const struct dnn_layer_spec net[] = {
        {.kind = DNN_LAYER_CONVOLUTIONAL,
         .activation = DNN_ACT_RELU,
         .filters = 4,
         .size = 3,
         .stride = 1,
         .pad = 1,
         .groups = 1,
         .batch_normalize = true},
        {.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2, .pad = 1},
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = 16},
        {.kind = DNN_LAYER_DROPOUT, .probability = 0.2f},
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES},
        {.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1},
    };
    memcpy(s, net, sizeof net);
    return sizeof net / sizeof net[0];
}

/* Trains for iters batches; returns the mean loss of the last 20 batches. */
static float train(struct dnn_network *net, uint64_t data_seed, int iters)
{
    struct dnn_rng rng;
    dnn_rng_seed(&rng, data_seed);
    float *x = malloc(sizeof(float) * BATCH * SIDE * SIDE);
    float *y = malloc(sizeof(float) * BATCH * CLASSES);
    float tail = 0;
    for (int it = 0; it < iters; it++) {
        for (int b = 0; b < BATCH; b++)
            make_example(&rng, x + b * SIDE * SIDE, y + b * CLASSES);
        float loss = dnn_network_train_batch(net, x, y) / BATCH;
        if (it >= iters - 20)
            tail += loss / 20;
    }
    free(y);
    free(x);
    return tail;
}

/* Accuracy of a copy of the trained weights in an inference network. */
static double held_out_accuracy(struct dnn_network *trained)
{
    struct dnn_layer_spec s[6];
    size_t n = specs(s);
    struct dnn_net_config cfg = config();
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, false, 99), DNN_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++)
            memcpy(net->layers[i].params[p].value, trained->layers[i].params[p].value,
                   net->layers[i].params[p].count * sizeof(float));
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 12345);
    float x[BATCH * SIDE * SIDE], y[BATCH * CLASSES];
    int correct = 0, total = 0;
    for (int it = 0; it < 25; it++) {
        for (int b = 0; b < BATCH; b++)
            make_example(&rng, x + b * SIDE * SIDE, y + b * CLASSES);
        const float *out = dnn_network_predict(net, x);
        for (int b = 0; b < BATCH; b++) {
            int best = 0;
            dnn_top_k(out + b * CLASSES, CLASSES, 1, &best);
            correct += y[b * CLASSES + best] == 1.0f;
            total++;
        }
    }
    dnn_network_free(net);
    return (double)correct / total;
}

static void test_learns_synthetic_task(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6];
    size_t n = specs(s);
    struct dnn_net_config cfg = config();
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, true, 7), DNN_OK);
    float first = train(net, 1, 20);
    float last = train(net, 2, 280);
    double acc = held_out_accuracy(net);
    print_message("loss %.4f -> %.4f, held-out accuracy %.3f\n", first, last, acc);
    /* Chance is 25% and a loss of ln(4) = 1.39; a broken gradient stays there. */
    assert_true(last < 0.25f);
    assert_true(acc > 0.95);
    dnn_network_free(net);
}

static bool same_params(const struct dnn_network *a, const struct dnn_network *b)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t p = 0; p < a->layers[i].n_params; p++)
            if (memcmp(a->layers[i].params[p].value, b->layers[i].params[p].value,
                       a->layers[i].params[p].count * sizeof(float)) != 0)
                return false;
    return true;
}

static void test_same_seed_same_weights(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6];
    size_t n = specs(s);
    struct dnn_net_config cfg = config();
    struct dnn_network *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(dnn_network_create(&a, &cfg, s, n, true, 3), DNN_OK);
    assert_int_equal(dnn_network_create(&b, &cfg, s, n, true, 3), DNN_OK);
    assert_int_equal(dnn_network_create(&c, &cfg, s, n, true, 4), DNN_OK);
    assert_true(same_params(a, b));
    assert_false(same_params(a, c));
    train(a, 5, 30);
    train(b, 5, 30);
    train(c, 5, 30);
    assert_true(same_params(a, b));
    assert_false(same_params(a, c));
    dnn_network_free(a);
    dnn_network_free(b);
    dnn_network_free(c);
}

/*
 * darknet's stopbackward: with layers 0..2 frozen, training leaves every parameter of
 * them as it was (BN scales included; the rolling statistics keep following the batches,
 * as in darknet), moves the layers after them, and propagates no delta past them.
 */
static void test_frozen_layers(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6];
    size_t n = specs(s);
    for (size_t i = 0; i <= 2; i++)
        s[i].frozen = true;
    struct dnn_net_config cfg = config();
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, true, 3), DNN_OK);
    float *before[6][DNN_MAX_PARAMS] = {{NULL}};
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++) {
            const struct dnn_param *q = &net->layers[i].params[p];
            before[i][p] = malloc(q->count * sizeof(float));
            assert_non_null(before[i][p]);
            memcpy(before[i][p], q->value, q->count * sizeof(float));
        }
    (void)train(net, 11, 30);
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < net->layers[i].n_params; p++) {
            const struct dnn_param *q = &net->layers[i].params[p];
            const bool same = memcmp(before[i][p], q->value, q->count * sizeof(float)) == 0;
            const bool rolling = strncmp(q->name, "rolling_", 8) == 0;
            if (i <= 2 && !rolling && !same)
                fail_msg("frozen layer %zu: %s changed", i, q->name);
            if (i > 2 && same && strcmp(q->name, "weights") == 0)
                fail_msg("layer %zu after the frozen ones: %s did not train", i, q->name);
            free(before[i][p]);
        }
    }
    /* the delta stops at the last frozen layer (layer 3 still adds into layer 2's, as in
     * darknet): those before it stay as forward cleared them */
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < net->layers[i].outputs * (size_t)net->layers[i].batch; k++)
            assert_true(net->layers[i].delta[k] == 0.0f);
    dnn_network_free(net);
}

/* AlexeyAB's sgdr rate, in double with libm's cos, for the batch numbers of three cycles
 * (4, 8, 16 batches): warm restarts at 5 and 13, the end of a cycle at its minimum. */
static double sgdr_want(uint64_t bn, int cycle0, int mult, float lr, float lr_min)
{
    uint64_t start = 0, cycle = (uint64_t)cycle0;
    while (start + cycle < bn) {
        start += cycle;
        cycle *= (uint64_t)mult;
    }
    return (float)((double)lr_min +
                   0.5 * (double)(lr - lr_min) *
                       (1. + cos((double)(float)(bn - start) * 3.14159265 / (double)cycle)));
}

static void test_sgdr_rate(void **state)
{
    (void)state;
    struct dnn_layer_spec s[6];
    size_t n = specs(s);
    struct dnn_net_config cfg = config();
    cfg.policy = DNN_POLICY_SGDR;
    cfg.learning_rate = 0.1f;
    cfg.learning_rate_min = 0.001f;
    cfg.sgdr_cycle = 4;
    cfg.sgdr_mult = 2;
    cfg.burn_in = 0;
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, false, 3), DNN_OK);
    const uint64_t per = (uint64_t)cfg.batch * (uint64_t)cfg.subdivisions;
    for (uint64_t bn = 0; bn <= 40; bn++) {
        net->seen = bn * per;
        const float got = dnn_network_current_rate(net);
        const double want = sgdr_want(bn, 4, 2, 0.1f, 0.001f);
        if (fabs(got - want) > 1e-7 * want)
            fail_msg("batch %u: rate %.9g, want %.9g", (unsigned)bn, (double)got, want);
    }
    net->seen = 4 * per; /* the end of the first cycle: the minimum */
    assert_true(fabs(dnn_network_current_rate(net) - 0.001) < 1e-6);
    net->seen = 5 * per; /* a restart: near the maximum again */
    assert_true(dnn_network_current_rate(net) > 0.09f);
    /* equal cycles (mult 1): the same rate every 4 batches */
    net->cfg.sgdr_mult = 1;
    net->seen = 3 * per;
    const float r3 = dnn_network_current_rate(net);
    net->seen = 1003 * per;
    assert_true(dnn_network_current_rate(net) == r3);
    dnn_network_free(net);
    /* a cycle of 0 never ends in darknet: refused */
    cfg.sgdr_cycle = 0;
    assert_int_equal(dnn_network_create(&net, &cfg, s, n, false, 3), DNN_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_synthetic_task),
        cmocka_unit_test(test_same_seed_same_weights),
        cmocka_unit_test(test_frozen_layers),
        cmocka_unit_test(test_sgdr_rate),
    };
    return cmocka_run_group_tests_name("training", tests, NULL, NULL);
}
