/*
 * dnn_internal.h - helpers shared by the engine's own files; not for callers.
 */
#ifndef DNN_INTERNAL_H
#define DNN_INTERNAL_H

#include "dnn.h"

/* ---------------------------------------------------------------- math (math.c)
 * The TA has no libm, so the engine brings its own. Results are deterministic
 * (same code in both worlds) and accurate to about one float ulp. */
float dnn_expf(float x);
double dnn_exp(double x);
float dnn_logf(float x);
double dnn_log(double x);
float dnn_tanhf(float x);
float dnn_powf(float x, float y);
/* cos(x) for x in [0, pi] (clamped there), to about one double ulp (SGDR's cosine). */
double dnn_cos_0_pi(double x);
float dnn_sqrtf(float x);
float dnn_floorf(float x);
float dnn_fabsf(float x);

/* Exact comparisons without == and != on floating types (OP-TEE's TA dev kit builds the
 * engine with -Wfloat-equal): the same answers as a == b (false when either is NaN) and
 * x != x, and no libm call. */
static inline bool dnn_feq(float a, float b)
{
    return __builtin_isgreaterequal(a, b) && __builtin_islessequal(a, b);
}
static inline bool dnn_deq(double a, double b)
{
    return __builtin_isgreaterequal(a, b) && __builtin_islessequal(a, b);
}
#define dnn_isnan(x) __builtin_isnan(x)

/* Checked size arithmetic: false on overflow. */
bool dnn_mul_size(size_t a, size_t b, size_t *out);
bool dnn_add_size(size_t a, size_t b, size_t *out);

/* ------------------------------------------------------------ blas (blas.c) */
void dnn_fill(float *x, size_t n, float v);
/* dnn_fill with x (n) cut into pieces for the threads of par (NULL: serial). */
void dnn_fill_par(const struct dnn_parallel *par, float *x, size_t n, float v);
void dnn_copy(const float *x, size_t n, float *y);
void dnn_axpy(size_t n, float a, const float *x, float *y); /* y += a*x */
void dnn_scal(size_t n, float a, float *x);                 /* x *= a */
float dnn_sum(const float *x, size_t n);

/* Per-channel helpers on (batch, c, spatial) tensors, as darknet's blas.c. */
void dnn_add_bias(float *out, const float *biases, int batch, int c, int spatial);
void dnn_scale_bias(float *out, const float *scales, int batch, int c, int spatial);
void dnn_backward_bias(float *bias_updates, const float *delta, int batch, int c, int spatial);
void dnn_backward_scale(const float *x_norm, const float *delta, int batch, int c, int spatial,
                        float *scale_updates);

/* darknet's adam_update_gpu on one parameter tensor (p->adam_m, p->adam_v set): decay on
 * every tensor, moments, bias-corrected step, then the accumulated update cleared. */
void dnn_adam_step(struct dnn_param *p, const struct dnn_update_args *a);
/* Standard darknet momentum SGD step for one parameter tensor of n floats: with weight decay
 * when decay_on, update += -decay*batch * value; then value += lr/batch * update; update *=
 * momentum. Split in pieces among a->par's threads (NULL: serial): same bits either way. */
void dnn_sgd_step(float *value, float *update, size_t n, const struct dnn_update_args *a,
                  bool decay_on);

/* ------------------------------------------------------------ gemm (gemm.c)
 * C = alpha * op(A) * op(B) + beta * C, row-major, as darknet's gemm_cpu: op(A) is m x k
 * (A is m x k with row stride lda, or k x m when ta), op(B) is k x n (B is k x n with row
 * stride ldb, or n x k when tb), C is m x n with row stride ldc. beta == 0 clears C first
 * (NaN included). Nothing to do when m or n <= 0; k <= 0 leaves beta * C. Each element's
 * terms are added into it in increasing order of k by the fastest kernel this CPU has;
 * which kernel depends on the CPU only, so a result depends on the inputs and the CPU. */
