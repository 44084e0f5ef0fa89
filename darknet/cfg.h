/*
 * cfg.h - darknet's ini-style configuration files.
 *
 * Two shapes share one reader:
 *  - network .cfg files: `[section]` headers followed by `key=value` lines;
 *  - data files (.data/.dataset): `key=value` lines and no sections at all
 *    (classes, train, valid, labels, names, backup, top, train_labels, valid_labels).
 *
 * Lines are read as darknet's read_cfg reads them: every whitespace character
 * anywhere in the line is removed first (so "output = 120" is "output=120"), then
 * a line that is empty or starts with '#' or ';' is skipped. Also as darknet
 * reads them, in effect:
 *  - a UTF-8 byte order mark at the start of the file is skipped;
 *  - a trailing comment after a value is cut off ("filters=40   #32" is 40,
 *    which darknet gets from atoi stopping at '#'): in a .cfg any '#' or ';'
 *    after the '=' starts one; in a data file (whose values are paths) only a
 *    '#' or ';' after a blank does;
 *  - a key given again in the same section keeps its first value (darknet's
 *    option_find returns the first match), with a warning naming both lines.
 * Unlike darknet, malformed lines are errors, not warnings: a line without '=',
 * an option before the first section of a .cfg, a header without its closing
 * ']', and an empty key.
 *
 * Every option keeps its line number and a `used` flag that the typed getters
 * set, so a caller can report the keys it never asked for. Warnings collect in
 * cfg->notes (newline-terminated lines "path:line: warning: ..."), at most
 * DK_CFG_MAX_NOTES of them plus a count of the rest; the caller prints them.
 */
#ifndef DK_CFG_H
#define DK_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include "darknet/error.h"

struct dk_cfg_option {
    char *key;   /* whitespace removed, never empty */
    char *value; /* whitespace removed, may be empty */
    int line;    /* 1-based line in the file */
    bool used;   /* set by the lookups below */
};

struct dk_cfg_section {
    char *name; /* between the brackets: "net", "convolutional"; "" for a sectionless file */
    int line;   /* line of the header; 0 for a sectionless file */
    struct dk_cfg_option *opts; /* (n_opts) in file order */
    size_t n_opts;
};

/* Warnings kept per file, and the longest one; the rest are counted. */
#define DK_CFG_MAX_NOTES 32
#define DK_CFG_NOTE_BYTES 512

struct dk_cfg {
    char *path; /* as given to the reader; used as the prefix of every message */
    struct dk_cfg_section *sections; /* (n_sections); exactly one when sectionless */
    size_t n_sections;
    char *notes;      /* warnings, one "...\n" line each; NULL when there are none */
    size_t notes_len; /* strlen(notes) */
    size_t n_notes;   /* lines in notes */
    size_t n_dropped; /* warnings past DK_CFG_MAX_NOTES (or out of memory), counted only */
};

/*
 * dk_cfg_read - read and split a configuration file.
 * @path:        file to read
 * @sectionless: true for .data/.dataset files (no headers; the result has one
 *               section named "" holding every option), false for .cfg files
 * @out:         receives the new cfg (free with dk_cfg_free); NULL on error
 * Returns 0, or -1 with "path:line: ..." (or "path: ..." for open/read errors) in err.
 * An empty .cfg file is not an error here (n_sections is 0); callers decide.
 * Limits (darknet/user_file.h): the file must be a regular file (a FIFO, device or
 * directory is refused without reading it) of at most DK_CFG_MAX_BYTES (16 MiB), and
 * a section holds at most DK_CFG_MAX_KEYS (1024) keys; both refusals name the limit.
 */
int dk_cfg_read(const char *path, bool sectionless, struct dk_cfg **out, struct dk_error *err);

/* The same from text in memory; @name is used in messages as the path. The key
 * limit applies; the size limit is the caller's. */
int dk_cfg_read_mem(const char *name, const char *text, size_t len, bool sectionless,
                    struct dk_cfg **out, struct dk_error *err);

/* Frees a cfg and everything in it. NULL is fine. */
void dk_cfg_free(struct dk_cfg *cfg);

/* First section with this name, or NULL. */
struct dk_cfg_section *dk_cfg_section_find(struct dk_cfg *cfg, const char *name);

/* The option with this key (marked used), or NULL. Borrowed from the section. */
struct dk_cfg_option *dk_cfg_find(struct dk_cfg_section *sec, const char *key);

/* The value of key (marked used), or def when absent. Borrowed from the section. */
const char *dk_cfg_get_str(struct dk_cfg_section *sec, const char *key, const char *def);

/*
 * Typed lookups. Each writes def to *out when the key is absent, and parses the
 * whole value otherwise (darknet's atoi/atof would read "3x" as 3 and "x" as 0;
 * here both are errors). Integers are decimal and must fit in an int; floats
 * are parsed as darknet does (to double, then rounded to float) and must be finite.
 * Return 0, or -1 with "path:line: key 'k': expected an integer, got 'v'".
 */
int dk_cfg_get_int(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key, int def,
                   int *out, struct dk_error *err);
int dk_cfg_get_float(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                     float def, float *out, struct dk_error *err);

/*
 * Comma-separated lists ("-1,-4", ".1,.1"). *n receives the number of values, 0
 * when the key is absent. Empty items ("1,,2" or a trailing comma) and more than
 * max items are errors.
 */
int dk_cfg_get_int_list(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                        int *vals, size_t max, size_t *n, struct dk_error *err);
int dk_cfg_get_float_list(const struct dk_cfg *cfg, struct dk_cfg_section *sec, const char *key,
                          float *vals, size_t max, size_t *n, struct dk_error *err);

/*
 * Fails on the first option of sec that no lookup has used:
 * "path:line: unknown key 'foo' in [convolutional]" ("... in path" when sectionless).
 */
int dk_cfg_check_used(const struct dk_cfg *cfg, const struct dk_cfg_section *sec,
                      struct dk_error *err);

/*
 * dk_cfg_note - add a warning line (printf-style, no trailing newline) to
 * cfg->notes. Never fails: past DK_CFG_MAX_NOTES, or out of memory, the
 * warning is only counted in n_dropped.
 */
void dk_cfg_note(struct dk_cfg *cfg, const char *fmt, ...) DK_PRINTF(2, 3);

/*
 * dk_cfg_note_unused - a warning per option of sec that no lookup used,
 * "path:line: warning: key 'foo' in [convolutional] is not used; ignored", as
 * darknet's option_unused prints "Unused field" and goes on.
 */
void dk_cfg_note_unused(struct dk_cfg *cfg, const struct dk_cfg_section *sec);

/*
 * dk_cfg_take_notes - the warnings collected so far, with a last line counting
 * those dropped; the caller owns the string (free()). NULL when there are none.
 * Resets cfg's notes.
 */
char *dk_cfg_take_notes(struct dk_cfg *cfg);

#endif
