/*
 * network.c - building a network from specs (plan, then one allocation) and
 * running forward, backward and update over a range of its layers.
 *
 * Ranges exist for the TEE partition: the normal world runs [0, A-1] and
 * [B+1, n-1], the TA runs [A, B], with the same code.
 */
#include "dnn/arena_poison.h"
#include "dnn/dnn_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNN_ALIGN 64

/* A memset the compiler may not drop before free(): wiping protected values is the point. */
static void *(*const volatile dnn_wipe_fn)(void *, int, size_t) = memset;

static size_t align_up(size_t x)
{
    return (x + (DNN_ALIGN - 1)) & ~(size_t)(DNN_ALIGN - 1);
}

static bool role_wanted(const struct dnn_network *net, enum dnn_buf_role role, bool training)
{
    if (role == DNN_BUF_PARAM)
        return !net->cfg.stream_params;
    if (role == DNN_BUF_UPDATE) /* streamed: they travel in the chunks with the parameters */
        return training && !net->cfg.stream_params;
    return role != DNN_BUF_TRAIN || training;
}

/* Marks the layers a route, shortcut or scale_channels reads (their indexes were checked by its
 * setup). */
static void mark_reads(struct dnn_network *net, const struct dnn_layer *l)
{
    int reads[DNN_MAX_READS];
    const int n_reads = dnn_spec_reads(&l->spec, reads);
    for (int r = 0; r < n_reads; r++) {
        const int j = reads[r];
        if (j >= 0 && j < l->index)
            net->layers[j].read_later = true;
    }
}

/*
 * The engine's one layer-setup loop: runs every layer's setup in order on a zeroed
 * layer table, computing shapes and buffer requests. net->layers must have room for n
 * layers. On error *failed is the refused layer, or n when the cfg itself is refused.
 */
static enum dnn_status setup_layers(struct dnn_network *net, const struct dnn_layer_spec *specs,
                                    size_t n, size_t *failed)
{
    const struct dnn_net_config *cfg = &net->cfg;
    *failed = n;
    if (cfg->batch <= 0 || cfg->h <= 0 || cfg->w <= 0 || cfg->c <= 0 || cfg->subdivisions <= 0 ||
        cfg->index_base < 0)
        return DNN_ERR_INVALID;
    if (cfg->policy == DNN_POLICY_SGDR && (cfg->sgdr_cycle < 1 || cfg->sgdr_mult < 1))
        return DNN_ERR_INVALID; /* AlexeyAB's loop never ends on a cycle of 0 */
    /* adam divides by 1 - beta^t and by sqrt(v) + epsilon: both must stay positive. */
    if (cfg->adam && !(cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1 &&
                       cfg->epsilon > 0 && cfg->epsilon <= 3.4028235e38f))
        return DNN_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        struct dnn_layer *l = &net->layers[i];
        *failed = i;
        l->kind = specs[i].kind;
        l->spec = specs[i];
        l->index = (int)i;
        l->batch = cfg->batch;
        /* darknet's adam updates convolutional and connected layers only. */
        l->adam =
            cfg->adam && (l->kind == DNN_LAYER_CONVOLUTIONAL || l->kind == DNN_LAYER_CONNECTED);
        l->ops = dnn_layer_ops_for(l->kind);
        if (!l->ops)
            return DNN_ERR_UNSUPPORTED;
        if (i == 0) {
            l->h = cfg->h;
            l->w = cfg->w;
            l->c = cfg->c;
        } else {
            const struct dnn_layer *prev = &net->layers[i - 1];
            l->h = prev->out_h;
            l->w = prev->out_w;
            l->c = prev->out_c;
        }
        size_t hw = 0;
        if (!dnn_mul_size((size_t)l->h, (size_t)l->w, &hw) ||
            !dnn_mul_size(hw, (size_t)l->c, &l->inputs))
            return DNN_ERR_OVERFLOW;
        net->n = i; /* layers before i are complete; route/shortcut may read them */
        enum dnn_status st = l->ops->setup(l, net);
        if (st != DNN_OK)
            return st;
        if (l->out_h <= 0 || l->out_w <= 0 || l->out_c <= 0)
            return DNN_ERR_SHAPE;
        size_t ohw = 0, outputs = 0, per_batch = 0;
        if (!dnn_mul_size((size_t)l->out_h, (size_t)l->out_w, &ohw) ||
            !dnn_mul_size(ohw, (size_t)l->out_c, &outputs) ||
            !dnn_mul_size(outputs, (size_t)l->batch, &per_batch))
            return DNN_ERR_OVERFLOW;
        l->outputs = outputs;
        st = dnn_layer_request(l, &l->output, per_batch, sizeof(float), DNN_BUF_OUTPUT);
        if (st == DNN_OK)
            st = dnn_layer_request(l, &l->delta, per_batch, sizeof(float), DNN_BUF_TRAIN);
        if (st != DNN_OK)
            return st;
        mark_reads(net, l);
        if (l->workspace_floats > net->workspace_floats)
            net->workspace_floats = l->workspace_floats;
    }
    *failed = n;
    net->n = n;
    net->inputs = net->layers[0].inputs;
    net->truths = net->layers[dnn_network_output_index(net)].outputs;
    return DNN_OK;
}

