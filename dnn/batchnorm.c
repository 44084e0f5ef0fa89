/*
 * batchnorm.c - batch normalisation as darknet does it, shared by the convolutional
 * and connected layers (batch_normalize=1), and the [batchnorm] layer itself.
 *
 * Statistics are per output channel over (batch, out_h*out_w). Training normalises
 * with the batch mean and the unbiased batch variance (divided by N - 1) and moves the
 * rolling statistics 1% towards them; inference normalises with the rolling
 * statistics. Then y = scales * x_norm + biases.
 *
 * Darknet's formulas are kept with one exception. Its normalize_delta_cpu
 * differentiates the variance as if it were a mean over N values, although the
 * forward divides by N - 1, so its input gradient is off by a term of relative size
 * about 1/N; finite-difference checks fail by 4e-2 (conv, N = 50) to 1.4e-1
 * (connected, N = 16) with it. Here that term divides by N - 1, the exact derivative
 * of the forward, and the checks pass within 2e-3. What remains (up to 1.1e-3 in
 * those checks) is darknet's other mismatch, kept because it guards a zero variance:
 * the forward divides by sqrt(var) + 1e-6, the backward by sqrt(var + 1e-5).
 */
#include "dnn/dnn_internal.h"
#include "dnn/vec4.h"

/* darknet's epsilons: forward (normalize_cpu) and backward (*_delta_cpu). */
#define BN_EPS_FORWARD .000001f
#define BN_EPS_BACKWARD .00001f

/* Channels [f0, f1) of a BN pass: the unit of a task. */
struct bn_range {
    int f0, f1;
};

/* The per-channel tensors a pass reads and moves: the layer's own (p0 = 0), or a streamed
 * tile's slices, whose element f - p0 is channel f's. The batch statistics and saved
 * activations (l->bn.mean, x, ...) are always the layer's resident buffers. */
struct bn_tensors {
    float *scales, *biases, *rolling_mean, *rolling_variance, *scale_updates, *bias_updates;
    int p0;
};

/*
 * Each channel's sums below are one chain of additions in darknet's order (images, then
 * pixels): a float add waits for the previous one, some 3-4 cycles. Channels are summed
 * BN_GROUP at a time, their chains side by side, so the core overlaps them; each channel's
 * own order, and so every bit, stays darknet's. g is BN_GROUP or 1, a constant once inlined.
 */
#define BN_GROUP 4
#define BN_INLINE static inline __attribute__((always_inline))

/* Channels f .. f+g-1 of bn_mean. */
BN_INLINE void bn_mean_group(const float *x, int batch, int c, int spatial, int f, int g,
                             float scale, float *mean)
{
    float sum[BN_GROUP] = {0};
    for (int b = 0; b < batch; b++) {
        const float *xf = x + ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial;
        for (int k = 0; k < spatial; k++)
            for (int j = 0; j < g; j++)
                sum[j] += xf[(size_t)j * (size_t)spatial + (size_t)k];
    }
    for (int j = 0; j < g; j++)
        mean[f + j] = sum[j] * scale;
}

/* Per channel: mean[f] over (batch, spatial), darknet's mean_cpu. */
static void bn_mean(const float *x, int batch, int c, int spatial, struct bn_range r, float *mean)
{
    const float scale = 1.0f / (float)(batch * spatial);
    int f = r.f0;
    for (; f + BN_GROUP <= r.f1; f += BN_GROUP)
        bn_mean_group(x, batch, c, spatial, f, BN_GROUP, scale, mean);
    for (; f < r.f1; f++)
        bn_mean_group(x, batch, c, spatial, f, 1, scale, mean);
}

/* Channels f .. f+g-1 of bn_variance. */
BN_INLINE void bn_variance_group(const float *x, const float *mean, int batch, int c, int spatial,
                                 int f, int g, float scale, float *variance)
{
    float sum[BN_GROUP] = {0};
    for (int b = 0; b < batch; b++) {
        const float *xf = x + ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial;
        for (int k = 0; k < spatial; k++)
            for (int j = 0; j < g; j++) {
                const double d =
                    (double)(xf[(size_t)j * (size_t)spatial + (size_t)k] - mean[f + j]);
                sum[j] = (float)((double)sum[j] + d * d);
            }
    }
    for (int j = 0; j < g; j++)
        variance[f + j] = sum[j] * scale;
}

