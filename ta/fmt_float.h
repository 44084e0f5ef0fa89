/*
 * fmt_float.h - decimal formatting of a float for TA log lines: OP-TEE's TA printf has no %f.
 */
#ifndef DZ_FMT_FLOAT_H
#define DZ_FMT_FLOAT_H

#include <stddef.h>

/* Decimals printed, as "%.5f". */
#define DZ_FMT_FLOAT_DECIMALS 5
/* Room for any float: sign, 39 integer digits, point, decimals, NUL. */
#define DZ_FMT_FLOAT_MAX 48

/*
 * dz_fmt_float() - Write @x as C's printf("%.5f", (double)x) does with glibc: the exact
 * binary value rounded to 5 decimals, halfway cases to even; "-" for a set sign bit (so
 * "-0.00000"), "inf", "-inf", "nan", "-nan".
 * @buf:  where the text goes, NUL-terminated, cut to @size - 1 characters like snprintf
 * @size: bytes at @buf; DZ_FMT_FLOAT_MAX always suffices
 * Return: the length of the whole text (without the NUL), as snprintf returns it.
 */
size_t dz_fmt_float(char *buf, size_t size, float x);

#endif /* DZ_FMT_FLOAT_H */
