/*
 * test_ta_hostile.c - a hostile normal world against the DarkneTZ TA, through the GP Client API
 * only (issue 8): hundreds of distinct named cases, each expecting one exact result code (and
 * origin), each followed by a check that the TA is still usable: VERSION on the same session,
 * then an inference FORWARD whose output must be, bit for bit, what the engine computes for the
 * parameters the session should hold (a mirror network driven step by step like the TA).
 *
 * Categories (the count of each is printed at the end, "hostile: N cases"):
 *  types     every command x every slot x every wrong parameter type word, temporary memrefs,
 *            allocated shared memory (WHOLE, PARTIAL_*) and type nibbles the API does not define;
 *  sizes     every memref of every command at 0, short by 1, long by 1, odd, twice, 256 MiB
 *            (temporary and shared), NULL with a size; outputs too small give the size needed;
 *  alias     input and output memrefs overlapping in one shared block, one buffer for two
 *            parameters, unaligned offsets;
 *  order     every command in every session state (no model, opened, after FORWARD(train),
 *            BACKWARD, UPDATE, a refused load, a refused second OPEN, a refused OPEN);
 *  sealed    every field of a sealed header at its boundary values, truncated, extended,
 *            spliced, and blobs of other partitions, models, devices and policies;
 *  concurrency  two sessions of one client, threads on one or two sessions, two processes;
 *  doublefetch  a thread rewriting shared memory during OPEN_MODEL, FORWARD, LOAD_PLAIN,
 *            LOAD_SEALED and SAVE_SEALED: every result is that of one version of the input;
 *  churn     hundreds of session, context and shared-memory cycles: no descriptor or process
 *            left behind; many sessions at once; a TA killed at any point.
 * Each test has its own secure storage (DZ_TEE_STORAGE in a tests/helpers/tmpdir.h folder): a
 * new device. DNN_TEST_QUICK=1 (the sanitizer runs) lowers the repetition counts, not the cases.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <tee_client_api.h>
#include <time.h>
#include <unistd.h>

#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "ta/include/dz_wire.h"
#include "tests/helpers/tmpdir.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

/* ------------------------------------------------------------------ bookkeeping */

enum category { C_TYPES, C_SIZES, C_ALIAS, C_ORDER, C_SEALED, C_CONC, C_DFETCH, C_CHURN, C_COUNT };
static const char *const category_names[C_COUNT] = {
    "types", "sizes", "alias", "order", "sealed", "concurrency", "doublefetch", "churn"};
static unsigned n_cases[C_COUNT];

static bool quick(void)
{
    return getenv("DNN_TEST_QUICK") != NULL;
}

static int reps(int plain, int in_quick)
{
    return quick() ? in_quick : plain;
}

static const char *res_name(TEEC_Result r)
{
    switch (r) {
    case TEEC_SUCCESS:
        return "SUCCESS";
    case TEEC_ERROR_BAD_PARAMETERS:
        return "BAD_PARAMETERS";
    case TEEC_ERROR_BAD_STATE:
        return "BAD_STATE";
    case TEEC_ERROR_SHORT_BUFFER:
        return "SHORT_BUFFER";
    case TEEC_ERROR_SECURITY:
        return "SECURITY";
    case TEEC_ERROR_ACCESS_DENIED:
        return "ACCESS_DENIED";
    case TEEC_ERROR_NOT_SUPPORTED:
        return "NOT_SUPPORTED";
    case TEEC_ERROR_OUT_OF_MEMORY:
        return "OUT_OF_MEMORY";
    case TEEC_ERROR_TARGET_DEAD:
        return "TARGET_DEAD";
    case TEEC_ERROR_COMMUNICATION:
        return "COMMUNICATION";
    default:
        return "?";
    }
}

/* The case's exact result, and its origin when @want_origin is not 0. */
static void expect(const char *name, TEEC_Result got, const uint32_t *originp, TEEC_Result want,
                   uint32_t want_origin)
{
    const uint32_t origin = *originp; /* read after the call that set it */
    if (got != want || (want_origin && origin != want_origin))
        fail_msg("case %s: %s (%#x) origin %u, expected %s (%#x) origin %u", name, res_name(got),
                 (unsigned)got, (unsigned)origin, res_name(want), (unsigned)want,
                 (unsigned)want_origin);
}

/* A TA answer: an error's origin is the TA. */
static void expect_ta(const char *name, TEEC_Result got, const uint32_t *origin, TEEC_Result want)
{
    expect(name, got, origin, want, want == TEEC_SUCCESS ? 0 : TEEC_ORIGIN_TRUSTED_APP);
}

/* ------------------------------------------------------------------ the network */

/* connected 8->8 leaky (normal world), TA: connected 8->6 leaky, connected 6->4 linear (MID,
 * layers 1..2); connected 4->3, softmax, cost (END, layers 3..5). No batch normalisation and no
 * dropout: an inference output depends on the parameters alone. */
enum { NL = 6, BATCH = 2, MAXF = 64, SEALED_MAX = 2048 };
static struct dnn_net_config net_cfg;
static struct dnn_layer_spec net_specs[NL];

static void init_net(void)
{
    memset(&net_cfg, 0, sizeof(net_cfg));
    net_cfg.batch = BATCH;
    net_cfg.subdivisions = 1;
    net_cfg.h = 1;
    net_cfg.w = 1;
    net_cfg.c = 8;
    net_cfg.learning_rate = 0.1f;
    net_cfg.momentum = 0.9f;
    net_cfg.decay = 0.0005f;
    net_cfg.policy = DNN_POLICY_CONSTANT;
    net_cfg.max_batches = 1000;
    memset(net_specs, 0, sizeof(net_specs));
    net_specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = 8};
    net_specs[1] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LEAKY, .outputs = 6};
    net_specs[2] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 4};
    net_specs[3] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 3};
    net_specs[4] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
    net_specs[5] =
        (struct dnn_layer_spec){.kind = DNN_LAYER_COST, .cost_type = DNN_COST_SSE, .cost_scale = 1};
}

static struct seg seg_of(uint32_t first, uint32_t last, bool training, uint32_t batch)
{
    return (struct seg){.cfg = &net_cfg,
                        .specs = net_specs,
                        .n_layers = NL,
                        .first = first,
                        .last = last,
                        .batch = batch,
                        .training = training,
                        .output_policy = DZ_OUTPUT_TOP1,
                        .top_k = 0,
                        .seed = 0x5EEDull};
}

static uint64_t rng_state = 0x6A09E667F3BCC909ull;

static void fill(float *x, size_t n, float lo, float hi)
{
    test_rng_fill(&rng_state, x, n, lo, hi);
}

/* ------------------------------------------------------------------ sessions */

/* A session and its mirror: the engine's network driven as the TA should drive its own. */
struct sess {
    TEEC_Context *ctx;
    TEEC_Session ts;
    struct seg g;
    struct dnn_network *ref;                    /* NULL until a model is open */
    size_t in, out, truth, classes, np, sealed; /* floats per batch, floats, bytes */
    bool ends;
    float x[MAXF]; /* the last training input */
    float truth_v[MAXF];
};

static TEEC_Context gctx; /* the test's context */
static struct tmp *gtmp;
static const float probe_x[MAXF] = {0.5f, -1.25f, 0.75f, 2.0f,  -0.5f, 1.5f,  -2.0f, 0.25f,
                                    1.0f, -0.75f, 0.3f,  -1.5f, 0.9f,  -0.1f, 1.7f,  -0.6f,
                                    0.2f, 0.4f,   -0.8f, 1.1f,  -1.3f, 0.6f,  0.05f, -0.9f};

static void dims(struct sess *s)
{
    struct dnn_network *r = reference(&s->g);
    const size_t oi = dnn_network_output_index(r);
    s->in = r->layers[0].inputs * s->g.batch;
    s->out = r->layers[r->n - 1].outputs * s->g.batch;
    s->classes = r->layers[oi].outputs;
    s->truth = s->classes * s->g.batch;
    s->np = param_count(r);
    s->sealed = sizeof(struct dz_sealed_header) + s->np * sizeof(float) + DZ_SEALED_TAG_BYTES;
    s->ends = s->g.last == s->g.n_layers - 1;
    dnn_network_free(r);
}

/* Bytes of the FORWARD output of an inference pass. */
static size_t out_bytes(const struct sess *s)
{
    return s->ends ? s->g.batch * sizeof(struct dz_prediction) : s->out * sizeof(float);
}

static TEEC_Result call(struct sess *s, uint32_t cmd, TEEC_Operation *op, uint32_t *origin)
{
    *origin = 0;
    return TEEC_InvokeCommand(&s->ts, cmd, op, origin);
}

/* A new session of @g in @ctx (the test's context when NULL), no model yet. */
static void sess_start(struct sess *s, TEEC_Context *ctx, const struct seg *g)
{
    uint32_t origin = 0;
    memset(s, 0, sizeof(*s));
    s->ctx = ctx ? ctx : &gctx;
    s->g = *g;
    dims(s);
    TEEC_Result res =
        TEEC_OpenSession(s->ctx, &s->ts, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
    if (res != TEEC_SUCCESS)
        fail_msg("OpenSession: %#x origin %u", (unsigned)res, (unsigned)origin);
}

static void sess_end(struct sess *s)
{
    TEEC_CloseSession(&s->ts);
    dnn_network_free(s->ref);
    s->ref = NULL;
}

static void sess_open(struct sess *s)
{
    size_t size = 0;
    uint8_t *blob = make_blob(&s->g, &size);
    TEEC_Operation op;
    uint32_t origin = 0;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, blob, size);
    expect_ta("open", call(s, DZ_CMD_OPEN_MODEL, &op, &origin), &origin, TEEC_SUCCESS);
    free(blob);
    s->ref = reference(&s->g);
}

static void mirror_load(struct sess *s, const float *p, uint64_t seen)
{
    params_set(s->ref, p);
    dnn_network_clear_state(s->ref);
    s->ref->seen = seen;
}

/* A LOAD_PLAIN of fewer bytes than the segment's (a partial file): the TA holds the first
 * layers those bytes cover and draws the others from the seed; so does the mirror. */
static void mirror_partial(struct sess *s, size_t bytes)
{
    struct dnn_network *r = s->ref;
    size_t sum = 0, held = 0;
    if (bytes == s->np * sizeof(float))
        return;
    for (size_t i = 0; i < r->n && sum <= bytes; i++) {
        for (size_t k = 0; k < r->layers[i].n_params; k++)
            sum += r->layers[i].params[k].count * sizeof(float);
        if (sum == bytes)
            held = i + 1;
    }
    dnn_network_init_params(r, held);
}

static void sess_load_plain(struct sess *s, const float *p, uint64_t seen)
{
    TEEC_Operation op;
    uint32_t origin = 0;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, p, s->np * sizeof(float));
    op.params[1].value.a = (uint32_t)seen;
    op.params[1].value.b = (uint32_t)(seen >> 32);
    expect_ta("load plain", call(s, DZ_CMD_LOAD_PLAIN, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_load(s, p, seen);
}

/* What the mirror answers to an inference FORWARD of @x: floats, or TOP1 predictions. */
static void mirror_infer(struct sess *s, const float *x, void *want)
{
    struct dnn_network *r = s->ref;
    dnn_network_forward_range(r, 0, r->n - 1, x, NULL, false);
    if (!s->ends) {
        memcpy(want, r->layers[r->n - 1].output, s->out * sizeof(float));
        return;
    }
    const float *scores = r->layers[dnn_network_output_index(r)].output;
    struct dz_prediction *pred = want;
    for (size_t b = 0; b < s->g.batch; b++) {
        int best = -1;
        dnn_top_k(scores + b * s->classes, s->classes, 1, &best);
        memset(&pred[b], 0, sizeof(pred[b]));
        pred[b].count = 1;
        pred[b].labels[0] = best;
        for (int j = 1; j < DZ_MAX_LABELS; j++)
            pred[b].labels[j] = -1;
    }
}

/* Mirror of a training FORWARD of @x (and @truth for a segment with a cost); returns the
 * output floats of the mirror (middle segments). */
static const float *mirror_train_forward(struct sess *s, const float *x, const float *truth)
{
    struct dnn_network *r = s->ref;
    memcpy(s->x, x, s->in * sizeof(float));
    if (truth)
        memcpy(s->truth_v, truth, s->truth * sizeof(float));
    r->seen += s->g.batch;
    dnn_network_forward_range(r, 0, r->n - 1, s->x, truth ? s->truth_v : NULL, true);
    return r->layers[r->n - 1].output;
}

/* Mirror of a BACKWARD with @dy (NULL for a segment ending the network): the delta at the
 * segment's input in @dx. */
static void mirror_backward(struct sess *s, const float *dy, float *dx)
{
    struct dnn_network *r = s->ref;
    if (dy)
        for (size_t i = 0; i < s->out; i++)
            r->layers[r->n - 1].delta[i] += dy[i];
    memset(dx, 0, s->in * sizeof(float));
    dnn_network_backward_range(r, 0, r->n - 1, s->x, s->g.first > 0 ? dx : NULL);
}

static void mirror_update(struct sess *s)
{
    dnn_network_update_range(s->ref, 0, s->ref->n - 1);
}

static TEEC_Result raw_forward(struct sess *s, const float *x, const float *truth, uint32_t flags,
                               void *out, size_t *out_size, uint32_t *origin)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                         TEEC_VALUE_INPUT, out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
    set_mem(&op, 0, x, s->in * sizeof(float));
    if (truth)
        set_mem(&op, 1, truth, s->truth * sizeof(float));
    op.params[2].value.a = flags;
    if (out)
        set_mem(&op, 3, out, *out_size);
    TEEC_Result res = call(s, DZ_CMD_FORWARD, &op, origin);
    if (out)
        *out_size = op.params[3].tmpref.size;
    return res;
}

/* An inference FORWARD of @x on the session, compared with the mirror. */
static void check_infer(const char *name, struct sess *s, const float *x)
{
    uint8_t got[BATCH * 4 * sizeof(struct dz_prediction)], want[sizeof(got)];
    size_t size = out_bytes(s);
    uint32_t origin = 0;
    expect_ta(name, raw_forward(s, x, NULL, 0, got, &size, &origin), &origin, TEEC_SUCCESS);
    assert_int_equal(size, out_bytes(s));
    mirror_infer(s, x, want);
    if (memcmp(got, want, size) != 0)
        fail_msg("case %s: the TA's output is not the engine's for the parameters it should hold",
                 name);
}

/* Training steps, TA and mirror, compared. */
static void sess_train_forward(const char *name, struct sess *s, const float *x, const float *truth)
{
    float y[MAXF];
    size_t size = s->out * sizeof(float);
    uint32_t origin = 0;
    const bool out = !s->ends;
    expect_ta(name, raw_forward(s, x, truth, DZ_FORWARD_TRAIN, out ? y : NULL, &size, &origin),
              &origin, TEEC_SUCCESS);
    const float *want = mirror_train_forward(s, x, truth);
    if (out && memcmp(y, want, s->out * sizeof(float)) != 0)
        fail_msg("case %s: training forward output differs from the engine's", name);
}

static TEEC_Result raw_backward(struct sess *s, const float *dy, float *dx, size_t *dx_size,
                                uint32_t *origin)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(dy ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                         dx ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE, TEEC_NONE, TEEC_NONE);
    if (dy)
        set_mem(&op, 0, dy, s->out * sizeof(float));
    if (dx)
        set_mem(&op, 1, dx, *dx_size);
    TEEC_Result res = call(s, DZ_CMD_BACKWARD, &op, origin);
    if (dx)
        *dx_size = op.params[1].tmpref.size;
    return res;
}

static void sess_backward(const char *name, struct sess *s, const float *dy)
{
    float dx[MAXF], want[MAXF];
    size_t size = s->in * sizeof(float);
    uint32_t origin = 0;
    expect_ta(name, raw_backward(s, s->ends ? NULL : dy, dx, &size, &origin), &origin,
              TEEC_SUCCESS);
    mirror_backward(s, s->ends ? NULL : dy, want);
    if (memcmp(dx, want, s->in * sizeof(float)) != 0)
        fail_msg("case %s: delta at the segment's input differs from the engine's", name);
}

