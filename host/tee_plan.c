/* tee_plan.c - `darknetp tee plan` (see tee_plan.h). */
#include "host/tee_plan.h"

#include <stdio.h>

#include "darknet/parse_network.h"
#include "host/args.h"
#include "host/partition.h"
/* TA_DATA_SIZE of the TA built from this tree (CFG_DZ_TA_DATA_SIZE, its default or the value
 * this build was given): the plan needs no session, so it works before the TA is installed
 * or when its heap does not fit the device's secure memory. */
#include "ta/include/user_ta_header_defines.h"

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
    if (m.notes)
        fputs(m.notes, stderr);
    if (batch == 0)
        batch = train ? m.net.batch : 1;
    const size_t capacity = cap < 0 ? (size_t)TA_DATA_SIZE : (size_t)cap;
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
