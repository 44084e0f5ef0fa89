/*
 * test_tee_stream_load.c - a streamed save's header as darknetp reads it (dz_tee_stream_load,
 * host/tee_session.c) is the file's word, not the TA's: a save that says it carries update
 * buffers (training = 1) given to an inference session whose working buffer holds one
 * inference row of a layer but not that row with its updates must be refused with a
 * message. darknetp cut such a save with zero rows per chunk and looped forever (found by
 * review of DZ_STREAM_KEPT_UPDATES: an inference session takes a training save's cut).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "host/pnet.h"
#include "host/tee_session.h"
#include "tests/helpers/tmpdir.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

/* 600 inputs: a row of the connected layer is 2404 bytes, which a 4096-byte working buffer
 * holds, but not with its 2404 bytes of updates. */
static const char *const cfg_text = "[net]\nbatch=1\nsubdivisions=1\nheight=1\nwidth=1\n"
                                    "channels=600\nlearning_rate=0.01\nmomentum=0.9\n"
                                    "decay=0.0005\npolicy=constant\nmax_batches=1\n"
                                    "[connected]\noutput=10\nactivation=linear\n"
                                    "[softmax]\n";

static void test_training_save_that_cannot_cut(void **state)
{
    const struct tmp *t = *state;
    char cfg[PATH_MAX];
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct dz_pnet pn;
    assert_int_equal(write_text_file(t->dir, "wide.cfg", cfg_text, cfg, sizeof cfg), 0);
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    /* The connected layer is layer 0: layers 0..1 (connected, softmax) stream. */
    struct dz_pnet_opts o = {.first = 0,
                             .last = 1,
                             .batch = 1,
                             .seed = 7,
                             .policy = DZ_OUTPUT_SCORES,
                             .top_k = 1,
                             .stream = true,
                             .stream_work_max = 4096};
    if (dz_pnet_open(&pn, &m, &o, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(dz_tee_streaming(pn.tee));

    struct dz_chunk_save_header h = {.magic = DZ_CHUNK_SAVE_MAGIC,
                                     .version = DZ_TA_PROTOCOL_VERSION,
                                     .first = 0,
                                     .last = 1,
                                     .n_chunks = 10,
                                     .chunk_bytes = 4096,
                                     .training = 1};
    uint64_t seen = 0;
    memset(&err, 0, sizeof err);
    assert_int_equal(dz_tee_stream_load(pn.tee, (const uint8_t *)&h, sizeof h, &seen, &err), -1);
    assert_non_null(strstr(err.msg, "a streamed save of layers 0..1"));
    dz_pnet_close(&pn);
    dk_model_free(&m);
}

static int group_setup(void **state)
{
    (void)state;
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
        cmocka_unit_test_setup_teardown(test_training_save_that_cannot_cut, tmp_setup,
                                        tmp_teardown),
    };
    return cmocka_run_group_tests_name("tee_stream_load", tests, group_setup, group_teardown);
}
