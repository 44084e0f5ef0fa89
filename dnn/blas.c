/*
 * blas.c - the vector helpers layers share. gcc's -O2 vectorises no loop of unknown length,
 * so the elementwise ones take four floats at a time (vec4.h): each lane does the scalar
 * loop's operations, so the bits are the scalar loop's.
 */
#include "dnn/dnn_internal.h"
#include "dnn/vec4.h"

bool dnn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool dnn_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}

void dnn_fill(float *x, size_t n, float v)
{
    size_t i = 0;
#if DNN_V4
    const dnn_v4 vv = dnn_v4_splat(v);
    for (; i + DNN_V4_LANES <= n; i += DNN_V4_LANES)
        dnn_v4_store(x + i, vv);
#endif
    for (; i < n; i++)
        x[i] = v;
}

/* Floats a task of dnn_fill_par sets at least: a few us of stores, well above a hand-off. */
#define FILL_PAR_MIN_ITEMS ((size_t)65536)

struct fill_split {
    float *x;
    float v;
};

static void fill_range(void *arg, size_t i0, size_t i1)
{
    const struct fill_split *s = arg;
    dnn_fill(s->x + i0, i1 - i0, s->v);
}

void dnn_fill_par(const struct dnn_parallel *par, float *x, size_t n, float v)
{
    struct fill_split s = {x, v};
    dnn_parallel_ranges(par, n, FILL_PAR_MIN_ITEMS, fill_range, &s);
}

void dnn_copy(const float *x, size_t n, float *y)
{
    memmove(y, x, n * sizeof(float));
}

void dnn_axpy(size_t n, float a, const float *x, float *y)
{
    size_t i = 0;
#if DNN_V4
    const dnn_v4 va = dnn_v4_splat(a);
    for (; i + DNN_V4_LANES <= n; i += DNN_V4_LANES)
        dnn_v4_store(y + i, dnn_v4_load(y + i) + va * dnn_v4_load(x + i));
#endif
    for (; i < n; i++)
        y[i] += a * x[i];
}

void dnn_scal(size_t n, float a, float *x)
{
    size_t i = 0;
#if DNN_V4
    const dnn_v4 va = dnn_v4_splat(a);
    for (; i + DNN_V4_LANES <= n; i += DNN_V4_LANES)
        dnn_v4_store(x + i, dnn_v4_load(x + i) * va);
#endif
    for (; i < n; i++)
        x[i] *= a;
}

float dnn_sum(const float *x, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

/* x[j] += v for j < n. */
static void add_scalar(float *x, size_t n, float v)
{
    size_t j = 0;
#if DNN_V4
    const dnn_v4 vv = dnn_v4_splat(v);
    for (; j + DNN_V4_LANES <= n; j += DNN_V4_LANES)
        dnn_v4_store(x + j, dnn_v4_load(x + j) + vv);
#endif
    for (; j < n; j++)
        x[j] += v;
}

void dnn_add_bias(float *out, const float *biases, int batch, int c, int spatial)
{
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < c; i++)
            add_scalar(out + ((size_t)b * c + i) * spatial, (size_t)spatial, biases[i]);
}

void dnn_scale_bias(float *out, const float *scales, int batch, int c, int spatial)
{
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < c; i++)
            dnn_scal((size_t)spatial, scales[i], out + ((size_t)b * c + i) * spatial);
}

/* Channels summed side by side in dnn_backward_bias: each keeps its own serial chain of adds
 * (darknet's sum_array), the chains interleaved so that the adds' latency overlaps. */
#define BIAS_CHANNELS 8

/* s[k] = the serial sum of d[k * spatial + j] over j, for k < m. */
static void sum_channels(const float *d, int m, int spatial, float *s)
{
    if (m == BIAS_CHANNELS) {
        float t[BIAS_CHANNELS] = {0};
        for (int j = 0; j < spatial; j++)
            for (int k = 0; k < BIAS_CHANNELS; k++)
                t[k] += d[(size_t)k * spatial + j];
        memcpy(s, t, sizeof t);
        return;
    }
    for (int k = 0; k < m; k++)
        s[k] = 0;
    for (int j = 0; j < spatial; j++)
        for (int k = 0; k < m; k++)
            s[k] += d[(size_t)k * spatial + j];
}

void dnn_backward_bias(float *bias_updates, const float *delta, int batch, int c, int spatial)
{
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < c; i += BIAS_CHANNELS) {
            const int m = c - i < BIAS_CHANNELS ? c - i : BIAS_CHANNELS;
            float s[BIAS_CHANNELS];
            sum_channels(delta + ((size_t)b * c + i) * spatial, m, spatial, s);
            for (int k = 0; k < m; k++)
                bias_updates[i + k] += s[k];
        }
}

