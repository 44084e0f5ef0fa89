/*
 * image.h - planar float images and darknet's deterministic image operations.
 *
 * An image is (c, h, w) planar floats in [0, 1], as darknet's `image`. Loading
 * goes through stb_image and converts a byte b to (float)(b / 255.0) exactly as
 * darknet's load_image_stb does, so a gray PNG and an IDX image holding the same
 * bytes give the same floats. The operations reproduce darknet's src/image.c
 * arithmetic (same formulas, same float/double promotions); where darknet reads
 * out of bounds or divides by zero on degenerate sizes, these clamp instead (the
 * results are the same wherever darknet's are defined).
 *
 * Ownership: every function that fills a `struct dk_image *out` allocates
 * out->data; the caller frees it with dk_image_free. `out` never aliases the
 * input. On failure *out is left empty ({0}) and err holds the message.
 */
#ifndef DK_IMAGE_H
#define DK_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"

struct dk_image {
    int w, h, c;
    float *data; /* (c, h, w), values in [0, 1] */
};

/* Number of floats in an image of this shape, or 0 when a dimension is not
 * positive or the product overflows. */
size_t dk_image_size(int w, int h, int c);

/* Allocates a zero-filled w x h x c image. */
int dk_image_make(struct dk_image *out, int w, int h, int c, struct dk_error *err);

/* Frees im->data and empties *im; accepts NULL and empty images. */
void dk_image_free(struct dk_image *im);

/* A full copy of src. */
int dk_image_copy(const struct dk_image *src, struct dk_image *out, struct dk_error *err);

/* darknet's byte-to-float conversion: (float)(b / 255.0), computed in double. */
static inline float dk_pixel_from_byte(uint8_t b)
{
    return (float)((double)b / 255.);
}

/*
 * dk_image_from_bytes - converts interleaved bytes (h, w, c) into a planar image.
 * @bytes: h*w*c bytes, row-major with channels innermost (stb's layout)
 * @out:   receives a new w x h x c image
 */
int dk_image_from_bytes(const uint8_t *bytes, int w, int h, int c, struct dk_image *out,
                        struct dk_error *err);

/*
 * dk_image_load - decodes a PNG, JPEG, BMP (or any format stb_image reads).
 * @path:     the file
 * @channels: 0 keeps the file's channel count; 1..4 converts as stb does (gray
 *            to 3 repeats the gray value; RGB to 1 takes stb's luminance)
 * @out:      receives the planar image
 *
 * Returns 0, or -1 with a message naming the file and the reason (the system's
 * for an unreadable file, stb's stbi_failure_reason() for a bad image).
 * Limits: a regular file (darknet/user_file.h) of at most DK_IMAGE_MAX_FILE_BYTES
 * (256 MiB), at most DK_IMAGE_MAX_PIXELS (2^26, 8192 x 8192) pixels by its header,
 * and stb_image's own limits (2^24 pixels per side by default); a header stb cannot
 * read is refused. A PNG is checked next (darknet/png_check.h): a chunk that declares
 * more bytes than the file holds, or image data that zlib cannot decode or that inflates
 * to more than twice what the header needs plus 1 MiB, is refused before stb allocates
 * for it. JPEGs (darknet/jpeg_check.h) and binary PGM/PPM files (darknet/pnm_check.h)
 * are checked for what stb 2.27 would mishandle the same way. Radiance HDR and Softimage
 * PIC files are refused by name (stb 2.27's readers hang or crash on truncated ones:
 * CVE-2021-42715, CVE-2023-43898).
 */
int dk_image_load(const char *path, int channels, struct dk_image *out, struct dk_error *err);

/*
 * dk_image_load_net - loads an image as darknet's classifier feeds it to a network of
 * net_c channels (its load_image_color): the file decoded as 3 channels (gray repeated),
 * of which a network with net_c < 3 reads the first net_c planes, so a one-channel
 * network sees the red plane of a colour image (not stb's luminance, which
 * dk_image_load(path, 1, ...) gives). A gray file gives its gray value either way.
 * @net_c: the network's input channels, 1..4; 4 decodes 4 channels (RGBA) as
 *         dk_image_load does (darknet would read past its 3 planes there)
 * @out:   receives a w x h x net_c image
 * Errors and limits: as dk_image_load.
 */
