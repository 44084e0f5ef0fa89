/*
 * parse_network.c - darknet .cfg -> struct dk_model (see parse_network.h).
 *
 * Each parse_<kind> reads the keys pjreddie/darknet's parse_<kind> reads, with
 * the same defaults, then checks values the engine could not use. Every section
 * ends with dk_cfg_check_used, the strict form of darknet's option_unused().
 */
#include "darknet/parse_network.h"
#include "darknet/mix.h"
#include "darknet/user_file.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Line of key in sec, or of the section header when the key is absent. */
static int line_of(struct dk_cfg_section *sec, const char *key)
{
    for (size_t i = 0; i < sec->n_opts; i++) {
        if (strcmp(sec->opts[i].key, key) == 0)
            return sec->opts[i].line;
    }
    return sec->line;
}

/* Keys darknet reads for features this engine lacks: accepted only at the
 * value that leaves the feature off. */
static int neutral_int(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                       int neutral, struct dk_error *err)
{
    int v = neutral;
    if (dk_cfg_get_int(cfg, sec, key, neutral, &v, err) != 0)
        return -1;
    if (v != neutral)
        return dk_fail(err, "%s:%d: key '%s=%d' in [%s] is not supported (only %s=%d)", cfg->path,
                       line_of(sec, key), key, v, sec->name, key, neutral);
    return 0;
}

static int neutral_float(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                         float neutral, struct dk_error *err)
{
    float v = neutral;
    if (dk_cfg_get_float(cfg, sec, key, neutral, &v, err) != 0)
        return -1;
    if (v != neutral)
        return dk_fail(err, "%s:%d: key '%s=%s' in [%s] is not supported (only %s=%g)", cfg->path,
                       line_of(sec, key), key, dk_cfg_get_str(sec, key, ""), sec->name, key,
                       (double)neutral);
    return 0;
}

static int get_activation(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *def,
                          enum dnn_activation *out, struct dk_error *err)
{
    const char *name = dk_cfg_get_str(sec, "activation", def);
    if (!dnn_activation_from_name(name, out))
        return dk_fail(err, "%s:%d: key 'activation': unknown activation '%s' in [%s]", cfg->path,
                       line_of(sec, "activation"), name, sec->name);
    return 0;
}

/* A failed check on a value already read: "path:line: key 'k' in [s]: <why>".
 * Used inside functions that have cfg, sec and err in scope. */
#define BAD(cond, key, fmt, ...)                                                                   \
    do {                                                                                           \
        if (cond)                                                                                  \
            return dk_fail(err, "%s:%d: key '%s' in [%s]: " fmt, cfg->path, line_of(sec, key),     \
                           key, sec->name, __VA_ARGS__);                                           \
    } while (0)

/*
 * Keys that one of the two darknet trees (pjreddie's, AlexeyAB's) reads and
 * that change what it computes, for features this engine lacks. An unknown key
 * only draws a warning, as in darknet; these must hold their neutral value (or
 * be absent), or the file is refused: ignoring them would change the results
 * without a word. A key given for a layer kind that does not read it (keyed by
 * section name, "" = every layer) is caught the same way.
 */
struct neutral_key {
    const char *section; /* section name it applies to; "" for every layer section */
    const char *key;
    float neutral; /* the value that leaves the feature off */
};

static const struct neutral_key net_neutral[] = {
    {"", "letter_box", 0}, {"", "contrastive", 0}, {"", "unsupervised", 0},
    {"", "track", 0},      {"", "attention", 0},
};

/* [net] keys of AlexeyAB's that only change how it trains and that darknetp does not
 * implement (input noise, adversarial steps, weight averaging, mixed precision; mixup,
 * cutmix, mosaic, blur and label_smooth_eps are implemented): a network that sets them
 * predicts as any other, so valid and predict go on with a note and only train refuses them. */
static const struct neutral_key train_only[] = {
    {"", "gaussian_noise", 0},    {"", "adversarial_lr", 0}, {"", "ema_alpha", 0},
    {"", "dynamic_minibatch", 0}, {"", "loss_scale", 1},     {"", "try_fix_nan", 0},
};

/* Records the first training-only key set away from its neutral value in m->train_refusal
 * (train refuses the file with it) and notes each one for the other commands. */
static int check_train_only(struct dk_cfg *cfg, struct dk_cfg_section *sec, struct dk_model *m,
                            struct dk_error *err)
{
    for (size_t i = 0; i < sizeof train_only / sizeof train_only[0]; i++) {
        const char *k = train_only[i].key;
        float v = train_only[i].neutral;
        if (dk_cfg_get_float(cfg, sec, k, train_only[i].neutral, &v, err) != 0)
            return -1;
        if (!(v < train_only[i].neutral || v > train_only[i].neutral))
            continue;
        const char *text = dk_cfg_get_str(sec, k, "");
        dk_cfg_note(cfg,
                    "%s:%d: warning: key '%s=%s' changes only how darknet trains: valid and "
                    "predict ignore it, train refuses it",
                    cfg->path, line_of(sec, k), k, text);
        if (m->train_refusal[0] == '\0')
            snprintf(m->train_refusal, sizeof m->train_refusal,
                     "%s:%d: key '%s=%s' in [%s] is not supported for training (only %s=%g)",
                     cfg->path, line_of(sec, k), k, text, sec->name, k,
                     (double)train_only[i].neutral);
    }
    return 0;
}

static const struct neutral_key layer_neutral[] = {
    {"", "dont_update", 0},
    {"", "burnin_update", 0},
    {"", "train_only_bn", 0},
    {"convolutional", "assisted_excitation", 0},
    {"convolutional", "cbn", 0},
    {"convolutional", "bin_output", 0},
    {"convolutional", "sway", 0},
    {"convolutional", "rotate", 0},
    {"convolutional", "stretch", 0},
    {"convolutional", "stretch_sway", 0},
    {"convolutional", "grad_centr", 0},
    {"convolutional", "reverse", 0},
    {"convolutional", "coordconv", 0},
    {"maxpool", "maxpool_depth", 0},
    {"maxpool", "maxpool_zero_nonmax", 0},
    {"dropout", "dropblock", 0},
};

