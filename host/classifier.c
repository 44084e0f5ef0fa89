/*
 * classifier.c - `darknetp classifier train|valid|predict`, with darknet's
 * arguments, defaults and output lines.
 */
#include "host/classifier.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "darknet/dataset.h"
#include "darknet/image.h"
#include "darknet/parse_network.h"
#include "darknet/weights.h"
#include "host/batch_loader.h"
#include "host/csv.h"
#include "host/data_options.h"
#include "host/layer_table.h"
#include "host/partition.h"
#include "host/pnet.h"
#include "host/progress.h"
#include "host/train_plot.h"

static volatile sig_atomic_t interrupted;
/* Erases the progress line before a notice when stderr is a terminal (set with the handler). */
static volatile sig_atomic_t notice_on_terminal;

/* write(2) of a constant notice to stderr: the only output a signal handler may make. */
static void notice(const char *msg, size_t len)
{
    if (notice_on_terminal) {
        ssize_t w = write(STDERR_FILENO, "\r\033[K", 4);
        (void)w;
    }
    ssize_t w = write(STDERR_FILENO, msg, len);
    (void)w; /* nothing to do if stderr is gone */
}

/*
 * SIGINT/SIGTERM during training. The first asks the train loop to finish its step, save the
 * backup pair and exit 130: a step cannot be abandoned half way without losing the TA's state.
 * A second quits at once with 130 and saves nothing. Checkpoint saves run with both signals
 * blocked (save_checkpoint), so a second signal never lands between the two files of a pair:
 * it takes effect as soon as the pair is complete, and the previous checkpoints stay intact.
 */
static void on_interrupt(int sig)
{
    (void)sig;
    if (interrupted) {
        static const char again[] = "darknetp: interrupted again: quitting without saving\n";
        notice(again, sizeof again - 1);
        _exit(130);
    }
    interrupted = 1;
    static const char first[] = "darknetp: interrupted: saving a backup after this step "
                                "(interrupt again to quit without saving)\n";
    notice(first, sizeof first - 1);
}

/* Installs on_interrupt for SIGINT and SIGTERM; each blocks the other while it runs, so two
 * signals in quick succession are always counted as two. */
static void catch_interrupts(void)
{
    notice_on_terminal = isatty(STDERR_FILENO);
    struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Blocks SIGINT and SIGTERM; the previous mask goes to *old when old is not NULL. */
static void block_interrupts(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, old);
}

/* darknet's basecfg: "cfg/mnist_lenet.cfg" -> "mnist_lenet". */
static void base_name(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    const char *start = slash ? slash + 1 : path;
    snprintf(out, size, "%s", start);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

/* mkdir -p for the backup directory. */
static int make_dirs(const char *dir, struct dk_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return dk_fail(err, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char keep = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return dk_fail(err, "cannot create directory %s: %s", path, strerror(errno));
            *p = keep;
            if (keep == '\0')
                break;
        }
    }
    return 0;
}

/*
 * -pp_start_f freezes the layers before the TEE segment, as DarkneTZ did (a stopbackward on
 * layer pp_start - 1). A frozen layer must run in the normal world: the TA trains every
 * layer of its segment. Training says which layers are frozen, as darknet does.
 */
static int freeze(const struct dz_classifier_args *a, struct dk_model *model, bool training,
                  struct dk_error *err)
{
    if (a->freeze_front) {
        for (int i = 0; i < a->pp_start && (size_t)i < model->n; i++)
            model->specs[i].frozen = true;
    }
    size_t n_frozen = 0;
    while (n_frozen < model->n && model->specs[n_frozen].frozen)
        n_frozen++;
    if (n_frozen == 0)
        return 0;
    if (a->pp_start >= 0 && n_frozen > (size_t)a->pp_start)
        return dk_fail(err,
                       "%s: layers 0..%zu are frozen (stopbackward), which reaches into the TEE "
                       "segment %d..%d: the TA trains every layer it holds; start the segment "
                       "at layer %zu or later",
                       a->cfgfile, n_frozen - 1, a->pp_start, a->pp_end, n_frozen);
    if (training)
        fprintf(stderr,
                "darknetp: layers 0..%zu are frozen: they are not trained and their weights "
                "are saved as loaded\n",
                n_frozen - 1);
    return 0;
}

