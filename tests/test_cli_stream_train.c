/*
 * test_cli_stream_train.c - `darknetp classifier train` with the TEE segment's weights streamed
 * (issue 11): the fixture LeNet (upstream's weights, -clear) trained with layers 4..10 in the
 * TA and -tee_stream prints bit for bit the losses of training without TEE, and its save (the
 * normal world's layers in x.weights, the TA's chunks in x.weights.tz: a streamed save) holds
 * the same final weights: layers 0..3 in plain, layers 4..10 in the chunks, read here with a
 * key re-derived from the simulated device key; the same for layers 4..8 (a segment that
 * takes its delta from the normal world and does not end the network). Training resumed
 * from that save (the TA takes the kept chunks) goes on with the losses of resuming without
 * TEE, and the save loads resident (DZ_CMD_LOAD_CHUNK) to predict the scores of no TEE.
 * A training save cut for a 4 KiB buffer predicts streamed (an inference session opening its
 * training chunks) the scores of no TEE. A resident run's sealed pair (one DZS2 blob) trains
 * on streamed (the TA re-keys the import's chunks, DZ_CMD_STREAM_REKEY) with the losses and
 * weights of continuing without TEE, and resumes from its streamed save as without TEE.
 * A LeNet with batch-normalised convolution and connected layers, layers 1..10 streamed,
 * trains with the losses of no TEE and its streamed save predicts resident as no TEE.
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
#include "host/tee_session.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/sim_chunks.h"
#include "tests/helpers/tmpdir.h"

#ifndef TA_SMALL_DIR
#error "TA_SMALL_DIR: the folder of the 192 KiB TA (tests/ta_sized.mk sets it)"
#endif
/* darknetp's environment for the 192 KiB TA: too small for layers 4..10 resident. */
#define SMALL_TA "DZ_TA_DIR='" TA_SMALL_DIR "'"

static char bin[PATH_MAX];
static char fixture[PATH_MAX];

/* The fixture's LeNet (same layers, so upstream's weights load), a shorter schedule. */
#define LENET_NET                                                                                  \
    "[net]\nbatch=6\nsubdivisions=2\nheight=28\nwidth=28\nchannels=3\nmomentum=0.9\n"              \
    "decay=0.00005\nlearning_rate=0.01\npolicy=poly\npower=4\n"
#define LENET_LAYERS                                                                               \
    "[convolutional]\nfilters=6\nsize=5\nstride=1\npad=1\nactivation=relu\n"                       \
    "[maxpool]\nsize=2\nstride=2\n"                                                                \
    "[convolutional]\nfilters=6\nsize=5\nstride=1\npad=1\nactivation=relu\n"                       \
    "[maxpool]\nsize=2\nstride=2\n"                                                                \
    "[connected]\noutput=120\nactivation=relu\n"                                                   \
    "[dropout]\nprobability=.8\n"                                                                  \
    "[connected]\noutput=84\nactivation=relu\n"                                                    \
    "[dropout]\nprobability=.8\n"                                                                  \
    "[connected]\noutput=10\nactivation=linear\n"                                                  \
    "[softmax]\ngroups=1\n"                                                                        \
    "[cost]\ntype=sse\n"
static const char lenet_cfg[] = LENET_NET "max_batches=4\n" LENET_LAYERS;
static const char resume_cfg[] = LENET_NET "max_batches=7\n" LENET_LAYERS;
static const char resume2_cfg[] = LENET_NET "max_batches=10\n" LENET_LAYERS;

enum { FIRST = 4, LAST = 10, MAX_LINES = 16 };

/* The iteration lines' text up to the rate: "N, E: loss, avg avg". */
static int losses(const char *out, char lines[][96])
{
    int n = 0;
    for (const char *line = out; line && *line && n < MAX_LINES;) {
        const char *end = strchr(line, '\n');
        const char *rate = strstr(line, " rate, ");
        if (rate && (!end || rate < end) && strstr(line, " avg, "))
            snprintf(lines[n++], 96, "%.*s", (int)(rate - line), line);
        line = end ? end + 1 : NULL;
    }
    return n;
}

