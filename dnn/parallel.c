/*
 * parallel.c - the engine's side of struct dnn_parallel: the serial fallback and the setter.
 * The threads themselves live with the caller (host/thread_pool.c); the TA has none.
 */
#include <stdlib.h>

#include "dnn/dnn_internal.h"

void dnn_parallel_for(const struct dnn_parallel *par, size_t n, void (*task)(void *arg, size_t i),
                      void *arg)
{
    if (par && par->run && n > 1) {
        par->run(par->ctx, n, task, arg);
        return;
    }
    for (size_t i = 0; i < n; i++)
        task(arg, i);
}

unsigned dnn_parallel_threads(const struct dnn_parallel *par)
{
    return par && par->run && par->threads > 1 ? par->threads : 1;
}

/* Tasks per thread in a loop over images: a thread the machine slows leaves its share. */
#define DNN_PAR_SLOTS_PER_THREAD 4

size_t dnn_parallel_tasks(const struct dnn_parallel *par, size_t n, size_t min_items)
{
    const size_t threads = dnn_parallel_threads(par);
    if (threads < 2 || n < 2)
        return 1;
    size_t tasks = n / (min_items ? min_items : 1);
    if (tasks > threads * DNN_PAR_SLOTS_PER_THREAD)
        tasks = threads * DNN_PAR_SLOTS_PER_THREAD;
    return tasks ? tasks : 1;
}

/* dnn_parallel_ranges's task: piece t of the split. */
struct ranges_split {
    void (*range)(void *arg, size_t i0, size_t i1);
    void *arg;
    size_t n, tasks;
};

static void ranges_task(void *arg, size_t t)
{
    const struct ranges_split *s = arg;
    s->range(s->arg, dnn_parallel_first(s->n, s->tasks, t),
             dnn_parallel_first(s->n, s->tasks, t + 1));
}

void dnn_parallel_ranges(const struct dnn_parallel *par, size_t n, size_t min_items,
                         void (*range)(void *arg, size_t i0, size_t i1), void *arg)
{
    const size_t tasks = dnn_parallel_tasks(par, n, min_items);
    if (tasks < 2) {
        range(arg, 0, n);
        return;
    }
    struct ranges_split s = {range, arg, n, tasks};
    dnn_parallel_for(par, tasks, ranges_task, &s);
}

/* At most this much scratch for them: a large network's im2col per image is tens of MB, and
 * its products are big enough to split one image at a time. */
#define DNN_PAR_SCRATCH_MAX ((size_t)64 << 20)

enum dnn_status dnn_network_set_parallel(struct dnn_network *net, const struct dnn_parallel *p)
{
    dnn_network_set_parallel_free(net);
    net->parallel = (struct dnn_parallel){0};
    const unsigned threads = dnn_parallel_threads(p);
    if (threads < 2)
        return DNN_OK;
    net->parallel = *p;
    size_t slots = (size_t)threads * DNN_PAR_SLOTS_PER_THREAD, bytes = 0;
    if (slots > (size_t)net->cfg.batch)
        slots = (size_t)(net->cfg.batch > 1 ? net->cfg.batch : 1);
    const size_t slot_bytes = net->workspace_floats * sizeof(float);
    if (slot_bytes && slots > DNN_PAR_SCRATCH_MAX / slot_bytes)
        slots = DNN_PAR_SCRATCH_MAX / slot_bytes;
    if (slots < threads)
        return DNN_OK; /* no loops over images: each image's work is split instead */
    if (slot_bytes) {
        if (!dnn_mul_size(slots, slot_bytes, &bytes) || !(net->par_workspace = malloc(bytes))) {
            net->parallel = (struct dnn_parallel){0};
            return DNN_ERR_NOMEM;
        }
    }
    net->par_slots = slots;
    return DNN_OK;
}
