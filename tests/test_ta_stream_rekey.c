/*
 * test_ta_stream_rekey.c - the two ways between a streamed save's kinds (issue 11), through the
 * simulated TEE's client API with the protocol's raw commands:
 *  - a training save's chunks (parameters and momenta, half the rows of a 4 KiB working
 *    buffer) stream in an inference session after a kept save's load with
 *    DZ_STREAM_KEPT_UPDATES: scores byte-identical to the engine's; without the flag they are
 *    refused, and a plain import afterwards cuts as the session again;
 *  - DZ_CMD_STREAM_REKEY moves the chunks of a device-sealed blob's import (the normal world's
 *    own: no owner version) to the chunk key: the re-keyed chunks stream, as a training save,
 *    to the engine's scores; the import's chunks are refused from then on;
 *  - the hostile orders and replays: re-key twice, out of order, a chunk of another import of
 *    the same blob, a chunk of an older generation, an altered chunk, a pass during a re-key,
 *    re-key after a refusal, re-key without a sealed import or in an inference session; an
 *    owner's blob and a device checkpoint of it (owner version 1) are refused
 *    (ACCESS_DENIED) and the session keeps running under the owner's policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include <tee_client_api.h>

#include "darknet/error.h"
#include "dnn/dnn.h"
#include "host/owner_seal.h"
#include "ta/include/darknetz_ta.h"
#include "ta/include/dz_wire.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

enum { N_LAYERS = 5, FIRST = 1, LAST = 4, BATCH = 2, IN = 32, H0 = 64, CLASSES = 10 };
enum { WORK = 4096, MAX_CHUNKS = 128 };

static struct dnn_net_config net_cfg;
static struct dnn_layer_spec net_specs[N_LAYERS];

/* connected 32 -> 64 (the normal world's), then connected 64 -> 200 relu, 200 -> 130 relu,
 * 130 -> 10, softmax: in training 7, 2 and 3 rows per 4 KiB chunk, 98 chunks. */
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

