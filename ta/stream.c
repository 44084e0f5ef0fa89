/*
 * stream.c - weight streaming: a segment whose parameters do not fit the TA's heap runs with
 * its activations and one working buffer resident, and takes each layer's parameters from
 * the normal world as sealed chunks, one block of output filters or neurons at a time (the
 * engine's tiles, dnn/tiles.c; DZ_CMD_STREAM_IMPORT, DZ_CMD_STREAM_BEGIN, DZ_CMD_STREAM_CHUNK;
 * darknetz_ta.h).
 *
 * Each chunk is AES-256-GCM under the device's chunk key (DZ_CHUNK_LABEL; a sealed blob's
 * import seals under a random key of its own, stream_sealed.c) with struct
 * dz_chunk_header as additional data: the model digest, the partition, the working-buffer size, the
 * layer, the chunk's index, the chunk count, its rows and size, and the save id shared by every
 * chunk of one save. A pass asks for chunk 0, 1, ... n_chunks-1 in turn and refuses anything but
 * the exact chunk it asked for, from the save its chunk 0 came from: a chunk cannot be swapped with
 * another layer's or another index's, replayed from another save or model, reordered, truncated or
 * extended. The ciphertext is copied out of shared memory once, through a bounce buffer, and
 * decrypted into the working buffer; the layer computes with it only after the tag has matched. Any
 * refusal ends the pass and wipes the working buffer; the next STREAM_BEGIN starts over.
 *
 * Training streams too. A chunk then carries its rows' update (momentum) buffers beside their
 * parameters; a FORWARD_TRAIN pass streams as inference does, a BACKWARD pass streams the
 * layers in reverse (each layer's chunks in row order, which keeps gemm's order of terms in the
 * input delta) and an UPDATE pass in order, and both re-seal every chunk after the gradient or
 * the step was applied to it, so the normal world holds it again before the next one is
 * opened: the working buffer holds one chunk, whatever the segment's size. With batch
 * normalisation the FORWARD_TRAIN pass re-seals too: it moves the rolling statistics the
 * chunks hold. Each re-seal moves the chunk to the next generation, which its header binds,
 * and into a new save (an id random per re-sealing pass); the session accepts only its
 * current generation of its own save, so an older version of a chunk (before an update, or a
 * training forward) is refused like a chunk of another save, and so is a chunk of another
 * lineage (a kept copy of the save trained again from the same generation).
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

TEE_Result dz_stream_chunks(const struct dnn_network *net, const struct dz_model_header *hdr,
                            size_t chunk_bytes, uint32_t *n_chunks)
{
    const bool training = hdr->training != 0;

    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        if (training && l->spec.frozen) {
            /* BACKWARD streams every layer with parameters; a stopbackward would need a
             * pass of its own */
            EMSG("layer %zu: a frozen layer (stopbackward) in a streamed training segment",
                 hdr->first + i);
            return TEE_ERROR_BAD_PARAMETERS;
        }
        if (!l->n_params)
            continue;
        const char *why = dnn_tile_refusal(l);
        if (why) {
            EMSG("layer %zu (%s): %s", hdr->first + i, l->ops->name, why);
            return TEE_ERROR_BAD_PARAMETERS;
        }
        if (dnn_tile_layer_count(l, chunk_bytes, training) == 0) {
            EMSG("layer %zu: one output's %s (%zu floats) exceed the working buffer of %zu "
                 "bytes",
                 hdr->first + i, training ? "parameters and updates" : "parameters",
                 dnn_tile_row_floats(l, training), chunk_bytes);
            return TEE_ERROR_BAD_PARAMETERS;
        }
    }
    const size_t total = dnn_tile_count(net->layers, net->n, chunk_bytes, training);
    if (total == 0 || total >= DZ_STREAM_DONE) {
        EMSG("layers %u..%u: %zu chunks to stream", (unsigned)hdr->first, (unsigned)hdr->last,
             total);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    *n_chunks = (uint32_t)total;
    return TEE_SUCCESS;
}

uint32_t dz_stream_count(const struct dnn_network *net, size_t chunk_bytes, bool updates)
{
    const size_t total = dnn_tile_count(net->layers, net->n, chunk_bytes, updates);
    return total < DZ_STREAM_DONE ? (uint32_t)total : 0;
}

void dz_stream_geom(const struct dnn_network *net, size_t chunk_bytes, bool updates, uint32_t k,
                    struct dz_chunk_geom *g)
{
    struct dnn_tile t;
    dnn_tile_at(net->layers, net->n, chunk_bytes, updates, k, &t);
    memset(g, 0, sizeof(*g));
    g->layer = t.layer;
    g->row0 = (uint32_t)t.row0;
    g->rows = (uint32_t)t.rows;
    g->params = t.param_floats * sizeof(float);
    g->plain = t.floats * sizeof(float);
    g->first_rows = t.first_rows;
    g->last_rows = t.last_rows;
}

