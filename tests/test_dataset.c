/*
 * test_dataset.c - IDX reading, line files and the classification data source
 * (darknet/idx.h, darknet/dataset.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>
#include <zlib.h>

#include "darknet/dataset.h"
#include "darknet/idx.h"
#include "darknet/image.h"
#include "tests/helpers/tmpdir.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------- fixtures */

static const char *tpath(const struct tmp *t, const char *name)
{
    /* Several live paths at once: rotate through a few buffers. */
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 256, "%s/%s", t->dir, name);
    return b;
}

static void write_file(const char *path, const void *bytes, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (n > 0)
            assert_int_equal(gzwrite(f, bytes, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text), false);
}

/* An IDX file of unsigned bytes; `extra` bytes are appended (negative: that
 * many payload bytes are cut off). */
static void write_idx(const char *path, const uint32_t *dims, int ndims, const uint8_t *data,
                      int extra, bool gz)
{
    size_t size = 1;
    for (int i = 0; i < ndims; ++i)
        size *= dims[i];
    size_t head = 4 + 4 * (size_t)ndims;
    size_t total = head + size + (extra > 0 ? (size_t)extra : 0) - (extra < 0 ? (size_t)-extra : 0);
    uint8_t *buf = calloc(head + size + 16, 1);
    assert_non_null(buf);
    buf[2] = DK_IDX_TYPE_U8;
    buf[3] = (uint8_t)ndims;
    for (int i = 0; i < ndims; ++i) {
        buf[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        buf[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        buf[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        buf[7 + 4 * i] = (uint8_t)dims[i];
    }
    memcpy(buf + head, data, size);
    for (int i = 0; i < extra; ++i)
        buf[head + size + (size_t)i] = 0xAB;
    write_file(path, buf, total, gz);
    free(buf);
}

enum { N = 3, ROWS = 4, COLS = 5, PIX = ROWS * COLS };

/* Three distinct 4x5 images (the first covers 0 and 255) and labels 2, 0, 1. */
static void sample_data(uint8_t images[N * PIX], uint8_t labels[N])
{
    for (int i = 0; i < N * PIX; ++i)
        images[i] = (uint8_t)(i * 13 + 7);
    images[0] = 0;
    images[1] = 255;
    labels[0] = 2;
    labels[1] = 0;
    labels[2] = 1;
}

static void write_sample_idx(const struct tmp *t, const char *img, const char *lab, bool gz)
{
    uint8_t images[N * PIX], labels[N];
    sample_data(images, labels);
    const uint32_t idims[3] = {N, ROWS, COLS};
    const uint32_t ldims[1] = {N};
    write_idx(tpath(t, img), idims, 3, images, 0, gz);
    write_idx(tpath(t, lab), ldims, 1, labels, 0, gz);
}

/* ----------------------------------------------------------------- IDX */

static void test_idx_read_plain_and_gz(void **state)
{
    struct tmp *t = *state;
    uint8_t images[N * PIX], labels[N];
    sample_data(images, labels);
    write_sample_idx(t, "img.idx", "lab.idx", false);
    write_sample_idx(t, "img.idx.gz", "lab.idx.gz", true);

    const char *names[2] = {"img.idx", "img.idx.gz"};
    for (int g = 0; g < 2; ++g) {
        struct dk_error err = {{0}};
        struct dk_idx idx = {0};
        assert_int_equal(dk_idx_read(tpath(t, names[g]), &idx, &err), 0);
        assert_int_equal(idx.ndims, 3);
        assert_int_equal(idx.dims[0], N);
        assert_int_equal(idx.dims[1], ROWS);
        assert_int_equal(idx.dims[2], COLS);
        assert_int_equal(idx.size, N * PIX);
        assert_memory_equal(idx.data, images, N * PIX);
        dk_idx_free(&idx);
        dk_idx_free(&idx);

        /* The same bytes on demand, from any offset; nothing past the end. */
        struct dk_idx_file file = {0};
        assert_int_equal(dk_idx_open(tpath(t, names[g]), &file, &err), 0);
        assert_int_equal(file.ndims, 3);
        assert_int_equal(file.dims[0], N);
        assert_int_equal(file.dims[1], ROWS);
        assert_int_equal(file.dims[2], COLS);
        assert_int_equal(file.size, N * PIX);
        uint8_t got[N * PIX] = {0};
        assert_int_equal(dk_idx_file_read(&file, 0, N * PIX, got, &err), 0);
        assert_memory_equal(got, images, N * PIX);
        memset(got, 0, sizeof got);
        assert_int_equal(dk_idx_file_read(&file, PIX + 3, PIX, got, &err), 0);
        assert_memory_equal(got, images + PIX + 3, PIX);
        assert_int_equal(dk_idx_file_read(&file, N * PIX - 1, 2, got, &err), -1);
        assert_non_null(strstr(err.msg, names[g]));
        assert_int_equal(dk_idx_file_read(&file, N * PIX + 1, 0, got, &err), -1);
        dk_idx_file_close(&file);
        assert_int_equal(file.fd, -1);
        dk_idx_file_close(&file);

        bool is_idx = false;
        assert_int_equal(dk_idx_probe(tpath(t, names[g]), &is_idx, &err), 0);
        assert_true(is_idx);
    }
    struct dk_error err = {{0}};
    struct dk_idx lab = {0};
    assert_int_equal(dk_idx_read(tpath(t, "lab.idx.gz"), &lab, &err), 0);
    assert_int_equal(lab.ndims, 1);
    assert_memory_equal(lab.data, labels, N);
    dk_idx_free(&lab);

    /* A gzip file needs a temporary file for its inflated copy: no folder for it, no open. */
    const char *tmpdir = getenv("TMPDIR");
    char *saved = tmpdir ? strdup(tmpdir) : NULL;
    assert_int_equal(setenv("TMPDIR", tpath(t, "no-such-folder"), 1), 0);
    struct dk_idx_file file = {0};
    assert_int_equal(dk_idx_open(tpath(t, "img.idx.gz"), &file, &err), -1);
    assert_non_null(strstr(err.msg, "cannot create a temporary file"));
    assert_int_equal(dk_idx_open(tpath(t, "img.idx"), &file, &err), 0); /* read in place */
    dk_idx_file_close(&file);
    if (saved)
        assert_int_equal(setenv("TMPDIR", saved, 1), 0);
    else
        assert_int_equal(unsetenv("TMPDIR"), 0);
    free(saved);

    bool is_idx = true;
    write_text(tpath(t, "list.txt"), "a.png\nb.png\n");
    assert_int_equal(dk_idx_probe(tpath(t, "list.txt"), &is_idx, &err), 0);
    assert_false(is_idx);
    assert_int_equal(dk_idx_probe(tpath(t, "nope"), &is_idx, &err), -1);
    assert_non_null(strstr(err.msg, "nope"));
}

static void test_idx_errors(void **state)
{
    struct tmp *t = *state;
    uint8_t images[N * PIX], labels[N];
    sample_data(images, labels);
    const uint32_t dims[3] = {N, ROWS, COLS};
    struct dk_error err = {{0}};
    struct dk_idx idx = {0};

    for (int gz = 0; gz < 2; ++gz) {
        const char *p = tpath(t, gz ? "trunc.gz" : "trunc");
        write_idx(p, dims, 3, images, -1, gz);
        assert_int_equal(dk_idx_read(p, &idx, &err), -1);
        assert_null(idx.data);
        assert_non_null(strstr(err.msg, p));
        assert_non_null(strstr(err.msg, "truncated"));
        assert_non_null(strstr(err.msg, "announces 60 data bytes, the file holds 59"));

        struct dk_idx_file file = {0};
        assert_int_equal(dk_idx_open(p, &file, &err), -1);
        assert_int_equal(file.fd, -1);
        assert_non_null(strstr(err.msg, "announces 60 data bytes, the file holds 59"));

        p = tpath(t, gz ? "trail.gz" : "trail");
        write_idx(p, dims, 3, images, 3, gz);
        assert_int_equal(dk_idx_read(p, &idx, &err), -1);
        assert_non_null(strstr(err.msg, "trailing data"));
        assert_non_null(strstr(err.msg, p));
        assert_int_equal(dk_idx_open(p, &file, &err), -1);
        assert_int_equal(file.fd, -1);
        assert_non_null(strstr(err.msg, "trailing data"));
        assert_non_null(strstr(err.msg, p));
    }

    /* Bad magic. */
    uint8_t bad[12] = {0x01, 0x00, 0x08, 0x01, 0, 0, 0, 1, 9};
    write_file(tpath(t, "magic"), bad, 9, false);
    assert_int_equal(dk_idx_read(tpath(t, "magic"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "not an IDX file"));
    assert_non_null(strstr(err.msg, "bad magic 01 00 08 01"));

    /* Unsupported type (float). */
    uint8_t flt[12] = {0x00, 0x00, 0x0D, 0x01, 0, 0, 0, 1, 0, 0, 0, 0};
    write_file(tpath(t, "float"), flt, 12, false);
    assert_int_equal(dk_idx_read(tpath(t, "float"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "0x0d (float) is not supported"));

    /* Zero dimension, too many dimensions, a cut header, an empty file. */
    uint8_t zero[8] = {0x00, 0x00, 0x08, 0x01, 0, 0, 0, 0};
    write_file(tpath(t, "zero"), zero, 8, false);
    assert_int_equal(dk_idx_read(tpath(t, "zero"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "dimension 0 is 0"));
    uint8_t five[4] = {0x00, 0x00, 0x08, 0x05};
    write_file(tpath(t, "five"), five, 4, false);
    assert_int_equal(dk_idx_read(tpath(t, "five"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "5 dimensions"));
    uint8_t cut[6] = {0x00, 0x00, 0x08, 0x02, 0, 0};
    write_file(tpath(t, "cut"), cut, 6, false);
    assert_int_equal(dk_idx_read(tpath(t, "cut"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "truncated inside its header"));
    write_file(tpath(t, "empty"), "", 0, false);
    assert_int_equal(dk_idx_read(tpath(t, "empty"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));

    /* A header announcing 4 GiB with 10 bytes behind it: refused without
     * allocating the announced size. */
    uint8_t ten[16] = {0};
    FILE *f = fopen(tpath(t, "huge"), "wb");
    assert_non_null(f);
    uint8_t hh[12] = {0, 0, 8, 2, 0, 1, 0, 0, 0, 1, 0, 0};
    fwrite(hh, 1, 12, f);
    fwrite(ten, 1, 10, f);
    fclose(f);
    assert_int_equal(dk_idx_read(tpath(t, "huge"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "the file holds 10"));

    assert_int_equal(dk_idx_read(tpath(t, "missing"), &idx, &err), -1);
    assert_non_null(strstr(err.msg, "missing"));
}

/* --------------------------------------------------------- line files */

static void test_line_files(void **state)
{
    struct tmp *t = *state;
    struct dk_error err = {{0}};
    struct dk_list l = {0};
    write_text(tpath(t, "names"), "zero\r\none\n\nthree\nfour");
    assert_int_equal(dk_list_read(tpath(t, "names"), &l, &err), 0);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.items[0], "zero");
    assert_string_equal(l.items[1], "one");
    assert_string_equal(l.items[2], "");
    assert_string_equal(l.items[3], "three");
    assert_string_equal(l.items[4], "four");
    dk_list_free(&l);
    dk_list_free(&l);

    assert_int_equal(dk_list_read_paths(tpath(t, "names"), &l, &err), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[2], "three");
    dk_list_free(&l);

    assert_int_equal(dk_list_read(tpath(t, "absent"), &l, &err), -1);
    assert_non_null(strstr(err.msg, "absent"));
    assert_non_null(strstr(err.msg, "No such file"));
}

/* ------------------------------------------------------------ data sets */

static void test_idx_dataset_matches_png(void **state)
{
    struct tmp *t = *state;
    uint8_t images[N * PIX], labels[N];
    sample_data(images, labels);
    write_sample_idx(t, "img.gz", "lab", true);
    write_sample_idx(t, "img", "lab", false);

    for (int g = 0; g < 2; ++g) {
        struct dk_error err = {{0}};
        struct dk_dataset ds = {0};
        assert_int_equal(
            dk_dataset_open(&ds, tpath(t, g ? "img.gz" : "img"), tpath(t, "lab"), NULL, 0, 3, &err),
            0);
        assert_int_equal(ds.kind, DK_DATASET_IDX);
        assert_int_equal(dk_dataset_count(&ds), N);
        assert_int_equal(dk_dataset_unlabelled(&ds), 0);
        for (int i = 0; i < N; ++i)
            assert_int_equal(dk_dataset_class(&ds, (size_t)i), labels[i]);
        assert_int_equal(dk_dataset_class(&ds, N), -1);

        char buf[300];
        const char *name = dk_dataset_name(&ds, 2, buf, sizeof buf);
        assert_non_null(strstr(name, "#2"));

        for (int i = 0; i < N; ++i) {
            /* The same bytes as an 8-bit gray PNG, loaded by stb. */
            char png[32];
            snprintf(png, sizeof png, "item%d.png", i);
            assert_int_not_equal(
                stbi_write_png(tpath(t, png), COLS, ROWS, 1, images + i * PIX, COLS), 0);
            for (int ch = 1; ch <= 3; ch += 2) {
                struct dk_image a = {0}, b = {0};
                assert_int_equal(dk_dataset_load(&ds, (size_t)i, ch, &a, &err), 0);
                assert_int_equal(dk_image_load(tpath(t, png), ch, &b, &err), 0);
                assert_int_equal(a.w, COLS);
                assert_int_equal(a.h, ROWS);
                assert_int_equal(a.c, ch);
                assert_int_equal(b.c, ch);
                assert_memory_equal(a.data, b.data, (size_t)PIX * ch * sizeof(float));
                dk_image_free(&a);
                dk_image_free(&b);
            }
        }
        struct dk_image a = {0};
        assert_int_equal(dk_dataset_load(&ds, N, 1, &a, &err), -1);
        assert_non_null(strstr(err.msg, "item 3 requested, it has 3"));
        dk_dataset_close(&ds);
        dk_dataset_close(&ds);
    }
}

static void test_idx_dataset_errors(void **state)
{
    struct tmp *t = *state;
    uint8_t images[N * PIX], labels[N];
    sample_data(images, labels);
    write_sample_idx(t, "img", "lab", false);
    struct dk_error err = {{0}};
    struct dk_dataset ds = {0};

    /* Label count differs from image count. */
    const uint32_t two[1] = {2};
    write_idx(tpath(t, "lab2"), two, 1, labels, 0, false);
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), tpath(t, "lab2"), NULL, 0, 3, &err), -1);
    assert_non_null(strstr(err.msg, "holds 3 images"));
    assert_non_null(strstr(err.msg, "holds 2 labels"));
    assert_int_equal(ds.count, 0);

    /* A label beyond classes. */
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), tpath(t, "lab"), NULL, 0, 2, &err), -1);
    assert_non_null(strstr(err.msg, "item 0 has label 2, but classes=2"));

    /* Images given as labels and the reverse. */
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), tpath(t, "img"), NULL, 0, 3, &err), -1);
    assert_non_null(strstr(err.msg, "labels need 1"));
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "lab"), NULL, NULL, 0, 3, &err), -1);
    assert_non_null(strstr(err.msg, "images need 3"));

    /* Truncated labels. */
    const uint32_t three[1] = {3};
    write_idx(tpath(t, "labcut.gz"), three, 1, labels, -1, true);
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), tpath(t, "labcut.gz"), NULL, 0, 3, &err),
                     -1);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_non_null(strstr(err.msg, "labcut.gz"));

    /* No label file: open, every item unlabelled. */
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), NULL, NULL, 0, 3, &err), 0);
    assert_int_equal(dk_dataset_unlabelled(&ds), N);
    assert_int_equal(dk_dataset_class(&ds, 0), -1);
    dk_dataset_close(&ds);

    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), tpath(t, "lab"), NULL, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "classes must be at least 1"));
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "gone"), NULL, NULL, 0, 3, &err), -1);
    assert_non_null(strstr(err.msg, "gone"));
}

