/*
 * layer_convolutional.c - darknet's [convolutional] layer: im2col + gemm per image
 * and group (or per group of images, conv_lower.c), optional batch normalisation, then the
 * activation.
 *
 * Weights are (filters, c/groups, size, size); group g of filters sees channels
 * [g*c/groups, (g+1)*c/groups) of the input and writes output channels
 * [g*filters/groups, (g+1)*filters/groups).
 */
#include "dnn/conv_lower.h"
#include "dnn/conv_sliding.h"
#include "dnn/conv_winograd.h"

#include <limits.h>

/* A dilated layer keeps darknet's output size but im2col's padding is pad*dilation (as
 * AlexeyAB's): true when both give the same extent, so that the columns im2col writes are
 * the ones gemm reads. Sizes are small (the caller checked the plain extent). */
static bool dilated_extent_agrees(int in, int out, const struct dnn_layer_spec *s, int d)
{
    const long long pad = (long long)s->pad * d;
    const long long span = (long long)d * (s->size - 1) + 1;
    if (pad > INT_MAX / 4 || span > INT_MAX / 4 || in > INT_MAX / 4)
        return false;
    const long long ext = ((long long)in + 2 * pad - span) / s->stride + 1;
    return in + 2 * pad - span >= 0 && ext == out;
}

/* Output extent of one dimension by darknet's formula (C division, truncating), or -1
 * when it is not positive or the padded extent would overflow im2col's int arithmetic. */
static int conv_extent(int in, int size, int stride, int pad)
{
    const long long padded = (long long)in + 2LL * pad;
    if (padded > INT_MAX)
        return -1;
    const long long out = (padded - size) / stride + 1;
    return out <= 0 ? -1 : (int)out;
}

static enum dnn_status conv_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    const struct dnn_layer_spec *s = &l->spec;
    if (s->filters <= 0 || s->size <= 0 || s->stride <= 0 || s->pad < 0 || s->groups <= 0 ||
        s->dilation < 0)
        return DNN_ERR_INVALID;
    if (l->c % s->groups != 0 || s->filters % s->groups != 0)
        return DNN_ERR_SHAPE;
    l->out_h = conv_extent(l->h, s->size, s->stride, s->pad);
    l->out_w = conv_extent(l->w, s->size, s->stride, s->pad);
    l->out_c = s->filters;
    if (l->out_h <= 0 || l->out_w <= 0)
        return DNN_ERR_SHAPE;
    const int dil = dnn_conv_dilation(l);
    if (dil > 1 && (!dilated_extent_agrees(l->h, l->out_h, s, dil) ||
                    !dilated_extent_agrees(l->w, l->out_w, s, dil)))
        return DNN_ERR_SHAPE;

    /* gemm takes int sizes: filters/groups x (size*size*c/groups) x (out_h*out_w). */
    size_t kk = 0, k = 0, spatial = 0, nweights = 0, ws = 0;
    if (!dnn_mul_size((size_t)s->size, (size_t)s->size, &kk) ||
        !dnn_mul_size(kk, (size_t)(l->c / s->groups), &k) ||
        !dnn_mul_size((size_t)l->out_h, (size_t)l->out_w, &spatial) ||
        !dnn_mul_size(k, (size_t)s->filters, &nweights) || !dnn_mul_size(k, spatial, &ws) ||
        k > INT_MAX || spatial > INT_MAX)
        return DNN_ERR_OVERFLOW;
    l->nweights = nweights;
    l->nbiases = (size_t)s->filters;
    /* The column matrix of one image and group; backward reuses it for the input delta.
     * A layer on the Winograd path lowers no columns but keeps at least that figure for its
     * blocks: a smaller one would change the secure-memory figure of every partition that
     * holds such a layer, a change of its own. */
    l->workspace_floats = dnn_conv_direct(l) ? 0 : ws;
    if (dnn_conv_winograd_applies(l)) {
        const size_t wino = dnn_conv_winograd_scratch_floats(l);
        if (wino == 0)
            return DNN_ERR_OVERFLOW;
        if (wino > l->workspace_floats)
            l->workspace_floats = wino;
    }

    /* .weights order: biases, [scales, rolling_mean, rolling_variance], weights. */
    enum dnn_status st = dnn_layer_add_param(l, "biases", &l->biases, &l->bias_updates, l->nbiases);
    if (st == DNN_OK && s->batch_normalize)
        st = dnn_bn_setup(l);
    if (st == DNN_OK)
        st = dnn_layer_add_param(l, "weights", &l->weights, &l->weight_updates, l->nweights);
    if (st == DNN_OK)
        st = dnn_layer_request_act_input(l);
    return st;
}

