/*
 * test_ta_stream_sealed.c - a sealed blob imported into a weight-streaming session's chunks
 * inside the TA (DZ_CMD_STREAM_IMPORT_SEALED, ta/stream_sealed.c), through the simulated
 * TEE's client API with the protocol's raw commands:
 *  - a blob SAVE_SEALED wrote in a resident session streams, through a working buffer of 4 KiB
 *    (42 chunks whose ends fall anywhere in the cipher's blocks), to scores byte-identical to
 *    the engine's over the same parameters; no parameter appears in plain in any chunk;
 *  - a blob with a flipped ciphertext byte, a flipped tag byte, or one byte short is refused
 *    with TEE_ERROR_SECURITY, the session then runs no pass, and no chunk that import made is
 *    accepted afterwards, not even in a pass over a good import's chunks;
 *  - after a refused import a plain import (STREAM_IMPORT) works again;
 *  - a blob of batch-normalised convolutions streams to the engine's scores (each filter's
 *    bias, BN scale and rolling statistics found before the weights in the blob); one with a
 *    batch-normalised connected layer (BN triple after its weights) is refused;
 *  - the import keeps LOAD_SEALED's checks: a training session is refused an inference-only
 *    blob (ACCESS_DENIED), and a resident session is refused the command (BAD_STATE).
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

enum { N_LAYERS = 5, FIRST = 1, LAST = 4, BATCH = 2, IN = 32, H0 = 64, CLASSES = 10 };
enum { WORK = 4096, MAX_CHUNKS = 64 };

static struct dnn_net_config net_cfg;
static struct dnn_layer_spec net_specs[N_LAYERS];

/* connected 32 -> 64 (the normal world's), then connected 64 -> 200 relu, connected
 * 200 -> 130 relu, connected 130 -> 10, softmax: 40,440 parameters, resident in 6 MiB. */
static void init_net(void)
{
    memset(&net_cfg, 0, sizeof(net_cfg));
    net_cfg.batch = BATCH;
    net_cfg.subdivisions = 1;
    net_cfg.h = 1;
    net_cfg.w = 1;
    net_cfg.c = IN;
    net_cfg.learning_rate = 0.01f;
    net_cfg.momentum = 0.9f;
    net_cfg.policy = DNN_POLICY_CONSTANT;
    net_cfg.max_batches = 10;
    memset(net_specs, 0, sizeof(net_specs));
    net_specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = H0};
    net_specs[1] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_RELU, .outputs = 200};
    net_specs[2] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_RELU, .outputs = 130};
    net_specs[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES};
    net_specs[4] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
}

static struct seg net_seg(bool training)
{
    return (struct seg){.cfg = &net_cfg,
                        .specs = net_specs,
                        .n_layers = N_LAYERS,
                        .first = FIRST,
                        .last = LAST,
                        .batch = BATCH,
                        .training = training,
                        .output_policy = DZ_OUTPUT_SCORES,
                        .seed = 11};
}

static void open_session(struct ta *t, const struct seg *g, uint32_t chunk_bytes)
{
    size_t size = 0;
    uint8_t *blob = make_blob(g, &size);
    blob_header(blob)->stream_chunk_bytes = chunk_bytes;
    ta_start(t);
    uint64_t need = 0;
    assert_int_equal(ta_open_model(t, blob, size, &need), TEEC_SUCCESS);
    free(blob);
}

