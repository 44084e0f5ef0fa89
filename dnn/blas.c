/* blas.c - the vector helpers layers share; plain loops the compiler vectorises. */
#include "dnn/dnn_internal.h"

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
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

void dnn_copy(const float *x, size_t n, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

void dnn_axpy(size_t n, float a, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

void dnn_scal(size_t n, float a, float *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= a;
}

float dnn_sum(const float *x, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

void dnn_add_bias(float *out, const float *biases, int batch, int c, int spatial)
{
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < c; i++) {
            float *o = out + ((size_t)b * c + i) * spatial;
            for (int j = 0; j < spatial; j++)
                o[j] += biases[i];
        }
}

void dnn_scale_bias(float *out, const float *scales, int batch, int c, int spatial)
{
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < c; i++) {
            float *o = out + ((size_t)b * c + i) * spatial;
            for (int j = 0; j < spatial; j++)
                o[j] *= scales[i];
        }
}

void dnn_backward_bias(float *bias_updates, const float *delta, int batch, int c, int spatial)
{
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < c; i++)
            bias_updates[i] += dnn_sum(delta + ((size_t)b * c + i) * spatial, (size_t)spatial);
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

void dnn_sgd_step(float *value, float *update, size_t n, const struct dnn_update_args *a,
                  bool decay_on)
{
    /* darknet's order: decay into the update, step, then keep momentum. */
    if (decay_on)
        dnn_axpy(n, -a->decay * (float)a->batch, value, update);
    dnn_axpy(n, a->learning_rate / (float)a->batch, update, value);
    dnn_scal(n, a->momentum, update);
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
