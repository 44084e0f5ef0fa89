/*
 * layer_upsample.c - darknet's [upsample]: nearest-neighbour upsampling by stride s,
 * out(x, y) = scale * in(x / s, y / s); a negative stride downsamples instead: out(x, y) =
 * scale * (sum of the s x s input block at (x*s, y*s)), as darknet's reverse path (a sum,
 * not a mean). Backward is the transpose of each, scaled alike.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status upsample_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const int stride = l->spec.stride;
    if (stride == 0 || stride < -4096 || stride > 4096)
        return DNN_ERR_INVALID;
    l->out_c = l->c;
    if (stride > 0) {
        if (l->w > 0x7fffffff / stride || l->h > 0x7fffffff / stride)
            return DNN_ERR_OVERFLOW;
        l->out_w = l->w * stride;
        l->out_h = l->h * stride;
    } else {
        /* darknet indexes the input as (out_w * s, out_h * s): anything else misreads it */
        if (l->w % -stride != 0 || l->h % -stride != 0)
            return DNN_ERR_SHAPE;
        l->out_w = l->w / -stride;
        l->out_h = l->h / -stride;
    }
    return DNN_OK;
}

/* darknet's upsample_cpu forward: large (w*s, h*s, c) = scale * small (w, h, c) spread. */
static void upsample_spread(const float *small, int w, int h, int c, int batch, int s, float scale,
                            float *large)
{
    for (size_t p = 0; p < (size_t)batch * (size_t)c; p++) {
        const float *sp = small + p * (size_t)w * h;
        float *lp = large + p * (size_t)w * h * s * s;
        for (int j = 0; j < h * s; j++) {
            for (int i = 0; i < w * s; i++)
                lp[(size_t)j * w * s + i] = scale * sp[(size_t)(j / s) * w + (size_t)(i / s)];
        }
    }
}

/* Its other direction: small += scale * large, each s x s block summed in row order. */
static void upsample_gather(const float *large, int w, int h, int c, int batch, int s, float scale,
                            float *small)
{
    for (size_t p = 0; p < (size_t)batch * (size_t)c; p++) {
        float *sp = small + p * (size_t)w * h;
        const float *lp = large + p * (size_t)w * h * s * s;
        for (int j = 0; j < h * s; j++) {
            for (int i = 0; i < w * s; i++)
                sp[(size_t)(j / s) * w + (size_t)(i / s)] += scale * lp[(size_t)j * w * s + i];
        }
    }
}

static void upsample_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const int stride = l->spec.stride;
    dnn_fill(l->output, l->outputs * (size_t)l->batch, 0);
    if (stride > 0)
        upsample_spread(run->input, l->w, l->h, l->c, l->batch, stride, l->spec.scale, l->output);
    else
        upsample_gather(run->input, l->out_w, l->out_h, l->c, l->batch, -stride, l->spec.scale,
                        l->output);
}

static void upsample_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    if (!run->input_delta)
        return;
    const int stride = l->spec.stride;
    if (stride > 0) {
        upsample_gather(l->delta, l->w, l->h, l->c, l->batch, stride, l->spec.scale,
                        run->input_delta);
        return;
    }
    /* darknet assigns here; adding keeps the engine's rule and is equal on a cleared delta */
    const int s = -stride;
    for (int b = 0; b < l->batch; b++) {
        for (int k = 0; k < l->c; k++) {
            const size_t plane = (size_t)b * l->c + (size_t)k;
            const float *dp = l->delta + plane * (size_t)l->out_w * l->out_h;
            float *ip = run->input_delta + plane * (size_t)l->w * l->h;
            for (int j = 0; j < l->h; j++) {
                for (int i = 0; i < l->w; i++)
                    ip[(size_t)j * l->w + i] +=
                        l->spec.scale * dp[(size_t)(j / s) * l->out_w + (size_t)(i / s)];
            }
        }
    }
}

const struct dnn_layer_ops dnn_upsample_ops = {
    .name = "upsample",
    .setup = upsample_setup,
    .forward = upsample_forward,
    .backward = upsample_backward,
};