int dz_classifier_load_network(const struct dz_classifier_args *a, int batch, bool fallback,
                               bool training, int top, struct dk_model *model, struct dz_pnet *pn,
                               struct dk_error *err)
{
    if (fallback && a->batch > 0) {
        batch = a->batch;
        fallback = false;
    }
    if (dk_parse_network(a->cfgfile, model, err) != 0)
        return -1;
    if (model->notes)
        fputs(model->notes, stderr);
    if (a->pp_end >= 0 && (size_t)a->pp_end >= model->n)
        return dk_fail(err, "-pp_end %d is past the last layer of %s (%zu)", a->pp_end, a->cfgfile,
                       model->n - 1);
    if (training && model->train_refusal[0])
        return dk_fail(err, "%s", model->train_refusal);
    if (freeze(a, model, training, err) != 0)
        return -1;
    /* The .weights file's size against the cfg before any network is allocated. */
    if (a->weights && dz_weights_precheck(model, a->weights, err) != 0)
        return -1;
    struct dz_pnet_opts o = {
        .first = a->pp_start,
        .last = a->pp_end,
        .batch = batch,
        .training = training,
        .seed = a->seed,
        .policy = a->tee_output,
        .top_k = top,
        .stream = a->tee_stream,
        .stream_work_max = a->tee_chunk,
        .batch_fallback = fallback && !training && a->pp_start >= 0,
        .parallel = a->parallel,
        .scratch = &a->scratch,
    };
    char tz[4200];
    if (a->weights) {
        dz_streamed_save_cut(a->weights, a->pp_start, a->pp_end, &o.stream_save_bytes);
        if (snprintf(tz, sizeof tz, "%s.tz", a->weights) < (int)sizeof tz)
            o.stream_save_file = tz;
    }
    if (dz_pnet_open(pn, model, &o, err) != 0)
        return -1;
    dz_print_layer_table(stderr, pn->shapes, a->pp_start, a->pp_end);
    if (a->weights) {
        fprintf(stderr, "Loading weights from %s...", a->weights);
        if (dz_pnet_load_weights(pn, a->weights, a->clear, err) != 0) {
            fprintf(stderr, "\n");
            return -1;
        }
        fprintf(stderr, "Done!\n");
        dz_print_partial_note(stderr, pn, a->weights);
    } else if (dz_pnet_seed_weights(pn, err) != 0) {
        return -1;
    }
    return 0;
}

/* The parser's [net] augmentation keys as the data loader takes them; the crop
 * range is darknet's (int)(ratio * width), so min_ratio/max_ratio apply. */
static struct dk_augment_params augment_params(const struct dk_augment *a, int width)
{
    struct dk_augment_params p = {
        .min_crop = (int)(a->min_ratio * (float)width),
        .max_crop = (int)(a->max_ratio * (float)width),
        .angle = a->angle,
        .aspect = a->aspect,
        .hue = a->hue,
        .saturation = a->saturation,
        .exposure = a->exposure,
        .flip = a->flip,
        .center = a->center,
        .label_smooth_eps = a->label_smooth_eps,
        .mixup = a->mixup,
        .blur = a->blur,
    };
    return p;
}

int dz_classifier_read_list(const char *path, const char *what, struct dk_list *out,
                            struct dk_error *err)
{
    if (!path)
        return dk_fail(err, "the data file names no %s file", what);
    return dk_list_read(path, out, err);
}

/* The cfg's output must be one score per class. */
static int check_outputs(const struct dnn_network *shapes, int classes, const char *cfgfile,
                         struct dk_error *err)
{
    size_t outputs = shapes->layers[dnn_network_output_index(shapes)].outputs;
    if (classes > 0 && outputs != (size_t)classes)
        return dk_fail(err, "%s: the network has %zu outputs but the data file says classes=%d",
                       cfgfile, outputs, classes);
    return 0;
}

/* What train and valid share: the data file, the network and one split of the data. */
struct classifier_run {
    struct dz_data_options opt;
    struct dk_model model;
    struct dz_pnet pn;
    struct dk_list labels;
    struct dk_dataset ds;
    bool ds_open;
};

int dz_classifier_top_labels(const struct dz_classifier_args *a, const struct dz_data_options *opt)
{
    int top = a->top > 0 ? a->top : (opt->top > 0 ? opt->top : 1);
    return opt->classes > 0 && top > opt->classes ? opt->classes : top;
}

/* Images named in a label report before "... and K more". */
#define LABELS_NAMED 5

/* The data file's valid list, opened only to report its labels (train names the images of
 * both lists at start); 0 when it has none, is the training list or does not open (valid
 * reports that itself). */
