/*
 * conv_winograd.h - 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), for the forward
 * product and the input delta (conv_winograd.c) and the weight gradient (conv_winograd_grad.c)
 * of the layers where it pays. Engine-internal.
 *
 * Each 2x2 block of output pixels (a tile) is A^T [U (.) V] A, with U = G g G^T the 4x4
 * transform of a 3x3 filter g and V = B^T d B that of the 4x4 input patch d around the block
 * (padding 1: the patch of tile (ty, tx) starts at row 2ty-1, column 2tx-1, zeros outside).
 * Summed over the input channels, the 16 element-wise products become 16 matrix products,
 * one per position xi of the 4x4 transform: M[xi] (filters x tiles) = U[xi] (filters x
 * channels) * V[xi] (channels x tiles): 16 multiply-adds per tile, filter and channel where
 * im2col's GEMM spends 4 x 9 = 36, 2.25x fewer.
 *
 * The bits: every transform is an element-wise function of its inputs (no fused multiply-add:
 * the engine is built with -ffp-contract=off), and dnn_gemm computes each element of C from
 * its own row and column, adding its terms in increasing k, whatever the blocking. So any
 * split of the filters (streamed tiles, blocks that fit the scratch), of the tiles (blocks of
 * images, threads) or of the input delta's sum over filters into consecutive ranges gives the
 * same bits, in the normal world and the TA. They differ from im2col + GEMM's in the last bits
 * (a relative 1e-6 of the sum of |terms| on data of mixed sign; on data of one sign both drift
 * further from the exact sum, im2col more: README).
 */
#ifndef DNN_CONV_WINOGRAD_H
#define DNN_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>

#include "dnn/dnn_internal.h"

/* Positions of the 4x4 transform: one matrix product each. */
#define DNN_WINO_XI 16

/* Least input channels and filters of a layer that takes the Winograd path. Below, the
 * transforms (16 floats in and out per tile and channel; perf gave them 58% of such layers'
 * inference before they took four tiles at a time) cost about what the products save.
 * Forward, batch 50, CPU time of im2col + GEMM over Winograd's (`bench_dnn layers`, 3
 * alternated runs, AVX2), at 16x16: 48 -> 48 channels 0.85, 64 -> 64 1.08, 96 -> 128 1.15,
 * 128 -> 128 1.18; at 28x28: 32 -> 64 0.86. VGG-7's layers from the second (128 to 512
 * channels) take it, its first (3 channels) and LeNet's do not. */
#define DNN_WINO_MIN_CHANNELS 64
#define DNN_WINO_MIN_FILTERS 64

/* Least tiles in a pass (batch x tiles of an image) of a layer that takes the Winograd path:
 * its filters are transformed once per pass, which costs about what the products save on a
 * few tens of tiles. `bench_dnn infer cfg/vgg-7_cifar10.cfg 1`, alternated: 17-19 ms an image
 * at 32, where VGG-7's 8x8 layers (16 tiles) keep im2col, against 27-31 ms at 1 (im2col
 * throughout: about 17 ms). A function of the layer's shape and batch, the same in both
 * worlds; an image's scores may thus differ in the last bits between batch sizes where a
 * layer crosses it. */
#define DNN_WINO_MIN_TILES 32

/* Most tiles of one block: its V (16 x channels x tiles: 4 KB per channel) stays in the
 * caches' reach while the 16 GEMMs read it, and they have columns enough to pack (a VGG-7
 * training step at 192 measured the same within the machine's noise). */
#define DNN_WINO_TILE_BLOCK 64

/* Filters per block in the layer's shape-only scratch figure
 * (dnn_conv_winograd_scratch_floats): the least the passes work with; a larger scratch (the
 * network's workspace is the largest layer's) takes more filters at once. */
#define DNN_WINO_FILTER_BLOCK 32

/*
 * dnn_conv_winograd_applies - true when layer l's forward product, input delta and weight
 * gradient take the Winograd path: a convolution with size 3, stride 1, pad 1, no dilation, one
 * group, no antialiasing, at least DNN_WINO_MIN_CHANNELS input channels and DNN_WINO_MIN_FILTERS
 * filters, and at least DNN_WINO_MIN_TILES tiles in a pass. A function of the layer's shape and
 * batch only (and of the compile-time switch -DDNN_CONV_NO_WINOGRAD, which makes it false), never
 * of memory or threads, so that both worlds take the same path.
 */
