/* Simulated TEE: spin, then block (see tsim_spin.h). */
#define _GNU_SOURCE
#include "tee/common/tsim_spin.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Polls between pauses: each poll() is a system call, about 0.3 us here. */
#define PAUSES_PER_POLL 16

uint64_t tsim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tsim_spin_init(struct tsim_spin *s)
{
    unsigned long budget = TSIM_SPIN_DEFAULT_NS;
    const char *env = getenv("DZ_TEE_SPIN_NS");
    if (env && *env) {
        char *end = NULL;
        errno = 0;
        budget = strtoul(env, &end, 10);
        /* Anything but a plain number keeps the default: a typo must not cost CPU time. */
        if (errno || *end || budget > TSIM_SPIN_MAX_NS)
            budget = TSIM_SPIN_DEFAULT_NS;
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        budget = 0;
    s->budget_ns = (uint32_t)budget;
    for (uint32_t i = 0; i < TSIM_SPIN_SLOTS; i++) {
        s->gap_ns[i] = 0;
        s->misses[i] = 0;
        s->skip[i] = 0;
    }
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

int tsim_spin(struct tsim_spin *s, uint32_t slot, struct pollfd *pfd, nfds_t n)
{
    const uint32_t k = slot % TSIM_SPIN_SLOTS;
    if (!s->budget_ns || s->gap_ns[k] > s->budget_ns)
        return 0;
    if (s->skip[k]) {
        s->skip[k]--;
        return 0;
    }
    const uint64_t end = tsim_now_ns() + s->budget_ns;
    do {
        int rc = poll(pfd, n, 0);
        if (rc != 0) {
            s->misses[k] = 0;
            return rc > 0 ? rc : 0;
        }
        for (int i = 0; i < PAUSES_PER_POLL; i++)
            cpu_relax();
    } while (tsim_now_ns() < end);
    if (s->misses[k] < 6)
        s->misses[k]++;
    s->skip[k] = (uint8_t)((1u << s->misses[k]) - 1);
    return 0;
}

void tsim_spin_learn(struct tsim_spin *s, uint32_t slot, uint64_t since_ns, uint64_t peer_sent_ns)
{
    uint64_t gap = peer_sent_ns > since_ns ? peer_sent_ns - since_ns : 0;
    s->gap_ns[slot % TSIM_SPIN_SLOTS] = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
}
