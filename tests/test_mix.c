/*
 * test_mix.c - AlexeyAB's batch augmentations (darknet/mix.h): mixup, cutmix, mosaic and
 * blur on small synthetic images, pixel by pixel and truth weight by truth weight; the
 * [net] keys that select them; and whole training batches built with them from an IDX set
 * of flat images, where every pixel tells which item it came from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/dataset.h"
#include "darknet/mix.h"
#include "darknet/parse_network.h"
#include "tests/helpers/tmpdir.h"

static void test_kind_from_keys(void **state)
{
    (void)state;
    /* AlexeyAB's parse_net_options: cutmix and mosaic override mixup=N. */
    assert_int_equal(dk_mix_kind_from_keys(0, 0, 0), DK_MIX_NONE);
    assert_int_equal(dk_mix_kind_from_keys(1, 0, 0), DK_MIX_MIXUP);
    assert_int_equal(dk_mix_kind_from_keys(3, 0, 0), DK_MIX_MOSAIC);
    assert_int_equal(dk_mix_kind_from_keys(0, 1, 0), DK_MIX_CUTMIX);
    assert_int_equal(dk_mix_kind_from_keys(1, 1, 0), DK_MIX_CUTMIX);
    assert_int_equal(dk_mix_kind_from_keys(0, 0, 1), DK_MIX_MOSAIC);
    assert_int_equal(dk_mix_kind_from_keys(1, 1, 1), DK_MIX_EITHER);
    assert_int_equal(dk_blur_ksize(0), 0);
    assert_int_equal(dk_blur_ksize(1), 15);
    assert_int_equal(dk_blur_ksize(5), 5);
    assert_string_equal(dk_mix_kind_name(DK_MIX_EITHER), "cutmix or mosaic");
}

static void test_mixup_values(void **state)
{
    (void)state;
    float x[4] = {0, 0.5f, 1, 0.25f};
    const float x2[4] = {1, 0.5f, 0, 0.75f};
    float y[3] = {0.9f, 0.05f, 0.05f}; /* already smoothed */
    const float y2[3] = {0, 0, 1};
    dk_mix_mixup(x, x2, 4, y, y2, 3);
    const float want_x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    const float want_y[3] = {0.45f, 0.025f, 0.525f};
    for (int i = 0; i < 4; i++)
        assert_true(x[i] == want_x[i]);
    for (int k = 0; k < 3; k++)
        assert_float_equal(y[k], want_y[k], 1e-7);
}

/* A (c, h, w) image whose every pixel is v. */
static void fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

static void test_cutmix_values(void **state)
{
    (void)state;
    enum { W = 6, H = 5, C = 2 };
    float x[C * H * W], x2[C * H * W];
    fill(x, C * H * W, 0.25f);
    fill(x2, C * H * W, 1);
    float y[2] = {1, 0};
    const float y2[2] = {0, 1};
    const struct dk_mix_rect r = {.x = 1, .y = 2, .w = 3, .h = 2};
    dk_mix_cutmix(x, x2, W, H, C, &r, y, y2, 2);
    for (int c = 0; c < C; c++)
        for (int row = 0; row < H; row++)
            for (int col = 0; col < W; col++) {
                const bool in = col >= 1 && col < 4 && row >= 2 && row < 4;
                assert_true(x[(c * H + row) * W + col] == (in ? 1.0f : 0.25f));
            }
    /* 6 of 30 pixels come from the second image. */
    assert_float_equal(y[0], 24.0 / 30, 1e-6);
    assert_float_equal(y[1], 6.0 / 30, 1e-6);

    /* The drawn rectangles: sides 30% to 80%, never reaching the last column or row. */
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 11);
    int min_w = 99, max_w = 0;
    for (int i = 0; i < 2000; i++) {
        struct dk_mix_rect d;
        dk_mix_cutmix_draw(&rng, 20, 10, &d);
        assert_in_range(d.w, 6, 16);
        assert_in_range(d.h, 3, 8);
        assert_true(d.x >= 0 && d.x + d.w <= 19);
        assert_true(d.y >= 0 && d.y + d.h <= 9);
        min_w = d.w < min_w ? d.w : min_w;
        max_w = d.w > max_w ? d.w : max_w;
    }
    assert_int_equal(min_w, 6);
    assert_int_equal(max_w, 16);
}

