/*
 * test_cli_stream.c - darknetp streams a TEE segment's weights (issue 11): a classifier head
 * whose 13 MB of connected layers do not fit the default 6 MiB TA predicts, streamed, the
 * same scores as without TEE, and says that it streams; -tee_stream streams a segment that
 * would fit, with the same scores again; training such a segment streams too; so do
 * convolutions with batch normalisation (cfg/fashion_vgg7.cfg).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char image[PATH_MAX];

/* 8x8x3 in, connected 1000 leaky, then the head: connected 1536 relu, dropout, connected
 * 1024 relu, dropout, connected 10, softmax (layers 1..6, 3.3 M parameters). */
static const char head_cfg[] = "[net]\nbatch=1\nsubdivisions=1\nheight=8\nwidth=8\nchannels=3\n"
                               "learning_rate=0.01\nmomentum=0.9\ndecay=0.0005\nmax_batches=10\n"
                               "[connected]\noutput=1000\nactivation=leaky\n"
                               "[connected]\noutput=1536\nactivation=relu\n"
                               "[dropout]\nprobability=.5\n"
                               "[connected]\noutput=1024\nactivation=relu\n"
                               "[dropout]\nprobability=.5\n"
                               "[connected]\noutput=10\nactivation=linear\n"
                               "[softmax]\ngroups=1\n";

static void run_ok(const char *cmd, char *out, size_t size)
{
    const int rc = run_capture(cmd, out, size);
    if (rc != 0)
        fail_msg("'%s' exited %d:\n%s", cmd, rc, out);
}

static void test_head_streams_as_without_tee(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char cfg[PATH_MAX], names[PATH_MAX], data[PATH_MAX], weights[PATH_MAX];
    char cmd[6 * PATH_MAX], plain[16384], tee[16384], log[16384];
    struct dk_model m;
    struct dk_error err;
    struct dnn_network *net = NULL;

    assert_int_equal(write_text_file(dir, "head.cfg", head_cfg, cfg, sizeof cfg), 0);
    assert_int_equal(
        write_text_file(dir, "names.txt", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n", names, sizeof names),
        0);
    char data_text[PATH_MAX + 64];
    snprintf(data_text, sizeof data_text, "classes=10\nnames=%s\ntop=10\n", names);
    assert_int_equal(write_text_file(dir, "head.data", data_text, data, sizeof data), 0);
    /* Weights: the engine's own random initialisation, saved in darknet's format. */
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    struct dnn_net_config nc = m.net;
    assert_int_equal(dnn_network_create(&net, &nc, m.specs, m.n, false, 5), DNN_OK);
    snprintf(weights, sizeof weights, "%s/head.weights", dir);
    assert_int_equal(dk_weights_save(net, weights, &err), 0);
    dnn_network_free(net);
    dk_model_free(&m);

    const char *common = "classifier predict -t 10 -tee_output scores";
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' '%s' '%s' '%s' 2>/dev/null", bin, common, data, cfg,
             weights, image);
    run_ok(cmd, plain, sizeof plain);
    assert_non_null(strstr(plain, "%: "));

    /* Layers 1..6 do not fit resident: darknetp streams them by itself, and says so. */
    snprintf(cmd, sizeof cmd, "'%s' %s -pp_start 1 -pp_end 6 '%s' '%s' '%s' '%s' 2>/dev/null", bin,
             common, data, cfg, weights, image);
    run_ok(cmd, tee, sizeof tee);
    assert_string_equal(tee, plain);
    snprintf(cmd, sizeof cmd,
             "'%s' %s -pp_start 1 -pp_end 6 '%s' '%s' '%s' '%s' 2>&1 >/dev/null | grep darknetp",
             bin, common, data, cfg, weights, image);
    run_ok(cmd, log, sizeof log);
    assert_non_null(strstr(log, "darknetp: layers 1..6 need "));
    assert_non_null(strstr(log, "with their weights resident, TA_DATA_SIZE is 6291456: streaming "
                                "their weights, sealed, through a working buffer of "));

    /* The default working buffer is capped at 256 KiB (host/partition.h: OP-TEE's page tables
     * map each chunk's memrefs), though the 6 MiB TA would leave more; -tee_chunk sets
     * another cap, with the same scores; one below a row of the widest layer (1536 inputs:
     * 6148 bytes) is refused with that figure. */
    assert_non_null(strstr(log, "through a working buffer of 262144 bytes"));
    snprintf(cmd, sizeof cmd,
             "'%s' %s -tee_chunk 65536 -pp_start 1 -pp_end 6 '%s' '%s' '%s' '%s' 2>%s/err.txt", bin,
             common, data, cfg, weights, image, dir);
    run_ok(cmd, tee, sizeof tee);
    assert_string_equal(tee, plain);
    snprintf(cmd, sizeof cmd, "cat %s/err.txt", dir);
    run_ok(cmd, log, sizeof log);
    assert_non_null(strstr(log, "through a working buffer of 65536 bytes"));
    snprintf(cmd, sizeof cmd,
             "'%s' %s -tee_chunk 5000 -pp_start 1 -pp_end 6 '%s' '%s' '%s' '%s' 2>&1", bin, common,
             data, cfg, weights, image);
    assert_true(run_capture(cmd, log, sizeof log) != 0);
    assert_non_null(strstr(log, "at least 6148 bytes"));

    /* The whole network from layer 0, streamed too. */
    snprintf(cmd, sizeof cmd, "'%s' %s -pp_start 0 -pp_end 6 '%s' '%s' '%s' '%s' 2>/dev/null", bin,
             common, data, cfg, weights, image);
    run_ok(cmd, tee, sizeof tee);
    assert_string_equal(tee, plain);

    /* Layers 5..6 fit resident; -tee_stream streams them anyway, with the same scores. */
    snprintf(cmd, sizeof cmd,
             "'%s' %s -tee_stream -pp_start 5 -pp_end 6 '%s' '%s' '%s' '%s' 2>%s/err.txt", bin,
             common, data, cfg, weights, image, dir);
    run_ok(cmd, tee, sizeof tee);
    assert_string_equal(tee, plain);
    snprintf(cmd, sizeof cmd, "cat %s/err.txt", dir);
    run_ok(cmd, log, sizeof log);
    assert_non_null(strstr(log, "darknetp: streaming the weights of layers 5..6, sealed, through "
                                "a working buffer of "));
    assert_non_null(strstr(log, "(-tee_stream)"));

    /* Training streams too (test_cli_stream_train.c trains one): darknetp says so before it
     * finds that this data set has no labels. */
    snprintf(cmd, sizeof cmd,
             "cd %s && printf '%s/x.png\\n' > train.list && printf 'classes=10\\nnames=%s\\n"
             "train=%s/train.list\\nbackup=%s\\n' > train.data && '%s' classifier train "
             "-pp_start 1 -pp_end 6 train.data '%s' 2>&1",
             dir, dir, names, dir, dir, bin, cfg);
    assert_true(run_capture(cmd, log, sizeof log) != 0);
    assert_non_null(strstr(log, "darknetp: layers 1..6 need "));
    assert_non_null(strstr(log, "with their weights resident, TA_DATA_SIZE is 6291456: streaming "
                                "their weights, sealed, through a working buffer of "));
    assert_non_null(strstr(log, "labels"));
}

