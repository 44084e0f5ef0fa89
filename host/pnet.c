/*
 * pnet.c - building and running a partitioned network (see pnet.h).
 */
#include "host/pnet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/partition.h"
#include "ta/include/dz_wire.h"

/* ------------------------------------------------------------------ build */

struct dz_scratch_budget dz_scratch_default(void)
{
    return (struct dz_scratch_budget){.lower_bytes = DNN_LOWER_BYTES_DEFAULT,
                                      .col_cache_bytes = DNN_COL_CACHE_BYTES_DEFAULT};
}

/* Builds layers [first, last] of the model as an engine network of their own, with what is
 * left of the scratch budget @left, less what this network takes. */
static int build_part(struct dz_pnet *p, size_t first, size_t last, uint64_t seed,
                      const struct dnn_parallel *par, struct dz_scratch_budget *left,
                      struct dnn_network **out, struct dk_error *err)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec *specs = NULL;
    if (dz_segment_config(p->model, p->shapes, first, last, p->batch, p->subdivisions, &cfg, &specs,
                          err) != 0)
        return -1;
    enum dnn_status st = dnn_network_create(out, &cfg, specs, last - first + 1, p->training, seed);
    free(specs);
    if (st != DNN_OK)
        return dk_fail(err, "cannot build layers %zu..%zu: %s", first, last, dnn_status_str(st));
    if (dnn_network_set_parallel(*out, par) != DNN_OK)
        return dk_fail(err, "out of memory for the threads' scratch of layers %zu..%zu", first,
                       last);
    /* Convolutions with small outputs lower several images per product: same bits, faster. */
    if (dnn_network_set_lowering(*out, p->batch, left->lower_bytes) != DNN_OK)
        return dk_fail(err, "out of memory for the convolutions' scratch of layers %zu..%zu", first,
                       last);
    /* Training convolutions keep their columns for the backward pass: same bits, faster. */
    if (dnn_network_set_column_cache(*out, left->col_cache_bytes) != DNN_OK)
        return dk_fail(err, "out of memory for the convolutions' columns of layers %zu..%zu", first,
                       last);
    /* The engine keeps each within its budget (dnn.h), so these never wrap. */
    left->lower_bytes -= ((*out)->lower_floats + (*out)->wino_u_floats) * sizeof(float);
    left->col_cache_bytes -= (*out)->col_cache_floats * sizeof(float);
    return 0;
}

struct dz_scratch_budget dz_pnet_scratch_used(const struct dz_pnet *p)
{
    struct dz_scratch_budget used = {0};
    const struct dnn_network *parts[] = {p->front, p->back};
    for (size_t i = 0; i < 2; i++) {
        if (!parts[i])
            continue;
        used.lower_bytes += (parts[i]->lower_floats + parts[i]->wino_u_floats) * sizeof(float);
        used.col_cache_bytes += parts[i]->col_cache_floats * sizeof(float);
    }
    return used;
}

/*
 * The session did not open because the TA's heap (TA_DATA_SIZE) does not fit the device's
 * secure memory (the message of dz_tee_connect names CFG_DZ_TA_DATA_SIZE): add what this
 * partition needs, the least a rebuilt TA must have.
 */
static void add_need(const struct dz_pnet *p, struct dk_error *err)
{
    size_t need = 0, used = strlen(err->msg);
    struct dk_error ignored;
    if (!strstr(err->msg, "CFG_DZ_TA_DATA_SIZE") ||
        dz_partition_fits(p->model, p->shapes, p->first, p->last, p->batch, p->training, SIZE_MAX,
                          &need, &ignored) != 0 ||
        used + 2 >= sizeof err->msg)
        return;
    snprintf(err->msg + used, sizeof err->msg - used,
             "; layers %d..%d need %zu bytes of it at batch %d%s", p->first, p->last, need,
             p->batch, p->training ? " for training" : "");
}

/* The .tz of the streamed save to load, for messages. */
static const char *save_name(const struct dz_pnet_opts *o)
{
    return o->stream_save_file ? o->stream_save_file : "the streamed save to load";
}

/* The working buffer for streaming layers [first, last] in a TA of @cap bytes
 * (dz_stream_plan), or 0 with a message when they cannot stream or do not fit even so. A
 * streamed save to load fixes it: its chunks open only in a session of the same cut (a
 * training save's in an inference session too, which then opens chunks of half the rows). */
