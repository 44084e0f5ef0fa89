/*
 * jpeg_check.c - a JPEG's marker segments checked before stb_image decodes it (see
 * jpeg_check.h for why). One pass with getc: segment payloads are read where they matter
 * (SOF, DQT, DHT, SOS) and skipped otherwise; entropy-coded data is scanned for its end.
 *
 * Bytes past the end of the file read as 0, as stb_image's reader returns them, so a
 * truncated segment is judged as stb will see it.
 */
#include "darknet/jpeg_check.h"

#include <stdbool.h>

struct jpeg_walk {
    FILE *f;
    const char *path;
    struct dk_error *err;
    uint64_t at; /* offset of the next byte */
    bool eof;
    bool have_sof, progressive;
    int ncomp;
    uint8_t comp_id[4], comp_tq[4];
    bool dqt[4];        /* quantisation tables seen, by id */
    bool covered[4];    /* coded by a scan (progressive: by a first DC pass) */
    bool defined[2][4]; /* DHT tables seen: [0] DC, [1] AC, by id */
    unsigned scans, max_scans;
};

static int next_byte(struct jpeg_walk *w)
{
    int c = getc(w->f);
    if (c == EOF) {
        w->eof = true;
        return 0;
    }
    w->at++;
    return c;
}

static unsigned be16(struct jpeg_walk *w)
{
    unsigned hi = (unsigned)next_byte(w);
    return hi << 8 | (unsigned)next_byte(w);
}

/* Skips n bytes of a segment (n < 65536). */
static void skip(struct jpeg_walk *w, unsigned n)
{
    while (n-- > 0 && !w->eof)
        (void)next_byte(w);
}

/* The segment readers return -1 to refuse the file (err set), 0 to go on, STOP when stb
 * refuses the segment itself before decoding any pixel: the walk ends there. */
enum { STOP = 1 };

/* SOF0-SOF2, the frames stb decodes (T.81 B.2.2): the component ids. */
static int read_sof(struct jpeg_walk *w, unsigned marker, unsigned len)
{
    if (w->have_sof || len < 11)
        return STOP;    /* stb refuses a second frame and a short one */
    (void)next_byte(w); /* sample precision */
    uint64_t lines = be16(w), samples = be16(w);
    int n = next_byte(w);
    if (n != 1 && n != 3 && n != 4)
        return STOP;
    if (len != 8u + 3u * (unsigned)n)
        return STOP;
    for (int i = 0; i < n; ++i) {
        w->comp_id[i] = (uint8_t)next_byte(w);
        (void)next_byte(w); /* sampling factors */
        w->comp_tq[i] = (uint8_t)next_byte(w);
        if (w->comp_tq[i] > 3)
            return STOP;
    }
    w->have_sof = true;
    w->progressive = marker == 0xC2;
    w->ncomp = n;
    /* stb decodes every component at full size per scan: at about 1 ns per sample and
     * scan here, 2^32 samples x scans is a few seconds. */
    uint64_t work = lines * samples * (uint64_t)n;
    uint64_t budget = ((uint64_t)1 << 32) / (work ? work : 1);
    w->max_scans = budget < DK_JPEG_MAX_SCANS ? (unsigned)budget : DK_JPEG_MAX_SCANS;
    return 0;
}

/* DQT (T.81 B.2.4.1): per table, precision and id, then 64 values of 1 or 2 bytes. */
static int read_dqt(struct jpeg_walk *w, unsigned len)
{
    unsigned left = len - 2;
    while (left > 0) {
        int q = next_byte(w);
        unsigned p = (unsigned)q >> 4, t = (unsigned)q & 15, n = p ? 128 : 64;
        if (p > 1 || t > 3 || n + 1 > left)
            return STOP; /* stb refuses the table or the segment's length */
        w->dqt[t] = true;
        skip(w, n);
        left -= n + 1;
    }
    return 0;
}

/* DHT (T.81 B.2.4.2): per table, class and id, 16 counts, the values. */
static int read_dht(struct jpeg_walk *w, uint64_t seg_at, unsigned len)
{
    unsigned left = len - 2;
    while (left > 0) {
        if (left < 17)
            return STOP; /* stb reads past the segment, then refuses its length */
        int q = next_byte(w);
        unsigned tc = (unsigned)q >> 4, th = (unsigned)q & 15, n = 0;
        for (int i = 0; i < 16; ++i)
            n += (unsigned)next_byte(w);
        left -= 17;
        if (tc > 1 || th > 3)
            return STOP;
        if (n > 256)
            return dk_fail(w->err,
                           "cannot decode image \"%s\": JPEG Huffman table (DHT at byte %llu, "
                           "%s table %u) counts %u codes, at most 256",
                           w->path, (unsigned long long)seg_at, tc ? "AC" : "DC", th, n);
        w->defined[tc][th] = true;
        if (n > left)
            return STOP;
        skip(w, n);
        left -= n;
    }
    return 0;
}