void dnn_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

/* dnn_gemm with its blocks of rows and columns of C shared among the threads of par (NULL:
 * serial); never split over k, so every bit equals dnn_gemm's. */
void dnn_gemm_par(const struct dnn_parallel *par, bool ta, bool tb, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc);

/* dnn_gemm_par with C stored transposed: C(i, j) at c[j*ldc + i], so C^T is n x m with row
 * stride ldc. Each element's terms are added in the same order as by dnn_gemm_par, so the
 * bits are the same; it lets a product whose C has few rows and many columns run with the
 * roles of its operands swapped (C^T = op(B)^T op(A)^T), e.g. a weight gradient. */
void dnn_gemm_par_tc(const struct dnn_parallel *par, bool ta, bool tb, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc);

/*
 * A matrix B given by what packs it instead of where it lies (dnn_gemm_src_par):
 * pack(ctx, p0, kc, j0, nc, nr, bp) writes B(p0 .. p0+kc-1, j0 .. j0+nc-1) to bp as
 * micro-panels of nr columns: columns j0 + t*nr .. j0 + t*nr + nr-1 at bp + t*nr*kc, kc rows
 * of nr floats, zeros in the columns past nc (nr is the kernel's: 4 to 32; kc <= 4096). It
 * must write the values themselves, the same bits for every call: a convolution's forward
 * product packs its columns straight from the image (dnn_im2col_pack) instead of writing a
 * column matrix for the GEMM to read back.
 */
struct dnn_gemm_src {
    void (*pack)(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *bp);
    const void *ctx;
};

/*
 * dnn_gemm_src_par - C(m, n) = A(m, k) * B(k, n), A not transposed with row stride lda, C
 * with row stride ldc (cleared first: beta 0), B from src; split among the threads of par
 * (NULL: serial) as dnn_gemm_par splits C. Every element gets the terms, in the order and by
 * the kernel, that dnn_gemm_par(par, false, false, m, n, k, 1, a, lda, B, ldb, 0, c, ldc)
 * gives it on the matrix src packs: the same bits. Nothing to do when m, n or k <= 0.
 * Allocates nothing (the kernel's packed block is on the stack), so a TA can run it too.
 */
void dnn_gemm_src_par(const struct dnn_parallel *par, int m, int n, int k, const float *a, int lda,
                      const struct dnn_gemm_src *src, float *c, int ldc);

/* Calls task(arg, i) for i in 0 .. n-1 on the threads of par, or in order when par is NULL,
 * has no run, or n < 2. */
void dnn_parallel_for(const struct dnn_parallel *par, size_t n, void (*task)(void *arg, size_t i),
                      void *arg);
/* Threads par runs tasks on: 1 when serial. */
unsigned dnn_parallel_threads(const struct dnn_parallel *par);
/* Tasks to split n independent items into: a few per thread (so a thread the machine slows
 * leaves its share), none with fewer than min_items items (waking a thread costs some 10 us);
 * 1 when serial. Task t of `tasks` takes items [dnn_parallel_first(n, tasks, t),
 * dnn_parallel_first(n, tasks, t + 1)). A split decides only who computes an item, never how:
 * callers keep every item's arithmetic the same for any task count. */
size_t dnn_parallel_tasks(const struct dnn_parallel *par, size_t n, size_t min_items);
/* The first item of task t: tasks differ by at most one item and the larger come first, so
 * that the threads, taking tasks in order, are left with the small ones at the end and
 * finish together (8 tasks of 50 images spread as 6,6,6,7,6,6,6,7 left one of 2 threads
 * 26 images against 24; as 7,7,6,6,6,6,6,6, 25 each). */
