/*
 * tee_fakes.h - stand-ins for the simulated TA runtime (tee/ta/tsim_ta.h,
 * TEE_Malloc, TEE_Panic, the trace console) so that the crypto, storage and
 * device-key code of tee/ta/ can be unit tested inside a test program, without
 * a TA process. Linked only into tests/test_tee_crypto and test_tee_storage.
 */
#ifndef TESTS_TEE_FAKES_H
#define TESTS_TEE_FAKES_H

#include <stdbool.h>
#include <stddef.h>

#include <tee_internal_api.h>

/* Exit status of a process that called TEE_Panic. */
#define TSIM_FAKE_PANIC_STATUS 86

/* The UUID tsim_ta_uuid() returns (the "running TA"). */
void tsim_fake_set_uuid(const TEE_UUID *uuid);
/* The folder tsim_storage_dir() returns; NULL makes it fail. */
void tsim_fake_set_storage_dir(const char *dir);

/* Marks [buf, buf + len) as memory shared with the normal world: the fake
 * TEE_CheckMemoryAccessRights then denies it without TEE_MEMORY_ACCESS_ANY_OWNER.
 * len 0 clears the mark. Everything else counts as TA-private. */
void tsim_fake_set_shared(const void *buf, size_t len);

/* TEE_Malloc blocks not yet freed. */
size_t tsim_fake_heap_live(void);
/* TEE_Free calls that found a block not wiped to zero. */
size_t tsim_fake_heap_unwiped_frees(void);
/* TEE_Malloc fails past this many bytes in use (0: no limit), as the TA heap cap. */
void tsim_fake_heap_set_limit(size_t bytes);
/* tsim_sys_malloc blocks not yet freed. */
size_t tsim_fake_sys_live(void);
/* Lines EMSG and friends printed; printed to stderr only if TSIM_FAKE_TRACE is set. */
size_t tsim_fake_trace_lines(void);

/* Runs fn(arg) in a child process; true if it ended in TEE_Panic. A panic ends
 * a TA instance, so a child stands in for it and the test goes on. */
bool tsim_fake_panics(void (*fn)(void *arg), void *arg);

/* Removes a folder tree (nftw); for test teardown. */
void tsim_fake_rmtree(const char *dir);

#endif
