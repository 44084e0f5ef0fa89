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
#include "host/data_options.h"
#include "host/layer_table.h"
#include "host/progress.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
 * Parses the cfg and builds the network. batch > 0 replaces the cfg's batch
 * (predict and valid run one or a few images at a time, as darknet's
 * set_batch_network does); weights may be NULL.
 */
static int load_network(const struct dz_classifier_args *a, int batch, bool training,
                        struct dk_model *model, struct dnn_network **net, struct dk_error *err)
{
    *net = NULL;
    if (dk_parse_network(a->cfgfile, model, err) != 0)
        return -1;
    if (a->pp_end >= 0 && (size_t)a->pp_end >= model->n) {
        dk_fail(err, "-pp_end %d is past the last layer of %s (%zu)", a->pp_end, a->cfgfile,
                model->n - 1);
        goto fail;
    }
    struct dnn_net_config cfg = model->net;
    if (batch > 0) {
        cfg.batch = batch;
        cfg.subdivisions = 1;
    }
    enum dnn_status st = dnn_network_create(net, &cfg, model->specs, model->n, training, a->seed);
    if (st != DNN_OK) {
        dk_fail(err, "%s: cannot build the network: %s", a->cfgfile, dnn_status_str(st));
        goto fail;
    }
    /* No `_TA` marks until the layers really run in the TEE. */
    dz_print_layer_table(stderr, *net, -1, -1);
    if (a->weights) {
        fprintf(stderr, "Loading weights from %s...", a->weights);
        if (dk_weights_load_all(*net, a->weights, err) != 0) {
            fprintf(stderr, "\n");
            goto fail;
        }
        fprintf(stderr, "Done!\n");
        if (a->clear)
            (*net)->seen = 0;
    }
    return 0;
fail:
    dnn_network_free(*net);
    *net = NULL;
    dk_model_free(model);
    return -1;
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
    };
    return p;
}

static int read_list(const char *path, const char *what, struct dk_list *out, struct dk_error *err)
{
    if (!path)
        return dk_fail(err, "the data file names no %s file", what);
    return dk_list_read(path, out, err);
}

/* The cfg's output must be one score per class. */
static int check_outputs(const struct dnn_network *net, int classes, const char *cfgfile,
                         struct dk_error *err)
{
    size_t outputs = net->layers[dnn_network_output_index(net)].outputs;
    if (classes > 0 && outputs != (size_t)classes)
        return dk_fail(err, "%s: the network has %zu outputs but the data file says classes=%d",
                       cfgfile, outputs, classes);
    return 0;
}

/* What train and valid share: the data file, the network and one split of the data. */
struct classifier_run {
    struct dz_data_options opt;
    struct dk_model model;
    struct dnn_network *net;
    struct dk_list labels;
    struct dk_dataset ds;
    bool ds_open;
};

/* Reads the data file, builds the network (batch > 0 replaces the cfg's) and
 * opens the train or valid split. On failure the caller still calls run_close. */
static int run_open(struct classifier_run *r, const struct dz_classifier_args *a, bool train,
                    int batch, struct dk_error *err)
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
    if (load_network(a, batch, train, &r->model, &r->net, err) != 0 ||
        check_outputs(r->net, r->opt.classes, a->cfgfile, err) != 0)
        return -1;
    if (r->opt.labels && read_list(r->opt.labels, "labels", &r->labels, err) != 0)
        return -1;
    if (dk_dataset_open(&r->ds, images, idx_labels, r->labels.items, r->labels.n,
                        r->opt.classes, err) != 0)
        return -1;
    r->ds_open = true;
    return 0;
}

static void run_close(struct classifier_run *r)
{
    if (r->ds_open)
        dk_dataset_close(&r->ds);
    dk_list_free(&r->labels);
    dnn_network_free(r->net);
    dk_model_free(&r->model);
    dz_data_options_free(&r->opt);
    memset(r, 0, sizeof *r);
}

