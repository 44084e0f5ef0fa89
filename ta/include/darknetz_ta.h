/*
 * darknetz_ta.h - the DarkneTZ TA's command protocol, shared by host and TA.
 *
 * This file is an ABI: every field is fixed-width little-endian, every struct
 * size is pinned by _Static_assert, and DZ_TA_PROTOCOL_VERSION changes with any
 * change below. The TA trusts nothing in it: every size, count and index is
 * re-checked against values the TA computed itself (DESIGN.md, invariants 1-4).
 *
 * A session serves one partition: layers [first, last] (0-based, inclusive) of
 * a network of n_layers. The normal world runs the rest.
 *
 * What may cross (invariant 1): the input of layer `first` (forward), the output
 * of layer `last` when last < n_layers - 1, the delta at first's input when
 * first > 0 (training), the delta at last's output when last < n_layers - 1
 * (training), sealed parameter blobs, and - when the segment ends the network -
 * only the labels the output policy allows (under DZ_OUTPUT_SCORES the scores, and then
 * UPDATE's training loss, a function of them). Nothing else.
 */
#ifndef DARKNETZ_TA_H
#define DARKNETZ_TA_H

#include <stdint.h>

/* 5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3 */
#define DZ_TA_UUID                                                                                 \
    {                                                                                              \
        0x5f6c0d1e, 0x8a3b, 0x4c27,                                                                \
        {                                                                                          \
            0x9e, 0x4d, 0x2b, 0x7a, 0x61, 0xc9, 0xf0, 0xd3                                         \
        }                                                                                          \
    }

#define DZ_TA_PROTOCOL_VERSION 3u

/* ------------------------------------------------------------------ commands
 * Each command lists its four parameters; unlisted ones are TEE_PARAM_TYPE_NONE.
 * Every command returns TEE_ERROR_BAD_PARAMETERS for a wrong type word or an
 * input memref whose size is not exactly what the TA computed, TEE_ERROR_BAD_STATE
 * when called out of order (anything but VERSION, GET_PUBKEY and OPEN_MODEL before a
 * model is open), TEE_ERROR_ACCESS_DENIED (with an EMSG naming the rule) for anything
 * the model's policy (struct dz_policy) does not allow, and TEE_ERROR_SHORT_BUFFER
 * (needed size written back) for outputs that are too small. A larger output memref is
 * accepted; its size comes back as the bytes written. An unknown command id is
 * TEE_ERROR_NOT_SUPPORTED. A session serves one model: a second OPEN_MODEL after a
 * successful one is TEE_ERROR_BAD_STATE.
 *
 * Policy (DESIGN.md invariant 5). The session's policy starts as the one its OPEN_MODEL
 * header asks for (dz_policy_of_request) and is replaced by the sealed policy of every
 * LOAD_SEALED, which is refused (ACCESS_DENIED) unless the header's request lies within
 * it (dz_policy_within). LOAD_PLAIN sets it back to the request: plain parameters come
 * from the normal world, which knows them anyway.
 *
 * Loads (invariant 6). LOAD_PLAIN and LOAD_SEALED reset every buffer derived from the
 * previous parameters: update buffers (momenta), the pending forward, the BACKWARD count
 * and the loss sum. UPDATE then needs a BACKWARD on the parameters now loaded.
 *
 * One query per step. In a training session FORWARD(TRAIN) is refused (BAD_STATE) once
 * `subdivisions` BACKWARDs have run since the last UPDATE (or the last load): a gradient
 * at layer first's input costs a change of the parameters.
 */
