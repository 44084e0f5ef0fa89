/*
 * test_ta_dnn.c - the DarkneTZ TA (ta/) driven through the simulated TEE's client API with
 * protocol 2's raw commands (model blobs encoded by the protocol's own codec, dz_wire.h), the
 * way a hostile or a careless normal world would drive it:
 *  - every malformed model blob is refused with TEE_ERROR_BAD_PARAMETERS, the TA lives on;
 *  - a segment that does not fit is refused with the bytes it needs, before allocating,
 *    and one that just fits really runs (forward, seal) inside TA_DATA_SIZE;
 *  - wrong parameter types, memref sizes and command orders are refused;
 *  - forward, backward and update of a segment are bit for bit what the engine computes for
 *    the same segment in this process (dnn_network_create with index_base = first);
 *  - the output policy lets out labels only, equal to dnn_top_k on the engine's scores;
 *  - the loss line in the TEE log has the engine's numbers;
 *  - sealed parameters round trip, and are refused for another partition, another model,
 *    any flipped bit, any other length, leaving the parameters unchanged; a sealed blob
 *    carries the policy it was saved under (protocol 2) and a session outside it is refused;
 *  - one training query per step, and a load forgets every pending BACKWARD;
 *  - the fixture LeNet with layers 4..10 in the TA predicts as the engine does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "darknet/image.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "ta/include/dz_ta_memory.h"
#include "ta/include/user_ta_header_defines.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;
/* Per-image sizes of a segment the TA plans with. */
struct dims {
    size_t inputs, outputs, truths, params;
    bool has_cost;
};

static void dims_of(const struct dnn_network *net, struct dims *d)
{
    memset(d, 0, sizeof(*d));
    for (size_t i = 0; i < net->n; i++) {
        for (size_t k = 0; k < net->layers[i].n_params; k++)
            d->params += net->layers[i].params[k].count;
        d->has_cost |= net->layers[i].has_cost;
    }
    d->inputs = net->layers[0].inputs;
    d->outputs = net->layers[net->n - 1].outputs;
    d->truths = net->layers[dnn_network_output_index(net)].outputs;
}

/* The same from the engine's plan (no tensor allocated), as the TA plans. */
static void plan_dims(const struct dnn_plan *plan, struct dims *d)
{
    memset(d, 0, sizeof(*d));
    d->inputs = plan->inputs;
    d->outputs = plan->outputs;
    d->truths = plan->truths;
    d->params = plan->param_floats;
    d->has_cost = plan->has_cost;
}

/* What the TA should answer to OPEN_MODEL, by the shared formula (dz_ta_memory.h). */
static uint64_t expected_need(const struct seg *g)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec specs[64];
    const size_t n = g->last - g->first + 1;
    struct dnn_plan plan;
    struct dims d;

    segment_config(g, &cfg, specs);
    assert_int_equal(dnn_plan_build(&plan, &cfg, specs, n, g->training), DNN_OK);
    const size_t engine = plan.bytes;
    plan_dims(&plan, &d);
    dnn_plan_free(&plan);
    if (engine < 64u * 1024 * 1024) {
        /* Small enough to build: the dry run must agree with the engine's own network. */
        struct dnn_network *net = NULL;
        struct dims real;
        assert_int_equal(dnn_network_create(&net, &cfg, specs, n, g->training, 1), DNN_OK);
        assert_int_equal(
            net->arena_bytes + n * sizeof(struct dnn_layer) + sizeof(struct dnn_network), engine);
        dims_of(net, &real);
        assert_memory_equal(&real, &d, sizeof(d));
        dnn_network_free(net);
    }
    const struct dz_ta_memory_args a = {
        .engine_bytes = engine,
        .spec_bytes = n * sizeof(struct dnn_layer_spec),
        .batch = g->batch,
        .inputs = d.inputs,
        .outputs = d.outputs,
        .truths = d.truths,
        .param_floats = d.params,
        .training = g->training,
        .first_layer = g->first == 0,
        .ends_network = g->last == g->n_layers - 1,
        .takes_truth = g->training && d.has_cost,
    };
    struct dz_ta_memory m;
    if (!dz_ta_memory_compute(&a, DZ_TA_HEAP_RESERVE_DEFAULT, &m))
        return UINT64_MAX;
    return m.total;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static float rnd(float lo, float hi)
{
    return test_rng_float(&rng_state, lo, hi);
}

static void fill(float *x, size_t n, float lo, float hi)
{
    test_rng_fill(&rng_state, x, n, lo, hi);
}

/* Random parameters for net's layout: BN scales and variances positive, the rest any sign. */
static void random_params(const struct dnn_network *net, float *p)
{
    for (size_t i = 0; i < net->n; i++)
        for (size_t k = 0; k < net->layers[i].n_params; k++) {
            const struct dnn_param *prm = &net->layers[i].params[k];
            const bool positive =
                !strcmp(prm->name, "scales") || !strcmp(prm->name, "rolling_variance");
            fill(p, prm->count, positive ? 0.5f : -1.0f, 1.0f);
            p += prm->count;
        }
}

/* --------------------------------------------------------------- the test net */

enum { N_LAYERS = 6, BATCH = 4, SUBDIV = 2, CLASSES = 3 };

static struct dnn_net_config test_cfg;
static struct dnn_layer_spec test_specs[N_LAYERS];

/* ta_client.h's small classifier, 2 subdivisions, the rate scaled at 3 and 6 updates. */
static void init_test_net(void)
{
    ta_small_config(&test_cfg, BATCH, SUBDIV, 8, 3, 6);
    ta_small_classifier(test_specs, CLASSES);
}

static struct seg test_seg(uint32_t first, uint32_t last, bool training)
{
    return (struct seg){.cfg = &test_cfg,
                        .specs = test_specs,
                        .n_layers = N_LAYERS,
                        .first = first,
                        .last = last,
                        .batch = BATCH,
                        .training = training,
                        .output_policy = DZ_OUTPUT_TOP1,
                        .top_k = 0,
                        .seed = 0x5EEDull};
}

/* Opens a segment in a new session; the TA's need must be the formula's. */
static void open_seg(struct ta *t, const struct seg *g)
{
    size_t size = 0;
    uint8_t *blob = make_blob(g, &size);
    uint64_t need = 0;
    ta_start(t);
    assert_int_equal(ta_open_model(t, blob, size, &need), TEEC_SUCCESS);
    assert_int_equal(need, expected_need(g));
    free(blob);
}

static void one_hot(float *truth, size_t batch, size_t classes)
{
    memset(truth, 0, batch * classes * sizeof(float));
    for (size_t b = 0; b < batch; b++)
        truth[b * classes + (size_t)rnd(0, (float)classes - 0.001f)] = 1;
}

/* ------------------------------------------------------------------- tests */

