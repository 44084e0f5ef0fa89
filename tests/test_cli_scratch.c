/*
 * test_cli_scratch.c - darknetp's -lower_mb and -col_cache_mb (the normal world's convolution
 * scratch) end to end on the bars data set: any budget, none included, trains to the same
 * weights and losses byte for byte and validates to the same lines, the "Scratch:" line shows
 * that the budget took effect, and values that are not a size in MiB are refused with the
 * flag, the value and exit code 2.
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

#include "tests/helpers/bars.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char dir[64];

static int setup(void **state)
{
    (void)state;
    if (!realpath(darknetp_path(), bin))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-scratch-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* The simulated TEE's storage and console in this test's folder (the partition test). */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/storage", dir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof path, "%s/console.log", dir);
    setenv("DZ_TEE_LOG", path, 1);
    if (bars_write_idx(dir, "train", 200, 1) != 0 ||
        bars_write_idx(dir, "valid", 40, 100000) != 0 || bars_write_data_file(dir) != 0)
        return -1;
    /* Both convolutions have more than 16 filters, so neither slides (conv_sliding.c) and
     * both lower: the first's 12x12 output in the backward pass, the second's 6x6 in the
     * forward pass too; training keeps both layers' columns (0.6 MiB) by default. */
    return write_text_file(dir, "s.cfg",
                           "[net]\nbatch=20\nsubdivisions=1\nheight=12\nwidth=12\nchannels=1\n"
                           "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\nmax_batches=12\n"
                           "min_crop=12\nmax_crop=12\nflip=0\n"
                           "[convolutional]\nfilters=20\nsize=3\nstride=1\npad=1\n"
                           "batch_normalize=1\nactivation=leaky\n"
                           "[maxpool]\nsize=2\nstride=2\n"
                           "[convolutional]\nfilters=24\nsize=3\nstride=1\npad=1\n"
                           "activation=relu\n"
                           "[connected]\noutput=4\nactivation=linear\n"
                           "[softmax]\n",
                           NULL, 0);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG");
    return system(cmd) == 0 ? 0 : -1;
}

/* Trains with the scratch options @opts into DIR/NAME.weights and DIR/NAME.loss (each
 * iteration's number, epoch, loss, average loss and rate: the -log columns without the
 * speed), and returns the run's "Scratch:" line in line[0..size). */
static void train(const char *opts, const char *name, char *line, size_t size)
{
    char cmd[3 * PATH_MAX], out[1 << 16];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -rf backup && mkdir backup && '%s' classifier train -seed 3 %s "
             "-log %s.csv bars.data s.cfg 2>&1 >/dev/null && "
             "mv backup/s_final.weights %s.weights && cut -d, -f1-5 %s.csv > %s.loss",
             dir, bin, opts, name, name, name, name);
    const int rc = run_capture(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("train %s exited %d:\n%s", opts, rc, out);
    const char *at = strstr(out, "Scratch: ");
    if (!at)
        fail_msg("no Scratch: line in:\n%s", out);
    snprintf(line, size, "%.*s", (int)strcspn(at, "\n"), at);
}

/* DIR/NAME, whole. */
static unsigned char *slurp(const char *name, long *n)
{
    char path[PATH_MAX];
    unsigned char *data = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *n = read_whole_file(path, &data);
    assert_true(*n > 0);
    return data;
}

static void assert_same_file(const char *a, const char *b)
{
    long na = 0, nb = 0;
    unsigned char *da = slurp(a, &na), *db = slurp(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, (size_t)na);
    free(db);
    free(da);
}

/* MiB of lowering scratch and of kept columns a Scratch: line reports. */
static void scratch_used(const char *line, double *lower, double *columns)
{
    if (sscanf(line, "Scratch: lowering %lf MiB (-lower_mb %*u), kept columns %lf MiB", lower,
               columns) != 2)
        fail_msg("unexpected: %s", line);
}

static void test_any_budget_same_training(void **state)
{
    (void)state;
    char line[256];
    double lower = 0, columns = 0;
    train("", "default", line, sizeof line);
    scratch_used(line, &lower, &columns);
    assert_true(lower > 0 && columns > 0);
    assert_non_null(strstr(line, "(-lower_mb 32)"));
    assert_non_null(strstr(line, "(-col_cache_mb 32)"));
    train("-col_cache_mb 0", "nocache", line, sizeof line);
    scratch_used(line, &lower, &columns);
    assert_true(lower > 0);
    assert_true(columns == 0);
    train("-lower_mb 0 -col_cache_mb 0", "none", line, sizeof line);
    assert_string_equal(line, "Scratch: lowering 0.0 MiB (-lower_mb 0), kept columns 0.0 MiB "
                              "(-col_cache_mb 0)");
    train("-lower_mb 1 -col_cache_mb 4096 -threads 2", "other", line, sizeof line);
    scratch_used(line, &lower, &columns);
    assert_true(lower > 0 && columns > 0);
    const char *const runs[] = {"nocache", "none", "other"};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "%s.weights", runs[i]);
        snprintf(b, sizeof b, "%s.loss", runs[i]);
        assert_same_file("default.weights", a);
        assert_same_file("default.loss", b);
    }
    /* The losses compared are there: a header and 12 iterations. */
    long n = 0;
    unsigned char *loss = slurp("default.loss", &n);
    int lines = 0;
    for (long i = 0; i < n; i++)
        lines += loss[i] == '\n';
    free(loss);
    assert_int_equal(lines, 13);
}

