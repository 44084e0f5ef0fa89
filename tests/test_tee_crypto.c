/*
 * test_tee_crypto.c - the simulated libutee's GP cryptography (tee/ta/crypto_*.c)
 * against published known answers, and its behaviour on misuse.
 *
 * Known answers: SHA-256 (FIPS 180-2 examples), HMAC-SHA256 (RFC 4231 test
 * cases 1-4), AES-GCM (test cases 2, 3, 4, 5 and 16 of McGrew and Viega's GCM
 * specification, as NIST adopted it), AES ECB/CBC/CTR (NIST SP 800-38A F.1.1,
 * F.2.1, F.5.1), X25519 (RFC 7748 section 6.1) and HKDF-SHA256 (RFC 5869 A.1,
 * A.3). Misuse that GP makes a panic is run in a child process (a panic ends a
 * TA instance); errors GP returns are checked with the sizes they report.
 * Every test ends with no TA heap block left and every freed block wiped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <tee_internal_api.h>
#include <tee_internal_api_extensions.h>

#include "tee_fakes.h"

/* Hex string to bytes; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;

    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;

        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want);

    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
}

/* Each test leaves the TA heap as it found it: empty, and wiped. */
static int heap_clean(void **state)
{
    (void)state;
    assert_int_equal(tsim_fake_heap_live(), 0);
    assert_int_equal(tsim_fake_heap_unwiped_frees(), 0);
    assert_int_equal(tsim_fake_sys_live(), 0);
    return 0;
}

static TEE_ObjectHandle secret_key(uint32_t type, uint32_t max_bits, const uint8_t *key, size_t len)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    TEE_Attribute a;

    assert_int_equal(TEE_AllocateTransientObject(type, max_bits, &k), TEE_SUCCESS);
    TEE_InitRefAttribute(&a, type == TEE_TYPE_HKDF_IKM ? TEE_ATTR_HKDF_IKM : TEE_ATTR_SECRET_VALUE,
                         key, len);
    assert_int_equal(TEE_PopulateTransientObject(k, &a, 1), TEE_SUCCESS);
    return k;
}

static TEE_OperationHandle keyed_op(uint32_t alg, uint32_t mode, uint32_t type, const char *hexkey)
{
    uint8_t key[256];
    size_t len = unhex(hexkey, key);
    TEE_ObjectHandle k = secret_key(type, type == TEE_TYPE_AES ? 256 : 1024, key, len);
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    assert_int_equal(TEE_AllocateOperation(&op, alg, mode, type == TEE_TYPE_AES ? 256 : 1024),
                     TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, k), TEE_SUCCESS);
    TEE_FreeTransientObject(k);
    return op;
}

/* ------------------------------------------------------------------------ */
/* SHA-256                                                                    */

static void test_sha256_known_answers(void **state)
{
    static const struct {
        const char *msg;
        const char *digest;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t out[40];
    size_t len = 0;

    (void)state;
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_SHA256, TEE_MODE_DIGEST, 0), TEE_SUCCESS);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = strlen(v[i].msg);

        /* One call, then the same message in pieces: the operation is reusable. */
        len = sizeof(out);
        assert_int_equal(TEE_DigestDoFinal(op, v[i].msg, n, out, &len), TEE_SUCCESS);
        assert_hex(out, len, v[i].digest);
        for (size_t k = 0; k < n; k++)
            TEE_DigestUpdate(op, v[i].msg + k, 1);
        len = sizeof(out);
        assert_int_equal(TEE_DigestDoFinal(op, NULL, 0, out, &len), TEE_SUCCESS);
        assert_hex(out, len, v[i].digest);
    }

    /* A short buffer: the size needed, and nothing consumed. */
    TEE_DigestUpdate(op, "ab", 2);
    len = 31;
    assert_int_equal(TEE_DigestDoFinal(op, "c", 1, out, &len), TEE_ERROR_SHORT_BUFFER);
    assert_int_equal(len, 32);
    assert_int_equal(TEE_DigestDoFinal(op, "c", 1, out, &len), TEE_SUCCESS);
    assert_hex(out, len, v[0].digest);

    /* Reset drops a half-fed message. */
    TEE_DigestUpdate(op, "zzz", 3);
    TEE_ResetOperation(op);
    len = sizeof(out);
    assert_int_equal(TEE_DigestDoFinal(op, "abc", 3, out, &len), TEE_SUCCESS);
    assert_hex(out, len, v[0].digest);
    TEE_FreeOperation(op);
}

/* ------------------------------------------------------------------------ */
/* HMAC-SHA256                                                                */

static void test_hmac_sha256_rfc4231(void **state)
{
    uint8_t data[64];
    static const struct {
        const char *key;
        const char *data;
        const char *mac;
    } v[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        TEE_OperationHandle op =
            keyed_op(TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, TEE_TYPE_HMAC_SHA256, v[i].key);
        size_t n = unhex(v[i].data, data);
        uint8_t mac[32];
        uint8_t want[32];
        size_t len = 31;

        TEE_MACInit(op, NULL, 0);
        TEE_MACUpdate(op, data, 3);
        assert_int_equal(TEE_MACComputeFinal(op, data + 3, n - 3, mac, &len),
                         TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, 32);
        assert_int_equal(TEE_MACComputeFinal(op, data + 3, n - 3, mac, &len), TEE_SUCCESS);
        assert_hex(mac, len, v[i].mac);

        unhex(v[i].mac, want);
        TEE_MACInit(op, NULL, 0);
        assert_int_equal(TEE_MACCompareFinal(op, data, n, want, 32), TEE_SUCCESS);
        want[31] ^= 1;
        TEE_MACInit(op, NULL, 0);
        assert_int_equal(TEE_MACCompareFinal(op, data, n, want, 32), TEE_ERROR_MAC_INVALID);
        want[31] ^= 1;
        TEE_MACInit(op, NULL, 0);
        assert_int_equal(TEE_MACCompareFinal(op, data, n, want, 16), TEE_ERROR_MAC_INVALID);
        TEE_FreeOperation(op);
    }
}

/* ------------------------------------------------------------------------ */
/* AES-GCM                                                                    */

struct gcm_vector {
    const char *key;
    const char *iv;
    const char *aad;
    const char *pt;
    const char *ct;
    const char *tag;
};

#define GCM_K3 "feffe9928665731c6d6a8f9467308308"
#define GCM_P3                                                                                     \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"     \
    "49a6b525b16aedf5aa0de657ba637b39"
#define GCM_A4 "feedfacedeadbeeffeedfacedeadbeefabaddad2"

