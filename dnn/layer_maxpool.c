/*
 * layer_maxpool.c - darknet's [maxpool]: the largest value of each size x size window.
 *
 * spec.pad is the TOTAL padding (darknet's default size-1 is applied by the cfg
 * parser); windows start pad/2 pixels before the image and positions outside it
 * count as -FLT_MAX. Training records the argmax of each window in l->indexes so
 * that backward can route the delta; inference never touches that buffer.
 */
#include "dnn/dnn_internal.h"

#include <float.h>
#include <limits.h>

static enum dnn_status maxpool_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const struct dnn_layer_spec *s = &l->spec;
    if (s->size <= 0 || s->stride <= 0 || s->pad < 0)
        return DNN_ERR_INVALID;
    /* window positions go up to h + pad: keep them in int range */
    if ((int64_t)l->h + s->pad > INT_MAX || (int64_t)l->w + s->pad > INT_MAX)
        return DNN_ERR_INVALID;
    /* int64 arithmetic: a hostile pad must not overflow the shape formula. */
    int64_t oh = ((int64_t)l->h + s->pad - s->size) / s->stride + 1;
    int64_t ow = ((int64_t)l->w + s->pad - s->size) / s->stride + 1;
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX)
        return DNN_ERR_SHAPE;
    /* argmax indexes are ints over the whole batch of inputs */
    size_t all = 0;
    if (!dnn_mul_size(l->inputs, (size_t)l->batch, &all) || all > INT_MAX)
        return DNN_ERR_OVERFLOW;
    l->out_h = (int)oh;
    l->out_w = (int)ow;
    l->out_c = l->c;
    size_t outs = 0, count = 0;
    if (!dnn_mul_size((size_t)l->out_h, (size_t)l->out_w, &outs) ||
        !dnn_mul_size(outs, (size_t)l->out_c, &outs) ||
        !dnn_mul_size(outs, (size_t)l->batch, &count))
        return DNN_ERR_OVERFLOW;
    return dnn_layer_request(l, &l->indexes, count, sizeof(int), DNN_BUF_TRAIN);
}

/* Planes (image, channel) [p0, p1) of a forward pass. */
static void maxpool_forward_planes(struct dnn_layer *l, const struct dnn_run *run, size_t p0,
                                   size_t p1)
{
    const int off = -l->spec.pad / 2;
    const int size = l->spec.size;
    const int stride = l->spec.stride;
    int *indexes = run->train ? l->indexes : NULL;
    size_t o = p0 * (size_t)l->out_h * (size_t)l->out_w;
    for (size_t p = p0; p < p1; p++) {
        const int plane = l->h * (int)p; /* (k + b * c) rows of h */
        for (int i = 0; i < l->out_h; i++) {
            for (int j = 0; j < l->out_w; j++, o++) {
                float best = -FLT_MAX;
                int best_i = -1;
                for (int n = 0; n < size; n++) {
                    const int y = off + i * stride + n;
                    if (y < 0 || y >= l->h)
                        continue; /* padding is -FLT_MAX: it never wins */
                    for (int m = 0; m < size; m++) {
                        const int x = off + j * stride + m;
                        if (x < 0 || x >= l->w)
                            continue;
                        const int idx = x + l->w * (y + plane);
                        const float v = run->input[idx];
                        if (v > best) {
                            best = v;
                            best_i = idx;
                        }
                    }
                }
                l->output[o] = best;
                if (indexes)
                    indexes[o] = best_i;
            }
        }
    }
}

/* Planes [p0, p1) of a backward pass: a window lies in its plane, so does every index. */
static void maxpool_backward_planes(struct dnn_layer *l, const struct dnn_run *run, size_t p0,
                                    size_t p1)
{
    const size_t per_plane = (size_t)l->out_h * (size_t)l->out_w;
    for (size_t i = p0 * per_plane; i < p1 * per_plane; i++) {
        /* -1 when no value beat -FLT_MAX (window all padding, NaN or -inf inputs) */
        const int idx = l->indexes[i];
        if (idx >= 0)
            run->input_delta[idx] += l->delta[i];
    }
}

/* A pass split among tasks by planes: each plane's outputs (forward) and input delta
 * (backward) belong to one task, computed as the serial loop does. */
struct maxpool_split {
    struct dnn_layer *l;
    const struct dnn_run *run;
    void (*planes)(struct dnn_layer *, const struct dnn_run *, size_t, size_t);
};

static void maxpool_range(void *arg, size_t p0, size_t p1)
{
    const struct maxpool_split *s = arg;
    s->planes(s->l, s->run, p0, p1);
}

/* Output values a task has at least: some 10 us of work for a woken thread. */
#define MAXPOOL_PAR_MIN_OUTPUTS 4096

static void maxpool_over_planes(struct dnn_layer *l, const struct dnn_run *run,
                                void (*planes)(struct dnn_layer *, const struct dnn_run *, size_t,
                                               size_t))
{
    const size_t n = (size_t)l->batch * (size_t)l->c;
    const size_t per_plane = (size_t)l->out_h * (size_t)l->out_w;
    const size_t min_planes = per_plane ? (MAXPOOL_PAR_MIN_OUTPUTS + per_plane - 1) / per_plane : 1;
    struct maxpool_split s = {l, run, planes};
    dnn_parallel_ranges(run->par, n, min_planes, maxpool_range, &s);
}

static void maxpool_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    maxpool_over_planes(l, run, maxpool_forward_planes);
}

static void maxpool_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (run->input_delta)
        maxpool_over_planes(l, run, maxpool_backward_planes);
}

/* antialiasing: the layer above at stride 1, then antialias.c's blur */
static enum dnn_status maxpool_setup_aa(struct dnn_layer *l, const struct dnn_network *net)
{
    return l->spec.antialiasing ? dnn_aa_setup(l, net, maxpool_setup) : maxpool_setup(l, net);
}

static void maxpool_forward_aa(struct dnn_layer *l, const struct dnn_run *run)
{
    if (l->spec.antialiasing)
        dnn_aa_forward(l, run, maxpool_forward);
    else
        maxpool_forward(l, run);
}

static void maxpool_backward_aa(struct dnn_layer *l, const struct dnn_run *run)
{
    if (l->spec.antialiasing)
        dnn_aa_backward(l, run, maxpool_backward);
    else
        maxpool_backward(l, run);
}

const struct dnn_layer_ops dnn_maxpool_ops = {
    .name = "max",
    .setup = maxpool_setup_aa,
    .forward = maxpool_forward_aa,
    .backward = maxpool_backward_aa,
};