static void write_gray_png(const char *path, uint8_t seed)
{
    uint8_t px[6 * 6];
    for (int i = 0; i < 36; ++i)
        px[i] = (uint8_t)(seed + i * 5);
    assert_int_not_equal(stbi_write_png(path, 6, 6, 1, px, 6), 0);
}

static void test_list_dataset(void **state)
{
    struct tmp *t = *state;
    /* mkdtemp never writes '-', so the labels only match the file names. */
    write_gray_png(tpath(t, "a-cat-1.png"), 10);
    write_gray_png(tpath(t, "b-dog-1.png"), 20);
    write_gray_png(tpath(t, "c-cat-dog-.png"), 30);
    write_gray_png(tpath(t, "d-bird.png"), 40);
    char list[2048];
    snprintf(list, sizeof list, "%s\r\n\n%s\n%s\n\n%s", tpath(t, "a-cat-1.png"),
             tpath(t, "b-dog-1.png"), tpath(t, "c-cat-dog-.png"), tpath(t, "d-bird.png"));
    write_text(tpath(t, "train.list"), list);
    char *labels[] = {"-cat-", "-dog-", "-unused-"};

    struct dk_error err = {{0}};
    struct dk_dataset ds = {0};
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "train.list"), NULL, labels, 3, 2, &err), 0);
    assert_int_equal(ds.kind, DK_DATASET_LIST);
    assert_int_equal(dk_dataset_count(&ds), 4);
    assert_int_equal(dk_dataset_class(&ds, 0), 0);
    assert_int_equal(dk_dataset_class(&ds, 1), 1);
    assert_int_equal(dk_dataset_class(&ds, 2), -1); /* two labels match */
    assert_int_equal(dk_dataset_class(&ds, 3), -1); /* none matches */
    assert_int_equal(dk_dataset_unlabelled(&ds), 2);
    assert_string_equal(dk_dataset_name(&ds, 1, NULL, 0), tpath(t, "b-dog-1.png"));

    /* The report names each image and what it matched, then counts the rest. */
    char report[1024];
    assert_int_equal(dk_dataset_label_report(&ds, 5, report, sizeof report), 2);
    char want[1024];
    snprintf(want, sizeof want,
             "\"%s\": 2 of its 4 image paths match no label or several\n"
             "  %s: 2 labels (-cat-, -dog-)\n  %s: no label",
             tpath(t, "train.list"), tpath(t, "c-cat-dog-.png"), tpath(t, "d-bird.png"));
    assert_string_equal(report, want);
    assert_int_equal(dk_dataset_label_report(&ds, 1, report, sizeof report), 2);
    assert_non_null(strstr(report, "c-cat-dog-.png: 2 labels"));
    assert_null(strstr(report, "d-bird"));
    assert_non_null(strstr(report, "\n  ... and 1 more"));
    /* Truncated, still terminated. */
    assert_int_equal(dk_dataset_label_report(&ds, 5, report, 10), 2);
    assert_int_equal(strlen(report), 9);

    struct dk_image im = {0};
    assert_int_equal(dk_dataset_load(&ds, 0, 3, &im, &err), 0);
    assert_int_equal(im.c, 3);
    assert_true(im.data[0] == (float)(10 / 255.));
    dk_image_free(&im);

    /* Batch: identity augmentation; rows are whole images, truth as fill_truth. */
    struct dk_augment_params aug = {
        .min_crop = 6, .max_crop = 6, .aspect = 1, .saturation = 1, .exposure = 1};
    enum { B = 16 };
    float X[B * 36], Y[B * 2];
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 3);
    assert_int_equal(dk_dataset_train_batch(&ds, &rng, B, 6, 6, 1, &aug, X, Y, &err), 0);
    for (int b = 0; b < B; ++b) {
        int seed = (int)(X[b * 36] * 255 + 0.5f);
        assert_true(seed == 10 || seed == 20 || seed == 30 || seed == 40);
        float want0 = (seed == 10 || seed == 30) ? 1 : 0;
        float want1 = (seed == 20 || seed == 30) ? 1 : 0;
        assert_true(Y[b * 2] == want0);
        assert_true(Y[b * 2 + 1] == want1);
        for (int p = 0; p < 36; ++p)
            assert_true(X[b * 36 + p] == (float)((uint8_t)(seed + p * 5) / 255.));
    }

    /* AlexeyAB's label smoothing: 1 - eps where a label matches, eps / (2 - 1) elsewhere. */
    aug.label_smooth_eps = 0.25f;
    assert_int_equal(dk_dataset_train_batch(&ds, &rng, B, 6, 6, 1, &aug, X, Y, &err), 0);
    for (int b = 0; b < B; ++b) {
        int seed = (int)(X[b * 36] * 255 + 0.5f);
        assert_true(Y[b * 2] == ((seed == 10 || seed == 30) ? 0.75f : 0.25f));
        assert_true(Y[b * 2 + 1] == ((seed == 20 || seed == 30) ? 0.75f : 0.25f));
    }
    aug.label_smooth_eps = 1;
    assert_int_equal(dk_dataset_train_batch(&ds, &rng, B, 6, 6, 1, &aug, X, Y, &err), -1);
    assert_non_null(strstr(err.msg, "label_smooth_eps must be in [0, 1)"));
    aug.label_smooth_eps = 0;

    /* A file in the list that is gone: the batch fails naming it. */
    unlink(tpath(t, "d-bird.png"));
    int failed = 0;
    for (int r = 0; r < 20 && !failed; ++r)
        failed = dk_dataset_train_batch(&ds, &rng, B, 6, 6, 1, &aug, X, Y, &err) != 0;
    assert_true(failed);
    assert_non_null(strstr(err.msg, "d-bird.png"));
    dk_dataset_close(&ds);

    /* Errors: too few labels, an empty label, an IDX label file with a list. */
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "train.list"), NULL, labels, 1, 2, &err), -1);
    assert_non_null(strstr(err.msg, "needs 2 labels"));
    char *empty[] = {"-cat-", ""};
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "train.list"), NULL, empty, 2, 2, &err), -1);
    assert_non_null(strstr(err.msg, "label 1 of 2 is empty"));
    assert_int_equal(
        dk_dataset_open(&ds, tpath(t, "train.list"), tpath(t, "x.idx"), labels, 3, 2, &err), -1);
    assert_non_null(strstr(err.msg, "only goes with IDX images"));
    write_text(tpath(t, "empty.list"), "\n\n");
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "empty.list"), NULL, labels, 3, 2, &err), -1);
    assert_non_null(strstr(err.msg, "lists no image paths"));
}

