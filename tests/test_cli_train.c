/*
 * test_cli_train.c - train, valid and predict end to end through darknetp on a
 * small IDX data set the test writes itself: 12x12 gray images of a bar in one
 * of four places. Checks learning, reproducibility by seed, checkpoints, and
 * that Ctrl-C saves a backup.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "tests/helpers/fixtures.h"
#include "tests/helpers/bars.h"
#include "tests/helpers/tmpdir.h"

#define SIDE BARS_SIDE
#define CLASSES BARS_CLASSES

static char bin[PATH_MAX];
static char dir[64];

static int run(const char *cmd, char *out, size_t size)
{
    int rc = run_capture(cmd, out, size);
    assert_true(rc >= 0);
    return rc;
}

static void write_idx(const char *name, int count, unsigned seed0)
{
    assert_int_equal(bars_write_idx(dir, name, count, seed0), 0);
}

static void write_text(const char *name, const char *text)
{
    assert_int_equal(write_text_file(dir, name, text, NULL, 0), 0);
}

static int setup(void **state)
{
    (void)state;
    if (!realpath(darknetp_path(), bin))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-train-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    write_idx("train", 400, 1);
    write_idx("valid", 100, 100000);
    if (bars_write_data_file(dir) != 0)
        return -1;
    write_text("bars.cfg", "[net]\nbatch=20\nsubdivisions=2\nheight=12\nwidth=12\nchannels=1\n"
                           "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\n"
                           "policy=steps\nsteps=50\nscales=.1\nmax_batches=60\n"
                           "min_crop=12\nmax_crop=12\nflip=0\n"
                           "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                           "batch_normalize=1\nactivation=leaky\n"
                           "[maxpool]\nsize=2\nstride=2\n"
                           "[connected]\noutput=4\nactivation=linear\n"
                           "[softmax]\n");
    unsigned char px[SIDE * SIDE];
    bars_draw(7, 3, px);
    char png[PATH_MAX];
    snprintf(png, sizeof png, "%s/right.png", dir);
    return stbi_write_png(png, SIDE, SIDE, 1, px, SIDE) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static long file_bytes(const char *path, unsigned char **data)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)n);
    assert_int_equal(fread(*data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return n;
}

/* Trains with seed and moves the final weights to name. */
static void train(int seed, const char *name)
{
    char cmd[3 * PATH_MAX], out[1 << 16];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train -seed %d bars.data bars.cfg 2>&1 && "
             "mv backup/bars_final.weights %s",
             dir, bin, seed, name);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("train exited %d:\n%s", rc, out);
    /* darknet's line for the last iteration: 60 batches of 20 images (batch=20, 2 subdivisions). */
    if (!strstr(out, "\n60, 3.000: ") || !strstr(out, "1200 images\n"))
        fail_msg("no darknet line for iteration 60 in:\n%s", out);
}

