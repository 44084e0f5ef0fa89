/*
 * GlobalPlatform TEE Internal Core API v1.3.1 types, laid out as OP-TEE's
 * lib/libutee/include/tee_api_types.h (size_t sizes; no 1.1 compatibility types).
 */
#ifndef TEE_API_TYPES_H
#define TEE_API_TYPES_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tee_api_defines.h>

typedef uint32_t TEE_Result;

/* RFC 4122 UUID */
typedef struct {
    uint32_t timeLow;
    uint16_t timeMid;
    uint16_t timeHiAndVersion;
    uint8_t clockSeqAndNode[8];
} TEE_UUID;

/* Identity of a client: login is a TEE_LOGIN_* constant, uuid the client's or nil. */
typedef struct {
    uint32_t login;
    TEE_UUID uuid;
} TEE_Identity;

/*
 * One parameter of TA_OpenSessionEntryPoint, TA_InvokeCommandEntryPoint, TEE_OpenTASession and
 * TEE_InvokeTACommand; the parameter type says whether memref or value is valid.
 */
typedef union {
    struct {
        void *buffer;
        size_t size;
    } memref;
    struct {
        uint32_t a;
        uint32_t b;
    } value;
} TEE_Param;

/* Opaque handles */
typedef struct __TEE_TASessionHandle *TEE_TASessionHandle;
typedef struct __TEE_PropSetHandle *TEE_PropSetHandle;
typedef struct __TEE_ObjectHandle *TEE_ObjectHandle;
typedef struct __TEE_ObjectEnumHandle *TEE_ObjectEnumHandle;
typedef struct __TEE_OperationHandle *TEE_OperationHandle;

/* Storage */
typedef uint32_t TEE_ObjectType;

typedef struct {
    uint32_t objectType;
    uint32_t objectSize;
    uint32_t maxObjectSize;
    uint32_t objectUsage;
    size_t dataSize;
    size_t dataPosition;
    uint32_t handleFlags;
} TEE_ObjectInfo;

typedef uint32_t TEE_Whence;

typedef struct {
    uint32_t attributeID;
    union {
        struct {
            void *buffer;
            size_t length;
        } ref;
        struct {
            uint32_t a, b;
        } value;
    } content;
} TEE_Attribute;

/* Cryptographic operations */
typedef uint32_t TEE_OperationMode;

typedef struct {
    uint32_t algorithm;
    uint32_t operationClass;
    uint32_t mode;
    uint32_t digestLength;
    uint32_t maxKeySize;
    uint32_t keySize;
    uint32_t requiredKeyUsage;
    uint32_t handleState;
} TEE_OperationInfo;

typedef struct {
    uint32_t keySize;
    uint32_t requiredKeyUsage;
} TEE_OperationInfoKey;

typedef struct {
    uint32_t algorithm;
    uint32_t operationClass;
    uint32_t mode;
    uint32_t digestLength;
    uint32_t maxKeySize;
    uint32_t handleState;
    uint32_t operationState;
    uint32_t numberOfKeys;
    TEE_OperationInfoKey keyInformation[];
} TEE_OperationInfoMultiple;

/* Time */
typedef struct {
    uint32_t seconds;
    uint32_t millis;
} TEE_Time;

/* Arithmetical API element types */
typedef uint32_t TEE_BigInt;
typedef uint32_t TEE_BigIntFMM;
typedef uint32_t TEE_BigIntFMMContext;

/* Other definitions */
typedef uint32_t TEE_ErrorOrigin;
typedef void *TEE_Session;

#define TEE_MEM_INPUT 0x00000001
#define TEE_MEM_OUTPUT 0x00000002

#define TEE_MEMREF_0_USED 0x00000001
#define TEE_MEMREF_1_USED 0x00000002
#define TEE_MEMREF_2_USED 0x00000004
#define TEE_MEMREF_3_USED 0x00000008

#endif /* TEE_API_TYPES_H */
