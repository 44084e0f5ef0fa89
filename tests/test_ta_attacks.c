/*
 * test_ta_attacks.c - issue 7's five attacks, done as a hostile normal world would, with raw
 * protocol 2 commands through the GP Client API against the simulated TA. Each must now be
 * refused (TEE_ERROR_ACCESS_DENIED or TEE_ERROR_BAD_STATE) and leave the TA usable:
 *  1. stale update buffers: a BACKWARD on a victim's sealed parameters, a LOAD_PLAIN, then an
 *     UPDATE used to write the victim's inner weights into the attacker's parameters;
 *  2. a training session as a score oracle: inference-only blobs refuse training, and a
 *     second training FORWARD needs an UPDATE first;
 *  3. the output policy chosen by the normal world: a top1 blob refuses rank and scores;
 *  4. rollback of the owner's model version (owner blobs built here with OpenSSL, exactly as
 *     darknetz_ta.h specifies: X25519, HKDF-SHA256, AES-256-GCM);
 *  5. a blob loaded into a session with other training bounds or output policy.
 * Also: owner blobs for another device, flipped header bytes, SAVE_SEALED wider than the
 * session, DZ_OUTPUT_SCORES, the rate bound of UPDATE. Every test gets its own secure
 * storage (DZ_TEE_STORAGE), so the device key and the rollback records start fresh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "host/seal_model.h"
#include "ta/include/dz_wire.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

/* A fresh secure storage and console for each test: a new device. */
static int env_setup(void **state)
{
    (void)state;
    return tee_env_setup(&env);
}

static int env_teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    return 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static void fill(float *x, size_t n, float lo, float hi)
{
    test_rng_fill(&rng_state, x, n, lo, hi);
}

static bool quick(void)
{
    return getenv("DNN_TEST_QUICK") != NULL;
}

/* ------------------------------------------------------------------ networks */

/* Attack 1: four linear [connected] 4 -> 4 layers; the TA holds layers 1..2, so the
 * segment's output and the delta at its output cross (a segment that ended the network would
 * let out labels only and take no delta, and the attack could not be tried as the issue
 * describes it). */
static struct dnn_net_config leak_cfg;
static struct dnn_layer_spec leak_specs[4];

static void init_leak_net(float momentum)
{
    memset(&leak_cfg, 0, sizeof(leak_cfg));
    leak_cfg.batch = 1;
    leak_cfg.subdivisions = 1;
    leak_cfg.h = 1;
    leak_cfg.w = 1;
    leak_cfg.c = 4;
    leak_cfg.learning_rate = 1;
    leak_cfg.momentum = momentum;
    leak_cfg.decay = 0;
    leak_cfg.policy = DNN_POLICY_CONSTANT;
    leak_cfg.max_batches = 1000;
    for (int i = 0; i < 4; i++)
        leak_specs[i] = (struct dnn_layer_spec){
            .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 4};
}

static struct seg leak_seg(bool training)
{
    return (struct seg){.cfg = &leak_cfg,
                        .specs = leak_specs,
                        .n_layers = 4,
                        .first = 1,
                        .last = 2,
                        .batch = 1,
                        .training = training,
                        .output_policy = DZ_OUTPUT_TOP1,
                        .seed = 7};
}

/* Attacks 2, 3, 5: connected 4 -> 6 leaky (normal world), then in the TA connected 6 -> 3,
 * softmax, cost: the segment ends the network, so only the output policy's values leave. */
enum { CLASSES = 3, S_IN = 6 };
static struct dnn_net_config sc_cfg;
static struct dnn_layer_spec sc_specs[4];

static void init_score_net(void)
{
    memset(&sc_cfg, 0, sizeof(sc_cfg));
    sc_cfg.batch = 4;
    sc_cfg.subdivisions = 1;
    sc_cfg.h = 1;
    sc_cfg.w = 1;
    sc_cfg.c = 4;
    sc_cfg.learning_rate = 0.1f;
    sc_cfg.momentum = 0.9f;
    sc_cfg.decay = 0.0005f;
    sc_cfg.policy = DNN_POLICY_CONSTANT;
    sc_cfg.max_batches = 1000;
    sc_specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = S_IN};
    sc_specs[1] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = CLASSES};
    sc_specs[2] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
    sc_specs[3] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_COST, .cost_type = DNN_COST_SSE, .cost_scale = 1};
}

/* Layers 1..3 of the score net under @cfg (a copy of sc_cfg with other training keys). */
static struct seg score_seg(const struct dnn_net_config *cfg, uint32_t batch, bool training,
                            uint32_t output, uint32_t top_k)
{
    return (struct seg){.cfg = cfg,
                        .specs = sc_specs,
                        .n_layers = 4,
                        .first = 1,
                        .last = 3,
                        .batch = batch,
                        .training = training,
                        .output_policy = output,
                        .top_k = top_k,
                        .seed = 0x5EED};
}

/* ------------------------------------------------------------------ helpers */

static void open_ok(struct ta *t, const struct seg *g)
{
    size_t size = 0;
    uint8_t *blob = make_blob(g, &size);
    ta_start(t);
    assert_int_equal(ta_open_model(t, blob, size, NULL), TEEC_SUCCESS);
    free(blob);
}

/* The segment's parameters at random, in .weights order; *np gets their count. */
static float *random_params(const struct seg *g, size_t *np)
{
    struct dnn_network *ref = reference(g);
    *np = param_count(ref);
    float *p = malloc(*np * sizeof(float));
    assert_non_null(p);
    fill(p, *np, -1, 1);
    dnn_network_free(ref);
    return p;
}

/* A device blob: @p loaded in plain into a session of @g, sealed with @policy (NULL: the
 * session's own). Free with free(). */
static uint8_t *device_blob(const struct seg *g, const float *p, size_t np, uint64_t seen,
                            const struct dz_policy *policy, size_t *size)
{
    struct ta t;
    open_ok(&t, g);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), seen), TEEC_SUCCESS);
    *size = 0;
    assert_int_equal(ta_save_policy(&t, NULL, size, policy), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *blob = malloc(*size);
    assert_non_null(blob);
    assert_int_equal(ta_save_policy(&t, blob, size, policy), TEEC_SUCCESS);
    ta_stop(&t);
    return blob;
}

/* The policy the session of @g asks for (dz_policy_of_request on its header). */
static void request_policy(const struct seg *g, struct dz_policy *p)
{
    size_t size = 0;
    uint8_t *blob = make_blob(g, &size);
    dz_policy_of_request(blob_header(blob), p);
    free(blob);
}

/* Per-image input floats and what FORWARD without DZ_FORWARD_TRAIN returns, in bytes. */
static void forward_sizes(const struct seg *g, size_t *in_bytes, size_t *out_bytes)
{
    struct dnn_network *ref = reference(g);
    const bool ends = g->last == g->n_layers - 1;
    const size_t classes = ref->layers[dnn_network_output_index(ref)].outputs;
    *in_bytes = g->batch * ref->layers[0].inputs * sizeof(float);
    if (!ends)
        *out_bytes = g->batch * ref->layers[ref->n - 1].outputs * sizeof(float);
    else if (g->output_policy == DZ_OUTPUT_SCORES)
        *out_bytes = g->batch * classes * sizeof(float);
    else
        *out_bytes = g->batch * sizeof(struct dz_prediction);
    dnn_network_free(ref);
}

/* The TA lives on: VERSION answers and an inference FORWARD succeeds. */
static void assert_usable(struct ta *t, const struct seg *g)
{
    size_t in = 0, outb = 0;
    forward_sizes(g, &in, &outb);
    float *x = calloc(1, in);
    void *y = calloc(1, outb);
    assert_non_null(x);
    assert_non_null(y);
    ta_version(t, NULL);
    size_t out = outb;
    assert_int_equal(ta_forward(t, x, in, NULL, 0, 0, y, &out), TEEC_SUCCESS);
    assert_int_equal(out, outb);
    free(y);
    free(x);
}

/* The predictions of an end segment for input @x equal the engine's with parameters @p
 * (NULL: the seed's) under the session's output policy. */