static void test_train_valid_predict(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[1 << 16], path[PATH_MAX];
    train(5, "a.weights");
    train(5, "b.weights");
    train(6, "c.weights");

    unsigned char *a = NULL, *b = NULL, *c = NULL;
    snprintf(path, sizeof path, "%s/a.weights", dir);
    long na = file_bytes(path, &a);
    snprintf(path, sizeof path, "%s/b.weights", dir);
    long nb = file_bytes(path, &b);
    snprintf(path, sizeof path, "%s/c.weights", dir);
    long nc = file_bytes(path, &c);
    /* header 20 + conv 4+3*4+36 + connected 4+4*144 floats */
    assert_int_equal(na, 20 + 4 * (4 + 12 + 36 + 4 + 576));
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    assert_memory_equal(a, b, (size_t)na);     /* same seed, same weights */
    assert_memory_not_equal(a, c, (size_t)na); /* another seed, others */
    free(a);
    free(b);
    free(c);

    /* One checkpoint per epoch (400 images = 20 iterations), as darknet names them. */
    snprintf(path, sizeof path, "%s/backup/bars_3.weights", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid bars.data bars.cfg a.weights "
             "2>/dev/null | tail -n 1",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    double top1 = 0, top2 = 0;
    assert_int_equal(sscanf(out, "99: top 1: %lf, top 2: %lf", &top1, &top2), 2);
    print_message("valid: top 1 %.3f, top 2 %.3f\n", top1, top2);
    assert_true(top1 >= 0.9); /* chance is 0.25 */
    assert_true(top2 >= top1);

    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict bars.data bars.cfg a.weights "
             "right.png 2>/dev/null",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    char pct[16], name[32];
    assert_int_equal(sscanf(out, "%15[^%]%%: %31s", pct, name), 2);
    assert_string_equal(name, "right");

    /* AlexeyAB's training-only keys darknetp lacks: predict goes on, with the same answer and
     * a warning; train refuses, naming the key */
    write_text("noise.cfg", "[net]\nbatch=20\nsubdivisions=2\nheight=12\nwidth=12\n"
                            "channels=1\ngaussian_noise=1\nlabel_smooth_eps=0.1\n"
                            "min_crop=12\nmax_crop=12\nflip=0\n"
                            "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                            "batch_normalize=1\nactivation=leaky\n"
                            "[maxpool]\nsize=2\nstride=2\n"
                            "[connected]\noutput=4\nactivation=linear\n"
                            "[softmax]\n");
    char want[sizeof out];
    snprintf(want, sizeof want, "%s", out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict bars.data noise.cfg a.weights "
             "right.png 2>/dev/null",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, want);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict bars.data noise.cfg a.weights right.png 2>&1 "
             ">/dev/null",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out,
                           "noise.cfg:7: warning: key 'gaussian_noise=1' changes only how darknet "
                           "trains"));
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' classifier train bars.data noise.cfg 2>&1", dir,
             bin);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "noise.cfg:7: key 'gaussian_noise=1' in [net] is not supported for "
                                "training (only gaussian_noise=0)"));
}

/* Trains bars.cfg with extra options, writing the -log CSV to csv; returns the file. */
static char *train_log(const char *options, const char *csv)
{
    char cmd[3 * PATH_MAX], out[1 << 16], path[PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -rf backup && '%s' classifier train -save_every 0 -log %s %s "
             "bars.data bars.cfg 2>&1",
             dir, bin, csv, options);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("train %s exited %d:\n%s", options, rc, out);
    snprintf(path, sizeof path, "%s/%s", dir, csv);
    unsigned char *data = NULL;
    assert_true(read_whole_file(path, &data) > 0);
    return (char *)data;
}

/* The loss and avg_loss fields of a -log row ("" when they stayed in the TEE). */
static void loss_fields(const char *row, char *loss, char *avg, size_t size)
{
    const char *p = strchr(row, ',');
    assert_non_null(p);
    p = strchr(p + 1, ',');
    assert_non_null(p);
    size_t n = strcspn(p + 1, ",");
    assert_true(n < size);
    snprintf(loss, size, "%.*s", (int)n, p + 1);
    p += 1 + n;
    n = strcspn(p + 1, ",");
    assert_true(n < size);
    snprintf(avg, size, "%.*s", (int)n, p + 1);
}

/*
 * The most reported darknet classifier mistake: labels rain, sun and fog with the images
 * under train/, so "rain" is in every path and the sun and fog images match two labels.
 * Training names them and refuses; -allow_unlabelled trains as darknet does; valid warns.
 */
