/* Simulated TEE: a call runs on the caller's CPU (see tsim_cpu.h). */
#define _GNU_SOURCE
#include "tee/common/tsim_cpu.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Online CPUs, read once: sysconf() opens, reads and closes /sys/devices/system/cpu/online
 * each time, three system calls that were a third of an empty call's cost (bin/tee_bench,
 * both sides on one CPU: 27 us against 17-19 us). 0 until read. */
static long online_cpus;

bool tsim_cpu_same_enabled(void)
{
    const char *env = getenv("DZ_TEE_SAME_CPU");
    if (env && strcmp(env, "0") == 0)
        return false;
    if (online_cpus == 0)
        online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return online_cpus > 1;
}

int32_t tsim_cpu_hold(struct tsim_cpu_hold *h)
{
    h->held = false;
    if (!tsim_cpu_same_enabled())
        return TSIM_CPU_ANY;
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof h->saved, &h->saved) != 0)
        return TSIM_CPU_ANY;
    /* Already bound to this one CPU (taskset, or a caller that pins itself): nothing to set
     * nor to restore, two system calls fewer per call. */
    if (CPU_COUNT(&h->saved) == 1 && CPU_ISSET(cpu, &h->saved))
        return cpu;
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
