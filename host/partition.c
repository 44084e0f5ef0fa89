/*
 * partition.c - shapes without tensors, partition rules and the secure-memory
 * plan of a TEE segment (see partition.h).
 */
#include "host/partition.h"

#include "ta/include/dz_ta_memory.h"

#include <stdlib.h>
#include <string.h>

static bool mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

static const char *layer_name(const struct dnn_layer *l)
{
    return l->ops ? l->ops->name : "?";
}

/* ------------------------------------------------------------------ shapes */

/* Sets up layer i of net from spec, reading the earlier layers' shapes. */
static int setup_shape(struct dnn_network *net, const struct dk_model *m, size_t i,
                       struct dk_error *err)
{
    struct dnn_layer *l = &net->layers[i];
    size_t hw = 0, ohw = 0;
    l->kind = m->specs[i].kind;
    l->spec = m->specs[i];
    l->index = (int)i;
    l->batch = net->cfg.batch;
    l->ops = dnn_layer_ops_for(l->kind);
    if (!l->ops)
        return dk_fail(err, "layer %zu: unknown layer kind %d", i, (int)l->kind);
    const struct dnn_layer *prev = i ? &net->layers[i - 1] : NULL;
    l->h = prev ? prev->out_h : net->cfg.h;
    l->w = prev ? prev->out_w : net->cfg.w;
    l->c = prev ? prev->out_c : net->cfg.c;
    if (l->h <= 0 || l->w <= 0 || l->c <= 0 || !mul_size((size_t)l->h, (size_t)l->w, &hw) ||
        !mul_size(hw, (size_t)l->c, &l->inputs))
        return dk_fail(err, "layer %zu (%s): bad input shape %d x %d x %d", i, layer_name(l), l->w,
                       l->h, l->c);
    net->n = i; /* route and shortcut read the layers before i */
    enum dnn_status st = l->ops->setup(l, net);
    if (st != DNN_OK)
        return dk_fail(err, "layer %zu (%s, line %d): %s", i, layer_name(l), m->lines[i],
                       dnn_status_str(st));
    if (l->out_h <= 0 || l->out_w <= 0 || l->out_c <= 0 ||
        !mul_size((size_t)l->out_h, (size_t)l->out_w, &ohw) ||
        !mul_size(ohw, (size_t)l->out_c, &l->outputs))
        return dk_fail(err, "layer %zu (%s): bad output shape", i, layer_name(l));
    return 0;
}

int dz_shapes_create(const struct dk_model *m, int batch, uint64_t seed, struct dnn_network **out,
                     struct dk_error *err)
{
    *out = NULL;
    if (!m || m->n == 0 || batch <= 0)
        return dk_fail(err, "no layers to plan");
    struct dnn_network *net = calloc(1, sizeof *net);
    if (!net)
        return dk_fail(err, "out of memory");
    net->cfg = m->net;
    net->cfg.batch = batch;
    net->seed = seed;
    net->layers = calloc(m->n, sizeof *net->layers);
    if (!net->layers) {
        dz_shapes_free(net);
        return dk_fail(err, "out of memory for %zu layers", m->n);
    }
    for (size_t i = 0; i < m->n; i++) {
        if (setup_shape(net, m, i, err) != 0) {
            dz_shapes_free(net);
            return -1;
        }
    }
    net->n = m->n;
    net->inputs = net->layers[0].inputs;
    net->truths = net->layers[dnn_network_output_index(net)].outputs;
    *out = net;
    return 0;
}

void dz_shapes_free(struct dnn_network *shapes)
{
    if (!shapes)
        return;
    free(shapes->layers);
    free(shapes);
}

uint64_t dz_layer_param_floats(const struct dnn_layer *l)
{
    uint64_t sum = 0;
    for (size_t p = 0; p < l->n_params; p++)
        sum += l->params[p].count;
    return sum;
}

uint64_t dz_range_param_floats(const struct dnn_network *shapes, size_t first, size_t last)
{
    uint64_t sum = 0;
    for (size_t i = first; i <= last && i < shapes->n; i++)
        sum += dz_layer_param_floats(&shapes->layers[i]);
    return sum;
}

/* --------------------------------------------------------------- segments */

