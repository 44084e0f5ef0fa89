/*
 * pnet_weights.c - weights of a partitioned network (README: "Sealed weights").
 *
 * Loading a plain darknet .weights file provisions both worlds: the normal
 * world reads its layers, the TA gets the segment's floats with
 * DZ_CMD_LOAD_PLAIN and the host copy is wiped. Saving with a TEE writes two
 * files: PATH in darknet's format with the protected layers' values as zeros
 * and the header's revision set to the marker 0x5A000000 | first << 12 | last,
 * and PATH.tz, the TA's sealed blob (DZ_CMD_SAVE_SEALED) as it is.
 */
#include "host/pnet.h"
#include "host/atomic_file.h"
#include "host/device_key.h"
#include "host/seal_model.h"
#include "ta/include/dz_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <tee_client_api.h>
#include <unistd.h>

#include "darknet/user_file.h"
#include "darknet/weights.h"
#include "host/partition.h"

#define MARK_TAG 0x5Au
#define MARK_MAX_LAYER 0xFFF

int32_t dz_sealed_revision(int first, int last)
{
    return (int32_t)(MARK_TAG << 24 | (uint32_t)first << 12 | (uint32_t)last);
}

bool dz_sealed_range(int32_t revision, int *first, int *last)
{
    uint32_t r = (uint32_t)revision;
    if (r >> 24 != MARK_TAG)
        return false;
    *first = (int)((r >> 12) & MARK_MAX_LAYER);
    *last = (int)(r & MARK_MAX_LAYER);
    return *first <= *last;
}

/* Byte offset of a layer's first float in a plain file read with the cfg (dontload and
 * dontloadscales leave out what they name); 0 for layer 0. */
static uint64_t offset_of(const struct dz_pnet *p, size_t layer)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < layer && i < p->shapes->n; i++)
        sum += dk_weights_file_floats(&p->shapes->layers[i]);
    return 4 * sum;
}