/*
 * Per channel: unbiased variance, darknet's variance_cpu (squares summed in double as
 * its pow() does, each partial sum rounded back to float). With a single value per
 * channel (N = 1) darknet divides by zero and trains on NaN; here the variance is 0.
 */
static void bn_variance(const float *x, const float *mean, int batch, int c, int spatial,
                        struct bn_range r, float *variance)
{
    const int n = batch * spatial;
    const float scale = n > 1 ? 1.0f / (float)(n - 1) : 0.0f;
    int f = r.f0;
    for (; f + BN_GROUP <= r.f1; f += BN_GROUP)
        bn_variance_group(x, mean, batch, c, spatial, f, BN_GROUP, scale, variance);
    for (; f < r.f1; f++)
        bn_variance_group(x, mean, batch, c, spatial, f, 1, scale, variance);
}

/* The per-channel values of bn_normalize_scale. */
struct bn_affine {
    float mean, denom, scale, bias;
    bool has_bias;
};

/* One plane of bn_normalize_scale. */
static void bn_plane_normalize_scale(float *x, float *x_norm, int n, struct bn_affine a)
{
    int k = 0;
#if DNN_V4
    const dnn_v4 vm = dnn_v4_splat(a.mean), vd = dnn_v4_splat(a.denom);
    const dnn_v4 vs = dnn_v4_splat(a.scale), vb = dnn_v4_splat(a.bias);
    for (; k + DNN_V4_LANES <= n; k += DNN_V4_LANES) {
        dnn_v4 t = (dnn_v4_load(x + k) - vm) / vd;
        if (x_norm)
            dnn_v4_store(x_norm + k, t);
        t = t * vs;
        if (a.has_bias)
            t = t + vb;
        dnn_v4_store(x + k, t);
    }
#endif
    for (; k < n; k++) {
        float t = (x[k] - a.mean) / a.denom;
        if (x_norm)
            x_norm[k] = t;
        t = t * a.scale;
        if (a.has_bias)
            t = t + a.bias;
        x[k] = t;
    }
}

/*
 * x = (x - mean) / (sqrt(variance) + eps), darknet's normalize_cpu, kept in x_norm when
 * that is not NULL; then x *= scales and x += biases (when there are biases), darknet's
 * scale_bias and add_bias: one pass over x with the roundings of the three. Element f - m0
 * of mean and variance, and f - p0 of scales and biases, are channel f's.
 */
static void bn_normalize_scale(float *x, float *x_norm, const float *mean, const float *variance,
                               int m0, const float *scales, const float *biases, int p0, int batch,
                               int c, int spatial, struct bn_range r)
{
    for (int f = r.f0; f < r.f1; f++) {
        const struct bn_affine a = {mean[f - m0], dnn_sqrtf(variance[f - m0]) + BN_EPS_FORWARD,
                                    scales[f - p0], biases ? biases[f - p0] : 0, biases != NULL};
        for (int b = 0; b < batch; b++) {
            const size_t at = ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial;
            bn_plane_normalize_scale(x + at, x_norm ? x_norm + at : NULL, spatial, a);
        }
    }
}

/* rolling = .99 * rolling + .01 * batch_stat, in darknet's scal-then-axpy order; rolling's
 * element f - p0 is channel f's. */
static void bn_roll(float *rolling, int p0, const float *stat, struct bn_range r)
{
    for (int f = r.f0; f < r.f1; f++) {
        rolling[f - p0] *= .99f;
        rolling[f - p0] += .01f * stat[f];
    }
}

