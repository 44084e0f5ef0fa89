/*
 * partition.h - the plan of a TEE partition: which layers run in the TA, whether
 * that split is possible, and how much secure memory it needs.
 *
 * A partition is the layer range [first, last] (0-based, inclusive) that runs
 * inside the TA; the normal world runs the front [0, first-1] and the back
 * [last+1, n-1] as two separate engine networks. Everything here works on a
 * "shape network": the whole model's layers set up for shapes and parameter
 * counts only, with no tensor allocated, so the protected layers' parameters
 * never exist in the normal world.
 */
#ifndef DZ_PARTITION_H
#define DZ_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"

/*
 * dz_shapes_create - set up every layer of m at the given batch (> 0): shapes,
 * has_cost and parameter tables, no allocation of tensors (every tensor pointer
 * stays NULL). net->seen and net->seed are 0 and seed. Free with dz_shapes_free.
 * Returns 0 or -1 with a message in err (*out is then NULL).
 */
int dz_shapes_create(const struct dk_model *m, int batch, uint64_t seed, struct dnn_network **out,
                     struct dk_error *err);
void dz_shapes_free(struct dnn_network *shapes);

/*
 * dz_weights_precheck - does the .weights file at path hold m's parameters, all of
 * them or those of its first layers (darknet's partial files: dk_weights_check_prefix)?
 * Computed from a shape network (no tensor allocated), so a cfg whose network would
 * take gigabytes is refused for a mismatched file before anything large exists.
 * Returns 0 or -1 with dk_weights_check's message in err.
 */
int dz_weights_precheck(const struct dk_model *m, const char *path, struct dk_error *err);

/* Floats of layer l's parameters in the .weights file. */
uint64_t dz_layer_param_floats(const struct dnn_layer *l);

/* Floats of the parameters of layers [first, last]. */
uint64_t dz_range_param_floats(const struct dnn_network *shapes, size_t first, size_t last);

/*
 * dz_range_untranspose - turn the parameters of layers first..last, as read from a .weights
 * file with transposed connected weights (darknet major > 1000 or minor 2 revision flag:
 * (inputs, outputs) per connected layer), into the engine's order ((outputs, inputs)), in
 * place. @buf holds dz_range_param_floats(shapes, first, last) floats in .weights order. The
 * scratch copy of each matrix is wiped before it is freed (these may be protected values).
 * Returns 0, or -1 with a message in err when the scratch cannot be allocated.
 */
int dz_range_untranspose(const struct dnn_network *shapes, int first, int last, float *buf,
                         struct dk_error *err);

/*
 * dz_segment_config - the engine input for layers [first, last] built alone:
 * the model's [net] keys with the given batch and subdivisions, the input
 * shape of layer first, index_base = first, and a copy of the specs whose
 * route/shortcut indexes are made relative to first (the caller frees *specs).
 * The segment must have passed dz_partition_check's rules for reading only
 * layers inside itself. Returns 0 or -1 with a message in err.
 */
int dz_segment_config(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                      size_t last, int batch, int subdivisions, struct dnn_net_config *cfg,
                      struct dnn_layer_spec **specs, struct dk_error *err);

/*
 * dz_partition_check - may layers [first, last] run in the TA? Refuses (naming
 * the layers) a range outside the network, a route/shortcut inside the segment
 * that reads a layer before first, one after the segment that reads a layer
 * before last + 1 (the back runs as its own network), a loss before the
 * segment, and a segment or back whose cost sees another truth size than the
 * network's. Returns 0 or -1 with a message in err.
 */
int dz_partition_check(const struct dnn_network *shapes, int first, int last, struct dk_error *err);

/* True if some layer of [first, last] computes a loss (softmax, cost). */
bool dz_range_has_cost(const struct dnn_network *shapes, size_t first, size_t last);

/*
 * dz_segment_need - bytes of secure memory the TA needs for layers [first,
 * last] at this batch, by the TA's own formula (ta/include/dz_ta_memory.h):
 * the engine's plan of the segment (parameters, outputs, and with training
 * gradients, momenta, deltas and workspace), the TA's copies of what crosses,
 * the sealing scratch and the default heap reserve. The TA checks again with
 * its configured reserve. Returns 0 or -1 with a message in err.
 */
int dz_segment_need(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                    size_t last, int batch, bool training, size_t *bytes, struct dk_error *err);

/*
 * dz_layer_need - the bytes layer i brings to any segment it is in, from the engine's plan
 * (struct dnn_layer_plan): its parameters, inference scratch (and with training its
 * training buffers and delta), its output as a buffer of its own and its entry in the
 * layer table; not the workspace, which a segment holds once at its largest, nor the
 * reuse of activation buffers, which depends on the segment. Returns 0 or -1 with a
 * message in err.
 */
int dz_layer_need(const struct dk_model *m, const struct dnn_network *shapes, size_t i, int batch,
                  bool training, size_t *bytes, struct dk_error *err);

