/*
 * crypto_rsa.c - RSA keys for the simulated libutee: building OpenSSL keys from
 * GP attributes (big-endian unsigned integers), generating key pairs, and
 * RSAES-OAEP with SHA-256 for TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256 (OAEP hash and
 * MGF1 hash both SHA-256, as OP-TEE does).
 *
 * Attribute order is the type table's (crypto_objects.c): modulus, public
 * exponent, private exponent, prime1, prime2, exponent1, exponent2, coefficient.
 * TEE_AsymmetricEncrypt/Decrypt are here too.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "tsim_crypto.h"
#include "tsim_ta.h"

#define SHA256_LEN 32

static const char *const rsa_params[TSIM_RSA_ATTRS] = {
    OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
    OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};

EVP_PKEY *tsim_rsa_from_values(const uint8_t *const val[], const size_t len[], size_t count,
                               bool check)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn[TSIM_RSA_ATTRS] = {NULL};
    bool ok = bld != NULL;
    bool keypair = count > 2 && val[2];

    for (size_t i = 0; ok && i < count && i < TSIM_RSA_ATTRS; i++) {
        if (!val[i])
            continue;
        /* Private numbers as "secure" BIGNUMs: OpenSSL wipes those on free. */
        bn[i] = BN_bin2bn(val[i], (int)len[i], i >= 2 ? BN_secure_new() : NULL);
        ok = bn[i] && OSSL_PARAM_BLD_push_BN(bld, rsa_params[i], bn[i]) == 1;
    }
    params = ok ? OSSL_PARAM_BLD_to_param(bld) : NULL;
    ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL) : NULL;
    ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
         EVP_PKEY_fromdata(ctx, &pkey, keypair ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) ==
             1;
    EVP_PKEY_CTX_free(ctx);
    ctx = NULL;
    /* A pair with its primes can be checked: n = pq, e and d inverse. */
    if (ok && check && keypair && count > 3 && val[3]) {
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        ok = ctx && EVP_PKEY_pairwise_check(ctx) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    if (!ok) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < TSIM_RSA_ATTRS; i++)
        BN_clear_free(bn[i]);
    return pkey;
}

EVP_PKEY *tsim_rsa_from_key(const struct tsim_key *key)
{
    const uint8_t *val[TSIM_RSA_ATTRS] = {NULL};
    size_t len[TSIM_RSA_ATTRS] = {0};

    for (uint32_t i = 0; i < key->nattrs && i < TSIM_RSA_ATTRS; i++) {
        if (key->attrs[i].set) {
            val[i] = key->attrs[i].buf;
            len[i] = key->attrs[i].len;
        }
    }
    return tsim_rsa_from_values(val, len, key->nattrs, false);
}

bool tsim_rsa_generate(struct tsim_key *key, uint32_t bits, const uint8_t *e, size_t e_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pkey = NULL;
    BIGNUM *pub = NULL;
    bool ok = false;

    pub = e_len ? BN_bin2bn(e, (int)e_len, NULL) : BN_new();
    ok = ctx && pub && (e_len || BN_set_word(pub, RSA_F4) == 1) && EVP_PKEY_keygen_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1 &&
         EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, pub) == 1 && EVP_PKEY_keygen(ctx, &pkey) == 1;
    for (uint32_t i = 0; ok && i < key->nattrs && i < TSIM_RSA_ATTRS; i++) {
        struct tsim_attr *a = &key->attrs[i];
        BIGNUM *bn = NULL;
        int n = 0;

        ok = EVP_PKEY_get_bn_param(pkey, rsa_params[i], &bn) == 1 &&
             (size_t)BN_num_bytes(bn) <= a->cap && (n = BN_bn2bin(bn, a->buf)) > 0;
        BN_clear_free(bn);
        a->len = (size_t)n;
        a->set = ok;
    }
    BN_free(pub);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

size_t tsim_rsa_size(const EVP_PKEY *pkey)
{
    int n = EVP_PKEY_get_size(pkey);

    return n > 0 ? (size_t)n : 0;
}

