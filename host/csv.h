/* csv.h - RFC 4180 CSV fields and JSON strings for the machine-readable outputs (predict/valid
 * -out, mia -csv). */
#ifndef DZ_CSV_H
#define DZ_CSV_H

#include <stdio.h>

/* Writes @s as one CSV field: as is, or quoted with quotes doubled when it holds a comma,
 * a quote or a line break (an image path may). */
void dz_csv_field(FILE *f, const char *s);

/* Writes @s as a JSON string (RFC 8259): quoted, with '"', '\\' and control characters
 * escaped; other bytes (UTF-8) as they are. For predict's JSON lines. */
void dz_json_string(FILE *f, const char *s);

#endif
