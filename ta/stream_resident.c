/*
 * stream_resident.c - a streamed save loaded into a resident session (DZ_CMD_LOAD_CHUNK): the
 * chunks a weight-streaming session sealed (ta/stream.c), given one by one in order, decrypted
 * straight into the segment's parameter tensors. A segment trained streamed on a small TA then
 * runs resident where the memory allows, without its weights ever leaving the TEE in plain.
 *
 * The chunk key authenticates a chunk as this device's, not as the model owner's (the normal
 * world can have any plaintext sealed with STREAM_IMPORT): the parameters so loaded are the
 * normal world's own, as after LOAD_PLAIN, and the session's policy becomes its request's.
 * Every chunk must be the next one of the save its chunk 0 came from (save id and generation),
 * cut as that chunk 0 says, for this model and partition; any refusal, and any chunk whose tag
 * does not match after its plaintext went into the tensors, leaves the session without
 * parameters (params_lost) until a load completes.
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

#define T_NONE TEE_PARAM_TYPE_NONE
#define T_VALUE_IN TEE_PARAM_TYPE_VALUE_INPUT
#define T_MEM_IN TEE_PARAM_TYPE_MEMREF_INPUT

/* Ciphertext is read from shared memory through a stack buffer of this size. */
#define DZ_LOAD_BOUNCE 4096u

/* Where plaintext byte @off of chunk @g goes: each parameter slice (dnn_tile_parts) into
 * the layer's tensor of that name; the update buffers after them into @discard (a load
 * starts from zero momenta). *avail gets how many bytes from there on are contiguous. */
static uint8_t *destination(const struct dnn_layer *l, const struct dz_chunk_geom *g, bool updates,
                            size_t off, uint8_t *discard, size_t discard_bytes, size_t *avail)
{
    struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
    const struct dnn_tile t = {.layer = g->layer, .row0 = g->row0, .rows = g->rows};
    const size_t n = dnn_tile_parts(l, &t, updates, parts);
    for (size_t i = 0; i < n && !parts[i].update; i++) {
        const size_t begin = parts[i].offset * sizeof(float);
        const size_t end = begin + parts[i].count * sizeof(float);
        if (off >= begin && off < end) {
            *avail = end - off;
            return (uint8_t *)(l->params[parts[i].param].value + parts[i].src) + (off - begin);
        }
    }
    *avail = discard_bytes;
    return discard;
}

/* Decrypts chunk @g (header @h, ciphertext and tag at @src) into the layer's tensors. */
static TEE_Result open_into_tensors(struct dz_session *s, const struct dz_chunk_header *h,
                                    const struct dz_chunk_geom *g, bool updates, const uint8_t *src)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t in[DZ_LOAD_BOUNCE], out[DZ_LOAD_BOUNCE], discard[DZ_LOAD_BOUNCE];
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    const struct dnn_layer *l = &s->net->layers[g->layer];
    size_t done = 0;
    TEE_Result res = dz_derive_chunk_key(s);

    if (res == TEE_SUCCESS)
        res = dz_gcm_operation(s->chunk_key, TEE_MODE_DECRYPT, &op);
    if (res == TEE_SUCCESS)
        res = TEE_AEInit(op, h->nonce, sizeof(h->nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(*h),
                         g->plain);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(op, h, sizeof(*h));
    for (size_t off = 0; off < g->plain; off += DZ_LOAD_BOUNCE) {
        const size_t n = g->plain - off < DZ_LOAD_BOUNCE ? g->plain - off : DZ_LOAD_BOUNCE;
        size_t len = sizeof(out);
        TEE_MemMove(in, src + off, n);
        res = TEE_AEUpdate(op, in, n, out, &len);
        if (res != TEE_SUCCESS || len > g->plain - done)
            goto fail;
        for (size_t at = 0; at < len;) {
            size_t avail = 0;
            uint8_t *dst = destination(l, g, updates, done + at, discard, sizeof(discard), &avail);
            const size_t take = len - at < avail ? len - at : avail;
            TEE_MemMove(dst, out + at, take);
            at += take;
        }
        done += len;
    }
    TEE_MemMove(tag, src + g->plain, sizeof(tag));
    size_t len = sizeof(out);
    res = TEE_AEDecryptFinal(op, NULL, 0, out, &len, tag, sizeof(tag));
    if (res != TEE_SUCCESS || done + len != g->plain)
        goto fail;
    for (size_t at = 0; at < len;) {
        size_t avail = 0;
        uint8_t *dst = destination(l, g, updates, done + at, discard, sizeof(discard), &avail);
        const size_t take = len - at < avail ? len - at : avail;
        TEE_MemMove(dst, out + at, take);
        at += take;
    }
    res = TEE_SUCCESS;
    goto out;
fail:
    EMSG("chunk %u refused: authentication failed", (unsigned)h->chunk);
    res = TEE_ERROR_SECURITY;
out:
    TEE_MemFill(out, 0, sizeof(out));
    TEE_MemFill(discard, 0, sizeof(discard));
    TEE_FreeOperation(op);
    return res;
}

