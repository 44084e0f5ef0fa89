/*
 * layer_softmax.c - darknet's [softmax] with groups, temperature or a tree (tree=), and
 * its cross-entropy cost when a truth is given.
 *
 * As in darknet, the delta this layer produces (truth - output) is the negative
 * gradient of the cross-entropy with respect to the layer's INPUT (for temperature 1
 * and a truth that sums to one per group), and backward passes the delta through
 * unchanged. A delta arriving from a later layer is passed through the same way:
 * darknet's softmax has no Jacobian-vector product, and neither does this one.
 */
#include "dnn/dnn_internal.h"

#include <float.h>

/* A tree's sizes must be positive and sum to the layer's inputs exactly: a short
 * or long tree would leave inputs without a softmax or read past the image. */
static enum dnn_status tree_check(const struct dnn_layer *l)
{
    const int *size = l->spec.tree_group_size;
    if (!size || l->spec.tree_groups <= 0)
        return DNN_ERR_INVALID;
    size_t sum = 0;
    for (int g = 0; g < l->spec.tree_groups; g++) {
        if (size[g] <= 0 || (size_t)size[g] > l->inputs - sum)
            return DNN_ERR_INVALID;
        sum += (size_t)size[g];
    }
    return sum == l->inputs ? DNN_OK : DNN_ERR_INVALID;
}

static enum dnn_status softmax_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const int groups = l->spec.softmax_groups;
    const float temp = l->spec.temperature;
    if (l->spec.tree_group_size || l->spec.tree_groups) {
        if (tree_check(l) != DNN_OK)
            return DNN_ERR_INVALID;
    } else if (groups <= 0 || l->inputs % (size_t)groups != 0) {
        return DNN_ERR_INVALID;
    }
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

/* darknet's softmax_x_ent on n values: error = -log(p) where the truth is non-zero
 * (not weighted by it, and not clamped), delta = truth - p. Returns the summed error. */
static float xent(struct dnn_layer *l, const struct dnn_run *run, size_t first, size_t n)
{
    float cost = 0;
    for (size_t i = first; i < first + n; i++) {
        const float t = run->truth[i];
        const float p = l->output[i];
        const float err = !dnn_feq(t, 0) ? -dnn_logf(p) : 0.0f;
        if (run->train) {
            l->loss[i] = err;
            l->delta[i] = t - p;
        }
        cost += err;
    }
    return cost;
}

/* softmax_x_ent with darknet's mask for a tree: where the truth holds DNN_SECRET_NUM
 * (darknet's loader writes it over every group the label says nothing about: a label
 * under another branch) the loss and delta are 0, as darknet's GPU path does with
 * mask_gpu. (Its CPU path forgets the mask and trains towards -1234.) */
static float xent_masked(struct dnn_layer *l, const struct dnn_run *run, size_t n)
{
    float cost = 0;
    for (size_t i = 0; i < n; i++) {
        const float t = run->truth[i];
        const float p = l->output[i];
        const bool masked = dnn_feq(t, DNN_SECRET_NUM);
        const float err = !masked && !dnn_feq(t, 0) ? -dnn_logf(p) : 0.0f;
        if (run->train) {
            l->loss[i] = err;
            l->delta[i] = masked ? 0.0f : t - p;
        }
        cost += err;
    }
    return cost;
}

static void tree_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    for (size_t b = 0; b < (size_t)l->batch; b++) {
        size_t at = b * l->inputs;
        for (int g = 0; g < l->spec.tree_groups; g++) {
            const size_t n = (size_t)l->spec.tree_group_size[g];
            softmax_group(run->input + at, n, l->spec.temperature, l->output + at);
            at += n;
        }
    }
    l->cost = run->truth ? xent_masked(l, run, l->inputs * (size_t)l->batch) : 0;
}

static void softmax_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (l->spec.tree_group_size) {
        tree_forward(l, run);
        return;
    }
    const size_t groups = (size_t)l->spec.softmax_groups;
    const size_t group_size = l->inputs / groups;
    const size_t n = l->inputs * (size_t)l->batch;
    for (size_t g = 0; g < n / group_size; g++) {
        softmax_group(run->input + g * group_size, group_size, l->spec.temperature,
                      l->output + g * group_size);
    }
    l->cost = run->truth ? xent(l, run, 0, n) : 0;
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
