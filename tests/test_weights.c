/*
 * test_weights.c - darknet .weights files (darknet/weights.c): the upstream
 * fixture loads with nothing left over and saves back byte for byte; old and
 * transposed headers load; truncated and oversized files are refused without
 * touching the network; saving is atomic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "tests/helpers/fixtures.h"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[64];

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/dz-test-weights-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes every file and empty folder the tests left in tmpdir. */
static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d)
        return -1;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
    return rmdir(tmpdir);
}

static const char *tmp_path(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", tmpdir, name);
    return p;
}

/* Files in tmpdir whose name contains ".tmp-" (leftovers of a save). */
static int count_temporaries(void)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    unsigned char *b = malloc((size_t)len + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

static struct dnn_network *make_net(const char *cfg_text)
{
    struct dk_cfg *cfg = NULL;
    struct dk_model m;
    struct dk_error err = {{0}};
    if (dk_cfg_read_mem("test.cfg", cfg_text, strlen(cfg_text), false, &cfg, &err) != 0 ||
        dk_parse_network_cfg(cfg, &m, &err) != 0)
        fail_msg("%s", err.msg);
    dk_cfg_free(cfg);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &m.net, m.specs, m.n, false, 7), DNN_OK);
    dk_model_free(&m);
    return net;
}

static size_t layer_floats(const struct dnn_layer *l)
{
    size_t n = 0;
    for (size_t j = 0; j < l->n_params; j++)
        n += l->params[j].count;
    return n;
}

static size_t net_floats(const struct dnn_network *net, size_t first, size_t last)
{
    size_t n = 0;
    for (size_t i = first; i <= last; i++)
        n += layer_floats(&net->layers[i]);
    return n;
}

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void putf(unsigned char *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(b, u);
}

/* The k-th float of a generated file: distinct, exactly representable. */
static float gen(size_t k)
{
    return (float)k * 0.25f - 100.0f;
}

/*
 * A weights file: header (major, minor, revision, seen as 4 or 8 bytes) then
 * `floats` generated values. Returns the buffer and its length.
 */
static unsigned char *make_file(int32_t major, int32_t minor, uint64_t seen, bool seen64,
                                size_t floats, size_t *len)
{
    size_t hdr = seen64 ? 20 : 16;
    *len = hdr + 4 * floats;
    unsigned char *b = malloc(*len + 64); /* room for tests that append */
    assert_non_null(b);
    put32(b, (uint32_t)major);
    put32(b + 4, (uint32_t)minor);
    put32(b + 8, 0);
    put32(b + 12, (uint32_t)seen);
    if (seen64)
        put32(b + 16, (uint32_t)(seen >> 32));
    for (size_t k = 0; k < floats; k++)
        putf(b + hdr + 4 * k, gen(k));
    return b;
}

/* Every parameter value of the network, in file order. */
static float *snapshot(const struct dnn_network *net)
{
    size_t n = net_floats(net, 0, net->n - 1);
    float *s = malloc((n + 1) * sizeof *s);
    assert_non_null(s);
    size_t k = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            memcpy(s + k, l->params[j].value, l->params[j].count * sizeof *s);
            k += l->params[j].count;
        }
    }
    return s;
}

static void assert_unchanged(const struct dnn_network *net, const float *before)
{
    float *now = snapshot(net);
    size_t n = net_floats(net, 0, net->n - 1);
    assert_memory_equal(now, before, n * sizeof *now);
    free(now);
}

/* Checks that layers [first, last] hold the generated sequence starting at k0. */
static void assert_generated(const struct dnn_network *net, size_t first, size_t last, size_t k0)
{
    size_t k = k0;
    for (size_t i = first; i <= last; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            for (size_t v = 0; v < l->params[j].count; v++, k++) {
                if (l->params[j].value[v] != gen(k))
                    fail_msg("layer %zu %s[%zu] = %g, expected %g", i, l->params[j].name, v,
                             (double)l->params[j].value[v], (double)gen(k));
            }
        }
    }
}

/* A small network with every kind that has parameters, batch norm included. */
static const char small_cfg[] = "[net]\nheight=5\nwidth=5\nchannels=2\n"
                                "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\n"
                                "activation=leaky\n"
                                "[convolutional]\nfilters=2\nsize=1\n"
                                "[maxpool]\nsize=2\nstride=2\n"
                                "[connected]\noutput=4\nbatch_normalize=1\n"
                                "[batchnorm]\n"
                                "[connected]\noutput=3\nactivation=linear\n"
                                "[softmax]\n";

