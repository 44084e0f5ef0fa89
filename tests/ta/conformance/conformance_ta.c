/*
 * Conformance test TA for the simulated TEE: one command per property the host tests check
 * (see include/conformance_ta.h). Written against the GlobalPlatform Internal Core API only,
 * so it also builds with OP-TEE's TA dev kit.
 */
#include <conformance_ta.h>
#include <malloc.h>
#include <pta_system.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_internal_api.h>
#include <tee_internal_api_extensions.h>

#define T_NONE TEE_PARAM_TYPE_NONE
#define T_VIN TEE_PARAM_TYPE_VALUE_INPUT
#define T_VOUT TEE_PARAM_TYPE_VALUE_OUTPUT
#define T_VIO TEE_PARAM_TYPE_VALUE_INOUT
#define T_MIN TEE_PARAM_TYPE_MEMREF_INPUT
#define T_MOUT TEE_PARAM_TYPE_MEMREF_OUTPUT
#define T_MIO TEE_PARAM_TYPE_MEMREF_INOUT

struct session {
    uint32_t counter;
    const volatile uint8_t *kept; /* CONF_CMD_KEEP_POINTER */
};

static uint32_t instance_counter;
static uint8_t bss_buffer[64];
static const uint8_t rodata_buffer[64] = {1, 2, 3};

TEE_Result TA_CreateEntryPoint(void)
{
    IMSG("conformance TA: instance created");
    return TEE_SUCCESS;
}

void TA_DestroyEntryPoint(void)
{
    IMSG("conformance TA: instance destroyed");
}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param params[TEE_NUM_PARAMS],
                                    void **session_ctx)
{
    struct session *s = NULL;

    if (types == TEE_PARAM_TYPES(T_VIO, T_NONE, T_NONE, T_NONE)) {
        if (params[0].value.a == CONFORMANCE_OPEN_REFUSE)
            return TEE_ERROR_ACCESS_DENIED;
        params[0].value.b = params[0].value.a + 1;
    } else if (types != TEE_PARAM_TYPES(T_NONE, T_NONE, T_NONE, T_NONE)) {
        return TEE_ERROR_BAD_PARAMETERS;
    }
    s = TEE_Malloc(sizeof(*s), TEE_MALLOC_FILL_ZERO);
    if (!s)
        return TEE_ERROR_OUT_OF_MEMORY;
    *session_ctx = s;
    return TEE_SUCCESS;
}

void TA_CloseSessionEntryPoint(void *session_ctx)
{
    TEE_Free(session_ctx);
}

static TEE_Result cmd_values(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_VIN, T_VOUT, T_VIO, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    p[1].value.a = p[0].value.b;
    p[1].value.b = p[0].value.a;
    p[2].value.a += 1;
    p[2].value.b += 1;
    return TEE_SUCCESS;
}

