/*
 * test_partition.c - layers A..B in the TA, end to end through darknetp and
 * the simulated TEE:
 *  (a) equivalence: training with partitions {none, first layers, middle, last
 *      layers, all} from one seed gives the same losses and the same final
 *      weights, bit for bit, as training all in the normal world (protected
 *      layers read by decrypting x.weights.tz with a key re-derived from the
 *      simulated device key, as tee/ta/huk.c documents; no TA command reveals
 *      them);
 *  (b) leak audit: every byte the normal world receives from the TEE during
 *      train and predict (DZ_TEE_RECORD) and every file written holds no
 *      protected parameter, activation or delta of a reference run;
 *  (c) sealed weights: round trip; wrong partition, no partition, another
 *      model, a mixed pair and one flipped bit at each byte of the blob refused;
 *  (d) secure memory: a partition that does not fit TA_DATA_SIZE is refused
 *      before the TA allocates, naming what fits; one that fits runs.
 * Also: the partition rules for routes, shortcuts and losses, and a TA that dies
 * mid-training.
 */
#define _GNU_SOURCE /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "darknet/dataset.h"
#include "darknet/image.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "host/partition.h"
#include "host/pnet.h"
#include "ta/include/darknetz_ta.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/bars.h"
#include "tests/helpers/tmpdir.h"

#define SIDE BARS_SIDE
#define CLASSES BARS_CLASSES
#define SEED 7
#define MAX_LINES 64

static char bin[PATH_MAX];
static char dir[64];

/* ------------------------------------------------------------- test data */

static void write_idx(const char *name, int count, unsigned seed0)
{
    assert_int_equal(bars_write_idx(dir, name, count, seed0), 0);
}

static void write_text(const char *name, const char *text)
{
    assert_int_equal(write_text_file(dir, name, text, NULL, 0), 0);
}

#define NET_KEYS                                                                                   \
    "height=12\nwidth=12\nchannels=1\nmomentum=0.9\ndecay=0.0005\n"                                \
    "min_crop=12\nmax_crop=12\nflip=0\n"

/* LeNet-style: conv, max, conv, max, connected, dropout, connected, softmax, cost. */
static const char lenet_cfg[] = "[net]\nbatch=8\nsubdivisions=2\n" NET_KEYS
                                "learning_rate=0.05\npolicy=poly\npower=2\nmax_batches=10\n"
                                "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                                "activation=relu\n"
                                "[maxpool]\nsize=2\nstride=2\n"
                                "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\n"
                                "activation=relu\n"
                                "[maxpool]\nsize=2\nstride=2\n"
                                "[connected]\noutput=16\nactivation=relu\n"
                                "[dropout]\nprobability=.5\n"
                                "[connected]\noutput=4\nactivation=ACT\n"
                                "[softmax]\ngroups=1\n"
                                "[cost]\ntype=sse\n";

/* Batch-normalised convolutions with a residual: conv, conv/2, conv, shortcut, avgpool,
 * connected, softmax. */
static const char bn_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                             "learning_rate=0.1\npolicy=steps\nsteps=5\nscales=.5\n"
                             "max_batches=8\n"
                             "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                             "batch_normalize=1\nactivation=leaky\n"
                             "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\n"
                             "batch_normalize=1\nactivation=leaky\n"
                             "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\n"
                             "batch_normalize=1\nactivation=relu\n"
                             "[shortcut]\nfrom=-2\nactivation=linear\n"
                             "[avgpool]\n"
                             "[connected]\noutput=4\nbatch_normalize=1\nactivation=linear\n"
                             "[softmax]\n";

/* AlexeyAB's activations, whose backward reads the kept pre-activation values
 * (act_input, in the TA for protected layers): conv, conv/2, conv, shortcut,
 * avgpool, connected, softmax. */
static const char act_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                              "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=8\n"
                              "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                              "batch_normalize=1\nactivation=mish\n"
                              "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\n"
                              "activation=swish\n"
                              "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\n"
                              "batch_normalize=1\nactivation=relu6\n"
                              "[shortcut]\nfrom=-2\nactivation=gelu\n"
                              "[avgpool]\n"
                              "[connected]\noutput=4\nactivation=hard_mish\n"
                              "[softmax]\n";

/* The layer kinds of issue 12: crop (random window and flip while training), reorg,
 * squeeze-excitation with scale_channels, upsample, [activation], reorg3d and a
 * downsampling upsample: 12x12 -> crop 10x10 -> conv -> reorg /2 -> conv -> avgpool -> conv
 * -> scale_channels -> upsample x2 -> activation -> reorg3d /2 -> upsample /-5 -> connected
 * -> softmax. */
static const char kinds_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                                "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=8\n"
                                "[crop]\ncrop_height=10\ncrop_width=10\nflip=1\n"
                                "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                                "activation=leaky\n"
                                "[reorg]\nstride=2\n"
                                "[convolutional]\nfilters=8\nsize=1\nstride=1\n"
                                "batch_normalize=1\nactivation=leaky\n"
                                "[avgpool]\n"
                                "[convolutional]\nfilters=8\nsize=1\nstride=1\n"
                                "activation=logistic\n"
                                "[scale_channels]\nfrom=-3\n"
                                "[upsample]\nstride=2\n"
                                "[activation]\nactivation=mish\n"
                                "[reorg3d]\nstride=2\n"
                                "[upsample]\nstride=-5\nscale=0.1\n"
                                "[connected]\noutput=4\nactivation=linear\n"
                                "[softmax]\n";

/* The other kinds of issue 12: local (no weight sharing), LRN, AlexeyAB's sam reading a
 * layer in the same TEE segment, l2norm, a strided local: 12x12 -> local -> lrn -> conv ->
 * sam -> maxpool -> l2norm -> local/2 -> connected -> softmax. */
static const char kinds2_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                                 "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=8\n"
                                 "[local]\nfilters=2\nsize=3\nstride=1\npad=1\n"
                                 "activation=leaky\n"
                                 "[lrn]\nsize=3\nalpha=.1\nbeta=.75\nkappa=2\n"
                                 "[convolutional]\nfilters=2\nsize=3\nstride=1\npad=1\n"
                                 "activation=logistic\n"
                                 "[sam]\nfrom=-2\n"
                                 "[maxpool]\nsize=2\nstride=2\n"
                                 "[l2norm]\n"
                                 "[local]\nfilters=3\nsize=3\nstride=2\n"
                                 "activation=linear\n"
                                 "[connected]\noutput=4\nactivation=linear\n"
                                 "[softmax]\n";

/* AlexeyAB's keys that change the engine's computation: policy=sgdr, a dilated convolution
 * with its own learning_rate, and a route that takes one group of channels: conv, conv dilation=2,
 * route groups=2, conv/2, avgpool, connected, softmax. */
static const char keys_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                               "learning_rate=0.1\npolicy=sgdr\nsgdr_cycle=3\nsgdr_mult=2\n"
                               "learning_rate_min=.01\nmax_batches=8\n"
                               "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                               "activation=leaky\n"
                               "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                               "dilation=2\nbatch_normalize=1\nactivation=leaky\n"
                               "learning_rate=.5\n"
                               "[route]\nlayers=-1,-2\ngroups=2\ngroup_id=1\n"
                               "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\n"
                               "activation=relu\n"
                               "[avgpool]\n"
                               "[connected]\noutput=4\nactivation=linear\n"
                               "[softmax]\n";

/* darknet's adam on the batch-normalised residual network: every convolutional and
 * connected parameter (weights, biases, BN scales) stepped by adam, in the TA too. */
static const char adam_cfg[] = "[net]\nbatch=8\nsubdivisions=2\n" NET_KEYS
                               "learning_rate=0.01\npolicy=steps\nsteps=5\nscales=.5\n"
                               "max_batches=8\nadam=1\nB1=.8\nB2=.99\neps=.00001\n"
                               "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                               "batch_normalize=1\nactivation=leaky\n"
                               "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\n"
                               "batch_normalize=1\nactivation=leaky\n"
                               "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\n"
                               "activation=relu\n"
                               "[shortcut]\nfrom=-2\nactivation=linear\n"
                               "[avgpool]\n"
                               "[connected]\noutput=4\nbatch_normalize=1\nactivation=linear\n"
                               "[softmax]\n";

