/*
 * tee_session.h - the normal world's client of the DarkneTZ TA protocol
 * (ta/include/darknetz_ta.h) over the GlobalPlatform TEE Client API.
 *
 * One struct dz_tee is one TEEC context and one session to DZ_TA_UUID serving
 * one partition. The per-batch buffers (layer first's input, the truth, the
 * output of layer last, the deltas in and out, the predictions) live in one
 * block of allocated shared memory, made once by dz_tee_open_model and passed
 * to every call as partial memrefs: no allocation per call. Pointers returned
 * by the accessors below point into that block and stay valid until
 * dz_tee_close; the TA may rewrite them during any call.
 *
 * Recording: when the environment variable DZ_TEE_RECORD names a file, every
 * byte the normal world receives from the TEE (value outputs, output memrefs,
 * and the 4-byte words of the shared block that each call changed) is appended
 * to it - the raw material of the leak audits in tests/test_partition.c and
 * tests/test_cli_seal.c.
 */
#ifndef DZ_TEE_SESSION_H
#define DZ_TEE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"

struct dz_tee;

/* What DZ_CMD_OPEN_MODEL describes. */
struct dz_tee_model {
    const struct dk_model *model;     /* the parsed cfg */
    const struct dnn_network *shapes; /* dz_shapes_create of model at batch */
    int first, last;                  /* the partition, inclusive */
    int batch, subdivisions;          /* images per forward, forwards per update */
    bool training;                    /* allocate gradients, momenta, deltas */
    uint64_t seed;                    /* weights init and dropout streams */
    enum dz_output_policy policy;     /* what leaves when the segment ends the network */
    int top_k;                        /* for DZ_OUTPUT_TOPK */
    size_t stream_chunk_bytes;        /* 0: resident; else weight streaming */
};

/*
 * dz_tee_connect - open a context and a session to the DarkneTZ TA and check
 * its protocol version (DZ_CMD_VERSION), which also gives TA_DATA_SIZE.
 * Returns 0 or -1 with a message in err (*out is then NULL).
 */
int dz_tee_connect(struct dz_tee **out, struct dk_error *err);

/* TA_DATA_SIZE as the TA reported it. */
size_t dz_tee_data_size(const struct dz_tee *t);

/*
 * dz_tee_open_model - describe the network and partition to the TA, which
 * plans and allocates the segment; then allocate the shared block. When the TA
 * refuses for lack of memory the message gives its figure and TA_DATA_SIZE and
 * *ta_need is that figure (else 0). Returns 0 or -1 with a message in err.
 */
int dz_tee_open_model(struct dz_tee *t, const struct dz_tee_model *m, size_t *ta_need,
                      struct dk_error *err);

/* DZ_CMD_LOAD_PLAIN: the segment's floats in .weights order and the file's seen. In a
 * weight-streaming session (dz_tee_streaming) the floats are cut into chunks instead, each
 * sealed by the TA (DZ_CMD_STREAM_IMPORT) and kept in this process's memory for every
 * forward, backward and update, which then run as DZ_CMD_STREAM_BEGIN and one
 * DZ_CMD_STREAM_CHUNK per chunk; backward and update replace each chunk with the one the TA
 * re-seals (the TA refuses the older one from then on). */
int dz_tee_load_plain(struct dz_tee *t, const float *params, size_t count, uint64_t seen,
                      struct dk_error *err);

/* True when the session streams its weights (dz_tee_model.stream_chunk_bytes != 0). */
bool dz_tee_streaming(const struct dz_tee *t);

/*
 * A streamed save (the .tz beside a sealed pair's .weights, README "Weight streaming"): this
 * header, then every sealed chunk in chunk order, each as the TA sealed it (struct
 * dz_chunk_header || ciphertext || tag, plain_bytes in its header), all little-endian. The
 * chunks are the TA's ciphertext: the normal world keeps them, only that TA opens them.
 */