enum dz_ta_command {
    /*
     * [out] value0: a = DZ_TA_PROTOCOL_VERSION, b = TA_DATA_SIZE (bytes)
     */
    DZ_CMD_VERSION = 0,
    /*
     * Describe the network and the partition; the TA plans its secure memory
     * and allocates the segment.
     * [in]  memref0: struct dz_model_header, then header.n_specs struct dz_wire_spec, then
     *                header.tree_words uint32 (the group table of the tree softmax layers,
     *                DZ_LF_TREE), exactly that many bytes
     * [out] value1:  a, b = low, high 32 bits of the secure bytes the segment
     *                needs (also set with TEE_ERROR_OUT_OF_MEMORY when it does not fit;
     *                0 with any other error; all ones when the need overflows size_t).
     *                The formula is ta/include/dz_ta_memory.h; it fits when the need is
     *                at most TA_DATA_SIZE (DZ_CMD_VERSION), and it is checked before
     *                anything is allocated.
     */
    DZ_CMD_OPEN_MODEL = 1,
    /*
     * Provision the segment's parameters in plain (from a darknet .weights file).
     * Resets the training state and the policy (see above).
     * [in] memref0: the floats of layers first..k in .weights order, for some k in
     *               first-1..last (size = exactly their parameter bytes; any other size
     *               is BAD_PARAMETERS). k < last comes from a partial file (darknet's
     *               `partial`): the TA draws layers k+1..last from the session's seed,
     *               exactly as OPEN_MODEL did, so both worlds start from the same values.
     * [in] value1:  a, b = low, high 32 bits of `seen` from the file header
     */
    DZ_CMD_LOAD_PLAIN = 2,
    /*
     * Forward over the segment on one batch.
     * [in]  memref0: input of layer `first`, batch * inputs floats
     * [in]  memref1: truth, batch * truths floats, when DZ_FORWARD_TRAIN and a layer of the
     *                segment computes a cost (softmax or cost); otherwise NONE. truths is
     *                the output size of the segment's last layer that is not a cost layer.
     * [in]  value2:  a = DZ_FORWARD_* flags (other bits: BAD_PARAMETERS), b ignored
     * [out] memref3: when last < n_layers - 1: output of `last`, batch * outputs floats;
     *                when the segment ends the network and not training: batch records
     *                of the output policy (struct dz_prediction), or under DZ_OUTPUT_SCORES
     *                batch * classes floats (the final scores); otherwise NONE
     * DZ_FORWARD_TRAIN needs header.training (else BAD_STATE), a policy with DZ_MODE_TRAIN
     * (else ACCESS_DENIED), fewer than `subdivisions` BACKWARDs since the last UPDATE or
     * load (else BAD_STATE), and adds batch to the TA's own `seen`, as darknet's
     * train_network_datum does before the pass.
     */
    DZ_CMD_FORWARD = 3,
    /*
     * Backward over the segment, once after each DZ_FORWARD_TRAIN forward (BAD_STATE
     * otherwise). The delta received is added to the delta of layer `last`.
     * [in]  memref0: delta at last's output, batch * outputs floats, or NONE when the
     *                segment ends the network
     * [out] memref1: delta at first's input, batch * inputs floats, or NONE when first == 0
     */
    DZ_CMD_BACKWARD = 4,
    /*
     * Apply the accumulated updates (once per batch * subdivisions images, as
     * darknet does), at the rate the header's policy gives for the TA's `seen`.
     * BAD_STATE without a BACKWARD since the last UPDATE or load; ACCESS_DENIED when that
     * rate exceeds the policy's learning_rate_max. When the segment ends the
     * network and computes a cost, the TA logs `I/TA: loss = X, avg loss = Y from the TA`
     * for the iteration: X = the forwards' network costs summed / (subdivisions * batch),
     * Y = Y * .9 + X * .1 starting from Y = X, printed as "%.5f".
     * [out] value0: optional, only for a segment that ends the network with a cost (else
     *               BAD_PARAMETERS): a, b = X, Y as IEEE-754 float bits. The loss leaves
     *               only with the scores: under any output policy but DZ_OUTPUT_SCORES
     *               (requested, and allowed by the session's policy) ACCESS_DENIED before
     *               anything changes. A compatible addition: NONE remains valid.
     */
    DZ_CMD_UPDATE = 5,
    /*
     * Seal the segment's parameters for storage, to this device's sealing key
     * (DZ_KEY_DEVICE), with the session's model version and a policy.
     * [out] memref0: the sealed blob (format: struct dz_sealed_header)
     * [in]  memref1: a struct dz_policy to seal, which must lie within the session's
     *                policy (else ACCESS_DENIED); or NONE: the session's policy
     */
    DZ_CMD_SAVE_SEALED = 6,
    /*
     * Load a sealed blob, DZ_KEY_DEVICE (a save of this device) or DZ_KEY_OWNER (the
     * model owner's `darknetp seal` for this device). Refused with TEE_ERROR_SECURITY for
     * another model, partition, layer shapes, device, any altered byte, or a length other
     * than the one this segment seals to; with TEE_ERROR_ACCESS_DENIED when the session's
     * request is outside the sealed policy or the model version is older than the newest
     * this device has loaded for the model (rollback). A refused load leaves the
     * parameters, the policy and `seen` unchanged, with one exception: a blob the normal
     * world rewrites during the call, between the TA's authenticating pass and its
     * decrypting pass (seal.c), is refused with TEE_ERROR_SECURITY after the parameters
     * were wiped; FORWARD, BACKWARD, UPDATE and SAVE_SEALED then answer BAD_STATE until a
     * LOAD_PLAIN or LOAD_SEALED succeeds. A load with model_version >= 1 records
     * that version in secure storage (per model digest) when it is newer.
     * [in]  memref0: the sealed blob
     * [out] value1:  a, b = low, high 32 bits of `seen` stored in it
     * [out] value2:  a = the blob's model_version, b = its policy's modes
     */
    DZ_CMD_LOAD_SEALED = 7,
    /*
     * The device's provisioning key: an X25519 key pair the TA creates in its secure
     * storage (TEE_STORAGE_PRIVATE, object id DZ_DEVICE_KEY_ID) on first use and never
     * exports. Needs no model.
     * [out] memref0: the 32-byte X25519 public value (RFC 7748)
     */
    DZ_CMD_GET_PUBKEY = 8,
    /*
     * Weight streaming (header.stream_chunk_bytes != 0; ta/stream.c, README "Weight
     * streaming"). The segment's parameters are never resident: they live in the normal
     * world as sealed chunks (struct dz_chunk_header || AES-256-GCM ciphertext || tag), one
     * chunk per block of output filters (convolutional, groups 1, no antialiasing) or
     * neurons (connected) of a layer, with or without batch_normalize, cut so that its
     * plaintext (the engine's tile, dnn.h: the block's slice of each parameter tensor; in
     * training of their update buffers too) fits the working buffer of stream_chunk_bytes.
     * The chunks of a segment are numbered
     * 0..n_chunks-1 in layer order and within a layer in row order. LOAD_PLAIN,
     * LOAD_SEALED, SAVE_SEALED, FORWARD, BACKWARD and UPDATE answer BAD_STATE in a streamed
     * session; STREAM_* answer BAD_STATE in a resident one.
     *
     * STREAM_IMPORT seals the normal world's own plain parameters, one chunk a call, in
     * order; chunk 0 starts a new save (a new random save id, which every chunk of the save
     * carries and authenticates); in training it also resets the training state as a
     * load does and binds the session to that save at generation 0.
     * [in]  value0:  a = chunk index (0, or the one after the last imported)
     * [in]  memref1: the chunk's plaintext, exactly its size (BAD_PARAMETERS otherwise)
     * [out] memref2: the sealed chunk (SHORT_BUFFER with the size needed)
     * [in]  value3:  optional, read with chunk 0: a, b = low, high 32 bits of the
     *                parameters' `seen` (as LOAD_PLAIN's value1), which the training
     *                schedule's rate depends on; NONE leaves `seen` as it is (0 after
     *                OPEN_MODEL). A compatible addition.
     * With value0.a = DZ_STREAM_DONE, memref1 and memref2 NONE and value3 the save's
     * `seen`, nothing is sealed: the normal world will stream chunks it kept from an earlier
     * save, a load (the training state reset, the session bound to the save and generation
     * of the next pass's chunk 0, `seen` set). value0.b is 0, or DZ_STREAM_KEPT_UPDATES
     * when the kept save is a training save (its chunks carry update buffers): an inference
     * session's passes then take that cut (dz_stream_count with updates; BAD_PARAMETERS when
     * a row with its updates does not fit the working buffer) and use the parameters only,
     * until the session imports again; a training session cuts so anyway. Other bits:
     * BAD_PARAMETERS. A compatible addition: hosts before it sent 0.
     */
    DZ_CMD_STREAM_IMPORT = 9,
    /*
     * Start a pass (value2.a, a DZ_STREAM_* pass; value2 NONE: DZ_STREAM_FORWARD).
     *   FORWARD, FORWARD_TRAIN: the TA copies the input (and truth) and runs the layers
     *     before the first one with parameters; FORWARD_TRAIN has FORWARD(TRAIN)'s checks
     *     and effects (seen, the loss sum). Chunks in order 0..n_chunks-1.
     *   BACKWARD (after a FORWARD_TRAIN pass, as BACKWARD after FORWARD(TRAIN)): the TA adds
     *     the delta received and runs the layers after the last one with parameters
     *     backward. Chunks of the last layer with parameters first, each layer's in row
     *     order: value1.a names each in turn.
     *   UPDATE: UPDATE's checks; chunks in order 0..n_chunks-1.
     * BACKWARD and UPDATE need a training session and re-seal every chunk (STREAM_CHUNK);
     * so does FORWARD_TRAIN when a layer of the segment has batch_normalize (its forward
     * moves the rolling statistics the chunks hold; dnn_tile_forward_moves).
     * [in]  memref0: FORWARD*: the input, as FORWARD's; BACKWARD: the delta at last's
     *                output as BACKWARD's, NONE when the segment ends the network;
     *                UPDATE: NONE
     * [out] value1:  a = the chunk wanted next, b = n_chunks
     * [in]  value2:  a = DZ_STREAM_FORWARD .. DZ_STREAM_UPDATE, b = 0, or DZ_STREAM_WANT_LOSS with
     * UPDATE (UPDATE's value0: the same conditions, else BAD_PARAMETERS or ACCESS_DENIED); or NONE
     * [in]  memref3: FORWARD_TRAIN: the truth, as FORWARD's; NONE otherwise
     */
    DZ_CMD_STREAM_BEGIN = 10,
    /*
     * The chunk the TA asked for. Refused with TEE_ERROR_SECURITY when it is not exactly
     * that chunk of this model and partition (digest, partition, layer, index, rows, size)
     * or not of the save the pass's chunk 0 came from, or does not authenticate; any
     * refusal ends the pass (a new STREAM_BEGIN starts over) and wipes the working buffer.
     * After the last chunk the TA runs the remaining layers and writes the output.
     * In training the chunk is also refused when it is not of the session's save and
     * generation (struct dz_chunk_header), and a refusal during a BACKWARD or UPDATE pass
     * leaves the session without parameters (BAD_STATE until STREAM_IMPORT's chunk 0, a
     * kept save's load or a complete STREAM_IMPORT_SEALED): half of them would be re-sealed
     * already.
     * [in]  memref0: the sealed chunk
     * [out] value1:  a = the chunk wanted next, or DZ_STREAM_DONE
     * [out] memref2: written when a = DZ_STREAM_DONE (size 0 before): FORWARD: FORWARD's
     *                output; FORWARD_TRAIN: FORWARD(TRAIN)'s (NONE when the segment ends
     *                the network); BACKWARD: the delta at first's input (NONE when first
     *                == 0); UPDATE with DZ_STREAM_WANT_LOSS: 8 bytes, the loss and its
     *                average as UPDATE's value0 gives them (else NONE). SHORT_BUFFER (with
     *                the size) when smaller, and the pass goes on
     * [out] memref3: BACKWARD, UPDATE, and FORWARD_TRAIN of a segment with batch_normalize:
     *                the chunk re-sealed (its gradient, step or rolling statistics applied),
     *                generation + 1, of a new save (a save id random per re-sealing
     *                pass), which the normal world keeps in place of the one it
     *                sent (SHORT_BUFFER with the size, and the pass goes on); NONE
     *                otherwise
     */
    DZ_CMD_STREAM_CHUNK = 11,
    /*
     * A streamed save (chunks a streaming session of this model and partition sealed, in
     * chunk order) into a resident session's parameter tensors: the way back from streaming
     * when the memory allows (ta/stream_resident.c). Chunk 0 starts a load and names the cut
     * (the save's working buffer, n_chunks, whether its chunks carry update buffers, which
     * are dropped: a load starts from zero momenta); every later chunk must be the next one
     * of that save and generation. The parameters are the normal world's own afterwards (as
     * LOAD_PLAIN's: the policy becomes the request's). From chunk 0 until the last chunk, and
     * after any refusal (SECURITY for a chunk that is not the one expected or does not
     * authenticate, BAD_STATE out of order), the session holds no parameters (BAD_STATE for
     * what needs them) until a load completes. BAD_STATE in a streaming session.
     * [in]  value0:  a = chunk index, b = 1 when the chunks carry update buffers (a training
     *                session's), else 0
     * [in]  value1:  a = the working-buffer bytes the save was cut for, b = its n_chunks
     * [in]  memref2: the sealed chunk
     * [in]  value3:  a, b = low, high 32 bits of `seen`, taken with the last chunk
     */
    DZ_CMD_LOAD_CHUNK = 12,
    /*
     * A sealed blob (DZ_CMD_LOAD_SEALED's input: this device's own or an owner's) imported
     * into the chunks of a weight-streaming session, inside the TA (ta/stream_sealed.c): the
     * TA decrypts the blob's payload incrementally through a bounded buffer and re-seals each
     * chunk's plaintext as it completes, under a random key of this import that never leaves
     * the TA. One call per chunk, in order: memref1 is a window of the blob from the first
     * byte the TA has not read yet (for chunk 0, the blob's start), and the TA reads each
     * byte of it once and says how many it read. A window holds at least what the chunk
     * needs (for chunk 0 the header; then the layer's per-output tensors when the chunk
     * starts a layer: biases, and BN's scales and rolling statistics, which precede the
     * weights; the chunk's weight rows, and a few AES blocks the cipher may hold back; a
     * layer whose weights are not its last tensor, a batch-normalised connected one, is
     * refused with TEE_ERROR_NOT_SUPPORTED) and at most the
     * rest of the blob; the last chunk's window is exactly the rest, ending with the tag. The
     * window keeps each call's shared memory small: a real OP-TEE maps a call's memrefs with
     * a handful of translation tables (CFG_PGT_CACHE_ENTRIES), so a whole large blob could
     * not be passed. Chunk 0 applies LOAD_SEALED's checks (TEE_ERROR_SECURITY for another model,
     * partition, device or length; TEE_ERROR_ACCESS_DENIED for a request outside the sealed
     * policy or an older owner version) and leaves the session without usable parameters until
     * the last chunk: only there is the blob's tag checked, and only when it matches does the
     * session adopt the chunks, the sealed policy, `seen` and the version (recorded for
     * rollback as LOAD_SEALED records it). Any refusal (SECURITY for a tag that does not match)
     * ends the import; its key is wiped, so none of its chunks is ever accepted. In a
     * training session the chunks carry zero update buffers and bind the session at
     * generation 0, as STREAM_IMPORT. A plain STREAM_IMPORT or a kept save drops all of it
     * (the normal world's own parameters again). BAD_STATE in a resident session.
     * [in/out] value0: in a = chunk index (0, or the one after the last); out a = blob bytes
     *                  read in this call, b = with the last chunk, the blob's model_version
     * [in]     memref1: a window of the blob from the first unread byte (see above); a
     *                   window too short for the chunk ends the import (SECURITY)
     * [out]    memref2: the sealed chunk (SHORT_BUFFER with the size needed, nothing read)
     * [out]    value3:  with the last chunk: a, b = low, high 32 bits of the blob's `seen`
     */
    DZ_CMD_STREAM_IMPORT_SEALED = 13,
    /*
     * Re-key a sealed import (ta/stream_rekey.c): a training session whose chunks came from
     * STREAM_IMPORT_SEALED of a blob that is the normal world's own (DZ_KEY_DEVICE with
     * model_version 0: a device's save of a run that began from the normal world's
     * parameters) has each chunk opened under that import's key and re-sealed under the
     * device's chunk key, as a new save (a new random save id, generation 0) with the same
     * plaintext (parameters and updates). After the last chunk the session is an ordinary
     * streamed training session: the import's key is wiped (its chunks are refused from
     * then on), the session is bound to the new save at generation 0, and its policy is the
     * request's (policy_sealed off, model version 0), as after a plain STREAM_IMPORT; the
     * training state is kept (the parameters did not change). One call per chunk, in
     * order; chunk 0 needs a completed sealed import (BAD_STATE otherwise, after the re-key
     * completed, or while one is under way) and no pass under way (BAD_STATE); an owner's
     * model (DZ_KEY_OWNER, or any model_version >= 1) is refused with ACCESS_DENIED: its
     * chunks keep the owner's policy, which chunk-key chunks would not carry. Chunk k must
     * be chunk k of the session's save at its generation (SECURITY otherwise, or when it
     * does not authenticate). From chunk 0 until the last, and after any refusal past chunk
     * 0's checks, the session runs no pass; a refusal also wipes the import's key
     * (BAD_STATE until an import or a kept save's load). BAD_STATE in a resident or
     * inference session.
     * A new command id: a TA before it answers TEE_ERROR_NOT_SUPPORTED, so the protocol
     * version stays 3.
     * [in]  value0:  a = chunk index (0, or the one after the last)
     * [in]  memref1: chunk a as the sealed import (or a pass after it) gave it
     * [out] memref2: the chunk re-sealed (SHORT_BUFFER with the size needed, nothing read)
     */
    DZ_CMD_STREAM_REKEY = 14,
    /*
     * One training step of a resident segment that ends the network: FORWARD with
     * DZ_FORWARD_TRAIN, then BACKWARD, then, with DZ_STEP_UPDATE, UPDATE; each as its own
     * command would run it, with the same checks, so nothing is allowed that the three calls
     * would refuse. It saves two world switches per step, which with the last few layers of
     * a small network in the TEE are most of the TEE's cost. A step stops at the first
     * command that fails and returns its error: the ones before it stay done, as they would
     * after separate calls (so a failed BACKWARD leaves the forward pending). BAD_STATE for
     * a segment that does not end the network, or a streamed one (their steps need the
     * normal world between the passes). A new command id: a TA before it answers
     * TEE_ERROR_NOT_SUPPORTED, so the protocol version stays 3, and the normal world then
     * makes the three calls.
     * [in]  memref0: as FORWARD's memref0, layer first's input
     * [in]  memref1: as FORWARD's memref1, the truth, or NONE
     * [in/out] value2: in a = DZ_STEP_* flags (other bits, or DZ_STEP_LOSS without
     *               DZ_STEP_UPDATE: BAD_PARAMETERS), b ignored; out with DZ_STEP_LOSS: a, b =
     *               UPDATE's value0 (the iteration's loss and its running average)
     * [out] memref3: as BACKWARD's memref1, the delta at first's input, or NONE when
     *               first == 0 (SHORT_BUFFER, with nothing run, when too small)
     */
    DZ_CMD_TRAIN_STEP = 15,
    DZ_CMD_COUNT
};

