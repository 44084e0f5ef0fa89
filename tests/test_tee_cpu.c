/*
 * test_tee_cpu.c - a simulated TEE call runs on the caller's CPU (tee/common/tsim_cpu.h):
 * the calling thread is bound to its CPU for the call and gets its own affinity back, the
 * TA instance binds itself to the CPU the call names and lets go when a call names none,
 * DZ_TEE_SAME_CPU=0 turns it off; and end to end, after a call from a thread on CPU k the
 * conformance TA's instance process is bound to CPU k (read from /proc, as any user can).
 * Needs two online CPUs for anything to bind; with one, the tests check that nothing does.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>
#include <unistd.h>

#include "tee/common/tsim_cpu.h"
#include "tests/tee_conformance.h"

static bool two_cpus(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

/* The calling thread's affinity. */
static cpu_set_t own_mask(void)
{
    cpu_set_t m;
    assert_int_equal(sched_getaffinity(0, sizeof m, &m), 0);
    return m;
}

/* Binds the calling thread to @cpu (the test's own choice of CPU). */
static void bind_to(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
}

static void test_hold_binds_and_releases(void **state)
{
    (void)state;
    unsetenv("DZ_TEE_SAME_CPU");
    const cpu_set_t before = own_mask();
    struct tsim_cpu_hold h;
    const int32_t cpu = tsim_cpu_hold(&h);
    if (two_cpus() && CPU_COUNT(&before) == 1) { /* run under taskset: nothing to bind */
        assert_true(cpu >= 0 && CPU_ISSET(cpu, &before));
        assert_false(h.held);
        return;
    }
    if (!two_cpus()) {
        assert_int_equal(cpu, TSIM_CPU_ANY);
        assert_false(h.held);
        return;
    }
    assert_true(cpu >= 0);
    assert_true(h.held);
    const cpu_set_t during = own_mask();
    assert_int_equal(CPU_COUNT(&during), 1);
    assert_true(CPU_ISSET(cpu, &during));
    tsim_cpu_release(&h);
    const cpu_set_t after = own_mask();
    assert_true(CPU_EQUAL(&before, &after));
    assert_false(h.held);
    tsim_cpu_release(&h); /* twice: nothing more */
    const cpu_set_t again = own_mask();
    assert_true(CPU_EQUAL(&before, &again));
}

/* A thread already bound to one CPU (taskset) keeps its affinity untouched: hold reports
 * the CPU for the instance to follow, and has nothing to restore. */
static void test_hold_keeps_a_bound_thread(void **state)
{
    (void)state;
    unsetenv("DZ_TEE_SAME_CPU");
    if (!two_cpus())
        return;
    const cpu_set_t start = own_mask();
    for (int cpu = 0; cpu < 2; cpu++) {
        bind_to(cpu);
        struct tsim_cpu_hold h;
        assert_int_equal(tsim_cpu_hold(&h), cpu);
        assert_false(h.held);
        tsim_cpu_release(&h);
        const cpu_set_t after = own_mask();
        assert_int_equal(CPU_COUNT(&after), 1);
        assert_true(CPU_ISSET(cpu, &after));
    }
    assert_int_equal(sched_setaffinity(0, sizeof start, &start), 0);
}

static void test_environment_turns_it_off(void **state)
{
    (void)state;
    const cpu_set_t before = own_mask();
    setenv("DZ_TEE_SAME_CPU", "0", 1);
    assert_false(tsim_cpu_same_enabled());
    struct tsim_cpu_hold h;
    assert_int_equal(tsim_cpu_hold(&h), TSIM_CPU_ANY);
    assert_false(h.held);
    const cpu_set_t during = own_mask();
    assert_true(CPU_EQUAL(&before, &during));
    tsim_cpu_release(&h);
    /* Any other value leaves it on (where there is a choice). */
    setenv("DZ_TEE_SAME_CPU", "no", 1);
    assert_int_equal(tsim_cpu_same_enabled(), two_cpus());
    unsetenv("DZ_TEE_SAME_CPU");
    assert_int_equal(tsim_cpu_same_enabled(), two_cpus());
}