static size_t stream_chunk(const struct dz_pnet *p, size_t cap, const struct dz_pnet_opts *o,
                           struct dk_error *err)
{
    struct dz_stream_fit fit;
    const size_t save = o->stream_save_bytes;
    if (save && o->stream_work_max && save > o->stream_work_max) {
        dk_fail(err,
                "%s: a streamed save cut for a working buffer of %zu bytes, which loads only "
                "into that cut; -tee_chunk %zu is below it: give -tee_chunk %zu or none (the "
                "save's cut is then taken by itself)",
                save_name(o), save, o->stream_work_max, save);
        return 0;
    }
    if (dz_stream_plan(p->model, p->shapes, (size_t)p->first, (size_t)p->last, p->batch,
                       p->training, cap, save ? save : o->stream_work_max, &fit, err) != 0) {
        if (save) {
            const struct dk_error why = *err;
            dk_fail(err, "%s (a streamed save cut for a working buffer of %zu bytes): %s",
                    save_name(o), save, why.msg);
        }
        return 0;
    }
    if (save && fit.chunk_bytes != save) {
        const size_t base = fit.need - fit.chunk_bytes;
        dk_fail(err,
                "%s: a streamed save cut for a working buffer of %zu bytes, which loads only "
                "into that cut; layers %d..%d at batch %d leave %zu bytes of TA_DATA_SIZE = "
                "%zu for one: load it in a TA with TA_DATA_SIZE of at least %zu "
                "(CFG_DZ_TA_DATA_SIZE), or at a smaller batch",
                save_name(o), save, p->first, p->last, p->batch, fit.chunk_bytes, cap, base + save);
        return 0;
    }
    return fit.chunk_bytes;
}

/*
 * How layers first..last run at p->batch in a TA of @cap bytes: resident (*chunk 0) or with
 * their weights streamed through a working buffer of *chunk bytes; *need is their need
 * resident. Returns 0, 1 when they fit neither way at this batch (err says why), or -1 on
 * another refusal.
 */
static int run_mode(const struct dz_pnet *p, const struct dz_pnet_opts *o, size_t cap, size_t *need,
                    size_t *chunk, struct dk_error *err)
{
    *chunk = 0;
    if (dz_partition_fits(p->model, p->shapes, p->first, p->last, p->batch, p->training, cap, need,
                          err) != 0) {
        /* Too large to be resident: the weights stream when that fits. */
        struct dk_error serr;
        if (*need <= cap)
            return -1;
        if ((*chunk = stream_chunk(p, cap, o, &serr)) == 0) {
            /* With -tee_chunk or a streamed save, why streaming failed is the news; else why
             * it is not resident. */
            if (o->stream_work_max || o->stream_save_bytes)
                *err = serr;
            return 1;
        }
        return 0;
    }
    if (o->stream && (*chunk = stream_chunk(p, cap, o, err)) == 0)
        return 1;
    return 0;
}

/*
 * The segment fits neither resident nor streamed at the batch darknetp chose (predict's rows,
 * valid): the largest smaller batch at which it does, found by bisection (the need grows with
 * the batch), becomes p->batch, with the shape network rebuilt at it. Batch 1's refusal is the
 * message when none fits: that batch is the least the command can run. Returns run_mode's
 * code at the batch kept.
 */
static int fall_back(struct dz_pnet *p, const struct dz_pnet_opts *o, size_t cap, size_t *need,
                     size_t *chunk, struct dk_error *err)
{
    const int chosen = p->batch;
    p->batch = 1;
    int rc = run_mode(p, o, cap, need, chunk, err);
    if (rc != 0) {
        p->batch = chosen;
        return rc;
    }
    int lo = 1, hi = chosen - 1; /* lo fits; the answer is in [lo, hi] */
    while (lo < hi) {
        struct dk_error ignored;
        size_t n = 0, c = 0;
        p->batch = lo + (hi - lo + 1) / 2;
        if (run_mode(p, o, cap, &n, &c, &ignored) == 0)
            lo = p->batch;
        else
            hi = p->batch - 1;
    }
    p->batch = lo;
    fprintf(stderr,
            "darknetp: layers %d..%d do not fit TA_DATA_SIZE = %zu at %d images per forward, "
            "resident or streamed: running %d at a time instead (the same results; -batch N "
            "sets it)\n",
            p->first, p->last, cap, chosen, lo);
    dz_shapes_free(p->shapes);
    p->shapes = NULL;
    if (dz_shapes_create(p->model, p->batch, o->seed, &p->shapes, err) != 0)
        return -1;
    p->shapes->cfg.subdivisions = p->subdivisions;
    return run_mode(p, o, cap, need, chunk, err);
}

