/*
 * storage_file.c - the files behind the simulated libutee's persistent objects
 * (storage.c has the GP functions): each object a file in the normal world's
 * file system, encrypted and authenticated so that the normal world can neither
 * read nor change it.
 *
 * Where: <tsim_storage_dir()>/<TA UUID>/<64 hex digits of SHA-256(object id)>.
 * The file name hides the id; the folder is only a convenience, the isolation
 * between TAs comes from the key: each TA's files are sealed under its own key.
 *
 * File format, version 1 (integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic "TSSO"
 *   4       4     format version, 1
 *   8       12    nonce, fresh random bytes for every write
 *   20      n     ciphertext: AES-256-GCM of the record below
 *   20+n    16    GCM tag
 *
 *   key = HKDF-SHA256 subkey of the hardware unique key for "storage" and the
 *         TA's UUID (huk.c), 32 bytes
 *   AAD = bytes 0..19 of the file || TA UUID (16 bytes, RFC 4122 order)
 *         || object id length (u32) || object id
 *
 *   record (plaintext):
 *     u32 id length, id bytes (again, for a future enumerator)
 *     u32 objectType, u32 objectSize, u32 maxObjectSize, u32 objectUsage
 *     u32 attribute count, then per attribute:
 *       u32 attributeID; value attribute: u32 a, u32 b;
 *       reference attribute: u32 length, bytes
 *     u64 data size, data bytes (exactly to the end of the record)
 *
 * Any change to a file (a bit, its length, its name: another object's file put
 * in its place, its folder: another TA's file) fails the tag or the record
 * checks, and TEE_OpenPersistentObject returns TEE_ERROR_CORRUPT_OBJECT,
 * OP-TEE's code; so does a file sealed under another device key. Unlike
 * OP-TEE, a corrupt file is left in place: when the cause is outside the file
 * (a replaced device key), nothing is lost. Rolling a file back to an older
 * valid version of the same object is not detected (OP-TEE's REE FS has the
 * same limit; only RPMB protects against it).
 *
 * Writes are atomic: a new file is written beside the old one (O_EXCL, mode
 * 0600), synced, and renamed over it (link() instead when it must not replace
 * an existing object); then the folder is synced.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <tee_api_defines_extensions.h>

#include "tsim_crypto.h"
#include "tsim_ta.h"

#define MAGIC "TSSO"
#define VERSION 1u
#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_LEN (4 + 4 + NONCE_LEN)
#define KEY_LEN 32
#define CHUNK 16384
/* Longest storage folder path accepted. */
#define PATH_LEN 1024
/* Record bytes before any id, attribute or data byte. */
#define RECORD_MIN (4 + 4 * 4 + 4 + 8)
/* Largest file accepted: the largest data stream plus room for metadata. */
#define FILE_MAX ((uint64_t)TEE_DATA_MAX_POSITION + 65536)

/* ------------------------------------------------------------------------ */
/* Small helpers                                                              */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static TEE_Result errno_result(int err)
{
    return err == ENOSPC || err == EDQUOT ? TEE_ERROR_STORAGE_NO_SPACE
                                          : TEE_ERROR_STORAGE_NOT_AVAILABLE;
}

void tsim_storage_uuid_str(const TEE_UUID *uuid, char out[37])
{
    const uint8_t *c = uuid->clockSeqAndNode;

    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", (unsigned)uuid->timeLow,
             (unsigned)uuid->timeMid, (unsigned)uuid->timeHiAndVersion, c[0], c[1], c[2], c[3],
             c[4], c[5], c[6], c[7]);
}

