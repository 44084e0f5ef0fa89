/*
 * stream_sealed.c - a sealed blob (DZ_CMD_LOAD_SEALED's format: this device's own or an
 * owner's) imported into a weight-streaming session's chunks inside the TA
 * (DZ_CMD_STREAM_IMPORT_SEALED, darknetz_ta.h), so that a model deployed sealed streams
 * without its plaintext ever reaching the normal world.
 *
 * The blob is larger than the TA's heap, so it is decrypted incrementally: one AES-GCM
 * operation lives across the calls, each call feeds it the ciphertext of one chunk through a
 * stack buffer (each byte of shared memory read once) and the plaintext goes straight to
 * where the chunk wants it: a layer's payload is its whole tensors in .weights order, the
 * per-output ones (biases, and for a batch-normalised convolution scales, rolling_mean,
 * rolling_variance) before the weights, while a chunk holds its outputs' slice of each
 * (dnn_tile_parts), so the layer's per-output tensors wait in a buffer of 4 * out_c floats at
 * most (its "head") and the weight rows go into the working buffer. A layer whose weights
 * are not its last tensor (a batch-normalised connected layer: its BN triple follows the
 * weights) cannot be cut so and is refused. A complete chunk is re-sealed (ta/stream.c's
 * chunk format) and handed out.
 *
 * GCM releases plaintext before the tag is known, so the chunks of an import are sealed
 * under a random key of that import, not the device's chunk key: the key stays in the import
 * until the tag at the end of the blob has matched, and only then becomes the session's
 * save_key. A tag that does not match (or any other refusal) wipes the key: no chunk of that
 * import authenticates, in this session or any other, ever. Between chunk 0 and the last
 * chunk the session holds no usable parameters (params_lost), so no pass runs on a half
 * import. Chunk 0 applies LOAD_SEALED's checks (dz_sealed_admit: model, partition, length,
 * the request within the sealed policy, the rollback version); the last records the version
 * and adopts the policy, exactly as a resident load does.
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

#define T_NONE TEE_PARAM_TYPE_NONE
#define T_VALUE_INOUT TEE_PARAM_TYPE_VALUE_INOUT
#define T_VALUE_OUT TEE_PARAM_TYPE_VALUE_OUTPUT
#define T_MEM_IN TEE_PARAM_TYPE_MEMREF_INPUT
#define T_MEM_OUT TEE_PARAM_TYPE_MEMREF_OUTPUT

/* Ciphertext crosses shared memory through a stack buffer of this size. */
#define DZ_IMPORT_BOUNCE 4096u
/* An AES block: what a GCM implementation may hold back until more ciphertext comes. */
#define DZ_AES_BLOCK 16u

struct dz_sealed_import {
    TEE_OperationHandle op;          /* AES-GCM decryption of the payload, across the calls */
    struct dz_sealed_header h;       /* the blob's header, read once with chunk 0 */
    uint8_t key[DZ_KEY_BYTES];       /* this import's chunk key: save_key once the tag matched */
    uint8_t save_id[16];             /* every chunk of the import carries it */
    float *biases;                   /* (bias_floats) the current layer's head tensors */
    size_t bias_floats;              /* the largest head of the segment, in floats */
    size_t read;                     /* blob bytes read so far, header included */
    size_t ct_done, pt_done;         /* payload bytes fed to the cipher, and placed */
    uint32_t next;                   /* the chunk the next call makes */
    struct dz_chunk_geom g;          /* where it lies */
    size_t layer_at, chunk_end;      /* payload offsets: its layer's biases, its end */
    uint8_t carry[2 * DZ_AES_BLOCK]; /* plaintext past chunk_end the cipher released */
    size_t carry_n;
};