/* darknet: weights ~ sqrt(2 / fan_in) * N(0, 1), biases 0, BN scales 1. */
static void conv_init(struct dnn_layer *l, struct dnn_rng *rng)
{
    const int fan_in = l->spec.size * l->spec.size * (l->c / l->spec.groups);
    const float scale = dnn_sqrtf(2.0f / (float)fan_in);
    for (size_t i = 0; i < l->nweights; i++)
        l->weights[i] = scale * dnn_rng_normal(rng);
    dnn_fill(l->biases, l->nbiases, 0);
    if (l->spec.batch_normalize)
        dnn_bn_init(l);
}

/* The column matrix of one image and group: the input itself, or im2col in workspace. */
static const float *conv_columns(const struct dnn_layer *l, const struct dnn_parallel *par,
                                 const float *im, float *workspace, const struct dnn_conv_dims *d)
{
    if (dnn_conv_direct(l))
        return im;
    const int dil = dnn_conv_dilation(l);
    dnn_im2col_par(par, im, d->cg, l->h, l->w, l->spec.size, l->spec.stride, l->spec.pad * dil, dil,
                   workspace);
    return workspace;
}

/* Where the forward product of (image b, group g) reads its columns, rows *ld apart: the
 * layer's kept columns in a training pass that keeps them (im2col writes them there once for
 * the backward pass too), else conv_columns. */
static const float *conv_forward_columns(const struct dnn_layer *l, const struct dnn_run *run,
                                         const struct dnn_parallel *par, float *workspace,
                                         const struct dnn_conv_dims *d, size_t b, size_t g, int *ld)
{
    const float *im = run->input + (b * (size_t)l->spec.groups + g) * d->in_size;
    if (!dnn_conv_cache_fills(l, run)) {
        *ld = d->n;
        return conv_columns(l, par, im, workspace, d);
    }
    float *cols = dnn_conv_cache_at(l, d, b, g);
    const int dil = dnn_conv_dilation(l);
    *ld = (int)dnn_conv_cache_ld(l); /* an int: dnn_network_set_column_cache checked */
    dnn_im2col_par_ld(par, im, d->cg, l->h, l->w, l->spec.size, l->spec.stride, l->spec.pad * dil,
                      dil, cols, (size_t)*ld);
    return cols;
}

/* Images [b0, b1) of a forward pass: im2col and gemm per image and group, serial, with the
 * given scratch. Where no column matrix is kept and filters are many enough
 * (dnn_conv_packs_from_image), the GEMM packs the columns straight from the image
 * (dnn_conv_forward_src): the same values, so the same bits, without writing the column
 * matrix and reading it back (a tenth of VGG-7's inference). */
static void conv_forward_images(struct dnn_layer *l, const struct dnn_run *run,
                                const struct dnn_parallel *par, float *workspace, int b0, int b1)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const int groups = l->spec.groups;
    const size_t wsize = l->nweights / (size_t)groups;
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    for (int b = b0; b < b1; b++) {
        for (int g = 0; g < groups; g++) {
            const size_t bg = (size_t)b * (size_t)groups + (size_t)g;
            if (dnn_conv_packs_from_image(l, dnn_conv_cache_fills(l, run))) {
                dnn_conv_forward_src(l, par, run->input + bg * d.in_size, 0, 1, g, workspace,
                                     workspace ? l->workspace_floats : 0, l->output + bg * out_size,
                                     d.n);
                continue;
            }
            int ld = 0;
            const float *cols =
                conv_forward_columns(l, run, par, workspace, &d, (size_t)b, (size_t)g, &ld);
            /* output(m, n) = weights(m, k) * cols(k, n) */
            dnn_gemm_par(par, false, false, d.m, d.n, d.k, 1, l->weights + (size_t)g * wsize, d.k,
                         cols, ld, 0, l->output + bg * out_size, d.n);
        }
    }
}

/* Images [b0, b1) of the input delta: cols_delta(k, n) = weights(m, k)^T * delta(m, n), then
 * folded back onto the image and added. darknet's 1x1 path overwrites the input delta here
 * (beta 0); adding keeps what other layers (route, shortcut) put there. */