/* The segment's parameters sealed by this device's TA (SAVE_SEALED in a resident session). */
static uint8_t *sealed_blob(const struct seg *g, const float *params, size_t count, size_t *size)
{
    struct ta t;
    open_session(&t, g, 0);
    assert_int_equal(ta_load_plain(&t, params, count * sizeof(float), 1234), TEEC_SUCCESS);
    *size = 0;
    assert_int_equal(ta_save(&t, NULL, size), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *blob = malloc(*size);
    assert_non_null(blob);
    assert_int_equal(ta_save(&t, blob, size), TEEC_SUCCESS);
    ta_stop(&t);
    return blob;
}

struct chunks {
    size_t n;
    uint8_t *blob[MAX_CHUNKS];
    size_t size[MAX_CHUNKS];
};

static void chunks_free(struct chunks *c)
{
    for (size_t k = 0; k < c->n; k++)
        free(c->blob[k]);
    c->n = 0;
}

/*
 * The whole import of @blob (@size bytes), one call per chunk, each given the rest of the
 * blob; the chunks made go to @out. Returns the first refusal (or TEEC_SUCCESS) and the chunk
 * it came at in *at; *seen gets the blob's `seen`.
 */
static TEEC_Result import_sealed(struct ta *t, const uint8_t *blob, size_t size, struct chunks *out,
                                 size_t *at, uint64_t *seen)
{
    size_t off = 0;
    out->n = 0;
    for (uint32_t k = 0; k < MAX_CHUNKS; k++) {
        TEEC_Operation op;
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_MEMREF_TEMP_INPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_OUTPUT);
        op.params[0].value.a = k;
        set_mem(&op, 1, blob + off, size - off);
        set_mem(&op, 2, NULL, 0);
        *at = k;
        TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT_SEALED, &op);
        if (res != TEEC_ERROR_SHORT_BUFFER)
            return res; /* refused before it read anything */
        const size_t chunk = op.params[2].tmpref.size;
        uint8_t *buf = malloc(chunk);
        assert_non_null(buf);
        op.params[0].value.a = k;
        set_mem(&op, 2, buf, chunk);
        res = invoke(t, DZ_CMD_STREAM_IMPORT_SEALED, &op);
        if (res != TEEC_SUCCESS) {
            free(buf);
            return res;
        }
        assert_int_equal(op.params[2].tmpref.size, chunk);
        assert_true(op.params[0].value.a <= size - off);
        out->blob[out->n] = buf;
        out->size[out->n++] = chunk;
        off += op.params[0].value.a;
        if (off == size) {
            *seen = ((uint64_t)op.params[3].value.b << 32) | op.params[3].value.a;
            return TEEC_SUCCESS;
        }
    }
    fail_msg("more than %d chunks", MAX_CHUNKS);
    return TEEC_ERROR_GENERIC;
}

static TEEC_Result begin(struct ta *t, const float *x, uint32_t *next)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, x, BATCH * H0 * sizeof(float));
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_BEGIN, &op);
    *next = op.params[1].value.a;
    return res;
}

static TEEC_Result feed(struct ta *t, const void *chunk, size_t size, uint32_t *next, float *y)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
    set_mem(&op, 0, chunk, size);
    set_mem(&op, 2, y, BATCH * CLASSES * sizeof(float));
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_CHUNK, &op);
    *next = op.params[1].value.a;
    return res;
}

/* A whole forward pass over @c: the TA's scores into @y. */
static void pass(struct ta *t, const struct chunks *c, const float *x, float *y)
{
    uint32_t next = 99;
    assert_int_equal(begin(t, x, &next), TEEC_SUCCESS);
    for (size_t k = 0; k < c->n; k++) {
        assert_int_equal(next, k);
        assert_int_equal(feed(t, c->blob[k], c->size[k], &next, y), TEEC_SUCCESS);
    }
    assert_int_equal(next, DZ_STREAM_DONE);
}

struct fixture {
    struct seg g;
    struct dnn_network *ref;
    float *params;
    size_t count;
    uint8_t *blob;
    size_t size;
    float x[BATCH * H0], want[BATCH * CLASSES];
};

static void fixture_make(struct fixture *f)
{
    f->g = net_seg(false);
    f->ref = reference(&f->g);
    f->count = param_count(f->ref);
    assert_int_equal(f->count, 200 * 65 + 130 * 201 + 10 * 131);
    f->params = malloc(f->count * sizeof(float));
    assert_non_null(f->params);
    params_get(f->ref, f->params);
    f->blob = sealed_blob(&f->g, f->params, f->count, &f->size);
    uint64_t rng = 0x51DE;
    test_rng_fill(&rng, f->x, BATCH * H0, -1, 1);
    dnn_network_forward_range(f->ref, 0, f->ref->n - 1, f->x, NULL, false);
    memcpy(f->want, f->ref->layers[f->ref->n - 1].output, sizeof(f->want));
}

static void fixture_free(struct fixture *f)
{
    free(f->blob);
    free(f->params);
    dnn_network_free(f->ref);
}

/* ------------------------------------------------------------------ tests */

