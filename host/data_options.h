/* data_options.h - darknet's .data / .dataset file: where the data and labels are. */
#ifndef DZ_DATA_OPTIONS_H
#define DZ_DATA_OPTIONS_H

#include "darknet/cfg.h"

struct dz_data_options {
    struct dk_cfg *cfg;       /* owns the strings below */
    int classes;              /* 0 when absent */
    int top;                  /* 0 when absent */
    const char *train;        /* image list or IDX image file, or NULL */
    const char *valid;        /* likewise */
    const char *train_labels; /* IDX label file for an IDX `train` */
    const char *valid_labels;
    /* classifier mia: the known members and non-members when they are not `train` and
     * `valid` (an image list or IDX file each, with an IDX label file for IDX) */
    const char *mia_members;
    const char *mia_members_labels;
    const char *mia_nonmembers;
    const char *mia_nonmembers_labels;
    const char *labels; /* class label substrings, one per line */
    const char *names;  /* printed names, one per line */
    const char *backup; /* checkpoint directory */
};

/* Reads path; unknown keys are reported on stderr (darknet's tools add their
 * own keys to these files) but are not errors. */
int dz_data_options_read(const char *path, struct dz_data_options *out, struct dk_error *err);
void dz_data_options_free(struct dz_data_options *o);

#endif
