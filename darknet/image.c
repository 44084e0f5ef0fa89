/*
 * image.c - planar float images: stb_image loading and darknet's image operations.
 *
 * The arithmetic follows darknet's src/image.c expression by expression (which
 * parts are float and which double matters for bit-exact results); the only
 * changes are guards where darknet would read out of bounds, divide by zero or
 * produce a NaN that it later ignores. Each such place says so.
 */
#include "darknet/image.h"
#include "darknet/jpeg_check.h"
#include "darknet/png_check.h"
#include "darknet/pnm_check.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

size_t dk_image_size(int w, int h, int c)
{
    if (w <= 0 || h <= 0 || c <= 0)
        return 0;
    size_t n = (size_t)w;
    if (n > SIZE_MAX / (size_t)h)
        return 0;
    n *= (size_t)h;
    if (n > SIZE_MAX / (size_t)c)
        return 0;
    n *= (size_t)c;
    if (n > SIZE_MAX / sizeof(float))
        return 0;
    return n;
}

int dk_image_make(struct dk_image *out, int w, int h, int c, struct dk_error *err)
{
    *out = (struct dk_image){0};
    size_t n = dk_image_size(w, h, c);
    if (n == 0)
        return dk_fail(err,
                       "invalid image size %d x %d x %d (each must be positive and the "
                       "total must fit in memory)",
                       w, h, c);
    float *data = calloc(n, sizeof(float));
    if (!data)
        return dk_fail(err, "out of memory allocating a %d x %d x %d image (%zu bytes)", w, h, c,
                       n * sizeof(float));
    *out = (struct dk_image){.w = w, .h = h, .c = c, .data = data};
    return 0;
}

void dk_image_free(struct dk_image *im)
{
    if (!im)
        return;
    free(im->data);
    *im = (struct dk_image){0};
}

static size_t image_floats(const struct dk_image *im)
{
    return (size_t)im->w * (size_t)im->h * (size_t)im->c;
}

int dk_image_copy(const struct dk_image *src, struct dk_image *out, struct dk_error *err)
{
    if (dk_image_make(out, src->w, src->h, src->c, err) != 0)
        return -1;
    memcpy(out->data, src->data, image_floats(src) * sizeof(float));
    return 0;
}

int dk_image_from_bytes(const uint8_t *bytes, int w, int h, int c, struct dk_image *out,
                        struct dk_error *err)
{
    if (dk_image_make(out, w, h, c, err) != 0)
        return -1;
    size_t plane = (size_t)w * (size_t)h;
    for (int k = 0; k < c; ++k) {
        float *dst = out->data + (size_t)k * plane;
        const uint8_t *src = bytes + k;
        for (size_t i = 0; i < plane; ++i)
            dst[i] = dk_pixel_from_byte(src[i * (size_t)c]);
    }
    return 0;
}

/* Formats whose reader in Debian's stb_image 2.27 has a known fault that a small hostile
 * file reaches, recognised by the magic stb's own tests look for (stbi__hdr_test,
 * stbi__pic_test); NULL for any other file. The stream is rewound. */
static const char *faulty_format(FILE *f)
{
    unsigned char b[92] = {0};
    size_t n = fread(b, 1, sizeof b, f);
    rewind(f);
    if ((n >= 11 && memcmp(b, "#?RADIANCE\n", 11) == 0) ||
        (n >= 7 && memcmp(b, "#?RGBE\n", 7) == 0))
        return "Radiance HDR files are not read, as stb_image 2.27 can loop for ever on a "
               "truncated one (CVE-2021-42715)";
    if (n == sizeof b && memcmp(b, "\x53\x80\xf6\x34", 4) == 0 && memcmp(b + 88, "PICT", 4) == 0)
        return "Softimage PIC files are not read, as stb_image 2.27 crashes on a truncated one "
               "(CVE-2023-43898)";
    return NULL;
}

