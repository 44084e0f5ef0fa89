/*
 * dz-gen-weights - writes deterministic darknet weights for a cfg (tests/helpers/gen_weights.h):
 * `make check-optee` generates AlexNet's at run time rather than keeping hundreds of MB in
 * the tree.
 *
 *   dz-gen-weights CFG OUT SEED GAIN
 *
 * Exit status 0, or 1 with a message on stderr; 2 for a usage error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/helpers/gen_weights.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: dz-gen-weights CFG OUT SEED GAIN\n");
        return 2;
    }
    char *end;
    const unsigned long long seed = strtoull(argv[3], &end, 10);
    if (*argv[3] == '\0' || *end != '\0') {
        fprintf(stderr, "dz-gen-weights: SEED must be a decimal integer: %s\n", argv[3]);
        return 2;
    }
    const float gain = strtof(argv[4], &end);
    if (*argv[4] == '\0' || *end != '\0' || !(gain > 0)) {
        fprintf(stderr, "dz-gen-weights: GAIN must be a positive number: %s\n", argv[4]);
        return 2;
    }
    char msg[512];
    if (gen_weights_save(argv[1], argv[2], (uint64_t)seed, gain, msg, sizeof msg) != 0) {
        fprintf(stderr, "dz-gen-weights: %s\n", msg);
        return 1;
    }
    return 0;
}