static void conv_input_delta_images(struct dnn_layer *l, const struct dnn_run *run,
                                    const struct dnn_parallel *par, float *workspace, int b0,
                                    int b1)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const int groups = l->spec.groups;
    const size_t wsize = l->nweights / (size_t)groups;
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    for (int b = b0; b < b1; b++) {
        for (int g = 0; g < groups; g++) {
            const size_t bg = (size_t)b * (size_t)groups + (size_t)g;
            const float *delta = l->delta + bg * out_size;
            const float *w = l->weights + (size_t)g * wsize;
            float *in_delta = run->input_delta + bg * d.in_size;
            if (dnn_conv_direct(l)) {
                dnn_gemm_par(par, true, false, d.k, d.n, d.m, 1, w, d.k, delta, d.n, 1, in_delta,
                             d.n);
            } else {
                dnn_gemm_par(par, true, false, d.k, d.n, d.m, 1, w, d.k, delta, d.n, 0, workspace,
                             d.n);
                const int dil = dnn_conv_dilation(l);
                dnn_col2im_par(par, workspace, d.cg, l->h, l->w, l->spec.size, l->spec.stride,
                               l->spec.pad * dil, dil, in_delta);
            }
        }
    }
}

/* A loop over the images of a batch split into run->par_slots tasks of whole images, each
 * with a scratch of its own: every image's outputs are computed as one thread would. */
struct conv_images {
    struct dnn_layer *l;
    const struct dnn_run *run;
    void (*images)(struct dnn_layer *l, const struct dnn_run *run, const struct dnn_parallel *par,
                   float *workspace, int b0, int b1);
    int tasks;
};

static void conv_images_task(void *arg, size_t t)
{
    const struct conv_images *c = arg;
    const int batch = c->l->batch;
    float *ws =
        c->run->par_workspace ? c->run->par_workspace + t * c->run->net->workspace_floats : NULL;
    /* Serial inside: the tasks already keep every thread busy. */
    c->images(c->l, c->run, NULL, ws, (int)dnn_parallel_first((size_t)batch, (size_t)c->tasks, t),
              (int)dnn_parallel_first((size_t)batch, (size_t)c->tasks, t + 1));
}

/* Runs images over the batch: split among the threads when there are slots for it, else one
 * image after another with each image's work split. */
static void conv_over_images(struct dnn_layer *l, const struct dnn_run *run,
                             void (*images)(struct dnn_layer *, const struct dnn_run *,
                                            const struct dnn_parallel *, float *, int, int),
                             bool needs_workspace)
{
    size_t tasks = run->par_slots < (size_t)l->batch ? run->par_slots : (size_t)l->batch;
    if (tasks < 2 || !run->net || (!run->par_workspace && needs_workspace)) {
        images(l, run, run->par, run->workspace, 0, l->batch);
        return;
    }
    struct conv_images c = {l, run, images, (int)tasks};
    dnn_parallel_for(run->par, tasks, conv_images_task, &c);
}

/* Floats of the scratch a pass of layer l gets in run: the network's (the largest layer's)
 * or, for a layer run alone, its own. */
static size_t conv_scratch_floats(const struct dnn_layer *l, const struct dnn_run *run)
{
    return run->net ? run->net->workspace_floats : l->workspace_floats;
}

/* The network's buffer for layer l's transformed filters, when it has one large enough. */
static float *conv_wino_u(const struct dnn_layer *l, const struct dnn_run *run)
{
    const struct dnn_network *net = run->net;
    const size_t need = (size_t)DNN_WINO_XI * (size_t)l->spec.filters * (size_t)l->c;
    return net && net->wino_u && net->wino_u_floats >= need ? net->wino_u : NULL;
}

/* The Winograd convolution of layer l with all its filters, for the forward pass or the
 * input delta (@turned); they are transformed (into the network's buffer) by
 * conv_wino_transform once per pass, before its loop over images. */
static struct dnn_wino_conv conv_wino_of(const struct dnn_layer *l, const struct dnn_run *run,
                                         bool turned)
{
    const float *u = conv_wino_u(l, run);
    return (struct dnn_wino_conv){.c = l->c,
                                  .h = l->h,
                                  .w = l->w,
                                  .k = l->spec.filters,
                                  .weights = l->weights,
                                  .u = turned ? NULL : u,
                                  .ut = turned ? u : NULL};
}

static void conv_wino_transform(const struct dnn_layer *l, const struct dnn_run *run, bool turned)
{
    float *u = conv_wino_u(l, run);
    if (u && turned)
        dnn_wino_filter_transform_turned_par(run->par, l->weights, l->spec.filters, l->c, u);
    else if (u)
        dnn_wino_filter_transform_par(run->par, l->weights, l->spec.filters, l->c, u);
}