/* A one-channel network given a colour list image reads its red plane, as darknet's
 * load_image_color feeds it, in valid (eval) as in predict; a luminance would differ. */
static void test_list_one_channel_reads_red(void **state)
{
    struct tmp *t = *state;
    enum { S = 4 };
    uint8_t px[S * S * 3];
    for (int i = 0; i < S * S; ++i) {
        px[i * 3 + 0] = (uint8_t)(250 - i * 9);
        px[i * 3 + 1] = (uint8_t)(i * 13);
        px[i * 3 + 2] = 99;
    }
    assert_int_not_equal(stbi_write_png(tpath(t, "x-red-1.png"), S, S, 3, px, S * 3), 0);
    write_text(tpath(t, "red.list"), tpath(t, "x-red-1.png"));
    char *labels[] = {"-red-"};
    struct dk_error err = {{0}};
    struct dk_dataset ds = {0};
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "red.list"), NULL, labels, 1, 1, &err), 0);

    struct dk_image im = {0};
    assert_int_equal(dk_dataset_load(&ds, 0, 1, &im, &err), 0);
    assert_int_equal(im.c, 1);
    float X[S * S];
    assert_int_equal(dk_dataset_eval_image(&ds, 0, S, S, 1, X, &err), 0);
    for (int i = 0; i < S * S; ++i) {
        assert_true(im.data[i] == (float)(px[i * 3] / 255.));
        assert_true(X[i] == (float)(px[i * 3] / 255.));
    }
    dk_image_free(&im);
    dk_dataset_close(&ds);
}

