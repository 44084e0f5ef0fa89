/*
 * svg.h - small self-contained SVG charts written as plain text (no library): a document,
 * framed axes with ticks, polylines and legend entries. mia's ROC curves and train's loss
 * and accuracy curves are drawn with it.
 */
#ifndef DZ_SVG_H
#define DZ_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "darknet/error.h"

/* A plot area: data ranges [x0, x1] x [y0, y1] (x0 < x1, y0 < y1) drawn in the rectangle
 * at (left, top) of width x height SVG user units, y growing upwards. */
struct dz_svg_axes {
    double x0, x1, y0, y1;
    int left, top, width, height;
    const char *x_label, *y_label; /* plain text, or NULL */
};

/*
 * dz_svg_begin - creates @path and writes the document head (@width x @height units, a
 * white background, @title at the top left, escaped). Returns the open file, or NULL with
 * a message naming @path in err.
 */
FILE *dz_svg_begin(const char *path, int width, int height, const char *title,
                   struct dk_error *err);

/* Closes the document and the file: 0, or -1 with "PATH: write failed" in err. */
int dz_svg_end(FILE *f, const char *path, struct dk_error *err);

/* Text content with the three characters XML reserves escaped. */
void dz_svg_text(FILE *f, const char *s);

/* The frame, 6 ticks on each axis labelled "%.3g", and the axis labels. */
void dz_svg_draw_axes(FILE *f, const struct dz_svg_axes *a);

/* The SVG x and y of a data point (not clipped). */
double dz_svg_x(const struct dz_svg_axes *a, double x);
double dz_svg_y(const struct dz_svg_axes *a, double y);

/* A polyline point by point: begin, to (any number), end. */
struct dz_svg_line {
    FILE *f;
    const struct dz_svg_axes *axes;
    size_t points;
};
/* @dash: an SVG stroke-dasharray such as "4 4", or NULL for a solid line. */
void dz_svg_line_begin(struct dz_svg_line *l, FILE *f, const struct dz_svg_axes *a,
                       const char *colour, double stroke_width, const char *dash);
void dz_svg_line_to(struct dz_svg_line *l, double x, double y);
void dz_svg_line_end(struct dz_svg_line *l);

/* A dot of @radius units at a data point (single points, e.g. one validation). */
void dz_svg_dot(FILE *f, const struct dz_svg_axes *a, double x, double y, double radius,
                const char *colour);

/* A legend entry: a short bar in @colour at (x, y) and @text (escaped) after it. */
void dz_svg_legend(FILE *f, int x, int y, const char *colour, const char *text);

/* The i-th of a fixed set of distinguishable colours (cycles). */
const char *dz_svg_colour(size_t i);

#endif
