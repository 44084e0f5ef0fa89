/*
 * gen_seeds.c - writes the generated part of the fuzz seed corpora (make fuzz-seeds):
 *   corpus/ta/      model blobs as darknetp's OPEN_MODEL sends them, encoded by the host's
 *                   own codec (dz_wire_encode_header/spec) from real cfgs, each followed by a
 *                   command sequence a real run makes (fuzz_ta.c's input format); training
 *                   segments that end the network also with DZ_CMD_TRAIN_STEP (*-step.bin)
 *   corpus/wire/    the same headers and specs with request and sealed policies
 *   corpus/weights/ .weights files of FUZZ_WEIGHTS_CFG: whole, partial, old format, transposed
 *   corpus/idx/     small IDX image and label files, plain and gzipped
 *   corpus/data/    .data files with their list, labels and IDX files (fuzz_data.c's format)
 *   corpus/image/   tiny PNG (gray, RGB, RGBA), JPEG, BMP and TGA images
 * The cfg corpus is the repository's cfgs, copied by hand. Deterministic: running it again
 * rewrites the same bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>
#include <zlib.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "dz_wire.h"
#include "tests/fuzz/fuzz_common.h"

static const char *root;

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A growable byte buffer. */
struct buf {
    uint8_t b[65536];
    size_t n;
};

static void add(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > sizeof b->b)
        exit(1);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void add_u8(struct buf *b, uint8_t v)
{
    add(b, &v, 1);
}

static void add_u16(struct buf *b, uint16_t v)
{
    add_u8(b, (uint8_t)v);
    add_u8(b, (uint8_t)(v >> 8));
}

static int parse(const char *cfg_path, const char *text, struct dk_model *m)
{
    struct dk_error err;
    struct dk_cfg *cfg = NULL;
    memset(m, 0, sizeof *m);
    int rc = text ? dk_cfg_read_mem(cfg_path, text, strlen(text), false, &cfg, &err) == 0 &&
                        dk_parse_network_cfg(cfg, m, &err) == 0
                  : dk_parse_network(cfg_path, m, &err) == 0;
    dk_cfg_free(cfg);
    if (!rc) {
        fprintf(stderr, "%s: %s\n", cfg_path, err.msg);
        exit(1);
    }
    return 0;
}

/* The model blob darknetp sends for layers first..last (host/tee_session.c does the same). */
static size_t model_blob(const struct dk_model *m, uint32_t first, uint32_t last, uint32_t batch,
                         bool training, enum dz_output_policy output, uint8_t *out)
{
    struct dnn_network *shapes = NULL;
    struct dnn_net_config c = m->net;
    c.batch = 1;
    if (dnn_network_create(&shapes, &c, m->specs, m->n, false, 1) != DNN_OK)
        exit(1);
    const struct dnn_layer *a = &shapes->layers[first];
    const struct dz_wire_request r = {
        .n_layers = (uint32_t)m->n,
        .first = first,
        .last = last,
        .batch = batch,
        .subdivisions = (uint32_t)m->net.subdivisions,
        .training = training,
        .in_h = (uint32_t)a->h,
        .in_w = (uint32_t)a->w,
        .in_c = (uint32_t)a->c,
        .seed = 1,
        .output = output,
        .top_k = output == DZ_OUTPUT_TOPK ? 3 : 0,
    };
    struct dz_model_header h;
    dz_wire_encode_header(&r, &m->net, &h);
    const size_t words = dz_wire_tree_words(&m->specs[first], last - first + 1);
    h.tree_words = (uint32_t)words;
    memcpy(out, &h, sizeof h);
    size_t n = sizeof h;
    for (uint32_t i = first; i <= last; i++) {
        struct dz_wire_spec w;
        dz_wire_encode_spec(&m->specs[i], &w);
        memcpy(out + n, &w, sizeof w);
        n += sizeof w;
    }
    /* the tree group table after the specs (ta/include/darknetz_ta.h) */
    uint32_t *table = calloc(words ? words : 1, sizeof *table);
    if (!table)
        exit(1);
    dz_wire_encode_tree(&m->specs[first], last - first + 1, table);
    memcpy(out + n, table, words * sizeof *table);
    n += words * sizeof *table;
    free(table);
    dnn_network_free(shapes);
    return n;
}

/* fuzz_ta.c's operation bytes. */
enum { F_TRAIN = 0x80, F_RAW = 0x40 };

