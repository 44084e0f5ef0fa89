/*
 * test_tee_ta.c - the TA side of the simulated TEE, on the conformance TA: the heap capped at
 * TA_DATA_SIZE, TEE_Panic, stack overflow, crashes and a memref used after its call all end
 * the instance with TEEC_ERROR_TARGET_DEAD (origin TEE) and the host survives and reopens;
 * TEE_CheckMemoryAccessRights, time, random, single-instance sessions, the system PTA's
 * TA-unique key, the secure console, TA lookup by UUID, and a hostile host writing its own
 * messages to the TA.
 */
#define _GNU_SOURCE /* memfd_create */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <tee_client_api.h>
#include <time.h>
#include <unistd.h>

#include "tee/client/tsim_client.h"
#include "tee/common/tsim_proto.h"
#include "tests/ta/keepalive/include/keepalive_ta.h"
#include "tests/tee_conformance.h"

static struct tee_env env;

struct fixture {
    TEEC_Context ctx;
    TEEC_Session sess;
};

static int group_setup(void **state)
{
    (void)state;
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    tee_env_teardown(&env);
    return 0;
}

static TEEC_Result open_conf(TEEC_Context *ctx, TEEC_Session *s)
{
    uint32_t origin;
    return TEEC_OpenSession(ctx, s, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (TEEC_InitializeContext(NULL, &f->ctx) != TEEC_SUCCESS) {
        free(f);
        return -1;
    }
    if (open_conf(&f->ctx, &f->sess) != TEEC_SUCCESS) {
        TEEC_FinalizeContext(&f->ctx);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    TEEC_CloseSession(&f->sess);
    TEEC_FinalizeContext(&f->ctx);
    free(f);
    return 0;
}

static TEEC_Result call_value(TEEC_Session *s, uint32_t cmd, uint32_t a, uint32_t *origin)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].value.a = a;
    *origin = 0;
    return TEEC_InvokeCommand(s, cmd, &op, origin);
}

static TEEC_Result counter(TEEC_Session *s, uint32_t *session_count, uint32_t *instance_count)
{
    TEEC_Operation op;
    uint32_t origin;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    TEEC_Result r = TEEC_InvokeCommand(s, CONF_CMD_COUNTER, &op, &origin);
    *session_count = op.params[0].value.a;
    *instance_count = op.params[0].value.b;
    return r;
}

/* ------------------------------------------------------------- heap */

static void exhaust(TEEC_Session *s, uint32_t chunk, uint32_t *first, uint32_t *second,
                    uint32_t *fails)
{
    TEEC_Operation op;
    uint32_t origin;
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_OUTPUT, TEEC_NONE);
    op.params[0].value.a = chunk;
    assert_int_equal(TEEC_InvokeCommand(s, CONF_CMD_MALLOC_EXHAUST, &op, &origin), TEEC_SUCCESS);
    *first = op.params[1].value.a;
    *second = op.params[1].value.b;
    *fails = op.params[2].value.a;
}

static void test_heap_capped_at_ta_data_size(void **state)
{
    struct fixture *f = *state;
    static const uint32_t chunks[] = {16, 1000, 4096, 65536};
    const uint32_t cap = CONFORMANCE_TA_DATA_SIZE;

    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        uint32_t first, second, fails;
        exhaust(&f->sess, chunks[i], &first, &second, &fails);
        assert_int_equal(fails, 0);
        assert_true(first <= cap);
        /* Headers cost 16 bytes a block: small chunks get less of the heap. */
        uint32_t floor = chunks[i] >= 1000 ? cap - cap / 16 - chunks[i] : cap / 3;
        if (first < floor)
            fail_msg("chunks of %u: only %u of %u bytes", chunks[i], first, cap);
        assert_int_equal(second, first); /* freed memory is reused */
    }
}

static void test_heap_stress(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;

    for (uint32_t seed = 1; seed <= 3; seed++) {
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
        op.params[0].value.a = seed;
        op.params[0].value.b = 20000;
        assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_HEAP_STRESS, &op, &origin),
                         TEEC_SUCCESS);
        assert_int_equal(op.params[1].value.a, 0); /* no corrupted block */
        assert_int_equal(op.params[1].value.b, 1); /* free blocks merged again */
    }
}

/* ------------------------------------------------------------- the instance dies */

