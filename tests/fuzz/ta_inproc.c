/* ta_inproc.c - see ta_inproc.h. */
#define _GNU_SOURCE
#include "tests/fuzz/ta_inproc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif

#include "tee/ta/tsim_internal.h"
#include "tests/fuzz/fuzz_common.h"

static uintptr_t stack_lo, stack_hi;
static bool trace;

static void heap_poison_check(void);

/* A panic ends the TA instance: for a hostile normal world that is a denial of service the
 * TA's own checks should have prevented, so the fuzzer reports it as a crash. */
void TEE_Panic(TEE_Result panicCode)
{
    fprintf(stderr, "TEE_Panic(0x%08x): the TA panicked\n", (unsigned)panicCode);
    abort();
}

/* tsim_heap.c falls back to the process heap through these names, which the runtime's link
 * (-Wl,--wrap=malloc...) provides; here nothing is wrapped (libFuzzer's own allocations must
 * stay on the process heap), so they are the plain functions. The engine's arena therefore
 * comes from ASan's heap, which catches an overflow past its end; one from a buffer into the
 * next inside it is caught by the padding dnn/arena_poison.h poisons. */
void *__real_malloc(size_t size);
void *__real_realloc(void *ptr, size_t size);
void __real_free(void *ptr);

void *__real_malloc(size_t size)
{
    return malloc(size);
}

void *__real_realloc(void *ptr, size_t size)
{
    return realloc(ptr, size);
}

void __real_free(void *ptr)
{
    free(ptr);
}

/* Entry points run on the fuzzer's own thread stack here, so that stack is the TA stack
 * TEE_CheckMemoryAccessRights counts as TA-private (the key derivation writes into it). */
bool tsim_stack_owns(const void *buf, size_t len)
{
    uintptr_t a = (uintptr_t)buf;
    return a >= stack_lo && len <= stack_hi - a;
}

/* The TA's EMSG/IMSG lines: formatted always (a bad format is a bug the sanitizers should
 * see), printed only on request, since millions of refusals would drown the fuzzer's log. */
void tsim_trace_printf(const char *function, int line, int level, bool level_ok, const char *fmt,
                       ...)
{
    char buf[256];
    va_list ap;

    (void)level_ok;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (trace)
        fprintf(stderr, "%d/TA: %s:%d %s\n", level, function ? function : "", line, buf);
}

void ta_inproc_init(void)
{
    pthread_attr_t attr;
    void *lo = NULL;
    size_t size = 0;
    static char storage[64];

    if (pthread_getattr_np(pthread_self(), &attr) != 0 ||
        pthread_attr_getstack(&attr, &lo, &size) != 0) {
        fprintf(stderr, "ta_inproc: cannot find the stack\n");
        abort();
    }
    pthread_attr_destroy(&attr);
    stack_lo = (uintptr_t)lo;
    stack_hi = stack_lo + size;
    trace = getenv("FUZZ_TA_TRACE") != NULL;
    /* A secure storage of this process only: the device key (huk), the provisioning key and
     * rollback records of one fuzzing run never meet the user's. */
    snprintf(storage, sizeof storage, "%s/tee", fuzz_dir());
    setenv("DZ_TEE_STORAGE", storage, 1);
    if (!trace)
        setenv("DZ_TEE_LOG", "/dev/null", 1);
    if (tsim_heap_init(tsim_ta_props.data_size) != 0) {
        fprintf(stderr, "ta_inproc: cannot map a TA heap of %u bytes\n",
                (unsigned)tsim_ta_props.data_size);
        abort();
    }
    heap_poison_check();
    tsim_mem_init();
    if (TA_CreateEntryPoint() != TEE_SUCCESS)
        abort();
}

/* The fuzz targets are built with ASan: the TA heap (tsim_heap.c) must then poison what lies
 * past each block, or a TA overflow from one TEE_Malloc block into the next goes unseen.
 * (clang 14 does not define gcc's __SANITIZE_ADDRESS__, and for a while the heap tested
 * only that.) */
static void heap_poison_check(void)
{
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    unsigned char *p = TEE_Malloc(5, 0);
    const bool poisoned = p && __asan_address_is_poisoned(p + 5);
    TEE_Free(p);
    if (!poisoned) {
        fprintf(stderr, "ta_inproc: the TA heap does not poison past a block under ASan\n");
        abort();
    }
#endif
#endif
}

TEE_Result ta_inproc_open(void **session)
{
    static TEE_Param none[TEE_NUM_PARAMS];
    tsim_params_set(0, none);
    TEE_Result res = TA_OpenSessionEntryPoint(0, none, session);
    tsim_params_clear();
    return res;
}

TEE_Result ta_inproc_invoke(void *session, uint32_t cmd, uint32_t types,
                            TEE_Param params[TEE_NUM_PARAMS])
{
    tsim_params_set(types, params);
    TEE_Result res = TA_InvokeCommandEntryPoint(session, cmd, types, params);
    tsim_params_clear();
    return res;
}

void ta_inproc_close(void *session)
{
    TA_CloseSessionEntryPoint(session);
}

size_t ta_inproc_heap_used(void)
{
    struct tsim_heap_stats st;
    tsim_heap_get_stats(&st);
    return st.used;
}
