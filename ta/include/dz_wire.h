/*
 * dz_wire.h - the one codec of the DarkneTZ protocol's model description (darknetz_ta.h):
 * the host encodes with it, the TA decodes and checks with it, and `darknetp seal` hashes
 * what it encodes. Compiled into both worlds (ta/dz_wire.c, ta/dz_policy.c), so the two
 * sides cannot drift: one table of fields drives encoding, decoding and range checks.
 *
 * Decoders return NULL when the input is valid, else a message naming the field and the
 * fault, written into a caller's buffer of DZ_WIRE_MSG_MAX bytes (no allocation; the TA
 * logs it with EMSG, the host puts it in its error).
 */
#ifndef DZ_WIRE_H
#define DZ_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "darknetz_ta.h"
#include "dnn/dnn.h"

#define DZ_WIRE_MSG_MAX 128

/* Formats a decoder's refusal into @msg (DZ_WIRE_MSG_MAX bytes, truncated) and returns it. */
const char *dz_wire_fail(char msg[DZ_WIRE_MSG_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Ceilings the model blob is held to (the engine checks shapes and overflow on top). */
#define DZ_MAX_SPECS 1024u   /* layers in one segment */
#define DZ_MAX_LAYERS 65536u /* layers in the whole network */
#define DZ_MAX_BATCH 65536u
#define DZ_MAX_DIM 65536u         /* h, w, c, filters, subdivisions */
#define DZ_MAX_KERNEL 1024u       /* size, stride, pad */
#define DZ_MAX_OUTPUTS (1u << 24) /* connected outputs, softmax groups */
/* Words of the tree group table (dz_model_header.tree_words): a count and the sizes of each
 * tree softmax. README's tree file limit is 2^20 lines, so at most 2^20 groups per tree;
 * twice that leaves room for a segment holding two such layers. */
#define DZ_MAX_TREE_WORDS (1u << 21)

/* What the host asks of a session, beside the network itself. */
struct dz_wire_request {
    uint32_t n_layers, first, last; /* the partition, inclusive, of n_layers */
    uint32_t batch, subdivisions;   /* images per forward, forwards per update */
    bool training;
    uint32_t in_h, in_w, in_c; /* input shape of layer first */
    uint64_t seed;
    enum dz_output_policy output;
    uint32_t top_k;
};

/* The header of DZ_CMD_OPEN_MODEL from a request and the [net] training keys. */
void dz_wire_encode_header(const struct dz_wire_request *r, const struct dnn_net_config *cfg,
                           struct dz_model_header *h);
/*
 * dz_wire_decode_header - check every field of @h (magic, version, partition, batch,
 * shapes, finite rates, enums in range, reserved zero) and fill @cfg (index_base = first).
 * Returns NULL or the first fault, in @msg.
 */
const char *dz_wire_decode_header(const struct dz_model_header *h, struct dnn_net_config *cfg,
                                  char msg[DZ_WIRE_MSG_MAX]);

/*
 * dz_wire_encode_spec - the wire form of one layer: the fields its kind uses (route and
 * shortcut indexes absolute in the whole network), every other field zero.
 */
void dz_wire_encode_spec(const struct dnn_layer_spec *s, struct dz_wire_spec *w);
/*
 * dz_wire_decode_spec - check the wire spec of layer @index (absolute) of a segment that
 * starts at @first, and write the engine's spec with route and shortcut indexes rebased to
 * the segment. Refused: an enum out of range, a used field out of its range, an unused
 * field or reserved word not zero, an index outside [first, index). DZ_LF_TREE is allowed
 * on a softmax only; its sizes come from dz_wire_decode_tree (NULL until then).
 */
const char *dz_wire_decode_spec(const struct dz_wire_spec *w, uint32_t first, uint32_t index,
                                struct dnn_layer_spec *out, char msg[DZ_WIRE_MSG_MAX]);

/*
 * dz_wire_tree_words - the words of the group table (dz_model_header.tree_words) that
 * specs[0..n) need: 1 + tree_groups for each softmax with a tree, else nothing. The caller
 * keeps it at most DZ_MAX_TREE_WORDS (each tree's groups are bounded by its inputs).
 */
size_t dz_wire_tree_words(const struct dnn_layer_spec *specs, size_t n);
/* dz_wire_encode_tree - write that table into @out (dz_wire_tree_words(specs, n) words). */
void dz_wire_encode_tree(const struct dnn_layer_spec *specs, size_t n, uint32_t *out);
/*
 * dz_wire_decode_tree - check the group table @words (@n_words, at most DZ_MAX_TREE_WORDS)
 * against the @n wire specs @w of a segment starting at @first, already decoded into @specs,
 * and point each tree softmax's tree_group_size into @sizes (@n_words ints, owned by the
 * caller, which must outlive every network built from @specs). Refused: a record for no
 * tree layer (words left over), a truncated record, a group count of 0 or more than the
 * words left, a size of 0 or above DZ_MAX_OUTPUTS, sizes summing above DZ_MAX_OUTPUTS. That
 * the sizes sum to the layer's inputs is the engine's check at setup (it knows the inputs).
 */
const char *dz_wire_decode_tree(const struct dz_wire_spec *w, size_t n, uint32_t first,
                                const uint32_t *words, size_t n_words, int *sizes,
                                struct dnn_layer_spec *specs, char msg[DZ_WIRE_MSG_MAX]);

/*
 * dz_wire_shape_bytes - the part of the model digest after the wire specs and the tree group
 * table (darknetz_ta.h, sealed blob): first, last, n_layers, then h, w, c, out_h, out_w, out_c of
 * each of the @n layers, as uint32 LE. @buf holds dz_wire_shape_size(n) bytes.
 */
size_t dz_wire_shape_size(size_t n);
void dz_wire_shape_bytes(uint32_t first, uint32_t last, uint32_t n_layers,
                         const struct dnn_layer *layers, size_t n, uint8_t *buf);

/* ---------------------------------------------------------------- policy (dz_policy.c) */

/* The policy a session's own request amounts to: what a save seals when nothing was loaded
 * or the parameters came in plain ("the policy it was trained under"). */
void dz_policy_of_request(const struct dz_model_header *h, struct dz_policy *p);
/* NULL when @p is well formed (modes, output, top_k_max, ranges, finite bounds, reserved). */
const char *dz_policy_check(const struct dz_policy *p, char msg[DZ_WIRE_MSG_MAX]);
/* NULL when @want asks for nothing @allowed does not give, else the rule it breaks. */
const char *dz_policy_within(const struct dz_policy *want, const struct dz_policy *allowed,
                             char msg[DZ_WIRE_MSG_MAX]);
/* The output policy's name: "top1", "topk", "rank", "scores". */
const char *dz_output_name(uint32_t output);

/* Little-endian helpers for the fixed-layout blobs. */
static inline void dz_put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

#endif /* DZ_WIRE_H */
