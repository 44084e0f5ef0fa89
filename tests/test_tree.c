/*
 * test_tree.c - darknet's hierarchical softmax ([softmax] tree=): the tree file reader,
 * the engine's per-group softmax, its masked cross-entropy and gradient, darknet's
 * hierarchy_predictions and fill_hierarchy, the cfg key, and a tree's way over the wire
 * into the TA.
 *
 * The fixture tree, written by each test that needs it: two roots with three children each.
 *   0 animal -1   1 plant -1   2 dog 0   3 cat 0   4 bird 0   5 tree 1   6 flower 1   7 grass 1
 * Groups (runs of one parent): {animal, plant}, {dog, cat, bird}, {tree, flower, grass}.
 * test_known_answer runs `darknetp classifier predict` on a tiny network over it and expects
 * the top-5 lines pjreddie's darknet printed for the same files.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "darknet/parse_network.h"
#include "darknet/tree.h"
#include "darknet/user_file.h"
#include "dnn/dnn.h"
#include "host/partition.h"
#include "ta/include/dz_wire.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/gradcheck.h"
#include "tests/helpers/tmpdir.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char fixture[] = "animal -1\nplant -1\ndog 0\ncat 0\nbird 0\n"
                              "tree 1\nflower 1\ngrass 1\n";
enum { CLASSES = 8 };
static const int fixture_sizes[] = {2, 3, 3};

static const char *write_file(void **state, const char *name, const char *text)
{
    static char path[256];
    const struct tmp *t = *state;
    assert_int_equal(write_text_file(t->dir, name, text, path, sizeof path), 0);
    return path;
}

/* ------------------------------------------------------------------ reader */

static void test_read_fixture(void **state)
{
    struct dk_tree t;
    struct dk_error err = {{0}};
    assert_int_equal(dk_tree_read(write_file(state, "t.tree", fixture), &t, &err), 0);
    assert_int_equal(t.n, CLASSES);
    assert_int_equal(t.groups, 3);
    static const int offsets[] = {0, 2, 5};
    for (int g = 0; g < 3; g++) {
        assert_int_equal(t.group_size[g], fixture_sizes[g]);
        assert_int_equal(t.group_offset[g], offsets[g]);
    }
    static const int parents[CLASSES] = {-1, -1, 0, 0, 0, 1, 1, 1};
    for (int i = 0; i < CLASSES; i++) {
        assert_int_equal(t.parent[i], parents[i]);
        assert_int_equal(t.leaf[i], i >= 2);
    }
    assert_string_equal(t.name[3], "cat");
    assert_string_equal(t.name[7], "grass");
    dk_tree_free(&t);
    assert_null(t.parent);

    /* CRLF, spaces and tabs around the words, no final newline: darknet's sscanf reads them */
    assert_int_equal(
        dk_tree_read(write_file(state, "crlf.tree", " a\t-1\r\nb -1 \r\nc 1"), &t, &err), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.groups, 2);
    assert_string_equal(t.name[0], "a");
    assert_int_equal(t.parent[2], 1);
    dk_tree_free(&t);

    /* a parent whose children come in two runs: two groups, as darknet's read_tree */
    assert_int_equal(
        dk_tree_read(write_file(state, "runs.tree", "a -1\nb 0\nc -1\nd 0\n"), &t, &err), 0);
    assert_int_equal(t.groups, 4);
    dk_tree_free(&t);
}

static void expect_error(void **state, const char *name, const char *text, const char *needle)
{
    struct dk_tree t;
    memset(&t, 0xab, sizeof t);
    struct dk_error err = {{0}};
    const char *path = write_file(state, name, text);
    assert_int_equal(dk_tree_read(path, &t, &err), -1);
    assert_null(t.parent);
    assert_int_equal(t.n, 0);
    if (!strstr(err.msg, path) || !strstr(err.msg, needle))
        fail_msg("%s: expected '%s' naming the file, got '%s'", name, needle, err.msg);
    dk_tree_free(&t);
}

