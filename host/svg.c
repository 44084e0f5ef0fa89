/* svg.c - SVG charts as plain text (svg.h). */
#include "host/svg.h"

#include <errno.h>
#include <string.h>

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

const char *dz_svg_colour(size_t i)
{
    return colours[i % (sizeof colours / sizeof colours[0])];
}

void dz_svg_text(FILE *f, const char *s)
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

FILE *dz_svg_begin(const char *path, int width, int height, const char *title, struct dk_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        dk_fail(err, "%s: cannot create: %s", path, strerror(errno));
        return NULL;
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<text x=\"20\" y=\"24\" font-size=\"14\">",
            width, height, width, height);
    dz_svg_text(f, title);
    fprintf(f, "</text>\n");
    return f;
}

int dz_svg_end(FILE *f, const char *path, struct dk_error *err)
{
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dk_fail(err, "%s: write failed", path);
    return 0;
}

double dz_svg_x(const struct dz_svg_axes *a, double x)
{
    return a->left + (x - a->x0) / (a->x1 - a->x0) * a->width;
}

double dz_svg_y(const struct dz_svg_axes *a, double y)
{
    return a->top + (1 - (y - a->y0) / (a->y1 - a->y0)) * a->height;
}

void dz_svg_draw_axes(FILE *f, const struct dz_svg_axes *a)
{
    const int bottom = a->top + a->height;
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#000\"/>\n",
            a->left, a->top, a->width, a->height);
    for (int i = 0; i <= 5; i++) {
        double vx = a->x0 + (a->x1 - a->x0) * i / 5.0, vy = a->y0 + (a->y1 - a->y0) * i / 5.0;
        double x = dz_svg_x(a, vx), y = dz_svg_y(a, vy);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3g</text>\n",
                x, bottom, x, bottom + 5, x, bottom + 20, vx);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#000\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                a->left - 5, y, a->left, y, a->left - 8, y + 4, vy);
    }
    if (a->x_label) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", a->left + a->width / 2,
                bottom + 40);
        dz_svg_text(f, a->x_label);
        fprintf(f, "</text>\n");
    }
    if (a->y_label) {
        const int x = a->left - 45, y = a->top + a->height / 2;
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">",
                x, y, x, y);
        dz_svg_text(f, a->y_label);
        fprintf(f, "</text>\n");
    }
}

void dz_svg_line_begin(struct dz_svg_line *l, FILE *f, const struct dz_svg_axes *a,
                       const char *colour, double stroke_width, const char *dash)
{
    l->f = f;
    l->axes = a;
    l->points = 0;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"", colour, stroke_width);
    if (dash)
        fprintf(f, " stroke-dasharray=\"%s\"", dash);
    fprintf(f, " points=\"");
}

void dz_svg_line_to(struct dz_svg_line *l, double x, double y)
{
    fprintf(l->f, "%s%.2f,%.2f", l->points ? " " : "", dz_svg_x(l->axes, x), dz_svg_y(l->axes, y));
    l->points++;
}

void dz_svg_line_end(struct dz_svg_line *l)
{
    fprintf(l->f, "\"/>\n");
}

void dz_svg_dot(FILE *f, const struct dz_svg_axes *a, double x, double y, double radius,
                const char *colour)
{
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.1f\" fill=\"%s\"/>\n", dz_svg_x(a, x),
            dz_svg_y(a, y), radius, colour);
}

void dz_svg_legend(FILE *f, int x, int y, const char *colour, const char *text)
{
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
            "<text x=\"%d\" y=\"%d\">",
            x, y, x + 25, y, colour, x + 30, y + 4);
    dz_svg_text(f, text);
    fprintf(f, "</text>\n");
}