static const struct gcm_vector gcm_vectors[] = {
    /* Test case 2 */
    {"00000000000000000000000000000000", "000000000000000000000000", "",
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    /* Test case 3 */
    {GCM_K3, "cafebabefacedbaddecaf888", "", GCM_P3 "1aafd255",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac"
     "84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    /* Test case 4: with AAD */
    {GCM_K3, "cafebabefacedbaddecaf888", GCM_A4, GCM_P3,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac"
     "84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    /* Test case 5: a 64-bit IV */
    {GCM_K3, "cafebabefacedbad", GCM_A4, GCM_P3,
     "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4"
     "896b424989b5e1ebac0f07c23f4598",
     "3612d2e79e3b0785561be14aaca2fccb"},
    /* Test case 16: AES-256 */
    {GCM_K3 GCM_K3, "cafebabefacedbaddecaf888", GCM_A4, GCM_P3,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056"
     "828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

struct gcm_buf {
    uint8_t iv[16], aad[32], pt[80], ct[80], tag[16];
    size_t iv_len, aad_len, pt_len, ct_len, tag_len;
};

static void gcm_load(const struct gcm_vector *v, struct gcm_buf *b)
{
    b->iv_len = unhex(v->iv, b->iv);
    b->aad_len = unhex(v->aad, b->aad);
    b->pt_len = unhex(v->pt, b->pt);
    b->ct_len = unhex(v->ct, b->ct);
    b->tag_len = unhex(v->tag, b->tag);
}

static void test_aes_gcm_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(gcm_vectors) / sizeof(gcm_vectors[0]); i++) {
        const struct gcm_vector *v = &gcm_vectors[i];
        struct gcm_buf b;
        TEE_OperationHandle enc = keyed_op(TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, TEE_TYPE_AES, v->key);
        TEE_OperationHandle dec = keyed_op(TEE_ALG_AES_GCM, TEE_MODE_DECRYPT, TEE_TYPE_AES, v->key);
        uint8_t out[80];
        uint8_t tag[16];
        size_t len = 0;
        size_t tlen = 0;
        size_t split = 0;

        gcm_load(v, &b);
        /* In one final call, and split: AAD in two parts, payload via AEUpdate. */
        assert_int_equal(TEE_AEInit(enc, b.iv, b.iv_len, 128, b.aad_len, b.pt_len), TEE_SUCCESS);
        TEE_AEUpdateAAD(enc, b.aad, b.aad_len);
        len = sizeof(out);
        tlen = sizeof(tag);
        assert_int_equal(TEE_AEEncryptFinal(enc, b.pt, b.pt_len, out, &len, tag, &tlen),
                         TEE_SUCCESS);
        assert_int_equal(len, b.ct_len);
        assert_memory_equal(out, b.ct, len);
        assert_int_equal(tlen, 16);
        assert_memory_equal(tag, b.tag, 16);

        split = b.pt_len / 3;
        assert_int_equal(TEE_AEInit(enc, b.iv, b.iv_len, 128, 0, 0), TEE_SUCCESS);
        TEE_AEUpdateAAD(enc, b.aad, b.aad_len / 2);
        TEE_AEUpdateAAD(enc, b.aad + b.aad_len / 2, b.aad_len - b.aad_len / 2);
        len = sizeof(out);
        assert_int_equal(TEE_AEUpdate(enc, b.pt, split, out, &len), TEE_SUCCESS);
        assert_int_equal(len, split);
        tlen = sizeof(tag);
        len = sizeof(out) - split;
        assert_int_equal(
            TEE_AEEncryptFinal(enc, b.pt + split, b.pt_len - split, out + split, &len, tag, &tlen),
            TEE_SUCCESS);
        assert_memory_equal(out, b.ct, b.ct_len);
        assert_memory_equal(tag, b.tag, 16);

        /* Decrypt, with a tag cut to 96 bits too (GCM's truncation). */
        for (uint32_t bits = 128; bits >= 96; bits -= 32) {
            assert_int_equal(TEE_AEInit(dec, b.iv, b.iv_len, bits, 0, 0), TEE_SUCCESS);
            TEE_AEUpdateAAD(dec, b.aad, b.aad_len);
            len = sizeof(out);
            assert_int_equal(TEE_AEDecryptFinal(dec, b.ct, b.ct_len, out, &len, b.tag, bits / 8),
                             TEE_SUCCESS);
            assert_int_equal(len, b.pt_len);
            assert_memory_equal(out, b.pt, len);
        }
        TEE_FreeOperation(enc);
        TEE_FreeOperation(dec);
    }
}

/* A bad tag, a flipped bit of ciphertext or AAD: MAC_INVALID and the
 * destination untouched (no unauthenticated plaintext released). */
static void test_aes_gcm_rejects_forgeries(void **state)
{
    const struct gcm_vector *v = &gcm_vectors[2];
    TEE_OperationHandle dec = keyed_op(TEE_ALG_AES_GCM, TEE_MODE_DECRYPT, TEE_TYPE_AES, v->key);
    struct gcm_buf b;
    uint8_t out[80];
    uint8_t guard[80];
    size_t len = 0;

    (void)state;
    gcm_load(v, &b);
    memset(guard, 0xA5, sizeof(guard));
    for (int what = 0; what < 5; what++) {
        struct gcm_buf f = b;
        size_t tag_len = 16;

        if (what == 0)
            f.tag[0] ^= 0x01;
        else if (what == 1)
            f.ct[f.ct_len - 1] ^= 0x80;
        else if (what == 2)
            f.aad[3] ^= 0x10;
        else if (what == 3)
            tag_len = 12; /* AEInit said 128 bits */
        else
            f.iv[0] ^= 1;
        memset(out, 0xA5, sizeof(out));
        assert_int_equal(TEE_AEInit(dec, f.iv, f.iv_len, 128, 0, 0), TEE_SUCCESS);
        TEE_AEUpdateAAD(dec, f.aad, f.aad_len);
        len = sizeof(out);
        assert_int_equal(TEE_AEDecryptFinal(dec, f.ct, f.ct_len, out, &len, f.tag, tag_len),
                         TEE_ERROR_MAC_INVALID);
        assert_int_equal(len, 0);
        assert_memory_equal(out, guard, sizeof(out));
    }

    /* In place (source and destination the same buffer): the ciphertext stays. */
    {
        struct gcm_buf f = b;
        uint8_t inplace[80];

        f.tag[15] ^= 0x40;
        memcpy(inplace, f.ct, f.ct_len);
        assert_int_equal(TEE_AEInit(dec, f.iv, f.iv_len, 128, 0, 0), TEE_SUCCESS);
        TEE_AEUpdateAAD(dec, f.aad, f.aad_len);
        len = sizeof(inplace);
        assert_int_equal(TEE_AEDecryptFinal(dec, inplace, f.ct_len, inplace, &len, f.tag, 16),
                         TEE_ERROR_MAC_INVALID);
        assert_memory_equal(inplace, b.ct, b.ct_len);
        f.tag[15] ^= 0x40;
        assert_int_equal(TEE_AEInit(dec, f.iv, f.iv_len, 128, 0, 0), TEE_SUCCESS);
        TEE_AEUpdateAAD(dec, f.aad, f.aad_len);
        len = sizeof(inplace);
        assert_int_equal(TEE_AEDecryptFinal(dec, inplace, f.ct_len, inplace, &len, f.tag, 16),
                         TEE_SUCCESS);
        assert_memory_equal(inplace, b.pt, b.pt_len);
    }
    TEE_FreeOperation(dec);
}

static void test_aes_gcm_sizes_and_errors(void **state)
{
    const struct gcm_vector *v = &gcm_vectors[1];
    TEE_OperationHandle enc = keyed_op(TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, TEE_TYPE_AES, v->key);
    TEE_OperationHandle dec = keyed_op(TEE_ALG_AES_GCM, TEE_MODE_DECRYPT, TEE_TYPE_AES, v->key);
    struct gcm_buf b;
    uint8_t out[80];
    uint8_t tag[16];
    size_t len = 0;
    size_t tlen = 0;
    static const uint32_t bad_tags[] = {0, 32, 64, 88, 95, 100, 136, 256};

    (void)state;
    gcm_load(v, &b);
    for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++)
        assert_int_equal(TEE_AEInit(enc, b.iv, b.iv_len, bad_tags[i], 0, 0),
                         TEE_ERROR_NOT_SUPPORTED);
    for (uint32_t bits = 96; bits <= 128; bits += 8) {
        assert_int_equal(TEE_AEInit(enc, b.iv, b.iv_len, bits, 0, 0), TEE_SUCCESS);
        /* Both outputs short: both sizes reported, nothing consumed. */
        len = 10;
        tlen = 4;
        assert_int_equal(TEE_AEEncryptFinal(enc, b.pt, b.pt_len, out, &len, tag, &tlen),
                         TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, b.pt_len);
        assert_int_equal(tlen, bits / 8);
        len = 7;
        assert_int_equal(TEE_AEUpdate(enc, b.pt, 8, out, &len), TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, 8);
        len = sizeof(out);
        tlen = sizeof(tag);
        assert_int_equal(TEE_AEEncryptFinal(enc, b.pt, b.pt_len, out, &len, tag, &tlen),
                         TEE_SUCCESS);
        assert_int_equal(tlen, bits / 8);
        assert_memory_equal(out, b.ct, b.ct_len);
        assert_memory_equal(tag, b.tag, tlen);
    }
    assert_int_equal(TEE_AEInit(dec, b.iv, b.iv_len, 128, 0, 0), TEE_SUCCESS);
    len = 3;
    assert_int_equal(TEE_AEDecryptFinal(dec, b.ct, b.ct_len, out, &len, b.tag, 16),
                     TEE_ERROR_SHORT_BUFFER);
    assert_int_equal(len, b.ct_len);
    len = sizeof(out);
    assert_int_equal(TEE_AEDecryptFinal(dec, b.ct, b.ct_len, out, &len, b.tag, 16), TEE_SUCCESS);
    assert_memory_equal(out, b.pt, b.pt_len);
    TEE_FreeOperation(enc);
    TEE_FreeOperation(dec);
}

/* ------------------------------------------------------------------------ */
/* AES ECB / CBC / CTR                                                        */

static void test_aes_ciphers_sp800_38a(void **state)
{
    static const struct {
        uint32_t alg;
        const char *iv;
        const char *ct;
    } v[] = {
        {TEE_ALG_AES_ECB_NOPAD, "",
         "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf"},
        {TEE_ALG_AES_CBC_NOPAD, "000102030405060708090a0b0c0d0e0f",
         "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"},
        {TEE_ALG_AES_CTR, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
         "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"},
    };
    const char *key = "2b7e151628aed2a6abf7158809cf4f3c";
    uint8_t pt[32];
    uint8_t iv[16];
    uint8_t out[48];
    uint8_t back[48];
    size_t len = 0;
    size_t total = 0;

    (void)state;
    unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51", pt);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        TEE_OperationHandle enc = keyed_op(v[i].alg, TEE_MODE_ENCRYPT, TEE_TYPE_AES, key);
        TEE_OperationHandle dec = keyed_op(v[i].alg, TEE_MODE_DECRYPT, TEE_TYPE_AES, key);
        size_t iv_len = unhex(v[i].iv, iv);
        size_t block = v[i].alg == TEE_ALG_AES_CTR ? 1 : 16;

        /* 5 bytes, then 20, then the last 7 at the final. */
        TEE_CipherInit(enc, iv_len ? iv : NULL, iv_len);
        len = sizeof(out);
        assert_int_equal(TEE_CipherUpdate(enc, pt, 5, out, &len), TEE_SUCCESS);
        assert_int_equal(len, block == 1 ? 5 : 0);
        total = len;
        len = block == 1 ? 19 : 15; /* one byte short of what 20 more bytes give */
        assert_int_equal(TEE_CipherUpdate(enc, pt + 5, 20, out + total, &len),
                         TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, block == 1 ? 20 : 16);
        assert_int_equal(TEE_CipherUpdate(enc, pt + 5, 20, out + total, &len), TEE_SUCCESS);
        total += len;
        len = 2;
        assert_int_equal(TEE_CipherDoFinal(enc, pt + 25, 7, out + total, &len),
                         TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, 32 - total);
        assert_int_equal(TEE_CipherDoFinal(enc, pt + 25, 7, out + total, &len), TEE_SUCCESS);
        total += len;
        assert_hex(out, total, v[i].ct);

        /* Decrypt in one go, in place. */
        memcpy(back, out, 32);
        TEE_CipherInit(dec, iv_len ? iv : NULL, iv_len);
        len = sizeof(back);
        assert_int_equal(TEE_CipherDoFinal(dec, back, 32, back, &len), TEE_SUCCESS);
        assert_int_equal(len, 32);
        assert_memory_equal(back, pt, 32);
        TEE_FreeOperation(enc);
        TEE_FreeOperation(dec);
    }
}

/* ------------------------------------------------------------------------ */
/* Key derivation                                                             */

static TEE_ObjectHandle x25519_pair(const char *priv_hex, const char *pub_hex)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    uint8_t priv[32];
    uint8_t pub[32];
    TEE_Attribute a[2];

    unhex(priv_hex, priv);
    unhex(pub_hex, pub);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_X25519_KEYPAIR, 256, &k), TEE_SUCCESS);
    TEE_InitRefAttribute(&a[0], TEE_ATTR_X25519_PRIVATE_VALUE, priv, 32);
    TEE_InitRefAttribute(&a[1], TEE_ATTR_X25519_PUBLIC_VALUE, pub, 32);
    assert_int_equal(TEE_PopulateTransientObject(k, a, 2), TEE_SUCCESS);
    return k;
}

