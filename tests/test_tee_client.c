/*
 * test_tee_client.c - the GP TEE Client API of the simulated TEE, in the spirit of OP-TEE's
 * xtest regression 1xxx/5xxx: every TEEC function with bad arguments, value, temporary,
 * registered, whole and partial memrefs in both directions, output sizes and
 * TEEC_ERROR_SHORT_BUFFER, shared memory mapped into the TA, return origins, and no leak of
 * descriptors or processes over 100 sessions and 10,000 calls with a 1 MiB shared buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <tee_client_api.h>
#include <unistd.h>

#include "tests/tee_conformance.h"

#define MIB (1024u * 1024u)

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

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    uint32_t origin = 0;
    if (!f)
        return -1;
    if (TEEC_InitializeContext(NULL, &f->ctx) != TEEC_SUCCESS ||
        TEEC_OpenSession(&f->ctx, &f->sess, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin) !=
            TEEC_SUCCESS) {
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

static TEEC_Result invoke(TEEC_Session *s, uint32_t cmd, TEEC_Operation *op, uint32_t *origin)
{
    *origin = 0xdead;
    return TEEC_InvokeCommand(s, cmd, op, origin);
}

/* ------------------------------------------------------------- contexts */

static void test_context_arguments(void **state)
{
    (void)state;
    TEEC_Context ctx;

    assert_int_equal(TEEC_InitializeContext(NULL, NULL), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_InitializeContext("no-such-tee", &ctx), TEEC_ERROR_ITEM_NOT_FOUND);
    TEEC_FinalizeContext(NULL);

    setenv("DZ_TEE_CORE", "/nonexistent/dz-tee-core", 1);
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_ERROR_ITEM_NOT_FOUND);
    setenv("DZ_TEE_CORE", "/bin/true", 1); /* starts, but is no TEE */
    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_ERROR_COMMUNICATION);
    unsetenv("DZ_TEE_CORE");

    /* Two contexts at once, each with its own secure world. */
    TEEC_Context a, b;
    TEEC_Session sa, sb;
    TEEC_Operation op;
    uint32_t origin;
    assert_int_equal(TEEC_InitializeContext(NULL, &a), TEEC_SUCCESS);
    assert_int_equal(TEEC_InitializeContext(NULL, &b), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(&a, &sa, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, NULL),
                     TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(&b, &sb, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, NULL),
                     TEEC_SUCCESS);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(invoke(&sa, CONF_CMD_COUNTER, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(invoke(&sa, CONF_CMD_COUNTER, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(invoke(&sb, CONF_CMD_COUNTER, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[0].value.b, 1); /* b's instance is not a's */
    TEEC_CloseSession(&sa);
    TEEC_CloseSession(&sb);
    TEEC_FinalizeContext(&a);
    TEEC_FinalizeContext(&b);
}

static void test_finalize_reaps_secure_world(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s;
    int before = count_descendants();

    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, NULL),
                     TEEC_SUCCESS);
    assert_int_equal(count_descendants(), before + 2); /* core + instance */
    /* A session left open at finalize is dropped with its instance. */
    TEEC_FinalizeContext(&ctx);
    assert_int_equal(count_descendants(), before);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no zombie left to reap */
    assert_int_equal(errno, ECHILD);
}

/* ------------------------------------------------------------- sessions */

static void test_open_session_arguments(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s;
    TEEC_Operation op;
    uint32_t origin = 0;
    const TEEC_UUID missing = {0x12345678, 0x1234, 0x1234, {1, 2, 3, 4, 5, 6, 7, 8}};
    const TEEC_UUID pta = {
        0x3a2f8978, 0x5dc0, 0x11e8, {0x9c, 0x2d, 0xfa, 0x7a, 0xe0, 0x1b, 0xbe, 0xbc}};

    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    assert_int_equal(TEEC_OpenSession(NULL, &s, &conf_uuid, 0, NULL, NULL, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_API);
    assert_int_equal(TEEC_OpenSession(&ctx, NULL, &conf_uuid, 0, NULL, NULL, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, NULL, 0, NULL, NULL, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, 0x77, NULL, NULL, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, TEEC_LOGIN_GROUP, NULL, NULL, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_API);

    /* TA not found; pseudo-TAs serve TAs only. */
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &missing, 0, NULL, NULL, &origin),
                     TEEC_ERROR_ITEM_NOT_FOUND);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &pta, 0, NULL, NULL, &origin),
                     TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(origin, TEEC_ORIGIN_TEE);

    /* Parameters reach TA_OpenSessionEntryPoint and come back. */
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].value.a = 41;
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, 0, NULL, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[0].value.b, 42);
    assert_int_equal(op.started, 1);
    TEEC_CloseSession(&s);
    TEEC_CloseSession(&s); /* closing twice is harmless */
    TEEC_CloseSession(NULL);

    /* The TA refuses: its error and origin. */
    op.params[0].value.a = CONFORMANCE_OPEN_REFUSE;
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, 0, NULL, &op, &origin),
                     TEEC_ERROR_ACCESS_DENIED);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);
    /* Wrong types for the open entry point. */
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, 0, NULL, &op, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);
    /* A bad memref is refused before anything is sent. */
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = NULL;
    op.params[0].tmpref.size = 4;
    assert_int_equal(TEEC_OpenSession(&ctx, &s, &conf_uuid, 0, NULL, &op, &origin),
                     TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_API);
    TEEC_FinalizeContext(&ctx);
}

