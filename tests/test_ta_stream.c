/*
 * test_ta_stream.c - weight streaming in the DarkneTZ TA (ta/stream.c), through the simulated
 * TEE's client API with the protocol's raw commands:
 *  - a classifier head shaped like AlexNet's (connected, dropout, connected, dropout,
 *    connected, softmax) whose parameters (12.6 MB) do not fit the TA's 6 MiB heap is refused
 *    resident and runs streamed through a 1 MiB working buffer, with scores byte-identical to
 *    the engine's forward over the same parameters, at every tiling tried;
 *  - the engine's dnn_connected_forward_rows is bit-identical to the layer's own forward
 *    for every tile;
 *  - a hostile normal world: a swapped, reordered, truncated, extended, altered chunk, one of
 *    another save in the same pass, of another model or working buffer, a chunk without a
 *    pass, imports out of order, and the resident commands in a streamed session are refused
 *    with one exact code, and the TA computes the right scores afterwards;
 *  - the sealed chunks hold no parameter in plain.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

/* ------------------------------------------------------------------ the head */

enum { N_LAYERS = 7, FIRST = 1, LAST = 6, BATCH = 2, IN = 32, H1 = 1536, H2 = 1024, CLASSES = 10 };

static struct dnn_net_config head_cfg;
static struct dnn_layer_spec head_specs[N_LAYERS];

/* connected 32 -> 1000 (the normal world's), then the head: connected 1000 -> 1536 relu,
 * dropout .5, connected 1536 -> 1024 relu, dropout .5, connected 1024 -> 10, softmax. */
static void init_head(void)
{
    memset(&head_cfg, 0, sizeof(head_cfg));
    head_cfg.batch = BATCH;
    head_cfg.subdivisions = 1;
    head_cfg.h = 1;
    head_cfg.w = 1;
    head_cfg.c = IN;
    head_cfg.learning_rate = 0.01f;
    head_cfg.momentum = 0.9f;
    head_cfg.policy = DNN_POLICY_CONSTANT;
    head_cfg.max_batches = 10;
    memset(head_specs, 0, sizeof(head_specs));
    head_specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = 1000};
    head_specs[1] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_RELU, .outputs = H1};
    head_specs[2] = (struct dnn_layer_spec){.kind = DNN_LAYER_DROPOUT, .probability = 0.5f};
    head_specs[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_RELU, .outputs = H2};
    head_specs[4] = (struct dnn_layer_spec){.kind = DNN_LAYER_DROPOUT, .probability = 0.5f};
    head_specs[5] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES};
    head_specs[6] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
}

static struct seg head_seg(void)
{
    return (struct seg){.cfg = &head_cfg,
                        .specs = head_specs,
                        .n_layers = N_LAYERS,
                        .first = FIRST,
                        .last = LAST,
                        .batch = BATCH,
                        .output_policy = DZ_OUTPUT_SCORES,
                        .seed = 7};
}

/* ------------------------------------------------------------ the chunks */

/* The chunks of @ref (the segment, resident in this process) for a working buffer of
 * @chunk_bytes, as the TA cuts them: per connected layer, blocks of whole rows. */
struct chunk {
    size_t layer; /* in the segment */
    size_t row0, rows, plain;
};

static size_t cut(const struct dnn_network *ref, size_t chunk_bytes, struct chunk *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ref->n; i++) {
        const struct dnn_layer *l = &ref->layers[i];
        if (!l->n_params)
            continue;
        size_t r = chunk_bytes / ((l->inputs + 1) * sizeof(float));
        if (r > (size_t)l->out_c)
            r = (size_t)l->out_c;
        for (size_t row0 = 0; row0 < (size_t)l->out_c; row0 += r) {
            assert_true(n < max);
            const size_t rows = (size_t)l->out_c - row0 < r ? (size_t)l->out_c - row0 : r;
            out[n++] = (struct chunk){i, row0, rows, rows * (l->inputs + 1) * sizeof(float)};
        }
    }
    return n;
}

