/*
 * provision.c - the device's provisioning key and the unwrap of a model owner's content key
 * (DZ_CMD_GET_PUBKEY, DZ_KEY_OWNER blobs; formats in darknetz_ta.h).
 *
 * The key pair is X25519 (RFC 7748), created by the TA on first use with TEE_GenerateKey and
 * kept as a persistent object in TEE_STORAGE_PRIVATE under DZ_DEVICE_KEY_ID: only this TA
 * on this device can open it, and its private value never leaves the TEE. An owner seals a
 * model for the device with the public value (`darknetp seal`): an ephemeral X25519 key
 * agreement, HKDF-SHA256 to a key-encryption key, AES-256-GCM around a 32-byte content key.
 * HKDF is computed here from HMAC-SHA256 (RFC 5869), which every GP TEE has, rather than
 * with OP-TEE's optional HKDF extension.
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

static const char device_key_id[] = DZ_DEVICE_KEY_ID;
static const char provision_info[] = DZ_PROVISION_LABEL;

/* Opens the device key, creating it on first use. Another session may create it at the same
 * moment: then creation reports a conflict and the key is opened as that session made it. */
static TEE_Result open_device_key(TEE_ObjectHandle *key)
{
    const uint32_t flags = TEE_DATA_FLAG_ACCESS_READ;
    TEE_ObjectHandle fresh = TEE_HANDLE_NULL;
    TEE_Result res = TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, device_key_id,
                                              sizeof(device_key_id) - 1, flags, key);

    if (res != TEE_ERROR_ITEM_NOT_FOUND)
        goto out;
    res = TEE_AllocateTransientObject(TEE_TYPE_X25519_KEYPAIR, 256, &fresh);
    if (res == TEE_SUCCESS)
        res = TEE_GenerateKey(fresh, 256, NULL, 0);
    if (res == TEE_SUCCESS)
        res = TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, device_key_id,
                                         sizeof(device_key_id) - 1, flags, fresh, NULL, 0, key);
    TEE_FreeTransientObject(fresh); /* wipes the private value held in memory */
    if (res == TEE_SUCCESS)
        IMSG("device provisioning key created");
    if (res == TEE_ERROR_ACCESS_CONFLICT)
        res = TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, device_key_id,
                                       sizeof(device_key_id) - 1, flags, key);
out:
    if (res != TEE_SUCCESS) {
        EMSG("device provisioning key: %#x", (unsigned)res);
        *key = TEE_HANDLE_NULL;
    }
    return res;
}

static TEE_Result public_value(TEE_ObjectHandle key, uint8_t pub[DZ_X25519_BYTES])
{
    size_t len = DZ_X25519_BYTES;
    TEE_Result res = TEE_GetObjectBufferAttribute(key, TEE_ATTR_X25519_PUBLIC_VALUE, pub, &len);

    if (res == TEE_SUCCESS && len != DZ_X25519_BYTES)
        res = TEE_ERROR_GENERIC;
    return res;
}

TEE_Result dz_cmd_get_pubkey(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    TEE_ObjectHandle key = TEE_HANDLE_NULL;
    uint8_t pub[DZ_X25519_BYTES];

    if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_OUTPUT, TEE_PARAM_TYPE_NONE,
                                 TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    if (p[0].memref.size < DZ_X25519_BYTES) {
        p[0].memref.size = DZ_X25519_BYTES;
        return TEE_ERROR_SHORT_BUFFER;
    }
    TEE_Result res = open_device_key(&key);
    if (res == TEE_SUCCESS)
        res = public_value(key, pub);
    TEE_CloseObject(key);
    if (res != TEE_SUCCESS)
        return res;
    TEE_MemMove(p[0].memref.buffer, pub, sizeof(pub));
    p[0].memref.size = sizeof(pub);
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------ unwrap */

static TEE_Result sha256(const void *data, size_t len, uint8_t out[DZ_DIGEST_BYTES])
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    size_t out_len = DZ_DIGEST_BYTES;
    TEE_Result res = TEE_AllocateOperation(&op, TEE_ALG_SHA256, TEE_MODE_DIGEST, 0);

    if (res == TEE_SUCCESS)
        res = TEE_DigestDoFinal(op, data, len, out, &out_len);
    TEE_FreeOperation(op);
    return res;
}

/* out = HMAC-SHA256(key, a || b), the building block of HKDF. */
static TEE_Result hmac_sha256(const uint8_t *key, size_t key_len, const void *a, size_t a_len,
                              const void *b, size_t b_len, uint8_t out[DZ_DIGEST_BYTES])
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_Attribute attr;
    size_t out_len = DZ_DIGEST_BYTES;
    TEE_Result res = TEE_AllocateTransientObject(TEE_TYPE_HMAC_SHA256, (uint32_t)key_len * 8, &k);

    if (res != TEE_SUCCESS)
        goto out;
    TEE_InitRefAttribute(&attr, TEE_ATTR_SECRET_VALUE, key, key_len);
    res = TEE_PopulateTransientObject(k, &attr, 1);
    if (res == TEE_SUCCESS)
        res = TEE_AllocateOperation(&op, TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, (uint32_t)key_len * 8);
    if (res == TEE_SUCCESS)
        res = TEE_SetOperationKey(op, k);
    if (res != TEE_SUCCESS)
        goto out;
    TEE_MACInit(op, NULL, 0);
    TEE_MACUpdate(op, a, a_len);
    res = TEE_MACComputeFinal(op, b, b_len, out, &out_len);
out:
    TEE_FreeOperation(op);
    TEE_FreeTransientObject(k);
    return res;
}

