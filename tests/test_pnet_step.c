/*
 * test_pnet_step.c - which TA commands the normal world's training loop (host/pnet.c,
 * dz_pnet_train_batch) sends, counted at the GP Client API. The test links with
 * -Wl,--wrap=TEEC_InvokeCommand (Makefile): every call libdarknetp makes reaches
 * __wrap_TEEC_InvokeCommand below first, which counts it and passes it on unchanged; no hook
 * in the code under test.
 *  - a segment that ends the network (layers 3..5, and 0..5): one DZ_CMD_TRAIN_STEP per
 *    batch, and no FORWARD, BACKWARD or UPDATE;
 *  - a middle segment (1..3): a FORWARD and a BACKWARD per batch, an UPDATE per iteration,
 *    no TRAIN_STEP;
 *  - a TA older than the command (the wrapper answers TRAIN_STEP as such a TA does:
 *    TEEC_ERROR_NOT_SUPPORTED from the TA, nothing run): one TRAIN_STEP tried, then the three
 *    calls for every batch;
 * and they all train alike: the TA's loss of each iteration (-tee_output scores) is the same
 * bit for bit with one call per step and with three, and the final scores of every partition
 * are those of the network trained without a TEE.
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

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "host/pnet.h"
#include "ta/include/darknetz_ta.h"
#include "tests/helpers/test_rng.h"
#include "tests/tee_conformance.h"

/* ------------------------------------------------------ counting the calls */

static bool counting;                    /* count the calls now (the training batches only) */
static bool older_ta;                    /* answer TRAIN_STEP as a TA without it does */
static unsigned calls[DZ_CMD_COUNT + 1]; /* per command id; unknown ids at DZ_CMD_COUNT */

TEEC_Result __real_TEEC_InvokeCommand(TEEC_Session *session, uint32_t cmd, TEEC_Operation *op,
                                      uint32_t *origin);
TEEC_Result __wrap_TEEC_InvokeCommand(TEEC_Session *session, uint32_t cmd, TEEC_Operation *op,
                                      uint32_t *origin);

TEEC_Result __wrap_TEEC_InvokeCommand(TEEC_Session *session, uint32_t cmd, TEEC_Operation *op,
                                      uint32_t *origin)
{
    if (counting)
        calls[cmd < DZ_CMD_COUNT ? cmd : DZ_CMD_COUNT]++;
    if (older_ta && cmd == DZ_CMD_TRAIN_STEP) {
        if (origin)
            *origin = TEEC_ORIGIN_TRUSTED_APP;
        return TEEC_ERROR_NOT_SUPPORTED;
    }
    return __real_TEEC_InvokeCommand(session, cmd, op, origin);
}

/* ------------------------------------------------------------- the network */

enum { CLASSES = 3, BATCHES = 6, SUBDIVISIONS = 2, MAX_ITERS = BATCHES / SUBDIVISIONS };

/* Batch normalisation and dropout: a step depends on the whole state, not only the weights. */
static const char cfg_text[] = "[net]\nbatch=4\nsubdivisions=2\nheight=1\nwidth=1\nchannels=8\n"
                               "learning_rate=0.1\nmomentum=0.9\ndecay=0.0005\npolicy=steps\n"
                               "steps=4,6\nscales=.5,.1\nmax_batches=100\n"
                               "[connected]\noutput=8\nactivation=leaky\n"
                               "[connected]\noutput=6\nbatch_normalize=1\nactivation=leaky\n"
                               "[dropout]\nprobability=.3\n"
                               "[connected]\noutput=3\nactivation=linear\n"
                               "[softmax]\ngroups=1\n"
                               "[cost]\ntype=sse\n";

static struct dk_model model;
static struct tee_env env;

/* What one training run gave. */
struct run {
    unsigned calls[DZ_CMD_COUNT + 1];
    size_t n_loss;
    float loss[MAX_ITERS]; /* the TA's loss of each iteration, when it computes one */
    float scores[64];      /* the scores of a fixed batch after training */
};

