/*
 * Simulated TEE, internal client API: TEE_OpenTASession, TEE_InvokeTACommand and
 * TEE_CloseTASession reach OP-TEE's system pseudo-TA (PTA_SYSTEM_UUID) only; it runs inside
 * the calling instance, as a PTA runs inside OP-TEE's core. Other UUIDs are
 * TEE_ERROR_ITEM_NOT_FOUND: TA-to-TA sessions are not simulated.
 */
#define _GNU_SOURCE
#include "tee/ta/tsim_internal.h"

#include <pta_system.h>
#include <string.h>
#include <tee_api_defines_extensions.h>

struct __TEE_TASessionHandle {
    uint32_t magic;
};

static struct __TEE_TASessionHandle system_session = {0x50544153u};
static const TEE_UUID system_uuid = PTA_SYSTEM_UUID;

TEE_Result TEE_OpenTASession(const TEE_UUID *destination, uint32_t cancellationRequestTimeout,
                             uint32_t paramTypes, TEE_Param params[TEE_NUM_PARAMS],
                             TEE_TASessionHandle *session, uint32_t *returnOrigin)
{
    (void)cancellationRequestTimeout;
    (void)paramTypes;
    (void)params;
    if (!destination || !session)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    if (memcmp(destination, &system_uuid, sizeof(system_uuid)) != 0) {
        *session = TEE_HANDLE_NULL;
        if (returnOrigin)
            *returnOrigin = TEE_ORIGIN_TEE;
        return TEE_ERROR_ITEM_NOT_FOUND;
    }
    *session = &system_session;
    if (returnOrigin)
        *returnOrigin = TEE_ORIGIN_TRUSTED_APP;
    return TEE_SUCCESS;
}

void TEE_CloseTASession(TEE_TASessionHandle session)
{
    if (session != TEE_HANDLE_NULL && session != &system_session)
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

/* As OP-TEE's core/pta/system.c: sizes first, then the key must land in secure memory. */
static TEE_Result derive_ta_unique_key(uint32_t types, TEE_Param params[TEE_NUM_PARAMS])
{
    const uint32_t want = TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
                                          TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE);
    if (types != want)
        return TEE_ERROR_BAD_PARAMETERS;
    void *extra = params[0].memref.buffer;
    size_t extra_len = params[0].memref.size;
    void *key = params[1].memref.buffer;
    size_t key_len = params[1].memref.size;
    if (extra_len > TA_DERIVED_EXTRA_DATA_MAX_SIZE || key_len < TA_DERIVED_KEY_MIN_SIZE ||
        key_len > TA_DERIVED_KEY_MAX_SIZE)
        return TEE_ERROR_BAD_PARAMETERS;
    if (extra_len &&
        (!extra || TEE_CheckMemoryAccessRights(TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_ANY_OWNER,
                                               extra, extra_len) != TEE_SUCCESS))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!key || TEE_CheckMemoryAccessRights(TEE_MEMORY_ACCESS_WRITE | TEE_MEMORY_ACCESS_ANY_OWNER |
                                                TEE_MEMORY_ACCESS_SECURE,
                                            key, key_len) != TEE_SUCCESS)
        return TEE_ERROR_SECURITY;
    return tsim_pta_system_derive_key(tsim_ta_uuid(), extra_len ? extra : NULL, extra_len, key,
                                      key_len);
}

TEE_Result TEE_InvokeTACommand(TEE_TASessionHandle session, uint32_t cancellationRequestTimeout,
                               uint32_t commandID, uint32_t paramTypes,
                               TEE_Param params[TEE_NUM_PARAMS], uint32_t *returnOrigin)
{
    TEE_Result res;

    (void)cancellationRequestTimeout;
    if (session != &system_session || (paramTypes && !params))
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    switch (commandID) {
    case PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY:
        res = derive_ta_unique_key(paramTypes, params);
        break;
    case PTA_SYSTEM_ADD_RNG_ENTROPY:
        res = paramTypes == TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_NONE,
                                            TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE)
                  ? TEE_SUCCESS
                  : TEE_ERROR_BAD_PARAMETERS;
        break;
    default:
        res = TEE_ERROR_NOT_IMPLEMENTED;
        break;
    }
    if (returnOrigin)
        *returnOrigin = TEE_ORIGIN_TRUSTED_APP;
    return res;
}
