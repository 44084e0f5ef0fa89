/* seal_model.c - a cfg and its plain weights split for `darknetp seal` (seal_model.h). */
#include "host/seal_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "host/partition.h"
#include "host/pnet.h"
#include "ta/include/dz_wire.h"

/* Builds layers [first, last] as an engine network for inference, batch 1. */
static int build_part(const struct dz_seal_model *sm, size_t first, size_t last,
                      struct dnn_network **out, struct dk_error *err)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec *specs = NULL;
    if (dz_segment_config(&sm->model, sm->shapes, first, last, 1, 1, &cfg, &specs, err) != 0)
        return -1;
    enum dnn_status st = dnn_network_create(out, &cfg, specs, last - first + 1, false, 0);
    free(specs);
    if (st != DNN_OK)
        return dk_fail(err, "cannot build layers %zu..%zu: %s", first, last, dnn_status_str(st));
    return 0;
}

/* The partition as -pp_start/-pp_end would take it, and the marker's limit. */
static int check_partition(const struct dz_seal_model *sm, const char *cfg, struct dk_error *err)
{
    const size_t n = sm->shapes->n;
    int mf = -1, ml = -1;
    if (sm->first < 0 || sm->first > sm->last || (size_t)sm->last >= n)
        return dk_fail(err, "-pp_start %d -pp_end %d: out of range; %s has layers 0..%zu",
                       sm->first, sm->last, cfg, n - 1);
    if (!dz_sealed_range(dz_sealed_revision(sm->first, sm->last), &mf, &ml) || mf != sm->first ||
        ml != sm->last)
        return dk_fail(err, "-pp_end %d: sealed weights mark layers up to 4095 only", sm->last);
    return dz_partition_check(sm->shapes, sm->first, sm->last, err);
}

/* The plain weights: not marked, exactly the whole network. */
static int check_weights(const struct dz_seal_model *sm, const char *path, struct dk_error *err)
{
    int mf = 0, ml = 0;
    if (dz_sealed_range(sm->wh.revision, &mf, &ml))
        return dk_fail(err,
                       "%s: marked as sealed (layers %d..%d are zeros, their values are in "
                       "%s.tz): seal needs the plain darknet weights",
                       path, mf, ml, path);
    const uint64_t want = 4 * dz_range_param_floats(sm->shapes, 0, sm->shapes->n - 1);
    const uint64_t have = sm->wh.file_size - sm->wh.bytes;
    if (have != want)
        return dk_fail(err,
                       "%s: holds %llu bytes of weights, the network's %zu layers need %llu "
                       "(the whole network is needed; wrong cfg?)",
                       path, (unsigned long long)have, sm->shapes->n, (unsigned long long)want);
    return 0;
}

static int read_segment(struct dz_seal_model *sm, const char *path, struct dk_error *err)
{
    const uint64_t count = dz_range_param_floats(sm->shapes, (size_t)sm->first, (size_t)sm->last);
    const uint64_t offset =
        sm->first > 0 ? 4 * dz_range_param_floats(sm->shapes, 0, (size_t)sm->first - 1) : 0;
    if (count > SIZE_MAX / sizeof(float))
        return dk_fail(err, "%s: layers %d..%d are too large", path, sm->first, sm->last);
    sm->segment_floats = (size_t)count;
    sm->segment = calloc(count ? (size_t)count : 1, sizeof(float));
    if (!sm->segment)
        return dk_fail(err, "out of memory for the weights of layers %d..%d", sm->first, sm->last);
    if (count &&
        dk_weights_read_floats(path, &sm->wh, offset, sm->segment, (size_t)count, err) != 0)
        return -1;
    return sm->wh.transpose
               ? dz_range_untranspose(sm->shapes, sm->first, sm->last, sm->segment, err)
               : 0;
}

