/*
 * huk.c - the simulated device's hardware unique key (OP-TEE's HUK) and the
 * keys derived from it: PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY and the per-TA secure
 * storage key.
 *
 * The HUK is 32 random bytes in the file "huk" of tsim_storage_dir(), mode
 * 0600, made on first use. Creation is race-free between processes: the bytes
 * are written and synced to a private temporary file (O_EXCL) that is then
 * link()ed to "huk"; link() fails if another process got there first, and
 * then everyone reads the winner's file. A HUK file that is not a regular
 * file of exactly 32 bytes is refused, never replaced: a new HUK would make
 * every sealed object unreadable.
 *
 * Key hierarchy (all HKDF-SHA256, RFC 5869):
 *
 *   subkey(usage, uuid, extra, L) = HKDF(IKM  = HUK,
 *                                        salt = "DarkneTZ simulated TEE HUK v1",
 *                                        info = u32be usage || u32be L
 *                                               || uuid (16 bytes, RFC 4122)
 *                                               || extra,
 *                                        L bytes)
 *
 *   usage 1: TA unique key of PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY (extra = the TA's
 *            extra data, L = 16..32), as OP-TEE derives it from the HUK, the
 *            TA UUID and the extra data;
 *   usage 2: the TA's secure storage key (no extra data, L = 32).
 *
 * Different usages, TAs, extra data or lengths give independent keys; a TA
 * cannot ask the PTA for its storage key because the usage differs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "tsim_crypto.h"
#include "tsim_ta.h"

#define HUK_LEN 32
#define HUK_FILE "huk"
#define SALT "DarkneTZ simulated TEE HUK v1"
/* As OP-TEE's system PTA. */
#define EXTRA_MAX 1024
#define PATH_LEN 1100
#define TA_KEY_MIN 16
#define TA_KEY_MAX 32

void tsim_huk_uuid_bytes(const TEE_UUID *uuid, uint8_t out[16])
{
    out[0] = (uint8_t)(uuid->timeLow >> 24);
    out[1] = (uint8_t)(uuid->timeLow >> 16);
    out[2] = (uint8_t)(uuid->timeLow >> 8);
    out[3] = (uint8_t)uuid->timeLow;
    out[4] = (uint8_t)(uuid->timeMid >> 8);
    out[5] = (uint8_t)uuid->timeMid;
    out[6] = (uint8_t)(uuid->timeHiAndVersion >> 8);
    out[7] = (uint8_t)uuid->timeHiAndVersion;
    memcpy(out + 8, uuid->clockSeqAndNode, 8);
}

/* Reads an existing HUK file: 0, -1 with errno ENOENT if there is none, or
 * -1 with another errno (EINVAL for a file that is not a proper HUK). */
static int read_huk(const char *path, uint8_t huk[HUK_LEN])
{
    struct stat st;
    ssize_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int err = 0;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        err = errno;
    } else if (!S_ISREG(st.st_mode) || st.st_size != HUK_LEN) {
        err = EINVAL;
    } else {
        do {
            n = read(fd, huk, HUK_LEN);
        } while (n < 0 && errno == EINTR);
        if (n != HUK_LEN)
            err = n < 0 ? errno : EINVAL;
    }
    close(fd);
    if (err) {
        tsim_crypto_wipe(huk, HUK_LEN);
        errno = err;
        return -1;
    }
    return 0;
}

/* Makes a new HUK unless another process does it first: 0 when the file
 * exists afterwards (made by anyone), -1 with errno otherwise. */
