/*
 * mia.c - `darknetp classifier mia`: a membership-inference evaluation of exactly what
 * leaves the TEE under a partition and output policy. Known members (the data file's
 * `train` or `mia_members`) and non-members (`valid` or `mia_nonmembers`) go through the
 * same prediction path as `classifier valid` (dz_pnet_predict: with a partition through
 * the TA, receiving only what its policy lets out), and each attack scores every image
 * from that output alone:
 *   - when scores leave: loss (log p_truth), max-score, entropy, and Song & Mittal's
 *     modified entropy, -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i);
 *   - always: label-only (is the top label right?), label-rank when several labels leave
 *     (the truth's position among them), and with -queries K the augmented-query attack
 *     (the share of the image and K noisy, optionally shifted copies labelled right);
 *   - with -grad: gradient-norm, from the deltas a training session returns (grad_probe).
 * The statistics are mia_stats.c's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tee_client_api.h>

#include "darknet/dataset.h"
#include "darknet/user_file.h"
#include "host/classifier.h"
#include "host/csv.h"
#include "host/mia_plot.h"
#include "host/mia_stats.h"
#include "host/partition.h"
#include "host/progress.h"

enum mia_attack {
    ATTACK_LOSS,
    ATTACK_MAX_SCORE,
    ATTACK_ENTROPY,
    ATTACK_MENTR,
    ATTACK_LABEL,
    ATTACK_RANK,
    ATTACK_AUGMENTED,
    ATTACK_GRADIENT,
    ATTACK_COUNT
};

/* Every attack has a name: a missing one fails to compile rather than printing NULL. */
static const char *const attack_names[] = {
    "loss",       "max-score",  "entropy",         "modified-entropy",
    "label-only", "label-rank", "augmented-query", "gradient-norm"};
_Static_assert(sizeof attack_names / sizeof attack_names[0] == ATTACK_COUNT, "a name per attack");

/* Images per forward, as valid uses. */
#define MIA_BATCH 100
/* Default members (and non-members) when -n is not given. */
#define MIA_DEFAULT_N 1000
/*
 * Augmented queries: Gaussian noise of sigma MIA_NOISE on every copy, plus a shift of up to
 * -query_shift pixels each way (default 0). Measured on the Fashion-MNIST target of
 * tools/mia-demo.sh at its epoch-50 checkpoint (300 + 300 images, 15 queries, layers 4..6 in
 * the TEE under top1, where one label gives AUC 0.583): noise 0.05,
 * 0.1, 0.15, 0.2 alone give 0.600, 0.607, 0.605, 0.586; with shifts of up to 1 pixel 0.553,
 * 2 pixels 0.544, 1 pixel on every fourth copy 0.568: a model trained without shifts fails
 * on shifted members and non-members alike. Models trained with shifts may differ.
 */
#define MIA_NOISE 0.1f
/* Probabilities are clamped to this before a log, so a confident 0 stays finite. */
#define MIA_TINY 1e-30

/* One side of the evaluation: a data set and the items drawn from it. */
struct mia_set {
    const char *source; /* the data file's key it came from, for messages */
    struct dk_dataset ds;
    bool open;
    size_t *pick; /* (n) item indices, in the random order they were drawn */
};

struct mia_run {
    struct dz_data_options opt;
    struct dk_model model;
    struct dz_pnet pn;
    struct dk_list labels;
    struct mia_set set[2]; /* members, non-members */
    size_t n;              /* per set; sample s < n is member pick[s], else non-member */
    int classes, queries;
    bool have_scores, have_ranks; /* what left the TEE */
    bool have_gradients;          /* -grad: the training interface answered */
    bool *member;                 /* (2n) */
    int *truth, *pred;            /* (2n) */
    unsigned *right;              /* (2n) queries (the image itself included) labelled right */
    double *score[ATTACK_COUNT];  /* (2n) each: higher = "more likely a member" */
};

static struct mia_set *set_of(struct mia_run *r, size_t s, size_t *item)
{
    struct mia_set *set = &r->set[s >= r->n];
    *item = set->pick[s % r->n];
    return set;
}