/* Whether a layer of [first, last] has a parameter that a plain file leaves out. */
static bool range_skips(const struct dz_pnet *p, size_t first, size_t last)
{
    for (size_t i = first; i <= last && i < p->shapes->n; i++) {
        const struct dnn_layer *l = &p->shapes->layers[i];
        if (dk_weights_file_floats(l) != dz_layer_param_floats(l))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------- load */

/* How many of the layers [start, start + n) a file holding layers 0..held-1 holds. */
static size_t held_of(size_t held, size_t start, size_t n)
{
    if (held <= start)
        return 0;
    return held - start < n ? held - start : n;
}

/*
 * A segment with dontload or dontloadscales, or one that streams from a file that does not
 * hold all of it (or from no file, @path NULL): the parameters the file leaves out keep the
 * values the TA would draw for them, so the segment is built here from the same seed (the
 * engine's per-layer streams make its draws those of the TA), the file's values read over
 * it as the normal world's layers are, and every float of the segment sent; the copy is
 * wiped with the network. A streaming TA draws nothing itself: its import takes every float.
 */
static int provision_with_skips(struct dz_pnet *p, const char *path,
                                const struct dk_weights_header *h, bool clear, struct dk_error *err)
{
    const size_t first = (size_t)p->first, last = (size_t)p->last;
    struct dnn_net_config cfg;
    struct dnn_layer_spec *specs = NULL;
    struct dnn_network *seg = NULL;
    float *buf = NULL;
    const uint64_t count = dz_range_param_floats(p->shapes, first, last);
    int rc = -1;
    if (count > SIZE_MAX / sizeof(float))
        return dk_fail(err, "%s: layers %d..%d are too large", path ? path : "the seed", p->first,
                       p->last);
    if (dz_segment_config(p->model, p->shapes, first, last, 1, 1, &cfg, &specs, err) != 0)
        return -1;
    enum dnn_status st =
        dnn_network_create(&seg, &cfg, specs, last - first + 1, false, p->shapes->seed);
    free(specs);
    if (st != DNN_OK)
        return dk_fail(err, "cannot build layers %d..%d: %s", p->first, p->last,
                       dnn_status_str(st));
    buf = calloc((size_t)count + 1, sizeof(float));
    if (!buf) {
        dk_fail(err, "out of memory for the weights of layers %d..%d", p->first, p->last);
        goto out;
    }
    if (path && dk_weights_load_first(seg, path, h, offset_of(p, first),
                                      held_of(p->weights_held, first, seg->n), err) != 0)
        goto out;
    size_t at = 0;
    for (size_t i = 0; i < seg->n; i++) {
        const struct dnn_layer *l = &seg->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            memcpy(buf + at, l->params[j].value, l->params[j].count * sizeof(float));
            at += l->params[j].count;
        }
    }
    rc = dz_tee_load_plain(p->tee, buf, (size_t)count, clear || !h ? 0 : h->seen, err);
out:
    if (buf) {
        OPENSSL_cleanse(buf, (size_t)count * sizeof(float));
        free(buf);
    }
    dnn_network_free(seg); /* wipes its buffers */
    return rc;
}

/*
 * The segment's floats from a plain file go to the TA, then the host copy is wiped. A
 * partial file sends the floats of the segment's layers it holds (those of layers
 * first..first+in_seg-1); the TA draws the others from the seed itself.
 */
static int provision_plain(struct dz_pnet *p, const char *path, const struct dk_weights_header *h,
                           bool clear, struct dk_error *err)
{
    if (range_skips(p, (size_t)p->first, (size_t)p->last))
        return provision_with_skips(p, path, h, clear, err);
    const size_t in_seg =
        held_of(p->weights_held, (size_t)p->first, (size_t)(p->last - p->first + 1));
    if (dz_tee_streaming(p->tee) && in_seg < (size_t)(p->last - p->first + 1))
        return provision_with_skips(p, path, h, clear, err); /* the rest from the seed */
    const int upto = p->first + (int)in_seg - 1;
    const uint64_t count =
        in_seg ? dz_range_param_floats(p->shapes, (size_t)p->first, (size_t)upto) : 0;
    if (count == 0)
        return dz_tee_load_plain(p->tee, NULL, 0, clear ? 0 : h->seen, err);
    if (count > SIZE_MAX / sizeof(float))
        return dk_fail(err, "%s: layers %d..%d are too large", path, p->first, p->last);
    float *buf = calloc((size_t)count, sizeof(float));
    if (!buf)
        return dk_fail(err, "out of memory for the weights of layers %d..%d", p->first, upto);
    int rc =
        dk_weights_read_floats(path, h, offset_of(p, (size_t)p->first), buf, (size_t)count, err);
    if (rc == 0 && h->transpose)
        rc = dz_range_untranspose(p->shapes, p->first, upto, buf, err);
    if (rc == 0)
        rc = dz_tee_load_plain(p->tee, buf, (size_t)count, clear ? 0 : h->seen, err);
    OPENSSL_cleanse(buf, (size_t)count * sizeof(float));
    free(buf);
    return rc;
}

/* Reads a whole sealed blob of at most max bytes. Opened through dk_user_file_read, so a
 * FIFO or device named x.weights.tz is refused at once instead of blocking the open. */
static int read_file(const char *path, size_t max, uint8_t **out, size_t *size,
                     struct dk_error *err)
{
    char *data = NULL;
    *out = NULL;
    if (dk_user_file_read(path, "a sealed blob", max, &data, size, err) != 0)
        return -1;
    *out = (uint8_t *)data;
    return 0;
}

/* An owner's blob names its device by fingerprint: compare it with this device's key. */
static int check_device(const struct dz_pnet *p, const char *tz, const struct dz_sealed_header *h,
                        struct dk_error *err)
{
    uint8_t pub[DZ_X25519_BYTES], fp[DZ_FINGERPRINT_BYTES];
    char want[DZ_HEX32_CHARS], have[DZ_HEX32_CHARS];
    if (dz_tee_get_pubkey(p->tee, pub, err) != 0 || dz_key_fingerprint(pub, fp, err) != 0)
        return -1;
    if (memcmp(fp, h->device_fingerprint, sizeof fp) == 0)
        return 0;
    dz_hex(h->device_fingerprint, sizeof fp, want);
    dz_hex(fp, sizeof fp, have);
    return dk_fail(err,
                   "%s: sealed for another device (SHA256:%s); this device is SHA256:%s "
                   "(refused)",
                   tz, want, have);
}

/* The blob's plaintext header names its partition: refuse a mismatch before the TA sees it. */
static int check_blob_header(const struct dz_pnet *p, const char *tz, const uint8_t *blob,
                             size_t size, struct dk_error *err)
{
    struct dz_sealed_header hdr;
    if (size < sizeof hdr + DZ_SEALED_TAG_BYTES)
        return dk_fail(err, "%s: %zu bytes, too short for a sealed blob", tz, size);
    memcpy(&hdr, blob, sizeof hdr);
    if (hdr.magic == DZ_SEALED_MAGIC_V1)
        return dk_fail(err,
                       "%s: sealed by protocol version 1 (DZS1); this darknetp and its TA speak "
                       "version %u: re-save it with the darknetp that wrote it, as a plain "
                       ".weights file, or have the owner seal it again",
                       tz, (unsigned)DZ_TA_PROTOCOL_VERSION);
    if (hdr.magic != DZ_SEALED_MAGIC || hdr.version != DZ_TA_PROTOCOL_VERSION)
        return dk_fail(err, "%s: not a DarkneTZ sealed blob of protocol version %u", tz,
                       (unsigned)DZ_TA_PROTOCOL_VERSION);
    if (hdr.first != (uint32_t)p->first || hdr.last != (uint32_t)p->last ||
        hdr.n_layers != (uint32_t)p->shapes->n)
        return dk_fail(err,
                       "%s: seals layers %u..%u of a %u-layer network; this run protects layers "
                       "%d..%d of %zu: refused",
                       tz, (unsigned)hdr.first, (unsigned)hdr.last, (unsigned)hdr.n_layers,
                       p->first, p->last, p->shapes->n);
    /* The header is in the clear (authenticated, not secret): say what does not match
     * before the TA refuses it without a reason the normal world could read. */
    uint8_t digest[DZ_DIGEST_SIZE];
    if (dz_seal_model_digest(p->model, p->shapes, p->first, p->last, digest, err) != 0)
        return -1;
    if (memcmp(digest, hdr.model_digest, sizeof digest) != 0)
        return dk_fail(err,
                       "%s: sealed for another model: this cfg's layers %d..%d are not the ones "
                       "it was sealed with (refused)",
                       tz, p->first, p->last);
    if (hdr.key_kind == DZ_KEY_OWNER && check_device(p, tz, &hdr, err) != 0)
        return -1;
    struct dz_policy want;
    char why[DZ_WIRE_MSG_MAX];
    if (dz_policy_check(&hdr.policy, why))
        return dk_fail(err, "%s: the sealed blob's policy is malformed (altered?): %s", tz, why);
    dz_tee_request_policy(p->tee, &want);
    if (dz_policy_within(&want, &hdr.policy, why))
        return dk_fail(err, "%s: the sealed blob's policy refuses this run: %s", tz, why);
    return 0;
}

/* The owner version in a blob's header (check_blob_header has checked its size). */
static uint32_t blob_version(const uint8_t *blob)
{
    struct dz_sealed_header hdr;
    memcpy(&hdr, blob, sizeof hdr);
    return hdr.model_version;
}

/* Is the blob the normal world's own: sealed by this device's TA without an owner version,
 * i.e. saved by a run that began from the normal world's parameters (darknetz_ta.h,
 * DZ_CMD_STREAM_REKEY)? The TA decides; this says why before it refuses. */
static bool blob_own(const uint8_t *blob)
{
    struct dz_sealed_header hdr;
    memcpy(&hdr, blob, sizeof hdr);
    return hdr.key_kind == DZ_KEY_DEVICE && hdr.model_version == 0;
}

/* The first word of @tz into *magic: false when it cannot be read. Opened as a user file: a
 * FIFO or device under that name must not block or feed us (the reader that follows reports
 * why it is refused). */
static bool blob_magic(const char *tz, uint32_t *magic)
{
    FILE *f = NULL;
    struct dk_error ignored;
    *magic = 0;
    if (dk_user_file_fopen(tz, "a sealed blob", DK_WEIGHTS_MAX_BYTES, &f, NULL, &ignored) != 0)
        return false;
    const bool got = fread(magic, sizeof *magic, 1, f) == 1;
    fclose(f);
    return got;
}

/* Does @tz begin as a streamed save (struct dz_chunk_save_header)? */
static bool streamed_save(const char *tz)
{
    uint32_t magic = 0;
    return blob_magic(tz, &magic) && magic == DZ_CHUNK_SAVE_MAGIC;
}

/* A .tz whose first word is none of the sealed formats' magics was damaged or replaced: said
 * as such, before its size is judged against a sealed blob's (a streamed save with a
 * damaged magic is larger than one and would be reported as an oversized blob). */
static int check_magic(const char *path, const char *tz, struct dk_error *err)
{
    uint32_t m = 0;
    if (!blob_magic(tz, &m) || m == DZ_SEALED_MAGIC || m == DZ_SEALED_MAGIC_V1 ||
        m == DZ_CHUNK_SAVE_MAGIC)
        return 0;
    return dk_fail(err,
                   "%s: not a sealed weights file (bad magic 0x%08x: a sealed blob begins with "
                   "DZS2, a streamed save with DZB1); it was damaged or replaced, and %s, whose "
                   "TEE layers it holds, cannot load without it: restore both files of the "
                   "pair from one save",
                   tz, (unsigned)m, path);
}

void dz_streamed_save_cut(const char *path, int first, int last, size_t *chunk_bytes)
{
    char tz[4200];
    struct dz_chunk_save_header h;
    FILE *f = NULL;
    struct dk_error ignored;
    *chunk_bytes = 0;
    if (first < 0 || snprintf(tz, sizeof tz, "%s.tz", path) >= (int)sizeof tz || !streamed_save(tz))
        return;
    if (dk_user_file_fopen(tz, "a sealed blob", DK_WEIGHTS_MAX_BYTES, &f, NULL, &ignored) != 0)
        return;
    if (fread(&h, sizeof h, 1, f) == 1 && h.first == (uint32_t)first && h.last == (uint32_t)last)
        *chunk_bytes = h.chunk_bytes;
    fclose(f);
}

/* A streamed save: a streaming session takes its chunks for its passes (dz_tee_stream_load),
 * a resident one decrypts them into its tensors (dz_tee_load_chunks). */
static int provision_streamed(struct dz_pnet *p, const char *path, const char *tz,
                              const struct dk_weights_header *h, struct dk_error *err)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    uint64_t seen = 0;
    struct dk_error why;
    /* Each chunk carries at most twice the segment's parameters, plus its header and tag;
     * a working buffer of DZ_STREAM_CHUNK_MIN bytes bounds their number. */
    const uint64_t floats = dz_range_param_floats(p->shapes, (size_t)p->first, (size_t)p->last);
    const uint64_t max = sizeof(struct dz_chunk_save_header) + 8 * floats +
                         (8 * floats / (DZ_STREAM_CHUNK_MIN / 2) + 1024) *
                             (sizeof(struct dz_chunk_header) + DZ_SEALED_TAG_BYTES);
    if (read_file(tz, (size_t)max, &buf, &size, &why) != 0)
        return dk_fail(err, "%s: layers %d..%d are sealed in %s: %s", path, p->first, p->last, tz,
                       why.msg);
    int rc = 0;
    if (dz_tee_streaming(p->tee) ? dz_tee_stream_load(p->tee, buf, size, &seen, &why)
                                 : dz_tee_load_chunks(p->tee, buf, size, &seen, &why))
        rc = dk_fail(err, "%s: %s", tz, why.msg);
    else if (dz_tee_streaming(p->tee) && dz_tee_stream_source(p->tee, tz) != 0)
        rc = dk_fail(err, "out of memory");
    else if (seen != h->seen)
        rc = dk_fail(err, "%s (seen %llu) and %s (seen %llu) are not from the same save", path,
                     (unsigned long long)h->seen, tz, (unsigned long long)seen);
    free(buf);
    return rc;
}

