/*
 * network.c - building a network from specs (plan, then one allocation) and
 * running forward, backward and update over a range of its layers.
 *
 * Ranges exist for the TEE partition: the normal world runs [0, A-1] and
 * [B+1, n-1], the TA runs [A, B], with the same code.
 */
#include "dnn/dnn_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DNN_ALIGN 64

/* A memset the compiler may not drop before free(): wiping protected values is the point. */
static void *(*const volatile dnn_wipe_fn)(void *, int, size_t) = memset;

static size_t align_up(size_t x)
{
    return (x + (DNN_ALIGN - 1)) & ~(size_t)(DNN_ALIGN - 1);
}

static bool role_wanted(enum dnn_buf_role role, bool training)
{
    return role != DNN_BUF_TRAIN || training;
}

/*
 * Runs every layer's setup in order on a zeroed layer table, computing shapes
 * and buffer requests. net->layers must have room for n layers.
 */
static enum dnn_status setup_layers(struct dnn_network *net, const struct dnn_layer_spec *specs,
                                    size_t n)
{
    const struct dnn_net_config *cfg = &net->cfg;
    if (cfg->batch <= 0 || cfg->h <= 0 || cfg->w <= 0 || cfg->c <= 0 || cfg->subdivisions <= 0 ||
        cfg->index_base < 0)
        return DNN_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        struct dnn_layer *l = &net->layers[i];
        l->kind = specs[i].kind;
        l->spec = specs[i];
        l->index = (int)i;
        l->batch = cfg->batch;
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
        if (l->workspace_floats > net->workspace_floats)
            net->workspace_floats = l->workspace_floats;
    }
    net->n = n;
    net->inputs = net->layers[0].inputs;
    net->truths = net->layers[dnn_network_output_index(net)].outputs;
    return DNN_OK;
}

/*
 * A loss layer compares its whole output with the truth, which holds `truths` floats per
 * image: one of another size (a softmax before a connected layer) would read past it. Checked
 * when a network is built, not when it is only planned: a plan is a byte count, and the host
 * plans prefixes of valid networks that end between a loss layer and the output.
 */
static enum dnn_status check_loss_sizes(const struct dnn_network *net)
{
    for (size_t i = 0; i < net->n; i++) {
        if (net->layers[i].has_cost && net->layers[i].outputs != net->truths)
            return DNN_ERR_LOSS_SIZE;
    }
    return DNN_OK;
}

/* Bytes of the arena: every wanted buffer plus the workspace, each aligned. */
static enum dnn_status arena_size(const struct dnn_network *net, bool training, size_t *out)
{
    size_t total = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t b = 0; b < l->n_buffers; b++) {
            const struct dnn_buffer *buf = &l->buffers[b];
            size_t bytes = 0;
            if (!role_wanted(buf->role, training))
                continue;
            if (!dnn_mul_size(buf->count, buf->elem_size, &bytes) || bytes > SIZE_MAX / 2 ||
                !dnn_add_size(total, align_up(bytes), &total))
                return DNN_ERR_OVERFLOW;
        }
    }
    size_t ws = 0;
    if (!dnn_mul_size(net->workspace_floats, sizeof(float), &ws) ||
        !dnn_add_size(ws, DNN_ALIGN, &ws) || !dnn_add_size(total, ws, &total))
        return DNN_ERR_OVERFLOW;
    *out = total;
    return DNN_OK;
}

static void bind_buffers(struct dnn_network *net, bool training)
{
    unsigned char *base = net->arena;
    size_t off = 0;
    for (size_t i = 0; i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        for (size_t b = 0; b < l->n_buffers; b++) {
            struct dnn_buffer *buf = &l->buffers[b];
            if (!role_wanted(buf->role, training)) {
                *buf->ptr = NULL;
                continue;
            }
            *buf->ptr = base + off;
            off += align_up(buf->count * buf->elem_size);
        }
        for (size_t p = 0; p < l->n_params; p++) {
            struct dnn_param *prm = &l->params[p];
            prm->value = *prm->value_ref;
            prm->update = prm->update_ref ? *prm->update_ref : NULL;
        }
    }
    net->workspace = net->workspace_floats ? (float *)(void *)(base + off) : NULL;
}