/* Opens one side: the mia_* key when the data file has it, else train / valid. */
static int open_set(struct mia_run *r, int side, struct dk_error *err)
{
    const struct dz_data_options *o = &r->opt;
    const char *images = side == 0 ? o->mia_members : o->mia_nonmembers;
    const char *labels = side == 0 ? o->mia_members_labels : o->mia_nonmembers_labels;
    const char *key = side == 0 ? "mia_members" : "mia_nonmembers";
    if (!images) {
        images = side == 0 ? o->train : o->valid;
        labels = side == 0 ? o->train_labels : o->valid_labels;
        key = side == 0 ? "train" : "valid";
    }
    if (!images)
        return dk_fail(err, "the data file has neither '%s' nor '%s'",
                       side == 0 ? "mia_members" : "mia_nonmembers", side == 0 ? "train" : "valid");
    r->set[side].source = key;
    if (dk_dataset_open(&r->set[side].ds, images, labels, r->labels.items, r->labels.n, r->classes,
                        err) != 0)
        return -1;
    r->set[side].open = true;
    return 0;
}

/* Draws n distinct items of a set with a partial Fisher-Yates shuffle; each needs a class. */
static int draw(struct mia_set *set, size_t n, struct dnn_rng *rng, struct dk_error *err)
{
    size_t count = dk_dataset_count(&set->ds);
    size_t *all = malloc(count * sizeof *all);
    set->pick = malloc(n * sizeof *set->pick);
    if (!all || !set->pick) {
        free(all);
        return dk_fail(err, "out of memory for %zu items", count);
    }
    for (size_t i = 0; i < count; i++)
        all[i] = i;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)(dnn_rng_u32(rng) % (uint32_t)(count - i));
        size_t t = all[i];
        all[i] = all[j];
        all[j] = t;
        set->pick[i] = all[i];
    }
    free(all);
    char name[256];
    for (size_t i = 0; i < n; i++)
        if (dk_dataset_class(&set->ds, set->pick[i]) < 0)
            return dk_fail(err, "%s has no class: every sample needs one",
                           dk_dataset_name(&set->ds, set->pick[i], name, sizeof name));
    return 0;
}

static int alloc_samples(struct mia_run *r, struct dk_error *err)
{
    size_t total = 2 * r->n;
    r->member = calloc(total, sizeof *r->member);
    r->truth = calloc(total, sizeof *r->truth);
    r->pred = calloc(total, sizeof *r->pred);
    r->right = calloc(total, sizeof *r->right);
    bool ok = r->member && r->truth && r->pred && r->right;
    for (int k = 0; k < ATTACK_COUNT; k++)
        ok = (r->score[k] = calloc(total, sizeof(double))) != NULL && ok;
    if (!ok)
        return dk_fail(err, "out of memory for %zu samples", total);
    for (size_t s = 0; s < total; s++) {
        size_t item;
        struct mia_set *set = set_of(r, s, &item);
        r->member[s] = s < r->n;
        r->truth[s] = dk_dataset_class(&set->ds, item);
    }
    return 0;
}

/* The data file, the network, both sets and the draw of n of each. */
static int mia_open(struct mia_run *r, const struct dz_classifier_args *a, struct dk_error *err)
{
    if (dz_data_options_read(a->datacfg, &r->opt, err) != 0)
        return -1;
    r->classes = r->opt.classes;
    if (r->classes <= 0)
        return dk_fail(err, "%s: 'classes' must be set to the number of classes", a->datacfg);
    int top = dz_classifier_top_labels(a, &r->opt);
    if (dz_classifier_load_network(a, MIA_BATCH, false, false, top, &r->model, &r->pn, err) != 0)
        return -1;
    size_t outputs = r->pn.shapes->layers[dnn_network_output_index(r->pn.shapes)].outputs;
    if (outputs != (size_t)r->classes)
        return dk_fail(err, "%s: the network has %zu outputs but the data file says classes=%d",
                       a->cfgfile, outputs, r->classes);
    if (r->opt.labels && dk_list_read(r->opt.labels, &r->labels, err) != 0)
        return -1;
    if (open_set(r, 0, err) != 0 || open_set(r, 1, err) != 0)
        return -1;
    size_t nm = dk_dataset_count(&r->set[0].ds), nn = dk_dataset_count(&r->set[1].ds);
    r->n = a->mia_n > 0 ? (size_t)a->mia_n : MIA_DEFAULT_N;
    if (a->mia_n <= 0 && (nm < r->n || nn < r->n))
        r->n = nm < nn ? nm : nn;
    if (r->n < 2 || nm < r->n || nn < r->n)
        return dk_fail(err,
                       "-n %zu: needs at least 2 and at most the %zu members (%s) and %zu "
                       "non-members (%s)",
                       r->n, nm, r->set[0].source, nn, r->set[1].source);
    r->queries = a->mia_queries;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, a->seed ^ 0x4D1Aull);
    if (draw(&r->set[0], r->n, &rng, err) != 0 || draw(&r->set[1], r->n, &rng, err) != 0)
        return -1;
    return alloc_samples(r, err);
}

