/*
 * dz-tee-core: the simulated secure world's core process.
 *
 * Started by TEEC_InitializeContext (one core per context) with the context's socket on fd 3.
 * It finds TAs by UUID as <uuid>.ta in $DZ_TA_DIR (default: the build's ta folder, compiled
 * in), starts one process per TA instance, hands each new session a socket straight to its
 * instance, enforces single-instance sharing and keep-alive, and reaps instances. It exits,
 * killing its instances, when the context's socket closes (TEEC_FinalizeContext or the death
 * of the client process). Nothing here touches TA memory or parameters.
 *
 * Secure memory: like OP-TEE's fixed secure pool, all the cores of a user share one pool of
 * DZ_TEE_POOL_BYTES (default TSIM_POOL_DEFAULT) through the file DZ_TEE_POOL_FILE (default
 * /dev/shm/dz-tee-pool-<uid>; tsim_pool.h). A starting instance says what it will commit (heap
 * and stack) before it allocates anything; the core takes that from the pool or refuses the
 * open with TEEC_ERROR_OUT_OF_MEMORY (origin TEE, as OP-TEE's ldelf does), and gives the bytes
 * back when the instance's process has ended (last session closed, panic, crash, or the whole
 * context gone); if the core itself dies, the kernel gives them back with its files.
 */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"
#include "tee/common/tsim_proto.h"
#include "tee/core/tsim_pool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <tee_client_api.h>
#include <unistd.h>
#include <user_ta_header.h>

#ifndef TSIM_DEFAULT_TA_DIR
#define TSIM_DEFAULT_TA_DIR "/usr/lib/optee_armtz"
#endif

/* How long a starting TA may take to say hello (ASan builds start slowly). */
#define HELLO_TIMEOUT_MS 30000

/*
 * How long an open that does not fit waits for instances already told to end (their last
 * session closed) to exit and give their memory back: TA_DestroyEntryPoint runs first.
 */
#define DESTROY_WAIT_MS 30000

/* Exit status of a TA process after TEE_Panic (tee/ta/tsim_internal.h). */
#define TSIM_EXIT_PANIC 101

struct instance {
    struct instance *next;
    pid_t pid;
    int ctl; /* control socket */
    struct tsim_uuid uuid;
    char name[37];              /* UUID string */
    uint32_t flags;             /* TA_FLAGS */
    uint64_t clients_sent;      /* TSIM_CTL_NEW_CLIENT messages sent */
    bool dying;                 /* TSIM_CTL_DESTROY sent: not given new sessions */
    bool terminated;            /* sent SIGTERM by shutdown_all: no report of that death */
    uint64_t cost;              /* bytes of the pool it holds until its process is reaped */
    struct tsim_pool_hold hold; /* those bytes, in the pool file */
};

static struct instance *instances;
static const char *ta_dir;
static uint64_t pool_total; /* DZ_TEE_POOL_BYTES */
static struct tsim_pool pool;
static const struct tsim_uuid pta_system_uuid = {
    0x3a2f8978, 0x5dc0, 0x11e8, {0x9c, 0x2d, 0xfa, 0x7a, 0xe0, 0x1b, 0xbe, 0xbc}};

static void reap(struct instance *in)
{
    int status = 0;
    pid_t r;

    close(in->ctl);
    in->ctl = -1;
    do {
        r = waitpid(in->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == in->pid && WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL &&
        !(in->terminated && WTERMSIG(status) == SIGTERM))
        tsim_console_printf('E', "TC", "TA %s (pid %d) died of signal %d", in->name, (int)in->pid,
                            WTERMSIG(status));
    else if (r == in->pid && WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
             WEXITSTATUS(status) != TSIM_EXIT_PANIC)
        tsim_console_printf('E', "TC", "TA %s (pid %d) exited with status %d", in->name,
                            (int)in->pid, WEXITSTATUS(status));
}

/* Unlinks @in, reaps its process and returns its memory to the pool (the process is gone). */
static void remove_instance(struct instance *in)
{
    for (struct instance **p = &instances; *p; p = &(*p)->next) {
        if (*p == in) {
            *p = in->next;
            break;
        }
    }
    if (in->ctl >= 0)
        reap(in);
    tsim_pool_release(&in->hold);
    free(in);
}

/* Handles one message or end of file on an instance's control socket. */
static void instance_event(struct instance *in)
{
    struct tsim_msg m;
    int fds[1];
    int rc = tsim_recv(in->ctl, &m, fds, 1);

    if (fds[0] >= 0)
        close(fds[0]);
    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        remove_instance(in);
        return;
    }
    if (m.kind != TSIM_CTL_IDLE || in->dying)
        return;
    /* Sessions handed out after the instance went idle keep it alive. */
    if (m.id != in->clients_sent)
        return;
    bool keep = (in->flags & TA_FLAG_SINGLE_INSTANCE) &&
                (in->flags & TA_FLAG_INSTANCE_KEEP_ALIVE) && m.created;
    if (keep)
        return;
    struct tsim_msg d;
    tsim_msg_init(&d, TSIM_CTL_DESTROY);
    in->dying = true;
    if (tsim_send(in->ctl, &d, NULL, 0) < 0) {
        remove_instance(in);
        return;
    }
    /* Cores waiting for memory now know this instance's is coming back. */
    tsim_pool_ending(&in->hold);
}

