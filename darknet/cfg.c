/*
 * cfg.c - darknet's ini-style configuration files (see cfg.h).
 */
#include "darknet/cfg.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <stdarg.h>
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest excerpt of a file's text quoted in a message. */
#define DK_CFG_QUOTE 80

/* darknet's strip() removes ' ', '\t' and '\n'; the other C whitespace
 * characters are removed too, so that CRLF files read the same. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Whether text[i], inside a value, starts a trailing comment ("filters=40   #32").
 * darknet strips the blanks and lets atoi stop at the '#'; here the comment is
 * cut off so every type of value reads the same. A .cfg value (a number, a
 * name, a list) never holds '#' or ';'; a .data value is a path that may, so
 * there only a '#' or ';' after a blank starts a comment.
 */
static bool starts_comment(const char *text, size_t i, bool sectionless)
{
    if (text[i] != '#' && text[i] != ';')
        return false;
    return !sectionless || (i > 0 && is_blank(text[i - 1]));
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Arrays grow to the next power of two, so no capacity needs to be stored. */
static bool grow(void **arr, size_t n, size_t elem)
{
    if (n != 0 && (n & (n - 1)) != 0)
        return true;
    size_t cap = n ? 2 * n : 4;
    if (cap > SIZE_MAX / elem)
        return false;
    void *p = realloc(*arr, cap * elem);
    if (!p)
        return false;
    *arr = p;
    return true;
}

static struct dk_cfg_section *add_section(struct dk_cfg *cfg, const char *name, size_t len,
                                          int line)
{
    if (!grow((void **)&cfg->sections, cfg->n_sections, sizeof *cfg->sections))
        return NULL;
    struct dk_cfg_section *s = &cfg->sections[cfg->n_sections];
    s->name = dup_range(name, len);
    if (!s->name)
        return NULL;
    s->line = line;
    s->opts = NULL;
    s->n_opts = 0;
    cfg->n_sections++;
    return s;
}

static int add_option(struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *text, int line,
                      struct dk_error *err)
{
    const char *eq = strchr(text, '=');
    if (!eq)
        return dk_fail(err, "%s:%d: expected key=value, got '%.*s'", cfg->path, line, DK_CFG_QUOTE,
                       text);
    size_t klen = (size_t)(eq - text);
    if (klen == 0)
        return dk_fail(err, "%s:%d: missing key before '=' in '%.*s'", cfg->path, line,
                       DK_CFG_QUOTE, text);
    /* The duplicate check below is linear in the section's keys: the cap keeps a
     * section of a million keys from costing a million squared comparisons. */
    if (sec->n_opts >= DK_CFG_MAX_KEYS)
        return dk_fail(err, "%s:%d: more than %d keys in one section (the limit)", cfg->path, line,
                       DK_CFG_MAX_KEYS);
    for (size_t i = 0; i < sec->n_opts; i++) {
        const char *k = sec->opts[i].key;
        /* darknet's option_find returns the first match and never reads the
         * later one: keep the first, and say so. */
        if (strlen(k) == klen && memcmp(k, text, klen) == 0) {
            dk_cfg_note(cfg,
                        "%s:%d: warning: key '%s' given again (first at line %d); the first "
                        "value '%.*s' is used, as darknet does",
                        cfg->path, line, k, sec->opts[i].line, DK_CFG_QUOTE, sec->opts[i].value);
            return 0;
        }
    }
    if (!grow((void **)&sec->opts, sec->n_opts, sizeof *sec->opts))
        return dk_fail(err, "%s: out of memory", cfg->path);
    struct dk_cfg_option *o = &sec->opts[sec->n_opts];
    o->key = dup_range(text, klen);
    o->value = dup_range(eq + 1, strlen(eq + 1));
    o->line = line;
    o->used = false;
    if (!o->key || !o->value) {
        free(o->key);
        free(o->value);
        return dk_fail(err, "%s: out of memory", cfg->path);
    }
    sec->n_opts++;
    return 0;
}

/* One stripped, non-empty, non-comment line. */
static int parse_line(struct dk_cfg *cfg, bool sectionless, const char *text, size_t len, int line,
                      struct dk_error *err)
{
    /* A section header in a data file, or a key before any section of a cfg: most often
     * the two files given in the wrong order, which the message says. */
    if (text[0] == '[' && sectionless && text[len - 1] == ']')
        return dk_fail(err,
                       "%s:%d: '%.*s' is a section header: this is a network cfg, not a data "
                       "file (key=value lines); the order is DATA CFG [WEIGHTS]",
                       cfg->path, line, DK_CFG_QUOTE, text);
    if (text[0] == '[' && !sectionless) {
        if (text[len - 1] != ']')
            return dk_fail(err, "%s:%d: section header '%.*s' lacks its closing ']'", cfg->path,
                           line, DK_CFG_QUOTE, text);
        if (len < 3)
            return dk_fail(err, "%s:%d: empty section name '[]'", cfg->path, line);
        if (!add_section(cfg, text + 1, len - 2, line))
            return dk_fail(err, "%s: out of memory", cfg->path);
        return 0;
    }
    if (cfg->n_sections == 0)
        return dk_fail(err,
                       "%s:%d: option '%.*s' before the first [section]; a network cfg starts "
                       "with [net] (a data file given as CFG? the order is DATA CFG [WEIGHTS])",
                       cfg->path, line, DK_CFG_QUOTE, text);
    return add_option(cfg, &cfg->sections[cfg->n_sections - 1], text, line, err);
}

int dk_cfg_read_mem(const char *name, const char *text, size_t len, bool sectionless,
                    struct dk_cfg **out, struct dk_error *err)
{
    int rc = -1;
    char *buf = NULL;
    struct dk_cfg *cfg = calloc(1, sizeof *cfg);

    *out = NULL;
    if (!cfg)
        return dk_fail(err, "%s: out of memory", name);
    cfg->path = dup_range(name, strlen(name));
    buf = malloc(len + 1);
    if (!cfg->path || !buf) {
        dk_fail(err, "%s: out of memory", name);
        goto out;
    }
    if (sectionless && !add_section(cfg, "", 0, 0)) {
        dk_fail(err, "%s: out of memory", name);
        goto out;
    }

    size_t pos = 0;
    int line = 0;
    /* Editors on Windows start UTF-8 files with a byte order mark; darknet's
     * reader would make it part of the first line, invisible in any message. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t raw = nl ? (size_t)(nl - start) : len - pos;
        pos += raw + (nl ? 1 : 0);
        line++;
        if (line == INT_MAX) {
            dk_fail(err, "%s: too many lines", name);
            goto out;
        }
        size_t n = 0;
        bool after_eq = false;
        for (size_t i = 0; i < raw; i++) {
            if (start[i] == '\0') {
                dk_fail(err,
                        "%s:%d: NUL byte: a binary file, not %s (a .weights file? the order is "
                        "DATA CFG WEIGHTS)",
                        name, line, sectionless ? "a data file" : "a network cfg");
                goto out;
            }
            if (after_eq && starts_comment(start, i, sectionless))
                break;
            if (start[i] == '=')
                after_eq = true;
            if (!is_blank(start[i]))
                buf[n++] = start[i];
        }
        buf[n] = '\0';
        if (n == 0 || buf[0] == '#' || buf[0] == ';')
            continue;
        if (parse_line(cfg, sectionless, buf, n, line, err) != 0)
            goto out;
    }
    *out = cfg;
    cfg = NULL;
    rc = 0;
out:
    free(buf);
    dk_cfg_free(cfg);
    return rc;
}

int dk_cfg_read(const char *path, bool sectionless, struct dk_cfg **out, struct dk_error *err)
{
    char *text = NULL;
    size_t len = 0;

    *out = NULL;
    if (dk_user_file_read(path, sectionless ? "a data file" : "a cfg file", DK_CFG_MAX_BYTES, &text,
                          &len, err) != 0)
        return -1;
    int rc = dk_cfg_read_mem(path, text, len, sectionless, out, err);
    free(text);
    return rc;
}

void dk_cfg_free(struct dk_cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_sections; i++) {
        struct dk_cfg_section *s = &cfg->sections[i];
        for (size_t j = 0; j < s->n_opts; j++) {
            free(s->opts[j].key);
            free(s->opts[j].value);
        }
        free(s->opts);
        free(s->name);
    }
    free(cfg->sections);
    free(cfg->path);
    free(cfg->notes);
    free(cfg);
}

/* Appends one line to cfg->notes; false when out of memory. */
static bool append_note(struct dk_cfg *cfg, const char *line)
{
    size_t add = strlen(line);
    char *p = realloc(cfg->notes, cfg->notes_len + add + 2);
    if (!p)
        return false;
    memcpy(p + cfg->notes_len, line, add);
    p[cfg->notes_len + add] = '\n';
    p[cfg->notes_len + add + 1] = '\0';
    cfg->notes = p;
    cfg->notes_len += add + 1;
    return true;
}

void dk_cfg_note(struct dk_cfg *cfg, const char *fmt, ...)
{
    char line[DK_CFG_NOTE_BYTES];
    va_list ap;

    /* Notes are advisory: one that cannot be kept is counted, never an error. */
    if (cfg->n_notes >= DK_CFG_MAX_NOTES) {
        cfg->n_dropped++;
        return;
    }
    va_start(ap, fmt);
    int w = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (w < 0 || !append_note(cfg, line)) {
        cfg->n_dropped++;
        return;
    }
    cfg->n_notes++;
}

char *dk_cfg_take_notes(struct dk_cfg *cfg)
{
    if (cfg->n_dropped) {
        char line[DK_CFG_NOTE_BYTES];
        snprintf(line, sizeof line, "%s: ... and %zu more warnings", cfg->path, cfg->n_dropped);
        (void)append_note(cfg, line);
    }
    char *notes = cfg->notes;
    cfg->notes = NULL;
    cfg->notes_len = 0;
    cfg->n_notes = 0;
    cfg->n_dropped = 0;
    return notes;
}

struct dk_cfg_section *dk_cfg_section_find(struct dk_cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].name, name) == 0)
            return &cfg->sections[i];
    }
    return NULL;
}

