/* Simulated TEE: the secure console (see tsim_console.h). */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int console_fd = -1;

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

void tsim_console_write(const char *buf, size_t len)
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