int dz_segment_config(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                      size_t last, int batch, int subdivisions, struct dnn_net_config *cfg,
                      struct dnn_layer_spec **specs, struct dk_error *err)
{
    *specs = NULL;
    if (first > last || last >= m->n || last >= shapes->n)
        return dk_fail(err, "layers %zu..%zu: not a range of the network's %zu layers", first, last,
                       m->n);
    size_t n = last - first + 1;
    struct dnn_layer_spec *s = calloc(n, sizeof *s);
    if (!s)
        return dk_fail(err, "out of memory");
    memcpy(s, m->specs + first, n * sizeof *s);
    for (size_t i = 0; i < n; i++) {
        if (s[i].kind == DNN_LAYER_ROUTE)
            for (int r = 0; r < s[i].n_route && r < DNN_MAX_ROUTE; r++)
                s[i].route[r] -= (int)first;
        if (s[i].kind == DNN_LAYER_SHORTCUT)
            s[i].from -= (int)first;
    }
    *cfg = m->net;
    cfg->batch = batch;
    cfg->subdivisions = subdivisions;
    cfg->h = shapes->layers[first].h;
    cfg->w = shapes->layers[first].w;
    cfg->c = shapes->layers[first].c;
    cfg->index_base = (int)first;
    *specs = s;
    return 0;
}

/* The layers a route or shortcut reads (absolute indexes); returns how many. */
static int reads_of(const struct dnn_layer *l, int out[DNN_MAX_ROUTE])
{
    if (l->kind == DNN_LAYER_SHORTCUT) {
        out[0] = l->spec.from;
        return 1;
    }
    if (l->kind != DNN_LAYER_ROUTE)
        return 0;
    int n = l->spec.n_route < DNN_MAX_ROUTE ? l->spec.n_route : DNN_MAX_ROUTE;
    for (int r = 0; r < n; r++)
        out[r] = l->spec.route[r];
    return n;
}

bool dz_range_has_cost(const struct dnn_network *shapes, size_t first, size_t last)
{
    for (size_t i = first; i <= last && i < shapes->n; i++)
        if (shapes->layers[i].has_cost)
            return true;
    return false;
}

/* Truth floats per image a range sees: the outputs of its last layer that is not a cost layer. */
static size_t range_truths(const struct dnn_network *shapes, size_t first, size_t last)
{
    size_t i = last;
    while (i > first && shapes->layers[i].kind == DNN_LAYER_COST)
        i--;
    return shapes->layers[i].outputs;
}

static int check_reads(const struct dnn_network *shapes, int first, int last, struct dk_error *err)
{
    for (size_t i = 0; i < shapes->n; i++) {
        const struct dnn_layer *l = &shapes->layers[i];
        int reads[DNN_MAX_ROUTE];
        int nr = reads_of(l, reads);
        bool inside = (int)i >= first && (int)i <= last;
        for (int r = 0; r < nr; r++) {
            int j = reads[r];
            if (inside && j < first)
                return dk_fail(err,
                               "layer %zu (%s) inside the TEE segment %d..%d reads layer %d "
                               "(%s), which runs in the normal world; start the segment at "
                               "layer %d or earlier",
                               i, layer_name(l), first, last, j, layer_name(&shapes->layers[j]), j);
            if ((int)i > last && j >= first && j <= last)
                return dk_fail(err,
                               "layer %zu (%s) runs in the normal world after the TEE segment "
                               "%d..%d and reads layer %d (%s) inside it; end the segment at "
                               "layer %zu or later, or at layer %d or earlier",
                               i, layer_name(l), first, last, j, layer_name(&shapes->layers[j]), i,
                               j - 1);
            if ((int)i > last && j < first)
                return dk_fail(err,
                               "layer %zu (%s) after the TEE segment %d..%d reads layer %d "
                               "(%s) before it; the layers after the segment run as a network "
                               "of their own and cannot reach it",
                               i, layer_name(l), first, last, j, layer_name(&shapes->layers[j]));
        }
    }
    return 0;
}