/*
 * A loss layer compares its whole output with the truth, which holds `truths` floats per
 * image: one of another size (a softmax before a connected layer) would read past it. Checked
 * when a network is built, not when it is only planned: the host plans prefixes of valid
 * networks that end between a loss layer and the output.
 */
static enum dnn_status check_loss_sizes(const struct dnn_network *net)
{
    for (size_t i = 0; i < net->n; i++) {
        if (net->layers[i].has_cost && net->layers[i].outputs != net->truths)
            return DNN_ERR_LOSS_SIZE;
    }
    return DNN_OK;
}

/* Does layer i's output go to a shared activation buffer? (struct dnn_layer_plan's rule.) */
static bool shares_output(const struct dnn_network *net, size_t i, bool training, size_t out_index)
{
    return !training && !net->layers[i].read_later && i < out_index;
}

/* Aligned bytes of one buffer; false past SIZE_MAX / 2 (every sum below then stays exact). */
static bool buffer_bytes(const struct dnn_buffer *buf, size_t *out)
{
    size_t bytes = 0;
    if (!dnn_mul_size(buf->count, buf->elem_size, &bytes) || bytes > SIZE_MAX / 2)
        return false;
    *out = align_up(bytes);
    return true;
}

/* Floats of the arena's workspace: the largest layer's scratch, and in a streamed training
 * network (cfg.stream_params) after it every image's column matrix of an input delta, which
 * dnn_tile_backward accumulates over a layer's tiles (net->delta_cols). */
static bool workspace_region(const struct dnn_network *net, bool training, size_t *floats)
{
    size_t cols = 0;
    if (training && net->cfg.stream_params &&
        !dnn_mul_size(net->workspace_floats, (size_t)net->cfg.batch, &cols))
        return false;
    return dnn_add_size(net->workspace_floats, cols, floats);
}

/*
 * The arena's layout, one rule for planning and building: every wanted buffer of every
 * layer in order, except the outputs that shares_output sends to the two shared activation
 * buffers, which follow them, then the workspace. measure() fills the plan's per-layer
 * figures (when plan->layers is not NULL) and totals; bind() gives every buffer its address
 * in that order.
 */
