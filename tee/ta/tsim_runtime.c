/*
 * Simulated TEE, the TA instance: the process the core starts for <uuid>.ta, with the control
 * socket on fd 3 (see tee/common/tsim_proto.h).
 *
 * One thread serves the control socket and every session socket of the instance with poll(),
 * one request at a time, as an OP-TEE instance serves one call at a time. For each call it maps
 * the shared regions the host sent (checking size and seals), turns the message into
 * TEE_Param[4] with every memref bounds-checked against its region, opens exactly those regions
 * (they are PROT_NONE between calls, so a TA that keeps a memref pointer past its call faults),
 * runs the entry point on the TA stack, closes the regions again and answers with the output
 * values and sizes.
 *
 * Start: the instance first tells the core what it will commit (TSIM_CTL_HELLO), allocates
 * nothing until the core's secure-memory pool grants it (TSIM_CTL_COMMIT), then commits its
 * heap and stack and says so (TSIM_CTL_READY).
 *
 * Lifetime: TA_CreateEntryPoint runs with the first session; when the last session is gone the
 * instance tells the core it is idle, and the core answers TSIM_CTL_DESTROY unless the TA is a
 * keep-alive single instance; then TA_DestroyEntryPoint runs and the process exits.
 */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"
#include "tee/common/tsim_cpu.h"
#include "tee/common/tsim_proto.h"
#include "tee/common/tsim_spin.h"
#include "tee/ta/tsim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <user_ta_header.h>

/* Most allocated blocks one session may have mapped at once. */
#define MAX_MAPS_PER_SESSION 256

struct mapping {
    uint64_t id;
    unsigned char *base;
    size_t size;
};

struct client {
    int sock;
    bool has_session;
    void *session_ctx;
    bool cancel_masked;
    unsigned char *bounce; /* PROT_NONE between calls */
    size_t bounce_size;
    struct tsim_bounce_hdr *hdr; /* a second, always accessible mapping of the header */
    struct mapping *maps;
    size_t n_maps;
    size_t cap_maps;
};

/* Shared regions (their whole mapping) made accessible for one call. */
struct open_set {
    unsigned char *base[TEE_NUM_PARAMS];
    size_t size[TEE_NUM_PARAMS];
    int n;
};

enum entry { EP_CREATE, EP_DESTROY, EP_OPEN, EP_INVOKE, EP_CLOSE };

struct entry_call {
    enum entry which;
    uint32_t types;
    TEE_Param *params;
    void *session_ctx;
    uint32_t cmd;
    TEE_Result res;
};

/*
 * The regions accessible now: those of the last call. They are closed lazily, when an entry
 * point runs without them, instead of after each call: no TA code runs between calls, so the
 * TA still reaches exactly the current call's regions whenever it runs, and a command that
 * uses the same block as the last one (every FORWARD of a session) costs no mprotect() at all.
 */
static struct open_set opened;

static struct client **clients;
static size_t n_clients, cap_clients;
static bool created;
static uint64_t accepted;
static size_t n_sessions;
static size_t page_size;
/* Spin or block for the next request (tee/common/tsim_spin.h): keyed by the command last
 * answered, since what the host does next, and how long it takes, depends on it. */
static struct tsim_spin spin;
static uint32_t last_cmd;
static uint64_t last_reply_ns;

static void entry_trampoline(void *arg)
{
    struct entry_call *c = arg;
    switch (c->which) {
    case EP_CREATE:
        c->res = TA_CreateEntryPoint();
        break;
    case EP_DESTROY:
        TA_DestroyEntryPoint();
        break;
    case EP_OPEN:
        c->res = TA_OpenSessionEntryPoint(c->types, c->params, &c->session_ctx);
        break;
    case EP_INVOKE:
        c->res = TA_InvokeCommandEntryPoint(c->session_ctx, c->cmd, c->types, c->params);
        break;
    case EP_CLOSE:
        TA_CloseSessionEntryPoint(c->session_ctx);
        break;
    }
}

