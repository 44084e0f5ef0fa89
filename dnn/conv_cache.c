/*
 * conv_cache.c - which convolutions keep their forward pass's column matrices for their
 * backward pass (dnn_network_set_column_cache), and where.
 *
 * darknet lowers each image twice in a training step: im2col for the forward product, and
 * im2col again in the backward pass for the weight gradient, since its one workspace holds
 * one image. A layer given the memory here lowers the whole batch once, the images' columns
 * side by side (dnn_conv_cache_at), and its backward reads those columns. They
 * are the floats im2col writes, and the products read them with another row stride only,
 * which changes no bit (gemm.c computes each element from its own row and column).
 */
#include "dnn/conv_lower.h"
#include "dnn/conv_sliding.h"
#include "dnn/conv_winograd.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

/* Floats layer l would keep, or 0 when it keeps none: not a convolution that lowers through
 * im2col, one whose forward pass slides over the image instead (conv_sliding.c: only its
 * backward pass lowers it, once), one whose passes all take Winograd's path (none lowers it),
 * or a size an int stride of the products cannot address. */
static size_t cache_floats(const struct dnn_layer *l)
{
    if (l->kind != DNN_LAYER_CONVOLUTIONAL || l->spec.antialiasing || dnn_conv_direct(l) ||
        dnn_conv_sliding_applies(l) || dnn_conv_winograd_applies(l) || !l->weights)
        return 0;
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t ld = dnn_conv_cache_ld(l);
    size_t rows = 0, floats = 0;
    if (ld == 0 || ld > INT_MAX || !dnn_mul_size((size_t)d.k, (size_t)l->spec.groups, &rows) ||
        !dnn_mul_size(rows, ld, &floats))
        return 0;
    return floats;
}

/* The first layer whose backward runs: the one after the last frozen layer (darknet's
 * stopbackward ends the backward pass there). */
static size_t first_backward(const struct dnn_network *net)
{
    size_t first = 0;
    for (size_t i = 0; i < net->n; i++)
        if (net->layers[i].spec.frozen)
            first = i + 1;
    return first;
}

enum dnn_status dnn_network_set_column_cache(struct dnn_network *net, size_t max_bytes)
{
    dnn_network_column_cache_free(net);
    if (!net->training)
        return DNN_OK;
    const size_t budget = max_bytes / sizeof(float), from = first_backward(net);
    size_t used = 0;
    /* first pass: who fits, as offsets; the second hands out pointers into one block */
    size_t *at = calloc(net->n ? net->n : 1, sizeof *at);
    if (!at)
        return DNN_ERR_NOMEM;
    for (size_t i = from; i < net->n; i++) {
        const size_t f = cache_floats(&net->layers[i]);
        at[i] = SIZE_MAX;
        if (f == 0 || f > budget - used)
            continue;
        at[i] = used;
        used += f; /* <= budget */
    }
    if (used > 0) {
        net->col_cache = malloc(used * sizeof(float)); /* used <= budget: no overflow */
        if (!net->col_cache) {
            free(at);
            return DNN_ERR_NOMEM;
        }
        net->col_cache_floats = used;
        for (size_t i = from; i < net->n; i++)
            if (at[i] != SIZE_MAX)
                net->layers[i].col_cache = net->col_cache + at[i];
    }
    free(at);
    return DNN_OK;
}
