/*
 * layer_activation.c - darknet's [activation]: out = act(in), the shape unchanged.
 * Backward passes delta * act'(in) to the input.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status activation_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    return dnn_layer_request_act_input(l);
}

static void activation_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t n = l->outputs * (size_t)l->batch;
    dnn_copy(run->input, n, l->output);
    dnn_activate_array_keep_par(run->par, l->output, n, l->spec.activation, l->act_input);
}

static void activation_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t n = l->outputs * (size_t)l->batch;
    dnn_gradient_array_keep_par(run->par, l->output, l->act_input, n, l->spec.activation, l->delta);
    if (run->input_delta)
        dnn_axpy(n, 1, l->delta, run->input_delta);
}

const struct dnn_layer_ops dnn_activation_ops = {
    .name = "activation",
    .setup = activation_setup,
    .forward = activation_forward,
    .backward = activation_backward,
};