/* AlexeyAB's batch augmentations as efficientnet_b0.cfg sets them (cutmix=1 mosaic=1 blur=1)
 * plus label smoothing: soft truths, which reach the softmax in the TA when it is protected.
 * conv, maxpool, conv, connected, softmax. */
static const char mix_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                              "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=10\n"
                              "cutmix=1\nmosaic=1\nblur=1\nlabel_smooth_eps=.1\n"
                              "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                              "batch_normalize=1\nactivation=leaky\n"
                              "[maxpool]\nsize=2\nstride=2\n"
                              "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\n"
                              "activation=leaky\n"
                              "[connected]\noutput=4\nactivation=linear\n"
                              "[softmax]\n";
/* darknet's hierarchical softmax (tree=, written with the folder's absolute path: the
 * layout pass reads the cfg from this process's directory): bars' four classes as two roots, top
 * and bottom, with left and right under top, so training masks the {left, right} group for images
 * of top or bottom. conv, max, connected, softmax tree, cost: segments end before the tree
 * softmax or hold it with its cost (its group sizes then travel in the model description). */
static const char tree_cfg[] = "[net]\nbatch=8\nsubdivisions=2\n" NET_KEYS
                               "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=8\n"
                               "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n"
                               "activation=leaky\n"
                               "[maxpool]\nsize=2\nstride=2\n"
                               "[connected]\noutput=4\nactivation=linear\n"
                               "[softmax]\ntree=%s/bars.tree\n"
                               "[cost]\ntype=masked\n";
/* AlexeyAB's multi-input shortcut with learned weights, in the TA with its sources:
 * conv, conv, conv 1x1, shortcut from=-2,-3 per_channel softmax, conv/2, conv 1x1,
 * shortcut from=-2 per_feature relu, avgpool, connected, softmax. */
static const char multi_cfg[] = "[net]\nbatch=8\nsubdivisions=2\n" NET_KEYS
                                "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=8\n"
                                "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                                "activation=leaky\n"
                                "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                                "activation=leaky\n"
                                "[convolutional]\nfilters=4\nsize=1\nstride=1\n"
                                "activation=leaky\n"
                                "[shortcut]\nfrom=-2,-3\nweights_type=per_channel\n"
                                "weights_normalization=softmax\nactivation=linear\n"
                                "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\n"
                                "activation=leaky\n"
                                "[convolutional]\nfilters=6\nsize=1\nstride=1\n"
                                "activation=relu\n"
                                "[shortcut]\nfrom=-2\nweights_type=per_feature\n"
                                "weights_normalization=relu\nactivation=leaky\n"
                                "[avgpool]\n"
                                "[connected]\noutput=4\nactivation=linear\n"
                                "[softmax]\n";

/* AlexeyAB's antialiasing: conv 3x3/2 with the 3x3 blur, maxpool 2/2 with the 2x2 one, conv,
 * avgpool, connected, softmax. */
static const char aa_cfg[] = "[net]\nbatch=8\nsubdivisions=1\n" NET_KEYS
                             "learning_rate=0.1\npolicy=poly\npower=2\nmax_batches=8\n"
                             "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n"
                             "batch_normalize=1\nactivation=leaky\nantialiasing=1\n"
                             "[maxpool]\nsize=2\nstride=2\nantialiasing=2\n"
                             "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\n"
                             "activation=relu\n"
                             "[avgpool]\n"
                             "[connected]\noutput=4\nactivation=linear\n"
                             "[softmax]\n";

static void write_cfg(const char *name, const char *text, const char *act)
{
    char buf[2048];
    const char *at = strstr(text, "ACT");
    if (!at) {
        write_text(name, text);
        return;
    }
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - text), text, act, at + 3);
    write_text(name, buf);
}