/* ------------------------------------------------------------------ tests */

static void test_param_order_is_darknets(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    static const char *const conv_bn[] = {"biases", "scales", "rolling_mean", "rolling_variance",
                                          "weights"};
    static const char *const conv[] = {"biases", "weights"};
    static const char *const conn_bn[] = {"biases", "weights", "scales", "rolling_mean",
                                          "rolling_variance"};
    static const char *const bn[] = {"scales", "rolling_mean", "rolling_variance"};
    struct {
        size_t layer;
        const char *const *names;
        size_t n;
    } want[] = {{0, conv_bn, 5}, {1, conv, 2}, {2, NULL, 0},
                {3, conn_bn, 5}, {4, bn, 3},   {5, conv, 2}};
    for (size_t t = 0; t < sizeof want / sizeof want[0]; t++) {
        const struct dnn_layer *l = &net->layers[want[t].layer];
        assert_int_equal(l->n_params, want[t].n);
        for (size_t j = 0; j < want[t].n; j++)
            assert_string_equal(l->params[j].name, want[t].names[j]);
    }
    /* conv 0: 3 filters of 2x3x3; maxpool 2/2 with darknet's padding 1 gives 3x3x2,
     * so connected 3 has 4 outputs of 18 inputs */
    assert_int_equal(net->layers[0].params[4].count, 3 * 2 * 3 * 3);
    assert_int_equal(net->layers[3].params[1].count, 4 * 18);
    dnn_network_free(net);
}

