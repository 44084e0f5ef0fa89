/*
 * test_cli_signals.c - what stops a TEE training run, as a user meets it: Ctrl-C in a
 * terminal, twice in a row, and a training image that disappears mid-run.
 *
 * darknetp runs as the foreground job of a real pseudo-terminal (its own session, the
 * terminal as its controlling terminal) and the test types the terminal's interrupt
 * character, so the kernel signals the whole foreground process group exactly as for a
 * user's Ctrl-C: the simulated secure world must not be in that group. Every wait is on
 * darknetp's output or exit, never on elapsed time; the bounds only stop a hung run.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname, realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "tests/helpers/bars.h"
#include "tests/helpers/fixtures.h"
#include "tests/helpers/tmpdir.h"

/* Only a hung run takes this long; a sanitizer build needs a few seconds per run. */
#define HANG_LIMIT_MS (300 * 1000)
#define POLL_MS 100

/* The bars network with its connected and softmax layers (2..3) in the TEE. */
#define PARTITION "-pp_start", "2", "-pp_end", "3"
/* What a TEE-held loss prints instead of a number, once per iteration. */
#define ITERATION_MARK "loss in the TEE"
/* Images of the list data set: few, so every one is drawn within a few iterations. */
#define LIST_IMAGES 16

static char bin[PATH_MAX];
static char dir[64];

/* darknetp in a terminal: the pty master the test reads and types into, and all it printed. */
struct term_run {
    pid_t pid;
    int master;
    char *out;
    size_t len, cap;
    int status; /* waitpid status once it has exited */
    bool eof;   /* the terminal's slave side is closed */
};

static void write_text(const char *name, const char *text)
{
    assert_int_equal(write_text_file(dir, name, text, NULL, 0), 0);
}

/* The bars network (test_cli_train.c's) trained "for ever", written to DIR/NAME. */
static void write_long_cfg(const char *name)
{
    write_text(name, "[net]\nbatch=20\nsubdivisions=2\nheight=12\nwidth=12\nchannels=1\n"
                     "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\n"
                     "policy=steps\nsteps=50\nscales=.1\nmax_batches=100000000\n"
                     "min_crop=12\nmax_crop=12\nflip=0\n"
                     "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n"
                     "batch_normalize=1\nactivation=leaky\n"
                     "[maxpool]\nsize=2\nstride=2\n"
                     "[connected]\noutput=4\nactivation=linear\n"
                     "[softmax]\n");
}