static void test_read_errors(void **state)
{
    expect_error(state, "empty.tree", "", ": empty tree file");
    expect_error(state, "word.tree", "a -1\nb x\n",
                 ":2: parent index 'x' of class 'b' is not a whole number >= -1");
    expect_error(state, "neg.tree", "a -1\nb -2\n", ":2: parent index '-2'");
    expect_error(state, "half.tree", "a -1\nb 0x\n", ":2: parent index '0x'");
    expect_error(state, "self.tree", "a -1\nb 1\n",
                 ":2: class 'b' has parent 1, which is not an earlier line");
    expect_error(state, "later.tree", "a 2\nb -1\nc -1\n", ":1: class 'a' has parent 2");
    expect_error(state, "one.tree", "a -1\nb\n", ":2: expected 'name parent_index', got 'b'");
    expect_error(state, "three.tree", "a -1 x\n", ":1: expected 'name parent_index'");
    expect_error(state, "blank.tree", "a -1\n\nb 0\n", ":2: expected 'name parent_index'");

    /* one line past the reader's limit */
    const size_t lines = (size_t)DK_NAMES_MAX_LINES + 1;
    char *big = malloc(lines * 5 + 1);
    assert_non_null(big);
    for (size_t i = 0; i < lines; i++)
        memcpy(big + i * 5, "a -1\n", 5);
    big[lines * 5] = '\0';
    expect_error(state, "big.tree", big, ": too many lines: 1048577, the limit is 1048576");
    free(big);

    struct dk_tree t;
    struct dk_error err = {{0}};
    assert_int_equal(dk_tree_read("/nonexistent/9k.tree", &t, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/9k.tree: cannot open"));
}

/* ------------------------------------------------------------------ engine */

static struct dnn_layer_spec tree_softmax(const int *sizes, int groups, float temperature)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_SOFTMAX,
                               .softmax_groups = 1,
                               .temperature = temperature,
                               .tree_group_size = sizes,
                               .tree_groups = groups};
    return s;
}

/* Inputs chosen so that each group's softmax is a simple fraction. */
static void test_forward_values(void **state)
{
    (void)state;
    enum { BATCH = 2 };
    struct dnn_net_config cfg = gradcheck_config(BATCH, 1, 1, CLASSES);
    const struct dnn_layer_spec s[] = {tree_softmax(fixture_sizes, 3, 1)};
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 1, true, 1), DNN_OK);
    const float l2 = logf(2), l3 = logf(3);
    const float x[BATCH * CLASSES] = {
        0,  l3, /* 1/4 3/4 */ 0, 0, l2, /* 1/4 1/4 1/2 */ 5, 5, 5, /* thirds */
        l3, 0,  /* 3/4 1/4 */ 1, 1, 1,  /* thirds */ l2,     0, l2 /* 2/5 1/5 2/5 */};
    const float want[BATCH * CLASSES] = {.25f,    .75f,    .25f, .25f, .5f,     1 / 3.f,
                                         1 / 3.f, 1 / 3.f, .75f, .25f, 1 / 3.f, 1 / 3.f,
                                         1 / 3.f, .4f,     .2f,  .4f};
    const float *p = dnn_network_predict(net, x);
    for (int i = 0; i < BATCH * CLASSES; i++)
        assert_float_equal(p[i], want[i], 1e-6);

    /* truth: image 0 is a cat, image 1 a flower, as darknet's loader fills them; the
     * group under the other root is masked (no loss, no delta) */
    struct dk_tree t;
    struct dk_error err = {{0}};
    assert_int_equal(dk_tree_read(write_file(state, "f.tree", fixture), &t, &err), 0);
    float y[BATCH * CLASSES] = {0};
    y[3] = 1;
    y[CLASSES + 6] = 1;
    dk_tree_fill_truth(&t, y);
    dk_tree_fill_truth(&t, y + CLASSES);
    dnn_network_forward(net, x, y, true);
    /* animal .25, cat .25; plant .25, flower .2 */
    const double cost = -log(.25) - log(.25) - log(.25) - log(.2);
    assert_float_equal(net->layers[0].cost, cost, 1e-5);
    const float *d = net->layers[0].delta;
    for (int i = 0; i < BATCH * CLASSES; i++) {
        const bool masked = (i >= 5 && i < 8) || (i >= CLASSES + 2 && i < CLASSES + 5);
        assert_float_equal(d[i], masked ? 0.0f : y[i] - want[i], 1e-6);
    }
    dk_tree_free(&t);
    dnn_network_free(net);
}

