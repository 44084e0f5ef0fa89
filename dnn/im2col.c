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
