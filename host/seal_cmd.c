/*
 * seal_cmd.c - `darknetp seal` (provision_cmd.h): the model owner seals layers A..B of a
 * plain darknet model for one device, under a policy, with no TEE on this machine.
 */
#include "host/provision_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/args.h"
#include "host/device_key.h"
#include "host/owner_seal.h"
#include "host/seal_model.h"
#include "ta/include/dz_wire.h"

const char dz_seal_usage[] =
    "darknetp seal -pp_start A -pp_end B [policy options] CFG WEIGHTS DEVICE.pub -o OUT\n"
    "  seals layers A..B of the plain darknet WEIGHTS for the one device whose key\n"
    "  DEVICE.pub holds (`darknetp tee pubkey` there); writes OUT.weights and\n"
    "  OUT.weights.tz, which that device loads with -pp_start A -pp_end B. Needs no TEE.\n"
    "  -version N             the owner's release of this model, >= 1 (default 1); a device\n"
    "                         refuses a release older than one it has loaded\n"
    "  -tee_output top1|topk|rank|scores  the most that may leave the TEE when it ends the\n"
    "                         network (default top1: the best label only)\n"
    "  -t N                   with -tee_output topk: the most labels that may leave (1..64)\n"
    "  -allow_train           allow training on the device (default: inference only)\n"
    "  -batch_min N -batch_max N  training: images per forward (default: the cfg's batch)\n"
    "  -subdivisions_max N    training: forwards per update (default: the cfg's)\n"
    "  -learning_rate_max X -momentum_max X -decay_max X  training: the largest values the\n"
    "                         device may use (default: the cfg's learning_rate, momentum, decay)\n"
    "  -allow_adam            training: allow adam=1 (default: when the cfg sets adam=1)\n";

/* The command line, parsed. */
struct seal_args {
    long first, last, version;
    const char *out, *cfg, *weights, *device_pub;
    struct dz_policy policy;
    long top_k, batch_min, batch_max, subdivisions_max; /* -1: not given */
    float rate_max, momentum_max, decay_max;            /* NAN: not given */
};

static bool flag_present(int argc, char **argv, const char *flag)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return true;
    return false;
}

/* `flag VALUE` as a string; -1 when the flag has no value. */
static int arg_str(int *argc, char **argv, const char *flag, const char **out)
{
    const char *v = dz_arg_str(argc, argv, flag);
    if (v) {
        *out = v;
        return 0;
    }
    if (!flag_present(*argc, argv, flag))
        return 0;
    fprintf(stderr, "darknetp: %s needs a value\n", flag);
    return -1;
}