/* DZ_CMD_FORWARD value2.a */
#define DZ_FORWARD_TRAIN 1u

/* DZ_CMD_TRAIN_STEP value2.a: UPDATE after the backward pass; and return the loss. */
#define DZ_STEP_UPDATE 1u
#define DZ_STEP_LOSS 2u

/* What leaves the TEE when the segment ends the network (header.output_policy), from the
 * least to the most revealing: a policy allows every value up to its own. */
enum dz_output_policy {
    DZ_OUTPUT_TOP1 = 0,   /* the best label only (default) */
    DZ_OUTPUT_TOPK = 1,   /* the top_k labels, best first, no scores */
    DZ_OUTPUT_RANK = 2,   /* every label ordered best first, no scores */
    DZ_OUTPUT_SCORES = 3, /* the final scores (softmax probabilities) themselves */
    DZ_OUTPUT_COUNT
};

/* One image's prediction when the segment ends the network: labels only.
 * count: 1 for TOP1, min(top_k, classes) for TOPK, classes for RANK (OPEN_MODEL refuses
 * RANK over more than DZ_MAX_LABELS classes). labels[count..] are -1. */
#define DZ_MAX_LABELS 64
struct dz_prediction {
    uint32_t count;                /* labels filled in */
    int32_t labels[DZ_MAX_LABELS]; /* best first, ties to the lower label (dnn_top_k) */
};
_Static_assert(sizeof(struct dz_prediction) == 260, "dz_prediction is ABI");

