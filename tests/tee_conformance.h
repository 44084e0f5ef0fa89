/*
 * tee_conformance.h - helpers of the simulated TEE's conformance tests (test_tee_client.c,
 * test_tee_ta.c): a scratch folder for the secure storage and the secure console, sessions
 * to the conformance TA, and counts of open descriptors and descendant processes.
 */
#ifndef TESTS_TEE_CONFORMANCE_H
#define TESTS_TEE_CONFORMANCE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <tee_client_api.h>
#include <time.h>
#include <unistd.h>

#include "tests/ta/conformance/include/conformance_ta.h"

static const TEEC_UUID conf_uuid = TA_CONFORMANCE_UUID;

struct tee_env {
    char dir[64];     /* scratch folder */
    char log[96];     /* DZ_TEE_LOG */
    char storage[96]; /* DZ_TEE_STORAGE */
};

/* Points the secure console and storage at a fresh scratch folder. Return: 0 or -1. */
static inline int tee_env_setup(struct tee_env *e)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/dz-tee-test-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->log, sizeof(e->log), "%s/console.log", e->dir);
    snprintf(e->storage, sizeof(e->storage), "%s/storage", e->dir);
    setenv("DZ_TEE_LOG", e->log, 1);
    setenv("DZ_TEE_STORAGE", e->storage, 1);
    /* These tests read the console between calls: each line is written at once
     * (tests/test_tee_console.c tests the held lines). */
    setenv("DZ_TEE_LOG_HOLD_MS", "0", 1);
    return 0;
}

static inline void tee_env_teardown(struct tee_env *e)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
    unsetenv("DZ_TEE_LOG");
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG_HOLD_MS");
}

/* True if the secure console file contains @needle. */
static inline int tee_log_contains(const struct tee_env *e, const char *needle)
{
    FILE *f = fopen(e->log, "r");
    char line[512];
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Number of open file descriptors of this process. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* Number of processes descending from this one (children, grandchildren...). */
static inline int count_descendants(void)
{
    enum { MAXP = 4096 };
    static int pid[MAXP], ppid[MAXP];
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)) && n < MAXP) {
        char path[300];
        char buf[512];
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        int p = 0;
        if (!rp || sscanf(rp + 2, "%*c %d", &p) != 1)
            continue;
        pid[n] = atoi(de->d_name);
        ppid[n++] = p;
    }
    closedir(d);
    /* Fixed point over the parent links: mark descendants of getpid(). */
    static char mark[MAXP];
    memset(mark, 0, sizeof(mark));
    int changed = 1, count = 0;
    while (changed) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (mark[i])
                continue;
            int is = ppid[i] == (int)getpid();
            for (int j = 0; !is && j < n; j++)
                is = mark[j] && pid[j] == ppid[i];
            if (is) {
                mark[i] = 1;
                count++;
                changed = 1;
            }
        }
    }
    return count;
}

/* Waits up to 5 s for the number of descendants to drop to @want; returns the last count. */
static inline int wait_descendants(int want)
{
    int n = count_descendants();
    for (int i = 0; i < 500 && n > want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        n = count_descendants();
    }
    return n;
}

#endif /* TESTS_TEE_CONFORMANCE_H */