/* The chunks a pass takes: the session's own cut, or a kept training save's in an
 * inference session (kept_updates). */
static uint32_t pass_chunks(const struct dz_session *s)
{
    return s->kept_updates ? s->kept_chunks : s->n_chunks;
}

/* Chunk @k of a pass (k < pass_chunks()). */
static void session_geom(const struct dz_session *s, uint32_t k, struct dz_chunk_geom *g)
{
    dz_stream_geom(s->net, s->chunk_bytes, s->training || s->kept_updates, k, g);
}

/* The chunk a pass takes at position @pos: in order, or for BACKWARD the layers from the
 * last, each layer's chunks in row order. */
static uint32_t chunk_at(const struct dz_session *s, uint32_t pos)
{
    if (s->pass_kind != DZ_STREAM_BACKWARD)
        return pos;
    uint32_t after = s->n_chunks; /* chunks of the layers after layer i */
    for (size_t i = s->net->n; i-- > 0;) {
        const struct dnn_layer *l = &s->net->layers[i];
        if (!l->n_params)
            continue;
        const uint32_t n = (uint32_t)dnn_tile_layer_count(l, s->chunk_bytes, s->training);
        const uint32_t first = after - n;          /* layer i's first chunk */
        const uint32_t seen = s->n_chunks - after; /* positions the later layers took */
        if (pos < seen + n)
            return first + (pos - seen);
        after = first;
    }
    return pos; /* pos >= n_chunks: not reached */
}

size_t dz_stream_plain_bytes(const struct dz_session *s, uint32_t k)
{
    struct dz_chunk_geom g;
    if (!s->net || !s->streaming || k >= pass_chunks(s))
        return 0;
    session_geom(s, k, &g);
    return g.plain;
}

static size_t sealed_size(const struct dz_chunk_geom *g)
{
    return sizeof(struct dz_chunk_header) + g->plain + DZ_SEALED_TAG_BYTES;
}

void dz_stream_header(const struct dz_session *s, size_t chunk_bytes, uint32_t n_chunks, uint32_t k,
                      const struct dz_chunk_geom *g, const uint8_t save_id[16], uint32_t generation,
                      struct dz_chunk_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = DZ_CHUNK_MAGIC;
    h->version = DZ_TA_PROTOCOL_VERSION;
    memcpy(h->model_digest, s->model_digest, sizeof(h->model_digest));
    h->first = s->hdr.first;
    h->last = s->hdr.last;
    h->n_layers = s->hdr.n_layers;
    h->chunk_bytes = (uint32_t)chunk_bytes;
    h->layer = s->hdr.first + (uint32_t)g->layer;
    h->chunk = k;
    h->n_chunks = n_chunks;
    h->row0 = g->row0;
    h->rows = g->rows;
    h->plain_bytes = (uint32_t)g->plain;
    memcpy(h->save_id, save_id, sizeof(h->save_id));
    h->generation = generation;
}

/* The header chunk @k of a pass over save @save_id at @generation carries, nonce zero. */
static void expected_header(const struct dz_session *s, uint32_t k, const struct dz_chunk_geom *g,
                            const uint8_t save_id[16], uint32_t generation,
                            struct dz_chunk_header *h)
{
    dz_stream_header(s, s->chunk_bytes, pass_chunks(s), k, g, save_id, generation, h);
}

/* The input of segment layer @i in the pass. */
static const float *layer_input(const struct dz_session *s, size_t i)
{
    return i == 0 ? s->input : s->net->layers[i - 1].output;
}

/* Where layer @i's backward adds its input delta: the previous layer's delta, or for the
 * segment's first layer the delta going back (none when the segment starts the network). */
static float *layer_input_delta(const struct dz_session *s, size_t i)
{
    if (i > 0)
        return s->net->layers[i - 1].delta;
    return s->hdr.first > 0 ? s->io : NULL;
}

/* Runs the layers without parameters from segment index @i on, up to the next layer with
 * parameters (exclusive) or the end. */
static void run_plain_layers(struct dz_session *s, size_t i)
{
    struct dnn_network *net = s->net;
    const bool train = s->pass_kind == DZ_STREAM_FORWARD_TRAIN;
    size_t j = i;

    while (j < net->n && !net->layers[j].n_params)
        j++;
    if (j > i)
        dnn_network_forward_range(net, i, j - 1, layer_input(s, i),
                                  train && s->takes_truth ? s->truth : NULL, train);
}

/* Runs backward the layers without parameters from segment index @i down, to the previous
 * layer with parameters (exclusive) or the segment's start; @i == SIZE_MAX: none. */