static void test_unlabelled_paths(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[1 << 16], path[PATH_MAX];
    snprintf(path, sizeof path, "%s/train", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    static const char *const names[] = {"0_rain", "1_sun", "2_fog", "3_sun", "4_sun",
                                        "5_sun",  "6_fog", "7_fog", "8_none"};
    char list[1024] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        unsigned char px[SIDE * SIDE];
        bars_draw((int)i % 10, (int)i % 4, px);
        snprintf(path, sizeof path, "%s/train/%s.png", dir, names[i]);
        assert_int_not_equal(stbi_write_png(path, SIDE, SIDE, 1, px, SIDE), 0);
        snprintf(list + strlen(list), sizeof list - strlen(list), "train/%s.png\n", names[i]);
    }
    write_text("rain.list", list);
    write_text("rain.labels", "rain\nsun\nfog\n");
    write_text("rain.data", "classes=3\ntrain=rain.list\nvalid=rain.list\nlabels=rain.labels\n"
                            "backup=rainbk\n");
    write_text("rain.cfg", "[net]\nbatch=4\nsubdivisions=1\nheight=12\nwidth=12\nchannels=1\n"
                           "learning_rate=0.01\nmax_batches=2\n"
                           "min_crop=12\nmax_crop=12\nflip=0\n"
                           "[connected]\noutput=3\nactivation=linear\n[softmax]\n");

    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' classifier train rain.data rain.cfg 2>&1", dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    if (!strstr(out, "error: \"rain.list\": 7 of its 9 image paths match no label or several\n"
                     "  train/1_sun.png: 2 labels (rain, sun)\n"
                     "  train/2_fog.png: 2 labels (rain, fog)\n") ||
        !strstr(out, "\n  ... and 2 more\n") ||
        !strstr(out, "training refused: 7 image paths match no label or several") ||
        !strstr(out, "-allow_unlabelled"))
        fail_msg("no named unlabelled images in:\n%s", out);
    assert_null(strstr(out, "0_rain.png"));
    assert_null(strstr(out, "Learning Rate")); /* refused before training starts */

    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train -allow_unlabelled rain.data rain.cfg 2>&1", dir,
             bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "warning: \"rain.list\": 7 of its 9"));
    assert_non_null(strstr(out, "-allow_unlabelled: training on them as darknet does"));

    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid rain.data rain.cfg rainbk/rain_final.weights 2>&1",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "warning: \"rain.list\": 7 of its 9"));
    assert_non_null(strstr(out, "those images count as wrong"));
    assert_non_null(strstr(out, "8: top 1: "));
}

/* -save_every 0 writes only the final weights; -save_every 2 every second epoch; -log one
 * CSV row per iteration with the numbers of darknet's line. */
static void test_save_every_and_log(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[1 << 16], path[PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -rf backup && '%s' classifier train -save_every 0 -log train.csv "
             "bars.data bars.cfg >/dev/null 2>&1 && ls backup",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "bars_final.weights\n");
    snprintf(path, sizeof path, "%s/train.csv", dir);
    unsigned char *data = NULL;
    assert_true(read_whole_file(path, &data) > 0);
    const char *csv = (const char *)data;
    const char *header = "iteration,epoch,loss,avg_loss,learning_rate,images_per_second,accuracy\n";
    assert_true(strncmp(csv, header, strlen(header)) == 0);
    int rows = 0;
    for (const char *p = csv; (p = strchr(p, '\n')) != NULL; p++)
        rows++;
    assert_int_equal(rows, 1 + 60);
    /* Iteration 60 is epoch 3; the steps policy has cut the rate to 0.005 after 50. */
    const char *last = strstr(csv, "\n60,3.000000,");
    assert_non_null(last);
    double loss = -1, avg = -1, rate = -1, ips = -1;
    assert_int_equal(sscanf(last + 14, "%lf,%lf,%lf,%lf", &loss, &avg, &rate, &ips), 4);
    assert_true(loss >= 0 && avg >= 0 && ips > 0);
    assert_true(rate > 0.00499 && rate < 0.00501);
    free(data);

    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -rf backup && '%s' classifier train -save_every 2 bars.data "
             "bars.cfg >/dev/null 2>&1 && ls backup",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "bars_2.weights\nbars_final.weights\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid -log x.csv bars.data bars.cfg "
             "backup/bars_final.weights 2>/dev/null",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 2); /* a train option */
}

/* darknetp classifier ARGS (in the test folder) exits with code and says msg. */
static void refused(const char *args, int code, const char *msg)
{
    char cmd[3 * PATH_MAX], out[1 << 16];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' classifier %s 2>&1", dir, bin, args);
    assert_int_equal(run(cmd, out, sizeof out), code);
    if (!strstr(out, msg))
        fail_msg("darknetp classifier %s: no '%s' in:\n%s", args, msg, out);
}

/* The accuracy column of -log row `iteration` (negative when empty). */
static double log_accuracy(const char *csv, int iteration)
{
    char key[32];
    snprintf(key, sizeof key, "\n%d,", iteration);
    const char *row = strstr(csv, key);
    assert_non_null(row);
    const char *end = strchr(row + 1, '\n');
    assert_non_null(end);
    const char *last = row + 1;
    for (const char *p = row + 1; p < end; p++)
        if (*p == ',')
            last = p + 1;
    return last == end ? -1 : atof(last);
}