/* ------------------------------------------------------------------- policy
 * What the model owner allows, sealed with the parameters (in the AES-GCM additional
 * data) and enforced by the TA. A request lies within a policy when every mode it needs
 * is allowed, its output policy is at most `output` (and under DZ_OUTPUT_TOPK, when the
 * policy's own output is DZ_OUTPUT_TOPK, top_k is at most top_k_max), and, for training,
 * batch in [batch_min, batch_max], subdivisions <= subdivisions_max, learning_rate <=
 * learning_rate_max, momentum <= momentum_max, decay <= decay_max. The training bounds
 * do not apply to inference. UPDATE also refuses a scheduled rate above
 * learning_rate_max.
 */
#define DZ_MODE_INFER 1u /* FORWARD without DZ_FORWARD_TRAIN */
#define DZ_MODE_TRAIN 2u /* FORWARD(TRAIN), BACKWARD, UPDATE */
/* Training with darknet's adam (adam=1) instead of momentum SGD: its step is up to
 * learning_rate per parameter whatever the gradient's scale (dnn_adam_step bounds it there,
 * whatever B1, B2 and eps the normal world sends), so the owner allows it
 * explicitly; zero in every policy sealed before it existed. Needs DZ_MODE_TRAIN. */
#define DZ_MODE_ADAM 4u
#define DZ_MODES_ALL (DZ_MODE_INFER | DZ_MODE_TRAIN)
#define DZ_MODES_VALID (DZ_MODES_ALL | DZ_MODE_ADAM) /* every bit a policy may hold */

