/* mia_plot.c - ROC curves as SVG (mia_plot.h): plain text, no library. */
#include "host/mia_plot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Plot area in SVG user units: a 360 x 360 square with room for the labels and legend. */
enum { LEFT = 60, TOP = 40, SIDE = 360, WIDTH = 720, HEIGHT = 460 };

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

static double px(double fpr)
{
    return LEFT + fpr * SIDE;
}

static double py(double tpr)
{
    return TOP + (1 - tpr) * SIDE;
}

/* Text content with the three characters XML reserves escaped. */
static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

static void axes(FILE *f)
{
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#000\"/>\n",
            LEFT, TOP, SIDE, SIDE);
    for (int i = 0; i <= 5; i++) {
        double v = i / 5.0;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n",
                px(v), TOP + SIDE, px(v), TOP + SIDE + 5, px(v), TOP + SIDE + 20, v);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#000\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                LEFT - 5, py(v), LEFT, py(v), LEFT - 8, py(v) + 4, v);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">false-positive rate</text>\n",
            LEFT + SIDE / 2, TOP + SIDE + 40);
    fprintf(f,
            "<text x=\"15\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 15 %d)\">"
            "true-positive rate</text>\n",
            TOP + SIDE / 2, TOP + SIDE / 2);
    /* Chance: an attack that guesses lies on the diagonal. */
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
            "stroke-dasharray=\"4 4\"/>\n",
            px(0), py(0), px(1), py(1));
}

static void curve(FILE *f, const struct dz_roc_curve *c, const char *colour, int row)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colour);
    for (size_t i = 0; i < c->count; i++)
        fprintf(f, "%s%.2f,%.2f", i ? " " : "", px(c->points[i].fpr), py(c->points[i].tpr));
    fprintf(f, "\"/>\n");
    int y = TOP + 10 + row * 20;
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
            "<text x=\"%d\" y=\"%d\">",
            LEFT + SIDE + 15, y, LEFT + SIDE + 40, y, colour, LEFT + SIDE + 45, y + 4);
    put_text(f, c->name);
    fprintf(f, " (AUC %.3f)</text>\n", c->auc);
}

int dz_roc_plot_svg(const char *path, const char *title, const struct dz_roc_curve *curves,
                    size_t n_curves, struct dk_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return dk_fail(err, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<text x=\"%d\" y=\"24\" font-size=\"14\">",
            WIDTH, HEIGHT, WIDTH, HEIGHT, LEFT);
    put_text(f, title);
    fprintf(f, "</text>\n");
    axes(f);
    const size_t n_colours = sizeof colours / sizeof colours[0];
    for (size_t i = 0; i < n_curves; i++)
        curve(f, &curves[i], colours[i % n_colours], (int)i);
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dk_fail(err, "%s: write failed", path);
    return 0;
}