static void test_invoke_arguments(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t buf[16] = {0};
    TEEC_SharedMemory shm = {.buffer = buf, .size = sizeof(buf), .flags = TEEC_MEM_INPUT};

    assert_int_equal(invoke(NULL, CONF_CMD_NOP, NULL, &origin), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_API);
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_NOP, NULL, NULL), TEEC_SUCCESS);
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, NULL, &origin), TEEC_SUCCESS);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);

    memset(&op, 0, sizeof(op));
    for (uint32_t t = 0; t < 16; t++) {
        op.paramTypes = TEEC_PARAM_TYPES(t, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        if (t == 4 || (t >= 8 && t <= 11)) {
            assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin),
                             TEEC_ERROR_BAD_PARAMETERS);
            assert_int_equal(origin, TEEC_ORIGIN_API);
        }
    }
    /* NULL buffer with a size. */
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.size = 8;
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_API);
    /* Registered memrefs: no parent, unregistered parent, wrong direction, out of bounds. */
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = NULL;
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    op.params[0].memref.parent = &shm;
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &shm), TEEC_SUCCESS);
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.size = 4;
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.offset = 12;
    op.params[0].memref.size = 5;
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    op.params[0].memref.offset = SIZE_MAX - 2;
    op.params[0].memref.size = 4; /* offset + size wraps */
    assert_int_equal(invoke(&f->sess, CONF_CMD_NOP, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_API);
    op.params[0].memref.offset = 12;
    op.params[0].memref.size = 4; /* exactly to the end: fine */
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    assert_int_equal(invoke(&f->sess, CONF_CMD_SUM, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].value.b, 4);
    TEEC_ReleaseSharedMemory(&shm);
    assert_int_equal(invoke(&f->sess, CONF_CMD_SUM, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);

    /* The TA checks its types; unknown command. */
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    assert_int_equal(invoke(&f->sess, CONF_CMD_VALUES, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);
    assert_int_equal(invoke(&f->sess, 0x7fff, NULL, &origin), TEEC_ERROR_NOT_SUPPORTED);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);

    /* A memref of another context's block. */
    TEEC_Context other;
    TEEC_SharedMemory foreign = {.size = 16, .flags = TEEC_MEM_INPUT};
    assert_int_equal(TEEC_InitializeContext(NULL, &other), TEEC_SUCCESS);
    assert_int_equal(TEEC_AllocateSharedMemory(&other, &foreign), TEEC_SUCCESS);
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &foreign;
    assert_int_equal(invoke(&f->sess, CONF_CMD_SUM, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    TEEC_ReleaseSharedMemory(&foreign);
    TEEC_FinalizeContext(&other);

    TEEC_RequestCancellation(NULL);
    memset(&op, 0, sizeof(op));
    TEEC_RequestCancellation(&op); /* never started: accepted, nothing to do */
}

static void test_values(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;

    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INOUT, TEEC_NONE);
    op.params[0].value.a = 7;
    op.params[0].value.b = 0xffffffff;
    op.params[2].value.a = 100;
    op.params[2].value.b = 0xffffffff;
    assert_int_equal(invoke(&f->sess, CONF_CMD_VALUES, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].value.a, 0xffffffff);
    assert_int_equal(op.params[1].value.b, 7);
    assert_int_equal(op.params[2].value.a, 101);
    assert_int_equal(op.params[2].value.b, 0);
    assert_int_equal(op.params[0].value.a, 7); /* inputs untouched */
    assert_ptr_equal(op.session, &f->sess);
}

/* ------------------------------------------------------------- memrefs */

static void fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static void test_temp_memrefs(void **state)
{
    struct fixture *f = *state;
    static const size_t sizes[] = {1, 63, 64, 65, 4096, 70000, MIB};
    TEEC_Operation op;
    uint32_t origin;

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        uint8_t *in = malloc(n);
        uint8_t *out = malloc(n + 16);
        assert_non_null(in);
        assert_non_null(out);
        fill_pattern(in, n, (uint8_t)k);
        memset(out, 0xee, n + 16);
        memset(&op, 0, sizeof(op));
        op.paramTypes =
            TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
        op.params[0].tmpref.buffer = in;
        op.params[0].tmpref.size = n;
        op.params[1].tmpref.buffer = out;
        op.params[1].tmpref.size = n + 16;
        assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_SUCCESS);
        assert_int_equal(op.params[1].tmpref.size, n); /* output size updated */
        assert_memory_equal(in, out, n);
        assert_int_equal(out[n], 0xee); /* nothing written past it */
        assert_int_equal(op.params[0].tmpref.size, n);

        /* In place, both ways. */
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        op.params[0].tmpref.buffer = out;
        op.params[0].tmpref.size = n;
        assert_int_equal(invoke(&f->sess, CONF_CMD_INCREMENT, &op, &origin), TEEC_SUCCESS);
        for (size_t i = 0; i < n; i++)
            if (out[i] != (uint8_t)(in[i] + 1))
                fail_msg("byte %zu of %zu not incremented", i, n);
        free(in);
        free(out);
    }
}

