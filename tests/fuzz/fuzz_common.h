/*
 * fuzz_common.h - what the libFuzzer targets of tests/fuzz share: a private scratch folder per
 * fuzzing process (the parsers under test read files by path, so each input is written to a
 * file there first), and the fixed network the .weights target and its seed generator agree on.
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The scratch folder of this process (created on first use, removed at exit). Never NULL:
 * a fuzzer that cannot write its inputs anywhere has nothing to test, so it aborts. */
const char *fuzz_dir(void);

/* fuzz_dir()/name, in a static buffer that lives until the next call with the same slot
 * (0..7), so a target can hold a few paths at once. */
const char *fuzz_path(int slot, const char *name);

/* Replaces the file fuzz_dir()/name with exactly @len bytes of @data; returns its path (slot 7
 * is not used by it). Aborts when the write fails: a short file would test something else. */
const char *fuzz_write(int slot, const char *name, const void *data, size_t len);

/* The network the .weights target loads its inputs into: small enough that every layer kind
 * with parameters (convolutional with and without batch normalisation, connected, batchnorm)
 * stays cheap, so the fuzzer spends its time in the reader, not in memcpy. */
#define FUZZ_WEIGHTS_CFG                                                                           \
    "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=2\n"                                              \
    "[convolutional]\nfilters=3\nsize=3\nstride=1\npad=1\nactivation=leaky\n"                      \
    "[convolutional]\nfilters=2\nsize=1\nstride=1\npad=0\nbatch_normalize=1\nactivation=relu\n"    \
    "[maxpool]\nsize=2\nstride=2\n"                                                                \
    "[batchnorm]\n"                                                                                \
    "[connected]\noutput=4\nactivation=linear\n"                                                   \
    "[connected]\noutput=3\nbatch_normalize=1\nactivation=linear\n"                                \
    "[softmax]\n"

#endif
