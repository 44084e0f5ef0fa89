/* mia_plot.h - ROC curves as a small self-contained SVG file. */
#ifndef DZ_MIA_PLOT_H
#define DZ_MIA_PLOT_H

#include <stddef.h>

#include "darknet/error.h"
#include "host/mia_stats.h"

/* One curve: its legend text (plain text; <, > and & are escaped) and its points. */
struct dz_roc_curve {
    const char *name;
    const struct dz_roc_point *points; /* (count) from dz_mia_roc */
    size_t count;
    double auc; /* shown in the legend */
};

/*
 * dz_roc_plot_svg - writes @path: axes with ticks at 0, 0.2, ..., 1 (FPR across, TPR up),
 * the chance diagonal, one polyline per curve in its own colour and a legend with each
 * name and AUC, under @title. Returns 0, or -1 with a message naming @path in err.
 */
int dz_roc_plot_svg(const char *path, const char *title, const struct dz_roc_curve *curves,
                    size_t n_curves, struct dk_error *err);

#endif