static int group_setup(void **state)
{
    (void)state;
    if (!realpath(darknetp_path(), bin))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-part-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    write_idx("train", 64, 1);
    write_idx("valid", 40, 5000);
    if (bars_write_data_file(dir) != 0)
        return -1;
    write_cfg("lenet.cfg", lenet_cfg, "linear");
    write_cfg("lenet2.cfg", lenet_cfg, "leaky"); /* another model, same shapes */
    write_cfg("bn.cfg", bn_cfg, NULL);
    write_cfg("act.cfg", act_cfg, NULL);
    write_cfg("kinds.cfg", kinds_cfg, NULL);
    write_cfg("kinds2.cfg", kinds2_cfg, NULL);
    write_cfg("keys.cfg", keys_cfg, NULL);
    write_cfg("adam.cfg", adam_cfg, NULL);
    write_cfg("mix.cfg", mix_cfg, NULL);
    char tree_text[sizeof tree_cfg + PATH_MAX];
    snprintf(tree_text, sizeof tree_text, tree_cfg, dir);
    write_text("tree.cfg", tree_text);
    write_text("bars.tree", "top -1\nbottom -1\nleft 0\nright 0\n");
    write_cfg("multi.cfg", multi_cfg, NULL);
    write_cfg("aa.cfg", aa_cfg, NULL);
    unsigned char px[SIDE * SIDE];
    bars_draw(11, 2, px);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/left.png", dir);
    if (!stbi_write_png(path, SIDE, SIDE, 1, px, SIDE))
        return -1;
    snprintf(path, sizeof path, "%s/storage", dir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof path, "%s/console.log", dir);
    setenv("DZ_TEE_LOG", path, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG");
    return system(cmd) == 0 ? 0 : -1;
}

/* --------------------------------------------------------------- helpers */

static void write_all(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static long console_size(void)
{
    struct stat st;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/console.log", dir);
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Runs darknetp in dir with args; stdout (and stderr unless args redirect it) go to out.
 * Returns the exit status. */
static int darknetp(const char *args, char *out, size_t size)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s%s", dir, bin, args,
             strstr(args, "2>") ? "" : " 2>&1");
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

/* A shell command in dir. */
static void shell(const char *cmdline)
{
    char cmd[4 * PATH_MAX], out[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s 2>&1", dir, cmdline);
    int rc = run_capture(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("'%s' exited %d:\n%s", cmdline, rc, out);
}

static void partition_args(int first, int last, char *buf, size_t size)
{
    if (first < 0)
        snprintf(buf, size, "%s", "");
    else
        snprintf(buf, size, "-pp_start %d -pp_end %d", first, last);
}

/* Per-layer float offsets in .weights order, from the library's shape pass. */
struct layout {
    size_t n;
    size_t off[64]; /* off[i] = first float of layer i; off[n] = total */
};

static void get_layout(const char *cfg, struct layout *lo)
{
    struct dk_model m = {0};
    struct dnn_network *shapes = NULL;
    struct dk_error err;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, cfg);
    assert_int_equal(dk_parse_network(path, &m, &err), 0);
    assert_int_equal(dz_shapes_create(&m, 1, 0, &shapes, &err), 0);
    lo->n = m.n;
    lo->off[0] = 0;
    for (size_t i = 0; i < m.n; i++)
        lo->off[i + 1] = lo->off[i] + dz_layer_param_floats(&shapes->layers[i]);
    dz_shapes_free(shapes);
    dk_model_free(&m);
}

/* The loss strings of a training run: the normal world's, or the TA's when it has them. */
struct losses {
    int n;
    char v[MAX_LINES][32];
};

static void parse_losses(const char *out, const char *console, struct losses *ls)
{
    const char *ta = console;
    ls->n = 0;
    for (const char *line = out; line && *line && ls->n < MAX_LINES;) {
        const char *end = strchr(line, '\n');
        const char *colon = strstr(line, ": ");
        if (colon && (!end || colon < end) && strstr(line, " images") &&
            (!end || strstr(line, " images") < end)) {
            if (strncmp(colon + 2, "loss in the TEE", 15) == 0) {
                /* The TA's line for this iteration: "I/TA: loss = X, avg loss = Y ..." */
                const char *at = ta ? strstr(ta, ": loss = ") : NULL;
                if (!at)
                    at = ta ? strstr(ta, " loss = ") : NULL;
                assert_non_null(at);
                at = strstr(at, "loss = ") + 7;
                snprintf(ls->v[ls->n], sizeof ls->v[0], "%.*s", (int)strcspn(at, ","), at);
                ta = strchr(at, '\n');
            } else {
                snprintf(ls->v[ls->n], sizeof ls->v[0], "%.*s", (int)strcspn(colon + 2, ","),
                         colon + 2);
            }
            ls->n++;
        }
        line = end ? end + 1 : NULL;
    }
}

/* One training run from scratch; its losses and the final pair's bytes. */
struct run {
    struct losses losses;
    unsigned char *weights; /* backup/<base>_final.weights */
    long weights_len;
    unsigned char *tz; /* its .tz, or NULL */
    long tz_len;
};

/* A training run from weights (NULL: from scratch) with the partition options pp; out
 * receives darknetp's output. */
static void train_pp(const char *cfg, const char *weights, const char *pp, struct run *r, char *out,
                     size_t out_size)
{
    char args[512], path[PATH_MAX], base[64];
    snprintf(args, sizeof args, "classifier train -seed %d %s bars.data %s %s", SEED, pp, cfg,
             weights ? weights : "");
    long before = console_size();
    int rc = darknetp(args, out, out_size);
    if (rc != 0)
        fail_msg("%s exited %d:\n%s", args, rc, out);
    unsigned char *log = NULL;
    snprintf(path, sizeof path, "%s/console.log", dir);
    long len = read_whole_file(path, &log);
    parse_losses(out, len > before ? (const char *)log + before : NULL, &r->losses);
    free(log);
    snprintf(base, sizeof base, "%.*s", (int)strcspn(cfg, "."), cfg);
    snprintf(path, sizeof path, "%s/backup/%s_final.weights", dir, base);
    r->weights_len = read_whole_file(path, &r->weights);
    assert_true(r->weights_len > 20);
    strcat(path, ".tz");
    r->tz_len = read_whole_file(path, &r->tz);
    unlink(path);
}

static void train_from(const char *cfg, const char *weights, int first, int last, struct run *r,
                       char *out, size_t out_size)
{
    char pp[64];
    partition_args(first, last, pp, sizeof pp);
    train_pp(cfg, weights, pp, r, out, out_size);
}

static void train(const char *cfg, int first, int last, struct run *r)
{
    static char out[1 << 15];
    train_from(cfg, NULL, first, last, r, out, sizeof out);
}

static void run_free(struct run *r)
{
    free(r->weights);
    free(r->tz);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------- the sealing key */

/* HKDF-SHA256 of the simulated device key, as tee/ta/huk.c derives
 * PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY for the DarkneTZ TA and DZ_SEAL_LABEL. */
static void sealing_key(uint8_t key[32])
{
    static const char salt[] = "DarkneTZ simulated TEE HUK v1";
    static const char extra[] = DZ_SEAL_LABEL;
    const uint8_t uuid[16] = {0x5f, 0x6c, 0x0d, 0x1e, 0x8a, 0x3b, 0x4c, 0x27,
                              0x9e, 0x4d, 0x2b, 0x7a, 0x61, 0xc9, 0xf0, 0xd3};
    uint8_t info[24 + sizeof extra - 1] = {0, 0, 0, 1, 0, 0, 0, 32};
    memcpy(info + 8, uuid, 16);
    memcpy(info + 24, extra, sizeof extra - 1);
    char path[PATH_MAX];
    unsigned char *huk = NULL;
    snprintf(path, sizeof path, "%s/storage/huk", dir);
    assert_int_equal(read_whole_file(path, &huk), 32);
    OSSL_PARAM p[5];
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, huk, 32);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *)salt, sizeof salt - 1);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info);
    p[4] = OSSL_PARAM_construct_end();
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    assert_int_equal(EVP_KDF_derive(ctx, key, 32, p), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    free(huk);
}

/* Decrypts a sealed blob (header as AAD, AES-256-GCM); returns the payload floats. */
static float *unseal(const unsigned char *blob, long len, size_t *count)
{
    struct dz_sealed_header h;
    uint8_t key[32];
    assert_true(len >= (long)(sizeof h + DZ_SEALED_TAG_BYTES));
    memcpy(&h, blob, sizeof h);
    assert_int_equal(h.magic, DZ_SEALED_MAGIC);
    assert_int_equal((long)h.payload_bytes, len - (long)sizeof h - DZ_SEALED_TAG_BYTES);
    sealing_key(key);
    unsigned char *pt = malloc(h.payload_bytes + 16);
    int n = 0, fin = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL), 1);
    assert_int_equal(EVP_DecryptInit_ex(c, NULL, NULL, key, h.nonce), 1);
    assert_int_equal(EVP_DecryptUpdate(c, NULL, &n, blob, (int)sizeof h), 1);
    assert_int_equal(EVP_DecryptUpdate(c, pt, &n, blob + sizeof h, (int)h.payload_bytes), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
                                         (void *)(blob + sizeof h + h.payload_bytes)),
                     1);
    assert_int_equal(EVP_DecryptFinal_ex(c, pt + n, &fin), 1);
    EVP_CIPHER_CTX_free(c);
    *count = h.payload_bytes / 4;
    return (float *)(void *)pt;
}

/* --------------------------------------------------------- (a) equivalence */

/* The protected layers of a partitioned run, as plain floats in their file positions. */
static void compare_runs(const struct layout *lo, const struct run *ref, const struct run *r,
                         int first, int last, const char *what)
{
    assert_int_equal(r->losses.n, ref->losses.n);
    /* The normal world prints "%f"; the TA's log prints 6 significant digits (no %f in a
     * TA): compare to that precision. Bit-identity shows in the weights below. */
    for (int i = 0; i < ref->losses.n; i++) {
        double got = atof(r->losses.v[i]), want = atof(ref->losses.v[i]);
        double tol = strcmp(r->losses.v[i], ref->losses.v[i]) == 0 ? 0 : 5e-6 * (1 + fabs(want));
        if (!(fabs(got - want) <= tol))
            fail_msg("%s: iteration %d: loss %s, all-normal-world %s", what, i + 1, r->losses.v[i],
                     ref->losses.v[i]);
    }
    assert_int_equal(r->weights_len, ref->weights_len);
    const float *want = (const float *)(const void *)(ref->weights + 20);
    const float *got = (const float *)(const void *)(r->weights + 20);
    int32_t rev;
    memcpy(&rev, r->weights + 8, 4);
    if (first < 0) {
        assert_null(r->tz);
        assert_memory_equal(r->weights, ref->weights, (size_t)ref->weights_len);
        return;
    }
    assert_int_equal(rev, dz_sealed_revision(first, last));
    assert_memory_equal(r->weights + 12, ref->weights + 12, 8); /* seen */
    size_t a = lo->off[first], b = lo->off[last + 1];
    assert_memory_equal(got, want, a * 4);
    assert_memory_equal(got + b, want + b, (lo->off[lo->n] - b) * 4);
    for (size_t i = a; i < b; i++)
        assert_true(got[i] == 0.0f);
    assert_non_null(r->tz);
    size_t count = 0;
    float *sealed = unseal(r->tz, r->tz_len, &count);
    assert_int_equal(count, b - a);
    if (memcmp(sealed, want + a, count * 4) != 0)
        fail_msg("%s: the sealed layers %d..%d differ from the all-normal-world run", what, first,
                 last);
    free(sealed);
}

static void check_equivalence(const char *cfg, const int parts[][2], int n_parts)
{
    struct layout lo;
    struct run ref = {0};
    get_layout(cfg, &lo);
    train(cfg, -1, -1, &ref);
    assert_true(ref.losses.n >= 8);
    for (int p = 0; p < n_parts; p++) {
        struct run r = {0};
        char what[96];
        snprintf(what, sizeof what, "%s -pp_start %d -pp_end %d", cfg, parts[p][0], parts[p][1]);
        train(cfg, parts[p][0], parts[p][1], &r);
        compare_runs(&lo, &ref, &r, parts[p][0], parts[p][1], what);
        run_free(&r);
    }
    run_free(&ref);
}

