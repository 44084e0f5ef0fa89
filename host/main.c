/*
 * main.c - the darknetp command line, darknet's shape:
 *   darknetp classifier train   [-pp_start A -pp_end B] DATA CFG [WEIGHTS]
 *   darknetp classifier valid   [-pp_start A -pp_end B] DATA CFG WEIGHTS
 *   darknetp classifier predict [-pp_start A -pp_end B] DATA CFG WEIGHTS [IMAGE|LIST.txt|SET]
 *   darknetp classifier mia     [-pp_start A -pp_end B] DATA CFG WEIGHTS [mia options]
 *   (and -threads N, -lower_mb MB, -col_cache_mb MB on each classifier command: the normal
 *   world's threads and convolution scratch)
 *   darknetp tee plan CFG [-batch N] [-train] [-ta_data_size BYTES] [-tee_chunk BYTES]
 *   darknetp tee pubkey > device.pub
 *   darknetp seal -pp_start A -pp_end B [policy options] CFG WEIGHTS DEVICE.pub -o OUT
 *   darknetp partial CFG WEIGHTS OUT N
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/args.h"
#include "host/classifier.h"
#include "host/partial_cmd.h"
#include "host/provision_cmd.h"
#include "host/tee_plan.h"
#include "host/thread_pool.h"
#include "ta/include/dz_wire.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: darknetp classifier train   [options] DATA CFG [WEIGHTS]\n"
            "       darknetp classifier valid   [options] DATA CFG WEIGHTS\n"
            "       darknetp classifier predict [options] DATA CFG WEIGHTS [IMAGE|LIST.txt|SET]\n"
            "       darknetp classifier mia     [options] DATA CFG WEIGHTS [-n N] [-queries K]\n"
            "                [-csv FILE] [-plot FILE.svg] [-max_auc X]\n"
            "       darknetp tee plan CFG [-batch N] [-train] [-ta_data_size BYTES]\n"
            "                [-tee_chunk BYTES]\n"
            "       darknetp tee pubkey > device.pub\n"
            "       darknetp seal -pp_start A -pp_end B [policy options] CFG WEIGHTS "
            "DEVICE.pub -o OUT\n"
            "       darknetp partial CFG WEIGHTS OUT N\n"
            "options:\n"
            "  -pp_start A -pp_end B  run layers A..B (0-based, inclusive) in the TEE\n"
            "  -pp_start_f A          as -pp_start A, and train: layers 0..A-1 are frozen\n"
            "  -tee_output top1|topk|rank|scores  what leaves the TEE when it ends the\n"
            "                         network: the best label (default), the top N labels,\n"
            "                         the order of all labels, or the scores; a sealed model\n"
            "                         allows at most its owner's choice, and a training\n"
            "                         run's saves allow what it ran under\n"
            "  -tee_stream            predict/valid/train: stream the segment's weights through\n"
            "                         the TA, sealed, chunk by chunk (chosen by itself when\n"
            "                         the segment does not fit TA_DATA_SIZE resident)\n"
            "  -tee_chunk BYTES       cap on the streaming working buffer (default 256 KiB:\n"
            "                         each chunk crosses in memrefs, which OP-TEE maps with\n"
            "                         its few page tables left by the TA's heap)\n"
            "  -t N                   print the top N labels (default and 0: the data file's\n"
            "                         top)\n"
            "  -batch N               predict (a list or set), valid: images per forward\n"
            "                         (default 32 and 100, or the most the TEE segment fits)\n"
            "  -gpus L, -i N          darknet's GPU choice: accepted and ignored (CPU only)\n"
            "  -clear                 restart the image count of the loaded weights\n"
            "  -seal_infer_only       train: sealed saves allow inference only (default: the\n"
            "                         policy the run trains under, training included)\n"
            "  -allow_unlabelled      train: go on when image paths match no label or several\n"
            "                         (darknet's rule: the one label a path holds is its class)\n"
            "  -seed N                random seed for weights, data order and dropout (1)\n"
            "  -threads N             normal-world threads (default: the online cores); any\n"
            "                         N gives bit for bit the same results\n"
            "  -lower_mb MB           MiB of scratch for convolutions lowering several\n"
            "                         images per product (default 32; 0: one at a time)\n"
            "  -col_cache_mb MB       train, mia -grad: MiB for the im2col columns training\n"
            "                         convolutions keep for their backward pass (default 32;\n"
            "                         0: none, lowered again); both normal world only, shared\n"
            "                         by its layers before and after the TEE, same results\n"
            "  -save_every N          train: <cfg>_E.weights every N epochs (1; 0: only the\n"
            "                         final weights and the Ctrl-C backup)\n"
            "  -log FILE.csv          train: iteration, epoch, loss, avg loss, rate, images/s,\n"
            "                         accuracy (the loss only where it may leave the TEE)\n"
            "  -valid_every N         train: top-1 accuracy on the data file's valid set every\n"
            "                         N epochs (stderr and -log)\n"
            "  -plot FILE.svg         train: the loss and accuracy curves; mia: ROC curves\n"
            "  -out FILE.csv          predict, valid: one CSV row per image (predict: also\n"
            "                         when IMAGE is a .txt list of paths, an IDX image file or\n"
            "                         a data file (its valid set), to stdout without -out;\n"
            "                         predict -out FILE.jsonl: one JSON object per line)\n"
            "mia: membership inference on what leaves the TEE (members: the data file's\n"
            "  train or mia_members; non-members: valid or mia_nonmembers)\n"
            "  -n N                   members and non-members each (default: up to 1000)\n"
            "  -queries K             K noisy copies per image (label-only attack)\n"
            "  -query_shift P         and shifted by up to P pixels each way (0)\n"
            "  -grad                  also probe a training session's deltas at layer A\n"
            "  -csv FILE              one row per image\n"
            "  -max_auc X             exit 3 when an attack's AUC is above X\n"
            "tee pubkey: prints this device's provisioning key (X25519) and its fingerprint\n"
            "partial: OUT gets the weights of layers 0..N-1 of WEIGHTS, as darknet's partial\n"
            "         (seen 0), to fine-tune from; train loads such a file and draws the\n"
            "         other layers from -seed\n"
            "seal: the model owner's side, on a machine without TEE:\n%s",
            dz_seal_usage);
}

/* The mia options; -1 on a bad value, after a message. */
static int mia_args(int *argc, char **argv, struct dz_classifier_args *a, bool *given)
{
    long n = 0, queries = 0, shift = 0;
    if (dz_arg_int(argc, argv, "-n", 2, 100000000, &n) != 0 ||
        dz_arg_int(argc, argv, "-queries", 0, 10000, &queries) != 0 ||
        dz_arg_int(argc, argv, "-query_shift", 0, 8, &shift) != 0)
        return -1;
    a->mia_shift = (int)shift;
    a->mia_grad = dz_arg_flag(argc, argv, "-grad");
    a->mia_n = (int)n;
    a->mia_queries = (int)queries;
    a->csv = dz_arg_str(argc, argv, "-csv");
    a->max_auc = -1;
    const char *max_auc = dz_arg_str(argc, argv, "-max_auc");
    if (max_auc) {
        char *end = NULL;
        a->max_auc = strtod(max_auc, &end);
        if (end == max_auc || *end || !(a->max_auc >= 0 && a->max_auc <= 1)) {
            fprintf(stderr, "darknetp: -max_auc: expected a number in [0, 1], got '%s'\n", max_auc);
            return -1;
        }
    }
    *given = n || queries || shift || a->mia_grad || a->csv || max_auc;
    return 0;
}

