/*
 * test_image.c - stb loading and darknet's image operations (darknet/image.h,
 * darknet/augment.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "darknet/augment.h"
#include "darknet/image.h"
#include "tests/helpers/tmpdir.h"

/* ------------------------------------------------------------- fixtures */

static void tmp_path(const struct tmp *t, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->dir, name);
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* An image whose every value differs: v = (i * 37 % 251) / 255. */
static void fill_pattern(struct dk_image *im)
{
    size_t n = (size_t)im->w * im->h * im->c;
    for (size_t i = 0; i < n; ++i)
        im->data[i] = (float)((i * 37 % 251) / 255.0);
}

static void assert_images_equal(const struct dk_image *a, const struct dk_image *b)
{
    assert_int_equal(a->w, b->w);
    assert_int_equal(a->h, b->h);
    assert_int_equal(a->c, b->c);
    assert_memory_equal(a->data, b->data, (size_t)a->w * a->h * a->c * sizeof(float));
}

/* ------------------------------------------------------------- loading */

static void test_load_gray_png(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "gray.png", path, sizeof path);
    enum { W = 5, H = 3 };
    uint8_t px[W * H];
    for (int i = 0; i < W * H; ++i)
        px[i] = (uint8_t)(i * 17 + 3);
    px[0] = 0;
    px[1] = 255;
    assert_int_not_equal(stbi_write_png(path, W, H, 1, px, W), 0);

    struct dk_error err = {{0}};
    struct dk_image im = {0};
    assert_int_equal(dk_image_load(path, 1, &im, &err), 0);
    assert_int_equal(im.w, W);
    assert_int_equal(im.h, H);
    assert_int_equal(im.c, 1);
    for (int i = 0; i < W * H; ++i)
        assert_true(im.data[i] == (float)(px[i] / 255.));
    assert_true(im.data[0] == 0.0f);
    assert_true(im.data[1] == 1.0f);

    /* Gray asked as 3 channels: three equal planes. */
    struct dk_image im3 = {0};
    assert_int_equal(dk_image_load(path, 3, &im3, &err), 0);
    assert_int_equal(im3.c, 3);
    for (int k = 0; k < 3; ++k)
        assert_memory_equal(im3.data + k * W * H, im.data, W * H * sizeof(float));

    /* channels = 0 keeps the file's single channel. */
    struct dk_image im0 = {0};
    assert_int_equal(dk_image_load(path, 0, &im0, &err), 0);
    assert_images_equal(&im0, &im);

    dk_image_free(&im);
    dk_image_free(&im3);
    dk_image_free(&im0);
    dk_image_free(&im0); /* freeing an empty image is fine */
}

static void test_load_rgb_png_is_planar(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "rgb.png", path, sizeof path);
    enum { W = 4, H = 2 };
    uint8_t px[W * H * 3];
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int k = 0; k < 3; ++k)
                px[(y * W + x) * 3 + k] = (uint8_t)(x * 50 + y * 20 + k * 3);
    assert_int_not_equal(stbi_write_png(path, W, H, 3, px, W * 3), 0);

    struct dk_error err = {{0}};
    struct dk_image im = {0};
    assert_int_equal(dk_image_load(path, 3, &im, &err), 0);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int k = 0; k < 3; ++k)
                assert_true(im.data[k * W * H + y * W + x] ==
                            (float)(px[(y * W + x) * 3 + k] / 255.));
    dk_image_free(&im);
}

/* darknet's classifier loads every image with load_image_color (3 channels) and a
 * one-channel network reads its first plane: red, not a luminance. Issue 12: Go
 * networks predicted differently from darknet on a colour image. */