/* valid lowers its 6x6 convolution's forward pass by default: the same lines without. */
static void test_valid_without_lowering(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], want[1 << 14], got[1 << 14];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train -seed 4 bars.data s.cfg >/dev/null 2>&1 && "
             "'%s' classifier valid bars.data s.cfg backup/s_final.weights 2>/dev/null",
             dir, bin, bin);
    assert_int_equal(run_capture(cmd, want, sizeof want), 0);
    assert_non_null(strstr(want, "39: top 1: "));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid -lower_mb 0 bars.data s.cfg "
             "backup/s_final.weights 2>/dev/null",
             dir, bin);
    assert_int_equal(run_capture(cmd, got, sizeof got), 0);
    assert_string_equal(got, want);
}

/* With a TEE segment between two convolutions, the budget is the normal world's total: the
 * back gets what the front left. At batch 120 the front's 12x12 convolution keeps 0.59 MiB
 * of columns and the back's 6x6 one would keep 2.97 MiB (a TA holds the max pool between). */
static void test_partition_shares_budget(void **state)
{
    (void)state;
    assert_int_equal(write_text_file(dir, "big.cfg",
                                     "[net]\nbatch=120\nsubdivisions=1\nheight=12\nwidth=12\n"
                                     "channels=1\nlearning_rate=0.05\nmax_batches=1\n"
                                     "min_crop=12\nmax_crop=12\nflip=0\n"
                                     "[convolutional]\nfilters=20\nsize=3\nstride=1\npad=1\n"
                                     "activation=leaky\n"
                                     "[maxpool]\nsize=2\nstride=2\n"
                                     "[convolutional]\nfilters=24\nsize=3\nstride=1\npad=1\n"
                                     "activation=relu\n"
                                     "[connected]\noutput=4\nactivation=linear\n"
                                     "[softmax]\n",
                                     NULL, 0),
                     0);
    const long budgets[] = {3, 4};
    for (size_t i = 0; i < 2; i++) {
        char cmd[3 * PATH_MAX], out[1 << 16];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && rm -rf backup && mkdir backup && '%s' classifier train "
                 "-pp_start 1 -pp_end 1 -col_cache_mb %ld bars.data big.cfg 2>&1 >/dev/null",
                 dir, bin, budgets[i]);
        const int rc = run_capture(cmd, out, sizeof out);
        const char *line = strstr(out, "Scratch: ");
        if (rc != 0 || !line)
            fail_msg("exit %d:\n%s", rc, out);
        double lower = 0, columns = 0;
        scratch_used(line, &lower, &columns);
        /* 3: the back's 2.97 MiB do not fit the 2.41 the front left; 4: they do */
        assert_true(columns > 0.5 && columns <= (double)budgets[i]);
        assert_true(i == 0 ? columns < 1 : columns > 3.5);
    }
}

/* Runs darknetp with @args in DIR, expecting exit code 2 and @message on stderr. */
static void assert_refused(const char *args, const char *message)
{
    char cmd[3 * PATH_MAX], out[1 << 14];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' classifier %s 2>&1 >/dev/null", dir, bin, args);
    const int rc = run_capture(cmd, out, sizeof out);
    if (rc != 2 || !strstr(out, message))
        fail_msg("%s: exit %d, expected 2 and '%s' in:\n%s", args, rc, message, out);
}

static void test_bad_values_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "abc", "-1", "65537", "1e3", "8M", "+8", " 8", "0x10", "99999999999999999999999", "''"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[128], msg[128];
        const char *shown = strcmp(bad[i], "''") == 0 ? "" : bad[i];
        snprintf(args, sizeof args, "train -col_cache_mb '%s' bars.data s.cfg", shown);
        snprintf(msg, sizeof msg, "darknetp: -col_cache_mb: '%s' is not a size in MiB (0..65536)\n",
                 shown);
        assert_refused(args, msg);
        snprintf(args, sizeof args, "valid -lower_mb '%s' bars.data s.cfg x.weights", shown);
        snprintf(msg, sizeof msg, "darknetp: -lower_mb: '%s' is not a size in MiB (0..65536)\n",
                 shown);
        assert_refused(args, msg);
    }
    assert_refused("train bars.data s.cfg -lower_mb",
                   "darknetp: -lower_mb needs a size in MiB (0..65536)\n");
    assert_refused("valid -col_cache_mb 8 bars.data s.cfg x.weights",
                   "darknetp: -col_cache_mb is a train option (and mia -grad's): valid keeps no "
                   "columns\n");
    assert_refused("train -col_cach_mb 8 bars.data s.cfg",
                   "darknetp: unknown option '-col_cach_mb' (did you mean -col_cache_mb?)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_budget_same_training),
        cmocka_unit_test(test_valid_without_lowering),
        cmocka_unit_test(test_partition_shares_budget),
        cmocka_unit_test(test_bad_values_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
