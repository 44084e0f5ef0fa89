/*
 * dnn.h - the DNN engine shared by the normal world and the Trusted Application.
 *
 * Pure C11: no file I/O, no global state, no libm (the TA has none), no threads: a caller
 * that has threads lends them through struct dnn_parallel. A network is
 * described by a struct dnn_net_config and an array of struct dnn_layer_spec (the
 * darknet cfg parser in darknet/ fills both), then planned and allocated once:
 * forward, backward and update never allocate.
 *
 * Sign convention (darknet's): every delta and every *_updates buffer holds the
 * NEGATIVE gradient of the loss, so the update step adds it to the parameters.
 */
#ifndef DNN_DNN_H
#define DNN_DNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define DNN_MUST_CHECK __attribute__((warn_unused_result))
#else
#define DNN_MUST_CHECK
#endif

/* Outcomes a caller can act on. 0 is success. */
enum dnn_status {
    DNN_OK = 0,
    DNN_ERR_NOMEM,       /* an allocation failed */
    DNN_ERR_INVALID,     /* a hyper-parameter or argument out of range */
    DNN_ERR_SHAPE,       /* layer shapes do not fit together */
    DNN_ERR_OVERFLOW,    /* a size computation overflowed */
    DNN_ERR_UNSUPPORTED, /* a layer kind or option this engine does not have */
    DNN_ERR_LOSS_SIZE,   /* a loss layer (softmax, cost) is not the size of the truth */
};

/* A static, human-readable name for a status. */
const char *dnn_status_str(enum dnn_status s);

/* ------------------------------------------------------------------ random */

/* xoshiro128+-style generator state; passed by pointer, never hidden. */
struct dnn_rng {
    uint64_t s[2];
};

void dnn_rng_seed(struct dnn_rng *r, uint64_t seed);
uint32_t dnn_rng_u32(struct dnn_rng *r);
/* Uniform float in [lo, hi). */
float dnn_rng_uniform(struct dnn_rng *r, float lo, float hi);
/* Standard normal draw (Marsaglia polar method, no libm). */
float dnn_rng_normal(struct dnn_rng *r);

/* ------------------------------------------------------------- activations */

enum dnn_activation {
    DNN_ACT_LOGISTIC,
    DNN_ACT_RELU,
    DNN_ACT_RELIE,
    DNN_ACT_LINEAR,
    DNN_ACT_RAMP,
    DNN_ACT_TANH,
    DNN_ACT_PLSE,
    DNN_ACT_LEAKY,
    DNN_ACT_ELU,
    DNN_ACT_LOGGY,
    DNN_ACT_STAIR,
    DNN_ACT_HARDTAN,
    DNN_ACT_LHTAN,
    DNN_ACT_SELU,
    /* AlexeyAB/darknet's additions; the last four need the pre-activation value
     * to train (dnn_activation_keeps_input). */
    DNN_ACT_RELU6,
    DNN_ACT_SWISH,
    DNN_ACT_MISH,
    DNN_ACT_HARD_MISH,
    DNN_ACT_GELU,
    DNN_ACT_COUNT /* sentinel: range checks of decoded values */
};

/* Parse darknet's activation name ("relu", "leaky", ...). Returns false if unknown. */
bool dnn_activation_from_name(const char *name, enum dnn_activation *out);
const char *dnn_activation_name(enum dnn_activation a);

/* x[i] = act(x[i]) for n values. */
void dnn_activate_array(float *x, size_t n, enum dnn_activation a);
/* delta[i] *= act'(y[i]) where y is the activated output, as darknet does.
 * Only for activations that do not keep their input (see below). */
void dnn_gradient_array(const float *y, size_t n, enum dnn_activation a, float *delta);

/* Whether a's gradient needs the value before activation (swish, mish,
 * hard_mish, gelu), as AlexeyAB's layers keep it in activation_input. */
bool dnn_activation_keeps_input(enum dnn_activation a);
/* As dnn_activate_array; when kept is not NULL and a keeps its input, kept (n)
 * first receives x's values before activation. */
void dnn_activate_array_keep(float *x, size_t n, enum dnn_activation a, float *kept);
/* delta[i] *= act'(x[i]) for every activation: y (n) the activated output, x
 * (n) the kept input, used (and then required) only when a keeps its input. */
void dnn_gradient_array_keep(const float *y, const float *x, size_t n, enum dnn_activation a,
                             float *delta);

/* ---------------------------------------------------------------- parallel
 * A parallel-for lent by the caller: run(ctx, n_tasks, task, arg) calls task(arg, i) exactly
 * once for each i in 0 .. n_tasks-1, in any order and on any of its threads, and returns when
 * all have returned; it may run them one after another (a nested call, say). run == NULL
 * means serial (the TA: OP-TEE TAs have one thread). The engine splits work so that no result
 * depends on threads or order: a task owns its outputs, and no sum is split between tasks. */
struct dnn_parallel {
    void (*run)(void *ctx, size_t n_tasks, void (*task)(void *arg, size_t i), void *arg);
    void *ctx;
    unsigned threads; /* how many tasks run at once (>= 1): sizes the split, never a result */
};

/* ------------------------------------------------------------------ layers */

enum dnn_layer_kind {
    DNN_LAYER_CONVOLUTIONAL,
    DNN_LAYER_CONNECTED,
    DNN_LAYER_MAXPOOL,
    DNN_LAYER_AVGPOOL,
    DNN_LAYER_DROPOUT,
    DNN_LAYER_SOFTMAX,
    DNN_LAYER_COST,
    DNN_LAYER_BATCHNORM,
    DNN_LAYER_SHORTCUT,
    DNN_LAYER_ROUTE,
    DNN_LAYER_CROP,
    DNN_LAYER_REORG,
    DNN_LAYER_SCALE_CHANNELS,
    DNN_LAYER_UPSAMPLE,
    DNN_LAYER_ACTIVATION,
    DNN_LAYER_SAM,
    DNN_LAYER_L2NORM,
    DNN_LAYER_NORMALIZATION,
    DNN_LAYER_LOCAL,
    DNN_LAYER_KIND_COUNT
};

enum dnn_cost_type {
    DNN_COST_SSE,
    DNN_COST_MASKED,
    DNN_COST_SMOOTH,
    DNN_COST_L1,
    DNN_COST_COUNT /* sentinel */
};

