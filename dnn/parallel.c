/*
 * parallel.c - the engine's side of struct dnn_parallel: the serial fallback and the setter.
 * The threads themselves live with the caller (host/thread_pool.c); the TA has none.
 */
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

void dnn_network_set_parallel(struct dnn_network *net, const struct dnn_parallel *p)
{
    if (p)
        net->parallel = *p;
    else
        net->parallel = (struct dnn_parallel){0};
}