static void test_equivalence_lenet(void **state)
{
    (void)state;
    /* first layers, middle, last layers, all (the cost-only tail, 8..8, is refused: the
     * softmax before it computes a loss in the normal world). */
    static const int parts[][2] = {{0, 2}, {2, 5}, {4, 8}, {0, 8}};
    check_equivalence("lenet.cfg", parts, 4);
}

static void test_equivalence_batchnorm(void **state)
{
    (void)state;
    static const int parts[][2] = {{0, 0}, {1, 3}, {4, 6}, {0, 6}, {6, 6}};
    check_equivalence("bn.cfg", parts, 5);
}

static void test_equivalence_activations(void **state)
{
    (void)state;
    static const int parts[][2] = {{0, 0}, {1, 3}, {4, 6}, {0, 6}};
    check_equivalence("act.cfg", parts, 4);
}

static void test_equivalence_layer_kinds(void **state)
{
    (void)state;
    /* the crop inside the TA, scale_channels with its source (3) in the TA, the tail */
    static const int parts[][2] = {{0, 2}, {3, 7}, {7, 12}, {0, 12}};
    check_equivalence("kinds.cfg", parts, 4);
    /* local's parameters in the TA, sam with its source (1) in the TA, the tail */
    static const int parts2[][2] = {{0, 0}, {1, 4}, {5, 8}, {0, 8}};
    check_equivalence("kinds2.cfg", parts2, 4);
}

static void test_equivalence_adam(void **state)
{
    (void)state;
    static const int parts[][2] = {{0, 0}, {1, 3}, {4, 6}, {0, 6}};
    check_equivalence("adam.cfg", parts, 4);
}

/* Mixed truths (cutmix, mosaic, label smoothing) and blurred images: the loss the TA
 * computes from a soft truth is the normal world's, and so is every weight. */
static void test_equivalence_mix(void **state)
{
    (void)state;
    static const int parts[][2] = {{0, 1}, {2, 4}, {0, 4}};
    check_equivalence("mix.cfg", parts, 3);
}

static void test_equivalence_tree_softmax(void **state)
{
    (void)state;
    /* the tree softmax (3) and its masked cost (4) after the segment, in the normal world;
     * then in the TA (its group sizes in the model description): with its cost, with the
     * layers before it, and the whole network */
    static const int parts[][2] = {{0, 0}, {1, 2}, {0, 2}, {3, 4}, {1, 4}, {0, 4}};
    check_equivalence("tree.cfg", parts, 6);
}

static void test_equivalence_dilation_route_groups(void **state)
{
    (void)state;
    static const int parts[][2] = {{0, 2}, {3, 5}, {3, 6}, {0, 6}};
    check_equivalence("keys.cfg", parts, 4);
}

static void test_equivalence_multi_shortcut(void **state)
{
    (void)state;
    /* each weighted shortcut inside the TA with its sources, the tail, everything */
    static const int parts[][2] = {{0, 3}, {4, 6}, {4, 9}, {0, 9}};
    check_equivalence("multi.cfg", parts, 4);
}

static void test_equivalence_antialiasing(void **state)
{
    (void)state;
    static const int parts[][2] = {{0, 0}, {1, 2}, {0, 5}, {2, 5}};
    check_equivalence("aa.cfg", parts, 4);
}

/*
 * Fine-tuning as darknet users do it: `partial` keeps the first layers of trained
 * weights, training from that file draws the other layers from the seed (inside the TA
 * for protected ones), and the result is the same with and without a TEE partition.
 */
static void test_partial_fine_tune(void **state)
{
    (void)state;
    static char out[1 << 15];
    struct layout lo;
    struct run scratch = {0}, ref = {0};
    char path[PATH_MAX];
    get_layout("lenet.cfg", &lo);
    train("lenet.cfg", -1, -1, &scratch);
    /* layers 0..3 (conv, max, conv, max), as darknet's partial writes them */
    shell("cp backup/lenet_final.weights trained.weights");
    assert_int_equal(darknetp("partial lenet.cfg trained.weights lenet.conv.4 4", out, sizeof out),
                     0);
    unsigned char *part = NULL;
    snprintf(path, sizeof path, "%s/lenet.conv.4", dir);
    long len = read_whole_file(path, &part);
    assert_int_equal(len, 20 + 4 * (long)lo.off[4]);
    const int32_t want_hdr[3] = {0, 2, 0};
    assert_memory_equal(part, want_hdr, 12);
    const uint64_t zero = 0;
    assert_memory_equal(part + 12, &zero, 8); /* seen: 0, as both darknet trees write it */
    assert_memory_equal(part + 20, scratch.weights + 20, 4 * lo.off[4]);
    free(part);
    /* more layers than the file holds is refused */
    assert_int_equal(darknetp("partial lenet.cfg lenet.conv.4 x.weights 5", out, sizeof out), 1);
    assert_non_null(strstr(out, "holds the weights of 4 layers, fewer than the 5 asked for"));

    /* Another model name, so the backups do not collide; the same layers and seed. */
    write_cfg("ft.cfg", lenet_cfg, "linear");
    train_from("ft.cfg", "lenet.conv.4", -1, -1, &ref, out, sizeof out);
    assert_non_null(strstr(out, "lenet.conv.4 holds the weights of layers 0..3; layers 4..8 "
                                "start from the seed as in a new network"));
    /* the loaded layers matter: the first loss is not that of the run from scratch */
    assert_true(ref.losses.n >= 8);
    assert_string_not_equal(ref.losses.v[0], scratch.losses.v[0]);
    /* with the loaded layers in the TEE, the new ones in it, or both */
    static const int parts[][2] = {{2, 5}, {4, 8}, {0, 8}};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        struct run r = {0};
        char what[96];
        snprintf(what, sizeof what, "fine-tune -pp_start %d -pp_end %d", parts[p][0], parts[p][1]);
        train_from("ft.cfg", "lenet.conv.4", parts[p][0], parts[p][1], &r, out, sizeof out);
        assert_non_null(strstr(out, "start from the seed as in a new network"));
        assert_non_null(strstr(out, "inside the TEE"));
        compare_runs(&lo, &ref, &r, parts[p][0], parts[p][1], what);
        run_free(&r);
    }
    run_free(&ref);
    run_free(&scratch);
}

/*
 * darknet's dontload: a file without layer 4's weights (a connected layer) loads with that
 * layer at its initial values, the same whether the layer runs in the normal world or in
 * the TA (whose values the host draws from the same seed and sends with the others).
 */