static void sess_update(const char *name, struct sess *s)
{
    TEEC_Operation op;
    uint32_t origin = 0;
    memset(&op, 0, sizeof(op));
    expect_ta(name, call(s, DZ_CMD_UPDATE, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_update(s);
}

/* VERSION answers protocol 2. */
static void check_version(const char *name, struct sess *s)
{
    TEEC_Operation op;
    uint32_t origin = 0;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    expect_ta(name, call(s, DZ_CMD_VERSION, &op, &origin), &origin, TEEC_SUCCESS);
    if (op.params[0].value.a != DZ_TA_PROTOCOL_VERSION)
        fail_msg("case %s: VERSION says %u", name, (unsigned)op.params[0].value.a);
}

/*
 * After every case: the session answers VERSION, then (opening the model first when the case
 * left none) an inference FORWARD whose output is the mirror's. Counts the case.
 */
static void usable(enum category c, const char *name, struct sess *s)
{
    check_version(name, s);
    if (!s->ref)
        sess_open(s);
    check_infer(name, s, probe_x);
    n_cases[c]++;
}

/* After a case whose session is gone: a fresh session of the test's context works. */
static void usable_fresh(enum category c, const char *name)
{
    struct sess s;
    const struct seg g = seg_of(1, 2, true, BATCH);
    sess_start(&s, NULL, &g);
    usable(c, name, &s);
    sess_end(&s);
}

/* ------------------------------------------------------------------ fixtures */

/* Parameters p (the sessions' own) and q (a sealed blob's), per segment. */
static float mid_p[MAXF * 2], mid_q[MAXF * 2], end_p[MAXF], end_q[MAXF];
enum { SEEN_P = 77, SEEN_Q = 123456789 };

static void make_params(void)
{
    fill(mid_p, sizeof(mid_p) / sizeof(float), -1, 1);
    fill(mid_q, sizeof(mid_q) / sizeof(float), -1, 1);
    fill(end_p, sizeof(end_p) / sizeof(float), -1, 1);
    fill(end_q, sizeof(end_q) / sizeof(float), -1, 1);
}

/* A device blob of @p sealed by a session of @g on this test's device. */
static size_t seal_params(const struct seg *g, const float *p, uint64_t seen, uint8_t *blob)
{
    struct sess s;
    TEEC_Operation op;
    uint32_t origin = 0;
    sess_start(&s, NULL, g);
    sess_open(&s);
    sess_load_plain(&s, p, seen);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, blob, SEALED_MAX);
    expect_ta("seal", call(&s, DZ_CMD_SAVE_SEALED, &op, &origin), &origin, TEEC_SUCCESS);
    assert_int_equal(op.params[0].tmpref.size, s.sealed);
    size_t size = s.sealed;
    sess_end(&s);
    return size;
}

/* A session of @g opened with p loaded. */
static void sess_ready(struct sess *s, TEEC_Context *ctx, const struct seg *g)
{
    sess_start(s, ctx, g);
    sess_open(s);
    sess_load_plain(s, g->first == 1 ? mid_p : end_p, SEEN_P);
}

/* ------------------------------------------------------------------ actions */

/* What a case does: a command with the right parameters for the session. */
enum action {
    A_VERSION,
    A_OPEN,
    A_LOAD_PLAIN,
    A_FWD_INF,
    A_FWD_TRAIN,
    A_BACKWARD,
    A_UPDATE,
    A_SAVE,
    A_SAVE_POL,
    A_LOAD_SEALED,
    A_PUBKEY,
    A_TRAIN_STEP,
    A_UNKNOWN,
    A_COUNT
};
static const char *const action_names[A_COUNT] = {
    "VERSION", "OPEN_MODEL",  "LOAD_PLAIN",         "FORWARD",     "FORWARD_TRAIN", "BACKWARD",
    "UPDATE",  "SAVE_SEALED", "SAVE_SEALED_POLICY", "LOAD_SEALED", "GET_PUBKEY",    "TRAIN_STEP",
    "UNKNOWN"};
static const uint32_t action_cmd[A_COUNT] = {
    DZ_CMD_VERSION,     DZ_CMD_OPEN_MODEL,  DZ_CMD_LOAD_PLAIN, DZ_CMD_FORWARD,
    DZ_CMD_FORWARD,     DZ_CMD_BACKWARD,    DZ_CMD_UPDATE,     DZ_CMD_SAVE_SEALED,
    DZ_CMD_SAVE_SEALED, DZ_CMD_LOAD_SEALED, DZ_CMD_GET_PUBKEY, DZ_CMD_TRAIN_STEP,
    DZ_CMD_COUNT};

/* The memory behind an action's parameters. */
struct bufs {
    uint8_t *blob; /* the session's model blob */
    size_t blob_size;
    const float *params; /* LOAD_PLAIN */
    float x[MAXF], truth[MAXF], dy[MAXF];
    uint8_t out[SEALED_MAX];    /* FORWARD, BACKWARD, SAVE_SEALED, GET_PUBKEY outputs */
    uint8_t sealed[SEALED_MAX]; /* a valid blob of q for the session */
    size_t sealed_size;
    const float *sealed_params;
    struct dz_policy pol; /* the session's own request */
};

static void bufs_init(struct bufs *b, const struct sess *s)
{
    memset(b, 0, sizeof(*b));
    b->blob = make_blob(&s->g, &b->blob_size);
    dz_policy_of_request(blob_header(b->blob), &b->pol);
    b->params = s->g.first == 1 ? mid_p : end_p;
    b->sealed_params = s->g.first == 1 ? mid_q : end_q;
    b->sealed_size = seal_params(&s->g, b->sealed_params, SEEN_Q, b->sealed);
    fill(b->x, MAXF, -2, 2);
    memset(b->truth, 0, sizeof(b->truth));
    for (size_t i = 0; i < s->g.batch; i++)
        b->truth[i * s->classes + i % s->classes] = 1;
    fill(b->dy, MAXF, -0.5f, 0.5f);
}

static void bufs_free(struct bufs *b)
{
    free(b->blob);
}

/* The right operation of @a for session @s, over @b. */
static void right_op(const struct sess *s, struct bufs *b, enum action a, TEEC_Operation *op)
{
    memset(op, 0, sizeof(*op));
    switch (a) {
    case A_VERSION:
        op->paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        break;
    case A_OPEN:
        op->paramTypes =
            TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
        set_mem(op, 0, b->blob, b->blob_size);
        break;
    case A_LOAD_PLAIN:
        op->paramTypes =
            TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
        set_mem(op, 0, b->params, s->np * sizeof(float));
        op->params[1].value.a = SEEN_P;
        break;
    case A_FWD_INF:
    case A_FWD_TRAIN: {
        const bool train = a == A_FWD_TRAIN;
        const bool truth = train && s->ends;
        const bool out = !s->ends || !train;
        op->paramTypes =
            TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                             TEEC_VALUE_INPUT, out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
        set_mem(op, 0, b->x, s->in * sizeof(float));
        if (truth)
            set_mem(op, 1, b->truth, s->truth * sizeof(float));
        op->params[2].value.a = train ? DZ_FORWARD_TRAIN : 0;
        if (out)
            set_mem(op, 3, b->out, train ? s->out * sizeof(float) : out_bytes(s));
        break;
    }
    case A_BACKWARD:
        op->paramTypes = TEEC_PARAM_TYPES(s->ends ? TEEC_NONE : TEEC_MEMREF_TEMP_INPUT,
                                          TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
        if (!s->ends)
            set_mem(op, 0, b->dy, s->out * sizeof(float));
        set_mem(op, 1, b->out, s->in * sizeof(float));
        break;
    case A_TRAIN_STEP:
        /* A whole step with its UPDATE, the parameters of an end segment (a middle one is
         * refused whatever it sends). */
        op->paramTypes = TEEC_PARAM_TYPES(
            TEEC_MEMREF_TEMP_INPUT, s->ends ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE, TEEC_VALUE_INOUT,
            s->g.first > 0 ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
        set_mem(op, 0, b->x, s->in * sizeof(float));
        if (s->ends)
            set_mem(op, 1, b->truth, s->truth * sizeof(float));
        op->params[2].value.a = DZ_STEP_UPDATE;
        if (s->g.first > 0)
            set_mem(op, 3, b->out, s->in * sizeof(float));
        break;
    case A_UPDATE:
    case A_UNKNOWN:
        break;
    case A_SAVE:
    case A_SAVE_POL:
        op->paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT,
                                          a == A_SAVE_POL ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE,
                                          TEEC_NONE, TEEC_NONE);
        set_mem(op, 0, b->out, s->sealed);
        if (a == A_SAVE_POL)
            set_mem(op, 1, &b->pol, sizeof(b->pol));
        break;
    case A_LOAD_SEALED:
        op->paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                          TEEC_VALUE_OUTPUT, TEEC_NONE);
        set_mem(op, 0, b->sealed, b->sealed_size);
        break;
    case A_PUBKEY:
        op->paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        set_mem(op, 0, b->out, DZ_X25519_BYTES);
        break;
    case A_COUNT:
        break;
    }
}

/* After a successful action: the mirror follows, and outputs are checked against it. @out is
 * where the TA's output went. */
static void mirror_action(const char *name, struct sess *s, struct bufs *b, enum action a,
                          const TEEC_Operation *op, const uint8_t *out)
{
    uint8_t want[SEALED_MAX];
    switch (a) {
    case A_OPEN:
        assert_null(s->ref);
        s->ref = reference(&s->g);
        break;
    case A_LOAD_PLAIN:
        mirror_load(s, b->params, SEEN_P);
        mirror_partial(s, op->params[0].tmpref.size);
        break;
    case A_FWD_INF:
        mirror_infer(s, b->x, want);
        if (memcmp(out, want, out_bytes(s)) != 0)
            fail_msg("case %s: FORWARD output is not the engine's", name);
        break;
    case A_FWD_TRAIN: {
        const float *y = mirror_train_forward(s, b->x, s->ends ? b->truth : NULL);
        if (!s->ends && memcmp(out, y, s->out * sizeof(float)) != 0)
            fail_msg("case %s: training FORWARD output is not the engine's", name);
        break;
    }
    case A_BACKWARD: {
        float dx[MAXF];
        mirror_backward(s, s->ends ? NULL : b->dy, dx);
        if (memcmp(out, dx, s->in * sizeof(float)) != 0)
            fail_msg("case %s: BACKWARD delta is not the engine's", name);
        break;
    }
    case A_UPDATE:
        mirror_update(s);
        break;
    case A_TRAIN_STEP: {
        float dx[MAXF];
        mirror_train_forward(s, b->x, s->ends ? b->truth : NULL);
        mirror_backward(s, NULL, dx);
        mirror_update(s);
        if (s->g.first > 0 && memcmp(out, dx, s->in * sizeof(float)) != 0)
            fail_msg("case %s: TRAIN_STEP delta is not the engine's", name);
        break;
    }
    case A_LOAD_SEALED:
        mirror_load(s, b->sealed_params, SEEN_Q);
        if (op->params[1].value.a != SEEN_Q || op->params[1].value.b != 0)
            fail_msg("case %s: LOAD_SEALED seen %u:%u", name, (unsigned)op->params[1].value.b,
                     (unsigned)op->params[1].value.a);
        break;
    case A_SAVE:
    case A_SAVE_POL: {
        const struct dz_sealed_header *h = (const void *)out;
        if (h->magic != DZ_SEALED_MAGIC || h->payload_bytes != s->np * sizeof(float))
            fail_msg("case %s: SAVE_SEALED wrote no sealed header", name);
        break;
    }
    default:
        break;
    }
}

/* ------------------------------------------------------------------ test setup */

static int setup(void **state)
{
    char path[256];
    if (tmp_setup(state) != 0)
        return -1;
    gtmp = *state;
    snprintf(path, sizeof(path), "%s/storage", gtmp->dir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof(path), "%s/console.log", gtmp->dir);
    setenv("DZ_TEE_LOG", path, 1);
    return TEEC_InitializeContext(NULL, &gctx) == TEEC_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    TEEC_FinalizeContext(&gctx);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/storage' '%s/storage2'", gtmp->dir, gtmp->dir);
    if (system(cmd) != 0)
        return -1;
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG");
    return tmp_teardown(state);
}

/* ================================================================== types */

static const uint32_t type_words[] = {TEEC_NONE,
                                      TEEC_VALUE_INPUT,
                                      TEEC_VALUE_OUTPUT,
                                      TEEC_VALUE_INOUT,
                                      TEEC_MEMREF_TEMP_INPUT,
                                      TEEC_MEMREF_TEMP_OUTPUT,
                                      TEEC_MEMREF_TEMP_INOUT};
static const char *const type_names[16] = {"NONE",  "VALUE_IN",   "VALUE_OUT",   "VALUE_INOUT",
                                           "4",     "TEMP_IN",    "TEMP_OUT",    "TEMP_INOUT",
                                           "8",     "9",          "10",          "11",
                                           "WHOLE", "PARTIAL_IN", "PARTIAL_OUT", "PARTIAL_INOUT"};

static bool is_memref(uint32_t t)
{
    return t >= TEEC_MEMREF_TEMP_INPUT && t != 8 && t != 9 && t != 10 && t != 11;
}

static void set_type(TEEC_Operation *op, int slot, uint32_t t)
{
    op->paramTypes = (op->paramTypes & ~(0xFu << (4 * slot))) | (t << (4 * slot));
}

/* The actions whose type word the type cases vary: every command of the protocol. */
static const enum action type_actions[] = {A_VERSION, A_OPEN, A_LOAD_PLAIN,  A_FWD_INF, A_BACKWARD,
                                           A_UPDATE,  A_SAVE, A_LOAD_SEALED, A_PUBKEY};

/* Every slot of @a's operation x every type word it does not take: BAD_PARAMETERS. */
static void wrong_types(struct sess *s, struct bufs *b, enum action a)
{
    static uint8_t scratch[16];
    char name[160];
    TEEC_Operation op;
    uint32_t origin = 0;
    for (int slot = 0; slot < 4; slot++) {
        for (size_t w = 0; w < sizeof(type_words) / sizeof(type_words[0]); w++) {
            right_op(s, b, a, &op);
            const uint32_t right = TEEC_PARAM_TYPE_GET(op.paramTypes, slot);
            const uint32_t t = type_words[w];
            if (t == right || (a == A_SAVE && slot == 1 && t == TEEC_MEMREF_TEMP_INPUT))
                continue; /* the right word, or SAVE_SEALED's optional policy */
            if (is_memref(t) && !is_memref(right))
                set_mem(&op, slot, scratch, sizeof(scratch));
            if (!is_memref(t) && is_memref(right))
                memset(&op.params[slot], 0, sizeof(op.params[slot]));
            set_type(&op, slot, t);
            snprintf(name, sizeof(name), "types/%s/slot%d=%s", action_names[a], slot,
                     type_names[t]);
            expect_ta(name, call(s, action_cmd[a], &op, &origin), &origin,
                      TEEC_ERROR_BAD_PARAMETERS);
            usable(C_TYPES, name, s);
        }
    }
}

static void test_types(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 2, true, BATCH);
    struct sess s;
    struct bufs b;
    char name[160];
    TEEC_Operation op;
    uint32_t origin = 0;

    sess_ready(&s, NULL, &g);
    bufs_init(&b, &s);

    /* Every command x every slot x every type word it does not take. */
    for (size_t ai = 0; ai < sizeof(type_actions) / sizeof(type_actions[0]); ai++)
        wrong_types(&s, &b, type_actions[ai]);
    /* TRAIN_STEP on a segment that ends the network: a middle one is refused (BAD_STATE)
     * whatever it sends, an end segment's step checks every slot. */
    {
        const struct seg ge = seg_of(3, 5, true, BATCH);
        struct sess se;
        struct bufs be;
        sess_ready(&se, NULL, &ge);
        bufs_init(&be, &se);
        wrong_types(&se, &be, A_TRAIN_STEP);
        bufs_free(&be);
        sess_end(&se);
    }

    /* Type nibbles the Client API does not define: refused by the client (origin API). */
    static const uint32_t undefined[] = {4, 8, 9, 10, 11};
    static const struct {
        enum action a;
        int slot;
    } where[] = {{A_FWD_INF, 0}, {A_LOAD_SEALED, 2}, {A_UPDATE, 3}};
    for (size_t k = 0; k < sizeof(where) / sizeof(where[0]); k++)
        for (size_t u = 0; u < sizeof(undefined) / sizeof(undefined[0]); u++) {
            right_op(&s, &b, where[k].a, &op);
            set_type(&op, where[k].slot, undefined[u]);
            snprintf(name, sizeof(name), "types/%s/slot%d=undefined-%u", action_names[where[k].a],
                     where[k].slot, (unsigned)undefined[u]);
            expect(name, call(&s, action_cmd[where[k].a], &op, &origin), &origin,
                   TEEC_ERROR_BAD_PARAMETERS, TEEC_ORIGIN_API);
            usable(C_TYPES, name, &s);
        }

    /* Allocated shared memory: WHOLE (input and output: the TA sees INOUT), PARTIAL in the
     * wrong direction and PARTIAL_INOUT are refused; PARTIAL in the right direction works as
     * the temporary memref does. */
    TEEC_SharedMemory shm;
    memset(&shm, 0, sizeof(shm));
    shm.size = 4096;
    shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    assert_int_equal(TEEC_AllocateSharedMemory(&gctx, &shm), TEEC_SUCCESS);
    static const struct {
        enum action a;
        int slot;
        TEEC_Result right_result; /* with PARTIAL in the right direction, in this state */
    } memslots[] = {
        {A_OPEN, 0, TEEC_ERROR_BAD_STATE},
        {A_LOAD_PLAIN, 0, TEEC_SUCCESS},
        {A_FWD_INF, 0, TEEC_SUCCESS},
        {A_FWD_INF, 3, TEEC_SUCCESS},
        {A_BACKWARD, 0, TEEC_ERROR_BAD_STATE},
        {A_BACKWARD, 1, TEEC_ERROR_BAD_STATE},
        {A_SAVE, 0, TEEC_SUCCESS},
        {A_SAVE_POL, 1, TEEC_SUCCESS},
        {A_LOAD_SEALED, 0, TEEC_SUCCESS},
        {A_PUBKEY, 0, TEEC_SUCCESS},
    };
    for (size_t k = 0; k < sizeof(memslots) / sizeof(memslots[0]); k++) {
        const enum action a = memslots[k].a;
        const int slot = memslots[k].slot;
        for (int v = 0; v < 4; v++) {
            right_op(&s, &b, a, &op);
            const uint32_t right = TEEC_PARAM_TYPE_GET(op.paramTypes, slot);
            const bool input = right == TEEC_MEMREF_TEMP_INPUT;
            void *src = op.params[slot].tmpref.buffer;
            const size_t size = op.params[slot].tmpref.size;
            const uint32_t t =
                v == 0   ? TEEC_MEMREF_WHOLE
                : v == 1 ? TEEC_MEMREF_PARTIAL_INOUT
                : v == 2 ? (input ? TEEC_MEMREF_PARTIAL_OUTPUT : TEEC_MEMREF_PARTIAL_INPUT)
                         : (input ? TEEC_MEMREF_PARTIAL_INPUT : TEEC_MEMREF_PARTIAL_OUTPUT);
            memset(shm.buffer, 0, shm.size);
            if (input)
                memcpy(shm.buffer, src, size);
            op.params[slot].memref.parent = &shm;
            op.params[slot].memref.offset = 0;
            op.params[slot].memref.size = size;
            set_type(&op, slot, t);
            snprintf(name, sizeof(name), "types/%s/slot%d=%s(shared)", action_names[a], slot,
                     type_names[t]);
            const TEEC_Result want = v == 3 ? memslots[k].right_result : TEEC_ERROR_BAD_PARAMETERS;
            expect_ta(name, call(&s, action_cmd[a], &op, &origin), &origin, want);
            if (want == TEEC_SUCCESS) /* outputs went to shm, or to the temporary b.out */
                mirror_action(name, &s, &b, a, &op, input ? b.out : (uint8_t *)shm.buffer);
            usable(C_TYPES, name, &s);
        }
    }
    TEEC_ReleaseSharedMemory(&shm);
    bufs_free(&b);
    sess_end(&s);
}