static void expect_dead(TEEC_Session *s, TEEC_Result r, uint32_t origin)
{
    assert_int_equal(r, TEEC_ERROR_TARGET_DEAD);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    /* And stays dead. */
    assert_int_equal(call_value(s, CONF_CMD_NOP, 0, &origin), TEEC_ERROR_TARGET_DEAD);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    assert_int_equal(TEEC_InvokeCommand(s, CONF_CMD_NOP, NULL, &origin), TEEC_ERROR_TARGET_DEAD);
}

static void test_panic_and_reopen(void **state)
{
    struct fixture *f = *state;
    TEEC_Session other;
    uint32_t origin, sc, ic;

    /* Two sessions on the one instance (single instance, multi session). */
    assert_int_equal(open_conf(&f->ctx, &other), TEEC_SUCCESS);
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(counter(&other, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(sc, 1);
    assert_int_equal(ic, 2);

    TEEC_Result r = call_value(&f->sess, CONF_CMD_PANIC, 0xbad, &origin);
    expect_dead(&f->sess, r, origin);
    /* The panic took the whole instance, so the other session too. */
    assert_int_equal(counter(&other, &sc, &ic), TEEC_ERROR_TARGET_DEAD);
    assert_true(tee_log_contains(&env, "panicked with code 0x00000bad"));
    TEEC_CloseSession(&other);
    TEEC_CloseSession(&f->sess);

    /* A new instance: state starts over. */
    assert_int_equal(open_conf(&f->ctx, &f->sess), TEEC_SUCCESS);
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(ic, 1);
}

static void test_stack_overflow(void **state)
{
    struct fixture *f = *state;
    uint32_t origin;
    uint32_t sc, ic;

    /* A bounded recursion well inside TA_STACK_SIZE works... */
    assert_int_equal(call_value(&f->sess, CONF_CMD_STACK_OVERFLOW, 8, &origin), TEEC_SUCCESS);
    /* ...an unbounded one hits the guard page. */
    TEEC_Result r = call_value(&f->sess, CONF_CMD_STACK_OVERFLOW, 1u << 30, &origin);
    expect_dead(&f->sess, r, origin);
    assert_true(tee_log_contains(&env, "stack overflow (TA_STACK_SIZE 16384)"));
    TEEC_CloseSession(&f->sess);
    assert_int_equal(open_conf(&f->ctx, &f->sess), TEEC_SUCCESS);
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
}

static void test_crash(void **state)
{
    struct fixture *f = *state;
    uint32_t origin;
    uint32_t sc, ic;

    /* Address 16, not NULL: UBSan builds would catch a NULL store before it faults. */
    TEEC_Result r = call_value(&f->sess, CONF_CMD_BAD_WRITE, 16, &origin);
    expect_dead(&f->sess, r, origin);
    assert_true(tee_log_contains(&env, "crashed: SIGSEGV at address 0x10"));
    TEEC_CloseSession(&f->sess);
    assert_int_equal(open_conf(&f->ctx, &f->sess), TEEC_SUCCESS);
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
}

static void test_memref_used_after_its_call(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t data[64];
    TEEC_SharedMemory shm = {.size = 4096, .flags = TEEC_MEM_INPUT};

    /* Temporary memref, then an allocated block: both are out of reach after the call. */
    for (int kind = 0; kind < 2; kind++) {
        memset(&op, 0, sizeof(op));
        memset(data, 1, sizeof(data));
        if (kind == 0) {
            op.paramTypes =
                TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
            op.params[0].tmpref.buffer = data;
            op.params[0].tmpref.size = sizeof(data);
        } else {
            assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, &shm), TEEC_SUCCESS);
            memset(shm.buffer, 1, shm.size);
            op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
            op.params[0].memref.parent = &shm;
        }
        assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_KEEP_POINTER, &op, &origin),
                         TEEC_SUCCESS);
        TEEC_Result r = TEEC_InvokeCommand(&f->sess, CONF_CMD_USE_POINTER, NULL, &origin);
        expect_dead(&f->sess, r, origin);
        TEEC_CloseSession(&f->sess);
        if (kind == 1)
            TEEC_ReleaseSharedMemory(&shm);
        assert_int_equal(open_conf(&f->ctx, &f->sess), TEEC_SUCCESS);
    }
    assert_true(tee_log_contains(&env, "shared memory used outside an invocation"));
}

/* ------------------------------------------------------------- services */

