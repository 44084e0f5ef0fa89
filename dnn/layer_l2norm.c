/*
 * layer_l2norm.c - darknet's [l2norm]: every position's vector of channels divided by its
 * Euclidean length, out(c, p) = in(c, p) / sqrt(sum over c' of in(c', p)^2).
 *
 * darknet's CPU backward passes the delta through unchanged (the normalisation's own
 * derivative is left out); kept, as it is what darknet trains. A zero vector gives NaN,
 * as in darknet.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status l2norm_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    return DNN_OK;
}

static void l2norm_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t spatial = (size_t)l->w * (size_t)l->h;
    const size_t c = (size_t)l->c;
    for (int b = 0; b < l->batch; b++) {
        const float *in = run->input + (size_t)b * l->inputs;
        float *out = l->output + (size_t)b * l->outputs;
        for (size_t p = 0; p < spatial; p++) {
            float sum = 0;
            for (size_t f = 0; f < c; f++)
                sum += in[f * spatial + p] * in[f * spatial + p];
            sum = dnn_sqrtf(sum);
            for (size_t f = 0; f < c; f++)
                out[f * spatial + p] = in[f * spatial + p] / sum;
        }
    }
}

static void l2norm_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (run->input_delta)
        dnn_axpy(l->outputs * (size_t)l->batch, 1, l->delta, run->input_delta);
}

const struct dnn_layer_ops dnn_l2norm_ops = {
    .name = "l2norm",
    .setup = l2norm_setup,
    .forward = l2norm_forward,
    .backward = l2norm_backward,
};