static void test_upstream_lenet_roundtrip(void **state)
{
    (void)state;
    char dir[4096], cfg_path[8192], w_path[8192];
    fixture_dir("darknet-mnist-lenet", dir, sizeof dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/mnist_lenet.cfg", dir);
    snprintf(w_path, sizeof w_path, "%s/mnist_lenet.weights", dir);
    struct dk_model m;
    struct dk_error err = {{0}};
    if (dk_parse_network(cfg_path, &m, &err) != 0)
        fail_msg("%s", err.msg);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &m.net, m.specs, m.n, false, 1), DNN_OK);
    dk_model_free(&m);

    size_t len = 0;
    unsigned char *orig = read_bytes(w_path, &len);
    assert_int_equal(len, 191124);
    /* Exactly the file: header plus every parameter, zero bytes left over. */
    assert_int_equal(20 + 4 * net_floats(net, 0, net->n - 1), len);
    if (dk_weights_load_all(net, w_path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(net->seen, 0x36ef00);
    float b0;
    uint32_t u = (uint32_t)orig[20] | (uint32_t)orig[21] << 8 | (uint32_t)orig[22] << 16 |
                 (uint32_t)orig[23] << 24;
    memcpy(&b0, &u, 4);
    assert_string_equal(net->layers[0].params[0].name, "biases");
    assert_true(net->layers[0].params[0].value[0] == b0);

    const char *out = tmp_path("lenet.weights");
    if (dk_weights_save(net, out, &err) != 0)
        fail_msg("%s", err.msg);
    size_t len2 = 0;
    unsigned char *copy = read_bytes(out, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(copy, orig, len);
    assert_int_equal(count_temporaries(), 0);
    free(copy);
    free(orig);
    dnn_network_free(net);
}

static void test_load_values_and_roundtrip(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    size_t floats = net_floats(net, 0, net->n - 1);
    size_t len = 0;
    unsigned char *file = make_file(0, 2, 0x1122334455ULL, true, floats, &len);
    const char *path = tmp_path("small.weights");
    write_bytes(path, file, len);
    struct dk_error err = {{0}};
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_generated(net, 0, net->n - 1, 0);
    assert_int_equal(net->seen, 0x1122334455ULL);

    const char *out = tmp_path("small-saved.weights");
    if (dk_weights_save(net, out, &err) != 0)
        fail_msg("%s", err.msg);
    size_t len2 = 0;
    unsigned char *saved = read_bytes(out, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(saved, file, len);
    free(saved);
    free(file);
    dnn_network_free(net);
}

/*
 * darknet's dontload and dontloadscales: the file lacks the layer's parameters, or the
 * batch-normalization triple of a convolutional or connected layer (not of [batchnorm]),
 * and those keep their initial values; the next bytes are the next parameter's.
 */
static void test_dontload(void **state)
{
    (void)state;
    static const char cfg[] = "[net]\nheight=5\nwidth=5\nchannels=2\n"
                              "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\n"
                              "activation=leaky\ndontloadscales=1\n"
                              "[convolutional]\nfilters=2\nsize=1\ndontload=1\n"
                              "[maxpool]\nsize=2\nstride=2\n"
                              "[connected]\noutput=4\nbatch_normalize=1\ndontloadscales=1\n"
                              "[batchnorm]\ndontloadscales=1\n"
                              "[connected]\noutput=3\nactivation=linear\n"
                              "[softmax]\n";
    struct dnn_network *net = make_net(cfg);
    float *before = snapshot(net);
    /* what the file holds: everything but layer 1 and the triples of layers 0 and 3
     * (convolutional: biases, triple, weights; connected: biases, weights, triple) */
    size_t in_file = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        const size_t want = i == 1   ? 0
                            : i == 0 ? l->params[0].count + l->params[4].count
                            : i == 3 ? l->params[0].count + l->params[1].count
                                     : layer_floats(l);
        assert_int_equal(dk_weights_file_floats(l), want);
        in_file += want;
    }
    assert_true(in_file < net_floats(net, 0, net->n - 1));
    size_t len = 0;
    unsigned char *file = make_file(0, 2, 5, true, in_file, &len);
    const char *path = tmp_path("dontload.weights");
    write_bytes(path, file, len);
    struct dk_error err = {{0}};
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    size_t k = 0, at = 0;
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            const struct dnn_param *p = &l->params[j];
            const bool read = dk_weights_param_in_file(l, j);
            for (size_t v = 0; v < p->count; v++, at++) {
                const float want = read ? gen(k++) : before[at];
                if (p->value[v] != want)
                    fail_msg("layer %zu %s[%zu] = %g, expected %g", i, p->name, v,
                             (double)p->value[v], (double)want);
            }
        }
    }
    assert_int_equal(k, in_file);
    /* the scales kept their initial 1, the batchnorm layer read its own */
    assert_true(net->layers[0].bn.scales[0] == 1.0f && net->layers[3].bn.scales[3] == 1.0f);
    assert_true(dk_weights_param_in_file(&net->layers[4], 1));
    free(file);

    /* a file with every layer's parameters is not what this cfg reads */
    file = make_file(0, 2, 5, true, net_floats(net, 0, net->n - 1), &len);
    write_bytes(path, file, len);
    assert_int_equal(dk_weights_load_all(net, path, &err), -1);
    assert_contains(err.msg, "trailing bytes");
    free(file);
    free(before);
    dnn_network_free(net);
}

static void test_truncated_refused(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    size_t floats = net_floats(net, 0, net->n - 1);
    size_t len = 0;
    unsigned char *file = make_file(0, 2, 99, true, floats, &len);
    net->seen = 5;
    float *before = snapshot(net);
    const char *path = tmp_path("truncated.weights");
    struct dk_error err = {{0}};
    char want[256];

    /* one float short, one layer short, header only, a broken header */
    const size_t cuts[] = {4, 4 * layer_floats(&net->layers[net->n - 2]), 4 * floats,
                           4 * floats + 10};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        size_t have = len - cuts[c];
        write_bytes(path, file, have);
        assert_int_equal(dk_weights_load_all(net, path, &err), -1);
        assert_contains(err.msg, path);
        assert_contains(err.msg, "truncated");
        if (have >= 20) {
            snprintf(want, sizeof want, "need %zu bytes", len);
            assert_contains(err.msg, want);
        }
        snprintf(want, sizeof want, "the file has %zu bytes", have);
        assert_contains(err.msg, want);
        assert_unchanged(net, before);
        assert_int_equal(net->seen, 5);
    }
    free(before);
    free(file);
    dnn_network_free(net);
}

