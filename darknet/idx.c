/*
 * idx.c - reads IDX files through zlib (gzip or plain, transparently).
 */
#include "darknet/idx.h"
#include "darknet/user_file.h"

#include <errno.h>
#include <limits.h>
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
        /* zlib reports a cut-off gzip stream as an error at its end. */
        int code = Z_OK;
        const char *msg = gzerror(f, &code);
        dk_fail(err,
                "IDX file \"%s\" is truncated: the header announces %zu data bytes, the file "
                "holds %zu%s%s",
                path, size, got, code != Z_OK && msg && *msg ? "; zlib: " : "",
                code != Z_OK && msg && *msg ? msg : "");
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

int dk_idx_read(const char *path, struct dk_idx *out, struct dk_error *err)
{
    *out = (struct dk_idx){0};
    int rc = -1;
    uint8_t *data = NULL;
    uint64_t file_size = 0;
    gzFile f = NULL;
    if (gz_open_user(path, &f, &file_size, err) != 0)
        return -1;

    uint8_t head[4] = {0};
    long long n = gz_read_full(f, head, sizeof head);
    if (n < 0) {
        dk_fail(err, "cannot read IDX file \"%s\": %s", path, gz_reason(f));
        goto out;
    }
    if (n < 4) {
        dk_fail(err, "IDX file \"%s\" is truncated: %lld bytes, shorter than the 4-byte magic",
                path, n);
        goto out;
    }
    if (head[0] != 0 || head[1] != 0 || !known_type(head[2]) || head[3] == 0) {
        dk_fail(err,
                "\"%s\" is not an IDX file: bad magic %02x %02x %02x %02x (expected 00 00, a "
                "type byte, a dimension count)",
                path, head[0], head[1], head[2], head[3]);
        goto out;
    }
    if (head[2] != DK_IDX_TYPE_U8) {
        dk_fail(err,
                "IDX file \"%s\": element type 0x%02x (%s) is not supported; only 0x08 "
                "(unsigned byte) is",
                path, head[2], type_name(head[2]));
        goto out;
    }
    int ndims = head[3];
    if (ndims > DK_IDX_MAX_DIMS) {
        dk_fail(err, "IDX file \"%s\" has %d dimensions; at most %d are supported", path, ndims,
                DK_IDX_MAX_DIMS);
        goto out;
    }
    uint8_t dimbytes[4 * DK_IDX_MAX_DIMS];
    size_t want = (size_t)ndims * 4;
    n = gz_read_full(f, dimbytes, want);
    if (n < 0) {
        dk_fail(err, "cannot read IDX file \"%s\": %s", path, gz_reason(f));
        goto out;
    }
    if ((size_t)n < want) {
        dk_fail(err,
                "IDX file \"%s\" is truncated inside its header: %d dimensions need %zu "
                "bytes, the file holds %lld",
                path, ndims, want, n);
        goto out;
    }
    size_t size = 1;
    for (int i = 0; i < ndims; ++i) {
        out->dims[i] = be32(dimbytes + 4 * i);
        if (out->dims[i] == 0) {
            dk_fail(err, "IDX file \"%s\": dimension %d is 0", path, i);
            goto out;
        }
        if (size > SIZE_MAX / out->dims[i]) {
            dk_fail(err, "IDX file \"%s\": the dimensions overflow the addressable size", path);
            goto out;
        }
        size *= out->dims[i];
    }
    /* The header's claim against the limit and the file's own size, before any buffer:
     * a plain file holds exactly its elements, a gzip file at most GZIP_MAX_RATIO times
     * its size. */
    const uint64_t header = 4 + want;
    if (gzdirect(f) && (uint64_t)size + header > file_size) {
        dk_fail(err,
                "IDX file \"%s\" is truncated: the header announces %zu data bytes, the file "
                "holds %llu",
                path, size, (unsigned long long)(file_size - header));
        goto out;
    }
    if (!gzdirect(f) && (uint64_t)size > file_size * GZIP_MAX_RATIO) {
        dk_fail(err,
                "IDX file \"%s\": its header announces %zu data bytes, more than its %llu "
                "compressed bytes can hold",
                path, size, (unsigned long long)file_size);
        goto out;
    }
    if ((uint64_t)size > DK_IDX_MAX_DATA_BYTES) {
        dk_fail(err,
                "IDX file \"%s\": its header announces %zu data bytes, over the limit of "
                "%llu bytes (%llu MiB)",
                path, size, (unsigned long long)DK_IDX_MAX_DATA_BYTES,
                (unsigned long long)(DK_IDX_MAX_DATA_BYTES / DK_MIB));
        goto out;
    }
    if (read_payload(f, path, size, &data, err) != 0)
        goto out;
    uint8_t extra = 0;
    n = gz_read_full(f, &extra, 1);
    if (n < 0) {
        dk_fail(err, "cannot read IDX file \"%s\": %s", path, gz_reason(f));
        goto out;
    }
    if (n > 0) {
        dk_fail(err,
                "IDX file \"%s\" has trailing data after the %zu data bytes its header "
                "announces",
                path, size);
        goto out;
    }
    out->ndims = ndims;
    out->data = data;
    out->size = size;
    data = NULL;
    rc = 0;
out:
    free(data);
    gzclose(f);
    if (rc != 0)
        *out = (struct dk_idx){0};
    return rc;
}
