/*
 * conv_sliding.c - the forward pass of a convolution with few filters as a sliding window
 * over the zero-padded image, without im2col's column matrix.
 *
 * With few filters (LeNet's 6) the product weights * columns has few rows: dnn_gemm reads each
 * column once per handful of filters, so writing the k x n columns and reading them back costs
 * more than the multiply-adds (im2col was 59% of LeNet's inference under perf). Here each
 * output row is a sum of shifted input rows, read in place from a padded copy of the image
 * (channels x (h+2 pad) rows, a few KB) that sits in L1.
 *
 * The bits are dnn_gemm's (conv_sliding_kernel.h): the same terms, in the same order, with the
 * same rounding as the dnn_gemm kernel this CPU runs, so the normal world, the TA and the
 * layers' other paths (im2col and GEMM, streamed tiles, lowered batches) agree bit for bit,
 * but for a NaN's sign and payload: where two NaNs meet in a sum, the survivor depends on the
 * operand order the compiler picks, which differs from dnn_gemm's generic kernel.
 */
#include <string.h>

#include "dnn/conv_lower.h"
#include "dnn/conv_sliding.h"

/* Sums per strip: CS_MAX_FB filters x CS_VECS vectors of 8 columns (8 of 16 AVX2 registers,
 * the rest for the input vectors and a weight). */
#define CS_LANES 8
#define CS_VECS 2
#define CS_STRIP (CS_LANES * CS_VECS)
#define CS_MAX_FB 4

typedef float cs_vec __attribute__((vector_size(CS_LANES * sizeof(float))));

#if defined(__clang__)
#define CS_UNROLL_ALL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define CS_UNROLL_ALL _Pragma("GCC unroll 16")
#else
#define CS_UNROLL_ALL
#endif

/* generic: a product then a sum, as dnn_gemm's generic kernel (and darknet). */
#define CS_SUFFIX generic
#define CS_ATTR
#define CS_MADD(c, a, b) ((c) + (a) * (b))
#include "dnn/conv_sliding_kernel.h"
#undef CS_SUFFIX
#undef CS_ATTR
#undef CS_MADD

#if defined(__x86_64__) && defined(__GNUC__) && !defined(DNN_GEMM_PORTABLE)
#define CS_HAVE_FUSED 1
/* avx2: one fused multiply-add per term, as dnn_gemm's AVX2 and AVX-512 kernels. */
#define CS_SUFFIX avx2
#define CS_ATTR __attribute__((target("avx2,fma")))
#define CS_MADD(c, a, b) __builtin_ia32_vfmaddps256((a), (b), (c))
#include "dnn/conv_sliding_kernel.h"
#undef CS_SUFFIX
#undef CS_ATTR
#undef CS_MADD
#else
#define CS_HAVE_FUSED 0
#endif

/* Width of a padded row: whole strips of output columns plus the kernel's reach. */
static size_t cs_padded_width(const struct dnn_layer *l)
{
    const size_t strips = ((size_t)l->out_w + CS_STRIP - 1) / CS_STRIP;
    return strips * CS_STRIP + (size_t)l->spec.size - 1;
}

size_t dnn_conv_sliding_padded_floats(const struct dnn_layer *l)
{
    return (size_t)l->c * (size_t)(l->h + 2 * l->spec.pad) * cs_padded_width(l);
}

bool dnn_conv_sliding_applies(const struct dnn_layer *l)
{
    if (l->kind != DNN_LAYER_CONVOLUTIONAL || l->spec.groups != 1 || l->spec.stride != 1 ||
        dnn_conv_dilation(l) != 1 || l->spec.size < 2 || l->spec.antialiasing ||
        l->spec.filters > DNN_CONV_SLIDING_MAX_FILTERS || l->spec.pad < 0)
        return false;
    /* The padded image lives in the layer's im2col scratch, which it must not outgrow. */
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    return dnn_conv_sliding_padded_floats(l) <= (size_t)d.k * (size_t)d.n;
}

void dnn_conv_sliding_forward_with(enum dnn_gemm_kernel kernel, const struct dnn_layer *l,
                                   const float *im, float *scratch, float *out)
{
    const int ph = l->h + 2 * l->spec.pad;
    const size_t pw = cs_padded_width(l);
    dnn_im2col_pad(im, l->c, l->h, l->w, l->spec.pad, pw, scratch);
#if CS_HAVE_FUSED
    if (dnn_gemm_kernel_fused(kernel) && dnn_gemm_kernel_available(kernel) &&
        dnn_gemm_kernel_available(DNN_GEMM_AVX2)) {
        cs_forward_avx2(l->spec.filters, l->c, l->spec.size, l->out_h, l->out_w, ph, (int)pw,
                        scratch, l->weights, out);
        return;
    }
#else
    (void)kernel; /* generic is the only kernel of this build */
#endif
    cs_forward_generic(l->spec.filters, l->c, l->spec.size, l->out_h, l->out_w, ph, (int)pw,
                       scratch, l->weights, out);
}

void dnn_conv_sliding_forward(const struct dnn_layer *l, const float *im, float *scratch,
                              float *out)
{
    dnn_conv_sliding_forward_with(dnn_gemm_kernel_best(), l, im, scratch, out);
}