static void ta_seed(const char *name, const struct dk_model *m, uint32_t first, uint32_t last,
                    uint32_t batch, bool training, enum dz_output_policy output)
{
    static uint8_t blob[65536];
    struct buf b = {.n = 0};
    const size_t len = model_blob(m, first, last, batch, training, output, blob);
    char file[128];

    add_u16(&b, (uint16_t)len);
    add(&b, blob, len);
    /* Inference: provision, predict, seal, reload the seal, predict, key, version. */
    const uint8_t infer[] = {
        DZ_CMD_LOAD_PLAIN, DZ_CMD_FORWARD,    DZ_CMD_SAVE_SEALED, DZ_CMD_LOAD_SEALED | F_TRAIN,
        DZ_CMD_FORWARD,    DZ_CMD_GET_PUBKEY, DZ_CMD_VERSION};
    /* Training: two steps with a sealed save and reload between them. */
    const uint8_t train[] = {DZ_CMD_LOAD_PLAIN,
                             DZ_CMD_FORWARD | F_TRAIN,
                             DZ_CMD_BACKWARD,
                             DZ_CMD_UPDATE,
                             DZ_CMD_SAVE_SEALED | F_TRAIN,
                             DZ_CMD_LOAD_SEALED | F_TRAIN,
                             DZ_CMD_FORWARD | F_TRAIN,
                             DZ_CMD_BACKWARD,
                             DZ_CMD_UPDATE,
                             DZ_CMD_FORWARD};
    if (training)
        add(&b, train, sizeof train);
    else
        add(&b, infer, sizeof infer);
    snprintf(file, sizeof file, "%s.bin", name);
    put("ta", file, b.b, b.n);

    /* A segment that ends the network trains in one call per step (DZ_CMD_TRAIN_STEP), as
     * darknetp does: whole steps, a sealed save and reload between them, a step without its
     * UPDATE, one refused before that UPDATE (subdivisions 1), the UPDATE, a prediction. */
    if (training && last + 1 == m->n) {
        struct buf st = {.n = 0};
        const uint8_t step[] = {DZ_CMD_LOAD_PLAIN,
                                DZ_CMD_TRAIN_STEP,
                                DZ_CMD_TRAIN_STEP,
                                DZ_CMD_SAVE_SEALED | F_TRAIN,
                                DZ_CMD_LOAD_SEALED | F_TRAIN,
                                DZ_CMD_TRAIN_STEP | F_TRAIN,
                                DZ_CMD_TRAIN_STEP,
                                DZ_CMD_UPDATE,
                                DZ_CMD_TRAIN_STEP,
                                DZ_CMD_FORWARD};
        add_u16(&st, (uint16_t)len);
        add(&st, blob, len);
        add(&st, step, sizeof step);
        snprintf(file, sizeof file, "%s-step.bin", name);
        put("ta", file, st.b, st.n);
    }

    /* The same session, then a tampered reload of its seal (one byte of the tag). */
    add_u8(&b, DZ_CMD_SAVE_SEALED);
    add_u8(&b, DZ_CMD_LOAD_SEALED | F_TRAIN | F_RAW);
    add_u16(&b, 0xfff0);
    add_u8(&b, 0x01);
    snprintf(file, sizeof file, "%s-tamper.bin", name);
    put("ta", file, b.b, b.n);

    /* wire: the header, the request's policy as both request and allowance, the specs. */
    struct buf w = {.n = 0};
    struct dz_model_header h;
    struct dz_policy p;
    memcpy(&h, blob, sizeof h);
    dz_policy_of_request(&h, &p);
    add(&w, &h, sizeof h);
    add(&w, &p, sizeof p);
    add(&w, &p, sizeof p);
    add(&w, blob + sizeof h, len - sizeof h);
    snprintf(file, sizeof file, "%s.bin", name);
    put("wire", file, w.b, w.n);
}

/* A streamed session (working buffer of 64 KiB): import every chunk, one pass, then a pass
 * whose second chunk has one byte flipped. */