static TEE_Result cmd_echo(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MIN, T_MOUT, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    size_t n = p[0].memref.size;
    if (p[1].memref.size < n) {
        p[1].memref.size = n;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (n)
        TEE_MemMove(p[1].memref.buffer, p[0].memref.buffer, n);
    p[1].memref.size = n;
    return TEE_SUCCESS;
}

static TEE_Result cmd_increment(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MIO, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    uint8_t *b = p[0].memref.buffer;
    for (size_t i = 0; i < p[0].memref.size; i++)
        b[i]++;
    return TEE_SUCCESS;
}

static TEE_Result cmd_fill(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MOUT, T_VIN, T_NONE, T_NONE) &&
        types != TEE_PARAM_TYPES(T_MIO, T_VIN, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_MemFill(p[0].memref.buffer, p[1].value.a, p[0].memref.size);
    return TEE_SUCCESS;
}

static TEE_Result cmd_sum(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MIN, T_VOUT, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    const uint8_t *b = p[0].memref.buffer;
    uint32_t sum = 0;
    for (size_t i = 0; i < p[0].memref.size; i++)
        sum += b[i];
    p[1].value.a = sum;
    p[1].value.b = (uint32_t)p[0].memref.size;
    return TEE_SUCCESS;
}

/* Allocates @chunk-byte blocks until TEE_Malloc fails, linking them; returns the bytes got. */
static size_t exhaust(size_t chunk, void **head)
{
    size_t total = 0;
    void *p;

    *head = NULL;
    while ((p = TEE_Malloc(chunk, TEE_MALLOC_NO_FILL)) != NULL) {
        *(void **)p = *head;
        *head = p;
        total += chunk;
    }
    return total;
}

static void release(void *head)
{
    while (head) {
        void *next = *(void **)head;
        TEE_Free(head);
        head = next;
    }
}

static TEE_Result cmd_malloc_exhaust(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    uint32_t fail = 0;
    void *head = NULL;

    if (types != TEE_PARAM_TYPES(T_VIN, T_VOUT, T_VOUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    size_t chunk = p[0].value.a;
    if (chunk < sizeof(void *))
        return TEE_ERROR_BAD_PARAMETERS;

    size_t first = exhaust(chunk, &head);
    /* The libc allocator shares the same, now exhausted, heap. */
    void *m = malloc(chunk);
    if (m)
        fail |= 1u << 0;
    free(m);
    release(head);
    size_t second = exhaust(chunk, &head);
    release(head);

    if (TEE_Malloc(SIZE_MAX, 0) || TEE_Malloc(SIZE_MAX - 8, 0))
        fail |= 1u << 1;
    if (TEE_Malloc(CONFORMANCE_TA_DATA_SIZE + 1, 0))
        fail |= 1u << 2;
    volatile size_t huge = SIZE_MAX / 2; /* not a constant: the compiler would refuse it */
    if (calloc(huge, 4))
        fail |= 1u << 3;
    void *z = TEE_Malloc(0, 0);
    if (!z)
        fail |= 1u << 4;
    TEE_Free(z);

    /* Zero fill by default, contents kept by realloc. */
    uint8_t *a = TEE_Malloc(100, TEE_MALLOC_FILL_ZERO);
    if (!a)
        return TEE_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < 100; i++) {
        if (a[i])
            fail |= 1u << 5;
        a[i] = (uint8_t)i;
    }
    uint8_t *b = TEE_Realloc(a, 10000);
    if (!b) {
        TEE_Free(a);
        return TEE_ERROR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < 100; i++)
        if (b[i] != (uint8_t)i)
            fail |= 1u << 6;
    uint8_t *c = TEE_Realloc(b, 10);
    if (!c || c[9] != 9)
        fail |= 1u << 7;
    TEE_Free(c ? c : b);
    if (TEE_Realloc(NULL, SIZE_MAX))
        fail |= 1u << 8;
    void *al = memalign(256, 1000);
    if (!al || ((uintptr_t)al & 255))
        fail |= 1u << 9;
    free(al);
    /* Everything freed: a block of most of the heap fits again. */
    void *big = TEE_Malloc(CONFORMANCE_TA_DATA_SIZE / 2, 0);
    if (!big)
        fail |= 1u << 10;
    TEE_Free(big);

    p[1].value.a = (uint32_t)first;
    p[1].value.b = (uint32_t)second;
    p[2].value.a = fail;
    return TEE_SUCCESS;
}

static __attribute__((noinline)) uint32_t recurse(volatile uint8_t *prev, uint32_t depth,
                                                  uint32_t limit)
{
    volatile uint8_t frame[512];
    frame[0] = (uint8_t)depth;
    frame[1] = prev ? prev[0] : 0;
    if (depth >= limit)
        return frame[0];
    return recurse(frame, depth + 1, limit) + frame[1];
}

static TEE_Result cmd_stack_overflow(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_VIN, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    p[0].value.b = recurse(NULL, 0, p[0].value.a);
    return TEE_SUCCESS;
}

static TEE_Result cmd_bad_write(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_VIN, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    volatile uint32_t *target = (volatile uint32_t *)(uintptr_t)p[0].value.a;
    *target = 0x0badc0de;
    return TEE_SUCCESS;
}

static TEE_Result cmd_time(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    TEE_Time sys;
    TEE_Time ree;

    if (types != TEE_PARAM_TYPES(T_VOUT, T_VOUT, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_GetSystemTime(&sys);
    TEE_GetREETime(&ree);
    p[0].value.a = sys.seconds;
    p[0].value.b = sys.millis;
    p[1].value.a = ree.seconds;
    p[1].value.b = ree.millis;
    return TEE_SUCCESS;
}

static TEE_Result cmd_random(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MOUT, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_GenerateRandom(p[0].memref.buffer, p[0].memref.size);
    return TEE_SUCCESS;
}

struct access_case {
    uint32_t flags;
    void *buf;
    size_t size;
    TEE_Result expect;
};

static TEE_Result cmd_access_rights(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    const uint32_t R = TEE_MEMORY_ACCESS_READ;
    const uint32_t W = TEE_MEMORY_ACCESS_WRITE;
    const uint32_t ANY = TEE_MEMORY_ACCESS_ANY_OWNER;
    const TEE_Result OK = TEE_SUCCESS;
    const TEE_Result NO = TEE_ERROR_ACCESS_DENIED;
    uint8_t local[32] = {0};
    uint32_t fail = 0;

    if (types != TEE_PARAM_TYPES(T_MIO, T_MIN, T_VOUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    uint8_t *heap = TEE_Malloc(64, 0);
    if (!heap)
        return TEE_ERROR_OUT_OF_MEMORY;
    uint8_t *io = p[0].memref.buffer;
    size_t io_size = p[0].memref.size;
    uint8_t *in = p[1].memref.buffer;
    size_t in_size = p[1].memref.size;
    const struct access_case cases[] = {
        {R | W, heap, 64, OK},                                 /* 0: own heap block */
        {R, heap, 4096, NO},                                   /* 1: past the block */
        {R | W, local, sizeof(local), OK},                     /* 2: TA stack */
        {R | W, bss_buffer, sizeof(bss_buffer), OK},           /* 3: TA .bss */
        {R, (void *)rodata_buffer, 64, OK},                    /* 4: TA .rodata, read */
        {W, (void *)rodata_buffer, 64, NO},                    /* 5: TA .rodata, write */
        {R | W, io, io_size, NO},                              /* 6: shared, not ANY_OWNER */
        {R | W | ANY, io, io_size, OK},                        /* 7: shared inout, ANY_OWNER */
        {R | ANY, in, in_size, OK},                            /* 8: shared input, read */
        {W | ANY, in, in_size, NO},                            /* 9: shared input, write */
        {R | ANY, io, io_size + 4096, NO},                     /* 10: beyond the memref */
        {R, NULL, 16, NO},                                     /* 11: NULL */
        {R, NULL, 0, OK},                                      /* 12: empty range */
        {R | ANY | TEE_MEMORY_ACCESS_SECURE, io, io_size, NO}, /* 13: shared is not secure */
        {R, heap, SIZE_MAX, NO},                               /* 14: wrapping range */
        {R, (void *)stdout, 8, NO},                            /* 15: libc's memory */
        {0x40, heap, 8, NO},                                   /* 16: unknown flag */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TEE_Result r = TEE_CheckMemoryAccessRights(cases[i].flags, cases[i].buf, cases[i].size);
        if (r != cases[i].expect)
            fail |= 1u << i;
    }
    TEE_Free(heap);
    p[2].value.a = fail;
    return TEE_SUCCESS;
}

static TEE_Result cmd_counter(struct session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_VOUT, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    p[0].value.a = ++s->counter;
    p[0].value.b = ++instance_counter;
    return TEE_SUCCESS;
}

static TEE_Result cmd_derive_key(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    const TEE_UUID pta = PTA_SYSTEM_UUID;
    const uint32_t ptypes = TEE_PARAM_TYPES(T_MIN, T_MOUT, T_NONE, T_NONE);
    TEE_TASessionHandle sess = TEE_HANDLE_NULL;
    TEE_Param q[TEE_NUM_PARAMS];
    uint8_t key[TA_DERIVED_KEY_MAX_SIZE];
    uint32_t origin = 0;

    if (types != TEE_PARAM_TYPES(T_MIN, T_MOUT, T_VOUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    size_t key_len = p[1].memref.size;
    if (key_len > sizeof(key))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_Result res = TEE_OpenTASession(&pta, TEE_TIMEOUT_INFINITE, 0, NULL, &sess, &origin);
    if (res != TEE_SUCCESS)
        return res;

    memset(q, 0, sizeof(q));
    q[0].memref.buffer = p[0].memref.buffer;
    q[0].memref.size = p[0].memref.size;
    q[1].memref.buffer = key;
    q[1].memref.size = key_len;
    res = TEE_InvokeTACommand(sess, TEE_TIMEOUT_INFINITE, PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY, ptypes,
                              q, &origin);
    if (res == TEE_SUCCESS)
        TEE_MemMove(p[1].memref.buffer, key, key_len);

    /* The key must not be derived into normal-world memory. */
    q[1].memref.buffer = p[1].memref.buffer;
    p[2].value.a = TEE_InvokeTACommand(sess, TEE_TIMEOUT_INFINITE, PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY,
                                       ptypes, q, &origin);
    q[1].memref.buffer = key;
    p[2].value.b = TEE_InvokeTACommand(sess, TEE_TIMEOUT_INFINITE, PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY,
                                       TEE_PARAM_TYPES(T_MIN, T_MIO, T_NONE, T_NONE), q, &origin);
    TEE_MemFill(key, 0, sizeof(key));
    TEE_CloseTASession(sess);
    return res;
}

static TEE_Result cmd_keep_pointer(struct session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MIN, T_NONE, T_NONE, T_NONE) || !p[0].memref.size)
        return TEE_ERROR_BAD_PARAMETERS;
    s->kept = p[0].memref.buffer;
    return TEE_SUCCESS;
}

static TEE_Result cmd_use_pointer(struct session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    (void)p;
    if (types != TEE_PARAM_TYPES(T_NONE, T_NONE, T_NONE, T_NONE) || !s->kept)
        return TEE_ERROR_BAD_PARAMETERS;
    return s->kept[0] ? TEE_SUCCESS : TEE_ERROR_GENERIC;
}

static TEE_Result cmd_wait(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_VIN, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    TEE_UnmaskCancellation();
    TEE_Result res = TEE_Wait(p[0].value.a);
    TEE_MaskCancellation();
    return res;
}

static TEE_Result cmd_trace(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    char text[128];

    if (types != TEE_PARAM_TYPES(T_MIN, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    size_t n = p[0].memref.size < sizeof(text) - 1 ? p[0].memref.size : sizeof(text) - 1;
    TEE_MemMove(text, p[0].memref.buffer, n);
    text[n] = '\0';
    EMSG("error %s", text);
    IMSG("info %s", text);
    DMSG("debug %s", text);
    printf("printf %s\n", text);
    return TEE_SUCCESS;
}

static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

struct slot {
    uint8_t *p;
    size_t size;
    int tee; /* from TEE_Malloc/TEE_Realloc, else from the libc family */
};

static uint32_t check_slot(const struct slot *s)
{
    for (size_t i = 0; i < s->size; i++)
        if (s->p[i] != (uint8_t)(s->size + i))
            return 1;
    return 0;
}

static void fill_slot(struct slot *s)
{
    for (size_t i = 0; i < s->size; i++)
        s->p[i] = (uint8_t)(s->size + i);
}

static TEE_Result cmd_heap_stress(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    struct slot slots[64];
    uint32_t rnd, bad = 0;

    if (types != TEE_PARAM_TYPES(T_VIN, T_VOUT, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    memset(slots, 0, sizeof(slots));
    rnd = p[0].value.a;
    for (uint32_t it = 0; it < p[0].value.b; it++) {
        struct slot *s = &slots[next_random(&rnd) % 64];
        uint32_t r = next_random(&rnd);
        size_t size = (r % 8 == 0) ? r % 40000 : 1 + r % 700;
        if (!s->p) {
            s->tee = (r >> 4) & 1;
            if ((r >> 5) % 8 == 0)
                s->p = memalign((size_t)16 << ((r >> 8) % 6), size);
            else
                s->p = s->tee ? TEE_Malloc(size, TEE_MALLOC_NO_FILL) : malloc(size);
            if (!s->p)
                continue; /* the heap is full for now */
            s->size = size;
            fill_slot(s);
            continue;
        }
        bad += check_slot(s);
        if ((r >> 5) & 1) {
            if (!size)
                size = 1; /* realloc(p, 0) frees p: not what this branch tests */
            uint8_t *q = s->tee ? TEE_Realloc(s->p, size) : realloc(s->p, size);
            if (!q)
                continue;
            size_t keep = size < s->size ? size : s->size;
            for (size_t i = 0; i < keep; i++)
                if (q[i] != (uint8_t)(s->size + i)) {
                    bad++;
                    break;
                }
            s->p = q;
            s->size = size;
            fill_slot(s);
        } else {
            if (s->tee)
                TEE_Free(s->p);
            else
                free(s->p);
            s->p = NULL;
        }
    }
    for (int i = 0; i < 64; i++) {
        if (!slots[i].p)
            continue;
        bad += check_slot(&slots[i]);
        if (slots[i].tee)
            TEE_Free(slots[i].p);
        else
            free(slots[i].p);
    }
    void *half = TEE_Malloc(CONFORMANCE_TA_DATA_SIZE / 2, 0);
    p[1].value.a = bad;
    p[1].value.b = half != NULL;
    TEE_Free(half);
    return TEE_SUCCESS;
}

TEE_Result TA_InvokeCommandEntryPoint(void *session_ctx, uint32_t cmd, uint32_t types,
                                      TEE_Param params[TEE_NUM_PARAMS])
{
    struct session *s = session_ctx;

    switch (cmd) {
    case CONF_CMD_NOP:
        return types == 0 ? TEE_SUCCESS : TEE_ERROR_BAD_PARAMETERS;
    case CONF_CMD_VALUES:
        return cmd_values(types, params);
    case CONF_CMD_ECHO:
        return cmd_echo(types, params);
    case CONF_CMD_INCREMENT:
        return cmd_increment(types, params);
    case CONF_CMD_FILL:
        return cmd_fill(types, params);
    case CONF_CMD_SUM:
        return cmd_sum(types, params);
    case CONF_CMD_MALLOC_EXHAUST:
        return cmd_malloc_exhaust(types, params);
    case CONF_CMD_PANIC:
        if (types != TEE_PARAM_TYPES(T_VIN, T_NONE, T_NONE, T_NONE))
            return TEE_ERROR_BAD_PARAMETERS;
        TEE_Panic(params[0].value.a);
    case CONF_CMD_STACK_OVERFLOW:
        return cmd_stack_overflow(types, params);
    case CONF_CMD_BAD_WRITE:
        return cmd_bad_write(types, params);
    case CONF_CMD_TIME:
        return cmd_time(types, params);
    case CONF_CMD_RANDOM:
        return cmd_random(types, params);
    case CONF_CMD_ACCESS_RIGHTS:
        return cmd_access_rights(types, params);
    case CONF_CMD_COUNTER:
        return cmd_counter(s, types, params);
    case CONF_CMD_DERIVE_KEY:
        return cmd_derive_key(types, params);
    case CONF_CMD_KEEP_POINTER:
        return cmd_keep_pointer(s, types, params);
    case CONF_CMD_USE_POINTER:
        return cmd_use_pointer(s, types, params);
    case CONF_CMD_WAIT:
        return cmd_wait(types, params);
    case CONF_CMD_TRACE:
        return cmd_trace(types, params);
    case CONF_CMD_HEAP_STRESS:
        return cmd_heap_stress(types, params);
    default:
        return TEE_ERROR_NOT_SUPPORTED;
    }
}
