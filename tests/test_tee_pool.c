/*
 * test_tee_pool.c - the simulated TEE's secure-memory pool (issue 8, item 4). Like OP-TEE's
 * fixed secure pool, DZ_TEE_POOL_BYTES holds all the TA instances of every context and
 * process together (shared through DZ_TEE_POOL_FILE): an open whose new instance does not fit
 * fails with TEEC_ERROR_OUT_OF_MEMORY, origin TEE, and leaves nothing behind; an instance's
 * memory comes back when it ends (last session closed, panic, crash, the client, its core or
 * itself killed); a TA heap is resident from the start, not backed lazily.
 *
 * The pool test TA (tests/ta/pool) runs the conformance TA's commands with one instance per
 * session and a 4 MiB heap; each test sets the pool in instance costs (cost()). The pool file
 * is the test's own, so nothing else of the user's shares it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <tee_client_api.h>
#include <time.h>
#include <unistd.h>

#include "ta/include/user_ta_header_defines.h"
#include "tee/common/tsim_proto.h"
#include "tests/ta/pool/include/pool_ta.h"
#include "tests/tee_conformance.h"

static const TEEC_UUID pool_uuid = TA_POOL_UUID;
static const TEEC_UUID dz_uuid = DZ_TA_UUID;
static struct tee_env env;

/* The most sessions a test holds at once. */
#define MAX_SESS 32

/* @n rounded up to whole pages, as the TA runtime maps its heap and stack. */
static uint64_t page_round(uint64_t n)
{
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

/* What one pool TA instance takes from the pool (tee/common/tsim_proto.h's formula). */
static uint64_t cost(void)
{
    return page_round(POOL_TA_DATA_SIZE) +
           page_round((uint64_t)POOL_TA_STACK_SIZE * TSIM_STACK_FACTOR + TSIM_STACK_SLACK) +
           TSIM_INSTANCE_OVERHEAD;
}

/* What one DarkneTZ TA instance takes from the pool, at the TA_DATA_SIZE it was built with. */
static uint64_t dz_cost(void)
{
    return page_round(TA_DATA_SIZE) +
           page_round((uint64_t)TA_STACK_SIZE * TSIM_STACK_FACTOR + TSIM_STACK_SLACK) +
           TSIM_INSTANCE_OVERHEAD;
}

/* Sets the pool of the contexts initialized from now on to @bytes. */
static void set_pool(uint64_t bytes)
{
    char v[32];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)bytes);
    setenv("DZ_TEE_POOL_BYTES", v, 1);
}

/* This test's own pool file, so that no other secure world of the user shares its pool. */
static char pool_file[sizeof(env.dir) + 16];