static void test_access_rights(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t io[128] = {0};
    uint8_t in[32] = {0};

    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INOUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_VALUE_OUTPUT, TEEC_NONE);
    op.params[0].tmpref.buffer = io;
    op.params[0].tmpref.size = sizeof(io);
    op.params[1].tmpref.buffer = in;
    op.params[1].tmpref.size = sizeof(in);
    op.params[2].value.a = 0xffffffff;
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_ACCESS_RIGHTS, &op, &origin),
                     TEEC_SUCCESS);
    if (op.params[2].value.a)
        fail_msg("TEE_CheckMemoryAccessRights cases failed: mask 0x%x", op.params[2].value.a);
}

static void test_time(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;

    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_TIME, &op, &origin), TEEC_SUCCESS);
    uint64_t t1 = op.params[0].value.a * 1000ull + op.params[0].value.b;
    time_t ree = (time_t)op.params[1].value.a;
    assert_true(op.params[0].value.b < 1000);
    assert_true(op.params[1].value.b < 1000);
    assert_true(ree >= time(NULL) - 2 && ree <= time(NULL) + 2);
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_TIME, &op, &origin), TEEC_SUCCESS);
    uint64_t t2 = op.params[0].value.a * 1000ull + op.params[0].value.b;
    assert_true(t2 >= t1 + 25);
}

static void test_random(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t a[64], b[64], zero[64] = {0};

    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = a;
    op.params[0].tmpref.size = sizeof(a);
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_RANDOM, &op, &origin), TEEC_SUCCESS);
    op.params[0].tmpref.buffer = b;
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_RANDOM, &op, &origin), TEEC_SUCCESS);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
}

static void test_sessions_share_one_instance(void **state)
{
    struct fixture *f = *state;
    TEEC_Session more[3];
    uint32_t sc, ic;

    for (int i = 0; i < 3; i++)
        assert_int_equal(open_conf(&f->ctx, &more[i]), TEEC_SUCCESS);
    for (int round = 1; round <= 2; round++) {
        for (int i = 0; i < 3; i++) {
            assert_int_equal(counter(&more[i], &sc, &ic), TEEC_SUCCESS);
            assert_int_equal(sc, (uint32_t)round); /* per session */
        }
    }
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(sc, 1);
    assert_int_equal(ic, 7); /* instance-wide */
    for (int i = 0; i < 3; i++)
        TEEC_CloseSession(&more[i]);
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(ic, 8); /* the instance outlived the closed sessions */
}

static TEEC_Result derive(TEEC_Session *s, const char *extra, uint8_t *key, size_t key_len,
                          uint32_t *shared_res, uint32_t *types_res)
{
    TEEC_Operation op;
    uint32_t origin;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT,
                                     TEEC_VALUE_OUTPUT, TEEC_NONE);
    op.params[0].tmpref.buffer = (void *)extra;
    op.params[0].tmpref.size = extra ? strlen(extra) : 0;
    op.params[1].tmpref.buffer = key;
    op.params[1].tmpref.size = key_len;
    TEEC_Result r = TEEC_InvokeCommand(s, CONF_CMD_DERIVE_KEY, &op, &origin);
    *shared_res = op.params[2].value.a;
    *types_res = op.params[2].value.b;
    return r;
}

static void test_system_pta_unique_key(void **state)
{
    struct fixture *f = *state;
    uint8_t k1[32], k2[32], k3[32], k4[16];
    uint32_t shared_res, types_res;
    TEEC_Session other;

    assert_int_equal(derive(&f->sess, "model-a", k1, sizeof(k1), &shared_res, &types_res),
                     TEEC_SUCCESS);
    assert_int_equal(shared_res, TEEC_ERROR_SECURITY); /* never into shared memory */
    assert_int_equal(types_res, TEEC_ERROR_BAD_PARAMETERS);
    /* Same TA, same extra data: same key, from another session too. */
    assert_int_equal(open_conf(&f->ctx, &other), TEEC_SUCCESS);
    assert_int_equal(derive(&other, "model-a", k2, sizeof(k2), &shared_res, &types_res),
                     TEEC_SUCCESS);
    assert_memory_equal(k1, k2, sizeof(k1));
    TEEC_CloseSession(&other);
    assert_int_equal(derive(&f->sess, "model-b", k3, sizeof(k3), &shared_res, &types_res),
                     TEEC_SUCCESS);
    assert_memory_not_equal(k1, k3, sizeof(k1));
    assert_int_equal(derive(&f->sess, NULL, k4, sizeof(k4), &shared_res, &types_res), TEEC_SUCCESS);
    /* Key sizes outside 16..32 bytes. */
    assert_int_equal(derive(&f->sess, "x", k1, 8, &shared_res, &types_res),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(derive(&f->sess, "x", k1, 15, &shared_res, &types_res),
                     TEEC_ERROR_BAD_PARAMETERS);
}

static void test_console(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    const char *marker = "marker-7f3a";

    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = (void *)marker;
    op.params[0].tmpref.size = strlen(marker);
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_TRACE, &op, &origin), TEEC_SUCCESS);
    assert_true(tee_log_contains(&env, "E/TA: error marker-7f3a"));
    assert_true(tee_log_contains(&env, "I/TA: info marker-7f3a"));
    assert_false(tee_log_contains(&env, "debug marker-7f3a")); /* above CFG_TEE_TA_LOG_LEVEL */
    assert_true(tee_log_contains(&env, "printf marker-7f3a"));
    assert_true(tee_log_contains(&env, "I/TA: conformance TA: instance created"));
}