static void test_load_net_reads_red_plane(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "rgb1.png", path, sizeof path);
    enum { W = 3, H = 2 };
    uint8_t px[W * H * 3];
    for (int i = 0; i < W * H; ++i) {
        px[i * 3 + 0] = (uint8_t)(200 - i * 30); /* red */
        px[i * 3 + 1] = (uint8_t)(i * 40);       /* green */
        px[i * 3 + 2] = (uint8_t)(17 + i);       /* blue */
    }
    assert_int_not_equal(stbi_write_png(path, W, H, 3, px, W * 3), 0);

    struct dk_error err = {{0}};
    for (int c = 1; c <= 3; ++c) {
        struct dk_image im = {0};
        assert_int_equal(dk_image_load_net(path, c, &im, &err), 0);
        assert_int_equal(im.w, W);
        assert_int_equal(im.h, H);
        assert_int_equal(im.c, c);
        for (int k = 0; k < c; ++k)
            for (int i = 0; i < W * H; ++i)
                assert_true(im.data[k * W * H + i] == (float)(px[i * 3 + k] / 255.));
        dk_image_free(&im);
    }

    /* A gray file: the same floats as a one-channel load. */
    char gray[256];
    tmp_path(t, "gray1.png", gray, sizeof gray);
    uint8_t g[W * H] = {0, 9, 80, 128, 250, 255};
    assert_int_not_equal(stbi_write_png(gray, W, H, 1, g, W), 0);
    struct dk_image a = {0}, b = {0};
    assert_int_equal(dk_image_load_net(gray, 1, &a, &err), 0);
    assert_int_equal(dk_image_load(gray, 1, &b, &err), 0);
    assert_memory_equal(a.data, b.data, W * H * sizeof(float));
    dk_image_free(&a);
    dk_image_free(&b);

    struct dk_image bad = {0};
    assert_int_equal(dk_image_load_net(path, 0, &bad, &err), -1);
    assert_int_equal(dk_image_load_net(path, 5, &bad, &err), -1);
    assert_null(bad.data);
}

static void test_load_errors(void **state)
{
    struct tmp *t = *state;
    char path[256];
    struct dk_error err = {{0}};
    struct dk_image im = {0};

    tmp_path(t, "missing.png", path, sizeof path);
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    assert_null(im.data);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file"));

    tmp_path(t, "garbage.png", path, sizeof path);
    write_bytes(path, "this is not an image at all", 27);
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "cannot decode image"));
    assert_non_null(strstr(err.msg, "stb_image"));

    /* A real PNG cut in half. */
    char good[256];
    tmp_path(t, "good.png", good, sizeof good);
    uint8_t px[16 * 16];
    for (int i = 0; i < 256; ++i)
        px[i] = (uint8_t)(i * 7);
    assert_int_not_equal(stbi_write_png(good, 16, 16, 1, px, 16), 0);
    FILE *f = fopen(good, "rb");
    assert_non_null(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 40);
    tmp_path(t, "cut.png", path, sizeof path);
    write_bytes(path, buf, n / 2);
    assert_int_equal(dk_image_load(path, 1, &im, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "cannot decode image"));

    assert_int_equal(dk_image_load(good, 7, &im, &err), -1);
    assert_non_null(strstr(err.msg, "7 channels"));
}

/* Formats whose stb 2.27 reader has a known fault are refused by name before stb sees
 * them: a truncated Radiance HDR loops for ever in stb (CVE-2021-42715), a truncated
 * Softimage PIC crashes it (CVE-2023-43898). An alarm turns a regression into a failure
 * rather than a hung suite. */
static void test_load_refused_formats(void **state)
{
    struct tmp *t = *state;
    char path[256];
    struct dk_error err = {{0}};
    struct dk_image im = {0};
    alarm(20);

    tmp_path(t, "cut.hdr", path, sizeof path);
    static const char hdr[] = "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 8\n\x02\x02\x00\x08";
    write_bytes(path, hdr, sizeof hdr - 1);
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "Radiance HDR files are not read"));
    assert_non_null(strstr(err.msg, "CVE-2021-42715"));

    /* The PIC header: magic, 84 bytes, "PICT", width and height (8 x 8), 8 bytes; then
     * one packet description (not chained, 8 bits, mixed run-length, RGB) and 16 bytes
     * too few for its pixels. Without the refusal this file kills the process. */
    uint8_t pic[124] = {0x53, 0x80, 0xf6, 0x34};
    memcpy(pic + 88, "PICT", 4);
    pic[93] = 8;
    pic[95] = 8;
    memcpy(pic + 104, "\x00\x08\x02\xe0", 4);
    tmp_path(t, "cut.pic", path, sizeof path);
    write_bytes(path, pic, sizeof pic);
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    assert_non_null(strstr(err.msg, "Softimage PIC files are not read"));
    assert_null(im.data);
    alarm(0);
}