static int create_huk(const char *dir, const char *path, char *tmp, size_t tmp_size)
{
    uint8_t bytes[HUK_LEN];
    uint8_t rnd[8];
    int fd = -1;
    int ok = 0;
    int err = 0;
    int n = 0;

    TEE_GenerateRandom(rnd, sizeof(rnd));
    n = snprintf(tmp, tmp_size, "%s/.huk.tmp%02x%02x%02x%02x%02x%02x%02x%02x", dir, rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    if (n < 0 || (size_t)n >= tmp_size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    TEE_GenerateRandom(bytes, sizeof(bytes));
    /* fchmod: exactly 0600 whatever the umask. */
    ok = fchmod(fd, 0600) == 0 && write(fd, bytes, sizeof(bytes)) == (ssize_t)sizeof(bytes) &&
         fsync(fd) == 0;
    err = errno;
    tsim_crypto_wipe(bytes, sizeof(bytes));
    if (close(fd) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (ok && link(tmp, path) != 0 && errno != EEXIST) {
        ok = 0;
        err = errno;
    }
    (void)unlink(tmp);
    if (!ok) {
        errno = err;
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return 0;
}

/* Loads the HUK, creating it on first use. */
static TEE_Result load_huk(uint8_t huk[HUK_LEN])
{
    const char *dir = tsim_storage_dir();
    char *path = NULL;
    char *tmp = NULL;
    int n = 0;
    TEE_Result res = TEE_ERROR_STORAGE_NOT_AVAILABLE;

    if (!dir)
        return TEE_ERROR_STORAGE_NOT_AVAILABLE;
    /* Off the TA's small stack. */
    path = tsim_sys_malloc(2 * PATH_LEN);
    if (!path)
        return TEE_ERROR_OUT_OF_MEMORY;
    tmp = path + PATH_LEN;
    n = snprintf(path, PATH_LEN, "%s/%s", dir, HUK_FILE);
    if (n < 0 || n >= PATH_LEN)
        goto out;
    if (read_huk(path, huk) == 0 ||
        (errno == ENOENT && tsim_storage_mkdirs(dir) == 0 &&
         create_huk(dir, path, tmp, PATH_LEN) == 0 && read_huk(path, huk) == 0))
        res = TEE_SUCCESS;
    else
        EMSG("Cannot use the device key %s (errno %d)", path, errno);
out:
    tsim_sys_free(path);
    return res;
}

TEE_Result tsim_huk_subkey(enum tsim_huk_usage usage, const TEE_UUID *ta, const void *extra,
                           size_t extra_len, void *key, size_t key_len)
{
    uint8_t huk[HUK_LEN];
    uint8_t info[4 + 4 + 16 + EXTRA_MAX];
    OSSL_PARAM p[5];
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    TEE_Result res = TEE_ERROR_GENERIC;

    if (!ta || !key || !key_len || key_len > 255 * 32 || extra_len > EXTRA_MAX ||
        (!extra && extra_len))
        return TEE_ERROR_BAD_PARAMETERS;
    res = load_huk(huk);
    if (res != TEE_SUCCESS)
        return res;

    for (int i = 0; i < 4; i++) {
        info[i] = (uint8_t)((uint32_t)usage >> (24 - 8 * i));
        info[4 + i] = (uint8_t)((uint32_t)key_len >> (24 - 8 * i));
    }
    tsim_huk_uuid_bytes(ta, info + 8);
    if (extra_len)
        memcpy(info + 24, extra, extra_len);

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, huk, sizeof(huk));
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *)SALT, sizeof(SALT) - 1);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 24 + extra_len);
    p[4] = OSSL_PARAM_construct_end();
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    res = ctx && EVP_KDF_derive(ctx, key, key_len, p) == 1 ? TEE_SUCCESS : TEE_ERROR_GENERIC;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    tsim_crypto_wipe(huk, sizeof(huk));
    tsim_crypto_wipe(info, sizeof(info));
    if (res != TEE_SUCCESS)
        tsim_crypto_wipe(key, key_len);
    return res;
}

TEE_Result tsim_pta_system_derive_key(const TEE_UUID *ta, const void *extra, size_t extra_len,
                                      void *key, size_t key_len)
{
    if (key_len < TA_KEY_MIN || key_len > TA_KEY_MAX)
        return TEE_ERROR_BAD_PARAMETERS;
    return tsim_huk_subkey(TSIM_HUK_TA_UNIQUE, ta, extra, extra_len, key, key_len);
}