/* Processes whatever the instances have already said, without waiting. */
static void drain_instances(void)
{
    bool again = true;
    while (again) {
        again = false;
        for (struct instance *in = instances; in; in = in->next) {
            struct pollfd p = {.fd = in->ctl, .events = POLLIN};
            if (poll(&p, 1, 0) > 0) {
                instance_event(in);
                again = true; /* the list may have changed */
                break;
            }
        }
    }
}

/* Milliseconds of the monotonic clock, for deadlines. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How often an open that waits for other cores' ending instances looks at the pool again. */
#define ENDING_POLL_MS 10

/*
 * Takes @cost bytes from the pool for @in. When they do not fit but enough are held by
 * instances that are ending (told to destroy themselves after their last session closed, by
 * this core or another), waits for those to exit first: on OP-TEE a closed session's instance
 * is gone when TEEC_CloseSession returns, so an open right after a close must not fail because
 * a core has not reaped it yet. This core's own ending instances say when they exit (end of
 * file); another core's are only seen in the pool file, so it is looked at again every
 * ENDING_POLL_MS.
 * @c: when refused, what the pool had free and ending at the last look.
 * Return: true if taken.
 */
static bool pool_take(struct instance *in, uint64_t cost, struct tsim_pool_census *c)
{
    const int64_t deadline = now_ms() + DESTROY_WAIT_MS;

    for (;;) {
        int rc = tsim_pool_take(&pool, cost, &in->hold, c);
        if (rc > 0)
            return true;
        if (rc < 0) {
            tsim_console_printf('E', "TC", "secure-memory pool %s: %s", pool.path, strerror(-rc));
            return false;
        }
        int64_t left = deadline - now_ms();
        if (c->free + c->ending < cost || left <= 0)
            return false;
        /* Wait for any of this core's ending instances to say something (end of file). */
        struct pollfd p[64];
        nfds_t n = 0;
        for (struct instance *i = instances; i && n < 64; i = i->next)
            if (i->dying)
                p[n++] = (struct pollfd){.fd = i->ctl, .events = POLLIN};
        rc = poll(p, n, left < ENDING_POLL_MS ? (int)left : ENDING_POLL_MS);
        if (rc < 0 && errno != EINTR)
            return false;
        drain_instances();
    }
}

static void child_exec(const char *path, int ctl, pid_t core)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != core)
        _exit(127);
    if (ctl == TSIM_INHERITED_FD) {
        if (fcntl(ctl, F_SETFD, 0) < 0)
            _exit(127);
    } else if (dup2(ctl, TSIM_INHERITED_FD) < 0) {
        _exit(127);
    }
    char *const argv[] = {(char *)path, NULL};
    execv(path, argv);
    _exit(127);
}

/*
 * Tells a starting instance, whose memory the pool has granted, to commit its heap and stack,
 * and waits for it to say it did. Return: TEEC_SUCCESS, or the error to answer the open with.
 */
static uint32_t commit(struct instance *in)
{
    struct tsim_msg m;
    int fds[1];

    tsim_msg_init(&m, TSIM_CTL_COMMIT);
    if (tsim_send(in->ctl, &m, NULL, 0) < 0)
        return TEEC_ERROR_GENERIC;
    struct pollfd p = {.fd = in->ctl, .events = POLLIN};
    int rc = poll(&p, 1, HELLO_TIMEOUT_MS);
    rc = rc > 0 ? tsim_recv(in->ctl, &m, fds, 1) : -ETIMEDOUT;
    if (rc == 0 && fds[0] >= 0)
        close(fds[0]);
    if (rc < 0 || m.kind != TSIM_CTL_READY)
        return TEEC_ERROR_GENERIC;
    return m.result == TEEC_SUCCESS ? TEEC_SUCCESS : TEEC_ERROR_OUT_OF_MEMORY;
}