static void open_session(struct ta *t, bool training, uint32_t chunk_bytes)
{
    const struct seg g = net_seg(training);
    size_t size = 0;
    uint8_t *blob = make_blob(&g, &size);
    blob_header(blob)->stream_chunk_bytes = chunk_bytes;
    ta_start(t);
    uint64_t need = 0;
    assert_int_equal(ta_open_model(t, blob, size, &need), TEEC_SUCCESS);
    free(blob);
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

/* The engine's segment, its parameters, an input and the scores they give. */
struct fixture {
    struct dnn_network *ref;
    float *params;
    size_t count;
    float x[BATCH * H0], truth[BATCH * CLASSES], want[BATCH * CLASSES];
};

static void fixture_make(struct fixture *f)
{
    const struct seg g = net_seg(false);
    f->ref = reference(&g);
    f->count = param_count(f->ref);
    f->params = malloc(f->count * sizeof(float));
    assert_non_null(f->params);
    params_get(f->ref, f->params);
    uint64_t rng = 0x4E7;
    test_rng_fill(&rng, f->x, BATCH * H0, -1, 1);
    memset(f->truth, 0, sizeof(f->truth));
    f->truth[3] = 1;
    f->truth[CLASSES + 7] = 1;
    dnn_network_forward_range(f->ref, 0, f->ref->n - 1, f->x, NULL, false);
    memcpy(f->want, f->ref->layers[f->ref->n - 1].output, sizeof(f->want));
}

static void fixture_free(struct fixture *f)
{
    free(f->params);
    dnn_network_free(f->ref);
}

/* The parameters sealed by this device's TA in a resident training session (SAVE_SEALED):
 * the normal world's own, with the training request's policy and no owner version. */
static uint8_t *device_blob(const struct fixture *f, size_t *size)
{
    struct ta t;
    open_session(&t, true, 0);
    assert_int_equal(ta_load_plain(&t, f->params, f->count * sizeof(float), 600), TEEC_SUCCESS);
    *size = 0;
    assert_int_equal(ta_save(&t, NULL, size), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *blob = malloc(*size);
    assert_non_null(blob);
    assert_int_equal(ta_save(&t, blob, size), TEEC_SUCCESS);
    ta_stop(&t);
    return blob;
}

/* darknetz_ta.h's model digest of the segment (no tree softmax: specs, then shapes). */
static void model_digest(uint8_t digest[32])
{
    const struct seg g = net_seg(false);
    const size_t n = LAST - FIRST + 1;
    struct dz_wire_spec w[LAST - FIRST + 1];
    struct dnn_network *ref = reference(&g);
    const size_t shape_bytes = dz_wire_shape_size(ref->n);
    uint8_t *buf = malloc(sizeof(w) + shape_bytes);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        dz_wire_encode_spec(&net_specs[FIRST + i], &w[i]);
    memcpy(buf, w, sizeof(w));
    dz_wire_shape_bytes(FIRST, LAST, N_LAYERS, ref->layers, ref->n, buf + sizeof(w));
    SHA256(buf, sizeof(w) + shape_bytes, digest);
    free(buf);
    dnn_network_free(ref);
}

/* The owner's model for this device (release 1), allowing training at this request. */
static uint8_t *owner_blob(const struct fixture *f, size_t *size)
{
    struct dz_owner_seal s;
    struct dk_error err = {{0}};
    struct ta t;
    uint8_t *blob = NULL;
    size_t pub_size = DZ_X25519_BYTES;
    memset(&s, 0, sizeof(s));
    ta_start(&t);
    assert_int_equal(ta_get_pubkey(&t, s.device_pub, &pub_size), TEEC_SUCCESS);
    ta_stop(&t);
    model_digest(s.model_digest);
    s.first = FIRST;
    s.last = LAST;
    s.n_layers = N_LAYERS;
    s.seen = 600;
    s.model_version = 1;
    s.policy = (struct dz_policy){.modes = DZ_MODES_ALL,
                                  .output = DZ_OUTPUT_SCORES,
                                  .top_k_max = 1,
                                  .batch_min = 1,
                                  .batch_max = BATCH,
                                  .subdivisions_max = 1,
                                  .learning_rate_max = 1,
                                  .momentum_max = 1,
                                  .decay_max = 1};
    if (dz_owner_seal(&s, f->params, f->count, &blob, size, &err) != 0)
        fail_msg("%s", err.msg);
    return blob;
}

/* STREAM_IMPORT_SEALED of the whole blob, one call per chunk. */
static TEEC_Result import_sealed(struct ta *t, const uint8_t *blob, size_t size, struct chunks *out)
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
        TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT_SEALED, &op);
        if (res != TEEC_ERROR_SHORT_BUFFER)
            return res;
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
        out->blob[out->n] = buf;
        out->size[out->n++] = chunk;
        off += op.params[0].value.a;
        if (off == size)
            return TEEC_SUCCESS;
    }
    fail_msg("more than %d chunks", MAX_CHUNKS);
    return TEEC_ERROR_GENERIC;
}

/* STREAM_IMPORT of the fixture's plain parameters, cut for WORK bytes as a session of
 * @training cuts them (in training, half the rows: the updates travel too). */
static void import_plain(struct ta *t, const struct fixture *f, bool training, struct chunks *out)
{
    const float *at = f->params;
    out->n = 0;
    for (size_t i = 0; i < f->ref->n; i++) {
        const struct dnn_layer *l = &f->ref->layers[i];
        if (!l->n_params)
            continue;
        const size_t outs = (size_t)l->out_c, ins = l->inputs;
        const size_t r = WORK / ((ins + 1) * sizeof(float) * (training ? 2 : 1));
        for (size_t row0 = 0; row0 < outs; row0 += r) {
            const size_t rows = outs - row0 < r ? outs - row0 : r;
            const size_t params = rows * (ins + 1) * sizeof(float);
            const size_t sealed =
                sizeof(struct dz_chunk_header) + params * (training ? 2 : 1) + DZ_SEALED_TAG_BYTES;
            float *p = malloc(params);
            uint8_t *buf = malloc(sealed);
            assert_true(p && buf && out->n < MAX_CHUNKS);
            memcpy(p, at + row0, rows * sizeof(float));
            memcpy(p + rows, at + outs + row0 * ins, rows * ins * sizeof(float));
            TEEC_Operation op;
            memset(&op, 0, sizeof(op));
            op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
            op.params[0].value.a = (uint32_t)out->n;
            set_mem(&op, 1, p, params);
            set_mem(&op, 2, buf, sealed);
            assert_int_equal(invoke(t, DZ_CMD_STREAM_IMPORT, &op), TEEC_SUCCESS);
            assert_int_equal(op.params[2].tmpref.size, sealed);
            free(p);
            out->blob[out->n] = buf;
            out->size[out->n++] = sealed;
        }
        at += outs * (ins + 1);
    }
}

