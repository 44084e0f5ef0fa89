/*
 * test_plan_scale.c - the secure-memory plan at scale (issue 8, "work before validation"):
 *  - `darknetp tee plan` on a cfg of 200,000 [connected] layers completes. Planning each
 *    tail and searching every range was quadratic to cubic in the layers (minutes for
 *    this cfg); the one-pass plan takes about a second. No time is asserted: a quadratic
 *    plan would keep the suite busy for many minutes, which is the failure to notice;
 *  - the one-pass plan agrees exactly with the engine: for random networks with routes,
 *    shortcuts and losses, dz_print_plan's every line and dz_fit_search's answer equal
 *    what dz_layer_need, dz_partition_check and dz_segment_need (dnn_network_plan on
 *    each range) give, and the search equals a brute force over every range;
 *  - a cfg over the layer limit is refused naming the limit;
 *  - `tee plan -train`'s sealed bytes that cross per image count what every pass moves: a
 *    training forward reads each chunk, and in a segment with batch_normalize writes it back
 *    re-sealed too (it moves the rolling statistics); BACKWARD reads and writes each; UPDATE
 *    reads and writes each once per batch * subdivisions images;
 *  - `tee plan`'s longest streamed tail is the longest that fits even when a shorter one
 *    needs more (AlexNet from layer 0 and from layer 1).
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
#include <unistd.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "darknet/user_file.h"
#include "dnn/dnn.h"
#include "host/partition.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/test_rng.h"

#define BIG_LAYERS 200000

static char bin[PATH_MAX];
static char dir[64];

static int setup(void **state)
{
    (void)state;
    if (!realpath(darknetp_path(), bin))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-plan-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes a cfg of `layers` [connected] layers (default output 1: 12 bytes a layer). */
static void write_chain(const char *path, size_t layers)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("[net]\nheight=1\nwidth=1\nchannels=1\n", f);
    for (size_t i = 0; i < layers; i++)
        fputs("[connected]\n", f);
    assert_int_equal(fclose(f), 0);
}

static void test_plan_of_200k_layers_completes(void **state)
{
    (void)state;
    char cfg[PATH_MAX], out[PATH_MAX], cmd[4 * PATH_MAX], last[512] = "";
    snprintf(cfg, sizeof cfg, "%s/chain.cfg", dir);
    snprintf(out, sizeof out, "%s/plan.txt", dir);
    write_chain(cfg, BIG_LAYERS);
    const char *modes[] = {"", "-train"};
    for (size_t m = 0; m < 2; m++) {
        snprintf(cmd, sizeof cmd, "'%s' tee plan '%s' %s > '%s' 2>&1", bin, cfg, modes[m], out);
        assert_int_equal(system(cmd), 0);
        FILE *f = fopen(out, "r");
        assert_non_null(f);
        char line[512], prev[512] = "";
        size_t lines = 0;
        while (fgets(line, sizeof line, f)) {
            lines++;
            snprintf(prev, sizeof prev, "%s", last);
            snprintf(last, sizeof last, "%s", line);
        }
        fclose(f);
        /* Three header lines (batch, whole network, columns), one per layer, the advice, and
         * the longest tail that fits streamed (for inference or training). */
        assert_int_equal(lines, BIG_LAYERS + 5);
        if (!strstr(last, m == 0 ? "streamed (inference" : "streamed (training"))
            fail_msg("unexpected streamed line: %s", last);
        snprintf(last, sizeof last, "%s", prev);
        if (!strstr(last, "layers fit: -pp_start ") || !strstr(last, "-pp_end 199999"))
            fail_msg("unexpected advice: %s", last);
    }
}

static void test_layer_limit(void **state)
{
    (void)state;
    char cfg[PATH_MAX], out[PATH_MAX], cmd[4 * PATH_MAX], text[512] = "";
    snprintf(cfg, sizeof cfg, "%s/over.cfg", dir);
    snprintf(out, sizeof out, "%s/over.txt", dir);
    write_chain(cfg, (size_t)DK_MAX_LAYERS + 1);
    snprintf(cmd, sizeof cmd, "'%s' tee plan '%s' > '%s' 2>&1", bin, cfg, out);
    assert_int_not_equal(system(cmd), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    size_t got = fread(text, 1, sizeof text - 1, f);
    text[got] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "262145 layers; at most 262144 are supported (the limit)"));
}

/* ------------------------------------------------ streamed training's crossing */

/* `tee plan CFG -train` (TEXT written there) against dz_stream_plan of its streamed tail:
 * the sealed bytes per image are the passes' reads and writes over the images they serve. */