/* Binary PGM and PPM: a 16-bit file asked for another channel count is refused (stb 2.27
 * converts it with its 8-bit converter and reads twice past the buffer: a 19-byte header
 * crashed darknetp), as is a file whose pixels do not all follow the header (stb returned
 * uninitialised memory for them). Its own channel count still loads, comments included. */
static void test_load_pnm(void **state)
{
    struct tmp *t = *state;
    char path[256];
    struct dk_error err = {{0}};
    struct dk_image im = {0};
    tmp_path(t, "wide.pgm", path, sizeof path);
    static const char pgm16[] = "P5\n# a comment\n2 2\n65535\n\x12\x34\xff\xff\x00\x01\x80\x00";
    write_bytes(path, pgm16, sizeof pgm16 - 1);
    for (int ch = 0; ch <= 1; ++ch) {
        if (dk_image_load(path, ch, &im, &err) != 0)
            fail_msg("%s", err.msg);
        assert_int_equal(im.c, 1);
        assert_true(im.data[1] == 1.0f);     /* 0xffff */
        assert_true(im.data[2] < 2 / 255.f); /* 0x0001, whichever byte stb keeps */
        dk_image_free(&im);
    }
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    assert_null(im.data);
    if (!strstr(err.msg, path) ||
        !strstr(err.msg, "a 16-bit PGM (maxval 65535) is read only as its own 1 channel, not 3"))
        fail_msg("got '%s'", err.msg);

    /* stb's int wraps on a long number: 4294967552 is a maxval of 256 to it. */
    static const char pgm_wrap[] = "P5 2 2 4294967552\n12345678";
    write_bytes(path, pgm_wrap, sizeof pgm_wrap - 1);
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    if (!strstr(err.msg, "a 16-bit PGM (maxval 256) is read only as its own 1 channel"))
        fail_msg("got '%s'", err.msg);

    tmp_path(t, "short.ppm", path, sizeof path);
    static const char ppm[] = "P6 4 4 255\n0123456789";
    write_bytes(path, ppm, sizeof ppm - 1);
    assert_int_equal(dk_image_load(path, 3, &im, &err), -1);
    if (!strstr(err.msg, "its PPM header (4 x 4, maxval 255) needs 48 bytes of pixels, but only "
                         "10 follow it"))
        fail_msg("got '%s'", err.msg);
    static const char ppm_full[] = "P6 1 2 255\n\x01\x02\x03\x04\x05\x06";
    write_bytes(path, ppm_full, sizeof ppm_full - 1);
    assert_int_equal(dk_image_load(path, 3, &im, &err), 0);
    assert_true(im.data[1] == (float)(4 / 255.)); /* red of the second row */
    dk_image_free(&im);
}

/* A top-down BMP (negative height) is a valid file: its size is |height|, and it loads
 * as the same file stored bottom-up, rows in the other order. */
