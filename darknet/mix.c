/*
 * mix.c - mixup, cutmix, mosaic and blur for classifier batches (mix.h).
 */
#include "darknet/mix.h"

#include <math.h>
#include <string.h>

#include "darknet/augment.h"

int dk_mix_kind_from_keys(int mixup, int cutmix, int mosaic)
{
    /* AlexeyAB reads mixup first, then lets cutmix/mosaic overwrite it. */
    if (cutmix && mosaic)
        return DK_MIX_EITHER;
    if (cutmix)
        return DK_MIX_CUTMIX;
    if (mosaic)
        return DK_MIX_MOSAIC;
    return mixup;
}

const char *dk_mix_kind_name(int kind)
{
    switch (kind) {
    case DK_MIX_MIXUP:
        return "mixup";
    case DK_MIX_CUTMIX:
        return "cutmix";
    case DK_MIX_MOSAIC:
        return "mosaic";
    case DK_MIX_EITHER:
        return "cutmix or mosaic";
    default:
        return "none";
    }
}

void dk_mix_mixup(float *x, const float *x2, size_t n, float *y, const float *y2, int classes)
{
    for (size_t j = 0; j < n; j++)
        x[j] = (x[j] + x2[j]) / 2.0f;
    if (!y || !y2)
        return;
    for (int k = 0; k < classes; k++)
        y[k] = (y[k] + y2[k]) / 2.0f;
}

void dk_mix_cutmix_draw(struct dnn_rng *rng, int w, int h, struct dk_mix_rect *r)
{
    /* AlexeyAB's bounds are float products truncated to int by rand_int's parameters. */
    r->w = dk_rand_int(rng, (int)((float)w * 0.3f), (int)((float)w * 0.8f));
    r->h = dk_rand_int(rng, (int)((float)h * 0.3f), (int)((float)h * 0.8f));
    /* A side is at most (int)(0.8 w) < w, so the corner's upper bound is never below 0. */
    r->x = dk_rand_int(rng, 0, w - r->w - 1);
    r->y = dk_rand_int(rng, 0, h - r->h - 1);
}

void dk_mix_cutmix(float *x, const float *x2, int w, int h, int c, const struct dk_mix_rect *r,
                   float *y, const float *y2, int classes)
{
    const size_t plane = (size_t)w * (size_t)h;
    for (int k = 0; k < c; k++) {
        for (int row = r->y; row < r->y + r->h; row++) {
            size_t at = (size_t)k * plane + (size_t)row * (size_t)w + (size_t)r->x;
            memcpy(x + at, x2 + at, (size_t)r->w * sizeof(float));
        }
    }
    if (!y || !y2)
        return;
    const float alpha = (float)(r->w * r->h) / (float)(w * h);
    const float beta = 1 - alpha;
    for (int k = 0; k < classes; k++)
        y[k] = y[k] * beta + y2[k] * alpha;
}

void dk_mix_mosaic_draw(struct dnn_rng *rng, int w, int h, int *cx, int *cy)
{
    *cx = dk_rand_int(rng, (int)((float)w * 0.2f), (int)((float)w * 0.8f));
    *cy = dk_rand_int(rng, (int)((float)h * 0.2f), (int)((float)h * 0.8f));
}

void dk_mix_mosaic(float *x, const float *const part[3], int w, int h, int c, int cx, int cy,
                   float *y, const float *const ys[3], int classes)
{
    const size_t plane = (size_t)w * (size_t)h;
    for (int k = 0; k < c; k++) {
        for (int row = 0; row < h; row++) {
            size_t line = (size_t)k * plane + (size_t)row * (size_t)w;
            /* The top row keeps x on the left and takes part[0] on the right; the bottom
             * rows take part[1] on the left and part[2] on the right. */
            if (row >= cy)
                memcpy(x + line, part[1] + line, (size_t)cx * sizeof(float));
            const float *right = row < cy ? part[0] : part[2];
            memcpy(x + line + cx, right + line + cx, (size_t)(w - cx) * sizeof(float));
        }
    }
    if (!y || !ys)
        return;
    const float area = (float)(w * h);
    const float s[4] = {(float)(cx * cy) / area, (float)((w - cx) * cy) / area,
                        (float)(cx * (h - cy)) / area, (float)((w - cx) * (h - cy)) / area};
    for (int k = 0; k < classes; k++)
        y[k] = y[k] * s[0] + ys[0][k] * s[1] + ys[1][k] * s[2] + ys[2][k] * s[3];
}

