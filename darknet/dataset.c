/*
 * dataset.c - paths lists and IDX files as one classification data source.
 */
#include "darknet/dataset.h"
#include "darknet/mix.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ line files */

void dk_list_free(struct dk_list *l)
{
    if (!l)
        return;
    if (l->items && !l->text) {
        for (size_t i = 0; i < l->n; ++i)
            free(l->items[i]);
    }
    free(l->items);
    free(l->text);
    *l = (struct dk_list){0};
}

/* Appends a copy of s to a list that owns its strings one by one (no text); -1 when
 * out of memory. */
static int list_push(struct dk_list *l, size_t *cap, const char *s)
{
    if (l->n == *cap) {
        size_t next = *cap ? *cap * 2 : 64;
        if (next < *cap || next > SIZE_MAX / sizeof *l->items)
            return -1;
        char **grown = realloc(l->items, next * sizeof *l->items);
        if (!grown)
            return -1;
        l->items = grown;
        *cap = next;
    }
    l->items[l->n] = strdup(s);
    if (!l->items[l->n])
        return -1;
    ++l->n;
    return 0;
}

/*
 * The file is read whole (its size checked first) and split in place: items point
 * into the one text buffer, so a list costs its file's bytes plus a pointer per line,
 * and a line of two bytes does not cost a 32-byte allocation of its own.
 */
static int read_lines(const char *path, bool skip_empty, const char *what, uint64_t max_bytes,
                      size_t max_lines, struct dk_list *out, struct dk_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = (struct dk_list){0};
    if (dk_user_file_read(path, what, max_bytes, &text, &len, err) != 0)
        return -1;
    /* First pass: count, so the item array is allocated once at its final size. */
    size_t lines = 0;
    for (size_t i = 0; i < len; ++i) {
        if (text[i] == '\0') {
            free(text);
            return dk_fail(err, "%s:%zu: NUL byte in a text file", path, lines + 1);
        }
        if (text[i] == '\n' || i + 1 == len)
            ++lines;
    }
    if (lines > max_lines) {
        free(text);
        return dk_fail(err, "%s: %s of %zu lines exceeds the limit of %zu lines", path, what, lines,
                       max_lines);
    }
    out->text = text;
    out->items = malloc((lines ? lines : 1) * sizeof *out->items);
    if (!out->items) {
        dk_list_free(out);
        return dk_fail(err, "%s: out of memory for %zu lines", path, lines);
    }
    for (size_t pos = 0; pos < len;) {
        char *line = text + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - line) : len - pos;
        pos += l + (nl ? 1 : 0);
        line[l] = '\0'; /* the '\n', or the terminator dk_user_file_read added */
        while (l > 0 && line[l - 1] == '\r')
            line[--l] = '\0';
        if (skip_empty && l == 0)
            continue;
        out->items[out->n++] = line;
    }
    return 0;
}

int dk_list_read_lines(const char *path, bool skip_empty, struct dk_list *out, struct dk_error *err)
{
    return read_lines(path, skip_empty, "a list", DK_LIST_MAX_BYTES, DK_LIST_MAX_LINES, out, err);
}

int dk_list_read(const char *path, struct dk_list *out, struct dk_error *err)
{
    return read_lines(path, false, "a names or labels file", DK_NAMES_MAX_BYTES, DK_NAMES_MAX_LINES,
                      out, err);
}

int dk_list_read_paths(const char *path, struct dk_list *out, struct dk_error *err)
{
    return read_lines(path, true, "a list of image paths", DK_LIST_MAX_BYTES, DK_LIST_MAX_LINES,
                      out, err);
}

/* --------------------------------------------------------------- data sets */

void dk_dataset_close(struct dk_dataset *ds)
{
    if (!ds)
        return;
    free(ds->cls);
    free(ds->source);
    dk_list_free(&ds->paths);
    dk_list_free(&ds->labels);
    dk_idx_file_close(&ds->images);
    *ds = (struct dk_dataset){0};
}

/* darknet's fill_truth test: the number of labels found in path, and the
 * last one found. */
