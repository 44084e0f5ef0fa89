/*
 * test_ta_stream_train.c - training with streamed weights (ta/stream.c), through the simulated
 * TEE's client API with the protocol's raw commands:
 *  - the fixture LeNet (darknet's mnist_lenet, upstream's weights) with layers 4..10 in a TA
 *    that streams them through a working buffer of 4 KiB, so that every connected layer takes
 *    several chunks, trained for a few iterations (one and two subdivisions) gives bit for bit
 *    the losses of training the whole network in this process with no TEE, and its final
 *    chunks, decrypted with a key re-derived from the simulated device key (as tee/ta/huk.c
 *    documents; no TA command reveals them), hold bit for bit the reference's final weights,
 *    biases and their momenta;
 *  - the engine's dnn_connected_backward_rows and dnn_connected_update_rows, taken over any
 *    tiling, are bit-identical to the layer's own backward and update;
 *  - a hostile normal world: a chunk of the generation before an UPDATE replayed, a chunk
 *    BACKWARD re-sealed fed to FORWARD in place of another layer's, a refusal in the middle of
 *    a re-sealing pass (the session then holds no parameters until an import), passes out of
 *    order, and the resident training commands in a streamed session: each refused with its
 *    exact code;
 *  - the streamed save, trained, loads into a resident session (DZ_CMD_LOAD_CHUNK) and gives
 *    the scores of the same weights in the engine; an altered or out-of-order chunk is refused
 *    and the session computes nothing until a load completes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/sim_chunks.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;
static struct dk_model model;
static char lenet_weights[PATH_MAX];

enum { FIRST = 4, LAST = 10, BATCH = 10, ITERS = 3, WORK = 4096, MAX_CHUNKS = 256 };
#define SEED 0x5EEDull

/* ------------------------------------------------------------- the networks */

/* The fixture's [net] with our batch and subdivisions. */
static struct dnn_net_config lenet_cfg(int subdivisions)
{
    struct dnn_net_config cfg = model.net;
    cfg.batch = BATCH;
    cfg.subdivisions = subdivisions;
    return cfg;
}

/* The whole LeNet, for training, with upstream's weights. */
static struct dnn_network *lenet(const struct dnn_net_config *cfg)
{
    struct dnn_network *net = NULL;
    struct dk_error err = {{0}};
    assert_int_equal(dnn_network_create(&net, cfg, model.specs, model.n, true, SEED), DNN_OK);
    if (dk_weights_load_all(net, lenet_weights, &err) != 0)
        fail_msg("%s", err.msg);
    /* The fixture was trained past max_batches (rate 0 under its poly policy): from batch
     * 1000 on, the schedule's rate is upstream's 0.01 * (1 - 1000/10000)^4. */
    net->seen = 1000ull * BATCH * (uint64_t)cfg->subdivisions;
    return net;
}

/* ------------------------------------------------------------- the chunks */

/* Chunk geometry as the TA cuts it in training: rows of (inputs + 1) * 8 bytes. */
struct chunk {
    size_t layer; /* in the whole network */
    size_t row0, rows;
    size_t params; /* plaintext STREAM_IMPORT takes */
    size_t plain;  /* plaintext sealed: params and their updates */
};

static size_t cut(const struct dnn_network *net, struct chunk *c)
{
    size_t n = 0;
    for (size_t i = FIRST; i <= LAST; i++) {
        const struct dnn_layer *l = &net->layers[i];
        if (!l->n_params)
            continue;
        size_t r = WORK / ((l->inputs + 1) * 2 * sizeof(float));
        if (r > (size_t)l->out_c)
            r = (size_t)l->out_c;
        for (size_t row0 = 0; row0 < (size_t)l->out_c; row0 += r) {
            assert_true(n < MAX_CHUNKS);
            const size_t rows = (size_t)l->out_c - row0 < r ? (size_t)l->out_c - row0 : r;
            const size_t params = rows * (l->inputs + 1) * sizeof(float);
            c[n++] = (struct chunk){i, row0, rows, params, 2 * params};
        }
    }
    return n;
}

struct save {
    size_t n;
    struct chunk c[MAX_CHUNKS];
    uint8_t *blob[MAX_CHUNKS];
    size_t size[MAX_CHUNKS];
};

