/*
 * predict.c - `darknetp classifier predict`: darknet's top-k lines for one image or paths
 * from stdin, and machine-readable rows (CSV, or JSON lines) for lists and IDX sets.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "darknet/dataset.h"
#include "darknet/idx.h"
#include "darknet/image.h"
#include "host/classifier.h"
#include "host/csv.h"
#include "host/pnet.h"
#include "host/progress.h"

/* darknet's lines for a label-only prediction: the original prints top_k over
 * a one-hot vector (1.0 at the TA's label), so 100.00% then zeros. Under
 * topk/rank the labels are printed best first without scores. */
static void print_labels(const struct dz_prediction *p, size_t outputs, enum dz_output_policy pol,
                         const struct dk_list *names, int top, int *indexes)
{
    if (pol != DZ_OUTPUT_TOP1) {
        /* rank is the order of every label: all of it is printed, whatever -t says. */
        const uint32_t limit = pol == DZ_OUTPUT_RANK ? p->count : (uint32_t)top;
        for (uint32_t k = 0; k < p->count && k < limit; k++) {
            size_t idx = (size_t)p->labels[k];
            printf("%s\n", idx < names->n ? names->items[idx] : "?");
        }
        return;
    }
    float *onehot = calloc(outputs, sizeof(float));
    if (!onehot)
        return;
    if (p->count > 0 && p->labels[0] >= 0 && (size_t)p->labels[0] < outputs)
        onehot[p->labels[0]] = 1.0f;
    dnn_top_k(onehot, outputs, (size_t)top, indexes);
    for (int i = 0; i < top; i++) {
        int idx = indexes[i];
        const char *name = (size_t)idx < names->n ? names->items[idx] : "?";
        printf("%5.2f%%: %s\n", (double)onehot[idx] * 100, name);
    }
    free(onehot);
}

/* Predicts one image file and prints darknet's top-k lines. */
static int predict_one(struct dz_pnet *pn, const struct dk_model *m, const char *path,
                       const struct dk_list *names, int top, enum dz_output_policy pol,
                       int *indexes, struct dk_error *err)
{
    struct dk_image im = {0}, r = {0};
    if (dk_image_load_net(path, m->net.c, &im, err) != 0)
        return -1;
    int rc = dk_image_prepare_predict(&im, m->net.w, m->net.h, &r, err);
    dk_image_free(&im);
    if (rc != 0)
        return -1;
    double t0 = dz_seconds();
    struct dz_pnet_output pred;
    rc = dz_pnet_predict(pn, r.data, &pred, err);
    dk_image_free(&r);
    if (rc != 0)
        return -1;
    fprintf(stderr, "%s: Predicted in %f seconds.\n", path, dz_seconds() - t0);
    if (pred.labels) {
        print_labels(pred.labels, pred.outputs, pol, names, top, indexes);
    } else {
        dnn_top_k(pred.scores, pred.outputs, (size_t)top, indexes);
        for (int i = 0; i < top; i++) {
            int idx = indexes[i];
            const char *name = (size_t)idx < names->n ? names->items[idx] : "?";
            printf("%5.2f%%: %s\n", (double)pred.scores[idx] * 100, name);
        }
    }
    fflush(stdout);
    return 0;
}

/* No image: one path per line from stdin until EOF. */
static int predict_stdin(struct dz_pnet *pn, const struct dk_model *m, const struct dk_list *names,
                         int top, enum dz_output_policy pol, int *indexes)
{
    struct dk_error err = {{0}};
    bool prompt = isatty(STDIN_FILENO);
    char line[4096];
    int rc = 0;
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
        if (predict_one(pn, m, line, names, top, pol, indexes, &err) != 0) {
            fprintf(stderr, "darknetp: %s\n", err.msg);
            rc = 1;
        }
    }
    return rc;
}

/* Only the top-1 label leaves: predict's 100.00% marks that label. */
static bool top1_only(const struct dz_pnet *pn, const struct dz_classifier_args *a)
{
    return pn->tee && (size_t)pn->last + 1 == pn->shapes->n && a->tee_output == DZ_OUTPUT_TOP1;
}