/* SOS (T.81 B.2.3): each component's tables, the spectral band and the approximation. */
static int read_sos(struct jpeg_walk *w, uint64_t seg_at, unsigned len)
{
    int ns = next_byte(w);
    if (!w->have_sof || ns < 1 || ns > w->ncomp || len != 6u + 2u * (unsigned)ns)
        return STOP;
    int which[4], hd[4], ha[4];
    for (int i = 0; i < ns; ++i) {
        int id = next_byte(w), q = next_byte(w);
        which[i] = -1;
        for (int c = 0; c < w->ncomp; ++c)
            if (w->comp_id[c] == id) {
                which[i] = c;
                break;
            }
        hd[i] = q >> 4;
        ha[i] = q & 15;
        if (which[i] < 0 || hd[i] > 3 || ha[i] > 3)
            return STOP;
    }
    int ss = next_byte(w);
    (void)next_byte(w); /* Se */
    int ah = next_byte(w) >> 4;
    if (++w->scans > w->max_scans)
        return dk_fail(w->err,
                       "cannot decode image \"%s\": JPEG has more than %u scans (SOS at byte "
                       "%llu), the most for its size: stb decodes the whole image per scan",
                       w->path, w->max_scans, (unsigned long long)seg_at);
    /* A baseline scan codes DC and AC with the two tables; a progressive one its DC
     * table on a first DC pass, its AC table on an AC pass (first or refinement). */
    bool need_dc = !w->progressive || (ss == 0 && ah == 0);
    bool need_ac = !w->progressive || ss > 0;
    for (int i = 0; i < ns; ++i) {
        /* stb's decoder state is not cleared: a missing table is uninitialised memory. */
        if (!w->dqt[w->comp_tq[which[i]]])
            return dk_fail(w->err,
                           "cannot decode image \"%s\": JPEG scan (SOS at byte %llu) codes "
                           "component %d, whose quantisation table %u no DQT before it "
                           "defines",
                           w->path, (unsigned long long)seg_at, which[i] + 1, w->comp_tq[which[i]]);
        int cls = -1, id = 0;
        if (need_dc && !w->defined[0][hd[i]])
            cls = 0, id = hd[i];
        else if (need_ac && !w->defined[1][ha[i]])
            cls = 1, id = ha[i];
        if (cls >= 0)
            return dk_fail(w->err,
                           "cannot decode image \"%s\": JPEG scan (SOS at byte %llu) uses "
                           "Huffman %s table %d, which no DHT before it defines",
                           w->path, (unsigned long long)seg_at, cls ? "AC" : "DC", id);
        if (need_dc)
            w->covered[which[i]] = true;
    }
    return 0;
}

/* Skips entropy-coded data up to the next marker (T.81 B.1.1.5: FF 00 is a data byte,
 * FF D0-D7 restart markers and FF fill bytes stay inside the data). Returns the marker,
 * or -1 at the end of the file. */
static int skip_entropy_data(struct jpeg_walk *w)
{
    for (;;) {
        int c = next_byte(w);
        if (w->eof)
            return -1;
        if (c != 0xFF)
            continue;
        do
            c = next_byte(w);
        while (c == 0xFF && !w->eof);
        if (w->eof)
            return -1;
        if (c != 0 && (c < 0xD0 || c > 0xD7))
            return c;
    }
}

static int walk(struct jpeg_walk *w)
{
    int pending = -1;
    bool padding_ok = false;
    for (;;) {
        int m = pending;
        pending = -1;
        uint64_t seg_at = w->at - 2;
        if (m < 0) {
            seg_at = w->at;
            int c = next_byte(w);
            if (w->eof)
                return 0;
            if (c != 0xFF) {
                /* stb skips padding between the segments before the frame (not before
                 * the first one); anywhere else it expects a marker and fails. */
                if (!padding_ok)
                    return 0;
                continue;
            }
            do
                m = next_byte(w);
            while (m == 0xFF && !w->eof);
            if (w->eof)
                return 0;
        }
        if (m == 0xD9) { /* EOI */
            for (int c = 0; c < w->ncomp; ++c)
                if (!w->covered[c])
                    return dk_fail(w->err,
                                   "cannot decode image \"%s\": JPEG component %d (id %u) is in "
                                   "no %s before EOI at byte %llu, so its pixels would be left "
                                   "unset",
                                   w->path, c + 1, w->comp_id[c],
                                   w->progressive ? "first DC scan" : "scan",
                                   (unsigned long long)seg_at);
            return 0;
        }
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01 || m == 0xD8)
            continue; /* no payload; stb refuses these here anyway */
        unsigned len = be16(w);
        if (len < 2 || w->eof)
            return 0;
        int rc = 0;
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
            rc = read_sof(w, (unsigned)m, len);
        } else if (m == 0xC4) {
            rc = read_dht(w, seg_at, len);
        } else if (m == 0xDB) {
            rc = read_dqt(w, len);
        } else if (m == 0xDA) {
            rc = read_sos(w, seg_at, len);
            if (rc == 0 && (pending = skip_entropy_data(w)) < 0)
                return 0;
        } else if ((m & 0xF0) == 0xC0 && m != 0xC8 && m != 0xCC) {
            rc = STOP; /* a frame type stb does not decode */
        } else {
            skip(w, len - 2);
        }
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        padding_ok = !w->have_sof;
        if (w->eof)
            return 0;
    }
}

int dk_jpeg_check(FILE *f, const char *path, struct dk_error *err)
{
    int rc = 0;
    rewind(f);
    /* stb's first marker may follow any number of FF fill bytes, as every marker may. */
    int c = getc(f);
    uint64_t at = 1;
    if (c == 0xFF) {
        do {
            c = getc(f);
            at++;
        } while (c == 0xFF);
        if (c == 0xD8) {
            struct jpeg_walk w = {.f = f, .path = path, .err = err, .at = at};
            rc = walk(&w);
        }
    }
    rewind(f);
    return rc;
}
