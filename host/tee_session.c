/*
 * tee_session.c - the client side of the DarkneTZ TA protocol (see tee_session.h).
 */
#include "host/tee_session.h"

#include "host/partition.h"
#include "ta/include/dz_wire.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

/* Regions of the shared block are aligned to this. */
#define REGION_ALIGN 64

enum region { R_INPUT, R_TRUTH, R_OUTPUT, R_DELTA_IN, R_DELTA_OUT, R_PRED, R_COUNT };

struct dz_tee {
    TEEC_Context ctx;
    TEEC_Session sess;
    bool ctx_open, sess_open;
    TEEC_SharedMemory shm;
    bool shm_open;
    size_t data_size; /* TA_DATA_SIZE */
    int first, last, batch;
    bool training, takes_truth;
    bool scores;                /* DZ_OUTPUT_SCORES: R_PRED holds floats */
    uint32_t model_version;     /* of the last sealed load */
    struct dz_model_header hdr; /* as sent by OPEN_MODEL */
    size_t off[R_COUNT], len[R_COUNT];
    FILE *record;             /* DZ_TEE_RECORD, or NULL */
    unsigned char *shm_prior; /* recording: the shared block as the call began */
    /* Weight streaming (hdr.stream_chunk_bytes != 0): the sealed chunks the normal world
     * keeps for the TA, made by DZ_CMD_STREAM_IMPORT and handed over on each pass. */
    const struct dnn_network *shapes; /* borrowed: the model's shapes, for the chunk cuts */
    size_t n_chunks;
    uint8_t **chunk;    /* (n_chunks) sealed chunks */
    size_t *chunk_size; /* (n_chunks) their bytes */
    bool sealed_stream; /* the chunks came from a sealed blob (DZ_CMD_STREAM_IMPORT_SEALED) */
    bool chunk_updates; /* they carry update buffers: a training session's, or a training
                         * save kept by an inference session (DZ_STREAM_KEPT_UPDATES) */
    char *chunk_file;   /* the streamed save's file the chunks came from, or NULL: named when
                         * the TA refuses one (only a pass authenticates a kept save's chunks) */
    bool no_step;       /* the TA answered DZ_CMD_TRAIN_STEP with NOT_SUPPORTED (an older TA) */
};

static const TEEC_UUID ta_uuid = DZ_TA_UUID;

/* ------------------------------------------------------------ messages */

const char *dz_teec_result_name(uint32_t res)
{
    switch (res) {
    case TEEC_SUCCESS:
        return "TEEC_SUCCESS";
    case TEEC_ERROR_GENERIC:
        return "TEEC_ERROR_GENERIC";
    case TEEC_ERROR_ACCESS_DENIED:
        return "TEEC_ERROR_ACCESS_DENIED";
    case TEEC_ERROR_CANCEL:
        return "TEEC_ERROR_CANCEL";
    case TEEC_ERROR_BAD_FORMAT:
        return "TEEC_ERROR_BAD_FORMAT";
    case TEEC_ERROR_BAD_PARAMETERS:
        return "TEEC_ERROR_BAD_PARAMETERS";
    case TEEC_ERROR_BAD_STATE:
        return "TEEC_ERROR_BAD_STATE";
    case TEEC_ERROR_ITEM_NOT_FOUND:
        return "TEEC_ERROR_ITEM_NOT_FOUND";
    case TEEC_ERROR_NOT_IMPLEMENTED:
        return "TEEC_ERROR_NOT_IMPLEMENTED";
    case TEEC_ERROR_NOT_SUPPORTED:
        return "TEEC_ERROR_NOT_SUPPORTED";
    case TEEC_ERROR_OUT_OF_MEMORY:
        return "TEEC_ERROR_OUT_OF_MEMORY";
    case TEEC_ERROR_BUSY:
        return "TEEC_ERROR_BUSY";
    case TEEC_ERROR_COMMUNICATION:
        return "TEEC_ERROR_COMMUNICATION";
    case TEEC_ERROR_SECURITY:
        return "TEEC_ERROR_SECURITY";
    case TEEC_ERROR_SHORT_BUFFER:
        return "TEEC_ERROR_SHORT_BUFFER";
    case TEEC_ERROR_TARGET_DEAD:
        return "TEEC_ERROR_TARGET_DEAD";
    default:
        return "TEEC error";
    }
}

static const char *origin_name(uint32_t origin)
{
    switch (origin) {
    case TEEC_ORIGIN_API:
        return "client API";
    case TEEC_ORIGIN_COMMS:
        return "communication";
    case TEEC_ORIGIN_TEE:
        return "TEE";
    case TEEC_ORIGIN_TRUSTED_APP:
        return "TA";
    default:
        return "unknown";
    }
}

/* One message for a failed call; `what` names the command. */
static int tee_fail(struct dk_error *err, const char *what, TEEC_Result res, uint32_t origin)
{
    switch (res) {
    case TEEC_ERROR_TARGET_DEAD:
        return dk_fail(err, "%s: the TA died (origin %s)", what, origin_name(origin));
    case TEEC_ERROR_BAD_STATE:
        return dk_fail(err, "%s: the TA refused a command out of order (origin %s)", what,
                       origin_name(origin));
    case TEEC_ERROR_BAD_PARAMETERS:
        return dk_fail(err,
                       "%s: the %s refused the parameters (TEEC_ERROR_BAD_PARAMETERS); are "
                       "darknetp and the TA built from the same protocol header?",
                       what, origin == TEEC_ORIGIN_TRUSTED_APP ? "TA" : origin_name(origin));
    case TEEC_ERROR_OUT_OF_MEMORY:
        return dk_fail(err, "%s: out of secure memory (origin %s)", what, origin_name(origin));
    default:
        return dk_fail(err, "%s failed: %s (0x%08x, origin %s)", what, dz_teec_result_name(res),
                       (unsigned)res, origin_name(origin));
    }
}

/* ----------------------------------------------------------- recording */

static void record_bytes(struct dz_tee *t, const void *buf, size_t len)
{
    if (t->record && buf && len)
        fwrite(buf, 1, len, t->record);
}

/*
 * The shared block as a call begins, so that record_call keeps only what the call changed.
 * Without it every input the host wrote there (the activations of layer A-1, thousands of
 * floats) would be "received" too, and a protected float turns up among them by chance.
 */
static void record_before(struct dz_tee *t)
{
    if (!t->record || !t->shm_open)
        return;
    if (!t->shm_prior)
        t->shm_prior = malloc(t->shm.size);
    if (t->shm_prior)
        memcpy(t->shm_prior, t->shm.buffer, t->shm.size);
}

/* The 4-byte words of the shared block that the call changed, in order (floats stay whole). */
static void record_shared(struct dz_tee *t)
{
    const unsigned char *now = t->shm.buffer;
    if (!t->shm_prior) { /* no snapshot (out of memory): all of it, as a superset */
        record_bytes(t, now, t->shm.size);
        return;
    }
    for (size_t at = 0; at + 4 <= t->shm.size; at += 4)
        if (memcmp(now + at, t->shm_prior + at, 4) != 0)
            record_bytes(t, now + at, 4);
}

