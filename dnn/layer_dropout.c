/*
 * layer_dropout.c - darknet's [dropout], with its own output buffer.
 *
 * darknet drops in place (it overwrites the previous layer's output); here the
 * input is left alone so that the layer before keeps a clean output, which matters
 * when that layer sits on the other side of a TEE partition. Training draws one
 * uniform number per value from the layer's own stream and keeps it in l->rand for
 * backward; inference copies the input unchanged (no rescaling, as darknet).
 */
#include "dnn/dnn_internal.h"

static enum dnn_status dropout_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const float p = l->spec.probability;
    if (!(p >= 0 && p < 1))
        return DNN_ERR_INVALID;
    /* darknet: scale = 1./(1.-probability), in double, stored as float */
    l->dropout_scale = (float)(1.0 / (1.0 - (double)p));
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    size_t count = 0;
    if (!dnn_mul_size(l->inputs, (size_t)l->batch, &count))
        return DNN_ERR_OVERFLOW;
    return dnn_layer_request(l, &l->rand, count, sizeof(float), DNN_BUF_TRAIN);
}

static void dropout_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t n = l->inputs * (size_t)l->batch;
    if (!run->train) {
        dnn_copy(run->input, n, l->output);
        return;
    }
    const float p = l->spec.probability;
    for (size_t i = 0; i < n; i++) {
        const float r = dnn_rng_uniform(&l->rng, 0, 1);
        l->rand[i] = r;
        l->output[i] = r < p ? 0.0f : run->input[i] * l->dropout_scale;
    }
}

static void dropout_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (!run->input_delta)
        return;
    const size_t n = l->inputs * (size_t)l->batch;
    const float p = l->spec.probability;
    for (size_t i = 0; i < n; i++) {
        if (!(l->rand[i] < p))
            run->input_delta[i] += l->delta[i] * l->dropout_scale;
    }
}

const struct dnn_layer_ops dnn_dropout_ops = {
    .name = "dropout",
    .setup = dropout_setup,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
