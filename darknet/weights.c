/*
 * weights.c - darknet's binary .weights files (see weights.h).
 *
 * Every number goes through explicit little-endian byte coding, so the files
 * are the same on any host.
 */
#include "darknet/weights.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Floats moved per fread/fwrite. */
#define CHUNK_FLOATS 4096

/* ------------------------------------------------------------ byte coding */

static uint32_t get_le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_le64(const unsigned char *b)
{
    return (uint64_t)get_le32(b) | (uint64_t)get_le32(b + 4) << 32;
}

static void put_le32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
}

static void put_le64(unsigned char *b, uint64_t v)
{
    put_le32(b, (uint32_t)v);
    put_le32(b + 4, (uint32_t)(v >> 32));
}

static float get_f32(const unsigned char *b)
{
    uint32_t u = get_le32(b);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void put_f32(unsigned char *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    put_le32(b, u);
}

/* ------------------------------------------------------------------ sizes */

bool dk_weights_param_in_file(const struct dnn_layer *l, size_t j)
{
    if (l->spec.dontload)
        return false;
    /* darknet's convolutional and connected loaders skip the triple; its batchnorm
     * layer's loader does not read dontloadscales */
    if (l->spec.dontloadscales &&
        (l->kind == DNN_LAYER_CONVOLUTIONAL || l->kind == DNN_LAYER_CONNECTED)) {
        const char *name = l->params[j].name;
        return strcmp(name, "scales") != 0 && strcmp(name, "rolling_mean") != 0 &&
               strcmp(name, "rolling_variance") != 0;
    }
    return true;
}

uint64_t dk_weights_file_floats(const struct dnn_layer *l)
{
    uint64_t sum = 0;
    for (size_t j = 0; j < l->n_params; j++)
        sum += dk_weights_param_in_file(l, j) ? l->params[j].count : 0;
    return sum;
}

/* Bytes of one layer's parameters in a file read with its cfg; false on overflow. */
static bool layer_bytes(const struct dnn_layer *l, uint64_t *out)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < l->n_params; i++) {
        uint64_t count = dk_weights_param_in_file(l, i) ? l->params[i].count : 0;
        if (count > (UINT64_MAX - sum) / 4)
            return false;
        sum += count * 4;
    }
    *out = sum;
    return true;
}

/* ------------------------------------------------------------------- load */

static int read_exact(FILE *f, const char *path, void *buf, size_t n, struct dk_error *err)
{
    if (fread(buf, 1, n, f) == n)
        return 0;
    if (ferror(f))
        return dk_fail(err, "%s: read error: %s", path, strerror(errno));
    return dk_fail(err, "%s: unexpected end of file (it changed while being read?)", path);
}

static int read_header(FILE *f, const char *path, uint64_t size, struct dk_weights_header *h,
                       struct dk_error *err)
{
    unsigned char b[8];
    if (size < 12)
        return dk_fail(err,
                       "%s: truncated header: the file has %llu bytes, a .weights header "
                       "has at least 16",
                       path, (unsigned long long)size);
    for (int i = 0; i < 3; i++) {
        if (read_exact(f, path, b, 4, err) != 0)
            return -1;
        int32_t v = (int32_t)get_le32(b);
        if (i == 0)
            h->major = v;
        else if (i == 1)
            h->minor = v;
        else
            h->revision = v;
    }
    /* darknet's load_weights_upto: the 64-bit `seen` came with format 0.2. */
    long long version = (long long)h->major * 10 + h->minor;
    bool seen64 = version >= 2 && h->major < 1000 && h->minor < 1000;
    h->transpose = h->major > 1000 || h->minor > 1000;
    h->bytes = seen64 ? 20 : 16;
    if (size < h->bytes)
        return dk_fail(err,
                       "%s: truncated header: the file has %llu bytes, a format %d.%d header "
                       "has %zu",
                       path, (unsigned long long)size, (int)h->major, (int)h->minor, h->bytes);
    if (read_exact(f, path, b, h->bytes - 12, err) != 0)
        return -1;
    h->seen = seen64 ? get_le64(b) : (uint64_t)(int64_t)(int32_t)get_le32(b);
    return 0;
}