/* Everything a call returned: value outputs, output memrefs, what it changed in the block. */
static void record_call(struct dz_tee *t, const TEEC_Operation *op)
{
    if (!t->record)
        return;
    for (int i = 0; i < 4; i++) {
        uint32_t type = TEEC_PARAM_TYPE_GET(op->paramTypes, i);
        const TEEC_Parameter *p = &op->params[i];
        if (type == TEEC_VALUE_OUTPUT || type == TEEC_VALUE_INOUT)
            record_bytes(t, &p->value, sizeof p->value);
        if (type == TEEC_MEMREF_TEMP_OUTPUT || type == TEEC_MEMREF_TEMP_INOUT)
            record_bytes(t, p->tmpref.buffer, p->tmpref.size);
    }
    if (t->shm_open)
        record_shared(t);
    fflush(t->record);
}

static TEEC_Result invoke(struct dz_tee *t, uint32_t cmd, TEEC_Operation *op, uint32_t *origin)
{
    *origin = 0;
    record_before(t);
    TEEC_Result res = TEEC_InvokeCommand(&t->sess, cmd, op, origin);
    record_call(t, op);
    return res;
}

/* ------------------------------------------------------------- session */

static int check_version(struct dz_tee *t, struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    TEEC_Result res = invoke(t, DZ_CMD_VERSION, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_VERSION", res, origin);
    if (op.params[0].value.a != DZ_TA_PROTOCOL_VERSION)
        return dk_fail(err,
                       "the TA speaks protocol version %u, this darknetp speaks version %u; "
                       "install the TA built with this darknetp",
                       (unsigned)op.params[0].value.a, (unsigned)DZ_TA_PROTOCOL_VERSION);
    t->data_size = op.params[0].value.b;
    return 0;
}

int dz_tee_connect(struct dz_tee **out, struct dk_error *err)
{
    uint32_t origin = 0;
    *out = NULL;
    struct dz_tee *t = calloc(1, sizeof *t);
    if (!t)
        return dk_fail(err, "out of memory");
    const char *rec = getenv("DZ_TEE_RECORD");
    if (rec && *rec && !(t->record = fopen(rec, "ab"))) {
        dk_fail(err, "DZ_TEE_RECORD: cannot open %s", rec);
        goto fail;
    }
    TEEC_Result res = TEEC_InitializeContext(NULL, &t->ctx);
    if (res != TEEC_SUCCESS) {
        dk_fail(err, "cannot reach the TEE: TEEC_InitializeContext: %s (0x%08x)",
                dz_teec_result_name(res), (unsigned)res);
        goto fail;
    }
    t->ctx_open = true;
    res = TEEC_OpenSession(&t->ctx, &t->sess, &ta_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
    if (res == TEEC_ERROR_ITEM_NOT_FOUND) {
        dk_fail(err, "the DarkneTZ TA 5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta was not found "
                     "(OP-TEE: /lib/optee_armtz; simulator: DZ_TA_DIR)");
        goto fail;
    }
    if (res == TEEC_ERROR_OUT_OF_MEMORY) {
        /* ldelf could not map the TA's .bss heap: the TA is too big for this device. */
        dk_fail(err,
                "opening a session to the DarkneTZ TA: out of secure memory (origin %s): the "
                "TA's heap, TA_DATA_SIZE (set by CFG_DZ_TA_DATA_SIZE when the TA is built), "
                "does not fit the device's secure memory; rebuild the TA with a smaller "
                "CFG_DZ_TA_DATA_SIZE (OP-TEE's QEMU v8 leaves about 13.9 MiB to all TAs, each "
                "session its own heap; the simulated TEE has DZ_TEE_POOL_BYTES, 64 MiB by "
                "default) that still holds the partition (darknetp tee plan CFG)",
                origin_name(origin));
        goto fail;
    }
    if (res != TEEC_SUCCESS) {
        tee_fail(err, "opening a session to the DarkneTZ TA", res, origin);
        goto fail;
    }
    t->sess_open = true;
    if (check_version(t, err) != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    dz_tee_close(t);
    return -1;
}

size_t dz_tee_data_size(const struct dz_tee *t)
{
    return t->data_size;
}

static void free_chunks(struct dz_tee *t)
{
    for (size_t k = 0; k < t->n_chunks; k++)
        free(t->chunk ? t->chunk[k] : NULL);
    free(t->chunk);
    free(t->chunk_size);
    t->chunk = NULL;
    t->chunk_size = NULL;
    t->n_chunks = 0;
    free(t->chunk_file);
    t->chunk_file = NULL;
}

int dz_tee_stream_source(struct dz_tee *t, const char *file)
{
    char *copy = strdup(file);
    if (!copy)
        return -1;
    free(t->chunk_file);
    t->chunk_file = copy;
    return 0;
}

void dz_tee_close(struct dz_tee *t)
{
    if (!t)
        return;
    if (t->shm_open) {
        /* The block held activations and deltas of the partition's edges. */
        memset(t->shm.buffer, 0, t->shm.size);
        TEEC_ReleaseSharedMemory(&t->shm);
    }
    free(t->shm_prior);
    if (t->sess_open)
        TEEC_CloseSession(&t->sess);
    if (t->ctx_open)
        TEEC_FinalizeContext(&t->ctx);
    if (t->record)
        fclose(t->record);
    free_chunks(t);
    free(t);
}

/* ---------------------------------------------------------- open model */

/* The request and the [net] keys, through the protocol's one codec (ta/include/dz_wire.h). */
static void model_header(const struct dz_tee_model *m, struct dz_model_header *h)
{
    const struct dnn_layer *a = &m->shapes->layers[m->first];
    const struct dz_wire_request r = {
        .n_layers = (uint32_t)m->shapes->n,
        .first = (uint32_t)m->first,
        .last = (uint32_t)m->last,
        .batch = (uint32_t)m->batch,
        .subdivisions = (uint32_t)m->subdivisions,
        .training = m->training,
        .in_h = (uint32_t)a->h,
        .in_w = (uint32_t)a->w,
        .in_c = (uint32_t)a->c,
        .seed = m->seed,
        .output = m->policy,
        .top_k = (uint32_t)m->top_k,
    };
    dz_wire_encode_header(&r, &m->model->net, h);
    h->stream_chunk_bytes = (uint32_t)m->stream_chunk_bytes;
}

static size_t align_region(size_t x)
{
    return (x + REGION_ALIGN - 1) & ~(size_t)(REGION_ALIGN - 1);
}

/* Region sizes for this partition, as the protocol defines each memref. */
static int plan_regions(struct dz_tee *t, const struct dz_tee_model *m, struct dk_error *err)
{
    const struct dnn_network *s = m->shapes;
    const size_t n = s->n, batch = (size_t)m->batch;
    const bool ends = (size_t)m->last + 1 == n;
    size_t floats[R_COUNT] = {0};
    floats[R_INPUT] = s->layers[m->first].inputs;
    if (t->takes_truth)
        floats[R_TRUTH] = s->truths;
    if (!ends)
        floats[R_OUTPUT] = s->layers[m->last].outputs;
    if (m->training && !ends)
        floats[R_DELTA_IN] = s->layers[m->last].outputs;
    if (m->training && m->first > 0)
        floats[R_DELTA_OUT] = s->layers[m->first].inputs;
    size_t total = 0;
    for (int r = 0; r < R_COUNT; r++) {
        /* R_PRED: one record per image, or under DZ_OUTPUT_SCORES the image's scores; a
         * training session has it too, for train -valid_every's inference passes. */
        size_t unit = r == R_PRED && !t->scores ? sizeof(struct dz_prediction) : sizeof(float);
        size_t count = floats[r];
        if (r == R_PRED)
            count = ends ? (t->scores ? s->truths : 1) : 0;
        if (count && (batch > SIZE_MAX / count || batch * count > SIZE_MAX / unit))
            return dk_fail(err, "the shared buffers of layers %d..%d overflow", m->first, m->last);
        t->len[r] = batch * count * unit;
        t->off[r] = total;
        if (align_region(t->len[r]) > SIZE_MAX - total)
            return dk_fail(err, "the shared buffers of layers %d..%d overflow", m->first, m->last);
        total += align_region(t->len[r]);
    }
    t->shm.size = total ? total : REGION_ALIGN;
    return 0;
}

static int alloc_shared(struct dz_tee *t, struct dk_error *err)
{
    t->shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    TEEC_Result res = TEEC_AllocateSharedMemory(&t->ctx, &t->shm);
    if (res != TEEC_SUCCESS)
        return dk_fail(err, "cannot allocate %zu bytes of shared memory: %s", t->shm.size,
                       dz_teec_result_name(res));
    t->shm_open = true;
    memset(t->shm.buffer, 0, t->shm.size);
    return 0;
}

static int send_model(struct dz_tee *t, const struct dz_tee_model *m, size_t *ta_need,
                      struct dk_error *err)
{
    const size_t n_specs = (size_t)(m->last - m->first + 1);
    const struct dnn_layer_spec *specs = &m->model->specs[m->first];
    /* at most DZ_MAX_TREE_WORDS: dz_partition_check refused more */
    const size_t tree_words = dz_wire_tree_words(specs, n_specs);
    const size_t spec_end = sizeof(struct dz_model_header) + n_specs * sizeof(struct dz_wire_spec);
    const size_t bytes = spec_end + tree_words * sizeof(uint32_t);
    unsigned char *blob = calloc(1, bytes);
    uint32_t origin = 0;
    if (!blob)
        return dk_fail(err, "out of memory");
    model_header(m, &t->hdr);
    t->hdr.tree_words = (uint32_t)tree_words;
    memcpy(blob, &t->hdr, sizeof(t->hdr));
    struct dz_wire_spec *w = (struct dz_wire_spec *)(void *)(blob + sizeof(struct dz_model_header));
    for (size_t i = 0; i < n_specs; i++)
        dz_wire_encode_spec(&specs[i], &w[i]);
    dz_wire_encode_tree(specs, n_specs, (uint32_t *)(void *)(blob + spec_end));
    TEEC_Operation op = {0};
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = blob;
    op.params[0].tmpref.size = bytes;
    TEEC_Result res = invoke(t, DZ_CMD_OPEN_MODEL, &op, &origin);
    free(blob);
    uint64_t need = (uint64_t)op.params[1].value.a | (uint64_t)op.params[1].value.b << 32;
    if (res == TEEC_ERROR_OUT_OF_MEMORY && origin == TEEC_ORIGIN_TRUSTED_APP) {
        *ta_need = (size_t)need;
        return dk_fail(err,
                       "layers %d..%d need %llu bytes of secure memory at batch %d%s, the TA has "
                       "TA_DATA_SIZE = %zu",
                       m->first, m->last, (unsigned long long)need, m->batch,
                       m->training ? " for training" : "", t->data_size);
    }
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_OPEN_MODEL", res, origin);
    return 0;
}

int dz_tee_open_model(struct dz_tee *t, const struct dz_tee_model *m, size_t *ta_need,
                      struct dk_error *err)
{
    *ta_need = 0;
    if (t->shm_open)
        return dk_fail(err, "the TA session already serves a model");
    t->first = m->first;
    t->last = m->last;
    t->shapes = m->shapes;
    t->batch = m->batch;
    t->training = m->training;
    t->takes_truth = m->training && dz_range_has_cost(m->shapes, (size_t)m->first, (size_t)m->last);
    t->scores = m->policy == DZ_OUTPUT_SCORES;
    if (plan_regions(t, m, err) != 0 || send_model(t, m, ta_need, err) != 0)
        return -1;
    return alloc_shared(t, err);
}

/* ------------------------------------------------------------ commands */

static void partial(TEEC_Operation *op, int i, struct dz_tee *t, enum region r)
{
    op->params[i].memref.parent = &t->shm;
    op->params[i].memref.offset = t->off[r];
    op->params[i].memref.size = t->len[r];
}

static void *region(struct dz_tee *t, enum region r)
{
    if (!t->shm_open || t->len[r] == 0)
        return NULL;
    return (unsigned char *)t->shm.buffer + t->off[r];
}

float *dz_tee_input(struct dz_tee *t)
{
    return region(t, R_INPUT);
}

float *dz_tee_truth(struct dz_tee *t)
{
    return region(t, R_TRUTH);
}

const float *dz_tee_output(struct dz_tee *t)
{
    return region(t, R_OUTPUT);
}

float *dz_tee_delta_in(struct dz_tee *t)
{
    return region(t, R_DELTA_IN);
}

const float *dz_tee_delta_out(struct dz_tee *t)
{
    return region(t, R_DELTA_OUT);
}

const struct dz_prediction *dz_tee_predictions(struct dz_tee *t)
{
    return t->scores ? NULL : region(t, R_PRED);
}

const float *dz_tee_scores(struct dz_tee *t)
{
    return t->scores ? region(t, R_PRED) : NULL;
}

void dz_tee_request_policy(const struct dz_tee *t, struct dz_policy *p)
{
    dz_policy_of_request(&t->hdr, p);
}

uint32_t dz_tee_model_version(const struct dz_tee *t)
{
    return t->model_version;
}

bool dz_tee_takes_truth(const struct dz_tee *t)
{
    return t->takes_truth;
}

bool dz_tee_loss_leaves(const struct dz_tee *t)
{
    return t->hdr.output_policy == DZ_OUTPUT_SCORES;
}

/* ------------------------------------------------------------ streaming */

static int check_out_size(const TEEC_Operation *op, int i, size_t want, const char *what,
                          struct dk_error *err);

/* The chunks of the segment as the TA cuts them (ta/stream.c, the engine's tiles: dnn.h):
 * per layer with parameters, blocks of as many whole output filters or neurons (each
 * tensor's slice, in training their updates too) as the working buffer holds. */
struct cut {
    size_t layer; /* absolute */
    size_t row0, rows;
    size_t params;    /* bytes of its parameters: STREAM_IMPORT's plaintext */
    size_t plain;     /* bytes sealed: params, and the updates' in training */
    size_t param_off; /* floats into the segment's parameters where the layer's start */
};

/* tee_fail for a call that carries a chunk: out of memory there is, on OP-TEE, more often the
 * translation tables that map the call's memrefs (host/partition.h, DZ_STREAM_WORK_MAX) than
 * the TA's heap, which the session already holds; the message says which option helps. */
static int chunk_fail(const struct dz_tee *t, struct dk_error *err, const char *what,
                      TEEC_Result res, uint32_t origin)
{
    tee_fail(err, what, res, origin);
    const size_t used = strlen(err->msg);
    if (res == TEEC_ERROR_OUT_OF_MEMORY && used + 2 < sizeof err->msg)
        snprintf(err->msg + used, sizeof err->msg - used,
                 "; its memrefs are as large as the working buffer (%u bytes), which OP-TEE "
                 "maps with few page tables: try a smaller -tee_chunk",
                 (unsigned)t->hdr.stream_chunk_bytes);
    return -1;
}

/* The cut of the session's working buffer, with the update buffers when @updates. */
static size_t stream_cut_as(const struct dz_tee *t, bool updates, struct cut *out)
{
    const size_t chunk = t->hdr.stream_chunk_bytes;
    const struct dnn_layer *seg = &t->shapes->layers[t->first];
    const size_t n_layers = (size_t)(t->last - t->first + 1);
    const size_t n = dnn_tile_count(seg, n_layers, chunk, updates);
    for (size_t k = 0, off = 0, layer = 0; out && k < n; k++) {
        struct dnn_tile c;
        dnn_tile_at(seg, n_layers, chunk, updates, k, &c);
        for (; layer < c.layer; layer++)
            for (size_t j = 0; j < seg[layer].n_params; j++)
                off += seg[layer].params[j].count;
        out[k] =
            (struct cut){(size_t)t->first + c.layer, c.row0, c.rows, c.param_floats * sizeof(float),
                         c.floats * sizeof(float),   off};
    }
    return n;
}

/* The session's own cut: with the updates in training. */
static size_t stream_cut(const struct dz_tee *t, struct cut *out)
{
    return stream_cut_as(t, t->training, out);
}

/* The segment's plain parameters (.weights order, layer by layer) cut into chunks
 * (dnn_tile_parts), each sealed by the TA (DZ_CMD_STREAM_IMPORT, with `seen` for the training
 * schedule) and kept here, in memory: every pass reads each chunk once and training replaces
 * each twice per iteration, so a file would only add its writes. */
static int stream_import(struct dz_tee *t, const float *params, size_t count, uint64_t seen,
                         struct dk_error *err)
{
    const size_t n = stream_cut(t, NULL);
    struct cut *c = calloc(n ? n : 1, sizeof *c);
    float *plain = malloc(t->hdr.stream_chunk_bytes);
    int rc = -1;
    free_chunks(t);
    t->sealed_stream = false;
    t->chunk_updates = t->training;
    t->chunk = calloc(n ? n : 1, sizeof *t->chunk);
    t->chunk_size = calloc(n ? n : 1, sizeof *t->chunk_size);
    if (!c || !plain || !t->chunk || !t->chunk_size) {
        dk_fail(err, "out of memory for the sealed chunks of layers %d..%d", t->first, t->last);
        goto out;
    }
    t->n_chunks = n;
    stream_cut(t, c);
    for (size_t k = 0; k < n; k++) {
        const struct dnn_layer *l = &t->shapes->layers[c[k].layer];
        struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
        const struct dnn_tile tile = {.row0 = c[k].row0, .rows = c[k].rows};
        const size_t n_parts = dnn_tile_parts(l, &tile, false, parts);
        for (size_t j = 0; j < n_parts; j++) {
            const struct dnn_tile_part *pt = &parts[j];
            const size_t from = c[k].param_off + pt->layer_offset + pt->src;
            if (from > count || pt->count > count - from) {
                dk_fail(err, "DZ_CMD_STREAM_IMPORT: %zu parameter floats, layer %zu needs more",
                        count, c[k].layer);
                goto out;
            }
            memcpy(plain + pt->offset, params + from, pt->count * sizeof(float));
        }
        const size_t sealed = sizeof(struct dz_chunk_header) + c[k].plain + DZ_SEALED_TAG_BYTES;
        t->chunk[k] = malloc(sealed);
        if (!t->chunk[k]) {
            dk_fail(err, "out of memory for the sealed chunks of layers %d..%d", t->first, t->last);
            goto out;
        }
        TEEC_Operation op = {0};
        uint32_t origin = 0;
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_INPUT);
        op.params[0].value.a = (uint32_t)k;
        op.params[1].tmpref.buffer = plain;
        op.params[1].tmpref.size = c[k].params;
        op.params[2].tmpref.buffer = t->chunk[k];
        op.params[2].tmpref.size = sealed;
        op.params[3].value.a = (uint32_t)seen;
        op.params[3].value.b = (uint32_t)(seen >> 32);
        TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT, &op, &origin);
        if (res != TEEC_SUCCESS) {
            chunk_fail(t, err, "DZ_CMD_STREAM_IMPORT", res, origin);
            goto out;
        }
        if (op.params[2].tmpref.size != sealed) {
            dk_fail(err, "DZ_CMD_STREAM_IMPORT: the TA returned %zu bytes, %zu expected",
                    op.params[2].tmpref.size, sealed);
            goto out;
        }
        t->chunk_size[k] = sealed;
    }
    rc = 0;
out:
    if (plain)
        OPENSSL_cleanse(plain, t->hdr.stream_chunk_bytes);
    free(plain);
    free(c);
    if (rc != 0)
        free_chunks(t);
    return rc;
}

/* One streamed pass of @kind (DZ_STREAM_*): what goes in from the shared block (the input
 * and truth, or the delta), every chunk in the order the TA asks, and what comes out: into
 * the shared block (predictions, scores, layer last's output, the delta at first's input) or,
 * for UPDATE with @loss, the loss and its average. BACKWARD and UPDATE replace each kept chunk
 * with the one the TA re-seals, and so does FORWARD_TRAIN in a segment with batch
 * normalisation. */
static int stream_pass(struct dz_tee *t, uint32_t kind, float loss[2], struct dk_error *err)
{
    /* the TA's rule (ta/stream.c, pass_reseals): a training forward moves batch
     * normalisation's rolling statistics, which live in the chunks */
    const bool reseal =
        kind == DZ_STREAM_BACKWARD || kind == DZ_STREAM_UPDATE ||
        (kind == DZ_STREAM_FORWARD_TRAIN &&
         dnn_tile_forward_moves(&t->shapes->layers[t->first], (size_t)(t->last - t->first + 1)));
    const bool ends = t->len[R_OUTPUT] == 0;
    enum region in = R_COUNT, out = R_COUNT; /* R_COUNT: none */
    TEEC_Operation op = {0};
    uint32_t origin = 0, p0 = TEEC_NONE, p3 = TEEC_NONE;
    uint8_t *resealed = NULL;
    if (t->n_chunks == 0)
        return dk_fail(err, "DZ_CMD_STREAM_BEGIN: no sealed chunks: load the weights first");
    if (kind == DZ_STREAM_FORWARD || kind == DZ_STREAM_FORWARD_TRAIN) {
        in = R_INPUT;
        out = kind == DZ_STREAM_FORWARD ? (ends ? R_PRED : R_OUTPUT) : ends ? R_COUNT : R_OUTPUT;
    } else if (kind == DZ_STREAM_BACKWARD) {
        in = t->len[R_DELTA_IN] ? R_DELTA_IN : R_COUNT;
        out = t->len[R_DELTA_OUT] ? R_DELTA_OUT : R_COUNT;
    }
    if (in != R_COUNT) {
        p0 = TEEC_MEMREF_PARTIAL_INPUT;
        partial(&op, 0, t, in);
    }
    if (kind == DZ_STREAM_FORWARD_TRAIN && t->takes_truth) {
        p3 = TEEC_MEMREF_PARTIAL_INPUT;
        partial(&op, 3, t, R_TRUTH);
    }
    /* Inference keeps the call of the inference-only protocol. */
    const uint32_t p2 = kind == DZ_STREAM_FORWARD ? TEEC_NONE : TEEC_VALUE_INPUT;
    op.params[2].value.a = kind;
    op.params[2].value.b = kind == DZ_STREAM_UPDATE && loss ? DZ_STREAM_WANT_LOSS : 0;
    op.paramTypes = TEEC_PARAM_TYPES(p0, TEEC_VALUE_OUTPUT, p2, p3);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_BEGIN, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_STREAM_BEGIN", res, origin);
    uint32_t next = op.params[1].value.a;
    if (op.params[1].value.b != t->n_chunks)
        return dk_fail(err, "DZ_CMD_STREAM_BEGIN: the TA cuts %u chunks, %zu kept",
                       (unsigned)op.params[1].value.b, t->n_chunks);
    uint32_t loss_bits[2] = {0, 0};
    for (size_t calls = 0; next != DZ_STREAM_DONE; calls++) {
        if (next >= t->n_chunks || calls >= t->n_chunks)
            return dk_fail(err, "DZ_CMD_STREAM_CHUNK: the TA asked for chunk %u of %zu",
                           (unsigned)next, t->n_chunks);
        const size_t size = t->chunk_size[next];
        memset(&op, 0, sizeof op);
        uint32_t q2 = TEEC_NONE, q3 = TEEC_NONE;
        if (out != R_COUNT) {
            q2 = TEEC_MEMREF_PARTIAL_OUTPUT;
            partial(&op, 2, t, out);
        } else if (kind == DZ_STREAM_UPDATE && loss) {
            q2 = TEEC_MEMREF_TEMP_OUTPUT;
            op.params[2].tmpref.buffer = loss_bits;
            op.params[2].tmpref.size = sizeof loss_bits;
        }
        if (reseal) {
            resealed = malloc(size);
            if (!resealed)
                return dk_fail(err, "out of memory for a sealed chunk of %zu bytes", size);
            q3 = TEEC_MEMREF_TEMP_OUTPUT;
            op.params[3].tmpref.buffer = resealed;
            op.params[3].tmpref.size = size;
        }
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, q2, q3);
        op.params[0].tmpref.buffer = t->chunk[next];
        op.params[0].tmpref.size = size;
        res = invoke(t, DZ_CMD_STREAM_CHUNK, &op, &origin);
        if (res == TEEC_SUCCESS && reseal && op.params[3].tmpref.size != size)
            res = TEEC_ERROR_GENERIC;
        if (res != TEEC_SUCCESS) {
            free(resealed);
            if (res == TEEC_ERROR_SECURITY && t->chunk_file)
                return dk_fail(err,
                               "%s: the TA refused chunk %u of the streamed save: altered, or "
                               "not sealed on this device for this model",
                               t->chunk_file, (unsigned)next);
            return chunk_fail(t, err, "DZ_CMD_STREAM_CHUNK", res, origin);
        }
        if (reseal) {
            /* The TA refuses the older version from now on: keep only this one. */
            free(t->chunk[next]);
            t->chunk[next] = resealed;
            resealed = NULL;
        }
        next = op.params[1].value.a;
    }
    /* Every chunk of the file has authenticated: a later refusal is not the file's fault. */
    free(t->chunk_file);
    t->chunk_file = NULL;
    if (out != R_COUNT)
        return check_out_size(&op, 2, t->len[out], "DZ_CMD_STREAM_CHUNK", err);
    if (kind == DZ_STREAM_UPDATE && loss) {
        if (op.params[2].tmpref.size != sizeof loss_bits)
            return dk_fail(err, "DZ_CMD_STREAM_CHUNK: the TA returned %zu bytes of loss",
                           op.params[2].tmpref.size);
        memcpy(loss, loss_bits, sizeof loss_bits);
    }
    return 0;
}

