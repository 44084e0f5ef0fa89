/*
 * augment.h - darknet's random training augmentation for classification.
 *
 * Same steps and the same order of random draws as darknet's
 * load_image_augment_paths: random_augment_image (aspect, crop size, angle,
 * shift) or center_crop_image, a coin flip for the mirror, then
 * random_distort_image (hue, saturation, exposure). Every draw comes from the
 * struct dnn_rng passed in; nothing here has hidden state.
 */
#ifndef DK_AUGMENT_H
#define DK_AUGMENT_H

#include <stdbool.h>

#include "darknet/error.h"
#include "darknet/image.h"
#include "dnn/dnn.h"

/* The [net] section's augmentation keys (darknet names in brackets). */
struct dk_augment_params {
    int min_crop;     /* the source's shorter side is scaled to a random */
    int max_crop;     /* r in [min_crop, max_crop] pixels before the crop */
    float angle;      /* max rotation, degrees [angle] */
    float aspect;     /* aspect-ratio jitter factor, 1 = none [aspect] */
    float hue;        /* max hue shift, fraction of the circle [hue] */
    float saturation; /* saturation scale jitter factor, 1 = none [saturation] */
    float exposure;   /* value scale jitter factor, 1 = none [exposure] */
    bool flip;        /* mirror with probability 1/2 */
    bool center;      /* centre crop instead of the random crop [center] */
    /* AlexeyAB's label_smooth_eps, in [0, 1): a truth row holds 1 - eps where a label
     * matches and eps / (classes - 1) elsewhere (fill_truth_smooth); 0 = plain 0/1. */
    float label_smooth_eps;
    /* AlexeyAB's batch augmentations (darknet/mix.h): the kind, enum dk_mix_kind, from
     * mixup=N or cutmix=1/mosaic=1 (dk_mix_kind_from_keys), 0 = none; and blur=N, the
     * Gaussian kernel side through dk_blur_ksize (1 = 15), 0 = none. */
    int mixup;
    int blur;
};

/* darknet's augment_args: one draw of random_augment_args. */
struct dk_augment_args {
    float rad;    /* rotation, radians */
    float scale;  /* source pixels are scaled by this */
    float dx, dy; /* shift of the crop centre, output pixels */
    float aspect; /* drawn aspect ratio */
    int w, h;     /* crop size */
};

/* darknet's rand_uniform (bounds may come in either order), rand_int (both
 * bounds inclusive) and rand_scale (s or 1/s with equal odds, s drawn in [1, s]). */
float dk_rand_uniform(struct dnn_rng *rng, float min, float max);
int dk_rand_int(struct dnn_rng *rng, int min, int max);
float dk_rand_scale(struct dnn_rng *rng, float s);

/* darknet's random_augment_args for a w x h crop of im; crops sides drawn in
 * [low, high]. Draws, in order: aspect (2), crop side (1), angle (1), dx (1), dy (1). */
void dk_augment_random_args(const struct dk_image *im, float angle, float aspect, int low, int high,
                            int w, int h, struct dnn_rng *rng, struct dk_augment_args *a);

/* darknet's random_augment_image: random args, then rotate_crop into a new
 * w x h image. */
int dk_image_random_augment(const struct dk_image *im, float angle, float aspect, int low, int high,
                            int w, int h, struct dnn_rng *rng, struct dk_image *out,
                            struct dk_error *err);

/* darknet's random_distort_image: hue in [-hue, hue], saturation and exposure
 * through rand_scale (3 + 2 draws), then dk_image_distort. */
void dk_image_random_distort(struct dk_image *im, float hue, float saturation, float exposure,
                             struct dnn_rng *rng);

/* Checks a parameter set; -1 with a message naming the bad key otherwise. */
int dk_augment_check(const struct dk_augment_params *p, struct dk_error *err);

/*
 * dk_augment_describe - the augmentations p turns on, for the note train prints at start:
 * into buf (always terminated, truncated to size) a comma-separated list such as
 * "random crop 12..24, flip, hue 0.1, cutmix (half the batches), blur 15x15 (a quarter of the
 * images)", or "none". w is the network's input width (the crop is the identity when
 * min_crop = max_crop = w and nothing else moves the image).
 */
void dk_augment_describe(const struct dk_augment_params *p, int w, char *buf, size_t size);

/*
 * dk_augment_classifier - one training image, darknet style.
 * @im:  source image (any size; its channel count is the output's)
 * @p:   augmentation parameters (checked by the caller with dk_augment_check)
 * @w,h: output size
 * @rng: random stream
 * @dst: receives w*h*im->c planar floats
 *
 * When the drawn transform is the identity (same size, no rotation, scale 1,
 * aspect 1, no shift; e.g. 28x28 data with min_crop = max_crop = 28) the crop is
 * a copy, and the whole call allocates nothing unless center is set.
 */
int dk_augment_classifier(const struct dk_image *im, const struct dk_augment_params *p, int w,
                          int h, struct dnn_rng *rng, float *dst, struct dk_error *err);

#endif