/* darknet's SECRET_NUM: a truth value that says "no label here"; [cost] type=masked and a
 * tree softmax give such elements no loss and no delta. */
#define DNN_SECRET_NUM (-1234.0f)

#define DNN_MAX_ROUTE 8
/* Layers one layer may read besides its input: a shortcut's from and its extra sources. */
#define DNN_MAX_READS (DNN_MAX_ROUTE + 1)

/* AlexeyAB's [shortcut] weights_type: learned weights of the input and of each source. */
enum dnn_shortcut_weights {
    DNN_SHORTCUT_WEIGHTS_NONE,
    DNN_SHORTCUT_WEIGHTS_PER_FEATURE, /* one weight per input (darknet's per_feature/per_layer) */
    DNN_SHORTCUT_WEIGHTS_PER_CHANNEL, /* one weight per input and channel */
    DNN_SHORTCUT_WEIGHTS_COUNT        /* sentinel */
};

/* AlexeyAB's [shortcut] weights_normalization: how the weights of one position are scaled. */
enum dnn_weights_normalization {
    DNN_WEIGHTS_NORM_NONE,
    DNN_WEIGHTS_NORM_RELU,    /* relu(w) / (eps + sum of relu(w)) (darknet's relu, avg_relu) */
    DNN_WEIGHTS_NORM_SOFTMAX, /* exp(w - max) / (eps + sum of exp(w - max)) */
    DNN_WEIGHTS_NORM_COUNT    /* sentinel */
};
#define DNN_MAX_PARAMS 5
#define DNN_MAX_BUFFERS 24 /* conv with batch norm, mish and adam: 23 */
#define DNN_MAX_STEPS 16

/*
 * One layer's hyper-parameters, exactly as the cfg gives them after darknet's
 * defaults are applied. Fields a kind does not use are ignored.
 */
struct dnn_layer_spec {
    enum dnn_layer_kind kind;
    enum dnn_activation activation; /* convolutional, connected, shortcut, scale_channels,
                                       activation, sam, local */
    /* convolutional and local; size and stride also for maxpool, size for normalization */
    int filters;
    int size;
    int stride; /* also reorg; upsample: darknet's stride, negative to downsample */
    int pad;    /* padding in pixels: darknet's pad=1 already turned into size/2;
                   for maxpool the total padding (darknet's default size-1) */
    int groups;
    /* convolutional: spacing of the kernel's taps (AlexeyAB's dilation); 0 or 1 = none.
     * The taps of a size-k kernel span d*(k-1)+1 pixels, the image is padded by pad*d,
     * and the output keeps darknet's size (h + 2*pad - size)/stride + 1, which must
     * equal the extent the dilated taps give (setup refuses the layer otherwise). */
    int dilation;
    bool batch_normalize; /* convolutional, connected */
    int outputs;          /* connected */
    float probability;    /* dropout */
    int softmax_groups;   /* softmax */
    float temperature;    /* softmax */
    /* softmax with darknet's tree= (its hierarchical softmax): the inputs are cut into
     * tree_groups contiguous runs of tree_group_size[g] values (the sizes sum to the
     * layer's inputs; softmax_groups is then ignored) and each run gets its own softmax.
     * Borrowed: the caller's array (darknet/tree.h's struct dk_tree, or in the TA the
     * session's copy of the model description's group table) must outlive every network
     * built from this spec. NULL and 0 without a tree. */
    const int *tree_group_size;
    int tree_groups;
    enum dnn_cost_type cost_type;
    float cost_scale; /* cost: multiplies the delta passed back */
    float cost_ratio; /* cost: unused by sse, kept for darknet parity */
    int from;         /* shortcut, scale_channels, sam: absolute index of the other layer */
    float alpha;      /* shortcut: weight of the input; normalization: darknet's alpha */
    float beta;       /* shortcut: weight of the other layer; normalization: exponent */
    /* route: the layers routed; shortcut: its sources after from (AlexeyAB's from=-2,-3
     * gives from -2 and route {-3}, as absolute indexes), 0 for one source. */
    int n_route;
    int route[DNN_MAX_ROUTE]; /* absolute layer indexes */
    /* shortcut (AlexeyAB): learned weights of the input and the sources, and their
     * normalization. With more than one source or with weights the layer follows
     * AlexeyAB's shortcut_multilayer_cpu (alpha and beta unused). */
    enum dnn_shortcut_weights weights_type;
    enum dnn_weights_normalization weights_normalization;
    /* route (AlexeyAB's groups/group_id): each routed output is cut into route_groups
     * equal runs of channels and only run group_id is taken; 0 or 1 = the whole output. */
    int route_groups;
    int group_id;
    /* Frozen (darknet's stopbackward on this or a later layer, -pp_start_f): training
     * runs no backward pass and no update here, and stops the delta at this layer. Set
     * on a prefix 0..S of the network. Not sent to the TA: a frozen layer always runs in
     * the normal world (the host refuses a frozen layer inside the TEE segment). */
    bool frozen;
    /* darknet's dontload and dontloadscales: a .weights file read with this cfg holds none
     * of this layer's parameters, or (convolutional, connected) not its batch-normalization
     * scales, rolling mean and rolling variance; those keep their initial values. Saving
     * writes every parameter, as darknet does. Only the normal world reads .weights files:
     * not sent to the TA. */
    bool dontload, dontloadscales;
    /* crop: the output's height and width (darknet's crop_height, crop_width); flip mirrors
     * half the training batches; noadjust keeps values as they are (else 2x - 1). */
    int crop_height, crop_width;
    bool flip, noadjust;
    /* reorg: reverse (depth to space) and reorg3d (AlexeyAB's [reorg3d], which indexes the
     * tensor by its output shape; [reorg] of both trees indexes it by its input shape). */
    bool reverse, reorg3d;
    int extra;     /* reorg: pjreddie's extra outputs (its Go networks), 0 for none */
    bool scale_wh; /* scale_channels: scale every position (from has 1 channel) */
    float scale;   /* upsample: multiplies every value (darknet's scale, default 1) */
    float kappa;   /* normalization: the constant added to the window's sum */
    /* convolutional, maxpool: AlexeyAB's antialiasing, 0 none; 1 or 2: the layer computes
     * at stride 1 and a fixed 3x3 (1) or 2x2 (2) depthwise blur with its stride gives its
     * output (dnn/antialias.c). */
    int antialiasing;
    /* darknet's per-layer learning_rate (learning_rate_scale): the network's rate times
     * this for this layer's updates. Stored so that an all-zero spec means darknet's
     * default: +0.0 stands for 1 (not given), -0.0 for a scale of 0; read it with
     * dnn_layer_rate_scale. Used by the kinds with parameters. */
    float learning_rate_scale;
};