static void check_crossing(const char *name, const char *text, bool moves)
{
    char cfg[PATH_MAX], out[PATH_MAX], cmd[4 * PATH_MAX], line[512];
    const size_t capacity = 4u << 20, work = 65536;
    snprintf(cfg, sizeof cfg, "%s/%s", dir, name);
    snprintf(out, sizeof out, "%s/%s.txt", dir, name);
    FILE *f = fopen(cfg, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "'%s' tee plan '%s' -train -ta_data_size %zu -tee_chunk %zu > '%s'",
             bin, cfg, capacity, work, out);
    assert_int_equal(system(cmd), 0);
    f = fopen(out, "r");
    assert_non_null(f);
    size_t first = 0, last = 0, need = 0, chunk = 0, chunks = 0;
    unsigned long long crossing = 0;
    int got = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "streamed (training, ", 20) == 0)
            got = sscanf(line,
                         "streamed (training, -pp_start %zu -pp_end %zu): %zu bytes of secure "
                         "memory with a working buffer of %zu bytes; %zu sealed chunks, %llu",
                         &first, &last, &need, &chunk, &chunks, &crossing);
    fclose(f);
    assert_int_equal(got, 6);

    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct dnn_network *shapes = NULL;
    struct dz_stream_fit fit;
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    const int batch = m.net.batch, subdivisions = m.net.subdivisions;
    assert_int_equal(dz_shapes_create(&m, batch, 0, &shapes, &err), 0);
    assert_int_equal(
        dz_stream_plan(&m, shapes, first, last, batch, true, capacity, work, &fit, &err), 0);
    assert_int_equal(dnn_tile_forward_moves(&shapes->layers[first], last - first + 1), moves);
    assert_int_equal(chunks, fit.n_chunks);
    const uint64_t images = (uint64_t)batch * (uint64_t)subdivisions;
    const uint64_t want =
        (moves ? 4 : 3) * fit.sealed_bytes / (uint64_t)batch + 2 * fit.sealed_bytes / images;
    if (crossing != want)
        fail_msg("%s: %llu sealed bytes cross per image, the passes move %llu", name, crossing,
                 (unsigned long long)want);
    dz_shapes_free(shapes);
    dk_model_free(&m);
}

static void test_streamed_training_crossing(void **state)
{
    (void)state;
    static const char head[] = "[net]\nbatch=4\nsubdivisions=2\nheight=8\nwidth=8\nchannels=2\n"
                               "learning_rate=0.01\nmomentum=0.9\ndecay=0.0005\n";
    static const char tail[] = "[connected]\noutput=10\nactivation=linear\n[softmax]\n";
    char text[1024];
    snprintf(text, sizeof text,
             "%s[convolutional]\nbatch_normalize=1\nfilters=32\nsize=3\npad=1\n"
             "activation=leaky\n%s",
             head, tail);
    check_crossing("bn.cfg", text, true);
    snprintf(text, sizeof text,
             "%s[convolutional]\nfilters=32\nsize=3\npad=1\nactivation=leaky\n%s", head, tail);
    check_crossing("plain.cfg", text, false);
}

/* ------------------------------------------------ the longest streamed tail */

/* A longer tail may need less secure memory than a shorter one: AlexNet's whole network
 * takes its 227x227x3 image in, the tail from layer 1 the first convolution's 55x55x96
 * output. In a TA that holds the whole network streamed but not the tail from layer 1,
 * `tee plan` must answer -pp_start 0, as its table does, not a shorter tail that a search
 * assuming needs grow with the length finds. */
static void test_longest_streamed_tail(void **state)
{
    (void)state;
    char cfg[PATH_MAX], out[PATH_MAX], cmd[4 * PATH_MAX], line[512];
    fixture_dir("darknet-alexnet", cfg, sizeof cfg);
    strncat(cfg, "/alexnet.cfg", sizeof cfg - strlen(cfg) - 1);
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct dnn_network *shapes = NULL;
    struct dz_stream_fit whole, from1;
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    assert_int_equal(dz_shapes_create(&m, 1, 0, &shapes, &err), 0);
    const size_t last = shapes->n - 1;
    assert_int_equal(dz_stream_plan(&m, shapes, 0, last, 1, false, SIZE_MAX, 0, &whole, &err), 0);
    assert_int_equal(dz_stream_plan(&m, shapes, 1, last, 1, false, SIZE_MAX, 0, &from1, &err), 0);
    /* the TA: the tail from layer 1 without any working buffer */
    const size_t capacity = from1.need - from1.chunk_bytes;
    struct dz_stream_fit fit;
    assert_int_equal(dz_stream_plan(&m, shapes, 0, last, 1, false, capacity, 0, &fit, &err), 0);
    assert_int_not_equal(dz_stream_plan(&m, shapes, 1, last, 1, false, capacity, 0, &fit, &err), 0);
    dz_shapes_free(shapes);
    dk_model_free(&m);

    snprintf(out, sizeof out, "%s/alexnet.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' tee plan '%s' -ta_data_size %zu > '%s' 2>&1", bin, cfg,
             capacity, out);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    size_t start = SIZE_MAX;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "streamed (inference, ", 21) == 0 &&
            sscanf(line, "streamed (inference, -pp_start %zu", &start) != 1)
            start = SIZE_MAX;
    fclose(f);
    if (start != 0)
        fail_msg("tee plan with TA_DATA_SIZE %zu: the longest streamed tail starts at %zu, "
                 "not 0",
                 capacity, start);
}

