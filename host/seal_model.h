/*
 * seal_model.h - the model side of `darknetp seal`: a cfg and its plain darknet weights
 * split at a partition, without any TEE. Gives the protected layers' floats (to encrypt),
 * the model digest the TA will compute for the same cfg and partition, and writes the pair
 * a device loads: PATH (darknet format, layers first..last as zeros, the marker revision)
 * and PATH.tz (the sealed blob), as a device's own sealed save writes them (README,
 * "Sealed weights").
 */
#ifndef DZ_SEAL_MODEL_H
#define DZ_SEAL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "host/owner_seal.h"

struct dz_seal_model {
    struct dk_model model;          /* the parsed cfg */
    struct dnn_network *shapes;     /* the whole network at batch 1, shapes only */
    int first, last;                /* the partition, inclusive */
    struct dk_weights_header wh;    /* of the plain weights file */
    struct dnn_network *front;      /* layers 0..first-1 with their parameters, or NULL */
    struct dnn_network *back;       /* layers last+1..n-1 with their parameters, or NULL */
    float *segment;                 /* layers first..last's parameters in .weights order */
    size_t segment_floats;          /* (connected weights untransposed, as the TA takes them) */
    uint8_t digest[DZ_DIGEST_SIZE]; /* the model digest (darknetz_ta.h, sealed blob) */
};

/*
 * dz_seal_model_open - parse @cfg, check the partition [first, last] as a run with
 * -pp_start/-pp_end would (range, the layers a route may read, the marker's 4095 limit),
 * read the plain darknet @weights (which must hold exactly the whole network), and compute
 * the digest. Refused, naming the file: a weights file marked as sealed (a device's save or
 * a seal's output: its protected layers are zeros), one of another size, a partition out of
 * range or not allowed. Returns 0, or -1 with a message in err; call dz_seal_model_close
 * either way (*sm is zeroed first).
 */
int dz_seal_model_open(struct dz_seal_model *sm, const char *cfg, const char *weights, int first,
                       int last, struct dk_error *err);

/* Wipes the protected floats and frees everything. NULL is fine. */
void dz_seal_model_close(struct dz_seal_model *sm);

/*
 * dz_seal_model_digest - SHA-256 over the wire specs of layers first..last as
 * dz_wire_encode_spec writes them (160 bytes each), their tree group table as
 * dz_wire_encode_tree writes it (none without a tree softmax), then dz_wire_shape_bytes(first,
 * last, n_layers, their shapes): the value the TA computes at DZ_CMD_OPEN_MODEL. Returns 0, or -1.
 */
int dz_seal_model_digest(const struct dk_model *m, const struct dnn_network *shapes, int first,
                         int last, uint8_t digest[DZ_DIGEST_SIZE], struct dk_error *err);

/*
 * dz_seal_model_write - write @path and @path.tz (@blob, @size bytes) atomically: the blob to
 * a synced temporary, then @path with the front, zeros for the segment, the back, revision
 * dz_sealed_revision(first, last) and the weights file's seen (atomic itself), then the
 * blob renamed to @path.tz last. A failure before the last rename leaves any previous pair in
 * place. Returns 0, or -1 with a message in err.
 */
int dz_seal_model_write(const struct dz_seal_model *sm, const char *path, const uint8_t *blob,
                        size_t size, struct dk_error *err);

#endif
