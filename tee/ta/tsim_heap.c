/*
 * Simulated TEE, TA heap: TEE_Malloc/TEE_Realloc/TEE_Free and the TA's malloc family, over one
 * region of exactly TA_DATA_SIZE bytes, as on OP-TEE where both come from the TA's heap.
 *
 * First fit over an unordered free list, with boundary tags so a freed block merges with free
 * neighbours. Each block has a 16-byte header {size | USED, size of the previous block}; free
 * blocks keep their list links in the payload. The last 16 bytes of the region hold a used
 * sentinel header. All size arithmetic is overflow-checked; a request that does not fit gives
 * NULL. Freeing a pointer the heap did not give out is a TA bug: TEE_Panic.
 *
 * The TA is linked with --wrap for malloc, calloc, realloc, free, memalign, aligned_alloc and
 * posix_memalign, so its calls land here; calls made inside shared libraries keep the process
 * heap. free/realloc of a pointer from the process heap (strdup, for one) are passed on to it.
 * In ASan builds free blocks and headers are poisoned, so TA heap overflows are reported.
 *
 * The region is committed when the instance starts (every page written once), not backed
 * lazily: the core's secure-memory pool counts TA_DATA_SIZE per instance, and that figure
 * must be memory the instance really holds, as OP-TEE's TA heap is (it lives in the TA's
 * .bss, in the fixed secure pool).
 */
#define _GNU_SOURCE
#include "tee/common/tsim_console.h"
#include "tee/ta/tsim_internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* gcc says ASan with __SANITIZE_ADDRESS__; clang 14 (the fuzz build) only through
 * __has_feature: without the second test the fuzz targets' TA heap went unpoisoned. */
#if defined(__SANITIZE_ADDRESS__)
#define TSIM_HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TSIM_HEAP_ASAN 1
#endif
#endif

#ifdef TSIM_HEAP_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define NO_ASAN
#endif

#define ALIGNMENT 16u
#define HDR 16u
#define MIN_BLOCK 32u
#define USED ((size_t)1)

struct block {
    size_t size; /* bytes including the header; bit 0: in use */
    size_t prev_size;
    struct block *next; /* free blocks only */
    struct block *prev;
};

void *__real_malloc(size_t size);
void *__real_realloc(void *ptr, size_t size);
void __real_free(void *ptr);

static unsigned char *heap_lo;  /* first block */
static unsigned char *heap_end; /* the sentinel header */
static struct block *free_list;
static size_t heap_used, heap_peak, heap_capacity;

/* TEE_Malloc(0) gives this: not NULL, not in the heap, never dereferenced. */
static unsigned char zero_size_object;

NO_ASAN static size_t bsize(const struct block *b)
{
    return b->size & ~USED;
}

NO_ASAN static struct block *next_block(struct block *b)
{
    return (struct block *)(void *)((unsigned char *)b + bsize(b));
}

NO_ASAN static void list_remove(struct block *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        free_list = b->next;
    if (b->next)
        b->next->prev = b->prev;
}

NO_ASAN static void list_push(struct block *b)
{
    b->prev = NULL;
    b->next = free_list;
    if (free_list)
        free_list->prev = b;
    free_list = b;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int tsim_commit(void *p, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);

    /* One call that fails with ENOMEM, rather than a fault per page and the OOM killer. */
    if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
        return 0;
    if (errno != EINVAL || page <= 0)
        return -1;
    /* A kernel without MADV_POPULATE_WRITE: write one byte per page instead. */
    volatile unsigned char *c = p;
    for (size_t i = 0; i < len; i += (size_t)page)
        c[i] = 0;
    return 0;
}

size_t tsim_page_round(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t r;

    if (page <= 0 || __builtin_add_overflow(size, (size_t)page - 1, &r))
        return 0;
    return r & ~((size_t)page - 1);
}

