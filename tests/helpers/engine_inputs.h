/*
 * engine_inputs.h - what the engine tests build their networks and data from: uniform random
 * floats from the engine's own seeded generator, and a convolutional layer's spec by its
 * darknet keys. Include after <cmocka.h> (the allocation is asserted).
 */
#ifndef TESTS_ENGINE_INPUTS_H
#define TESTS_ENGINE_INPUTS_H

#include <stdbool.h>
#include <stdlib.h>

#include "dnn/dnn_internal.h"

/* n floats uniform in [-1, 1) from @rng, malloc'd (the caller frees). */
static inline float *test_random_floats(struct dnn_rng *rng, size_t n)
{
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = dnn_rng_uniform(rng, -1, 1);
    return x;
}

/* A [convolutional] section: filters, size, stride, pad (darknet's pixels), groups,
 * dilation (0: none), batch_normalize and activation. */
static inline struct dnn_layer_spec test_conv_spec(int filters, int size, int stride, int pad,
                                                   int groups, int dilation, bool bn,
                                                   enum dnn_activation act)
{
    return (struct dnn_layer_spec){.kind = DNN_LAYER_CONVOLUTIONAL,
                                   .activation = act,
                                   .filters = filters,
                                   .size = size,
                                   .stride = stride,
                                   .pad = pad,
                                   .groups = groups,
                                   .dilation = dilation,
                                   .batch_normalize = bn};
}

#endif