#define ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define X25519_SHARED "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

/* The shared secret of key with peer's public value, as a generic secret. */
static void x25519_derive(TEE_ObjectHandle key, const char *peer_hex, uint8_t out[32])
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_ObjectHandle secret = TEE_HANDLE_NULL;
    TEE_ObjectInfo info;
    TEE_Attribute a;
    uint8_t peer[32];
    size_t len = 32;

    unhex(peer_hex, peer);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_X25519, TEE_MODE_DERIVE, 256), TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, key), TEE_SUCCESS);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_GENERIC_SECRET, 256, &secret),
                     TEE_SUCCESS);
    TEE_InitRefAttribute(&a, TEE_ATTR_X25519_PUBLIC_VALUE, peer, 32);
    TEE_DeriveKey(op, &a, 1, secret);
    assert_int_equal(TEE_GetObjectInfo1(secret, &info), TEE_SUCCESS);
    assert_int_equal(info.objectSize, 256);
    assert_int_equal(info.handleFlags & TEE_HANDLE_FLAG_INITIALIZED, TEE_HANDLE_FLAG_INITIALIZED);
    assert_int_equal(TEE_GetObjectBufferAttribute(secret, TEE_ATTR_SECRET_VALUE, out, &len),
                     TEE_SUCCESS);
    assert_int_equal(len, 32);
    TEE_FreeTransientObject(secret);
    TEE_FreeOperation(op);
}

static void test_x25519_rfc7748(void **state)
{
    TEE_ObjectHandle alice = x25519_pair(ALICE_PRIV, ALICE_PUB);
    TEE_ObjectHandle bob = x25519_pair(BOB_PRIV, BOB_PUB);
    TEE_ObjectHandle gen = TEE_HANDLE_NULL;
    uint8_t s1[32];
    uint8_t s2[32];
    uint8_t pub[32];
    char pub_hex[65];
    size_t len = sizeof(pub);

    (void)state;
    x25519_derive(alice, BOB_PUB, s1);
    assert_hex(s1, 32, X25519_SHARED);
    x25519_derive(bob, ALICE_PUB, s2);
    assert_hex(s2, 32, X25519_SHARED);

    /* A generated pair agrees with Alice on a secret too; its private part
     * stays in unless the object is extractable (it is by default). */
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_X25519_KEYPAIR, 256, &gen), TEE_SUCCESS);
    assert_int_equal(TEE_GenerateKey(gen, 256, NULL, 0), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectBufferAttribute(gen, TEE_ATTR_X25519_PUBLIC_VALUE, pub, &len),
                     TEE_SUCCESS);
    for (int i = 0; i < 32; i++)
        snprintf(pub_hex + 2 * i, 3, "%02x", pub[i]);
    x25519_derive(alice, pub_hex, s1);
    x25519_derive(gen, ALICE_PUB, s2);
    assert_memory_equal(s1, s2, 32);

    TEE_FreeTransientObject(alice);
    TEE_FreeTransientObject(bob);
    TEE_FreeTransientObject(gen);
}

static void test_x25519_inconsistent_pair(void **state)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    uint8_t priv[32];
    uint8_t pub[32];
    TEE_Attribute a[2];
    TEE_ObjectInfo info;

    (void)state;
    unhex(ALICE_PRIV, priv);
    unhex(BOB_PUB, pub);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_X25519_KEYPAIR, 256, &k), TEE_SUCCESS);
    TEE_InitRefAttribute(&a[0], TEE_ATTR_X25519_PRIVATE_VALUE, priv, 32);
    TEE_InitRefAttribute(&a[1], TEE_ATTR_X25519_PUBLIC_VALUE, pub, 32);
    assert_int_equal(TEE_PopulateTransientObject(k, a, 2), TEE_ERROR_BAD_PARAMETERS);
    TEE_InitRefAttribute(&a[1], TEE_ATTR_X25519_PUBLIC_VALUE, pub, 31);
    assert_int_equal(TEE_PopulateTransientObject(k, a, 2), TEE_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEE_GetObjectInfo1(k, &info), TEE_SUCCESS);
    assert_int_equal(info.handleFlags & TEE_HANDLE_FLAG_INITIALIZED, 0);
    TEE_FreeTransientObject(k);
}

