/*
 * OP-TEE's implementation-specific constants (optee_os
 * lib/libutee/include/tee_api_defines_extensions.h), the subset the simulator knows.
 */
#ifndef TEE_API_DEFINES_EXTENSIONS_H
#define TEE_API_DEFINES_EXTENSIONS_H

/*
 * HMAC-based Extract-and-Expand Key Derivation Function (HKDF, RFC 5869), OP-TEE's extension:
 * key object TEE_TYPE_HKDF_IKM, derived key TEE_TYPE_GENERIC_SECRET, parameters
 * TEE_ATTR_HKDF_SALT and TEE_ATTR_HKDF_INFO (optional) and TEE_ATTR_HKDF_OKM_LENGTH (bytes).
 */
#define TEE_ALG_HKDF_SHA256_DERIVE_KEY 0x800040C0
#define TEE_TYPE_HKDF_IKM 0xA10000C0
#define TEE_ATTR_HKDF_IKM 0xC00001C0
#define TEE_ATTR_HKDF_OKM_LENGTH 0xF00004C0

/* Storage backed by the REE file system; the simulator treats it as TEE_STORAGE_PRIVATE. */
#define TEE_STORAGE_PRIVATE_REE 0x80000000
/* Storage in an eMMC RPMB partition; not available in the simulator. */
#define TEE_STORAGE_PRIVATE_RPMB 0x80000100

/* TEE_CheckMemoryAccessRights extensions: the range must be mapped non-secure / secure. */
#define TEE_MEMORY_ACCESS_NONSECURE 0x10000000
#define TEE_MEMORY_ACCESS_SECURE 0x20000000

/* Login of REE kernel clients */
#define TEE_LOGIN_REE_KERNEL 0x80000000

/* The error came from the TA's client application */
#define TEE_ORIGIN_CLIENT_APP 0xF0000001

#endif /* TEE_API_DEFINES_EXTENSIONS_H */
