/*
 * fuzz_cfg.c - libFuzzer target: a network .cfg, as darknetp reads one, turned into a network.
 *
 * The input is the cfg text (dk_cfg_read_mem: the same line splitter dk_cfg_read uses after
 * reading the file), parsed by dk_parse_network_cfg. A cfg that parses is planned by the
 * engine (dnn_network_plan) and, when small, built with training buffers and run forward and
 * backward once: shapes the parser accepts must be shapes the engine can run. Big networks
 * are only planned: a hostile cfg asking for gigabytes is the plan's to refuse, and building
 * it would measure the machine, not the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"

/* Networks up to this size (arena bytes, training) are built and run. */
#define RUN_BYTES (512u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const struct dk_model *m)
{
    size_t bytes = 0;
    if (dnn_network_plan(&m->net, m->specs, m->n, true, &bytes) != DNN_OK || bytes > RUN_BYTES)
        return;
    struct dnn_network *net = NULL;
    if (dnn_network_create(&net, &m->net, m->specs, m->n, true, 1) != DNN_OK)
        return;
    const size_t in = net->inputs * (size_t)m->net.batch;
    const size_t truth = net->truths * (size_t)m->net.batch;
    /* The input and truth live outside the arena: a [crop] can make a small network of a
     * huge input (height=122222222 with a 10x10 crop planned 11.7 GB here). */
    if (in > RUN_BYTES / sizeof(float) || truth > RUN_BYTES / sizeof(float)) {
        dnn_network_free(net);
        return;
    }
    float *x = calloc(in ? in : 1, sizeof *x);
    float *y = calloc(truth ? truth : 1, sizeof *y);
    if (x && y) {
        /* Some signal, so that activations and the loss are not all zeros. */
        for (size_t i = 0; i < in; i++)
            x[i] = (float)(i % 7) / 7.0f;
        if (truth)
            y[0] = 1.0f;
        dnn_network_forward_range(net, 0, net->n - 1, x, y, true);
        dnn_network_backward_range(net, 0, net->n - 1, x, NULL);
    }
    free(x);
    free(y);
    dnn_network_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dk_cfg *cfg = NULL;
    struct dk_error err;
    struct dk_model m;

    memset(&m, 0, sizeof m);
    if (dk_cfg_read_mem("fuzz.cfg", (const char *)data, size, false, &cfg, &err) != 0)
        return 0;
    if (dk_parse_network_cfg(cfg, &m, &err) == 0)
        run(&m);
    dk_model_free(&m);
    dk_cfg_free(cfg);
    return 0;
}
