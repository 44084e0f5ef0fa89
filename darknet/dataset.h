/*
 * dataset.h - the classification data source behind train and valid.
 *
 * Two kinds, chosen by the content of the `train`/`valid` file:
 *   - a list of image paths, one per line (darknet's get_paths; empty lines are
 *     skipped). The class of a path is found as darknet's fill_truth does: label
 *     i matches when labels[i] is a substring of the path; exactly one match
 *     gives the class, any other count leaves the item unlabelled (-1; darknet
 *     prints "Too many or too few labels"; dk_dataset_unlabelled counts them so
 *     the caller can warn).
 *   - an IDX image file (n, rows, cols), gzipped or not, recognised by its magic,
 *     with an optional IDX label file (n) (`train_labels`/`valid_labels`). A
 *     pixel is byte/255 as for an 8-bit gray PNG loaded through stb, and a gray
 *     plane is repeated when more channels are asked for.
 */
#ifndef DK_DATASET_H
#define DK_DATASET_H

#include <stdbool.h>
#include <stddef.h>

#include "darknet/augment.h"
#include "darknet/error.h"
#include "darknet/idx.h"
#include "darknet/image.h"
#include "dnn/dnn.h"

/* ------------------------------------------------------------ line files */

/* The lines of a text file, in order. */
struct dk_list {
    char **items; /* (n) strings: inside text when text is set, else owned one by one */
    size_t n;
    char *text; /* the file's bytes, split in place; NULL for a list built in memory */
};

/*
 * dk_list_read_lines - reads a text file, one entry per line, with the trailing
 * "\n" or "\r\n" (and any other trailing CR) removed.
 * @skip_empty: drop lines that are empty after stripping
 * @out:        receives the lines (free with dk_list_free); empty on failure
 * The file must be a regular file (darknet/user_file.h) of at most DK_LIST_MAX_BYTES
 * (256 MiB) and DK_LIST_MAX_LINES (2^24) lines, without NUL bytes; memory is the
 * file's size plus one pointer per line. Errors name the file and the limit.
 */
int dk_list_read_lines(const char *path, bool skip_empty, struct dk_list *out,
                       struct dk_error *err);

/* A names/labels file (darknet's get_labels): every line is a name, in order,
 * so line i names class i; an empty line stays (as an empty name). Limits:
 * DK_NAMES_MAX_BYTES (16 MiB) and DK_NAMES_MAX_LINES (2^20) lines. */
int dk_list_read(const char *path, struct dk_list *out, struct dk_error *err);

/* A paths list file (darknet's get_paths): every non-empty line is a path.
 * Limits as dk_list_read_lines. */
int dk_list_read_paths(const char *path, struct dk_list *out, struct dk_error *err);

/* Frees the lines and empties *l; accepts NULL. */
void dk_list_free(struct dk_list *l);

/* --------------------------------------------------------------- data sets */

enum dk_dataset_kind {
    DK_DATASET_LIST = 1, /* text file of image paths */
    DK_DATASET_IDX = 2,  /* IDX images (+ IDX labels) */
};

/* Fields are read-only for callers; use the functions below. */
struct dk_dataset {
    enum dk_dataset_kind kind;
    int classes;
    size_t count;      /* number of items */
    size_t unlabelled; /* items whose class is -1 */
    int *cls;          /* (count) class of each item, -1 when unknown */
    char *source;      /* copy of the images path */

    /* DK_DATASET_LIST */
    struct dk_list paths;  /* (count) image paths */
    struct dk_list labels; /* (classes) copies of the labels */

    /* DK_DATASET_IDX */
    struct dk_idx_file images; /* (count, rows, cols) bytes, read an image at a time */
    int rows, cols;
};

/*
 * dk_dataset_open - opens a data set.
 * @images_path:     an IDX image file or a text file of image paths
 * @labels_idx_path: the IDX label file for IDX images, or NULL (items unlabelled);
 *                   must be NULL for a paths list
 * @labels:          for a paths list, the label strings matched by substring (the
 *                   first `classes` are copied; a paths list needs at least
 *                   `classes` of them); ignored for IDX, may be NULL there
 * @n_labels:        number of strings in labels
 * @classes:         width of the one-hot truth; IDX labels must be below it
 *
 * Errors name the file: unreadable file, empty list, missing or empty label, bad
 * IDX file, images that are not (n, rows, cols), labels that are not (n),
 * counts that differ, a label value >= classes.
 */
