/*
 * dz_session.h - the DarkneTZ TA's session state and the functions its files share.
 *
 * One session serves one partition: layers [first, last] of a network of n_layers, built by
 * DZ_CMD_OPEN_MODEL as a network of its own (struct dnn_network, index_base = first). Every
 * buffer below lives in the TA heap and is wiped before it is freed; no pointer to a memref
 * outlives the call that received it.
 *
 * All allocations use TEE_MALLOC_FILL_ZERO, not TEE_MALLOC_NO_SHARE: OP-TEE serves NO_SHARE
 * from a second heap of TA_NO_SHARE_DATA_SIZE bytes (0 unless configured, then every such
 * allocation fails), while the engine's arena comes from malloc, i.e. the TA_DATA_SIZE heap.
 * One heap keeps the secure-memory plan (dz_ta_memory.h) exact; these buffers are never
 * passed to another TA, which is what NO_SHARE guards against.
 */
#ifndef DZ_SESSION_H
#define DZ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tee_internal_api.h>

#include "darknetz_ta.h"
#include "dnn/dnn.h"
#include "dz_wire.h"

#define DZ_KEY_BYTES 32
#define DZ_DIGEST_BYTES 32

struct dz_session {
    /* ---- the segment, set by DZ_CMD_OPEN_MODEL */
    struct dnn_network *net;    /* NULL until a model is open */
    struct dz_model_header hdr; /* the validated header */
    bool training;
    bool ends_network; /* last == n_layers - 1 */
    bool has_cost;     /* a layer of the segment computes a cost */
    bool takes_truth;  /* training && has_cost: FORWARD(TRAIN) carries a truth */
    size_t classes;    /* per image: scores the output policy ranks (ends_network) */
    size_t in_floats, out_floats, truth_floats, io_floats; /* per batch */
    size_t payload_bytes; /* every parameter float of the segment, 4 bytes each */
    size_t sealed_bytes;  /* header + payload + tag */
    uint8_t model_digest[DZ_DIGEST_BYTES];
    /* (tree_bytes) the group sizes of the segment's tree softmax layers, decoded from the
     * model description; the network's specs borrow them, so they go after it. */
    int *tree;
    size_t tree_bytes;
    bool has_tree; /* labels are not ranked here: darknet ranks after its hierarchy */

    float *input; /* (batch, inputs) copy of the last forward's input */
    float *truth; /* (batch, truths) copy of the last truth, or NULL */
    float *io;    /* (io_floats) delta in / delta out, training only */

    /* ---- what the parameters now loaded allow (DESIGN.md invariant 5) */
    struct dz_policy policy; /* the request's own, or the sealed policy of the last load */
    bool policy_sealed;      /* policy came from a sealed blob: UPDATE checks the rate */
    uint32_t model_version;  /* the owner's release of the parameters, 0 for none */

    /* ---- true after a sealed load failed its second pass (seal.c): the parameters are
     * wiped and every command that uses them answers TEE_ERROR_BAD_STATE until a load */
    bool params_lost;

    /* ---- training state, reset by every load (invariant 6: dz_reset_training) */
    bool forward_pending; /* a DZ_FORWARD_TRAIN forward awaits its BACKWARD */
    uint32_t backwards;   /* BACKWARDs since the last UPDATE or load */
    float loss_sum;       /* network cost summed over the forwards since the last UPDATE */
    float avg_loss;
    bool avg_valid;