static int provision_sealed(struct dz_pnet *p, const char *path, const struct dk_weights_header *h,
                            struct dk_error *err)
{
    char tz[4200];
    uint8_t *blob = NULL;
    size_t size = 0;
    uint64_t seen = 0;
    uint32_t refused = 0;
    const uint64_t payload =
        4 * dz_range_param_floats(p->shapes, (size_t)p->first, (size_t)p->last);
    if (snprintf(tz, sizeof tz, "%s.tz", path) >= (int)sizeof tz)
        return dk_fail(err, "%s: path too long", path);
    if (check_magic(path, tz, err) != 0)
        return -1;
    if (streamed_save(tz))
        return provision_streamed(p, path, tz, h, err);
    const size_t max = (size_t)payload + sizeof(struct dz_sealed_header) + DZ_SEALED_TAG_BYTES;
    struct dk_error why;
    if (read_file(tz, max, &blob, &size, &why) != 0)
        return dk_fail(err, "%s: layers %d..%d are sealed in %s: %s", path, p->first, p->last, tz,
                       why.msg);
    int rc = check_blob_header(p, tz, blob, size, err);
    /* The chunks of a sealed import live under a key of this TA session only; a training run
     * has the TA re-key them to the device's chunk key below so that it can save and resume.
     * Chunk-key chunks carry no policy, so an owner's model (its policy, version and
     * training bounds) is not re-keyed: refused before it trains, not at its first save. */
    const bool rekey = rc == 0 && p->training && dz_tee_streaming(p->tee);
    if (rekey && !blob_own(blob))
        rc = dk_fail(err,
                     "%s: layers %d..%d are an owner's sealed model (version %u) and stream in "
                     "this TA: prediction and valid can use it; training it streamed would "
                     "save chunks that carry none of the owner's policy, so it trains "
                     "resident only (more TA_DATA_SIZE, or fewer layers)",
                     tz, p->first, p->last, (unsigned)blob_version(blob));
    /* A streaming session has the TA cut the blob into chunks inside the TEE. */
    if (rc == 0 && (dz_tee_streaming(p->tee)
                        ? dz_tee_stream_import_sealed(p->tee, blob, size, &seen, &refused, err)
                        : dz_tee_load_sealed(p->tee, blob, size, &seen, &refused, err)) != 0) {
        rc = -1;
        /* The header checks above passed: the policy fits this run and the blob names this
         * model and device, so ACCESS_DENIED can only be the rollback rule. */
        if (refused == TEEC_ERROR_ACCESS_DENIED)
            dk_fail(err,
                    "%s: refused by the TA: model version %u is older than a version of this "
                    "model this device has already loaded (rollback protection)",
                    tz, (unsigned)blob_version(blob));
        else if (refused)
            dk_fail(err, "%s: refused by the TA: altered, or not sealed on this device", tz);
    }
    if (rc == 0 && rekey && dz_tee_stream_rekey(p->tee, err) != 0)
        rc = -1;
    if (rc == 0 && seen != h->seen)
        rc = dk_fail(err, "%s (seen %llu) and %s (seen %llu) are not from the same save", path,
                     (unsigned long long)h->seen, tz, (unsigned long long)seen);
    free(blob);
    return rc;
}

