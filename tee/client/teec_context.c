/*
 * Simulated TEE, client side: contexts and shared memory.
 *
 * TEEC_InitializeContext starts the secure world: it forks and execs the core binary,
 * $DZ_TEE_CORE or the build's tee/dz-tee-core (TSIM_DEFAULT_CORE, compiled in), with the
 * context's socket on fd 3, and waits for the core's hello. TEEC_FinalizeContext closes the
 * socket, which makes the core kill its TA instances and exit, and reaps the core.
 *
 * The core runs in a session of its own, with the terminal's job-control signals ignored: a
 * Ctrl-C in the client's terminal signals the whole foreground process group, and the secure
 * world must outlive it so that the client can still save what the TA holds.
 */
#define _GNU_SOURCE
#include "tee/client/tsim_client.h"
#include "tee/common/tsim_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TSIM_DEFAULT_CORE
#define TSIM_DEFAULT_CORE "dz-tee-core"
#endif

/* How long the core may take to start (ASan builds start slowly). */
#define CORE_HELLO_TIMEOUT_MS 30000

static atomic_int next_shm_id = 1;

/*
 * In the forked child, before exec: takes the future core out of the client's session and
 * process group, so the terminal's Ctrl-C, Ctrl-\ and Ctrl-Z (sent to the foreground group)
 * never reach the secure world. The signals stay ignored across exec (and in the TA instances
 * the core forks) for any other way they might be sent to a whole group. All signals are
 * blocked on entry, so none lands between fork and setsid; @mask is the client's mask, restored
 * before exec. Only async-signal-safe calls: the client may be multithreaded.
 */
static void leave_terminal(const sigset_t *mask)
{
    static const int job_signals[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    for (size_t i = 0; i < sizeof job_signals / sizeof job_signals[0]; i++)
        sigaction(job_signals[i], &ign, NULL);
    /* The client's handlers would run in this copy of it until exec. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGTERM, &dfl, NULL);
    if (setsid() < 0)
        _exit(127);
    sigprocmask(SIG_SETMASK, mask, NULL);
}

static void reap_core(pid_t pid)
{
    pid_t r;
    do {
        r = waitpid(pid, NULL, 0);
    } while (r < 0 && errno == EINTR);
}

TEEC_Result TEEC_InitializeContext(const char *name, TEEC_Context *context)
{
    int sv[2];
    struct tsim_context *c = NULL;

    if (!context)
        return TEEC_ERROR_BAD_PARAMETERS;
    context->fd = -1;
    context->imp = NULL;
    if (name)
        return TEEC_ERROR_ITEM_NOT_FOUND; /* only the default TEE exists */
    const char *core = getenv("DZ_TEE_CORE");
    if (!core || !*core)
        core = TSIM_DEFAULT_CORE;
    if (access(core, X_OK) != 0)
        return TEEC_ERROR_ITEM_NOT_FOUND;
    c = calloc(1, sizeof(*c));
    if (!c)
        return TEEC_ERROR_OUT_OF_MEMORY;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return TEEC_ERROR_OUT_OF_MEMORY;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        goto err_mem;
    char *const argv[] = {(char *)core, NULL};
    sigset_t all, old_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: the client may be multithreaded. */
        leave_terminal(&old_mask);
        if (sv[1] == TSIM_INHERITED_FD) {
            if (fcntl(sv[1], F_SETFD, 0) < 0)
                _exit(127);
        } else if (dup2(sv[1], TSIM_INHERITED_FD) < 0) {
            _exit(127);
        }
        execv(core, argv);
        _exit(127);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        goto err_mem;
    }
    c->core = sv[0];
    c->core_pid = pid;

    struct pollfd p = {.fd = c->core, .events = POLLIN};
    struct tsim_msg hello;
    int fds[1];
    int rc = poll(&p, 1, CORE_HELLO_TIMEOUT_MS);
    rc = rc > 0 ? tsim_recv(c->core, &hello, fds, 1) : -ETIMEDOUT;
    if (rc == 0 && fds[0] >= 0)
        close(fds[0]);
    if (rc < 0 || hello.kind != TSIM_CORE_REPLY || hello.result != TEEC_SUCCESS) {
        close(c->core);
        kill(pid, SIGKILL);
        reap_core(pid);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return TEEC_ERROR_COMMUNICATION;
    }
    context->fd = c->core;
    context->imp = c;
    return TEEC_SUCCESS;

err_mem:
    pthread_mutex_destroy(&c->lock);
    free(c);
    return TEEC_ERROR_OUT_OF_MEMORY;
}