/* A paths-list data set: LIST_IMAGES PNGs in DIR/imgs, labelled by name, in list.data. */
static int write_list_data(void)
{
    static const char *const names[BARS_CLASSES] = {"top", "bottom", "left", "right"};
    char path[PATH_MAX], line[64];
    snprintf(path, sizeof path, "%s/imgs", dir);
    if (mkdir(path, 0700) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/list.txt", dir);
    FILE *list = fopen(path, "w");
    if (!list)
        return -1;
    int rc = 0;
    for (int i = 0; i < LIST_IMAGES && rc == 0; i++) {
        unsigned char px[BARS_SIDE * BARS_SIDE];
        bars_draw((unsigned)i + 1, i % BARS_CLASSES, px);
        /* Relative paths: the class is found by substring, and dir's random part must not. */
        snprintf(line, sizeof line, "imgs/%02d_%s.png", i, names[i % BARS_CLASSES]);
        snprintf(path, sizeof path, "%s/%s", dir, line);
        if (!stbi_write_png(path, BARS_SIDE, BARS_SIDE, 1, px, BARS_SIDE) ||
            fprintf(list, "%s\n", line) < 0)
            rc = -1;
    }
    if (fclose(list) != 0)
        rc = -1;
    if (rc == 0)
        rc = write_text_file(dir, "list.data",
                             "classes=4\ntrain=list.txt\nlabels=bars.names\n"
                             "valid=valid-images.idx\nvalid_labels=valid-labels.idx\n"
                             "names=bars.names\nbackup=backup\ntop=2\n",
                             NULL, 0);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    char path[PATH_MAX];
    if (!realpath(darknetp_path(), bin))
        return -1;
    snprintf(dir, sizeof dir, "/tmp/dz-signals-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* The TA's storage and console stay inside the test's folder. */
    snprintf(path, sizeof path, "%s/storage", dir);
    setenv("DZ_TEE_STORAGE", path, 1);
    snprintf(path, sizeof path, "%s/console.log", dir);
    setenv("DZ_TEE_LOG", path, 1);
    if (bars_write_idx(dir, "train", 400, 1) != 0 || bars_write_idx(dir, "valid", 100, 1000) != 0 ||
        bars_write_data_file(dir) != 0)
        return -1;
    return write_list_data();
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

/*
 * In the forked child: becomes a session leader whose controlling terminal is the pty's
 * slave, so its process group is the terminal's foreground group, as a shell's foreground
 * job is. The terminal generates SIGINT from ^C (ISIG), and the signals the test runner may
 * catch, ignore or block are back to their defaults for darknetp. Never returns.
 */
static void exec_in_terminal(const char *slave, int master, char *const argv[])
{
    if (setsid() < 0)
        _exit(126);
    int s = open(slave, O_RDWR);
    if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0)
        _exit(126);
    struct termios tio;
    if (tcgetattr(s, &tio) == 0) {
        tio.c_lflag |= ISIG;
        tio.c_cc[VINTR] = 0x03;
        tcsetattr(s, TCSANOW, &tio);
    }
    if (dup2(s, STDIN_FILENO) < 0 || dup2(s, STDOUT_FILENO) < 0 || dup2(s, STDERR_FILENO) < 0)
        _exit(126);
    if (s > STDERR_FILENO)
        close(s);
    close(master);
    static const int sigs[] = {SIGINT, SIGTERM, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (chdir(dir) != 0)
        _exit(126);
    execv(bin, argv);
    _exit(127);
}

/* Starts `darknetp classifier train -seed SEED ... DATA CFG` in DIR as the foreground job of a
 * new pty. */
static void start_train(struct term_run *t, const char *seed, const char *data, const char *cfg)
{
    memset(t, 0, sizeof *t);
    t->master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(t->master >= 0);
    assert_int_equal(grantpt(t->master), 0);
    assert_int_equal(unlockpt(t->master), 0);
    char slave[PATH_MAX];
    snprintf(slave, sizeof slave, "%s", ptsname(t->master));
    char *const argv[] = {bin,       "classifier", "train",     "-seed", (char *)seed,
                          PARTITION, (char *)data, (char *)cfg, NULL};
    fflush(NULL);
    t->pid = fork();
    assert_true(t->pid >= 0);
    if (t->pid == 0)
        exec_in_terminal(slave, t->master, argv);
}

/* Milliseconds of the monotonic clock: the bound on a hung run. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads what darknetp printed so far, waiting at most POLL_MS. Return: false at end of
 * output; then it only waits POLL_MS (darknetp closes the terminal a moment before it can
 * be reaped, and the caller polls for that).
 */
static bool read_some(struct term_run *t)
{
    if (t->eof) {
        struct timespec pause = {.tv_nsec = POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
        return false;
    }
    struct pollfd p = {.fd = t->master, .events = POLLIN};
    if (poll(&p, 1, POLL_MS) <= 0)
        return true;
    if (t->cap - t->len < 4096) {
        t->cap = t->cap ? 2 * t->cap : 1 << 16;
        t->out = realloc(t->out, t->cap);
        assert_non_null(t->out);
    }
    ssize_t n = read(t->master, t->out + t->len, t->cap - t->len - 1);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0) {
        t->eof = true; /* EIO: every process holding the slave has closed it */
        return false;
    }
    t->len += (size_t)n;
    t->out[t->len] = '\0';
    return true;
}

/* The end of what a program printed: cmocka's messages are short, the last lines tell. */
static const char *tail(const char *out)
{
    const size_t keep = 400;
    if (!out)
        return "";
    size_t len = strlen(out);
    return len > keep ? out + len - keep : out;
}

static size_t count_of(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *p = haystack; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Reads until darknetp has printed needle `count` times; fails if it ends or hangs first. */
static void read_until(struct term_run *t, const char *needle, size_t count)
{
    for (long long end = now_ms() + HANG_LIMIT_MS; now_ms() < end;) {
        if (t->out && count_of(t->out, needle) >= count)
            return;
        if (!read_some(t) || waitpid(t->pid, &t->status, WNOHANG) == t->pid)
            break;
    }
    kill(t->pid, SIGKILL);
    fail_msg("darknetp did not print \"%s\" %zu times:\n%s", needle, count, tail(t->out));
}

/* Types into the terminal, as a user at its keyboard. */
static void type(struct term_run *t, const char *keys)
{
    assert_int_equal(write(t->master, keys, strlen(keys)), (ssize_t)strlen(keys));
}

/* Reads everything until darknetp exits. Return: its exit code (fails if it died otherwise). */
static int finish(struct term_run *t)
{
    pid_t r = 0;
    for (long long end = now_ms() + HANG_LIMIT_MS; r == 0 && now_ms() < end;) {
        read_some(t);
        r = waitpid(t->pid, &t->status, WNOHANG);
    }
    if (r == 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &t->status, 0);
        fail_msg("darknetp did not exit:\n%s", tail(t->out));
    }
    /* The last lines, unless the secure world still holds the slave (then they are in). */
    struct pollfd p = {.fd = t->master, .events = POLLIN};
    while (!t->eof && poll(&p, 1, 0) > 0 && read_some(t))
        ;
    close(t->master);
    if (!WIFEXITED(t->status))
        fail_msg("darknetp died of signal %d:\n%s", WTERMSIG(t->status), tail(t->out));
    return WEXITSTATUS(t->status);
}

static bool file_exists(const char *name)
{
    char path[2 * PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A checkpoint pair loads back: `valid` with the same partition runs over the valid set. */
static void assert_pair_loads(const char *data, const char *cfg, const char *weights)
{
    char cmd[3 * PATH_MAX], out[1 << 14], tz[PATH_MAX];
    snprintf(tz, sizeof tz, "%s.tz", weights);
    if (!file_exists(weights) || !file_exists(tz))
        fail_msg("%s or %s is missing", weights, tz);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' classifier valid -pp_start 2 -pp_end 3 %s %s %s 2>&1 | tail -n 2",
             dir, bin, data, cfg, weights);
    int rc = run_capture(cmd, out, sizeof out);
    if (rc != 0 || !strstr(out, "99: top 1: "))
        fail_msg("valid on %s exited %d:\n%s", weights, rc, tail(out));
}

/* No temporary file of an abandoned save is left in DIR/backup. */
static void assert_no_temporaries(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/backup", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-"))
            fail_msg("backup/%s was left behind", e->d_name);
    closedir(d);
}

static void assert_console_clean(void)
{
    char path[PATH_MAX], buf[1 << 14] = {0};
    snprintf(path, sizeof path, "%s/console.log", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return; /* nothing logged */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    /* The core reports a TA that a signal other than its own SIGKILL ended. */
    if (strstr(buf, "died of signal"))
        fail_msg("the secure world was signalled:\n%s", buf);
}

/* pid's parent, process group and session, from /proc/PID/stat. Return: false if it is gone. */
static bool proc_ids(pid_t pid, pid_t *ppid, pid_t *pgrp, pid_t *sid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses. */
    const char *end = strrchr(buf, ')');
    int a, b, c;
    if (!end || sscanf(end + 1, " %*c %d %d %d", &a, &b, &c) != 3)
        return false;
    *ppid = a;
    *pgrp = b;
    *sid = c;
    return true;
}

/*
 * The terminal's foreground process group (what its Ctrl-C signals) is darknetp alone, and
 * darknetp's children (the secure world's core) are in another session. Reads /proc: the
 * simulated TEE is Linux only.
 */
static void assert_secure_world_apart(const struct term_run *t)
{
    pid_t fg = tcgetpgrp(t->master);
    assert_int_equal(fg, t->pid);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int children = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        pid_t ppid, pgrp, sid;
        if (*end || pid <= 0 || !proc_ids((pid_t)pid, &ppid, &pgrp, &sid))
            continue;
        if (pgrp == fg && pid != t->pid)
            fail_msg("process %ld (child of %d) is in the terminal's foreground group", pid,
                     (int)ppid);
        if (ppid == t->pid) {
            children++;
            if (sid == t->pid)
                fail_msg("darknetp's child %ld is in the terminal's session", pid);
        }
    }
    closedir(d);
    assert_true(children >= 1); /* the core runs: the check saw it */
}

/* Trains CFG, types one Ctrl-C after a few iterations and checks the backup it saves. */
static void interrupt_once(const char *cfg, const char *backup)
{
    struct term_run t;
    start_train(&t, "1", "bars.data", cfg);
    read_until(&t, ITERATION_MARK, 3);
    assert_secure_world_apart(&t);
    type(&t, "\x03");
    int rc = finish(&t);
    if (rc != 130 || strstr(t.out, "TA died"))
        fail_msg("Ctrl-C: darknetp exited %d:\n%s", rc, tail(t.out));
    char saved[PATH_MAX];
    snprintf(saved, sizeof saved, "Interrupted: saved %s", backup);
    if (!strstr(t.out, saved))
        fail_msg("no \"%s\" in:\n%s", saved, tail(t.out));
    free(t.out);
    assert_pair_loads("bars.data", cfg, backup);
}

/* One Ctrl-C: darknetp finishes its step, saves the pair, exits 130; the TA lived on. */
static void test_ctrl_c_saves_backup(void **state)
{
    (void)state;
    write_long_cfg("long.cfg");
    interrupt_once("long.cfg", "backup/long.backup");
    assert_console_clean();
}

static long read_file(const char *name, unsigned char **data)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)n + 1);
    assert_non_null(*data);
    assert_int_equal(fread(*data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return n;
}

static bool same_file(const char *name, const unsigned char *data, long size)
{
    unsigned char *now = NULL;
    long n = read_file(name, &now);
    bool same = n == size && memcmp(now, data, (size_t)size) == 0;
    free(now);
    return same;
}

/*
 * Two Ctrl-C: the second quits at once (or, if it comes while a checkpoint is written, as soon
 * as that pair is complete) with 130. The previous checkpoint is never half replaced: the
 * pair on disk is the old one or a complete new one, and it loads.
 */
static void test_double_ctrl_c_keeps_checkpoint(void **state)
{
    (void)state;
    write_long_cfg("twice.cfg");
    interrupt_once("twice.cfg", "backup/twice.backup");
    unsigned char *weights = NULL, *blob = NULL;
    long nw = read_file("backup/twice.backup", &weights);
    long nb = read_file("backup/twice.backup.tz", &blob);

    struct term_run t;
    start_train(&t, "2", "bars.data", "twice.cfg");
    read_until(&t, ITERATION_MARK, 3);
    type(&t, "\x03");
    read_until(&t, "interrupt again", 1);
    type(&t, "\x03");
    int rc = finish(&t);
    if (rc != 130 || strstr(t.out, "TA died"))
        fail_msg("Ctrl-C twice: darknetp exited %d:\n%s", rc, tail(t.out));
    if (!strstr(t.out, "quitting without saving") && !strstr(t.out, "Interrupted: saved"))
        fail_msg("neither quit nor save reported:\n%s", tail(t.out));
    bool old_weights = same_file("backup/twice.backup", weights, nw);
    bool old_blob = same_file("backup/twice.backup.tz", blob, nb);
    if (old_weights != old_blob)
        fail_msg("backup/twice.backup and its .tz are from different saves:\n%s", tail(t.out));
    free(t.out);
    free(weights);
    free(blob);
    assert_no_temporaries();
    assert_pair_loads("bars.data", "twice.cfg", "backup/twice.backup");
    assert_console_clean();
}

/*
 * A list image deleted after training started: darknetp names it, saves the backup pair and
 * exits 1. The list is small and images are drawn with replacement, so the deleted one is
 * drawn again within a few iterations of a run that would otherwise not end.
 */
static void test_missing_image_saves_backup(void **state)
{
    (void)state;
    write_long_cfg("list.cfg");
    struct term_run t;
    start_train(&t, "1", "list.data", "list.cfg");
    read_until(&t, ITERATION_MARK, 1);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/imgs/00_top.png", dir);
    assert_int_equal(unlink(path), 0);
    int rc = finish(&t);
    if (rc != 1 || !strstr(t.out, "imgs/00_top.png") || !strstr(t.out, "saved backup/list.backup"))
        fail_msg("a deleted image: darknetp exited %d:\n%s", rc, tail(t.out));
    free(t.out);
    assert_no_temporaries();
    assert_pair_loads("list.data", "list.cfg", "backup/list.backup");
    assert_console_clean();
}

/* pid has ended: gone, or a zombie its new parent has not reaped (a container's init may not). */
static bool ended(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *end = strrchr(buf, ')');
    return !end || end[1] == '\0' || end[2] == 'Z' || end[2] == 'X';
}

/*
 * Out of the terminal's group, the secure world still ends with its client: darknetp killed
 * outright (no handler runs) takes the core and its TA instance with it.
 */
static void test_secure_world_ends_with_darknetp(void **state)
{
    (void)state;
    write_long_cfg("killed.cfg");
    struct term_run t;
    start_train(&t, "1", "bars.data", "killed.cfg");
    read_until(&t, ITERATION_MARK, 3);
    /* darknetp's descendants: the core (its child) and the TA instance (the core's child). */
    pid_t secure[8];
    size_t n = 0;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) && n < 8;) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        pid_t ppid, pgrp, sid;
        if (!*end && pid > 0 && proc_ids((pid_t)pid, &ppid, &pgrp, &sid) && ppid == t.pid)
            secure[n++] = (pid_t)pid;
    }
    closedir(d);
    assert_int_equal(n, 1); /* one context, one core */
    pid_t core = secure[0];
    d = opendir("/proc");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) && n < 8;) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        pid_t ppid, pgrp, sid;
        if (!*end && pid > 0 && proc_ids((pid_t)pid, &ppid, &pgrp, &sid) && ppid == core)
            secure[n++] = (pid_t)pid;
    }
    closedir(d);
    assert_true(n >= 2); /* and its TA instance */

    assert_int_equal(kill(t.pid, SIGKILL), 0);
    assert_int_equal(waitpid(t.pid, &t.status, 0), t.pid);
    for (size_t i = 0; i < n; i++) {
        long long end = now_ms() + HANG_LIMIT_MS;
        while (!ended(secure[i]) && now_ms() < end)
            read_some(&t);
        if (!ended(secure[i]))
            fail_msg("secure-world process %d outlived darknetp", (int)secure[i]);
    }
    close(t.master);
    free(t.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctrl_c_saves_backup),
        cmocka_unit_test(test_double_ctrl_c_keeps_checkpoint),
        cmocka_unit_test(test_missing_image_saves_backup),
        cmocka_unit_test(test_secure_world_ends_with_darknetp),
    };
    return cmocka_run_group_tests_name("cli signals", tests, setup, teardown);
}
