/*
 * layer_shortcut_multi.c - AlexeyAB's [shortcut] with several sources (from=-2,-3) or
 * learned weights (weights_type, weights_normalization): the math of its
 * shortcut_multilayer_cpu and backward_shortcut_multilayer_cpu.
 *
 * Slot 0 is the input (the previous layer), slot s >= 1 the source s-1 (spec.from, then
 * spec.route[0 .. n_route-1]). Per image and flat index k of the (c, h, w) output:
 *
 *   out[k] = act(in[k] * w0(k) + sum over sources s with k < outputs_s of src_s[k] * ws(k))
 *
 * where ws(k) is 1 without weights, else weights[g(k) + s * group_count] normalized over
 * the slots: g(k) is 0 (per_feature: n+1 weights) or k's channel (per_channel: (n+1)*c
 * weights). A source with fewer channels than the input reaches only its own outputs.
 *
 * Backward passes delta * ws(k) to every slot's delta and adds delta * value into the
 * weight's update, the value the weight multiplied. darknet leaves the normalization out
 * of that update (its true derivative is commented out in blas.c): the same is done here,
 * so a relu or softmax normalized layer trains as it does in darknet; without
 * normalization the update is the exact gradient.
 *
 * Inference (a forward that does not train) normalizes relu weights as AlexeyAB's predict
 * and valid do: they first fold the normalization into the weights (fuse_conv_batchnorm),
 * which floors each weight at 0.001 instead of 0 (its lrelu), so a weight at or below it
 * still passes 0.001 of its input.
 */
#include "dnn/dnn_internal.h"

#define SLOTS_MAX (DNN_MAX_READS + 1) /* the input and every source */

bool dnn_shortcut_is_multi(const struct dnn_layer_spec *spec)
{
    return spec->n_route != 0 || spec->weights_type != DNN_SHORTCUT_WEIGHTS_NONE;
}

/* Sources and slots of l: from, then route[0 .. n_route-1]. */
static int n_sources(const struct dnn_layer *l)
{
    return 1 + l->spec.n_route;
}

static int source_index(const struct dnn_layer *l, int s)
{
    return s == 0 ? l->spec.from : l->spec.route[s - 1];
}

/* Weights per slot: 1 (per_feature) or c (per_channel); 0 without weights. */
static size_t group_count(const struct dnn_layer *l)
{
    const int slots = n_sources(l) + 1;
    return l->nweights / (size_t)slots;
}

enum dnn_status dnn_shortcut_multi_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    const struct dnn_layer_spec *sp = &l->spec;
    if (sp->n_route < 0 || sp->n_route > DNN_MAX_ROUTE ||
        (unsigned)sp->weights_type >= DNN_SHORTCUT_WEIGHTS_COUNT ||
        (unsigned)sp->weights_normalization >= DNN_WEIGHTS_NORM_COUNT)
        return DNN_ERR_INVALID;
    for (int s = 0; s < n_sources(l); s++) {
        const int j = source_index(l, s);
        if (j < 0 || j >= l->index || (size_t)j >= net->n)
            return DNN_ERR_INVALID;
        /* AlexeyAB asserts that every source has the input's width and height */
        if (net->layers[j].out_w != l->w || net->layers[j].out_h != l->h)
            return DNN_ERR_SHAPE;
    }
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    const size_t slots = (size_t)n_sources(l) + 1;
    l->nweights = sp->weights_type == DNN_SHORTCUT_WEIGHTS_PER_FEATURE   ? slots
                  : sp->weights_type == DNN_SHORTCUT_WEIGHTS_PER_CHANNEL ? slots * (size_t)l->c
                                                                         : 0;
    if (l->nweights) {
        enum dnn_status st =
            dnn_layer_add_param(l, "weights", &l->weights, &l->weight_updates, l->nweights);
        if (st != DNN_OK)
            return st;
    }
    return dnn_layer_request_act_input(l);
}

void dnn_shortcut_multi_init(struct dnn_layer *l, struct dnn_rng *rng)
{
    (void)rng;
    /* AlexeyAB starts every weight at 1: a plain sum until training moves them */
    for (size_t i = 0; i < l->nweights && l->weights; i++)
        l->weights[i] = 1;
}

/* The weights of group g for every slot, normalized as darknet does per element (relu's
 * floor at inference: see the top of the file). */
