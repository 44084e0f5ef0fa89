/*
 * Simulated TEE, client side: sessions, commands and parameter marshalling.
 *
 * Parameters follow OP-TEE's libteec: types and memrefs are checked here first
 * (TEEC_ERROR_BAD_PARAMETERS, origin API); temporary memrefs and memrefs of registered blocks
 * are copied into the session's bounce buffer (a memfd the TA has mapped) and the output part
 * copied back when the TA's size fits the caller's; memrefs of allocated blocks are passed as
 * (block, offset, size) and the TA works on the same pages as the client. Output sizes are
 * always written back, so TEEC_ERROR_SHORT_BUFFER carries the size the TA needs.
 */
#define _GNU_SOURCE
#include "tee/client/tsim_client.h"
#include "tee/common/tsim_cpu.h"
#include "tee/common/tsim_proto.h"
#include "tee/common/tsim_spin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_uint next_session_id = 1;

/* A call being marshalled: the message, the fds it carries, and where memrefs went. */
struct call {
    struct tsim_msg msg;
    int fds[TSIM_MAX_FDS];
    int nfds;
    int new_shm[4];       /* ids of blocks whose fd this message carries */
    int new_shm_index[4]; /* their fd index */
    int n_new_shm;
    size_t off[4]; /* bounce offset of each bounced memref */
};

static bool align_add(size_t *total, size_t len)
{
    size_t a;
    if (__builtin_add_overflow(len, (size_t)TSIM_BOUNCE_ALIGN - 1, &a))
        return false;
    a &= ~(size_t)(TSIM_BOUNCE_ALIGN - 1);
    return !__builtin_add_overflow(*total, a, total);
}

static bool shm_ok(const struct tsim_context *ctx, const TEEC_SharedMemory *shm)
{
    if (!shm || shm->imp != ctx)
        return false;
    if ((shm->imp_flags & TSIM_SHM_ALLOCATED) && shm->size > shm->alloced_size)
        return false;
    return true;
}

/*
 * Checks @op as OP-TEE's libteec does and computes the bounce bytes it needs.
 * Return: TEEC_SUCCESS or TEEC_ERROR_BAD_PARAMETERS.
 */
static TEEC_Result check_params(const struct tsim_context *ctx, const TEEC_Operation *op,
                                size_t *need)
{
    size_t total = 0;

    *need = 0;
    if (!op)
        return TEEC_SUCCESS;
    for (int i = 0; i < TEEC_CONFIG_PAYLOAD_REF_COUNT; i++) {
        uint32_t t = TEEC_PARAM_TYPE_GET(op->paramTypes, i);
        const TEEC_Parameter *p = &op->params[i];
        const TEEC_SharedMemory *shm = p->memref.parent;
        size_t len = 0;
        size_t end;
        uint32_t want = 0;

        switch (t) {
        case TEEC_NONE:
        case TEEC_VALUE_INPUT:
        case TEEC_VALUE_OUTPUT:
        case TEEC_VALUE_INOUT:
            break;
        case TEEC_MEMREF_TEMP_INPUT:
        case TEEC_MEMREF_TEMP_OUTPUT:
        case TEEC_MEMREF_TEMP_INOUT:
            if (!p->tmpref.buffer && p->tmpref.size)
                return TEEC_ERROR_BAD_PARAMETERS;
            if (p->tmpref.buffer)
                len = p->tmpref.size;
            break;
        case TEEC_MEMREF_WHOLE:
            if (!shm_ok(ctx, shm) || !(shm->flags & (TEEC_MEM_INPUT | TEEC_MEM_OUTPUT)))
                return TEEC_ERROR_BAD_PARAMETERS;
            if (shm->imp_flags & TSIM_SHM_REGISTERED)
                len = shm->size;
            break;
        case TEEC_MEMREF_PARTIAL_INPUT:
        case TEEC_MEMREF_PARTIAL_OUTPUT:
        case TEEC_MEMREF_PARTIAL_INOUT:
            want = (t == TEEC_MEMREF_PARTIAL_INPUT)    ? TEEC_MEM_INPUT
                   : (t == TEEC_MEMREF_PARTIAL_OUTPUT) ? TEEC_MEM_OUTPUT
                                                       : TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
            if (!shm_ok(ctx, shm) || (shm->flags & want) != want)
                return TEEC_ERROR_BAD_PARAMETERS;
            if (__builtin_add_overflow(p->memref.offset, p->memref.size, &end) || end > shm->size)
                return TEEC_ERROR_BAD_PARAMETERS;
            if (shm->imp_flags & TSIM_SHM_REGISTERED)
                len = p->memref.size;
            break;
        default:
            return TEEC_ERROR_BAD_PARAMETERS;
        }
        if (!align_add(&total, len))
            return TEEC_ERROR_BAD_PARAMETERS;
    }
    *need = total;
    return TEEC_SUCCESS;
}

