/*
 * layer_reorg.c - darknet's [reorg] and AlexeyAB's [reorg3d]: a permutation that trades
 * space for depth by stride s. The output shape is (h/s, w/s, c*s*s), or with reverse
 * (h*s, w*s, c/(s*s)).
 *
 * Both trees' reorg_cpu take a shape (W, H, C) and map the element at (i, j, k) of a
 * (W, H, C) tensor to (i*s + o%s, j*s + o/s, k%(C/s^2)) of a (W*s, H*s, C/s^2) tensor,
 * where o = k / (C/s^2). Without reverse the output is gathered through this map, with
 * reverse it is scattered. [reorg] (pjreddie's and AlexeyAB's reorg_old) passes the
 * layer's input shape, [reorg3d] its output shape, so the two are different permutations
 * of the same values. Backward runs the inverse permutation; it adds into the input's
 * delta where darknet assigns (equal unless another layer also reads the input).
 *
 * pjreddie's extra=N (its Go networks: an extra "pass" output) replaces the permutation:
 * the output is (1, 1, inputs + N), the input copied and N zeros after it.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status reorg_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const int s = l->spec.stride;
    if (s <= 0 || s > 4096 || l->spec.extra < 0 || (l->spec.extra && l->spec.reverse))
        return DNN_ERR_INVALID;
    if (l->spec.extra) {
        if (l->inputs > (size_t)(0x7fffffff - l->spec.extra))
            return DNN_ERR_OVERFLOW;
        l->out_w = 1;
        l->out_h = 1;
        l->out_c = (int)l->inputs + l->spec.extra;
        return DNN_OK;
    }
    const int s2 = s * s;
    if (l->spec.reverse) {
        if (l->c % s2 != 0)
            return DNN_ERR_SHAPE;
        if (l->w > 0x7fffffff / s || l->h > 0x7fffffff / s)
            return DNN_ERR_OVERFLOW;
        l->out_w = l->w * s;
        l->out_h = l->h * s;
        l->out_c = l->c / s2;
    } else {
        /* the permutation needs every input value to have a place */
        if (l->w % s != 0 || l->h % s != 0)
            return DNN_ERR_SHAPE;
        if (l->c > 0x7fffffff / s2)
            return DNN_ERR_OVERFLOW;
        l->out_w = l->w / s;
        l->out_h = l->h / s;
        l->out_c = l->c * s2;
    }
    /* the map's shape (W, H, C) must split its channels by s*s */
    const int map_c = l->spec.reorg3d ? l->out_c : l->c;
    if (map_c % s2 != 0)
        return DNN_ERR_SHAPE;
    return DNN_OK;
}

/*
 * darknet's reorg_cpu map on x (W*H*C values per image): gather (out[a] = x[b]) or scatter
 * (out[b] = x[a]) where a runs over the (W, H, C) tensor and b is its image in the
 * (W*s, H*s, C/s^2) one; accumulate adds instead of assigning.
 */
static void reorg_map(const float *x, int W, int H, int C, int batch, int s, bool scatter,
                      bool accumulate, float *out)
{
    const int small_c = C / (s * s);
    const size_t per_image = (size_t)W * H * C;
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * per_image;
        float *ob = out + (size_t)b * per_image;
        for (int k = 0; k < C; k++) {
            const int c2 = k % small_c;
            const int offset = k / small_c;
            for (int j = 0; j < H; j++) {
                for (int i = 0; i < W; i++) {
                    const size_t a = (size_t)i + (size_t)W * ((size_t)j + (size_t)H * k);
                    const size_t w2 = (size_t)i * s + (size_t)(offset % s);
                    const size_t h2 = (size_t)j * s + (size_t)(offset / s);
                    const size_t bi = w2 + (size_t)W * s * (h2 + (size_t)H * s * (size_t)c2);
                    const size_t dst = scatter ? bi : a;
                    const size_t src = scatter ? a : bi;
                    if (accumulate)
                        ob[dst] += xb[src];
                    else
                        ob[dst] = xb[src];
                }
            }
        }
    }
}

static void map_shape(const struct dnn_layer *l, int *W, int *H, int *C)
{
    *W = l->spec.reorg3d ? l->out_w : l->w;
    *H = l->spec.reorg3d ? l->out_h : l->h;
    *C = l->spec.reorg3d ? l->out_c : l->c;
}

static void reorg_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (l->spec.extra) {
        for (int b = 0; b < l->batch; b++) {
            float *out = l->output + (size_t)b * l->outputs;
            dnn_copy(run->input + (size_t)b * l->inputs, l->inputs, out);
            dnn_fill(out + l->inputs, (size_t)l->spec.extra, 0);
        }
        return;
    }
    int W, H, C;
    map_shape(l, &W, &H, &C);
    reorg_map(run->input, W, H, C, l->batch, l->spec.stride, l->spec.reverse, false, l->output);
}

static void reorg_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (!run->input_delta)
        return;
    if (l->spec.extra) {
        for (int b = 0; b < l->batch; b++)
            dnn_axpy(l->inputs, 1, l->delta + (size_t)b * l->outputs,
                     run->input_delta + (size_t)b * l->inputs);
        return;
    }
    int W, H, C;
    map_shape(l, &W, &H, &C);
    reorg_map(l->delta, W, H, C, l->batch, l->spec.stride, !l->spec.reverse, true,
              run->input_delta);
}

const struct dnn_layer_ops dnn_reorg_ops = {
    .name = "reorg",
    .setup = reorg_setup,
    .forward = reorg_forward,
    .backward = reorg_backward,
};