/* BATCHES batches of one seeded stream, layers first..last in the TA (-1: none). */
static void train(int first, int last, bool older, struct run *r)
{
    struct dk_error err = {{0}};
    struct dz_pnet pn;
    const struct dz_pnet_opts o = {.first = first,
                                   .last = last,
                                   .training = true,
                                   .seed = 7,
                                   .policy = DZ_OUTPUT_SCORES,
                                   .top_k = 1};
    memset(r, 0, sizeof(*r));
    if (dz_pnet_open(&pn, &model, &o, &err) != 0)
        fail_msg("%s", err.msg);
    const size_t nx = (size_t)pn.batch * dz_pnet_inputs(&pn);
    const size_t ny = (size_t)pn.batch * CLASSES;
    assert_true(ny <= sizeof(r->scores) / sizeof(r->scores[0]));
    float *x = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float));
    assert_non_null(x);
    assert_non_null(y);
    uint64_t rng = 0x0123456789ABCDEFull;

    memset(calls, 0, sizeof(calls));
    older_ta = older;
    counting = true;
    for (int k = 0; k < BATCHES; k++) {
        test_rng_fill(&rng, x, nx, -2, 2);
        memset(y, 0, ny * sizeof(float));
        for (int b = 0; b < pn.batch; b++)
            y[(size_t)b * CLASSES + (size_t)(b + k) % CLASSES] = 1;
        float loss = 0;
        bool known = false;
        if (dz_pnet_train_batch(&pn, x, y, &loss, &known, &err) != 0)
            fail_msg("batch %d: %s", k, err.msg);
        if (pn.tee_loss_known) {
            assert_true(r->n_loss < MAX_ITERS);
            r->loss[r->n_loss++] = pn.tee_loss;
        }
    }
    counting = false;
    memcpy(r->calls, calls, sizeof(calls));

    struct dz_pnet_output out;
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(i % 17) / 8.0f - 1.0f;
    if (dz_pnet_predict(&pn, x, &out, &err) != 0)
        fail_msg("predict: %s", err.msg);
    assert_non_null(out.scores);
    assert_int_equal(out.outputs, CLASSES);
    memcpy(r->scores, out.scores, ny * sizeof(float));
    older_ta = false;
    free(x);
    free(y);
    dz_pnet_close(&pn);
}

static void expect_calls(const struct run *r, unsigned step, unsigned fwd, unsigned bwd,
                         unsigned upd)
{
    if (r->calls[DZ_CMD_TRAIN_STEP] != step || r->calls[DZ_CMD_FORWARD] != fwd ||
        r->calls[DZ_CMD_BACKWARD] != bwd || r->calls[DZ_CMD_UPDATE] != upd)
        fail_msg("TRAIN_STEP %u FORWARD %u BACKWARD %u UPDATE %u, expected %u %u %u %u",
                 r->calls[DZ_CMD_TRAIN_STEP], r->calls[DZ_CMD_FORWARD], r->calls[DZ_CMD_BACKWARD],
                 r->calls[DZ_CMD_UPDATE], step, fwd, bwd, upd);
    unsigned other = 0;
    for (unsigned c = 0; c <= DZ_CMD_COUNT; c++)
        if (c != DZ_CMD_TRAIN_STEP && c != DZ_CMD_FORWARD && c != DZ_CMD_BACKWARD &&
            c != DZ_CMD_UPDATE)
            other += r->calls[c];
    assert_int_equal(other, 0);
}

static void test_commands_per_partition(void **state)
{
    (void)state;
    static struct run none, tail, tail_old, whole, middle;
    const unsigned iters = BATCHES / SUBDIVISIONS;

    train(-1, -1, false, &none);
    expect_calls(&none, 0, 0, 0, 0);

    train(3, 5, false, &tail);
    expect_calls(&tail, BATCHES, 0, 0, 0);
    assert_int_equal(tail.n_loss, iters);

    train(3, 5, true, &tail_old);
    expect_calls(&tail_old, 1, BATCHES, BATCHES, iters);
    assert_int_equal(tail_old.n_loss, iters);

    train(0, 5, false, &whole);
    expect_calls(&whole, BATCHES, 0, 0, 0);
    assert_int_equal(whole.n_loss, iters);

    train(1, 3, false, &middle);
    expect_calls(&middle, 0, BATCHES, BATCHES, iters);
    assert_int_equal(middle.n_loss, 0); /* the cost is in the normal world */

    /* One call per step or three: the same losses; any partition: the same parameters. */
    assert_memory_equal(tail.loss, tail_old.loss, iters * sizeof(float));
    assert_memory_equal(tail.loss, whole.loss, iters * sizeof(float));
    const size_t sb = 2 * CLASSES * sizeof(float); /* batch 2 (4 / 2 subdivisions) */
    assert_memory_equal(tail.scores, none.scores, sb);
    assert_memory_equal(tail_old.scores, none.scores, sb);
    assert_memory_equal(whole.scores, none.scores, sb);
    assert_memory_equal(middle.scores, none.scores, sb);
}

static int group_setup(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_cfg *cfg = NULL;
    if (dk_cfg_read_mem("step.cfg", cfg_text, strlen(cfg_text), false, &cfg, &err) != 0 ||
        dk_parse_network_cfg(cfg, &model, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        dk_cfg_free(cfg);
        return -1;
    }
    dk_cfg_free(cfg);
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    dk_model_free(&model);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_per_partition),
    };
    return cmocka_run_group_tests_name("pnet_step", tests, group_setup, group_teardown);
}
