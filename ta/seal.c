/*
 * seal.c - the segment's parameters sealed for storage (DZ_CMD_SAVE_SEALED,
 * DZ_CMD_LOAD_SEALED) and the model digest they are bound to.
 *
 * Blob: struct dz_sealed_header || AES-256-GCM ciphertext of the payload || 16-byte tag.
 * The whole header (magic, version, model digest, partition, payload size, seen, owner
 * version, key kind, policy, the owner's key wrap, nonce) is the additional authenticated
 * data; the payload is every parameter tensor of the segment in .weights order (struct
 * dnn_param value arrays, float32). The nonce is 12 random bytes per seal.
 *
 * Keys (darknetz_ta.h): DZ_KEY_DEVICE blobs use 32 bytes from the system PTA's
 * PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY with the extra data DZ_SEAL_LABEL, derived on first use,
 * kept in session memory, wiped when the session closes; DZ_KEY_OWNER blobs carry a content
 * key wrapped for this device's provisioning key (provision.c).
 *
 * Neither call holds the payload in a scratch buffer: a save encrypts each parameter array
 * through a DZ_SEAL_CHUNK bounce buffer in TA memory (the ciphertext is copied out from there,
 * so GHASH never reads back shared memory the normal world could rewrite) and a load decrypts
 * into the parameters themselves. A load is all or nothing all the same: header, partition,
 * policy and rollback checks first; then a first pass authenticates the whole ciphertext
 * through the bounce buffer and discards the plaintext, and only when the tag has matched
 * does a second pass decrypt, reading shared memory again, into the parameters. The second
 * pass checks the tag once more: it fails only when the normal world rewrote the blob during
 * the call, and then every parameter is wiped, every state derived from them is reset and
 * the session holds no parameters (s->params_lost: FORWARD, BACKWARD, UPDATE and SAVE_SEALED
 * answer TEE_ERROR_BAD_STATE until a load succeeds), so nothing unverified is ever used.
 * On every other refusal the parameters, the policy and `seen` are unchanged. A refusal of
 * the blob's content, its length included, is TEE_ERROR_SECURITY; one of the policy or the
 * version is TEE_ERROR_ACCESS_DENIED.
 */
#include <pta_system.h>
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

static const char seal_label[] = DZ_SEAL_LABEL;

/* The bounce buffers' size: ciphertext crosses shared memory in pieces of this size, each
 * byte once per pass. On the stack (TA_STACK_SIZE is 64 KiB by default), not in the heap. */
#define DZ_SEAL_CHUNK 4096u

/* ------------------------------------------------------------- model digest */

TEE_Result dz_model_digest_begin(TEE_OperationHandle *op, const void *wire_specs, size_t bytes)
{
    TEE_Result res = TEE_AllocateOperation(op, TEE_ALG_SHA256, TEE_MODE_DIGEST, 0);

    if (res != TEE_SUCCESS) {
        EMSG("SHA-256 operation: %#x", (unsigned)res);
        *op = TEE_HANDLE_NULL;
        return res;
    }
    TEE_DigestUpdate(*op, wire_specs, bytes);
    return TEE_SUCCESS;
}

TEE_Result dz_model_digest_finish(TEE_OperationHandle *op, const struct dz_model_header *hdr,
                                  const struct dnn_network *net, uint8_t digest[DZ_DIGEST_BYTES])
{
    const size_t bytes = dz_wire_shape_size(net->n); /* net->n <= DZ_MAX_SPECS */
    uint8_t *shapes = TEE_Malloc(bytes, TEE_MALLOC_FILL_ZERO);
    size_t len = DZ_DIGEST_BYTES;
    TEE_Result res = TEE_ERROR_OUT_OF_MEMORY;

    if (shapes) {
        dz_wire_shape_bytes(hdr->first, hdr->last, hdr->n_layers, net->layers, net->n, shapes);
        res = TEE_DigestDoFinal(*op, shapes, bytes, digest, &len);
        TEE_Free(shapes);
    }
    dz_model_digest_abort(op);
    if (res == TEE_SUCCESS && len != DZ_DIGEST_BYTES)
        res = TEE_ERROR_GENERIC;
    return res;
}