static void assert_predicts(struct ta *t, const struct seg *g, const float *p, const float *x)
{
    struct dnn_network *ref = reference(g);
    size_t in = 0, outb = 0;
    forward_sizes(g, &in, &outb);
    if (p)
        params_set(ref, p);
    uint8_t *y = malloc(outb);
    assert_non_null(y);
    size_t out = outb;
    assert_int_equal(ta_forward(t, x, in, NULL, 0, 0, y, &out), TEEC_SUCCESS);
    assert_int_equal(out, outb);
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    const float *scores = ref->layers[dnn_network_output_index(ref)].output;
    if (g->output_policy == DZ_OUTPUT_SCORES) {
        assert_memory_equal(y, scores, outb);
    } else {
        const uint32_t k = g->output_policy == DZ_OUTPUT_TOP1 ? 1
                           : g->output_policy == DZ_OUTPUT_TOPK
                               ? (g->top_k < CLASSES ? g->top_k : CLASSES)
                               : CLASSES;
        int idx[CLASSES];
        for (size_t b = 0; b < g->batch; b++) {
            struct dz_prediction pred;
            memcpy(&pred, y + b * sizeof(pred), sizeof(pred));
            dnn_top_k(scores + b * CLASSES, CLASSES, k, idx);
            assert_int_equal(pred.count, k);
            for (uint32_t j = 0; j < DZ_MAX_LABELS; j++)
                assert_int_equal(pred.labels[j], j < k ? idx[j] : -1);
        }
    }
    free(y);
    dnn_network_free(ref);
}

/* ---------------------------------------------------------- owner blobs (OpenSSL) */

static void sha256(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len = 0;
    assert_non_null(md);
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(md, a, a_len), 1);
    if (b_len)
        assert_int_equal(EVP_DigestUpdate(md, b, b_len), 1);
    assert_int_equal(EVP_DigestFinal_ex(md, out, &len), 1);
    assert_int_equal(len, 32);
    EVP_MD_CTX_free(md);
}

/* darknetz_ta.h's model digest: SHA-256 over the segment's wire specs, their tree group table,
 * then the partition and every layer's input and output shape (dz_wire_shape_bytes). */
static void model_digest(const struct seg *g, uint8_t digest[32])
{
    const size_t n = g->last - g->first + 1;
    struct dz_wire_spec *w = calloc(n, sizeof(*w));
    struct dnn_network *ref = reference(g);
    const size_t shape_bytes = dz_wire_shape_size(ref->n);
    uint8_t *shapes = calloc(1, shape_bytes);
    assert_non_null(w);
    assert_non_null(shapes);
    for (size_t i = 0; i < n; i++)
        dz_wire_encode_spec(&g->specs[g->first + i], &w[i]);
    /* the tree group table right after the specs, in the same hashed run of bytes */
    const size_t words = dz_wire_tree_words(&g->specs[g->first], n);
    w = realloc(w, n * sizeof(*w) + words * sizeof(uint32_t));
    assert_non_null(w);
    dz_wire_encode_tree(&g->specs[g->first], n, (uint32_t *)(void *)(w + n));
    dz_wire_shape_bytes(g->first, g->last, (uint32_t)g->n_layers, ref->layers, ref->n, shapes);
    sha256(w, n * sizeof(*w) + words * sizeof(uint32_t), shapes, shape_bytes, digest);
    free(shapes);
    free(w);
    dnn_network_free(ref);
}

/* AES-256-GCM of @in (@len bytes) with a 12-byte nonce and @aad; 16-byte tag. */
static void gcm_seal(const uint8_t key[32], const uint8_t nonce[12], const void *aad,
                     size_t aad_len, const void *in, size_t len, uint8_t *out, uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len), 1);
    if (len)
        assert_int_equal(EVP_EncryptUpdate(c, out, &n, in, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + len, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
    EVP_CIPHER_CTX_free(c);
}

/* A fresh X25519 key pair; @pub gets its public value. */
static EVP_PKEY *x25519_keygen(uint8_t pub[32])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    size_t len = 32;
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &len), 1);
    assert_int_equal(len, 32);
    return k;
}

/* kek = HKDF-SHA256(ikm = X25519(eph, dev), salt = eph_pub || dev_pub, info, 32 bytes). */
static void provision_kek(EVP_PKEY *eph, const uint8_t eph_pub[32], const uint8_t dev_pub[32],
                          uint8_t kek[32])
{
    EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, dev_pub, 32);
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(eph, NULL);
    uint8_t shared[32], salt[64];
    size_t len = sizeof(shared);
    assert_non_null(peer);
    assert_non_null(dc);
    assert_int_equal(EVP_PKEY_derive_init(dc), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(dc, peer), 1);
    assert_int_equal(EVP_PKEY_derive(dc, shared, &len), 1);
    assert_int_equal(len, 32);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(peer);

    memcpy(salt, eph_pub, 32);
    memcpy(salt + 32, dev_pub, 32);
    EVP_PKEY_CTX *h = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    assert_non_null(h);
    assert_int_equal(EVP_PKEY_derive_init(h), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(h, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(h, salt, (int)sizeof(salt)), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(h, shared, (int)sizeof(shared)), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(h, (const unsigned char *)DZ_PROVISION_LABEL,
                                                 (int)strlen(DZ_PROVISION_LABEL)),
                     1);
    len = 32;
    assert_int_equal(EVP_PKEY_derive(h, kek, &len), 1);
    assert_int_equal(len, 32);
    EVP_PKEY_CTX_free(h);
}

/*
 * The model owner's `darknetp seal` for the device whose public value is @dev_pub: layers
 * first..last of @g with parameters @p, release @model_version, policy @pol. Returns the
 * blob (header || ciphertext || tag), *size its bytes. Free with free().
 */
static uint8_t *owner_blob(const struct seg *g, const float *p, size_t np,
                           const uint8_t dev_pub[32], uint32_t model_version,
                           const struct dz_policy *pol, uint64_t seen, size_t *size)
{
    struct dz_sealed_header h;
    uint8_t content_key[32], kek[32];
    const size_t payload = np * sizeof(float);

    memset(&h, 0, sizeof(h));
    h.magic = DZ_SEALED_MAGIC;
    h.version = DZ_TA_PROTOCOL_VERSION;
    model_digest(g, h.model_digest);
    h.first = g->first;
    h.last = g->last;
    h.n_layers = (uint32_t)g->n_layers;
    h.payload_bytes = (uint32_t)payload;
    h.seen_lo = (uint32_t)seen;
    h.seen_hi = (uint32_t)(seen >> 32);
    h.model_version = model_version;
    h.key_kind = DZ_KEY_OWNER;
    h.policy = *pol;
    sha256(dev_pub, 32, NULL, 0, h.device_fingerprint);

    EVP_PKEY *eph = x25519_keygen(h.ephemeral_public);
    provision_kek(eph, h.ephemeral_public, dev_pub, kek);
    EVP_PKEY_free(eph);
    assert_int_equal(RAND_bytes(content_key, sizeof(content_key)), 1);
    assert_int_equal(RAND_bytes(h.wrap_nonce, sizeof(h.wrap_nonce)), 1);
    gcm_seal(kek, h.wrap_nonce, h.model_digest, sizeof(h.model_digest), content_key, 32,
             h.wrapped_key, h.wrap_tag);
    assert_int_equal(RAND_bytes(h.nonce, sizeof(h.nonce)), 1);

    *size = sizeof(h) + payload + DZ_SEALED_TAG_BYTES;
    uint8_t *blob = malloc(*size);
    assert_non_null(blob);
    memcpy(blob, &h, sizeof(h));
    gcm_seal(content_key, h.nonce, &h, sizeof(h), p, payload, blob + sizeof(h),
             blob + sizeof(h) + payload);
    return blob;
}

static void device_pubkey(struct ta *t, uint8_t pub[32])
{
    size_t size = 32;
    assert_int_equal(ta_get_pubkey(t, pub, &size), TEEC_SUCCESS);
    assert_int_equal(size, 32);
}

/* An owner's policy: inference only with @output, any batch. */
static struct dz_policy inference_policy(uint32_t output, uint32_t top_k_max)
{
    return (struct dz_policy){.modes = DZ_MODE_INFER,
                              .output = output,
                              .top_k_max = top_k_max,
                              .batch_min = 1,
                              .batch_max = 64,
                              .subdivisions_max = 1};
}

/* ------------------------------------------------------------------ attack 1 */

/* The parameters an attacker loads in plain: all zero but layer 2's weights = identity. */
static float *identity_params(const struct seg *g, size_t *np)
{
    struct dnn_network *ref = reference(g);
    *np = param_count(ref);
    for (size_t i = 0; i < ref->n; i++)
        for (size_t k = 0; k < ref->layers[i].n_params; k++) {
            const struct dnn_param *prm = &ref->layers[i].params[k];
            memset(prm->value, 0, prm->count * sizeof(float));
            if (i == 1 && !strcmp(prm->name, "weights"))
                for (size_t d = 0; d < 4; d++)
                    prm->value[d * 4 + d] = 1;
        }
    float *p = malloc(*np * sizeof(float));
    assert_non_null(p);
    params_get(ref, p);
    dnn_network_free(ref);
    return p;
}