int tsim_heap_init(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t map;

    if (size < 2 * MIN_BLOCK || page <= 0)
        return -1;
    map = tsim_page_round(size);
    if (!map)
        return -1;
    /* Guard pages on both sides catch the worst overflows even without ASan. */
    unsigned char *p = mmap(NULL, map + 2 * (size_t)page, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if (mprotect(p + page, map, PROT_READ | PROT_WRITE) != 0 || tsim_commit(p + page, map) != 0)
        return -1;
    heap_lo = p + page;
    heap_capacity = size;
    size_t usable = (size & ~(size_t)(ALIGNMENT - 1)) - HDR;
    heap_end = heap_lo + usable;
    struct block *first = (struct block *)(void *)heap_lo;
    first->size = usable;
    first->prev_size = 0;
    struct block *sentinel = (struct block *)(void *)heap_end;
    sentinel->size = USED;
    sentinel->prev_size = usable;
    list_push(first);
    POISON(heap_lo, usable + HDR);
    return 0;
}

/* Splits used block @b to @need bytes when the rest can be a block; frees the rest. */
NO_ASAN static void split_tail(struct block *b, size_t need)
{
    size_t have = bsize(b);
    if (have - need < MIN_BLOCK)
        return;
    struct block *rest = (struct block *)(void *)((unsigned char *)b + need);
    rest->size = have - need;
    rest->prev_size = need;
    b->size = need | USED;
    struct block *after = next_block(rest);
    after->prev_size = rest->size;
    heap_used -= rest->size;
    /* Merge the rest with a free successor. */
    if (!(after->size & USED)) {
        list_remove(after);
        rest->size += after->size;
        next_block(rest)->prev_size = rest->size;
    }
    list_push(rest);
}

static bool request_size(size_t n, size_t *need)
{
    size_t s;
    if (__builtin_add_overflow(n, (size_t)HDR + ALIGNMENT - 1, &s))
        return false;
    s &= ~(size_t)(ALIGNMENT - 1);
    *need = s < MIN_BLOCK ? MIN_BLOCK : s;
    return true;
}

NO_ASAN static void *heap_alloc(size_t n)
{
    size_t need;

    if (!heap_lo || !request_size(n, &need))
        return NULL;
    for (struct block *b = free_list; b; b = b->next) {
        if (b->size < need)
            continue;
        list_remove(b);
        b->size |= USED;
        heap_used += bsize(b);
        split_tail(b, need);
        if (heap_used > heap_peak)
            heap_peak = heap_used;
        void *p = (unsigned char *)b + HDR;
        UNPOISON(p, n);
        return p;
    }
    return NULL;
}

bool tsim_heap_overlaps(const void *buf, size_t len)
{
    uintptr_t lo = (uintptr_t)heap_lo;
    uintptr_t hi = (uintptr_t)heap_end + HDR;
    uintptr_t a = (uintptr_t)buf;
    return heap_lo && len && a < hi && a + len > lo;
}

static bool in_heap(const void *p)
{
    return heap_lo && (const unsigned char *)p >= heap_lo + HDR &&
           (const unsigned char *)p < heap_end;
}

/* The used block whose payload starts at @p, or NULL when @p is not one. */
NO_ASAN static struct block *block_of(void *p)
{
    if (!in_heap(p) || ((uintptr_t)p & (ALIGNMENT - 1)))
        return NULL;
    struct block *b = (struct block *)(void *)((unsigned char *)p - HDR);
    size_t s = bsize(b);
    if (!(b->size & USED) || s < MIN_BLOCK || (s & (ALIGNMENT - 1)) ||
        s > (size_t)(heap_end - (unsigned char *)b) || next_block(b)->prev_size != s)
        return NULL;
    return b;
}

NO_ASAN static void heap_free_block(struct block *b)
{
    size_t s = bsize(b);
    heap_used -= s;
    POISON((unsigned char *)b + HDR, s - HDR);
    b->size = s;
    struct block *after = next_block(b);
    if (!(after->size & USED)) {
        list_remove(after);
        b->size += after->size;
    }
    if ((unsigned char *)b > heap_lo) {
        struct block *before = (struct block *)(void *)((unsigned char *)b - b->prev_size);
        if (!(before->size & USED)) {
            list_remove(before);
            before->size += b->size;
            b = before;
        }
    }
    next_block(b)->prev_size = b->size;
    list_push(b);
}

static void bad_pointer(const char *fn, const void *p)
{
    tsim_console_printf('E', "TA", "%s: %p was not allocated by the TA heap", fn, p);
    TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
}

NO_ASAN static void *heap_realloc(void *p, size_t n)
{
    struct block *b = block_of(p);
    size_t need;

    if (!b)
        bad_pointer("realloc", p);
    if (!request_size(n, &need))
        return NULL;
    size_t have = bsize(b);
    if (need <= have) {
        /* It fits: shrink, or grow into this block's own slack. */
        split_tail(b, need);
        UNPOISON(p, n);
        POISON((unsigned char *)p + n, bsize(b) - HDR - n);
        return p;
    }
    struct block *after = next_block(b);
    if (!(after->size & USED) && have + after->size >= need) {
        list_remove(after);
        b->size += after->size;
        heap_used += after->size;
        next_block(b)->prev_size = bsize(b);
        split_tail(b, need);
        if (heap_used > heap_peak)
            heap_peak = heap_used;
        UNPOISON(p, n);
        return p;
    }
    void *q = heap_alloc(n);
    if (!q)
        return NULL;
    UNPOISON(p, have - HDR); /* the old request size is not kept: copy the whole payload */
    memcpy(q, p, have - HDR);
    heap_free_block(b);
    return q;
}

/* An allocation of @n bytes at a multiple of @align (a power of two). */
NO_ASAN static void *heap_memalign(size_t align, size_t n)
{
    size_t extra;

    if (align <= ALIGNMENT)
        return heap_alloc(n);
    if (__builtin_add_overflow(n, align + MIN_BLOCK, &extra))
        return NULL;
    unsigned char *p = heap_alloc(extra);
    if (!p)
        return NULL;
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    while (a != (uintptr_t)p && a - (uintptr_t)p < MIN_BLOCK)
        a += align;
    if (a != (uintptr_t)p) {
        /* Give the leading bytes back as a block of their own. */
        struct block *b = (struct block *)(void *)(p - HDR);
        size_t lead = a - (uintptr_t)p;
        struct block *nb = (struct block *)(void *)((unsigned char *)a - HDR);
        nb->size = (bsize(b) - lead) | USED;
        nb->prev_size = lead;
        next_block(nb)->prev_size = bsize(nb);
        b->size = lead | USED;
        heap_free_block(b); /* takes lead off heap_used */
        POISON(nb, HDR);
    }
    return heap_realloc((void *)a, n);
}

/* GlobalPlatform API */

void *TEE_Malloc(size_t size, uint32_t hint)
{
    /* Bits below 0x80000000 other than NO_FILL and NO_SHARE are undefined hints. */
    if (hint & 0x7FFFFFFCu) {
        EMSG("TEE_Malloc: invalid hint %#x", (unsigned)hint);
        return NULL;
    }
    if (size == 0)
        return &zero_size_object;
    void *p = heap_alloc(size);
    if (p && !(hint & TEE_MALLOC_NO_FILL))
        memset(p, 0, size);
    return p;
}

void *TEE_Realloc(void *buffer, size_t newSize)
{
    if (!buffer || buffer == &zero_size_object)
        return TEE_Malloc(newSize, TEE_MALLOC_NO_FILL);
    if (newSize == 0) {
        TEE_Free(buffer);
        return &zero_size_object;
    }
    return heap_realloc(buffer, newSize);
}

void TEE_Free(void *buffer)
{
    if (!buffer || buffer == &zero_size_object)
        return;
    struct block *b = block_of(buffer);
    if (!b)
        bad_pointer("TEE_Free", buffer);
    heap_free_block(b);
}

/* The TA's malloc family (linked with --wrap) */

void *__wrap_malloc(size_t size)
{
    return heap_alloc(size);
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n))
        return NULL;
    void *p = heap_alloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *__wrap_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return heap_alloc(size);
    if (!in_heap(ptr))
        return __real_realloc(ptr, size);
    if (size == 0) {
        TEE_Free(ptr);
        return NULL;
    }
    return heap_realloc(ptr, size);
}

