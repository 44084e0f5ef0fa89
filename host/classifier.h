/* classifier.h - the `darknetp classifier` subcommands. */
#ifndef DZ_CLASSIFIER_H
#define DZ_CLASSIFIER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "darknet/dataset.h"
#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "host/data_options.h"
#include "host/pnet.h"
#include "ta/include/darknetz_ta.h"

struct dz_classifier_args {
    const char *datacfg;              /* .data / .dataset file */
    const char *cfgfile;              /* network .cfg */
    const char *weights;              /* .weights or NULL */
    const char *image;                /* predict: image path, or NULL to read paths from stdin */
    int top;                          /* -t: labels to print; 0 = the data file's `top`, else 1 */
    bool clear;                       /* -clear: restart the image count of loaded weights */
    int pp_start;                     /* first layer in the TEE, or -1 */
    int pp_end;                       /* last layer in the TEE, or -1 */
    uint64_t seed;                    /* -seed: weights init, data order, dropout */
    enum dz_output_policy tee_output; /* -tee_output: what leaves the TA when it ends the net */
    bool tee_stream;                  /* -tee_stream: stream the TEE segment's weights */
    size_t tee_chunk;     /* -tee_chunk: cap on the streaming working buffer, bytes (0: default) */
    bool seal_infer_only; /* train -seal_infer_only: saves allow inference only */
    int save_every;       /* train -save_every N: epochs between <cfg>_E.weights; 0: final only */
    const char *log;      /* train -log FILE.csv: one row per iteration, or NULL */
    int valid_every;      /* train -valid_every N: accuracy on `valid` every N epochs; 0: never */
    const char *out;      /* predict/valid -out FILE.csv: machine-readable rows, or NULL */
    int batch;            /* predict (rows)/valid -batch N: images per forward; 0: darknetp's */
    const struct dnn_parallel *parallel; /* -threads: the normal world's threads, NULL: one */
    struct dz_scratch_budget scratch;    /* -lower_mb, -col_cache_mb (dz_scratch_default) */
    /* mia */
    int mia_n;         /* -n: members and non-members each; 0 = min(1000, both sets) */
    int mia_queries;   /* -queries K: augmented copies per image for the label-only attack */
    bool mia_grad;     /* -grad: probe a training session's deltas (needs a policy allowing it) */
    int mia_shift;     /* -query_shift P: queries shift up to P pixels each way (0) */
    const char *csv;   /* -csv FILE: one row per image, or NULL */
    const char *plot;  /* -plot FILE.svg: mia's ROC curves, train's loss and accuracy; or NULL */
    double max_auc;    /* -max_auc X: exit 3 when an attack's AUC exceeds it; < 0: none */
    bool freeze_front; /* -pp_start_f: layers before pp_start are frozen */
    /* train -allow_unlabelled: train although image paths match no label or several */
    bool allow_unlabelled;
};

/* Each returns the process exit code and prints its own errors. */
int dz_classifier_train(const struct dz_classifier_args *a);
int dz_classifier_valid(const struct dz_classifier_args *a);
int dz_classifier_predict(const struct dz_classifier_args *a);
/* mia.c: membership inference on what leaves the TEE under a's partition and policy. */
int dz_classifier_mia(const struct dz_classifier_args *a);

/*
 * dz_classifier_load_network - parse a->cfgfile and build the network, partitioned when
 * a->pp_start/pp_end are set; batch > 0 replaces the cfg's batch (predict, valid and mia
 * run a few images at a time, as darknet's set_batch_network does); top is the number of
 * labels the TA may return under -tee_output topk. @fallback: the batch is darknetp's
 * choice, for inference, and may shrink to what the TEE segment fits (struct dz_pnet_opts,
 * batch_fallback); a->batch (-batch N) replaces it and is kept as given. pn->batch is the
 * batch in use. Prints the layer table and loads a->weights when set. Returns 0 or -1 with
 * a message in err; on failure the caller still closes pn and frees model.
 */
int dz_classifier_load_network(const struct dz_classifier_args *a, int batch, bool fallback,
                               bool training, int top, struct dk_model *model, struct dz_pnet *pn,
                               struct dk_error *err);

/* A names or labels list the data file names under `what`; refused when path is NULL. */
int dz_classifier_read_list(const char *path, const char *what, struct dk_list *out,
                            struct dk_error *err);

/* Closes an output file (NULL: nothing); a write or close failure sets err naming path and
 * returns -1 (err may be NULL when a failure is already reported). */
int dz_classifier_close_out(FILE *f, const char *path, struct dk_error *err);

/* Labels per prediction: -t, else the data file's `top`, else 1; at most `classes`. */
int dz_classifier_top_labels(const struct dz_classifier_args *a, const struct dz_data_options *opt);

#endif