/* The multiplier of spec's learning rate: 1 when learning_rate_scale is +0.0. */
float dnn_layer_rate_scale(const struct dnn_layer_spec *spec);
/* The learning_rate_scale value that stands for scale (1 -> +0.0, 0 -> -0.0). */
float dnn_layer_rate_scale_encode(float scale);

/* Whether a layer of this kind reads spec.from (shortcut, scale_channels, sam). */
bool dnn_kind_reads_from(enum dnn_layer_kind kind);

/* The earlier layers spec reads besides its input (route's layers; from, then a shortcut's
 * extra sources), as the spec holds them, into out; returns how many (0 .. DNN_MAX_READS).
 * A count out of range in the spec is clipped here; setup refuses it. */
int dnn_spec_reads(const struct dnn_layer_spec *spec, int out[DNN_MAX_READS]);

/* Whether a shortcut spec takes AlexeyAB's form: more than one source or learned weights. */
bool dnn_shortcut_is_multi(const struct dnn_layer_spec *spec);

/* A parameter tensor as darknet's .weights file orders them. */
struct dnn_param {
    const char *name; /* "biases", "scales", "rolling_mean", "rolling_variance", "weights" */
    size_t count;
    float *value;       /* (count) */
    float *update;      /* (count) negative gradient with momentum; NULL for rolling statistics */
    float **value_ref;  /* the layer field that owns value (bound after allocation) */
    float **update_ref; /* the layer field that owns update, or NULL */
    /* adam's first and second moment estimates (count): training with adam, for trainable
     * parameters of the layers adam updates (l->adam); else NULL. */
    float *adam_m;
    float *adam_v;
};

/* Who needs a buffer: parameters and outputs always, the rest only to train. */
enum dnn_buf_role {
    DNN_BUF_PARAM,  /* saved in .weights */
    DNN_BUF_OUTPUT, /* forward result, inference too */
    DNN_BUF_INFER,  /* other forward scratch needed for inference too */
    DNN_BUF_TRAIN,  /* deltas, batch statistics, masks */
    /* A parameter's update (momentum) and adam moments: training only, and with
     * cfg.stream_params not in the arena either, since they travel in the sealed chunks
     * beside the parameter they belong to. Counted in the plan's train_bytes. */
    DNN_BUF_UPDATE,
};

/* A request for a slice of the network's single allocation, made during setup. */
struct dnn_buffer {
    void **ptr; /* where the slice's address is stored */
    size_t count;
    size_t elem_size;
    enum dnn_buf_role role;
};

/* Batch normalisation state, used by convolutional/connected with
 * batch_normalize and by the batchnorm layer. All (out_c) unless noted. */
struct dnn_bn {
    float *scales;
    float *scale_updates;
    float *rolling_mean;
    float *rolling_variance;
    float *mean;
    float *variance;
    float *mean_delta;
    float *variance_delta;
    float *x;      /* (batch, outputs) pre-normalisation values, training */
    float *x_norm; /* (batch, outputs) normalised values, training */
};

struct dnn_layer;
struct dnn_network;

/* What a layer's forward/backward sees besides itself. */
struct dnn_run {
    const float *input; /* (batch, inputs) the previous layer's output or the net input */
    float *input_delta; /* (batch, inputs) backward ADDS into it; NULL at the first layer */
    const float *truth; /* (batch, truths) or NULL when there is no truth */
    bool train;
    float *workspace;               /* shared scratch of net->workspace_floats floats */
    struct dnn_network *net;        /* for route and shortcut, which read other layers */
    const struct dnn_parallel *par; /* the network's threads, or NULL: serial */
    /* par_slots scratches of net->workspace_floats floats each, one per task of a loop over
     * images (convolution), or 0 slots: such loops stay serial. */
    float *par_workspace;
    size_t par_slots;
};

struct dnn_update_args {
    int batch; /* images per update: batch * subdivisions */
    float learning_rate;
    float momentum;
    float decay;
    /* darknet's adam (its GPU rule): layers with l->adam step every trainable parameter
     * with it instead of momentum SGD. */
    bool adam;
    float beta1, beta2, epsilon;
    uint64_t t; /* updates done, this one included (AlexeyAB's get_current_batch), >= 1 */
    /* the network's threads for the SGD step's pass over each tensor, or NULL: serial (the
     * step of each element is its own, so the bits are the same) */
    const struct dnn_parallel *par;
};

struct dnn_layer_ops {
    const char *name; /* darknet's name in the layer table: "conv", "connected", ... */
    /* From l->spec and the input shape (l->h, l->w, l->c, l->batch): set the output
     * shape, l->workspace_floats, the parameter table and the buffer requests.
     * Allocates nothing. */
    enum dnn_status (*setup)(struct dnn_layer *l, const struct dnn_network *net);
    /* Initial parameter values, after allocation (may be NULL). */
    void (*init)(struct dnn_layer *l, struct dnn_rng *rng);
    void (*forward)(struct dnn_layer *l, const struct dnn_run *run);
    void (*backward)(struct dnn_layer *l, const struct dnn_run *run);
    /* Apply the accumulated updates (NULL when the layer has no parameters). */
    void (*update)(struct dnn_layer *l, const struct dnn_update_args *a);
};

struct dnn_layer {
    enum dnn_layer_kind kind;
    const struct dnn_layer_ops *ops;
    struct dnn_layer_spec spec;
    int index; /* position in the network */
    int batch;
    int h, w, c;             /* input shape */
    int out_h, out_w, out_c; /* output shape */
    size_t inputs;           /* h * w * c per image */
    size_t outputs;          /* out_h * out_w * out_c per image */
    float *output;           /* (batch, outputs) */
    float *delta;            /* (batch, outputs) training */
    float *act_input;        /* (batch, outputs) values before an activation that keeps its
                                input (dnn_activation_keeps_input), training; else NULL */

    float *weights;        /* (nweights) */
    float *weight_updates; /* (nweights) training */
    size_t nweights;
    float *biases;       /* (nbiases) */
    float *bias_updates; /* (nbiases) training */
    size_t nbiases;
    struct dnn_bn bn;