static void save_free(struct save *s)
{
    for (size_t k = 0; k < s->n; k++)
        free(s->blob[k]);
    s->n = 0;
}

static size_t sealed_size(const struct chunk *c)
{
    return sizeof(struct dz_chunk_header) + c->plain + DZ_SEALED_TAG_BYTES;
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

/* Seals @net's layers FIRST..LAST into @s, chunk by chunk. */
static void import_all(struct ta *t, const struct dnn_network *net, struct save *s)
{
    s->n = cut(net, s->c);
    for (size_t k = 0; k < s->n; k++) {
        const struct chunk *c = &s->c[k];
        const struct dnn_layer *l = &net->layers[c->layer];
        float *p = malloc(c->params);
        assert_non_null(p);
        memcpy(p, l->biases + c->row0, c->rows * sizeof(float));
        memcpy(p + c->rows, l->weights + c->row0 * l->inputs, c->rows * l->inputs * sizeof(float));
        s->size[k] = sealed_size(c);
        s->blob[k] = malloc(s->size[k]);
        assert_non_null(s->blob[k]);
        size_t size = s->size[k];
        assert_int_equal(import(t, (uint32_t)k, p, c->params, s->blob[k], &size, net->seen),
                         TEEC_SUCCESS);
        assert_int_equal(size, s->size[k]);
        free(p);
    }
}

/* ------------------------------------------------------------- the passes */

static TEEC_Result begin(struct ta *t, uint32_t kind, uint32_t flags, const void *data,
                         size_t data_bytes, const void *truth, size_t truth_bytes, uint32_t *next)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(data ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE, TEEC_VALUE_OUTPUT,
                                     TEEC_VALUE_INPUT, truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE);
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

/* One STREAM_CHUNK: @out (NULL: none) receives what the pass writes when done, @resealed
 * (NULL: none) the chunk re-sealed. */
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

/* A whole pass of @kind over save @s, which BACKWARD and UPDATE replace chunk by chunk with
 * what the TA re-seals; @old (NULL: none) keeps the chunks replaced. @order gets the chunks in
 * the order the TA asked for them (NULL: not wanted). */
static void pass_on(struct ta *t, struct save *s, uint32_t kind, uint32_t next, void *out,
                    size_t out_bytes, struct save *old, uint32_t *order)
{
    const bool reseal = kind == DZ_STREAM_BACKWARD || kind == DZ_STREAM_UPDATE;
    if (old)
        old->n = s->n;
    for (size_t i = 0; i < s->n; i++) {
        assert_true(next < s->n);
        if (order)
            order[i] = next;
        const uint32_t k = next;
        size_t out_size = out_bytes, rsize = s->size[k];
        uint8_t *re = reseal ? malloc(rsize) : NULL;
        assert_true(!reseal || re);
        const TEEC_Result res =
            feed(t, s->blob[k], s->size[k], &next, out, &out_size, re, reseal ? &rsize : NULL);
        if (res != TEEC_SUCCESS)
            fail_msg("pass %u, chunk %u: %#x", (unsigned)kind, (unsigned)k, (unsigned)res);
        assert_int_equal(out_size, i + 1 == s->n ? out_bytes : 0);
        if (reseal) {
            assert_int_equal(rsize, s->size[k]);
            assert_memory_not_equal(re, s->blob[k], s->size[k]);
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

/* pass_on() from STREAM_BEGIN. */
static void pass(struct ta *t, struct save *s, uint32_t kind, uint32_t flags, const void *data,
                 size_t data_bytes, const void *truth, size_t truth_bytes, void *out,
                 size_t out_bytes, struct save *old, uint32_t *order)
{
    uint32_t next = 0;
    assert_int_equal(begin(t, kind, flags, data, data_bytes, truth, truth_bytes, &next),
                     TEEC_SUCCESS);
    pass_on(t, s, kind, next, out, out_bytes, old, order);
}

/* Every chunk of @s decrypts to @ref's rows: biases, weights, bias_updates, weight_updates. */
static void check_chunks(const struct save *s, const struct dnn_network *ref, uint32_t generation)
{
    for (size_t k = 0; k < s->n; k++) {
        const struct chunk *c = &s->c[k];
        const struct dnn_layer *l = &ref->layers[c->layer];
        struct dz_chunk_header h;
        float *p = sim_unseal_chunk(env.storage, s->blob[k], s->size[k], &h);
        assert_non_null(p);
        assert_int_equal(h.chunk, k);
        assert_int_equal(h.layer, c->layer);
        assert_int_equal(h.generation, generation);
        const size_t in = l->inputs, r = c->rows;
        if (memcmp(p, l->biases + c->row0, r * 4) != 0 ||
            memcmp(p + r, l->weights + c->row0 * in, r * in * 4) != 0)
            fail_msg("chunk %zu (layer %zu rows %zu..): parameters differ from no TEE", k, c->layer,
                     c->row0);
        if (memcmp(p + r + r * in, l->bias_updates + c->row0, r * 4) != 0 ||
            memcmp(p + 2 * r + r * in, l->weight_updates + c->row0 * in, r * in * 4) != 0)
            fail_msg("chunk %zu (layer %zu rows %zu..): momenta differ from no TEE", k, c->layer,
                     c->row0);
        free(p);
    }
}

/* ------------------------------------------------------------- training */

/* Opens layers FIRST..LAST of LeNet streamed for training through a WORK-byte buffer. */
static void open_train(struct ta *t, const struct dnn_net_config *cfg)
{
    const struct seg g = {.cfg = cfg,
                          .specs = model.specs,
                          .n_layers = model.n,
                          .first = FIRST,
                          .last = LAST,
                          .batch = BATCH,
                          .training = true,
                          .output_policy = DZ_OUTPUT_SCORES,
                          .seed = SEED};
    size_t size = 0;
    uint64_t need = 0;
    uint8_t *blob = make_blob(&g, &size);
    blob_header(blob)->stream_chunk_bytes = WORK;
    ta_start(t);
    assert_int_equal(ta_open_model(t, blob, size, &need), TEEC_SUCCESS);
    free(blob);
}

/* One batch of random images and one-hot labels. */
static void batch_data(uint64_t *rng, float *x, size_t x_floats, float *y)
{
    test_rng_fill(rng, x, x_floats, 0, 1);
    memset(y, 0, BATCH * 10 * sizeof(float));
    for (int b = 0; b < BATCH; b++)
        y[b * 10 + (int)(test_rng_next(rng) % 10)] = 1;
}

/* Trains LeNet ITERS iterations with layers FIRST..LAST streamed, against the whole network
 * with no TEE: the same losses and the same final parameters and momenta, bit for bit. */
static void train_equivalence(int subdivisions)
{
    const struct dnn_net_config cfg = lenet_cfg(subdivisions);
    struct dnn_network *ref = lenet(&cfg), *nw = lenet(&cfg);
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    const size_t mid_floats = (size_t)BATCH * ref->layers[FIRST].inputs;
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * 10];
    float *delta = malloc(mid_floats * sizeof(float));
    assert_non_null(x);
    assert_non_null(delta);
    struct ta t;
    static struct save s;

    open_train(&t, &cfg);
    import_all(&t, nw, &s);
    /* Layer 4's 294 inputs make 2360-byte rows: one per chunk; 143 chunks in all. */
    assert_int_equal(s.n, 120 + 21 + 2);
    uint32_t order[MAX_CHUNKS];
    uint64_t rng_ref = 77, rng_tee = 77;
    float avg_ref = 0;
    for (int it = 0; it < ITERS; it++) {
        /* No TEE: darknet's classifier iteration. */
        float sum = 0;
        for (int sd = 0; sd < subdivisions; sd++) {
            batch_data(&rng_ref, x, x_floats, y);
            sum += dnn_network_train_batch(ref, x, y);
        }
        const float loss_ref = sum / (float)(subdivisions * BATCH);
        avg_ref = it == 0 ? loss_ref : avg_ref;
        avg_ref = avg_ref * .9f + loss_ref * .1f;

        /* Layers 0..3 here, FIRST..LAST streamed in the TA. */
        for (int sd = 0; sd < subdivisions; sd++) {
            batch_data(&rng_tee, x, x_floats, y);
            nw->seen += BATCH;
            dnn_network_forward_range(nw, 0, FIRST - 1, x, NULL, true);
            pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, nw->layers[FIRST - 1].output,
                 mid_floats * sizeof(float), y, sizeof(y), NULL, 0, NULL, NULL);
            pass(&t, &s, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, delta, mid_floats * sizeof(float),
                 NULL, order);
            /* The layers from the last with parameters back, each in row order. */
            assert_int_equal(s.c[order[0]].layer, 8);
            assert_int_equal(s.c[order[s.n - 1]].layer, 4);
            assert_int_equal(s.c[order[s.n - 1]].row0 + s.c[order[s.n - 1]].rows, 120);
            for (size_t i = 0; i < mid_floats; i++)
                nw->layers[FIRST - 1].delta[i] += delta[i];
            dnn_network_backward_range(nw, 0, FIRST - 1, x, NULL);
        }
        dnn_network_update_range(nw, 0, FIRST - 1);
        uint32_t loss[2] = {0, 0};
        pass(&t, &s, DZ_STREAM_UPDATE, DZ_STREAM_WANT_LOSS, NULL, 0, NULL, 0, loss, sizeof(loss),
             NULL, NULL);
        float got, got_avg;
        memcpy(&got, &loss[0], 4);
        memcpy(&got_avg, &loss[1], 4);
        if (memcmp(&got, &loss_ref, 4) != 0 || memcmp(&got_avg, &avg_ref, 4) != 0)
            fail_msg("iteration %d: loss %.9g avg %.9g, no TEE %.9g avg %.9g", it + 1, got, got_avg,
                     loss_ref, avg_ref);
        printf("subdivisions %d, iteration %d: loss %.9g (bit-identical)\n", subdivisions, it + 1,
               got);
    }
    /* The normal world's layers, then the TA's, against no TEE. */
    for (size_t i = 0; i < FIRST; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++)
            assert_memory_equal(nw->layers[i].params[p].value, ref->layers[i].params[p].value,
                                ref->layers[i].params[p].count * sizeof(float));
    /* Every pass that re-seals moves the chunks one generation on. */
    check_chunks(&s, ref, (uint32_t)(ITERS * (subdivisions + 1)));
    assert_true(ref->seen == nw->seen);
    save_free(&s);
    ta_stop(&t);
    free(delta);
    free(x);
    dnn_network_free(nw);
    dnn_network_free(ref);
}

static void test_train_streamed_matches_no_tee(void **state)
{
    (void)state;
    train_equivalence(1);
    train_equivalence(2);
}

/* The engine's row functions over any tiling equal the layer's own backward and update. */
static void test_rows_match_layer(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = lenet_cfg(1);
    struct dnn_network *ref = lenet(&cfg), *tiled = lenet(&cfg);
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * 10];
    assert_non_null(x);
    uint64_t rng = 5;
    batch_data(&rng, x, x_floats, y);
    dnn_network_train_batch(ref, x, y);
    /* The same forward, then layer 4's backward and update by tiles of 7 rows. */
    tiled->seen += BATCH;
    dnn_network_forward(tiled, x, y, true);
    dnn_network_backward_range(tiled, FIRST + 1, ref->n - 1, tiled->layers[FIRST].output,
                               tiled->layers[FIRST].delta);
    struct dnn_layer *l = &tiled->layers[FIRST];
    const float *in = tiled->layers[FIRST - 1].output;
    for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += 7) {
        const size_t rows = (size_t)l->out_c - r0 < 7 ? (size_t)l->out_c - r0 : 7;
        assert_int_equal(dnn_connected_backward_rows(
                             l, in, tiled->layers[FIRST - 1].delta, l->weights + r0 * l->inputs,
                             l->bias_updates + r0, l->weight_updates + r0 * l->inputs, r0, rows),
                         DNN_OK);
    }
    dnn_network_backward_range(tiled, 0, FIRST - 1, x, NULL);
    struct dnn_update_args a;
    dnn_network_update_args(tiled, FIRST, &a);
    dnn_network_update_range(tiled, 0, FIRST - 1);
    dnn_network_update_range(tiled, FIRST + 1, tiled->n - 1);
    for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += 7) {
        const size_t rows = (size_t)l->out_c - r0 < 7 ? (size_t)l->out_c - r0 : 7;
        assert_int_equal(dnn_connected_update_rows(
                             l, &a, l->biases + r0, l->weights + r0 * l->inputs,
                             l->bias_updates + r0, l->weight_updates + r0 * l->inputs, rows),
                         DNN_OK);
    }
    for (size_t i = 0; i < ref->n; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++) {
            assert_memory_equal(tiled->layers[i].params[p].value, ref->layers[i].params[p].value,
                                ref->layers[i].params[p].count * sizeof(float));
            if (memcmp(tiled->layers[i].params[p].update, ref->layers[i].params[p].update,
                       ref->layers[i].params[p].count * sizeof(float)) != 0)
                fail_msg("layer %zu %s: updates differ", i, ref->layers[i].params[p].name);
        }
    /* Another kind of layer, rows past the outputs, adam: refused. */
    assert_int_equal(dnn_connected_backward_rows(&tiled->layers[FIRST + 1], in, NULL, l->weights,
                                                 l->bias_updates, l->weight_updates, 0, 1),
                     DNN_ERR_INVALID);
    assert_int_equal(dnn_connected_backward_rows(l, in, NULL, l->weights, l->bias_updates,
                                                 l->weight_updates, 120, 1),
                     DNN_ERR_INVALID);
    a.adam = true;
    assert_int_equal(dnn_connected_update_rows(l, &a, l->biases, l->weights, l->bias_updates,
                                               l->weight_updates, 1),
                     DNN_ERR_INVALID);
    free(x);
    dnn_network_free(tiled);
    dnn_network_free(ref);
}