static void test_version_types_and_order(void **state)
{
    (void)state;
    struct ta t;
    uint32_t data_size = 0;
    TEEC_Operation op;
    float x[64] = {0};
    uint8_t blob[512];

    ta_start(&t);
    ta_version(&t, &data_size);
    assert_int_equal(data_size, TA_DATA_SIZE);

    /* A wrong type word, for every command of the protocol (DZ_CMD_TRAIN_STEP included: its
     * memref0 is refused as a value before the session state is looked at). */
    for (uint32_t cmd = DZ_CMD_VERSION; cmd < DZ_CMD_COUNT; cmd++) {
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_INPUT, TEEC_VALUE_INPUT,
                                         TEEC_VALUE_INPUT);
        assert_int_equal(invoke(&t, cmd, &op), TEEC_ERROR_BAD_PARAMETERS);
    }
    memset(&op, 0, sizeof(op));
    assert_int_equal(invoke(&t, 99, &op), TEEC_ERROR_NOT_SUPPORTED);
    memset(&op, 0, sizeof(op));
    assert_int_equal(invoke(&t, DZ_CMD_COUNT, &op), TEEC_ERROR_NOT_SUPPORTED);

    /* GET_PUBKEY needs no model: 32 bytes, the same each time, SHORT_BUFFER with the size. */
    uint8_t pub[DZ_X25519_BYTES + 8], pub2[DZ_X25519_BYTES];
    size_t pub_size = DZ_X25519_BYTES - 1;
    assert_int_equal(ta_get_pubkey(&t, pub, &pub_size), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(pub_size, DZ_X25519_BYTES);
    pub_size = sizeof(pub); /* larger is fine */
    assert_int_equal(ta_get_pubkey(&t, pub, &pub_size), TEEC_SUCCESS);
    assert_int_equal(pub_size, DZ_X25519_BYTES);
    pub_size = sizeof(pub2);
    assert_int_equal(ta_get_pubkey(&t, pub2, &pub_size), TEEC_SUCCESS);
    assert_memory_equal(pub, pub2, DZ_X25519_BYTES);

    /* Everything but VERSION, GET_PUBKEY and OPEN_MODEL waits for a model. */
    size_t out = sizeof(x);
    assert_int_equal(ta_load_plain(&t, x, sizeof(x), 0), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, x, &out), TEEC_ERROR_BAD_STATE);
    out = sizeof(x);
    assert_int_equal(ta_backward(&t, x, sizeof(x), x, &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    out = sizeof(x);
    assert_int_equal(ta_train_step(&t, x, sizeof(x), x, 12, DZ_STEP_UPDATE, x, &out, NULL, NULL),
                     TEEC_ERROR_BAD_STATE);
    out = sizeof(blob);
    assert_int_equal(ta_save(&t, blob, &out), TEEC_ERROR_BAD_STATE);
    struct dz_policy policy;
    memset(&policy, 0, sizeof(policy));
    out = sizeof(blob);
    assert_int_equal(ta_save_policy(&t, blob, &out, &policy), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_load_sealed(&t, blob, sizeof(blob), NULL), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    /* The key survives the session: the same public value in a new one. */
    ta_start(&t);
    pub_size = sizeof(pub2);
    assert_int_equal(ta_get_pubkey(&t, pub2, &pub_size), TEEC_SUCCESS);
    assert_memory_equal(pub, pub2, DZ_X25519_BYTES);
    ta_stop(&t);

    /* OpenSession takes no parameters. */
    TEEC_Context ctx;
    TEEC_Session s;
    uint32_t origin = 0;
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL, &op, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);
    TEEC_FinalizeContext(&ctx);
}

/* One mutation of a good blob; the TA must refuse it and live on. */
struct mutation {
    const char *what;
    void (*apply)(uint8_t *blob, size_t *size);
};

#define HDR_MUTATION(name, stmt)                                                                   \
    static void name(uint8_t *b, size_t *size)                                                     \
    {                                                                                              \
        struct dz_model_header *h = blob_header(b);                                                \
        (void)size;                                                                                \
        stmt;                                                                                      \
    }
#define SPEC_MUTATION(name, i, stmt)                                                               \
    static void name(uint8_t *b, size_t *size)                                                     \
    {                                                                                              \
        struct dz_wire_spec *s = blob_spec(b, i);                                                  \
        (void)size;                                                                                \
        stmt;                                                                                      \
    }

/* The blob under test is layers 1..5 of the test net: specs 0..4 are layers 1..5. */
HDR_MUTATION(m_magic, h->magic ^= 1)
HDR_MUTATION(m_version, h->version = 1) /* a protocol 1 host */
HDR_MUTATION(m_version_next, h->version = DZ_TA_PROTOCOL_VERSION + 1)
HDR_MUTATION(m_layers0, h->n_layers = 0)
HDR_MUTATION(m_layers_huge, h->n_layers = 0xFFFFFFFFu)
HDR_MUTATION(m_first_gt_last, (h->first = 5, h->last = 1))
HDR_MUTATION(m_last_past_end, (h->last = 6, h->n_specs = 6))
HDR_MUTATION(m_n_specs, h->n_specs = 4)
HDR_MUTATION(m_n_specs_huge, h->n_specs = 0x80000000u)
HDR_MUTATION(m_batch0, h->batch = 0)
HDR_MUTATION(m_batch_huge, h->batch = 0x7FFFFFFFu)
HDR_MUTATION(m_subdiv0, h->subdivisions = 0)
HDR_MUTATION(m_training2, h->training = 2)
HDR_MUTATION(m_in_h0, h->in_h = 0)
HDR_MUTATION(m_in_c_huge, h->in_c = 1u << 20)
HDR_MUTATION(m_policy, h->policy = 7)
HDR_MUTATION(m_rate_nan, h->learning_rate = 0.0f / 0.0f)
HDR_MUTATION(m_momentum_inf, h->momentum = 1.0f / 0.0f)
HDR_MUTATION(m_burn_in, h->burn_in = -1)
HDR_MUTATION(m_n_steps, h->n_steps = 17)
HDR_MUTATION(m_steps_negative, h->steps[1] = -3)
HDR_MUTATION(m_output_policy, h->output_policy = DZ_OUTPUT_COUNT)
HDR_MUTATION(m_top_k_huge, h->top_k = 65)
HDR_MUTATION(m_topk_zero, (h->output_policy = DZ_OUTPUT_TOPK, h->top_k = 0))
HDR_MUTATION(m_tree_words_huge, h->tree_words = 0x80000000u)
HDR_MUTATION(m_stream_small, h->stream_chunk_bytes = 4092)
HDR_MUTATION(m_stream_odd, h->stream_chunk_bytes = 65537)
HDR_MUTATION(m_sgdr_cycle_without_sgdr, h->sgdr_cycle = 1)
HDR_MUTATION(m_adam_without_keys, h->adam = 1)
HDR_MUTATION(m_learning_rate_negative, h->learning_rate = -1e30f)
HDR_MUTATION(m_momentum_negative, h->momentum = -1e30f)
HDR_MUTATION(m_sgdr_min_negative, (h->policy = DNN_POLICY_SGDR, h->sgdr_cycle = 2, h->sgdr_mult = 1,
                                   h->learning_rate_min = -1e30f))
HDR_MUTATION(m_scale_nan, h->scale = 0.0f / 0.0f)
HDR_MUTATION(m_max_batches, h->max_batches = -1)
HDR_MUTATION(m_steps_past_n, h->steps[2] = 9)
HDR_MUTATION(m_scales_past_n, h->scales[15] = 0.5f)
SPEC_MUTATION(m_kind, 0, s->kind = DNN_LAYER_KIND_COUNT)
SPEC_MUTATION(m_kind_huge, 3, s->kind = 0xFFFFFFFFu)
SPEC_MUTATION(m_activation, 0, s->activation = DNN_ACT_COUNT)
SPEC_MUTATION(m_cost_type, 4, s->cost_type = DNN_COST_COUNT)
SPEC_MUTATION(m_bn2, 0, s->batch_normalize = 2)
SPEC_MUTATION(m_outputs0, 0, s->outputs = 0)
SPEC_MUTATION(m_outputs_negative, 2, s->outputs = -3)
SPEC_MUTATION(m_outputs_huge, 2, s->outputs = 0x7FFFFFFF)
/* A layer turned into another kind keeps only fields of its new kind (the codec refuses
 * unused fields set), so each mutation below is refused for the fault it names. */
SPEC_MUTATION(m_conv_filters0, 0,
              (s->kind = DNN_LAYER_CONVOLUTIONAL, s->outputs = 0, s->filters = 0, s->size = 1,
               s->stride = 1, s->groups = 1))
SPEC_MUTATION(m_conv_groups, 0,
              (s->kind = DNN_LAYER_CONVOLUTIONAL, s->outputs = 0, s->filters = 6, s->size = 1,
               s->stride = 1, s->groups = 4))
SPEC_MUTATION(m_conv_size_huge, 0,
              (s->kind = DNN_LAYER_CONVOLUTIONAL, s->outputs = 0, s->filters = 6, s->size = 5000,
               s->stride = 1, s->groups = 1))
SPEC_MUTATION(m_maxpool_stride0, 1,
              (s->kind = DNN_LAYER_MAXPOOL, s->probability = 0, s->size = 2, s->stride = 0))
SPEC_MUTATION(m_dropout_one, 1, s->probability = 1.0f)
SPEC_MUTATION(m_dropout_nan, 1, s->probability = 0.0f / 0.0f)
SPEC_MUTATION(m_softmax_groups0, 3, s->softmax_groups = 0)
SPEC_MUTATION(m_softmax_groups_shape, 3, s->softmax_groups = 2) /* 3 outputs: engine refuses */
SPEC_MUTATION(m_temperature0, 3, s->temperature = 0)
SPEC_MUTATION(m_cost_scale_inf, 4, s->cost_scale = 1.0f / 0.0f)
SPEC_MUTATION(m_spec_reserved0, 2, s->reserved[0] = 1)
SPEC_MUTATION(m_spec_reserved0_last, 4, s->reserved[0] = 0x80000000u)
/* Spec 2 (layer 3) as a route: a route uses no activation and no outputs. */
#define AS_ROUTE(n) (s->kind = DNN_LAYER_ROUTE, s->activation = 0, s->outputs = 0, s->n_route = (n))
SPEC_MUTATION(m_route_before_first, 2, (AS_ROUTE(1), s->route[0] = 0))
SPEC_MUTATION(m_route_self, 2, (AS_ROUTE(1), s->route[0] = 3))
SPEC_MUTATION(m_route_later, 2, (AS_ROUTE(1), s->route[0] = 4))
SPEC_MUTATION(m_route_none, 2, AS_ROUTE(0))
SPEC_MUTATION(m_route_many, 2, (AS_ROUTE(9), s->route[0] = 1))
SPEC_MUTATION(m_route_second_bad, 2, (AS_ROUTE(2), s->route[0] = 1, s->route[1] = -1))
SPEC_MUTATION(m_route_past_n, 2, (AS_ROUTE(1), s->route[0] = 1, s->route[1] = 2))
SPEC_MUTATION(m_shortcut_outside, 2,
              (s->kind = DNN_LAYER_SHORTCUT, s->outputs = 0, s->from = 0, s->alpha = 1,
               s->beta = 1))
SPEC_MUTATION(m_shortcut_self, 2,
              (s->kind = DNN_LAYER_SHORTCUT, s->outputs = 0, s->from = 3, s->alpha = 1,
               s->beta = 1))
/* Protocol 2: a field the layer's kind does not use must be zero on the wire. */
SPEC_MUTATION(m_unused_filters, 0, s->filters = 3)
SPEC_MUTATION(m_unused_size, 2, s->size = 1)
SPEC_MUTATION(m_unused_activation, 1, s->activation = DNN_ACT_LEAKY)
SPEC_MUTATION(m_unused_bn, 3, s->batch_normalize = 1)
SPEC_MUTATION(m_unused_cost_type, 2, s->cost_type = DNN_COST_L1)
SPEC_MUTATION(m_unused_probability, 0, s->probability = 0.5f)
SPEC_MUTATION(m_unused_temperature, 4, s->temperature = 1)
SPEC_MUTATION(m_unused_from, 2, s->from = 1)
SPEC_MUTATION(m_unused_n_route, 2, s->n_route = 1)
SPEC_MUTATION(m_unused_route, 3, s->route[7] = 1)
SPEC_MUTATION(m_unused_negative_zero, 1, s->cost_scale = -0.0f) /* not all-zero bits */

static void m_trailing(uint8_t *b, size_t *size)
{
    b[*size] = 0;
    (*size)++;
}

static void m_short(uint8_t *b, size_t *size)
{
    (void)b;
    (*size)--;
}

static void m_header_only(uint8_t *b, size_t *size)
{
    (void)b;
    *size = sizeof(struct dz_model_header);
}

static void m_half_header(uint8_t *b, size_t *size)
{
    (void)b;
    *size = sizeof(struct dz_model_header) / 2;
}

static void m_empty(uint8_t *b, size_t *size)
{
    (void)b;
    *size = 0;
}

static void test_open_refuses_malformed_blobs(void **state)
{
    (void)state;
    const struct mutation mutations[] = {
#define M(f) {#f, f}
        M(m_magic),
        M(m_version),
        M(m_version_next),
        M(m_layers0),
        M(m_layers_huge),
        M(m_first_gt_last),
        M(m_last_past_end),
        M(m_n_specs),
        M(m_n_specs_huge),
        M(m_batch0),
        M(m_batch_huge),
        M(m_subdiv0),
        M(m_training2),
        M(m_in_h0),
        M(m_in_c_huge),
        M(m_policy),
        M(m_rate_nan),
        M(m_momentum_inf),
        M(m_burn_in),
        M(m_n_steps),
        M(m_steps_negative),
        M(m_output_policy),
        M(m_top_k_huge),
        M(m_topk_zero),
        M(m_tree_words_huge),
        M(m_stream_small),
        M(m_stream_odd),
        M(m_sgdr_cycle_without_sgdr),
        M(m_adam_without_keys),
        M(m_learning_rate_negative),
        M(m_momentum_negative),
        M(m_sgdr_min_negative),
        M(m_scale_nan),
        M(m_max_batches),
        M(m_steps_past_n),
        M(m_scales_past_n),
        M(m_kind),
        M(m_kind_huge),
        M(m_activation),
        M(m_cost_type),
        M(m_bn2),
        M(m_outputs0),
        M(m_outputs_negative),
        M(m_outputs_huge),
        M(m_conv_filters0),
        M(m_conv_groups),
        M(m_conv_size_huge),
        M(m_maxpool_stride0),
        M(m_dropout_one),
        M(m_dropout_nan),
        M(m_softmax_groups0),
        M(m_softmax_groups_shape),
        M(m_temperature0),
        M(m_cost_scale_inf),
        M(m_spec_reserved0),
        M(m_spec_reserved0_last),
        M(m_route_before_first),
        M(m_route_self),
        M(m_route_later),
        M(m_route_none),
        M(m_route_many),
        M(m_route_second_bad),
        M(m_route_past_n),
        M(m_shortcut_outside),
        M(m_shortcut_self),
        M(m_unused_filters),
        M(m_unused_size),
        M(m_unused_activation),
        M(m_unused_bn),
        M(m_unused_cost_type),
        M(m_unused_probability),
        M(m_unused_temperature),
        M(m_unused_from),
        M(m_unused_n_route),
        M(m_unused_route),
        M(m_unused_negative_zero),
        M(m_trailing),
        M(m_short),
        M(m_header_only),
        M(m_half_header),
        M(m_empty),
#undef M
    };
    const struct seg g = test_seg(1, 5, true);
    size_t size = 0;
    uint8_t *good = make_blob(&g, &size);
    uint8_t *b = calloc(1, size + 16);
    struct ta t;

    assert_non_null(b);
    ta_start(&t);
    for (size_t i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
        size_t n = size;
        uint64_t need = 1;
        memcpy(b, good, size);
        mutations[i].apply(b, &n);
        TEEC_Result res = ta_open_model(&t, n ? b : good, n, &need);
        if (res != TEEC_ERROR_BAD_PARAMETERS)
            fail_msg("%s: result %#x, expected BAD_PARAMETERS", mutations[i].what, (unsigned)res);
        if (need != 0)
            fail_msg("%s: value1 %llu", mutations[i].what, (unsigned long long)need);
        ta_version(&t, NULL);
    }
    /* The same session still opens the good blob, once. */
    uint64_t need = 0;
    assert_int_equal(ta_open_model(&t, good, size, &need), TEEC_SUCCESS);
    assert_int_equal(need, expected_need(&g));
    assert_int_equal(ta_open_model(&t, good, size, NULL), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    /* A valid route and shortcut inside the segment are accepted (and rebased). */
    struct dnn_layer_spec specs[N_LAYERS + 2];
    memcpy(specs, test_specs, sizeof(test_specs));
    memmove(&specs[4], &specs[2], 4 * sizeof(specs[0]));
    specs[2] = (struct dnn_layer_spec){.kind = DNN_LAYER_ROUTE, .n_route = 1, .route = {1}};
    specs[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_SHORTCUT, .activation = DNN_ACT_LINEAR, .from = 1, .alpha = 1, .beta = 1};
    struct seg r = g;
    r.specs = specs;
    r.n_layers = N_LAYERS + 2;
    r.last = N_LAYERS + 1;
    open_seg(&t, &r);
    ta_stop(&t);
    free(b);
    free(good);
}

/* A segment of one connected layer 8 -> outputs, layer 1 of a 3-layer network. */
static struct dnn_layer_spec big_specs[3];
static struct seg big_seg(int outputs, bool training)
{
    big_specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 8};
    big_specs[1] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = outputs};
    big_specs[2] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 2};
    struct seg g = test_seg(1, 1, training);
    g.specs = big_specs;
    g.n_layers = 3;
    g.batch = 1;
    return g;
}

