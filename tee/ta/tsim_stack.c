/*
 * Simulated TEE, TA stack and crashes.
 *
 * Entry points run on a stack of their own (TA_STACK_SIZE plus TSIM_STACK_SLACK) with
 * TSIM_STACK_GUARD inaccessible bytes below it, entered with makecontext/swapcontext. A fault
 * (stack overflow into the guard, a NULL write, a touch of shared memory outside an invocation,
 * an abort) is caught on an alternate signal stack, logged on the secure console as OP-TEE's
 * core would, and ends the instance by the same signal, so every session of the instance sees
 * TEEC_ERROR_TARGET_DEAD.
 */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"
#include "tee/common/tsim_proto.h"
#include "tee/ta/tsim_internal.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <dlfcn.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define ALTSTACK_SIZE (64u * 1024u)
#define MAX_SHARED 64

static ucontext_t main_ctx;
static ucontext_t ta_ctx;
static unsigned char *stack_lo; /* lowest usable byte */
static size_t stack_len;        /* usable bytes */
static unsigned char *guard_lo; /* guard: [guard_lo, stack_lo) */
static void (*call_fn)(void *);
static void *call_arg;
#ifdef __SANITIZE_ADDRESS__
static const void *main_bottom;
static size_t main_size;
#endif

static struct {
    uintptr_t lo, hi;
} shared[MAX_SHARED];

