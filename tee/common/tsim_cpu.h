/*
 * Simulated TEE: a call runs on the caller's CPU (tee/common/tsim_cpu.c).
 *
 * On a real device a TEE call is a world switch on the core that made it: the secure world
 * runs on the caller's core, in its caches, and the caller resumes there. Here the two worlds
 * are processes, and left to the scheduler a call moved them: the woken TA instance went to
 * the idle core, and the caller, woken in turn while the instance was still finishing, went to
 * the core the instance had just left. Each move started a world on cold caches, and on a
 * virtual machine the core left idle meanwhile may be handed to another guest. Measured on the
 * 2-vCPU VM this was written on (`make bench`'s paired steps, LeNet training at batch 50 with
 * layers 4..10 in the TEE): 1.07-1.10x the time without the TEE, against 1.03-1.04x with the
 * call kept on the caller's CPU; an empty call (bin/tee_bench) 42 us against 23 us.
 *
 * So for the length of each call the calling thread is bound to the CPU it is on
 * (sched_setaffinity on that thread only: the caller's other threads are free), the message
 * names that CPU, and the TA instance binds itself to it before it runs the entry point.
 * The caller's own affinity comes back when the reply arrives. DZ_TEE_SAME_CPU=0 in the
 * caller's environment turns this off (each side then runs where the scheduler puts it, and
 * DZ_TEE_SPIN_NS applies); with one online CPU there is nothing to choose. Failures to bind
 * (a CPU set that forbids it) are ignored: the call still runs, only where the scheduler says.
 */
#ifndef TSIM_CPU_H
#define TSIM_CPU_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

/* The message's CPU field when the call is not bound to a CPU. */
#define TSIM_CPU_ANY (-1)

/* A calling thread's binding for the length of one call. */
struct tsim_cpu_hold {
    cpu_set_t saved; /* the thread's affinity before the call */
    bool held;       /* saved is to be restored */
};

/* Whether calls stay on the caller's CPU: DZ_TEE_SAME_CPU is not "0" and more than one CPU
 * is online. The variable is read at each call (a getenv), so a test can switch it between
 * calls; the online CPUs once per process. */
bool tsim_cpu_same_enabled(void);

/*
 * tsim_cpu_hold() - Binds the calling thread to the CPU it runs on, remembering its
 * affinity in @h, when tsim_cpu_same_enabled(). A thread whose affinity is already that one
 * CPU is left as it is (no system call to set nor to restore).
 * Return: that CPU, or TSIM_CPU_ANY (disabled, or the CPU or the affinity unknown).
 */
int32_t tsim_cpu_hold(struct tsim_cpu_hold *h);

/* tsim_cpu_release() - Gives the calling thread back the affinity tsim_cpu_hold() saved. */
void tsim_cpu_release(struct tsim_cpu_hold *h);

/*
 * tsim_cpu_follow() - TA side: binds the instance to @cpu, the caller's, before it runs a
 * call; TSIM_CPU_ANY (or a CPU out of range) gives it back the affinity it started with.
 * Only changes of CPU cost a system call.
 */
void tsim_cpu_follow(int32_t cpu);

/* Whether the instance is bound to a caller's CPU (it must then never spin: the caller
 * waiting on that CPU could not run). */
bool tsim_cpu_following(void);

#endif /* TSIM_CPU_H */
