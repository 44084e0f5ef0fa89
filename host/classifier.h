/* classifier.h - the `darknetp classifier` subcommands. */
#ifndef DZ_CLASSIFIER_H
#define DZ_CLASSIFIER_H

#include <stdbool.h>
#include <stdint.h>

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
    bool seal_infer_only;             /* train -seal_infer_only: saves allow inference only */
};

/* Each returns the process exit code and prints its own errors. */
int dz_classifier_train(const struct dz_classifier_args *a);
int dz_classifier_valid(const struct dz_classifier_args *a);
int dz_classifier_predict(const struct dz_classifier_args *a);

#endif