static void run_ok(const char *cmd, char *out, size_t size)
{
    const int rc = run_capture(cmd, out, size);
    if (rc != 0)
        fail_msg("'%s' exited %d:\n%s", cmd, rc, out);
}

/* Runs `classifier train` in @dir with darknetp's environment @env ("" or SMALL_TA, in which
 * it must stream by itself) and @extra options; the losses into @lines. */
static int train_in(const char *env, const char *dir, const char *cfg, const char *extra,
                    const char *weights, char lines[][96])
{
    static char out[1 << 16];
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s '%s' classifier train -seed 7 %s train.data %s '%s' 2>&1", dir, env,
             bin, extra, cfg, weights);
    run_ok(cmd, out, sizeof out);
    if (strstr(extra, "-tee_stream") &&
        !strstr(out, "darknetp: streaming the weights of layers 4.."))
        fail_msg("-tee_stream did not stream:\n%s", out);
    if (*env && !strstr(out, "TA_DATA_SIZE is 196608: streaming their weights, sealed"))
        fail_msg("the small TA did not stream by itself:\n%s", out);
    const int n = losses(out, lines);
    if (n == 0)
        fail_msg("no iteration in:\n%s", out);
    return n;
}

static int train(const char *dir, const char *cfg, const char *extra, const char *weights,
                 char lines[][96])
{
    return train_in("", dir, cfg, extra, weights, lines);
}

static void same_losses(char a[][96], int na, char b[][96], int nb)
{
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            fail_msg("iteration %d: '%s' without TEE, '%s' streamed", i + 1, a[i], b[i]);
        printf("%s (the same streamed)\n", a[i]);
    }
}

