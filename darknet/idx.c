/*
 * idx.c - reads IDX files through zlib (gzip or plain, transparently): whole (dk_idx_read)
 * or element by element from a file (dk_idx_open), so that a 60,000-image training set
 * costs the process the images of a batch rather than all of them.
 */
#include "darknet/idx.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

/* gzread takes an unsigned count; read in pieces no larger than this. */
#define IDX_CHUNK (1u << 26)

/* The buffer grows as data arrives, so a header claiming gigabytes in a short
 * file costs no more memory than the file holds. */
#define IDX_FIRST_ALLOC ((size_t)1 << 24)

static const char *gz_reason(gzFile f)
{
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    if (code == Z_ERRNO)
        return strerror(errno);
    return (msg && *msg) ? msg : "read error";
}

/* Reads up to n bytes; returns the count read, or -1 on a read error. */
static long long gz_read_full(gzFile f, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        unsigned chunk = want > IDX_CHUNK ? IDX_CHUNK : (unsigned)want;
        int r = gzread(f, buf + got, chunk);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

/* deflate's best case is about 1032:1: a gzip file of N bytes cannot hold more. */
#define GZIP_MAX_RATIO 1032u

/* Opens a user's IDX file (regular, at most DK_IDX_MAX_FILE_BYTES) through zlib; *f is
 * NULL on error. */
static int gz_open_user(const char *path, gzFile *f, uint64_t *size, struct dk_error *err)
{
    int fd = -1;
    *f = NULL;
    if (dk_user_file_open(path, "an IDX file", DK_IDX_MAX_FILE_BYTES, &fd, size, err) != 0)
        return -1;
    errno = 0;
    *f = gzdopen(fd, "rb");
    if (!*f) {
        int e = errno;
        close(fd);
        return dk_fail(err, "%s: cannot open: %s", path, e ? strerror(e) : "out of memory");
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool known_type(uint8_t t)
{
    return t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E;
}

static const char *type_name(uint8_t t)
{
    switch (t) {
    case 0x08:
        return "unsigned byte";
    case 0x09:
        return "signed byte";
    case 0x0B:
        return "short";
    case 0x0C:
        return "int";
    case 0x0D:
        return "float";
    case 0x0E:
        return "double";
    default:
        return "unknown";
    }
}

int dk_idx_probe(const char *path, bool *is_idx, struct dk_error *err)
{
    *is_idx = false;
    gzFile f = NULL;
    if (gz_open_user(path, &f, NULL, err) != 0)
        return -1;
    uint8_t head[4] = {0};
    long long n = gz_read_full(f, head, sizeof head);
    if (n < 0) {
        dk_fail(err, "cannot read \"%s\": %s", path, gz_reason(f));
        gzclose(f);
        return -1;
    }
    gzclose(f);
    *is_idx = n == 4 && head[0] == 0 && head[1] == 0 && known_type(head[2]) && head[3] > 0;
    return 0;
}

void dk_idx_free(struct dk_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    *idx = (struct dk_idx){0};
}

/* The payload ended after `got` of `size` bytes. */
static int fail_truncated(gzFile f, const char *path, size_t size, size_t got, struct dk_error *err)
{
    /* zlib reports a cut-off gzip stream as an error at its end. */
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    return dk_fail(err,
                   "IDX file \"%s\" is truncated: the header announces %zu data bytes, the file "
                   "holds %zu%s%s",
                   path, size, got, code != Z_OK && msg && *msg ? "; zlib: " : "",
                   code != Z_OK && msg && *msg ? msg : "");
}

/* Reads exactly `size` payload bytes into a buffer grown as data arrives. */
static int read_payload(gzFile f, const char *path, size_t size, uint8_t **out,
                        struct dk_error *err)
{
    size_t cap = size < IDX_FIRST_ALLOC ? size : IDX_FIRST_ALLOC;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return dk_fail(err, "IDX file \"%s\": out of memory (%zu bytes)", path, cap);
    size_t got = 0;
    for (;;) {
        long long r = gz_read_full(f, buf + got, cap - got);
        if (r < 0) {
            dk_fail(err, "IDX file \"%s\": read error after %zu of %zu data bytes: %s", path, got,
                    size, gz_reason(f));
            free(buf);
            return -1;
        }
        got += (size_t)r;
        if (got < cap)
            break; /* end of file */
        if (cap == size)
            break;
        size_t next = cap > size / 2 ? size : cap * 2;
        uint8_t *grown = realloc(buf, next);
        if (!grown) {
            free(buf);
            return dk_fail(err, "IDX file \"%s\": out of memory (%zu bytes)", path, next);
        }
        buf = grown;
        cap = next;
    }
    if (got < size) {
        fail_truncated(f, path, size, got, err);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* What an IDX header announces. */
struct idx_header {
    int ndims;
    uint32_t dims[DK_IDX_MAX_DIMS];
    size_t size;           /* element bytes: the product of dims */
    uint64_t header_bytes; /* the header's own bytes: where the elements start */
};

/*
 * Reads and checks the header of the IDX file f (of file_size bytes on disk) up to its first
 * element: the magic, the type, the dimensions, and the size they announce against the limit
 * and what the file can hold (a plain file exactly its elements, a gzip file at most
 * GZIP_MAX_RATIO times its size), all before any buffer is allocated.
 */
static int read_header(gzFile f, const char *path, uint64_t file_size, struct idx_header *h,
                       struct dk_error *err)
{
    uint8_t head[4] = {0};
    long long n = gz_read_full(f, head, sizeof head);
    if (n < 0) {
        return dk_fail(err, "cannot read IDX file \"%s\": %s", path, gz_reason(f));
    }
    if (n < 4) {
        return dk_fail(err,
                       "IDX file \"%s\" is truncated: %lld bytes, shorter than the 4-byte magic",
                       path, n);
    }
    if (head[0] != 0 || head[1] != 0 || !known_type(head[2]) || head[3] == 0) {
        return dk_fail(
            err,
            "\"%s\" is not an IDX file: bad magic %02x %02x %02x %02x (expected 00 00, a "
            "type byte, a dimension count)",
            path, head[0], head[1], head[2], head[3]);
    }
    if (head[2] != DK_IDX_TYPE_U8) {
        dk_fail(err,
                "IDX file \"%s\": element type 0x%02x (%s) is not supported; only 0x08 "
                "(unsigned byte) is",
                path, head[2], type_name(head[2]));
        return -1;
    }
    const int ndims = head[3];
    if (ndims > DK_IDX_MAX_DIMS) {
        dk_fail(err, "IDX file \"%s\" has %d dimensions; at most %d are supported", path, ndims,
                DK_IDX_MAX_DIMS);
        return -1;
    }
    uint8_t dimbytes[4 * DK_IDX_MAX_DIMS];
    size_t want = (size_t)ndims * 4;
    n = gz_read_full(f, dimbytes, want);
    if (n < 0) {
        return dk_fail(err, "cannot read IDX file \"%s\": %s", path, gz_reason(f));
    }
    if ((size_t)n < want) {
        return dk_fail(err,
                       "IDX file \"%s\" is truncated inside its header: %d dimensions need %zu "
                       "bytes, the file holds %lld",
                       path, ndims, want, n);
    }
    size_t size = 1;
    h->ndims = ndims;
    for (int i = 0; i < ndims; ++i) {
        h->dims[i] = be32(dimbytes + 4 * i);
        if (h->dims[i] == 0) {
            return dk_fail(err, "IDX file \"%s\": dimension %d is 0", path, i);
        }
        if (size > SIZE_MAX / h->dims[i]) {
            return dk_fail(err, "IDX file \"%s\": the dimensions overflow the addressable size",
                           path);
        }
        size *= h->dims[i];
    }
    /* The header's claim against the limit and the file's own size, before any buffer:
     * a plain file holds exactly its elements, a gzip file at most GZIP_MAX_RATIO times
     * its size. */
    const uint64_t header = 4 + want;
    h->header_bytes = header;
    if (gzdirect(f) && (uint64_t)size + header > file_size) {
        return dk_fail(
            err,
            "IDX file \"%s\" is truncated: the header announces %zu data bytes, the file "
            "holds %llu",
            path, size, (unsigned long long)(file_size - header));
    }
    if (!gzdirect(f) && (uint64_t)size > file_size * GZIP_MAX_RATIO) {
        return dk_fail(err,
                       "IDX file \"%s\": its header announces %zu data bytes, more than its %llu "
                       "compressed bytes can hold",
                       path, size, (unsigned long long)file_size);
    }
    if ((uint64_t)size > DK_IDX_MAX_DATA_BYTES) {
        return dk_fail(err,
                       "IDX file \"%s\": its header announces %zu data bytes, over the limit of "
                       "%llu bytes (%llu MiB)",
                       path, size, (unsigned long long)DK_IDX_MAX_DATA_BYTES,
                       (unsigned long long)(DK_IDX_MAX_DATA_BYTES / DK_MIB));
    }
    h->size = size;
    return 0;
}

/* The payload must be all there is: one more byte is trailing data. */
static int check_end(gzFile f, const char *path, size_t size, struct dk_error *err)
{
    uint8_t extra = 0;
    const long long n = gz_read_full(f, &extra, 1);
    if (n < 0)
        return dk_fail(err, "cannot read IDX file \"%s\": %s", path, gz_reason(f));
    if (n > 0)
        return dk_fail(err,
                       "IDX file \"%s\" has trailing data after the %zu data bytes its header "
                       "announces",
                       path, size);
    return 0;
}

int dk_idx_read(const char *path, struct dk_idx *out, struct dk_error *err)
{
    *out = (struct dk_idx){0};
    int rc = -1;
    uint8_t *data = NULL;
    uint64_t file_size = 0;
    gzFile f = NULL;
    struct idx_header h = {0};
    if (gz_open_user(path, &f, &file_size, err) != 0)
        return -1;
    if (read_header(f, path, file_size, &h, err) != 0)
        goto out;
    if (read_payload(f, path, h.size, &data, err) != 0)
        goto out;
    if (check_end(f, path, h.size, err) != 0)
        goto out;
    out->ndims = h.ndims;
    memcpy(out->dims, h.dims, sizeof out->dims);
    out->data = data;
    out->size = h.size;
    data = NULL;
    rc = 0;
out:
    free(data);
    gzclose(f);
    if (rc != 0)
        *out = (struct dk_idx){0};
    return rc;
}

/* ------------------------------------------------------------ on demand */

/* Inflated bytes copied to the temporary file at a time. */
#define IDX_COPY_CHUNK ((size_t)1 << 20)

/* An unlinked temporary file in $TMPDIR (or /tmp), closed on exec: it disappears with its
 * descriptor, whatever ends the process. */
static int open_temp(const char *path, int *out, struct dk_error *err)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char name[4096];
    const int len = snprintf(name, sizeof name, "%s/dz-idx-XXXXXX", dir);
    if (len < 0 || (size_t)len >= sizeof name)
        return dk_fail(err, "IDX file \"%s\": the temporary folder's name is too long", path);
    const int fd = mkstemp(name);
    if (fd < 0)
        return dk_fail(err, "IDX file \"%s\": cannot create a temporary file in %s: %s", path, dir,
                       strerror(errno));
    unlink(name);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    *out = fd;
    return 0;
}

/* Writes all n bytes at the file's position; -1 with errno on error. */
static int write_all(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        const ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Inflates exactly `size` element bytes of f into an unlinked temporary file (*out), through
 * a buffer of IDX_COPY_CHUNK bytes, with dk_idx_read's checks and messages. */
static int inflate_to_temp(gzFile f, const char *path, size_t size, int *out, struct dk_error *err)
{
    int fd = -1, rc = -1;
    uint8_t *buf = malloc(IDX_COPY_CHUNK);
    if (!buf)
        return dk_fail(err, "IDX file \"%s\": out of memory (%zu bytes)", path, IDX_COPY_CHUNK);
    if (open_temp(path, &fd, err) != 0)
        goto out;
    size_t got = 0;
    while (got < size) {
        const size_t want = size - got < IDX_COPY_CHUNK ? size - got : IDX_COPY_CHUNK;
        const long long r = gz_read_full(f, buf, want);
        if (r < 0) {
            dk_fail(err, "IDX file \"%s\": read error after %zu of %zu data bytes: %s", path, got,
                    size, gz_reason(f));
            goto out;
        }
        if (r > 0 && write_all(fd, buf, (size_t)r) != 0) {
            dk_fail(err, "IDX file \"%s\": cannot write its inflated copy: %s", path,
                    strerror(errno ? errno : EIO));
            goto out;
        }
        got += (size_t)r;
        if ((size_t)r < want)
            break; /* end of file */
    }
    if (got < size) {
        fail_truncated(f, path, size, got, err);
        goto out;
    }
    if (check_end(f, path, size, err) != 0)
        goto out;
    *out = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

void dk_idx_file_close(struct dk_idx_file *idx)
{
    if (!idx)
        return;
    if (idx->fd >= 0 && idx->path)
        close(idx->fd);
    free(idx->path);
    *idx = (struct dk_idx_file){.fd = -1};
}

int dk_idx_open(const char *path, struct dk_idx_file *out, struct dk_error *err)
{
    *out = (struct dk_idx_file){.fd = -1};
    int fd = -1, gz_fd = -1, rc = -1;
    uint64_t file_size = 0;
    gzFile f = NULL;
    struct idx_header h = {0};
    if (dk_user_file_open(path, "an IDX file", DK_IDX_MAX_FILE_BYTES, &fd, &file_size, err) != 0)
        return -1;
    /* zlib reads the header through a descriptor of its own: gzclose closes it, fd stays. */
    gz_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (gz_fd < 0 || !(f = gzdopen(gz_fd, "rb"))) {
        dk_fail(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        if (gz_fd >= 0)
            close(gz_fd);
        goto out;
    }
    if (read_header(f, path, file_size, &h, err) != 0)
        goto out;
    if (gzdirect(f)) {
        /* A plain file is read where it lies, from just after its header. */
        if (h.header_bytes + h.size < file_size) {
            dk_fail(err,
                    "IDX file \"%s\" has trailing data after the %zu data bytes its header "
                    "announces",
                    path, h.size);
            goto out;
        }
        out->offset = h.header_bytes;
    } else {
        int copy = -1;
        if (inflate_to_temp(f, path, h.size, &copy, err) != 0)
            goto out;
        close(fd);
        fd = copy;
        out->offset = 0;
    }
    out->path = strdup(path);
    if (!out->path) {
        dk_fail(err, "out of memory opening \"%s\"", path);
        goto out;
    }
    out->ndims = h.ndims;
    memcpy(out->dims, h.dims, sizeof out->dims);
    out->size = h.size;
    out->fd = fd;
    fd = -1;
    rc = 0;
out:
    if (f)
        gzclose(f);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        dk_idx_file_close(out);
    return rc;
}

int dk_idx_file_read(const struct dk_idx_file *idx, size_t first, size_t n, uint8_t *dst,
                     struct dk_error *err)
{
    if (first > idx->size || n > idx->size - first)
        return dk_fail(err, "IDX file \"%s\": bytes %zu..%zu requested, it has %zu",
                       idx->path ? idx->path : "", first, first + n, idx->size);
    size_t got = 0;
    while (got < n) {
        const ssize_t r =
            pread(idx->fd, dst + got, n - got, (off_t)(idx->offset + (uint64_t)(first + got)));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return dk_fail(err, "IDX file \"%s\": cannot read: %s", idx->path, strerror(errno));
        if (r == 0)
            return dk_fail(err, "IDX file \"%s\" was cut while open: byte %zu is gone", idx->path,
                           first + got);
        got += (size_t)r;
    }
    return 0;
}
