/*
 * layer_sam.c - AlexeyAB's [sam] (spatial attention): out = act(in * from), element by
 * element, where from (spec.from, an earlier layer) has the input's shape.
 * Backward as darknet: delta through the activation by its output, the input gets
 * delta * from and from's delta gets delta * input (added here; darknet assigns it, the
 * same unless a later layer also passed a delta to from). The activations that keep their
 * input are refused, as for [scale_channels].
 */
#include "dnn/dnn_internal.h"

static enum dnn_status sam_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    const int from = l->spec.from;
    if (from < 0 || from >= l->index || (size_t)from >= net->n ||
        dnn_activation_keeps_input(l->spec.activation))
        return DNN_ERR_INVALID;
    const struct dnn_layer *src = &net->layers[from];
    if (src->out_w != l->w || src->out_h != l->h || src->out_c != l->c)
        return DNN_ERR_SHAPE;
    l->out_w = l->w;
    l->out_h = l->h;
    l->out_c = l->c;
    return DNN_OK;
}

static void sam_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const float *from = run->net->layers[l->spec.from].output;
    const size_t n = l->outputs * (size_t)l->batch;
    for (size_t i = 0; i < n; i++)
        l->output[i] = run->input[i] * from[i];
    dnn_activate_array(l->output, n, l->spec.activation);
}

static void sam_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    struct dnn_layer *src = &run->net->layers[l->spec.from];
    const size_t n = l->outputs * (size_t)l->batch;
    dnn_gradient_array(l->output, n, l->spec.activation, l->delta);
    for (size_t i = 0; i < n; i++) {
        if (run->input_delta)
            run->input_delta[i] += l->delta[i] * src->output[i];
        if (src->delta)
            src->delta[i] += run->input[i] * l->delta[i];
    }
}

const struct dnn_layer_ops dnn_sam_ops = {
    .name = "sam",
    .setup = sam_setup,
    .forward = sam_forward,
    .backward = sam_backward,
};
