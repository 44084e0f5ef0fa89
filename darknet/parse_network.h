/*
 * parse_network.h - a darknet network .cfg turned into engine input.
 *
 * Semantics and defaults are those of pjreddie/darknet's parser.c
 * (parse_net_options, parse_convolutional, ...): the first section is [net] or
 * [network]; each later section is one layer, numbered from 0. Where darknet
 * would guess or crash, this parser stops with "path:line: ..." instead:
 *  - keys darknet reads for features this engine lacks are errors unless they
 *    hold their neutral value (xnor=0, dontload=0, adam=0, dilation=1, ...);
 *    other keys it does not read are warnings in m->notes, as darknet's
 *    "Unused field" (a key darknet ignores changes nothing);
 *  - numbers must be whole numbers (darknet's atoi/atof take "3x" as 3);
 *  - unknown activation, policy and cost type names are errors (darknet falls
 *    back to relu, constant and sse);
 *  - batch must be a multiple of subdivisions (darknet rounds down);
 *  - route/shortcut indexes must name an earlier layer;
 *  - a key irrelevant to the chosen policy (gamma with policy=poly) is a warning.
 * `stopbackward` (any nonzero value) on layer S marks layers 0..S frozen
 * (dnn_layer_spec.frozen; the last such layer counts), as darknet's backward pass stops
 * there. Layer shapes are not computed here; the engine's setup does that.
 */
#ifndef DK_PARSE_NETWORK_H
#define DK_PARSE_NETWORK_H

#include <stdbool.h>
#include <stddef.h>

#include "darknet/cfg.h"
#include "darknet/error.h"
#include "darknet/tree.h"
#include "dnn/dnn.h"

/* Training-time image augmentation from [net] (darknet's classifier data loader). */
struct dk_augment {
    int min_crop, max_crop; /* defaults: width and 2*width */
    float min_ratio;        /* default min_crop/width; darknet crops to (int)(ratio*width) */
    float max_ratio;        /* default max_crop/width */
    float angle;            /* default 0 */
    float aspect;           /* default 1 */
    float hue;              /* default 0 */
    float saturation;       /* default 1 */
    float exposure;         /* default 1 */
    bool flip;              /* default true: pjreddie's loader always flips half the images */
    bool center;            /* default false */
    float label_smooth_eps; /* AlexeyAB's, default 0: see struct dk_augment_params */
    int mixup;              /* enum dk_mix_kind from AlexeyAB's mixup, cutmix, mosaic; 0 */
    int blur;               /* AlexeyAB's blur=N, default 0 (dk_blur_ksize) */
};

struct dk_model {
    struct dnn_net_config net; /* net.batch is already cfg batch / subdivisions */
    struct dk_augment aug;
    struct dnn_layer_spec *specs; /* (n) layer i = the (i+1)-th section */
    int *lines;                   /* (n) line of each layer's section header, for messages */
    size_t n;
    int cfg_batch; /* batch as written in the cfg, before dividing by subdivisions */
    /* Why train must refuse this cfg ("path:line: key 'cutmix=1' ..."), "" when it may
     * train: AlexeyAB's training-only keys darknetp does not implement. */
    char train_refusal[512];
    /* The class tree of a [softmax] with tree= (at most one per cfg), read when the cfg
     * is parsed; that layer's spec.tree_group_size points into it. n == 0 without one. */
    struct dk_tree tree;
    /* darknet's net->hierarchy: the network's last [softmax] is the one with the tree, so
     * predictions go through dk_tree_predictions before top-k. */
    bool hierarchy;
    char *notes; /* warnings for the user ("path:line: warning: ...\n" lines), or NULL;
                  * the parser never prints: callers write these to stderr */
};

/*
 * dk_parse_network - read a darknet .cfg file into *out.
 * Returns 0, or -1 with a "path:line: ..." message in err; *out is then empty
 * (safe to pass to dk_model_free). Limits: those of dk_cfg_read, and at most
 * DK_MAX_LAYERS (262,144) layers.
 */
int dk_parse_network(const char *cfg_path, struct dk_model *out, struct dk_error *err);

/* The same from an already-read cfg (its `used` flags are updated). */
int dk_parse_network_cfg(struct dk_cfg *cfg, struct dk_model *out, struct dk_error *err);

/* Frees what dk_parse_network allocated and zeroes *m. NULL is fine. */
void dk_model_free(struct dk_model *m);

#endif
