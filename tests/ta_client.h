/*
 * ta_client.h - raw protocol 2 calls to the DarkneTZ TA through the GP Client API, and the
 * model blobs of a network's partition built with the protocol's own codec (dz_wire.h), for
 * the TA tests (test_ta_dnn.c, test_ta_attacks.c). Include after <cmocka.h>: the helpers
 * assert. Everything is static inline, so a test uses what it needs.
 */
#ifndef TESTS_TA_CLIENT_H
#define TESTS_TA_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "ta/include/dz_wire.h"

static const TEEC_UUID dz_ta_uuid = DZ_TA_UUID;

struct ta {
    TEEC_Context ctx;
    TEEC_Session sess;
};

static inline void ta_start(struct ta *t)
{
    uint32_t origin = 0;
    assert_int_equal(TEEC_InitializeContext(NULL, &t->ctx), TEEC_SUCCESS);
    assert_int_equal(
        TEEC_OpenSession(&t->ctx, &t->sess, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin),
        TEEC_SUCCESS);
}

static inline void ta_stop(struct ta *t)
{
    TEEC_CloseSession(&t->sess);
    TEEC_FinalizeContext(&t->ctx);
}

static inline TEEC_Result invoke(struct ta *t, uint32_t cmd, TEEC_Operation *op)
{
    uint32_t origin = 0;
    TEEC_Result res = TEEC_InvokeCommand(&t->sess, cmd, op, &origin);
    if (res != TEEC_SUCCESS)
        assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP); /* the TA answered: it is alive */
    return res;
}

static inline void set_mem(TEEC_Operation *op, int i, const void *buf, size_t size)
{
    op->params[i].tmpref.buffer = (void *)buf;
    op->params[i].tmpref.size = size;
}

/* The TA is alive and speaks protocol 2. */
static inline void ta_version(struct ta *t, uint32_t *data_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(invoke(t, DZ_CMD_VERSION, &op), TEEC_SUCCESS);
    assert_int_equal(op.params[0].value.a, DZ_TA_PROTOCOL_VERSION);
    if (data_size)
        *data_size = op.params[0].value.b;
}

static inline TEEC_Result ta_open_model(struct ta *t, const void *blob, size_t size, uint64_t *need)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, blob, size);
    TEEC_Result res = invoke(t, DZ_CMD_OPEN_MODEL, &op);
    if (need)
        *need = ((uint64_t)op.params[1].value.b << 32) | op.params[1].value.a;
    return res;
}

static inline TEEC_Result ta_load_plain(struct ta *t, const float *p, size_t bytes, uint64_t seen)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, p, bytes);
    op.params[1].value.a = (uint32_t)seen;
    op.params[1].value.b = (uint32_t)(seen >> 32);
    return invoke(t, DZ_CMD_LOAD_PLAIN, &op);
}

/* truth NULL: NONE; out NULL: NONE; *out_size in: buffer size, out: what the TA wrote. */
static inline TEEC_Result ta_forward(struct ta *t, const float *in, size_t in_bytes,
                                     const float *truth, size_t truth_bytes, uint32_t flags,
                                     void *out, size_t *out_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                         TEEC_VALUE_INPUT, out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
    set_mem(&op, 0, in, in_bytes);
    if (truth)
        set_mem(&op, 1, truth, truth_bytes);
    op.params[2].value.a = flags;
    if (out)
        set_mem(&op, 3, out, *out_size);
    TEEC_Result res = invoke(t, DZ_CMD_FORWARD, &op);
    if (out)
        *out_size = op.params[3].tmpref.size;
    return res;
}

static inline TEEC_Result ta_backward(struct ta *t, const float *delta_in, size_t in_bytes,
                                      float *delta_out, size_t *out_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(delta_in ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                         delta_out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE, TEEC_NONE, TEEC_NONE);
    if (delta_in)
        set_mem(&op, 0, delta_in, in_bytes);
    if (delta_out)
        set_mem(&op, 1, delta_out, *out_size);
    TEEC_Result res = invoke(t, DZ_CMD_BACKWARD, &op);
    if (delta_out)
        *out_size = op.params[1].tmpref.size;
    return res;
}

