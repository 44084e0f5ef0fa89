/*
 * test_png_check.c - hostile PNGs refused before stb_image allocates for them
 * (darknet/png_check.h), through dk_image_load as every reader calls it.
 *
 * The files are written here chunk by chunk (zlib for the data and the CRCs), so each
 * test states exactly which number in the file lies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include "darknet/image.h"
#include "darknet/png_check.h"
#include "tests/helpers/image_refusal.h"
#include "tests/helpers/tmpdir.h"

enum { MIB = 1 << 20 };

static void tmp_path(const struct tmp *t, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->dir, name);
}

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    assert_int_equal(fwrite(b, 1, 4, f), 4);
}

/* One chunk: length, type, data, CRC over type and data (ISO 15948, section 5.3). */
static void put_chunk(FILE *f, const char *type, const void *data, size_t len)
{
    put_be32(f, (uint32_t)len);
    assert_int_equal(fwrite(type, 1, 4, f), 4);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (len)
        crc = crc32(crc, data, (uInt)len);
    put_be32(f, (uint32_t)crc);
}

struct png_spec {
    uint32_t w, h;
    uint8_t depth, colour, interlace;
    bool cgbi;       /* Apple's chunk first; the data is raw deflate */
    bool idat_first; /* the IDAT before the IHDR */
};

/* Writes a PNG of the header s whose IDAT data is z[0..zlen) as given. */
static void write_png_data(const char *path, const struct png_spec *s, const uint8_t *z,
                           size_t zlen)
{
    unsigned char ihdr[13] = {0};
    for (int i = 0; i < 4; ++i) {
        ihdr[i] = (unsigned char)(s->w >> (24 - 8 * i));
        ihdr[4 + i] = (unsigned char)(s->h >> (24 - 8 * i));
    }
    ihdr[8] = s->depth;
    ihdr[9] = s->colour;
    ihdr[12] = s->interlace;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("\x89PNG\r\n\x1a\n", 1, 8, f), 8);
    if (s->cgbi)
        put_chunk(f, "CgBI", "\x50\x00\x20\x06", 4);
    if (s->idat_first)
        put_chunk(f, "IDAT", z, zlen);
    put_chunk(f, "IHDR", ihdr, sizeof ihdr);
    if (!s->idat_first) {
        /* Two IDATs: the stream is counted across chunks. */
        put_chunk(f, "IDAT", z, zlen / 2);
        put_chunk(f, "IDAT", z + zlen / 2, zlen - zlen / 2);
    }
    put_chunk(f, "IEND", NULL, 0);
    assert_int_equal(fclose(f), 0);
}

/* raw[0..raw_len) deflated by zlib (with its header and Adler-32 unless s->cgbi); the
 * length in *zlen, the buffer to free(). */
