/*
 * layer_cost.c - darknet's [cost]: sse (l2), masked, smooth (smooth L1) and L1.
 *
 * As in darknet, the layer's output is the per-element error vector (so its
 * "prediction" is never the network's: dnn_network_output_index skips cost layers),
 * l->cost is the sum of the errors and the delta is the negative gradient of that
 * error (truth - prediction for sse). Backward adds cost_scale * delta.
 *
 * masked: where the truth holds darknet's SECRET_NUM (-1234) the element is ignored.
 * darknet does that by writing -1234 into the previous layer's output; here the
 * input is const, so the masked element simply gets error 0 and delta 0, which is
 * what darknet's l2 then computes for it.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status cost_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    switch (l->spec.cost_type) {
    case DNN_COST_SSE:
    case DNN_COST_MASKED:
    case DNN_COST_SMOOTH:
    case DNN_COST_L1:
        break;
    default:
        return DNN_ERR_INVALID;
    }
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    l->has_cost = true;
    return DNN_OK;
}

/*
 * Error and delta of one element, as darknet's l2_cpu / smooth_l1_cpu / l1_cpu.
 * Kept bit for bit, quirks included: L1's delta is -1 where diff == 0, and smooth's
 * delta for |diff| >= 1 is -sign(diff), the opposite sign of its |diff| < 1 branch
 * (and of the negative gradient), exactly as upstream computes it.
 */
static float cost_element(enum dnn_cost_type type, float pred, float truth, float *delta)
{
    const float diff = truth - pred;
    switch (type) {
    case DNN_COST_SMOOTH: {
        const float a = dnn_fabsf(diff);
        if (a < 1) {
            *delta = diff;
            return diff * diff;
        }
        *delta = diff < 0 ? 1.0f : -1.0f;
        return 2 * a - 1;
    }
    case DNN_COST_L1:
        *delta = diff > 0 ? 1.0f : -1.0f;
        return dnn_fabsf(diff);
    case DNN_COST_SSE:
    case DNN_COST_MASKED:
    default:
        break;
    }
    *delta = diff;
    return diff * diff;
}

static void cost_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    l->cost = 0;
    if (!run->truth)
        return; /* as darknet: without a truth the layer does nothing */
    const enum dnn_cost_type type = l->spec.cost_type;
    const size_t n = l->inputs * (size_t)l->batch;
    float cost = 0;
    for (size_t i = 0; i < n; i++) {
        float pred = run->input[i];
        if (type == DNN_COST_MASKED && dnn_feq(run->truth[i], DNN_SECRET_NUM))
            pred = DNN_SECRET_NUM;
        float delta = 0;
        const float err = cost_element(type, pred, run->truth[i], &delta);
        l->output[i] = err;
        if (run->train)
            l->delta[i] = delta;
        cost += err;
    }
    l->cost = cost;
}

static void cost_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (run->input_delta)
        dnn_axpy(l->inputs * (size_t)l->batch, l->spec.cost_scale, l->delta, run->input_delta);
}

const struct dnn_layer_ops dnn_cost_ops = {
    .name = "cost",
    .setup = cost_setup,
    .forward = cost_forward,
    .backward = cost_backward,
};
