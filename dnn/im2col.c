/*
 * im2col.c - unrolling image patches into columns for convolution by gemm, and back.
 *
 * Layout as darknet's im2col_cpu/col2im_cpu: the image is (channels, h, w); the
 * column matrix has channels*ksize*ksize rows, row r = (ch*ksize + ky)*ksize + kx,
 * and out_h*out_w columns, with out_h = (h + 2*pad - span)/stride + 1 (likewise
 * out_w), span = dilation*(ksize-1) + 1 the pixels one kernel row covers (AlexeyAB's
 * dilated convolutions; 1 is darknet's plain case). Pixels outside the image read as
 * zero; col2im drops them.
 */
#include <stddef.h>
#include <string.h>

#include "dnn/dnn_internal.h"

int dnn_im2col_extent(int size, int ksize, int stride, int pad, int dilation)
{
    return (size + 2 * pad - (dilation * (ksize - 1) + 1)) / stride + 1;
}

/*
 * The outputs x0 .. x1-1 of a row whose input column ix = off + x*stride lies inside
 * 0 .. w-1 (off = kx - pad); the others read padding. Worked out once per row, so that the
 * copies below run without a test per pixel (and memcpy or the compiler can vectorise them).
 */
static void im2col_span(int off, int stride, int w, int ow, int *x0, int *x1)
{
    const int lo = -off, hi = w - off; /* need lo <= x*stride < hi */
    int a = lo > 0 ? (lo + stride - 1) / stride : 0;
    int b = hi > 0 ? (hi + stride - 1) / stride : 0;
    if (b > ow)
        b = ow;
    if (a > b)
        a = b;
    *x0 = a;
    *x1 = b;
}

/* Four floats at a time (SSE2 or NEON, any alignment): rows are short (LeNet's are 28
 * pixels), too short for a call to memcpy to pay, and the compiler at -O2 would vectorise
 * neither loop, not knowing that the rows do not overlap. Each sum is still one rounding. */
typedef float im2col_v4 __attribute__((vector_size(4 * sizeof(float))));

/* One row of a stride-1 im2col: out[x] = row[shift + x] for x0 <= x < x1, else 0 (row is
 * not read there: shift + x may lie outside the image, and no pointer is formed to it). One
 * loop with both cases, so that the compiler does not make its parts calls to memset and
 * memcpy, which cost more than these short runs. */
static void copy_row_s1(float *restrict out, const float *restrict row, int shift, int x0, int x1,
                        int ow)
{
    int x = 0;
    while (x < ow) {
        if (x >= x0 && x + 4 <= x1) {
            im2col_v4 v;
            memcpy(&v, row + (shift + x), sizeof v);
            memcpy(out + x, &v, sizeof v);
            x += 4;
        } else {
            out[x] = x >= x0 && x < x1 ? row[shift + x] : 0;
            x++;
        }
    }
}

static void add_row(float *restrict dst, const float *restrict src, int n)
{
    int x = 0;
    for (; x + 4 <= n; x += 4) {
        im2col_v4 d, v;
        memcpy(&d, dst + x, sizeof d);
        memcpy(&v, src + x, sizeof v);
        d += v;
        memcpy(dst + x, &d, sizeof d);
    }
    for (; x < n; x++)
        dst[x] += src[x];
}

/* Rows r0 .. r1-1 of the column matrix, whose rows lie ldcol floats apart (out_h*out_w for
 * one image alone; more when images sit side by side). */
static void im2col_rows(const float *im, int h, int w, int ksize, int stride, int pad, int dilation,
                        float *col, size_t ldcol, int r0, int r1)
{
    const int oh = dnn_im2col_extent(h, ksize, stride, pad, dilation);
    const int ow = dnn_im2col_extent(w, ksize, stride, pad, dilation);
    for (int r = r0; r < r1; r++) {
        const int kx = (r % ksize) * dilation;
        const int ky = ((r / ksize) % ksize) * dilation;
        const float *plane = im + (size_t)(r / ksize / ksize) * (size_t)h * (size_t)w;
        float *out = col + (size_t)r * ldcol;
        int x0, x1;
        im2col_span(kx - pad, stride, w, ow, &x0, &x1);
        for (int y = 0; y < oh; y++) {
            const int iy = ky + y * stride - pad;
            float *orow = out + (size_t)y * (size_t)ow;
            if (iy < 0 || iy >= h) {
                for (int x = 0; x < ow; x++)
                    orow[x] = 0;
                continue;
            }
            /* input column kx - pad + x * stride: inside the row for x0 <= x < x1 only */
            const float *irow = plane + (size_t)iy * (size_t)w;
            if (stride == 1) {
                copy_row_s1(orow, irow, kx - pad, x0, x1, ow);
                continue;
            }
            for (int x = 0; x < x0; x++)
                orow[x] = 0;
            for (int x = x0; x < x1; x++)
                orow[x] = irow[(ptrdiff_t)(kx - pad) + (ptrdiff_t)x * stride];
            for (int x = x1; x < ow; x++)
                orow[x] = 0;
        }
    }
}

