/*
 * crypto_operations.c - GP Internal Core API cryptographic operations (GP TEE
 * Internal Core API v1.3.1 chapter 6) for the simulated libutee, on OpenSSL's
 * EVP interfaces, with OP-TEE libutee's state machine: calling a function in
 * the wrong state, on a NULL or foreign handle, or with a NULL buffer of
 * non-zero length panics; a short output buffer returns TEE_ERROR_SHORT_BUFFER
 * with the size needed, before any state changes.
 *
 * Algorithms: TEE_ALG_AES_ECB_NOPAD, TEE_ALG_AES_CBC_NOPAD, TEE_ALG_AES_CTR,
 * TEE_ALG_AES_GCM, TEE_ALG_SHA256, TEE_ALG_HMAC_SHA256, TEE_ALG_X25519,
 * TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256 and OP-TEE's TEE_ALG_HKDF_SHA256_DERIVE_KEY.
 * This file has the generic functions, digests, ciphers, MACs and AE; key
 * derivation is in crypto_derive.c, RSA in crypto_rsa.c.
 *
 * AES-GCM decryption never lets the plaintext of a failed TEE_AEDecryptFinal
 * reach the caller: the final part is first authenticated on a copy of the
 * cipher state (decrypting into a scratch buffer that is wiped), and only
 * after the tag has matched is it decrypted into the destination. Output of
 * earlier TEE_AEUpdate calls is, as the GP streaming API implies, released
 * before the tag is known: code that must not see unauthenticated plaintext
 * passes all its data to TEE_AEDecryptFinal.
 */
#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "tsim_crypto.h"
#include "tsim_ta.h"

#define AES_BLOCK 16
#define SHA256_LEN 32
#define GCM_TAG_MAX 16
/* Bytes given to one EVP call (its lengths are int) and the scratch size. */
#define EVP_CHUNK (1 << 20)
#define SCRATCH 16384

/* Every live operation handle the TA holds. */
static struct __TEE_OperationHandle *live_ops;