static void test_load_topdown_bmp(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "up.bmp", path, sizeof path);
    enum { W = 3, H = 2 };
    uint8_t px[W * H * 3];
    for (int i = 0; i < W * H * 3; ++i)
        px[i] = (uint8_t)(i * 13 + 1);
    assert_int_not_equal(stbi_write_bmp(path, W, H, 3, px), 0);
    struct dk_error err = {{0}};
    struct dk_image up = {0}, down = {0};
    assert_int_equal(dk_image_load(path, 3, &up, &err), 0);

    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t height[4] = {(uint8_t)-H, 0xff, 0xff, 0xff}; /* biHeight, at byte 22 */
    assert_int_equal(fseek(f, 22, SEEK_SET), 0);
    assert_int_equal(fwrite(height, 1, 4, f), 4);
    assert_int_equal(fclose(f), 0);
    if (dk_image_load(path, 3, &down, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(down.w, W);
    assert_int_equal(down.h, H);
    for (int k = 0; k < 3; ++k)
        for (int y = 0; y < H; ++y)
            assert_memory_equal(down.data + (k * H + y) * W, up.data + (k * H + H - 1 - y) * W,
                                W * sizeof(float));
    dk_image_free(&up);
    dk_image_free(&down);
}

/* ------------------------------------------------------------- geometry */

static void test_resize_identity_and_values(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    assert_int_equal(dk_image_make(&a, 7, 5, 3, &err), 0);
    fill_pattern(&a);
    assert_int_equal(dk_image_resize(&a, 7, 5, &b, &err), 0);
    assert_images_equal(&a, &b);
    dk_image_free(&b);

    /* 2x1 -> 3x1: scale (2-1)/(3-1) = 0.5; columns 0, 0.5, last. */
    struct dk_image row = {0}, out = {0};
    assert_int_equal(dk_image_make(&row, 2, 1, 1, &err), 0);
    row.data[0] = 0;
    row.data[1] = 1;
    assert_int_equal(dk_image_resize(&row, 3, 1, &out, &err), 0);
    assert_true(out.data[0] == 0.0f);
    assert_true(out.data[1] == 0.5f);
    assert_true(out.data[2] == 1.0f);
    dk_image_free(&out);

    /* 1 row up to 3 rows and 1 column: every output is that pixel. */
    assert_int_equal(dk_image_resize(&row, 1, 3, &out, &err), 0);
    for (int i = 0; i < 3; ++i)
        assert_true(out.data[i] == 1.0f);
    dk_image_free(&out);

    /* 3x3 -> 2x2 takes the corners (scale 2). */
    struct dk_image sq = {0};
    assert_int_equal(dk_image_make(&sq, 3, 3, 1, &err), 0);
    fill_pattern(&sq);
    assert_int_equal(dk_image_resize(&sq, 2, 2, &out, &err), 0);
    assert_true(out.data[0] == sq.data[0]);
    assert_true(out.data[1] == sq.data[2]);
    assert_true(out.data[2] == sq.data[6]);
    assert_true(out.data[3] == sq.data[8]);
    dk_image_free(&out);

    assert_int_equal(dk_image_resize(&sq, 0, 2, &out, &err), -1);
    assert_non_null(strstr(err.msg, "invalid image size"));

    dk_image_free(&sq);
    dk_image_free(&row);
    dk_image_free(&a);
}

static void test_letterbox(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    assert_int_equal(dk_image_make(&a, 6, 6, 3, &err), 0);
    fill_pattern(&a);
    assert_int_equal(dk_image_letterbox(&a, 6, 6, &b, &err), 0);
    assert_images_equal(&a, &b);
    dk_image_free(&b);
    assert_int_equal(dk_image_prepare_predict(&a, 6, 6, &b, &err), 0);
    assert_images_equal(&a, &b);
    dk_image_free(&b);
    dk_image_free(&a);

    /* 4x2 into 4x4: same width, rows 1..2 hold the image, 0 and 3 are 0.5. */
    assert_int_equal(dk_image_make(&a, 4, 2, 1, &err), 0);
    fill_pattern(&a);
    assert_int_equal(dk_image_letterbox(&a, 4, 4, &b, &err), 0);
    for (int x = 0; x < 4; ++x) {
        assert_true(b.data[0 * 4 + x] == 0.5f);
        assert_true(b.data[1 * 4 + x] == a.data[x]);
        assert_true(b.data[2 * 4 + x] == a.data[4 + x]);
        assert_true(b.data[3 * 4 + x] == 0.5f);
    }
    dk_image_free(&b);
    dk_image_free(&a);
}

static void test_flip_crop_embed(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    assert_int_equal(dk_image_make(&a, 5, 3, 2, &err), 0);
    fill_pattern(&a);
    assert_int_equal(dk_image_copy(&a, &b, &err), 0);
    dk_image_flip(&b);
    for (int k = 0; k < 2; ++k)
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 5; ++x)
                assert_true(b.data[(k * 3 + y) * 5 + x] == a.data[(k * 3 + y) * 5 + (4 - x)]);
    dk_image_flip(&b);
    assert_images_equal(&a, &b);
    dk_image_free(&b);

    /* Reads outside clamp to the edge. */
    assert_int_equal(dk_image_crop(&a, -2, 1, 4, 4, &b, &err), 0);
    for (int k = 0; k < 2; ++k)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 4; ++x) {
                int sx = x - 2 < 0 ? 0 : x - 2;
                int sy = y + 1 > 2 ? 2 : y + 1;
                assert_true(b.data[(k * 4 + y) * 4 + x] == a.data[(k * 3 + sy) * 5 + sx]);
            }
    dk_image_free(&b);

    /* Embed partly outside: only the overlap is written. */
    assert_int_equal(dk_image_make(&b, 3, 3, 2, &err), 0);
    dk_image_fill(&b, -1);
    dk_image_embed(&a, &b, 1, -1);
    for (int k = 0; k < 2; ++k)
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 3; ++x) {
                float want = (x >= 1 && y <= 1) ? a.data[(k * 3 + y + 1) * 5 + x - 1] : -1;
                assert_true(b.data[(k * 3 + y) * 3 + x] == want);
            }
    dk_image_free(&b);
    dk_image_free(&a);
}