/* A file without the marker next to a sealed blob was altered or mixed up: provisioning it
 * would put its (zero) protected layers into the TA. */
static bool plain_beside_blob(const char *path, struct dk_error *err)
{
    char tz[4200];
    struct stat st;
    if (snprintf(tz, sizeof tz, "%s.tz", path) >= (int)sizeof tz || stat(tz, &st) != 0)
        return false;
    dk_fail(err,
            "%s is not marked as sealed, but %s exists beside it: refusing to provision the TEE "
            "layers from it (move %s away to load %s as a plain darknet file)",
            path, tz, tz, path);
    return true;
}

/* A sealed pair is written whole by dz_sealed_pair_write: anything else was altered. */
static int check_whole(const struct dz_pnet *p, const char *path, const struct dk_weights_header *h,
                       struct dk_error *err)
{
    const uint64_t want = 4 * dz_range_param_floats(p->shapes, 0, p->shapes->n - 1);
    const uint64_t have = h->file_size - h->bytes;
    if (have != want)
        return dk_fail(err,
                       "%s: holds %llu bytes of weights, the network's %zu layers need %llu "
                       "(a sealed pair holds the whole network; wrong cfg?)",
                       path, (unsigned long long)have, p->shapes->n, (unsigned long long)want);
    return 0;
}

