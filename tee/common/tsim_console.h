/*
 * Simulated TEE: the secure console. Lines go to stderr, or are appended to the file named by
 * the environment variable DZ_TEE_LOG. Each write(2) carries whole lines, so lines of the core
 * and of the TA processes do not interleave within a line.
 *
 * A TA instance may hold its lines to write them together (tsim_console_hold): a training step
 * logs a loss line, and at LeNet's ~10 ms a step one write(2) each cost about a third of a
 * call's overhead on a file of an ext4 file system (tee/README.md, "Secure console"). Held lines
 * keep their order; any immediate write (tsim_console_write, tsim_console_printf) writes what is
 * held first.
 */
#ifndef TSIM_CONSOLE_H
#define TSIM_CONSOLE_H

#include <stddef.h>

/* Opens the console (DZ_TEE_LOG or stderr) now; later calls do nothing. */
void tsim_console_init(void);

/* The console's file descriptor (opens it on first use). */
int tsim_console_fd(void);

/* Writes what is held, then @len bytes as they are; async-signal-safe once the console is
 * open. */
void tsim_console_write(const char *buf, size_t len);

/* Writes "<level>/<tag>: <message>\n" at once, e.g. tsim_console_printf('E', "TC", "..."). */
void tsim_console_printf(char level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Bytes of lines the console holds at most; a longer line is written at once. */
#define TSIM_CONSOLE_HOLD_BYTES 4096u
/* DZ_TEE_LOG_HOLD_MS when unset, and its largest value. */
#define TSIM_CONSOLE_HOLD_DEFAULT_MS 100u
#define TSIM_CONSOLE_HOLD_MAX_MS 10000u

/*
 * tsim_console_hold_from_env() - How long lines may be held, from DZ_TEE_LOG_HOLD_MS.
 * Return: milliseconds; TSIM_CONSOLE_HOLD_DEFAULT_MS when unset, empty, not a plain number
 * or above TSIM_CONSOLE_HOLD_MAX_MS; 0 (write each line at once) when it says 0.
 */
unsigned tsim_console_hold_from_env(void);

/* From now on tsim_console_line() holds lines up to @ms milliseconds; 0 writes what is held
 * and holds nothing more. */
void tsim_console_hold(unsigned ms);

/*
 * tsim_console_line() - One whole line (ending in '\n') at @level ('E', 'I', 'D', ...).
 * Error lines ('E') are written at once, after what is held; other lines are held when
 * tsim_console_hold() allows it, written when TSIM_CONSOLE_HOLD_BYTES would overflow, or by
 * tsim_console_flush().
 */
void tsim_console_line(char level, const char *buf, size_t len);

/* Writes what is held. Async-signal-safe once the console is open. */
void tsim_console_flush(void);

/*
 * tsim_console_due_ms() - How long until the oldest held line must be written.
 * Return: -1 when nothing is held, else milliseconds, rounded up (0: now), for poll(2).
 */
int tsim_console_due_ms(void);

#endif /* TSIM_CONSOLE_H */
