/*
 * png_check.c - a PNG's chunks and inflated image size checked before stb_image decodes
 * it (see png_check.h for why). One pass over the file: chunk headers are read, IHDR and
 * IDAT data are read, everything else is skipped with fseek.
 */
#include "darknet/png_check.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Each of the two buffers (compressed in, inflated out, the latter only counted). */
enum { PIECE = 16384 };

struct png_walk {
    FILE *f;
    const char *path;
    struct dk_error *err;
    bool have_ihdr, cgbi;
    uint32_t w, h;
    uint8_t depth, colour, interlace;
    uint64_t max_pixels;
    uint64_t need; /* bytes of filtered scanlines the header calls for */
    uint64_t cap;  /* the most the image data may inflate to */
    z_stream zs;
    bool zs_open, zs_done, stop;
    uint64_t inflated;
    unsigned char *in, *out;
};

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* A chunk type for a message: its four letters, or its bytes in hex. */
static void chunk_name(const unsigned char *type, char out[9])
{
    bool letters = true;
    for (int i = 0; i < 4; ++i)
        letters = letters && (type[i] | 0x20) >= 'a' && (type[i] | 0x20) <= 'z';
    if (letters)
        snprintf(out, 9, "%c%c%c%c", type[0], type[1], type[2], type[3]);
    else
        snprintf(out, 9, "%02x%02x%02x%02x", type[0], type[1], type[2], type[3]);
}

/* Samples per pixel of a colour type at a bit depth PNG allows for it, else 0
 * (ISO 15948, table 11.1). */
static unsigned png_channels(unsigned colour, unsigned depth)
{
    bool d8_16 = depth == 8 || depth == 16;
    switch (colour) {
    case 0: /* greyscale */
        return d8_16 || depth == 1 || depth == 2 || depth == 4 ? 1 : 0;
    case 2: /* truecolour */
        return d8_16 ? 3 : 0;
    case 3: /* indexed */
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 ? 1 : 0;
    case 4: /* greyscale with alpha */
        return d8_16 ? 2 : 0;
    case 6: /* truecolour with alpha */
        return d8_16 ? 4 : 0;
    default:
        return 0;
    }
}

/* Bytes of filtered scanlines of a w x h image of `bits` per pixel: each row is a filter
 * byte and its pixels rounded up to whole bytes; Adam7 (interlace method 1) sums its
 * seven passes, of which empty ones have no rows (ISO 15948, sections 7.2 and 8.2).
 * Callers keep w * h <= 2^32 and bits <= 64, so nothing overflows. */
static uint64_t scanline_bytes(uint64_t w, uint64_t h, unsigned bits, bool adam7)
{
    static const uint8_t x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const uint8_t dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    if (!adam7)
        return h * (1 + (w * bits + 7) / 8);
    uint64_t n = 0;
    for (int p = 0; p < 7; ++p) {
        if (w <= x0[p] || h <= y0[p])
            continue;
        uint64_t cols = (w - x0[p] + dx[p] - 1) / dx[p];
        uint64_t rows = (h - y0[p] + dy[p] - 1) / dy[p];
        n += rows * (1 + (cols * bits + 7) / 8);
    }
    return n;
}

static int read_ihdr(struct png_walk *wk, uint64_t at)
{
    unsigned char b[13];
    if (fread(b, 1, sizeof b, wk->f) != sizeof b) {
        wk->stop = true; /* the file shrank: stb will say so */
        return 0;
    }
    wk->w = be32(b);
    wk->h = be32(b + 4);
    wk->depth = b[8];
    wk->colour = b[9];
    wk->interlace = b[12];
    unsigned ch = png_channels(wk->colour, wk->depth);
    if (ch == 0)
        return dk_fail(wk->err,
                       "cannot decode image \"%s\": its PNG header (IHDR, at byte %llu) gives "
                       "colour type %u with bit depth %u, a combination PNG does not define",
                       wk->path, (unsigned long long)at, wk->colour, wk->depth);
    if (wk->interlace > 1)
        return dk_fail(wk->err,
                       "cannot decode image \"%s\": its PNG header (IHDR, at byte %llu) gives "
                       "interlace method %u, expected 0 or 1",
                       wk->path, (unsigned long long)at, wk->interlace);
    /* Without a bound on the pixels the cap would not bound anything: 2^24 x 2^24 kept
     * the count inflating a file's worth of data before stb refused the size. */
    if (wk->w == 0 || wk->h == 0 || (uint64_t)wk->w * wk->h > wk->max_pixels)
        return dk_fail(wk->err,
                       "cannot decode image \"%s\": its PNG header (IHDR, at byte %llu) gives "
                       "%u x %u pixels, expected 1 to %llu",
                       wk->path, (unsigned long long)at, wk->w, wk->h,
                       (unsigned long long)wk->max_pixels);
    wk->have_ihdr = true;
    /* w * h <= max_pixels <= 2^32 and at most 64 bits per pixel: no overflow. */
    wk->need = scanline_bytes(wk->w, wk->h, ch * wk->depth, wk->interlace == 1);
    wk->cap = 2 * wk->need + ((uint64_t)1 << 20);
    return 0;
}

/* Inflates len bytes of IDAT data at the file's position into wk->out, counting. Refuses
 * a stream that yields more than wk->cap, or that zlib cannot decode. */
