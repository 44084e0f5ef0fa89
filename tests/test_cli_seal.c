/*
 * test_cli_seal.c - provisioning a model to one device, end to end through darknetp, with
 * simulated devices that differ by their secure storage (DZ_TEE_STORAGE: the device key and
 * the rollback records live there):
 *  - `tee pubkey`: the device.pub format, the same key on every run of a device, another
 *    key on another device;
 *  - the darknet fixture sealed for device 1 (layers 4..10) predicts exactly as the plain
 *    model on device 1; device 2 refuses it, and its secure console names the device;
 *  - any flipped header byte is refused, and the pair still loads afterwards;
 *  - the policy: training an inference-only model is refused naming the rule, a training
 *    policy holds the device to its batch bounds and lets it train within them;
 *  - rollback: after version 2 loads, version 1 is refused on that device in every later
 *    process (each process starts the simulated secure world afresh: a device restart),
 *    while device 2 still takes version 1;
 *  - leak audit: no float of layers 4..10 of the plain model appears in anything device 1
 *    receives from the TEE (DZ_TEE_RECORD), prints, or writes (sealed pairs, checkpoints,
 *    secure console, secure storage).
 */
#define _GNU_SOURCE /* realpath, memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char fixture[PATH_MAX];
static char dir[64];

/* mnist_lenet.cfg: parameter floats of layers 0..3 and 4..10, and the file header. */
#define FRONT_FLOATS (6 * 3 * 25 + 6 + 6 * 6 * 25 + 6)
#define SEGMENT_FLOATS (294 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10)
#define HEADER_BYTES 20
#define PP "-pp_start 4 -pp_end 10"

static int setup(void **state)
{
    (void)state;
    char rel[PATH_MAX], cmd[8 * PATH_MAX], out[256];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-cliseal-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* A training set of the fixture's images and a small-batch copy of its cfg. The
     * fixture's weights have seen 3600128 images: 900032 batches of 4, so training from
     * them runs three more. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ls '%s'/images/*.png > train.list && ls '%s'/images/*.png > "
             "predict.list && printf 'classes=10\\ntrain=train.list\\nlabels=%s/labels.list\\n"
             "names=%s/names.list\\nbackup=backup\\ntop=5\\n' > mnist.data && "
             "sed -e 's/^batch=100/batch=4/' -e 's/^max_batches=10000/max_batches=900035/' "
             "'%s/mnist_lenet.cfg' > small.cfg",
             dir, fixture, fixture, fixture, fixture, fixture);
    return run_capture(cmd, out, sizeof out) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/*
 * darknetp on device @dev (its storage dir/dev, its console dir/dev.log), in dir, stdout
 * and stderr into out; with DZ_TEE_RECORD=dir/@record when @record is not NULL.
 */
static int on_device(const char *dev, const char *record, const char *args, char *out, size_t size)
{
    char cmd[8 * PATH_MAX], rec[PATH_MAX] = "";
    if (record)
        snprintf(rec, sizeof rec, "DZ_TEE_RECORD='%s/%s' ", dir, record);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && DZ_TEE_STORAGE='%s/%s' DZ_TEE_LOG='%s/%s.log' %s'%s' %s 2>&1", dir, dir,
             dev, dir, dev, rec, bin, args);
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

/* The owner's machine, where no TEE is reachable at all: seals the fixture's weights with
 * @cfg (NULL: the fixture's own) for the key in dir/@pub. */
static void owner_seal(const char *opts, const char *cfg, const char *pub, const char *out_name)
{
    char cmd[8 * PATH_MAX], out[1 << 14], cfg_path[PATH_MAX + 32];
    snprintf(cfg_path, sizeof cfg_path, "%s/mnist_lenet.cfg", fixture);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && DZ_TEE_CORE=/nonexistent DZ_TA_DIR=/nonexistent "
             "DZ_TEE_STORAGE=/nonexistent '%s' seal %s %s '%s' '%s/mnist_lenet.weights' %s -o %s "
             "2>&1",
             dir, bin, PP, opts, cfg ? cfg : cfg_path, fixture, pub, out_name);
    if (run_capture(cmd, out, sizeof out) != 0)
        fail_msg("seal %s -o %s:\n%s", opts, out_name, out);
}

