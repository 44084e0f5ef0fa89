#include "host/data_options.h"

#include <stdio.h>
#include <string.h>

int dz_data_options_read(const char *path, struct dz_data_options *out, struct dk_error *err)
{
    memset(out, 0, sizeof *out);
    if (dk_cfg_read(path, true, &out->cfg, err) != 0)
        return -1;
    struct dk_cfg_section *s = &out->cfg->sections[0];
    if (dk_cfg_get_int(out->cfg, s, "classes", 0, &out->classes, err) != 0 ||
        dk_cfg_get_int(out->cfg, s, "top", 0, &out->top, err) != 0)
        goto fail;
    if (out->classes < 0 || out->top < 0) {
        dk_fail(err, "%s: classes and top must not be negative", path);
        goto fail;
    }
    out->train = dk_cfg_get_str(s, "train", NULL);
    out->valid = dk_cfg_get_str(s, "valid", NULL);
    out->train_labels = dk_cfg_get_str(s, "train_labels", NULL);
    out->valid_labels = dk_cfg_get_str(s, "valid_labels", NULL);
    out->mia_members = dk_cfg_get_str(s, "mia_members", NULL);
    out->mia_members_labels = dk_cfg_get_str(s, "mia_members_labels", NULL);
    out->mia_nonmembers = dk_cfg_get_str(s, "mia_nonmembers", NULL);
    out->mia_nonmembers_labels = dk_cfg_get_str(s, "mia_nonmembers_labels", NULL);
    out->labels = dk_cfg_get_str(s, "labels", NULL);
    out->names = dk_cfg_get_str(s, "names", NULL);
    out->backup = dk_cfg_get_str(s, "backup", "backup/");
    if (out->cfg->notes)
        fputs(out->cfg->notes, stderr);
    for (size_t i = 0; i < s->n_opts; i++)
        if (!s->opts[i].used)
            fprintf(stderr, "%s:%d: note: key '%s' is not used by darknetp\n", path,
                    s->opts[i].line, s->opts[i].key);
    return 0;
fail:
    dz_data_options_free(out);
    return -1;
}

void dz_data_options_free(struct dz_data_options *o)
{
    dk_cfg_free(o->cfg);
    memset(o, 0, sizeof *o);
}