int tsim_storage_mkdirs(const char *path)
{
    size_t len = strlen(path);
    char *buf = len ? tsim_sys_malloc(len + 1) : NULL;
    int rc = 0;
    int err = 0;

    if (!buf) {
        errno = len ? ENOMEM : ENOENT;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            rc = -1;
        buf[i] = path[i];
    }
    err = errno;
    tsim_sys_free(buf);
    errno = err;
    return rc;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads exactly n bytes; false on error or early end of file (errno 0). */
static bool read_all(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = 0;
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* The TA's folder, the file of an object and a temporary name beside it.
 * Allocated (tsim_sys_malloc), not on the TA's small stack. */
struct paths {
    char dir[PATH_LEN];
    char file[PATH_LEN + 80];
    char tmp[PATH_LEN + 120];
};

static TEE_Result make_paths(const uint8_t *id, size_t id_len, struct paths **out)
{
    const char *base = tsim_storage_dir();
    struct paths *p = NULL;
    char uuid[37];
    uint8_t digest[32];
    unsigned int dlen = 0;
    char hex[65];
    uint8_t rnd[8];
    int n = 0;

    *out = NULL;
    if (!base)
        return TEE_ERROR_STORAGE_NOT_AVAILABLE;
    if (EVP_Digest(id, id_len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
        return TEE_ERROR_GENERIC;
    p = tsim_sys_malloc(sizeof(*p));
    if (!p)
        return TEE_ERROR_OUT_OF_MEMORY;
    tsim_storage_uuid_str(tsim_ta_uuid(), uuid);
    n = snprintf(p->dir, sizeof(p->dir), "%s/%s", base, uuid);
    if (n < 0 || (size_t)n >= sizeof(p->dir)) {
        tsim_sys_free(p);
        return TEE_ERROR_STORAGE_NOT_AVAILABLE;
    }
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    snprintf(p->file, sizeof(p->file), "%s/%s", p->dir, hex);
    TEE_GenerateRandom(rnd, sizeof(rnd));
    snprintf(p->tmp, sizeof(p->tmp), "%s.tmp%02x%02x%02x%02x%02x%02x%02x%02x", p->file, rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    *out = p;
    return TEE_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Sealing                                                                    */

/* Starts AES-256-GCM for a file with header hdr holding object id. */
static TEE_Result seal_start(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t hdr[HDR_LEN],
                             const uint8_t *id, size_t id_len)
{
    uint8_t key[KEY_LEN];
    uint8_t aad[HDR_LEN + 16 + 4];
    const TEE_UUID *uuid = tsim_ta_uuid();
    int o = 0;
    TEE_Result res = tsim_huk_subkey(TSIM_HUK_STORAGE, uuid, NULL, 0, key, sizeof(key));

    if (res != TEE_SUCCESS)
        return res;
    memcpy(aad, hdr, HDR_LEN);
    tsim_huk_uuid_bytes(uuid, aad + HDR_LEN);
    put_u32(aad + HDR_LEN + 16, (uint32_t)id_len);
    res = TEE_ERROR_GENERIC;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
        EVP_CipherInit_ex(ctx, NULL, NULL, key, hdr + 8, enc) == 1 &&
        EVP_CipherUpdate(ctx, NULL, &o, aad, sizeof(aad)) == 1 &&
        (id_len == 0 || EVP_CipherUpdate(ctx, NULL, &o, id, (int)id_len) == 1))
        res = TEE_SUCCESS;
    tsim_crypto_wipe(key, sizeof(key));
    return res;
}

/* The record's metadata part (everything before the data bytes). */
static uint8_t *build_meta(const struct tsim_key *key, const uint8_t *id, size_t id_len,
                           size_t data_len, size_t *meta_len)
{
    size_t n = 4 + id_len + 4 * 4 + 4 + 8;
    uint8_t *m = NULL;
    uint8_t *p = NULL;
    uint32_t count = 0;

    for (uint32_t i = 0; i < key->nattrs; i++) {
        if (!key->attrs[i].set)
            continue;
        count++;
        n += (key->attrs[i].id & TEE_ATTR_FLAG_VALUE) ? 12 : 8 + key->attrs[i].len;
    }
    m = tsim_sys_malloc(n);
    if (!m)
        return NULL;
    p = m;
    put_u32(p, (uint32_t)id_len);
    if (id_len)
        memcpy(p + 4, id, id_len);
    p += 4 + id_len;
    put_u32(p, key->type);
    put_u32(p + 4, key->size);
    put_u32(p + 8, key->max_size);
    put_u32(p + 12, key->usage);
    put_u32(p + 16, count);
    p += 20;
    for (uint32_t i = 0; i < key->nattrs; i++) {
        const struct tsim_attr *a = &key->attrs[i];

        if (!a->set)
            continue;
        put_u32(p, a->id);
        if (a->id & TEE_ATTR_FLAG_VALUE) {
            put_u32(p + 4, a->a);
            put_u32(p + 8, a->b);
            p += 12;
        } else {
            put_u32(p + 4, (uint32_t)a->len);
            if (a->len)
                memcpy(p + 8, a->buf, a->len);
            p += 8 + a->len;
        }
    }
    put_u64(p, data_len);
    *meta_len = n;
    return m;
}

/* Encrypts in with ctx and appends the result to fd. */
static bool seal_write(int fd, EVP_CIPHER_CTX *ctx, uint8_t *scratch, const uint8_t *in, size_t len)
{
    while (len) {
        int n = len > CHUNK ? CHUNK : (int)len;
        int o = 0;

        if (EVP_CipherUpdate(ctx, scratch, &o, in, n) != 1 || !write_all(fd, scratch, (size_t)o))
            return false;
        in += n;
        len -= (size_t)n;
    }
    return true;
}

TEE_Result tsim_sfile_write(const struct tsim_pobj *po, const uint8_t *id, size_t id_len,
                            bool replace)
{
    struct paths *p = NULL;
    const char *tmp = NULL;
    uint8_t hdr[HDR_LEN];
    uint8_t tag[TAG_LEN];
    uint8_t *meta = NULL;
    uint8_t *scratch = NULL;
    size_t meta_len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    int fd = -1;
    int o = 0;
    int err = 0;
    TEE_Result res = make_paths(id, id_len, &p);

    if (res != TEE_SUCCESS)
        return res;
    if (tsim_storage_mkdirs(p->dir) != 0) {
        res = errno_result(errno);
        goto out;
    }
    memcpy(hdr, MAGIC, 4);
    put_u32(hdr + 4, VERSION);
    TEE_GenerateRandom(hdr + 8, NONCE_LEN);

    res = TEE_ERROR_OUT_OF_MEMORY;
    meta = build_meta(&po->key, id, id_len, po->data_len, &meta_len);
    scratch = tsim_sys_malloc(CHUNK + 32);
    ctx = EVP_CIPHER_CTX_new();
    if (!meta || !scratch || !ctx)
        goto out;
    res = seal_start(ctx, true, hdr, id, id_len);
    if (res != TEE_SUCCESS)
        goto out;

    fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        res = errno_result(errno);
        goto out;
    }
    tmp = p->tmp;
    errno = 0;
    if (!write_all(fd, hdr, sizeof(hdr)) || !seal_write(fd, ctx, scratch, meta, meta_len) ||
        !seal_write(fd, ctx, scratch, po->data, po->data_len) ||
        EVP_CipherFinal_ex(ctx, scratch, &o) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1 ||
        !write_all(fd, tag, sizeof(tag)) || fsync(fd) != 0) {
        err = errno;
        res = err ? errno_result(err) : TEE_ERROR_GENERIC;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        res = errno_result(errno);
        goto out;
    }
    fd = -1;
    if (replace) {
        if (rename(tmp, p->file) != 0) {
            res = errno_result(errno);
            goto out;
        }
    } else {
        /* link() never replaces: an existing object stays and we learn of it. */
        if (link(tmp, p->file) != 0) {
            res = errno == EEXIST ? TEE_ERROR_ACCESS_CONFLICT : errno_result(errno);
            goto out;
        }
        (void)unlink(tmp);
    }
    tmp = NULL;
    sync_dir(p->dir);
    res = TEE_SUCCESS;

out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        (void)unlink(tmp);
    tsim_sys_free(p);
    EVP_CIPHER_CTX_free(ctx);
    if (meta) {
        tsim_crypto_wipe(meta, meta_len);
        tsim_sys_free(meta);
    }
    if (scratch) {
        tsim_crypto_wipe(scratch, CHUNK + 32);
        tsim_sys_free(scratch);
    }
    return res;
}

/* Bounds-checked reader of a decrypted record. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static bool take(struct cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n)
        return false;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool take_u32(struct cursor *c, uint32_t *v)
{
    const uint8_t *p = NULL;

    if (!take(c, 4, &p))
        return false;
    *v = (uint32_t)get_le(p, 4);
    return true;
}

/* Parses a verified record into po (key and data); the record buffer rec
 * (rec_len bytes, tsim_sys_malloc'd) becomes po's data buffer. */
static TEE_Result parse_record(struct tsim_pobj *po, uint8_t *rec, size_t rec_len,
                               const uint8_t *id, size_t id_len)
{
    struct cursor c = {rec, rec_len};
    const uint8_t *p = NULL;
    uint32_t v[6] = {0};
    uint64_t data_len = 0;
    TEE_Result res = TEE_ERROR_CORRUPT_OBJECT;

    if (!take_u32(&c, &v[0]) || v[0] != id_len || !take(&c, id_len, &p) ||
        (id_len && memcmp(p, id, id_len) != 0))
        return TEE_ERROR_CORRUPT_OBJECT;
    for (int i = 1; i < 6; i++)
        if (!take_u32(&c, &v[i]))
            return TEE_ERROR_CORRUPT_OBJECT;
    /* v: 1 type, 2 size, 3 max size, 4 usage, 5 attribute count */
    res = tsim_key_init(&po->key, v[1], v[3]);
    if (res == TEE_ERROR_OUT_OF_MEMORY)
        return res;
    if (res != TEE_SUCCESS || v[5] > TSIM_MAX_ATTRS)
        return TEE_ERROR_CORRUPT_OBJECT;
    for (uint32_t n = 0; n < v[5]; n++) {
        uint32_t aid = 0;
        uint32_t a = 0;
        uint32_t b = 0;

        if (!take_u32(&c, &aid) || !take_u32(&c, &a))
            return TEE_ERROR_CORRUPT_OBJECT;
        if (aid & TEE_ATTR_FLAG_VALUE) {
            if (!take_u32(&c, &b) || tsim_key_set_value(&po->key, aid, a, b) != TEE_SUCCESS)
                return TEE_ERROR_CORRUPT_OBJECT;
        } else if (!take(&c, a, &p) || tsim_key_set_ref(&po->key, aid, p, a) != TEE_SUCCESS) {
            return TEE_ERROR_CORRUPT_OBJECT;
        }
    }
    if (tsim_key_finish_load(&po->key) != TEE_SUCCESS || po->key.size != v[2] || !take(&c, 8, &p))
        return TEE_ERROR_CORRUPT_OBJECT;
    po->key.usage = v[4];
    data_len = get_le(p, 8);
    if (data_len != c.left || data_len > TEE_DATA_MAX_POSITION)
        return TEE_ERROR_CORRUPT_OBJECT;
    memmove(rec, c.p, c.left);
    tsim_crypto_wipe(rec + c.left, rec_len - c.left);
    po->data = rec;
    po->data_len = (size_t)data_len;
    po->data_cap = rec_len;
    return TEE_SUCCESS;
}

TEE_Result tsim_sfile_read(struct tsim_pobj *po, const uint8_t *id, size_t id_len)
{
    struct paths *p = NULL;
    struct stat st;
    uint8_t hdr[HDR_LEN];
    uint8_t tag[TAG_LEN];
    uint8_t *rec = NULL;
    uint8_t *scratch = NULL;
    size_t rec_len = 0;
    size_t done = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    int fd = -1;
    int o = 0;
    TEE_Result res = make_paths(id, id_len, &p);

    if (res != TEE_SUCCESS)
        return res;
    fd = open(p->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    tsim_sys_free(p);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return TEE_ERROR_ITEM_NOT_FOUND;
        return errno == ELOOP ? TEE_ERROR_CORRUPT_OBJECT : TEE_ERROR_STORAGE_NOT_AVAILABLE;
    }
    res = TEE_ERROR_CORRUPT_OBJECT;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < HDR_LEN + RECORD_MIN + id_len + TAG_LEN ||
        (uint64_t)st.st_size > FILE_MAX)
        goto out;
    rec_len = (size_t)st.st_size - HDR_LEN - TAG_LEN;
    if (!read_all(fd, hdr, sizeof(hdr))) {
        res = errno ? TEE_ERROR_STORAGE_NOT_AVAILABLE : TEE_ERROR_CORRUPT_OBJECT;
        goto out;
    }
    if (memcmp(hdr, MAGIC, 4) != 0 || get_le(hdr + 4, 4) != VERSION)
        goto out;

    res = TEE_ERROR_OUT_OF_MEMORY;
    rec = tsim_sys_malloc(rec_len);
    scratch = tsim_sys_malloc(CHUNK);
    ctx = EVP_CIPHER_CTX_new();
    if (!rec || !scratch || !ctx)
        goto out;
    res = seal_start(ctx, false, hdr, id, id_len);
    if (res != TEE_SUCCESS)
        goto out;
    /* Plaintext goes to the private record buffer, used only once the tag matched. */
    while (done < rec_len) {
        size_t n = rec_len - done > CHUNK ? CHUNK : rec_len - done;

        if (!read_all(fd, scratch, n)) {
            res = errno ? TEE_ERROR_STORAGE_NOT_AVAILABLE : TEE_ERROR_CORRUPT_OBJECT;
            goto out;
        }
        if (EVP_CipherUpdate(ctx, rec + done, &o, scratch, (int)n) != 1 || (size_t)o != n) {
            res = TEE_ERROR_GENERIC;
            goto out;
        }
        done += n;
    }
    if (!read_all(fd, tag, sizeof(tag))) {
        res = errno ? TEE_ERROR_STORAGE_NOT_AVAILABLE : TEE_ERROR_CORRUPT_OBJECT;
        goto out;
    }
    res = TEE_ERROR_CORRUPT_OBJECT;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        EVP_CipherFinal_ex(ctx, scratch, &o) != 1)
        goto out;
    res = parse_record(po, rec, rec_len, id, id_len);
    if (res == TEE_SUCCESS)
        rec = NULL; /* now po->data */

out:
    if (res == TEE_ERROR_CORRUPT_OBJECT)
        EMSG("Object corrupt");
    if (fd >= 0)
        close(fd);
    EVP_CIPHER_CTX_free(ctx);
    if (rec) {
        tsim_crypto_wipe(rec, rec_len);
        tsim_sys_free(rec);
    }
    if (scratch) {
        tsim_crypto_wipe(scratch, CHUNK);
        tsim_sys_free(scratch);
    }
    if (res != TEE_SUCCESS)
        tsim_key_release(&po->key);
    return res;
}

TEE_Result tsim_sfile_remove(const uint8_t *id, size_t id_len)
{
    struct paths *p = NULL;
    TEE_Result res = make_paths(id, id_len, &p);

    if (res != TEE_SUCCESS)
        return res;
    if (unlink(p->file) != 0 && errno != ENOENT)
        res = TEE_ERROR_STORAGE_NOT_AVAILABLE;
    else
        sync_dir(p->dir);
    tsim_sys_free(p);
    return res;
}