/* Floats of (batch, out_h, out_w, out_c), checked. */
static bool bn_values(const struct dnn_layer *l, size_t *out)
{
    size_t hw = 0, chw = 0;
    return dnn_mul_size((size_t)l->out_h, (size_t)l->out_w, &hw) &&
           dnn_mul_size(hw, (size_t)l->out_c, &chw) && dnn_mul_size(chw, (size_t)l->batch, out);
}

/*
 * Registers scales (trainable), rolling_mean and rolling_variance as parameters, in
 * that order, and the training-only statistics and saved activations. The caller
 * sets the output shape first and calls this where the .weights order puts the BN
 * triple: convolutional after biases and before weights, connected after weights.
 */
enum dnn_status dnn_bn_setup(struct dnn_layer *l)
{
    const size_t c = (size_t)l->out_c;
    size_t values = 0;
    if (l->out_c <= 0 || l->out_h <= 0 || l->out_w <= 0 || l->batch <= 0)
        return DNN_ERR_SHAPE;
    if (!bn_values(l, &values))
        return DNN_ERR_OVERFLOW;
    struct dnn_bn *bn = &l->bn;
    enum dnn_status st = dnn_layer_add_param(l, "scales", &bn->scales, &bn->scale_updates, c);
    if (st == DNN_OK)
        st = dnn_layer_add_param(l, "rolling_mean", &bn->rolling_mean, NULL, c);
    if (st == DNN_OK)
        st = dnn_layer_add_param(l, "rolling_variance", &bn->rolling_variance, NULL, c);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &bn->mean, c, sizeof(float), DNN_BUF_TRAIN);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &bn->variance, c, sizeof(float), DNN_BUF_TRAIN);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &bn->mean_delta, c, sizeof(float), DNN_BUF_TRAIN);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &bn->variance_delta, c, sizeof(float), DNN_BUF_TRAIN);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &bn->x, values, sizeof(float), DNN_BUF_TRAIN);
    if (st == DNN_OK)
        st = dnn_layer_request(l, &bn->x_norm, values, sizeof(float), DNN_BUF_TRAIN);
    return st;
}

/* darknet's make_*_layer: scales 1, rolling statistics 0. */
void dnn_bn_init(struct dnn_layer *l)
{
    const size_t c = (size_t)l->out_c;
    dnn_fill(l->bn.scales, c, 1);
    dnn_fill(l->bn.rolling_mean, c, 0);
    dnn_fill(l->bn.rolling_variance, c, 0);
}

/* dst = src on channels r of (batch, c, spatial) arrays. */
static void bn_copy(const float *src, float *dst, int batch, int c, int spatial, struct bn_range r)
{
    for (int b = 0; b < batch; b++) {
        const size_t base = ((size_t)b * (size_t)c + (size_t)r.f0) * (size_t)spatial;
        dnn_copy(src + base, (size_t)(r.f1 - r.f0) * (size_t)spatial, dst + base);
    }
}

/* x (n) *= s, four at a time where the compiler can. */
static void bn_plane_scale(float *x, int n, float s)
{
    int k = 0;
#if DNN_V4
    for (; k + DNN_V4_LANES <= n; k += DNN_V4_LANES)
        dnn_v4_store(x + k, dnn_v4_load(x + k) * dnn_v4_splat(s));
#endif
    for (; k < n; k++)
        x[k] *= s;
}

/* x *= scales[f] on channels r, dnn_scale_bias's one rounding; element f - p0 is channel
 * f's. */
static void bn_scale(float *x, const float *scales, int p0, int batch, int c, int spatial,
                     struct bn_range r)
{
    for (int b = 0; b < batch; b++)
        for (int f = r.f0; f < r.f1; f++)
            bn_plane_scale(x + ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial, spatial,
                           scales[f - p0]);
}

/* One BN pass split among tasks by channels. */
struct bn_split {
    struct dnn_layer *l;
    bool train;
    size_t tasks;
    struct bn_tensors t;
};

/* The layer's own tensors. */
static struct bn_tensors bn_own(struct dnn_layer *l)
{
    struct dnn_bn *bn = &l->bn;
    return (struct bn_tensors){
        bn->scales,      l->biases, bn->rolling_mean, bn->rolling_variance, bn->scale_updates,
        l->bias_updates, 0};
}

