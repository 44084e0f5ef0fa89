/*
 * test_ta_train_step.c - DZ_CMD_TRAIN_STEP (FORWARD with DZ_FORWARD_TRAIN, BACKWARD and, with
 * DZ_STEP_UPDATE, UPDATE in one call) through the simulated TEE's client API:
 *  - equivalence: two sessions on one model blob and one set of parameters, one trained with
 *    the three commands and one with TRAIN_STEP (with DZ_STEP_UPDATE at each iteration's last
 *    subdivision, or without it and a separate UPDATE), subdivisions 1 and 2, a segment that
 *    starts the network (no delta out) and one that starts later: the delta at first's input,
 *    the loss and its running average are bit-identical at every step, and so are the scores
 *    of an inference FORWARD after every iteration (what shows the parameters);
 *  - refusals, each with its exact code: wrong parameter types and flags (BAD_PARAMETERS);
 *    no model, an inference session, a segment that does not end the network, a streamed
 *    session, a second gradient query before UPDATE (BAD_STATE); the loss under a label
 *    policy and an UPDATE outside the sealed policy's rate (ACCESS_DENIED), with the state
 *    each leaves ("a step stops at the first command that fails"); a short delta buffer
 *    (SHORT_BUFFER with the size needed, and nothing run); the loss asked of a network
 *    without a cost layer (BAD_PARAMETERS from the UPDATE, after the passes ran).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "ta/include/dz_wire.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

/* ------------------------------------------------------------------ the test net */

enum { N_LAYERS = 6, BATCH = 4, IN0 = 8, CLASSES = 3, ITERS = 4 };
/* Far enough past burn_in that the schedule's steps decide the rate. */
#define SEEN0 (BATCH * 2 * 3)

/* [net] with 1 and 2 subdivisions: cfgs[s - 1]. */
static struct dnn_net_config cfgs[2];
static struct dnn_layer_spec specs[N_LAYERS];

/* ta_client.h's small classifier with 1 and 2 subdivisions, the rate scaled at 8 and 10. */
static void init_net(void)
{
    for (int s = 0; s < 2; s++)
        ta_small_config(&cfgs[s], BATCH, s + 1, IN0, 8, 10);
    ta_small_classifier(specs, CLASSES);
}

static struct seg seg_of(int subdivisions, uint32_t first, uint32_t last, bool training,
                         uint32_t output_policy)
{
    return (struct seg){.cfg = &cfgs[subdivisions - 1],
                        .specs = specs,
                        .n_layers = N_LAYERS,
                        .first = first,
                        .last = last,
                        .batch = BATCH,
                        .training = training,
                        .output_policy = output_policy,
                        .top_k = 0,
                        .seed = 0x5EEDull};
}

static uint64_t rng_state = 0x13198A2E03707344ull;

static void fill(float *x, size_t n, float lo, float hi)
{
    test_rng_fill(&rng_state, x, n, lo, hi);
}

static void one_hot(float *truth)
{
    memset(truth, 0, BATCH * CLASSES * sizeof(float));
    for (size_t b = 0; b < BATCH; b++)
        truth[b * CLASSES + (size_t)test_rng_float(&rng_state, 0, CLASSES - 0.001f)] = 1;
}

/* Every layer of the test net takes IN0 floats per image (layers 0 and 1 alike). */
static const size_t in_bytes = BATCH * IN0 * sizeof(float);

/* Random parameters of @g's layout (BN scales and variances positive); *np gets the count. */
static float *seg_params(const struct seg *g, size_t *np)
{
    struct dnn_network *ref = reference(g);
    *np = param_count(ref);
    float *p = malloc(*np * sizeof(float)), *q = p;
    assert_non_null(p);
    for (size_t i = 0; i < ref->n; i++)
        for (size_t k = 0; k < ref->layers[i].n_params; k++) {
            const struct dnn_param *prm = &ref->layers[i].params[k];
            const bool positive =
                !strcmp(prm->name, "scales") || !strcmp(prm->name, "rolling_variance");
            fill(q, prm->count, positive ? 0.5f : -1.0f, 1.0f);
            q += prm->count;
        }
    dnn_network_free(ref);
    return p;
}

