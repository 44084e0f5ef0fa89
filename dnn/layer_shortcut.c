/*
 * layer_shortcut.c - darknet's [shortcut] (residual): out = act(alpha*in + beta*from).
 *
 * The output has the shape of the input (the previous layer); layer spec.from may
 * differ in size by an integer factor (darknet's stride/sample rules: a larger
 * source is subsampled, a smaller one is spread over every sample-th position) and
 * in channels (only the first min(c, from_c) channels are combined).
 *
 * darknet quirks kept: positions the other layer does not reach keep the input
 * unscaled, while backward passes alpha * delta to every input position.
 *
 * AlexeyAB's form (more than one source, from=-2,-3, or learned weights, weights_type)
 * lives in layer_shortcut_multi.c: the sources must have the input's width and height, and
 * are added element by element at the same flat per-image index.
 */
#include "dnn/dnn_internal.h"

/* darknet's shortcut_cpu: out[o] = s1*out[o] + s2*add[a] over the positions where
 * the (w1, h1, c1) tensor `add` and the (w2, h2, c2) tensor `out` meet. */
static void shortcut_combine(int batch, int w1, int h1, int c1, const float *add, int w2, int h2,
                             int c2, float s1, float s2, float *out)
{
    int stride = w1 / w2;
    int sample = w2 / w1;
    if (stride < 1)
        stride = 1;
    if (sample < 1)
        sample = 1;
    const int minw = w1 < w2 ? w1 : w2;
    const int minh = h1 < h2 ? h1 : h2;
    const int minc = c1 < c2 ? c1 : c2;
    for (int b = 0; b < batch; b++) {
        for (int k = 0; k < minc; k++) {
            for (int j = 0; j < minh; j++) {
                for (int i = 0; i < minw; i++) {
                    const size_t o = (size_t)i * sample +
                                     (size_t)w2 * ((size_t)j * sample +
                                                   (size_t)h2 * ((size_t)k + (size_t)c2 * b));
                    const size_t a = (size_t)i * stride +
                                     (size_t)w1 * ((size_t)j * stride +
                                                   (size_t)h1 * ((size_t)k + (size_t)c1 * b));
                    out[o] = s1 * out[o] + s2 * add[a];
                }
            }
        }
    }
}

static enum dnn_status shortcut_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    if (dnn_shortcut_is_multi(&l->spec))
        return dnn_shortcut_multi_setup(l, net);
    const int from = l->spec.from;
    if (from < 0 || from >= l->index || (size_t)from >= net->n)
        return DNN_ERR_INVALID;
    const struct dnn_layer *src = &net->layers[from];
    /* darknet asserts that both axes scale by the same integer factor */
    if (src->out_w / l->w != src->out_h / l->h || l->w / src->out_w != l->h / src->out_h)
        return DNN_ERR_SHAPE;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    return dnn_layer_request_act_input(l);
}

static void shortcut_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (dnn_shortcut_is_multi(&l->spec)) {
        dnn_shortcut_multi_forward(l, run);
        return;
    }
    const struct dnn_layer *src = &run->net->layers[l->spec.from];
    const size_t n = l->outputs * (size_t)l->batch;
    dnn_copy(run->input, n, l->output);
    shortcut_combine(l->batch, src->out_w, src->out_h, src->out_c, src->output, l->out_w, l->out_h,
                     l->out_c, l->spec.alpha, l->spec.beta, l->output);
    dnn_activate_array_keep(l->output, n, l->spec.activation, l->act_input);
}

static void shortcut_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (dnn_shortcut_is_multi(&l->spec)) {
        dnn_shortcut_multi_backward(l, run);
        return;
    }
    struct dnn_layer *src = &run->net->layers[l->spec.from];
    const size_t n = l->outputs * (size_t)l->batch;
    dnn_gradient_array_keep(l->output, l->act_input, n, l->spec.activation, l->delta);
    if (run->input_delta)
        dnn_axpy(n, l->spec.alpha, l->delta, run->input_delta);
    if (src->delta)
        shortcut_combine(l->batch, l->out_w, l->out_h, l->out_c, l->delta, src->out_w, src->out_h,
                         src->out_c, 1, l->spec.beta, src->delta);
}

const struct dnn_layer_ops dnn_shortcut_ops = {
    .name = "res",
    .setup = shortcut_setup,
    .forward = shortcut_forward,
    .backward = shortcut_backward,
    .init = dnn_shortcut_multi_init,
    .update = dnn_shortcut_multi_update,
};
