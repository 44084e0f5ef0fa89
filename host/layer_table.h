/* layer_table.h - darknet's layer table, with `_TA` on the layers inside the TEE. */
#ifndef DZ_LAYER_TABLE_H
#define DZ_LAYER_TABLE_H

#include <stdio.h>

#include "dnn/dnn.h"

/* Layers first..last (inclusive) print with a `_TA` suffix; pass first > last for none. */
void dz_print_layer_table(FILE *f, const struct dnn_network *net, int ta_first, int ta_last);

#endif
