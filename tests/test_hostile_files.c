/*
 * test_hostile_files.c - issue 8's hostile inputs, each as a user would give it:
 *  - a .data file whose train=, valid=, names= or labels= is /dev/zero, or a sparse
 *    file past the reader's limit: refused at once, naming the file (and the limit),
 *    in little memory;
 *  - a FIFO named x.weights.tz beside a sealed x.weights: predict and train return
 *    an error instead of blocking in open();
 *  - a directory, a FIFO or a device given as cfg, weights, image or IDX file;
 *  - a cfg of width=100000 with a small .weights: refused before any network is
 *    allocated (the child runs under an address-space limit the network would break);
 *  - a train list naming missing images: refused before the first iteration with the
 *    count and the names.
 * darknetp runs in a child with a deadline (a blocked open would otherwise hang the
 * suite, which has no timeout) and its peak memory is read with wait4.
 */
#define _GNU_SOURCE /* wait4 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "darknet/cfg.h"
#include "darknet/dataset.h"
#include "darknet/idx.h"
#include "darknet/image.h"
#include "darknet/user_file.h"
#include "darknet/weights.h"
#include "tests/helpers/fixtures.h"

/* A sanitizer reserves terabytes of shadow memory: an address-space limit cannot be
 * used there, ASan's own largest-allocation limit is (see run_child). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Seconds a refusal may take before the child counts as blocked: generous for ASan. */
#define DEADLINE_S 60

static char bin[PATH_MAX];
static char fixture[PATH_MAX];
static char dir[64];

/* What a child run gave. */
struct child {
    int status;     /* exit status, or -1 when killed */
    bool timed_out; /* still running at the deadline (then killed) */
    long maxrss_kb; /* peak resident memory */
    char out[8192]; /* stdout and stderr */
};

/*
 * Runs darknetp with argv (argv[0] is ignored) in dir, stdout and stderr to a file.
 * as_limit > 0 caps the child's address space (ASan: its largest allocation instead,
 * with failures returning NULL as malloc would under the limit).
 */
static void run_child(char *const argv[], size_t as_limit, struct child *c)
{
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/child.log", dir);
    memset(c, 0, sizeof *c);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(dir) != 0)
            _exit(127);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        if (as_limit > 0 && UNDER_ASAN) {
            char opts[256];
            snprintf(opts, sizeof opts,
                     "detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=%zu",
                     as_limit >> 20);
            setenv("ASAN_OPTIONS", opts, 1);
        } else if (as_limit > 0) {
            struct rlimit rl = {.rlim_cur = as_limit, .rlim_max = as_limit};
            if (setrlimit(RLIMIT_AS, &rl) != 0)
                _exit(126);
        }
        char *args[32];
        size_t n = 0;
        args[n++] = bin;
        for (size_t i = 1; argv[i] && n + 1 < sizeof args / sizeof args[0]; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        execv(bin, args);
        _exit(125);
    }
    /* Poll instead of blocking in wait: a child stuck in open() must fail the test. */
    struct rusage ru = {0};
    int st = 0;
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    for (long waited = 0;; waited += 20) {
        pid_t r = wait4(pid, &st, WNOHANG, &ru);
        assert_true(r >= 0);
        if (r == pid)
            break;
        if (waited >= DEADLINE_S * 1000L) {
            c->timed_out = true;
            kill(pid, SIGKILL);
            assert_int_equal(wait4(pid, &st, 0, &ru), pid);
            break;
        }
        nanosleep(&tick, NULL);
    }
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    c->maxrss_kb = ru.ru_maxrss;
    FILE *f = fopen(log, "rb");
    assert_non_null(f);
    size_t got = fread(c->out, 1, sizeof c->out - 1, f);
    c->out[got] = '\0';
    fclose(f);
}

static void expect_refusal(const struct child *c, const char *want1, const char *want2)
{
    if (c->timed_out)
        fail_msg("darknetp still ran after %d s (blocked?); output:\n%s", DEADLINE_S, c->out);
    if (c->status != 1 || !strstr(c->out, want1) || (want2 && !strstr(c->out, want2)))
        fail_msg("expected exit 1 with '%s'%s%s%s, got %d:\n%s", want1, want2 ? " and '" : "",
                 want2 ? want2 : "", want2 ? "'" : "", c->status, c->out);
}

