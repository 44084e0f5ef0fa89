/*
 * tee_bench: round trip of an empty command to a TA of the simulated TEE (or OP-TEE, when
 * linked with OP-TEE's libteec and the conformance TA installed), against the same loop as a
 * plain function call.
 *
 *   bin/tee_bench [iterations]      (default 20000)
 */
#include "tests/ta/conformance/include/conformance_ta.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <tee_client_api.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The "command" done in-process; noinline so the loop really calls it. */
static __attribute__((noinline)) TEEC_Result plain_nop(void *ctx, uint32_t cmd)
{
    __asm__ volatile("" : : "r"(ctx), "r"(cmd) : "memory");
    return cmd == CONF_CMD_NOP ? TEEC_SUCCESS : TEEC_ERROR_BAD_PARAMETERS;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    const TEEC_UUID uuid = TA_CONFORMANCE_UUID;
    TEEC_Context ctx;
    TEEC_Session sess;
    uint32_t origin = 0;

    if (iters <= 0) {
        fprintf(stderr, "usage: %s [iterations]\n", argv[0]);
        return 2;
    }
    TEEC_Result res = TEEC_InitializeContext(NULL, &ctx);
    if (res != TEEC_SUCCESS) {
        fprintf(stderr, "TEEC_InitializeContext: 0x%08x\n", (unsigned)res);
        return 1;
    }
    res = TEEC_OpenSession(&ctx, &sess, &uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
    if (res != TEEC_SUCCESS) {
        fprintf(stderr, "TEEC_OpenSession: 0x%08x origin %u\n", (unsigned)res, (unsigned)origin);
        TEEC_FinalizeContext(&ctx);
        return 1;
    }
    /* Warm up: first calls fault in pages and resolve symbols. */
    for (int i = 0; i < 100; i++)
        TEEC_InvokeCommand(&sess, CONF_CMD_NOP, NULL, &origin);

    double t0 = now_us();
    for (long i = 0; i < iters; i++) {
        res = TEEC_InvokeCommand(&sess, CONF_CMD_NOP, NULL, &origin);
        if (res != TEEC_SUCCESS) {
            fprintf(stderr, "TEEC_InvokeCommand: 0x%08x origin %u\n", (unsigned)res,
                    (unsigned)origin);
            break;
        }
    }
    double tee_us = (now_us() - t0) / (double)iters;

    long plain_iters = iters * 1000;
    uint32_t bad = 0;
    t0 = now_us();
    for (long i = 0; i < plain_iters; i++)
        bad |= plain_nop(&sess, CONF_CMD_NOP);
    double plain_us = (now_us() - t0) / (double)plain_iters;

    TEEC_CloseSession(&sess);
    TEEC_FinalizeContext(&ctx);
    printf("empty command round trip: %.2f us (%ld calls)\n", tee_us, iters);
    printf("plain function call:      %.5f us (%ld calls)\n", plain_us, plain_iters);
    printf("ratio:                    %.0fx\n", plain_us > 0 ? tee_us / plain_us : 0.0);
    return res == TEEC_SUCCESS && !bad ? 0 : 1;
}