static void test_setup_refusals(void **state)
{
    (void)state;
    struct dnn_net_config cfg = gradcheck_config(1, 1, 1, CLASSES);
    struct dnn_network *net = NULL;
    static const int short_tree[] = {2, 3, 2}; /* 7 classes for 8 inputs */
    static const int long_tree[] = {2, 3, 4};  /* 9 */
    static const int zero_group[] = {2, 0, 6}; /* a group without classes */
    const struct dnn_layer_spec bad[] = {tree_softmax(short_tree, 3, 1),
                                         tree_softmax(long_tree, 3, 1),
                                         tree_softmax(zero_group, 3, 1), tree_softmax(NULL, 3, 1),
                                         tree_softmax(fixture_sizes, 0, 1)};
    for (size_t i = 0; i < N_OF(bad); i++)
        assert_int_equal(dnn_network_create(&net, &cfg, &bad[i], 1, false, 1), DNN_ERR_INVALID);
}

/* Cross-entropy over the unmasked elements, L = -sum t log p, in double. */
static double xent(struct dnn_network *net, const float *x, const float *t, size_t n)
{
    dnn_network_forward(net, x, t, true);
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] > 0)
            loss -= t[i] * log((double)net->layers[0].output[i]);
    }
    return loss;
}

/*
 * As darknet's plain softmax, the tree softmax passes truth - p back unchanged: in each
 * unmasked group with a truth summing to one, that is -dL/dx of the cross-entropy, and 0
 * in the masked groups (whose loss is 0 whatever x is). Temperature T scales it by T.
 */
static void tree_gradient(float temperature)
{
    enum { BATCH = 3 };
    struct dnn_net_config cfg = gradcheck_config(BATCH, 1, 1, CLASSES);
    const struct dnn_layer_spec s[] = {tree_softmax(fixture_sizes, 3, temperature)};
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 1, true, 1), DNN_OK);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 9);
    float x[BATCH * CLASSES], t[BATCH * CLASSES], dx[BATCH * CLASSES] = {0};
    for (int i = 0; i < BATCH * CLASSES; i++)
        x[i] = dnn_rng_uniform(&rng, -2, 2);
    /* image b: soft targets in groups 0 and 1 + b % 2 (summing to one), the other masked */
    for (int b = 0; b < BATCH; b++) {
        float *tb = t + b * CLASSES;
        const int open = 1 + b % 2, off[] = {0, 2, 5};
        for (int g = 0; g < 3; g++) {
            float sum = 0;
            for (int k = 0; k < fixture_sizes[g]; k++)
                sum += tb[off[g] + k] = dnn_rng_uniform(&rng, 0.1f, 1);
            for (int k = 0; k < fixture_sizes[g]; k++)
                tb[off[g] + k] = g == 0 || g == open ? tb[off[g] + k] / sum : DNN_SECRET_NUM;
        }
    }
    xent(net, x, t, BATCH * CLASSES);
    dnn_network_backward_range(net, 0, 0, x, dx);
    const float h = 1e-3f;
    double max_err = 0;
    for (int i = 0; i < BATCH * CLASSES; i++) {
        const float keep = x[i];
        x[i] = keep + h;
        const double lp = xent(net, x, t, BATCH * CLASSES);
        x[i] = keep - h;
        const double lm = xent(net, x, t, BATCH * CLASSES);
        x[i] = keep;
        const double numeric = -temperature * (lp - lm) / (2.0 * (double)h);
        const double e = fabs(dx[i] - numeric) / fmax(1.0, fabs(numeric));
        max_err = e > max_err ? e : max_err;
        if (t[i] < -1)
            assert_true(dx[i] == 0);
    }
    printf("  tree softmax x-ent temperature %g  %d derivatives, max error %.2e\n",
           (double)temperature, BATCH * CLASSES, max_err);
    assert_true(max_err < 1e-3);
    dnn_network_free(net);
}