static void apply_regions(const struct open_set *want);

/* Runs an entry point on the TA stack with @cl's cancellation state and @params in scope,
 * with exactly the shared regions @regions (NULL: none) accessible. */
static void run_entry(struct entry_call *c, struct client *cl, const struct open_set *regions)
{
    static TEE_Param none[TEE_NUM_PARAMS];
    static const struct open_set no_regions = {.n = 0};
    apply_regions(regions ? regions : &no_regions);
    tsim_cancel_bind(cl && cl->hdr ? &cl->hdr->cancel : NULL, cl ? &cl->cancel_masked : NULL);
    tsim_params_set(c->params ? c->types : 0, c->params ? c->params : none);
    tsim_stack_call(entry_trampoline, c);
    tsim_params_clear();
    tsim_cancel_bind(NULL, NULL);
}

void TEE_Panic(TEE_Result panicCode)
{
    char uuid[37];
    tsim_uuid_string(&tsim_ta_props.uuid, uuid);
    tsim_console_printf('E', "TC", "TA %s panicked with code 0x%08x", uuid, (unsigned)panicCode);
    fflush(stdout);
    /* The core must know before any client does (see the crash handler). */
    close(TSIM_INHERITED_FD);
    _exit(TSIM_EXIT_PANIC);
}

/* Maps @size bytes of a sealed memfd, inaccessible until opened. NULL if it is not one. */
static unsigned char *map_region(int fd, uint64_t size)
{
    struct stat st;
    if (fd < 0 || size == 0 || size > SIZE_MAX || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < size)
        return NULL;
    /* Sealed against shrinking (no SIGBUS in the TA), not against writing (mapped RW). */
    int seals = fcntl(fd, F_GET_SEALS);
    int no_write = F_SEAL_WRITE;
#ifdef F_SEAL_FUTURE_WRITE
    no_write |= F_SEAL_FUTURE_WRITE;
#endif
    if (seals < 0 || !(seals & F_SEAL_SHRINK) || (seals & no_write))
        return NULL;
    void *p = mmap(NULL, (size_t)size, PROT_NONE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    tsim_shared_region_add(p, (size_t)size);
    return p;
}

static void unmap_region(unsigned char *base, size_t size)
{
    if (!base)
        return;
    /* No longer open: its address may be reused by the next mapping. */
    for (int i = 0; i < opened.n; i++) {
        if (opened.base[i] == base) {
            opened.base[i] = opened.base[opened.n - 1];
            opened.size[i] = opened.size[--opened.n];
            break;
        }
    }
    tsim_shared_region_remove(base);
    munmap(base, size);
}

static struct mapping *find_map(struct client *cl, uint64_t id)
{
    for (size_t i = 0; i < cl->n_maps; i++)
        if (cl->maps[i].id == id)
            return &cl->maps[i];
    return NULL;
}

static void forget_map(struct client *cl, uint64_t id)
{
    struct mapping *m = find_map(cl, id);
    if (!m)
        return;
    unmap_region(m->base, m->size);
    *m = cl->maps[--cl->n_maps];
}

static bool add_map(struct client *cl, uint64_t id, int fd, uint64_t size)
{
    if (cl->n_maps == MAX_MAPS_PER_SESSION)
        return false;
    if (cl->n_maps == cl->cap_maps) {
        size_t cap = cl->cap_maps ? 2 * cl->cap_maps : 8;
        struct mapping *m = tsim_sys_malloc(cap * sizeof(*m));
        if (!m)
            return false;
        if (cl->n_maps)
            memcpy(m, cl->maps, cl->n_maps * sizeof(*m));
        tsim_sys_free(cl->maps);
        cl->maps = m;
        cl->cap_maps = cap;
    }
    unsigned char *p = map_region(fd, size);
    if (!p)
        return false;
    cl->maps[cl->n_maps++] = (struct mapping){.id = id, .base = p, .size = (size_t)size};
    return true;
}

static bool set_bounce(struct client *cl, int fd, uint64_t size)
{
    if (size < page_size)
        return false;
    unsigned char *p = map_region(fd, size);
    if (!p)
        return false;
    void *h = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        unmap_region(p, (size_t)size);
        return false;
    }
    unmap_region(cl->bounce, cl->bounce_size);
    if (cl->hdr)
        munmap(cl->hdr, page_size);
    cl->bounce = p;
    cl->bounce_size = (size_t)size;
    cl->hdr = h;
    return true;
}

