/*
 * fuzz_image.c - libFuzzer target: image files (PNG, JPEG, BMP and whatever else stb_image
 * decodes) through darknet/image.c, then the classifier's two preprocessing paths on the
 * result, as `predict` and `valid` run them on a user's image.
 *
 * The channel count asked for is the input's size modulo 5 (0 = the file's own, 1..4 as stb
 * converts), so one seed file exercises several conversions as the fuzzer grows it.
 * Images over MAX_PIXELS (256 x 256; from the header, stbi_info_from_memory) are skipped:
 * resizing a big image is arithmetic, not parsing, and would only
 * slow the search.
 */
#include <stdint.h>
#include <stdlib.h>

#include <stb/stb_image.h>

#include "darknet/image.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_PIXELS (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dk_error err;
    struct dk_image im = {0}, out = {0};
    int w = 0, h = 0, c = 0;

    if (size > (size_t)INT32_MAX)
        return 0;
    if (stbi_info_from_memory(data, (int)size, &w, &h, &c) &&
        (uint64_t)w * (uint64_t)h > MAX_PIXELS)
        return 0;
    const char *path = fuzz_write(0, "in.img", data, size);
    if (dk_image_load(path, (int)(size % 5), &im, &err) != 0)
        return 0;
    if (dk_image_prepare_predict(&im, 7, 5, &out, &err) == 0)
        dk_image_free(&out);
    float *x = malloc(sizeof(float) * 5 * 7 * (size_t)im.c);
    if (x)
        (void)dk_image_prepare_eval(&im, 5, 7, x, &err);
    free(x);
    dk_image_free(&im);
    return 0;
}