void dz_sealed_import_abort(struct dz_session *s)
{
    struct dz_sealed_import *imp = s->sealed_import;
    if (!imp)
        return;
    TEE_FreeOperation(imp->op);
    dz_wipe_free(imp->biases, imp->bias_floats * sizeof(float));
    dz_wipe_free(imp, sizeof(*imp)); /* the key and the carried plaintext with it */
    s->sealed_import = NULL;
    if (s->work)
        TEE_MemFill(s->work, 0, s->chunk_bytes);
}

/* Payload bytes of layer @l: its tensors, in .weights order. */
static size_t layer_bytes(const struct dnn_layer *l)
{
    size_t n = 0;
    for (size_t j = 0; j < l->n_params; j++)
        n += l->params[j].count;
    return n * sizeof(float);
}

/* Bytes of @l's head: every tensor before the weights, its last, one float per output each. */
static size_t head_bytes(const struct dnn_layer *l)
{
    return (l->n_params - 1) * (size_t)l->out_c * sizeof(float);
}

/* Bytes of one output's weights: a filter or weight row. */
static size_t row_bytes(const struct dnn_layer *l)
{
    return l->params[l->n_params - 1].count / (size_t)l->out_c * sizeof(float);
}

/* Whether @l's payload can be cut in payload order: the weights last, one float per output
 * in every tensor before them. */
static bool head_then_rows(const struct dnn_layer *l)
{
    if (!l->n_params || strcmp(l->params[l->n_params - 1].name, "weights") != 0)
        return false;
    for (size_t j = 0; j + 1 < l->n_params; j++)
        if (l->params[j].count != (size_t)l->out_c)
            return false;
    return true;
}

/* Chunk @k's place in the payload, for the next call. */
static void locate(const struct dz_session *s, struct dz_sealed_import *imp, uint32_t k)
{
    struct dz_chunk_geom *g = &imp->g;
    dz_stream_geom(s->net, s->chunk_bytes, s->training, k, g);
    imp->layer_at = 0;
    for (size_t i = 0; i < g->layer; i++)
        if (s->net->layers[i].n_params)
            imp->layer_at += layer_bytes(&s->net->layers[i]);
    const struct dnn_layer *l = &s->net->layers[g->layer];
    imp->chunk_end = imp->layer_at + head_bytes(l) + ((size_t)g->row0 + g->rows) * row_bytes(l);
    imp->next = k;
}

/*
 * @n plaintext bytes from payload offset pt_done on: what belongs to the chunk under way goes
 * to the layer's biases or the working buffer, the rest (the cipher released it early) is
 * carried to the next call. TEE_ERROR_GENERIC when more arrives than a block's worth.
 */
static TEE_Result place(struct dz_session *s, struct dz_sealed_import *imp, const uint8_t *src,
                        size_t n)
{
    const struct dz_chunk_geom *g = &imp->g;
    const struct dnn_layer *l = &s->net->layers[g->layer];
    const size_t bias_bytes = head_bytes(l);
    /* the weights' slice follows the head's slices in the chunk */
    const size_t weights_at = (l->n_params - 1) * (size_t)g->rows * sizeof(float);

    while (n && imp->pt_done < imp->chunk_end) {
        const size_t room = imp->chunk_end - imp->pt_done;
        const size_t off = imp->pt_done - imp->layer_at; /* >= 0: chunks come in order */
        size_t t = n < room ? n : room;
        if (off < bias_bytes) {
            t = t < bias_bytes - off ? t : bias_bytes - off;
            TEE_MemMove((uint8_t *)imp->biases + off, src, t);
        } else {
            /* Rows row0.. of the layer, after the chunk's own head slices in the work buffer. */
            const size_t w = off - bias_bytes - (size_t)g->row0 * row_bytes(l);
            TEE_MemMove((uint8_t *)s->work + weights_at + w, src, t);
        }
        imp->pt_done += t;
        src += t;
        n -= t;
    }
    if (n > sizeof(imp->carry) - imp->carry_n)
        return TEE_ERROR_GENERIC;
    TEE_MemMove(imp->carry + imp->carry_n, src, n);
    imp->carry_n += n;
    return TEE_SUCCESS;
}