/*
 * The bytes of a sealed blob that STREAM_IMPORT_SEALED's chunk @k may read (darknetz_ta.h),
 * at most @rest: chunk 0 the header; a layer's first chunk all its per-output tensors
 * (biases, BN's triple: they come before the weights in the payload); the chunk's weight rows; and
 * a few AES blocks a GCM implementation may hold back. Small windows keep each call's shared memory
 * within what a real OP-TEE can map (a few 2 MiB translation tables for the TA's heap and the
 * call's memrefs together).
 */
static size_t import_window(const struct dz_tee *t, const struct cut *c, size_t k, bool last,
                            size_t rest)
{
    /* the layer's weights come last in the blob, its per-output tensors (the head) before
     * them (ta/stream_sealed.c) */
    const struct dnn_layer *l = &t->shapes->layers[c->layer];
    const size_t row = l->params[l->n_params - 1].count / (size_t)l->out_c;
    size_t need = c->rows * row * sizeof(float) + 4 * 16;
    if (c->row0 == 0)
        need += (l->n_params - 1) * (size_t)l->out_c * sizeof(float);
    if (k == 0)
        need += sizeof(struct dz_sealed_header);
    return last || need > rest ? rest : need;
}

int dz_tee_stream_import_sealed(struct dz_tee *t, const uint8_t *blob, size_t size, uint64_t *seen,
                                uint32_t *refused, struct dk_error *err)
{
    const size_t n = stream_cut(t, NULL);
    struct cut *c = calloc(n ? n : 1, sizeof *c);
    size_t off = 0;
    int rc = -1;
    *refused = 0;
    free_chunks(t);
    t->sealed_stream = false;
    t->chunk_updates = t->training;
    t->chunk = calloc(n ? n : 1, sizeof *t->chunk);
    t->chunk_size = calloc(n ? n : 1, sizeof *t->chunk_size);
    if (!c || !t->chunk || !t->chunk_size) {
        dk_fail(err, "out of memory for the sealed chunks of layers %d..%d", t->first, t->last);
        goto out;
    }
    t->n_chunks = n;
    stream_cut(t, c);
    for (size_t k = 0; k < n; k++) {
        const size_t sealed = sizeof(struct dz_chunk_header) + c[k].plain + DZ_SEALED_TAG_BYTES;
        t->chunk[k] = malloc(sealed);
        if (!t->chunk[k]) {
            dk_fail(err, "out of memory for the sealed chunks of layers %d..%d", t->first, t->last);
            goto out;
        }
        TEEC_Operation op = {0};
        uint32_t origin = 0;
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_MEMREF_TEMP_INPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_OUTPUT);
        op.params[0].value.a = (uint32_t)k;
        /* A window of the blob: what this chunk needs, the rest for the last (the tag ends
         * it). The TA reads what it needs and says how much. */
        op.params[1].tmpref.buffer = (void *)(uintptr_t)(blob + off);
        op.params[1].tmpref.size = import_window(t, &c[k], k, k + 1 == n, size - off);
        op.params[2].tmpref.buffer = t->chunk[k];
        op.params[2].tmpref.size = sealed;
        TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT_SEALED, &op, &origin);
        if (res == TEEC_ERROR_SECURITY || res == TEEC_ERROR_ACCESS_DENIED) {
            *refused = res;
            dk_fail(err, "the TA refused the sealed blob at chunk %zu (%s)", k,
                    dz_teec_result_name(res));
            goto out;
        }
        if (res != TEEC_SUCCESS) {
            chunk_fail(t, err, "DZ_CMD_STREAM_IMPORT_SEALED", res, origin);
            goto out;
        }
        if (op.params[2].tmpref.size != sealed || op.params[0].value.a > size - off) {
            dk_fail(err,
                    "DZ_CMD_STREAM_IMPORT_SEALED: chunk %zu of %zu bytes after %u blob "
                    "bytes; %zu expected",
                    k, op.params[2].tmpref.size, (unsigned)op.params[0].value.a, sealed);
            goto out;
        }
        t->chunk_size[k] = sealed;
        off += op.params[0].value.a;
        if (k + 1 == n) {
            *seen = (uint64_t)op.params[3].value.b << 32 | op.params[3].value.a;
            t->model_version = op.params[0].value.b;
        }
    }
    if (n == 0 || off != size) {
        dk_fail(err, "DZ_CMD_STREAM_IMPORT_SEALED: the TA read %zu of %zu blob bytes", off, size);
        goto out;
    }
    t->sealed_stream = true;
    rc = 0;