static enum dnn_status measure(const struct dnn_network *net, bool training, struct dnn_plan *plan)
{
    const size_t out_index = dnn_network_output_index(net);
    size_t own = 0, shared[2] = {0, 0};
    plan->param_bytes = plan->scratch_bytes = plan->train_bytes = plan->activation_bytes = 0;
    plan->param_floats = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        const bool share = shares_output(net, i, training, out_index);
        struct dnn_layer_plan lp = {.kind = l->kind, .has_cost = l->has_cost};
        for (size_t b = 0; b < l->n_buffers; b++) {
            const struct dnn_buffer *buf = &l->buffers[b];
            size_t bytes = 0;
            if (!buffer_bytes(buf, &bytes))
                return DNN_ERR_OVERFLOW;
            size_t *term = buf->role == DNN_BUF_PARAM   ? &lp.param_bytes
                           : buf->role == DNN_BUF_INFER ? &lp.scratch_bytes
                           : buf->role == DNN_BUF_TRAIN || buf->role == DNN_BUF_UPDATE
                               ? &lp.train_bytes
                               : &lp.output_bytes;
            if (!dnn_add_size(*term, bytes, term))
                return DNN_ERR_OVERFLOW;
            if (!role_wanted(net, buf->role, training))
                continue;
            if (buf->ptr == (void **)&l->output && share) {
                if (bytes > shared[i % 2])
                    shared[i % 2] = bytes;
            } else if (!dnn_add_size(own, bytes, &own)) {
                return DNN_ERR_OVERFLOW;
            }
        }
        for (size_t p = 0; p < l->n_params; p++) {
            if (!dnn_add_size(lp.param_floats, l->params[p].count, &lp.param_floats))
                return DNN_ERR_OVERFLOW;
        }
        if (!dnn_add_size(plan->param_floats, lp.param_floats, &plan->param_floats) ||
            !dnn_add_size(plan->param_bytes, lp.param_bytes, &plan->param_bytes) ||
            !dnn_add_size(plan->scratch_bytes, lp.scratch_bytes, &plan->scratch_bytes) ||
            (training && !dnn_add_size(plan->train_bytes, lp.train_bytes, &plan->train_bytes)) ||
            (!share &&
             !dnn_add_size(plan->activation_bytes, lp.output_bytes, &plan->activation_bytes)))
            return DNN_ERR_OVERFLOW;
        if (plan->layers) {
            lp.h = l->h;
            lp.w = l->w;
            lp.c = l->c;
            lp.out_h = l->out_h;
            lp.out_w = l->out_w;
            lp.out_c = l->out_c;
            lp.inputs = l->inputs;
            lp.outputs = l->outputs;
            lp.workspace_floats = l->workspace_floats;
            lp.read_later = l->read_later;
            lp.own_output = !share;
            plan->layers[i] = lp;
        }
    }
    size_t ws = 0, total = 0, ws_floats = 0;
    if (!workspace_region(net, training, &ws_floats) ||
        !dnn_mul_size(ws_floats, sizeof(float), &ws) || !dnn_add_size(ws, DNN_ALIGN, &ws) ||
        !dnn_add_size(own, shared[0], &total) || !dnn_add_size(total, shared[1], &total) ||
        !dnn_add_size(total, ws, &total) ||
        !dnn_add_size(plan->activation_bytes, shared[0] + shared[1], &plan->activation_bytes))
        return DNN_ERR_OVERFLOW;
    plan->shared_bytes[0] = shared[0];
    plan->shared_bytes[1] = shared[1];
    plan->workspace_floats = ws_floats;
    plan->workspace_bytes = ws;
    plan->arena_bytes = total;
    return DNN_OK;
}