int dk_image_load_net(const char *path, int net_c, struct dk_image *out, struct dk_error *err);

/* ----------------------------------------------------- in-place operations */

/* Sets every value to v. */
void dk_image_fill(struct dk_image *im, float v);

/* Clamps every value to [0, 1] (darknet's constrain_image). */
void dk_image_constrain(struct dk_image *im);

/* Mirrors every row left to right (darknet's flip_image). */
void dk_image_flip(struct dk_image *im);

/* Copies src into dst with its top-left corner at (dx, dy); pixels falling
 * outside dst are dropped (darknet's embed_image). Channels beyond dst->c are
 * dropped too. */
void dk_image_embed(const struct dk_image *src, struct dk_image *dst, int dx, int dy);

/* RGB <-> HSV in place (darknet's rgb_to_hsv / hsv_to_rgb), H, S, V in [0, 1].
 * Need a 3-channel image: -1 with a message otherwise. */
int dk_image_rgb_to_hsv(struct dk_image *im, struct dk_error *err);
int dk_image_hsv_to_rgb(struct dk_image *im, struct dk_error *err);

/*
 * dk_image_distort - darknet's distort_image: in HSV, scale S by sat and V by
 * val, add hue to H (wrapping into [0, 1]), back to RGB, clamp to [0, 1].
 * A 3-channel image goes through HSV. Any other channel count is treated as gray
 * channels, where hue and saturation have no effect: each value becomes
 * clamp(v * val), the exact result darknet gives for a gray RGB pixel.
 */
void dk_image_distort(struct dk_image *im, float hue, float sat, float val);

/* ------------------------------------------------- geometric operations */

/* Bilinear resize in two passes (darknet's resize_image). A resize to the same
 * size is an exact copy. */
int dk_image_resize(const struct dk_image *im, int w, int h, struct dk_image *out,
                    struct dk_error *err);

/* Scales so that the shorter side becomes `min`, keeping the aspect ratio with
 * darknet's integer rounding (darknet's resize_min); a copy when nothing changes. */
int dk_image_resize_min(const struct dk_image *im, int min, struct dk_image *out,
                        struct dk_error *err);

/* The w x h window whose top-left corner is (dx, dy); reads outside the image
 * take the nearest edge pixel (darknet's crop_image). */
int dk_image_crop(const struct dk_image *im, int dx, int dy, int w, int h, struct dk_image *out,
                  struct dk_error *err);

/* Crops the central square of side min(w, h), then resizes it to w x h
 * (darknet's center_crop_image). */
int dk_image_center_crop(const struct dk_image *im, int w, int h, struct dk_image *out,
                         struct dk_error *err);

/* Resizes to fit inside w x h keeping the aspect ratio and centres the result on
 * a canvas filled with 0.5 (darknet's letterbox_image). */
int dk_image_letterbox(const struct dk_image *im, int w, int h, struct dk_image *out,
                       struct dk_error *err);

/*
 * dk_image_rotate_crop_into - darknet's rotate_crop_image: output pixel (x, y)
 * samples the source bilinearly (zero outside) at the point reached by scaling
 * by 1/s (x also by aspect), shifting by (dx, dy) and rotating by rad about the
 * source centre. Writes into dst (its w, h are the crop size; dst->c must equal
 * im->c). When the transform is the identity it is an exact copy.
 */
void dk_image_rotate_crop_into(const struct dk_image *im, float rad, float s, float dx, float dy,
                               float aspect, struct dk_image *dst);

/* ------------------------------------------ the classifier's preprocessing */

/* Predict path (darknet's predict_classifier): letterbox to w x h. */
int dk_image_prepare_predict(const struct dk_image *im, int w, int h, struct dk_image *out,
                             struct dk_error *err);

/*
 * dk_image_prepare_eval - validation path (darknet's validate_classifier_single):
 * resize_min(im, w), then the centred w x h crop. Writes w*h*im->c floats, planar,
 * into dst. An image that is already w x h is copied as is.
 */
int dk_image_prepare_eval(const struct dk_image *im, int w, int h, float *dst,
                          struct dk_error *err);

#endif