/* The plaintext of chunk @c: its rows' biases, then their weight rows. */
static float *plain_chunk(const struct dnn_network *ref, const struct chunk *c)
{
    const struct dnn_layer *l = &ref->layers[c->layer];
    float *p = malloc(c->plain);
    assert_non_null(p);
    memcpy(p, l->biases + c->row0, c->rows * sizeof(float));
    memcpy(p + c->rows, l->weights + c->row0 * l->inputs, c->rows * l->inputs * sizeof(float));
    return p;
}

struct save {
    size_t n;
    uint8_t *blob[256];
    size_t size[256];
};

static TEEC_Result import(struct ta *t, uint32_t k, const void *plain, size_t plain_bytes,
                          void *out, size_t *out_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
    op.params[0].value.a = k;
    set_mem(&op, 1, plain, plain_bytes);
    set_mem(&op, 2, out, *out_size);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT, &op);
    *out_size = op.params[2].tmpref.size;
    return res;
}

static void import_all(struct ta *t, const struct dnn_network *ref, const struct chunk *c, size_t n,
                       struct save *s)
{
    s->n = n;
    for (size_t k = 0; k < n; k++) {
        float *p = plain_chunk(ref, &c[k]);
        size_t size = 0;
        assert_int_equal(import(t, (uint32_t)k, p, c[k].plain, NULL, &size),
                         TEEC_ERROR_SHORT_BUFFER);
        assert_int_equal(size, sizeof(struct dz_chunk_header) + c[k].plain + DZ_SEALED_TAG_BYTES);
        s->blob[k] = malloc(size);
        assert_non_null(s->blob[k]);
        assert_int_equal(import(t, (uint32_t)k, p, c[k].plain, s->blob[k], &size), TEEC_SUCCESS);
        s->size[k] = size;
        /* No parameter appears in plain: 8-byte pairs of floats (4 bytes would match
         * ciphertext by chance in a chunk of a megabyte) at 16 places of the chunk. */
        const size_t floats = c[k].plain / sizeof(float);
        for (size_t j = 0; j + 1 < floats; j += floats / 16 + 1)
            if (memmem(s->blob[k], size, &p[j], 2 * sizeof(float)))
                fail_msg("chunk %zu holds parameters %zu, %zu in plain", k, j, j + 1);
        free(p);
    }
}

static void save_free(struct save *s)
{
    for (size_t k = 0; k < s->n; k++)
        free(s->blob[k]);
    s->n = 0;
}

static TEEC_Result begin(struct ta *t, const float *x, uint32_t *next, uint32_t *n_chunks)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, x, BATCH * 1000 * sizeof(float));
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_BEGIN, &op);
    if (next)
        *next = op.params[1].value.a;
    if (n_chunks)
        *n_chunks = op.params[1].value.b;
    return res;
}

static TEEC_Result feed(struct ta *t, const void *blob, size_t size, uint32_t *next, float *y,
                        size_t *y_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
    set_mem(&op, 0, blob, size);
    set_mem(&op, 2, y, *y_size);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_CHUNK, &op);
    *next = op.params[1].value.a;
    *y_size = op.params[2].tmpref.size;
    return res;
}

/* A whole pass over save @s: the TA's scores into @y. */
static void pass(struct ta *t, const struct save *s, const float *x, float *y)
{
    uint32_t next = 99, n = 0;
    assert_int_equal(begin(t, x, &next, &n), TEEC_SUCCESS);
    assert_int_equal(next, 0);
    assert_int_equal(n, s->n);
    for (size_t k = 0; k < s->n; k++) {
        size_t y_size = BATCH * CLASSES * sizeof(float);
        assert_int_equal(next, k);
        assert_int_equal(feed(t, s->blob[k], s->size[k], &next, y, &y_size), TEEC_SUCCESS);
        assert_int_equal(y_size, k + 1 == s->n ? BATCH * CLASSES * sizeof(float) : 0);
    }
    assert_int_equal(next, DZ_STREAM_DONE);
}