/* Starts an instance of TA @u; on failure returns NULL with *res set. */
static struct instance *spawn(const struct tsim_uuid *u, uint32_t *res)
{
    char name[37];
    char path[PATH_MAX];
    int sv[2];
    struct instance *in = NULL;

    tsim_uuid_str(u, name);
    if (snprintf(path, sizeof(path), "%s/%s.ta", ta_dir, name) >= (int)sizeof(path) ||
        access(path, F_OK) != 0) {
        *res = TEEC_ERROR_ITEM_NOT_FOUND;
        return NULL;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        *res = TEEC_ERROR_OUT_OF_MEMORY;
        return NULL;
    }
    pid_t core = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, sv[1], core);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        *res = TEEC_ERROR_OUT_OF_MEMORY;
        return NULL;
    }
    in = calloc(1, sizeof(*in));
    if (!in) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        *res = TEEC_ERROR_OUT_OF_MEMORY;
        return NULL;
    }
    tsim_pool_hold_init(&in->hold);
    in->pid = pid;
    in->ctl = sv[0];
    in->uuid = *u;
    memcpy(in->name, name, sizeof(name));

    struct pollfd p = {.fd = in->ctl, .events = POLLIN};
    struct tsim_msg hello;
    int fds[1];
    int rc = poll(&p, 1, HELLO_TIMEOUT_MS);
    if (rc > 0)
        rc = tsim_recv(in->ctl, &hello, fds, 1);
    else
        rc = -ETIMEDOUT;
    if (rc == 0 && fds[0] >= 0)
        close(fds[0]);
    if (rc < 0 || hello.kind != TSIM_CTL_HELLO) {
        tsim_console_printf('E', "TC", "TA %s could not be started (%s)", name,
                            rc < 0 ? strerror(-rc) : "no hello");
        kill(pid, SIGKILL);
        reap(in);
        free(in);
        *res = TEEC_ERROR_GENERIC;
        return NULL;
    }
    if (memcmp(&hello.uuid, u, sizeof(*u)) != 0) {
        char other[37];
        tsim_uuid_str(&hello.uuid, other);
        tsim_console_printf('E', "TC", "%s holds TA %s, not the requested one", path, other);
        kill(pid, SIGKILL);
        reap(in);
        free(in);
        *res = TEEC_ERROR_SECURITY;
        return NULL;
    }
    uint64_t cost = 0;
    bool refused = false;
    struct tsim_pool_census census = {0, 0};
    if (hello.result == TEEC_SUCCESS &&
        (__builtin_add_overflow(hello.id, (uint64_t)TSIM_INSTANCE_OVERHEAD, &cost) ||
         !pool_take(in, cost, &census))) {
        tsim_console_printf('E', "TC",
                            "TA %s: out of secure memory: an instance needs %llu bytes "
                            "(TA_DATA_SIZE %u, TA_STACK_SIZE %u, overhead %u), %llu of the "
                            "pool's %llu are free (DZ_TEE_POOL_BYTES, shared by every "
                            "context through %s)",
                            name, (unsigned long long)cost, (unsigned)hello.data_size,
                            (unsigned)hello.stack_size, TSIM_INSTANCE_OVERHEAD,
                            (unsigned long long)census.free, (unsigned long long)pool_total,
                            pool.path);
        hello.result = TEEC_ERROR_OUT_OF_MEMORY;
        refused = true;
        cost = 0;
    }
    if (hello.result == TEEC_SUCCESS)
        hello.result = commit(in);
    if (hello.result != TEEC_SUCCESS) {
        /* As OP-TEE when ldelf cannot map the TA: out of memory, origin TEE. */
        if (!refused)
            tsim_console_printf('E', "TC",
                                "TA %s: no memory for TA_DATA_SIZE %u + TA_STACK_SIZE %u", name,
                                (unsigned)hello.data_size, (unsigned)hello.stack_size);
        kill(pid, SIGKILL);
        reap(in);
        tsim_pool_release(&in->hold);
        free(in);
        *res = hello.result;
        return NULL;
    }
    in->cost = cost;
    in->flags = hello.ta_flags;
    in->next = instances;
    instances = in;
    return in;
}

static struct instance *find_shared(const struct tsim_uuid *u)
{
    for (struct instance *in = instances; in; in = in->next)
        if (!in->dying && (in->flags & TA_FLAG_SINGLE_INSTANCE) &&
            memcmp(&in->uuid, u, sizeof(*u)) == 0)
            return in;
    return NULL;
}