#define DZ_CHUNK_SAVE_MAGIC 0x31425a44u /* "DZB1" little-endian */
struct dz_chunk_save_header {
    uint32_t magic;       /* DZ_CHUNK_SAVE_MAGIC */
    uint32_t version;     /* DZ_TA_PROTOCOL_VERSION */
    uint32_t first, last; /* the partition */
    uint32_t n_chunks;
    uint32_t chunk_bytes; /* the working buffer the chunks were cut for */
    uint32_t training;    /* 1: the chunks carry the update buffers too */
    uint32_t seen_lo, seen_hi;
    uint32_t reserved[3]; /* zero */
};
_Static_assert(sizeof(struct dz_chunk_save_header) == 48, "dz_chunk_save_header is a format");

/*
 * dz_tee_stream_save - the session's chunks as a streamed save with @seen: *buf (malloc'd,
 * caller frees) of *size bytes. -1 with a message when there are none.
 */
int dz_tee_stream_save(const struct dz_tee *t, uint64_t seen, uint8_t **buf, size_t *size,
                       struct dk_error *err);

/*
 * dz_tee_stream_load - take the chunks of streamed save @buf (@size bytes) for the next
 * passes (the TA authenticates each as it comes) and tell the TA it is a load
 * (DZ_CMD_STREAM_IMPORT with DZ_STREAM_DONE); *seen gets the save's. An inference session
 * takes a training save too (DZ_STREAM_KEPT_UPDATES: its passes open the training chunks
 * and use their parameters). Refused (-1 with a message) when the save was cut for another
 * partition or working buffer than this session's, is an inference save given to a
 * training session, or is truncated.
 */
int dz_tee_stream_load(struct dz_tee *t, const uint8_t *buf, size_t size, uint64_t *seen,
                       struct dk_error *err);

/*
 * dz_tee_stream_source - the file (e.g. x.weights.tz) the chunks dz_tee_stream_load took came
 * from: a pass the TA refuses one of them in names it. Until the chunks are replaced. Returns
 * 0, or -1 out of memory (nothing changes).
 */
int dz_tee_stream_source(struct dz_tee *t, const char *file);

/*
 * dz_tee_stream_import_sealed - sealed blob @blob (@size bytes, DZ_CMD_LOAD_SEALED's format:
 * a device-sealed training save or an owner-sealed model) into this streaming session's
 * chunks, re-sealed by the TA chunk by chunk (DZ_CMD_STREAM_IMPORT_SEALED) without the
 * plaintext leaving it; the chunks are kept in memory as after dz_tee_load_plain. On success
 * *seen is the blob's and dz_tee_model_version() its owner version; the session then runs
 * under the blob's policy. A refusal gives -1 with *refused as dz_tee_load_sealed's and no
 * chunks. The chunks are under a key of this TA session only: dz_tee_stream_save refuses them.
 */
int dz_tee_stream_import_sealed(struct dz_tee *t, const uint8_t *blob, size_t size, uint64_t *seen,
                                uint32_t *refused, struct dk_error *err);

/*
 * dz_tee_stream_rekey - after dz_tee_stream_import_sealed in a training session, every chunk
 * re-sealed by the TA under the device's chunk key (DZ_CMD_STREAM_REKEY) and kept in place of
 * the old one, so that the run can write streamed saves (dz_tee_stream_save) and resume from
 * them. Only a blob of the normal world's own (device-sealed, model version 0) is re-keyed:
 * an owner's model is refused (-1, "an owner's sealed model keeps its policy"), as is any
 * other refusal; the session then holds no chunks until a load.
 */
int dz_tee_stream_rekey(struct dz_tee *t, struct dk_error *err);

/*
 * dz_tee_load_chunks - streamed save @buf (@size bytes) into a resident session: every chunk
 * in turn through DZ_CMD_LOAD_CHUNK, which decrypts it into the segment's tensors (momenta
 * start at zero, as after any load); *seen gets the save's. -1 with a message when the save
 * is of another partition or truncated, or the TA refuses a chunk (the session then holds no
 * parameters until a load succeeds).
 */
int dz_tee_load_chunks(struct dz_tee *t, const uint8_t *buf, size_t size, uint64_t *seen,
                       struct dk_error *err);
