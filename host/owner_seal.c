/* owner_seal.c - sealing a segment's parameters for one device (owner_seal.h). */
#include "host/owner_seal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "host/device_key.h"

/* The payload's floats are copied as they are in memory: the blob, like the TA's ABI, is
 * little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "darknetp seal writes little-endian blobs: port the payload copy first"
#endif

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define PIECE (1 << 30) /* EVP lengths are int */

_Static_assert(sizeof(((struct dz_sealed_header *)0)->wrapped_key) == KEY_BYTES, "wrap size");
_Static_assert(sizeof(((struct dz_sealed_header *)0)->wrap_nonce) == NONCE_BYTES, "nonce");
_Static_assert(sizeof(((struct dz_sealed_header *)0)->nonce) == NONCE_BYTES, "nonce");
_Static_assert(sizeof(((struct dz_sealed_header *)0)->wrap_tag) == DZ_SEALED_TAG_BYTES, "tag");

int dz_gcm_seal(const uint8_t key[32], const uint8_t nonce[12], const void *aad, size_t aad_len,
                const void *in, size_t len, uint8_t *out, uint8_t tag[16], struct dk_error *err)
{
    const uint8_t *src = in;
    int n = 0, ok = 1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
         EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) == 1;
    for (size_t off = 0; ok && off < aad_len; off += PIECE) {
        const size_t k = aad_len - off < PIECE ? aad_len - off : PIECE;
        ok = EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)aad + off, (int)k) == 1;
    }
    size_t done = 0;
    for (size_t off = 0; ok && off < len; off += PIECE) {
        const size_t k = len - off < PIECE ? len - off : PIECE;
        ok = EVP_EncryptUpdate(c, out + done, &n, src + off, (int)k) == 1;
        done += ok ? (size_t)n : 0;
    }
    ok = ok && EVP_EncryptFinal_ex(c, out + done, &n) == 1 && done + (size_t)n == len &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, DZ_SEALED_TAG_BYTES, tag) == 1;
    EVP_CIPHER_CTX_free(c); /* cleanses the key schedule */
    return ok ? 0 : dk_fail(err, "AES-256-GCM failed (libcrypto)");
}

/* A fresh X25519 key pair: *eph and its public value. */
static int ephemeral(EVP_PKEY **eph, uint8_t pub[DZ_X25519_BYTES], struct dk_error *err)
{
    size_t len = DZ_X25519_BYTES;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    *eph = NULL;
    int ok = c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_keygen(c, eph) == 1 &&
             EVP_PKEY_get_raw_public_key(*eph, pub, &len) == 1 && len == DZ_X25519_BYTES;
    EVP_PKEY_CTX_free(c);
    if (ok)
        return 0;
    EVP_PKEY_free(*eph);
    *eph = NULL;
    return dk_fail(err, "cannot make an X25519 key pair (libcrypto)");
}

/* shared = X25519(eph, device_pub); refused when it is all zero (a low-order device key). */
static int agree(EVP_PKEY *eph, const uint8_t device_pub[DZ_X25519_BYTES],
                 uint8_t shared[KEY_BYTES], struct dk_error *err)
{
    size_t len = KEY_BYTES;
    EVP_PKEY *peer =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, device_pub, DZ_X25519_BYTES);
    EVP_PKEY_CTX *c = peer ? EVP_PKEY_CTX_new(eph, NULL) : NULL;
    int ok = c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
             EVP_PKEY_derive(c, shared, &len) == 1 && len == KEY_BYTES;
    uint8_t acc = 0;
    for (size_t i = 0; ok && i < KEY_BYTES; i++)
        acc |= shared[i];
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(peer);
    if (ok && acc)
        return 0;
    OPENSSL_cleanse(shared, KEY_BYTES);
    return dk_fail(err, "the device key is not a usable X25519 public key (X25519 with it "
                        "fails or gives an all-zero secret)");
}

