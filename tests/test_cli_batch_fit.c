/*
 * test_cli_batch_fit.c - predict over a list and valid run several images per forward (32 and
 * 100), a batch the user never chose. A TEE segment that fits at batch 1 but at that batch
 * neither resident nor streamed runs at the largest batch that fits, says so in one line,
 * and gives the results of batch 1 and of no TEE; -batch N sets the batch, and a -batch that
 * does not fit is refused naming it.
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
static char images[PATH_MAX];

/* 32x32x3 in, two 32-filter convolutions (128 KiB of output per image each), a max pool and
 * a connected head: layers 0..4 need about 0.7 MB of secure memory at batch 1, but 10 MB
 * resident and 10 MB streamed at batch 32, over the default 6 MiB TA (`darknetp tee plan`). */
static const char wide_cfg[] = "[net]\nbatch=1\nsubdivisions=1\nheight=32\nwidth=32\nchannels=3\n"
                               "learning_rate=0.01\nmomentum=0.9\ndecay=0.0005\nmax_batches=10\n"
                               "[convolutional]\nfilters=32\nsize=3\nstride=1\npad=1\n"
                               "activation=leaky\n"
                               "[convolutional]\nfilters=32\nsize=3\nstride=1\npad=1\n"
                               "activation=leaky\n"
                               "[maxpool]\nsize=2\nstride=2\n"
                               "[connected]\noutput=10\nactivation=linear\n"
                               "[softmax]\n";

struct files {
    char cfg[PATH_MAX], data[PATH_MAX], weights[PATH_MAX], list[PATH_MAX];
};

/* The cfg, a data file whose valid set is the fixture's 12 images three times (36: two full
 * forwards and a partial one at the batch that fits), and weights drawn by the engine. */
static void make_files(const char *dir, struct files *f)
{
    char fix[PATH_MAX], abs[PATH_MAX], cmd[4 * PATH_MAX], out[64], text[6 * PATH_MAX];
    struct dk_model m;
    struct dk_error err;
    struct dnn_network *net = NULL;

    assert_int_equal(write_text_file(dir, "wide.cfg", wide_cfg, f->cfg, sizeof f->cfg), 0);
    snprintf(f->list, sizeof f->list, "%s/list.txt", dir);
    snprintf(cmd, sizeof cmd, "for r in 1 2 3; do ls '%s'/*.png; done > '%s'", images, f->list);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    fixture_dir("darknet-mnist-lenet", fix, sizeof fix);
    assert_non_null(realpath(fix, abs));
    snprintf(text, sizeof text,
             "classes=10\nnames=%s/names.list\nlabels=%s/labels.list\nvalid=%s\ntop=1\n", abs, abs,
             f->list);
    assert_int_equal(write_text_file(dir, "wide.data", text, f->data, sizeof f->data), 0);
    assert_int_equal(dk_parse_network(f->cfg, &m, &err), 0);
    struct dnn_net_config nc = m.net;
    assert_int_equal(dnn_network_create(&net, &nc, m.specs, m.n, false, 5), DNN_OK);
    snprintf(f->weights, sizeof f->weights, "%s/wide.weights", dir);
    assert_int_equal(dk_weights_save(net, f->weights, &err), 0);
    dnn_network_free(net);
    dk_model_free(&m);
}

/* Runs darknetp VERB with OPTS and the files, its stdout and -out file into out_dir/NAME.csv
 * and its stderr into err (both NUL-terminated); returns its exit status. */
