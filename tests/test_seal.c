/*
 * test_seal.c - the model owner's side of provisioning, with no TEE at all:
 *  (a) device.pub files: the text `darknetp tee pubkey` prints reads back, and every
 *      malformed file is refused with its file, line and fault;
 *  (b) dz_owner_seal's blob opened by an independent device written here with OpenSSL:
 *      X25519 with the device's private key, HKDF, the key unwrap, the payload under the
 *      whole 260-byte header as AAD; a flipped header byte or another device fails;
 *  (c) `darknetp seal` on the darknet fixture with every TEE path pointing nowhere:
 *      OUT.weights keeps the normal world's layers byte for byte, zeros layers 4..10 and
 *      carries the marker; OUT.weights.tz opens to exactly layers 4..10 of the plain file
 *      under the policy asked for; and its refusals (marked weights, partition, device.pub,
 *      policy options, output over an input) name the fault.
 */
#define _GNU_SOURCE /* realpath, memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "host/device_key.h"
#include "host/owner_seal.h"
#include "host/pnet.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char fixture[PATH_MAX];
static char dir[64];

/* The fixture's partition: the TA holds the three connected layers and the loss. */
#define FIRST 4
#define LAST 10
/* Parameter floats of mnist_lenet.cfg: layers 0..3, 4..10, and the file's header bytes. */
#define FRONT_FLOATS (6 * 3 * 25 + 6 + 6 * 6 * 25 + 6)
#define SEGMENT_FLOATS (294 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10)
#define HEADER_BYTES 20

static int setup(void **state)
{
    (void)state;
    char rel[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-seal-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* Nothing here may reach a TEE: any attempt fails loudly. */
    setenv("DZ_TEE_CORE", "/nonexistent/dz-tee-core", 1);
    setenv("DZ_TA_DIR", "/nonexistent", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    unsetenv("DZ_TEE_CORE");
    unsetenv("DZ_TA_DIR");
    return system(cmd) == 0 ? 0 : -1;
}

/* darknetp with args, in dir; stdout and stderr into out. */
static int darknetp(const char *args, char *out, size_t size)
{
    char cmd[6 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, bin, args);
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

/* --------------------------------------------------------- a device of our own */

struct device {
    EVP_PKEY *key;
    uint8_t pub[DZ_X25519_BYTES];
};

static void device_new(struct device *d)
{
    size_t len = sizeof d->pub;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    assert_non_null(c);
    d->key = NULL;
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    assert_int_equal(EVP_PKEY_keygen(c, &d->key), 1);
    EVP_PKEY_CTX_free(c);
    assert_int_equal(EVP_PKEY_get_raw_public_key(d->key, d->pub, &len), 1);
    assert_int_equal(len, DZ_X25519_BYTES);
}

/* Writes the device's key as `darknetp tee pubkey` prints it, to dir/name. */
static void device_file(const struct device *d, const char *name)
{
    char text[256];
    struct dk_error err;
    assert_int_equal(dz_pubkey_text(d->pub, text, sizeof text, &err), 0);
    assert_int_equal(write_text_file(dir, name, text, NULL, 0), 0);
}

static bool gcm_open(const uint8_t *key, const uint8_t *nonce, const void *aad, size_t aad_len,
                     const uint8_t *in, size_t len, const uint8_t *tag, uint8_t *out)
{
    int n = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    bool ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
              EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
              EVP_DecryptUpdate(c, out, &n, in, (int)len) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) == 1 &&
              EVP_DecryptFinal_ex(c, out + n, &n) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/*
 * What the TA does with a DZ_KEY_OWNER blob, written from darknetz_ta.h alone: the payload
 * into out (header.payload_bytes). False when the key does not unwrap or the payload does
 * not authenticate.
 */
static bool device_open(const struct device *d, const uint8_t *blob, size_t size, uint8_t *out)
{
    struct dz_sealed_header h;
    uint8_t shared[32], kek[32], key[32], salt[64], fp[32];
    size_t len = sizeof shared;
    assert_true(size >= sizeof h + DZ_SEALED_TAG_BYTES);
    memcpy(&h, blob, sizeof h);
    if (h.key_kind != DZ_KEY_OWNER || size != sizeof h + h.payload_bytes + DZ_SEALED_TAG_BYTES)
        return false;
    assert_int_equal(EVP_Digest(d->pub, 32, fp, NULL, EVP_sha256(), NULL), 1);
    if (memcmp(fp, h.device_fingerprint, 32) != 0)
        return false;
    EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, h.ephemeral_public, 32);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(d->key, NULL);
    assert_non_null(peer);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(c, peer), 1);
    assert_int_equal(EVP_PKEY_derive(c, shared, &len), 1);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(peer);
    /* HKDF through the EVP_KDF interface: another path through libcrypto than the sealer's. */
    memcpy(salt, h.ephemeral_public, 32);
    memcpy(salt + 32, d->pub, 32);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, 64),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, "darknetz-provision-v2", 21),
        OSSL_PARAM_construct_end(),
    };
    assert_int_equal(EVP_KDF_derive(kc, kek, 32, params), 1);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    if (!gcm_open(kek, h.wrap_nonce, h.model_digest, 32, h.wrapped_key, 32, h.wrap_tag, key))
        return false;
    return gcm_open(key, h.nonce, blob, sizeof h, blob + sizeof h, h.payload_bytes,
                    blob + sizeof h + h.payload_bytes, out);
}