/*
 * The attack for one k: LOAD_SEALED(victim); FORWARD(train, 0); BACKWARD(e_k); then
 * the attacker's own parameters by @reload (LOAD_PLAIN, or LOAD_SEALED of @mine); UPDATE must
 * be refused (BAD_STATE) and FORWARD(0) must give what the plain parameters alone give.
 * Then a legitimate training step must be the engine's from the plain parameters and a clean
 * state: no update buffer (momentum) of the victim's step survives.
 */
static void leak_once(struct ta *t, const struct seg *g, const uint8_t *victim, size_t vsize,
                      const float *plain, size_t np, const uint8_t *mine, size_t k, float scale)
{
    float x[4] = {0}, y[4], dy[4] = {0}, dx[4], y_ref[4];
    size_t out = sizeof(y);

    assert_int_equal(ta_load_sealed(t, victim, vsize, NULL), TEEC_SUCCESS);
    assert_int_equal(ta_forward(t, x, sizeof(x), NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);
    dy[k] = scale;
    out = sizeof(dx);
    assert_int_equal(ta_backward(t, dy, sizeof(dy), dx, &out), TEEC_SUCCESS);
    if (mine)
        assert_int_equal(ta_load_sealed(t, mine, vsize, NULL), TEEC_SUCCESS);
    else
        assert_int_equal(ta_load_plain(t, plain, np * sizeof(float), 0), TEEC_SUCCESS);
    assert_int_equal(ta_update(t), TEEC_ERROR_BAD_STATE);

    /* No secret in the output: exactly the plain parameters' (zero biases: all zero). */
    struct dnn_network *ref = reference(g);
    params_set(ref, plain);
    out = sizeof(y);
    assert_int_equal(ta_forward(t, x, sizeof(x), NULL, 0, 0, y, &out), TEEC_SUCCESS);
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    memcpy(y_ref, ref->layers[ref->n - 1].output, sizeof(y_ref));
    assert_memory_equal(y, y_ref, sizeof(y));
    for (int i = 0; i < 4; i++)
        assert_true(y[i] == 0.0f);

    /* A legitimate step now: bit for bit the engine's from the plain parameters alone. */
    float xs[4], ds[4];
    fill(xs, 4, -1, 1);
    fill(ds, 4, -1, 1);
    out = sizeof(y);
    assert_int_equal(ta_forward(t, xs, sizeof(xs), NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                     TEEC_SUCCESS);
    ref->seen += g->batch;
    dnn_network_forward_range(ref, 0, ref->n - 1, xs, NULL, true);
    assert_memory_equal(y, ref->layers[ref->n - 1].output, sizeof(y));
    out = sizeof(dx);
    assert_int_equal(ta_backward(t, ds, sizeof(ds), dx, &out), TEEC_SUCCESS);
    for (int i = 0; i < 4; i++)
        ref->layers[ref->n - 1].delta[i] += ds[i];
    float dx_ref[4] = {0};
    dnn_network_backward_range(ref, 0, ref->n - 1, xs, dx_ref);
    assert_memory_equal(dx, dx_ref, sizeof(dx));
    assert_int_equal(ta_update(t), TEEC_SUCCESS);
    dnn_network_update_range(ref, 0, ref->n - 1);
    fill(xs, 4, -1, 1);
    out = sizeof(y);
    assert_int_equal(ta_forward(t, xs, sizeof(xs), NULL, 0, 0, y, &out), TEEC_SUCCESS);
    dnn_network_forward_range(ref, 0, ref->n - 1, xs, NULL, false);
    assert_memory_equal(y, ref->layers[ref->n - 1].output, sizeof(y));
    dnn_network_free(ref);
}

static void stale_update_buffers(float momentum)
{
    init_leak_net(momentum);
    const struct seg g = leak_seg(true);
    size_t np = 0, np2 = 0, vsize = 0, msize = 0;
    float *secret = random_params(&g, &np);
    float *plain = identity_params(&g, &np2);
    assert_int_equal(np, np2);
    /* The victim trains under lr 1, momentum @momentum and saves: a training policy. */
    uint8_t *victim = device_blob(&g, secret, np, 0, NULL, &vsize);
    uint8_t *mine = device_blob(&g, plain, np, 0, NULL, &msize);
    assert_int_equal(vsize, msize);
    struct ta t;

    open_ok(&t, &g);
    for (size_t k = 0; k < 4; k++) {
        leak_once(&t, &g, victim, vsize, plain, np, NULL, k, 1.0f);
        leak_once(&t, &g, victim, vsize, plain, np, NULL, k, 2.0f); /* the diagonal query */
        leak_once(&t, &g, victim, vsize, plain, np, mine, k, 1.0f); /* through LOAD_SEALED */
    }
    assert_usable(&t, &g);
    ta_stop(&t);
    free(mine);
    free(victim);
    free(plain);
    free(secret);
}

static void test_attack1_stale_update_buffers(void **state)
{
    (void)state;
    stale_update_buffers(0.0f);
}

static void test_attack1_stale_update_buffers_momentum(void **state)
{
    (void)state;
    stale_update_buffers(0.9f);
}

/* ------------------------------------------------------------------ attack 2 */

static void test_attack2_score_oracle(void **state)
{
    (void)state;
    init_score_net();
    const struct seg tr = score_seg(&sc_cfg, 4, true, DZ_OUTPUT_TOP1, 0);
    const struct seg inf = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_TOP1, 0);
    size_t np = 0, isize = 0, tsize = 0;
    float *p = random_params(&tr, &np);
    float x[4 * S_IN], truth[4 * CLASSES], dx[4 * S_IN];
    struct load_info info;
    struct ta t;

    /* The owner's default: inference only, top1, sealed by SAVE_SEALED with an explicit
     * policy from a training session; and the training session's own (training allowed). */
    struct dz_policy only;
    request_policy(&tr, &only);
    only.modes = DZ_MODE_INFER;
    uint8_t *infer_blob = device_blob(&tr, p, np, 40, &only, &isize);
    uint8_t *train_blob = device_blob(&tr, p, np, 40, NULL, &tsize);

    /* Opened for training: the inference-only model is refused, the TA lives on. */
    open_ok(&t, &tr);
    assert_int_equal(ta_load_sealed(&t, infer_blob, isize, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_usable(&t, &tr);
    assert_predicts(&t, &tr, NULL, x); /* still the seed's parameters */
    ta_stop(&t);

    /* Opened for inference: it loads, and no training command is taken. */
    fill(x, sizeof(x) / sizeof(x[0]), -2, 2);
    open_ok(&t, &inf);
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&t, infer_blob, isize, &info), TEEC_SUCCESS);
    assert_int_equal(info.seen, 40);
    assert_int_equal(info.modes, DZ_MODE_INFER);
    for (size_t i = 0; i < sizeof(truth) / sizeof(truth[0]); i++)
        truth[i] = i % CLASSES == 0;
    assert_int_equal(
        ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_ERROR_BAD_STATE);
    size_t out = sizeof(dx);
    assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    assert_predicts(&t, &inf, p, x);
    ta_stop(&t);

    /* Under a training policy (subdivisions 1): one gradient query per UPDATE. */
    open_ok(&t, &tr);
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&t, train_blob, tsize, &info), TEEC_SUCCESS);
    assert_int_equal(info.modes, DZ_MODES_ALL);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(
            ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
            TEEC_SUCCESS);
        out = sizeof(dx);
        assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
        /* The attacker's next truth (all zeros, e_0...) on the same parameters: refused. */
        memset(truth, 0, sizeof(truth));
        truth[round] = 1;
        assert_int_equal(
            ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
            TEEC_ERROR_BAD_STATE);
        out = sizeof(dx);
        assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_ERROR_BAD_STATE);
        assert_usable(&t, &tr);
        assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    }
    /* A reload does not reopen the query either: it forgets the BACKWARD, UPDATE then needs
     * a new one. */
    assert_int_equal(
        ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    out = sizeof(dx);
    assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
    assert_int_equal(ta_load_sealed(&t, train_blob, tsize, NULL), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    assert_predicts(&t, &tr, p, x);
    ta_stop(&t);

    free(train_blob);
    free(infer_blob);
    free(p);
}

/* ------------------------------------------------------------------ attack 3 */

struct ask {
    uint32_t output, top_k;
    TEEC_Result want;
};

/* Each ask in an inference session: refused ones leave the seed's parameters and live on,
 * accepted ones predict the engine's labels (or scores) for @p. */
static void try_asks(const uint8_t *blob, size_t size, const float *p, const struct ask *asks,
                     size_t n)
{
    float x[4 * S_IN];
    struct ta t;
    for (size_t i = 0; i < n; i++) {
        const struct seg g = score_seg(&sc_cfg, 4, false, asks[i].output, asks[i].top_k);
        fill(x, sizeof(x) / sizeof(x[0]), -2, 2);
        open_ok(&t, &g);
        const TEEC_Result res = ta_load_sealed(&t, blob, size, NULL);
        if (res != asks[i].want)
            fail_msg("ask %s top_k %u: %#x, expected %#x", dz_output_name(asks[i].output),
                     (unsigned)asks[i].top_k, (unsigned)res, (unsigned)asks[i].want);
        assert_usable(&t, &g);
        assert_predicts(&t, &g, res == TEEC_SUCCESS ? p : NULL, x);
        ta_stop(&t);
    }
}

static void test_attack3_output_policy(void **state)
{
    (void)state;
    init_score_net();
    const struct seg tr = score_seg(&sc_cfg, 4, true, DZ_OUTPUT_TOP1, 0);
    size_t np = 0, size = 0;
    float *p = random_params(&tr, &np);

    /* Sealed after training with the default top1. */
    uint8_t *top1 = device_blob(&tr, p, np, 0, NULL, &size);
    const struct ask top1_asks[] = {
        {DZ_OUTPUT_RANK, 0, TEEC_ERROR_ACCESS_DENIED},
        {DZ_OUTPUT_SCORES, 0, TEEC_ERROR_ACCESS_DENIED},
        {DZ_OUTPUT_TOPK, 2, TEEC_ERROR_ACCESS_DENIED},
        {DZ_OUTPUT_TOPK, 1, TEEC_ERROR_ACCESS_DENIED}, /* topk is above top1, even k = 1 */
        {DZ_OUTPUT_TOP1, 0, TEEC_SUCCESS},
    };
    try_asks(top1, size, p, top1_asks, sizeof(top1_asks) / sizeof(top1_asks[0]));
    free(top1);

    /* Sealed with the top 2 labels from a rank session: narrower asks load. */
    const struct seg rank = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_RANK, 0);
    struct dz_policy top2;
    request_policy(&rank, &top2);
    top2.output = DZ_OUTPUT_TOPK;
    top2.top_k_max = 2;
    uint8_t *topk = device_blob(&rank, p, np, 0, &top2, &size);
    const struct ask topk_asks[] = {
        {DZ_OUTPUT_RANK, 0, TEEC_ERROR_ACCESS_DENIED},
        {DZ_OUTPUT_SCORES, 0, TEEC_ERROR_ACCESS_DENIED},
        {DZ_OUTPUT_TOPK, 3, TEEC_ERROR_ACCESS_DENIED},
        {DZ_OUTPUT_TOPK, 2, TEEC_SUCCESS},
        {DZ_OUTPUT_TOPK, 1, TEEC_SUCCESS},
        {DZ_OUTPUT_TOP1, 0, TEEC_SUCCESS},
    };
    try_asks(topk, size, p, topk_asks, sizeof(topk_asks) / sizeof(topk_asks[0]));
    free(topk);

    /* Sealed allowing scores: scores come out, the engine's softmax, and every narrower ask
     * loads. */
    const struct seg scores = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_SCORES, 0);
    uint8_t *sc = device_blob(&scores, p, np, 0, NULL, &size);
    const struct ask score_asks[] = {
        {DZ_OUTPUT_SCORES, 0, TEEC_SUCCESS},
        {DZ_OUTPUT_RANK, 0, TEEC_SUCCESS},
        {DZ_OUTPUT_TOPK, 64, TEEC_SUCCESS},
        {DZ_OUTPUT_TOP1, 0, TEEC_SUCCESS},
    };
    try_asks(sc, size, p, score_asks, sizeof(score_asks) / sizeof(score_asks[0]));
    free(sc);
    free(p);
}

