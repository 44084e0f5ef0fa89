/*
 * test_batch_loader.c - host/batch_loader.c hands out the batches, augmentation included, that
 * calling dk_dataset_train_batch in a loop with the same random stream gives, in order (mixup,
 * cutmix, mosaic and blur included); and a
 * batch that cannot be loaded is reported when its turn comes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/batch_loader.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

#define BATCH 5
#define SIDE 24
#define CLASSES 10
#define BATCHES 9

static char *labels[CLASSES] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};

/* A list of the fixture's PNG digits (absolute paths) in the test's folder. */
static void write_list(const struct tmp *t, const char *extra, char *path, size_t size)
{
    char dir[512], cwd[512], text[8192] = "";
    fixture_dir("darknet-mnist-lenet", dir, sizeof dir);
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *names[] = {"t_00000_c5.png", "t_00001_c0.png", "t_00002_c4.png"};
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "%s/%s/images/%s\n", cwd, dir, names[i]);
    }
    if (extra) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "%s\n", extra);
    }
    assert_int_equal(write_text_file(t->dir, "train.list", text, path, size), 0);
}

static const struct dk_augment_params aug = {.min_crop = 20,
                                             .max_crop = 40,
                                             .angle = 7,
                                             .aspect = 1.1f,
                                             .hue = 0.1f,
                                             .saturation = 1.2f,
                                             .exposure = 1.2f,
                                             .flip = true};

/* The same with AlexeyAB's batch augmentations: partners, rectangles and blur coins come
 * from the loader's one stream too. */
static const struct dk_augment_params aug_mix = {.min_crop = 20,
                                                 .max_crop = 40,
                                                 .aspect = 1,
                                                 .saturation = 1.2f,
                                                 .exposure = 1.2f,
                                                 .flip = true,
                                                 .label_smooth_eps = 0.1f,
                                                 .mixup = 4,
                                                 .blur = 1};

static void same_batches_as_serial(const struct tmp *t, const struct dk_augment_params *p)
{
    char list[600];
    write_list(t, NULL, list, sizeof list);
    struct dk_dataset ds;
    struct dk_error err = {{0}};
    assert_int_equal(dk_dataset_open(&ds, list, NULL, labels, CLASSES, CLASSES, &err), 0);
    const size_t xs = (size_t)BATCH * SIDE * SIDE * 3, ys = (size_t)BATCH * CLASSES;
    float *want_x = malloc(BATCHES * xs * sizeof(float));
    float *want_y = malloc(BATCHES * ys * sizeof(float));
    assert_non_null(want_x);
    assert_non_null(want_y);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 42);
    for (int b = 0; b < BATCHES; b++)
        assert_int_equal(dk_dataset_train_batch(&ds, &rng, BATCH, SIDE, SIDE, 3, p, want_x + b * xs,
                                                want_y + b * ys, &err),
                         0);
    /* Taking all, some, one or none of the batches: stop must not hang in any case. */
    for (int take = BATCHES; take >= 0; take -= 4) {
        struct dz_batch_loader *l = NULL;
        dnn_rng_seed(&rng, 42);
        assert_int_equal(
            dz_batch_loader_start(&l, &ds, &rng, BATCH, SIDE, SIDE, 3, CLASSES, p, &err), 0);
        for (int b = 0; b < take; b++) {
            const float *x = NULL, *y = NULL;
            assert_int_equal(dz_batch_loader_next(l, &x, &y, &err), 0);
            assert_memory_equal(x, want_x + b * xs, xs * sizeof(float));
            assert_memory_equal(y, want_y + b * ys, ys * sizeof(float));
        }
        dz_batch_loader_stop(l);
    }
    free(want_y);
    free(want_x);
    dk_dataset_close(&ds);
}

static void test_same_batches_as_serial(void **state)
{
    same_batches_as_serial(*state, &aug);
    same_batches_as_serial(*state, &aug_mix);
}

static void test_failed_batch_reported(void **state)
{
    const struct tmp *t = *state;
    char list[600], gone[600];
    snprintf(gone, sizeof gone, "%s/gone_c1.png", t->dir);
    write_list(t, gone, list, sizeof list);
    struct dk_dataset ds;
    struct dk_error err = {{0}};
    assert_int_equal(dk_dataset_open(&ds, list, NULL, labels, CLASSES, CLASSES, &err), 0);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 3);
    struct dz_batch_loader *l = NULL;
    assert_int_equal(
        dz_batch_loader_start(&l, &ds, &rng, BATCH, SIDE, SIDE, 3, CLASSES, &aug, &err), 0);
    /* Four items, batches of five drawn with replacement: the missing file comes up soon. */
    int failed_at = -1;
    for (int b = 0; b < 50 && failed_at < 0; b++) {
        const float *x = NULL, *y = NULL;
        if (dz_batch_loader_next(l, &x, &y, &err) != 0)
            failed_at = b;
    }
    assert_true(failed_at >= 0);
    assert_non_null(strstr(err.msg, "gone_c1.png"));
    /* Asked again: the same error, not a hang. */
    const float *x = NULL, *y = NULL;
    memset(&err, 0, sizeof err);
    assert_int_equal(dz_batch_loader_next(l, &x, &y, &err), -1);
    assert_non_null(strstr(err.msg, "gone_c1.png"));
    dz_batch_loader_stop(l);
    dk_dataset_close(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_batches_as_serial, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_reported, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