bool dnn_conv_winograd_applies(const struct dnn_layer *l);

/* Floats of scratch the Winograd passes of layer l need at least (its share of
 * l->workspace_floats), the streamed input delta's accumulator of one image included
 * (16 * c * tiles of an image: dnn_wino_delta_accumulate); 0 when it would overflow. */
size_t dnn_conv_winograd_scratch_floats(const struct dnn_layer *l);

/* Tiles of one image of h x w pixels: ceil(h/2) * ceil(w/2). */
size_t dnn_wino_tiles(int h, int w);

/* Tiles of one row segment transformed at once (local arrays on the stack). */
#define DNN_WINO_SEG 32

/*
 * dnn_wino_blocks - block sizes for one pass over @tiles tiles with c input channels and k
 * filters in @scratch_floats floats: *tb tiles (at most @tile_block and @tiles) and *kb of the
 * k filters, as many as fit beside a fixed block of 16 x c x tb floats, each filter taking
 * 16 x (tb + c) floats when @with_u (its transform, or its sums, in the scratch too), else
 * 16 x tb. The layer's scratch (dnn_conv_winograd_scratch_floats) fits one filter at
 * DNN_WINO_TILE_BLOCK tiles; tb is halved only as a guard. No tiles: *tb 0, no pass to make.
 */
void dnn_wino_blocks(size_t scratch_floats, int c, int k, size_t tiles, size_t tile_block,
                     bool with_u, int *tb, int *kb);

/* Tiles [g0, g0+nt) of a call's images of h x w pixels: tile g is tile g % T of image g / T
 * (T = dnn_wino_tiles(h, w) tiles per image, row-major, ceil(w/2) per row). */
struct dnn_wino_tiles {
    int h, w;
    size_t g0;
    int nt;
};

/* A run of consecutive tiles of one tile row: image b, tile row ty, tiles tx0 .. tx0+len-1,
 * the first being tile j of the block. */
struct dnn_wino_seg {
    size_t b, j;
    int ty, tx0, len;
};

/* The run that starts at tile *g of tl's block (cut at tile rows and DNN_WINO_SEG tiles),
 * moving *g past it; false at the block's end. */
bool dnn_wino_next_segment(const struct dnn_wino_tiles *tl, size_t *g, struct dnn_wino_seg *s);

/* V (16, ch, nt) = B^T d B of tiles [g0, g0+nt) of images (ch, h, w) in_stride floats apart,
 * for channels [c0, c1) only: position xi of channel c's tile j at
 * v[xi * ch * nt + c * nt + j]; the patches' pixels outside the image (padding 1) are zeros. */
void dnn_wino_input_transform(const float *in, size_t in_stride, int c0, int c1, int ch,
                              const struct dnn_wino_tiles *tl, float *v);

/*
 * dnn_wino_filter_transform - u (16, k, c) = G g G^T for each of the k x c filters g (3x3) of
 * @weights (k, c, 3, 3): element xi of filter (r, ch) at u[xi * k * c + r * c + ch].
 */
void dnn_wino_filter_transform(const float *weights, int k, int c, float *u);

/*
 * dnn_wino_filter_transform_turned - ut (16, c, k): the transform of each filter turned 180
 * degrees, transposed, for the input delta: position xi of filter (r, ch) at
 * ut[xi * c * k + ch * k + r] (the forward transform's position with rows and columns 0 and
 * 3 swapped: G reverses with g's rows, rows 1 and 2 of G being palindromes).
 */
void dnn_wino_filter_transform_turned(const float *weights, int k, int c, float *ut);

/* dnn_wino_filter_transform and dnn_wino_filter_transform_turned split among the threads of
 * par (NULL: serial) by filters and by input channels: every element is transformed alone,
 * so the bits are those of the serial transform. */
void dnn_wino_filter_transform_par(const struct dnn_parallel *par, const float *weights, int k,
                                   int c, float *u);
void dnn_wino_filter_transform_turned_par(const struct dnn_parallel *par, const float *weights,
                                          int k, int c, float *ut);

