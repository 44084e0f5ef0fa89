/*
 * layer_connected.c - darknet's [connected] layer: output = input * W^T + b, optional
 * batch normalisation, then the activation. The input (h, w, c) is taken flat.
 */
#include "dnn/dnn_internal.h"

#include <limits.h>
#include <stdint.h>

static enum dnn_status connected_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const int outputs = l->spec.outputs;
    if (outputs <= 0)
        return DNN_ERR_INVALID;
    if (l->inputs == 0)
        return DNN_ERR_SHAPE;
    if (l->inputs > INT_MAX) /* gemm takes int sizes */
        return DNN_ERR_OVERFLOW;
    l->out_h = 1;
    l->out_w = 1;
    l->out_c = outputs;
    if (!dnn_mul_size(l->inputs, (size_t)outputs, &l->nweights))
        return DNN_ERR_OVERFLOW;
    l->nbiases = (size_t)outputs;
    l->workspace_floats = 0;

    /* .weights order: biases, weights (outputs x inputs), [scales, rolling_mean,
     * rolling_variance]. */
    enum dnn_status st = dnn_layer_add_param(l, "biases", &l->biases, &l->bias_updates, l->nbiases);
    if (st == DNN_OK)
        st = dnn_layer_add_param(l, "weights", &l->weights, &l->weight_updates, l->nweights);
    if (st == DNN_OK && l->spec.batch_normalize)
        st = dnn_bn_setup(l);
    if (st == DNN_OK)
        st = dnn_layer_request_act_input(l);
    return st;
}

/* darknet: weights ~ sqrt(2 / inputs) * U(-1, 1), biases 0, BN scales 1. */
static void connected_init(struct dnn_layer *l, struct dnn_rng *rng)
{
    const float scale = dnn_sqrtf(2.0f / (float)l->inputs);
    for (size_t i = 0; i < l->nweights; i++)
        l->weights[i] = scale * dnn_rng_uniform(rng, -1, 1);
    dnn_fill(l->biases, l->nbiases, 0);
    if (l->spec.batch_normalize)
        dnn_bn_init(l);
}

static void connected_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int batch = l->batch, in = (int)l->inputs, out = l->out_c;
    /* output(batch, out) = input(batch, in) * weights(out, in)^T */
    dnn_gemm_par(run->par, false, true, batch, out, in, 1, run->input, in, l->weights, in, 0,
                 l->output, out);
    if (l->spec.batch_normalize)
        dnn_bn_forward(l, run->train, run->par);
    else
        dnn_add_bias(l->output, l->biases, batch, out, 1);
    dnn_activate_array_keep_par(run->par, l->output, l->outputs * (size_t)batch, l->spec.activation,
                                l->act_input);
}

enum dnn_status dnn_connected_tile_forward(struct dnn_layer *l, const float *input, bool train,
                                           const struct dnn_tile_params *p, size_t row0,
                                           size_t rows)
{
    const int batch = l->batch, in = (int)l->inputs, out = l->out_c;
    float *y = l->output + row0;
    /* y(batch, rows) with row stride out = input(batch, in) * weights(rows, in)^T */
    dnn_gemm(false, true, batch, (int)rows, in, 1, input, in, p->weights, in, 0, y, out);
    if (l->spec.batch_normalize) /* per channel over the batch: these channels alone */
        dnn_bn_forward_rows(l, train, p, row0, rows);
    for (int b = 0; b < batch; b++) {
        const size_t at = (size_t)b * (size_t)out;
        float *yb = y + at;
        for (size_t j = 0; !l->spec.batch_normalize && j < rows; j++)
            yb[j] += p->biases[j]; /* dnn_add_bias's one addition per value */
        /* act_input exists in training only: backward's gradient needs it for some kinds */
        dnn_activate_array_keep(yb, rows, l->spec.activation,
                                l->act_input ? l->act_input + at + row0 : NULL);
    }
    return DNN_OK;
}

enum dnn_status dnn_connected_forward_rows(struct dnn_layer *l, const float *input,
                                           const float *biases, const float *weights, size_t row0,
                                           size_t rows)
{
    if (!l || l->kind != DNN_LAYER_CONNECTED || l->spec.batch_normalize)
        return DNN_ERR_INVALID;
    const struct dnn_tile_params p = {.biases = (float *)(uintptr_t)biases,
                                      .weights = (float *)(uintptr_t)weights};
    return dnn_tile_forward(l, input, false, &p, row0, rows, NULL);
}

