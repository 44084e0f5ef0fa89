/*
 * Simulated TEE, TA side: what the runtime (libtsim_ta.a, the simulated libutee) offers the rest
 * of the Internal Core API implementation, and what it needs from it. Not for TAs: a TA uses
 * only the GlobalPlatform headers.
 *
 * Memory model, for code in libtsim_ta.a:
 * - Every TA executable is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 *   --wrap=free (and the aligned variants), so malloc/calloc/realloc/free called from TA code
 *   AND from objects in libtsim_ta.a come from the TA heap, capped at TA_DATA_SIZE, as
 *   TEE_Malloc does (OP-TEE's libutee also allocates operation and object handles from the TA
 *   heap). Calls made inside shared libraries (libc internals, libcrypto) use the system heap
 *   and are not counted. Use tsim_sys_malloc/tsim_sys_free for bookkeeping that must not count.
 * - Entry points, and so every Internal Core API call, run on the TA stack of TA_STACK_SIZE
 *   (plus TSIM_STACK_SLACK for the heavier glibc/OpenSSL code paths) with a guard page below:
 *   keep large buffers off the stack.
 */
#ifndef TSIM_TA_H
#define TSIM_TA_H

#include <stdbool.h>
#include <stddef.h>
#include <tee_internal_api.h>

/* The running TA's UUID, from its user_ta_header_defines.h (TA_UUID). Never NULL. */
const TEE_UUID *tsim_ta_uuid(void);

/*
 * tsim_storage_dir() - Root folder of the simulated secure storage.
 *
 * $DZ_TEE_STORAGE if set, else $HOME/.local/share/darknetp/tee (else
 * /tmp/darknetp-tee-<uid> without HOME). The folder and missing parents are created, the last
 * one with mode 0700. Return: the path (static storage), or NULL if it cannot be created.
 */
const char *tsim_storage_dir(void);

/*
 * tsim_pta_system_derive_key() - PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY of the system pseudo-TA.
 * Implemented by the crypto/storage part (tee/ta/huk*.c); called by the runtime's
 * TEE_InvokeTACommand after it checked the parameter types, extra_len <= 1024 and
 * 16 <= key_len <= 32, and that key is TA-private memory.
 * @ta:        UUID of the calling TA (tsim_ta_uuid()).
 * @extra:     extra data mixed into the key, may be NULL when extra_len is 0.
 * @key:       output, key_len bytes.
 * Return: TEE_SUCCESS or an error the TA sees (origin TEE).
 */
TEE_Result tsim_pta_system_derive_key(const TEE_UUID *ta, const void *extra, size_t extra_len,
                                      void *key, size_t key_len);

/* Allocation from the process heap, not counted against TA_DATA_SIZE; NULL-safe free. */
void *tsim_sys_malloc(size_t size);
void tsim_sys_free(void *ptr);

/* TA heap usage in bytes: in use now, the most ever in use, and the capacity (TA_DATA_SIZE). */
struct tsim_heap_stats {
    size_t used;
    size_t peak;
    size_t capacity;
};
void tsim_heap_get_stats(struct tsim_heap_stats *stats);

/* True if [buf, buf + len) lies in the TA heap, inside one allocated block. */
bool tsim_heap_owns(const void *buf, size_t len);

#endif /* TSIM_TA_H */
