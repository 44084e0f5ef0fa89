/* Simulated TEE: a call runs on the caller's CPU (see tsim_cpu.h). */
#define _GNU_SOURCE
#include "tee/common/tsim_cpu.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool tsim_cpu_same_enabled(void)
{
    const char *env = getenv("DZ_TEE_SAME_CPU");
    if (env && strcmp(env, "0") == 0)
        return false;
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

int32_t tsim_cpu_hold(struct tsim_cpu_hold *h)
{
    h->held = false;
    if (!tsim_cpu_same_enabled())
        return TSIM_CPU_ANY;
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof h->saved, &h->saved) != 0)
        return TSIM_CPU_ANY;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        return TSIM_CPU_ANY;
    h->held = true;
    return cpu;
}

void tsim_cpu_release(struct tsim_cpu_hold *h)
{
    if (h->held)
        (void)sched_setaffinity(0, sizeof h->saved, &h->saved);
    h->held = false;
}

/* The instance's binding: TSIM_CPU_ANY while it has its starting affinity. */
static int32_t bound = TSIM_CPU_ANY;
static cpu_set_t start_mask;
static bool start_known;

void tsim_cpu_follow(int32_t cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        cpu = TSIM_CPU_ANY;
    if (cpu == bound)
        return;
    if (!start_known) {
        if (sched_getaffinity(0, sizeof start_mask, &start_mask) != 0)
            return; /* without it the instance could never be let go again */
        start_known = true;
    }
    if (cpu == TSIM_CPU_ANY) {
        (void)sched_setaffinity(0, sizeof start_mask, &start_mask);
        bound = TSIM_CPU_ANY;
        return;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    /* Only within the instance's own set (a CPU set the caller has but it has not) */
    if (!CPU_ISSET(cpu, &start_mask) || sched_setaffinity(0, sizeof one, &one) != 0)
        return;
    bound = cpu;
}

bool tsim_cpu_following(void)
{
    return bound != TSIM_CPU_ANY;
}