int dk_dataset_open(struct dk_dataset *ds, const char *images_path, const char *labels_idx_path,
                    char *const *labels, size_t n_labels, int classes, struct dk_error *err);

/*
 * dk_dataset_check_files - can every image of a paths list be read? Each path is
 * opened as a regular file (darknet/user_file.h: a missing file, a directory, a FIFO
 * or a file without read permission fails) and closed; nothing is decoded. Training
 * calls it before its first iteration, so a bad list costs no lost work. An IDX data
 * set has no separate files: 0. One open per item, so the cost is linear in the list.
 * Returns 0, or -1 with "\"LIST\": K of its N images cannot be read: <the first 3
 * reasons, each naming its file>[; ...]".
 */
int dk_dataset_check_files(const struct dk_dataset *ds, struct dk_error *err);

/* Frees everything the data set owns and empties *ds; accepts NULL. */
void dk_dataset_close(struct dk_dataset *ds);

size_t dk_dataset_count(const struct dk_dataset *ds);

/* Number of items with class -1 (a paths list: not exactly one label matched). */
size_t dk_dataset_unlabelled(const struct dk_dataset *ds);

/*
 * dk_dataset_label_report - names the images of a paths list whose path holds no label
 * or several (darknet's "Too many or too few labels"): into buf (always terminated,
 * truncated to size) a first line "\"LIST\": K of its N image paths match no label or
 * several", then one line per image for the first max_named, each with what it matched
 * ("no label" or "2 labels (rain, sun)"), then "... and M more". Returns K; 0 (and an
 * empty buf) for an IDX data set, whose labels do not come from paths.
 */
size_t dk_dataset_label_report(const struct dk_dataset *ds, size_t max_named, char *buf,
                               size_t size);

/* Class of item i, -1 when unknown or i is out of range. */
int dk_dataset_class(const struct dk_dataset *ds, size_t i);

/*
 * dk_dataset_name - a printable name for item i: the path for a list (buf is
 * not used), "<images file>#<i>" for IDX (written into buf, truncated to bufsize).
 * The result is borrowed: valid while ds is open and buf is unchanged.
 */
const char *dk_dataset_name(const struct dk_dataset *ds, size_t i, char *buf, size_t bufsize);

/* Loads item i as an image with `channels` channels (0: the file's own; IDX: 1); a list's
 * image as darknet feeds a network of that many channels (dk_image_load_net: a one-channel
 * network reads a colour image's red plane). */
int dk_dataset_load(const struct dk_dataset *ds, size_t i, int channels, struct dk_image *out,
                    struct dk_error *err);

/*
 * dk_dataset_train_batch - a training batch as darknet's load_data_augment.
 * @rng:   random stream: first n item indices (with replacement, as darknet's
 *         get_random_paths), then each item's augmentation draws in order; then, with
 *         aug->mixup, a coin (mix this batch or not) and, for a mixed batch, per item its
 *         kind (cutmix or mosaic, for DK_MIX_EITHER), its partners' indices, their
 *         augmentation draws and the rectangle or mosaic centre (darknet/mix.h); then, with
 *         aug->blur, one draw per item (blurred with probability 1/4). Without mixup and
 *         blur the stream is used exactly as before they existed.
 * @n:     batch size
 * @w,h,c: network input size; c is 1..4
 * @aug:   augmentation parameters (checked here)
 * @X:     receives (n, c*h*w) planar pixels
 * @Y:     receives (n, classes) truth, or NULL: one-hot for a known class; for a
 *         paths list darknet's fill_truth row (a 1 for every matching label, so
 *         all zeros when none matches); label smoothing and mixing make it soft
 */
int dk_dataset_train_batch(const struct dk_dataset *ds, struct dnn_rng *rng, int n, int w, int h,
                           int c, const struct dk_augment_params *aug, float *X, float *Y,
                           struct dk_error *err);

/*
 * dk_dataset_eval_image - item i preprocessed for validation as darknet's
 * validate_classifier_single: resize_min(w), then the centred w x h crop.
 * Writes c*h*w planar floats into X. 28x28 IDX data at 28x28 is copied as is.
 */
int dk_dataset_eval_image(const struct dk_dataset *ds, size_t i, int w, int h, int c, float *X,
                          struct dk_error *err);

#endif