/* Why header @h is not chunk @k of the load under way (or NULL). */
static const char *load_mismatch(const struct dz_session *s, uint32_t k,
                                 const struct dz_chunk_header *h, const struct dz_chunk_geom *g)
{
    struct dz_chunk_header want;
    dz_stream_header(s, s->load_chunk_bytes, s->load_n, k, g, k == 0 ? h->save_id : s->load_id,
                     k == 0 ? h->generation : s->load_gen, &want);
    if (h->magic != want.magic || h->version != want.version)
        return "not a sealed chunk of this version";
    if (TEE_MemCompare(h->model_digest, want.model_digest, sizeof(want.model_digest)) != 0)
        return "sealed for another model";
    if (h->first != want.first || h->last != want.last || h->n_layers != want.n_layers)
        return "sealed for another partition";
    if (h->chunk_bytes != want.chunk_bytes || h->n_chunks != want.n_chunks)
        return "cut otherwise than its save's chunk 0 says";
    if (h->chunk != want.chunk || h->layer != want.layer || h->row0 != want.row0 ||
        h->rows != want.rows || h->plain_bytes != want.plain_bytes)
        return "not the chunk asked for";
    if (TEE_MemCompare(h->save_id, want.save_id, sizeof(want.save_id)) != 0 ||
        h->generation != want.generation)
        return "from another save or generation than chunk 0";
    return NULL;
}

static TEE_Result load_refused(struct dz_session *s, TEE_Result res)
{
    s->load_active = false;
    dz_lose_params(s);
    return res;
}

TEE_Result dz_cmd_load_chunk(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    struct dz_chunk_header h;
    struct dz_chunk_geom g;

    if (types != TEE_PARAM_TYPES(T_VALUE_IN, T_VALUE_IN, T_MEM_IN, T_VALUE_IN))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "LOAD_CHUNK") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    const uint32_t k = p[0].value.a;
    const bool updates = p[0].value.b != 0;
    const uint32_t chunk_bytes = p[1].value.a, n_chunks = p[1].value.b;
    if (p[0].value.b > 1 || chunk_bytes % 4 || chunk_bytes < DZ_STREAM_CHUNK_MIN ||
        chunk_bytes > DZ_STREAM_CHUNK_MAX)
        return TEE_ERROR_BAD_PARAMETERS;
    if (k == 0) {
        if (dz_stream_count(s->net, chunk_bytes, updates) != n_chunks || n_chunks == 0) {
            EMSG("a streamed save of %u chunks of %u bytes%s refused: layers %u..%u cut so "
                 "are %u chunks",
                 (unsigned)n_chunks, (unsigned)chunk_bytes, updates ? " with updates" : "",
                 (unsigned)s->hdr.first, (unsigned)s->hdr.last,
                 (unsigned)dz_stream_count(s->net, chunk_bytes, updates));
            return TEE_ERROR_BAD_PARAMETERS;
        }
        /* From here the tensors hold a mix until the last chunk: nothing computes with them. */
        s->load_active = true;
        s->load_next = 0;
        s->load_chunk_bytes = chunk_bytes;
        s->load_updates = updates;
        s->load_n = n_chunks;
        dz_lose_params(s);
    } else if (!s->load_active || k != s->load_next || chunk_bytes != s->load_chunk_bytes ||
               updates != s->load_updates || n_chunks != s->load_n) {
        EMSG("chunk %u loaded out of order: the load expects chunk %u", (unsigned)k,
             s->load_active ? (unsigned)s->load_next : 0u);
        return s->load_active ? load_refused(s, TEE_ERROR_BAD_STATE) : TEE_ERROR_BAD_STATE;
    }
    dz_stream_geom(s->net, chunk_bytes, updates, k, &g);
    const size_t sealed = sizeof(h) + g.plain + DZ_SEALED_TAG_BYTES;
    if (p[2].memref.size != sealed) {
        EMSG("chunk %u of %zu bytes refused: it seals to %zu", (unsigned)k,
             (size_t)p[2].memref.size, sealed);
        return load_refused(s, TEE_ERROR_SECURITY);
    }
    const uint8_t *src = p[2].memref.buffer;
    TEE_MemMove(&h, src, sizeof(h));
    const char *why = load_mismatch(s, k, &h, &g);
    if (why) {
        EMSG("chunk %u refused: %s", (unsigned)k, why);
        return load_refused(s, TEE_ERROR_SECURITY);
    }
    const TEE_Result res = open_into_tensors(s, &h, &g, updates, src + sizeof(h));
    if (res != TEE_SUCCESS)
        return load_refused(s, res);
    if (k == 0) {
        TEE_MemMove(s->load_id, h.save_id, sizeof(s->load_id));
        s->load_gen = h.generation;
    }
    s->load_next = k + 1;
    if (s->load_next < s->load_n)
        return TEE_SUCCESS;

    /* Complete: the normal world's own parameters, as after LOAD_PLAIN. */
    s->load_active = false;
    dz_reset_training(s);
    s->net->seen = ((uint64_t)p[3].value.b << 32) | p[3].value.a;
    s->params_lost = false;
    dz_policy_of_request(&s->hdr, &s->policy);
    s->policy_sealed = false;
    s->model_version = 0;
    return TEE_SUCCESS;
}
