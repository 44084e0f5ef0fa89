/* progress.h - a one-line progress display (images/s, ETA) on stderr, shown
 * only when stderr is a terminal so logs and pipes stay clean. */
#ifndef DZ_PROGRESS_H
#define DZ_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct dz_progress {
    bool enabled;
    bool shown;
    uint64_t total;      /* iterations to reach; 0 = unknown */
    uint64_t start_iter; /* iteration when started */
    uint64_t images_per_iter;
    double start_time;
};

void dz_progress_start(struct dz_progress *p, uint64_t total, uint64_t start_iter,
                       uint64_t images_per_iter);
void dz_progress_update(struct dz_progress *p, uint64_t iter);
/* Erases the line so normal output can be printed. */
void dz_progress_clear(struct dz_progress *p);

/* A monotonic clock in seconds, for durations. */
double dz_seconds(void);

#endif