/* Keys read as strings (or as a layer reference) that change darknet's result unless they
 * hold the neutral value; NULL: any value does. */
static const struct {
    const char *section;
    const char *key;
    const char *neutral;
} present_refused[] = {
    {"convolutional", "share_index", NULL},
};

static const char *canonical_section(const char *name)
{
    static const char *const alias[][2] = {
        {"conv", "convolutional"}, {"max", "maxpool"}, {"soft", "softmax"}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++) {
        if (strcmp(name, alias[i][0]) == 0)
            return alias[i][1];
    }
    return name;
}

/* Refuses a key of tab that applies to sec and is set away from its neutral value. */
static int check_neutral(const struct dk_cfg *cfg, struct dk_cfg_section *sec,
                         const struct neutral_key *tab, size_t n, struct dk_error *err)
{
    const char *name = canonical_section(sec->name);
    for (size_t i = 0; i < n; i++) {
        if (tab[i].section[0] != '\0' && strcmp(tab[i].section, name) != 0)
            continue;
        if (dk_cfg_find(sec, tab[i].key) &&
            neutral_float(cfg, sec, tab[i].key, tab[i].neutral, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof present_refused / sizeof present_refused[0]; i++) {
        const struct dk_cfg_option *o = NULL;
        if (strcmp(present_refused[i].section, name) != 0 ||
            !(o = dk_cfg_find(sec, present_refused[i].key)))
            continue;
        if (present_refused[i].neutral && strcmp(o->value, present_refused[i].neutral) == 0)
            continue;
        return dk_fail(err, "%s:%d: key '%s' in [%s] is not supported", cfg->path,
                       line_of(sec, present_refused[i].key), present_refused[i].key, sec->name);
    }
    return 0;
}

/* ------------------------------------------------------------------- [net] */

/* AlexeyAB's batch augmentations: mixup=N (1 mixup, 2 cutmix, 3 mosaic, 4 either), which
 * cutmix=1 and mosaic=1 override as its parse_net_options does, and blur=N. */
static int parse_mix_keys(struct dk_cfg *cfg, struct dk_cfg_section *sec, struct dk_augment *aug,
                          struct dk_error *err)
{
    int mixup = 0, cutmix = 0, mosaic = 0;
    if (dk_cfg_get_int(cfg, sec, "mixup", 0, &mixup, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "cutmix", 0, &cutmix, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "mosaic", 0, &mosaic, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "blur", 0, &aug->blur, err) != 0)
        return -1;
    BAD(mixup < DK_MIX_NONE || mixup >= DK_MIX_KIND_COUNT, "mixup",
        "must be 0 (off), 1 (mixup), 2 (cutmix), 3 (mosaic) or 4 (cutmix or mosaic), got %d",
        mixup);
    aug->mixup = dk_mix_kind_from_keys(mixup, cutmix, mosaic);
    const int ksize = dk_blur_ksize(aug->blur);
    BAD(ksize < 0 || ksize > DK_BLUR_MAX_KSIZE || (ksize > 0 && ksize % 2 == 0), "blur",
        "must be 0, 1 (a 15x15 kernel) or an odd kernel side up to %d, got %d", DK_BLUR_MAX_KSIZE,
        aug->blur);
    return 0;
}

/* adam=1 and its B1, B2, eps, read only when adam is on (as darknet reads them). The
 * defaults are AlexeyAB's (pjreddie's eps is 1e-7). */
static int parse_adam(const struct dk_cfg *cfg, struct dk_cfg_section *sec,
                      struct dnn_net_config *net, struct dk_error *err)
{
    int adam = 0;
    if (dk_cfg_get_int(cfg, sec, "adam", 0, &adam, err) != 0)
        return -1;
    net->adam = adam != 0;
    if (!net->adam)
        return 0;
    if (dk_cfg_get_float(cfg, sec, "B1", .9f, &net->beta1, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "B2", .999f, &net->beta2, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "eps", .000001f, &net->epsilon, err) != 0)
        return -1;
    /* darknet divides by 1 - B^t and by sqrt(v) + eps: out of range, weights become inf. */
    BAD(!(net->beta1 >= 0 && net->beta1 < 1), "B1", "must be in [0, 1), got %g",
        (double)net->beta1);
    BAD(!(net->beta2 >= 0 && net->beta2 < 1), "B2", "must be in [0, 1), got %g",
        (double)net->beta2);
    BAD(!(net->epsilon > 0), "eps", "must be > 0, got %g", (double)net->epsilon);
    return 0;
}

struct policy_name {
    const char *name;
    enum dnn_lr_policy policy;
};

/* darknet's get_policy() names. */
static const struct policy_name policies[] = {
    {"constant", DNN_POLICY_CONSTANT}, {"step", DNN_POLICY_STEP},   {"exp", DNN_POLICY_EXP},
    {"poly", DNN_POLICY_POLY},         {"steps", DNN_POLICY_STEPS}, {"sigmoid", DNN_POLICY_SIG},
    {"random", DNN_POLICY_RANDOM},     {"sgdr", DNN_POLICY_SGDR},
};

/* Keys that only some policies read. */
static const char *const policy_keys[] = {"gamma", "step", "scale", "steps", "scales"};

static int parse_policy(struct dk_cfg *cfg, struct dk_cfg_section *sec, struct dnn_net_config *net,
                        struct dk_error *err)
{
    const char *name = dk_cfg_get_str(sec, "policy", "constant");
    size_t i = 0;
    while (i < sizeof policies / sizeof policies[0] && strcmp(policies[i].name, name) != 0)
        i++;
    if (i == sizeof policies / sizeof policies[0])
        return dk_fail(err,
                       "%s:%d: key 'policy': unknown policy '%s' (expected constant, step, exp, "
                       "poly, steps, sigmoid, random or sgdr)",
                       cfg->path, line_of(sec, "policy"), name);
    net->policy = policies[i].policy;

    if (dk_cfg_get_int(cfg, sec, "burn_in", 0, &net->burn_in, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "power", 4, &net->power, err) != 0)
        return -1;
    BAD(net->burn_in < 0, "burn_in", "must be >= 0, got %d", net->burn_in);

    switch (net->policy) {
    case DNN_POLICY_STEP:
        if (dk_cfg_get_int(cfg, sec, "step", 1, &net->step, err) != 0 ||
            dk_cfg_get_float(cfg, sec, "scale", 1, &net->scale, err) != 0)
            return -1;
        BAD(net->step <= 0, "step", "must be > 0, got %d", net->step);
        break;
    case DNN_POLICY_STEPS: {
        size_t ns = 0;
        size_t nc = 0;
        if (!dk_cfg_find(sec, "steps") || !dk_cfg_find(sec, "scales"))
            return dk_fail(err, "%s:%d: policy=steps needs both 'steps' and 'scales' in [%s]",
                           cfg->path, line_of(sec, "policy"), sec->name);
        if (dk_cfg_get_int_list(cfg, sec, "steps", net->steps, DNN_MAX_STEPS, &ns, err) != 0 ||
            dk_cfg_get_float_list(cfg, sec, "scales", net->scales, DNN_MAX_STEPS, &nc, err) != 0)
            return -1;
        BAD(ns != nc, "scales", "has %zu values but 'steps' has %zu", nc, ns);
        net->n_steps = (int)ns;
        break;
    }
    case DNN_POLICY_EXP:
        if (dk_cfg_get_float(cfg, sec, "gamma", 1, &net->gamma, err) != 0)
            return -1;
        break;
    case DNN_POLICY_SIG:
        if (dk_cfg_get_float(cfg, sec, "gamma", 1, &net->gamma, err) != 0 ||
            dk_cfg_get_int(cfg, sec, "step", 1, &net->step, err) != 0)
            return -1;
        break;
    case DNN_POLICY_SGDR:
        /* AlexeyAB's defaults: one cycle of max_batches, each next one twice as long. */
        if (dk_cfg_get_float(cfg, sec, "learning_rate_min", .00001f, &net->learning_rate_min,
                             err) != 0 ||
            dk_cfg_get_int(cfg, sec, "sgdr_cycle", net->max_batches, &net->sgdr_cycle, err) != 0 ||
            dk_cfg_get_int(cfg, sec, "sgdr_mult", 2, &net->sgdr_mult, err) != 0)
            return -1;
        if (net->sgdr_cycle < 1) /* named at the key, or at policy= when it defaulted */
            return dk_fail(err,
                           "%s:%d: key 'sgdr_cycle' in [%s]: must be >= 1 (or max_batches "
                           "set), got %d",
                           cfg->path,
                           line_of(sec, dk_cfg_find(sec, "sgdr_cycle") ? "sgdr_cycle" : "policy"),
                           sec->name, net->sgdr_cycle);
        BAD(net->sgdr_mult < 1, "sgdr_mult", "must be >= 1, got %d", net->sgdr_mult);
        break;
    case DNN_POLICY_CONSTANT:
    case DNN_POLICY_POLY:
    case DNN_POLICY_RANDOM:
    default:
        break;
    }
    /* darknet only prints "Unused field"; say which policy ignores it. Marked
     * used so that the generic warning does not repeat it. */
    for (i = 0; i < sizeof policy_keys / sizeof policy_keys[0]; i++) {
        const char *k = policy_keys[i];
        for (size_t j = 0; j < sec->n_opts; j++) {
            if (!sec->opts[j].used && strcmp(sec->opts[j].key, k) == 0) {
                dk_cfg_note(cfg, "%s:%d: warning: key '%s' has no effect with policy=%s; ignored",
                            cfg->path, sec->opts[j].line, k, name);
                sec->opts[j].used = true;
            }
        }
    }
    return 0;
}

static int parse_net(struct dk_cfg *cfg, struct dk_cfg_section *sec, struct dk_model *m,
                     struct dk_error *err)
{
    struct dnn_net_config *net = &m->net;
    struct dk_augment *aug = &m->aug;
    int subdivs = 1;
    int inputs = 0;
    int flip = 1;
    int center = 0;
    int random = 0;

    if (dk_cfg_get_int(cfg, sec, "batch", 1, &m->cfg_batch, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "learning_rate", .001f, &net->learning_rate, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "momentum", .9f, &net->momentum, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "decay", .0001f, &net->decay, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "subdivisions", 1, &subdivs, err) != 0 ||
        neutral_int(cfg, sec, "time_steps", 1, err) != 0 ||
        neutral_int(cfg, sec, "notruth", 0, err) != 0 ||
        neutral_float(cfg, sec, "clip", 0, err) != 0)
        return -1;
    if (parse_adam(cfg, sec, net, err) != 0)
        return -1;
    /* random=1 makes darknet's detector resize its input while training; the
     * classifier never reads it, so any value is accepted and has no effect. */
    if (dk_cfg_get_int(cfg, sec, "random", 0, &random, err) != 0)
        return -1;
    BAD(m->cfg_batch <= 0, "batch", "must be > 0, got %d", m->cfg_batch);
    BAD(subdivs <= 0, "subdivisions", "must be > 0, got %d", subdivs);
    BAD(m->cfg_batch % subdivs != 0, "subdivisions", "%d does not divide batch=%d", subdivs,
        m->cfg_batch);
    net->batch = m->cfg_batch / subdivs;
    net->subdivisions = subdivs;

    if (dk_cfg_get_int(cfg, sec, "height", 0, &net->h, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "width", 0, &net->w, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "channels", 0, &net->c, err) != 0)
        return -1;
    BAD(net->h < 0, "height", "must be >= 0, got %d", net->h);
    BAD(net->w < 0, "width", "must be >= 0, got %d", net->w);
    BAD(net->c < 0, "channels", "must be >= 0, got %d", net->c);
    long long hwc = (long long)net->h * net->w * net->c;
    if (hwc > INT_MAX)
        return dk_fail(err, "%s:%d: height*width*channels = %lld is too large", cfg->path,
                       sec->line, hwc);
    if (dk_cfg_get_int(cfg, sec, "inputs", (int)hwc, &inputs, err) != 0)
        return -1;
    if (dk_cfg_find(sec, "inputs")) {
        /* darknet leaves h, w, c at 0 and gives the first layer `inputs` values per
         * image; as an image that is 1 x 1 x inputs. */
        BAD(inputs <= 0, "inputs", "must be > 0, got %d", inputs);
        if (hwc == 0 && net->h == 0 && net->w == 0 && net->c == 0) {
            net->h = 1;
            net->w = 1;
            net->c = inputs;
        }
        BAD((long long)net->h * net->w * net->c != inputs, "inputs",
            "%d differs from height*width*channels = %d*%d*%d", inputs, net->h, net->w, net->c);
    }
    if (net->h == 0 || net->w == 0 || net->c == 0)
        return dk_fail(err,
                       "%s:%d: [%s] needs height, width and channels (or inputs); got %d x %d x %d",
                       cfg->path, sec->line, sec->name, net->h, net->w, net->c);

    if (dk_cfg_get_int(cfg, sec, "max_crop", net->w * 2, &aug->max_crop, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "min_crop", net->w, &aug->min_crop, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "max_ratio", (float)aug->max_crop / net->w, &aug->max_ratio,
                         err) != 0 ||
        dk_cfg_get_float(cfg, sec, "min_ratio", (float)aug->min_crop / net->w, &aug->min_ratio,
                         err) != 0 ||
        dk_cfg_get_int(cfg, sec, "center", 0, &center, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "flip", 1, &flip, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "angle", 0, &aug->angle, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "aspect", 1, &aug->aspect, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "saturation", 1, &aug->saturation, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "exposure", 1, &aug->exposure, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "hue", 0, &aug->hue, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "label_smooth_eps", 0, &aug->label_smooth_eps, err) != 0)
        return -1;
    BAD(!(aug->label_smooth_eps >= 0 && aug->label_smooth_eps < 1), "label_smooth_eps",
        "must be in [0, 1), got %g", (double)aug->label_smooth_eps);
    if (parse_mix_keys(cfg, sec, aug, err) != 0)
        return -1;
    aug->center = center != 0;
    aug->flip = flip != 0;
    BAD(aug->max_crop < 0, "max_crop", "must be >= 0, got %d", aug->max_crop);
    BAD(aug->min_crop < 0, "min_crop", "must be >= 0, got %d", aug->min_crop);

    if (dk_cfg_get_int(cfg, sec, "max_batches", 0, &net->max_batches, err) != 0 ||
        parse_policy(cfg, sec, net, err) != 0)
        return -1;
    BAD(net->max_batches < 0, "max_batches", "must be >= 0, got %d", net->max_batches);
    if (check_neutral(cfg, sec, net_neutral, sizeof net_neutral / sizeof net_neutral[0], err) !=
            0 ||
        check_train_only(cfg, sec, m, err) != 0)
        return -1;
    dk_cfg_note_unused(cfg, sec);
    return 0;
}

/* ------------------------------------------------------------------ layers */

/* AlexeyAB's stride_x and stride_y default to stride; the engine strides both
 * axes alike, so they are accepted only when equal to it. */
static int same_stride(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int stride,
                       struct dk_error *err)
{
    static const char *const keys[] = {"stride_x", "stride_y"};
    for (size_t i = 0; i < 2; i++) {
        if (neutral_int(cfg, sec, keys[i], stride, err) != 0)
            return -1;
    }
    return 0;
}

/* AlexeyAB's antialiasing: 2 is a 2x2 blur, any other nonzero value the 3x3 one. */
static int get_antialiasing(const struct dk_cfg *cfg, struct dk_cfg_section *sec,
                            struct dnn_layer_spec *sp, struct dk_error *err)
{
    int aa = 0;
    if (dk_cfg_get_int(cfg, sec, "antialiasing", 0, &aa, err) != 0)
        return -1;
    sp->antialiasing = aa == 0 ? 0 : aa == 2 ? 2 : 1;
    return 0;
}

static int parse_convolutional(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                               struct dnn_layer_spec *sp, struct dk_error *err)
{
    int pad = 0;
    int bn = 0;
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "filters", 1, &sp->filters, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "size", 1, &sp->size, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "stride", 1, &sp->stride, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "pad", 0, &pad, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "padding", 0, &sp->pad, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "groups", 1, &sp->groups, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "dilation", 1, &sp->dilation, err) != 0 ||
        get_antialiasing(cfg, sec, sp, err) != 0 ||
        get_activation(cfg, sec, "logistic", &sp->activation, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "batch_normalize", 0, &bn, err) != 0 ||
        neutral_int(cfg, sec, "binary", 0, err) != 0 ||
        neutral_int(cfg, sec, "xnor", 0, err) != 0 ||
        neutral_int(cfg, sec, "flipped", 0, err) != 0 ||
        neutral_float(cfg, sec, "dot", 0, err) != 0)
        return -1;
    BAD(sp->filters <= 0, "filters", "must be > 0, got %d", sp->filters);
    BAD(sp->size <= 0, "size", "must be > 0, got %d", sp->size);
    BAD(sp->stride <= 0, "stride", "must be > 0, got %d", sp->stride);
    if (same_stride(cfg, sec, sp->stride, err) != 0)
        return -1;
    BAD(sp->groups <= 0, "groups", "must be > 0, got %d", sp->groups);
    BAD(sp->filters % sp->groups != 0, "groups", "%d does not divide filters=%d", sp->groups,
        sp->filters);
    /* darknet: any nonzero pad means "same" padding, overriding padding=. */
    if (pad)
        sp->pad = sp->size / 2;
    BAD(sp->pad < 0, "padding", "must be >= 0, got %d", sp->pad);
    BAD(sp->dilation < 1, "dilation", "must be >= 1, got %d", sp->dilation);
    if (sp->size == 1) /* one tap: AlexeyAB resets it too */
        sp->dilation = 1;
    sp->batch_normalize = bn != 0;
    return 0;
}