struct dz_policy {
    uint32_t modes;     /* DZ_MODE_* bits; at least DZ_MODE_INFER */
    uint32_t output;    /* enum dz_output_policy: the most revealing allowed */
    uint32_t top_k_max; /* 1..DZ_MAX_LABELS: labels under DZ_OUTPUT_TOPK */
    uint32_t batch_min; /* training: images per forward */
    uint32_t batch_max;
    uint32_t subdivisions_max; /* training: forwards per update */
    float learning_rate_max;   /* training: finite, >= 0 */
    float momentum_max;
    float decay_max;
    uint32_t reserved[3]; /* zero */
};
_Static_assert(sizeof(struct dz_policy) == 48, "dz_policy is ABI");

/* ------------------------------------------------------------- model blob */

#define DZ_MODEL_MAGIC 0x314d5a44u /* "DZM1" little-endian */

/*
 * The network as the TA needs it: the [net] training keys, the partition, and
 * the input shape of layer `first` (the TA computes every later shape itself).
 */
struct dz_model_header {
    uint32_t magic;    /* DZ_MODEL_MAGIC */
    uint32_t version;  /* DZ_TA_PROTOCOL_VERSION */
    uint32_t n_layers; /* layers in the whole network */
    uint32_t first;    /* partition, inclusive */
    uint32_t last;
    uint32_t n_specs; /* = last - first + 1 */
    uint32_t batch;   /* images per forward */
    uint32_t subdivisions;
    uint32_t training;         /* 0 or 1: allocate training buffers */
    uint32_t in_h, in_w, in_c; /* input shape of layer `first` */
    float learning_rate;
    float momentum;
    float decay;
    uint32_t policy; /* enum dnn_lr_policy */
    float gamma;
    float scale;
    float power;
    int32_t step;
    int32_t max_batches;
    int32_t burn_in;
    uint32_t n_steps;
    int32_t steps[16];
    float scales[16];
    uint32_t seed_lo, seed_hi; /* weights init and dropout streams */
    uint32_t output_policy;    /* enum dz_output_policy */
    uint32_t top_k;            /* for DZ_OUTPUT_TOPK, 1..DZ_MAX_LABELS (else 0..64, unused) */
    /* 0: parameters resident; else weight streaming with a working buffer of this many
     * bytes, a multiple of 4 in [DZ_STREAM_CHUNK_MIN, DZ_STREAM_CHUNK_MAX]; not with adam */
    uint32_t stream_chunk_bytes;
    /* darknet's adam (struct dnn_net_config): 0 or 1; with 1, beta1 and beta2 in [0, 1) and
     * epsilon finite and > 0; with 0, all three zero. Needs a policy with DZ_MODE_ADAM. */
    uint32_t adam;
    float beta1, beta2, epsilon;
    /* policy sgdr (struct dnn_net_config): learning_rate_min finite; sgdr_cycle and
     * sgdr_mult >= 1 with sgdr, all three zero with any other policy. */
    float learning_rate_min;
    int32_t sgdr_cycle;
    int32_t sgdr_mult;
    /* Words of the group table after the specs, at most DZ_MAX_TREE_WORDS (dz_wire.h): for
     * each spec with DZ_LF_TREE in order, its group count G (>= 1), then its G group sizes
     * (each >= 1, summing to the layer's inputs), as uint32. 0 without a tree softmax. It
     * was a reserved word that TAs before it refuse when nonzero (and they refuse
     * DZ_LF_TREE), so an older TA cannot misread a table: the protocol version stays 3.
     * The model digest covers the table right after the specs. */
    uint32_t tree_words;
};
_Static_assert(sizeof(struct dz_model_header) == 272, "dz_model_header is ABI");