/* Buffers of the shared block (NULL when the partition has none). */
float *dz_tee_input(struct dz_tee *t);        /* (batch, inputs of first) to fill */
float *dz_tee_truth(struct dz_tee *t);        /* (batch, truths) to fill when the TA has a loss */
const float *dz_tee_output(struct dz_tee *t); /* (batch, outputs of last) after a forward */
float *dz_tee_delta_in(struct dz_tee *t);     /* (batch, outputs of last) to fill before backward */
const float *dz_tee_delta_out(struct dz_tee *t); /* (batch, inputs of first) after backward */
const struct dz_prediction *dz_tee_predictions(struct dz_tee *t); /* (batch) after inference */
const float *dz_tee_scores(struct dz_tee *t); /* (batch, classes) under DZ_OUTPUT_SCORES */

/* True when the truth goes into the TA (it holds a loss layer and trains). */
bool dz_tee_takes_truth(const struct dz_tee *t);

/* DZ_CMD_FORWARD on the input (and truth) now in the shared block. */
int dz_tee_forward(struct dz_tee *t, bool train, struct dk_error *err);
/* DZ_CMD_BACKWARD with the delta now in dz_tee_delta_in (when last is not the last layer). */
int dz_tee_backward(struct dz_tee *t, struct dk_error *err);
/*
 * DZ_CMD_UPDATE. With @loss (and @avg_loss) not NULL the TA also returns the iteration's loss
 * and its running average: only for a segment that ends the network with a cost, and only
 * when the session's output policy is DZ_OUTPUT_SCORES (the TA refuses otherwise, and
 * dz_tee_loss_leaves says beforehand whether it will give them).
 */
int dz_tee_update(struct dz_tee *t, float *loss, float *avg_loss, struct dk_error *err);

/*
 * DZ_CMD_TRAIN_STEP: FORWARD (training) on the input and truth now in the shared block,
 * BACKWARD, and with @update UPDATE (@loss and @avg_loss as dz_tee_update's), in one call;
 * the delta at first's input is then in dz_tee_delta_out. Only for a resident training
 * segment that ends the network (dz_tee_steps); otherwise, or when the TA is older than the
 * command, nothing is sent and *stepped stays false: the caller makes the separate calls.
 * Returns 0 or -1 with a message in err.
 */
int dz_tee_train_step(struct dz_tee *t, bool update, float *loss, float *avg_loss, bool *stepped,
                      struct dk_error *err);
/* True when dz_tee_train_step would make the call. */
bool dz_tee_steps(const struct dz_tee *t);

/* True when UPDATE may return the loss: the session asked for DZ_OUTPUT_SCORES. */
bool dz_tee_loss_leaves(const struct dz_tee *t);

/*
 * DZ_CMD_SAVE_SEALED: *blob (malloc'd, caller frees) of *size bytes, sealed with @policy
 * (which must lie within the session's; NULL: the session's own policy).
 */
int dz_tee_save_sealed(struct dz_tee *t, const struct dz_policy *policy, uint8_t **blob,
                       size_t *size, struct dk_error *err);

/*
 * DZ_CMD_LOAD_SEALED: on success *seen is the count stored in the blob and
 * dz_tee_model_version() its owner version. A blob the TA refuses gives -1 with *refused set
 * to the TA's answer: TEEC_ERROR_SECURITY (not this model, partition or device, or altered)
 * or TEEC_ERROR_ACCESS_DENIED (the request is outside its policy, or it is older than a
 * version this device has loaded); 0 for any other failure.
 */
int dz_tee_load_sealed(struct dz_tee *t, const uint8_t *blob, size_t size, uint64_t *seen,
                       uint32_t *refused, struct dk_error *err);

/* What this session's OPEN_MODEL asked for, as a policy (to explain a sealed refusal). */
void dz_tee_request_policy(const struct dz_tee *t, struct dz_policy *p);

/* The owner version of the last sealed load (0: none, or not an owner's model). */
uint32_t dz_tee_model_version(const struct dz_tee *t);

/* DZ_CMD_GET_PUBKEY: the device's X25519 provisioning public key. */
int dz_tee_get_pubkey(struct dz_tee *t, uint8_t pub[DZ_X25519_BYTES], struct dk_error *err);

/* Closes the session and context and releases the shared block. NULL is fine. */
void dz_tee_close(struct dz_tee *t);

/* "TEEC_ERROR_TARGET_DEAD" etc. */
const char *dz_teec_result_name(uint32_t res);

#endif