static void test_open_out_of_memory(void **state)
{
    (void)state;
    struct ta t;
    uint32_t heap = 0;
    size_t size = 0;
    uint64_t need = 0;

    ta_start(&t);
    ta_version(&t, &heap);

    /* 8 x 2^24 weights: 512 MiB. Refused with the bytes, again and again, nothing kept. */
    struct seg huge = big_seg(1 << 24, true);
    uint8_t *blob = make_blob(&huge, &size);
    const uint64_t huge_need = expected_need(&huge);
    assert_true(huge_need > heap);
    for (int i = 0; i < 20; i++) {
        need = 0;
        assert_int_equal(ta_open_model(&t, blob, size, &need), TEEC_ERROR_OUT_OF_MEMORY);
        assert_int_equal(need, huge_need);
    }
    assert_true(tee_log_contains(&env, "need"));
    free(blob);

    /* The largest layer that fits by the formula opens; one output more does not. */
    int lo = 1, hi = 1 << 24;
    while (hi - lo > 1) {
        const int mid = lo + (hi - lo) / 2;
        struct seg g = big_seg(mid, true);
        if (expected_need(&g) <= heap)
            lo = mid;
        else
            hi = mid;
    }
    struct seg over = big_seg(hi, true);
    blob = make_blob(&over, &size);
    assert_int_equal(ta_open_model(&t, blob, size, &need), TEEC_ERROR_OUT_OF_MEMORY);
    assert_int_equal(need, expected_need(&over));
    assert_true(need > heap);
    free(blob);

    /* Refusals at every stage leave nothing behind (xtest style: many times over). A leak of
     * even a few hundred bytes per call would eat the heap reserve, and the seal below, which
     * needs all the rest of the heap, would fail. */
    struct seg late = big_seg(3, true);
    late.last = 2; /* ends the network: RANK over 80 labels is refused after planning */
    big_specs[2].outputs = 80;
    late.output_policy = DZ_OUTPUT_RANK;
    size_t late_size = 0;
    uint8_t *late_blob = make_blob(&late, &late_size);
    struct seg shape = big_seg(3, true);
    size_t shape_size = 0;
    uint8_t *shape_blob = make_blob(&shape, &shape_size);
    /* 8 inputs in 3 groups: the codec accepts it, the engine refuses. */
    const struct dnn_layer_spec softmax3 = {
        .kind = DNN_LAYER_SOFTMAX, .softmax_groups = 3, .temperature = 1};
    dz_wire_encode_spec(&softmax3, blob_spec(shape_blob, 0));
    size_t spec_size = 0;
    uint8_t *spec_blob = make_blob(&shape, &spec_size);
    blob_spec(spec_blob, 0)->outputs = 0;
    huge = big_seg(1 << 24, true);
    uint8_t *huge_blob = make_blob(&huge, &size);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(ta_open_model(&t, late_blob, late_size, &need), TEEC_ERROR_BAD_PARAMETERS);
        assert_int_equal(ta_open_model(&t, shape_blob, shape_size, &need),
                         TEEC_ERROR_BAD_PARAMETERS);
        assert_int_equal(ta_open_model(&t, spec_blob, spec_size, &need), TEEC_ERROR_BAD_PARAMETERS);
        assert_int_equal(ta_open_model(&t, huge_blob, size, &need), TEEC_ERROR_OUT_OF_MEMORY);
    }
    free(huge_blob);
    free(spec_blob);
    free(shape_blob);
    free(late_blob);

    struct seg fit = big_seg(lo, true);
    blob = make_blob(&fit, &size);
    assert_int_equal(ta_open_model(&t, blob, size, &need), TEEC_SUCCESS);
    assert_int_equal(need, expected_need(&fit));
    assert_true(need <= heap);
    free(blob);
    printf("connected 8 -> %d (training, batch 1) fits: %llu of %u bytes\n", lo,
           (unsigned long long)need, heap);

    /* And it really runs in that heap: a training step and a seal. */
    float x[8], dx[8];
    fill(x, 8, -1, 1);
    float *y = malloc((size_t)lo * sizeof(float));
    assert_non_null(y);
    size_t out = (size_t)lo * sizeof(float);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                     TEEC_SUCCESS);
    size_t dsize = sizeof(dx);
    assert_int_equal(ta_backward(&t, y, out, dx, &dsize), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    size_t sealed = 0;
    assert_int_equal(ta_save(&t, NULL, &sealed), TEEC_ERROR_SHORT_BUFFER);
    void *sb = malloc(sealed);
    assert_non_null(sb);
    assert_int_equal(ta_save(&t, sb, &sealed), TEEC_SUCCESS);
    assert_int_equal(ta_load_sealed(&t, sb, sealed, NULL), TEEC_SUCCESS);
    free(sb);
    free(y);
    ta_stop(&t);
}