/* Images [b0, b1) of a forward pass by Winograd's F(2x2, 3x3) (conv_winograd.h), in the
 * given scratch. Such a layer keeps no columns (conv_cache.c): its weight gradient takes the
 * same path. */
static void conv_forward_wino_images(struct dnn_layer *l, const struct dnn_run *run,
                                     const struct dnn_parallel *par, float *workspace, int b0,
                                     int b1)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    const struct dnn_wino_conv cv = conv_wino_of(l, run, false);
    dnn_wino_forward(&cv, par, run->input + (size_t)b0 * d.in_size, d.in_size, b1 - b0,
                     l->output + (size_t)b0 * out_size, out_size, workspace,
                     conv_scratch_floats(l, run));
}

/* Images [b0, b1) of the input delta by Winograd's F(2x2, 3x3): the output delta convolved
 * with the filters turned, added into the input delta. */
static void conv_input_delta_wino_images(struct dnn_layer *l, const struct dnn_run *run,
                                         const struct dnn_parallel *par, float *workspace, int b0,
                                         int b1)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    const struct dnn_wino_conv cv = conv_wino_of(l, run, true);
    dnn_wino_input_delta(&cv, par, l->delta + (size_t)b0 * out_size, out_size, b1 - b0,
                         run->input_delta + (size_t)b0 * d.in_size, d.in_size, workspace,
                         conv_scratch_floats(l, run));
}

static void conv_input_delta_wino(struct dnn_layer *l, const struct dnn_run *run)
{
    /* the network's buffer holds the filters of the last layer that ran forward */
    conv_wino_transform(l, run, true);
    conv_over_images(l, run, conv_input_delta_wino_images, true);
}

/* Images [b0, b1) of a forward pass through the sliding window, its padded image in the
 * given scratch. */
static void conv_forward_sliding_images(struct dnn_layer *l, const struct dnn_run *run,
                                        const struct dnn_parallel *par, float *workspace, int b0,
                                        int b1)
{
    (void)par;
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    for (int b = b0; b < b1; b++)
        dnn_conv_sliding_forward(l, run->input + (size_t)b * d.in_size, workspace,
                                 l->output + (size_t)b * out_size);
}

static void conv_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    if (dnn_conv_winograd_applies(l)) {
        conv_wino_transform(l, run, false);
        conv_over_images(l, run, conv_forward_wino_images, true);
    } else if (dnn_conv_sliding_applies(l)) {
        /* A few filters: the sliding window (such layers keep no columns, conv_cache.c). */
        conv_over_images(l, run, conv_forward_sliding_images, true);
    } else {
        const int lowered = dnn_conv_lower_images(l, run->net, false);
        if (lowered > 1)
            dnn_conv_lowered_forward(l, run, lowered);
        else
            conv_over_images(l, run, conv_forward_images,
                             !dnn_conv_direct(l) && !dnn_conv_cache_fills(l, run));
    }
    /* what the kept columns now hold, for the backward pass */
    l->col_cache_of = dnn_conv_cache_fills(l, run) ? run->input : NULL;
    if (l->spec.batch_normalize)
        dnn_bn_forward(l, run->train, run->par);
    else
        dnn_add_bias(l->output, l->biases, l->batch, l->out_c, d.n);
    dnn_activate_array_keep_par(run->par, l->output, l->outputs * (size_t)l->batch,
                                l->spec.activation, l->act_input);
}

static int conv_min(int a, int b)
{
    return a < b ? a : b;
}

/*
 * dw(rows, cols) += delta(rows, n) * cols(cols, n)^T, dw with row stride ldw. When the block
 * has more columns than rows (k > m: every layer but those with few input channels) it is
 * computed as its transpose, cols * delta^T, stored transposed: the same terms in the same
 * order, so the same bits. The packed operand is then delta, used by cols / 6 tiles, rather
 * than cols, used by rows / 6; cols is read in place. `make bench-gemm` (C^T / NT): 6x75x784
 * 1.9, 128x1152x1024 1.4, 512x4608x64 1.07, 256x1152x256 0.95, but 128x27x1024 (k < m) 0.66.
 */
void dnn_conv_weight_product(const struct dnn_parallel *par, int rows, int cols_n, int n,
                             const float *delta, int ldd, const float *cols, int ldc, float *dw,
                             int ldw)
{
    if (cols_n > rows)
        dnn_gemm_par_tc(par, false, true, cols_n, rows, n, 1, cols, ldc, delta, ldd, 1, dw, ldw);
    else
        dnn_gemm_par(par, false, true, rows, cols_n, n, 1, delta, ldd, cols, ldc, 1, dw, ldw);
}