static void test_mosaic_values(void **state)
{
    (void)state;
    enum { W = 5, H = 4, C = 3 };
    float x[C * H * W], p0[C * H * W], p1[C * H * W], p2[C * H * W];
    fill(x, C * H * W, 0.1f);
    fill(p0, C * H * W, 0.2f);
    fill(p1, C * H * W, 0.3f);
    fill(p2, C * H * W, 0.4f);
    float y[4] = {1, 0, 0, 0};
    const float y0[4] = {0, 1, 0, 0}, y1[4] = {0, 0, 1, 0}, y2[4] = {0, 0, 0.5f, 0.5f};
    const float *const parts[3] = {p0, p1, p2};
    const float *const ys[3] = {y0, y1, y2};
    dk_mix_mosaic(x, parts, W, H, C, 2, 1, y, ys, 4);
    for (int c = 0; c < C; c++)
        for (int row = 0; row < H; row++)
            for (int col = 0; col < W; col++) {
                float want = row < 1 ? (col < 2 ? 0.1f : 0.2f) : (col < 2 ? 0.3f : 0.4f);
                assert_true(x[(c * H + row) * W + col] == want);
            }
    /* Quadrants of 2, 3, 6 and 9 pixels out of 20. */
    assert_float_equal(y[0], 2.0 / 20, 1e-6);
    assert_float_equal(y[1], 3.0 / 20, 1e-6);
    assert_float_equal(y[2], 6.0 / 20 + 4.5 / 20, 1e-6);
    assert_float_equal(y[3], 4.5 / 20, 1e-6);

    struct dnn_rng rng;
    dnn_rng_seed(&rng, 5);
    for (int i = 0; i < 500; i++) {
        int cx = -1, cy = -1;
        dk_mix_mosaic_draw(&rng, 10, 20, &cx, &cy);
        assert_in_range(cx, 2, 8);
        assert_in_range(cy, 4, 16);
    }
}

static void test_blur_values(void **state)
{
    (void)state;
    enum { W = 5, H = 4 };
    float x[W * H] = {0}, tmp[W * H];
    /* An impulse in the corner, kernel 3 (OpenCV's [1/4, 1/2, 1/4]): mirrored at the border
     * without repeating the edge, the corner keeps 1/2 of each pass. */
    x[0] = 1;
    dk_blur_gaussian(x, W, H, 1, 3, tmp);
    assert_true(x[0] == 0.25f);
    assert_true(x[1] == 0.125f);
    assert_true(x[W] == 0.125f);
    assert_true(x[W + 1] == 0.0625f);
    assert_true(x[2] == 0);
    /* A flat image stays flat: the kernel sums to 1 for every side. */
    const int sides[] = {3, 5, 7, 9, 15, 31};
    for (size_t s = 0; s < sizeof sides / sizeof sides[0]; s++) {
        fill(x, W * H, 0.5f);
        dk_blur_gaussian(x, W, H, 1, sides[s], tmp);
        for (int i = 0; i < W * H; i++)
            assert_float_equal(x[i], 0.5f, 1e-6);
    }
    /* blur=1 is a 15x15 kernel with OpenCV's sigma 0.3 * (7 - 1) + 0.8 = 2.6: an impulse far
     * from the borders keeps about 1 / (2 pi 2.6^2) at its centre, and its mass. */
    enum { S = 41 };
    float *im = calloc(2 * S * S, sizeof(float)), *t2 = malloc(S * S * sizeof(float));
    assert_non_null(im);
    assert_non_null(t2);
    im[S * S + 20 * S + 20] = 1; /* channel 1; channel 0 stays 0 */
    dk_blur_gaussian(im, S, S, 2, dk_blur_ksize(1), t2);
    double sum = 0;
    for (int i = 0; i < S * S; i++) {
        assert_true(im[i] == 0);
        sum += im[S * S + i];
    }
    assert_float_equal(sum, 1, 1e-5);
    assert_float_equal(im[S * S + 20 * S + 20], 1 / (2 * 3.14159265358979 * 2.6 * 2.6), 1e-3);
    assert_true(im[S * S + 20 * S + 19] == im[S * S + 20 * S + 21]);
    assert_true(im[S * S + 19 * S + 20] == im[S * S + 20 * S + 19]);
    assert_true(im[S * S + 20 * S + 28] == 0); /* outside the 15-wide window */
    free(im);
    free(t2);
}

/* ------------------------------------------------------- whole batches */

enum { ITEMS = 4, SIDE = 10, CLASSES = 4, BATCH = 8 };

/* Item i is a flat image of byte level[i], class i: a pixel names its source item (no level
 * is the midpoint of two others, so a mixup average names none). */
static const uint8_t level[4] = {10, 30, 70, 150};