/* Images per forward when predict writes CSV rows. */
#define PREDICT_BATCH 32

/* The paths predict -out reads: a .txt list, one IMAGE, or lines from stdin. */
static int predict_paths(const char *image, struct dk_list *paths, struct dk_error *err)
{
    size_t len = image ? strlen(image) : 0;
    if (image && len > 4 && strcmp(image + len - 4, ".txt") == 0)
        return dk_list_read_paths(image, paths, err);
    if (image) {
        paths->items = malloc(sizeof *paths->items);
        if (!paths->items || !(paths->items[0] = strdup(image)))
            return dk_fail(err, "out of memory");
        paths->n = 1;
        return 0;
    }
    /* stdin is usually a pipe, which the list reader refuses: read it line by line. */
    char line[4096];
    size_t cap = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (paths->n == cap) {
            size_t grown = cap ? 2 * cap : 64;
            char **items = realloc(paths->items, grown * sizeof *items);
            if (!items)
                return dk_fail(err, "out of memory after %zu paths", paths->n);
            paths->items = items;
            cap = grown;
        }
        if (!(paths->items[paths->n] = strdup(line)))
            return dk_fail(err, "out of memory after %zu paths", paths->n);
        paths->n++;
    }
    return 0;
}

/* Where predict's rows come from: image paths (letterboxed, as predict reads one image) or a
 * data set (preprocessed as valid reads it: IDX images at the network's size are as is). */
struct predict_source {
    const struct dk_list *paths; /* or NULL */
    const struct dk_dataset *ds; /* or NULL */
};

static size_t source_count(const struct predict_source *s)
{
    return s->paths ? s->paths->n : dk_dataset_count(s->ds);
}

static const char *source_name(const struct predict_source *s, size_t i, char *buf, size_t size)
{
    return s->paths ? s->paths->items[i] : dk_dataset_name(s->ds, i, buf, size);
}

/* Loads item i into x (the network's inputs for one image). */
static int source_load(const struct predict_source *s, const struct dk_model *m, size_t i, float *x,
                       struct dk_error *err)
{
    if (s->ds)
        return dk_dataset_eval_image(s->ds, i, m->net.w, m->net.h, m->net.c, x, err);
    struct dk_image im = {0}, r = {0};
    if (dk_image_load_net(s->paths->items[i], m->net.c, &im, err) != 0)
        return -1;
    int rc = dk_image_prepare_predict(&im, m->net.w, m->net.h, &r, err);
    dk_image_free(&im);
    if (rc == 0)
        memcpy(x, r.data, (size_t)m->net.w * (size_t)m->net.h * (size_t)m->net.c * sizeof(float));
    dk_image_free(&r);
    return rc;
}

/* The CSV header, once the first batch shows what leaves. */
static void predict_header(FILE *f, const struct dz_pnet_output *o, const struct dk_list *names)
{
    fprintf(f, "image,label,name");
    if (o->labels && o->labels[0].count > 1)
        fprintf(f, ",labels");
    for (size_t c = 0; o->scores && c < o->outputs; c++) {
        fputc(',', f);
        dz_csv_field(f, c < names->n ? names->items[c] : "?");
    }
    fprintf(f, "\n");
}

/* A score as a JSON number: JSON has no NaN or infinity, so those are null. */
static void json_score(FILE *f, float v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", (double)v);
    else
        fputs("null", f);
}

/* The labels the TA returned, best first, separated by sep. */
static void put_labels(FILE *f, const struct dz_prediction *p, const char *sep)
{
    for (uint32_t k = 0; k < p->count && k < DZ_MAX_LABELS; k++)
        fprintf(f, "%s%d", k ? sep : "", p->labels[k]);
}

/*
 * One row, CSV or a JSON object on one line: the image, its best label and the label's name,
 * the ranked labels when several leave, the scores when they do.
 */
