#include "tests/helpers/gen_weights.h"

#include <stdbool.h>
#include <stdio.h>

#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "dnn/dnn.h"

int gen_weights_save(const char *cfg, const char *out, uint64_t seed, float gain, char *msg,
                     size_t msg_size)
{
    struct dk_model m;
    struct dk_error err;
    struct dnn_network *net = NULL;
    int rc = -1;

    if (dk_parse_network(cfg, &m, &err) != 0) {
        snprintf(msg, msg_size, "%s", err.msg);
        return -1;
    }
    struct dnn_net_config nc = m.net;
    /* Inference buffers only: AlexNet's training buffers would triple its 244 MB. */
    const enum dnn_status st = dnn_network_create(&net, &nc, m.specs, m.n, false, seed);
    if (st != DNN_OK) {
        snprintf(msg, msg_size, "%s: the engine cannot build this network (status %d)", cfg,
                 (int)st);
        goto out;
    }
    for (size_t i = net->n; i-- > 0;) {
        struct dnn_layer *l = &net->layers[i];
        if (l->nweights == 0 || !l->weights)
            continue;
        for (size_t k = 0; k < l->nweights; k++)
            l->weights[k] *= gain;
        break;
    }
    if (dk_weights_save(net, out, &err) != 0) {
        snprintf(msg, msg_size, "%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}