/* weight_updates(m, k) += delta(m, n) * cols(k, n)^T for (image, group) pairs [bg0, bg1), in
 * that order, on the rows [i0, i1) and columns [j0, j1) of weight_updates only; cols_of gives
 * each pair's column matrix, rows ldc floats apart. */
static void conv_weight_block(struct dnn_layer *l, size_t bg0, size_t bg1,
                              const float *(*cols_of)(void *, size_t), void *ctx, int ldc, int i0,
                              int i1, int j0, int j1)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t groups = (size_t)l->spec.groups;
    const size_t wsize = l->nweights / groups;
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    for (size_t bg = bg0; bg < bg1; bg++) {
        const float *delta = l->delta + bg * out_size + (size_t)i0 * (size_t)d.n;
        const float *cols = cols_of(ctx, bg) + (size_t)j0 * (size_t)ldc;
        float *wu = l->weight_updates + (bg % groups) * wsize + (size_t)i0 * (size_t)d.k + j0;
        dnn_conv_weight_product(NULL, i1 - i0, j1 - j0, d.n, delta, d.n, cols, ldc, wu, d.k);
    }
}

/* Units of weight_updates the tasks of the weight gradient share out: 24 rows (a multiple of
 * every GEMM kernel's row panel) by 64 columns, as dnn_gemm_par cuts C. A task takes a
 * rectangle of units; each call to dnn_gemm packs its panels again, so there are only
 * CONV_WG_TASKS_PER_THREAD rectangles per thread. Where the cuts fall changes no bit: dnn_gemm
 * computes each element of C from its own row and column alone. */
#define CONV_WG_ROWS 24
#define CONV_WG_COLS 64
#define CONV_WG_TASKS_PER_THREAD 2

/* The weight gradient over a chunk of (image, group) pairs whose column matrices sit in the
 * per-task scratches: phase one builds them, one pair a task; phase two gives every task
 * whole blocks of weight_updates, summed over the chunk's pairs in order. Each element of
 * weight_updates thus receives the same terms in the same order as the serial loop. */
struct conv_wg_chunk {
    struct dnn_layer *l;
    const struct dnn_run *run;
    struct dnn_conv_dims d;
    size_t bg0, bg1;       /* the chunk's pairs */
    bool kept;             /* the columns are the layer's kept ones (col_cache) */
    int ldc;               /* floats between rows of a pair's columns */
    int units_i, units_j;  /* units of CONV_WG_ROWS x CONV_WG_COLS in weight_updates */
    int tm, tn, per_group; /* a grid of tm x tn rectangles of units per group */
};

static const float *conv_wg_cols(void *arg, size_t bg)
{
    const struct conv_wg_chunk *c = arg;
    if (c->kept) {
        const size_t groups = (size_t)c->l->spec.groups;
        return dnn_conv_cache_at(c->l, &c->d, bg / groups, bg % groups);
    }
    if (dnn_conv_direct(c->l))
        return c->run->input + bg * c->d.in_size;
    return c->run->par_workspace + (bg - c->bg0) * c->run->net->workspace_floats;
}

static void conv_wg_im2col_task(void *arg, size_t t)
{
    const struct conv_wg_chunk *c = arg;
    const size_t bg = c->bg0 + t;
    conv_columns(c->l, NULL, c->run->input + bg * c->d.in_size,
                 c->run->par_workspace + t * c->run->net->workspace_floats, &c->d);
}

/* The first of `units` units in part p of `parts`, the larger parts first (dnn_parallel_first:
 * 18 units in 4 parts as 5,5,4,4 rather than 4,5,4,5, which left one of 2 threads 10 units
 * against 8). */
static int conv_wg_unit(int units, int parts, int p)
{
    return (int)dnn_parallel_first((size_t)units, (size_t)parts, (size_t)p);
}

static void conv_wg_block_task(void *arg, size_t t)
{
    struct conv_wg_chunk *c = arg;
    const size_t groups = (size_t)c->l->spec.groups;
    const size_t g = t / (size_t)c->per_group, u = t % (size_t)c->per_group;
    const int bi = (int)(u / (size_t)c->tn), bj = (int)(u % (size_t)c->tn);
    const int i0 = conv_wg_unit(c->units_i, c->tm, bi) * CONV_WG_ROWS;
    const int j0 = conv_wg_unit(c->units_j, c->tn, bj) * CONV_WG_COLS;
    const int i1 = conv_min(conv_wg_unit(c->units_i, c->tm, bi + 1) * CONV_WG_ROWS, c->d.m);
    const int j1 = conv_min(conv_wg_unit(c->units_j, c->tn, bj + 1) * CONV_WG_COLS, c->d.k);
    /* this group's pairs of the chunk, in order */
    size_t first = c->bg0 + (g + groups - c->bg0 % groups) % groups;
    for (size_t bg = first; bg < c->bg1; bg += groups)
        conv_weight_block(c->l, bg, bg + 1, conv_wg_cols, c, c->ldc, i0, i1, j0, j1);
}