static int run_verb(const char *dir, const struct files *f, const char *verb, const char *opts,
                    const char *name, char *csv, size_t csv_size, char *err, size_t err_size)
{
    char cmd[8 * PATH_MAX], path[PATH_MAX + 32], errpath[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s.csv", dir, name);
    snprintf(errpath, sizeof errpath, "%s/%s.err", dir, name);
    const bool predict = strcmp(verb, "predict") == 0;
    snprintf(cmd, sizeof cmd, "'%s' classifier %s %s -out '%s' '%s' '%s' '%s' %s%s%s 2>'%s'", bin,
             verb, opts, path, f->data, f->cfg, f->weights, predict ? "'" : "",
             predict ? f->list : "", predict ? "'" : "", errpath);
    char ignored[16384];
    const int rc = run_capture(cmd, ignored, sizeof ignored);
    unsigned char *data = NULL;
    long n = read_whole_file(path, &data);
    snprintf(csv, csv_size, "%s", n > 0 ? (const char *)data : "");
    free(data);
    n = read_whole_file(errpath, &data);
    snprintf(err, err_size, "%s", n > 0 ? (const char *)data : "");
    free(data);
    return rc;
}

static void test_predict_list_falls_back(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    struct files f;
    static char plain[32768], tee[32768], one[32768], err[8192];
    make_files(dir, &f);

    const char *scores = "-tee_output scores";
    assert_int_equal(
        run_verb(dir, &f, "predict", scores, "plain", plain, sizeof plain, err, sizeof err), 0);
    /* 36 rows of scores, the network's own. */
    assert_non_null(strstr(plain, "t_00011_c5.png,"));
    assert_int_equal(run_verb(dir, &f, "predict", "-tee_output scores -pp_start 0 -pp_end 4", "tee",
                              tee, sizeof tee, err, sizeof err),
                     0);
    assert_string_equal(tee, plain);
    /* One line says which batch runs and why; the batch-32 refusal is not the message. */
    const char *say = strstr(err, "darknetp: layers 0..4 do not fit TA_DATA_SIZE = 6291456 at 32 "
                                  "images per forward, resident or streamed: running ");
    if (!say)
        fail_msg("no fallback line in:\n%s", err);
    int kept = atoi(say + strlen("darknetp: layers 0..4 do not fit TA_DATA_SIZE = 6291456 at 32 "
                                 "images per forward, resident or streamed: running "));
    assert_true(kept > 1 && kept < 32);
    assert_non_null(strstr(err, "-batch N sets it"));
    assert_null(strstr(err, "at batch 32"));

    /* -batch 1: the same scores, and no fallback line. */
    assert_int_equal(run_verb(dir, &f, "predict",
                              "-tee_output scores -pp_start 0 -pp_end 4 -batch 1", "one", one,
                              sizeof one, err, sizeof err),
                     0);
    assert_string_equal(one, plain);
    assert_null(strstr(err, "running "));

    /* A -batch the user chose is kept: refused, naming it. */
    assert_int_not_equal(run_verb(dir, &f, "predict",
                                  "-tee_output scores -pp_start 0 -pp_end 4 -batch 32", "b32", one,
                                  sizeof one, err, sizeof err),
                         0);
    if (!strstr(err, "at batch 32"))
        fail_msg("-batch 32 refused without naming it:\n%s", err);

    /* More than the TA's DZ_MAX_BATCH (65536) is refused at the command line. */
    assert_int_equal(run_verb(dir, &f, "predict",
                              "-tee_output scores -pp_start 0 -pp_end 4 -batch 65537", "big", one,
                              sizeof one, err, sizeof err),
                     2);
    if (!strstr(err, "-batch"))
        fail_msg("-batch 65537 refused without naming it:\n%s", err);

    /* One image runs alone: a -batch there is said to be unused. */
    char cmd[6 * PATH_MAX], out[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' classifier predict -batch 8 '%s' '%s' '%s' '%s/t_00007_c3.png' 2>&1", bin,
             f.data, f.cfg, f.weights, images);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(
        strstr(out, "darknetp: note: -batch 8 unused: predict runs one image at a time"));
}

static void test_valid_falls_back(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    struct files f;
    static char plain[32768], tee[32768], one[32768], err[8192];
    make_files(dir, &f);

    assert_int_equal(run_verb(dir, &f, "valid", "-tee_output scores", "plain", plain, sizeof plain,
                              err, sizeof err),
                     0);
    assert_non_null(strstr(plain, "image,truth,predicted"));
    assert_int_equal(run_verb(dir, &f, "valid", "-tee_output scores -pp_start 0 -pp_end 4", "tee",
                              tee, sizeof tee, err, sizeof err),
                     0);
    assert_string_equal(tee, plain);
    if (!strstr(err, "at 100 images per forward, resident or streamed: running "))
        fail_msg("no fallback line in:\n%s", err);
    assert_int_equal(run_verb(dir, &f, "valid", "-tee_output scores -pp_start 0 -pp_end 4 -batch 1",
                              "one", one, sizeof one, err, sizeof err),
                     0);
    assert_string_equal(one, plain);
    /* -batch is predict's and valid's: train takes its cfg's. */
    char cmd[4 * PATH_MAX], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' classifier train -batch 4 '%s' '%s' 2>&1", bin, f.data, f.cfg);
    assert_int_equal(run_capture(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "-batch is a predict and valid option"));
}

static int setup(void **state)
{
    char rel[PATH_MAX], img[PATH_MAX + 64];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    snprintf(img, sizeof img, "%s/images", rel);
    if (!realpath(img, images))
        return -1;
    return tmp_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_predict_list_falls_back, setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_valid_falls_back, setup, tmp_teardown),
    };
    return cmocka_run_group_tests_name("cli_batch_fit", tests, NULL, NULL);
}