static void ta_stream_seed(const char *name, const struct dk_model *m, uint32_t first,
                           uint32_t last, uint32_t n_chunks)
{
    static uint8_t blob[65536];
    struct buf b = {.n = 0};
    const size_t len = model_blob(m, first, last, 1, false, DZ_OUTPUT_TOP1, blob);
    struct dz_model_header h;
    char file[128];

    memcpy(&h, blob, sizeof h);
    h.stream_chunk_bytes = 65536;
    memcpy(blob, &h, sizeof h);
    add_u16(&b, (uint16_t)len);
    add(&b, blob, len);
    for (uint32_t k = 0; k < n_chunks; k++)
        add_u8(&b, DZ_CMD_STREAM_IMPORT);
    add_u8(&b, DZ_CMD_STREAM_BEGIN);
    for (uint32_t k = 0; k < n_chunks; k++)
        add_u8(&b, DZ_CMD_STREAM_CHUNK | F_TRAIN);
    add_u8(&b, DZ_CMD_VERSION);
    snprintf(file, sizeof file, "%s.bin", name);
    put("ta", file, b.b, b.n);

    add_u8(&b, DZ_CMD_STREAM_BEGIN);
    add_u8(&b, DZ_CMD_STREAM_CHUNK | F_TRAIN);
    add_u8(&b, DZ_CMD_STREAM_CHUNK | F_TRAIN | F_RAW);
    add_u16(&b, 200);
    add_u8(&b, 0x01);
    add_u8(&b, DZ_CMD_STREAM_CHUNK | F_TRAIN);
    snprintf(file, sizeof file, "%s-tamper.bin", name);
    put("ta", file, b.b, b.n);
}

static const char *const small_cfg =
    "[net]\nbatch=2\nsubdivisions=1\nheight=6\nwidth=6\nchannels=2\nlearning_rate=0.1\n"
    "momentum=0.9\ndecay=0.0005\npolicy=steps\nsteps=10,20\nscales=.1,.1\nmax_batches=30\n"
    "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nbatch_normalize=1\nactivation=leaky\n"
    "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=relu\n"
    "[shortcut]\nfrom=-2\nactivation=linear\n"
    "[route]\nlayers=-1,-3\n"
    "[avgpool]\n"
    "[connected]\noutput=5\nactivation=logistic\n"
    "[dropout]\nprobability=.3\n"
    "[connected]\noutput=3\nactivation=linear\n"
    "[softmax]\ngroups=1\n"
    "[cost]\ntype=sse\n";

/* The layers that came with AlexeyAB's forms: antialiasing on a strided convolution and
 * maxpool, a shortcut with two sources of other channel counts and learned per-channel
 * weights, so that the fuzzer starts from specs that use the wire's newer fields. */
static const char *const aa_cfg =
    "[net]\nbatch=2\nsubdivisions=1\nheight=8\nwidth=8\nchannels=2\nlearning_rate=0.1\n"
    "momentum=0.9\ndecay=0.0005\nmax_batches=30\n"
    "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nantialiasing=1\nbatch_normalize=1\n"
    "activation=mish\n"
    "[convolutional]\nfilters=3\nsize=1\nstride=1\nactivation=leaky\n"
    "[convolutional]\nfilters=5\nsize=3\nstride=1\npad=1\nactivation=linear\n"
    "[shortcut]\nfrom=-2,-3\nweights_type=per_channel\nweights_normalization=softmax\n"
    "activation=swish\n"
    "[maxpool]\nsize=2\nstride=2\nantialiasing=2\n"
    "[connected]\noutput=3\nactivation=linear\n"
    "[softmax]\ngroups=1\n"
    "[cost]\ntype=sse\n";

/* darknet's hierarchical softmax: two roots, and two children under the first, so two groups
 * of two; its tree file is a temporary file, read once by the parser. */
static const char *const tree_cfg_fmt =
    "[net]\nbatch=2\nsubdivisions=1\nheight=1\nwidth=1\nchannels=4\nlearning_rate=0.1\n"
    "momentum=0.9\ndecay=0.0005\nmax_batches=30\n"
    "[connected]\noutput=6\nactivation=leaky\n"
    "[connected]\noutput=4\nactivation=linear\n"
    "[softmax]\ntree=%s\n"
    "[cost]\ntype=masked\n";

/* The tree seeds: the group table after the specs. Label policies are refused for a tree
 * (the TA ranks no labels without darknet's hierarchy), so they run under scores. */
static void tree_seeds(void)
{
    char tree_path[512], text[1024];
    /* absolute: a relative tree= is read from the process's directory */
    snprintf(tree_path, sizeof tree_path, "/tmp/dz-gen-seeds-%ld.tree", (long)getpid());
    FILE *f = fopen(tree_path, "w");
    if (!f || fputs("top -1\nbottom -1\nleft 0\nright 0\n", f) < 0 || fclose(f) != 0)
        exit(1);
    snprintf(text, sizeof text, tree_cfg_fmt, tree_path);
    struct dk_model tree;
    parse("tree.cfg", text, &tree);
    remove(tree_path);
    ta_seed("tree-0-3-train", &tree, 0, 3, 2, true, DZ_OUTPUT_SCORES);
    ta_seed("tree-1-3-scores", &tree, 1, 3, 1, false, DZ_OUTPUT_SCORES);
    ta_seed("tree-2-3-top1", &tree, 2, 3, 1, false, DZ_OUTPUT_TOP1); /* refused by name */
    dk_model_free(&tree);
}