/* SCORES output through a plain load: batch * classes floats, the engine's softmax. */
static void test_scores_output(void **state)
{
    (void)state;
    init_score_net();
    const struct seg g = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_SCORES, 0);
    size_t np = 0;
    float *p = random_params(&g, &np);
    float x[4 * S_IN], y[4 * CLASSES + 4];
    struct ta t;

    open_ok(&t, &g);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    fill(x, sizeof(x) / sizeof(x[0]), -2, 2);
    size_t out = 4 * CLASSES * sizeof(float) - 4;
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, y, &out), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(out, 4 * CLASSES * sizeof(float));
    assert_predicts(&t, &g, p, x);
    /* the scores sum to one per image */
    out = sizeof(y);
    assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, y, &out), TEEC_SUCCESS);
    assert_int_equal(out, 4 * CLASSES * sizeof(float));
    for (int b = 0; b < 4; b++) {
        const float sum = y[b * CLASSES] + y[b * CLASSES + 1] + y[b * CLASSES + 2];
        assert_true(sum > 0.999f && sum < 1.001f);
    }
    ta_stop(&t);
    free(p);
}

/* ------------------------------------------------------------------ attack 4 */

static void test_attack4_rollback(void **state)
{
    (void)state;
    init_score_net();
    const struct seg g = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_TOP1, 0);
    const struct dz_policy pol = inference_policy(DZ_OUTPUT_TOP1, 1);
    size_t np = 0, s1 = 0, s2 = 0, s3 = 0, dsize = 0;
    float *p1 = random_params(&g, &np);
    float *p2 = random_params(&g, &np);
    float *p3 = random_params(&g, &np);
    float x[4 * S_IN];
    uint8_t pub[32];
    struct load_info info;
    struct ta t, u;

    fill(x, sizeof(x) / sizeof(x[0]), -2, 2);
    open_ok(&t, &g);
    device_pubkey(&t, pub);
    uint8_t *v2 = owner_blob(&g, p2, np, pub, 2, &pol, 0, &s2);
    uint8_t *v1 = owner_blob(&g, p1, np, pub, 1, &pol, 0, &s1);
    uint8_t *v3 = owner_blob(&g, p3, np, pub, 3, &pol, 0, &s3);

    /* Version 2 loads; then version 1 is refused in the same session, parameters kept. */
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&t, v2, s2, &info), TEEC_SUCCESS);
    assert_int_equal(info.model_version, 2);
    assert_int_equal(info.modes, DZ_MODE_INFER);
    assert_predicts(&t, &g, p2, x);
    assert_int_equal(ta_load_sealed(&t, v1, s1, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_predicts(&t, &g, p2, x);
    assert_int_equal(ta_load_sealed(&t, v2, s2, NULL), TEEC_SUCCESS); /* the same release */

    /* A device blob saved after loading version 2 carries model_version 2. */
    dsize = 0;
    assert_int_equal(ta_save(&t, NULL, &dsize), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *d2 = malloc(dsize);
    assert_non_null(d2);
    assert_int_equal(ta_save(&t, d2, &dsize), TEEC_SUCCESS);
    const struct dz_sealed_header *dh = (const struct dz_sealed_header *)(const void *)d2;
    assert_int_equal(dh->key_kind, DZ_KEY_DEVICE);
    assert_int_equal(dh->model_version, 2);
    assert_memory_equal(&dh->policy, &pol, sizeof(pol));

    /* The owner version only comes from owner blobs: plain parameters save version 0. */
    assert_int_equal(ta_load_plain(&t, p1, np * sizeof(float), 0), TEEC_SUCCESS);
    size_t psize = dsize;
    uint8_t *d0 = malloc(psize);
    assert_non_null(d0);
    assert_int_equal(ta_save(&t, d0, &psize), TEEC_SUCCESS);
    assert_int_equal(((const struct dz_sealed_header *)(const void *)d0)->model_version, 0);
    ta_stop(&t);

    /* A new session: version 1 still refused; the checkpoint loads with its version. */
    open_ok(&u, &g);
    assert_int_equal(ta_load_sealed(&u, v1, s1, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_usable(&u, &g);
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&u, d2, dsize, &info), TEEC_SUCCESS);
    assert_int_equal(info.model_version, 2);
    assert_predicts(&u, &g, p2, x);
    assert_int_equal(ta_load_sealed(&u, d0, psize, NULL), TEEC_SUCCESS); /* version 0 */
    ta_stop(&u);

    /* The device restarts (a new context: new TA instance, same secure storage). */
    open_ok(&t, &g);
    assert_int_equal(ta_load_sealed(&t, v1, s1, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_predicts(&t, &g, NULL, x);
    /* Version 3 loads; after it the version 2 release and its checkpoint are rollbacks. */
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&t, v3, s3, &info), TEEC_SUCCESS);
    assert_int_equal(info.model_version, 3);
    assert_int_equal(ta_load_sealed(&t, v2, s2, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(ta_load_sealed(&t, d2, dsize, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_predicts(&t, &g, p3, x);
    ta_stop(&t);

    free(d0);
    free(d2);
    free(v3);
    free(v1);
    free(v2);
    free(p3);
    free(p2);
    free(p1);
}

/* Owner blobs: for another device, on another device, and with any header byte changed. */
static void test_owner_blob_refusals(void **state)
{
    (void)state;
    init_score_net();
    const struct seg g = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_TOP1, 0);
    const struct dz_policy pol = inference_policy(DZ_OUTPUT_TOP1, 1);
    size_t np = 0, size = 0, osize = 0;
    float *p = random_params(&g, &np);
    float x[4 * S_IN];
    uint8_t pub[32], other_pub[32];
    struct ta t;

    fill(x, sizeof(x) / sizeof(x[0]), -2, 2);
    open_ok(&t, &g);
    device_pubkey(&t, pub);

    /* Sealed for another key pair: SECURITY, parameters kept. */
    EVP_PKEY *other = x25519_keygen(other_pub);
    EVP_PKEY_free(other);
    uint8_t *foreign = owner_blob(&g, p, np, other_pub, 1, &pol, 0, &osize);
    assert_int_equal(ta_load_sealed(&t, foreign, osize, NULL), TEEC_ERROR_SECURITY);
    assert_predicts(&t, &g, NULL, x);
    /* Our fingerprint on a key wrapped for the other key: the wrap does not open. */
    struct dz_sealed_header *fh = (struct dz_sealed_header *)(void *)foreign;
    sha256(pub, 32, NULL, 0, fh->device_fingerprint);
    assert_int_equal(ta_load_sealed(&t, foreign, osize, NULL), TEEC_ERROR_SECURITY);
    free(foreign);

    /* Every byte of the header flipped (and, unless quick, every bit): refused, parameters
     * kept, and no forged version recorded: the blob itself still loads afterwards. */
    uint8_t *blob = owner_blob(&g, p, np, pub, 1, &pol, 0, &size);
    uint8_t *bad = malloc(size);
    assert_non_null(bad);
    const int masks = quick() ? 1 : 9;
    for (size_t i = 0; i < sizeof(struct dz_sealed_header); i++) {
        for (int m = 0; m < masks; m++) {
            memcpy(bad, blob, size);
            bad[i] ^= m == 0 ? 0xFFu : (uint8_t)(1u << (m - 1));
            const TEEC_Result res = ta_load_sealed(&t, bad, size, NULL);
            if (res != TEEC_ERROR_SECURITY && res != TEEC_ERROR_ACCESS_DENIED)
                fail_msg("header byte %zu ^ mask %d: %#x", i, m, (unsigned)res);
        }
    }
    /* The payload and the tag too. */
    for (size_t i = sizeof(struct dz_sealed_header); i < size; i += quick() ? 7 : 1) {
        memcpy(bad, blob, size);
        bad[i] ^= 0x01;
        if (ta_load_sealed(&t, bad, size, NULL) != TEEC_ERROR_SECURITY)
            fail_msg("payload byte %zu flipped was accepted", i);
    }
    assert_predicts(&t, &g, NULL, x);
    struct load_info info;
    memset(&info, 0, sizeof(info));
    assert_int_equal(ta_load_sealed_info(&t, blob, size, &info), TEEC_SUCCESS);
    assert_int_equal(info.model_version, 1);
    assert_predicts(&t, &g, p, x);

    /* Another partition of the same model and another batch-independent digest: SECURITY. */
    struct seg other_part = g;
    other_part.first = 2;
    ta_stop(&t);
    open_ok(&t, &other_part);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_ERROR_SECURITY);
    ta_stop(&t);

    /* Device 2 (its own secure storage, so its own keys): refuses device 1's owner blob
     * and device 1's own saves. */
    open_ok(&t, &g);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_SUCCESS);
    size_t dsize = 0;
    assert_int_equal(ta_save(&t, NULL, &dsize), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *dev1 = malloc(dsize);
    assert_non_null(dev1);
    assert_int_equal(ta_save(&t, dev1, &dsize), TEEC_SUCCESS);
    ta_stop(&t);

    struct tee_env env2;
    const struct tee_env env1 = env;
    assert_int_equal(tee_env_setup(&env2), 0);
    open_ok(&t, &g);
    uint8_t pub2[32];
    device_pubkey(&t, pub2);
    assert_memory_not_equal(pub, pub2, 32);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_ERROR_SECURITY);
    assert_int_equal(ta_load_sealed(&t, dev1, dsize, NULL), TEEC_ERROR_SECURITY);
    assert_predicts(&t, &g, NULL, x);
    /* Sealed for device 2, it loads there. */
    size_t s2 = 0;
    uint8_t *for2 = owner_blob(&g, p, np, pub2, 1, &pol, 0, &s2);
    assert_int_equal(ta_load_sealed(&t, for2, s2, NULL), TEEC_SUCCESS);
    assert_predicts(&t, &g, p, x);
    ta_stop(&t);
    tee_env_teardown(&env2);
    env = env1;
    setenv("DZ_TEE_LOG", env.log, 1);
    setenv("DZ_TEE_STORAGE", env.storage, 1);

    /* And device 1 refuses device 2's. */
    open_ok(&t, &g);
    assert_int_equal(ta_load_sealed(&t, for2, s2, NULL), TEEC_ERROR_SECURITY);
    assert_int_equal(ta_load_sealed(&t, dev1, dsize, NULL), TEEC_SUCCESS);
    ta_stop(&t);

    free(for2);
    free(dev1);
    free(bad);
    free(blob);
    free(p);
}

/* ------------------------------------------------------------------ attack 5 */

static void test_attack5_unbound(void **state)
{
    (void)state;
    init_score_net();
    const struct seg tr = score_seg(&sc_cfg, 4, true, DZ_OUTPUT_TOP1, 0);
    size_t np = 0, size = 0;
    float *p = random_params(&tr, &np);
    float x[4 * S_IN];
    struct ta t;

    /* Saved from a training session at batch 4, learning rate 0.1, top1. */
    uint8_t *blob = device_blob(&tr, p, np, 0, NULL, &size);

    struct dnn_net_config lr100 = sc_cfg, mom = sc_cfg, decay = sc_cfg, sub2 = sc_cfg;
    lr100.learning_rate = 100;
    mom.momentum = 0.99f;
    decay.decay = 0.01f;
    sub2.subdivisions = 2;
    const struct seg refused[] = {
        score_seg(&sc_cfg, 7, true, DZ_OUTPUT_TOP1, 0),  /* batch 7 */
        score_seg(&sc_cfg, 2, true, DZ_OUTPUT_TOP1, 0),  /* batch 2 */
        score_seg(&lr100, 4, true, DZ_OUTPUT_TOP1, 0),   /* learning rate 100 */
        score_seg(&mom, 4, true, DZ_OUTPUT_TOP1, 0),     /* more momentum */
        score_seg(&decay, 4, true, DZ_OUTPUT_TOP1, 0),   /* more decay */
        score_seg(&sub2, 4, true, DZ_OUTPUT_TOP1, 0),    /* more subdivisions */
        score_seg(&sc_cfg, 4, false, DZ_OUTPUT_RANK, 0), /* output rank */
        score_seg(&sc_cfg, 4, true, DZ_OUTPUT_RANK, 0),
        score_seg(&sc_cfg, 4, false, DZ_OUTPUT_SCORES, 0),
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        fill(x, sizeof(x) / sizeof(x[0]), -2, 2);
        open_ok(&t, &refused[i]);
        const TEEC_Result res = ta_load_sealed(&t, blob, size, NULL);
        if (res != TEEC_ERROR_ACCESS_DENIED)
            fail_msg("session %zu: %#x, expected ACCESS_DENIED", i, (unsigned)res);
        assert_usable(&t, &refused[i]);
        ta_stop(&t);
    }

    /* An inference session at batch 1 with top1 takes it, and so does the training one it
     * was saved from (and narrower training: less rate, momentum, decay). */
    struct dnn_net_config less = sc_cfg;
    less.learning_rate = 0.01f;
    less.momentum = 0.5f;
    less.decay = 0;
    const struct seg accepted[] = {
        score_seg(&sc_cfg, 1, false, DZ_OUTPUT_TOP1, 0),
        score_seg(&sc_cfg, 4, true, DZ_OUTPUT_TOP1, 0),
        score_seg(&less, 4, true, DZ_OUTPUT_TOP1, 0),
    };
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        float x1[4 * S_IN];
        fill(x1, sizeof(x1) / sizeof(x1[0]), -2, 2);
        open_ok(&t, &accepted[i]);
        assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_SUCCESS);
        assert_predicts(&t, &accepted[i], p, x1);
        ta_stop(&t);
    }

    /* The policy bounds every UPDATE's rate, whatever the schedule: a steps schedule that
     * multiplies the rate by 100 from step 0 is refused at UPDATE, and the TA lives on. */
    struct dnn_net_config boost = sc_cfg;
    boost.policy = DNN_POLICY_STEPS;
    boost.n_steps = 1;
    boost.steps[0] = 0;
    boost.scales[0] = 100;
    const struct seg boosted = score_seg(&boost, 4, true, DZ_OUTPUT_TOP1, 0);
    float truth[4 * CLASSES] = {0};
    for (int b = 0; b < 4; b++)
        truth[b * CLASSES + b % CLASSES] = 1;
    float dx[4 * S_IN];
    open_ok(&t, &boosted);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_SUCCESS);
    assert_int_equal(
        ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    size_t out = sizeof(dx);
    assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_ERROR_ACCESS_DENIED);
    assert_predicts(&t, &boosted, p, x); /* the parameters did not move */
    ta_stop(&t);
    /* A negative scale is as large a step the other way: refused the same (the review's
     * attack used -1e30; a negative base rate or sgdr minimum is refused at OPEN_MODEL). */
    boost.scales[0] = -1e30f;
    const struct seg negative = score_seg(&boost, 4, true, DZ_OUTPUT_TOP1, 0);
    open_ok(&t, &negative);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_SUCCESS);
    assert_int_equal(
        ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    out = sizeof(dx);
    assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_ERROR_ACCESS_DENIED);
    assert_predicts(&t, &negative, p, x);
    /* The same schedule on plain parameters is the normal world's own business. */
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    assert_int_equal(
        ta_forward(&t, x, sizeof(x), truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    out = sizeof(dx);
    assert_int_equal(ta_backward(&t, NULL, 0, dx, &out), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    ta_stop(&t);

    free(blob);
    free(p);
}

/* ------------------------------------------------------- SAVE_SEALED's policy */

static void test_save_policy_within_session(void **state)
{
    (void)state;
    init_score_net();
    const struct seg tr = score_seg(&sc_cfg, 4, true, DZ_OUTPUT_TOP1, 0);
    const struct seg inf = score_seg(&sc_cfg, 4, false, DZ_OUTPUT_TOP1, 0);
    size_t np = 0, size = 0;
    float *p = random_params(&tr, &np);
    struct dz_policy own, wide;
    struct ta t;

    /* A training session with plain parameters: its own request is the ceiling. */
    request_policy(&tr, &own);
    open_ok(&t, &tr);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    size = 0;
    assert_int_equal(ta_save(&t, NULL, &size), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *blob = malloc(size);
    assert_non_null(blob);
    const size_t full = size;
    /* Each rule once: a wider output, batch range, rate, momentum, decay, subdivisions. */
    wide = own;
    wide.output = DZ_OUTPUT_RANK;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.output = DZ_OUTPUT_SCORES;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.batch_max = 5;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.batch_min = 1;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.learning_rate_max = 1;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.momentum_max = 0.95f;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.decay_max = 0.001f;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = own;
    wide.subdivisions_max = 2;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_ERROR_ACCESS_DENIED);

    /* Narrower is fine, and binds: a rate bound of 0.05 refuses the 0.1 session. */
    wide = own;
    wide.learning_rate_max = 0.05f;
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &wide), TEEC_SUCCESS);
    assert_int_equal(size, full);
    ta_stop(&t);
    open_ok(&t, &tr);
    assert_int_equal(ta_load_sealed(&t, blob, size, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_usable(&t, &tr);
    ta_stop(&t);

    /* An inference session holding an inference-only top1 blob cannot re-seal it wider. */
    struct dz_policy only = own;
    only.modes = DZ_MODE_INFER;
    open_ok(&t, &tr);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    size = full;
    assert_int_equal(ta_save_policy(&t, blob, &size, &only), TEEC_SUCCESS);
    ta_stop(&t);
    open_ok(&t, &inf);
    assert_int_equal(ta_load_sealed(&t, blob, full, NULL), TEEC_SUCCESS);
    uint8_t *again = malloc(full);
    assert_non_null(again);
    wide = only;
    wide.modes = DZ_MODES_ALL;
    size = full;
    assert_int_equal(ta_save_policy(&t, again, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = only;
    wide.output = DZ_OUTPUT_TOPK;
    size = full;
    assert_int_equal(ta_save_policy(&t, again, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    wide = only;
    wide.output = DZ_OUTPUT_SCORES;
    size = full;
    assert_int_equal(ta_save_policy(&t, again, &size, &wide), TEEC_ERROR_ACCESS_DENIED);
    /* The session's own (NONE) and an equal one are fine, and keep inference only. */
    size = full;
    assert_int_equal(ta_save(&t, again, &size), TEEC_SUCCESS);
    assert_int_equal(((const struct dz_sealed_header *)(const void *)again)->policy.modes,
                     DZ_MODE_INFER);
    size = full;
    assert_int_equal(ta_save_policy(&t, again, &size, &only), TEEC_SUCCESS);
    assert_usable(&t, &inf);
    ta_stop(&t);

    free(again);
    free(blob);
    free(p);
}

static int group_setup(void **state)
{
    (void)state;
    init_score_net();
    return 0;
}

/*
 * Fuzz finding (tests/fuzz/corpus/ta/softmax-truth-overread.bin): a segment whose softmax
 * is not its output layer ([connected 4 -> 16], then in the TA [softmax 16], [connected
 * 16 -> 4]) took a truth of the output's 4 floats per image while the softmax read 16, past
 * the TA's copy into the next heap block; BACKWARD would have sent that memory out in the
 * delta at layer 1's input. OPEN_MODEL must refuse the segment before it allocates.
 */
static void test_inner_loss_layer_refused(void **state)
{
    (void)state;
    struct dnn_net_config cfg = leak_cfg;
    struct dnn_layer_spec specs[3] = {
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 16},
        {.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1},
        {.kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 4},
    };
    struct dnn_network *net = NULL;
    size_t bytes = 0;
    struct ta t;
    uint64_t need = 0;

    init_leak_net(0);
    cfg = leak_cfg;
    /* The engine plans such a network (a byte count) but refuses to build it, in both
     * worlds; the TA plans before it builds, so the refusal comes after the memory check. */
    assert_int_equal(dnn_network_plan(&cfg, specs, 3, true, &bytes), DNN_OK);
    assert_int_equal(dnn_network_create(&net, &cfg, specs, 3, true, 1), DNN_ERR_LOSS_SIZE);
    assert_null(net);
    for (int training = 0; training < 2; training++) {
        const struct seg g = {.cfg = &cfg,
                              .specs = specs,
                              .n_layers = 3,
                              .first = 1,
                              .last = 2,
                              .batch = 2,
                              .training = training != 0,
                              .output_policy = DZ_OUTPUT_TOP1,
                              .seed = 7};
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        ta_start(&t);
        assert_int_equal(ta_open_model(&t, blob, size, &need), TEEC_ERROR_BAD_PARAMETERS);
        /* The session is still usable: a valid segment opens in it. */
        free(blob);
        const struct seg ok = leak_seg(true);
        blob = make_blob(&ok, &size);
        assert_int_equal(ta_open_model(&t, blob, size, &need), TEEC_SUCCESS);
        free(blob);
        ta_stop(&t);
    }
}

/* ------------------------------------------------- AlexeyAB's shortcut and antialiasing */

/*
 * The wire fields that came with AlexeyAB's layers, as a hostile normal world would set
 * them. Layers 0..5 in the TA, a [connected] after it in the normal world (so the segment's
 * output and the delta at its input cross):
 *   0 conv 3x3 -> 4x4x3, 1 maxpool 2/2 -> 2x2x3, 2 conv 1x1 -> 2x2x4, 3 conv 1x1 -> 2x2x2,
 *   4 shortcut from 2 and 1 (4 and 3 channels against its input's 2) with per-channel
 *     softmax-normalized weights, 5 conv 3x3/4 with the 2x2 blur on a 2x2 stride-1 result
 *     (the blur's window covers it once: a 1x1 output).
 */
static struct dnn_net_config ab_cfg;
static struct dnn_layer_spec ab_specs[7];

static void init_ab_net(void)
{
    memset(&ab_cfg, 0, sizeof(ab_cfg));
    ab_cfg.batch = 2;
    ab_cfg.subdivisions = 1;
    ab_cfg.h = 4;
    ab_cfg.w = 4;
    ab_cfg.c = 2;
    ab_cfg.learning_rate = 0.1f;
    ab_cfg.momentum = 0.9f;
    ab_cfg.decay = 0.0005f;
    ab_cfg.policy = DNN_POLICY_CONSTANT;
    ab_cfg.max_batches = 1000;
    memset(ab_specs, 0, sizeof(ab_specs));
    ab_specs[0] = (struct dnn_layer_spec){.kind = DNN_LAYER_CONVOLUTIONAL,
                                          .activation = DNN_ACT_LINEAR,
                                          .filters = 3,
                                          .size = 3,
                                          .stride = 1,
                                          .pad = 1,
                                          .groups = 1};
    ab_specs[1] = (struct dnn_layer_spec){.kind = DNN_LAYER_MAXPOOL, .size = 2, .stride = 2};
    ab_specs[2] = (struct dnn_layer_spec){.kind = DNN_LAYER_CONVOLUTIONAL,
                                          .activation = DNN_ACT_LEAKY,
                                          .filters = 4,
                                          .size = 1,
                                          .stride = 1,
                                          .groups = 1};
    ab_specs[3] = ab_specs[2];
    ab_specs[3].filters = 2;
    ab_specs[3].activation = DNN_ACT_LINEAR;
    ab_specs[4] = (struct dnn_layer_spec){.kind = DNN_LAYER_SHORTCUT,
                                          .activation = DNN_ACT_LINEAR,
                                          .from = 2,
                                          .n_route = 1,
                                          .route = {1},
                                          .alpha = 1,
                                          .beta = 1,
                                          .weights_type = DNN_SHORTCUT_WEIGHTS_PER_CHANNEL,
                                          .weights_normalization = DNN_WEIGHTS_NORM_SOFTMAX};
    ab_specs[5] = (struct dnn_layer_spec){.kind = DNN_LAYER_CONVOLUTIONAL,
                                          .activation = DNN_ACT_LINEAR,
                                          .filters = 2,
                                          .size = 3,
                                          .stride = 4,
                                          .pad = 1,
                                          .groups = 1,
                                          .antialiasing = 2};
    ab_specs[6] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 3};
}

static struct seg ab_seg(uint32_t first)
{
    return (struct seg){.cfg = &ab_cfg,
                        .specs = ab_specs,
                        .n_layers = 7,
                        .first = first,
                        .last = 5,
                        .batch = 2,
                        .training = true,
                        .output_policy = DZ_OUTPUT_TOP1,
                        .seed = 11};
}

/* One hostile edit of the shortcut's wire spec (layer 4) of a blob. */
struct ab_edit {
    const char *what;
    uint32_t first; /* the segment's first layer */
    int32_t from, n_route, route0, route1;
    uint16_t weights_type, weights_normalization;
};

static void test_alexeyab_fields_hostile(void **state)
{
    (void)state;
    init_ab_net();
    /* Each edit decodes field by field or not; whichever it is, OPEN_MODEL must refuse it
     * (a source is absolute: at or after the segment's first layer, before the shortcut;
     * AlexeyAB's sources have the input's width and height; the enums are in range) and
     * the session must still open the honest model afterwards. */
    const struct ab_edit edits[] = {
        {"source is the shortcut itself", 0, 2, 1, 4, 0, 2, 2},
        {"source after the shortcut", 0, 2, 1, 5, 0, 2, 2},
        {"source far past the network", 0, 2, 1, 0x7fffffff, 0, 2, 2},
        {"negative source", 0, 2, 1, -1, 0, 2, 2},
        {"from before the segment", 2, 0, 1, 2, 0, 2, 2},
        {"source before the segment", 2, 3, 1, 1, 0, 2, 2},
        {"source of another width and height", 0, 2, 2, 1, 0, 2, 2},
        {"from of another width and height", 0, 0, 1, 1, 0, 2, 2},
        {"nine sources", 0, 2, DNN_MAX_ROUTE + 1, 1, 1, 2, 2},
        {"negative source count", 0, 2, -1, 1, 0, 2, 2},
        {"weights_type past the enum", 0, 2, 1, 1, 0, DNN_SHORTCUT_WEIGHTS_COUNT, 2},
        {"weights_type 0xffff", 0, 2, 1, 1, 0, 0xffff, 2},
        {"weights_normalization past the enum", 0, 2, 1, 1, 0, 2, DNN_WEIGHTS_NORM_COUNT},
    };
    struct ta t;
    ta_start(&t);
    for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
        const struct ab_edit *d = &edits[e];
        const struct seg g = ab_seg(d->first);
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        struct dz_wire_spec *w = blob_spec(blob, 4 - d->first);
        w->from = d->from;
        w->n_route = d->n_route;
        w->route[0] = d->route0;
        w->route[1] = d->route1;
        w->weights_type = d->weights_type;
        w->weights_normalization = d->weights_normalization;
        print_message("  %s\n", d->what);
        assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_ERROR_BAD_PARAMETERS);
        free(blob);
    }
    /* antialiasing out of range, or on a layer without it */
    for (int v = -1; v <= 3; v += 4) {
        const struct seg g = ab_seg(0);
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        blob_spec(blob, 5)->antialiasing = v;
        assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_ERROR_BAD_PARAMETERS);
        free(blob);
    }
    {
        const struct seg g = ab_seg(0);
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        blob_spec(blob, 4)->antialiasing = 1; /* the shortcut */
        assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_ERROR_BAD_PARAMETERS);
        free(blob);
    }
    const struct seg good = ab_seg(0);
    size_t size = 0;
    uint8_t *blob = make_blob(&good, &size);
    assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_SUCCESS);
    free(blob);
    ta_stop(&t);
}

