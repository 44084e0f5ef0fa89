/*
 * test_ta_stream_conv.c - weight streaming of convolutional and batch-normalised layers
 * (ta/stream.c, the engine's tiles in dnn/tiles.c), through the simulated TEE's client API
 * with the protocol's raw commands:
 *  - cfg/fashion_lenet.cfg (5x5 convolutions and a connected layer, all with
 *    batch_normalize) and cfg/fashion_vgg7.cfg (3x3 convolutions with batch_normalize and a
 *    1x1 one), whole in the TA, streamed through small working buffers that cut the wider
 *    layers into several chunks: scores byte-identical to the engine with no TEE;
 *  - the engine's tile functions over any tiling equal the layer's own forward, backward and
 *    update, for convolutional and connected layers with and without batch_normalize;
 *  - training a segment with a convolutional or batch-normalised layer streamed is refused.
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

#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;
static struct dk_model lenet, vgg7;

enum { BATCH = 3, CLASSES = 10, MAX_CHUNKS = 512 };
#define SEED 0xC0DEull

/* ------------------------------------------------------------- the networks */

static struct dnn_net_config net_cfg(const struct dk_model *m, int subdivisions)
{
    struct dnn_net_config cfg = m->net;
    cfg.batch = BATCH;
    cfg.subdivisions = subdivisions;
    return cfg;
}

/* Random parameters where the seed's are constant: biases, BN scales and rolling statistics
 * (positive variances), so that every tensor reaches the scores. */
static void shake(struct dnn_network *net, uint64_t seed)
{
    uint64_t rng = seed;
    for (size_t i = 0; i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        for (size_t p = 0; p < l->n_params; p++) {
            const struct dnn_param *prm = &l->params[p];
            if (strcmp(prm->name, "weights") == 0)
                continue;
            const bool var = strcmp(prm->name, "rolling_variance") == 0;
            const bool scale = strcmp(prm->name, "scales") == 0;
            test_rng_fill(&rng, prm->value, prm->count,
                          var     ? 0.5f
                          : scale ? 0.8f
                                  : -0.2f,
                          var     ? 2.0f
                          : scale ? 1.2f
                                  : 0.2f);
        }
    }
}

static struct dnn_network *network(const struct dk_model *m, const struct dnn_net_config *cfg,
                                   bool training)
{
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, cfg, m->specs, m->n, training, SEED), DNN_OK);
    shake(net, SEED + 1);
    return net;
}

/* ------------------------------------------------------------- the chunks */

struct save {
    size_t n;
    struct dnn_tile c[MAX_CHUNKS]; /* layer: absolute */
    uint8_t *blob[MAX_CHUNKS];
    size_t size[MAX_CHUNKS];
};

static void save_free(struct save *s)
{
    for (size_t k = 0; k < s->n; k++)
        free(s->blob[k]);
    s->n = 0;
}

/* The chunks of layers first..last of @net as the TA cuts them (the engine's tiles). */
static size_t cut(const struct dnn_network *net, size_t first, size_t last, size_t work,
                  bool training, struct dnn_tile *c)
{
    const size_t n = dnn_tile_count(&net->layers[first], last - first + 1, work, training);
    assert_true(n > 0 && n <= MAX_CHUNKS);
    for (size_t k = 0; k < n; k++) {
        dnn_tile_at(&net->layers[first], last - first + 1, work, training, k, &c[k]);
        c[k].layer += first;
    }
    return n;
}

/* The plaintext STREAM_IMPORT takes for chunk @c of @net: each tensor's slice. */
static float *plain_of(const struct dnn_network *net, const struct dnn_tile *c)
{
    const struct dnn_layer *l = &net->layers[c->layer];
    struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
    const size_t n = dnn_tile_parts(l, c, false, parts);
    float *p = malloc(c->param_floats * sizeof(float));
    assert_non_null(p);
    for (size_t j = 0; j < n; j++)
        memcpy(p + parts[j].offset, l->params[parts[j].param].value + parts[j].src,
               parts[j].count * sizeof(float));
    return p;
}

static TEEC_Result import(struct ta *t, uint32_t k, const void *plain, size_t bytes, void *out,
                          size_t *out_size, uint64_t seen)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_INPUT);
    op.params[0].value.a = k;
    op.params[3].value.a = (uint32_t)seen;
    op.params[3].value.b = (uint32_t)(seen >> 32);
    set_mem(&op, 1, plain, bytes);
    set_mem(&op, 2, out, *out_size);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT, &op);
    *out_size = op.params[2].tmpref.size;
    return res;
}