static int parse_connected(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                           struct dnn_layer_spec *sp, struct dk_error *err)
{
    int bn = 0;
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "output", 1, &sp->outputs, err) != 0 ||
        get_activation(cfg, sec, "logistic", &sp->activation, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "batch_normalize", 0, &bn, err) != 0)
        return -1;
    BAD(sp->outputs <= 0, "output", "must be > 0, got %d", sp->outputs);
    sp->batch_normalize = bn != 0;
    return 0;
}

static int parse_maxpool(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                         struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "stride", 1, &sp->stride, err) != 0)
        return -1;
    BAD(sp->stride <= 0, "stride", "must be > 0, got %d", sp->stride);
    if (same_stride(cfg, sec, sp->stride, err) != 0)
        return -1;
    if (dk_cfg_get_int(cfg, sec, "size", sp->stride, &sp->size, err) != 0)
        return -1;
    BAD(sp->size <= 0, "size", "must be > 0, got %d", sp->size);
    if (dk_cfg_get_int(cfg, sec, "padding", sp->size - 1, &sp->pad, err) != 0)
        return -1;
    BAD(sp->pad < 0, "padding", "must be >= 0, got %d", sp->pad);
    return get_antialiasing(cfg, sec, sp, err);
}

static int parse_nothing(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                         struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)cfg;
    (void)sec;
    (void)index;
    (void)sp;
    (void)err;
    return 0;
}