int dz_classifier_train(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct classifier_run r = {0};
    float *x = NULL, *y = NULL;
    int rc = 1;

    if (run_open(&r, a, true, 0, &err) != 0)
        goto out;
    struct dnn_network *net = r.net;

    fprintf(stderr, "Learning Rate: %g, Momentum: %g, Decay: %g\n",
            (double)net->cfg.learning_rate, (double)net->cfg.momentum, (double)net->cfg.decay);

    const int batch = net->cfg.batch;
    const int subdiv = net->cfg.subdivisions;
    const size_t n_items = dk_dataset_count(&r.ds);
    x = malloc((size_t)batch * net->inputs * sizeof(float));
    y = malloc((size_t)batch * (size_t)r.opt.classes * sizeof(float));
    if (!x || !y) {
        dk_fail(&err, "out of memory for a batch of %d images", batch);
        goto out;
    }
    char base[256];
    base_name(a->cfgfile, base, sizeof base);
    /* "backup/" and "backup" name the same folder; keep file names free of "//". */
    char backup[4096];
    snprintf(backup, sizeof backup, "%s", r.opt.backup);
    for (size_t len = strlen(backup); len > 1 && backup[len - 1] == '/'; len--)
        backup[len - 1] = '\0';
    if (make_dirs(backup, &err) != 0)
        goto out;

    struct dk_augment_params aug = augment_params(&r.model.aug, net->cfg.w);
    struct dnn_rng data_rng;
    dnn_rng_seed(&data_rng, a->seed ^ 0xDA7Aull);
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct dz_progress progress;
    dz_progress_start(&progress, (uint64_t)net->cfg.max_batches, dnn_network_current_batch(net),
                      (uint64_t)batch * (uint64_t)subdiv);
    float avg_loss = -1;
    uint64_t epoch = net->seen / n_items;
    char path[4096 + 300];
    while ((dnn_network_current_batch(net) < (uint64_t)net->cfg.max_batches ||
            net->cfg.max_batches == 0) &&
           !interrupted) {
        double t0 = now_seconds();
        float sum = 0;
        for (int s = 0; s < subdiv; s++) {
            if (dk_dataset_train_batch(&r.ds, &data_rng, batch, net->cfg.w, net->cfg.h, net->cfg.c,
                                       &aug, x, y, &err) != 0)
                goto out;
            sum += dnn_network_train_batch(net, x, y);
        }
        float loss = sum / (float)(subdiv * batch);
        if (avg_loss < 0)
            avg_loss = loss;
        avg_loss = avg_loss * .9f + loss * .1f;
        dz_progress_clear(&progress);
        printf("%llu, %.3f: %f, %f avg, %f rate, %lf seconds, %llu images\n",
               (unsigned long long)dnn_network_current_batch(net),
               (double)net->seen / (double)n_items, (double)loss, (double)avg_loss,
               (double)dnn_network_current_rate(net), now_seconds() - t0,
               (unsigned long long)net->seen);
        fflush(stdout);
        dz_progress_update(&progress, dnn_network_current_batch(net));

        if (net->seen / n_items > epoch) {
            epoch = net->seen / n_items;
            snprintf(path, sizeof path, "%s/%s_%llu.weights", backup, base,
                     (unsigned long long)epoch);
            if (dk_weights_save(net, path, &err) != 0)
                goto out;
        }
        if (dnn_network_current_batch(net) % 1000 == 0) {
            snprintf(path, sizeof path, "%s/%s.backup", backup, base);
            if (dk_weights_save(net, path, &err) != 0)
                goto out;
        }
    }
    dz_progress_clear(&progress);
    if (interrupted) {
        snprintf(path, sizeof path, "%s/%s.backup", backup, base);
        if (dk_weights_save(net, path, &err) != 0)
            goto out;
        fprintf(stderr, "Interrupted: saved %s\n", path);
        rc = 130;
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s_final.weights", backup, base);
    if (dk_weights_save(net, path, &err) != 0)
        goto out;
    fprintf(stderr, "Saved %s\n", path);
    rc = 0;
out:
    if (rc == 1)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    free(y);
    free(x);
    run_close(&r);
    return rc;
}

int dz_classifier_valid(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct classifier_run r = {0};
    float *x = NULL;
    int *indexes = NULL;
    int rc = 1;

    /* darknet validates one image at a time; a batch gives the same numbers faster. */
    const int batch = 100;
    if (run_open(&r, a, false, batch, &err) != 0)
        goto out;
    struct dnn_network *net = r.net;

    int topk = a->top > 0 ? a->top : (r.opt.top > 0 ? r.opt.top : 1);
    if (topk > r.opt.classes)
        topk = r.opt.classes;
    x = malloc((size_t)batch * net->inputs * sizeof(float));
    indexes = malloc((size_t)topk * sizeof(int));
    if (!x || !indexes) {
        dk_fail(&err, "out of memory");
        goto out;
    }
    const size_t n_items = dk_dataset_count(&r.ds);
    const size_t outputs = net->layers[dnn_network_output_index(net)].outputs;
    double top1 = 0, topn = 0;
    for (size_t start = 0; start < n_items; start += (size_t)batch) {
        size_t count = n_items - start < (size_t)batch ? n_items - start : (size_t)batch;
        memset(x, 0, (size_t)batch * net->inputs * sizeof(float));
        for (size_t j = 0; j < count; j++)
            if (dk_dataset_eval_image(&r.ds, start + j, net->cfg.w, net->cfg.h, net->cfg.c,
                                      x + j * net->inputs, &err) != 0)
                goto out;
        const float *pred = dnn_network_predict(net, x);
        for (size_t j = 0; j < count; j++) {
            size_t i = start + j;
            int cls = dk_dataset_class(&r.ds, i);
            dnn_top_k(pred + j * outputs, (size_t)r.opt.classes, (size_t)topk, indexes);
            if (indexes[0] == cls)
                top1 += 1;
            for (int k = 0; k < topk; k++)
                if (indexes[k] == cls)
                    topn += 1;
            printf("%zu: top 1: %f, top %d: %f\n", i, top1 / (double)(i + 1), topk,
                   topn / (double)(i + 1));
        }
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    free(indexes);
    free(x);
    run_close(&r);
    return rc;
}

/* Predicts one image file and prints darknet's top-k lines. */
static int predict_one(struct dnn_network *net, const char *path, const struct dk_list *names,
                       int top, int *indexes, struct dk_error *err)
{
    struct dk_image im = {0}, r = {0};
    if (dk_image_load(path, net->cfg.c, &im, err) != 0)
        return -1;
    int rc = dk_image_prepare_predict(&im, net->cfg.w, net->cfg.h, &r, err);
    dk_image_free(&im);
    if (rc != 0)
        return -1;
    double t0 = now_seconds();
    const float *pred = dnn_network_predict(net, r.data);
    size_t outputs = net->layers[dnn_network_output_index(net)].outputs;
    dnn_top_k(pred, outputs, (size_t)top, indexes);
    fprintf(stderr, "%s: Predicted in %f seconds.\n", path, now_seconds() - t0);
    for (int i = 0; i < top; i++) {
        int idx = indexes[i];
        const char *name = (size_t)idx < names->n ? names->items[idx] : "?";
        printf("%5.2f%%: %s\n", (double)pred[idx] * 100, name);
    }
    fflush(stdout);
    dk_image_free(&r);
    return 0;
}

int dz_classifier_predict(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct dz_data_options opt = {0};
    struct dk_model model = {0};
    struct dnn_network *net = NULL;
    struct dk_list names = {0};
    int *indexes = NULL;
    int rc = 1;

    if (dz_data_options_read(a->datacfg, &opt, &err) != 0)
        goto out;
    if (load_network(a, 1, false, &model, &net, &err) != 0)
        goto out;
    const char *names_path = opt.names ? opt.names : opt.labels;
    if (read_list(names_path, "names or labels", &names, &err) != 0)
        goto out;
    size_t outputs = net->layers[dnn_network_output_index(net)].outputs;
    int top = a->top > 0 ? a->top : (opt.top > 0 ? opt.top : 1);
    if ((size_t)top > outputs)
        top = (int)outputs;
    indexes = malloc((size_t)top * sizeof(int));
    if (!indexes) {
        dk_fail(&err, "out of memory");
        goto out;
    }
    if (a->image) {
        if (predict_one(net, a->image, &names, top, indexes, &err) != 0)
            goto out;
        rc = 0;
        goto out;
    }
    /* No image: one path per line from stdin until EOF. */
    bool prompt = isatty(STDIN_FILENO);
    char line[4096];
    rc = 0;
    for (;;) {
        if (prompt) {
            printf("Enter Image Path: ");
            fflush(stdout);
        }
        if (!fgets(line, sizeof line, stdin))
            break;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (predict_one(net, line, &names, top, indexes, &err) != 0) {
            fprintf(stderr, "darknetp: %s\n", err.msg);
            rc = 1;
        }
    }
    goto done;
out:
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
done:
    free(indexes);
    dk_list_free(&names);
    dnn_network_free(net);
    dk_model_free(&model);
    dz_data_options_free(&opt);
    return rc;
}