/* A new session with @g open; its blob's header is changed by @edit first when not NULL. */
static void open_edit(struct ta *t, const struct seg *g, void (*edit)(struct dz_model_header *))
{
    size_t size = 0;
    uint8_t *blob = make_blob(g, &size);
    if (edit)
        edit(blob_header(blob));
    ta_start(t);
    assert_int_equal(ta_open_model(t, blob, size, NULL), TEEC_SUCCESS);
    free(blob);
}

/* A new session with @g open and @p loaded in plain at SEEN0. */
static void open_loaded(struct ta *t, const struct seg *g, const float *p, size_t np)
{
    open_edit(t, g, NULL);
    assert_int_equal(ta_load_plain(t, p, np * sizeof(float), SEEN0), TEEC_SUCCESS);
}

/* An inference FORWARD of a fixed input: under DZ_OUTPUT_SCORES the segment's scores, which
 * show its parameters without revealing them. */
static void probe(struct ta *t, float scores[BATCH * CLASSES])
{
    float x[BATCH * IN0];
    for (size_t i = 0; i < BATCH * IN0; i++)
        x[i] = (float)i / 9.0f - 1.5f;
    size_t out = BATCH * CLASSES * sizeof(float);
    assert_int_equal(ta_forward(t, x, sizeof(x), NULL, 0, 0, scores, &out), TEEC_SUCCESS);
    assert_int_equal(out, BATCH * CLASSES * sizeof(float));
}