/* The weight gradient: images in order for every element of weight_updates. With threads
 * and per-task scratch, chunks of par_slots pairs; otherwise one pair at a time with each
 * product split by dnn_gemm_par (the same terms in the same order). */
static void conv_weight_gradient(struct dnn_layer *l, const struct dnn_run *run)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t groups = (size_t)l->spec.groups, pairs = (size_t)l->batch * groups;
    const size_t wsize = l->nweights / groups;
    const size_t out_size = (size_t)d.m * (size_t)d.n;
    /* kept columns, or a direct convolution's input, need no lowering and no scratch */
    const bool kept = dnn_conv_cache_holds(l, run), in_place = kept || dnn_conv_direct(l);
    const int ldc = kept ? (int)dnn_conv_cache_ld(l) : d.n;
    if (run->par_slots < 2 || !run->net || (!run->par_workspace && !in_place)) {
        for (size_t bg = 0; bg < pairs; bg++) {
            const float *cols =
                kept ? dnn_conv_cache_at(l, &d, bg / groups, bg % groups)
                     : conv_columns(l, run->par, run->input + bg * d.in_size, run->workspace, &d);
            dnn_conv_weight_product(run->par, d.m, d.k, d.n, l->delta + bg * out_size, d.n, cols,
                                    ldc, l->weight_updates + (bg % groups) * wsize, d.k);
        }
        return;
    }
    struct conv_wg_chunk c = {.l = l, .run = run, .d = d, .kept = kept, .ldc = ldc};
    c.units_i = (d.m + CONV_WG_ROWS - 1) / CONV_WG_ROWS;
    c.units_j = (d.k + CONV_WG_COLS - 1) / CONV_WG_COLS;
    /* columns first (a task then packs only its own columns of the column matrices) */
    const int want = (int)dnn_parallel_threads(run->par) * CONV_WG_TASKS_PER_THREAD;
    c.tn = conv_min(c.units_j, want);
    c.tm = conv_min(c.units_i, want / c.tn > 1 ? want / c.tn : 1);
    c.per_group = c.tm * c.tn;
    /* columns read in place (kept, or a direct convolution's input): any chunk will do, the
     * whole batch best */
    const size_t chunk = in_place ? pairs : run->par_slots;
    for (c.bg0 = 0; c.bg0 < pairs; c.bg0 = c.bg1) {
        c.bg1 = c.bg0 + chunk < pairs ? c.bg0 + chunk : pairs;
        if (!in_place)
            dnn_parallel_for(run->par, c.bg1 - c.bg0, conv_wg_im2col_task, &c);
        dnn_parallel_for(run->par, groups * (size_t)c.per_group, conv_wg_block_task, &c);
    }
}

/* The weight gradient by Winograd's F(2x2, 3x3) (conv_winograd_grad.c), its sums in the
 * network's buffer of transformed filters when it has one (the input delta transforms the
 * filters into it afresh afterwards). */
static void conv_weight_gradient_wino(struct dnn_layer *l, const struct dnn_run *run)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const struct dnn_wino_conv cv = {.c = l->c, .h = l->h, .w = l->w, .k = l->spec.filters};
    dnn_wino_weight_gradient(&cv, run->par, run->input, d.in_size, l->delta,
                             (size_t)d.m * (size_t)d.n, l->batch, l->weight_updates,
                             conv_wino_u(l, run), run->workspace, conv_scratch_floats(l, run));
}

static void conv_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);

    dnn_gradient_array_keep_par(run->par, l->output, l->act_input, l->outputs * (size_t)l->batch,
                                l->spec.activation, l->delta);
    if (l->spec.batch_normalize)
        dnn_bn_backward(l, run->par);
    else
        dnn_backward_bias(l->bias_updates, l->delta, l->batch, l->out_c, d.n);

    if (dnn_conv_winograd_applies(l)) {
        conv_weight_gradient_wino(l, run);
        if (run->input_delta)
            conv_input_delta_wino(l, run);
        return;
    }
    const int lowered = dnn_conv_lower_images(l, run->net, true);
    if (lowered > 1) {
        dnn_conv_lowered_backward(l, run, lowered);
        return;
    }
    conv_weight_gradient(l, run);
    /* Each image's input delta is its own: the images split among the threads. */
    if (run->input_delta)
        conv_over_images(l, run, conv_input_delta_images, !dnn_conv_direct(l));
}