/* darknet's partial files: they end at a layer boundary, and say where. */
static void test_partial_prefix(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    const size_t floats = net_floats(net, 0, net->n - 1);
    const size_t two = net_floats(net, 0, 1); /* the two convolutions */
    size_t len = 0, held = 99;
    unsigned char *file = make_file(0, 2, 0, true, floats, &len);
    const char *path = tmp_path("partial.weights");
    struct dk_weights_header h;
    struct dk_error err = {{0}};

    /* ends after layer 1: layers 0, 1 and the parameter-free maxpool 2 are held */
    write_bytes(path, file, 20 + 4 * two);
    assert_int_equal(dk_weights_read_header(path, &h, &err), 0);
    assert_int_equal(dk_weights_check_prefix(net, path, &h, &held, &err), 0);
    assert_int_equal(held, 3);
    /* the whole file, a bare header */
    write_bytes(path, file, len);
    assert_int_equal(dk_weights_read_header(path, &h, &err), 0);
    assert_int_equal(dk_weights_check_prefix(net, path, &h, &held, &err), 0);
    assert_int_equal(held, net->n);
    write_bytes(path, file, 20);
    assert_int_equal(dk_weights_read_header(path, &h, &err), 0);
    assert_int_equal(dk_weights_check_prefix(net, path, &h, &held, &err), 0);
    assert_int_equal(held, 0);
    /* inside a layer, or past the last one: refused with the sizes */
    write_bytes(path, file, 20 + 4 * two + 4);
    assert_int_equal(dk_weights_read_header(path, &h, &err), 0);
    assert_int_equal(dk_weights_check_prefix(net, path, &h, &held, &err), -1);
    assert_contains(err.msg, "bytes into the weights of layer 3");
    write_bytes(path, file, len + 4); /* make_file leaves room to append */
    assert_int_equal(dk_weights_read_header(path, &h, &err), 0);
    assert_int_equal(dk_weights_check_prefix(net, path, &h, &held, &err), -1);
    assert_contains(err.msg, "4 trailing bytes");

    /* Loading the first layers, then drawing the rest again, gives a new network's values
     * for them (same seed, same streams). */
    struct dnn_network *fresh = make_net(small_cfg);
    float *want = snapshot(fresh);
    write_bytes(path, file, 20 + 4 * two);
    assert_int_equal(dk_weights_read_header(path, &h, &err), 0);
    assert_int_equal(dk_weights_load_first(net, path, &h, 0, 2, &err), 0);
    assert_generated(net, 0, 1, 0);
    for (size_t i = 2; i < net->n; i++) /* spoil them, as training would */
        for (size_t j = 0; j < net->layers[i].n_params; j++)
            for (size_t v = 0; v < net->layers[i].params[j].count; v++)
                net->layers[i].params[j].value[v] = 3.0f;
    dnn_network_init_params(net, 2);
    float *got = snapshot(net);
    assert_memory_equal(got + two, want + two, (floats - two) * sizeof(float));
    assert_generated(net, 0, 1, 0);
    free(got);
    free(want);
    dnn_network_free(fresh);
    free(file);
    dnn_network_free(net);
}