static int run_verb(const struct dz_classifier_args *a0, const char *verb, int argc, char **argv);

/* The most -lower_mb and -col_cache_mb take: 64 GiB, more than any machine darknetp trains on
 * would lend; a bigger number is a typo (an extra digit, or bytes for MiB). */
#define SCRATCH_MAX_MIB 65536UL

/* Every option the classifier commands take, to name the intended one of a typo. */
static const char *const classifier_options[] = {
    "-pp_start",
    "-pp_end",
    "-pp_start_f",
    "-tee_output",
    "-t",
    "-clear",
    "-seed",
    "-log",
    "-out",
    "-save_every",
    "-n",
    "-queries",
    "-grad",
    "-csv",
    "-plot",
    "-max_auc",
    "-query_shift",
    "-gpus",
    "-i",
    "-seal_infer_only",
    "-allow_unlabelled",
    "-threads",
    "-lower_mb",
    "-col_cache_mb",
    "-tee_stream",
    "-tee_chunk",
    "-valid_every",
    "-batch",
};

static const char *const classifier_verbs[] = {"train", "valid", "predict", "mia"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* An option left after the known ones were taken: refused, with the likely intended one. */
static int unknown_options(int argc, char **argv)
{
    for (int i = 3; i < argc; i++) {
        if (argv[i][0] != '-' || argv[i][1] == '\0')
            continue;
        const char *near = dz_arg_suggest(argv[i], classifier_options, N_OF(classifier_options));
        if (near)
            fprintf(stderr, "darknetp: unknown option '%s' (did you mean %s?)\n", argv[i], near);
        else
            fprintf(stderr, "darknetp: unknown option '%s'\n", argv[i]);
        return -1;
    }
    return 0;
}

static int unknown_verb(const char *verb)
{
    for (size_t i = 0; i < N_OF(classifier_verbs); i++) {
        if (strcmp(verb, classifier_verbs[i]) == 0)
            return 0;
    }
    const char *near = dz_arg_suggest(verb, classifier_verbs, N_OF(classifier_verbs));
    fprintf(stderr,
            "darknetp: unknown classifier command '%s'%s%s%s; expected train, valid, "
            "predict or mia\n",
            verb, near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
    return -1;
}

static int run_classifier(int argc, char **argv)
{
    struct dz_classifier_args a = {
        .pp_start = -1, .pp_end = -1, .seed = 1, .scratch = dz_scratch_default()};
    bool mia_given = false;
    if (mia_args(&argc, argv, &a, &mia_given) != 0)
        return 2;
    const int lower_given =
        dz_arg_mib(&argc, argv, "-lower_mb", SCRATCH_MAX_MIB, &a.scratch.lower_bytes);
    const int col_cache_given =
        dz_arg_mib(&argc, argv, "-col_cache_mb", SCRATCH_MAX_MIB, &a.scratch.col_cache_bytes);
    if (lower_given < 0 || col_cache_given < 0)
        return 2;
    long top = 0, pp_start = -1, pp_start_f = -1, pp_end = -1, seed = 1, threads = 0, gpu = -1,
         tee_chunk = 0, batch = 0;
    /* darknet's -t 0 (its default) means the data file's top, as no -t does here. */
    if (dz_arg_int(&argc, argv, "-t", 0, 1000000, &top) != 0 ||
        dz_arg_int(&argc, argv, "-threads", 1, 1024, &threads) != 0 ||
        dz_arg_int(&argc, argv, "-pp_start", 0, 1000000, &pp_start) != 0 ||
        dz_arg_int(&argc, argv, "-pp_start_f", 0, 1000000, &pp_start_f) != 0 ||
        dz_arg_int(&argc, argv, "-pp_end", 0, 1000000, &pp_end) != 0 ||
        dz_arg_int(&argc, argv, "-seed", 0, 0x7fffffffL, &seed) != 0 ||
        dz_arg_int(&argc, argv, "-tee_chunk", 4, 0x7fffffffL, &tee_chunk) != 0 ||
        dz_arg_int(&argc, argv, "-batch", 1, (int)DZ_MAX_BATCH, &batch) != 0)
        return 2;
    /* darknet's GPU choices: this engine runs on the CPU (and in the TEE); a script written
     * for darknet runs unchanged, with a note. */
    const char *gpus = dz_arg_str(&argc, argv, "-gpus");
    if (dz_arg_int(&argc, argv, "-i", 0, 1000000, &gpu) != 0)
        return 2;
    if (gpus || gpu >= 0)
        fprintf(stderr, "darknetp: note: %s ignored: darknetp runs on the CPU\n",
                gpus ? "-gpus" : "-i");
    a.clear = dz_arg_flag(&argc, argv, "-clear");
    a.seal_infer_only = dz_arg_flag(&argc, argv, "-seal_infer_only");
    a.tee_stream = dz_arg_flag(&argc, argv, "-tee_stream");
    a.tee_chunk = (size_t)tee_chunk;
    a.batch = (int)batch;
    a.allow_unlabelled = dz_arg_flag(&argc, argv, "-allow_unlabelled");
    a.top = (int)top;
    a.seed = (uint64_t)seed;
    /* DarkneTZ's -pp_start_f A: -pp_start A, and every layer before A frozen */
    if (pp_start_f >= 0) {
        if (pp_start >= 0) {
            fprintf(stderr, "darknetp: give -pp_start or -pp_start_f, not both\n");
            return 2;
        }
        pp_start = pp_start_f;
        a.freeze_front = true;
    }
    a.out = dz_arg_str(&argc, argv, "-out");
    a.log = dz_arg_str(&argc, argv, "-log");
    long save_every = -1;
    if (dz_arg_int(&argc, argv, "-save_every", 0, 1000000, &save_every) != 0)
        return 2;
    a.save_every = save_every < 0 ? 1 : (int)save_every;
    long valid_every = 0;
    if (dz_arg_int(&argc, argv, "-valid_every", 1, 1000000, &valid_every) != 0)
        return 2;
    a.valid_every = (int)valid_every;
    a.plot = dz_arg_str(&argc, argv, "-plot");
    const char *policy = dz_arg_str(&argc, argv, "-tee_output");
    if (!policy || strcmp(policy, "top1") == 0) {
        a.tee_output = DZ_OUTPUT_TOP1;
    } else if (strcmp(policy, "topk") == 0) {
        a.tee_output = DZ_OUTPUT_TOPK;
    } else if (strcmp(policy, "rank") == 0) {
        a.tee_output = DZ_OUTPUT_RANK;
    } else if (strcmp(policy, "scores") == 0) {
        a.tee_output = DZ_OUTPUT_SCORES;
    } else {
        fprintf(stderr, "darknetp: -tee_output: expected top1, topk, rank or scores, got '%s'\n",
                policy);
        return 2;
    }
    a.pp_start = (int)pp_start;
    a.pp_end = (int)pp_end;
    if (unknown_options(argc, argv) != 0 || unknown_verb(argv[2]) != 0)
        return 2;
    /* After the unknown options: a misspelt -pp_end is named as such, not as a lone
     * -pp_start. */
    if ((pp_start >= 0) != (pp_end >= 0) || pp_start > pp_end) {
        fprintf(stderr, "darknetp: -pp_start and -pp_end go together, with pp_start <= pp_end\n");
        return 2;
    }
    if (argc < 5) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[2];
    if (a.out && strcmp(verb, "predict") != 0 && strcmp(verb, "valid") != 0) {
        fprintf(stderr, "darknetp: -out is a predict and valid option\n");
        return 2;
    }
    size_t out_len = a.out ? strlen(a.out) : 0;
    if (out_len > 6 && strcmp(a.out + out_len - 6, ".jsonl") == 0 && strcmp(verb, "valid") == 0) {
        fprintf(stderr, "darknetp: valid -out writes CSV; JSON lines (.jsonl) are predict's\n");
        return 2;
    }
    if ((a.log || save_every >= 0 || valid_every) && strcmp(verb, "train") != 0) {
        fprintf(stderr, "darknetp: -log, -save_every and -valid_every are train options\n");
        return 2;
    }
    if (mia_given && strcmp(verb, "mia") != 0) {
        fprintf(stderr, "darknetp: -n, -queries, -query_shift, -grad, -csv and -max_auc are mia "
                        "options\n");
        return 2;
    }
    /* Only a training network keeps columns: the option would do nothing there. */
    if (col_cache_given && (strcmp(verb, "predict") == 0 || strcmp(verb, "valid") == 0)) {
        fprintf(stderr,
                "darknetp: -col_cache_mb is a train option (and mia -grad's): %s keeps "
                "no columns\n",
                verb);
        return 2;
    }
    if (a.plot && strcmp(verb, "mia") != 0 && strcmp(verb, "train") != 0) {
        fprintf(stderr, "darknetp: -plot is a train and mia option\n");
        return 2;
    }
    if (batch && strcmp(verb, "predict") != 0 && strcmp(verb, "valid") != 0) {
        fprintf(stderr, "darknetp: -batch is a predict and valid option (train takes the cfg's "
                        "batch)\n");
        return 2;
    }
    /* Streaming is a way to run a TEE segment: without one these options would do nothing. */
    if ((a.tee_stream || a.tee_chunk) && pp_start < 0)
        fprintf(stderr,
                "darknetp: note: %s ignored: no layers run in the TEE (give -pp_start A "
                "-pp_end B to stream their weights)\n",
                a.tee_stream && a.tee_chunk ? "-tee_stream and -tee_chunk"
                : a.tee_stream              ? "-tee_stream"
                                            : "-tee_chunk");
    a.datacfg = argv[3];
    a.cfgfile = argv[4];
    a.weights = argc > 5 ? argv[5] : NULL;
    const unsigned n_threads = threads > 0 ? (unsigned)threads : dz_online_cores();
    struct dz_pool *pool = dz_pool_create(n_threads);
    if (!pool) {
        fprintf(stderr, "darknetp: cannot start %u threads\n", n_threads);
        return 1;
    }
    const struct dnn_parallel par = dz_pool_parallel(pool);
    a.parallel = &par;
    int rc = run_verb(&a, verb, argc, argv);
    dz_pool_destroy(pool);
    return rc;
}

/* Runs classifier VERB with the parsed options (a copy: predict adds the image): the exit
 * code. */
static int run_verb(const struct dz_classifier_args *a0, const char *verb, int argc, char **argv)
{
    struct dz_classifier_args a = *a0;
    if (strcmp(verb, "train") == 0) {
        if (argc > 6)
            goto extra;
        return dz_classifier_train(&a);
    }
    if (!a.weights) {
        fprintf(stderr, "darknetp: classifier %s needs a WEIGHTS file\n", verb);
        return 2;
    }
    if (strcmp(verb, "valid") == 0) {
        if (argc > 6)
            goto extra;
        return dz_classifier_valid(&a);
    }
    if (strcmp(verb, "mia") == 0) {
        if (argc > 6)
            goto extra;
        return dz_classifier_mia(&a);
    }
    if (strcmp(verb, "predict") == 0) {
        if (argc > 7)
            goto extra;
        a.image = argc > 6 ? argv[6] : NULL;
        return dz_classifier_predict(&a);
    }
    usage(stderr); /* not reached: unknown_verb refused it */
    return 2;
extra:
    fprintf(stderr, "darknetp: too many arguments\n");
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "classifier") == 0)
        return run_classifier(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "tee") == 0 && strcmp(argv[2], "plan") == 0)
        return dz_tee_plan_main(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "tee") == 0 && strcmp(argv[2], "pubkey") == 0)
        return dz_tee_pubkey_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "seal") == 0)
        return dz_seal_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "partial") == 0)
        return dz_partial_main(argc, argv);
    usage(stderr);
    return 2;
}