/*
 * Loads the layers of net (layers start.. of the model) that the file holds (layers
 * 0..p->weights_held-1); the others are drawn from the seed again, as in a new network.
 */
static int load_part(const struct dz_pnet *p, struct dnn_network *net, const char *path,
                     const struct dk_weights_header *h, size_t start, struct dk_error *err)
{
    const size_t k = held_of(p->weights_held, start, net->n);
    if (dk_weights_load_first(net, path, h, offset_of(p, start), k, err) != 0)
        return -1;
    dnn_network_init_params(net, k);
    return 0;
}

int dz_pnet_load_weights(struct dz_pnet *p, const char *path, bool clear, struct dk_error *err)
{
    struct dk_weights_header h;
    int sf = 0, sl = 0;
    if (dk_weights_read_header(path, &h, err) != 0)
        return -1;
    const bool sealed = dz_sealed_range(h.revision, &sf, &sl);
    if (sealed && (!p->tee || sf != p->first || sl != p->last))
        return dk_fail(err,
                       "%s: layers %d..%d are sealed in %s.tz; run with -pp_start %d -pp_end %d",
                       path, sf, sl, path, sf, sl);
    if (!sealed && dk_weights_check_prefix(p->shapes, path, &h, &p->weights_held, err) != 0)
        return -1;
    if (!p->tee) {
        if (load_part(p, p->front, path, &h, 0, err) != 0)
            return -1;
        p->seen = clear ? 0 : h.seen;
        p->front->seen = p->seen;
        return 0;
    }
    if (!sealed && plain_beside_blob(path, err))
        return -1;
    if (sealed && clear)
        return dk_fail(err,
                       "%s: -clear cannot restart the image count kept in the sealed %s.tz "
                       "(the TA protocol has no command for it)",
                       path, path);
    if (sealed && range_skips(p, 0, p->shapes->n - 1))
        return dk_fail(err,
                       "%s: a sealed pair holds every layer's weights; dontload and "
                       "dontloadscales, which read a darknet file without some, do not apply "
                       "to it (remove them from the cfg)",
                       path);
    if (sealed && check_whole(p, path, &h, err) != 0)
        return -1;
    if (p->front && load_part(p, p->front, path, &h, 0, err) != 0)
        return -1;
    if (p->back && load_part(p, p->back, path, &h, (size_t)p->last + 1, err) != 0)
        return -1;
    if (sealed ? provision_sealed(p, path, &h, err) : provision_plain(p, path, &h, clear, err))
        return -1;
    p->seen = clear ? 0 : h.seen;
    return 0;
}