static void set_cancel_flag(struct tsim_session *s, uint32_t v)
{
    struct tsim_bounce_hdr *h = (struct tsim_bounce_hdr *)(void *)s->bounce;
    __atomic_store_n(&h->cancel, v, __ATOMIC_SEQ_CST);
}

/* Makes the bounce buffer hold the header and @need bytes of memrefs. */
static TEEC_Result ensure_bounce(struct tsim_session *s, size_t need)
{
    size_t total;
    size_t size = TSIM_BOUNCE_MIN;

    if (__builtin_add_overflow(need, (size_t)TSIM_BOUNCE_ALIGN, &total))
        return TEEC_ERROR_OUT_OF_MEMORY;
    if (s->bounce && total <= s->bounce_size)
        return TEEC_SUCCESS;
    while (size < total) {
        if (size > SIZE_MAX / 2)
            return TEEC_ERROR_OUT_OF_MEMORY;
        size *= 2;
    }
    int fd = memfd_create("dz-tee-bounce", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return TEEC_ERROR_OUT_OF_MEMORY;
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        close(fd);
        return TEEC_ERROR_OUT_OF_MEMORY;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return TEEC_ERROR_OUT_OF_MEMORY;
    }
    if (s->bounce) {
        munmap(s->bounce, s->bounce_size);
        close(s->bounce_fd);
    }
    s->bounce = p;
    s->bounce_size = size;
    s->bounce_fd = fd;
    s->bounce_sent = false;
    return TEEC_SUCCESS;
}

static bool shm_known(const struct tsim_session *s, int id)
{
    for (size_t i = 0; i < s->n_shm; i++)
        if (s->shm_ids[i] == id)
            return true;
    return false;
}

static void shm_remember(struct tsim_session *s, int id)
{
    if (shm_known(s, id))
        return;
    if (s->n_shm == s->cap_shm) {
        size_t cap = s->cap_shm ? 2 * s->cap_shm : 8;
        int *ids = realloc(s->shm_ids, cap * sizeof(*ids));
        if (!ids)
            return; /* the fd is simply sent again next time */
        s->shm_ids = ids;
        s->cap_shm = cap;
    }
    s->shm_ids[s->n_shm++] = id;
}

/* Puts an allocated block's fd into the call unless the TA already holds it. */
static void attach_shm(struct tsim_session *s, struct call *c, struct tsim_mparam *mp,
                       const TEEC_SharedMemory *shm)
{
    mp->mem = TSIM_MEM_SHM;
    mp->shm_id = (uint64_t)shm->id;
    mp->shm_size = shm->alloced_size;
    if (shm_known(s, shm->id))
        return;
    for (int k = 0; k < c->n_new_shm; k++) {
        if (c->new_shm[k] == shm->id) {
            mp->fd_index = c->new_shm_index[k];
            return;
        }
    }
    mp->fd_index = c->nfds;
    c->new_shm[c->n_new_shm] = shm->id;
    c->new_shm_index[c->n_new_shm++] = c->nfds;
    c->fds[c->nfds++] = shm->registered_fd;
}

/* Places a bounced memref of @len bytes; copies @src in when not NULL. */
static void bounce_param(struct tsim_session *s, struct call *c, int i, size_t *off,
                         const void *src, size_t len)
{
    struct tsim_mparam *mp = &c->msg.params[i];
    mp->mem = TSIM_MEM_BOUNCE;
    mp->offset = *off;
    mp->size = len;
    c->off[i] = *off;
    if (src && len)
        memcpy(s->bounce + *off, src, len);
    align_add(off, len); /* cannot overflow: check_params summed the same sizes */
}

