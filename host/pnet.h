/*
 * pnet.h - a partitioned network: the normal world's front [0, first-1] and
 * back [last+1, n-1] as two engine networks, and the TA's segment [first, last]
 * behind a struct dz_tee. Without a partition the front is the whole network
 * and nothing touches the TEE.
 *
 * Each engine network is built with index_base = its first layer's index, so
 * every layer draws its initial weights and dropout masks from the same
 * streams as in the whole network: same seed, same numbers, whatever the
 * partition.
 */
#ifndef DZ_PNET_H
#define DZ_PNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "host/tee_session.h"

/*
 * The normal world's convolution scratch, in bytes, for all of its networks together (the
 * front and the back of a TEE segment share it, the front served first); outside the engine's
 * arena, never in the TA. Neither changes a result bit, only speed and memory.
 */
struct dz_scratch_budget {
    size_t lower_bytes;     /* -lower_mb: several images per product (dnn_network_set_lowering);
                             * 0: one image at a time */
    size_t col_cache_bytes; /* -col_cache_mb: training convolutions keep their columns
                             * (dnn_network_set_column_cache); 0: none kept */
};

/* The engine's defaults: DNN_LOWER_BYTES_DEFAULT and DNN_COL_CACHE_BYTES_DEFAULT. */
struct dz_scratch_budget dz_scratch_default(void);

struct dz_pnet_opts {
    int first, last; /* the TEE segment, or -1, -1 for none */
    int batch;       /* > 0: images per forward, replacing the cfg's (subdivisions 1) */
    bool training;   /* allocate for training */
    uint64_t seed;   /* weights init, dropout */
    enum dz_output_policy policy; /* what leaves the TA when it ends the network */
    int top_k;                    /* labels for DZ_OUTPUT_TOPK */
    bool stream;                  /* -tee_stream: stream the segment's weights even if it fits */
    size_t stream_work_max;       /* -tee_chunk: cap on the streaming working buffer, bytes; 0:
                                   * DZ_STREAM_WORK_MAX */
    size_t stream_save_bytes;     /* the working buffer a streamed save to load was cut for
                                   * (dz_streamed_save_cut), 0: none; a streaming session takes
                                   * it, since a save loads only into the same cut */
    const char *stream_save_file; /* that save's .tz, named in refusals; NULL: none */
    /* The batch is darknetp's choice for inference (predict's rows, valid), not the user's:
     * when the segment fits neither resident nor streamed at it, run the largest batch that
     * fits instead (one line on stderr; each image's result does not depend on the batch). */
    bool batch_fallback;
    const struct dnn_parallel *parallel;     /* normal-world threads (copied), or NULL: serial */
    const struct dz_scratch_budget *scratch; /* copied; NULL: dz_scratch_default() */
};

struct dz_pnet {
    const struct dk_model *model; /* borrowed, outlives the pnet */
    struct dnn_network *shapes;   /* whole model, shapes only; its seen drives the rate */
    struct dnn_network *front;    /* [0, first-1], the whole network without TEE, or NULL */
    struct dnn_network *back;     /* [last+1, n-1] or NULL */
    struct dz_tee *tee;           /* NULL without TEE */
    int first, last;              /* -1, -1 without TEE */
    int batch, subdivisions;
    bool training;
    bool loss_in_tee;    /* a layer with a loss runs in the TA */
    bool tee_loss_known; /* the last train_batch ended an iteration whose loss the TA gave */
    float tee_loss;      /* then: the iteration's mean loss per image, from UPDATE */
    uint64_t seen;       /* images trained on */
    size_t weights_held; /* layers the loaded .weights held (a partial file: fewer than n;
                            the others start from the seed); shapes->n when none loaded */
    float *back_delta;   /* (batch, back inputs): the delta the back gives the TA */
    const struct dz_policy *seal_policy; /* what saves seal; NULL: the TA session's policy */
    /* (batch, tree classes): with the model's tree (darknet's net->hierarchy), the truth
     * after dk_tree_fill_truth when training, the scores after dk_tree_predictions when
     * predicting; allocated at open, else NULL */
    float *tree_buf;
};

/*
 * dz_pnet_open - plan and build: check the partition, compare its secure
 * memory need with the TA's TA_DATA_SIZE before the TA allocates anything,
 * then open the session and the networks. With o->batch_fallback p->batch may
 * be smaller than o->batch: callers size their buffers by p->batch. Returns 0
 * or -1 with a message in err; on failure the caller still calls dz_pnet_close.
 */
int dz_pnet_open(struct dz_pnet *p, const struct dk_model *m, const struct dz_pnet_opts *o,
                 struct dk_error *err);
void dz_pnet_close(struct dz_pnet *p);

/* The convolution scratch the normal world's networks hold (the front's and the back's), in
 * bytes: what its budget (struct dz_pnet_opts, scratch) bought. */