void TEEC_FinalizeContext(TEEC_Context *context)
{
    if (!context || !context->imp)
        return;
    struct tsim_context *c = context->imp;
    struct tsim_session *s;

    /* Sessions left open are dropped; the core kills their instances. */
    while ((s = tsim_context_pop_session(c)))
        tsim_session_destroy(s);
    close(c->core);
    reap_core(c->core_pid);
    pthread_mutex_destroy(&c->lock);
    free(c);
    context->imp = NULL;
    context->fd = -1;
}

static bool valid_flags(uint32_t flags)
{
    return flags && !(flags & ~(uint32_t)(TEEC_MEM_INPUT | TEEC_MEM_OUTPUT));
}

TEEC_Result TEEC_RegisterSharedMemory(TEEC_Context *context, TEEC_SharedMemory *sharedMem)
{
    if (!context || !context->imp || !sharedMem)
        return TEEC_ERROR_BAD_PARAMETERS;
    if (!valid_flags(sharedMem->flags) || !sharedMem->buffer)
        return TEEC_ERROR_BAD_PARAMETERS;
    sharedMem->id = atomic_fetch_add(&next_shm_id, 1);
    sharedMem->alloced_size = sharedMem->size;
    sharedMem->registered_fd = -1;
    sharedMem->imp = context->imp;
    sharedMem->imp_flags = TSIM_SHM_REGISTERED;
    return TEEC_SUCCESS;
}

TEEC_Result TEEC_AllocateSharedMemory(TEEC_Context *context, TEEC_SharedMemory *sharedMem)
{
    if (!context || !context->imp || !sharedMem)
        return TEEC_ERROR_BAD_PARAMETERS;
    if (!valid_flags(sharedMem->flags))
        return TEEC_ERROR_BAD_PARAMETERS;
    /* As OP-TEE's libteec: a zero-sized block still gets a (small) buffer. */
    size_t len = sharedMem->size ? sharedMem->size : 8;
    if (len > (size_t)INT64_MAX)
        return TEEC_ERROR_OUT_OF_MEMORY;
    int fd = memfd_create("dz-tee-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return TEEC_ERROR_OUT_OF_MEMORY;
    if (ftruncate(fd, (off_t)len) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        close(fd);
        return TEEC_ERROR_OUT_OF_MEMORY;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return TEEC_ERROR_OUT_OF_MEMORY;
    }
    sharedMem->buffer = p;
    sharedMem->id = atomic_fetch_add(&next_shm_id, 1);
    sharedMem->alloced_size = len;
    sharedMem->registered_fd = fd;
    sharedMem->imp = context->imp;
    sharedMem->imp_flags = TSIM_SHM_ALLOCATED;
    return TEEC_SUCCESS;
}

void TEEC_ReleaseSharedMemory(TEEC_SharedMemory *sharedMemory)
{
    if (!sharedMemory || !sharedMemory->imp)
        return;
    if (sharedMemory->imp_flags & TSIM_SHM_ALLOCATED) {
        tsim_context_forget_shm(sharedMemory->imp, sharedMemory->id);
        munmap(sharedMemory->buffer, sharedMemory->alloced_size);
        close(sharedMemory->registered_fd);
        sharedMemory->buffer = NULL;
    }
    sharedMemory->id = -1;
    sharedMemory->alloced_size = 0;
    sharedMemory->registered_fd = -1;
    sharedMemory->imp = NULL;
    sharedMemory->imp_flags = 0;
}