/* Builds the message of a call whose parameters check_params() accepted. */
static void build_call(struct tsim_session *s, struct call *c, enum tsim_kind kind, uint32_t cmd,
                       const TEEC_Operation *op)
{
    size_t off = TSIM_BOUNCE_ALIGN;
    uint32_t types = 0;

    memset(c, 0, sizeof(*c));
    tsim_msg_init(&c->msg, kind);
    c->msg.cmd = cmd;
    if (!s->bounce_sent) {
        c->msg.bounce_fd_index = c->nfds;
        c->msg.bounce_size = s->bounce_size;
        c->fds[c->nfds++] = s->bounce_fd;
    }
    set_cancel_flag(s, 0);
    for (int i = 0; op && i < TEEC_CONFIG_PAYLOAD_REF_COUNT; i++) {
        uint32_t t = TEEC_PARAM_TYPE_GET(op->paramTypes, i);
        const TEEC_Parameter *p = &op->params[i];
        const TEEC_SharedMemory *shm = p->memref.parent;
        struct tsim_mparam *mp = &c->msg.params[i];
        uint32_t ta = TEEC_NONE;

        switch (t) {
        case TEEC_VALUE_INPUT:
        case TEEC_VALUE_OUTPUT:
        case TEEC_VALUE_INOUT:
            ta = t;
            mp->a = p->value.a;
            mp->b = p->value.b;
            break;
        case TEEC_MEMREF_TEMP_INPUT:
        case TEEC_MEMREF_TEMP_OUTPUT:
        case TEEC_MEMREF_TEMP_INOUT:
            ta = t; /* the TEE_PARAM_TYPE_MEMREF_* values */
            if (p->tmpref.buffer)
                bounce_param(s, c, i, &off, p->tmpref.buffer, p->tmpref.size);
            break;
        case TEEC_MEMREF_WHOLE: {
            uint32_t dir = shm->flags & (TEEC_MEM_INPUT | TEEC_MEM_OUTPUT);
            ta = dir == (TEEC_MEM_INPUT | TEEC_MEM_OUTPUT) ? TEEC_MEMREF_TEMP_INOUT
                 : dir == TEEC_MEM_INPUT                   ? TEEC_MEMREF_TEMP_INPUT
                                                           : TEEC_MEMREF_TEMP_OUTPUT;
            if (shm->imp_flags & TSIM_SHM_REGISTERED) {
                bounce_param(s, c, i, &off, (dir & TEEC_MEM_INPUT) ? shm->buffer : NULL, shm->size);
            } else {
                attach_shm(s, c, mp, shm);
                mp->offset = 0;
                mp->size = shm->size;
            }
            break;
        }
        case TEEC_MEMREF_PARTIAL_INPUT:
        case TEEC_MEMREF_PARTIAL_OUTPUT:
        case TEEC_MEMREF_PARTIAL_INOUT:
            ta = t - (TEEC_MEMREF_PARTIAL_INPUT - TEEC_MEMREF_TEMP_INPUT);
            if (shm->imp_flags & TSIM_SHM_REGISTERED) {
                const unsigned char *src = (const unsigned char *)shm->buffer + p->memref.offset;
                bounce_param(s, c, i, &off, t != TEEC_MEMREF_PARTIAL_OUTPUT ? src : NULL,
                             p->memref.size);
            } else {
                attach_shm(s, c, mp, shm);
                mp->offset = p->memref.offset;
                mp->size = p->memref.size;
            }
            break;
        default:
            break;
        }
        types |= ta << (4 * i);
    }
    c->msg.param_types = types;
}

