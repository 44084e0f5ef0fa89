/*
 * conv_lower.h - what layer_convolutional.c and conv_lower.c share: the layer's geometry and
 * the passes that lower several images side by side into one column matrix (conv_lower.c).
 * Engine-internal.
 */
#ifndef DNN_CONV_LOWER_H
#define DNN_CONV_LOWER_H

#include "dnn/dnn_internal.h"

/* The spacing of the kernel's taps: 1 unless dilated. A 1x1 kernel has one tap, so
 * dilation cannot change it (AlexeyAB's parser resets it to 1 there too). */
static inline int dnn_conv_dilation(const struct dnn_layer *l)
{
    return l->spec.dilation > 1 && l->spec.size > 1 ? l->spec.dilation : 1;
}

/* A 1x1 kernel with stride 1 and no padding reads the image as its own column matrix. */
static inline bool dnn_conv_direct(const struct dnn_layer *l)
{
    return l->spec.size == 1 && l->spec.stride == 1 && l->spec.pad == 0;
}

/* Filters per group from which a forward product packs its columns from the image
 * (dnn_conv_forward_src) rather than from an im2col column matrix: each packed float then
 * serves at least this many rows of the product. With fewer (LeNet's 6 filters) the GEMM
 * reads an explicit column matrix in place, without packing it, and that was faster (LeNet's
 * training step 10% slower packed). */
#define DNN_CONV_SRC_MIN_FILTERS 32

/* True when the forward pass of layer l packs its columns from the image: not kept for the
 * backward pass (@kept), not the input itself (1x1), and filters enough. */
static inline bool dnn_conv_packs_from_image(const struct dnn_layer *l, bool kept)
{
    return !kept && !dnn_conv_direct(l) &&
           l->spec.filters / l->spec.groups >= DNN_CONV_SRC_MIN_FILTERS;
}

/* Sizes of one group's products for one image, in darknet's names. */
struct dnn_conv_dims {
    int m;          /* filters per group */
    int k;          /* size*size*channels per group: rows of the column matrix */
    int n;          /* out_h*out_w: columns of the column matrix */
    int cg;         /* input channels per group */
    size_t in_size; /* floats of one group's input: cg*h*w */
};

static inline struct dnn_conv_dims dnn_conv_dims_of(const struct dnn_layer *l)
{
    struct dnn_conv_dims d;
    d.m = l->spec.filters / l->spec.groups;
    d.cg = l->c / l->spec.groups;
    d.k = l->spec.size * l->spec.size * d.cg;
    d.n = l->out_h * l->out_w;
    d.in_size = (size_t)d.cg * (size_t)l->h * (size_t)l->w;
    return d;
}

/* Floats between the rows of layer l's kept columns (dnn_network_set_column_cache): the
 * batch's images side by side, out_h*out_w columns each. */
static inline size_t dnn_conv_cache_ld(const struct dnn_layer *l)
{
    return (size_t)l->batch * (size_t)l->out_h * (size_t)l->out_w;
}

/* The first column of (image b, group g) in layer l's kept columns. */
static inline float *dnn_conv_cache_at(const struct dnn_layer *l, const struct dnn_conv_dims *d,
                                       size_t b, size_t g)
{
    return l->col_cache + g * (size_t)d->k * dnn_conv_cache_ld(l) + b * (size_t)d->n;
}

/* True when the forward pass of run lowers into the layer's kept columns. */
static inline bool dnn_conv_cache_fills(const struct dnn_layer *l, const struct dnn_run *run)
{
    return run->train && l->col_cache;
}

/* True when the backward pass of run may read the kept columns: lowered from its input. */
static inline bool dnn_conv_cache_holds(const struct dnn_layer *l, const struct dnn_run *run)
{
    return l->col_cache && run->input && l->col_cache_of == run->input;
}

/*
 * dnn_conv_forward_src - out(m, images*n) = weights of group g (m, k) * the column matrix of
 * @images images side by side (the first at @im, one every @im_stride floats), with out's
 * rows @ldo floats apart: the columns packed from the images as the GEMM needs them
 * (dnn_im2col_pack), never written out. With padding, the images are first copied padded
 * into @scratch when its @scratch_floats hold them (a run across the image's edge then needs
 * no test per pixel), else read as they are. Bit for bit dnn_im2col then dnn_gemm_par.
 */
void dnn_conv_forward_src(const struct dnn_layer *l, const struct dnn_parallel *par,
                          const float *im, size_t im_stride, int images, int g, float *scratch,
                          size_t scratch_floats, float *out, int ldo);

/*
 * dnn_conv_weight_product - dw(rows, cols_n) += delta(rows, n) * cols(cols_n, n)^T, with
 * delta of row stride ldd, cols of row stride ldc and dw of row stride ldw; its threads
 * split dw, never n (par NULL: serial). Every element of dw gets its n terms added straight
 * into it in increasing order, whatever the shape and strides, so n columns of several images
 * side by side give the bits of one product per image taken in that order.
 */
void dnn_conv_weight_product(const struct dnn_parallel *par, int rows, int cols_n, int n,
                             const float *delta, int ldd, const float *cols, int ldc, float *dw,
                             int ldw);

/*
 * dnn_conv_lower_images - images convolutional layer @l lowers side by side in @net for its
 * backward pass (@backward) or its forward pass (>= 1; 1: one image at a time, as darknet).
 * More than 1 only after dnn_network_set_lowering, for a layer without antialiasing, not on
 * the Winograd path (conv_winograd.h), whose output has fewer pixels than DNN_LOWER_COLUMNS
 * (backward) or DNN_LOWER_FORWARD_COLUMNS (forward).
 */
int dnn_conv_lower_images(const struct dnn_layer *l, const struct dnn_network *net, bool backward);

/*
 * dnn_conv_lowered_forward - l->output (batch, filters, out_h*out_w) = weights * columns,
 * before bias and activation, @images images per product (dnn_conv_lower_images, >= 2) in
 * run->net's lowering scratch. Bit for bit the per-image forward.
 */
void dnn_conv_lowered_forward(struct dnn_layer *l, const struct dnn_run *run, int images);

/*
 * dnn_conv_lowered_backward - from l->delta (after the activation's and batch norm's
 * gradients): adds the weight gradient to l->weight_updates, the images in order, and the
 * input delta to run->input_delta (when not NULL), @images images per product. Bit for bit
 * the per-image backward.
 */
void dnn_conv_lowered_backward(struct dnn_layer *l, const struct dnn_run *run, int images);

#endif
