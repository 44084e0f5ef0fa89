/*
 * Conformance test TA: UUID and commands, shared by the TA (tests/ta/conformance/) and the
 * host tests (tests/test_tee_*.c, tools/tee_bench.c). Each command checks its exact parameter
 * types and answers TEE_ERROR_BAD_PARAMETERS otherwise.
 */
#ifndef CONFORMANCE_TA_H
#define CONFORMANCE_TA_H

/* clang-format off */
#define TA_CONFORMANCE_UUID \
    {0x8e20049b, 0xb560, 0x4696, {0x8b, 0x64, 0x19, 0xcc, 0x09, 0xfe, 0x52, 0x94}}
/* clang-format on */

/* The TA's TA_DATA_SIZE, for tests that exhaust its heap. */
#define CONFORMANCE_TA_DATA_SIZE (256 * 1024)

/*
 * OpenSession: no parameters, or [inout] value[0]: b = a + 1 on return; a == OPEN_REFUSE
 * makes the session fail with TEE_ERROR_ACCESS_DENIED.
 */
#define CONFORMANCE_OPEN_REFUSE 0xdeadu

enum conformance_cmd {
    /* No parameters; does nothing (round-trip benchmark). */
    CONF_CMD_NOP = 0,
    /* [in] value[0] (a, b); [out] value[1] = (b, a); [inout] value[2] = (a + 1, b + 1). */
    CONF_CMD_VALUES,
    /*
     * [in] memref[0]; [out] memref[1] = copy of memref[0]. TEE_ERROR_SHORT_BUFFER with
     * memref[1].size = memref[0].size when it does not fit.
     */
    CONF_CMD_ECHO,
    /* [inout] memref[0]: every byte incremented by 1. */
    CONF_CMD_INCREMENT,
    /* [out] memref[0] filled with the byte [in] value[1].a; size unchanged. */
    CONF_CMD_FILL,
    /* [in] memref[0]; [out] value[1].a = sum of the bytes, .b = size. */
    CONF_CMD_SUM,
    /*
     * [in] value[0].a = chunk bytes; [out] value[1] = (bytes TEE_Malloc gave before NULL,
     * the same again after freeing everything); [out] value[2].a = bitmask of failed checks
     * (huge and overflowing sizes, malloc sharing the heap, realloc, memalign), 0 when all pass.
     */
    CONF_CMD_MALLOC_EXHAUST,
    /* [in] value[0].a = panic code: TEE_Panic. */
    CONF_CMD_PANIC,
    /* [in] value[0].a = recursion limit (large): overflows the TA stack. */
    CONF_CMD_STACK_OVERFLOW,
    /* [in] value[0].a = address to write to (a small one): crashes. */
    CONF_CMD_BAD_WRITE,
    /* [out] value[0] = system time (s, ms); [out] value[1] = REE time (s, ms). */
    CONF_CMD_TIME,
    /* [out] memref[0] filled by TEE_GenerateRandom. */
    CONF_CMD_RANDOM,
    /*
     * [inout] memref[0], [in] memref[1]; [out] value[2].a = bitmask of
     * TEE_CheckMemoryAccessRights checks that did not give the expected answer (0 = all did).
     */
    CONF_CMD_ACCESS_RIGHTS,
    /* [out] value[0].a = session counter after increment, .b = instance-wide counter. */
    CONF_CMD_COUNTER,
    /*
     * [in] memref[0] extra data; [out] memref[1] derived key (16..32 bytes) from the system
     * PTA; [out] value[2].a = result of deriving straight into memref[1] (must be
     * TEE_ERROR_SECURITY), .b = result with wrong parameter types (TEE_ERROR_BAD_PARAMETERS).
     */
    CONF_CMD_DERIVE_KEY,
    /* [in] memref[0]: the TA keeps the pointer (a bug the simulator must catch). */
    CONF_CMD_KEEP_POINTER,
    /* No parameters: reads through the pointer kept by CONF_CMD_KEEP_POINTER: crashes. */
    CONF_CMD_USE_POINTER,
    /* [in] value[0].a = milliseconds: unmasks cancellation and TEE_Wait()s. */
    CONF_CMD_WAIT,
    /* [in] memref[0] text: printed with EMSG, IMSG, DMSG and printf. */
    CONF_CMD_TRACE,
    /*
     * [in] value[0] = (seed, iterations): random malloc/realloc/free/memalign and
     * TEE_Malloc/TEE_Realloc/TEE_Free over 64 slots, contents checked; [out] value[1].a =
     * corrupted blocks found, .b = 1 if half the heap fits again once all is freed.
     */
    CONF_CMD_HEAP_STRESS,
};

#endif /* CONFORMANCE_TA_H */