static void test_resize_min_center_crop_eval(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    /* 8x4 with min 4: already the right size, eval crops columns 2..5. */
    assert_int_equal(dk_image_make(&a, 8, 4, 1, &err), 0);
    fill_pattern(&a);
    assert_int_equal(dk_image_resize_min(&a, 4, &b, &err), 0);
    assert_images_equal(&a, &b);
    dk_image_free(&b);
    float x[16];
    assert_int_equal(dk_image_prepare_eval(&a, 4, 4, x, &err), 0);
    for (int y = 0; y < 4; ++y)
        for (int i = 0; i < 4; ++i)
            assert_true(x[y * 4 + i] == a.data[y * 8 + i + 2]);
    /* center_crop: the central 4x4 square resized to itself. */
    assert_int_equal(dk_image_center_crop(&a, 4, 4, &b, &err), 0);
    assert_memory_equal(b.data, x, sizeof x);
    dk_image_free(&b);

    /* resize_min(2) of 8x4 gives 4x2 (darknet's integer rounding). */
    assert_int_equal(dk_image_resize_min(&a, 2, &b, &err), 0);
    assert_int_equal(b.w, 4);
    assert_int_equal(b.h, 2);
    dk_image_free(&b);
    dk_image_free(&a);

    /* Same size square: eval is a copy. */
    assert_int_equal(dk_image_make(&a, 4, 4, 3, &err), 0);
    fill_pattern(&a);
    float y3[48];
    assert_int_equal(dk_image_prepare_eval(&a, 4, 4, y3, &err), 0);
    assert_memory_equal(y3, a.data, sizeof y3);
    dk_image_free(&a);
}

/* ---------------------------------------------------------------- colour */