/* ------------------------------------------------------------- hostile */

/* The scores of an inference pass over @s. */
static TEEC_Result scores_pass(struct ta *t, const struct save *s, const float *mid,
                               size_t mid_bytes, float *out)
{
    uint32_t next = 0;
    TEEC_Result res = begin(t, DZ_STREAM_FORWARD, 0, mid, mid_bytes, NULL, 0, &next);
    for (size_t i = 0; res == TEEC_SUCCESS && next != DZ_STREAM_DONE; i++) {
        size_t out_size = BATCH * 10 * sizeof(float);
        assert_true(next < s->n);
        res = feed(t, s->blob[next], s->size[next], &next, out, &out_size, NULL, NULL);
    }
    return res;
}

static void test_hostile_training(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = lenet_cfg(1);
    struct dnn_network *nw = lenet(&cfg);
    const size_t x_floats = (size_t)BATCH * nw->layers[0].inputs;
    const size_t mid_floats = (size_t)BATCH * nw->layers[FIRST].inputs;
    const size_t mid_bytes = mid_floats * sizeof(float);
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * 10], scores[BATCH * 10];
    float *delta = malloc(mid_bytes);
    assert_non_null(x);
    assert_non_null(delta);
    uint64_t rng = 9;
    batch_data(&rng, x, x_floats, y);
    dnn_network_forward_range(nw, 0, FIRST - 1, x, NULL, false);
    const float *mid = nw->layers[FIRST - 1].output;
    struct ta t;
    static struct save s, old;
    uint8_t *re = NULL;
    uint32_t next = 0, loss[2];
    size_t out_size = 0, rsize = 0;

    open_train(&t, &cfg);
    import_all(&t, nw, &s);
    old.n = s.n;
    old.c[0] = s.c[0];

    /* Out of order: no BACKWARD without a training forward, no UPDATE without a BACKWARD. */
    assert_int_equal(begin(&t, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, &next),
                     TEEC_ERROR_BAD_STATE);
    assert_int_equal(begin(&t, DZ_STREAM_UPDATE, 0, NULL, 0, NULL, 0, &next), TEEC_ERROR_BAD_STATE);
    /* The loss only with a cost-ending segment's UPDATE; unknown passes and flags. */
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, DZ_STREAM_WANT_LOSS, mid, mid_bytes, y,
                           sizeof(y), &next),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(begin(&t, 4, 0, mid, mid_bytes, NULL, 0, &next), TEEC_ERROR_BAD_PARAMETERS);
    /* FORWARD_TRAIN without its truth. */
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, NULL, 0, &next),
                     TEEC_ERROR_BAD_PARAMETERS);
    /* The resident training commands. */
    size_t dsize = mid_bytes;
    assert_int_equal(ta_backward(&t, NULL, 0, delta, &dsize), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);

    /* One iteration; the chunks before it kept. */
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, NULL, NULL);
    /* A re-sealed chunk needs room: SHORT_BUFFER with the size, and the pass goes on. */
    assert_int_equal(begin(&t, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, &next), TEEC_SUCCESS);
    out_size = mid_bytes;
    rsize = 16;
    uint8_t small[16];
    const uint32_t first = next;
    assert_int_equal(feed(&t, s.blob[first], s.size[first], &next, delta, &out_size, small, &rsize),
                     TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(rsize, s.size[first]);
    pass_on(&t, &s, DZ_STREAM_BACKWARD, first, delta, mid_bytes, &old, NULL);
    pass(&t, &s, DZ_STREAM_UPDATE, DZ_STREAM_WANT_LOSS, NULL, 0, NULL, 0, loss, sizeof(loss), &old,
         NULL);
    assert_int_equal(scores_pass(&t, &s, mid, mid_bytes, scores), TEEC_SUCCESS);

    /* Replay: chunk 0 of the generation before the UPDATE. */
    assert_int_equal(scores_pass(&t, &old, mid, mid_bytes, scores), TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "an older generation: replayed"));
    /* The same after the current chunk 0: the older chunk 1 is refused too. */
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD, 0, mid, mid_bytes, NULL, 0, &next), TEEC_SUCCESS);
    out_size = sizeof(scores);
    assert_int_equal(feed(&t, s.blob[0], s.size[0], &next, scores, &out_size, NULL, NULL),
                     TEEC_SUCCESS);
    assert_int_equal(next, 1);
    out_size = sizeof(scores);
    assert_int_equal(feed(&t, old.blob[1], old.size[1], &next, scores, &out_size, NULL, NULL),
                     TEEC_ERROR_SECURITY);

    /* A chunk BACKWARD and UPDATE re-sealed (layer 4's last, current generation) fed to
     * FORWARD where layer 6's first is asked for. */
    size_t l6 = 0;
    while (s.c[l6].layer != 6)
        l6++;
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD, 0, mid, mid_bytes, NULL, 0, &next), TEEC_SUCCESS);
    for (size_t k = 0; k < l6; k++) {
        out_size = sizeof(scores);
        assert_int_equal(feed(&t, s.blob[k], s.size[k], &next, scores, &out_size, NULL, NULL),
                         TEEC_SUCCESS);
    }
    assert_int_equal(next, l6);
    out_size = sizeof(scores);
    assert_int_equal(feed(&t, s.blob[l6 - 1], s.size[l6 - 1], &next, scores, &out_size, NULL, NULL),
                     TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "refused: it seals to"));
    /* The same within layer 6, where chunks are of one size: the header tells. */
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD, 0, mid, mid_bytes, NULL, 0, &next), TEEC_SUCCESS);
    for (size_t k = 0; k < l6; k++) {
        out_size = sizeof(scores);
        assert_int_equal(feed(&t, s.blob[k], s.size[k], &next, scores, &out_size, NULL, NULL),
                         TEEC_SUCCESS);
    }
    assert_int_equal(s.size[l6 + 1], s.size[l6]);
    out_size = sizeof(scores);
    assert_int_equal(feed(&t, s.blob[l6 + 1], s.size[l6 + 1], &next, scores, &out_size, NULL, NULL),
                     TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "not the chunk asked for"));
    /* Inference refusals leave the parameters: a whole pass runs. */
    assert_int_equal(scores_pass(&t, &s, mid, mid_bytes, scores), TEEC_SUCCESS);

    /* A refusal in the middle of a re-sealing pass: the session holds no parameters. */
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, NULL, NULL);
    assert_int_equal(begin(&t, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, &next), TEEC_SUCCESS);
    re = malloc(s.size[next]);
    assert_non_null(re);
    out_size = mid_bytes;
    rsize = s.size[next];
    assert_int_equal(feed(&t, old.blob[next], old.size[next], &next, delta, &out_size, re, &rsize),
                     TEEC_ERROR_SECURITY);
    free(re);
    assert_true(tee_log_contains(&env, "the streamed parameters are lost"));
    assert_int_equal(scores_pass(&t, &s, mid, mid_bytes, scores), TEEC_ERROR_BAD_STATE);
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), &next),
                     TEEC_ERROR_BAD_STATE);
    /* An import gives it parameters again (a new save at generation 0). */
    save_free(&s);
    import_all(&t, nw, &s);
    assert_int_equal(scores_pass(&t, &s, mid, mid_bytes, scores), TEEC_SUCCESS);
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, NULL, NULL);
    pass(&t, &s, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, delta, mid_bytes, NULL, NULL);
    pass(&t, &s, DZ_STREAM_UPDATE, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL);

    /* A BACKWARD abandoned half way for another pass: no parameters either. */
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, NULL, NULL);
    assert_int_equal(begin(&t, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, &next), TEEC_SUCCESS);
    re = malloc(s.size[next]);
    assert_non_null(re);
    out_size = mid_bytes;
    rsize = s.size[next];
    assert_int_equal(feed(&t, s.blob[next], s.size[next], &next, delta, &out_size, re, &rsize),
                     TEEC_SUCCESS);
    free(re);
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD, 0, mid, mid_bytes, NULL, 0, &next),
                     TEEC_ERROR_BAD_STATE);
    assert_true(tee_log_contains(&env, "abandoned after 1 chunks"));
    assert_int_equal(scores_pass(&t, &s, mid, mid_bytes, scores), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);
    save_free(&s);
    save_free(&old);
    free(delta);
    free(x);
    dnn_network_free(nw);
}