/* dir/DEV.pub from `tee pubkey` on DEV; its stdout into text (at least 256 bytes). */
static void pubkey(const char *dev, char *text)
{
    char cmd[4 * PATH_MAX], out[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && DZ_TEE_STORAGE='%s/%s' DZ_TEE_LOG='%s/%s.log' '%s' tee pubkey > %s.pub "
             "2> %s.pub.err && cat %s.pub",
             dir, dir, dev, dir, dev, bin, dev, dev, dev);
    if (run_capture(cmd, out, sizeof out) != 0)
        fail_msg("tee pubkey on %s failed:\n%s", dev, out);
    snprintf(text, 256, "%.255s", out);
}

static void predict(const char *dev, const char *record, const char *weights, char *out,
                    size_t size, bool expect_ok)
{
    char args[4 * PATH_MAX];
    snprintf(args, sizeof args,
             "classifier predict " PP " mnist.data '%s/mnist_lenet.cfg' %s < predict.list", fixture,
             weights);
    int rc = on_device(dev, record, args, out, size);
    if ((rc == 0) != expect_ok)
        fail_msg("predict %s on %s exited %d:\n%s", weights, dev, rc, out);
}

/* Lines of out that are predictions (not the layer table or timings). */
static void labels_only(const char *out, char *labels, size_t size)
{
    size_t n = 0;
    labels[0] = '\0';
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        if (memmem(line, len, "%: ", 3) && n + len < size) {
            memcpy(labels + n, line, len);
            n += len;
            labels[n] = '\0';
        }
        line += len;
    }
}

static bool console_has(const char *dev, const char *needle)
{
    char path[PATH_MAX];
    unsigned char *log = NULL;
    snprintf(path, sizeof path, "%s/%s.log", dir, dev);
    bool found = read_whole_file(path, &log) > 0 && strstr((char *)log, needle);
    free(log);
    return found;
}

static void hex_of(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* -------------------------------------------------------------------- tests */

static void test_pubkey(void **state)
{
    (void)state;
    char a[256], again[256], b[256], hexkey[65], fp_hex[65], want[256];
    unsigned char key[32], fp[32];
    pubkey("dev1", a);
    pubkey("dev1", again);
    pubkey("dev2", b);
    assert_string_equal(a, again);
    assert_string_not_equal(a, b);
    /* "# DarkneTZ device key (X25519), fingerprint SHA256:<64 hex>\ndz-x25519 <64 hex>\n" */
    const char *line2 = strchr(a, '\n');
    assert_non_null(line2);
    assert_int_equal(sscanf(line2 + 1, "dz-x25519 %64[0-9a-f]", hexkey), 1);
    assert_int_equal(strlen(hexkey), 64);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        assert_int_equal(sscanf(hexkey + 2 * i, "%2x", &v), 1);
        key[i] = (unsigned char)v;
    }
    assert_int_equal(EVP_Digest(key, 32, fp, NULL, EVP_sha256(), NULL), 1);
    hex_of(fp, 32, fp_hex);
    snprintf(want, sizeof want,
             "# DarkneTZ device key (X25519), fingerprint SHA256:%s\ndz-x25519 %s\n", fp_hex,
             hexkey);
    assert_string_equal(a, want);
    /* The fingerprint on stderr too. */
    char path[PATH_MAX];
    unsigned char *err = NULL;
    snprintf(path, sizeof path, "%s/dev1.pub.err", dir);
    assert_true(read_whole_file(path, &err) > 0);
    assert_non_null(strstr((char *)err, fp_hex));
    free(err);
}

/* Every image of the fixture, on device 1: the sealed pair predicts what the plain model
 * does (top1, the same partition); device 2 refuses the pair and says why. */