static uint32_t bits(float f)
{
    uint32_t u = 0;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* --------------------------------------------------------------- equivalence */

/*
 * Session a trains with FORWARD, BACKWARD, UPDATE; session b with TRAIN_STEP, which with
 * @step_update carries DZ_STEP_UPDATE at each iteration's last subdivision and otherwise is
 * followed there by its own UPDATE. Every other iteration asks for the loss (DZ_STEP_LOSS, or
 * UPDATE's value0), so that UPDATE without the loss is covered too.
 */
static void step_equivalence(uint32_t first, int subdivisions, bool step_update)
{
    const struct seg g = seg_of(subdivisions, first, N_LAYERS - 1, true, DZ_OUTPUT_SCORES);
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta a, b;
    float x[BATCH * IN0], truth[BATCH * CLASSES], da[BATCH * IN0], db[BATCH * IN0];
    float before[BATCH * CLASSES], sa[BATCH * CLASSES], sb[BATCH * CLASSES];
    const bool delta_out = first > 0;

    open_loaded(&a, &g, p, np);
    open_loaded(&b, &g, p, np);
    probe(&a, before);
    probe(&b, sb);
    assert_memory_equal(before, sb, sizeof(sb));
    for (int iter = 0; iter < ITERS; iter++) {
        const bool with_loss = iter % 2 == 0;
        for (int sub = 0; sub < subdivisions; sub++) {
            const bool last_sub = sub == subdivisions - 1;
            fill(x, BATCH * IN0, -2, 2);
            one_hot(truth);
            size_t oa = sizeof(da), ob = sizeof(db);
            assert_int_equal(
                ta_forward(&a, x, in_bytes, truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
                TEEC_SUCCESS);
            assert_int_equal(ta_backward(&a, NULL, 0, delta_out ? da : NULL, &oa), TEEC_SUCCESS);

            uint32_t flags = 0;
            if (step_update && last_sub)
                flags = DZ_STEP_UPDATE | (with_loss ? DZ_STEP_LOSS : 0);
            float lb = 0, ab = 0;
            assert_int_equal(ta_train_step(&b, x, in_bytes, truth, sizeof(truth), flags,
                                           delta_out ? db : NULL, &ob, &lb, &ab),
                             TEEC_SUCCESS);
            if (delta_out) {
                assert_int_equal(oa, in_bytes);
                assert_int_equal(ob, in_bytes);
                assert_memory_equal(da, db, in_bytes);
            }
            if (!(flags & DZ_STEP_LOSS)) {
                /* value2 comes back as it went: no loss leaves unasked */
                assert_int_equal(bits(lb), flags);
                assert_int_equal(bits(ab), 0xFFFFFFFFu);
            }
            if (!last_sub)
                continue;
            float la = 0, aa = 0;
            if (with_loss)
                assert_int_equal(ta_update_loss(&a, &la, &aa), TEEC_SUCCESS);
            else
                assert_int_equal(ta_update(&a), TEEC_SUCCESS);
            if (!step_update) {
                if (with_loss)
                    assert_int_equal(ta_update_loss(&b, &lb, &ab), TEEC_SUCCESS);
                else
                    assert_int_equal(ta_update(&b), TEEC_SUCCESS);
            }
            if (with_loss) {
                assert_int_equal(bits(la), bits(lb));
                assert_int_equal(bits(aa), bits(ab));
                assert_true(la > 0);
            }
        }
        probe(&a, sa);
        probe(&b, sb);
        assert_memory_equal(sa, sb, sizeof(sa));
    }
    /* The parameters moved: the comparison above compared trained parameters. */
    assert_memory_not_equal(before, sa, sizeof(sa));
    ta_stop(&a);
    ta_stop(&b);
    free(p);
}

static void test_equivalence_tail(void **state)
{
    (void)state;
    for (int sub = 1; sub <= 2; sub++) {
        step_equivalence(1, sub, true);
        step_equivalence(1, sub, false);
    }
}

static void test_equivalence_whole(void **state)
{
    (void)state;
    for (int sub = 1; sub <= 2; sub++) {
        step_equivalence(0, sub, true);
        step_equivalence(0, sub, false);
    }
}

/* ------------------------------------------------------------------ refusals */

/* TRAIN_STEP with any type word: memrefs get the right buffers, value2.a = @flags. */
static TEEC_Result raw_step(struct ta *t, uint32_t types, uint32_t flags)
{
    static float x[BATCH * IN0], truth[BATCH * CLASSES], d[BATCH * IN0];
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = types;
    one_hot(truth);
    const void *bufs[4] = {x, truth, NULL, d};
    const size_t sizes[4] = {in_bytes, sizeof(truth), 0, sizeof(d)};
    for (int i = 0; i < 4; i++) {
        const uint32_t ty = TEEC_PARAM_TYPE_GET(types, i);
        if (ty >= TEEC_MEMREF_TEMP_INPUT && ty <= TEEC_MEMREF_TEMP_INOUT)
            set_mem(&op, i, bufs[i] ? bufs[i] : d, sizes[i] ? sizes[i] : sizeof(d));
        else
            op.params[i].value.a = flags;
    }
    return invoke(t, DZ_CMD_TRAIN_STEP, &op);
}

#define T_MIN TEEC_MEMREF_TEMP_INPUT
#define T_MOUT TEEC_MEMREF_TEMP_OUTPUT
#define T_VIO TEEC_VALUE_INOUT

/* Wrong types and flags: BAD_PARAMETERS, and nothing ran (no forward is pending after). */
static void test_refuses_types_and_flags(void **state)
{
    (void)state;
    const struct seg g = seg_of(2, 1, N_LAYERS - 1, true, DZ_OUTPUT_TOP1);
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta t;
    float d[BATCH * IN0];
    size_t out = sizeof(d);

    open_loaded(&t, &g, p, np);
    static const struct {
        const char *what;
        uint32_t types, flags;
    } bad[] = {
        {"value2 VALUE_INPUT", TEEC_PARAM_TYPES(T_MIN, T_MIN, TEEC_VALUE_INPUT, T_MOUT), 0},
        {"value2 VALUE_OUTPUT", TEEC_PARAM_TYPES(T_MIN, T_MIN, TEEC_VALUE_OUTPUT, T_MOUT), 0},
        {"value2 NONE", TEEC_PARAM_TYPES(T_MIN, T_MIN, TEEC_NONE, T_MOUT), 0},
        {"memref3 absent, first > 0", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, TEEC_NONE), 0},
        {"memref3 an input", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MIN), 0},
        {"memref3 in/out", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, TEEC_MEMREF_TEMP_INOUT), 0},
        {"memref0 an output", TEEC_PARAM_TYPES(T_MOUT, T_MIN, T_VIO, T_MOUT), 0},
        {"memref1 an output", TEEC_PARAM_TYPES(T_MIN, T_MOUT, T_VIO, T_MOUT), 0},
        {"no truth for a segment with a cost", TEEC_PARAM_TYPES(T_MIN, TEEC_NONE, T_VIO, T_MOUT),
         0},
        {"unknown flag 4", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT), 4},
        {"unknown flag 1 << 31", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT),
         DZ_STEP_UPDATE | 1u << 31},
        {"every flag bit", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT), 0xFFFFFFFFu},
        {"DZ_STEP_LOSS without DZ_STEP_UPDATE", TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT),
         DZ_STEP_LOSS},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const TEEC_Result res = raw_step(&t, bad[i].types, bad[i].flags);
        if (res != TEEC_ERROR_BAD_PARAMETERS)
            fail_msg("%s: %#x, expected BAD_PARAMETERS", bad[i].what, (unsigned)res);
        out = sizeof(d);
        if (ta_backward(&t, NULL, 0, d, &out) != TEEC_ERROR_BAD_STATE)
            fail_msg("%s: a forward ran before the refusal", bad[i].what);
    }
    /* The right word then works. */
    assert_int_equal(raw_step(&t, TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT), DZ_STEP_UPDATE),
                     TEEC_SUCCESS);
    ta_stop(&t);

    /* A segment that starts the network sends no delta back: memref3 must be NONE. */
    const struct seg whole = seg_of(2, 0, N_LAYERS - 1, true, DZ_OUTPUT_TOP1);
    float *pw = seg_params(&whole, &np);
    open_loaded(&t, &whole, pw, np);
    assert_int_equal(raw_step(&t, TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT), 0),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(ta_backward(&t, NULL, 0, NULL, NULL), TEEC_ERROR_BAD_STATE);
    assert_int_equal(raw_step(&t, TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, TEEC_NONE), 0),
                     TEEC_SUCCESS);
    ta_stop(&t);
    free(pw);
    free(p);
}