static void test_short_buffer(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t in[100];
    uint8_t out[10];

    fill_pattern(in, sizeof(in), 3);
    memset(out, 0x5a, sizeof(out));
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = in;
    op.params[0].tmpref.size = sizeof(in);
    op.params[1].tmpref.buffer = out;
    op.params[1].tmpref.size = sizeof(out);
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);
    assert_int_equal(op.params[1].tmpref.size, sizeof(in)); /* the size needed */
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0x5a); /* nothing copied back */

    /* Size query with a NULL buffer. */
    op.params[1].tmpref.buffer = NULL;
    op.params[1].tmpref.size = 0;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(op.params[1].tmpref.size, sizeof(in));

    /* NULL input of size 0 reaches the TA as an empty memref. */
    op.params[0].tmpref.buffer = NULL;
    op.params[0].tmpref.size = 0;
    op.params[1].tmpref.buffer = out;
    op.params[1].tmpref.size = sizeof(out);
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].tmpref.size, 0);

    /* Short registered whole/partial outputs too. */
    TEEC_SharedMemory shm = {.buffer = out, .size = sizeof(out), .flags = TEEC_MEM_OUTPUT};
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &shm), TEEC_SUCCESS);
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_WHOLE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = in;
    op.params[0].tmpref.size = sizeof(in);
    op.params[1].memref.parent = &shm;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_ERROR_SHORT_BUFFER);
    assert_int_equal(op.params[1].memref.size, sizeof(in));
    assert_int_equal(shm.size, sizeof(out)); /* the block itself is unchanged */
    TEEC_ReleaseSharedMemory(&shm);
}

