/*
 * gradcheck.h - finite-difference checks of the engine's backward passes.
 *
 * The objective is L = sum_i r_i * y_i over the output y of the network's last
 * layer, with fixed random r. Backward is seeded with delta = -r (the engine's
 * deltas are negative gradients), and the input delta and every trainable
 * parameter's update are compared with central differences of L.
 */
#ifndef TESTS_GRADCHECK_H
#define TESTS_GRADCHECK_H

#include "dnn/dnn.h"

struct gradcheck_result {
    size_t checked;    /* derivatives compared */
    size_t mismatches; /* of those, outside tolerance */
    double max_error;  /* largest |analytic - numeric| / max(1, |numeric|) */
};

/*
 * Builds a training network from cfg/specs with seed 1, feeds uniform(-1,1)
 * inputs and checks at most max_per_tensor entries of the input delta and of
 * each parameter tensor. h is the finite-difference step, tol the relative
 * tolerance. Prints every mismatch to stderr.
 */
struct gradcheck_result gradcheck_network(const struct dnn_net_config *cfg,
                                          const struct dnn_layer_spec *specs, size_t n, float h,
                                          double tol, size_t max_per_tensor);

/* A [net] config for tests: batch, h, w, c; lr 0.1, momentum 0.9, decay 0. */
struct dnn_net_config gradcheck_config(int batch, int h, int w, int c);

#endif
