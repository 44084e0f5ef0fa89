#include "tests/helpers/fixtures.h"

#include <stdio.h>
#include <stdlib.h>

void fixture_dir(const char *name, char *out, size_t size)
{
    const char *shared = getenv("DZ_SHARED");
    snprintf(out, size, "%s/fixtures/%s", shared && *shared ? shared : "../shared", name);
}

const char *darknetp_path(void)
{
    const char *p = getenv("DZ_DARKNETP");
    return p && *p ? p : "bin/darknetp";
}
