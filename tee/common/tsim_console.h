/*
 * Simulated TEE: the secure console. Lines go to stderr, or are appended to the file named by
 * the environment variable DZ_TEE_LOG. Each line is one write(2), so lines of the core and of
 * the TA processes do not interleave within a line.
 */
#ifndef TSIM_CONSOLE_H
#define TSIM_CONSOLE_H

#include <stddef.h>

/* Opens the console (DZ_TEE_LOG or stderr) now; later calls do nothing. */
void tsim_console_init(void);

/* The console's file descriptor (opens it on first use). */
int tsim_console_fd(void);

/* Writes @len bytes as they are; async-signal-safe once the console is open. */
void tsim_console_write(const char *buf, size_t len);

/* Writes "<level>/<tag>: <message>\n", e.g. tsim_console_printf('E', "TC", "..."). */
void tsim_console_printf(char level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* TSIM_CONSOLE_H */