/* Says how the segment runs when that is not what was asked or assumed: streamed, and options
 * that have no effect or may fail on OP-TEE. */
static void report_mode(const struct dz_pnet *p, const struct dz_pnet_opts *o, size_t cap,
                        size_t need, size_t chunk)
{
    if (chunk && !o->stream)
        fprintf(stderr,
                "darknetp: layers %d..%d need %zu bytes of secure memory with their weights "
                "resident, TA_DATA_SIZE is %zu: streaming their weights, sealed, through a "
                "working buffer of %zu bytes\n",
                p->first, p->last, need, cap, chunk);
    else if (chunk)
        fprintf(stderr,
                "darknetp: streaming the weights of layers %d..%d, sealed, through a working "
                "buffer of %zu bytes (-tee_stream)\n",
                p->first, p->last, chunk);
    else if (o->stream_work_max)
        fprintf(stderr,
                "darknetp: note: -tee_chunk %zu unused: layers %d..%d fit resident (%zu bytes "
                "of TA_DATA_SIZE = %zu); -tee_stream streams them\n",
                o->stream_work_max, p->first, p->last, need, cap);
    if (chunk > DZ_STREAM_WORK_OPTEE_TRIED)
        fprintf(stderr,
                "darknetp: warning: a working buffer of %zu bytes: each chunk crosses in memrefs "
                "that OP-TEE maps with the few page tables the TA's heap leaves, and OP-TEE for "
                "QEMU v8 refused 2 MiB (TEEC_ERROR_OUT_OF_MEMORY at the first import), took "
                "%zu; on a device like it, use -tee_chunk %zu or less\n",
                chunk, (size_t)DZ_STREAM_WORK_OPTEE_TRIED, (size_t)DZ_STREAM_WORK_OPTEE_TRIED);
}

bool dz_pnet_tree_labels(const struct dz_pnet *p, enum dz_output_policy policy)
{
    if (p->first < 0 || (size_t)p->last + 1 != p->shapes->n || policy == DZ_OUTPUT_SCORES)
        return false;
    if (p->tree_buf)
        return true;
    for (int i = p->first; i <= p->last; i++)
        if (p->shapes->layers[i].spec.tree_group_size)
            return true;
    return false;
}

