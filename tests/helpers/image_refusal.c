/* image_refusal.c - see image_refusal.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "darknet/image.h"
#include "tests/helpers/image_refusal.h"

int image_load_result(const char *path, int channels, struct dk_error *err)
{
    struct dk_image im = {0};
    int rc = dk_image_load(path, channels, &im, err);
    if (rc == 0)
        dk_image_free(&im);
    else
        assert_null(im.data);
    return rc;
}