static void predict_row(FILE *f, bool json, const char *image, const struct dz_pnet_output *o,
                        size_t j, const struct dk_list *names)
{
    int best = -1;
    if (o->scores)
        dnn_top_k(o->scores + j * o->outputs, o->outputs, 1, &best);
    else if (o->labels[j].count > 0)
        best = o->labels[j].labels[0];
    const char *name = best >= 0 && (size_t)best < names->n ? names->items[best] : "?";
    const bool ranked = o->labels && o->labels[0].count > 1;
    if (json) {
        fputs("{\"image\":", f);
        dz_json_string(f, image);
        fprintf(f, ",\"label\":%d,\"name\":", best);
        dz_json_string(f, name);
        if (ranked) {
            fputs(",\"labels\":[", f);
            put_labels(f, &o->labels[j], ",");
            fputc(']', f);
        }
        if (o->scores) {
            fputs(",\"scores\":[", f);
            for (size_t c = 0; c < o->outputs; c++) {
                if (c)
                    fputc(',', f);
                json_score(f, o->scores[j * o->outputs + c]);
            }
            fputc(']', f);
        }
        fputs("}\n", f);
        return;
    }
    dz_csv_field(f, image);
    fprintf(f, ",%d,", best);
    dz_csv_field(f, name);
    if (ranked) {
        fputc(',', f);
        put_labels(f, &o->labels[j], " ");
    }
    for (size_t c = 0; o->scores && c < o->outputs; c++)
        fprintf(f, ",%.9g", (double)o->scores[j * o->outputs + c]);
    fprintf(f, "\n");
}

/* predict's rows (-out, a .txt list, a data set): pn->batch images per forward (PREDICT_BATCH,
 * -batch, or what the TEE segment fits). */