static void write_flat_idx(const struct tmp *t, char *img, char *lab, size_t size)
{
    uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, ITEMS, 0, 0, 0, SIDE, 0, 0, 0, SIDE};
    uint8_t px[ITEMS * SIDE * SIDE];
    for (int i = 0; i < ITEMS; i++)
        memset(px + i * SIDE * SIDE, level[i], SIDE * SIDE);
    snprintf(img, size, "%s/img.idx", t->dir);
    FILE *f = fopen(img, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, sizeof head, f), sizeof head);
    assert_int_equal(fwrite(px, 1, sizeof px, f), sizeof px);
    assert_int_equal(fclose(f), 0);
    const uint8_t lhead[8] = {0, 0, 8, 1, 0, 0, 0, ITEMS}, labels[ITEMS] = {0, 1, 2, 3};
    snprintf(lab, size, "%s/lab.idx", t->dir);
    f = fopen(lab, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(lhead, 1, sizeof lhead, f), sizeof lhead);
    assert_int_equal(fwrite(labels, 1, sizeof labels, f), sizeof labels);
    assert_int_equal(fclose(f), 0);
}

/* The item a pixel came from (its class), or -1. */
static int source_of(float v)
{
    for (int i = 0; i < ITEMS; i++)
        if (v == dk_pixel_from_byte(level[i]))
            return i;
    return -1;
}

/* Checks a batch: each truth row is each class's share of the image's pixels (mixed images
 * are pure copies, so shares are exact); counts images with more than one source. */
static int check_shares(const float *X, const float *Y, int channels)
{
    const int per = channels * SIDE * SIDE;
    int mixed = 0;
    for (int b = 0; b < BATCH; b++) {
        int count[CLASSES] = {0};
        for (int p = 0; p < per; p++) {
            int s = source_of(X[b * per + p]);
            assert_true(s >= 0);
            count[s]++;
        }
        int sources = 0;
        float sum = 0;
        for (int k = 0; k < CLASSES; k++) {
            assert_float_equal(Y[b * CLASSES + k], (double)count[k] / per, 1e-6);
            sources += count[k] > 0;
            sum += Y[b * CLASSES + k];
        }
        assert_float_equal(sum, 1, 1e-6);
        mixed += sources > 1;
    }
    return mixed;
}

static const struct dk_augment_params plain = {
    .min_crop = SIDE, .max_crop = SIDE, .aspect = 1, .saturation = 1, .exposure = 1};

static void test_batches_truth_by_area(void **state)
{
    const struct tmp *t = *state;
    char img[256], lab[256];
    write_flat_idx(t, img, lab, sizeof img);
    struct dk_dataset ds;
    struct dk_error err = {{0}};
    assert_int_equal(dk_dataset_open(&ds, img, lab, NULL, 0, CLASSES, &err), 0);
    float X[BATCH * 3 * SIDE * SIDE], Y[BATCH * CLASSES];
    const int kinds[] = {DK_MIX_CUTMIX, DK_MIX_MOSAIC, DK_MIX_EITHER};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct dk_augment_params p = plain;
        p.mixup = kinds[k];
        struct dnn_rng rng;
        dnn_rng_seed(&rng, 7);
        int batches_mixed = 0, last_corner_kept = 1;
        for (int r = 0; r < 20; r++) {
            assert_int_equal(
                dk_dataset_train_batch(&ds, &rng, BATCH, SIDE, SIDE, 3, &p, X, Y, &err), 0);
            int mixed = check_shares(X, Y, 3);
            batches_mixed += mixed > 0;
            if (kinds[k] == DK_MIX_CUTMIX) {
                /* The pasted rectangle never reaches the last column or row: the bottom
                 * right pixel is the image's own, whose truth weighs most (>= 36%). */
                for (int b = 0; b < BATCH; b++) {
                    int own = source_of(X[b * 300 + 99]);
                    last_corner_kept &= Y[b * CLASSES + own] >= 0.36f - 1e-6f;
                }
            }
        }
        /* A coin per batch: some mixed, some not. */
        assert_in_range(batches_mixed, 3, 17);
        assert_true(last_corner_kept);
    }

    /* mixup: the average of two flat images is flat, at the midpoint of two sources. */
    struct dk_augment_params p = plain;
    p.mixup = DK_MIX_MIXUP;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 9);
    int averaged = 0;
    for (int r = 0; r < 10; r++) {
        assert_int_equal(dk_dataset_train_batch(&ds, &rng, BATCH, SIDE, SIDE, 1, &p, X, Y, &err),
                         0);
        for (int b = 0; b < BATCH; b++) {
            const float *x = X + b * SIDE * SIDE, *y = Y + b * CLASSES;
            if (source_of(x[0]) >= 0) {
                assert_true(y[source_of(x[0])] == 1.0f);
                continue;
            }
            /* Two sources i, j with half a truth each: x = (v_i + v_j) / 2. */
            int found = 0;
            for (int i = 0; i < CLASSES; i++)
                for (int j = i + 1; j < CLASSES; j++)
                    if (y[i] == 0.5f && y[j] == 0.5f)
                        found = x[0] ==
                                (dk_pixel_from_byte(level[i]) + dk_pixel_from_byte(level[j])) / 2;
            assert_true(found);
            for (int q = 1; q < SIDE * SIDE; q++)
                assert_true(x[q] == x[0]);
            averaged++;
        }
    }
    assert_true(averaged > 0);
    dk_dataset_close(&ds);
}

