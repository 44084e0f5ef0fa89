/* sim_chunks.c - see sim_chunks.h. */
#include "tests/helpers/sim_chunks.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HKDF-SHA256 of the simulated device key as tee/ta/huk.c derives
 * PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY (usage 1) for the DarkneTZ TA and DZ_CHUNK_LABEL. */
static bool chunk_key(const char *storage_dir, uint8_t key[32])
{
    static const char salt[] = "DarkneTZ simulated TEE HUK v1";
    static const char extra[] = DZ_CHUNK_LABEL;
    static const uint8_t uuid[16] = {0x5f, 0x6c, 0x0d, 0x1e, 0x8a, 0x3b, 0x4c, 0x27,
                                     0x9e, 0x4d, 0x2b, 0x7a, 0x61, 0xc9, 0xf0, 0xd3};
    uint8_t info[24 + sizeof extra - 1] = {0, 0, 0, 1, 0, 0, 0, 32};
    uint8_t huk[32];
    char path[4096];
    memcpy(info + 8, uuid, 16);
    memcpy(info + 24, extra, sizeof extra - 1);
    snprintf(path, sizeof path, "%s/huk", storage_dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    const bool read = fread(huk, 1, sizeof huk, f) == sizeof huk;
    fclose(f);
    if (!read)
        return false;
    OSSL_PARAM p[5];
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, huk, sizeof huk);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *)salt, sizeof salt - 1);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info);
    p[4] = OSSL_PARAM_construct_end();
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    const bool ok = ctx && EVP_KDF_derive(ctx, key, 32, p) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok;
}

float *sim_unseal_chunk(const char *storage_dir, const uint8_t *blob, size_t size,
                        struct dz_chunk_header *h)
{
    uint8_t key[32];
    if (size < sizeof *h)
        return NULL;
    memcpy(h, blob, sizeof *h);
    if (size != sizeof *h + (size_t)h->plain_bytes + DZ_SEALED_TAG_BYTES ||
        h->plain_bytes > (1u << 30) || !chunk_key(storage_dir, key))
        return NULL;
    uint8_t *pt = malloc((size_t)h->plain_bytes + 16);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = pt && c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
              EVP_DecryptInit_ex(c, NULL, NULL, key, h->nonce) == 1 &&
              EVP_DecryptUpdate(c, NULL, &n, blob, (int)sizeof *h) == 1 &&
              EVP_DecryptUpdate(c, pt, &n, blob + sizeof *h, (int)h->plain_bytes) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
                                  (void *)(blob + sizeof *h + h->plain_bytes)) == 1 &&
              EVP_DecryptFinal_ex(c, pt + n, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        free(pt);
        return NULL;
    }
    return (float *)(void *)pt;
}
