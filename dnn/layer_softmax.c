/*
 * layer_softmax.c - darknet's [softmax] with groups and temperature, and its
 * cross-entropy cost when a truth is given.
 *
 * As in darknet, the delta this layer produces (truth - output) is the negative
 * gradient of the cross-entropy with respect to the layer's INPUT (for temperature 1
 * and a truth that sums to one per group), and backward passes the delta through
 * unchanged. A delta arriving from a later layer is passed through the same way:
 * darknet's softmax has no Jacobian-vector product, and neither does this one.
 */
#include "dnn/dnn_internal.h"

#include <float.h>

static enum dnn_status softmax_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const int groups = l->spec.softmax_groups;
    const float temp = l->spec.temperature;
    if (groups <= 0 || l->inputs % (size_t)groups != 0)
        return DNN_ERR_INVALID;
    if (dnn_feq(temp, 0) || dnn_isnan(temp) || dnn_fabsf(temp) > FLT_MAX)
        return DNN_ERR_INVALID;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    l->has_cost = true;
    size_t count = 0;
    if (!dnn_mul_size(l->inputs, (size_t)l->batch, &count))
        return DNN_ERR_OVERFLOW;
    return dnn_layer_request(l, &l->loss, count, sizeof(float), DNN_BUF_TRAIN);
}

/* darknet's softmax(): shift by the largest input, exponentiate (in double, the
 * result kept as float), sum in float, divide. */
static void softmax_group(const float *in, size_t n, float temp, float *out)
{
    float largest = -FLT_MAX;
    for (size_t i = 0; i < n; i++) {
        if (in[i] > largest)
            largest = in[i];
    }
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        const float e = dnn_expf(in[i] / temp - largest / temp);
        sum += e;
        out[i] = e;
    }
    for (size_t i = 0; i < n; i++)
        out[i] /= sum;
}

static void softmax_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t groups = (size_t)l->spec.softmax_groups;
    const size_t group_size = l->inputs / groups;
    const size_t n = l->inputs * (size_t)l->batch;
    for (size_t g = 0; g < n / group_size; g++) {
        softmax_group(run->input + g * group_size, group_size, l->spec.temperature,
                      l->output + g * group_size);
    }
    l->cost = 0;
    if (!run->truth)
        return;
    /* darknet's softmax_x_ent: error = -log(p) where the truth is non-zero (not
     * weighted by it, and not clamped), delta = truth - p. */
    float cost = 0;
    for (size_t i = 0; i < n; i++) {
        const float t = run->truth[i];
        const float p = l->output[i];
        const float err = !dnn_feq(t, 0) ? -dnn_logf(p) : 0.0f;
        if (run->train) {
            l->loss[i] = err;
            l->delta[i] = t - p;
        }
        cost += err;
    }
    l->cost = cost;
}

static void softmax_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (run->input_delta)
        dnn_axpy(l->inputs * (size_t)l->batch, 1, l->delta, run->input_delta);
}

const struct dnn_layer_ops dnn_softmax_ops = {
    .name = "softmax",
    .setup = softmax_setup,
    .forward = softmax_forward,
    .backward = softmax_backward,
};