/* `flag X` as a finite float >= 0 into *out; NAN stays when absent. */
static int arg_bound(int *argc, char **argv, const char *flag, float *out)
{
    const char *v = NULL;
    if (arg_str(argc, argv, flag, &v) != 0)
        return -1;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < 0.0f) {
        fprintf(stderr, "darknetp: %s: expected a finite number >= 0, got '%s'\n", flag, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_output(const char *name, uint32_t *out)
{
    for (uint32_t i = 0; i < DZ_OUTPUT_COUNT; i++) {
        if (strcmp(name, dz_output_name(i)) == 0) {
            *out = i;
            return 0;
        }
    }
    fprintf(stderr, "darknetp: -tee_output: expected top1, topk, rank or scores, got '%s'\n", name);
    return -1;
}

/* Options into *a; the positional arguments are what is left. Returns 0 or 2 (usage). */
static int parse_args(int argc, char **argv, struct seal_args *a)
{
    const char *output = NULL;
    memset(a, 0, sizeof *a);
    a->first = a->last = -1;
    a->version = 1;
    a->top_k = a->batch_min = a->batch_max = a->subdivisions_max = -1;
    a->rate_max = a->momentum_max = a->decay_max = NAN;
    if (dz_arg_int(&argc, argv, "-pp_start", 0, 1000000, &a->first) != 0 ||
        dz_arg_int(&argc, argv, "-pp_end", 0, 1000000, &a->last) != 0 ||
        dz_arg_int(&argc, argv, "-version", 1, 0x7fffffffL, &a->version) != 0 ||
        dz_arg_int(&argc, argv, "-t", 1, DZ_MAX_LABELS, &a->top_k) != 0 ||
        dz_arg_int(&argc, argv, "-batch_min", 1, DZ_MAX_BATCH, &a->batch_min) != 0 ||
        dz_arg_int(&argc, argv, "-batch_max", 1, DZ_MAX_BATCH, &a->batch_max) != 0 ||
        dz_arg_int(&argc, argv, "-subdivisions_max", 1, DZ_MAX_DIM, &a->subdivisions_max) != 0 ||
        arg_bound(&argc, argv, "-learning_rate_max", &a->rate_max) != 0 ||
        arg_bound(&argc, argv, "-momentum_max", &a->momentum_max) != 0 ||
        arg_bound(&argc, argv, "-decay_max", &a->decay_max) != 0 ||
        arg_str(&argc, argv, "-o", &a->out) != 0 ||
        arg_str(&argc, argv, "-tee_output", &output) != 0)
        return 2;
    a->policy.modes = DZ_MODE_INFER;
    if (dz_arg_flag(&argc, argv, "-allow_train"))
        a->policy.modes |= DZ_MODE_TRAIN;
    if (dz_arg_flag(&argc, argv, "-allow_adam"))
        a->policy.modes |= DZ_MODE_ADAM;
    if (output && parse_output(output, &a->policy.output) != 0)
        return 2;
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "darknetp: seal: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (argc != 5 || a->first < 0 || a->last < 0 || !a->out) {
        fprintf(stderr,
                "darknetp: seal needs -pp_start, -pp_end, -o OUT and CFG WEIGHTS "
                "DEVICE.pub\nusage: %s",
                dz_seal_usage);
        return 2;
    }
    if (a->first > a->last) {
        fprintf(stderr, "darknetp: seal: -pp_start %ld is after -pp_end %ld\n", a->first, a->last);
        return 2;
    }
    a->cfg = argv[2];
    a->weights = argv[3];
    a->device_pub = argv[4];
    return 0;
}

/* The output and training parts of the policy that need no cfg. Returns 0 or 2 (usage). */
static int check_policy_args(const struct seal_args *a)
{
    const bool topk = a->policy.output == DZ_OUTPUT_TOPK;
    if (topk && a->top_k < 0) {
        fprintf(stderr, "darknetp: seal: -tee_output topk needs -t N, the most labels that may "
                        "leave the TEE\n");
        return 2;
    }
    if (!topk && a->top_k >= 0) {
        fprintf(stderr, "darknetp: seal: -t N bounds -tee_output topk only\n");
        return 2;
    }
    const bool bounds = a->batch_min >= 0 || a->batch_max >= 0 || a->subdivisions_max >= 0 ||
                        !isnan(a->rate_max) || !isnan(a->momentum_max) || !isnan(a->decay_max) ||
                        (a->policy.modes & DZ_MODE_ADAM);
    if (bounds && !(a->policy.modes & DZ_MODE_TRAIN)) {
        fprintf(
            stderr,
            "darknetp: seal: -batch_min, -batch_max, -subdivisions_max, "
            "-learning_rate_max, -momentum_max, -decay_max and -allow_adam bound training: give "
            "-allow_train too\n");
        return 2;
    }
    return 0;
}

/* The whole policy: training bounds from the options, else from the cfg's [net]. */
static int finish_policy(struct seal_args *a, const struct dnn_net_config *net,
                         struct dk_error *err)
{
    struct dz_policy *p = &a->policy;
    char why[DZ_WIRE_MSG_MAX];
    p->top_k_max = a->top_k > 0 ? (uint32_t)a->top_k : 1;
    if (p->modes & DZ_MODE_TRAIN) {
        p->batch_min = (uint32_t)(a->batch_min > 0 ? a->batch_min : net->batch);
        p->batch_max = (uint32_t)(a->batch_max > 0 ? a->batch_max : net->batch);
        p->subdivisions_max =
            (uint32_t)(a->subdivisions_max > 0 ? a->subdivisions_max : net->subdivisions);
        p->learning_rate_max = isnan(a->rate_max) ? net->learning_rate : a->rate_max;
        p->momentum_max = isnan(a->momentum_max) ? net->momentum : a->momentum_max;
        p->decay_max = isnan(a->decay_max) ? net->decay : a->decay_max;
        if (net->adam)
            p->modes |= DZ_MODE_ADAM;
    } else {
        p->batch_min = p->batch_max = 1;
        p->subdivisions_max = 1;
    }
    if (dz_policy_check(p, why))
        return dk_fail(err, "%s (from the seal options and %s)", why, a->cfg);
    return 0;
}

/* Refuses an output that is one of the inputs (sealing over the plain weights loses them). */
static int check_not_input(const char *out, const struct seal_args *a, struct dk_error *err)
{
    const char *inputs[] = {a->cfg, a->weights, a->device_pub};
    struct stat so, si;
    if (stat(out, &so) != 0)
        return 0;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        if (stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return dk_fail(err, "-o: %s is the input %s; choose another name", out, inputs[i]);
    }
    return 0;
}

static void describe_policy(const struct dz_policy *p, char *buf, size_t size)
{
    int n = snprintf(buf, size, "output %s", dz_output_name(p->output));
    if (n >= 0 && (size_t)n < size && p->output == DZ_OUTPUT_TOPK)
        n += snprintf(buf + n, size - (size_t)n, " (at most %u labels)", (unsigned)p->top_k_max);
    if (n < 0 || (size_t)n >= size)
        return;
    if (!(p->modes & DZ_MODE_TRAIN))
        snprintf(buf + n, size - (size_t)n, ", inference only");
    else
        snprintf(buf + n, size - (size_t)n,
                 ", training allowed at batch %u..%u, subdivisions <= %u, learning_rate <= %g, "
                 "momentum <= %g, decay <= %g%s",
                 (unsigned)p->batch_min, (unsigned)p->batch_max, (unsigned)p->subdivisions_max,
                 (double)p->learning_rate_max, (double)p->momentum_max, (double)p->decay_max,
                 (p->modes & DZ_MODE_ADAM) ? ", adam allowed" : "");
}

static void report(const struct seal_args *a, const struct dz_seal_model *sm,
                   const struct dz_owner_seal *os, const char *path)
{
    uint8_t fp[DZ_FINGERPRINT_BYTES];
    char fp_hex[DZ_HEX32_CHARS] = "?", digest_hex[DZ_HEX32_CHARS], policy[256];
    struct dk_error ignored;
    if (dz_key_fingerprint(os->device_pub, fp, &ignored) == 0)
        dz_hex(fp, sizeof fp, fp_hex);
    dz_hex(sm->digest, sizeof sm->digest, digest_hex);
    describe_policy(&os->policy, policy, sizeof policy);
    fprintf(stderr,
            "sealed layers %d..%d of %s (%zu floats) for the device SHA256:%s\n"
            "  model SHA256:%s, version %u, seen %llu\n"
            "  policy: %s\n"
            "  wrote %s and %s.tz\n",
            sm->first, sm->last, a->cfg, sm->segment_floats, fp_hex, digest_hex,
            (unsigned)os->model_version, (unsigned long long)os->seen, policy, path, path);
}

/* Reads, seals and writes. Returns 0 or -1 with a message in err. */
static int seal(struct seal_args *a, const char *path, struct dk_error *err)
{
    struct dz_seal_model sm;
    struct dz_owner_seal os;
    uint8_t *blob = NULL;
    size_t size = 0;
    memset(&os, 0, sizeof os);
    if (check_not_input(path, a, err) != 0 || dz_pubkey_read(a->device_pub, os.device_pub, err))
        return -1;
    int rc = dz_seal_model_open(&sm, a->cfg, a->weights, (int)a->first, (int)a->last, err);
    if (rc == 0)
        rc = finish_policy(a, &sm.model.net, err);
    if (rc == 0) {
        memcpy(os.model_digest, sm.digest, sizeof os.model_digest);
        os.first = (uint32_t)sm.first;
        os.last = (uint32_t)sm.last;
        os.n_layers = (uint32_t)sm.shapes->n;
        os.seen = sm.wh.seen;
        os.model_version = (uint32_t)a->version;
        os.policy = a->policy;
        rc = dz_owner_seal(&os, sm.segment, sm.segment_floats, &blob, &size, err);
    }
    if (rc == 0)
        rc = dz_seal_model_write(&sm, path, blob, size, err);
    if (rc == 0)
        report(a, &sm, &os, path);
    free(blob);
    dz_seal_model_close(&sm);
    return rc;
}

int dz_seal_main(int argc, char **argv)
{
    struct seal_args a;
    struct dk_error err = {{0}};
    static const char ext[] = ".weights";
    int rc = parse_args(argc, argv, &a);
    if (rc == 0)
        rc = check_policy_args(&a);
    if (rc != 0)
        return rc;
    /* OUT names the pair: OUT.weights and OUT.weights.tz (OUT.weights itself is fine). */
    const size_t len = strlen(a.out);
    const bool has_ext = len >= sizeof ext - 1 && strcmp(a.out + len - (sizeof ext - 1), ext) == 0;
    char *path = malloc(len + sizeof ext);
    if (!path) {
        fprintf(stderr, "darknetp: out of memory\n");
        return 1;
    }
    snprintf(path, len + sizeof ext, "%s%s", a.out, has_ext ? "" : ext);
    rc = seal(&a, path, &err);
    free(path);
    if (rc != 0) {
        fprintf(stderr, "darknetp: seal: %s\n", err.msg);
        return 1;
    }
    return 0;
}