/* ================================================================== sizes */

enum size_mode { M_TEMP, M_NULL, M_SHM_HUGE, M_TEMP_HUGE };
#define HUGE_BYTES (256u * 1024u * 1024u)

struct size_case {
    const char *name;
    enum action a;
    int slot;
    bool rel; /* size = right + d, else d */
    long long d;
    enum size_mode mode;
    TEEC_Result want;
    uint32_t want_origin;
    int flags;
};
enum { F_NOMODEL = 1, F_PREFWD = 2, F_UPDATE = 4, F_END = 8, F_SIZE = 16 };

#define API TEEC_ORIGIN_API
#define TA TEEC_ORIGIN_TRUSTED_APP
#define BP TEEC_ERROR_BAD_PARAMETERS
#define SB TEEC_ERROR_SHORT_BUFFER
#define SEC TEEC_ERROR_SECURITY
#define OK TEEC_SUCCESS
#define BS TEEC_ERROR_BAD_STATE

static const struct size_case size_cases[] = {
    /* OPEN_MODEL's blob: exactly a header and n_specs specs */
    {"open/0", A_OPEN, 0, false, 0, M_TEMP, BP, TA, F_NOMODEL},
    {"open/1", A_OPEN, 0, false, 1, M_TEMP, BP, TA, F_NOMODEL},
    {"open/header-1", A_OPEN, 0, false, sizeof(struct dz_model_header) - 1, M_TEMP, BP, TA,
     F_NOMODEL},
    {"open/header-only", A_OPEN, 0, false, sizeof(struct dz_model_header), M_TEMP, BP, TA,
     F_NOMODEL},
    {"open/short-1", A_OPEN, 0, true, -1, M_TEMP, BP, TA, F_NOMODEL},
    {"open/long+1", A_OPEN, 0, true, 1, M_TEMP, BP, TA, F_NOMODEL},
    {"open/short-spec", A_OPEN, 0, true, -(long long)sizeof(struct dz_wire_spec), M_TEMP, BP, TA,
     F_NOMODEL},
    {"open/long+spec", A_OPEN, 0, true, (long long)sizeof(struct dz_wire_spec), M_TEMP, BP, TA,
     F_NOMODEL},
    {"open/odd", A_OPEN, 0, true, 3, M_TEMP, BP, TA, F_NOMODEL},
    {"open/256MiB-shared", A_OPEN, 0, false, 0, M_SHM_HUGE, BP, TA, F_NOMODEL},
    {"open/NULL+size", A_OPEN, 0, true, 0, M_NULL, BP, API, F_NOMODEL},
    {"open/NULL+0", A_OPEN, 0, false, 0, M_NULL, BP, TA, F_NOMODEL},
    /* LOAD_PLAIN: exactly the parameter bytes of the segment's first k layers, all of
     * them or fewer (a partial file); 0 bytes is k = 0: every layer from the seed */
    {"load_plain/0", A_LOAD_PLAIN, 0, false, 0, M_TEMP, OK, TA, 0},
    {"load_plain/1", A_LOAD_PLAIN, 0, false, 1, M_TEMP, BP, TA, 0},
    {"load_plain/odd-3", A_LOAD_PLAIN, 0, false, 3, M_TEMP, BP, TA, 0},
    {"load_plain/short-1", A_LOAD_PLAIN, 0, true, -1, M_TEMP, BP, TA, 0},
    {"load_plain/long+1", A_LOAD_PLAIN, 0, true, 1, M_TEMP, BP, TA, 0},
    {"load_plain/short-float", A_LOAD_PLAIN, 0, true, -4, M_TEMP, BP, TA, 0},
    {"load_plain/long+float", A_LOAD_PLAIN, 0, true, 4, M_TEMP, BP, TA, 0},
    {"load_plain/odd+3", A_LOAD_PLAIN, 0, true, 3, M_TEMP, BP, TA, 0},
    {"load_plain/twice", A_LOAD_PLAIN, 0, true, 328, M_TEMP, BP, TA, 0},
    {"load_plain/256MiB-temp", A_LOAD_PLAIN, 0, false, 0, M_TEMP_HUGE, BP, TA, 0},
    {"load_plain/256MiB-shared", A_LOAD_PLAIN, 0, false, 0, M_SHM_HUGE, BP, TA, 0},
    {"load_plain/NULL+size", A_LOAD_PLAIN, 0, true, 0, M_NULL, BP, API, 0},
    {"load_plain/NULL+0", A_LOAD_PLAIN, 0, false, 0, M_NULL, OK, TA, 0},
    /* FORWARD's input: exactly batch * inputs floats */
    {"forward.in/0", A_FWD_INF, 0, false, 0, M_TEMP, BP, TA, 0},
    {"forward.in/odd-3", A_FWD_INF, 0, false, 3, M_TEMP, BP, TA, 0},
    {"forward.in/short-1", A_FWD_INF, 0, true, -1, M_TEMP, BP, TA, 0},
    {"forward.in/long+1", A_FWD_INF, 0, true, 1, M_TEMP, BP, TA, 0},
    {"forward.in/short-float", A_FWD_INF, 0, true, -4, M_TEMP, BP, TA, 0},
    {"forward.in/long+float", A_FWD_INF, 0, true, 4, M_TEMP, BP, TA, 0},
    {"forward.in/one-image", A_FWD_INF, 0, true, -32, M_TEMP, BP, TA, 0},
    {"forward.in/twice", A_FWD_INF, 0, true, 64, M_TEMP, BP, TA, 0},
    {"forward.in/256MiB-shared", A_FWD_INF, 0, false, 0, M_SHM_HUGE, BP, TA, 0},
    {"forward.in/NULL+size", A_FWD_INF, 0, true, 0, M_NULL, BP, API, 0},
    {"forward.in/NULL+0", A_FWD_INF, 0, false, 0, M_NULL, BP, TA, 0},
    {"forward_train.in/short-1", A_FWD_TRAIN, 0, true, -1, M_TEMP, BP, TA, 0},
    {"forward_train.in/long+1", A_FWD_TRAIN, 0, true, 1, M_TEMP, BP, TA, 0},
    /* FORWARD's output: at least what it writes; the size needed comes back */
    {"forward.out/0", A_FWD_INF, 3, false, 0, M_TEMP, SB, TA, F_SIZE},
    {"forward.out/1", A_FWD_INF, 3, false, 1, M_TEMP, SB, TA, F_SIZE},
    {"forward.out/short-1", A_FWD_INF, 3, true, -1, M_TEMP, SB, TA, F_SIZE},
    {"forward.out/short-float", A_FWD_INF, 3, true, -4, M_TEMP, SB, TA, F_SIZE},
    {"forward.out/long+1", A_FWD_INF, 3, true, 1, M_TEMP, OK, TA, F_SIZE},
    {"forward.out/twice", A_FWD_INF, 3, true, 32, M_TEMP, OK, TA, F_SIZE},
    {"forward.out/256MiB-shared", A_FWD_INF, 3, false, 0, M_SHM_HUGE, OK, TA, F_SIZE},
    {"forward.out/NULL+0", A_FWD_INF, 3, false, 0, M_NULL, SB, TA, F_SIZE},
    {"forward.out/NULL+size", A_FWD_INF, 3, true, 0, M_NULL, BP, API, 0},
    {"forward_train.out/short-1", A_FWD_TRAIN, 3, true, -1, M_TEMP, SB, TA, F_SIZE},
    /* FORWARD's truth (end segment, training): exactly batch * truths floats */
    {"forward.truth/0", A_FWD_TRAIN, 1, false, 0, M_TEMP, BP, TA, F_END},
    {"forward.truth/short-1", A_FWD_TRAIN, 1, true, -1, M_TEMP, BP, TA, F_END},
    {"forward.truth/long+1", A_FWD_TRAIN, 1, true, 1, M_TEMP, BP, TA, F_END},
    {"forward.truth/short-float", A_FWD_TRAIN, 1, true, -4, M_TEMP, BP, TA, F_END},
    {"forward.truth/long+float", A_FWD_TRAIN, 1, true, 4, M_TEMP, BP, TA, F_END},
    {"forward.truth/input-size", A_FWD_TRAIN, 1, true, 8, M_TEMP, BP, TA, F_END},
    {"forward.truth/256MiB-shared", A_FWD_TRAIN, 1, false, 0, M_SHM_HUGE, BP, TA, F_END},
    {"forward.truth/NULL+size", A_FWD_TRAIN, 1, true, 0, M_NULL, BP, API, F_END},
    {"forward_end.in/short-1", A_FWD_TRAIN, 0, true, -1, M_TEMP, BP, TA, F_END},
    {"forward_end.pred/short-1", A_FWD_INF, 3, true, -1, M_TEMP, SB, TA, F_END | F_SIZE},
    {"forward_end.pred/one-record", A_FWD_INF, 3, false, sizeof(struct dz_prediction), M_TEMP, SB,
     TA, F_END | F_SIZE},
    {"forward_end.pred/long+1", A_FWD_INF, 3, true, 1, M_TEMP, OK, TA, F_END | F_SIZE},
    /* BACKWARD's delta in: exactly batch * outputs floats (checked before the state) */
    {"backward.in/0", A_BACKWARD, 0, false, 0, M_TEMP, BP, TA, F_PREFWD},
    {"backward.in/short-1", A_BACKWARD, 0, true, -1, M_TEMP, BP, TA, F_PREFWD},
    {"backward.in/long+1", A_BACKWARD, 0, true, 1, M_TEMP, BP, TA, F_PREFWD},
    {"backward.in/short-float", A_BACKWARD, 0, true, -4, M_TEMP, BP, TA, F_PREFWD},
    {"backward.in/long+float", A_BACKWARD, 0, true, 4, M_TEMP, BP, TA, F_PREFWD},
    {"backward.in/256MiB-shared", A_BACKWARD, 0, false, 0, M_SHM_HUGE, BP, TA, F_PREFWD},
    {"backward.in/NULL+size", A_BACKWARD, 0, true, 0, M_NULL, BP, API, F_PREFWD},
    /* BACKWARD's delta out */
    {"backward.out/0", A_BACKWARD, 1, false, 0, M_TEMP, SB, TA, F_PREFWD | F_SIZE},
    {"backward.out/short-1", A_BACKWARD, 1, true, -1, M_TEMP, SB, TA, F_PREFWD | F_SIZE},
    {"backward.out/short-float", A_BACKWARD, 1, true, -4, M_TEMP, SB, TA, F_PREFWD | F_SIZE},
    {"backward.out/NULL+0", A_BACKWARD, 1, false, 0, M_NULL, SB, TA, F_PREFWD | F_SIZE},
    {"backward.out/long+1", A_BACKWARD, 1, true, 1, M_TEMP, OK, TA, F_PREFWD | F_SIZE | F_UPDATE},
    {"backward.out/256MiB-shared", A_BACKWARD, 1, false, 0, M_SHM_HUGE, OK, TA,
     F_PREFWD | F_SIZE | F_UPDATE},
    {"backward_end.out/short-1", A_BACKWARD, 1, true, -1, M_TEMP, SB, TA,
     F_END | F_PREFWD | F_SIZE},
    /* TRAIN_STEP (end segment): FORWARD's input and truth, BACKWARD's delta out; a short
     * delta buffer is refused before anything runs */
    {"train_step.in/0", A_TRAIN_STEP, 0, false, 0, M_TEMP, BP, TA, F_END},
    {"train_step.in/short-1", A_TRAIN_STEP, 0, true, -1, M_TEMP, BP, TA, F_END},
    {"train_step.in/long+float", A_TRAIN_STEP, 0, true, 4, M_TEMP, BP, TA, F_END},
    {"train_step.in/256MiB-shared", A_TRAIN_STEP, 0, false, 0, M_SHM_HUGE, BP, TA, F_END},
    {"train_step.in/NULL+size", A_TRAIN_STEP, 0, true, 0, M_NULL, BP, API, F_END},
    {"train_step.truth/0", A_TRAIN_STEP, 1, false, 0, M_TEMP, BP, TA, F_END},
    {"train_step.truth/short-1", A_TRAIN_STEP, 1, true, -1, M_TEMP, BP, TA, F_END},
    {"train_step.truth/long+float", A_TRAIN_STEP, 1, true, 4, M_TEMP, BP, TA, F_END},
    {"train_step.out/0", A_TRAIN_STEP, 3, false, 0, M_TEMP, SB, TA, F_END | F_SIZE},
    {"train_step.out/short-1", A_TRAIN_STEP, 3, true, -1, M_TEMP, SB, TA, F_END | F_SIZE},
    {"train_step.out/short-float", A_TRAIN_STEP, 3, true, -4, M_TEMP, SB, TA, F_END | F_SIZE},
    {"train_step.out/NULL+0", A_TRAIN_STEP, 3, false, 0, M_NULL, SB, TA, F_END | F_SIZE},
    {"train_step.out/long+1", A_TRAIN_STEP, 3, true, 1, M_TEMP, OK, TA, F_END | F_SIZE},
    {"train_step.out/256MiB-shared", A_TRAIN_STEP, 3, false, 0, M_SHM_HUGE, OK, TA, F_END | F_SIZE},
    {"train_step.out/NULL+size", A_TRAIN_STEP, 3, true, 0, M_NULL, BP, API, F_END},
    /* SAVE_SEALED's blob: at least the sealed size */
    {"save.out/0", A_SAVE, 0, false, 0, M_TEMP, SB, TA, F_SIZE},
    {"save.out/1", A_SAVE, 0, false, 1, M_TEMP, SB, TA, F_SIZE},
    {"save.out/header-only", A_SAVE, 0, false, sizeof(struct dz_sealed_header), M_TEMP, SB, TA,
     F_SIZE},
    {"save.out/short-1", A_SAVE, 0, true, -1, M_TEMP, SB, TA, F_SIZE},
    {"save.out/no-tag", A_SAVE, 0, true, -16, M_TEMP, SB, TA, F_SIZE},
    {"save.out/NULL+0", A_SAVE, 0, false, 0, M_NULL, SB, TA, F_SIZE},
    {"save.out/long+1", A_SAVE, 0, true, 1, M_TEMP, OK, TA, F_SIZE},
    {"save.out/twice", A_SAVE, 0, true, 604, M_TEMP, OK, TA, F_SIZE},
    {"save.out/256MiB-shared", A_SAVE, 0, false, 0, M_SHM_HUGE, OK, TA, F_SIZE},
    {"save.out/NULL+size", A_SAVE, 0, true, 0, M_NULL, BP, API, 0},
    /* SAVE_SEALED's policy: exactly a struct dz_policy */
    {"save.policy/0", A_SAVE_POL, 1, false, 0, M_TEMP, BP, TA, 0},
    {"save.policy/4", A_SAVE_POL, 1, false, 4, M_TEMP, BP, TA, 0},
    {"save.policy/short-1", A_SAVE_POL, 1, true, -1, M_TEMP, BP, TA, 0},
    {"save.policy/long+1", A_SAVE_POL, 1, true, 1, M_TEMP, BP, TA, 0},
    {"save.policy/twice", A_SAVE_POL, 1, true, 48, M_TEMP, BP, TA, 0},
    {"save.policy/256MiB-shared", A_SAVE_POL, 1, false, 0, M_SHM_HUGE, BP, TA, 0},
    {"save.policy/NULL+size", A_SAVE_POL, 1, true, 0, M_NULL, BP, API, 0},
    {"save.policy/NULL+0", A_SAVE_POL, 1, false, 0, M_NULL, BP, TA, 0},
    /* LOAD_SEALED's blob: exactly the sealed size, else SECURITY */
    {"load_sealed/0", A_LOAD_SEALED, 0, false, 0, M_TEMP, SEC, TA, 0},
    {"load_sealed/1", A_LOAD_SEALED, 0, false, 1, M_TEMP, SEC, TA, 0},
    {"load_sealed/magic-only", A_LOAD_SEALED, 0, false, 4, M_TEMP, SEC, TA, 0},
    {"load_sealed/header-1", A_LOAD_SEALED, 0, false, sizeof(struct dz_sealed_header) - 1, M_TEMP,
     SEC, TA, 0},
    {"load_sealed/header-only", A_LOAD_SEALED, 0, false, sizeof(struct dz_sealed_header), M_TEMP,
     SEC, TA, 0},
    {"load_sealed/no-tag", A_LOAD_SEALED, 0, true, -16, M_TEMP, SEC, TA, 0},
    {"load_sealed/short-1", A_LOAD_SEALED, 0, true, -1, M_TEMP, SEC, TA, 0},
    {"load_sealed/long+1", A_LOAD_SEALED, 0, true, 1, M_TEMP, SEC, TA, 0},
    {"load_sealed/long+tag", A_LOAD_SEALED, 0, true, 16, M_TEMP, SEC, TA, 0},
    {"load_sealed/twice", A_LOAD_SEALED, 0, true, 604, M_TEMP, SEC, TA, 0},
    {"load_sealed/256MiB-shared", A_LOAD_SEALED, 0, false, 0, M_SHM_HUGE, SEC, TA, 0},
    {"load_sealed/NULL+size", A_LOAD_SEALED, 0, true, 0, M_NULL, BP, API, 0},
    {"load_sealed/NULL+0", A_LOAD_SEALED, 0, false, 0, M_NULL, SEC, TA, 0},
    /* GET_PUBKEY: at least 32 bytes */
    {"pubkey/0", A_PUBKEY, 0, false, 0, M_TEMP, SB, TA, F_SIZE},
    {"pubkey/1", A_PUBKEY, 0, false, 1, M_TEMP, SB, TA, F_SIZE},
    {"pubkey/short-1", A_PUBKEY, 0, true, -1, M_TEMP, SB, TA, F_SIZE},
    {"pubkey/NULL+0", A_PUBKEY, 0, false, 0, M_NULL, SB, TA, F_SIZE},
    {"pubkey/long+1", A_PUBKEY, 0, true, 1, M_TEMP, OK, TA, F_SIZE},
    {"pubkey/256MiB-shared", A_PUBKEY, 0, false, 0, M_SHM_HUGE, OK, TA, F_SIZE},
    {"pubkey/NULL+size", A_PUBKEY, 0, true, 0, M_NULL, BP, API, 0},
};