static void test_gradient(void **state)
{
    (void)state;
    tree_gradient(1);
    tree_gradient(2);
}

/* --------------------------------------------------------- darknet's helpers */

static void test_hierarchy_predictions(void **state)
{
    struct dk_tree t;
    struct dk_error err = {{0}};
    assert_int_equal(dk_tree_read(write_file(state, "p.tree", fixture), &t, &err), 0);
    /* conditional: plant wins its group, dog wins the animals' by far */
    float p[CLASSES] = {.2f, .8f, .9f, .05f, .05f, .4f, .35f, .25f};
    dk_tree_predictions(&t, p, false);
    const float absolute[CLASSES] = {.2f, .8f, .18f, .01f, .01f, .32f, .28f, .2f};
    for (int i = 0; i < CLASSES; i++)
        assert_float_equal(p[i], absolute[i], 1e-6);
    /* predict's only_leaves: the roots drop out and the best leaf is tree, not dog */
    dk_tree_predictions(&t, (float[CLASSES]){0}, true);
    float q[CLASSES] = {.2f, .8f, .9f, .05f, .05f, .4f, .35f, .25f};
    dk_tree_predictions(&t, q, true);
    assert_true(q[0] == 0 && q[1] == 0);
    int top[4];
    dnn_top_k(q, CLASSES, 4, top);
    assert_int_equal(top[0], 5);
    assert_int_equal(top[1], 6);
    assert_int_equal(top[2], 7);
    assert_int_equal(top[3], 2);
    dk_tree_free(&t);
}

static void test_fill_truth(void **state)
{
    struct dk_tree t;
    struct dk_error err = {{0}};
    assert_int_equal(dk_tree_read(write_file(state, "y.tree", fixture), &t, &err), 0);
    float y[CLASSES] = {0, 0, 0, 0, 1, 0, 0, 0}; /* bird */
    dk_tree_fill_truth(&t, y);
    const float want[CLASSES] = {
        1, 0, 0, 0, 1, DK_TREE_UNLABELLED, DK_TREE_UNLABELLED, DK_TREE_UNLABELLED};
    for (int i = 0; i < CLASSES; i++)
        assert_true(y[i] == want[i]);
    /* a label on an inner class trains only the groups above it */
    float z[CLASSES] = {0, 1, 0, 0, 0, 0, 0, 0};
    dk_tree_fill_truth(&t, z);
    for (int i = 2; i < CLASSES; i++)
        assert_true(z[i] == DK_TREE_UNLABELLED);
    dk_tree_free(&t);
}

/* ------------------------------------------------------------- cfg and TEE */

#define NET "[net]\nheight=1\nwidth=1\nchannels=4\nbatch=1\n"