/* STREAM_IMPORT with DZ_STREAM_DONE: the session will stream chunks it kept. */
static TEEC_Result kept_load(struct ta *t, uint32_t flags)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_VALUE_INPUT);
    op.params[0].value.a = DZ_STREAM_DONE;
    op.params[0].value.b = flags;
    op.params[3].value.a = 600;
    return invoke(t, DZ_CMD_STREAM_IMPORT, &op);
}

/* STREAM_REKEY of chunk @k (@in, @size bytes): the re-sealed chunk into a new buffer *out,
 * which has room for any chunk of a WORK-byte cut. */
static TEEC_Result rekey(struct ta *t, uint32_t k, const uint8_t *in, size_t size, uint8_t **out)
{
    TEEC_Operation op;
    const size_t room = sizeof(struct dz_chunk_header) + WORK + DZ_SEALED_TAG_BYTES;
    *out = malloc(room);
    assert_non_null(*out);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
    op.params[0].value.a = k;
    set_mem(&op, 1, in, size);
    set_mem(&op, 2, *out, room);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_REKEY, &op);
    if (res == TEEC_SUCCESS)
        assert_int_equal(op.params[2].tmpref.size, size);
    if (res != TEEC_SUCCESS) {
        free(*out);
        *out = NULL;
    }
    return res;
}

/* Every chunk of @c re-keyed, in order, into @out. */
static void rekey_all(struct ta *t, const struct chunks *c, struct chunks *out)
{
    out->n = 0;
    for (size_t k = 0; k < c->n; k++) {
        assert_int_equal(rekey(t, (uint32_t)k, c->blob[k], c->size[k], &out->blob[k]),
                         TEEC_SUCCESS);
        assert_memory_not_equal(out->blob[k], c->blob[k], c->size[k]);
        out->size[k] = c->size[k];
        out->n++;
    }
}

/* A forward (inference) pass over @c; the first refusal, or TEEC_SUCCESS with the scores in
 * @y. */
static TEEC_Result infer(struct ta *t, const struct chunks *c, const float *x, float *y)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, x, BATCH * H0 * sizeof(float));
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_BEGIN, &op);
    if (res != TEEC_SUCCESS)
        return res;
    assert_int_equal(op.params[1].value.b, c->n);
    for (size_t k = 0; k < c->n; k++) {
        assert_int_equal(op.params[1].value.a, k);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
        set_mem(&op, 0, c->blob[k], c->size[k]);
        set_mem(&op, 2, y, BATCH * CLASSES * sizeof(float));
        res = invoke(t, DZ_CMD_STREAM_CHUNK, &op);
        if (res != TEEC_SUCCESS)
            return res;
    }
    assert_int_equal(op.params[1].value.a, DZ_STREAM_DONE);
    return TEEC_SUCCESS;
}

/* STREAM_BEGIN of a training forward on the fixture's batch. */
static TEEC_Result begin_train(struct ta *t, const struct fixture *f)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INPUT,
                                     TEEC_MEMREF_TEMP_INPUT);
    set_mem(&op, 0, f->x, sizeof(f->x));
    op.params[2].value.a = DZ_STREAM_FORWARD_TRAIN;
    set_mem(&op, 3, f->truth, sizeof(f->truth));
    return invoke(t, DZ_CMD_STREAM_BEGIN, &op);
}

/* One STREAM_CHUNK of a training forward. */
static TEEC_Result feed_train(struct ta *t, const uint8_t *chunk, size_t size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, chunk, size);
    return invoke(t, DZ_CMD_STREAM_CHUNK, &op);
}

/* A training forward then a BACKWARD pass over @c, whose chunks the TA re-seals at the next
 * generation: they replace @c's, the older ones go to @old. */
