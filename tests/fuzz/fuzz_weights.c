/*
 * fuzz_weights.c - libFuzzer target: darknet .weights files against a fixed network
 * (FUZZ_WEIGHTS_CFG), through darknet/weights.c as darknetp loads them.
 *
 * Input: one selector byte, then the file. The selector picks the layer range of
 * dk_weights_load (low nibble: first, high nibble: last, both modulo the layer count), so
 * partial files and skipped layers are exercised too; every input is also read whole
 * (dk_weights_load_all) and as raw floats after the header (dk_weights_read_floats), the
 * reads a sealed pair's normal-world half goes through.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"
#include "tests/fuzz/fuzz_common.h"

static struct dnn_network *net;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char text[] = FUZZ_WEIGHTS_CFG;
    struct dk_cfg *cfg = NULL;
    struct dk_error err;
    struct dk_model m;

    (void)argc;
    (void)argv;
    memset(&m, 0, sizeof m);
    if (dk_cfg_read_mem("weights.cfg", text, sizeof text - 1, false, &cfg, &err) != 0 ||
        dk_parse_network_cfg(cfg, &m, &err) != 0 ||
        dnn_network_create(&net, &m.net, m.specs, m.n, false, 1) != DNN_OK) {
        fprintf(stderr, "fuzz_weights: the fixed cfg does not build: %s\n", err.msg);
        abort();
    }
    dk_model_free(&m);
    dk_cfg_free(cfg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dk_error err;
    struct dk_weights_header h;

    if (size < 1)
        return 0;
    const size_t first = (data[0] & 15u) % net->n;
    const size_t last = (size_t)(data[0] >> 4) % net->n;
    const char *path = fuzz_write(0, "in.weights", data + 1, size - 1);

    (void)dk_weights_load(net, path, first, last, &err);
    (void)dk_weights_load_all(net, path, &err);
    if (dk_weights_read_header(path, &h, &err) == 0) {
        float buf[16];
        (void)dk_weights_read_floats(path, &h, 0, buf, 16, &err);
        (void)dk_weights_read_floats(path, &h, h.file_size > h.bytes + 8 ? 8 : 0, buf, 2, &err);
    }
    return 0;
}