static void test_command_checks(void **state)
{
    (void)state;
    struct ta t;
    const struct seg g = test_seg(1, 3, true); /* middle: input 8, output 3 */
    const size_t in = BATCH * 8 * sizeof(float), outb = BATCH * CLASSES * sizeof(float);
    float x[BATCH * 8 + 8], y[BATCH * 8], d[BATCH * 8];
    size_t out = 0;

    fill(x, BATCH * 8, -1, 1);
    open_seg(&t, &g);

    /* LOAD_PLAIN: exactly the segment's parameter bytes. */
    struct dnn_network *ref = reference(&g);
    const size_t np = param_count(ref);
    float *p = calloc(np + 1, sizeof(float));
    assert_non_null(p);
    assert_int_equal(ta_load_plain(&t, p, (np - 1) * sizeof(float), 0), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_load_plain(&t, p, (np + 1) * sizeof(float), 0), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float) - 1, 0), TEEC_ERROR_BAD_PARAMETERS);

    /* FORWARD: sizes, types, flags. */
    out = outb;
    assert_int_equal(ta_forward(&t, x, in - 4, NULL, 0, 0, y, &out), TEEC_ERROR_BAD_PARAMETERS);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in + 4, NULL, 0, 0, y, &out), TEEC_ERROR_BAD_PARAMETERS);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, x, 12, 0, y, &out), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, 0, NULL, NULL), TEEC_ERROR_BAD_PARAMETERS);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, 2, y, &out), TEEC_ERROR_BAD_PARAMETERS);
    out = outb - 1;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, 0, y, &out), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(out, outb);
    out = sizeof(y); /* larger is fine: cut to size */
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, 0, y, &out), TEEC_SUCCESS);
    assert_int_equal(out, outb);

    /* BACKWARD and UPDATE out of order. */
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_BAD_STATE); /* inference fwd */
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb - 4, d, &out), TEEC_ERROR_BAD_PARAMETERS);
    out = in;
    assert_int_equal(ta_backward(&t, NULL, 0, d, &out), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_backward(&t, y, outb, NULL, NULL), TEEC_ERROR_BAD_PARAMETERS);
    out = in - 4;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(out, in);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_SUCCESS);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_BAD_STATE); /* twice */
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE); /* twice */

    /* One query per step: after `subdivisions` BACKWARDs a training forward needs an UPDATE
     * first; an inference forward does not. */
    for (int sub = 0; sub < SUBDIV; sub++) {
        out = outb;
        assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);
        out = in;
        assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_SUCCESS);
    }
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                     TEEC_ERROR_BAD_STATE);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_BAD_STATE);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, 0, y, &out), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);

    /* A load forgets the pending forward and the BACKWARDs: BACKWARD and UPDATE need a new
     * training forward on the parameters now loaded. */
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_BAD_STATE);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_SUCCESS);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);

    /* SAVE_SEALED's policy memref: exactly a struct dz_policy, well formed. */
    uint8_t sealed[4096];
    size_t sealed_size = sizeof(sealed);
    assert_int_equal(ta_save(&t, sealed, &sealed_size), TEEC_SUCCESS);
    size_t hsize = 0;
    uint8_t *hblob = make_blob(&g, &hsize);
    struct dz_policy pol, bad_pol;
    dz_policy_of_request(blob_header(hblob), &pol);
    free(hblob);
    sealed_size = sizeof(sealed);
    assert_int_equal(ta_save_policy(&t, sealed, &sealed_size, &pol), TEEC_SUCCESS);
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, sealed, sizeof(sealed));
    set_mem(&op, 1, &pol, sizeof(pol) - 4);
    assert_int_equal(invoke(&t, DZ_CMD_SAVE_SEALED, &op), TEEC_ERROR_BAD_PARAMETERS);
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    assert_int_equal(invoke(&t, DZ_CMD_SAVE_SEALED, &op), TEEC_ERROR_BAD_PARAMETERS);
    bad_pol = pol;
    bad_pol.reserved[2] = 1;
    sealed_size = sizeof(sealed);
    assert_int_equal(ta_save_policy(&t, sealed, &sealed_size, &bad_pol), TEEC_ERROR_BAD_PARAMETERS);
    bad_pol = pol;
    bad_pol.modes = DZ_MODE_TRAIN; /* inference must be allowed */
    sealed_size = sizeof(sealed);
    assert_int_equal(ta_save_policy(&t, sealed, &sealed_size, &bad_pol), TEEC_ERROR_BAD_PARAMETERS);
    bad_pol = pol;
    bad_pol.learning_rate_max = 0.0f / 0.0f;
    sealed_size = sizeof(sealed);
    assert_int_equal(ta_save_policy(&t, sealed, &sealed_size, &bad_pol), TEEC_ERROR_BAD_PARAMETERS);
    ta_stop(&t);

    /* An inference session takes no training commands. */
    struct seg inf = test_seg(1, 3, false);
    open_seg(&t, &inf);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in, NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                     TEEC_ERROR_BAD_STATE);
    out = in;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    out = in;
    assert_int_equal(ta_train_step(&t, x, in, NULL, 0, DZ_STEP_UPDATE, d, &out, NULL, NULL),
                     TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    /* The end segment wants the truth when training, and no output then. */
    struct seg end = test_seg(3, 5, true);
    float truth[BATCH * CLASSES];
    one_hot(truth, BATCH, CLASSES);
    const size_t in6 = BATCH * 6 * sizeof(float);
    open_seg(&t, &end);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in6, NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                     TEEC_ERROR_BAD_PARAMETERS);
    out = outb;
    assert_int_equal(ta_forward(&t, x, in6, truth, sizeof(truth), DZ_FORWARD_TRAIN, y, &out),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_forward(&t, x, in6, truth, sizeof(truth) - 4, DZ_FORWARD_TRAIN, NULL, NULL),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_forward(&t, x, in6, truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
                     TEEC_SUCCESS);
    out = in6;
    assert_int_equal(ta_backward(&t, y, outb, d, &out), TEEC_ERROR_BAD_PARAMETERS);
    out = in6;
    assert_int_equal(ta_backward(&t, NULL, 0, d, &out), TEEC_SUCCESS);
    ta_stop(&t);

    dnn_network_free(ref);
    free(p);
}

