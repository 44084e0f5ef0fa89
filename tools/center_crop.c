/*
 * center_crop - writes the centred W x H window of an image as an 8-bit RGB PNG.
 *
 *   center_crop IN OUT.png W H
 *
 * For tools/compare-upstream.sh: an image of exactly the network's size is fed
 * unchanged by pjreddie's letterbox, AlexeyAB's resize_min + crop and darknetp,
 * so the comparison tests the networks, not three resizing rules. Cropping (not
 * scaling) keeps real photo pixels without a resampler of our own. Always three
 * channels, so that a one-channel network sees what darknet's load_image_color
 * gives it. Exit status 2 when the image is smaller than W x H or unreadable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

static int parse_size(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 8192)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int w = 0, h = 0;
    if (argc != 5 || parse_size(argv[3], &w) || parse_size(argv[4], &h)) {
        fprintf(stderr, "usage: center_crop IN OUT.png W H (W, H in 1..8192)\n");
        return 2;
    }
    int iw = 0, ih = 0, ic = 0;
    unsigned char *in = stbi_load(argv[1], &iw, &ih, &ic, 3);
    if (!in) {
        fprintf(stderr, "center_crop: %s: %s\n", argv[1], stbi_failure_reason());
        return 2;
    }
    if (iw < w || ih < h) {
        fprintf(stderr, "center_crop: %s is %dx%d, smaller than %dx%d\n", argv[1], iw, ih, w, h);
        stbi_image_free(in);
        return 2;
    }
    int x0 = (iw - w) / 2, y0 = (ih - h) / 2;
    /* The window starts inside the image, so rows can be addressed in place:
     * stride is the source image's row length. */
    const unsigned char *first = in + ((size_t)y0 * (size_t)iw + (size_t)x0) * 3;
    int ok = stbi_write_png(argv[2], w, h, 3, first, iw * 3);
    stbi_image_free(in);
    if (!ok) {
        fprintf(stderr, "center_crop: cannot write %s\n", argv[2]);
        return 2;
    }
    return 0;
}
