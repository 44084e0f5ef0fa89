/*
 * tee_fakes.c - see tee_fakes.h. The heap fake keeps a header before every
 * block to count live blocks and to check, at TEE_Free, that the code under
 * test wiped what it frees.
 */
#define _XOPEN_SOURCE 700
#include "tee_fakes.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsim_ta.h"

#define HEAP_MAGIC 0x7ee4ea9u

struct block {
    size_t size;
    size_t magic;
    max_align_t align[];
};

static TEE_UUID fake_uuid = {0x11111111, 0x2222, 0x3333, {4, 4, 5, 5, 6, 6, 7, 7}};
static const char *fake_dir;
static size_t heap_live;
static size_t heap_bytes;
static size_t heap_limit;
static size_t heap_unwiped;
static size_t sys_live;
static size_t trace_lines;
static const unsigned char *shared_buf;
static size_t shared_len;

void tsim_fake_set_uuid(const TEE_UUID *uuid)
{
    fake_uuid = *uuid;
}

void tsim_fake_set_storage_dir(const char *dir)
{
    fake_dir = dir;
}

const TEE_UUID *tsim_ta_uuid(void)
{
    return &fake_uuid;
}

const char *tsim_storage_dir(void)
{
    return fake_dir;
}

void tsim_fake_set_shared(const void *buf, size_t len)
{
    shared_buf = buf;
    shared_len = len;
}

TEE_Result TEE_CheckMemoryAccessRights(uint32_t accessFlags, void *buffer, size_t size)
{
    uintptr_t a = (uintptr_t)buffer;
    uintptr_t lo = (uintptr_t)shared_buf;

    if (!size || !shared_len || (accessFlags & TEE_MEMORY_ACCESS_ANY_OWNER))
        return TEE_SUCCESS;
    return a < lo + shared_len && a + size > lo ? TEE_ERROR_ACCESS_DENIED : TEE_SUCCESS;
}

size_t tsim_fake_heap_live(void)
{
    return heap_live;
}

size_t tsim_fake_heap_unwiped_frees(void)
{
    return heap_unwiped;
}

void tsim_fake_heap_set_limit(size_t bytes)
{
    heap_limit = bytes;
}

size_t tsim_fake_sys_live(void)
{
    return sys_live;
}

size_t tsim_fake_trace_lines(void)
{
    return trace_lines;
}

void *TEE_Malloc(size_t size, uint32_t hint)
{
    struct block *b = NULL;

    if (heap_limit && (size > heap_limit || heap_bytes > heap_limit - size))
        return NULL;
    b = malloc(sizeof(*b) + (size ? size : 1));
    if (!b)
        return NULL;
    b->size = size;
    b->magic = HEAP_MAGIC;
    if (hint == TEE_MALLOC_FILL_ZERO)
        memset(b + 1, 0, size);
    heap_live++;
    heap_bytes += size;
    return b + 1;
}

void TEE_Free(void *buffer)
{
    struct block *b = NULL;
    const unsigned char *p = buffer;

    if (!buffer)
        return;
    b = (struct block *)buffer - 1;
    if (b->magic != HEAP_MAGIC) {
        fprintf(stderr, "TEE_Free of a pointer TEE_Malloc did not return\n");
        abort();
    }
    for (size_t i = 0; i < b->size; i++) {
        if (p[i]) {
            heap_unwiped++;
            break;
        }
    }
    b->magic = 0;
    heap_live--;
    heap_bytes -= b->size;
    free(b);
}

void *tsim_sys_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p)
        sys_live++;
    return p;
}

void tsim_sys_free(void *ptr)
{
    if (!ptr)
        return;
    sys_live--;
    free(ptr);
}

void TEE_Panic(TEE_Result panicCode)
{
    fprintf(stderr, "TEE_Panic(0x%08x)\n", (unsigned)panicCode);
    _exit(TSIM_FAKE_PANIC_STATUS);
}

void tsim_trace_printf(const char *function, int line, int level, bool level_ok, const char *fmt,
                       ...)
{
    va_list ap;

    (void)level_ok;
    trace_lines++;
    if (!getenv("TSIM_FAKE_TRACE"))
        return;
    fprintf(stderr, "%c/TA: ", "MEIDF"[level >= 0 && level <= 4 ? level : 0]);
    if (function)
        fprintf(stderr, "%s:%d ", function, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool tsim_fake_panics(void (*fn)(void *arg), void *arg)
{
    int status = 0;
    pid_t pid = 0;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        /* Quiet: the expected panic message would clutter the test log. */
        if (!freopen("/dev/null", "w", stderr))
            _exit(1);
        fn(arg);
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == TSIM_FAKE_PANIC_STATUS;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tsim_fake_rmtree(const char *dir)
{
    (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