/* Middle segment 1..3 (BN, dropout): training steps and inference, bit for bit. */
static void test_middle_segment_matches_engine(void **state)
{
    (void)state;
    const struct seg g = test_seg(1, 3, true);
    struct ta t;
    struct dnn_network *ref = reference(&g);
    const size_t np = param_count(ref);
    const size_t n_in = BATCH * 8, n_out = BATCH * CLASSES;
    float *p = malloc(np * sizeof(float));
    float x[BATCH * 8], y[BATCH * CLASSES], dy[BATCH * CLASSES], dx[BATCH * 8], ref_dx[BATCH * 8];
    const uint64_t seen0 = BATCH * SUBDIV; /* in burn_in, then past steps 3 and 6 */

    assert_non_null(p);
    open_seg(&t, &g);
    random_params(ref, p);
    params_set(ref, p);
    ref->seen = seen0;
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), seen0), TEEC_SUCCESS);

    for (int iter = 0; iter < 5; iter++) {
        for (int sub = 0; sub < SUBDIV; sub++) {
            fill(x, n_in, -2, 2);
            fill(dy, n_out, -0.5f, 0.5f);
            size_t out = sizeof(y);
            assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                             TEEC_SUCCESS);
            ref->seen += BATCH;
            dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, true);
            assert_int_equal(out, sizeof(y));
            assert_memory_equal(y, ref->layers[ref->n - 1].output, sizeof(y));

            out = sizeof(dx);
            assert_int_equal(ta_backward(&t, dy, sizeof(dy), dx, &out), TEEC_SUCCESS);
            for (size_t i = 0; i < n_out; i++)
                ref->layers[ref->n - 1].delta[i] += dy[i];
            memset(ref_dx, 0, sizeof(ref_dx));
            dnn_network_backward_range(ref, 0, ref->n - 1, x, ref_dx);
            assert_int_equal(out, sizeof(dx));
            assert_memory_equal(dx, ref_dx, sizeof(dx));
        }
        assert_int_equal(ta_update(&t), TEEC_SUCCESS);
        dnn_network_update_range(ref, 0, ref->n - 1);

        /* The updated parameters show in an inference pass (BN rolling statistics too). */
        fill(x, n_in, -2, 2);
        size_t out = sizeof(y);
        assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, y, &out), TEEC_SUCCESS);
        dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
        assert_memory_equal(y, ref->layers[ref->n - 1].output, sizeof(y));
    }
    ta_stop(&t);
    dnn_network_free(ref);
    free(p);
}

/* Every "loss = X, avg loss = Y from the TA" line of the TEE log, in order. */
static size_t loss_lines(char lines[][128], size_t max)
{
    FILE *f = fopen(env.log, "r");
    char line[512];
    size_t n = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "I/TA: loss = ");
        if (!at || !strstr(line, " from the TA"))
            continue;
        line[strcspn(line, "\n")] = '\0';
        if (n < max)
            snprintf(lines[n], sizeof(lines[n]), "%s", at);
        n++;
    }
    fclose(f);
    return n < max ? n : max;
}

/*
 * End segment 3..5 (connected, softmax, cost): training inside with the truth, the loss line
 * in the log, the delta at layer 3's input bit for bit, then predictions under each policy.
 */