static int group_setup(void **state)
{
    (void)state;
    if (tee_env_setup(&env) != 0)
        return -1;
    snprintf(pool_file, sizeof(pool_file), "%s/pool", env.dir);
    setenv("DZ_TEE_POOL_FILE", pool_file, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    unsetenv("DZ_TEE_POOL_FILE");
    return 0;
}

/* Each test sets its own pool; none leaks into the next. */
static int teardown(void **state)
{
    (void)state;
    unsetenv("DZ_TEE_POOL_BYTES");
    return 0;
}

static TEEC_Result open_ta(TEEC_Context *ctx, TEEC_Session *s, const TEEC_UUID *u, uint32_t *origin)
{
    *origin = 0xdead;
    return TEEC_OpenSession(ctx, s, u, TEEC_LOGIN_PUBLIC, NULL, NULL, origin);
}

/* Asserts that one more pool TA session is refused exactly as OP-TEE's ldelf refuses it. */
static void assert_pool_full(TEEC_Context *ctx)
{
    TEEC_Session s;
    uint32_t origin;
    assert_int_equal(open_ta(ctx, &s, &pool_uuid, &origin), TEEC_ERROR_OUT_OF_MEMORY);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
}

/* Asserts that session @s works: its own session counter starts at 1. */
static void assert_usable(TEEC_Session *s)
{
    TEEC_Operation op;
    uint32_t origin;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(TEEC_InvokeCommand(s, CONF_CMD_COUNTER, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[0].value.a, 1);
}

/* Opens pool TA sessions into @s until the pool refuses one. Return: how many opened. */
static int fill(TEEC_Context *ctx, TEEC_Session *s)
{
    uint32_t origin;
    int n = 0;
    TEEC_Result r;
    while (n < MAX_SESS && (r = open_ta(ctx, &s[n], &pool_uuid, &origin)) == TEEC_SUCCESS)
        n++;
    assert_true(n < MAX_SESS);
    assert_int_equal(r, TEEC_ERROR_OUT_OF_MEMORY);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    return n;
}

/* ------------------------------------------------------------- /proc */

/* The parent pid and state letter of process @pid. Return: 0, or -1 if it does not exist. */
static int proc_stat(pid_t pid, pid_t *ppid, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *rp = strrchr(buf, ')');
    int p = 0;
    if (!rp || sscanf(rp + 2, "%c %d", state, &p) != 2)
        return -1;
    *ppid = (pid_t)p;
    return 0;
}

/* Children of @parent into @out (at most @max). Return: how many. */
static int children_of(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) && n < max) {
        pid_t pid = (pid_t)atoi(de->d_name), pp;
        char st;
        if (pid > 0 && proc_stat(pid, &pp, &st) == 0 && pp == parent && st != 'Z')
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

/* Resident anonymous memory of @pid in bytes (RssAnon), or 0. */
static uint64_t rss_anon(pid_t pid)
{
    char path[64], line[256];
    unsigned long long kb = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Waits up to 10 s for process @pid to be gone (or a zombie: it holds no memory). */
static bool wait_gone(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        pid_t pp;
        char st;
        if (proc_stat(pid, &pp, &st) != 0 || st == 'Z' || st == 'X')
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* ------------------------------------------------------------- tests */

/* Sessions open until the pool is full; the next fails cleanly; a close makes room again. */
static void test_pool_fills_and_refuses(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s[MAX_SESS];
    uint32_t origin;

    /* Room for 4 instances and an eighth: less than even the conformance TA needs. */
    set_pool(4 * cost() + cost() / 8);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    int fds = count_fds();
    int procs = count_descendants();
    assert_int_equal(fill(&ctx, s), 4);
    for (int i = 0; i < 4; i++)
        assert_usable(&s[i]);
    assert_true(tee_log_contains(&env, "out of secure memory"));
    /* A refusal costs nothing: no process, no descriptor left by it. */
    assert_int_equal(count_descendants(), procs + 4);
    const int fds_full = count_fds();
    for (int k = 0; k < 5; k++)
        assert_pool_full(&ctx);
    assert_int_equal(count_descendants(), procs + 4);
    assert_int_equal(count_fds(), fds_full);

    /* Closing one lets exactly one other open, at once (no wait for the core to notice). */
    TEEC_CloseSession(&s[1]);
    assert_int_equal(open_ta(&ctx, &s[1], &pool_uuid, &origin), TEEC_SUCCESS);
    assert_usable(&s[1]);
    assert_pool_full(&ctx);

    /* The pool is for all TAs: the conformance TA's instance does not fit either. */
    TEEC_Session c;
    assert_int_equal(open_ta(&ctx, &c, &conf_uuid, &origin), TEEC_ERROR_OUT_OF_MEMORY);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);

    for (int i = 0; i < 4; i++)
        TEEC_CloseSession(&s[i]);
    assert_int_equal(wait_descendants(procs), procs);
    assert_int_equal(count_fds(), fds);
    /* All of it came back. */
    assert_int_equal(fill(&ctx, s), 4);
    for (int i = 0; i < 4; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);
}

/* An instance that needs exactly what is left fits; one byte less and it does not. */
static void test_pool_boundary(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s[MAX_SESS];

    set_pool(3 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    int n = fill(&ctx, s);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);

    set_pool(3 * cost() - 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    n = fill(&ctx, s);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);

    /* An empty pool refuses the first. */
    set_pool(0);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_pool_full(&ctx);
    TEEC_FinalizeContext(&ctx);
}

/* The sessions of a single-instance TA share its instance, so they cost it once. */
static void test_single_instance_costs_once(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s[8];
    uint32_t origin;

    /* The conformance TA's instance costs less than a pool TA's: one fits, no more. */
    set_pool(cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    for (int i = 0; i < 8; i++)
        assert_int_equal(open_ta(&ctx, &s[i], &conf_uuid, &origin), TEEC_SUCCESS);
    assert_pool_full(&ctx);
    for (int i = 0; i < 8; i++)
        TEEC_CloseSession(&s[i]);
    /* Its last session closed: its memory is back, a pool TA fits now. */
    assert_int_equal(open_ta(&ctx, &s[0], &pool_uuid, &origin), TEEC_SUCCESS);
    TEEC_CloseSession(&s[0]);
    TEEC_FinalizeContext(&ctx);
}

/* A TA that panics or crashes gives its memory back: the next open fits at once. */
static void test_dead_ta_returns_memory(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s[MAX_SESS];
    TEEC_Operation op;
    uint32_t origin;
    const uint32_t kill_cmd[] = {CONF_CMD_PANIC, CONF_CMD_BAD_WRITE, CONF_CMD_STACK_OVERFLOW};
    const uint32_t kill_arg[] = {0x1234, 16, 1u << 30};

    set_pool(2 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(fill(&ctx, s), 2);
    for (size_t k = 0; k < sizeof(kill_cmd) / sizeof(kill_cmd[0]); k++) {
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        op.params[0].value.a = kill_arg[k];
        assert_int_equal(TEEC_InvokeCommand(&s[0], kill_cmd[k], &op, &origin),
                         TEEC_ERROR_TARGET_DEAD);
        assert_int_equal(origin, TEEC_ORIGIN_TEE);
        TEEC_CloseSession(&s[0]);
        assert_int_equal(open_ta(&ctx, &s[0], &pool_uuid, &origin), TEEC_SUCCESS);
        assert_usable(&s[0]);
        assert_pool_full(&ctx);
    }
    TEEC_CloseSession(&s[0]);
    TEEC_CloseSession(&s[1]);
    TEEC_FinalizeContext(&ctx);
}

/* A heap is resident from the instance's start, so the pool's figure is real memory. */
static void test_heap_is_committed(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s;
    uint32_t origin;
    pid_t core, ta;

    set_pool(cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(open_ta(&ctx, &s, &pool_uuid, &origin), TEEC_SUCCESS);
    assert_int_equal(children_of(getpid(), &core, 1), 1);
    assert_int_equal(children_of(core, &ta, 1), 1);
    /* The TA has not touched its heap: only a committed heap is resident. */
    const uint64_t rss = rss_anon(ta);
    if (rss < POOL_TA_DATA_SIZE)
        fail_msg("instance %d: RssAnon %llu bytes, below its %u-byte heap", (int)ta,
                 (unsigned long long)rss, (unsigned)POOL_TA_DATA_SIZE);
    TEEC_CloseSession(&s);
    TEEC_FinalizeContext(&ctx);
}

/* A client killed with SIGKILL: its core and every instance end, their memory with them. */
static void test_killed_client_returns_memory(void **state)
{
    (void)state;
    int ready[2];
    pid_t core, tas[MAX_SESS];

    set_pool(3 * cost());
    /* This process's own context shares the pool with the client's. */
    TEEC_Context mine;
    TEEC_Session s[MAX_SESS];
    assert_int_equal(TEEC_InitializeContext(NULL, &mine), TEEC_SUCCESS);
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* The client: fills the pool, says so, and waits to be killed. */
        TEEC_Context ctx;
        uint32_t origin;
        close(ready[0]);
        if (TEEC_InitializeContext(NULL, &ctx) != TEEC_SUCCESS)
            _exit(1);
        for (int i = 0; i < 3; i++)
            if (open_ta(&ctx, &s[i], &pool_uuid, &origin) != TEEC_SUCCESS)
                _exit(2);
        if (open_ta(&ctx, &s[0], &pool_uuid, &origin) != TEEC_ERROR_OUT_OF_MEMORY)
            _exit(3);
        if (write(ready[1], "k", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(children_of(child, &core, 1), 1);
    assert_int_equal(children_of(core, tas, MAX_SESS), 3);
    for (int i = 0; i < 3; i++)
        assert_true(rss_anon(tas[i]) >= POOL_TA_DATA_SIZE);
    assert_pool_full(&mine);
    assert_int_equal(kill(child, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (int i = 0; i < 3; i++)
        if (!wait_gone(tas[i]))
            fail_msg("instance %d of the killed client still runs", (int)tas[i]);
    assert_true(wait_gone(core));
    /* Its core's locks died with it: the whole pool is free again, nothing counted stale. */
    assert_int_equal(fill(&mine, s), 3);
    for (int i = 0; i < 3; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&mine);
}

/* Two contexts share one pool: together they fill it, and a close in one makes room in the other.
 */
static void test_contexts_share_the_pool(void **state)
{
    (void)state;
    TEEC_Context a, b;
    TEEC_Session sa[MAX_SESS], sb[MAX_SESS];
    uint32_t origin;

    set_pool(3 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &a), TEEC_SUCCESS);
    assert_int_equal(TEEC_InitializeContext(NULL, &b), TEEC_SUCCESS);
    for (int i = 0; i < 2; i++)
        assert_int_equal(open_ta(&a, &sa[i], &pool_uuid, &origin), TEEC_SUCCESS);
    /* Each context alone would hold 3: together they hold 3, not 6. */
    assert_int_equal(fill(&b, sb), 1);
    assert_pool_full(&a);
    assert_true(tee_log_contains(&env, "shared by every context"));
    /* A close in one context lets the other open right after, with no wait of its own. */
    TEEC_CloseSession(&sa[1]);
    assert_int_equal(open_ta(&b, &sb[1], &pool_uuid, &origin), TEEC_SUCCESS);
    assert_usable(&sb[1]);
    assert_pool_full(&a);
    assert_pool_full(&b);
    /* A finalized context gives back whatever its sessions held. */
    TEEC_FinalizeContext(&b);
    assert_int_equal(fill(&a, &sa[1]), 2);
    for (int i = 0; i < 3; i++)
        TEEC_CloseSession(&sa[i]);
    TEEC_FinalizeContext(&a);
}

/* Reads one byte from @fd. Return: it, or 0 at end of file. */
static char read_byte(int fd)
{
    char c = 0;
    return read(fd, &c, 1) == 1 ? c : 0;
}

/*
 * Two processes share one pool: the second's open beyond it fails cleanly, and succeeds once
 * the first closed a session.
 */
static void test_processes_share_the_pool(void **state)
{
    (void)state;
    int up[2], down[2];
    TEEC_Context ctx;
    TEEC_Session s[MAX_SESS];
    uint32_t origin;
    pid_t core;

    set_pool(3 * cost());
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* Opens 2 sessions, closes one when told, ends when told (or when the parent dies). */
        TEEC_Context c;
        TEEC_Session cs[2];
        close(up[0]);
        close(down[1]);
        if (TEEC_InitializeContext(NULL, &c) != TEEC_SUCCESS)
            _exit(1);
        for (int i = 0; i < 2; i++)
            if (open_ta(&c, &cs[i], &pool_uuid, &origin) != TEEC_SUCCESS)
                _exit(2);
        if (write(up[1], "o", 1) != 1 || read_byte(down[0]) != 'c')
            _exit(3);
        TEEC_CloseSession(&cs[1]);
        if (write(up[1], "c", 1) != 1 || read_byte(down[0]) != 'q')
            _exit(4);
        TEEC_CloseSession(&cs[0]);
        TEEC_FinalizeContext(&c);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    assert_int_equal(read_byte(up[0]), 'o');
    assert_int_equal(children_of(child, &core, 1), 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(fill(&ctx, s), 1);
    assert_usable(&s[0]);
    assert_int_equal(write(down[1], "c", 1), 1);
    assert_int_equal(read_byte(up[0]), 'c');
    /* The other process's close has returned: its instance's memory is this one's to take. */
    assert_int_equal(open_ta(&ctx, &s[1], &pool_uuid, &origin), TEEC_SUCCESS);
    assert_usable(&s[1]);
    assert_pool_full(&ctx);
    assert_int_equal(write(down[1], "q", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(wait_gone(core));
    close(up[0]);
    close(down[1]);
    assert_int_equal(fill(&ctx, &s[2]), 1);
    for (int i = 0; i < 3; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);
}

/* A core or an instance killed with SIGKILL: what it held comes back, nothing stays counted. */
static void test_killed_core_returns_memory(void **state)
{
    (void)state;
    TEEC_Context a, b;
    TEEC_Session sa[MAX_SESS], sb[MAX_SESS];
    TEEC_Operation op;
    uint32_t origin;
    pid_t core, tas[MAX_SESS];

    set_pool(3 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &a), TEEC_SUCCESS);
    assert_int_equal(children_of(getpid(), &core, 1), 1);
    assert_int_equal(fill(&a, sa), 3);
    assert_int_equal(kill(core, SIGKILL), 0);
    assert_true(wait_gone(core));
    /* Its sessions are dead... */
    memset(&op, 0, sizeof(op));
    assert_int_not_equal(TEEC_InvokeCommand(&sa[0], CONF_CMD_COUNTER, &op, &origin), TEEC_SUCCESS);
    /* ...and the pool is whole for the next context. */
    assert_int_equal(TEEC_InitializeContext(NULL, &b), TEEC_SUCCESS);
    assert_int_equal(fill(&b, sb), 3);

    /* An instance killed: its core reaps it and gives its memory back. */
    /* The killed core is a zombie until a is finalized: b's is the one live child. */
    pid_t core_b;
    assert_int_equal(children_of(getpid(), &core_b, 1), 1);
    assert_int_equal(children_of(core_b, tas, MAX_SESS), 3);
    assert_int_equal(kill(tas[1], SIGKILL), 0);
    assert_true(wait_gone(tas[1]));
    TEEC_CloseSession(&sb[1]);
    assert_int_equal(open_ta(&b, &sb[1], &pool_uuid, &origin), TEEC_SUCCESS);
    assert_usable(&sb[1]);
    assert_pool_full(&b);
    for (int i = 0; i < 3; i++) {
        TEEC_CloseSession(&sa[i]);
        TEEC_CloseSession(&sb[i]);
    }
    TEEC_FinalizeContext(&a);
    TEEC_FinalizeContext(&b);
}

/*
 * The first context fixes the shared pool's size: another figure is refused while it is
 * attached, and takes over once no context is.
 */
static void test_pool_size_is_fixed_while_shared(void **state)
{
    (void)state;
    TEEC_Context a, b;
    TEEC_Session s[MAX_SESS];

    set_pool(3 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &a), TEEC_SUCCESS);
    set_pool(2 * cost());
    assert_int_not_equal(TEEC_InitializeContext(NULL, &b), TEEC_SUCCESS);
    assert_true(tee_log_contains(&env, "in use by other contexts"));
    /* The same figure is accepted. */
    set_pool(3 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &b), TEEC_SUCCESS);
    TEEC_FinalizeContext(&b);
    TEEC_FinalizeContext(&a);
    set_pool(2 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &b), TEEC_SUCCESS);
    int n = fill(&b, s);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&b);
}

/* DZ_TEE_POOL_FILE must be a regular file: a symlink or a folder stops the context. */
static void test_pool_file_checked(void **state)
{
    (void)state;
    TEEC_Context ctx;
    char link[sizeof(env.dir) + 16];

    snprintf(link, sizeof(link), "%s/pool-link", env.dir);
    assert_int_equal(symlink(pool_file, link), 0);
    setenv("DZ_TEE_POOL_FILE", link, 1);
    assert_int_not_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_true(tee_log_contains(&env, "not a regular file of this user"));
    setenv("DZ_TEE_POOL_FILE", env.dir, 1);
    assert_int_not_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    setenv("DZ_TEE_POOL_FILE", pool_file, 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    TEEC_FinalizeContext(&ctx);
}

/* Hundreds of open/close cycles at a full pool: nothing leaks, the pool stays exact. */
static void test_cycles_leak_nothing(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s[MAX_SESS];
    uint32_t origin;

    set_pool(2 * cost());
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    int fds = count_fds();
    int procs = count_descendants();
    /* 400 sessions opened and closed (100 in the sanitizer run, where a start is slow). */
    const int cycles = getenv("DNN_TEST_QUICK") ? 50 : 200;
    for (int i = 0; i < cycles; i++) {
        /* Two open (the pool's worth), every tenth time a third is refused, both close. */
        for (int k = 0; k < 2; k++) {
            TEEC_Result r = open_ta(&ctx, &s[k], &pool_uuid, &origin);
            if (r != TEEC_SUCCESS)
                fail_msg("cycle %d, session %d: 0x%08x origin %u", i, k, r, origin);
        }
        if (i % 10 == 0)
            assert_pool_full(&ctx);
        assert_usable(&s[i % 2]);
        TEEC_CloseSession(&s[0]);
        TEEC_CloseSession(&s[1]);
    }
    assert_int_equal(wait_descendants(procs), procs);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(fill(&ctx, s), 2);
    TEEC_CloseSession(&s[0]);
    TEEC_CloseSession(&s[1]);
    TEEC_FinalizeContext(&ctx);
}

/*
 * Issue 8's report: one client opening DarkneTZ sessions in a loop. With the default pool it
 * stops, cleanly and at once, at the number of instances the pool holds, every one of them
 * resident and usable, instead of the OOM killer ending instances hundreds of sessions later.
 */
static void test_dz_sessions_in_a_loop(void **state)
{
    (void)state;
    TEEC_Context ctx;
    static TEEC_Session s[1000];
    uint32_t origin = 0;
    TEEC_Result r = TEEC_SUCCESS;
    pid_t core, tas[64];
    int n = 0;

    unsetenv("DZ_TEE_POOL_BYTES");
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    while (n < 1000 && (r = open_ta(&ctx, &s[n], &dz_uuid, &origin)) == TEEC_SUCCESS)
        n++;
    assert_int_equal(r, TEEC_ERROR_OUT_OF_MEMORY);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    assert_int_equal(n, (int)(TSIM_POOL_DEFAULT / dz_cost()));
    assert_int_equal(children_of(getpid(), &core, 1), 1);
    assert_int_equal(children_of(core, tas, 64), n);
    for (int i = 0; i < n; i++)
        assert_true(rss_anon(tas[i]) >= TA_DATA_SIZE);
    /* Each still answers (DZ_CMD_VERSION), and the last closed makes room for one more. */
    for (int i = 0; i < n; i++) {
        TEEC_Operation op;
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        assert_int_equal(TEEC_InvokeCommand(&s[i], DZ_CMD_VERSION, &op, &origin), TEEC_SUCCESS);
    }
    TEEC_CloseSession(&s[n - 1]);
    assert_int_equal(open_ta(&ctx, &s[n - 1], &dz_uuid, &origin), TEEC_SUCCESS);
    for (int i = 0; i < n; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);
}

/* DZ_TEE_POOL_BYTES: sizes with K, M, G; anything else stops the context, never guessed. */
static void test_pool_setting(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s[MAX_SESS];
    const char *bad[] = {
        "", "x", "12x", "-1", " 5", "5 ", "1.5M", "5KB", "99999999999999999999", "17179869184G"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("DZ_TEE_POOL_BYTES", bad[i], 1);
        TEEC_Result r = TEEC_InitializeContext(NULL, &ctx);
        if (!*bad[i]) {
            /* Empty is unset: the default. */
            assert_int_equal(r, TEEC_SUCCESS);
            TEEC_FinalizeContext(&ctx);
            continue;
        }
        if (r == TEEC_SUCCESS)
            fail_msg("DZ_TEE_POOL_BYTES=\"%s\" was accepted", bad[i]);
    }
    assert_true(tee_log_contains(&env, "DZ_TEE_POOL_BYTES=12x: not a size"));

    /* 9M holds one 4.8 MiB instance; the suffix is a binary multiple. */
    setenv("DZ_TEE_POOL_BYTES", "9M", 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    int n = fill(&ctx, s);
    assert_int_equal(n, (int)((9u << 20) / cost()));
    for (int i = 0; i < n; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);

    /* Unset: the documented default, TSIM_POOL_DEFAULT. */
    unsetenv("DZ_TEE_POOL_BYTES");
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    n = fill(&ctx, s);
    assert_int_equal(n, (int)(TSIM_POOL_DEFAULT / cost()));
    for (int i = 0; i < n; i++)
        TEEC_CloseSession(&s[i]);
    TEEC_FinalizeContext(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_fills_and_refuses, teardown),
        cmocka_unit_test_teardown(test_pool_boundary, teardown),
        cmocka_unit_test_teardown(test_single_instance_costs_once, teardown),
        cmocka_unit_test_teardown(test_dead_ta_returns_memory, teardown),
        cmocka_unit_test_teardown(test_heap_is_committed, teardown),
        cmocka_unit_test_teardown(test_killed_client_returns_memory, teardown),
        cmocka_unit_test_teardown(test_contexts_share_the_pool, teardown),
        cmocka_unit_test_teardown(test_processes_share_the_pool, teardown),
        cmocka_unit_test_teardown(test_killed_core_returns_memory, teardown),
        cmocka_unit_test_teardown(test_pool_size_is_fixed_while_shared, teardown),
        cmocka_unit_test_teardown(test_pool_file_checked, teardown),
        cmocka_unit_test_teardown(test_cycles_leak_nothing, teardown),
        cmocka_unit_test_teardown(test_dz_sessions_in_a_loop, teardown),
        cmocka_unit_test_teardown(test_pool_setting, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