static void forward_backward(struct ta *t, const struct fixture *f, struct chunks *c,
                             struct chunks *old)
{
    TEEC_Operation op;
    float delta[BATCH * H0];
    assert_int_equal(begin_train(t, f), TEEC_SUCCESS);
    for (size_t k = 0; k < c->n; k++)
        assert_int_equal(feed_train(t, c->blob[k], c->size[k]), TEEC_SUCCESS);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_VALUE_OUTPUT, TEEC_VALUE_INPUT, TEEC_NONE);
    op.params[2].value.a = DZ_STREAM_BACKWARD;
    assert_int_equal(invoke(t, DZ_CMD_STREAM_BEGIN, &op), TEEC_SUCCESS);
    uint32_t next = op.params[1].value.a;
    old->n = c->n;
    for (size_t i = 0; i < c->n; i++) {
        const uint32_t k = next;
        uint8_t *re = malloc(c->size[k]);
        assert_true(k < c->n && re);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_OUTPUT);
        set_mem(&op, 0, c->blob[k], c->size[k]);
        set_mem(&op, 2, delta, sizeof(delta));
        set_mem(&op, 3, re, c->size[k]);
        assert_int_equal(invoke(t, DZ_CMD_STREAM_CHUNK, &op), TEEC_SUCCESS);
        old->blob[k] = c->blob[k];
        old->size[k] = c->size[k];
        c->blob[k] = re;
        next = op.params[1].value.a;
    }
    assert_int_equal(next, DZ_STREAM_DONE);
}

/* An UPDATE pass over @c (the step of the BACKWARD before it), re-sealed in place. */
static void update_pass(struct ta *t, struct chunks *c)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_VALUE_OUTPUT, TEEC_VALUE_INPUT, TEEC_NONE);
    op.params[2].value.a = DZ_STREAM_UPDATE;
    assert_int_equal(invoke(t, DZ_CMD_STREAM_BEGIN, &op), TEEC_SUCCESS);
    for (size_t k = 0; k < c->n; k++) {
        uint8_t *re = malloc(c->size[k]);
        assert_non_null(re);
        assert_int_equal(op.params[1].value.a, k);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE,
                                         TEEC_MEMREF_TEMP_OUTPUT);
        set_mem(&op, 0, c->blob[k], c->size[k]);
        set_mem(&op, 3, re, c->size[k]);
        assert_int_equal(invoke(t, DZ_CMD_STREAM_CHUNK, &op), TEEC_SUCCESS);
        free(c->blob[k]);
        c->blob[k] = re;
    }
    assert_int_equal(op.params[1].value.a, DZ_STREAM_DONE);
}

/* STREAM_IMPORT_SEALED of the blob's first @calls chunks only: an import left under way. */
static void import_sealed_part(struct ta *t, const uint8_t *blob, size_t size, uint32_t calls)
{
    size_t off = 0;
    for (uint32_t k = 0; k < calls; k++) {
        const size_t room = sizeof(struct dz_chunk_header) + WORK + DZ_SEALED_TAG_BYTES;
        uint8_t *buf = malloc(room);
        assert_non_null(buf);
        TEEC_Operation op;
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_MEMREF_TEMP_INPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_OUTPUT);
        op.params[0].value.a = k;
        set_mem(&op, 1, blob + off, size - off);
        set_mem(&op, 2, buf, room);
        assert_int_equal(invoke(t, DZ_CMD_STREAM_IMPORT_SEALED, &op), TEEC_SUCCESS);
        off += op.params[0].value.a;
        free(buf);
    }
}

/* DZ_CMD_LOAD_CHUNK of training chunk @k of @n into a resident session. */
static TEEC_Result load_chunk(struct ta *t, uint32_t k, uint32_t n, const uint8_t *blob,
                              size_t size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_VALUE_INPUT);
    op.params[0].value.a = k;
    op.params[0].value.b = 1;
    op.params[1].value.a = WORK;
    op.params[1].value.b = n;
    set_mem(&op, 2, blob, size);
    op.params[3].value.a = 600;
    return invoke(t, DZ_CMD_LOAD_CHUNK, &op);
}

/* ------------------------------------------------------------------ tests */

/* A training save's chunks in an inference session: with DZ_STREAM_KEPT_UPDATES, the engine's
 * scores; without it, refused. A plain import then cuts as the session again. */
