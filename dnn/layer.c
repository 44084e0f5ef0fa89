/* layer.c - the pieces every layer kind shares: buffer requests, the parameter
 * table, the kind -> ops lookup and status names. */
#include "dnn/dnn_internal.h"

const char *dnn_status_str(enum dnn_status s)
{
    switch (s) {
    case DNN_OK:
        return "ok";
    case DNN_ERR_NOMEM:
        return "out of memory";
    case DNN_ERR_INVALID:
        return "invalid argument";
    case DNN_ERR_SHAPE:
        return "layer shapes do not fit";
    case DNN_ERR_OVERFLOW:
        return "size overflow";
    case DNN_ERR_UNSUPPORTED:
        return "unsupported";
    case DNN_ERR_LOSS_SIZE:
        return "a loss layer (softmax, cost) is not the size of the network's output "
               "(a loss layer must come last, or before layers of its own size)";
    default:
        break;
    }
    return "unknown status";
}

enum dnn_status dnn_layer_request(struct dnn_layer *l, void *ptr_addr, size_t count,
                                  size_t elem_size, enum dnn_buf_role role)
{
    if (l->n_buffers >= DNN_MAX_BUFFERS)
        return DNN_ERR_INVALID;
    struct dnn_buffer *b = &l->buffers[l->n_buffers++];
    b->ptr = (void **)ptr_addr;
    b->count = count;
    b->elem_size = elem_size;
    b->role = role;
    return DNN_OK;
}

enum dnn_status dnn_layer_request_act_input(struct dnn_layer *l)
{
    if (!dnn_activation_keeps_input(l->spec.activation))
        return DNN_OK;
    if (l->out_h <= 0 || l->out_w <= 0 || l->out_c <= 0 || l->batch <= 0)
        return DNN_OK; /* the network refuses the shape after setup */
    size_t hw = 0, outputs = 0, count = 0;
    if (!dnn_mul_size((size_t)l->out_h, (size_t)l->out_w, &hw) ||
        !dnn_mul_size(hw, (size_t)l->out_c, &outputs) ||
        !dnn_mul_size(outputs, (size_t)l->batch, &count))
        return DNN_ERR_OVERFLOW;
    return dnn_layer_request(l, &l->act_input, count, sizeof(float), DNN_BUF_TRAIN);
}

enum dnn_status dnn_layer_add_param(struct dnn_layer *l, const char *name, float **value,
                                    float **update, size_t count)
{
    if (l->n_params >= DNN_MAX_PARAMS)
        return DNN_ERR_INVALID;
    struct dnn_param *p = &l->params[l->n_params];
    enum dnn_status st = dnn_layer_request(l, value, count, sizeof(float), DNN_BUF_PARAM);
    if (st == DNN_OK && update)
        st = dnn_layer_request(l, update, count, sizeof(float), DNN_BUF_UPDATE);
    /* adam's moments live in the param entry itself (the table never moves). */
    if (st == DNN_OK && update && l->adam)
        st = dnn_layer_request(l, &p->adam_m, count, sizeof(float), DNN_BUF_UPDATE);
    if (st == DNN_OK && update && l->adam)
        st = dnn_layer_request(l, &p->adam_v, count, sizeof(float), DNN_BUF_UPDATE);
    if (st != DNN_OK)
        return st;
    l->n_params++;
    p->name = name;
    p->count = count;
    /* value/update are filled in when the network binds the buffers. */
    p->value = NULL;
    p->update = NULL;
    p->value_ref = value;
    p->update_ref = update;
    return DNN_OK;
}

const struct dnn_layer_ops *dnn_layer_ops_for(enum dnn_layer_kind kind)
{
    switch (kind) {
    case DNN_LAYER_CONVOLUTIONAL:
        return &dnn_convolutional_ops;
    case DNN_LAYER_CONNECTED:
        return &dnn_connected_ops;
    case DNN_LAYER_MAXPOOL:
        return &dnn_maxpool_ops;
    case DNN_LAYER_AVGPOOL:
        return &dnn_avgpool_ops;
    case DNN_LAYER_DROPOUT:
        return &dnn_dropout_ops;
    case DNN_LAYER_SOFTMAX:
        return &dnn_softmax_ops;
    case DNN_LAYER_COST:
        return &dnn_cost_ops;
    case DNN_LAYER_BATCHNORM:
        return &dnn_batchnorm_ops;
    case DNN_LAYER_SHORTCUT:
        return &dnn_shortcut_ops;
    case DNN_LAYER_ROUTE:
        return &dnn_route_ops;
    case DNN_LAYER_CROP:
        return &dnn_crop_ops;
    case DNN_LAYER_REORG:
        return &dnn_reorg_ops;
    case DNN_LAYER_SCALE_CHANNELS:
        return &dnn_scale_channels_ops;
    case DNN_LAYER_UPSAMPLE:
        return &dnn_upsample_ops;
    case DNN_LAYER_ACTIVATION:
        return &dnn_activation_ops;
    case DNN_LAYER_SAM:
        return &dnn_sam_ops;
    case DNN_LAYER_L2NORM:
        return &dnn_l2norm_ops;
    case DNN_LAYER_NORMALIZATION:
        return &dnn_normalization_ops;
    case DNN_LAYER_LOCAL:
        return &dnn_local_ops;
    case DNN_LAYER_KIND_COUNT:
    default:
        break;
    }
    return NULL;
}

bool dnn_kind_reads_from(enum dnn_layer_kind kind)
{
    return kind == DNN_LAYER_SHORTCUT || kind == DNN_LAYER_SCALE_CHANNELS || kind == DNN_LAYER_SAM;
}

int dnn_spec_reads(const struct dnn_layer_spec *spec, int out[DNN_MAX_READS])
{
    int n = 0;
    if (dnn_kind_reads_from(spec->kind))
        out[n++] = spec->from;
    if (spec->kind == DNN_LAYER_ROUTE || spec->kind == DNN_LAYER_SHORTCUT) {
        const int extra = spec->n_route < 0               ? 0
                          : spec->n_route > DNN_MAX_ROUTE ? DNN_MAX_ROUTE
                                                          : spec->n_route;
        for (int r = 0; r < extra; r++)
            out[n++] = spec->route[r];
    }
    return n;
}

/* The bits of a float, without <string.h> (unions are defined in C11). */
static uint32_t float_bits(float x)
{
    union {
        float f;
        uint32_t u;
    } b = {.f = x};
    return b.u;
}

float dnn_layer_rate_scale(const struct dnn_layer_spec *spec)
{
    return float_bits(spec->learning_rate_scale) == 0 ? 1.0f : spec->learning_rate_scale;
}

float dnn_layer_rate_scale_encode(float scale)
{
    if (!(scale < 1.0f || scale > 1.0f))
        return 0.0f; /* 1: the default */
    if (!(scale < 0.0f || scale > 0.0f))
        return -0.0f; /* a scale of 0, told apart from "not given" by its sign */
    return scale;
}