static bool fd_at(const int *fds, int32_t index, int *fd)
{
    if (index < 0 || index >= TSIM_MAX_FDS || fds[index] < 0)
        return false;
    *fd = fds[index];
    return true;
}

/* Maps the regions a message carries. Return: the reply's accepted-mask, or -1 on error. */
static int take_regions(struct client *cl, const struct tsim_msg *m, const int *fds)
{
    int acc = 0;
    int fd;

    if (m->bounce_fd_index >= 0) {
        if (!fd_at(fds, m->bounce_fd_index, &fd) || !set_bounce(cl, fd, m->bounce_size))
            return -1;
        acc |= 0x10;
    }
    for (int i = 0; i < TEE_NUM_PARAMS; i++) {
        const struct tsim_mparam *mp = &m->params[i];
        if (mp->mem != TSIM_MEM_SHM || mp->fd_index < 0)
            continue;
        if (!find_map(cl, mp->shm_id) &&
            (!fd_at(fds, mp->fd_index, &fd) || !add_map(cl, mp->shm_id, fd, mp->shm_size)))
            return -1;
        acc |= 1 << i;
    }
    return acc;
}

/* Adds a region to the set a call will open (apply_regions does it). */
static void want_region(struct open_set *os, unsigned char *base, size_t size)
{
    for (int i = 0; i < os->n; i++)
        if (os->base[i] == base)
            return;
    os->base[os->n] = base;
    os->size[os->n++] = size;
}

static bool set_has(const struct open_set *os, const unsigned char *base)
{
    for (int i = 0; i < os->n; i++)
        if (os->base[i] == base)
            return true;
    return false;
}

/* Makes exactly @want accessible: closes what the last call opened and this one does not
 * use, opens what it uses and is closed. */
static void apply_regions(const struct open_set *want)
{
    for (int i = 0; i < opened.n; i++)
        if (!set_has(want, opened.base[i]))
            mprotect(opened.base[i], opened.size[i], PROT_NONE);
    for (int i = 0; i < want->n; i++)
        if (!set_has(&opened, want->base[i]) &&
            mprotect(want->base[i], want->size[i], PROT_READ | PROT_WRITE) != 0)
            TEE_Panic(TEE_ERROR_GENERIC);
    opened = *want;
}

static bool in_region(uint64_t offset, uint64_t size, size_t region, size_t min_offset)
{
    return offset >= min_offset && offset <= region && size <= region - offset;
}

