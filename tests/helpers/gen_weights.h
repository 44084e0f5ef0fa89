/* gen_weights.h - deterministic weights for a cfg, generated at test time instead of a
 * committed file (AlexNet's would be 244 MB). */
#ifndef TESTS_GEN_WEIGHTS_H
#define TESTS_GEN_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Writes to @out a darknet .weights file (format 0.2, seen 0) for the network of @cfg: the
 * engine's own initialisation from @seed (dnn_network_create, inference buffers only), with
 * the weights of the network's last layer that has weights multiplied by @gain. darknet's
 * initialisation shrinks the activations' variance at every layer (uniform in
 * +-sqrt(2/inputs) keeps a third of it through a ReLU), so a deep network's logits end up
 * near zero and its softmax near uniform; @gain spreads them again so that the scores
 * differ. The same @cfg, @seed and @gain give the same bytes on every machine (the
 * engine's random streams are its own). Returns 0, or -1 with a message in @msg
 * (@msg_size bytes, NUL-terminated).
 */
int gen_weights_save(const char *cfg, const char *out, uint64_t seed, float gain, char *msg,
                     size_t msg_size);

#endif