/* ------------------------------------------------ one pass versus the engine */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static unsigned rnd(unsigned n)
{
    return (unsigned)(test_rng_next(&rng_state) % n);
}

/* A random network of n layers that keeps its spatial size (so routes and shortcuts
 * line up), with losses at the end or, now and then, in the middle. */
static void random_cfg(char *buf, size_t size, size_t n)
{
    int used = snprintf(buf, size, "[net]\nbatch=%u\nheight=%u\nwidth=%u\nchannels=%u\n",
                        1 + rnd(4), 1 + rnd(6), 1 + rnd(6), 1 + rnd(3));
    for (size_t i = 0; i < n; i++) {
        const unsigned kind = i + 1 == n ? 7 + rnd(2) : rnd(i ? 9 : 3);
        char layer[160];
        switch (kind) {
        case 0:
            snprintf(layer, sizeof layer,
                     "[convolutional]\nfilters=%u\nsize=3\npad=1\nbatch_normalize=%u\n", 1 + rnd(6),
                     rnd(2));
            break;
        case 1:
            snprintf(layer, sizeof layer, "[maxpool]\nsize=2\nstride=1\n");
            break;
        case 2:
            snprintf(layer, sizeof layer, "[dropout]\nprobability=.25\n");
            break;
        case 3:
            snprintf(layer, sizeof layer, "[route]\nlayers=-%u\n", 1 + rnd((unsigned)i));
            break;
        case 4:
            snprintf(layer, sizeof layer, "[route]\nlayers=-1,-%u\n", 1 + rnd((unsigned)i));
            break;
        case 5:
            snprintf(layer, sizeof layer, "[shortcut]\nfrom=-%u\n", 1 + rnd((unsigned)i));
            break;
        case 6:
            snprintf(layer, sizeof layer, "[batchnorm]\n");
            break;
        case 7:
            snprintf(layer, sizeof layer, "[softmax]\n");
            break;
        default:
            snprintf(layer, sizeof layer, "[cost]\n");
            break;
        }
        used += snprintf(buf + used, size - (size_t)used, "%s", layer);
    }
}

/* What the per-range functions say about [a, b]; SIZE_MAX when it is not a partition. */
static size_t slow_need(const struct dk_model *m, const struct dnn_network *s, int a, int b,
                        int batch, bool training)
{
    struct dk_error err;
    size_t need = 0;
    if (dz_partition_check(s, a, b, &err) != 0)
        return SIZE_MAX;
    assert_int_equal(dz_segment_need(m, s, (size_t)a, (size_t)b, batch, training, &need, &err), 0);
    return need;
}

/* dz_print_plan as the per-range functions would print it. */
static void slow_plan(FILE *f, const struct dk_model *m, const struct dnn_network *s, int batch,
                      bool training, size_t cap, const struct dz_fit *fit)
{
    const int n = (int)s->n;
    struct dk_error err;
    char advice[512];
    fprintf(f, "secure memory at batch %d for %s; TA_DATA_SIZE = %zu bytes\n", batch,
            training ? "training" : "inference", cap);
    struct dnn_net_config cfg = m->net;
    struct dnn_plan w;
    cfg.batch = batch;
    assert_int_equal(dnn_plan_build(&w, &cfg, m->specs, m->n, training), DNN_OK);
    fprintf(f,
            "whole network: %zu parameters (%zu bytes), activations %zu bytes (%zu in two "
            "shared buffers), scratch %zu, training buffers %zu, workspace %zu; engine %zu "
            "bytes\n",
            w.param_floats, w.param_bytes, w.activation_bytes,
            w.shared_bytes[0] + w.shared_bytes[1], w.scratch_bytes, w.train_bytes,
            w.workspace_bytes, w.bytes);
    dnn_plan_free(&w);
    fprintf(f,
            "layer  type              output       params    layer bytes   layers i..%d bytes  "
            "fits\n",
            n - 1);
    for (int i = 0; i < n; i++) {
        const struct dnn_layer *l = &s->layers[i];
        size_t own = 0;
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out_w, l->out_h, l->out_c);
        assert_int_equal(dz_layer_need(m, s, (size_t)i, batch, training, &own, &err), 0);
        const size_t tail = slow_need(m, s, i, n - 1, batch, training);
        const unsigned long long params = (unsigned long long)dz_layer_param_floats(l);
        if (tail != SIZE_MAX)
            fprintf(f, "%5d  %-10s %14s %12llu %14zu %20zu  %s\n", i, l->ops->name, shape, params,
                    own, tail, tail <= cap ? "yes" : "no");
        else
            fprintf(f, "%5d  %-10s %14s %12llu %14zu %20s  %s\n", i, l->ops->name, shape, params,
                    own, "-", "not a valid partition");
    }
    dz_fit_describe(fit, s->n, advice, sizeof advice);
    fprintf(f, "%s\n", advice);
}