static void test_sizes(void **state)
{
    (void)state;
    const struct seg mid = seg_of(1, 2, true, BATCH), end = seg_of(3, 5, true, BATCH);
    struct sess sm, se;
    struct bufs bm, be;
    static uint8_t scratch[8192];
    uint8_t pub[DZ_X25519_BYTES];
    char name[160];
    uint32_t origin = 0;

    sess_ready(&sm, NULL, &mid);
    sess_ready(&se, NULL, &end);
    bufs_init(&bm, &sm);
    bufs_init(&be, &se);
    {
        TEEC_Operation op;
        right_op(&sm, &bm, A_PUBKEY, &op);
        expect_ta("pubkey", call(&sm, DZ_CMD_GET_PUBKEY, &op, &origin), &origin, OK);
        memcpy(pub, bm.out, sizeof(pub));
    }
    TEEC_SharedMemory huge;
    memset(&huge, 0, sizeof(huge));
    huge.size = HUGE_BYTES;
    huge.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    assert_int_equal(TEEC_AllocateSharedMemory(&gctx, &huge), TEEC_SUCCESS);
    void *huge_temp = mmap(NULL, HUGE_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(huge_temp != MAP_FAILED);

    for (size_t k = 0; k < sizeof(size_cases) / sizeof(size_cases[0]); k++) {
        const struct size_case *c = &size_cases[k];
        struct sess fresh;
        struct sess *s = (c->flags & F_END) ? &se : &sm;
        struct bufs *b = (c->flags & F_END) ? &be : &bm;
        TEEC_Operation op;
        snprintf(name, sizeof(name), "sizes/%s", c->name);
        if (c->flags & F_NOMODEL) {
            sess_start(&fresh, NULL, &mid);
            s = &fresh;
        }
        if (c->flags & F_PREFWD)
            sess_train_forward(name, s, b->x, s->ends ? b->truth : NULL);
        right_op(s, b, c->a, &op);
        const size_t right = op.params[c->slot].tmpref.size;
        const size_t size = c->rel ? (size_t)((long long)right + c->d) : (size_t)c->d;
        const bool input = TEEC_PARAM_TYPE_GET(op.paramTypes, c->slot) == TEEC_MEMREF_TEMP_INPUT;
        const void *src = op.params[c->slot].tmpref.buffer;
        uint8_t *out_at = NULL;
        switch (c->mode) {
        case M_TEMP:
            assert_true(size <= sizeof(scratch));
            memset(scratch, 0, sizeof(scratch));
            if (input)
                memcpy(scratch, src, right < size ? right : size);
            set_mem(&op, c->slot, scratch, size);
            out_at = scratch;
            break;
        case M_NULL:
            set_mem(&op, c->slot, NULL, size);
            break;
        case M_SHM_HUGE:
            if (input)
                memcpy(huge.buffer, src, right);
            op.params[c->slot].memref.parent = &huge;
            op.params[c->slot].memref.offset = 0;
            op.params[c->slot].memref.size = HUGE_BYTES;
            set_type(&op, c->slot, input ? TEEC_MEMREF_PARTIAL_INPUT : TEEC_MEMREF_PARTIAL_OUTPUT);
            out_at = huge.buffer;
            break;
        case M_TEMP_HUGE:
            memcpy(huge_temp, src, right);
            set_mem(&op, c->slot, huge_temp, HUGE_BYTES);
            break;
        }
        TEEC_Result res = call(s, action_cmd[c->a], &op, &origin);
        expect(name, res, &origin, c->want, c->want_origin);
        if (c->flags & F_SIZE) {
            /* Output memrefs: the size written (success) or needed (SHORT_BUFFER). */
            const size_t got = op.params[c->slot].tmpref.size;
            if (got != right)
                fail_msg("case %s: size %zu back, expected %zu", name, got, right);
        }
        if (c->a == A_OPEN && res != OK && origin == TA && op.params[1].value.a != 0)
            fail_msg("case %s: OPEN_MODEL refused with a need of %u", name,
                     (unsigned)op.params[1].value.a);
        if (res == OK) {
            if (c->a == A_PUBKEY && memcmp(out_at, pub, sizeof(pub)) != 0)
                fail_msg("case %s: another public key", name);
            mirror_action(name, s, b, c->a, &op, out_at);
        }
        if (c->flags & F_UPDATE)
            sess_update(name, s);
        usable(C_SIZES, name, s);
        if (c->flags & F_NOMODEL)
            sess_end(&fresh);
    }
    munmap(huge_temp, HUGE_BYTES);
    TEEC_ReleaseSharedMemory(&huge);
    bufs_free(&bm);
    bufs_free(&be);
    sess_end(&sm);
    sess_end(&se);
}

/* ================================================================== aliasing */

/* A PARTIAL memref of @shm. */
static void set_part(TEEC_Operation *op, int slot, uint32_t type, TEEC_SharedMemory *shm,
                     size_t offset, size_t size)
{
    set_type(op, slot, type);
    op->params[slot].memref.parent = shm;
    op->params[slot].memref.offset = offset;
    op->params[slot].memref.size = size;
}

static void test_alias(void **state)
{
    (void)state;
    const struct seg mid = seg_of(1, 2, true, BATCH), end = seg_of(3, 5, true, BATCH);
    struct sess s, e;
    struct bufs b, be;
    char name[160];
    uint32_t origin = 0;
    TEEC_Operation op;
    uint8_t want[SEALED_MAX];
    TEEC_SharedMemory shm;

    sess_ready(&s, NULL, &mid);
    sess_ready(&e, NULL, &end);
    bufs_init(&b, &s);
    bufs_init(&be, &e);
    memset(&shm, 0, sizeof(shm));
    shm.size = 8192;
    shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    assert_int_equal(TEEC_AllocateSharedMemory(&gctx, &shm), TEEC_SUCCESS);
    uint8_t *m = shm.buffer;
    const size_t in = s.in * sizeof(float), out = s.out * sizeof(float);

    /* FORWARD with its output over its own input, at several offsets (some unaligned). */
    static const struct {
        const char *what;
        size_t in_off, out_off;
    } fw[] = {{"same-offset", 0, 0},
              {"output-inside-input", 16, 20},
              {"output-before-input", 40, 24},
              {"unaligned-input", 1, 3},
              {"unaligned-both-overlap", 5, 7},
              {"output-ends-input", 0, 32}};
    for (size_t k = 0; k < sizeof(fw) / sizeof(fw[0]); k++) {
        snprintf(name, sizeof(name), "alias/forward/%s", fw[k].what);
        right_op(&s, &b, A_FWD_INF, &op);
        memset(m, 0x5A, shm.size);
        memcpy(m + fw[k].in_off, b.x, in);
        set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, fw[k].in_off, in);
        set_part(&op, 3, TEEC_MEMREF_PARTIAL_OUTPUT, &shm, fw[k].out_off, out);
        expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_SUCCESS);
        mirror_infer(&s, b.x, want);
        if (memcmp(m + fw[k].out_off, want, out) != 0)
            fail_msg("case %s: output is not the engine's for the input before the call", name);
        usable(C_ALIAS, name, &s);
    }

    /* Training FORWARD then BACKWARD with delta in and delta out on the same bytes. */
    snprintf(name, sizeof(name), "alias/train-forward+backward/delta-in-over-delta-out");
    right_op(&s, &b, A_FWD_TRAIN, &op);
    memcpy(m, b.x, in);
    set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, in);
    set_part(&op, 3, TEEC_MEMREF_PARTIAL_OUTPUT, &shm, 8, out);
    expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_action(name, &s, &b, A_FWD_TRAIN, &op, m + 8);
    right_op(&s, &b, A_BACKWARD, &op);
    memcpy(m + 100, b.dy, out);
    set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 100, out);
    set_part(&op, 1, TEEC_MEMREF_PARTIAL_OUTPUT, &shm, 100, in);
    expect_ta(name, call(&s, DZ_CMD_BACKWARD, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_action(name, &s, &b, A_BACKWARD, &op, m + 100);
    sess_update(name, &s);
    usable(C_ALIAS, name, &s);

    /* The same temporary buffer as input and output: the output lands in it. */
    snprintf(name, sizeof(name), "alias/forward/one-temp-buffer");
    {
        float xy[MAXF];
        memcpy(xy, b.x, in);
        right_op(&s, &b, A_FWD_INF, &op);
        set_mem(&op, 0, xy, in);
        set_mem(&op, 3, xy, out);
        expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_SUCCESS);
        mirror_infer(&s, b.x, want);
        if (memcmp(xy, want, out) != 0)
            fail_msg("case %s: output is not the engine's", name);
        usable(C_ALIAS, name, &s);

        snprintf(name, sizeof(name), "alias/forward/one-temp-buffer-short-output");
        memcpy(xy, b.x, in);
        set_mem(&op, 0, xy, in);
        set_mem(&op, 3, xy, out - 4);
        expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_ERROR_SHORT_BUFFER);
        if (memcmp(xy, b.x, in) != 0)
            fail_msg("case %s: a refused call wrote into the buffer", name);
        usable(C_ALIAS, name, &s);
    }

    /* One registered block for input and output. */
    snprintf(name, sizeof(name), "alias/forward/registered-block-overlap");
    {
        float reg_buf[MAXF * 2];
        TEEC_SharedMemory reg;
        memset(&reg, 0, sizeof(reg));
        memcpy(reg_buf, b.x, in);
        reg.buffer = reg_buf;
        reg.size = sizeof(reg_buf);
        reg.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
        assert_int_equal(TEEC_RegisterSharedMemory(&gctx, &reg), TEEC_SUCCESS);
        right_op(&s, &b, A_FWD_INF, &op);
        set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &reg, 0, in);
        set_part(&op, 3, TEEC_MEMREF_PARTIAL_OUTPUT, &reg, 4, out);
        expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_SUCCESS);
        mirror_infer(&s, b.x, want);
        if (memcmp((uint8_t *)reg_buf + 4, want, out) != 0)
            fail_msg("case %s: output is not the engine's", name);
        TEEC_ReleaseSharedMemory(&reg);
        usable(C_ALIAS, name, &s);
    }

    /* WHOLE twice: both parameters are INOUT for the TA, refused. */
    snprintf(name, sizeof(name), "alias/forward/whole-block-twice");
    right_op(&s, &b, A_FWD_INF, &op);
    set_type(&op, 0, TEEC_MEMREF_WHOLE);
    op.params[0].memref.parent = &shm;
    set_type(&op, 3, TEEC_MEMREF_WHOLE);
    op.params[3].memref.parent = &shm;
    expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_ERROR_BAD_PARAMETERS);
    usable(C_ALIAS, name, &s);

    /* SAVE_SEALED: the blob written over the policy it was given. */
    snprintf(name, sizeof(name), "alias/save_sealed/blob-over-policy");
    right_op(&s, &b, A_SAVE_POL, &op);
    struct dz_policy narrow = b.pol;
    narrow.modes = DZ_MODE_INFER;
    memcpy(m + 64, &narrow, sizeof(narrow));
    set_part(&op, 0, TEEC_MEMREF_PARTIAL_OUTPUT, &shm, 0, s.sealed);
    set_part(&op, 1, TEEC_MEMREF_PARTIAL_INPUT, &shm, 64, sizeof(narrow));
    expect_ta(name, call(&s, DZ_CMD_SAVE_SEALED, &op, &origin), &origin, TEEC_SUCCESS);
    {
        const struct dz_sealed_header *h = (const void *)m;
        if (memcmp(&h->policy, &narrow, sizeof(narrow)) != 0)
            fail_msg("case %s: sealed another policy than the one given", name);
        /* an inference session takes it; this training one may not */
        uint8_t copy[SEALED_MAX];
        memcpy(copy, m, s.sealed);
        TEEC_Operation lo;
        memset(&lo, 0, sizeof(lo));
        lo.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                         TEEC_VALUE_OUTPUT, TEEC_NONE);
        set_mem(&lo, 0, copy, s.sealed);
        expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &lo, &origin), &origin,
                  TEEC_ERROR_ACCESS_DENIED);
        struct sess inf;
        const struct seg ginf = seg_of(1, 2, false, BATCH);
        sess_start(&inf, NULL, &ginf);
        sess_open(&inf);
        expect_ta(name, call(&inf, DZ_CMD_LOAD_SEALED, &lo, &origin), &origin, TEEC_SUCCESS);
        float held[MAXF * 2]; /* what s held when it sealed */
        params_get(s.ref, held);
        mirror_load(&inf, held, s.ref->seen);
        check_infer(name, &inf, probe_x);
        sess_end(&inf);
    }
    usable(C_ALIAS, name, &s);

    /* End segment: input and truth from the same bytes; then the delta out over them. */
    snprintf(name, sizeof(name), "alias/forward_end/truth-is-input");
    {
        const size_t ein = e.in * sizeof(float), etr = e.truth * sizeof(float);
        float x[MAXF];
        memcpy(x, be.truth, etr); /* a one-hot truth, also read as the input */
        memcpy(x + e.truth, be.x, ein - etr);
        memcpy(m, x, ein);
        right_op(&e, &be, A_FWD_TRAIN, &op);
        set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, ein);
        set_part(&op, 1, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, etr);
        expect_ta(name, call(&e, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_SUCCESS);
        mirror_train_forward(&e, x, x);
        right_op(&e, &be, A_BACKWARD, &op);
        set_part(&op, 1, TEEC_MEMREF_PARTIAL_OUTPUT, &shm, 0, ein);
        expect_ta(name, call(&e, DZ_CMD_BACKWARD, &op, &origin), &origin, TEEC_SUCCESS);
        float dx[MAXF];
        mirror_backward(&e, NULL, dx);
        if (memcmp(m, dx, ein) != 0)
            fail_msg("case %s: delta is not the engine's", name);
        sess_update(name, &e);
        usable(C_ALIAS, name, &e);
    }

    /* End segment predictions written at an odd offset over the input. */
    snprintf(name, sizeof(name), "alias/forward_end/predictions-unaligned-over-input");
    memcpy(m + 1, be.x, e.in * sizeof(float));
    right_op(&e, &be, A_FWD_INF, &op);
    set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 1, e.in * sizeof(float));
    set_part(&op, 3, TEEC_MEMREF_PARTIAL_OUTPUT, &shm, 3, out_bytes(&e));
    expect_ta(name, call(&e, DZ_CMD_FORWARD, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_infer(&e, be.x, want);
    if (memcmp(m + 3, want, out_bytes(&e)) != 0)
        fail_msg("case %s: predictions are not the engine's", name);
    usable(C_ALIAS, name, &e);

    /* LOAD_SEALED and LOAD_PLAIN from shared memory at an odd offset. */
    snprintf(name, sizeof(name), "alias/load_sealed/unaligned-shared");
    memcpy(m + 7, b.sealed, b.sealed_size);
    right_op(&s, &b, A_LOAD_SEALED, &op);
    set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 7, b.sealed_size);
    expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_action(name, &s, &b, A_LOAD_SEALED, &op, NULL);
    usable(C_ALIAS, name, &s);
    snprintf(name, sizeof(name), "alias/load_plain/unaligned-shared");
    memcpy(m + 3, b.params, s.np * sizeof(float));
    right_op(&s, &b, A_LOAD_PLAIN, &op);
    set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 3, s.np * sizeof(float));
    expect_ta(name, call(&s, DZ_CMD_LOAD_PLAIN, &op, &origin), &origin, TEEC_SUCCESS);
    mirror_action(name, &s, &b, A_LOAD_PLAIN, &op, NULL);
    usable(C_ALIAS, name, &s);

    TEEC_ReleaseSharedMemory(&shm);
    bufs_free(&b);
    bufs_free(&be);
    sess_end(&s);
    sess_end(&e);
}

