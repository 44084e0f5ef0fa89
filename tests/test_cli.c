/*
 * test_cli.c - darknetp as a user runs it: the seed's predict command on the
 * upstream darknet fixture, stdin mode, and clear errors for bad input files.
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
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char fixture[PATH_MAX];
static char tmpdir[64];

/* Runs a shell command, capturing stdout+stderr into out; returns the exit status. */
static int run(const char *cmd, char *out, size_t size)
{
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    char rel[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dz-cli-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_predict_prints_upstream_lines(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict mnist.dataset mnist_lenet.cfg "
             "mnist_lenet.weights images/t_00007_c3.png 2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* mnist.dataset says top=5; upstream darknet printed exactly these lines. */
    assert_string_equal(out, "78.48%: 3\n21.52%: 5\n 0.00%: 2\n 0.00%: 7\n 0.00%: 9\n");
}

static void test_predict_reads_paths_from_stdin(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'images/t_00001_c0.png\\nimages/t_00003_c1.png\\n' | '%s' "
             "classifier predict -t 1 mnist.dataset mnist_lenet.cfg mnist_lenet.weights "
             "2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "100.00%: 0\n100.00%: 1\n");
}

/* Writes text into tmpdir/name and returns the path in path. */
static void write_file(const char *name, const char *text, char *path, size_t size)
{
    assert_int_equal(write_text_file(tmpdir, name, text, path, size), 0);
}

static void expect_error(const char *args, const char *needle)
{
    char cmd[3 * PATH_MAX], out[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", fixture, bin, args);
    int rc = run(cmd, out, sizeof out);
    if (rc == 0 || !strstr(out, needle))
        fail_msg("'%s' exited %d; expected an error containing '%s', got:\n%s", args, rc, needle,
                 out);
}

static void test_bad_inputs_give_clear_errors(void **state)
{
    (void)state;
    char cfg[PATH_MAX], weights[PATH_MAX], img[PATH_MAX], args[4 * PATH_MAX];

    write_file("bad.cfg", "[net]\nheight=28\nwidth=28\nchannels=3\n[convolutional]\nfliters=6\n",
               cfg, sizeof cfg);
    snprintf(args, sizeof args,
             "classifier predict mnist.dataset %s mnist_lenet.weights images/t_00000_c5.png", cfg);
    expect_error(args, "bad.cfg:6");

    write_file("short.weights", "\0\0\0", weights, sizeof weights);
    snprintf(args, sizeof args,
             "classifier predict mnist.dataset mnist_lenet.cfg %s images/t_00000_c5.png", weights);
    expect_error(args, "short.weights");

    write_file("not.png", "this is not an image", img, sizeof img);
    snprintf(args, sizeof args,
             "classifier predict mnist.dataset mnist_lenet.cfg mnist_lenet.weights %s", img);
    expect_error(args, "not.png");

    char data[PATH_MAX];
    write_file("bad.data", "classes=ten\nnames=names.list\n", data, sizeof data);
    snprintf(args, sizeof args,
             "classifier predict %s mnist_lenet.cfg mnist_lenet.weights images/t_00000_c5.png",
             data);
    expect_error(args, "bad.data:1");

    expect_error("classifier predict missing.data mnist_lenet.cfg mnist_lenet.weights x.png",
                 "missing.data");
    expect_error("classifier predict mnist.dataset mnist_lenet.cfg nope.weights x.png",
                 "nope.weights");
    expect_error("classifier predict -pp_start 4 mnist.dataset mnist_lenet.cfg w", "pp_end");
    expect_error("classifier predict -pp_start 4 -pp_end 11 mnist.dataset mnist_lenet.cfg "
                 "mnist_lenet.weights images/t_00000_c5.png",
                 "past the last layer");
    expect_error("classifier predict -t x mnist.dataset mnist_lenet.cfg w", "-t");
    expect_error("classifier frobnicate a b c", "frobnicate");

    /* Messages that name the likely mistake. */
    expect_error("classifier predict mnist_lenet.cfg mnist.dataset mnist_lenet.weights x.png",
                 "mnist_lenet.cfg:1: '[net]' is a section header: this is a network cfg, not a "
                 "data file (key=value lines); the order is DATA CFG [WEIGHTS]");
    expect_error("classifier predict mnist.dataset mnist_lenet.weights mnist_lenet.cfg x.png",
                 "mnist_lenet.weights:1: NUL byte: a binary file, not a network cfg (a .weights "
                 "file? the order is DATA CFG WEIGHTS)");
    expect_error("classifier predict mnist.dataset mnist.dataset mnist_lenet.weights x.png",
                 "a data file given as CFG? the order is DATA CFG [WEIGHTS]");
    expect_error("classifier tran mnist.dataset mnist_lenet.cfg",
                 "unknown classifier command 'tran' (did you mean train?); expected train, "
                 "valid, predict or mia");
    expect_error("classifier predict -pp_strat 4 -pp_end 5 mnist.dataset mnist_lenet.cfg w",
                 "unknown option '-pp_strat' (did you mean -pp_start?)");
    expect_error("classifier predict -pp_start 4 -pp_edn 5 mnist.dataset mnist_lenet.cfg w",
                 "unknown option '-pp_edn' (did you mean -pp_end?)");
    expect_error("classifier predict -zzz mnist.dataset mnist_lenet.cfg w",
                 "unknown option '-zzz'\n");
}

/* darknet's -gpus and -i are accepted with a note; its -t 0 means the data file's top. */
static void test_darknet_options(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -gpus 0,1 -t 0 mnist.dataset mnist_lenet.cfg "
             "mnist_lenet.weights images/t_00007_c3.png 2>&1 >/dev/null | grep note",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "darknetp: note: -gpus ignored: darknetp runs on the CPU\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -i 0 -t 0 mnist.dataset mnist_lenet.cfg "
             "mnist_lenet.weights images/t_00007_c3.png 2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "78.48%: 3\n21.52%: 5\n 0.00%: 2\n 0.00%: 7\n 0.00%: 9\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -t 2 mnist.dataset mnist_lenet.cfg "
             "mnist_lenet.weights images/t_00007_c3.png 2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "78.48%: 3\n21.52%: 5\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_prints_upstream_lines),
        cmocka_unit_test(test_predict_reads_paths_from_stdin),
        cmocka_unit_test(test_bad_inputs_give_clear_errors),
        cmocka_unit_test(test_darknet_options),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