static int parse_dropout(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                         struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    if (dk_cfg_get_float(cfg, sec, "probability", .5f, &sp->probability, err) != 0)
        return -1;
    BAD(!(sp->probability >= 0 && sp->probability < 1), "probability", "must be in [0, 1), got %g",
        (double)sp->probability);
    return 0;
}

static int parse_softmax(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                         struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "groups", 1, &sp->softmax_groups, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "temperature", 1, &sp->temperature, err) != 0 ||
        neutral_float(cfg, sec, "spatial", 0, err) != 0 ||
        neutral_int(cfg, sec, "noloss", 0, err) != 0)
        return -1;
    /* tree= is read by dk_parse_network_cfg, which owns the model's tree; marked used
     * here so that the unused-key note stays quiet. */
    (void)dk_cfg_get_str(sec, "tree", NULL);
    BAD(sp->softmax_groups <= 0, "groups", "must be > 0, got %d", sp->softmax_groups);
    BAD(!(sp->temperature > 0), "temperature", "must be > 0, got %g", (double)sp->temperature);
    return 0;
}

static int parse_cost(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                      struct dnn_layer_spec *sp, struct dk_error *err)
{
    static const struct {
        const char *name;
        enum dnn_cost_type type;
    } types[] = {{"sse", DNN_COST_SSE},
                 {"masked", DNN_COST_MASKED},
                 {"smooth", DNN_COST_SMOOTH},
                 {"L1", DNN_COST_L1}};
    float ignored = 0;
    (void)index;
    const char *name = dk_cfg_get_str(sec, "type", "sse");
    size_t i = 0;
    while (i < sizeof types / sizeof types[0] && strcmp(types[i].name, name) != 0)
        i++;
    if (i == sizeof types / sizeof types[0])
        return dk_fail(err,
                       "%s:%d: key 'type': unsupported cost type '%s' (expected sse, masked, "
                       "smooth or L1)",
                       cfg->path, line_of(sec, "type"), name);
    sp->cost_type = types[i].type;
    /* noobj and thresh only reach darknet's GPU cost kernels: read, then unused. */
    if (dk_cfg_get_float(cfg, sec, "scale", 1, &sp->cost_scale, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "ratio", 0, &sp->cost_ratio, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "noobj", 1, &ignored, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "thresh", 0, &ignored, err) != 0)
        return -1;
    return 0;
}