/* base holds plan->arena_bytes, plan is measure()'s answer for this network and mode. */
static void bind(struct dnn_network *net, bool training, unsigned char *base,
                 const struct dnn_plan *plan)
{
    const size_t out_index = dnn_network_output_index(net);
    const size_t *shared = plan->shared_bytes;
    const size_t own = plan->arena_bytes - plan->workspace_bytes - shared[0] - shared[1];
    size_t off = 0;
    for (size_t i = 0; i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        const bool share = shares_output(net, i, training, out_index);
        for (size_t b = 0; b < l->n_buffers; b++) {
            struct dnn_buffer *buf = &l->buffers[b];
            if (!role_wanted(net, buf->role, training)) {
                *buf->ptr = NULL;
            } else if (buf->ptr == (void **)&l->output && share) {
                *buf->ptr = base + own + (i % 2 ? shared[0] : 0);
            } else {
                const size_t bytes = buf->count * buf->elem_size;
                *buf->ptr = base + off;
                dnn_arena_poison(base + off + bytes, align_up(bytes) - bytes);
                off += align_up(bytes);
            }
        }
        for (size_t p = 0; p < l->n_params; p++) {
            struct dnn_param *prm = &l->params[p];
            prm->value = *prm->value_ref;
            prm->update = prm->update_ref ? *prm->update_ref : NULL;
        }
    }
    net->workspace =
        net->workspace_floats ? (float *)(void *)(base + own + shared[0] + shared[1]) : NULL;
    net->delta_cols = net->workspace && plan->workspace_floats > net->workspace_floats
                          ? net->workspace + net->workspace_floats
                          : NULL;
}

/* Layer table and network struct on top of the arena: what dnn_network_create allocates. */
static enum dnn_status total_bytes(size_t n, size_t arena, size_t *out)
{
    size_t table = 0;
    if (!dnn_mul_size(n, sizeof(struct dnn_layer), &table) || !dnn_add_size(arena, table, out) ||
        !dnn_add_size(*out, sizeof(struct dnn_network), out))
        return DNN_ERR_OVERFLOW;
    return DNN_OK;
}

void dnn_plan_free(struct dnn_plan *plan)
{
    if (!plan)
        return;
    free(plan->layers);
    plan->layers = NULL;
}

enum dnn_status dnn_plan_of_network(struct dnn_plan *plan, const struct dnn_network *net,
                                    bool training)
{
    if (!plan || !net || net->n == 0)
        return DNN_ERR_INVALID;
    *plan = (struct dnn_plan){
        .training = training, .batch = net->cfg.batch, .n = net->n, .failed_layer = net->n};
    plan->layers = calloc(net->n, sizeof *plan->layers);
    enum dnn_status st = plan->layers ? DNN_OK : DNN_ERR_NOMEM;
    if (st == DNN_OK)
        st = measure(net, training, plan);
    if (st == DNN_OK)
        st = total_bytes(net->n, plan->arena_bytes, &plan->bytes);
    if (st != DNN_OK) {
        dnn_plan_free(plan);
        plan->status = st;
        return st;
    }
    plan->inputs = net->layers[0].inputs;
    plan->outputs = net->layers[net->n - 1].outputs;
    plan->output_index = dnn_network_output_index(net);
    plan->truths = net->truths;
    for (size_t i = 0; i < net->n; i++)
        plan->has_cost |= net->layers[i].has_cost;
    return DNN_OK;
}

enum dnn_status dnn_network_setup(struct dnn_network **out, const struct dnn_net_config *cfg,
                                  const struct dnn_layer_spec *specs, size_t n,
                                  size_t *failed_layer)
{
    size_t failed = n;
    enum dnn_status st = DNN_ERR_INVALID;
    struct dnn_network *net = NULL;
    if (failed_layer)
        *failed_layer = n;
    if (!out)
        return DNN_ERR_INVALID;
    *out = NULL;
    if (!cfg || !specs || n == 0)
        return DNN_ERR_INVALID;
    if (n > SIZE_MAX / sizeof(struct dnn_layer))
        return DNN_ERR_OVERFLOW;
    net = calloc(1, sizeof(*net));
    if (!net)
        return DNN_ERR_NOMEM;
    net->cfg = *cfg;
    net->layers = calloc(n, sizeof(struct dnn_layer));
    st = net->layers ? setup_layers(net, specs, n, &failed) : DNN_ERR_NOMEM;
    if (st != DNN_OK) {
        dnn_network_free(net);
        if (failed_layer)
            *failed_layer = failed;
        return st;
    }
    *out = net;
    return DNN_OK;
}

