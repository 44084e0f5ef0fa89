/*
 * partition.c - shapes without tensors, partition rules and the secure-memory
 * plan of a TEE segment (see partition.h).
 */
#include "host/partition.h"

#include "darknet/weights.h"

#include "ta/include/dz_ta_memory.h"
#include "ta/include/dz_wire.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static const char *layer_name(const struct dnn_layer *l)
{
    return l->ops ? l->ops->name : "?";
}

/* ------------------------------------------------------------------ shapes */

/* A tree softmax whose setup failed: its tree has another number of classes than the
 * layer has inputs. Says both, the inputs from the layers before it set up alone. */
static int tree_mismatch(const struct dk_model *m, const struct dnn_net_config *cfg, size_t i,
                         struct dk_error *err)
{
    size_t inputs = (size_t)cfg->h * (size_t)cfg->w * (size_t)cfg->c;
    struct dnn_network *front = NULL;
    size_t failed = i;
    if (i > 0 && dnn_network_setup(&front, cfg, m->specs, i, &failed) == DNN_OK)
        inputs = front->layers[i - 1].outputs;
    dnn_network_free(front);
    return dk_fail(err,
                   "layer %zu (softmax, line %d): its tree has %zu classes but the layer has "
                   "%zu inputs; the layer before it must output one value per line of the tree "
                   "file",
                   i, m->lines[i], m->tree.n, inputs);
}