static void test_dontload_partition(void **state)
{
    (void)state;
    static char out[1 << 15];
    struct layout lo;
    struct run scratch = {0}, ref = {0};
    char path[PATH_MAX], text[2048];
    get_layout("lenet.cfg", &lo);
    train("lenet.cfg", -1, -1, &scratch);
    /* the trained file less layer 4's floats, with seen 0 (else training has ended) */
    snprintf(path, sizeof path, "%s/dl.weights", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const size_t a = 20 + 4 * lo.off[4], b = 20 + 4 * lo.off[5];
    memset(scratch.weights + 12, 0, 8);
    assert_int_equal(fwrite(scratch.weights, 1, a, f), a);
    assert_int_equal(fwrite(scratch.weights + b, 1, (size_t)scratch.weights_len - b, f),
                     (size_t)scratch.weights_len - b);
    assert_int_equal(fclose(f), 0);
    /* lenet with dontload=1 on layer 4 and its last activation linear */
    const char *at = strstr(lenet_cfg, "output=16\nactivation=relu\n");
    const char *act = strstr(lenet_cfg, "ACT");
    assert_non_null(at);
    assert_non_null(act);
    const size_t head = (size_t)(at - lenet_cfg) + strlen("output=16\nactivation=relu\n");
    snprintf(text, sizeof text, "%.*sdontload=1\n%.*slinear%s", (int)head, lenet_cfg,
             (int)(act - lenet_cfg - (long)head), lenet_cfg + head, act + 3);
    write_text("dl.cfg", text);
    train_from("dl.cfg", "dl.weights", -1, -1, &ref, out, sizeof out);
    assert_true(ref.losses.n >= 8);
    /* the loaded layers matter: not the first loss of the run from scratch */
    assert_string_not_equal(ref.losses.v[0], scratch.losses.v[0]);
    /* layer 4 in the TA with loaded ones, in the TA alone, in the front, and everything */
    static const int parts[][2] = {{2, 5}, {4, 4}, {5, 8}, {0, 8}};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        struct run r = {0};
        char what[96];
        snprintf(what, sizeof what, "dontload -pp_start %d -pp_end %d", parts[p][0], parts[p][1]);
        train_from("dl.cfg", "dl.weights", parts[p][0], parts[p][1], &r, out, sizeof out);
        compare_runs(&lo, &ref, &r, parts[p][0], parts[p][1], what);
        if (p + 1 == sizeof parts / sizeof parts[0]) {
            /* its sealed pair holds every layer: the keys do not apply to it */
            const char *const names[2] = {"dls.weights", "dls.weights.tz"};
            const unsigned char *bytes[2] = {r.weights, r.tz};
            const long lens[2] = {r.weights_len, r.tz_len};
            for (int k = 0; k < 2; k++) {
                snprintf(path, sizeof path, "%s/%s", dir, names[k]);
                f = fopen(path, "wb");
                assert_non_null(f);
                assert_int_equal(fwrite(bytes[k], 1, (size_t)lens[k], f), (size_t)lens[k]);
                assert_int_equal(fclose(f), 0);
            }
            assert_int_not_equal(darknetp("classifier train -seed 1 -pp_start 0 -pp_end 8 "
                                          "bars.data dl.cfg dls.weights",
                                          out, sizeof out),
                                 0);
            if (!strstr(out, "holds every layer's weights, as a saved file or a sealed pair does"))
                fail_msg("%s", out);
        }
        run_free(&r);
    }
    run_free(&ref);
    run_free(&scratch);
}

/*
 * Freezing: stopbackward in the cfg, or DarkneTZ's -pp_start_f, trains only the layers
 * after the frozen ones, saves the frozen ones as loaded, and gives the same weights with
 * and without the TEE.
 */
static void test_freeze(void **state)
{
    (void)state;
    static char out[1 << 15];
    struct layout lo;
    struct run trained = {0}, ref = {0}, r = {0};
    get_layout("lenet.cfg", &lo);
    train("lenet.cfg", -1, -1, &trained);
    shell("cp backup/lenet_final.weights frozen_from.weights");
    /* stopbackward on layer 3, the second maxpool: layers 0..3 frozen */
    const char *second = strstr(strstr(lenet_cfg, "[maxpool]") + 1, "[maxpool]");
    char text[2048];
    snprintf(text, sizeof text, "%.*s[maxpool]\nstopbackward=1\n%s", (int)(second - lenet_cfg),
             lenet_cfg, second + strlen("[maxpool]\n"));
    write_cfg("frz.cfg", text, "linear");
    /* -clear: the trained file has seen max_batches already */
    train_pp("frz.cfg", "frozen_from.weights", "-clear", &ref, out, sizeof out);
    assert_true(ref.losses.n >= 8);
    assert_non_null(strstr(out, "layers 0..3 are frozen"));
    /* the frozen layers are saved as loaded; the others trained */
    assert_memory_equal(ref.weights + 20, trained.weights + 20, 4 * lo.off[4]);
    assert_memory_not_equal(ref.weights + 20 + 4 * lo.off[4], trained.weights + 20 + 4 * lo.off[4],
                            4 * (lo.off[lo.n] - lo.off[4]));
    /* the same with the layers after them in the TEE */
    train_pp("frz.cfg", "frozen_from.weights", "-clear -pp_start 4 -pp_end 8", &r, out, sizeof out);
    compare_runs(&lo, &ref, &r, 4, 8, "stopbackward=1 on layer 3, -pp_start 4 -pp_end 8");
    run_free(&r);
    /* -pp_start_f 4 freezes layers 0..3 of a cfg without stopbackward */
    write_cfg("frz2.cfg", lenet_cfg, "linear");
    train_pp("frz2.cfg", "frozen_from.weights", "-clear -pp_start_f 4 -pp_end 8", &r, out,
             sizeof out);
    assert_non_null(strstr(out, "layers 0..3 are frozen"));
    compare_runs(&lo, &ref, &r, 4, 8, "-pp_start_f 4 -pp_end 8");
    run_free(&r);
    /* a frozen layer inside the TEE segment is refused, naming both */
    assert_int_not_equal(
        darknetp("classifier train -pp_start 2 -pp_end 8 bars.data frz.cfg", out, sizeof out), 0);
    assert_non_null(strstr(out, "layers 0..3 are frozen (stopbackward), which reaches into the TEE "
                                "segment 2..8"));
    run_free(&ref);
    run_free(&trained);
}

/* ---------------------------------------------------------- (b) leak audit */

/* Values that must not be found: float patterns, with those allowed to cross removed. */
struct needles {
    float *v;
    size_t n, cap;
};

static void add_floats(struct needles *s, const float *v, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->v = realloc(s->v, s->cap * sizeof(float));
        assert_non_null(s->v);
    }
    memcpy(s->v + s->n, v, n * sizeof(float));
    s->n += n;
}

/* The protected values of the reference network now: parameters, momenta, outputs, deltas. */
static void add_protected(struct needles *s, const struct dnn_network *net, size_t first,
                          size_t last)
{
    for (size_t i = first; i <= last; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t p = 0; p < l->n_params; p++) {
            add_floats(s, l->params[p].value, l->params[p].count);
            if (l->params[p].update)
                add_floats(s, l->params[p].update, l->params[p].count);
        }
        add_floats(s, l->output, l->outputs * (size_t)l->batch);
        if (l->delta)
            add_floats(s, l->delta, l->outputs * (size_t)l->batch);
    }
}

static struct dk_augment_params fixed_augment(const struct dk_model *m)
{
    struct dk_augment_params p = {
        .min_crop = (int)(m->aug.min_ratio * (float)m->net.w),
        .max_crop = (int)(m->aug.max_ratio * (float)m->net.w),
        .angle = m->aug.angle,
        .aspect = m->aug.aspect,
        .hue = m->aug.hue,
        .saturation = m->aug.saturation,
        .exposure = m->aug.exposure,
        .flip = m->aug.flip,
        .center = m->aug.center,
    };
    return p;
}

/*
 * The reference: darknetp's training loop in this process, all in the normal world, same
 * seed; every protected value after each step goes to *bad, every value allowed to cross
 * (layer first's input, the delta at it, the truth) to *ok. Then the prediction of left.png.
 */