enum dnn_status dnn_plan_build(struct dnn_plan *plan, const struct dnn_net_config *cfg,
                               const struct dnn_layer_spec *specs, size_t n, bool training)
{
    if (!plan)
        return DNN_ERR_INVALID;
    *plan = (struct dnn_plan){.training = training, .n = n, .failed_layer = n};
    struct dnn_network *net = NULL;
    size_t failed = n;
    enum dnn_status st = dnn_network_setup(&net, cfg, specs, n, &failed);
    if (st == DNN_OK)
        st = dnn_plan_of_network(plan, net, training);
    dnn_network_free(net);
    if (st != DNN_OK) {
        dnn_plan_free(plan);
        plan->status = st;
        plan->failed_layer = failed;
    }
    return st;
}

void dnn_plan_describe(const struct dnn_plan *plan, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    const char *why = dnn_status_str(plan->status);
    if (plan->failed_layer >= plan->n) {
        snprintf(buf, size, "network: %s", why);
        return;
    }
    snprintf(buf, size, "layer %zu: %s", plan->failed_layer, why);
}

enum dnn_status dnn_network_plan(const struct dnn_net_config *cfg,
                                 const struct dnn_layer_spec *specs, size_t n, bool training,
                                 size_t *bytes)
{
    struct dnn_plan plan;
    if (!bytes)
        return DNN_ERR_INVALID;
    enum dnn_status st = dnn_plan_build(&plan, cfg, specs, n, training);
    if (st == DNN_OK)
        *bytes = plan.bytes;
    dnn_plan_free(&plan);
    return st;
}

enum dnn_status dnn_network_create(struct dnn_network **out, const struct dnn_net_config *cfg,
                                   const struct dnn_layer_spec *specs, size_t n, bool training,
                                   uint64_t seed)
{
    enum dnn_status st = DNN_ERR_INVALID;
    struct dnn_network *net = NULL;
    struct dnn_plan totals = {0}; /* layers NULL: measure() fills the totals only */
    if (!out)
        return DNN_ERR_INVALID;
    *out = NULL;
    st = dnn_network_setup(&net, cfg, specs, n, NULL);
    if (st != DNN_OK)
        return st;
    net->seed = seed;
    net->training = training;
    st = check_loss_sizes(net);
    if (st == DNN_OK)
        st = measure(net, training, &totals);
    if (st != DNN_OK)
        goto out;
    net->arena_bytes = totals.arena_bytes;
    /* The plan places every buffer at a multiple of DNN_ALIGN from the arena's base; with the
     * base aligned too, each starts on a cache line in both worlds, whatever alignment the
     * world's malloc gives (16 bytes in glibc). C11's aligned_alloc wants a size that is a
     * multiple of the alignment. */
    size_t alloc_bytes = 0;
    if (!dnn_add_size(net->arena_bytes, DNN_ALIGN - 1, &alloc_bytes)) {
        st = DNN_ERR_OVERFLOW;
        goto out;
    }
    net->arena = aligned_alloc(DNN_ALIGN, alloc_bytes & ~(size_t)(DNN_ALIGN - 1));
    if (!net->arena) {
        st = DNN_ERR_NOMEM;
        goto out;
    }
    memset(net->arena, 0, net->arena_bytes);
    bind(net, training, net->arena, &totals);

    /* Every layer draws its initial parameters and its dropout masks from
     * streams keyed by the seed and its index in the whole network
     * (cfg->index_base + i), so a segment built alone - the TA's part of a
     * partition - starts from the same numbers as the whole network would. */
    for (size_t i = 0; i < n; i++) {
        struct dnn_layer *l = &net->layers[i];
        uint64_t index = (uint64_t)cfg->index_base + i;
        dnn_rng_seed(&l->rng, seed ^ (0x9E3779B97F4A7C15ull * (index + 1)));
    }
    dnn_network_init_params(net, 0);
    *out = net;
    return DNN_OK;
out:
    dnn_network_free(net);
    return st;
}

