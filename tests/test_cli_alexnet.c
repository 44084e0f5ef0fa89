/*
 * test_cli_alexnet.c - issue 11's bar on the simulator: pjreddie's alexnet.cfg with its whole
 * classifier head in the TA (layers 8..13, from the first [connected] to the softmax:
 * 58.6 M parameters, 237 MB of secure memory resident) in a TA built with
 * CFG_DZ_TA_DATA_SIZE = 12 MiB (build/ta-12m, tests/ta_sized.mk) predicts byte-identical
 * scores to the same weights with no TEE; darknetp streams the head by itself.
 *
 * The weights (244 MB) are generated at test time from a seed (tests/helpers/gen_weights.h),
 * the last connected layer's weights times 4 so that the softmax is spread (top score about
 * 5%, bottom about 3e-6 on these images) and every one of the 1000 scores tells.
 *
 * Cost: the convolutions are about 2.2 GFLOP per image in the normal world, the head 58.6 M
 * multiply-adds, and the streamed run seals 234.5 MB once and decrypts it per image: about
 * 6 s on a 2-core machine for two images in both runs (weights generation included), 22 s
 * while others share it; one image under ASan/UBSan took 7 minutes on the shared machine.
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

#include "tests/helpers/fixtures.h"
#include "tests/helpers/gen_weights.h"
#include "tests/helpers/tmpdir.h"

#ifndef TA12M_DIR
#error "TA12M_DIR: the folder of the 12 MiB TA (tests/ta_sized.mk sets it)"
#endif

/* Two images: the second pass must start the stream over (STREAM_BEGIN) and still match;
 * one under the sanitizers (DNN_TEST_QUICK), where each costs several times more. */
static const char *const images[] = {"t_00007_c3.png", "t_00000_c5.png"};
enum { MAX_IMAGES = 2, N_CLASSES = 1000 };
/* Each CSV row: path, label, name and 1000 scores at %.9g. */
enum { OUT_SIZE = 128 * 1024 };

static char bin[PATH_MAX];
static char cfg[PATH_MAX];
static char fixture_images[PATH_MAX];

static void run_ok(const char *cmd, char *out, size_t size)
{
    const int rc = run_capture(cmd, out, size);
    if (rc != 0)
        fail_msg("'%s' exited %d:\n%s", cmd, rc, out);
}

/* The largest and smallest score of a CSV row "path,label,name,s0,...,s999". */
static void row_range(const char *row, double *hi, double *lo)
{
    const char *p = row;
    for (int k = 0; k < 3; k++) {
        p = strchr(p, ',');
        assert_non_null(p);
        p++;
    }
    *hi = 0;
    *lo = 1;
    int n = 0;
    while (*p && *p != '\n') {
        char *end;
        const double s = strtod(p, &end);
        assert_true(end != p);
        *hi = s > *hi ? s : *hi;
        *lo = s < *lo ? s : *lo;
        n++;
        p = *end == ',' ? end + 1 : end;
    }
    assert_int_equal(n, N_CLASSES);
}

static void test_head_in_12mib_ta_as_without_tee(void **state)
{
    const char *dir = ((const struct tmp *)*state)->dir;
    char names[PATH_MAX], data[PATH_MAX], list[PATH_MAX], weights[PATH_MAX], msg[512];
    char cmd[6 * PATH_MAX], log[16384];
    char *plain = malloc(OUT_SIZE), *tee = malloc(OUT_SIZE);
    const int n_images = getenv("DNN_TEST_QUICK") ? 1 : MAX_IMAGES;
    assert_non_null(plain);
    assert_non_null(tee);

    snprintf(weights, sizeof weights, "%s/alexnet.weights", dir);
    if (gen_weights_save(cfg, weights, 1, 4.0f, msg, sizeof msg) != 0)
        fail_msg("generating the weights: %s", msg);
    char text[N_CLASSES * 5 + 2 * PATH_MAX];
    size_t at = 0;
    for (int c = 0; c < N_CLASSES; c++)
        at += (size_t)snprintf(text + at, sizeof text - at, "c%d\n", c);
    assert_int_equal(write_text_file(dir, "names.txt", text, names, sizeof names), 0);
    snprintf(text, sizeof text, "classes=%d\nnames=%s\ntop=5\n", N_CLASSES, names);
    assert_int_equal(write_text_file(dir, "alexnet.data", text, data, sizeof data), 0);
    at = 0;
    for (int i = 0; i < n_images; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "%s/%s\n", fixture_images, images[i]);
    assert_int_equal(write_text_file(dir, "images.txt", text, list, sizeof list), 0);

    /* A .txt list of images: one CSV row of every score per image, on stdout. */
    snprintf(cmd, sizeof cmd, "'%s' classifier predict '%s' '%s' '%s' '%s' 2>/dev/null", bin, data,
             cfg, weights, list);
    run_ok(cmd, plain, OUT_SIZE);
    assert_true(strlen(plain) < OUT_SIZE - 1); /* not truncated */
    const char *row = strchr(plain, '\n');
    assert_non_null(row);
    for (int i = 0; i < n_images; i++) {
        double hi, lo;
        row_range(row + 1, &hi, &lo);
        /* Spread: far from uniform (0.001 each), far from one-hot. */
        assert_true(hi > 0.01 && hi < 0.5);
        assert_true(lo > 0 && lo < 1e-4);
        row = strchr(row + 1, '\n');
        assert_non_null(row);
    }
    assert_string_equal(row, "\n");

    /* The head in the 12 MiB TA: it does not fit resident, darknetp streams it, says so,
     * and the scores leave the TEE (-tee_output scores) as the same bytes. */
    snprintf(cmd, sizeof cmd,
             "DZ_TA_DIR='%s' '%s' classifier predict -pp_start 8 -pp_end 13 -tee_output scores "
             "'%s' '%s' '%s' '%s' 2>'%s/err.txt'",
             TA12M_DIR, bin, data, cfg, weights, list, dir);
    run_ok(cmd, tee, OUT_SIZE);
    assert_string_equal(tee, plain);
    snprintf(cmd, sizeof cmd, "grep darknetp: '%s/err.txt'", dir);
    run_ok(cmd, log, sizeof log);
    assert_non_null(strstr(log, "darknetp: layers 8..13 need "));
    assert_non_null(strstr(log, "with their weights resident, TA_DATA_SIZE is 12582912: "
                                "streaming their weights, sealed, through a working buffer of "));
    free(plain);
    free(tee);
}

static int setup(void **state)
{
    char rel[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-alexnet", rel, sizeof rel);
    strncat(rel, "/alexnet.cfg", sizeof rel - strlen(rel) - 1);
    if (!realpath(rel, cfg))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    strncat(rel, "/images", sizeof rel - strlen(rel) - 1);
    if (!realpath(rel, fixture_images))
        return -1;
    return tmp_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_in_12mib_ta_as_without_tee, setup, tmp_teardown),
    };
    return cmocka_run_group_tests_name("cli_alexnet", tests, NULL, NULL);
}