/* Reads one parameter tensor; transposed (inputs, outputs) connected weights are
 * stored back as (outputs, inputs). */
static int read_param(FILE *f, const char *path, const struct dnn_layer *l,
                      const struct dnn_param *p, bool transpose, unsigned char *buf,
                      struct dk_error *err)
{
    bool tr = transpose && l->kind == DNN_LAYER_CONNECTED && strcmp(p->name, "weights") == 0;
    size_t rows = l->inputs; /* file layout when transposed: (inputs, outputs) */
    size_t cols = l->outputs;
    if (tr && (cols == 0 || rows > SIZE_MAX / cols || rows * cols != p->count))
        return dk_fail(err, "%s: layer %d: connected weights hold %zu values, not %zu x %zu", path,
                       l->index, p->count, rows, cols);
    for (size_t done = 0; done < p->count;) {
        size_t n = p->count - done < CHUNK_FLOATS ? p->count - done : CHUNK_FLOATS;
        if (read_exact(f, path, buf, n * 4, err) != 0)
            return -1;
        for (size_t j = 0; j < n; j++) {
            size_t at = done + j;
            if (tr)
                at = (at % cols) * rows + at / cols;
            p->value[at] = get_f32(buf + 4 * j);
        }
        done += n;
    }
    return 0;
}

/*
 * The file's size against the layer boundaries of net, before anything is read into it:
 * the weights must end exactly after some layer k, last <= k < n. *skip receives the
 * payload offset of layer first. Only parameter counts are used, so net may be a shape
 * network with no tensor allocated.
 */
static int check_sizes(const struct dnn_network *net, const char *path,
                       const struct dk_weights_header *h, uint64_t size, size_t first, size_t last,
                       uint64_t *skip, struct dk_error *err)
{
    uint64_t payload = size - h->bytes;
    uint64_t cum = 0;
    uint64_t need = 0;
    bool fits = false;
    size_t inside = net->n; /* layer whose weights the file ends in, if it ends in one */
    uint64_t inside_start = 0;
    size_t ends_after = net->n; /* last layer whose weights end where the file ends */
    *skip = 0;
    for (size_t i = 0; i < net->n; i++) {
        uint64_t b = 0;
        if (!layer_bytes(&net->layers[i], &b) || b > UINT64_MAX - cum)
            return dk_fail(err, "%s: the network's weights are too large to count", path);
        if (i == first)
            *skip = cum;
        if (payload > cum && payload < cum + b) {
            inside = i;
            inside_start = cum;
        }
        cum += b;
        if (payload == cum)
            ends_after = i;
        if (i == last)
            need = cum;
        if (i >= last && payload == cum)
            fits = true;
    }
    /* Where the file ends, for the messages below. */
    char where[128] = "";
    if (inside < net->n)
        snprintf(where, sizeof where, "; it ends %llu bytes into the weights of layer %zu",
                 (unsigned long long)(payload - inside_start), inside);
    else if (ends_after < net->n)
        snprintf(where, sizeof where, "; it holds the weights of layers 0..%zu", ends_after);
    if (payload < need)
        return dk_fail(err,
                       "%s: truncated: layers 0..%zu need %llu bytes (a %zu-byte header and %llu "
                       "bytes of weights), the file has %llu bytes%s",
                       path, last, (unsigned long long)(need + h->bytes), h->bytes,
                       (unsigned long long)need, (unsigned long long)size, where);
    if (fits)
        return 0;
    if (payload > cum)
        return dk_fail(err,
                       "%s: has %llu trailing bytes after the weights of all %zu layers (%llu "
                       "bytes expected, the file has %llu); wrong cfg?",
                       path, (unsigned long long)(payload - cum), net->n,
                       (unsigned long long)(cum + h->bytes), (unsigned long long)size);
    return dk_fail(err,
                   "%s: the file has %llu bytes, not a whole number of layers (the network "
                   "needs %llu)%s; wrong cfg?",
                   path, (unsigned long long)size, (unsigned long long)(cum + h->bytes), where);
}

