#include "tests/helpers/fixtures.h"

#include <stdio.h>
#include <stdlib.h>

void fixture_dir(const char *name, char *out, size_t size)
{
    snprintf(out, size, "tests/fixtures/%s", name);
}

const char *darknetp_path(void)
{
    const char *p = getenv("DZ_DARKNETP");
    return p && *p ? p : "bin/darknetp";
}