static TEEC_Result load_chunk(struct ta *t, uint32_t k, bool updates, uint32_t n,
                              const uint8_t *blob, size_t size, uint64_t seen)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_VALUE_INPUT);
    op.params[0].value.a = k;
    op.params[0].value.b = updates;
    op.params[1].value.a = WORK;
    op.params[1].value.b = n;
    set_mem(&op, 2, blob, size);
    op.params[3].value.a = (uint32_t)seen;
    op.params[3].value.b = (uint32_t)(seen >> 32);
    return invoke(t, DZ_CMD_LOAD_CHUNK, &op);
}

/* A streamed save, trained, back resident: scores of the reference with the same weights;
 * a chunk altered, out of order or of another save: refused, and nothing computes until a
 * load completes. */
static void test_streamed_save_loads_resident(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = lenet_cfg(1);
    struct dnn_network *nw = lenet(&cfg);
    const size_t x_floats = (size_t)BATCH * nw->layers[0].inputs;
    const size_t mid_bytes = (size_t)BATCH * nw->layers[FIRST].inputs * sizeof(float);
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * 10];
    float *delta = malloc(mid_bytes);
    assert_non_null(x);
    assert_non_null(delta);
    uint64_t rng = 31;
    batch_data(&rng, x, x_floats, y);
    dnn_network_forward_range(nw, 0, FIRST - 1, x, NULL, false);
    const float *mid = nw->layers[FIRST - 1].output;
    struct ta t;
    static struct save s;

    /* One streamed training iteration. */
    open_train(&t, &cfg);
    import_all(&t, nw, &s);
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, NULL, NULL);
    pass(&t, &s, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, delta, mid_bytes, NULL, NULL);
    pass(&t, &s, DZ_STREAM_UPDATE, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL);
    ta_stop(&t);

    /* The reference: the trained parameters as the chunks hold them. */
    struct dnn_net_config icfg = cfg;
    struct dnn_network *ref = NULL;
    assert_int_equal(dnn_network_create(&ref, &icfg, model.specs, model.n, false, SEED), DNN_OK);
    for (size_t k = 0; k < s.n; k++) {
        struct dz_chunk_header h;
        float *p = sim_unseal_chunk(env.storage, s.blob[k], s.size[k], &h);
        assert_non_null(p);
        struct dnn_layer *l = &ref->layers[h.layer];
        memcpy(l->biases + h.row0, p, h.rows * sizeof(float));
        memcpy(l->weights + (size_t)h.row0 * l->inputs, p + h.rows,
               (size_t)h.rows * l->inputs * sizeof(float));
        free(p);
    }
    dnn_network_forward_range(ref, FIRST, ref->n - 1, mid, NULL, false);
    const float *want = ref->layers[ref->n - 2].output; /* softmax, before the cost */

    /* Resident, inference, scores. */
    const struct seg g = {.cfg = &cfg,
                          .specs = model.specs,
                          .n_layers = model.n,
                          .first = FIRST,
                          .last = LAST,
                          .batch = BATCH,
                          .output_policy = DZ_OUTPUT_SCORES,
                          .seed = SEED};
    size_t size = 0;
    uint64_t need = 0;
    uint8_t *blob = make_blob(&g, &size);
    ta_start(&t);
    assert_int_equal(ta_open_model(&t, blob, size, &need), TEEC_SUCCESS);
    free(blob);
    float scores[BATCH * 10];
    size_t ssize = sizeof(scores);
    const uint32_t n = (uint32_t)s.n;
    /* Another cut than the save's, or out of order: refused. */
    assert_int_equal(load_chunk(&t, 0, false, n, s.blob[0], s.size[0], 0),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(load_chunk(&t, 1, true, n, s.blob[1], s.size[1], 0), TEEC_ERROR_BAD_STATE);
    for (uint32_t k = 0; k < n; k++)
        assert_int_equal(load_chunk(&t, k, true, n, s.blob[k], s.size[k], 40), TEEC_SUCCESS);
    assert_int_equal(ta_forward(&t, mid, mid_bytes, NULL, 0, 0, scores, &ssize), TEEC_SUCCESS);
    assert_memory_equal(scores, want, sizeof(scores));

    /* Altered mid-way: refused, and the session computes nothing until a load completes. */
    uint8_t *bad = malloc(s.size[2]);
    assert_non_null(bad);
    memcpy(bad, s.blob[2], s.size[2]);
    bad[s.size[2] - 40] ^= 1;
    for (uint32_t k = 0; k < 2; k++)
        assert_int_equal(load_chunk(&t, k, true, n, s.blob[k], s.size[k], 40), TEEC_SUCCESS);
    assert_int_equal(load_chunk(&t, 2, true, n, bad, s.size[2], 40), TEEC_ERROR_SECURITY);
    ssize = sizeof(scores);
    assert_int_equal(ta_forward(&t, mid, mid_bytes, NULL, 0, 0, scores, &ssize),
                     TEEC_ERROR_BAD_STATE);
    assert_int_equal(load_chunk(&t, 3, true, n, s.blob[3], s.size[3], 40), TEEC_ERROR_BAD_STATE);
    /* A whole load again: the same scores. */
    for (uint32_t k = 0; k < n; k++)
        assert_int_equal(load_chunk(&t, k, true, n, s.blob[k], s.size[k], 40), TEEC_SUCCESS);
    ssize = sizeof(scores);
    assert_int_equal(ta_forward(&t, mid, mid_bytes, NULL, 0, 0, scores, &ssize), TEEC_SUCCESS);
    assert_memory_equal(scores, want, sizeof(scores));
    free(bad);
    ta_stop(&t);
    save_free(&s);
    free(delta);
    free(x);
    dnn_network_free(ref);
    dnn_network_free(nw);
}

static int group_setup(void **state)
{
    (void)state;
    char dir[PATH_MAX - 64], path[PATH_MAX];
    struct dk_error err = {{0}};
    fixture_dir("darknet-mnist-lenet", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/mnist_lenet.cfg", dir);
    snprintf(lenet_weights, sizeof(lenet_weights), "%s/mnist_lenet.weights", dir);
    if (dk_parse_network(path, &model, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    dk_model_free(&model);
    tee_env_teardown(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_match_layer),
        cmocka_unit_test(test_train_streamed_matches_no_tee),
        cmocka_unit_test(test_hostile_training),
        cmocka_unit_test(test_streamed_save_loads_resident),
    };
    return cmocka_run_group_tests_name("ta_stream_train", tests, group_setup, group_teardown);
}
