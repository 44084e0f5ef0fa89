/* tee_plan.c - `darknetp tee plan` (see tee_plan.h). */
#include "host/tee_plan.h"

#include <stdio.h>

#include "darknet/parse_network.h"
#include "host/args.h"
#include "host/partition.h"
#include "host/tee_session.h"

/* TA_DATA_SIZE from the TA itself. */
static int ask_ta(size_t *size, struct dk_error *err)
{
    struct dz_tee *t = NULL;
    if (dz_tee_connect(&t, err) != 0)
        return -1;
    *size = dz_tee_data_size(t);
    dz_tee_close(t);
    return 0;
}

int dz_tee_plan_main(int argc, char **argv)
{
    struct dk_error err = {{0}};
    struct dk_model m = {0};
    struct dnn_network *shapes = NULL;
    long batch = 0, cap = -1;
    int rc = 1;
    if (dz_arg_int(&argc, argv, "-batch", 1, 1000000, &batch) != 0 ||
        dz_arg_int(&argc, argv, "-ta_data_size", 1, 0x7fffffffL, &cap) != 0)
        return 2;
    bool train = dz_arg_flag(&argc, argv, "-train");
    if (argc != 4 || argv[3][0] == '-') {
        fprintf(stderr, "usage: darknetp tee plan CFG [-batch N] [-train] [-ta_data_size BYTES]\n");
        return 2;
    }
    if (dk_parse_network(argv[3], &m, &err) != 0)
        goto out;
    if (batch == 0)
        batch = train ? m.net.batch : 1;
    size_t capacity = (size_t)cap;
    if (cap < 0 && ask_ta(&capacity, &err) != 0)
        goto out;
    if (dz_shapes_create(&m, (int)batch, 0, &shapes, &err) != 0 ||
        dz_print_plan(stdout, &m, shapes, (int)batch, train, capacity, &err) != 0)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    dz_shapes_free(shapes);
    dk_model_free(&m);
    return rc;
}
