/*
 * conv_lower.c - convolution with several images lowered side by side: one GEMM per group
 * of images instead of one per image, for layers whose outputs have few pixels.
 *
 * Per image, darknet's products have N = out_h*out_w columns (forward, input delta) or
 * K = out_h*out_w terms (weight gradient): 64 for an 8x8 output, too few for the GEMM's
 * packed blocks to pay. Here the column matrices of G images sit side by side,
 * cols (k, G*n) with image j's columns at j*n, and
 *   forward        out(m, G*n)   = weights(m, k) * cols(k, G*n), then out to (batch, m, n)
 *                  (for outputs under DNN_LOWER_FORWARD_COLUMNS pixels: dnn.h says why)
 *   weight grad.   dw(m, k)     += delta(m, G*n) * cols(k, G*n)^T, delta gathered likewise
 *   input delta    dcols(k, G*n) = weights(m, k)^T * delta(m, G*n), then col2im per image.
 * The GEMM adds an element's terms straight into C in increasing order and computes each
 * element from its own row and column alone (gemm.c), so each output, each input delta and
 * each weight gradient gets exactly the terms, in exactly the order, of the per-image loop
 * of layer_convolutional.c: the bits do not depend on G (tests/test_conv_lower.c). The copies
 * into and out of the side-by-side layout move floats without arithmetic.
 */
#include "dnn/conv_lower.h"
#include "dnn/conv_winograd.h"

#include <stdlib.h>
#include <string.h>

/* Floats of the scratch per image and convolution group: its columns (k rows) and its
 * output or delta (m rows), n floats each; 0 when it would overflow. */
static size_t lower_image_floats(const struct dnn_layer *l)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    size_t rows = 0, floats = 0;
    if (!dnn_add_size((size_t)d.k, (size_t)d.m, &rows) || !dnn_mul_size(rows, (size_t)d.n, &floats))
        return 0;
    return floats;
}

/* The images layer l lowers at once to reach `columns` columns with at most max_images
 * images and floats of scratch. */
static int lower_images_for(const struct dnn_layer *l, size_t columns, int max_images,
                            size_t floats)
{
    /* a Winograd layer's passes lower nothing (conv_winograd.h) */
    if (l->kind != DNN_LAYER_CONVOLUTIONAL || l->spec.antialiasing || max_images < 2 ||
        dnn_conv_winograd_applies(l))
        return 1;
    const size_t n = (size_t)l->out_h * (size_t)l->out_w, per = lower_image_floats(l);
    if (n == 0 || n >= columns || per == 0)
        return 1;
    size_t g = (columns + n - 1) / n; /* g * n < 2 * columns: an int */
    if (g > (size_t)max_images)
        g = (size_t)max_images;
    if (g > (size_t)l->batch)
        g = (size_t)l->batch;
    if (g > floats / per)
        g = floats / per;
    return g >= 2 ? (int)g : 1;
}

int dnn_conv_lower_images(const struct dnn_layer *l, const struct dnn_network *net, bool backward)
{
    if (!net || !net->lower_workspace)
        return 1;
    return lower_images_for(l, backward ? DNN_LOWER_COLUMNS : DNN_LOWER_FORWARD_COLUMNS,
                            net->lower_images, net->lower_floats);
}

/* Floats of the largest Winograd layer's transformed filters in net: 16 * filters * c. */
static size_t wino_filters_floats(const struct dnn_network *net)
{
    size_t most = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        size_t f = 0;
        if (!dnn_conv_winograd_applies(l) ||
            !dnn_mul_size((size_t)DNN_WINO_XI * (size_t)l->c, (size_t)l->spec.filters, &f))
            continue;
        if (f > most)
            most = f;
    }
    return most;
}

enum dnn_status dnn_network_set_lowering(struct dnn_network *net, int max_images, size_t max_bytes)
{
    dnn_network_lowering_free(net);
    size_t budget = max_bytes / sizeof(float);
    const size_t wino = wino_filters_floats(net);
    if (wino && wino <= budget) {
        net->wino_u = malloc(wino * sizeof(float)); /* wino <= budget: no overflow */
        if (!net->wino_u)
            return DNN_ERR_NOMEM;
        net->wino_u_floats = wino;
        budget -= wino;
    }
    size_t need = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        /* the backward pass lowers at least as many images as the forward pass */
        const int g = lower_images_for(l, DNN_LOWER_COLUMNS, max_images, budget);
        size_t floats = 0;
        if (g < 2)
            continue;
        if (!dnn_mul_size((size_t)g, lower_image_floats(l), &floats))
            return DNN_ERR_OVERFLOW;
        if (floats > need)
            need = floats;
    }
    if (need == 0)
        return DNN_OK;
    net->lower_workspace = malloc(need * sizeof(float)); /* need <= budget: no overflow */
    if (!net->lower_workspace)
        return DNN_ERR_NOMEM;
    net->lower_floats = need;
    net->lower_images = max_images;
    return DNN_OK;
}