static void test_training_save_streams_for_inference(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks train, infer_chunks;
    struct ta t;
    float y[BATCH * CLASSES];
    fixture_make(&f);

    open_session(&t, true, WORK);
    import_plain(&t, &f, true, &train);
    assert_int_equal(train.n, 29 + 65 + 4);
    ta_stop(&t);

    open_session(&t, false, WORK);
    /* As an inference save: cut otherwise (98 chunks are not the 42 the session cuts). */
    assert_int_equal(kept_load(&t, 0), TEEC_SUCCESS);
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, f.x, sizeof(f.x));
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_BEGIN, &op), TEEC_SUCCESS);
    assert_int_equal(op.params[1].value.b, 42);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
    set_mem(&op, 0, train.blob[0], train.size[0]);
    set_mem(&op, 2, y, sizeof(y));
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_CHUNK, &op), TEEC_ERROR_SECURITY);
    /* Unknown flag bits are refused. */
    assert_int_equal(kept_load(&t, 2), TEEC_ERROR_BAD_PARAMETERS);
    /* As a training save: every pass gives the engine's scores. */
    assert_int_equal(kept_load(&t, DZ_STREAM_KEPT_UPDATES), TEEC_SUCCESS);
    memset(y, 0, sizeof(y));
    assert_int_equal(infer(&t, &train, f.x, y), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    memset(y, 0, sizeof(y));
    assert_int_equal(infer(&t, &train, f.x, y), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    /* A chunk out of its place is still refused. */
    struct chunks swapped = train;
    swapped.blob[5] = train.blob[6];
    swapped.size[5] = train.size[6];
    assert_int_equal(infer(&t, &swapped, f.x, y), TEEC_ERROR_SECURITY);

    /* The session's own import cuts as the session: 42 inference chunks stream, the training
     * save's are refused again. */
    import_plain(&t, &f, false, &infer_chunks);
    assert_int_equal(infer_chunks.n, 42);
    memset(y, 0, sizeof(y));
    assert_int_equal(infer(&t, &infer_chunks, f.x, y), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    struct chunks first = train;
    first.n = 42;
    assert_int_equal(infer(&t, &first, f.x, y), TEEC_ERROR_SECURITY);
    ta_stop(&t);
    chunks_free(&train);
    chunks_free(&infer_chunks);
    fixture_free(&f);
}

/* A device-sealed blob of the normal world's own, imported in a streamed training session and
 * re-keyed: the new chunks are a training save an inference session streams to the engine's
 * scores; the import's chunks are refused from then on; a second re-key is refused. */
static void test_rekey_own_blob(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks imp, re;
    struct ta t, u;
    size_t size = 0;
    float y[BATCH * CLASSES];
    uint8_t *out = NULL;
    fixture_make(&f);
    uint8_t *blob = device_blob(&f, &size);

    open_session(&t, true, WORK);
    assert_int_equal(import_sealed(&t, blob, size, &imp), TEEC_SUCCESS);
    assert_int_equal(imp.n, 98);
    /* Before the re-key the import's chunks do not open elsewhere: the key is the session's. */
    open_session(&u, false, WORK);
    assert_int_equal(kept_load(&u, DZ_STREAM_KEPT_UPDATES), TEEC_SUCCESS);
    assert_int_equal(infer(&u, &imp, f.x, y), TEEC_ERROR_SECURITY);

    rekey_all(&t, &imp, &re);
    /* Twice: the import's key is gone, nothing to re-key. */
    assert_int_equal(rekey(&t, 0, imp.blob[0], imp.size[0], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 0, re.blob[0], re.size[0], &out), TEEC_ERROR_BAD_STATE);
    /* The import's chunks no longer open, even where the new save's chunk 0 would. */
    assert_int_equal(begin_train(&t, &f), TEEC_SUCCESS);
    assert_int_equal(feed_train(&t, imp.blob[0], imp.size[0]), TEEC_ERROR_SECURITY);
    /* The session trains on the new save: its BACKWARD moves it to generation 1, after which
     * an UPDATE pass refuses the generation-0 chunk (a replay). */
    struct chunks old;
    forward_backward(&t, &f, &re, &old);
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_VALUE_OUTPUT, TEEC_VALUE_INPUT, TEEC_NONE);
    op.params[2].value.a = DZ_STREAM_UPDATE;
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_BEGIN, &op), TEEC_SUCCESS);
    uint8_t *resealed = malloc(old.size[0]);
    assert_non_null(resealed);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE,
                                     TEEC_MEMREF_TEMP_OUTPUT);
    set_mem(&op, 0, old.blob[0], old.size[0]);
    set_mem(&op, 3, resealed, old.size[0]);
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_CHUNK, &op), TEEC_ERROR_SECURITY);
    free(resealed);
    ta_stop(&t);

    /* The re-keyed save (generation 0, and 1 after a BACKWARD that left the parameters
     * alone) streams in an inference session as a training save: the engine's scores. */
    assert_int_equal(kept_load(&u, DZ_STREAM_KEPT_UPDATES), TEEC_SUCCESS);
    memset(y, 0, sizeof(y));
    assert_int_equal(infer(&u, &old, f.x, y), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    memset(y, 0, sizeof(y));
    assert_int_equal(infer(&u, &re, f.x, y), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    assert_int_equal(infer(&u, &imp, f.x, y), TEEC_ERROR_SECURITY);
    /* Generations mixed in one pass: refused. */
    struct chunks mixed = old;
    mixed.blob[50] = re.blob[50];
    mixed.size[50] = re.size[50];
    assert_int_equal(infer(&u, &mixed, f.x, y), TEEC_ERROR_SECURITY);
    ta_stop(&u);
    chunks_free(&old);
    chunks_free(&re);
    chunks_free(&imp);
    free(blob);
    fixture_free(&f);
}

/* Hostile orders: each refusal past chunk 0's checks ends the re-key and the import (no pass,
 * no further re-key) until the normal world imports again. */
static void test_rekey_hostile(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks a, b, plain, gen1, gen0;
    struct ta t, u;
    size_t size = 0;
    uint8_t *out = NULL;
    fixture_make(&f);
    uint8_t *blob = device_blob(&f, &size);

    /* No sealed import: nothing to re-key; nor in an inference or resident session. */
    open_session(&t, true, WORK);
    import_plain(&t, &f, true, &plain);
    assert_int_equal(rekey(&t, 0, plain.blob[0], plain.size[0], &out), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);
    open_session(&t, false, WORK);
    assert_int_equal(import_sealed(&t, blob, size, &a), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);
    chunks_free(&a);
    open_session(&t, true, 0);
    assert_int_equal(rekey(&t, 0, plain.blob[0], plain.size[0], &out), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    /* Two imports of the same blob: another import's chunk is refused, and then nothing
     * re-keys or runs. */
    open_session(&t, true, WORK);
    open_session(&u, true, WORK);
    assert_int_equal(import_sealed(&t, blob, size, &a), TEEC_SUCCESS);
    assert_int_equal(import_sealed(&u, blob, size, &b), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_SUCCESS);
    free(out);
    /* A re-key under way does not start over: chunk 0 again is refused, nothing changes. */
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_BAD_STATE);
    assert_true(tee_log_contains(&env, "a re-key is under way, at chunk 1"));
    /* During the re-key no pass starts. */
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INPUT,
                                     TEEC_MEMREF_TEMP_INPUT);
    set_mem(&op, 0, f.x, sizeof(f.x));
    op.params[2].value.a = DZ_STREAM_FORWARD_TRAIN;
    set_mem(&op, 3, f.truth, sizeof(f.truth));
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_BEGIN, &op), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 1, b.blob[1], b.size[1], &out), TEEC_ERROR_SECURITY);
    /* After the refusal: no re-key, and the import's own chunks no longer run. */
    assert_int_equal(rekey(&t, 1, a.blob[1], a.size[1], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(invoke(&t, DZ_CMD_STREAM_BEGIN, &op), TEEC_ERROR_BAD_STATE);
    /* The other session is untouched: it re-keys its own. */
    struct chunks bre;
    rekey_all(&u, &b, &bre);
    chunks_free(&bre);
    ta_stop(&u);
    chunks_free(&b);

    /* Out of order, a truncated chunk, an altered chunk: each refused, the re-key ended. */
    chunks_free(&a);
    assert_int_equal(import_sealed(&t, blob, size, &a), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_SUCCESS);
    free(out);
    assert_int_equal(rekey(&t, 2, a.blob[2], a.size[2], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 1, a.blob[1], a.size[1], &out), TEEC_ERROR_BAD_STATE);
    chunks_free(&a);
    assert_int_equal(import_sealed(&t, blob, size, &a), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0] - 1, &out), TEEC_ERROR_SECURITY);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_BAD_STATE);
    chunks_free(&a);
    assert_int_equal(import_sealed(&t, blob, size, &a), TEEC_SUCCESS);
    a.blob[0][sizeof(struct dz_chunk_header) + 100] ^= 0x20;
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_SECURITY);
    chunks_free(&a);

    /* Generations: after a BACKWARD the session's chunks are at generation 1; the import's
     * generation-0 chunks are not re-keyed. */
    assert_int_equal(import_sealed(&t, blob, size, &gen1), TEEC_SUCCESS);
    forward_backward(&t, &f, &gen1, &gen0);
    assert_int_equal(rekey(&t, 0, gen1.blob[0], gen1.size[0], &out), TEEC_SUCCESS);
    free(out);
    assert_int_equal(rekey(&t, 1, gen0.blob[1], gen0.size[1], &out), TEEC_ERROR_SECURITY);
    chunks_free(&gen0);
    chunks_free(&gen1);

    /* Re-keyed from generation 1, between a BACKWARD and its UPDATE: the whole new save, then
     * the UPDATE over it and the next iteration (the training state is kept: the parameters
     * did not change). */
    assert_int_equal(import_sealed(&t, blob, size, &gen1), TEEC_SUCCESS);
    forward_backward(&t, &f, &gen1, &gen0);
    struct chunks re;
    rekey_all(&t, &gen1, &re);
    update_pass(&t, &re);
    struct chunks old;
    forward_backward(&t, &f, &re, &old);
    chunks_free(&old);
    chunks_free(&re);
    chunks_free(&gen0);
    chunks_free(&gen1);
    ta_stop(&t);
    chunks_free(&plain);
    free(blob);
    fixture_free(&f);
}