/* A layer index as darknet reads it: negative means relative to this layer. */
static int resolve_index(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                         int index, int given, int *out, struct dk_error *err)
{
    long long abs = given < 0 ? (long long)index + given : given;
    BAD(abs < 0 || abs >= index, key,
        "layer %d (absolute %lld) is not an earlier layer of layer %d", given, abs, index);
    *out = (int)abs;
    return 0;
}

/* AlexeyAB's weights_type and weights_normalization names (per_layer and avg_relu are its
 * aliases). As AlexeyAB, an unknown normalization is refused only when there are weights. */
static int parse_shortcut_weights(const struct dk_cfg *cfg, struct dk_cfg_section *sec,
                                  struct dnn_layer_spec *sp, struct dk_error *err)
{
    static const struct {
        const char *name;
        int value;
    } types[] = {{"none", DNN_SHORTCUT_WEIGHTS_NONE},
                 {"per_feature", DNN_SHORTCUT_WEIGHTS_PER_FEATURE},
                 {"per_layer", DNN_SHORTCUT_WEIGHTS_PER_FEATURE},
                 {"per_channel", DNN_SHORTCUT_WEIGHTS_PER_CHANNEL}},
      norms[] = {{"none", DNN_WEIGHTS_NORM_NONE},
                 {"relu", DNN_WEIGHTS_NORM_RELU},
                 {"avg_relu", DNN_WEIGHTS_NORM_RELU},
                 {"softmax", DNN_WEIGHTS_NORM_SOFTMAX}};
    const char *type = dk_cfg_get_str(sec, "weights_type", "none");
    const char *norm = dk_cfg_get_str(sec, "weights_normalization", "none");
    size_t t = 0, k = 0;
    while (t < sizeof types / sizeof types[0] && strcmp(types[t].name, type) != 0)
        t++;
    BAD(t == sizeof types / sizeof types[0], "weights_type",
        "unknown '%s' (expected none, per_feature or per_channel)", type);
    sp->weights_type = (enum dnn_shortcut_weights)types[t].value;
    while (k < sizeof norms / sizeof norms[0] && strcmp(norms[k].name, norm) != 0)
        k++;
    BAD(k == sizeof norms / sizeof norms[0] && sp->weights_type != DNN_SHORTCUT_WEIGHTS_NONE,
        "weights_normalization", "unknown '%s' (expected none, relu or softmax)", norm);
    if (k < sizeof norms / sizeof norms[0] && sp->weights_type != DNN_SHORTCUT_WEIGHTS_NONE)
        sp->weights_normalization = (enum dnn_weights_normalization)norms[k].value;
    return 0;
}

