/*
 * layer_crop.c - darknet's [crop]: a crop_height x crop_width window of the input image.
 *
 * As darknet's CPU forward_crop_layer (both trees): while training, one window offset
 * (dh, dw), uniform over every position that fits, and one mirror decision (when flip is
 * set, half the batches) are drawn per forward pass and used for the whole batch; at
 * inference the window is centred ((h - crop_height) / 2, (w - crop_width) / 2) and never
 * mirrored. Values become 2x - 1 (darknet's inputs in [0, 1] to [-1, 1]) unless noadjust.
 * angle, saturation, exposure and shift only reach darknet's GPU kernel: the parser reads
 * and drops them.
 *
 * darknet's backward_crop_layer is empty: no delta reaches the layer before a crop, so the
 * layers before it do not train. Kept, as it changes what trains.
 */
#include "dnn/dnn_internal.h"

static enum dnn_status crop_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    if (l->spec.crop_height <= 0 || l->spec.crop_width <= 0)
        return DNN_ERR_INVALID;
    /* darknet would read outside the input */
    if (l->spec.crop_height > l->h || l->spec.crop_width > l->w)
        return DNN_ERR_SHAPE;
    l->out_h = l->spec.crop_height;
    l->out_w = l->spec.crop_width;
    l->out_c = l->c;
    return DNN_OK;
}

static void crop_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    /* darknet draws all three every call, then overrides them for inference */
    bool flip = l->spec.flip && (dnn_rng_u32(&l->rng) & 1u);
    int dh = (int)(dnn_rng_u32(&l->rng) % (uint32_t)(l->h - l->out_h + 1));
    int dw = (int)(dnn_rng_u32(&l->rng) % (uint32_t)(l->w - l->out_w + 1));
    const float scale = l->spec.noadjust ? 1.0f : 2.0f;
    const float trans = l->spec.noadjust ? 0.0f : -1.0f;
    if (!run->train) {
        flip = false;
        dh = (l->h - l->out_h) / 2;
        dw = (l->w - l->out_w) / 2;
    }
    float *out = l->output;
    for (int b = 0; b < l->batch; b++) {
        for (int c = 0; c < l->c; c++) {
            const float *plane = run->input + ((size_t)b * l->c + c) * (size_t)l->h * l->w;
            for (int i = 0; i < l->out_h; i++) {
                const float *row = plane + (size_t)(i + dh) * l->w;
                for (int j = 0; j < l->out_w; j++) {
                    const int col = flip ? l->w - dw - j - 1 : j + dw;
                    *out++ = row[col] * scale + trans;
                }
            }
        }
    }
}

static void crop_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    /* darknet passes nothing back (see the top of this file) */
    (void)l;
    (void)run;
}

const struct dnn_layer_ops dnn_crop_ops = {
    .name = "crop",
    .setup = crop_setup,
    .forward = crop_forward,
    .backward = crop_backward,
};