static void import_all(struct ta *t, const struct dnn_network *net, size_t first, size_t last,
                       size_t work, bool training, struct save *s)
{
    s->n = cut(net, first, last, work, training, s->c);
    for (size_t k = 0; k < s->n; k++) {
        const struct dnn_tile *c = &s->c[k];
        float *p = plain_of(net, c);
        s->size[k] =
            sizeof(struct dz_chunk_header) + c->floats * sizeof(float) + DZ_SEALED_TAG_BYTES;
        s->blob[k] = malloc(s->size[k]);
        assert_non_null(s->blob[k]);
        size_t size = s->size[k];
        assert_int_equal(import(t, (uint32_t)k, p, c->param_floats * sizeof(float), s->blob[k],
                                &size, net->seen),
                         TEEC_SUCCESS);
        assert_int_equal(size, s->size[k]);
        free(p);
    }
}

/* ------------------------------------------------------------- the passes */

static TEEC_Result begin(struct ta *t, uint32_t kind, const void *data, size_t data_bytes,
                         const void *truth, size_t truth_bytes, uint32_t flags, uint32_t *next)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    const bool infer = kind == DZ_STREAM_FORWARD;
    op.paramTypes = TEEC_PARAM_TYPES(data ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE, TEEC_VALUE_OUTPUT,
                                     infer ? TEEC_NONE : TEEC_VALUE_INPUT,
                                     truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE);
    if (data)
        set_mem(&op, 0, data, data_bytes);
    op.params[2].value.a = kind;
    op.params[2].value.b = flags;
    if (truth)
        set_mem(&op, 3, truth, truth_bytes);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_BEGIN, &op);
    *next = op.params[1].value.a;
    return res;
}

static TEEC_Result feed(struct ta *t, const void *blob, size_t size, uint32_t *next, void *out,
                        size_t *out_size, void *resealed, size_t *resealed_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                     out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE,
                                     resealed ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
    set_mem(&op, 0, blob, size);
    if (out)
        set_mem(&op, 2, out, *out_size);
    if (resealed)
        set_mem(&op, 3, resealed, *resealed_size);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_CHUNK, &op);
    *next = op.params[1].value.a;
    if (out)
        *out_size = op.params[2].tmpref.size;
    if (resealed)
        *resealed_size = op.params[3].tmpref.size;
    return res;
}

/* Every chunk of a pass from @next on; @reseal: each is replaced by what the TA re-seals,
 * the one replaced kept in @old (NULL: freed). */
static void pass_on(struct ta *t, struct save *s, bool reseal, uint32_t next, void *out,
                    size_t out_bytes, struct save *old)
{
    if (old)
        old->n = s->n;
    for (size_t i = 0; i < s->n; i++) {
        assert_true(next < s->n);
        const uint32_t k = next;
        size_t out_size = out_bytes, rsize = s->size[k];
        uint8_t *re = reseal ? malloc(rsize) : NULL;
        assert_true(!reseal || re);
        const TEEC_Result res =
            feed(t, s->blob[k], s->size[k], &next, out, &out_size, re, reseal ? &rsize : NULL);
        if (res != TEEC_SUCCESS)
            fail_msg("chunk %u: %#x", (unsigned)k, (unsigned)res);
        assert_int_equal(out_size, i + 1 == s->n ? out_bytes : 0);
        if (reseal) {
            assert_int_equal(rsize, s->size[k]);
            if (old) {
                free(old->blob[k]);
                old->blob[k] = s->blob[k];
                old->size[k] = s->size[k];
                old->c[k] = s->c[k];
            } else {
                free(s->blob[k]);
            }
            s->blob[k] = re;
        }
    }
    assert_int_equal(next, DZ_STREAM_DONE);
}

static void pass(struct ta *t, struct save *s, uint32_t kind, uint32_t flags, const void *data,
                 size_t data_bytes, const void *truth, size_t truth_bytes, void *out,
                 size_t out_bytes, struct save *old)
{
    uint32_t next = 0;
    const TEEC_Result res = begin(t, kind, data, data_bytes, truth, truth_bytes, flags, &next);
    if (res != TEEC_SUCCESS)
        fail_msg("STREAM_BEGIN %u: %#x", (unsigned)kind, (unsigned)res);
    /* BN in every segment here: FORWARD_TRAIN re-seals as BACKWARD and UPDATE do */
    pass_on(t, s, kind != DZ_STREAM_FORWARD, next, out, out_bytes, old);
}

