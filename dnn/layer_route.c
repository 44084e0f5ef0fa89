/*
 * layer_route.c - darknet's [route]: the outputs of earlier layers concatenated
 * along channels (per image). All routed layers must share width and height.
 *
 * AlexeyAB's groups/group_id take only a part of each routed output: cut into
 * route_groups equal runs of channels (contiguous, as outputs are (c, h, w)), run
 * group_id of each is concatenated. Every routed layer's channels must divide
 * evenly: darknet divides sizes by the number of groups without a remainder check,
 * which would misplace channels otherwise, so setup refuses that.
 */
#include "dnn/dnn_internal.h"

#include <limits.h>

static int route_groups(const struct dnn_layer *l)
{
    return l->spec.route_groups > 1 ? l->spec.route_groups : 1;
}

static enum dnn_status route_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    const int n = l->spec.n_route;
    const int groups = route_groups(l);
    if (n <= 0 || n > DNN_MAX_ROUTE || l->spec.route_groups < 0 || l->spec.group_id < 0 ||
        l->spec.group_id >= groups)
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
        if (src->out_w != first->out_w || src->out_h != first->out_h || src->out_c % groups != 0)
            return DNN_ERR_SHAPE;
        c += src->out_c / groups;
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
    const size_t groups = (size_t)route_groups(l);
    const size_t id = (size_t)l->spec.group_id;
    size_t offset = 0;
    for (int i = 0; i < l->spec.n_route; i++) {
        const struct dnn_layer *src = &run->net->layers[l->spec.route[i]];
        const size_t part = src->outputs / groups;
        for (int b = 0; b < l->batch; b++) {
            dnn_copy(src->output + (size_t)b * src->outputs + id * part, part,
                     l->output + offset + (size_t)b * l->outputs);
        }
        offset += part;
    }
}

static void route_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    const size_t groups = (size_t)route_groups(l);
    const size_t id = (size_t)l->spec.group_id;
    size_t offset = 0;
    for (int i = 0; i < l->spec.n_route; i++) {
        struct dnn_layer *src = &run->net->layers[l->spec.route[i]];
        const size_t part = src->outputs / groups;
        if (src->delta) {
            for (int b = 0; b < l->batch; b++) {
                dnn_axpy(part, 1, l->delta + offset + (size_t)b * l->outputs,
                         src->delta + (size_t)b * src->outputs + id * part);
            }
        }
        offset += part;
    }
}

const struct dnn_layer_ops dnn_route_ops = {
    .name = "route",
    .setup = route_setup,
    .forward = route_forward,
    .backward = route_backward,
};