/* kek = HKDF-SHA256(shared, salt = eph_pub || device_pub, info = DZ_PROVISION_LABEL). */
static int derive_kek(const uint8_t shared[KEY_BYTES], const uint8_t eph_pub[DZ_X25519_BYTES],
                      const uint8_t device_pub[DZ_X25519_BYTES], uint8_t kek[KEY_BYTES],
                      struct dk_error *err)
{
    static const char info[] = DZ_PROVISION_LABEL;
    uint8_t salt[2 * DZ_X25519_BYTES];
    size_t len = KEY_BYTES;
    memcpy(salt, eph_pub, DZ_X25519_BYTES);
    memcpy(salt + DZ_X25519_BYTES, device_pub, DZ_X25519_BYTES);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    int ok =
        c && EVP_PKEY_derive_init(c) == 1 &&
        EVP_PKEY_CTX_hkdf_mode(c, EVP_PKEY_HKDEF_MODE_EXTRACT_AND_EXPAND) == 1 &&
        EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set1_hkdf_salt(c, salt, (int)sizeof salt) == 1 &&
        EVP_PKEY_CTX_set1_hkdf_key(c, shared, KEY_BYTES) == 1 &&
        EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)info, (int)(sizeof info - 1)) == 1 &&
        EVP_PKEY_derive(c, kek, &len) == 1 && len == KEY_BYTES;
    EVP_PKEY_CTX_free(c);
    if (ok)
        return 0;
    OPENSSL_cleanse(kek, KEY_BYTES);
    return dk_fail(err, "HKDF-SHA256 failed (libcrypto)");
}

/* The header's key wrap: fingerprint, ephemeral public, wrap nonce, wrapped key and tag. */
static int wrap_key(const struct dz_owner_seal *s, const uint8_t content[KEY_BYTES],
                    struct dz_sealed_header *h, struct dk_error *err)
{
    EVP_PKEY *eph = NULL;
    uint8_t shared[KEY_BYTES], kek[KEY_BYTES];
    int rc = -1;
    if (dz_key_fingerprint(s->device_pub, h->device_fingerprint, err) != 0 ||
        ephemeral(&eph, h->ephemeral_public, err) != 0)
        return -1;
    if (agree(eph, s->device_pub, shared, err) == 0) {
        if (derive_kek(shared, h->ephemeral_public, s->device_pub, kek, err) == 0) {
            if (RAND_bytes(h->wrap_nonce, NONCE_BYTES) != 1)
                dk_fail(err, "no random bytes for the wrap nonce (libcrypto)");
            else
                rc = dz_gcm_seal(kek, h->wrap_nonce, h->model_digest, sizeof h->model_digest,
                                 content, KEY_BYTES, h->wrapped_key, h->wrap_tag, err);
        }
    }
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(kek, sizeof kek);
    EVP_PKEY_free(eph); /* the private key is cleared as it is freed */
    return rc;
}

int dz_owner_seal(const struct dz_owner_seal *s, const float *payload, size_t count, uint8_t **blob,
                  size_t *size, struct dk_error *err)
{
    struct dz_sealed_header h;
    uint8_t content[KEY_BYTES];
    *blob = NULL;
    *size = 0;
    if (count > UINT32_MAX / sizeof(float))
        return dk_fail(err, "layers %u..%u hold %zu floats; a sealed blob holds at most %u",
                       (unsigned)s->first, (unsigned)s->last, count,
                       (unsigned)(UINT32_MAX / sizeof(float)));
    if (s->model_version < 1)
        return dk_fail(err, "an owner's model version must be at least 1");
    const size_t bytes = count * sizeof(float);
    memset(&h, 0, sizeof h);
    h.magic = DZ_SEALED_MAGIC;
    h.version = DZ_TA_PROTOCOL_VERSION;
    memcpy(h.model_digest, s->model_digest, sizeof h.model_digest);
    h.first = s->first;
    h.last = s->last;
    h.n_layers = s->n_layers;
    h.payload_bytes = (uint32_t)bytes;
    h.seen_lo = (uint32_t)s->seen;
    h.seen_hi = (uint32_t)(s->seen >> 32);
    h.model_version = s->model_version;
    h.key_kind = DZ_KEY_OWNER;
    h.policy = s->policy;
    if (RAND_bytes(content, KEY_BYTES) != 1 || RAND_bytes(h.nonce, NONCE_BYTES) != 1) {
        OPENSSL_cleanse(content, sizeof content);
        return dk_fail(err, "no random bytes for the content key (libcrypto)");
    }
    int rc = wrap_key(s, content, &h, err);
    uint8_t *out = rc == 0 ? malloc(sizeof h + bytes + DZ_SEALED_TAG_BYTES) : NULL;
    if (rc == 0 && !out)
        rc = dk_fail(err, "out of memory for a sealed blob of %zu bytes",
                     sizeof h + bytes + DZ_SEALED_TAG_BYTES);
    if (rc == 0) {
        memcpy(out, &h, sizeof h);
        rc = dz_gcm_seal(content, h.nonce, &h, sizeof h, payload, bytes, out + sizeof h,
                         out + sizeof h + bytes, err);
    }
    OPENSSL_cleanse(content, sizeof content);
    if (rc != 0) {
        free(out);
        return -1;
    }
    *blob = out;
    *size = sizeof h + bytes + DZ_SEALED_TAG_BYTES;
    return 0;
}