int dz_shapes_create(const struct dk_model *m, int batch, uint64_t seed, struct dnn_network **out,
                     struct dk_error *err)
{
    *out = NULL;
    if (!m || m->n == 0 || batch <= 0)
        return dk_fail(err, "no layers to plan");
    struct dnn_net_config cfg = m->net;
    cfg.batch = batch;
    struct dnn_network *net = NULL;
    size_t failed = m->n;
    /* The engine's own setup loop: the shapes here are the shapes the TA and the normal
     * world's networks will have. */
    enum dnn_status st = dnn_network_setup(&net, &cfg, m->specs, m->n, &failed);
    if (st != DNN_OK && failed < m->n && m->specs[failed].tree_group_size)
        return tree_mismatch(m, &cfg, failed, err);
    if (st != DNN_OK && failed < m->n) {
        const struct dnn_layer_ops *ops = dnn_layer_ops_for(m->specs[failed].kind);
        return dk_fail(err, "layer %zu (%s, line %d): %s", failed, ops ? ops->name : "?",
                       m->lines[failed], dnn_status_str(st));
    }
    if (st != DNN_OK)
        return dk_fail(err, "cannot set up the network: %s", dnn_status_str(st));
    net->seed = seed;
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
    dnn_network_free(shapes);
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
    struct dk_weights_header h = {0};
    size_t held = 0;
    int rc = dk_weights_read_header(path, &h, err);
    if (rc == 0)
        rc = dk_weights_check_prefix(shapes, path, &h, &held, err);
    if (rc != 0 && h.file_size - h.bytes == 4 * dz_range_param_floats(shapes, 0, shapes->n - 1)) {
        /* the likely mistake: a saved file (darknet's, darknetp's, a sealed pair) holds
         * every layer, which dontload and dontloadscales do not read */
        for (size_t i = 0; i < shapes->n; i++) {
            if (dk_weights_file_floats(&shapes->layers[i]) !=
                dz_layer_param_floats(&shapes->layers[i])) {
                rc = dk_fail(err,
                             "%s holds every layer's weights, as a saved file or a sealed pair "
                             "does; layer %zu's dontload or dontloadscales reads a file "
                             "without some (remove the key to load this one)",
                             path, i);
                break;
            }
        }
    }
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
        /* route's layers and a shortcut's sources after from */
        if (s[i].kind == DNN_LAYER_ROUTE || s[i].kind == DNN_LAYER_SHORTCUT)
            for (int r = 0; r < s[i].n_route && r < DNN_MAX_ROUTE; r++)
                s[i].route[r] -= (int)first;
        if (dnn_kind_reads_from(s[i].kind))
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

/* The layers a route, shortcut or scale_channels reads (absolute indexes); returns how many. */
static int reads_of(const struct dnn_layer *l, int out[DNN_MAX_READS])
{
    return dnn_spec_reads(&l->spec, out);
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
        int reads[DNN_MAX_READS];
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
    size_t tree_words = 0;
    for (int i = first; i <= last; i++)
        tree_words += dz_wire_tree_words(&shapes->layers[i].spec, 1);
    if (tree_words > DZ_MAX_TREE_WORDS)
        return dk_fail(err,
                       "the tree softmax layers of the TEE segment %d..%d need %zu words of group "
                       "sizes, the TA's model description holds at most %u",
                       first, last, tree_words, (unsigned)DZ_MAX_TREE_WORDS);
    for (int i = 0; i < first; i++)
        if (shapes->layers[i].has_cost)
            return dk_fail(err,
                           "layer %d (%s) computes a loss before the TEE segment %d..%d; a "
                           "loss layer must be inside the segment or after it: start the "
                           "segment at layer %d or earlier (-pp_start %d)",
                           i, layer_name(&shapes->layers[i]), first, last, i, i);
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

/* The engine's plan of layers [first, last] built alone, as the TA plans them. */
static int plan_range(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                      size_t last, int batch, bool training, bool stream, struct dnn_plan *plan,
                      struct dk_error *err)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec *specs = NULL;
    memset(plan, 0, sizeof *plan);
    if (dz_segment_config(m, shapes, first, last, batch, 1, &cfg, &specs, err) != 0)
        return -1;
    cfg.stream_params = stream;
    enum dnn_status st = dnn_plan_build(plan, &cfg, specs, last - first + 1, training);
    free(specs);
    if (st != DNN_OK) {
        char why[128];
        dnn_plan_describe(plan, why, sizeof why);
        dnn_plan_free(plan);
        return dk_fail(err, "layers %zu..%zu: cannot plan: %s (of the segment)", first, last, why);
    }
    return 0;
}

/*
 * The TA's formula (ta/include/dz_ta_memory.h) over the engine's plan of layers first..last,
 * resident (stream false) or with streamed parameters: the bytes into *bytes.
 */
static int segment_memory(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                          size_t last, int batch, bool training, bool stream, size_t *bytes,
                          struct dk_error *err)
{
    struct dnn_plan plan;
    if (plan_range(m, shapes, first, last, batch, training, stream, &plan, err) != 0)
        return -1;
    struct dz_ta_memory_args a = {
        .engine_bytes = plan.bytes,
        .spec_bytes = (last - first + 1) * sizeof(struct dnn_layer_spec) +
                      dz_wire_tree_words(&m->specs[first], last - first + 1) * sizeof(int),
        .batch = (size_t)batch,
        .inputs = plan.inputs,
        .outputs = plan.outputs,
        .truths = plan.truths,
        .param_floats = plan.param_floats,
        .training = training,
        .first_layer = first == 0,
        .ends_network = last + 1 == shapes->n,
        .takes_truth = training && plan.has_cost,
    };
    dnn_plan_free(&plan);
    struct dz_ta_memory mem;
    if (!dz_ta_memory_compute(&a, DZ_TA_HEAP_RESERVE_DEFAULT, &mem))
        return dk_fail(err, "layers %zu..%zu: secure memory size overflows", first, last);
    *bytes = mem.total;
    return 0;
}

int dz_segment_need(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                    size_t last, int batch, bool training, size_t *bytes, struct dk_error *err)
{
    return segment_memory(m, shapes, first, last, batch, training, false, bytes, err);
}

/* Bytes of one output filter or neuron in a chunk (the engine's tiles, dnn.h): its slice of
 * every parameter tensor, and in training of their update buffers as well. */
static size_t chunk_row_bytes(const struct dnn_layer *l, bool training)
{
    return dnn_tile_row_floats(l, training) * sizeof(float);
}

int dz_segment_stream_need(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                           size_t last, int batch, bool training, size_t *base, size_t *min_chunk,
                           struct dk_error *err)
{
    size_t row_max = 0;
    for (size_t i = first; i <= last; i++) {
        const struct dnn_layer *l = &shapes->layers[i];
        if (!l->n_params)
            continue;
        const char *why = dnn_tile_refusal(l);
        if (why)
            return dk_fail(err, "layers %zu..%zu cannot stream their weights: layer %zu (%s): %s",
                           first, last, i, l->ops->name, why);
        if (training && l->spec.frozen)
            return dk_fail(err,
                           "layers %zu..%zu cannot train with their weights streamed: layer %zu "
                           "is frozen (stopbackward)",
                           first, last, i);
        const size_t row = chunk_row_bytes(l, training);
        row_max = row > row_max ? row : row_max;
    }
    if (!row_max)
        return dk_fail(err, "layers %zu..%zu have no parameters to stream", first, last);
    if (training && m->net.adam)
        return dk_fail(err, "layers %zu..%zu cannot train with their weights streamed under adam",
                       first, last);
    if (segment_memory(m, shapes, first, last, batch, training, true, base, err) != 0)
        return -1;
    *min_chunk = row_max > DZ_STREAM_CHUNK_MIN ? row_max : DZ_STREAM_CHUNK_MIN;
    return 0;
}

int dz_stream_plan(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                   size_t last, int batch, bool training, size_t capacity, size_t work_max,
                   struct dz_stream_fit *fit, struct dk_error *err)
{
    size_t base = 0, min_chunk = 0;
    memset(fit, 0, sizeof *fit);
    if (dz_segment_stream_need(m, shapes, first, last, batch, training, &base, &min_chunk, err) !=
        0)
        return -1;
    if (base > capacity || capacity - base < min_chunk)
        return dk_fail(err,
                       "layers %zu..%zu need %zu bytes of secure memory even with their weights "
                       "streamed (%zu plus a working buffer of at least %zu) at batch %d, the TA "
                       "has TA_DATA_SIZE = %zu",
                       first, last, base + min_chunk, base, min_chunk, batch, capacity);
    if (!work_max)
        work_max = DZ_STREAM_WORK_MAX;
    if (work_max < min_chunk)
        return dk_fail(err,
                       "layers %zu..%zu take a working buffer of at least %zu bytes to stream "
                       "their weights (one output neuron's parameters of the widest layer); "
                       "the cap is %zu",
                       first, last, min_chunk, work_max);
    size_t chunk = capacity - base;
    if (chunk > work_max)
        chunk = work_max;
    fit->chunk_bytes = chunk & ~(size_t)3;
    fit->need = base + fit->chunk_bytes;
    for (size_t i = first; i <= last; i++) {
        const struct dnn_layer *l = &shapes->layers[i];
        if (!l->n_params)
            continue;
        const size_t row = chunk_row_bytes(l, training);
        const size_t chunks = dnn_tile_layer_count(l, fit->chunk_bytes, training);
        fit->n_chunks += chunks;
        fit->sealed_bytes +=
            (uint64_t)l->out_c * row +
            (uint64_t)chunks * (sizeof(struct dz_chunk_header) + DZ_SEALED_TAG_BYTES);
    }
    return 0;
}

/* A layer's own bytes in a segment (struct dnn_layer_plan): everything but the shared
 * workspace, with its output counted as its own. */
static uint64_t layer_own_bytes(const struct dnn_layer_plan *lp, bool training)
{
    return (uint64_t)lp->param_bytes + lp->scratch_bytes + (training ? lp->train_bytes : 0) +
           lp->output_bytes + sizeof(struct dnn_layer);
}

int dz_layer_need(const struct dk_model *m, const struct dnn_network *shapes, size_t i, int batch,
                  bool training, size_t *bytes, struct dk_error *err)
{
    struct dnn_network *own = NULL;
    struct dnn_plan plan;
    if (i >= shapes->n)
        return dk_fail(err, "layer %zu: the network has %zu layers", i, shapes->n);
    if (shapes->cfg.batch != batch) {
        if (dz_shapes_create(m, batch, shapes->seed, &own, err) != 0)
            return -1;
        shapes = own;
    }
    enum dnn_status st = dnn_plan_of_network(&plan, shapes, training);
    dz_shapes_free(own);
    if (st != DNN_OK)
        return dk_fail(err, "layer %zu: cannot plan: %s", i, dnn_status_str(st));
    *bytes = (size_t)layer_own_bytes(&plan.layers[i], training);
    dnn_plan_free(&plan);
    return 0;
}

/* ------------------------------------------------------ the plan in one pass
 *
 * `tee plan` and the search for partitions that fit ask for the need of every tail and
 * of many ranges. Planning each range with dnn_plan_build costs its length, so the plan
 * would be quadratic in the layers (a cfg of 200,000 [connected] layers ran for minutes)
 * and the longest-range search cubic. A layer's buffers do not depend on the range it
 * runs in (its input shape and the shapes it reads are those of the whole network), so
 * the engine's plan of the whole network gives every layer's figures once (struct
 * dnn_layer_plan), and the plan of [a, b] is dnn.h's formula over them:
 *
 *   engine(a, b) = sum_{a<=i<=b} (fixed_i + sizeof(struct dnn_layer))
 *                + sum of output_i over the layers of [a, b] with an output of their own
 *                + max of output_i over the others of even index + the same of odd index
 *                + max_{a<=i<=b} workspace_i + 64 + sizeof(struct dnn_network)
 *
 * with fixed_i the layer's parameters and inference scratch (and with training its
 * training buffers and delta). With training every output is its own; for inference the
 * segment's output layer o (its last layer that is not a [cost]) and the layers after it
 * keep theirs, and so do the layers a route or shortcut reads; the others of [a, o - 1]
 * share the two activation buffers (the parity of an index is the same in the segment
 * and in the network up to a swap of the two, which leaves the sum alone). The table
 * holds prefix sums and range-maximum trees, so any range's need and validity cost
 * O(log n). tests/test_plan_scale.c checks every range of several networks against
 * dnn_plan_build and dz_partition_check, and the search against a brute force.
 */

/* Sums past this are refused: prefix differences stay exact in uint64_t. */
#define PLAN_MAX ((uint64_t)1 << 62)

/* A node of the range tree: over its layers, the largest workspace, the largest output of
 * the layers that may share of each parity (0 for the others), the smallest layer read. */
struct plan_node {
    uint64_t ws;
    uint64_t share[2];
    int read; /* INT_MAX when none */
};

static const struct plan_node empty_node = {0, {0, 0}, INT_MAX};

static struct plan_node node_join(struct plan_node x, struct plan_node y)
{
    x.ws = y.ws > x.ws ? y.ws : x.ws;
    x.share[0] = y.share[0] > x.share[0] ? y.share[0] : x.share[0];
    x.share[1] = y.share[1] > x.share[1] ? y.share[1] : x.share[1];
    x.read = y.read < x.read ? y.read : x.read;
    return x;
}

struct plan_table {
    size_t n, size;         /* layers; leaves of the trees (a power of two >= n) */
    uint64_t *fixed_sum;    /* (n + 1) prefix sums of fixed_i + sizeof(struct dnn_layer) */
    uint64_t *out_sum;      /* (n + 1) prefix sums of output_i */
    uint64_t *own_out_sum;  /* (n + 1) prefix sums of output_i of layers that never share */
    uint64_t *param_sum;    /* (n + 1) prefix sums of parameter floats */
    struct plan_node *tree; /* (2 size) range tree, leaves at [size, size + n) */
    int *read_suffix;       /* (n + 1) min of the reads of layers i..n-1 */
    int *next_cost;         /* (n + 1) first layer >= i that computes a loss, or n */
    int *prev_noncost;      /* (n) last layer <= i that is not a [cost], or -1 */
    size_t *tree_sum;       /* (n + 1) tree group-table words of layers < i (the TA keeps them) */
    int first_cost;         /* next_cost[0] */
    const struct dnn_network *shapes;
    const struct dk_model *m;
    int batch;
    bool training;
    struct dnn_plan whole; /* the engine's plan of the whole network (totals; layers freed) */
};

static void plan_table_free(struct plan_table *t)
{
    free(t->fixed_sum);
    free(t->out_sum);
    free(t->own_out_sum);
    free(t->param_sum);
    free(t->tree);
    free(t->read_suffix);
    free(t->next_cost);
    free(t->prev_noncost);
    free(t->tree_sum);
    memset(t, 0, sizeof *t);
}

/* Smallest layer index this layer reads (route, shortcut), INT_MAX when it reads none. */
static int min_read(const struct dnn_layer *l)
{
    int reads[DNN_MAX_READS];
    int nr = reads_of(l, reads);
    int lo = INT_MAX;
    for (int r = 0; r < nr; r++)
        lo = reads[r] < lo ? reads[r] : lo;
    return lo;
}

/* The join of the leaves [a, b] (empty_node when a > b): the usual bottom-up walk. */
static struct plan_node node_query(const struct plan_table *t, size_t a, size_t b)
{
    struct plan_node r = empty_node;
    if (a > b)
        return r;
    for (size_t lo = a + t->size, hi = b + t->size + 1; lo < hi; lo /= 2, hi /= 2) {
        if (lo & 1)
            r = node_join(r, t->tree[lo++]);
        if (hi & 1)
            r = node_join(r, t->tree[--hi]);
    }
    return r;
}

/* Builds the table from the engine's plan of a shape network set up at `batch` (shapes,
 * or a new one when shapes has another batch: buffer sizes depend on it). */
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
    struct dnn_plan plan;
    enum dnn_status st = dnn_plan_of_network(&plan, shapes, training);
    if (st != DNN_OK)
        return dk_fail(err, "cannot plan %zu layers: %s", shapes->n, dnn_status_str(st));
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
    t->fixed_sum = calloc(n + 1, sizeof *t->fixed_sum);
    t->out_sum = calloc(n + 1, sizeof *t->out_sum);
    t->own_out_sum = calloc(n + 1, sizeof *t->own_out_sum);
    t->param_sum = calloc(n + 1, sizeof *t->param_sum);
    t->tree = malloc(2 * size * sizeof *t->tree);
    t->read_suffix = malloc((n + 1) * sizeof *t->read_suffix);
    t->next_cost = malloc((n + 1) * sizeof *t->next_cost);
    t->prev_noncost = malloc(n * sizeof *t->prev_noncost);
    t->tree_sum = malloc((n + 1) * sizeof *t->tree_sum);
    if (!t->fixed_sum || !t->out_sum || !t->own_out_sum || !t->param_sum || !t->tree ||
        !t->read_suffix || !t->next_cost || !t->prev_noncost || !t->tree_sum) {
        dnn_plan_free(&plan);
        return dk_fail(err, "out of memory planning %zu layers", n);
    }
    for (size_t i = 0; i < 2 * size; i++)
        t->tree[i] = empty_node;
    for (size_t i = 0; i < n; i++) {
        const struct dnn_layer_plan *lp = &plan.layers[i];
        const uint64_t fixed = (uint64_t)lp->param_bytes + lp->scratch_bytes +
                               (training ? lp->train_bytes : 0) + sizeof(struct dnn_layer);
        /* struct dnn_layer_plan's rule, less the range's output layer and what follows it,
         * which table_engine adds for each range. */
        const bool may_share = !training && !lp->read_later;
        t->fixed_sum[i + 1] = t->fixed_sum[i] + fixed;
        t->out_sum[i + 1] = t->out_sum[i] + lp->output_bytes;
        t->own_out_sum[i + 1] = t->own_out_sum[i] + (may_share ? 0 : lp->output_bytes);
        t->param_sum[i + 1] = t->param_sum[i] + lp->param_floats;
        if (t->fixed_sum[i + 1] > PLAN_MAX || t->out_sum[i + 1] > PLAN_MAX ||
            t->param_sum[i + 1] > PLAN_MAX || lp->workspace_floats > PLAN_MAX / 4) {
            dnn_plan_free(&plan);
            return dk_fail(err, "layers 0..%zu: secure memory size overflows", i);
        }
        t->tree[size + i].ws = (uint64_t)lp->workspace_floats * sizeof(float);
        if (may_share)
            t->tree[size + i].share[i % 2] = lp->output_bytes;
        t->tree[size + i].read = min_read(&shapes->layers[i]);
        t->prev_noncost[i] =
            lp->kind != DNN_LAYER_COST ? (int)i : (i ? t->prev_noncost[i - 1] : -1);
    }
    dnn_plan_free(&plan);
    t->whole = plan;
    for (size_t i = size - 1; i >= 1; i--)
        t->tree[i] = node_join(t->tree[2 * i], t->tree[2 * i + 1]);
    t->read_suffix[n] = INT_MAX;
    t->next_cost[n] = (int)n;
    for (size_t i = n; i-- > 0;) {
        const int r = t->tree[size + i].read;
        t->read_suffix[i] = r < t->read_suffix[i + 1] ? r : t->read_suffix[i + 1];
        t->next_cost[i] = shapes->layers[i].has_cost ? (int)i : t->next_cost[i + 1];
    }
    t->tree_sum[0] = 0;
    for (size_t i = 0; i < n; i++)
        t->tree_sum[i + 1] = t->tree_sum[i] + dz_wire_tree_words(&shapes->layers[i].spec, 1);
    t->first_cost = t->next_cost[0];
    return 0;
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

/* The segment's output layer: its last layer that is not a [cost]. */
static size_t table_output(const struct plan_table *t, size_t a, size_t b)
{
    const int k = t->prev_noncost[b];
    return k >= (int)a ? (size_t)k : a;
}

/* The engine's plan of [a, b] by the formula above; front is the join of [a, o - 1] and
 * back of [o, b], o the segment's output layer. */
static uint64_t table_engine(const struct plan_table *t, size_t a, size_t b, size_t o,
                             struct plan_node front, struct plan_node back)
{
    const uint64_t ws = front.ws > back.ws ? front.ws : back.ws;
    return t->fixed_sum[b + 1] - t->fixed_sum[a] + t->out_sum[b + 1] - t->out_sum[o] +
           t->own_out_sum[o] - t->own_out_sum[a] + front.share[0] + front.share[1] + ws + 64 +
           sizeof(struct dnn_network);
}

/* Validity and need of [a, b] in O(log n): dz_partition_check's answer, then
 * dz_segment_need from the table (the engine's plan by the sums above, then the TA's
 * formula); *ok false when invalid or when a term overflows. */
static void table_range(const struct plan_table *t, size_t a, size_t b, bool *ok, size_t *need)
{
    const size_t o = table_output(t, a, b);
    const struct plan_node front = node_query(t, a, o - (o > a)), back = node_query(t, o, b);
    const struct plan_node front_only = o > a ? front : empty_node;
    const int read = front_only.read < back.read ? front_only.read : back.read;
    *ok = false;
    if (!table_valid(t, a, b, read))
        return;
    const struct dnn_network *s = t->shapes;
    const bool has_cost = t->next_cost[a] <= (int)b;
    struct dz_ta_memory_args args = {
        .engine_bytes = (size_t)table_engine(t, a, b, o, front_only, back),
        .spec_bytes = (b - a + 1) * sizeof(struct dnn_layer_spec) +
                      (t->tree_sum[b + 1] - t->tree_sum[a]) * sizeof(int),
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
        return;
    *need = mem.total;
    *ok = true;
}

/* The largest b in [a, hi] whose layers a..b read nothing before a, or a - 1 (reads only
 * grow more restrictive with b, so a binary search finds it). */
static size_t last_self_contained(const struct plan_table *t, size_t a, size_t hi)
{
    if (node_query(t, a, hi).read >= (int)a)
        return hi;
    size_t lo = a, top = hi; /* answer in [lo - 1, top - 1] */
    while (lo < top) {
        const size_t mid = lo + (top - lo) / 2;
        if (node_query(t, a, mid).read >= (int)a)
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
        floor_sum[i + 1] = floor_sum[i] + (t->fixed_sum[i + 1] - t->fixed_sum[i]) +
                           (t->own_out_sum[i + 1] - t->own_out_sum[i]) +
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
    const struct dnn_plan *w = &t.whole;
    fprintf(f,
            "whole network: %zu parameters (%zu bytes), activations %zu bytes (%zu in two "
            "shared buffers), scratch %zu, training buffers %zu, workspace %zu; engine %zu "
            "bytes\n",
            w->param_floats, w->param_bytes, w->activation_bytes,
            w->shared_bytes[0] + w->shared_bytes[1], w->scratch_bytes, w->train_bytes,
            w->workspace_bytes, w->bytes);
    fprintf(f,
            "layer  type              output       params    layer bytes   layers i..%zu bytes  "
            "fits\n",
            n - 1);
    for (size_t i = 0; i < n; i++) {
        /* dz_layer_need from the table. */
        const struct dnn_layer *l = &shapes->layers[i];
        const size_t own_bytes =
            (size_t)(t.fixed_sum[i + 1] - t.fixed_sum[i] + t.out_sum[i + 1] - t.out_sum[i]);
        const unsigned long long params = (unsigned long long)(t.param_sum[i + 1] - t.param_sum[i]);
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out_w, l->out_h, l->out_c);
        bool ok = false;
        size_t tail = 0;
        table_range(&t, i, n - 1, &ok, &tail);
        if (ok)
            fprintf(f, "%5zu  %-10s %14s %12llu %14zu %20zu  %s\n", i, layer_name(l), shape, params,
                    own_bytes, tail, tail <= capacity ? "yes" : "no");
        else
            fprintf(f, "%5zu  %-10s %14s %12llu %14zu %20s  %s\n", i, layer_name(l), shape, params,
                    own_bytes, "-", "not a valid partition");
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