static void hkdf(const char *ikm_hex, const uint8_t *salt, size_t salt_len, const uint8_t *info,
                 size_t info_len, uint32_t salt_id, size_t okm_len, uint8_t *out)
{
    uint8_t ikm[64];
    size_t n = unhex(ikm_hex, ikm);
    TEE_ObjectHandle k = secret_key(TEE_TYPE_HKDF_IKM, 512, ikm, n);
    TEE_ObjectHandle okm = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_Attribute p[3];
    uint32_t np = 0;
    size_t len = okm_len;

    assert_int_equal(
        TEE_AllocateOperation(&op, TEE_ALG_HKDF_SHA256_DERIVE_KEY, TEE_MODE_DERIVE, 512),
        TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, k), TEE_SUCCESS);
    assert_int_equal(
        TEE_AllocateTransientObject(TEE_TYPE_GENERIC_SECRET, (uint32_t)okm_len * 8, &okm),
        TEE_SUCCESS);
    if (salt)
        TEE_InitRefAttribute(&p[np++], salt_id, salt, salt_len);
    if (info)
        TEE_InitRefAttribute(&p[np++], TEE_ATTR_HKDF_INFO, info, info_len);
    TEE_InitValueAttribute(&p[np++], TEE_ATTR_HKDF_OKM_LENGTH, (uint32_t)okm_len, 0);
    TEE_DeriveKey(op, p, np, okm);
    assert_int_equal(TEE_GetObjectBufferAttribute(okm, TEE_ATTR_SECRET_VALUE, out, &len),
                     TEE_SUCCESS);
    assert_int_equal(len, okm_len);
    TEE_FreeTransientObject(okm);
    TEE_FreeTransientObject(k);
    TEE_FreeOperation(op);
}

static void test_hkdf_sha256_rfc5869(void **state)
{
    uint8_t salt[13];
    uint8_t info[10];
    uint8_t out[42];
    const char *ikm = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

    (void)state;
    unhex("000102030405060708090a0b0c", salt);
    unhex("f0f1f2f3f4f5f6f7f8f9", info);
    hkdf(ikm, salt, sizeof(salt), info, sizeof(info), TEE_ATTR_HKDF_SALT, 42, out);
    assert_hex(out, 42,
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b88718"
               "5865");
    /* OP-TEE's older id for the salt gives the same. */
    memset(out, 0, sizeof(out));
    hkdf(ikm, salt, sizeof(salt), info, sizeof(info), 0xD00002C0, 42, out);
    assert_hex(out, 42,
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b88718"
               "5865");
    /* A.3: no salt, no info (absent and empty alike). */
    hkdf(ikm, NULL, 0, NULL, 0, TEE_ATTR_HKDF_SALT, 42, out);
    assert_hex(out, 42,
               "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a"
               "96c8");
    hkdf(ikm, salt, 0, info, 0, TEE_ATTR_HKDF_SALT, 42, out);
    assert_hex(out, 42,
               "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a"
               "96c8");
}

/* ------------------------------------------------------------------------ */
/* RSAES-OAEP (SHA-256)                                                       */

/* A 1024-bit key and a ciphertext made for it by another implementation
 * (Python's cryptography: OAEP, SHA-256, MGF1-SHA-256, label "darknetz-wrap"). */
#define RSA_N                                                                                      \
    "b2003829fe26c80b5eaedf2ee7437aa3a7994a96eadc598d76bd3c63a2ae27e27cf4955eeb1e576cd31e2af15f"   \
    "43265b37aba602f92ae550eb847856db4095d989de9f0b7b9c76ab4d56b20e3e2633acbf8980399a01c753ba7c"   \
    "973cf2577fb5df272e30aa444d1ad3e798b766a8399313210e2615b4f89a4b074cf509950567"
#define RSA_E "010001"
#define RSA_D                                                                                      \
    "7d10b86590e3f0c444577c0ab984e90359bbd3f3abbafcd4ef6bd0a574e506b314f6c888b38c5302ec6712e71a"   \
    "f6d4595d0926908a3f8075d5b4f2d49c2289e5ed362c08aaf6475c89b961f298c5b71e0880a629d3c615e24d06"   \
    "e925b4cdbf4efdc812ac1a1136d13960e0f7119ed39fad86692cf3c586ccb338f262745ddef9"
#define RSA_P                                                                                      \
    "e5c9e8b73ce7761382cc7b848da28fec95e2fc40215119c9c5f06bcce0398d0a456f12e826fde77161369fd0ef"   \
    "2ad56d20232e8dc71d425edb0c9f437b34abeb"
#define RSA_Q                                                                                      \
    "c64e0bde7757a3a37460ee0388ac3f436e588a10aa8b02244b47dbd25ff1427edf9d01c22997a3a763d03b4c50"   \
    "70b11e02642047346bd53291e0af2cfd899975"
#define RSA_DP                                                                                     \
    "e3c9615db38c272a7430cc08bc767781a99b973ee34807ee52bf5fbd7a50d29569fb0f9cfe7a17a1f722350ee2"   \
    "e76d267e032234fd3aedfe25dabf4e1fa638fd"
#define RSA_DQ                                                                                     \
    "3776b8c71e25faf4caa619ac0f5bedcdd45d1b3092229314c7a16f9025997af9b55d5a928dc385d85988722d64"   \
    "0a40df9dd797579307ddf768e9a8d5328c7bc9"
#define RSA_QINV                                                                                   \
    "9fb6e6f4e9a3eed7cb64b0f4a4fca9bc7b097d7eb99f29b9ff040970acef35f94a7571ff0ff91d702d561c0d5e"   \
    "640a0116d22e7f5e3d27148fd02d5d411d2bd3"
#define RSA_CT                                                                                     \
    "786a63601d49b8b3a1a13d53ea493004dd44aeff299882e64f75dd55bc2595487c8f9598256758bcd57087a866"   \
    "acacb9bd0ff451bce50ab9017825485b112697bc9cd58130be228da77106e38fa8aab85289b7e333af5ae7d7c7"   \
    "095abda0514a0b1cdb1262371ddfa24695dd9ee6784d79af0d9adfe115d4ba974b735d898ca6"
#define RSA_MSG "a 32-byte model key, wrapped...!"
#define RSA_LABEL "darknetz-wrap"

/* Populates k with the pair above: count 3 leaves out the CRT numbers, q_hex
 * stands for the second prime. */
static TEE_Result rsa_populate(TEE_ObjectHandle k, uint32_t count, const char *q_hex)
{
    static const uint32_t ids[] = {TEE_ATTR_RSA_MODULUS,          TEE_ATTR_RSA_PUBLIC_EXPONENT,
                                   TEE_ATTR_RSA_PRIVATE_EXPONENT, TEE_ATTR_RSA_PRIME1,
                                   TEE_ATTR_RSA_PRIME2,           TEE_ATTR_RSA_EXPONENT1,
                                   TEE_ATTR_RSA_EXPONENT2,        TEE_ATTR_RSA_COEFFICIENT};
    const char *hex[] = {RSA_N, RSA_E, RSA_D, RSA_P, q_hex, RSA_DP, RSA_DQ, RSA_QINV};
    static uint8_t val[8][130];
    TEE_Attribute a[8];

    for (uint32_t i = 0; i < count; i++)
        TEE_InitRefAttribute(&a[i], ids[i], val[i], unhex(hex[i], val[i]));
    return TEE_PopulateTransientObject(k, a, count);
}

static TEE_OperationHandle rsa_op(uint32_t mode, TEE_ObjectHandle key, uint32_t bits)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256, mode, bits),
                     TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, key), TEE_SUCCESS);
    return op;
}