static void ta_seeds(void)
{
    struct dk_model lenet, fashion, small, aa;
    parse("tests/fixtures/darknet-mnist-lenet/mnist_lenet.cfg", NULL, &lenet);
    parse("cfg/fashion_lenet.cfg", NULL, &fashion);
    parse("small.cfg", small_cfg, &small);
    parse("aa.cfg", aa_cfg, &aa);

    ta_seed("lenet-4-10-infer", &lenet, 4, 10, 1, false, DZ_OUTPUT_TOP1);
    ta_stream_seed("lenet-4-10-stream", &lenet, 4, 10, 5);
    ta_seed("lenet-4-10-train", &lenet, 4, 10, 2, true, DZ_OUTPUT_TOP1);
    ta_seed("lenet-2-5-train", &lenet, 2, 5, 1, true, DZ_OUTPUT_TOP1);
    ta_seed("lenet-0-10-scores", &lenet, 0, 10, 1, false, DZ_OUTPUT_SCORES);
    ta_seed("fashion-4-7-train", &fashion, 4, 7, 2, true, DZ_OUTPUT_TOP1);
    ta_seed("fashion-4-7-rank", &fashion, 4, 7, 1, false, DZ_OUTPUT_RANK);
    ta_seed("small-0-9-train", &small, 0, 9, 2, true, DZ_OUTPUT_TOPK);
    ta_seed("small-4-9-train", &small, 4, 9, 2, true, DZ_OUTPUT_TOP1);
    ta_seed("small-5-7-infer", &small, 5, 7, 2, false, DZ_OUTPUT_TOPK);
    ta_seed("small-4-6-train", &small, 4, 6, 1, true, DZ_OUTPUT_TOP1);
    ta_seed("aa-0-7-train", &aa, 0, 7, 2, true, DZ_OUTPUT_TOP1);
    ta_seed("aa-0-6-infer", &aa, 0, 6, 1, false, DZ_OUTPUT_SCORES);
    ta_seed("aa-4-7-train", &aa, 4, 7, 1, true, DZ_OUTPUT_TOP1);
    tree_seeds();
    dk_model_free(&lenet);
    dk_model_free(&fashion);
    dk_model_free(&small);
    dk_model_free(&aa);

    /* No model: the commands that need none, and the ones that must refuse. */
    const uint8_t none[] = {
        0, 0, DZ_CMD_VERSION, DZ_CMD_GET_PUBKEY, DZ_CMD_FORWARD, DZ_CMD_UPDATE, DZ_CMD_SAVE_SEALED,
        12};
    put("ta", "no-model.bin", none, sizeof none);
}

