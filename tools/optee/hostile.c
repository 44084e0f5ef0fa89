/*
 * dz-hostile - a hostile normal world against the DarkneTZ TA, through the GlobalPlatform
 * TEE Client API only: what any process on the device can send, on OP-TEE or on the
 * simulated TEE. `make check-optee` runs it in both worlds and compares the lines.
 *
 * Each case prints one line "NAME: RESULT" and must get the answer the protocol names
 * (ta/include/darknetz_ta.h); after each the same session must still answer DZ_CMD_VERSION.
 * It sends only what needs no model (the protocol's version check, command order, unknown
 * ids, a short output), so it follows the protocol's version without knowing its blobs.
 * Exit status: 0 when every case behaved, 1 otherwise, 2 when no session opens.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <tee_client_api.h>

#include "ta/include/darknetz_ta.h"

static const TEEC_UUID uuid = DZ_TA_UUID;
static int failures;

static const char *name_of(TEEC_Result r)
{
    switch (r) {
    case TEEC_SUCCESS:
        return "TEEC_SUCCESS";
    case TEEC_ERROR_BAD_PARAMETERS:
        return "TEEC_ERROR_BAD_PARAMETERS";
    case TEEC_ERROR_BAD_STATE:
        return "TEEC_ERROR_BAD_STATE";
    case TEEC_ERROR_NOT_SUPPORTED:
        return "TEEC_ERROR_NOT_SUPPORTED";
    case TEEC_ERROR_SHORT_BUFFER:
        return "TEEC_ERROR_SHORT_BUFFER";
    case TEEC_ERROR_OUT_OF_MEMORY:
        return "TEEC_ERROR_OUT_OF_MEMORY";
    case TEEC_ERROR_TARGET_DEAD:
        return "TEEC_ERROR_TARGET_DEAD";
    default:
        return "other";
    }
}

/* DZ_CMD_VERSION as darknetp sends it: must succeed with this build's protocol. */
static TEEC_Result version(TEEC_Session *s, uint32_t *data_size)
{
    TEEC_Operation op;
    uint32_t origin = 0;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    TEEC_Result r = TEEC_InvokeCommand(s, DZ_CMD_VERSION, &op, &origin);
    if (r == TEEC_SUCCESS && op.params[0].value.a != DZ_TA_PROTOCOL_VERSION)
        r = TEEC_ERROR_GENERIC;
    if (r == TEEC_SUCCESS && data_size)
        *data_size = op.params[0].value.b;
    return r;
}

/* Sends cmd with op, expects `want`, then checks that the session still works. */
static void check(TEEC_Session *s, const char *name, uint32_t cmd, TEEC_Operation *op,
                  TEEC_Result want)
{
    uint32_t origin = 0;
    TEEC_Result r = TEEC_InvokeCommand(s, cmd, op, &origin);
    TEEC_Result after = version(s, NULL);
    bool ok = r == want && after == TEEC_SUCCESS;
    printf("%s: %s (0x%08" PRIx32 ", origin %" PRIu32 "), then DZ_CMD_VERSION %s%s\n", name,
           name_of(r), (uint32_t)r, origin, after == TEEC_SUCCESS ? "ok" : name_of(after),
           ok ? "" : "  <-- UNEXPECTED");
    if (!ok) {
        printf("%s: expected %s\n", name, name_of(want));
        failures++;
    }
}

int main(void)
{
    TEEC_Context ctx;
    TEEC_Session s, s2;
    TEEC_Operation op;
    uint32_t origin = 0, size = 0;
    uint8_t small[8];

    if (TEEC_InitializeContext(NULL, &ctx) != TEEC_SUCCESS) {
        printf("no TEE context\n");
        return 2;
    }
    TEEC_Result r = TEEC_OpenSession(&ctx, &s, &uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
    if (r != TEEC_SUCCESS) {
        printf("open session: %s (0x%08" PRIx32 ", origin %" PRIu32 ")\n", name_of(r), (uint32_t)r,
               origin);
        TEEC_FinalizeContext(&ctx);
        return 2;
    }
    r = version(&s, &size);
    printf("version: %s, protocol %u, TA_DATA_SIZE %" PRIu32 "\n", name_of(r),
           (unsigned)DZ_TA_PROTOCOL_VERSION, size);
    failures += r != TEEC_SUCCESS;

    /* Wrong parameter types for DZ_CMD_VERSION: an input value, then a memref. */
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    check(&s, "version-value-input", DZ_CMD_VERSION, &op, TEEC_ERROR_BAD_PARAMETERS);
    memset(&op, 0, sizeof(op));
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[1].tmpref.buffer = small;
    op.params[1].tmpref.size = sizeof(small);
    check(&s, "version-extra-memref", DZ_CMD_VERSION, &op, TEEC_ERROR_BAD_PARAMETERS);

    /* Commands before DZ_CMD_OPEN_MODEL, each with the types it takes. */
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    check(&s, "update-before-open", DZ_CMD_UPDATE, &op, TEEC_ERROR_BAD_STATE);
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = small;
    op.params[0].tmpref.size = sizeof(small);
    check(&s, "save-sealed-before-open", DZ_CMD_SAVE_SEALED, &op, TEEC_ERROR_BAD_STATE);

    /* Unknown command ids. */
    memset(&op, 0, sizeof(op));
    check(&s, "unknown-0x100", 0x100, &op, TEEC_ERROR_NOT_SUPPORTED);
    memset(&op, 0, sizeof(op));
    check(&s, "unknown-0xffffffff", 0xffffffffu, &op, TEEC_ERROR_NOT_SUPPORTED);

#if DZ_TA_PROTOCOL_VERSION >= 2
    /* An output memref too short for the 32-byte public value: the size needed comes back. */
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref.buffer = small;
    op.params[0].tmpref.size = sizeof(small);
    check(&s, "get-pubkey-short-buffer", DZ_CMD_GET_PUBKEY, &op, TEEC_ERROR_SHORT_BUFFER);
    printf("get-pubkey-short-buffer: size asked %zu\n", op.params[0].tmpref.size);
    if (op.params[0].tmpref.size != 32)
        failures++;
#else
    printf("get-pubkey-short-buffer: skipped (protocol 1 has no output before a model)\n");
#endif

    /* A second session at the same time: each has a TA_DATA_SIZE heap of its own. */
    r = TEEC_OpenSession(&ctx, &s2, &uuid, TEEC_LOGIN_PUBLIC, NULL, NULL, &origin);
    if (r == TEEC_SUCCESS) {
        r = version(&s2, NULL);
        TEEC_CloseSession(&s2);
    }
    printf("second-session: %s\n", name_of(r));
    failures += r != TEEC_SUCCESS;

    TEEC_CloseSession(&s);
    TEEC_FinalizeContext(&ctx);
    printf("hostile: %s\n", failures ? "FAILED" : "all cases as expected");
    return failures ? 1 : 0;
}