void dnn_network_init_params(struct dnn_network *net, size_t from)
{
    if (net->cfg.stream_params) /* no parameter tensors: they come from sealed chunks */
        return;
    for (size_t i = from; i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        uint64_t index = (uint64_t)net->cfg.index_base + i;
        if (l->ops->init) {
            struct dnn_rng init_rng;
            dnn_rng_seed(&init_rng, ~net->seed ^ (0xD1B54A32D192ED03ull * (index + 1)));
            l->ops->init(l, &init_rng);
        }
    }
}

void dnn_network_set_parallel_free(struct dnn_network *net)
{
    if (net->par_workspace) {
        /* It held columns of the inputs, as the arena's workspace does. */
        dnn_wipe_fn(net->par_workspace, 0, net->par_slots * net->workspace_floats * sizeof(float));
        free(net->par_workspace);
    }
    net->par_workspace = NULL;
    net->par_slots = 0;
}

void dnn_network_lowering_free(struct dnn_network *net)
{
    if (net->lower_workspace) {
        /* It held columns of the inputs and deltas, as the arena's workspace does. */
        dnn_wipe_fn(net->lower_workspace, 0, net->lower_floats * sizeof(float));
        free(net->lower_workspace);
    }
    net->lower_workspace = NULL;
    net->lower_floats = 0;
    net->lower_images = 1;
    if (net->wino_u) {
        /* It held a transform of the filters: protected parameters in a TA's segment. */
        dnn_wipe_fn(net->wino_u, 0, net->wino_u_floats * sizeof(float));
        free(net->wino_u);
    }
    net->wino_u = NULL;
    net->wino_u_floats = 0;
}

void dnn_network_column_cache_free(struct dnn_network *net)
{
    if (net->col_cache) {
        /* It held columns of the inputs, as the arena's workspace does. */
        dnn_wipe_fn(net->col_cache, 0, net->col_cache_floats * sizeof(float));
        free(net->col_cache);
    }
    for (size_t i = 0; i < net->n; i++) {
        net->layers[i].col_cache = NULL;
        net->layers[i].col_cache_of = NULL;
    }
    net->col_cache = NULL;
    net->col_cache_floats = 0;
}

void dnn_network_free(struct dnn_network *net)
{
    if (!net)
        return;
    if (net->arena) {
        dnn_arena_unpoison(net->arena, net->arena_bytes);
        dnn_wipe_fn(net->arena, 0, net->arena_bytes);
        free(net->arena);
    }
    dnn_network_set_parallel_free(net);
    dnn_network_lowering_free(net);
    dnn_network_column_cache_free(net);
    free(net->layers);
    free(net);
}

size_t dnn_network_output_index(const struct dnn_network *net)
{
    size_t i = net->n - 1;
    while (i > 0 && net->layers[i].kind == DNN_LAYER_COST)
        i--;
    return i;
}

void dnn_network_forward_range(struct dnn_network *net, size_t first, size_t last,
                               const float *input, const float *truth, bool train)
{
    struct dnn_run run = {
        .truth = truth,
        .train = train && net->training,
        .workspace = net->workspace,
        .net = net,
        .par = &net->parallel,
        .par_workspace = net->par_workspace,
        .par_slots = net->par_slots,
    };
    for (size_t i = first; i <= last && i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        run.input = i == first ? input : net->layers[i - 1].output;
        if (run.train && l->delta)
            dnn_fill_par(run.par, l->delta, l->outputs * (size_t)l->batch, 0);
        l->ops->forward(l, &run);
    }
}

void dnn_network_backward_range(struct dnn_network *net, size_t first, size_t last,
                                const float *input, float *input_delta)
{
    if (!net->training)
        return;
    struct dnn_run run = {.train = true,
                          .workspace = net->workspace,
                          .net = net,
                          .par = &net->parallel,
                          .par_workspace = net->par_workspace,
                          .par_slots = net->par_slots};
    for (size_t i = last + 1; i-- > first;) {
        struct dnn_layer *l = &net->layers[i];
        if (l->spec.frozen)
            break; /* darknet's stopbackward: this layer and those before it are frozen */
        run.input = i == first ? input : net->layers[i - 1].output;
        run.input_delta = i == first ? input_delta : net->layers[i - 1].delta;
        l->ops->backward(l, &run);
    }
}