/* The search as a brute force over every range. */
static void brute_fit(const struct dk_model *m, const struct dnn_network *s, int batch,
                      bool training, size_t cap, struct dz_fit *fit)
{
    const int n = (int)s->n;
    fit->tail_first = fit->long_first = fit->long_last = -1;
    for (int a = n - 1; a >= 0; a--)
        if (slow_need(m, s, a, n - 1, batch, training) <= cap)
            fit->tail_first = a;
    for (int len = n; len >= 1 && fit->long_first < 0; len--)
        for (int a = 0; a + len <= n; a++)
            if (slow_need(m, s, a, a + len - 1, batch, training) <= cap) {
                fit->long_first = a;
                fit->long_last = a + len - 1;
                break;
            }
}

static char *read_stream(FILE *f)
{
    assert_int_equal(fflush(f), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    char *text = calloc((size_t)len + 1, 1);
    assert_non_null(text);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    return text;
}

static void test_one_pass_equals_engine(void **state)
{
    (void)state;
    char cfg_text[8192];
    size_t compared = 0;
    /* Fewer rounds under the sanitizers (DNN_TEST_QUICK), where each costs ten times more. */
    const int rounds = getenv("DNN_TEST_QUICK") ? 100 : 300;
    for (int round = 0; round < rounds; round++) {
        const size_t n = 1 + rnd(12);
        random_cfg(cfg_text, sizeof cfg_text, n);
        struct dk_cfg *cfg = NULL;
        struct dk_model m = {0};
        struct dnn_network *s = NULL;
        struct dk_error err;
        assert_int_equal(
            dk_cfg_read_mem("random.cfg", cfg_text, strlen(cfg_text), false, &cfg, &err), 0);
        const int parsed = dk_parse_network_cfg(cfg, &m, &err);
        dk_cfg_free(cfg);
        if (parsed != 0)
            continue;
        const int batch = 1 + (int)rnd(3);
        if (dz_shapes_create(&m, batch, 0, &s, &err) != 0) {
            dk_model_free(&m); /* shapes that do not line up: not a network */
            continue;
        }
        for (int t = 0; t < 2; t++) {
            const bool training = t == 1;
            size_t whole = slow_need(&m, s, 0, (int)n - 1, batch, training);
            if (whole == SIZE_MAX)
                whole = 1 << 20;
            /* Capacities around the interesting sizes: nothing, some, everything. */
            const size_t caps[] = {0, whole / 4, whole / 2, whole - 1, whole, SIZE_MAX / 2};
            for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
                struct dz_fit fast, slow;
                assert_int_equal(dz_fit_search(&m, s, batch, training, caps[c], &fast, &err), 0);
                brute_fit(&m, s, batch, training, caps[c], &slow);
                if (fast.tail_first != slow.tail_first || fast.long_first != slow.long_first ||
                    fast.long_last != slow.long_last)
                    fail_msg("cap %zu, %s:\n%s\nfast %d %d..%d, brute %d %d..%d", caps[c],
                             training ? "training" : "inference", cfg_text, fast.tail_first,
                             fast.long_first, fast.long_last, slow.tail_first, slow.long_first,
                             slow.long_last);
                FILE *ff = tmpfile(), *sf = tmpfile();
                assert_non_null(ff);
                assert_non_null(sf);
                assert_int_equal(dz_print_plan(ff, &m, s, batch, training, caps[c], &err), 0);
                slow_plan(sf, &m, s, batch, training, caps[c], &slow);
                char *a = read_stream(ff), *b = read_stream(sf);
                if (strcmp(a, b) != 0)
                    fail_msg("%s\none pass:\n%s\nper range:\n%s", cfg_text, a, b);
                free(a);
                free(b);
                fclose(ff);
                fclose(sf);
                compared++;
            }
        }
        dz_shapes_free(s);
        dk_model_free(&m);
    }
    /* Most random networks must have been real networks, or this compared nothing. */
    assert_true(compared > (size_t)rounds * 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_of_200k_layers_completes),
        cmocka_unit_test(test_layer_limit),
        cmocka_unit_test(test_one_pass_equals_engine),
        cmocka_unit_test(test_streamed_training_crossing),
        cmocka_unit_test(test_longest_streamed_tail),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