enum dnn_status dnn_connected_tile_backward(struct dnn_layer *l, const float *input,
                                            float *input_delta, const struct dnn_tile_params *p,
                                            size_t row0, size_t rows)
{
    if (!rows)
        return DNN_OK;
    const int batch = l->batch, in = (int)l->inputs, out = l->out_c;
    float *d = l->delta + row0;
    for (int b = 0; b < batch; b++) {
        const size_t at = (size_t)b * (size_t)out + row0;
        dnn_gradient_array_keep(l->output + at, l->act_input ? l->act_input + at : NULL, rows,
                                l->spec.activation, l->delta + at);
    }
    if (l->spec.batch_normalize) {
        dnn_bn_backward_rows(l, p, row0, rows);
    } else {
        /* dnn_backward_bias's sums, for these rows: images in increasing order */
        for (int b = 0; b < batch; b++)
            for (size_t j = 0; j < rows; j++)
                p->bias_updates[j] += dnn_sum(d + (size_t)b * (size_t)out + j, 1);
    }
    /* weight_updates(rows, in) += delta(batch, rows)^T * input(batch, in) */
    dnn_gemm(true, false, (int)rows, in, batch, 1, d, out, input, in, 1, p->weight_updates, in);
    /* input_delta(batch, in) += delta(batch, rows) * weights(rows, in): gemm adds the terms
     * in increasing row order straight into input_delta, so the layer's chunks taken in row
     * order add exactly what the whole layer's product adds. */
    if (input_delta)
        dnn_gemm(false, false, batch, in, (int)rows, 1, d, out, p->weights, in, 1, input_delta, in);
    return DNN_OK;
}

enum dnn_status dnn_connected_backward_rows(struct dnn_layer *l, const float *input,
                                            float *input_delta, const float *weights,
                                            float *bias_updates, float *weight_updates, size_t row0,
                                            size_t rows)
{
    if (!l || l->kind != DNN_LAYER_CONNECTED || l->spec.batch_normalize || !weights)
        return DNN_ERR_INVALID;
    /* the biases themselves are not read: any non-NULL slice passes the check */
    const struct dnn_tile_params p = {.biases = bias_updates,
                                      .weights = (float *)(uintptr_t)weights,
                                      .bias_updates = bias_updates,
                                      .weight_updates = weight_updates};
    return dnn_tile_backward(l, input, input_delta, &p, row0, rows, row0 == 0,
                             row0 + rows == (size_t)l->out_c, NULL, NULL);
}

enum dnn_status dnn_connected_update_rows(const struct dnn_layer *l,
                                          const struct dnn_update_args *a, float *biases,
                                          float *weights, float *bias_updates,
                                          float *weight_updates, size_t rows)
{
    if (!l || l->kind != DNN_LAYER_CONNECTED || l->spec.batch_normalize)
        return DNN_ERR_INVALID;
    const struct dnn_tile_params p = {.biases = biases,
                                      .weights = weights,
                                      .bias_updates = bias_updates,
                                      .weight_updates = weight_updates};
    return dnn_tile_update(l, a, &p, rows);
}

static void connected_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int batch = l->batch, in = (int)l->inputs, out = l->out_c;
    dnn_gradient_array_keep_par(run->par, l->output, l->act_input, l->outputs * (size_t)batch,
                                l->spec.activation, l->delta);
    if (l->spec.batch_normalize)
        dnn_bn_backward(l, run->par);
    else
        dnn_backward_bias(l->bias_updates, l->delta, batch, out, 1);
    /* weight_updates(out, in) += delta(batch, out)^T * input(batch, in) */
    dnn_gemm_par(run->par, true, false, out, in, batch, 1, l->delta, out, run->input, in, 1,
                 l->weight_updates, in);
    /* input_delta(batch, in) += delta(batch, out) * weights(out, in) */
    if (run->input_delta)
        dnn_gemm_par(run->par, false, false, batch, in, out, 1, l->delta, out, l->weights, in, 1,
                     run->input_delta, in);
}

/* darknet's update_connected_layer: no decay on biases and scales. */
static void connected_update(struct dnn_layer *l, const struct dnn_update_args *a)
{
    dnn_sgd_step(l->biases, l->bias_updates, l->nbiases, a, false);
    if (l->spec.batch_normalize)
        dnn_sgd_step(l->bn.scales, l->bn.scale_updates, (size_t)l->out_c, a, false);
    dnn_sgd_step(l->weights, l->weight_updates, l->nweights, a, true);
}

const struct dnn_layer_ops dnn_connected_ops = {
    .name = "connected",
    .setup = connected_setup,
    .init = connected_init,
    .forward = connected_forward,
    .backward = connected_backward,
    .update = connected_update,
};