/*
 * -valid_every 1 validates after each epoch (iterations 20, 40, 60 of 400 images): the
 * accuracy goes to stderr and -log, and through the TA with a partition, where it is the
 * same; training itself is unchanged (the same final weights as without). -plot draws both
 * curves; with the loss in the TEE under top1 only the accuracy, and nothing at all refused.
 */
static void test_valid_every_and_plot(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], path[PATH_MAX];
    char *plain = train_log("-valid_every 1 -plot plain.svg", "plain_v.csv");
    snprintf(cmd, sizeof cmd, "cd '%s' && mv backup/bars_final.weights v.weights", dir);
    assert_int_equal(system(cmd), 0);
    char *tee = train_log("-valid_every 1 -pp_start 2 -pp_end 3 -plot tee.svg", "tee_v.csv");
    for (int it = 1; it <= 60; it++) {
        double acc = log_accuracy(plain, it);
        if (it % 20 != 0) {
            assert_true(acc < 0);
            continue;
        }
        assert_true(acc >= 0 && acc <= 1);
        assert_true(acc == log_accuracy(tee, it)); /* the TA's labels, the same answer */
        if (it == 60)
            assert_true(acc >= 0.9); /* chance is 0.25 */
    }
    free(tee);
    free(plain);
    /* Validation changes nothing in training: the weights match a run without it. */
    char *none = train_log("", "none.csv");
    free(none);
    unsigned char *a = NULL, *b = NULL;
    snprintf(path, sizeof path, "%s/v.weights", dir);
    long na = read_whole_file(path, &a);
    snprintf(path, sizeof path, "%s/backup/bars_final.weights", dir);
    long nb = read_whole_file(path, &b);
    assert_true(na > 0 && na == nb);
    assert_memory_equal(a, b, (size_t)na);
    free(a);
    free(b);

    /* Two panels without a partition; only the accuracy one with the loss in the TEE. */
    const char *const svgs[2] = {"plain.svg", "tee.svg"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, svgs[k]);
        unsigned char *data = NULL;
        assert_true(read_whole_file(path, &data) > 0);
        const char *svg = (const char *)data;
        assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_non_null(strstr(svg, "</svg>\n"));
        assert_non_null(strstr(svg, "top-1 accuracy (valid)"));
        assert_int_equal(strstr(svg, ">avg loss</text>") != NULL, k == 0);
        int dots = 0;
        for (const char *p = svg; (p = strstr(p, "<circle")) != NULL; p++)
            dots++;
        assert_int_equal(dots, 3); /* one per validation */
        free(data);
    }

    /* Refusals name the fault. */
    refused("train -pp_start 2 -pp_end 3 -plot x.svg bars.data bars.cfg", 1,
            "-plot: nothing to draw: the loss stays in the TEE");
    snprintf(cmd, sizeof cmd, "cd '%s' && grep -v '^valid' bars.data > novalid.data", dir);
    assert_int_equal(system(cmd), 0);
    refused("train -valid_every 1 novalid.data bars.cfg", 1,
            "-valid_every: novalid.data names no 'valid' set");
    refused("valid -valid_every 1 bars.data bars.cfg v.weights", 2, "are train options");
}

/* Counts the lines of a file in the test folder that start with prefix. */
static int lines_starting(const char *name, const char *prefix)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char *data = NULL;
    assert_true(read_whole_file(path, &data) > 0);
    int n = 0;
    const size_t len = strlen(prefix);
    for (const char *p = (const char *)data; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        n += strncmp(p, prefix, len) == 0;
    free(data);
    return n;
}

/*
 * predict over an IDX image set (the file itself, or the data file for its valid set), in
 * batches: the same labels as valid's, CSV to -out or stdout, JSON lines to a .jsonl -out,
 * with the scores only where they may leave the TEE.
 */
