/* mia_plot.c - ROC curves as SVG (mia_plot.h), drawn with host/svg.h. */
#include "host/mia_plot.h"

#include <stdio.h>

#include "host/svg.h"

/* A 360 x 360 square plot with room for the labels and, to its right, the legend. */
enum { LEFT = 60, TOP = 40, SIDE = 360, WIDTH = 720, HEIGHT = 460 };

int dz_roc_plot_svg(const char *path, const char *title, const struct dz_roc_curve *curves,
                    size_t n_curves, struct dk_error *err)
{
    FILE *f = dz_svg_begin(path, WIDTH, HEIGHT, title, err);
    if (!f)
        return -1;
    const struct dz_svg_axes axes = {
        0, 1, 0, 1, LEFT, TOP, SIDE, SIDE, "false-positive rate", "true-positive rate"};
    dz_svg_draw_axes(f, &axes);
    /* Chance: an attack that guesses lies on the diagonal. */
    struct dz_svg_line line;
    dz_svg_line_begin(&line, f, &axes, "#888", 1, "4 4");
    dz_svg_line_to(&line, 0, 0);
    dz_svg_line_to(&line, 1, 1);
    dz_svg_line_end(&line);
    for (size_t i = 0; i < n_curves; i++) {
        const struct dz_roc_curve *c = &curves[i];
        dz_svg_line_begin(&line, f, &axes, dz_svg_colour(i), 1.5, NULL);
        for (size_t k = 0; k < c->count; k++)
            dz_svg_line_to(&line, c->points[k].fpr, c->points[k].tpr);
        dz_svg_line_end(&line);
        char text[256];
        snprintf(text, sizeof text, "%s (AUC %.3f)", c->name, c->auc);
        dz_svg_legend(f, LEFT + SIDE + 15, TOP + 10 + (int)i * 20, dz_svg_colour(i), text);
    }
    return dz_svg_end(f, path, err);
}