/* One group of images of one convolution group: images [b0, b0 + count) of group g, their
 * columns in cols (k rows, ldcols floats apart: count*n in the scratch, or the batch's n each
 * in the layer's kept columns), their outputs or deltas in out (m, count*n), the input
 * delta's columns in work (k, count*n). */
struct lower_group {
    struct dnn_layer *l;
    const struct dnn_run *run;
    struct dnn_conv_dims d;
    int g, b0, count;
    float *cols, *out, *work;
    int ldcols;
    bool kept; /* cols are the layer's kept columns (col_cache) */
};

static int lower_ld(const struct lower_group *s)
{
    return s->count * s->d.n;
}

/* Index of (image b0 + j, group g) among the batch's (image, group) pairs. */
static size_t lower_pair(const struct lower_group *s, size_t j)
{
    return ((size_t)s->b0 + j) * (size_t)s->l->spec.groups + (size_t)s->g;
}

/* rows rows of n floats from src (row stride lds) to dst (row stride ldd): between an
 * image's own (rows, n) block and its columns of the side-by-side matrix. */
static void lower_copy_rows(const float *src, int lds, float *dst, int ldd, int rows, int n)
{
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * (size_t)ldd, src + (size_t)r * (size_t)lds,
               (size_t)n * sizeof(float));
}

/* Image j's columns: im2col into its place, or for a 1x1 stride-1 kernel its input itself. */
static void lower_im2col_task(void *arg, size_t j)
{
    const struct lower_group *s = arg;
    const struct dnn_layer *l = s->l;
    const float *im = s->run->input + lower_pair(s, j) * s->d.in_size;
    float *col = s->cols + j * (size_t)s->d.n;
    if (dnn_conv_direct(l)) {
        lower_copy_rows(im, s->d.n, col, s->ldcols, s->d.cg, s->d.n);
        return;
    }
    const int dil = dnn_conv_dilation(l);
    dnn_im2col_ld(im, s->d.cg, l->h, l->w, l->spec.size, l->spec.stride, l->spec.pad * dil, dil,
                  col, (size_t)s->ldcols);
}

static void lower_output_task(void *arg, size_t j)
{
    const struct lower_group *s = arg;
    const size_t out_size = (size_t)s->d.m * (size_t)s->d.n;
    lower_copy_rows(s->out + j * (size_t)s->d.n, lower_ld(s),
                    s->l->output + lower_pair(s, j) * out_size, s->d.n, s->d.m, s->d.n);
}

static void lower_delta_task(void *arg, size_t j)
{
    const struct lower_group *s = arg;
    const size_t out_size = (size_t)s->d.m * (size_t)s->d.n;
    lower_copy_rows(s->l->delta + lower_pair(s, j) * out_size, s->d.n, s->out + j * (size_t)s->d.n,
                    lower_ld(s), s->d.m, s->d.n);
}

/* A 1x1 stride-1 kernel adds its input delta straight into the image's (beta 1, as the
 * per-image product): the image's delta goes into the columns first and comes back after. */
static void lower_in_delta_gather_task(void *arg, size_t j)
{
    const struct lower_group *s = arg;
    lower_copy_rows(s->run->input_delta + lower_pair(s, j) * s->d.in_size, s->d.n,
                    s->work + j * (size_t)s->d.n, lower_ld(s), s->d.cg, s->d.n);
}

static void lower_in_delta_task(void *arg, size_t j)
{
    const struct lower_group *s = arg;
    const struct dnn_layer *l = s->l;
    float *im = s->run->input_delta + lower_pair(s, j) * s->d.in_size;
    const float *col = s->work + j * (size_t)s->d.n;
    if (dnn_conv_direct(l)) {
        lower_copy_rows(col, lower_ld(s), im, s->d.n, s->d.cg, s->d.n);
        return;
    }
    const int dil = dnn_conv_dilation(l);
    dnn_col2im_ld(col, (size_t)lower_ld(s), s->d.cg, l->h, l->w, l->spec.size, l->spec.stride,
                  l->spec.pad * dil, dil, im);
}

/* Calls pass on every group of images of every convolution group, in order of images; with
 * @kept, their columns are the layer's kept ones. */
static void lower_each_group(struct dnn_layer *l, const struct dnn_run *run, int images, bool kept,
                             void (*pass)(struct lower_group *s))
{
    struct lower_group s = {.l = l, .run = run, .d = dnn_conv_dims_of(l), .kept = kept};
    s.work = run->net->lower_workspace;
    for (s.g = 0; s.g < l->spec.groups; s.g++) {
        for (s.b0 = 0; s.b0 < l->batch; s.b0 += images) {
            s.count = l->batch - s.b0 < images ? l->batch - s.b0 : images;
            s.out = s.work + (size_t)s.count * (size_t)s.d.k * (size_t)s.d.n;
            s.cols = kept ? dnn_conv_cache_at(l, &s.d, (size_t)s.b0, (size_t)s.g) : s.work;
            /* an int: dnn_network_set_column_cache checked the kept columns' stride */
            s.ldcols = kept ? (int)dnn_conv_cache_ld(l) : lower_ld(&s);
            pass(&s);
        }
    }
}