static void test_sealed_blob_streams_as_engine(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks c;
    struct ta t;
    size_t at = 0;
    uint64_t seen = 0;
    float y[BATCH * CLASSES];
    fixture_make(&f);

    open_session(&t, &f.g, WORK);
    assert_int_equal(import_sealed(&t, f.blob, f.size, &c, &at, &seen), TEEC_SUCCESS);
    assert_int_equal(c.n, 14 + 26 + 2); /* rows per 4 KiB: 15 of 64 inputs, 5 of 200, 7 of 130 */
    assert_int_equal(seen, 1234);
    memset(y, 0, sizeof(y));
    pass(&t, &c, f.x, y);
    assert_memory_equal(y, f.want, sizeof(y));
    memset(y, 0, sizeof(y));
    pass(&t, &c, f.x, y); /* the chunks stay valid for every pass */
    assert_memory_equal(y, f.want, sizeof(y));

    /* No two neighbouring parameters in plain in any chunk (8 bytes: 4 would match
     * ciphertext by chance). */
    for (size_t k = 0; k < c.n; k++)
        for (size_t j = 0; j + 1 < f.count; j += 7)
            if (memmem(c.blob[k], c.size[k], &f.params[j], 2 * sizeof(float)))
                fail_msg("chunk %zu holds parameters %zu, %zu in plain", k, j, j + 1);

    /* The import is all or nothing at chunk granularity: chunks out of order end it. */
    struct chunks d;
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_OUTPUT);
    op.params[0].value.a = 3;
    uint8_t buf[WORK + 256];
    set_mem(&op, 1, f.blob, f.size);
    set_mem(&op, 2, buf, sizeof(buf));
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_IMPORT_SEALED, &op), TEEC_ERROR_BAD_STATE);
    /* ... and the session's good chunks still run. */
    pass(&t, &c, f.x, y);
    assert_memory_equal(y, f.want, sizeof(y));
    chunks_free(&c);
    ta_stop(&t);

    /* A resident session is refused the command: LOAD_SEALED is its way. */
    open_session(&t, &f.g, 0);
    assert_int_equal(import_sealed(&t, f.blob, f.size, &d, &at, &seen), TEEC_ERROR_BAD_STATE);
    assert_int_equal(d.n, 0);
    ta_stop(&t);

    /* A training session is refused an inference-only blob (the request is outside the
     * sealed policy), as LOAD_SEALED refuses it. */
    struct seg tg = net_seg(true);
    tg.output_policy = DZ_OUTPUT_TOP1;
    open_session(&t, &tg, WORK);
    assert_int_equal(import_sealed(&t, f.blob, f.size, &d, &at, &seen), TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(d.n, 0);
    ta_stop(&t);
    fixture_free(&f);
}

/* One tampering of the blob: refused, no pass afterwards, and none of its chunks accepted
 * in a pass over a good import's chunks either. */
static void expect_tamper_refused(const struct fixture *f, const uint8_t *bad, size_t bad_size,
                                  size_t refused_at)
{
    struct chunks good, partial;
    struct ta t;
    size_t at = 0;
    uint64_t seen = 0;
    uint32_t next = 0;
    float y[BATCH * CLASSES];

    open_session(&t, &f->g, WORK);
    assert_int_equal(import_sealed(&t, bad, bad_size, &partial, &at, &seen), TEEC_ERROR_SECURITY);
    assert_int_equal(at, refused_at);
    assert_int_equal(partial.n, refused_at);
    /* Refused at chunk 0, nothing changed; later, the session holds nothing usable: no pass
     * starts. */
    if (refused_at > 0)
        assert_int_equal(begin(&t, f->x, &next), TEEC_ERROR_BAD_STATE);
    /* A good import; then a pass that is given the refused import's chunk k instead. */
    assert_int_equal(import_sealed(&t, f->blob, f->size, &good, &at, &seen), TEEC_SUCCESS);
    for (size_t k = 0; k < partial.n; k += partial.n / 4 + 1) {
        assert_int_equal(begin(&t, f->x, &next), TEEC_SUCCESS);
        for (size_t j = 0; j < k; j++)
            assert_int_equal(feed(&t, good.blob[j], good.size[j], &next, y), TEEC_SUCCESS);
        assert_int_equal(next, k);
        assert_int_equal(feed(&t, partial.blob[k], partial.size[k], &next, y), TEEC_ERROR_SECURITY);
    }
    pass(&t, &good, f->x, y);
    assert_memory_equal(y, f->want, sizeof(y));
    ta_stop(&t);
    chunks_free(&good);
    /* Nor in another session. */
    if (partial.n) {
        open_session(&t, &f->g, WORK);
        assert_int_equal(import_sealed(&t, f->blob, f->size, &good, &at, &seen), TEEC_SUCCESS);
        assert_int_equal(begin(&t, f->x, &next), TEEC_SUCCESS);
        assert_int_equal(feed(&t, partial.blob[0], partial.size[0], &next, y), TEEC_ERROR_SECURITY);
        ta_stop(&t);
    }
    chunks_free(&good);
    chunks_free(&partial);
}