static inline TEEC_Result ta_update(struct ta *t)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    return invoke(t, DZ_CMD_UPDATE, &op);
}

/* UPDATE asking for the iteration's loss and running average (value0, float bits). */
static inline TEEC_Result ta_update_loss(struct ta *t, float *loss, float *avg)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].value.a = 0xFFFFFFFFu; /* a refusal must leave these as they were */
    op.params[0].value.b = 0xFFFFFFFFu;
    TEEC_Result res = invoke(t, DZ_CMD_UPDATE, &op);
    memcpy(loss, &op.params[0].value.a, sizeof(*loss));
    memcpy(avg, &op.params[0].value.b, sizeof(*avg));
    return res;
}

/*
 * TRAIN_STEP: FORWARD (training), BACKWARD and, with DZ_STEP_UPDATE in @flags, UPDATE in one
 * call. truth NULL: memref1 NONE; delta_out NULL: memref3 NONE, else *out_size in: the buffer's
 * bytes, out: what the TA wrote or, on SHORT_BUFFER, needs. value2 goes in as a = @flags,
 * b = 0xFFFFFFFF; *loss and *avg (either may be NULL) get a and b as the TA left them, as
 * float bits: the loss and its running average under DZ_STEP_LOSS, else what went in.
 */
static inline TEEC_Result ta_train_step(struct ta *t, const float *in, size_t in_bytes,
                                        const float *truth, size_t truth_bytes, uint32_t flags,
                                        float *delta_out, size_t *out_size, float *loss, float *avg)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                         TEEC_VALUE_INOUT, delta_out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
    set_mem(&op, 0, in, in_bytes);
    if (truth)
        set_mem(&op, 1, truth, truth_bytes);
    op.params[2].value.a = flags;
    op.params[2].value.b = 0xFFFFFFFFu;
    if (delta_out)
        set_mem(&op, 3, delta_out, *out_size);
    TEEC_Result res = invoke(t, DZ_CMD_TRAIN_STEP, &op);
    if (delta_out)
        *out_size = op.params[3].tmpref.size;
    if (loss)
        memcpy(loss, &op.params[2].value.a, sizeof(*loss));
    if (avg)
        memcpy(avg, &op.params[2].value.b, sizeof(*avg));
    return res;
}

/* SAVE_SEALED with an explicit policy (memref1), or the session's own when @policy is NULL. */
static inline TEEC_Result ta_save_policy(struct ta *t, void *blob, size_t *size,
                                         const struct dz_policy *policy)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(
        TEEC_MEMREF_TEMP_OUTPUT, policy ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, blob, *size);
    if (policy)
        set_mem(&op, 1, policy, sizeof(*policy));
    TEEC_Result res = invoke(t, DZ_CMD_SAVE_SEALED, &op);
    *size = op.params[0].tmpref.size;
    return res;
}

static inline TEEC_Result ta_save(struct ta *t, void *blob, size_t *size)
{
    return ta_save_policy(t, blob, size, NULL);
}

/* What LOAD_SEALED returns in value1 and value2. */
struct load_info {
    uint64_t seen;
    uint32_t model_version;
    uint32_t modes;
};

static inline TEEC_Result ta_load_sealed_info(struct ta *t, const void *blob, size_t size,
                                              struct load_info *info)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_OUTPUT, TEEC_NONE);
    set_mem(&op, 0, blob, size);
    TEEC_Result res = invoke(t, DZ_CMD_LOAD_SEALED, &op);
    if (info) {
        info->seen = ((uint64_t)op.params[1].value.b << 32) | op.params[1].value.a;
        info->model_version = op.params[2].value.a;
        info->modes = op.params[2].value.b;
    }
    return res;
}

static inline TEEC_Result ta_load_sealed(struct ta *t, const void *blob, size_t size,
                                         uint64_t *seen)
{
    struct load_info info;
    TEEC_Result res = ta_load_sealed_info(t, blob, size, &info);
    if (seen)
        *seen = info.seen;
    return res;
}