static size_t valid_label_report(const struct classifier_run *r, char *buf, size_t size)
{
    struct dk_dataset v = {0};
    struct dk_error ignored = {{0}};
    size_t bad = 0;
    buf[0] = '\0';
    if (!r->opt.valid || (r->opt.train && strcmp(r->opt.valid, r->opt.train) == 0))
        return 0;
    if (dk_dataset_open(&v, r->opt.valid, r->opt.valid_labels, r->labels.items, r->labels.n,
                        r->opt.classes, &ignored) == 0)
        bad = dk_dataset_label_report(&v, LABELS_NAMED, buf, size);
    dk_dataset_close(&v);
    return bad;
}

/*
 * Every image whose path holds no label or several (darknet trains it on an all-zero or
 * multi-hot truth and prints "Too many or too few labels", easily missed; valid scores it
 * as wrong) is named at start, the first few of each list, then a count. Training refuses
 * to start unless -allow_unlabelled; valid goes on with the warning.
 */
static int check_labels(const struct classifier_run *r, const struct dz_classifier_args *a,
                        bool train, struct dk_error *err)
{
    char own[2048], other[2048];
    const size_t bad = dk_dataset_label_report(&r->ds, LABELS_NAMED, own, sizeof own);
    const size_t bad_valid = train ? valid_label_report(r, other, sizeof other) : 0;
    if (bad + bad_valid == 0)
        return 0;
    const char *how = train && !a->allow_unlabelled ? "error" : "warning";
    if (bad)
        fprintf(stderr, "darknetp: %s: %s\n", how, own);
    if (bad_valid)
        fprintf(stderr, "darknetp: %s: %s\n", how, other);
    if (!train) {
        fprintf(stderr, "darknetp: note: those images count as wrong in the accuracy\n");
        return 0;
    }
    if (a->allow_unlabelled) {
        fprintf(stderr, "darknetp: note: -allow_unlabelled: training on them as darknet does "
                        "(the truth of an image is 1 for every label its path holds)\n");
        return 0;
    }
    return dk_fail(err,
                   "training refused: %zu image paths match no label or several; an image's "
                   "class is the one label its path holds as a substring (darknet's rule), so "
                   "a label must not appear in a directory name or in another label; rename "
                   "the labels or the files, or pass -allow_unlabelled to train as darknet does",
                   bad + bad_valid);
}

/* Reads the data file, builds the network (batch > 0 replaces the cfg's) and
 * opens the train or valid split; top <= 0 takes top_labels(). On failure the caller
 * still calls run_close. */
static int run_open(struct classifier_run *r, const struct dz_classifier_args *a, bool train,
                    int batch, int top, struct dk_error *err)
{
    const char *key = train ? "train" : "valid";
    if (dz_data_options_read(a->datacfg, &r->opt, err) != 0)
        return -1;
    const char *images = train ? r->opt.train : r->opt.valid;
    const char *idx_labels = train ? r->opt.train_labels : r->opt.valid_labels;
    if (!images)
        return dk_fail(err, "%s: no '%s' key", a->datacfg, key);
    if (r->opt.classes <= 0)
        return dk_fail(err, "%s: 'classes' must be set to the number of classes", a->datacfg);
    if (top <= 0)
        top = dz_classifier_top_labels(a,
                                       &r->opt); /* a training save seals the output it ran under */
    if (dz_classifier_load_network(a, batch, !train, train, top, &r->model, &r->pn, err) != 0 ||
        check_outputs(r->pn.shapes, r->opt.classes, a->cfgfile, err) != 0)
        return -1;
    if (r->opt.labels && dz_classifier_read_list(r->opt.labels, "labels", &r->labels, err) != 0)
        return -1;
    if (dk_dataset_open(&r->ds, images, idx_labels, r->labels.items, r->labels.n, r->opt.classes,
                        err) != 0)
        return -1;
    r->ds_open = true;
    /* A training list's images must all be readable before the first iteration. */
    if (train && dk_dataset_check_files(&r->ds, err) != 0)
        return -1;
    return check_labels(r, a, train, err);
}

static void run_close(struct classifier_run *r)
{
    if (r->ds_open)
        dk_dataset_close(&r->ds);
    dk_list_free(&r->labels);
    dz_pnet_close(&r->pn);
    dk_model_free(&r->model);
    dz_data_options_free(&r->opt);
    memset(r, 0, sizeof *r);
}

