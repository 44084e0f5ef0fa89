/*
 * layer_avgpool.c - darknet's [avgpool]: global average pooling, (c, h, w) -> (c, 1, 1).
 */
#include "dnn/dnn_internal.h"

static enum dnn_status avgpool_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    l->out_h = 1;
    l->out_w = 1;
    l->out_c = l->c;
    return DNN_OK;
}

static void avgpool_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t spatial = (size_t)l->h * (size_t)l->w;
    const size_t planes = (size_t)l->batch * (size_t)l->c;
    for (size_t p = 0; p < planes; p++) {
        const float *in = run->input + p * spatial;
        /* darknet's order: accumulate in float, then one division */
        float sum = 0;
        for (size_t i = 0; i < spatial; i++)
            sum += in[i];
        l->output[p] = sum / (float)spatial;
    }
}

static void avgpool_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (!run->input_delta)
        return;
    const size_t spatial = (size_t)l->h * (size_t)l->w;
    const size_t planes = (size_t)l->batch * (size_t)l->c;
    for (size_t p = 0; p < planes; p++) {
        float *d = run->input_delta + p * spatial;
        const float share = l->delta[p] / (float)spatial;
        for (size_t i = 0; i < spatial; i++)
            d[i] += share;
    }
}

const struct dnn_layer_ops dnn_avgpool_ops = {
    .name = "avg",
    .setup = avgpool_setup,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};