static void backward_plain_layers(struct dz_session *s, size_t i)
{
    struct dnn_network *net = s->net;
    size_t j = i + 1; /* the layers j..i run */

    if (i >= net->n)
        return;
    while (j > 0 && !net->layers[j - 1].n_params)
        j--;
    if (j <= i)
        dnn_network_backward_range(net, j, i, layer_input(s, j), layer_input_delta(s, j));
}

/* What a forward pass writes when done (darknetz_ta.h), in bytes; 0 for none. */
static size_t output_bytes(const struct dz_session *s)
{
    switch (s->pass_kind) {
    case DZ_STREAM_FORWARD:
        if (!s->ends_network)
            return s->out_floats * sizeof(float);
        if (s->hdr.output_policy == DZ_OUTPUT_SCORES)
            return (size_t)s->hdr.batch * s->classes * sizeof(float);
        return (size_t)s->hdr.batch * sizeof(struct dz_prediction);
    case DZ_STREAM_FORWARD_TRAIN:
        return s->ends_network ? 0 : s->out_floats * sizeof(float);
    case DZ_STREAM_BACKWARD:
        return s->hdr.first > 0 ? s->in_floats * sizeof(float) : 0;
    default:
        return s->pass_loss ? 2 * sizeof(uint32_t) : 0;
    }
}

/* BACKWARD and UPDATE change the chunks: each goes back re-sealed; so does FORWARD_TRAIN
 * in a segment with batch normalisation, whose forward moves the rolling statistics
 * (dnn_tile_forward_moves, the rule the normal world follows too). */
static bool pass_reseals(const struct dz_session *s)
{
    return s->pass_kind == DZ_STREAM_BACKWARD || s->pass_kind == DZ_STREAM_UPDATE ||
           (s->pass_kind == DZ_STREAM_FORWARD_TRAIN &&
            dnn_tile_forward_moves(s->net->layers, s->net->n));
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
    s->pass_gen = 0;
    TEE_MemFill(s->pass_id, 0, sizeof(s->pass_id));
    TEE_MemFill(s->work, 0, s->chunk_bytes);
}

/* A refused chunk. In a pass that re-seals, the normal world now holds chunks of two
 * generations and the segment's gradient is half applied: nothing is left to compute with
 * until a new import (dz_cmd_stream_import's chunk 0). */
static TEE_Result refuse(struct dz_session *s, TEE_Result res)
{
    if (s->pass_active && pass_reseals(s)) {
        EMSG("the streamed parameters are lost: import them again");
        s->params_lost = true;
    }
    end_pass(s);
    return res;
}

TEE_Result dz_stream_key(struct dz_session *s, const uint8_t **key)
{
    if (s->sealed_save) {
        *key = s->save_key;
        return TEE_SUCCESS;
    }
    TEE_Result res = dz_derive_chunk_key(s);
    *key = res == TEE_SUCCESS ? s->chunk_key : NULL;
    return res;
}

void dz_stream_unseal(struct dz_session *s)
{
    dz_sealed_import_abort(s);
    s->rekey_active = false; /* its chunks so far are of a save that never completes */
    s->rekey_next = 0;
    TEE_MemFill(s->rekey_id, 0, sizeof(s->rekey_id));
    if (!s->sealed_save)
        return;
    s->sealed_save = false;
    s->sealed_own = false;
    TEE_MemFill(s->save_key, 0, sizeof(s->save_key));
    dz_policy_of_request(&s->hdr, &s->policy);
    s->policy_sealed = false;
    s->model_version = 0;
}

static TEE_Result seal_work(struct dz_session *s, struct dz_chunk_header *h,
                            const struct dz_chunk_geom *g, uint8_t *dst)
{
    const uint8_t *key = NULL;
    TEE_Result res = dz_stream_key(s, &key);
    return res == TEE_SUCCESS ? dz_stream_seal_work(s, key, h, g, dst) : res;
}