static void test_oversized_refused(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    size_t floats = net_floats(net, 0, net->n - 1);
    size_t len = 0;
    unsigned char *file = make_file(0, 2, 99, true, floats + 3, &len);
    float *before = snapshot(net);
    const char *path = tmp_path("oversized.weights");
    struct dk_error err = {{0}};

    write_bytes(path, file, len - 12 + 4); /* one extra float */
    assert_int_equal(dk_weights_load_all(net, path, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "has 4 trailing bytes");
    assert_contains(err.msg, "wrong cfg?");
    assert_unchanged(net, before);

    write_bytes(path, file, len); /* three extra floats */
    assert_int_equal(dk_weights_load_all(net, path, &err), -1);
    assert_contains(err.msg, "has 12 trailing bytes");
    assert_unchanged(net, before);

    /* Weights of a different cfg that end inside one of this network's layers. */
    struct dnn_network *other = make_net("[net]\nheight=5\nwidth=5\nchannels=2\n"
                                         "[convolutional]\nfilters=3\nsize=3\npad=1\n"
                                         "batch_normalize=1\n[convolutional]\nfilters=3\n"
                                         "size=1\n");
    size_t olen = 0;
    unsigned char *ofile = make_file(0, 2, 0, true, net_floats(other, 0, other->n - 1), &olen);
    write_bytes(path, ofile, olen);
    assert_int_equal(dk_weights_load_all(net, path, &err), -1);
    assert_contains(err.msg, "truncated");
    assert_contains(err.msg, "it ends 16 bytes into the weights of layer 3");
    assert_unchanged(net, before);
    /* ... and that network refuses the small file too. */
    write_bytes(path, file, len - 12);
    assert_int_equal(dk_weights_load_all(other, path, &err), -1);
    assert_contains(err.msg, "trailing bytes");

    free(ofile);
    dnn_network_free(other);
    free(before);
    free(file);
    dnn_network_free(net);
}

static void test_old_header_32bit_seen(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    size_t floats = net_floats(net, 0, net->n - 1);
    size_t len = 0;
    unsigned char *file = make_file(0, 1, 1234, false, floats, &len);
    const char *path = tmp_path("v01.weights");
    write_bytes(path, file, len);
    struct dk_error err = {{0}};
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(net->seen, 1234);
    assert_generated(net, 0, net->n - 1, 0);

    /* Saved back as format 0.2: a 20-byte header, then the same floats. */
    const char *out = tmp_path("v02.weights");
    if (dk_weights_save(net, out, &err) != 0)
        fail_msg("%s", err.msg);
    size_t len2 = 0;
    unsigned char *saved = read_bytes(out, &len2);
    assert_int_equal(len2, len + 4);
    static const unsigned char hdr[20] = {0, 0, 0,    0,    2, 0, 0, 0, 0, 0,
                                          0, 0, 0xd2, 0x04, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(saved, hdr, 20);
    assert_memory_equal(saved + 20, file + 16, len - 16);
    free(saved);

    /* Format 0.1 with a 64-bit-sized file is one int32 too long. */
    free(file);
    file = make_file(0, 1, 1, true, floats, &len);
    write_bytes(path, file, len);
    assert_int_equal(dk_weights_load_all(net, path, &err), -1);
    assert_contains(err.msg, "has 4 trailing bytes");
    free(file);
    dnn_network_free(net);
}

static void test_transposed_connected(void **state)
{
    (void)state;
    struct dnn_network *net = make_net("[net]\nheight=1\nwidth=1\nchannels=3\n"
                                       "[connected]\noutput=2\nactivation=linear\n");
    const struct dnn_layer *l = &net->layers[0];
    assert_int_equal(l->inputs, 3);
    assert_int_equal(l->outputs, 2);
    /* minor > 1000: transposed, and `seen` is an int32 */
    size_t len = 0;
    unsigned char *file = make_file(0, 1001, 77, false, 2 + 6, &len);
    const char *path = tmp_path("transposed.weights");
    write_bytes(path, file, len);
    struct dk_error err = {{0}};
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(net->seen, 77);
    assert_string_equal(l->params[0].name, "biases");
    assert_string_equal(l->params[1].name, "weights");
    assert_true(l->params[0].value[0] == gen(0) && l->params[0].value[1] == gen(1));
    /* The file holds (inputs, outputs): entry i*2+o belongs at o*3+i. */
    for (size_t i = 0; i < 3; i++) {
        for (size_t o = 0; o < 2; o++)
            assert_true(l->params[1].value[o * 3 + i] == gen(2 + i * 2 + o));
    }
    free(file);

    /* major > 1000 transposes too. */
    file = make_file(1001, 0, 3, false, 2 + 6, &len);
    write_bytes(path, file, len);
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(l->params[1].value[1 * 3 + 2] == gen(2 + 2 * 2 + 1));
    free(file);

    /* A plain 0.2 file is not transposed. */
    file = make_file(0, 2, 3, true, 2 + 6, &len);
    write_bytes(path, file, len);
    if (dk_weights_load_all(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_generated(net, 0, 0, 0);
    free(file);
    dnn_network_free(net);
}

static void test_layer_ranges(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    size_t n = net->n;
    size_t floats = net_floats(net, 0, n - 1);
    size_t len = 0;
    unsigned char *file = make_file(0, 2, 42, true, floats, &len);
    const char *path = tmp_path("range.weights");
    write_bytes(path, file, len);
    struct dk_error err = {{0}};

    /* Layers before `first` are skipped in the file and untouched in the net. */
    float *before = snapshot(net);
    if (dk_weights_load(net, path, 3, n - 1, &err) != 0)
        fail_msg("%s", err.msg);
    size_t head = net_floats(net, 0, 2);
    float *now = snapshot(net);
    assert_memory_equal(now, before, head * sizeof *now);
    assert_generated(net, 3, n - 1, head);
    assert_int_equal(net->seen, 42);
    free(now);

    /* Only layer 1 out of the full file. */
    if (dk_weights_load(net, path, 1, 1, &err) != 0)
        fail_msg("%s", err.msg);
    assert_generated(net, 1, 1, net_floats(net, 0, 0));

    /* A darknet "partial" file holding layers 0..3 only serves ranges up to 3. */
    size_t plen = 20 + 4 * net_floats(net, 0, 3);
    write_bytes(path, file, plen);
    if (dk_weights_load(net, path, 0, 3, &err) != 0)
        fail_msg("%s", err.msg);
    assert_generated(net, 0, 3, 0);
    free(before);
    before = snapshot(net);
    assert_int_equal(dk_weights_load(net, path, 0, 4, &err), -1);
    assert_contains(err.msg, "truncated: layers 0..4");
    assert_contains(err.msg, "it holds the weights of layers 0..3");
    assert_int_equal(dk_weights_load_all(net, path, &err), -1);
    assert_contains(err.msg, "truncated");
    assert_unchanged(net, before);

    /* A file that ends inside a layer past the range is still refused. */
    write_bytes(path, file, plen + 4);
    assert_int_equal(dk_weights_load(net, path, 0, 3, &err), -1);
    assert_contains(err.msg, "not a whole number of layers");
    assert_contains(err.msg, "it ends 4 bytes into the weights of layer 4");
    assert_unchanged(net, before);

    /* Ranges outside the network. */
    assert_int_equal(dk_weights_load(net, path, 2, 1, &err), -1);
    assert_contains(err.msg, "cannot load layers 2..1");
    assert_int_equal(dk_weights_load(net, path, 0, n, &err), -1);
    assert_contains(err.msg, "of a network of");
    free(before);
    free(file);
    dnn_network_free(net);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    struct dk_error err = {{0}};
    assert_int_equal(dk_weights_load_all(net, "/nonexistent/x.weights", &err), -1);
    assert_string_equal(err.msg, "/nonexistent/x.weights: cannot open: No such file or directory");
    assert_int_equal(dk_weights_load_all(net, tmpdir, &err), -1);
    assert_contains(err.msg, "not a regular file");
    dnn_network_free(net);
}

static void test_save_is_atomic(void **state)
{
    (void)state;
    struct dnn_network *net = make_net(small_cfg);
    struct dk_error err = {{0}};
    struct stat st;

    /* A folder that does not exist: an error, and nothing is created. */
    const char *missing = tmp_path("missing/x.weights");
    assert_int_equal(dk_weights_save(net, missing, &err), -1);
    assert_contains(err.msg, missing);
    assert_int_equal(stat(tmp_path("missing"), &st), -1);
    assert_int_equal(count_temporaries(), 0);

    /* The target is a folder: rename fails, the temporary is removed. */
    const char *adir = tmp_path("adir");
    assert_int_equal(mkdir(adir, 0700), 0);
    assert_int_equal(dk_weights_save(net, adir, &err), -1);
    assert_contains(err.msg, adir);
    assert_int_equal(count_temporaries(), 0);
    assert_int_equal(stat(adir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* Saving over an existing file replaces it, keeping its permission bits. */
    const char *path = tmp_path("replace.weights");
    write_bytes(path, (const unsigned char *)"old contents", 12);
    assert_int_equal(chmod(path, 0640), 0);
    net->seen = 0x123456789ULL;
    if (dk_weights_save(net, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal((size_t)st.st_size, 20 + 4 * net_floats(net, 0, net->n - 1));
    assert_int_equal(count_temporaries(), 0);

    /* What was saved loads back into a fresh network, seen included. */
    struct dnn_network *copy = make_net(small_cfg);
    if (dk_weights_load_all(copy, path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(copy->seen, 0x123456789ULL);
    float *a = snapshot(net);
    assert_unchanged(copy, a);
    free(a);
    dnn_network_free(copy);
    dnn_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_order_is_darknets),
        cmocka_unit_test(test_upstream_lenet_roundtrip),
        cmocka_unit_test(test_load_values_and_roundtrip),
        cmocka_unit_test(test_dontload),
        cmocka_unit_test(test_truncated_refused),
        cmocka_unit_test(test_partial_prefix),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_old_header_32bit_seen),
        cmocka_unit_test(test_transposed_connected),
        cmocka_unit_test(test_layer_ranges),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_save_is_atomic),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