void dnn_backward_scale(const float *x_norm, const float *delta, int batch, int c, int spatial,
                        float *scale_updates)
{
    for (int i = 0; i < c; i++) {
        float sum = 0;
        for (int b = 0; b < batch; b++) {
            size_t base = ((size_t)b * c + i) * spatial;
            for (int j = 0; j < spatial; j++)
                sum += delta[base + j] * x_norm[base + j];
        }
        scale_updates[i] += sum;
    }
}

/* dnn_sgd_step on elements [i0, i1), in one pass: each element gets darknet's three passes'
 * operations in their order (decay into the update, step, momentum), so the same roundings,
 * while the tensors are read and written once rather than three times. */
struct sgd_split {
    float *value, *update;
    float decay, rate, momentum;
    bool decay_on; /* darknet adds even a decay of 0: the sign of a zero update may change */
};

static void sgd_range(void *arg, size_t i0, size_t i1)
{
    const struct sgd_split *s = arg;
    float *w = s->value, *u = s->update;
    size_t i = i0;
#if DNN_V4
    const dnn_v4 vd = dnn_v4_splat(s->decay), vr = dnn_v4_splat(s->rate);
    const dnn_v4 vm = dnn_v4_splat(s->momentum);
    for (; i + DNN_V4_LANES <= i1; i += DNN_V4_LANES) {
        dnn_v4 wi = dnn_v4_load(w + i), ui = dnn_v4_load(u + i);
        if (s->decay_on)
            ui = ui + vd * wi;
        wi = wi + vr * ui;
        dnn_v4_store(w + i, wi);
        dnn_v4_store(u + i, ui * vm);
    }
#endif
    for (; i < i1; i++) {
        if (s->decay_on)
            u[i] += s->decay * w[i];
        w[i] += s->rate * u[i];
        u[i] *= s->momentum;
    }
}

/* Elements a task of the SGD step takes at least: some 30 us of a pass over memory. */
#define SGD_PAR_MIN_ITEMS ((size_t)65536)

void dnn_sgd_step(float *value, float *update, size_t n, const struct dnn_update_args *a,
                  bool decay_on)
{
    /* darknet's order: decay into the update, step, then keep momentum. */
    struct sgd_split s = {.value = value,
                          .update = update,
                          .decay = -a->decay * (float)a->batch,
                          .rate = a->learning_rate / (float)a->batch,
                          .momentum = a->momentum,
                          .decay_on = decay_on};
    dnn_parallel_ranges(a->par, n, SGD_PAR_MIN_ITEMS, sgd_range, &s);
}

void dnn_adam_step(struct dnn_param *p, const struct dnn_update_args *a)
{
    float *w = p->value, *d = p->update, *m = p->adam_m, *v = p->adam_v;
    /* darknet passes t as an int to powf: the same power of a float base here. */
    const float t = (float)a->t;
    const float m_corr = 1.f - dnn_powf(a->beta1, t);
    const float v_corr = 1.f - dnn_powf(a->beta2, t);
    const float decay = -a->decay * (float)a->batch;
    for (size_t i = 0; i < p->count; i++) {
        /* darknet's sequence of whole-array passes, element by element: the same
         * operations in the same order, so the same roundings. */
        m[i] *= a->beta1;
        v[i] *= a->beta2;
        d[i] += decay * w[i];
        m[i] += (1 - a->beta1) * d[i];
        d[i] *= d[i];
        v[i] += (1 - a->beta2) * d[i];
        const float mhat = m[i] / m_corr;
        const float vhat = v[i] / v_corr;
        const float den = dnn_sqrtf(vhat) + a->epsilon;
        /* At most one learning rate per parameter and step. darknet does not bound it, but
         * B1, B2 and eps come from the normal world: eps = 1e-45 with a gradient whose square
         * underflows, or B1 near 1 with B2 = 0, would multiply the step without limit, past
         * what the owner's learning_rate_max allows. With darknet's defaults the ratio seldom
         * leaves [-1, 1] (after two steps at most by 0.14%); inside it the expression is
         * darknet's, rounding included. */
        const float ratio = mhat / den;
        if (ratio > 1.0f || ratio < -1.0f)
            w[i] = w[i] + (ratio > 0 ? a->learning_rate : -a->learning_rate);
        else
            w[i] = w[i] + a->learning_rate * mhat / den;
        d[i] = 0;
    }
}
