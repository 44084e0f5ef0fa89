/* Configuration of the keep-alive test TA: one instance, one session at a time, kept alive. */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

#include <keepalive_ta.h>

#define TA_UUID TA_KEEPALIVE_UUID

#define TA_FLAGS (TA_FLAG_SINGLE_INSTANCE | TA_FLAG_INSTANCE_KEEP_ALIVE)

#define TA_STACK_SIZE (16 * 1024)
#define TA_DATA_SIZE (256 * 1024)

#endif /* USER_TA_HEADER_DEFINES_H */
