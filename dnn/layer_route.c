/*
 * layer_route.c - darknet's [route]: the outputs of earlier layers concatenated
 * along channels (per image). All routed layers must share width and height.
 */
#include "dnn/dnn_internal.h"

#include <limits.h>

static enum dnn_status route_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    const int n = l->spec.n_route;
    if (n <= 0 || n > DNN_MAX_ROUTE)
        return DNN_ERR_INVALID;
    for (int i = 0; i < n; i++) {
        const int idx = l->spec.route[i];
        if (idx < 0 || idx >= l->index || (size_t)idx >= net->n)
            return DNN_ERR_INVALID;
    }
    const struct dnn_layer *first = &net->layers[l->spec.route[0]];
    int64_t c = 0;
    for (int i = 0; i < n; i++) {
        const struct dnn_layer *src = &net->layers[l->spec.route[i]];
        if (src->out_w != first->out_w || src->out_h != first->out_h)
            return DNN_ERR_SHAPE;
        c += src->out_c;
    }
    if (c > INT_MAX)
        return DNN_ERR_OVERFLOW;
    l->out_w = first->out_w;
    l->out_h = first->out_h;
    l->out_c = (int)c;
    return DNN_OK;
}

static void route_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    size_t offset = 0;
    for (int i = 0; i < l->spec.n_route; i++) {
        const struct dnn_layer *src = &run->net->layers[l->spec.route[i]];
        for (int b = 0; b < l->batch; b++) {
            dnn_copy(src->output + (size_t)b * src->outputs, src->outputs,
                     l->output + offset + (size_t)b * l->outputs);
        }
        offset += src->outputs;
    }
}

static void route_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    size_t offset = 0;
    for (int i = 0; i < l->spec.n_route; i++) {
        struct dnn_layer *src = &run->net->layers[l->spec.route[i]];
        if (src->delta) {
            for (int b = 0; b < l->batch; b++) {
                dnn_axpy(src->outputs, 1, l->delta + offset + (size_t)b * l->outputs,
                         src->delta + (size_t)b * src->outputs);
            }
        }
        offset += src->outputs;
    }
}

const struct dnn_layer_ops dnn_route_ops = {
    .name = "route",
    .setup = route_setup,
    .forward = route_forward,
    .backward = route_backward,
};
