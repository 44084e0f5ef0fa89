/*
 * OP-TEE extensions to the Internal Core API (optee_os
 * lib/libutee/include/tee_internal_api_extensions.h): the constants; no extension function
 * is implemented by the simulator.
 */
#ifndef TEE_INTERNAL_API_EXTENSIONS_H
#define TEE_INTERNAL_API_EXTENSIONS_H

#include <tee_api_defines_extensions.h>
#include <tee_internal_api.h>

#endif /* TEE_INTERNAL_API_EXTENSIONS_H */
