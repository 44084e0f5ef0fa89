/*
 * antialias.c - AlexeyAB's antialiasing=1/2 on [convolutional] and [maxpool]: the layer
 * computes at stride 1, then a fixed depthwise blur with the layer's own stride gives its
 * output (make_convolutional_layer's and make_maxpool_layer's input_layer).
 *
 * The blur of antialiasing=1 is 3x3, [1 2 1; 2 4 2; 1 2 1] / 16, padded by 1; that of
 * antialiasing=2 is 2x2 of 1/4, unpadded. Each output is summed in darknet's im2col/gemm
 * order from 0 (taps in the padding add 0 * w), then its zero bias is added, so forward
 * gives AlexeyAB's values. The blur has no parameters: nothing of it is in .weights.
 *
 * Backward passes the blur's transpose to the stride-1 delta and then runs the layer's own
 * backward. AlexeyAB's CPU code skips that step (its GPU code has it): the true gradient
 * here, checked by finite differences.
 *
 * The wrapped layer's setup, forward and backward see the stride-1 layer: stride 1 in its
 * spec, the stride-1 shape, aa_output and aa_delta in place of output and delta.
 */
#include "dnn/dnn_internal.h"

static const float blur3[9] = {1 / 16.f, 2 / 16.f, 1 / 16.f, 2 / 16.f, 4 / 16.f,
                               2 / 16.f, 1 / 16.f, 2 / 16.f, 1 / 16.f};
static const float blur2[4] = {1 / 4.f, 1 / 4.f, 1 / 4.f, 1 / 4.f};

static int blur_size(const struct dnn_layer *l)
{
    return l->spec.antialiasing == 2 ? 2 : 3;
}

/* What a wrapped call sees instead of the layer's own (swapped back after it). */
struct aa_view {
    int stride, out_h, out_w;
    size_t outputs;
    float *output, *delta;
};

static void swap_view(struct dnn_layer *l, struct aa_view *v)
{
    struct aa_view mine = {l->spec.stride, l->out_h, l->out_w, l->outputs, l->output, l->delta};
    l->spec.stride = v->stride;
    l->out_h = v->out_h;
    l->out_w = v->out_w;
    l->outputs = v->outputs;
    l->output = v->output;
    l->delta = v->delta;
    *v = mine;
}

static struct aa_view stride1_view(const struct dnn_layer *l)
{
    struct aa_view v = {1, l->aa_h, l->aa_w, l->aa_outputs, l->aa_output, l->aa_delta};
    return v;
}

enum dnn_status dnn_aa_setup(struct dnn_layer *l, const struct dnn_network *net,
                             enum dnn_status (*setup)(struct dnn_layer *,
                                                      const struct dnn_network *))
{
    const int stride = l->spec.stride;
    if (l->spec.antialiasing < 0 || l->spec.antialiasing > 2 || stride <= 0)
        return DNN_ERR_INVALID;
    l->spec.stride = 1;
    enum dnn_status st = setup(l, net);
    l->spec.stride = stride;
    if (st != DNN_OK)
        return st;
    const int size = blur_size(l), pad = size == 3 ? 1 : 0;
    l->aa_h = l->out_h;
    l->aa_w = l->out_w;
    if (l->aa_h <= 0 || l->aa_w <= 0 || l->out_c <= 0)
        return DNN_ERR_SHAPE;
    l->out_h = (l->aa_h + 2 * pad - size) / stride + 1;
    l->out_w = (l->aa_w + 2 * pad - size) / stride + 1;
    if (l->out_h <= 0 || l->out_w <= 0)
        return DNN_ERR_SHAPE;
    size_t hw = 0, count = 0;
    if (!dnn_mul_size((size_t)l->aa_h, (size_t)l->aa_w, &hw) ||
        !dnn_mul_size(hw, (size_t)l->out_c, &l->aa_outputs) ||
        !dnn_mul_size(l->aa_outputs, (size_t)l->batch, &count))
        return DNN_ERR_OVERFLOW;
    st = dnn_layer_request(l, &l->aa_output, count, sizeof(float), DNN_BUF_INFER);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &l->aa_delta, count, sizeof(float), DNN_BUF_TRAIN);
    return st;
}

/* The stride-1 input position of tap (ky, kx) of output (oy, ox), or -1 in the padding. */
static long tap_at(const struct dnn_layer *l, int oy, int ox, int ky, int kx)
{
    const int pad = blur_size(l) == 3 ? 1 : 0;
    const int y = oy * l->spec.stride - pad + ky, x = ox * l->spec.stride - pad + kx;
    if (y < 0 || y >= l->aa_h || x < 0 || x >= l->aa_w)
        return -1;
    return (long)y * l->aa_w + x;
}

static void blur_forward(struct dnn_layer *l)
{
    const int size = blur_size(l);
    const float *w = size == 3 ? blur3 : blur2;
    const size_t plane = (size_t)l->aa_h * (size_t)l->aa_w;
    const size_t planes = (size_t)l->batch * (size_t)l->out_c;
    float *out = l->output;
    for (size_t p = 0; p < planes; p++) {
        const float *in = l->aa_output + p * plane;
        for (int oy = 0; oy < l->out_h; oy++) {
            for (int ox = 0; ox < l->out_w; ox++) {
                float acc = 0;
                for (int k = 0; k < size * size; k++) {
                    const long at = tap_at(l, oy, ox, k / size, k % size);
                    acc += w[k] * (at < 0 ? 0.0f : in[at]);
                }
                *out++ = acc + 0.0f; /* darknet adds the blur's zero bias */
            }
        }
    }
}

static void blur_backward(struct dnn_layer *l)
{
    const int size = blur_size(l);
    const float *w = size == 3 ? blur3 : blur2;
    const size_t plane = (size_t)l->aa_h * (size_t)l->aa_w;
    const size_t planes = (size_t)l->batch * (size_t)l->out_c;
    const float *delta = l->delta;
    dnn_fill(l->aa_delta, planes * plane, 0);
    for (size_t p = 0; p < planes; p++) {
        float *d = l->aa_delta + p * plane;
        for (int oy = 0; oy < l->out_h; oy++) {
            for (int ox = 0; ox < l->out_w; ox++, delta++) {
                for (int k = 0; k < size * size; k++) {
                    const long at = tap_at(l, oy, ox, k / size, k % size);
                    if (at >= 0)
                        d[at] += w[k] * *delta;
                }
            }
        }
    }
}

void dnn_aa_forward(struct dnn_layer *l, const struct dnn_run *run,
                    void (*forward)(struct dnn_layer *, const struct dnn_run *))
{
    struct aa_view v = stride1_view(l);
    swap_view(l, &v);
    forward(l, run);
    swap_view(l, &v);
    blur_forward(l);
}

void dnn_aa_backward(struct dnn_layer *l, const struct dnn_run *run,
                     void (*backward)(struct dnn_layer *, const struct dnn_run *))
{
    blur_backward(l);
    struct aa_view v = stride1_view(l);
    swap_view(l, &v);
    backward(l, run);
    swap_view(l, &v);
}