    int *indexes;        /* maxpool: (batch, outputs) argmax input index, training */
    float *rand;         /* dropout: (batch, inputs) uniform draws, training */
    float *loss;         /* cost/softmax: (batch, inputs) per-element loss, training */
    float *norms;        /* normalization: (batch, inputs) kappa + alpha * window sums */
    float dropout_scale; /* dropout: 1 / (1 - probability) */

    bool adam;               /* trained with adam: its parameters have moment buffers */
    bool has_cost;           /* this layer computes a loss when truth is given */
    bool read_later;         /* a later route or shortcut reads its output (set by setup) */
    float cost;              /* its loss summed over the batch, last forward */
    size_t workspace_floats; /* shared scratch it needs */
    /* convolutional: the column matrices of its last training forward, kept for its
     * backward (dnn_network_set_column_cache), (groups, k, batch*out_h*out_w) with image b's
     * columns at column b*out_h*out_w; NULL: the backward lowers every image again */
    float *col_cache;
    const float *col_cache_of; /* the input they were lowered from; NULL: none kept */
    struct dnn_rng rng;        /* per-layer stream (dropout), seeded from the net seed and index */

    /* antialiasing (spec.antialiasing): the stride-1 result that the blur reads */
    int aa_h, aa_w;    /* its height and width (out_c channels) */
    size_t aa_outputs; /* aa_h * aa_w * out_c per image */
    float *aa_output;  /* (batch, aa_outputs) */
    float *aa_delta;   /* (batch, aa_outputs) training */

    size_t n_params;
    struct dnn_param params[DNN_MAX_PARAMS]; /* in .weights order */
    size_t n_buffers;
    struct dnn_buffer buffers[DNN_MAX_BUFFERS];
};

/* Layer-setup helpers (used by the layer files). Both return DNN_ERR_INVALID
 * when the layer's fixed-size tables are full. */
enum dnn_status dnn_layer_request(struct dnn_layer *l, void *ptr_addr, size_t count,
                                  size_t elem_size, enum dnn_buf_role role) DNN_MUST_CHECK;
/* Requests l->act_input, (batch, outputs) floats for training, when the layer's
 * activation keeps its input; call at the end of setup, once the output shape is
 * set. DNN_ERR_OVERFLOW when the size does not fit a size_t. */
enum dnn_status dnn_layer_request_act_input(struct dnn_layer *l) DNN_MUST_CHECK;
/* Registers a parameter (value in DNN_BUF_PARAM, update in DNN_BUF_UPDATE when
 * trainable) and records it in l->params in call order, which must be the
 * .weights file order. */
enum dnn_status dnn_layer_add_param(struct dnn_layer *l, const char *name, float **value,
                                    float **update, size_t count) DNN_MUST_CHECK;

/* The ops table of a kind (never NULL for a valid kind). */
const struct dnn_layer_ops *dnn_layer_ops_for(enum dnn_layer_kind kind);

/* ----------------------------------------------------------------- network */

enum dnn_lr_policy {
    DNN_POLICY_CONSTANT,
    DNN_POLICY_STEP,
    DNN_POLICY_EXP,
    DNN_POLICY_POLY,
    DNN_POLICY_STEPS,
    DNN_POLICY_SIG,
    DNN_POLICY_RANDOM,
    DNN_POLICY_SGDR, /* AlexeyAB's cosine annealing with warm restarts */
    DNN_POLICY_COUNT /* sentinel */
};

/* The [net] section's training and shape keys, darknet's defaults applied. */
struct dnn_net_config {
    int batch;        /* images per forward pass: cfg batch / subdivisions */
    int subdivisions; /* forward passes per weight update */
    int h, w, c;      /* input shape */
    float learning_rate;
    float momentum;
    float decay;
    enum dnn_lr_policy policy;
    float gamma; /* step, exp, sig */
    float scale; /* step */
    float power; /* poly */
    int step;    /* step, sig */
    int n_steps; /* steps */
    int steps[DNN_MAX_STEPS];
    float scales[DNN_MAX_STEPS];
    int max_batches;
    int burn_in;
    /* sgdr: rate = learning_rate_min + (learning_rate - learning_rate_min) / 2 *
     * (1 + cos(pi * (batch - start) / cycle)); the first cycle lasts sgdr_cycle batches
     * (>= 1), each next one sgdr_mult (>= 1) times longer, as AlexeyAB's get_current_rate. */
    float learning_rate_min;
    int sgdr_cycle;
    int sgdr_mult;
    /* adam=1 with darknet's B1, B2, eps: convolutional and connected layers are updated by
     * darknet's adam rule (its GPU path; both trees' CPU paths ignore adam):
     *   d = update - decay*batch*w;  m = B1*m + (1-B1)*d;  v = B2*v + (1-B2)*d*d;
     *   w += rate * (m / (1 - B1^t)) / (sqrt(v / (1 - B2^t)) + eps);  update = 0
     * on weights, biases and BN scales alike, t the batch number after this update.
     * beta1 and beta2 in [0, 1), epsilon > 0. */
    bool adam;
    float beta1, beta2, epsilon;
    /* Index of specs[0] in the whole network: 0, or A for the TA's segment
     * A..B. Keys the per-layer random streams (init, dropout); route and
     * shortcut indexes stay positions in this network's own layer table. */
    int index_base;
    /* No parameter tensor is allocated or initialised (every dnn_param value is NULL) and
     * the plan's arena leaves them out: the caller holds them elsewhere, a piece at a time,
     * and computes the layers that have parameters itself (dnn_tile_forward); the TA's
     * weight streaming. In training the parameters' update buffers (DNN_BUF_UPDATE) are left
     * out too: the caller keeps them beside the parameters (dnn_tile_backward,
     * dnn_tile_update), and the workspace holds every image's input-delta columns after the
     * one image's scratch (delta_cols). */
    bool stream_params;
};

