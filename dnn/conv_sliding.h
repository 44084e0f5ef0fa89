/*
 * conv_sliding.h - a convolution's forward product as a sliding window, for layers with few
 * filters (conv_sliding.c). Engine-internal.
 */
#ifndef DNN_CONV_SLIDING_H
#define DNN_CONV_SLIDING_H

#include <stdbool.h>
#include <stddef.h>

#include "dnn/dnn_internal.h"

/* Most filters a layer may have for the sliding window: with more, dnn_gemm reuses each
 * column enough to be faster. At 16 (cfg/fashion_vgg7.cfg's second layer, 16 filters 3x3 on
 * 16 channels, batch 50) the forward took 8.8-10.0 ms against 13.3-14.2 with im2col and
 * dnn_gemm (`bench_dnn layers`, 3 alternated runs). */
#define DNN_CONV_SLIDING_MAX_FILTERS 16

/* True for a convolution whose forward product the sliding window computes: ungrouped,
 * stride 1, undilated, size >= 2, no antialiasing, at most DNN_CONV_SLIDING_MAX_FILTERS
 * filters, and a padded image no larger than its im2col columns (k x n floats, the layer's
 * share of the workspace). A function of the layer's shape only, so both worlds agree. */
bool dnn_conv_sliding_applies(const struct dnn_layer *l);

/* Floats of scratch dnn_conv_sliding_forward needs: the zero-padded image. */
size_t dnn_conv_sliding_padded_floats(const struct dnn_layer *l);

/*
 * out(filters, out_h*out_w) = weights(filters, k) * im2col(im), bit for bit what dnn_gemm
 * (beta 0) gives on im2col's columns, for one image im (c, h, w) of a layer for which
 * dnn_conv_sliding_applies. scratch: dnn_conv_sliding_padded_floats(l) floats, overwritten.
 * Bias, batch norm and activation are the caller's, as after the product.
 */
void dnn_conv_sliding_forward(const struct dnn_layer *l, const float *im, float *scratch,
                              float *out);
/* The same with the rounding of dnn_gemm's `kernel` (tests compare it with dnn_gemm_with). */
void dnn_conv_sliding_forward_with(enum dnn_gemm_kernel kernel, const struct dnn_layer *l,
                                   const float *im, float *scratch, float *out);

#endif
