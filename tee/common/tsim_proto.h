/*
 * Simulated TEE: the messages between the client library (normal world), the core process and
 * the TA processes (secure world). Internal ABI; all three are built from this header.
 *
 * Processes and sockets (all AF_UNIX SOCK_SEQPACKET, one message per datagram):
 *
 *   host (libteec_sim) --core socket--> dz-tee-core --control socket--> <uuid>.ta instance
 *        \____________________ session socket (one per session) __________/
 *
 * - core socket: TSIM_CORE_OPEN asks the core for a session with a TA; the core finds or starts
 *   the instance and answers TSIM_CORE_REPLY carrying the host end of a new session socket
 *   (SCM_RIGHTS); the TA end went to the instance with TSIM_CTL_NEW_CLIENT. TSIM_CORE_SYNC,
 *   after a session's close, makes the core handle what its instances said (an instance left
 *   idle is told to end) before it answers TSIM_CORE_REPLY.
 * - session socket: TSIM_TA_OPEN_SESSION, then TSIM_TA_INVOKE..., then TSIM_TA_CLOSE_SESSION,
 *   each answered by TSIM_TA_REPLY; TSIM_TA_SHM_FORGET is one-way. End of file means the
 *   instance died (panic or crash): the client reports TEEC_ERROR_TARGET_DEAD.
 * - control socket: TSIM_CTL_HELLO (instance started: its flags and the bytes it needs, nothing
 *   allocated yet), TSIM_CTL_COMMIT (core to instance: the secure-memory pool granted them),
 *   TSIM_CTL_READY (heap and stack committed, or the error), TSIM_CTL_IDLE (no session left),
 *   TSIM_CTL_DESTROY (core to instance: run TA_DestroyEntryPoint and exit).
 *
 * Memory references never travel in messages: a memref is a (region, offset, size) triple where
 * the region is a memfd mapped by both sides: an allocated TEEC_SharedMemory block (sent once
 * per session with SCM_RIGHTS, then named by id) or the session's bounce buffer, which carries
 * temporary and registered memrefs (copied in and out by the client, as OP-TEE's libteec does).
 * Both kinds are sealed against shrinking (F_SEAL_SHRINK) so the host cannot make a TA access
 * fault by truncating the file; the TA checks the seal and the size before mapping.
 */
#ifndef TSIM_PROTO_H
#define TSIM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TSIM_MAGIC 0x445a5431u /* "DZT1" */

enum tsim_kind {
    TSIM_CORE_OPEN = 1,
    TSIM_CORE_REPLY,
    TSIM_TA_OPEN_SESSION,
    TSIM_TA_INVOKE,
    TSIM_TA_CLOSE_SESSION,
    TSIM_TA_SHM_FORGET,
    TSIM_TA_REPLY,
    TSIM_CTL_HELLO,
    TSIM_CTL_NEW_CLIENT,
    TSIM_CTL_IDLE,
    TSIM_CTL_DESTROY,
    TSIM_CTL_COMMIT,
    TSIM_CTL_READY,
    TSIM_CORE_SYNC,
};

/* Where a memref points. */
enum tsim_mem {
    TSIM_MEM_NULL = 0, /* NULL buffer, size 0 */
    TSIM_MEM_BOUNCE,   /* the session's bounce buffer, at offset */
    TSIM_MEM_SHM,      /* allocated shared block shm_id, at offset */
};

/*
 * Secure memory: the cores share one pool for all the instances they start (OP-TEE has one
 * fixed secure pool for all TAs; tee/core/tsim_pool.h). An instance costs what it commits (its
 * TA_DATA_SIZE heap and its stack, each rounded up to pages, TSIM_CTL_HELLO's id) plus
 * TSIM_INSTANCE_OVERHEAD for what the process itself dirties: measured at about 530 KiB (libc,
 * libcrypto's relocations, the runtime's tables), as OP-TEE also spends secure memory on each TA's
 * code, data and ldelf.
 */
#define TSIM_INSTANCE_OVERHEAD (512u * 1024u)
/*
 * Stack the TA runtime adds to TA_STACK_SIZE: glibc's printf and OpenSSL, which the simulated
 * Internal Core API runs on the TA stack, need more than OP-TEE's small libc and in-kernel
 * crypto. Sanitized builds need more again for their redzones. Here because an instance's
 * cost in the pool (and the tests that fill it) depend on it.
 */
#ifdef __SANITIZE_ADDRESS__
#define TSIM_STACK_SLACK (64u * 1024u)
#define TSIM_STACK_FACTOR 4u
#else
#define TSIM_STACK_SLACK (8u * 1024u)
#define TSIM_STACK_FACTOR 1u
#endif

/*
 * The pool when DZ_TEE_POOL_BYTES is not set (see tee/README.md for why this size), shared by
 * every core of the user (tee/core/tsim_pool.h).
 */
#define TSIM_POOL_DEFAULT (64ull * 1024u * 1024u)