static struct bn_range bn_task_range(const struct bn_split *s, size_t t)
{
    const size_t c = (size_t)s->l->out_c;
    return (struct bn_range){(int)dnn_parallel_first(c, s->tasks, t),
                             (int)dnn_parallel_first(c, s->tasks, t + 1)};
}

/* The forward on channels r of l->output. */
static void bn_forward_range(struct dnn_layer *l, bool train, const struct bn_tensors *t,
                             struct bn_range r)
{
    struct dnn_bn *bn = &l->bn;
    const int batch = l->batch, c = l->out_c, spatial = l->out_h * l->out_w;
    if (train) {
        bn_mean(l->output, batch, c, spatial, r, bn->mean);
        bn_variance(l->output, bn->mean, batch, c, spatial, r, bn->variance);
        bn_roll(t->rolling_mean, t->p0, bn->mean, r);
        bn_roll(t->rolling_variance, t->p0, bn->variance, r);
        bn_copy(l->output, bn->x, batch, c, spatial, r);
        bn_normalize_scale(l->output, bn->x_norm, bn->mean, bn->variance, 0, t->scales, t->biases,
                           t->p0, batch, c, spatial, r);
    } else {
        bn_normalize_scale(l->output, NULL, t->rolling_mean, t->rolling_variance, t->p0, t->scales,
                           t->biases, t->p0, batch, c, spatial, r);
    }
}

static void bn_forward_task(void *arg, size_t t)
{
    const struct bn_split *s = arg;
    bn_forward_range(s->l, s->train, &s->t, bn_task_range(s, t));
}

/* Values a task has at least: some 10 us of work for a woken thread. */
#define BN_PAR_MIN_VALUES 16384

/* Runs task over the channels of l, split when par has threads and l enough values. */
static void bn_over_channels(struct dnn_layer *l, bool train, const struct dnn_parallel *par,
                             void (*task)(void *arg, size_t t))
{
    const size_t per_channel = (size_t)l->batch * (size_t)l->out_h * (size_t)l->out_w;
    const size_t min_channels = (BN_PAR_MIN_VALUES + per_channel - 1) / per_channel;
    struct bn_split s = {l, train, dnn_parallel_tasks(par, (size_t)l->out_c, min_channels),
                         bn_own(l)};
    dnn_parallel_for(par, s.tasks, task, &s);
}

/*
 * Normalises l->output in place, then scales and adds biases (when the layer has
 * them). Training also updates the rolling statistics and keeps x and x_norm for
 * backward; inference touches no training buffer.
 */
void dnn_bn_forward(struct dnn_layer *l, bool train, const struct dnn_parallel *par)
{
    bn_over_channels(l, train, par, bn_forward_task);
}

/* Channels f .. f+g-1 of bn_stat_deltas. */
BN_INLINE void bn_stat_deltas_group(struct dnn_layer *l, int f, int g)
{
    struct dnn_bn *bn = &l->bn;
    const int batch = l->batch, c = l->out_c, spatial = l->out_h * l->out_w;
    const float *delta = l->delta;
    float dmean[BN_GROUP] = {0}, dvar[BN_GROUP] = {0};
    for (int b = 0; b < batch; b++) {
        const size_t base = ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial;
        for (int k = 0; k < spatial; k++)
            for (int j = 0; j < g; j++) {
                const size_t at = base + (size_t)j * (size_t)spatial + (size_t)k;
                dmean[j] += delta[at];
                dvar[j] += delta[at] * (bn->x[at] - bn->mean[f + j]);
            }
    }
    for (int j = 0; j < g; j++) {
        const float v = bn->variance[f + j] + BN_EPS_BACKWARD;
        bn->mean_delta[f + j] = dmean[j] * (-1.0f / dnn_sqrtf(v));
        bn->variance_delta[f + j] = dvar[j] * (-.5f * dnn_powf(v, -1.5f));
    }
}

