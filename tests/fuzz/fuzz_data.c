/*
 * fuzz_data.c - libFuzzer target: a `.data` file and the files it names, as `classifier
 * train|valid|predict` read them (host/data_options.c, darknet/dataset.c).
 *
 * Input: the .data text, NUL, a list file, NUL, a labels file, NUL, u16 LE n, n bytes of an
 * IDX image file, and the rest an IDX label file. They are written to the target's scratch
 * folder, which is also its working directory, as data.data, list.txt, labels.txt, images.idx
 * and labels.idx, beside two fixed images (cat.bmp, dog.png) a list may name. The .data keys
 * then name whichever of those the input says. The working directory is the scratch folder
 * only while an input runs (libFuzzer resolves its own corpus paths against the original
 * one; `make fuzz` passes absolute paths so that a crash's artifact lands in build-fuzz/).
 *
 * Paths: only bare file names (no '/') are followed, so that every file read is one of the
 * scratch folder's. Names such as /dev/zero or a FIFO are known to make readers grow or block
 * (issue 8, item 2 and 3, fixed in the readers separately); skipping them keeps the fuzzer on
 * parsing bugs instead of rediscovering those.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "darknet/dataset.h"
#include "dnn/dnn.h"
#include "host/data_options.h"
#include "tests/fuzz/fuzz_common.h"

#define W 5
#define H 4
#define C 3

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The directory libFuzzer started in. */
static int home = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t px[3 * 3 * 3];

    (void)argc;
    (void)argv;
    home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home < 0 || chdir(fuzz_dir()) != 0)
        abort();
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 37);
    if (!stbi_write_bmp("cat.bmp", 3, 3, 3, px) || !stbi_write_png("dog.png", 3, 3, 1, px, 3))
        abort();
    if (fchdir(home) != 0)
        abort();
    return 0;
}

static bool local_name(const char *path)
{
    return path && *path && !strchr(path, '/');
}

/* Takes bytes up to the next NUL (or the end) and skips the NUL. */
static size_t take_text(const uint8_t **p, size_t *left)
{
    const uint8_t *z = memchr(*p, 0, *left);
    size_t n = z ? (size_t)(z - *p) : *left;
    *p += n + (z != NULL);
    *left -= n + (z != NULL);
    return n;
}

static void open_split(const struct dz_data_options *o, const char *images, const char *idx_labels,
                       const struct dk_list *labels)
{
    struct dk_dataset ds;
    struct dk_error err;

    memset(&ds, 0, sizeof ds);
    if (!local_name(images) || (idx_labels && !local_name(idx_labels)) || o->classes <= 0 ||
        o->classes > 1000)
        return;
    if (dk_dataset_open(&ds, images, idx_labels, labels->items, labels->n, o->classes, &err) != 0)
        return;
    const size_t n = dk_dataset_count(&ds);
    char name[64];
    float *x = malloc(sizeof(float) * 2 * W * H * C);
    float *y = malloc(sizeof(float) * 2 * (size_t)o->classes);
    for (size_t i = 0; i < n && i < 3 && x; i++) {
        /* A list may name any file: follow only the scratch folder's. */
        if (ds.kind == DK_DATASET_LIST && !local_name(ds.paths.items[i]))
            continue;
        (void)dk_dataset_name(&ds, i, name, sizeof name);
        (void)dk_dataset_class(&ds, i);
        (void)dk_dataset_eval_image(&ds, i, W, H, C, x, &err);
    }
    bool all_local = true;
    for (size_t i = 0; ds.kind == DK_DATASET_LIST && i < n; i++)
        all_local = all_local && local_name(ds.paths.items[i]);
    if (x && y && n > 0 && all_local) {
        const struct dk_augment_params aug = {.min_crop = W,
                                              .max_crop = 2 * W,
                                              .angle = 7,
                                              .aspect = 1.2f,
                                              .hue = .1f,
                                              .saturation = 1.5f,
                                              .exposure = 1.5f,
                                              .flip = true,
                                              .center = false};
        struct dnn_rng rng;
        dnn_rng_seed(&rng, 1);
        (void)dk_dataset_train_batch(&ds, &rng, 2, W, H, C, &aug, x, y, &err);
    }
    free(x);
    free(y);
    dk_dataset_close(&ds);
}

static void run(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{

    if (chdir(fuzz_dir()) != 0)
        abort();
    run(data, size);
    if (fchdir(home) != 0)
        abort();
    return 0;
}

static void run(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    size_t left = size;
    struct dz_data_options o;
    struct dk_error err;
    struct dk_list labels = {0}, names = {0};

    const uint8_t *text = p;
    size_t n = take_text(&p, &left);
    fuzz_write(0, "data.data", text, n);
    text = p;
    n = take_text(&p, &left);
    fuzz_write(1, "list.txt", text, n);
    text = p;
    n = take_text(&p, &left);
    fuzz_write(2, "labels.txt", text, n);
    size_t idx_len = left >= 2 ? (size_t)(p[0] | p[1] << 8) : 0;
    p += left >= 2 ? 2 : left;
    left -= left >= 2 ? 2 : left;
    if (idx_len > left)
        idx_len = left;
    fuzz_write(3, "images.idx", p, idx_len);
    fuzz_write(4, "labels.idx", p + idx_len, left - idx_len);

    if (dz_data_options_read("data.data", &o, &err) != 0)
        return;
    if (local_name(o.labels))
        (void)dk_list_read(o.labels, &labels, &err);
    if (local_name(o.names))
        (void)dk_list_read(o.names, &names, &err);
    open_split(&o, o.train, o.train_labels, &labels);
    open_split(&o, o.valid, o.valid_labels, &labels);
    dk_list_free(&labels);
    dk_list_free(&names);
    dz_data_options_free(&o);
}