static void slot_weights(const struct dnn_layer *l, size_t g, bool train, float w[SLOTS_MAX])
{
    const float floor = train ? 0 : 0.001f;
    const int slots = n_sources(l) + 1;
    const size_t groups = group_count(l);
    float max = -3.4028235e38f, sum = 0.0001f; /* darknet's eps keeps sum > 0 */
    const enum dnn_weights_normalization norm = l->spec.weights_normalization;
    for (int s = 0; s < slots; s++) {
        w[s] = l->weights[g + (size_t)s * groups];
        if (w[s] > max)
            max = w[s];
    }
    if (norm == DNN_WEIGHTS_NORM_NONE)
        return;
    for (int s = 0; s < slots; s++) {
        w[s] = norm == DNN_WEIGHTS_NORM_RELU ? (w[s] > floor ? w[s] : floor) : dnn_expf(w[s] - max);
        sum += w[s];
    }
    for (int s = 0; s < slots; s++)
        w[s] /= sum;
}

/* The flat indexes [*lo, *hi) of one image that group g's weights cover. */
static void group_span(const struct dnn_layer *l, size_t g, size_t *lo, size_t *hi)
{
    const size_t groups = group_count(l);
    const size_t step = groups ? l->outputs / groups : l->outputs;
    *lo = g * step;
    *hi = *lo + step;
}

void dnn_shortcut_multi_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int sources = n_sources(l);
    const size_t groups = l->nweights ? group_count(l) : 1;
    float w[SLOTS_MAX];
    for (int s = 0; s <= sources; s++)
        w[s] = 1;
    for (size_t g = 0; g < groups; g++) {
        size_t lo = 0, hi = 0;
        group_span(l, g, &lo, &hi);
        if (l->nweights)
            slot_weights(l, g, run->train, w);
        for (int b = 0; b < l->batch; b++) {
            const size_t base = (size_t)b * l->outputs;
            for (size_t k = lo; k < hi; k++)
                l->output[base + k] =
                    l->nweights ? run->input[base + k] * w[0] : run->input[base + k];
            for (int s = 0; s < sources; s++) {
                const struct dnn_layer *src = &run->net->layers[source_index(l, s)];
                const size_t end = hi < src->outputs ? hi : src->outputs;
                const float *add = src->output + (size_t)b * src->outputs;
                for (size_t k = lo; k < end; k++)
                    l->output[base + k] += l->nweights ? add[k] * w[s + 1] : add[k];
            }
        }
    }
    dnn_activate_array_keep(l->output, l->outputs * (size_t)l->batch, l->spec.activation,
                            l->act_input);
}

/* delta * w into one slot's delta (when it has one) and delta * value into its weight's
 * update (when the layer has weights), over the flat indexes [lo, end) of one image:
 * delta, value and slot_delta point at that image's floats. */
static void backward_slot(const struct dnn_layer *l, size_t lo, size_t end, const float *delta,
                          const float *value, float w, float *slot_delta, float *update)
{
    for (size_t k = lo; k < end; k++) {
        if (slot_delta)
            slot_delta[k] += l->nweights ? delta[k] * w : delta[k];
        if (update)
            *update += delta[k] * value[k];
    }
}

void dnn_shortcut_multi_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int sources = n_sources(l);
    const size_t n = l->outputs * (size_t)l->batch;
    const size_t groups = l->nweights ? group_count(l) : 1;
    float w[SLOTS_MAX];
    dnn_gradient_array_keep(l->output, l->act_input, n, l->spec.activation, l->delta);
    for (int s = 0; s <= sources; s++)
        w[s] = 1;
    for (size_t g = 0; g < groups; g++) {
        size_t lo = 0, hi = 0;
        group_span(l, g, &lo, &hi);
        if (l->nweights)
            slot_weights(l, g, true, w);
        for (int b = 0; b < l->batch; b++) {
            const size_t base = (size_t)b * l->outputs;
            float *in_delta = run->input_delta ? run->input_delta + base : NULL;
            const float *delta = l->delta + base;
            float *upd = l->nweights ? &l->weight_updates[g] : NULL;
            backward_slot(l, lo, hi, delta, run->input + base, w[0], in_delta, upd);
            for (int s = 0; s < sources; s++) {
                struct dnn_layer *src = &run->net->layers[source_index(l, s)];
                const size_t sb = (size_t)b * src->outputs;
                const size_t end = hi < src->outputs ? hi : src->outputs;
                if (lo >= end)
                    continue;
                upd = l->nweights ? &l->weight_updates[g + (size_t)(s + 1) * groups] : NULL;
                backward_slot(l, lo, end, delta, src->output + sb, w[s + 1],
                              src->delta ? src->delta + sb : NULL, upd);
            }
        }
    }
}

void dnn_shortcut_multi_update(struct dnn_layer *l, const struct dnn_update_args *a)
{
    /* AlexeyAB's update_shortcut_layer: momentum SGD with decay on the weights */
    if (l->nweights)
        dnn_sgd_step(l->weights, l->weight_updates, l->nweights, a, true);
}
