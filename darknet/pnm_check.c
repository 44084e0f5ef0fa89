/*
 * pnm_check.c - a binary PGM or PPM header read as stb_image reads it (see pnm_check.h
 * for why).
 */
#include "darknet/pnm_check.h"

struct pnm_reader {
    FILE *f;
    uint64_t at; /* bytes consumed */
    int c;       /* the current byte, EOF at the end */
};

static void next(struct pnm_reader *r)
{
    r->c = getc(r->f);
    if (r->c != EOF)
        r->at++;
}

/* stbi__pnm_skip_whitespace: whitespace, and # comments to the end of their line. */
static void skip_space(struct pnm_reader *r)
{
    for (;;) {
        while (r->c == ' ' || r->c == '\t' || r->c == '\n' || r->c == '\v' || r->c == '\f' ||
               r->c == '\r')
            next(r);
        if (r->c != '#')
            return;
        while (r->c != EOF && r->c != '\n' && r->c != '\r')
            next(r);
    }
}

/* stbi__pnm_getinteger. Its int overflows on long numbers; compiled as Debian's libstb
 * is, it wraps modulo 2^32, and the checks must see the number stb sees ("4294967552"
 * is a maxval of 256 to stb), so the value wraps here too, without the undefined
 * behaviour. */
static int32_t read_number(struct pnm_reader *r)
{
    uint32_t v = 0;
    while (r->c >= '0' && r->c <= '9') {
        v = v * 10u + (uint32_t)(r->c - '0');
        next(r);
    }
    return (int32_t)v;
}

int dk_pnm_check(FILE *f, const char *path, uint64_t size, int channels, struct dk_error *err)
{
    rewind(f);
    int p = getc(f), t = getc(f);
    int rc = 0;
    if (p == 'P' && (t == '5' || t == '6')) {
        struct pnm_reader r = {.f = f, .at = 2};
        next(&r);
        skip_space(&r);
        /* stb keeps width and height as unsigned 32-bit numbers, maxval as an int: over
         * 65535 it refuses the file, over 255 it reads 16-bit samples. */
        uint64_t w = (uint32_t)read_number(&r);
        skip_space(&r);
        uint64_t h = (uint32_t)read_number(&r);
        skip_space(&r);
        int32_t maxval = read_number(&r);
        /* The byte after maxval was consumed with it; the pixels start at r.at. */
        unsigned comp = t == '6' ? 3 : 1, bytes = maxval > 255 ? 2 : 1;
        uint64_t need = 0;
        if (w > 0 && h > 0)
            need = w > UINT64_MAX / h / 6 ? UINT64_MAX : w * h * comp * bytes;
        uint64_t have = size - r.at;
        if (maxval > 255 && maxval <= 65535 && channels != 0 && (unsigned)channels != comp)
            rc = dk_fail(err,
                         "cannot decode image \"%s\": a 16-bit %s (maxval %d) is read only "
                         "as its own %u channel%s, not %d: stb_image 2.27 reads past its "
                         "buffer converting it",
                         path, t == '6' ? "PPM" : "PGM", (int)maxval, comp, comp == 1 ? "" : "s",
                         channels);
        else if (maxval <= 65535 && need > have)
            rc = dk_fail(err,
                         "cannot decode image \"%s\": its %s header (%llu x %llu, maxval %d) "
                         "needs %llu bytes of pixels, but only %llu follow it (truncated "
                         "file)",
                         path, t == '6' ? "PPM" : "PGM", (unsigned long long)w,
                         (unsigned long long)h, (int)maxval, (unsigned long long)need,
                         (unsigned long long)have);
    }
    rewind(f);
    return rc;
}