int tsim_stack_init(size_t size)
{
    size_t len = tsim_page_round(size);

    if (!len)
        return -1;
    unsigned char *p = mmap(NULL, len + TSIM_STACK_GUARD, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    /* Committed like the heap: the core's pool counts it. */
    if (mprotect(p + TSIM_STACK_GUARD, len, PROT_READ | PROT_WRITE) != 0 ||
        tsim_commit(p + TSIM_STACK_GUARD, len) != 0)
        return -1;
    guard_lo = p;
    stack_lo = p + TSIM_STACK_GUARD;
    stack_len = len;
    return 0;
}

bool tsim_stack_owns(const void *buf, size_t len)
{
    uintptr_t a = (uintptr_t)buf;
    uintptr_t lo = (uintptr_t)stack_lo;
    return stack_lo && a >= lo && len <= stack_len && a - lo <= stack_len - len;
}

static void trampoline(void)
{
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(NULL, &main_bottom, &main_size);
#endif
    call_fn(call_arg);
#ifdef __SANITIZE_ADDRESS__
    /* This fiber ends: uc_link resumes the main stack. */
    __sanitizer_start_switch_fiber(NULL, main_bottom, main_size);
#endif
}

#ifdef __SANITIZE_ADDRESS__
/*
 * ASan's swapcontext interceptor warns on every instance; the switches are announced to it
 * with the fiber API instead, so call libc's own function.
 */
static int (*libc_swapcontext)(ucontext_t *, const ucontext_t *);

static int switch_context(ucontext_t *from, const ucontext_t *to)
{
    if (!libc_swapcontext) {
        void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        void *sym = libc ? dlsym(libc, "swapcontext") : NULL;
        libc_swapcontext = sym ? (int (*)(ucontext_t *, const ucontext_t *))sym : swapcontext;
    }
    return libc_swapcontext(from, to);
}
#else
#define switch_context swapcontext
#endif

void tsim_stack_call(void (*fn)(void *), void *arg)
{
    call_fn = fn;
    call_arg = arg;
    if (getcontext(&ta_ctx) != 0)
        TEE_Panic(TEE_ERROR_GENERIC);
    ta_ctx.uc_stack.ss_sp = stack_lo;
    ta_ctx.uc_stack.ss_size = stack_len;
    ta_ctx.uc_link = &main_ctx;
    makecontext(&ta_ctx, trampoline, 0);
#ifdef __SANITIZE_ADDRESS__
    void *fake = NULL;
    ASAN_UNPOISON_MEMORY_REGION(stack_lo, stack_len);
    __sanitizer_start_switch_fiber(&fake, stack_lo, stack_len);
#endif
    if (switch_context(&main_ctx, &ta_ctx) != 0)
        TEE_Panic(TEE_ERROR_GENERIC);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

void tsim_shared_region_add(const void *base, size_t size)
{
    for (int i = 0; i < MAX_SHARED; i++) {
        if (!shared[i].lo) {
            shared[i].lo = (uintptr_t)base;
            shared[i].hi = (uintptr_t)base + size;
            return;
        }
    }
}

void tsim_shared_region_remove(const void *base)
{
    for (int i = 0; i < MAX_SHARED; i++)
        if (shared[i].lo == (uintptr_t)base)
            shared[i].lo = shared[i].hi = 0;
}

/* Async-signal-safe text building for the crash handler. */
struct line {
    char buf[256];
    size_t n;
};

static void put(struct line *l, const char *s)
{
    while (*s && l->n < sizeof(l->buf) - 1)
        l->buf[l->n++] = *s++;
}

static void put_hex(struct line *l, uintptr_t v)
{
    char tmp[2 + 2 * sizeof(v) + 1];
    int i = (int)sizeof(tmp) - 1;
    tmp[i] = '\0';
    do {
        tmp[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v && i > 2);
    tmp[--i] = 'x';
    tmp[--i] = '0';
    put(l, tmp + i);
}

static void put_dec(struct line *l, unsigned long v)
{
    char tmp[24];
    int i = (int)sizeof(tmp) - 1;
    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    put(l, tmp + i);
}

static const char *signame(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGILL:
        return "SIGILL";
    case SIGFPE:
        return "SIGFPE";
    case SIGABRT:
        return "SIGABRT";
    case SIGTRAP:
        return "SIGTRAP";
    default:
        return "signal";
    }
}

/* Dies of @sig with its default action, so that the core sees how the instance ended. */
static void die_of(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    struct line l = {.n = 0};
    char uuid[37];
    uintptr_t addr = (uintptr_t)si->si_addr;
    bool fault = sig == SIGSEGV || sig == SIGBUS;

    tsim_uuid_string(&tsim_ta_props.uuid, uuid);
    put(&l, "E/TC: TA ");
    put(&l, uuid);
    if (fault && addr >= (uintptr_t)guard_lo && addr < (uintptr_t)stack_lo) {
        put(&l, ": stack overflow (TA_STACK_SIZE ");
        put_dec(&l, tsim_ta_props.stack_size);
        put(&l, "), fault at ");
        put_hex(&l, addr);
    } else {
        put(&l, " crashed: ");
        put(&l, signame(sig));
        if (fault) {
            put(&l, " at address ");
            put_hex(&l, addr);
            for (int i = 0; i < MAX_SHARED; i++)
                if (addr >= shared[i].lo && addr < shared[i].hi)
                    put(&l, " (shared memory used outside an invocation)");
        }
    }
    put(&l, "\n");
    tsim_console_write(l.buf, l.n);

    /*
     * Tell the core first: closing the control socket now makes the instance unusable for
     * new sessions before any client sees its session socket close (the kernel releases an
     * exiting process's sockets in no set order).
     */
    close(TSIM_INHERITED_FD);
    die_of(sig);
}

/* The core ends a context's instances with SIGTERM (tee/core/dz_tee_core.c, shutdown_all):
 * the held console lines are written, then the instance dies of the signal as before. */
static void term_handler(int sig)
{
    tsim_console_flush();
    die_of(sig);
}

void tsim_crash_handlers_init(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
    stack_t ss;
    void *alt =
        mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt != MAP_FAILED) {
        ss.ss_sp = alt;
        ss.ss_size = ALTSTACK_SIZE;
        ss.ss_flags = 0;
        sigaltstack(&ss, NULL);
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    struct sigaction term;
    memset(&term, 0, sizeof(term));
    term.sa_handler = term_handler;
    sigemptyset(&term.sa_mask);
    sigaction(SIGTERM, &term, NULL);
}
