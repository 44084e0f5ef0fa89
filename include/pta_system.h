/*
 * Interface of OP-TEE's system pseudo-TA (optee_os lib/libutee/include/pta_system.h): the part
 * the simulator provides. A TA reaches it with TEE_OpenTASession(PTA_SYSTEM_UUID) and
 * TEE_InvokeTACommand.
 */
#ifndef __PTA_SYSTEM_H
#define __PTA_SYSTEM_H

/* clang-format off */
#define PTA_SYSTEM_UUID \
    {0x3a2f8978, 0x5dc0, 0x11e8, {0x9c, 0x2d, 0xfa, 0x7a, 0xe0, 0x1b, 0xbe, 0xbc}}
/* clang-format on */

/* Derived keys are 128 to 256 bits. */
#define TA_DERIVED_KEY_MIN_SIZE 16
#define TA_DERIVED_KEY_MAX_SIZE 32

#define TA_DERIVED_EXTRA_DATA_MAX_SIZE 1024

/*
 * Add caller-provided entropy to the RNG pool (accepted and ignored by the simulator).
 *
 * [in]  memref[0]: entropy input data
 */
#define PTA_SYSTEM_ADD_RNG_ENTROPY 0

/*
 * Derive a device- and TA-unique key. Extra data, if any, is mixed with the device-unique
 * key and the caller's UUID; without it the key depends on those two only.
 *
 * [in]  params[0].memref.buffer     Buffer for extra data
 * [in]  params[0].memref.size       Size of extra data (max 1024 bytes)
 * [out] params[1].memref.buffer     Buffer for the derived key (TA-private memory)
 * [out] params[1].memref.size       Size of the derived key (16 to 32 bytes)
 */
#define PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY 1

#endif /* __PTA_SYSTEM_H */