static void test_rsa_oaep_known_key(void **state)
{
    TEE_ObjectHandle pair = TEE_HANDLE_NULL;
    TEE_ObjectHandle pub = TEE_HANDLE_NULL;
    TEE_OperationHandle dec = TEE_HANDLE_NULL;
    TEE_OperationHandle enc = TEE_HANDLE_NULL;
    TEE_ObjectInfo info;
    TEE_Attribute label;
    uint8_t ct[128];
    uint8_t ct2[128];
    uint8_t out[128];
    uint8_t msg[64] = {0};
    size_t len = 0;

    (void)state;
    /* With only n, e, d, and with the CRT numbers too. */
    for (uint32_t count = 3; count <= 8; count += 5) {
        assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 1024, &pair),
                         TEE_SUCCESS);
        assert_int_equal(rsa_populate(pair, count, RSA_Q), TEE_SUCCESS);
        assert_int_equal(TEE_GetObjectInfo1(pair, &info), TEE_SUCCESS);
        assert_int_equal(info.objectSize, 1024);
        dec = rsa_op(TEE_MODE_DECRYPT, pair, 1024);
        unhex(RSA_CT, ct);
        TEE_InitRefAttribute(&label, TEE_ATTR_RSA_OAEP_LABEL, RSA_LABEL, strlen(RSA_LABEL));
        len = 31;
        assert_int_equal(TEE_AsymmetricDecrypt(dec, &label, 1, ct, 128, out, &len),
                         TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, 32);
        assert_int_equal(TEE_AsymmetricDecrypt(dec, &label, 1, ct, 128, out, &len), TEE_SUCCESS);
        assert_int_equal(len, 32);
        assert_memory_equal(out, RSA_MSG, 32);
        /* Without the label, with one bit changed, or cut short: refused. */
        len = sizeof(out);
        assert_int_equal(TEE_AsymmetricDecrypt(dec, NULL, 0, ct, 128, out, &len),
                         TEE_ERROR_CIPHERTEXT_INVALID);
        ct[77] ^= 4;
        len = sizeof(out);
        assert_int_equal(TEE_AsymmetricDecrypt(dec, &label, 1, ct, 128, out, &len),
                         TEE_ERROR_CIPHERTEXT_INVALID);
        len = sizeof(out);
        assert_int_equal(TEE_AsymmetricDecrypt(dec, &label, 1, ct, 127, out, &len),
                         TEE_ERROR_CIPHERTEXT_INVALID);

        /* Encrypt with the public half, copied from the pair: randomized, decryptable. */
        assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_PUBLIC_KEY, 1024, &pub),
                         TEE_SUCCESS);
        assert_int_equal(TEE_CopyObjectAttributes1(pub, pair), TEE_SUCCESS);
        len = sizeof(out);
        assert_int_equal(
            TEE_GetObjectBufferAttribute(pub, TEE_ATTR_RSA_PRIVATE_EXPONENT, out, &len),
            TEE_ERROR_ITEM_NOT_FOUND);
        enc = rsa_op(TEE_MODE_ENCRYPT, pub, 1024);
        len = 100;
        assert_int_equal(TEE_AsymmetricEncrypt(enc, NULL, 0, RSA_MSG, 32, ct, &len),
                         TEE_ERROR_SHORT_BUFFER);
        assert_int_equal(len, 128);
        assert_int_equal(TEE_AsymmetricEncrypt(enc, NULL, 0, RSA_MSG, 32, ct, &len), TEE_SUCCESS);
        assert_int_equal(len, 128);
        assert_int_equal(TEE_AsymmetricEncrypt(enc, NULL, 0, RSA_MSG, 32, ct2, &len), TEE_SUCCESS);
        assert_memory_not_equal(ct, ct2, 128);
        len = sizeof(out);
        assert_int_equal(TEE_AsymmetricDecrypt(dec, NULL, 0, ct2, 128, out, &len), TEE_SUCCESS);
        assert_int_equal(len, 32);
        assert_memory_equal(out, RSA_MSG, 32);
        /* At most k - 2 * 32 - 2 = 62 bytes fit. */
        len = sizeof(ct);
        assert_int_equal(TEE_AsymmetricEncrypt(enc, NULL, 0, msg, 62, ct, &len), TEE_SUCCESS);
        len = sizeof(ct);
        assert_int_equal(TEE_AsymmetricEncrypt(enc, NULL, 0, msg, 63, ct, &len),
                         TEE_ERROR_BAD_PARAMETERS);
        TEE_FreeOperation(enc);
        TEE_FreeOperation(dec);
        TEE_FreeTransientObject(pub);
        TEE_FreeTransientObject(pair);
    }
}

static void test_rsa_generate_and_check(void **state)
{
    TEE_ObjectHandle pair = TEE_HANDLE_NULL;
    TEE_OperationHandle enc = TEE_HANDLE_NULL;
    TEE_OperationHandle dec = TEE_HANDLE_NULL;
    TEE_Attribute e;
    uint8_t three[1] = {3};
    uint8_t even[1] = {4};
    uint8_t buf[256];
    uint8_t out[256];
    size_t len = 0;

    (void)state;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 2048, &pair), TEE_SUCCESS);
    /* A bad public exponent is bad data. */
    TEE_InitRefAttribute(&e, TEE_ATTR_RSA_PUBLIC_EXPONENT, even, 1);
    assert_int_equal(TEE_GenerateKey(pair, 1024, &e, 1), TEE_ERROR_BAD_PARAMETERS);
    TEE_InitRefAttribute(&e, TEE_ATTR_RSA_PUBLIC_EXPONENT, three, 1);
    assert_int_equal(TEE_GenerateKey(pair, 1024, &e, 1), TEE_SUCCESS);
    len = sizeof(buf);
    assert_int_equal(TEE_GetObjectBufferAttribute(pair, TEE_ATTR_RSA_PUBLIC_EXPONENT, buf, &len),
                     TEE_SUCCESS);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 3);
    len = sizeof(buf);
    assert_int_equal(TEE_GetObjectBufferAttribute(pair, TEE_ATTR_RSA_MODULUS, buf, &len),
                     TEE_SUCCESS);
    assert_int_equal(len, 128);
    assert_true(buf[0] & 0x80);

    /* The pair encrypts for itself too (its public half is taken). */
    enc = rsa_op(TEE_MODE_ENCRYPT, pair, 2048);
    dec = rsa_op(TEE_MODE_DECRYPT, pair, 2048);
    len = sizeof(buf);
    assert_int_equal(TEE_AsymmetricEncrypt(enc, NULL, 0, "hi", 2, buf, &len), TEE_SUCCESS);
    len = sizeof(out);
    assert_int_equal(TEE_AsymmetricDecrypt(dec, NULL, 0, buf, 128, out, &len), TEE_SUCCESS);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "hi", 2);
    TEE_FreeOperation(enc);
    TEE_FreeOperation(dec);

    /* A prime that does not divide n: inconsistent, refused, object stays empty. */
    TEE_ResetTransientObject(pair);
    assert_int_equal(rsa_populate(pair, 8, RSA_P), TEE_ERROR_BAD_PARAMETERS);
    assert_int_equal(rsa_populate(pair, 8, RSA_Q), TEE_SUCCESS);
    TEE_FreeTransientObject(pair);
}

/* ------------------------------------------------------------------------ */
/* Objects                                                                    */