/* One layer's hyper-parameters (struct dnn_layer_spec on the wire). Route and
 * shortcut indexes are absolute in the whole network and must lie in
 * [first, layer index): a segment cannot read layers outside itself. Every enum must
 * be in range and batch_normalize 0 or 1 for every kind; the fields a kind uses are
 * range-checked; the others are ignored (but are part of the model digest). */
struct dz_wire_spec {
    uint32_t kind;       /* enum dnn_layer_kind */
    uint32_t activation; /* enum dnn_activation */
    int32_t filters;
    int32_t size;
    int32_t stride;
    int32_t pad;
    int32_t groups;
    uint32_t batch_normalize;
    int32_t outputs;
    float probability;
    int32_t softmax_groups;
    float temperature;
    uint32_t cost_type;
    float cost_scale;
    float cost_ratio;
    int32_t from;
    float alpha;
    float beta;
    /* route: the layers routed (1..8); shortcut: its sources after from (0..8, AlexeyAB's
     * from=-2,-3); route[n_route..7] zero. */
    int32_t n_route;
    int32_t route[8];
    /* Convolution's dilation and route's groups: 0 is the neutral value (the encoder writes
     * 0 for the neutral 1). */
    int32_t dilation;     /* convolutional: 0 = none, else the taps' spacing */
    int32_t route_groups; /* route: 0 = the whole outputs */
    int32_t group_id;     /* route: < route_groups */
    /* convolutional, connected, batchnorm: darknet's per-layer learning_rate as struct
     * dnn_layer_spec holds it (+0.0 = 1, -0.0 = 0); at most 1, so that the owner's
     * learning_rate_max bounds every protected layer's rate too. */
    float learning_rate_scale;
    uint32_t reserved[1]; /* zero */
    /* Since version 3: crop, reorg, upsample, scale_channels, normalization. */
    uint32_t layer_flags; /* DZ_LF_*: the bool fields of those kinds */
    int32_t crop_height;
    int32_t crop_width;
    int32_t extra; /* reorg */
    float scale;   /* upsample */
    float kappa;   /* normalization */
    /* shortcut (AlexeyAB): enum dnn_shortcut_weights and enum dnn_weights_normalization,
     * zero on other kinds. Carved out of a reserved word that older TAs refuse when
     * nonzero, so the protocol version did not change. */
    uint16_t weights_type;
    uint16_t weights_normalization;
    /* convolutional, maxpool: AlexeyAB's antialiasing, 0 (none), 1 (3x3 blur) or 2 (2x2);
     * from a reserved word as the two above. */
    int32_t antialiasing;
};
_Static_assert(sizeof(struct dz_wire_spec) == 160, "dz_wire_spec is ABI");