static void test_end_segment_loss_and_policies(void **state)
{
    (void)state;
    const struct seg g = test_seg(3, 5, true);
    struct ta t;
    struct dnn_network *ref = reference(&g);
    const size_t np = param_count(ref);
    float *p = malloc(np * sizeof(float));
    float x[BATCH * 6], truth[BATCH * CLASSES], dx[BATCH * 6], ref_dx[BATCH * 6];
    char before[64][128], after[64][128];
    enum { iters = 4 };

    assert_non_null(p);
    open_seg(&t, &g);
    random_params(ref, p);
    params_set(ref, p);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    const size_t lines0 = loss_lines(before, 64);

    char want[iters][128];
    float losses[iters], avgs[iters];
    float avg = 0;
    for (int iter = 0; iter < iters; iter++) {
        float sum = 0;
        for (int sub = 0; sub < SUBDIV; sub++) {
            fill(x, BATCH * 6, -2, 2);
            one_hot(truth, BATCH, CLASSES);
            assert_int_equal(
                ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
                TEEC_SUCCESS);
            ref->seen += BATCH;
            dnn_network_forward_range(ref, 0, ref->n - 1, x, truth, true);
            sum += dnn_network_cost(ref);

            size_t out = sizeof(dx);
            assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
            memset(ref_dx, 0, sizeof(ref_dx));
            dnn_network_backward_range(ref, 0, ref->n - 1, x, ref_dx);
            assert_memory_equal(dx, ref_dx, sizeof(dx));
        }
        assert_int_equal(ta_update(&t), TEEC_SUCCESS);
        dnn_network_update_range(ref, 0, ref->n - 1);
        /* darknet's classifier loop (host/classifier.c does the same). */
        const float loss = sum / (float)(SUBDIV * BATCH);
        if (iter == 0)
            avg = loss;
        avg = avg * .9f + loss * .1f;
        losses[iter] = loss;
        avgs[iter] = avg;
        snprintf(want[iter], sizeof(want[iter]), "I/TA: loss = %.5f, avg loss = %.5f from the TA",
                 (double)loss, (double)avg);
    }
    const size_t lines1 = loss_lines(after, 64);
    assert_int_equal(lines1, lines0 + iters);
    for (int i = 0; i < iters; i++) {
        assert_string_equal(after[lines0 + i], want[i]);
        /* parsed back, the numbers are the engine's up to the 5-decimal print */
        double l = 0, a = 0;
        assert_int_equal(sscanf(after[lines0 + i], "I/TA: loss = %lf, avg loss = %lf", &l, &a), 2);
        assert_true(l - (double)losses[i] <= 5.000001e-6 && (double)losses[i] - l <= 5.000001e-6);
        assert_true(a - (double)avgs[i] <= 5.000001e-6 && (double)avgs[i] - a <= 5.000001e-6);
    }

    /* Inference in the training session: predictions, labels only. */
    struct dz_prediction pred[BATCH];
    int idx[CLASSES];
    fill(x, BATCH * 6, -2, 2);
    size_t out = sizeof(pred) - 1;
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, pred, &out), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(out, sizeof(pred));
    out = sizeof(pred);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, pred, &out), TEEC_SUCCESS);
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    const float *scores = ref->layers[dnn_network_output_index(ref)].output;
    for (size_t b = 0; b < BATCH; b++) {
        dnn_top_k(scores + b * CLASSES, CLASSES, 1, idx);
        assert_int_equal(pred[b].count, 1);
        assert_int_equal(pred[b].labels[0], idx[0]);
        for (int j = 1; j < DZ_MAX_LABELS; j++)
            assert_int_equal(pred[b].labels[j], -1);
    }
    ta_stop(&t);

    /* Each policy in an inference session with the trained parameters. */
    params_get(ref, p);
    const struct {
        uint32_t policy, top_k, count;
    } policies[] = {{DZ_OUTPUT_TOP1, 0, 1},
                    {DZ_OUTPUT_TOPK, 2, 2},
                    {DZ_OUTPUT_TOPK, 64, CLASSES},
                    {DZ_OUTPUT_RANK, 0, CLASSES}};
    for (size_t k = 0; k < sizeof(policies) / sizeof(policies[0]); k++) {
        struct seg inf = test_seg(3, 5, false);
        inf.output_policy = policies[k].policy;
        inf.top_k = policies[k].top_k;
        open_seg(&t, &inf);
        assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 7), TEEC_SUCCESS);
        fill(x, BATCH * 6, -2, 2);
        out = sizeof(pred);
        assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, pred, &out), TEEC_SUCCESS);
        assert_int_equal(out, BATCH * sizeof(struct dz_prediction));
        dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
        for (size_t b = 0; b < BATCH; b++) {
            dnn_top_k(scores + b * CLASSES, CLASSES, policies[k].count, idx);
            assert_int_equal(pred[b].count, policies[k].count);
            for (uint32_t j = 0; j < DZ_MAX_LABELS; j++)
                assert_int_equal(pred[b].labels[j], j < policies[k].count ? idx[j] : -1);
        }
        ta_stop(&t);
    }

    /* Protocol 2: DZ_OUTPUT_SCORES, when the policy allows it (here the plain parameters'
     * own request), lets the final scores out: batch * classes floats, the engine's softmax. */
    struct seg sc = test_seg(3, 5, false);
    sc.output_policy = DZ_OUTPUT_SCORES;
    open_seg(&t, &sc);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 7), TEEC_SUCCESS);
    float got_scores[BATCH * CLASSES + 1];
    fill(x, BATCH * 6, -2, 2);
    out = BATCH * CLASSES * sizeof(float) - 1;
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, got_scores, &out),
                     TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(out, BATCH * CLASSES * sizeof(float));
    out = sizeof(got_scores);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, got_scores, &out), TEEC_SUCCESS);
    assert_int_equal(out, BATCH * CLASSES * sizeof(float));
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    assert_memory_equal(got_scores, scores, BATCH * CLASSES * sizeof(float));
    ta_stop(&t);
    dnn_network_free(ref);
    free(p);
}

/* The whole network in the TA (first = 0: no delta back) trains as dnn_network_train_batch. */
/*
 * UPDATE's optional loss output: it leaves only with the scores. Under top1 the request is
 * refused (ACCESS_DENIED) before anything changes; a middle segment has no loss to give
 * (BAD_PARAMETERS); under scores the figures are the engine's, bit for bit.
 */
static void test_update_loss_leaves_with_scores(void **state)
{
    (void)state;
    float x[BATCH * 6], truth[BATCH * CLASSES], dx[BATCH * 6];
    for (int policy = 0; policy < 2; policy++) {
        struct seg g = test_seg(3, 5, true);
        g.output_policy = policy ? DZ_OUTPUT_SCORES : DZ_OUTPUT_TOP1;
        struct ta t;
        struct dnn_network *ref = reference(&g);
        const size_t np = param_count(ref);
        float *p = malloc(np * sizeof(float));
        assert_non_null(p);
        open_seg(&t, &g);
        random_params(ref, p);
        params_set(ref, p);
        assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
        float avg = 0;
        for (int iter = 0; iter < 3; iter++) {
            float sum = 0;
            for (int sub = 0; sub < SUBDIV; sub++) {
                fill(x, BATCH * 6, -2, 2);
                one_hot(truth, BATCH, CLASSES);
                assert_int_equal(ta_forward(&t, x, sizeof(x), truth, sizeof(truth),
                                            DZ_FORWARD_TRAIN, NULL, NULL),
                                 TEEC_SUCCESS);
                ref->seen += BATCH;
                dnn_network_forward_range(ref, 0, ref->n - 1, x, truth, true);
                sum += dnn_network_cost(ref);
                size_t out = sizeof(dx);
                assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
                dnn_network_backward_range(ref, 0, ref->n - 1, x, NULL);
            }
            const float loss = sum / (float)(SUBDIV * BATCH);
            avg = iter == 0 ? loss : avg;
            avg = avg * .9f + loss * .1f;
            float got = 0, got_avg = 0;
            if (!policy) {
                assert_int_equal(ta_update_loss(&t, &got, &got_avg), TEEC_ERROR_ACCESS_DENIED);
                uint32_t bits = 0;
                memcpy(&bits, &got, sizeof(bits));
                assert_int_equal(bits, 0xFFFFFFFFu);           /* nothing written */
                assert_int_equal(ta_update(&t), TEEC_SUCCESS); /* the refusal changed nothing */
            } else {
                assert_int_equal(ta_update_loss(&t, &got, &got_avg), TEEC_SUCCESS);
                assert_memory_equal(&got, &loss, sizeof(loss));
                assert_memory_equal(&got_avg, &avg, sizeof(avg));
            }
            dnn_network_update_range(ref, 0, ref->n - 1);
        }
        ta_stop(&t);
        dnn_network_free(ref);
        free(p);
    }

    /* A middle segment computes no loss: the output is a type word it does not take. */
    const struct seg mid = test_seg(1, 2, true);
    struct ta t;
    float loss = 0, avg = 0;
    open_seg(&t, &mid);
    assert_int_equal(ta_update_loss(&t, &loss, &avg), TEEC_ERROR_BAD_PARAMETERS);
    ta_stop(&t);
}