static void test_batches_reproducible_and_unchanged_when_off(void **state)
{
    const struct tmp *t = *state;
    char img[256], lab[256];
    write_flat_idx(t, img, lab, sizeof img);
    struct dk_dataset ds;
    struct dk_error err = {{0}};
    assert_int_equal(dk_dataset_open(&ds, img, lab, NULL, 0, CLASSES, &err), 0);
    enum { N = BATCH * SIDE * SIDE };
    float a[N], b[N], ya[BATCH * CLASSES], yb[BATCH * CLASSES];
    struct dk_augment_params p = plain;
    p.mixup = DK_MIX_EITHER;
    p.blur = 3;
    p.flip = true;
    struct dnn_rng r1, r2;
    dnn_rng_seed(&r1, 21);
    dnn_rng_seed(&r2, 21);
    for (int r = 0; r < 5; r++) {
        assert_int_equal(dk_dataset_train_batch(&ds, &r1, BATCH, SIDE, SIDE, 1, &p, a, ya, &err),
                         0);
        assert_int_equal(dk_dataset_train_batch(&ds, &r2, BATCH, SIDE, SIDE, 1, &p, b, yb, &err),
                         0);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(ya, yb, sizeof ya);
    }
    /* Off: not one draw more than before. With blur on, the batch's truths are the same and
     * the stream ends exactly BATCH draws (one coin per image) further. */
    dnn_rng_seed(&r1, 4);
    struct dnn_rng r3 = r1;
    struct dk_augment_params blur = plain;
    blur.blur = 1;
    assert_int_equal(dk_dataset_train_batch(&ds, &r1, BATCH, SIDE, SIDE, 1, &plain, a, ya, &err),
                     0);
    assert_int_equal(dk_dataset_train_batch(&ds, &r3, BATCH, SIDE, SIDE, 1, &blur, b, yb, &err), 0);
    assert_memory_equal(ya, yb, sizeof ya);
    for (int i = 0; i < N; i++)
        assert_float_equal(a[i], b[i], 1e-6); /* flat images stay flat */
    for (int i = 0; i < BATCH; i++)
        (void)dnn_rng_u32(&r1);
    assert_int_equal(dnn_rng_u32(&r1), dnn_rng_u32(&r3));

    /* Bad values are refused, naming the key. */
    p.blur = 4;
    assert_int_equal(dk_dataset_train_batch(&ds, &r1, BATCH, SIDE, SIDE, 1, &p, a, ya, &err), -1);
    assert_non_null(strstr(err.msg, "blur must be 0, 1"));
    p.blur = 0;
    p.mixup = 5;
    assert_int_equal(dk_dataset_train_batch(&ds, &r1, BATCH, SIDE, SIDE, 1, &p, a, ya, &err), -1);
    assert_non_null(strstr(err.msg, "mixup must be 0 to 4"));
    dk_dataset_close(&ds);
}