/* dz_wire_spec.layer_flags bits, each allowed only on the kind that has the field. */
#define DZ_LF_FLIP 1u      /* crop */
#define DZ_LF_NOADJUST 2u  /* crop */
#define DZ_LF_REVERSE 4u   /* reorg */
#define DZ_LF_REORG3D 8u   /* reorg */
#define DZ_LF_SCALE_WH 16u /* scale_channels */
/* softmax with darknet's tree= (its hierarchical softmax): its group sizes (9k.tree has 1,846
 * groups) come in the header's tree_words table after the specs, one record per such layer. */
#define DZ_LF_TREE 32u

/* ----------------------------------------------------------- sealed blob
 * DZ_CMD_SAVE_SEALED output and DZ_CMD_LOAD_SEALED input; the README documents it:
 *   struct dz_sealed_header (the AES-GCM additional data: every byte authenticated)
 *   AES-256-GCM ciphertext of the segment's parameters in .weights order (payload_bytes)
 *   16-byte GCM tag
 * The payload key depends on key_kind:
 *   DZ_KEY_DEVICE: 32 bytes from the system PTA's PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY with
 *     extra data "darknetz-seal-v2": unique to the device and this TA. The owner fields
 *     (device_fingerprint .. wrap_tag) are zero.
 *   DZ_KEY_OWNER: a random 32-byte content key chosen by the owner, wrapped for the
 *     device: shared = X25519(owner's ephemeral private key, device public key);
 *     kek = HKDF-SHA256(ikm = shared, salt = ephemeral_public || device public key,
 *     info = "darknetz-provision-v2", 32 bytes); wrapped_key || wrap_tag =
 *     AES-256-GCM(kek, wrap_nonce, aad = model_digest, content key).
 *     device_fingerprint = SHA-256(device public key).
 * model_digest: SHA-256 over the segment's dz_wire_specs as encoded by dz_wire_encode_spec
 * (n_specs * 160 bytes), then the tree group table (header.tree_words uint32 LE as
 * dz_wire_encode_tree writes it; no bytes without a tree softmax, so digests of models
 * without one did not change), then first, last, n_layers as uint32 LE, then per layer h, w, c,
 * out_h, out_w, out_c as uint32 LE (dz_wire_shape_bytes). Batch and training are not bound
 * to the digest; the policy bounds them.
 */
#define DZ_SEALED_MAGIC 0x32535a44u    /* "DZS2" little-endian */
#define DZ_SEALED_MAGIC_V1 0x31535a44u /* "DZS1": protocol 1, refused with its own message */
#define DZ_SEAL_LABEL "darknetz-seal-v2"
/* The extra data of the key that seals streamed chunks (ta/stream.c): its own key, as
 * STREAM_IMPORT encrypts plaintext the normal world chooses. */