static uint8_t *deflate_all(const struct png_spec *s, const uint8_t *raw, size_t raw_len,
                            size_t *zlen)
{
    z_stream zs = {0};
    assert_int_equal(
        deflateInit2(&zs, 9, Z_DEFLATED, s->cgbi ? -MAX_WBITS : MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
        Z_OK);
    size_t cap = deflateBound(&zs, (uLong)raw_len);
    uint8_t *z = malloc(cap);
    assert_non_null(z);
    zs.next_in = (Bytef *)(uintptr_t)raw;
    zs.avail_in = (uInt)raw_len;
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *zlen = zs.total_out;
    deflateEnd(&zs);
    return z;
}

/* Writes a PNG whose image data inflates to exactly raw[0..raw_len). */
static void write_png(const char *path, const struct png_spec *s, const uint8_t *raw,
                      size_t raw_len)
{
    size_t zlen = 0;
    uint8_t *z = deflate_all(s, raw, raw_len, &zlen);
    write_png_data(path, s, z, zlen);
    free(z);
}

/* A deflate bit writer (RFC 1951, section 3.1.1): values LSB first, Huffman codes MSB
 * first. */
struct bits {
    uint8_t *buf;
    size_t cap, n; /* n: bits written */
};

static void put_bits(struct bits *b, uint32_t v, int count)
{
    for (int i = 0; i < count; ++i, ++b->n) {
        assert_true(b->n / 8 < b->cap);
        if ((v >> i) & 1)
            b->buf[b->n / 8] |= (uint8_t)(1u << (b->n % 8));
    }
}

static void put_code(struct bits *b, uint32_t code, int len)
{
    for (int i = len - 1; i >= 0; --i)
        put_bits(b, (code >> i) & 1, 1);
}

/*
 * A zlib stream that zlib refuses and stb inflates: one dynamic block whose literal/length
 * code is incomplete (symbols 0, 256 and 285 of length 2: codes 00, 01 and 10, 11 unused).
 * zlib stops at the table ("invalid literal/lengths set"); stb accepts it
 * (stbi__zbuild_huffman rejects only over-full codes) and inflates a literal 0 then
 * `copies` copies of 258 bytes at distance 1: 1 + 258 * copies zero bytes.
 */
static uint8_t *incomplete_code_bomb(size_t copies, size_t *zlen)
{
    struct bits b = {.cap = 64 + copies / 2};
    b.buf = calloc(b.cap, 1);
    assert_non_null(b.buf);
    b.buf[0] = 0x78; /* CMF: deflate, 32 KiB window */
    b.buf[1] = 0x01; /* FLG: 0x7801 is a multiple of 31 */
    b.n = 16;
    put_bits(&b, 1, 1);  /* BFINAL */
    put_bits(&b, 2, 2);  /* BTYPE: dynamic Huffman codes */
    put_bits(&b, 29, 5); /* HLIT: 286 literal/length codes */
    put_bits(&b, 0, 5);  /* HDIST: 1 distance code */
    put_bits(&b, 14, 4); /* HCLEN: 18 code length codes */
    /* Code length code lengths in RFC order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
     * 0, 1, 2 and 18 of length 2, so their codes are 00, 01, 10 and 11. */
    const uint8_t cl[18] = {0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2};
    for (int i = 0; i < 18; ++i)
        put_bits(&b, cl[i], 3);
    /* Literal/length lengths: 0 -> 2, 1..255 -> 0 (18 x 138, then 18 x 117), 256 -> 2,
     * 257..284 -> 0 (18 x 28), 285 -> 2; then the distance code 0 -> 1. */
    put_code(&b, 2, 2);
    put_code(&b, 3, 2);
    put_bits(&b, 138 - 11, 7);
    put_code(&b, 3, 2);
    put_bits(&b, 117 - 11, 7);
    put_code(&b, 2, 2);
    put_code(&b, 3, 2);
    put_bits(&b, 28 - 11, 7);
    put_code(&b, 2, 2);
    put_code(&b, 1, 2);
    /* The data: literal 0, the copies (285: length 258, no extra bits; distance code 0:
     * distance 1), end of block (256). */
    put_code(&b, 0, 2);
    for (size_t i = 0; i < copies; ++i) {
        put_code(&b, 2, 2);
        put_code(&b, 0, 1);
    }
    put_code(&b, 1, 2);
    *zlen = (b.n + 7) / 8 + 4; /* and an Adler-32 of zeros, which stb does not read */
    assert_true(*zlen <= b.cap);
    return b.buf;
}

/* Every case loads the file's own channel count. */
#define ASSERT_REFUSED(path, text) ASSERT_IMAGE_REFUSED(path, 0, text)

/* The fuzzer's find (tests/fuzz/corpus/image/idat-length-past-end.png): a chunk that
 * declares more than the file holds; stb would allocate the declared length first. */
static void test_chunk_past_end(void **state)
{
    struct tmp *t = *state;
    char good[256], path[256];
    tmp_path(t, "small.png", good, sizeof good);
    uint8_t px[4 * 3] = {1, 2, 3, 40, 50, 60, 70, 80, 90, 200, 210, 220};
    assert_int_not_equal(stbi_write_png(good, 4, 1, 3, px, 4 * 3), 0);
    unsigned char *buf = NULL;
    long n = read_whole_file(good, &buf);
    /* signature (8) + IHDR (4 + 4 + 13 + 4): the IDAT's length field is at byte 33. */
    assert_true(n > 45);
    assert_memory_equal(buf + 37, "IDAT", 4);
    struct dk_error err = {{0}};
    assert_int_equal(image_load_result(good, 0, &err), 0);

    tmp_path(t, "idat-past-end.png", path, sizeof path);
    buf[33] = 0x40; /* 2^30 bytes */
    buf[34] = buf[35] = buf[36] = 0;
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, (size_t)n, f), (size_t)n);
    assert_int_equal(fclose(f), 0);
    ASSERT_REFUSED(path, "PNG chunk \"IDAT\" at byte 33 declares 1073741824 bytes");

    /* Over 2^31 - 1 is refused whatever the file holds; a type that is not letters is
     * named by its bytes. */
    buf[33] = 0x80;
    memcpy(buf + 37, "\x01\x02\xfe\xff", 4);
    f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, (size_t)n, f), (size_t)n);
    assert_int_equal(fclose(f), 0);
    ASSERT_REFUSED(path, "PNG chunk \"0102feff\" at byte 33 declares 2147483648 bytes");

    /* The good file without IEND's CRC still loads: stb stops at IEND's header. Cut
     * into the IDAT's data, it is refused. */
    free(buf);
    n = read_whole_file(good, &buf);
    tmp_path(t, "short.png", path, sizeof path);
    f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, (size_t)n - 4, f), (size_t)n - 4);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(image_load_result(path, 0, &err), 0);
    /* 18 bytes off: IEND (12), the IDAT's CRC (4) and the last 2 bytes of its data. */
    f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, (size_t)n - 18, f), (size_t)n - 18);
    assert_int_equal(fclose(f), 0);
    uint32_t idat = (uint32_t)buf[33] << 24 | (uint32_t)buf[34] << 16 | buf[35] << 8 | buf[36];
    char want[112];
    snprintf(want, sizeof want,
             "PNG chunk \"IDAT\" at byte 33 declares %u bytes of data, but only %u bytes", idat,
             idat - 2);
    ASSERT_REFUSED(path, want);
    free(buf);
}

