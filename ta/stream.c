/*
 * stream.c - weight streaming: a segment whose parameters do not fit the TA's heap runs with
 * its activations and one working buffer resident, and takes each connected layer's
 * parameters from the normal world as sealed chunks, one block of output neurons at a time
 * (DZ_CMD_STREAM_IMPORT, DZ_CMD_STREAM_BEGIN, DZ_CMD_STREAM_CHUNK; darknetz_ta.h).
 *
 * Each chunk is AES-256-GCM under the device's chunk key (DZ_CHUNK_LABEL) with struct
 * dz_chunk_header as additional data: the model digest, the partition, the working-buffer size, the
 * layer, the chunk's index, the chunk count, its rows and size, and the save id shared by every
 * chunk of one save. A pass asks for chunk 0, 1, ... n_chunks-1 in turn and refuses anything but
 * the exact chunk it asked for, from the save its chunk 0 came from: a chunk cannot be swapped with
 * another layer's or another index's, replayed from another save or model, reordered, truncated or
 * extended. The ciphertext is copied out of shared memory once, through a bounce buffer, and
 * decrypted into the working buffer; the layer computes with it only after the tag has matched. Any
 * refusal ends the pass and wipes the working buffer; the next STREAM_BEGIN starts over.
 *
 * What the normal world sees: ciphertext, and sizes it knows from the cfg and the working
 * buffer it chose (rows per chunk, chunk count).
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

#define T_NONE TEE_PARAM_TYPE_NONE
#define T_VALUE_IN TEE_PARAM_TYPE_VALUE_INPUT
#define T_VALUE_OUT TEE_PARAM_TYPE_VALUE_OUTPUT
#define T_MEM_IN TEE_PARAM_TYPE_MEMREF_INPUT
#define T_MEM_OUT TEE_PARAM_TYPE_MEMREF_OUTPUT

/* Ciphertext crosses shared memory through a stack buffer of this size. */
#define DZ_STREAM_BOUNCE 4096u

/* Where chunk k of the segment lies. */
struct chunk_geom {
    size_t layer;   /* index in the segment */
    uint32_t row0;  /* first output neuron */
    uint32_t rows;  /* output neurons */
    size_t plain;   /* rows * (inputs + 1) * 4 bytes */
    bool last_rows; /* the layer's last chunk */
};

/* Output neurons per chunk of @l: as many whole rows (biases and weights) as fit. */
static size_t rows_per_chunk(const struct dnn_layer *l, size_t chunk_bytes)
{
    const size_t row = (l->inputs + 1) * sizeof(float); /* checked at open */
    size_t r = chunk_bytes / row;
    return r < (size_t)l->out_c ? r : (size_t)l->out_c;
}

TEE_Result dz_stream_chunks(const struct dnn_network *net, const struct dz_model_header *hdr,
                            size_t chunk_bytes, uint32_t *n_chunks)
{
    uint64_t total = 0;

    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        if (!l->n_params)
            continue;
        if (l->kind != DNN_LAYER_CONNECTED || l->spec.batch_normalize) {
            EMSG("layer %zu (%s): weight streaming takes connected layers without "
                 "batch_normalize only",
                 hdr->first + i, l->ops->name);
            return TEE_ERROR_BAD_PARAMETERS;
        }
        size_t row = 0;
        if (__builtin_add_overflow(l->inputs, 1, &row) ||
            __builtin_mul_overflow(row, sizeof(float), &row) || row > chunk_bytes) {
            EMSG("layer %zu: one output neuron's parameters (%zu inputs) exceed the working "
                 "buffer of %zu bytes",
                 hdr->first + i, l->inputs, chunk_bytes);
            return TEE_ERROR_BAD_PARAMETERS;
        }
        const size_t r = rows_per_chunk(l, chunk_bytes);
        total += ((size_t)l->out_c + r - 1) / r;
    }
    if (total == 0 || total >= DZ_STREAM_DONE) {
        EMSG("layers %u..%u: %llu chunks to stream", (unsigned)hdr->first, (unsigned)hdr->last,
             (unsigned long long)total);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    *n_chunks = (uint32_t)total;
    return TEE_SUCCESS;
}

/* Chunk @k of the segment (k < s->n_chunks). */
static void chunk_geom(const struct dz_session *s, uint32_t k, struct chunk_geom *g)
{
    uint32_t base = 0;

    memset(g, 0, sizeof(*g));
    for (size_t i = 0; i < s->net->n; i++) {
        const struct dnn_layer *l = &s->net->layers[i];
        if (!l->n_params)
            continue;
        const size_t r = rows_per_chunk(l, s->chunk_bytes);
        const uint32_t n = (uint32_t)(((size_t)l->out_c + r - 1) / r);
        if (k < base + n) {
            const size_t row0 = (size_t)(k - base) * r;
            const size_t left = (size_t)l->out_c - row0;
            g->layer = i;
            g->row0 = (uint32_t)row0;
            g->rows = (uint32_t)(left < r ? left : r);
            g->plain = (size_t)g->rows * (l->inputs + 1) * sizeof(float);
            g->last_rows = row0 + g->rows == (size_t)l->out_c;
            return;
        }
        base += n;
    }
}