static void test_sealed_model_on_two_devices(void **state)
{
    (void)state;
    char text[256], args[2 * PATH_MAX], sealed[1 << 15], plain[1 << 15], ls[1 << 14], lp[1 << 14];
    pubkey("dev1", text);
    pubkey("dev2", text);
    owner_seal("", NULL, "dev1.pub", "m1");
    predict("dev1", NULL, "m1.weights", sealed, sizeof sealed, true);
    snprintf(args, sizeof args, "'%s/mnist_lenet.weights'", fixture);
    predict("dev1", NULL, args, plain, sizeof plain, true);
    labels_only(sealed, ls, sizeof ls);
    labels_only(plain, lp, sizeof lp);
    assert_int_equal(strlen(lp),
                     strlen("100.00%: 5\n 0.00%: 1\n 0.00%: 2\n 0.00%: 3\n 0.00%: 4\n") * 12);
    assert_string_equal(ls, lp);
    assert_non_null(strstr(ls, "100.00%: 3\n 0.00%: 1\n 0.00%: 2\n 0.00%: 0\n 0.00%: 4\n"));

    predict("dev2", NULL, "m1.weights", sealed, sizeof sealed, false);
    /* darknetp names both devices before the TA is asked (test_ta_attacks has the TA's own
     * refusal of another device's blob). */
    assert_non_null(strstr(sealed, "m1.weights.tz: sealed for another device (SHA256:"));
    assert_non_null(strstr(sealed, "this device is SHA256:"));
    assert_null(strstr(sealed, "%: "));
}

/* Flips one byte of dir/m1.weights.tz at @at, loads it, restores it. */
static void expect_flip_refused(size_t at, const unsigned char *blob, long size)
{
    char path[PATH_MAX], out[1 << 15];
    unsigned char *copy = malloc((size_t)size);
    assert_non_null(copy);
    memcpy(copy, blob, (size_t)size);
    copy[at] ^= 0x01;
    snprintf(path, sizeof path, "%s/flip.weights.tz", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(copy, 1, (size_t)size, f), (size_t)size);
    assert_int_equal(fclose(f), 0);
    free(copy);
    predict("dev1", NULL, "flip.weights", out, sizeof out, false);
    if (!strstr(out, "flip.weights.tz"))
        fail_msg("byte %zu flipped: the refusal does not name the blob:\n%s", at, out);
}

static void test_flipped_bytes_refused(void **state)
{
    (void)state;
    char text[256], cmd[2 * PATH_MAX], out[1 << 15];
    unsigned char *blob = NULL;
    pubkey("dev1", text);
    owner_seal("", NULL, "dev1.pub", "flipsrc");
    snprintf(cmd, sizeof cmd, "cd '%s' && cp flipsrc.weights flip.weights", dir);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "%s/flipsrc.weights.tz", dir);
    long size = read_whole_file(cmd, &blob);
    assert_int_equal(size, 260 + 4 * SEGMENT_FLOATS + 16);
    /* Every header byte (a sample of them under the sanitizers), then the ciphertext's
     * first and last bytes and the tag's. */
    const size_t step = getenv("DNN_TEST_QUICK") ? 7 : 1;
    for (size_t at = 0; at < 260; at += step)
        expect_flip_refused(at, blob, size);
    expect_flip_refused(260, blob, size);
    expect_flip_refused((size_t)size - 17, blob, size);
    expect_flip_refused((size_t)size - 1, blob, size);
    /* The untouched pair still loads: nothing above changed the device's state. */
    predict("dev1", NULL, "flipsrc.weights", out, sizeof out, true);
    assert_non_null(strstr(out, "100.00%: "));
    free(blob);
}

static void train(const char *dev, const char *record, const char *weights, char *out, size_t size,
                  bool expect_ok)
{
    char args[PATH_MAX];
    snprintf(args, sizeof args, "classifier train " PP " mnist.data small.cfg %s", weights);
    int rc = on_device(dev, record, args, out, size);
    if ((rc == 0) != expect_ok)
        fail_msg("train from %s on %s exited %d:\n%s", weights, dev, rc, out);
}

