/* Simulated TEE: message transport shared by the client, the core and the TA runtime. */
#define _GNU_SOURCE
#include "tee/common/tsim_cpu.h"
#include "tee/common/tsim_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void tsim_msg_init(struct tsim_msg *m, enum tsim_kind kind)
{
    memset(m, 0, sizeof(*m));
    m->magic = TSIM_MAGIC;
    m->kind = (uint32_t)kind;
    m->bounce_fd_index = -1;
    m->cpu = TSIM_CPU_ANY;
    for (int i = 0; i < 4; i++)
        m->params[i].fd_index = -1;
}

int tsim_send(int sock, const struct tsim_msg *m, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * TSIM_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    if (nfds < 0 || nfds > TSIM_MAX_FDS)
        return -EINVAL;
    if (nfds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof(*m))
            return 0;
        if (n >= 0)
            return -EMSGSIZE;
        if (errno == EINTR)
            continue;
        return errno == ECONNRESET ? -EPIPE : -errno;
    }
}

int tsim_recv(int sock, struct tsim_msg *m, int *fds, int maxfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * TSIM_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    int got = 0;
    ssize_t n;

    for (int i = 0; i < maxfds; i++)
        fds[i] = -1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET ? -EPIPE : -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; k++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
            if (got < maxfds)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    if (n == 0)
        goto bad_eof;
    if ((size_t)n != sizeof(*m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        m->magic != TSIM_MAGIC)
        goto bad_msg;
    return 0;

bad_eof:
    for (int i = 0; i < got; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    return -EPIPE;
bad_msg:
    for (int i = 0; i < got; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    return -EBADMSG;
}

void tsim_uuid_str(const struct tsim_uuid *u, char out[37])
{
    const uint8_t *n = u->clock_seq_and_node;
    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", (unsigned)u->time_low,
             (unsigned)u->time_mid, (unsigned)u->time_hi_and_version, n[0], n[1], n[2], n[3], n[4],
             n[5], n[6], n[7]);
}