out:
    free(c);
    if (rc != 0)
        free_chunks(t); /* the TA holds nothing usable after a refusal either */
    return rc;
}

int dz_tee_stream_save(const struct dz_tee *t, uint64_t seen, uint8_t **buf, size_t *size,
                       struct dk_error *err)
{
    struct dz_chunk_save_header h = {
        .magic = DZ_CHUNK_SAVE_MAGIC,
        .version = DZ_TA_PROTOCOL_VERSION,
        .first = (uint32_t)t->first,
        .last = (uint32_t)t->last,
        .n_chunks = (uint32_t)t->n_chunks,
        .chunk_bytes = t->hdr.stream_chunk_bytes,
        .training = t->chunk_updates,
        .seen_lo = (uint32_t)seen,
        .seen_hi = (uint32_t)(seen >> 32),
    };
    size_t total = sizeof h;
    *buf = NULL;
    *size = 0;
    if (t->sealed_stream)
        return dk_fail(err,
                       "layers %d..%d stream chunks imported from a sealed blob, under a key "
                       "that lives only in this TA session: they cannot be saved",
                       t->first, t->last);
    if (t->n_chunks == 0)
        return dk_fail(err, "layers %d..%d: no sealed chunks to save", t->first, t->last);
    for (size_t k = 0; k < t->n_chunks; k++)
        total += t->chunk_size[k];
    uint8_t *b = malloc(total), *at = b;
    if (!b)
        return dk_fail(err, "out of memory for a streamed save of %zu bytes", total);
    memcpy(at, &h, sizeof h);
    at += sizeof h;
    for (size_t k = 0; k < t->n_chunks; k++) {
        memcpy(at, t->chunk[k], t->chunk_size[k]);
        at += t->chunk_size[k];
    }
    *buf = b;
    *size = total;
    return 0;
}

