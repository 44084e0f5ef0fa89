/*
 * arena_poison.h - the gaps of the engine's one arena made unaddressable in AddressSanitizer
 * builds, so that a layer reading or writing past one of its buffers is reported even though
 * the bytes after it belong to the same allocation (the next buffer, usually).
 *
 * Without it the sanitizer builds (test-asan, the fuzz targets, the TA in them) are blind to
 * overflows inside the arena, which are exactly the ones a hostile layer description would
 * cause: into another layer's buffer, where protected values live. Each buffer that is not a
 * shared activation slot is padded to DNN_ALIGN bytes; the padding is what gets poisoned, so
 * the layout, and every byte count the plan reports, stays the same. Elsewhere (the TA built
 * with OP-TEE's dev kit, plain builds) both macros do nothing.
 */
#ifndef DNN_ARENA_POISON_H
#define DNN_ARENA_POISON_H

#if defined(__SANITIZE_ADDRESS__)
#define DNN_ARENA_POISON 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DNN_ARENA_POISON 1
#endif
#endif

#ifdef DNN_ARENA_POISON
#include <sanitizer/asan_interface.h>
/* [p, p + n) may not be touched until dnn_arena_unpoison (before the arena is freed: its
 * allocator may hand the bytes out again). */
#define dnn_arena_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define dnn_arena_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define dnn_arena_poison(p, n) ((void)(p), (void)(n))
#define dnn_arena_unpoison(p, n) ((void)(p), (void)(n))
#endif

#endif /* DNN_ARENA_POISON_H */