/* ------------------------------------------------------------- hostile host */

/* Sends a hand-made call on a session's socket; returns the TA's result, or 0 at EOF. */
static uint32_t raw_call(TEEC_Session *s, struct tsim_msg *m, const int *fds, int nfds)
{
    struct tsim_msg r;
    int got[TSIM_MAX_FDS];
    if (tsim_send(s->imp->sock, m, fds, nfds) != 0 || tsim_recv(s->imp->sock, &r, got, 5) != 0)
        return 0;
    /* Refusals come from the TEE, not from the TA's code. */
    assert_int_equal(r.origin, r.result ? TEEC_ORIGIN_TEE : TEEC_ORIGIN_TRUSTED_APP);
    return r.result;
}

static void test_hostile_host(void **state)
{
    struct fixture *f = *state;
    struct tsim_msg m;
    uint32_t origin;
    const uint32_t in_type = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, 0, 0);
    const uint64_t bounce = f->sess.imp->bounce_size;

    /* The session is set up (bounce buffer mapped) by one honest call. */
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_NOP, NULL, &origin), TEEC_SUCCESS);
    static const struct {
        uint32_t mem;
        uint64_t offset, size;
    } bad[] = {
        {TSIM_MEM_BOUNCE, 0, 16},                  /* over the shared header */
        {TSIM_MEM_BOUNCE, 64, 0},                  /* fine: checked below */
        {TSIM_MEM_BOUNCE, 64, 1ull << 40},         /* past the region */
        {TSIM_MEM_BOUNCE, 1ull << 63, 1ull << 63}, /* wrapping */
        {TSIM_MEM_SHM, 0, 16},                     /* a block never sent */
        {TSIM_MEM_NULL, 0, 5},                     /* NULL with a size */
        {7, 64, 16},                               /* no such region */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tsim_msg_init(&m, TSIM_TA_INVOKE);
        m.cmd = CONF_CMD_SUM;
        m.param_types = in_type;
        m.params[0].mem = bad[i].mem;
        m.params[0].offset = bad[i].mem == TSIM_MEM_BOUNCE && bad[i].size == 1ull << 40
                                 ? bounce - 64
                                 : bad[i].offset;
        m.params[0].size = bad[i].size;
        m.params[0].shm_id = 999;
        uint32_t r = raw_call(&f->sess, &m, NULL, 0);
        if (i == 1)
            assert_int_equal(r, TEEC_SUCCESS);
        else
            assert_int_equal(r, TEEC_ERROR_BAD_PARAMETERS);
    }
    /* Unknown parameter types, bits above the four nibbles. */
    tsim_msg_init(&m, TSIM_TA_INVOKE);
    m.param_types = 4;
    assert_int_equal(raw_call(&f->sess, &m, NULL, 0), TEEC_ERROR_BAD_PARAMETERS);
    m.param_types = 1u << 16;
    assert_int_equal(raw_call(&f->sess, &m, NULL, 0), TEEC_ERROR_BAD_PARAMETERS);

    /* Shared memory that is not a sealed memfd: a pipe, an unsealed memfd. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    int unsealed = memfd_create("x", MFD_CLOEXEC);
    assert_true(unsealed >= 0);
    assert_int_equal(ftruncate(unsealed, 4096), 0);
    int cand[2] = {pfd[0], unsealed};
    for (int i = 0; i < 2; i++) {
        tsim_msg_init(&m, TSIM_TA_INVOKE);
        m.cmd = CONF_CMD_SUM;
        m.param_types = in_type;
        m.params[0].mem = TSIM_MEM_SHM;
        m.params[0].shm_id = 1000 + (uint64_t)i;
        m.params[0].shm_size = 4096;
        m.params[0].size = 16;
        m.params[0].fd_index = 0;
        assert_int_equal(raw_call(&f->sess, &m, &cand[i], 1), TEEC_ERROR_BAD_PARAMETERS);
    }
    close(pfd[0]);
    close(pfd[1]);
    close(unsealed);

    /* The instance is still serving, honest calls work. */
    uint32_t sc, ic;
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);

    /* Garbage on the socket ends that session only. */
    TEEC_Session other;
    assert_int_equal(open_conf(&f->ctx, &other), TEEC_SUCCESS);
    char junk[16] = "not a message";
    assert_int_equal(send(other.imp->sock, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    assert_int_equal(TEEC_InvokeCommand(&other, CONF_CMD_NOP, NULL, &origin),
                     TEEC_ERROR_TARGET_DEAD);
    TEEC_CloseSession(&other);
    assert_int_equal(counter(&f->sess, &sc, &ic), TEEC_SUCCESS);
}

/* ------------------------------------------------------------- TA_FLAGS */

static void test_single_session_keep_alive(void **state)
{
    (void)state;
    const TEEC_UUID ka = TA_KEEPALIVE_UUID;
    TEEC_Context ctx;
    TEEC_Session a, b;
    uint32_t origin, sc, ic;
    int before = count_descendants();

    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(&ctx, &a, &ka, 0, NULL, NULL, &origin), TEEC_SUCCESS);
    assert_int_equal(counter(&a, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(ic, 1);
    /* Single instance without TA_FLAG_MULTI_SESSION: one session at a time. */
    assert_int_equal(TEEC_OpenSession(&ctx, &b, &ka, 0, NULL, NULL, &origin), TEEC_ERROR_BUSY);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    TEEC_CloseSession(&a);
    /* TA_FLAG_INSTANCE_KEEP_ALIVE: the instance and its state outlive the session. */
    assert_int_equal(count_descendants(), before + 2);
    assert_int_equal(TEEC_OpenSession(&ctx, &b, &ka, 0, NULL, NULL, &origin), TEEC_SUCCESS);
    assert_int_equal(counter(&b, &sc, &ic), TEEC_SUCCESS);
    assert_int_equal(sc, 1);
    assert_int_equal(ic, 2);
    TEEC_CloseSession(&b);
    TEEC_FinalizeContext(&ctx);
    assert_int_equal(count_descendants(), before);
}

/* ------------------------------------------------------------- finding TAs */

static void test_ta_lookup(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s;
    uint32_t origin;
    char dir[160], src[512], dst[256], cmd[900];
    const char *ta_dir = getenv("DZ_TA_DIR");

    /* An empty TA folder: not found. */
    snprintf(dir, sizeof(dir), "%s/tas", env.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    setenv("DZ_TA_DIR", dir, 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, 0, NULL, NULL, &origin),
                     TEEC_ERROR_ITEM_NOT_FOUND);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    TEEC_FinalizeContext(&ctx);

    unsetenv("DZ_TA_DIR");
    if (ta_dir)
        setenv("DZ_TA_DIR", ta_dir, 1);

    /* A TA binary under another TA's name is refused. */
    const TEEC_UUID other = {0x0badbad0, 0x1111, 0x2222, {3, 3, 4, 4, 5, 5, 6, 6}};
    snprintf(src, sizeof(src), "%s/8e20049b-b560-4696-8b64-19cc09fe5294.ta",
             ta_dir ? ta_dir : TSIM_TEST_TA_DIR);
    snprintf(dst, sizeof(dst), "%s/0badbad0-1111-2222-0303-040405050606.ta", dir);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
    assert_int_equal(system(cmd), 0);
    setenv("DZ_TA_DIR", dir, 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &other, 0, NULL, NULL, &origin),
                     TEEC_ERROR_SECURITY);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    TEEC_FinalizeContext(&ctx);
    unsetenv("DZ_TA_DIR");
    if (ta_dir)
        setenv("DZ_TA_DIR", ta_dir, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_heap_capped_at_ta_data_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heap_stress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_panic_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memref_used_after_its_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_rights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_share_one_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_pta_unique_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_host, setup, teardown),
        cmocka_unit_test(test_single_session_keep_alive),
        cmocka_unit_test(test_ta_lookup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