/* TSIM_CORE_OPEN: a socket to a (new or shared) instance of the TA, or an error. */
static void handle_open(int host, const struct tsim_msg *req)
{
    struct tsim_msg rep;
    int sv[2] = {-1, -1};
    uint32_t res = TEEC_SUCCESS;

    tsim_msg_init(&rep, TSIM_CORE_REPLY);
    rep.origin = TEEC_ORIGIN_TEE;
    drain_instances();
    if (memcmp(&req->uuid, &pta_system_uuid, sizeof(pta_system_uuid)) == 0) {
        res = TEEC_ERROR_ACCESS_DENIED; /* pseudo-TAs serve TAs only */
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        res = TEEC_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        struct instance *in = find_shared(&req->uuid);
        if (!in)
            in = spawn(&req->uuid, &res);
        if (!in)
            goto out;
        struct tsim_msg nc;
        tsim_msg_init(&nc, TSIM_CTL_NEW_CLIENT);
        if (tsim_send(in->ctl, &nc, &sv[1], 1) == 0) {
            in->clients_sent++;
            res = TEEC_SUCCESS;
            goto out;
        }
        remove_instance(in); /* died meanwhile: start afresh */
        res = TEEC_ERROR_TARGET_DEAD;
    }
out:
    rep.result = res;
    if (res == TEEC_SUCCESS)
        tsim_send(host, &rep, &sv[0], 1);
    else
        tsim_send(host, &rep, NULL, 0);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
}

/* True once @pid has ended; it stays a zombie for reap(). */
static bool has_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/*
 * Ends every instance: SIGTERM first, on which an instance writes the console lines it holds
 * (tsim_console.h) and dies, then SIGKILL for any still there after SHUTDOWN_GRACE_MS, so
 * that the end of a context never waits on an instance for longer.
 */
