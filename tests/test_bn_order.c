/*
 * test_bn_order.c - batch normalisation's sums keep darknet's order, bit for bit.
 *
 * dnn/batchnorm.c sums several channels side by side for speed; each channel's chain of
 * additions must stay the one darknet's loops make (images, then pixels): mean_cpu,
 * variance_cpu (squares in double, each partial sum rounded to float), backward_bias (a sum
 * per image plane, added to the update), backward_scale (one sum, then one addition),
 * mean_delta_cpu and variance_delta_cpu. Here those loops are written out plainly, one
 * channel at a time, and compared with the engine's results bit for bit, on 9 channels (two
 * groups and a remainder) of a convolution with batch normalisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/helpers/engine_inputs.h"

#define BATCH 3
#define SIDE 5
#define CH 2
#define FILTERS 9
#define SPATIAL (SIDE * SIDE)

static void assert_bits(const char *what, int f, float got, float want)
{
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("%s of channel %d: %a, darknet's order gives %a", what, f, got, want);
}

static void test_sums_keep_darknet_order(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = {.batch = BATCH,
                                       .subdivisions = 1,
                                       .h = SIDE,
                                       .w = SIDE,
                                       .c = CH,
                                       .learning_rate = 0.1f,
                                       .max_batches = 1};
    const struct dnn_layer_spec spec = test_conv_spec(FILTERS, 3, 1, 1, 1, 0, true, DNN_ACT_LINEAR);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, &spec, 1, true, 5), DNN_OK);
    struct dnn_layer *l = &net->layers[0];
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 77);
    float *x = test_random_floats(&rng, (size_t)BATCH * SIDE * SIDE * CH);
    dnn_network_forward_range(net, 0, 0, x, NULL, true);

    /* The forward's statistics, from the product it normalised (bn.x). */
    const float *px = l->bn.x;
    const float count = (float)(BATCH * SPATIAL);
    float mean[FILTERS], var[FILTERS];
    for (int f = 0; f < FILTERS; f++) {
        float sum = 0;
        for (int b = 0; b < BATCH; b++)
            for (int k = 0; k < SPATIAL; k++)
                sum += px[(b * FILTERS + f) * SPATIAL + k];
        mean[f] = sum * (1.0f / count);
        assert_bits("mean", f, l->bn.mean[f], mean[f]);
        float sq = 0;
        for (int b = 0; b < BATCH; b++)
            for (int k = 0; k < SPATIAL; k++) {
                const double d = (double)(px[(b * FILTERS + f) * SPATIAL + k] - mean[f]);
                sq = (float)((double)sq + d * d);
            }
        var[f] = sq * (1.0f / (count - 1));
        assert_bits("variance", f, l->bn.variance[f], var[f]);
    }

    /* The backward's sums, from a delta set here (linear activation: it reaches BN as is). */
    float *delta = test_random_floats(&rng, (size_t)BATCH * FILTERS * SPATIAL);
    memcpy(l->delta, delta, (size_t)BATCH * FILTERS * SPATIAL * sizeof(float));
    memset(l->bias_updates, 0, FILTERS * sizeof(float));
    memset(l->bn.scale_updates, 0, FILTERS * sizeof(float));
    dnn_network_backward_range(net, 0, 0, x, NULL);
    const float *xn = l->bn.x_norm;
    for (int f = 0; f < FILTERS; f++) {
        float bias = 0, scale = 0, dmean = 0, dvar = 0;
        for (int b = 0; b < BATCH; b++) {
            float plane = 0;
            for (int k = 0; k < SPATIAL; k++)
                plane += delta[(b * FILTERS + f) * SPATIAL + k];
            bias += plane;
        }
        for (int b = 0; b < BATCH; b++)
            for (int k = 0; k < SPATIAL; k++) {
                const int i = (b * FILTERS + f) * SPATIAL + k;
                scale += delta[i] * xn[i];
            }
        /* mean_delta and variance_delta sum the delta after the scale */
        for (int b = 0; b < BATCH; b++)
            for (int k = 0; k < SPATIAL; k++) {
                const int i = (b * FILTERS + f) * SPATIAL + k;
                const float d = delta[i] * l->bn.scales[f];
                dmean += d;
                dvar += d * (px[i] - mean[f]);
            }
        const float v = var[f] + .00001f;
        assert_bits("bias update", f, l->bias_updates[f], bias);
        assert_bits("scale update", f, l->bn.scale_updates[f], scale);
        assert_bits("mean delta", f, l->bn.mean_delta[f], dmean * (-1.0f / dnn_sqrtf(v)));
        assert_bits("variance delta", f, l->bn.variance_delta[f],
                    dvar * (-.5f * dnn_powf(v, -1.5f)));
    }
    free(delta);
    free(x);
    dnn_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_keep_darknet_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
