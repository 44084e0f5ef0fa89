/*
 * dz_ta_memory.h - the secure memory a DarkneTZ TA session needs, one formula for both worlds.
 *
 * DZ_CMD_OPEN_MODEL computes it before it allocates anything (DESIGN.md, invariant 4) and
 * refuses with TEE_ERROR_OUT_OF_MEMORY, the total in value1, when total > TA_DATA_SIZE
 * (DZ_CMD_VERSION gives TA_DATA_SIZE). The normal world may include this header to predict
 * that answer; the TA never trusts the normal world's figure.
 *
 *   engine   dnn_plan_build()'s bytes for the segment alone (cfg.index_base = first, route
 *            and shortcut indexes rebased), with training buffers when header.training;
 *            inputs, outputs, truths and the parameter floats below come from that plan too
 *   specs    n_specs * sizeof(struct dnn_layer_spec): the TA's decoded copy during OPEN_MODEL
 *   input    batch * inputs floats: the TA's copy of the forward input, kept for backward
 *   truth    batch * truths floats when the TA takes a truth (training, and a layer of the
 *            segment computes a cost: softmax or cost)
 *   io       training only: batch * max(inputs if first > 0, outputs if the segment does
 *            not end the network) floats, the delta coming in and the delta going out
 *   work     weight streaming only: header.stream_chunk_bytes, the working buffer one
 *            chunk of parameters is decrypted into (the engine's term then holds no
 *            parameter: cfg.stream_params)
 *   (no term for sealing: DZ_CMD_SAVE_SEALED and DZ_CMD_LOAD_SEALED go through bounce
 *            buffers of a few KiB on the TA's stack, not a copy of the payload; seal.c)
 *   reserve  CFG_DZ_TA_HEAP_RESERVE (default DZ_TA_HEAP_RESERVE_DEFAULT): session state,
 *            crypto operation handles, heap block headers and alignment
 *
 * where inputs is layer first's input per image, outputs layer last's output per image,
 * truths the output per image of the segment's last layer that is not a cost layer, and
 * payload the bytes of every parameter tensor of the segment (struct dnn_param, .weights
 * order), 4 bytes per float.
 */
#ifndef DZ_TA_MEMORY_H
#define DZ_TA_MEMORY_H

#include <stdbool.h>
#include <stddef.h>

#include "darknetz_ta.h"

#define DZ_TA_HEAP_RESERVE_DEFAULT ((size_t)64 * 1024)

/* What the formula depends on; every count is per image unless it says otherwise. */
struct dz_ta_memory_args {
    size_t engine_bytes; /* dnn_plan_build(...).bytes of the segment */
    size_t spec_bytes;   /* n_specs * sizeof(struct dnn_layer_spec) */
    size_t batch;        /* images per forward */
    size_t inputs;       /* layer first's input */
    size_t outputs;      /* layer last's output */
    size_t truths;       /* the segment's truth size */
    size_t param_floats; /* all parameter floats of the segment */
    bool training;
    bool first_layer;          /* first == 0: no delta goes back */
    bool ends_network;         /* last == n_layers - 1: no delta comes in */
    bool takes_truth;          /* training and a layer of the segment computes a cost */
    size_t stream_chunk_bytes; /* 0, or the working buffer of weight streaming */
};

/* The terms, in bytes. */
struct dz_ta_memory {
    size_t engine, specs, input, truth, io, work, reserve;
    size_t payload; /* parameter bytes: the sealed payload and DZ_CMD_LOAD_PLAIN's memref */
    size_t sealed;  /* header + payload + tag: the blob's size, in shared memory only */
    size_t total;
};

/*
 * dz_ta_memory_compute() - Fill *m from *a with the heap reserve given.
 * Return: true, or false when a term overflows size_t (then nothing fits).
 */
static inline bool dz_ta_memory_compute(const struct dz_ta_memory_args *a, size_t reserve,
                                        struct dz_ta_memory *m)
{
    const size_t f = sizeof(float);
    size_t io = 0, per_image = 0;
    bool ok = true;

    *m = (struct dz_ta_memory){.engine = a->engine_bytes,
                               .specs = a->spec_bytes,
                               .work = a->stream_chunk_bytes,
                               .reserve = reserve};
    ok &= !__builtin_mul_overflow(a->batch, a->inputs, &m->input) &&
          !__builtin_mul_overflow(m->input, f, &m->input);
    if (a->takes_truth)
        ok &= !__builtin_mul_overflow(a->batch, a->truths, &m->truth) &&
              !__builtin_mul_overflow(m->truth, f, &m->truth);
    if (a->training) {
        if (!a->first_layer)
            per_image = a->inputs;
        if (!a->ends_network && a->outputs > per_image)
            per_image = a->outputs;
        ok &= !__builtin_mul_overflow(a->batch, per_image, &io) &&
              !__builtin_mul_overflow(io, f, &m->io);
    }
    ok &= !__builtin_mul_overflow(a->param_floats, f, &m->payload) &&
          !__builtin_add_overflow(m->payload, sizeof(struct dz_sealed_header) + DZ_SEALED_TAG_BYTES,
                                  &m->sealed);
    ok &= !__builtin_add_overflow(m->engine, m->specs, &m->total) &&
          !__builtin_add_overflow(m->total, m->input, &m->total) &&
          !__builtin_add_overflow(m->total, m->truth, &m->total) &&
          !__builtin_add_overflow(m->total, m->io, &m->total) &&
          !__builtin_add_overflow(m->total, m->work, &m->total) &&
          !__builtin_add_overflow(m->total, m->reserve, &m->total);
    return ok;
}

#endif /* DZ_TA_MEMORY_H */
