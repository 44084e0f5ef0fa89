/*
 * augment.c - darknet's classification augmentation, drawing from a struct dnn_rng.
 */
#include "darknet/augment.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "darknet/mix.h"

/* darknet's TWO_PI is a double literal. */
#define DK_TWO_PI 6.2831853071795864769252866

float dk_rand_uniform(struct dnn_rng *rng, float min, float max)
{
    if (max < min) {
        float swap = min;
        min = max;
        max = swap;
    }
    return dnn_rng_uniform(rng, min, max);
}

int dk_rand_int(struct dnn_rng *rng, int min, int max)
{
    if (max < min) {
        int swap = min;
        min = max;
        max = swap;
    }
    uint64_t span = (uint64_t)((int64_t)max - (int64_t)min) + 1;
    return (int)((int64_t)min + (int64_t)(dnn_rng_u32(rng) % span));
}

float dk_rand_scale(struct dnn_rng *rng, float s)
{
    float scale = dk_rand_uniform(rng, 1, s);
    if (dnn_rng_u32(rng) % 2)
        return scale;
    return (float)(1. / scale);
}

void dk_augment_random_args(const struct dk_image *im, float angle, float aspect, int low, int high,
                            int w, int h, struct dnn_rng *rng, struct dk_augment_args *a)
{
    aspect = dk_rand_scale(rng, aspect);
    int r = dk_rand_int(rng, low, high);
    /* As darknet: the shorter side of the aspect-corrected source, in float,
     * truncated to int. */
    int min = (int)((im->h < im->w * aspect) ? im->h : im->w * aspect);
    if (min < 1)
        min = 1; /* a sliver narrower than a pixel: darknet would divide by 0 */
    float scale = (float)r / min;
    float rad = (float)(dk_rand_uniform(rng, -angle, angle) * DK_TWO_PI / 360.);
    float dx = (float)((im->w * scale / aspect - w) / 2.);
    /* darknet subtracts w here too; it only ever crops squares (size x size),
     * where the two agree. h is what the formula means. */
    float dy = (float)((im->h * scale - h) / 2.);
    dx = dk_rand_uniform(rng, -dx, dx);
    dy = dk_rand_uniform(rng, -dy, dy);
    *a = (struct dk_augment_args){
        .rad = rad, .scale = scale, .dx = dx, .dy = dy, .aspect = aspect, .w = w, .h = h};
}

int dk_image_random_augment(const struct dk_image *im, float angle, float aspect, int low, int high,
                            int w, int h, struct dnn_rng *rng, struct dk_image *out,
                            struct dk_error *err)
{
    struct dk_augment_args a;
    dk_augment_random_args(im, angle, aspect, low, high, w, h, rng, &a);
    if (dk_image_make(out, w, h, im->c, err) != 0)
        return -1;
    dk_image_rotate_crop_into(im, a.rad, a.scale, a.dx, a.dy, a.aspect, out);
    return 0;
}

void dk_image_random_distort(struct dk_image *im, float hue, float saturation, float exposure,
                             struct dnn_rng *rng)
{
    float dhue = dk_rand_uniform(rng, -hue, hue);
    float dsat = dk_rand_scale(rng, saturation);
    float dexp = dk_rand_scale(rng, exposure);
    dk_image_distort(im, dhue, dsat, dexp);
}

int dk_augment_check(const struct dk_augment_params *p, struct dk_error *err)
{
    if (p->min_crop < 1 || p->max_crop < 1)
        return dk_fail(err, "augmentation: min_crop (%d) and max_crop (%d) must be at least 1",
                       p->min_crop, p->max_crop);
    if (!(p->aspect > 0) || !isfinite(p->aspect))
        return dk_fail(err, "augmentation: aspect must be a positive number, got %g",
                       (double)p->aspect);
    if (!(p->saturation > 0) || !isfinite(p->saturation))
        return dk_fail(err, "augmentation: saturation must be a positive number, got %g",
                       (double)p->saturation);
    if (!(p->exposure > 0) || !isfinite(p->exposure))
        return dk_fail(err, "augmentation: exposure must be a positive number, got %g",
                       (double)p->exposure);
    if (!(p->label_smooth_eps >= 0 && p->label_smooth_eps < 1))
        return dk_fail(err, "label_smooth_eps must be in [0, 1), got %g",
                       (double)p->label_smooth_eps);
    if (!isfinite(p->angle) || !isfinite(p->hue))
        return dk_fail(err, "augmentation: angle (%g) and hue (%g) must be finite numbers",
                       (double)p->angle, (double)p->hue);
    if (p->mixup < DK_MIX_NONE || p->mixup >= DK_MIX_KIND_COUNT)
        return dk_fail(err, "mixup must be 0 to %d, got %d", DK_MIX_KIND_COUNT - 1, p->mixup);
    const int ksize = dk_blur_ksize(p->blur);
    if (ksize < 0 || ksize > DK_BLUR_MAX_KSIZE || (ksize > 0 && ksize % 2 == 0))
        return dk_fail(err,
                       "blur must be 0, 1 (a 15x15 kernel) or an odd kernel side up to %d, got %d",
                       DK_BLUR_MAX_KSIZE, p->blur);
    return 0;
}