/* Writes values and sizes back, and copies bounced output as OP-TEE's libteec does. */
static void post_process(struct tsim_session *s, const struct call *c, const struct tsim_msg *r,
                         TEEC_Operation *op)
{
    for (int i = 0; op && i < TEEC_CONFIG_PAYLOAD_REF_COUNT; i++) {
        uint32_t t = TEEC_PARAM_TYPE_GET(op->paramTypes, i);
        TEEC_Parameter *p = &op->params[i];
        TEEC_SharedMemory *shm = p->memref.parent;
        size_t rsize = (size_t)r->params[i].size;

        switch (t) {
        case TEEC_VALUE_OUTPUT:
        case TEEC_VALUE_INOUT:
            p->value.a = r->params[i].a;
            p->value.b = r->params[i].b;
            break;
        case TEEC_MEMREF_TEMP_OUTPUT:
        case TEEC_MEMREF_TEMP_INOUT:
            if (p->tmpref.buffer && rsize <= p->tmpref.size)
                memcpy(p->tmpref.buffer, s->bounce + c->off[i], rsize);
            p->tmpref.size = rsize;
            break;
        case TEEC_MEMREF_WHOLE:
            if (!(shm->flags & TEEC_MEM_OUTPUT))
                break;
            if ((shm->imp_flags & TSIM_SHM_REGISTERED) && rsize <= shm->size)
                memcpy(shm->buffer, s->bounce + c->off[i], rsize);
            p->memref.size = rsize;
            break;
        case TEEC_MEMREF_PARTIAL_OUTPUT:
        case TEEC_MEMREF_PARTIAL_INOUT:
            if ((shm->imp_flags & TSIM_SHM_REGISTERED) && rsize <= p->memref.size)
                memcpy((unsigned char *)shm->buffer + p->memref.offset, s->bounce + c->off[i],
                       rsize);
            p->memref.size = rsize;
            break;
        default:
            break;
        }
    }
}

/*
 * Sends a built call and waits for the TA's reply. A dead instance (end of file or a broken
 * socket) marks the session dead. Return: 0, or -1 when the instance is dead.
 */