/* The instance's side, in this process (the test is the instance here). */
static void test_follow_and_let_go(void **state)
{
    (void)state;
    const cpu_set_t start = own_mask();
    assert_false(tsim_cpu_following());
    tsim_cpu_follow(TSIM_CPU_ANY); /* not bound: nothing to undo */
    assert_false(tsim_cpu_following());
    cpu_set_t now = own_mask();
    assert_true(CPU_EQUAL(&start, &now));
    if (!two_cpus())
        return;
    for (int cpu = 0; cpu < 2; cpu++) {
        tsim_cpu_follow(cpu);
        assert_true(tsim_cpu_following());
        now = own_mask();
        assert_int_equal(CPU_COUNT(&now), 1);
        assert_true(CPU_ISSET(cpu, &now));
    }
    /* A CPU out of range is no CPU: the starting set comes back. */
    tsim_cpu_follow(CPU_SETSIZE + 5);
    assert_false(tsim_cpu_following());
    now = own_mask();
    assert_true(CPU_EQUAL(&start, &now));
    tsim_cpu_follow(1);
    tsim_cpu_follow(TSIM_CPU_ANY);
    assert_false(tsim_cpu_following());
    now = own_mask();
    assert_true(CPU_EQUAL(&start, &now));
}

/* The pid of this process's child named @comm (the core), or of @parent's child whose name
 * starts with @comm (an instance), or -1. */
static long child_named(long parent, const char *comm)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    long found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        char path[300], line[256];
        const long pid = strtol(e->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char name[64] = "";
        long ppid = -1;
        /* pid (comm) state ppid: comm has no spaces or parentheses here */
        if (fgets(line, sizeof line, f) &&
            sscanf(line, "%*d (%63[^)]) %*c %ld", name, &ppid) == 2 && ppid == parent &&
            strncmp(name, comm, strlen(comm)) == 0)
            found = pid;
        fclose(f);
    }
    closedir(d);
    return found;
}

/* Cpus_allowed_list of process @pid, as /proc prints it ("0-1", "1"...). */
static void allowed_list(long pid, char *out, size_t size)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Cpus_allowed_list: %63s", out) == 1)
            break;
    fclose(f);
    assert_true(out[0] != '\0');
    (void)size;
}

static void test_instance_runs_on_the_callers_cpu(void **state)
{
    (void)state;
    struct tee_env env;
    assert_int_equal(tee_env_setup(&env), 0);
    unsetenv("DZ_TEE_SAME_CPU");
    const cpu_set_t own = own_mask();
    TEEC_Context ctx;
    TEEC_Session sess;
    uint32_t origin = 0;
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(
        TEEC_OpenSession(&ctx, &sess, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin),
        TEEC_SUCCESS);
    const long core = child_named((long)getpid(), "dz-tee-core");
    assert_true(core > 0);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%08x", (unsigned)conf_uuid.timeLow);
    const long inst = child_named(core, prefix);
    assert_true(inst > 0);

    char list[64], want[16];
    const int cpus = two_cpus() ? 2 : 1;
    for (int cpu = 0; cpu < cpus; cpu++) {
        bind_to(cpu);
        TEEC_Operation op;
        memset(&op, 0, sizeof op);
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        assert_int_equal(TEEC_InvokeCommand(&sess, CONF_CMD_NOP, &op, &origin), TEEC_SUCCESS);
        /* the caller's own binding is as the test set it, not the call's */
        const cpu_set_t after = own_mask();
        assert_int_equal(CPU_COUNT(&after), 1);
        assert_true(CPU_ISSET(cpu, &after));
        allowed_list(inst, list, sizeof list);
        if (cpus > 1) {
            snprintf(want, sizeof want, "%d", cpu);
            assert_string_equal(list, want);
        }
    }
    /* Turned off, the next call lets the instance go: its set is the one it started with. */
    assert_int_equal(sched_setaffinity(0, sizeof own, &own), 0);
    setenv("DZ_TEE_SAME_CPU", "0", 1);
    TEEC_Operation op;
    memset(&op, 0, sizeof op);
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(TEEC_InvokeCommand(&sess, CONF_CMD_NOP, &op, &origin), TEEC_SUCCESS);
    char core_list[64];
    allowed_list(inst, list, sizeof list);
    allowed_list(core, core_list, sizeof core_list);
    assert_string_equal(list, core_list);
    unsetenv("DZ_TEE_SAME_CPU");
    TEEC_CloseSession(&sess);
    TEEC_FinalizeContext(&ctx);
    tee_env_teardown(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_binds_and_releases),
        cmocka_unit_test(test_hold_keeps_a_bound_thread),
        cmocka_unit_test(test_environment_turns_it_off),
        cmocka_unit_test(test_follow_and_let_go),
        cmocka_unit_test(test_instance_runs_on_the_callers_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