int dz_tee_stream_rekey(struct dz_tee *t, struct dk_error *err)
{
    if (!t->sealed_stream || !t->training || t->n_chunks == 0)
        return dk_fail(err, "layers %d..%d: no chunks of a sealed import to re-key", t->first,
                       t->last);
    for (size_t k = 0; k < t->n_chunks; k++) {
        const size_t size = t->chunk_size[k];
        uint8_t *rekeyed = malloc(size);
        if (!rekeyed) {
            free_chunks(t); /* the TA holds nothing usable after a broken re-key */
            return dk_fail(err, "out of memory for a sealed chunk of %zu bytes", size);
        }
        TEEC_Operation op = {0};
        uint32_t origin = 0;
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                         TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE);
        op.params[0].value.a = (uint32_t)k;
        op.params[1].tmpref.buffer = t->chunk[k];
        op.params[1].tmpref.size = size;
        op.params[2].tmpref.buffer = rekeyed;
        op.params[2].tmpref.size = size;
        TEEC_Result res = invoke(t, DZ_CMD_STREAM_REKEY, &op, &origin);
        if (res == TEEC_SUCCESS && op.params[2].tmpref.size != size)
            res = TEEC_ERROR_GENERIC;
        if (res != TEEC_SUCCESS) {
            free(rekeyed);
            free_chunks(t);
            if (res == TEEC_ERROR_ACCESS_DENIED)
                return dk_fail(err,
                               "DZ_CMD_STREAM_REKEY refused: an owner's sealed model keeps its "
                               "policy, and streamed saves carry none");
            return chunk_fail(t, err, "DZ_CMD_STREAM_REKEY", res, origin);
        }
        free(t->chunk[k]);
        t->chunk[k] = rekeyed;
    }
    /* The normal world's own chunks now, as after a plain import: saved like them. */
    t->sealed_stream = false;
    t->model_version = 0;
    return 0;
}