static void write_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* A sparse file of `bytes`: as large as the limits need, no disk used. */
static void write_sparse(const char *name, off_t bytes)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, bytes), 0);
    assert_int_equal(close(fd), 0);
}

static void path_in(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* Whether @path holds a label of the fixture (c0 .. c9, labels.list). */
static bool has_label_name(const char *path)
{
    for (const char *p = path; p[0] && p[1]; p++)
        if (p[0] == 'c' && p[1] >= '0' && p[1] <= '9')
            return true;
    return false;
}

static int setup(void **state)
{
    (void)state;
    char rel[PATH_MAX], cmd[4 * PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    fixture_dir("darknet-mnist-lenet", rel, sizeof rel);
    if (!realpath(rel, fixture))
        return -1;
    /* The training list holds absolute paths, and darknet finds an image's label as a
     * substring of its path: a folder name with a label in it ("c5") would match every
     * image to two labels. Such a name is drawn again. */
    for (int tries = 0;; tries++) {
        snprintf(dir, sizeof dir, "/tmp/dz-hostile-XXXXXX");
        if (!mkdtemp(dir))
            return -1;
        if (!has_label_name(dir) || tries == 100)
            break;
        if (rmdir(dir) != 0)
            return -1;
    }
    /* The fixture's network, data and images; a list of its 12 images for training. */
    snprintf(cmd, sizeof cmd,
             "cp -r '%s'/. '%s'/ && cd '%s' && ls \"$PWD\"/images/*.png > train.list && "
             "sed -e 's/^batch=100/batch=4/' -e 's/^max_batches=10000/max_batches=1/' "
             "mnist_lenet.cfg > small.cfg",
             fixture, dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------ endless and oversized lists */

/* Peak memory a refusal may use: the program itself, far below any list's size. */
#define SMALL_RSS_KB (256 * 1024)

static void test_data_keys_dev_zero(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        const char *cmd;
    } cases[] = {
        {"classes=10\ntrain=/dev/zero\nlabels=labels.list\n", "train"},
        {"classes=10\nvalid=/dev/zero\nlabels=labels.list\n", "valid"},
        {"classes=10\ntrain=train.list\nlabels=/dev/zero\n", "train"},
        {"classes=10\nvalid=train.list\nlabels=labels.list\nnames=/dev/zero\n", "predict"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct child c;
        write_file("zero.data", cases[i].data);
        char *argv[] = {"darknetp",  "classifier",          (char *)cases[i].cmd,    "zero.data",
                        "small.cfg", "mnist_lenet.weights", "images/t_00007_c3.png", NULL};
        if (strcmp(cases[i].cmd, "train") == 0)
            argv[5] = NULL; /* train from scratch: the list is read before any iteration */
        else if (strcmp(cases[i].cmd, "valid") == 0)
            argv[6] = NULL;
        run_child(argv, (size_t)1 << 30, &c);
        expect_refusal(&c, "/dev/zero: not a regular file (a character device)", NULL);
        if (c.maxrss_kb > SMALL_RSS_KB)
            fail_msg("case %zu: %ld KiB peak memory for a refused /dev/zero", i, c.maxrss_kb);
    }
}

static void test_lists_over_their_limits(void **state)
{
    (void)state;
    struct child c;
    write_sparse("huge.list", (off_t)DK_LIST_MAX_BYTES + 1);
    write_sparse("huge.names", (off_t)DK_NAMES_MAX_BYTES + 1);
    write_sparse("huge.cfg", (off_t)DK_CFG_MAX_BYTES + 1);

    write_file("huge.data", "classes=10\ntrain=huge.list\nlabels=labels.list\n");
    char *train[] = {"darknetp", "classifier", "train", "huge.data", "small.cfg", NULL};
    run_child(train, (size_t)1 << 30, &c);
    expect_refusal(&c, "huge.list: a list of image paths of 268435457 bytes exceeds the limit",
                   "(256 MiB)");
    assert_true(c.maxrss_kb <= SMALL_RSS_KB);

    write_file("huge.data", "classes=10\ntrain=train.list\nlabels=huge.names\n");
    run_child(train, (size_t)1 << 30, &c);
    expect_refusal(&c, "huge.names: a names or labels file of 16777217 bytes exceeds", "(16 MiB)");

    write_file("huge.data", "classes=10\ntrain=train.list\nlabels=labels.list\n");
    char *cfg[] = {"darknetp", "classifier", "train", "huge.data", "huge.cfg", NULL};
    run_child(cfg, (size_t)1 << 30, &c);
    expect_refusal(&c, "huge.cfg: a cfg file of 16777217 bytes exceeds the limit", "(16 MiB)");

    char *data[] = {"darknetp", "classifier", "train", "huge.list", "small.cfg", NULL};
    run_child(data, (size_t)1 << 30, &c);
    expect_refusal(&c, "huge.list: a data file of 268435457 bytes exceeds the limit", NULL);
}

/* A list with more lines than its limit, in memory no larger than the file. */
static void test_names_line_limit(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in("many.names", path, sizeof path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i <= DK_NAMES_MAX_LINES; i++)
        fputc('\n', f);
    assert_int_equal(fclose(f), 0);
    struct dk_list l = {0};
    struct dk_error err = {{0}};
    assert_int_equal(dk_list_read(path, &l, &err), -1);
    assert_non_null(strstr(err.msg, "1048577 lines exceeds the limit of 1048576 lines"));
    assert_null(l.items);
}

/* ------------------------------------------------------- FIFOs and devices */

/* Every reader refuses a FIFO, a device and a directory without blocking: this process
 * arms an alarm, so a blocked open kills the test instead of hanging the suite. */
static void test_readers_refuse_special_files(void **state)
{
    (void)state;
    char fifo[PATH_MAX];
    path_in("pipe", fifo, sizeof fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *paths[] = {fifo, "/dev/zero", dir};
    const char *kinds[] = {"(a FIFO)", "(a character device)", "(a directory)"};
    alarm(DEADLINE_S);
    for (size_t i = 0; i < 3; i++) {
        struct dk_error err = {{0}};
        struct dk_cfg *cfg = NULL;
        struct dk_list l = {0};
        struct dk_idx idx = {0};
        struct dk_image im = {0};
        struct dk_weights_header h;
        bool is_idx = false;
        char *data = NULL;
        size_t len = 0;
#define EXPECT_REFUSED(call)                                                                       \
    do {                                                                                           \
        err.msg[0] = '\0';                                                                         \
        assert_int_equal((call), -1);                                                              \
        if (!strstr(err.msg, kinds[i]) || !strstr(err.msg, paths[i]))                              \
            fail_msg("%s: got '%s'", #call, err.msg);                                              \
    } while (0)
        EXPECT_REFUSED(dk_cfg_read(paths[i], false, &cfg, &err));
        EXPECT_REFUSED(dk_cfg_read(paths[i], true, &cfg, &err));
        EXPECT_REFUSED(dk_list_read(paths[i], &l, &err));
        EXPECT_REFUSED(dk_list_read_paths(paths[i], &l, &err));
        EXPECT_REFUSED(dk_idx_read(paths[i], &idx, &err));
        EXPECT_REFUSED(dk_idx_probe(paths[i], &is_idx, &err));
        EXPECT_REFUSED(dk_image_load(paths[i], 0, &im, &err));
        EXPECT_REFUSED(dk_weights_read_header(paths[i], &h, &err));
        EXPECT_REFUSED(dk_user_file_read(paths[i], "a file", 1024, &data, &len, &err));
        EXPECT_REFUSED(dk_user_file_check(paths[i], &err));
#undef EXPECT_REFUSED
    }
    alarm(0);
}

/* The limit message names the file, what it is and the limit. */
static void test_user_file_limit_message(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    char *data = NULL;
    size_t len = 0;
    write_file("five", "12345");
    char path[PATH_MAX];
    path_in("five", path, sizeof path);
    assert_int_equal(dk_user_file_read(path, "a thing", 4, &data, &len, &err), -1);
    assert_non_null(strstr(err.msg, "five: a thing of 5 bytes exceeds the limit of 4 bytes"));
    assert_int_equal(dk_user_file_read(path, "a thing", 5, &data, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "12345");
    free(data);
}

/* An IDX header claiming more than the file holds is refused before its buffer. */
static void test_idx_claims_checked_against_size(void **state)
{
    (void)state;
    /* 3 dimensions of 1000 x 1000 x 1000: a gigabyte announced by a 16-byte file. */
    const unsigned char head[16] = {0, 0, 8, 3, 0, 0, 3, 0xE8, 0, 0, 3, 0xE8, 0, 0, 3, 0xE8};
    char path[PATH_MAX];
    path_in("claim.idx", path, sizeof path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, sizeof head, f), sizeof head);
    assert_int_equal(fclose(f), 0);
    struct dk_idx idx = {0};
    struct dk_error err = {{0}};
    assert_int_equal(dk_idx_read(path, &idx, &err), -1);
    assert_non_null(strstr(err.msg, "truncated: the header announces 1000000000 data bytes"));
}

static void test_fifo_beside_sealed_weights(void **state)
{
    (void)state;
    struct child c;
    write_file("t.data", "classes=10\ntrain=train.list\nlabels=labels.list\nnames=names.list\n"
                         "backup=bk\n");
    /* A sealed pair from one TEE training iteration. */
    char *train[] = {"darknetp", "classifier", "train",  "-pp_start", "4",
                     "-pp_end",  "10",         "t.data", "small.cfg", NULL};
    run_child(train, 0, &c);
    if (c.status != 0)
        fail_msg("training for the sealed pair failed:\n%s", c.out);
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p fifo && cp bk/small_final.weights fifo/x.weights && "
             "mkfifo fifo/x.weights.tz",
             dir);
    assert_int_equal(system(cmd), 0);

    char *predict[] = {"darknetp",
                       "classifier",
                       "predict",
                       "-pp_start",
                       "4",
                       "-pp_end",
                       "10",
                       "t.data",
                       "small.cfg",
                       "fifo/x.weights",
                       "images/t_00007_c3.png",
                       NULL};
    run_child(predict, 0, &c);
    expect_refusal(&c, "fifo/x.weights.tz: not a regular file (a FIFO)", NULL);

    char *resume[] = {"darknetp", "classifier", "train",     "-pp_start",      "4", "-pp_end",
                      "10",       "t.data",     "small.cfg", "fifo/x.weights", NULL};
    run_child(resume, 0, &c);
    expect_refusal(&c, "fifo/x.weights.tz: not a regular file (a FIFO)", NULL);
}

static void test_directory_as_cfg(void **state)
{
    (void)state;
    struct child c;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/net.cfg'", dir);
    assert_int_equal(system(cmd), 0);
    char *predict[] = {"darknetp",
                       "classifier",
                       "predict",
                       "mnist.dataset",
                       "net.cfg",
                       "mnist_lenet.weights",
                       "images/t_00007_c3.png",
                       NULL};
    run_child(predict, 0, &c);
    expect_refusal(&c, "net.cfg: not a regular file (a directory)", NULL);
    char *plan[] = {"darknetp", "tee", "plan", "net.cfg", NULL};
    run_child(plan, 0, &c);
    expect_refusal(&c, "net.cfg: not a regular file (a directory)", NULL);
    /* The image named on the command line, and the .data file, likewise. */
    char *image[] = {"darknetp",  "classifier",          "predict", "mnist.dataset",
                     "small.cfg", "mnist_lenet.weights", "net.cfg", NULL};
    run_child(image, 0, &c);
    expect_refusal(&c, "net.cfg: not a regular file (a directory)", NULL);
    char *data[] = {"darknetp", "classifier", "predict", "net.cfg", "small.cfg", "x.weights", NULL};
    run_child(data, 0, &c);
    expect_refusal(&c, "net.cfg: not a regular file (a directory)", NULL);
}

/* ------------------------------------------------------- validation first */

/* A network of several gigabytes (its first convolution's output alone is 100000 x 100 x
 * 16 floats per image) against the fixture's 191 KB weights: the size mismatch must be
 * reported from the shapes, before the network exists. Under a 512 MiB address-space
 * limit, allocating the network would fail with "out of memory" instead. */
static void test_wide_cfg_refused_before_allocation(void **state)
{
    (void)state;
    struct child c;
    write_file("wide.cfg", "[net]\nbatch=1\nheight=100\nwidth=100000\nchannels=1\n"
                           "[convolutional]\nfilters=16\nsize=3\npad=1\nactivation=relu\n"
                           "[connected]\noutput=10\n[softmax]\n");
    char *predict[] = {"darknetp",
                       "classifier",
                       "predict",
                       "mnist.dataset",
                       "wide.cfg",
                       "mnist_lenet.weights",
                       "images/t_00007_c3.png",
                       NULL};
    run_child(predict, (size_t)512 << 20, &c);
    expect_refusal(&c, "mnist_lenet.weights: truncated: layers 0..2 need", NULL);
    char *train[] = {"darknetp", "classifier",          "train", "mnist.dataset",
                     "wide.cfg", "mnist_lenet.weights", NULL};
    write_file("w.data", "classes=10\ntrain=train.list\nlabels=labels.list\n");
    train[3] = "w.data";
    run_child(train, (size_t)512 << 20, &c);
    expect_refusal(&c, "mnist_lenet.weights: truncated: layers 0..2 need", NULL);
}

/* ------------------------------------------------------ training data check */

static void test_missing_images_refused_at_start(void **state)
{
    (void)state;
    struct child c;
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp train.list gaps.list && echo \"$PWD/images/gone_c1.png\" >> "
             "gaps.list && echo \"$PWD/images\" >> gaps.list && "
             "for i in 2 3 4 5; do echo \"$PWD/images/lost_c$i.png\" >> gaps.list; done",
             dir);
    assert_int_equal(system(cmd), 0);
    write_file("gaps.data", "classes=10\ntrain=gaps.list\nlabels=labels.list\nbackup=gk\n");
    char *train[] = {"darknetp", "classifier", "train", "gaps.data", "small.cfg", NULL};
    run_child(train, 0, &c);
    expect_refusal(&c, "\"gaps.list\": 6 of its 18 images cannot be read: ",
                   "images/gone_c1.png: cannot open: No such file or directory; ");
    assert_non_null(strstr(c.out, "/images: not a regular file (a directory); "));
    assert_non_null(strstr(c.out, "lost_c2.png: cannot open"));
    assert_non_null(strstr(c.out, "; ..."));
    /* Refused before the first iteration: no line of darknet's, no backup folder. */
    assert_null(strstr(c.out, " avg, "));
    char gk[PATH_MAX];
    path_in("gk", gk, sizeof gk);
    struct stat st;
    assert_int_equal(stat(gk, &st) == 0 && S_ISDIR(st.st_mode) ? 1 : 0, 0);

    /* An unreadable image counts too (root reads anything: then skip that part). */
    if (geteuid() != 0) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && cp images/t_00000_c5.png locked_c5.png && chmod 000 locked_c5.png "
                 "&& cp train.list locked.list && echo \"$PWD/locked_c5.png\" >> locked.list",
                 dir);
        assert_int_equal(system(cmd), 0);
        write_file("locked.data", "classes=10\ntrain=locked.list\nlabels=labels.list\n");
        train[3] = "locked.data";
        run_child(train, 0, &c);
        expect_refusal(&c, "1 of its 13 images cannot be read",
                       "locked_c5.png: cannot open: Permission denied");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_keys_dev_zero),
        cmocka_unit_test(test_lists_over_their_limits),
        cmocka_unit_test(test_names_line_limit),
        cmocka_unit_test(test_readers_refuse_special_files),
        cmocka_unit_test(test_user_file_limit_message),
        cmocka_unit_test(test_idx_claims_checked_against_size),
        cmocka_unit_test(test_fifo_beside_sealed_weights),
        cmocka_unit_test(test_directory_as_cfg),
        cmocka_unit_test(test_wide_cfg_refused_before_allocation),
        cmocka_unit_test(test_missing_images_refused_at_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
