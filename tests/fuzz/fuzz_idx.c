/*
 * fuzz_idx.c - libFuzzer target: IDX files (MNIST's format), plain or gzipped, through
 * darknet/idx.c: the probe that tells an IDX file from a list of paths, then the reader.
 */
#include <stdbool.h>
#include <stdint.h>

#include "darknet/idx.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dk_error err;
    struct dk_idx idx = {0};
    bool is_idx = false;
    const char *path = fuzz_write(0, "in.idx", data, size);

    (void)dk_idx_probe(path, &is_idx, &err);
    if (dk_idx_read(path, &idx, &err) == 0) {
        /* The reader promises size == the product of the dimensions: touch the last byte. */
        volatile uint8_t last = idx.size ? idx.data[idx.size - 1] : 0;
        (void)last;
    }
    dk_idx_free(&idx);
    return 0;
}