int dz_tee_stream_load(struct dz_tee *t, const uint8_t *buf, size_t size, uint64_t *seen,
                       struct dk_error *err)
{
    struct dz_chunk_save_header h;
    struct cut *c = NULL;
    bool replaced = false;
    int rc = -1;
    if (size < sizeof h)
        return dk_fail(err, "a streamed save of %zu bytes is truncated", size);
    memcpy(&h, buf, sizeof h);
    if (h.magic != DZ_CHUNK_SAVE_MAGIC || h.version != DZ_TA_PROTOCOL_VERSION)
        return dk_fail(err, "not a streamed save of protocol %u", (unsigned)DZ_TA_PROTOCOL_VERSION);
    /* An inference session takes a training save too: its passes open the chunks (parameters
     * and updates, cut for the same working buffer) and use the parameters. */
    const bool updates = h.training == 1 || t->training;
    const size_t n = stream_cut_as(t, updates, NULL);
    c = calloc(n ? n : 1, sizeof *c);
    if (!c)
        return dk_fail(err, "out of memory");
    stream_cut_as(t, updates, c);
    if (n == 0 || h.first != (uint32_t)t->first || h.last != (uint32_t)t->last || h.n_chunks != n ||
        h.chunk_bytes != t->hdr.stream_chunk_bytes || h.training > 1 ||
        (t->training && h.training != 1)) {
        dk_fail(err,
                "a streamed save of layers %u..%u in %u chunks of a %u-byte working buffer "
                "(%s); this session streams layers %d..%d in %zu chunks of %u bytes (%s)",
                (unsigned)h.first, (unsigned)h.last, (unsigned)h.n_chunks, (unsigned)h.chunk_bytes,
                h.training ? "training" : "inference", t->first, t->last, n,
                (unsigned)t->hdr.stream_chunk_bytes, t->training ? "training" : "inference");
        goto out;
    }
    free_chunks(t);
    t->sealed_stream = false;
    t->chunk_updates = updates;
    replaced = true;
    t->chunk = calloc(n, sizeof *t->chunk);
    t->chunk_size = calloc(n, sizeof *t->chunk_size);
    if (!t->chunk || !t->chunk_size) {
        dk_fail(err, "out of memory for the sealed chunks of layers %d..%d", t->first, t->last);
        goto out;
    }
    t->n_chunks = n;
    size_t off = sizeof h;
    for (size_t k = 0; k < n; k++) {
        const size_t sealed = sizeof(struct dz_chunk_header) + c[k].plain + DZ_SEALED_TAG_BYTES;
        if (size - off < sealed) {
            dk_fail(err, "the streamed save is truncated in chunk %zu", k);
            goto out;
        }
        t->chunk[k] = malloc(sealed);
        if (!t->chunk[k]) {
            dk_fail(err, "out of memory for the sealed chunks of layers %d..%d", t->first, t->last);
            goto out;
        }
        memcpy(t->chunk[k], buf + off, sealed);
        t->chunk_size[k] = sealed;
        off += sealed;
    }
    if (off != size) {
        dk_fail(err, "the streamed save has %zu bytes after its last chunk", size - off);
        goto out;
    }
    *seen = (uint64_t)h.seen_hi << 32 | h.seen_lo;
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_VALUE_INPUT);
    op.params[0].value.a = DZ_STREAM_DONE;
    op.params[0].value.b = h.training ? DZ_STREAM_KEPT_UPDATES : 0;
    op.params[3].value.a = h.seen_lo;
    op.params[3].value.b = h.seen_hi;
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT, &op, &origin);
    if (res != TEEC_SUCCESS) {
        tee_fail(err, "DZ_CMD_STREAM_IMPORT (a kept save)", res, origin);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && replaced)
        free_chunks(t); /* the TA would refuse a mix anyway */
    free(c);
    return rc;
}