/* The delta's sums over channels r: mean_delta and variance_delta. */
static void bn_stat_deltas(struct dnn_layer *l, struct bn_range r)
{
    int f = r.f0;
    for (; f + BN_GROUP <= r.f1; f += BN_GROUP)
        bn_stat_deltas_group(l, f, BN_GROUP);
    for (; f < r.f1; f++)
        bn_stat_deltas_group(l, f, 1);
}

/* normalize_delta_cpu on one plane: d = d * inv_std + dvar * 2 * (x - m) / var_count + dmean,
 * in C's left-to-right order, four at a time where the compiler can. */
static void bn_plane_delta(float *d, const float *x, int n, float inv_std, float dvar, float m,
                           float var_count, float dmean)
{
    int k = 0;
#if DNN_V4
    const dnn_v4 vi = dnn_v4_splat(inv_std), v2 = dnn_v4_splat(dvar * 2.0f);
    const dnn_v4 vm = dnn_v4_splat(m), vc = dnn_v4_splat(var_count), vd = dnn_v4_splat(dmean);
    for (; k + DNN_V4_LANES <= n; k += DNN_V4_LANES)
        dnn_v4_store(d + k, dnn_v4_load(d + k) * vi + v2 * (dnn_v4_load(x + k) - vm) / vc + vd);
#endif
    for (; k < n; k++)
        d[k] = d[k] * inv_std + dvar * 2.0f * (x[k] - m) / var_count + dmean;
}

/* Channels f .. f+g-1 of the bias and scale gradients: dnn_backward_bias's order (per
 * image, the plane's sum added to the update), dnn_backward_scale's (one sum over the
 * images, then one addition). */
BN_INLINE void bn_update_sums_group(struct dnn_layer *l, const struct bn_tensors *t, int f, int g)
{
    const int batch = l->batch, c = l->out_c, spatial = l->out_h * l->out_w;
    const float *delta = l->delta, *x_norm = l->bn.x_norm;
    float scale_sum[BN_GROUP] = {0};
    for (int b = 0; b < batch; b++) {
        const size_t base = ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial;
        float bias_sum[BN_GROUP] = {0};
        for (int k = 0; k < spatial; k++)
            for (int j = 0; j < g; j++) {
                const size_t at = base + (size_t)j * (size_t)spatial + (size_t)k;
                bias_sum[j] += delta[at];
                scale_sum[j] += delta[at] * x_norm[at];
            }
        for (int j = 0; t->bias_updates && j < g; j++)
            t->bias_updates[f + j - t->p0] += bias_sum[j];
    }
    for (int j = 0; j < g; j++)
        t->scale_updates[f + j - t->p0] += scale_sum[j];
}

/* The bias and scale gradients of channels r into @t's update slices. */
static void bn_update_sums(struct dnn_layer *l, const struct bn_tensors *t, struct bn_range r)
{
    int f = r.f0;
    for (; f + BN_GROUP <= r.f1; f += BN_GROUP)
        bn_update_sums_group(l, t, f, BN_GROUP);
    for (; f < r.f1; f++)
        bn_update_sums_group(l, t, f, 1);
}

/* The backward on channels r of l->delta; @t's update slices take the gradients. */
static void bn_backward_range(struct dnn_layer *l, const struct bn_tensors *t, struct bn_range r)
{
    struct dnn_bn *bn = &l->bn;
    const int batch = l->batch, c = l->out_c, spatial = l->out_h * l->out_w;
    const float count = (float)(batch * spatial);
    /* The forward's variance divisor (darknet's backward uses count here, see the
     * top of the file); with one value per channel x - mean is 0 and so is the term. */
    const float var_count = count > 1 ? count - 1 : 1;
    float *delta = l->delta;

    bn_update_sums(l, t, r);
    bn_scale(delta, t->scales, t->p0, batch, c, spatial, r);
    bn_stat_deltas(l, r);
    for (int f = r.f0; f < r.f1; f++) {
        const float m = bn->mean[f];
        const float inv_std = 1.0f / dnn_sqrtf(bn->variance[f] + BN_EPS_BACKWARD);
        const float dvar = bn->variance_delta[f];
        const float dmean = bn->mean_delta[f] / count;
        for (int b = 0; b < batch; b++) {
            const size_t base = ((size_t)b * (size_t)c + (size_t)f) * (size_t)spatial;
            bn_plane_delta(delta + base, bn->x + base, spatial, inv_std, dvar, m, var_count, dmean);
        }
    }
}

