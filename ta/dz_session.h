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

#define DZ_KEY_BYTES 32
#define DZ_DIGEST_BYTES 32

/* Ceilings the model blob is held to (the engine checks shapes and overflow on top). */
#define DZ_MAX_SPECS 1024u   /* layers in one segment */
#define DZ_MAX_LAYERS 65536u /* layers in the whole network */
#define DZ_MAX_BATCH 65536u
#define DZ_MAX_DIM 65536u         /* h, w, c, filters, subdivisions */
#define DZ_MAX_KERNEL 1024u       /* size, stride, pad */
#define DZ_MAX_OUTPUTS (1u << 24) /* connected outputs, softmax groups */

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

    float *input; /* (batch, inputs) copy of the last forward's input */
    float *truth; /* (batch, truths) copy of the last truth, or NULL */
    float *io;    /* (io_floats) delta in / delta out, training only */

    /* ---- training state */
    bool forward_pending; /* a DZ_FORWARD_TRAIN forward awaits its BACKWARD */
    uint32_t backwards;   /* BACKWARDs since the last UPDATE */
    float loss_sum;       /* network cost summed over the forwards since the last UPDATE */
    float avg_loss;
    bool avg_valid;

    /* ---- sealing key, derived on first use */
    bool key_valid;
    uint8_t key[DZ_KEY_BYTES];
};

/* TEE_MemFill then TEE_Free; NULL is fine. */
void dz_wipe_free(void *p, size_t bytes);

/* ---- model.c */
TEE_Result dz_cmd_open_model(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* ---- commands.c */
TEE_Result dz_cmd_version(uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_load_plain(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_forward(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_backward(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_update(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

/* ---- seal.c */
TEE_Result dz_cmd_save_sealed(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
TEE_Result dz_cmd_load_sealed(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);
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

/* ---- output_policy.c */
/* Labels per image of the final scores, written to @dst (batch struct dz_prediction). */
void dz_output_predictions(const struct dz_session *s, void *dst);

#endif /* DZ_SESSION_H */
