#include "host/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double dz_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dz_progress_start(struct dz_progress *p, uint64_t total, uint64_t start_iter,
                       uint64_t images_per_iter)
{
    p->enabled = isatty(STDERR_FILENO);
    p->shown = false;
    p->total = total;
    p->start_iter = start_iter;
    p->images_per_iter = images_per_iter;
    p->start_time = dz_seconds();
}

void dz_progress_update(struct dz_progress *p, uint64_t iter)
{
    if (!p->enabled || iter <= p->start_iter)
        return;
    double elapsed = dz_seconds() - p->start_time;
    double done = (double)(iter - p->start_iter);
    double rate = done * (double)p->images_per_iter / (elapsed > 0 ? elapsed : 1e-9);
    if (p->total > iter) {
        double eta = elapsed / done * (double)(p->total - iter);
        unsigned s = (unsigned)eta;
        fprintf(stderr, "\r[%5.1f%%] %llu/%llu  %.0f img/s  ETA %uh%02um%02us",
                100.0 * (double)iter / (double)p->total, (unsigned long long)iter,
                (unsigned long long)p->total, rate, s / 3600, s / 60 % 60, s % 60);
    } else {
        fprintf(stderr, "\r%llu  %.0f img/s", (unsigned long long)iter, rate);
    }
    fflush(stderr);
    p->shown = true;
}

void dz_progress_clear(struct dz_progress *p)
{
    if (p->shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        p->shown = false;
    }
}
