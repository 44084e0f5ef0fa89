/*
 * soak_tee.c - `make soak`: 10,000 training iterations of a LeNet-style network
 * (the fixture's mnist_lenet.cfg at batch 4) with layers 4..10 in the TA, through
 * the same host code as darknetp (host/pnet.c). Asserts that every call
 * succeeds (the session stays alive: the original DarkneTZ TA died with
 * TEEC_ERROR_TARGET_DEAD after about 4,500 iterations), that the TA logs one loss
 * per iteration, and that the TA process's resident memory after the first
 * iterations stays constant. The TA exposes no heap figure of its own, so resident
 * memory stands in: its heap is a fixed first-fit arena of TA_DATA_SIZE, and a leak
 * would touch new pages (or run the heap out, failing a call).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "darknet/parse_network.h"
#include "host/pnet.h"

#define ITERATIONS 10000
#define TA_NAME "5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta"

static const char cfg_text[] =
    "[net]\nbatch=4\nsubdivisions=1\nheight=28\nwidth=28\nchannels=3\nmomentum=0.9\n"
    "decay=0.00005\nlearning_rate=0.01\npolicy=poly\npower=4\nmax_batches=10000\n"
    "[convolutional]\nfilters=6\nsize=5\nstride=1\npad=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nfilters=6\nsize=5\nstride=1\npad=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[connected]\noutput=120\nactivation=relu\n"
    "[dropout]\nprobability=.8\n"
    "[connected]\noutput=84\nactivation=relu\n"
    "[dropout]\nprobability=.8\n"
    "[connected]\noutput=10\nactivation=linear\n"
    "[softmax]\ngroups=1\n"
    "[cost]\ntype=sse\n";

static long field(const char *path, const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = atol(line + strlen(key));
    fclose(f);
    return v;
}

/* The TA instance of this process's TEE: a grandchild running TA_NAME. */
static long ta_pid(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long found = -1;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], cmd[512] = "";
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[n] = '\0';
        if (!strstr(cmd, TA_NAME))
            continue;
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        long core = field(path, "PPid:");
        snprintf(path, sizeof path, "/proc/%ld/status", core);
        if (field(path, "PPid:") == (long)getpid())
            found = atol(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

static long ta_rss_kb(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    return field(path, "VmRSS:");
}

static int count_losses(const char *log)
{
    char line[512];
    int n = 0;
    FILE *f = fopen(log, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "loss = ") != NULL;
    fclose(f);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/dz-soak-XXXXXX", cfg[64], log[64], store[64], cmd[96];
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct dz_pnet pn;
    int rc = 1;
    if (!mkdtemp(dir))
        return 1;
    snprintf(cfg, sizeof cfg, "%s/lenet.cfg", dir);
    snprintf(log, sizeof log, "%s/console.log", dir);
    snprintf(store, sizeof store, "%s/storage", dir);
    setenv("DZ_TEE_LOG", log, 1);
    setenv("DZ_TEE_STORAGE", store, 1);
    FILE *f = fopen(cfg, "w");
    if (!f || fputs(cfg_text, f) < 0 || fclose(f) != 0 || dk_parse_network(cfg, &m, &err) != 0)
        return 1;
    struct dz_pnet_opts o = {.first = 4, .last = 10, .training = true, .seed = 1, .top_k = 1};
    if (dz_pnet_open(&pn, &m, &o, &err) != 0) {
        fprintf(stderr, "soak: %s\n", err.msg);
        return 1;
    }
    const size_t batch = (size_t)pn.batch, inputs = dz_pnet_inputs(&pn);
    float *x = malloc(batch * inputs * sizeof(float));
    float *y = calloc(batch * 10, sizeof(float));
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 42);
    long pid = ta_pid(), rss_start = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("soak: %d iterations, batch %zu, layers 4..10 in the TA (pid %ld)\n", ITERATIONS, batch,
           pid);
    for (int it = 1; it <= ITERATIONS; it++) {
        float loss = 0;
        bool known = true;
        for (size_t i = 0; i < batch * inputs; i++)
            x[i] = dnn_rng_uniform(&rng, 0, 1);
        memset(y, 0, batch * 10 * sizeof(float));
        for (size_t b = 0; b < batch; b++)
            y[b * 10 + dnn_rng_u32(&rng) % 10] = 1;
        if (dz_pnet_train_batch(&pn, x, y, &loss, &known, &err) != 0) {
            fprintf(stderr, "soak: iteration %d: %s\n", it, err.msg);
            goto out;
        }
        long rss = ta_rss_kb(pid);
        if (it == 10)
            rss_start = rss;
        if (it % 1000 == 0) {
            printf("soak: iteration %d: TA resident %ld kB\n", it, rss);
            fflush(stdout);
        }
        if (it > 10 && rss != rss_start) {
            fprintf(stderr,
                    "soak: iteration %d: TA resident memory %ld kB, %ld kB at iteration 10\n", it,
                    rss, rss_start);
            goto out;
        }
    }
    int losses = count_losses(log);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (losses != ITERATIONS) {
        fprintf(stderr, "soak: the TA logged %d losses for %d iterations\n", losses, ITERATIONS);
        goto out;
    }
    printf("soak: passed: %d iterations in %.1f s, TA resident memory constant at %ld kB\n",
           ITERATIONS, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
           rss_start);
    rc = 0;
out:
    free(x);
    free(y);
    dz_pnet_close(&pn);
    dk_model_free(&m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "soak: could not remove %s\n", dir);
    return rc;
}