static int inflate_idat(struct png_walk *wk, uint64_t len, uint64_t at)
{
    if (!wk->have_ihdr)
        return dk_fail(wk->err,
                       "cannot decode image \"%s\": PNG chunk \"IDAT\" at byte %llu comes before "
                       "a valid header (IHDR)",
                       wk->path, (unsigned long long)at);
    if (!wk->zs_open) {
        /* Apple's CgBI files hold raw deflate data without the zlib header; stb reads
         * them so, and so must the count. */
        if (inflateInit2(&wk->zs, wk->cgbi ? -MAX_WBITS : MAX_WBITS) != Z_OK)
            return dk_fail(wk->err, "cannot decode image \"%s\": zlib could not start (%s)",
                           wk->path, wk->zs.msg ? wk->zs.msg : "out of memory");
        wk->zs_open = true;
        /* stb does not check the Adler-32 either; a wrong one must not refuse a file
         * that stb decodes. */
        if (!wk->cgbi)
            (void)inflateValidate(&wk->zs, 0);
    }
    while (len > 0 && !wk->zs_done) {
        size_t n = len < PIECE ? (size_t)len : PIECE;
        if (fread(wk->in, 1, n, wk->f) != n) {
            wk->stop = true;
            return 0;
        }
        len -= n;
        wk->zs.next_in = wk->in;
        wk->zs.avail_in = (uInt)n;
        do {
            wk->zs.next_out = wk->out;
            wk->zs.avail_out = PIECE;
            int r = inflate(&wk->zs, Z_NO_FLUSH);
            wk->inflated += PIECE - wk->zs.avail_out;
            if (wk->inflated > wk->cap)
                return dk_fail(wk->err,
                               "cannot decode image \"%s\": its PNG image data inflates to more "
                               "than %llu bytes, while its header (%u x %u, colour type %u, bit "
                               "depth %u, interlace %u) needs %llu: a decompression bomb or a "
                               "corrupt file",
                               wk->path, (unsigned long long)wk->cap, wk->w, wk->h, wk->colour,
                               wk->depth, wk->interlace, (unsigned long long)wk->need);
            if (r == Z_STREAM_END) {
                wk->zs_done = true;
                break;
            }
            /* Data zlib cannot decode is refused rather than left to stb: stb's decoder is
             * laxer (it accepts incomplete Huffman codes, stbi__zbuild_huffman), so what
             * zlib stops on, stb might inflate past the bound. */
            if (r != Z_OK && r != Z_BUF_ERROR)
                return dk_fail(wk->err,
                               "cannot decode image \"%s\": its PNG image data is not a valid "
                               "%s stream (zlib: %s)",
                               wk->path, wk->cgbi ? "deflate" : "zlib",
                               r == Z_NEED_DICT ? "needs a preset dictionary"
                               : wk->zs.msg     ? wk->zs.msg
                                                : "corrupt data");
        } while (wk->zs.avail_out == 0);
    }
    /* What is left of the chunk after the stream's end is stb's to judge. */
    if (len > 0 && fseek(wk->f, (long)len, SEEK_CUR) != 0)
        wk->stop = true;
    return 0;
}

static int walk_chunks(struct png_walk *wk, uint64_t size)
{
    uint64_t at = 8;
    unsigned char b[8];
    while (!wk->stop && size - at >= 8 && fread(b, 1, sizeof b, wk->f) == sizeof b) {
        const unsigned char *type = b + 4;
        /* stb stops at IEND without reading its data or CRC. */
        if (memcmp(type, "IEND", 4) == 0)
            break;
        uint64_t len = be32(b);
        uint64_t left = size - at - 8;
        if (len > INT32_MAX || len + 4 > left) {
            char name[9];
            chunk_name(type, name);
            return dk_fail(wk->err,
                           "cannot decode image \"%s\": PNG chunk \"%s\" at byte %llu declares "
                           "%llu bytes of data, but only %llu bytes follow its header "
                           "(truncated or corrupt file)",
                           wk->path, name, (unsigned long long)at, (unsigned long long)len,
                           (unsigned long long)left);
        }
        int rc = 0;
        uint64_t skip = len + 4; /* the data, then the CRC */
        if (memcmp(type, "IHDR", 4) == 0 && len == 13 && !wk->have_ihdr) {
            rc = read_ihdr(wk, at);
            skip = 4;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            rc = inflate_idat(wk, len, at);
            skip = 4;
        } else if (memcmp(type, "CgBI", 4) == 0) {
            /* stb reads all the image data as raw deflate if a CgBI comes anywhere before
             * IEND; once the count has begun as zlib, the same bytes would be another
             * stream to stb. Apple's files put CgBI first. */
            if (wk->zs_open)
                return dk_fail(wk->err,
                               "cannot decode image \"%s\": PNG chunk \"CgBI\" at byte %llu "
                               "comes after image data (IDAT), which stb would then read as "
                               "raw deflate",
                               wk->path, (unsigned long long)at);
            wk->cgbi = true;
        }
        if (rc != 0)
            return rc;
        /* skip <= left <= the file's size, which the caller keeps within a long. */
        if (wk->stop || fseek(wk->f, (long)skip, SEEK_CUR) != 0)
            break;
        at += 12 + len;
    }
    return 0;
}

int dk_png_check(FILE *f, const char *path, uint64_t size, uint64_t max_pixels,
                 struct dk_error *err)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    int rc = 0;
    rewind(f);
    if (fread(b, 1, sizeof b, f) == sizeof b && memcmp(b, signature, sizeof b) == 0) {
        struct png_walk wk = {.f = f, .path = path, .err = err, .max_pixels = max_pixels};
        wk.in = malloc(2 * PIECE);
        if (!wk.in) {
            rc = dk_fail(err, "cannot decode image \"%s\": out of memory", path);
        } else {
            wk.out = wk.in + PIECE;
            rc = walk_chunks(&wk, size);
            if (wk.zs_open)
                inflateEnd(&wk.zs);
            free(wk.in);
        }
    }
    rewind(f);
    return rc;
}