static void test_cfg_key(void **state)
{
    const struct tmp *tmp = *state;
    char tree_path[256], cfg_text[1024];
    assert_int_equal(write_text_file(tmp->dir, "c.tree", fixture, tree_path, sizeof tree_path), 0);
    snprintf(cfg_text, sizeof cfg_text,
             NET "[connected]\noutput=8\n[softmax]\ntree=%s\n[cost]\ntype=masked\n", tree_path);
    struct dk_model m;
    struct dk_error err = {{0}};
    assert_int_equal(dk_parse_network(write_file(state, "c.cfg", cfg_text), &m, &err), 0);
    assert_true(m.hierarchy);
    assert_int_equal(m.tree.n, CLASSES);
    assert_ptr_equal(m.specs[1].tree_group_size, m.tree.group_size);
    assert_int_equal(m.specs[1].tree_groups, 3);
    assert_null(m.notes); /* tree= is used, not an unknown key */

    /* the TEE holds it: a segment with or before it is fine */
    struct dnn_network *shapes = NULL;
    assert_int_equal(dz_shapes_create(&m, 1, 1, &shapes, &err), 0);
    assert_int_equal(dz_partition_check(shapes, 0, 0, &err), 0);
    assert_int_equal(dz_partition_check(shapes, 0, 2, &err), 0);
    assert_int_equal(dz_partition_check(shapes, 1, 2, &err), 0);
    dz_shapes_free(shapes);

    /* on the wire: the flag on the spec, the tree's groups in the table after the specs, and
     * the TA's decoders give back the tree's sizes */
    struct dz_wire_spec w[2];
    struct dnn_layer_spec out[2];
    char msg[DZ_WIRE_MSG_MAX];
    dz_wire_encode_spec(&m.specs[1], &w[0]);
    dz_wire_encode_spec(&m.specs[2], &w[1]);
    assert_int_equal(w[0].layer_flags, DZ_LF_TREE);
    assert_int_equal(dz_wire_tree_words(&m.specs[1], 2), 4);
    uint32_t table[4];
    int sizes[4];
    dz_wire_encode_tree(&m.specs[1], 2, table);
    assert_null(dz_wire_decode_spec(&w[0], 1, 1, &out[0], msg));
    assert_null(dz_wire_decode_spec(&w[1], 1, 2, &out[1], msg));
    assert_null(dz_wire_decode_tree(w, 2, 1, table, 4, sizes, out, msg));
    assert_int_equal(out[0].tree_groups, 3);
    assert_memory_equal(out[0].tree_group_size, m.tree.group_size, 3 * sizeof(int));
    assert_null(out[1].tree_group_size);
    dk_model_free(&m);

    /* a later [softmax] without a tree clears darknet's net->hierarchy */
    snprintf(cfg_text, sizeof cfg_text,
             NET "[connected]\noutput=8\n[softmax]\ntree=%s\n[connected]\noutput=8\n[softmax]\n",
             tree_path);
    assert_int_equal(dk_parse_network(write_file(state, "d.cfg", cfg_text), &m, &err), 0);
    assert_false(m.hierarchy);
    assert_non_null(m.specs[1].tree_group_size);
    dk_model_free(&m);

    /* a tree of another size than the layer's inputs: both numbers, at the layer */
    snprintf(cfg_text, sizeof cfg_text, NET "[connected]\noutput=6\n[softmax]\ntree=%s\n",
             tree_path);
    assert_int_equal(dk_parse_network(write_file(state, "e.cfg", cfg_text), &m, &err), 0);
    assert_int_equal(dz_shapes_create(&m, 1, 1, &shapes, &err), -1);
    assert_non_null(strstr(err.msg, "layer 1 (softmax, line 8): its tree has 8 classes but the "
                                    "layer has 6 inputs"));
    dk_model_free(&m);

    /* the tree file's own errors come with the cfg's line */
    snprintf(cfg_text, sizeof cfg_text, NET "[connected]\noutput=8\n[softmax]\ntree=%s/e.tree\n",
             tmp->dir);
    write_file(state, "e.tree", "a -1\nb 3\n");
    assert_int_equal(dk_parse_network(write_file(state, "f.cfg", cfg_text), &m, &err), -1);
    assert_non_null(strstr(err.msg, ":9: key 'tree' in [softmax]: "));
    assert_non_null(strstr(err.msg, "e.tree:2: class 'b' has parent 3"));
}