static void test_policy(void **state)
{
    (void)state;
    char text[256], out[1 << 15];
    pubkey("dev1", text);
    /* The default: inference only. */
    owner_seal("", NULL, "dev1.pub", "infer");
    train("dev1", NULL, "infer.weights", out, sizeof out, false);
    assert_non_null(strstr(out, "the model allows inference only, training was asked"));
    /* Training allowed at the fixture cfg's batch (100): a run at batch 4 is outside it. */
    owner_seal("-allow_train", NULL, "dev1.pub", "train100");
    train("dev1", NULL, "train100.weights", out, sizeof out, false);
    assert_non_null(strstr(out, "the model allows training at batch 100..100, batch 4..4"));
    /* Within the bounds it trains, and the loss stays in the TA. */
    owner_seal("-allow_train -batch_min 1 -batch_max 4", NULL, "dev1.pub", "train4");
    train("dev1", NULL, "train4.weights", out, sizeof out, true);
    assert_non_null(strstr(out, "900035, "));
    assert_non_null(strstr(out, ": loss in the TEE, "));
    /* The output policy: top1 sealed, topk asked. */
    char args[4 * PATH_MAX];
    snprintf(args, sizeof args,
             "classifier predict " PP " -tee_output topk '%s/mnist.dataset' "
             "'%s/mnist_lenet.cfg' infer.weights '%s/images/t_00007_c3.png'",
             fixture, fixture, fixture);
    assert_int_not_equal(on_device("dev1", NULL, args, out, sizeof out), 0);
    assert_non_null(strstr(out, "the model allows output top1 at most, topk was asked"));
}

static void test_rollback(void **state)
{
    (void)state;
    char text[256], out[1 << 15];
    pubkey("rb1", text);
    pubkey("rb2", text);
    owner_seal("-version 2", NULL, "rb1.pub", "v2");
    owner_seal("-version 1", NULL, "rb1.pub", "v1");
    owner_seal("", NULL, "rb2.pub", "v1dev2");
    /* Version 1 loads on a device that has seen nothing newer. */
    predict("rb1", NULL, "v1.weights", out, sizeof out, true);
    predict("rb1", NULL, "v2.weights", out, sizeof out, true);
    assert_true(console_has("rb1", "model version 2 recorded"));
    /* Then it is refused: in the next process, and the one after (each starts the secure
     * world afresh, as a device restart does; the record is in secure storage). */
    for (int run = 0; run < 2; run++) {
        predict("rb1", NULL, "v1.weights", out, sizeof out, false);
        assert_non_null(strstr(out, "v1.weights.tz: refused by the TA: model version 1 is older "
                                    "than a version of this model this device has already "
                                    "loaded (rollback protection)"));
    }
    assert_true(console_has("rb1", "model version 1 is older than version 2"));
    /* The newer one still loads, and so does version 1 on the other device. */
    predict("rb1", NULL, "v2.weights", out, sizeof out, true);
    predict("rb2", NULL, "v1dev2.weights", out, sizeof out, true);
    assert_false(console_has("rb2", "older than"));
}

/* ------------------------------------------------------------------- leak audit */

/*
 * Two searches, because a 4-byte pattern matches by chance: ciphertext (sealed blobs, secure
 * storage) is uniformly random, and the training record holds some 10^5 deltas at layer 4's
 * input, floats of the weights' own range, so with 46,000 protected floats a few 4-byte
 * matches there are expected whatever the TA does (measured: 1 to 5 per blob, about 18 in
 * the record, none of them two protected floats in a row).
 *  - singles: every protected float (but 0, +-1, non-finite, and values the normal world's
 *    own layers 0..3 hold too) is searched in the plain material: darknetp's output, the
 *    inference record, the secure console and the .weights files;
 *  - pairs: two protected floats that are neighbours in the model (in .weights order, and
 *    down a column of each connected layer's weight matrix) are searched, as 8 bytes, in
 *    everything: also the sealed blobs, the checkpoints' blobs, the training record and the
 *    secure storage. A chance match of 8 bytes is about 2^-64 per place; leaked parameters
 *    come in runs.
 */
struct hay {
    unsigned char *data;
    size_t len, files;
    const char *name[64];
    size_t start[64];
};

static void add_piece(struct hay *h, const char *name, const void *data, size_t n)
{
    assert_true(h->files < 64);
    h->name[h->files] = strdup(name);
    h->start[h->files++] = h->len;
    h->data = realloc(h->data, h->len + n + 1);
    assert_non_null(h->data);
    memcpy(h->data + h->len, data, n);
    h->len += n;
}

static void add_file(struct hay *h, const char *path)
{
    unsigned char *d = NULL;
    long n = read_whole_file(path, &d);
    if (n < 0)
        fail_msg("%s: cannot read", path);
    add_piece(h, path, d, (size_t)n);
    free(d);
}