void tsim_op_check(TEE_OperationHandle op)
{
    for (const struct __TEE_OperationHandle *o = live_ops; o; o = o->next)
        if (o == op)
            return;
    TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

void tsim_op_require(bool cond)
{
    if (!cond)
        TEE_Panic(TEE_ERROR_BAD_STATE);
}

static const EVP_CIPHER *evp_cipher(uint32_t alg, size_t key_len)
{
    int k = key_len == 16 ? 0 : key_len == 24 ? 1 : key_len == 32 ? 2 : -1;

    if (k < 0)
        return NULL;
    switch (alg) {
    case TEE_ALG_AES_ECB_NOPAD:
        return k == 0 ? EVP_aes_128_ecb() : k == 1 ? EVP_aes_192_ecb() : EVP_aes_256_ecb();
    case TEE_ALG_AES_CBC_NOPAD:
        return k == 0 ? EVP_aes_128_cbc() : k == 1 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
    case TEE_ALG_AES_CTR:
        return k == 0 ? EVP_aes_128_ctr() : k == 1 ? EVP_aes_192_ctr() : EVP_aes_256_ctr();
    case TEE_ALG_AES_GCM:
        return k == 0 ? EVP_aes_128_gcm() : k == 1 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
    default:
        return NULL;
    }
}

/* EVP_CipherUpdate over a size_t length; out NULL feeds AAD. */
static bool evp_update(EVP_CIPHER_CTX *c, uint8_t *out, size_t *out_len, const uint8_t *in,
                       size_t in_len)
{
    size_t total = 0;

    while (in_len) {
        int n = in_len > EVP_CHUNK ? EVP_CHUNK : (int)in_len;
        int o = 0;

        if (EVP_CipherUpdate(c, out ? out + total : NULL, &o, in, n) != 1 || o < 0)
            return false;
        total += (size_t)o;
        in += n;
        in_len -= (size_t)n;
    }
    if (out_len)
        *out_len = total;
    return true;
}

const struct tsim_attr *tsim_op_secret(const TEE_OperationHandle op, uint32_t id)
{
    const struct tsim_attr *a = tsim_key_attr(&op->key, id);

    if (!a)
        TEE_Panic(TEE_ERROR_BAD_STATE);
    return a;
}

static void reset_state(TEE_OperationHandle op)
{
    op->state = TEE_OPERATION_STATE_INITIAL;
    op->buffered = 0;
    if (op->info.operationClass == TEE_OPERATION_DIGEST) {
        if (EVP_DigestInit_ex(op->md, EVP_sha256(), NULL) != 1)
            TEE_Panic(TEE_ERROR_GENERIC);
        op->info.handleState |= TEE_HANDLE_FLAG_INITIALIZED;
    } else {
        op->info.handleState &= ~(uint32_t)TEE_HANDLE_FLAG_INITIALIZED;
    }
}

/* ------------------------------------------------------------------------ */
/* Generic operation functions                                               */

TEE_Result TEE_AllocateOperation(TEE_OperationHandle *operation, uint32_t algorithm, uint32_t mode,
                                 uint32_t maxKeySize)
{
    struct __TEE_OperationHandle *op = NULL;
    uint32_t cls = 0;
    uint32_t usage = 0;
    uint32_t key_type = 0;
    uint32_t digest_len = 0;
    size_t block = 1;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!operation)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);

    switch (algorithm) {
    case TEE_ALG_AES_ECB_NOPAD:
    case TEE_ALG_AES_CBC_NOPAD:
        block = AES_BLOCK;
        /* fallthrough */
    case TEE_ALG_AES_CTR:
    case TEE_ALG_AES_GCM:
        if (mode != TEE_MODE_ENCRYPT && mode != TEE_MODE_DECRYPT)
            return TEE_ERROR_NOT_SUPPORTED;
        cls = algorithm == TEE_ALG_AES_GCM ? TEE_OPERATION_AE : TEE_OPERATION_CIPHER;
        usage = mode == TEE_MODE_ENCRYPT ? TEE_USAGE_ENCRYPT : TEE_USAGE_DECRYPT;
        key_type = TEE_TYPE_AES;
        break;
    case TEE_ALG_SHA256:
        if (mode != TEE_MODE_DIGEST)
            return TEE_ERROR_NOT_SUPPORTED;
        cls = TEE_OPERATION_DIGEST;
        digest_len = SHA256_LEN;
        break;
    case TEE_ALG_HMAC_SHA256:
        if (mode != TEE_MODE_MAC)
            return TEE_ERROR_NOT_SUPPORTED;
        cls = TEE_OPERATION_MAC;
        usage = TEE_USAGE_MAC;
        key_type = TEE_TYPE_HMAC_SHA256;
        digest_len = SHA256_LEN;
        break;
    case TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256:
        if (mode != TEE_MODE_ENCRYPT && mode != TEE_MODE_DECRYPT)
            return TEE_ERROR_NOT_SUPPORTED;
        cls = TEE_OPERATION_ASYMMETRIC_CIPHER;
        usage = mode == TEE_MODE_ENCRYPT ? TEE_USAGE_ENCRYPT : TEE_USAGE_DECRYPT;
        /* Encryption takes a public key or a pair; decryption needs the pair. */
        key_type = mode == TEE_MODE_ENCRYPT ? TEE_TYPE_RSA_PUBLIC_KEY : TEE_TYPE_RSA_KEYPAIR;
        break;
    case TEE_ALG_X25519:
        if (maxKeySize != 256)
            return TEE_ERROR_NOT_SUPPORTED;
        /* fallthrough */
    case TEE_ALG_HKDF_SHA256_DERIVE_KEY:
        if (mode != TEE_MODE_DERIVE)
            return TEE_ERROR_NOT_SUPPORTED;
        cls = TEE_OPERATION_KEY_DERIVATION;
        usage = TEE_USAGE_DERIVE;
        key_type = algorithm == TEE_ALG_X25519 ? TEE_TYPE_X25519_KEYPAIR : TEE_TYPE_HKDF_IKM;
        break;
    default:
        return TEE_ERROR_NOT_SUPPORTED;
    }

    op = tsim_crypto_zalloc(sizeof(*op));
    if (!op)
        return TEE_ERROR_OUT_OF_MEMORY;
    if (key_type) {
        res = tsim_key_init(&op->key, key_type, maxKeySize);
        if (res != TEE_SUCCESS)
            goto err;
    }
    res = TEE_ERROR_OUT_OF_MEMORY;
    if (cls == TEE_OPERATION_CIPHER || cls == TEE_OPERATION_AE) {
        op->cipher = EVP_CIPHER_CTX_new();
        if (!op->cipher)
            goto err;
    } else if (cls == TEE_OPERATION_DIGEST) {
        op->md = EVP_MD_CTX_new();
        if (!op->md || EVP_DigestInit_ex(op->md, EVP_sha256(), NULL) != 1)
            goto err;
    } else if (cls == TEE_OPERATION_MAC) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

        op->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac); /* the context holds its own reference */
        if (!op->mac)
            goto err;
    }

    op->info.algorithm = algorithm;
    op->info.operationClass = cls;
    op->info.mode = mode;
    op->info.digestLength = digest_len;
    op->info.maxKeySize = maxKeySize;
    op->info.requiredKeyUsage = usage;
    /* Digests need no key and are ready at once (GP 1.1 and later). */
    if (cls == TEE_OPERATION_DIGEST)
        op->info.handleState = TEE_HANDLE_FLAG_KEY_SET | TEE_HANDLE_FLAG_INITIALIZED;
    op->state = TEE_OPERATION_STATE_INITIAL;
    op->block = block;
    op->next = live_ops;
    live_ops = op;
    *operation = op;
    return TEE_SUCCESS;

