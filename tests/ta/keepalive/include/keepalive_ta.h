/* Keep-alive test TA: the conformance TA's commands (conformance_ta.h) under another UUID. */
#ifndef KEEPALIVE_TA_H
#define KEEPALIVE_TA_H

/* clang-format off */
#define TA_KEEPALIVE_UUID \
    {0x989725e8, 0xc0ff, 0x41b3, {0xad, 0x40, 0x26, 0xe8, 0xf7, 0x04, 0x04, 0xca}}
/* clang-format on */

#endif /* KEEPALIVE_TA_H */