/* ------------------------------------------------ streamed tiles (dnn_tile_*, tiles.c)
 * Filters [row0, row0 + rows) of a layer with one group, from a tile's slices. A filter's
 * output channel is rows of the product weights(m, k) * cols(k, n); dnn_gemm computes each
 * element of C from its own row and column alone, terms in increasing k, so a block of
 * filters gets the bits of the whole layer's product. */

enum dnn_status dnn_convolutional_forward_rows(struct dnn_layer *l, const float *input, bool train,
                                               const struct dnn_tile_params *p, size_t row0,
                                               size_t rows, float *workspace)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t out_size = (size_t)l->out_c * (size_t)d.n, at = row0 * (size_t)d.n;
    if (!dnn_conv_direct(l) && !workspace)
        return DNN_ERR_INVALID;
    if (dnn_conv_winograd_applies(l)) {
        /* the tile's filters, transformed per tile: rows of the whole layer's U and M */
        const struct dnn_wino_conv cv = {
            .c = l->c, .h = l->h, .w = l->w, .k = (int)rows, .weights = p->weights};
        dnn_wino_forward(&cv, NULL, input, d.in_size, l->batch, l->output + at, out_size, workspace,
                         l->workspace_floats);
    } else {
        for (int b = 0; b < l->batch; b++) {
            /* the same columns for every tile: im2col again per tile costs time, not memory */
            const float *cols = conv_columns(l, NULL, input + (size_t)b * d.in_size, workspace, &d);
            /* output(rows, n) = weights(rows, k) * cols(k, n) */
            dnn_gemm(false, false, (int)rows, d.n, d.k, 1, p->weights, d.k, cols, d.n, 0,
                     l->output + (size_t)b * out_size + at, d.n);
        }
    }
    if (l->spec.batch_normalize)
        dnn_bn_forward_rows(l, train, p, row0, rows);
    for (int b = 0; b < l->batch; b++) {
        float *y = l->output + (size_t)b * out_size + at;
        if (!l->spec.batch_normalize)
            dnn_add_bias(y, p->biases, 1, (int)rows, d.n);
        dnn_activate_array_keep(y, rows * (size_t)d.n, l->spec.activation,
                                l->act_input ? l->act_input + (size_t)b * out_size + at : NULL);
    }
    return DNN_OK;
}

/* The tile's share of the input delta (a Winograd layer: of its transform, summed over the
 * tiles in order of filters as the whole layer's product sums them, and transformed back
 * after the last tile). Else cols_delta(k, n) += weights(rows, k)^T * delta(rows, n)
 * per image, straight into the input delta for a direct (1x1) layer, else into @delta_cols
 * (the first tile overwrites it), folded onto the image after the last tile. Folding each
 * tile's partial columns would add every pixel's terms in another order than the layer's
 * own backward, which folds complete columns. */
static void conv_rows_input_delta(struct dnn_layer *l, float *input_delta, const float *weights,
                                  size_t row0, size_t rows, bool first, bool last, float *workspace,
                                  float *delta_cols)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t out_size = (size_t)l->out_c * (size_t)d.n, at = row0 * (size_t)d.n;
    const size_t cols_size = (size_t)d.k * (size_t)d.n;
    if (dnn_conv_winograd_applies(l)) {
        /* the tile's share of each image's transformed input delta (16, c, tiles), summed
         * over the tiles in order of filters, as the whole layer's; back after the last */
        const size_t acc = dnn_wino_delta_acc_floats(l->c, l->h, l->w);
        const struct dnn_wino_conv cv = {
            .c = l->c, .h = l->h, .w = l->w, .k = (int)rows, .weights = weights};
        dnn_wino_delta_accumulate(&cv, l->delta + at, out_size, l->batch, first, delta_cols, acc,
                                  workspace, l->workspace_floats);
        if (last)
            dnn_wino_delta_fold(l->c, l->h, l->w, delta_cols, acc, l->batch, input_delta,
                                d.in_size);
        return;
    }
    for (int b = 0; b < l->batch; b++) {
        const float *delta = l->delta + (size_t)b * out_size + at;
        if (dnn_conv_direct(l))
            dnn_gemm(true, false, d.k, d.n, (int)rows, 1, weights, d.k, delta, d.n, 1,
                     input_delta + (size_t)b * d.in_size, d.n);
        else
            dnn_gemm(true, false, d.k, d.n, (int)rows, 1, weights, d.k, delta, d.n, first ? 0 : 1,
                     delta_cols + (size_t)b * cols_size, d.n);
    }
    if (dnn_conv_direct(l) || !last)
        return;
    const int dil = dnn_conv_dilation(l);
    for (int b = 0; b < l->batch; b++)
        dnn_col2im_par(NULL, delta_cols + (size_t)b * cols_size, d.cg, l->h, l->w, l->spec.size,
                       l->spec.stride, l->spec.pad * dil, dil, input_delta + (size_t)b * d.in_size);
}