static void reference_values(int first, int last, struct needles *bad, struct needles *ok)
{
    struct dk_model m = {0};
    struct dk_dataset ds = {0};
    struct dk_error err;
    struct dnn_network *net = NULL;
    char path[PATH_MAX], labels[PATH_MAX];
    snprintf(path, sizeof path, "%s/lenet.cfg", dir);
    assert_int_equal(dk_parse_network(path, &m, &err), 0);
    assert_int_equal(dnn_network_create(&net, &m.net, m.specs, m.n, true, SEED), DNN_OK);
    snprintf(path, sizeof path, "%s/train-images.idx", dir);
    snprintf(labels, sizeof labels, "%s/train-labels.idx", dir);
    assert_int_equal(dk_dataset_open(&ds, path, labels, NULL, 0, CLASSES, &err), 0);
    struct dk_augment_params aug = fixed_augment(&m);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, SEED ^ 0xDA7Aull);
    const int batch = net->cfg.batch;
    float *x = malloc((size_t)batch * net->inputs * sizeof(float));
    float *y = malloc((size_t)batch * CLASSES * sizeof(float));
    while (dnn_network_current_batch(net) < (uint64_t)m.net.max_batches) {
        assert_int_equal(
            dk_dataset_train_batch(&ds, &rng, batch, m.net.w, m.net.h, m.net.c, &aug, x, y, &err),
            0);
        dnn_network_train_batch(net, x, y);
        add_protected(bad, net, (size_t)first, (size_t)last);
        const struct dnn_layer *before = &net->layers[first - 1];
        add_floats(ok, before->output, before->outputs * (size_t)batch);
        add_floats(ok, before->delta, before->outputs * (size_t)batch);
        add_floats(ok, y, (size_t)batch * CLASSES);
    }
    free(x);
    free(y);
    dk_dataset_close(&ds);
    /* Predict left.png as darknetp does, batch 1, with the trained weights. */
    struct dnn_network *inf = NULL;
    struct dk_image im = {0}, r = {0};
    struct dnn_net_config one = m.net;
    one.batch = 1;
    one.subdivisions = 1;
    /* Built with training buffers: an inference network shares the outputs of layers that
     * only the next one reads, and this audit needs every layer's own output after the
     * forward. Its prediction (forward without train) is the inference network's. */
    assert_int_equal(dnn_network_create(&inf, &one, m.specs, m.n, true, SEED), DNN_OK);
    for (size_t i = 0; i < m.n; i++)
        for (size_t p = 0; p < net->layers[i].n_params; p++)
            memcpy(inf->layers[i].params[p].value, net->layers[i].params[p].value,
                   net->layers[i].params[p].count * sizeof(float));
    snprintf(path, sizeof path, "%s/left.png", dir);
    assert_int_equal(dk_image_load(path, 1, &im, &err), 0);
    assert_int_equal(dk_image_prepare_predict(&im, m.net.w, m.net.h, &r, &err), 0);
    dnn_network_predict(inf, r.data);
    add_protected(bad, inf, (size_t)first, (size_t)last);
    add_floats(ok, inf->layers[first - 1].output, inf->layers[first - 1].outputs);
    dk_image_free(&im);
    dk_image_free(&r);
    dnn_network_free(inf);
    dnn_network_free(net);
    dk_model_free(&m);
}

static int cmp_float_bits(const void *a, const void *b)
{
    uint32_t x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    return x < y ? -1 : x > y;
}

/*
 * Exclusions: 0.0 and -0.0 (ReLU and dropout zeros, unused slots, zeroed files), 1.0 and
 * -1.0 (one-hot truths), NaN/inf (none expected), and any value that also occurs among
 * the values allowed to cross: an equal 32-bit pattern there is a coincidence, not a leak.
 */
static bool trivial(float v, const struct needles *ok)
{
    if (v == 0.0f || v == 1.0f || v == -1.0f || v != v || v - v != 0.0f)
        return true;
    return bsearch(&v, ok->v, ok->n, sizeof(float), cmp_float_bits) != NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * The search patterns, sorted for bsearch at every byte of the haystack:
 *  - singles: every non-trivial protected float as 4 bytes, for plain material;
 *  - pairs: two protected floats stored next to each other in a buffer of the reference
 *    (both non-trivial) as 8 bytes, for material that holds ciphertext. A sealed blob is
 *    uniformly random: with some 42,000 singles, 16 KB of it matches a 4-byte pattern with
 *    a chance of about 1 in 6 (measured: CI failed once on one), 8 bytes about 2^-64 per
 *    place. Leaked parameters, activations and deltas come in runs, so pairs still find them.
 */
struct patterns {
    uint32_t *single;
    uint64_t *pair;
    size_t n_single, n_pair;
};

static void make_patterns(const struct needles *bad, const struct needles *ok, struct patterns *p)
{
    p->single = malloc((bad->n + 1) * sizeof *p->single);
    p->pair = malloc((bad->n + 1) * sizeof *p->pair);
    assert_true(p->single && p->pair);
    p->n_single = p->n_pair = 0;
    for (size_t i = 0; i < bad->n; i++) {
        if (trivial(bad->v[i], ok))
            continue;
        memcpy(&p->single[p->n_single++], &bad->v[i], 4);
        if (i + 1 < bad->n && !trivial(bad->v[i + 1], ok))
            memcpy(&p->pair[p->n_pair++], &bad->v[i], 8);
    }
    assert_true(p->n_single > 1000 && p->n_pair > 1000);
    qsort(p->single, p->n_single, sizeof *p->single, cmp_u32);
    qsort(p->pair, p->n_pair, sizeof *p->pair, cmp_u64);
}

static void audit(const unsigned char *hay, size_t len, const char *what, bool ciphertext,
                  const struct patterns *p)
{
    /* Pairs at every byte; singles at the 4-byte places, where the formats keep floats (a
     * window across two of the normal world's own floats matches one by chance). */
    const size_t width = ciphertext ? 8 : 4;
    for (size_t at = 0; at + width <= len; at += ciphertext ? 1 : 4) {
        uint32_t s;
        uint64_t d;
        bool hit;
        if (ciphertext) {
            memcpy(&d, hay + at, 8);
            hit = bsearch(&d, p->pair, p->n_pair, sizeof d, cmp_u64) != NULL;
        } else {
            memcpy(&s, hay + at, 4);
            hit = bsearch(&s, p->single, p->n_single, sizeof s, cmp_u32) != NULL;
        }
        if (hit) {
            float v;
            memcpy(&v, hay + at, 4);
            fail_msg("%s: protected value %.9g%s found at byte %zu", what, (double)v,
                     ciphertext ? " and its neighbour" : "", at);
        }
    }
}

static void test_leak_audit(void **state)
{
    (void)state;
    const int first = 4, last = 8;
    char train_rec[PATH_MAX], predict_rec[PATH_MAX], args[256], out[1 << 15], pp[64],
        path[PATH_MAX];
    /* Separate records: training's holds the sealed saves' ciphertext, prediction's none. */
    snprintf(train_rec, sizeof train_rec, "%s/train-record.bin", dir);
    snprintf(predict_rec, sizeof predict_rec, "%s/predict-record.bin", dir);
    unlink(train_rec);
    unlink(predict_rec);
    partition_args(first, last, pp, sizeof pp);
    setenv("DZ_TEE_RECORD", train_rec, 1);
    snprintf(args, sizeof args, "classifier train -seed %d %s bars.data lenet.cfg", SEED, pp);
    int rc = darknetp(args, out, sizeof out);
    if (rc != 0)
        fail_msg("%s:\n%s", args, out);
    setenv("DZ_TEE_RECORD", predict_rec, 1);
    snprintf(args, sizeof args,
             "classifier predict %s bars.data lenet.cfg backup/lenet_final.weights left.png", pp);
    rc = darknetp(args, out, sizeof out);
    unsetenv("DZ_TEE_RECORD");
    if (rc != 0)
        fail_msg("%s:\n%s", args, out);

    struct needles bad = {0}, ok = {0};
    reference_values(first, last, &bad, &ok);
    qsort(ok.v, ok.n, sizeof(float), cmp_float_bits);
    struct patterns pat;
    make_patterns(&bad, &ok, &pat);
    /* Every byte from the TEE, then every file written. */
    static const struct {
        const char *name;
        bool ciphertext;
    } files[] = {
        {"train-record.bin", true},
        {"predict-record.bin", false},
        {"backup/lenet_final.weights", false},
        {"backup/lenet_final.weights.tz", true},
        {"backup/lenet_1.weights", false},
        {"backup/lenet_1.weights.tz", true},
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        unsigned char *data = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, files[f].name);
        long n = read_whole_file(path, &data);
        if (n <= 0)
            fail_msg("%s is missing or empty", files[f].name);
        audit(data, (size_t)n, files[f].name, files[f].ciphertext, &pat);
        free(data);
    }
    audit((const unsigned char *)out, strlen(out), "darknetp's output", false, &pat);
    free(pat.single);
    free(pat.pair);
    free(bad.v);
    free(ok.v);
}

/* -------------------------------------------------------- (c) sealed weights */

