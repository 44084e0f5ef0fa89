/*
 * batch_loader.h - training batches loaded and augmented on a background thread, one batch
 * ahead of the network, in exactly the order and with exactly the random draws of calling
 * dk_dataset_train_batch in a loop (the loader is the only user of the data stream).
 */
#ifndef HOST_BATCH_LOADER_H
#define HOST_BATCH_LOADER_H

#include <stddef.h>

#include "darknet/augment.h"
#include "darknet/dataset.h"
#include "darknet/error.h"
#include "dnn/dnn.h"

struct dz_batch_loader;

/*
 * dz_batch_loader_start - starts loading batches of n images (w x h x c, floats (n, c*h*w)
 * and truth (n, classes)) from ds with rng and aug, which are borrowed and must outlive the
 * loader; rng is the loader's alone until dz_batch_loader_stop. -1 with err set when memory
 * or the thread cannot be had.
 */
int dz_batch_loader_start(struct dz_batch_loader **out, const struct dk_dataset *ds,
                          struct dnn_rng *rng, int n, int w, int h, int c, int classes,
                          const struct dk_augment_params *aug, struct dk_error *err);

/*
 * dz_batch_loader_next - the next batch: *x and *y stay valid until the next call (which
 * hands their buffers back for loading). Waits while the batch is still being loaded. -1 with
 * err set (dk_dataset_train_batch's message) when that batch could not be loaded; no batch
 * follows a failed one.
 */
int dz_batch_loader_next(struct dz_batch_loader *l, const float **x, const float **y,
                         struct dk_error *err);

/* Waits for the batch being loaded, if any, stops the thread and frees. NULL is a no-op. */
void dz_batch_loader_stop(struct dz_batch_loader *l);

#endif
