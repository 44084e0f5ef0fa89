/*
 * mix.h - AlexeyAB's batch-level augmentations for classifier training: mixup, cutmix,
 * mosaic (several images and their truths combined into one) and blur.
 *
 * The semantics are those of AlexeyAB's load_data_augment (src/data.c); the random draws
 * come from the struct dnn_rng passed in, so a run is reproduced by its seed. Images are
 * planar floats (c, h, w); truths are rows of `classes` floats, possibly already soft
 * (label_smooth_eps). A mixed truth is a weighted sum of the rows, the weights summing to 1,
 * so a row that summed to 1 still does.
 */
#ifndef DK_MIX_H
#define DK_MIX_H

#include <stddef.h>

#include "dnn/dnn.h"

/* AlexeyAB's net->mixup values: [net] mixup=N, or what cutmix=1 / mosaic=1 select. */
enum dk_mix_kind {
    DK_MIX_NONE = 0,
    DK_MIX_MIXUP = 1,  /* the average of two images and of their truths */
    DK_MIX_CUTMIX = 2, /* a rectangle of a second image, truths weighted by area */
    DK_MIX_MOSAIC = 3, /* four images tiled around a point, truths weighted by area */
    DK_MIX_EITHER = 4, /* per image, cutmix or mosaic with equal odds (cutmix=1 mosaic=1) */
    DK_MIX_KIND_COUNT
};

/* A rectangle of pixels: columns x..x+w-1, rows y..y+h-1. */
struct dk_mix_rect {
    int x, y, w, h;
};

/*
 * dk_mix_kind_from_keys - AlexeyAB's parse_net_options: mixup=N is the kind, unless cutmix
 * or mosaic is set (any nonzero value): both give DK_MIX_EITHER, cutmix alone
 * DK_MIX_CUTMIX, mosaic alone DK_MIX_MOSAIC. The result may be out of range when mixup is;
 * the caller checks it.
 */
int dk_mix_kind_from_keys(int mixup, int cutmix, int mosaic);

/* "mixup", "cutmix", "mosaic", "cutmix or mosaic", or "none" for anything else. */
const char *dk_mix_kind_name(int kind);

/*
 * dk_mix_mixup - x = (x + x2) / 2 over n floats and y = (y + y2) / 2 over classes floats.
 * y and y2 may be NULL (no truth to mix).
 */
void dk_mix_mixup(float *x, const float *x2, size_t n, float *y, const float *y2, int classes);

/*
 * dk_mix_cutmix_draw - AlexeyAB's cutmix rectangle for a w x h image: sides drawn in
 * [(int)(0.3 w), (int)(0.8 w)] and [(int)(0.3 h), (int)(0.8 h)] (so 9% to 64% of the area),
 * then its corner in [0, w - side - 1] and [0, h - side - 1]: it never reaches the last
 * column or row. Four draws, in that order. w and h are at least 1.
 */
void dk_mix_cutmix_draw(struct dnn_rng *rng, int w, int h, struct dk_mix_rect *r);

/*
 * dk_mix_cutmix - copies rectangle r of x2 into x (both (c, h, w), every channel), and sets
 * y = y * (1 - a) + y2 * a with a = r's area / (w * h). y, y2 may be NULL. r must lie
 * inside the image (as dk_mix_cutmix_draw's does).
 */
void dk_mix_cutmix(float *x, const float *x2, int w, int h, int c, const struct dk_mix_rect *r,
                   float *y, const float *y2, int classes);

/*
 * dk_mix_mosaic_draw - AlexeyAB's mosaic centre: *cx in [(int)(0.2 w), (int)(0.8 w)], *cy in
 * [(int)(0.2 h), (int)(0.8 h)]; two draws, in that order.
 */
void dk_mix_mosaic_draw(struct dnn_rng *rng, int w, int h, int *cx, int *cy);

/*
 * dk_mix_mosaic - tiles four (c, h, w) images around (cx, cy): x keeps its top-left
 * quadrant (columns < cx, rows < cy); part[0] gives the top right, part[1] the bottom left,
 * part[2] the bottom right. The truth is the sum of the four rows (y, ys[0..2]), each
 * weighted by its quadrant's share of the w * h pixels. y and ys may be NULL together.
 */
void dk_mix_mosaic(float *x, const float *const part[3], int w, int h, int c, int cx, int cy,
                   float *y, const float *const ys[3], int classes);

/*
 * dk_blur_ksize - the Gaussian kernel side AlexeyAB uses for [net] blur=N: 15 for blur=1,
 * else N (which OpenCV's GaussianBlur needs odd). 0 for blur=0.
 */
int dk_blur_ksize(int blur);

/*
 * dk_blur_gaussian - AlexeyAB's blur_image: OpenCV's GaussianBlur with a ksize x ksize
 * kernel and sigma 0, i.e. sigma = 0.3 * ((ksize - 1) / 2 - 1) + 0.8 (OpenCV's fixed
 * kernels for sides 3, 5 and 7), applied to every plane of the (c, h, w) image x in place,
 * rows then columns, mirroring at the borders without repeating the edge pixel (OpenCV's
 * BORDER_REFLECT_101). tmp holds w * h floats. ksize is odd, 1 .. 255; 1 leaves x as is.
 * AlexeyAB blurs an 8-bit copy of the image; here the floats are blurred as they are.
 */
void dk_blur_gaussian(float *x, int w, int h, int c, int ksize, float *tmp);

/* The largest kernel side dk_blur_gaussian takes. */
#define DK_BLUR_MAX_KSIZE 255

#endif
