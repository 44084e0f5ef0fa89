/*
 * user_ta_header_defines.h - configuration of the DarkneTZ DNN TA, read by OP-TEE's TA dev kit
 * (user_ta_header.c) and by the simulated TEE (tee/ta_header/ta_header.c).
 *
 * Knobs (each has a default here; ta/Makefile sets them with ?= and OP-TEE's TA dev kit passes
 * every CFG_* make variable to the compiler; in the simulated build pass them with
 * EXTRA_CFLAGS=-DCFG_DZ_...=...):
 *   CFG_DZ_TA_STACK_SIZE     stack of each entry point call             default 64 KiB
 *   CFG_DZ_TA_DATA_SIZE      heap (TEE_Malloc and malloc share it)      default 6 MiB
 *   CFG_DZ_TA_HEAP_RESERVE   part of the heap kept for the TA's own     default 64 KiB
 *                            bookkeeping (session state, crypto operation handles, heap
 *                            headers and alignment); see dz_ta_memory.h
 */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

#include "darknetz_ta.h"

#define TA_UUID DZ_TA_UUID

/*
 * No TA_FLAG_SINGLE_INSTANCE: every session gets an instance of its own, so each partition
 * has the whole TA_DATA_SIZE heap to itself and the check DZ_CMD_OPEN_MODEL makes before it
 * allocates is exact (sessions never compete for one heap). Several sessions, one per
 * partition or per host process, can run at the same time.
 */
#define TA_FLAGS 0

#ifndef CFG_DZ_TA_STACK_SIZE
#define CFG_DZ_TA_STACK_SIZE (64 * 1024)
#endif
#ifndef CFG_DZ_TA_DATA_SIZE
#define CFG_DZ_TA_DATA_SIZE (6 * 1024 * 1024)
#endif
#ifndef CFG_DZ_TA_HEAP_RESERVE
#define CFG_DZ_TA_HEAP_RESERVE (64 * 1024)
#endif

#define TA_STACK_SIZE CFG_DZ_TA_STACK_SIZE
#define TA_DATA_SIZE CFG_DZ_TA_DATA_SIZE

#define TA_VERSION "1.0"
#define TA_DESCRIPTION "DarkneTZ: DNN layers inside the TEE"

#endif /* USER_TA_HEADER_DEFINES_H */