static inline size_t dnn_parallel_first(size_t n, size_t tasks, size_t t)
{
    const size_t q = n / tasks, r = n % tasks;
    return t * q + (t < r ? t : r);
}
/* Calls range(arg, i0, i1) on contiguous pieces [i0, i1) that cover 0 .. n-1, one per task of
 * dnn_parallel_tasks(par, n, min_items) (task t's piece starts at dnn_parallel_first(n, tasks,
 * t)), on the threads of par; once with (0, n) when that is one task. For loops whose items
 * are computed alone: the pieces decide who computes an item, never how. */
void dnn_parallel_ranges(const struct dnn_parallel *par, size_t n, size_t min_items,
                         void (*range)(void *arg, size_t i0, size_t i1), void *arg);
/* dnn_activate_array_keep and dnn_gradient_array_keep with the array cut into pieces for the
 * threads of par (NULL: serial); every element is computed alone, so no bit depends on it. */
void dnn_activate_array_keep_par(const struct dnn_parallel *par, float *x, size_t n,
                                 enum dnn_activation a, float *kept);
void dnn_gradient_array_keep_par(const struct dnn_parallel *par, const float *y, const float *x,
                                 size_t n, enum dnn_activation a, float *delta);
/* Wipes and frees net's per-task scratch (dnn_network_free). */
void dnn_network_set_parallel_free(struct dnn_network *net);
/* Wipes and frees net's lowering scratch (conv_lower.c): one image at a time again. */
void dnn_network_lowering_free(struct dnn_network *net);
/* Wipes and frees net's kept column matrices (conv_cache.c): every layer lowers again. */
void dnn_network_column_cache_free(struct dnn_network *net);

/* The kernels of dnn_gemm; the fused ones round a product and its sum once. */
enum dnn_gemm_kernel {
    DNN_GEMM_GENERIC, /* any CPU: vector extensions, product then sum (darknet's rounding) */
    DNN_GEMM_AVX2,    /* x86-64 with AVX2 and FMA: fused */
    DNN_GEMM_AVX512,  /* x86-64 with AVX-512F: fused */
    DNN_GEMM_KERNEL_COUNT
};
/* True when this build and CPU can run kernel. */
bool dnn_gemm_kernel_available(enum dnn_gemm_kernel kernel);
/* The kernel dnn_gemm uses: the widest available one. */
enum dnn_gemm_kernel dnn_gemm_kernel_best(void);
/* "generic", "avx2", "avx512" (for logs and benchmarks). */
const char *dnn_gemm_kernel_name(enum dnn_gemm_kernel kernel);
bool dnn_gemm_kernel_fused(enum dnn_gemm_kernel kernel);
/* dnn_gemm with a chosen kernel (the generic one when kernel is not available): for tests
 * and benchmarks that compare kernels. */