static void test_registered_memrefs(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t src[300];
    uint8_t dst[300];
    uint8_t io[256];
    TEEC_SharedMemory in = {.buffer = src, .size = sizeof(src), .flags = TEEC_MEM_INPUT};
    TEEC_SharedMemory out = {.buffer = dst, .size = sizeof(dst), .flags = TEEC_MEM_OUTPUT};
    TEEC_SharedMemory both = {
        .buffer = io, .size = sizeof(io), .flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT};
    TEEC_SharedMemory bad = {.buffer = NULL, .size = 8, .flags = TEEC_MEM_INPUT};

    assert_int_equal(TEEC_RegisterSharedMemory(NULL, &in), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, NULL), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &bad), TEEC_ERROR_BAD_PARAMETERS);
    bad.buffer = src;
    bad.flags = 0;
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &bad), TEEC_ERROR_BAD_PARAMETERS);
    bad.flags = 4;
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &bad), TEEC_ERROR_BAD_PARAMETERS);
    TEEC_ReleaseSharedMemory(NULL);
    TEEC_ReleaseSharedMemory(&bad); /* never registered: ignored */

    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &in), TEEC_SUCCESS);
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &out), TEEC_SUCCESS);
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &both), TEEC_SUCCESS);
    fill_pattern(src, sizeof(src), 9);
    memset(dst, 0, sizeof(dst));

    /* Whole to whole. */
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_MEMREF_WHOLE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &in;
    op.params[1].memref.parent = &out;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_SUCCESS);
    assert_memory_equal(src, dst, sizeof(src));
    assert_int_equal(op.params[1].memref.size, sizeof(src));

    /* Partial to partial: only the window is written back. */
    memset(dst, 0, sizeof(dst));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                                     TEEC_NONE, TEEC_NONE);
    op.params[0].memref.offset = 10;
    op.params[0].memref.size = 50;
    op.params[1].memref.offset = 200;
    op.params[1].memref.size = 100;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].memref.size, 50);
    assert_memory_equal(dst + 200, src + 10, 50);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(dst[i], 0);
    for (size_t i = 250; i < sizeof(dst); i++)
        assert_int_equal(dst[i], 0);

    /* Inout, whole and partial. */
    for (size_t i = 0; i < sizeof(io); i++)
        io[i] = (uint8_t)i;
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &both;
    assert_int_equal(invoke(&f->sess, CONF_CMD_INCREMENT, &op, &origin), TEEC_SUCCESS);
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.offset = 128;
    op.params[0].memref.size = 128;
    assert_int_equal(invoke(&f->sess, CONF_CMD_INCREMENT, &op, &origin), TEEC_SUCCESS);
    for (size_t i = 0; i < sizeof(io); i++)
        assert_int_equal(io[i], (uint8_t)(i + (i < 128 ? 1 : 2)));

    /* A zero-sized registration is allowed. */
    TEEC_SharedMemory empty = {.buffer = src, .size = 0, .flags = TEEC_MEM_INPUT};
    assert_int_equal(TEEC_RegisterSharedMemory(&f->ctx, &empty), TEEC_SUCCESS);
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &empty;
    assert_int_equal(invoke(&f->sess, CONF_CMD_SUM, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].value.b, 0);
    TEEC_ReleaseSharedMemory(&empty);

    TEEC_ReleaseSharedMemory(&in);
    TEEC_ReleaseSharedMemory(&out);
    TEEC_ReleaseSharedMemory(&both);
    assert_null(in.imp);
    assert_ptr_equal(in.buffer, src); /* the caller's buffer stays the caller's */
}