/* ------------------------------------------------------------ (a) device.pub */

static void expect_pubkey_refused(const char *text, const char *needle)
{
    uint8_t pub[DZ_X25519_BYTES];
    char path[PATH_MAX];
    struct dk_error err = {{0}};
    assert_int_equal(write_text_file(dir, "bad.pub", text, path, sizeof path), 0);
    assert_int_equal(dz_pubkey_read(path, pub, &err), -1);
    if (!strstr(err.msg, needle) || !strstr(err.msg, "bad.pub"))
        fail_msg("'%s': expected '%s' and the file name, got '%s'", text, needle, err.msg);
}

static void test_pubkey_file(void **state)
{
    (void)state;
    struct device d;
    uint8_t pub[DZ_X25519_BYTES], fp[32];
    char text[256], path[PATH_MAX], hex[DZ_HEX32_CHARS];
    struct dk_error err = {{0}};
    device_new(&d);
    assert_int_equal(dz_pubkey_text(d.pub, text, sizeof text, &err), 0);
    /* Two lines: the comment with SHA256 of the raw key, then the key. */
    assert_int_equal(EVP_Digest(d.pub, 32, fp, NULL, EVP_sha256(), NULL), 1);
    dz_hex(fp, 32, hex);
    char want[256];
    snprintf(want, sizeof want, "# DarkneTZ device key (X25519), fingerprint SHA256:%s\n", hex);
    assert_memory_equal(text, want, strlen(want));
    dz_hex(d.pub, 32, hex);
    snprintf(want + strlen(want), sizeof want - strlen(want), "dz-x25519 %s\n", hex);
    assert_string_equal(text, want);
    assert_int_equal(write_text_file(dir, "ok.pub", text, path, sizeof path), 0);
    assert_int_equal(dz_pubkey_read(path, pub, &err), 0);
    assert_memory_equal(pub, d.pub, 32);

    /* Comments, blank lines, CRLF and upper case are fine; the comment is optional. */
    char loose[256];
    for (char *c = hex; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 'a' + 'A' : *c);
    snprintf(loose, sizeof loose, "\n# a note\r\ndz-x25519   %s  \r\n\n", hex);
    assert_int_equal(write_text_file(dir, "loose.pub", loose, path, sizeof path), 0);
    assert_int_equal(dz_pubkey_read(path, pub, &err), 0);
    assert_memory_equal(pub, d.pub, 32);

    char bad[512];
    expect_pubkey_refused("", "no 'dz-x25519");
    expect_pubkey_refused("# only a comment\n", "no 'dz-x25519");
    expect_pubkey_refused("ssh-ed25519 AAAA\n", "bad.pub:1: expected 'dz-x25519");
    expect_pubkey_refused("dz-x25519 0011\n", "bad.pub:1: the key has 2 bytes");
    snprintf(bad, sizeof bad, "dz-x25519 %s00\n", hex);
    expect_pubkey_refused(bad, "the key has 33 bytes");
    snprintf(bad, sizeof bad, "dz-x25519 %.63s\n", hex);
    expect_pubkey_refused(bad, "not hex digits");
    snprintf(bad, sizeof bad, "dz-x25519 %.62szz\n", hex);
    expect_pubkey_refused(bad, "bad.pub:1: the key is not hex digits");
    snprintf(bad, sizeof bad, "dz-x25519 %s\ndz-x25519 %s\n", hex, hex);
    expect_pubkey_refused(bad, "bad.pub:2: a second key");
    snprintf(bad, sizeof bad, "dz-x25519 %s extra\n", hex);
    expect_pubkey_refused(bad, "unexpected text after the key");
    /* A fingerprint comment that does not match the key: the file was altered. */
    memcpy(bad, text, strlen(text) + 1);
    char *key = strstr(bad, "dz-x25519 ") + 10;
    key[0] = key[0] == '0' ? '1' : '0';
    expect_pubkey_refused(bad, "bad.pub:1: the fingerprint does not match the key");
    EVP_PKEY_free(d.key);
}