static void test_predict_idx_set_csv_and_jsonl(void **state)
{
    (void)state;
    char cmd[6 * PATH_MAX], out[1 << 16];
    train(5, "p.weights");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid -out v.csv bars.data bars.cfg p.weights "
             ">/dev/null 2>&1 && '%s' classifier predict -out p.csv bars.data bars.cfg "
             "p.weights valid-images.idx 2>/dev/null && "
             "'%s' classifier predict bars.data bars.cfg p.weights valid-images.idx "
             "2>/dev/null > stdout.csv && cmp p.csv stdout.csv && "
             "tail -n +2 v.csv | cut -d, -f1,3 > v.labels && "
             "tail -n +2 p.csv | cut -d, -f1,2 > p.labels && cmp v.labels p.labels && "
             "head -n 1 p.csv",
             dir, bin, bin, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* no partition: the scores leave, one column per class named by `names` */
    assert_string_equal(out, "image,label,name,top,bottom,left,right\n");
    assert_int_equal(lines_starting("p.csv", "valid-images.idx#"), 100);

    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier predict -out p.jsonl bars.data bars.cfg p.weights "
             "bars.data 2>/dev/null && '%s' classifier predict -pp_start 2 -pp_end 3 "
             "-out t.jsonl bars.data bars.cfg p.weights bars.data 2>/dev/null && head -n 1 t.jsonl",
             dir, bin, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* top1 through the TEE: the label, no scores */
    const char *first = "{\"image\":\"valid-images.idx#0\",\"label\":";
    assert_true(strncmp(out, first, strlen(first)) == 0);
    assert_null(strstr(out, "scores"));
    assert_int_equal(lines_starting("t.jsonl", "{\"image\":\"valid-images.idx#"), 100);
    assert_int_equal(lines_starting("p.jsonl", "{\"image\":\"valid-images.idx#"), 100);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && grep -c '\"scores\":\\[[^],]*,[^],]*,[^],]*,[^],]*\\]}$' p.jsonl", dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(atoi(out), 100); /* four scores per image */

    refused("valid -out v.jsonl bars.data bars.cfg p.weights", 2,
            "JSON lines (.jsonl) are predict's");
    snprintf(cmd, sizeof cmd, "cd '%s' && grep -v '^valid' bars.data > novalid.data", dir);
    assert_int_equal(system(cmd), 0);
    refused("predict -out x.csv bars.data bars.cfg p.weights novalid.data", 1,
            "predict novalid.data: it names no 'valid' set to predict");
}

/*
 * With the softmax (the loss) in the TEE the loss reaches -log only when the scores may leave
 * (-tee_output scores): then it is the TA's figure, equal to the plain run's to the last bit;
 * under top1 (the default) the columns stay empty.
 */
static void test_tee_loss_reaches_log_when_scores_leave(void **state)
{
    (void)state;
    char *plain = train_log("", "plain.csv");
    char *scores = train_log("-pp_start 2 -pp_end 3 -tee_output scores", "scores.csv");
    char *top1 = train_log("-pp_start 2 -pp_end 3", "top1.csv");
    const char *a = strchr(plain, '\n'), *b = strchr(scores, '\n'), *c = strchr(top1, '\n');
    int rows = 0;
    for (; a && a[1] && b && c;
         a = strchr(a + 1, '\n'), b = strchr(b + 1, '\n'), c = strchr(c + 1, '\n'), rows++) {
        char la[64], aa[64], lb[64], ab[64], lc[64], ac[64];
        loss_fields(a + 1, la, aa, sizeof la);
        loss_fields(b + 1, lb, ab, sizeof lb);
        loss_fields(c + 1, lc, ac, sizeof lc);
        assert_true(la[0] != '\0' && aa[0] != '\0');
        assert_string_equal(la, lb); /* the TA's loss is the engine's */
        assert_string_equal(aa, ab);
        assert_string_equal(lc, ""); /* labels only: the loss stays in the TEE */
        assert_string_equal(ac, "");
    }
    assert_int_equal(rows, 60);
    free(top1);
    free(scores);
    free(plain);
}

