/*
 * predict.c - `darknetp classifier predict`: darknet's top-k lines for one image or paths
 * from stdin, and machine-readable rows (CSV, or JSON lines) for lists and IDX sets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "darknet/dataset.h"
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
        for (uint32_t k = 0; k < p->count && k < (uint32_t)top; k++) {
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
    if (dk_image_load(path, m->net.c, &im, err) != 0)
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

/* One CSV row: the best label, the ranked labels when several leave, the scores if they do. */
static void predict_row(FILE *f, const char *path, const struct dz_pnet_output *o, size_t j,
                        const struct dk_list *names)
{
    int best = -1;
    if (o->scores)
        dnn_top_k(o->scores + j * o->outputs, o->outputs, 1, &best);
    else if (o->labels[j].count > 0)
        best = o->labels[j].labels[0];
    dz_csv_field(f, path);
    fprintf(f, ",%d,", best);
    dz_csv_field(f, best >= 0 && (size_t)best < names->n ? names->items[best] : "?");
    if (o->labels && o->labels[0].count > 1) {
        fputc(',', f);
        for (uint32_t k = 0; k < o->labels[j].count && k < DZ_MAX_LABELS; k++)
            fprintf(f, "%s%d", k ? " " : "", o->labels[j].labels[k]);
    }
    for (size_t c = 0; o->scores && c < o->outputs; c++)
        fprintf(f, ",%.9g", (double)o->scores[j * o->outputs + c]);
    fprintf(f, "\n");
}

/* Loads image i of paths as predict does (letterboxed) into x. */
static int predict_load(const struct dk_model *m, const char *path, float *x, struct dk_error *err)
{
    struct dk_image im = {0}, r = {0};
    if (dk_image_load(path, m->net.c, &im, err) != 0)
        return -1;
    int rc = dk_image_prepare_predict(&im, m->net.w, m->net.h, &r, err);
    dk_image_free(&im);
    if (rc == 0)
        memcpy(x, r.data, (size_t)m->net.w * (size_t)m->net.h * (size_t)m->net.c * sizeof(float));
    dk_image_free(&r);
    return rc;
}

/* predict -out or a .txt list: CSV rows, PREDICT_BATCH images per forward. */
static int predict_csv(struct dz_pnet *pn, const struct dk_model *m, const struct dk_list *paths,
                       const struct dk_list *names, FILE *f, struct dk_error *err)
{
    const size_t inputs = dz_pnet_inputs(pn);
    float *x = calloc((size_t)PREDICT_BATCH * inputs, sizeof(float));
    if (!x)
        return dk_fail(err, "out of memory");
    int rc = -1;
    for (size_t start = 0; start < paths->n; start += PREDICT_BATCH) {
        size_t count = paths->n - start < PREDICT_BATCH ? paths->n - start : PREDICT_BATCH;
        for (size_t j = 0; j < count; j++)
            if (predict_load(m, paths->items[start + j], x + j * inputs, err) != 0)
                goto out;
        struct dz_pnet_output o;
        if (dz_pnet_predict(pn, x, &o, err) != 0)
            goto out;
        if (start == 0)
            predict_header(f, &o, names);
        for (size_t j = 0; j < count; j++)
            predict_row(f, paths->items[start + j], &o, j, names);
    }
    rc = 0;
out:
    free(x);
    return rc;
}

int dz_classifier_predict(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct dz_data_options opt = {0};
    struct dk_model model = {0};
    struct dz_pnet pn = {0};
    struct dk_list names = {0}, paths = {0};
    int *indexes = NULL;
    FILE *csv = NULL;
    int rc = 1;

    if (dz_data_options_read(a->datacfg, &opt, &err) != 0)
        goto out;
    int top = a->top > 0 ? a->top : (opt.top > 0 ? opt.top : 1);
    size_t len = a->image ? strlen(a->image) : 0;
    bool rows = a->out || (len > 4 && strcmp(a->image + len - 4, ".txt") == 0);
    if (dz_classifier_load_network(a, rows ? PREDICT_BATCH : 1, false, top, &model, &pn, &err) != 0)
        goto out;
    const char *names_path = opt.names ? opt.names : opt.labels;
    if (dz_classifier_read_list(names_path, "names or labels", &names, &err) != 0)
        goto out;
    if (rows) {
        if (predict_paths(a->image, &paths, &err) != 0)
            goto out;
        csv = a->out ? fopen(a->out, "w") : stdout;
        if (!csv) {
            dk_fail(&err, "%s: cannot create: %s", a->out, strerror(errno));
            goto out;
        }
        rc = predict_csv(&pn, &model, &paths, &names, csv, &err) != 0;
        if (a->out && dz_classifier_close_out(csv, a->out, rc ? NULL : &err) != 0)
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
    dk_list_free(&paths);
    dk_list_free(&names);
    dz_pnet_close(&pn);
    dk_model_free(&model);
    dz_data_options_free(&opt);
    return rc;
}
