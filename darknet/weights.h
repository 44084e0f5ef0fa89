/*
 * weights.h - darknet's binary .weights files.
 *
 * Layout (all little-endian):
 *   int32 major, int32 minor, int32 revision,
 *   seen: uint64 when major*10+minor >= 2 and major < 1000 and minor < 1000,
 *         else int32 (format 0.1 and older),
 *   then for every layer in order its parameter tensors (struct dnn_layer's
 *   params[], which the engine keeps in darknet's order) as float32.
 * When major > 1000 or minor > 1000 the file is "transposed": connected-layer
 * weights are stored (inputs, outputs) and are transposed on load.
 *
 * A layer with darknet's dontload (struct dnn_layer_spec) has no bytes in a file being
 * read, and one with dontloadscales no batch-normalization triple (convolutional and
 * connected): their values stay as they are, and the next bytes belong to what follows,
 * as in darknet's load_weights_upto. Saving writes every parameter, as darknet does.
 *
 * Stricter than darknet, which reads what is there and leaves the rest: a
 * file must end exactly at a layer boundary at or after the last layer asked
 * for, so a weights file made for another cfg is refused with both sizes.
 */
#ifndef DK_WEIGHTS_H
#define DK_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"
#include "dnn/dnn.h"

/* Whether parameter j of l is read from a .weights file (dontload, dontloadscales). */
bool dk_weights_param_in_file(const struct dnn_layer *l, size_t j);

/* Floats of l's parameters in a .weights file read with its cfg: its parameters less those
 * dk_weights_param_in_file leaves out. Uses parameter counts only (a shape network is fine). */
uint64_t dk_weights_file_floats(const struct dnn_layer *l);

/* A .weights file's header, as read. */
struct dk_weights_header {
    int32_t major, minor, revision;
    uint64_t seen;
    bool transpose;     /* major or minor > 1000: connected weights stored (inputs, outputs) */
    size_t bytes;       /* header bytes: 16 or 20 */
    uint64_t file_size; /* bytes of the whole file */
};

/* Reads the header of path. The file must be a regular file (darknet/user_file.h: a FIFO
 * or device is refused without blocking); its size limit is its cfg's parameter count,
 * checked by the loaders. Returns 0 or -1 with a message in err. */
int dk_weights_read_header(const char *path, struct dk_weights_header *h, struct dk_error *err);

/*
 * dk_weights_load_at - read the parameters of every layer of net, in order,
 * from path starting `offset` bytes after its header h (transposing connected
 * weights when h->transpose). For a network that is one part of a larger model
 * (the normal world's layers around a TEE segment): the caller has checked the
 * file's size against the whole model. Leaves net->seen alone.
 * Returns 0 or -1 with a message in err.
 */
int dk_weights_load_at(struct dnn_network *net, const char *path, const struct dk_weights_header *h,
                       uint64_t offset, struct dk_error *err);

/*
 * dk_weights_load_first - dk_weights_load_at for the first n_layers layers of net
 * only (a partial file that ends inside net's range); 0 layers reads nothing.
 */
int dk_weights_load_first(struct dnn_network *net, const char *path,
                          const struct dk_weights_header *h, uint64_t offset, size_t n_layers,
                          struct dk_error *err);

/*
 * dk_weights_check_prefix - darknet's "partial" files (`darknet partial`,
 * darknet53.conv.74): the weights of h's file (header h, as read from path) must
 * end exactly at a layer boundary of shapes, anywhere from before layer 0 (a bare
 * header) to after the last layer. *held receives the number of leading layers
 * the file holds (parameter-free layers right after the boundary included);
 * shapes->n when the file is whole. Uses parameter counts only, so shapes may be
 * a shape network. Returns 0, or -1 with dk_weights_check's message when the file
 * ends inside a layer or has trailing bytes.
 */
int dk_weights_check_prefix(const struct dnn_network *shapes, const char *path,
                            const struct dk_weights_header *h, size_t *held, struct dk_error *err);

/*
 * dk_weights_read_floats - read count raw float32 values starting `offset`
 * bytes after the header h of path into out (no transposition).
 * Returns 0 or -1 with a message in err.
 */
int dk_weights_read_floats(const char *path, const struct dk_weights_header *h, uint64_t offset,
                           float *out, size_t count, struct dk_error *err);

/*
 * dk_weights_load - load the parameters of layers [first, last] from path.
 * The file holds layers 0.. in order; layers before first are skipped. The
 * file's weights must end exactly after some layer k with last <= k < net->n
 * (the whole network, or a prefix such as darknet's "partial" files); a file
 * that ends earlier is truncated, one that ends elsewhere or later has trailing
 * bytes: both are errors naming the sizes. The sizes are checked before anything
 * is read, so on those errors the network is unchanged. Sets net->seen.
 * Returns 0 or -1 with a message in err.
 */
int dk_weights_load(struct dnn_network *net, const char *path, size_t first, size_t last,
                    struct dk_error *err);

/*
 * dk_weights_check - the size test of dk_weights_load_all without loading: path's
 * weights must be exactly those of every layer of shapes. Uses parameter counts only,
 * so shapes may be a network set up without tensors (host/partition.h's shape network):
 * a .weights file made for another cfg is refused before any network is allocated.
 * Also refuses what dk_weights_read_header refuses (not a regular file, short header).
 * Returns 0 or -1 with the message dk_weights_load_all would give.
 */
int dk_weights_check(const struct dnn_network *shapes, const char *path, struct dk_error *err);

/* dk_weights_load over every layer: the file must match the network exactly. */
int dk_weights_load_all(struct dnn_network *net, const char *path, struct dk_error *err);

/*
 * dk_weights_save - write every layer's parameters as format 0.2 (major 0,
 * minor 2, revision 0, uint64 seen). Atomic: the data goes to a temporary file
 * in the same directory, is flushed and fsync'ed, then renamed over path; on
 * any error the temporary is removed and an existing file at path is left as
 * it was. A replaced file keeps its permission bits; a new one gets 0666 & ~umask.
 * Returns 0 or -1 with a message in err.
 */
int dk_weights_save(const struct dnn_network *net, const char *path, struct dk_error *err);

/* One run of a file written by dk_weights_save_parts: the parameters of every
 * layer of net, or, when net is NULL, zero_floats zeros (layers whose values
 * are kept elsewhere). */
struct dk_weights_part {
    const struct dnn_network *net;
    uint64_t zero_floats;
};

/*
 * dk_weights_save_parts - dk_weights_save for a model held in several parts:
 * format 0.2 with the given revision and seen, then each part in order.
 * Atomic in the same way as dk_weights_save. Returns 0 or -1 with a message in err.
 */
int dk_weights_save_parts(const char *path, int32_t revision, uint64_t seen,
                          const struct dk_weights_part *parts, size_t n_parts,
                          struct dk_error *err);

#endif
