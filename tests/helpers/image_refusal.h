/* image_refusal.h - loading a hostile image in a test and asserting how it is refused
 * (darknet/image.h). */
#ifndef TESTS_IMAGE_REFUSAL_H
#define TESTS_IMAGE_REFUSAL_H

#include "darknet/error.h"

/* dk_image_load(path, channels): on success the image is freed at once; on refusal the
 * image must have been left empty (a cmocka failure otherwise). Returns its result. */
int image_load_result(const char *path, int channels, struct dk_error *err);

/* Fails the test unless loading path with channels is refused with a message holding both
 * path and text. */
#define ASSERT_IMAGE_REFUSED(path, channels, text)                                                 \
    do {                                                                                           \
        struct dk_error err_ = {{0}};                                                              \
        assert_int_equal(image_load_result(path, channels, &err_), -1);                            \
        if (!strstr(err_.msg, path) || !strstr(err_.msg, text))                                    \
            fail_msg("expected '%s' in '%s'", text, err_.msg);                                     \
    } while (0)

#endif