/* ================================================================== ordering */

enum st {
    ST_NONE,
    ST_OPEN,
    ST_FWD,
    ST_BWD,
    ST_UPD,
    ST_REFUSED_LOAD,
    ST_SECOND_OPEN,
    ST_REFUSED_OPEN,
    ST_COUNT
};
static const char *const st_names[ST_COUNT] = {"no-model",
                                               "opened",
                                               "after-forward-train",
                                               "after-backward",
                                               "after-update",
                                               "after-refused-load",
                                               "after-second-open",
                                               "after-refused-open"};

/* Expected result of each action in each state (middle training segment, subdivisions 1). */
static const TEEC_Result order_want[ST_COUNT][A_COUNT] = {
    /*   VERSION OPEN LOAD_PLAIN FWD FWD_TR BWD UPDATE SAVE SAVE_POL LOAD_S PUBKEY TRAIN_STEP
     * UNKNOWN (TRAIN_STEP: never for a segment that does not end the network) */
    [ST_NONE] = {OK, OK, BS, BS, BS, BS, BS, BS, BS, BS, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_OPEN] = {OK, BS, OK, OK, OK, BS, BS, OK, OK, OK, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_FWD] = {OK, BS, OK, OK, OK, OK, BS, OK, OK, OK, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_BWD] = {OK, BS, OK, OK, BS, BS, OK, OK, OK, OK, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_UPD] = {OK, BS, OK, OK, OK, BS, BS, OK, OK, OK, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_REFUSED_LOAD] = {OK, BS, OK, OK, OK, OK, BS, OK, OK, OK, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_SECOND_OPEN] = {OK, BS, OK, OK, OK, BS, BS, OK, OK, OK, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
    [ST_REFUSED_OPEN] = {OK, OK, BS, BS, BS, BS, BS, BS, BS, BS, OK, BS, TEEC_ERROR_NOT_SUPPORTED},
};

/* TRAIN_STEP in each state of an end segment (subdivisions 1): the step's FORWARD decides,
 * as a training FORWARD would (one BACKWARD since the last UPDATE refuses it). */
static const TEEC_Result order_step_end[ST_COUNT] = {
    [ST_NONE] = BS, [ST_OPEN] = OK,         [ST_FWD] = OK,         [ST_BWD] = BS,
    [ST_UPD] = OK,  [ST_REFUSED_LOAD] = OK, [ST_SECOND_OPEN] = OK, [ST_REFUSED_OPEN] = BS,
};

static void build_state(const char *name, struct sess *s, struct bufs *b, enum st st)
{
    TEEC_Operation op;
    uint32_t origin = 0;
    if (st == ST_NONE)
        return;
    if (st == ST_REFUSED_OPEN) {
        right_op(s, b, A_OPEN, &op);
        uint8_t bad[4096];
        memcpy(bad, b->blob, b->blob_size);
        blob_header(bad)->magic ^= 1;
        set_mem(&op, 0, bad, b->blob_size);
        expect_ta(name, call(s, DZ_CMD_OPEN_MODEL, &op, &origin), &origin, BP);
        return;
    }
    sess_open(s);
    if (st == ST_SECOND_OPEN) {
        right_op(s, b, A_OPEN, &op);
        expect_ta(name, call(s, DZ_CMD_OPEN_MODEL, &op, &origin), &origin, BS);
        return;
    }
    if (st == ST_OPEN)
        return;
    sess_train_forward(name, s, b->x, s->ends ? b->truth : NULL);
    if (st == ST_REFUSED_LOAD) {
        uint8_t bad[SEALED_MAX];
        memcpy(bad, b->sealed, b->sealed_size);
        bad[b->sealed_size - 1] ^= 0x40;
        right_op(s, b, A_LOAD_SEALED, &op);
        set_mem(&op, 0, bad, b->sealed_size);
        expect_ta(name, call(s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, SEC);
        return;
    }
    if (st == ST_FWD)
        return;
    sess_backward(name, s, b->dy);
    if (st == ST_BWD)
        return;
    sess_update(name, s);
}

static void test_order(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 2, true, BATCH);
    struct sess s;
    struct bufs b;
    char name[160];
    uint32_t origin = 0;

    sess_start(&s, NULL, &g);
    bufs_init(&b, &s);
    sess_end(&s);
    for (int st = 0; st < ST_COUNT; st++)
        for (int a = 0; a < A_COUNT; a++) {
            TEEC_Operation op;
            snprintf(name, sizeof(name), "order/%s/%s", st_names[st], action_names[a]);
            sess_start(&s, NULL, &g);
            build_state(name, &s, &b, (enum st)st);
            right_op(&s, &b, (enum action)a, &op);
            const TEEC_Result want = order_want[st][a];
            expect_ta(name, call(&s, action_cmd[a], &op, &origin), &origin, want);
            if (want == OK)
                mirror_action(name, &s, &b, (enum action)a, &op, b.out);
            usable(C_ORDER, name, &s);
            sess_end(&s);
        }
    bufs_free(&b);

    const struct seg end = seg_of(3, 5, true, BATCH);
    sess_start(&s, NULL, &end);
    bufs_init(&b, &s);
    sess_end(&s);
    for (int st = 0; st < ST_COUNT; st++) {
        TEEC_Operation op;
        snprintf(name, sizeof(name), "order/end/%s/TRAIN_STEP", st_names[st]);
        sess_start(&s, NULL, &end);
        build_state(name, &s, &b, (enum st)st);
        right_op(&s, &b, A_TRAIN_STEP, &op);
        const TEEC_Result want = order_step_end[st];
        expect_ta(name, call(&s, DZ_CMD_TRAIN_STEP, &op, &origin), &origin, want);
        if (want == OK)
            mirror_action(name, &s, &b, A_TRAIN_STEP, &op, b.out);
        usable(C_ORDER, name, &s);
        sess_end(&s);
    }
    bufs_free(&b);
}

/* ================================================================== sealed blobs */

#define HOFF(f) offsetof(struct dz_sealed_header, f)
#define POFF(f) (offsetof(struct dz_sealed_header, policy) + offsetof(struct dz_policy, f))

struct tamper {
    const char *name;
    size_t off; /* where a 32-bit value goes (SIZE_MAX: none) */
    uint32_t v; /* the value, or the XOR mask when xor */
    bool xor ;
    TEEC_Result want;
};

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static void test_sealed(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 2, true, BATCH);
    struct sess s;
    struct bufs b;
    char name[160];
    uint32_t origin = 0;
    uint8_t bad[SEALED_MAX * 3];

    sess_ready(&s, NULL, &g);
    bufs_init(&b, &s);
    const size_t R = b.sealed_size;
    const size_t CT = sizeof(struct dz_sealed_header);
    const uint32_t nan_bits = 0x7FC00000u, inf_bits = 0x7F800000u;
    const struct tamper fields[] = {
        {"magic=0", HOFF(magic), 0, false, SEC},
        {"magic=DZS1", HOFF(magic), DZ_SEALED_MAGIC_V1, false, SEC},
        {"magic+1", HOFF(magic), DZ_SEALED_MAGIC + 1, false, SEC},
        {"magic=max", HOFF(magic), 0xFFFFFFFFu, false, SEC},
        {"version=0", HOFF(version), 0, false, SEC},
        {"version=1", HOFF(version), 1, false, SEC},
        {"version=previous", HOFF(version), DZ_TA_PROTOCOL_VERSION - 1, false, SEC},
        {"version=next", HOFF(version), DZ_TA_PROTOCOL_VERSION + 1, false, SEC},
        {"version=max", HOFF(version), 0xFFFFFFFFu, false, SEC},
        {"digest[0]^1", HOFF(model_digest), 1, true, SEC},
        {"digest[28]^high", HOFF(model_digest) + 28, 0x80000000u, true, SEC},
        {"digest=0", HOFF(model_digest), 0, false, SEC},
        {"first=0", HOFF(first), 0, false, SEC},
        {"first=2", HOFF(first), 2, false, SEC},
        {"first=max", HOFF(first), 0xFFFFFFFFu, false, SEC},
        {"last=1", HOFF(last), 1, false, SEC},
        {"last=3", HOFF(last), 3, false, SEC},
        {"last=5", HOFF(last), 5, false, SEC},
        {"last=max", HOFF(last), 0xFFFFFFFFu, false, SEC},
        {"n_layers=0", HOFF(n_layers), 0, false, SEC},
        {"n_layers=3", HOFF(n_layers), 3, false, SEC},
        {"n_layers=7", HOFF(n_layers), 7, false, SEC},
        {"n_layers=max", HOFF(n_layers), 0xFFFFFFFFu, false, SEC},
        {"payload=0", HOFF(payload_bytes), 0, false, SEC},
        {"payload-4", HOFF(payload_bytes), 324, false, SEC},
        {"payload+4", HOFF(payload_bytes), 332, false, SEC},
        {"payload=max", HOFF(payload_bytes), 0xFFFFFFFFu, false, SEC},
        {"seen_lo=0", HOFF(seen_lo), 0, false, SEC},
        {"seen_lo=max", HOFF(seen_lo), 0xFFFFFFFFu, false, SEC},
        {"seen_hi=1", HOFF(seen_hi), 1, false, SEC},
        {"seen_hi=max", HOFF(seen_hi), 0xFFFFFFFFu, false, SEC},
        {"model_version=1", HOFF(model_version), 1, false, SEC},
        {"model_version=max", HOFF(model_version), 0xFFFFFFFFu, false, SEC},
        {"key_kind=0", HOFF(key_kind), 0, false, SEC},
        {"key_kind=owner-without-version", HOFF(key_kind), DZ_KEY_OWNER, false, SEC},
        {"key_kind=3", HOFF(key_kind), DZ_KEY_KIND_COUNT, false, SEC},
        {"key_kind=max", HOFF(key_kind), 0xFFFFFFFFu, false, SEC},
        {"policy.modes=0", POFF(modes), 0, false, SEC},
        {"policy.modes=train-only", POFF(modes), DZ_MODE_TRAIN, false, SEC},
        {"policy.modes=infer-only", POFF(modes), DZ_MODE_INFER, false, TEEC_ERROR_ACCESS_DENIED},
        {"policy.modes=max", POFF(modes), 0xFFFFFFFFu, false, SEC},
        {"policy.output=topk", POFF(output), DZ_OUTPUT_TOPK, false, SEC},
        {"policy.output=scores", POFF(output), DZ_OUTPUT_SCORES, false, SEC},
        {"policy.output=4", POFF(output), DZ_OUTPUT_COUNT, false, SEC},
        {"policy.output=max", POFF(output), 0xFFFFFFFFu, false, SEC},
        {"policy.top_k_max=0", POFF(top_k_max), 0, false, SEC},
        {"policy.top_k_max=64", POFF(top_k_max), DZ_MAX_LABELS, false, SEC},
        {"policy.top_k_max=65", POFF(top_k_max), DZ_MAX_LABELS + 1, false, SEC},
        {"policy.batch_min=0", POFF(batch_min), 0, false, SEC},
        {"policy.batch_min=1", POFF(batch_min), 1, false, SEC},
        {"policy.batch_min=3", POFF(batch_min), 3, false, SEC},
        {"policy.batch_max=1", POFF(batch_max), 1, false, SEC},
        {"policy.batch_max=3", POFF(batch_max), 3, false, SEC},
        {"policy.batch_max=max+1", POFF(batch_max), DZ_MAX_BATCH + 1, false, SEC},
        {"policy.subdivisions_max=0", POFF(subdivisions_max), 0, false, SEC},
        {"policy.subdivisions_max=2", POFF(subdivisions_max), 2, false, SEC},
        {"policy.subdivisions_max=max+1", POFF(subdivisions_max), DZ_MAX_DIM + 1, false, SEC},
        {"policy.learning_rate_max=0", POFF(learning_rate_max), 0, false, TEEC_ERROR_ACCESS_DENIED},
        {"policy.learning_rate_max=nan", POFF(learning_rate_max), nan_bits, false, SEC},
        {"policy.learning_rate_max=inf", POFF(learning_rate_max), inf_bits, false, SEC},
        {"policy.learning_rate_max=-1", POFF(learning_rate_max), 0xBF800000u, false, SEC},
        {"policy.learning_rate_max=1e9", POFF(learning_rate_max), 0x4E6E6B28u, false, SEC},
        {"policy.momentum_max=0", POFF(momentum_max), 0, false, TEEC_ERROR_ACCESS_DENIED},
        {"policy.momentum_max=nan", POFF(momentum_max), nan_bits, false, SEC},
        {"policy.decay_max=-0", POFF(decay_max), 0x80000000u, false, TEEC_ERROR_ACCESS_DENIED},
        {"policy.decay_max=inf", POFF(decay_max), inf_bits, false, SEC},
        {"policy.reserved0", POFF(reserved), 1, false, SEC},
        {"policy.reserved2", POFF(reserved) + 8, 0xFFFFFFFFu, false, SEC},
        {"device_fingerprint", HOFF(device_fingerprint), 1, false, SEC},
        {"ephemeral_public", HOFF(ephemeral_public) + 28, 0x01000000u, false, SEC},
        {"wrap_nonce", HOFF(wrap_nonce) + 8, 1, false, SEC},
        {"wrapped_key", HOFF(wrapped_key), 0xFFFFFFFFu, false, SEC},
        {"wrap_tag", HOFF(wrap_tag) + 12, 0x80000000u, false, SEC},
        {"nonce[0]^1", HOFF(nonce), 1, true, SEC},
        {"nonce[11]^high", HOFF(nonce) + 8, 0x80000000u, true, SEC},
        {"reserved=1", HOFF(reserved), 1, false, SEC},
        {"reserved=max", HOFF(reserved), 0xFFFFFFFFu, false, SEC},
        {"ciphertext[0]^1", CT, 1, true, SEC},
        {"ciphertext[mid]^high", CT + 160, 0x80000000u, true, SEC},
        {"ciphertext[last]^high", CT + 324, 0x80000000u, true, SEC},
        {"tag[0]^1", CT + 328, 1, true, SEC},
        {"tag[15]^high", CT + 340, 0x80000000u, true, SEC},
    };
    assert_int_equal(R, CT + 328 + 16);
    assert_true(fbits(1e9f) == 0x4E6E6B28u);

    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        TEEC_Operation op;
        snprintf(name, sizeof(name), "sealed/%s", fields[k].name);
        memcpy(bad, b.sealed, R);
        uint32_t v;
        memcpy(&v, bad + fields[k].off, sizeof(v));
        v = fields[k].xor ? v ^ fields[k].v : fields[k].v;
        memcpy(bad + fields[k].off, &v, sizeof(v));
        if (!strcmp(fields[k].name, "digest=0"))
            memset(bad + HOFF(model_digest), 0,
                   sizeof(((struct dz_sealed_header *)0)->model_digest));
        if (memcmp(bad, b.sealed, R) == 0)
            fail_msg("case %s changes nothing", name);
        right_op(&s, &b, A_LOAD_SEALED, &op);
        set_mem(&op, 0, bad, R);
        expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, fields[k].want);
        usable(C_SEALED, name, &s); /* the parameters are still p */
    }

    /* An owner's blob that is none: no wrap for this device. */
    snprintf(name, sizeof(name), "sealed/key_kind=owner-version-1-no-wrap");
    {
        TEEC_Operation op;
        memcpy(bad, b.sealed, R);
        struct dz_sealed_header *h = (void *)bad;
        h->key_kind = DZ_KEY_OWNER;
        h->model_version = 1;
        right_op(&s, &b, A_LOAD_SEALED, &op);
        set_mem(&op, 0, bad, R);
        expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, SEC);
        usable(C_SEALED, name, &s);
    }

    /* Truncated and extended. */
    static const struct {
        const char *what;
        long long d;
    } lens[] = {{"truncated-to-0", -604}, {"truncated-to-1", -603}, {"truncated-to-header", -344},
                {"truncated-tag", -16},   {"truncated-1", -1},      {"extended+1", 1},
                {"extended+tag", 16},     {"extended+4096", 4096},  {"twice", 604}};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        TEEC_Operation op;
        snprintf(name, sizeof(name), "sealed/%s", lens[k].what);
        memset(bad, 0, sizeof(bad));
        memcpy(bad, b.sealed, R);
        if (lens[k].d == 604)
            memcpy(bad + R, b.sealed, R);
        right_op(&s, &b, A_LOAD_SEALED, &op);
        set_mem(&op, 0, bad, (size_t)((long long)R + lens[k].d));
        expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, SEC);
        usable(C_SEALED, name, &s);
    }

    /* Spliced: the header of one save with the body of another. */
    {
        uint8_t other[SEALED_MAX];
        size_t osize = seal_params(&g, mid_q, SEEN_Q, other);
        assert_int_equal(osize, R);
        static const char *const splices[] = {"header-of-another-save", "tag-of-another-save",
                                              "ciphertext-of-another-save"};
        for (int k = 0; k < 3; k++) {
            TEEC_Operation op;
            snprintf(name, sizeof(name), "sealed/spliced-%s", splices[k]);
            memcpy(bad, b.sealed, R);
            if (k == 0)
                memcpy(bad, other, CT);
            else if (k == 1)
                memcpy(bad + R - 16, other + R - 16, 16);
            else
                memcpy(bad + CT, other + CT, 328);
            right_op(&s, &b, A_LOAD_SEALED, &op);
            set_mem(&op, 0, bad, R);
            expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, SEC);
            usable(C_SEALED, name, &s);
        }
    }

    /* Blobs of other partitions, models, devices and policies. */
    struct {
        const char *what;
        struct seg g;
        const float *p;
        TEEC_Result want;
        bool other_model, other_device;
    } others[] = {
        {"partition-1..1", seg_of(1, 1, true, BATCH), mid_q, SEC, false, false},
        {"partition-2..2", seg_of(2, 2, true, BATCH), mid_q, SEC, false, false},
        {"partition-1..3", seg_of(1, 3, true, BATCH), mid_q, SEC, false, false},
        {"partition-3..5", seg_of(3, 5, true, BATCH), end_q, SEC, false, false},
        {"partition-0..2", seg_of(0, 2, true, BATCH), mid_q, SEC, false, false},
        {"another-model-same-shapes", seg_of(1, 2, true, BATCH), mid_q, SEC, true, false},
        {"another-device", seg_of(1, 2, true, BATCH), mid_q, SEC, false, true},
        {"inference-only-save", seg_of(1, 2, false, BATCH), mid_q, TEEC_ERROR_ACCESS_DENIED, false,
         false},
        {"save-at-batch-4", seg_of(1, 2, true, 4), mid_q, TEEC_ERROR_ACCESS_DENIED, false, false},
        {"save-at-batch-1", seg_of(1, 2, true, 1), mid_q, TEEC_ERROR_ACCESS_DENIED, false, false},
    };
    struct dnn_layer_spec changed[NL];
    memcpy(changed, net_specs, sizeof(changed));
    changed[2].activation = DNN_ACT_RELU;
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
        TEEC_Operation op;
        uint8_t blob[SEALED_MAX];
        float p[MAXF * 4];
        snprintf(name, sizeof(name), "sealed/blob-of-%s", others[k].what);
        if (others[k].other_model)
            others[k].g.specs = changed;
        struct dnn_network *r = reference(&others[k].g);
        const size_t np = param_count(r);
        dnn_network_free(r);
        assert_true(np <= sizeof(p) / sizeof(p[0]));
        fill(p, np, -1, 1);
        if (others[k].other_device) {
            TEEC_Context saved = gctx;
            char path[256];
            snprintf(path, sizeof(path), "%s/storage2", gtmp->dir);
            setenv("DZ_TEE_STORAGE", path, 1);
            assert_int_equal(TEEC_InitializeContext(NULL, &gctx), TEEC_SUCCESS);
            seal_params(&others[k].g, p, SEEN_Q, blob);
            TEEC_FinalizeContext(&gctx);
            gctx = saved;
            snprintf(path, sizeof(path), "%s/storage", gtmp->dir);
            setenv("DZ_TEE_STORAGE", path, 1);
        } else {
            seal_params(&others[k].g, p, SEEN_Q, blob);
        }
        const size_t size = sizeof(struct dz_sealed_header) + np * sizeof(float) + 16;
        right_op(&s, &b, A_LOAD_SEALED, &op);
        set_mem(&op, 0, blob, size);
        expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, others[k].want);
        usable(C_SEALED, name, &s);
    }

    /* And the untouched blob still loads: q with its seen. */
    {
        TEEC_Operation op;
        snprintf(name, sizeof(name), "sealed/untouched-after-all");
        right_op(&s, &b, A_LOAD_SEALED, &op);
        expect_ta(name, call(&s, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, OK);
        mirror_action(name, &s, &b, A_LOAD_SEALED, &op, NULL);
        usable(C_SEALED, name, &s);
    }
    bufs_free(&b);
    sess_end(&s);
}