/* Channels c0 .. c1-1 of the image: their rows of col (ldcol floats apart), in the serial
 * order, add into their own planes only. */
static void col2im_channels(const float *col, size_t ldcol, int h, int w, int ksize, int stride,
                            int pad, int dilation, float *im, int c0, int c1)
{
    const int oh = dnn_im2col_extent(h, ksize, stride, pad, dilation);
    const int ow = dnn_im2col_extent(w, ksize, stride, pad, dilation);
    for (int r = c0 * ksize * ksize; r < c1 * ksize * ksize; r++) {
        const int kx = (r % ksize) * dilation;
        const int ky = ((r / ksize) % ksize) * dilation;
        float *plane = im + (size_t)(r / ksize / ksize) * (size_t)h * (size_t)w;
        const float *in = col + (size_t)r * ldcol;
        int x0, x1;
        im2col_span(kx - pad, stride, w, ow, &x0, &x1);
        for (int y = 0; y < oh; y++) {
            const int iy = ky + y * stride - pad;
            if (iy < 0 || iy >= h)
                continue;
            const float *crow = in + (size_t)y * (size_t)ow;
            float *irow = plane + (size_t)iy * (size_t)w; /* as im2col_rows */
            if (stride == 1)
                add_row(irow + (kx - pad + x0), crow + x0, x1 - x0);
            else
                for (int x = x0; x < x1; x++)
                    irow[(ptrdiff_t)(kx - pad) + (ptrdiff_t)x * stride] += crow[x];
        }
    }
}

/* Floats between rows of one image's own column matrix. */
static size_t col_row_floats(int h, int w, int ksize, int stride, int pad, int dilation)
{
    return (size_t)dnn_im2col_extent(h, ksize, stride, pad, dilation) *
           (size_t)dnn_im2col_extent(w, ksize, stride, pad, dilation);
}

void dnn_im2col(const float *im, int channels, int h, int w, int ksize, int stride, int pad,
                float *col)
{
    im2col_rows(im, h, w, ksize, stride, pad, 1, col, col_row_floats(h, w, ksize, stride, pad, 1),
                0, channels * ksize * ksize);
}

void dnn_col2im(const float *col, int channels, int h, int w, int ksize, int stride, int pad,
                float *im)
{
    col2im_channels(col, col_row_floats(h, w, ksize, stride, pad, 1), h, w, ksize, stride, pad, 1,
                    im, 0, channels);
}

void dnn_im2col_ld(const float *im, int channels, int h, int w, int ksize, int stride, int pad,
                   int dilation, float *col, size_t ldcol)
{
    im2col_rows(im, h, w, ksize, stride, pad, dilation, col, ldcol, 0, channels * ksize * ksize);
}

void dnn_col2im_ld(const float *col, size_t ldcol, int channels, int h, int w, int ksize,
                   int stride, int pad, int dilation, float *im)
{
    col2im_channels(col, ldcol, h, w, ksize, stride, pad, dilation, im, 0, channels);
}

/* Floats a task should write at least: fewer cost more to hand out than to copy. */
#define IM2COL_SPLIT_FLOATS 16384

/* One im2col or col2im cut into tasks of units (rows or channels): task t does units
 * [t*units/tasks, (t+1)*units/tasks). */
struct im2col_split {
    const float *src;
    float *dst;
    int h, w, ksize, stride, pad, dilation, units, tasks;
    size_t ldcol;
};

static int split_tasks(const struct dnn_parallel *par, int units, size_t floats)
{
    size_t tasks = floats / IM2COL_SPLIT_FLOATS;
    const size_t most = 4 * (size_t)dnn_parallel_threads(par);
    if (tasks > most)
        tasks = most;
    if (tasks > (size_t)units)
        tasks = (size_t)units;
    return dnn_parallel_threads(par) < 2 || tasks < 2 ? 1 : (int)tasks;
}

static void im2col_task(void *arg, size_t t)
{
    const struct im2col_split *s = arg;
    im2col_rows(s->src, s->h, s->w, s->ksize, s->stride, s->pad, s->dilation, s->dst, s->ldcol,
                (int)((long long)t * s->units / s->tasks),
                (int)((long long)(t + 1) * s->units / s->tasks));
}