/* Image data that inflates past twice what the header needs, plus 1 MiB, is refused
 * before stb grows its buffer for it; up to that bound it is stb's (it accepts trailing
 * data). A 1 x 1 RGB image needs 4 bytes: a filter byte and a pixel. */
static void test_inflate_bound(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "bomb.png", path, sizeof path);
    const size_t cap = 2 * 4 + MIB;
    /* Enough for the RGBA case below: 5 bytes needed, so 2 * 5 + 1 MiB + 1. */
    uint8_t *raw = calloc(2 * 5 + MIB + 1, 1);
    assert_non_null(raw);
    raw[1] = 200; /* red */
    const struct png_spec rgb = {.w = 1, .h = 1, .depth = 8, .colour = 2};

    write_png(path, &rgb, raw, cap);
    struct dk_image im = {0};
    struct dk_error err = {{0}};
    assert_int_equal(dk_image_load(path, 3, &im, &err), 0);
    assert_true(im.data[0] == (float)(200 / 255.));
    dk_image_free(&im);

    write_png(path, &rgb, raw, cap + 1);
    ASSERT_REFUSED(path, "PNG image data inflates to more than 1048584 bytes, while its "
                         "header (1 x 1, colour type 2, bit depth 8, interlace 0) needs 4");

    /* Apple's CgBI files (raw deflate, no zlib header) are counted as stb reads them. */
    const struct png_spec cgbi = {.w = 1, .h = 1, .depth = 8, .colour = 6, .cgbi = true};
    write_png(path, &cgbi, raw, 2 * 5 + MIB + 1);
    ASSERT_REFUSED(path, "inflates to more than 1048586 bytes");
    free(raw);
}

/* Adam7: the bound sums the seven passes, of which a 3 x 2 image fills four, one row
 * each: pass 1 holds pixel (0, 0), pass 4 (2, 0), pass 6 (1, 0) and pass 7 the row y = 1.
 * A 16-bit grey image of those passes decodes to its pixels (stb keeps the high byte),
 * and data past the bound is refused with the passes' sum as the need. */