/* GET_PUBKEY: the device's X25519 public value. */
static inline TEEC_Result ta_get_pubkey(struct ta *t, uint8_t *pub, size_t *size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, pub, *size);
    TEEC_Result res = invoke(t, DZ_CMD_GET_PUBKEY, &op);
    *size = op.params[0].tmpref.size;
    return res;
}

/* ---------------------------------------------------------- models and blobs */

/* A network, a partition of it, and what the header says about the session. */
struct seg {
    const struct dnn_net_config *cfg; /* the whole network's [net] */
    const struct dnn_layer_spec *specs;
    size_t n_layers;
    uint32_t first, last;
    uint32_t batch;
    bool training;
    uint32_t output_policy, top_k;
    uint64_t seed;
};

/* Input shape of layer `first`: the output of the layers before it, as the engine builds them. */
static inline void input_shape(const struct seg *g, int *h, int *w, int *c)
{
    struct dnn_net_config cfg = *g->cfg;
    struct dnn_network *net = NULL;
    if (g->first == 0) {
        *h = cfg.h;
        *w = cfg.w;
        *c = cfg.c;
        return;
    }
    cfg.batch = 1;
    cfg.subdivisions = 1;
    assert_int_equal(dnn_network_create(&net, &cfg, g->specs, g->first, false, 1), DNN_OK);
    *h = net->layers[g->first - 1].out_h;
    *w = net->layers[g->first - 1].out_w;
    *c = net->layers[g->first - 1].out_c;
    dnn_network_free(net);
}

/* The request of the segment's OPEN_MODEL, as the host builds it. */
static inline void seg_request(const struct seg *g, struct dz_wire_request *r)
{
    int ih = 0, iw = 0, ic = 0;
    input_shape(g, &ih, &iw, &ic);
    memset(r, 0, sizeof(*r));
    r->n_layers = (uint32_t)g->n_layers;
    r->first = g->first;
    r->last = g->last;
    r->batch = g->batch;
    r->subdivisions = (uint32_t)g->cfg->subdivisions;
    r->training = g->training;
    r->in_h = (uint32_t)ih;
    r->in_w = (uint32_t)iw;
    r->in_c = (uint32_t)ic;
    r->seed = g->seed;
    r->output = (enum dz_output_policy)g->output_policy;
    r->top_k = g->top_k;
}

/* The model blob of a segment, encoded by the protocol's codec; *size gets its bytes. Free
 * with free(). */
static inline uint8_t *make_blob(const struct seg *g, size_t *size)
{
    const size_t n = g->last - g->first + 1;
    struct dz_wire_request r;
    struct dz_model_header h;

    seg_request(g, &r);
    dz_wire_encode_header(&r, g->cfg, &h);
    /* the tree group table after the specs, as the host sends it (none without a tree) */
    const size_t words = dz_wire_tree_words(&g->specs[g->first], n);
    const size_t spec_end = sizeof(h) + n * sizeof(struct dz_wire_spec);
    h.tree_words = (uint32_t)words;
    *size = spec_end + words * sizeof(uint32_t);
    uint8_t *blob = calloc(1, *size);
    assert_non_null(blob);
    memcpy(blob, &h, sizeof(h));
    for (size_t i = 0; i < n; i++) {
        struct dz_wire_spec w;
        dz_wire_encode_spec(&g->specs[g->first + i], &w);
        memcpy(blob + sizeof(h) + i * sizeof(w), &w, sizeof(w));
    }
    dz_wire_encode_tree(&g->specs[g->first], n, (uint32_t *)(void *)(blob + spec_end));
    return blob;
}

static inline struct dz_model_header *blob_header(uint8_t *blob)
{
    return (struct dz_model_header *)(void *)blob;
}

static inline struct dz_wire_spec *blob_spec(uint8_t *blob, size_t i)
{
    return (struct dz_wire_spec *)(void *)(blob + sizeof(struct dz_model_header) +
                                           i * sizeof(struct dz_wire_spec));
}

