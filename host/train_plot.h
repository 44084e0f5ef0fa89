/* train_plot.h - what train -plot draws: the loss per iteration and the validation accuracy
 * of -valid_every, kept as training runs and written as one SVG (host/svg.h) at the end. */
#ifndef DZ_TRAIN_PLOT_H
#define DZ_TRAIN_PLOT_H

#include <stddef.h>

#include "darknet/error.h"

/* A growing series of (x, y, y2) points; y2 is unused by the accuracy series. */
struct dz_series {
    double *x, *y, *y2; /* (n) each */
    size_t n, cap;
};

struct dz_train_history {
    struct dz_series loss;     /* x: iteration, y: the iteration's loss, y2: the running avg */
    struct dz_series accuracy; /* x: iteration, y: top-1 accuracy on `valid` */
};

/* Appends a point; 0, or -1 with "out of memory" in err (the series is unchanged). */
int dz_series_add(struct dz_series *s, double x, double y, double y2, struct dk_error *err);

/* Frees both series and empties *h; accepts NULL. */
void dz_train_history_free(struct dz_train_history *h);

/*
 * dz_train_plot_svg - writes @path: a panel with the loss (thin) and its running average
 * (bold) against the iteration when h->loss has points, and below it a panel with the top-1
 * accuracy in [0, 1] when h->accuracy has points; @title on top. Returns 0, or -1 with a
 * message in err (nothing to draw, or the file cannot be written).
 */
int dz_train_plot_svg(const char *path, const char *title, const struct dz_train_history *h,
                      struct dk_error *err);

#endif