static void test_whole_network_matches_train_batch(void **state)
{
    (void)state;
    const struct seg g = test_seg(0, N_LAYERS - 1, true);
    struct ta t;
    struct dnn_network *ref = reference(&g);
    float x[BATCH * 8], truth[BATCH * CLASSES];
    struct dz_prediction pred[BATCH];
    int idx[1];

    open_seg(&t, &g); /* initial parameters from the seed, in both */
    for (int iter = 0; iter < 3; iter++) {
        for (int sub = 0; sub < SUBDIV; sub++) {
            fill(x, BATCH * 8, -2, 2);
            one_hot(truth, BATCH, CLASSES);
            assert_int_equal(
                ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
                TEEC_SUCCESS);
            assert_int_equal(ta_backward(&t, NULL, 0, NULL, NULL), TEEC_SUCCESS);
            dnn_network_train_batch(ref, x, truth);
        }
        assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    }
    fill(x, BATCH * 8, -2, 2);
    size_t out = sizeof(pred);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, pred, &out), TEEC_SUCCESS);
    const float *scores = dnn_network_predict(ref, x);
    for (size_t b = 0; b < BATCH; b++) {
        dnn_top_k(scores + b * CLASSES, CLASSES, 1, idx);
        assert_int_equal(pred[b].labels[0], idx[0]);
    }
    ta_stop(&t);
    dnn_network_free(ref);
}

/* Output of a middle session for a fixed input: shows its parameters without revealing them. */
static void probe(struct ta *t, float *y)
{
    float x[BATCH * 6];
    for (size_t i = 0; i < BATCH * 6; i++)
        x[i] = (float)i / 7.0f - 1.5f;
    size_t out = BATCH * CLASSES * sizeof(float);
    assert_int_equal(ta_forward(t, x, sizeof(x), NULL, 0, 0, y, &out), TEEC_SUCCESS);
}

static void test_sealed_round_trip_and_refusals(void **state)
{
    (void)state;
    /* Layers 3..4 (connected, softmax) of the test net: the softmax output leaves, which shows
     * the parameters of layer 3 through a plain forward. */
    const struct seg g = test_seg(3, 4, false);
    struct ta a, b, c;
    struct dnn_network *ref = reference(&g);
    const size_t np = param_count(ref);
    float *p = malloc(np * sizeof(float));
    float ya[BATCH * CLASSES], yb[BATCH * CLASSES], yc[BATCH * CLASSES], yc2[BATCH * CLASSES];
    uint64_t seen = 0;

    assert_non_null(p);
    random_params(ref, p);
    open_seg(&a, &g);
    assert_int_equal(ta_load_plain(&a, p, np * sizeof(float), 123456789012ull), TEEC_SUCCESS);

    size_t size = 10;
    uint8_t small[10];
    assert_int_equal(ta_save(&a, small, &size), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(size,
                     sizeof(struct dz_sealed_header) + np * sizeof(float) + DZ_SEALED_TAG_BYTES);
    uint8_t *blob = malloc(size + 1), *blob2 = malloc(size + 1), *bad = malloc(size + 1);
    assert_non_null(blob);
    assert_non_null(blob2);
    assert_non_null(bad);
    size_t got = size + 1;
    assert_int_equal(ta_save(&a, blob, &got), TEEC_SUCCESS);
    assert_int_equal(got, size);
    got = size;
    assert_int_equal(ta_save(&a, blob2, &got), TEEC_SUCCESS);
    assert_memory_not_equal(blob, blob2, size); /* a fresh nonce each time */
    const struct dz_sealed_header *h = (const struct dz_sealed_header *)(const void *)blob;
    assert_int_equal(h->magic, DZ_SEALED_MAGIC);
    assert_int_equal(h->version, DZ_TA_PROTOCOL_VERSION);
    assert_int_equal(h->first, 3);
    assert_int_equal(h->last, 4);
    assert_int_equal(h->n_layers, N_LAYERS);
    assert_int_equal(h->payload_bytes, np * sizeof(float));
    assert_int_equal(h->seen_lo, (uint32_t)123456789012ull);
    assert_int_equal(h->seen_hi, (uint32_t)(123456789012ull >> 32));
    /* A device save of plain parameters: no owner version, no key wrap, and the policy the
     * session was opened with (inference only, top1). */
    assert_int_equal(h->model_version, 0);
    assert_int_equal(h->key_kind, DZ_KEY_DEVICE);
    assert_int_equal(h->reserved, 0);
    {
        size_t gsize = 0;
        uint8_t *gblob = make_blob(&g, &gsize);
        struct dz_policy want;
        dz_policy_of_request(blob_header(gblob), &want);
        assert_memory_equal(&h->policy, &want, sizeof(want));
        assert_int_equal(h->policy.modes, DZ_MODE_INFER);
        assert_int_equal(h->policy.output, DZ_OUTPUT_TOP1);
        free(gblob);
        const uint8_t zero[sizeof(h->device_fingerprint) + sizeof(h->ephemeral_public) +
                           sizeof(h->wrap_nonce) + sizeof(h->wrapped_key) + sizeof(h->wrap_tag)] = {
            0};
        assert_memory_equal(h->device_fingerprint, zero, sizeof(zero));
    }
    /* No parameter appears in the blob in plain. */
    for (size_t i = 0; i < np; i++)
        for (size_t off = 0; off + sizeof(float) <= size; off++)
            assert_false(memcmp(blob + off, &p[i], sizeof(float)) == 0 && p[i] != 0);

    /* Round trip into a fresh session: same predictions, same seen. */
    probe(&a, ya);
    open_seg(&b, &g);
    struct load_info info;
    memset(&info, 0xA5, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&b, blob, size, &info), TEEC_SUCCESS);
    assert_int_equal(info.seen, 123456789012ull);
    assert_int_equal(info.model_version, 0);
    assert_int_equal(info.modes, DZ_MODE_INFER);
    probe(&b, yb);
    assert_memory_equal(ya, yb, sizeof(ya));

    /* Session c holds other parameters (its seed's); every refused load leaves them. */
    open_seg(&c, &g);
    probe(&c, yc);
    assert_memory_not_equal(ya, yc, sizeof(ya));

    for (size_t i = 0; i < size; i++) {
        memcpy(bad, blob, size);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        if (ta_load_sealed(&c, bad, size, NULL) != TEEC_ERROR_SECURITY)
            fail_msg("blob with bit %zu of byte %zu flipped was accepted", i % 8, i);
    }
    assert_int_equal(ta_load_sealed(&c, blob, size - 1, NULL), TEEC_ERROR_SECURITY);
    assert_int_equal(ta_load_sealed(&c, blob, size - DZ_SEALED_TAG_BYTES, NULL),
                     TEEC_ERROR_SECURITY);
    memcpy(bad, blob, size);
    bad[size] = 0;
    assert_int_equal(ta_load_sealed(&c, bad, size + 1, NULL), TEEC_ERROR_SECURITY);
    assert_int_equal(ta_load_sealed(&c, blob, 8, NULL), TEEC_ERROR_SECURITY);
    probe(&c, yc2);
    assert_memory_equal(yc, yc2, sizeof(yc));
    ta_stop(&c);

    /* Another partition with the same payload size (3..5 has layer 3's parameters only). */
    struct seg other = test_seg(3, 5, false);
    open_seg(&c, &other);
    assert_int_equal(ta_load_sealed(&c, blob, size, NULL), TEEC_ERROR_SECURITY);

    /* That end segment round trips too: same predictions after a reload, the engine's. */
    struct ta e;
    struct dz_prediction pc[BATCH], pe[BATCH];
    float x[BATCH * 6];
    int best = -1;
    params_set(ref, p);
    assert_int_equal(ta_load_plain(&c, p, np * sizeof(float), 5), TEEC_SUCCESS);
    size_t esize = size;
    assert_int_equal(ta_save(&c, bad, &esize), TEEC_SUCCESS);
    open_seg(&e, &other);
    assert_int_equal(ta_load_sealed(&e, bad, esize, &seen), TEEC_SUCCESS);
    assert_int_equal(seen, 5);
    fill(x, BATCH * 6, -2, 2);
    size_t out = sizeof(pc);
    assert_int_equal(ta_forward(&c, x, sizeof(x), NULL, 0, 0, pc, &out), TEEC_SUCCESS);
    out = sizeof(pe);
    assert_int_equal(ta_forward(&e, x, sizeof(x), NULL, 0, 0, pe, &out), TEEC_SUCCESS);
    assert_memory_equal(pc, pe, sizeof(pc));
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    for (size_t i = 0; i < BATCH; i++) {
        dnn_top_k(ref->layers[ref->n - 1].output + i * CLASSES, CLASSES, 1, &best);
        assert_int_equal(pe[i].labels[0], best);
    }
    ta_stop(&e);
    ta_stop(&c);

    /* Another model: one spec changed (same shapes, same payload size). */
    struct dnn_layer_spec changed[N_LAYERS];
    memcpy(changed, test_specs, sizeof(changed));
    changed[3].activation = DNN_ACT_RELU;
    struct seg model2 = g;
    model2.specs = changed;
    open_seg(&c, &model2);
    assert_int_equal(ta_load_sealed(&c, blob, size, NULL), TEEC_ERROR_SECURITY);
    ta_stop(&c);

    /* The same layers at another position of a longer network: another partition too. */
    struct dnn_layer_spec longer[N_LAYERS + 1];
    longer[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 8};
    memcpy(&longer[1], test_specs, sizeof(test_specs));
    struct seg shifted = g;
    shifted.specs = longer;
    shifted.n_layers = N_LAYERS + 1;
    shifted.first = 4;
    shifted.last = 5;
    open_seg(&c, &shifted);
    assert_int_equal(ta_load_sealed(&c, blob, size, NULL), TEEC_ERROR_SECURITY);
    ta_stop(&c);

    /* Batch is not bound to the model digest: an inference session of the same partition
     * and model at another batch takes it. */
    struct seg inf2 = g;
    inf2.batch = 2;
    open_seg(&c, &inf2);
    assert_int_equal(ta_load_sealed(&c, blob2, size, &seen), TEEC_SUCCESS);
    assert_int_equal(seen, 123456789012ull);
    ta_stop(&c);

    /* Protocol 2: the blob's policy is the inference-only one it was saved under, so a
     * training session is refused it (ACCESS_DENIED), and lives on. */
    struct seg train = test_seg(3, 4, true);
    train.batch = 2;
    open_seg(&c, &train);
    assert_int_equal(ta_load_sealed(&c, blob2, size, &seen), TEEC_ERROR_ACCESS_DENIED);
    ta_version(&c, NULL);
    assert_int_equal(ta_load_plain(&c, p, np * sizeof(float), 0), TEEC_SUCCESS);
    ta_stop(&c);

    /* A blob saved by a training session at batch 4 is bound to its training bounds: a
     * training session at batch 2 is refused, one at batch 4 and an inference one take it. */
    struct seg train4 = test_seg(3, 4, true);
    open_seg(&c, &train4);
    assert_int_equal(ta_load_plain(&c, p, np * sizeof(float), 11), TEEC_SUCCESS);
    size_t tsize = size;
    assert_int_equal(ta_save(&c, bad, &tsize), TEEC_SUCCESS);
    assert_int_equal(tsize, size);
    ta_stop(&c);
    open_seg(&c, &train);
    assert_int_equal(ta_load_sealed(&c, bad, size, NULL), TEEC_ERROR_ACCESS_DENIED);
    ta_stop(&c);
    open_seg(&c, &train4);
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&c, bad, size, &info), TEEC_SUCCESS);
    assert_int_equal(info.seen, 11);
    assert_int_equal(info.modes, DZ_MODES_ALL);
    ta_stop(&c);
    open_seg(&c, &g);
    assert_int_equal(ta_load_sealed(&c, bad, size, NULL), TEEC_SUCCESS);
    probe(&c, yc);
    assert_memory_equal(ya, yc, sizeof(ya));
    ta_stop(&c);

    ta_stop(&b);
    ta_stop(&a);
    dnn_network_free(ref);
    free(bad);
    free(blob2);
    free(blob);
    free(p);
}

