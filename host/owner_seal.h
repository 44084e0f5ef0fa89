/*
 * owner_seal.h - the model owner's side of provisioning (darknetz_ta.h, DZ_KEY_OWNER):
 * layers A..B's parameters encrypted under a fresh content key that only one device's TA
 * can unwrap. Runs on the owner's machine with OpenSSL's libcrypto; no TEE involved.
 *
 * Blob = struct dz_sealed_header (260 bytes, all of it the AES-GCM additional data)
 *        || AES-256-GCM(content key, header.nonce, payload) || 16-byte tag, where
 *   content key   = 32 random bytes,
 *   (eph, eph_pub) = a fresh X25519 key pair,
 *   shared        = X25519(eph, device public key),
 *   kek           = HKDF-SHA256(ikm = shared, salt = eph_pub || device public key,
 *                               info = DZ_PROVISION_LABEL, 32 bytes),
 *   wrapped_key || wrap_tag = AES-256-GCM(kek, wrap_nonce, aad = model_digest, content key),
 *   device_fingerprint = SHA-256(device public key),
 * and both nonces random. Every secret (content key, eph, shared, kek) is wiped before return.
 */
#ifndef DZ_OWNER_SEAL_H
#define DZ_OWNER_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"
#include "ta/include/darknetz_ta.h"

#define DZ_DIGEST_SIZE 32

/* What the header states besides the key wrap. */
struct dz_owner_seal {
    uint8_t device_pub[DZ_X25519_BYTES];  /* the device's provisioning key (device.pub) */
    uint8_t model_digest[DZ_DIGEST_SIZE]; /* dz_seal_model_digest of the cfg and partition */
    uint32_t first, last, n_layers;       /* the partition, inclusive, of n_layers */
    uint64_t seen;                        /* images trained on, from the weights file */
    uint32_t model_version;               /* the owner's release, >= 1 */
    struct dz_policy policy;              /* checked by the caller (dz_policy_check) */
};

/*
 * dz_owner_seal - seal @count floats of @payload (layers first..last in .weights order,
 * 4 bytes each, at most 4 GiB - 4 in all) for the device in @s. On success *blob (malloc'd,
 * caller frees) holds *size = 260 + 4 * count + 16 bytes. Refused: a payload over the
 * header's 32-bit size, a model_version of 0, a device key X25519 rejects (a low-order
 * point gives an all-zero secret), a libcrypto failure. Returns 0, or -1 with a message.
 */
int dz_owner_seal(const struct dz_owner_seal *s, const float *payload, size_t count, uint8_t **blob,
                  size_t *size, struct dk_error *err);

/*
 * dz_gcm_seal - AES-256-GCM of @len bytes @in into @out (same length) with a 12-byte @nonce,
 * @aad_len bytes of additional data, and the 16-byte @tag. Any length (processed in pieces).
 * Returns 0, or -1 with a message in err.
 */
int dz_gcm_seal(const uint8_t key[32], const uint8_t nonce[12], const void *aad, size_t aad_len,
                const void *in, size_t len, uint8_t *out, uint8_t tag[16], struct dk_error *err);

#endif
