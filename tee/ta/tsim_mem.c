/*
 * Simulated TEE, memory services: TEE_MemMove/MemCompare/MemFill, instance data, and
 * TEE_CheckMemoryAccessRights.
 *
 * Access rights follow OP-TEE: a range must lie inside one region the TA can reach.
 * - a memref of the current call: shared with the normal world, so allowed only with
 *   TEE_MEMORY_ACCESS_ANY_OWNER (and not with TEE_MEMORY_ACCESS_SECURE); an input memref is not
 *   writable;
 * - the TA heap: only inside one allocated block;
 * - the TA stack, and the TA executable's own loaded segments (read-only ones and RELRO are
 *   not writable): TA-private memory.
 * Anything else (libraries, the runtime's own stack, shared memory not passed in this call) is
 * TEE_ERROR_ACCESS_DENIED.
 */
#define _GNU_SOURCE
#include "tee/ta/tsim_internal.h"

#include <link.h>
#include <stdint.h>
#include <string.h>
#include <tee_api_defines_extensions.h>

#define MAX_SEGMENTS 16

struct segment {
    uintptr_t lo, hi;
    bool writable;
};

static struct segment segments[MAX_SEGMENTS];
static int n_segments;
static uintptr_t relro_lo, relro_hi;

static uint32_t cur_types;
static TEE_Param cur_params[TEE_NUM_PARAMS];
static bool in_call;

static const void *instance_data;

static int collect_main(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && n_segments < MAX_SEGMENTS) {
            segments[n_segments].lo = lo;
            segments[n_segments].hi = lo + ph->p_memsz;
            segments[n_segments].writable = (ph->p_flags & PF_W) != 0;
            n_segments++;
        } else if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = lo;
            relro_hi = lo + ph->p_memsz;
        }
    }
    return 1; /* the first object is the TA executable itself */
}

void tsim_mem_init(void)
{
    dl_iterate_phdr(collect_main, NULL);
}

void tsim_params_set(uint32_t types, const TEE_Param *params)
{
    cur_types = types;
    memcpy(cur_params, params, sizeof(cur_params));
    in_call = true;
}

void tsim_params_clear(void)
{
    cur_types = 0;
    memset(cur_params, 0, sizeof(cur_params));
    in_call = false;
}

void *TEE_MemMove(void *dest, const void *src, size_t size)
{
    return memmove(dest, src, size);
}

int32_t TEE_MemCompare(const void *buffer1, const void *buffer2, size_t size)
{
    const unsigned char *a = buffer1;
    const unsigned char *b = buffer2;
    int32_t first = 0;

    /* Every byte is read, whatever the contents: the time depends on size only. */
    for (size_t i = 0; i < size; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        int32_t undecided = -(int32_t)(first == 0);
        first |= d & undecided;
    }
    return first;
}

void TEE_MemFill(void *buff, uint32_t x, size_t size)
{
    memset(buff, (int)(uint8_t)x, size);
}

void TEE_SetInstanceData(const void *instanceData)
{
    instance_data = instanceData;
}

const void *TEE_GetInstanceData(void)
{
    return instance_data;
}

static bool within(uintptr_t a, uintptr_t end, uintptr_t lo, uintptr_t hi)
{
    return a >= lo && end <= hi;
}

static bool overlaps(uintptr_t a, uintptr_t end, uintptr_t lo, uintptr_t hi)
{
    return a < hi && end > lo;
}

TEE_Result TEE_CheckMemoryAccessRights(uint32_t accessFlags, void *buffer, size_t size)
{
    const uint32_t known = TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_WRITE |
                           TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_SECURE |
                           TEE_MEMORY_ACCESS_NONSECURE;
    uintptr_t a = (uintptr_t)buffer;
    uintptr_t end;
    bool write = accessFlags & TEE_MEMORY_ACCESS_WRITE;

    if (!size)
        return TEE_SUCCESS;
    if ((accessFlags & ~known) || __builtin_add_overflow(a, size, &end))
        return TEE_ERROR_ACCESS_DENIED;

    /* Memrefs of the current call: normal-world memory. */
    for (int i = 0; in_call && i < TEE_NUM_PARAMS; i++) {
        uint32_t t = TEE_PARAM_TYPE_GET(cur_types, i);
        if (t < TEE_PARAM_TYPE_MEMREF_INPUT || t > TEE_PARAM_TYPE_MEMREF_INOUT)
            continue;
        uintptr_t lo = (uintptr_t)cur_params[i].memref.buffer;
        uintptr_t hi = lo + cur_params[i].memref.size;
        if (!lo || !overlaps(a, end, lo, hi))
            continue;
        if (!within(a, end, lo, hi) || !(accessFlags & TEE_MEMORY_ACCESS_ANY_OWNER) ||
            (accessFlags & TEE_MEMORY_ACCESS_SECURE))
            return TEE_ERROR_ACCESS_DENIED;
        if (write && t == TEE_PARAM_TYPE_MEMREF_INPUT)
            return TEE_ERROR_ACCESS_DENIED;
        return TEE_SUCCESS;
    }

    /* Everything below is secure memory private to the TA. */
    if (accessFlags & TEE_MEMORY_ACCESS_NONSECURE)
        return TEE_ERROR_ACCESS_DENIED;
    if (tsim_heap_overlaps(buffer, size))
        return tsim_heap_owns(buffer, size) ? TEE_SUCCESS : TEE_ERROR_ACCESS_DENIED;
    if (tsim_stack_owns(buffer, size))
        return TEE_SUCCESS;
    for (int i = 0; i < n_segments; i++) {
        if (!within(a, end, segments[i].lo, segments[i].hi))
            continue;
        if (write && (!segments[i].writable || overlaps(a, end, relro_lo, relro_hi)))
            return TEE_ERROR_ACCESS_DENIED;
        return TEE_SUCCESS;
    }
    return TEE_ERROR_ACCESS_DENIED;
}