/* pjreddie's shortcut (one from, alpha and beta) and AlexeyAB's (from=-2,-3, weights). */
static int parse_shortcut(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                          struct dnn_layer_spec *sp, struct dk_error *err)
{
    int given[DNN_MAX_READS];
    size_t n = 0;
    if (!dk_cfg_find(sec, "from"))
        return dk_fail(err, "%s:%d: [%s] needs key 'from'", cfg->path, sec->line, sec->name);
    if (dk_cfg_get_int_list(cfg, sec, "from", given, DNN_MAX_READS, &n, err) != 0 ||
        resolve_index(cfg, sec, "from", index, given[0], &sp->from, err) != 0)
        return -1;
    for (size_t i = 1; i < n; i++) {
        if (resolve_index(cfg, sec, "from", index, given[i], &sp->route[i - 1], err) != 0)
            return -1;
    }
    sp->n_route = (int)n - 1;
    if (get_activation(cfg, sec, "linear", &sp->activation, err) != 0 ||
        parse_shortcut_weights(cfg, sec, sp, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "alpha", 1, &sp->alpha, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "beta", 1, &sp->beta, err) != 0)
        return -1;
    /* AlexeyAB's form reads neither: a value away from 1 would be silently lost */
    BAD(dnn_shortcut_is_multi(sp) &&
            (sp->alpha < 1 || sp->alpha > 1 || sp->beta < 1 || sp->beta > 1),
        dk_cfg_find(sec, "alpha") ? "alpha" : "beta", "%s",
        "alpha and beta are pjreddie's, not used with several sources or weights_type");
    return 0;
}

static int parse_route(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                       struct dnn_layer_spec *sp, struct dk_error *err)
{
    int given[DNN_MAX_ROUTE];
    size_t n = 0;
    if (!dk_cfg_find(sec, "layers"))
        return dk_fail(err, "%s:%d: [%s] needs key 'layers'", cfg->path, sec->line, sec->name);
    if (dk_cfg_get_int_list(cfg, sec, "layers", given, DNN_MAX_ROUTE, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (resolve_index(cfg, sec, "layers", index, given[i], &sp->route[i], err) != 0)
            return -1;
    }
    sp->n_route = (int)n;
    if (dk_cfg_get_int(cfg, sec, "groups", 1, &sp->route_groups, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "group_id", 0, &sp->group_id, err) != 0)
        return -1;
    BAD(sp->route_groups < 1, "groups", "must be >= 1, got %d", sp->route_groups);
    BAD(sp->group_id < 0 || sp->group_id >= sp->route_groups, "group_id",
        "must be in 0..%d (groups=%d), got %d", sp->route_groups - 1, sp->route_groups,
        sp->group_id);
    return 0;
}

static int parse_crop(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                      struct dnn_layer_spec *sp, struct dk_error *err)
{
    int flip = 0, noadjust = 0;
    float gpu_only = 0;
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "crop_height", 1, &sp->crop_height, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "crop_width", 1, &sp->crop_width, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "flip", 0, &flip, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "noadjust", 0, &noadjust, err) != 0)
        return -1;
    /* darknet reads these but only its GPU crop kernel uses them; its CPU forward, which
     * this engine matches, does not */
    static const char *const gpu_keys[] = {"angle", "saturation", "exposure", "shift"};
    static const float gpu_defaults[] = {0, 1, 1, 0};
    for (size_t i = 0; i < 4; i++) {
        if (dk_cfg_get_float(cfg, sec, gpu_keys[i], gpu_defaults[i], &gpu_only, err) != 0)
            return -1;
    }
    BAD(sp->crop_height <= 0, "crop_height", "must be > 0, got %d", sp->crop_height);
    BAD(sp->crop_width <= 0, "crop_width", "must be > 0, got %d", sp->crop_width);
    sp->flip = flip != 0;
    sp->noadjust = noadjust != 0;
    return 0;
}

/* [reorg] (both trees) and [reorg3d] (AlexeyAB's): see dnn/layer_reorg.c for the two. */
static int parse_reorg_any(const struct dk_cfg *cfg, struct dk_cfg_section *sec,
                           struct dnn_layer_spec *sp, bool reorg3d, struct dk_error *err)
{
    int reverse = 0;
    if (dk_cfg_get_int(cfg, sec, "stride", 1, &sp->stride, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "reverse", 0, &reverse, err) != 0)
        return -1;
    BAD(sp->stride <= 0, "stride", "must be > 0, got %d", sp->stride);
    sp->reverse = reverse != 0;
    sp->reorg3d = reorg3d;
    if (!reorg3d) {
        /* pjreddie's keys; AlexeyAB's [reorg] does not read them */
        if (dk_cfg_get_int(cfg, sec, "extra", 0, &sp->extra, err) != 0 ||
            neutral_int(cfg, sec, "flatten", 0, err) != 0)
            return -1;
        BAD(sp->extra < 0, "extra", "must be >= 0, got %d", sp->extra);
        BAD(sp->extra && sp->reverse, "extra", "%d with reverse=1 is not supported", sp->extra);
    }
    return 0;
}

static int parse_reorg(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                       struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    return parse_reorg_any(cfg, sec, sp, false, err);
}

static int parse_reorg3d(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                         struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    return parse_reorg_any(cfg, sec, sp, true, err);
}

static int parse_scale_channels(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                                struct dnn_layer_spec *sp, struct dk_error *err)
{
    int from = 0, scale_wh = 0;
    if (!dk_cfg_find(sec, "from"))
        return dk_fail(err, "%s:%d: [%s] needs key 'from'", cfg->path, sec->line, sec->name);
    if (dk_cfg_get_int(cfg, sec, "from", 0, &from, err) != 0 ||
        resolve_index(cfg, sec, "from", index, from, &sp->from, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "scale_wh", 0, &scale_wh, err) != 0 ||
        get_activation(cfg, sec, "linear", &sp->activation, err) != 0)
        return -1;
    /* AlexeyAB's own parser says it cannot train these here */
    BAD(dnn_activation_keeps_input(sp->activation), "activation",
        "'%s' is not supported by darknet's [scale_channels]", dnn_activation_name(sp->activation));
    sp->scale_wh = scale_wh != 0;
    return 0;
}

static int parse_upsample(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                          struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "stride", 2, &sp->stride, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "scale", 1, &sp->scale, err) != 0)
        return -1;
    BAD(sp->stride == 0, "stride", "must not be 0, got %d", sp->stride);
    return 0;
}

static int parse_activation_layer(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                                  struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    return get_activation(cfg, sec, "linear", &sp->activation, err);
}

