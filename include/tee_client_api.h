/*
 * GlobalPlatform TEE Client API v1.0 (with errata 2.0), as OP-TEE's libteec exposes it.
 *
 * A program written for OP-TEE (optee_client's <tee_client_api.h>) compiles unchanged against
 * this header and links either OP-TEE's libteec or the project's simulated one
 * (build/libteec_sim.a, tee/client/). Public names, constants and public struct fields are the
 * specification's; fields marked "implementation defined" belong to the simulator.
 */
#ifndef TEE_CLIENT_API_H
#define TEE_CLIENT_API_H

#ifdef __cplusplus
extern "C" {
#endif

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Number of parameters in an open-session or invoke-command operation. */
#define TEEC_CONFIG_PAYLOAD_REF_COUNT 4

/* Largest shared memory block; this implementation sets no limit of its own. */
#define TEEC_CONFIG_SHAREDMEM_MAX_SIZE ULONG_MAX

/* Parameter types (TEEC_Operation.paramTypes nibbles). */
#define TEEC_NONE 0x00000000
#define TEEC_VALUE_INPUT 0x00000001
#define TEEC_VALUE_OUTPUT 0x00000002
#define TEEC_VALUE_INOUT 0x00000003
#define TEEC_MEMREF_TEMP_INPUT 0x00000005
#define TEEC_MEMREF_TEMP_OUTPUT 0x00000006
#define TEEC_MEMREF_TEMP_INOUT 0x00000007
#define TEEC_MEMREF_WHOLE 0x0000000C
#define TEEC_MEMREF_PARTIAL_INPUT 0x0000000D
#define TEEC_MEMREF_PARTIAL_OUTPUT 0x0000000E
#define TEEC_MEMREF_PARTIAL_INOUT 0x0000000F

/* Shared memory direction flags (TEEC_SharedMemory.flags). */
#define TEEC_MEM_INPUT 0x00000001
#define TEEC_MEM_OUTPUT 0x00000002

/* Return codes (TEEC_Result). */
#define TEEC_SUCCESS 0x00000000
#define TEEC_ERROR_STORAGE_NOT_AVAILABLE 0xF0100003
#define TEEC_ERROR_GENERIC 0xFFFF0000
#define TEEC_ERROR_ACCESS_DENIED 0xFFFF0001
#define TEEC_ERROR_CANCEL 0xFFFF0002
#define TEEC_ERROR_ACCESS_CONFLICT 0xFFFF0003
#define TEEC_ERROR_EXCESS_DATA 0xFFFF0004
#define TEEC_ERROR_BAD_FORMAT 0xFFFF0005
#define TEEC_ERROR_BAD_PARAMETERS 0xFFFF0006
#define TEEC_ERROR_BAD_STATE 0xFFFF0007
#define TEEC_ERROR_ITEM_NOT_FOUND 0xFFFF0008
#define TEEC_ERROR_NOT_IMPLEMENTED 0xFFFF0009
#define TEEC_ERROR_NOT_SUPPORTED 0xFFFF000A
#define TEEC_ERROR_NO_DATA 0xFFFF000B
#define TEEC_ERROR_OUT_OF_MEMORY 0xFFFF000C
#define TEEC_ERROR_BUSY 0xFFFF000D
#define TEEC_ERROR_COMMUNICATION 0xFFFF000E
#define TEEC_ERROR_SECURITY 0xFFFF000F
#define TEEC_ERROR_SHORT_BUFFER 0xFFFF0010
#define TEEC_ERROR_EXTERNAL_CANCEL 0xFFFF0011
#define TEEC_ERROR_TARGET_DEAD 0xFFFF3024
#define TEEC_ERROR_STORAGE_NO_SPACE 0xFFFF3041

/* Internal Core API codes a client may see; same spelling as tee_api_defines.h. */
#define TEE_ERROR_EXTERNAL_CANCEL 0xFFFF0011
#define TEE_ERROR_OVERFLOW 0xFFFF300F
#define TEE_ERROR_TARGET_DEAD 0xFFFF3024
#define TEE_ERROR_STORAGE_NO_SPACE 0xFFFF3041
#define TEE_ERROR_MAC_INVALID 0xFFFF3071
#define TEE_ERROR_SIGNATURE_INVALID 0xFFFF3072
#define TEE_ERROR_TIME_NOT_SET 0xFFFF5000
#define TEE_ERROR_TIME_NEEDS_RESET 0xFFFF5001

/* Where an error came from (returnOrigin). */
#define TEEC_ORIGIN_API 0x00000001
#define TEEC_ORIGIN_COMMS 0x00000002
#define TEEC_ORIGIN_TEE 0x00000003
#define TEEC_ORIGIN_TRUSTED_APP 0x00000004

/* Login methods (TEEC_OpenSession connectionMethod). */
#define TEEC_LOGIN_PUBLIC 0x00000000
#define TEEC_LOGIN_USER 0x00000001
#define TEEC_LOGIN_GROUP 0x00000002
#define TEEC_LOGIN_APPLICATION 0x00000004
#define TEEC_LOGIN_USER_APPLICATION 0x00000005
#define TEEC_LOGIN_GROUP_APPLICATION 0x00000006

/* Encodes four parameter types into one paramTypes word. */
#define TEEC_PARAM_TYPES(p0, p1, p2, p3) ((p0) | ((p1) << 4) | ((p2) << 8) | ((p3) << 12))

/* Parameter type i (0..3) of a paramTypes word. */
#define TEEC_PARAM_TYPE_GET(p, i) (((p) >> ((i)*4)) & 0xF)

typedef uint32_t TEEC_Result;

/* Simulator state behind the implementation-defined fields below. */
struct tsim_context;
struct tsim_session;

/* A connection between a client application and the TEE. */
typedef struct {
    /* Implementation defined */
    int fd;                   /* socket to the secure-world core process, -1 when closed */
    struct tsim_context *imp; /* simulator state, NULL when not initialized */
} TEEC_Context;

/* RFC 4122 UUID identifying a Trusted Application. */
typedef struct {
    uint32_t timeLow;
    uint16_t timeMid;
    uint16_t timeHiAndVersion;
    uint8_t clockSeqAndNode[8];
} TEEC_UUID;

/*
 * A block of memory shared with the TEE: registered (the caller's buffer, copied to and from
 * the TA around each call) or allocated (memory mapped into both worlds, no copy).
 */
typedef struct {
    void *buffer;   /* the client's view of the block */
    size_t size;    /* bytes */
    uint32_t flags; /* TEEC_MEM_INPUT and/or TEEC_MEM_OUTPUT */
    /* Implementation defined */
    int id;                   /* unique in the process while registered, -1 when released */
    size_t alloced_size;      /* bytes mapped (allocated) or registered */
    int registered_fd;        /* memfd of an allocated block, -1 otherwise */
    struct tsim_context *imp; /* owning context's state, NULL when released */
    uint32_t imp_flags;       /* simulator flags */
} TEEC_SharedMemory;

/* A temporary memory reference, valid for one operation. */
typedef struct {
    void *buffer; /* may be NULL only with size 0 */
    size_t size;  /* bytes; updated for output with the size the TA wrote or needs */
} TEEC_TempMemoryReference;

/* A reference to all (TEEC_MEMREF_WHOLE) or part of a registered or allocated block. */
typedef struct {
    TEEC_SharedMemory *parent; /* must not be NULL */
    size_t size;               /* bytes; updated for output */
    size_t offset;             /* from the start of parent, partial references only */
} TEEC_RegisteredMemoryReference;

/* Two 32-bit values passed by value. */
typedef struct {
    uint32_t a;
    uint32_t b;
} TEEC_Value;

/* One operation parameter; paramTypes says which member is valid. */
typedef union {
    TEEC_TempMemoryReference tmpref;
    TEEC_RegisteredMemoryReference memref;
    TEEC_Value value;
} TEEC_Parameter;

/* A connection between a client application and a Trusted Application. */
typedef struct {
    /* Implementation defined */
    TEEC_Context *ctx;
    uint32_t session_id;
    struct tsim_session *imp;
} TEEC_Session;

/* The parameters of an open-session or invoke-command call. */
typedef struct {
    uint32_t started;    /* set to 0 by the client if it may cancel; the API sets it to 1 */
    uint32_t paramTypes; /* TEEC_PARAM_TYPES(...); 0 means all TEEC_NONE */
    TEEC_Parameter params[TEEC_CONFIG_PAYLOAD_REF_COUNT];
    /* Implementation defined */
    TEEC_Session *session; /* the session of the last call made with this operation */
} TEEC_Operation;

/**
 * TEEC_InitializeContext() - Connect to a TEE.
 * @name:    NULL (the default TEE) is the only TEE this implementation knows.
 * @context: the context to initialize.
 *
 * Return: TEEC_SUCCESS, TEEC_ERROR_BAD_PARAMETERS, TEEC_ERROR_ITEM_NOT_FOUND (unknown TEE
 * name), or TEEC_ERROR_COMMUNICATION when the secure world cannot be started.
 */
TEEC_Result TEEC_InitializeContext(const char *name, TEEC_Context *context);

/**
 * TEEC_FinalizeContext() - Close a context; its sessions and shared memory must be gone.
 * @context: the context; NULL is ignored.
 */
void TEEC_FinalizeContext(TEEC_Context *context);

/**
 * TEEC_OpenSession() - Open a session with a Trusted Application.
 * @context:          an initialized context.
 * @session:          the session to initialize.
 * @destination:      UUID of the TA.
 * @connectionMethod: TEEC_LOGIN_*.
 * @connectionData:   login data (a gid_t for the group methods), else NULL.
 * @operation:        parameters for the TA's open-session entry point, or NULL.
 * @returnOrigin:     where an error came from (TEEC_ORIGIN_*), or NULL.
 */
TEEC_Result TEEC_OpenSession(TEEC_Context *context, TEEC_Session *session,
                             const TEEC_UUID *destination, uint32_t connectionMethod,
                             const void *connectionData, TEEC_Operation *operation,
                             uint32_t *returnOrigin);

/**
 * TEEC_CloseSession() - Close a session; NULL is ignored.
 */
void TEEC_CloseSession(TEEC_Session *session);

/**
 * TEEC_InvokeCommand() - Invoke a command of a Trusted Application.
 * @session:      an open session.
 * @commandID:    the TA's command identifier.
 * @operation:    the parameters, or NULL.
 * @returnOrigin: where an error came from (TEEC_ORIGIN_*), or NULL.
 */
TEEC_Result TEEC_InvokeCommand(TEEC_Session *session, uint32_t commandID, TEEC_Operation *operation,
                               uint32_t *returnOrigin);

/**
 * TEEC_RegisterSharedMemory() - Register the caller's buffer (sharedMem->buffer, size, flags)
 * as a shared block of the context.
 */
TEEC_Result TEEC_RegisterSharedMemory(TEEC_Context *context, TEEC_SharedMemory *sharedMem);

/**
 * TEEC_AllocateSharedMemory() - Allocate sharedMem->size bytes of memory shared with the TEE;
 * sets sharedMem->buffer.
 */
TEEC_Result TEEC_AllocateSharedMemory(TEEC_Context *context, TEEC_SharedMemory *sharedMem);

/**
 * TEEC_ReleaseSharedMemory() - Unregister or free a shared block; NULL is ignored.
 */
void TEEC_ReleaseSharedMemory(TEEC_SharedMemory *sharedMemory);

/**
 * TEEC_RequestCancellation() - Ask the TA to cancel a pending call made with @operation.
 */
void TEEC_RequestCancellation(TEEC_Operation *operation);

#ifdef __cplusplus
}
#endif

#endif /* TEE_CLIENT_API_H */