/* ================================================================== concurrency */

/* The final inference output of a session, compared with its mirror without failing. */
static bool infer_matches(struct sess *s, const float *x)
{
    uint8_t got[BATCH * 4 * sizeof(struct dz_prediction)], want[sizeof(got)];
    size_t size = out_bytes(s);
    uint32_t origin = 0;
    if (raw_forward(s, x, NULL, 0, got, &size, &origin) != TEEC_SUCCESS || size != out_bytes(s))
        return false;
    mirror_infer(s, x, want);
    return memcmp(got, want, size) == 0;
}

/* One training round (FORWARD(train), BACKWARD, UPDATE) of a middle session, TA only: the
 * output and the delta are recorded for a later mirror replay. Return: 0 or the failing
 * result. */
static TEEC_Result raw_round(struct sess *s, const float *x, const float *dy, float *y, float *dx)
{
    uint32_t origin = 0;
    size_t ysize = s->out * sizeof(float), dsize = s->in * sizeof(float);
    TEEC_Result res = raw_forward(s, x, NULL, DZ_FORWARD_TRAIN, y, &ysize, &origin);
    if (res == TEEC_SUCCESS)
        res = raw_backward(s, dy, dx, &dsize, &origin);
    if (res == TEEC_SUCCESS) {
        TEEC_Operation op;
        memset(&op, 0, sizeof(op));
        res = call(s, DZ_CMD_UPDATE, &op, &origin);
    }
    return res;
}

/* The inputs of round r of stream k (the same on every replay). */
static void round_inputs(int k, int r, float *x, float *dy)
{
    for (int i = 0; i < MAXF; i++) {
        x[i] = (float)((i * 7 + r * 3 + k * 11) % 17) / 8.0f - 1.0f;
        dy[i] = (float)((i * 5 + r + k * 3) % 13) / 26.0f - 0.25f;
    }
}

/* Replays @rounds rounds of stream @k on the session's mirror and compares what the TA gave. */
static void replay(const char *name, struct sess *s, int k, int rounds, const float *ys,
                   const float *dxs)
{
    float x[MAXF], dy[MAXF], dx[MAXF];
    for (int r = 0; r < rounds; r++) {
        round_inputs(k, r, x, dy);
        const float *y = mirror_train_forward(s, x, NULL);
        if (memcmp(y, ys + (size_t)r * s->out, s->out * sizeof(float)) != 0)
            fail_msg("case %s: round %d output is not the engine's", name, r);
        mirror_backward(s, dy, dx);
        if (memcmp(dx, dxs + (size_t)r * s->in, s->in * sizeof(float)) != 0)
            fail_msg("case %s: round %d delta is not the engine's", name, r);
        mirror_update(s);
    }
}

struct worker {
    struct sess *s;
    int k, rounds;
    float *ys, *dxs;
    bool infer_only;
    const float *want; /* inference: the expected output of x */
    TEEC_Result res;
    int wrong;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    float x[MAXF], dy[MAXF], y[MAXF];
    w->res = TEEC_SUCCESS;
    for (int r = 0; r < w->rounds && w->res == TEEC_SUCCESS; r++) {
        round_inputs(w->k, r, x, dy);
        if (w->infer_only) {
            size_t size = w->s->out * sizeof(float);
            uint32_t origin = 0;
            round_inputs(w->k, 0, x, dy);
            w->res = raw_forward(w->s, x, NULL, 0, y, &size, &origin);
            if (w->res == TEEC_SUCCESS && memcmp(y, w->want, size) != 0)
                w->wrong++;
        } else {
            w->res = raw_round(w->s, x, dy, w->ys + (size_t)r * w->s->out,
                               w->dxs + (size_t)r * w->s->in);
        }
    }
    return NULL;
}

/* A child process's own context and session: trains stream @k from q and writes the final
 * inference output (or nothing) to @fd. No cmocka here: exit status 0 or the failing step. */
static void child_train(int fd, const uint8_t *blob, size_t blob_size, int k, int rounds)
{
    TEEC_Context ctx;
    struct sess s;
    TEEC_Operation op;
    uint32_t origin = 0;
    float x[MAXF], dy[MAXF], y[MAXF], dx[MAXF];
    if (TEEC_InitializeContext(NULL, &ctx) != TEEC_SUCCESS)
        _exit(10);
    memset(&s, 0, sizeof(s));
    s.in = BATCH * 8;
    s.out = BATCH * 4;
    if (TEEC_OpenSession(&ctx, &s.ts, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin) !=
        TEEC_SUCCESS)
        _exit(11);
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, blob, blob_size);
    if (call(&s, DZ_CMD_OPEN_MODEL, &op, &origin) != TEEC_SUCCESS)
        _exit(12);
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    set_mem(&op, 0, mid_q, 82 * sizeof(float));
    op.params[1].value.a = SEEN_Q;
    if (call(&s, DZ_CMD_LOAD_PLAIN, &op, &origin) != TEEC_SUCCESS)
        _exit(13);
    for (int r = 0; r < rounds; r++) {
        round_inputs(k, r, x, dy);
        if (raw_round(&s, x, dy, y, dx) != TEEC_SUCCESS)
            _exit(14);
    }
    size_t size = s.out * sizeof(float);
    if (raw_forward(&s, probe_x, NULL, 0, y, &size, &origin) != TEEC_SUCCESS)
        _exit(15);
    if (write(fd, y, size) != (ssize_t)size)
        _exit(16);
    TEEC_CloseSession(&s.ts);
    TEEC_FinalizeContext(&ctx);
    _exit(0);
}

static void test_concurrency(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 2, true, BATCH);
    const int rounds = reps(40, 10);
    struct sess a, b;
    char name[160];
    float *ys[2], *dxs[2];
    for (int k = 0; k < 2; k++) {
        ys[k] = calloc((size_t)rounds * MAXF, sizeof(float));
        dxs[k] = calloc((size_t)rounds * MAXF, sizeof(float));
        assert_non_null(ys[k]);
        assert_non_null(dxs[k]);
    }

    /* Two sessions of one context, interleaved step by step: each keeps its own state. */
    snprintf(name, sizeof(name), "concurrency/two-sessions-interleaved");
    sess_ready(&a, NULL, &g);
    sess_ready(&b, NULL, &g);
    sess_load_plain(&b, mid_q, SEEN_Q);
    for (int r = 0; r < rounds; r++) {
        float x[MAXF], dy[MAXF];
        round_inputs(0, r, x, dy);
        sess_train_forward(name, &a, x, NULL);
        round_inputs(1, r, x, dy);
        sess_train_forward(name, &b, x, NULL);
        round_inputs(0, r, x, dy);
        sess_backward(name, &a, dy);
        round_inputs(1, r, x, dy);
        sess_backward(name, &b, dy);
        sess_update(name, &b);
        sess_update(name, &a);
    }
    usable(C_CONC, name, &b);
    check_infer(name, &a, probe_x);

    /* Two threads, one session each, at once. */
    snprintf(name, sizeof(name), "concurrency/two-threads-two-sessions");
    {
        pthread_t th[2];
        struct worker w[2] = {{.s = &a, .k = 2, .rounds = rounds, .ys = ys[0], .dxs = dxs[0]},
                              {.s = &b, .k = 3, .rounds = rounds, .ys = ys[1], .dxs = dxs[1]}};
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_create(&th[k], NULL, worker_main, &w[k]), 0);
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        for (int k = 0; k < 2; k++) {
            uint32_t origin = TEEC_ORIGIN_TRUSTED_APP;
            expect_ta(name, w[k].res, &origin, TEEC_SUCCESS);
        }
        replay(name, &a, 2, rounds, ys[0], dxs[0]);
        replay(name, &b, 3, rounds, ys[1], dxs[1]);
        usable(C_CONC, name, &a);
        check_infer(name, &b, probe_x);
    }

    /* Two threads on one session: the client serialises, every answer is the engine's. */
    snprintf(name, sizeof(name), "concurrency/two-threads-one-session");
    {
        pthread_t th[2];
        float want[2][MAXF], x[MAXF], dy[MAXF];
        struct worker w[2];
        for (int k = 0; k < 2; k++) {
            round_inputs(4 + k, 0, x, dy);
            mirror_infer(&a, x, want[k]);
            w[k] = (struct worker){
                .s = &a, .k = 4 + k, .rounds = reps(200, 50), .infer_only = true, .want = want[k]};
        }
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_create(&th[k], NULL, worker_main, &w[k]), 0);
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        for (int k = 0; k < 2; k++) {
            uint32_t origin = TEEC_ORIGIN_TRUSTED_APP;
            expect_ta(name, w[k].res, &origin, TEEC_SUCCESS);
            if (w[k].wrong)
                fail_msg("case %s: %d wrong outputs in thread %d", name, w[k].wrong, k);
        }
        usable(C_CONC, name, &a);
    }

    /* Two processes at once: each its own context, session and state. */
    snprintf(name, sizeof(name), "concurrency/two-processes-training");
    {
        size_t bsize = 0;
        uint8_t *blob = make_blob(&g, &bsize);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_train(fds[1], blob, bsize, 6, rounds);
        }
        close(fds[1]);
        struct sess c;
        sess_ready(&c, NULL, &g);
        for (int r = 0; r < rounds; r++) {
            float x[MAXF], dy[MAXF];
            round_inputs(7, r, x, dy);
            sess_train_forward(name, &c, x, NULL);
            sess_backward(name, &c, dy);
            sess_update(name, &c);
        }
        float child_y[MAXF];
        ssize_t got = read(fds[0], child_y, sizeof(child_y));
        close(fds[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("case %s: the child failed (status %#x)", name, (unsigned)status);
        assert_int_equal(got, (ssize_t)(c.out * sizeof(float)));
        /* the child's stream replayed here from q */
        struct sess m;
        memset(&m, 0, sizeof(m));
        m.g = g;
        dims(&m);
        m.ref = reference(&g);
        mirror_load(&m, mid_q, SEEN_Q);
        float x[MAXF], dy[MAXF], dx[MAXF], want[MAXF];
        for (int r = 0; r < rounds; r++) {
            round_inputs(6, r, x, dy);
            mirror_train_forward(&m, x, NULL);
            mirror_backward(&m, dy, dx);
            mirror_update(&m);
        }
        mirror_infer(&m, probe_x, want);
        if (memcmp(child_y, want, c.out * sizeof(float)) != 0)
            fail_msg("case %s: the child's session is not the engine's", name);
        dnn_network_free(m.ref);
        usable(C_CONC, name, &c);
        sess_end(&c);
        free(blob);
    }

    /* A second process is the same device: same public key, and it loads our sealed blob. */
    snprintf(name, sizeof(name), "concurrency/second-process-same-device");
    {
        uint8_t blob[SEALED_MAX], pub[DZ_X25519_BYTES];
        const size_t size = seal_params(&g, mid_q, SEEN_Q, blob);
        TEEC_Operation op;
        uint32_t origin = 0;
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        set_mem(&op, 0, pub, sizeof(pub));
        expect_ta(name, call(&a, DZ_CMD_GET_PUBKEY, &op, &origin), &origin, OK);
        size_t bsize = 0;
        uint8_t *mblob = make_blob(&g, &bsize);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            TEEC_Context ctx;
            struct sess c;
            uint8_t cpub[DZ_X25519_BYTES];
            float y[MAXF];
            close(fds[0]);
            memset(&c, 0, sizeof(c));
            if (TEEC_InitializeContext(NULL, &ctx) != TEEC_SUCCESS ||
                TEEC_OpenSession(&ctx, &c.ts, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL,
                                 &origin) != TEEC_SUCCESS)
                _exit(20);
            set_mem(&op, 0, cpub, sizeof(cpub));
            if (call(&c, DZ_CMD_GET_PUBKEY, &op, &origin) != TEEC_SUCCESS ||
                memcmp(cpub, pub, sizeof(pub)) != 0)
                _exit(21);
            memset(&op, 0, sizeof(op));
            op.paramTypes =
                TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
            set_mem(&op, 0, mblob, bsize);
            if (call(&c, DZ_CMD_OPEN_MODEL, &op, &origin) != TEEC_SUCCESS)
                _exit(22);
            memset(&op, 0, sizeof(op));
            op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                             TEEC_VALUE_OUTPUT, TEEC_NONE);
            set_mem(&op, 0, blob, size);
            if (call(&c, DZ_CMD_LOAD_SEALED, &op, &origin) != TEEC_SUCCESS ||
                op.params[1].value.a != SEEN_Q)
                _exit(23);
            c.in = BATCH * 8;
            size_t ysize = BATCH * 4 * sizeof(float);
            if (raw_forward(&c, probe_x, NULL, 0, y, &ysize, &origin) != TEEC_SUCCESS ||
                write(fds[1], y, ysize) != (ssize_t)ysize)
                _exit(24);
            TEEC_CloseSession(&c.ts);
            TEEC_FinalizeContext(&ctx);
            _exit(0);
        }
        close(fds[1]);
        float y[MAXF], want[MAXF];
        ssize_t got = read(fds[0], y, sizeof(y));
        close(fds[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("case %s: the child failed (status %#x)", name, (unsigned)status);
        struct sess m;
        memset(&m, 0, sizeof(m));
        m.g = g;
        dims(&m);
        m.ref = reference(&g);
        mirror_load(&m, mid_q, SEEN_Q);
        mirror_infer(&m, probe_x, want);
        assert_int_equal(got, (ssize_t)(m.out * sizeof(float)));
        if (memcmp(y, want, m.out * sizeof(float)) != 0)
            fail_msg("case %s: the child's parameters are not q", name);
        dnn_network_free(m.ref);
        free(mblob);
        usable(C_CONC, name, &a);
    }

    /* One session closed mid-training (a forward pending): the other goes on. */
    snprintf(name, sizeof(name), "concurrency/close-one-mid-training");
    {
        float x[MAXF], dy[MAXF];
        round_inputs(8, 0, x, dy);
        sess_train_forward(name, &a, x, NULL);
        sess_train_forward(name, &b, x, NULL);
        sess_end(&a);
        sess_backward(name, &b, dy);
        sess_update(name, &b);
        usable(C_CONC, name, &b);
    }
    sess_end(&b);
    for (int k = 0; k < 2; k++) {
        free(ys[k]);
        free(dxs[k]);
    }
}