static void stream_4k(struct dz_model_header *h)
{
    h->stream_chunk_bytes = DZ_STREAM_CHUNK_MIN;
}

/* Sessions the command is not for: BAD_STATE, whatever the parameters. */
static void test_refuses_sessions(void **state)
{
    (void)state;
    const uint32_t end_types = TEEC_PARAM_TYPES(T_MIN, T_MIN, T_VIO, T_MOUT);
    struct ta t;

    /* No model yet. */
    ta_start(&t);
    assert_int_equal(raw_step(&t, end_types, DZ_STEP_UPDATE), TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    /* An inference session, with or without the truth. */
    struct seg g = seg_of(1, 1, N_LAYERS - 1, false, DZ_OUTPUT_TOP1);
    open_edit(&t, &g, NULL);
    assert_int_equal(raw_step(&t, end_types, DZ_STEP_UPDATE), TEEC_ERROR_BAD_STATE);
    assert_int_equal(raw_step(&t, TEEC_PARAM_TYPES(T_MIN, TEEC_NONE, T_VIO, T_MOUT), 0),
                     TEEC_ERROR_BAD_STATE);
    ta_stop(&t);

    /* A training segment that does not end the network: its step needs the normal world
     * between the passes (the delta of the layers after it). */
    g = seg_of(1, 1, 3, true, DZ_OUTPUT_TOP1);
    open_edit(&t, &g, NULL);
    assert_int_equal(
        raw_step(&t, TEEC_PARAM_TYPES(T_MIN, TEEC_NONE, T_VIO, T_MOUT), DZ_STEP_UPDATE),
        TEEC_ERROR_BAD_STATE);
    assert_true(tee_log_contains(&env, "TRAIN_STEP refused: the segment does not end"));
    /* ... and the session's own commands still work: a training forward is allowed. */
    float x[BATCH * IN0] = {0}, y[BATCH * CLASSES];
    size_t out = sizeof(y);
    assert_int_equal(ta_forward(&t, x, in_bytes, NULL, 0, DZ_FORWARD_TRAIN, y, &out), TEEC_SUCCESS);
    ta_stop(&t);

    /* A streamed training session that ends the network: its parameters are not resident. */
    g = seg_of(1, 1, N_LAYERS - 1, true, DZ_OUTPUT_TOP1);
    open_edit(&t, &g, stream_4k);
    assert_int_equal(raw_step(&t, end_types, DZ_STEP_UPDATE), TEEC_ERROR_BAD_STATE);
    assert_int_equal(raw_step(&t, end_types, 0), TEEC_ERROR_BAD_STATE);
    assert_true(tee_log_contains(&env, "TRAIN_STEP in a weight-streaming session"));
    ta_stop(&t);
}

/* A delta buffer too small: SHORT_BUFFER with the size needed, before anything ran. */
static void test_short_delta_buffer(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 1, N_LAYERS - 1, true, DZ_OUTPUT_SCORES);
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta a, b;
    float x[BATCH * IN0], truth[BATCH * CLASSES], da[BATCH * IN0], db[BATCH * IN0 + 4];
    float la = 0, aa = 0, lb = 0, ab = 0, sa[BATCH * CLASSES], sb[BATCH * CLASSES];

    open_loaded(&a, &g, p, np);
    open_loaded(&b, &g, p, np);
    fill(x, BATCH * IN0, -2, 2);
    one_hot(truth);
    const size_t shorts[] = {0, 4, in_bytes - 4, in_bytes - 1};
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        size_t ob = shorts[i];
        assert_int_equal(ta_train_step(&b, x, in_bytes, truth, sizeof(truth),
                                       DZ_STEP_UPDATE | DZ_STEP_LOSS, db, &ob, &lb, &ab),
                         TEEC_ERROR_SHORT_BUFFER);
        assert_int_equal(ob, in_bytes);
        assert_int_equal(bits(lb), DZ_STEP_UPDATE | DZ_STEP_LOSS); /* nothing written */
        /* No forward ran: nothing is pending for a BACKWARD, nor for an UPDATE. */
        ob = in_bytes;
        assert_int_equal(ta_backward(&b, NULL, 0, db, &ob), TEEC_ERROR_BAD_STATE);
        assert_int_equal(ta_update(&b), TEEC_ERROR_BAD_STATE);
    }

    /* The next step, with a larger buffer (cut to size), is the three calls' step: the
     * refusals drew no dropout mask and counted no image. */
    size_t oa = sizeof(da), ob = sizeof(db);
    assert_int_equal(
        ta_forward(&a, x, in_bytes, truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    assert_int_equal(ta_backward(&a, NULL, 0, da, &oa), TEEC_SUCCESS);
    assert_int_equal(ta_update_loss(&a, &la, &aa), TEEC_SUCCESS);
    assert_int_equal(ta_train_step(&b, x, in_bytes, truth, sizeof(truth),
                                   DZ_STEP_UPDATE | DZ_STEP_LOSS, db, &ob, &lb, &ab),
                     TEEC_SUCCESS);
    assert_int_equal(ob, in_bytes);
    assert_memory_equal(da, db, in_bytes);
    assert_int_equal(bits(la), bits(lb));
    assert_int_equal(bits(aa), bits(ab));
    probe(&a, sa);
    probe(&b, sb);
    assert_memory_equal(sa, sb, sizeof(sa));
    ta_stop(&a);
    ta_stop(&b);
    free(p);
}

/* Subdivisions 1: one gradient query per UPDATE, whichever command asks. */
static void test_one_query_per_update(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 1, N_LAYERS - 1, true, DZ_OUTPUT_TOP1);
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta t;
    float x[BATCH * IN0], truth[BATCH * CLASSES], d[BATCH * IN0];
    size_t out = sizeof(d);

    open_loaded(&t, &g, p, np);
    fill(x, BATCH * IN0, -2, 2);
    one_hot(truth);
    assert_int_equal(ta_train_step(&t, x, in_bytes, truth, sizeof(truth), 0, d, &out, NULL, NULL),
                     TEEC_SUCCESS);
    /* A second step without an UPDATE is refused as a training FORWARD would be, with or
     * without DZ_STEP_UPDATE (its forward comes first), and runs nothing. */
    for (uint32_t flags = 0; flags <= DZ_STEP_UPDATE; flags++) {
        out = sizeof(d);
        assert_int_equal(
            ta_train_step(&t, x, in_bytes, truth, sizeof(truth), flags, d, &out, NULL, NULL),
            TEEC_ERROR_BAD_STATE);
    }
    assert_int_equal(
        ta_forward(&t, x, in_bytes, truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_ERROR_BAD_STATE);
    out = sizeof(d);
    assert_int_equal(ta_backward(&t, NULL, 0, d, &out), TEEC_ERROR_BAD_STATE);
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE);
    /* After the UPDATE, whole steps follow one another. */
    for (int i = 0; i < 3; i++) {
        out = sizeof(d);
        assert_int_equal(ta_train_step(&t, x, in_bytes, truth, sizeof(truth), DZ_STEP_UPDATE, d,
                                       &out, NULL, NULL),
                         TEEC_SUCCESS);
    }
    assert_int_equal(ta_update(&t), TEEC_ERROR_BAD_STATE); /* the step's UPDATE ran */
    ta_stop(&t);
    free(p);
}