static void test_interrupt_saves_backup(void **state)
{
    (void)state;
    char cmd[3 * PATH_MAX], out[4096], path[PATH_MAX];
    snprintf(path, sizeof path, "%s/long.cfg", dir);
    /* Same network, trained "forever". */
    snprintf(cmd, sizeof cmd, "sed 's/max_batches=60/max_batches=100000000/' '%s/bars.cfg' > '%s'",
             dir, path);
    assert_int_equal(system(cmd), 0);
    /* Start, wait for the first iteration line, send SIGINT, report the exit code. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ('%s' classifier train bars.data long.cfg > long.log 2>&1 & pid=$!; "
             "i=0; while ! grep -q images long.log && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); "
             "done; kill -INT $pid; "
             "wait $pid; echo $?)",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(atoi(out), 130);
    snprintf(path, sizeof path, "%s/backup/long.backup", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 20 + 4 * (4 + 12 + 36 + 4 + 576));
}

/* -threads N: the same weights and the same valid lines for any N (bit for bit), with
 * AlexeyAB's cutmix, mosaic and blur on (their draws come from the data loader's stream)
 * and antialiased layers, whose inner stride-1 pass is split among the threads too. */
static void test_threads_same_results(void **state)
{
    (void)state;
    char cmd[4 * PATH_MAX], out[1 << 16], first_valid[1 << 16] = "", path[PATH_MAX];
    write_text("threads.cfg", "[net]\nbatch=20\nsubdivisions=1\nheight=12\nwidth=12\n"
                              "channels=1\nlearning_rate=0.05\nmomentum=0.9\ndecay=0.0005\n"
                              "max_batches=6\nmin_crop=12\nmax_crop=12\nflip=0\n"
                              "cutmix=1\nmosaic=1\nblur=1\n"
                              "[convolutional]\nfilters=24\nsize=3\nstride=1\npad=1\n"
                              "batch_normalize=1\nactivation=leaky\n"
                              "[convolutional]\nfilters=20\nsize=3\nstride=2\npad=1\n"
                              "antialiasing=1\nactivation=leaky\n"
                              "[maxpool]\nsize=2\nstride=2\nantialiasing=2\n"
                              "[dropout]\nprobability=.2\n"
                              "[connected]\noutput=4\nactivation=linear\n"
                              "[softmax]\n");
    const int threads[] = {1, 2, 3, 7};
    unsigned char *want = NULL;
    long n_want = 0;
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && '%s' classifier train -threads %d -seed 3 bars.data threads.cfg "
                 ">/dev/null 2>&1 && mv backup/threads_final.weights t%d.weights && '%s' "
                 "classifier valid "
                 "-threads %d bars.data threads.cfg t%d.weights 2>&1 | grep 'top 1'",
                 dir, bin, threads[t], threads[t], bin, threads[t], threads[t]);
        int rc = run(cmd, out, sizeof out);
        if (rc != 0)
            fail_msg("-threads %d exited %d:\n%s", threads[t], rc, out);
        unsigned char *got = NULL;
        snprintf(path, sizeof path, "%s/t%d.weights", dir, threads[t]);
        long n = file_bytes(path, &got);
        assert_true(n > 20);
        if (!want) {
            want = got;
            n_want = n;
            snprintf(first_valid, sizeof first_valid, "%s", out);
            assert_non_null(strstr(out, "top 1"));
            continue;
        }
        assert_int_equal(n, n_want);
        assert_memory_equal(got, want, (size_t)n);
        assert_string_equal(out, first_valid);
        free(got);
    }
    free(want);
    /* Training says at start which augmentations are on. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier train -seed 3 bars.data threads.cfg 2>&1 >/dev/null | "
             "grep '^Augmentation: '",
             dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "Augmentation: cutmix or mosaic (half the batches), blur 15x15 (a "
                             "quarter of the images)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_valid_predict),
        cmocka_unit_test(test_unlabelled_paths),
        cmocka_unit_test(test_save_every_and_log),
        cmocka_unit_test(test_tee_loss_reaches_log_when_scores_leave),
        cmocka_unit_test(test_valid_every_and_plot),
        cmocka_unit_test(test_predict_idx_set_csv_and_jsonl),
        cmocka_unit_test(test_interrupt_saves_backup),
        cmocka_unit_test(test_threads_same_results),
    };
    return cmocka_run_group_tests_name("cli train", tests, setup, teardown);
}