/* ---------------------------------------------------------- (b) the blob itself */

static void test_owner_seal_opens_on_its_device(void **state)
{
    (void)state;
    struct device d, other;
    struct dz_owner_seal s;
    struct dz_sealed_header h;
    float payload[1000], back[1000];
    uint8_t *blob = NULL, *blob2 = NULL;
    size_t size = 0, size2 = 0;
    struct dk_error err = {{0}};
    device_new(&d);
    device_new(&other);
    for (size_t i = 0; i < 1000; i++)
        payload[i] = (float)i * 0.37f - 11.0f;
    memset(&s, 0, sizeof s);
    memcpy(s.device_pub, d.pub, 32);
    for (int i = 0; i < 32; i++)
        s.model_digest[i] = (uint8_t)(i * 7 + 1);
    s.first = 2;
    s.last = 5;
    s.n_layers = 9;
    s.seen = 0x100000002ull;
    s.model_version = 3;
    s.policy = (struct dz_policy){.modes = DZ_MODE_INFER,
                                  .output = DZ_OUTPUT_TOPK,
                                  .top_k_max = 5,
                                  .batch_min = 1,
                                  .batch_max = 1,
                                  .subdivisions_max = 1};
    assert_int_equal(dz_owner_seal(&s, payload, 1000, &blob, &size, &err), 0);
    assert_int_equal(size, 260 + 4000 + 16);
    memcpy(&h, blob, sizeof h);
    assert_int_equal(h.magic, DZ_SEALED_MAGIC);
    assert_int_equal(h.version, DZ_TA_PROTOCOL_VERSION);
    assert_memory_equal(h.model_digest, s.model_digest, 32);
    assert_int_equal(h.first, 2);
    assert_int_equal(h.last, 5);
    assert_int_equal(h.n_layers, 9);
    assert_int_equal(h.payload_bytes, 4000);
    assert_int_equal(h.seen_lo, 2);
    assert_int_equal(h.seen_hi, 1);
    assert_int_equal(h.model_version, 3);
    assert_int_equal(h.key_kind, DZ_KEY_OWNER);
    assert_memory_equal(&h.policy, &s.policy, sizeof h.policy);
    assert_int_equal(h.reserved, 0);
    /* Offsets as the README's table gives them. */
    assert_int_equal(offsetof(struct dz_sealed_header, model_version), 64);
    assert_int_equal(offsetof(struct dz_sealed_header, policy), 72);
    assert_int_equal(offsetof(struct dz_sealed_header, device_fingerprint), 120);
    assert_int_equal(offsetof(struct dz_sealed_header, ephemeral_public), 152);
    assert_int_equal(offsetof(struct dz_sealed_header, wrap_nonce), 184);
    assert_int_equal(offsetof(struct dz_sealed_header, wrapped_key), 196);
    assert_int_equal(offsetof(struct dz_sealed_header, wrap_tag), 228);
    assert_int_equal(offsetof(struct dz_sealed_header, nonce), 244);
    assert_int_equal(offsetof(struct dz_sealed_header, reserved), 256);

    assert_true(device_open(&d, blob, size, (uint8_t *)back));
    assert_memory_equal(back, payload, sizeof payload);
    /* The plaintext is nowhere in the blob (8 bytes: 4 match random bytes by chance). */
    for (size_t i = 1; i < 1000; i += 37)
        assert_null(memmem(blob, size, &payload[i], 2 * sizeof payload[0]));
    /* Another device cannot open it, even claiming to be this one. */
    assert_false(device_open(&other, blob, size, (uint8_t *)back));
    memcpy(other.pub, d.pub, 32);
    assert_false(device_open(&other, blob, size, (uint8_t *)back));
    /* Every header byte is authenticated. */
    for (size_t i = 0; i < sizeof h; i++) {
        blob[i] ^= 0x01;
        if (device_open(&d, blob, size, (uint8_t *)back))
            fail_msg("header byte %zu flipped and the blob still opens", i);
        blob[i] ^= 0x01;
    }
    assert_true(device_open(&d, blob, size, (uint8_t *)back));
    /* A fresh key, ephemeral pair and nonces per seal. */
    assert_int_equal(dz_owner_seal(&s, payload, 1000, &blob2, &size2, &err), 0);
    assert_int_equal(size2, size);
    assert_memory_not_equal(blob2 + 152, blob + 152, 260 - 152);
    assert_memory_not_equal(blob2 + 260, blob + 260, 4000);
    /* Refusals. */
    free(blob2);
    blob2 = NULL;
    s.model_version = 0;
    assert_int_equal(dz_owner_seal(&s, payload, 1000, &blob2, &size2, &err), -1);
    assert_non_null(strstr(err.msg, "version"));
    s.model_version = 1;
    memset(s.device_pub, 0, 32); /* a low-order point: the shared secret would be zero */
    free(blob2);
    blob2 = NULL;
    assert_int_equal(dz_owner_seal(&s, payload, 1000, &blob2, &size2, &err), -1);
    assert_non_null(strstr(err.msg, "not a usable X25519 public key"));
    assert_null(blob2);
    free(blob);
    EVP_PKEY_free(d.key);
    EVP_PKEY_free(other.key);
}