/* The plain import (DZ_CMD_STREAM_IMPORT) of the fixture's parameters, cut as the TA cuts
 * them for WORK bytes: per connected layer, blocks of whole rows (biases, then weight rows). */
static void import_plain(struct ta *t, const struct fixture *f, struct chunks *out)
{
    out->n = 0;
    const float *at = f->params;
    for (size_t i = 0; i < f->ref->n; i++) {
        const struct dnn_layer *l = &f->ref->layers[i];
        if (!l->n_params)
            continue;
        const size_t outs = (size_t)l->out_c, ins = l->inputs;
        const size_t r = WORK / ((ins + 1) * sizeof(float));
        for (size_t row0 = 0; row0 < outs; row0 += r) {
            const size_t rows = outs - row0 < r ? outs - row0 : r;
            const size_t plain = rows * (ins + 1) * sizeof(float);
            float *p = malloc(plain);
            const size_t sealed = sizeof(struct dz_chunk_header) + plain + DZ_SEALED_TAG_BYTES;
            uint8_t *buf = malloc(sealed);
            assert_true(p && buf && out->n < MAX_CHUNKS);
            memcpy(p, at + row0, rows * sizeof(float));
            memcpy(p + rows, at + outs + row0 * ins, rows * ins * sizeof(float));
            TEEC_Operation op;
            memset(&op, 0, sizeof(op));
            op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
            op.params[0].value.a = (uint32_t)out->n;
            set_mem(&op, 1, p, plain);
            set_mem(&op, 2, buf, sealed);
            assert_int_equal(invoke(t, DZ_CMD_STREAM_IMPORT, &op), TEEC_SUCCESS);
            free(p);
            out->blob[out->n] = buf;
            out->size[out->n++] = sealed;
        }
        at += outs * (ins + 1);
    }
}

/* After a refused sealed import the session takes the normal world's own parameters again
 * (a plain import), and runs with them. */
static void test_plain_import_after_refusal(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks partial, plain;
    struct ta t;
    size_t at = 0;
    uint64_t seen = 0;
    uint32_t next = 0;
    float y[BATCH * CLASSES];
    fixture_make(&f);
    f.blob[f.size - 1] ^= 0x80;
    open_session(&t, &f.g, WORK);
    assert_int_equal(import_sealed(&t, f.blob, f.size, &partial, &at, &seen), TEEC_ERROR_SECURITY);
    assert_int_equal(begin(&t, f.x, &next), TEEC_ERROR_BAD_STATE);
    import_plain(&t, &f, &plain);
    assert_int_equal(plain.n, 42);
    memset(y, 0, sizeof(y));
    pass(&t, &plain, f.x, y);
    assert_memory_equal(y, f.want, sizeof(y));
    ta_stop(&t);
    chunks_free(&partial);
    chunks_free(&plain);
    fixture_free(&f);
}

/* One STREAM_IMPORT_SEALED call of chunk 0 with a window of @window bytes of the blob. */
static TEEC_Result import_first(struct ta *t, const struct fixture *f, size_t window,
                                uint8_t *chunk, size_t chunk_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_OUTPUT);
    op.params[0].value.a = 0;
    set_mem(&op, 1, f->blob, window);
    set_mem(&op, 2, chunk, chunk_size);
    return invoke(t, DZ_CMD_STREAM_IMPORT_SEALED, &op);
}

/* Windows of the blob: one too short for its chunk ends the import; a session closed half
 * way through an import frees it cleanly (the import wipes the working buffer: it must still
 * be there, which ASan and the simulated TA heap check); a plain import after a sealed one
 * streams. */
