/*
 * Pool test TA: the conformance TA's commands (conformance_ta.h) under another UUID, one
 * instance per session, with a heap big enough (POOL_TA_DATA_SIZE) that a committed heap is
 * plain in the instance's resident memory.
 */
#ifndef POOL_TA_H
#define POOL_TA_H

/* clang-format off */
#define TA_POOL_UUID \
    {0x731627aa, 0xd89e, 0x4d32, {0xa6, 0x4a, 0x02, 0xb3, 0x5d, 0x2c, 0x94, 0x08}}
/* clang-format on */

#define POOL_TA_DATA_SIZE (4 * 1024 * 1024)
#define POOL_TA_STACK_SIZE (16 * 1024)

#endif /* POOL_TA_H */