/* The largest partitions that fit a secure-memory capacity. */
struct dz_fit {
    int tail_first; /* smallest A such that [A, n-1] is valid and fits, or -1 */
    int long_first; /* the longest valid range that fits (earliest among equals), */
    int long_last;  /* or -1, -1 */
};

/* Searches the valid partitions at this batch. Returns 0 or -1 with a message in err. */
int dz_fit_search(const struct dk_model *m, const struct dnn_network *shapes, int batch,
                  bool training, size_t capacity, struct dz_fit *fit, struct dk_error *err);

/* "the last k layers fit: -pp_start X -pp_end N-1; the longest range that fits is ..." */
void dz_fit_describe(const struct dz_fit *fit, size_t n_layers, char *buf, size_t size);

/*
 * dz_segment_stream_need - layers [first, last] with their weights streamed, for inference
 * or @training: *base is what the TA needs without its working buffer (dz_ta_memory.h with
 * stream_chunk_bytes 0; in training no update buffer either, they travel in the chunks),
 * *min_chunk the smallest working buffer it takes (one output neuron's parameters, and in
 * training their updates, of the widest layer, at least DZ_STREAM_CHUNK_MIN). Refused (-1
 * with a message) when a layer with parameters is not a connected layer without
 * batch_normalize, or none has parameters; in training also under adam or with a frozen
 * layer.
 */
int dz_segment_stream_need(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                           size_t last, int batch, bool training, size_t *base, size_t *min_chunk,
                           struct dk_error *err);

/*
 * The working buffer darknetp gives a streamed segment by default: what it leaves of
 * TA_DATA_SIZE, up to this (-tee_chunk BYTES sets another cap; more only saves calls). Each
 * chunk crosses in memrefs as large as the buffer (STREAM_IMPORT: plaintext in and sealed
 * out; STREAM_CHUNK: sealed in), which OP-TEE maps into the TA's address space for the call,
 * one translation table per 2 MiB touched. OP-TEE 4.10 for QEMU v8 has 8 tables for a TA's
 * whole space (CFG_PGT_CACHE_ENTRIES = 8, CFG_CORE_PREALLOC_EL0_TBLS = n), and a 12 MiB heap
 * with the code and stack takes most: there a 2 MiB buffer failed (TEEC_ERROR_OUT_OF_MEMORY,
 * "alloc_pgt: Page tables are not available" on the secure console), 1 MiB and 512 KiB
 * worked; this leaves a margin for where ASLR puts the TA.
 */
#define DZ_STREAM_WORK_MAX ((size_t)256 << 10)

/* The largest working buffer seen to stream on OP-TEE 4.10 for QEMU v8 with a 12 MiB TA (2 MiB
 * failed there, above): a larger one gets a warning, not a refusal, since a device with more
 * page tables (or the simulated TEE) takes it. */
#define DZ_STREAM_WORK_OPTEE_TRIED ((size_t)1 << 20)

/* How layers [first, last] stream (dz_stream_plan). */
struct dz_stream_fit {
    size_t chunk_bytes;    /* the working buffer */
    size_t need;           /* the TA's secure memory with it (dz_ta_memory.h) */
    size_t n_chunks;       /* sealed chunks per pass */
    uint64_t sealed_bytes; /* bytes of sealed chunks that cross per pass */
};

/*
 * dz_stream_plan - layers [first, last] with their weights streamed through a TA of
 * @capacity bytes, for inference or @training: the working buffer, chunks and sealed bytes
 * per pass, as the TA cuts them (ta/stream.c; a training chunk holds half the rows, with
 * their updates). The working buffer is what the segment leaves of @capacity, at most
 * @work_max bytes (0: DZ_STREAM_WORK_MAX). -1 with a message when they cannot stream
 * (dz_segment_stream_need), do not fit even so, or @work_max is below the smallest buffer
 * they take.
 */
int dz_stream_plan(const struct dk_model *m, const struct dnn_network *shapes, size_t first,
                   size_t last, int batch, bool training, size_t capacity, size_t work_max,
                   struct dz_stream_fit *fit, struct dk_error *err);

/*
 * dz_partition_fits - refuse [first, last] before any secure allocation when its
 * need exceeds capacity (TA_DATA_SIZE): the message names the bytes needed, the
 * batch, TA_DATA_SIZE and the largest partitions that fit. Sets *need.
 * Returns 0 or -1 with a message in err.
 */
int dz_partition_fits(const struct dk_model *m, const struct dnn_network *shapes, int first,
                      int last, int batch, bool training, size_t capacity, size_t *need,
                      struct dk_error *err);

/* `darknetp tee plan`: per layer its need and the need of [i, n-1], then what fits. */
int dz_print_plan(FILE *f, const struct dk_model *m, const struct dnn_network *shapes, int batch,
                  bool training, size_t capacity, struct dk_error *err);

#endif
