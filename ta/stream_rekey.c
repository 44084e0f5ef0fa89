/*
 * stream_rekey.c - a sealed import's chunks re-sealed under the device's chunk key
 * (DZ_CMD_STREAM_REKEY, darknetz_ta.h), so that a training session that streams a sealed
 * blob can write a streamed save and resume from it.
 *
 * The chunks of STREAM_IMPORT_SEALED live under a random key of that import (stream_sealed.c:
 * GCM releases plaintext before the blob's tag is checked, so the device's chunk key must
 * never seal any of it until the tag matched). That key dies with the TA session, and so
 * would the training run's result. Once the tag has matched, nothing stops the TA from
 * moving the chunks to the chunk key: it opens each under the import's key, exactly as a
 * pass would (the session's save at its generation), and seals the same plaintext,
 * parameters and updates, under the chunk key as chunk k of a new save at generation 0.
 *
 * Chunk-key chunks are the normal world's own parameters to the TA: a kept save's load
 * (STREAM_IMPORT with DZ_STREAM_DONE) and LOAD_CHUNK give them the request's policy. So only
 * a blob whose policy was the normal world's own request is re-keyed: a device's save with
 * no owner version (sealed_own), whose policy bound what the normal world itself asked for
 * and binds the new chunks no more than a streamed save of the same run, which carries none.
 * An owner's model keeps its policy, its version and its
 * import key: re-keying it would strip the owner's rules from its parameters, so it is
 * refused (ACCESS_DENIED) before anything changes.
 *
 * From chunk 0 to the last the session runs no pass (params_lost): the chunks of two keys
 * exist side by side, and the new save is not whole. Any refusal after chunk 0's checks ends
 * the re-key and wipes the import's key (dz_stream_unseal): neither save is accepted again,
 * and the normal world imports anew. The last chunk wipes the import's key too, so the
 * normal world cannot run the old save beside the new one.
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

#define T_VALUE_IN TEE_PARAM_TYPE_VALUE_INPUT
#define T_MEM_IN TEE_PARAM_TYPE_MEMREF_INPUT
#define T_MEM_OUT TEE_PARAM_TYPE_MEMREF_OUTPUT
#define T_NONE TEE_PARAM_TYPE_NONE

/* Chunk 0's checks of the session's state; TEE_SUCCESS when a re-key may start. */
static TEE_Result may_start(const struct dz_session *s)
{
    if (s->rekey_active) {
        EMSG("STREAM_REKEY: a re-key is under way, at chunk %u", (unsigned)s->rekey_next);
        return TEE_ERROR_BAD_STATE;
    }
    if (!s->sealed_save || s->params_lost) {
        EMSG("STREAM_REKEY: the session holds no sealed import to re-key");
        return TEE_ERROR_BAD_STATE;
    }
    if (!s->sealed_own) {
        EMSG("STREAM_REKEY refused: an owner's sealed model keeps its policy; its chunks stay "
             "under their import's key");
        return TEE_ERROR_ACCESS_DENIED;
    }
    if (s->pass_active) {
        EMSG("STREAM_REKEY: a pass is under way");
        return TEE_ERROR_BAD_STATE;
    }
    return TEE_SUCCESS;
}

/* Ends a re-key (and the import it came from) after a refusal: neither save authenticates
 * again, and the session runs no pass until an import. */
static TEE_Result refuse(struct dz_session *s, TEE_Result res)
{
    dz_stream_unseal(s);
    s->params_lost = true;
    TEE_MemFill(s->work, 0, s->chunk_bytes);
    return res;
}

/* The last chunk is re-sealed: the session is an ordinary streamed training session on the
 * new save, the normal world's own (as after a plain STREAM_IMPORT). */
static void finish(struct dz_session *s)
{
    uint8_t id[16];
    TEE_MemMove(id, s->rekey_id, sizeof(id));
    dz_stream_unseal(s); /* the import's key goes, the policy becomes the request's */
    s->gen_bound = true;
    s->generation = 0;
    TEE_MemMove(s->bound_id, id, sizeof(s->bound_id));
    s->params_lost = false;
}

TEE_Result dz_cmd_stream_rekey(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    struct dz_chunk_header h, want;
    struct dz_chunk_geom g;

    if (types != TEE_PARAM_TYPES(T_VALUE_IN, T_MEM_IN, T_MEM_OUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (!s->streaming || !s->training) {
        EMSG("STREAM_REKEY outside a streamed training session");
        return TEE_ERROR_BAD_STATE;
    }
    const uint32_t k = p[0].value.a;
    if (k >= s->n_chunks) {
        EMSG("STREAM_REKEY: chunk %u, the segment has %u", (unsigned)k, (unsigned)s->n_chunks);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    dz_stream_geom(s->net, s->chunk_bytes, true, k, &g);
    const size_t sealed = sizeof(h) + g.plain + DZ_SEALED_TAG_BYTES;
    if (p[2].memref.size < sealed) {
        p[2].memref.size = sealed;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (k == 0) {
        TEE_Result res = may_start(s);
        if (res != TEE_SUCCESS)
            return res;
        res = dz_derive_chunk_key(s);
        if (res != TEE_SUCCESS)
            return res;
        s->rekey_active = true;
        s->rekey_next = 0;
        TEE_GenerateRandom(s->rekey_id, sizeof(s->rekey_id));
        s->params_lost = true; /* until the new save is whole */
    } else if (!s->rekey_active || k != s->rekey_next) {
        EMSG("STREAM_REKEY: chunk %u out of order (expected %u)", (unsigned)k,
             s->rekey_active ? (unsigned)s->rekey_next : 0u);
        return s->rekey_active ? refuse(s, TEE_ERROR_BAD_STATE) : TEE_ERROR_BAD_STATE;
    }

    /* Exactly chunk k of the session's save at its generation, as a pass would take it. */
    const uint8_t *src = p[1].memref.buffer;
    if (p[1].memref.size != sealed) {
        EMSG("STREAM_REKEY: chunk %u of %zu bytes refused: it seals to %zu", (unsigned)k,
             (size_t)p[1].memref.size, sealed);
        return refuse(s, TEE_ERROR_SECURITY);
    }
    TEE_MemMove(&h, src, sizeof(h));
    dz_stream_header(s, s->chunk_bytes, s->n_chunks, k, &g, s->bound_id, s->generation, &want);
    TEE_MemMove(want.nonce, h.nonce, sizeof(want.nonce));
    if (TEE_MemCompare(&h, &want, sizeof(h)) != 0) {
        EMSG("STREAM_REKEY: chunk %u refused: not chunk %u of the session's save at "
             "generation %u",
             (unsigned)k, (unsigned)k, (unsigned)s->generation);
        return refuse(s, TEE_ERROR_SECURITY);
    }
    TEE_Result res = dz_stream_open_work(s, s->save_key, &h, src + sizeof(h), g.plain);
    if (res != TEE_SUCCESS)
        return refuse(s, res);

    /* The same plaintext under the chunk key, as chunk k of the new save. */
    dz_stream_header(s, s->chunk_bytes, s->n_chunks, k, &g, s->rekey_id, 0, &want);
    res = dz_stream_seal_work(s, s->chunk_key, &want, &g, p[2].memref.buffer);
    TEE_MemFill(s->work, 0, s->chunk_bytes);
    if (res != TEE_SUCCESS)
        return refuse(s, res);
    p[2].memref.size = sealed;
    s->rekey_next = k + 1;
    if (s->rekey_next == s->n_chunks)
        finish(s);
    return TEE_SUCCESS;
}