size_t dz_stream_plain_bytes(const struct dz_session *s, uint32_t k)
{
    struct chunk_geom g;
    if (!s->net || !s->streaming || k >= s->n_chunks)
        return 0;
    chunk_geom(s, k, &g);
    return g.plain;
}

static size_t sealed_size(const struct chunk_geom *g)
{
    return sizeof(struct dz_chunk_header) + g->plain + DZ_SEALED_TAG_BYTES;
}

/* The header chunk @k of save @save_id carries, nonce zero. */
static void expected_header(const struct dz_session *s, uint32_t k, const struct chunk_geom *g,
                            const uint8_t save_id[16], struct dz_chunk_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = DZ_CHUNK_MAGIC;
    h->version = DZ_TA_PROTOCOL_VERSION;
    memcpy(h->model_digest, s->model_digest, sizeof(h->model_digest));
    h->first = s->hdr.first;
    h->last = s->hdr.last;
    h->n_layers = s->hdr.n_layers;
    h->chunk_bytes = (uint32_t)s->chunk_bytes;
    h->layer = s->hdr.first + (uint32_t)g->layer;
    h->chunk = k;
    h->n_chunks = s->n_chunks;
    h->row0 = g->row0;
    h->rows = g->rows;
    h->plain_bytes = (uint32_t)g->plain;
    memcpy(h->save_id, save_id, sizeof(h->save_id));
}

/* Runs the layers without parameters from segment index @i on, up to the next layer with
 * parameters (exclusive) or the end. */
static void run_plain_layers(struct dz_session *s, size_t i)
{
    struct dnn_network *net = s->net;
    size_t j = i;

    while (j < net->n && !net->layers[j].n_params)
        j++;
    if (j > i)
        dnn_network_forward_range(net, i, j - 1, i == 0 ? s->input : net->layers[i - 1].output,
                                  NULL, false);
}

/* What FORWARD writes for this segment (darknetz_ta.h), in bytes. */
static size_t output_bytes(const struct dz_session *s)
{
    if (!s->ends_network)
        return s->out_floats * sizeof(float);
    if (s->hdr.output_policy == DZ_OUTPUT_SCORES)
        return (size_t)s->hdr.batch * s->classes * sizeof(float);
    return (size_t)s->hdr.batch * sizeof(struct dz_prediction);
}

static TEE_Result streamed_session(const struct dz_session *s)
{
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (!s->streaming) {
        EMSG("a weight-streaming command in a session with resident parameters");
        return TEE_ERROR_BAD_STATE;
    }
    return TEE_SUCCESS;
}

static void end_pass(struct dz_session *s)
{
    s->pass_active = false;
    s->pass_next = 0;
    TEE_MemFill(s->pass_id, 0, sizeof(s->pass_id));
    TEE_MemFill(s->work, 0, s->chunk_bytes);
}

/* ----------------------------------------------------------------- import */

