/* csv.h - RFC 4180 fields for the machine-readable outputs (predict/valid -out, mia -csv). */
#ifndef DZ_CSV_H
#define DZ_CSV_H

#include <stdio.h>

/* Writes @s as one CSV field: as is, or quoted with quotes doubled when it holds a comma,
 * a quote or a line break (an image path may). */
void dz_csv_field(FILE *f, const char *s);

#endif
