/*
 * test_cfg.c - the ini reader (darknet/cfg.c) and the network cfg parser
 * (darknet/parse_network.c): darknet's defaults and meanings, and an error with
 * file, line and key for every malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "tests/helpers/fixtures.h"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[64];
static char paths[256][256];
static int n_paths;

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/dz-test-cfg-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_paths; i++)
        unlink(paths[i]);
    return rmdir(tmpdir);
}

/* Writes text to a new file in the temporary folder; returns its path. */
static const char *write_cfg(const char *name, const char *text)
{
    assert_true(n_paths < 256);
    char *p = paths[n_paths++];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return p;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* Parses text as a network cfg file and expects success. */
static void parse_ok(const char *name, const char *text, struct dk_model *m)
{
    struct dk_error err = {{0}};
    if (dk_parse_network(write_cfg(name, text), m, &err) != 0)
        fail_msg("%s", err.msg);
}

/* Parses text and expects failure with "path:line:" and each needle. */
static void parse_fails(const char *name, const char *text, int line, const char *needle1,
                        const char *needle2)
{
    struct dk_error err = {{0}};
    struct dk_model m;
    memset(&m, 0xab, sizeof m);
    const char *path = write_cfg(name, text);
    assert_int_equal(dk_parse_network(path, &m, &err), -1);
    assert_null(m.specs);
    assert_int_equal(m.n, 0);
    char where[512];
    if (line > 0)
        snprintf(where, sizeof where, "%s:%d: ", path, line);
    else
        snprintf(where, sizeof where, "%s: ", path);
    assert_contains(err.msg, where);
    if (needle1)
        assert_contains(err.msg, needle1);
    if (needle2)
        assert_contains(err.msg, needle2);
    dk_model_free(&m);
}

#define NET "[net]\nheight=8\nwidth=8\nchannels=3\n" /* 4 lines */

/* ------------------------------------------------------------- the reader */

static void test_reader_sections_and_lines(void **state)
{
    (void)state;
    const char *text = "# leading comment\n"
                       "[net]\n"
                       "  batch = 64 \r\n"
                       "\n"
                       "; another comment\n"
                       "note = a b\tc\n"
                       "[convolutional]\n"
                       "empty=\n"
                       "  # indented comment\n"
                       "size=3";
    struct dk_cfg *cfg = NULL;
    struct dk_error err = {{0}};
    if (dk_cfg_read_mem("mem.cfg", text, strlen(text), false, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->path, "mem.cfg");
    assert_int_equal(cfg->n_sections, 2);
    struct dk_cfg_section *net = &cfg->sections[0];
    assert_string_equal(net->name, "net");
    assert_int_equal(net->line, 2);
    assert_int_equal(net->n_opts, 2);
    assert_string_equal(net->opts[0].key, "batch");
    assert_string_equal(net->opts[0].value, "64"); /* all whitespace removed, as darknet */
    assert_int_equal(net->opts[0].line, 3);
    assert_string_equal(net->opts[1].value, "abc");
    assert_int_equal(net->opts[1].line, 6);
    struct dk_cfg_section *conv = dk_cfg_section_find(cfg, "convolutional");
    assert_ptr_equal(conv, &cfg->sections[1]);
    assert_null(dk_cfg_section_find(cfg, "maxpool"));
    assert_int_equal(conv->line, 7);
    assert_string_equal(dk_cfg_get_str(conv, "empty", "x"), "");
    assert_string_equal(dk_cfg_get_str(conv, "absent", "dflt"), "dflt");
    int size = 0;
    assert_int_equal(dk_cfg_get_int(cfg, conv, "size", 1, &size, &err), 0);
    assert_int_equal(size, 3);
    assert_int_equal(conv->opts[1].line, 10);
    /* Both of conv's keys were looked up; net's "note" was not. */
    assert_int_equal(dk_cfg_check_used(cfg, conv, &err), 0);
    int batch = 0;
    assert_int_equal(dk_cfg_get_int(cfg, net, "batch", 1, &batch, &err), 0);
    assert_int_equal(batch, 64);
    assert_int_equal(dk_cfg_check_used(cfg, net, &err), -1);
    assert_string_equal(err.msg, "mem.cfg:6: unknown key 'note' in [net]");
    dk_cfg_free(cfg);
}

static void test_reader_sectionless(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    fixture_dir("darknet-mnist-lenet", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/mnist.dataset", dir);
    struct dk_cfg *cfg = NULL;
    struct dk_error err = {{0}};
    if (dk_cfg_read(path, true, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->n_sections, 1);
    struct dk_cfg_section *s = &cfg->sections[0];
    assert_string_equal(s->name, "");
    int classes = 0, top = 0;
    assert_int_equal(dk_cfg_get_int(cfg, s, "classes", 0, &classes, &err), 0);
    assert_int_equal(dk_cfg_get_int(cfg, s, "top", 1, &top, &err), 0);
    assert_int_equal(classes, 10);
    assert_int_equal(top, 5);
    assert_string_equal(dk_cfg_get_str(s, "labels", NULL), "labels.list");
    assert_string_equal(dk_cfg_get_str(s, "names", NULL), "names.list");
    assert_null(dk_cfg_get_str(s, "train", NULL));
    assert_string_equal(dk_cfg_get_str(s, "backup", "backup/"), "backup/");
    assert_int_equal(dk_cfg_check_used(cfg, s, &err), 0);
    dk_cfg_free(cfg);

    /* A .data file has no sections: a header line means a cfg given as DATA. */
    const char *text = "classes=2\n[net]\n";
    assert_int_equal(dk_cfg_read_mem("x.data", text, strlen(text), true, &cfg, &err), -1);
    assert_null(cfg);
    assert_string_equal(err.msg, "x.data:2: '[net]' is a section header: this is a network cfg, "
                                 "not a data file (key=value lines); the order is DATA CFG "
                                 "[WEIGHTS]");
    text = "classes=2\n[net\n";
    assert_int_equal(dk_cfg_read_mem("x.data", text, strlen(text), true, &cfg, &err), -1);
    assert_string_equal(err.msg, "x.data:2: expected key=value, got '[net'");

    /* An empty .data file has its one, empty section. */
    assert_int_equal(dk_cfg_read_mem("e.data", "", 0, true, &cfg, &err), 0);
    assert_int_equal(cfg->n_sections, 1);
    assert_int_equal(cfg->sections[0].n_opts, 0);
    dk_cfg_free(cfg);

    text = "classes=2\nbogus=1\n";
    assert_int_equal(dk_cfg_read_mem("u.data", text, strlen(text), true, &cfg, &err), 0);
    assert_int_equal(dk_cfg_get_int(cfg, &cfg->sections[0], "classes", 0, &classes, &err), 0);
    assert_int_equal(dk_cfg_check_used(cfg, &cfg->sections[0], &err), -1);
    assert_string_equal(err.msg, "u.data:2: unknown key 'bogus' in u.data");
    dk_cfg_note_unused(cfg, &cfg->sections[0]);
    assert_string_equal(cfg->notes, "u.data:2: warning: key 'bogus' is not used; ignored\n");
    dk_cfg_free(cfg);
}

static void reader_fails(const char *text, bool sectionless, const char *expected)
{
    struct dk_cfg *cfg = (struct dk_cfg *)1;
    struct dk_error err = {{0}};
    assert_int_equal(dk_cfg_read_mem("bad.cfg", text, strlen(text), sectionless, &cfg, &err), -1);
    assert_null(cfg);
    assert_string_equal(err.msg, expected);
}

static void test_reader_errors(void **state)
{
    (void)state;
    reader_fails("[net]\nbatch=1\nheight 28\n", false,
                 "bad.cfg:3: expected key=value, got 'height28'");
    reader_fails("\n# c\nbatch=1\n[net]\n", false,
                 "bad.cfg:3: option 'batch=1' before the first [section]; a network cfg starts "
                 "with [net] (a data file given as CFG? the order is DATA CFG [WEIGHTS])");
    reader_fails("[net\n", false, "bad.cfg:1: section header '[net' lacks its closing ']'");
    reader_fails("[net]\n[]\n", false, "bad.cfg:2: empty section name '[]'");
    reader_fails("[net]\n=5\n", false, "bad.cfg:2: missing key before '=' in '=5'");

    struct dk_cfg *cfg = NULL;
    struct dk_error err = {{0}};
    static const char nul[] = "[net]\nbatch=1\0\n";
    assert_int_equal(dk_cfg_read_mem("bad.cfg", nul, sizeof nul - 1, false, &cfg, &err), -1);
    assert_string_equal(err.msg, "bad.cfg:2: NUL byte: a binary file, not a network cfg (a "
                                 ".weights file? the order is DATA CFG WEIGHTS)");
    static const char nul_data[] = "classes=2\n\x01\0\n";
    assert_int_equal(dk_cfg_read_mem("bad.data", nul_data, sizeof nul_data - 1, true, &cfg, &err),
                     -1);
    assert_string_equal(err.msg, "bad.data:2: NUL byte: a binary file, not a data file (a "
                                 ".weights file? the order is DATA CFG WEIGHTS)");

    /* The same key in two sections is fine. */
    const char *text = "[a]\nk=1\n[b]\nk=2\n";
    assert_int_equal(dk_cfg_read_mem("ok.cfg", text, strlen(text), false, &cfg, &err), 0);
    dk_cfg_free(cfg);

    /* A missing file names the path and the reason. */
    assert_int_equal(dk_cfg_read("/nonexistent/dir/x.cfg", false, &cfg, &err), -1);
    assert_null(cfg);
    assert_string_equal(err.msg, "/nonexistent/dir/x.cfg: cannot open: No such file or directory");
}

/* Reads text that must parse; the caller frees. */
static struct dk_cfg *read_ok(const char *name, const char *text, size_t len, bool sectionless)
{
    struct dk_cfg *cfg = NULL;
    struct dk_error err = {{0}};
    if (dk_cfg_read_mem(name, text, len, sectionless, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    return cfg;
}

static void test_reader_as_darknet_reads(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    int v = 0;

    /* A UTF-8 byte order mark before [net] is skipped, not part of the header. */
    static const char bom[] = "\xEF\xBB\xBF[net]\nbatch=4\n";
    struct dk_cfg *cfg = read_ok("bom.cfg", bom, sizeof bom - 1, false);
    assert_int_equal(cfg->n_sections, 1);
    assert_string_equal(cfg->sections[0].name, "net");
    assert_null(cfg->notes);
    dk_cfg_free(cfg);
    /* ... and in a data file the first key keeps its name. */
    static const char bom_data[] = "\xEF\xBB\xBF"
                                   "classes=3\n";
    cfg = read_ok("bom.data", bom_data, sizeof bom_data - 1, true);
    assert_int_equal(dk_cfg_get_int(cfg, &cfg->sections[0], "classes", 0, &v, &err), 0);
    assert_int_equal(v, 3);
    dk_cfg_free(cfg);

    /* Trailing comments, as in AlexeyAB's efficientnet-lite3.cfg ("filters=40\t#32"). */
    const char *text = "[convolutional]\nfilters=40\t#32\nsize=3#5\nstride=1 ; x=2\n"
                       "activation=leaky   # was linear\n";
    cfg = read_ok("c.cfg", text, strlen(text), false);
    struct dk_cfg_section *s = &cfg->sections[0];
    assert_int_equal(s->n_opts, 4);
    assert_int_equal(dk_cfg_get_int(cfg, s, "filters", 0, &v, &err), 0);
    assert_int_equal(v, 40);
    assert_int_equal(dk_cfg_get_int(cfg, s, "size", 0, &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(dk_cfg_get_int(cfg, s, "stride", 0, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_string_equal(dk_cfg_get_str(s, "activation", NULL), "leaky");
    dk_cfg_free(cfg);

    /* In a data file a '#' inside a path is kept; after a blank it starts a comment. */
    text = "train=data/set#1/train.list\nclasses=10   # ten\n";
    cfg = read_ok("c.data", text, strlen(text), true);
    s = &cfg->sections[0];
    assert_string_equal(dk_cfg_get_str(s, "train", NULL), "data/set#1/train.list");
    assert_int_equal(dk_cfg_get_int(cfg, s, "classes", 0, &v, &err), 0);
    assert_int_equal(v, 10);
    dk_cfg_free(cfg);

    /* A duplicate key: the first value wins (darknet's option_find), with a warning
     * naming both lines; the same key in another section is no duplicate. */
    text = "[net]\nmomentum=0.9\ndecay=0.0005\n[conv]\ndecay=1\n[net2]\n\nmomentum = 0.5\n";
    cfg = read_ok("d.cfg", text, strlen(text), false);
    assert_null(cfg->notes);
    dk_cfg_free(cfg);
    text = "[net]\nmomentum=0.9\ndecay=0.0005\nmomentum=0.8\ndecay=0.00005\n";
    cfg = read_ok("d.cfg", text, strlen(text), false);
    s = &cfg->sections[0];
    assert_int_equal(s->n_opts, 2);
    float f = 0;
    assert_int_equal(dk_cfg_get_float(cfg, s, "momentum", 0, &f, &err), 0);
    assert_true(f == 0.9f);
    assert_int_equal(dk_cfg_get_float(cfg, s, "decay", 0, &f, &err), 0);
    assert_true(f == 0.0005f);
    assert_string_equal(cfg->notes,
                        "d.cfg:4: warning: key 'momentum' given again (first at line 2); the "
                        "first value '0.9' is used, as darknet does\n"
                        "d.cfg:5: warning: key 'decay' given again (first at line 3); the first "
                        "value '0.0005' is used, as darknet does\n");
    char *notes = dk_cfg_take_notes(cfg);
    assert_null(cfg->notes);
    assert_non_null(notes);
    free(notes);
    dk_cfg_free(cfg);

    /* Unused keys are warnings (darknet's "Unused field"); past the cap they are counted. */
    char many[8192];
    size_t len = (size_t)snprintf(many, sizeof many, "[maxpool]\n");
    for (int i = 0; i < DK_CFG_MAX_NOTES + 5; i++)
        len += (size_t)snprintf(many + len, sizeof many - len, "k%d=1\n", i);
    cfg = read_ok("u.cfg", many, len, false);
    assert_int_equal(dk_cfg_get_int(cfg, &cfg->sections[0], "k1", 0, &v, &err), 0);
    dk_cfg_note_unused(cfg, &cfg->sections[0]);
    assert_int_equal(cfg->n_notes, DK_CFG_MAX_NOTES);
    assert_int_equal(cfg->n_dropped, 4);
    assert_non_null(strstr(cfg->notes, "u.cfg:2: warning: key 'k0' in [maxpool] is not used; "
                                       "ignored\nu.cfg:4: warning: key 'k2'"));
    notes = dk_cfg_take_notes(cfg);
    assert_non_null(strstr(notes, "u.cfg: ... and 4 more warnings\n"));
    free(notes);
    dk_cfg_free(cfg);
}

/* The parser turns keys darknet ignores into warnings and keeps the network. */
static void test_parse_warnings(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("w1.cfg",
             NET "bar=2\npolicy=poly\nsteps=10,20\nmomentum=0.8\nmomentum=0.7\n"
                 "[convolutional]\nfilters=40   #32\nfoo=1\nstride_x=1\ndilation=1\n"
                 "[maxpool]\nfilters=2\n",
             &m);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.specs[0].filters, 40);
    assert_true(m.net.momentum == 0.8f);
    assert_non_null(m.notes);
    assert_contains(m.notes, "w1.cfg:9: warning: key 'momentum' given again (first at line 8)");
    assert_contains(m.notes, "w1.cfg:7: warning: key 'steps' has no effect with policy=poly");
    assert_contains(m.notes, "w1.cfg:5: warning: key 'bar' in [net] is not used; ignored");
    assert_contains(m.notes, "w1.cfg:12: warning: key 'foo' in [convolutional] is not used");
    assert_contains(m.notes, "w1.cfg:16: warning: key 'filters' in [maxpool] is not used");
    /* Each once: 'steps' is not warned about a second time as unused. */
    assert_null(strstr(m.notes, "key 'steps' in [net]"));
    dk_model_free(&m);
    assert_null(m.notes);

    /* AlexeyAB's training-only keys: a note, and a refusal kept for train */
    parse_ok("w7.cfg",
             NET "gaussian_noise=1\nlabel_smooth_eps=0.1\ncutmix=1\nblur=1\n[connected]\n", &m);
    assert_contains(m.notes,
                    "w7.cfg:5: warning: key 'gaussian_noise=1' changes only how darknet trains");
    /* label_smooth_eps, cutmix and blur are implemented: read, no warning */
    assert_null(strstr(m.notes, "label_smooth_eps"));
    assert_true(m.aug.label_smooth_eps == 0.1f);
    assert_null(strstr(m.notes, "cutmix"));
    assert_null(strstr(m.notes, "blur"));
    assert_int_equal(m.aug.mixup, 2);
    assert_int_equal(m.aug.blur, 1);
    /* the first one */
    assert_contains(m.train_refusal, "w7.cfg:5: key 'gaussian_noise=1' in [net] is not supported "
                                     "for training (only gaussian_noise=0)");
    dk_model_free(&m);

    /* string keys at their neutral value are accepted */
    parse_ok("w6.cfg",
             NET "[connected]\n[shortcut]\nfrom=-1\nweights_type=none\n"
                 "weights_normalization=none\n",
             &m);
    assert_null(m.notes);
    dk_model_free(&m);

    /* AlexeyAB's activations parse by name. */
    parse_ok("w3.cfg",
             NET "[convolutional]\nactivation=mish\n[convolutional]\nactivation=swish\n"
                 "[convolutional]\nactivation=relu6\n[connected]\nactivation=hard_mish\n"
                 "[shortcut]\nfrom=-2\nactivation=gelu\n",
             &m);
    assert_int_equal(m.specs[0].activation, DNN_ACT_MISH);
    assert_int_equal(m.specs[1].activation, DNN_ACT_SWISH);
    assert_int_equal(m.specs[2].activation, DNN_ACT_RELU6);
    assert_int_equal(m.specs[3].activation, DNN_ACT_HARD_MISH);
    assert_int_equal(m.specs[4].activation, DNN_ACT_GELU);
    dk_model_free(&m);

    /* stopbackward freezes its layer and every one before it (the last one counts) */
    parse_ok("w4.cfg",
             NET "[convolutional]\nstopbackward=1\n[maxpool]\n[convolutional]\n"
                 "stopbackward=1\n[connected]\n",
             &m);
    assert_true(m.specs[0].frozen && m.specs[1].frozen && m.specs[2].frozen);
    assert_false(m.specs[3].frozen);
    dk_model_free(&m);
    parse_ok("w5.cfg", NET "[convolutional]\n[connected]\n", &m);
    assert_false(m.specs[0].frozen || m.specs[1].frozen);
    dk_model_free(&m);

    /* A clean file has no notes. */
    parse_ok("w2.cfg", NET "[connected]\noutput=2\n", &m);
    assert_null(m.notes);
    assert_string_equal(m.train_refusal, "");
    dk_model_free(&m);
}

static void test_reader_numbers(void **state)
{
    (void)state;
    const char *text = "[s]\n"
                       "i=-42\n"
                       "plus=+7\n"
                       "f=.8\n"
                       "e=1e-3\n"
                       "bad=abc\n"
                       "trail=3x\n"
                       "big=99999999999\n"
                       "fbad=1.5.2\n"
                       "huge=1e39\n"
                       "nan=nan\n"
                       "list=-1, -4,2\n"
                       "flist=.1,.2\n"
                       "hole=1,,2\n"
                       "tail=1,\n"
                       "long=1,2,3,4\n"
                       "empty=\n";
    struct dk_cfg *cfg = NULL;
    struct dk_error err = {{0}};
    assert_int_equal(dk_cfg_read_mem("n.cfg", text, strlen(text), false, &cfg, &err), 0);
    struct dk_cfg_section *s = &cfg->sections[0];
    int i = 0;
    float f = 0;

    assert_int_equal(dk_cfg_get_int(cfg, s, "absent", 17, &i, &err), 0);
    assert_int_equal(i, 17);
    assert_int_equal(dk_cfg_get_float(cfg, s, "absent", 2.5f, &f, &err), 0);
    assert_true(f == 2.5f);
    assert_int_equal(dk_cfg_get_int(cfg, s, "i", 0, &i, &err), 0);
    assert_int_equal(i, -42);
    assert_int_equal(dk_cfg_get_int(cfg, s, "plus", 0, &i, &err), 0);
    assert_int_equal(i, 7);
    assert_int_equal(dk_cfg_get_float(cfg, s, "f", 0, &f, &err), 0);
    assert_true(f == (float).8); /* atof rounding: double, then float */
    assert_int_equal(dk_cfg_get_float(cfg, s, "e", 0, &f, &err), 0);
    assert_true(f == (float)1e-3);
    /* An integer key also reads as a float. */
    assert_int_equal(dk_cfg_get_float(cfg, s, "i", 0, &f, &err), 0);
    assert_true(f == -42.0f);

    assert_int_equal(dk_cfg_get_int(cfg, s, "bad", 0, &i, &err), -1);
    assert_string_equal(err.msg, "n.cfg:6: key 'bad': expected an integer, got 'abc'");
    assert_int_equal(dk_cfg_get_int(cfg, s, "trail", 0, &i, &err), -1);
    assert_string_equal(err.msg, "n.cfg:7: key 'trail': expected an integer, got '3x'");
    assert_int_equal(dk_cfg_get_int(cfg, s, "big", 0, &i, &err), -1);
    assert_contains(err.msg, "n.cfg:8: key 'big'");
    assert_int_equal(dk_cfg_get_int(cfg, s, "f", 0, &i, &err), -1);
    assert_contains(err.msg, "n.cfg:4: key 'f': expected an integer");
    assert_int_equal(dk_cfg_get_int(cfg, s, "empty", 0, &i, &err), -1);
    assert_string_equal(err.msg, "n.cfg:17: key 'empty': expected an integer, got ''");
    assert_int_equal(dk_cfg_get_float(cfg, s, "fbad", 0, &f, &err), -1);
    assert_string_equal(err.msg, "n.cfg:9: key 'fbad': expected a finite number, got '1.5.2'");
    assert_int_equal(dk_cfg_get_float(cfg, s, "huge", 0, &f, &err), -1);
    assert_contains(err.msg, "n.cfg:10: key 'huge'");
    assert_int_equal(dk_cfg_get_float(cfg, s, "nan", 0, &f, &err), -1);
    assert_contains(err.msg, "n.cfg:11: key 'nan'");

    int iv[3] = {0};
    float fv[3] = {0};
    size_t n = 99;
    assert_int_equal(dk_cfg_get_int_list(cfg, s, "absent", iv, 3, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dk_cfg_get_int_list(cfg, s, "list", iv, 3, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(iv[0], -1);
    assert_int_equal(iv[1], -4);
    assert_int_equal(iv[2], 2);
    assert_int_equal(dk_cfg_get_float_list(cfg, s, "flist", fv, 3, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(fv[0] == (float).1 && fv[1] == (float).2);
    assert_int_equal(dk_cfg_get_int_list(cfg, s, "hole", iv, 3, &n, &err), -1);
    assert_string_equal(err.msg, "n.cfg:14: key 'hole': expected a comma-separated list of "
                                 "integers, got '1,,2'");
    assert_int_equal(dk_cfg_get_int_list(cfg, s, "tail", iv, 3, &n, &err), -1);
    assert_contains(err.msg, "n.cfg:15: key 'tail'");
    assert_int_equal(dk_cfg_get_int_list(cfg, s, "long", iv, 3, &n, &err), -1);
    assert_string_equal(err.msg, "n.cfg:16: key 'long': more than 3 values");
    dk_cfg_free(cfg);
}

/* ------------------------------------------------------------ the network */

static void test_parse_upstream_lenet(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    fixture_dir("darknet-mnist-lenet", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/mnist_lenet.cfg", dir);
    struct dk_model m;
    struct dk_error err = {{0}};
    if (dk_parse_network(path, &m, &err) != 0)
        fail_msg("%s", err.msg);

    assert_int_equal(m.cfg_batch, 100);
    assert_int_equal(m.net.batch, 100);
    assert_int_equal(m.net.subdivisions, 1);
    assert_int_equal(m.net.h, 28);
    assert_int_equal(m.net.w, 28);
    assert_int_equal(m.net.c, 3);
    assert_true(m.net.momentum == (float)0.9);
    assert_true(m.net.decay == (float)0.00005);
    assert_true(m.net.learning_rate == (float)0.01);
    assert_int_equal(m.net.policy, DNN_POLICY_POLY);
    assert_true(m.net.power == 4.0f);
    assert_int_equal(m.net.max_batches, 10000);
    assert_int_equal(m.net.burn_in, 0);
    assert_int_equal(m.aug.max_crop, 28);
    assert_int_equal(m.aug.min_crop, 28); /* default: width */
    assert_true(m.aug.max_ratio == 1.0f && m.aug.min_ratio == 1.0f);
    assert_true(m.aug.angle == 1 && m.aug.hue == 1 && m.aug.saturation == 1);
    assert_true(m.aug.exposure == 1 && m.aug.aspect == 1);
    assert_true(m.aug.flip);
    assert_false(m.aug.center);

    assert_int_equal(m.n, 11);
    const enum dnn_layer_kind kinds[11] = {
        DNN_LAYER_CONVOLUTIONAL, DNN_LAYER_MAXPOOL, DNN_LAYER_CONVOLUTIONAL, DNN_LAYER_MAXPOOL,
        DNN_LAYER_CONNECTED,     DNN_LAYER_DROPOUT, DNN_LAYER_CONNECTED,     DNN_LAYER_DROPOUT,
        DNN_LAYER_CONNECTED,     DNN_LAYER_SOFTMAX, DNN_LAYER_COST,
    };
    for (size_t i = 0; i < 11; i++)
        assert_int_equal(m.specs[i].kind, kinds[i]);
    enum dnn_activation relu, linear;
    assert_true(dnn_activation_from_name("relu", &relu));
    assert_true(dnn_activation_from_name("linear", &linear));
    const struct dnn_layer_spec *c = &m.specs[0];
    assert_int_equal(c->filters, 6);
    assert_int_equal(c->size, 5);
    assert_int_equal(c->stride, 1);
    assert_int_equal(c->pad, 2); /* pad=1 -> size/2 */
    assert_int_equal(c->groups, 1);
    assert_false(c->batch_normalize);
    assert_int_equal(c->activation, relu);
    assert_int_equal(m.specs[1].size, 2);
    assert_int_equal(m.specs[1].stride, 2);
    assert_int_equal(m.specs[1].pad, 1); /* maxpool default padding: size-1 */
    assert_int_equal(m.specs[4].outputs, 120);
    assert_int_equal(m.specs[4].activation, relu);
    assert_true(m.specs[5].probability == (float).8);
    assert_int_equal(m.specs[6].outputs, 84);
    assert_int_equal(m.specs[8].outputs, 10);
    assert_int_equal(m.specs[8].activation, linear);
    assert_int_equal(m.specs[9].softmax_groups, 1);
    assert_true(m.specs[9].temperature == 1.0f);
    assert_int_equal(m.specs[10].cost_type, DNN_COST_SSE);
    assert_true(m.specs[10].cost_scale == 1.0f);
    assert_int_equal(m.lines[0], 22);  /* the first [convolutional] */
    assert_int_equal(m.lines[10], 65); /* [cost] */
    dk_model_free(&m);
    assert_null(m.specs);
    dk_model_free(NULL);
}

static void test_parse_defaults(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("defaults.cfg",
             "[network]\nheight=8\nwidth=6\nchannels=2\n"
             "[convolutional]\n[connected]\n[maxpool]\n[avgpool]\n[dropout]\n[softmax]\n"
             "[cost]\n[batchnorm]\n[shortcut]\nfrom=-1\n[route]\nlayers=-2\n",
             &m);
    /* [net]: darknet's parse_net_options defaults */
    assert_int_equal(m.cfg_batch, 1);
    assert_int_equal(m.net.batch, 1);
    assert_int_equal(m.net.subdivisions, 1);
    assert_true(m.net.learning_rate == (float).001);
    assert_true(m.net.momentum == (float).9);
    assert_true(m.net.decay == (float).0001);
    assert_int_equal(m.net.policy, DNN_POLICY_CONSTANT);
    assert_true(m.net.power == 4.0f);
    assert_int_equal(m.net.max_batches, 0);
    assert_int_equal(m.net.burn_in, 0);
    assert_int_equal(m.aug.max_crop, 12); /* 2 * width */
    assert_int_equal(m.aug.min_crop, 6);  /* width */
    assert_true(m.aug.max_ratio == 2.0f);
    assert_true(m.aug.min_ratio == 1.0f);
    assert_true(m.aug.angle == 0 && m.aug.hue == 0);
    assert_true(m.aug.aspect == 1 && m.aug.saturation == 1 && m.aug.exposure == 1);
    assert_true(m.aug.flip);
    assert_false(m.aug.center);

    enum dnn_activation logistic, linear;
    assert_true(dnn_activation_from_name("logistic", &logistic));
    assert_true(dnn_activation_from_name("linear", &linear));
    assert_int_equal(m.n, 10);
    const struct dnn_layer_spec *s = m.specs;
    assert_int_equal(s[0].kind, DNN_LAYER_CONVOLUTIONAL);
    assert_int_equal(s[0].filters, 1);
    assert_int_equal(s[0].size, 1);
    assert_int_equal(s[0].stride, 1);
    assert_int_equal(s[0].pad, 0);
    assert_int_equal(s[0].groups, 1);
    assert_false(s[0].batch_normalize);
    assert_int_equal(s[0].activation, logistic);
    assert_int_equal(s[1].kind, DNN_LAYER_CONNECTED);
    assert_int_equal(s[1].outputs, 1);
    assert_int_equal(s[1].activation, logistic);
    assert_false(s[1].batch_normalize);
    assert_int_equal(s[2].kind, DNN_LAYER_MAXPOOL);
    assert_int_equal(s[2].stride, 1);
    assert_int_equal(s[2].size, 1);
    assert_int_equal(s[2].pad, 0);
    assert_int_equal(s[3].kind, DNN_LAYER_AVGPOOL);
    assert_int_equal(s[4].kind, DNN_LAYER_DROPOUT);
    assert_true(s[4].probability == .5f);
    assert_int_equal(s[5].kind, DNN_LAYER_SOFTMAX);
    assert_int_equal(s[5].softmax_groups, 1);
    assert_true(s[5].temperature == 1.0f);
    assert_int_equal(s[6].kind, DNN_LAYER_COST);
    assert_int_equal(s[6].cost_type, DNN_COST_SSE);
    assert_true(s[6].cost_scale == 1.0f);
    assert_true(s[6].cost_ratio == 0.0f);
    assert_int_equal(s[7].kind, DNN_LAYER_BATCHNORM);
    assert_int_equal(s[8].kind, DNN_LAYER_SHORTCUT);
    assert_int_equal(s[8].from, 7);
    assert_int_equal(s[8].activation, linear);
    assert_true(s[8].alpha == 1.0f && s[8].beta == 1.0f);
    assert_int_equal(s[9].kind, DNN_LAYER_ROUTE);
    assert_int_equal(s[9].n_route, 1);
    assert_int_equal(s[9].route[0], 7);
    assert_int_equal(m.lines[0], 5);
    assert_int_equal(m.lines[9], 15);
    dk_model_free(&m);
}

static void test_parse_aliases_and_values(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("alias.cfg",
             NET "[conv]\nfilters=4\nsize=3\nstride=2\npad=1\ngroups=2\nbatch_normalize=1\n"
                 "activation=leaky\nxnor=0\ndontload=0\nlearning_rate=1\n"
                 "[conn]\noutput=7\nbatch_normalize=1\nactivation=linear\n"
                 "[max]\nsize=3\nstride=2\npadding=0\n"
                 "[avg]\n[soft]\ngroups=2\ntemperature=.5\n"
                 "[cost]\ntype=smooth\nscale=2\nratio=.25\nnoobj=3\nthresh=.1\n"
                 "[dropout]\nprobability=0\n",
             &m);
    enum dnn_activation leaky, linear;
    assert_true(dnn_activation_from_name("leaky", &leaky));
    assert_true(dnn_activation_from_name("linear", &linear));
    const struct dnn_layer_spec *s = m.specs;
    assert_int_equal(m.n, 7);
    assert_int_equal(s[0].kind, DNN_LAYER_CONVOLUTIONAL);
    assert_int_equal(s[0].filters, 4);
    assert_int_equal(s[0].size, 3);
    assert_int_equal(s[0].stride, 2);
    assert_int_equal(s[0].pad, 1);
    assert_int_equal(s[0].groups, 2);
    assert_true(s[0].batch_normalize);
    assert_int_equal(s[0].activation, leaky);
    assert_int_equal(s[1].kind, DNN_LAYER_CONNECTED);
    assert_int_equal(s[1].outputs, 7);
    assert_true(s[1].batch_normalize);
    assert_int_equal(s[1].activation, linear);
    assert_int_equal(s[2].kind, DNN_LAYER_MAXPOOL);
    assert_int_equal(s[2].size, 3);
    assert_int_equal(s[2].stride, 2);
    assert_int_equal(s[2].pad, 0);
    assert_int_equal(s[3].kind, DNN_LAYER_AVGPOOL);
    assert_int_equal(s[4].kind, DNN_LAYER_SOFTMAX);
    assert_int_equal(s[4].softmax_groups, 2);
    assert_true(s[4].temperature == .5f);
    assert_int_equal(s[5].cost_type, DNN_COST_SMOOTH);
    assert_true(s[5].cost_scale == 2.0f);
    assert_true(s[5].cost_ratio == .25f);
    assert_true(s[6].probability == 0.0f);
    dk_model_free(&m);

    const char *types[] = {"sse", "masked", "smooth", "L1"};
    const enum dnn_cost_type want[] = {DNN_COST_SSE, DNN_COST_MASKED, DNN_COST_SMOOTH, DNN_COST_L1};
    for (int i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof text, NET "[connected]\n[cost]\ntype=%s\n", types[i]);
        parse_ok("cost.cfg", text, &m);
        assert_int_equal(m.specs[1].cost_type, want[i]);
        dk_model_free(&m);
    }
}

static void test_parse_padding(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("pad.cfg",
             NET "[convolutional]\nsize=3\npad=1\n"
                 "[convolutional]\nsize=5\npad=1\npadding=7\n" /* pad wins: size/2 */
                 "[convolutional]\nsize=3\npadding=3\n"
                 "[convolutional]\nsize=4\npad=1\n"
                 "[convolutional]\nsize=3\npad=0\npadding=1\n"
                 "[maxpool]\nstride=2\n" /* size defaults to stride, padding to size-1 */
                 "[maxpool]\nsize=3\nstride=1\n",
             &m);
    assert_int_equal(m.specs[0].pad, 1);
    assert_int_equal(m.specs[1].pad, 2);
    assert_int_equal(m.specs[2].pad, 3);
    assert_int_equal(m.specs[3].pad, 2);
    assert_int_equal(m.specs[4].pad, 1);
    assert_int_equal(m.specs[5].size, 2);
    assert_int_equal(m.specs[5].stride, 2);
    assert_int_equal(m.specs[5].pad, 1);
    assert_int_equal(m.specs[6].size, 3);
    assert_int_equal(m.specs[6].pad, 2);
    dk_model_free(&m);
}

static void test_parse_route_shortcut(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("route.cfg",
             NET "[convolutional]\n"                                         /* 0 */
                 "[convolutional]\n"                                         /* 1 */
                 "[convolutional]\n"                                         /* 2 */
                 "[route]\nlayers=-1,-3\n"                                   /* 3 */
                 "[route]\nlayers = 0, 2 ,-2\n"                              /* 4 */
                 "[shortcut]\nfrom=-3\nactivation=leaky\nalpha=.5\nbeta=2\n" /* 5 */
                 "[shortcut]\nfrom=1\n",                                     /* 6 */
             &m);
    assert_int_equal(m.specs[3].n_route, 2);
    assert_int_equal(m.specs[3].route[0], 2);
    assert_int_equal(m.specs[3].route[1], 0);
    assert_int_equal(m.specs[4].n_route, 3);
    assert_int_equal(m.specs[4].route[0], 0);
    assert_int_equal(m.specs[4].route[1], 2);
    assert_int_equal(m.specs[4].route[2], 2);
    assert_int_equal(m.specs[5].from, 2);
    assert_true(m.specs[5].alpha == .5f && m.specs[5].beta == 2.0f);
    assert_int_equal(m.specs[6].from, 1);
    dk_model_free(&m);
}

static void test_parse_batch_and_input(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("batch.cfg", NET "batch=64\nsubdivisions=4\n[connected]\n", &m);
    assert_int_equal(m.cfg_batch, 64);
    assert_int_equal(m.net.batch, 16);
    assert_int_equal(m.net.subdivisions, 4);
    dk_model_free(&m);

    /* darknet's `inputs` without an image shape: a 1 x 1 x inputs image. */
    parse_ok("inputs.cfg", "[net]\ninputs=784\n[connected]\noutput=10\n", &m);
    assert_int_equal(m.net.h, 1);
    assert_int_equal(m.net.w, 1);
    assert_int_equal(m.net.c, 784);
    dk_model_free(&m);
    parse_ok("inputs2.cfg", NET "inputs=192\nflip=0\ncenter=1\nrandom=1\n[connected]\n", &m);
    assert_int_equal(m.net.c, 3);
    assert_false(m.aug.flip);
    assert_true(m.aug.center);
    dk_model_free(&m);

    parse_ok("crop.cfg", NET "max_crop=10\nmin_crop=4\n[connected]\n", &m);
    assert_true(m.aug.max_ratio == 10.0f / 8);
    assert_true(m.aug.min_ratio == 4.0f / 8);
    dk_model_free(&m);
}

static void test_parse_policies(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("steps.cfg",
             NET "policy=steps\nsteps=100,200,300\nscales=.1,.5,10\nburn_in=1000\n"
                 "max_batches=400\n[connected]\n",
             &m);
    assert_int_equal(m.net.policy, DNN_POLICY_STEPS);
    assert_int_equal(m.net.n_steps, 3);
    assert_int_equal(m.net.steps[0], 100);
    assert_int_equal(m.net.steps[2], 300);
    assert_true(m.net.scales[0] == (float).1);
    assert_true(m.net.scales[2] == 10.0f);
    assert_int_equal(m.net.burn_in, 1000);
    assert_int_equal(m.net.max_batches, 400);
    dk_model_free(&m);

    parse_ok("step.cfg", NET "policy=step\nstep=50\nscale=.5\n[connected]\n", &m);
    assert_int_equal(m.net.policy, DNN_POLICY_STEP);
    assert_int_equal(m.net.step, 50);
    assert_true(m.net.scale == .5f);
    dk_model_free(&m);
    parse_ok("step1.cfg", NET "policy=step\n[connected]\n", &m);
    assert_int_equal(m.net.step, 1);
    assert_true(m.net.scale == 1.0f);
    dk_model_free(&m);

    parse_ok("exp.cfg", NET "policy=exp\ngamma=.99\n[connected]\n", &m);
    assert_int_equal(m.net.policy, DNN_POLICY_EXP);
    assert_true(m.net.gamma == (float).99);
    dk_model_free(&m);

    /* AlexeyAB's sgdr: one cycle of max_batches by default, doubling, min 1e-5 */
    parse_ok("sgdr.cfg", NET "policy=sgdr\nmax_batches=100\n[connected]\n", &m);
    assert_int_equal(m.net.policy, DNN_POLICY_SGDR);
    assert_int_equal(m.net.sgdr_cycle, 100);
    assert_int_equal(m.net.sgdr_mult, 2);
    assert_true(m.net.learning_rate_min == .00001f);
    assert_null(m.notes);
    dk_model_free(&m);
    parse_ok("sgdr2.cfg",
             NET "policy=sgdr\nsgdr_cycle=7\nsgdr_mult=3\nlearning_rate_min=.002\n[connected]\n",
             &m);
    assert_int_equal(m.net.sgdr_cycle, 7);
    assert_int_equal(m.net.sgdr_mult, 3);
    assert_true(m.net.learning_rate_min == .002f);
    dk_model_free(&m);
    parse_fails("sgdr3.cfg", NET "policy=sgdr\n[connected]\n", 5, "key 'sgdr_cycle'",
                "must be >= 1 (or max_batches set), got 0");

    parse_ok("sig.cfg", NET "policy=sigmoid\ngamma=2\nstep=7\n[connected]\n", &m);
    assert_int_equal(m.net.policy, DNN_POLICY_SIG);
    assert_true(m.net.gamma == 2.0f);
    assert_int_equal(m.net.step, 7);
    dk_model_free(&m);

    parse_ok("poly.cfg", NET "policy=poly\npower=2\n[connected]\n", &m);
    assert_int_equal(m.net.policy, DNN_POLICY_POLY);
    assert_true(m.net.power == 2.0f);
    dk_model_free(&m);

    parse_ok("random.cfg", NET "policy=random\n[connected]\n", &m);
    assert_int_equal(m.net.policy, DNN_POLICY_RANDOM);
    dk_model_free(&m);
}

/* Every malformed cfg: an error naming the file, the line and the key. */
/* The layer kinds of issue 12: keys and darknet's defaults. */
static void test_parse_layer_kinds(void **state)
{
    (void)state;
    struct dk_model m;
    parse_ok("kinds.cfg",
             NET "[crop]\ncrop_height=6\ncrop_width=7\nflip=1\nangle=5\nsaturation=1.5\n"
                 "exposure=1.5\n"
                 "[reorg]\nstride=2\n"
                 "[reorg3d]\nstride=2\nreverse=1\n"
                 "[reorg]\nextra=1\n"
                 "[scale_channels]\nfrom=-2\nscale_wh=1\nactivation=logistic\n"
                 "[sam]\nfrom=-3\n"
                 "[upsample]\n"
                 "[upsample]\nstride=-2\nscale=0.5\n"
                 "[activation]\nactivation=mish\n"
                 "[l2norm]\n"
                 "[lrn]\n"
                 "[normalization]\nsize=3\nalpha=2\nbeta=0.5\nkappa=3\n"
                 "[local]\n"
                 "[local]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=leaky\n",
             &m);
    const struct dnn_layer_spec *s = m.specs;
    assert_int_equal(m.n, 14);
    assert_int_equal(s[0].kind, DNN_LAYER_CROP);
    assert_int_equal(s[0].crop_height, 6);
    assert_int_equal(s[0].crop_width, 7);
    assert_true(s[0].flip && !s[0].noadjust);
    assert_int_equal(s[1].kind, DNN_LAYER_REORG);
    assert_int_equal(s[1].stride, 2);
    assert_false(s[1].reverse || s[1].reorg3d);
    assert_int_equal(s[2].kind, DNN_LAYER_REORG);
    assert_true(s[2].reverse && s[2].reorg3d);
    assert_int_equal(s[3].stride, 1);
    assert_int_equal(s[3].extra, 1);
    assert_int_equal(s[4].kind, DNN_LAYER_SCALE_CHANNELS);
    assert_int_equal(s[4].from, 2);
    assert_true(s[4].scale_wh);
    assert_int_equal(s[4].activation, DNN_ACT_LOGISTIC);
    assert_int_equal(s[5].kind, DNN_LAYER_SAM);
    assert_int_equal(s[5].from, 2);
    assert_int_equal(s[5].activation, DNN_ACT_LINEAR);
    assert_int_equal(s[6].kind, DNN_LAYER_UPSAMPLE);
    assert_int_equal(s[6].stride, 2);
    assert_true(s[6].scale == 1.0f);
    assert_int_equal(s[7].stride, -2);
    assert_true(s[7].scale == 0.5f);
    assert_int_equal(s[8].kind, DNN_LAYER_ACTIVATION);
    assert_int_equal(s[8].activation, DNN_ACT_MISH);
    assert_int_equal(s[9].kind, DNN_LAYER_L2NORM);
    assert_int_equal(s[10].kind, DNN_LAYER_NORMALIZATION);
    assert_int_equal(s[10].size, 5);
    assert_true(s[10].alpha == .0001f && s[10].beta == .75f && s[10].kappa == 1.0f);
    assert_int_equal(s[11].size, 3);
    assert_true(s[11].alpha == 2.0f && s[11].beta == 0.5f && s[11].kappa == 3.0f);
    assert_int_equal(s[12].kind, DNN_LAYER_LOCAL);
    assert_int_equal(s[12].filters, 1);
    assert_int_equal(s[12].size, 1);
    assert_int_equal(s[12].stride, 1);
    assert_int_equal(s[12].pad, 0);
    assert_int_equal(s[12].activation, DNN_ACT_LOGISTIC);
    assert_int_equal(s[13].filters, 4);
    assert_int_equal(s[13].pad, 1);
    assert_int_equal(s[13].activation, DNN_ACT_LEAKY);
    assert_null(m.notes); /* every key above is read */
    dk_model_free(&m);

    parse_fails("sc_mish.cfg", NET "[avgpool]\n[scale_channels]\nfrom=-1\nactivation=mish\n", 8,
                "'mish' is not supported", NULL);
    parse_fails("flatten.cfg", NET "[reorg]\nflatten=1\n", 6, "flatten", NULL);
    parse_fails("up0.cfg", NET "[upsample]\nstride=0\n", 6, "stride", NULL);
    parse_fails("crop0.cfg", NET "[crop]\ncrop_height=0\n", 6, "crop_height", NULL);
    parse_fails("sam.cfg", NET "[sam]\n", 5, "needs key 'from'", NULL);
}

static void test_parse_errors(void **state)
{
    (void)state;
    /* reader level */
    parse_fails("e1.cfg", NET "[convolutional]\nsize 3\n", 6, "expected key=value", "size3");
    parse_fails("e2.cfg", "batch=1\n[net]\n", 1, "before the first [section]", "batch=1");
    parse_fails("e3.cfg", "", 0, "no sections", NULL);
    parse_fails("e4.cfg", "# only a comment\n\n", 0, "no sections", NULL);
    parse_fails("e5.cfg", NET, 1, "no layers", NULL);

    /* sections */
    parse_fails("s1.cfg", "[convolutional]\n[net]\n", 1, "first section must be [net]", NULL);
    parse_fails("s2.cfg", NET "[convolutional]\n[bogus]\nx=1\n", 6, "unknown section [bogus]",
                NULL);
    parse_fails("s3.cfg", NET "[yolo]\n", 5, "[yolo] is not supported", NULL);
    parse_fails("s4.cfg", NET "[connected]\n[net]\n", 6, "[net] may only be the first", NULL);

    /* keys */
    /* AlexeyAB's dilation and route groups are read into the spec; a 1x1 kernel has one
     * tap, so its dilation is 1 whatever the file says, as in AlexeyAB's parser. */
    {
        struct dk_model m;
        parse_ok("ok_keys.cfg",
                 NET "[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=2\n"
                     "[convolutional]\nfilters=4\nsize=1\ndilation=3\n"
                     "[route]\nlayers=-1,-2\ngroups=2\ngroup_id=1\n",
                 &m);
        assert_int_equal(m.specs[0].dilation, 2);
        assert_int_equal(m.specs[1].dilation, 1);
        assert_int_equal(m.specs[2].route_groups, 2);
        assert_int_equal(m.specs[2].group_id, 1);
        dk_model_free(&m);
    }
    parse_fails("k1.cfg", NET "[convolutional]\ndilation=0\n", 6, "key 'dilation'", "must be >= 1");
    parse_fails("k2.cfg", NET "letter_box=1\n[connected]\n", 5, "'letter_box=1'", "not supported");
    parse_fails("k3.cfg", NET "[maxpool]\nstride=2\nstride_x=1\n", 7, "'stride_x=1'",
                "not supported");
    parse_fails("k3b.cfg", NET "[connected]\n[route]\nlayers=-1\ngroups=2\ngroup_id=2\n", 9,
                "key 'group_id'", "must be in 0..1 (groups=2), got 2");
    parse_fails("k3c.cfg", NET "[connected]\n[route]\nlayers=-1\ngroups=0\n", 8, "key 'groups'",
                "must be >= 1");
    parse_fails("k4.cfg", NET "[convolutional]\nxnor=1\n", 6, "'xnor=1'", "not supported");
    {
        /* darknet's dontload and dontloadscales, read into the spec (test_weights.c loads) */
        struct dk_model m;
        parse_ok("k5.cfg", NET "[connected]\ndontload=1\n[connected]\ndontloadscales=1\n", &m);
        assert_true(m.specs[0].dontload && !m.specs[0].dontloadscales);
        assert_true(!m.specs[1].dontload && m.specs[1].dontloadscales);
        dk_model_free(&m);
    }
    parse_fails("k5.cfg", NET "[connected]\ndontload=x\n", 6, "key 'dontload'", NULL);
    parse_fails("k6.cfg", NET "adam=1\nB1=1\n[connected]\n", 6, "key 'B1'",
                "must be in [0, 1), got 1");
    parse_fails("k6b.cfg", NET "adam=1\neps=0\n[connected]\n", 6, "key 'eps'", "must be > 0");
    {
        /* adam=1 with AlexeyAB's defaults; B1/B2/eps are read only with adam. */
        struct dk_model m;
        parse_ok("adam.cfg", NET "adam=1\nB2=.99\n[connected]\n", &m);
        assert_true(m.net.adam);
        assert_true(m.net.beta1 == .9f && m.net.beta2 == .99f && m.net.epsilon == .000001f);
        dk_model_free(&m);
        parse_ok("sgd.cfg", NET "[connected]\n", &m);
        assert_false(m.net.adam);
        dk_model_free(&m);
    }
    /* tree= is read when the cfg is (darknet's parse_softmax): a missing file is the
     * cfg's error, at the key's line (the tree reader's own errors: test_tree.c). */
    parse_fails("k7.cfg", NET "[softmax]\ntree=/nonexistent/x.tree\n", 6,
                "key 'tree' in [softmax]: /nonexistent/x.tree", "cannot open");
    /* AlexeyAB's weights_type is supported (test_layers_shortcut.c); a name it lacks is not */
    parse_fails("k8.cfg", NET "[connected]\n[shortcut]\nfrom=-1\nweights_type=per_pixel\n", 8,
                "key 'weights_type' in [shortcut]", "unknown 'per_pixel'");
    {
        /* darknet's per-layer learning_rate, read into the spec (0 kept apart from 1) */
        struct dk_model m;
        parse_ok("k9.cfg",
                 NET "[connected]\nlearning_rate=.5\n[connected]\nlearning_rate=0\n"
                     "[connected]\n[maxpool]\nlearning_rate=.5\n",
                 &m);
        assert_true(dnn_layer_rate_scale(&m.specs[0]) == .5f);
        assert_true(dnn_layer_rate_scale(&m.specs[1]) == 0.0f);
        assert_true(dnn_layer_rate_scale(&m.specs[2]) == 1.0f);
        assert_true(dnn_layer_rate_scale(&m.specs[3]) == 1.0f); /* no parameters: no effect */
        dk_model_free(&m);
    }

    /* numbers */
    parse_fails("n1.cfg", NET "batch=abc\n[connected]\n", 5, "key 'batch'",
                "expected an integer, got 'abc'");
    parse_fails("n2.cfg", NET "[convolutional]\nsize=3.5\n", 6, "key 'size'",
                "expected an integer, got '3.5'");
    parse_fails("n3.cfg", NET "momentum=.9.1\n[connected]\n", 5, "key 'momentum'",
                "expected a finite number");
    parse_fails("n4.cfg", NET "[route]\nlayers=-1,x\n", 6, "key 'layers'", "'-1,x'");
    parse_fails("n5.cfg", NET "[dropout]\nprobability=\n", 6, "key 'probability'", "got ''");

    /* values */
    parse_fails("v1.cfg", NET "[convolutional]\nsize=0\n", 6, "key 'size'", "must be > 0");
    parse_fails("v2.cfg", NET "[convolutional]\nstride=-1\n", 6, "key 'stride'", "must be > 0");
    parse_fails("v3.cfg", NET "[convolutional]\nfilters=0\n", 6, "key 'filters'", "must be > 0");
    parse_fails("v4.cfg", NET "[convolutional]\nfilters=6\ngroups=4\n", 7, "key 'groups'",
                "does not divide filters=6");
    parse_fails("v5.cfg", NET "[convolutional]\npadding=-1\n", 6, "key 'padding'", ">= 0");
    parse_fails("v6.cfg", NET "[maxpool]\nsize=0\n", 6, "key 'size'", "must be > 0");
    parse_fails("v7.cfg", NET "[maxpool]\nstride=0\n", 6, "key 'stride'", "must be > 0");
    parse_fails("v8.cfg", NET "[connected]\noutput=-3\n", 6, "key 'output'", "must be > 0");
    parse_fails("v9.cfg", NET "[dropout]\nprobability=1\n", 6, "key 'probability'", "[0, 1)");
    parse_fails("v10.cfg", NET "[softmax]\ngroups=0\n", 6, "key 'groups'", "must be > 0");
    parse_fails("v11.cfg", NET "[connected]\nactivation=swishy\n", 6, "key 'activation'",
                "unknown activation 'swishy'");
    parse_fails("v12.cfg", NET "[cost]\ntype=seg\n", 6, "key 'type'",
                "unsupported cost type 'seg'");
    parse_fails("v13.cfg", "[net]\nheight=8\nwidth=8\n[connected]\n", 1, "needs height, width",
                "channels");
    parse_fails("v14.cfg", NET "inputs=5\n[connected]\n", 5, "key 'inputs'", "differs");

    /* batch and subdivisions */
    parse_fails("b1.cfg", NET "batch=10\nsubdivisions=3\n[connected]\n", 6, "key 'subdivisions'",
                "3 does not divide batch=10");
    parse_fails("b2.cfg", NET "batch=10\nsubdivisions=0\n[connected]\n", 6, "key 'subdivisions'",
                "must be > 0");
    parse_fails("b3.cfg", NET "batch=0\n[connected]\n", 5, "key 'batch'", "must be > 0");

    /* policies */
    parse_fails("p1.cfg", NET "policy=sometimes\n[connected]\n", 5, "key 'policy'",
                "unknown policy 'sometimes'");
    parse_fails("p2.cfg", NET "policy=steps\nsteps=1,2\n[connected]\n", 5, "'steps' and 'scales'",
                NULL);
    parse_fails("p3.cfg", NET "policy=steps\nsteps=1,2\nscales=.1\n[connected]\n", 7,
                "key 'scales'", "has 1 values but 'steps' has 2");
    parse_fails("p5.cfg",
                NET "policy=steps\nsteps=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n"
                    "scales=1\n[connected]\n",
                6, "key 'steps'", "more than 16 values");

    /* route and shortcut */
    parse_fails("r1.cfg", NET "[connected]\n[route]\nlayers=-2\n", 7, "key 'layers'",
                "layer -2 (absolute -1) is not an earlier layer of layer 1");
    parse_fails("r2.cfg", NET "[connected]\n[route]\nlayers=1\n", 7, "key 'layers'",
                "is not an earlier layer");
    parse_fails("r3.cfg", NET "[connected]\n[route]\n", 6, "[route] needs key 'layers'", NULL);
    parse_fails("r4.cfg", NET "[connected]\n[shortcut]\nfrom=3\n", 7, "key 'from'",
                "not an earlier layer");
    parse_fails("r5.cfg", NET "[connected]\n[shortcut]\n", 6, "[shortcut] needs key 'from'", NULL);
    parse_fails("r7.cfg", NET "[connected]\n[shortcut]\nfrom=0,0,0,0,0,0,0,0,0,0\n", 7,
                "key 'from'", "more than 9 values");
    parse_fails("r6.cfg", NET "[connected]\n[route]\nlayers=0,0,0,0,0,0,0,0,0\n", 7, "key 'layers'",
                "more than 8 values");

    /* missing file */
    struct dk_error err = {{0}};
    struct dk_model m;
    assert_int_equal(dk_parse_network("/nonexistent/net.cfg", &m, &err), -1);
    assert_string_equal(err.msg, "/nonexistent/net.cfg: cannot open: No such file or directory");
    assert_null(m.specs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_sections_and_lines),
        cmocka_unit_test(test_reader_sectionless),
        cmocka_unit_test(test_reader_errors),
        cmocka_unit_test(test_reader_as_darknet_reads),
        cmocka_unit_test(test_parse_warnings),
        cmocka_unit_test(test_reader_numbers),
        cmocka_unit_test(test_parse_upstream_lenet),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_aliases_and_values),
        cmocka_unit_test(test_parse_padding),
        cmocka_unit_test(test_parse_route_shortcut),
        cmocka_unit_test(test_parse_batch_and_input),
        cmocka_unit_test(test_parse_policies),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_layer_kinds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