int dz_pnet_seed_weights(struct dz_pnet *p, struct dk_error *err)
{
    if (!p->tee || !dz_tee_streaming(p->tee))
        return 0; /* the normal world's layers and a resident TA draw their own */
    return provision_with_skips(p, NULL, NULL, false, err);
}

void dz_print_partial_note(FILE *f, const struct dz_pnet *p, const char *path)
{
    const size_t n = p->shapes->n, held = p->weights_held;
    if (held >= n)
        return;
    /* Parameter-free layers need no weights: name the range of those that do. */
    size_t from = held;
    while (from < n && dz_layer_param_floats(&p->shapes->layers[from]) == 0)
        from++;
    if (held == 0)
        fprintf(f, "%s holds no layer's weights", path);
    else
        fprintf(f, "%s holds the weights of layers 0..%zu", path, held - 1);
    if (from == n) {
        fprintf(f, "; the layers after it have no parameters\n");
        return;
    }
    fprintf(f, "; layers %zu..%zu start from the seed as in a new network", from, n - 1);
    if (p->tee && from <= (size_t)p->last)
        fprintf(f, " (%d..%d inside the TEE)", from > (size_t)p->first ? (int)from : p->first,
                p->last);
    fprintf(f, "\n");
}

/* ------------------------------------------------------------------- save */