/* An owner's model, and a device checkpoint of it (owner version 1), stay under the import's
 * key: re-keying them would strip the owner's policy. Nothing changes on the refusal. */
static void test_rekey_owner_refused(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks a, old;
    struct ta t;
    size_t size = 0, ck_size = 0;
    uint8_t *out = NULL;
    fixture_make(&f);
    uint8_t *blob = owner_blob(&f, &size);

    open_session(&t, true, WORK);
    assert_int_equal(import_sealed(&t, blob, size, &a), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_ACCESS_DENIED);
    assert_true(tee_log_contains(&env, "an owner's sealed model keeps its policy"));
    forward_backward(&t, &f, &a, &old); /* the session still trains, under the owner's policy */
    chunks_free(&old);
    chunks_free(&a);
    ta_stop(&t);

    /* The owner's model loaded resident and checkpointed by the device: key kind 1, owner
     * version 1 - still the owner's. */
    open_session(&t, true, 0);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_SUCCESS);
    assert_int_equal(ta_save(&t, NULL, &ck_size), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *ck = malloc(ck_size);
    assert_non_null(ck);
    assert_int_equal(ta_save(&t, ck, &ck_size), TEEC_SUCCESS);
    ta_stop(&t);
    struct dz_sealed_header h;
    memcpy(&h, ck, sizeof(h));
    assert_int_equal(h.key_kind, DZ_KEY_DEVICE);
    assert_int_equal(h.model_version, 1);
    open_session(&t, true, WORK);
    assert_int_equal(import_sealed(&t, ck, ck_size, &a), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, a.blob[0], a.size[0], &out), TEEC_ERROR_ACCESS_DENIED);
    ta_stop(&t);
    chunks_free(&a);
    free(ck);
    free(blob);
    fixture_free(&f);
}