static void open_segment(struct ta *t, const struct dk_model *m, const struct dnn_net_config *cfg,
                         uint32_t first, bool training, uint32_t work, TEEC_Result want)
{
    const struct seg g = {.cfg = cfg,
                          .specs = m->specs,
                          .n_layers = m->n,
                          .first = first,
                          .last = (uint32_t)m->n - 1,
                          .batch = BATCH,
                          .training = training,
                          .output_policy = DZ_OUTPUT_SCORES,
                          .seed = SEED};
    size_t size = 0;
    uint64_t need = 0;
    uint8_t *blob = make_blob(&g, &size);
    blob_header(blob)->stream_chunk_bytes = work;
    ta_start(t);
    assert_int_equal(ta_open_model(t, blob, size, &need), want);
    free(blob);
}

/* -------------------------------------------------------------- inference */

/* @m whole in the TA, streamed through @work bytes: the scores of the engine. */
static void infer_equivalence(const struct dk_model *m, uint32_t work, size_t min_conv_chunks)
{
    const struct dnn_net_config cfg = net_cfg(m, 1);
    struct dnn_network *ref = network(m, &cfg, false);
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    float *x = malloc(x_floats * sizeof(float));
    assert_non_null(x);
    uint64_t rng = 0x1234 + work;
    test_rng_fill(&rng, x, x_floats, 0, 1);
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    const float *want = ref->layers[dnn_network_output_index(ref)].output;
    float y[BATCH * CLASSES];
    struct ta t;
    static struct save s;

    open_segment(&t, m, &cfg, 0, false, work, TEEC_SUCCESS);
    import_all(&t, ref, 0, ref->n - 1, work, false, &s);
    size_t most = 0; /* the most chunks of one convolutional layer */
    for (size_t k = 0, run = 0; k < s.n; k++) {
        run = s.c[k].first_rows ? 1 : run + 1;
        if (ref->layers[s.c[k].layer].kind == DNN_LAYER_CONVOLUTIONAL && run > most)
            most = run;
    }
    assert_true(most >= min_conv_chunks);
    for (int rep = 0; rep < 2; rep++) {
        memset(y, 0, sizeof(y));
        pass(&t, &s, DZ_STREAM_FORWARD, 0, x, x_floats * sizeof(float), NULL, 0, y, sizeof(y),
             NULL);
        assert_memory_equal(y, want, sizeof(y));
    }
    printf("%zu layers, working buffer %u: %zu chunks (up to %zu per conv layer), scores "
           "byte-identical\n",
           ref->n, (unsigned)work, s.n, most);
    save_free(&s);
    ta_stop(&t);
    free(x);
    dnn_network_free(ref);
}

static void test_conv_bn_streamed_scores(void **state)
{
    (void)state;
    infer_equivalence(&lenet, 8192, 4);
    infer_equivalence(&lenet, 65536, 1);
    infer_equivalence(&vgg7, 4096, 8);
    infer_equivalence(&vgg7, 20000, 2);
}

/* ------------------------------------------------------- tiles in the engine */

/* The slices of @l's own tensors from output @r0 on. */
static void own_slices(struct dnn_layer *l, size_t r0, struct dnn_tile_params *p)
{
    const size_t per = l->nweights / (size_t)l->out_c;
    memset(p, 0, sizeof(*p));
    p->biases = l->biases + r0;
    p->weights = l->weights + r0 * per;
    p->bias_updates = l->bias_updates + r0;
    p->weight_updates = l->weight_updates + r0 * per;
    if (l->spec.batch_normalize) {
        p->scales = l->bn.scales + r0;
        p->rolling_mean = l->bn.rolling_mean + r0;
        p->rolling_variance = l->bn.rolling_variance + r0;
        p->scale_updates = l->bn.scale_updates + r0;
    }
}

/* Forward, backward and update of every layer with parameters by tiles of @rows, against
 * the layers' own, after the same training forward. */