    /* ---- weight streaming (stream.c), header.stream_chunk_bytes != 0 */
    bool streaming;
    size_t chunk_bytes;    /* the working buffer */
    float *work;           /* (chunk_bytes / 4) one chunk's plaintext */
    uint32_t n_chunks;     /* of the segment */
    bool import_active;    /* STREAM_IMPORT: a save under way */
    uint32_t import_next;  /* its next chunk */
    uint8_t import_id[16]; /* its save id */
    bool pass_active;      /* STREAM_BEGIN: a pass under way */
    uint32_t pass_kind;    /* its DZ_STREAM_PASS_* */
    bool pass_loss;        /* an UPDATE pass that gives the loss (DZ_STREAM_WANT_LOSS) */
    uint32_t pass_next;    /* its position: the pass's order of chunks (stream.c) */
    uint8_t pass_id[16];   /* the save its chunk 0 came from */
    uint32_t pass_gen;     /* and that chunk's generation */
    /* Training: every chunk the normal world holds is of save bound_id at `generation`; a
     * pass that re-seals (pass_reseals) seals each as save reseal_id, a new random id of that
     * pass, at generation + 1 and, complete, moves the session there, so that no older
     * version of a chunk is accepted again, nor a chunk of another lineage of the same save
     * (a kept copy trained again re-seals under other ids). Set by STREAM_IMPORT's chunk 0
     * or the first pass's chunk 0; inference sessions stay unbound (a pass takes any whole
     * save, as a resident load takes any sealed blob). */
    bool gen_bound;
    uint32_t generation;
    uint8_t bound_id[16];
    uint8_t reseal_id[16];
    bool updates_stale; /* since a kept save's load: the chunks' updates count as zero */
    /* An inference session streaming a training save (STREAM_IMPORT's kept save with
     * DZ_STREAM_KEPT_UPDATES): its passes take chunks cut with their update buffers (half the
     * rows of the working buffer), kept_chunks of them, and compute with the parameters
     * only. The session's own imports (plain or sealed) cut as the session again. */
    bool kept_updates;
    uint32_t kept_chunks;

    /* ---- a sealed blob imported into chunks (stream_sealed.c) */
    struct dz_sealed_import *sealed_import; /* NULL unless one is under way */
    /* The session's chunks come from a sealed blob whose tag verified: they are sealed under
     * save_key, a random key of that import that never leaves the TA, so that no chunk of
     * an import whose tag failed can ever authenticate. */
    bool sealed_save;
    uint8_t save_key[DZ_KEY_BYTES];
    /* That blob is the normal world's own: sealed by this device (DZ_KEY_DEVICE) with no
     * owner version, i.e. saved by a run that began from parameters the normal world gave
     * (LOAD_PLAIN, a plain or kept streamed save). Only such chunks may be re-keyed. */
    bool sealed_own;

    /* ---- STREAM_REKEY (stream_rekey.c): a sealed import's chunks re-sealed under the chunk
     * key, as a new save of the normal world's own */
    bool rekey_active;    /* chunk 0 came, the last not yet */
    uint32_t rekey_next;  /* the chunk it expects */
    uint8_t rekey_id[16]; /* the new save's id */

    /* ---- a streamed save loading into a resident session (stream_resident.c) */
    bool load_active;          /* LOAD_CHUNK: chunk 0 came, the last not yet */
    uint32_t load_next;        /* the chunk it expects */
    uint32_t load_chunk_bytes; /* the cut chunk 0 named */
    bool load_updates;
    uint32_t load_n;
    uint8_t load_id[16]; /* chunk 0's save id and generation, which the rest must carry */
    uint32_t load_gen;

    /* ---- sealing keys, derived on first use */
    bool key_valid;
    uint8_t key[DZ_KEY_BYTES];
    bool chunk_key_valid;
    uint8_t chunk_key[DZ_KEY_BYTES]; /* DZ_CHUNK_LABEL: streamed chunks only */
};

/*
 * dz_reset_training - forget everything derived from the parameters before a load: every
 * buffer of the engine but the parameters (gradients, momenta, activations), the session's
 * copies of the last input, truth and deltas, the pending forward, the BACKWARD count, the
 * loss sum and the running average loss.
 */
void dz_reset_training(struct dz_session *s);

/*
 * dz_lose_params - wipe every parameter, `seen` and (dz_reset_training) every state derived
 * from them, and mark the session as holding none (params_lost).
 */
void dz_lose_params(struct dz_session *s);

/* TEE_MemFill then TEE_Free; NULL is fine. */
void dz_wipe_free(void *p, size_t bytes);

/* TEE_SUCCESS in a session with resident parameters; BAD_STATE (with an EMSG naming
 * @what) in a weight-streaming one. */
TEE_Result dz_resident(const struct dz_session *s, const char *what);