/* Builds TEE_Param[4] from the message; collects the regions used in @os. */
static TEE_Result unpack(struct client *cl, const struct tsim_msg *m, TEE_Param p[TEE_NUM_PARAMS],
                         struct open_set *os)
{
    if (m->param_types >> 16)
        return TEE_ERROR_BAD_PARAMETERS;
    memset(p, 0, sizeof(TEE_Param) * TEE_NUM_PARAMS);
    for (int i = 0; i < TEE_NUM_PARAMS; i++) {
        const struct tsim_mparam *mp = &m->params[i];
        struct mapping *map;

        switch (TEE_PARAM_TYPE_GET(m->param_types, i)) {
        case TEE_PARAM_TYPE_NONE:
            break;
        case TEE_PARAM_TYPE_VALUE_INPUT:
        case TEE_PARAM_TYPE_VALUE_OUTPUT:
        case TEE_PARAM_TYPE_VALUE_INOUT:
            p[i].value.a = mp->a;
            p[i].value.b = mp->b;
            break;
        case TEE_PARAM_TYPE_MEMREF_INPUT:
        case TEE_PARAM_TYPE_MEMREF_OUTPUT:
        case TEE_PARAM_TYPE_MEMREF_INOUT:
            switch (mp->mem) {
            case TSIM_MEM_NULL:
                if (mp->size)
                    return TEE_ERROR_BAD_PARAMETERS;
                break;
            case TSIM_MEM_BOUNCE:
                if (!cl->bounce ||
                    !in_region(mp->offset, mp->size, cl->bounce_size, TSIM_BOUNCE_ALIGN))
                    return TEE_ERROR_BAD_PARAMETERS;
                p[i].memref.buffer = cl->bounce + mp->offset;
                p[i].memref.size = (size_t)mp->size;
                want_region(os, cl->bounce, cl->bounce_size);
                break;
            case TSIM_MEM_SHM:
                map = find_map(cl, mp->shm_id);
                if (!map || !in_region(mp->offset, mp->size, map->size, 0))
                    return TEE_ERROR_BAD_PARAMETERS;
                p[i].memref.buffer = map->base + mp->offset;
                p[i].memref.size = (size_t)mp->size;
                want_region(os, map->base, map->size);
                break;
            default:
                return TEE_ERROR_BAD_PARAMETERS;
            }
            break;
        default:
            return TEE_ERROR_BAD_PARAMETERS;
        }
    }
    return TEE_SUCCESS;
}

static void reply(struct client *cl, const struct tsim_msg *req, TEE_Result res, uint32_t origin,
                  const TEE_Param *p, int acc)
{
    struct tsim_msg r;
    tsim_msg_init(&r, TSIM_TA_REPLY);
    r.result = res;
    r.origin = origin;
    r.id = acc > 0 ? (uint64_t)acc : 0;
    for (int i = 0; i < TEE_NUM_PARAMS; i++) {
        /* Unless the TA ran, the host gets its own values and sizes back. */
        r.params[i].a = req->params[i].a;
        r.params[i].b = req->params[i].b;
        r.params[i].size = req->params[i].size;
        if (!p)
            continue;
        switch (TEE_PARAM_TYPE_GET(req->param_types, i)) {
        case TEE_PARAM_TYPE_VALUE_OUTPUT:
        case TEE_PARAM_TYPE_VALUE_INOUT:
            r.params[i].a = p[i].value.a;
            r.params[i].b = p[i].value.b;
            break;
        case TEE_PARAM_TYPE_MEMREF_OUTPUT:
        case TEE_PARAM_TYPE_MEMREF_INOUT:
            r.params[i].size = p[i].memref.size;
            break;
        default:
            break;
        }
    }
    r.sent_ns = tsim_now_ns();
    tsim_send(cl->sock, &r, NULL, 0);
    last_reply_ns = tsim_now_ns();
}

static void send_ctl(uint32_t kind_, uint64_t id)
{
    struct tsim_msg m;
    tsim_msg_init(&m, (enum tsim_kind)kind_);
    m.id = id;
    m.created = created;
    tsim_send(TSIM_INHERITED_FD, &m, NULL, 0);
}

static void close_session(struct client *cl)
{
    if (!cl->has_session)
        return;
    struct entry_call c = {.which = EP_CLOSE, .session_ctx = cl->session_ctx};
    run_entry(&c, cl, NULL);
    cl->has_session = false;
    n_sessions--;
}

/*
 * Drops client @index. With @closing (its TSIM_TA_CLOSE_SESSION), answers it only after
 * telling the core the instance is idle: the core then knows, before the client can open
 * another session, that this instance's memory is on its way back to the pool.
 */