#define SHUTDOWN_GRACE_MS 200
static void shutdown_all(void)
{
    for (struct instance *in = instances; in; in = in->next) {
        in->terminated = true;
        kill(in->pid, SIGTERM);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (struct instance *in = instances; in; in = in->next) {
        for (;;) {
            if (has_exited(in->pid))
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            const long ms =
                (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (ms >= SHUTDOWN_GRACE_MS)
                break;
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
        kill(in->pid, SIGKILL);
    }
    while (instances)
        remove_instance(instances);
}

/*
 * The terminal's job-control signals are not for the secure world: TEEC_InitializeContext
 * already starts the core in a session of its own with them ignored, and ignoring them here
 * too keeps it so whoever starts the core. The TA instances inherit this across exec. The core
 * still ends with its context (end of file on its socket), its instances with the core.
 */
static void ignore_job_signals(void)
{
    static const int job_signals[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
    for (size_t i = 0; i < sizeof job_signals / sizeof job_signals[0]; i++)
        signal(job_signals[i], SIG_IGN);
}

/*
 * parse_size() - Read DZ_TEE_POOL_BYTES: a decimal number of bytes, optionally followed by K,
 * M or G (binary multiples: KiB, MiB, GiB).
 * Return: 0, or -1 for anything else (empty, signs, spaces, other suffixes, overflow).
 */
static int parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++)
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return -1;
    unsigned shift = 0;
    if (*p == 'K')
        shift = 10;
    else if (*p == 'M')
        shift = 20;
    else if (*p == 'G')
        shift = 30;
    if (shift)
        p++;
    if (*p || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = v << shift;
    return 0;
}

/*
 * Joins the pool file: DZ_TEE_POOL_FILE, or /dev/shm/dz-tee-pool-<uid> (/tmp when there is no
 * /dev/shm), one per user as the file must be the user's own. The first core to attach when
 * none is fixes the pool's size; later ones must agree with it, or their context does not
 * start: a second figure is refused, never guessed.
 * Return: TEEC_SUCCESS, or the error for the context's hello.
 */
static uint32_t attach_pool(void)
{
    char def[64];
    const char *path = getenv("DZ_TEE_POOL_FILE");
    if (!path || !*path) {
        snprintf(def, sizeof(def), "%s/dz-tee-pool-%u",
                 access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp", (unsigned)geteuid());
        path = def;
    }
    uint64_t other = 0;
    int rc = tsim_pool_attach(&pool, path, pool_total, &other);
    if (rc == 0)
        return TEEC_SUCCESS;
    if (rc == -EBUSY)
        tsim_console_printf('E', "TC",
                            "DZ_TEE_POOL_BYTES is %llu but the secure-memory pool %s, in use by "
                            "other contexts, has %llu: set the same size, or another "
                            "DZ_TEE_POOL_FILE",
                            (unsigned long long)pool_total, path, (unsigned long long)other);
    else if (rc == -EPERM)
        tsim_console_printf('E', "TC",
                            "secure-memory pool %s: not a regular file of this user "
                            "(DZ_TEE_POOL_FILE)",
                            path);
    else
        tsim_console_printf('E', "TC", "secure-memory pool %s: %s (DZ_TEE_POOL_FILE)", path,
                            strerror(-rc));
    return TEEC_ERROR_BAD_STATE;
}

/*
 * TSIM_CORE_SYNC, sent by TEEC_CloseSession once the TA answered the close: the instance told
 * this core it is idle before that answer, so handling that now marks its memory as ending in
 * the pool file before the client goes on. An open that follows, from any context, then
 * waits for that memory instead of being refused.
 */
static void handle_sync(int host)
{
    struct tsim_msg rep;
    drain_instances();
    tsim_msg_init(&rep, TSIM_CORE_REPLY);
    rep.result = TEEC_SUCCESS;
    tsim_send(host, &rep, NULL, 0);
}

static bool is_seqpacket(int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

int main(int argc, char **argv)
{
    (void)argv;
    prctl(PR_SET_DUMPABLE, 0);
    signal(SIGPIPE, SIG_IGN);
    ignore_job_signals();
    if (argc != 1 || !is_seqpacket(TSIM_INHERITED_FD)) {
        fprintf(stderr, "dz-tee-core: started by TEEC_InitializeContext only\n");
        return 2;
    }
    fcntl(TSIM_INHERITED_FD, F_SETFD, FD_CLOEXEC);
    close_range(TSIM_INHERITED_FD + 1, ~0U, 0);
    /* The secure world prints to its console only. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        close(null);
    }
    tsim_console_init();
    ta_dir = getenv("DZ_TA_DIR");
    if (!ta_dir || !*ta_dir)
        ta_dir = TSIM_DEFAULT_TA_DIR;
    struct tsim_msg hello;
    tsim_msg_init(&hello, TSIM_CORE_REPLY);
    hello.result = TEEC_SUCCESS;
    const char *pool = getenv("DZ_TEE_POOL_BYTES");
    pool_total = TSIM_POOL_DEFAULT;
    if (pool && *pool && parse_size(pool, &pool_total) != 0) {
        /* A wrong setting is refused, never guessed: the context does not start. */
        tsim_console_printf('E', "TC",
                            "DZ_TEE_POOL_BYTES=%s: not a size (bytes, or a number with K, M "
                            "or G)",
                            pool);
        hello.result = TEEC_ERROR_BAD_PARAMETERS;
    }
    if (hello.result == TEEC_SUCCESS)
        hello.result = attach_pool();
    if (tsim_send(TSIM_INHERITED_FD, &hello, NULL, 0) < 0 || hello.result != TEEC_SUCCESS)
        return 1;

    for (;;) {
        size_t n = 1;
        for (struct instance *in = instances; in; in = in->next)
            n++;
        struct pollfd *p = calloc(n, sizeof(*p));
        if (!p)
            break;
        p[0].fd = TSIM_INHERITED_FD;
        p[0].events = POLLIN;
        size_t k = 1;
        for (struct instance *in = instances; in; in = in->next, k++) {
            p[k].fd = in->ctl;
            p[k].events = POLLIN;
        }
        int rc = poll(p, n, -1);
        if (rc < 0 && errno != EINTR) {
            free(p);
            break;
        }
        bool host_event = rc > 0 && p[0].revents;
        bool inst_event = false;
        for (k = 1; rc > 0 && k < n; k++)
            inst_event = inst_event || p[k].revents;
        free(p);
        if (inst_event)
            drain_instances();
        if (!host_event)
            continue;
        struct tsim_msg m;
        int fds[1];
        int r = tsim_recv(TSIM_INHERITED_FD, &m, fds, 1);
        if (fds[0] >= 0)
            close(fds[0]);
        if (r == -EPIPE || (r < 0 && r != -EBADMSG && r != -EAGAIN))
            break; /* the context is gone */
        if (r == 0 && m.kind == TSIM_CORE_OPEN)
            handle_open(TSIM_INHERITED_FD, &m);
        else if (r == 0 && m.kind == TSIM_CORE_SYNC)
            handle_sync(TSIM_INHERITED_FD);
    }
    shutdown_all();
    return 0;
}