/* The final network of a run without TEE, to compare with. */
static struct dnn_network *load(const char *cfg, const char *weights)
{
    struct dk_model m;
    struct dk_error err = {{0}};
    struct dnn_network *net = NULL;
    if (dk_parse_network(cfg, &m, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(dnn_network_create(&net, &m.net, m.specs, m.n, false, 1), DNN_OK);
    dk_model_free(&m);
    if (dk_weights_load_all(net, weights, &err) != 0)
        fail_msg("%s", err.msg);
    return net;
}

/* Layers 0..FIRST-1 and after @last of the pair's x.weights and layers FIRST..@last of its
 * streamed save equal @ref's parameters, bit for bit. */
static void same_weights(const char *dir, const struct dnn_network *ref, const char *pair,
                         size_t last)
{
    char path[PATH_MAX + 80], storage[PATH_MAX];
    unsigned char *w = NULL, *tz = NULL;
    snprintf(path, sizeof path, "%s", pair);
    const long w_len = read_whole_file(path, &w);
    assert_true(w_len > 20);
    const float *f = (const float *)(const void *)(w + 20);
    size_t at = 0;
    for (size_t i = 0; i < ref->n; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++) {
            const size_t count = ref->layers[i].params[p].count;
            if ((i < FIRST || i > last) &&
                memcmp(f + at, ref->layers[i].params[p].value, count * 4) != 0)
                fail_msg("layer %zu %s differs from the run without TEE", i,
                         ref->layers[i].params[p].name);
            at += count;
        }
    snprintf(path, sizeof path, "%s.tz", pair);
    const long tz_len = read_whole_file(path, &tz);
    struct dz_chunk_save_header h;
    assert_true(tz_len > (long)sizeof h);
    memcpy(&h, tz, sizeof h);
    assert_int_equal(h.magic, DZ_CHUNK_SAVE_MAGIC);
    assert_int_equal(h.first, FIRST);
    assert_int_equal(h.last, last);
    assert_int_equal(h.training, 1);
    snprintf(storage, sizeof storage, "%s/storage", dir);
    size_t off = sizeof h, rows_seen = 0;
    for (uint32_t k = 0; k < h.n_chunks; k++) {
        struct dz_chunk_header ch;
        assert_true(off + sizeof ch <= (size_t)tz_len);
        memcpy(&ch, tz + off, sizeof ch);
        const size_t size = sizeof ch + ch.plain_bytes + DZ_SEALED_TAG_BYTES;
        assert_true(off + size <= (size_t)tz_len);
        float *p = sim_unseal_chunk(storage, tz + off, size, &ch);
        assert_non_null(p);
        const struct dnn_layer *l = &ref->layers[ch.layer];
        const size_t r = ch.rows, in = l->inputs;
        if (memcmp(p, l->biases + ch.row0, r * 4) != 0 ||
            memcmp(p + r, l->weights + (size_t)ch.row0 * in, r * in * 4) != 0)
            fail_msg("chunk %u (layer %u rows %u..): weights differ from the run without TEE",
                     (unsigned)k, (unsigned)ch.layer, (unsigned)ch.row0);
        rows_seen += r;
        free(p);
        off += size;
    }
    assert_int_equal(off, (size_t)tz_len);
    assert_int_equal(rows_seen, 120 + 84 + 10); /* layers 4, 6 and 8 */
    free(tz);
    free(w);
}

/* same_weights for the runs whose saves are @dir/backup/@plain (without TEE, read with @cfg)
 * and @dir/backup/@pair (streamed). */
static void same_final_weights(const char *dir, const char *cfg, const char *plain,
                               const char *pair, size_t last)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/backup/%s", dir, plain);
    struct dnn_network *ref = load(cfg, path);
    snprintf(path, sizeof path, "%s/backup/%s", dir, pair);
    same_weights(dir, ref, path, last);
    dnn_network_free(ref);
}

/* The cfgs, the data file (the fixture's twelve digits, labelled by their names c0..c9) and
 * the backup folder in @dir; @cfg gets lenet.cfg's path. */
static void prepare(const char *dir, char cfg[PATH_MAX])
{
    char path[PATH_MAX], text[4 * PATH_MAX], list[16 * PATH_MAX], cmd[4 * PATH_MAX], out[1 << 12];
    assert_int_equal(write_text_file(dir, "lenet.cfg", lenet_cfg, cfg, PATH_MAX), 0);
    assert_int_equal(write_text_file(dir, "resume.cfg", resume_cfg, path, sizeof path), 0);
    assert_int_equal(write_text_file(dir, "resume2.cfg", resume2_cfg, path, sizeof path), 0);
    snprintf(cmd, sizeof cmd, "ls '%s'/images/*.png", fixture);
    run_ok(cmd, list, sizeof list);
    assert_int_equal(write_text_file(dir, "train.list", list, path, sizeof path), 0);
    snprintf(text, sizeof text,
             "classes=10\nlabels=%s/labels.list\nnames=%s/names.list\ntrain=%s/train.list\n"
             "backup=%s/backup\n",
             fixture, fixture, dir, dir);
    assert_int_equal(write_text_file(dir, "train.data", text, path, sizeof path), 0);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/backup'", dir);
    run_ok(cmd, out, sizeof out);
}

static void test_train_streamed_as_without_tee(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char cfg[PATH_MAX], path[PATH_MAX], cmd[4 * PATH_MAX], out[1 << 14];
    char plain[MAX_LINES][96], tee[MAX_LINES][96];

    prepare(dir, cfg);
    char weights[PATH_MAX + 32];
    snprintf(weights, sizeof weights, "%s/mnist_lenet.weights", fixture);

    /* Without TEE, then streamed. */
    const int n = train(dir, "lenet.cfg", "-clear", weights, plain);
    assert_true(n >= 4);
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv lenet_final.weights plain.weights && rm -f lenet_*.weights",
             dir);
    run_ok(cmd, out, sizeof out);
    const char *streamed = "-clear -pp_start 4 -pp_end 10 -tee_stream -tee_output scores";
    same_losses(plain, n, tee, train(dir, "lenet.cfg", streamed, weights, tee));
    same_final_weights(dir, cfg, "plain.weights", "lenet_final.weights", LAST);

