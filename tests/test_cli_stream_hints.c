/*
 * test_cli_stream_hints.c - what darknetp says about streaming and sealed files when it
 * refuses or ignores something: each message names the file, the sizes and the remedy.
 *   - a streamed save whose cut the TA cannot give it (a -tee_chunk below it; a batch that
 *     leaves less of TA_DATA_SIZE): the .tz, the cut, and what to do;
 *   - -tee_stream/-tee_chunk without a partition, -tee_chunk on a segment that fits resident,
 *     a -tee_chunk above what OP-TEE for QEMU v8 took: said, not silently ignored;
 *   - a .tz with a damaged magic: "not a sealed weights file", not an oversized blob;
 *   - a plain save beside an older .tz: a warning at save time, the .tz left in place;
 *   - `tee plan` rows that cannot stream: the reason in the fits column.
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
#include <sys/stat.h>

#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char fixture[PATH_MAX];

/* Two 32-filter convolutions on 32x32x3 and a connected head: at batch 1 layers 0..4 train
 * streamed in the default 6 MiB TA (a save cut for the default 262144-byte working buffer);
 * at batch 18 they leave 96192 bytes for a working buffer, less than that cut. */
static const char wide_cfg[] = "[net]\nbatch=1\nsubdivisions=1\nheight=32\nwidth=32\nchannels=3\n"
                               "learning_rate=0.01\nmomentum=0.9\ndecay=0.0005\nmax_batches=2\n"
                               "[convolutional]\nfilters=32\nsize=3\nstride=1\npad=1\n"
                               "activation=leaky\n"
                               "[convolutional]\nfilters=32\nsize=3\nstride=1\npad=1\n"
                               "activation=leaky\n"
                               "[maxpool]\nsize=2\nstride=2\n"
                               "[connected]\noutput=10\nactivation=linear\n"
                               "[softmax]\n";

/* Runs the command FMT formats into out (its stdout; the commands join stderr to it); returns
 * its exit status. */