void __wrap_free(void *ptr)
{
    if (ptr && !in_heap(ptr)) {
        __real_free(ptr);
        return;
    }
    TEE_Free(ptr);
}

void *__wrap_memalign(size_t alignment, size_t size)
{
    if (!alignment || (alignment & (alignment - 1)))
        return NULL;
    return heap_memalign(alignment, size);
}

void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
    return __wrap_memalign(alignment, size);
}

int __wrap_posix_memalign(void **memptr, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
        return EINVAL;
    void *p = heap_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *memptr = p;
    return 0;
}

/* Runtime helpers (tsim_ta.h) */

void *tsim_sys_malloc(size_t size)
{
    return __real_malloc(size);
}

void tsim_sys_free(void *ptr)
{
    __real_free(ptr);
}

void tsim_heap_get_stats(struct tsim_heap_stats *stats)
{
    stats->used = heap_used;
    stats->peak = heap_peak;
    stats->capacity = heap_capacity;
}

NO_ASAN bool tsim_heap_owns(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t end;

    if (!in_heap(buf) || __builtin_add_overflow((uintptr_t)p, len, &end))
        return false;
    for (unsigned char *q = heap_lo; q < heap_end;) {
        struct block *b = (struct block *)(void *)q;
        unsigned char *next = q + bsize(b);
        if (p < next)
            return (b->size & USED) && p >= q + HDR && end <= (uintptr_t)next;
        q = next;
    }
    return false;
}