int dz_partition_check(const struct dnn_network *shapes, int first, int last, struct dk_error *err)
{
    const size_t n = shapes->n;
    if (first < 0 || last < first || (size_t)last >= n)
        return dk_fail(err, "-pp_start %d -pp_end %d: the network has layers 0..%zu", first, last,
                       n - 1);
    if (check_reads(shapes, first, last, err) != 0)
        return -1;
    for (int i = 0; i < first; i++)
        if (shapes->layers[i].has_cost)
            return dk_fail(err,
                           "layer %d (%s) computes a loss before the TEE segment %d..%d; the "
                           "segment must start after it",
                           i, layer_name(&shapes->layers[i]), first, last);
    if (dz_range_has_cost(shapes, (size_t)first, (size_t)last) &&
        range_truths(shapes, (size_t)first, (size_t)last) != shapes->truths)
        return dk_fail(err,
                       "the TEE segment %d..%d computes a loss on %zu values per image, but the "
                       "network's truth has %zu; end the segment at the network's output",
                       first, last, range_truths(shapes, (size_t)first, (size_t)last),
                       shapes->truths);
    if ((size_t)last + 1 < n && dz_range_has_cost(shapes, (size_t)last + 1, n - 1) &&
        range_truths(shapes, (size_t)last + 1, n - 1) != shapes->truths)
        return dk_fail(err,
                       "the layers after the TEE segment %d..%d compute a loss on %zu values "
                       "per image, but the network's truth has %zu",
                       first, last, range_truths(shapes, (size_t)last + 1, n - 1), shapes->truths);
    return 0;
}

/* ----------------------------------------------------------- secure memory */

static int plan_range(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                      size_t last, int batch, bool training, size_t *bytes, struct dk_error *err)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec *specs = NULL;
    if (dz_segment_config(m, shapes, first, last, batch, 1, &cfg, &specs, err) != 0)
        return -1;
    enum dnn_status st = dnn_network_plan(&cfg, specs, last - first + 1, training, bytes);
    free(specs);
    if (st != DNN_OK)
        return dk_fail(err, "layers %zu..%zu: cannot plan: %s", first, last, dnn_status_str(st));
    return 0;
}

/* The TA's formula (ta/include/dz_ta_memory.h) over the engine's plan of the segment. */
int dz_segment_need(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                    size_t last, int batch, bool training, size_t *bytes, struct dk_error *err)
{
    size_t engine = 0;
    if (plan_range(m, shapes, first, last, batch, training, &engine, err) != 0)
        return -1;
    const bool has_cost = dz_range_has_cost(shapes, first, last);
    struct dz_ta_memory_args a = {
        .engine_bytes = engine,
        .spec_bytes = (last - first + 1) * sizeof(struct dnn_layer_spec),
        .batch = (size_t)batch,
        .inputs = shapes->layers[first].inputs,
        .outputs = shapes->layers[last].outputs,
        .truths = range_truths(shapes, first, last),
        .param_floats = (size_t)dz_range_param_floats(shapes, first, last),
        .training = training,
        .first_layer = first == 0,
        .ends_network = last + 1 == shapes->n,
        .takes_truth = training && has_cost,
    };
    struct dz_ta_memory mem;
    if (!dz_ta_memory_compute(&a, DZ_TA_HEAP_RESERVE_DEFAULT, &mem))
        return dk_fail(err, "layers %zu..%zu: secure memory size overflows", first, last);
    *bytes = mem.total;
    return 0;
}

int dz_layer_need(const struct dk_model *m, const struct dnn_network *shapes, size_t i, int batch,
                  bool training, size_t *bytes, struct dk_error *err)
{
    const enum dnn_layer_kind k = shapes->layers[i].kind;
    if ((k != DNN_LAYER_ROUTE && k != DNN_LAYER_SHORTCUT) || i == 0)
        return plan_range(m, shapes, i, i, batch, training, bytes, err);
    size_t with = 0, without = 0;
    if (plan_range(m, shapes, 0, i, batch, training, &with, err) != 0 ||
        plan_range(m, shapes, 0, i - 1, batch, training, &without, err) != 0)
        return -1;
    *bytes = with > without ? with - without : 0;
    return 0;
}

/* Need of [a, b] when it is a valid partition; *ok false when it is not. */
static int valid_need(const struct dk_model *m, const struct dnn_network *shapes, int a, int b,
                      int batch, bool training, bool *ok, size_t *need, struct dk_error *err)
{
    struct dk_error ignored;
    *ok = dz_partition_check(shapes, a, b, &ignored) == 0;
    if (!*ok)
        return 0;
    return dz_segment_need(m, shapes, (size_t)a, (size_t)b, batch, training, need, err);
}