/* kek = HKDF-SHA256(ikm = shared, salt = ephemeral || device public, info, 32 bytes). */
static TEE_Result derive_kek(const uint8_t shared[DZ_X25519_BYTES],
                             const uint8_t eph[DZ_X25519_BYTES], const uint8_t dev[DZ_X25519_BYTES],
                             uint8_t kek[DZ_KEY_BYTES])
{
    uint8_t salt[2 * DZ_X25519_BYTES];
    uint8_t prk[DZ_DIGEST_BYTES];
    const uint8_t counter = 1; /* one block: L = 32 = HashLen */

    TEE_MemMove(salt, eph, DZ_X25519_BYTES);
    TEE_MemMove(salt + DZ_X25519_BYTES, dev, DZ_X25519_BYTES);
    TEE_Result res = hmac_sha256(salt, sizeof(salt), shared, DZ_X25519_BYTES, NULL, 0, prk);
    if (res == TEE_SUCCESS)
        res = hmac_sha256(prk, sizeof(prk), provision_info, sizeof(provision_info) - 1, &counter, 1,
                          kek);
    TEE_MemFill(prk, 0, sizeof(prk));
    return res;
}

/* shared = X25519(device private key, peer public value). */
static TEE_Result agree(TEE_ObjectHandle key, const uint8_t peer[DZ_X25519_BYTES],
                        uint8_t shared[DZ_X25519_BYTES])
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_ObjectHandle secret = TEE_HANDLE_NULL;
    TEE_Attribute attr;
    size_t len = DZ_X25519_BYTES;
    TEE_Result res = TEE_AllocateOperation(&op, TEE_ALG_X25519, TEE_MODE_DERIVE, 256);

    if (res == TEE_SUCCESS)
        res = TEE_SetOperationKey(op, key);
    if (res == TEE_SUCCESS)
        res = TEE_AllocateTransientObject(TEE_TYPE_GENERIC_SECRET, 256, &secret);
    if (res == TEE_SUCCESS) {
        TEE_InitRefAttribute(&attr, TEE_ATTR_X25519_PUBLIC_VALUE, peer, DZ_X25519_BYTES);
        TEE_DeriveKey(op, &attr, 1, secret);
        res = TEE_GetObjectBufferAttribute(secret, TEE_ATTR_SECRET_VALUE, shared, &len);
    }
    if (res == TEE_SUCCESS && len != DZ_X25519_BYTES)
        res = TEE_ERROR_GENERIC;
    TEE_FreeTransientObject(secret);
    TEE_FreeOperation(op);
    return res;
}

/* The content key from wrapped_key || wrap_tag under @kek, the model digest as AAD. */
static TEE_Result open_wrap(const uint8_t kek[DZ_KEY_BYTES], const struct dz_sealed_header *h,
                            uint8_t key[DZ_KEY_BYTES])
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t tag[sizeof(h->wrap_tag)];
    size_t len = DZ_KEY_BYTES;
    TEE_Result res = dz_gcm_operation(kek, TEE_MODE_DECRYPT, &op);

    TEE_MemMove(tag, h->wrap_tag, sizeof(tag)); /* the API takes a writable tag */
    if (res == TEE_SUCCESS)
        res = TEE_AEInit(op, h->wrap_nonce, sizeof(h->wrap_nonce), sizeof(h->wrap_tag) * 8,
                         sizeof(h->model_digest), sizeof(h->wrapped_key));
    if (res == TEE_SUCCESS) {
        TEE_AEUpdateAAD(op, h->model_digest, sizeof(h->model_digest));
        res = TEE_AEDecryptFinal(op, h->wrapped_key, sizeof(h->wrapped_key), key, &len, tag,
                                 sizeof(tag));
    }
    if (res == TEE_SUCCESS && len != DZ_KEY_BYTES)
        res = TEE_ERROR_GENERIC;
    TEE_FreeOperation(op);
    return res;
}

TEE_Result dz_owner_unwrap(const struct dz_sealed_header *h, uint8_t key[DZ_KEY_BYTES])
{
    TEE_ObjectHandle dev = TEE_HANDLE_NULL;
    uint8_t pub[DZ_X25519_BYTES], fingerprint[DZ_DIGEST_BYTES];
    uint8_t shared[DZ_X25519_BYTES], kek[DZ_KEY_BYTES];
    TEE_Result res = open_device_key(&dev);

    if (res == TEE_SUCCESS)
        res = public_value(dev, pub);
    if (res == TEE_SUCCESS)
        res = sha256(pub, sizeof(pub), fingerprint);
    if (res != TEE_SUCCESS)
        goto out;
    if (TEE_MemCompare(fingerprint, h->device_fingerprint, sizeof(fingerprint)) != 0) {
        EMSG("sealed blob refused: sealed for another device");
        res = TEE_ERROR_SECURITY;
        goto out;
    }
    res = agree(dev, h->ephemeral_public, shared);
    if (res == TEE_SUCCESS)
        res = derive_kek(shared, h->ephemeral_public, pub, kek);
    if (res == TEE_SUCCESS && open_wrap(kek, h, key) != TEE_SUCCESS) {
        EMSG("sealed blob refused: the owner's key wrap does not authenticate");
        res = TEE_ERROR_SECURITY;
    }
out:
    if (res != TEE_SUCCESS)
        TEE_MemFill(key, 0, DZ_KEY_BYTES);
    TEE_MemFill(shared, 0, sizeof(shared));
    TEE_MemFill(kek, 0, sizeof(kek));
    TEE_CloseObject(dev);
    return res;
}