static int exchange(struct tsim_session *s, struct call *c, struct tsim_msg *reply)
{
    int fds[TSIM_MAX_FDS];
    const bool invoke = c->msg.kind == TSIM_TA_INVOKE;

    /* The call runs on this thread's CPU, as a world switch would (tsim_cpu.h). */
    struct tsim_cpu_hold hold;
    c->msg.cpu = tsim_cpu_hold(&hold);
    c->msg.sent_ns = tsim_now_ns();
    if (tsim_send(s->sock, &c->msg, c->fds, c->nfds) < 0) {
        tsim_cpu_release(&hold);
        goto dead;
    }
    /* A short command's answer is caught without sleeping (tsim_spin.h); the receive below
     * then finds it waiting. A failed poll leaves the receive to report the error. Not when
     * the instance runs on this CPU: it could not answer while we spin. */
    const uint64_t since = invoke ? tsim_now_ns() : 0;
    if (invoke && !hold.held) {
        struct pollfd p = {.fd = s->sock, .events = POLLIN};
        (void)tsim_spin(&s->spin, c->msg.cmd, &p, 1);
    }
    int rc = tsim_recv(s->sock, reply, fds, TSIM_MAX_FDS);
    tsim_cpu_release(&hold);
    for (int i = 0; i < TSIM_MAX_FDS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (rc < 0 || reply->kind != TSIM_TA_REPLY)
        goto dead;
    if (invoke)
        tsim_spin_learn(&s->spin, c->msg.cmd, since, reply->sent_ns);
    /* reply->id: bit i = the fd of param i was mapped, bit 4 = the bounce buffer was. */
    if (c->msg.bounce_fd_index >= 0 && (reply->id & 0x10))
        s->bounce_sent = true;
    for (int k = 0; k < c->n_new_shm; k++) {
        for (int i = 0; i < 4; i++) {
            if (c->msg.params[i].fd_index == c->new_shm_index[k] && (reply->id & (1u << i))) {
                shm_remember(s, c->new_shm[k]);
                break;
            }
        }
    }
    return 0;
dead:
    s->dead = true;
    return -1;
}

void tsim_session_destroy(struct tsim_session *s)
{
    if (!s)
        return;
    if (s->sock >= 0)
        close(s->sock);
    if (s->bounce) {
        munmap(s->bounce, s->bounce_size);
        close(s->bounce_fd);
    }
    free(s->shm_ids);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

struct tsim_session *tsim_context_pop_session(struct tsim_context *ctx)
{
    pthread_mutex_lock(&ctx->lock);
    struct tsim_session *s = ctx->sessions;
    if (s)
        ctx->sessions = s->next;
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

void tsim_context_forget_shm(struct tsim_context *ctx, int id)
{
    pthread_mutex_lock(&ctx->lock);
    for (struct tsim_session *s = ctx->sessions; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_shm; i++) {
            if (s->shm_ids[i] != id)
                continue;
            s->shm_ids[i] = s->shm_ids[--s->n_shm];
            if (!s->dead) {
                struct tsim_msg m;
                tsim_msg_init(&m, TSIM_TA_SHM_FORGET);
                m.id = (uint64_t)id;
                if (tsim_send(s->sock, &m, NULL, 0) < 0)
                    s->dead = true;
            }
            break;
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&ctx->lock);
}

/* Asks the core for a socket to an instance of @uuid. Return: TEEC_SUCCESS or an error. */
static TEEC_Result core_open(struct tsim_context *ctx, const TEEC_UUID *uuid, uint32_t login,
                             int *sock, uint32_t *origin)
{
    struct tsim_msg m;
    struct tsim_msg r;
    int fds[1];
    int rc;

    tsim_msg_init(&m, TSIM_CORE_OPEN);
    m.login = login;
    m.uuid.time_low = uuid->timeLow;
    m.uuid.time_mid = uuid->timeMid;
    m.uuid.time_hi_and_version = uuid->timeHiAndVersion;
    memcpy(m.uuid.clock_seq_and_node, uuid->clockSeqAndNode, 8);
    pthread_mutex_lock(&ctx->lock);
    rc = tsim_send(ctx->core, &m, NULL, 0);
    if (rc == 0)
        rc = tsim_recv(ctx->core, &r, fds, 1);
    pthread_mutex_unlock(&ctx->lock);
    if (rc < 0 || r.kind != TSIM_CORE_REPLY) {
        if (rc == 0 && fds[0] >= 0)
            close(fds[0]);
        *origin = TEEC_ORIGIN_COMMS;
        return TEEC_ERROR_COMMUNICATION;
    }
    *origin = r.origin ? r.origin : TEEC_ORIGIN_TEE;
    if (r.result != TEEC_SUCCESS) {
        if (fds[0] >= 0)
            close(fds[0]);
        return r.result;
    }
    if (fds[0] < 0) {
        *origin = TEEC_ORIGIN_COMMS;
        return TEEC_ERROR_COMMUNICATION;
    }
    *sock = fds[0];
    return TEEC_SUCCESS;
}

/*
 * After a close: waits until the core has handled what the instance told it (idle, so told to
 * end, its memory marked as on its way back in the pool shared with other contexts).
 */
static void core_sync(struct tsim_context *ctx)
{
    struct tsim_msg m;
    struct tsim_msg r;
    int fds[1];

    tsim_msg_init(&m, TSIM_CORE_SYNC);
    pthread_mutex_lock(&ctx->lock);
    if (tsim_send(ctx->core, &m, NULL, 0) == 0 && tsim_recv(ctx->core, &r, fds, 1) == 0 &&
        fds[0] >= 0)
        close(fds[0]);
    pthread_mutex_unlock(&ctx->lock);
}

static bool login_ok(uint32_t method, const void *data)
{
    switch (method) {
    case TEEC_LOGIN_PUBLIC:
    case TEEC_LOGIN_USER:
    case TEEC_LOGIN_APPLICATION:
    case TEEC_LOGIN_USER_APPLICATION:
        return true;
    case TEEC_LOGIN_GROUP:
    case TEEC_LOGIN_GROUP_APPLICATION:
        return data != NULL;
    default:
        return false;
    }
}

TEEC_Result TEEC_OpenSession(TEEC_Context *context, TEEC_Session *session,
                             const TEEC_UUID *destination, uint32_t connectionMethod,
                             const void *connectionData, TEEC_Operation *operation,
                             uint32_t *returnOrigin)
{
    uint32_t origin = TEEC_ORIGIN_API;
    TEEC_Result res = TEEC_ERROR_BAD_PARAMETERS;
    struct tsim_session *s = NULL;
    struct call *c = NULL;
    struct tsim_msg reply;
    size_t need = 0;
    int sock = -1;

    if (!context || !context->imp || !session || !destination ||
        !login_ok(connectionMethod, connectionData))
        goto out;
    res = check_params(context->imp, operation, &need);
    if (res != TEEC_SUCCESS)
        goto out;
    if (operation)
        operation->started = 1;
    c = malloc(sizeof(*c));
    if (!c) {
        res = TEEC_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    /*
     * A second attempt covers an instance that died just as the core handed it this session
     * (a death the core had not seen yet); a TA that dies in its open entry point dies twice.
     */
    for (int attempt = 0; attempt < 2; attempt++) {
        tsim_session_destroy(s);
        s = NULL;
        res = core_open(context->imp, destination, connectionMethod, &sock, &origin);
        if (res != TEEC_SUCCESS)
            goto out;
        origin = TEEC_ORIGIN_API;
        res = TEEC_ERROR_OUT_OF_MEMORY;
        s = calloc(1, sizeof(*s));
        if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
            free(s);
            s = NULL;
            close(sock);
            goto out;
        }
        s->ctx = context->imp;
        s->sock = sock;
        s->bounce_fd = -1;
        tsim_spin_init(&s->spin);
        res = ensure_bounce(s, need);
        if (res != TEEC_SUCCESS)
            goto out;
        build_call(s, c, TSIM_TA_OPEN_SESSION, 0, operation);
        if (exchange(s, c, &reply) == 0)
            break;
        res = TEEC_ERROR_TARGET_DEAD;
        origin = TEEC_ORIGIN_TEE;
    }
    if (res == TEEC_ERROR_TARGET_DEAD)
        goto out;
    post_process(s, c, &reply, operation);
    res = reply.result;
    origin = reply.origin;
    if (res != TEEC_SUCCESS)
        goto out;
    pthread_mutex_lock(&s->ctx->lock);
    s->next = s->ctx->sessions;
    s->ctx->sessions = s;
    pthread_mutex_unlock(&s->ctx->lock);
    session->ctx = context;
    session->session_id = atomic_fetch_add(&next_session_id, 1);
    session->imp = s;
    s = NULL;
out:
    tsim_session_destroy(s);
    free(c);
    if (returnOrigin)
        *returnOrigin = origin;
    return res;
}

void TEEC_CloseSession(TEEC_Session *session)
{
    if (!session || !session->imp)
        return;
    struct tsim_session *s = session->imp;
    struct tsim_context *ctx = s->ctx;

    pthread_mutex_lock(&ctx->lock);
    for (struct tsim_session **p = &ctx->sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    pthread_mutex_lock(&s->lock);
    if (!s->dead) {
        struct tsim_msg m;
        struct tsim_msg r;
        int fds[TSIM_MAX_FDS];
        tsim_msg_init(&m, TSIM_TA_CLOSE_SESSION);
        if (tsim_send(s->sock, &m, NULL, 0) == 0 &&
            tsim_recv(s->sock, &r, fds, TSIM_MAX_FDS) == 0) {
            for (int i = 0; i < TSIM_MAX_FDS; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
        }
    }
    bool closed = !s->dead;
    pthread_mutex_unlock(&s->lock);
    tsim_session_destroy(s);
    session->imp = NULL;
    if (closed)
        core_sync(ctx);
}

TEEC_Result TEEC_InvokeCommand(TEEC_Session *session, uint32_t commandID, TEEC_Operation *operation,
                               uint32_t *returnOrigin)
{
    uint32_t origin = TEEC_ORIGIN_API;
    TEEC_Result res = TEEC_ERROR_BAD_PARAMETERS;
    struct tsim_session *s = NULL;
    struct call c;
    struct tsim_msg reply;
    size_t need = 0;

    if (!session || !session->imp)
        goto out;
    s = session->imp;
    res = check_params(s->ctx, operation, &need);
    if (res != TEEC_SUCCESS)
        goto out;
    if (operation) {
        operation->session = session;
        operation->started = 1;
    }
    pthread_mutex_lock(&s->lock);
    if (s->dead) {
        res = TEEC_ERROR_TARGET_DEAD;
        origin = TEEC_ORIGIN_TEE;
        goto unlock;
    }
    res = ensure_bounce(s, need);
    if (res != TEEC_SUCCESS)
        goto unlock;
    build_call(s, &c, TSIM_TA_INVOKE, commandID, operation);
    if (exchange(s, &c, &reply) < 0) {
        res = TEEC_ERROR_TARGET_DEAD;
        origin = TEEC_ORIGIN_TEE;
        goto unlock;
    }
    post_process(s, &c, &reply, operation);
    res = reply.result;
    origin = reply.origin;
unlock:
    pthread_mutex_unlock(&s->lock);
out:
    if (returnOrigin)
        *returnOrigin = origin;
    return res;
}

void TEEC_RequestCancellation(TEEC_Operation *operation)
{
    if (!operation || !operation->session || !operation->session->imp)
        return;
    struct tsim_session *s = operation->session->imp;
    if (s->bounce)
        set_cancel_flag(s, 1);
}