/* ================================================================== double fetch */

struct flipper {
    uint32_t *word;
    uint32_t a, b;
    atomic_int stop;
    pthread_t th;
};

static void *flip_main(void *arg)
{
    struct flipper *f = arg;
    while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        for (int i = 0; i < 64; i++) {
            __atomic_store_n(f->word, f->b, __ATOMIC_RELAXED);
            __atomic_store_n(f->word, f->a, __ATOMIC_RELAXED);
        }
    }
    __atomic_store_n(f->word, f->a, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Starts rewriting the 32-bit word at @at between @a and @b. */
static void flip_start(struct flipper *f, void *at, uint32_t a, uint32_t b)
{
    f->word = at;
    f->a = a;
    f->b = b;
    atomic_store(&f->stop, 0);
    assert_int_equal(pthread_create(&f->th, NULL, flip_main, f), 0);
}

static void flip_stop(struct flipper *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
}

static uint32_t word_at(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/*
 * v with its sign flipped: the two words differ in one byte only. A copy may read a word
 * byte by byte (ASan's memmove does), so a word rewritten in two or more bytes could load
 * as a mix of both: a value the normal world could have written itself, not a double
 * fetch. With one differing byte, any copy that reads each byte once yields one version.
 */
static float other_sign(float v)
{
    assert_true(v != 0.0f);
    return -v;
}

/* OPEN_MODEL of a blob in shared memory with one word rewritten; @alt is the other value. */
static void dfetch_open(const char *name, size_t off, uint32_t alt, int iters)
{
    const struct seg g2 = seg_of(1, 2, true, BATCH), g3 = seg_of(1, 2, true, 3);
    size_t size = 0;
    uint8_t *blob = make_blob(&g2, &size);
    TEEC_SharedMemory shm;
    uint64_t need2 = 0, need3 = 0;
    uint32_t origin = 0;
    struct sess s;
    memset(&shm, 0, sizeof(shm));
    shm.size = size;
    shm.flags = TEEC_MEM_INPUT;
    assert_int_equal(TEEC_AllocateSharedMemory(&gctx, &shm), TEEC_SUCCESS);
    memcpy(shm.buffer, blob, size);
    for (int k = 0; k < 2; k++) { /* the needs of batch 2 and 3, without a flip */
        size_t n = 0;
        uint8_t *bk = make_blob(k ? &g3 : &g2, &n);
        sess_start(&s, NULL, &g2);
        TEEC_Operation op;
        right_op(&s, &(struct bufs){.blob = bk, .blob_size = n}, A_OPEN, &op);
        expect_ta(name, call(&s, DZ_CMD_OPEN_MODEL, &op, &origin), &origin, OK);
        *(k ? &need3 : &need2) = ((uint64_t)op.params[1].value.b << 32) | op.params[1].value.a;
        sess_end(&s);
        free(bk);
    }
    struct flipper f;
    flip_start(&f, (uint8_t *)shm.buffer + off, word_at(blob + off), alt);
    int ok = 0;
    for (int i = 0; i < iters; i++) {
        TEEC_Operation op;
        sess_start(&s, NULL, &g2);
        memset(&op, 0, sizeof(op));
        op.paramTypes =
            TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
        op.params[0].memref.parent = &shm;
        op.params[0].memref.size = size;
        const TEEC_Result res = call(&s, DZ_CMD_OPEN_MODEL, &op, &origin);
        const uint64_t need = ((uint64_t)op.params[1].value.b << 32) | op.params[1].value.a;
        if (res == OK) {
            ok++;
            if (need != need2 && need != need3)
                fail_msg("case %s: opened with a need of %llu (%llu or %llu)", name,
                         (unsigned long long)need, (unsigned long long)need2,
                         (unsigned long long)need3);
            if (need == need3 && need3 != need2) {
                s.g = g3;
                dims(&s);
            }
            s.ref = reference(&s.g);
            /* the other batch's input is refused */
            float big[MAXF], y[MAXF];
            size_t ysize = sizeof(y);
            const size_t other = s.g.batch == 3 ? 2 * 8 : 3 * 8;
            memset(&op, 0, sizeof(op));
            op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_VALUE_INPUT,
                                             TEEC_MEMREF_TEMP_OUTPUT);
            memset(big, 0, sizeof(big));
            set_mem(&op, 0, big, other * sizeof(float));
            set_mem(&op, 3, y, ysize);
            expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, BP);
        } else if (res != BP || origin != TEEC_ORIGIN_TRUSTED_APP || need != 0) {
            fail_msg("case %s: %s (%#x) need %llu, expected SUCCESS or BAD_PARAMETERS", name,
                     res_name(res), (unsigned)res, (unsigned long long)need);
        }
        check_version(name, &s);
        if (!s.ref)
            sess_open(&s);
        check_infer(name, &s, probe_x);
        sess_end(&s);
    }
    flip_stop(&f);
    TEEC_ReleaseSharedMemory(&shm);
    free(blob);
    usable_fresh(C_DFETCH, name);
}

static void test_double_fetch(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 2, true, BATCH);
    const int n = reps(200, 60), n_open = reps(16, 8);
    struct sess s;
    struct bufs b;
    char name[160];
    uint32_t origin = 0;
    TEEC_Operation op;
    TEEC_SharedMemory shm;
    struct flipper f;

    sess_ready(&s, NULL, &g);
    bufs_init(&b, &s);
    memset(&shm, 0, sizeof(shm));
    shm.size = 4096;
    shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    assert_int_equal(TEEC_AllocateSharedMemory(&gctx, &shm), TEEC_SUCCESS);
    uint8_t *m = shm.buffer;
    const size_t in = s.in * sizeof(float), out = s.out * sizeof(float);

    /* FORWARD (inference): the input's first float rewritten during the calls. */
    snprintf(name, sizeof(name), "doublefetch/forward-input");
    {
        float x1[MAXF], y0[MAXF], y1[MAXF], y[MAXF];
        memcpy(x1, b.x, sizeof(x1));
        x1[0] = other_sign(x1[0]);
        mirror_infer(&s, b.x, y0);
        mirror_infer(&s, x1, y1);
        assert_memory_not_equal(y0, y1, out);
        memcpy(m, b.x, in);
        flip_start(&f, m, word_at(&b.x[0]), word_at(&x1[0]));
        for (int i = 0; i < n; i++) {
            right_op(&s, &b, A_FWD_INF, &op);
            set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, in);
            set_mem(&op, 3, y, out);
            expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, OK);
            if (memcmp(y, y0, out) != 0 && memcmp(y, y1, out) != 0)
                fail_msg("case %s: call %d: an output of neither input", name, i);
        }
        flip_stop(&f);
        usable(C_DFETCH, name, &s);
    }

    /* Training rounds with the input rewritten: each round is that of one version. */
    snprintf(name, sizeof(name), "doublefetch/training-rounds-input");
    {
        float x1[MAXF], y[MAXF];
        memcpy(x1, b.x, sizeof(x1));
        x1[3] = other_sign(x1[3]);
        memcpy(m, b.x, in);
        flip_start(&f, m + 12, word_at(&b.x[3]), word_at(&x1[3]));
        for (int i = 0; i < n; i++) {
            right_op(&s, &b, A_FWD_TRAIN, &op);
            set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, in);
            set_mem(&op, 3, y, out);
            expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, OK);
            if (memcmp(y, mirror_train_forward(&s, b.x, NULL), out) != 0) {
                s.ref->seen -= s.g.batch; /* the same forward with the other version */
                if (memcmp(y, mirror_train_forward(&s, x1, NULL), out) != 0)
                    fail_msg("case %s: round %d: an output of neither input", name, i);
            }
            float dy[MAXF]; /* descent towards a zero output: the weights stay finite */
            for (size_t k = 0; k < s.out; k++)
                dy[k] = -0.1f * y[k];
            sess_backward(name, &s, dy);
            sess_update(name, &s);
        }
        flip_stop(&f);
        usable(C_DFETCH, name, &s);
    }

    /* LOAD_PLAIN: one parameter rewritten; the session holds one version or the other. */
    snprintf(name, sizeof(name), "doublefetch/load-plain-parameter");
    {
        float p1[MAXF * 2];
        memcpy(p1, mid_p, sizeof(p1));
        p1[40] = other_sign(p1[40]);
        memcpy(m, mid_p, s.np * sizeof(float));
        flip_start(&f, m + 160, word_at(&mid_p[40]), word_at(&p1[40]));
        for (int i = 0; i < n / 4; i++) {
            right_op(&s, &b, A_LOAD_PLAIN, &op);
            set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, s.np * sizeof(float));
            expect_ta(name, call(&s, DZ_CMD_LOAD_PLAIN, &op, &origin), &origin, OK);
            mirror_load(&s, mid_p, SEEN_P);
            if (!infer_matches(&s, probe_x)) {
                mirror_load(&s, p1, SEEN_P);
                if (!infer_matches(&s, probe_x))
                    fail_msg("case %s: load %d: parameters of neither version", name, i);
            }
        }
        flip_stop(&f);
        usable(C_DFETCH, name, &s);
    }

    /* LOAD_SEALED: a ciphertext word, then the header's seen, rewritten; SUCCESS loads q with
     * the sealed seen; SECURITY either leaves p (the first, authenticating pass refused the
     * blob) or, when the rewrite fell between the two passes (seal.c), leaves no parameters:
     * then FORWARD answers BAD_STATE until a load, and the next load works. */
    static const struct {
        const char *what;
        size_t off;
        uint32_t xor ;
    } sealed_flips[] = {{"load-sealed-ciphertext", sizeof(struct dz_sealed_header) + 64, 0x10},
                        {"load-sealed-header-seen", HOFF(seen_lo), 1},
                        {"load-sealed-policy", POFF(batch_max), 4},
                        {"load-sealed-tag", sizeof(struct dz_sealed_header) + 328, 0x100}};
    for (size_t k = 0; k < sizeof(sealed_flips) / sizeof(sealed_flips[0]); k++) {
        snprintf(name, sizeof(name), "doublefetch/%s", sealed_flips[k].what);
        memcpy(m, b.sealed, b.sealed_size);
        const uint32_t v = word_at(b.sealed + sealed_flips[k].off);
        flip_start(&f, m + sealed_flips[k].off, v, v ^ sealed_flips[k].xor);
        int loaded = 0;
        for (int i = 0; i < n / 4; i++) {
            sess_load_plain(&s, mid_p, SEEN_P);
            right_op(&s, &b, A_LOAD_SEALED, &op);
            set_part(&op, 0, TEEC_MEMREF_PARTIAL_INPUT, &shm, 0, b.sealed_size);
            const TEEC_Result res = call(&s, DZ_CMD_LOAD_SEALED, &op, &origin);
            if (res == OK) {
                loaded++;
                mirror_action(name, &s, &b, A_LOAD_SEALED, &op, NULL);
            } else if (res != SEC) {
                fail_msg("case %s: %s (%#x), expected SUCCESS or SECURITY", name, res_name(res),
                         (unsigned)res);
            } else {
                uint8_t y[BATCH * 4 * sizeof(struct dz_prediction)];
                size_t ysize = out_bytes(&s);
                const TEEC_Result fr = raw_forward(&s, probe_x, NULL, 0, y, &ysize, &origin);
                if (fr == TEEC_ERROR_BAD_STATE)
                    sess_load_plain(&s, mid_p, SEEN_P); /* wiped: a load brings it back */
                else if (fr != OK)
                    fail_msg("case %s: FORWARD after a refused load: %s", name, res_name(fr));
            }
            check_infer(name, &s, probe_x);
        }
        flip_stop(&f);
        usable(C_DFETCH, name, &s);
    }

    /* SAVE_SEALED: the policy's modes rewritten between all and invalid bits: a blob saved
     * carries the policy that was checked. */
    snprintf(name, sizeof(name), "doublefetch/save-sealed-policy");
    {
        struct dz_policy pol = b.pol;
        memcpy(m + 1024, &pol, sizeof(pol));
        flip_start(&f, m + 1024, pol.modes, 0xFFu);
        for (int i = 0; i < n / 4; i++) {
            right_op(&s, &b, A_SAVE_POL, &op);
            set_part(&op, 1, TEEC_MEMREF_PARTIAL_INPUT, &shm, 1024, sizeof(pol));
            memset(b.out, 0, sizeof(b.out));
            const TEEC_Result res = call(&s, DZ_CMD_SAVE_SEALED, &op, &origin);
            if (res == OK) {
                const struct dz_sealed_header *h = (const void *)b.out;
                if (h->policy.modes != DZ_MODES_ALL)
                    fail_msg("case %s: sealed modes %#x", name, (unsigned)h->policy.modes);
            } else if (res != BP) {
                fail_msg("case %s: %s (%#x), expected SUCCESS or BAD_PARAMETERS", name,
                         res_name(res), (unsigned)res);
            }
        }
        flip_stop(&f);
        usable(C_DFETCH, name, &s);
    }
    TEEC_ReleaseSharedMemory(&shm);
    bufs_free(&b);
    sess_end(&s);

    /* OPEN_MODEL: the batch (2 or 3, both valid), a spec's outputs (6 or 0) and n_specs (2 or
     * 2^31 - 1) rewritten: each open is refused or opens one version consistently. */
    dfetch_open("doublefetch/open-batch", offsetof(struct dz_model_header, batch), 3, n_open);
    dfetch_open("doublefetch/open-spec-outputs",
                sizeof(struct dz_model_header) + offsetof(struct dz_wire_spec, outputs), 0, n_open);
    dfetch_open("doublefetch/open-n-specs", offsetof(struct dz_model_header, n_specs), 0x7FFFFFFFu,
                n_open);
    dfetch_open("doublefetch/open-in-c", offsetof(struct dz_model_header, in_c), 1u << 30, n_open);
}

/* ================================================================== churn, many, dead */

/* Pids of this process's DarkneTZ TA instances (grandchildren running its .ta). */
static long ppid_of(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    long pp = -1;
    if (!rp || sscanf(rp + 2, "%*c %ld", &pp) != 1)
        return -1;
    return pp;
}