static void col2im_task(void *arg, size_t t)
{
    const struct im2col_split *s = arg;
    col2im_channels(s->src, s->ldcol, s->h, s->w, s->ksize, s->stride, s->pad, s->dilation, s->dst,
                    (int)((long long)t * s->units / s->tasks),
                    (int)((long long)(t + 1) * s->units / s->tasks));
}

void dnn_im2col_par_ld(const struct dnn_parallel *par, const float *im, int channels, int h, int w,
                       int ksize, int stride, int pad, int dilation, float *col, size_t ldcol)
{
    const int rows = channels * ksize * ksize;
    /* the work is the floats written, not the stride */
    const size_t floats = (size_t)rows * col_row_floats(h, w, ksize, stride, pad, dilation);
    struct im2col_split s = {im, col, h, w, ksize, stride, pad, dilation, rows, 1, ldcol};
    s.tasks = split_tasks(par, rows, floats);
    dnn_parallel_for(par, (size_t)s.tasks, im2col_task, &s);
}

void dnn_im2col_par(const struct dnn_parallel *par, const float *im, int channels, int h, int w,
                    int ksize, int stride, int pad, int dilation, float *col)
{
    dnn_im2col_par_ld(par, im, channels, h, w, ksize, stride, pad, dilation, col,
                      col_row_floats(h, w, ksize, stride, pad, dilation));
}

void dnn_col2im_par(const struct dnn_parallel *par, const float *col, int channels, int h, int w,
                    int ksize, int stride, int pad, int dilation, float *im)
{
    const size_t ld = col_row_floats(h, w, ksize, stride, pad, dilation);
    const size_t floats = (size_t)channels * (size_t)ksize * (size_t)ksize * ld;
    struct im2col_split s = {col, im, h, w, ksize, stride, pad, dilation, channels, 1, ld};
    s.tasks = split_tasks(par, channels, floats);
    dnn_parallel_for(par, (size_t)s.tasks, col2im_task, &s);
}

/* Columns dnn_im2col_pack lays out at once: a multiple of every kernel's micro-panel width
 * (4 to 32 columns), so that no run of columns crosses a panel. */
#define IM2COL_PACK_COLS 64

/* A run of B's columns inside one micro-panel and one output row of one image: for each row
 * of B they read pixels stride apart along one input row. */
struct im2col_run {
    const float *im; /* the image's first channel */
    size_t at;       /* bp's float of the run's first column in B's row 0 of the block */
    int len;         /* columns */
    int iy, ix;      /* input row and column of the first column's tap (0, 0): may be < 0 */
};

/* The runs of columns q0 .. q0+cols-1 of the block (B's columns j0 + q), at most cols. */
static int im2col_runs(const struct dnn_im2col_src *s, int ow, int n, int j0, int q0, int cols,
                       int nr, int kc, struct im2col_run *run)
{
    int count = 0;
    for (int q = q0; q < q0 + cols;) {
        const int j = j0 + q, pix = j % n, ox = pix % ow, lane = q % nr;
        int len = ow - ox;
        if (len > nr - lane)
            len = nr - lane;
        if (len > q0 + cols - q)
            len = q0 + cols - q;
        run[count].im = s->im + (size_t)(j / n) * s->im_stride;
        run[count].at = (size_t)(q / nr) * (size_t)nr * (size_t)kc + (size_t)lane;
        run[count].len = len;
        run[count].iy = pix / ow * s->stride - s->pad;
        run[count].ix = ox * s->stride - s->pad;
        count++;
        q += len;
    }
    return count;
}

/* dst[0 .. len) = src[0 .. len), or zeros when src is NULL, as fixed-size copies, which the
 * compiler makes a few vector moves: a run of 4 to 32 floats as two copies of the largest
 * power of two not above len, the second ending at len (the overlap writes the same values
 * twice). A loop, which the compiler turns into a call to memmove or memset, cost as much as
 * the rest of the packing (so did copy_row_s1 for 26- and 11-pixel rows, and sharing it
 * kept the compiler from inlining it into im2col_rows, LeNet's hottest loop). */
