/*
 * tree.h - darknet's class hierarchy file (a [softmax] layer's tree=, pjreddie's
 * data/9k.tree) and what darknet computes with it outside the layer.
 *
 * Format: one line per class, in class order: `name parent_index`, where
 * parent_index is -1 for a root or the 0-based line of the parent. Classes that
 * follow one another with the same parent form a group (a run of siblings); the
 * layer takes a softmax over each group, so each value is the probability of the
 * class given its parent. The path is used as given, relative to the working
 * directory, as darknet's fopen(tree_file) does and as every other file darknetp's
 * cfg and .data files name.
 *
 * Stricter than darknet's read_tree, which reads anything (a missing parent becomes
 * -1, a blank line a nameless root, a later parent is accepted and gives
 * hierarchy_predictions wrong products): each line must hold a name and a whole
 * parent index, and the parent must be an earlier line, so that multiplying along
 * the lines in order (hierarchy_predictions) sees each parent's absolute probability
 * before its children's.
 */
#ifndef DK_TREE_H
#define DK_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "darknet/error.h"
#include "dnn/dnn.h"

/* Darknet's SECRET_NUM: the truth of a group the label says nothing about. */
#define DK_TREE_UNLABELLED DNN_SECRET_NUM

struct dk_tree {
    size_t n;          /* classes (lines) */
    int *parent;       /* (n) parent class, -1 for a root; always < the class itself */
    bool *leaf;        /* (n) no class names it as its parent */
    char **name;       /* (n) first word of each line, inside text */
    int groups;        /* runs of consecutive classes with one parent */
    int *group_size;   /* (groups) classes in each run, >= 1 */
    int *group_offset; /* (groups) first class of each run */
    char *text;        /* the file's bytes, split in place */
};

/*
 * dk_tree_read - read a tree file into *out.
 * Returns 0, or -1 with a message naming the file (and line, when one is at fault):
 * "PATH: empty tree file", "PATH:L: expected 'name parent_index', got '...'",
 * "PATH:L: parent index 'x' is not a whole number >= -1", "PATH:L: class 'c' has
 * parent P, which is not an earlier line", "PATH: too many lines (more than N)";
 * and the file errors of darknet/user_file.h. Limits: DK_NAMES_MAX_BYTES (16 MiB)
 * and DK_NAMES_MAX_LINES (2^20) lines. *out is empty on failure.
 */
int dk_tree_read(const char *path, struct dk_tree *out, struct dk_error *err);

/* Frees what dk_tree_read allocated and zeroes *t. NULL is fine. */
void dk_tree_free(struct dk_tree *t);

/*
 * dk_tree_predictions - darknet's hierarchy_predictions with stride 1: the layer's
 * conditional probabilities p (n = t->n values) become absolute ones in place, each
 * multiplied by its parent's (already absolute) value; with only_leaves, the classes
 * that are some class's parent are then set to 0 (darknet's classifier predict and
 * valid pass 1).
 */
void dk_tree_predictions(const struct dk_tree *t, float *p, bool only_leaves);

/*
 * dk_tree_fill_truth - darknet's fill_hierarchy on one image's truth (n = t->n
 * values, one-hot or several labels): every ancestor of a labelled class is set to
 * 1, then every group with no non-zero value is set to DK_TREE_UNLABELLED, which
 * the tree softmax and a [cost] type=masked ignore.
 */
void dk_tree_fill_truth(const struct dk_tree *t, float *truth);

#endif