/* AlexeyAB's [sam]: from and activation as [scale_channels]. */
static int parse_sam(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                     struct dnn_layer_spec *sp, struct dk_error *err)
{
    int from = 0;
    if (!dk_cfg_find(sec, "from"))
        return dk_fail(err, "%s:%d: [%s] needs key 'from'", cfg->path, sec->line, sec->name);
    if (dk_cfg_get_int(cfg, sec, "from", 0, &from, err) != 0 ||
        resolve_index(cfg, sec, "from", index, from, &sp->from, err) != 0 ||
        get_activation(cfg, sec, "linear", &sp->activation, err) != 0)
        return -1;
    BAD(dnn_activation_keeps_input(sp->activation), "activation",
        "'%s' is not supported by darknet's [sam]", dnn_activation_name(sp->activation));
    return 0;
}

/* [local]: pad is darknet's pad key, used as pixels (see dnn/layer_local.c). */
static int parse_local(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                       struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    if (dk_cfg_get_int(cfg, sec, "filters", 1, &sp->filters, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "size", 1, &sp->size, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "stride", 1, &sp->stride, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "pad", 0, &sp->pad, err) != 0 ||
        get_activation(cfg, sec, "logistic", &sp->activation, err) != 0)
        return -1;
    BAD(sp->filters <= 0, "filters", "must be > 0, got %d", sp->filters);
    BAD(sp->size <= 0, "size", "must be > 0, got %d", sp->size);
    BAD(sp->stride <= 0, "stride", "must be > 0, got %d", sp->stride);
    BAD(sp->pad < 0, "pad", "must be >= 0, got %d", sp->pad);
    return 0;
}

/* [normalization] / [lrn]: darknet's defaults alpha .0001, beta .75, kappa 1, size 5. */
static int parse_normalization(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                               struct dnn_layer_spec *sp, struct dk_error *err)
{
    (void)index;
    if (dk_cfg_get_float(cfg, sec, "alpha", .0001f, &sp->alpha, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "beta", .75f, &sp->beta, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "kappa", 1, &sp->kappa, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "size", 5, &sp->size, err) != 0)
        return -1;
    BAD(sp->size <= 0, "size", "must be > 0, got %d", sp->size);
    return 0;
}

typedef int (*parse_fn)(const struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                        struct dnn_layer_spec *sp, struct dk_error *err);

/* Section names as darknet's string_to_layer_type spells them, aliases included. */
static const struct {
    const char *name;
    enum dnn_layer_kind kind;
    parse_fn parse;
} layer_types[] = {
    {"convolutional", DNN_LAYER_CONVOLUTIONAL, parse_convolutional},
    {"conv", DNN_LAYER_CONVOLUTIONAL, parse_convolutional},
    {"connected", DNN_LAYER_CONNECTED, parse_connected},
    {"conn", DNN_LAYER_CONNECTED, parse_connected},
    {"maxpool", DNN_LAYER_MAXPOOL, parse_maxpool},
    {"max", DNN_LAYER_MAXPOOL, parse_maxpool},
    {"avgpool", DNN_LAYER_AVGPOOL, parse_nothing},
    {"avg", DNN_LAYER_AVGPOOL, parse_nothing},
    {"dropout", DNN_LAYER_DROPOUT, parse_dropout},
    {"softmax", DNN_LAYER_SOFTMAX, parse_softmax},
    {"soft", DNN_LAYER_SOFTMAX, parse_softmax},
    {"cost", DNN_LAYER_COST, parse_cost},
    {"batchnorm", DNN_LAYER_BATCHNORM, parse_nothing},
    {"shortcut", DNN_LAYER_SHORTCUT, parse_shortcut},
    {"route", DNN_LAYER_ROUTE, parse_route},
    {"crop", DNN_LAYER_CROP, parse_crop},
    {"reorg", DNN_LAYER_REORG, parse_reorg},
    {"reorg3d", DNN_LAYER_REORG, parse_reorg3d},
    {"scale_channels", DNN_LAYER_SCALE_CHANNELS, parse_scale_channels},
    {"upsample", DNN_LAYER_UPSAMPLE, parse_upsample},
    {"activation", DNN_LAYER_ACTIVATION, parse_activation_layer},
    {"sam", DNN_LAYER_SAM, parse_sam},
    {"l2norm", DNN_LAYER_L2NORM, parse_nothing},
    {"normalization", DNN_LAYER_NORMALIZATION, parse_normalization},
    {"lrn", DNN_LAYER_NORMALIZATION, parse_normalization},
    {"local", DNN_LAYER_LOCAL, parse_local},
};

/* darknet layer types this engine does not implement: named as such in the error. */
static const char *const darknet_only[] = {
    "deconv", "deconvolutional", "logistic", "crnn", "gru",       "lstm",
    "rnn",    "region",          "yolo",     "iseg", "detection",
};

