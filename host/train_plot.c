/* train_plot.c - the training curves of train -plot (train_plot.h). */
#include "host/train_plot.h"

#include <stdlib.h>

#include "host/svg.h"

/* Each panel is a 560 x 220 plot; the legend sits in its top right corner. */
enum { LEFT = 80, TOP = 40, WIDTH = 560, HEIGHT = 220, GAP = 80, PAGE_WIDTH = 680 };

int dz_series_add(struct dz_series *s, double x, double y, double y2, struct dk_error *err)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (nx)
            s->x = nx;
        double *ny = nx ? realloc(s->y, cap * sizeof *ny) : NULL;
        if (ny)
            s->y = ny;
        double *ny2 = ny ? realloc(s->y2, cap * sizeof *ny2) : NULL;
        if (!ny2)
            return dk_fail(err, "out of memory after %zu points", s->n);
        s->y2 = ny2;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->y2[s->n] = y2;
    s->n++;
    return 0;
}

static void series_free(struct dz_series *s)
{
    free(s->x);
    free(s->y);
    free(s->y2);
}

void dz_train_history_free(struct dz_train_history *h)
{
    if (!h)
        return;
    series_free(&h->loss);
    series_free(&h->accuracy);
    *h = (struct dz_train_history){{0}, {0}};
}

/* The iteration range of both series, so the panels line up; never empty. */
static void x_range(const struct dz_train_history *h, double *x0, double *x1)
{
    const struct dz_series *all[2] = {&h->loss, &h->accuracy};
    *x0 = 0;
    *x1 = 1;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < all[k]->n; i++)
            if (all[k]->x[i] > *x1)
                *x1 = all[k]->x[i];
}

static void loss_panel(FILE *f, const struct dz_series *s, double x0, double x1, int top)
{
    double ymax = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->y[i] > ymax)
            ymax = s->y[i];
        if (s->y2[i] > ymax)
            ymax = s->y2[i];
    }
    /* A loss may be anything >= 0 (NaN fails every comparison and is left out of the range). */
    const struct dz_svg_axes a = {
        x0, x1, 0, ymax > 0 ? ymax * 1.05 : 1, LEFT, top, WIDTH, HEIGHT, "iteration", "loss"};
    dz_svg_draw_axes(f, &a);
    struct dz_svg_line line;
    dz_svg_line_begin(&line, f, &a, "#9ecae1", 1, NULL);
    for (size_t i = 0; i < s->n; i++)
        dz_svg_line_to(&line, s->x[i], s->y[i]);
    dz_svg_line_end(&line);
    dz_svg_line_begin(&line, f, &a, dz_svg_colour(0), 2, NULL);
    for (size_t i = 0; i < s->n; i++)
        dz_svg_line_to(&line, s->x[i], s->y2[i]);
    dz_svg_line_end(&line);
    dz_svg_legend(f, LEFT + WIDTH - 150, top + 15, "#9ecae1", "loss");
    dz_svg_legend(f, LEFT + WIDTH - 150, top + 35, dz_svg_colour(0), "avg loss");
}

static void accuracy_panel(FILE *f, const struct dz_series *s, double x0, double x1, int top)
{
    const struct dz_svg_axes a = {x0,  x1,    0,      1,           LEFT,
                                  top, WIDTH, HEIGHT, "iteration", "top-1 accuracy (valid)"};
    dz_svg_draw_axes(f, &a);
    struct dz_svg_line line;
    dz_svg_line_begin(&line, f, &a, dz_svg_colour(1), 2, NULL);
    for (size_t i = 0; i < s->n; i++)
        dz_svg_line_to(&line, s->x[i], s->y[i]);
    dz_svg_line_end(&line);
    for (size_t i = 0; i < s->n; i++)
        dz_svg_dot(f, &a, s->x[i], s->y[i], 3, dz_svg_colour(1));
    dz_svg_legend(f, LEFT + WIDTH - 150, top + HEIGHT - 15, dz_svg_colour(1), "accuracy");
}

int dz_train_plot_svg(const char *path, const char *title, const struct dz_train_history *h,
                      struct dk_error *err)
{
    const int panels = (h->loss.n > 0) + (h->accuracy.n > 0);
    if (panels == 0)
        return dk_fail(err, "%s: nothing to plot: no loss left the TEE and no validation ran",
                       path);
    FILE *f = dz_svg_begin(path, PAGE_WIDTH, TOP + panels * (HEIGHT + GAP), title, err);
    if (!f)
        return -1;
    double x0 = 0, x1 = 1;
    x_range(h, &x0, &x1);
    int top = TOP;
    if (h->loss.n > 0) {
        loss_panel(f, &h->loss, x0, x1, top);
        top += HEIGHT + GAP;
    }
    if (h->accuracy.n > 0)
        accuracy_panel(f, &h->accuracy, x0, x1, top);
    return dz_svg_end(f, path, err);
}
