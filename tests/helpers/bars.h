/* bars.h - a tiny synthetic image data set the tests write themselves: 12x12
 * gray images of a bright bar in one of four places (top, bottom, left, right)
 * over noise, as IDX files; class = i % 4. */
#ifndef TESTS_BARS_H
#define TESTS_BARS_H

#define BARS_SIDE 12
#define BARS_CLASSES 4

/* Draws image `seed` of class cls into px (BARS_SIDE * BARS_SIDE bytes). */
void bars_draw(unsigned seed, int cls, unsigned char *px);

/* Writes DIR/NAME-images.idx and DIR/NAME-labels.idx with count images drawn
 * from seeds seed0, seed0 + 1, ... Returns 0, or -1 if a file cannot be written. */
int bars_write_idx(const char *dir, const char *name, int count, unsigned seed0);

/* Writes DIR/bars.data (classes, train/valid IDX files named train-* and
 * valid-*, names, backup=backup, top=2) and DIR/bars.names. Returns 0 or -1. */
int bars_write_data_file(const char *dir);

#endif
