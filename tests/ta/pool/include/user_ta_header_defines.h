/* Configuration of the pool test TA: a new instance for every session, 4 MiB of heap. */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

#include <pool_ta.h>

#define TA_UUID TA_POOL_UUID

#define TA_FLAGS 0

#define TA_STACK_SIZE POOL_TA_STACK_SIZE
#define TA_DATA_SIZE POOL_TA_DATA_SIZE

#endif /* USER_TA_HEADER_DEFINES_H */