static void test_idx_batch_and_eval(void **state)
{
    struct tmp *t = *state;
    uint8_t images[N * PIX], labels[N];
    sample_data(images, labels);
    write_sample_idx(t, "img", "lab", true);
    struct dk_error err = {{0}};
    struct dk_dataset ds = {0};
    assert_int_equal(dk_dataset_open(&ds, tpath(t, "img"), tpath(t, "lab"), NULL, 0, 3, &err), 0);

    struct dk_augment_params aug = {
        .min_crop = COLS, .max_crop = COLS, .aspect = 1, .saturation = 1, .exposure = 1};
    enum { B = 12, C = 3 };
    float X[B * C * PIX], Y[B * 3];
    int seen[N] = {0};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 11);
    /* 5x4 crops of 5x4 images with crop 5: the shorter side (4) is scaled to 5,
     * so pixels are interpolated; check ranges and one-hot truth only. */
    assert_int_equal(dk_dataset_train_batch(&ds, &rng, B, COLS, ROWS, C, &aug, X, Y, &err), 0);
    for (int b = 0; b < B; ++b) {
        float sum = 0;
        for (int k = 0; k < 3; ++k)
            sum += Y[b * 3 + k];
        assert_true(sum == 1);
        for (int p = 0; p < C * PIX; ++p)
            assert_true(X[b * C * PIX + p] >= 0 && X[b * C * PIX + p] <= 1);
    }

    /* Square data: 4x4 crops of 4x4 images with crop 4 are exact copies. */
    const uint32_t sq[3] = {N, 4, 4};
    write_idx(tpath(t, "sq"), sq, 3, images, 0, false);
    struct dk_dataset ds2 = {0};
    assert_int_equal(dk_dataset_open(&ds2, tpath(t, "sq"), tpath(t, "lab"), NULL, 0, 3, &err), 0);
    aug.min_crop = aug.max_crop = 4;
    float X2[B * C * 16], Y2[B * 3];
    assert_int_equal(dk_dataset_train_batch(&ds2, &rng, B, 4, 4, C, &aug, X2, Y2, &err), 0);
    for (int b = 0; b < B; ++b) {
        int item = -1;
        for (int i = 0; i < N; ++i)
            if (X2[b * C * 16] == dk_pixel_from_byte(images[i * 16]) &&
                X2[b * C * 16 + 5] == dk_pixel_from_byte(images[i * 16 + 5]))
                item = i;
        assert_true(item >= 0);
        seen[item] = 1;
        for (int k = 0; k < C; ++k)
            for (int p = 0; p < 16; ++p)
                assert_true(X2[b * C * 16 + k * 16 + p] ==
                            dk_pixel_from_byte(images[item * 16 + p]));
        for (int k = 0; k < 3; ++k)
            assert_true(Y2[b * 3 + k] == (k == labels[item] ? 1.0f : 0.0f));
    }
    assert_true(seen[0] && seen[1] && seen[2]);

    /* Eval at the native size is the image itself. */
    float E[16];
    for (int i = 0; i < N; ++i) {
        assert_int_equal(dk_dataset_eval_image(&ds2, (size_t)i, 4, 4, 1, E, &err), 0);
        for (int p = 0; p < 16; ++p)
            assert_true(E[p] == dk_pixel_from_byte(images[i * 16 + p]));
    }
    assert_int_equal(dk_dataset_eval_image(&ds2, 0, 4, 4, 9, E, &err), -1);
    assert_non_null(strstr(err.msg, "channels 1 to 4"));

    /* Same seed, same batch. */
    struct dnn_rng r1, r2;
    dnn_rng_seed(&r1, 5);
    dnn_rng_seed(&r2, 5);
    aug.flip = true;
    aug.angle = 10;
    aug.exposure = 1.5f;
    float A1[B * C * 16], A2[B * C * 16];
    assert_int_equal(dk_dataset_train_batch(&ds2, &r1, B, 4, 4, C, &aug, A1, NULL, &err), 0);
    assert_int_equal(dk_dataset_train_batch(&ds2, &r2, B, 4, 4, C, &aug, A2, NULL, &err), 0);
    assert_memory_equal(A1, A2, sizeof A1);

    aug.max_crop = 0;
    assert_int_equal(dk_dataset_train_batch(&ds2, &r1, B, 4, 4, C, &aug, A1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "max_crop"));

    dk_dataset_close(&ds2);
    dk_dataset_close(&ds);
}