/* Appends printf text to buf at *len, after ", " unless it is the first item; keeps buf
 * terminated and stops quietly when full. */
static void describe_add(char *buf, size_t size, size_t *len, const char *fmt, ...) DK_PRINTF(4, 5);
static void describe_add(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    char item[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    int n = snprintf(buf + *len, size - *len, "%s%s", *len ? ", " : "", item);
    if (n > 0)
        *len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

void dk_augment_describe(const struct dk_augment_params *p, int w, char *buf, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    if (p->center)
        describe_add(buf, size, &len, "centre crop");
    else if (p->min_crop != w || p->max_crop != w)
        describe_add(buf, size, &len, "random crop %d..%d", p->min_crop, p->max_crop);
    if (!p->center && p->angle != 0)
        describe_add(buf, size, &len, "angle %g", (double)p->angle);
    if (!p->center && p->aspect != 1)
        describe_add(buf, size, &len, "aspect %g", (double)p->aspect);
    if (p->flip)
        describe_add(buf, size, &len, "flip");
    if (p->hue != 0)
        describe_add(buf, size, &len, "hue %g", (double)p->hue);
    if (p->saturation != 1)
        describe_add(buf, size, &len, "saturation %g", (double)p->saturation);
    if (p->exposure != 1)
        describe_add(buf, size, &len, "exposure %g", (double)p->exposure);
    if (p->mixup != DK_MIX_NONE)
        describe_add(buf, size, &len, "%s (half the batches)", dk_mix_kind_name(p->mixup));
    if (p->blur != 0)
        describe_add(buf, size, &len, "blur %dx%d (a quarter of the images)",
                     dk_blur_ksize(p->blur), dk_blur_ksize(p->blur));
    if (p->label_smooth_eps > 0)
        describe_add(buf, size, &len, "label_smooth_eps %g", (double)p->label_smooth_eps);
    if (len == 0)
        snprintf(buf, size, "none");
}

int dk_augment_classifier(const struct dk_image *im, const struct dk_augment_params *p, int w,
                          int h, struct dnn_rng *rng, float *dst, struct dk_error *err)
{
    struct dk_image crop = {.w = w, .h = h, .c = im->c, .data = dst};
    if (dk_image_size(w, h, im->c) == 0)
        return dk_fail(err, "augmentation: invalid output size %d x %d x %d", w, h, im->c);
    if (p->center) {
        if (im->w == w && im->h == h && w == h) {
            /* Square crop of a square image, resized to its own size. */
            memcpy(dst, im->data, dk_image_size(w, h, im->c) * sizeof(float));
        } else {
            struct dk_image centred = {0};
            if (dk_image_center_crop(im, w, h, &centred, err) != 0)
                return -1;
            memcpy(dst, centred.data, dk_image_size(w, h, im->c) * sizeof(float));
            dk_image_free(&centred);
        }
    } else {
        struct dk_augment_args a;
        dk_augment_random_args(im, p->angle, p->aspect, p->min_crop, p->max_crop, w, h, rng, &a);
        dk_image_rotate_crop_into(im, a.rad, a.scale, a.dx, a.dy, a.aspect, &crop);
    }
    if (p->flip && dnn_rng_u32(rng) % 2)
        dk_image_flip(&crop);
    dk_image_random_distort(&crop, p->hue, p->saturation, p->exposure, rng);
    return 0;
}