/* Connects to the TA, checks the need against TA_DATA_SIZE, opens the model. */
static int open_tee(struct dz_pnet *p, const struct dz_pnet_opts *o, struct dk_error *err)
{
    size_t need = 0, ta_need = 0;
    if (dz_tee_connect(&p->tee, err) != 0) {
        add_need(p, err);
        return -1;
    }
    const size_t cap = dz_tee_data_size(p->tee);
    const size_t classes = p->shapes->truths;
    int top_k = o->top_k < 1 ? 1 : o->top_k;
    if ((size_t)top_k > classes)
        top_k = (int)classes;
    if (top_k > DZ_MAX_LABELS)
        top_k = DZ_MAX_LABELS;
    if (o->policy == DZ_OUTPUT_RANK && classes > DZ_MAX_LABELS &&
        (size_t)p->last + 1 == p->shapes->n)
        return dk_fail(err,
                       "-tee_output rank: the network has %zu classes, a TA prediction "
                       "holds at most %d labels",
                       classes, DZ_MAX_LABELS);
    /* the TA refuses this too (ta/model.c); said here with the option that works */
    if (!p->training && dz_pnet_tree_labels(p, o->policy))
        return dk_fail(err,
                       "-tee_output %s: the TEE segment %d..%d ends a network with a tree "
                       "softmax, whose classes darknet ranks after hierarchy_predictions; the TA "
                       "holds no tree to do that: use -tee_output scores (the normal world then "
                       "ranks them as darknet does)",
                       dz_output_name((uint32_t)o->policy), p->first, p->last);
    /* the TA refuses larger batches (ta/dz_wire.c): said here naming the batch */
    if ((unsigned)p->batch > DZ_MAX_BATCH)
        return dk_fail(err,
                       "a batch of %d images per forward is more than the TA takes (%u): "
                       "give a smaller -batch, or a smaller batch/subdivisions in the cfg",
                       p->batch, DZ_MAX_BATCH);
    size_t chunk = 0;
    int mode = run_mode(p, o, cap, &need, &chunk, err);
    if (mode > 0 && o->batch_fallback)
        mode = fall_back(p, o, cap, &need, &chunk, err);
    if (mode != 0)
        return -1;
    report_mode(p, o, cap, need, chunk);
    struct dz_tee_model tm = {
        .model = p->model,
        .shapes = p->shapes,
        .first = p->first,
        .last = p->last,
        .batch = p->batch,
        .subdivisions = p->subdivisions,
        .training = p->training,
        .seed = o->seed,
        .policy = o->policy,
        .top_k = top_k,
        .stream_chunk_bytes = chunk,
    };
    if (dz_tee_open_model(p->tee, &tm, &ta_need, err) == 0)
        return 0;
    if (ta_need > 0) {
        /* The TA counts more than the host's plan: say what fits by the TA's figure. */
        struct dz_fit fit;
        struct dk_error ignored;
        char advice[512];
        size_t slack = ta_need > need ? ta_need - need : 0;
        if (dz_fit_search(p->model, p->shapes, p->batch, p->training, cap > slack ? cap - slack : 0,
                          &fit, &ignored) == 0) {
            dz_fit_describe(&fit, p->shapes->n, advice, sizeof advice);
            size_t used = strlen(err->msg);
            if (used + 2 < sizeof err->msg)
                snprintf(err->msg + used, sizeof err->msg - used, "; %.*s",
                         (int)(sizeof err->msg - used - 3), advice);
        }
    }
    return -1;
}

int dz_pnet_open(struct dz_pnet *p, const struct dk_model *m, const struct dz_pnet_opts *o,
                 struct dk_error *err)
{
    memset(p, 0, sizeof *p);
    p->model = m;
    p->first = o->first;
    p->last = o->last;
    p->training = o->training;
    p->batch = o->batch > 0 ? o->batch : m->net.batch;
    p->subdivisions = o->batch > 0 ? 1 : m->net.subdivisions;
    if (dz_shapes_create(m, p->batch, o->seed, &p->shapes, err) != 0)
        return -1;
    p->shapes->cfg.subdivisions = p->subdivisions;
    p->weights_held = p->shapes->n;
    /* darknet applies the tree to the network's output and truth; a tree of another size
     * than the output (a layer after the tree softmax that resizes) is left alone. */
    if (m->hierarchy && p->shapes->truths == m->tree.n) {
        p->tree_buf = calloc((size_t)p->batch * m->tree.n, sizeof(float));
        if (!p->tree_buf)
            return dk_fail(err, "out of memory for the tree's %zu classes", m->tree.n);
    }
    const size_t n = m->n;
    struct dz_scratch_budget left = o->scratch ? *o->scratch : dz_scratch_default();
    if (p->first < 0)
        return build_part(p, 0, n - 1, o->seed, o->parallel, &left, &p->front, err);
    if (dz_partition_check(p->shapes, p->first, p->last, err) != 0 || open_tee(p, o, err) != 0)
        return -1;
    /* The TA reports the loss of a segment that ends the network; when the cost layers
     * are split the normal world prints the loss of its own cost layers. */
    p->loss_in_tee =
        (size_t)p->last + 1 == n && dz_range_has_cost(p->shapes, (size_t)p->first, (size_t)p->last);
    if (p->first > 0 &&
        build_part(p, 0, (size_t)p->first - 1, o->seed, o->parallel, &left, &p->front, err) != 0)
        return -1;
    if ((size_t)p->last + 1 < n) {
        if (build_part(p, (size_t)p->last + 1, n - 1, o->seed, o->parallel, &left, &p->back, err) !=
            0)
            return -1;
        if (p->training) {
            p->back_delta = calloc((size_t)p->batch * p->back->inputs, sizeof(float));
            if (!p->back_delta)
                return dk_fail(err, "out of memory");
        }
    }
    return 0;
}

