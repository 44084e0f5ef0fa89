/*
 * tree.c - darknet's tree file and hierarchy_predictions / fill_hierarchy (tree.h).
 */
#include "darknet/tree.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Lines of text, the last one counted even without a final newline. */
static size_t count_lines(const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n + (len > 0 && text[len - 1] != '\n');
}

/* Splits line (NUL-terminated, no '\n') into its name and its parent word, in place.
 * Returns false when it is not two words. */
static bool split_line(char *line, char **name, char **parent)
{
    char *p = line;
    while (is_space(*p))
        p++;
    *name = p;
    while (*p && !is_space(*p))
        p++;
    if (p == *name || !*p)
        return false;
    *p++ = '\0';
    while (is_space(*p))
        p++;
    *parent = p;
    while (*p && !is_space(*p))
        p++;
    char *end = p;
    while (is_space(*p))
        p++;
    if (end == *parent || *p)
        return false;
    *end = '\0';
    return true;
}

static bool parse_parent(const char *word, long *out)
{
    char *end = NULL;
    errno = 0;
    const long v = strtol(word, &end, 10);
    if (errno != 0 || end == word || *end || v < -1 || v > INT_MAX)
        return false;
    *out = v;
    return true;
}

static int alloc_tree(struct dk_tree *t, size_t n, const char *path, struct dk_error *err)
{
    t->parent = calloc(n, sizeof *t->parent);
    t->leaf = calloc(n, sizeof *t->leaf);
    t->name = calloc(n, sizeof *t->name);
    t->group_size = calloc(n, sizeof *t->group_size);
    t->group_offset = calloc(n, sizeof *t->group_offset);
    if (!t->parent || !t->leaf || !t->name || !t->group_size || !t->group_offset)
        return dk_fail(err, "%s: out of memory for %zu classes", path, n);
    return 0;
}

/* Reads each line's class; lines are NUL-terminated in place. */
static int parse_lines(struct dk_tree *t, size_t len, const char *path, struct dk_error *err)
{
    char *line = t->text;
    for (size_t i = 0; i < t->n; i++) {
        char *nl = memchr(line, '\n', len - (size_t)(line - t->text));
        if (nl)
            *nl = '\0';
        const int lineno = (int)i + 1;
        char *name = NULL, *word = NULL;
        long parent = -1;
        if (strlen(line) != (nl ? (size_t)(nl - line) : len - (size_t)(line - t->text)))
            return dk_fail(err, "%s:%d: NUL byte in a text file", path, lineno);
        if (!split_line(line, &name, &word))
            return dk_fail(err, "%s:%d: expected 'name parent_index', got '%.80s'", path, lineno,
                           line);
        if (!parse_parent(word, &parent))
            return dk_fail(err,
                           "%s:%d: parent index '%.40s' of class '%.80s' is not a whole number "
                           ">= -1",
                           path, lineno, word, name);
        if (parent >= (long)i)
            return dk_fail(err,
                           "%s:%d: class '%.80s' has parent %ld, which is not an earlier line "
                           "(parents are 0-based lines and come before their children)",
                           path, lineno, name, parent);
        t->name[i] = name;
        t->parent[i] = (int)parent;
        line = nl ? nl + 1 : line + strlen(line);
    }
    return 0;
}

/* Runs of one parent, leaves: darknet's read_tree, less its empty first group. */
static void build_groups(struct dk_tree *t)
{
    t->groups = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (i == 0 || t->parent[i] != t->parent[i - 1]) {
            t->group_offset[t->groups] = (int)i;
            t->groups++;
        }
        t->group_size[t->groups - 1]++;
        t->leaf[i] = true;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->parent[i] >= 0)
            t->leaf[t->parent[i]] = false;
    }
}

int dk_tree_read(const char *path, struct dk_tree *out, struct dk_error *err)
{
    struct dk_tree t;
    memset(&t, 0, sizeof t);
    memset(out, 0, sizeof *out);
    size_t len = 0;
    if (dk_user_file_read(path, "a tree file", DK_NAMES_MAX_BYTES, &t.text, &len, err) != 0)
        return -1;
    t.n = count_lines(t.text, len);
    int rc = -1;
    if (t.n == 0) {
        dk_fail(err, "%s: empty tree file: expected one line 'name parent_index' per class", path);
        goto out;
    }
    if (t.n > DK_NAMES_MAX_LINES) {
        dk_fail(err, "%s: too many lines: %zu, the limit is %d", path, t.n,
                (int)DK_NAMES_MAX_LINES);
        goto out;
    }
    if (alloc_tree(&t, t.n, path, err) != 0 || parse_lines(&t, len, path, err) != 0)
        goto out;
    build_groups(&t);
    *out = t;
    return 0;
out:
    dk_tree_free(&t);
    return rc;
}

void dk_tree_free(struct dk_tree *t)
{
    if (!t)
        return;
    free(t->parent);
    free(t->leaf);
    free(t->name);
    free(t->group_size);
    free(t->group_offset);
    free(t->text);
    memset(t, 0, sizeof *t);
}

void dk_tree_predictions(const struct dk_tree *t, float *p, bool only_leaves)
{
    /* Parents come first (dk_tree_read checks), so p[parent] is already absolute. */
    for (size_t i = 0; i < t->n; i++) {
        if (t->parent[i] >= 0)
            p[i] *= p[t->parent[i]];
    }
    if (!only_leaves)
        return;
    for (size_t i = 0; i < t->n; i++) {
        if (!t->leaf[i])
            p[i] = 0;
    }
}

void dk_tree_fill_truth(const struct dk_tree *t, float *truth)
{
    for (size_t i = 0; i < t->n; i++) {
        if (truth[i] == 0)
            continue;
        for (int a = t->parent[i]; a >= 0; a = t->parent[a])
            truth[a] = 1;
    }
    for (int g = 0; g < t->groups; g++) {
        float *y = truth + t->group_offset[g];
        bool labelled = false;
        for (int k = 0; k < t->group_size[g] && !labelled; k++)
            labelled = y[k] != 0;
        for (int k = 0; k < t->group_size[g] && !labelled; k++)
            y[k] = DK_TREE_UNLABELLED;
    }
}