    /* Resumed from the saves: the TA takes the kept chunks, with darknet's reset momenta. */
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv lenet_final.weights tee.weights && "
             "mv lenet_final.weights.tz tee.weights.tz",
             dir);
    run_ok(cmd, out, sizeof out);
    snprintf(path, sizeof path, "%s/backup/plain.weights", dir);
    const int n2 = train(dir, "resume.cfg", "", path, plain);
    assert_true(n2 >= 3);
    snprintf(path, sizeof path, "%s/backup/tee.weights", dir);
    same_losses(plain, n2, tee,
                train(dir, "resume.cfg", "-pp_start 4 -pp_end 10 -tee_stream -tee_output scores",
                      path, tee));

    /* The streamed save back resident (DZ_CMD_LOAD_CHUNK: where the memory allows), for
     * inference: the scores of the run without TEE. */
    char img[PATH_MAX + 64], plain_out[4096], tee_out[4096];
    snprintf(img, sizeof img, "%s/images/t_00007_c3.png", fixture);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -tee_output scores train.data lenet.cfg "
             "backup/plain.weights '%s' 2>/dev/null",
             dir, bin, img);
    run_ok(cmd, plain_out, sizeof plain_out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -tee_output scores -pp_start 4 -pp_end 10 "
             "train.data lenet.cfg backup/tee.weights '%s' 2>/dev/null",
             dir, bin, img);
    run_ok(cmd, tee_out, sizeof tee_out);
    assert_non_null(strstr(plain_out, "%: "));
    assert_string_equal(tee_out, plain_out);

    /* A segment that does not end the network (layers 4..8: the delta comes in from the normal
     * world's softmax and cost, and goes back to layer 3), against the first run without TEE. */
    snprintf(cmd, sizeof cmd, "cd '%s/backup' && rm -f lenet_*", dir);
    run_ok(cmd, out, sizeof out);
    const int n3 = train(dir, "lenet.cfg", "-clear", weights, plain);
    snprintf(cmd, sizeof cmd, "cd '%s/backup' && mv lenet_final.weights plain.weights", dir);
    run_ok(cmd, out, sizeof out);
    same_losses(plain, n3, tee,
                train(dir, "lenet.cfg", "-clear -pp_start 4 -pp_end 8 -tee_stream", weights, tee));
    same_final_weights(dir, cfg, "plain.weights", "lenet_final.weights", 8);
}

/* Bar 2 of issue 11: the seed's own cfg (batch 100) with layers 4..10 in a TA built with
 * TA_DATA_SIZE = 1 MiB (tests/ta_sized.mk), too small for them resident. darknetp must choose
 * streaming by itself, without -tee_stream, and train bit for bit as without TEE. */