struct dnn_network {
    struct dnn_net_config cfg;
    size_t n;
    struct dnn_layer *layers; /* (n) */
    bool training;            /* training buffers allocated */
    uint64_t seen;            /* images trained on so far */
    float cost;               /* mean of the layer costs of the last forward */
    size_t inputs;            /* h * w * c per image */
    size_t truths;            /* floats of truth per image (the output size) */
    size_t workspace_floats;
    float *workspace; /* shared scratch */
    /* (batch, workspace_floats) after the workspace in a streamed training network
     * (cfg.stream_params): dnn_tile_backward's delta_cols; else NULL */
    float *delta_cols;
    void *arena; /* the single allocation holding every buffer */
    size_t arena_bytes;
    uint64_t seed;
    struct dnn_parallel parallel; /* run == NULL (as created): serial */
    float *par_workspace;         /* (par_slots, workspace_floats), for parallel's tasks */
    size_t par_slots;
    /* Scratch of the convolutions that lower several images per product (conv_lower.c),
     * outside the arena as par_workspace; NULL: one image at a time (as created, and in
     * the TA). Set by dnn_network_set_lowering. */
    float *lower_workspace; /* (lower_floats) */
    size_t lower_floats;
    int lower_images; /* most images one product lowers */
    /* The transformed filters (16, filters, c) of the largest Winograd layer
     * (conv_winograd.h), filled by each pass of a layer that takes that path, so that its
     * filters are transformed once per pass, not per block of tiles, and its weight
     * gradient's sums (as many floats) before its input delta; outside the arena, set by
     * dnn_network_set_lowering. NULL (the TA): per block, the same bits. */
    float *wino_u; /* (wino_u_floats) */
    size_t wino_u_floats;
    /* The convolutions' kept column matrices (dnn_network_set_column_cache), one malloc
     * outside the arena shared out as layers' col_cache; NULL: none (as created, the TA). */
    float *col_cache; /* (col_cache_floats) */
    size_t col_cache_floats;
};

/* ------------------------------------------------------------------- plan */

/*
 * One layer of a plan. Shapes and counts are per image; bytes are bytes of the
 * network's arena at the plan's batch, each buffer rounded up to 64 bytes as the
 * engine lays it out.
 */
struct dnn_layer_plan {
    enum dnn_layer_kind kind;
    int h, w, c;             /* input shape */
    int out_h, out_w, out_c; /* output shape */
    size_t inputs, outputs;  /* h * w * c, out_h * out_w * out_c */
    size_t param_floats;     /* floats it has in a .weights file */
    size_t workspace_floats; /* shared scratch it needs (the network keeps the largest) */
    size_t param_bytes;      /* its parameter tensors */
    size_t scratch_bytes;    /* other forward buffers inference needs too */
    size_t train_bytes;      /* delta, updates (momenta), batch statistics, masks */
    size_t output_bytes;     /* its output: batch * outputs floats */
    bool has_cost;           /* computes a loss (softmax, cost) */
    bool read_later;         /* a later route or shortcut reads its output */
    /* Its output has a buffer of its own in this plan. Training keeps every output
     * (backward reads them); inference keeps the outputs a later layer reads besides the
     * next one (route, shortcut), the network's output layer and the loss layers after it,
     * and sends every other output to one of two shared activation buffers, by the parity
     * of the layer's index, so that a layer's input and output never share one. */
    bool own_output;
};

/*
 * What a network of these layers needs before anything is allocated: what
 * dnn_network_create would build, from the same setup loop and the same layout.
 *
 *   arena_bytes = sum of param_bytes + scratch_bytes (+ train_bytes when training)
 *               + sum of output_bytes of the layers with own_output
 *               + shared_bytes[0] + shared_bytes[1]
 *               + workspace_floats * 4 + 64   (with streamed training's delta_cols)
 *   bytes       = arena_bytes + n * sizeof(struct dnn_layer) + sizeof(struct dnn_network)
 *
 * where shared_bytes[p] is the largest output_bytes of the layers i with i % 2 == p
 * whose output is not their own (0 when none).
 */
struct dnn_plan {
    bool training; /* training buffers counted (and no activation shared) */
    int batch;
    size_t n;
    struct dnn_layer_plan *layers; /* (n), owned; NULL when the plan failed */
    size_t inputs;                 /* layer 0's input per image */
    size_t outputs;                /* layer n-1's output per image */
    size_t output_index;           /* last layer that is not a [cost] */
    size_t truths;                 /* floats of truth per image: output_index's outputs */
    bool has_cost;
    size_t param_floats;
    size_t workspace_floats;
    /* Totals in bytes, by the formula above. */
    size_t param_bytes, scratch_bytes, train_bytes, activation_bytes, workspace_bytes;
    size_t shared_bytes[2];
    size_t arena_bytes;
    size_t bytes;
    /* Why it failed: the engine's status, and the layer whose setup refused
     * (failed_layer == n when the network itself is refused: bad cfg, table sizes). */
    enum dnn_status status;
    size_t failed_layer;
};

/*
 * dnn_plan_build - set up these layers (no tensor allocated) and fill *plan with
 * their shapes, parameter counts, buffers and totals, with training buffers or without.
 * Returns DNN_OK, or the status of the refusal, also in plan->status with
 * plan->failed_layer. Free with dnn_plan_free (also after a failure).
 */
enum dnn_status dnn_plan_build(struct dnn_plan *plan, const struct dnn_net_config *cfg,
                               const struct dnn_layer_spec *specs, size_t n,
                               bool training) DNN_MUST_CHECK;

/*
 * dnn_plan_of_network - the same plan from a network already set up (by
 * dnn_network_setup, or built), at its batch. Returns DNN_OK, DNN_ERR_NOMEM or
 * DNN_ERR_OVERFLOW (plan->status too).
 */
enum dnn_status dnn_plan_of_network(struct dnn_plan *plan, const struct dnn_network *net,
                                    bool training) DNN_MUST_CHECK;

void dnn_plan_free(struct dnn_plan *plan);

/*
 * dnn_plan_describe - "layer 3 (conv): layer shapes do not fit" or
 * "network: invalid argument" for a failed plan, into buf (always terminated).
 */
void dnn_plan_describe(const struct dnn_plan *plan, char *buf, size_t size);

/* Bytes the network will allocate for these layers: dnn_plan_build's plan.bytes. */
enum dnn_status dnn_network_plan(const struct dnn_net_config *cfg,
                                 const struct dnn_layer_spec *specs, size_t n, bool training,
                                 size_t *bytes) DNN_MUST_CHECK;