/* Blur on a batch: a quarter of the images, each exactly as dk_blur_gaussian blurs it. */
static void test_batches_blur(void **state)
{
    const struct tmp *t = *state;
    char img[256], lab[256];
    write_flat_idx(t, img, lab, sizeof img);
    struct dk_dataset ds;
    struct dk_error err = {{0}};
    assert_int_equal(dk_dataset_open(&ds, img, lab, NULL, 0, CLASSES, &err), 0);
    /* Mixed batches (cutmix) have edges that a blur changes; the unblurred batch is got
     * from the same stream with blur off, which draws the same until the blur's coins. */
    enum { N = BATCH * SIDE * SIDE };
    float a[N], b[N], y[BATCH * CLASSES], tmp[SIDE * SIDE];
    struct dk_augment_params off = plain, on = plain;
    off.mixup = on.mixup = DK_MIX_CUTMIX;
    on.blur = 5;
    struct dnn_rng r1, r2;
    dnn_rng_seed(&r1, 13);
    dnn_rng_seed(&r2, 13);
    int blurred = 0, total = 0;
    for (int r = 0; r < 30; r++) {
        assert_int_equal(dk_dataset_train_batch(&ds, &r1, BATCH, SIDE, SIDE, 1, &on, a, y, &err),
                         0);
        assert_int_equal(dk_dataset_train_batch(&ds, &r2, BATCH, SIDE, SIDE, 1, &off, b, y, &err),
                         0);
        for (int k = 0; k < BATCH; k++) {
            float *x = b + k * SIDE * SIDE;
            const bool coin = dnn_rng_u32(&r2) % 4 == 0; /* r2 catches up with r1 */
            if (coin)
                dk_blur_gaussian(x, SIDE, SIDE, 1, 5, tmp);
            assert_memory_equal(a + k * SIDE * SIDE, x, SIDE * SIDE * sizeof(float));
            blurred += coin;
            total++;
        }
    }
    assert_in_range(blurred, total / 8, total * 3 / 8);
    dk_dataset_close(&ds);
}

/* The [net] keys as AlexeyAB's efficientnet_b0.cfg writes them. */
static void test_cfg_keys(void **state)
{
    const struct tmp *t = *state;
    char path[256];
    struct dk_model m;
    struct dk_error err = {{0}};
    const char *head = "[net]\nbatch=2\nheight=8\nwidth=8\nchannels=3\n";
    char text[512];
    snprintf(text, sizeof text, "%scutmix=1\nmosaic=1\nblur=1\n[connected]\noutput=2\n", head);
    assert_int_equal(write_text_file(t->dir, "e.cfg", text, path, sizeof path), 0);
    assert_int_equal(dk_parse_network(path, &m, &err), 0);
    assert_int_equal(m.aug.mixup, DK_MIX_EITHER);
    assert_int_equal(m.aug.blur, 1);
    assert_string_equal(m.train_refusal, "");
    assert_true(m.notes == NULL || !strstr(m.notes, "cutmix"));
    dk_model_free(&m);

    snprintf(text, sizeof text, "%smixup=1\n[connected]\noutput=2\n", head);
    assert_int_equal(write_text_file(t->dir, "m.cfg", text, path, sizeof path), 0);
    assert_int_equal(dk_parse_network(path, &m, &err), 0);
    assert_int_equal(m.aug.mixup, DK_MIX_MIXUP);
    assert_int_equal(m.aug.blur, 0);
    dk_model_free(&m);

    snprintf(text, sizeof text, "%sblur=6\n[connected]\noutput=2\n", head);
    assert_int_equal(write_text_file(t->dir, "b.cfg", text, path, sizeof path), 0);
    assert_int_equal(dk_parse_network(path, &m, &err), -1);
    assert_non_null(strstr(err.msg, "b.cfg:6: key 'blur' in [net]: must be 0, 1"));
    snprintf(text, sizeof text, "%smixup=7\n[connected]\noutput=2\n", head);
    assert_int_equal(write_text_file(t->dir, "x.cfg", text, path, sizeof path), 0);
    assert_int_equal(dk_parse_network(path, &m, &err), -1);
    assert_non_null(strstr(err.msg, "x.cfg:6: key 'mixup' in [net]: must be 0 (off)"));

    /* The note train prints at start. */
    struct dk_augment_params p = plain;
    char note[256];
    dk_augment_describe(&p, SIDE, note, sizeof note);
    assert_string_equal(note, "none");
    p.flip = true;
    p.max_crop = 2 * SIDE;
    p.mixup = DK_MIX_EITHER;
    p.blur = 1;
    dk_augment_describe(&p, SIDE, note, sizeof note);
    assert_string_equal(note, "random crop 10..20, flip, cutmix or mosaic (half the batches), "
                              "blur 15x15 (a quarter of the images)");
    dk_augment_describe(&p, SIDE, note, 12);
    assert_string_equal(note, "random crop");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_from_keys),
        cmocka_unit_test(test_mixup_values),
        cmocka_unit_test(test_cutmix_values),
        cmocka_unit_test(test_mosaic_values),
        cmocka_unit_test(test_blur_values),
        cmocka_unit_test_setup_teardown(test_batches_truth_by_area, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_batches_reproducible_and_unchanged_when_off, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_batches_blur, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_keys, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests_name("mix", tests, NULL, NULL);
}