int dz_tee_load_chunks(struct dz_tee *t, const uint8_t *buf, size_t size, uint64_t *seen,
                       struct dk_error *err)
{
    struct dz_chunk_save_header h;
    if (size < sizeof h)
        return dk_fail(err, "a streamed save of %zu bytes is truncated", size);
    memcpy(&h, buf, sizeof h);
    if (h.magic != DZ_CHUNK_SAVE_MAGIC || h.version != DZ_TA_PROTOCOL_VERSION)
        return dk_fail(err, "not a streamed save of protocol %u", (unsigned)DZ_TA_PROTOCOL_VERSION);
    if (h.first != (uint32_t)t->first || h.last != (uint32_t)t->last || h.n_chunks == 0 ||
        h.training > 1)
        return dk_fail(err, "a streamed save of layers %u..%u; this session holds %d..%d",
                       (unsigned)h.first, (unsigned)h.last, t->first, t->last);
    size_t off = sizeof h;
    for (uint32_t k = 0; k < h.n_chunks; k++) {
        struct dz_chunk_header ch;
        if (size - off < sizeof ch)
            return dk_fail(err, "the streamed save is truncated in chunk %u", (unsigned)k);
        memcpy(&ch, buf + off, sizeof ch);
        const size_t sealed = sizeof ch + (size_t)ch.plain_bytes + DZ_SEALED_TAG_BYTES;
        if (size - off < sealed)
            return dk_fail(err, "the streamed save is truncated in chunk %u", (unsigned)k);
        TEEC_Operation op = {0};
        uint32_t origin = 0;
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                         TEEC_VALUE_INPUT);
        op.params[0].value.a = k;
        op.params[0].value.b = h.training;
        op.params[1].value.a = h.chunk_bytes;
        op.params[1].value.b = h.n_chunks;
        op.params[2].tmpref.buffer = (void *)(uintptr_t)(buf + off);
        op.params[2].tmpref.size = sealed;
        op.params[3].value.a = h.seen_lo;
        op.params[3].value.b = h.seen_hi;
        TEEC_Result res = invoke(t, DZ_CMD_LOAD_CHUNK, &op, &origin);
        if (res == TEEC_ERROR_SECURITY)
            return dk_fail(err,
                           "the TA refused chunk %u of the streamed save: altered, or not "
                           "sealed on this device for this model",
                           (unsigned)k);
        if (res != TEEC_SUCCESS)
            return tee_fail(err, "DZ_CMD_LOAD_CHUNK", res, origin);
        off += sealed;
    }
    if (off != size)
        return dk_fail(err, "the streamed save has %zu bytes after its last chunk", size - off);
    *seen = (uint64_t)h.seen_hi << 32 | h.seen_lo;
    return 0;
}

bool dz_tee_streaming(const struct dz_tee *t)
{
    return t && t->hdr.stream_chunk_bytes != 0;
}

