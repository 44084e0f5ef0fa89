/*
 * tiles.c - weight streaming's one geometry: how a segment's parameters are cut into tiles of
 * whole output filters or neurons (dnn.h, "tiles"), and the dispatch of a tile's computation
 * to its layer kind. The TA (ta/stream*.c), the host's cut of plain floats
 * (host/tee_session.c) and its plan (host/partition.c) all call these, so they agree.
 */
#include "dnn/dnn_internal.h"

#include <stdint.h>
#include <string.h>

const char *dnn_tile_refusal(const struct dnn_layer *l)
{
    if (!l->n_params)
        return NULL;
    if (l->kind == DNN_LAYER_CONNECTED)
        return NULL;
    if (l->kind != DNN_LAYER_CONVOLUTIONAL)
        return "only convolutional and connected layers stream their weights";
    /* a group's filters see only its channels: a tile would have to know its group */
    if (l->spec.groups != 1)
        return "a grouped convolution (groups > 1) does not stream";
    /* the blur after the convolution reads every filter's output at once */
    if (l->spec.antialiasing)
        return "an antialiased convolution does not stream";
    return NULL;
}

/* Floats per output of parameter @p of @l: 1, or a filter / weight row. */
static size_t per_output(const struct dnn_layer *l, const struct dnn_param *p)
{
    return p->count / (size_t)l->out_c;
}

size_t dnn_tile_row_floats(const struct dnn_layer *l, bool updates)
{
    size_t n = 0;
    for (size_t j = 0; j < l->n_params; j++) {
        const size_t per = per_output(l, &l->params[j]);
        /* the rolling statistics have no update buffer (dnn_bn_setup) */
        const bool has_update = l->params[j].update_ref != NULL;
        if (__builtin_add_overflow(n, per, &n) ||
            (updates && has_update && __builtin_add_overflow(n, per, &n)))
            return SIZE_MAX;
    }
    return n;
}

/* Whole outputs of @l per tile of @bytes, at most out_c; 0 when one does not fit. */
static size_t rows_per_tile(const struct dnn_layer *l, size_t bytes, bool updates)
{
    const size_t row = dnn_tile_row_floats(l, updates);
    if (!l->n_params || row == 0 || row > SIZE_MAX / sizeof(float))
        return 0;
    const size_t r = bytes / (row * sizeof(float));
    return r < (size_t)l->out_c ? r : (size_t)l->out_c;
}

size_t dnn_tile_layer_count(const struct dnn_layer *l, size_t bytes, bool updates)
{
    const size_t r = rows_per_tile(l, bytes, updates);
    return r ? ((size_t)l->out_c + r - 1) / r : 0;
}

size_t dnn_tile_count(const struct dnn_layer *layers, size_t n, size_t bytes, bool updates)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct dnn_layer *l = &layers[i];
        if (!l->n_params)
            continue;
        const size_t t = dnn_tile_refusal(l) ? 0 : dnn_tile_layer_count(l, bytes, updates);
        if (t == 0)
            return 0;
        total += t;
        if (total >= UINT32_MAX)
            return 0;
    }
    return total;
}

bool dnn_tile_forward_moves(const struct dnn_layer *layers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (layers[i].n_params && layers[i].spec.batch_normalize)
            return true;
    return false;
}

void dnn_tile_at(const struct dnn_layer *layers, size_t n, size_t bytes, bool updates, size_t k,
                 struct dnn_tile *t)
{
    size_t base = 0;

    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        const struct dnn_layer *l = &layers[i];
        if (!l->n_params)
            continue;
        const size_t r = rows_per_tile(l, bytes, updates);
        const size_t count = dnn_tile_layer_count(l, bytes, updates);
        if (k < base + count) {
            const size_t row0 = (k - base) * r;
            const size_t left = (size_t)l->out_c - row0;
            t->layer = i;
            t->row0 = row0;
            t->rows = left < r ? left : r;
            t->param_floats = t->rows * dnn_tile_row_floats(l, false);
            t->floats = t->rows * dnn_tile_row_floats(l, updates);
            t->first_rows = row0 == 0;
            t->last_rows = row0 + t->rows == (size_t)l->out_c;
            return;
        }
        base += count;
    }
}