int dz_fit_search(const struct dk_model *m, const struct dnn_network *shapes, int batch,
                  bool training, size_t capacity, struct dz_fit *fit, struct dk_error *err)
{
    const int n = (int)shapes->n;
    fit->tail_first = fit->long_first = fit->long_last = -1;
    for (int a = n - 1; a >= 0; a--) {
        bool ok = false;
        size_t need = 0;
        if (valid_need(m, shapes, a, n - 1, batch, training, &ok, &need, err) != 0)
            return -1;
        if (ok && need <= capacity)
            fit->tail_first = a;
    }
    /* Longest first: the first range found at the largest length wins. */
    for (int len = n; len >= 1 && fit->long_first < 0; len--) {
        for (int a = 0; a + len <= n; a++) {
            bool ok = false;
            size_t need = 0;
            if (valid_need(m, shapes, a, a + len - 1, batch, training, &ok, &need, err) != 0)
                return -1;
            if (ok && need <= capacity) {
                fit->long_first = a;
                fit->long_last = a + len - 1;
                break;
            }
        }
    }
    return 0;
}

void dz_fit_describe(const struct dz_fit *fit, size_t n_layers, char *buf, size_t size)
{
    int used = 0;
    buf[0] = '\0';
    if (fit->tail_first >= 0)
        used = snprintf(buf, size, "the last %zu layers fit: -pp_start %d -pp_end %zu",
                        n_layers - (size_t)fit->tail_first, fit->tail_first, n_layers - 1);
    else
        used = snprintf(buf, size, "no range ending at the last layer fits");
    if (used < 0 || (size_t)used >= size)
        return;
    if (fit->long_first >= 0)
        snprintf(buf + used, size - (size_t)used,
                 "; the longest range that fits: -pp_start %d -pp_end %d (%d layers)",
                 fit->long_first, fit->long_last, fit->long_last - fit->long_first + 1);
    else
        snprintf(buf + used, size - (size_t)used,
                 "; no layer fits on its own at this batch (try a smaller batch)");
}

int dz_partition_fits(const struct dk_model *m, const struct dnn_network *shapes, int first,
                      int last, int batch, bool training, size_t capacity, size_t *need,
                      struct dk_error *err)
{
    if (dz_segment_need(m, shapes, (size_t)first, (size_t)last, batch, training, need, err) != 0)
        return -1;
    if (*need <= capacity)
        return 0;
    struct dz_fit fit;
    char advice[512];
    if (dz_fit_search(m, shapes, batch, training, capacity, &fit, err) != 0)
        return -1;
    dz_fit_describe(&fit, shapes->n, advice, sizeof advice);
    return dk_fail(err,
                   "layers %d..%d need %zu bytes of secure memory at batch %d%s, the TA has "
                   "TA_DATA_SIZE = %zu; %s",
                   first, last, *need, batch, training ? " for training" : "", capacity, advice);
}

int dz_print_plan(FILE *f, const struct dk_model *m, const struct dnn_network *shapes, int batch,
                  bool training, size_t capacity, struct dk_error *err)
{
    const size_t n = shapes->n;
    fprintf(f, "secure memory at batch %d for %s; TA_DATA_SIZE = %zu bytes\n", batch,
            training ? "training" : "inference", capacity);
    fprintf(f, "layer  type          layer bytes   layers i..%zu bytes  fits\n", n - 1);
    for (size_t i = 0; i < n; i++) {
        size_t own = 0, tail = 0;
        bool ok = false;
        if (dz_layer_need(m, shapes, i, batch, training, &own, err) != 0 ||
            valid_need(m, shapes, (int)i, (int)n - 1, batch, training, &ok, &tail, err) != 0)
            return -1;
        if (ok)
            fprintf(f, "%5zu  %-10s %14zu %20zu  %s\n", i, layer_name(&shapes->layers[i]), own,
                    tail, tail <= capacity ? "yes" : "no");
        else
            fprintf(f, "%5zu  %-10s %14zu %20s  %s\n", i, layer_name(&shapes->layers[i]), own, "-",
                    "not a valid partition");
    }
    struct dz_fit fit;
    char advice[512];
    if (dz_fit_search(m, shapes, batch, training, capacity, &fit, err) != 0)
        return -1;
    dz_fit_describe(&fit, n, advice, sizeof advice);
    fprintf(f, "%s\n", advice);
    return 0;
}
