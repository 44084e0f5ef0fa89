#include "host/layer_table.h"

/* Columns as darknet prints them, so users' habits and scripts carry over. */
void dz_print_layer_table(FILE *f, const struct dnn_network *net, int ta_first, int ta_last)
{
    fprintf(f, "layer     filters    size              input                output\n");
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        const struct dnn_layer_spec *s = &l->spec;
        const char *ta = ((int)i >= ta_first && (int)i <= ta_last) ? "_TA" : "";
        char name[32];
        snprintf(name, sizeof name, "%s%s", l->ops->name, ta);
        fprintf(f, "%5zu ", i);
        switch (l->kind) {
        case DNN_LAYER_CONVOLUTIONAL:
            fprintf(f, "%-6s%5d %2d x%2d /%2d  %4d x%4d x%4d   ->  %4d x%4d x%4d  %5.3f BFLOPs\n",
                    name, s->filters, s->size, s->size, s->stride, l->w, l->h, l->c, l->out_w,
                    l->out_h, l->out_c, dnn_layer_flops(l) / 1e9);
            break;
        case DNN_LAYER_LOCAL:
            fprintf(f, "%-6s%5d %2d x%2d /%2d  %4d x%4d x%4d   ->  %4d x%4d x%4d\n", name,
                    s->filters, s->size, s->size, s->stride, l->w, l->h, l->c, l->out_w, l->out_h,
                    l->out_c);
            break;
        case DNN_LAYER_MAXPOOL:
            fprintf(f, "%-13s%d x %d / %d  %4d x%4d x%4d   ->  %4d x%4d x%4d\n", name, s->size,
                    s->size, s->stride, l->w, l->h, l->c, l->out_w, l->out_h, l->out_c);
            break;
        case DNN_LAYER_AVGPOOL:
            fprintf(f, "%-24s%4d x%4d x%4d   ->  %4d\n", name, l->w, l->h, l->c, l->out_c);
            break;
        case DNN_LAYER_CONNECTED:
            fprintf(f, "%-37s%4zu  ->  %4zu\n", name, l->inputs, l->outputs);
            break;
        case DNN_LAYER_DROPOUT:
            fprintf(f, "%-14sp = %.2f               %4zu  ->  %4zu\n", name, (double)s->probability,
                    l->inputs, l->outputs);
            break;
        case DNN_LAYER_SOFTMAX:
            fprintf(f, "%-47s%4zu\n", name, l->inputs);
            break;
        case DNN_LAYER_COST:
            fprintf(f, "%-47s%4zu\n", name, l->inputs);
            break;
        case DNN_LAYER_BATCHNORM:
            fprintf(f, "%-24s%4d x%4d x%4d   ->  %4d x%4d x%4d\n", name, l->w, l->h, l->c, l->out_w,
                    l->out_h, l->out_c);
            break;
        case DNN_LAYER_SHORTCUT:
            if (s->n_route > 0) { /* AlexeyAB's several sources: all of them, in order */
                char from[96];
                int at = snprintf(from, sizeof from, "%d", s->from);
                for (int r = 0; r < s->n_route && at > 0 && (size_t)at < sizeof from; r++)
                    at += snprintf(from + at, sizeof from - (size_t)at, ",%d", s->route[r]);
                fprintf(f, "%-5s%-19s%4d x%4d x%4d   ->  %4d x%4d x%4d\n", name, from, l->w, l->h,
                        l->c, l->out_w, l->out_h, l->out_c);
                break;
            }
            fprintf(f, "%-5s%3d                %4d x%4d x%4d   ->  %4d x%4d x%4d\n", name, s->from,
                    l->w, l->h, l->c, l->out_w, l->out_h, l->out_c);
            break;
        case DNN_LAYER_ROUTE:
            fprintf(f, "%s", name);
            for (int r = 0; r < s->n_route; r++)
                fprintf(f, " %d", s->route[r]);
            fprintf(f, "\n");
            break;
        case DNN_LAYER_SCALE_CHANNELS:
        case DNN_LAYER_SAM:
            fprintf(f, "%-5s%3d                %4d x%4d x%4d   ->  %4d x%4d x%4d\n", name, s->from,
                    l->w, l->h, l->c, l->out_w, l->out_h, l->out_c);
            break;
        case DNN_LAYER_CROP:
        case DNN_LAYER_REORG:
        case DNN_LAYER_UPSAMPLE:
        case DNN_LAYER_ACTIVATION:
        case DNN_LAYER_L2NORM:
        case DNN_LAYER_NORMALIZATION:
            fprintf(f, "%-24s%4d x%4d x%4d   ->  %4d x%4d x%4d\n", name, l->w, l->h, l->c, l->out_w,
                    l->out_h, l->out_c);
            break;
        case DNN_LAYER_KIND_COUNT:
            fprintf(f, "?\n");
            break;
        }
    }
}