void dnn_conv_forward_src(const struct dnn_layer *l, const struct dnn_parallel *par,
                          const float *im, size_t im_stride, int images, int g, float *scratch,
                          size_t scratch_floats, float *out, int ldo)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const int dil = dnn_conv_dilation(l);
    struct dnn_im2col_src cols = {
        .im = im,
        .im_stride = im_stride,
        .images = images,
        .channels = d.cg,
        .h = l->h,
        .w = l->w,
        .ksize = l->spec.size,
        .stride = l->spec.stride,
        .pad = l->spec.pad * dil,
        .dilation = dil,
    };
    const size_t padded = dnn_im2col_padded_floats(d.cg, l->h, l->w, cols.pad);
    if (cols.pad > 0 && scratch && padded <= scratch_floats / (size_t)images) {
        for (int j = 0; j < images; j++)
            dnn_im2col_pad(im + (size_t)j * im_stride, d.cg, l->h, l->w, cols.pad,
                           (size_t)l->w + 2 * (size_t)cols.pad, scratch + (size_t)j * padded);
        cols.im = scratch;
        cols.im_stride = padded;
        cols.h += 2 * cols.pad;
        cols.w += 2 * cols.pad;
        cols.pad = 0;
    }
    const struct dnn_gemm_src src = {.pack = dnn_im2col_pack, .ctx = &cols};
    const size_t wsize = l->nweights / (size_t)l->spec.groups;
    dnn_gemm_src_par(par, d.m, images * d.n, d.k, l->weights + (size_t)g * wsize, d.k, &src, out,
                     ldo);
}

static void lower_forward_pass(struct lower_group *s)
{
    const struct dnn_parallel *par = s->run->par;
    const size_t wsize = s->l->nweights / (size_t)s->l->spec.groups;
    const int ld = lower_ld(s);
    if (dnn_conv_packs_from_image(s->l, s->kept)) {
        /* no column matrix to keep: the GEMM packs the columns from the images */
        dnn_conv_forward_src(s->l, par, s->run->input + lower_pair(s, 0) * s->d.in_size,
                             (size_t)s->l->spec.groups * s->d.in_size, s->count, s->g, s->work,
                             (size_t)s->count * (size_t)s->d.k * (size_t)s->d.n, s->out, ld);
        dnn_parallel_for(par, (size_t)s->count, lower_output_task, s);
        return;
    }
    dnn_parallel_for(par, (size_t)s->count, lower_im2col_task, s);
    dnn_gemm_par(par, false, false, s->d.m, ld, s->d.k, 1, s->l->weights + (size_t)s->g * wsize,
                 s->d.k, s->cols, s->ldcols, 0, s->out, ld);
    dnn_parallel_for(par, (size_t)s->count, lower_output_task, s);
}

void dnn_conv_lowered_forward(struct dnn_layer *l, const struct dnn_run *run, int images)
{
    /* a training pass lowers straight into the kept columns, for the backward pass */
    lower_each_group(l, run, images, dnn_conv_cache_fills(l, run), lower_forward_pass);
}

static void lower_backward_pass(struct lower_group *s)
{
    const struct dnn_parallel *par = s->run->par;
    const size_t wsize = s->l->nweights / (size_t)s->l->spec.groups;
    const float *w = s->l->weights + (size_t)s->g * wsize;
    const int ld = lower_ld(s);
    dnn_parallel_for(par, (size_t)s->count, lower_delta_task, s);
    if (!s->kept)
        dnn_parallel_for(par, (size_t)s->count, lower_im2col_task, s);
    dnn_conv_weight_product(par, s->d.m, s->d.k, ld, s->out, ld, s->cols, s->ldcols,
                            s->l->weight_updates + (size_t)s->g * wsize, s->d.k);
    if (!s->run->input_delta)
        return;
    const bool direct = dnn_conv_direct(s->l);
    if (direct)
        dnn_parallel_for(par, (size_t)s->count, lower_in_delta_gather_task, s);
    dnn_gemm_par(par, true, false, s->d.k, ld, s->d.m, 1, w, s->d.k, s->out, ld, direct ? 1 : 0,
                 s->work, ld);
    dnn_parallel_for(par, (size_t)s->count, lower_in_delta_task, s);
}

void dnn_conv_lowered_backward(struct dnn_layer *l, const struct dnn_run *run, int images)
{
    lower_each_group(l, run, images, dnn_conv_cache_holds(l, run), lower_backward_pass);
}