static int count_matches(const struct dk_dataset *ds, const char *path, int *which)
{
    int count = 0;
    *which = -1;
    for (size_t k = 0; k < ds->labels.n; ++k) {
        if (strstr(path, ds->labels.items[k])) {
            *which = (int)k;
            ++count;
        }
    }
    return count;
}

static int open_list(struct dk_dataset *ds, const char *images_path, char *const *labels,
                     size_t n_labels, struct dk_error *err)
{
    ds->kind = DK_DATASET_LIST;
    if (!labels || n_labels < (size_t)ds->classes)
        return dk_fail(err,
                       "\"%s\" is a list of image paths: finding each image's class needs %d "
                       "labels (the data file's labels= list), got %zu",
                       images_path, ds->classes, labels ? n_labels : 0);
    size_t cap = 0;
    for (int k = 0; k < ds->classes; ++k) {
        if (!labels[k] || labels[k][0] == '\0')
            return dk_fail(err,
                           "label %d of %d is empty: an empty label would match every path "
                           "in \"%s\"",
                           k, ds->classes, images_path);
        if (list_push(&ds->labels, &cap, labels[k]) != 0)
            return dk_fail(err, "out of memory copying %d labels", ds->classes);
    }
    if (dk_list_read_paths(images_path, &ds->paths, err) != 0)
        return -1;
    ds->count = ds->paths.n;
    if (ds->count == 0)
        return dk_fail(err, "\"%s\" lists no image paths", images_path);
    ds->cls = malloc(ds->count * sizeof *ds->cls);
    if (!ds->cls)
        return dk_fail(err, "out of memory for %zu items of \"%s\"", ds->count, images_path);
    for (size_t i = 0; i < ds->count; ++i) {
        int which = -1;
        ds->cls[i] = count_matches(ds, ds->paths.items[i], &which) == 1 ? which : -1;
        if (ds->cls[i] < 0)
            ++ds->unlabelled;
    }
    return 0;
}

static int open_idx(struct dk_dataset *ds, const char *images_path, const char *labels_path,
                    struct dk_error *err)
{
    ds->kind = DK_DATASET_IDX;
    if (dk_idx_open(images_path, &ds->images, err) != 0)
        return -1;
    const struct dk_idx_file *im = &ds->images;
    if (im->ndims != 3)
        return dk_fail(err,
                       "IDX image file \"%s\" has %d dimensions; images need 3 (count, rows, "
                       "columns)",
                       images_path, im->ndims);
    if (im->dims[1] > INT_MAX || im->dims[2] > INT_MAX ||
        dk_image_size((int)im->dims[2], (int)im->dims[1], 4) == 0)
        return dk_fail(err, "IDX image file \"%s\": images of %u x %u pixels are too large",
                       images_path, im->dims[1], im->dims[2]);
    ds->count = im->dims[0];
    ds->rows = (int)im->dims[1];
    ds->cols = (int)im->dims[2];
    ds->cls = malloc(ds->count * sizeof *ds->cls);
    if (!ds->cls)
        return dk_fail(err, "out of memory for %zu items of \"%s\"", ds->count, images_path);
    if (!labels_path) {
        for (size_t i = 0; i < ds->count; ++i)
            ds->cls[i] = -1;
        ds->unlabelled = ds->count;
        return 0;
    }
    struct dk_idx lab = {0};
    if (dk_idx_read(labels_path, &lab, err) != 0)
        return -1;
    int rc = -1;
    if (lab.ndims != 1) {
        dk_fail(err, "IDX label file \"%s\" has %d dimensions; labels need 1 (count)", labels_path,
                lab.ndims);
        goto out;
    }
    if (lab.dims[0] != ds->count) {
        dk_fail(err, "IDX files disagree: \"%s\" holds %zu images but \"%s\" holds %u labels",
                images_path, ds->count, labels_path, lab.dims[0]);
        goto out;
    }
    for (size_t i = 0; i < ds->count; ++i) {
        if (lab.data[i] >= ds->classes) {
            dk_fail(err, "IDX label file \"%s\": item %zu has label %u, but classes=%d",
                    labels_path, i, lab.data[i], ds->classes);
            goto out;
        }
        ds->cls[i] = lab.data[i];
    }
    rc = 0;
out:
    dk_idx_free(&lab);
    return rc;
}