#ifndef TA1M_DIR
#error "TA1M_DIR: the folder of the 1 MiB TA (tests/ta_sized.mk sets it)"
#endif
static void test_seed_lenet_streams_in_a_small_ta(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char cfg[PATH_MAX], path[PATH_MAX + 32], cmd[4 * PATH_MAX];
    static char seed_cfg[1 << 12], text[1 << 12], out[1 << 16];
    char plain[MAX_LINES][96], tee[MAX_LINES][96];

    prepare(dir, cfg);
    /* The seed's cfg, cut to three iterations. */
    snprintf(path, sizeof path, "%s/mnist_lenet.cfg", fixture);
    unsigned char *raw = NULL;
    const long len = read_whole_file(path, &raw);
    assert_true(len > 0 && (size_t)len < sizeof text);
    memcpy(text, raw, (size_t)len);
    text[len] = '\0';
    free(raw);
    char *max = strstr(text, "max_batches=10000\n");
    assert_non_null(max);
    assert_non_null(strstr(text, "batch=100\nsubdivisions=1\n"));
    snprintf(seed_cfg, sizeof seed_cfg, "%.*smax_batches=3\n%s", (int)(max - text), text,
             max + strlen("max_batches=10000\n"));
    assert_int_equal(write_text_file(dir, "seed.cfg", seed_cfg, cfg, sizeof cfg), 0);
    char weights[PATH_MAX + 32];
    snprintf(weights, sizeof weights, "%s/mnist_lenet.weights", fixture);

    const int n = train(dir, "seed.cfg", "-clear", weights, plain);
    assert_int_equal(n, 3);
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv seed_final.weights plain.weights && rm -f seed_*.weights", dir);
    run_ok(cmd, out, sizeof out);

    /* No -tee_stream: the TA's size decides. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && DZ_TA_DIR='%s' '%s' classifier train -seed 7 -clear -pp_start 4 "
             "-pp_end 10 -tee_output scores train.data seed.cfg '%s' 2>&1",
             dir, TA1M_DIR, bin, weights);
    run_ok(cmd, out, sizeof out);
    if (!strstr(out, "darknetp: layers 4..10 need ") ||
        !strstr(out, "with their weights resident, TA_DATA_SIZE is 1048576: streaming their "
                     "weights, sealed, through a working buffer of "))
        fail_msg("darknetp did not choose streaming in the 1 MiB TA:\n%s", out);
    same_losses(plain, n, tee, losses(out, tee));

    /* `tee plan`'s streamed row for these layers is the TA's own count of what it holds. */
    unsigned char *log = NULL;
    snprintf(path, sizeof path, "%s/console.log", dir);
    assert_true(read_whole_file(path, &log) > 0);
    const char *open = strstr((const char *)log, "layers 4..10 of 11 open: ");
    assert_non_null(open);
    const unsigned long ta_bytes = strtoul(open + strlen("layers 4..10 of 11 open: "), NULL, 10);
    free(log);
    assert_true(ta_bytes > 0 && ta_bytes <= 1048576);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' tee plan seed.cfg -train -ta_data_size 1048576", dir,
             bin);
    run_ok(cmd, out, sizeof out);
    char row[64];
    snprintf(row, sizeof row, "\n    4  %18lu  ", ta_bytes);
    const char *at = strstr(out, "with the weights streamed (training):\n");
    if (!at || !strstr(at, row) || !strstr(strstr(at, row), "  yes\n"))
        fail_msg("no streamed row for layers 4.. of %lu bytes that fits:\n%s", ta_bytes, out);

    same_final_weights(dir, cfg, "plain.weights", "seed_final.weights", LAST);
}

/* `classifier predict -tee_output scores` of the fixture's digit 3 in @dir, darknetp's
 * environment @env, @extra options and @weights: what it prints into @out; its stderr into
 * @err when not NULL. */
static void predict_scores(const char *env, const char *dir, const char *extra, const char *weights,
                           char *out, size_t size, char *err, size_t err_size)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s '%s' classifier predict -tee_output scores %s train.data lenet.cfg "
             "'%s' '%s/images/t_00007_c3.png' 2>%s",
             dir, env, bin, extra, weights, fixture, err ? "predict.err" : "/dev/null");
    run_ok(cmd, out, size);
    assert_non_null(strstr(out, "%: "));
    if (err) {
        unsigned char *text = NULL;
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/predict.err", dir);
        const long n = read_whole_file(path, &text);
        assert_true(n >= 0);
        snprintf(err, err_size, "%.*s", (int)n, (const char *)text);
        free(text);
    }
}

/* A training save streams for inference (issue 11: a streamed training save reloads where
 * its segment would not fit resident): trained with -tee_stream through a 4 KiB working
 * buffer (143 training chunks of half the rows), `predict -tee_stream` takes that cut by
 * itself (an inference session opens the training chunks, DZ_STREAM_KEPT_UPDATES) and prints
 * the scores of the same weights without TEE; so it does with the save's cut given as
 * -tee_chunk, and a -tee_chunk below the save's cut is refused with the reason. */