void dz_pnet_close(struct dz_pnet *p)
{
    if (!p)
        return;
    dz_tee_close(p->tee);
    dnn_network_free(p->back);
    dnn_network_free(p->front);
    dz_shapes_free(p->shapes);
    free(p->back_delta);
    free(p->tree_buf);
    memset(p, 0, sizeof *p);
}

size_t dz_pnet_inputs(const struct dz_pnet *p)
{
    return p->shapes->inputs;
}

/* Every part agrees on `seen`: the learning rate depends on it. */
static void sync_seen(struct dz_pnet *p)
{
    p->shapes->seen = p->seen;
    if (p->front)
        p->front->seen = p->seen;
    if (p->back)
        p->back->seen = p->seen;
}

uint64_t dz_pnet_current_batch(struct dz_pnet *p)
{
    sync_seen(p);
    return dnn_network_current_batch(p->shapes);
}

float dz_pnet_current_rate(struct dz_pnet *p)
{
    sync_seen(p);
    return dnn_network_current_rate(p->shapes);
}

/* ------------------------------------------------------------------- train */

static size_t last_index(const struct dnn_network *net)
{
    return net->n - 1;
}

/* Front forward, then layer first's input (and the truth) into the shared block. */
static void stage_input(struct dz_pnet *p, const float *x, const float *y, bool train)
{
    const float *in = x;
    if (p->front) {
        dnn_network_forward_range(p->front, 0, last_index(p->front), x, NULL, train);
        in = p->front->layers[last_index(p->front)].output;
    }
    const size_t in_floats = (size_t)p->batch * p->shapes->layers[p->first].inputs;
    memcpy(dz_tee_input(p->tee), in, in_floats * sizeof(float));
    if (train && dz_tee_takes_truth(p->tee))
        memcpy(dz_tee_truth(p->tee), y, (size_t)p->batch * p->shapes->truths * sizeof(float));
}

static int forward_to_tee(struct dz_pnet *p, const float *x, const float *y, bool train,
                          struct dk_error *err)
{
    stage_input(p, x, y, train);
    return dz_tee_forward(p->tee, train, err);
}

/* Back forward and backward on the TA's output; the delta at its input goes to the TA. */
static void back_step(struct dz_pnet *p, const float *y)
{
    const float *in = dz_tee_output(p->tee);
    const size_t last = last_index(p->back);
    const size_t floats = (size_t)p->batch * p->back->inputs;
    dnn_network_forward_range(p->back, 0, last, in, y, true);
    memset(p->back_delta, 0, floats * sizeof(float));
    dnn_network_backward_range(p->back, 0, last, in, p->back_delta);
    memcpy(dz_tee_delta_in(p->tee), p->back_delta, floats * sizeof(float));
}

/* The TA's delta at layer first's input becomes the front's last delta. */
static void front_backward(struct dz_pnet *p, const float *x)
{
    struct dnn_layer *l = &p->front->layers[last_index(p->front)];
    memcpy(l->delta, dz_tee_delta_out(p->tee), (size_t)p->batch * l->outputs * sizeof(float));
    dnn_network_backward_range(p->front, 0, last_index(p->front), x, NULL);
}

/* Updates every part; the TA's loss of the iteration comes back when it may leave. */
static int update_all(struct dz_pnet *p, struct dk_error *err)
{
    if (p->front)
        dnn_network_update_range(p->front, 0, last_index(p->front));
    const bool ask = p->loss_in_tee && dz_tee_loss_leaves(p->tee);
    float avg = 0;
    if (dz_tee_update(p->tee, ask ? &p->tee_loss : NULL, ask ? &avg : NULL, err) != 0)
        return -1;
    p->tee_loss_known = ask;
    if (p->back)
        dnn_network_update_range(p->back, 0, last_index(p->back));
    return 0;
}

/* The truth as darknet's loader gives it with a hierarchy (fill_hierarchy): ancestors of
 * each label set, groups without a label masked. y itself is the caller's and stays. */
static const float *tree_truth(struct dz_pnet *p, const float *y)
{
    const struct dk_tree *t = &p->model->tree;
    if (!p->model->hierarchy || !p->tree_buf || !y)
        return y;
    memcpy(p->tree_buf, y, (size_t)p->batch * t->n * sizeof(float));
    for (size_t b = 0; b < (size_t)p->batch; b++)
        dk_tree_fill_truth(t, p->tree_buf + b * t->n);
    return p->tree_buf;
}

