/*
 * layer_scale_channels.c - AlexeyAB's [scale_channels] (squeeze-and-excitation):
 * out = act(in * from), where from (spec.from, an earlier layer) gives the shape.
 *
 * Default: the input is (1, 1, C), one factor per channel of from (W, H, C). scale_wh:
 * the input is (W, H, 1), one factor per position shared by every channel of from.
 * Backward as darknet: delta through the activation by its output, then the input gets
 * delta * from summed over what it scaled, and from's delta gets delta * input.
 * darknet warns that it cannot train swish or mish here; this engine refuses the
 * activations that keep their input (the parser says so).
 */
#include "dnn/dnn_internal.h"

static enum dnn_status scale_channels_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    const int from = l->spec.from;
    if (from < 0 || from >= l->index || (size_t)from >= net->n ||
        dnn_activation_keeps_input(l->spec.activation))
        return DNN_ERR_INVALID;
    const struct dnn_layer *src = &net->layers[from];
    if (l->spec.scale_wh) {
        if (l->c != 1 || l->w != src->out_w || l->h != src->out_h)
            return DNN_ERR_SHAPE;
    } else if (l->w != 1 || l->h != 1 || l->c != src->out_c) {
        return DNN_ERR_SHAPE;
    }
    l->out_w = src->out_w;
    l->out_h = src->out_h;
    l->out_c = src->out_c;
    return DNN_OK;
}

/* Index in the input of output element i (of the whole batch). */
static size_t scaled_by(const struct dnn_layer *l, size_t i)
{
    const size_t spatial = (size_t)l->out_w * (size_t)l->out_h;
    if (l->spec.scale_wh)
        return i % spatial + (i / l->outputs) * spatial;
    return i / spatial;
}

static void scale_channels_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const float *from = run->net->layers[l->spec.from].output;
    const size_t n = l->outputs * (size_t)l->batch;
    for (size_t i = 0; i < n; i++)
        l->output[i] = run->input[scaled_by(l, i)] * from[i];
    dnn_activate_array(l->output, n, l->spec.activation);
}

static void scale_channels_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    struct dnn_layer *src = &run->net->layers[l->spec.from];
    const size_t n = l->outputs * (size_t)l->batch;
    dnn_gradient_array(l->output, n, l->spec.activation, l->delta);
    for (size_t i = 0; i < n; i++) {
        const size_t in = scaled_by(l, i);
        if (run->input_delta)
            run->input_delta[in] += l->delta[i] * src->output[i];
        if (src->delta)
            src->delta[i] += run->input[in] * l->delta[i];
    }
}

const struct dnn_layer_ops dnn_scale_channels_ops = {
    .name = "scale",
    .setup = scale_channels_setup,
    .forward = scale_channels_forward,
    .backward = scale_channels_backward,
};
