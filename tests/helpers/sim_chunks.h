/*
 * sim_chunks.h - the plaintext of a weight-streaming chunk (ta/stream.c) for the tests that
 * compare what a TA trained with the numbers of a run without TEE: the chunk key re-derived
 * from the simulated device key (tee/ta/huk.c documents the derivation), which no TA command
 * reveals.
 */
#ifndef TESTS_HELPERS_SIM_CHUNKS_H
#define TESTS_HELPERS_SIM_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "ta/include/darknetz_ta.h"

/*
 * sim_unseal_chunk - decrypt sealed chunk @blob (@size bytes) with the key of DZ_CHUNK_LABEL
 * derived from the simulated device key in @storage_dir (DZ_TEE_STORAGE). Returns the
 * plaintext (h->plain_bytes bytes, malloc'd; free it) with the header in *h, or NULL when the
 * sizes do not match, the key cannot be read or the tag does not authenticate.
 */
float *sim_unseal_chunk(const char *storage_dir, const uint8_t *blob, size_t size,
                        struct dz_chunk_header *h);

#endif