static void mia_close(struct mia_run *r)
{
    for (int k = 0; k < ATTACK_COUNT; k++)
        free(r->score[k]);
    free(r->right);
    free(r->pred);
    free(r->truth);
    free(r->member);
    for (int i = 0; i < 2; i++) {
        if (r->set[i].open)
            dk_dataset_close(&r->set[i].ds);
        free(r->set[i].pick);
    }
    dk_list_free(&r->labels);
    dz_pnet_close(&r->pn);
    dk_model_free(&r->model);
    dz_data_options_free(&r->opt);
    memset(r, 0, sizeof *r);
}

/*
 * Query q >= 1 of sample s: the image shifted by up to `shift` pixels each way (edges
 * repeated) plus Gaussian noise, clamped to [0, 1]. The stream is keyed by seed, s and
 * q alone, so a run's queries do not depend on the batch size.
 */
static void augment(const float *in, float *out, int w, int h, int c, int shift, uint64_t seed,
                    size_t s, int q)
{
    struct dnn_rng rng;
    dnn_rng_seed(&rng, seed * 0x9E3779B97F4A7C15ull + (uint64_t)s * 1000003u + (uint64_t)q);
    uint32_t span = 2 * (uint32_t)shift + 1;
    int dx = (int)(dnn_rng_u32(&rng) % span) - shift, dy = (int)(dnn_rng_u32(&rng) % span) - shift;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sy = y - dy < 0 ? 0 : (y - dy >= h ? h - 1 : y - dy);
                int sx = x - dx < 0 ? 0 : (x - dx >= w ? w - 1 : x - dx);
                float v = in[(k * h + sy) * w + sx] + MIA_NOISE * dnn_rng_normal(&rng);
                out[(k * h + y) * w + x] = v < 0 ? 0 : (v > 1 ? 1 : v);
            }
}

/* The score attacks of one image from its probabilities p (classes) and truth y. */
static void score_attacks(struct mia_run *r, size_t s, const float *p, int y)
{
    double py = p[y] > MIA_TINY ? p[y] : MIA_TINY, maxp = 0, plogp = 0, mentr = 0;
    for (int i = 0; i < r->classes; i++) {
        double pi = p[i] > MIA_TINY ? p[i] : MIA_TINY;
        maxp = p[i] > maxp ? p[i] : maxp;
        plogp += p[i] > 0 ? p[i] * log(pi) : 0;
        if (i != y) {
            double rest = 1 - (double)p[i] > MIA_TINY ? 1 - (double)p[i] : MIA_TINY;
            mentr -= p[i] * log(rest);
        }
    }
    mentr -= (1 - py) * log(py);
    r->score[ATTACK_LOSS][s] = log(py);
    r->score[ATTACK_MAX_SCORE][s] = maxp;
    r->score[ATTACK_ENTROPY][s] = plogp;
    r->score[ATTACK_MENTR][s] = -mentr;
}

/* Records query q of sample s from slot j of a prediction. */
static void record(struct mia_run *r, const struct dz_pnet_output *o, size_t j, size_t s, int q)
{
    int y = r->truth[s], top = -1;
    if (o->scores)
        dnn_top_k(o->scores + j * o->outputs, (size_t)r->classes, 1, &top);
    else if (o->labels[j].count > 0)
        top = o->labels[j].labels[0];
    r->right[s] += top == y;
    if (q > 0)
        return;
    r->pred[s] = top;
    if (o->scores) {
        r->have_scores = true;
        score_attacks(r, s, o->scores + j * o->outputs, y);
        return;
    }
    const struct dz_prediction *p = &o->labels[j];
    uint32_t pos = 0;
    while (pos < p->count && pos < DZ_MAX_LABELS && p->labels[pos] != y)
        pos++;
    r->have_ranks = r->have_ranks || p->count > 1;
    r->score[ATTACK_RANK][s] = -(double)pos;
}