/* Every regular file under path. */
static void add_tree(struct hay *h, const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        assert_int_equal(lstat(sub, &st), 0);
        if (S_ISDIR(st.st_mode))
            add_tree(h, sub);
        else if (S_ISREG(st.st_mode))
            add_file(h, sub);
    }
    closedir(d);
}

static void free_hay(struct hay *h)
{
    for (size_t i = 0; i < h->files; i++)
        free((void *)h->name[i]);
    free(h->data);
    memset(h, 0, sizeof *h);
}

static const char *piece_of(const struct hay *h, size_t at, size_t *offset)
{
    size_t i = 0;
    while (i + 1 < h->files && h->start[i + 1] <= at)
        i++;
    *offset = at - h->start[i];
    return h->name[i];
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

static bool trivial(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, 4);
    return v == 0.0f || v == 1.0f || v == -1.0f || v != v || v - v != 0.0f;
}

/*
 * The first place of @h holding one of the sorted @n patterns of @width bytes, or SIZE_MAX.
 * Pairs are looked for at every byte of each piece, singles at its 4-byte places only: every
 * binary format here keeps its floats 4-aligned (records are 4-byte words, .weights floats
 * follow a 20-byte header), and a window across two of the normal world's own floats would
 * otherwise match a protected one by chance (46,000 of them, thousands of windows).
 */
static size_t search(const struct hay *h, const void *patterns, size_t n, size_t width)
{
    const size_t step = width == 4 ? 4 : 1;
    for (size_t i = 0; i < h->files; i++) {
        const size_t end = i + 1 < h->files ? h->start[i + 1] : h->len;
        for (size_t at = h->start[i]; at + width <= end; at += step) {
            uint64_t key = 0;
            memcpy(&key, h->data + at, width);
            if (width == 8 ? bsearch(&key, patterns, n, 8, cmp_u64)
                           : bsearch(&key, patterns, n, 4, cmp_u32))
                return at;
        }
    }
    return SIZE_MAX;
}

static void expect_absent(const struct hay *h, const void *patterns, size_t n, size_t width,
                          const char *what)
{
    size_t at = search(h, patterns, n, width), off = 0;
    if (at != SIZE_MAX) {
        const char *where = piece_of(h, at, &off);
        fail_msg("%s of layers 4..10 found at byte %zu of %s", what, off, where);
    }
}