/* An owner's import and the normal world's own blob in one session, in every order a hostile
 * normal world can give them: the owner's chunks never reach the chunk key (no re-key of
 * them, before, during or after an own blob's import or re-key), so no kept save's load or
 * LOAD_CHUNK ever opens them; the own blob's re-keyed chunks load resident, as any streamed
 * save of the normal world's own. */
static void test_rekey_owner_and_own_mixed(void **state)
{
    (void)state;
    struct fixture f;
    struct chunks own, owner, re;
    struct ta t, u;
    size_t own_size = 0, owner_size = 0;
    uint8_t *out = NULL;
    float y[BATCH * CLASSES];
    fixture_make(&f);
    uint8_t *own_blob = device_blob(&f, &own_size);
    uint8_t *owner_b = owner_blob(&f, &owner_size);

    /* The owner's import, then an own import left under way: nothing to re-key. */
    open_session(&t, true, WORK);
    assert_int_equal(import_sealed(&t, owner_b, owner_size, &owner), TEEC_SUCCESS);
    import_sealed_part(&t, own_blob, own_size, 1);
    assert_int_equal(rekey(&t, 0, owner.blob[0], owner.size[0], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 1, owner.blob[1], owner.size[1], &out), TEEC_ERROR_BAD_STATE);

    /* An own import whole, its re-key half way, then the owner's blob imported: the re-key
     * ends with the own import, and the owner's import does not take it over. */
    assert_int_equal(import_sealed(&t, own_blob, own_size, &own), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 0, own.blob[0], own.size[0], &out), TEEC_SUCCESS);
    free(out);
    chunks_free(&owner);
    assert_int_equal(import_sealed(&t, owner_b, owner_size, &owner), TEEC_SUCCESS);
    assert_int_equal(rekey(&t, 1, own.blob[1], own.size[1], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 1, owner.blob[1], owner.size[1], &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(rekey(&t, 0, owner.blob[0], owner.size[0], &out), TEEC_ERROR_ACCESS_DENIED);
    /* The owner's import still runs, under its policy and key. */
    struct chunks old;
    forward_backward(&t, &f, &owner, &old);
    chunks_free(&old);

    /* The own blob again, re-keyed whole: the session is the normal world's own. */
    chunks_free(&own);
    assert_int_equal(import_sealed(&t, own_blob, own_size, &own), TEEC_SUCCESS);
    rekey_all(&t, &own, &re);
    ta_stop(&t);

    /* An inference session that streamed the owner's import takes a kept save: the owner's
     * chunks (of another session's key, and of the import it dropped) are refused, the
     * re-keyed ones give the engine's scores. */
    open_session(&u, false, WORK);
    struct chunks inf_owner;
    assert_int_equal(import_sealed(&u, owner_b, owner_size, &inf_owner), TEEC_SUCCESS);
    assert_int_equal(kept_load(&u, DZ_STREAM_KEPT_UPDATES), TEEC_SUCCESS);
    assert_int_equal(infer(&u, &owner, f.x, y), TEEC_ERROR_SECURITY);
    memset(y, 0, sizeof(y));
    assert_int_equal(infer(&u, &re, f.x, y), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    ta_stop(&u);
    chunks_free(&inf_owner);

    /* Resident: LOAD_CHUNK opens the re-keyed save (the normal world's own) and never the
     * owner's chunks. */
    open_session(&u, false, 0);
    for (size_t k = 0; k < owner.n; k++)
        if (load_chunk(&u, (uint32_t)k, (uint32_t)owner.n, owner.blob[k], owner.size[k]) !=
            TEEC_SUCCESS) {
            assert_int_equal(k, 0);
            break;
        }
    size_t out_size = sizeof(y);
    assert_int_equal(ta_forward(&u, f.x, sizeof(f.x), NULL, 0, 0, y, &out_size),
                     TEEC_ERROR_BAD_STATE);
    for (size_t k = 0; k < re.n; k++)
        assert_int_equal(load_chunk(&u, (uint32_t)k, (uint32_t)re.n, re.blob[k], re.size[k]),
                         TEEC_SUCCESS);
    memset(y, 0, sizeof(y));
    out_size = sizeof(y);
    assert_int_equal(ta_forward(&u, f.x, sizeof(f.x), NULL, 0, 0, y, &out_size), TEEC_SUCCESS);
    assert_memory_equal(y, f.want, sizeof(y));
    ta_stop(&u);

    chunks_free(&re);
    chunks_free(&own);
    chunks_free(&owner);
    free(owner_b);
    free(own_blob);
    fixture_free(&f);
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
        cmocka_unit_test(test_training_save_streams_for_inference),
        cmocka_unit_test(test_rekey_own_blob),
        cmocka_unit_test(test_rekey_hostile),
        cmocka_unit_test(test_rekey_owner_refused),
        cmocka_unit_test(test_rekey_owner_and_own_mixed),
    };
    return cmocka_run_group_tests_name("ta_stream_rekey", tests, group_setup, group_teardown);
}