size_t dnn_tile_parts(const struct dnn_layer *l, const struct dnn_tile *t, bool updates,
                      struct dnn_tile_part *parts)
{
    size_t n = 0, offset = 0;
    for (int pass = 0; pass < (updates ? 2 : 1); pass++) {
        size_t layer_offset = 0;
        for (size_t j = 0; j < l->n_params; j++) {
            const struct dnn_param *p = &l->params[j];
            const size_t per = per_output(l, p);
            if (pass == 0 || p->update_ref) {
                parts[n] = (struct dnn_tile_part){.param = j,
                                                  .update = pass == 1,
                                                  .offset = offset,
                                                  .count = t->rows * per,
                                                  .src = t->row0 * per,
                                                  .layer_offset = layer_offset};
                offset += parts[n].count;
                n++;
            }
            layer_offset += p->count;
        }
    }
    return n;
}

/* The field of struct dnn_tile_params for parameter @name (or its update buffer). */
static float **slot(struct dnn_tile_params *p, const char *name, bool update)
{
    if (strcmp(name, "biases") == 0)
        return update ? &p->bias_updates : &p->biases;
    if (strcmp(name, "scales") == 0)
        return update ? &p->scale_updates : &p->scales;
    if (strcmp(name, "rolling_mean") == 0)
        return update ? NULL : &p->rolling_mean;
    if (strcmp(name, "rolling_variance") == 0)
        return update ? NULL : &p->rolling_variance;
    if (strcmp(name, "weights") == 0)
        return update ? &p->weight_updates : &p->weights;
    return NULL;
}

void dnn_tile_bind(const struct dnn_layer *l, const struct dnn_tile *t, bool updates, float *floats,
                   struct dnn_tile_params *p)
{
    struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
    const size_t n = dnn_tile_parts(l, t, updates, parts);

    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        float **dst = slot(p, l->params[parts[i].param].name, parts[i].update);
        if (dst)
            *dst = floats + parts[i].offset;
    }
}

/* Rows [row0, row0 + rows) within l's outputs, and the slices a pass needs. */
static bool tile_ok(const struct dnn_layer *l, const struct dnn_tile_params *p, size_t row0,
                    size_t rows)
{
    if (!l || !p || dnn_tile_refusal(l) || !l->n_params || row0 > (size_t)l->out_c ||
        rows > (size_t)l->out_c - row0 || !p->biases || !p->weights)
        return false;
    return !l->spec.batch_normalize || (p->scales && p->rolling_mean && p->rolling_variance);
}

enum dnn_status dnn_tile_forward(struct dnn_layer *l, const float *input, bool train,
                                 const struct dnn_tile_params *p, size_t row0, size_t rows,
                                 float *workspace)
{
    if (!tile_ok(l, p, row0, rows) || !input || (train && l->spec.batch_normalize && !l->bn.x))
        return DNN_ERR_INVALID;
    if (!rows)
        return DNN_OK;
    if (l->kind == DNN_LAYER_CONNECTED)
        return dnn_connected_tile_forward(l, input, train, p, row0, rows);
    return dnn_convolutional_forward_rows(l, input, train, p, row0, rows, workspace);
}

enum dnn_status dnn_tile_backward(struct dnn_layer *l, const float *input, float *input_delta,
                                  const struct dnn_tile_params *p, size_t row0, size_t rows,
                                  bool first, bool last, float *workspace, float *delta_cols)
{
    if (!tile_ok(l, p, row0, rows) || !input || !l->delta || !p->bias_updates ||
        !p->weight_updates || (l->spec.batch_normalize && (!p->scale_updates || !l->bn.x)))
        return DNN_ERR_INVALID;
    if (l->kind == DNN_LAYER_CONNECTED)
        return dnn_connected_tile_backward(l, input, input_delta, p, row0, rows);
    return dnn_convolutional_backward_rows(l, input, input_delta, p, row0, rows, first, last,
                                           workspace, delta_cols);
}

enum dnn_status dnn_tile_update(const struct dnn_layer *l, const struct dnn_update_args *a,
                                const struct dnn_tile_params *p, size_t rows)
{
    if (!tile_ok(l, p, 0, rows) || !a || a->adam || !p->bias_updates || !p->weight_updates ||
        (l->spec.batch_normalize && !p->scale_updates))
        return DNN_ERR_INVALID;
    /* update_convolutional_layer's and update_connected_layer's steps, in their order
     * (the order does not matter: each element is stepped alone); no decay on biases and
     * scales */
    const size_t per = l->nweights / (size_t)l->out_c;
    dnn_sgd_step(p->biases, p->bias_updates, rows, a, false);
    if (l->spec.batch_normalize)
        dnn_sgd_step(p->scales, p->scale_updates, rows, a, false);
    dnn_sgd_step(p->weights, p->weight_updates, rows * per, a, true);
    return DNN_OK;
}