TEE_Result dz_cmd_stream_import(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t bounce[DZ_STREAM_BOUNCE + DZ_SEALED_TAG_BYTES];
    struct dz_chunk_header h;
    struct chunk_geom g;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (types != TEE_PARAM_TYPES(T_VALUE_IN, T_MEM_IN, T_MEM_OUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    const uint32_t k = p[0].value.a;
    if (k >= s->n_chunks) {
        EMSG("chunk %u imported: the segment has %u", (unsigned)k, (unsigned)s->n_chunks);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    chunk_geom(s, k, &g);
    if (p[1].memref.size != g.plain) {
        EMSG("plain chunk %u of %zu bytes refused: expected %zu", (unsigned)k,
             (size_t)p[1].memref.size, g.plain);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    if (p[2].memref.size < sealed_size(&g)) {
        p[2].memref.size = sealed_size(&g);
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (k != 0 && (!s->import_active || k != s->import_next)) {
        EMSG("chunk %u imported out of order: the save expects chunk %u", (unsigned)k,
             s->import_active ? (unsigned)s->import_next : 0u);
        return TEE_ERROR_BAD_STATE;
    }
    res = dz_derive_chunk_key(s);
    if (res != TEE_SUCCESS)
        return res;
    if (k == 0) {
        TEE_GenerateRandom(s->import_id, sizeof(s->import_id));
        s->import_active = true;
    }
    expected_header(s, k, &g, s->import_id, &h);
    TEE_GenerateRandom(h.nonce, sizeof(h.nonce));

    /* The plaintext once into TA memory, then encrypted through the bounce buffer. */
    uint8_t *const work = (uint8_t *)s->work;
    TEE_MemMove(work, p[1].memref.buffer, g.plain);
    res = dz_gcm_operation(s->chunk_key, TEE_MODE_ENCRYPT, &op);
    if (res != TEE_SUCCESS)
        goto out;
    res = TEE_AEInit(op, h.nonce, sizeof(h.nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(h), g.plain);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(op, &h, sizeof(h));
    uint8_t *const ct = (uint8_t *)p[2].memref.buffer + sizeof(h);
    size_t done = 0, len = 0;
    for (size_t off = 0; off < g.plain; off += DZ_STREAM_BOUNCE) {
        const size_t n = g.plain - off < DZ_STREAM_BOUNCE ? g.plain - off : DZ_STREAM_BOUNCE;
        len = sizeof(bounce);
        res = TEE_AEUpdate(op, work + off, n, bounce, &len);
        if (res == TEE_SUCCESS && len > g.plain - done)
            res = TEE_ERROR_GENERIC;
        if (res != TEE_SUCCESS)
            goto out;
        TEE_MemMove(ct + done, bounce, len);
        done += len;
    }
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    size_t tag_len = sizeof(tag);
    len = sizeof(bounce);
    res = TEE_AEEncryptFinal(op, NULL, 0, bounce, &len, tag, &tag_len);
    if (res == TEE_SUCCESS && (done + len != g.plain || tag_len != sizeof(tag)))
        res = TEE_ERROR_GENERIC;
    if (res != TEE_SUCCESS)
        goto out;
    TEE_MemMove(ct + done, bounce, len);
    TEE_MemMove(ct + g.plain, tag, sizeof(tag));
    TEE_MemMove(p[2].memref.buffer, &h, sizeof(h));
    p[2].memref.size = sealed_size(&g);
    s->import_next = k + 1;
    if (s->import_next == s->n_chunks)
        s->import_active = false;
out:
    if (res != TEE_SUCCESS) {
        EMSG("chunk %u: seal %#x", (unsigned)k, (unsigned)res);
        s->import_active = false;
    }
    TEE_MemFill(bounce, 0, sizeof(bounce));
    TEE_MemFill(s->work, 0, s->chunk_bytes);
    TEE_FreeOperation(op);
    return res;
}

/* ------------------------------------------------------------------- pass */

TEE_Result dz_cmd_stream_begin(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MEM_IN, T_VALUE_OUT, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_Result res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    const size_t in_bytes = s->in_floats * sizeof(float);
    if (p[0].memref.size != in_bytes) {
        EMSG("forward input of %zu bytes refused: expected %zu", (size_t)p[0].memref.size,
             in_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    end_pass(s);
    TEE_MemMove(s->input, p[0].memref.buffer, in_bytes);
    run_plain_layers(s, 0);
    s->pass_active = true;
    p[1].value.a = 0;
    p[1].value.b = s->n_chunks;
    return TEE_SUCCESS;
}

/* Decrypts the sealed chunk at @src (header already checked, copied to @h) into s->work,
 * each byte of shared memory read once. TEE_ERROR_SECURITY when the tag does not match. */
static TEE_Result open_chunk(struct dz_session *s, const struct dz_chunk_header *h,
                             const uint8_t *src, size_t plain)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t chunk[DZ_STREAM_BOUNCE];
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    uint8_t *const work = (uint8_t *)s->work;
    size_t done = 0, len = 0;
    TEE_Result res = dz_derive_chunk_key(s);

    if (res == TEE_SUCCESS)
        res = dz_gcm_operation(s->chunk_key, TEE_MODE_DECRYPT, &op);
    if (res == TEE_SUCCESS)
        res =
            TEE_AEInit(op, h->nonce, sizeof(h->nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(*h), plain);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(op, h, sizeof(*h));
    for (size_t off = 0; off < plain; off += DZ_STREAM_BOUNCE) {
        const size_t n = plain - off < DZ_STREAM_BOUNCE ? plain - off : DZ_STREAM_BOUNCE;
        TEE_MemMove(chunk, src + off, n);
        len = s->chunk_bytes - done;
        res = TEE_AEUpdate(op, chunk, n, work + done, &len);
        if (res != TEE_SUCCESS)
            goto out;
        done += len;
    }
    TEE_MemMove(tag, src + plain, sizeof(tag));
    len = s->chunk_bytes - done;
    res = TEE_AEDecryptFinal(op, NULL, 0, work + done, &len, tag, sizeof(tag));
    if (res != TEE_SUCCESS || done + len != plain) {
        EMSG("chunk %u refused: authentication failed", (unsigned)h->chunk);
        res = TEE_ERROR_SECURITY;
    }
out:
    TEE_MemFill(chunk, 0, sizeof(chunk));
    TEE_FreeOperation(op);
    return res;
}

/* Why chunk header @h is not the one the pass waits for, or NULL. */
static const char *chunk_mismatch(const struct dz_session *s, const struct dz_chunk_header *h,
                                  const struct chunk_geom *g)
{
    struct dz_chunk_header want;
    const uint8_t *id = s->pass_next == 0 ? h->save_id : s->pass_id;

    expected_header(s, s->pass_next, g, id, &want);
    if (h->magic != want.magic || h->version != want.version)
        return "not a sealed chunk of this version";
    if (TEE_MemCompare(h->model_digest, want.model_digest, sizeof(want.model_digest)) != 0)
        return "sealed for another model";
    if (h->first != want.first || h->last != want.last || h->n_layers != want.n_layers)
        return "sealed for another partition";
    if (h->chunk_bytes != want.chunk_bytes || h->n_chunks != want.n_chunks)
        return "cut for another working buffer";
    if (h->chunk != want.chunk || h->layer != want.layer)
        return "not the chunk asked for";
    if (h->row0 != want.row0 || h->rows != want.rows || h->plain_bytes != want.plain_bytes)
        return "other rows than the chunk asked for";
    if (h->reserved != 0)
        return "reserved field set";
    if (TEE_MemCompare(h->save_id, want.save_id, sizeof(want.save_id)) != 0)
        return "from another save than the pass's chunk 0";
    return NULL;
}

TEE_Result dz_cmd_stream_chunk(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    struct dz_chunk_header h;
    struct chunk_geom g;

    if (types != TEE_PARAM_TYPES(T_MEM_IN, T_VALUE_OUT, T_MEM_OUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_Result res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    const size_t out_bytes = output_bytes(s);
    if (p[2].memref.size < out_bytes) {
        p[2].memref.size = out_bytes;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (!s->pass_active) {
        EMSG("chunk without a pass: STREAM_BEGIN first");
        return TEE_ERROR_BAD_STATE;
    }
    const uint32_t k = s->pass_next;
    chunk_geom(s, k, &g);
    const uint8_t *src = p[0].memref.buffer;
    if (p[0].memref.size != sealed_size(&g)) {
        EMSG("chunk %u of %zu bytes refused: it seals to %zu", (unsigned)k,
             (size_t)p[0].memref.size, sealed_size(&g));
        end_pass(s);
        return TEE_ERROR_SECURITY;
    }
    TEE_MemMove(&h, src, sizeof(h));
    const char *why = chunk_mismatch(s, &h, &g);
    if (why) {
        EMSG("chunk %u refused: %s", (unsigned)k, why);
        end_pass(s);
        return TEE_ERROR_SECURITY;
    }
    res = open_chunk(s, &h, src + sizeof(h), g.plain);
    if (res != TEE_SUCCESS) {
        end_pass(s);
        return res;
    }

    /* Authentic: the layer computes its rows from it. */
    struct dnn_network *net = s->net;
    struct dnn_layer *l = &net->layers[g.layer];
    const float *in = g.layer == 0 ? s->input : net->layers[g.layer - 1].output;
    if (k == 0)
        TEE_MemMove(s->pass_id, h.save_id, sizeof(s->pass_id));
    if (dnn_connected_forward_rows(l, in, s->work, s->work + g.rows, g.row0, g.rows) != DNN_OK) {
        end_pass(s);
        return TEE_ERROR_GENERIC; /* dz_stream_chunks admitted this layer: a TA bug */
    }
    TEE_MemFill(s->work, 0, g.plain);
    if (g.last_rows)
        run_plain_layers(s, g.layer + 1);
    s->pass_next = k + 1;
    p[2].memref.size = 0;
    if (s->pass_next < s->n_chunks) {
        p[1].value.a = s->pass_next;
        return TEE_SUCCESS;
    }

    /* The pass is complete: what FORWARD would write. */
    end_pass(s);
    p[1].value.a = DZ_STREAM_DONE;
    if (!s->ends_network)
        TEE_MemMove(p[2].memref.buffer, net->layers[net->n - 1].output, out_bytes);
    else if (s->hdr.output_policy == DZ_OUTPUT_SCORES)
        dz_output_scores(s, p[2].memref.buffer);
    else
        dz_output_predictions(s, p[2].memref.buffer);
    p[2].memref.size = out_bytes;
    return TEE_SUCCESS;
}