int dk_image_load(const char *path, int channels, struct dk_image *out, struct dk_error *err)
{
    *out = (struct dk_image){0};
    if (channels < 0 || channels > 4)
        return dk_fail(err, "cannot load image \"%s\": %d channels requested, expected 0 to 4",
                       path, channels);
    FILE *f = NULL;
    uint64_t size = 0;
    if (dk_user_file_fopen(path, "an image", DK_IMAGE_MAX_FILE_BYTES, &f, &size, err) != 0)
        return -1;
    const char *faulty = faulty_format(f);
    if (faulty) {
        fclose(f);
        return dk_fail(err, "cannot load image \"%s\": %s; convert it to PNG", path, faulty);
    }
    /* The format checks run before any stb call: stbi_info itself reads a JPEG's tables
     * before its frame. */
    if (dk_png_check(f, path, size, DK_IMAGE_MAX_PIXELS, err) != 0 ||
        dk_jpeg_check(f, path, err) != 0 || dk_pnm_check(f, path, size, channels, err) != 0) {
        fclose(f);
        return -1;
    }
    int w = 0, h = 0, comp = 0;
    /* The header first: stb would allocate whatever a small file claims (up to its
     * own 2^24 per side), so the pixel count is checked before decoding. A header stb
     * cannot read is refused rather than decoded unchecked: stb's PIC reader, for one,
     * loads sizes its header reader refuses. A top-down BMP gives a negative height. */
    if (!stbi_info_from_file(f, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        fclose(f);
        return dk_fail(err, "cannot decode image \"%s\": stb_image cannot read its header (%s)",
                       path, why ? why : "unknown reason");
    }
    uint64_t pixels = (uint64_t)(w < 0 ? -(int64_t)w : w) * (uint64_t)(h < 0 ? -(int64_t)h : h);
    if (pixels > DK_IMAGE_MAX_PIXELS) {
        fclose(f);
        return dk_fail(err,
                       "cannot load image \"%s\": %d x %d pixels exceed the limit of %llu "
                       "pixels (8192 x 8192)",
                       path, w, h, (unsigned long long)DK_IMAGE_MAX_PIXELS);
    }
    unsigned char *px = stbi_load_from_file(f, &w, &h, &comp, channels);
    fclose(f);
    if (!px) {
        const char *why = stbi_failure_reason();
        return dk_fail(err, "cannot decode image \"%s\": %s (stb_image)", path,
                       why ? why : "unknown reason");
    }
    int c = channels ? channels : comp;
    int rc = dk_image_from_bytes(px, w, h, c, out, err);
    stbi_image_free(px);
    if (rc != 0)
        return dk_fail(err, "cannot load image \"%s\": %d x %d x %d pixels do not fit in memory",
                       path, w, h, c);
    return 0;
}

int dk_image_load_net(const char *path, int net_c, struct dk_image *out, struct dk_error *err)
{
    *out = (struct dk_image){0};
    if (net_c < 1 || net_c > 4)
        return dk_fail(err,
                       "cannot load image \"%s\" for a network of %d channels, expected 1 to 4",
                       path, net_c);
    if (dk_image_load(path, net_c < 3 ? 3 : net_c, out, err) != 0)
        return -1;
    /* Planar layout: the first net_c planes are the first w*h*net_c floats, so dropping
     * the others is a change of c; the spare planes stay allocated until dk_image_free. */
    out->c = net_c;
    return 0;
}

/* ----------------------------------------------------- in-place operations */

static float *pixel(const struct dk_image *im, int x, int y, int c)
{
    return im->data + ((size_t)c * (size_t)im->h + (size_t)y) * (size_t)im->w + (size_t)x;
}

/* darknet's get_pixel_extend: zero outside the image. */
static float pixel_or_zero(const struct dk_image *im, int x, int y, int c)
{
    if (x < 0 || x >= im->w || y < 0 || y >= im->h)
        return 0;
    return *pixel(im, x, y, c);
}

void dk_image_fill(struct dk_image *im, float v)
{
    size_t n = image_floats(im);
    for (size_t i = 0; i < n; ++i)
        im->data[i] = v;
}

void dk_image_constrain(struct dk_image *im)
{
    size_t n = image_floats(im);
    for (size_t i = 0; i < n; ++i) {
        if (im->data[i] < 0)
            im->data[i] = 0;
        if (im->data[i] > 1)
            im->data[i] = 1;
    }
}

void dk_image_flip(struct dk_image *im)
{
    for (int k = 0; k < im->c; ++k) {
        for (int y = 0; y < im->h; ++y) {
            float *row = pixel(im, 0, y, k);
            for (int x = 0; x < im->w / 2; ++x) {
                float swap = row[im->w - x - 1];
                row[im->w - x - 1] = row[x];
                row[x] = swap;
            }
        }
    }
}

void dk_image_embed(const struct dk_image *src, struct dk_image *dst, int dx, int dy)
{
    int channels = src->c < dst->c ? src->c : dst->c;
    int x0 = dx < 0 ? -dx : 0;
    int y0 = dy < 0 ? -dy : 0;
    int x1 = src->w;
    int y1 = src->h;
    if ((long long)dx + x1 > dst->w)
        x1 = (int)((long long)dst->w - dx);
    if ((long long)dy + y1 > dst->h)
        y1 = (int)((long long)dst->h - dy);
    if (x0 >= x1 || y0 >= y1)
        return;
    for (int k = 0; k < channels; ++k)
        for (int y = y0; y < y1; ++y)
            memcpy(pixel(dst, dx + x0, dy + y, k), pixel(src, x0, y, k),
                   (size_t)(x1 - x0) * sizeof(float));
}

static float three_way_max(float a, float b, float c)
{
    return (a > b) ? ((a > c) ? a : c) : ((b > c) ? b : c);
}

static float three_way_min(float a, float b, float c)
{
    return (a < b) ? ((a < c) ? a : c) : ((b < c) ? b : c);
}

static void rgb_to_hsv(struct dk_image *im)
{
    size_t plane = (size_t)im->w * (size_t)im->h;
    float *p0 = im->data, *p1 = im->data + plane, *p2 = im->data + 2 * plane;
    for (size_t i = 0; i < plane; ++i) {
        float r = p0[i], g = p1[i], b = p2[i];
        float max = three_way_max(r, g, b);
        float min = three_way_min(r, g, b);
        float delta = max - min;
        float h = 0, s = 0, v = max;
        if (max != 0) {
            s = delta / max;
            /* darknet computes 0/0 = NaN for the hue of a gray pixel and never
             * reads it (saturation is 0); 0 gives the same colours. */
            if (delta != 0) {
                if (r == max)
                    h = (g - b) / delta;
                else if (g == max)
                    h = 2 + (b - r) / delta;
                else
                    h = 4 + (r - g) / delta;
                if (h < 0)
                    h += 6;
                h = (float)(h / 6.);
            }
        }
        p0[i] = h;
        p1[i] = s;
        p2[i] = v;
    }
}

static void hsv_to_rgb(struct dk_image *im)
{
    size_t plane = (size_t)im->w * (size_t)im->h;
    float *p0 = im->data, *p1 = im->data + plane, *p2 = im->data + 2 * plane;
    for (size_t i = 0; i < plane; ++i) {
        float h = 6 * p0[i];
        float s = p1[i];
        float v = p2[i];
        float r, g, b;
        if (s == 0) {
            r = g = b = v;
        } else {
            int index = (int)floor(h);
            float f = h - index;
            float p = v * (1 - s);
            float q = v * (1 - s * f);
            float t = v * (1 - s * (1 - f));
            switch (index) {
            case 0:
                r = v;
                g = t;
                b = p;
                break;
            case 1:
                r = q;
                g = v;
                b = p;
                break;
            case 2:
                r = p;
                g = v;
                b = t;
                break;
            case 3:
                r = p;
                g = q;
                b = v;
                break;
            case 4:
                r = t;
                g = p;
                b = v;
                break;
            default:
                r = v;
                g = p;
                b = q;
                break;
            }
        }
        p0[i] = r;
        p1[i] = g;
        p2[i] = b;
    }
}

int dk_image_rgb_to_hsv(struct dk_image *im, struct dk_error *err)
{
    if (im->c != 3)
        return dk_fail(err, "RGB to HSV needs a 3-channel image, got %d channels", im->c);
    rgb_to_hsv(im);
    return 0;
}

int dk_image_hsv_to_rgb(struct dk_image *im, struct dk_error *err)
{
    if (im->c != 3)
        return dk_fail(err, "HSV to RGB needs a 3-channel image, got %d channels", im->c);
    hsv_to_rgb(im);
    return 0;
}

void dk_image_distort(struct dk_image *im, float hue, float sat, float val)
{
    if (im->c != 3) {
        size_t n = image_floats(im);
        for (size_t i = 0; i < n; ++i)
            im->data[i] = im->data[i] * val;
        dk_image_constrain(im);
        return;
    }
    size_t plane = (size_t)im->w * (size_t)im->h;
    rgb_to_hsv(im);
    for (size_t i = 0; i < plane; ++i)
        im->data[plane + i] = im->data[plane + i] * sat;
    for (size_t i = 0; i < plane; ++i)
        im->data[2 * plane + i] = im->data[2 * plane + i] * val;
    for (size_t i = 0; i < plane; ++i) {
        im->data[i] = im->data[i] + hue;
        if (im->data[i] > 1)
            im->data[i] -= 1;
        if (im->data[i] < 0)
            im->data[i] += 1;
    }
    hsv_to_rgb(im);
    dk_image_constrain(im);
}

/* ------------------------------------------------- geometric operations */

/* A dimension computed with darknet's integer formulas, kept >= 1 (darknet
 * would make an empty image for extreme aspect ratios). */
static int scaled_dim(long long num, long long den)
{
    long long v = num / den;
    if (v < 1)
        v = 1;
    if (v > 0x7fffffff)
        v = 0x7fffffff;
    return (int)v;
}

int dk_image_resize(const struct dk_image *im, int w, int h, struct dk_image *out,
                    struct dk_error *err)
{
    if (w == im->w && h == im->h)
        return dk_image_copy(im, out, err);
    struct dk_image part = {0};
    if (dk_image_make(out, w, h, im->c, err) != 0)
        return -1;
    if (dk_image_make(&part, w, im->h, im->c, err) != 0) {
        dk_image_free(out);
        return -1;
    }
    /* darknet divides by w - 1 and h - 1 even when they are 0; the scale is
     * then never used for columns, and 0 keeps rows defined. */
    float w_scale = w > 1 ? (float)(im->w - 1) / (w - 1) : 0;
    float h_scale = h > 1 ? (float)(im->h - 1) / (h - 1) : 0;
    for (int k = 0; k < im->c; ++k) {
        for (int r = 0; r < im->h; ++r) {
            const float *src = pixel(im, 0, r, k);
            float *dst = pixel(&part, 0, r, k);
            for (int c = 0; c < w; ++c) {
                float val = 0;
                if (c == w - 1 || im->w == 1) {
                    val = src[im->w - 1];
                } else {
                    float sx = c * w_scale;
                    int ix = (int)sx;
                    float dx = sx - ix;
                    /* Rounding can put ix on the last column; darknet then reads
                     * one past it with weight dx. */
                    int ix1 = ix + 1 < im->w ? ix + 1 : im->w - 1;
                    val = (1 - dx) * src[ix] + dx * src[ix1];
                }
                dst[c] = val;
            }
        }
    }
    for (int k = 0; k < im->c; ++k) {
        for (int r = 0; r < h; ++r) {
            float sy = r * h_scale;
            int iy = (int)sy;
            float dy = sy - iy;
            if (iy > im->h - 1)
                iy = im->h - 1;
            float *dst = pixel(out, 0, r, k);
            const float *src = pixel(&part, 0, iy, k);
            for (int c = 0; c < w; ++c)
                dst[c] = (1 - dy) * src[c];
            if (r == h - 1 || im->h == 1 || iy + 1 > im->h - 1)
                continue;
            const float *next = pixel(&part, 0, iy + 1, k);
            for (int c = 0; c < w; ++c)
                dst[c] += dy * next[c];
        }
    }
    dk_image_free(&part);
    return 0;
}

static void resize_min_dims(int iw, int ih, int min, int *w, int *h)
{
    if (iw < ih) {
        *h = scaled_dim((long long)ih * min, iw);
        *w = min;
    } else {
        *w = scaled_dim((long long)iw * min, ih);
        *h = min;
    }
}

int dk_image_resize_min(const struct dk_image *im, int min, struct dk_image *out,
                        struct dk_error *err)
{
    int w = 0, h = 0;
    resize_min_dims(im->w, im->h, min, &w, &h);
    return dk_image_resize(im, w, h, out, err);
}

/* crop_image into an existing w x h image with dst->c == im->c. */
static void crop_into(const struct dk_image *im, int dx, int dy, struct dk_image *dst)
{
    if (dx == 0 && dy == 0 && dst->w == im->w && dst->h == im->h) {
        memcpy(dst->data, im->data, image_floats(im) * sizeof(float));
        return;
    }
    for (int k = 0; k < im->c; ++k) {
        for (int j = 0; j < dst->h; ++j) {
            long long r = (long long)j + dy;
            r = r < 0 ? 0 : (r > im->h - 1 ? im->h - 1 : r);
            const float *src = pixel(im, 0, (int)r, k);
            float *row = pixel(dst, 0, j, k);
            for (int i = 0; i < dst->w; ++i) {
                long long c = (long long)i + dx;
                c = c < 0 ? 0 : (c > im->w - 1 ? im->w - 1 : c);
                row[i] = src[c];
            }
        }
    }
}

int dk_image_crop(const struct dk_image *im, int dx, int dy, int w, int h, struct dk_image *out,
                  struct dk_error *err)
{
    if (dk_image_make(out, w, h, im->c, err) != 0)
        return -1;
    crop_into(im, dx, dy, out);
    return 0;
}

int dk_image_center_crop(const struct dk_image *im, int w, int h, struct dk_image *out,
                         struct dk_error *err)
{
    int m = (im->w < im->h) ? im->w : im->h;
    struct dk_image square = {0};
    if (dk_image_crop(im, (im->w - m) / 2, (im->h - m) / 2, m, m, &square, err) != 0)
        return -1;
    int rc = dk_image_resize(&square, w, h, out, err);
    dk_image_free(&square);
    return rc;
}

int dk_image_letterbox(const struct dk_image *im, int w, int h, struct dk_image *out,
                       struct dk_error *err)
{
    int new_w = im->w;
    int new_h = im->h;
    if (((float)w / im->w) < ((float)h / im->h)) {
        new_w = w;
        new_h = scaled_dim((long long)im->h * w, im->w);
    } else {
        new_h = h;
        new_w = scaled_dim((long long)im->w * h, im->h);
    }
    struct dk_image resized = {0};
    if (dk_image_resize(im, new_w, new_h, &resized, err) != 0)
        return -1;
    if (dk_image_make(out, w, h, im->c, err) != 0) {
        dk_image_free(&resized);
        return -1;
    }
    dk_image_fill(out, .5f);
    dk_image_embed(&resized, out, (w - new_w) / 2, (h - new_h) / 2);
    dk_image_free(&resized);
    return 0;
}

/* darknet's bilinear_interpolate. A point at or beyond one pixel outside the
 * image has all four neighbours outside, so its value is 0 without converting
 * a possibly huge (or NaN) coordinate to int. */
static float bilinear(const struct dk_image *im, float x, float y, int c)
{
    if (!(x > -1.0f && x < (float)im->w && y > -1.0f && y < (float)im->h))
        return 0;
    int ix = (int)floorf(x);
    int iy = (int)floorf(y);
    float dx = x - ix;
    float dy = y - iy;
    float val = (1 - dy) * (1 - dx) * pixel_or_zero(im, ix, iy, c) +
                dy * (1 - dx) * pixel_or_zero(im, ix, iy + 1, c) +
                (1 - dy) * dx * pixel_or_zero(im, ix + 1, iy, c) +
                dy * dx * pixel_or_zero(im, ix + 1, iy + 1, c);
    return val;
}

void dk_image_rotate_crop_into(const struct dk_image *im, float rad, float s, float dx, float dy,
                               float aspect, struct dk_image *dst)
{
    int w = dst->w, h = dst->h;
    if (rad == 0 && s == 1 && aspect == 1 && dx == 0 && dy == 0 && w == im->w && h == im->h) {
        /* Every sample lands exactly on a source pixel with weight 1. */
        memcpy(dst->data, im->data, image_floats(im) * sizeof(float));
        return;
    }
    /* Same expression and types as darknet's rotate_crop_image: the bracketed
     * terms are double, dx/s*aspect and dy/s are float. */
    double cr = cos(rad);
    double sr = sin(rad);
    float cx = (float)(im->w / 2.);
    float cy = (float)(im->h / 2.);
    float sdx = dx / s * aspect;
    float sdy = dy / s;
    for (int c = 0; c < im->c; ++c) {
        for (int y = 0; y < h; ++y) {
            float *row = pixel(dst, 0, y, c);
            for (int x = 0; x < w; ++x) {
                double u = (x - w / 2.) / s * aspect + sdx;
                double v = (y - h / 2.) / s + sdy;
                float rx = (float)(cr * u - sr * v + cx);
                float ry = (float)(sr * u + cr * v + cy);
                row[x] = bilinear(im, rx, ry, c);
            }
        }
    }
}

/* ------------------------------------------ the classifier's preprocessing */

int dk_image_prepare_predict(const struct dk_image *im, int w, int h, struct dk_image *out,
                             struct dk_error *err)
{
    return dk_image_letterbox(im, w, h, out, err);
}

int dk_image_prepare_eval(const struct dk_image *im, int w, int h, float *dst, struct dk_error *err)
{
    if (dk_image_size(w, h, im->c) == 0)
        return dk_fail(err, "invalid evaluation size %d x %d x %d", w, h, im->c);
    int rw = 0, rh = 0;
    resize_min_dims(im->w, im->h, w, &rw, &rh);
    struct dk_image crop = {.w = w, .h = h, .c = im->c, .data = dst};
    if (rw == im->w && rh == im->h) {
        crop_into(im, (rw - w) / 2, (rh - h) / 2, &crop);
        return 0;
    }
    struct dk_image resized = {0};
    if (dk_image_resize(im, rw, rh, &resized, err) != 0)
        return -1;
    crop_into(&resized, (rw - w) / 2, (rh - h) / 2, &crop);
    dk_image_free(&resized);
    return 0;
}