static void expect_refusal(const char *args, const char *needle)
{
    char out[1 << 15];
    int rc = darknetp(args, out, sizeof out);
    if (rc == 0 || !strstr(out, needle))
        fail_msg("'%s' exited %d; expected a refusal containing '%s', got:\n%s", args, rc, needle,
                 out);
}

/* The prediction lines ("NN.NN%: label") of darknetp's output, in order. */
static void prediction_lines(const char *out, char *lines, size_t size)
{
    size_t n = 0;
    lines[0] = 0;
    for (const char *line = out; line && *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        const char *pct = memchr(line, '%', len);
        if (pct && (size_t)(pct - line) + 2 < len && pct[1] == ':' && n + len < size) {
            memcpy(lines + n, line, len);
            n += len;
            lines[n] = 0;
        }
        line = end ? end + 1 : NULL;
    }
}

/* predict with the tree softmax inside the TEE prints what it prints without a TEE: the
 * scores leave (-tee_output scores) and the normal world ranks them after darknet's
 * hierarchy_predictions; a label policy is refused with the option that works. */
static void test_tree_predict_in_tee(void **state)
{
    (void)state;
    static char out[1 << 15], want[1 << 14], got[1 << 14];
    struct run r = {0};
    train("tree.cfg", -1, -1, &r);
    run_free(&r);
    const char *const tail = "bars.data tree.cfg backup/tree_final.weights left.png";
    char args[256];
    snprintf(args, sizeof args, "classifier predict %s", tail);
    if (darknetp(args, out, sizeof out) != 0)
        fail_msg("%s:\n%s", args, out);
    prediction_lines(out, want, sizeof want);
    assert_non_null(strstr(want, "%: "));
    static const int parts[][2] = {{3, 4}, {1, 4}, {0, 4}};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        snprintf(args, sizeof args,
                 "classifier predict -pp_start %d -pp_end %d -tee_output scores %s", parts[p][0],
                 parts[p][1], tail);
        if (darknetp(args, out, sizeof out) != 0)
            fail_msg("%s:\n%s", args, out);
        prediction_lines(out, got, sizeof got);
        if (strcmp(got, want) != 0)
            fail_msg("%s printed\n%s\nwithout a TEE:\n%s", args, got, want);
    }
    snprintf(args, sizeof args, "classifier predict -pp_start 1 -pp_end 4 %s", tail);
    expect_refusal(args, "-tee_output top1: the TEE segment 1..4 ends a network with a tree "
                         "softmax, whose classes darknet ranks after hierarchy_predictions");
    snprintf(args, sizeof args, "classifier predict -pp_start 3 -pp_end 4 -tee_output topk %s",
             tail);
    expect_refusal(args, "use -tee_output scores");
}

/* backup/lenet_final.weights{,.tz} from a run of layers 4..8 under -tee_output topk (the
 * policy its saves seal), copied to sealed.weights{,.tz}. */
static void make_sealed_pair(void)
{
    char args[256], out[1 << 15];
    snprintf(args, sizeof args,
             "classifier train -seed %d -pp_start 4 -pp_end 8 -tee_output topk bars.data "
             "lenet.cfg",
             SEED);
    int rc = darknetp(args, out, sizeof out);
    if (rc != 0)
        fail_msg("%s:\n%s", args, out);
    shell("cp backup/lenet_final.weights sealed.weights && cp backup/lenet_final.weights.tz "
          "sealed.weights.tz");
}

static void test_sealed_round_trip(void **state)
{
    (void)state;
    char out[1 << 15], ref[1 << 15];
    make_sealed_pair();
    /* Validation through the sealed pair ranks like the all-normal-world run's weights. */
    if (darknetp("classifier valid -pp_start 4 -pp_end 8 -tee_output topk bars.data lenet.cfg "
                 "sealed.weights 2>&1 >/dev/null",
                 out, sizeof out) != 0)
        fail_msg("valid through the sealed pair failed:\n%s", out);
    assert_int_equal(darknetp("classifier valid -pp_start 4 -pp_end 8 -tee_output topk "
                              "bars.data lenet.cfg sealed.weights 2>/dev/null",
                              out, sizeof out),
                     0);
    assert_int_equal(darknetp("classifier train -seed 7 bars.data lenet.cfg", ref, sizeof ref), 0);
    assert_int_equal(darknetp("classifier valid bars.data lenet.cfg backup/lenet_final.weights "
                              "2>/dev/null",
                              ref, sizeof ref),
                     0);
    assert_string_equal(out, ref);
    /* The policy sealed with the pair is the one it was trained under: asking for more
     * (every label's rank) is refused, naming the rule. */
    expect_refusal("classifier valid -pp_start 4 -pp_end 8 -tee_output rank bars.data lenet.cfg "
                   "sealed.weights",
                   "allows output topk at most, rank was asked");
    /* Load and save again: the same values come back sealed under a new nonce. */
    assert_int_equal(darknetp("classifier train -seed 7 -pp_start 4 -pp_end 8 -tee_output topk "
                              "bars.data lenet.cfg sealed.weights >/dev/null",
                              out, sizeof out),
                     0);
    /* -seal_infer_only: the saves of a run deploy for inference; training them is refused. */
    assert_int_equal(darknetp("classifier train -seed 7 -pp_start 4 -pp_end 8 -seal_infer_only "
                              "bars.data lenet.cfg sealed.weights >/dev/null",
                              out, sizeof out),
                     0);
    shell("cp backup/lenet_final.weights deploy.weights && cp backup/lenet_final.weights.tz "
          "deploy.weights.tz");
    assert_int_equal(darknetp("classifier valid -pp_start 4 -pp_end 8 bars.data lenet.cfg "
                              "deploy.weights >/dev/null 2>&1",
                              out, sizeof out),
                     0);
    expect_refusal("classifier train -seed 7 -pp_start 4 -pp_end 8 bars.data lenet.cfg "
                   "deploy.weights",
                   "the model allows inference only, training was asked");
    expect_refusal("classifier train -seal_infer_only bars.data lenet.cfg", "-seal_infer_only");
}

static void test_sealed_refusals(void **state)
{
    (void)state;
    make_sealed_pair();
    expect_refusal("classifier valid bars.data lenet.cfg sealed.weights",
                   "layers 4..8 are sealed in sealed.weights.tz; run with -pp_start 4 -pp_end 8");
    expect_refusal("classifier valid -pp_start 5 -pp_end 8 bars.data lenet.cfg sealed.weights",
                   "run with -pp_start 4 -pp_end 8");
    expect_refusal("classifier valid -pp_start 4 -pp_end 8 bars.data lenet2.cfg sealed.weights",
                   "sealed for another model: this cfg's layers 4..8 are not the ones");
    expect_refusal("classifier valid -pp_start 4 -pp_end 8 -clear bars.data lenet.cfg "
                   "sealed.weights",
                   "-clear");
    /* The blob of another save (the first epoch's): the pair does not match. */
    char out[1 << 15];
    shell("cp backup/lenet_1.weights.tz mixed.weights.tz && cp sealed.weights mixed.weights");
    expect_refusal("classifier valid -pp_start 4 -pp_end 8 bars.data lenet.cfg mixed.weights",
                   "are not from the same save");
    /* A blob of another partition under the right name. */
    assert_int_equal(darknetp("classifier train -seed 7 -pp_start 5 -pp_end 8 bars.data "
                              "lenet.cfg",
                              out, sizeof out),
                     0);
    shell("cp backup/lenet_final.weights.tz other.weights.tz && cp sealed.weights "
          "other.weights");
    expect_refusal("classifier valid -pp_start 4 -pp_end 8 bars.data lenet.cfg other.weights",
                   "seals layers 5..8 of a 9-layer network");
    /* The marker removed: a plain file beside a sealed blob is refused, not provisioned. */
    unsigned char *w = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sealed.weights", dir);
    long n = read_whole_file(path, &w);
    memset(w + 8, 0, 4);
    snprintf(path, sizeof path, "%s/unmarked.weights", dir);
    write_all(path, w, (size_t)n);
    free(w);
    shell("cp sealed.weights.tz unmarked.weights.tz");
    expect_refusal("classifier valid -pp_start 4 -pp_end 8 bars.data lenet.cfg unmarked.weights",
                   "unmarked.weights.tz");
}