/*
 * dnn_network_setup - the engine's layer setup alone: every layer's shapes,
 * parameter table and buffer requests, with no tensor allocated (every tensor
 * pointer stays NULL; net->arena is NULL). For planning and for the normal
 * world's view of a model whose parameters it must not hold. On error *out is
 * NULL and *failed_layer (when not NULL) is the refused layer, or n when the
 * network itself is refused. Free with dnn_network_free.
 */
enum dnn_status dnn_network_setup(struct dnn_network **out, const struct dnn_net_config *cfg,
                                  const struct dnn_layer_spec *specs, size_t n,
                                  size_t *failed_layer) DNN_MUST_CHECK;

/*
 * Builds a network: set up shapes, allocate once, initialise parameters from
 * seed as darknet does (scaled normal for convolutional, scaled uniform for
 * connected, BN scales 1), each layer from its own stream keyed by seed and
 * cfg->index_base + its position. On error *out is NULL.
 */
enum dnn_status dnn_network_create(struct dnn_network **out, const struct dnn_net_config *cfg,
                                   const struct dnn_layer_spec *specs, size_t n, bool training,
                                   uint64_t seed) DNN_MUST_CHECK;

/*
 * dnn_network_init_params - draw the parameters of layers from..n-1 again exactly
 * as dnn_network_create did (same seed, same per-layer streams): the layers a
 * partial .weights file does not hold start as in a new network. Momenta and
 * other training state are left alone (dnn_network_clear_state).
 */
void dnn_network_init_params(struct dnn_network *net, size_t from);

/*
 * dnn_connected_forward_rows - the inference forward of output neurons [row0, row0 + rows)
 * of connected layer @l (no batch normalisation), from their parameters held apart from the
 * layer: @biases (rows) and @weights (rows, l->inputs), the rows of the layer's own
 * tensors. Reads @input (batch, l->inputs) and writes those columns of l->output
 * (batch, l->outputs), activated. Each output value is computed in the same order as the
 * layer's own forward (gemm.c), so the columns are bit-identical to it whatever the tiling.
 * Returns DNN_ERR_INVALID for another kind of layer, a layer with batch normalisation or
 * rows past the layer's outputs.
 */
enum dnn_status dnn_connected_forward_rows(struct dnn_layer *l, const float *input,
                                           const float *biases, const float *weights, size_t row0,
                                           size_t rows) DNN_MUST_CHECK;

/*
 * dnn_connected_backward_rows - the backward of output neurons [row0, row0 + rows) of
 * connected layer @l (no batch normalisation), their parameters held apart as in
 * dnn_connected_forward_rows, after a training forward of the whole layer. Applies the
 * activation's gradient to those columns of l->delta (batch, l->outputs), adds their bias
 * gradient to @bias_updates (rows) and their weight gradient to @weight_updates
 * (rows, l->inputs), and adds their share of the input delta, delta * @weights (rows,
 * l->inputs), to @input_delta (batch, l->inputs; NULL: none wanted). @input is the layer's
 * forward input (batch, l->inputs). Taken over a layer's rows in increasing order, the
 * results are bit-identical to the layer's own backward (gemm.c's order of terms).
 * Returns DNN_ERR_INVALID for another kind of layer, batch normalisation, a layer built
 * without training buffers or rows past its outputs.
 */
enum dnn_status dnn_connected_backward_rows(struct dnn_layer *l, const float *input,
                                            float *input_delta, const float *weights,
                                            float *bias_updates, float *weight_updates, size_t row0,
                                            size_t rows) DNN_MUST_CHECK;

/*
 * dnn_connected_update_rows - darknet's momentum SGD step (the layer's own update) on
 * @rows output neurons of connected layer @l held apart: @biases and @bias_updates (rows),
 * @weights and @weight_updates (rows, l->inputs); @a from dnn_network_update_args. Same
 * arithmetic per element as the layer's update, so bit-identical. DNN_ERR_INVALID for
 * another kind of layer, batch normalisation, adam, or rows past the layer's outputs.
 */
enum dnn_status dnn_connected_update_rows(const struct dnn_layer *l,
                                          const struct dnn_update_args *a, float *biases,
                                          float *weights, float *bias_updates,
                                          float *weight_updates, size_t rows) DNN_MUST_CHECK;

/* ------------------------------------------------------------------ tiles (tiles.c)
 * Weight streaming cuts a layer with parameters into tiles: blocks of its output filters
 * (convolutional) or neurons (connected), [row0, row0 + rows). A tile's floats are, for each
 * of the layer's parameter tensors in .weights order (struct dnn_param), the tile's outputs'
 * values of it (biases, scales, rolling_mean, rolling_variance: one float per output; weights:
 * one filter or weight row per output, c*size*size or inputs floats, contiguous in darknet's
 * layout), then, in training, the update buffer of each tensor that has one, in the same order
 * (bias_updates, [scale_updates], weight_updates). A convolutional layer with batch_normalize
 * thus holds biases, scales, rolling_mean, rolling_variance, weights; a connected one biases,
 * weights, scales, rolling_mean, rolling_variance. The TA, the host and the plan all cut with
 * these functions: one geometry. */

/* A tile's slices, each the tile's outputs' part of the tensor of that name (rows floats, or
 * rows filters/weight rows for weights), NULL where the layer has no such tensor or the
 * tile no updates. Borrowed: they point into the caller's buffer. */
struct dnn_tile_params {
    float *biases, *scales, *rolling_mean, *rolling_variance, *weights;
    float *bias_updates, *scale_updates, *weight_updates;
};

struct dnn_tile {
    size_t layer;        /* index into the layers cut */
    size_t row0, rows;   /* outputs [row0, row0 + rows) */
    size_t param_floats; /* rows * the parameters' floats per output */
    size_t floats;       /* param_floats, and the updates' with updates */
    bool first_rows;     /* the layer's first tile */
    bool last_rows;      /* the layer's last tile */
};

/* One tensor's slice in a tile: @count floats at float @offset of the tile are the tensor's
 * floats [@src, @src + @count), where the tensor starts @layer_offset floats into the layer's
 * parameters (.weights order); @update: its update buffer instead. */
struct dnn_tile_part {
    size_t param; /* index in l->params */
    bool update;
    size_t offset, count, src, layer_offset;
};

/* Why layer @l cannot stream (a static phrase), or NULL: layers without parameters and
 * convolutional (groups 1, no antialiasing) or connected layers, with or without
 * batch_normalize, stream. */