/* Plaintext carried from the last call into the chunk now under way. */
static TEE_Result place_carry(struct dz_session *s, struct dz_sealed_import *imp)
{
    uint8_t tmp[sizeof(imp->carry)];
    const size_t n = imp->carry_n;
    TEE_MemMove(tmp, imp->carry, n);
    TEE_MemFill(imp->carry, 0, sizeof(imp->carry));
    imp->carry_n = 0;
    TEE_Result res = place(s, imp, tmp, n);
    TEE_MemFill(tmp, 0, sizeof(tmp));
    return res;
}

/*
 * Feeds the cipher the ciphertext of the chunk under way from @src (@avail bytes, the
 * call's window of the blob) until its plaintext is complete; the last chunk also takes the tag and
 * authenticates the whole payload (TEE_ERROR_SECURITY when it does not match). *used gets
 * the bytes read.
 */
static TEE_Result feed(struct dz_session *s, struct dz_sealed_import *imp, const uint8_t *src,
                       size_t avail, bool last, size_t *used)
{
    const size_t payload = s->payload_bytes;
    uint8_t in[DZ_IMPORT_BOUNCE], out[DZ_IMPORT_BOUNCE + DZ_AES_BLOCK];
    TEE_Result res = TEE_SUCCESS;
    size_t len = 0;

    *used = 0;
    while (imp->pt_done < imp->chunk_end) {
        /* The chunk's ciphertext; past it, a block at a time while the cipher holds back. */
        size_t want = imp->ct_done < imp->chunk_end ? imp->chunk_end - imp->ct_done : DZ_AES_BLOCK;
        want = want < sizeof(in) ? want : sizeof(in);
        want = want < payload - imp->ct_done ? want : payload - imp->ct_done;
        if (want == 0)
            break; /* only the final call releases the rest */
        if (want > avail - *used) {
            res = TEE_ERROR_SECURITY;
            goto out;
        }
        TEE_MemMove(in, src + *used, want);
        *used += want;
        imp->ct_done += want;
        len = sizeof(out);
        res = TEE_AEUpdate(imp->op, in, want, out, &len);
        if (res == TEE_SUCCESS)
            res = place(s, imp, out, len);
        if (res != TEE_SUCCESS)
            goto out;
    }
    if (last) {
        uint8_t tag[DZ_SEALED_TAG_BYTES];
        if (imp->ct_done != payload || sizeof(tag) != avail - *used) {
            res = TEE_ERROR_SECURITY;
            goto out;
        }
        TEE_MemMove(tag, src + *used, sizeof(tag));
        *used += sizeof(tag);
        len = sizeof(out);
        res = TEE_AEDecryptFinal(imp->op, NULL, 0, out, &len, tag, sizeof(tag));
        if (res != TEE_SUCCESS) {
            EMSG("sealed blob refused: authentication failed; no chunk of this import is valid");
            res = TEE_ERROR_SECURITY;
            goto out;
        }
        res = place(s, imp, out, len);
        if (res == TEE_SUCCESS && (imp->pt_done != payload || imp->carry_n))
            res = TEE_ERROR_GENERIC;
    } else if (imp->pt_done != imp->chunk_end) {
        res = TEE_ERROR_GENERIC;
    }
out:
    TEE_MemFill(out, 0, sizeof(out));
    return res;
}