enum dnn_status dnn_convolutional_backward_rows(struct dnn_layer *l, const float *input,
                                                float *input_delta, const struct dnn_tile_params *p,
                                                size_t row0, size_t rows, bool first, bool last,
                                                float *workspace, float *delta_cols)
{
    const struct dnn_conv_dims d = dnn_conv_dims_of(l);
    const size_t out_size = (size_t)l->out_c * (size_t)d.n, at = row0 * (size_t)d.n;
    if (!dnn_conv_direct(l) && (!workspace || (input_delta && !delta_cols)))
        return DNN_ERR_INVALID;
    for (int b = 0; b < l->batch; b++) {
        const size_t o = (size_t)b * out_size + at;
        dnn_gradient_array_keep(l->output + o, l->act_input ? l->act_input + o : NULL,
                                rows * (size_t)d.n, l->spec.activation, l->delta + o);
    }
    if (l->spec.batch_normalize) {
        dnn_bn_backward_rows(l, p, row0, rows);
    } else {
        /* dnn_backward_bias's order: images, then channels */
        for (int b = 0; b < l->batch; b++)
            dnn_backward_bias(p->bias_updates, l->delta + (size_t)b * out_size + at, 1, (int)rows,
                              d.n);
    }
    if (dnn_conv_winograd_applies(l)) {
        /* the tile's rows of the whole layer's gradient (conv_winograd.h) */
        const struct dnn_wino_conv cv = {.c = l->c, .h = l->h, .w = l->w, .k = (int)rows};
        dnn_wino_weight_gradient(&cv, NULL, input, d.in_size, l->delta + at, out_size, l->batch,
                                 p->weight_updates, NULL, workspace, l->workspace_floats);
    } else {
        /* weight_updates(rows, k) += delta(rows, n) * cols(k, n)^T, images in order */
        for (int b = 0; b < l->batch; b++) {
            const float *cols = conv_columns(l, NULL, input + (size_t)b * d.in_size, workspace, &d);
            dnn_conv_weight_product(NULL, (int)rows, d.k, d.n, l->delta + (size_t)b * out_size + at,
                                    d.n, cols, d.n, p->weight_updates, d.k);
        }
    }
    if (input_delta)
        conv_rows_input_delta(l, input_delta, p->weights, row0, rows, first, last, workspace,
                              delta_cols);
    return DNN_OK;
}

/* darknet's update_convolutional_layer: no decay on biases and scales. */
static void conv_update(struct dnn_layer *l, const struct dnn_update_args *a)
{
    dnn_sgd_step(l->biases, l->bias_updates, l->nbiases, a, false);
    if (l->spec.batch_normalize)
        dnn_sgd_step(l->bn.scales, l->bn.scale_updates, (size_t)l->out_c, a, false);
    dnn_sgd_step(l->weights, l->weight_updates, l->nweights, a, true);
}

/* antialiasing: the layer above at stride 1, then antialias.c's blur */
static enum dnn_status conv_setup_aa(struct dnn_layer *l, const struct dnn_network *net)
{
    return l->spec.antialiasing ? dnn_aa_setup(l, net, conv_setup) : conv_setup(l, net);
}

static void conv_forward_aa(struct dnn_layer *l, const struct dnn_run *run)
{
    if (l->spec.antialiasing)
        dnn_aa_forward(l, run, conv_forward);
    else
        conv_forward(l, run);
}

static void conv_backward_aa(struct dnn_layer *l, const struct dnn_run *run)
{
    if (l->spec.antialiasing)
        dnn_aa_backward(l, run, conv_backward);
    else
        conv_backward(l, run);
}

const struct dnn_layer_ops dnn_convolutional_ops = {
    .name = "conv",
    .setup = conv_setup_aa,
    .init = conv_init,
    .forward = conv_forward_aa,
    .backward = conv_backward_aa,
    .update = conv_update,
};