static void drop_client(size_t index, const struct tsim_msg *closing)
{
    struct client *cl = clients[index];
    close_session(cl);
    /* The session's lines are on the console before its close returns. */
    tsim_console_flush();
    for (size_t i = 0; i < cl->n_maps; i++)
        unmap_region(cl->maps[i].base, cl->maps[i].size);
    tsim_sys_free(cl->maps);
    unmap_region(cl->bounce, cl->bounce_size);
    if (cl->hdr)
        munmap(cl->hdr, page_size);
    clients[index] = clients[--n_clients];
    if (n_clients == 0)
        send_ctl(TSIM_CTL_IDLE, accepted);
    if (closing)
        reply(cl, closing, TEE_SUCCESS, TEE_ORIGIN_TEE, NULL, 0);
    close(cl->sock);
    tsim_sys_free(cl);
}

static void add_client(int fd)
{
    struct client *cl = NULL;
    if (n_clients == cap_clients) {
        size_t cap = cap_clients ? 2 * cap_clients : 8;
        struct client **c = tsim_sys_malloc(cap * sizeof(*c));
        if (!c)
            goto fail;
        if (n_clients)
            memcpy(c, clients, n_clients * sizeof(*c));
        tsim_sys_free(clients);
        clients = c;
        cap_clients = cap;
    }
    cl = tsim_sys_malloc(sizeof(*cl));
    if (!cl)
        goto fail;
    memset(cl, 0, sizeof(*cl));
    cl->sock = fd;
    cl->cancel_masked = true;
    clients[n_clients++] = cl;
    accepted++;
    return;
fail:
    accepted++; /* counted, so the core's bookkeeping matches */
    close(fd);
    if (n_clients == 0)
        send_ctl(TSIM_CTL_IDLE, accepted);
}

static bool busy_for_new_session(void)
{
    uint32_t f = tsim_ta_props.flags;
    return (f & TA_FLAG_SINGLE_INSTANCE) && !(f & TA_FLAG_MULTI_SESSION) && n_sessions > 0;
}

/* Serves one message of client @index; the client may be dropped. */
static void serve_client(size_t index)
{
    struct client *cl = clients[index];
    struct tsim_msg m;
    int fds[TSIM_MAX_FDS];
    TEE_Param p[TEE_NUM_PARAMS];
    struct open_set os = {.n = 0};
    struct entry_call c;
    bool drop = false;

    if (tsim_recv(cl->sock, &m, fds, TSIM_MAX_FDS) < 0) {
        drop_client(index, NULL);
        return;
    }
    /* A call runs on the CPU its caller waits on (tsim_cpu.h); a one-way message has none. */
    if (m.kind == TSIM_TA_OPEN_SESSION || m.kind == TSIM_TA_INVOKE ||
        m.kind == TSIM_TA_CLOSE_SESSION)
        tsim_cpu_follow(m.cpu);
    int acc = (m.kind == TSIM_TA_OPEN_SESSION || m.kind == TSIM_TA_INVOKE)
                  ? take_regions(cl, &m, fds)
                  : 0;
    for (int i = 0; i < TSIM_MAX_FDS; i++)
        if (fds[i] >= 0)
            close(fds[i]);

    switch (m.kind) {
    case TSIM_TA_SHM_FORGET:
        forget_map(cl, m.id);
        break;
    case TSIM_TA_OPEN_SESSION:
        if (cl->has_session) {
            drop = true;
            break;
        }
        if (acc < 0) {
            reply(cl, &m, TEE_ERROR_BAD_PARAMETERS, TEE_ORIGIN_TEE, NULL, 0);
            break;
        }
        if (busy_for_new_session()) {
            reply(cl, &m, TEE_ERROR_BUSY, TEE_ORIGIN_TEE, NULL, acc);
            break;
        }
        if (unpack(cl, &m, p, &os) != TEE_SUCCESS) {
            reply(cl, &m, TEE_ERROR_BAD_PARAMETERS, TEE_ORIGIN_TEE, NULL, acc);
            break;
        }
        if (!created) {
            c = (struct entry_call){.which = EP_CREATE};
            run_entry(&c, cl, NULL);
            if (c.res != TEE_SUCCESS) {
                reply(cl, &m, c.res, TEE_ORIGIN_TRUSTED_APP, NULL, acc);
                break;
            }
            created = true;
        }
        c = (struct entry_call){.which = EP_OPEN, .types = m.param_types, .params = p};
        run_entry(&c, cl, &os);
        if (c.res == TEE_SUCCESS) {
            cl->has_session = true;
            cl->session_ctx = c.session_ctx;
            n_sessions++;
        }
        reply(cl, &m, c.res, TEE_ORIGIN_TRUSTED_APP, p, acc);
        break;
    case TSIM_TA_INVOKE:
        if (!cl->has_session) {
            reply(cl, &m, TEE_ERROR_BAD_STATE, TEE_ORIGIN_TEE, NULL, acc < 0 ? 0 : acc);
            break;
        }
        if (acc < 0 || unpack(cl, &m, p, &os) != TEE_SUCCESS) {
            reply(cl, &m, TEE_ERROR_BAD_PARAMETERS, TEE_ORIGIN_TEE, NULL, acc < 0 ? 0 : acc);
            break;
        }
        tsim_spin_learn(&spin, last_cmd, last_reply_ns, m.sent_ns);
        last_cmd = m.cmd;
        c = (struct entry_call){.which = EP_INVOKE,
                                .types = m.param_types,
                                .params = p,
                                .session_ctx = cl->session_ctx,
                                .cmd = m.cmd};
        run_entry(&c, cl, &os);
        reply(cl, &m, c.res, TEE_ORIGIN_TRUSTED_APP, p, acc);
        break;
    case TSIM_TA_CLOSE_SESSION:
        drop_client(index, &m);
        return;
    default:
        drop = true;
        break;
    }
    if (drop)
        drop_client(index, NULL);
}

