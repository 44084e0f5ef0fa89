/*
 * test_tee_console.c - the simulated TEE's secure console (tee/common/tsim_console.h): lines a
 * TA instance holds and writes together, in order, and when they are written: at once for
 * errors, when 4 KiB are held, when due with no call coming, at a session's close, and when the
 * context ends while a call is still running (the core's SIGTERM). Waits for a line are bounded
 * by 5 s; a hold of 10 s in those tests tells a line written for the reason under test from one
 * written because it fell due.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <tee_client_api.h>
#include <time.h>
#include <unistd.h>

#include "tee/common/tsim_console.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

/* Each test starts with DZ_TEE_LOG_HOLD_MS=0 (tee_env_setup) and sets the hold it tests;
 * teardown unsets it. */
static int setup(void **state)
{
    (void)state;
    return tee_env_setup(&env);
}

static int teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    return 0;
}

/* The whole console file, NUL-terminated (an empty string when there is none). */
static char *read_log(void)
{
    FILE *f = fopen(env.log, "r");
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    if (f) {
        size_t got;
        while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
            n += got;
            if (n == cap) {
                cap *= 2;
                buf = realloc(buf, cap + 1);
                assert_non_null(buf);
            }
        }
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

/* Where @needle is in the console file, or -1. */
static long log_offset(const char *needle)
{
    char *log = read_log();
    const char *at = strstr(log, needle);
    const long off = at ? (long)(at - log) : -1;
    free(log);
    return off;
}

/* Waits up to 5 s for @needle in the console; true when it came. */
static bool wait_for_line(const char *needle)
{
    for (int i = 0; i < 500; i++) {
        if (log_offset(needle) >= 0)
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    return false;
}

static TEEC_Result trace(TEEC_Session *s, const char *text)
{
    TEEC_Operation op;
    uint32_t origin;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = (void *)text;
    op.params[0].tmpref.size = strlen(text);
    return TEEC_InvokeCommand(s, CONF_CMD_TRACE, &op, &origin);
}

static void open_conformance(TEEC_Context *ctx, TEEC_Session *s)
{
    uint32_t origin;
    assert_int_equal(TEEC_InitializeContext(NULL, ctx), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(ctx, s, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin),
                     TEEC_SUCCESS);
}

static void close_conformance(TEEC_Context *ctx, TEEC_Session *s)
{
    TEEC_CloseSession(s);
    TEEC_FinalizeContext(ctx);
}

/* ------------------------------------------------------------ the module */

static unsigned hold_with(const char *value)
{
    if (value)
        setenv("DZ_TEE_LOG_HOLD_MS", value, 1);
    else
        unsetenv("DZ_TEE_LOG_HOLD_MS");
    return tsim_console_hold_from_env();
}

static void test_hold_from_environment(void **state)
{
    (void)state;
    assert_int_equal(hold_with(NULL), TSIM_CONSOLE_HOLD_DEFAULT_MS);
    assert_int_equal(hold_with(""), TSIM_CONSOLE_HOLD_DEFAULT_MS);
    assert_int_equal(hold_with("0"), 0);
    assert_int_equal(hold_with("250"), 250);
    assert_int_equal(hold_with("10000"), TSIM_CONSOLE_HOLD_MAX_MS);
    /* Anything else keeps the default: a typo neither floods nor silences the console. */
    assert_int_equal(hold_with("10001"), TSIM_CONSOLE_HOLD_DEFAULT_MS);
    assert_int_equal(hold_with("-5"), TSIM_CONSOLE_HOLD_DEFAULT_MS);
    assert_int_equal(hold_with("12ms"), TSIM_CONSOLE_HOLD_DEFAULT_MS);
    assert_int_equal(hold_with("99999999999999999999"), TSIM_CONSOLE_HOLD_DEFAULT_MS);
}

/* In this process: lines held in order, written when 4 KiB would overflow, whole lines only. */
static void test_module_holds_whole_lines_in_order(void **state)
{
    (void)state;
    tsim_console_init(); /* DZ_TEE_LOG: the test's console file */
    tsim_console_hold(10000);
    assert_int_equal(tsim_console_due_ms(), -1);

    enum { LINES = 200 };
    char line[64];
    size_t total = 0;
    for (int i = 0; i < LINES; i++) {
        const int n = snprintf(line, sizeof line, "I/TA: held line %03d of the test\n", i);
        tsim_console_line('I', line, (size_t)n);
        total += (size_t)n;
    }
    const int due = tsim_console_due_ms();
    assert_true(due > 0 && due <= 10000);
    /* More than 4 KiB went in: the first whole lines are out, the rest held. */
    char *log = read_log();
    const size_t out = strlen(log);
    assert_true(out > 0 && out < total && out >= total - TSIM_CONSOLE_HOLD_BYTES);
    assert_int_equal(log[out - 1], '\n');
    free(log);

    /* An error line writes what is held first, then itself. */
    const char err[] = "E/TA: an error after them\n";
    tsim_console_line('E', err, sizeof err - 1);
    assert_int_equal(tsim_console_due_ms(), -1);
    log = read_log();
    assert_int_equal(strlen(log), total + sizeof err - 1);
    const char *at = log;
    for (int i = 0; i < LINES; i++) {
        snprintf(line, sizeof line, "I/TA: held line %03d of the test\n", i);
        assert_memory_equal(at, line, strlen(line));
        at += strlen(line);
    }
    assert_string_equal(at, err);
    free(log);

    /* A line past its hold is due now; 0 writes at once from then on. */
    tsim_console_hold(1);
    tsim_console_line('I', "I/TA: due soon\n", 15);
    nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
    assert_int_equal(tsim_console_due_ms(), 0);
    tsim_console_hold(0);
    assert_int_equal(tsim_console_due_ms(), -1);
    assert_true(log_offset("I/TA: due soon") >= 0);
    tsim_console_line('I', "I/TA: at once\n", 14);
    assert_true(log_offset("I/TA: at once") >= 0);
}

/* ------------------------------------------------------ a TA instance */

static void test_ta_info_held_until_error_and_close(void **state)
{
    (void)state;
    setenv("DZ_TEE_LOG_HOLD_MS", "10000", 1);
    TEEC_Context ctx;
    TEEC_Session s;
    open_conformance(&ctx, &s);
    assert_int_equal(trace(&s, "first-5c1d"), TEEC_SUCCESS);
    /* The error line is out at once, after the line open held; the call's info line is
     * held. */
    const long created = log_offset("I/TA: conformance TA: instance created");
    const long err1 = log_offset("E/TA: error first-5c1d");
    assert_true(created >= 0 && created < err1);
    assert_int_equal(log_offset("I/TA: info first-5c1d"), -1);

    /* The next error writes it first. */
    assert_int_equal(trace(&s, "second-5c1d"), TEEC_SUCCESS);
    const long info1 = log_offset("I/TA: info first-5c1d");
    const long err2 = log_offset("E/TA: error second-5c1d");
    assert_true(err1 < info1 && info1 < err2);
    assert_int_equal(log_offset("I/TA: info second-5c1d"), -1);

    /* Written before the close returns. */
    TEEC_CloseSession(&s);
    const long info2 = log_offset("I/TA: info second-5c1d");
    assert_true(info2 > err2);
    TEEC_FinalizeContext(&ctx);
}

static void test_ta_lines_written_when_due(void **state)
{
    (void)state;
    setenv("DZ_TEE_LOG_HOLD_MS", "50", 1);
    TEEC_Context ctx;
    TEEC_Session s;
    open_conformance(&ctx, &s);
    assert_int_equal(trace(&s, "due-9e02"), TEEC_SUCCESS);
    /* No call comes: the instance wakes to write it, the session still open. */
    assert_true(wait_for_line("I/TA: info due-9e02"));
    close_conformance(&ctx, &s);
}

static void test_ta_hold_zero_writes_at_once(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s;
    open_conformance(&ctx, &s); /* DZ_TEE_LOG_HOLD_MS=0 (tee_env_setup) */
    assert_int_equal(trace(&s, "now-41b7"), TEEC_SUCCESS);
    assert_true(log_offset("I/TA: info now-41b7") >= 0);
    close_conformance(&ctx, &s);
}

static void *wait_in_ta(void *arg)
{
    TEEC_Operation op;
    uint32_t origin;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].value.a = 10000;
    (void)TEEC_InvokeCommand(arg, CONF_CMD_WAIT, &op, &origin);
    return NULL;
}

/*
 * A host that dies while the TA runs a call: the instance cannot see its session end, so the
 * core's SIGTERM is what writes the lines it holds; the core reports no death for it.
 */
static void test_context_end_writes_held_lines(void **state)
{
    (void)state;
    setenv("DZ_TEE_LOG_HOLD_MS", "10000", 1);
    /* The child's core comes to this process when the child ends, to be waited for. */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        TEEC_Context ctx;
        TEEC_Session s;
        if (TEEC_InitializeContext(NULL, &ctx) != TEEC_SUCCESS ||
            TEEC_OpenSession(&ctx, &s, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, NULL) !=
                TEEC_SUCCESS)
            _exit(2);
        /* An info line of its own, without the error line that would write it at once. */
        TEEC_Operation op;
        memset(&op, 0, sizeof(op));
        if (TEEC_InvokeCommand(&s, CONF_CMD_NOP, &op, NULL) != TEEC_SUCCESS)
            _exit(3);
        pthread_t t;
        if (pthread_create(&t, NULL, wait_in_ta, &s) != 0)
            _exit(4);
        nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
        _exit(0); /* the call is still running */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The core ends its instance, then itself: everything it writes is out once it is gone. */
    bool gone = false;
    for (int i = 0; i < 500 && !gone; i++) {
        const pid_t r = waitpid(-1, &status, WNOHANG);
        gone = r < 0 && errno == ECHILD;
        if (r == 0)
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
    assert_true(gone);
    /* Open's info line was held (10 s); the end of the context wrote it, and the core
     * reported no death for the instance it ended. */
    assert_true(log_offset("I/TA: conformance TA: instance created") >= 0);
    assert_int_equal(log_offset("died of signal"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hold_from_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_holds_whole_lines_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ta_info_held_until_error_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ta_lines_written_when_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ta_hold_zero_writes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_end_writes_held_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