static void test_hsv(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    assert_int_equal(dk_image_make(&a, 4, 1, 3, &err), 0);
    float rgb[4][3] = {{1, 0, 0}, {0, 1, 0}, {0.2f, 0.2f, 0.2f}, {0.3f, 0.6f, 0.9f}};
    for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 3; ++k)
            a.data[k * 4 + i] = rgb[i][k];
    assert_int_equal(dk_image_copy(&a, &b, &err), 0);
    assert_int_equal(dk_image_rgb_to_hsv(&b, &err), 0);
    /* red: h 0, s 1, v 1; green: h 1/3; gray: s 0, v 0.2 (and no NaN). */
    assert_true(b.data[0] == 0.0f && b.data[4] == 1.0f && b.data[8] == 1.0f);
    assert_float_equal(b.data[1], 1.0f / 3, 1e-7);
    assert_true(b.data[2] == 0.0f && b.data[6] == 0.0f && b.data[10] == 0.2f);
    for (int i = 0; i < 12; ++i)
        assert_false(isnan(b.data[i]));
    assert_int_equal(dk_image_hsv_to_rgb(&b, &err), 0);
    for (int i = 0; i < 12; ++i)
        assert_float_equal(b.data[i], a.data[i], 1e-6);
    dk_image_free(&b);

    /* Neutral distortion keeps colours within rounding. */
    assert_int_equal(dk_image_copy(&a, &b, &err), 0);
    dk_image_distort(&b, 0, 1, 1);
    for (int i = 0; i < 12; ++i)
        assert_float_equal(b.data[i], a.data[i], 1e-6);
    dk_image_free(&b);
    dk_image_free(&a);

    /* One channel: HSV refused, distortion scales and clamps the value. */
    assert_int_equal(dk_image_make(&a, 3, 1, 1, &err), 0);
    a.data[0] = 0.25f;
    a.data[1] = 0.5f;
    a.data[2] = 0.75f;
    assert_int_equal(dk_image_rgb_to_hsv(&a, &err), -1);
    assert_non_null(strstr(err.msg, "3-channel"));
    dk_image_distort(&a, 0.3f, 2.0f, 1.0f);
    assert_true(a.data[0] == 0.25f && a.data[1] == 0.5f && a.data[2] == 0.75f);
    dk_image_distort(&a, 0, 1, 2.0f);
    assert_true(a.data[0] == 0.5f && a.data[1] == 1.0f && a.data[2] == 1.0f);
    dk_image_free(&a);

    /* A gray RGB image distorts like the 1-channel one. */
    assert_int_equal(dk_image_make(&a, 2, 1, 3, &err), 0);
    assert_int_equal(dk_image_make(&b, 2, 1, 1, &err), 0);
    for (int k = 0; k < 3; ++k) {
        a.data[k * 2] = 0.3f;
        a.data[k * 2 + 1] = 0.7f;
    }
    b.data[0] = 0.3f;
    b.data[1] = 0.7f;
    dk_image_distort(&a, 0.1f, 1.4f, 1.3f);
    dk_image_distort(&b, 0.1f, 1.4f, 1.3f);
    for (int k = 0; k < 3; ++k)
        assert_memory_equal(a.data + 2 * k, b.data, 2 * sizeof(float));
    dk_image_free(&a);
    dk_image_free(&b);
}

/* ----------------------------------------------------------- augmentation */

static void test_rotate_crop(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    assert_int_equal(dk_image_make(&a, 6, 4, 2, &err), 0);
    fill_pattern(&a);
    assert_int_equal(dk_image_make(&b, 6, 4, 2, &err), 0);
    dk_image_rotate_crop_into(&a, 0, 1, 0, 0, 1, &b);
    assert_images_equal(&a, &b);
    /* A shift of one pixel right: output x samples source x + 1, 0 past the edge. */
    dk_image_rotate_crop_into(&a, 0, 1, 1, 0, 1, &b);
    for (int k = 0; k < 2; ++k)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 6; ++x) {
                float want = x + 1 < 6 ? a.data[(k * 4 + y) * 6 + x + 1] : 0;
                assert_true(b.data[(k * 4 + y) * 6 + x] == want);
            }
    /* Half a turn about the centre of a 6x4 image: (x, y) samples (6-x, 4-y). */
    dk_image_rotate_crop_into(&a, 3.14159265f, 1, 0, 0, 1, &b);
    for (int k = 0; k < 2; ++k)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 6; ++x) {
                float want = (x > 0 && y > 0) ? a.data[(k * 4 + 4 - y) * 6 + 6 - x] : 0;
                assert_float_equal(b.data[(k * 4 + y) * 6 + x], want, 1e-5);
            }
    dk_image_free(&b);
    dk_image_free(&a);
}

static void test_random_augment_identity(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0}, b = {0};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 42);
    assert_int_equal(dk_image_make(&a, 28, 28, 1, &err), 0);
    fill_pattern(&a);
    for (int i = 0; i < 20; ++i) {
        assert_int_equal(dk_image_random_augment(&a, 0, 1, 28, 28, 28, 28, &rng, &b, &err), 0);
        assert_images_equal(&a, &b);
        dk_image_free(&b);
    }
    struct dk_augment_params p = {.min_crop = 28,
                                  .max_crop = 28,
                                  .angle = 0,
                                  .aspect = 1,
                                  .hue = 0,
                                  .saturation = 1,
                                  .exposure = 1,
                                  .flip = false,
                                  .center = false};
    assert_int_equal(dk_augment_check(&p, &err), 0);
    float out[28 * 28];
    for (int i = 0; i < 20; ++i) {
        assert_int_equal(dk_augment_classifier(&a, &p, 28, 28, &rng, out, &err), 0);
        assert_memory_equal(out, a.data, sizeof out);
    }
    p.center = true;
    assert_int_equal(dk_augment_classifier(&a, &p, 28, 28, &rng, out, &err), 0);
    assert_memory_equal(out, a.data, sizeof out);
    dk_image_free(&a);
}