/* The honest segment: the TA's training steps and inference match the engine's bit for bit, with
 * sources wider and narrower than the input and a blur whose window leaves the image. */
static void test_alexeyab_segment_matches_engine(void **state)
{
    (void)state;
    init_ab_net();
    const struct seg g = ab_seg(0);
    struct dnn_network *ref = reference(&g);
    size_t np = 0;
    float *p = random_params(&g, &np);
    /* 6 shortcut weights (3 slots x 2 channels) among them */
    assert_int_equal(ref->layers[4].nweights, 6);
    assert_int_equal(ref->layers[5].out_h, 1);
    params_set(ref, p);
    struct ta t;
    open_ok(&t, &g);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    float x[2 * 32], y[2 * 2], dy[2 * 2];
    for (int iter = 0; iter < 3; iter++) {
        fill(x, 64, -2, 2);
        fill(dy, 4, -0.5f, 0.5f);
        size_t out = sizeof(y);
        assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, DZ_FORWARD_TRAIN, y, &out),
                         TEEC_SUCCESS);
        ref->seen += 2;
        dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, true);
        assert_int_equal(out, sizeof(y));
        assert_memory_equal(y, ref->layers[ref->n - 1].output, sizeof(y));
        /* the segment starts the network: no delta at its input leaves */
        assert_int_equal(ta_backward(&t, dy, sizeof(dy), NULL, NULL), TEEC_SUCCESS);
        for (size_t i = 0; i < 4; i++)
            ref->layers[ref->n - 1].delta[i] += dy[i];
        dnn_network_backward_range(ref, 0, ref->n - 1, x, NULL);
        assert_int_equal(ta_update(&t), TEEC_SUCCESS);
        dnn_network_update_range(ref, 0, ref->n - 1);
        /* the updated parameters (the shortcut's weights too) show in an inference pass */
        fill(x, 64, -2, 2);
        out = sizeof(y);
        assert_int_equal(ta_forward(&t, x, sizeof(x), NULL, 0, 0, y, &out), TEEC_SUCCESS);
        dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
        assert_memory_equal(y, ref->layers[ref->n - 1].output, sizeof(y));
    }
    ta_stop(&t);
    dnn_network_free(ref);
    free(p);
}

