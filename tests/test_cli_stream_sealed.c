/*
 * test_cli_stream_sealed.c - darknetp streams a sealed pair's TEE layers (issue 11): the TA
 * imports the .tz blob into chunks itself (DZ_CMD_STREAM_IMPORT_SEALED), end to end on the
 * seed's LeNet fixture with layers 4..10 in the TEE, on a simulated device:
 *  - a pair a resident training run wrote (device-sealed) predicts with -tee_stream exactly as
 *    it does resident;
 *  - an owner-sealed, inference-only model predicts streamed exactly as the plain model does
 *    without TEE, still refuses training and an output beyond its policy, and nothing the
 *    normal world receives from the TEE (DZ_TEE_RECORD) holds two neighbouring protected
 *    floats;
 *  - a .tz with a flipped ciphertext byte, a flipped tag byte, or one byte short is refused.
 */
#define _GNU_SOURCE /* realpath, memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    snprintf(dir, sizeof dir, "/tmp/dz-clistrseal-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* As test_cli_seal: a training set of the fixture's images, a small-batch cfg whose
     * max_batches lets a run from the fixture's weights train three more batches. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ls '%s'/images/*.png > train.list && ls '%s'/images/*.png > "
             "predict.list && printf 'classes=10\\ntrain=train.list\\nlabels=%s/labels.list\\n"
             "names=%s/names.list\\nbackup=backup\\ntop=5\\n' > mnist.data && "
             "sed -e 's/^batch=100/batch=4/' -e 's/^max_batches=10000/max_batches=900035/' "
             "'%s/mnist_lenet.cfg' > small.cfg && mkdir -p backup",
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

/* darknetp on the device (storage dir/dev, console dir/dev.log) in dir; with
 * DZ_TEE_RECORD=dir/@record when @record is not NULL. The exit code. */
static int on_device(const char *record, const char *args, char *out, size_t size)
{
    char cmd[8 * PATH_MAX], rec[PATH_MAX] = "";
    if (record)
        snprintf(rec, sizeof rec, "DZ_TEE_RECORD='%s/%s' ", dir, record);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && DZ_TEE_STORAGE='%s/dev' DZ_TEE_LOG='%s/dev.log' %s'%s' %s 2>&1", dir, dir,
             dir, rec, bin, args);
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