/* ------------------------------------------------------------ (c) darknetp seal */

static void test_seal_command(void **state)
{
    (void)state;
    struct device d;
    char args[4 * PATH_MAX], out[1 << 14], path[PATH_MAX + 32];
    unsigned char *plain = NULL, *marked = NULL, *blob = NULL;
    device_new(&d);
    device_file(&d, "device.pub");
    snprintf(args, sizeof args,
             "seal -pp_start 4 -pp_end 10 -version 7 -tee_output topk -t 3 '%s/mnist_lenet.cfg' "
             "'%s/mnist_lenet.weights' device.pub -o model",
             fixture, fixture);
    if (darknetp(args, out, sizeof out) != 0)
        fail_msg("%s:\n%s", args, out);
    assert_non_null(strstr(out, "sealed layers 4..10 of "));
    assert_non_null(strstr(out, "version 7"));
    assert_non_null(strstr(out, "output topk (at most 3 labels), inference only"));

    snprintf(path, sizeof path, "%s/mnist_lenet.weights", fixture);
    long np = read_whole_file(path, &plain);
    snprintf(path, sizeof path, "%s/model.weights", dir);
    long nm = read_whole_file(path, &marked);
    assert_true(np > 0);
    assert_int_equal(nm, np);
    assert_int_equal(np, HEADER_BYTES + 4 * (FRONT_FLOATS + SEGMENT_FLOATS));
    /* major, minor and seen as they were; the revision is the marker of layers 4..10. */
    assert_memory_equal(marked, plain, 8);
    assert_memory_equal(marked + 12, plain + 12, 8);
    int32_t rev;
    memcpy(&rev, marked + 8, 4);
    assert_int_equal((uint32_t)rev, 0x5A000000u | FIRST << 12 | LAST);
    assert_int_equal(rev, dz_sealed_revision(FIRST, LAST));
    assert_memory_equal(marked + HEADER_BYTES, plain + HEADER_BYTES, 4 * FRONT_FLOATS);
    for (long i = HEADER_BYTES + 4 * FRONT_FLOATS; i < nm; i++)
        if (marked[i])
            fail_msg("byte %ld of the protected layers is not zero", i);

    snprintf(path, sizeof path, "%s/model.weights.tz", dir);
    long nb = read_whole_file(path, &blob);
    assert_int_equal(nb, 260 + 4 * SEGMENT_FLOATS + 16);
    struct dz_sealed_header h;
    memcpy(&h, blob, sizeof h);
    assert_int_equal(h.first, FIRST);
    assert_int_equal(h.last, LAST);
    assert_int_equal(h.n_layers, 11);
    assert_int_equal(h.model_version, 7);
    assert_memory_equal(&h.seen_lo, plain + 12, 8);
    assert_int_equal(h.policy.modes, DZ_MODE_INFER);
    assert_int_equal(h.policy.output, DZ_OUTPUT_TOPK);
    assert_int_equal(h.policy.top_k_max, 3);
    assert_int_equal(h.policy.batch_min, 1);
    assert_int_equal(h.policy.batch_max, 1);
    assert_int_equal(h.policy.subdivisions_max, 1);
    assert_true(h.policy.learning_rate_max == 0.0f && h.policy.momentum_max == 0.0f &&
                h.policy.decay_max == 0.0f);
    uint8_t *opened = malloc(h.payload_bytes);
    assert_non_null(opened);
    assert_true(device_open(&d, blob, (size_t)nb, opened));
    assert_memory_equal(opened, plain + HEADER_BYTES + 4 * FRONT_FLOATS, 4 * SEGMENT_FLOATS);
    free(opened);
    /* No temporary left behind. */
    snprintf(args, sizeof args, "ls '%s' | grep -c tmp-", dir);
    assert_int_equal(run_capture(args, out, sizeof out), 1); /* grep: nothing found */

    /* Training allowed: bounds from the cfg unless given. */
    snprintf(args, sizeof args,
             "seal -pp_start 4 -pp_end 10 -allow_train -batch_max 200 -momentum_max 0.5 "
             "-tee_output scores '%s/mnist_lenet.cfg' '%s/mnist_lenet.weights' device.pub "
             "-o train.weights",
             fixture, fixture);
    if (darknetp(args, out, sizeof out) != 0)
        fail_msg("%s:\n%s", args, out);
    free(blob);
    snprintf(path, sizeof path, "%s/train.weights.tz", dir);
    assert_true(read_whole_file(path, &blob) > 0);
    memcpy(&h, blob, sizeof h);
    assert_int_equal(h.model_version, 1);
    assert_int_equal(h.policy.modes, DZ_MODES_ALL);
    assert_int_equal(h.policy.output, DZ_OUTPUT_SCORES);
    assert_int_equal(h.policy.top_k_max, 1);
    assert_int_equal(h.policy.batch_min, 100);
    assert_int_equal(h.policy.batch_max, 200);
    assert_int_equal(h.policy.subdivisions_max, 1);
    assert_true(h.policy.learning_rate_max == 0.01f);
    assert_true(h.policy.momentum_max == 0.5f);
    assert_true(h.policy.decay_max == 0.00005f);
    free(blob);
    free(plain);
    free(marked);
    EVP_PKEY_free(d.key);
}