static void serve_control(void)
{
    struct tsim_msg m;
    int fds[1];
    int rc = tsim_recv(TSIM_INHERITED_FD, &m, fds, 1);

    if (rc < 0) {
        tsim_console_flush();
        fflush(stdout);
        _exit(0); /* the core is gone */
    }
    if (m.kind == TSIM_CTL_NEW_CLIENT && fds[0] >= 0) {
        add_client(fds[0]);
    } else if (m.kind == TSIM_CTL_DESTROY) {
        if (created) {
            struct entry_call c = {.which = EP_DESTROY};
            run_entry(&c, NULL, NULL);
        }
        tsim_console_flush();
        fflush(stdout);
        _exit(0);
    } else if (fds[0] >= 0) {
        close(fds[0]);
    }
}

static bool is_seqpacket(int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

/*
 * What the instance will commit, before it allocates any of it: the page-rounded TA_DATA_SIZE
 * heap and the page-rounded stack (@stack: TA_STACK_SIZE with the runtime's extra).
 * Return: TEE_SUCCESS, or TEE_ERROR_OUT_OF_MEMORY when the sizes overflow.
 */
static TEE_Result plan(size_t *stack, uint64_t *bytes)
{
    size_t heap = tsim_page_round(tsim_ta_props.data_size);
    size_t st;

    if (__builtin_mul_overflow((size_t)tsim_ta_props.stack_size, TSIM_STACK_FACTOR, stack) ||
        __builtin_add_overflow(*stack, (size_t)TSIM_STACK_SLACK, stack))
        return TEE_ERROR_OUT_OF_MEMORY;
    st = tsim_page_round(*stack);
    if (!heap || !st || __builtin_add_overflow((uint64_t)heap, (uint64_t)st, bytes))
        return TEE_ERROR_OUT_OF_MEMORY;
    return TEE_SUCCESS;
}

/* Commits the heap and stack the pool granted and installs the runtime's handlers. */
static TEE_Result setup(size_t stack)
{
    if (tsim_heap_init(tsim_ta_props.data_size) != 0 || tsim_stack_init(stack) != 0)
        return TEE_ERROR_OUT_OF_MEMORY;
    tsim_crash_handlers_init();
    tsim_mem_init();
    return TEE_SUCCESS;
}

int tsim_ta_main(void)
{
    prctl(PR_SET_DUMPABLE, 0);
    if (!is_seqpacket(TSIM_INHERITED_FD)) {
        fprintf(stderr, "this is a simulated Trusted Application: it is started by the "
                        "simulated TEE (TEEC_OpenSession), not by hand\n");
        return 2;
    }
    fcntl(TSIM_INHERITED_FD, F_SETFD, FD_CLOEXEC);
    close_range(TSIM_INHERITED_FD + 1, ~0U, 0);
    signal(SIGPIPE, SIG_IGN);
    tsim_console_init();
    tsim_console_hold(tsim_console_hold_from_env());
    /* The TA's printf goes to the secure console, as on OP-TEE (not held: line-buffered). */
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        close(null);
    }
    dup2(tsim_console_fd(), STDOUT_FILENO);
    setvbuf(stdout, NULL, _IOLBF, 0);

    long ps = sysconf(_SC_PAGESIZE);
    page_size = ps > 0 ? (size_t)ps : 4096;
    size_t stack = 0;
    struct tsim_msg hello;
    tsim_msg_init(&hello, TSIM_CTL_HELLO);
    hello.result = plan(&stack, &hello.id);
    memcpy(&hello.uuid, &tsim_ta_props.uuid, sizeof(hello.uuid));
    hello.ta_flags = tsim_ta_props.flags;
    hello.data_size = tsim_ta_props.data_size;
    hello.stack_size = tsim_ta_props.stack_size;
    if (tsim_send(TSIM_INHERITED_FD, &hello, NULL, 0) < 0 || hello.result != TEE_SUCCESS)
        return 1;
    /* Nothing is committed until the core's pool has room for it. */
    struct tsim_msg grant;
    int gfd[1];
    if (tsim_recv(TSIM_INHERITED_FD, &grant, gfd, 1) < 0)
        return 0; /* refused: the core is about to kill this process */
    if (gfd[0] >= 0)
        close(gfd[0]);
    if (grant.kind != TSIM_CTL_COMMIT)
        return 1;
    struct tsim_msg ready;
    tsim_msg_init(&ready, TSIM_CTL_READY);
    ready.result = setup(stack);
    if (tsim_send(TSIM_INHERITED_FD, &ready, NULL, 0) < 0 || ready.result != TEE_SUCCESS)
        return 1;

    struct pollfd *pfd = NULL;
    size_t cap = 0;
    tsim_spin_init(&spin);
    for (;;) {
        if (cap < n_clients + 1) {
            tsim_sys_free(pfd);
            cap = 2 * (n_clients + 1);
            pfd = tsim_sys_malloc(cap * sizeof(*pfd));
            if (!pfd)
                TEE_Panic(TEE_ERROR_OUT_OF_MEMORY);
        }
        pfd[0] = (struct pollfd){.fd = TSIM_INHERITED_FD, .events = POLLIN};
        for (size_t i = 0; i < n_clients; i++)
            pfd[i + 1] = (struct pollfd){.fd = clients[i]->sock, .events = POLLIN};
        size_t n = n_clients + 1;
        /* Bound to a caller's CPU, a spin would only keep that caller from running. */
        const bool spun = !tsim_cpu_following() && tsim_spin(&spin, last_cmd, pfd, n) > 0;
        /* Held console lines are written when due, whether or not a call comes. */
        const int ready = spun ? 1 : poll(pfd, n, tsim_console_due_ms());
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            TEE_Panic(TEE_ERROR_GENERIC);
        }
        if (ready == 0) {
            tsim_console_flush();
            continue;
        }
        /* Serve one client per round, then the core: the array may change. */
        for (size_t i = 1; i < n; i++) {
            if (pfd[i].revents) {
                serve_client(i - 1);
                break;
            }
        }
        if (pfd[0].revents)
            serve_control();
        if (tsim_console_due_ms() == 0)
            tsim_console_flush();
    }
}