static void update_args(const struct dnn_network *net, struct dnn_update_args *a)
{
    const uint64_t t = dnn_network_current_batch(net);
    *a = (struct dnn_update_args){
        .batch = net->cfg.batch * net->cfg.subdivisions,
        .learning_rate = dnn_network_current_rate(net),
        .momentum = net->cfg.momentum,
        .decay = net->cfg.decay,
        .adam = net->cfg.adam,
        .beta1 = net->cfg.beta1,
        .beta2 = net->cfg.beta2,
        .epsilon = net->cfg.epsilon,
        .t = t > 0 ? t : 1,
        .par = &net->parallel,
    };
}

void dnn_network_update_args(const struct dnn_network *net, size_t i, struct dnn_update_args *a)
{
    update_args(net, a);
    /* darknet's learning_rate_scale: the layer's own share of the rate */
    a->learning_rate *= dnn_layer_rate_scale(&net->layers[i].spec);
}

void dnn_network_update_range(struct dnn_network *net, size_t first, size_t last)
{
    if (!net->training)
        return;
    struct dnn_update_args a;
    update_args(net, &a);
    for (size_t i = first; i <= last && i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        if (l->spec.frozen)
            continue;
        /* darknet's learning_rate_scale: the layer's own share of the rate */
        struct dnn_update_args la = a;
        la.learning_rate = a.learning_rate * dnn_layer_rate_scale(&l->spec);
        if (l->adam) {
            for (size_t p = 0; p < l->n_params; p++) {
                if (l->params[p].update)
                    dnn_adam_step(&l->params[p], &la);
            }
        } else if (l->ops->update) {
            l->ops->update(l, &la);
        }
    }
}

void dnn_network_forward(struct dnn_network *net, const float *input, const float *truth,
                         bool train)
{
    dnn_network_forward_range(net, 0, net->n - 1, input, truth, train);
    net->cost = dnn_network_cost(net);
}

float dnn_network_cost(const struct dnn_network *net)
{
    float sum = 0;
    int count = 0;
    for (size_t i = 0; i < net->n; i++) {
        if (net->layers[i].has_cost) {
            sum += net->layers[i].cost;
            count++;
        }
    }
    return count ? sum / (float)count : 0;
}

float dnn_network_train_batch(struct dnn_network *net, const float *input, const float *truth)
{
    net->seen += (uint64_t)net->cfg.batch;
    dnn_network_forward(net, input, truth, true);
    dnn_network_backward_range(net, 0, net->n - 1, input, NULL);
    if ((net->seen / (uint64_t)net->cfg.batch) % (uint64_t)net->cfg.subdivisions == 0)
        dnn_network_update_range(net, 0, net->n - 1);
    return net->cost;
}

const float *dnn_network_predict(struct dnn_network *net, const float *input)
{
    dnn_network_forward(net, input, NULL, false);
    return net->layers[dnn_network_output_index(net)].output;
}

uint64_t dnn_network_current_batch(const struct dnn_network *net)
{
    return net->seen / ((uint64_t)net->cfg.batch * (uint64_t)net->cfg.subdivisions);
}

/* AlexeyAB's SGDR: find the cycle holding batch_num (a cycle ends on its last batch),
 * then a half cosine from learning_rate down to learning_rate_min across it, in double as
 * darknet computes it. */