/* TEE_SUCCESS unless a failed load wiped the parameters (BAD_STATE, EMSG naming @what). */
TEE_Result dz_params_held(const struct dz_session *s, const char *what);
/* TEE_SUCCESS when the policy allows training, else ACCESS_DENIED (EMSG naming @what). */
TEE_Result dz_training_allowed(const struct dz_session *s, const char *what);
/* UPDATE's checks before anything changes (parameters held, a BACKWARD since the last
 * UPDATE, the policy, the loss's right to leave when @loss_out, the sealed rate bound);
 * the TEE_Result UPDATE answers. */
TEE_Result dz_update_allowed(const struct dz_session *s, bool loss_out);
/* After the parameters were updated: the iteration's loss line, the counters reset; the loss
 * and its running average as IEEE-754 bits. */
void dz_update_done(struct dz_session *s, uint32_t *loss_bits, uint32_t *avg_bits);

/* ---- model.c */
TEE_Result dz_cmd_open_model(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* ---- commands.c */
TEE_Result dz_cmd_version(uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_load_plain(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_forward(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_backward(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_update(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_train_step(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* ---- seal.c */
TEE_Result dz_cmd_save_sealed(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_load_sealed(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
/*
 * dz_sealed_admit - what LOAD_SEALED checks of a blob's header before any ciphertext, for
 * both the resident load and the streamed import (stream_sealed.c): this model, partition and
 * payload size (TEE_ERROR_SECURITY), the session's request within the sealed policy and the
 * owner version not older than this device's newest (TEE_ERROR_ACCESS_DENIED); then the
 * payload key into @key (wiped on any refusal).
 */
TEE_Result dz_sealed_admit(struct dz_session *s, const struct dz_sealed_header *h,
                           uint8_t key[DZ_KEY_BYTES]);
/*
 * dz_model_digest_*() - SHA-256 of the model as the sealed header's model_digest binds it
 * (darknetz_ta.h). begin allocates the operation and hashes the wire specs; finish hashes
 * first, last, n_layers and the layer shapes of @net, writes the digest and frees the
 * operation; abort frees it. Used by model.c while it builds the segment.
 */
TEE_Result dz_model_digest_begin(TEE_OperationHandle *op, const void *wire_specs, size_t bytes);
TEE_Result dz_model_digest_finish(TEE_OperationHandle *op, const struct dz_model_header *hdr,
                                  const struct dnn_network *net, uint8_t digest[DZ_DIGEST_BYTES]);
void dz_model_digest_abort(TEE_OperationHandle *op);
/* An AES-256-GCM operation in @mode keyed with @key (DZ_KEY_BYTES); freed by the caller. */
TEE_Result dz_gcm_operation(const uint8_t *key, uint32_t mode, TEE_OperationHandle *op);

/* The device's sealing key (DZ_SEAL_LABEL), derived on first use into s->key. */
TEE_Result dz_derive_key(struct dz_session *s);
/* The key of streamed chunks (DZ_CHUNK_LABEL) into s->chunk_key: another key than the
 * blobs', since STREAM_IMPORT encrypts plaintext the normal world chooses. */
TEE_Result dz_derive_chunk_key(struct dz_session *s);

/* ---- stream.c */
/*
 * dz_stream_chunks - the chunks of a streamed segment (net built with cfg.stream_params):
 * TEE_SUCCESS with *n_chunks, or TEE_ERROR_BAD_PARAMETERS (with an EMSG) when a layer with
 * parameters is not a connected layer without batch normalisation, or one of its rows does
 * not fit @chunk_bytes.
 */
TEE_Result dz_stream_chunks(const struct dnn_network *net, const struct dz_model_header *hdr,
                            size_t chunk_bytes, uint32_t *n_chunks);
/* Where chunk k of a segment lies (dz_stream_geom). */
struct dz_chunk_geom {
    size_t layer;    /* index in the segment */
    uint32_t row0;   /* first output neuron */
    uint32_t rows;   /* output neurons */
    size_t params;   /* rows * (inputs + 1) * 4 bytes: biases, weights */
    size_t plain;    /* params, and as much again with the updates (training chunks) */
    bool first_rows; /* the layer's first chunk */
    bool last_rows;  /* the layer's last chunk */
};
/* The chunks @net's parameters are cut into for a working buffer of @chunk_bytes, with their
 * update buffers when @updates (training); 0 when a layer with parameters cannot stream or
 * one of its rows does not fit. */
uint32_t dz_stream_count(const struct dnn_network *net, size_t chunk_bytes, bool updates);
/* Chunk @k (below dz_stream_count's answer) of that cut. */
void dz_stream_geom(const struct dnn_network *net, size_t chunk_bytes, bool updates, uint32_t k,
                    struct dz_chunk_geom *g);
/* The header chunk @k (@g) of a cut of @chunk_bytes in @n_chunks of the session's model and
 * partition carries in save @save_id at @generation, nonce zero. */
void dz_stream_header(const struct dz_session *s, size_t chunk_bytes, uint32_t n_chunks, uint32_t k,
                      const struct dz_chunk_geom *g, const uint8_t save_id[16], uint32_t generation,
                      struct dz_chunk_header *h);
/* Bytes of the plaintext of chunk @k of a streamed session, 0 when there is no such chunk
 * (for the fuzz target, which sends the sizes the protocol wants). */
size_t dz_stream_plain_bytes(const struct dz_session *s, uint32_t k);
TEE_Result dz_cmd_stream_import(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_stream_begin(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_stream_chunk(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* The key the session's chunks are sealed under: save_key after a sealed import, else the
 * device's chunk key (derived on first use). */
TEE_Result dz_stream_key(struct dz_session *s, const uint8_t **key);
/* Back to the normal world's own parameters (a plain import or a kept save): any sealed import
 * under way is dropped, save_key wiped, and the policy becomes the request's. */
void dz_stream_unseal(struct dz_session *s);
/* AES-256-GCM of the @g->plain bytes in s->work under @key and header @h (its nonce filled
 * here) to @dst: the header, the ciphertext through a bounce buffer, the tag. */
TEE_Result dz_stream_seal_work(struct dz_session *s, const uint8_t *key, struct dz_chunk_header *h,
                               const struct dz_chunk_geom *g, uint8_t *dst);
/* Decrypts the @plain ciphertext bytes at @src (then the tag) of the chunk with header @h
 * (already checked) under @key into s->work, each byte of shared memory read once.
 * TEE_ERROR_SECURITY when the tag does not match. */
TEE_Result dz_stream_open_work(struct dz_session *s, const uint8_t *key,
                               const struct dz_chunk_header *h, const uint8_t *src, size_t plain);

/* ---- stream_sealed.c */
TEE_Result dz_cmd_stream_import_sealed(struct dz_session *s, uint32_t types,
                                       TEE_Param p[TEE_NUM_PARAMS]);
/* Ends a sealed import under way (if any) and wipes what it held; its chunks stay invalid. */
void dz_sealed_import_abort(struct dz_session *s);

/* ---- stream_rekey.c */
TEE_Result dz_cmd_stream_rekey(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* ---- stream_resident.c */
TEE_Result dz_cmd_load_chunk(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* ---- provision.c: the device's X25519 provisioning key (DZ_CMD_GET_PUBKEY) */
TEE_Result dz_cmd_get_pubkey(uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
/*
 * dz_owner_unwrap - the content key of a DZ_KEY_OWNER blob (darknetz_ta.h): refused with
 * TEE_ERROR_SECURITY when the blob names another device or the wrap does not authenticate.
 */
TEE_Result dz_owner_unwrap(const struct dz_sealed_header *h, uint8_t key[DZ_KEY_BYTES]);

/* ---- rollback.c: the newest owner version loaded per model, in secure storage */
/* TEE_SUCCESS when @version (0: not an owner's model, never refused) is not older than the
 * newest recorded for @digest; TEE_ERROR_ACCESS_DENIED (with an EMSG) when it is. */
TEE_Result dz_rollback_check(const uint8_t digest[DZ_DIGEST_BYTES], uint32_t version);
/* Records @version for @digest when it is newer than the record (0: nothing to record). */
TEE_Result dz_rollback_record(const uint8_t digest[DZ_DIGEST_BYTES], uint32_t version);

/* ---- output_policy.c */
/* Labels per image of the final scores, written to @dst (batch struct dz_prediction). */
void dz_output_predictions(const struct dz_session *s, void *dst);
/* DZ_OUTPUT_SCORES: the final scores, (batch, classes) floats, to @dst. */
void dz_output_scores(const struct dz_session *s, void *dst);

#endif /* DZ_SESSION_H */