/* Chunk 0: LOAD_SEALED's checks, then the session drops what it held and the import starts. */
static TEE_Result start(struct dz_session *s, const uint8_t *src, size_t size)
{
    uint8_t key[DZ_KEY_BYTES];
    struct dz_sealed_header h;
    size_t most = 0;

    /* A window of the blob (darknetz_ta.h); its length is checked at the end, where the
     * tag must end the last window exactly. */
    if (size < sizeof(h) || size > s->sealed_bytes) {
        EMSG("sealed blob window of %zu bytes refused: layers %u..%u seal to %zu", size,
             (unsigned)s->hdr.first, (unsigned)s->hdr.last, s->sealed_bytes);
        return TEE_ERROR_SECURITY;
    }
    TEE_MemMove(&h, src, sizeof(h));
    TEE_Result res = dz_sealed_admit(s, &h, key);
    if (res != TEE_SUCCESS)
        return res;

    /* Admitted: whatever the session streamed before goes, as with any load. */
    dz_stream_unseal(s);
    s->import_active = false;
    s->pass_active = false;
    s->kept_updates = false; /* the import cuts as the session */
    s->gen_bound = false;
    s->params_lost = true; /* until the tag matched */
    for (size_t i = 0; i < s->net->n; i++) {
        const struct dnn_layer *l = &s->net->layers[i];
        if (!l->n_params)
            continue;
        if (!head_then_rows(l)) {
            EMSG("layer %zu (%s): its weights are not its last tensor: a sealed blob cannot be "
                 "cut into its chunks",
                 s->hdr.first + i, l->ops->name);
            res = TEE_ERROR_NOT_SUPPORTED;
            goto out;
        }
        if (head_bytes(l) / sizeof(float) > most)
            most = head_bytes(l) / sizeof(float);
    }
    struct dz_sealed_import *imp = TEE_Malloc(sizeof(*imp), TEE_MALLOC_FILL_ZERO);
    if (!imp) {
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    s->sealed_import = imp;
    imp->op = TEE_HANDLE_NULL;
    imp->h = h;
    imp->bias_floats = most;
    imp->biases = TEE_Malloc(most * sizeof(float), TEE_MALLOC_FILL_ZERO);
    if (!imp->biases) {
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    res = dz_gcm_operation(key, TEE_MODE_DECRYPT, &imp->op);
    if (res == TEE_SUCCESS)
        res = TEE_AEInit(imp->op, h.nonce, sizeof(h.nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(h),
                         s->payload_bytes);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(imp->op, &h, sizeof(h));
    TEE_GenerateRandom(imp->key, sizeof(imp->key));
    TEE_GenerateRandom(imp->save_id, sizeof(imp->save_id));
out:
    TEE_MemFill(key, 0, sizeof(key)); /* the operation keeps its own copy */
    if (res != TEE_SUCCESS)
        dz_sealed_import_abort(s);
    return res;
}

/* The tag matched: the session's chunks are this import's, under its policy (as after
 * LOAD_SEALED), the version recorded first. */
static TEE_Result adopt(struct dz_session *s, struct dz_sealed_import *imp)
{
    const struct dz_sealed_header *h = &imp->h;
    TEE_Result res = dz_rollback_record(h->model_digest, h->model_version);
    if (res != TEE_SUCCESS)
        return res;
    s->sealed_save = true;
    TEE_MemMove(s->save_key, imp->key, sizeof(s->save_key));
    /* An owner's blob has a version >= 1 (seal.c refuses it otherwise), and a device's save
     * keeps the version its parameters came with: version 0 and the device's key is a
     * lineage that began with the normal world's own parameters. */
    s->sealed_own = h->key_kind == DZ_KEY_DEVICE && h->model_version == 0;
    if (s->training)
        dz_reset_training(s);
    s->net->seen = ((uint64_t)h->seen_hi << 32) | h->seen_lo;
    s->policy = h->policy;
    s->policy_sealed = true;
    s->model_version = h->model_version;
    s->gen_bound = true; /* the session takes this save only */
    s->generation = 0;
    TEE_MemMove(s->bound_id, imp->save_id, sizeof(s->bound_id));
    s->updates_stale = false; /* sealed with zero updates */
    s->params_lost = false;
    return TEE_SUCCESS;
}

TEE_Result dz_cmd_stream_import_sealed(struct dz_session *s, uint32_t types,
                                       TEE_Param p[TEE_NUM_PARAMS])
{
    struct dz_chunk_geom g;
    struct dz_chunk_header ch;
    TEE_Result res = TEE_ERROR_GENERIC;
    size_t used = 0;

    if (types != TEE_PARAM_TYPES(T_VALUE_INOUT, T_MEM_IN, T_MEM_OUT, T_VALUE_OUT))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (!s->streaming) {
        EMSG("STREAM_IMPORT_SEALED in a session with resident parameters: LOAD_SEALED");
        return TEE_ERROR_BAD_STATE;
    }
    const uint32_t k = p[0].value.a;
    if (k >= s->n_chunks) {
        EMSG("chunk %u imported: the segment has %u", (unsigned)k, (unsigned)s->n_chunks);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    dz_stream_geom(s->net, s->chunk_bytes, s->training, k, &g);
    const size_t sealed = sizeof(ch) + g.plain + DZ_SEALED_TAG_BYTES;
    if (p[2].memref.size < sealed) {
        p[2].memref.size = sealed;
        return TEE_ERROR_SHORT_BUFFER;
    }
    const uint8_t *src = p[1].memref.buffer;
    const size_t size = p[1].memref.size;
    if (k == 0) {
        res = start(s, src, size);
        if (res != TEE_SUCCESS)
            return res;
        used = sizeof(struct dz_sealed_header);
    } else if (!s->sealed_import || k != s->sealed_import->next ||
               size > s->sealed_bytes - s->sealed_import->read) {
        EMSG("sealed import: chunk %u with %zu bytes of blob out of order", (unsigned)k, size);
        if (s->sealed_import)
            dz_sealed_import_abort(s); /* ends it: its chunks never become valid */
        return TEE_ERROR_BAD_STATE;
    }
    struct dz_sealed_import *imp = s->sealed_import;
    const bool last = k + 1 == s->n_chunks;
    size_t fed = 0;
    locate(s, imp, k);
    TEE_MemFill(s->work, 0, s->chunk_bytes); /* training: the updates start at zero */
    res = place_carry(s, imp);
    if (res == TEE_SUCCESS)
        res = feed(s, imp, src + used, size - used, last, &fed);
    if (res != TEE_SUCCESS)
        goto fail;
    used += fed;
    imp->read += used;

    /* The chunk's head slices in front of its weight rows, then sealed under the import's
     * key. */
    const struct dnn_layer *l = &s->net->layers[g.layer];
    for (size_t j = 0; j + 1 < l->n_params; j++)
        TEE_MemMove((float *)s->work + j * g.rows, imp->biases + j * (size_t)l->out_c + g.row0,
                    (size_t)g.rows * sizeof(float));
    dz_stream_header(s, s->chunk_bytes, s->n_chunks, k, &g, imp->save_id, 0, &ch);
    res = dz_stream_seal_work(s, imp->key, &ch, &g, p[2].memref.buffer);
    TEE_MemFill(s->work, 0, s->chunk_bytes);
    if (res != TEE_SUCCESS)
        goto fail;
    p[2].memref.size = sealed;
    p[0].value.a = (uint32_t)used;
    p[0].value.b = 0;
    imp->next = k + 1;
    if (!last)
        return TEE_SUCCESS;
    res = adopt(s, imp);
    if (res != TEE_SUCCESS)
        goto fail;
    p[0].value.b = imp->h.model_version;
    p[3].value.a = imp->h.seen_lo;
    p[3].value.b = imp->h.seen_hi;
    dz_sealed_import_abort(s); /* done: its state goes, its key lives on as save_key */
    return TEE_SUCCESS;
fail:
    if (res != TEE_ERROR_SECURITY)
        EMSG("sealed import: chunk %u: %#x", (unsigned)k, (unsigned)res);
    dz_sealed_import_abort(s);
    return res;
}