enum dnn_status dnn_network_plan(const struct dnn_net_config *cfg,
                                 const struct dnn_layer_spec *specs, size_t n, bool training,
                                 size_t *bytes)
{
    if (!cfg || !specs || n == 0 || !bytes)
        return DNN_ERR_INVALID;
    size_t table = 0;
    if (!dnn_mul_size(n, sizeof(struct dnn_layer), &table))
        return DNN_ERR_OVERFLOW;
    struct dnn_network tmp = {.cfg = *cfg};
    tmp.layers = calloc(n, sizeof(struct dnn_layer));
    if (!tmp.layers)
        return DNN_ERR_NOMEM;
    size_t arena = 0;
    enum dnn_status st = setup_layers(&tmp, specs, n);
    if (st == DNN_OK)
        st = arena_size(&tmp, training, &arena);
    free(tmp.layers);
    if (st != DNN_OK)
        return st;
    size_t total = 0;
    if (!dnn_add_size(arena, table, &total) ||
        !dnn_add_size(total, sizeof(struct dnn_network), &total))
        return DNN_ERR_OVERFLOW;
    *bytes = total;
    return DNN_OK;
}

enum dnn_status dnn_network_create(struct dnn_network **out, const struct dnn_net_config *cfg,
                                   const struct dnn_layer_spec *specs, size_t n, bool training,
                                   uint64_t seed)
{
    enum dnn_status st = DNN_ERR_INVALID;
    struct dnn_network *net = NULL;
    if (!out)
        return DNN_ERR_INVALID;
    *out = NULL;
    if (!cfg || !specs || n == 0)
        return DNN_ERR_INVALID;
    net = calloc(1, sizeof(*net));
    if (!net)
        return DNN_ERR_NOMEM;
    net->cfg = *cfg;
    net->seed = seed;
    net->training = training;
    net->layers = calloc(n, sizeof(struct dnn_layer));
    if (!net->layers) {
        st = DNN_ERR_NOMEM;
        goto out;
    }
    st = setup_layers(net, specs, n);
    if (st == DNN_OK)
        st = check_loss_sizes(net);
    if (st != DNN_OK)
        goto out;
    st = arena_size(net, training, &net->arena_bytes);
    if (st != DNN_OK)
        goto out;
    net->arena = calloc(1, net->arena_bytes);
    if (!net->arena) {
        st = DNN_ERR_NOMEM;
        goto out;
    }
    bind_buffers(net, training);

    /* Every layer draws its initial parameters and its dropout masks from
     * streams keyed by the seed and its index in the whole network
     * (cfg->index_base + i), so a segment built alone - the TA's part of a
     * partition - starts from the same numbers as the whole network would. */
    for (size_t i = 0; i < n; i++) {
        struct dnn_layer *l = &net->layers[i];
        uint64_t index = (uint64_t)cfg->index_base + i;
        dnn_rng_seed(&l->rng, seed ^ (0x9E3779B97F4A7C15ull * (index + 1)));
        if (l->ops->init) {
            struct dnn_rng init_rng;
            dnn_rng_seed(&init_rng, ~seed ^ (0xD1B54A32D192ED03ull * (index + 1)));
            l->ops->init(l, &init_rng);
        }
    }
    *out = net;
    return DNN_OK;
out:
    dnn_network_free(net);
    return st;
}

void dnn_network_free(struct dnn_network *net)
{
    if (!net)
        return;
    if (net->arena) {
        dnn_wipe_fn(net->arena, 0, net->arena_bytes);
        free(net->arena);
    }
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
    };
    for (size_t i = first; i <= last && i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        run.input = i == first ? input : net->layers[i - 1].output;
        if (run.train && l->delta)
            dnn_fill(l->delta, l->outputs * (size_t)l->batch, 0);
        l->ops->forward(l, &run);
    }
}

void dnn_network_backward_range(struct dnn_network *net, size_t first, size_t last,
                                const float *input, float *input_delta)
{
    if (!net->training)
        return;
    struct dnn_run run = {.train = true, .workspace = net->workspace, .net = net};
    for (size_t i = last + 1; i-- > first;) {
        struct dnn_layer *l = &net->layers[i];
        run.input = i == first ? input : net->layers[i - 1].output;
        run.input_delta = i == first ? input_delta : net->layers[i - 1].delta;
        l->ops->backward(l, &run);
    }
}

void dnn_network_update_range(struct dnn_network *net, size_t first, size_t last)
{
    if (!net->training)
        return;
    struct dnn_update_args a = {
        .batch = net->cfg.batch * net->cfg.subdivisions,
        .learning_rate = dnn_network_current_rate(net),
        .momentum = net->cfg.momentum,
        .decay = net->cfg.decay,
    };
    for (size_t i = first; i <= last && i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        if (l->ops->update)
            l->ops->update(l, &a);
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
        return 2.0 * l->spec.filters * l->spec.size * l->spec.size * (l->c / l->spec.groups) *
               l->out_h * l->out_w;
    case DNN_LAYER_CONNECTED:
        return 2.0 * (double)l->inputs * (double)l->outputs;
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
}