static void test_object_attributes(void **state)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    TEE_ObjectHandle copy = TEE_HANDLE_NULL;
    TEE_ObjectInfo info;
    TEE_Attribute a;
    uint8_t key[32];
    uint8_t out[32];
    size_t len = 0;

    (void)state;
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &k), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(k, &info), TEE_SUCCESS);
    assert_int_equal(info.objectType, TEE_TYPE_AES);
    assert_int_equal(info.maxObjectSize, 256);
    assert_int_equal(info.objectSize, 0);
    assert_int_equal(info.handleFlags, 0);

    /* An AES key of a length AES has not: bad data, object stays empty. */
    TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, key, 20);
    assert_int_equal(TEE_PopulateTransientObject(k, &a, 1), TEE_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEE_GetObjectInfo1(k, &info), TEE_SUCCESS);
    assert_int_equal(info.handleFlags, 0);

    TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, key, 24);
    assert_int_equal(TEE_PopulateTransientObject(k, &a, 1), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(k, &info), TEE_SUCCESS);
    assert_int_equal(info.objectSize, 192);
    assert_int_equal(info.handleFlags, TEE_HANDLE_FLAG_INITIALIZED);
    assert_int_equal(info.objectUsage, 0xFFFFFFFF);

    len = 23;
    assert_int_equal(TEE_GetObjectBufferAttribute(k, TEE_ATTR_SECRET_VALUE, out, &len),
                     TEE_ERROR_SHORT_BUFFER);
    assert_int_equal(len, 24);
    assert_int_equal(TEE_GetObjectBufferAttribute(k, TEE_ATTR_SECRET_VALUE, out, &len),
                     TEE_SUCCESS);
    assert_memory_equal(out, key, 24);
    len = sizeof(out);
    assert_int_equal(TEE_GetObjectBufferAttribute(k, TEE_ATTR_X25519_PUBLIC_VALUE, out, &len),
                     TEE_ERROR_ITEM_NOT_FOUND);

    /* Copy, then reset: the copy keeps the key. */
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &copy), TEE_SUCCESS);
    assert_int_equal(TEE_CopyObjectAttributes1(copy, k), TEE_SUCCESS);
    TEE_ResetTransientObject(k);
    assert_int_equal(TEE_GetObjectInfo1(k, &info), TEE_SUCCESS);
    assert_int_equal(info.handleFlags, 0);
    assert_int_equal(info.objectSize, 0);
    len = sizeof(out);
    assert_int_equal(TEE_GetObjectBufferAttribute(copy, TEE_ATTR_SECRET_VALUE, out, &len),
                     TEE_SUCCESS);
    assert_int_equal(len, 24);
    assert_memory_equal(out, key, 24);

    /* Usage restriction only narrows. */
    assert_int_equal(TEE_RestrictObjectUsage1(copy, TEE_USAGE_ENCRYPT | TEE_USAGE_EXTRACTABLE),
                     TEE_SUCCESS);
    assert_int_equal(TEE_RestrictObjectUsage1(copy, 0xFFFFFFFF), TEE_SUCCESS);
    assert_int_equal(TEE_GetObjectInfo1(copy, &info), TEE_SUCCESS);
    assert_int_equal(info.objectUsage, TEE_USAGE_ENCRYPT | TEE_USAGE_EXTRACTABLE);

    /* Generated keys: the size asked, fresh bytes each time. */
    TEE_ResetTransientObject(k);
    assert_int_equal(TEE_GenerateKey(k, 256, NULL, 0), TEE_SUCCESS);
    len = sizeof(out);
    assert_int_equal(TEE_GetObjectBufferAttribute(k, TEE_ATTR_SECRET_VALUE, out, &len),
                     TEE_SUCCESS);
    assert_int_equal(len, 32);
    TEE_ResetTransientObject(k);
    assert_int_equal(TEE_GenerateKey(k, 256, NULL, 0), TEE_SUCCESS);
    len = sizeof(key);
    assert_int_equal(TEE_GetObjectBufferAttribute(k, TEE_ATTR_SECRET_VALUE, key, &len),
                     TEE_SUCCESS);
    assert_memory_not_equal(out, key, 32);

    TEE_CloseObject(k); /* closing a transient object frees it */
    TEE_FreeTransientObject(copy);
    TEE_FreeTransientObject(TEE_HANDLE_NULL);
    TEE_CloseObject(TEE_HANDLE_NULL);
}

static void test_allocation_errors(void **state)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    (void)state;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 100, &k), TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 512, &k), TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_HMAC_SHA256, 128, &k),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_X25519_KEYPAIR, 255, &k),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_DES, 64, &k), TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_DATA, 0, &k), TEE_ERROR_NOT_SUPPORTED);
    assert_null(k);

    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 100),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_MAC, 128),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_SHA256, TEE_MODE_ENCRYPT, 0),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_X25519, TEE_MODE_DERIVE, 255),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_SHA1, TEE_MODE_DIGEST, 0),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(
        TEE_AllocateOperation(&op, TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA1, TEE_MODE_ENCRYPT, 2048),
        TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(
        TEE_AllocateOperation(&op, TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256, TEE_MODE_SIGN, 2048),
        TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 8192, &k),
                     TEE_ERROR_NOT_SUPPORTED);
    assert_int_equal(TEE_IsAlgorithmSupported(TEE_ALG_AES_GCM, TEE_CRYPTO_ELEMENT_NONE),
                     TEE_SUCCESS);
    assert_int_equal(TEE_IsAlgorithmSupported(TEE_ALG_SHA1, TEE_CRYPTO_ELEMENT_NONE),
                     TEE_ERROR_NOT_SUPPORTED);

    /* The TA heap cap: a key store that does not fit is OUT_OF_MEMORY. */
    tsim_fake_heap_set_limit(200);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_GENERIC_SECRET, 4096, &k),
                     TEE_ERROR_OUT_OF_MEMORY);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, 1024),
                     TEE_ERROR_OUT_OF_MEMORY);
    tsim_fake_heap_set_limit(0);
    assert_null(k);
}

/* ------------------------------------------------------------------------ */
/* Misuse: GP panics                                                          */

static TEE_OperationHandle gcm_op(uint32_t mode)
{
    return keyed_op(TEE_ALG_AES_GCM, mode, TEE_TYPE_AES, GCM_K3);
}

static const uint8_t zeros[64];

static void m_ae_update_before_init(void *arg)
{
    TEE_OperationHandle op = gcm_op(TEE_MODE_ENCRYPT);
    uint8_t out[16];
    size_t len = sizeof(out);

    (void)arg;
    TEE_AEUpdate(op, zeros, 16, out, &len);
}

static void m_aad_after_payload(void *arg)
{
    TEE_OperationHandle op = gcm_op(TEE_MODE_ENCRYPT);
    uint8_t out[16];
    size_t len = sizeof(out);

    (void)arg;
    assert_int_equal(TEE_AEInit(op, zeros, 12, 128, 0, 0), TEE_SUCCESS);
    assert_int_equal(TEE_AEUpdate(op, zeros, 16, out, &len), TEE_SUCCESS);
    TEE_AEUpdateAAD(op, zeros, 4);
}

static void m_ae_init_while_active(void *arg)
{
    TEE_OperationHandle op = gcm_op(TEE_MODE_ENCRYPT);
    uint8_t out[16];
    size_t len = sizeof(out);

    (void)arg;
    assert_int_equal(TEE_AEInit(op, zeros, 12, 128, 0, 0), TEE_SUCCESS);
    assert_int_equal(TEE_AEUpdate(op, zeros, 16, out, &len), TEE_SUCCESS);
    (void)TEE_AEInit(op, zeros, 12, 128, 0, 0);
}

static void m_encrypt_final_on_decrypt(void *arg)
{
    TEE_OperationHandle op = gcm_op(TEE_MODE_DECRYPT);
    uint8_t out[16];
    uint8_t tag[16];
    size_t len = sizeof(out);
    size_t tlen = sizeof(tag);

    (void)arg;
    assert_int_equal(TEE_AEInit(op, zeros, 12, 128, 0, 0), TEE_SUCCESS);
    (void)TEE_AEEncryptFinal(op, zeros, 16, out, &len, tag, &tlen);
}

static void m_ae_init_null_nonce(void *arg)
{
    (void)arg;
    (void)TEE_AEInit(gcm_op(TEE_MODE_ENCRYPT), NULL, 12, 128, 0, 0);
}

static void m_ae_init_without_key(void *arg)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 256),
                     TEE_SUCCESS);
    (void)TEE_AEInit(op, zeros, 12, 128, 0, 0);
}