void dz_model_digest_abort(TEE_OperationHandle *op)
{
    TEE_FreeOperation(*op);
    *op = TEE_HANDLE_NULL;
}

/* ---------------------------------------------------------------- the key */

/*
 * PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY with @label as its extra data: a key of this TA on this
 * device, another one per label, into @out (wiped when the derivation fails).
 */
static TEE_Result derive_unique_key(const char *label, size_t len, uint8_t out[DZ_KEY_BYTES])
{
    const TEE_UUID pta = PTA_SYSTEM_UUID;
    TEE_TASessionHandle sess = TEE_HANDLE_NULL;
    TEE_Param params[TEE_NUM_PARAMS];
    uint32_t origin = 0;
    TEE_Result res = TEE_ERROR_GENERIC;

    TEE_MemFill(params, 0, sizeof(params));
    res = TEE_OpenTASession(&pta, TEE_TIMEOUT_INFINITE, TEE_PARAM_TYPES(0, 0, 0, 0), params, &sess,
                            &origin);
    if (res != TEE_SUCCESS) {
        EMSG("system PTA: open session %#x, origin %u", (unsigned)res, (unsigned)origin);
        return res;
    }
    params[0].memref.buffer = (void *)label;
    params[0].memref.size = len;
    params[1].memref.buffer = out;
    params[1].memref.size = DZ_KEY_BYTES;
    res = TEE_InvokeTACommand(sess, TEE_TIMEOUT_INFINITE, PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY,
                              TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT,
                                              TEE_PARAM_TYPE_MEMREF_OUTPUT, TEE_PARAM_TYPE_NONE,
                                              TEE_PARAM_TYPE_NONE),
                              params, &origin);
    TEE_CloseTASession(sess);
    if (res == TEE_SUCCESS && params[1].memref.size != DZ_KEY_BYTES)
        res = TEE_ERROR_GENERIC;
    if (res != TEE_SUCCESS) {
        EMSG("system PTA: derive key %#x, origin %u", (unsigned)res, (unsigned)origin);
        TEE_MemFill(out, 0, DZ_KEY_BYTES);
    }
    return res;
}

TEE_Result dz_derive_key(struct dz_session *s)
{
    if (s->key_valid)
        return TEE_SUCCESS;
    TEE_Result res = derive_unique_key(seal_label, sizeof(seal_label) - 1, s->key);
    s->key_valid = res == TEE_SUCCESS;
    return res;
}

TEE_Result dz_derive_chunk_key(struct dz_session *s)
{
    static const char chunk_label[] = DZ_CHUNK_LABEL;
    if (s->chunk_key_valid)
        return TEE_SUCCESS;
    TEE_Result res = derive_unique_key(chunk_label, sizeof(chunk_label) - 1, s->chunk_key);
    s->chunk_key_valid = res == TEE_SUCCESS;
    return res;
}

TEE_Result dz_gcm_operation(const uint8_t *key_bytes, uint32_t mode, TEE_OperationHandle *op)
{
    TEE_ObjectHandle key = TEE_HANDLE_NULL;
    TEE_Attribute attr;
    TEE_Result res = TEE_AllocateTransientObject(TEE_TYPE_AES, DZ_KEY_BYTES * 8, &key);

    *op = TEE_HANDLE_NULL;
    if (res != TEE_SUCCESS)
        goto out;
    TEE_InitRefAttribute(&attr, TEE_ATTR_SECRET_VALUE, key_bytes, DZ_KEY_BYTES);
    res = TEE_PopulateTransientObject(key, &attr, 1);
    if (res != TEE_SUCCESS)
        goto out;
    res = TEE_AllocateOperation(op, TEE_ALG_AES_GCM, mode, DZ_KEY_BYTES * 8);
    if (res != TEE_SUCCESS) {
        *op = TEE_HANDLE_NULL;
        goto out;
    }
    res = TEE_SetOperationKey(*op, key);
out:
    TEE_FreeTransientObject(key); /* the operation keeps its own copy */
    if (res != TEE_SUCCESS) {
        EMSG("AES-GCM operation: %#x", (unsigned)res);
        TEE_FreeOperation(*op);
        *op = TEE_HANDLE_NULL;
    }
    return res;
}