static void test_adam7_bound(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "adam7.png", path, sizeof path);
    /* Pass rows: filter byte, then 2 bytes per pixel. Pixel (x, y) holds 1000 * (x + 3y). */
    uint8_t raw[64] = {0};
    size_t n = 0;
    const int order[][2] = {{0, 0}, {2, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 1}};
    const int row_len[] = {1, 1, 1, 3};
    int k = 0;
    for (int r = 0; r < 4; ++r) {
        raw[n++] = 0;
        for (int i = 0; i < row_len[r]; ++i, ++k) {
            unsigned v = 1000u * (unsigned)(order[k][0] + 3 * order[k][1]);
            raw[n++] = (uint8_t)(v >> 8);
            raw[n++] = (uint8_t)v;
        }
    }
    assert_int_equal(n, 4 + 2 * 6);
    const struct png_spec grey = {.w = 3, .h = 2, .depth = 16, .colour = 0, .interlace = 1};
    write_png(path, &grey, raw, n);
    struct dk_image im = {0};
    struct dk_error err = {{0}};
    if (dk_image_load(path, 1, &im, &err) != 0)
        fail_msg("%s", err.msg);
    for (int i = 0; i < 6; ++i)
        assert_true(im.data[i] == (float)(((1000 * i) >> 8) / 255.));
    dk_image_free(&im);

    uint8_t *big = calloc(2 * n + MIB + 1, 1);
    assert_non_null(big);
    memcpy(big, raw, n);
    write_png(path, &grey, big, 2 * n + MIB + 1);
    char want[96];
    snprintf(want, sizeof want, "(3 x 2, colour type 0, bit depth 16, interlace 1) needs %zu", n);
    ASSERT_REFUSED(path, want);
    free(big);
}

/* Data that zlib cannot decode is refused, and not left to stb: stb inflates the
 * incomplete-code stream below to 1 MiB and more (shown here through stb itself), past the
 * bound of a 1 x 1 image. A wrong Adler-32, which stb does not read, is no refusal. */
static void test_stream_zlib_refuses(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "stream.png", path, sizeof path);
    const struct png_spec rgb = {.w = 1, .h = 1, .depth = 8, .colour = 2};

    size_t zlen = 0;
    const size_t copies = MIB / 258 + 8;
    uint8_t *z = incomplete_code_bomb(copies, &zlen);
    write_png_data(path, &rgb, z, zlen);
    free(z);
    int w = 0, h = 0, c = 0;
    stbi_uc *px = stbi_load(path, &w, &h, &c, 3);
    if (!px)
        fail_msg("stb refused the stream (%s): this part shows that stb 2.27 inflates "
                 "incomplete codes; an stb that refuses them makes it moot",
                 stbi_failure_reason());
    assert_int_equal(w * h, 1);
    stbi_image_free(px);
    ASSERT_REFUSED(path, "its PNG image data is not a valid zlib stream (zlib: invalid "
                         "literal/lengths set)");

    /* A block of type 3, which does not exist. */
    const uint8_t bad_type[] = {0x78, 0x01, 0x07, 0, 0, 0, 0};
    write_png_data(path, &rgb, bad_type, sizeof bad_type);
    ASSERT_REFUSED(path, "(zlib: invalid block type)");

    const uint8_t raw[4] = {0, 10, 20, 30};
    z = deflate_all(&rgb, raw, sizeof raw, &zlen);
    z[zlen - 1] ^= 0x5a;
    write_png_data(path, &rgb, z, zlen);
    free(z);
    struct dk_image im = {0};
    struct dk_error err = {{0}};
    if (dk_image_load(path, 3, &im, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(im.data[2] == (float)(30 / 255.));
    dk_image_free(&im);
}

/* dk_png_check on its own, as a caller without dk_image_load's header check sees it. */
static int check_direct(const char *path, uint64_t max_pixels, struct dk_error *err)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_int_equal(fseek(f, 5, SEEK_SET), 0);
    int rc = dk_png_check(f, path, (uint64_t)size, max_pixels, err);
    assert_int_equal(ftell(f), 0); /* rewound, whatever the result */
    assert_int_equal(fclose(f), 0);
    return rc;
}

#define ASSERT_CHECK_REFUSES(path, max_pixels, text)                                               \
    do {                                                                                           \
        struct dk_error err_ = {{0}};                                                              \
        assert_int_equal(check_direct(path, max_pixels, &err_), -1);                               \
        if (!strstr(err_.msg, path) || !strstr(err_.msg, text))                                    \
            fail_msg("expected '%s' in '%s'", text, err_.msg);                                     \
    } while (0)

/* Headers are refused by name: sizes past the caller's pixel limit (else the inflate
 * bound would bound nothing), colour types and depths PNG does not define, interlace
 * methods other than 0 and 1, and image data before any header (stb would accept RGB
 * at 4 bits). dk_png_check runs before any stb call, so dk_image_load says the same. */
