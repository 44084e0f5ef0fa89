/* Simulated TEE, TA runtime internals shared by the files of libtsim_ta.a. */
#ifndef TSIM_INTERNAL_H
#define TSIM_INTERNAL_H

#include "tee/common/tsim_proto.h" /* TSIM_STACK_SLACK, TSIM_STACK_FACTOR */
#include "tee/ta/tsim_ta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tee_internal_api.h>

/* Exit status of an instance after TEE_Panic (the core does not log it again). */
#define TSIM_EXIT_PANIC 101

/* Inaccessible bytes below the TA stack, so a large frame also lands in the guard. */
#define TSIM_STACK_GUARD (64u * 1024u)

/* The TA's configuration, from its user_ta_header_defines.h (tee/ta_header/ta_header.c). */
struct tsim_ta_props {
    TEE_UUID uuid;
    uint32_t flags;
    uint32_t stack_size;
    uint32_t data_size;
    const char *description;
};
extern const struct tsim_ta_props tsim_ta_props;

/* Runs the instance: the main loop (tsim_runtime.c). */
int tsim_ta_main(void);

/* TA heap (tsim_heap.c): one region of exactly @size bytes, committed. Return: 0 or -1. */
int tsim_heap_init(size_t size);

/*
 * tsim_commit() - Back @len bytes of a writable private mapping at @p with memory now, as the
 * secure pool's figure says the instance holds them. Return: 0, or -1 (no memory).
 */
int tsim_commit(void *p, size_t len);

/* @size rounded up to whole pages; 0 when it overflows. */
size_t tsim_page_round(size_t size);
bool tsim_heap_overlaps(const void *buf, size_t len);

/* TA stack and crash handling (tsim_stack.c). */
int tsim_stack_init(size_t size);
void tsim_stack_call(void (*fn)(void *), void *arg);
bool tsim_stack_owns(const void *buf, size_t len);
void tsim_crash_handlers_init(void);

/* Shared mappings the crash handler names when a TA touches them between calls. */
void tsim_shared_region_add(const void *base, size_t size);
void tsim_shared_region_remove(const void *base);

/* The current call's parameters, for TEE_CheckMemoryAccessRights (tsim_mem.c). */
void tsim_params_set(uint32_t types, const TEE_Param *params);
void tsim_params_clear(void);
void tsim_mem_init(void);

/* The current session's cancellation state (tsim_time.c). */
void tsim_cancel_bind(const volatile uint32_t *flag, bool *masked);

/* Writes "prefix<uuid>" style text safely in a signal handler. */
void tsim_uuid_string(const TEE_UUID *u, char out[37]);

#endif /* TSIM_INTERNAL_H */
