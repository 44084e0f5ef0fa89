/*
 * crypto_derive.c - TEE_DeriveKey for the simulated libutee: X25519 (RFC 7748)
 * and OP-TEE's HKDF-SHA256 extension (RFC 5869). GP makes every failure of
 * TEE_DeriveKey a panic: it returns nothing.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "tsim_crypto.h"

#define SHA256_LEN 32
#define X25519_LEN 32
/* The ids OP-TEE's HKDF extension gave salt and info before GP 1.3.1 took the
 * names TEE_ATTR_HKDF_SALT/INFO for other values; both are accepted. */
#define HKDF_SALT_OPTEE 0xD00002C0u
#define HKDF_INFO_OPTEE 0xD00003C0u

/* ------------------------------------------------------------------------ */
/* Key derivation                                                             */

/* X25519: the shared secret with the peer public value params must give. */
static void derive_x25519(TEE_OperationHandle op, const TEE_Attribute *params, uint32_t count,
                          struct tsim_key *out)
{
    const TEE_Attribute *peer_attr = NULL;
    const struct tsim_attr *priv = tsim_op_secret(op, TEE_ATTR_X25519_PRIVATE_VALUE);
    EVP_PKEY *me = NULL;
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t secret[X25519_LEN];
    size_t len = sizeof(secret);
    bool ok = false;

    for (uint32_t n = 0; n < count; n++) {
        if (params[n].attributeID != TEE_ATTR_X25519_PUBLIC_VALUE || peer_attr)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        peer_attr = &params[n];
    }
    if (!peer_attr || peer_attr->content.ref.length != X25519_LEN ||
        !peer_attr->content.ref.buffer || out->max_size < 256)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);

    me = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv->buf, priv->len);
    peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_attr->content.ref.buffer,
                                       X25519_LEN);
    ctx = me ? EVP_PKEY_CTX_new(me, NULL) : NULL;
    /* OpenSSL refuses an all-zero shared secret (a low-order peer point). */
    ok = ctx && peer && EVP_PKEY_derive_init(ctx) == 1 &&
         EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, secret, &len) == 1 &&
         len == X25519_LEN &&
         tsim_key_set_ref(out, TEE_ATTR_SECRET_VALUE, secret, len) == TEE_SUCCESS;
    tsim_crypto_wipe(secret, sizeof(secret));
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(me);
    if (!ok)
        TEE_Panic(TEE_ERROR_GENERIC);
    out->size = 256;
}

/* HKDF-SHA256 (RFC 5869) with OP-TEE's extension attributes. */
static void derive_hkdf(TEE_OperationHandle op, const TEE_Attribute *params, uint32_t count,
                        struct tsim_key *out)
{
    const struct tsim_attr *ikm = tsim_op_secret(op, TEE_ATTR_HKDF_IKM);
    const TEE_Attribute *salt = NULL;
    const TEE_Attribute *info = NULL;
    const TEE_Attribute *okm_len = NULL;
    struct tsim_attr *dst = NULL;
    OSSL_PARAM p[5];
    int np = 0;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    size_t len = 0;
    bool ok = false;

    for (uint32_t n = 0; n < count; n++) {
        uint32_t id = params[n].attributeID;
        const TEE_Attribute **slot = NULL;

        if (id == TEE_ATTR_HKDF_SALT || id == HKDF_SALT_OPTEE)
            slot = &salt;
        else if (id == TEE_ATTR_HKDF_INFO || id == HKDF_INFO_OPTEE)
            slot = &info;
        else if (id == TEE_ATTR_HKDF_OKM_LENGTH)
            slot = &okm_len;

        if (!slot || *slot)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        if (slot != &okm_len && !params[n].content.ref.buffer && params[n].content.ref.length)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        *slot = &params[n];
    }
    if (!okm_len)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    len = okm_len->content.value.a;
    /* RFC 5869: at most 255 hash lengths; it must fit the derived object. */
    if (!len || len > 255 * SHA256_LEN || len > out->max_size / 8)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);

    p[np++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm->buf, ikm->len);
    if (salt && salt->content.ref.length)
        p[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt->content.ref.buffer,
                                                    salt->content.ref.length);
    if (info && info->content.ref.length)
        p[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info->content.ref.buffer,
                                                    info->content.ref.length);
    p[np] = OSSL_PARAM_construct_end();

    dst = out->nattrs ? &out->attrs[0] : NULL;
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    ok = ctx && dst && dst->id == TEE_ATTR_SECRET_VALUE && len <= dst->cap &&
         EVP_KDF_derive(ctx, dst->buf, len, p) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    if (!ok)
        TEE_Panic(TEE_ERROR_GENERIC);
    dst->len = len;
    dst->set = true;
    out->size = (uint32_t)(len * 8);
}

void TEE_DeriveKey(TEE_OperationHandle operation, const TEE_Attribute *params, uint32_t paramCount,
                   TEE_ObjectHandle derivedKey)
{
    struct tsim_key *out = NULL;

    tsim_op_check(operation);
    if (derivedKey == TEE_HANDLE_NULL || (paramCount && !params))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_obj_check(derivedKey);
    if (operation->info.operationClass != TEE_OPERATION_KEY_DERIVATION ||
        operation->info.mode != TEE_MODE_DERIVE || derivedKey->pobj)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require(operation->info.handleState & TEE_HANDLE_FLAG_KEY_SET);
    out = &derivedKey->key;
    if (out->type != TEE_TYPE_GENERIC_SECRET || out->initialized)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);

    if (operation->info.algorithm == TEE_ALG_X25519)
        derive_x25519(operation, params, paramCount, out);
    else
        derive_hkdf(operation, params, paramCount, out);
    out->initialized = true;
}