static void open_streamed(struct ta *t, const struct seg *g, uint32_t chunk_bytes, TEEC_Result want)
{
    size_t size = 0;
    uint8_t *blob = make_blob(g, &size);
    blob_header(blob)->stream_chunk_bytes = chunk_bytes;
    ta_start(t);
    uint64_t need = 0;
    assert_int_equal(ta_open_model(t, blob, size, &need), want);
    free(blob);
}

/* ------------------------------------------------------------------ tests */

static void reference_scores(struct dnn_network *ref, const float *x, float *y)
{
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    memcpy(y, ref->layers[ref->n - 1].output, BATCH * CLASSES * sizeof(float));
}

static void test_rows_match_layer(void **state)
{
    (void)state;
    const struct seg g = head_seg();
    struct dnn_network *ref = reference(&g);
    struct dnn_layer *l = &ref->layers[0];
    float x[BATCH * 1000];
    uint64_t rng = 0x5EED;
    test_rng_fill(&rng, x, BATCH * 1000, -1, 1);
    const size_t out_bytes = BATCH * (size_t)H1 * sizeof(float);
    float *want = malloc(out_bytes);
    assert_non_null(want);
    dnn_network_forward_range(ref, 0, 0, x, NULL, false);
    memcpy(want, l->output, out_bytes);
    static const size_t tiles[] = {1, 7, 16, 17, 100, 512, H1};
    for (size_t t = 0; t < sizeof(tiles) / sizeof(tiles[0]); t++) {
        memset(l->output, 0xFF, out_bytes);
        for (size_t r0 = 0; r0 < H1; r0 += tiles[t]) {
            const size_t rows = H1 - r0 < tiles[t] ? H1 - r0 : tiles[t];
            assert_int_equal(dnn_connected_forward_rows(l, x, l->biases + r0,
                                                        l->weights + r0 * l->inputs, r0, rows),
                             DNN_OK);
        }
        assert_memory_equal(l->output, want, out_bytes);
    }
    /* Past the layer's outputs, or another kind of layer: refused. */
    assert_int_equal(dnn_connected_forward_rows(l, x, l->biases, l->weights, H1, 1),
                     DNN_ERR_INVALID);
    assert_int_equal(dnn_connected_forward_rows(&ref->layers[1], x, l->biases, l->weights, 0, 1),
                     DNN_ERR_INVALID);
    free(want);
    dnn_network_free(ref);
}

static void test_streamed_head_matches_engine(void **state)
{
    (void)state;
    const struct seg g = head_seg();
    struct dnn_network *ref = reference(&g);
    struct ta t;
    float x[BATCH * 1000], want[BATCH * CLASSES], y[BATCH * CLASSES];
    uint64_t rng = 0xA1E;
    test_rng_fill(&rng, x, BATCH * 1000, -1, 1);
    reference_scores(ref, x, want);

    /* Resident, it does not fit the 6 MiB heap. */
    open_streamed(&t, &g, 0, TEEC_ERROR_OUT_OF_MEMORY);
    ta_stop(&t);

    static const uint32_t works[] = {1u << 20, 300000, 65536};
    struct chunk c[4096];
    for (size_t w = 0; w < sizeof(works) / sizeof(works[0]); w++) {
        const size_t n = cut(ref, works[w], c, sizeof(c) / sizeof(c[0]));
        if (n > 256)
            fail_msg("%zu chunks", n);
        struct save s;
        open_streamed(&t, &g, works[w], TEEC_SUCCESS);
        import_all(&t, ref, c, n, &s);
        memset(y, 0, sizeof(y));
        pass(&t, &s, x, y);
        assert_memory_equal(y, want, sizeof(want));
        /* A second pass gives the same. */
        memset(y, 0, sizeof(y));
        pass(&t, &s, x, y);
        assert_memory_equal(y, want, sizeof(want));
        save_free(&s);
        ta_stop(&t);
    }
    assert_true(tee_log_contains(&env, "streamed"));
    dnn_network_free(ref);
}