/* One Winograd convolution of images (c, h, w) into (k, h, w) by filters (k, c, 3, 3). */
struct dnn_wino_conv {
    int c, h, w;          /* input channels; height and width of input and output */
    int k;                /* filters */
    const float *weights; /* (k, c, 3, 3) */
    const float *u;       /* their transform (16, k, c), or NULL: transformed per block */
    /* the turned filters' transform for the input delta (16, c, k), or NULL: per block */
    const float *ut;
};

/*
 * dnn_wino_forward - out(image, k, h, w) = the convolution of in(image, c, h, w) by cv's
 * filters, overwritten, for @images images, image j at in + j * in_stride and out + j *
 * out_stride floats. @scratch holds @scratch_floats floats, at least
 * dnn_conv_winograd_scratch_floats of the layer (a larger one blocks fewer filters); par
 * (NULL: serial) splits each product.
 */
void dnn_wino_forward(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                      const float *in, size_t in_stride, int images, float *out, size_t out_stride,
                      float *scratch, size_t scratch_floats);

/*
 * dnn_wino_input_delta - in_delta(image, c, h, w) += the input delta of cv's 3x3 stride-1
 * pad-1 convolution for delta(image, k, h, w): the convolution of delta by the filters
 * transposed (k <-> c) and turned 180 degrees (cv->ut, or per block). Strides and scratch
 * as dnn_wino_forward. The sum over filters runs in increasing order, as
 * dnn_wino_delta_accumulate's over a layer's tiles.
 */
void dnn_wino_input_delta(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                          const float *delta, size_t delta_stride, int images, float *in_delta,
                          size_t in_stride, float *scratch, size_t scratch_floats);

/* Floats of one image's accumulator for dnn_wino_delta_accumulate: 16 * c * tiles. */
size_t dnn_wino_delta_acc_floats(int c, int h, int w);

/*
 * dnn_wino_delta_accumulate - the share of filters cv->weights (cv->k of them, the rows of a
 * streamed tile, delta(image, cv->k, h, w) their output delta, delta_stride apart) in the
 * transformed input delta acc (image, 16, c, tiles), acc_stride floats apart: overwritten
 * when @first (the layer's first tile), else added, in increasing order of filters. After
 * the layer's last tile, dnn_wino_delta_fold gives the bits of dnn_wino_input_delta.
 */
void dnn_wino_delta_accumulate(const struct dnn_wino_conv *cv, const float *delta,
                               size_t delta_stride, int images, bool first, float *acc,
                               size_t acc_stride, float *scratch, size_t scratch_floats);

/* in_delta(image, c, h, w) += A^T acc A for every tile of @images images. */
void dnn_wino_delta_fold(int c, int h, int w, const float *acc, size_t acc_stride, int images,
                         float *in_delta, size_t in_stride);

/*
 * dnn_wino_weight_gradient - dw(k, c, 3, 3) += the weight gradient of cv's 3x3 stride-1 pad-1
 * convolution (cv->k filters, cv->c input channels, h x w pixels) for @images images in(image,
 * c, h, w) and their output deltas delta(image, k, h, w), in_stride and delta_stride floats
 * apart: dU = sum over tiles of (A dY A^T) (.) (B^T d B), then G^T dU G (conv_winograd_grad.c).
 * The sums dU (16, kb, c) go to @acc when it is not NULL (16 * k * c floats), else to the
 * scratch; @scratch_floats at least dnn_conv_winograd_scratch_floats of the layer. par (NULL:
 * serial) splits positions, channels and filters, never tiles, so the bits depend on neither
 * the threads nor the blocks: a call on a block of filters (a streamed tile's rows, delta at
 * its first filter) gives those rows of the whole layer's gradient.
 */
void dnn_wino_weight_gradient(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                              const float *in, size_t in_stride, const float *delta,
                              size_t delta_stride, int images, float *dw, float *acc,
                              float *scratch, size_t scratch_floats);

/* The blocks dnn_wino_weight_gradient takes in @scratch_floats for c channels, k filters and
 * @tiles tiles, its sums outside the scratch when @with_acc: *tb tiles (K of its 16 products
 * dM[xi] V[xi]^T) and *kb filters. */
void dnn_wino_weight_gradient_blocks(size_t scratch_floats, int c, int k, size_t tiles,
                                     bool with_acc, int *tb, int *kb);

#endif