/* ------------------------------------------- a known answer from upstream darknet */

/* A tiny network over the fixture tree: conv 3x3x4, avgpool, connected 8, tree softmax. */
static const char kat_cfg[] = "[net]\nwidth=8\nheight=8\nchannels=3\nbatch=1\n"
                              "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                              "activation=leaky\n"
                              "[avgpool]\n"
                              "[connected]\noutput=8\nactivation=linear\n"
                              "[softmax]\ntree=kat.tree\n";

/* Parameter i of a tensor, from integers alone so that any C compiler writes the same
 * floats: spread over [-scale, scale). */
static float kat_param(unsigned i, float scale)
{
    return (float)((int)((i * 37u + 11u) % 101u) - 50) / 50.0f * scale;
}

/* kat.weights: darknet's header (0.2.0, seen as a 64-bit count), then conv biases and
 * weights, connected biases and weights, as darknet orders them. */
static int kat_write_weights(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const int32_t head[3] = {0, 2, 0};
    const uint64_t seen = 0;
    int ok = fwrite(head, sizeof head, 1, f) == 1 && fwrite(&seen, sizeof seen, 1, f) == 1;
    static const struct {
        unsigned count;
        float scale;
    } tensors[] = {{4, .1f}, {4 * 3 * 9, .5f}, {8, .2f}, {4 * 8, 2.0f}};
    for (size_t t = 0; t < sizeof tensors / sizeof tensors[0]; t++) {
        for (unsigned i = 0; i < tensors[t].count; i++) {
            const float v = kat_param(i + 7u * (unsigned)t, tensors[t].scale);
            ok = ok && fwrite(&v, sizeof v, 1, f) == 1;
        }
    }
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* kat.png: 8x8 RGB, a pattern of integers. */
static int kat_write_image(const char *path)
{
    unsigned char px[8 * 8 * 3];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            for (int c = 0; c < 3; c++)
                px[(y * 8 + x) * 3 + c] = (unsigned char)((x * 31 + y * 17 + c * 53) % 256);
    return stbi_write_png(path, 8, 8, 3, px, 8 * 3) ? 0 : -1;
}

/* The lines pjreddie's darknet (built from its repository, GPU=0 OPENCV=0) printed for
 * `classifier predict kat.data kat.cfg kat.weights kat.png` on these same files. Without the
 * tree it prints 21.36% cat, 17.33% grass, ... 8.92% dog: the hierarchy changes every line. */
static const char kat_upstream[] = "32.12%: cat\n15.92%: grass\n14.44%: tree\n14.23%: flower\n"
                                   "13.42%: dog\n";

static void test_known_answer(void **state)
{
    const struct tmp *t = *state;
    char path[512], cmd[2 * PATH_MAX], out[4096];
    write_file(state, "kat.tree", fixture);
    write_file(state, "kat.names", "animal\nplant\ndog\ncat\nbird\ntree\nflower\ngrass\n");
    write_file(state, "kat.data", "classes=8\nnames=kat.names\ntop=5\n");
    write_file(state, "kat.cfg", kat_cfg);
    snprintf(path, sizeof path, "%s/kat.weights", t->dir);
    assert_int_equal(kat_write_weights(path), 0);
    snprintf(path, sizeof path, "%s/kat.png", t->dir);
    assert_int_equal(kat_write_image(path), 0);
    char bin[PATH_MAX];
    assert_non_null(realpath(darknetp_path(), bin));
    /* tree=kat.tree is relative: darknet reads it from the working directory */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict kat.data kat.cfg kat.weights kat.png "
             "2>/dev/null",
             t->dir, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_string_equal(out, kat_upstream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_fixture, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_read_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_forward_values, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_setup_refusals),
        cmocka_unit_test(test_gradient),
        cmocka_unit_test_setup_teardown(test_hierarchy_predictions, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_fill_truth, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_key, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_known_answer, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
