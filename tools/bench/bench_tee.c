/*
 * bench_tee.c - the TEE's overhead, as bench_dnn's `tee` and `tee-pair` measure it
 * (bench_tee.h).
 *
 * The simulated TEE does its work in other processes (its core and the TA instances, which
 * sleep in poll/recvmsg between calls), so a step's CPU time is this process's plus theirs.
 *
 * Why pairs: the machine is shared, and what others run changes the CPU time a step costs
 * too (caches and the memory bus shared with them, cores taken mid-step), by 20-40% between
 * runs minutes apart, so a ratio of two runs cannot show 1%. That load moves over tens of
 * milliseconds to minutes; two adjacent steps, milliseconds apart, see nearly the same, and
 * the ratio of their times cancels it. The order alternates (A B, B A, ...) so that a load
 * rising or falling through a pair falls on both sides alike; the median of the pair ratios
 * drops the pairs a burst hit on one side only. Both networks stay open in one process: the
 * one without TEE never connects to the TEE, so nothing they share changes between the
 * sides. Both start from the same seed and train on the same batch, so they also compute the
 * same numbers step by step. With a base partition (bench_tee.h) A has a TEE segment of its
 * own, in its own TA instance, and the ratio is B's segment over A's.
 *
 * Why a settling step: a timed step right after the other side's finds the caches full of
 * that side's memory, and the two sides do not suffer it alike. B's TEE process, its segment
 * and the kernel's state for the call come back from memory after A's whole network has run,
 * a cost a training run never pays, since it runs B after B. With A and B simply alternated,
 * LeNet's layers 4..10 at batch 100 read 1.004-1.019 (median 1.014 over six runs of 300
 * pairs); with one untimed step of the same side before each timed one, 1.000-1.015 (median
 * 1.005), while the control without TEE on either side read 0.999 and 0.997 (medians of six
 * runs each; `BENCH_SETTLE=0` or `1`, `bench_dnn tee-pair ... 100 300 3 4 10 train` and
 * `... -1 -1 train`, the four kinds of run alternated). So each timed step follows a step of
 * its own side: the steady state of a run that trains with the partition, against one that
 * trains without it.
 */
#define _GNU_SOURCE /* sched_getcpu, CPU_SET */
#include "tools/bench/bench_tee.h"

#include <dirent.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "darknet/error.h"
#include "host/pnet.h"
#include "tools/bench/bench_util.h"

/* Parent of process `pid` from /proc/PID/stat, or -1. */
static long parent_of(long pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    const bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so start after
     * the last ')'. */
    const char *rp = ok ? strrchr(line, ')') : NULL;
    long ppid = -1;
    if (!rp || sscanf(rp + 1, " %*c %ld", &ppid) != 1)
        return -1;
    return ppid;
}

#define MAX_TEE_PROCS 16

/* CPU clocks of this process's children and grandchildren: with the simulated TEE, its core
 * (forked by TEEC_InitializeContext) and the TA instances the core forks. Returns how many. */
static int tee_clocks(clockid_t *ids, int max)
{
    long kids[MAX_TEE_PROCS];
    int n_kids = 0, n = 0;
    const long self = (long)getpid();
    for (int pass = 0; pass < 2; pass++) {
        DIR *d = opendir("/proc");
        const struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            const long pid = atol(e->d_name), ppid = parent_of(pid);
            bool take = pass == 0 ? ppid == self : false;
            for (int i = 0; pass == 1 && i < n_kids; i++)
                take = take || ppid == kids[i];
            if (!take || n == max || (pass == 0 && n_kids == MAX_TEE_PROCS))
                continue;
            if (pass == 0)
                kids[n_kids++] = pid;
            if (clock_getcpuclockid((pid_t)pid, &ids[n]) == 0)
                n++;
        }
        if (d)
            closedir(d);
    }
    return n;
}

/* The clocks a step is timed by: the monotonic clock, and the CPU of this process (all its
 * threads) plus the TEE's processes. */
struct tee_watch {
    clockid_t ids[MAX_TEE_PROCS];
    int n_ids;
};