const char *dnn_tile_refusal(const struct dnn_layer *l);
/* Floats per output in a tile of @l, with the update buffers' when @updates. */
size_t dnn_tile_row_floats(const struct dnn_layer *l, bool updates);
/* Tiles of @l for a working buffer of @bytes: as many whole outputs per tile as fit; 0 when
 * one output does not fit or @l has no parameters. */
size_t dnn_tile_layer_count(const struct dnn_layer *l, size_t bytes, bool updates);
/* Tiles of layers[0..n) in order (each layer's in row order); 0 when a layer with parameters
 * cannot stream (dnn_tile_refusal) or does not fit, or the count reaches UINT32_MAX. */
size_t dnn_tile_count(const struct dnn_layer *layers, size_t n, size_t bytes, bool updates);
/* Whether a training forward changes tiles of layers[0..n): a layer with parameters and
 * batch_normalize moves its rolling statistics, so that pass re-seals its tiles too. */
bool dnn_tile_forward_moves(const struct dnn_layer *layers, size_t n);
/* Tile @k (below dnn_tile_count's answer) of that cut into *t. */
void dnn_tile_at(const struct dnn_layer *layers, size_t n, size_t bytes, bool updates, size_t k,
                 struct dnn_tile *t);
/* The slices of tile @t of @l into parts[] (2 * DNN_MAX_PARAMS at most), in the tile's order;
 * returns how many. */
size_t dnn_tile_parts(const struct dnn_layer *l, const struct dnn_tile *t, bool updates,
                      struct dnn_tile_part *parts);
/* Points *p at the slices of tile @t of @l held in @floats (t->floats). */
void dnn_tile_bind(const struct dnn_layer *l, const struct dnn_tile *t, bool updates, float *floats,
                   struct dnn_tile_params *p);

/*
 * dnn_tile_forward - the forward of tile outputs [row0, row0 + rows) of a streamable layer
 * @l (dnn_tile_refusal NULL) from @p's slices: writes those output channels of l->output
 * (batch, outputs), batch-normalised (training: the batch statistics into l->bn's resident
 * buffers for those channels and the rolling statistics moved in @p's slices, as the layer's
 * own forward moves its tensors) and activated. @input is the layer's (batch, inputs);
 * @workspace holds l->workspace_floats (one image's columns; NULL when 0). Every value is
 * computed in the order of the layer's own forward, so the outputs are bit-identical to it
 * whatever the tiling. DNN_ERR_INVALID for a layer that cannot stream, a missing slice or
 * rows past the outputs.
 */
enum dnn_status dnn_tile_forward(struct dnn_layer *l, const float *input, bool train,
                                 const struct dnn_tile_params *p, size_t row0, size_t rows,
                                 float *workspace) DNN_MUST_CHECK;

/*
 * dnn_tile_backward - the backward of tile outputs [row0, row0 + rows) of @l after a training
 * forward of the whole layer: the activation's (and batch normalisation's) gradient on those
 * channels of l->delta, their gradients added to @p's update slices, and their share of the
 * input delta. A connected layer, and a 1x1 convolution with stride 1 and no padding, add it
 * to @input_delta (batch, inputs; NULL: none wanted) directly; other convolutions add it to
 * @delta_cols (batch, l->workspace_floats: every image's column matrix of the input delta,
 * overwritten by the layer's first tile) and fold it onto @input_delta when @last (the layer's
 * last tile): col2im needs each column's complete sum to add the same terms in the same order
 * as the layer's own backward. A layer that takes the Winograd path (conv_winograd.h) keeps
 * there instead each image's transformed input delta (16 x c x tiles floats, no more than
 * l->workspace_floats), inverse-transformed onto @input_delta after the last tile. Tiles
 * taken in increasing row order give bit for bit the layer's own backward. @workspace as in
 * dnn_tile_forward.
 */
enum dnn_status dnn_tile_backward(struct dnn_layer *l, const float *input, float *input_delta,
                                  const struct dnn_tile_params *p, size_t row0, size_t rows,
                                  bool first, bool last, float *workspace,
                                  float *delta_cols) DNN_MUST_CHECK;

/* dnn_tile_update - the layer's momentum SGD step on @rows outputs held in @p (values and
 * update slices), the same arithmetic per element as the layer's update. DNN_ERR_INVALID
 * under adam or for a layer that cannot stream. */
enum dnn_status dnn_tile_update(const struct dnn_layer *l, const struct dnn_update_args *a,
                                const struct dnn_tile_params *p, size_t rows) DNN_MUST_CHECK;

/*
 * dnn_network_update_args - what dnn_network_update_range hands layer @i's update now: the
 * images per update, the scheduled rate for the network's `seen` times the layer's rate
 * scale, momentum, decay, adam's terms.
 */
void dnn_network_update_args(const struct dnn_network *net, size_t i, struct dnn_update_args *a);

/* Columns a convolution's lowered products should reach (dnn_network_set_lowering): in the
 * backward pass an output of out_h*out_w pixels lowers ceil(DNN_LOWER_COLUMNS /
 * (out_h*out_w)) images side by side, in the forward pass ceil(DNN_LOWER_FORWARD_COLUMNS /
 * (out_h*out_w)). Measured with `bench_dnn gemm-size` (best of 3, AVX2): the weight
 * gradient's product with 64 terms (an 8x8 output) runs at 31-46 GFLOP/s, with 512 at 53-75;
 * the input delta's at 65, with 512 at 79; beyond 512 neither gains. The forward product
 * already runs at its best with 64 columns (512x64x4608: 75 GFLOP/s, 512x512x4608: 72), and
 * lowering it more only moved a wider column matrix through the caches (VGG-7's 8x8 layers
 * 15% slower), so the forward lowers only outputs under 64 pixels (128x36x1152: 49, at 360
 * columns 67). */
#define DNN_LOWER_COLUMNS 512
#define DNN_LOWER_FORWARD_COLUMNS 64
/* The scratch dnn_network_set_lowering allows by default: 32 MiB (VGG-7 at batch 50 takes
 * 10.5 MB). */
#define DNN_LOWER_BYTES_DEFAULT ((size_t)32 << 20)