static void test_hostile_chunks(void **state)
{
    (void)state;
    const struct seg g = head_seg();
    struct dnn_network *ref = reference(&g);
    struct ta t;
    float x[BATCH * 1000], want[BATCH * CLASSES], y[BATCH * CLASSES];
    uint64_t rng = 0xBAD;
    test_rng_fill(&rng, x, BATCH * 1000, -1, 1);
    reference_scores(ref, x, want);
    const uint32_t work = 1u << 20;
    struct chunk c[64];
    const size_t n = cut(ref, work, c, 64);
    assert_true(n >= 4);

    open_streamed(&t, &g, work, TEEC_SUCCESS);
    struct save a, b;
    import_all(&t, ref, c, n, &a);
    import_all(&t, ref, c, n, &b); /* another save of the same parameters */
    uint32_t next = 0;
    size_t y_size = sizeof(y);

    /* Swapped: chunk 1 given when 0 is asked. */
    assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
    assert_int_equal(feed(&t, a.blob[1], a.size[1], &next, y, &y_size), TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "not the chunk asked for"));
    /* The pass is over: a chunk without a pass. */
    y_size = sizeof(y);
    assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_ERROR_BAD_STATE);
    pass(&t, &a, x, y);
    assert_memory_equal(y, want, sizeof(want));

    /* Reordered: 0, then 2. */
    assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
    y_size = sizeof(y);
    assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_SUCCESS);
    assert_int_equal(next, 1);
    y_size = sizeof(y);
    assert_int_equal(feed(&t, a.blob[2], a.size[2], &next, y, &y_size), TEEC_ERROR_SECURITY);
    /* Replayed: chunk 1 of another save after chunk 0 of this one. */
    assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
    y_size = sizeof(y);
    assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_SUCCESS);
    y_size = sizeof(y);
    assert_int_equal(feed(&t, b.blob[1], b.size[1], &next, y, &y_size), TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "from another save"));
    /* A whole pass of the other save is that save's own parameters: it runs. */
    pass(&t, &b, x, y);
    assert_memory_equal(y, want, sizeof(want));

    /* Truncated, extended, and every part altered: refused, the pass ended. */
    uint8_t *bad = malloc(a.size[1] + 1);
    assert_non_null(bad);
    const size_t hsz = sizeof(struct dz_chunk_header);
    const size_t flips[] = {0,  8,  40, 52,  56,  60,         64,           68,
                            72, 80, 96, 108, hsz, hsz + 1000, a.size[1] - 1};
    for (size_t f = 0; f <= sizeof(flips) / sizeof(flips[0]) + 1; f++) {
        size_t size = a.size[1];
        memcpy(bad, a.blob[1], a.size[1]);
        if (f < sizeof(flips) / sizeof(flips[0]))
            bad[flips[f]] ^= 0x04;
        else if (f == sizeof(flips) / sizeof(flips[0]))
            size -= 1; /* truncated */
        else
            bad[size++] = 0; /* extended */
        assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
        y_size = sizeof(y);
        assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_SUCCESS);
        y_size = sizeof(y);
        const TEEC_Result res = feed(&t, bad, size, &next, y, &y_size);
        if (res != TEEC_ERROR_SECURITY)
            fail_msg("case %zu: %#x, expected SECURITY", f, (unsigned)res);
        y_size = sizeof(y);
        assert_int_equal(feed(&t, a.blob[2], a.size[2], &next, y, &y_size), TEEC_ERROR_BAD_STATE);
    }
    free(bad);
    pass(&t, &a, x, y);
    assert_memory_equal(y, want, sizeof(want));

    /* An output buffer too small: the size needed, and the pass goes on. */
    assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
    y_size = 4;
    assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(y_size, sizeof(y));

    /* Imports out of order; the resident commands. */
    float *p = plain_chunk(ref, &c[2]);
    uint8_t *out = malloc(a.size[2]);
    assert_non_null(out);
    size_t osize = a.size[2];
    assert_int_equal(import(&t, 2, p, c[2].plain, out, &osize), TEEC_ERROR_BAD_STATE);
    osize = a.size[2];
    assert_int_equal(import(&t, 2, p, c[2].plain - 4, out, &osize), TEEC_ERROR_BAD_PARAMETERS);
    osize = a.size[2];
    assert_int_equal(import(&t, (uint32_t)n, p, c[2].plain, out, &osize),
                     TEEC_ERROR_BAD_PARAMETERS);
    free(out);
    free(p);
    assert_int_equal(ta_load_plain(&t, x, sizeof(float), 0), TEEC_ERROR_BAD_STATE);
    size_t fsize = sizeof(y);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, y, &fsize), TEEC_ERROR_BAD_STATE);
    size_t ssize = 0;
    assert_int_equal(ta_save(&t, NULL, &ssize), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_load_sealed(&t, a.blob[0], a.size[0], NULL), TEEC_ERROR_BAD_STATE);
    ta_version(&t, NULL);
    pass(&t, &a, x, y);
    assert_memory_equal(y, want, sizeof(want));
    ta_stop(&t);

    /* Another working buffer: the chunks are cut otherwise, and refused. */
    open_streamed(&t, &g, work / 2, TEEC_SUCCESS);
    assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
    y_size = sizeof(y);
    assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_ERROR_SECURITY);
    ta_stop(&t);

    /* Another model (one activation changed, same shapes): refused. */
    struct dnn_layer_spec changed[N_LAYERS];
    memcpy(changed, head_specs, sizeof(changed));
    changed[3].activation = DNN_ACT_LEAKY;
    struct seg other = g;
    other.specs = changed;
    open_streamed(&t, &other, work, TEEC_SUCCESS);
    assert_int_equal(begin(&t, x, &next, NULL), TEEC_SUCCESS);
    y_size = sizeof(y);
    assert_int_equal(feed(&t, a.blob[0], a.size[0], &next, y, &y_size), TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "sealed for another model"));
    ta_stop(&t);

    /* Training streams too (test_ta_stream_train.c), but a row then carries its updates
     * as well: 1537 floats twice (12296 bytes) do not fit 8192. Not with adam. And the
     * working buffer has bounds. */
    struct seg train = g;
    train.training = true;
    open_streamed(&t, &train, work, TEEC_SUCCESS);
    ta_stop(&t);
    open_streamed(&t, &g, 8192, TEEC_SUCCESS);
    ta_stop(&t);
    open_streamed(&t, &train, 8192, TEEC_ERROR_BAD_PARAMETERS);
    ta_stop(&t);
    struct dnn_net_config adam_cfg = head_cfg;
    adam_cfg.adam = true;
    adam_cfg.beta1 = 0.9f;
    adam_cfg.beta2 = 0.999f;
    adam_cfg.epsilon = 1e-7f;
    train.cfg = &adam_cfg;
    open_streamed(&t, &train, work, TEEC_ERROR_BAD_PARAMETERS);
    assert_true(tee_log_contains(&env, "not with adam"));
    ta_stop(&t);
    open_streamed(&t, &g, 4095, TEEC_ERROR_BAD_PARAMETERS);
    ta_stop(&t);
    open_streamed(&t, &g, 4096, TEEC_ERROR_BAD_PARAMETERS); /* a row of 1536 inputs: 6148 */
    ta_stop(&t);

    save_free(&a);
    save_free(&b);
    dnn_network_free(ref);
}

static int group_setup(void **state)
{
    (void)state;
    init_head();
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
        cmocka_unit_test(test_rows_match_layer),
        cmocka_unit_test(test_streamed_head_matches_engine),
        cmocka_unit_test(test_hostile_chunks),
    };
    return cmocka_run_group_tests_name("ta_stream", tests, group_setup, group_teardown);
}