struct dz_scratch_budget dz_pnet_scratch_used(const struct dz_pnet *p);

/* Floats of one image at the network's input. */
size_t dz_pnet_inputs(const struct dz_pnet *p);

/* Weight updates done: seen / (batch * subdivisions), and the rate now. */
uint64_t dz_pnet_current_batch(struct dz_pnet *p);
float dz_pnet_current_rate(struct dz_pnet *p);

/*
 * dz_pnet_train_batch - one forward/backward (and update when a whole batch *
 * subdivisions has been seen) over the partition, as dnn_network_train_batch.
 * *loss is the network's cost of this batch when *loss_known; false when the
 * loss is computed in the TEE. Then, when the TA lets it leave (-tee_output scores), the
 * batch that completes an iteration sets tee_loss_known and tee_loss: the iteration's mean
 * loss per image as the TA computed it. Returns 0 or -1 with a message in err.
 */
int dz_pnet_train_batch(struct dz_pnet *p, const float *x, const float *y, float *loss,
                        bool *loss_known, struct dk_error *err);

/* What a prediction gives: scores when they may leave, else labels from the TA. With the
 * model's tree (darknet's net->hierarchy) the scores are absolute probabilities with zeros
 * at the inner classes, as darknet's predict and valid see them (dk_tree_predictions). */
struct dz_pnet_output {
    const float *scores; /* (batch, outputs) or NULL */
    size_t outputs;
    const struct dz_prediction *labels; /* (batch) or NULL */
};

/*
 * dz_pnet_tree_labels - true when the TEE segment ends the network, @policy makes the TA rank
 * labels, and the scores pass a tree softmax (darknet's hierarchy): the TA cannot rank them
 * as darknet does (it holds the tree's group sizes, not its parents), so it refuses.
 */
bool dz_pnet_tree_labels(const struct dz_pnet *p, enum dz_output_policy policy);

/* Inference on one batch x (batch, inputs). Returns 0 or -1 with a message in err. */
int dz_pnet_predict(struct dz_pnet *p, const float *x, struct dz_pnet_output *out,
                    struct dk_error *err);

/* pnet_weights.c: plain darknet files provision both worlds; with a TEE,
 * saving writes PATH (darknet format, protected layers zero, marked) and
 * PATH.tz (the TA's sealed blob). See README "Sealed weights". A plain file may
 * be partial (darknet's `partial`): it holds layers 0..k-1, the others are drawn
 * from the seed as in a new network (protected ones inside the TA), and
 * p->weights_held says k. A sealed pair must be whole. */
int dz_pnet_load_weights(struct dz_pnet *p, const char *path, bool clear, struct dk_error *err);

/* Without a weights file: a streaming TA draws no parameters of its own (it keeps none), so
 * the segment's are drawn here from the seed, as the TA and a run without TEE draw them, and
 * imported as sealed chunks. Nothing to do otherwise. Returns 0 or -1 with a message. */
int dz_pnet_seed_weights(struct dz_pnet *p, struct dk_error *err);

/*
 * dz_streamed_save_cut - when PATH.tz beside weights file @path is a streamed save (struct
 * dz_chunk_save_header) of layers @first..@last, *chunk_bytes gets the working buffer it was
 * cut for; else 0. Read before the session opens: the session must cut the same chunks.
 * A missing or unreadable PATH.tz is no error here (the load says what is wrong).
 */
void dz_streamed_save_cut(const char *path, int first, int last, size_t *chunk_bytes);
int dz_pnet_save_weights(struct dz_pnet *p, const char *path, struct dk_error *err);

/*
 * dz_sealed_pair_write - write a sealed pair atomically: @blob (@size bytes) to a synced
 * temporary beside @path.tz, then @path in darknet format (@front's parameters, zeros for the
 * @segment_floats of layers first..last, @back's; revision dz_sealed_revision(first, last);
 * @seen), then the blob renamed to @path.tz last. A failure before that rename leaves any
 * previous pair in place. @front and @back may be NULL. Returns 0, or -1 with a message.
 */
int dz_sealed_pair_write(const char *path, int first, int last, uint64_t seen,
                         const struct dnn_network *front, uint64_t segment_floats,
                         const struct dnn_network *back, const uint8_t *blob, size_t size,
                         struct dk_error *err);

/*
 * dz_print_partial_note - after the layer table: when the loaded weights held
 * fewer layers than the network, which layers start from the seed instead.
 */
void dz_print_partial_note(FILE *f, const struct dz_pnet *p, const char *path);

/* The revision marker of a file whose layers first..last are sealed in PATH.tz. */
int32_t dz_sealed_revision(int first, int last);
/* Reads a revision: true and the range when it is the marker. */
bool dz_sealed_range(int32_t revision, int *first, int *last);

#endif