/* CPU seconds of the TEE's processes alone. */
static double tee_watch_tee_cpu(const struct tee_watch *w)
{
    struct timespec ts;
    double s = 0;
    for (int i = 0; i < w->n_ids; i++)
        if (clock_gettime(w->ids[i], &ts) == 0)
            s += (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    return s;
}

/* Wall and CPU seconds now; *tee (when not NULL): the TEE processes' part of the CPU. */
static struct bench_clock2 tee_watch_now(const struct tee_watch *w, double *tee)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    const double tee_s = tee_watch_tee_cpu(w);
    if (tee)
        *tee = tee_s;
    return (struct bench_clock2){bench_wall_now(),
                                 (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + tee_s};
}

/* One step through host/pnet.c, the path `darknetp classifier` takes. */
static int pnet_step(struct dz_pnet *p, const struct bench_batch *d, bool train,
                     struct dk_error *err)
{
    if (train) {
        float loss = 0;
        bool known = false;
        return dz_pnet_train_batch(p, d->x, d->y, &loss, &known, err);
    }
    struct dz_pnet_output out = {0};
    return dz_pnet_predict(p, d->x, &out, err);
}

static int pnet_open(struct dz_pnet *p, const struct dk_model *m, const struct bench_tee_case *c,
                     int first, int last, struct dk_error *err)
{
    struct dz_pnet_opts o = {.first = first,
                             .last = last,
                             .batch = c->batch,
                             .training = c->train,
                             .seed = BENCH_SEED,
                             .policy = DZ_OUTPUT_TOP1,
                             .top_k = 1,
                             .parallel = c->par};
    /* A segment too large to be resident streams its weights, which the TA does not draw
     * itself: they come from the seed here, sealed, as darknetp does without a weights file. */
    if (dz_pnet_open(p, m, &o, err) != 0)
        return -1;
    return dz_pnet_seed_weights(p, err);
}

/*
 * One thread on each side: binds this process to the CPU it is on, as `taskset -c` would,
 * before the TEE's processes start (they inherit it). A call then never moves either side, and
 * the simulator's per-call affinity changes (tee/common/tsim_cpu.h), which a world switch on a
 * device does not have, stay out of the TEE's figure. With normal-world threads, or
 * BENCH_PIN=0, the process is left as it is. Returns the CPU, or -1 when left free.
 */
static int pin_to_this_cpu(const struct bench_tee_case *c)
{
    const char *env = getenv("BENCH_PIN");
    if (c->par || (env && strcmp(env, "0") == 0))
        return -1;
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return -1;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0 ? cpu : -1;
}

/* "pinned to CPU k" or "unpinned", for a BENCH line's label. */
static const char *pin_label(int cpu, char *buf, size_t size)
{
    if (cpu < 0)
        return "unpinned";
    snprintf(buf, size, "pinned to CPU %d", cpu);
    return buf;
}

int bench_tee_run(const struct bench_tee_case *c, long iters, long warmup)
{
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct bench_batch d = {0};
    struct dz_pnet p;
    struct tee_watch w = {.n_ids = 0};
    int rc = 1;
    memset(&p, 0, sizeof p);
    const int cpu = pin_to_this_cpu(c);
    if (bench_load_model(c->cfg, c->batch, &m) != 0)
        goto out;
    if (pnet_open(&p, &m, c, c->first, c->last, &err) != 0)
        goto fail;
    if (bench_batch_make(&d, (size_t)c->batch, dz_pnet_inputs(&p), p.shapes->truths) != 0)
        goto out;
    for (long i = 0; i < warmup; i++)
        if (pnet_step(&p, &d, c->train, &err) != 0)
            goto fail;
    w.n_ids = tee_clocks(w.ids, MAX_TEE_PROCS);
    const struct bench_clock2 t0 = tee_watch_now(&w, NULL);
    for (long i = 0; i < iters; i++)
        if (pnet_step(&p, &d, c->train, &err) != 0)
            goto fail;
    const struct bench_clock2 t1 = tee_watch_now(&w, NULL);
    char label[300];
    char where[32];
    snprintf(label, sizeof label, "%s, %d TEE processes, %s", c->cfg, w.n_ids,
             pin_label(cpu, where, sizeof where));
    bench_emit(c->train ? "train" : "infer", t0, t1, iters, c->batch, "images", label);
    rc = 0;
    goto out;
fail:
    /* The orchestrator shows this line: a partition that does not fit says so here. */
    printf("FAIL %s\n", err.msg);
out:
    bench_batch_free(&d);
    dz_pnet_close(&p); /* also after a failed open, as pnet.h asks */
    dk_model_free(&m);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n-1] (n >= 1), interpolated between neighbours as Python's
 * statistics.quantiles(method="inclusive"), so that both report the same figure. */
static double quantile(const double *v, size_t n, double q)
{
    const double pos = q * (double)(n - 1);
    const size_t i = (size_t)pos;
    return i + 1 < n ? v[i] + (pos - (double)i) * (v[i + 1] - v[i]) : v[n - 1];
}

/* Sorts v and prints `RATIO name median min max q1 q3 n`. */
static void print_ratio(const char *name, double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    printf("RATIO %s %.6f %.6f %.6f %.6f %.6f %zu\n", name, quantile(v, n, 0.5), v[0], v[n - 1],
           quantile(v, n, 0.25), quantile(v, n, 0.75), n);
}

/* Median of v[0..n-1] (sorts v). */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return quantile(v, n, 0.5);
}

/* The two sides of a pair: A without TEE, B with the partition. */
struct pair_side {
    struct dz_pnet p;
    double *wall, *cpu; /* (pairs) seconds per step */
    double *tee_cpu;    /* (pairs) the TEE processes' share of cpu */
};

/* Untimed steps of the same side before each timed one: BENCH_SETTLE, 0..4, default 1 (the
 * file's comment says why); anything else keeps the default. */
static int settle_steps(void)
{
    const char *env = getenv("BENCH_SETTLE");
    if (!env || !*env)
        return 1;
    char *end = NULL;
    const long v = strtol(env, &end, 10);
    return *end || v < 0 || v > 4 ? 1 : (int)v;
}

