/* Simulated TEE, client side: state behind TEEC_Context and TEEC_Session (internal). */
#ifndef TSIM_CLIENT_H
#define TSIM_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tee_client_api.h>

#include "tee/common/tsim_spin.h"

/* TEEC_SharedMemory.imp_flags */
#define TSIM_SHM_REGISTERED 1u /* the caller's buffer, copied through the bounce buffer */
#define TSIM_SHM_ALLOCATED 2u  /* a memfd mapped by client and TA */

struct tsim_context {
    pthread_mutex_t lock; /* the core socket and the session list */
    int core;             /* socket to dz-tee-core */
    pid_t core_pid;
    struct tsim_session *sessions;
};

struct tsim_session {
    struct tsim_session *next;
    struct tsim_context *ctx;
    pthread_mutex_t lock; /* one call at a time on the session socket */
    int sock;             /* socket to the TA instance */
    bool dead;            /* the instance died: every call is TEEC_ERROR_TARGET_DEAD */
    /* Bounce buffer: temporary and registered memrefs, and the shared header. */
    int bounce_fd;
    unsigned char *bounce;
    size_t bounce_size;
    bool bounce_sent; /* the TA has mapped this bounce buffer */
    /* Allocated shared blocks whose fd the TA already holds. */
    int *shm_ids;
    size_t n_shm;
    size_t cap_shm;
    struct tsim_spin spin; /* how long each command took the last time: spin or block */
};

/* Locks @ctx and unlinks and returns its first session, or NULL (used at finalize). */
struct tsim_session *tsim_context_pop_session(struct tsim_context *ctx);

/* Frees a session's resources without talking to the TA. */
void tsim_session_destroy(struct tsim_session *s);

/* Tells every session of @ctx that holds block @id to drop it (TEEC_ReleaseSharedMemory). */
void tsim_context_forget_shm(struct tsim_context *ctx, int id);

#endif /* TSIM_CLIENT_H */
