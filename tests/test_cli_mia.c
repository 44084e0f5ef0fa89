/*
 * test_cli_mia.c - `darknetp classifier mia` end to end on a model that memorises its
 * members: 40 noise images with random labels (4 classes) that a small network learns by
 * heart, and 40 other noise images with random labels as non-members (about chance
 * accuracy). Without a partition the loss attack separates them far above 0.5; with the
 * last connected layer and the softmax in the TEE under top1, only labels leave: no score
 * attack is offered and the label-only attack's balanced accuracy is its floor
 * 0.5 + (acc_member - acc_nonmember) / 2. Also checks -csv, -plot, -max_auc and refusals,
 * and the machine-readable rows of predict and valid (-out, a .txt list of images).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

#define SIDE 12
#define CLASSES 4
#define COUNT 40

static char bin[PATH_MAX];
static char dir[64];

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* DIR/NAME-images.idx and DIR/NAME-labels.idx: COUNT noise images, labels at random. */
static int write_noise_idx(const char *name, uint32_t seed)
{
    char path[PATH_MAX], lpath[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s-images.idx", dir, name);
    snprintf(lpath, sizeof lpath, "%s/%s-labels.idx", dir, name);
    FILE *f = fopen(path, "wb"), *l = fopen(lpath, "wb");
    if (!f || !l) {
        if (f)
            fclose(f);
        if (l)
            fclose(l);
        return -1;
    }
    put_be32(f, 0x00000803);
    put_be32(f, COUNT);
    put_be32(f, SIDE);
    put_be32(f, SIDE);
    put_be32(l, 0x00000801);
    put_be32(l, COUNT);
    uint32_t s = seed * 2654435761u + 1u;
    for (int i = 0; i < COUNT; i++) {
        for (int p = 0; p < SIDE * SIDE; p++) {
            s = s * 1103515245u + 12345u;
            fputc((int)((s >> 16) & 0xff), f);
        }
        s = s * 1103515245u + 12345u;
        fputc((int)((s >> 16) % CLASSES), l);
    }
    int bad = ferror(f) || ferror(l);
    return (fclose(f) | fclose(l) | bad) ? -1 : 0;
}

static int setup(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[1 << 16], path[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-mia-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/storage", dir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof path, "%s/console.log", dir);
    setenv("DZ_TEE_LOG", path, 1);
    if (write_noise_idx("members", 1) != 0 || write_noise_idx("others", 2) != 0 ||
        write_text_file(dir, "noise.names", "a\nb\nc\nd\n", NULL, 0) != 0 ||
        write_text_file(dir, "noise.data",
                        "classes=4\ntrain=members-images.idx\ntrain_labels=members-labels.idx\n"
                        "valid=others-images.idx\nvalid_labels=others-labels.idx\n"
                        "names=noise.names\nbackup=backup\n",
                        NULL, 0) != 0 ||
        write_text_file(dir, "noise.cfg",
                        "[net]\nbatch=40\nsubdivisions=1\nheight=12\nwidth=12\nchannels=1\n"
                        "learning_rate=0.1\nmomentum=0.9\ndecay=0\npolicy=constant\n"
                        "max_batches=150\nmin_crop=12\nmax_crop=12\nflip=0\n"
                        "[connected]\noutput=32\nactivation=relu\n"
                        "[connected]\noutput=4\nactivation=linear\n[softmax]\n",
                        NULL, 0) != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train noise.data noise.cfg 2>&1 >/dev/null", dir, bin);
    return run_capture(cmd, out, sizeof out) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    unsetenv("DZ_TEE_STORAGE");
    unsetenv("DZ_TEE_LOG");
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs `darknetp classifier mia ... ARGS` in dir; stdout into out, returns the status. */
static int mia(const char *args, char *out, size_t size)
{
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier mia noise.data noise.cfg backup/noise_final.weights "
             "%s 2>/dev/null",
             dir, bin, args);
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

/* The AUC and best balanced accuracy of an attack's row; false when it has none. */
static bool attack_row(const char *out, const char *attack, double *auc, double *best)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s  ", attack); /* rows pad names; "label-only floor:" not */
    const char *row = strstr(out, key);
    return row && sscanf(row + strlen(key), "%lf %lf", auc, best) == 2;
}

static double floor_of(const char *out)
{
    const char *f = strstr(out, "label-only floor: ");
    double v = -1;
    assert_non_null(f);
    assert_int_equal(sscanf(strchr(f, '=') + 1, "%lf", &v), 1);
    return v;
}

static double member_accuracy(const char *out, const char *which)
{
    const char *p = strstr(out, which);
    double v = -1;
    assert_non_null(p);
    assert_int_equal(sscanf(strstr(p, "accuracy ") + 9, "%lf", &v), 1);
    return v;
}

static void test_scores_leave_without_tee(void **state)
{
    (void)state;
    char out[1 << 14];
    double auc = 0, best = 0;
    assert_int_equal(mia("-n 40 -seed 3", out, sizeof out), 0);
    assert_non_null(strstr(out, "what leaves: the scores (no TEE partition)"));
    /* Memorised members, chance-level others. */
    assert_true(member_accuracy(out, "members: ") > 95);
    assert_true(member_accuracy(out, "non-members: ") < 60);
    assert_true(attack_row(out, "loss", &auc, &best));
    if (!(best > 0.75 && auc > 0.75))
        fail_msg("the loss attack should separate memorised members:\n%s", out);
    for (const char *a = "max-score\0entropy\0modified-entropy\0label-only\0"; *a;
         a += strlen(a) + 1)
        if (!attack_row(out, a, &auc, &best))
            fail_msg("no %s row in:\n%s", a, out);
}

static void test_labels_only_in_tee_reach_floor(void **state)
{
    (void)state;
    char out[1 << 14];
    double auc = 0, best = 0;
    assert_int_equal(mia("-n 40 -seed 3 -pp_start 1 -pp_end 2", out, sizeof out), 0);
    assert_non_null(strstr(out, "labels only (layers 1..2 in the TEE, -tee_output top1)"));
    assert_false(attack_row(out, "loss", &auc, &best));
    assert_false(attack_row(out, "max-score", &auc, &best));
    assert_false(attack_row(out, "modified-entropy", &auc, &best));
    assert_non_null(strstr(out, "(no score attack: no scores leave the TEE)"));
    assert_true(attack_row(out, "label-only", &auc, &best));
    double floor = floor_of(out);
    assert_true(floor > 0.6);
    if (!(best > floor - 0.01 && best < floor + 0.01))
        fail_msg("label-only %.4f should be its floor %.4f:\n%s", best, floor, out);

    /* The same through the TA as without it: the partition changes what leaves, not the
     * model's labels. */
    char plain[1 << 14];
    assert_int_equal(mia("-n 40 -seed 3", plain, sizeof plain), 0);
    assert_true(fabs(floor_of(plain) - floor) < 1e-9);

    /* Augmented queries add a row, and are reproducible by seed. */
    char q1[1 << 14], q2[1 << 14];
    assert_int_equal(mia("-n 40 -seed 3 -pp_start 1 -pp_end 2 -queries 3", q1, sizeof q1), 0);
    assert_int_equal(mia("-n 40 -seed 3 -pp_start 1 -pp_end 2 -queries 3", q2, sizeof q2), 0);
    assert_true(attack_row(q1, "augmented-query", &auc, &best));
    assert_string_equal(q1, q2);
}

static void test_csv_plot_and_max_auc(void **state)
{
    (void)state;
    char out[1 << 14], path[PATH_MAX];
    assert_int_equal(mia("-n 20 -csv m.csv -plot m.svg", out, sizeof out), 0);
    unsigned char *data = NULL;
    snprintf(path, sizeof path, "%s/m.csv", dir);
    assert_true(read_whole_file(path, &data) > 0);
    const char *csv = (const char *)data;
    assert_true(strncmp(csv, "set,item,image,truth,predicted,correct,loss,", 44) == 0);
    int lines = 0, members = 0;
    for (const char *p = csv; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    for (const char *p = csv; (p = strstr(p, "\nmember,")) != NULL; p++)
        members++;
    assert_int_equal(lines, 1 + 2 * 20);
    assert_int_equal(members, 20);
    free(data);
    snprintf(path, sizeof path, "%s/m.svg", dir);
    assert_true(read_whole_file(path, &data) > 0);
    const char *svg = (const char *)data;
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "stroke-dasharray")); /* the diagonal */
    int polylines = 0;
    for (const char *p = svg; (p = strstr(p, "<polyline")) != NULL; p++)
        polylines++;
    /* the diagonal, then loss, max-score, entropy, modified-entropy, label-only */
    assert_int_equal(polylines, 6);
    assert_non_null(strstr(svg, "modified-entropy (AUC "));
    assert_non_null(strstr(svg, "</svg>\n"));
    free(data);

    /* CI's gate: exit 3 when an attack beats the bound, 0 when none does. */
    assert_int_equal(mia("-n 20 -max_auc 0.55", out, sizeof out), 3);
    assert_int_equal(mia("-n 20 -max_auc 1", out, sizeof out), 0);
}

/* Counts the lines of a file (0 when it cannot be read); *text gets its bytes (free()). */
static int file_lines(const char *name, char **text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char *data = NULL;
    *text = NULL;
    if (read_whole_file(path, &data) < 0)
        return 0;
    int lines = 0;
    for (const char *p = (const char *)data; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    *text = (char *)data;
    return lines;
}

static void test_valid_rows(void **state)
{
    (void)state;
    char cmd[2 * PATH_MAX], out[1 << 14], *csv = NULL;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid -out v.csv noise.data noise.cfg "
             "backup/noise_final.weights 2>/dev/null | tail -n 1",
             dir, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    double top1 = -1;
    assert_int_equal(sscanf(strstr(out, "top 1: ") + 7, "%lf", &top1), 1);
    assert_int_equal(file_lines("v.csv", &csv), 1 + COUNT);
    assert_true(strncmp(csv, "image,truth,predicted,correct,labels\n", 37) == 0);
    /* Each row's verdict agrees with its labels, and they add up to valid's accuracy. */
    int right = 0;
    for (const char *row = strchr(csv, '\n') + 1; *row; row = strchr(row, '\n') + 1) {
        int truth = -1, pred = -1, correct = -1;
        assert_non_null(strstr(row, "others-images.idx#"));
        assert_int_equal(sscanf(strchr(row, ',') + 1, "%d,%d,%d", &truth, &pred, &correct), 3);
        assert_int_equal(correct, truth == pred);
        right += correct;
    }
    assert_true(fabs(right / (double)COUNT - top1) < 1e-6);
    free(csv);
}

static void test_predict_rows(void **state)
{
    (void)state;
    char cmd[2 * PATH_MAX], out[1 << 14], path[PATH_MAX], *csv = NULL;
    unsigned char px[SIDE * SIDE];
    for (int i = 0; i < 3; i++) {
        for (int p = 0; p < SIDE * SIDE; p++)
            px[p] = (unsigned char)(p * 7 + i * 50);
        snprintf(path, sizeof path, "%s/im%d.png", dir, i);
        assert_true(stbi_write_png(path, SIDE, SIDE, 1, px, SIDE) != 0);
    }
    assert_int_equal(write_text_file(dir, "images.txt", "im0.png\nim1.png\nim2.png\n", NULL, 0), 0);
    /* Without a TEE the scores leave: one column per class, named as names= says. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -out p.csv noise.data noise.cfg "
             "backup/noise_final.weights images.txt 2>/dev/null",
             dir, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_int_equal(file_lines("p.csv", &csv), 4);
    assert_true(strncmp(csv, "image,label,name,a,b,c,d\nim0.png,", 33) == 0);
    free(csv);
    /* Under top1 through the TA: the label and its name only, on stdout without -out. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 1 -pp_end 2 noise.data noise.cfg "
             "backup/noise_final.weights images.txt 2>/dev/null",
             dir, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_true(strncmp(out, "image,label,name\nim0.png,", 25) == 0);
    const char *row = strchr(out, '\n') + 1; /* image,label,name: two commas, no more */
    int commas = 0;
    for (const char *p = row; *p && *p != '\n'; p++)
        commas += *p == ',';
    assert_int_equal(commas, 2);
    /* The seed's text format stays, with a note that 100.00% is a label. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -pp_start 1 -pp_end 2 noise.data noise.cfg "
             "backup/noise_final.weights im0.png 2>&1 >/dev/null",
             dir, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "it is not a confidence"));
}

/* -grad: the deltas a training session returns at layer 1's input separate members; a model
 * sealed for inference only is refused by the TA itself, and the rest of the run stands. */
static void test_gradient_probe(void **state)
{
    (void)state;
    char out[1 << 14], cmd[4 * PATH_MAX];
    double auc = 0, best = 0;
    assert_int_equal(mia("-n 40 -pp_start 1 -pp_end 2 -grad", out, sizeof out), 0);
    if (!attack_row(out, "gradient-norm", &auc, &best) || !(auc > 0.7))
        fail_msg("the gradient probe should separate memorised members:\n%s", out);
    assert_int_equal(mia("-n 40 -grad", out, sizeof out), 0);
    assert_non_null(strstr(out, "gradient probe: no TEE partition"));
    assert_false(attack_row(out, "gradient-norm", &auc, &best));

    /* The same network sealed for inference only (its own backup name). */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp noise.cfg sealed.cfg && '%s' classifier train -pp_start 1 -pp_end 2 "
             "-seal_infer_only noise.data sealed.cfg >/dev/null 2>&1 && "
             "'%s' classifier mia -n 40 -pp_start 1 -pp_end 2 -grad noise.data sealed.cfg "
             "backup/sealed_final.weights 2>/dev/null",
             dir, bin, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    if (!strstr(out, "gradient probe: refused: refused by the TA (TEEC_ERROR_ACCESS_DENIED)"))
        fail_msg("the TA should refuse a training session of an inference-only model:\n%s", out);
    assert_false(attack_row(out, "gradient-norm", &auc, &best));
    assert_true(attack_row(out, "label-only", &auc, &best));
}

static void test_refusals(void **state)
{
    (void)state;
    char out[4096], cmd[2 * PATH_MAX];
    assert_int_equal(mia("-n 41", out, sizeof out), 1);      /* more than the 40 members */
    assert_int_equal(mia("-max_auc 2", out, sizeof out), 2); /* not in [0, 1] */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid -n 5 noise.data noise.cfg "
             "backup/noise_final.weights 2>/dev/null",
             dir, bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 2); /* a mia option elsewhere */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_leave_without_tee),
        cmocka_unit_test(test_labels_only_in_tee_reach_floor),
        cmocka_unit_test(test_csv_plot_and_max_auc),
        cmocka_unit_test(test_valid_rows),
        cmocka_unit_test(test_predict_rows),
        cmocka_unit_test(test_gradient_probe),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