/* Fills slot j of x with query q of sample s; *base caches the sample's own image. */
static int load_query(struct mia_run *r, const struct dz_classifier_args *a, size_t s, int q,
                      float *base, float *x, struct dk_error *err)
{
    const struct dnn_net_config *c = &r->model.net;
    size_t inputs = dz_pnet_inputs(&r->pn), item;
    struct mia_set *set = set_of(r, s, &item);
    if (q == 0) {
        if (dk_dataset_eval_image(&set->ds, item, c->w, c->h, c->c, base, err) != 0)
            return -1;
        memcpy(x, base, inputs * sizeof(float));
        return 0;
    }
    augment(base, x, c->w, c->h, c->c, a->mia_shift, a->seed, s, q);
    return 0;
}

/* Every sample and its queries through the network, MIA_BATCH at a time, sample-major. */
static int run_queries(struct mia_run *r, const struct dz_classifier_args *a, struct dk_error *err)
{
    const size_t inputs = dz_pnet_inputs(&r->pn), per = (size_t)r->queries + 1;
    const size_t jobs = 2 * r->n * per;
    float *x = malloc(MIA_BATCH * inputs * sizeof(float)), *base = malloc(inputs * sizeof(float));
    int rc = -1;
    if (!x || !base) {
        dk_fail(err, "out of memory");
        goto out;
    }
    struct dz_progress prog;
    dz_progress_start(&prog, (jobs + MIA_BATCH - 1) / MIA_BATCH, 0, MIA_BATCH);
    for (size_t start = 0; start < jobs; start += MIA_BATCH) {
        size_t count = jobs - start < MIA_BATCH ? jobs - start : MIA_BATCH;
        memset(x, 0, MIA_BATCH * inputs * sizeof(float));
        for (size_t j = 0; j < count; j++)
            if (load_query(r, a, (start + j) / per, (int)((start + j) % per), base, x + j * inputs,
                           err) != 0)
                goto out;
        struct dz_pnet_output o;
        if (dz_pnet_predict(&r->pn, x, &o, err) != 0)
            goto out;
        for (size_t j = 0; j < count; j++)
            record(r, &o, j, (start + j) / per, (int)((start + j) % per));
        dz_progress_update(&prog, start / MIA_BATCH + 1);
    }
    dz_progress_clear(&prog);
    rc = 0;
out:
    free(base);
    free(x);
    return rc;
}

/*
 * -grad: what a training session reveals. The normal world of a partition receives, per
 * image, the delta at layer A's input from every BACKWARD (DESIGN.md, invariant 1); its L2
 * norm is small for images the model already fits, so -norm scores membership. The probe
 * opens a training session of its own with learning rate, momentum and decay 0 (asking less
 * than any policy allows, so the weights it measures do not move; batch-normalisation
 * statistics of this session do, and it saves nothing), at the cfg's batch and subdivisions,
 * with members and non-members interleaved so each batch holds both. The TA enforces the
 * model's policy: a model that allows inference only is refused, which is the result.
 */
/*
 * A sealed model carries its owner's policy, and the TA is the one to enforce it: the blob
 * goes to this training session's TA as it is, before darknetp's own reading of its header
 * (which would name the rule first). The inference session of the same run has loaded this
 * blob, so it is this model on this device, not rolled back: ACCESS_DENIED is the policy.
 * A plain file has no owner policy (it is the device's own model). Returns 0 when the TA
 * accepts or the file is plain, else -1 with the TA's answer in err.
 */