struct dk_cfg_option *dk_cfg_find(struct dk_cfg_section *sec, const char *key)
{
    for (size_t i = 0; i < sec->n_opts; i++) {
        if (strcmp(sec->opts[i].key, key) == 0) {
            sec->opts[i].used = true;
            return &sec->opts[i];
        }
    }
    return NULL;
}

const char *dk_cfg_get_str(struct dk_cfg_section *sec, const char *key, const char *def)
{
    const struct dk_cfg_option *o = dk_cfg_find(sec, key);
    return o ? o->value : def;
}

/* Whole-string conversions; false when s is not entirely a number in range. */
static bool parse_int(const char *s, int *out)
{
    char *end = NULL;
    if (*s == '\0')
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    char *end = NULL;
    if (*s == '\0')
        return false;
    /* darknet's atof yields a double that is then stored in a float: round the same way. */
    double d = strtod(s, &end);
    if (*end != '\0' || !(d <= FLT_MAX && d >= -FLT_MAX))
        return false;
    *out = (float)d;
    return true;
}

int dk_cfg_get_int(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key, int def,
                   int *out, struct dk_error *err)
{
    const struct dk_cfg_option *o = dk_cfg_find(sec, key);
    if (!o) {
        *out = def;
        return 0;
    }
    if (!parse_int(o->value, out))
        return dk_fail(err, "%s:%d: key '%s': expected an integer, got '%.*s'", cfg->path, o->line,
                       key, DK_CFG_QUOTE, o->value);
    return 0;
}