/*
 * The fixture LeNet (darknet's mnist_lenet) with layers 4..10 in the TA: the secure memory
 * it needs at batch 1 and batch 100 training, and the prediction of t_00007_c3.png, layers
 * 0..3 here and 4..10 in the TA, equal to the engine's: label 3.
 */
static void test_lenet_segment(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    struct dk_error err = {{0}};
    struct dk_model model = {0};
    struct ta t;
    size_t size = 0;
    uint64_t need1 = 0, need100 = 0;

    fixture_dir("darknet-mnist-lenet", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/mnist_lenet.cfg", dir);
    if (dk_parse_network(path, &model, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(model.n, 11);

    struct seg train = {.cfg = &model.net,
                        .specs = model.specs,
                        .n_layers = model.n,
                        .first = 4,
                        .last = 10,
                        .batch = 100,
                        .training = true,
                        .seed = 1};
    uint8_t *blob = make_blob(&train, &size);
    ta_start(&t);
    assert_int_equal(ta_open_model(&t, blob, size, &need100), TEEC_SUCCESS);
    assert_int_equal(need100, expected_need(&train));
    ta_stop(&t);
    free(blob);

    struct seg inf = train;
    inf.batch = 1;
    inf.training = false;
    blob = make_blob(&inf, &size);
    ta_start(&t);
    assert_int_equal(ta_open_model(&t, blob, size, &need1), TEEC_SUCCESS);
    assert_int_equal(need1, expected_need(&inf));
    printf("LeNet layers 4..10: %llu bytes at batch 1 (inference), %llu at batch 100 "
           "(training)\n",
           (unsigned long long)need1, (unsigned long long)need100);

    /* The whole network here, with upstream darknet's weights. */
    struct dnn_net_config cfg = model.net;
    cfg.batch = 1;
    cfg.subdivisions = 1;
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, model.specs, model.n, false, 1), DNN_OK);
    snprintf(path, sizeof(path), "%s/mnist_lenet.weights", dir);
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);

    /* The TA gets layers 4..10's parameters in plain, .weights order. */
    size_t np = 0;
    for (size_t i = 4; i <= 10; i++)
        for (size_t k = 0; k < net->layers[i].n_params; k++)
            np += net->layers[i].params[k].count;
    float *p = malloc(np * sizeof(float)), *q = p;
    assert_non_null(p);
    for (size_t i = 4; i <= 10; i++)
        for (size_t k = 0; k < net->layers[i].n_params; k++) {
            memcpy(q, net->layers[i].params[k].value,
                   net->layers[i].params[k].count * sizeof(float));
            q += net->layers[i].params[k].count;
        }
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), net->seen), TEEC_SUCCESS);

    struct dk_image im = {0}, r = {0};
    snprintf(path, sizeof(path), "%s/images/t_00007_c3.png", dir);
    if (dk_image_load(path, cfg.c, &im, &err) != 0 ||
        dk_image_prepare_predict(&im, cfg.w, cfg.h, &r, &err) != 0)
        fail_msg("%s", err.msg);
    const float *scores = dnn_network_predict(net, r.data);
    int best = -1;
    dnn_top_k(scores, 10, 1, &best);
    assert_int_equal(best, 3);

    const struct dnn_layer *l3 = &net->layers[3];
    struct dz_prediction pred;
    size_t out = sizeof(pred);
    assert_int_equal(
        ta_forward(&t, l3->output, l3->outputs * sizeof(float), NULL, 0, 0, &pred, &out),
        TEEC_SUCCESS);
    assert_int_equal(pred.count, 1);
    assert_int_equal(pred.labels[0], best);
    ta_stop(&t);

    dk_image_free(&im);
    dk_image_free(&r);
    free(p);
    free(blob);
    dnn_network_free(net);
    dk_model_free(&model);
}

static int group_setup(void **state)
{
    (void)state;
    init_test_net();
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_types_and_order),
        cmocka_unit_test(test_open_refuses_malformed_blobs),
        cmocka_unit_test(test_open_out_of_memory),
        cmocka_unit_test(test_command_checks),
        cmocka_unit_test(test_middle_segment_matches_engine),
        cmocka_unit_test(test_end_segment_loss_and_policies),
        cmocka_unit_test(test_update_loss_leaves_with_scores),
        cmocka_unit_test(test_whole_network_matches_train_batch),
        cmocka_unit_test(test_sealed_round_trip_and_refusals),
        cmocka_unit_test(test_lenet_segment),
    };
    return cmocka_run_group_tests_name("ta_dnn", tests, group_setup, group_teardown);
}
