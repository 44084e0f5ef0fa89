/*
 * idx2png - writes image INDEX of an IDX image file (MNIST, Fashion-MNIST;
 * gzipped or not) as an 8-bit gray PNG, so a data set's own images can be fed
 * to `darknetp classifier predict`.
 *
 *   idx2png IMAGES.idx[.gz] INDEX OUT.png
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <stb/stb_image_write.h>

#include "darknet/idx.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: idx2png IMAGES.idx[.gz] INDEX OUT.png\n");
        return 2;
    }
    char *end = NULL;
    errno = 0;
    unsigned long index = strtoul(argv[2], &end, 10);
    if (errno || end == argv[2] || *end) {
        fprintf(stderr, "idx2png: INDEX must be a number, got '%s'\n", argv[2]);
        return 2;
    }
    struct dk_error err = {{0}};
    struct dk_idx idx = {0};
    if (dk_idx_read(argv[1], &idx, &err) != 0) {
        fprintf(stderr, "idx2png: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    if (idx.ndims != 3) {
        fprintf(stderr, "idx2png: %s: expected images (3 dimensions), found %d\n", argv[1],
                idx.ndims);
        goto out;
    }
    if (index >= idx.dims[0]) {
        fprintf(stderr, "idx2png: %s holds %u images; index %lu is out of range\n", argv[1],
                idx.dims[0], index);
        goto out;
    }
    int rows = (int)idx.dims[1], cols = (int)idx.dims[2];
    const unsigned char *pixels = idx.data + (size_t)index * (size_t)rows * (size_t)cols;
    if (!stbi_write_png(argv[3], cols, rows, 1, pixels, cols)) {
        fprintf(stderr, "idx2png: cannot write %s\n", argv[3]);
        goto out;
    }
    rc = 0;
out:
    dk_idx_free(&idx);
    return rc;
}