static void m_cipher_update_before_init(void *arg)
{
    TEE_OperationHandle op =
        keyed_op(TEE_ALG_AES_CBC_NOPAD, TEE_MODE_ENCRYPT, TEE_TYPE_AES, GCM_K3);
    uint8_t out[16];
    size_t len = sizeof(out);

    (void)arg;
    (void)TEE_CipherUpdate(op, zeros, 16, out, &len);
}

static void m_cbc_partial_block(void *arg)
{
    TEE_OperationHandle op =
        keyed_op(TEE_ALG_AES_CBC_NOPAD, TEE_MODE_ENCRYPT, TEE_TYPE_AES, GCM_K3);
    uint8_t out[32];
    size_t len = sizeof(out);

    (void)arg;
    TEE_CipherInit(op, zeros, 16);
    (void)TEE_CipherDoFinal(op, zeros, 17, out, &len);
}

static void m_cbc_bad_iv(void *arg)
{
    (void)arg;
    TEE_CipherInit(keyed_op(TEE_ALG_AES_CBC_NOPAD, TEE_MODE_ENCRYPT, TEE_TYPE_AES, GCM_K3), zeros,
                   12);
}

static void m_mac_update_before_init(void *arg)
{
    (void)arg;
    TEE_MACUpdate(keyed_op(TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, TEE_TYPE_HMAC_SHA256, GCM_K3 GCM_K3),
                  zeros, 4);
}

static void m_digest_on_mac_op(void *arg)
{
    (void)arg;
    TEE_DigestUpdate(
        keyed_op(TEE_ALG_HMAC_SHA256, TEE_MODE_MAC, TEE_TYPE_HMAC_SHA256, GCM_K3 GCM_K3), zeros, 4);
}

static void m_key_wrong_usage(void *arg)
{
    uint8_t key[16] = {0};
    TEE_ObjectHandle k = secret_key(TEE_TYPE_AES, 128, key, 16);
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_RestrictObjectUsage1(k, TEE_USAGE_DECRYPT), TEE_SUCCESS);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 128),
                     TEE_SUCCESS);
    (void)TEE_SetOperationKey(op, k);
}

static void m_key_too_big(void *arg)
{
    uint8_t key[32] = {0};
    TEE_ObjectHandle k = secret_key(TEE_TYPE_AES, 256, key, 32);
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 128),
                     TEE_SUCCESS);
    (void)TEE_SetOperationKey(op, k);
}

static void m_key_wrong_type(void *arg)
{
    uint8_t key[32] = {0};
    TEE_ObjectHandle k = secret_key(TEE_TYPE_GENERIC_SECRET, 256, key, 32);
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 256),
                     TEE_SUCCESS);
    (void)TEE_SetOperationKey(op, k);
}

static void m_set_key_while_initialized(void *arg)
{
    TEE_OperationHandle op = gcm_op(TEE_MODE_ENCRYPT);
    uint8_t key[16] = {0};

    (void)arg;
    assert_int_equal(TEE_AEInit(op, zeros, 12, 128, 0, 0), TEE_SUCCESS);
    (void)TEE_SetOperationKey(op, secret_key(TEE_TYPE_AES, 128, key, 16));
}

static void m_key_on_digest(void *arg)
{
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t key[16] = {0};

    (void)arg;
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_SHA256, TEE_MODE_DIGEST, 0), TEE_SUCCESS);
    (void)TEE_SetOperationKey(op, secret_key(TEE_TYPE_AES, 128, key, 16));
}

static void m_freed_operation(void *arg)
{
    TEE_OperationHandle op = gcm_op(TEE_MODE_ENCRYPT);
    TEE_OperationInfo info;

    (void)arg;
    TEE_FreeOperation(op);
    TEE_GetOperationInfo(op, &info);
}

static void m_forged_object(void *arg)
{
    TEE_ObjectInfo info;
    uint64_t fake[64] = {0};

    (void)arg;
    (void)TEE_GetObjectInfo1((TEE_ObjectHandle)(void *)fake, &info);
}

static void m_null_object_info(void *arg)
{
    TEE_ObjectInfo info;

    (void)arg;
    (void)TEE_GetObjectInfo1(TEE_HANDLE_NULL, &info);
}

static void m_double_free(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 128, &k), TEE_SUCCESS);
    TEE_FreeTransientObject(k);
    TEE_FreeTransientObject(k);
}

static void m_populate_missing_attr(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    uint8_t v[32] = {9};
    TEE_Attribute a;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_X25519_KEYPAIR, 256, &k), TEE_SUCCESS);
    TEE_InitRefAttribute(&a, TEE_ATTR_X25519_PRIVATE_VALUE, v, 32);
    (void)TEE_PopulateTransientObject(k, &a, 1);
}

static void m_populate_foreign_attr(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    uint8_t v[16] = {0};
    TEE_Attribute a[2];

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 128, &k), TEE_SUCCESS);
    TEE_InitRefAttribute(&a[0], TEE_ATTR_SECRET_VALUE, v, 16);
    TEE_InitRefAttribute(&a[1], TEE_ATTR_RSA_MODULUS, v, 16);
    (void)TEE_PopulateTransientObject(k, a, 2);
}

static void m_populate_too_big(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    uint8_t v[32] = {0};
    TEE_Attribute a;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 128, &k), TEE_SUCCESS);
    TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, v, 32);
    (void)TEE_PopulateTransientObject(k, &a, 1);
}

static void m_populate_twice(void *arg)
{
    uint8_t v[16] = {0};
    TEE_ObjectHandle k = secret_key(TEE_TYPE_AES, 128, v, 16);
    TEE_Attribute a;

    (void)arg;
    TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, v, 16);
    (void)TEE_PopulateTransientObject(k, &a, 1);
}

static void m_extract_protected(void *arg)
{
    uint8_t v[16] = {0};
    TEE_ObjectHandle k = secret_key(TEE_TYPE_AES, 128, v, 16);
    size_t len = sizeof(v);

    (void)arg;
    assert_int_equal(TEE_RestrictObjectUsage1(k, TEE_USAGE_ENCRYPT), TEE_SUCCESS);
    (void)TEE_GetObjectBufferAttribute(k, TEE_ATTR_SECRET_VALUE, v, &len);
}

static void m_value_attr_as_ref(void *arg)
{
    TEE_Attribute a;

    (void)arg;
    TEE_InitRefAttribute(&a, TEE_ATTR_HKDF_OKM_LENGTH, NULL, 0);
}

static void m_generate_bad_size(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &k), TEE_SUCCESS);
    (void)TEE_GenerateKey(k, 160, NULL, 0);
}

static void m_derive_into_aes(void *arg)
{
    TEE_ObjectHandle alice = x25519_pair(ALICE_PRIV, ALICE_PUB);
    TEE_ObjectHandle out = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t peer[32];
    TEE_Attribute a;

    (void)arg;
    unhex(BOB_PUB, peer);
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_X25519, TEE_MODE_DERIVE, 256), TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, alice), TEE_SUCCESS);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &out), TEE_SUCCESS);
    TEE_InitRefAttribute(&a, TEE_ATTR_X25519_PUBLIC_VALUE, peer, 32);
    TEE_DeriveKey(op, &a, 1, out);
}

static void m_derive_low_order_point(void *arg)
{
    TEE_ObjectHandle alice = x25519_pair(ALICE_PRIV, ALICE_PUB);
    TEE_ObjectHandle out = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_Attribute a;

    (void)arg;
    assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_X25519, TEE_MODE_DERIVE, 256), TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, alice), TEE_SUCCESS);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_GENERIC_SECRET, 256, &out), TEE_SUCCESS);
    /* The all-zero point gives an all-zero secret, which is refused. */
    TEE_InitRefAttribute(&a, TEE_ATTR_X25519_PUBLIC_VALUE, zeros, 32);
    TEE_DeriveKey(op, &a, 1, out);
}