static void test_training_save_predicts_streamed(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char cfg[PATH_MAX], cmd[4 * PATH_MAX], out[1 << 14], err[1 << 14];
    char plain[MAX_LINES][96], tee[MAX_LINES][96];
    char plain_out[4096], tee_out[4096];
    char weights[PATH_MAX + 32];

    prepare(dir, cfg);
    snprintf(weights, sizeof weights, "%s/mnist_lenet.weights", fixture);
    const int n = train(dir, "lenet.cfg", "-clear", weights, plain);
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv lenet_final.weights plain.weights && rm -f lenet_*.weights",
             dir);
    run_ok(cmd, out, sizeof out);
    same_losses(plain, n, tee,
                train(dir, "lenet.cfg",
                      "-clear -pp_start 4 -pp_end 10 -tee_stream -tee_chunk 4096 "
                      "-tee_output scores",
                      weights, tee));
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv lenet_final.weights tee.weights && "
             "mv lenet_final.weights.tz tee.weights.tz",
             dir);
    run_ok(cmd, out, sizeof out);
    unsigned char *tz = NULL;
    struct dz_chunk_save_header h;
    snprintf(cmd, sizeof cmd, "%s/backup/tee.weights.tz", dir);
    assert_true(read_whole_file(cmd, &tz) > (long)sizeof h);
    memcpy(&h, tz, sizeof h);
    free(tz);
    assert_int_equal(h.training, 1);
    assert_int_equal(h.chunk_bytes, 4096);
    assert_int_equal(h.n_chunks, 143);

    predict_scores("", dir, "", "backup/plain.weights", plain_out, sizeof plain_out, NULL, 0);
    predict_scores("", dir, "-pp_start 4 -pp_end 10 -tee_stream", "backup/tee.weights", tee_out,
                   sizeof tee_out, err, sizeof err);
    if (!strstr(err, "through a working buffer of 4096 bytes"))
        fail_msg("the streamed prediction did not take the save's cut:\n%s", err);
    assert_string_equal(tee_out, plain_out);
    predict_scores("", dir, "-pp_start 4 -pp_end 10 -tee_stream -tee_chunk 4096",
                   "backup/tee.weights", tee_out, sizeof tee_out, NULL, 0);
    assert_string_equal(tee_out, plain_out);
    /* A copy with one ciphertext byte of its last chunk flipped: only the pass that opens it
     * can tell, and darknetp names the file, not a TEE status code. */
    snprintf(
        cmd, sizeof cmd,
        "cd '%s/backup' && cp tee.weights bad.weights && cp tee.weights.tz bad.weights.tz && "
        "size=$(wc -c < bad.weights.tz) && printf '\\377' | dd of=bad.weights.tz bs=1 "
        "seek=$((size - 40)) conv=notrunc 2>/dev/null && cmp -s tee.weights.tz bad.weights.tz; "
        "test $? = 1",
        dir);
    run_ok(cmd, out, sizeof out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -tee_output scores -pp_start 4 -pp_end 10 "
             "-tee_stream train.data lenet.cfg backup/bad.weights '%s/images/t_00007_c3.png' 2>&1",
             dir, bin, fixture);
    assert_int_not_equal(run_capture(cmd, out, sizeof out), 0);
    if (!strstr(out, "backup/bad.weights.tz: the TA refused chunk 142 of the streamed save: "
                     "altered, or not sealed on this device for this model"))
        fail_msg("a flipped byte of a streamed save, not named:\n%s", out);
    /* In a TA too small for the segment resident (192 KiB; it needs 266,792 bytes at batch
     * 1), darknetp streams by itself, through the save's buffer, not the 115,608 bytes it
     * would give a plain file. */
    predict_scores(SMALL_TA, dir, "-pp_start 4 -pp_end 10", "backup/tee.weights", tee_out,
                   sizeof tee_out, err, sizeof err);
    assert_non_null(strstr(err, "weights resident, TA_DATA_SIZE is 196608: streaming their "
                                "weights, sealed, through a working buffer of 4096 bytes"));
    assert_string_equal(tee_out, plain_out);
    /* A cap below the save's cut cannot load it: said before the TA is asked. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 4 -pp_end 10 -tee_stream -tee_chunk "
             "2048 train.data lenet.cfg backup/tee.weights '%s/images/t_00007_c3.png' 2>&1",
             dir, bin, fixture);
    assert_int_not_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "cut for a working buffer of 4096 bytes"));
}

/* A resident training run's sealed pair (one device-sealed blob, DZS2) trained further with
 * its weights streamed: the TA imports the blob into chunks and re-keys them to the device's
 * chunk key (DZ_CMD_STREAM_REKEY), so the run prints the losses of continuing without TEE
 * and saves (DZB1) the weights of continuing without TEE; resumed from that streamed save it
 * goes on as without TEE again. */
