/*
 * layer_normalization.c - darknet's [normalization] / [lrn]: local response normalisation
 * across channels,
 *   norm(k, p) = kappa + alpha * sum of in(k', p)^2 over a window of channels k',
 *   out(k, p)  = in(k, p) * norm(k, p)^-beta,
 * with darknet's running window: channel 0 sums channels 0..size/2-1, and each next channel
 * k starts from k-1's sum, drops channel k-(size-1)/2-1 and adds channel k+size/2 when they
 * exist (so for an even or odd size the window is darknet's, rounding included). Where
 * darknet's first sum would read past the channels (size/2 > c) it stops at c.
 *
 * darknet's backward is its own approximation, delta_in = delta * norm^-beta (the window's
 * cross terms left out); kept, as it is what darknet trains. norms is kept for it.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status normalization_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    if (l->spec.size <= 0)
        return DNN_ERR_INVALID;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    size_t count = 0;
    if (!dnn_mul_size(l->inputs, (size_t)l->batch, &count))
        return DNN_ERR_OVERFLOW;
    l->workspace_floats = l->inputs; /* squared inputs of one image */
    return dnn_layer_request(l, &l->norms, count, sizeof(float), DNN_BUF_INFER);
}

static void normalization_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t spatial = (size_t)l->w * (size_t)l->h;
    const int c = l->c, size = l->spec.size;
    const float alpha = l->spec.alpha;
    float *squared = run->workspace;
    for (int b = 0; b < l->batch; b++) {
        const float *in = run->input + (size_t)b * l->inputs;
        float *norms = l->norms + (size_t)b * l->inputs;
        for (size_t i = 0; i < l->inputs; i++)
            squared[i] = in[i] * in[i];
        dnn_fill(norms, spatial, l->spec.kappa);
        for (int k = 0; k < size / 2 && k < c; k++)
            dnn_axpy(spatial, alpha, squared + spatial * (size_t)k, norms);
        for (int k = 1; k < c; k++) {
            float *nk = norms + spatial * (size_t)k;
            dnn_copy(nk - spatial, spatial, nk);
            const int prev = k - (size - 1) / 2 - 1;
            const int next = k + size / 2;
            if (prev >= 0)
                dnn_axpy(spatial, -alpha, squared + spatial * (size_t)prev, nk);
            if (next < c)
                dnn_axpy(spatial, alpha, squared + spatial * (size_t)next, nk);
        }
    }
    const size_t n = l->outputs * (size_t)l->batch;
    for (size_t i = 0; i < n; i++)
        l->output[i] = dnn_powf(l->norms[i], -l->spec.beta) * run->input[i];
}

static void normalization_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (!run->input_delta)
        return;
    const size_t n = l->outputs * (size_t)l->batch;
    for (size_t i = 0; i < n; i++)
        run->input_delta[i] += dnn_powf(l->norms[i], -l->spec.beta) * l->delta[i];
}

const struct dnn_layer_ops dnn_normalization_ops = {
    .name = "norm",
    .setup = normalization_setup,
    .forward = normalization_forward,
    .backward = normalization_backward,
};