static int procs_named(const char *needle, int depth, long *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL && n < max) {
        char path[300], cmd[512];
        long pid = atol(e->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        cmd[len] = '\0';
        if (!strstr(cmd, needle))
            continue;
        long p = ppid_of(pid);
        if (depth == 2)
            p = ppid_of(p);
        if (p == (long)getpid())
            out[n++] = pid;
    }
    if (d)
        closedir(d);
    return n;
}

#define TA_NAME "5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta"

/* The one pid in @now that is not in @before. */
static long new_pid(const long *before, int nb, const long *now, int nn)
{
    long found = -1;
    for (int i = 0; i < nn; i++) {
        bool old = false;
        for (int j = 0; j < nb; j++)
            old |= now[i] == before[j];
        if (!old) {
            assert_int_equal(found, -1);
            found = now[i];
        }
    }
    assert_true(found > 0);
    return found;
}

static void kill_and_wait(long pid, int sig)
{
    assert_int_equal(kill((pid_t)pid, sig), 0);
    for (int i = 0; i < 500; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        char c = 0;
        const bool alive = f && fread(&c, 1, 1, f) == 1; /* a zombie has no cmdline */
        if (f)
            fclose(f);
        if (!alive)
            return;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("pid %ld did not die of signal %d", pid, sig);
}

/* A ready session of @g whose TA instance pid comes back. */
static long sess_ready_pid(struct sess *s, TEEC_Context *ctx, const struct seg *g)
{
    long before[256], now[256];
    const int nb = procs_named(TA_NAME, 2, before, 256);
    sess_ready(s, ctx, g);
    const int nn = procs_named(TA_NAME, 2, now, 256);
    return new_pid(before, nb, now, nn);
}

struct streamer {
    struct sess *s;
    atomic_int calls;
    TEEC_Result last;
    int bad;
};

static void *stream_main(void *arg)
{
    struct streamer *w = arg;
    float y[MAXF];
    for (;;) {
        size_t size = w->s->out * sizeof(float);
        uint32_t origin = 0;
        const TEEC_Result res = raw_forward(w->s, probe_x, NULL, 0, y, &size, &origin);
        if (res != TEEC_SUCCESS) {
            w->last = res;
            if (res != TEEC_ERROR_TARGET_DEAD || origin != TEEC_ORIGIN_TEE)
                w->bad++;
            return NULL;
        }
        atomic_fetch_add(&w->calls, 1);
    }
}

static void test_churn(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 2, true, BATCH), ge = seg_of(3, 5, false, BATCH);
    char name[160];
    uint32_t origin = 0;
    TEEC_Operation op;
    struct sess s;

    /* Warm up once so that the baseline includes the context's own descriptors. */
    usable_fresh(C_CHURN, "churn/warm-up");
    const int fds0 = count_fds(), procs0 = wait_descendants(1); /* the context's core */
#define NO_LEAK(nm)                                                                                \
    do {                                                                                           \
        if (wait_descendants(procs0) > procs0 || count_fds() != fds0)                              \
            fail_msg("case %s: %d processes, %d descriptors (before: %d, %d)", nm,                 \
                     count_descendants(), count_fds(), procs0, fds0);                              \
    } while (0)

    snprintf(name, sizeof(name), "churn/sessions-open-model-forward-close");
    for (int i = 0; i < reps(200, 30); i++) {
        sess_start(&s, NULL, &g);
        sess_open(&s);
        check_infer(name, &s, probe_x);
        sess_end(&s);
    }
    NO_LEAK(name);
    usable_fresh(C_CHURN, name);

    snprintf(name, sizeof(name), "churn/contexts-init-session-finalize");
    for (int i = 0; i < reps(100, 15); i++) {
        TEEC_Context ctx;
        assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
        sess_start(&s, &ctx, &g);
        check_version(name, &s);
        sess_end(&s);
        TEEC_FinalizeContext(&ctx);
    }
    NO_LEAK(name);
    usable_fresh(C_CHURN, name);

    snprintf(name, sizeof(name), "churn/close-mid-training-with-shared-memory");
    for (int i = 0; i < reps(50, 10); i++) {
        TEEC_SharedMemory shm;
        memset(&shm, 0, sizeof(shm));
        shm.size = 4096;
        shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
        assert_int_equal(TEEC_AllocateSharedMemory(&gctx, &shm), TEEC_SUCCESS);
        sess_ready(&s, NULL, &g);
        memcpy(shm.buffer, probe_x, s.in * sizeof(float));
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_NONE, TEEC_VALUE_INPUT,
                                         TEEC_MEMREF_PARTIAL_OUTPUT);
        op.params[0].memref.parent = &shm;
        op.params[0].memref.size = s.in * sizeof(float);
        op.params[2].value.a = DZ_FORWARD_TRAIN;
        op.params[3].memref.parent = &shm;
        op.params[3].memref.offset = 1024;
        op.params[3].memref.size = s.out * sizeof(float);
        expect_ta(name, call(&s, DZ_CMD_FORWARD, &op, &origin), &origin, OK);
        sess_end(&s); /* a forward pending, the block still mapped by the TA */
        TEEC_ReleaseSharedMemory(&shm);
    }
    NO_LEAK(name);
    usable_fresh(C_CHURN, name);

    snprintf(name, sizeof(name), "churn/refused-opens-then-open");
    {
        size_t size = 0;
        uint8_t *blob = make_blob(&g, &size);
        uint8_t *bad = malloc(size);
        assert_non_null(bad);
        sess_start(&s, NULL, &g);
        for (int i = 0; i < reps(300, 60); i++) {
            memcpy(bad, blob, size);
            TEEC_Result want = BP;
            size_t n = size;
            switch (i % 4) {
            case 0:
                blob_header(bad)->magic ^= 1u << (i % 32);
                break;
            case 1:
                n = size - 1 - (size_t)(i % 100);
                break;
            case 2:
                blob_spec(bad, 0)->outputs = 1 << 24;
                want = TEEC_ERROR_OUT_OF_MEMORY;
                break;
            default:
                blob_spec(bad, 1)->kind = 0x100u + (uint32_t)i;
                break;
            }
            memset(&op, 0, sizeof(op));
            op.paramTypes =
                TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
            set_mem(&op, 0, bad, n);
            expect_ta(name, call(&s, DZ_CMD_OPEN_MODEL, &op, &origin), &origin, want);
        }
        usable(C_CHURN, name, &s); /* opens the model in the same session */
        sess_end(&s);
        free(bad);
        free(blob);
    }

    snprintf(name, sizeof(name), "churn/finalize-with-sessions-open");
    for (int i = 0; i < reps(30, 8); i++) {
        TEEC_Context ctx;
        struct sess t[2];
        assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
        sess_ready(&t[0], &ctx, &g);
        sess_start(&t[1], &ctx, &ge);
        TEEC_FinalizeContext(&ctx); /* sessions still open */
        dnn_network_free(t[0].ref);
    }
    NO_LEAK(name);
    usable_fresh(C_CHURN, name);

    /* Many sessions at once in one context, each with its own parameters, up to K or until
     * the secure-memory pool (when the simulator has one, as OP-TEE does) refuses an open with
     * TEEC_ERROR_OUT_OF_MEMORY, origin TEE; closing one session makes room for another. */
    snprintf(name, sizeof(name), "many/sessions-one-context");
    {
        const int k = reps(48, 12);
        struct sess *m = calloc((size_t)k + 1, sizeof(*m));
        float *ps = malloc(((size_t)k + 1) * s.np * sizeof(float));
        int opened = 0;
        bool pool_full = false;
        assert_non_null(m);
        assert_non_null(ps);
        while (opened < k && !pool_full) {
            const int i = opened;
            TEEC_Result res;
            memset(&m[i], 0, sizeof(m[i]));
            m[i].ctx = &gctx;
            m[i].g = i % 3 == 2 ? ge : g;
            dims(&m[i]);
            res = TEEC_OpenSession(&gctx, &m[i].ts, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL,
                                   &origin);
            if (res == TEEC_ERROR_OUT_OF_MEMORY && origin == TEEC_ORIGIN_TEE && i >= 2) {
                pool_full = true;
                break;
            }
            expect(name, res, &origin, OK, 0);
            sess_open(&m[i]);
            fill(ps + (size_t)i * s.np, s.np, -1, 1);
            if (i % 3 != 2)
                sess_load_plain(&m[i], ps + (size_t)i * s.np, (uint64_t)i);
            opened++;
        }
        for (int i = opened - 1; i >= 0; i--)
            check_infer(name, &m[i], probe_x);
        if (pool_full) { /* room again once one is closed */
            sess_end(&m[0]);
            for (int tries = 0;; tries++) {
                const TEEC_Result res = TEEC_OpenSession(&gctx, &m[0].ts, &dz_ta_uuid,
                                                         TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
                if (res == OK)
                    break;
                expect(name, res, &origin, TEEC_ERROR_OUT_OF_MEMORY, TEEC_ORIGIN_TEE);
                if (tries > 100)
                    fail_msg("case %s: no room after a session closed", name);
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            m[0].ref = NULL;
            sess_open(&m[0]);
            check_infer(name, &m[0], probe_x);
        }
        for (int i = 0; i < opened; i += 2) /* close every other one, the rest go on */
            sess_end(&m[i]);
        for (int i = 1; i < opened; i += 2) {
            float x[MAXF], dy[MAXF];
            round_inputs(i, 0, x, dy);
            if (i % 3 != 2) {
                sess_train_forward(name, &m[i], x, NULL);
                sess_backward(name, &m[i], dy);
                sess_update(name, &m[i]);
            }
            check_infer(name, &m[i], probe_x);
        }
        for (int i = 1; i < opened; i += 2)
            sess_end(&m[i]);
        printf("hostile: %d sessions at once in one context%s\n", opened,
               pool_full ? " (then the secure-memory pool was full)" : "");
        free(ps);
        free(m);
        NO_LEAK(name);
        usable_fresh(C_CHURN, name);
    }

    /* Many contexts with two sessions each, up to K contexts or until the secure-memory pool,
     * which all the contexts share (as OP-TEE's TAs share its one pool), refuses an open with
     * TEEC_ERROR_OUT_OF_MEMORY, origin TEE; a session closed in one context then makes room
     * for an open in another at once. */
    snprintf(name, sizeof(name), "many/contexts-two-sessions-each");
    {
        const int k = reps(16, 6);
        TEEC_Context *ctx = calloc((size_t)k, sizeof(*ctx));
        struct sess *m = calloc((size_t)k * 2 + 1, sizeof(*m));
        int opened = 0, nctx = 0;
        bool pool_full = false;
        assert_non_null(ctx);
        assert_non_null(m);
        for (; opened < 2 * k; opened++) {
            struct sess *t = &m[opened];
            if (opened % 2 == 0)
                assert_int_equal(TEEC_InitializeContext(NULL, &ctx[nctx++]), TEEC_SUCCESS);
            memset(t, 0, sizeof(*t));
            t->ctx = &ctx[nctx - 1];
            t->g = opened % 2 ? ge : g;
            dims(t);
            TEEC_Result res = TEEC_OpenSession(t->ctx, &t->ts, &dz_ta_uuid, TEEC_LOGIN_PUBLIC, NULL,
                                               NULL, &origin);
            if (res == TEEC_ERROR_OUT_OF_MEMORY && origin == TEEC_ORIGIN_TEE && opened >= 2) {
                pool_full = true;
                break;
            }
            expect(name, res, &origin, OK, 0);
            sess_open(t);
            sess_load_plain(t, t->g.first == 1 ? mid_p : end_p, SEEN_P);
        }
        for (int i = 0; i < opened; i++)
            check_infer(name, &m[i], probe_x);
        if (pool_full && nctx > 1) {
            /* Closed in the first context, opened in the last. */
            sess_end(&m[0]);
            const struct seg refused = m[opened].g; /* sess_ready clears the slot first */
            sess_ready(&m[opened], &ctx[nctx - 1], &refused);
            check_infer(name, &m[opened], probe_x);
            sess_end(&m[opened]);
        }
        for (int i = pool_full && nctx > 1 ? 1 : 0; i < opened; i++)
            sess_end(&m[i]);
        for (int i = 0; i < nctx; i++)
            TEEC_FinalizeContext(&ctx[i]);
        printf("hostile: %d sessions in %d contexts%s\n", opened, nctx,
               pool_full ? " (then the shared secure-memory pool was full)" : "");
        free(m);
        free(ctx);
        NO_LEAK(name);
        usable_fresh(C_CHURN, name);
    }

    /* A dead TA: every command on its session is TARGET_DEAD (origin TEE), again and again;
     * the context lives on. */
    {
        struct sess d;
        struct bufs b;
        sess_start(&d, NULL, &g);
        bufs_init(&b, &d);
        sess_end(&d);
        const long pid = sess_ready_pid(&d, NULL, &g);
        kill_and_wait(pid, SIGKILL);
        for (int a = 0; a < A_COUNT; a++) {
            snprintf(name, sizeof(name), "dead/SIGKILL/%s", action_names[a]);
            right_op(&d, &b, (enum action)a, &op);
            expect(name, call(&d, action_cmd[a], &op, &origin), &origin, TEEC_ERROR_TARGET_DEAD,
                   TEEC_ORIGIN_TEE);
            usable_fresh(C_CHURN, name);
        }
        sess_end(&d);
        bufs_free(&b);
        NO_LEAK("dead/SIGKILL");
    }

    snprintf(name, sizeof(name), "dead/SIGTERM-then-new-session-loads-sealed");
    {
        uint8_t blob[SEALED_MAX];
        const size_t size = seal_params(&g, mid_q, SEEN_Q, blob);
        struct sess d;
        const long pid = sess_ready_pid(&d, NULL, &g);
        float x[MAXF], dy[MAXF];
        round_inputs(9, 0, x, dy);
        sess_train_forward(name, &d, x, NULL);
        kill_and_wait(pid, SIGTERM);
        expect(name, TEEC_InvokeCommand(&d.ts, DZ_CMD_UPDATE, NULL, &origin), &origin,
               TEEC_ERROR_TARGET_DEAD, TEEC_ORIGIN_TEE);
        sess_end(&d);
        sess_ready(&d, NULL, &g);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                         TEEC_VALUE_OUTPUT, TEEC_NONE);
        set_mem(&op, 0, blob, size);
        expect_ta(name, call(&d, DZ_CMD_LOAD_SEALED, &op, &origin), &origin, OK);
        mirror_load(&d, mid_q, SEEN_Q);
        usable(C_CHURN, name, &d);
        sess_end(&d);
    }

    snprintf(name, sizeof(name), "dead/one-of-two-sessions");
    {
        struct sess d, o;
        sess_ready(&o, NULL, &g);
        const long pid = sess_ready_pid(&d, NULL, &g);
        kill_and_wait(pid, SIGKILL);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        expect(name, call(&d, DZ_CMD_VERSION, &op, &origin), &origin, TEEC_ERROR_TARGET_DEAD,
               TEEC_ORIGIN_TEE);
        usable(C_CHURN, name, &o);
        sess_end(&d);
        sess_end(&o);
    }

    snprintf(name, sizeof(name), "dead/killed-during-a-stream-of-calls");
    {
        struct sess d;
        const long pid = sess_ready_pid(&d, NULL, &g);
        struct streamer w = {.s = &d};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, stream_main, &w), 0);
        while (atomic_load(&w.calls) < 20)
            sched_yield();
        kill_and_wait(pid, SIGKILL);
        pthread_join(th, NULL);
        if (w.bad)
            fail_msg("case %s: the stream ended with %s (%#x)", name, res_name(w.last),
                     (unsigned)w.last);
        sess_end(&d);
        usable_fresh(C_CHURN, name);
    }

    snprintf(name, sizeof(name), "dead/core-killed");
    {
        TEEC_Context ctx;
        struct sess d;
        long before[64], now[64];
        const int nb = procs_named("dz-tee-core", 1, before, 64);
        assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
        const int nn = procs_named("dz-tee-core", 1, now, 64);
        const long core = new_pid(before, nb, now, nn);
        sess_ready(&d, &ctx, &g);
        kill_and_wait(core, SIGKILL);
        struct timespec ts = {0, 50 * 1000 * 1000}; /* the instance follows its core */
        nanosleep(&ts, NULL);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        expect(name, call(&d, DZ_CMD_VERSION, &op, &origin), &origin, TEEC_ERROR_TARGET_DEAD,
               TEEC_ORIGIN_TEE);
        sess_end(&d);
        TEEC_FinalizeContext(&ctx);
        NO_LEAK(name);
        usable_fresh(C_CHURN, name);
    }
#undef NO_LEAK
}

/* ================================================================== main */

static void test_total(void **state)
{
    (void)state;
    unsigned total = 0;
    for (int c = 0; c < C_COUNT; c++) {
        printf("hostile: %-12s %u cases\n", category_names[c], n_cases[c]);
        total += n_cases[c];
    }
    printf("hostile: %u cases\n", total);
    if (total < 200)
        fail_msg("only %u hostile cases ran (at least 200)", total);
}

int main(void)
{
    init_net();
    make_params();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_churn, setup, teardown),
        cmocka_unit_test(test_total),
    };
    return cmocka_run_group_tests_name("ta_hostile", tests, NULL, NULL);
}