int dk_blur_ksize(int blur)
{
    return blur == 1 ? 15 : blur;
}

/* OpenCV's getGaussianKernel for sigma <= 0: fixed tables for sides up to 7, else sampled
 * with its rule for sigma, normalised to sum 1. */
static void gaussian_kernel(int ksize, float *kern)
{
    static const float k3[3] = {0.25f, 0.5f, 0.25f};
    static const float k5[5] = {0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f};
    static const float k7[7] = {0.03125f, 0.109375f, 0.21875f, 0.28125f,
                                0.21875f, 0.109375f, 0.03125f};
    const float *fixed = ksize == 3 ? k3 : ksize == 5 ? k5 : ksize == 7 ? k7 : NULL;
    if (ksize == 1) {
        kern[0] = 1;
        return;
    }
    if (fixed) {
        memcpy(kern, fixed, (size_t)ksize * sizeof(float));
        return;
    }
    const double sigma = ((ksize - 1) * 0.5 - 1) * 0.3 + 0.8;
    const double scale = -0.5 / (sigma * sigma);
    double v[DK_BLUR_MAX_KSIZE];
    double sum = 0;
    for (int i = 0; i < ksize; i++) {
        const double d = i - (ksize - 1) * 0.5;
        v[i] = exp(scale * d * d);
        sum += v[i];
    }
    for (int i = 0; i < ksize; i++)
        kern[i] = (float)(v[i] / sum);
}

/* BORDER_REFLECT_101: -1 -> 1, n -> n - 2, repeated for kernels wider than the line. */
static int reflect101(int i, int n)
{
    if (n == 1)
        return 0;
    while (i < 0 || i >= n)
        i = i < 0 ? -i : 2 * n - 2 - i;
    return i;
}

/* Along each row: dst[i] = sum_t kern[t] * src[i + t - r], mirrored where i + t - r leaves
 * the row; the interior needs no mirroring and takes the plain loop. */
static void blur_rows(const float *src, float *dst, int w, int h, const float *kern, int ksize)
{
    const int r = ksize / 2;
    for (int y = 0; y < h; y++) {
        const float *s = src + (size_t)y * (size_t)w;
        float *d = dst + (size_t)y * (size_t)w;
        for (int i = 0; i < w; i++) {
            float acc = 0;
            if (i >= r && i + r < w) {
                for (int t = 0; t < ksize; t++)
                    acc += kern[t] * s[i + t - r];
            } else {
                for (int t = 0; t < ksize; t++)
                    acc += kern[t] * s[reflect101(i + t - r, w)];
            }
            d[i] = acc;
        }
    }
}

/* Along each column, a whole row at a time (contiguous memory): dst row y = sum_t kern[t] *
 * src row mirror(y + t - r). Each pixel sums its terms in the same order as blur_rows. */
static void blur_columns(const float *src, float *dst, int w, int h, const float *kern, int ksize)
{
    const int r = ksize / 2;
    for (int y = 0; y < h; y++) {
        float *d = dst + (size_t)y * (size_t)w;
        for (int i = 0; i < w; i++)
            d[i] = 0;
        for (int t = 0; t < ksize; t++) {
            const float *s = src + (size_t)reflect101(y + t - r, h) * (size_t)w;
            for (int i = 0; i < w; i++)
                d[i] += kern[t] * s[i];
        }
    }
}

void dk_blur_gaussian(float *x, int w, int h, int c, int ksize, float *tmp)
{
    if (ksize <= 1)
        return;
    float kern[DK_BLUR_MAX_KSIZE];
    gaussian_kernel(ksize, kern);
    const size_t plane = (size_t)w * (size_t)h;
    for (int k = 0; k < c; k++) {
        float *p = x + (size_t)k * plane;
        /* Along each row into tmp, then along each column back into the plane. */
        blur_rows(p, tmp, w, h, kern, ksize);
        blur_columns(tmp, p, w, h, kern, ksize);
    }
}