static inline void im2col_fill(float *restrict dst, const float *restrict src, int len)
{
    static const float zeros[32];
    const float *from = src ? src : zeros;
    if (len >= 16 && len <= 32) {
        memcpy(dst, from, 16 * sizeof(float));
        memcpy(dst + (len - 16), from + (len - 16), 16 * sizeof(float));
    } else if (len >= 8 && len < 16) {
        memcpy(dst, from, 8 * sizeof(float));
        memcpy(dst + (len - 8), from + (len - 8), 8 * sizeof(float));
    } else if (len >= 4 && len < 8) {
        memcpy(dst, from, 4 * sizeof(float));
        memcpy(dst + (len - 4), from + (len - 4), 4 * sizeof(float));
    } else {
        /* 0 to 3 floats, spelled out: no loop for the compiler to make a call of */
        if (len > 0)
            dst[0] = from[0];
        if (len > 1)
            dst[1] = from[1];
        if (len > 2)
            dst[2] = from[2];
    }
}

/* One run's floats for the tap (dy, dx) of one channel (plane): what im2col_rows writes in
 * those columns, the pixel or a +0 of padding; no pointer is formed outside the plane. */
static inline void im2col_put(float *restrict dst, const float *restrict plane,
                              const struct im2col_run *r, int h, int w, int stride, int dy, int dx)
{
    const int iy = r->iy + dy, ix = r->ix + dx, len = r->len;
    if (iy < 0 || iy >= h) {
        im2col_fill(dst, NULL, len);
        return;
    }
    const float *row = plane + (size_t)iy * (size_t)w;
    if (stride == 1 && ix >= 0 && ix <= w - len) {
        im2col_fill(dst, row + ix, len);
        return;
    }
    /* a run across the image's edge, or strided: pixel by pixel */
    for (int x = 0; x < len; x++) {
        const int c = ix + x * stride;
        dst[x] = c >= 0 && c < w ? row[c] : 0;
    }
}

void dnn_im2col_pack(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *bp)
{
    const struct dnn_im2col_src *s = ctx;
    const int ow = dnn_im2col_extent(s->w, s->ksize, s->stride, s->pad, s->dilation);
    const int n = dnn_im2col_extent(s->h, s->ksize, s->stride, s->pad, s->dilation) * ow;
    const size_t plane = (size_t)s->h * (size_t)s->w;
    struct im2col_run run[IM2COL_PACK_COLS];
    for (int q0 = 0; q0 < nc; q0 += IM2COL_PACK_COLS) {
        const int cols = nc - q0 < IM2COL_PACK_COLS ? nc - q0 : IM2COL_PACK_COLS;
        const int count = im2col_runs(s, ow, n, j0, q0, cols, nr, kc, run);
        /* B's row p0 + p is (channel, ky, kx), as im2col_rows */
        int kx = p0 % s->ksize, ky = p0 / s->ksize % s->ksize, ch = p0 / s->ksize / s->ksize;
        for (int p = 0; p < kc; p++) {
            for (int i = 0; i < count; i++)
                im2col_put(bp + run[i].at + (size_t)p * (size_t)nr, run[i].im + (size_t)ch * plane,
                           &run[i], s->h, s->w, s->stride, ky * s->dilation, kx * s->dilation);
            if (++kx == s->ksize) {
                kx = 0;
                if (++ky == s->ksize) {
                    ky = 0;
                    ch++;
                }
            }
        }
    }
    /* the last panel's columns past nc: zeros, as gemm_pack_b */
    const int used = nc % nr;
    if (used) {
        float *last = bp + (size_t)(nc / nr) * (size_t)nr * (size_t)kc;
        for (int p = 0; p < kc; p++)
            for (int q = used; q < nr; q++)
                last[(size_t)p * (size_t)nr + (size_t)q] = 0;
    }
}

size_t dnn_im2col_padded_floats(int channels, int h, int w, int pad)
{
    return (size_t)channels * ((size_t)h + 2 * (size_t)pad) * ((size_t)w + 2 * (size_t)pad);
}

void dnn_im2col_pad(const float *im, int channels, int h, int w, int pad, size_t row_floats,
                    float *out)
{
    const size_t pw = row_floats, ph = (size_t)h + 2 * (size_t)pad;
    const size_t right = pw - (size_t)pad - (size_t)w; /* zeros after each row */
    for (int c = 0; c < channels; c++) {
        float *o = out + (size_t)c * ph * pw;
        const float *in = im + (size_t)c * (size_t)h * (size_t)w;
        memset(o, 0, (size_t)pad * pw * sizeof(float)); /* all bits zero is +0.0f */
        for (int y = 0; y < h; y++) {
            float *row = o + ((size_t)y + (size_t)pad) * pw;
            memset(row, 0, (size_t)pad * sizeof(float));
            memcpy(row + pad, in + (size_t)y * (size_t)w, (size_t)w * sizeof(float));
            memset(row + pad + w, 0, right * sizeof(float));
        }
        memset(o + ((size_t)h + (size_t)pad) * pw, 0, (size_t)pad * pw * sizeof(float));
    }
}