static int predict_rows(struct dz_pnet *pn, const struct dk_model *m,
                        const struct predict_source *src, const struct dk_list *names, FILE *f,
                        bool json, struct dk_error *err)
{
    const size_t inputs = dz_pnet_inputs(pn), n = source_count(src), batch = (size_t)pn->batch;
    float *x = calloc(batch * inputs, sizeof(float));
    if (!x)
        return dk_fail(err, "out of memory");
    int rc = -1;
    char name[4096];
    /* A whole test set takes a while: images/s and the time left, on a terminal only. */
    struct dz_progress progress;
    dz_progress_start(&progress, (n + batch - 1) / batch, 0, batch);
    for (size_t start = 0; start < n; start += batch) {
        size_t count = n - start < batch ? n - start : batch;
        for (size_t j = 0; j < count; j++)
            if (source_load(src, m, start + j, x + j * inputs, err) != 0)
                goto out;
        struct dz_pnet_output o;
        if (dz_pnet_predict(pn, x, &o, err) != 0)
            goto out;
        if (start == 0 && !json)
            predict_header(f, &o, names);
        for (size_t j = 0; j < count; j++)
            predict_row(f, json, source_name(src, start + j, name, sizeof name), &o, j, names);
        dz_progress_update(&progress, start / batch + 1);
    }
    rc = 0;
out:
    dz_progress_clear(&progress);
    free(x);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/*
 * What IMAGE names: the data file (DATA itself, or any .data/.dataset file: its `valid` set),
 * an IDX image file (by its first bytes), a .txt list, or one image. A data set opens into ds.
 */
static int open_set(const struct dz_classifier_args *a, const struct dz_data_options *opt,
                    struct dk_dataset *ds, bool *is_set, struct dk_list *labels,
                    struct dk_error *err)
{
    *is_set = false;
    const char *img = a->image;
    if (!img || ends_with(img, ".txt"))
        return 0;
    if (strcmp(img, a->datacfg) == 0 || ends_with(img, ".data") || ends_with(img, ".dataset")) {
        struct dz_data_options other = {0};
        const struct dz_data_options *o = opt;
        if (strcmp(img, a->datacfg) != 0) {
            if (dz_data_options_read(img, &other, err) != 0)
                return -1;
            o = &other;
        }
        int rc = -1;
        if (!o->valid)
            dk_fail(err, "predict %s: it names no 'valid' set to predict", img);
        else if ((!o->labels || dz_classifier_read_list(o->labels, "labels", labels, err) == 0) &&
                 dk_dataset_open(ds, o->valid, o->valid_labels, labels->items, labels->n,
                                 opt->classes > 0 ? opt->classes : 1, err) == 0)
            rc = 0;
        dz_data_options_free(&other);
        *is_set = rc == 0;
        return rc;
    }
    bool idx = false;
    struct dk_error ignored;
    if (dk_idx_probe(img, &idx, &ignored) != 0 || !idx)
        return 0; /* an image file: its loader names any fault */
    if (dk_dataset_open(ds, img, NULL, NULL, 0, opt->classes > 0 ? opt->classes : 1, err) != 0)
        return -1;
    *is_set = true;
    return 0;
}

int dz_classifier_predict(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct dz_data_options opt = {0};
    struct dk_model model = {0};
    struct dz_pnet pn = {0};
    struct dk_list names = {0}, paths = {0}, labels = {0};
    struct dk_dataset ds = {0};
    bool set = false; /* IMAGE names a data set: ds is open */
    int *indexes = NULL;
    FILE *f = NULL;
    int rc = 1;

    if (dz_data_options_read(a->datacfg, &opt, &err) != 0)
        goto out;
    int top = a->top > 0 ? a->top : (opt.top > 0 ? opt.top : 1);
    if (open_set(a, &opt, &ds, &set, &labels, &err) != 0)
        goto out;
    const bool rows = a->out || set || ends_with(a->image, ".txt");
    const bool json = ends_with(a->out, ".jsonl");
    if (!rows && a->batch > 1)
        fprintf(stderr,
                "darknetp: note: -batch %d unused: predict runs one image at a time "
                "unless IMAGE is a .txt list or a set, or -out is given\n",
                a->batch);
    if (dz_classifier_load_network(a, rows ? PREDICT_BATCH : 1, rows, false, top, &model, &pn,
                                   &err) != 0)
        goto out;
    const char *names_path = opt.names ? opt.names : opt.labels;
    if (dz_classifier_read_list(names_path, "names or labels", &names, &err) != 0)
        goto out;
    if (rows) {
        struct predict_source src = {set ? NULL : &paths, set ? &ds : NULL};
        if (!set && predict_paths(a->image, &paths, &err) != 0)
            goto out;
        f = a->out ? fopen(a->out, "w") : stdout;
        if (!f) {
            dk_fail(&err, "%s: cannot create: %s", a->out, strerror(errno));
            goto out;
        }
        rc = predict_rows(&pn, &model, &src, &names, f, json, &err) != 0;
        if (a->out && dz_classifier_close_out(f, a->out, rc ? NULL : &err) != 0)
            rc = 1;
        goto out;
    }
    if (top1_only(&pn, a))
        fprintf(stderr, "darknetp: note: only the top-1 label leaves the TEE: 100.00%% marks "
                        "that label, it is not a confidence (-tee_output scores shows them when "
                        "the model's policy allows)\n");
    size_t outputs = pn.shapes->layers[dnn_network_output_index(pn.shapes)].outputs;
    if ((size_t)top > outputs)
        top = (int)outputs;
    indexes = malloc((size_t)top * sizeof(int));
    if (!indexes) {
        dk_fail(&err, "out of memory");
        goto out;
    }
    if (a->image) {
        if (predict_one(&pn, &model, a->image, &names, top, a->tee_output, indexes, &err) != 0)
            goto out;
        rc = 0;
        goto out;
    }
    rc = predict_stdin(&pn, &model, &names, top, a->tee_output, indexes);
    goto done;
out:
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
done:
    free(indexes);
    if (set)
        dk_dataset_close(&ds);
    dk_list_free(&labels);
    dk_list_free(&paths);
    dk_list_free(&names);
    dz_pnet_close(&pn);
    dk_model_free(&model);
    dz_data_options_free(&opt);
    return rc;
}