static void test_import_windows_and_close(void **state)
{
    (void)state;
    struct fixture f;
    struct ta t;
    uint32_t next = 0;
    static uint8_t chunk[WORK + 4096];
    fixture_make(&f);
    const size_t header = sizeof(struct dz_sealed_header);

    open_session(&t, &f.g, WORK);
    assert_int_equal(import_first(&t, &f, header + 10, chunk, sizeof(chunk)), TEEC_ERROR_SECURITY);
    assert_int_equal(begin(&t, f.x, &next), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    open_session(&t, &f.g, WORK);
    assert_int_equal(import_first(&t, &f, f.size, chunk, sizeof(chunk)), TEEC_SUCCESS);
    ta_stop(&t);                  /* closed with the import under way: the instance ends cleanly */
    open_session(&t, &f.g, WORK); /* the TA still serves a session */
    assert_false(tee_log_contains(&env, "exited with status"));
    assert_false(tee_log_contains(&env, "died of signal"));
    struct chunks good;
    size_t at = 0;
    uint64_t seen = 0;
    float y[BATCH * CLASSES];
    assert_int_equal(import_sealed(&t, f.blob, f.size, &good, &at, &seen), TEEC_SUCCESS);
    pass(&t, &good, f.x, y);
    assert_memory_equal(y, f.want, sizeof(y));
    /* The sealed import bound this inference session to its save; a plain import after it
     * is a new save the session follows. */
    struct chunks plain;
    import_plain(&t, &f, &plain);
    memset(y, 0, sizeof(y));
    pass(&t, &plain, f.x, y);
    assert_memory_equal(y, f.want, sizeof(y));
    ta_stop(&t);
    chunks_free(&good);
    chunks_free(&plain);
    fixture_free(&f);
}

static void test_tampered_blob_refused(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t *bad = malloc(f.size);
    assert_non_null(bad);
    const size_t header = sizeof(struct dz_sealed_header);

    /* A flipped ciphertext byte: GCM lets its chunk through, the tag refuses the blob. */
    memcpy(bad, f.blob, f.size);
    bad[header + 20000] ^= 0x10;
    expect_tamper_refused(&f, bad, f.size, 41);
    /* A flipped tag byte. */
    memcpy(bad, f.blob, f.size);
    bad[f.size - 3] ^= 0x01;
    expect_tamper_refused(&f, bad, f.size, 41);
    /* One byte short: chunks come in windows, so only the last one, which must end with
     * the tag, finds the blob short. */
    expect_tamper_refused(&f, f.blob, f.size - 1, 41);
    /* A flipped header byte the TA does not check up front (`seen`): the tag refuses it. */
    memcpy(bad, f.blob, f.size);
    bad[offsetof(struct dz_sealed_header, seen_lo)] ^= 0x01;
    expect_tamper_refused(&f, bad, f.size, 41);
    assert_true(tee_log_contains(&env, "no chunk of this import is valid"));
    free(bad);
    fixture_free(&f);
}

/* ------------------------------------------- convolutional and batch-normalised */

/* [net] 8x8x3; conv 8 3x3 (the normal world's); then conv 16 3x3 BN leaky, maxpool, conv 24
 * 3x3 BN leaky, conv 10 1x1 linear, avgpool, softmax. */
enum { CONV_LAYERS = 7, CONV_FIRST = 1 };

static void conv_net(struct dnn_net_config *cfg, struct dnn_layer_spec *specs, bool connected_bn)
{
    *cfg = net_cfg;
    cfg->h = 8;
    cfg->w = 8;
    cfg->c = 3;
    memset(specs, 0, CONV_LAYERS * sizeof(*specs));
    const struct dnn_layer_spec conv = {.kind = DNN_LAYER_CONVOLUTIONAL,
                                        .activation = DNN_ACT_LEAKY,
                                        .size = 3,
                                        .stride = 1,
                                        .pad = 1,
                                        .groups = 1};
    specs[0] = conv;
    specs[0].filters = 8;
    specs[1] = conv;
    specs[1].filters = 16;
    specs[1].batch_normalize = true;
    specs[2] = (struct dnn_layer_spec){.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2};
    specs[3] = conv;
    specs[3].filters = 24;
    specs[3].batch_normalize = true;
    specs[4] = conv;
    specs[4].filters = CLASSES;
    specs[4].size = 1;
    specs[4].pad = 0;
    specs[4].activation = DNN_ACT_LINEAR;
    specs[5] = (struct dnn_layer_spec){.kind = DNN_LAYER_AVGPOOL};
    if (connected_bn)
        specs[5] = (struct dnn_layer_spec){.kind = DNN_LAYER_CONNECTED,
                                           .activation = DNN_ACT_LINEAR,
                                           .outputs = CLASSES,
                                           .batch_normalize = true};
    specs[6] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
}

/* A blob of a segment with batch-normalised convolutions: its import places every tensor
 * (biases, scales, rolling statistics before the weights in the blob) where the chunks want
 * them, to the engine's scores; a batch-normalised connected layer, whose BN triple follows
 * its weights in the blob, is refused. */
static void test_conv_bn_blob_streams_as_engine(void **state)
{
    (void)state;
    struct dnn_net_config cfg;
    struct dnn_layer_spec specs[CONV_LAYERS];
    conv_net(&cfg, specs, false);
    struct seg g = {.cfg = &cfg,
                    .specs = specs,
                    .n_layers = CONV_LAYERS,
                    .first = CONV_FIRST,
                    .last = CONV_LAYERS - 1,
                    .batch = BATCH,
                    .output_policy = DZ_OUTPUT_SCORES,
                    .seed = 12};
    struct dnn_network *ref = reference(&g);
    uint64_t rng = 0xB0B;
    for (size_t i = 0; i < ref->n; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++) {
            const struct dnn_param *prm = &ref->layers[i].params[p];
            const bool var = strcmp(prm->name, "rolling_variance") == 0;
            if (strcmp(prm->name, "weights") != 0)
                test_rng_fill(&rng, prm->value, prm->count, var ? 0.5f : -0.3f, var ? 2 : 0.3f);
        }
    const size_t count = param_count(ref);
    float *params = malloc(count * sizeof(float));
    assert_non_null(params);
    params_get(ref, params);
    size_t size = 0;
    uint8_t *blob = sealed_blob(&g, params, count, &size);
    const size_t in_floats = (size_t)BATCH * ref->layers[0].inputs;
    float *x = malloc(in_floats * sizeof(float)), y[BATCH * CLASSES];
    assert_non_null(x);
    test_rng_fill(&rng, x, in_floats, -1, 1);
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    const float *want = ref->layers[ref->n - 1].output;

    struct ta t;
    struct chunks c;
    size_t at = 0;
    uint64_t seen = 0;
    open_session(&t, &g, WORK);
    assert_int_equal(import_sealed(&t, blob, size, &c, &at, &seen), TEEC_SUCCESS);
    /* Floats a filter: layer 1 76 (8 * 9 weights, bias, BN's 3), 13 per 4 KiB, 2 chunks;
     * layer 3 148, 6 per chunk, 4 chunks; the 1x1 layer 25, one chunk. */
    assert_int_equal(c.n, 2 + 4 + 1);
    assert_int_equal(seen, 1234);
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, x, in_floats * sizeof(float));
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_BEGIN, &op), TEEC_SUCCESS);
    for (size_t k = 0; k < c.n; k++) {
        assert_int_equal(op.params[1].value.a, k);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
        set_mem(&op, 0, c.blob[k], c.size[k]);
        set_mem(&op, 2, y, sizeof(y));
        assert_int_equal(invoke(&t, DZ_CMD_STREAM_CHUNK, &op), TEEC_SUCCESS);
    }
    assert_int_equal(op.params[1].value.a, DZ_STREAM_DONE);
    assert_memory_equal(y, want, sizeof(y));
    chunks_free(&c);
    ta_stop(&t);
    free(blob);
    free(params);
    dnn_network_free(ref);

    /* A batch-normalised connected layer: its blob cannot be cut in order, refused. */
    conv_net(&cfg, specs, true);
    ref = reference(&g);
    const size_t count2 = param_count(ref);
    params = malloc(count2 * sizeof(float));
    assert_non_null(params);
    params_get(ref, params);
    blob = sealed_blob(&g, params, count2, &size);
    open_session(&t, &g, WORK);
    assert_int_equal(import_sealed(&t, blob, size, &c, &at, &seen), TEEC_ERROR_NOT_SUPPORTED);
    assert_int_equal(c.n, 0);
    assert_true(tee_log_contains(&env, "its weights are not its last tensor"));
    ta_stop(&t);
    free(blob);
    free(params);
    free(x);
    dnn_network_free(ref);
}

static int group_setup(void **state)
{
    (void)state;
    init_net();
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
        cmocka_unit_test(test_sealed_blob_streams_as_engine),
        cmocka_unit_test(test_tampered_blob_refused),
        cmocka_unit_test(test_conv_bn_blob_streams_as_engine),
        cmocka_unit_test(test_plain_import_after_refusal),
        cmocka_unit_test(test_import_windows_and_close),
    };
    return cmocka_run_group_tests_name("ta_stream_sealed", tests, group_setup, group_teardown);
}