static void expect_seal_refused(const char *opts, const char *weights, const char *pub,
                                const char *needle)
{
    char args[4 * PATH_MAX], out[1 << 14];
    snprintf(args, sizeof args, "seal %s '%s/mnist_lenet.cfg' '%s' '%s' -o refused", opts, fixture,
             weights, pub);
    int rc = darknetp(args, out, sizeof out);
    if (rc == 0 || !strstr(out, needle))
        fail_msg("'%s' exited %d; expected a refusal with '%s', got:\n%s", args, rc, needle, out);
    snprintf(args, sizeof args, "%s/refused.weights", dir);
    assert_int_not_equal(access(args, F_OK), 0);
}

static void test_seal_refusals(void **state)
{
    (void)state;
    struct device d;
    char weights[PATH_MAX + 32], pub[PATH_MAX + 32], marked[PATH_MAX + 32], args[4 * PATH_MAX];
    char out[1 << 14];
    device_new(&d);
    device_file(&d, "r.pub");
    snprintf(weights, sizeof weights, "%s/mnist_lenet.weights", fixture);
    snprintf(pub, sizeof pub, "%s/r.pub", dir);
    const char *pp = "-pp_start 4 -pp_end 10";

    /* A marked file: a seal's own output or a device's save. */
    snprintf(args, sizeof args, "seal %s '%s/mnist_lenet.cfg' '%s' r.pub -o m", pp, fixture,
             weights);
    assert_int_equal(darknetp(args, out, sizeof out), 0);
    snprintf(marked, sizeof marked, "%s/m.weights", dir);
    expect_seal_refused(pp, marked, pub, "m.weights: marked as sealed (layers 4..10");
    /* The output over an input. */
    snprintf(args, sizeof args,
             "cp '%s' plain.weights && '%s' seal %s '%s/mnist_lenet.cfg' "
             "plain.weights r.pub -o plain 2>&1",
             weights, bin, pp, fixture);
    char cmd[6 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", dir, args);
    assert_int_not_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "-o: plain.weights is the input plain.weights"));
    /* Partitions. */
    expect_seal_refused("-pp_start 4 -pp_end 11", weights, pub, "out of range; ");
    expect_seal_refused("-pp_start 4 -pp_end 11", weights, pub, "layers 0..10");
    expect_seal_refused("-pp_start 10 -pp_end 4", weights, pub, "-pp_start 10 is after");
    expect_seal_refused("-pp_end 4", weights, pub, "seal needs -pp_start");
    /* The device key. */
    assert_int_equal(write_text_file(dir, "short.pub", "dz-x25519 00112233\n", NULL, 0), 0);
    expect_seal_refused(pp, weights, "short.pub", "short.pub:1: the key has 4 bytes");
    assert_int_equal(write_text_file(dir, "junk.pub", "hello\n", NULL, 0), 0);
    expect_seal_refused(pp, weights, "junk.pub", "junk.pub:1: expected 'dz-x25519");
    expect_seal_refused(pp, weights, "missing.pub", "missing.pub: cannot open");
    /* Weights of another size. */
    snprintf(args, sizeof args, "head -c 1000 '%s' > cut.weights", weights);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", dir, args);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    snprintf(marked, sizeof marked, "%s/cut.weights", dir);
    expect_seal_refused(pp, marked, pub, "cut.weights: holds 980 bytes of weights");
    /* Policy options. */
    expect_seal_refused("-pp_start 4 -pp_end 10 -tee_output topk", weights, pub,
                        "-tee_output topk needs -t N");
    expect_seal_refused("-pp_start 4 -pp_end 10 -t 3", weights, pub, "-t N bounds");
    expect_seal_refused("-pp_start 4 -pp_end 10 -tee_output all", weights, pub,
                        "expected top1, topk, rank or scores");
    expect_seal_refused("-pp_start 4 -pp_end 10 -batch_max 8", weights, pub,
                        "give -allow_train too");
    expect_seal_refused("-pp_start 4 -pp_end 10 -allow_train -batch_min 9 -batch_max 8", weights,
                        pub, "policy: batch 9..8");
    expect_seal_refused("-pp_start 4 -pp_end 10 -allow_train -decay_max -1", weights, pub,
                        "-decay_max: expected a finite number >= 0");
    expect_seal_refused("-pp_start 4 -pp_end 10 -allow_train -learning_rate_max", weights, pub,
                        "-learning_rate_max: expected a finite number");
    expect_seal_refused("-pp_start 4 -pp_end 10 -version 0", weights, pub, "-version");
    expect_seal_refused("-pp_start 4 -pp_end 10 -bogus", weights, pub, "unknown option '-bogus'");
    EVP_PKEY_free(d.key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pubkey_file),
        cmocka_unit_test(test_owner_seal_opens_on_its_device),
        cmocka_unit_test(test_seal_command),
        cmocka_unit_test(test_seal_refusals),
    };
    return cmocka_run_group_tests_name("seal", tests, setup, teardown);
}