static void test_allocated_memrefs(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    TEEC_SharedMemory shm = {.size = MIB, .flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT};
    TEEC_SharedMemory bad = {.size = 16, .flags = 0};

    assert_int_equal(TEEC_AllocateSharedMemory(NULL, &shm), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, NULL), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, &bad), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, &shm), TEEC_SUCCESS);
    assert_non_null(shm.buffer);
    uint8_t *p = shm.buffer;

    /* The TA writes into the block; the client sees it in place. */
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &shm;
    op.params[1].value.a = 0xa5;
    assert_int_equal(invoke(&f->sess, CONF_CMD_FILL, &op, &origin), TEEC_SUCCESS);
    assert_ptr_equal(shm.buffer, p);
    for (size_t i = 0; i < MIB; i += 4093)
        assert_int_equal(p[i], 0xa5);
    assert_int_equal(p[MIB - 1], 0xa5);
    assert_int_equal(op.params[0].memref.size, MIB);

    /* The TA reads what the client wrote, 1 MiB, no copy. */
    fill_pattern(p, MIB, 1);
    uint32_t sum = 0;
    for (size_t i = 0; i < MIB; i++)
        sum += p[i];
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.offset = 0;
    op.params[0].memref.size = MIB;
    assert_int_equal(invoke(&f->sess, CONF_CMD_SUM, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].value.a, sum);
    assert_int_equal(op.params[1].value.b, MIB);

    /* A window in the middle, in place. */
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.offset = 1000;
    op.params[0].memref.size = 24;
    uint8_t before = p[999], first = p[1000], last = p[1023], after = p[1024];
    assert_int_equal(invoke(&f->sess, CONF_CMD_INCREMENT, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(p[999], before);
    assert_int_equal(p[1000], (uint8_t)(first + 1));
    assert_int_equal(p[1023], (uint8_t)(last + 1));
    assert_int_equal(p[1024], after);

    /* From the block to a temporary buffer (an inout block is not an input memref). */
    uint8_t *copy = malloc(MIB);
    assert_non_null(copy);
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &shm;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    assert_int_equal(origin, TEEC_ORIGIN_TRUSTED_APP);
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.offset = 0;
    op.params[0].memref.size = MIB;
    op.params[1].tmpref.buffer = copy;
    op.params[1].tmpref.size = MIB;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_SUCCESS);
    assert_memory_equal(copy, p, MIB);
    free(copy);

    /* Released blocks are forgotten by the TA; new ones work. */
    TEEC_ReleaseSharedMemory(&shm);
    assert_null(shm.buffer);
    TEEC_SharedMemory small = {.size = 0, .flags = TEEC_MEM_OUTPUT};
    assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, &small), TEEC_SUCCESS);
    assert_non_null(small.buffer); /* zero size still gives a buffer, as OP-TEE */
    small.size = 0;
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &small;
    op.params[1].value.a = 1;
    assert_int_equal(invoke(&f->sess, CONF_CMD_FILL, &op, &origin), TEEC_SUCCESS);
    TEEC_ReleaseSharedMemory(&small);
}

static void test_memref_in_two_params(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    TEEC_SharedMemory shm = {.size = 8192, .flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT};

    assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, &shm), TEEC_SUCCESS);
    fill_pattern(shm.buffer, 4096, 5);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                                     TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &shm;
    op.params[0].memref.offset = 0;
    op.params[0].memref.size = 4096;
    op.params[1].memref.parent = &shm;
    op.params[1].memref.offset = 4096;
    op.params[1].memref.size = 4096;
    assert_int_equal(invoke(&f->sess, CONF_CMD_ECHO, &op, &origin), TEEC_SUCCESS);
    assert_memory_equal((uint8_t *)shm.buffer + 4096, shm.buffer, 4096);
    TEEC_ReleaseSharedMemory(&shm);
}

/* ------------------------------------------------------------- cancellation */

struct waiter {
    TEEC_Session *sess;
    TEEC_Operation op;
    TEEC_Result res;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    uint32_t origin;
    w->res = TEEC_InvokeCommand(w->sess, CONF_CMD_WAIT, &w->op, &origin);
    return NULL;
}

static void test_cancellation(void **state)
{
    struct fixture *f = *state;
    struct waiter w;
    pthread_t t;

    memset(&w, 0, sizeof(w));
    w.sess = &f->sess;
    w.op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    w.op.params[0].value.a = 20000;
    time_t t0 = time(NULL);
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    while (!__atomic_load_n(&w.op.started, __ATOMIC_SEQ_CST))
        sleep_ms(1);
    sleep_ms(100);
    TEEC_RequestCancellation(&w.op);
    pthread_join(t, NULL);
    assert_int_equal(w.res, TEEC_ERROR_CANCEL);
    assert_true(time(NULL) - t0 < 10);

    /* A short wait that is not cancelled completes. */
    uint32_t origin;
    w.op.params[0].value.a = 20;
    assert_int_equal(TEEC_InvokeCommand(&f->sess, CONF_CMD_WAIT, &w.op, &origin), TEEC_SUCCESS);
}

/* ------------------------------------------------------------- leaks */

