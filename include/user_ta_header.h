/*
 * TA flags of a TA's user_ta_header_defines.h (TA_FLAGS), with OP-TEE's values
 * (optee_os lib/libutee/include/user_ta_header.h).
 */
#ifndef USER_TA_HEADER_H
#define USER_TA_HEADER_H

#include <tee_api_types.h>

#define TA_FLAG_USER_MODE 0 /* deprecated, was (1 << 0) */
#define TA_FLAG_EXEC_DDR 0  /* deprecated, was (1 << 1) */
/* One instance serves every session (else one instance per session). */
#define TA_FLAG_SINGLE_INSTANCE (1 << 2)
/* A single instance accepts more than one session at a time. */
#define TA_FLAG_MULTI_SESSION (1 << 3)
/* A single instance stays alive after its last session closes. */
#define TA_FLAG_INSTANCE_KEEP_ALIVE (1 << 4)
#define TA_FLAG_SECURE_DATA_PATH (1 << 5)
#define TA_FLAG_REMAP_SUPPORT 0 /* deprecated, was (1 << 6) */
#define TA_FLAG_CACHE_MAINTENANCE (1 << 7)
#define TA_FLAG_CONCURRENT (1 << 8)
#define TA_FLAG_DEVICE_ENUM (1 << 9)
#define TA_FLAG_DEVICE_ENUM_SUPP (1 << 10)
#define TA_FLAG_DONT_CLOSE_HANDLE_ON_CORRUPT_OBJECT (1 << 11)
#define TA_FLAG_DEVICE_ENUM_TEE_STORAGE_PRIVATE (1 << 12)
#define TA_FLAG_INSTANCE_KEEP_CRASHED (1 << 13)

#define TA_FLAGS_MASK ((1u << 14) - 1)

/* GlobalPlatform property names of the TA configuration */
#define TA_PROP_STR_SINGLE_INSTANCE "gpd.ta.singleInstance"
#define TA_PROP_STR_MULTI_SESSION "gpd.ta.multiSession"
#define TA_PROP_STR_KEEP_ALIVE "gpd.ta.instanceKeepAlive"
#define TA_PROP_STR_DATA_SIZE "gpd.ta.dataSize"
#define TA_PROP_STR_STACK_SIZE "gpd.ta.stackSize"
#define TA_PROP_STR_VERSION "gpd.ta.version"
#define TA_PROP_STR_DESCRIPTION "gpd.ta.description"

#endif /* USER_TA_HEADER_H */