int dk_dataset_open(struct dk_dataset *ds, const char *images_path, const char *labels_idx_path,
                    char *const *labels, size_t n_labels, int classes, struct dk_error *err)
{
    *ds = (struct dk_dataset){0};
    if (classes < 1)
        return dk_fail(err, "data set \"%s\": classes must be at least 1, got %d", images_path,
                       classes);
    ds->classes = classes;
    ds->source = strdup(images_path);
    if (!ds->source)
        return dk_fail(err, "out of memory opening \"%s\"", images_path);
    bool is_idx = false;
    int rc = dk_idx_probe(images_path, &is_idx, err);
    if (rc == 0 && is_idx) {
        rc = open_idx(ds, images_path, labels_idx_path, err);
    } else if (rc == 0 && labels_idx_path) {
        rc = dk_fail(err,
                     "\"%s\" is a list of image paths, not an IDX image file; the IDX label "
                     "file \"%s\" only goes with IDX images",
                     images_path, labels_idx_path);
    } else if (rc == 0) {
        rc = open_list(ds, images_path, labels, n_labels, err);
    }
    if (rc != 0)
        dk_dataset_close(ds);
    return rc;
}

/* Names quoted in dk_dataset_check_files' message. */
#define CHECK_NAMED 3

int dk_dataset_check_files(const struct dk_dataset *ds, struct dk_error *err)
{
    if (ds->kind != DK_DATASET_LIST)
        return 0;
    size_t bad = 0;
    char named[sizeof err->msg] = "";
    size_t used = 0;
    for (size_t i = 0; i < ds->count; ++i) {
        struct dk_error why;
        if (dk_user_file_check(ds->paths.items[i], &why) == 0)
            continue;
        /* The first few reasons are quoted (each already names its file). */
        if (bad < CHECK_NAMED && used < sizeof named) {
            int w = snprintf(named + used, sizeof named - used, "%s%s", bad ? "; " : "", why.msg);
            used += w > 0 ? (size_t)w : 0;
        }
        ++bad;
    }
    if (bad == 0)
        return 0;
    return dk_fail(err, "\"%s\": %zu of its %zu images cannot be read: %s%s", ds->source, bad,
                   ds->count, named, bad > CHECK_NAMED ? "; ..." : "");
}

size_t dk_dataset_count(const struct dk_dataset *ds)
{
    return ds->count;
}

size_t dk_dataset_unlabelled(const struct dk_dataset *ds)
{
    return ds->unlabelled;
}