static int ta_allows_training(struct dz_pnet *pn, const char *weights, struct dk_error *err)
{
    char tz[4200];
    if (snprintf(tz, sizeof tz, "%s.tz", weights) >= (int)sizeof tz)
        return dk_fail(err, "%s: path too long", weights);
    if (access(tz, F_OK) != 0)
        return 0;
    const uint64_t payload =
        4 * dz_range_param_floats(pn->shapes, (size_t)pn->first, (size_t)pn->last);
    char *blob = NULL;
    size_t size = 0;
    uint64_t seen = 0;
    uint32_t refused = 0;
    if (dk_user_file_read(tz, "a sealed blob",
                          payload + sizeof(struct dz_sealed_header) + DZ_SEALED_TAG_BYTES, &blob,
                          &size, err) != 0)
        return -1;
    int rc = dz_tee_load_sealed(pn->tee, (const uint8_t *)blob, size, &seen, &refused, err);
    free(blob);
    if (rc != 0 && refused == TEEC_ERROR_ACCESS_DENIED)
        return dk_fail(err,
                       "refused by the TA (TEEC_ERROR_ACCESS_DENIED): %s's policy does not "
                       "allow this training session",
                       tz);
    if (rc != 0 && refused)
        return dk_fail(err, "refused by the TA (TEEC_ERROR_SECURITY): %s", tz);
    return rc;
}

static int grad_open(const struct dz_classifier_args *a, int top, struct dk_model *m,
                     struct dz_pnet *pn, struct dk_error *err)
{
    if (dk_parse_network(a->cfgfile, m, err) != 0 || dz_weights_precheck(m, a->weights, err) != 0)
        return -1;
    m->net.learning_rate = 0;
    m->net.momentum = 0;
    m->net.decay = 0;
    struct dz_pnet_opts o = {.first = a->pp_start,
                             .last = a->pp_end,
                             .training = true,
                             .seed = a->seed,
                             .policy = a->tee_output,
                             .top_k = top,
                             .parallel = a->parallel,
                             .scratch = &a->scratch};
    dz_streamed_save_cut(a->weights, a->pp_start, a->pp_end, &o.stream_save_bytes);
    char tz[4200];
    if (a->weights && snprintf(tz, sizeof tz, "%s.tz", a->weights) < (int)sizeof tz)
        o.stream_save_file = tz;
    if (dz_pnet_open(pn, m, &o, err) != 0 || ta_allows_training(pn, a->weights, err) != 0)
        return -1;
    return dz_pnet_load_weights(pn, a->weights, false, err);
}

/* The delta norms of one batch: samples order[start..start+count) at slots 0..count-1. */
static int grad_batch(struct mia_run *r, struct dz_pnet *pn, const size_t *order, size_t start,
                      size_t count, float *x, float *y, struct dk_error *err)
{
    const struct dnn_net_config *c = &r->model.net;
    const size_t inputs = dz_pnet_inputs(pn), batch = (size_t)pn->batch;
    memset(x, 0, batch * inputs * sizeof(float));
    memset(y, 0, batch * (size_t)r->classes * sizeof(float));
    for (size_t j = 0; j < count; j++) {
        size_t s = order[start + j], item;
        struct mia_set *set = set_of(r, s, &item);
        if (dk_dataset_eval_image(&set->ds, item, c->w, c->h, c->c, x + j * inputs, err) != 0)
            return -1;
        y[j * (size_t)r->classes + (size_t)r->truth[s]] = 1;
    }
    float loss = 0;
    bool known = false;
    if (dz_pnet_train_batch(pn, x, y, &loss, &known, err) != 0)
        return -1;
    const size_t width = pn->shapes->layers[pn->first].inputs;
    const float *delta = dz_tee_delta_out(pn->tee);
    for (size_t j = 0; j < count; j++) {
        double sum = 0;
        for (size_t i = 0; i < width; i++)
            sum += (double)delta[j * width + i] * (double)delta[j * width + i];
        r->score[ATTACK_GRADIENT][order[start + j]] = -sqrt(sum);
    }
    return 0;
}