int dz_sealed_pair_write(const char *path, int first, int last, uint64_t seen,
                         const struct dnn_network *front, uint64_t segment_floats,
                         const struct dnn_network *back, const uint8_t *blob, size_t size,
                         struct dk_error *err)
{
    char tz[4200];
    char *tmp = NULL;
    int rc = 0;
    if (last > MARK_MAX_LAYER)
        return dk_fail(err, "%s: sealed weights mark layers up to %d only", path, MARK_MAX_LAYER);
    if (snprintf(tz, sizeof tz, "%s.tz", path) >= (int)sizeof tz)
        return dk_fail(err, "%s: path too long", path);
    if (dz_write_temp(tz, blob, size, &tmp, err) != 0)
        return -1;
    /* Order: the new .tz waits beside the old one until PATH is in place, so a failure
     * before that leaves the old pair; the only window is the rename of the .tz. */
    struct dk_weights_part parts[3];
    size_t n = 0;
    if (front)
        parts[n++] = (struct dk_weights_part){.net = front};
    parts[n++] = (struct dk_weights_part){.zero_floats = segment_floats};
    if (back)
        parts[n++] = (struct dk_weights_part){.net = back};
    if (dk_weights_save_parts(path, dz_sealed_revision(first, last), seen, parts, n, err) != 0) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, tz) != 0) {
        rc = dk_fail(err,
                     "%s was written but %s could not be replaced: %s; the pair does not "
                     "match until the next save",
                     path, tz, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    dz_sync_dir_of(tz);
    return rc;
}

/*
 * A plain save beside an older PATH.tz (a run with a TEE saved under this name before): the
 * next run with a TEE refuses the pair (plain_beside_blob), which is right, but the run that
 * made it should say so now. The .tz is the user's (it may be their only copy of the sealed
 * layers), so it is named, not removed.
 */
static void warn_stale_blob(const char *path)
{
    char tz[4200];
    struct stat st;
    if (snprintf(tz, sizeof tz, "%s.tz", path) >= (int)sizeof tz || stat(tz, &st) != 0)
        return;
    fprintf(stderr,
            "darknetp: warning: %s is a plain save, but an older %s lies beside it (from a run "
            "with a TEE); runs with -pp_start/-pp_end will refuse %s while it is there: move "
            "%s away (this run did not touch it)\n",
            path, tz, path, tz);
}

int dz_pnet_save_weights(struct dz_pnet *p, const char *path, struct dk_error *err)
{
    uint8_t *blob = NULL;
    size_t size = 0;
    if (!p->tee) {
        if (dk_weights_save(p->front, path, err) != 0)
            return -1;
        warn_stale_blob(path);
        return 0;
    }
    /* A streaming session saves its chunks (the TA never holds the segment whole). */
    if (dz_tee_streaming(p->tee) ? dz_tee_stream_save(p->tee, p->seen, &blob, &size, err)
                                 : dz_tee_save_sealed(p->tee, p->seal_policy, &blob, &size, err))
        return -1;
    int rc =
        dz_sealed_pair_write(path, p->first, p->last, p->seen, p->front,
                             dz_range_param_floats(p->shapes, (size_t)p->first, (size_t)p->last),
                             p->back, blob, size, err);
    free(blob);
    return rc;
}