int dk_weights_load(struct dnn_network *net, const char *path, size_t first, size_t last,
                    struct dk_error *err)
{
    int rc = -1;
    unsigned char *buf = NULL;
    struct dk_weights_header h = {0};

    if (!net || first > last || last >= net->n)
        return dk_fail(err, "%s: cannot load layers %zu..%zu of a network of %zu layers", path,
                       first, last, net ? net->n : 0);
    FILE *f = NULL;
    uint64_t size = 0;
    if (dk_user_file_fopen(path, "a .weights file", DK_WEIGHTS_MAX_BYTES, &f, &size, err) != 0)
        return -1;
    uint64_t skip = 0;
    if (read_header(f, path, size, &h, err) != 0 ||
        check_sizes(net, path, &h, size, first, last, &skip, err) != 0)
        goto out;

    if (skip > (uint64_t)INT64_MAX - h.bytes || fseeko(f, (off_t)(h.bytes + skip), SEEK_SET) != 0) {
        dk_fail(err, "%s: cannot seek to layer %zu: %s", path, first, strerror(errno));
        goto out;
    }
    buf = malloc(CHUNK_FLOATS * 4);
    if (!buf) {
        dk_fail(err, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = first; i <= last; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            if (dk_weights_param_in_file(l, j) &&
                read_param(f, path, l, &l->params[j], h.transpose, buf, err) != 0)
                goto out;
        }
    }
    net->seen = h.seen;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* Opens path for reading and reads its header; *f is NULL on error. */
static int open_with_header(const char *path, FILE **f, struct dk_weights_header *h,
                            struct dk_error *err)
{
    uint64_t size = 0;
    if (dk_user_file_fopen(path, "a .weights file", DK_WEIGHTS_MAX_BYTES, f, &size, err) != 0)
        return -1;
    if (read_header(*f, path, size, h, err) == 0) {
        h->file_size = size;
        return 0;
    }
    fclose(*f);
    *f = NULL;
    return -1;
}

int dk_weights_read_header(const char *path, struct dk_weights_header *h, struct dk_error *err)
{
    FILE *f = NULL;
    if (open_with_header(path, &f, h, err) != 0)
        return -1;
    fclose(f);
    return 0;
}

int dk_weights_check(const struct dnn_network *shapes, const char *path, struct dk_error *err)
{
    struct dk_weights_header h = {0};
    uint64_t skip = 0;
    if (!shapes || shapes->n == 0)
        return dk_fail(err, "%s: no network to check the weights against", path);
    if (dk_weights_read_header(path, &h, err) != 0)
        return -1;
    return check_sizes(shapes, path, &h, h.file_size, 0, shapes->n - 1, &skip, err);
}

int dk_weights_check_prefix(const struct dnn_network *shapes, const char *path,
                            const struct dk_weights_header *h, size_t *held, struct dk_error *err)
{
    uint64_t skip = 0;
    *held = 0;
    if (!shapes || shapes->n == 0)
        return dk_fail(err, "%s: no network to check the weights against", path);
    const uint64_t payload = h->file_size - h->bytes;
    uint64_t cum = 0;
    bool boundary = payload == 0;
    for (size_t i = 0; i < shapes->n && cum <= payload; i++) {
        uint64_t b = 0;
        if (!layer_bytes(&shapes->layers[i], &b) || b > UINT64_MAX - cum)
            return dk_fail(err, "%s: the network's weights are too large to count", path);
        cum += b;
        /* The largest such i: parameter-free layers after the boundary count as held. */
        if (cum == payload) {
            *held = i + 1;
            boundary = true;
        }
    }
    if (boundary)
        return 0;
    /* Not at a layer boundary, or past the last layer: the whole network's message. */
    return check_sizes(shapes, path, h, h->file_size, 0, shapes->n - 1, &skip, err);
}

/* Seeks to `offset` bytes after the header. */
static int seek_payload(FILE *f, const char *path, const struct dk_weights_header *h,
                        uint64_t offset, struct dk_error *err)
{
    if (offset > (uint64_t)INT64_MAX - h->bytes ||
        fseeko(f, (off_t)(h->bytes + offset), SEEK_SET) != 0)
        return dk_fail(err, "%s: cannot seek to byte %llu of the weights: %s", path,
                       (unsigned long long)offset, strerror(errno));
    return 0;
}

/* Opens path at byte `offset` of its payload, with a chunk buffer for reading;
 * NULL (nothing left open) on failure. */
static FILE *open_payload(const char *path, const struct dk_weights_header *h, uint64_t offset,
                          unsigned char **buf, struct dk_error *err)
{
    FILE *f = NULL;
    if (dk_user_file_fopen(path, "a .weights file", DK_WEIGHTS_MAX_BYTES, &f, NULL, err) != 0)
        return NULL;
    if (seek_payload(f, path, h, offset, err) != 0) {
        fclose(f);
        return NULL;
    }
    *buf = malloc(CHUNK_FLOATS * 4);
    if (!*buf) {
        dk_fail(err, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    return f;
}

int dk_weights_load_at(struct dnn_network *net, const char *path, const struct dk_weights_header *h,
                       uint64_t offset, struct dk_error *err)
{
    return dk_weights_load_first(net, path, h, offset, net->n, err);
}

int dk_weights_load_first(struct dnn_network *net, const char *path,
                          const struct dk_weights_header *h, uint64_t offset, size_t n_layers,
                          struct dk_error *err)
{
    int rc = -1;
    unsigned char *buf = NULL;
    if (n_layers > net->n)
        return dk_fail(err, "%s: cannot load %zu layers into a network of %zu", path, n_layers,
                       net->n);
    if (n_layers == 0)
        return 0;
    FILE *f = open_payload(path, h, offset, &buf, err);
    if (!f)
        return -1;
    for (size_t i = 0; i < n_layers; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            if (dk_weights_param_in_file(l, j) &&
                read_param(f, path, l, &l->params[j], h->transpose, buf, err) != 0)
                goto out;
        }
    }
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

int dk_weights_read_floats(const char *path, const struct dk_weights_header *h, uint64_t offset,
                           float *out, size_t count, struct dk_error *err)
{
    int rc = -1;
    unsigned char *buf = NULL;
    FILE *f = open_payload(path, h, offset, &buf, err);
    if (!f)
        return -1;
    for (size_t done = 0; done < count;) {
        size_t n = count - done < CHUNK_FLOATS ? count - done : CHUNK_FLOATS;
        if (read_exact(f, path, buf, n * 4, err) != 0)
            goto out;
        for (size_t j = 0; j < n; j++)
            out[done + j] = get_f32(buf + 4 * j);
        done += n;
    }
    rc = 0;
out:
    if (buf) {
        memset(buf, 0, CHUNK_FLOATS * 4); /* may hold protected values */
        free(buf);
    }
    fclose(f);
    return rc;
}

int dk_weights_load_all(struct dnn_network *net, const char *path, struct dk_error *err)
{
    if (!net || net->n == 0)
        return dk_fail(err, "%s: cannot load weights into an empty network", path);
    return dk_weights_load(net, path, 0, net->n - 1, err);
}

/* ------------------------------------------------------------------- save */

static int write_all(FILE *f, const char *tmp, const unsigned char *b, size_t n,
                     struct dk_error *err)
{
    if (fwrite(b, 1, n, f) != n)
        return dk_fail(err, "%s: write error: %s", tmp, strerror(errno));
    return 0;
}

static int write_net(FILE *f, const char *tmp, const struct dnn_network *net, unsigned char *buf,
                     struct dk_error *err)
{
    for (size_t i = 0; i < net->n; i++) {
        const struct dnn_layer *l = &net->layers[i];
        for (size_t j = 0; j < l->n_params; j++) {
            const struct dnn_param *p = &l->params[j];
            for (size_t done = 0; done < p->count;) {
                size_t n = p->count - done < CHUNK_FLOATS ? p->count - done : CHUNK_FLOATS;
                for (size_t k = 0; k < n; k++)
                    put_f32(buf + 4 * k, p->value[done + k]);
                if (write_all(f, tmp, buf, n * 4, err) != 0)
                    return -1;
                done += n;
            }
        }
    }
    return 0;
}

static int write_zeros(FILE *f, const char *tmp, uint64_t count, unsigned char *buf,
                       struct dk_error *err)
{
    memset(buf, 0, CHUNK_FLOATS * 4);
    for (uint64_t done = 0; done < count;) {
        size_t n = count - done < CHUNK_FLOATS ? (size_t)(count - done) : CHUNK_FLOATS;
        if (write_all(f, tmp, buf, n * 4, err) != 0)
            return -1;
        done += n;
    }
    return 0;
}

static int write_weights(FILE *f, const char *tmp, int32_t revision, uint64_t seen,
                         const struct dk_weights_part *parts, size_t n_parts, unsigned char *buf,
                         struct dk_error *err)
{
    put_le32(buf, 0); /* major */
    put_le32(buf + 4, 2);
    put_le32(buf + 8, (uint32_t)revision);
    put_le64(buf + 12, seen);
    if (write_all(f, tmp, buf, 20, err) != 0)
        return -1;
    for (size_t i = 0; i < n_parts; i++) {
        int rc = parts[i].net ? write_net(f, tmp, parts[i].net, buf, err)
                              : write_zeros(f, tmp, parts[i].zero_floats, buf, err);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Mode for the new file: that of the file it replaces, else 0666 less the umask
 * (which can only be read by setting it, so it is restored at once). */
static mode_t new_file_mode(const char *path)
{
    struct stat st = {0};
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return st.st_mode & 07777;
    mode_t mask = umask(022);
    umask(mask);
    return 0666 & ~mask;
}

/* Makes the rename durable; best effort, the data itself is already synced. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        if (fsync(fd) != 0) {
            /* Nothing to undo: the new file is complete and in place. */
        }
        close(fd);
    }
    free(dir);
}

int dk_weights_save(const struct dnn_network *net, const char *path, struct dk_error *err)
{
    if (!net)
        return dk_fail(err, "%s: no network to save", path);
    struct dk_weights_part part = {.net = net};
    return dk_weights_save_parts(path, 0, net->seen, &part, 1, err);
}

int dk_weights_save_parts(const char *path, int32_t revision, uint64_t seen,
                          const struct dk_weights_part *parts, size_t n_parts, struct dk_error *err)
{
    static const char suffix[] = ".tmp-XXXXXX";
    int rc = -1;
    int fd = -1;
    FILE *f = NULL;
    unsigned char *buf = NULL;
    size_t plen = strlen(path);

    if (!parts && n_parts)
        return dk_fail(err, "%s: nothing to save", path);
    char *tmp = malloc(plen + sizeof suffix);
    if (!tmp)
        return dk_fail(err, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    fd = mkstemp(tmp);
    if (fd < 0) {
        dk_fail(err, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    buf = malloc(CHUNK_FLOATS * 4);
    if (!buf) {
        dk_fail(err, "%s: out of memory", path);
        goto out;
    }
    if (fchmod(fd, new_file_mode(path)) != 0) {
        dk_fail(err, "%s: cannot set permissions: %s", tmp, strerror(errno));
        goto out;
    }
    f = fdopen(fd, "wb");
    if (!f) {
        dk_fail(err, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1; /* owned by f now */
    if (write_weights(f, tmp, revision, seen, parts, n_parts, buf, err) != 0)
        goto out;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        dk_fail(err, "%s: cannot flush to disk: %s", tmp, strerror(errno));
        goto out;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        dk_fail(err, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        dk_fail(err, "%s: cannot replace with %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    sync_parent_dir(path);
    rc = 0;
out:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(buf);
    free(tmp);
    return rc;
}
