/*
 * batch_loader.c - double-buffered training batches on a background thread (batch_loader.h).
 *
 * Two slots: while the network trains on one, the thread fills the other. The thread fills
 * slots 0, 1, 0, 1, ... and the consumer takes them in the same order, so batches arrive in
 * the order they were drawn; the random stream is touched by the thread only.
 */
#include "host/batch_loader.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    float *x, *y;
    bool full; /* loaded, not yet handed back */
    int rc;    /* dk_dataset_train_batch's result */
    struct dk_error err;
};

struct dz_batch_loader {
    const struct dk_dataset *ds;
    struct dnn_rng *rng;
    const struct dk_augment_params *aug;
    int n, w, h, c;
    struct slot slot[2];
    int taken; /* the slot the consumer holds, or -1 */
    int next;  /* the slot the consumer takes next */
    bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a slot filled or emptied, or stop */
};

static void *loader_main(void *arg)
{
    struct dz_batch_loader *l = arg;
    pthread_mutex_lock(&l->lock);
    for (int s = 0;; s ^= 1) {
        while (!l->stop && l->slot[s].full)
            pthread_cond_wait(&l->changed, &l->lock);
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->lock);
        /* The slot is empty and not the consumer's: it is this thread's until marked full. */
        struct slot *sl = &l->slot[s];
        sl->rc = dk_dataset_train_batch(l->ds, l->rng, l->n, l->w, l->h, l->c, l->aug, sl->x, sl->y,
                                        &sl->err);
        pthread_mutex_lock(&l->lock);
        sl->full = true;
        pthread_cond_broadcast(&l->changed);
        if (sl->rc != 0)
            break; /* the stream past a failed batch is of no use */
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int dz_batch_loader_start(struct dz_batch_loader **out, const struct dk_dataset *ds,
                          struct dnn_rng *rng, int n, int w, int h, int c, int classes,
                          const struct dk_augment_params *aug, struct dk_error *err)
{
    *out = NULL;
    struct dz_batch_loader *l = calloc(1, sizeof *l);
    if (!l)
        return dk_fail(err, "out of memory for the batch loader");
    *l = (struct dz_batch_loader){
        .ds = ds, .rng = rng, .aug = aug, .n = n, .w = w, .h = h, .c = c, .taken = -1};
    const size_t xs = (size_t)n * (size_t)w * (size_t)h * (size_t)c;
    const size_t ys = (size_t)n * (size_t)classes;
    for (int s = 0; s < 2; s++) {
        l->slot[s].x = malloc(xs * sizeof(float));
        l->slot[s].y = malloc(ys * sizeof(float));
        if (!l->slot[s].x || !l->slot[s].y) {
            for (int t = 0; t <= s; t++) {
                free(l->slot[t].x);
                free(l->slot[t].y);
            }
            free(l);
            return dk_fail(err, "out of memory for two batches of %d images", n);
        }
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->changed, NULL);
    /* The thread blocks every signal: SIGINT and SIGTERM stay with the training thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, loader_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&l->changed);
        pthread_mutex_destroy(&l->lock);
        for (int s = 0; s < 2; s++) {
            free(l->slot[s].x);
            free(l->slot[s].y);
        }
        free(l);
        return dk_fail(err, "cannot start the batch loader thread: %s", strerror(rc));
    }
    *out = l;
    return 0;
}

int dz_batch_loader_next(struct dz_batch_loader *l, const float **x, const float **y,
                         struct dk_error *err)
{
    pthread_mutex_lock(&l->lock);
    if (l->taken >= 0) {
        l->slot[l->taken].full = false;
        l->taken = -1;
        pthread_cond_broadcast(&l->changed);
    }
    struct slot *sl = &l->slot[l->next];
    while (!sl->full)
        pthread_cond_wait(&l->changed, &l->lock);
    pthread_mutex_unlock(&l->lock);
    if (sl->rc != 0) {
        /* Kept full: the thread has stopped, and a further call gets the same error. */
        *err = sl->err;
        return -1;
    }
    l->taken = l->next;
    l->next ^= 1;
    *x = sl->x;
    *y = sl->y;
    return 0;
}

void dz_batch_loader_stop(struct dz_batch_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->changed);
    pthread_mutex_destroy(&l->lock);
    for (int s = 0; s < 2; s++) {
        free(l->slot[s].x);
        free(l->slot[s].y);
    }
    free(l);
}