TEE_Result dz_stream_seal_work(struct dz_session *s, const uint8_t *key, struct dz_chunk_header *h,
                               const struct dz_chunk_geom *g, uint8_t *dst)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t bounce[DZ_STREAM_BOUNCE + DZ_SEALED_TAG_BYTES];
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    const uint8_t *const work = (const uint8_t *)s->work;
    uint8_t *const ct = dst + sizeof(*h);
    size_t done = 0, len = 0, tag_len = sizeof(tag);

    TEE_GenerateRandom(h->nonce, sizeof(h->nonce));
    TEE_Result res = dz_gcm_operation(key, TEE_MODE_ENCRYPT, &op);
    if (res == TEE_SUCCESS)
        res = TEE_AEInit(op, h->nonce, sizeof(h->nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(*h),
                         g->plain);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(op, h, sizeof(*h));
    for (size_t off = 0; off < g->plain; off += DZ_STREAM_BOUNCE) {
        const size_t n = g->plain - off < DZ_STREAM_BOUNCE ? g->plain - off : DZ_STREAM_BOUNCE;
        len = sizeof(bounce);
        res = TEE_AEUpdate(op, work + off, n, bounce, &len);
        if (res == TEE_SUCCESS && len > g->plain - done)
            res = TEE_ERROR_GENERIC;
        if (res != TEE_SUCCESS)
            goto out;
        TEE_MemMove(ct + done, bounce, len);
        done += len;
    }
    len = sizeof(bounce);
    res = TEE_AEEncryptFinal(op, NULL, 0, bounce, &len, tag, &tag_len);
    if (res == TEE_SUCCESS && (done + len != g->plain || tag_len != sizeof(tag)))
        res = TEE_ERROR_GENERIC;
    if (res != TEE_SUCCESS)
        goto out;
    TEE_MemMove(ct + done, bounce, len);
    TEE_MemMove(ct + g->plain, tag, sizeof(tag));
    TEE_MemMove(dst, h, sizeof(*h));
out:
    if (res != TEE_SUCCESS)
        EMSG("chunk %u: seal %#x", (unsigned)h->chunk, (unsigned)res);
    TEE_MemFill(bounce, 0, sizeof(bounce));
    TEE_FreeOperation(op);
    return res;
}

/* ----------------------------------------------------------------- import */

/* The normal world will stream a save it kept (chunks sealed earlier, by this session or
 * another): a load. The training state goes as with any load, the session is bound to no save
 * until the next pass's chunk 0 chooses one (save and generation), and `seen` is the save's,
 * which the normal world gives as it gives a plain file's (the chunks do not bind it). */
static TEE_Result adopt_kept_save(struct dz_session *s, uint32_t flags, uint64_t seen)
{
    TEE_Result res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    uint32_t kept = 0;
    if (flags & ~DZ_STREAM_KEPT_UPDATES)
        return TEE_ERROR_BAD_PARAMETERS;
    if ((flags & DZ_STREAM_KEPT_UPDATES) && !s->training) {
        /* A training save in an inference session: the passes open its chunks (parameters
         * and updates: they must fit the working buffer) and use the parameters. */
        kept = dz_stream_count(s->net, s->chunk_bytes, true);
        if (kept == 0) {
            EMSG("a training save's chunks do not fit a working buffer of %zu bytes",
                 s->chunk_bytes);
            return TEE_ERROR_BAD_PARAMETERS;
        }
    }
    end_pass(s);
    s->kept_updates = kept != 0;
    s->kept_chunks = kept;
    s->import_active = false;
    dz_stream_unseal(s); /* a kept save is sealed with the chunk key: the normal world's own */
    if (s->training)
        dz_reset_training(s);
    s->gen_bound = false;
    s->generation = 0;
    TEE_MemFill(s->bound_id, 0, sizeof(s->bound_id));
    s->params_lost = false;
    /* A load starts from zero momenta (darknet saves none, a resident load clears them): the
     * chunks' update buffers are cleared as the first re-sealing pass opens them. */
    s->updates_stale = s->training;
    s->net->seen = seen;
    return TEE_SUCCESS;
}

