/*
 * Simulated TEE: a TA's configuration, compiled once per TA with the TA's include folders, as
 * OP-TEE's TA dev kit compiles its user_ta_header.c against user_ta_header_defines.h.
 */
#include "tee/ta/tsim_internal.h"

#include <tee_internal_api.h>
#include <user_ta_header.h>
#include <user_ta_header_defines.h>

#ifndef TA_DESCRIPTION
#define TA_DESCRIPTION ""
#endif

_Static_assert((TA_FLAGS & ~TA_FLAGS_MASK) == 0, "TA_FLAGS has unknown bits");
_Static_assert(TA_STACK_SIZE > 0 && TA_DATA_SIZE > 0, "TA_STACK_SIZE and TA_DATA_SIZE needed");

const struct tsim_ta_props tsim_ta_props = {
    .uuid = TA_UUID,
    .flags = TA_FLAGS,
    .stack_size = TA_STACK_SIZE,
    .data_size = TA_DATA_SIZE,
    .description = TA_DESCRIPTION,
};