/* One timed step of side s into slot i, after `settle` untimed ones of the same side. */
static int timed_step(struct pair_side *s, const struct tee_watch *w, const struct bench_batch *d,
                      bool train, int settle, size_t i, struct dk_error *err)
{
    for (int k = 0; k < settle; k++)
        if (pnet_step(&s->p, d, train, err) != 0)
            return -1;
    double tee0 = 0, tee1 = 0;
    const struct bench_clock2 t0 = tee_watch_now(w, &tee0);
    if (pnet_step(&s->p, d, train, err) != 0)
        return -1;
    const struct bench_clock2 t1 = tee_watch_now(w, &tee1);
    s->wall[i] = t1.wall - t0.wall;
    s->cpu[i] = t1.cpu - t0.cpu;
    s->tee_cpu[i] = tee1 - tee0;
    return 0;
}

/* Prints the PAIR lines and each side's medians; leaves a's and b's arrays sorted. */
static void pair_report(const struct bench_tee_case *c, struct pair_side *a, struct pair_side *b,
                        size_t n, int n_ids, int cpu, int settle, double *scratch)
{
    for (size_t i = 0; i < n; i++)
        printf("PAIR %zu %s %.9g %.9g %.9g %.9g %.9g\n", i, i % 2 ? "BA" : "AB", a->wall[i],
               a->cpu[i], b->wall[i], b->cpu[i], b->tee_cpu[i]);
    for (int clock = 0; clock < 2; clock++) {
        for (size_t i = 0; i < n; i++)
            scratch[i] = clock ? b->wall[i] / a->wall[i] : b->cpu[i] / a->cpu[i];
        print_ratio(clock ? "wall" : "cpu", scratch, n);
    }
    char label[340];
    char where[32];
    char base[48] = "";
    if (c->base_first >= 0)
        snprintf(base, sizeof base, " against %d..%d", c->base_first, c->base_last);
    snprintf(label, sizeof label,
             "%s, layers %d..%d%s, %d TEE processes, median of %zu steps, each timed after %d "
             "untimed of its side, %s",
             c->cfg, c->first, c->last, base, n_ids, n, settle,
             pin_label(cpu, where, sizeof where));
    const struct bench_clock2 zero = {0, 0};
    bench_emit("pair/none", zero, (struct bench_clock2){median(a->wall, n), median(a->cpu, n)}, 1,
               c->batch, "images", label);
    bench_emit("pair/tee", zero, (struct bench_clock2){median(b->wall, n), median(b->cpu, n)}, 1,
               c->batch, "images", label);
}

int bench_tee_pair(const struct bench_tee_case *c, long pairs, long warmup)
{
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct bench_batch d = {0};
    struct pair_side s[2]; /* A, B */
    struct tee_watch w = {.n_ids = 0};
    const size_t n = (size_t)pairs;
    double *buf = NULL; /* (7, pairs): a wall, cpu, tee cpu, b wall, cpu, tee cpu, scratch */
    int rc = 1;
    memset(s, 0, sizeof s);
    const int cpu = pin_to_this_cpu(c);
    if (bench_load_model(c->cfg, c->batch, &m) != 0)
        goto out;
    if (pnet_open(&s[0].p, &m, c, c->base_first, c->base_last, &err) != 0 ||
        pnet_open(&s[1].p, &m, c, c->first, c->last, &err) != 0)
        goto fail;
    buf = malloc(7 * n * sizeof *buf);
    if (!buf ||
        bench_batch_make(&d, (size_t)c->batch, dz_pnet_inputs(&s[0].p), s[0].p.shapes->truths) != 0)
        goto out;
    for (int k = 0; k < 2; k++) {
        s[k].wall = buf + (size_t)(3 * k) * n;
        s[k].cpu = buf + (size_t)(3 * k + 1) * n;
        s[k].tee_cpu = buf + (size_t)(3 * k + 2) * n;
    }
    for (long i = 0; i < warmup; i++)
        for (int k = 0; k < 2; k++)
            if (pnet_step(&s[(i + k) % 2].p, &d, c->train, &err) != 0)
                goto fail;
    /* After the opens: the TEE's core and instances exist now, and only B's use them (and A's,
     * with a base partition: each instance sleeps while the other side runs). */
    w.n_ids = tee_clocks(w.ids, MAX_TEE_PROCS);
    const int settle = settle_steps();
    for (size_t i = 0; i < n; i++) {
        const int first_side = (int)(i % 2); /* A B, then B A */
        if (timed_step(&s[first_side], &w, &d, c->train, settle, i, &err) != 0 ||
            timed_step(&s[1 - first_side], &w, &d, c->train, settle, i, &err) != 0)
            goto fail;
    }
    pair_report(c, &s[0], &s[1], n, w.n_ids, cpu, settle, buf + 6 * n);
    fflush(stdout);
    rc = 0;
    goto out;
fail:
    printf("FAIL %s\n", err.msg);
out:
    free(buf);
    bench_batch_free(&d);
    dz_pnet_close(&s[1].p);
    dz_pnet_close(&s[0].p);
    dk_model_free(&m);
    return rc;
}