static float sgdr_rate(const struct dnn_net_config *c, uint64_t batch_num)
{
    uint64_t start = 0, cycle = c->sgdr_cycle > 0 ? (uint64_t)c->sgdr_cycle : 1;
    if (c->sgdr_mult <= 1) {
        /* equal cycles: the loop's result directly (it would run batch_num / cycle times) */
        start = batch_num > cycle ? (batch_num - 1) / cycle * cycle : 0;
    } else {
        while (start + cycle < batch_num) {
            start += cycle;
            cycle *= (uint64_t)c->sgdr_mult;
        }
    }
    const double angle = (double)(float)(batch_num - start) * 3.14159265 / (double)cycle;
    const float span = c->learning_rate - c->learning_rate_min;
    return (float)((double)c->learning_rate_min + 0.5 * (double)span * (1. + dnn_cos_0_pi(angle)));
}

float dnn_network_current_rate(const struct dnn_network *net)
{
    const struct dnn_net_config *c = &net->cfg;
    uint64_t batch_num = dnn_network_current_batch(net);
    float bn = (float)batch_num;
    if (c->burn_in > 0 && batch_num < (uint64_t)c->burn_in)
        return c->learning_rate * dnn_powf(bn / (float)c->burn_in, c->power);
    switch (c->policy) {
    case DNN_POLICY_CONSTANT:
        return c->learning_rate;
    case DNN_POLICY_STEP:
        if (c->step <= 0)
            return c->learning_rate;
        return c->learning_rate * dnn_powf(c->scale, (float)(batch_num / (uint64_t)c->step));
    case DNN_POLICY_STEPS: {
        float rate = c->learning_rate;
        for (int i = 0; i < c->n_steps; i++) {
            if ((uint64_t)c->steps[i] > batch_num)
                return rate;
            rate *= c->scales[i];
        }
        return rate;
    }
    case DNN_POLICY_EXP:
        return c->learning_rate * dnn_powf(c->gamma, bn);
    case DNN_POLICY_POLY: {
        if (c->max_batches <= 0)
            return c->learning_rate;
        float left = 1.0f - bn / (float)c->max_batches;
        if (left < 0)
            left = 0;
        return c->learning_rate * dnn_powf(left, c->power);
    }
    case DNN_POLICY_RANDOM: {
        /* darknet draws from rand(); a stream keyed by the batch number keeps runs reproducible */
        struct dnn_rng r;
        dnn_rng_seed(&r, net->seed ^ batch_num);
        return c->learning_rate * dnn_powf(dnn_rng_uniform(&r, 0, 1), c->power);
    }
    case DNN_POLICY_SGDR:
        return sgdr_rate(c, batch_num);
    case DNN_POLICY_SIG:
        return c->learning_rate * (1.0f / (1.0f + dnn_expf(c->gamma * (bn - (float)c->step))));
    default:
        break;
    }
    return c->learning_rate;
}

double dnn_layer_flops(const struct dnn_layer *l)
{
    switch (l->kind) {
    case DNN_LAYER_CONVOLUTIONAL:
        /* antialiasing: the convolution runs at stride 1, before the blur */
        return 2.0 * l->spec.filters * l->spec.size * l->spec.size * (l->c / l->spec.groups) *
               (l->spec.antialiasing ? l->aa_h * l->aa_w : l->out_h * l->out_w);
    case DNN_LAYER_CONNECTED:
        return 2.0 * (double)l->inputs * (double)l->outputs;
    case DNN_LAYER_LOCAL:
        return 2.0 * l->spec.filters * l->spec.size * l->spec.size * l->c * l->out_h * l->out_w;
    default:
        return 0;
    }
}

void dnn_network_clear_state(struct dnn_network *net)
{
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t b = 0; b < l->n_buffers; b++) {
            const struct dnn_buffer *buf = &l->buffers[b];
            if (buf->role != DNN_BUF_PARAM && *buf->ptr)
                memset(*buf->ptr, 0, buf->count * buf->elem_size);
        }
    }
    if (net->workspace)
        memset(net->workspace, 0, net->workspace_floats * sizeof(float));
    if (net->delta_cols)
        memset(net->delta_cols, 0, net->workspace_floats * (size_t)net->cfg.batch * sizeof(float));
}