TEE_Result dz_cmd_stream_import(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    struct dz_chunk_header h;
    struct dz_chunk_geom g;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (types == TEE_PARAM_TYPES(T_VALUE_IN, T_NONE, T_NONE, T_VALUE_IN) &&
        p[0].value.a == DZ_STREAM_DONE)
        return adopt_kept_save(s, p[0].value.b, ((uint64_t)p[3].value.b << 32) | p[3].value.a);
    if (types != TEE_PARAM_TYPES(T_VALUE_IN, T_MEM_IN, T_MEM_OUT, T_NONE) &&
        types != TEE_PARAM_TYPES(T_VALUE_IN, T_MEM_IN, T_MEM_OUT, T_VALUE_IN))
        return TEE_ERROR_BAD_PARAMETERS;
    res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    const uint32_t k = p[0].value.a;
    if (k >= s->n_chunks) {
        EMSG("chunk %u imported: the segment has %u", (unsigned)k, (unsigned)s->n_chunks);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    /* The session's own cut, whatever a kept save's passes took. */
    dz_stream_geom(s->net, s->chunk_bytes, s->training, k, &g);
    if (p[1].memref.size != g.params) {
        EMSG("plain chunk %u of %zu bytes refused: expected %zu", (unsigned)k,
             (size_t)p[1].memref.size, g.params);
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
    if (k != 0 && s->sealed_save) {
        EMSG("chunk %u imported plain into a save imported sealed", (unsigned)k);
        return TEE_ERROR_BAD_STATE;
    }
    if (k == 0) {
        /* The normal world's own parameters from here, as after LOAD_PLAIN: an owner's policy
         * and save key go (dz_stream_unseal), and chunk_key seals below. */
        dz_stream_unseal(s);
        if (s->kept_updates) {
            end_pass(s); /* it took the kept save's cut */
            s->kept_updates = false;
        }
        s->params_lost = false; /* a refused sealed import left none */
        TEE_GenerateRandom(s->import_id, sizeof(s->import_id));
        s->import_active = true;
        /* `seen` of the parameters, as LOAD_PLAIN takes it: the schedule's rate needs it. */
        if (TEE_PARAM_TYPE_GET(types, 3) == T_VALUE_IN)
            s->net->seen = ((uint64_t)p[3].value.b << 32) | p[3].value.a;
        if (s->training) {
            /* New parameters, as a load: the training state and any earlier save go. */
            end_pass(s);
            dz_reset_training(s);
            s->params_lost = false;
            s->updates_stale = false; /* sealed below with zero updates */
            s->gen_bound = true;
            s->generation = 0;
            TEE_MemMove(s->bound_id, s->import_id, sizeof(s->bound_id));
        } else {
            /* An inference session follows the save of each pass's chunk 0 again: a sealed
             * import bound it to that import's save, which these chunks are not of. */
            s->gen_bound = false;
            s->generation = 0;
            TEE_MemFill(s->bound_id, 0, sizeof(s->bound_id));
        }
    }
    dz_stream_header(s, s->chunk_bytes, s->n_chunks, k, &g, s->import_id, 0, &h);

    /* The plaintext once into TA memory (the updates after it zero), then sealed. */
    TEE_MemFill(s->work, 0, s->chunk_bytes);
    TEE_MemMove(s->work, p[1].memref.buffer, g.params);
    res = seal_work(s, &h, &g, p[2].memref.buffer);
    if (res == TEE_SUCCESS) {
        p[2].memref.size = sealed_size(&g);
        s->import_next = k + 1;
        if (s->import_next == s->n_chunks)
            s->import_active = false;
    } else {
        s->import_active = false;
    }
    TEE_MemFill(s->work, 0, s->chunk_bytes);
    return res;
}

/* ------------------------------------------------------------------- pass */

/* The checks and first steps of a training pass (@kind), as FORWARD(TRAIN), BACKWARD and
 * UPDATE do them resident; TEE_SUCCESS when the pass may start. */
static TEE_Result begin_training(struct dz_session *s, uint32_t kind, bool want_loss)
{
    if (!s->training) {
        EMSG("a training pass on a segment opened for inference");
        return TEE_ERROR_BAD_STATE;
    }
    if (dz_params_held(s, "training pass") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    if (kind == DZ_STREAM_UPDATE)
        return dz_update_allowed(s, want_loss);
    if (dz_training_allowed(s, "training pass") != TEE_SUCCESS)
        return TEE_ERROR_ACCESS_DENIED;
    if (kind == DZ_STREAM_FORWARD_TRAIN && s->backwards >= s->hdr.subdivisions) {
        EMSG("training forward refused: %u backward passes since the last update; UPDATE first",
             (unsigned)s->backwards);
        return TEE_ERROR_BAD_STATE;
    }
    if (kind == DZ_STREAM_BACKWARD && !s->forward_pending) {
        EMSG("backward without a training forward before it");
        return TEE_ERROR_BAD_STATE;
    }
    return TEE_SUCCESS;
}

TEE_Result dz_cmd_stream_begin(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (TEE_PARAM_TYPE_GET(types, 1) != T_VALUE_OUT)
        return TEE_ERROR_BAD_PARAMETERS;
    const bool has_kind = TEE_PARAM_TYPE_GET(types, 2) == T_VALUE_IN;
    const uint32_t kind = has_kind ? p[2].value.a : DZ_STREAM_FORWARD;
    const uint32_t flags = has_kind ? p[2].value.b : 0;
    if (kind > DZ_STREAM_UPDATE || (flags & ~DZ_STREAM_WANT_LOSS) ||
        (flags && kind != DZ_STREAM_UPDATE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_Result res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    if (s->pass_active && pass_reseals(s) && s->pass_next > 0) {
        /* Abandoned half way: the normal world holds chunks of two generations. */
        EMSG("a pass that re-seals abandoned after %u chunks", (unsigned)s->pass_next);
        return refuse(s, TEE_ERROR_BAD_STATE);
    }

    /* What comes in for this pass (darknetz_ta.h). */
    const bool forward = kind == DZ_STREAM_FORWARD || kind == DZ_STREAM_FORWARD_TRAIN;
    const bool with_truth = kind == DZ_STREAM_FORWARD_TRAIN && s->takes_truth;
    const bool with_data = forward || (kind == DZ_STREAM_BACKWARD && !s->ends_network);
    const uint32_t want =
        TEE_PARAM_TYPES(with_data ? T_MEM_IN : T_NONE, T_VALUE_OUT, has_kind ? T_VALUE_IN : T_NONE,
                        with_truth ? T_MEM_IN : T_NONE);
    if (types != want)
        return TEE_ERROR_BAD_PARAMETERS;
    const size_t data_bytes = (forward                      ? s->in_floats
                               : kind == DZ_STREAM_BACKWARD ? s->out_floats
                                                            : 0) *
                              sizeof(float);
    if (with_data && p[0].memref.size != data_bytes) {
        EMSG("pass data of %zu bytes refused: expected %zu", (size_t)p[0].memref.size, data_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    const size_t truth_bytes = s->truth_floats * sizeof(float);
    if (with_truth && p[3].memref.size != truth_bytes) {
        EMSG("truth of %zu bytes refused: expected %zu", (size_t)p[3].memref.size, truth_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    /* As FORWARD (commands.c): a tree's labels are ranked after darknet's hierarchy, in the
     * normal world, so a pass that would rank them here is refused before it starts. */
    if (kind == DZ_STREAM_FORWARD && s->ends_network && s->has_tree &&
        s->hdr.output_policy != DZ_OUTPUT_SCORES) {
        EMSG("labels of a tree softmax are not ranked in the TA: ask for output policy scores");
        return TEE_ERROR_ACCESS_DENIED;
    }
    if (kind != DZ_STREAM_FORWARD) {
        res = begin_training(s, kind, flags & DZ_STREAM_WANT_LOSS);
        if (res != TEE_SUCCESS)
            return res;
    } else if (dz_params_held(s, "forward") != TEE_SUCCESS) {
        return TEE_ERROR_BAD_STATE;
    }
    end_pass(s);
    s->pass_kind = kind;
    s->pass_loss = (flags & DZ_STREAM_WANT_LOSS) != 0;
    /* A new save for what this pass re-seals: two passes from the same generation (a kept
     * copy loaded again, here or in another session) give two lineages whose chunks must
     * not mix, and a generation number alone cannot tell them apart. */
    if (pass_reseals(s))
        TEE_GenerateRandom(s->reseal_id, sizeof(s->reseal_id));
    struct dnn_network *net = s->net;
    if (forward) {
        /* Another forward overwrites what a pending backward needs, as resident. */
        s->forward_pending = false;
        TEE_MemMove(s->input, p[0].memref.buffer, data_bytes);
        if (with_truth)
            TEE_MemMove(s->truth, p[3].memref.buffer, truth_bytes);
        if (kind == DZ_STREAM_FORWARD_TRAIN) {
            net->seen += s->hdr.batch; /* as darknet's train_network_datum, before the pass */
            /* The deltas the forward zeroes resident, streamed layers' included. */
            for (size_t i = 0; i < net->n; i++)
                if (net->layers[i].delta)
                    TEE_MemFill(net->layers[i].delta, 0,
                                net->layers[i].outputs * (size_t)net->layers[i].batch *
                                    sizeof(float));
        }
        run_plain_layers(s, 0);
    } else if (kind == DZ_STREAM_BACKWARD) {
        s->forward_pending = false; /* one BACKWARD per training forward, even abandoned */
        if (!s->ends_network) {
            float *delta = net->layers[net->n - 1].delta; /* (batch, outputs) */
            TEE_MemMove(s->io, p[0].memref.buffer, data_bytes);
            for (size_t i = 0; i < s->out_floats; i++)
                delta[i] += s->io[i];
        }
        if (s->hdr.first > 0)
            TEE_MemFill(s->io, 0, s->in_floats * sizeof(float)); /* backward adds into it */
        backward_plain_layers(s, net->n - 1);
    }
    s->pass_active = true;
    p[1].value.a = chunk_at(s, 0);
    p[1].value.b = pass_chunks(s);
    return TEE_SUCCESS;
}

/* Decrypts the sealed chunk at @src (header already checked, copied to @h) into s->work
 * under the session's key. */
static TEE_Result open_chunk(struct dz_session *s, const struct dz_chunk_header *h,
                             const uint8_t *src, size_t plain)
{
    const uint8_t *key = NULL;
    TEE_Result res = dz_stream_key(s, &key);
    return res == TEE_SUCCESS ? dz_stream_open_work(s, key, h, src, plain) : res;
}

TEE_Result dz_stream_open_work(struct dz_session *s, const uint8_t *key,
                               const struct dz_chunk_header *h, const uint8_t *src, size_t plain)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t chunk[DZ_STREAM_BOUNCE];
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    uint8_t *const work = (uint8_t *)s->work;
    size_t done = 0, len = 0;
    TEE_Result res = dz_gcm_operation(key, TEE_MODE_DECRYPT, &op);

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

/* Why chunk header @h is not chunk @k, the one the pass waits for, or NULL. A bound
 * (training) session takes its own save at its generation only; otherwise the pass's chunk 0
 * chooses the save and generation the rest must share. */
static const char *chunk_mismatch(const struct dz_session *s, uint32_t k,
                                  const struct dz_chunk_header *h, const struct dz_chunk_geom *g)
{
    struct dz_chunk_header want;
    const bool adopt = !s->gen_bound && s->pass_next == 0;
    const uint8_t *id = s->gen_bound ? s->bound_id : adopt ? h->save_id : s->pass_id;
    const uint32_t gen = s->gen_bound ? s->generation : adopt ? h->generation : s->pass_gen;

    expected_header(s, k, g, id, gen, &want);
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
    /* the generation first: an older chunk also has another save id (each re-sealing pass
     * makes a new save), and its number says what it is */
    if (h->generation != want.generation)
        return h->generation < want.generation ? "an older generation: replayed"
                                               : "another generation than the session's";
    if (TEE_MemCompare(h->save_id, want.save_id, sizeof(want.save_id)) != 0)
        return s->gen_bound ? "not of the session's save"
                            : "from another save than the pass's "
                              "chunk 0";
    return NULL;
}

/* The authentic chunk @g in s->work: the pass's computation. */
static TEE_Result compute_chunk(struct dz_session *s, const struct dz_chunk_geom *g)
{
    struct dnn_network *net = s->net;
    struct dnn_layer *l = &net->layers[g->layer];
    struct dnn_tile_params p;
    const struct dnn_tile t = {.layer = g->layer,
                               .row0 = g->row0,
                               .rows = g->rows,
                               .param_floats = g->params / sizeof(float),
                               .floats = g->plain / sizeof(float),
                               .first_rows = g->first_rows,
                               .last_rows = g->last_rows};
    enum dnn_status st = DNN_ERR_INVALID;

    dnn_tile_bind(l, &t, s->training, s->work, &p);
    /* A load starts from zero momenta: the first pass that re-seals clears them. */
    if (pass_reseals(s) && s->updates_stale)
        TEE_MemFill((uint8_t *)s->work + g->params, 0, g->plain - g->params);
    switch (s->pass_kind) {
    case DZ_STREAM_BACKWARD:
        st = dnn_tile_backward(l, layer_input(s, g->layer), layer_input_delta(s, g->layer), &p,
                               g->row0, g->rows, g->first_rows, g->last_rows, net->workspace,
                               net->delta_cols);
        if (st == DNN_OK && g->last_rows)
            backward_plain_layers(s, g->layer - 1); /* SIZE_MAX after layer 0: none */
        break;
    case DZ_STREAM_UPDATE: {
        struct dnn_update_args a;
        dnn_network_update_args(net, g->layer, &a);
        st = dnn_tile_update(l, &a, &p, g->rows);
        break;
    }
    default:
        st = dnn_tile_forward(l, layer_input(s, g->layer), s->pass_kind == DZ_STREAM_FORWARD_TRAIN,
                              &p, g->row0, g->rows, net->workspace);
        if (st == DNN_OK && g->last_rows)
            run_plain_layers(s, g->layer + 1);
        break;
    }
    /* dz_stream_chunks admitted this layer: anything else is a TA bug */
    return st == DNN_OK ? TEE_SUCCESS : TEE_ERROR_GENERIC;
}

/* The pass is complete: its effects, and what it writes to @out (output_bytes()). */
static void finish_pass(struct dz_session *s, void *out)
{
    struct dnn_network *net = s->net;
    uint32_t loss[2] = {0, 0};

    switch (s->pass_kind) {
    case DZ_STREAM_FORWARD:
        if (!s->ends_network)
            TEE_MemMove(out, net->layers[net->n - 1].output, output_bytes(s));
        else if (s->hdr.output_policy == DZ_OUTPUT_SCORES)
            dz_output_scores(s, out);
        else
            dz_output_predictions(s, out);
        break;
    case DZ_STREAM_FORWARD_TRAIN:
        s->forward_pending = true;
        if (s->ends_network && s->has_cost)
            s->loss_sum += dnn_network_cost(net);
        if (!s->ends_network)
            TEE_MemMove(out, net->layers[net->n - 1].output, output_bytes(s));
        break;
    case DZ_STREAM_BACKWARD:
        s->forward_pending = false;
        s->backwards++;
        if (s->hdr.first > 0)
            TEE_MemMove(out, s->io, output_bytes(s));
        break;
    default:
        dz_update_done(s, &loss[0], &loss[1]);
        if (s->pass_loss)
            TEE_MemMove(out, loss, sizeof(loss));
        break;
    }
    if (pass_reseals(s)) {
        /* every chunk is there now, of the pass's new save: the older ones are refused */
        TEE_MemMove(s->bound_id, s->reseal_id, sizeof(s->bound_id));
        s->generation++;
        s->updates_stale = false;
    }
}

TEE_Result dz_cmd_stream_chunk(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    struct dz_chunk_header h;
    struct dz_chunk_geom g;
    const uint32_t t2 = TEE_PARAM_TYPE_GET(types, 2), t3 = TEE_PARAM_TYPE_GET(types, 3);

    /* The shape of every pass's call first; which optional ones the pass wants below. */
    if (TEE_PARAM_TYPE_GET(types, 0) != T_MEM_IN || TEE_PARAM_TYPE_GET(types, 1) != T_VALUE_OUT ||
        (t2 != T_MEM_OUT && t2 != T_NONE) || (t3 != T_MEM_OUT && t3 != T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_Result res = streamed_session(s);
    if (res != TEE_SUCCESS)
        return res;
    if (!s->pass_active) {
        EMSG("chunk without a pass: STREAM_BEGIN first");
        return TEE_ERROR_BAD_STATE;
    }
    const size_t out_bytes = output_bytes(s);
    const bool reseal = pass_reseals(s);
    if (types != (uint32_t)TEE_PARAM_TYPES(T_MEM_IN, T_VALUE_OUT, out_bytes ? T_MEM_OUT : T_NONE,
                                           reseal ? T_MEM_OUT : T_NONE)) {
        /* The inference protocol's output is always there; a training pass's only when it
         * writes one. */
        if (!(s->pass_kind == DZ_STREAM_FORWARD &&
              types == TEE_PARAM_TYPES(T_MEM_IN, T_VALUE_OUT, T_MEM_OUT, T_NONE)))
            return TEE_ERROR_BAD_PARAMETERS;
    }
    const uint32_t k = chunk_at(s, s->pass_next);
    session_geom(s, k, &g);
    if (out_bytes && p[2].memref.size < out_bytes) {
        p[2].memref.size = out_bytes;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (reseal && p[3].memref.size < sealed_size(&g)) {
        p[3].memref.size = sealed_size(&g);
        return TEE_ERROR_SHORT_BUFFER;
    }
    const uint8_t *src = p[0].memref.buffer;
    if (p[0].memref.size != sealed_size(&g)) {
        EMSG("chunk %u of %zu bytes refused: it seals to %zu", (unsigned)k,
             (size_t)p[0].memref.size, sealed_size(&g));
        return refuse(s, TEE_ERROR_SECURITY);
    }
    TEE_MemMove(&h, src, sizeof(h));
    const char *why = chunk_mismatch(s, k, &h, &g);
    if (why) {
        EMSG("chunk %u refused: %s", (unsigned)k, why);
        return refuse(s, TEE_ERROR_SECURITY);
    }
    res = open_chunk(s, &h, src + sizeof(h), g.plain);
    if (res != TEE_SUCCESS)
        return refuse(s, res);

    /* Authentic: the pass computes with it. */
    if (s->pass_next == 0) {
        TEE_MemMove(s->pass_id, h.save_id, sizeof(s->pass_id));
        s->pass_gen = h.generation;
        if (s->training && !s->gen_bound) {
            /* A training session keeps to the save it first streamed. */
            s->gen_bound = true;
            s->generation = h.generation;
            TEE_MemMove(s->bound_id, h.save_id, sizeof(s->bound_id));
        }
    }
    res = compute_chunk(s, &g);
    if (res == TEE_SUCCESS && reseal) {
        struct dz_chunk_header out;
        expected_header(s, k, &g, s->reseal_id, s->generation + 1, &out);
        res = seal_work(s, &out, &g, p[3].memref.buffer);
        if (res == TEE_SUCCESS)
            p[3].memref.size = sealed_size(&g);
    }
    if (res != TEE_SUCCESS)
        return refuse(s, res);
    TEE_MemFill(s->work, 0, g.plain);
    s->pass_next++;
    if (out_bytes)
        p[2].memref.size = 0;
    if (s->pass_next < pass_chunks(s)) {
        p[1].value.a = chunk_at(s, s->pass_next);
        return TEE_SUCCESS;
    }

    /* The pass is complete. */
    finish_pass(s, out_bytes ? p[2].memref.buffer : NULL);
    end_pass(s);
    p[1].value.a = DZ_STREAM_DONE;
    if (out_bytes)
        p[2].memref.size = out_bytes;
    return TEE_SUCCESS;
}