/* The file descriptor every secure-world process gets its parent's socket on. */
#define TSIM_INHERITED_FD 3

/*
 * The bounce buffer starts with a header the client and the TA share for the whole session:
 * the cancellation flag (TEEC_RequestCancellation), then reserved bytes. Memrefs follow, each
 * at a multiple of TSIM_BOUNCE_ALIGN.
 */
struct tsim_bounce_hdr {
    uint32_t cancel;
    uint32_t reserved[15];
};
#define TSIM_BOUNCE_ALIGN 64u
#define TSIM_BOUNCE_MIN (64u * 1024u)

/* At most one fd per parameter plus the bounce buffer. */
#define TSIM_MAX_FDS 5

struct tsim_uuid {
    uint32_t time_low;
    uint16_t time_mid;
    uint16_t time_hi_and_version;
    uint8_t clock_seq_and_node[8];
};

struct tsim_mparam {
    uint32_t type;     /* TEE_PARAM_TYPE_* as the TA sees it */
    uint32_t mem;      /* enum tsim_mem */
    uint64_t shm_id;   /* TSIM_MEM_SHM: the block */
    uint64_t shm_size; /* TSIM_MEM_SHM with fd_index >= 0: bytes to map */
    uint64_t offset;   /* in the region */
    uint64_t size;     /* memref bytes; on reply the size the TA set */
    uint32_t a;        /* values, both ways */
    uint32_t b;
    int32_t fd_index; /* TSIM_MEM_SHM: index of the block's fd in this message, or -1 */
    uint32_t reserved;
};

struct tsim_msg {
    uint32_t magic;
    uint32_t kind;           /* enum tsim_kind */
    uint32_t cmd;            /* TSIM_TA_INVOKE: command id */
    uint32_t param_types;    /* TEE_PARAM_TYPES word as the TA sees it */
    uint32_t result;         /* replies, TSIM_CTL_HELLO, TSIM_CTL_READY: TEE_Result */
    uint32_t origin;         /* replies: TEE_ORIGIN_* */
    uint32_t login;          /* TSIM_CORE_OPEN: TEEC_LOGIN_* */
    int32_t bounce_fd_index; /* index of a new bounce buffer fd in this message, or -1 */
    uint64_t bounce_size;    /* with bounce_fd_index >= 0: bytes to map */
    uint64_t id;             /* TSIM_TA_SHM_FORGET: block id; TSIM_CTL_IDLE: clients accepted;
                                TSIM_CTL_HELLO: bytes of heap and stack to commit */
    uint32_t ta_flags;       /* TSIM_CTL_HELLO: TA_FLAGS */
    uint32_t data_size;      /* TSIM_CTL_HELLO: TA_DATA_SIZE */
    uint32_t stack_size;     /* TSIM_CTL_HELLO: TA_STACK_SIZE */
    uint32_t created;        /* TSIM_CTL_IDLE: TA_CreateEntryPoint succeeded */
    struct tsim_uuid uuid;   /* TSIM_CORE_OPEN, TSIM_CTL_HELLO */
    struct tsim_mparam params[4];
    uint64_t sent_ns; /* TSIM_TA_INVOKE and TSIM_TA_REPLY: CLOCK_MONOTONIC at sending, for the
                         receiver's spin-or-block choice only (tee/common/tsim_spin.h) */
    int32_t cpu;      /* TSIM_TA_OPEN_SESSION, _INVOKE, _CLOSE_SESSION: the CPU the caller
                         waits on, where the instance runs the call (tee/common/tsim_cpu.h), or
                         TSIM_CPU_ANY */
    uint32_t reserved;
};

_Static_assert(sizeof(struct tsim_uuid) == 16, "tsim_uuid layout");
_Static_assert(sizeof(struct tsim_mparam) == 56, "tsim_mparam layout");
_Static_assert(sizeof(struct tsim_msg) == 80 + 4 * 56 + 16, "tsim_msg layout");

/* A zeroed message of @kind with every fd index at -1. */
void tsim_msg_init(struct tsim_msg *m, enum tsim_kind kind);

/*
 * tsim_send() - Send one message with @nfds file descriptors (SCM_RIGHTS).
 * Return: 0, or a negative errno (-EPIPE when the peer is gone). Never raises SIGPIPE.
 */
int tsim_send(int sock, const struct tsim_msg *m, const int *fds, int nfds);

/*
 * tsim_recv() - Receive one message and up to @maxfds descriptors (close-on-exec).
 * Unused slots of @fds are -1; descriptors beyond @maxfds are closed.
 * Return: 0; -EPIPE at end of file; -EBADMSG for a message of the wrong size or magic;
 * another negative errno otherwise.
 */
int tsim_recv(int sock, struct tsim_msg *m, int *fds, int maxfds);

/* Writes "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and a NUL into @out (37 bytes). */
void tsim_uuid_str(const struct tsim_uuid *u, char out[37]);

#endif /* TSIM_PROTO_H */