static void m_hkdf_too_long(void *arg)
{
    uint8_t ikm[16] = {1};
    TEE_ObjectHandle k = secret_key(TEE_TYPE_HKDF_IKM, 128, ikm, 16);
    TEE_ObjectHandle out = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    TEE_Attribute a;

    (void)arg;
    assert_int_equal(
        TEE_AllocateOperation(&op, TEE_ALG_HKDF_SHA256_DERIVE_KEY, TEE_MODE_DERIVE, 128),
        TEE_SUCCESS);
    assert_int_equal(TEE_SetOperationKey(op, k), TEE_SUCCESS);
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_GENERIC_SECRET, 128, &out), TEE_SUCCESS);
    TEE_InitValueAttribute(&a, TEE_ATTR_HKDF_OKM_LENGTH, 17, 0); /* more than out holds */
    TEE_DeriveKey(op, &a, 1, out);
}

static void m_rsa_partial_crt(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 1024, &k), TEE_SUCCESS);
    (void)rsa_populate(k, 5, RSA_Q); /* n, e, d, p, q without dp, dq, qinv */
}

static void m_rsa_modulus_too_big(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 1000, &k), TEE_SUCCESS);
    (void)rsa_populate(k, 8, RSA_Q);
}

static void m_rsa_decrypt_with_public_key(void *arg)
{
    TEE_ObjectHandle pub = TEE_HANDLE_NULL;
    uint8_t n[128];
    uint8_t e[3];
    TEE_Attribute a[2];
    TEE_OperationHandle op = TEE_HANDLE_NULL;

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_PUBLIC_KEY, 1024, &pub), TEE_SUCCESS);
    TEE_InitRefAttribute(&a[0], TEE_ATTR_RSA_MODULUS, n, unhex(RSA_N, n));
    TEE_InitRefAttribute(&a[1], TEE_ATTR_RSA_PUBLIC_EXPONENT, e, unhex(RSA_E, e));
    assert_int_equal(TEE_PopulateTransientObject(pub, a, 2), TEE_SUCCESS);
    assert_int_equal(
        TEE_AllocateOperation(&op, TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256, TEE_MODE_DECRYPT, 1024),
        TEE_SUCCESS);
    (void)TEE_SetOperationKey(op, pub);
}

static void m_rsa_encrypt_on_decrypt_op(void *arg)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    uint8_t out[128];
    size_t len = sizeof(out);

    (void)arg;
    assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, 1024, &k), TEE_SUCCESS);
    assert_int_equal(rsa_populate(k, 8, RSA_Q), TEE_SUCCESS);
    (void)TEE_AsymmetricEncrypt(rsa_op(TEE_MODE_DECRYPT, k, 1024), NULL, 0, "x", 1, out, &len);
}

static void m_random_null(void *arg)
{
    (void)arg;
    TEE_GenerateRandom(NULL, 4);
}

static void m_allocate_null(void *arg)
{
    (void)arg;
    (void)TEE_AllocateOperation(NULL, TEE_ALG_SHA256, TEE_MODE_DIGEST, 0);
}

static void m_none(void *arg)
{
    (void)arg;
}

static void test_misuse_panics(void **state)
{
    static const struct {
        const char *name;
        void (*fn)(void *);
    } cases[] = {
        {"AEUpdate before AEInit", m_ae_update_before_init},
        {"AEUpdateAAD after payload", m_aad_after_payload},
        {"AEInit while active", m_ae_init_while_active},
        {"AEEncryptFinal on a decrypt operation", m_encrypt_final_on_decrypt},
        {"AEInit NULL nonce", m_ae_init_null_nonce},
        {"AEInit without key", m_ae_init_without_key},
        {"CipherUpdate before CipherInit", m_cipher_update_before_init},
        {"CBC final with a partial block", m_cbc_partial_block},
        {"CBC IV of 12 bytes", m_cbc_bad_iv},
        {"MACUpdate before MACInit", m_mac_update_before_init},
        {"DigestUpdate on a MAC operation", m_digest_on_mac_op},
        {"key without the usage", m_key_wrong_usage},
        {"key larger than maxKeySize", m_key_too_big},
        {"key of another type", m_key_wrong_type},
        {"SetOperationKey while initialized", m_set_key_while_initialized},
        {"key on a digest", m_key_on_digest},
        {"freed operation handle", m_freed_operation},
        {"forged object handle", m_forged_object},
        {"NULL object handle", m_null_object_info},
        {"double free", m_double_free},
        {"populate without a mandatory attribute", m_populate_missing_attr},
        {"populate with a foreign attribute", m_populate_foreign_attr},
        {"populate beyond maxObjectSize", m_populate_too_big},
        {"populate twice", m_populate_twice},
        {"extract a protected attribute", m_extract_protected},
        {"value attribute id as a reference", m_value_attr_as_ref},
        {"GenerateKey of an AES-160 key", m_generate_bad_size},
        {"derive into an AES object", m_derive_into_aes},
        {"X25519 with a low-order point", m_derive_low_order_point},
        {"HKDF longer than the output object", m_hkdf_too_long},
        {"RSA pair with part of the CRT numbers", m_rsa_partial_crt},
        {"RSA modulus beyond maxObjectSize", m_rsa_modulus_too_big},
        {"RSA decryption with a public key", m_rsa_decrypt_with_public_key},
        {"AsymmetricEncrypt on a decrypt operation", m_rsa_encrypt_on_decrypt_op},
        {"GenerateRandom into NULL", m_random_null},
        {"AllocateOperation into NULL", m_allocate_null},
    };

    (void)state;
    assert_false(tsim_fake_panics(m_none, NULL)); /* the detector itself */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!tsim_fake_panics(cases[i].fn, NULL))
            fail_msg("no TEE_Panic: %s", cases[i].name);
    }
}

/* The same misuse repeated does not leak: each failing call is clean. */
static void test_error_paths_do_not_leak(void **state)
{
    TEE_ObjectHandle k = TEE_HANDLE_NULL;
    TEE_OperationHandle op = TEE_HANDLE_NULL;
    uint8_t key[20] = {0};
    TEE_Attribute a;

    (void)state;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 100, &k),
                         TEE_ERROR_NOT_SUPPORTED);
        assert_int_equal(TEE_AllocateOperation(&op, TEE_ALG_AES_GCM, TEE_MODE_ENCRYPT, 100),
                         TEE_ERROR_NOT_SUPPORTED);
        assert_int_equal(TEE_AllocateTransientObject(TEE_TYPE_AES, 256, &k), TEE_SUCCESS);
        TEE_InitRefAttribute(&a, TEE_ATTR_SECRET_VALUE, key, sizeof(key));
        assert_int_equal(TEE_PopulateTransientObject(k, &a, 1), TEE_ERROR_BAD_PARAMETERS);
        TEE_FreeTransientObject(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sha256_known_answers, heap_clean),
        cmocka_unit_test_teardown(test_hmac_sha256_rfc4231, heap_clean),
        cmocka_unit_test_teardown(test_aes_gcm_known_answers, heap_clean),
        cmocka_unit_test_teardown(test_aes_gcm_rejects_forgeries, heap_clean),
        cmocka_unit_test_teardown(test_aes_gcm_sizes_and_errors, heap_clean),
        cmocka_unit_test_teardown(test_aes_ciphers_sp800_38a, heap_clean),
        cmocka_unit_test_teardown(test_x25519_rfc7748, heap_clean),
        cmocka_unit_test_teardown(test_x25519_inconsistent_pair, heap_clean),
        cmocka_unit_test_teardown(test_hkdf_sha256_rfc5869, heap_clean),
        cmocka_unit_test_teardown(test_rsa_oaep_known_key, heap_clean),
        cmocka_unit_test_teardown(test_rsa_generate_and_check, heap_clean),
        cmocka_unit_test_teardown(test_object_attributes, heap_clean),
        cmocka_unit_test_teardown(test_allocation_errors, heap_clean),
        cmocka_unit_test_teardown(test_misuse_panics, heap_clean),
        cmocka_unit_test_teardown(test_error_paths_do_not_leak, heap_clean),
    };

    return cmocka_run_group_tests_name("tee_crypto", tests, NULL, NULL);
}