static void test_augment_deterministic_and_flip(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    struct dk_image a = {0};
    assert_int_equal(dk_image_make(&a, 20, 16, 3, &err), 0);
    fill_pattern(&a);
    struct dk_augment_params p = {.min_crop = 12,
                                  .max_crop = 24,
                                  .angle = 15,
                                  .aspect = 1.2f,
                                  .hue = 0.1f,
                                  .saturation = 1.5f,
                                  .exposure = 1.5f,
                                  .flip = true};
    float o1[3 * 16 * 16], o2[3 * 16 * 16];
    struct dnn_rng r1, r2;
    dnn_rng_seed(&r1, 7);
    dnn_rng_seed(&r2, 7);
    for (int i = 0; i < 10; ++i) {
        assert_int_equal(dk_augment_classifier(&a, &p, 16, 16, &r1, o1, &err), 0);
        assert_int_equal(dk_augment_classifier(&a, &p, 16, 16, &r2, o2, &err), 0);
        assert_memory_equal(o1, o2, sizeof o1);
        for (size_t j = 0; j < sizeof o1 / sizeof o1[0]; ++j)
            assert_true(o1[j] >= 0 && o1[j] <= 1);
    }

    /* With flip and nothing else, both outcomes show up, and each is the
     * source or its mirror. */
    struct dk_augment_params q = {
        .min_crop = 20, .max_crop = 20, .aspect = 1, .saturation = 1, .exposure = 1, .flip = true};
    struct dk_image sq = {0}, mirror = {0};
    assert_int_equal(dk_image_make(&sq, 20, 20, 1, &err), 0);
    fill_pattern(&sq);
    assert_int_equal(dk_image_copy(&sq, &mirror, &err), 0);
    dk_image_flip(&mirror);
    float o[20 * 20];
    int same = 0, flipped = 0;
    for (int i = 0; i < 64; ++i) {
        assert_int_equal(dk_augment_classifier(&sq, &q, 20, 20, &r1, o, &err), 0);
        if (memcmp(o, sq.data, sizeof o) == 0)
            ++same;
        else if (memcmp(o, mirror.data, sizeof o) == 0)
            ++flipped;
    }
    assert_int_equal(same + flipped, 64);
    assert_true(same > 0 && flipped > 0);

    q.min_crop = 0;
    assert_int_equal(dk_augment_check(&q, &err), -1);
    assert_non_null(strstr(err.msg, "min_crop"));
    q.min_crop = 20;
    q.exposure = 0;
    assert_int_equal(dk_augment_check(&q, &err), -1);
    assert_non_null(strstr(err.msg, "exposure"));

    dk_image_free(&sq);
    dk_image_free(&mirror);
    dk_image_free(&a);
}

static void test_rand_helpers(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 1);
    int seen[4] = {0};
    for (int i = 0; i < 400; ++i) {
        int r = dk_rand_int(&rng, 5, 2); /* bounds swapped as darknet */
        assert_true(r >= 2 && r <= 5);
        seen[r - 2] = 1;
        float u = dk_rand_uniform(&rng, 3, -1);
        assert_true(u >= -1 && u < 3);
        float s = dk_rand_scale(&rng, 2);
        assert_true(s >= 0.5f && s <= 2);
    }
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
    assert_true(dk_rand_uniform(&rng, 1, 1) == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_gray_png, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_rgb_png_is_planar, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_net_reads_red_plane, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_refused_formats, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_topdown_bmp, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_pnm, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_resize_identity_and_values),
        cmocka_unit_test(test_letterbox),
        cmocka_unit_test(test_flip_crop_embed),
        cmocka_unit_test(test_resize_min_center_crop_eval),
        cmocka_unit_test(test_hsv),
        cmocka_unit_test(test_rotate_crop),
        cmocka_unit_test(test_random_augment_identity),
        cmocka_unit_test(test_augment_deterministic_and_flip),
        cmocka_unit_test(test_rand_helpers),
    };
    return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