/*
 * Saves a checkpoint (with a TEE: PATH plus the sealed PATH.tz). SIGINT and SIGTERM wait
 * until both files are in place: a second Ctrl-C's immediate exit must not leave a new PATH
 * beside an old PATH.tz, which would not load.
 */
static int save_checkpoint(struct dz_pnet *pn, const char *dir, const char *base,
                           const char *suffix, char *path, size_t size, struct dk_error *err)
{
    int n = snprintf(path, size, "%s/%s%s", dir, base, suffix);
    if (n < 0 || (size_t)n >= size)
        return dk_fail(err, "%s/%s%s: path too long", dir, base, suffix);
    sigset_t old;
    block_interrupts(&old);
    int rc = dz_pnet_save_weights(pn, path, err);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* darknet's line per iteration; the loss stays in the TEE when the TA computes it, unless
 * the session's output policy lets the scores (and so the loss) leave. */
static void print_iteration(struct dz_pnet *pn, size_t n_items, bool known, float loss,
                            float avg_loss, double seconds)
{
    unsigned long long batch_num = (unsigned long long)dz_pnet_current_batch(pn);
    double epoch = (double)pn->seen / (double)n_items;
    double rate = (double)dz_pnet_current_rate(pn);
    if (known)
        printf("%llu, %.3f: %f, %f avg, %f rate, %lf seconds, %llu images\n", batch_num, epoch,
               (double)loss, (double)avg_loss, rate, seconds, (unsigned long long)pn->seen);
    else
        printf("%llu, %.3f: loss in the TEE, %f rate, %lf seconds, %llu images\n", batch_num, epoch,
               rate, seconds, (unsigned long long)pn->seen);
    fflush(stdout);
}

/* train -log: the same numbers as a CSV row; the loss is empty when it stays in the TEE, the
 * accuracy unless -valid_every ran after this iteration (accuracy < 0). */
static void log_iteration(FILE *f, struct dz_pnet *pn, size_t n_items, bool known, float loss,
                          float avg_loss, double seconds, double accuracy)
{
    fprintf(f, "%llu,%.6f,", (unsigned long long)dz_pnet_current_batch(pn),
            (double)pn->seen / (double)n_items);
    if (known)
        fprintf(f, "%.9g,%.9g", (double)loss, (double)avg_loss);
    else
        fprintf(f, ",");
    double images = (double)pn->batch * (double)pn->subdivisions;
    fprintf(f, ",%.9g,%.1f,", (double)dz_pnet_current_rate(pn),
            seconds > 0 ? images / seconds : 0.0);
    if (accuracy >= 0)
        fprintf(f, "%.6f", accuracy);
    fprintf(f, "\n");
}

/* How an iteration ended: a data error leaves both worlds able to save, a TEE error not. */
enum step_result {
    STEP_OK,
    STEP_DATA_FAILED, /* an image could not be read or decoded: the network is intact */
    STEP_FAILED,      /* the network or the TA failed: nothing to save */
};

/*
 * One iteration: subdivisions batches. *loss is the mean per image when *known. A batch whose
 * data cannot be loaded is never trained on, so both worlds still agree on `seen` and hold the
 * weights of the last update: what STEP_DATA_FAILED lets the caller save.
 */
static enum step_result train_iteration(struct classifier_run *r, struct dz_batch_loader *loader,
                                        float *loss, bool *known, struct dk_error *err)
{
    const int batch = r->pn.batch, subdiv = r->pn.subdivisions;
    float sum = 0;
    for (int s = 0; s < subdiv; s++) {
        float l = 0;
        const float *x = NULL, *y = NULL;
        if (dz_batch_loader_next(loader, &x, &y, err) != 0)
            return STEP_DATA_FAILED;
        if (dz_pnet_train_batch(&r->pn, x, y, &l, known, err) != 0)
            return STEP_FAILED;
        sum += l;
    }
    *loss = sum / (float)(subdiv * batch);
    if (!*known && r->pn.tee_loss_known) { /* the TA's figure, where the policy lets it out */
        *loss = r->pn.tee_loss;
        *known = true;
    }
    return STEP_OK;
}

/* The labels of image j best first: from the scores, or as the TA returned them. */
static size_t ranked_labels(const struct dz_pnet_output *o, size_t j, int classes, int topk,
                            int *indexes)
{
    if (o->labels) {
        const struct dz_prediction *p = &o->labels[j];
        size_t n = p->count < (uint32_t)topk ? p->count : (size_t)topk;
        for (size_t k = 0; k < n; k++)
            indexes[k] = p->labels[k];
        return n;
    }
    dnn_top_k(o->scores + j * o->outputs, (size_t)classes, (size_t)topk, indexes);
    return (size_t)topk;
}

/* Under -tee_output top1 only one label leaves: top-k counts that one. */
static void warn_few_labels(const struct dz_pnet *pn, const struct dz_classifier_args *a, int topk)
{
    if (pn->tee && (size_t)pn->last + 1 == pn->shapes->n && a->tee_output == DZ_OUTPUT_TOP1 &&
        topk > 1)
        fprintf(stderr,
                "darknetp: note: only the top-1 label leaves the TEE; top %d counts it alone "
                "(-tee_output topk returns %d labels)\n",
                topk, topk);
}

/* valid -out: one row per image, what it got and whether it was right. */
static void valid_row(FILE *f, const struct dk_dataset *ds, size_t i, int cls, const int *indexes,
                      size_t n)
{
    char name[4096];
    dz_csv_field(f, dk_dataset_name(ds, i, name, sizeof name));
    fprintf(f, ",%d,%d,%d,", cls, n > 0 ? indexes[0] : -1, n > 0 && indexes[0] == cls);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s%d", k ? " " : "", indexes[k]);
    fprintf(f, "\n");
}

/* What valid counts: hits of the top-1 label and of the top-k labels. */
struct valid_count {
    double top1, topk;
};

/*
 * The valid pass, for `valid` and train -valid_every: every item of ds preprocessed as
 * darknet's validate_classifier_single, predicted through pn (with a partition, through the
 * TA and its output policy) pn->batch at a time in x (batch * inputs floats), counted against
 * its class. print: darknet's running line per image; csv: valid_row per image. indexes holds
 * topk ints. STEP_DATA_FAILED when an image cannot be read (the network is intact),
 * STEP_FAILED when the prediction fails; the message is in err.
 */
static enum step_result valid_pass(struct dz_pnet *pn, const struct dk_dataset *ds,
                                   const struct dnn_net_config *c, int classes, int topk,
                                   bool print, FILE *csv, float *x, int *indexes,
                                   struct valid_count *vc, struct dk_error *err)
{
    const size_t inputs = dz_pnet_inputs(pn), batch = (size_t)pn->batch;
    const size_t n_items = dk_dataset_count(ds);
    *vc = (struct valid_count){0, 0};
    for (size_t start = 0; start < n_items; start += batch) {
        size_t count = n_items - start < batch ? n_items - start : batch;
        memset(x, 0, batch * inputs * sizeof(float));
        for (size_t j = 0; j < count; j++)
            if (dk_dataset_eval_image(ds, start + j, c->w, c->h, c->c, x + j * inputs, err) != 0)
                return STEP_DATA_FAILED;
        struct dz_pnet_output pred;
        if (dz_pnet_predict(pn, x, &pred, err) != 0)
            return STEP_FAILED;
        for (size_t j = 0; j < count; j++) {
            size_t i = start + j;
            int cls = dk_dataset_class(ds, i);
            size_t n = ranked_labels(&pred, j, classes, topk, indexes);
            if (n > 0 && indexes[0] == cls)
                vc->top1 += 1;
            for (size_t k = 0; k < n; k++)
                if (indexes[k] == cls)
                    vc->topk += 1;
            if (print)
                printf("%zu: top 1: %f, top %d: %f\n", i, vc->top1 / (double)(i + 1), topk,
                       vc->topk / (double)(i + 1));
            if (csv)
                valid_row(csv, ds, i, cls, indexes, n);
        }
    }
    return STEP_OK;
}

/*
 * A training image went missing or became unreadable after training started: reports it and
 * saves the backup pair, so the run stops without losing what it learnt since its last
 * checkpoint. Prints every message itself; the caller exits 1 either way.
 */
static void save_after_data_error(struct dz_pnet *pn, const char *dir, const char *base, char *path,
                                  size_t size, const struct dk_error *data_err)
{
    struct dk_error err = {{0}};
    fprintf(stderr, "darknetp: %s\n", data_err->msg);
    if (save_checkpoint(pn, dir, base, ".backup", path, size, &err) != 0) {
        fprintf(stderr, "darknetp: no backup saved: %s\n", err.msg);
        return;
    }
    fprintf(stderr, "darknetp: training stopped at iteration %llu; saved %s\n",
            (unsigned long long)dz_pnet_current_batch(pn), path);
}

/* "backup/" and "backup" name the same folder; keep file names free of "//". */
static int backup_dir(const char *dir, char *out, size_t size, struct dk_error *err)
{
    snprintf(out, size, "%s", dir);
    for (size_t len = strlen(out); len > 1 && out[len - 1] == '/'; len--)
        out[len - 1] = '\0';
    return make_dirs(out, err);
}

/* What train reports beside darknet's lines: -log, -valid_every and -plot. */
struct train_watch {
    FILE *log;
    struct dk_dataset valid; /* -valid_every: the data file's `valid` set */
    bool valid_open;
    int topk;
    int *indexes; /* (topk) */
    float *x;     /* (batch, network inputs): validation images, apart from the loader's */
    struct dz_train_history history;
};

static int watch_open(struct train_watch *w, struct classifier_run *r,
                      const struct dz_classifier_args *a, struct dk_error *err)
{
    const bool loss_leaves = !r->pn.loss_in_tee || dz_tee_loss_leaves(r->pn.tee);
    if (a->plot && !loss_leaves && a->valid_every == 0)
        return dk_fail(err, "-plot: nothing to draw: the loss stays in the TEE under this "
                            "partition and output policy (it leaves with -tee_output scores, "
                            "when the model's policy allows) and there is no -valid_every");
    if (a->valid_every > 0) {
        if (r->pn.tee && dz_pnet_tree_labels(&r->pn, a->tee_output))
            return dk_fail(err, "-valid_every: the TEE segment ends a network with a tree "
                                "softmax, whose labels the TA does not rank (darknet ranks them "
                                "after hierarchy_predictions): use -tee_output scores");
        if (!r->opt.valid)
            return dk_fail(err, "-valid_every: %s names no 'valid' set", a->datacfg);
        if (dk_dataset_open(&w->valid, r->opt.valid, r->opt.valid_labels, r->labels.items,
                            r->labels.n, r->opt.classes, err) != 0)
            return -1;
        w->valid_open = true;
        if (dk_dataset_unlabelled(&w->valid) == dk_dataset_count(&w->valid))
            return dk_fail(err, "-valid_every: no image of the valid set %s has a label%s",
                           r->opt.valid,
                           w->valid.kind == DK_DATASET_IDX ? " (valid_labels names none)" : "");
        if (dk_dataset_check_files(&w->valid, err) != 0)
            return -1;
        w->topk = dz_classifier_top_labels(a, &r->opt);
        w->indexes = malloc((size_t)w->topk * sizeof(int));
        w->x = malloc((size_t)r->pn.batch * dz_pnet_inputs(&r->pn) * sizeof(float));
        if (!w->indexes || !w->x)
            return dk_fail(err, "out of memory");
        warn_few_labels(&r->pn, a, w->topk);
    }
    if (a->log) {
        if (!(w->log = fopen(a->log, "w")))
            return dk_fail(err, "%s: cannot create: %s", a->log, strerror(errno));
        fprintf(w->log, "iteration,epoch,loss,avg_loss,learning_rate,images_per_second,accuracy\n");
    }
    return 0;
}

/* Closes the log (a write failure sets err when err is not NULL) and frees the rest. */
static int watch_close(struct train_watch *w, const char *log_path, struct dk_error *err)
{
    int rc = dz_classifier_close_out(w->log, log_path, err);
    if (w->valid_open)
        dk_dataset_close(&w->valid);
    free(w->indexes);
    free(w->x);
    dz_train_history_free(&w->history);
    memset(w, 0, sizeof *w);
    return rc;
}

/* -valid_every: top-1 accuracy on `valid` into *accuracy, and a line on stderr. */
static enum step_result validate(struct train_watch *w, struct classifier_run *r, uint64_t epoch,
                                 double *accuracy, struct dk_error *err)
{
    struct valid_count vc;
    enum step_result st = valid_pass(&r->pn, &w->valid, &r->model.net, r->opt.classes, w->topk,
                                     false, NULL, w->x, w->indexes, &vc, err);
    if (st != STEP_OK)
        return st;
    const double n = (double)dk_dataset_count(&w->valid);
    *accuracy = vc.top1 / n;
    fprintf(stderr, "valid after epoch %llu: top 1: %f, top %d: %f (%zu images)\n",
            (unsigned long long)epoch, *accuracy, w->topk, vc.topk / n,
            dk_dataset_count(&w->valid));
    return STEP_OK;
}

/* What the scratch options bought, so that a user trimming memory sees where it went. */
static void print_scratch(const struct dz_pnet *pn, const struct dz_scratch_budget *budget)
{
    const struct dz_scratch_budget used = dz_pnet_scratch_used(pn);
    const double mib = 1 << 20;
    fprintf(stderr,
            "Scratch: lowering %.1f MiB (-lower_mb %zu), kept columns %.1f MiB (-col_cache_mb "
            "%zu)\n",
            (double)used.lower_bytes / mib, budget->lower_bytes >> 20,
            (double)used.col_cache_bytes / mib, budget->col_cache_bytes >> 20);
}

int dz_classifier_train(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct classifier_run r = {0};
    struct dz_batch_loader *loader = NULL;
    struct train_watch w = {0};
    int rc = 1;
    bool reported = false; /* the error is printed already */

    if (run_open(&r, a, true, 0, 0, &err) != 0 || watch_open(&w, &r, a, &err) != 0)
        goto out;
    struct dz_pnet *pn = &r.pn;
    struct dz_policy infer_only;
    if (a->seal_infer_only) {
        if (!pn->tee) {
            dk_fail(&err, "-seal_infer_only needs -pp_start and -pp_end: without a TEE "
                          "partition nothing is sealed");
            goto out;
        }
        if (dz_tee_streaming(pn->tee)) {
            dk_fail(&err, "-seal_infer_only: the segment streams its weights, and a streamed "
                          "save (its chunks) carries no policy");
            goto out;
        }
        /* The policy this run trains under, less training: a model ready to deploy. */
        dz_tee_request_policy(pn->tee, &infer_only);
        infer_only.modes = DZ_MODE_INFER;
        pn->seal_policy = &infer_only;
    }
    const struct dnn_net_config *c = &r.model.net;

    fprintf(stderr, "Learning Rate: %g, Momentum: %g, Decay: %g\n", (double)c->learning_rate,
            (double)c->momentum, (double)c->decay);

    const int batch = pn->batch;
    const size_t n_items = dk_dataset_count(&r.ds);
    char base[256];
    base_name(a->cfgfile, base, sizeof base);
    char backup[4096];
    if (backup_dir(r.opt.backup, backup, sizeof backup, &err) != 0)
        goto out;

    struct dk_augment_params aug = augment_params(&r.model.aug, c->w);
    char active[512];
    dk_augment_describe(&aug, c->w, active, sizeof active);
    fprintf(stderr, "Augmentation: %s\n", active);
    print_scratch(pn, &a->scratch);
    struct dnn_rng data_rng;
    dnn_rng_seed(&data_rng, a->seed ^ 0xDA7Aull);
    /* The next batch loads while this one trains; data_rng is the loader's from here on, so
     * the batches are drawn exactly as one thread would draw them. */
    if (dz_batch_loader_start(&loader, &r.ds, &data_rng, batch, c->w, c->h, c->c, r.opt.classes,
                              &aug, &err) != 0)
        goto out;
    catch_interrupts();

    struct dz_progress progress;
    dz_progress_start(&progress, (uint64_t)c->max_batches, dz_pnet_current_batch(pn),
                      (uint64_t)batch * (uint64_t)pn->subdivisions);
    float avg_loss = -1;
    uint64_t epoch = pn->seen / n_items;
    char path[4096 + 300];
    while ((dz_pnet_current_batch(pn) < (uint64_t)c->max_batches || c->max_batches == 0) &&
           !interrupted) {
        double t0 = dz_seconds();
        float loss = 0;
        bool known = true;
        enum step_result step = train_iteration(&r, loader, &loss, &known, &err);
        if (step == STEP_DATA_FAILED) {
            dz_progress_clear(&progress);
            save_after_data_error(pn, backup, base, path, sizeof path, &err);
            reported = true;
            goto out;
        }
        if (step != STEP_OK)
            goto out;
        if (known) {
            if (avg_loss < 0)
                avg_loss = loss;
            avg_loss = avg_loss * .9f + loss * .1f;
        }
        double seconds = dz_seconds() - t0;
        dz_progress_clear(&progress);
        print_iteration(pn, n_items, known, loss, avg_loss, seconds);
        const double iteration = (double)dz_pnet_current_batch(pn);
        if (a->plot && known &&
            dz_series_add(&w.history.loss, iteration, loss, avg_loss, &err) != 0)
            goto out;

        bool new_epoch = pn->seen / n_items > epoch;
        epoch = pn->seen / n_items;
        double accuracy = -1;
        if (new_epoch && a->valid_every > 0 && epoch % (uint64_t)a->valid_every == 0) {
            step = validate(&w, &r, epoch, &accuracy, &err);
            if (step == STEP_DATA_FAILED) {
                save_after_data_error(pn, backup, base, path, sizeof path, &err);
                reported = true;
                goto out;
            }
            if (step != STEP_OK ||
                (a->plot && dz_series_add(&w.history.accuracy, iteration, accuracy, 0, &err) != 0))
                goto out;
        }
        if (w.log)
            log_iteration(w.log, pn, n_items, known, loss, avg_loss, seconds, accuracy);
        dz_progress_update(&progress, dz_pnet_current_batch(pn));
        /* -save_every 0 keeps only the final weights and the Ctrl-C backup. */
        if (new_epoch && a->save_every > 0 && epoch % (uint64_t)a->save_every == 0) {
            char suffix[64];
            snprintf(suffix, sizeof suffix, "_%llu.weights", (unsigned long long)epoch);
            if (save_checkpoint(pn, backup, base, suffix, path, sizeof path, &err) != 0)
                goto out;
        }
        if (a->save_every > 0 && dz_pnet_current_batch(pn) % 1000 == 0 &&
            save_checkpoint(pn, backup, base, ".backup", path, sizeof path, &err) != 0)
            goto out;
    }
    dz_progress_clear(&progress);
    if (a->plot) {
        char title[512];
        snprintf(title, sizeof title, "%s: training on %s", base, r.opt.train);
        if (dz_train_plot_svg(a->plot, title, &w.history, &err) != 0)
            goto out;
    }
    if (interrupted) {
        /* Only this save is left before exit 130: a further signal need not cut it short. */
        block_interrupts(NULL);
        if (save_checkpoint(pn, backup, base, ".backup", path, sizeof path, &err) != 0)
            goto out;
        fprintf(stderr, "Interrupted: saved %s\n", path);
        rc = 130;
        goto out;
    }
    if (save_checkpoint(pn, backup, base, "_final.weights", path, sizeof path, &err) != 0)
        goto out;
    fprintf(stderr, "Saved %s\n", path);
    rc = 0;
out:
    if (watch_close(&w, a->log, rc == 1 ? NULL : &err) != 0 && rc != 1) {
        rc = 1;
        reported = false;
    }
    if (rc == 1 && !reported)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    dz_batch_loader_stop(loader);
    run_close(&r);
    return rc;
}

int dz_classifier_close_out(FILE *f, const char *path, struct dk_error *err)
{
    if (!f)
        return 0;
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dk_fail(err, "%s: write failed", path);
    return 0;
}

int dz_classifier_valid(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct classifier_run r = {0};
    float *x = NULL;
    int *indexes = NULL;
    FILE *csv = NULL;
    int rc = 1;

    /* darknet validates one image at a time; a batch gives the same numbers faster. */
    const int batch = 100;
    if (dz_data_options_read(a->datacfg, &r.opt, &err) != 0)
        goto out;
    const int topk = dz_classifier_top_labels(a, &r.opt);
    dz_data_options_free(&r.opt);
    if (run_open(&r, a, false, batch, topk, &err) != 0)
        goto out;
    warn_few_labels(&r.pn, a, topk);
    const struct dnn_net_config *c = &r.model.net;
    x = malloc((size_t)r.pn.batch * dz_pnet_inputs(&r.pn) * sizeof(float));
    indexes = malloc((size_t)topk * sizeof(int));
    if (!x || !indexes) {
        dk_fail(&err, "out of memory");
        goto out;
    }
    if (a->out) {
        if (!(csv = fopen(a->out, "w"))) {
            dk_fail(&err, "%s: cannot create: %s", a->out, strerror(errno));
            goto out;
        }
        fprintf(csv, "image,truth,predicted,correct,labels\n");
    }
    struct valid_count vc;
    if (valid_pass(&r.pn, &r.ds, c, r.opt.classes, topk, true, csv, x, indexes, &vc, &err) !=
        STEP_OK)
        goto out;
    rc = 0;
out:
    if (dz_classifier_close_out(csv, a->out, rc ? NULL : &err) != 0)
        rc = 1;
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    free(indexes);
    free(x);
    run_close(&r);
    return rc;
}
