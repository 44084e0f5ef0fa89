/*
 * ta_inproc.h - the simulated TA runtime's in-process mode, for fuzzing the DarkneTZ TA at
 * libFuzzer speed: the TA's sources and the Internal Core API of tee/ta/ (heap, memory access
 * rights, crypto, secure storage, device key, system PTA) are linked into the fuzzer itself,
 * and only the parts of libtsim_ta.a that need a TA process (the socket main loop, the
 * separate TA stack, the crash handlers) are replaced by the few functions of ta_inproc.c.
 */
#ifndef TESTS_FUZZ_TA_INPROC_H
#define TESTS_FUZZ_TA_INPROC_H

#include <stddef.h>
#include <stdint.h>
#include <tee_internal_api.h>

/* Sets up the TA heap (TA_DATA_SIZE of the fuzz build), the memory map used by
 * TEE_CheckMemoryAccessRights, and a fresh secure storage folder (DZ_TEE_STORAGE). The secure
 * console goes nowhere unless FUZZ_TA_TRACE is set. Call once. */
void ta_inproc_init(void);

/* The entry points, called as the runtime calls them: with the call's parameters registered
 * for TEE_CheckMemoryAccessRights for exactly the time of the call. */
TEE_Result ta_inproc_open(void **session);
TEE_Result ta_inproc_invoke(void *session, uint32_t cmd, uint32_t types,
                            TEE_Param params[TEE_NUM_PARAMS]);
void ta_inproc_close(void *session);

/* Bytes of the TA heap in use now (0 once every session is closed, unless the TA leaks). */
size_t ta_inproc_heap_used(void);

#endif