int dz_seal_model_digest(const struct dk_model *m, const struct dnn_network *shapes, int first,
                         int last, uint8_t digest[DZ_DIGEST_SIZE], struct dk_error *err)
{
    const size_t n = (size_t)(last - first + 1);
    const struct dnn_layer_spec *specs = &m->specs[first];
    const size_t tree_words = dz_wire_tree_words(specs, n);
    struct dz_wire_spec *w = calloc(n, sizeof *w);
    uint32_t *tw = calloc(tree_words ? tree_words : 1, sizeof *tw);
    uint8_t *sb = malloc(dz_wire_shape_size(n));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = w && tw && sb && c;
    if (ok) {
        for (size_t i = 0; i < n; i++)
            dz_wire_encode_spec(&specs[i], &w[i]);
        dz_wire_encode_tree(specs, n, tw);
        dz_wire_shape_bytes((uint32_t)first, (uint32_t)last, (uint32_t)shapes->n,
                            &shapes->layers[first], n, sb);
        /* the TA's order: specs, tree group table (empty without a tree), shapes */
        ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, w, n * sizeof *w) == 1 &&
             EVP_DigestUpdate(c, tw, tree_words * sizeof *tw) == 1 &&
             EVP_DigestUpdate(c, sb, dz_wire_shape_size(n)) == 1 &&
             EVP_DigestFinal_ex(c, digest, &len) == 1 && len == DZ_DIGEST_SIZE;
    }
    EVP_MD_CTX_free(c);
    free(sb);
    free(tw);
    free(w);
    return ok ? 0 : dk_fail(err, "cannot compute the model digest (out of memory or libcrypto)");
}

int dz_seal_model_open(struct dz_seal_model *sm, const char *cfg, const char *weights, int first,
                       int last, struct dk_error *err)
{
    memset(sm, 0, sizeof *sm);
    sm->first = first;
    sm->last = last;
    if (dk_parse_network(cfg, &sm->model, err) != 0)
        return -1;
    if (sm->model.notes)
        fputs(sm->model.notes, stderr);
    if (dz_shapes_create(&sm->model, 1, 0, &sm->shapes, err) != 0 ||
        check_partition(sm, cfg, err) != 0)
        return -1;
    if (dk_weights_read_header(weights, &sm->wh, err) != 0 || check_weights(sm, weights, err) != 0)
        return -1;
    const size_t n = sm->shapes->n;
    if (first > 0 && (build_part(sm, 0, (size_t)first - 1, &sm->front, err) != 0 ||
                      dk_weights_load_at(sm->front, weights, &sm->wh, 0, err) != 0))
        return -1;
    if ((size_t)last + 1 < n) {
        const uint64_t offset = 4 * dz_range_param_floats(sm->shapes, 0, (size_t)last);
        if (build_part(sm, (size_t)last + 1, n - 1, &sm->back, err) != 0 ||
            dk_weights_load_at(sm->back, weights, &sm->wh, offset, err) != 0)
            return -1;
    }
    if (read_segment(sm, weights, err) != 0)
        return -1;
    return dz_seal_model_digest(&sm->model, sm->shapes, first, last, sm->digest, err);
}

void dz_seal_model_close(struct dz_seal_model *sm)
{
    if (!sm)
        return;
    if (sm->segment)
        OPENSSL_cleanse(sm->segment, (sm->segment_floats ? sm->segment_floats : 1) * sizeof(float));
    free(sm->segment);
    dnn_network_free(sm->back);
    dnn_network_free(sm->front);
    dz_shapes_free(sm->shapes);
    dk_model_free(&sm->model);
    memset(sm, 0, sizeof *sm);
}

int dz_seal_model_write(const struct dz_seal_model *sm, const char *path, const uint8_t *blob,
                        size_t size, struct dk_error *err)
{
    return dz_sealed_pair_write(path, sm->first, sm->last, sm->wh.seen, sm->front,
                                sm->segment_floats, sm->back, blob, size, err);
}