/*
 * DZ_STEP_LOSS under a label policy: the loss may leave only with the scores. UPDATE refuses
 * it (ACCESS_DENIED) after FORWARD and BACKWARD ran, and those stay done, as after separate
 * calls: no forward is pending, one BACKWARD counts toward the UPDATE, the parameters have
 * not moved, and nothing was written into value2. An UPDATE without the loss then completes
 * the step exactly as the three calls would have.
 */
static void test_loss_under_label_policy(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 1, N_LAYERS - 1, true, DZ_OUTPUT_TOP1);
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta a, b;
    float x[BATCH * IN0], truth[BATCH * CLASSES], da[BATCH * IN0], db[BATCH * IN0];
    float lb = 0, ab = 0;

    open_loaded(&a, &g, p, np);
    open_loaded(&b, &g, p, np);
    fill(x, BATCH * IN0, -2, 2);
    one_hot(truth);
    size_t ob = sizeof(db);
    assert_int_equal(ta_train_step(&b, x, in_bytes, truth, sizeof(truth),
                                   DZ_STEP_UPDATE | DZ_STEP_LOSS, db, &ob, &lb, &ab),
                     TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(bits(lb), DZ_STEP_UPDATE | DZ_STEP_LOSS);
    assert_int_equal(bits(ab), 0xFFFFFFFFu);
    ob = sizeof(db);
    assert_int_equal(ta_backward(&b, NULL, 0, db, &ob), TEEC_ERROR_BAD_STATE); /* consumed */
    ob = sizeof(db);
    assert_int_equal(
        ta_train_step(&b, x, in_bytes, truth, sizeof(truth), DZ_STEP_UPDATE, db, &ob, NULL, NULL),
        TEEC_ERROR_BAD_STATE); /* the BACKWARD counted: subdivisions 1 wants an UPDATE */
    assert_int_equal(ta_update_loss(&b, &lb, &ab), TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(ta_update(&b), TEEC_SUCCESS);

    size_t oa = sizeof(da);
    assert_int_equal(
        ta_forward(&a, x, in_bytes, truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    assert_int_equal(ta_backward(&a, NULL, 0, da, &oa), TEEC_SUCCESS);
    assert_int_equal(ta_update(&a), TEEC_SUCCESS);

    /* Both now hold the same parameters and state: the next steps' deltas agree. */
    for (int i = 0; i < 2; i++) {
        fill(x, BATCH * IN0, -2, 2);
        one_hot(truth);
        oa = sizeof(da);
        ob = sizeof(db);
        assert_int_equal(ta_train_step(&a, x, in_bytes, truth, sizeof(truth), DZ_STEP_UPDATE, da,
                                       &oa, NULL, NULL),
                         TEEC_SUCCESS);
        assert_int_equal(ta_train_step(&b, x, in_bytes, truth, sizeof(truth), DZ_STEP_UPDATE, db,
                                       &ob, NULL, NULL),
                         TEEC_SUCCESS);
        assert_memory_equal(da, db, in_bytes);
    }
    ta_stop(&a);
    ta_stop(&b);
    free(p);
}

/*
 * DZ_STEP_LOSS for a network that ends without a cost layer (its first four layers): there is
 * no loss to give, which UPDATE finds (BAD_PARAMETERS) after FORWARD and BACKWARD ran, as
 * with separate calls; the UPDATE without the loss then completes the step.
 */
static void test_loss_without_cost(void **state)
{
    (void)state;
    struct seg g = seg_of(1, 1, 3, true, DZ_OUTPUT_SCORES);
    g.n_layers = 4;
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta t;
    float x[BATCH * IN0], d[BATCH * IN0];
    size_t out = sizeof(d);

    open_loaded(&t, &g, p, np);
    fill(x, BATCH * IN0, -2, 2);
    assert_int_equal(
        ta_train_step(&t, x, in_bytes, NULL, 0, DZ_STEP_UPDATE | DZ_STEP_LOSS, d, &out, NULL, NULL),
        TEEC_ERROR_BAD_PARAMETERS);
    out = sizeof(d);
    assert_int_equal(ta_backward(&t, NULL, 0, d, &out), TEEC_ERROR_BAD_STATE); /* consumed */
    assert_int_equal(ta_update(&t), TEEC_SUCCESS);
    out = sizeof(d);
    assert_int_equal(ta_train_step(&t, x, in_bytes, NULL, 0, DZ_STEP_UPDATE, d, &out, NULL, NULL),
                     TEEC_SUCCESS);
    assert_int_equal(out, in_bytes);
    ta_stop(&t);
    free(p);
}

/*
 * The policy's ACCESS_DENIED. An inference-only policy cannot reach TRAIN_STEP: a training
 * session refuses such a blob at LOAD_SEALED and keeps its own (training) policy, so the step
 * still runs. A sealed training policy's rate bound can: the UPDATE of the step is refused
 * after FORWARD and BACKWARD ran, the parameters stay, and so does the refusal for a plain
 * UPDATE, since the rate is the schedule's.
 */
static void test_policy_refusals(void **state)
{
    (void)state;
    const struct seg g = seg_of(1, 1, N_LAYERS - 1, true, DZ_OUTPUT_SCORES);
    size_t np = 0;
    float *p = seg_params(&g, &np);
    struct ta c, t;
    float x[BATCH * IN0], truth[BATCH * CLASSES], d[BATCH * IN0];
    float before[BATCH * CLASSES], after[BATCH * CLASSES];
    static uint8_t train_blob[8192], infer_blob[8192];
    size_t tsize = sizeof(train_blob), isize = sizeof(infer_blob), out = sizeof(d);

    /* Two device blobs of p: the session's own policy, and the same inference only. */
    open_loaded(&c, &g, p, np);
    assert_int_equal(ta_save(&c, train_blob, &tsize), TEEC_SUCCESS);
    size_t hsize = 0;
    uint8_t *hblob = make_blob(&g, &hsize);
    struct dz_policy only;
    dz_policy_of_request(blob_header(hblob), &only);
    free(hblob);
    only.modes = DZ_MODE_INFER;
    assert_int_equal(ta_save_policy(&c, infer_blob, &isize, &only), TEEC_SUCCESS);
    ta_stop(&c);

    fill(x, BATCH * IN0, -2, 2);
    one_hot(truth);
    open_edit(&t, &g, NULL);
    assert_int_equal(ta_load_sealed(&t, infer_blob, isize, NULL), TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(
        ta_train_step(&t, x, in_bytes, truth, sizeof(truth), DZ_STEP_UPDATE, d, &out, NULL, NULL),
        TEEC_SUCCESS);
    ta_stop(&t);

    /* A schedule that multiplies the rate by 100 from step 0 (the model digest does not cover
     * the schedule) against the sealed bound of 0.1: session t steps in one call, session u
     * makes the three calls. */
    struct dnn_net_config boosted = cfgs[0];
    boosted.n_steps = 1;
    boosted.steps[0] = 0;
    boosted.scales[0] = 100;
    struct seg gb = g;
    gb.cfg = &boosted;
    struct ta u;
    open_edit(&t, &gb, NULL);
    open_edit(&u, &gb, NULL);
    assert_int_equal(ta_load_sealed(&t, train_blob, tsize, NULL), TEEC_SUCCESS);
    assert_int_equal(ta_load_sealed(&u, train_blob, tsize, NULL), TEEC_SUCCESS);
    out = sizeof(d);
    assert_int_equal(
        ta_train_step(&t, x, in_bytes, truth, sizeof(truth), DZ_STEP_UPDATE, d, &out, NULL, NULL),
        TEEC_ERROR_ACCESS_DENIED);
    assert_true(tee_log_contains(&env, "outside the model's"));
    assert_int_equal(
        ta_forward(&u, x, in_bytes, truth, sizeof(truth), DZ_FORWARD_TRAIN, NULL, NULL),
        TEEC_SUCCESS);
    out = sizeof(d);
    assert_int_equal(ta_backward(&u, NULL, 0, d, &out), TEEC_SUCCESS);
    assert_int_equal(ta_update(&u), TEEC_ERROR_ACCESS_DENIED);
    /* Both stopped at the UPDATE, in the same state: the forward consumed, the update still
     * refused, the same parameters (and batch-norm statistics of the one training forward). */
    struct ta *both[2] = {&t, &u};
    for (int i = 0; i < 2; i++) {
        out = sizeof(d);
        assert_int_equal(ta_backward(both[i], NULL, 0, d, &out), TEEC_ERROR_BAD_STATE);
        assert_int_equal(ta_update(both[i]), TEEC_ERROR_ACCESS_DENIED);
    }
    probe(&t, before);
    probe(&u, after);
    assert_memory_equal(before, after, sizeof(before));
    ta_stop(&u);
    ta_stop(&t);
    free(p);
}

static int group_setup(void **state)
{
    (void)state;
    init_net();
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equivalence_tail),        cmocka_unit_test(test_equivalence_whole),
        cmocka_unit_test(test_refuses_types_and_flags), cmocka_unit_test(test_refuses_sessions),
        cmocka_unit_test(test_short_delta_buffer),      cmocka_unit_test(test_one_query_per_update),
        cmocka_unit_test(test_loss_under_label_policy), cmocka_unit_test(test_loss_without_cost),
        cmocka_unit_test(test_policy_refusals),
    };
    return cmocka_run_group_tests_name("ta_train_step", tests, group_setup, group_teardown);
}
