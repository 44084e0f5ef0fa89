/* Simulated TEE, TA environment: the TA's identity and the secure storage folder. */
#define _GNU_SOURCE
#include "tee/ta/tsim_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const TEE_UUID *tsim_ta_uuid(void)
{
    return &tsim_ta_props.uuid;
}

void tsim_uuid_string(const TEE_UUID *u, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    int o = 0;

    b[0] = (uint8_t)(u->timeLow >> 24);
    b[1] = (uint8_t)(u->timeLow >> 16);
    b[2] = (uint8_t)(u->timeLow >> 8);
    b[3] = (uint8_t)u->timeLow;
    b[4] = (uint8_t)(u->timeMid >> 8);
    b[5] = (uint8_t)u->timeMid;
    b[6] = (uint8_t)(u->timeHiAndVersion >> 8);
    b[7] = (uint8_t)u->timeHiAndVersion;
    memcpy(b + 8, u->clockSeqAndNode, 8);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* mkdir -p; the last component gets @mode. Return: 0 or -1. */
static int make_dirs(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
}

const char *tsim_storage_dir(void)
{
    static char dir[PATH_MAX];
    static bool ready;
    const char *env = getenv("DZ_TEE_STORAGE");
    const char *home = getenv("HOME");
    int n;

    if (ready)
        return dir;
    if (env && *env)
        n = snprintf(dir, sizeof(dir), "%s", env);
    else if (home && *home)
        n = snprintf(dir, sizeof(dir), "%s/.local/share/darknetp/tee", home);
    else
        n = snprintf(dir, sizeof(dir), "/tmp/darknetp-tee-%u", (unsigned)getuid());
    if (n <= 0 || (size_t)n >= sizeof(dir) || make_dirs(dir, 0700) != 0)
        return NULL;
    ready = true;
    return dir;
}