static int parse_layer(struct dk_cfg *cfg, struct dk_cfg_section *sec, int index,
                       struct dnn_layer_spec *sp, struct dk_error *err)
{
    size_t i = 0;
    while (i < sizeof layer_types / sizeof layer_types[0] &&
           strcmp(layer_types[i].name, sec->name) != 0)
        i++;
    if (i == sizeof layer_types / sizeof layer_types[0]) {
        if (strcmp(sec->name, "net") == 0 || strcmp(sec->name, "network") == 0)
            return dk_fail(err, "%s:%d: [%s] may only be the first section", cfg->path, sec->line,
                           sec->name);
        for (size_t j = 0; j < sizeof darknet_only / sizeof darknet_only[0]; j++) {
            if (strcmp(darknet_only[j], sec->name) == 0)
                return dk_fail(err, "%s:%d: darknet layer type [%s] is not supported", cfg->path,
                               sec->line, sec->name);
        }
        return dk_fail(err, "%s:%d: unknown section [%s]", cfg->path, sec->line, sec->name);
    }
    int stop = 0, dontload = 0, dontloadscales = 0;
    float rate_scale = 1;
    memset(sp, 0, sizeof *sp);
    sp->kind = layer_types[i].kind;
    sp->activation = DNN_ACT_LINEAR;
    if (layer_types[i].parse(cfg, sec, index, sp, err) != 0)
        return -1;
    if (check_neutral(cfg, sec, layer_neutral, sizeof layer_neutral / sizeof layer_neutral[0],
                      err) != 0)
        return -1;
    /* Keys darknet's parse_network_cfg reads for every layer. */
    if (neutral_int(cfg, sec, "truth", 0, err) != 0 ||
        neutral_int(cfg, sec, "onlyforward", 0, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "stopbackward", 0, &stop, err) != 0 ||
        neutral_int(cfg, sec, "dontsave", 0, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "dontload", 0, &dontload, err) != 0 ||
        neutral_int(cfg, sec, "numload", 0, err) != 0 ||
        dk_cfg_get_int(cfg, sec, "dontloadscales", 0, &dontloadscales, err) != 0 ||
        dk_cfg_get_float(cfg, sec, "learning_rate", 1, &rate_scale, err) != 0 ||
        neutral_float(cfg, sec, "smooth", 0, err) != 0)
        return -1;
    sp->frozen = stop != 0; /* marks the stop; dk_parse_network_cfg freezes what precedes */
    sp->dontload = dontload != 0;
    sp->dontloadscales = dontloadscales != 0;
    /* darknet reads learning_rate for every layer; only layers with parameters use it. */
    if (sp->kind == DNN_LAYER_CONVOLUTIONAL || sp->kind == DNN_LAYER_CONNECTED ||
        sp->kind == DNN_LAYER_BATCHNORM ||
        (sp->kind == DNN_LAYER_SHORTCUT && sp->weights_type != DNN_SHORTCUT_WEIGHTS_NONE))
        sp->learning_rate_scale = dnn_layer_rate_scale_encode(rate_scale);
    dk_cfg_note_unused(cfg, sec);
    return 0;
}

/* ------------------------------------------------------------------- model */

/* A [softmax]'s tree=: the file is read now (darknet's parse_softmax calls read_tree),
 * and the layer's spec borrows its group sizes from m->tree. darknet's net->hierarchy
 * follows the last [softmax]: set by one with a tree, cleared by one without. */
static int parse_tree(struct dk_cfg *cfg, struct dk_cfg_section *sec, struct dk_model *m, size_t i,
                      struct dk_error *err)
{
    if (m->specs[i].kind != DNN_LAYER_SOFTMAX)
        return 0;
    const char *path = dk_cfg_get_str(sec, "tree", NULL);
    m->hierarchy = path != NULL;
    if (!path)
        return 0;
    if (m->tree.n > 0)
        return dk_fail(err,
                       "%s:%d: key 'tree' in [%s]: a second tree file; darknetp reads one "
                       "tree per cfg",
                       cfg->path, line_of(sec, "tree"), sec->name);
    struct dk_error tree_err;
    if (dk_tree_read(path, &m->tree, &tree_err) != 0)
        return dk_fail(err, "%s:%d: key 'tree' in [%s]: %s", cfg->path, line_of(sec, "tree"),
                       sec->name, tree_err.msg);
    m->specs[i].tree_group_size = m->tree.group_size;
    m->specs[i].tree_groups = m->tree.groups;
    return 0;
}

int dk_parse_network_cfg(struct dk_cfg *cfg, struct dk_model *out, struct dk_error *err)
{
    struct dk_model m;
    memset(&m, 0, sizeof m);
    memset(out, 0, sizeof *out);

    if (cfg->n_sections == 0)
        return dk_fail(err, "%s: no sections; a network cfg starts with [net]", cfg->path);
    struct dk_cfg_section *first = &cfg->sections[0];
    if (strcmp(first->name, "net") != 0 && strcmp(first->name, "network") != 0)
        return dk_fail(err, "%s:%d: first section must be [net] or [network], got [%s]", cfg->path,
                       first->line, first->name);
    if (cfg->n_sections == 1)
        return dk_fail(err, "%s:%d: no layers after [%s]", cfg->path, first->line, first->name);
    /* Every layer costs a layer table entry (over a kilobyte) in each plan and network
     * built from the model: the cap bounds that memory whatever the cfg says. */
    if (cfg->n_sections - 1 > DK_MAX_LAYERS)
        return dk_fail(err, "%s: %zu layers; at most %d are supported (the limit)", cfg->path,
                       cfg->n_sections - 1, DK_MAX_LAYERS);

    m.n = cfg->n_sections - 1;
    m.specs = calloc(m.n, sizeof *m.specs);
    m.lines = calloc(m.n, sizeof *m.lines);
    if (!m.specs || !m.lines) {
        dk_model_free(&m);
        return dk_fail(err, "%s: out of memory", cfg->path);
    }
    if (parse_net(cfg, first, &m, err) != 0) {
        dk_model_free(&m);
        return -1;
    }
    for (size_t i = 0; i < m.n; i++) {
        struct dk_cfg_section *sec = &cfg->sections[i + 1];
        m.lines[i] = sec->line;
        if (parse_layer(cfg, sec, (int)i, &m.specs[i], err) != 0 ||
            parse_tree(cfg, sec, &m, i, err) != 0) {
            dk_model_free(&m);
            return -1;
        }
    }
    /* darknet's backward pass stops at the last stopbackward layer: it and every layer
     * before it are frozen. */
    for (size_t i = m.n; i-- > 0;) {
        if (m.specs[i].frozen) {
            for (size_t j = 0; j < i; j++)
                m.specs[j].frozen = true;
            break;
        }
    }
    m.notes = dk_cfg_take_notes(cfg);
    *out = m;
    return 0;
}

int dk_parse_network(const char *cfg_path, struct dk_model *out, struct dk_error *err)
{
    struct dk_cfg *cfg = NULL;
    memset(out, 0, sizeof *out);
    if (dk_cfg_read(cfg_path, false, &cfg, err) != 0)
        return -1;
    int rc = dk_parse_network_cfg(cfg, out, err);
    dk_cfg_free(cfg);
    return rc;
}

void dk_model_free(struct dk_model *m)
{
    if (!m)
        return;
    free(m->specs);
    free(m->lines);
    free(m->notes);
    dk_tree_free(&m->tree);
    memset(m, 0, sizeof *m);
}
