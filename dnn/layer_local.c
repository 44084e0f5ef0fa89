/*
 * layer_local.c - darknet's [local]: a locally connected layer, a convolution whose
 * filters differ at every output position (no weight sharing).
 *
 * Shapes as darknet: pad is given in pixels (darknet's local layer passes its pad key to
 * im2col unchanged) and the output is (h - 1) / stride + 1 with pad, (h - size) / stride + 1
 * without; a pad for which im2col would produce another number of columns is refused
 * (darknet would read past its workspace). Parameters in .weights order: biases (one per
 * output value), then weights, location by location, each (filters, c*size*size).
 * darknet initialises only the first location's weights (its loop stops at c*n*size*size);
 * here every location gets sqrt(2 / (size*size*c)) * U(-1, 1), as darknet meant.
 */
#include "dnn/dnn_internal.h"

#include <limits.h>

static int local_out(int in, int size, int stride, int pad)
{
    return (pad ? in - 1 : in - size) / stride + 1;
}

static enum dnn_status local_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const struct dnn_layer_spec *s = &l->spec;
    if (s->filters <= 0 || s->size <= 0 || s->stride <= 0 || s->pad < 0 || s->size > 4096 ||
        s->stride > 4096 || s->pad > 4096)
        return DNN_ERR_INVALID;
    const int out_h = local_out(l->h, s->size, s->stride, s->pad);
    const int out_w = local_out(l->w, s->size, s->stride, s->pad);
    if (l->h - (s->pad ? 1 : s->size) < 0 || l->w - (s->pad ? 1 : s->size) < 0)
        return DNN_ERR_SHAPE;
    if ((l->h + 2 * s->pad - s->size) / s->stride + 1 != out_h ||
        (l->w + 2 * s->pad - s->size) / s->stride + 1 != out_w || l->h + 2 * s->pad < s->size ||
        l->w + 2 * s->pad < s->size)
        return DNN_ERR_SHAPE;
    l->out_h = out_h;
    l->out_w = out_w;
    l->out_c = s->filters;
    size_t k = 0, locations = 0, per_location = 0, cols = 0, outputs = 0;
    if (!dnn_mul_size((size_t)s->size * (size_t)s->size, (size_t)l->c, &k) ||
        !dnn_mul_size((size_t)out_h, (size_t)out_w, &locations) ||
        !dnn_mul_size(k, (size_t)s->filters, &per_location) ||
        !dnn_mul_size(per_location, locations, &l->nweights) ||
        !dnn_mul_size(k, locations, &cols) ||
        !dnn_mul_size(locations, (size_t)s->filters, &outputs))
        return DNN_ERR_OVERFLOW;
    if (k > INT_MAX || locations > INT_MAX) /* gemm takes int sizes */
        return DNN_ERR_OVERFLOW;
    l->nbiases = outputs;
    l->workspace_floats = cols;
    enum dnn_status st = dnn_layer_add_param(l, "biases", &l->biases, &l->bias_updates, l->nbiases);
    if (st == DNN_OK)
        st = dnn_layer_add_param(l, "weights", &l->weights, &l->weight_updates, l->nweights);
    if (st == DNN_OK)
        st = dnn_layer_request_act_input(l);
    return st;
}

static void local_init(struct dnn_layer *l, struct dnn_rng *rng)
{
    const float scale = dnn_sqrtf(2.0f / (float)(l->spec.size * l->spec.size * l->c));
    for (size_t i = 0; i < l->nweights; i++)
        l->weights[i] = scale * dnn_rng_uniform(rng, -1, 1);
    dnn_fill(l->biases, l->nbiases, 0);
}

static void local_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int locations = l->out_h * l->out_w;
    const int k = l->spec.size * l->spec.size * l->c;
    const int n = l->spec.filters;
    float *col = run->workspace;
    for (int b = 0; b < l->batch; b++) {
        float *out = l->output + (size_t)b * l->outputs;
        dnn_copy(l->biases, l->outputs, out);
        dnn_im2col(run->input + (size_t)b * l->inputs, l->c, l->h, l->w, l->spec.size,
                   l->spec.stride, l->spec.pad, col);
        /* out(f, j) += sum over k of W_j(f, k) * col(k, j), location by location */
        for (int j = 0; j < locations; j++)
            dnn_gemm(false, false, n, 1, k, 1, l->weights + (size_t)j * k * n, k, col + j,
                     locations, 1, out + j, locations);
    }
    dnn_activate_array_keep_par(run->par, l->output, l->outputs * (size_t)l->batch,
                                l->spec.activation, l->act_input);
}

static void local_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int locations = l->out_h * l->out_w;
    const int k = l->spec.size * l->spec.size * l->c;
    const int n = l->spec.filters;
    float *col = run->workspace;
    dnn_gradient_array_keep_par(run->par, l->output, l->act_input, l->outputs * (size_t)l->batch,
                                l->spec.activation, l->delta);
    for (int b = 0; b < l->batch; b++)
        dnn_axpy(l->outputs, 1, l->delta + (size_t)b * l->outputs, l->bias_updates);
    for (int b = 0; b < l->batch; b++) {
        const float *delta = l->delta + (size_t)b * l->outputs;
        dnn_im2col(run->input + (size_t)b * l->inputs, l->c, l->h, l->w, l->spec.size,
                   l->spec.stride, l->spec.pad, col);
        /* W_j(f, k) += delta(f, j) * col(k, j) */
        for (int j = 0; j < locations; j++)
            dnn_gemm(false, true, n, k, 1, 1, delta + j, locations, col + j, locations, 1,
                     l->weight_updates + (size_t)j * k * n, k);
        if (!run->input_delta)
            continue;
        /* col(k, j) = sum over f of W_j(f, k) * delta(f, j), then back to the image */
        for (int j = 0; j < locations; j++)
            dnn_gemm(true, false, k, 1, n, 1, l->weights + (size_t)j * k * n, k, delta + j,
                     locations, 0, col + j, locations);
        dnn_col2im(col, l->c, l->h, l->w, l->spec.size, l->spec.stride, l->spec.pad,
                   run->input_delta + (size_t)b * l->inputs);
    }
}

/* darknet's update_local_layer: decay on the weights only. */
static void local_update(struct dnn_layer *l, const struct dnn_update_args *a)
{
    dnn_sgd_step(l->biases, l->bias_updates, l->nbiases, a, false);
    dnn_sgd_step(l->weights, l->weight_updates, l->nweights, a, true);
}

const struct dnn_layer_ops dnn_local_ops = {
    .name = "local",
    .setup = local_setup,
    .init = local_init,
    .forward = local_forward,
    .backward = local_backward,
    .update = local_update,
};