/* Runs the probe; prints why when there is nothing to probe or the TEE refuses. */
static int grad_probe(struct mia_run *r, const struct dz_classifier_args *a, struct dk_error *err)
{
    if (!r->pn.tee || a->pp_start == 0) {
        printf("gradient probe: %s\n",
               r->pn.tee ? "nothing leaves a training step (the whole network is in the TEE)"
                         : "no TEE partition: the normal world holds every gradient");
        return 0;
    }
    struct dk_model m = {0};
    struct dz_pnet pn = {0};
    struct dk_error why = {{0}};
    size_t *order = malloc(2 * r->n * sizeof *order);
    float *x = NULL, *y = NULL;
    int rc = -1;
    if (!order) {
        dk_fail(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < 2 * r->n; i++)
        order[i] = i % 2 == 0 ? i / 2 : r->n + i / 2; /* member, non-member, member, ... */
    if (grad_open(a, dz_classifier_top_labels(a, &r->opt), &m, &pn, &why) != 0) {
        printf("gradient probe: refused: %s\n", why.msg);
        rc = 0;
        goto out;
    }
    const size_t batch = (size_t)pn.batch;
    x = malloc(batch * dz_pnet_inputs(&pn) * sizeof(float));
    y = malloc(batch * (size_t)r->classes * sizeof(float));
    if (!x || !y) {
        dk_fail(err, "out of memory");
        goto out;
    }
    for (size_t start = 0; start < 2 * r->n; start += batch) {
        size_t count = 2 * r->n - start < batch ? 2 * r->n - start : batch;
        if (grad_batch(r, &pn, order, start, count, x, y, &why) != 0) {
            printf("gradient probe: refused: %s\n", why.msg);
            rc = 0;
            goto out;
        }
    }
    r->have_gradients = true;
    rc = 0;
out:
    free(y);
    free(x);
    free(order);
    dz_pnet_close(&pn);
    dk_model_free(&m);
    return rc;
}

static bool offered(const struct mia_run *r, int k)
{
    if (k <= ATTACK_MENTR)
        return r->have_scores;
    if (k == ATTACK_RANK)
        return !r->have_scores && r->have_ranks;
    if (k == ATTACK_AUGMENTED)
        return r->queries > 0;
    if (k == ATTACK_GRADIENT)
        return r->have_gradients;
    return true;
}

static void fill_label_attacks(struct mia_run *r)
{
    for (size_t s = 0; s < 2 * r->n; s++) {
        r->score[ATTACK_LABEL][s] = r->pred[s] == r->truth[s];
        r->score[ATTACK_AUGMENTED][s] = (double)r->right[s] / (double)(r->queries + 1);
    }
}

static double accuracy(const struct mia_run *r, int side)
{
    size_t right = 0;
    for (size_t i = 0; i < r->n; i++)
        right += r->pred[side * r->n + i] == r->truth[side * r->n + i];
    return (double)right / (double)r->n;
}

/* One line on what the attacks see. */
static void describe(const struct mia_run *r, const struct dz_classifier_args *a, char *buf,
                     size_t size)
{
    static const char *const policy[] = {"top1", "topk", "rank", "scores"};
    if (!r->pn.tee)
        snprintf(buf, size, "the scores (no TEE partition)");
    else if (r->have_scores)
        snprintf(buf, size, "the scores (layers %d..%d in the TEE)", a->pp_start, a->pp_end);
    else
        snprintf(buf, size, "labels only (layers %d..%d in the TEE, -tee_output %s)", a->pp_start,
                 a->pp_end,
                 (unsigned)a->tee_output < DZ_OUTPUT_COUNT ? policy[a->tee_output] : "?");
}

static int write_csv(struct mia_run *r, const char *path, struct dk_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return dk_fail(err, "%s: cannot create", path);
    fprintf(f, "set,item,image,truth,predicted,correct");
    for (int k = 0; k < ATTACK_COUNT; k++)
        if (offered(r, k))
            fprintf(f, ",%s", attack_names[k]);
    fprintf(f, "\n");
    char name[4096];
    for (size_t s = 0; s < 2 * r->n; s++) {
        size_t item;
        struct mia_set *set = set_of(r, s, &item);
        fprintf(f, "%s,%zu,", r->member[s] ? "member" : "nonmember", item);
        dz_csv_field(f, dk_dataset_name(&set->ds, item, name, sizeof name));
        fprintf(f, ",%d,%d,%d", r->truth[s], r->pred[s], r->pred[s] == r->truth[s]);
        for (int k = 0; k < ATTACK_COUNT; k++)
            if (offered(r, k))
                fprintf(f, ",%.9g", r->score[k][s]);
        fprintf(f, "\n");
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dk_fail(err, "%s: write failed", path);
    return 0;
}

/* The ROC curve of every offered attack into one SVG. */
static int write_plot(struct mia_run *r, const char *path, const char *title, struct dk_error *err)
{
    struct dz_roc_curve curves[ATTACK_COUNT];
    struct dz_roc_point *pts[ATTACK_COUNT] = {0};
    size_t n_curves = 0, total = 2 * r->n;
    int rc = -1;
    for (int k = 0; k < ATTACK_COUNT; k++) {
        if (!offered(r, k))
            continue;
        pts[n_curves] = malloc((total + 1) * sizeof(struct dz_roc_point));
        if (!pts[n_curves]) {
            dk_fail(err, "out of memory");
            goto out;
        }
        size_t count = dz_mia_roc(r->score[k], r->member, total, pts[n_curves]);
        curves[n_curves] = (struct dz_roc_curve){attack_names[k], pts[n_curves], count,
                                                 dz_mia_auc_of(pts[n_curves], count)};
        n_curves++;
    }
    rc = dz_roc_plot_svg(path, title, curves, n_curves, err);
out:
    for (size_t i = 0; i < ATTACK_COUNT; i++)
        free(pts[i]);
    return rc;
}

/*
 * Prints the table; returns 3 when an attack's AUC exceeds a->max_auc, -1 on error, else 0.
 * The held-out column needs samples of both classes at even and odd positions: members
 * come first, non-members after, so with n >= 2 each half has both.
 */
static int report(struct mia_run *r, const struct dz_classifier_args *a, const char *leaves,
                  struct dk_error *err)
{
    double acc_m = accuracy(r, 0), acc_n = accuracy(r, 1);
    printf("members: %zu from '%s', accuracy %.2f%%; non-members: %zu from '%s', accuracy "
           "%.2f%%\n",
           r->n, r->set[0].source, acc_m * 100, r->n, r->set[1].source, acc_n * 100);
    printf("what leaves: %s\n", leaves);
    printf("label-only floor: 0.5 + (acc_member - acc_nonmember) / 2 = %.4f\n",
           0.5 + (acc_m - acc_n) / 2);
    printf("%-18s %7s %9s %9s %10s %12s\n", "attack", "AUC", "best-bal", "held-out", "TPR@1%FPR",
           "TPR@0.1%FPR");
    int rc = 0;
    for (int k = 0; k < ATTACK_COUNT; k++) {
        if (!offered(r, k))
            continue;
        struct dz_mia_summary s;
        if (dz_mia_summarize(r->score[k], r->member, 2 * r->n, &s) != 0)
            return dk_fail(err, "out of memory for the statistics");
        printf("%-18s %7.4f %9.4f %9.4f %10.4f %12.4f\n", attack_names[k], s.auc, s.best_balanced,
               s.holdout, s.tpr_at_1pct, s.tpr_at_01pct);
        if (a->max_auc >= 0 && s.auc > a->max_auc) {
            fprintf(stderr, "darknetp: mia: the %s attack's AUC %.4f is above -max_auc %g\n",
                    attack_names[k], s.auc, a->max_auc);
            rc = 3;
        }
    }
    if (!r->have_scores)
        printf("(no score attack: no scores leave the TEE)\n");
    fflush(stdout);
    return rc;
}

int dz_classifier_mia(const struct dz_classifier_args *a)
{
    struct dk_error err = {{0}};
    struct mia_run r = {0};
    int rc = 1;
    if (mia_open(&r, a, &err) != 0 || run_queries(&r, a, &err) != 0)
        goto out;
    if (a->mia_grad && grad_probe(&r, a, &err) != 0)
        goto out;
    fill_label_attacks(&r);
    char leaves[160];
    describe(&r, a, leaves, sizeof leaves);
    int status = report(&r, a, leaves, &err);
    if (status < 0)
        goto out;
    if (a->csv && write_csv(&r, a->csv, &err) != 0)
        goto out;
    if (a->plot && write_plot(&r, a->plot, leaves, &err) != 0)
        goto out;
    rc = status;
out:
    if (rc == 1)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    mia_close(&r);
    return rc;
}