void dnn_gemm_with(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* dnn_gemm_with with C stored transposed, as dnn_gemm_par_tc. */
void dnn_gemm_with_tc(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k,
                      float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                      float *c, int ldc);
/* dnn_gemm_src_par, serial, with a chosen kernel (the generic one when kernel is not
 * available): for tests that compare it with dnn_gemm_with. */
void dnn_gemm_src_with(enum dnn_gemm_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const struct dnn_gemm_src *src, float *c, int ldc);

/* ---------------------------------------------------------- im2col (im2col.c) */
/* im (channels, h, w) -> col (channels*ksize*ksize, out_h*out_w). */
void dnn_im2col(const float *im, int channels, int h, int w, int ksize, int stride, int pad,
                float *col);
/* Adds col back into im (which the caller has initialised). */
void dnn_col2im(const float *col, int channels, int h, int w, int ksize, int stride, int pad,
                float *im);
/* The same, with the kernel's taps dilation pixels apart (1: as above; AlexeyAB's dilated
 * convolutions pass their pad times dilation) and the rows of col (im2col) or the channels
 * of im (col2im) shared among the threads of par (NULL: serial): each output float is
 * written by one task, in the serial order. */
void dnn_im2col_par(const struct dnn_parallel *par, const float *im, int channels, int h, int w,
                    int ksize, int stride, int pad, int dilation, float *col);
void dnn_col2im_par(const struct dnn_parallel *par, const float *col, int channels, int h, int w,
                    int ksize, int stride, int pad, int dilation, float *im);
/* dnn_im2col_par on a column matrix whose rows lie ldcol floats apart (>= out_h*out_w): one
 * image's columns among a batch's kept side by side (conv_cache.c). */
void dnn_im2col_par_ld(const struct dnn_parallel *par, const float *im, int channels, int h, int w,
                       int ksize, int stride, int pad, int dilation, float *col, size_t ldcol);
/* dnn_im2col_par and dnn_col2im_par, serial, on a column matrix whose rows lie ldcol floats
 * apart (>= out_h*out_w): one image's columns within a matrix of several images side by side,
 * as a convolution lowers a group of images for one product (conv_lower.c). */
void dnn_im2col_ld(const float *im, int channels, int h, int w, int ksize, int stride, int pad,
                   int dilation, float *col, size_t ldcol);
void dnn_col2im_ld(const float *col, size_t ldcol, int channels, int h, int w, int ksize,
                   int stride, int pad, int dilation, float *im);
/* Output extent of one dimension: (size + 2*pad - (dilation*(ksize-1) + 1))/stride + 1
 * (may be <= 0). */
int dnn_im2col_extent(int size, int ksize, int stride, int pad, int dilation);

/* Images whose column matrices, side by side, are a GEMM's B packed by dnn_im2col_pack:
 * image b is (channels, h, w) at im + b*im_stride; its columns are b*out_h*out_w ..
 * (b+1)*out_h*out_w - 1, each the values dnn_im2col_ld writes there (pad already multiplied
 * by dilation, as there). */
struct dnn_im2col_src {
    const float *im;
    size_t im_stride; /* floats from one image to the next */
    int images, channels, h, w, ksize, stride, pad, dilation;
};
/* The pack function of a struct dnn_gemm_src whose ctx is a struct dnn_im2col_src: the
 * rows and columns asked for, read from the images, with no column matrix in between. */
void dnn_im2col_pack(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *bp);
/* Floats of an image (channels, h, w) with pad zeros around each plane:
 * channels*(h+2*pad)*(w+2*pad). */
size_t dnn_im2col_padded_floats(int channels, int h, int w, int pad);
/* Writes that padded image (channels, h+2*pad, row_floats) of im to out, rows row_floats >=
 * w+2*pad floats apart and zero after the right padding too: dnn_im2col_pack then reads every
 * pixel and padding alike, with pad 0 and the same columns (row_floats = w+2*pad); the
 * sliding window (conv_sliding.c) reads whole strips of a wider row (pad >= 0). */
void dnn_im2col_pad(const float *im, int channels, int h, int w, int pad, size_t row_floats,
                    float *out);

/* ---------------------------------------------------- batchnorm (batchnorm.c)
 * Shared by convolutional, connected and the batchnorm layer. Operate on
 * l->output in place, using l->bn, l->biases and l->out_c. */
enum dnn_status dnn_bn_setup(struct dnn_layer *l) DNN_MUST_CHECK; /* requests bn buffers */
void dnn_bn_init(struct dnn_layer *l);
/* Both split the channels among the threads of par (NULL: serial); each channel's
 * statistics and values are computed as one thread would, so the bits never depend on it. */
void dnn_bn_forward(struct dnn_layer *l, bool train, const struct dnn_parallel *par);
/* Turns l->delta into the pre-BN delta. */
void dnn_bn_backward(struct dnn_layer *l, const struct dnn_parallel *par);
/* The same on channels [row0, row0 + rows) alone, serial, with a streamed tile's slices
 * (@p: scales, biases, rolling statistics, scale and bias updates, element 0 = channel row0)
 * in place of the layer's tensors: each channel's values are those of the whole pass. */
void dnn_bn_forward_rows(struct dnn_layer *l, bool train, const struct dnn_tile_params *p,
                         size_t row0, size_t rows);
void dnn_bn_backward_rows(struct dnn_layer *l, const struct dnn_tile_params *p, size_t row0,
                          size_t rows);

/* ------------------------------------------------ streamed tiles per kind (tiles.c calls)
 * dnn_tile_forward/_backward's work once tiles.c checked the layer, rows and slices. */
enum dnn_status dnn_connected_tile_forward(struct dnn_layer *l, const float *input, bool train,
                                           const struct dnn_tile_params *p, size_t row0,
                                           size_t rows);
enum dnn_status dnn_connected_tile_backward(struct dnn_layer *l, const float *input,
                                            float *input_delta, const struct dnn_tile_params *p,
                                            size_t row0, size_t rows);
enum dnn_status dnn_convolutional_forward_rows(struct dnn_layer *l, const float *input, bool train,
                                               const struct dnn_tile_params *p, size_t row0,
                                               size_t rows, float *workspace);
enum dnn_status dnn_convolutional_backward_rows(struct dnn_layer *l, const float *input,
                                                float *input_delta, const struct dnn_tile_params *p,
                                                size_t row0, size_t rows, bool first, bool last,
                                                float *workspace, float *delta_cols);

/* ------------------------------------------------------------- ops per kind */
extern const struct dnn_layer_ops dnn_convolutional_ops;
extern const struct dnn_layer_ops dnn_connected_ops;
extern const struct dnn_layer_ops dnn_maxpool_ops;
extern const struct dnn_layer_ops dnn_avgpool_ops;
extern const struct dnn_layer_ops dnn_dropout_ops;
extern const struct dnn_layer_ops dnn_softmax_ops;
extern const struct dnn_layer_ops dnn_cost_ops;
extern const struct dnn_layer_ops dnn_batchnorm_ops;
extern const struct dnn_layer_ops dnn_shortcut_ops;

/* AlexeyAB's antialiasing (antialias.c) around a layer's own setup, forward and backward,
 * which then see the layer at stride 1 (for convolutional and maxpool). */
enum dnn_status dnn_aa_setup(struct dnn_layer *l, const struct dnn_network *net,
                             enum dnn_status (*setup)(struct dnn_layer *,
                                                      const struct dnn_network *));
void dnn_aa_forward(struct dnn_layer *l, const struct dnn_run *run,
                    void (*forward)(struct dnn_layer *, const struct dnn_run *));
void dnn_aa_backward(struct dnn_layer *l, const struct dnn_run *run,
                     void (*backward)(struct dnn_layer *, const struct dnn_run *));

/* AlexeyAB's shortcut (layer_shortcut_multi.c): used when spec has more than one source or
 * learned weights; the ops of dnn_shortcut_ops for that form. init and update do
 * nothing on a layer without weights. */
enum dnn_status dnn_shortcut_multi_setup(struct dnn_layer *l, const struct dnn_network *net);
void dnn_shortcut_multi_init(struct dnn_layer *l, struct dnn_rng *rng);
void dnn_shortcut_multi_forward(struct dnn_layer *l, const struct dnn_run *run);
void dnn_shortcut_multi_backward(struct dnn_layer *l, const struct dnn_run *run);
void dnn_shortcut_multi_update(struct dnn_layer *l, const struct dnn_update_args *a);
extern const struct dnn_layer_ops dnn_route_ops;
extern const struct dnn_layer_ops dnn_crop_ops;
extern const struct dnn_layer_ops dnn_reorg_ops;
extern const struct dnn_layer_ops dnn_scale_channels_ops;
extern const struct dnn_layer_ops dnn_upsample_ops;
extern const struct dnn_layer_ops dnn_activation_ops;
extern const struct dnn_layer_ops dnn_sam_ops;
extern const struct dnn_layer_ops dnn_l2norm_ops;
extern const struct dnn_layer_ops dnn_normalization_ops;
extern const struct dnn_layer_ops dnn_local_ops;

#endif