static void test_sealed_pair_trains_streamed(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char cfg[PATH_MAX], path[PATH_MAX], cmd[4 * PATH_MAX], out[1 << 14];
    char plain[MAX_LINES][96], tee[MAX_LINES][96];
    char weights[PATH_MAX + 32];

    prepare(dir, cfg);
    snprintf(weights, sizeof weights, "%s/mnist_lenet.weights", fixture);
    /* Without TEE, and resident (the pair), from the same start. */
    train(dir, "lenet.cfg", "-clear", weights, plain);
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv lenet_final.weights plain.weights && rm -f lenet_*", dir);
    run_ok(cmd, out, sizeof out);
    train(dir, "lenet.cfg", "-clear -pp_start 4 -pp_end 10 -tee_output scores", weights, tee);
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv lenet_final.weights res.weights && "
             "mv lenet_final.weights.tz res.weights.tz && rm -f lenet_* && "
             "head -c 4 res.weights.tz | od -An -tx1",
             dir);
    run_ok(cmd, out, sizeof out);
    assert_non_null(strstr(out, "44 5a 53 32")); /* DZS2: one sealed blob */

    /* Continued: without TEE, and streamed from the pair. */
    snprintf(path, sizeof path, "%s/backup/plain.weights", dir);
    const int n = train(dir, "resume.cfg", "", path, plain);
    assert_true(n >= 3);
    snprintf(cmd, sizeof cmd, "cd '%s/backup' && mv resume_final.weights plain2.weights", dir);
    run_ok(cmd, out, sizeof out);
    snprintf(path, sizeof path, "%s/backup/res.weights", dir);
    same_losses(plain, n, tee,
                train(dir, "resume.cfg",
                      "-pp_start 4 -pp_end 10 -tee_stream -tee_chunk 4096 -tee_output scores", path,
                      tee));
    same_final_weights(dir, cfg, "plain2.weights", "resume_final.weights", LAST);

    /* Resumed from the streamed save (the save's cut, taken by itself). */
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv resume_final.weights tee2.weights && "
             "mv resume_final.weights.tz tee2.weights.tz && rm -f resume_*",
             dir);
    run_ok(cmd, out, sizeof out);
    snprintf(path, sizeof path, "%s/backup/plain2.weights", dir);
    const int n2 = train(dir, "resume2.cfg", "", path, plain);
    assert_true(n2 >= 3);
    snprintf(path, sizeof path, "%s/backup/tee2.weights", dir);
    same_losses(plain, n2, tee,
                train(dir, "resume2.cfg", "-pp_start 4 -pp_end 10 -tee_stream -tee_output scores",
                      path, tee));
    /* The same in the 192 KiB TA, with no option: the pair's segment (470,808 bytes to train
     * resident) streams by itself, and its streamed save resumes in the save's cut. */
    snprintf(cmd, sizeof cmd, "cd '%s/backup' && rm -f resume*", dir);
    run_ok(cmd, out, sizeof out);
    snprintf(path, sizeof path, "%s/backup/plain.weights", dir);
    train(dir, "resume.cfg", "", path, plain);
    snprintf(path, sizeof path, "%s/backup/res.weights", dir);
    same_losses(plain, n, tee,
                train_in(SMALL_TA, dir, "resume.cfg", "-pp_start 4 -pp_end 10 -tee_output scores",
                         path, tee));
    snprintf(cmd, sizeof cmd,
             "cd '%s/backup' && mv resume_final.weights tee3.weights && "
             "mv resume_final.weights.tz tee3.weights.tz && rm -f resume*",
             dir);
    run_ok(cmd, out, sizeof out);
    snprintf(path, sizeof path, "%s/backup/plain2.weights", dir);
    train(dir, "resume2.cfg", "", path, plain);
    snprintf(path, sizeof path, "%s/backup/tee3.weights", dir);
    same_losses(plain, n2, tee,
                train_in(SMALL_TA, dir, "resume2.cfg", "-pp_start 4 -pp_end 10 -tee_output scores",
                         path, tee));
}