__attribute__((format(printf, 3, 4))) static int run(char *out, size_t size, const char *fmt, ...)
{
    char cmd[8 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return run_capture(cmd, out, size);
}

static void expect(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("expected \"%s\" in:\n%s", want, out);
}

/* The cfg, a list of the fixture's 12 images (labels c0..c9 in their names), a data file
 * training on it with backup BACKUP, and one streamed training run's save in DIR/BACKUP. */
static void train_streamed(const char *dir, const char *backup)
{
    char out[16384];
    assert_int_equal(write_text_file(dir, "wide.cfg", wide_cfg, NULL, 0), 0);
    assert_int_equal(run(out, sizeof out,
                         "cd '%s' && mkdir -p '%s' && ls '%s'/images/*.png > list.txt && "
                         "printf 'classes=10\\nnames=%s/names.list\\nlabels=%s/labels.list\\n"
                         "train=%s/list.txt\\nbackup=%s/%s\\n' > %s.data",
                         dir, backup, fixture, fixture, fixture, dir, dir, backup, backup),
                     0);
    if (run(out, sizeof out,
            "cd '%s' && '%s' classifier train -pp_start 0 -pp_end 4 -tee_stream %s.data wide.cfg "
            "2>&1",
            dir, bin, backup) != 0)
        fail_msg("streamed training failed:\n%s", out);
    expect(out, "through a working buffer of 262144 bytes (-tee_stream)");
}

static void test_streamed_save_refusals(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char out[16384];
    train_streamed(dir, "backup");

    /* A -tee_chunk below the save's cut: the file, the cut and the option that works. */
    assert_int_not_equal(run(out, sizeof out,
                             "cd '%s' && '%s' classifier predict -pp_start 0 -pp_end 4 "
                             "-tee_stream -tee_chunk 4096 backup.data wide.cfg "
                             "backup/wide_final.weights '%s/images/t_00007_c3.png' 2>&1",
                             dir, bin, fixture),
                         0);
    expect(out, "backup/wide_final.weights.tz: a streamed save cut for a working buffer of "
                "262144 bytes, which loads only into that cut; -tee_chunk 4096 is below it: give "
                "-tee_chunk 262144 or none");

    /* A batch that leaves the TA less than the cut: the file, both sizes, the TA_DATA_SIZE it
     * needs (6291456 - 96192 + 262144) and the other way out. */
    assert_int_not_equal(run(out, sizeof out,
                             "cd '%s' && '%s' classifier predict -pp_start 0 -pp_end 4 -batch 18 "
                             "backup.data wide.cfg backup/wide_final.weights list.txt 2>&1",
                             dir, bin),
                         0);
    expect(out, "backup/wide_final.weights.tz: a streamed save cut for a working buffer of "
                "262144 bytes, which loads only into that cut; layers 0..4 at batch 18 leave "
                "96192 bytes of TA_DATA_SIZE = 6291456 for one: load it in a TA with "
                "TA_DATA_SIZE of at least 6457408 (CFG_DZ_TA_DATA_SIZE), or at a smaller batch");
    /* Without -batch, predict finds a batch that fits (here resident: a streamed save loads
     * into a resident session too), with the rows of batch 1. */
    char one[8192];
    if (run(out, sizeof out,
            "cd '%s' && '%s' classifier predict -pp_start 0 -pp_end 4 backup.data wide.cfg "
            "backup/wide_final.weights list.txt 2>err.txt",
            dir, bin) != 0 ||
        run(one, sizeof one,
            "cd '%s' && '%s' classifier predict -pp_start 0 -pp_end 4 -batch 1 backup.data "
            "wide.cfg backup/wide_final.weights list.txt 2>/dev/null",
            dir, bin) != 0)
        fail_msg("predict with the save failed:\n%s", out);
    assert_string_equal(out, one);
    expect(out, "t_00011_c5.png,");
    assert_int_equal(run(out, sizeof out, "cat '%s/err.txt'", dir), 0);
    expect(out, "at 32 images per forward, resident or streamed: running ");

    /* A damaged magic: what the file is not, not a size limit. */
    assert_int_equal(run(out, sizeof out,
                         "cd '%s/backup' && cp wide_final.weights bad.weights && "
                         "cp wide_final.weights.tz bad.weights.tz && printf 'X' | dd "
                         "of=bad.weights.tz bs=1 conv=notrunc 2>/dev/null",
                         dir),
                     0);
    assert_int_not_equal(run(out, sizeof out,
                             "cd '%s' && '%s' classifier predict -pp_start 0 -pp_end 4 "
                             "backup.data wide.cfg backup/bad.weights "
                             "'%s/images/t_00007_c3.png' 2>&1",
                             dir, bin, fixture),
                         0);
    expect(out, "backup/bad.weights.tz: not a sealed weights file (bad magic 0x31425a58");
    expect(out, "restore both files of the pair from one save");
    assert_null(strstr(out, "exceeds the limit"));
}

/* Training without TEE into a folder that holds an older run's pair: a warning when it saves,
 * naming the .tz, which stays. */
static void test_plain_save_beside_blob(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char out[16384];
    struct stat before, after;
    char tz[PATH_MAX];
    train_streamed(dir, "backup");
    snprintf(tz, sizeof tz, "%s/backup/wide_final.weights.tz", dir);
    assert_int_equal(stat(tz, &before), 0);
    if (run(out, sizeof out, "cd '%s' && '%s' classifier train backup.data wide.cfg 2>&1", dir,
            bin) != 0)
        fail_msg("training without TEE failed:\n%s", out);
    expect(out, "backup/wide_final.weights is a plain save, but an older ");
    expect(out, "backup/wide_final.weights.tz lies beside it");
    expect(out, "move ");
    assert_int_equal(stat(tz, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtime, before.st_mtime);
}

/* Options that would do nothing say so. */
static void test_ignored_options(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char out[16384];
    train_streamed(dir, "backup");
    /* A plain file of the same weights (no pair marker): a plain run's save. */
    assert_int_equal(run(out, sizeof out,
                         "cd '%s' && '%s' classifier train backup.data wide.cfg >/dev/null 2>&1 "
                         "&& mv backup/wide_final.weights plain.weights",
                         dir, bin),
                     0);
    const char *img = "images/t_00007_c3.png";

    if (run(out, sizeof out,
            "cd '%s' && '%s' classifier predict -tee_stream -tee_chunk 4096 backup.data wide.cfg "
            "plain.weights '%s/%s' 2>&1",
            dir, bin, fixture, img) != 0)
        fail_msg("predict failed:\n%s", out);
    expect(out, "darknetp: note: -tee_stream and -tee_chunk ignored: no layers run in the TEE "
                "(give -pp_start A -pp_end B");

    /* Layers 3..4 fit resident: -tee_chunk alone is unused, and said to be. */
    if (run(out, sizeof out,
            "cd '%s' && '%s' classifier predict -tee_chunk 4096 -pp_start 3 -pp_end 4 "
            "backup.data wide.cfg plain.weights '%s/%s' 2>&1",
            dir, bin, fixture, img) != 0)
        fail_msg("predict failed:\n%s", out);
    expect(out, "darknetp: note: -tee_chunk 4096 unused: layers 3..4 fit resident (");
    expect(out, "-tee_stream streams them");

    /* 4 MiB: above the 1 MiB that OP-TEE for QEMU v8 took (2 MiB failed there); the simulated
     * TEE takes it, with a warning and the figure that worked. */
    if (run(out, sizeof out,
            "cd '%s' && '%s' classifier predict -tee_stream -tee_chunk 4194304 -pp_start 3 "
            "-pp_end 4 backup.data wide.cfg plain.weights '%s/%s' 2>&1",
            dir, bin, fixture, img) != 0)
        fail_msg("predict failed:\n%s", out);
    expect(out, "through a working buffer of 4194304 bytes (-tee_stream)");
    expect(out, "darknetp: warning: a working buffer of 4194304 bytes");
    expect(out, "use -tee_chunk 1048576 or less");
}

/* `tee plan`: a tail that cannot stream says why in its row, and the layer that stops
 * earlier tails from streaming is named. */
static void test_plan_reasons(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char out[16384], cfg[PATH_MAX];
    static const char grouped[] = "[net]\nbatch=1\nsubdivisions=1\nheight=16\nwidth=16\n"
                                  "channels=4\nlearning_rate=0.01\nmomentum=0.9\nadam=1\n"
                                  "[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\n"
                                  "activation=leaky\n"
                                  "[convolutional]\nfilters=8\ngroups=2\nsize=3\nstride=1\n"
                                  "pad=1\nactivation=leaky\n"
                                  "[connected]\noutput=10\nactivation=linear\n"
                                  "[softmax]\n";
    assert_int_equal(write_text_file(dir, "grouped.cfg", grouped, cfg, sizeof cfg), 0);
    assert_int_equal(run(out, sizeof out, "'%s' tee plan '%s' 2>&1", bin, cfg), 0);
    expect(out, "streamed: no tail from layer 1 or before streams: layer 1 (conv): a grouped "
                "convolution (groups > 1) does not stream");
    assert_int_equal(run(out, sizeof out, "'%s' tee plan '%s' -train 2>&1", bin, cfg), 0);
    expect(out, "-  no: adam (streamed training is momentum SGD)");
    expect(out, "streamed (training): no tail of layers can stream its weights: adam (streamed "
                "training is momentum SGD)");
    assert_int_equal(run(out, sizeof out, "'%s' tee plan '%s' -tee_chunk 100 2>&1", bin, cfg), 0);
    expect(out, "-  no: -tee_chunk below 8196 bytes (a row of the widest layer)");
}

static int setup(void **state)
{
    char rel[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    return tmp_setup(state);
}

/* tmp_teardown removes the files directly in the folder: the backup folder's first. */
static int teardown(void **state)
{
    char out[64];
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/backup'", ((const struct tmp *)*state)->dir);
    (void)run_capture(cmd, out, sizeof out);
    return tmp_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streamed_save_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_save_beside_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignored_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_reasons, setup, teardown),
    };
    return cmocka_run_group_tests_name("cli_stream_hints", tests, NULL, NULL);
}