/* One flipped bit at each byte of the blob: every load refused, then the intact pair loads. */
static void test_sealed_every_byte(void **state)
{
    (void)state;
    struct dk_model m = {0};
    struct dk_error err;
    struct dz_pnet pn;
    char cfg[PATH_MAX], good[PATH_MAX], bad[PATH_MAX], tz[PATH_MAX];
    unsigned char *blob = NULL;
    make_sealed_pair();
    snprintf(cfg, sizeof cfg, "%s/lenet.cfg", dir);
    snprintf(good, sizeof good, "%s/sealed.weights", dir);
    snprintf(bad, sizeof bad, "%s/flipped.weights", dir);
    snprintf(tz, sizeof tz, "%s/sealed.weights.tz", dir);
    long len = read_whole_file(tz, &blob);
    assert_true(len > 100);
    unsigned char *w = NULL;
    long wlen = read_whole_file(good, &w);
    write_all(bad, w, (size_t)wlen);
    free(w);
    snprintf(tz, sizeof tz, "%s/flipped.weights.tz", dir);
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    struct dz_pnet_opts o = {.first = 4, .last = 8, .batch = 1, .seed = SEED, .top_k = 1};
    assert_int_equal(dz_pnet_open(&pn, &m, &o, &err), 0);
    for (long i = 0; i < len; i++) {
        blob[i] ^= (unsigned char)(1u << (i % 8));
        write_all(tz, blob, (size_t)len);
        if (dz_pnet_load_weights(&pn, bad, false, &err) == 0)
            fail_msg("a blob with bit %ld of byte %ld flipped was accepted", i % 8, i);
        if (!strstr(err.msg, "refused") && !strstr(err.msg, "sealed blob"))
            fail_msg("byte %ld: unclear message: %s", i, err.msg);
        blob[i] ^= (unsigned char)(1u << (i % 8));
    }
    assert_int_equal(dz_pnet_load_weights(&pn, good, false, &err), 0);
    dz_pnet_close(&pn);
    dk_model_free(&m);
    free(blob);
}

/* -------------------------------------------------------- (d) secure memory */

static void test_secure_memory(void **state)
{
    (void)state;
    char out[1 << 15];
    /* batch_normalize: a connected layer without it would stream its weights instead
     * (test_cli_stream_train.c); this one cannot, so it is refused. */
    write_text("big.cfg", "[net]\nbatch=2\nsubdivisions=1\n" NET_KEYS
                          "learning_rate=0.01\npolicy=constant\nmax_batches=1\n"
                          "[connected]\noutput=40000\nbatch_normalize=1\nactivation=relu\n"
                          "[connected]\noutput=4\nactivation=linear\n"
                          "[softmax]\n");
    long before = console_size();
    int rc = darknetp("classifier train -pp_start 0 -pp_end 2 bars.data big.cfg", out, sizeof out);
    if (rc == 0 || !strstr(out, "layers 0..2 need ") || !strstr(out, "TA_DATA_SIZE = ") ||
        !strstr(out, "the last 2 layers fit: -pp_start 1 -pp_end 2"))
        fail_msg("expected a refusal naming the need, TA_DATA_SIZE and what fits:\n%s", out);
    /* Refused by the host before OPEN_MODEL: the TA logged no open and no refusal. */
    unsigned char *log = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/console.log", dir);
    long n = read_whole_file(path, &log);
    assert_true(n < 0 || n == before || !strstr((const char *)log + before, "layers 0..2"));
    free(log);
    rc = darknetp("classifier train -pp_start 1 -pp_end 2 bars.data big.cfg", out, sizeof out);
    if (rc != 0)
        fail_msg("the fitting partition failed:\n%s", out);
    assert_non_null(strstr(out, "connected_TA"));
    rc = darknetp("tee plan big.cfg -train", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "the last 2 layers fit: -pp_start 1 -pp_end 2"));
}

/* A route or shortcut across the boundary is refused with both layers named. */
static void test_partition_rules(void **state)
{
    (void)state;
    expect_refusal("classifier train -pp_start 2 -pp_end 4 bars.data bn.cfg",
                   "layer 3 (res) inside the TEE segment 2..4 reads layer 1");
    expect_refusal("classifier train -pp_start 0 -pp_end 2 bars.data bn.cfg",
                   "layer 3 (res) runs in the normal world after the TEE segment 0..2 and reads "
                   "layer 1");
    expect_refusal("classifier train -pp_start 8 -pp_end 8 bars.data lenet.cfg",
                   "layer 7 (softmax) computes a loss before the TEE segment 8..8; a loss layer "
                   "must be inside the segment or after it: start the segment at layer 7 or "
                   "earlier (-pp_start 7)");
    /* the TA ranks no labels of a tree softmax (darknet ranks them after its hierarchy):
     * a validation pass under a label policy is refused before training starts */
    expect_refusal("classifier train -pp_start 1 -pp_end 4 -valid_every 1 bars.data tree.cfg",
                   "-valid_every: the TEE segment ends a network with a tree softmax, whose "
                   "labels the TA does not rank");
}

static long status_field(long pid, const char *key)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = atol(line + strlen(key));
    if (f)
        fclose(f);
    return v;
}

/* The pid of this process's TA instance: a grandchild running the DarkneTZ TA. */
static long ta_pid(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long found = -1;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], cmd[512] = "";
        long pid = atol(e->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[n] = '\0';
        if (strstr(cmd, "5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta") &&
            status_field(status_field(pid, "PPid:"), "PPid:") == (long)getpid())
            found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

/* A TA that dies mid-training gives the host a clear message, not a crash. */
static void test_ta_death(void **state)
{
    (void)state;
    struct dk_model m = {0};
    struct dk_error err;
    struct dz_pnet pn;
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/lenet.cfg", dir);
    assert_int_equal(dk_parse_network(cfg, &m, &err), 0);
    struct dz_pnet_opts o = {.first = 4, .last = 8, .training = true, .seed = SEED, .top_k = 1};
    assert_int_equal(dz_pnet_open(&pn, &m, &o, &err), 0);
    size_t nx = (size_t)pn.batch * dz_pnet_inputs(&pn);
    float *x = calloc(nx, sizeof(float)), *y = calloc((size_t)pn.batch * CLASSES, sizeof(float));
    float loss = 0;
    bool known = true;
    assert_int_equal(dz_pnet_train_batch(&pn, x, y, &loss, &known, &err), 0);
    assert_false(known);
    long pid = ta_pid();
    assert_true(pid > 0);
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    usleep(100000);
    assert_int_equal(dz_pnet_train_batch(&pn, x, y, &loss, &known, &err), -1);
    if (!strstr(err.msg, "the TA died (origin TEE)"))
        fail_msg("unclear message: %s", err.msg);
    free(x);
    free(y);
    dz_pnet_close(&pn);
    dk_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equivalence_lenet),
        cmocka_unit_test(test_equivalence_batchnorm),
        cmocka_unit_test(test_equivalence_activations),
        cmocka_unit_test(test_equivalence_layer_kinds),
        cmocka_unit_test(test_equivalence_dilation_route_groups),
        cmocka_unit_test(test_equivalence_adam),
        cmocka_unit_test(test_equivalence_mix),
        cmocka_unit_test(test_equivalence_tree_softmax),
        cmocka_unit_test(test_tree_predict_in_tee),
        cmocka_unit_test(test_equivalence_multi_shortcut),
        cmocka_unit_test(test_equivalence_antialiasing),
        cmocka_unit_test(test_partial_fine_tune),
        cmocka_unit_test(test_dontload_partition),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_leak_audit),
        cmocka_unit_test(test_sealed_round_trip),
        cmocka_unit_test(test_sealed_refusals),
        cmocka_unit_test(test_sealed_every_byte),
        cmocka_unit_test(test_secure_memory),
        cmocka_unit_test(test_partition_rules),
        cmocka_unit_test(test_ta_death),
    };
    return cmocka_run_group_tests_name("partition", tests, group_setup, group_teardown);
}
