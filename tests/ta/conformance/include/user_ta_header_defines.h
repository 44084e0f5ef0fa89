/* Configuration of the conformance test TA (read by OP-TEE's TA dev kit and the simulator). */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H

#include <conformance_ta.h>

#define TA_UUID TA_CONFORMANCE_UUID

/* One instance shared by all sessions: lets tests see instance-wide state and panics. */
#define TA_FLAGS (TA_FLAG_SINGLE_INSTANCE | TA_FLAG_MULTI_SESSION)

/* Small on purpose: the tests exhaust the heap and overflow the stack. */
#define TA_STACK_SIZE (16 * 1024)
#define TA_DATA_SIZE (256 * 1024)

#define TA_DESCRIPTION "DarkneTZ simulated TEE conformance TA"

#endif /* USER_TA_HEADER_DEFINES_H */
