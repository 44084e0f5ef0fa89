/*
 * test_decoded_specs.c - random small segments of convolutional, maxpool and shortcut layers
 * with AlexeyAB's fields (antialiasing 0-2 with strides 1-4, a shortcut's extra sources,
 * weights_type, weights_normalization), each encoded and then decoded by the TA's wire
 * decoder as OPEN_MODEL decodes it, and whatever it accepts built by the engine and run:
 * forward, backward and update, once serially and once split over tasks.
 *
 * A hostile normal world chooses these fields; the engine must either refuse the segment at
 * setup or run it within its buffers. The sanitizer build (test-asan) is what catches a read
 * or write past a buffer here; both builds check that the split run gives the serial run's
 * outputs and input delta bit for bit, as dnn_network_set_parallel promises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dnn/dnn.h"
#include "ta/include/dz_wire.h"

#define MAX_LAYERS 8

static uint64_t state = 0x2545F4914F6CDD1Dull;

/* xorshift64: the test's own stream, so that a failure reproduces from its index. */
static unsigned pick(unsigned n)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (unsigned)(state % n);
}

static void random_spec(struct dnn_layer_spec *s, int index)
{
    memset(s, 0, sizeof(*s));
    const unsigned kind = index == 0 ? pick(2) : pick(3);
    if (kind == 0) {
        s->kind = DNN_LAYER_CONVOLUTIONAL;
        s->filters = 1 + (int)pick(5);
        s->size = 1 + (int)pick(3);
        s->stride = 1 + (int)pick(4);
        s->pad = (int)pick(3);
        s->groups = 1;
        s->antialiasing = (int)pick(3);
        s->batch_normalize = pick(2) != 0;
        s->activation = (enum dnn_activation)pick(DNN_ACT_COUNT);
    } else if (kind == 1) {
        s->kind = DNN_LAYER_MAXPOOL;
        s->size = 1 + (int)pick(3);
        s->stride = 1 + (int)pick(4);
        s->pad = (int)pick(3);
        s->antialiasing = (int)pick(3);
    } else {
        /* sources anywhere before the layer: of other shapes too, which setup must refuse */
        s->kind = DNN_LAYER_SHORTCUT;
        s->from = (int)pick((unsigned)index);
        s->n_route = (int)pick(4);
        for (int r = 0; r < s->n_route; r++)
            s->route[r] = (int)pick((unsigned)index);
        s->weights_type = (enum dnn_shortcut_weights)pick(DNN_SHORTCUT_WEIGHTS_COUNT);
        s->weights_normalization = (enum dnn_weights_normalization)pick(DNN_WEIGHTS_NORM_COUNT);
        s->activation = (enum dnn_activation)pick(DNN_ACT_COUNT);
        s->alpha = 1;
        s->beta = 1;
    }
}

/* Runs the tasks one after another, last first: the split without threads, so that the
 * sanitizers see every task's scratch and nothing depends on the tasks' order. */
static void run_in_reverse(void *ctx, size_t n, void (*task)(void *arg, size_t i), void *arg)
{
    (void)ctx;
    for (size_t i = n; i-- > 0;)
        task(arg, i);
}

static void test_random_segments(void **state_)
{
    (void)state_;
    const int cases = getenv("DNN_TEST_QUICK") ? 1000 : 4000;
    int built = 0, refused = 0;
    for (int t = 0; t < cases; t++) {
        struct dnn_net_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.batch = 1 + (int)pick(3);
        cfg.subdivisions = 1;
        cfg.h = 1 + (int)pick(7);
        cfg.w = 1 + (int)pick(7);
        cfg.c = 1 + (int)pick(4);
        cfg.learning_rate = 0.01f;
        cfg.momentum = 0.9f;
        cfg.decay = 0.0005f;
        cfg.policy = DNN_POLICY_CONSTANT;
        cfg.max_batches = 10;
        const int n = 2 + (int)pick(MAX_LAYERS - 1);
        struct dnn_layer_spec specs[MAX_LAYERS];
        for (int i = 0; i < n; i++) {
            struct dnn_layer_spec s;
            struct dz_wire_spec w;
            char msg[DZ_WIRE_MSG_MAX];
            random_spec(&s, i);
            dz_wire_encode_spec(&s, &w);
            /* everything drawn is in the decoder's ranges: the engine is what is tried */
            const char *why = dz_wire_decode_spec(&w, 0, (uint32_t)i, &specs[i], msg);
            if (why)
                fail_msg("case %d layer %d: %s", t, i, why);
        }
        const bool train = pick(2) != 0;
        struct dnn_network *serial = NULL, *split = NULL;
        if (dnn_network_create(&serial, &cfg, specs, (size_t)n, train, (uint64_t)t) != DNN_OK) {
            refused++;
            continue;
        }
        built++;
        assert_int_equal(dnn_network_create(&split, &cfg, specs, (size_t)n, train, (uint64_t)t),
                         DNN_OK);
        const struct dnn_parallel par = {run_in_reverse, NULL, 2 + pick(3)};
        assert_int_equal(dnn_network_set_parallel(split, &par), DNN_OK);

        const size_t in = (size_t)cfg.h * (size_t)cfg.w * (size_t)cfg.c * (size_t)cfg.batch;
        float *x = malloc(in * sizeof(*x));
        float *dx = calloc(in, sizeof(*dx)), *split_dx = calloc(in, sizeof(*split_dx));
        assert_non_null(x);
        assert_non_null(dx);
        assert_non_null(split_dx);
        for (size_t i = 0; i < in; i++)
            x[i] = (float)pick(200) / 50.0f - 2.0f;
        dnn_network_forward_range(serial, 0, (size_t)n - 1, x, NULL, train);
        dnn_network_forward_range(split, 0, (size_t)n - 1, x, NULL, train);
        struct dnn_layer *a = &serial->layers[n - 1], *b = &split->layers[n - 1];
        const size_t outs = a->outputs * (size_t)cfg.batch;
        if (memcmp(a->output, b->output, outs * sizeof(float)) != 0)
            fail_msg("case %d: the split forward differs from the serial one", t);
        if (train) {
            for (size_t i = 0; i < outs; i++)
                a->delta[i] = b->delta[i] = 0.125f;
            dnn_network_backward_range(serial, 0, (size_t)n - 1, x, dx);
            dnn_network_backward_range(split, 0, (size_t)n - 1, x, split_dx);
            if (memcmp(dx, split_dx, in * sizeof(float)) != 0)
                fail_msg("case %d: the split input delta differs from the serial one", t);
            dnn_network_update_range(serial, 0, (size_t)n - 1);
            dnn_network_update_range(split, 0, (size_t)n - 1);
        }
        free(split_dx);
        free(dx);
        free(x);
        dnn_network_free(split);
        dnn_network_free(serial);
    }
    /* the sweep must reach the engine in both ways, or it tries nothing */
    print_message("  %d segments built, %d refused by setup\n", built, refused);
    assert_true(built > cases / 5);
    assert_true(refused > cases / 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_segments),
    };
    return cmocka_run_group_tests_name("decoded_specs", tests, NULL, NULL);
}