/* Appends printf text to buf at *len, keeping it terminated; stops quietly when full. */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) DK_PRINTF(4, 5);
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (*len >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

/* "none" or "2 (rain, sun)": the labels found in path, at most 4 named. */
static void describe_matches(const struct dk_dataset *ds, const char *path, char *buf, size_t size,
                             size_t *len)
{
    int which = -1;
    const int n = count_matches(ds, path, &which);
    if (n == 0) {
        append(buf, size, len, "no label");
        return;
    }
    append(buf, size, len, "%d labels (", n);
    int named = 0;
    for (size_t k = 0; k < ds->labels.n && named < 4; ++k) {
        if (strstr(path, ds->labels.items[k]))
            append(buf, size, len, "%s%s", named++ ? ", " : "", ds->labels.items[k]);
    }
    append(buf, size, len, "%s)", n > 4 ? ", ..." : "");
}

size_t dk_dataset_label_report(const struct dk_dataset *ds, size_t max_named, char *buf,
                               size_t size)
{
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    if (ds->kind != DK_DATASET_LIST || ds->unlabelled == 0)
        return 0;
    append(buf, size, &len, "\"%s\": %zu of its %zu image paths match no label or several",
           ds->source, ds->unlabelled, ds->count);
    size_t named = 0;
    for (size_t i = 0; i < ds->count && named < max_named; ++i) {
        if (ds->cls[i] >= 0)
            continue;
        append(buf, size, &len, "\n  %s: ", ds->paths.items[i]);
        describe_matches(ds, ds->paths.items[i], buf, size, &len);
        named++;
    }
    if (ds->unlabelled > named)
        append(buf, size, &len, "\n  ... and %zu more", ds->unlabelled - named);
    return ds->unlabelled;
}

int dk_dataset_class(const struct dk_dataset *ds, size_t i)
{
    return i < ds->count ? ds->cls[i] : -1;
}

const char *dk_dataset_name(const struct dk_dataset *ds, size_t i, char *buf, size_t bufsize)
{
    if (ds->kind == DK_DATASET_LIST && i < ds->count)
        return ds->paths.items[i];
    if (buf && bufsize > 0)
        snprintf(buf, bufsize, "%s#%zu", ds->source ? ds->source : "", i);
    return buf;
}

/* Image bytes read from an IDX file at a time: a 28 x 28 image in one read. */
#define IDX_FILL_CHUNK 4096

/* IDX item i into an existing rows x cols x c image: plane 0 read from the file and
 * converted, the others copies of it. */
static int idx_fill(const struct dk_dataset *ds, size_t i, struct dk_image *im,
                    struct dk_error *err)
{
    const size_t plane = (size_t)ds->rows * (size_t)ds->cols;
    uint8_t buf[IDX_FILL_CHUNK];
    for (size_t p0 = 0; p0 < plane; p0 += IDX_FILL_CHUNK) {
        const size_t n = plane - p0 < IDX_FILL_CHUNK ? plane - p0 : IDX_FILL_CHUNK;
        if (dk_idx_file_read(&ds->images, i * plane + p0, n, buf, err) != 0)
            return -1;
        for (size_t p = 0; p < n; ++p)
            im->data[p0 + p] = dk_pixel_from_byte(buf[p]);
    }
    for (int k = 1; k < im->c; ++k)
        memcpy(im->data + (size_t)k * plane, im->data, plane * sizeof(float));
    return 0;
}

static int check_item(const struct dk_dataset *ds, size_t i, struct dk_error *err)
{
    if (i >= ds->count)
        return dk_fail(err, "data set \"%s\": item %zu requested, it has %zu", ds->source, i,
                       ds->count);
    return 0;
}

int dk_dataset_load(const struct dk_dataset *ds, size_t i, int channels, struct dk_image *out,
                    struct dk_error *err)
{
    *out = (struct dk_image){0};
    if (check_item(ds, i, err) != 0)
        return -1;
    if (channels < 0 || channels > 4)
        return dk_fail(err, "data set \"%s\": %d channels requested, expected 0 to 4", ds->source,
                       channels);
    if (ds->kind == DK_DATASET_LIST)
        return channels ? dk_image_load_net(ds->paths.items[i], channels, out, err)
                        : dk_image_load(ds->paths.items[i], 0, out, err);
    if (dk_image_make(out, ds->cols, ds->rows, channels ? channels : 1, err) != 0)
        return -1;
    if (idx_fill(ds, i, out, err) != 0) {
        dk_image_free(out);
        return -1;
    }
    return 0;
}

/* darknet's fill_truth for a path; for IDX the one-hot of the stored label. With
 * label smoothing (eps > 0), AlexeyAB's fill_truth_smooth: 1 - eps where a label matches,
 * eps / (classes - 1) elsewhere (one class: nothing elsewhere to spread to). */
static void fill_truth(const struct dk_dataset *ds, size_t i, float eps, float *y)
{
    const bool smooth = eps > 0 && ds->classes > 1;
    const float on = smooth ? 1 - eps : 1;
    const float off = smooth ? eps / (float)(ds->classes - 1) : 0;
    for (int k = 0; k < ds->classes; ++k)
        y[k] = off;
    if (ds->kind == DK_DATASET_LIST) {
        for (size_t k = 0; k < ds->labels.n; ++k)
            if (strstr(ds->paths.items[i], ds->labels.items[k]))
                y[k] = on;
        return;
    }
    if (ds->cls[i] >= 0)
        y[ds->cls[i]] = on;
}

static int check_shape(const struct dk_dataset *ds, int w, int h, int c, size_t *floats,
                       struct dk_error *err)
{
    *floats = c >= 1 && c <= 4 ? dk_image_size(w, h, c) : 0;
    if (*floats == 0)
        return dk_fail(err, "data set \"%s\": invalid input size %d x %d x %d (channels 1 to 4)",
                       ds->source, w, h, c);
    return 0;
}

/* Item i augmented into x (c*h*w floats); scratch is an IDX-sized image for IDX sets. */
static int augment_item(const struct dk_dataset *ds, size_t i, struct dk_image *scratch,
                        const struct dk_augment_params *aug, int w, int h, int c,
                        struct dnn_rng *rng, float *x, struct dk_error *err)
{
    if (ds->kind == DK_DATASET_IDX) {
        if (idx_fill(ds, i, scratch, err) != 0)
            return -1;
        return dk_augment_classifier(scratch, aug, w, h, rng, x, err);
    }
    struct dk_image im = {0};
    if (dk_image_load_net(ds->paths.items[i], c, &im, err) != 0)
        return -1;
    int r = dk_augment_classifier(&im, aug, w, h, rng, x, err);
    dk_image_free(&im);
    return r;
}

/* What mixing one batch needs besides the batch: up to three partner images and truths. */
struct mix_work {
    float *x[3]; /* (c*h*w) each */
    float *y[3]; /* (classes) each */
    float *blur; /* (w*h) */
};

/*
 * AlexeyAB mixes a whole batch or none of it (a coin per batch); each image of a mixed batch
 * gets its own partners, drawn at random from the whole set and augmented as any image.
 * Draws for image b: the kind (DK_MIX_EITHER only), the partners' indices, each partner's
 * augmentation in turn, then the rectangle or the mosaic centre.
 */
static int mix_batch(const struct dk_dataset *ds, struct dnn_rng *rng, int n, int w, int h, int c,
                     const struct dk_augment_params *aug, float *X, float *Y,
                     struct dk_image *scratch, struct mix_work *mw, struct dk_error *err)
{
    const size_t per = dk_image_size(w, h, c);
    const size_t cls = (size_t)ds->classes;
    if (dk_rand_int(rng, 0, 1) == 0)
        return 0;
    for (int b = 0; b < n; ++b) {
        float *x = X + (size_t)b * per;
        float *y = Y ? Y + (size_t)b * cls : NULL;
        const int kind = aug->mixup == DK_MIX_EITHER
                             ? dk_rand_int(rng, DK_MIX_CUTMIX, DK_MIX_MOSAIC)
                             : aug->mixup;
        const int partners = kind == DK_MIX_MOSAIC ? 3 : 1;
        size_t pick[3];
        for (int p = 0; p < partners; ++p)
            pick[p] = (size_t)(dnn_rng_u32(rng) % ds->count);
        for (int p = 0; p < partners; ++p) {
            if (augment_item(ds, pick[p], scratch, aug, w, h, c, rng, mw->x[p], err) != 0)
                return -1;
            fill_truth(ds, pick[p], aug->label_smooth_eps, mw->y[p]);
        }
        if (kind == DK_MIX_MIXUP) {
            dk_mix_mixup(x, mw->x[0], per, y, mw->y[0], ds->classes);
        } else if (kind == DK_MIX_CUTMIX) {
            struct dk_mix_rect r;
            dk_mix_cutmix_draw(rng, w, h, &r);
            dk_mix_cutmix(x, mw->x[0], w, h, c, &r, y, mw->y[0], ds->classes);
        } else {
            int cx = 0, cy = 0;
            dk_mix_mosaic_draw(rng, w, h, &cx, &cy);
            const float *const parts[3] = {mw->x[0], mw->x[1], mw->x[2]};
            const float *const ys[3] = {mw->y[0], mw->y[1], mw->y[2]};
            dk_mix_mosaic(x, parts, w, h, c, cx, cy, y, ys, ds->classes);
        }
    }
    return 0;
}

/* AlexeyAB blurs each image of the batch with probability 1/4 (one draw per image). */
static void blur_batch(struct dnn_rng *rng, int n, int w, int h, int c, int blur, float *X,
                       float *tmp)
{
    const size_t per = dk_image_size(w, h, c);
    for (int b = 0; b < n; ++b) {
        if (dnn_rng_u32(rng) % 4 == 0)
            dk_blur_gaussian(X + (size_t)b * per, w, h, c, dk_blur_ksize(blur), tmp);
    }
}

static void mix_work_free(struct mix_work *mw)
{
    for (int p = 0; p < 3; ++p) {
        free(mw->x[p]);
        free(mw->y[p]);
    }
    free(mw->blur);
    *mw = (struct mix_work){0};
}

/* Buffers for what aug turns on: partners for mixing, a plane for blurring. */
static int mix_work_make(const struct dk_augment_params *aug, size_t per, int w, int h, int classes,
                         struct mix_work *mw, struct dk_error *err)
{
    *mw = (struct mix_work){0};
    const int partners = aug->mixup == DK_MIX_NONE ? 0 : aug->mixup == DK_MIX_MIXUP ? 1 : 3;
    bool ok = true;
    for (int p = 0; p < partners; ++p) {
        mw->x[p] = malloc(per * sizeof(float));
        mw->y[p] = malloc((size_t)classes * sizeof(float));
        ok = ok && mw->x[p] && mw->y[p];
    }
    if (aug->blur) {
        mw->blur = malloc((size_t)w * (size_t)h * sizeof(float));
        ok = ok && mw->blur;
    }
    if (ok)
        return 0;
    mix_work_free(mw);
    return dk_fail(err, "out of memory for %s and blur buffers", dk_mix_kind_name(aug->mixup));
}

int dk_dataset_train_batch(const struct dk_dataset *ds, struct dnn_rng *rng, int n, int w, int h,
                           int c, const struct dk_augment_params *aug, float *X, float *Y,
                           struct dk_error *err)
{
    size_t per = 0;
    if (check_shape(ds, w, h, c, &per, err) != 0)
        return -1;
    if (n < 1)
        return dk_fail(err, "data set \"%s\": batch size must be at least 1, got %d", ds->source,
                       n);
    if (ds->count == 0)
        return dk_fail(err, "data set \"%s\" is empty", ds->source);
    if (dk_augment_check(aug, err) != 0)
        return -1;

    int rc = -1;
    struct dk_image scratch = {0};
    struct mix_work mw = {0};
    size_t *picks = malloc((size_t)n * sizeof *picks);
    if (!picks)
        return dk_fail(err, "out of memory for a batch of %d", n);
    if (mix_work_make(aug, per, w, h, ds->classes, &mw, err) != 0)
        goto out;
    /* All indices first, then the augmentation draws, as darknet. */
    for (int b = 0; b < n; ++b)
        picks[b] = (size_t)(dnn_rng_u32(rng) % ds->count);
    if (ds->kind == DK_DATASET_IDX && dk_image_make(&scratch, ds->cols, ds->rows, c, err) != 0)
        goto out;
    for (int b = 0; b < n; ++b) {
        size_t i = picks[b];
        if (augment_item(ds, i, &scratch, aug, w, h, c, rng, X + (size_t)b * per, err) != 0)
            goto out;
        if (Y)
            fill_truth(ds, i, aug->label_smooth_eps, Y + (size_t)b * (size_t)ds->classes);
    }
    /* Then, as AlexeyAB's load_data_augment: mixing, then blur. Neither draws when off, so
     * a cfg without them gets the batches it always got. */
    if (aug->mixup != DK_MIX_NONE &&
        mix_batch(ds, rng, n, w, h, c, aug, X, Y, &scratch, &mw, err) != 0)
        goto out;
    if (aug->blur)
        blur_batch(rng, n, w, h, c, aug->blur, X, mw.blur);
    rc = 0;
out:
    mix_work_free(&mw);
    dk_image_free(&scratch);
    free(picks);
    return rc;
}

int dk_dataset_eval_image(const struct dk_dataset *ds, size_t i, int w, int h, int c, float *X,
                          struct dk_error *err)
{
    size_t per = 0;
    if (check_shape(ds, w, h, c, &per, err) != 0)
        return -1;
    struct dk_image im = {0};
    if (dk_dataset_load(ds, i, c, &im, err) != 0)
        return -1;
    int rc = dk_image_prepare_eval(&im, w, h, X, err);
    dk_image_free(&im);
    return rc;
}