/* The segment's specs as the TA builds them: indexes rebased, index_base = first. */
static inline void segment_config(const struct seg *g, struct dnn_net_config *cfg,
                                  struct dnn_layer_spec *specs)
{
    int h = 0, w = 0, c = 0;
    input_shape(g, &h, &w, &c);
    *cfg = *g->cfg;
    cfg->batch = (int)g->batch;
    cfg->h = h;
    cfg->w = w;
    cfg->c = c;
    cfg->index_base = (int)g->first;
    for (uint32_t i = g->first; i <= g->last; i++) {
        struct dnn_layer_spec s = g->specs[i];
        s.from -= (int)g->first;
        for (int r = 0; r < s.n_route; r++)
            s.route[r] -= (int)g->first;
        specs[i - g->first] = s;
    }
}

/* The engine's own build of the segment: the reference the TA must match bit for bit. */
static inline struct dnn_network *reference(const struct seg *g)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec specs[64];
    struct dnn_network *net = NULL;
    assert_true(g->last - g->first + 1 <= 64);
    segment_config(g, &cfg, specs);
    assert_int_equal(
        dnn_network_create(&net, &cfg, specs, g->last - g->first + 1, g->training, g->seed),
        DNN_OK);
    return net;
}

static inline size_t param_count(const struct dnn_network *net)
{
    size_t n = 0;
    for (size_t i = 0; i < net->n; i++)
        for (size_t k = 0; k < net->layers[i].n_params; k++)
            n += net->layers[i].params[k].count;
    return n;
}

static inline void params_get(const struct dnn_network *net, float *out)
{
    for (size_t i = 0; i < net->n; i++)
        for (size_t k = 0; k < net->layers[i].n_params; k++) {
            const struct dnn_param *p = &net->layers[i].params[k];
            memcpy(out, p->value, p->count * sizeof(float));
            out += p->count;
        }
}

static inline void params_set(struct dnn_network *net, const float *in)
{
    for (size_t i = 0; i < net->n; i++)
        for (size_t k = 0; k < net->layers[i].n_params; k++) {
            const struct dnn_param *p = &net->layers[i].params[k];
            memcpy(p->value, in, p->count * sizeof(float));
            in += p->count;
        }
}

/* The TA tests' small classifier (6 layers): connected 8 leaky, connected 6 with batch
 * normalisation leaky, dropout .3, connected @classes linear, softmax, SSE cost. Batch
 * normalisation and dropout make a step depend on the whole state (rolling statistics, the
 * dropout stream, seen), not only on the weights. */
static inline void ta_small_classifier(struct dnn_layer_spec specs[6], int classes)
{
    memset(specs, 0, 6 * sizeof(*specs));
    specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = 8};
    specs[1] = (struct dnn_layer_spec){.kind = DNN_LAYER_CONNECTED,
                                       .activation = DNN_ACT_LEAKY,
                                       .outputs = 6,
                                       .batch_normalize = true};
    specs[2] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_DROPOUT, .activation = DNN_ACT_LINEAR, .probability = 0.3f};
    specs[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = classes};
    specs[4] = (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX,
                                       .activation = DNN_ACT_LINEAR,
                                       .softmax_groups = 1,
                                       .temperature = 1};
    specs[5] = (struct dnn_layer_spec){.kind = DNN_LAYER_COST,
                                       .activation = DNN_ACT_LINEAR,
                                       .cost_type = DNN_COST_SSE,
                                       .cost_scale = 1};
}

/* Its [net]: @batch images of 1x1x@channels, @subdivisions, SGD (rate .1, momentum .9, decay
 * .0005) on darknet's `steps` policy, scaled by .5 at @step0 and .1 at @step1, burn_in 2. */
static inline void ta_small_config(struct dnn_net_config *c, int batch, int subdivisions,
                                   int channels, int step0, int step1)
{
    memset(c, 0, sizeof(*c));
    c->batch = batch;
    c->subdivisions = subdivisions;
    c->h = 1;
    c->w = 1;
    c->c = channels;
    c->learning_rate = 0.1f;
    c->momentum = 0.9f;
    c->decay = 0.0005f;
    c->policy = DNN_POLICY_STEPS;
    c->n_steps = 2;
    c->steps[0] = step0;
    c->steps[1] = step1;
    c->scales[0] = 0.5f;
    c->scales[1] = 0.1f;
    c->burn_in = 2;
    c->power = 4;
    c->max_batches = 100;
}

#endif /* TESTS_TA_CLIENT_H */
