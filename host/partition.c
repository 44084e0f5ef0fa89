/*
 * partition.c - shapes without tensors, partition rules and the secure-memory
 * plan of a TEE segment (see partition.h).
 */
#include "host/partition.h"

#include "darknet/weights.h"

#include "ta/include/dz_ta_memory.h"

#include <limits.h>
#include <openssl/crypto.h>
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
    /* The engine's rule (DNN_ERR_LOSS_SIZE), said here with the layer's name: a loss layer
     * reads as many truth values as it has outputs. */
    for (size_t i = 0; i < m->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        if (l->has_cost && l->outputs != net->truths) {
            dk_fail(err,
                    "layer %zu (%s) computes a loss on %zu values per image, but the network's "
                    "output (its truth) has %zu: a loss layer must come last, or before layers "
                    "of its own size",
                    i, l->ops->name, l->outputs, net->truths);
            dz_shapes_free(net);
            return -1;
        }
    }
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

int dz_weights_precheck(const struct dk_model *m, const char *path, struct dk_error *err)
{
    struct dnn_network *shapes = NULL;
    /* Parameter counts do not depend on the batch: 1 keeps the shape network small. */
    if (dz_shapes_create(m, 1, 0, &shapes, err) != 0)
        return -1;
    int rc = dk_weights_check(shapes, path, err);
    dz_shapes_free(shapes);
    return rc;
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

/* ------------------------------------------------------ the plan in one pass
 *
 * `tee plan` and the search for partitions that fit ask for the need of every tail and
 * of many ranges. Planning each range with dnn_network_plan costs its length, so the
 * plan was quadratic in the layers (a cfg of 200,000 [connected] layers ran for minutes)
 * and the longest-range search cubic. A layer's buffers do not depend on the range it
 * runs in (its input shape and the shapes it reads are those of the whole network), so
 * the engine's plan of [a, b] is a sum over its layers plus the largest workspace:
 *
 *   engine(a, b) = sum_{a<=i<=b} (arena_i + sizeof(struct dnn_layer))
 *                  + max_{a<=i<=b} workspace_i + DNN_ALIGN + sizeof(struct dnn_network)
 *
 * with arena_i the layer's buffers (its own requests, its output and, for training, its
 * delta), each rounded up to DNN_ALIGN as dnn/network.c's arena_size does. The table
 * holds prefix sums and range trees, so any range's need and validity cost O(log n).
 * tests/test_plan_scale.c checks every range of several networks against
 * dnn_network_plan and dz_partition_check, and the search against a brute force.
 */

/* dnn/network.c's alignment of each buffer in the arena. */
#define PLAN_ALIGN 64u

/* Sums past this are refused: prefix differences stay exact in uint64_t. */
#define PLAN_MAX ((uint64_t)1 << 62)

struct plan_table {
    size_t n, size;       /* layers; leaves of the trees (a power of two >= n) */
    uint64_t *engine_sum; /* (n + 1) prefix sums of arena_i + sizeof(struct dnn_layer) */
    uint64_t *param_sum;  /* (n + 1) prefix sums of parameter floats */
    uint64_t *ws_tree;    /* (2 size) max of workspace bytes, leaves at [size, size + n) */
    int *read_tree;       /* (2 size) min of the layer each reads, INT_MAX when none */
    int *read_suffix;     /* (n + 1) min of the reads of layers i..n-1 */
    int *next_cost;       /* (n + 1) first layer >= i that computes a loss, or n */
    int *prev_noncost;    /* (n) last layer <= i that is not a [cost], or -1 */
    int first_cost;       /* next_cost[0] */
    const struct dnn_network *shapes;
    const struct dk_model *m;
    int batch;
    bool training;
};

static uint64_t align64(uint64_t x)
{
    return (x + (PLAN_ALIGN - 1)) & ~(uint64_t)(PLAN_ALIGN - 1);
}

static void plan_table_free(struct plan_table *t)
{
    free(t->engine_sum);
    free(t->param_sum);
    free(t->ws_tree);
    free(t->read_tree);
    free(t->read_suffix);
    free(t->next_cost);
    free(t->prev_noncost);
    memset(t, 0, sizeof *t);
}

/* Bytes of layer l's buffers in the engine's arena; false past PLAN_MAX. */
static bool layer_arena(const struct dnn_layer *l, int batch, bool training, uint64_t *out)
{
    uint64_t sum = 0;
    for (size_t b = 0; b < l->n_buffers; b++) {
        const struct dnn_buffer *buf = &l->buffers[b];
        if (buf->role == DNN_BUF_TRAIN && !training)
            continue;
        if (buf->elem_size && buf->count > PLAN_MAX / buf->elem_size)
            return false;
        sum += align64((uint64_t)buf->count * buf->elem_size);
        if (sum > PLAN_MAX)
            return false;
    }
    /* setup_layers adds the output, and the delta for training, after the layer's own. */
    if (l->outputs > PLAN_MAX / 4 / (uint64_t)batch)
        return false;
    const uint64_t output = align64((uint64_t)l->outputs * (uint64_t)batch * 4);
    sum += training ? 2 * output : output;
    *out = sum;
    return sum <= PLAN_MAX;
}

/* Smallest layer index this layer reads (route, shortcut), INT_MAX when it reads none. */
static int min_read(const struct dnn_layer *l)
{
    int reads[DNN_MAX_ROUTE];
    int nr = reads_of(l, reads);
    int lo = INT_MAX;
    for (int r = 0; r < nr; r++)
        lo = reads[r] < lo ? reads[r] : lo;
    return lo;
}

/* Builds the table from a shape network set up at `batch` (shapes, or a new one when
 * shapes has another batch: buffer sizes depend on it). */
static int plan_table_build(struct plan_table *t, const struct dk_model *m,
                            const struct dnn_network *shapes, int batch, bool training,
                            struct dnn_network **own, struct dk_error *err)
{
    memset(t, 0, sizeof *t);
    *own = NULL;
    if (shapes->cfg.batch != batch) {
        if (dz_shapes_create(m, batch, shapes->seed, own, err) != 0)
            return -1;
        shapes = *own;
    }
    const size_t n = shapes->n;
    size_t size = 1;
    while (size < n)
        size *= 2;
    t->n = n;
    t->size = size;
    t->shapes = shapes;
    t->m = m;
    t->batch = batch;
    t->training = training;
    t->engine_sum = calloc(n + 1, sizeof *t->engine_sum);
    t->param_sum = calloc(n + 1, sizeof *t->param_sum);
    t->ws_tree = calloc(2 * size, sizeof *t->ws_tree);
    t->read_tree = malloc(2 * size * sizeof *t->read_tree);
    t->read_suffix = malloc((n + 1) * sizeof *t->read_suffix);
    t->next_cost = malloc((n + 1) * sizeof *t->next_cost);
    t->prev_noncost = malloc(n * sizeof *t->prev_noncost);
    if (!t->engine_sum || !t->param_sum || !t->ws_tree || !t->read_tree || !t->read_suffix ||
        !t->next_cost || !t->prev_noncost)
        return dk_fail(err, "out of memory planning %zu layers", n);
    for (size_t i = 0; i < 2 * size; i++)
        t->read_tree[i] = INT_MAX;
    for (size_t i = 0; i < n; i++) {
        const struct dnn_layer *l = &shapes->layers[i];
        uint64_t arena = 0;
        const uint64_t params = dz_layer_param_floats(l);
        if (!layer_arena(l, batch, training, &arena) || l->workspace_floats > PLAN_MAX / 4 ||
            params > PLAN_MAX / 4)
            return dk_fail(err, "layer %zu (%s): secure memory size overflows", i, layer_name(l));
        t->engine_sum[i + 1] = t->engine_sum[i] + arena + sizeof(struct dnn_layer);
        t->param_sum[i + 1] = t->param_sum[i] + params;
        if (t->engine_sum[i + 1] > PLAN_MAX || t->param_sum[i + 1] > PLAN_MAX)
            return dk_fail(err, "layers 0..%zu: secure memory size overflows", i);
        t->ws_tree[size + i] = (uint64_t)l->workspace_floats * sizeof(float);
        t->read_tree[size + i] = min_read(l);
        t->prev_noncost[i] = l->kind != DNN_LAYER_COST ? (int)i : (i ? t->prev_noncost[i - 1] : -1);
    }
    for (size_t i = size - 1; i >= 1; i--) {
        const uint64_t a = t->ws_tree[2 * i], b = t->ws_tree[2 * i + 1];
        const int c = t->read_tree[2 * i], d = t->read_tree[2 * i + 1];
        t->ws_tree[i] = a > b ? a : b;
        t->read_tree[i] = c < d ? c : d;
    }
    t->read_suffix[n] = INT_MAX;
    t->next_cost[n] = (int)n;
    for (size_t i = n; i-- > 0;) {
        const int r = t->read_tree[size + i];
        t->read_suffix[i] = r < t->read_suffix[i + 1] ? r : t->read_suffix[i + 1];
        t->next_cost[i] = shapes->layers[i].has_cost ? (int)i : t->next_cost[i + 1];
    }
    t->first_cost = t->next_cost[0];
    return 0;
}

/* Largest workspace (bytes) and smallest read of layers [a, b]: the usual bottom-up walk. */
static void tree_query(const struct plan_table *t, size_t a, size_t b, uint64_t *ws, int *read)
{
    uint64_t w = 0;
    int r = INT_MAX;
    for (size_t lo = a + t->size, hi = b + t->size + 1; lo < hi; lo /= 2, hi /= 2) {
        if (lo & 1) {
            w = t->ws_tree[lo] > w ? t->ws_tree[lo] : w;
            r = t->read_tree[lo] < r ? t->read_tree[lo] : r;
            lo++;
        }
        if (hi & 1) {
            hi--;
            w = t->ws_tree[hi] > w ? t->ws_tree[hi] : w;
            r = t->read_tree[hi] < r ? t->read_tree[hi] : r;
        }
    }
    *ws = w;
    *read = r;
}

/* range_truths from the table. */
static size_t table_truths(const struct plan_table *t, size_t a, size_t b)
{
    const int k = t->prev_noncost[b];
    return t->shapes->layers[k >= (int)a ? (size_t)k : a].outputs;
}

/* The rules of dz_partition_check that depend on the segment's end b alone. */
static bool end_ok(const struct plan_table *t, size_t b)
{
    const size_t n = t->n;
    if (b + 1 < n && t->read_suffix[b + 1] < (int)b + 1)
        return false; /* a later layer reads the segment or what precedes it */
    if (b + 1 < n && t->next_cost[b + 1] < (int)n &&
        table_truths(t, b + 1, n - 1) != t->shapes->truths)
        return false;
    return true;
}

/* dz_partition_check's answer for [a, b]; `read` is the smallest read inside it. */
static bool table_valid(const struct plan_table *t, size_t a, size_t b, int read)
{
    if (read < (int)a || t->first_cost < (int)a || !end_ok(t, b))
        return false;
    return t->next_cost[a] > (int)b || table_truths(t, a, b) == t->shapes->truths;
}

/* dz_segment_need from the table (engine plan by the sums above, then the TA's
 * formula); false when a term overflows. */
static bool table_need(const struct plan_table *t, size_t a, size_t b, uint64_t ws, size_t *need)
{
    const struct dnn_network *s = t->shapes;
    const uint64_t engine =
        t->engine_sum[b + 1] - t->engine_sum[a] + ws + PLAN_ALIGN + sizeof(struct dnn_network);
    const bool has_cost = t->next_cost[a] <= (int)b;
    struct dz_ta_memory_args args = {
        .engine_bytes = (size_t)engine,
        .spec_bytes = (b - a + 1) * sizeof(struct dnn_layer_spec),
        .batch = (size_t)t->batch,
        .inputs = s->layers[a].inputs,
        .outputs = s->layers[b].outputs,
        .truths = table_truths(t, a, b),
        .param_floats = (size_t)(t->param_sum[b + 1] - t->param_sum[a]),
        .training = t->training,
        .first_layer = a == 0,
        .ends_network = b + 1 == t->n,
        .takes_truth = t->training && has_cost,
    };
    struct dz_ta_memory mem;
    if (!dz_ta_memory_compute(&args, DZ_TA_HEAP_RESERVE_DEFAULT, &mem))
        return false;
    *need = mem.total;
    return true;
}

/* Validity and need of [a, b] in O(log n); *ok false when invalid or overflowing. */
static void table_range(const struct plan_table *t, size_t a, size_t b, bool *ok, size_t *need)
{
    uint64_t ws = 0;
    int read = INT_MAX;
    tree_query(t, a, b, &ws, &read);
    *ok = table_valid(t, a, b, read) && table_need(t, a, b, ws, need);
}

/* The largest b in [a, hi] whose layers a..b read nothing before a, or a - 1 (reads only
 * grow more restrictive with b, so a binary search finds it). */
static size_t last_self_contained(const struct plan_table *t, size_t a, size_t hi)
{
    uint64_t ws = 0;
    int read = INT_MAX;
    tree_query(t, a, hi, &ws, &read);
    if (read >= (int)a)
        return hi;
    size_t lo = a, top = hi; /* answer in [lo - 1, top - 1] */
    while (lo < top) {
        const size_t mid = lo + (top - lo) / 2;
        tree_query(t, a, mid, &ws, &read);
        if (read >= (int)a)
            lo = mid + 1;
        else
            top = mid;
    }
    return lo - 1; /* a - 1 when even [a, a] reads before a */
}

/*
 * The search over the table. Tails: one O(log n) look each. Longest range: for each
 * start a (in order, so the earliest wins among equals) only ends that could beat the
 * best length so far are tried, from the longest down: the end is bounded by the
 * layers' own bytes (a two-pointer bound, since every term of the need is at least
 * their sum), by what the segment may read, and ends refused by the rules that depend
 * on the end alone are skipped through a precomputed chain.
 */
static int table_search(const struct plan_table *t, size_t capacity, struct dz_fit *fit,
                        struct dk_error *err)
{
    const size_t n = t->n;
    fit->tail_first = fit->long_first = fit->long_last = -1;
    for (size_t a = n; a-- > 0;) {
        bool ok = false;
        size_t need = 0;
        table_range(t, a, n - 1, &ok, &need);
        if (ok && need <= capacity)
            fit->tail_first = (int)a;
    }
    int *prev_ok = malloc(n * sizeof *prev_ok); /* last b' <= b with end_ok, or -1 */
    uint64_t *floor_sum = malloc((n + 1) * sizeof *floor_sum);
    if (!prev_ok || !floor_sum) {
        free(prev_ok);
        free(floor_sum);
        return dk_fail(err, "out of memory planning %zu layers", n);
    }
    for (size_t b = 0; b < n; b++)
        prev_ok[b] = end_ok(t, b) ? (int)b : (b ? prev_ok[b - 1] : -1);
    /* A lower bound of every range's need that only grows with the range. */
    floor_sum[0] = 0;
    for (size_t i = 0; i < n; i++)
        floor_sum[i + 1] = floor_sum[i] + (t->engine_sum[i + 1] - t->engine_sum[i]) +
                           sizeof(struct dnn_layer_spec) +
                           4 * (t->param_sum[i + 1] - t->param_sum[i]);
    size_t best = 0;
    size_t reach = 0; /* one past the largest end whose floor fits, for the current a */
    for (size_t a = 0; a < n && (int)a <= t->first_cost && n - a > best; a++) {
        if (reach < a)
            reach = a;
        while (reach < n && floor_sum[reach + 1] - floor_sum[a] <= capacity)
            reach++;
        if (reach == a || reach - a <= best)
            continue;
        const size_t hi = last_self_contained(t, a, reach - 1);
        if (hi + 1 == a)
            continue;
        for (int b = prev_ok[hi]; b >= (int)a && (size_t)b - a + 1 > best;
             b = b ? prev_ok[b - 1] : -1) {
            bool ok = false;
            size_t need = 0;
            table_range(t, a, (size_t)b, &ok, &need);
            if (ok && need <= capacity) {
                best = (size_t)b - a + 1;
                fit->long_first = (int)a;
                fit->long_last = b;
                break;
            }
        }
    }
    free(prev_ok);
    free(floor_sum);
    return 0;
}

int dz_fit_search(const struct dk_model *m, const struct dnn_network *shapes, int batch,
                  bool training, size_t capacity, struct dz_fit *fit, struct dk_error *err)
{
    struct plan_table t;
    struct dnn_network *own = NULL;
    int rc = plan_table_build(&t, m, shapes, batch, training, &own, err);
    if (rc == 0)
        rc = table_search(&t, capacity, fit, err);
    plan_table_free(&t);
    dz_shapes_free(own);
    return rc;
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
    struct plan_table t;
    struct dnn_network *own = NULL;
    struct dz_fit fit;
    char advice[512];
    int rc = plan_table_build(&t, m, shapes, batch, training, &own, err);
    if (rc != 0)
        goto out;
    fprintf(f, "secure memory at batch %d for %s; TA_DATA_SIZE = %zu bytes\n", batch,
            training ? "training" : "inference", capacity);
    fprintf(f, "layer  type          layer bytes   layers i..%zu bytes  fits\n", n - 1);
    uint64_t ws_before = 0; /* largest workspace of layers 0..i-1 */
    for (size_t i = 0; i < n; i++) {
        /* dz_layer_need from the table: the plan of [i, i], or for a route or shortcut
         * the growth of the plan of [0, i] over [0, i - 1]. */
        const uint64_t ws_i = t.ws_tree[t.size + i];
        const uint64_t layer = t.engine_sum[i + 1] - t.engine_sum[i];
        const enum dnn_layer_kind k = shapes->layers[i].kind;
        size_t own_bytes = 0;
        if ((k != DNN_LAYER_ROUTE && k != DNN_LAYER_SHORTCUT) || i == 0)
            own_bytes = (size_t)(layer + ws_i + PLAN_ALIGN + sizeof(struct dnn_network));
        else
            own_bytes = (size_t)(layer + (ws_i > ws_before ? ws_i - ws_before : 0));
        ws_before = ws_i > ws_before ? ws_i : ws_before;
        bool ok = false;
        size_t tail = 0;
        table_range(&t, i, n - 1, &ok, &tail);
        if (ok)
            fprintf(f, "%5zu  %-10s %14zu %20zu  %s\n", i, layer_name(&shapes->layers[i]),
                    own_bytes, tail, tail <= capacity ? "yes" : "no");
        else
            fprintf(f, "%5zu  %-10s %14zu %20s  %s\n", i, layer_name(&shapes->layers[i]), own_bytes,
                    "-", "not a valid partition");
    }
    rc = table_search(&t, capacity, &fit, err);
    if (rc != 0)
        goto out;
    dz_fit_describe(&fit, n, advice, sizeof advice);
    fprintf(f, "%s\n", advice);
out:
    plan_table_free(&t);
    dz_shapes_free(own);
    return rc;
}

int dz_range_untranspose(const struct dnn_network *shapes, int first, int last, float *buf,
                         struct dk_error *err)
{
    float *at = buf;
    for (int i = first; i <= last; i++) {
        const struct dnn_layer *l = &shapes->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            const struct dnn_param *prm = &l->params[j];
            if (l->kind == DNN_LAYER_CONNECTED && strcmp(prm->name, "weights") == 0) {
                const size_t rows = l->inputs, cols = l->outputs;
                float *tmp = malloc(prm->count * sizeof(float));
                if (!tmp)
                    return dk_fail(err, "out of memory");
                for (size_t k = 0; k < prm->count; k++)
                    tmp[(k % cols) * rows + k / cols] = at[k];
                memcpy(at, tmp, prm->count * sizeof(float));
                OPENSSL_cleanse(tmp, prm->count * sizeof(float));
                free(tmp);
            }
            at += prm->count;
        }
    }
    return 0;
}
