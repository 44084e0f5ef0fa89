#include "tests/helpers/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dnn_net_config gradcheck_config(int batch, int h, int w, int c)
{
    struct dnn_net_config cfg = {
        .batch = batch,
        .subdivisions = 1,
        .h = h,
        .w = w,
        .c = c,
        .learning_rate = 0.1f,
        .momentum = 0.9f,
        .policy = DNN_POLICY_CONSTANT,
        .max_batches = 1,
    };
    return cfg;
}

/* L = sum r*y of the last layer after a training-mode forward; the layers'
 * random streams are rewound so dropout draws the same mask every time. */
static double objective(struct dnn_network *net, const float *x, const float *r,
                        const struct dnn_rng *saved)
{
    for (size_t i = 0; i < net->n; i++)
        net->layers[i].rng = saved[i];
    dnn_network_forward_range(net, 0, net->n - 1, x, NULL, true);
    const struct dnn_layer *last = &net->layers[net->n - 1];
    double sum = 0;
    for (size_t i = 0; i < last->outputs * (size_t)last->batch; i++)
        sum += (double)r[i] * last->output[i];
    return sum;
}

static void compare(const char *what, size_t idx, float analytic, double numeric, double tol,
                    struct gradcheck_result *res)
{
    double err = fabs((double)analytic - numeric) / fmax(1.0, fabs(numeric));
    res->checked++;
    if (err > res->max_error)
        res->max_error = err;
    if (err > tol) {
        res->mismatches++;
        fprintf(stderr, "gradcheck: %s[%zu]: analytic %.6g, numeric %.6g\n", what, idx,
                (double)analytic, numeric);
    }
}

/* Spreads up to max_n checks evenly over n entries. */
static size_t stride_for(size_t n, size_t max_n)
{
    return n <= max_n ? 1 : (n + max_n - 1) / max_n;
}

struct gradcheck_result gradcheck_network(const struct dnn_net_config *cfg,
                                          const struct dnn_layer_spec *specs, size_t n, float h,
                                          double tol, size_t max_per_tensor)
{
    struct gradcheck_result res = {0};
    struct dnn_network *net = NULL;
    if (dnn_network_create(&net, cfg, specs, n, true, 1) != DNN_OK) {
        fprintf(stderr, "gradcheck: network_create failed\n");
        res.mismatches = 1;
        return res;
    }
    size_t nin = net->inputs * (size_t)cfg->batch;
    struct dnn_layer *last = &net->layers[net->n - 1];
    size_t nout = last->outputs * (size_t)last->batch;
    float *x = calloc(nin, sizeof(float));
    float *dx = calloc(nin, sizeof(float));
    float *r = calloc(nout, sizeof(float));
    struct dnn_rng *saved = calloc(net->n, sizeof(struct dnn_rng));
    if (!x || !dx || !r || !saved) {
        fprintf(stderr, "gradcheck: out of memory\n");
        abort();
    }
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 42);
    for (size_t i = 0; i < nin; i++)
        x[i] = dnn_rng_uniform(&rng, -1, 1);
    for (size_t i = 0; i < nout; i++)
        r[i] = dnn_rng_uniform(&rng, -1, 1);
    for (size_t i = 0; i < net->n; i++)
        saved[i] = net->layers[i].rng;

    /* Analytic pass. */
    objective(net, x, r, saved);
    for (size_t i = 0; i < nout; i++)
        last->delta[i] = -r[i];
    dnn_network_backward_range(net, 0, net->n - 1, x, dx);

    /* Input derivatives: delta = -dL/dx. */
    for (size_t i = 0; i < nin; i += stride_for(nin, max_per_tensor)) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = objective(net, x, r, saved);
        x[i] = keep - h;
        double lm = objective(net, x, r, saved);
        x[i] = keep;
        compare("input", i, -dx[i], (lp - lm) / (2.0 * h), tol, &res);
    }
    /* Parameter derivatives: update = -dL/dtheta (updates start at zero). */
    for (size_t li = 0; li < net->n; li++) {
        struct dnn_layer *l = &net->layers[li];
        for (size_t p = 0; p < l->n_params; p++) {
            struct dnn_param *prm = &l->params[p];
            if (!prm->update)
                continue;
            char what[64];
            snprintf(what, sizeof what, "layer %zu %s", li, prm->name);
            for (size_t i = 0; i < prm->count; i += stride_for(prm->count, max_per_tensor)) {
                float keep = prm->value[i];
                prm->value[i] = keep + h;
                double lp = objective(net, x, r, saved);
                prm->value[i] = keep - h;
                double lm = objective(net, x, r, saved);
                prm->value[i] = keep;
                compare(what, i, -prm->update[i], (lp - lm) / (2.0 * h), tol, &res);
            }
        }
    }
    free(saved);
    free(r);
    free(dx);
    free(x);
    dnn_network_free(net);
    return res;
}