static void test_many_sessions_leak_nothing(void **state)
{
    (void)state;
    TEEC_Context ctx;
    TEEC_Session s;
    TEEC_Operation op;
    uint32_t origin;

    assert_int_equal(TEEC_InitializeContext(NULL, &ctx), TEEC_SUCCESS);
    int fds = count_fds();
    int procs = count_descendants();
    for (int i = 0; i < 100; i++) {
        assert_int_equal(
            TEEC_OpenSession(&ctx, &s, &conf_uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin),
            TEEC_SUCCESS);
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        assert_int_equal(invoke(&s, CONF_CMD_COUNTER, &op, &origin), TEEC_SUCCESS);
        assert_int_equal(op.params[0].value.a, 1);
        TEEC_CloseSession(&s);
    }
    assert_int_equal(count_fds(), fds);
    assert_int_equal(wait_descendants(procs), procs);
    TEEC_FinalizeContext(&ctx);
}

static void test_many_invokes_leak_nothing(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    TEEC_SharedMemory shm = {.size = MIB, .flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT};

    /* The TA heap before: what a full exhaustion gets. */
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_OUTPUT, TEEC_NONE);
    op.params[0].value.a = 1024;
    assert_int_equal(invoke(&f->sess, CONF_CMD_MALLOC_EXHAUST, &op, &origin), TEEC_SUCCESS);
    uint32_t heap_before = op.params[1].value.a;

    int fds = count_fds();
    int procs = count_descendants();
    assert_int_equal(TEEC_AllocateSharedMemory(&f->ctx, &shm), TEEC_SUCCESS);
    memset(shm.buffer, 0, MIB);
    const int calls = 10000;
    for (int i = 0; i < calls; i++) {
        memset(&op, 0, sizeof(op));
        op.paramTypes =
            TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        op.params[0].memref.parent = &shm;
        op.params[0].memref.offset = ((size_t)i * 4096) % MIB;
        op.params[0].memref.size = 64;
        TEEC_Result r = invoke(&f->sess, CONF_CMD_INCREMENT, &op, &origin);
        if (r != TEEC_SUCCESS)
            fail_msg("call %d: 0x%08x origin %u", i, r, origin);
    }
    /* Every 4 KiB page was incremented calls / 256 times in its first 64 bytes. */
    const uint8_t *p = shm.buffer;
    for (size_t page = 0; page < MIB / 4096; page++) {
        assert_int_equal(p[page * 4096], (uint8_t)(calls / 256 + (page < calls % 256 ? 1 : 0)));
        assert_int_equal(p[page * 4096 + 64], 0);
    }
    TEEC_ReleaseSharedMemory(&shm);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(count_descendants(), procs);

    /* And the TA heap after: nothing lost. */
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_OUTPUT, TEEC_NONE);
    op.params[0].value.a = 1024;
    assert_int_equal(invoke(&f->sess, CONF_CMD_MALLOC_EXHAUST, &op, &origin), TEEC_SUCCESS);
    assert_int_equal(op.params[1].value.a, heap_before);
}

static void test_temp_memrefs_repeated(void **state)
{
    struct fixture *f = *state;
    TEEC_Operation op;
    uint32_t origin;
    uint8_t *buf = malloc(MIB);
    int fds = count_fds();

    assert_non_null(buf);
    memset(buf, 0, MIB);
    for (int i = 0; i < 200; i++) {
        memset(&op, 0, sizeof(op));
        op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
        op.params[0].tmpref.buffer = buf;
        op.params[0].tmpref.size = (i % 2) ? MIB : 100;
        assert_int_equal(invoke(&f->sess, CONF_CMD_INCREMENT, &op, &origin), TEEC_SUCCESS);
    }
    assert_int_equal(buf[0], 200);
    assert_int_equal(buf[MIB - 1], 100);
    assert_int_equal(count_fds(), fds);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_arguments),
        cmocka_unit_test(test_finalize_reaps_secure_world),
        cmocka_unit_test(test_open_session_arguments),
        cmocka_unit_test_setup_teardown(test_invoke_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_memrefs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_memrefs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocated_memrefs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memref_in_two_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancellation, setup, teardown),
        cmocka_unit_test(test_many_sessions_leak_nothing),
        cmocka_unit_test_setup_teardown(test_many_invokes_leak_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_memrefs_repeated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
