/* Simulated TEE: the secure console (see tsim_console.h). */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int console_fd = -1;

/* Held lines: held[0, held_len) is whole lines, the oldest held since held_since_ns. */
static char held[TSIM_CONSOLE_HOLD_BYTES];
static volatile size_t held_len;
static uint64_t held_since_ns;
static uint64_t hold_ns; /* 0: nothing is held */

void tsim_console_init(void)
{
    if (console_fd >= 0)
        return;
    const char *path = getenv("DZ_TEE_LOG");
    if (path && *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            console_fd = fd;
            return;
        }
    }
    console_fd = STDERR_FILENO;
}

int tsim_console_fd(void)
{
    tsim_console_init();
    return console_fd;
}

static void write_all(const char *buf, size_t len)
{
    int fd = console_fd >= 0 ? console_fd : STDERR_FILENO;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void tsim_console_flush(void)
{
    const size_t n = held_len;
    if (n == 0)
        return;
    /* Written before it is forgotten: a crash handler that interrupts this writes the lines
     * again rather than losing them. */
    write_all(held, n);
    held_len = 0;
}

void tsim_console_write(const char *buf, size_t len)
{
    tsim_console_flush();
    write_all(buf, len);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned tsim_console_hold_from_env(void)
{
    const char *env = getenv("DZ_TEE_LOG_HOLD_MS");
    if (!env || !*env)
        return TSIM_CONSOLE_HOLD_DEFAULT_MS;
    char *end = NULL;
    errno = 0;
    const unsigned long ms = strtoul(env, &end, 10);
    if (errno || *end || env[0] == '-' || ms > TSIM_CONSOLE_HOLD_MAX_MS)
        return TSIM_CONSOLE_HOLD_DEFAULT_MS;
    return (unsigned)ms;
}

void tsim_console_hold(unsigned ms)
{
    hold_ns = (uint64_t)ms * 1000000u;
    if (hold_ns == 0)
        tsim_console_flush();
}

void tsim_console_line(char level, const char *buf, size_t len)
{
    if (hold_ns == 0 || level == 'E' || len > sizeof held) {
        tsim_console_write(buf, len);
        return;
    }
    if (held_len + len > sizeof held)
        tsim_console_flush();
    if (held_len == 0)
        held_since_ns = now_ns();
    memcpy(held + held_len, buf, len);
    /* Counted once copied, so a flush from a signal handler writes whole lines only. */
    held_len += len;
}

int tsim_console_due_ms(void)
{
    if (held_len == 0)
        return -1;
    const uint64_t waited = now_ns() - held_since_ns;
    if (waited >= hold_ns)
        return 0;
    const uint64_t left = hold_ns - waited;
    return (int)((left + 999999u) / 1000000u);
}

void tsim_console_printf(char level, const char *tag, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "%c/%s: ", level, tag);
    if (n < 0)
        return;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    tsim_console_init();
    tsim_console_write(line, len);
}