/*
 * dnn_network_set_lowering - lets the convolutional layers of @net whose output has fewer than
 * DNN_LOWER_COLUMNS pixels lower up to @max_images images side by side into one column matrix
 * (channels*size*size rows, images*out_h*out_w columns) and run one GEMM per group of images
 * for the weight gradient and the input delta (and, under DNN_LOWER_FORWARD_COLUMNS pixels,
 * the forward pass), instead of one per image.
 * Allocates one scratch (malloc, outside the arena, never more than @max_bytes) for the
 * largest layer's group: images * (channels*size*size + filters) * out_h*out_w floats per
 * convolution group. @max_images < 2, or a budget too small for 2 images of any layer, frees
 * it and leaves every layer one image at a time, as created (the TA never calls this: its
 * secure-memory plan, dnn_plan_build, has no such scratch). First, within the same
 * @max_bytes, the transformed filters of the largest layer that takes the Winograd path
 * (net->wino_u, 16 * filters * c floats; @max_images does not matter to them).
 * Results are bit for bit the same for any number of images and of threads. Returns DNN_OK,
 * DNN_ERR_NOMEM (net is then one image at a time, filters transformed per block) or
 * DNN_ERR_OVERFLOW.
 */
enum dnn_status dnn_network_set_lowering(struct dnn_network *net, int max_images,
                                         size_t max_bytes) DNN_MUST_CHECK;

/* The memory dnn_network_set_column_cache allows by default: 32 MiB (darknetp's
 * -col_cache_mb). Layers that slide (conv_sliding.h) or take the Winograd path
 * (conv_winograd.h) keep none: the fixture's LeNet keeps nothing, cfg/fashion_lenet.cfg its
 * second convolution (31.4 MB; training peaks at 74 MB, under upstream darknet's 78 MB on the
 * same data, README, Benchmark), VGG-7 at batch 50 its first (5.5 MB; its 3x3 layers after
 * it are Winograd's). */
#define DNN_COL_CACHE_BYTES_DEFAULT ((size_t)32 << 20)

/*
 * dnn_network_set_column_cache - lets the convolutional layers of a training network keep
 * the column matrices (im2col) their forward pass lowers, for their backward pass's weight
 * gradient, which otherwise lowers every image a second time (darknet's way).
 * Layers are served in order, first come: a layer whose columns, groups * (size*size*
 * c/groups) * batch * out_h*out_w floats, fit what is left of @max_bytes keeps them, one
 * that does not is skipped (a later, smaller one may fit). 1x1 stride-1 layers without
 * padding (they read their input as it is), antialiased layers, layers that slide or take
 * the Winograd path (they lower nothing) and layers whose backward never runs (at or before
 * a frozen one) keep none. One malloc outside the arena; @max_bytes
 * 0, or an inference network, frees it. The TA never calls this (its secure-memory plan has
 * no such memory). A forward pass without training, or a backward on another input than the
 * forward's, lowers again; the input itself must not change between a training forward and
 * its backward (no caller changes it: darknet's step, subdivisions, dropout with its own
 * output, the TEE split of host/pnet.c). The columns are the floats im2col would recompute,
 * so results are bit for bit the same for any budget, lowering and thread count.
 * Returns DNN_OK or DNN_ERR_NOMEM (net then keeps no columns).
 */
enum dnn_status dnn_network_set_column_cache(struct dnn_network *net,
                                             size_t max_bytes) DNN_MUST_CHECK;

/* Frees the network and wipes its buffers (protected weights must not linger). NULL is fine. */
void dnn_network_free(struct dnn_network *net);
/* Lends net the threads of p (copied; p->ctx must outlive the network's use), or takes them
 * back when p is NULL. Results are bit for bit the same either way. With threads, allocates
 * a scratch per task of the loops over images (DNN_ERR_NOMEM: net stays serial). */
enum dnn_status dnn_network_set_parallel(struct dnn_network *net,
                                         const struct dnn_parallel *p) DNN_MUST_CHECK;

/*
 * Runs layers [first, last] forward on one batch. input is (batch, layers[first].inputs);
 * truth is (batch, net->truths) or NULL. When train is true the deltas of those
 * layers are cleared first (backward adds into them).
 */
void dnn_network_forward_range(struct dnn_network *net, size_t first, size_t last,
                               const float *input, const float *truth, bool train);

/*
 * Backward through layers [last .. first]. input is what forward_range got;
 * input_delta (batch, layers[first].inputs) receives the delta at first's
 * input (added) or is NULL.
 */
void dnn_network_backward_range(struct dnn_network *net, size_t first, size_t last,
                                const float *input, float *input_delta);

/* Update the parameters of layers [first, last] with the current rate. */
void dnn_network_update_range(struct dnn_network *net, size_t first, size_t last);

/* Whole-network forms. */
void dnn_network_forward(struct dnn_network *net, const float *input, const float *truth,
                         bool train);
/* Mean of the layer costs of the last forward over the layers that have one. */
float dnn_network_cost(const struct dnn_network *net);

/*
 * One training step on one batch as darknet's train_network_datum: seen += batch,
 * forward, backward, and update when a whole batch*subdivisions has been seen.
 * Returns the network cost of this batch.
 */
float dnn_network_train_batch(struct dnn_network *net, const float *input, const float *truth);

/* Inference on one batch; returns the output of the last layer that is not a cost layer. */
const float *dnn_network_predict(struct dnn_network *net, const float *input);

/* Index of the last layer that is not a cost layer (darknet's network output). */
size_t dnn_network_output_index(const struct dnn_network *net);

/* Completed weight updates: seen / (batch * subdivisions). */
uint64_t dnn_network_current_batch(const struct dnn_network *net);

/* Learning rate for the current batch under the cfg's policy and burn_in. */
float dnn_network_current_rate(const struct dnn_network *net);

/*
 * dnn_network_clear_state - zero every buffer of the arena that is not a parameter: outputs,
 * inference scratch, the workspace and every training buffer (deltas, weight/bias/scale
 * updates, which carry momentum, batch statistics, masks). What remains is the parameters,
 * `seen` and the per-layer random streams. The TA calls it on every load, so that nothing
 * computed from earlier parameters survives (DESIGN.md invariant 6).
 */
void dnn_network_clear_state(struct dnn_network *net);

/* Fills index[0..k) with the positions of the k largest of a[0..n), largest
 * first, earlier index first among equals (darknet's top_k); -1 past n. */
void dnn_top_k(const float *a, size_t n, size_t k, int *index);

/* Floating-point operations of one forward pass of one image (for the layer table). */
double dnn_layer_flops(const struct dnn_layer *l);

#endif