int dz_pnet_train_batch(struct dz_pnet *p, const float *x, const float *y, float *loss,
                        bool *loss_known, struct dk_error *err)
{
    y = tree_truth(p, y);
    *loss = 0;
    *loss_known = !p->loss_in_tee;
    p->tee_loss_known = false;
    if (!p->tee) {
        *loss = dnn_network_train_batch(p->front, x, y);
        p->seen = p->front->seen;
        return 0;
    }
    p->seen += (uint64_t)p->batch;
    sync_seen(p);
    const bool update = (p->seen / (uint64_t)p->batch) % (uint64_t)p->subdivisions == 0;
    stage_input(p, x, y, true);
    /* A segment that ends the network takes its whole step in one call (DZ_CMD_TRAIN_STEP):
     * one world switch instead of three, the same computation. */
    bool stepped = false;
    const bool ask = update && p->loss_in_tee && dz_tee_loss_leaves(p->tee);
    float avg = 0;
    if (!p->back && dz_tee_train_step(p->tee, update, ask ? &p->tee_loss : NULL, ask ? &avg : NULL,
                                      &stepped, err) != 0)
        return -1;
    if (!stepped) {
        if (dz_tee_forward(p->tee, true, err) != 0)
            return -1;
        if (p->back)
            back_step(p, y);
        if (dz_tee_backward(p->tee, err) != 0)
            return -1;
    }
    if (p->front)
        front_backward(p, x);
    if (update && stepped) {
        if (p->front)
            dnn_network_update_range(p->front, 0, last_index(p->front));
        p->tee_loss_known = ask;
    } else if (update && update_all(p, err) != 0) {
        return -1;
    }
    if (p->back && !p->loss_in_tee)
        *loss = dnn_network_cost(p->back);
    return 0;
}

/* ----------------------------------------------------------------- predict */

/* darknet's hierarchy_predictions(..., only_leaves 1, stride 1) on each image's scores. */
static void tree_scores(struct dz_pnet *p, struct dz_pnet_output *out)
{
    const struct dk_tree *t = &p->model->tree;
    if (!p->model->hierarchy || !p->tree_buf || !out->scores || out->outputs != t->n)
        return;
    memcpy(p->tree_buf, out->scores, (size_t)p->batch * t->n * sizeof(float));
    for (size_t b = 0; b < (size_t)p->batch; b++)
        dk_tree_predictions(t, p->tree_buf + b * t->n, true);
    out->scores = p->tree_buf;
}

static int predict_scores(struct dz_pnet *p, const float *x, struct dz_pnet_output *out,
                          struct dk_error *err)
{
    memset(out, 0, sizeof *out);
    const size_t o = dnn_network_output_index(p->shapes);
    out->outputs = p->shapes->layers[o].outputs;
    if (!p->tee) {
        out->scores = dnn_network_predict(p->front, x);
        return 0;
    }
    if (o < (size_t)p->first) { /* only cost layers from the segment on */
        dnn_network_forward_range(p->front, 0, last_index(p->front), x, NULL, false);
        out->scores = p->front->layers[o].output;
        return 0;
    }
    if (forward_to_tee(p, x, NULL, false, err) != 0)
        return -1;
    if (!p->back) {
        /* Labels, or the scores themselves when the policy lets them leave. */
        out->labels = dz_tee_predictions(p->tee);
        out->scores = dz_tee_scores(p->tee);
        return 0;
    }
    if (o == (size_t)p->last) {
        out->scores = dz_tee_output(p->tee);
        return 0;
    }
    if (o < (size_t)p->last)
        return dk_fail(err,
                       "the network's output (layer %zu) is inside the TEE segment %d..%d, "
                       "which does not end the network; end the segment at layer %zu",
                       o, p->first, p->last, p->shapes->n - 1);
    dnn_network_forward_range(p->back, 0, last_index(p->back), dz_tee_output(p->tee), NULL, false);
    out->scores = p->back->layers[o - ((size_t)p->last + 1)].output;
    return 0;
}

int dz_pnet_predict(struct dz_pnet *p, const float *x, struct dz_pnet_output *out,
                    struct dk_error *err)
{
    if (predict_scores(p, x, out, err) != 0)
        return -1;
    tree_scores(p, out);
    return 0;
}
