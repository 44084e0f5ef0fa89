/* partial_cmd.c - `darknetp partial` (see partial_cmd.h). */
#include "host/partial_cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "host/partition.h"
#include "host/pnet.h"

static const char usage_line[] = "usage: darknetp partial CFG WEIGHTS OUT N\n";

/* N as darknet's atoi would take it, but whole and not negative. */
static int parse_count(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* Builds layers 0..count-1 alone (batch 1, no training buffers) and loads them. */
static int load_prefix(const struct dk_model *m, const struct dnn_network *shapes, const char *path,
                       const struct dk_weights_header *h, size_t count, struct dnn_network **net,
                       struct dk_error *err)
{
    struct dnn_net_config cfg;
    struct dnn_layer_spec *specs = NULL;
    if (dz_segment_config(m, shapes, 0, count - 1, 1, 1, &cfg, &specs, err) != 0)
        return -1;
    enum dnn_status st = dnn_network_create(net, &cfg, specs, count, false, 1);
    free(specs);
    if (st != DNN_OK)
        return dk_fail(err, "layers 0..%zu: %s", count - 1, dnn_status_str(st));
    return dk_weights_load_first(*net, path, h, 0, count, err);
}

int dz_partial_main(int argc, char **argv)
{
    struct dk_error err = {{0}};
    struct dk_model m = {0};
    struct dnn_network *shapes = NULL;
    struct dnn_network *net = NULL;
    struct dk_weights_header h;
    size_t held = 0;
    long n = 0;
    int first = 0, last = 0;
    int rc = 1;

    if (argc != 6 || parse_count(argv[5], &n) != 0) {
        fputs(usage_line, stderr);
        return 2;
    }
    const char *cfg = argv[2], *weights = argv[3], *out = argv[4];
    if (dk_parse_network(cfg, &m, &err) != 0)
        goto out;
    if (m.notes)
        fputs(m.notes, stderr);
    if (dz_shapes_create(&m, 1, 0, &shapes, &err) != 0 ||
        dk_weights_read_header(weights, &h, &err) != 0)
        goto out;
    if (dz_sealed_range(h.revision, &first, &last)) {
        dk_fail(&err, "%s: layers %d..%d are sealed in %s.tz (zeros in this file): refused",
                weights, first, last, weights);
        goto out;
    }
    if (dk_weights_check_prefix(shapes, weights, &h, &held, &err) != 0)
        goto out;
    /* darknet saves min(N, layers) layers */
    const size_t count = (unsigned long)n < shapes->n ? (size_t)n : shapes->n;
    if (count > held) {
        dk_fail(&err,
                "%s holds the weights of %zu layers, fewer than the %zu asked for (darknet "
                "would save newly drawn values for the rest)",
                weights, held, count);
        goto out;
    }
    if (count > 0 && load_prefix(&m, shapes, weights, &h, count, &net, &err) != 0)
        goto out;
    /* Both darknet trees clear the image count: a partial file starts a new training. */
    struct dk_weights_part part = {.net = net};
    if (dk_weights_save_parts(out, 0, 0, &part, net ? 1 : 0, &err) != 0)
        goto out;
    if (count)
        fprintf(stderr, "Saved the weights of layers 0..%zu of %s to %s\n", count - 1, cfg, out);
    else
        fprintf(stderr, "Saved a header without layers to %s\n", out);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    dnn_network_free(net);
    dz_shapes_free(shapes);
    dk_model_free(&m);
    return rc;
}