int tsim_rsa_oaep(EVP_PKEY *pkey, bool encrypt, const void *label, size_t label_len,
                  const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    void *lab = NULL;
    int ok = 0;

    if (!ctx)
        return 0;
    ok = (encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1;
    if (ok && label_len) {
        /* OpenSSL takes ownership of the label. */
        lab = OPENSSL_memdup(label, label_len);
        ok = lab && EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, lab, (int)label_len) == 1;
        if (!ok)
            OPENSSL_free(lab);
    }
    ok = ok && (encrypt ? EVP_PKEY_encrypt(ctx, out, out_len, in, in_len)
                        : EVP_PKEY_decrypt(ctx, out, out_len, in, in_len)) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Asymmetric ciphers (RSAES-OAEP with SHA-256)                               */

/* Common checks; returns the OAEP label given in params, if any. */
static const TEE_Attribute *check_asym(TEE_OperationHandle op, uint32_t mode,
                                       const TEE_Attribute *params, uint32_t count, const void *src,
                                       size_t len, const size_t *dst_len)
{
    const TEE_Attribute *label = NULL;

    tsim_op_check(op);
    if ((!src && len) || !dst_len || (count && !params) ||
        op->info.operationClass != TEE_OPERATION_ASYMMETRIC_CIPHER || op->info.mode != mode)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    tsim_op_require((op->info.handleState & TEE_HANDLE_FLAG_KEY_SET) && op->pkey);
    for (uint32_t n = 0; n < count; n++) {
        if (params[n].attributeID != TEE_ATTR_RSA_OAEP_LABEL || label ||
            (!params[n].content.ref.buffer && params[n].content.ref.length))
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        label = &params[n];
    }
    return label;
}

TEE_Result TEE_AsymmetricEncrypt(TEE_OperationHandle operation, const TEE_Attribute *params,
                                 uint32_t paramCount, const void *srcData, size_t srcLen,
                                 void *destData, size_t *destLen)
{
    const TEE_Attribute *label =
        check_asym(operation, TEE_MODE_ENCRYPT, params, paramCount, srcData, srcLen, destLen);
    size_t k = tsim_rsa_size(operation->pkey);
    size_t out = k;

    /* OAEP with SHA-256 carries at most k - 2 * 32 - 2 bytes. */
    if (k < 2 * SHA256_LEN + 2 || srcLen > k - 2 * SHA256_LEN - 2)
        return TEE_ERROR_BAD_PARAMETERS;
    if (*destLen < k) {
        *destLen = k;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (!destData)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (!tsim_rsa_oaep(operation->pkey, true, label ? label->content.ref.buffer : NULL,
                       label ? label->content.ref.length : 0, srcData, srcLen, destData, &out))
        TEE_Panic(TEE_ERROR_GENERIC);
    *destLen = out;
    return TEE_SUCCESS;
}

TEE_Result TEE_AsymmetricDecrypt(TEE_OperationHandle operation, const TEE_Attribute *params,
                                 uint32_t paramCount, const void *srcData, size_t srcLen,
                                 void *destData, size_t *destLen)
{
    const TEE_Attribute *label =
        check_asym(operation, TEE_MODE_DECRYPT, params, paramCount, srcData, srcLen, destLen);
    size_t k = tsim_rsa_size(operation->pkey);
    size_t out = k;
    uint8_t *tmp = NULL;
    TEE_Result res = TEE_ERROR_CIPHERTEXT_INVALID;

    if (srcLen != k)
        return TEE_ERROR_CIPHERTEXT_INVALID;
    /* The message length is known only after decryption: decrypt aside. */
    tmp = tsim_sys_malloc(k);
    if (!tmp)
        TEE_Panic(TEE_ERROR_OUT_OF_MEMORY);
    if (tsim_rsa_oaep(operation->pkey, false, label ? label->content.ref.buffer : NULL,
                      label ? label->content.ref.length : 0, srcData, srcLen, tmp, &out)) {
        if (*destLen < out) {
            res = TEE_ERROR_SHORT_BUFFER;
        } else if (out && !destData) {
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        } else {
            if (out)
                memcpy(destData, tmp, out);
            res = TEE_SUCCESS;
        }
        *destLen = out;
    }
    tsim_crypto_wipe(tmp, k);
    tsim_sys_free(tmp);
    return res;
}
