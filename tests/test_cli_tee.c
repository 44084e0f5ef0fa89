/*
 * test_cli_tee.c - the seed's command lines with layers in the TEE, as a user
 * runs them: predict on the upstream darknet fixture with -pp_start 4 -pp_end 10
 * (only the label leaves: `100.00%: 3` then zeros, as the original prints), the
 * layer table's `_TA` marks, and a short training run whose loss is logged by
 * the TA and not printed by the normal world.
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

#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

static char bin[PATH_MAX];
static char fixture[PATH_MAX];
static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    char rel[PATH_MAX], path[PATH_MAX + 32];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dz-clitee-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(path, sizeof path, "%s/storage", tmpdir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof path, "%s/console.log", tmpdir);
    setenv("DZ_TEE_LOG", path, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG");
    return system(cmd) == 0 ? 0 : -1;
}

static int run(const char *cmd, char *out, size_t size)
{
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

static void test_predict_label_only(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 4 -pp_end 10 mnist.dataset "
             "mnist_lenet.cfg mnist_lenet.weights images/t_00007_c3.png 2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* The TA returns the label 3 only; darknet's top_k over the one-hot vector ranks the
     * other labels by index as the original's output did. */
    assert_string_equal(out, "100.00%: 3\n 0.00%: 1\n 0.00%: 2\n 0.00%: 0\n 0.00%: 4\n");

    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 4 -pp_end 10 mnist.dataset "
             "mnist_lenet.cfg mnist_lenet.weights images/t_00007_c3.png 2>&1 >/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "    4 connected_TA "));
    assert_non_null(strstr(out, "    9 softmax_TA "));
    assert_non_null(strstr(out, "   10 cost_TA "));
    assert_non_null(strstr(out, "    3 max   "));
    assert_null(strstr(out, "conv_TA"));
    assert_null(strstr(out, "no TEE"));
}

static void test_predict_topk_policy(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 4 -pp_end 10 -tee_output topk "
             "mnist.dataset mnist_lenet.cfg mnist_lenet.weights images/t_00007_c3.png "
             "2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* The same labels in the same order as upstream darknet's top 5, without scores. */
    assert_string_equal(out, "3\n5\n2\n7\n9\n");

    /* rank: the order of every label, whatever -t asks for. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 4 -pp_end 10 -tee_output rank -t 2 "
             "mnist.dataset mnist_lenet.cfg mnist_lenet.weights images/t_00007_c3.png "
             "2>/dev/null",
             fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(strncmp(out, "3\n5\n2\n7\n9\n", 10), 0);
    int lines = 0, seen = 0;
    for (const char *p = out; *p; p++) {
        if (*p >= '0' && *p <= '9' && p[1] == '\n') {
            seen |= 1 << (*p - '0');
            lines++;
        }
    }
    assert_int_equal(lines, 10);
    assert_int_equal(seen, 0x3ff);
}

static void test_train_loss_in_tee(void **state)
{
    (void)state;
    char cmd[6 * PATH_MAX], out[1 << 14], path[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ls '%s'/images/*.png > train.list && "
             "printf 'classes=10\\ntrain=train.list\\nlabels=%s/labels.list\\n"
             "names=%s/names.list\\nbackup=backup\\n' > mnist.data && "
             "sed -e 's/^batch=100/batch=4/' -e 's/^max_batches=10000/max_batches=3/' "
             "'%s/mnist_lenet.cfg' > mnist_lenet.cfg && "
             "'%s' classifier train -pp_start 4 -pp_end 10 mnist.data mnist_lenet.cfg "
             "2>/dev/null",
             tmpdir, fixture, fixture, fixture, fixture, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "1, 0.333: loss in the TEE, "));
    assert_non_null(strstr(out, "3, 1.000: loss in the TEE, "));
    assert_null(strstr(out, " avg,"));
    snprintf(path, sizeof path, "%s/console.log", tmpdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int losses = 0;
    char line[512];
    while (fgets(line, sizeof line, f))
        losses += strncmp(line, "I/TA: loss = ", 13) == 0 && strstr(line, "from the TA");
    fclose(f);
    assert_int_equal(losses, 3);
    snprintf(path, sizeof path, "%s/backup/mnist_lenet_final.weights.tz", tmpdir);
    assert_int_equal(access(path, R_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_label_only),
        cmocka_unit_test(test_predict_topk_policy),
        cmocka_unit_test(test_train_loss_in_tee),
    };
    return cmocka_run_group_tests_name("cli_tee", tests, setup, teardown);
}