/* cfg/fashion_vgg7.cfg (3x3 convolutions with batch_normalize, a 1x1 one) with -tee_stream
 * through a 4 KiB working buffer: darknetp cuts the convolutions' filters, biases and BN
 * triples into chunks, and the scores are those without TEE. */
static void test_conv_bn_streams_as_without_tee(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char names[PATH_MAX], data[PATH_MAX], weights[PATH_MAX], cfg[PATH_MAX];
    char cmd[6 * PATH_MAX], plain[16384], tee[16384], log[16384];
    struct dk_model m;
    struct dk_error err;
    struct dnn_network *net = NULL;

    if (!realpath("cfg/fashion_vgg7.cfg", cfg))
        fail_msg("cfg/fashion_vgg7.cfg not found");
    assert_int_equal(
        write_text_file(dir, "names.txt", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n", names, sizeof names),
        0);
    char data_text[PATH_MAX + 64];
    snprintf(data_text, sizeof data_text, "classes=10\nnames=%s\ntop=10\n", names);
    assert_int_equal(write_text_file(dir, "vgg.data", data_text, data, sizeof data), 0);
    /* The engine's initialisation, BN's rolling statistics set apart from 0 and 1 so that
     * every tensor of the chunks reaches the scores. */
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    struct dnn_net_config nc = m.net;
    nc.batch = 1;
    nc.subdivisions = 1;
    assert_int_equal(dnn_network_create(&net, &nc, m.specs, m.n, false, 9), DNN_OK);
    for (size_t i = 0; i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        for (int f = 0; l->spec.batch_normalize && f < l->out_c; f++) {
            l->bn.rolling_mean[f] = 0.01f * (float)(f % 7);
            l->bn.rolling_variance[f] = 0.5f + 0.1f * (float)(f % 5);
            l->bn.scales[f] = 0.9f + 0.02f * (float)(f % 3);
            l->biases[f] = 0.01f * (float)(f % 4);
        }
    }
    snprintf(weights, sizeof weights, "%s/vgg.weights", dir);
    assert_int_equal(dk_weights_save(net, weights, &err), 0);
    dnn_network_free(net);
    dk_model_free(&m);

    const char *common = "classifier predict -t 10 -tee_output scores";
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' '%s' '%s' '%s' 2>/dev/null", bin, common, data, cfg,
             weights, image);
    run_ok(cmd, plain, sizeof plain);
    assert_non_null(strstr(plain, "%: "));
    snprintf(cmd, sizeof cmd,
             "'%s' %s -tee_stream -tee_chunk 4096 -pp_start 0 -pp_end 11 '%s' '%s' '%s' '%s' "
             "2>%s/err.txt",
             bin, common, data, cfg, weights, image, dir);
    run_ok(cmd, tee, sizeof tee);
    assert_string_equal(tee, plain);
    snprintf(cmd, sizeof cmd, "cat %s/err.txt", dir);
    run_ok(cmd, log, sizeof log);
    assert_non_null(strstr(log, "darknetp: streaming the weights of layers 0..11, sealed"));
}

static int setup(void **state)
{
    char rel[PATH_MAX], img[PATH_MAX + 64];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    snprintf(img, sizeof img, "%s/images/t_00007_c3.png", rel);
    if (!realpath(img, image))
        return -1;
    return tmp_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_streams_as_without_tee, setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_conv_bn_streams_as_without_tee, setup, tmp_teardown),
    };
    return cmocka_run_group_tests_name("cli_stream", tests, NULL, NULL);
}