static void bn_backward_task(void *arg, size_t t)
{
    const struct bn_split *s = arg;
    bn_backward_range(s->l, &s->t, bn_task_range(s, t));
}

/* A tile's slices as the passes read them; channel f is element f - row0. */
static struct bn_tensors bn_tile(const struct dnn_tile_params *p, size_t row0)
{
    return (struct bn_tensors){
        p->scales,        p->biases,       p->rolling_mean, p->rolling_variance,
        p->scale_updates, p->bias_updates, (int)row0};
}

void dnn_bn_forward_rows(struct dnn_layer *l, bool train, const struct dnn_tile_params *p,
                         size_t row0, size_t rows)
{
    const struct bn_tensors t = bn_tile(p, row0);
    bn_forward_range(l, train, &t, (struct bn_range){(int)row0, (int)(row0 + rows)});
}

void dnn_bn_backward_rows(struct dnn_layer *l, const struct dnn_tile_params *p, size_t row0,
                          size_t rows)
{
    const struct bn_tensors t = bn_tile(p, row0);
    bn_backward_range(l, &t, (struct bn_range){(int)row0, (int)(row0 + rows)});
}

/*
 * darknet's backward_batchnorm_layer on l->delta (already multiplied by the
 * activation's gradient): bias and scale updates, then the delta is carried through
 * the scale and the normalisation (mean_delta_cpu, variance_delta_cpu,
 * normalize_delta_cpu, the last with the N - 1 correction described above).
 */
void dnn_bn_backward(struct dnn_layer *l, const struct dnn_parallel *par)
{
    bn_over_channels(l, true, par, bn_backward_task);
}

/* ------------------------------------------------------- the [batchnorm] layer */

/*
 * Output shape = input shape. Parameters in darknet's file order: scales,
 * rolling_mean, rolling_variance (save/load_batchnorm_weights). darknet also
 * allocates biases for this layer but never saves, loads or updates them, so they
 * stay 0; adding zeros changes nothing, so this layer has none.
 */
static enum dnn_status batchnorm_setup(struct dnn_layer *l, const struct dnn_network *net)
{
    (void)net;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_c = l->c;
    l->biases = NULL;
    l->nbiases = 0;
    return dnn_bn_setup(l);
}

static void batchnorm_init(struct dnn_layer *l, struct dnn_rng *rng)
{
    (void)rng;
    dnn_bn_init(l);
}

static void batchnorm_forward(struct dnn_layer *l, const struct dnn_run *run)
{
    dnn_copy(run->input, l->outputs * (size_t)l->batch, l->output);
    dnn_bn_forward(l, run->train, run->par);
}

static void batchnorm_backward(struct dnn_layer *l, const struct dnn_run *run)
{
    dnn_bn_backward(l, run->par);
    if (run->input_delta)
        dnn_axpy(l->outputs * (size_t)l->batch, 1, l->delta, run->input_delta);
}

/*
 * darknet's [batchnorm] layer has no update at all. Here the scales learn (without
 * decay, like every BN scale) because they are saved, so a reloaded model predicts
 * the same; the rolling statistics move in forward.
 */
static void batchnorm_update(struct dnn_layer *l, const struct dnn_update_args *a)
{
    dnn_sgd_step(l->bn.scales, l->bn.scale_updates, (size_t)l->out_c, a, false);
}

const struct dnn_layer_ops dnn_batchnorm_ops = {
    .name = "batchnorm",
    .setup = batchnorm_setup,
    .init = batchnorm_init,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .update = batchnorm_update,
};
