/*
 * Simulated TEE, the TA's trace output (trace.h): lines formatted as OP-TEE's
 * (lib/libutils/ext/trace.c) and cut at its 256-byte MAX_PRINT_SIZE, each a whole line on the
 * secure console (held with others unless an error: tsim_console.h).
 */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"
#include "tee/ta/tsim_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_PRINT_SIZE 256

/* Debug and flow lines carry "function:line"; error and info lines do not (OP-TEE default). */
#define LONG_PREFIX_THRESHOLD TRACE_DEBUG

static bool float_warned;

/* True if @fmt has a floating-point conversion, which OP-TEE's TA printf lacks. */
static bool has_float_conversion(const char *fmt)
{
    for (const char *p = fmt; (p = strchr(p, '%')) != NULL;) {
        p++;
        if (*p == '%') {
            p++;
            continue;
        }
        p += strspn(p, "-+ #0123456789.*'hlLqjzt");
        if (*p && strchr("fFeEgGaA", *p))
            return true;
    }
    return false;
}

void tsim_trace_printf(const char *function, int line, int level, bool level_ok, const char *fmt,
                       ...)
{
    static const char levels[] = {'U', 'E', 'I', 'D', 'F'};
    char buf[MAX_PRINT_SIZE];
    char c = 'M';
    int n;

    if (level_ok)
        c = (level >= TRACE_MIN && level <= TRACE_MAX) ? levels[level] : levels[0];
    if (level_ok && level < LONG_PREFIX_THRESHOLD)
        function = NULL;
    if (function)
        n = snprintf(buf, sizeof(buf), "%c/TA:  %s:%d ", c, function, line);
    else
        n = snprintf(buf, sizeof(buf), "%c/TA: ", c);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
    va_end(ap);
    if (m > 0)
        len += (size_t)m;
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    while (len > 0 && buf[len - 1] == '\n')
        len--;
    buf[len++] = '\n';
    tsim_console_line(c, buf, len);
    if (!float_warned && has_float_conversion(fmt)) {
        float_warned = true;
        tsim_console_printf('E', "TA",
                            "(simulator) \"%s\": OP-TEE's TA printf cannot format "
                            "floating point; this line prints differently on a device",
                            fmt);
    }
}