#define DZ_CHUNK_LABEL "darknetz-chunk-v3"
#define DZ_PROVISION_LABEL "darknetz-provision-v2"
#define DZ_DEVICE_KEY_ID "darknetz-device-x25519"
/* Rollback records: object id = DZ_VERSION_ID_PREFIX then the 32-byte model digest;
 * data = the newest model_version loaded, uint32 LE. */
#define DZ_VERSION_ID_PREFIX "dzv2"

enum dz_key_kind {
    DZ_KEY_DEVICE = 1, /* sealed by this TA to its own device key */
    DZ_KEY_OWNER = 2,  /* sealed by the model owner for this device's public key */
    DZ_KEY_KIND_COUNT
};

struct dz_sealed_header {
    uint32_t magic;           /* DZ_SEALED_MAGIC */
    uint32_t version;         /* DZ_TA_PROTOCOL_VERSION */
    uint8_t model_digest[32]; /* see above */
    uint32_t first, last, n_layers;
    uint32_t payload_bytes;
    uint32_t seen_lo, seen_hi;
    uint32_t model_version; /* the owner's release number, >= 1; 0: not an owner's model */
    uint32_t key_kind;      /* enum dz_key_kind */
    struct dz_policy policy;
    uint8_t device_fingerprint[32]; /* DZ_KEY_OWNER: SHA-256 of the device's public key */
    uint8_t ephemeral_public[32];   /* DZ_KEY_OWNER: the owner's one-time X25519 public */
    uint8_t wrap_nonce[12];         /* DZ_KEY_OWNER */
    uint8_t wrapped_key[32];        /* DZ_KEY_OWNER: the content key, encrypted */
    uint8_t wrap_tag[16];           /* DZ_KEY_OWNER */
    uint8_t nonce[12];              /* the payload's nonce, random per seal */
    uint32_t reserved;              /* zero */
};
_Static_assert(sizeof(struct dz_sealed_header) == 260, "dz_sealed_header is ABI");
#define DZ_SEALED_TAG_BYTES 16
#define DZ_X25519_BYTES 32

/* ------------------------------------------------------- weight streaming */

#define DZ_STREAM_CHUNK_MIN 4096u
#define DZ_STREAM_CHUNK_MAX (1u << 30)
#define DZ_STREAM_DONE 0xFFFFFFFFu
#define DZ_CHUNK_MAGIC 0x31435a44u /* "DZC1" little-endian */

/* DZ_CMD_STREAM_BEGIN value2.a */
#define DZ_STREAM_FORWARD 0u
#define DZ_STREAM_FORWARD_TRAIN 1u
#define DZ_STREAM_BACKWARD 2u
#define DZ_STREAM_UPDATE 3u
/* DZ_CMD_STREAM_BEGIN value2.b */
#define DZ_STREAM_WANT_LOSS 1u
/* DZ_CMD_STREAM_IMPORT value0.b with DZ_STREAM_DONE: the kept save is a training save */
#define DZ_STREAM_KEPT_UPDATES 1u

/*
 * A sealed chunk: this header (the AES-256-GCM additional data) || ciphertext of
 * plain_bytes || DZ_SEALED_TAG_BYTES tag, under this device's sealing key (DZ_KEY_DEVICE).
 * The plaintext is, for outputs (filters or neurons) row0..row0+rows-1 of layer `layer`,
 * their slice of each parameter tensor in .weights order (dnn.h, "tiles"): a convolutional
 * layer's biases (rows), [scales, rolling_mean, rolling_variance (rows each) when
 * batch_normalize], weights (rows filters of c*size*size floats); a connected layer's biases,
 * weights (rows x inputs), [scales, rolling_mean, rolling_variance]. Without
 * batch_normalize plain_bytes = rows * (per-output weights + 1) * 4. In a training session
 * the update (momentum) buffers of the tensors that have one follow, laid out alike
 * (bias_updates, [scale_updates], weight_updates; for a connected layer bias_updates,
 * weight_updates, [scale_updates]), and a chunk holds about half the rows for the same
 * working buffer; STREAM_IMPORT still takes the parameters only (the updates start at
 * zero, as after LOAD_PLAIN).
 */
struct dz_chunk_header {
    uint32_t magic;           /* DZ_CHUNK_MAGIC */
    uint32_t version;         /* DZ_TA_PROTOCOL_VERSION */
    uint8_t model_digest[32]; /* as struct dz_sealed_header's */
    uint32_t first, last, n_layers;
    uint32_t chunk_bytes; /* the working buffer the save was cut for */
    uint32_t layer;       /* absolute index of the layer */
    uint32_t chunk;       /* index in the segment, 0..n_chunks-1 */
    uint32_t n_chunks;
    uint32_t row0, rows;
    uint32_t plain_bytes;
    /* random per save (an import, a re-key, each pass that re-seals): every chunk of one
     * save carries it */
    uint8_t save_id[16];
    uint8_t nonce[12]; /* random per chunk */
    /* Training: how many passes re-sealed the chunk since its import (BACKWARD, UPDATE, and
     * FORWARD_TRAIN with batch_normalize; 0 at import; always 0 in inference). The TA
     * accepts only the session's current one. */
    uint32_t generation;
};
_Static_assert(sizeof(struct dz_chunk_header) == 112, "dz_chunk_header is ABI");

#endif