/* LeNet with batch_normalize on its second convolution and its first connected layer. */
static const char bn_cfg[] =
    LENET_NET "max_batches=3\n"
              "[convolutional]\nfilters=6\nsize=5\nstride=1\npad=1\nactivation=relu\n"
              "[maxpool]\nsize=2\nstride=2\n"
              "[convolutional]\nbatch_normalize=1\nfilters=6\nsize=5\nstride=1\npad=1\n"
              "activation=relu\n"
              "[maxpool]\nsize=2\nstride=2\n"
              "[connected]\nbatch_normalize=1\noutput=120\nactivation=relu\n"
              "[dropout]\nprobability=.8\n"
              "[connected]\noutput=84\nactivation=relu\n"
              "[dropout]\nprobability=.8\n"
              "[connected]\noutput=10\nactivation=linear\n"
              "[softmax]\ngroups=1\n"
              "[cost]\ntype=sse\n";

/* Layers 1..10 (a BN convolution, BN connected) streamed through a 4 KiB working buffer, from
 * no weights file (a streaming TA keeps no parameters to draw: darknetp draws the segment's
 * from the seed and imports them): the losses of training without TEE, and the streamed save,
 * back resident, predicts the scores of the run without TEE. */
static void test_bn_conv_train_streamed_as_without_tee(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char cfg[PATH_MAX], cmd[4 * PATH_MAX];
    static char out[1 << 16];
    char plain[MAX_LINES][96], tee[MAX_LINES][96];

    prepare(dir, cfg);
    assert_int_equal(write_text_file(dir, "bn.cfg", bn_cfg, cfg, sizeof cfg), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train -seed 7 train.data bn.cfg 2>&1 && "
             "mv backup/bn_final.weights backup/plain.weights && rm -f backup/bn_*",
             dir, bin);
    run_ok(cmd, out, sizeof out);
    const int n = losses(out, plain);
    assert_true(n >= 3);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train -seed 7 -pp_start 1 -pp_end 10 -tee_stream "
             "-tee_chunk 4096 -tee_output scores train.data bn.cfg 2>&1",
             dir, bin);
    run_ok(cmd, out, sizeof out);
    if (!strstr(out, "darknetp: streaming the weights of layers 1..10"))
        fail_msg("-tee_stream did not stream:\n%s", out);
    same_losses(plain, n, tee, losses(out, tee));

    /* The streamed save resident (LOAD_CHUNK) predicts as the run without TEE. */
    char img[PATH_MAX + 64], plain_out[4096], tee_out[4096];
    snprintf(img, sizeof img, "%s/images/t_00007_c3.png", fixture);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -tee_output scores train.data bn.cfg "
             "backup/plain.weights '%s' 2>/dev/null",
             dir, bin, img);
    run_ok(cmd, plain_out, sizeof plain_out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -tee_output scores -pp_start 1 -pp_end 10 "
             "train.data bn.cfg backup/bn_final.weights '%s' 2>/dev/null",
             dir, bin, img);
    run_ok(cmd, tee_out, sizeof tee_out);
    assert_non_null(strstr(plain_out, "%: "));
    assert_string_equal(tee_out, plain_out);
}

static int setup(void **state)
{
    char rel[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    if (tmp_setup(state) != 0)
        return -1;
    const char *dir = ((const struct tmp *)*state)->dir;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/storage", dir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof path, "%s/console.log", dir);
    setenv("DZ_TEE_LOG", path, 1);
    return 0;
}

static int teardown(void **state)
{
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG");
    return tmp_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_train_streamed_as_without_tee, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_lenet_streams_in_a_small_ta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_training_save_predicts_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_pair_trains_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bn_conv_train_streamed_as_without_tee, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("cli_stream_train", tests, NULL, NULL);
}