/* ------------------------------------------------------------- tree softmax */

/* connected 4 -> 6 leaky (normal world), then in the TA connected 6 -> 5, a tree softmax of
 * groups @sizes (2 groups summing to 5), masked cost: darknet's hierarchical softmax with its
 * group sizes in the model description. */
enum { TREE_CLASSES = 5 };
static struct dnn_layer_spec tree_specs[4];

static struct seg tree_seg(const int sizes[2], uint32_t output, bool training)
{
    init_score_net(); /* sc_cfg */
    tree_specs[0] = sc_specs[0];
    tree_specs[1] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = TREE_CLASSES};
    tree_specs[2] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
    tree_specs[2].tree_group_size = sizes;
    tree_specs[2].tree_groups = 2;
    tree_specs[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_COST, .cost_type = DNN_COST_MASKED, .cost_scale = 1};
    return (struct seg){.cfg = &sc_cfg,
                        .specs = tree_specs,
                        .n_layers = 4,
                        .first = 1,
                        .last = 3,
                        .batch = 2,
                        .training = training,
                        .output_policy = output,
                        .seed = 0x7EE};
}

/* The tree's group sizes reach the engine inside the TA: its scores are the engine's, bit for
 * bit, and the sealed blob is bound to them (the model digest covers the table). */