/* The header this session would write with @policy, nonce left zero. */
static void expected_header(const struct dz_session *s, const struct dz_policy *policy,
                            struct dz_sealed_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = DZ_SEALED_MAGIC;
    h->version = DZ_TA_PROTOCOL_VERSION;
    memcpy(h->model_digest, s->model_digest, sizeof(h->model_digest));
    h->first = s->hdr.first;
    h->last = s->hdr.last;
    h->n_layers = s->hdr.n_layers;
    h->payload_bytes = (uint32_t)s->payload_bytes; /* OPEN_MODEL checked it fits */
    h->seen_lo = (uint32_t)s->net->seen;
    h->seen_hi = (uint32_t)(s->net->seen >> 32);
    h->model_version = s->model_version; /* a checkpoint keeps the version it came with */
    h->key_kind = DZ_KEY_DEVICE;
    h->policy = *policy;
}

/* The policy a save seals: the session's, or a narrower one the normal world asks for. */
static TEE_Result save_policy(const struct dz_session *s, uint32_t types,
                              TEE_Param p[TEE_NUM_PARAMS], struct dz_policy *out)
{
    char why[DZ_WIRE_MSG_MAX];

    if (TEE_PARAM_TYPE_GET(types, 1) == TEE_PARAM_TYPE_NONE) {
        *out = s->policy;
        return TEE_SUCCESS;
    }
    if (p[1].memref.size != sizeof(*out))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_MemMove(out, p[1].memref.buffer, sizeof(*out));
    if (dz_policy_check(out, why)) {
        EMSG("seal refused: %s", why);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    if (dz_policy_within(out, &s->policy, why)) {
        EMSG("seal refused: a policy wider than the model's own: %s", why);
        return TEE_ERROR_ACCESS_DENIED;
    }
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------- save */

/*
 * A walk over the segment's parameter arrays in .weights order, the payload's order: the
 * one place that maps a payload offset to a parameter float.
 */
struct param_cursor {
    const struct dnn_network *net;
    size_t layer, k, off; /* off: bytes into layers[layer].params[k] */
};

/* Skips to the next array with bytes left; false at the end of the payload. */
static bool cursor_ready(struct param_cursor *c)
{
    while (c->layer < c->net->n) {
        const struct dnn_layer *l = &c->net->layers[c->layer];
        if (c->k < l->n_params && c->off < l->params[c->k].count * sizeof(float))
            return true;
        c->off = 0;
        if (c->k < l->n_params) {
            c->k++;
        } else {
            c->layer++;
            c->k = 0;
        }
    }
    return false;
}

/* At most @max bytes of the current array from the cursor on; 0 at the end. */
static size_t cursor_span(struct param_cursor *c, size_t max, uint8_t **at)
{
    if (!cursor_ready(c))
        return 0;
    const struct dnn_param *pa = &c->net->layers[c->layer].params[c->k];
    const size_t left = pa->count * sizeof(float) - c->off;
    *at = (uint8_t *)pa->value + c->off;
    return left < max ? left : max;
}

/* @n plaintext bytes into the parameters from the cursor on (n <= what is left). */
static void cursor_write(struct param_cursor *c, const uint8_t *src, size_t n)
{
    while (n) {
        uint8_t *at = NULL;
        const size_t m = cursor_span(c, n, &at);
        if (!m)
            return;
        TEE_MemMove(at, src, m);
        c->off += m;
        src += m;
        n -= m;
    }
}

TEE_Result dz_cmd_save_sealed(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    const uint32_t t1 = TEE_PARAM_TYPE_GET(types, 1);
    const uint32_t want = TEE_PARAM_TYPES(
        TEE_PARAM_TYPE_MEMREF_OUTPUT, t1 == TEE_PARAM_TYPE_MEMREF_INPUT ? t1 : TEE_PARAM_TYPE_NONE,
        TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE);
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_Result res = TEE_ERROR_GENERIC;
    uint8_t bounce[DZ_SEAL_CHUNK + DZ_SEALED_TAG_BYTES];
    struct dz_sealed_header h;
    struct dz_policy policy;

    if (types != want)
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "SAVE_SEALED") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    res = save_policy(s, types, p, &policy);
    if (res != TEE_SUCCESS)
        return res;
    if (p[0].memref.size < s->sealed_bytes) {
        p[0].memref.size = s->sealed_bytes;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (s->params_lost) {
        EMSG("seal refused: the session holds no parameters since a load failed; load again");
        return TEE_ERROR_BAD_STATE;
    }
    res = dz_derive_key(s);
    if (res != TEE_SUCCESS)
        return res;

    expected_header(s, &policy, &h);
    TEE_GenerateRandom(h.nonce, sizeof(h.nonce));
    res = dz_gcm_operation(s->key, TEE_MODE_ENCRYPT, &op);
    if (res != TEE_SUCCESS)
        goto out;
    res = TEE_AEInit(op, h.nonce, sizeof(h.nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(h),
                     s->payload_bytes);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(op, &h, sizeof(h));

    /* From the parameters through the bounce buffer to the memref, DZ_SEAL_CHUNK bytes at a
     * time: the ciphertext is computed in TA memory and only copied out. */
    uint8_t *const ct = (uint8_t *)p[0].memref.buffer + sizeof(h);
    struct param_cursor cur = {.net = s->net};
    size_t done = 0, len = 0;
    uint8_t *at = NULL;
    for (size_t n; (n = cursor_span(&cur, DZ_SEAL_CHUNK, &at)) != 0; cur.off += n) {
        len = sizeof(bounce);
        res = TEE_AEUpdate(op, at, n, bounce, &len);
        if (res != TEE_SUCCESS)
            goto out;
        if (len > s->payload_bytes - done) {
            res = TEE_ERROR_GENERIC;
            goto out;
        }
        TEE_MemMove(ct + done, bounce, len);
        done += len;
    }
    size_t tag_len = DZ_SEALED_TAG_BYTES;
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    len = sizeof(bounce);
    res = TEE_AEEncryptFinal(op, NULL, 0, bounce, &len, tag, &tag_len);
    if (res != TEE_SUCCESS)
        goto out;
    if (done + len != s->payload_bytes || tag_len != DZ_SEALED_TAG_BYTES) {
        res = TEE_ERROR_GENERIC;
        goto out;
    }
    TEE_MemMove(ct + done, bounce, len);
    TEE_MemMove(ct + s->payload_bytes, tag, sizeof(tag));
    TEE_MemMove(p[0].memref.buffer, &h, sizeof(h));
    p[0].memref.size = s->sealed_bytes;
    res = TEE_SUCCESS;
out:
    if (res != TEE_SUCCESS)
        EMSG("seal: %#x", (unsigned)res);
    TEE_MemFill(bounce, 0, sizeof(bounce));
    TEE_FreeOperation(op);
    return res;
}

/* ------------------------------------------------------------------- load */

static bool all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* Why a header is refused (TEE_ERROR_SECURITY), or NULL when it is this session's. */
static const char *header_mismatch(const struct dz_session *s, const struct dz_sealed_header *h)
{
    struct dz_sealed_header want;

    expected_header(s, &s->policy, &want);
    if (h->magic == DZ_SEALED_MAGIC_V1)
        return "a protocol 1 blob (DZS1): this TA reads protocol 2 only";
    if (h->magic != want.magic || h->version != want.version)
        return "not a sealed blob of this version";
    if (h->first != want.first || h->last != want.last || h->n_layers != want.n_layers)
        return "sealed for another partition";
    if (h->payload_bytes != want.payload_bytes)
        return "sealed for other layer shapes";
    if (h->reserved != 0)
        return "reserved field set";
    if (h->key_kind != DZ_KEY_DEVICE && h->key_kind != DZ_KEY_OWNER)
        return "unknown key kind";
    /* A device's own blob carries no key wrap; anything there is an alteration. */
    const uint8_t *wrap = h->device_fingerprint;
    const size_t wrap_bytes = (size_t)(h->nonce - h->device_fingerprint);
    if (h->key_kind == DZ_KEY_DEVICE && !all_zero(wrap, wrap_bytes))
        return "key wrap fields set on a device blob";
    if (h->key_kind == DZ_KEY_OWNER && h->model_version < 1)
        return "an owner's blob without a model version";
    /* Not secret, but compared in constant time anyway. */
    if (TEE_MemCompare(h->model_digest, want.model_digest, sizeof(want.model_digest)) != 0)
        return "sealed for another model";
    return NULL;
}

/* The sealed policy must be well formed and allow what this session was opened for. */
static TEE_Result check_policy(const struct dz_session *s, const struct dz_sealed_header *h)
{
    char why[DZ_WIRE_MSG_MAX];
    struct dz_policy want;

    if (dz_policy_check(&h->policy, why)) {
        EMSG("sealed blob refused: %s", why);
        return TEE_ERROR_SECURITY;
    }
    dz_policy_of_request(&s->hdr, &want);
    if (dz_policy_within(&want, &h->policy, why)) {
        EMSG("sealed blob refused: %s", why);
        return TEE_ERROR_ACCESS_DENIED;
    }
    return TEE_SUCCESS;
}

/* The payload key of @h: this device's sealing key, or the owner's content key unwrapped. */
static TEE_Result payload_key(struct dz_session *s, const struct dz_sealed_header *h,
                              uint8_t key[DZ_KEY_BYTES])
{
    if (h->key_kind == DZ_KEY_OWNER)
        return dz_owner_unwrap(h, key);
    TEE_Result res = dz_derive_key(s);
    if (res == TEE_SUCCESS)
        TEE_MemMove(key, s->key, DZ_KEY_BYTES);
    return res;
}

TEE_Result dz_sealed_admit(struct dz_session *s, const struct dz_sealed_header *h,
                           uint8_t key[DZ_KEY_BYTES])
{
    const char *why = header_mismatch(s, h);
    TEE_Result res = TEE_ERROR_GENERIC;

    if (why) {
        EMSG("sealed blob refused: %s", why);
        return TEE_ERROR_SECURITY;
    }
    res = check_policy(s, h);
    if (res == TEE_SUCCESS)
        res = dz_rollback_check(h->model_digest, h->model_version);
    if (res == TEE_SUCCESS)
        res = payload_key(s, h, key);
    if (res != TEE_SUCCESS)
        TEE_MemFill(key, 0, DZ_KEY_BYTES);
    return res;
}

/*
 * One pass of AES-GCM over the blob's payload at @src (ciphertext then tag), each byte of
 * shared memory copied once into TA memory before use. @into NULL: the plaintext is
 * discarded (the authentication pass); otherwise it goes into the parameters from the cursor
 * on. TEE_ERROR_SECURITY when the tag does not match.
 */
static TEE_Result gcm_pass(const uint8_t key[DZ_KEY_BYTES], const struct dz_sealed_header *h,
                           const uint8_t *src, size_t payload, struct param_cursor *into)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t chunk[DZ_SEAL_CHUNK];
    uint8_t plain[DZ_SEAL_CHUNK + DZ_SEALED_TAG_BYTES];
    uint8_t tag[DZ_SEALED_TAG_BYTES];
    size_t done = 0, len = 0;
    TEE_Result res = dz_gcm_operation(key, TEE_MODE_DECRYPT, &op);

    if (res != TEE_SUCCESS)
        goto out;
    res = TEE_AEInit(op, h->nonce, sizeof(h->nonce), DZ_SEALED_TAG_BYTES * 8, sizeof(*h), payload);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_AEUpdateAAD(op, h, sizeof(*h));
    for (size_t off = 0; off < payload; off += DZ_SEAL_CHUNK) {
        const size_t n = payload - off < DZ_SEAL_CHUNK ? payload - off : DZ_SEAL_CHUNK;
        TEE_MemMove(chunk, src + off, n);
        len = sizeof(plain);
        res = TEE_AEUpdate(op, chunk, n, plain, &len);
        if (res != TEE_SUCCESS)
            goto out;
        if (len > payload - done) {
            res = TEE_ERROR_GENERIC;
            goto out;
        }
        if (into)
            cursor_write(into, plain, len);
        done += len;
    }
    TEE_MemMove(tag, src + payload, sizeof(tag));
    len = sizeof(plain);
    res = TEE_AEDecryptFinal(op, NULL, 0, plain, &len, tag, sizeof(tag));
    if (res == TEE_SUCCESS && done + len == payload && into)
        cursor_write(into, plain, len);
    if (res != TEE_SUCCESS || done + len != payload) {
        EMSG("sealed blob refused: authentication failed");
        res = TEE_ERROR_SECURITY;
    }
out:
    TEE_MemFill(chunk, 0, sizeof(chunk));
    TEE_MemFill(plain, 0, sizeof(plain));
    TEE_FreeOperation(op);
    return res;
}

void dz_lose_params(struct dz_session *s)
{
    for (size_t i = 0; i < s->net->n; i++) {
        const struct dnn_layer *l = &s->net->layers[i];
        for (size_t k = 0; k < l->n_params; k++)
            if (l->params[k].count)
                TEE_MemFill(l->params[k].value, 0, l->params[k].count * sizeof(float));
    }
    s->net->seen = 0;
    dz_reset_training(s);
    s->params_lost = true;
}

TEE_Result dz_cmd_load_sealed(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    const uint32_t want = TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT,
                                          TEE_PARAM_TYPE_VALUE_OUTPUT, TEE_PARAM_TYPE_NONE);
    TEE_Result res = TEE_ERROR_GENERIC;
    uint8_t key[DZ_KEY_BYTES];
    struct dz_sealed_header h;

    if (types != want)
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "LOAD_SEALED") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    const uint8_t *src = p[0].memref.buffer;
    const size_t size = p[0].memref.size;
    const size_t payload = s->payload_bytes;
    if (size != s->sealed_bytes) {
        EMSG("sealed blob of %zu bytes refused: layers %u..%u seal to %zu", size,
             (unsigned)s->hdr.first, (unsigned)s->hdr.last, s->sealed_bytes);
        return TEE_ERROR_SECURITY;
    }
    TEE_MemMove(&h, src, sizeof(h));
    res = dz_sealed_admit(s, &h, key);
    /* Pass 1 authenticates without keeping any plaintext: a refusal changes nothing. */
    if (res == TEE_SUCCESS)
        res = gcm_pass(key, &h, src + sizeof(h), payload, NULL);
    /* Authentic: record the version first (a failure leaves the parameters as they were),
     * then, and only then, the parameters change. */
    if (res == TEE_SUCCESS)
        res = dz_rollback_record(h.model_digest, h.model_version);
    if (res != TEE_SUCCESS)
        goto out;
    /* Pass 2 decrypts into the parameters; the header is the copy pass 1 authenticated. */
    struct param_cursor cur = {.net = s->net};
    res = gcm_pass(key, &h, src + sizeof(h), payload, &cur);
    if (res != TEE_SUCCESS) {
        EMSG("sealed blob rewritten during the load: the parameters are wiped");
        dz_lose_params(s);
        goto out;
    }
    s->params_lost = false;
    s->net->seen = ((uint64_t)h.seen_hi << 32) | h.seen_lo;
    dz_reset_training(s);
    s->policy = h.policy;
    s->policy_sealed = true;
    s->model_version = h.model_version;
    p[1].value.a = h.seen_lo;
    p[1].value.b = h.seen_hi;
    p[2].value.a = h.model_version;
    p[2].value.b = h.policy.modes;
out:
    TEE_MemFill(key, 0, sizeof(key));
    return res;
}