static void predict(const char *opts, const char *record, const char *cfg, const char *weights,
                    char *out, size_t size, bool expect_ok)
{
    char args[4 * PATH_MAX];
    snprintf(args, sizeof args, "classifier predict " PP " %s mnist.data '%s' %s < predict.list",
             opts, cfg, weights);
    int rc = on_device(record, args, out, size);
    if ((rc == 0) != expect_ok)
        fail_msg("predict %s %s exited %d:\n%s", opts, weights, rc, out);
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

static void test_trained_pair_streams_as_resident(void **state)
{
    (void)state;
    char args[4 * PATH_MAX], out[1 << 15], res[1 << 15], str[1 << 15], lr[1 << 14], ls[1 << 14];
    /* A resident training run from the plain fixture writes a device-sealed pair. */
    snprintf(args, sizeof args,
             "classifier train " PP " mnist.data small.cfg '%s/mnist_lenet.weights'", fixture);
    if (on_device(NULL, args, out, sizeof out) != 0)
        fail_msg("train exited non-zero:\n%s", out);
    snprintf(args, sizeof args, "%s/backup/small_final.weights.tz", dir);
    assert_int_equal(access(args, R_OK), 0);
    predict("", NULL, "small.cfg", "backup/small_final.weights", res, sizeof res, true);
    assert_null(strstr(res, "streaming the weights"));
    predict("-tee_stream", NULL, "small.cfg", "backup/small_final.weights", str, sizeof str, true);
    assert_non_null(strstr(str, "streaming the weights"));
    labels_only(res, lr, sizeof lr);
    labels_only(str, ls, sizeof ls);
    assert_true(strlen(lr) > 12 * strlen("100.00%: 5\n"));
    assert_string_equal(ls, lr);
}

/* The owner's machine: seals the fixture's weights for the device's key. */
static void owner_seal(const char *opts, const char *out_name)
{
    char cmd[8 * PATH_MAX], out[1 << 14];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && DZ_TEE_STORAGE='%s/dev' '%s' tee pubkey > dev.pub 2>/dev/null && "
             "DZ_TEE_CORE=/nonexistent DZ_TA_DIR=/nonexistent DZ_TEE_STORAGE=/nonexistent '%s' "
             "seal %s %s '%s/mnist_lenet.cfg' '%s/mnist_lenet.weights' dev.pub -o %s 2>&1",
             dir, dir, bin, bin, PP, opts, fixture, fixture, out_name);
    if (run_capture(cmd, out, sizeof out) != 0)
        fail_msg("seal %s -o %s:\n%s", opts, out_name, out);
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

/* No 8-byte window of dir/@name is two neighbouring floats of the protected layers. */
static void expect_no_pairs(const char *name)
{
    char path[PATH_MAX + 64];
    unsigned char *file = NULL, *rec = NULL;
    snprintf(path, sizeof path, "%s/mnist_lenet.weights", fixture);
    assert_int_equal(read_whole_file(path, &file),
                     HEADER_BYTES + 4 * (FRONT_FLOATS + SEGMENT_FLOATS));
    const uint32_t *seg = (const uint32_t *)(file + HEADER_BYTES + 4 * FRONT_FLOATS);
    uint64_t *pairs = malloc(SEGMENT_FLOATS * 8);
    assert_non_null(pairs);
    size_t np = 0;
    for (size_t i = 0; i + 1 < SEGMENT_FLOATS; i++) {
        uint32_t a, b;
        memcpy(&a, &seg[i], 4);
        memcpy(&b, &seg[i + 1], 4);
        if (!trivial(a) || !trivial(b))
            pairs[np++] = (uint64_t)a | (uint64_t)b << 32;
    }
    assert_true(np > SEGMENT_FLOATS / 2);
    qsort(pairs, np, 8, cmp_u64);
    /* The search finds them where they are. */
    uint64_t key = 0;
    memcpy(&key, file + HEADER_BYTES + 4 * FRONT_FLOATS + 400, 8);
    assert_non_null(bsearch(&key, pairs, np, 8, cmp_u64));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const long len = read_whole_file(path, &rec);
    assert_true(len > 4 * SEGMENT_FLOATS); /* the chunks crossed: their ciphertext is there */
    for (long at = 0; at + 8 <= len; at++) {
        memcpy(&key, rec + at, 8);
        if (bsearch(&key, pairs, np, 8, cmp_u64))
            fail_msg("%s holds two neighbouring protected floats at byte %ld", name, at);
    }
    free(pairs);
    free(rec);
    free(file);
}

/* Each image's first label line's label ("62.61%: 5" -> "5"), one per line, into @labels. */
static void top_labels(const char *out, char *labels, size_t size)
{
    size_t n = 0;
    labels[0] = '\0';
    for (const char *l = strstr(out, "Predicted in"); l; l = strstr(l + 1, "Predicted in")) {
        const char *line = strchr(l, '\n');
        const char *pct = line ? strstr(line, "%: ") : NULL;
        if (!pct)
            break;
        const int len = (int)strcspn(pct + 3, "\n");
        n += (size_t)snprintf(labels + n, size - n, "%.*s\n", len, pct + 3);
        assert_true(n < size);
    }
}

static void test_owner_model_streams_within_policy(void **state)
{
    (void)state;
    char cfg[PATH_MAX + 32], out[1 << 15], plain[1 << 15], lp[1 << 14], ls[1 << 14];
    char args[4 * PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/mnist_lenet.cfg", fixture);
    snprintf(args, sizeof args,
             "classifier predict mnist.data '%s' '%s/mnist_lenet.weights' < predict.list", cfg,
             fixture);
    if (on_device(NULL, args, plain, sizeof plain) != 0)
        fail_msg("predict without TEE:\n%s", plain);
    labels_only(plain, lp, sizeof lp);
    assert_int_equal(strlen(lp) > 0, 1);

    /* Sealed to give scores: streamed, every line is the one the plain model prints
     * without TEE, and the chunks that crossed hold no protected float in plain. */
    owner_seal("-tee_output scores", "scores");
    predict("-tee_stream -tee_output scores", "stream.rec", cfg, "scores.weights", out, sizeof out,
            true);
    assert_non_null(strstr(out, "streaming the weights"));
    labels_only(out, ls, sizeof ls);
    assert_string_equal(ls, lp);
    expect_no_pairs("stream.rec");

    /* Inference only, top1 (the default): the label of the plain model's top line. */
    owner_seal("", "owner");
    predict("-tee_stream", NULL, cfg, "owner.weights", out, sizeof out, true);
    top_labels(out, ls, sizeof ls);
    top_labels(plain, lp, sizeof lp);
    assert_int_equal(strlen(lp), 2 * 12);
    assert_string_equal(ls, lp);
    assert_null(strstr(out, "62.61%")); /* a score the policy keeps in the TEE */

    /* The policy holds streamed as resident: no training, no output beyond top1. */
    snprintf(args, sizeof args,
             "classifier train " PP " -tee_stream mnist.data small.cfg owner.weights");
    assert_int_not_equal(on_device(NULL, args, out, sizeof out), 0);
    assert_non_null(strstr(out, "the model allows inference only, training was asked"));
    predict("-tee_stream -tee_output topk", NULL, cfg, "owner.weights", out, sizeof out, false);
    assert_non_null(strstr(out, "the model allows output top1 at most, topk was asked"));
    /* A model that allows training: a streamed run would save chunks under the device's
     * chunk key, which carry no owner policy (DZ_CMD_STREAM_REKEY refuses an owner's model),
     * so it is refused, by name, before it trains. */
    owner_seal("-allow_train -batch_min 1 -batch_max 4", "trainable");
    snprintf(args, sizeof args,
             "classifier train " PP " -tee_stream mnist.data small.cfg trainable.weights");
    assert_int_not_equal(on_device(NULL, args, out, sizeof out), 0);
    assert_non_null(strstr(out, "are an owner's sealed model (version 1)"));
    assert_non_null(strstr(out, "carry none of the owner's policy"));
}

/* A copy of owner.weights(.tz), its blob's byte @flip_at flipped (none when < 0) and @cut
 * bytes cut off its end, predicted streamed: refused, naming the blob. */
static void expect_refused(const char *what, long flip_at, long cut)
{
    char cmd[4 * PATH_MAX], out[1 << 15], path[PATH_MAX + 32];
    unsigned char *blob = NULL;
    snprintf(path, sizeof path, "%s/owner.weights.tz", dir);
    long size = read_whole_file(path, &blob);
    assert_int_equal(size, 260 + 4 * SEGMENT_FLOATS + 16);
    if (flip_at >= 0)
        blob[flip_at] ^= 0x04;
    snprintf(path, sizeof path, "%s/bad.weights.tz", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(blob, 1, (size_t)(size - cut), f), (size_t)(size - cut));
    assert_int_equal(fclose(f), 0);
    free(blob);
    snprintf(cmd, sizeof cmd, "cd '%s' && cp owner.weights bad.weights", dir);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "%s/mnist_lenet.cfg", fixture);
    predict("-tee_stream", NULL, cmd, "bad.weights", out, sizeof out, false);
    if (!strstr(out, "bad.weights.tz"))
        fail_msg("%s: the refusal does not name the blob:\n%s", what, out);
    assert_null(strstr(out, "%: "));
}

static void test_tampered_pair_refused(void **state)
{
    (void)state;
    const long size = 260 + 4 * SEGMENT_FLOATS + 16;
    owner_seal("", "owner");
    expect_refused("a ciphertext byte", 260 + 4 * 5000, 0);
    expect_refused("a tag byte", size - 5, 0);
    expect_refused("one byte short", -1, 1);
    /* The device's state is intact: the untouched pair streams. */
    char cfg[PATH_MAX + 32], out[1 << 15];
    snprintf(cfg, sizeof cfg, "%s/mnist_lenet.cfg", fixture);
    predict("-tee_stream", NULL, cfg, "owner.weights", out, sizeof out, true);
    assert_non_null(strstr(out, "100.00%: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trained_pair_streams_as_resident),
        cmocka_unit_test(test_owner_model_streams_within_policy),
        cmocka_unit_test(test_tampered_pair_refused),
    };
    return cmocka_run_group_tests_name("cli_stream_sealed", tests, setup, teardown);
}
