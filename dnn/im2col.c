/*
 * im2col.c - unrolling image patches into columns for convolution by gemm, and back.
 *
 * Layout as darknet's im2col_cpu/col2im_cpu: the image is (channels, h, w); the
 * column matrix has channels*ksize*ksize rows, row r = (ch*ksize + ky)*ksize + kx,
 * and out_h*out_w columns, with out_h = (h + 2*pad - ksize)/stride + 1 (likewise
 * out_w). Pixels outside the image read as zero; col2im drops them.
 */
#include "dnn/dnn_internal.h"

/* Output extent of one dimension. */
static int out_extent(int size, int ksize, int stride, int pad)
{
    return (size + 2 * pad - ksize) / stride + 1;
}

void dnn_im2col(const float *im, int channels, int h, int w, int ksize, int stride, int pad,
                float *col)
{
    const int oh = out_extent(h, ksize, stride, pad);
    const int ow = out_extent(w, ksize, stride, pad);
    const int rows = channels * ksize * ksize;
    for (int r = 0; r < rows; r++) {
        const int kx = r % ksize;
        const int ky = (r / ksize) % ksize;
        const float *plane = im + (size_t)(r / ksize / ksize) * (size_t)h * (size_t)w;
        float *out = col + (size_t)r * (size_t)oh * (size_t)ow;
        for (int y = 0; y < oh; y++) {
            const int iy = ky + y * stride - pad;
            float *orow = out + (size_t)y * (size_t)ow;
            if (iy < 0 || iy >= h) {
                for (int x = 0; x < ow; x++)
                    orow[x] = 0;
                continue;
            }
            const float *irow = plane + (size_t)iy * (size_t)w;
            for (int x = 0; x < ow; x++) {
                const int ix = kx + x * stride - pad;
                orow[x] = (ix >= 0 && ix < w) ? irow[ix] : 0;
            }
        }
    }
}

void dnn_col2im(const float *col, int channels, int h, int w, int ksize, int stride, int pad,
                float *im)
{
    const int oh = out_extent(h, ksize, stride, pad);
    const int ow = out_extent(w, ksize, stride, pad);
    const int rows = channels * ksize * ksize;
    for (int r = 0; r < rows; r++) {
        const int kx = r % ksize;
        const int ky = (r / ksize) % ksize;
        float *plane = im + (size_t)(r / ksize / ksize) * (size_t)h * (size_t)w;
        const float *in = col + (size_t)r * (size_t)oh * (size_t)ow;
        for (int y = 0; y < oh; y++) {
            const int iy = ky + y * stride - pad;
            if (iy < 0 || iy >= h)
                continue;
            const float *crow = in + (size_t)y * (size_t)ow;
            float *irow = plane + (size_t)iy * (size_t)w;
            for (int x = 0; x < ow; x++) {
                const int ix = kx + x * stride - pad;
                if (ix >= 0 && ix < w)
                    irow[ix] += crow[x];
            }
        }
    }
}