static void test_tree_softmax_in_ta(void **state)
{
    (void)state;
    static const int sizes[2] = {2, 3}, swapped[2] = {3, 2};
    const struct seg g = tree_seg(sizes, DZ_OUTPUT_SCORES, false);
    size_t np = 0;
    float *p = random_params(&g, &np);
    float x[2 * S_IN];
    fill(x, 2 * S_IN, -2, 2);
    struct ta t;
    open_ok(&t, &g);
    assert_int_equal(ta_load_plain(&t, p, np * sizeof(float), 0), TEEC_SUCCESS);
    assert_predicts(&t, &g, p, x);
    /* each group sums to one: the TA ran the tree's softmax, not one over all five */
    {
        float y[2 * TREE_CLASSES];
        size_t out = sizeof y;
        assert_int_equal(ta_forward(&t, x, sizeof x, NULL, 0, 0, y, &out), TEEC_SUCCESS);
        for (int b = 0; b < 2; b++) {
            const float *v = y + b * TREE_CLASSES;
            assert_float_equal(v[0] + v[1], 1.0f, 1e-5f);
            assert_float_equal(v[2] + v[3] + v[4], 1.0f, 1e-5f);
        }
    }
    size_t size = 0;
    assert_int_equal(ta_save(&t, NULL, &size), TEEC_ERROR_SHORT_BUFFER);
    uint8_t *sealed = malloc(size);
    assert_non_null(sealed);
    assert_int_equal(ta_save(&t, sealed, &size), TEEC_SUCCESS);
    ta_stop(&t);
    struct dz_sealed_header h;
    memcpy(&h, sealed, sizeof h);
    uint8_t digest[32];
    model_digest(&g, digest);
    assert_memory_equal(h.model_digest, digest, 32);
    /* and `darknetp seal` computes the same from the whole network's specs and shapes */
    {
        struct dk_model m;
        memset(&m, 0, sizeof m);
        m.specs = tree_specs;
        m.n = 4;
        struct dnn_network *shapes = NULL;
        assert_int_equal(dnn_network_create(&shapes, &sc_cfg, tree_specs, 4, false, 1), DNN_OK);
        struct dk_error err;
        uint8_t host[DZ_DIGEST_SIZE];
        assert_int_equal(dz_seal_model_digest(&m, shapes, 1, 3, host, &err), 0);
        assert_memory_equal(host, digest, 32);
        dnn_network_free(shapes);
    }

    /* the same shapes with other group sizes are another model */
    const struct seg other = tree_seg(swapped, DZ_OUTPUT_SCORES, false);
    open_ok(&t, &other);
    assert_int_equal(ta_load_sealed(&t, sealed, size, NULL), TEEC_ERROR_SECURITY);
    ta_stop(&t);
    const struct seg same = tree_seg(sizes, DZ_OUTPUT_SCORES, false);
    open_ok(&t, &same);
    assert_int_equal(ta_load_sealed(&t, sealed, size, NULL), TEEC_SUCCESS);
    assert_predicts(&t, &same, p, x);
    ta_stop(&t);
    free(sealed);
    free(p);
}