int dz_tee_load_plain(struct dz_tee *t, const float *params, size_t count, uint64_t seen,
                      struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    if (count > SIZE_MAX / sizeof(float))
        return dk_fail(err, "DZ_CMD_LOAD_PLAIN: %zu floats overflow", count);
    if (dz_tee_streaming(t))
        return stream_import(t, params, count, seen, err);
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = (void *)(uintptr_t)params;
    op.params[0].tmpref.size = count * sizeof(float);
    op.params[1].value.a = (uint32_t)seen;
    op.params[1].value.b = (uint32_t)(seen >> 32);
    TEEC_Result res = invoke(t, DZ_CMD_LOAD_PLAIN, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_LOAD_PLAIN", res, origin);
    return 0;
}

/* An output memref must come back exactly as large as the protocol says. */
static int check_out_size(const TEEC_Operation *op, int i, size_t want, const char *what,
                          struct dk_error *err)
{
    if (op->params[i].memref.size != want)
        return dk_fail(err, "%s: the TA returned %zu bytes, %zu expected", what,
                       op->params[i].memref.size, want);
    return 0;
}

int dz_tee_forward(struct dz_tee *t, bool train, struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    const bool ends = t->len[R_OUTPUT] == 0;
    uint32_t p1 = TEEC_NONE, p3 = TEEC_NONE;
    if (!t->shm_open || (train && !t->training))
        return dk_fail(err, "DZ_CMD_FORWARD: the session was not opened for this use");
    if (dz_tee_streaming(t))
        return stream_pass(t, train ? DZ_STREAM_FORWARD_TRAIN : DZ_STREAM_FORWARD, NULL, err);
    partial(&op, 0, t, R_INPUT);
    if (train && t->takes_truth) {
        p1 = TEEC_MEMREF_PARTIAL_INPUT;
        partial(&op, 1, t, R_TRUTH);
    }
    op.params[2].value.a = train ? DZ_FORWARD_TRAIN : 0;
    if (!ends) {
        p3 = TEEC_MEMREF_PARTIAL_OUTPUT;
        partial(&op, 3, t, R_OUTPUT);
    } else if (!train) {
        p3 = TEEC_MEMREF_PARTIAL_OUTPUT;
        partial(&op, 3, t, R_PRED);
    }
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, p1, TEEC_VALUE_INPUT, p3);
    TEEC_Result res = invoke(t, DZ_CMD_FORWARD, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_FORWARD", res, origin);
    if (p3 != TEEC_NONE)
        return check_out_size(&op, 3, t->len[ends ? R_PRED : R_OUTPUT], "DZ_CMD_FORWARD", err);
    return 0;
}

int dz_tee_backward(struct dz_tee *t, struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    uint32_t p0 = TEEC_NONE, p1 = TEEC_NONE;
    if (!t->shm_open || !t->training)
        return dk_fail(err, "DZ_CMD_BACKWARD: the session was not opened for training");
    if (dz_tee_streaming(t))
        return stream_pass(t, DZ_STREAM_BACKWARD, NULL, err);
    if (t->len[R_DELTA_IN]) {
        p0 = TEEC_MEMREF_PARTIAL_INPUT;
        partial(&op, 0, t, R_DELTA_IN);
    }
    if (t->len[R_DELTA_OUT]) {
        p1 = TEEC_MEMREF_PARTIAL_OUTPUT;
        partial(&op, 1, t, R_DELTA_OUT);
    }
    op.paramTypes = TEEC_PARAM_TYPES(p0, p1, TEEC_NONE, TEEC_NONE);
    TEEC_Result res = invoke(t, DZ_CMD_BACKWARD, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_BACKWARD", res, origin);
    if (p1 != TEEC_NONE)
        return check_out_size(&op, 1, t->len[R_DELTA_OUT], "DZ_CMD_BACKWARD", err);
    return 0;
}

int dz_tee_update(struct dz_tee *t, float *loss, float *avg_loss, struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    if (dz_tee_streaming(t)) {
        float both[2] = {0, 0};
        if (stream_pass(t, DZ_STREAM_UPDATE, loss ? both : NULL, err) != 0)
            return -1;
        if (loss) {
            *loss = both[0];
            *avg_loss = both[1];
        }
        return 0;
    }
    if (loss)
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    TEEC_Result res = invoke(t, DZ_CMD_UPDATE, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_UPDATE", res, origin);
    if (loss) {
        memcpy(loss, &op.params[0].value.a, sizeof *loss);
        memcpy(avg_loss, &op.params[0].value.b, sizeof *avg_loss);
    }
    return 0;
}

bool dz_tee_steps(const struct dz_tee *t)
{
    return t->shm_open && t->training && !t->no_step && !dz_tee_streaming(t) &&
           t->len[R_OUTPUT] == 0;
}

int dz_tee_train_step(struct dz_tee *t, bool update, float *loss, float *avg_loss, bool *stepped,
                      struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    uint32_t p1 = TEEC_NONE, p3 = TEEC_NONE;
    *stepped = false;
    if (!dz_tee_steps(t))
        return 0;
    partial(&op, 0, t, R_INPUT);
    if (t->takes_truth) {
        p1 = TEEC_MEMREF_PARTIAL_INPUT;
        partial(&op, 1, t, R_TRUTH);
    }
    op.params[2].value.a = (update ? DZ_STEP_UPDATE : 0) | (update && loss ? DZ_STEP_LOSS : 0);
    if (t->len[R_DELTA_OUT]) {
        p3 = TEEC_MEMREF_PARTIAL_OUTPUT;
        partial(&op, 3, t, R_DELTA_OUT);
    }
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, p1, TEEC_VALUE_INOUT, p3);
    TEEC_Result res = invoke(t, DZ_CMD_TRAIN_STEP, &op, &origin);
    if (res == TEEC_ERROR_NOT_SUPPORTED && origin == TEEC_ORIGIN_TRUSTED_APP) {
        t->no_step = true; /* nothing ran: the caller makes the three calls */
        return 0;
    }
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_TRAIN_STEP", res, origin);
    *stepped = true;
    if (update && loss) {
        memcpy(loss, &op.params[2].value.a, sizeof *loss);
        memcpy(avg_loss, &op.params[2].value.b, sizeof *avg_loss);
    }
    if (p3 != TEEC_NONE)
        return check_out_size(&op, 3, t->len[R_DELTA_OUT], "DZ_CMD_TRAIN_STEP", err);
    return 0;
}

int dz_tee_save_sealed(struct dz_tee *t, const struct dz_policy *policy, uint8_t **blob,
                       size_t *size, struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    *blob = NULL;
    *size = 0;
    /* Ask for the size first: TEEC_ERROR_SHORT_BUFFER carries it. */
    op.paramTypes = TEEC_PARAM_TYPES(
        TEEC_MEMREF_TEMP_OUTPUT, policy ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[1].tmpref.buffer = (void *)(uintptr_t)policy;
    op.params[1].tmpref.size = policy ? sizeof(*policy) : 0;
    TEEC_Result res = invoke(t, DZ_CMD_SAVE_SEALED, &op, &origin);
    if (res != TEEC_ERROR_SHORT_BUFFER)
        return tee_fail(err, "DZ_CMD_SAVE_SEALED (size)", res, origin);
    size_t need = op.params[0].tmpref.size;
    if (need < sizeof(struct dz_sealed_header) + DZ_SEALED_TAG_BYTES)
        return dk_fail(err, "DZ_CMD_SAVE_SEALED: the TA asked for %zu bytes, too few for a blob",
                       need);
    uint8_t *buf = malloc(need);
    if (!buf)
        return dk_fail(err, "out of memory for a %zu-byte sealed blob", need);
    op.params[0].tmpref.buffer = buf;
    op.params[0].tmpref.size = need;
    res = invoke(t, DZ_CMD_SAVE_SEALED, &op, &origin);
    if (res == TEEC_ERROR_ACCESS_DENIED) {
        free(buf);
        return dk_fail(err, "the TA refused to seal a wider policy than the model's own");
    }
    if (res != TEEC_SUCCESS || op.params[0].tmpref.size != need) {
        free(buf);
        if (res == TEEC_SUCCESS)
            return dk_fail(err, "DZ_CMD_SAVE_SEALED: the TA wrote %zu bytes of %zu",
                           op.params[0].tmpref.size, need);
        return tee_fail(err, "DZ_CMD_SAVE_SEALED", res, origin);
    }
    *blob = buf;
    *size = need;
    return 0;
}

int dz_tee_load_sealed(struct dz_tee *t, const uint8_t *blob, size_t size, uint64_t *seen,
                       uint32_t *refused, struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    *refused = 0;
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_OUTPUT, TEEC_NONE);
    op.params[0].tmpref.buffer = (void *)(uintptr_t)blob;
    op.params[0].tmpref.size = size;
    TEEC_Result res = invoke(t, DZ_CMD_LOAD_SEALED, &op, &origin);
    if (res == TEEC_ERROR_SECURITY || res == TEEC_ERROR_ACCESS_DENIED) {
        *refused = res;
        return dk_fail(err, "the TA refused the sealed blob (%s)", dz_teec_result_name(res));
    }
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_LOAD_SEALED", res, origin);
    *seen = (uint64_t)op.params[1].value.a | (uint64_t)op.params[1].value.b << 32;
    t->model_version = op.params[2].value.a;
    return 0;
}

int dz_tee_get_pubkey(struct dz_tee *t, uint8_t pub[DZ_X25519_BYTES], struct dk_error *err)
{
    TEEC_Operation op = {0};
    uint32_t origin = 0;
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = pub;
    op.params[0].tmpref.size = DZ_X25519_BYTES;
    TEEC_Result res = invoke(t, DZ_CMD_GET_PUBKEY, &op, &origin);
    if (res != TEEC_SUCCESS)
        return tee_fail(err, "DZ_CMD_GET_PUBKEY", res, origin);
    if (op.params[0].tmpref.size != DZ_X25519_BYTES)
        return dk_fail(err, "DZ_CMD_GET_PUBKEY: the TA returned %zu bytes, %d expected",
                       op.params[0].tmpref.size, DZ_X25519_BYTES);
    return 0;
}
