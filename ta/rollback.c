/*
 * rollback.c - per model, the newest owner version this device has loaded (DESIGN.md
 * invariant 7), kept in TEE secure storage: object DZ_VERSION_ID_PREFIX || model digest in
 * TEE_STORAGE_PRIVATE, data = the version, uint32 LE.
 *
 * As strong as the storage: on OP-TEE's REE FS the normal world can restore an older copy of
 * the whole secure storage and with it an older record; only RPMB storage (CFG_RPMB_FS=y)
 * resists that (README, "Rollback protection").
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

#define ID_PREFIX_BYTES (sizeof(DZ_VERSION_ID_PREFIX) - 1)
#define ID_BYTES (ID_PREFIX_BYTES + DZ_DIGEST_BYTES)

static void object_id(const uint8_t digest[DZ_DIGEST_BYTES], uint8_t id[ID_BYTES])
{
    memcpy(id, DZ_VERSION_ID_PREFIX, ID_PREFIX_BYTES);
    memcpy(id + ID_PREFIX_BYTES, digest, DZ_DIGEST_BYTES);
}

/* The recorded version, 0 when there is none. A record of another size is corrupt. */
static TEE_Result read_record(const uint8_t digest[DZ_DIGEST_BYTES], uint32_t *version)
{
    TEE_ObjectHandle obj = TEE_HANDLE_NULL;
    uint8_t id[ID_BYTES], data[4];
    size_t count = 0;

    *version = 0;
    object_id(digest, id);
    TEE_Result res = TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, id, sizeof(id),
                                              TEE_DATA_FLAG_ACCESS_READ, &obj);
    if (res == TEE_ERROR_ITEM_NOT_FOUND)
        return TEE_SUCCESS;
    if (res == TEE_SUCCESS)
        res = TEE_ReadObjectData(obj, data, sizeof(data), &count);
    TEE_CloseObject(obj);
    if (res == TEE_SUCCESS && count != sizeof(data))
        res = TEE_ERROR_CORRUPT_OBJECT;
    if (res != TEE_SUCCESS) {
        EMSG("model version record: %#x", (unsigned)res);
        return res;
    }
    *version = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
               (uint32_t)data[3] << 24;
    return TEE_SUCCESS;
}

TEE_Result dz_rollback_check(const uint8_t digest[DZ_DIGEST_BYTES], uint32_t version)
{
    uint32_t newest = 0;

    if (version == 0)
        return TEE_SUCCESS;
    TEE_Result res = read_record(digest, &newest);
    if (res != TEE_SUCCESS)
        return res;
    if (version < newest) {
        EMSG("sealed blob refused: model version %u is older than version %u already loaded "
             "on this device (rollback)",
             (unsigned)version, (unsigned)newest);
        return TEE_ERROR_ACCESS_DENIED;
    }
    return TEE_SUCCESS;
}

TEE_Result dz_rollback_record(const uint8_t digest[DZ_DIGEST_BYTES], uint32_t version)
{
    TEE_ObjectHandle obj = TEE_HANDLE_NULL;
    uint32_t newest = 0;
    uint8_t id[ID_BYTES], data[4];

    if (version == 0)
        return TEE_SUCCESS;
    TEE_Result res = read_record(digest, &newest);
    if (res != TEE_SUCCESS || version <= newest)
        return res;
    object_id(digest, id);
    dz_put_le32(data, version);
    /* Created whole or not at all: OVERWRITE replaces the old record atomically. */
    res = TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, id, sizeof(id),
                                     TEE_DATA_FLAG_ACCESS_WRITE | TEE_DATA_FLAG_OVERWRITE,
                                     TEE_HANDLE_NULL, data, sizeof(data), &obj);
    TEE_CloseObject(obj);
    if (res != TEE_SUCCESS)
        EMSG("model version record: %#x", (unsigned)res);
    else
        IMSG("model version %u recorded", (unsigned)version);
    return res;
}