err:
    EVP_CIPHER_CTX_free(op->cipher);
    EVP_MD_CTX_free(op->md);
    EVP_MAC_CTX_free(op->mac);
    tsim_key_release(&op->key);
    tsim_crypto_free(op, sizeof(*op));
    return res;
}

void TEE_FreeOperation(TEE_OperationHandle operation)
{
    if (operation == TEE_HANDLE_NULL)
        return;
    for (struct __TEE_OperationHandle **pp = &live_ops; *pp; pp = &(*pp)->next) {
        if (*pp == operation) {
            *pp = operation->next;
            EVP_CIPHER_CTX_free(operation->cipher);
            EVP_MD_CTX_free(operation->md);
            EVP_MAC_CTX_free(operation->mac);
            EVP_PKEY_free(operation->pkey);
            tsim_key_release(&operation->key);
            tsim_crypto_free(operation, sizeof(*operation));
            return;
        }
    }
    TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

void TEE_GetOperationInfo(TEE_OperationHandle operation, TEE_OperationInfo *operationInfo)
{
    tsim_op_check(operation);
    if (!operationInfo)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    *operationInfo = operation->info;
}

void TEE_ResetOperation(TEE_OperationHandle operation)
{
    tsim_op_check(operation);
    tsim_op_require(operation->info.handleState & TEE_HANDLE_FLAG_KEY_SET);
    reset_state(operation);
}

TEE_Result TEE_SetOperationKey(TEE_OperationHandle operation, TEE_ObjectHandle key)
{
    const struct tsim_key *k = NULL;

    tsim_op_check(operation);
    /* GP 1.3: only before the operation is initialized. */
    tsim_op_require(!(operation->info.handleState & TEE_HANDLE_FLAG_INITIALIZED));
    EVP_PKEY_free(operation->pkey);
    operation->pkey = NULL;
    if (key == TEE_HANDLE_NULL) {
        if (operation->info.operationClass != TEE_OPERATION_DIGEST) {
            tsim_key_clear(&operation->key);
            operation->info.handleState &= ~(uint32_t)TEE_HANDLE_FLAG_KEY_SET;
            operation->info.keySize = 0;
        }
        reset_state(operation);
        return TEE_SUCCESS;
    }
    if (operation->info.operationClass == TEE_OPERATION_DIGEST)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_obj_check(key);
    k = tsim_obj_key(key);
    tsim_op_require(k->initialized);
    /* Wrong usage, too large or of another type: all panics in GP. */
    if ((k->usage & operation->info.requiredKeyUsage) != operation->info.requiredKeyUsage ||
        k->size > operation->info.maxKeySize)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (tsim_key_copy(&operation->key, k) != TEE_SUCCESS)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (operation->info.operationClass == TEE_OPERATION_ASYMMETRIC_CIPHER) {
        operation->pkey = tsim_rsa_from_key(&operation->key);
        if (!operation->pkey)
            TEE_Panic(TEE_ERROR_GENERIC);
    }
    operation->info.handleState |= TEE_HANDLE_FLAG_KEY_SET;
    operation->info.keySize = k->size;
    reset_state(operation);
    return TEE_SUCCESS;
}

TEE_Result TEE_IsAlgorithmSupported(uint32_t algId, uint32_t element)
{
    switch (algId) {
    case TEE_ALG_AES_ECB_NOPAD:
    case TEE_ALG_AES_CBC_NOPAD:
    case TEE_ALG_AES_CTR:
    case TEE_ALG_AES_GCM:
    case TEE_ALG_SHA256:
    case TEE_ALG_HMAC_SHA256:
    case TEE_ALG_X25519:
    case TEE_ALG_HKDF_SHA256_DERIVE_KEY:
    case TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256:
        return element == TEE_CRYPTO_ELEMENT_NONE ? TEE_SUCCESS : TEE_ERROR_NOT_SUPPORTED;
    default:
        return TEE_ERROR_NOT_SUPPORTED;
    }
}

/* ------------------------------------------------------------------------ */
/* Message digests                                                            */

static void check_digest(TEE_OperationHandle op, const void *chunk, size_t len)
{
    tsim_op_check(op);
    if (op->info.operationClass != TEE_OPERATION_DIGEST || (!chunk && len))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

void TEE_DigestUpdate(TEE_OperationHandle operation, const void *chunk, size_t chunkSize)
{
    check_digest(operation, chunk, chunkSize);
    operation->state = TEE_OPERATION_STATE_ACTIVE;
    if (chunkSize && EVP_DigestUpdate(operation->md, chunk, chunkSize) != 1)
        TEE_Panic(TEE_ERROR_GENERIC);
}

TEE_Result TEE_DigestDoFinal(TEE_OperationHandle operation, const void *chunk, size_t chunkLen,
                             void *hash, size_t *hashLen)
{
    unsigned int n = 0;

    check_digest(operation, chunk, chunkLen);
    if (!hashLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (*hashLen < SHA256_LEN) {
        *hashLen = SHA256_LEN;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (!hash)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if ((chunkLen && EVP_DigestUpdate(operation->md, chunk, chunkLen) != 1) ||
        EVP_DigestFinal_ex(operation->md, hash, &n) != 1 || n != SHA256_LEN)
        TEE_Panic(TEE_ERROR_GENERIC);
    *hashLen = SHA256_LEN;
    reset_state(operation);
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Symmetric ciphers                                                          */

static bool is_nopad(uint32_t alg)
{
    return alg == TEE_ALG_AES_ECB_NOPAD || alg == TEE_ALG_AES_CBC_NOPAD;
}

void TEE_CipherInit(TEE_OperationHandle operation, const void *IV, size_t IVLen)
{
    const struct tsim_attr *k = NULL;
    const EVP_CIPHER *c = NULL;
    int enc = 0;

    tsim_op_check(operation);
    if (operation->info.operationClass != TEE_OPERATION_CIPHER)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require(operation->info.handleState & TEE_HANDLE_FLAG_KEY_SET);
    if (operation->state != TEE_OPERATION_STATE_INITIAL)
        reset_state(operation);
    if (operation->info.algorithm == TEE_ALG_AES_ECB_NOPAD) {
        if (IV && IVLen)
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        IV = NULL;
    } else if (!IV || IVLen != AES_BLOCK) {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    k = tsim_op_secret(operation, TEE_ATTR_SECRET_VALUE);
    c = evp_cipher(operation->info.algorithm, k->len);
    enc = operation->info.mode == TEE_MODE_ENCRYPT;
    if (!c || EVP_CipherInit_ex(operation->cipher, c, NULL, k->buf, IV, enc) != 1 ||
        EVP_CIPHER_CTX_set_padding(operation->cipher, 0) != 1)
        TEE_Panic(TEE_ERROR_GENERIC);
    operation->buffered = 0;
    operation->state = TEE_OPERATION_STATE_ACTIVE;
    operation->info.handleState |= TEE_HANDLE_FLAG_INITIALIZED;
}

static void check_cipher_active(TEE_OperationHandle op, const void *src, size_t len)
{
    tsim_op_check(op);
    if ((!src && len) || op->info.operationClass != TEE_OPERATION_CIPHER)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require((op->info.handleState & TEE_HANDLE_FLAG_INITIALIZED) &&
                    op->state == TEE_OPERATION_STATE_ACTIVE);
    if (len > SIZE_MAX - AES_BLOCK)
        TEE_Panic(TEE_ERROR_OVERFLOW);
}

TEE_Result TEE_CipherUpdate(TEE_OperationHandle operation, const void *srcData, size_t srcLen,
                            void *destData, size_t *destLen)
{
    size_t need = 0;
    size_t out = 0;

    check_cipher_active(operation, srcData, srcLen);
    if (!destLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    need = (operation->buffered + srcLen) / operation->block * operation->block;
    if (*destLen < need) {
        *destLen = need;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (need && !destData)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (srcLen && (!evp_update(operation->cipher, destData, &out, srcData, srcLen) || out != need))
        TEE_Panic(TEE_ERROR_GENERIC);
    operation->buffered = (operation->buffered + srcLen) % operation->block;
    *destLen = out;
    return TEE_SUCCESS;
}

TEE_Result TEE_CipherDoFinal(TEE_OperationHandle operation, const void *srcData, size_t srcLen,
                             void *destData, size_t *destLen)
{
    uint8_t tail[AES_BLOCK];
    size_t need = 0;
    size_t out = 0;
    int fin = 0;

    check_cipher_active(operation, srcData, srcLen);
    need = operation->buffered + srcLen;
    /* GP: the no-padding modes need whole blocks. */
    if (is_nopad(operation->info.algorithm) && need % AES_BLOCK)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (!destLen || *destLen < need) {
        if (destLen)
            *destLen = need;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (need && !destData)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if ((srcLen && !evp_update(operation->cipher, destData, &out, srcData, srcLen)) ||
        EVP_CipherFinal_ex(operation->cipher, tail, &fin) != 1 || fin != 0 || out != need)
        TEE_Panic(TEE_ERROR_GENERIC);
    *destLen = out;
    reset_state(operation);
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* MACs                                                                       */

void TEE_MACInit(TEE_OperationHandle operation, const void *IV, size_t IVLen)
{
    const struct tsim_attr *k = NULL;
    OSSL_PARAM params[2];

    (void)IV; /* HMAC takes no IV */
    (void)IVLen;
    tsim_op_check(operation);
    if (operation->info.operationClass != TEE_OPERATION_MAC)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require(operation->info.handleState & TEE_HANDLE_FLAG_KEY_SET);
    if (operation->state != TEE_OPERATION_STATE_INITIAL)
        reset_state(operation);
    k = tsim_op_secret(operation, TEE_ATTR_SECRET_VALUE);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(operation->mac, k->buf, k->len, params) != 1)
        TEE_Panic(TEE_ERROR_GENERIC);
    operation->state = TEE_OPERATION_STATE_ACTIVE;
    operation->info.handleState |= TEE_HANDLE_FLAG_INITIALIZED;
}

static void check_mac_active(TEE_OperationHandle op, const void *chunk, size_t len)
{
    tsim_op_check(op);
    if ((!chunk && len) || op->info.operationClass != TEE_OPERATION_MAC)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require((op->info.handleState & TEE_HANDLE_FLAG_INITIALIZED) &&
                    op->state == TEE_OPERATION_STATE_ACTIVE);
}

void TEE_MACUpdate(TEE_OperationHandle operation, const void *chunk, size_t chunkSize)
{
    check_mac_active(operation, chunk, chunkSize);
    if (chunkSize && EVP_MAC_update(operation->mac, chunk, chunkSize) != 1)
        TEE_Panic(TEE_ERROR_GENERIC);
}

TEE_Result TEE_MACComputeFinal(TEE_OperationHandle operation, const void *message,
                               size_t messageLen, void *mac, size_t *macLen)
{
    size_t n = 0;

    check_mac_active(operation, message, messageLen);
    if (!macLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (*macLen < SHA256_LEN) {
        *macLen = SHA256_LEN;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (!mac)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if ((messageLen && EVP_MAC_update(operation->mac, message, messageLen) != 1) ||
        EVP_MAC_final(operation->mac, mac, &n, *macLen) != 1 || n != SHA256_LEN)
        TEE_Panic(TEE_ERROR_GENERIC);
    *macLen = SHA256_LEN;
    reset_state(operation);
    return TEE_SUCCESS;
}

TEE_Result TEE_MACCompareFinal(TEE_OperationHandle operation, const void *message,
                               size_t messageLen, const void *mac, size_t macLen)
{
    uint8_t computed[SHA256_LEN];
    size_t n = sizeof(computed);
    bool same = false;

    check_mac_active(operation, message, messageLen);
    if (!mac && macLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    (void)TEE_MACComputeFinal(operation, message, messageLen, computed, &n);
    same = macLen == n && CRYPTO_memcmp(computed, mac, n) == 0;
    tsim_crypto_wipe(computed, sizeof(computed));
    return same ? TEE_SUCCESS : TEE_ERROR_MAC_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Authenticated encryption (AES-GCM)                                         */

TEE_Result TEE_AEInit(TEE_OperationHandle operation, const void *nonce, size_t nonceLen,
                      uint32_t tagLen, size_t AADLen, size_t payloadLen)
{
    const struct tsim_attr *k = NULL;
    const EVP_CIPHER *c = NULL;
    int enc = 0;

    (void)AADLen; /* only CCM needs the lengths in advance */
    (void)payloadLen;
    tsim_op_check(operation);
    if (operation->info.operationClass != TEE_OPERATION_AE || !nonce || !nonceLen ||
        nonceLen > INT_MAX)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require(operation->state == TEE_OPERATION_STATE_INITIAL &&
                    (operation->info.handleState & TEE_HANDLE_FLAG_KEY_SET));
    /* GP: 128, 120, 112, 104 or 96 bits for AES-GCM. */
    if (tagLen < 96 || tagLen > 128 || tagLen % 8)
        return TEE_ERROR_NOT_SUPPORTED;
    k = tsim_op_secret(operation, TEE_ATTR_SECRET_VALUE);
    c = evp_cipher(TEE_ALG_AES_GCM, k->len);
    enc = operation->info.mode == TEE_MODE_ENCRYPT;
    if (!c || EVP_CipherInit_ex(operation->cipher, c, NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(operation->cipher, EVP_CTRL_GCM_SET_IVLEN, (int)nonceLen, NULL) != 1 ||
        EVP_CipherInit_ex(operation->cipher, NULL, NULL, k->buf, nonce, enc) != 1)
        TEE_Panic(TEE_ERROR_GENERIC);
    operation->info.digestLength = tagLen / 8;
    operation->info.handleState |= TEE_HANDLE_FLAG_INITIALIZED;
    return TEE_SUCCESS;
}

static void check_ae(TEE_OperationHandle op, const void *src, size_t len)
{
    tsim_op_check(op);
    if ((!src && len) || op->info.operationClass != TEE_OPERATION_AE)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require(op->info.handleState & TEE_HANDLE_FLAG_INITIALIZED);
}

void TEE_AEUpdateAAD(TEE_OperationHandle operation, const void *AADdata, size_t AADdataLen)
{
    check_ae(operation, AADdata, AADdataLen);
    /* AAD comes before any payload. */
    tsim_op_require(operation->state == TEE_OPERATION_STATE_INITIAL);
    if (AADdataLen && !evp_update(operation->cipher, NULL, NULL, AADdata, AADdataLen))
        TEE_Panic(TEE_ERROR_GENERIC);
}

TEE_Result TEE_AEUpdate(TEE_OperationHandle operation, const void *srcData, size_t srcLen,
                        void *destData, size_t *destLen)
{
    size_t out = 0;

    check_ae(operation, srcData, srcLen);
    if (!destLen)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (*destLen < srcLen) {
        *destLen = srcLen;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (!srcLen) {
        *destLen = 0;
        return TEE_SUCCESS;
    }
    if (!destData)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (!evp_update(operation->cipher, destData, &out, srcData, srcLen) || out != srcLen)
        TEE_Panic(TEE_ERROR_GENERIC);
    *destLen = out;
    operation->state = TEE_OPERATION_STATE_ACTIVE;
    return TEE_SUCCESS;
}

TEE_Result TEE_AEEncryptFinal(TEE_OperationHandle operation, const void *srcData, size_t srcLen,
                              void *destData, size_t *destLen, void *tag, size_t *tagLen)
{
    uint8_t tail[AES_BLOCK];
    size_t out = 0;
    int fin = 0;
    bool short_buf = false;

    check_ae(operation, srcData, srcLen);
    if (!destLen || !tagLen || operation->info.mode != TEE_MODE_ENCRYPT)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (*destLen < srcLen) {
        *destLen = srcLen;
        short_buf = true;
    }
    if (*tagLen < operation->info.digestLength) {
        *tagLen = operation->info.digestLength;
        short_buf = true;
    }
    if (short_buf)
        return TEE_ERROR_SHORT_BUFFER;
    if ((srcLen && !destData) || !tag)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if ((srcLen && !evp_update(operation->cipher, destData, &out, srcData, srcLen)) ||
        out != srcLen || EVP_CipherFinal_ex(operation->cipher, tail, &fin) != 1 || fin != 0 ||
        EVP_CIPHER_CTX_ctrl(operation->cipher, EVP_CTRL_GCM_GET_TAG,
                            (int)operation->info.digestLength, tag) != 1)
        TEE_Panic(TEE_ERROR_GENERIC);
    *destLen = out;
    *tagLen = operation->info.digestLength;
    reset_state(operation);
    return TEE_SUCCESS;
}

/* Runs the rest of a GCM decryption on a copy of ctx, output discarded, and
 * reports whether tag matches. */
static bool gcm_tag_matches(EVP_CIPHER_CTX *ctx, const uint8_t *src, size_t len, const uint8_t *tag,
                            size_t tag_len)
{
    EVP_CIPHER_CTX *v = EVP_CIPHER_CTX_new();
    /* Off the TA's small stack, and not counted in its heap. */
    uint8_t *scratch = tsim_sys_malloc(SCRATCH + AES_BLOCK);
    uint8_t t[GCM_TAG_MAX];
    bool ok = v && scratch && EVP_CIPHER_CTX_copy(v, ctx) == 1;
    int o = 0;

    if (!ok)
        TEE_Panic(TEE_ERROR_OUT_OF_MEMORY);
    while (ok && len) {
        int n = len > SCRATCH ? SCRATCH : (int)len;

        ok = EVP_CipherUpdate(v, scratch, &o, src, n) == 1;
        src += n;
        len -= (size_t)n;
    }
    memcpy(t, tag, tag_len);
    ok = ok && EVP_CIPHER_CTX_ctrl(v, EVP_CTRL_GCM_SET_TAG, (int)tag_len, t) == 1 &&
         EVP_CipherFinal_ex(v, scratch, &o) == 1;
    tsim_crypto_wipe(scratch, SCRATCH + AES_BLOCK);
    tsim_sys_free(scratch);
    EVP_CIPHER_CTX_free(v);
    return ok;
}

TEE_Result TEE_AEDecryptFinal(TEE_OperationHandle operation, const void *srcData, size_t srcLen,
                              void *destData, size_t *destLen, void *tag, size_t tagLen)
{
    uint8_t tail[AES_BLOCK];
    uint8_t t[GCM_TAG_MAX];
    size_t out = 0;
    int fin = 0;
    TEE_Result res = TEE_ERROR_MAC_INVALID;

    check_ae(operation, srcData, srcLen);
    if (!destLen || (!tag && tagLen) || operation->info.mode != TEE_MODE_DECRYPT)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (*destLen < srcLen) {
        *destLen = srcLen;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (srcLen && !destData)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    /* The tag must have the length given to TEE_AEInit. */
    if (tagLen == operation->info.digestLength &&
        gcm_tag_matches(operation->cipher, srcData, srcLen, tag, tagLen)) {
        memcpy(t, tag, tagLen);
        if ((srcLen && !evp_update(operation->cipher, destData, &out, srcData, srcLen)) ||
            out != srcLen ||
            EVP_CIPHER_CTX_ctrl(operation->cipher, EVP_CTRL_GCM_SET_TAG, (int)tagLen, t) != 1 ||
            EVP_CipherFinal_ex(operation->cipher, tail, &fin) != 1) {
            /* Cannot happen after the check; never leave plaintext behind. */
            tsim_crypto_wipe(destData, srcLen);
            TEE_Panic(TEE_ERROR_GENERIC);
        }
        res = TEE_SUCCESS;
    }
    *destLen = out;
    reset_state(operation);
    return res;
}