static void test_leak_audit(void **state)
{
    (void)state;
    char text[256], path[PATH_MAX + 32], out[1 << 15];
    struct hay plain_hay = {0}, all = {0};
    pubkey("leak", text);
    owner_seal("", NULL, "leak.pub", "leak");
    owner_seal("-allow_train -batch_min 1 -batch_max 4", NULL, "leak.pub", "leaktrain");
    predict("leak", "leak-predict.rec", "leak.weights", out, sizeof out, true);
    add_piece(&plain_hay, "predict's output", out, strlen(out));
    train("leak", "leak-train.rec", "leaktrain.weights", out, sizeof out, true);
    add_piece(&plain_hay, "train's output", out, strlen(out));
    static const char *plain_files[] = {"leak-predict.rec", "leak.log", "leak.weights",
                                        "leaktrain.weights", "backup/small_final.weights"};
    static const char *other_files[] = {"leak-train.rec", "leak.weights.tz",
                                        "leaktrain.weights.tz"};
    for (size_t i = 0; i < sizeof plain_files / sizeof plain_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, plain_files[i]);
        add_file(&plain_hay, path);
    }
    for (size_t i = 0; i < plain_hay.files; i++)
        add_piece(&all, plain_hay.name[i], plain_hay.data + plain_hay.start[i],
                  (i + 1 < plain_hay.files ? plain_hay.start[i + 1] : plain_hay.len) -
                      plain_hay.start[i]);
    for (size_t i = 0; i < sizeof other_files / sizeof other_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, other_files[i]);
        add_file(&all, path);
    }
    snprintf(path, sizeof path, "%s/leak", dir);
    add_tree(&all, path); /* the device's secure storage */
    snprintf(path, sizeof path, "%s/backup", dir);
    add_tree(&all, path); /* every checkpoint, with its blob */

    /* The protected values, and the normal world's own (layers 0..3), from the plain file. */
    unsigned char *file = NULL;
    snprintf(path, sizeof path, "%s/mnist_lenet.weights", fixture);
    assert_int_equal(read_whole_file(path, &file),
                     HEADER_BYTES + 4 * (FRONT_FLOATS + SEGMENT_FLOATS));
    uint32_t *front = malloc(FRONT_FLOATS * 4), *seg = malloc(SEGMENT_FLOATS * 4);
    uint32_t *singles = malloc(SEGMENT_FLOATS * 4);
    uint64_t *pairs = malloc(2 * SEGMENT_FLOATS * 8);
    assert_true(front && seg && singles && pairs);
    memcpy(front, file + HEADER_BYTES, FRONT_FLOATS * 4);
    memcpy(seg, file + HEADER_BYTES + 4 * FRONT_FLOATS, SEGMENT_FLOATS * 4);
    qsort(front, FRONT_FLOATS, 4, cmp_u32);
    size_t ns = 0, np = 0;
    for (size_t i = 0; i < SEGMENT_FLOATS; i++)
        if (!trivial(seg[i]) && !bsearch(&seg[i], front, FRONT_FLOATS, 4, cmp_u32))
            singles[ns++] = seg[i];
    /* Neighbours in .weights order, then down the columns of the three connected layers'
     * weights (biases first, then outputs x inputs, darknet's order). */
    for (size_t i = 0; i + 1 < SEGMENT_FLOATS; i++)
        if (!trivial(seg[i]) || !trivial(seg[i + 1]))
            pairs[np++] = (uint64_t)seg[i] | (uint64_t)seg[i + 1] << 32;
    static const size_t conn[3][3] = {{0, 120, 294}, /* layer 4: offset, outputs, inputs */
                                      {120 + 120 * 294, 84, 120},
                                      {120 + 120 * 294 + 84 + 84 * 120, 10, 84}};
    for (int l = 0; l < 3; l++) {
        const size_t w = conn[l][0] + conn[l][1], outs = conn[l][1], ins = conn[l][2];
        for (size_t o = 0; o + 1 < outs; o++)
            for (size_t i = 0; i < ins; i++) {
                uint32_t a = seg[w + o * ins + i], b = seg[w + (o + 1) * ins + i];
                if (!trivial(a) || !trivial(b))
                    pairs[np++] = (uint64_t)a | (uint64_t)b << 32;
            }
    }
    assert_true(ns > SEGMENT_FLOATS / 2);
    assert_true(np > SEGMENT_FLOATS);
    qsort(singles, ns, 4, cmp_u32);
    qsort(pairs, np, 8, cmp_u64);
    expect_absent(&plain_hay, singles, ns, 4, "a protected float");
    expect_absent(&all, pairs, np, 8, "two neighbouring protected floats");
    /* The search itself finds them where they are: the plain file, and its transposed copy. */
    struct hay control = {0};
    add_piece(&control, "plain", file, HEADER_BYTES + 4 * (FRONT_FLOATS + SEGMENT_FLOATS));
    assert_int_not_equal(search(&control, singles, ns, 4), SIZE_MAX);
    assert_int_not_equal(search(&control, pairs, np, 8), SIZE_MAX);
    free_hay(&control);
    float *t = malloc(294 * 120 * 4);
    assert_non_null(t);
    for (size_t o = 0; o < 120; o++)
        for (size_t i = 0; i < 294; i++)
            memcpy(&t[i * 120 + o], &seg[120 + o * 294 + i], 4);
    add_piece(&control, "transposed layer 4", t, 294 * 120 * 4);
    assert_int_not_equal(search(&control, pairs, np, 8), SIZE_MAX);
    free(t);
    free_hay(&control);
    free(front);
    free(seg);
    free(singles);
    free(pairs);
    free(file);
    free_hay(&plain_hay);
    free_hay(&all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pubkey),
        cmocka_unit_test(test_sealed_model_on_two_devices),
        cmocka_unit_test(test_flipped_bytes_refused),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_leak_audit),
    };
    return cmocka_run_group_tests_name("cli_seal", tests, setup, teardown);
}