static void test_fashion_mnist_t10k(void **state)
{
    (void)state;
    const char *img = FMNIST_DIR "/t10k-images-idx3-ubyte.gz";
    const char *lab = FMNIST_DIR "/t10k-labels-idx1-ubyte.gz";
    if (access(img, R_OK) != 0 || access(lab, R_OK) != 0) {
        skip();
        return;
    }
    struct dk_error err = {{0}};
    struct dk_dataset ds = {0};
    assert_int_equal(dk_dataset_open(&ds, img, lab, NULL, 0, 10, &err), 0);
    assert_int_equal(dk_dataset_count(&ds), 10000);
    assert_int_equal(ds.rows, 28);
    assert_int_equal(ds.cols, 28);
    assert_int_equal(dk_dataset_unlabelled(&ds), 0);
    int per_class[10] = {0};
    for (size_t i = 0; i < 10000; ++i) {
        int c = dk_dataset_class(&ds, i);
        assert_true(c >= 0 && c <= 9);
        per_class[c]++;
    }
    for (int c = 0; c < 10; ++c)
        assert_int_equal(per_class[c], 1000);

    /* The training path at 28x28 with crop 28 is the identity. */
    struct dk_augment_params aug = {
        .min_crop = 28, .max_crop = 28, .aspect = 1, .saturation = 1, .exposure = 1};
    enum { B = 64 };
    float *X = malloc(B * 784 * sizeof(float));
    float *Y = malloc(B * 10 * sizeof(float));
    assert_non_null(X);
    assert_non_null(Y);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 99);
    assert_int_equal(dk_dataset_train_batch(&ds, &rng, B, 28, 28, 1, &aug, X, Y, &err), 0);
    float E[784];
    assert_int_equal(dk_dataset_eval_image(&ds, 0, 28, 28, 1, E, &err), 0);
    uint8_t first[784];
    assert_int_equal(dk_idx_file_read(&ds.images, 0, sizeof first, first, &err), 0);
    for (int p = 0; p < 784; ++p)
        assert_true(E[p] == dk_pixel_from_byte(first[p]));
    free(X);
    free(Y);
    dk_dataset_close(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_read_plain_and_gz, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_idx_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_line_files, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_idx_dataset_matches_png, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_idx_dataset_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_list_dataset, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_list_one_channel_reads_red, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_idx_batch_and_eval, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_fashion_mnist_t10k),
    };
    return cmocka_run_group_tests_name("dataset", tests, NULL, NULL);
}