static void weights_seeds(void)
{
    static const char text[] = FUZZ_WEIGHTS_CFG;
    struct dk_model m;
    struct dnn_network *net = NULL;
    struct dk_error err;
    parse("weights.cfg", text, &m);
    if (dnn_network_create(&net, &m.net, m.specs, m.n, false, 1) != DNN_OK)
        exit(1);
    net->seen = 1234;
    char path[512];
    snprintf(path, sizeof path, "%s/weights/.tmp-full", root);
    if (dk_weights_save(net, path, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    static uint8_t file[65536];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(file, 1, sizeof file, f) : 0;
    if (f)
        fclose(f);
    remove(path);
    if (n < 20)
        exit(1);
    static uint8_t seed[65537];
    /* Selector byte: layers 0..n-1 (the whole file), then 2..4 (layers skipped). */
    seed[0] = (uint8_t)(((m.n - 1) << 4) | 0);
    memcpy(seed + 1, file, n);
    put("weights", "full.bin", seed, n + 1);
    seed[0] = (uint8_t)((4 << 4) | 2);
    put("weights", "range-2-4.bin", seed, n + 1);
    /* Sealed marker revision 0x5A000000 | 1 << 12 | 3, as a sealed pair's .weights has. */
    const int32_t rev = 0x5A000000 | 1 << 12 | 3;
    memcpy(seed + 1 + 8, &rev, 4);
    put("weights", "sealed-marker.bin", seed, n + 1);
    /* Transposed (minor > 1000). */
    memcpy(seed + 1, file, n);
    const int32_t minor = 1002;
    memcpy(seed + 1 + 4, &minor, 4);
    put("weights", "transposed.bin", seed, n + 1);
    /* Format 0.1: a 32-bit seen, so the header is 16 bytes. */
    const int32_t one = 1;
    memcpy(seed + 1 + 4, &one, 4);
    memmove(seed + 1 + 16, seed + 1 + 20, n - 20);
    put("weights", "v0.1.bin", seed, n - 3);
    /* Partial: only the first layer's floats (3 filters of 3x3x2 and 3 biases). */
    memcpy(seed + 1, file, 20);
    memcpy(seed + 1 + 20, file + 20, (3 + 3 * 3 * 3 * 2) * 4);
    seed[0] = 0;
    put("weights", "partial-layer0.bin", seed, 1 + 20 + (3 + 54) * 4);
    dnn_network_free(net);
    dk_model_free(&m);
}

static size_t idx_file(uint8_t *out, int ndims, const uint32_t *dims, uint8_t fill)
{
    size_t n = 4, count = 1;
    out[0] = out[1] = 0;
    out[2] = 0x08;
    out[3] = (uint8_t)ndims;
    for (int i = 0; i < ndims; i++) {
        out[n++] = (uint8_t)(dims[i] >> 24);
        out[n++] = (uint8_t)(dims[i] >> 16);
        out[n++] = (uint8_t)(dims[i] >> 8);
        out[n++] = (uint8_t)dims[i];
        count *= dims[i];
    }
    for (size_t i = 0; i < count; i++)
        out[n++] = (uint8_t)(fill + i * 29);
    return n;
}

static void put_gz(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    gzFile g = gzopen(path, "wb9");
    if (!g || gzwrite(g, data, (unsigned)len) != (int)len || gzclose(g) != Z_OK)
        exit(1);
}

static void idx_and_data_seeds(void)
{
    uint8_t images[256], labels[16];
    const uint32_t idims[3] = {3, 4, 4}, ldims[1] = {3};
    size_t ni = idx_file(images, 3, idims, 7);
    size_t nl = idx_file(labels, 1, ldims, 0);
    for (size_t i = 0; i < 3; i++)
        labels[8 + i] = (uint8_t)i;
    put("idx", "images.idx", images, ni);
    put("idx", "labels.idx", labels, nl);
    put_gz("idx", "images.idx.gz", images, ni);

    struct buf b = {.n = 0};
    const char list_data[] = "classes=2\ntrain=list.txt\nvalid=list.txt\nlabels=labels.txt\n"
                             "names=labels.txt\nbackup=backup/\ntop=2\n";
    add(&b, list_data, sizeof list_data); /* with its NUL */
    const char list[] = "img/cat.bmp\ncat.bmp\ndog.png\n\ndog.png\r\n";
    add(&b, list, sizeof list);
    const char lab[] = "cat\ndog\n";
    add(&b, lab, sizeof lab);
    add_u16(&b, 0);
    put("data", "list.bin", b.b, b.n);

    b.n = 0;
    const char idx_data[] = "classes=3\ntrain=images.idx\ntrain_labels=labels.idx\n"
                            "valid=images.idx\nvalid_labels=labels.idx\n";
    add(&b, idx_data, sizeof idx_data);
    add_u8(&b, 0);
    add_u8(&b, 0);
    add_u16(&b, (uint16_t)ni);
    add(&b, images, ni);
    add(&b, labels, nl);
    put("data", "idx.bin", b.b, b.n);
}

static void image_seeds(void)
{
    uint8_t px[4 * 3 * 4];
    char path[512];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 41 + 3);
#define IMG(name, call)                                                                            \
    do {                                                                                           \
        snprintf(path, sizeof path, "%s/image/%s", root, name);                                    \
        if (!(call))                                                                               \
            exit(1);                                                                               \
    } while (0)
    IMG("gray.png", stbi_write_png(path, 4, 3, 1, px, 4));
    IMG("rgb.png", stbi_write_png(path, 4, 3, 3, px, 12));
    IMG("rgba.png", stbi_write_png(path, 3, 4, 4, px, 12));
    IMG("rgb.jpg", stbi_write_jpg(path, 4, 3, 3, px, 90));
    IMG("gray.jpg", stbi_write_jpg(path, 4, 3, 1, px, 50));
    IMG("rgb.bmp", stbi_write_bmp(path, 4, 3, 3, px));
    IMG("rgba.tga", stbi_write_tga(path, 3, 4, 4, px));
#undef IMG
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds CORPUS_DIR (run from the repository's top)\n");
        return 2;
    }
    root = argv[1];
    ta_seeds();
    weights_seeds();
    idx_and_data_seeds();
    image_seeds();
    return 0;
}