int dk_cfg_get_float(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                     float def, float *out, struct dk_error *err)
{
    const struct dk_cfg_option *o = dk_cfg_find(sec, key);
    if (!o) {
        *out = def;
        return 0;
    }
    if (!parse_float(o->value, out))
        return dk_fail(err, "%s:%d: key '%s': expected a finite number, got '%.*s'", cfg->path,
                       o->line, key, DK_CFG_QUOTE, o->value);
    return 0;
}

/* Splits o->value on commas and hands each item to one(); shared by both lists. */
static int get_list(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                    bool is_int, void *vals, size_t max, size_t *n, struct dk_error *err)
{
    const struct dk_cfg_option *o = dk_cfg_find(sec, key);
    const char *what = is_int ? "integers" : "numbers";
    char item[64];

    *n = 0;
    if (!o)
        return 0;
    const char *p = o->value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n == max)
            return dk_fail(err, "%s:%d: key '%s': more than %zu values", cfg->path, o->line, key,
                           max);
        bool ok = len > 0 && len < sizeof item;
        if (ok) {
            memcpy(item, p, len);
            item[len] = '\0';
            ok = is_int ? parse_int(item, (int *)vals + *n) : parse_float(item, (float *)vals + *n);
        }
        if (!ok)
            return dk_fail(err,
                           "%s:%d: key '%s': expected a comma-separated list of %s, got '%.*s'",
                           cfg->path, o->line, key, what, DK_CFG_QUOTE, o->value);
        (*n)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int dk_cfg_get_int_list(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                        int *vals, size_t max, size_t *n, struct dk_error *err)
{
    return get_list(cfg, sec, key, true, vals, max, n, err);
}

int dk_cfg_get_float_list(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                          float *vals, size_t max, size_t *n, struct dk_error *err)
{
    return get_list(cfg, sec, key, false, vals, max, n, err);
}

int dk_cfg_check_used(const struct dk_cfg *cfg, const struct dk_cfg_section *sec,
                      struct dk_error *err)
{
    for (size_t i = 0; i < sec->n_opts; i++) {
        const struct dk_cfg_option *o = &sec->opts[i];
        if (o->used)
            continue;
        if (sec->line == 0)
            return dk_fail(err, "%s:%d: unknown key '%s' in %s", cfg->path, o->line, o->key,
                           cfg->path);
        return dk_fail(err, "%s:%d: unknown key '%s' in [%s]", cfg->path, o->line, o->key,
                       sec->name);
    }
    return 0;
}

void dk_cfg_note_unused(struct dk_cfg *cfg, const struct dk_cfg_section *sec)
{
    for (size_t i = 0; i < sec->n_opts; i++) {
        const struct dk_cfg_option *o = &sec->opts[i];
        if (o->used)
            continue;
        if (sec->line == 0)
            dk_cfg_note(cfg, "%s:%d: warning: key '%s' is not used; ignored", cfg->path, o->line,
                        o->key);
        else
            dk_cfg_note(cfg, "%s:%d: warning: key '%s' in [%s] is not used; ignored", cfg->path,
                        o->line, o->key, sec->name);
    }
}