static void tiles_match(const struct dk_model *m, size_t rows)
{
    const struct dnn_net_config cfg = net_cfg(m, 1);
    struct dnn_network *ref = network(m, &cfg, true), *tiled = network(m, &cfg, true);
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * CLASSES] = {0};
    assert_non_null(x);
    uint64_t rng = 99;
    test_rng_fill(&rng, x, x_floats, 0, 1);
    for (int b = 0; b < BATCH; b++)
        y[b * CLASSES + b] = 1;
    dnn_network_train_batch(ref, x, y);

    /* The same, layer by layer, the layers with parameters by tiles. */
    tiled->seen += BATCH;
    float *cols = malloc((tiled->workspace_floats * BATCH + 1) * sizeof(float));
    assert_non_null(cols);
    for (size_t i = 0; i < tiled->n; i++) {
        struct dnn_layer *l = &tiled->layers[i];
        const float *in = i ? tiled->layers[i - 1].output : x;
        if (!l->n_params) {
            dnn_network_forward_range(tiled, i, i, in, y, true);
            continue;
        }
        memset(l->delta, 0, l->outputs * (size_t)BATCH * sizeof(float));
        for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += rows) {
            const size_t n = (size_t)l->out_c - r0 < rows ? (size_t)l->out_c - r0 : rows;
            struct dnn_tile_params p;
            own_slices(l, r0, &p);
            assert_int_equal(dnn_tile_forward(l, in, true, &p, r0, n, tiled->workspace), DNN_OK);
        }
    }
    for (size_t i = tiled->n; i-- > 0;) {
        struct dnn_layer *l = &tiled->layers[i];
        const float *in = i ? tiled->layers[i - 1].output : x;
        float *in_delta = i ? tiled->layers[i - 1].delta : NULL;
        if (!l->n_params) {
            dnn_network_backward_range(tiled, i, i, in, in_delta);
            continue;
        }
        for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += rows) {
            const size_t n = (size_t)l->out_c - r0 < rows ? (size_t)l->out_c - r0 : rows;
            struct dnn_tile_params p;
            own_slices(l, r0, &p);
            assert_int_equal(dnn_tile_backward(l, in, in_delta, &p, r0, n, r0 == 0,
                                               r0 + n == (size_t)l->out_c, tiled->workspace, cols),
                             DNN_OK);
        }
    }
    for (size_t i = 0; i < tiled->n; i++) {
        struct dnn_layer *l = &tiled->layers[i];
        if (!l->n_params)
            continue;
        struct dnn_update_args a;
        dnn_network_update_args(tiled, i, &a);
        for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += rows) {
            const size_t n = (size_t)l->out_c - r0 < rows ? (size_t)l->out_c - r0 : rows;
            struct dnn_tile_params p;
            own_slices(l, r0, &p);
            assert_int_equal(dnn_tile_update(l, &a, &p, n), DNN_OK);
        }
    }
    for (size_t i = 0; i < ref->n; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++) {
            const struct dnn_param *w = &ref->layers[i].params[p], *g = &tiled->layers[i].params[p];
            if (memcmp(g->value, w->value, w->count * sizeof(float)) != 0)
                fail_msg("tiles of %zu: layer %zu %s differ", rows, i, w->name);
            if (w->update && memcmp(g->update, w->update, w->count * sizeof(float)) != 0)
                fail_msg("tiles of %zu: layer %zu %s updates differ", rows, i, w->name);
        }
    free(cols);
    free(x);
    dnn_network_free(tiled);
    dnn_network_free(ref);
}

static void test_tiles_match_layers(void **state)
{
    (void)state;
    static const size_t rows[] = {1, 3, 7, 1000};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        tiles_match(&lenet, rows[r]);
        tiles_match(&vgg7, rows[r]);
    }
}

/* Streamed training of these layers comes later: refused with the reason. */
static void test_conv_training_refused(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = net_cfg(&vgg7, 1);
    struct ta t;
    open_segment(&t, &vgg7, &cfg, 1, true, 8192, TEEC_ERROR_BAD_PARAMETERS);
    assert_true(tee_log_contains(&env, "streamed training takes connected layers"));
    ta_stop(&t);
}

static int group_setup(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    if (dk_parse_network("cfg/fashion_lenet.cfg", &lenet, &err) != 0 ||
        dk_parse_network("cfg/fashion_vgg7.cfg", &vgg7, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    dk_model_free(&lenet);
    dk_model_free(&vgg7);
    tee_env_teardown(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bn_streamed_scores),
        cmocka_unit_test(test_tiles_match_layers),
        cmocka_unit_test(test_conv_training_refused),
    };
    return cmocka_run_group_tests_name("ta_stream_conv", tests, group_setup, group_teardown);
}