/* darknet ranks a tree's labels after hierarchy_predictions, which the TA cannot do: label
 * policies are refused for inference, and a training session's label forward too. */
static void test_tree_softmax_no_labels(void **state)
{
    (void)state;
    static const int sizes[2] = {2, 3};
    struct ta t;
    ta_start(&t);
    for (uint32_t pol = DZ_OUTPUT_TOP1; pol < DZ_OUTPUT_SCORES; pol++) {
        struct seg g = tree_seg(sizes, pol, false);
        g.top_k = pol == DZ_OUTPUT_TOPK ? 2 : 0;
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_ERROR_ACCESS_DENIED);
        free(blob);
    }
    ta_stop(&t);
    const struct seg g = tree_seg(sizes, DZ_OUTPUT_TOP1, true);
    open_ok(&t, &g);
    float x[2 * S_IN] = {0};
    struct dz_prediction y[2];
    size_t out = sizeof y;
    assert_int_equal(ta_forward(&t, x, sizeof x, NULL, 0, 0, y, &out), TEEC_ERROR_ACCESS_DENIED);
    ta_stop(&t);
}

/* One hostile edit of the tree blob: the words of the table, the header's count, the size. */
struct tree_edit {
    const char *what;
    void (*apply)(uint8_t *blob, size_t *size);
};

static uint32_t *tree_table(uint8_t *blob)
{
    return (uint32_t *)(void *)(blob + sizeof(struct dz_model_header) +
                                blob_header(blob)->n_specs * sizeof(struct dz_wire_spec));
}

/* The good table of tree_seg({2, 3}) is {2, 2, 3}: the count, then the sizes. */
static void e_sum_short(uint8_t *b, size_t *n)
{
    (void)n;
    tree_table(b)[2] = 2; /* 2 + 2 != 5 inputs */
}
static void e_sum_long(uint8_t *b, size_t *n)
{
    (void)n;
    tree_table(b)[2] = 4;
}
static void e_zero_size(uint8_t *b, size_t *n)
{
    (void)n;
    tree_table(b)[1] = 0;
}
static void e_count_huge(uint8_t *b, size_t *n)
{
    (void)n;
    tree_table(b)[0] = 0xFFFFFFFFu;
}
static void e_count_zero(uint8_t *b, size_t *n)
{
    (void)n;
    tree_table(b)[0] = 0;
}
static void e_words_huge(uint8_t *b, size_t *n)
{
    (void)n;
    blob_header(b)->tree_words = DZ_MAX_TREE_WORDS + 1;
}
static void e_truncated_blob(uint8_t *b, size_t *n)
{
    (void)b;
    *n -= sizeof(uint32_t); /* the header still counts 3 words */
}
static void e_truncated_record(uint8_t *b, size_t *n)
{
    blob_header(b)->tree_words = 2; /* a count of 2, one size */
    *n -= sizeof(uint32_t);
}
static void e_not_a_tree(uint8_t *b, size_t *n)
{
    (void)n;
    blob_spec(b, 1)->layer_flags = 0; /* groups for a plain softmax */
}
static void e_tree_on_connected(uint8_t *b, size_t *n)
{
    (void)n;
    blob_spec(b, 0)->layer_flags = DZ_LF_TREE;
    blob_spec(b, 1)->layer_flags = 0;
}
static void e_no_table(uint8_t *b, size_t *n)
{
    blob_header(b)->tree_words = 0;
    *n -= 3 * sizeof(uint32_t);
}

static void test_tree_softmax_hostile(void **state)
{
    (void)state;
    static const int sizes[2] = {2, 3};
    static const struct tree_edit edits[] = {
        {"sizes sum short of the inputs", e_sum_short},
        {"sizes sum past the inputs", e_sum_long},
        {"a zero size", e_zero_size},
        {"group count too large", e_count_huge},
        {"group count zero", e_count_zero},
        {"tree_words above the cap", e_words_huge},
        {"table shorter than tree_words", e_truncated_blob},
        {"truncated record", e_truncated_record},
        {"groups given for a non-tree softmax", e_not_a_tree},
        {"tree flag on a connected layer", e_tree_on_connected},
        {"tree softmax without a table", e_no_table},
    };
    const struct seg g = tree_seg(sizes, DZ_OUTPUT_SCORES, false);
    struct ta t;
    ta_start(&t);
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        assert_int_equal(blob_header(blob)->tree_words, 3);
        edits[e].apply(blob, &size);
        print_message("  %s\n", edits[e].what);
        assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_ERROR_BAD_PARAMETERS);
        free(blob);
    }
    /* the TA lives on and opens the honest model */
    size_t size = 0;
    uint8_t *blob = make_blob(&g, &size);
    assert_int_equal(ta_open_model(&t, blob, size, NULL), TEEC_SUCCESS);
    assert_usable(&t, &g);
    free(blob);
    ta_stop(&t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_attack1_stale_update_buffers),
        T(test_attack1_stale_update_buffers_momentum),
        T(test_attack2_score_oracle),
        T(test_attack3_output_policy),
        T(test_scores_output),
        T(test_attack4_rollback),
        T(test_owner_blob_refusals),
        T(test_attack5_unbound),
        T(test_save_policy_within_session),
        T(test_inner_loss_layer_refused),
        T(test_alexeyab_fields_hostile),
        T(test_alexeyab_segment_matches_engine),
        T(test_tree_softmax_in_ta),
        T(test_tree_softmax_no_labels),
        T(test_tree_softmax_hostile),
    };
#undef T
    return cmocka_run_group_tests_name("ta_attacks", tests, group_setup, NULL);
}