static void test_bad_headers(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "bad.png", path, sizeof path);
    const uint8_t raw[4] = {0};
    struct png_spec s = {.w = 5, .h = 4, .depth = 8, .colour = 0};
    write_png(path, &s, raw, sizeof raw);
    struct dk_error err = {{0}};
    assert_int_equal(check_direct(path, 20, &err), 0);
    ASSERT_CHECK_REFUSES(path, 19,
                         "its PNG header (IHDR, at byte 8) gives 5 x 4 pixels, "
                         "expected 1 to 19");
    s = (struct png_spec){.w = 0, .h = 4, .depth = 8, .colour = 0};
    write_png(path, &s, raw, sizeof raw);
    ASSERT_CHECK_REFUSES(path, 100, "gives 0 x 4 pixels");

    s = (struct png_spec){.w = 1, .h = 1, .depth = 4, .colour = 2};
    write_png(path, &s, raw, sizeof raw);
    ASSERT_REFUSED(path, "colour type 2 with bit depth 4, a combination PNG does not define");
    s = (struct png_spec){.w = 1, .h = 1, .depth = 8, .colour = 5};
    write_png(path, &s, raw, sizeof raw);
    ASSERT_CHECK_REFUSES(path, 100, "colour type 5 with bit depth 8");
    s = (struct png_spec){.w = 1, .h = 1, .depth = 8, .colour = 2, .interlace = 2};
    write_png(path, &s, raw, sizeof raw);
    ASSERT_CHECK_REFUSES(path, 100, "interlace method 2, expected 0 or 1");
    s = (struct png_spec){.w = 1, .h = 1, .depth = 8, .colour = 2, .idat_first = true};
    write_png(path, &s, raw, sizeof raw);
    ASSERT_CHECK_REFUSES(path, 100,
                         "PNG chunk \"IDAT\" at byte 8 comes before a valid header (IHDR)");
    ASSERT_REFUSED(path, "PNG chunk \"IDAT\" at byte 8 comes before a valid header (IHDR)");
}

/* A CgBI after the image data: stb would read that data as raw deflate, which the same
 * bytes, checked as a zlib stream, need not be (a reviewer's file made a 28 x 28 image
 * cost 1 GB that way). Before the data it is Apple's layout and is counted as such. */
static void test_cgbi_after_data(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "late-cgbi.png", path, sizeof path);
    const uint8_t raw[4] = {0, 1, 2, 3};
    const struct png_spec rgb = {.w = 1, .h = 1, .depth = 8, .colour = 2};
    size_t zlen = 0;
    uint8_t *z = deflate_all(&rgb, raw, sizeof raw, &zlen);
    write_png_data(path, &rgb, z, zlen);
    free(z);
    /* Append a CgBI after the IDATs, before IEND (12 bytes). */
    unsigned char *buf = NULL;
    long n = read_whole_file(path, &buf);
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, (size_t)n - 12, f), (size_t)n - 12);
    put_chunk(f, "CgBI", "\x50\x00\x20\x06", 4);
    assert_int_equal(fwrite(buf + n - 12, 1, 12, f), 12);
    assert_int_equal(fclose(f), 0);
    free(buf);
    char want[96];
    snprintf(want, sizeof want, "PNG chunk \"CgBI\" at byte %ld comes after image data", n - 12);
    ASSERT_REFUSED(path, want);
}

/* Files that are not PNG, and good PNGs, pass untouched (stb decides). */
static void test_others_pass(void **state)
{
    struct tmp *t = *state;
    char path[256];
    tmp_path(t, "ok.bmp", path, sizeof path);
    uint8_t px[2 * 2 * 3] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 255, 128};
    assert_int_not_equal(stbi_write_bmp(path, 2, 2, 3, px), 0);
    struct dk_error err = {{0}};
    assert_int_equal(image_load_result(path, 0, &err), 0);
    tmp_path(t, "ok.png", path, sizeof path);
    const uint8_t raw[2 * (1 + 2 * 3)] = {0, 9, 8, 7, 6, 5, 4, 1, 3, 2, 1, 0, 255, 128};
    const struct png_spec rgb = {.w = 2, .h = 2, .depth = 8, .colour = 2};
    write_png(path, &rgb, raw, sizeof raw);
    struct dk_image im = {0};
    assert_int_equal(dk_image_load(path, 3, &im, &err), 0);
    /* Row 1 uses filter 1 (Sub): its second pixel adds the first's bytes. */
    assert_true(im.data[3] == (float)(((0 + 3) & 255) / 255.));
    dk_image_free(&im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunk_past_end, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_inflate_bound, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_adam7_bound, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_stream_zlib_refuses, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cgbi_after_data, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_others_pass, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
